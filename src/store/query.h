/* query.h -- reading a store: what `mtlab ls`, `show`, `sql` and `export`
 * need, so the commands only parse options and print.
 *
 * Values come back as text with their SQLite type: integers in decimal, reals
 * as the shortest text that reads back to the same double ("0.1", "1e-05",
 * "inf"), text as stored, blobs as lowercase hex, SQL NULL as a NULL pointer.
 * Writers take a FILE and report write errors (a full disk, a closed pipe). */
#ifndef MTLAB_STORE_QUERY_H
#define MTLAB_STORE_QUERY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/err.h"
#include "store/store.h"

/* The path the store was opened with (for messages). */
const char *store_path(const store_t *s);

/* ---- result rows ------------------------------------------------------- */

/* One row of a query, valid during the callback only. */
typedef struct {
    int n_cols;
    const char *const *names; /* [n_cols] column names */
    const int *types;         /* [n_cols] SQLITE_INTEGER, _FLOAT, _TEXT, _BLOB or _NULL */
    const char *const *cells; /* [n_cols] text as above; NULL for SQL NULL */
} store_row_t;

/* Called once per row; a nonzero return stops the query, which then returns
 * -1 with the callback's *err. */
typedef int (*store_row_fn)(void *ctx, const store_row_t *row, err_t *err);

/* Runs ONE SQL statement (trailing blanks, comments and ';' allowed; a
 * second statement is ERR_USAGE) and calls fn for each row; on_header (may be
 * NULL) is called once before the rows with the column names (rows is then
 * the names, types all SQLITE_TEXT), even when there are no rows.  SQL
 * errors are ERR_FAIL with SQLite's message.
 *
 * Only queries run: before it runs, a statement is refused (ERR_FAIL
 * "read-only: ... refused before it ran (PATH is opened read-only)") unless
 * it reads only -- SELECT (WITH, VALUES, EXPLAIN of those) and the pragmas
 * that report (table_info, user_version, ...).  INSERT, UPDATE, DELETE,
 * schema changes, ATTACH, DETACH, VACUUM (INTO), transactions and pragmas
 * that set a value are all refused, so no file is created or changed. */
int store_query_each(store_t *s, const char *sql, store_row_fn on_header, store_row_fn fn,
                     void *ctx, err_t *err);

/* A whole result in memory. */
typedef struct {
    int n_cols, n_rows;
    char **names; /* [n_cols] */
    int *types;   /* [n_rows * n_cols] */
    char **cells; /* [n_rows * n_cols], row-major; NULL for SQL NULL */
} store_table_t;

int store_query(store_t *s, const char *sql, store_table_t **out, err_t *err);
void store_table_free(store_table_t *t);
/* Cell (row, col), NULL for SQL NULL. */
const char *store_table_cell(const store_table_t *t, int row, int col);
int store_table_type(const store_table_t *t, int row, int col);

/* Aligned columns under a header line and a rule: numbers right-aligned,
 * reals as %.6g, NULL empty, blobs as "<N bytes>". */
int store_table_print(FILE *f, const store_table_t *t, err_t *err);
/* RFC 4180 CSV (libcsv quoting) with a header row: text quoted, numbers
 * bare and at full precision, NULL an empty field, blobs hex. */
int store_table_csv(FILE *f, const store_table_t *t, err_t *err);
/* One CSV line of n cells (types as in store_row_t). */
int store_csv_line(FILE *f, int n, const char *const *cells, const int *types, err_t *err);

/* ---- printing as the rows come (mtlab sql) ------------------------------ */

/* Rows store_query_print reads before it sizes the table's columns. */
#define STORE_PRINT_SAMPLE_ROWS 1000

typedef enum { STORE_PRINT_TABLE, STORE_PRINT_CSV } store_print_t;

/* Runs ONE statement as store_query_each does and prints its result to f
 * while it runs, in memory that does not grow with the number of rows:
 * CSV as store_table_csv, row by row; or the aligned table of
 * store_table_print, whose widths and numeric columns are decided on the
 * header and the first STORE_PRINT_SAMPLE_ROWS rows (so up to that many
 * rows the output is store_table_print's, byte for byte).  A later value
 * wider than its column is printed whole and shifts the rest of its own
 * line only.  *n_rows (may be NULL) receives the number of rows printed. */
int store_query_print(store_t *s, const char *sql, store_print_t format, FILE *f, long *n_rows,
                      err_t *err);

/* ---- what the commands show -------------------------------------------- */

/* One row per experiment (by id): id, name, trials, pending, running, done,
 * failed, created, description. */
int store_list_experiments(store_t *s, store_table_t **out, err_t *err);

/* Everything `mtlab show` prints about one trial.  Strings are owned (freed
 * by store_trial_info_free) and NULL when not recorded. */
typedef struct {
    int64_t id, experiment_id;
    char *experiment, *model, *config, *status, *error, *host, *started, *finished;
    int repeat;
    int64_t data_seed, init_seed, pid;
    bool has_pid, has_failed_step, has_final_step, has_n_params;
    int failed_step, final_step;
    int64_t n_params;
    /* NAN when not recorded */
    double seconds_data, seconds_train, seconds_gates, seconds_store;
    store_table_t *params;  /* key, value -- by key */
    store_table_t *metrics; /* name, value -- at final_step, by name */
    store_table_t *gates;   /* gate, expert, mean, std -- by gate, expert */
} store_trial_info_t;

/* ERR_FAIL "no trial N in PATH" when there is none. */
int store_trial_info(store_t *s, int64_t trial_id, store_trial_info_t *out, err_t *err);
void store_trial_info_free(store_trial_info_t *info);

/* ---- export ------------------------------------------------------------ */

/* Writes DIR/TABLE.csv for every table of the schema (found in sqlite_master:
 * meta, experiment, trial, param, metric, ..., weights, run), creating DIR
 * (and its parents) when needed.  weights.csv holds trial_id, dtype, n and
 * bytes (the blob's size); with_blobs adds the blob itself as a hex column
 * `data` (large).  on_file (may be NULL) is told each file and its row count
 * once it is complete. */
int store_export_csv(store_t *s, const char *dir, bool with_blobs,
                     void (*on_file)(void *ctx, const char *path, long rows), void *ctx,
                     err_t *err);

#endif
