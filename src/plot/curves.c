/* curves.c -- grouped learning curves with bands (contract: curves.h).
 *
 * The rows stream in (store_query_each) ordered by group then step; the
 * values of one (group, step) are gathered, reduced to n, mean, sd, se when
 * the group or step changes, and kept per group.  Only those summaries stay
 * in memory (groups x steps), never the rows. */
#include "plot/curves.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "core/mem.h"
#include "core/numtext.h"
#include "plot/gp.h"
#include "store/query.h"

#define CURVES_WIDTH  900 /* pixels of the image (png; svg and pdf alike) */
#define CURVES_HEIGHT 560
#define CURVES_PANEL_W 520 /* pixels per panel of a faceted or multi-panel image */
#define CURVES_PANEL_H 400
#define CURVES_FONT   "DejaVu Sans,11"

/* ---- statistics ------------------------------------------------------------ */

int curves_band_parse(const char *name, curves_band_t *out) {
    static const char *const names[] = {"none", "sd", "se", "ci95"};
    for (int i = 0; i < 4; i++)
        if (strcmp(name, names[i]) == 0) {
            *out = (curves_band_t)i;
            return 0;
        }
    return -1;
}

double curves_t975(int df) {
    static const double table[31] = {
        NAN,    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
        2.2010, 2.1788,  2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860, 2.0796,
        2.0739, 2.0687,  2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423};
    if (df < 1) return NAN;
    if (df <= 30) return table[df];
    /* Cornish-Fisher: t = z + (z^3 + z) / 4v + (5z^5 + 16z^3 + 3z) / 96v^2 */
    const double z = 1.959963984540054, v = df;
    return z + (z * z * z + z) / (4 * v) + (5 * pow(z, 5) + 16 * z * z * z + 3 * z) / (96 * v * v);
}

void curves_stats(const double *x, int n, double *mean, double *sd, double *se) {
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += x[i];
    *mean = n > 0 ? sum / n : NAN;
    if (n < 2) {
        *sd = *se = NAN;
        return;
    }
    double ss = 0; /* two passes: no cancellation */
    for (int i = 0; i < n; i++)
        ss += (x[i] - *mean) * (x[i] - *mean);
    *sd = sqrt(ss / (n - 1));
    *se = *sd / sqrt((double)n);
}

/* ---- gathering ------------------------------------------------------------- */

typedef struct {
    double step, mean, sd, se;
    int n;
} point_t;

typedef struct {
    char *key;   /* the group's cells joined by \x1f (to tell groups apart) */
    char *label; /* "model mmoe, data.correlation 0.5" */
    char *facet; /* the facet column's value ("" without a facet) */
    int first, n_points;
} group_t;

typedef struct {
    group_t *groups;
    int n_groups, cap_groups;
    point_t *points;
    int n_points, cap_points;
    double *values; /* of the (group, step) being gathered */
    int n_values, cap_values;
    double step;
    bool open; /* a (group, step) is being gathered */
    int n_keys;
    bool facet; /* the first key column is the facet: not in the label */
} gather_t;

static void gather_free(gather_t *g) {
    for (int i = 0; i < g->n_groups; i++) {
        mem_free(g->groups[i].key);
        mem_free(g->groups[i].label);
        mem_free(g->groups[i].facet);
    }
    mem_free(g->groups);
    mem_free(g->points);
    mem_free(g->values);
}

