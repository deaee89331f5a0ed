/* curate.c -- tags, notes and removal (contract: curate.h).
 *
 * Removal walks the foreign keys downwards: to delete the rows of table P
 * that a condition selects, first delete, in every table C with a foreign
 * key C.from -> P.to, the rows whose `from` is among the selected rows'
 * `to` (recursively), then the rows of P.  The condition of a child is the
 * parent's wrapped in a subquery, so nothing is read twice into memory; the
 * set of trials to remove sits in a temporary table. */
#include "store/curate.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "core/mem.h"
#include "store/query.h"

#define RM_MAX_DEPTH 8 /* foreign keys nested deeper than this are refused */

static void now_iso(char out[32]) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int db_fail(store_t *s, err_t *err, const char *what) {
    return err_set(err, ERR_FAIL, "%s: %s: %s", store_path(s), what, sqlite3_errmsg(store_db(s)));
}

static int exec(store_t *s, const char *sql, const char *what, err_t *err) {
    if (sqlite3_exec(store_db(s), sql, NULL, NULL, NULL) != SQLITE_OK) return db_fail(s, err, what);
    return 0;
}

static int begin(store_t *s, err_t *err) {
    return exec(s, "BEGIN IMMEDIATE", "cannot start a write transaction", err);
}

static void rollback(store_t *s) {
    if (!sqlite3_get_autocommit(store_db(s)))
        sqlite3_exec(store_db(s), "ROLLBACK", NULL, NULL, NULL);
}

static int prepare(store_t *s, sqlite3_stmt **st, const char *sql, err_t *err) {
    if (sqlite3_prepare_v2(store_db(s), sql, -1, st, NULL) != SQLITE_OK) {
        *st = NULL;
        return db_fail(s, err, "cannot prepare a statement");
    }
    return 0;
}

