/* curves.h -- learning curves of any experiment, grouped by any keys, with
 * a band: `mtlab plot --curves EXP --metric val/loss/total --group-by
 * model,data.correlation --band ci95`.
 *
 * The caller gives a query whose rows are (group key columns..., step,
 * value), ordered by the group keys then step (cli builds it on the runs
 * table, store/runs.h).  Every group becomes one line: at each step the n
 * non-NULL values of the group's trials give
 *   mean, sd   sample standard deviation (divides by n - 1; NaN for n < 2),
 *   se         sd / sqrt(n),
 * and the band mean +- half, half being sd, se or the 95 % confidence
 * half-width t(0.975, n - 1) * se (Student's t: the mean of n values of a
 * normal variable).  The script is self-contained like the paper figures'
 * (plot.h): the numbers inline as one datablock per group (step, n, mean,
 * sd, se, lo, hi), its own terminal, the image written next to it. */
#ifndef MTLAB_PLOT_CURVES_H
#define MTLAB_PLOT_CURVES_H

#include <stdio.h>

#include "core/err.h"
#include "store/store.h"

typedef enum { CURVES_BAND_NONE, CURVES_BAND_SD, CURVES_BAND_SE, CURVES_BAND_CI95 } curves_band_t;

/* "none", "sd", "se", "ci95" -> *out; -1 for anything else. */
int curves_band_parse(const char *name, curves_band_t *out);

/* The 0.975 quantile of Student's t with df degrees of freedom (df >= 1):
 * exact to 4 decimals up to 30, a Cornish-Fisher expansion above. */
double curves_t975(int df);

/* Mean, sample sd and se of x[0..n) (sd and se NaN when n < 2). */
void curves_stats(const double *x, int n, double *mean, double *sd, double *se);

typedef struct {
    const char *db_path, *experiment, *metric;
    const char *format;     /* "png", "svg" or "pdf" */
    const char *image_name; /* the image's file name, written next to the script */
    curves_band_t band;
    const char *origin; /* the command named in the script's first comment (NULL:
                           "mtlab plot --curves EXPERIMENT --metric METRIC") */
    const char *facet;  /* NULL, or the name of the query's FIRST key column: one
                           panel per value (a multiplot grid, in query order), the
                           other keys make the lines, coloured alike in every panel */
} curves_job_t;

/* Runs `sql` on s and writes the script to f.  *n_lines receives the
 * number of lines (groups) drawn.  ERR_USAGE when the query has no rows. */
int curves_write(store_t *s, const char *sql, const curves_job_t *job, FILE *f, int *n_lines,
                 err_t *err);

/* ---- shared with plot/sqlplot.c ------------------------------------------ */

/* The start of every curves-style script: the terminal for an image of cols
 * x rows panels and its output next to the script, the colours (8
 * linetypes), grid, tics and a legend below. */
void curves_put_preamble(FILE *f, const char *format, const char *image_name, int cols,
                         int rows);
/* A near-square grid for n panels: cols = ceil(sqrt(n)), rows to fit. */
void curves_grid(int panels, int *cols, int *rows);

#endif
