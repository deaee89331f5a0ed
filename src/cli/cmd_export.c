/* cmd_export.c -- `mtlab export --csv DIR`: every table of a store as one CSV
 * file each (header row, libcsv quoting), for pandas, R or a spreadsheet. */
#include <stdbool.h>
#include <stdio.h>

#include "cli/cli.h"
#include "cli/opts.h"
#include "store/query.h"
#include "store/store.h"

static void print_file(void *ctx, const char *path, long rows) {
    (void)ctx;
    printf("wrote %s (%ld rows)\n", path, rows);
}

int cmd_export(int argc, char **argv) {
    const char *db = "results.db", *dir = NULL;
    bool blobs = false;
    opt_t opts[] = {
        {"csv", OPT_STRING, &dir, "DIR", "directory of the CSV files (created when needed)", 1, 0,
         0},
        {"db", OPT_STRING, &db, "FILE", "the SQLite store", 1, 0, 0},
        {"blobs", OPT_FLAG, &blobs, NULL,
         "also write the parameter blobs, hex, as weights.data (large)", 1, 0, 0},
    };
    const int n_opts = (int)(sizeof opts / sizeof opts[0]);
    err_t err = {0};
    const char *pos[1];
    int n_pos;
    int rc = cli_options(
        "export", "mtlab export --csv DIR [--db FILE] [--blobs]",
        "Writes DIR/TABLE.csv for every table of the store (meta, experiment, trial,\n"
        "param, metric, gate, gate_hist, route, tensor, weights).  weights.csv holds\n"
        "trial_id, dtype, n and the blob's size in bytes; --blobs adds the blob itself.",
        opts, n_opts, argc, argv, pos, 0, &n_pos);
    if (rc != CLI_CONTINUE) return rc;
    if (!dir) {
        err_set(&err, ERR_USAGE, "missing --csv DIR (see mtlab export --help)");
        return cli_fail("export", &err);
    }

    store_t *s;
    if (store_open(&s, db, STORE_READONLY, &err)) return cli_fail("export", &err);
    int status = 0;
    if (store_export_csv(s, dir, blobs, print_file, NULL, &err)) status = cli_fail("export", &err);
    store_close(s);
    if (status == 0 && (fflush(stdout) != 0 || ferror(stdout))) {
        err_set(&err, ERR_FAIL, "cannot write to standard output");
        status = cli_fail("export", &err);
    }
    return status;
}
