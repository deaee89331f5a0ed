/* plot.h -- the papers' figures and tables, redrawn from a store.
 *
 * A registry maps a name ("mmoe-fig4") to a figure or a table.  Each entry
 * runs ONE SQL query, kept readable in sql/figures/NAME.sql (compiled into
 * the binary, see core/embedded.h), with named parameters bound from the
 * entry's defaults or the caller's overrides:
 *   :experiment  the experiment the entry reads ("mmoe-fig4")
 *   :metric      the metric it draws ("test/loss/t1")
 *   :bins        histogram bins (mmoe-fig5)
 *   :band        the band around a curve figure's lines (mmoe-fig3, -fig4):
 *                ci95 (default), se, sd or none -- its lo and hi columns
 * A figure becomes DIR/NAME.gp: a self-contained gnuplot 5 script holding
 * the query's rows inline as datablocks, that sets its own terminal and
 * writes DIR/NAME.png (svg, pdf) next to itself when run as
 * `gnuplot DIR/NAME.gp`; plot_make then runs gnuplot when it is installed.
 * A table becomes DIR/NAME.md (markdown) or DIR/NAME.csv.
 *
 * The script draws exactly the rows of the query, in query order: every
 * datablock line is one result row, every column printed as the shortest
 * text that reads back to the same double (text columns double-quoted,
 * NULL as NaN).  To preview on another terminal, define keep_terminal:
 *   gnuplot -p -e "keep_terminal = 1; set terminal qt" plots/mmoe-fig4.gp
 *
 * Functions return 0, or -1 with *err (ERR_USAGE for a bad name or format,
 * ERR_FAIL otherwise), or PLOT_NO_EXPERIMENT when the store does not hold
 * the entry's experiment (*err then says which sweep to run). */
#ifndef MTLAB_PLOT_H
#define MTLAB_PLOT_H

#include <stdbool.h>
#include <stdio.h>

#include "core/err.h"
#include "store/query.h"
#include "store/store.h"

/* Returned (with *err) when the entry's experiment is not in the store. */
#define PLOT_NO_EXPERIMENT (-2)

typedef enum { PLOT_FIGURE, PLOT_TABLE } plot_kind_t;

struct plot_layout; /* how a figure is drawn (plot/figures.c) */

typedef struct {
    const char *name;                 /* "mmoe-fig4": the CLI name and the output file stem */
    plot_kind_t kind;                 /* a gnuplot figure or a markdown/CSV table */
    const char *description;          /* one line, for `mtlab plot --list` */
    const char *sql;                  /* its query: "sql/figures/mmoe-fig4.sql" */
    const char *experiment;           /* default :experiment */
    const char *metric;               /* default :metric (NULL when the query has none) */
    const char *sweep;                /* the sweep file that makes the experiment (for messages) */
    const struct plot_layout *layout; /* figures only */
} plot_figure_t;

/* ---- the registry ------------------------------------------------------ */

/* Every figure and table, in a fixed order; *n receives the count. */
const plot_figure_t *plot_registry(int *n);
/* The entry called `name`, or NULL. */
const plot_figure_t *plot_find(const char *name);

/* ---- making figures and tables ----------------------------------------- */

/* Overrides of an entry's defaults; NULL / 0 fields keep the default. */
typedef struct {
    const char *experiment;
    const char *metric;
    int bins; /* default PLOT_DEFAULT_BINS */
    const char *band; /* :band of the curve figures: "ci95" (default), "se", "sd" or "none" */
} plot_params_t;

#define PLOT_DEFAULT_BINS 20
#define PLOT_DEFAULT_BAND "ci95"


/* What plot_make wrote. */
typedef struct {
    char script[4096];         /* DIR/NAME.gp (figures), else "" */
    char image[4096];          /* DIR/NAME.png|svg|pdf once rendered, else "" */
    char table[4096];          /* DIR/NAME.md|csv (tables), else "" */
    int n_rows;                /* rows the query returned */
    bool rendered;             /* gnuplot ran and wrote image */
    bool no_gnuplot;           /* rendering was asked for but gnuplot is not installed */
    char gnuplot_stderr[2048]; /* what a successful gnuplot printed (warnings), else "" */
} plot_output_t;

/* Runs entry `name` on the store at db_path (opened read-only) and writes
 * its file(s) into out_dir (created when missing).  Figures: format "png"
 * (default when NULL), "svg" or "pdf" -- the terminal the script sets -- and,
 * when render is true and gnuplot is on the PATH, runs `gnuplot
 * DIR/NAME.gp` (its stderr in *err when it fails).  Tables: format "md"
 * (default, also for any figure format) or "csv"; render is ignored.
 * Errors: unknown name or format (ERR_USAGE), missing store (ERR_FAIL),
 * PLOT_NO_EXPERIMENT, an experiment without any row to draw (ERR_FAIL). */
int plot_make(const char *db_path, const char *name, const char *out_dir, const char *format,
              bool render, plot_output_t *out, err_t *err);
/* The same with overrides (params may be NULL). */
int plot_make_with(const char *db_path, const char *name, const plot_params_t *params,
                   const char *out_dir, const char *format, bool render, plot_output_t *out,
                   err_t *err);

/* Prints table `name` to f as markdown ("md", default when NULL) or "csv".
 * A figure name prints the figure's rows (CSV is the useful choice). */
int plot_table(const char *db_path, const char *name, const char *format, FILE *f, err_t *err);
int plot_table_with(const char *db_path, const char *name, const plot_params_t *params,
                    const char *format, FILE *f, err_t *err);

/* ---- building blocks (for tests and tools) ----------------------------- */

/* Runs the entry's query on an open store with its parameters bound; values
 * are formatted as in store/query.h (reals: shortest round-trip text). */
int plot_query(store_t *s, const plot_figure_t *fig, const plot_params_t *params,
               store_table_t **out, err_t *err);

/* Whether gnuplot is on the PATH. */
bool plot_have_gnuplot(void);

/* Runs `gnuplot script`, which must write `image`: sets out->rendered,
 * out->image and out->gnuplot_stderr, or out->no_gnuplot (and returns 0)
 * when gnuplot is not installed.  -1 with *err when it fails. */
int plot_render(const char *script, const char *image, plot_output_t *out, err_t *err);

#endif
