/* routes_gp.c -- the route drawing (layout style GP_ROUTES; contract:
 * gp.h): learned routes as graphs, one panel per trial.
 *
 * The query (sql/figures/snr-routes.sql) gives one row per connection with
 * its drawing coordinates already computed -- (x1, y1) the lower unit, (x2,
 * y2) the upper one, x the level (0 the input, l the units of routing layer
 * l), y the unit's index centred on its level -- its serving estimate z
 * (ẑ) and the labels of both ends.  So the script needs no layout logic of
 * its own: each panel's rows are one datablock (verbatim, as every mtlab
 * script holds its query's rows), drawn as
 *   closed edges (z = 0)  thin dashed grey,
 *   open edges (z > 0)    thick, coloured by z on a [0, 1] palette,
 *   nodes                 points at both ends of every edge, labelled.
 * Panels: the rows' (row key, column key, trial_id) runs in query order; a
 * grid row per row-key value (the model), as many columns as its largest
 * row has panels; each titled with its keys, trial and layers of
 * sub-networks. */
#include "core/mem.h"
#include "plot/gp.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "core/version.h"

#define ROUTES_PANEL_W  420
#define ROUTES_PANEL_H  380
#define ROUTES_TITLE_PX 50

typedef struct {
    int first, n;         /* rows [first, first + n) */
    int grid_row, column; /* place in the grid */
    double y_lo, y_hi, x_hi;
} routes_panel_t;

/* Column index of `name`, or -1. */
static int column_of(const store_table_t *t, const char *name) {
    for (int c = 0; name && c < t->n_cols; c++)
        if (strcmp(t->names[c], name) == 0) return c;
    return -1;
}

static double num(const store_table_t *t, int r, int c) {
    const char *s = store_table_cell(t, r, c);
    int type = store_table_type(t, r, c);
    return s && (type == SQLITE_INTEGER || type == SQLITE_FLOAT) ? strtod(s, NULL) : NAN;
}

