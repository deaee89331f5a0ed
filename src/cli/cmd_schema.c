/* cmd_schema.c -- `mtlab schema`: the schema of a store as SQLite holds it
 * (tables, then indexes, then views, each in the order created), so what
 * `mtlab sql` and pandas can query is one command away.  With no store at
 * --db, the schema a new store gets (made in a temporary directory). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/opts.h"
#include "store/query.h"
#include "store/store.h"

static int print_schema(store_t *s, err_t *err) {
    store_table_t *t;
    if (store_query(s,
                    "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL "
                    "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
                    "ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 ELSE 2 END, rowid",
                    &t, err))
        return -1;
    store_table_t *v;
    if (store_query(s, "SELECT value FROM meta WHERE key = 'schema_version'", &v, err)) {
        store_table_free(t);
        return -1;
    }
    printf("-- schema version %s (sql/schema.sql, sql/migrations/, sql/views.sql explain it)\n",
           v->n_rows ? store_table_cell(v, 0, 0) : "?");
    for (int r = 0; r < t->n_rows; r++)
        printf("%s;\n", store_table_cell(t, r, 0));
    store_table_free(v);
    store_table_free(t);
    return 0;
}

/* A new store in a temporary directory, printed and removed. */
static int print_new_schema(const char *db, err_t *err) {
    char dir[] = "/tmp/mtlab-schema-XXXXXX", path[64], side[80];
    if (!mkdtemp(dir)) return err_set(err, ERR_FAIL, "cannot make a temporary directory");
    snprintf(path, sizeof path, "%s/new.db", dir);
    store_t *s;
    int rc = store_open(&s, path, 0, err);
    if (rc == 0) {
        printf("-- %s does not exist: the schema of a new store\n", db);
        rc = print_schema(s, err);
        store_close(s);
    }
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        snprintf(side, sizeof side, "%s%s", path, suffixes[i]);
        unlink(side);
    }
    rmdir(dir);
    return rc;
}

int cmd_schema(int argc, char **argv) {
    const char *db = "results.db";
    opt_t opts[] = {
        {"db", OPT_STRING, &db, "FILE", "the SQLite store", 1, 0, 0},
    };
    const int n_opts = (int)(sizeof opts / sizeof opts[0]);
    err_t err = {0};
    const char *pos[1];
    int n_pos;
    int rc = cli_options("schema", "mtlab schema [--db FILE]",
                         "Prints the schema of the store: every CREATE TABLE, INDEX and VIEW,\n"
                         "as SQLite holds it.  When FILE does not exist: a new store's schema.",
                         opts, n_opts, argc, argv, pos, 0, &n_pos);
    if (rc != CLI_CONTINUE) return rc;
    struct stat sb;
    int status = 0;
    if (stat(db, &sb) != 0) {
        if (print_new_schema(db, &err)) status = cli_fail("schema", &err);
    } else {
        store_t *s;
        if (store_open(&s, db, STORE_READONLY, &err)) return cli_fail("schema", &err);
        if (print_schema(s, &err)) status = cli_fail("schema", &err);
        store_close(s);
    }
    if (status == 0 && (fflush(stdout) != 0 || ferror(stdout))) {
        err_set(&err, ERR_FAIL, "cannot write to standard output");
        status = cli_fail("schema", &err);
    }
    return status;
}
