/* runs.h -- the runs table of an experiment: one row per trial, the keys
 * that vary in the experiment and the final metrics as typed columns
 * (`mtlab trials`, `mtlab export --runs`).
 *
 * The table is one SQL query over the long tables (param, metric, tag),
 * generated per experiment: its columns depend on which keys vary and which
 * metrics were recorded.  store_runs_sql writes that query, so the CLI, a
 * pandas user (pandas.read_sql(QUERY, con)) and `mtlab trials EXP --sql`
 * see the same thing.  Cells keep their SQLite types: params are numbers
 * when their text is one (store.h), metrics are reals, NULL when missing (a
 * key its family does not declare; a metric of a trial without a final
 * step).  A metric cell is the last value up to the trial's final step, not
 * only at it (v_final): the data measures recorded at step 0 belong to the
 * row too. */
#ifndef MTLAB_STORE_RUNS_H
#define MTLAB_STORE_RUNS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"
#include "store/store.h"

/* Finds an experiment by name, or by id when `name` is a positive integer
 * that is no experiment's name.  ERR_USAGE naming the store and listing
 * its experiments when there is none. */
int store_find_experiment(store_t *s, const char *name, int64_t *id, err_t *err);

/* The columns of an experiment's runs table, in order:
 *   trial, model, repeat, status, tags   (trial columns; tags: the trial's
 *                                         tags, space-separated, sorted)
 *   the varying keys                     ("data.correlation", "train.lr",
 *                                         ...: keys with more than one value,
 *                                         or present in some trials only;
 *                                         every key with all_keys), in
 *                                         config order; model.name is the
 *                                         model column
 *   the final metrics                    ("test/loss/t1", ...), by name: a
 *                                         trial's value is the metric's last
 *                                         one up to its final step (so the
 *                                         data measures of step 0,
 *                                         data/pearson/..., test/baseline/...,
 *                                         are there too); NULL when it has
 *                                         none (no final step: pending,
 *                                         running, or failed before any). */
typedef struct {
    int n;
    char **names;                   /* [n] column names */
    char **exprs;                   /* [n] their SQL expressions over `trial t` */
    int n_fixed, n_keys, n_metrics; /* n = n_fixed + n_keys + n_metrics */
    int64_t experiment_id;
} store_runs_t;

int store_runs_columns(store_t *s, int64_t experiment_id, bool all_keys, store_runs_t *out,
                       err_t *err);
void store_runs_free(store_runs_t *r);
/* Index of column `name`, or -1. */
int store_runs_find(const store_runs_t *r, const char *name);

/* What to select. */
typedef struct {
    const char *where;       /* an SQL condition over the columns, or NULL; a column
                                name may be written bare (data.correlation,
                                test/loss/t1): it is quoted as an identifier */
    const char *sort;        /* a column name, or NULL: by trial */
    bool descending;         /* sort largest first (NULLs stay last) */
    const char *const *cols; /* the columns to show, in order, or NULL: all */
    int n_cols;
} store_runs_select_t;

/* The query of the runs table (caller frees with mem_free).  ERR_USAGE for
 * a sort or shown column that is not one of r's. */
int store_runs_sql(const store_runs_t *r, const store_runs_select_t *sel, char **sql, err_t *err);

#endif
