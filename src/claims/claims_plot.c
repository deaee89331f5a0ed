/* claims_plot.c -- the claims table drawn as a gnuplot 5 script: one row
 * of boxes per claim, one box per condition, coloured by verdict (green
 * holds, red fails, grey undecided, white no data) and labelled with the
 * condition and the support; or the summary, one box per claim and part of
 * the condition, its colour the verdicts' colours mixed by their counts. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "claims/claims.h"
#include "core/mem.h"
#include "plot/gp.h"

static const char *const verdict_rgb[] = {
    [CLAIM_HOLDS] = "#1a9850",
    [CLAIM_FAILS] = "#d73027",
    [CLAIM_UNDECIDED] = "#bdbdbd",
    [CLAIM_NO_DATA] = "#ffffff",
};

/* One box of the grid: column col of row row, its fill and two labels. */
typedef struct {
    int col, row;
    unsigned rgb;
    char top[256], bottom[128];
} cell_t;

static unsigned hex_rgb(const char *hex) {
    unsigned rgb = 0;
    sscanf(hex + 1, "%x", &rgb);
    return rgb;
}

/* Writes the grid: rows labelled row_label[0..n_rows), one box per cell. */
static int write_grid(const char *path, const char *experiment, const char *comment,
                      const char *const *row_label, int n_rows, const cell_t *cells, int n_cells,
                      err_t *err) {
    size_t len = strlen(path);
    if (len < 4 || strcmp(path + len - 3, ".gp") != 0)
        return err_set(err, ERR_USAGE, "--plot %s: the script's name must end in .gp", path);
    int max_col = 1;
    for (int i = 0; i < n_cells; i++)
        if (cells[i].col + 1 > max_col) max_col = cells[i].col + 1;
    FILE *f = fopen(path, "w");
    if (!f) return err_set(err, ERR_FAIL, "cannot write %s: %s", path, strerror(errno));
    const int width = 260 + 300 * max_col, height = 120 + 70 * (n_rows ? n_rows : 1);
    fprintf(f, "# mtlab claims %s: %s\n", experiment, comment);
    fprintf(f,
            "if (!exists(\"keep_terminal\")) {\n"
            "    if (strstrt(GPVAL_TERMINALS, \"pngcairo\") > 0) {\n"
            "        set terminal pngcairo size %d,%d font \"sans,9\"\n"
            "    } else {\n"
            "        set terminal png size %d,%d\n"
            "    }\n"
            "    set output ",
            width, height, width, height);
    char image[4096];
    snprintf(image, sizeof image, "%.*s.png", (int)(len - 3), path);
    gp_put_quoted(f, image);
    fprintf(f, "\n}\nset termoption noenhanced\nset title ");
    char title[512];
    snprintf(title, sizeof title, "Claims on %s", experiment);
    gp_put_quoted(f, title);
    fprintf(f,
            "\nunset key\nunset xtics\nset border 0\nset xrange [-0.5:%d.5]\n"
            "set yrange [%d:-0.5]\nset lmargin 30\nset ytics scale 0 (",
            max_col - 1, n_rows ? n_rows : 1);
    for (int r = 0; r < n_rows; r++) { /* y: the row index, top down */
        fprintf(f, "%s", r ? ", " : "");
        gp_put_quoted(f, row_label[r]);
        fprintf(f, " %d", r);
    }
    fprintf(f, ")\n$cells << EOD\n");
    for (int i = 0; i < n_cells; i++) {
        fprintf(f, "%d %d %u ", cells[i].col, cells[i].row, cells[i].rgb);
        gp_put_quoted(f, cells[i].top);
        fputc(' ', f);
        gp_put_quoted(f, cells[i].bottom);
        fputc('\n', f);
    }
    fprintf(f, "EOD\n"
               "plot $cells using 1:2:(0.48):(0.42):3 with boxxyerror fill solid 1 "
               "border lc rgb \"black\" lc rgb variable, \\\n"
               "     $cells using 1:2:4 with labels offset 0,0.6 font \",8\", \\\n"
               "     $cells using 1:2:5 with labels offset 0,-0.6 font \",8\"\n");
    if (fclose(f) != 0) return err_set(err, ERR_FAIL, "cannot write %s: %s", path, strerror(errno));
    return 0;
}

/* The row labels (claims in order of first appearance) and each result's
 * cell: conditions differ between claims ("moe=omoe", "correlation=0.5
 * vs=mmoe"), so each row has its own boxes rather than a shared axis. */
