/* gp.c -- writes a figure's self-contained gnuplot script (contract: gp.h).
 *
 * The script has four parts: a comment saying where it came from and how to
 * run it; the terminal (unless the caller defined keep_terminal), writing
 * the image next to the script (gnuplot sets ARG0 to the script's path);
 * the data, one datablock per run of rows of one panel and line; and the
 * drawing, one multiplot panel per grid cell.  Everything the figure shows
 * is in the datablocks: the ranges and labels computed here only frame it. */
#include "plot/gp.h"
#include "core/mem.h"

#include <ctype.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "core/version.h"

#define GP_FONT        "sans"
#define GP_FONT_SIZE   11
#define GP_TITLE_SIZE  14
#define GP_TITLE_PX    50    /* height added for the figure title */
#define GP_MAX_KEYS    6     /* row, col, up to 3 series keys, note */
#define GP_PAD         0.05  /* fraction of a data range added around it */
#define GP_PDF_PX_INCH 100.0 /* a pdf is drawn at 100 px per inch: fonts x 0.72 (pt/in / px/in) */

/* Okabe-Ito colours (colour-blind safe), black and grey last. */
static const char *const gp_colors[] = {"#0072b2", "#d55e00", "#009e73", "#cc79a7",
                                        "#e69f00", "#56b4e9", "#000000", "#999999"};
#define GP_N_COLORS ((int)(sizeof gp_colors / sizeof gp_colors[0]))

/* ---- small helpers ------------------------------------------------------ */

/* Distinct strings in order of first appearance. */
typedef struct {
    char **v;
    int n, cap;
} strset_t;

static void strset_free(strset_t *s) {
    for (int i = 0; i < s->n; i++)
        mem_free(s->v[i]);
    mem_free(s->v);
}

/* Index of `key` in s, adding it when new; -1 when out of memory. */
static int strset_add(strset_t *s, const char *key) {
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->v[i], key) == 0) return i;
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 16;
        char **v = mem_realloc(s->v, (size_t)cap * sizeof *v);
        if (!v) return -1;
        s->v = v;
        s->cap = cap;
    }
    if (!(s->v[s->n] = mem_strdup(key))) return -1;
    return s->n++;
}

static int col_index(const store_table_t *t, const char *name) {
    if (!name) return -1;
    for (int c = 0; c < t->n_cols; c++)
        if (strcmp(t->names[c], name) == 0) return c;
    return -1;
}

/* A cell as a number: NAN for NULL or text. */
static double cell_num(const store_table_t *t, int r, int c) {
    const char *s = store_table_cell(t, r, c);
    int type = store_table_type(t, r, c);
    if (!s || (type != SQLITE_INTEGER && type != SQLITE_FLOAT)) return NAN;
    return strtod(s, NULL);
}

/* The value of key cells (r, cols[0..n)) as one string. */
static void key_of(const store_table_t *t, int r, const int *cols, int n, char *out, size_t size) {
    size_t len = 0;
    out[0] = '\0';
    for (int k = 0; k < n && len < size; k++) {
        const char *s = store_table_cell(t, r, cols[k]);
        len += (size_t)snprintf(out + len, size - len, "%s%s", k ? "\x1f" : "", s ? s : "\x1e");
    }
}

/* How the papers name a model. */
static const char *model_name(const char *model) {
    static const struct {
        const char *id, *name;
    } names[] = {{"shared_bottom", "Shared-Bottom"},
                 {"omoe", "OMoE"},
                 {"mmoe", "MMoE"},
                 {"single", "Single-Task"},
                 {"ml_mmoe", "ML-MMoE"},
                 {"ple", "PLE"},
                 {"adatt_sp", "AdaTT-sp"},
                 {"adatt", "AdaTT"},
                 {"cross_stitch", "Cross-stitch"},
                 {"tensor_factorization", "Tensor-factorization"},
                 {"l2_constrained", "L2-constrained"},
                 {"snr_trans", "SNR-Trans"},
                 {"snr_aver", "SNR-Aver"},
                 {"mtnas", "MTNAS"}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(model, names[i].id) == 0) return names[i].name;
    return model;
}

/* A number as a label: "0.5", "1.0" for a whole correlation, "1e-05". */
static void number_words(const char *column, const char *s, char *out, size_t size) {
    char *end;
    double v = strtod(s, &end);
    if (*end != '\0' || end == s) {
        snprintf(out, size, "%s", s);
    } else if (strcmp(column, "correlation") == 0 && v == floor(v)) {
        snprintf(out, size, "%.1f", v);
    } else {
        snprintf(out, size, "%g", v);
    }
}