/* Whether cells (r1, c) and (r2, c) hold the same text (NULL = NULL). */
static bool same_cell(const store_table_t *t, int r1, int r2, int c) {
    if (c < 0) return true;
    const char *a = store_table_cell(t, r1, c), *b = store_table_cell(t, r2, c);
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* One datablock: the panel's keys, the column names, its rows verbatim
 * (numbers as the query printed them, text double-quoted, NULL as NaN). */
static void put_rows(FILE *f, const store_table_t *t, const routes_panel_t *p, int k) {
    fprintf(f, "$d%d << EOD\n#", k + 1);
    for (int c = 0; c < t->n_cols; c++)
        fprintf(f, " %s", t->names[c]);
    fputc('\n', f);
    for (int r = p->first; r < p->first + p->n; r++) {
        for (int c = 0; c < t->n_cols; c++) {
            const char *s = store_table_cell(t, r, c);
            int type = store_table_type(t, r, c);
            if (c) fputc(' ', f);
            if (!s) {
                fputs("NaN", f);
            } else if (type == SQLITE_INTEGER || type == SQLITE_FLOAT) {
                fputs(s, f);
            } else {
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

int gp_routes_write_script(FILE *f, const gp_job_t *job, const store_table_t *t, err_t *err) {
    const struct plot_layout *L = job->fig->layout;
    static const char *const needed[] = {"x1", "y1",        "x2",        "y2",
                                         "z",  "src_label", "dst_label", "trial_id"};
    enum { X1, Y1, X2, Y2, Z, SRC, DST, TRIAL, N_NEEDED };
    int col[N_NEEDED];
    for (int i = 0; i < N_NEEDED; i++)
        if ((col[i] = column_of(t, needed[i])) < 0)
            return err_set(err, ERR_FAIL, "%s: the query has no column '%s' (figure %s)",
                           job->fig->sql, needed[i], job->fig->name);
    const int crow = column_of(t, L->row), ccol = column_of(t, L->col);

    /* Panels: maximal runs of one (row key, column key, trial). */
    routes_panel_t *panels = mem_calloc((size_t)t->n_rows + 1, sizeof *panels);
    if (!panels) return err_set(err, ERR_FAIL, "out of memory drawing %s", job->fig->name);
    int n_panels = 0, n_grid_rows = 0, n_grid_cols = 0;
    for (int r = 0; r < t->n_rows; r++) {
        routes_panel_t *last = n_panels ? &panels[n_panels - 1] : NULL;
        if (last && same_cell(t, last->first, r, crow) && same_cell(t, last->first, r, ccol) &&
            same_cell(t, last->first, r, col[TRIAL])) {
            last->n++;
        } else {
            bool new_row = !last || !same_cell(t, last->first, r, crow);
            if (new_row) n_grid_rows++;
            panels[n_panels] = (routes_panel_t){
                r, 1, n_grid_rows - 1, new_row ? 0 : last->column + 1, INFINITY, -INFINITY, 0};
            if (panels[n_panels].column + 1 > n_grid_cols)
                n_grid_cols = panels[n_panels].column + 1;
            n_panels++;
        }
        routes_panel_t *p = &panels[n_panels - 1];
        const double ys[2] = {num(t, r, col[Y1]), num(t, r, col[Y2])};
        for (int i = 0; i < 2; i++)
            if (isfinite(ys[i])) {
                p->y_lo = fmin(p->y_lo, ys[i]);
                p->y_hi = fmax(p->y_hi, ys[i]);
            }
        if (isfinite(num(t, r, col[X2]))) p->x_hi = fmax(p->x_hi, num(t, r, col[X2]));
    }
    if (n_grid_rows == 0) n_grid_rows = n_grid_cols = 1;

    fprintf(f, "# %s.gp -- %s\n", job->fig->name, job->fig->description);
    fprintf(f,
            "#\n# Made by mtlab %s: `mtlab plot %s --db %s`, from the rows of %s\n"
            "# (:experiment = %s).  Self-contained: `gnuplot %s.gp` writes %s next to it.\n\n",
            mtlab_version(), job->fig->name, job->db_path, job->fig->sql, job->experiment,
            job->fig->name, job->image_name);
    gp_put_terminal(f, job, n_grid_cols * ROUTES_PANEL_W,
                    n_grid_rows * ROUTES_PANEL_H + ROUTES_TITLE_PX);
    fputc('\n', f);
    gp_put_style(f);

    fprintf(f, "\n# ---- data: the %d rows of %s, one block per panel (trial) ----\n", t->n_rows,
            job->fig->sql);
    for (int k = 0; k < n_panels; k++)
        put_rows(f, t, &panels[k], k);

    fprintf(f, "\n# ---- figure: %d trials on a %d x %d grid ----\n", n_panels, n_grid_rows,
            n_grid_cols);
    fprintf(f, "set multiplot layout %d,%d title ", n_grid_rows, n_grid_cols);
    gp_put_quoted(f, L->title);
    fprintf(f, " font \",%d\"\n", strcmp(job->format, "pdf") == 0 ? 10 : 14);
    /* What an edge's z is (the layout's ylabel; SNR's ẑ by default) and the
     * legend of an edge at z = 0 (its xlabel): the drawing has no axes. */
    const char *z_name = L->ylabel ? L->ylabel : "ẑ";
    char closed[96];
    if (L->xlabel)
        snprintf(closed, sizeof closed, "%s", L->xlabel);
    else
        snprintf(closed, sizeof closed, "closed (%s = 0)", z_name);
    fprintf(f, "unset border\nunset xtics\nunset ytics\nunset grid\n"
               "set palette defined (0 \"#c6dbef\", 0.5 \"#4292c6\", 1 \"#08306b\")\n"
               "set cbrange [0:1]\nset cbtics 0.25\nset cblabel ");
    gp_put_quoted(f, z_name);
    fprintf(f, "\nset key bottom center horizontal samplen 1.5\n");
    int k = 0;
    for (int g = 0; g < n_grid_rows; g++) {
        for (int c = 0; c < n_grid_cols; c++) {
            const routes_panel_t *p = k < n_panels ? &panels[k] : NULL;
            if (!p || p->grid_row != g || p->column != c) {
                fprintf(f, "\n# (no trial)\nset multiplot next\n");
                continue;
            }
            char a[128] = "", b[128] = "", title[320];
            if (crow >= 0) gp_value_label(L->row, store_table_cell(t, p->first, crow), a, sizeof a);
            if (ccol >= 0) gp_value_label(L->col, store_table_cell(t, p->first, ccol), b, sizeof b);
            const char *trial = store_table_cell(t, p->first, col[TRIAL]);
            const int layers = (int)p->x_hi - 1; /* of sub-networks: the top level is the towers */
            snprintf(title, sizeof title, "%s%s%s (trial %s, %d layer%s)", a, *a && *b ? ", " : "",
                     b, trial ? trial : "?", layers, layers == 1 ? "" : "s");
            fprintf(f, "\n# panel %d: %s\nset title ", k + 1, title);
            gp_put_quoted(f, title);
            fprintf(f, "\nset xrange [-0.35:%g]\nset yrange [%g:%g]\n", p->x_hi + 0.35,
                    (isfinite(p->y_lo) ? p->y_lo : 0) - 0.9,
                    (isfinite(p->y_hi) ? p->y_hi : 0) + 0.6);
            const int x1 = col[X1] + 1, y1 = col[Y1] + 1, x2 = col[X2] + 1, y2 = col[Y2] + 1,
                      z = col[Z] + 1;
            fprintf(f,
                    "plot $d%d using ($%d > 0 ? NaN : $%d):%d:($%d - $%d):($%d - $%d) "
                    "with vectors nohead lw 1 dt 2 lc rgb \"#bbbbbb\" title \"%s\", "
                    "\\\n"
                    "    $d%d using ($%d > 0 ? $%d : NaN):%d:($%d - $%d):($%d - $%d):%d "
                    "with vectors nohead lw 3 lc palette title \"open (colour: %s)\", \\\n"
                    "    $d%d using %d:%d with points pt 7 ps 1.8 lc rgb \"#444444\" notitle, \\\n"
                    "    $d%d using %d:%d with points pt 7 ps 1.8 lc rgb \"#444444\" notitle, \\\n"
                    "    $d%d using %d:%d:%d with labels offset 0,0.9 notitle, \\\n"
                    "    $d%d using %d:%d:%d with labels offset 0,0.9 notitle\n",
                    k + 1, z, x1, y1, x2, x1, y2, y1, closed,                  /* closed */
                    k + 1, z, x1, y1, x2, x1, y2, y1, z, z_name,               /* open */
                    k + 1, x1, y1, k + 1, x2, y2,                              /* nodes */
                    k + 1, x1, y1, col[SRC] + 1, k + 1, x2, y2, col[DST] + 1); /* labels */
            k++;
        }
    }
    fprintf(f, "\nunset multiplot\n");
    mem_free(panels);
    if (ferror(f)) return err_set(err, ERR_FAIL, "cannot write the script of %s", job->fig->name);
    return 0;
}
