/* cmd_ls.c -- `mtlab ls`: the experiments of a store with their trial counts
 * by status, one row each. */
#include <stdio.h>

#include "cli/cli.h"
#include "core/mem.h"
#include "cli/opts.h"
#include "store/query.h"
#include "store/store.h"

int cmd_ls(int argc, char **argv) {
    const char *db = "results.db", *history = NULL;
    opt_t opts[] = {
        {"db", OPT_STRING, &db, "FILE", "the SQLite store", 1, 0, 0},
        {"history", OPT_STRING, &history, "EXPERIMENT",
         "every spec text the experiment (name or id) was run with: overrides, draw rule, "
         "trials added, and the diff from the one before",
         1, 0, 0},
    };
    const int n_opts = (int)(sizeof opts / sizeof opts[0]);
    err_t err = {0};
    const char *pos[1];
    int n_pos;
    int rc = cli_options("ls", "mtlab ls [--db FILE] [--history EXPERIMENT]",
                         "Lists the experiments of a store: id, name, trials by status (pending,\n"
                         "running, done, failed), when it was created and its description.",
                         opts, n_opts, argc, argv, pos, 0, &n_pos);
    if (rc != CLI_CONTINUE) return rc;

    store_t *s;
    if (store_open(&s, db, STORE_READONLY, &err)) return cli_fail("ls", &err);
    store_table_t *t = NULL;
    int status = 0;
    if (history) {
        if (cli_spec_history(s, history, stdout, &err)) status = cli_fail("ls", &err);
    } else if (store_list_experiments(s, &t, &err)) {
        status = cli_fail("ls", &err);
    } else if (t->n_rows == 0) {
        printf("%s: no experiments yet (mtlab run SWEEP.ini --db %s adds one)\n", db, db);
    } else if (store_table_print(stdout, t, &err)) {
        status = cli_fail("ls", &err);
    }
    store_table_free(t);
    store_close(s);
    if (status == 0 && (fflush(stdout) != 0 || ferror(stdout))) {
        err_set(&err, ERR_FAIL, "cannot write to standard output");
        status = cli_fail("ls", &err);
    }
    return status;
}