int claims_plot(const claims_t *c, const char *experiment, const char *path, err_t *err) {
    cell_t *cells = mem_calloc(c->n ? c->n : 1, sizeof *cells);
    const char **rows = mem_calloc(c->n ? c->n : 1, sizeof *rows);
    if (!cells || !rows) {
        mem_free(cells);
        mem_free(rows);
        return err_set(err, ERR_FAIL, "out of memory");
    }
    int n_rows = 0;
    for (int i = 0, col = 0; i < c->n; i++, col++) {
        const claim_result_t *r = &c->rows[i];
        if (i == 0 || strcmp(r->claim, c->rows[i - 1].claim) != 0) {
            rows[n_rows++] = r->claim;
            col = 0;
        }
        cell_t *x = &cells[i];
        x->col = col;
        x->row = n_rows - 1;
        x->rgb = hex_rgb(verdict_rgb[r->verdict]);
        snprintf(x->top, sizeof x->top, "%s",
                 r->condition && r->condition[0] ? r->condition : "(all)");
        if (isnan(r->support))
            snprintf(x->bottom, sizeof x->bottom, "%s", claim_verdict_name(r->verdict));
        else
            snprintf(x->bottom, sizeof x->bottom, "%s, support %.2f",
                     claim_verdict_name(r->verdict), r->support);
    }
    int rc = write_grid(path, experiment,
                        "every claim (row) under every condition (box), coloured by\n"
                        "# verdict: green holds, red fails, grey undecided, white no data; the "
                        "label\n# gives the condition and the bootstrap support.",
                        rows, n_rows, cells, c->n, err);
    mem_free(cells);
    mem_free(rows);
    return rc;
}

/* The summary (claims_summary's table): one box per claim and part, its
 * colour the verdicts' colours mixed in proportion to their counts. */
int claims_plot_summary(const store_table_t *t, const char *experiment, const char *path,
                        err_t *err) {
    cell_t *cells = mem_calloc(t->n_rows ? t->n_rows : 1, sizeof *cells);
    const char **rows = mem_calloc(t->n_rows ? t->n_rows : 1, sizeof *rows);
    if (!cells || !rows) {
        mem_free(cells);
        mem_free(rows);
        return err_set(err, ERR_FAIL, "out of memory");
    }
    int n_rows = 0;
    for (int i = 0, col = 0; i < t->n_rows; i++, col++) {
        const char *claim = store_table_cell(t, i, 0);
        if (i == 0 || strcmp(claim, store_table_cell(t, i - 1, 0)) != 0) {
            rows[n_rows++] = claim;
            col = 0;
        }
        /* columns: claim, where, conditions, holds, fails, undecided, no_data */
        const double n = atof(store_table_cell(t, i, 2));
        const int count[] = {[CLAIM_HOLDS] = atoi(store_table_cell(t, i, 3)),
                             [CLAIM_FAILS] = atoi(store_table_cell(t, i, 4)),
                             [CLAIM_UNDECIDED] = atoi(store_table_cell(t, i, 5)),
                             [CLAIM_NO_DATA] = atoi(store_table_cell(t, i, 6))};
        double mix[3] = {0, 0, 0};
        for (int v = 0; v <= CLAIM_NO_DATA; v++) {
            unsigned rgb = hex_rgb(verdict_rgb[v]);
            for (int k = 0; k < 3; k++)
                mix[k] += n > 0 ? count[v] / n * ((rgb >> (16 - 8 * k)) & 0xff) : 255;
        }
        cell_t *x = &cells[i];
        x->col = col;
        x->row = n_rows - 1;
        x->rgb = ((unsigned)lround(mix[0]) << 16) | ((unsigned)lround(mix[1]) << 8) |
                 (unsigned)lround(mix[2]);
        snprintf(x->top, sizeof x->top, "%s", store_table_cell(t, i, 1));
        snprintf(x->bottom, sizeof x->bottom, "%d holds, %d fails, %d undecided of %d",
                 count[CLAIM_HOLDS], count[CLAIM_FAILS], count[CLAIM_UNDECIDED], (int)n);
    }
    int rc = write_grid(path, experiment,
                        "per claim (row), its conditions counted by verdict, in all\n"
                        "# and per part of the condition (box); the colour mixes green (holds), "
                        "red\n# (fails) and grey (undecided) in proportion.",
                        rows, n_rows, cells, t->n_rows, err);
    mem_free(cells);
    mem_free(rows);
    return rc;
}
