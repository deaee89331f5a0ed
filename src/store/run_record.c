/* run_record.c -- the run table: provenance of run invocations (see
 * run_record.h). */
#include "store/run_record.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "core/mem.h"

int store_run_add(store_t *s, const provenance_t *p, int jobs, const char *shard, int64_t *id,
                  err_t *err) {
    sqlite3 *db = store_db(s);
    char now[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", &tm);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(
            db,
            "INSERT INTO run (started, host, mtlab_version, dirty, compiler, cflags, "
            "real_type, sqlite_version, blas_version, blas_config, blas_core, "
            "blas_core_forced, blas_threads, cpu_model, jobs, shard) VALUES (?, ?, "
            "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            -1, &st, NULL) != SQLITE_OK)
        return err_set(err, ERR_FAIL, "cannot record the run: %s", sqlite3_errmsg(db));
    int i = 1;
    sqlite3_bind_text(st, i++, now, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, i++, p->host, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, i++, p->mtlab_version, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, i++, p->dirty);
    sqlite3_bind_text(st, i++, p->compiler, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, i++, p->cflags, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, i++, p->real_type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, i++, sqlite3_libversion(), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, i++, p->blas_version, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, i++, p->blas_config, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, i++, p->blas_core, -1, SQLITE_STATIC);
    if (p->blas_core_forced[0])
        sqlite3_bind_text(st, i++, p->blas_core_forced, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i++);
    sqlite3_bind_int(st, i++, p->blas_threads);
    sqlite3_bind_text(st, i++, p->cpu_model, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, i++, jobs);
    if (shard)
        sqlite3_bind_text(st, i++, shard, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i++);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return err_set(err, ERR_FAIL, "cannot record the run: %s", sqlite3_errmsg(db));
    *id = sqlite3_last_insert_rowid(db);
    return 0;
}

int store_run_info(store_t *s, int64_t trial_id, store_run_info_t *out, err_t *err) {
    memset(out, 0, sizeof *out);
    sqlite3 *db = store_db(s);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "SELECT * FROM run WHERE id = (SELECT run_id FROM trial WHERE id = ?)",
                           -1, &st, NULL) != SQLITE_OK)
        return err_set(err, ERR_FAIL, "cannot read the run of trial %lld: %s", (long long)trial_id,
                       sqlite3_errmsg(db));
    sqlite3_bind_int64(st, 1, trial_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        int n = sqlite3_column_count(st);
        if (n > 32) n = 32;
        size_t size = 1;
        for (int c = 0; c < n; c++) {
            const char *v = (const char *)sqlite3_column_text(st, c);
            size += strlen(sqlite3_column_name(st, c)) + 1 + (v ? strlen(v) + 1 : 0);
        }
        out->owned = mem_alloc(size);
        if (!out->owned) {
            sqlite3_finalize(st);
            return err_set(err, ERR_FAIL, "out of memory");
        }
        char *p = out->owned;
        for (int c = 0; c < n; c++) {
            const char *name = sqlite3_column_name(st, c);
            const char *v = (const char *)sqlite3_column_text(st, c);
            memcpy(p, name, strlen(name) + 1);
            out->names[c] = p;
            p += strlen(name) + 1;
            if (v) {
                memcpy(p, v, strlen(v) + 1);
                out->values[c] = p;
                p += strlen(v) + 1;
            }
        }
        out->n = n;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return err_set(err, ERR_FAIL, "cannot read the run of trial %lld: %s", (long long)trial_id,
                       sqlite3_errmsg(db));
    return 0;
}

const char *store_run_value(const store_run_info_t *info, const char *name) {
    for (int i = 0; i < info->n; i++)
        if (strcmp(info->names[i], name) == 0) return info->values[i];
    return NULL;
}