/* Grows *p (of *cap elements of size) to hold need. */
static int grow(void **p, int *cap, int need, size_t size) {
    if (need <= *cap) return 0;
    int c = *cap ? 2 * *cap : 16;
    while (c < need)
        c *= 2;
    void *q = mem_realloc(*p, (size_t)c * size);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

/* Closes the (group, step) being gathered: one point of the last group. */
static int flush_step(gather_t *g, err_t *err) {
    if (!g->open) return 0;
    g->open = false;
    if (g->n_values == 0) return 0; /* only NULLs at this step */
    if (grow((void **)&g->points, &g->cap_points, g->n_points + 1, sizeof *g->points))
        return err_set(err, ERR_FAIL, "out of memory");
    point_t *p = &g->points[g->n_points++];
    p->step = g->step;
    p->n = g->n_values;
    curves_stats(g->values, g->n_values, &p->mean, &p->sd, &p->se);
    g->groups[g->n_groups - 1].n_points++;
    g->n_values = 0;
    return 0;
}

static int on_row(void *ctx, const store_row_t *row, err_t *err) {
    gather_t *g = ctx;
    const int k = row->n_cols - 2;
    if (k < 0) return err_set(err, ERR_FAIL, "a curves query needs (keys..., step, value)");
    g->n_keys = k;
    /* the group key and label of this row */
    size_t len = 1, label_len = 1;
    for (int c = 0; c < k; c++) {
        len += strlen(row->cells[c] ? row->cells[c] : "") + 1;
        label_len += strlen(row->names[c]) + strlen(row->cells[c] ? row->cells[c] : "-") + 3;
    }
    const int first = g->facet && k > 0 ? 1 : 0; /* the first label column */
    char *key = mem_alloc(len), *label = mem_alloc(label_len + 16),
         *facet = mem_strdup(first && row->cells[0] ? row->cells[0] : first ? "-" : "");
    if (!key || !label || !facet) {
        mem_free(key);
        mem_free(label);
        mem_free(facet);
        return err_set(err, ERR_FAIL, "out of memory");
    }
    key[0] = label[0] = '\0';
    for (int c = 0; c < k; c++) {
        strcat(key, row->cells[c] ? row->cells[c] : "");
        strcat(key, "\x1f");
        if (c < first) continue;
        if (c > first) strcat(label, ", ");
        strcat(label, row->names[c]);
        strcat(label, " ");
        strcat(label, row->cells[c] ? row->cells[c] : "-");
    }
    if (first == k) strcat(label, "all trials");
    const double step = row->cells[k] ? strtod(row->cells[k], NULL) : NAN;
    const bool new_group = g->n_groups == 0 || strcmp(g->groups[g->n_groups - 1].key, key) != 0;
    if (new_group || step != g->step) {
        if (flush_step(g, err)) goto fail;
    }
    if (new_group) {
        if (grow((void **)&g->groups, &g->cap_groups, g->n_groups + 1, sizeof *g->groups)) {
            err_set(err, ERR_FAIL, "out of memory");
            goto fail;
        }
        g->groups[g->n_groups++] = (group_t){key, label, facet, g->n_points, 0};
        key = label = facet = NULL;
    }
    mem_free(key);
    mem_free(label);
    mem_free(facet);
    g->step = step;
    g->open = true;
    if (row->cells[k + 1] && row->types[k + 1] != SQLITE_NULL) {
        if (grow((void **)&g->values, &g->cap_values, g->n_values + 1, sizeof *g->values))
            return err_set(err, ERR_FAIL, "out of memory");
        g->values[g->n_values++] = strtod(row->cells[k + 1], NULL);
    }
    return 0;
fail:
    mem_free(key);
    mem_free(label);
    mem_free(facet);
    return -1;
}

/* ---- the script ------------------------------------------------------------ */

static void put_num(FILE *f, double v) {
    char buf[40];
    if (isnan(v)) {
        fputs("NaN", f);
        return;
    }
    num_to_text(v, buf, sizeof buf);
    fputs(buf, f);
}

static const char *band_words(curves_band_t b) {
    switch (b) {
    case CURVES_BAND_SD:
        return "mean +- 1 sample sd";
    case CURVES_BAND_SE:
        return "mean +- 1 standard error";
    case CURVES_BAND_CI95:
        return "mean and its 95% confidence interval (Student t)";
    default:
        return "mean";
    }
}

static double half_width(const point_t *p, curves_band_t b) {
    switch (b) {
    case CURVES_BAND_SD:
        return p->sd;
    case CURVES_BAND_SE:
        return p->se;
    case CURVES_BAND_CI95:
        return p->n >= 2 ? curves_t975(p->n - 1) * p->se : NAN;
    default:
        return NAN;
    }
}

/* The terminal for an image of cols x rows panels (1 x 1: the default
 * size) and the output next to the script (SCRIPT's directory, ARG0). */
static void put_terminal(FILE *f, const char *format, const char *image_name, int cols, int rows) {
    const bool grid = cols * rows > 1;
    const int w = grid ? CURVES_PANEL_W * cols : CURVES_WIDTH,
              h = grid ? CURVES_PANEL_H * rows : CURVES_HEIGHT;
    fprintf(f,
            "# The terminal and output: %s next to this script.  Define keep_terminal to\n"
            "# draw elsewhere: gnuplot -p -e \"keep_terminal = 1; set terminal qt\" SCRIPT\n"
            "if (!exists(\"keep_terminal\")) {\n",
            image_name);
    if (strcmp(format, "svg") == 0)
        fprintf(f, "    set terminal svg size %d,%d dynamic font \"%s\" background rgb \"white\"\n",
                w, h, CURVES_FONT);
    else if (strcmp(format, "pdf") == 0 && !grid)
        fprintf(f,
                "    set terminal pdfcairo size 9in,5.6in font \"%s\" background rgb \"white\"\n",
                CURVES_FONT);
    else if (strcmp(format, "pdf") == 0)
        fprintf(f,
                "    set terminal pdfcairo size %gin,%gin font \"%s\" background rgb \"white\"\n",
                w / 100.0, h / 100.0, CURVES_FONT);
    else
        fprintf(f,
                "    if (strstrt(GPVAL_TERMINALS, \"pngcairo\") > 0) {\n"
                "        set terminal pngcairo size %d,%d font \"%s\"\n"
                "    } else {\n"
                "        set terminal png size %d,%d\n"
                "    }\n",
                w, h, CURVES_FONT, w, h);
    fprintf(f, "    mtlab_dir = \"\"\n"
               "    do for [i = strlen(ARG0) : 1 : -1] {\n"
               "        if (mtlab_dir eq \"\" && ARG0[i:i] eq \"/\") { mtlab_dir = ARG0[1:i] }\n"
               "    }\n"
               "    set output mtlab_dir . ");
    gp_put_quoted(f, image_name);
    fprintf(f, "\n}\n");
}

static const char *const colors[] = {"#0072b2", "#d55e00", "#009e73", "#cc79a7",
                                     "#e69f00", "#56b4e9", "#f0e442", "#000000"};
#define N_COLORS ((int)(sizeof colors / sizeof colors[0]))

void curves_put_preamble(FILE *f, const char *format, const char *image_name, int cols,
                         int rows) {
    put_terminal(f, format, image_name, cols, rows);
    fprintf(f, "set encoding utf8\nset termoption noenhanced\n");
    for (int i = 0; i < N_COLORS; i++)
        fprintf(f, "set linetype %d lc rgb \"%s\" lw 2 dt solid\n", i + 1, colors[i]);
    fprintf(f,
            "set linetype cycle %d\n"
            "set grid back lc rgb \"#dddddd\" lw 1 dt solid\n"
            "set tics nomirror out\n"
            "set key below left noautotitle samplen 2.5\n",
            N_COLORS);
}

void curves_grid(int panels, int *cols, int *rows) {
    int c = 1;
    while (c * c < panels)
        c++;
    *cols = c;
    *rows = (panels + c - 1) / c;
}

/* The linetype of group i: groups with the same label share one (a facet's
 * panels draw the same setting in the same colour). */
static int group_linetype(const gather_t *g, int i) {
    int distinct = 0;
    for (int j = 0; j < i; j++) {
        bool seen = false;
        for (int k = 0; k < j && !seen; k++)
            seen = strcmp(g->groups[k].label, g->groups[j].label) == 0;
        if (strcmp(g->groups[j].label, g->groups[i].label) == 0) return distinct % N_COLORS + 1;
        if (!seen) distinct++;
    }
    return distinct % N_COLORS + 1;
}

/* The plot command of the groups [from, to). */
static void put_plot(FILE *f, const curves_job_t *job, const gather_t *g, int from, int to) {
    fprintf(f, "plot");
    for (int i = from; i < to; i++) {
        const int lt = job->facet ? group_linetype(g, i) : i % N_COLORS + 1;
        if (job->band != CURVES_BAND_NONE)
            fprintf(f,
                    "%s \\\n    $c%d using 1:6:7 with filledcurves lt %d fs transparent solid "
                    "0.18 noborder notitle",
                    i > from ? "," : "", i + 1, lt);
        fprintf(f, "%s \\\n    $c%d using 1:3 with lines lt %d title ",
                job->band != CURVES_BAND_NONE || i > from ? "," : "", i + 1, lt);
        gp_put_quoted(f, g->groups[i].label);
    }
    fprintf(f, "\n");
}

static void put_script(FILE *f, const curves_job_t *job, const gather_t *g) {
    char words[128], title[512];
    gp_metric_words(job->metric, words, sizeof words);
    int panels = 0;
    for (int i = 0; i < g->n_groups; i++)
        panels += i == 0 || strcmp(g->groups[i].facet, g->groups[i - 1].facet) != 0;
    if (job->origin)
        fprintf(f, "# %s: %d line%s, %s over the trials\n", job->origin, g->n_groups,
                g->n_groups == 1 ? "" : "s", band_words(job->band));
    else
        fprintf(f, "# mtlab plot --curves %s --metric %s: %d line%s, %s over the done trials\n",
                job->experiment, job->metric, g->n_groups, g->n_groups == 1 ? "" : "s",
                band_words(job->band));
    fprintf(f,
            "# of each group, from %s.  Columns of each datablock: step, n (values at\n"
            "# the step), mean, sd (sample, n - 1), se (sd / sqrt(n)), lo, hi (the band).\n",
            job->db_path);
    if (job->facet)
        fprintf(f, "# One panel per value of %s (%d panels).\n", job->facet, panels);
    int cols = 1, rows = 1;
    if (job->facet) curves_grid(panels, &cols, &rows);
    curves_put_preamble(f, job->format, job->image_name, cols, rows);
    snprintf(title, sizeof title, "%s: %s, %s", job->experiment, words, band_words(job->band));
    if (!job->facet) {
        fprintf(f, "set title ");
        gp_put_quoted(f, title);
        fprintf(f, "\n");
    }
    fprintf(f, "set xlabel \"step\"\nset ylabel ");
    gp_put_quoted(f, words);
    fprintf(f, "\n");
    for (int i = 0; i < g->n_groups; i++) {
        const group_t *gr = &g->groups[i];
        fprintf(f, "$c%d << EOD\n# ", i + 1);
        if (job->facet) fprintf(f, "%s %s, ", job->facet, gr->facet);
        fputs(gr->label, f);
        fprintf(f, "\n# step n mean sd se lo hi\n");
        for (int j = 0; j < gr->n_points; j++) {
            const point_t *p = &g->points[gr->first + j];
            const double h = half_width(p, job->band);
            put_num(f, p->step);
            fprintf(f, " %d ", p->n);
            put_num(f, p->mean);
            fputc(' ', f);
            put_num(f, p->sd);
            fputc(' ', f);
            put_num(f, p->se);
            fputc(' ', f);
            put_num(f, p->mean - h);
            fputc(' ', f);
            put_num(f, p->mean + h);
            fputc('\n', f);
        }
        fprintf(f, "EOD\n");
    }
    if (!job->facet) {
        put_plot(f, job, g, 0, g->n_groups);
        return;
    }
    fprintf(f, "set multiplot layout %d,%d title ", rows, cols);
    gp_put_quoted(f, title);
    fprintf(f, "\n");
    for (int from = 0; from < g->n_groups;) {
        int to = from + 1;
        while (to < g->n_groups && strcmp(g->groups[to].facet, g->groups[from].facet) == 0)
            to++;
        char panel[512];
        snprintf(panel, sizeof panel, "%s %s", job->facet, g->groups[from].facet);
        fprintf(f, "set title ");
        gp_put_quoted(f, panel);
        fprintf(f, "\n");
        put_plot(f, job, g, from, to);
        from = to;
    }
    fprintf(f, "unset multiplot\n");
}

int curves_write(store_t *s, const char *sql, const curves_job_t *job, FILE *f, int *n_lines,
                 err_t *err) {
    gather_t g = {0};
    g.facet = job->facet != NULL;
    *n_lines = 0;
    int rc = store_query_each(s, sql, NULL, on_row, &g, err);
    if (rc == 0) rc = flush_step(&g, err);
    if (rc == 0 && g.n_points == 0)
        rc = err_set(err, ERR_USAGE, "no values of %s among the done trials of %s", job->metric,
                     job->experiment);
    if (rc == 0) {
        put_script(f, job, &g);
        *n_lines = g.n_groups;
        if (ferror(f)) rc = err_set(err, ERR_FAIL, "cannot write the script");
    }
    gather_free(&g);
    return rc;
}