/* A printf into memory from mem_alloc (NULL when out of memory). */
static char *format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *format(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return NULL;
    char *out = mem_alloc((size_t)n + 1);
    if (!out) return NULL;
    va_start(ap, fmt);
    vsnprintf(out, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return out;
}

/* ---- targets, tags, notes ------------------------------------------------ */

int store_trial_target(store_t *s, int64_t trial_id, store_target_t *out, err_t *err) {
    sqlite3_stmt *st;
    if (prepare(s, &st, "SELECT experiment_id FROM trial WHERE id = ?1", err)) return -1;
    sqlite3_bind_int64(st, 1, trial_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out->experiment_id = sqlite3_column_int64(st, 0);
        out->trial_id = trial_id;
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW) return 0;
    if (rc == SQLITE_DONE)
        return err_set(err, ERR_USAGE, "no trial %" PRId64 " in %s", trial_id, store_path(s));
    return db_fail(s, err, "cannot read a trial");
}

int store_tag_check(const char *tag, err_t *err) {
    size_t n = strlen(tag);
    if (n == 0 || n > STORE_TAG_MAX || !isalpha((unsigned char)tag[0]))
        return err_set(err, ERR_USAGE,
                       "tag '%s': a tag is 1 to %d characters starting with a letter", tag,
                       STORE_TAG_MAX);
    for (const char *p = tag; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("._:+-", *p))
            return err_set(err, ERR_USAGE,
                           "tag '%s': '%c' is not allowed (letters, digits and . _ : + - only)",
                           tag, *p);
    return 0;
}

int store_tag(store_t *s, const store_target_t *targets, int n_targets, const char *const *tags,
              int n_tags, bool remove, int *changed, err_t *err) {
    *changed = 0;
    for (int j = 0; j < n_tags; j++)
        if (store_tag_check(tags[j], err)) return -1;
    if (begin(s, err)) return -1;
    sqlite3_stmt *st;
    if (prepare(s, &st,
                remove ? "DELETE FROM tag WHERE experiment_id = ?1 AND ifnull(trial_id, 0) = ?2 "
                         "AND tag = ?3"
                       : "INSERT OR IGNORE INTO tag (experiment_id, trial_id, tag, created) "
                         "VALUES (?1, nullif(?2, 0), ?3, ?4)",
                err))
        goto fail;
    char now[32];
    now_iso(now);
    for (int i = 0; i < n_targets; i++)
        for (int j = 0; j < n_tags; j++) {
            sqlite3_bind_int64(st, 1, targets[i].experiment_id);
            sqlite3_bind_int64(st, 2, targets[i].trial_id);
            sqlite3_bind_text(st, 3, tags[j], -1, SQLITE_STATIC);
            if (!remove) sqlite3_bind_text(st, 4, now, -1, SQLITE_STATIC);
            if (sqlite3_step(st) != SQLITE_DONE) {
                db_fail(s, err, remove ? "cannot remove a tag" : "cannot add a tag");
                sqlite3_finalize(st);
                goto fail;
            }
            *changed += sqlite3_changes(store_db(s));
            sqlite3_reset(st);
        }
    sqlite3_finalize(st);
    if (exec(s, "COMMIT", "cannot commit", err)) goto fail;
    return 0;
fail:
    rollback(s);
    *changed = 0;
    return -1;
}

int store_note(store_t *s, const store_target_t *target, const char *text, err_t *err) {
    const char *p = text;
    while (isspace((unsigned char)*p))
        p++;
    if (!*p) return err_set(err, ERR_USAGE, "a note needs some text");
    if (strlen(text) > STORE_NOTE_MAX)
        return err_set(err, ERR_USAGE, "a note holds at most %d bytes (this one %zu)",
                       STORE_NOTE_MAX, strlen(text));
    if (begin(s, err)) return -1;
    sqlite3_stmt *st;
    if (prepare(s, &st,
                "INSERT INTO note (experiment_id, trial_id, text, created) "
                "VALUES (?1, nullif(?2, 0), ?3, ?4)",
                err))
        goto fail;
    char now[32];
    now_iso(now);
    sqlite3_bind_int64(st, 1, target->experiment_id);
    sqlite3_bind_int64(st, 2, target->trial_id);
    sqlite3_bind_text(st, 3, text, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, now, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        db_fail(s, err, "cannot add the note");
        goto fail;
    }
    if (exec(s, "COMMIT", "cannot commit", err)) goto fail;
    return 0;
fail:
    rollback(s);
    return -1;
}

/* ---- removal --------------------------------------------------------------- */

static void count_rows(store_removed_t *out, const char *table, long rows) {
    for (int i = 0; i < out->n_tables; i++)
        if (strcmp(out->tables[i].name, table) == 0) {
            out->tables[i].rows += rows;
            return;
        }
    if (out->n_tables == STORE_RM_MAX_TABLES) return;
    snprintf(out->tables[out->n_tables].name, sizeof out->tables[0].name, "%s", table);
    out->tables[out->n_tables++].rows = rows;
}

/* A foreign key of `child` referring to the table being emptied. */
typedef struct {
    char child[64], from[64], to[64];
} fkey_t;

#define RM_MAX_FKEYS 32

/* The foreign keys that refer to `table`, from the schema. */
static int referring(store_t *s, const char *table, fkey_t *keys, int *n, err_t *err) {
    sqlite3_stmt *st;
    *n = 0;
    if (prepare(s, &st,
                "SELECT m.name, f.\"from\", coalesce(f.\"to\", 'rowid') FROM sqlite_master m "
                "JOIN pragma_foreign_key_list(m.name) f "
                "WHERE m.type = 'table' AND f.\"table\" = ?1 COLLATE NOCASE ORDER BY m.rowid",
                err))
        return -1;
    sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == RM_MAX_FKEYS) {
            sqlite3_finalize(st);
            return err_set(err, ERR_FAIL, "%s: more than %d foreign keys refer to %s",
                           store_path(s), RM_MAX_FKEYS, table);
        }
        fkey_t *k = &keys[(*n)++];
        snprintf(k->child, sizeof k->child, "%s", (const char *)sqlite3_column_text(st, 0));
        snprintf(k->from, sizeof k->from, "%s", (const char *)sqlite3_column_text(st, 1));
        snprintf(k->to, sizeof k->to, "%s", (const char *)sqlite3_column_text(st, 2));
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_fail(s, err, "cannot read the foreign keys");
}

/* Deletes the rows of `table` where `cond` holds, and first every row that
 * refers to them. */
static int delete_where(store_t *s, const char *table, const char *cond, int depth,
                        store_removed_t *out, err_t *err) {
    if (depth > RM_MAX_DEPTH)
        return err_set(err, ERR_FAIL, "%s: foreign keys nest deeper than %d below %s",
                       store_path(s), RM_MAX_DEPTH, table);
    fkey_t keys[RM_MAX_FKEYS];
    int n;
    if (referring(s, table, keys, &n, err)) return -1;
    for (int i = 0; i < n; i++) {
        if (strcmp(keys[i].child, table) == 0)
            return err_set(err, ERR_FAIL, "%s: table %s refers to itself (not supported)",
                           store_path(s), table);
        char *sub = format("\"%s\" IN (SELECT \"%s\" FROM \"%s\" WHERE %s)", keys[i].from,
                           keys[i].to, table, cond);
        if (!sub) return err_set(err, ERR_FAIL, "out of memory");
        int rc = delete_where(s, keys[i].child, sub, depth + 1, out, err);
        mem_free(sub);
        if (rc) return -1;
    }
    char *sql = format("DELETE FROM \"%s\" WHERE %s", table, cond);
    if (!sql) return err_set(err, ERR_FAIL, "out of memory");
    char what[128];
    snprintf(what, sizeof what, "cannot delete from %s", table);
    int rc = exec(s, sql, what, err);
    mem_free(sql);
    if (rc) return -1;
    count_rows(out, table, sqlite3_changes(store_db(s)));
    return 0;
}