/* The label of one key value: "MMoE", "correlation 0.5", "lr 0.001", "gate t1". */
static void value_label(const char *column, const char *cell, char *out, size_t size) {
    char num[64];
    if (!cell) {
        snprintf(out, size, "%s (none)", column);
    } else if (strcmp(column, "model") == 0) {
        snprintf(out, size, "%s", model_name(cell));
    } else {
        number_words(column, cell, num, sizeof num);
        snprintf(out, size, "%s %s", column, num);
    }
}

void gp_metric_words(const char *metric, char *out, size_t size) {
    char split[64], measure[64], task[64];
    int n = 0;
    if (sscanf(metric, "%63[^/]/%63[^/]/%63s%n", split, measure, task, &n) == 3 &&
        metric[n] == '\0') {
        if (strcmp(split, "data") == 0) {
            snprintf(out, size, "label %s %s", measure, task);
        } else if (task[0] == 't' && isdigit((unsigned char)task[1])) {
            snprintf(out, size, "%s %s, task %s", split, measure, task + 1);
        } else {
            snprintf(out, size, "%s %s, %s", split, measure, task);
        }
        return;
    }
    snprintf(out, size, "%s", metric);
}

void gp_put_quoted(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* Replaces {fixed}, {metric}, {runs} and {band} in a layout string; an empty
 * {fixed} takes the separator after it (": ", ", ") with it. */
static void expand(const char *templ, const char *fixed, const char *metric, const char *runs,
                   const char *band, char *out, size_t size) {
    size_t len = 0;
    out[0] = '\0';
    while (*templ && len + 1 < size) {
        const char *with = NULL;
        size_t skip = 0;
        if (strncmp(templ, "{fixed}", 7) == 0)
            with = fixed, skip = 7;
        else if (strncmp(templ, "{metric}", 8) == 0)
            with = metric, skip = 8;
        else if (strncmp(templ, "{runs}", 6) == 0)
            with = runs, skip = 6;
        else if (strncmp(templ, "{band}", 6) == 0)
            with = band, skip = 6;
        if (with) {
            len += (size_t)snprintf(out + len, size - len, "%s", with);
            templ += skip;
            if (with == fixed && !*fixed && (templ[0] == ':' || templ[0] == ',') && templ[1] == ' ')
                templ += 2;
        } else {
            out[len++] = *templ++;
            out[len] = '\0';
        }
        if (len >= size) len = size - 1;
    }
}

/* {band}: what the figure's band is, "" when it has none. */
static const char *band_words(const struct plot_layout *L, const char *band) {
    if (!L->band_lo || !band) return "";
    if (strcmp(band, "ci95") == 0) return ", band: 95% CI of the mean";
    if (strcmp(band, "se") == 0) return ", band: ± 1 standard error";
    if (strcmp(band, "sd") == 0) return ", band: ± 1 sample sd";
    return "";
}

/* One datablock: rows [first, first + n) of one panel and line. */
typedef struct {
    int panel, series, first, n;
} block_t;

/* A data range, widened for drawing. */
typedef struct {
    double lo, hi;
} range_t;

static void range_add(range_t *r, double v) {
    if (!isfinite(v)) return;
    if (v < r->lo) r->lo = v;
    if (v > r->hi) r->hi = v;
}

static bool range_ok(const range_t *r) {
    return r->lo <= r->hi;
}

/* Writes "set Xrange [a:b]" for data range r, padded by GP_PAD below and
 * pad_hi above (multiplicatively on a log axis; from 0 when from_zero);
 * returns the range set (lo > hi when left to autoscale). */
static range_t put_range(FILE *f, const char *axis, range_t r, bool log_axis, bool from_zero,
                         double pad_hi) {
    range_t none = {1, 0};
    if (!range_ok(&r) || (log_axis && r.lo <= 0)) {
        fprintf(f, "set %srange [*:*]\n", axis);
        return none;
    }
    range_t out;
    if (log_axis) {
        double ratio = r.hi / r.lo, k_lo = pow(ratio, GP_PAD), k_hi = pow(ratio, pad_hi);
        out = (range_t){r.lo / (k_lo < 1.05 ? 1.05 : k_lo), r.hi * (k_hi < 1.05 ? 1.05 : k_hi)};
    } else {
        double span = r.hi - r.lo;
        if (!(span > 0)) span = fabs(r.hi) > 0 ? 2 * fabs(r.hi) : 1;
        out = (range_t){r.lo - GP_PAD * span, r.hi + pad_hi * span};
        if (from_zero && r.lo >= 0) out.lo = 0;
    }
    fprintf(f, "set %srange [%.6g:%.6g]\n", axis, out.lo, out.hi);
    return out;
}

/* How many of the values m[i] x 10^k lie in [lo, hi]; written to f when
 * f is not NULL. */
static int log_tics(FILE *f, range_t r, const double *m, int n_m) {
    int count = 0;
    for (int e = (int)floor(log10(r.lo)); e <= (int)ceil(log10(r.hi)); e++)
        for (int i = 0; i < n_m; i++) {
            double v = m[i] * pow(10, e);
            if (v < r.lo || v > r.hi) continue;
            if (f) fprintf(f, "%s%.3g", count ? ", " : "", v);
            count++;
        }
    return count;
}

/* Tics on a log axis, printed plainly ("0.05"): at 1, 2, 5 x 10^k; at
 * 10^k alone when that makes more than eight; else at the first of these
 * mantissa sets that makes at least three: (1 2 3 5), (1 1.5 2 3 5 7),
 * 1..9. */
static void put_log_tics(FILE *f, const char *axis, range_t r) {
    static const double coarse[] = {1, 2, 5}, decade[] = {1}, middle[] = {1, 2, 3, 5},
                        dense[] = {1, 1.5, 2, 3, 5, 7}, fine[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    fprintf(f, "set format %s \"%%g\"\n", axis);
    if (!range_ok(&r) || r.lo <= 0) return;
    const double *m = coarse;
    int n_m = 3, count = log_tics(NULL, r, coarse, 3);
    if (count > 8)
        m = decade, n_m = 1;
    else if (count < 3 && log_tics(NULL, r, middle, 4) >= 3)
        m = middle, n_m = 4;
    else if (count < 3 && log_tics(NULL, r, dense, 6) >= 3)
        m = dense, n_m = 6;
    else if (count < 3)
        m = fine, n_m = 9;
    fprintf(f, "set %stics (", axis);
    log_tics(f, r, m, n_m);
    fprintf(f, ")\n");
}

/* Integer tics (counts) for a range [0, hi]: a step of 1, 2 or 5 x 10^k
 * giving at most six intervals. */
static void put_count_tics(FILE *f, const char *axis, double hi) {
    static const double mantissa[] = {1, 2, 5};
    double step = 1;
    for (int k = 0; k < 3 * 12 && hi / step > 6; k++)
        step = mantissa[k % 3] * pow(10, k / 3);
    fprintf(f, "set %stics %g\nset format %s \"%%g\"\n", axis, step, axis);
}

/* ---- the script ---------------------------------------------------------- */

static void put_terminal(FILE *f, const gp_job_t *job, int width, int height) {
    fprintf(f,
            "# The terminal and output: %s next to this script.  Define keep_terminal to\n"
            "# draw elsewhere: gnuplot -p -e \"keep_terminal = 1; set terminal qt\" %s.gp\n",
            job->image_name, job->fig->name);
    fprintf(f, "if (!exists(\"keep_terminal\")) {\n");
    if (strcmp(job->format, "svg") == 0) {
        fprintf(f,
                "    set terminal svg size %d,%d dynamic font \"%s,%d\" background rgb \"white\"\n",
                width, height, GP_FONT, GP_FONT_SIZE);
    } else if (strcmp(job->format, "pdf") == 0) {
        fprintf(f,
                "    set terminal pdfcairo size %.2fin,%.2fin font \"%s,%d\" fontscale 1 "
                "background rgb \"white\"\n",
                width / GP_PDF_PX_INCH, height / GP_PDF_PX_INCH, GP_FONT,
                (int)lround(GP_FONT_SIZE * 72.0 / GP_PDF_PX_INCH));
    } else {
        fprintf(f,
                "    if (strstrt(GPVAL_TERMINALS, \"pngcairo\") > 0) {\n"
                "        set terminal pngcairo size %d,%d font \"%s,%d\"\n"
                "    } else {\n"
                "        set terminal png size %d,%d font \"%s,%d\"\n"
                "    }\n",
                width, height, GP_FONT, GP_FONT_SIZE, width, height, GP_FONT, GP_FONT_SIZE);
    }
    fprintf(f, "    mtlab_dir = \"\"\n"
               "    do for [i = strlen(ARG0) : 1 : -1] {\n"
               "        if (mtlab_dir eq \"\" && ARG0[i:i] eq \"/\") { mtlab_dir = ARG0[1:i] }\n"
               "    }\n"
               "    set output mtlab_dir . ");
    gp_put_quoted(f, job->image_name);
    fprintf(f, "\n}\n");
}

static void put_style(FILE *f) {
    fprintf(f, "set encoding utf8\n"
               "set termoption noenhanced   # labels are literal text\n");
    for (int i = 0; i < GP_N_COLORS; i++)
        fprintf(f, "set linetype %d lc rgb \"%s\" lw 2 pt 7 ps 0.8 dt solid\n", i + 1,
                gp_colors[i]);
    fprintf(f,
            "set linetype cycle %d\n"
            "set grid back lc rgb \"#dddddd\" lw 1 dt solid\n"
            "set border lw 1\n"
            "set tics nomirror out\n"
            "set key noautotitle samplen 2.5 spacing 1.1\n",
            GP_N_COLORS);
}

/* Datablock k: its keys, column names, then its rows as the query gave them. */
static void put_block(FILE *f, const store_table_t *t, const block_t *b, int k, const int *keys,
                      int n_keys) {
    fprintf(f, "$d%d << EOD\n#", k + 1);
    for (int j = 0; j < n_keys; j++) {
        const char *s = store_table_cell(t, b->first, keys[j]);
        fprintf(f, " %s=%s", t->names[keys[j]], s ? s : "NULL");
    }
    fprintf(f, "\n#");
    for (int c = 0; c < t->n_cols; c++)
        fprintf(f, " %s", t->names[c]);
    fputc('\n', f);
    for (int r = b->first; r < b->first + b->n; r++) {
        for (int c = 0; c < t->n_cols; c++) {
            const char *s = store_table_cell(t, r, c);
            int type = store_table_type(t, r, c);
            if (c) fputc(' ', f);
            if (!s) {
                fputs("NaN", f);
            } else if (type == SQLITE_INTEGER || type == SQLITE_FLOAT) {
                fputs(s, f);
            } else { /* text inside double quotes; a '"' cannot be escaped in data */
                fputc('"', f);
                for (; *s; s++)
                    fputc(*s == '"' ? '\'' : (*s == '\n' ? ' ' : *s), f);
                fputc('"', f);
            }
        }
        fputc('\n', f);
    }
    fprintf(f, "EOD\n");
}

/* The "using ..." clause and style of one block, columns 1-based. */
static void put_plot_item(FILE *f, const struct plot_layout *L, int k, int cx, int cy, int ce,
                          int clo, int chi, int color, double offset, const char *label) {
    fprintf(f, "$d%d using ", k + 1);
    switch (L->style) {
    case GP_LINES:
        fprintf(f, "%d:%d with lines lt %d", cx, cy, color);
        break;
    case GP_ERRORLINES:
        fprintf(f, "%d:%d:(%g * ($%d == $%d ? $%d : 0)) with yerrorlines lt %d", cx, cy,
                L->err_scale, ce, ce, ce, color);
        break;
    case GP_HISTOGRAM: /* exact bin edges, on a linear or a log axis */
        fprintf(f,
                "(($%d + $%d) / 2):%d:%d:%d:(0):%d with boxxyerror fs solid 0.55 border lc rgb "
                "\"#333333\" lt %d",
                clo, chi, cy, clo, chi, cy, color);
        break;
    case GP_BARS:
        fprintf(f,
                "($%d %+g):%d:(($%d == $%d ? $%d : 0)) with boxerrorbars fs solid 0.75 "
                "border lc rgb \"#333333\" lt %d",
                cx, offset, cy, ce, ce, ce, color);
        break;
    case GP_STEPS:
        fprintf(f, "(($%d + $%d) / 2):%d with histeps lt %d", clo, chi, cy, color);
        break;
    case GP_ROUTES: /* drawn by gp_routes_write_script */
    case GP_HEATMAP: /* drawn by gp_heatmap_item */
        break;
    }
    if (label && *label) {
        fprintf(f, " title ");
        gp_put_quoted(f, label);
    } else {
        fprintf(f, " notitle");
    }
}

typedef struct {
    /* columns (-1 when absent) */
    int cx, cy, ce, clo, chi, cruns, crow, ccol, cnote, cblo, cbhi;
    int cseries[4], n_series_keys;
    /* grouping */
    strset_t rows, cols, series;
    int *row_of, *col_of, *series_of; /* per result row */
    block_t *blocks;
    int n_blocks;
    bool varies[4];      /* per series key: takes more than one value */
    char **series_label; /* per series: its varying keys' labels */
    int cz;              /* GP_HEATMAP: the colour column (-1 when absent) */
} gp_plan_t;

static void plan_free(gp_plan_t *p) {
    strset_free(&p->rows);
    strset_free(&p->cols);
    for (int s = 0; s < p->series.n && p->series_label; s++)
        mem_free(p->series_label[s]);
    strset_free(&p->series);
    mem_free(p->series_label);
    mem_free(p->row_of);
    mem_free(p->col_of);
    mem_free(p->series_of);
    mem_free(p->blocks);
}

static int need_col(const store_table_t *t, const gp_job_t *job, const char *name, int *out,
                    err_t *err) {
    *out = -1;
    if (!name) return 0;
    if ((*out = col_index(t, name)) < 0)
        return err_set(err, ERR_FAIL, "%s: the query has no column '%s' (figure %s)", job->fig->sql,
                       name, job->fig->name);
    return 0;
}

/* Resolves the columns and splits the rows into panels, lines and blocks. */
static int plan_make(gp_plan_t *p, const gp_job_t *job, const store_table_t *t, err_t *err) {
    const struct plot_layout *L = job->fig->layout;
    memset(p, 0, sizeof *p);
    if (need_col(t, job, L->x, &p->cx, err) || need_col(t, job, L->y, &p->cy, err) ||
        need_col(t, job, L->err, &p->ce, err) || need_col(t, job, L->lo, &p->clo, err) ||
        need_col(t, job, L->hi, &p->chi, err) || need_col(t, job, L->runs, &p->cruns, err) ||
        need_col(t, job, L->row, &p->crow, err) || need_col(t, job, L->col, &p->ccol, err) ||
        need_col(t, job, L->note, &p->cnote, err) || need_col(t, job, L->band_lo, &p->cblo, err) ||
        need_col(t, job, L->band_hi, &p->cbhi, err))
        return -1;
    for (int k = 0; k < 4 && L->series[k]; k++)
        if (need_col(t, job, L->series[k], &p->cseries[p->n_series_keys++], err)) return -1;
    if (need_col(t, job, L->z, &p->cz, err)) return -1;

    const int n = t->n_rows;
    p->row_of = mem_calloc((size_t)n + 1, sizeof *p->row_of);
    p->col_of = mem_calloc((size_t)n + 1, sizeof *p->col_of);
    p->series_of = mem_calloc((size_t)n + 1, sizeof *p->series_of);
    p->blocks = mem_calloc((size_t)n + 1, sizeof *p->blocks);
    if (!p->row_of || !p->col_of || !p->series_of || !p->blocks) goto oom;
    char key[2048];
    for (int r = 0; r < n; r++) {
        key_of(t, r, &p->crow, p->crow >= 0, key, sizeof key);
        if ((p->row_of[r] = strset_add(&p->rows, key)) < 0) goto oom;
        key_of(t, r, &p->ccol, p->ccol >= 0, key, sizeof key);
        if ((p->col_of[r] = strset_add(&p->cols, key)) < 0) goto oom;
        key_of(t, r, p->cseries, p->n_series_keys, key, sizeof key);
        if ((p->series_of[r] = strset_add(&p->series, key)) < 0) goto oom;
    }
    /* Blocks: maximal runs of rows with the same panel, line and note. */
    for (int r = 0; r < n; r++) {
        int panel = p->row_of[r] * (p->cols.n ? p->cols.n : 1) + p->col_of[r];
        block_t *last = p->n_blocks ? &p->blocks[p->n_blocks - 1] : NULL;
        bool same_note = true;
        if (last && p->cnote >= 0) {
            const char *a = store_table_cell(t, r, p->cnote),
                       *b = store_table_cell(t, last->first, p->cnote);
            same_note = (!a && !b) || (a && b && strcmp(a, b) == 0);
        }
        if (last && last->panel == panel && last->series == p->series_of[r] && same_note) {
            last->n++;
        } else {
            p->blocks[p->n_blocks++] = (block_t){panel, p->series_of[r], r, 1};
        }
    }
    /* Which series keys vary; the label of each series from the varying ones. */
    bool *varies = p->varies;
    for (int k = 0; k < p->n_series_keys; k++)
        for (int r = 1; r < n && !varies[k]; r++) {
            const char *a = store_table_cell(t, r, p->cseries[k]),
                       *b = store_table_cell(t, 0, p->cseries[k]);
            varies[k] = !((!a && !b) || (a && b && strcmp(a, b) == 0));
        }
    p->series_label = mem_calloc((size_t)p->series.n + 1, sizeof *p->series_label);
    if (!p->series_label) goto oom;
    for (int s = 0; s < p->series.n; s++) {
        int r = 0;
        while (p->series_of[r] != s)
            r++;
        char label[512] = "", one[128];
        for (int k = 0; k < p->n_series_keys; k++) {
            if (!varies[k]) continue;
            value_label(L->series[k], store_table_cell(t, r, p->cseries[k]), one, sizeof one);
            size_t len = strlen(label);
            snprintf(label + len, sizeof label - len, "%s%s", len ? ", " : "", one);
        }
        if (!(p->series_label[s] = mem_strdup(label))) goto oom;
    }
    return 0;
oom:
    return err_set(err, ERR_FAIL, "out of memory drawing %s", job->fig->name);
}

/* Whether block b has a band to draw: band columns and at least one row
 * with both edges (gnuplot warns on a plot without a valid point). */
static bool has_band(const gp_plan_t *p, const store_table_t *t, const block_t *b) {
    if (p->cblo < 0 || p->cbhi < 0) return false;
    for (int r = b->first; r < b->first + b->n; r++)
        if (store_table_cell(t, r, p->cblo) && store_table_cell(t, r, p->cbhi)) return true;
    return false;
}

/* {fixed}: the labels of the series keys that take one value. */
static void fixed_words(const gp_plan_t *p, const struct plot_layout *L, const store_table_t *t,
                        char *out, size_t size) {
    out[0] = '\0';
    for (int k = 0; k < p->n_series_keys; k++) {
        if (p->varies[k] || t->n_rows == 0) continue;
        char one[128];
        value_label(L->series[k], store_table_cell(t, 0, p->cseries[k]), one, sizeof one);
        size_t len = strlen(out);
        snprintf(out + len, size - len, "%s%s", len ? ", " : "", one);
    }
}

/* {runs}: "6" or "4-6" over the rows. */
static void runs_words(const gp_plan_t *p, const store_table_t *t, char *out, size_t size) {
    range_t r = {INFINITY, -INFINITY};
    for (int i = 0; p->cruns >= 0 && i < t->n_rows; i++)
        range_add(&r, cell_num(t, i, p->cruns));
    if (!range_ok(&r))
        snprintf(out, size, "?");
    else if (r.lo == r.hi)
        snprintf(out, size, "%.0f", r.lo);
    else
        snprintf(out, size, "%.0f-%.0f", r.lo, r.hi);
}

/* The panel title: its row and column values. */
static void panel_title(const gp_plan_t *p, const struct plot_layout *L, const store_table_t *t,
                        int panel_row, int panel_col, char *out, size_t size) {
    out[0] = '\0';
    for (int r = 0; r < t->n_rows; r++) {
        if (p->row_of[r] != panel_row || p->col_of[r] != panel_col) continue;
        char a[128] = "", b[128] = "";
        if (p->crow >= 0) value_label(L->row, store_table_cell(t, r, p->crow), a, sizeof a);
        if (p->ccol >= 0) value_label(L->col, store_table_cell(t, r, p->ccol), b, sizeof b);
        snprintf(out, size, "%s%s%s", a, *a && *b ? ", " : "", b);
        return;
    }
}

int gp_write_script(FILE *f, const gp_job_t *job, const store_table_t *t, err_t *err) {
    const struct plot_layout *L = job->fig->layout;
    if (L->style == GP_ROUTES) return gp_routes_write_script(f, job, t, err);
    gp_plan_t p;
    if (plan_make(&p, job, t, err)) {
        plan_free(&p);
        return -1;
    }
    const int n_rows_grid = p.rows.n ? p.rows.n : 1, n_cols_grid = p.cols.n ? p.cols.n : 1;
    const int width = n_cols_grid * L->panel_w, height = n_rows_grid * L->panel_h + GP_TITLE_PX;

    char metric[256] = "", fixed[512], runs[64], title[1024], xlabel[512], ylabel[512];
    gp_metric_words(job->metric ? job->metric : "", metric, sizeof metric);
    fixed_words(&p, L, t, fixed, sizeof fixed);
    runs_words(&p, t, runs, sizeof runs);
    const char *band = band_words(L, job->band);
    expand(L->title, fixed, metric, runs, band, title, sizeof title);
    title[0] = (char)toupper((unsigned char)title[0]);
    expand(L->xlabel, fixed, metric, runs, band, xlabel, sizeof xlabel);
    expand(L->ylabel, fixed, metric, runs, band, ylabel, sizeof ylabel);

    /* Header. */
    fprintf(f, "# %s.gp -- %s\n", job->fig->name, job->fig->description);
    fprintf(f,
            "#\n# Made by mtlab %s: `mtlab plot %s --db %s`, from the rows of %s\n"
            "# (:experiment = %s",
            mtlab_version(), job->fig->name, job->db_path, job->fig->sql, job->experiment);
    if (job->metric) fprintf(f, ", :metric = %s", job->metric);
    fprintf(f, ").  Self-contained: `gnuplot %s.gp` writes %s next to it.\n\n", job->fig->name,
            job->image_name);
    put_terminal(f, job, width, height);
    fputc('\n', f);
    put_style(f);

    /* Data. */
    int keys[GP_MAX_KEYS], n_keys = 0;
    if (p.crow >= 0) keys[n_keys++] = p.crow;
    if (p.ccol >= 0) keys[n_keys++] = p.ccol;
    for (int k = 0; k < p.n_series_keys; k++)
        keys[n_keys++] = p.cseries[k];
    if (p.cnote >= 0 && n_keys < GP_MAX_KEYS) keys[n_keys++] = p.cnote;
    fprintf(f, "\n# ---- data: the %d rows of %s, one block per panel and line ----\n", t->n_rows,
            job->fig->sql);
    for (int k = 0; k < p.n_blocks; k++)
        put_block(f, t, &p.blocks[k], k, keys, n_keys);

    /* Ranges shared by the whole figure or by a grid row. */
    range_t all_y = {INFINITY, -INFINITY}, all_x = {INFINITY, -INFINITY};
    range_t *row_x = mem_calloc((size_t)n_rows_grid, sizeof *row_x),
            *row_y = mem_calloc((size_t)n_rows_grid, sizeof *row_y);
    if (!row_x || !row_y) {
        mem_free(row_x);
        mem_free(row_y);
        plan_free(&p);
        return err_set(err, ERR_FAIL, "out of memory drawing %s", job->fig->name);
    }
    for (int g = 0; g < n_rows_grid; g++)
        row_x[g] = row_y[g] = (range_t){INFINITY, -INFINITY};
    for (int r = 0; r < t->n_rows; r++) {
        double y = cell_num(t, r, p.cy), e = p.ce >= 0 ? cell_num(t, r, p.ce) : 0;
        if (!isfinite(e)) e = 0;
        double scale = L->style == GP_ERRORLINES ? L->err_scale : 1;
        if (L->flags & GP_LOG_Y) {
            if (y > 0) range_add(&all_y, y);
        } else {
            range_add(&all_y, y - scale * e);
            range_add(&all_y, y + scale * e);
        }
        range_add(&row_y[p.row_of[r]], y + scale * e);
        range_add(&row_y[p.row_of[r]], 0);
        if (p.clo >= 0) {
            range_add(&row_x[p.row_of[r]], cell_num(t, r, p.clo));
            range_add(&row_x[p.row_of[r]], cell_num(t, r, p.chi));
        } else if (p.cx >= 0) {
            range_add(&row_x[p.row_of[r]], cell_num(t, r, p.cx));
        }
        if (p.cx >= 0) range_add(&all_x, cell_num(t, r, p.cx));
    }

    /* Drawing. */
    fprintf(f, "\n# ---- figure: %d x %d panels ----\n", n_rows_grid, n_cols_grid);
    fprintf(f, "set multiplot layout %d,%d title ", n_rows_grid, n_cols_grid);
    gp_put_quoted(f, title);
    const double font_scale = strcmp(job->format, "pdf") == 0 ? 72.0 / GP_PDF_PX_INCH : 1.0;
    fprintf(f, " font \",%d\"\n", (int)lround(GP_TITLE_SIZE * font_scale));
    if (L->style == GP_HISTOGRAM || L->style == GP_BARS) fprintf(f, "set grid noxtics\n");
    if (L->flags & GP_INT_X) {
        fprintf(f, "set xtics 1\n");
        if (range_ok(&all_x)) fprintf(f, "set xrange [0.5:%g]\n", all_x.hi + 0.5);
    } else if (L->flags & GP_X_FROM_0) {
        if (range_ok(&all_x) && all_x.hi > 0)
            fprintf(f, "set xrange [0:%g]\n", all_x.hi);
        else
            fprintf(f, "set xrange [0:*]\n");
    } else if (L->flags & GP_LOG_X) {
        fprintf(f, "set logscale x\n");
        put_log_tics(f, "x", put_range(f, "x", all_x, true, false, GP_PAD));
    } else if (!(L->flags & GP_ROW_RANGES)) {
        put_range(f, "x", all_x, false, false, GP_PAD);
    }
    /* bars and error bars: room above the data for the key */
    const double pad_hi = L->style == GP_BARS || L->style == GP_ERRORLINES ? 0.25 : GP_PAD;
    if (L->flags & GP_LOG_Y) {
        fprintf(f, "set logscale y\n");
        put_log_tics(f, "y", put_range(f, "y", all_y, true, false, pad_hi));
    } else if (L->flags & GP_SHARE_Y || L->style == GP_ERRORLINES) {
        put_range(f, "y", all_y, false, (L->flags & GP_Y_FROM_0) != 0, pad_hi);
    }
    if (L->key) fprintf(f, "set key %s\n", L->key);
    if (L->style == GP_HEATMAP) gp_heatmap_frame(f, t, p.cx + 1, p.cy + 1, p.cz + 1);

    for (int g = 0; g < n_rows_grid; g++) {
        for (int c = 0; c < n_cols_grid; c++) {
            const int panel = g * n_cols_grid + c;
            int n_in = 0;
            for (int k = 0; k < p.n_blocks; k++)
                n_in += p.blocks[k].panel == panel;
            char ptitle[300];
            panel_title(&p, L, t, g, c, ptitle, sizeof ptitle);
            fprintf(f, "\n# panel %d: %s\n", panel + 1, n_in ? ptitle : "(no data)");
            if (!n_in) {
                fprintf(f, "set multiplot next\n");
                continue;
            }
            fprintf(f, "set title ");
            gp_put_quoted(f, ptitle);
            fputc('\n', f);
            fprintf(f, "set xlabel ");
            gp_put_quoted(f, g == n_rows_grid - 1 ? xlabel : "");
            fprintf(f, "\nset ylabel ");
            gp_put_quoted(f, c == 0 ? ylabel : "");
            fputc('\n', f);
            if (L->flags & GP_ROW_RANGES) {
                bool log_x = (L->flags & GP_LOG_X_AUTO) && row_x[g].lo > 0;
                if (log_x) {
                    fprintf(f, "set logscale x\n");
                    put_log_tics(f, "x", put_range(f, "x", row_x[g], true, false, GP_PAD));
                } else {
                    fprintf(f, "unset logscale x\nset xtics autofreq\nset format x \"%%g\"\n");
                    put_range(f, "x", row_x[g], false, false, GP_PAD);
                }
                range_t y = row_y[g];
                y.lo = 0;
                y = put_range(f, "y", y, false, true, GP_PAD);
                if (L->style == GP_HISTOGRAM && range_ok(&y)) put_count_tics(f, "y", y.hi);
            }
            /* Bars: the lines of this panel side by side at each x. */
            const double bar = 0.8 / n_in;
            if (L->style == GP_BARS) fprintf(f, "set boxwidth %g absolute\n", bar);
            fprintf(f, "plot");
            int i = 0;
            for (int k = 0; k < p.n_blocks; k++) {
                const block_t *b = &p.blocks[k];
                if (b->panel != panel) continue;
                char label[640];
                const char *series = p.series_label[b->series];
                if (p.cnote >= 0) {
                    char note[128];
                    value_label(L->note, store_table_cell(t, b->first, p.cnote), note, sizeof note);
                    snprintf(label, sizeof label, *series ? "%s (%s)" : "%s%s", series, note);
                } else if (*series) {
                    snprintf(label, sizeof label, "%s", series);
                } else {
                    snprintf(label, sizeof label, "%s", L->line_title ? L->line_title : "");
                }
                double offset = (i - (n_in - 1) / 2.0) * bar;
                fprintf(f, "%s \\\n    ", i ? "," : "");
                if (has_band(&p, t, b)) { /* under its line, the line's colour, see-through */
                    const int lo = p.cblo + 1, hi = p.cbhi + 1;
                    if (L->flags & GP_LOG_Y) /* a band reaching 0 or below: to the axis */
                        fprintf(f,
                                "$d%d using %d:($%d > 0 ? $%d : 1e-300):%d with filledcurves "
                                "lt %d fs transparent solid 0.15 noborder notitle, \\\n    ",
                                k + 1, p.cx + 1, lo, lo, hi, b->series % GP_N_COLORS + 1);
                    else
                        fprintf(f,
                                "$d%d using %d:%d:%d with filledcurves lt %d fs transparent "
                                "solid 0.15 noborder notitle, \\\n    ",
                                k + 1, p.cx + 1, lo, hi, b->series % GP_N_COLORS + 1);
                }
                if (L->style == GP_HEATMAP)
                    gp_heatmap_item(f, k, p.cx + 1, p.cy + 1, p.cz + 1);
                else
                    put_plot_item(f, L, k, p.cx + 1, p.cy + 1, p.ce + 1, p.clo + 1, p.chi + 1,
                                  b->series % GP_N_COLORS + 1, offset, label);
                i++;
            }
            if (L->flags & GP_DIAGONAL)
                fprintf(f, ", \\\n    x with lines lc rgb \"#888888\" lw 1 dt 2 title "
                           "\"linear labels: Pearson = cosine\"");
            fputc('\n', f);
        }
    }
    fprintf(f, "\nunset multiplot\n");
    mem_free(row_x);
    mem_free(row_y);
    plan_free(&p);
    if (ferror(f)) return err_set(err, ERR_FAIL, "cannot write the script of %s", job->fig->name);
    return 0;
}

void gp_put_terminal(FILE *f, const gp_job_t *job, int width, int height) {
    put_terminal(f, job, width, height);
}

void gp_put_style(FILE *f) {
    put_style(f);
}

void gp_value_label(const char *column, const char *cell, char *out, size_t size) {
    value_label(column, cell, out, size);
}
