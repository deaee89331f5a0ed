/* gp.h -- inside src/plot: how a figure is drawn, and the writer of its
 * gnuplot script (gp.c).  Not part of the public API (plot/plot.h).
 *
 * A figure's query returns typed columns (model, correlation, step, mean,
 * ...).  Its layout names which columns split the rows into panels (a grid
 * of `row` x `col` values) and lines (`series`), and which are drawn (x, y,
 * error, bin edges).  The writer turns every maximal run of rows with the
 * same panel and line into one datablock, so the script's data is the query
 * result in query order: the SQL's ORDER BY must keep those runs together.
 *
 * Labels are derived from the values: a key column that takes one value in
 * the whole result goes to the figure title ({fixed}), one that varies goes
 * to the panel titles or the legend.  Models print as the papers name them
 * (Shared-Bottom, OMoE, MMoE). */
#ifndef MTLAB_PLOT_GP_H
#define MTLAB_PLOT_GP_H

#include <stdio.h>

#include "core/err.h"
#include "plot/plot.h"
#include "store/query.h"

typedef enum {
    GP_LINES,      /* a line per series through (x, y) */
    GP_ERRORLINES, /* points joined by a line, error bars y +- err_scale * err */
    GP_HISTOGRAM,  /* filled boxes over the bins [lo, hi], height y */
    GP_BARS,       /* at each integer x, one bar per series of the panel, +- err */
    GP_STEPS,      /* a histogram outline per series over the bins [lo, hi] */
    GP_ROUTES,     /* a route graph per panel (routes_gp.c: gp_routes_write_script) */
    GP_HEATMAP,    /* a coloured cell per (x, y), colour and printed value z (gp_heatmap.c) */
} gp_style_t;

enum {
    GP_SHARE_Y = 1 << 0,    /* every panel has the same y range */
    GP_ROW_RANGES = 1 << 1, /* the panels of one grid row share their x and y ranges */
    GP_DIAGONAL = 1 << 3,   /* a dashed y = x reference line */
    GP_LOG_Y = 1 << 4,      /* logarithmic y axis */
    GP_INT_X = 1 << 5,      /* x takes integer values 1..n: a tic at each */
    GP_X_FROM_0 = 1 << 6,   /* x axis starts at 0 */
    GP_Y_FROM_0 = 1 << 7,   /* y axis starts at 0 */
    GP_LOG_X_AUTO = 1 << 8, /* with GP_ROW_RANGES: a log x axis for a row whose bins are > 0 */
    GP_LOG_X = 1 << 9,      /* logarithmic x axis (the query's x > 0) */
};

/* In title, xlabel and ylabel: {fixed} the key values shared by the whole
 * figure ("Shared-Bottom, lr 0.001"), {metric} the metric as words ("test
 * loss, task 1"), {runs} the runs behind a point ("200" or "180-200"),
 * {band} what the band is (", band: 95% CI of the mean"; "" for none). */
struct plot_layout {
    const char *title, *xlabel, *ylabel;
    const char *row, *col;   /* panel grid keys (NULL: one row / one column) */
    const char *series[4];   /* line keys, NULL-terminated */
    const char *note;        /* a column whose value is added to each line's label */
    const char *x, *y, *err; /* drawn columns; err may be NULL */
    double err_scale;        /* error bar half-height = err_scale * err */
    const char *lo, *hi;     /* bin edges (GP_HISTOGRAM, GP_STEPS) */
    const char *runs;        /* the column counting the runs behind a row, for {runs} */
    const char *line_title;  /* the legend text when there is one line (else none) */
    const char *key;         /* legend position: "top right", "top left", ... */
    gp_style_t style;
    int panel_w, panel_h; /* pixels per panel (png; svg and pdf scale alike) */
    unsigned flags;
    const char *band_lo, *band_hi; /* GP_LINES: a filled band between these columns under
                                      each line (a NULL cell: no band there) */
    const char *z;                 /* GP_HEATMAP: the column that colours a cell */
};

/* What the script is about, for its comments, title and output. */
typedef struct {
    const plot_figure_t *fig;
    const char *db_path;
    const char *experiment, *metric;
    const char *format;     /* "png", "svg" or "pdf" */
    const char *image_name; /* file name of the image, written next to the script */
    const char *band;       /* the band drawn (band_lo/hi): ci95, se, sd or none, for {band} */
} gp_job_t;

/* Writes the whole script for table t (the figure's query result). */
int gp_write_script(FILE *f, const gp_job_t *job, const store_table_t *t, err_t *err);
/* Writes s as a gnuplot double-quoted string (" and \\ escaped). */
void gp_put_quoted(FILE *f, const char *s);

/* The metric as words: "test/loss/t1" -> "test loss, task 1". */
void gp_metric_words(const char *metric, char *out, size_t size);

/* The parts every script shares, for writers of other layouts (routes_gp.c):
 * the terminal and output of job (a figure width x height pixels) and the
 * line styles and grid. */
void gp_put_terminal(FILE *f, const gp_job_t *job, int width, int height);
void gp_put_style(FILE *f);
/* The label of one key value, as in legends: "SNR-Trans", "between 0.5". */
void gp_value_label(const char *column, const char *cell, char *out, size_t size);
/* The route drawing (GP_ROUTES, routes_gp.c): a panel per (row, col) value
 * of the layout, each a graph of the rows' edges (x1, y1) -> (x2, y2)
 * coloured by z, with the node labels src_label and dst_label. */
int gp_routes_write_script(FILE *f, const gp_job_t *job, const store_table_t *t, err_t *err);
/* Heat maps (GP_HEATMAP, gp_heatmap.c): the frame of every panel (palette,
 * colour range over all of column cz, integer x and y tics, y = 1 on top),
 * written once after the figure title; and block k drawn as cells at (x, y)
 * coloured by z, each with its value printed.  Columns are 1-based. */
void gp_heatmap_frame(FILE *f, const store_table_t *t, int cx, int cy, int cz);
void gp_heatmap_item(FILE *f, int k, int cx, int cy, int cz);

#endif
