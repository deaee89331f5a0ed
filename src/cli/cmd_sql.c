/* cmd_sql.c -- `mtlab sql "SELECT ..."`: one query on a store opened
 * read-only (store.h), printed as an aligned table or as CSV while it runs
 * (store_query_print: memory does not grow with the result).  Statements
 * that could write anything are refused before they run (query.h). */
#include <stdbool.h>
#include <stdio.h>

#include "cli/cli.h"
#include "cli/opts.h"
#include "store/query.h"
#include "store/store.h"

int cmd_sql(int argc, char **argv) {
    const char *db = "results.db";
    bool csv = false;
    opt_t opts[] = {
        {"db", OPT_STRING, &db, "FILE", "the SQLite store", 1, 0, 0},
        {"csv", OPT_FLAG, &csv, NULL, "print CSV (header row, RFC 4180 quoting) instead of a table",
         1, 0, 0},
    };
    const int n_opts = (int)(sizeof opts / sizeof opts[0]);
    err_t err = {0};
    const char *pos[1];
    int n_pos;
    int rc = cli_options(
        "sql", "mtlab sql QUERY [--db FILE] [--csv]",
        "Runs one SQL query on the store, read-only, and prints its rows as they come\n"
        "(a table's column widths are those of its first rows).\n"
        "Tables and views: sql/schema.sql (v_final, v_curve, v_best_lr, ...). Example:\n"
        "  mtlab sql \"SELECT model, avg(value) FROM v_final WHERE name='test/loss/t1' "
        "GROUP BY model\"",
        opts, n_opts, argc, argv, pos, 1, &n_pos);
    if (rc != CLI_CONTINUE) return rc;
    if (n_pos == 0) {
        err_set(&err, ERR_USAGE, "missing QUERY (see mtlab sql --help)");
        return cli_fail("sql", &err);
    }

    store_t *s;
    if (store_open(&s, db, STORE_READONLY, &err)) return cli_fail("sql", &err);
    int status = 0;
    if (store_query_print(s, pos[0], csv ? STORE_PRINT_CSV : STORE_PRINT_TABLE, stdout, NULL, &err))
        status = cli_fail("sql", &err);
    store_close(s);
    if (status == 0 && (fflush(stdout) != 0 || ferror(stdout))) {
        err_set(&err, ERR_FAIL, "cannot write to standard output");
        status = cli_fail("sql", &err);
    }
    return status;
}
