/* spec_history.c -- `mtlab ls --history EXPERIMENT`: every spec text an
 * experiment was run with (the spec table, schema version 9), with the
 * trials each added and the line diff from the one before. */
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/mem.h"
#include "store/store.h"
#include "sweep/specdiff.h"

/* Prints text with each line prefixed by `indent`. */
static void print_indented(FILE *f, const char *indent, const char *text) {
    for (const char *line = text; line && *line;) {
        const char *nl = strchr(line, '\n');
        int len = nl ? (int)(nl - line) : (int)strlen(line);
        fprintf(f, "%s%.*s\n", indent, len, line);
        line += len + (nl != NULL);
    }
}

int cli_spec_history(store_t *s, const char *experiment, FILE *f, err_t *err) {
    sqlite3 *db = store_db(s);
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db,
                           "SELECT p.id, p.created, p.code_version, p.draws, p.overrides, p.text, "
                           "(SELECT count(*) FROM trial t WHERE t.spec_id = p.id), e.name, "
                           "p.id = (SELECT max(id) FROM spec WHERE experiment_id = e.id) "
                           "FROM spec p JOIN experiment e ON e.id = p.experiment_id "
                           "WHERE e.name = ?1 OR CAST(e.id AS TEXT) = ?1 ORDER BY p.id",
                           -1, &q, NULL) != SQLITE_OK)
        return err_set(err, ERR_FAIL, "cannot read the spec history: %s", sqlite3_errmsg(db));
    sqlite3_bind_text(q, 1, experiment, -1, SQLITE_STATIC);
    char *previous = NULL;
    int n = 0, rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *text = (const char *)sqlite3_column_text(q, 5);
        const char *overrides = (const char *)sqlite3_column_text(q, 4);
        const char *created = (const char *)sqlite3_column_text(q, 1);
        const char *version = (const char *)sqlite3_column_text(q, 2);
        if (n == 0)
            fprintf(f, "experiment %s: spec history (oldest first)\n",
                    (const char *)sqlite3_column_text(q, 7));
        fprintf(f, "\nspec %" PRId64 "%s: registered %s by mtlab %s; draws %s; added %d trials\n",
                (int64_t)sqlite3_column_int64(q, 0), sqlite3_column_int(q, 8) ? " (current)" : "",
                created ? created : "?", version ? version : "?",
                (const char *)sqlite3_column_text(q, 3), sqlite3_column_int(q, 6));
        if (overrides && overrides[0]) {
            fprintf(f, "  overrides:\n");
            print_indented(f, "    ", overrides);
        }
        if (previous) {
            int changed = 0;
            char *diff = specdiff_text(previous, text ? text : "", &changed);
            if (!diff) {
                sqlite3_finalize(q);
                mem_free(previous);
                return err_set(err, ERR_FAIL, "out of memory");
            }
            fprintf(f, "  changes from the spec before (%d lines):\n", changed);
            print_indented(f, "    ", diff);
            mem_free(diff);
        }
        mem_free(previous);
        previous = mem_strdup(text ? text : "");
        n++;
    }
    sqlite3_finalize(q);
    mem_free(previous);
    if (rc != SQLITE_DONE)
        return err_set(err, ERR_FAIL, "cannot read the spec history: %s", sqlite3_errmsg(db));
    if (n == 0)
        return err_set(err, ERR_USAGE, "no experiment '%s' (mtlab ls lists them)", experiment);
    sqlite3_stmt *old;
    if (sqlite3_prepare_v2(db,
                           "SELECT count(*) FROM trial t JOIN experiment e ON e.id = "
                           "t.experiment_id WHERE (e.name = ?1 OR CAST(e.id AS TEXT) = ?1) AND "
                           "t.spec_id IS NULL",
                           -1, &old, NULL) == SQLITE_OK) {
        sqlite3_bind_text(old, 1, experiment, -1, SQLITE_STATIC);
        if (sqlite3_step(old) == SQLITE_ROW && sqlite3_column_int(old, 0) > 0)
            fprintf(f,
                    "\n%d trials were registered before the spec history (schema version 9): "
                    "which spec added them is not known\n",
                    sqlite3_column_int(old, 0));
        sqlite3_finalize(old);
    }
    return 0;
}
