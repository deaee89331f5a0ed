/* cmd_export.c -- `mtlab export --csv DIR`: every table of a store as one CSV
 * file each (header row, libcsv quoting), for pandas, R or a spreadsheet;
 * `mtlab export --runs EXP`: the runs table of one experiment (mtlab trials)
 * as one CSV, for pandas.read_csv. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/opts.h"
#include "core/files.h"
#include "core/mem.h"
#include "store/query.h"
#include "store/store.h"

static void print_file(void *ctx, const char *path, long rows) {
    (void)ctx;
    printf("wrote %s (%ld rows)\n", path, rows);
}

/* The runs table of `experiment` as CSV: on stdout, or DIR/EXP-runs.csv
 * when dir is given (the path then printed as the tables' are). */
static int export_runs(store_t *s, const char *experiment, const char *dir, err_t *err) {
    char *sql;
    if (cli_runs_query(s, experiment, false, NULL, NULL, NULL, &sql, err)) return -1;
    FILE *f = stdout;
    char path[1200] = "";
    if (dir) {
        int len = (int)strlen(dir);
        while (len > 1 && dir[len - 1] == '/')
            len--;
        snprintf(path, sizeof path, "%.*s/%s-runs.csv", len, dir, experiment);
        if (files_make_dirs(dir, err) || !(f = fopen(path, "w"))) {
            mem_free(sql);
            if (f) return -1;
            return err_set(err, ERR_FAIL, "cannot write %s: %s", path, strerror(errno));
        }
    }
    long rows;
    int rc = store_query_print(s, sql, STORE_PRINT_CSV, f, &rows, err);
    mem_free(sql);
    if (dir) {
        if (fclose(f) != 0 && rc == 0)
            rc = err_set(err, ERR_FAIL, "cannot write %s: %s", path, strerror(errno));
        if (rc == 0) print_file(NULL, path, rows);
    }
    return rc;
}

int cmd_export(int argc, char **argv) {
    const char *db = "results.db", *dir = NULL, *runs = NULL;
    bool blobs = false;
    opt_t opts[] = {
        {"csv", OPT_STRING, &dir, "DIR", "directory of the CSV files (created when needed)", 1, 0,
         0},
        {"db", OPT_STRING, &db, "FILE", "the SQLite store", 1, 0, 0},
        {"blobs", OPT_FLAG, &blobs, NULL,
         "also write the parameter blobs, hex, as weights.data (large)", 1, 0, 0},
        {"runs", OPT_STRING, &runs, "EXP",
         "only the runs table of experiment EXP (mtlab trials EXP): to standard output, or "
         "DIR/EXP-runs.csv with --csv",
         1, 0, 0},
    };
    const int n_opts = (int)(sizeof opts / sizeof opts[0]);
    err_t err = {0};
    const char *pos[1];
    int n_pos;
    int rc = cli_options(
        "export", "mtlab export --csv DIR [--db FILE] [--blobs] | --runs EXP [--csv DIR]",
        "Writes DIR/TABLE.csv for every table of the store (meta, experiment, trial,\n"
        "param, metric, gate, gate_hist, route, route_step, tensor, weights, tag, note).\n"
        "weights.csv holds trial_id, dtype, n and the blob's size in bytes; --blobs\n"
        "adds the blob.\n"
        "With --runs EXP: the runs table of one experiment (one row per trial, varying\n"
        "keys and final metrics as columns, numbers bare), e.g. for pandas:\n"
        "  mtlab export --runs grid > runs.csv   # pandas.read_csv('runs.csv')",
        opts, n_opts, argc, argv, pos, 0, &n_pos);
    if (rc != CLI_CONTINUE) return rc;
    if (!dir && !runs) {
        err_set(&err, ERR_USAGE, "missing --csv DIR or --runs EXP (see mtlab export --help)");
        return cli_fail("export", &err);
    }
    if (runs && blobs) {
        err_set(&err, ERR_USAGE, "--blobs applies to the tables, not to --runs");
        return cli_fail("export", &err);
    }

    store_t *s;
    if (store_open(&s, db, STORE_READONLY, &err)) return cli_fail("export", &err);
    int status = 0;
    if (runs ? export_runs(s, runs, dir, &err)
             : store_export_csv(s, dir, blobs, print_file, NULL, &err))
        status = cli_fail("export", &err);
    store_close(s);
    if (status == 0 && (fflush(stdout) != 0 || ferror(stdout))) {
        err_set(&err, ERR_FAIL, "cannot write to standard output");
        status = cli_fail("export", &err);
    }
    return status;
}
