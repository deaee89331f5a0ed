/* cmd_trials.c -- `mtlab trials EXP`: the runs table of an experiment (one
 * row per trial, its varying keys and final metrics as columns; store/runs.h),
 * filtered, sorted and narrowed, as an aligned table, CSV, or the SQL query
 * itself for pandas.read_sql. */
#include <fnmatch.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/opts.h"
#include "core/mem.h"
#include "store/query.h"
#include "store/runs.h"
#include "store/store.h"
#include "sweep/keys.h"

/* "unknown column 'x'" with the closest column name, when one is close. */
static int unknown_column(const store_runs_t *r, const char *what, const char *name, err_t *err) {
    const char *near = sweep_suggest(name, (const char *const *)r->names, r->n);
    if (near)
        return err_set(err, ERR_USAGE, "%s: no column '%s' (did you mean '%s'?)", what, name, near);
    return err_set(err, ERR_USAGE, "%s: no column '%s' (mtlab trials EXP --columns lists them)",
                   what, name);
}

/* Splits the comma-separated --cols into column names, each item a name or
 * a glob pattern (fnmatch: 'test/loss/' followed by '*'), in the order given, each column
 * once.  *names (caller frees the array; the strings are r's) and *n. */
static int expand_cols(const store_runs_t *r, const char *list, const char ***names, int *n,
                       err_t *err) {
    *names = mem_calloc((size_t)r->n + 1, sizeof **names);
    *n = 0;
    if (!*names) return err_set(err, ERR_FAIL, "out of memory");
    char item[256];
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        while (len > 0 && (*p == ' '))
            p++, len--;
        size_t end = len;
        while (end > 0 && p[end - 1] == ' ')
            end--;
        if (end >= sizeof item) return err_set(err, ERR_USAGE, "--cols: an item is too long");
        memcpy(item, p, end);
        item[end] = '\0';
        p += len;
        if (*p == ',') p++;
        if (!item[0]) continue;
        int matched = 0;
        for (int i = 0; i < r->n; i++) {
            if (fnmatch(item, r->names[i], 0) != 0) continue;
            matched++;
            bool have = false;
            for (int j = 0; j < *n; j++)
                have = have || (*names)[j] == r->names[i];
            if (!have) (*names)[(*n)++] = r->names[i];
        }
        if (!matched) return unknown_column(r, "--cols", item, err);
    }
    if (*n == 0) return err_set(err, ERR_USAGE, "--cols: no column named");
    return 0;
}

int cli_runs_query(store_t *s, const char *experiment, bool all_keys, const char *where,
                   const char *sort, const char *cols, char **sql, err_t *err) {
    *sql = NULL;
    int64_t id;
    if (store_find_experiment(s, experiment, &id, err)) return -1;
    store_runs_t r;
    if (store_runs_columns(s, id, all_keys, &r, err)) return -1;
    store_runs_select_t sel = {.where = where && where[0] ? where : NULL};
    const char **names = NULL;
    int status = 0;
    if (sort) {
        sel.descending = sort[0] == '-';
        sel.sort = sort + (sort[0] == '-' || sort[0] == '+');
        if (store_runs_find(&r, sel.sort) < 0) status = unknown_column(&r, "--sort", sel.sort, err);
    }
    if (status == 0 && cols) {
        status = expand_cols(&r, cols, &names, &sel.n_cols, err);
        sel.cols = names;
    }
    if (status == 0) status = store_runs_sql(&r, &sel, sql, err);
    mem_free(names);
    store_runs_free(&r);
    return status;
}

int cmd_trials(int argc, char **argv) {
    const char *db = "results.db", *where = NULL, *sort = NULL, *cols = NULL;
    bool csv = false, show_sql = false, all_keys = false, columns = false;
    opt_t opts[] = {
        {"db", OPT_STRING, &db, "FILE", "the SQLite store", 1, 0, 0},
        {"where", OPT_STRING, &where, "EXPR",
         "only the trials where the SQL condition holds, e.g. "
         "\"status = 'done' AND data.correlation >= 0.5\"",
         1, 0, 0},
        {"sort", OPT_STRING, &sort, "[-]COL", "sort by a column, smallest first ('-': largest)", 1,
         0, 0},
        {"cols", OPT_STRING, &cols, "LIST",
         "the columns to show, comma-separated names or globs ('trial,model,test/loss/*')", 1, 0,
         0},
        {"all-keys", OPT_FLAG, &all_keys, NULL, "every key as a column, not only those that vary",
         1, 0, 0},
        {"csv", OPT_FLAG, &csv, NULL, "print CSV (header row, numbers bare) instead of a table", 1,
         0, 0},
        {"sql", OPT_FLAG, &show_sql, NULL,
         "print the SQL query of the table instead of running it (for pandas.read_sql)", 1, 0, 0},
        {"columns", OPT_FLAG, &columns, NULL, "list the columns, one a line, and stop", 1, 0, 0},
    };
    const int n_opts = (int)(sizeof opts / sizeof opts[0]);
    err_t err = {0};
    const char *pos[1];
    int n_pos;
    int rc = cli_options(
        "trials",
        "mtlab trials EXPERIMENT [--where EXPR] [--sort [-]COL] [--cols LIST] [--csv] [--sql]",
        "Lists the trials of an experiment (its name, or its id), one row each: trial,\n"
        "model, repeat, status, tags, then every key that varies in the experiment\n"
        "(data.correlation, train.lr, ...) and every final metric (test/loss/t1, ...).\n"
        "Numbers stay numbers (in --csv too); a metric is empty for a trial without\n"
        "final metrics (failed, pending).  Column names may be written bare in --where.\n"
        "Examples:\n"
        "  mtlab trials grid --sort test/loss/total --cols 'trial,model,data.*,test/loss/*'\n"
        "  mtlab trials grid --where \"model = 'mmoe' AND train.lr < 0.01\" --csv > runs.csv",
        opts, n_opts, argc, argv, pos, 1, &n_pos);
    if (rc != CLI_CONTINUE) return rc;
    if (n_pos == 0) {
        err_set(&err, ERR_USAGE, "missing EXPERIMENT (mtlab ls lists them)");
        return cli_fail("trials", &err);
    }

    store_t *s;
    if (store_open(&s, db, STORE_READONLY, &err)) return cli_fail("trials", &err);
    int status = 0;
    char *sql = NULL;
    if (columns) {
        int64_t id;
        store_runs_t r;
        if (store_find_experiment(s, pos[0], &id, &err) ||
            store_runs_columns(s, id, all_keys, &r, &err)) {
            status = cli_fail("trials", &err);
        } else {
            for (int i = 0; i < r.n; i++)
                printf("%s\n", r.names[i]);
            store_runs_free(&r);
        }
    } else if (cli_runs_query(s, pos[0], all_keys, where, sort, cols, &sql, &err)) {
        status = cli_fail("trials", &err);
    } else if (show_sql) {
        printf("%s;\n", sql);
    } else if (store_query_print(s, sql, csv ? STORE_PRINT_CSV : STORE_PRINT_TABLE, stdout, NULL,
                                 &err)) {
        if (where) err_prefix(&err, "--where '%s'", where);
        status = cli_fail("trials", &err);
    }
    mem_free(sql);
    store_close(s);
    if (status == 0 && (fflush(stdout) != 0 || ferror(stdout))) {
        err_set(&err, ERR_FAIL, "cannot write to standard output");
        status = cli_fail("trials", &err);
    }
    return status;
}
