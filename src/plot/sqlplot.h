/* sqlplot.h -- a plot of any query: `mtlab plot --sql "SELECT ..." --x COL
 * --y COL [--group COL] [--band-lo COL --band-hi COL]`.
 *
 * The query runs read-only on the store (store/query.h).  Its rows are
 * split into lines by the value of the group column (lines in the order the
 * values first appear, each line's rows in query order: ORDER BY decides
 * how a line is drawn) and drawn as y over x, with a filled band from lo to
 * hi when given.  The script is self-contained like every mtlab figure
 * (plot/curves.h, plot/plot.h): its own terminal, the image next to it, and
 * the data inline -- one datablock per line whose rows are the query's rows
 * of that line, in order, with the drawn columns (x, y[, lo, hi]) printed as
 * the shortest text that reads back to the same double (NULL as NaN). */
#ifndef MTLAB_PLOT_SQLPLOT_H
#define MTLAB_PLOT_SQLPLOT_H

#include <stdio.h>

#include "core/err.h"
#include "store/store.h"

typedef struct {
    const char *db_path;    /* for the comments */
    const char *sql;        /* one read-only statement */
    const char *x, *y;      /* column names of the result */
    const char *group;      /* NULL: one line */
    const char *lo, *hi;    /* both or neither: the band */
    const char *title;      /* NULL: "Y by X" */
    const char *format;     /* "png", "svg" or "pdf" */
    const char *image_name; /* the image's file name, written next to the script */
} sqlplot_job_t;

/* Runs job->sql on s and writes the script to f; *n_lines receives the
 * number of lines drawn.  ERR_USAGE (the user's input is wrong) for an SQL
 * error (with SQLite's message), a column the result lacks (named, with the
 * columns it has), text where a number is drawn, or no rows. */
int sqlplot_write(store_t *s, const sqlplot_job_t *job, FILE *f, int *n_lines, err_t *err);

#endif