/* Runs a statement with ?1 bound to v (when bind) to completion. */
static int run_bound(store_t *s, const char *sql, int64_t v, err_t *err) {
    sqlite3_stmt *st;
    if (prepare(s, &st, sql, err)) return -1;
    sqlite3_bind_int64(st, 1, v);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : db_fail(s, err, "cannot select trials");
}

static int64_t count_of(store_t *s, const char *sql, int64_t v) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(store_db(s), sql, -1, &st, NULL) != SQLITE_OK) return -1;
    sqlite3_bind_int64(st, 1, v);
    int64_t n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    return n;
}

/* Fills temp.rm_trial with the trials to remove. */
static int select_trials(store_t *s, const store_rm_t *rm, err_t *err) {
    switch (rm->kind) {
    case STORE_RM_TRIALS:
        for (int i = 0; i < rm->n_ids; i++) {
            if (count_of(s, "SELECT count(*) FROM trial WHERE id = ?1", rm->ids[i]) != 1)
                return err_set(err, ERR_USAGE, "no trial %" PRId64 " in %s (nothing removed)",
                               rm->ids[i], store_path(s));
            if (run_bound(s, "INSERT OR IGNORE INTO temp.rm_trial (id) VALUES (?1)", rm->ids[i],
                          err))
                return -1;
        }
        return 0;
    case STORE_RM_EXPERIMENT:
        if (count_of(s, "SELECT count(*) FROM experiment WHERE id = ?1", rm->experiment_id) != 1)
            return err_set(err, ERR_USAGE, "no experiment %" PRId64 " in %s", rm->experiment_id,
                           store_path(s));
        return run_bound(s,
                         "INSERT INTO temp.rm_trial (id) SELECT id FROM trial "
                         "WHERE experiment_id = ?1",
                         rm->experiment_id, err);
    case STORE_RM_FAILED:
        return run_bound(s,
                         "INSERT INTO temp.rm_trial (id) SELECT id FROM trial "
                         "WHERE status = 'failed' AND (?1 = 0 OR experiment_id = ?1)",
                         rm->experiment_id, err);
    }
    return err_set(err, ERR_FAIL, "unknown removal");
}

/* Refuses when a trial to remove is running. */
static int check_not_running(store_t *s, err_t *err) {
    sqlite3_stmt *st;
    if (prepare(s, &st,
                "SELECT t.id, ifnull(t.host, '?'), ifnull(t.pid, 0) FROM trial t "
                "JOIN temp.rm_trial r ON r.id = t.id WHERE t.status = 'running' ORDER BY t.id",
                err))
        return -1;
    int rc = 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        rc = err_set(err, ERR_USAGE,
                     "trial %lld is running (claimed by host %s, pid %lld): nothing removed; stop "
                     "its runner first (mtlab run --release-stale puts back the trials of a "
                     "runner that is gone)",
                     (long long)sqlite3_column_int64(st, 0),
                     (const char *)sqlite3_column_text(st, 1),
                     (long long)sqlite3_column_int64(st, 2));
    sqlite3_finalize(st);
    return rc;
}

int store_remove(store_t *s, const store_rm_t *rm, store_removed_t *out, err_t *err) {
    memset(out, 0, sizeof *out);
    if (begin(s, err)) return -1;
    /* (IF NOT EXISTS, DELETE: a failed COMMIT rolls the DROP below back) */
    if (exec(s,
             "CREATE TEMP TABLE IF NOT EXISTS rm_trial (id INTEGER PRIMARY KEY);"
             "DELETE FROM temp.rm_trial",
             "cannot make a temp table", err) ||
        select_trials(s, rm, err) || check_not_running(s, err))
        goto fail;
    out->trials = (int)count_of(s, "SELECT count(*) FROM temp.rm_trial WHERE ?1 = 0", 0);
    if (rm->kind == STORE_RM_EXPERIMENT) {
        char cond[64];
        snprintf(cond, sizeof cond, "id = %" PRId64, rm->experiment_id);
        if (delete_where(s, "experiment", cond, 0, out, err)) goto fail;
        out->experiments = 1;
    } else if (out->trials > 0) {
        if (delete_where(s, "trial", "id IN (SELECT id FROM temp.rm_trial)", 0, out, err))
            goto fail;
    }
    if (rm->dry_run) {
        rollback(s);
        return 0;
    }
    if (exec(s, "DROP TABLE temp.rm_trial", "cannot drop a temp table", err) ||
        exec(s, "COMMIT", "cannot commit", err))
        goto fail;
    return 0;
fail:
    rollback(s);
    return -1;
}
