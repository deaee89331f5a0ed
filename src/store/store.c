/* store.c -- the run store on SQLite (contract: store.h, schema: sql/schema.sql).
 *
 * Concurrency.  Every runner process opens its own connection in WAL mode:
 * readers never block the writer and the writer never blocks readers.  Every
 * write transaction starts with BEGIN IMMEDIATE, which takes the write lock
 * up front: a deferred transaction that reads and then writes can fail with
 * SQLITE_BUSY when another connection committed in between (the lock upgrade
 * is refused, the busy handler cannot help), while an IMMEDIATE one simply
 * waits (busy timeout, 30 s) for the lock.  So a claim -- find a trial, mark
 * it running -- is atomic across processes.
 *
 * Dead claimers.  A trial stays `running` when its process is killed.  The
 * claim records host, pid and the process's start time (/proc/PID/stat field
 * 22, clock ticks since boot); a later claim on the same host takes such a
 * trial again when kill(pid, 0) says the process is gone, when it is a zombie,
 * or when the pid now belongs to a process that started at another time (pid
 * reuse).  Trials of other hosts are never judged: we cannot see their
 * processes.
 *
 * Results.  store_finish/store_fail write everything of a trial (metrics,
 * gates with every histogram bin, tensors, weights, the trial row) in one
 * transaction; on any error it is rolled back and the trial stays `running`
 * under this process, so the caller can retry or release it.  A failure can be
 * injected for the tests (store_test_fail_writes): every write statement goes
 * through write_step(), which counts them. */
#include "store/store.h"
#include "core/mem.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/version.h"
#include "store/query.h"
#include "core/embedded.h"

#define STORE_BUSY_TIMEOUT_MS 30000
#define STORE_HOST_MAX        256

/* A trial is claimable (store_restrict_claims_trials) when temp.claimable
 * holds its config with its repeat or with -1 (any repeat). */
#define CLAIMABLE                                                                                  \
    "EXISTS (SELECT 1 FROM temp.claimable c WHERE c.config = trial.config AND c.repeat IN (-1, "   \
    "trial.repeat))"

struct store {
    sqlite3 *db;
    char path[1024];
    bool readonly;
    bool restricted; /* claims limited to temp.claimable (store_restrict_claims) */
    long fail_after; /* test hook: write steps left before an injected failure, -1 off */
    int64_t run_id;  /* the run (invocation) its claims record in trial.run_id, 0: none */
};

/* ---- small helpers ---------------------------------------------------- */

/* "2024-05-01T12:34:56Z" (UTC). */
static void now_iso(char out[32]) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static double monotonic_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void host_name(char out[STORE_HOST_MAX]) {
    if (gethostname(out, STORE_HOST_MAX) != 0) snprintf(out, STORE_HOST_MAX, "localhost");
    out[STORE_HOST_MAX - 1] = '\0';
}

/* Reads /proc/PID/stat: the state letter (field 3) and the start time
 * (field 22, clock ticks after boot).  The command name (field 2) is in
 * parentheses and may itself contain spaces or ')', so fields are counted
 * from the LAST ')'.  -1 when the file cannot be read (no such process, or
 * no /proc). */
static int proc_stat(pid_t pid, char *state, long long *start) {
    char path[64], line[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[n] = '\0';
    char *p = strrchr(line, ')');
    if (!p) return -1;
    p++;
    /* p points at " S ppid ...": field 3 is the first token after ')'. */
    char *save = NULL, *tok = strtok_r(p, " ", &save);
    for (int field = 3; tok; field++, tok = strtok_r(NULL, " ", &save)) {
        if (field == 3) *state = tok[0];
        if (field == 22) {
            char *end;
            errno = 0;
            *start = strtoll(tok, &end, 10);
            return (end == tok || errno) ? -1 : 0;
        }
    }
    return -1;
}

/* Whether the process that claimed a trial (pid, and its start time when
 * recorded) no longer runs on this host. */
static bool claimer_gone(long long pid, bool has_start, long long start) {
    if (pid <= 0 || pid > INT32_MAX) return true;
    if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) return true;
    char state = '?';
    long long now_start;
    if (proc_stat((pid_t)pid, &state, &now_start) != 0) return false; /* no /proc: trust kill */
    if (state == 'Z' || state == 'X') return true;                    /* exited, not reaped */
    return has_start && now_start != start;                           /* pid reused */
}

/* ---- error and statement helpers --------------------------------------- */

/* "PATH: what: sqlite's message". */
static int db_fail(store_t *s, err_t *err, const char *what) {
    return err_set(err, ERR_FAIL, "%s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
}

static int prepare(store_t *s, sqlite3_stmt **st, const char *sql, err_t *err) {
    if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK) {
        *st = NULL;
        return db_fail(s, err, "cannot prepare a statement");
    }
    return 0;
}

/* Runs one write statement to completion (through the test hook), then
 * resets it for the next use.  0 or -1 with *err. */
static int write_step(store_t *s, sqlite3_stmt *st, const char *what, err_t *err) {
    if (s->fail_after == 0) {
        sqlite3_reset(st);
        return err_set(err, ERR_FAIL, "%s: %s: disk I/O error (injected by store_test_fail_writes)",
                       s->path, what);
    }
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        db_fail(s, err, what);
        sqlite3_reset(st);
        return -1;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (s->fail_after > 0) s->fail_after--;
    return 0;
}

static int exec_sql(store_t *s, const char *sql, const char *what, err_t *err) {
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        err_set(err, ERR_FAIL, "%s: %s: %s", s->path, what, msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/* BEGIN IMMEDIATE: waits up to the busy timeout for the write lock. */
static int begin_write(store_t *s, err_t *err) {
    if (s->readonly) return err_set(err, ERR_FAIL, "%s: opened read-only, cannot write", s->path);
    if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        int code = sqlite3_errcode(s->db) & 0xff;
        if (code == SQLITE_BUSY || code == SQLITE_LOCKED)
            return err_set(err, ERR_FAIL,
                           "%s: cannot start a write transaction: another process held the "
                           "database for %d s (%s)",
                           s->path, STORE_BUSY_TIMEOUT_MS / 1000, sqlite3_errmsg(s->db));
        return db_fail(s, err, "cannot start a write transaction");
    }
    return 0;
}

static int commit(store_t *s, err_t *err) {
    sqlite3_stmt *st;
    if (prepare(s, &st, "COMMIT", err)) return -1;
    int rc = write_step(s, st, "cannot commit", err);
    sqlite3_finalize(st);
    return rc;
}

/* Undoes the open transaction, if any (after an error: its own failure, e.g.
 * when SQLite already rolled back, changes nothing for the caller). */
static void rollback(store_t *s) {
    if (!sqlite3_get_autocommit(s->db)) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

/* Binds a param value: an integer literal as an integer, any other finite
 * decimal number as a real, everything else as text.  Hex ("0x10"), "inf",
 * "nan" and numbers with surrounding blanks stay text. */
static int bind_param_value(sqlite3_stmt *st, int i, const char *text) {
    if (!text) return sqlite3_bind_null(st, i);
    const char *p = text;
    if (*p == '+' || *p == '-') p++;
    bool numeric_start = (*p >= '0' && *p <= '9') || *p == '.';
    if (numeric_start && !strpbrk(text, "xX")) {
        char *end;
        errno = 0;
        long long iv = strtoll(text, &end, 10);
        if (end != text && *end == '\0' && errno == 0) return sqlite3_bind_int64(st, i, iv);
        errno = 0;
        double dv = strtod(text, &end);
        if (end != text && *end == '\0' && errno == 0 && isfinite(dv))
            return sqlite3_bind_double(st, i, dv);
    }
    return sqlite3_bind_text(st, i, text, -1, SQLITE_TRANSIENT);
}

/* ---- open, schema ------------------------------------------------------ */

/* SCHEMA_OLD: an mtlab store of an older schema version (upgraded on open). */
typedef enum { SCHEMA_EMPTY, SCHEMA_OK, SCHEMA_OLD, SCHEMA_FOREIGN } schema_state_t;

/* Looks at what the file holds: nothing yet, an mtlab store of a version we
 * understand, or something else (error). */
static int schema_state(store_t *s, schema_state_t *state, long long *version_out, err_t *err) {
    *version_out = 0;
    sqlite3_stmt *st;
    if (prepare(
            s, &st,
            "SELECT (SELECT count(*) FROM sqlite_master),"
            "       (SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta')",
            err)) {
        if ((sqlite3_errcode(s->db) & 0xff) == SQLITE_NOTADB)
            return err_set(err, ERR_FAIL, "%s is not an SQLite database (nor an mtlab store)",
                           s->path);
        return -1;
    }
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        int code = sqlite3_errcode(s->db) & 0xff;
        sqlite3_finalize(st);
        if (code == SQLITE_NOTADB)
            return err_set(err, ERR_FAIL, "%s is not an SQLite database (nor an mtlab store)",
                           s->path);
        return db_fail(s, err, "cannot read the schema");
    }
    long long n_objects = sqlite3_column_int64(st, 0), has_meta = sqlite3_column_int64(st, 1);
    sqlite3_finalize(st);
    if (!has_meta) {
        *state = n_objects == 0 ? SCHEMA_EMPTY : SCHEMA_FOREIGN;
        if (*state == SCHEMA_FOREIGN)
            return err_set(err, ERR_FAIL,
                           "%s is not an mtlab store: it holds tables of another application "
                           "(no meta table)",
                           s->path);
        return 0;
    }
    if (prepare(s, &st, "SELECT value FROM meta WHERE key = 'schema_version'", err)) return -1;
    long long version = -1;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        const char *text = (const char *)sqlite3_column_text(st, 0);
        char *end;
        errno = 0;
        version = strtoll(text, &end, 10);
        if (end == text || *end != '\0' || errno) version = -1;
    }
    sqlite3_finalize(st);
    if (version < 1)
        return err_set(err, ERR_FAIL, "%s is not an mtlab store: meta has no valid schema_version",
                       s->path);
    if (version > STORE_SCHEMA_VERSION)
        return err_set(err, ERR_FAIL,
                       "%s has schema version %lld, this mtlab understands %d (use a newer mtlab)",
                       s->path, version, STORE_SCHEMA_VERSION);
    *state = version < STORE_SCHEMA_VERSION ? SCHEMA_OLD : SCHEMA_OK;
    *version_out = version;
    return 0;
}

/* Drops every view of the store and creates those of sql/views.sql.  Views
 * hold no data, so recreating them on every upgrade keeps them in step with
 * this mtlab (schema version 1 -> 2 was only that). */
static int recreate_views(store_t *s, err_t *err) {
    sqlite3_stmt *st;
    if (prepare(s, &st, "SELECT name FROM sqlite_master WHERE type = 'view'", err)) return -1;
    char drops[4096] = "";
    size_t len = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        int w = snprintf(drops + len, sizeof drops - len, "DROP VIEW \"%s\";",
                         (const char *)sqlite3_column_text(st, 0));
        if (w > 0 && (size_t)w < sizeof drops - len) len += (size_t)w;
    }
    sqlite3_finalize(st);
    if (exec_sql(s, drops, "cannot drop the old views", err)) return -1;
    return exec_sql(s, embedded_sql("sql/views.sql"), "cannot create the views", err);
}

/* The number of a migration file "sql/migrations/NNN-what.sql", or -1 when
 * `path` is not one. */
static long migration_number(const char *path) {
    static const char prefix[] = "sql/migrations/";
    if (strncmp(path, prefix, sizeof prefix - 1) != 0) return -1;
    const char *p = path + sizeof prefix - 1;
    char *end;
    long n = strtol(p, &end, 10);
    return (end == p || *end != '-') ? -1 : n;
}

/* Inside a write transaction: applies, in order, every embedded migration
 * numbered above `from` (the embedded files are sorted by path, so by
 * number), then records STORE_SCHEMA_VERSION.  A migration numbered above
 * STORE_SCHEMA_VERSION is a build error caught by the tests. */
static int migrate(store_t *s, long long from, err_t *err) {
    for (const embedded_file_t *f = embedded_sql_files; f->path; f++) {
        long n = migration_number(f->path);
        if (n <= from) continue;
        if (n > STORE_SCHEMA_VERSION)
            return err_set(err, ERR_FAIL, "%s: migration %s is newer than schema version %d",
                           s->path, f->path, STORE_SCHEMA_VERSION);
        char what[256];
        snprintf(what, sizeof what, "cannot apply %s", f->path);
        if (exec_sql(s, f->text, what, err)) return -1;
    }
    char update[128];
    snprintf(update, sizeof update, "UPDATE meta SET value = '%d' WHERE key = 'schema_version'",
             STORE_SCHEMA_VERSION);
    return exec_sql(s, update, "cannot record the schema version", err);
}

/* Applies the schema to an empty file (sql/schema.sql is version 2, then
 * every migration), or upgrades an older store, in ONE write transaction
 * that first checks again: another process may have done it since we
 * looked.  A failed migration leaves the store as it was. */
static int schema_apply(store_t *s, err_t *err) {
    if (begin_write(s, err)) return -1;
    schema_state_t state;
    long long version;
    if (schema_state(s, &state, &version, err)) goto fail;
    if (state == SCHEMA_EMPTY) {
        if (exec_sql(s, embedded_sql("sql/schema.sql"), "cannot create the schema", err)) goto fail;
        version = 2;
    }
    if (state == SCHEMA_EMPTY || state == SCHEMA_OLD) {
        if (migrate(s, version, err) || recreate_views(s, err)) goto fail;
    }
    if (commit(s, err)) goto fail;
    return 0;
fail:
    rollback(s);
    return -1;
}

/* Runs a pragma that returns one text row and copies it into out (may be
 * NULL). */
static int pragma(store_t *s, const char *sql, char *out, size_t out_size, err_t *err) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && out) {
        const unsigned char *text = sqlite3_column_text(st, 0);
        snprintf(out, out_size, "%s", text ? (const char *)text : "");
    }
    sqlite3_finalize(st);
    (void)err;
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

/* PRAGMA journal_mode=WAL.  Switching a new file to WAL needs an exclusive
 * lock, and SQLite does not call the busy handler for it: when several
 * processes open a new file at once (a sweep started with --jobs N), the
 * losers get SQLITE_BUSY at once.  So retry, for as long as the busy timeout. */
static int set_wal(store_t *s, char *mode, size_t size, err_t *err) {
    const int pause_ms = 5;
    for (int waited = 0;; waited += pause_ms) {
        if (pragma(s, "PRAGMA journal_mode=WAL", mode, size, err) == 0) return 0;
        int code = sqlite3_errcode(s->db) & 0xff;
        if ((code != SQLITE_BUSY && code != SQLITE_LOCKED) || waited >= STORE_BUSY_TIMEOUT_MS)
            return -1;
        struct timespec ts = {0, pause_ms * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static int open_fail(store_t *s, err_t *err) {
    int code = sqlite3_errcode(s->db) & 0xff;
    if (code == SQLITE_NOTADB)
        return err_set(err, ERR_FAIL, "%s is not an SQLite database (nor an mtlab store)", s->path);
    int sys = sqlite3_system_errno(s->db);
    if (sys)
        return err_set(err, ERR_FAIL, "cannot open %s: %s (%s)", s->path, sqlite3_errmsg(s->db),
                       strerror(sys));
    return err_set(err, ERR_FAIL, "cannot open %s: %s", s->path, sqlite3_errmsg(s->db));
}

/* Opens s->db on `name` (a path, or a URI with SQLITE_OPEN_URI) with the
 * settings of every connection: extended result codes, the busy timeout. */
static int db_connect(store_t *s, const char *name, int oflags, err_t *err) {
    if (sqlite3_open_v2(name, &s->db, oflags, NULL) != SQLITE_OK)
        return s->db ? open_fail(s, err)
                     : err_set(err, ERR_FAIL, "cannot open %s: out of memory", s->path);
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
    return 0;
}

/* ---- read-only opening ------------------------------------------------- *
 *
 * Reading a WAL store takes PATH-wal and PATH-shm next to it: the first
 * connection creates them, the last one to close checkpoints and deletes
 * them -- unless it is a read-only one (SQLITE_OPEN_READONLY), which cannot
 * take the write lock that needs.  So `mtlab ls` on a store nobody had open
 * used to leave both files behind, and in a directory it cannot write it
 * could not read the store at all (-shm cannot be created).
 *
 * Hence a read-only store_open connects read-write when the file allows it,
 * without SQLITE_OPEN_CREATE, with PRAGMA query_only=1 before anything else,
 * and with s->readonly refusing every write of store.c.  Nothing writes
 * through it (query.c also refuses, before it runs, any statement that is not
 * a query); but when it is the last connection, closing it tidies up as any
 * writer's close does: whatever committed frames -wal holds are copied into
 * the file, -wal and -shm deleted.
 *
 * When there is no -shm and no -wal (or an empty one), no connection has the
 * store open now and the file holds every committed transaction.  If then
 * no process can start writing it while we read -- the directory is not
 * writable (a read-only filesystem, or permissions: a writer must create
 * -wal and -shm in it), or the file has no write permission at all -- it is
 * opened as file:PATH?immutable=1: SQLite reads it without locks and creates
 * nothing.  Safe because immutable is only wrong when the file changes
 * during the read, and no writer can change it without first creating
 * -wal/-shm in that directory.  (One that can write the directory through
 * another path -- another user, a writable mount of the same directory --
 * could; a reader of such a store sees at worst an inconsistent answer, never
 * a changed store.) */

/* Whether the directory holding the store is writable by this process. */
static bool dir_writable(const store_t *s) {
    char dir[sizeof s->path];
    snprintf(dir, sizeof dir, "%s", s->path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else
        slash[slash == dir] = '\0'; /* "/x" -> "/" */
    return access(dir, W_OK) == 0;
}

/* "file:PATH?immutable=1", PATH percent-encoded but for [A-Za-z0-9/._~-]
 * (an absolute path gets an empty authority: "file:///..."). -1 when it does
 * not fit. */
static int immutable_uri(const char *path, char *out, size_t size) {
    static const char hex[] = "0123456789ABCDEF";
    size_t n = (size_t)snprintf(out, size, "file:%s", path[0] == '/' ? "//" : "");
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                     (*p >= '0' && *p <= '9') || (*p && strchr("/._~-", *p));
        if (n + 4 >= size) return -1;
        if (plain) {
            out[n++] = (char)*p;
        } else {
            out[n++] = '%';
            out[n++] = hex[*p >> 4];
            out[n++] = hex[*p & 15];
        }
    }
    out[n] = '\0';
    const char *query = "?immutable=1";
    if (n + strlen(query) >= size) return -1;
    memcpy(out + n, query, strlen(query) + 1);
    return 0;
}

/* The connection of a read-only store_open (see above); sb is the file's
 * stat. */
static int open_readonly(store_t *s, const struct stat *sb, err_t *err) {
    char name[sizeof s->path + 8];
    struct stat wal_sb, shm_sb;
    snprintf(name, sizeof name, "%s-wal", s->path);
    bool wal_empty = stat(name, &wal_sb) != 0 || wal_sb.st_size == 0;
    snprintf(name, sizeof name, "%s-shm", s->path);
    bool unused = wal_empty && stat(name, &shm_sb) != 0;
    if (db_connect(s, s->path, SQLITE_OPEN_READWRITE, err)) return -1;
    /* SQLite falls back to read-only when the file cannot be written. */
    bool file_readonly = sqlite3_db_readonly(s->db, "main") == 1;
    if (unused && (!dir_writable(s) || (file_readonly && (sb->st_mode & 0222) == 0))) {
        char uri[3 * sizeof s->path + 32];
        if (immutable_uri(s->path, uri, sizeof uri))
            return err_set(err, ERR_FAIL, "cannot open %s: path too long", s->path);
        sqlite3_close(s->db);
        s->db = NULL;
        if (db_connect(s, uri, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, err)) return -1;
    }
    if (pragma(s, "PRAGMA query_only=1", NULL, 0, err)) return open_fail(s, err);
    return 0;
}

int store_open(store_t **out, const char *path, int flags, err_t *err) {
    *out = NULL;
    store_t *s = mem_calloc(1, sizeof *s);
    if (!s) return err_set(err, ERR_FAIL, "cannot open %s: out of memory", path);
    snprintf(s->path, sizeof s->path, "%s", path);
    s->readonly = (flags & STORE_READONLY) != 0;
    s->fail_after = -1;
    struct stat sb;
    if (s->readonly && stat(path, &sb) != 0) {
        err_set(err, ERR_FAIL, "cannot open %s: no such file", path);
        mem_free(s);
        return -1;
    }
    if (s->readonly) {
        if (open_readonly(s, &sb, err)) goto fail;
    } else {
        if (db_connect(s, path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, err)) goto fail;
        /* WAL is a property of the file; setting it needs the file to be a
         * database, so this is also where junk files are caught. */
        char mode[32] = "";
        if (set_wal(s, mode, sizeof mode, err)) goto fail_open;
        if (strcmp(mode, "wal") != 0) {
            err_set(err, ERR_FAIL,
                    "%s: cannot use WAL mode (journal mode stays '%s'; a network filesystem?)",
                    path, mode);
            goto fail;
        }
        if (pragma(s, "PRAGMA synchronous=NORMAL", NULL, 0, err)) goto fail_open;
    }
    if (pragma(s, "PRAGMA foreign_keys=ON", NULL, 0, err)) goto fail_open;

    schema_state_t state;
    long long version;
    if (schema_state(s, &state, &version, err)) goto fail;
    if (state == SCHEMA_EMPTY) {
        if (s->readonly) {
            err_set(err, ERR_FAIL, "%s is not an mtlab store (an empty file)", path);
            goto fail;
        }
        if (schema_apply(s, err)) goto fail;
    }
    if (state == SCHEMA_OLD) {
        if (!s->readonly) {
            if (schema_apply(s, err)) goto fail;
        } else { /* upgrade through a short read-write connection */
            store_t *rw;
            if (store_open(&rw, path, 0, err)) {
                err_prefix(err, "%s has an older schema and cannot be upgraded", path);
                goto fail;
            }
            store_close(rw);
        }
    }
    *out = s;
    return 0;
fail_open:
    open_fail(s, err);
fail:
    sqlite3_close(s->db);
    mem_free(s);
    return -1;
}

void store_close(store_t *s) {
    if (!s) return;
    sqlite3_close(s->db); /* every statement is finalized where it was prepared */
    mem_free(s);
}

sqlite3 *store_db(store_t *s) {
    return s->db;
}

void store_set_run(store_t *s, int64_t run_id) {
    s->run_id = run_id;
}

const char *store_path(const store_t *s) {
    return s->path;
}

void store_test_fail_writes(store_t *s, long n_ok) {
    s->fail_after = n_ok < 0 ? -1 : n_ok;
}

/* ---- experiments and trials -------------------------------------------- */

/* Inside store_experiment's transaction: an existing experiment of another
 * trial identity is refused when it has trials, else takes `identity`. */
static int check_identity(store_t *s, const char *name, int64_t id, int stored, int identity,
                          err_t *err) {
    if (stored == identity) return 0;
    sqlite3_stmt *st;
    if (prepare(s, &st, "SELECT count(*) FROM trial WHERE experiment_id = ?", err)) return -1;
    sqlite3_bind_int64(st, 1, id);
    long long trials = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    if (trials < 0) return db_fail(s, err, "cannot count the experiment's trials");
    if (trials > 0)
        return err_set(
            err, ERR_USAGE,
            "experiment '%s' in %s has %lld trials of trial identity %d, this mtlab "
            "writes identity %d (%s): its configs and init seeds differ, so the same "
            "settings would be trained and stored again beside the old ones.  The "
            "stored results stay readable (mtlab ls, show, sql, plot); to run the sweep, "
            "give a new --db or rename the experiment ([experiment] name)",
            name, s->path, trials, stored, identity,
            stored < identity ? "a trial's config now lists only the model keys its "
                                "family declares"
                              : "written by a newer mtlab");
    if (prepare(s, &st, "UPDATE experiment SET identity = ? WHERE id = ?", err)) return -1;
    sqlite3_bind_int(st, 1, identity);
    sqlite3_bind_int64(st, 2, id);
    int status = write_step(s, st, "cannot update the experiment", err);
    sqlite3_finalize(st);
    return status;
}

int store_experiment(store_t *s, const char *name, const char *description, const char *spec_text,
                     int identity, bool replace_spec, int64_t *id, err_t *err) {
    char now[32];
    now_iso(now);
    sqlite3_stmt *find = NULL, *write = NULL;
    if (begin_write(s, err)) return -1;
    if (prepare(s, &find, "SELECT id, spec, identity FROM experiment WHERE name = ?", err))
        goto fail;
    sqlite3_bind_text(find, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(find);
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(find, 0);
        if (check_identity(s, name, *id, sqlite3_column_int(find, 2), identity, err)) goto fail;
        const char *stored = (const char *)sqlite3_column_text(find, 1);
        bool same = stored && strcmp(stored, spec_text) == 0;
        if (!same && !replace_spec) {
            err_set(err, ERR_USAGE,
                    "experiment '%s' in %s was created from a different spec (use "
                    "--replace-spec to continue it with the new one, or rename the experiment)",
                    name, s->path);
            goto fail;
        }
        if (same) {
            if (prepare(s, &write, "UPDATE experiment SET updated = ? WHERE id = ?", err))
                goto fail;
            sqlite3_bind_text(write, 1, now, -1, SQLITE_STATIC);
            sqlite3_bind_int64(write, 2, *id);
        } else {
            if (prepare(s, &write,
                        "UPDATE experiment SET spec = ?, description = ?, updated = ?, "
                        "code_version = ? WHERE id = ?",
                        err))
                goto fail;
            sqlite3_bind_text(write, 1, spec_text, -1, SQLITE_STATIC);
            sqlite3_bind_text(write, 2, description, -1, SQLITE_STATIC);
            sqlite3_bind_text(write, 3, now, -1, SQLITE_STATIC);
            sqlite3_bind_text(write, 4, mtlab_version(), -1, SQLITE_STATIC);
            sqlite3_bind_int64(write, 5, *id);
        }
        if (write_step(s, write, "cannot update the experiment", err)) goto fail;
    } else if (rc == SQLITE_DONE) {
        if (prepare(s, &write,
                    "INSERT INTO experiment (name, description, spec, created, updated, "
                    "code_version, identity) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    err))
            goto fail;
        sqlite3_bind_text(write, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_text(write, 2, description, -1, SQLITE_STATIC);
        sqlite3_bind_text(write, 3, spec_text, -1, SQLITE_STATIC);
        sqlite3_bind_text(write, 4, now, -1, SQLITE_STATIC);
        sqlite3_bind_text(write, 5, now, -1, SQLITE_STATIC);
        sqlite3_bind_text(write, 6, mtlab_version(), -1, SQLITE_STATIC);
        sqlite3_bind_int(write, 7, identity);
        if (write_step(s, write, "cannot add the experiment", err)) goto fail;
        *id = sqlite3_last_insert_rowid(s->db);
    } else {
        db_fail(s, err, "cannot read experiments");
        goto fail;
    }
    sqlite3_finalize(find);
    sqlite3_finalize(write);
    return commit(s, err) ? (rollback(s), -1) : 0;
fail:
    sqlite3_finalize(find);
    sqlite3_finalize(write);
    rollback(s);
    return -1;
}

int store_add_trials(store_t *s, int64_t experiment_id, const store_trial_t *trials, int n,
                     int *added, err_t *err) {
    *added = 0;
    sqlite3_stmt *ins = NULL, *par = NULL, *reseed = NULL, *count = NULL;
    int new_rows = 0;
    if (begin_write(s, err)) return -1;
    if (prepare(s, &ins,
                "INSERT OR IGNORE INTO trial (experiment_id, model, repeat, config, data_seed, "
                "init_seed, n_params, status) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending')",
                err) ||
        prepare(s, &par, "INSERT INTO param (trial_id, key, value) VALUES (?, ?, ?)", err) ||
        prepare(s, &reseed,
                "UPDATE trial SET data_seed = ?4, init_seed = ?5 WHERE experiment_id = ?1 AND "
                "config = ?2 AND repeat = ?3 AND status = 'pending' AND "
                "(data_seed <> ?4 OR init_seed <> ?5)",
                err) ||
        prepare(s, &count,
                "UPDATE trial SET n_params = ?4 WHERE experiment_id = ?1 AND config = ?2 AND "
                "repeat = ?3 AND n_params IS NULL",
                err))
        goto fail;
    for (int i = 0; i < n; i++) {
        const store_trial_t *t = &trials[i];
        if (t->data_seed > (uint64_t)INT64_MAX || t->init_seed > (uint64_t)INT64_MAX) {
            err_set(err, ERR_FAIL,
                    "%s: trial %d (%s, repeat %d): seeds must be below 2^63 (data %" PRIu64
                    ", init %" PRIu64 ")",
                    s->path, i, t->config, t->repeat, t->data_seed, t->init_seed);
            goto fail;
        }
        sqlite3_bind_int64(ins, 1, experiment_id);
        sqlite3_bind_text(ins, 2, t->model, -1, SQLITE_STATIC);
        sqlite3_bind_int(ins, 3, t->repeat);
        sqlite3_bind_text(ins, 4, t->config, -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 5, (int64_t)t->data_seed);
        sqlite3_bind_int64(ins, 6, (int64_t)t->init_seed);
        if (t->model_params >= 0)
            sqlite3_bind_int64(ins, 7, t->model_params);
        else
            sqlite3_bind_null(ins, 7);
        if (write_step(s, ins, "cannot add trials", err)) goto fail;
        if (sqlite3_changes(s->db) == 0) { /* already there, params too */
            sqlite3_bind_int64(reseed, 1, experiment_id);
            sqlite3_bind_text(reseed, 2, t->config, -1, SQLITE_STATIC);
            sqlite3_bind_int(reseed, 3, t->repeat);
            sqlite3_bind_int64(reseed, 4, (int64_t)t->data_seed);
            sqlite3_bind_int64(reseed, 5, (int64_t)t->init_seed);
            if (write_step(s, reseed, "cannot update the seeds of pending trials", err)) goto fail;
            if (t->model_params >= 0) { /* registered by an older mtlab: fill the count */
                sqlite3_bind_int64(count, 1, experiment_id);
                sqlite3_bind_text(count, 2, t->config, -1, SQLITE_STATIC);
                sqlite3_bind_int(count, 3, t->repeat);
                sqlite3_bind_int64(count, 4, t->model_params);
                if (write_step(s, count, "cannot record the parameter counts", err)) goto fail;
            }
            continue;
        }
        int64_t trial_id = sqlite3_last_insert_rowid(s->db);
        new_rows++;
        for (int k = 0; k < t->n_params; k++) {
            sqlite3_bind_int64(par, 1, trial_id);
            sqlite3_bind_text(par, 2, t->params[k].key, -1, SQLITE_STATIC);
            bind_param_value(par, 3, t->params[k].value);
            if (write_step(s, par, "cannot add trial params", err)) goto fail;
        }
    }
    sqlite3_finalize(ins);
    sqlite3_finalize(par);
    sqlite3_finalize(reseed);
    sqlite3_finalize(count);
    if (commit(s, err)) {
        rollback(s);
        return -1;
    }
    *added = new_rows;
    return 0;
fail:
    sqlite3_finalize(ins);
    sqlite3_finalize(par);
    sqlite3_finalize(reseed);
    sqlite3_finalize(count);
    rollback(s);
    return -1;
}

/* The running trial of this experiment on this host whose claimer is gone
 * (lowest id), or 0. */
static int find_orphan(store_t *s, int64_t experiment_id, const char *host, int64_t *id,
                       err_t *err) {
    *id = 0;
    sqlite3_stmt *st;
    if (prepare(s, &st,
                s->restricted ? "SELECT id, pid, pid_start FROM trial WHERE experiment_id = ? AND "
                                "status = 'running' AND host = ? AND " CLAIMABLE " ORDER BY id"
                              : "SELECT id, pid, pid_start FROM trial WHERE experiment_id = ? AND "
                                "status = 'running' AND host = ? ORDER BY id",
                err))
        return -1;
    sqlite3_bind_int64(st, 1, experiment_id);
    sqlite3_bind_text(st, 2, host, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        bool has_start = sqlite3_column_type(st, 2) != SQLITE_NULL;
        if (claimer_gone(sqlite3_column_int64(st, 1), has_start, sqlite3_column_int64(st, 2))) {
            *id = sqlite3_column_int64(st, 0);
            break;
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return db_fail(s, err, "cannot look for trials");
    return 0;
}

int store_claim(store_t *s, int64_t experiment_id, store_claim_t *out, err_t *err) {
    char host[STORE_HOST_MAX], now[32];
    host_name(host);
    now_iso(now);
    char state;
    long long my_start;
    bool have_start = proc_stat(getpid(), &state, &my_start) == 0;
    sqlite3_stmt *st = NULL;
    int64_t id = 0;
    if (begin_write(s, err)) return -1;
    if (find_orphan(s, experiment_id, host, &id, err)) goto fail;
    if (id == 0) {
        if (prepare(s, &st,
                    s->restricted
                        ? "SELECT id FROM trial WHERE experiment_id = ? AND status = 'pending' "
                          "AND " CLAIMABLE " ORDER BY id LIMIT 1"
                        : "SELECT id FROM trial WHERE experiment_id = ? AND status = 'pending' "
                          "ORDER BY id LIMIT 1",
                    err))
            goto fail;
        sqlite3_bind_int64(st, 1, experiment_id);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            id = sqlite3_column_int64(st, 0);
        else if (rc != SQLITE_DONE) {
            db_fail(s, err, "cannot look for pending trials");
            goto fail;
        }
        sqlite3_finalize(st);
        st = NULL;
    }
    if (id == 0) {
        rollback(s); /* nothing written */
        return 0;
    }
    if (prepare(s, &st,
                "UPDATE trial SET status = 'running', host = ?, pid = ?, pid_start = ?, "
                "started = ?, finished = NULL, error = NULL, failed_step = NULL, run_id = ? "
                "WHERE id = ?",
                err))
        goto fail;
    sqlite3_bind_text(st, 1, host, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (int64_t)getpid());
    if (have_start)
        sqlite3_bind_int64(st, 3, my_start);
    else
        sqlite3_bind_null(st, 3);
    sqlite3_bind_text(st, 4, now, -1, SQLITE_STATIC);
    if (s->run_id > 0)
        sqlite3_bind_int64(st, 5, s->run_id);
    else
        sqlite3_bind_null(st, 5);
    sqlite3_bind_int64(st, 6, id);
    if (write_step(s, st, "cannot claim a trial", err)) goto fail;
    sqlite3_finalize(st);
    if (prepare(s, &st, "SELECT repeat, config, data_seed, init_seed FROM trial WHERE id = ?", err))
        goto fail;
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        db_fail(s, err, "cannot read the claimed trial");
        goto fail;
    }
    out->id = id;
    out->repeat = sqlite3_column_int(st, 0);
    out->data_seed = (uint64_t)sqlite3_column_int64(st, 2);
    out->init_seed = (uint64_t)sqlite3_column_int64(st, 3);
    const char *config = (const char *)sqlite3_column_text(st, 1);
    if (!config || strlen(config) >= sizeof out->config) {
        err_set(err, ERR_FAIL, "%s: trial %" PRId64 ": config longer than %zu bytes", s->path, id,
                sizeof out->config - 1);
        goto fail;
    }
    memcpy(out->config, config, strlen(config) + 1);
    sqlite3_finalize(st);
    st = NULL;
    if (commit(s, err)) goto fail;
    return 1;
fail:
    sqlite3_finalize(st);
    rollback(s);
    return -1;
}

int store_restrict_claims(store_t *s, const char *const *configs, int n, err_t *err) {
    return store_restrict_claims_trials(s, configs, NULL, n, err);
}

int store_restrict_claims_trials(store_t *s, const char *const *configs, const int *repeats, int n,
                                 err_t *err) {
    s->restricted = false;
    /* temp.claimable lives in this connection's own temporary database: no
     * lock on the store is taken to fill it. */
    if (exec_sql(s,
                 "CREATE TEMP TABLE IF NOT EXISTS claimable (config TEXT NOT NULL, repeat INTEGER "
                 "NOT NULL, PRIMARY KEY (config, repeat)) WITHOUT ROWID; DELETE FROM "
                 "temp.claimable",
                 "cannot make the table of claimable configs", err))
        return -1;
    if (n == 0) return 0;
    sqlite3_stmt *st = NULL;
    if (exec_sql(s, "SAVEPOINT claimable", "cannot fill the claimable configs", err)) return -1;
    if (prepare(s, &st, "INSERT OR IGNORE INTO temp.claimable (config, repeat) VALUES (?, ?)", err))
        goto fail;
    for (int i = 0; i < n; i++) {
        sqlite3_bind_text(st, 1, configs[i], -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, repeats ? repeats[i] : -1);
        if (sqlite3_step(st) != SQLITE_DONE) {
            db_fail(s, err, "cannot fill the claimable configs");
            goto fail;
        }
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    if (exec_sql(s, "RELEASE claimable", "cannot fill the claimable configs", err)) return -1;
    s->restricted = true;
    return 0;
fail:
    sqlite3_finalize(st);
    sqlite3_exec(s->db, "ROLLBACK TO claimable; RELEASE claimable", NULL, NULL, NULL);
    return -1;
}

int store_worker_killed(store_t *s, int64_t trial_id, long pid, const char *why, char *outcome,
                        err_t *err) {
    *outcome = 0;
    char host[STORE_HOST_MAX], now[32];
    host_name(host);
    now_iso(now);
    sqlite3_stmt *st = NULL;
    if (begin_write(s, err)) return -1;
    if (prepare(s, &st,
                "SELECT kills FROM trial WHERE id = ? AND status = 'running' AND host = ? AND "
                "pid = ?",
                err))
        goto fail;
    sqlite3_bind_int64(st, 1, trial_id);
    sqlite3_bind_text(st, 2, host, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, pid);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        db_fail(s, err, "cannot read the trial");
        goto fail;
    }
    int kills = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) + 1 : 0;
    sqlite3_finalize(st);
    st = NULL;
    if (rc == SQLITE_DONE) { /* finished, or taken by another process since */
        rollback(s);
        return 0;
    }
    char reason[512];
    if (kills >= STORE_MAX_KILLS)
        snprintf(reason, sizeof reason, "killed its worker %d times (last: %s)", kills, why);
    else
        snprintf(reason, sizeof reason, "its worker was killed (%s); put back to pending", why);
    if (prepare(s, &st,
                kills >= STORE_MAX_KILLS
                    ? "UPDATE trial SET status = 'failed', kills = ?1, error = ?2, "
                      "finished = ?3 WHERE id = ?4"
                    : "UPDATE trial SET status = 'pending', kills = ?1, error = ?2, host = NULL, "
                      "pid = NULL, pid_start = NULL, started = NULL WHERE id = ?4",
                err))
        goto fail;
    sqlite3_bind_int(st, 1, kills);
    sqlite3_bind_text(st, 2, reason, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, now, -1, SQLITE_STATIC); /* unused by the pending form */
    sqlite3_bind_int64(st, 4, trial_id);
    if (write_step(s, st, "cannot record the killed worker", err)) goto fail;
    sqlite3_finalize(st);
    st = NULL;
    if (commit(s, err)) goto fail;
    *outcome = kills >= STORE_MAX_KILLS ? 'f' : 'p';
    return 0;
fail:
    sqlite3_finalize(st);
    rollback(s);
    return -1;
}

int store_release_stale(store_t *s, int64_t experiment_id, bool all_hosts, int *released,
                        err_t *err) {
    *released = 0;
    char host[STORE_HOST_MAX];
    host_name(host);
    sqlite3_stmt *find = NULL, *upd = NULL;
    if (begin_write(s, err)) return -1;
    if (prepare(s, &find,
                "SELECT id, host, pid, pid_start FROM trial WHERE experiment_id = ? AND "
                "status = 'running' ORDER BY id",
                err) ||
        prepare(s, &upd,
                "UPDATE trial SET status = 'pending', host = NULL, pid = NULL, pid_start = NULL, "
                "started = NULL WHERE id = ?",
                err))
        goto fail;
    sqlite3_bind_int64(find, 1, experiment_id);
    int rc, n = 0;
    while ((rc = sqlite3_step(find)) == SQLITE_ROW) {
        const char *claim_host = (const char *)sqlite3_column_text(find, 1);
        bool here = claim_host && strcmp(claim_host, host) == 0;
        bool gone = here ? claimer_gone(sqlite3_column_int64(find, 2),
                                        sqlite3_column_type(find, 3) != SQLITE_NULL,
                                        sqlite3_column_int64(find, 3))
                         : all_hosts;
        if (!gone) continue;
        sqlite3_bind_int64(upd, 1, sqlite3_column_int64(find, 0));
        if (write_step(s, upd, "cannot release stale trials", err)) goto fail;
        n++;
    }
    if (rc != SQLITE_DONE) {
        db_fail(s, err, "cannot look for stale trials");
        goto fail;
    }
    sqlite3_finalize(find);
    sqlite3_finalize(upd);
    find = upd = NULL;
    if (commit(s, err)) goto fail;
    *released = n;
    return 0;
fail:
    sqlite3_finalize(find);
    sqlite3_finalize(upd);
    rollback(s);
    return -1;
}

int store_retry_failed(store_t *s, int64_t experiment_id, int *retried, err_t *err) {
    *retried = 0;
    /* ?1: the experiment.  Records first (they reference the trial rows). */
    static const char *const deletes[] = {
        "DELETE FROM metric WHERE trial_id IN (SELECT id FROM trial WHERE experiment_id = ?1 "
        "AND status = 'failed')",
        "DELETE FROM gate WHERE trial_id IN (SELECT id FROM trial WHERE experiment_id = ?1 "
        "AND status = 'failed')",
        "DELETE FROM gate_hist WHERE trial_id IN (SELECT id FROM trial WHERE experiment_id = ?1 "
        "AND status = 'failed')",
        "DELETE FROM route WHERE trial_id IN (SELECT id FROM trial WHERE experiment_id = ?1 "
        "AND status = 'failed')",
        "DELETE FROM route_step WHERE trial_id IN (SELECT id FROM trial WHERE experiment_id = ?1 "
        "AND status = 'failed')",
        "DELETE FROM tensor WHERE trial_id IN (SELECT id FROM trial WHERE experiment_id = ?1 "
        "AND status = 'failed')",
        "DELETE FROM weights WHERE trial_id IN (SELECT id FROM trial WHERE experiment_id = ?1 "
        "AND status = 'failed')",
        "UPDATE trial SET status = 'pending', error = NULL, failed_step = NULL, kills = 0, "
        "host = NULL, pid = NULL, pid_start = NULL, started = NULL, finished = NULL, "
        "seconds_data = NULL, seconds_train = NULL, seconds_gates = NULL, "
        "seconds_store = NULL, final_step = NULL WHERE experiment_id = ?1 AND status = 'failed'",
    };
    const int n_stmts = (int)(sizeof deletes / sizeof deletes[0]);
    sqlite3_stmt *st = NULL;
    if (begin_write(s, err)) return -1;
    for (int i = 0; i < n_stmts; i++) {
        if (prepare(s, &st, deletes[i], err)) goto fail;
        sqlite3_bind_int64(st, 1, experiment_id);
        if (write_step(s, st, "cannot reset failed trials", err)) goto fail;
        if (i == n_stmts - 1) *retried = sqlite3_changes(s->db);
        sqlite3_finalize(st);
        st = NULL;
    }
    if (commit(s, err)) goto fail;
    return 0;
fail:
    *retried = 0;
    sqlite3_finalize(st);
    rollback(s);
    return -1;
}

/* Inside a write transaction: the trial must be `running` under this very
 * process (host and pid). */
static int check_claimed(store_t *s, int64_t trial_id, err_t *err) {
    char host[STORE_HOST_MAX];
    host_name(host);
    sqlite3_stmt *st;
    if (prepare(s, &st, "SELECT status, host, pid FROM trial WHERE id = ?", err)) return -1;
    sqlite3_bind_int64(st, 1, trial_id);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        if (rc == SQLITE_DONE)
            return err_set(err, ERR_FAIL, "%s: no trial %" PRId64, s->path, trial_id);
        return db_fail(s, err, "cannot read the trial");
    }
    const char *status = (const char *)sqlite3_column_text(st, 0);
    const char *claim_host = (const char *)sqlite3_column_text(st, 1);
    bool mine = status && strcmp(status, "running") == 0 && claim_host &&
                strcmp(claim_host, host) == 0 && sqlite3_column_type(st, 2) == SQLITE_INTEGER &&
                sqlite3_column_int64(st, 2) == (int64_t)getpid();
    sqlite3_finalize(st);
    if (!mine)
        return err_set(err, ERR_FAIL, "%s: trial %" PRId64 " is not claimed by this process",
                       s->path, trial_id);
    return 0;
}

static size_t dtype_size(const char *dtype) {
    if (!dtype) return 0;
    if (strcmp(dtype, "float32") == 0) return 4;
    if (strcmp(dtype, "float64") == 0) return 8;
    return 0;
}

/* Inside a write transaction: the metric, gate, histogram, route, route-step,
 * tensor and weight rows of one trial. */
static int write_records(store_t *s, int64_t id, const store_result_t *r, err_t *err) {
    sqlite3_stmt *st = NULL, *hist = NULL;
    if (r->n_metrics > 0) {
        if (prepare(s, &st, "INSERT INTO metric (trial_id, name, step, value) VALUES (?, ?, ?, ?)",
                    err))
            return -1;
        for (int i = 0; i < r->n_metrics; i++) {
            const store_metric_t *m = &r->metrics[i];
            sqlite3_bind_int64(st, 1, id);
            sqlite3_bind_text(st, 2, m->name, -1, SQLITE_STATIC);
            sqlite3_bind_int(st, 3, m->step);
            sqlite3_bind_double(st, 4, m->value); /* NaN becomes NULL */
            if (write_step(s, st, "cannot write metrics", err)) goto fail;
        }
        sqlite3_finalize(st);
        st = NULL;
    }
    if (r->n_gates > 0) {
        if (prepare(s, &st,
                    "INSERT INTO gate (trial_id, gate, expert, mean, std, level, owner, kind, "
                    "hist_lo, hist_hi) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    err) ||
            prepare(s, &hist,
                    "INSERT INTO gate_hist (trial_id, gate, expert, bin, count) "
                    "VALUES (?, ?, ?, ?, ?)",
                    err))
            goto fail;
        for (int i = 0; i < r->n_gates; i++) {
            const store_gate_t *g = &r->gates[i];
            sqlite3_bind_int64(st, 1, id);
            sqlite3_bind_text(st, 2, g->gate, -1, SQLITE_STATIC);
            sqlite3_bind_int(st, 3, g->expert);
            sqlite3_bind_double(st, 4, g->mean);
            sqlite3_bind_double(st, 5, g->std);
            sqlite3_bind_int(st, 6, g->level > 0 ? g->level : 1);
            sqlite3_bind_text(st, 7, g->owner ? g->owner : g->gate, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 8, g->kind ? g->kind : "softmax", -1, SQLITE_STATIC);
            sqlite3_bind_double(st, 9, g->hist_lo);
            sqlite3_bind_double(st, 10, g->hist_hi > g->hist_lo ? g->hist_hi : g->hist_lo + 1);
            if (write_step(s, st, "cannot write gates", err)) goto fail;
            for (int b = 0; b < g->bins && g->hist; b++) {
                sqlite3_bind_int64(hist, 1, id);
                sqlite3_bind_text(hist, 2, g->gate, -1, SQLITE_STATIC);
                sqlite3_bind_int(hist, 3, g->expert);
                sqlite3_bind_int(hist, 4, b);
                sqlite3_bind_int64(hist, 5, g->hist[b]);
                if (write_step(s, hist, "cannot write gate histograms", err)) goto fail;
            }
        }
        sqlite3_finalize(st);
        sqlite3_finalize(hist);
        st = hist = NULL;
    }
    if (r->n_routes > 0) {
        if (prepare(s, &st,
                    "INSERT INTO route (trial_id, layer, src, dst, kind, value) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    err))
            return -1;
        for (int i = 0; i < r->n_routes; i++) {
            const store_route_t *rt = &r->routes[i];
            sqlite3_bind_int64(st, 1, id);
            sqlite3_bind_int(st, 2, rt->layer);
            sqlite3_bind_int(st, 3, rt->src);
            sqlite3_bind_int(st, 4, rt->dst);
            sqlite3_bind_text(st, 5, rt->kind, -1, SQLITE_STATIC);
            sqlite3_bind_double(st, 6, rt->value);
            if (write_step(s, st, "cannot write routes", err)) goto fail;
        }
        sqlite3_finalize(st);
        st = NULL;
    }
    if (r->n_route_steps > 0) {
        if (prepare(s, &st,
                    "INSERT INTO route_step (trial_id, step, layer, src, dst, kind, value) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    err))
            return -1;
        for (int i = 0; i < r->n_route_steps; i++) {
            const store_route_step_t *rt = &r->route_steps[i];
            sqlite3_bind_int64(st, 1, id);
            sqlite3_bind_int(st, 2, rt->step);
            sqlite3_bind_int(st, 3, rt->layer);
            sqlite3_bind_int(st, 4, rt->src);
            sqlite3_bind_int(st, 5, rt->dst);
            sqlite3_bind_text(st, 6, rt->kind, -1, SQLITE_STATIC);
            sqlite3_bind_double(st, 7, rt->value);
            if (write_step(s, st, "cannot write the routes of each step", err)) goto fail;
        }
        sqlite3_finalize(st);
        st = NULL;
    }
    if (r->n_tensors > 0) {
        if (prepare(
                s, &st,
                "INSERT INTO tensor (trial_id, name, rows, cols, offset) VALUES (?, ?, ?, ?, ?)",
                err))
            return -1;
        for (int i = 0; i < r->n_tensors; i++) {
            const store_tensor_t *t = &r->tensors[i];
            if (r->n_weights > 0 &&
                (t->rows < 0 || t->cols < 0 ||
                 t->offset + (size_t)t->rows * (size_t)t->cols > r->n_weights)) {
                err_set(err, ERR_FAIL,
                        "%s: trial %" PRId64 ": tensor %s (%dx%d at %zu) lies outside the %zu "
                        "parameters",
                        s->path, id, t->name, t->rows, t->cols, t->offset, r->n_weights);
                goto fail;
            }
            sqlite3_bind_int64(st, 1, id);
            sqlite3_bind_text(st, 2, t->name, -1, SQLITE_STATIC);
            sqlite3_bind_int(st, 3, t->rows);
            sqlite3_bind_int(st, 4, t->cols);
            sqlite3_bind_int64(st, 5, (int64_t)t->offset);
            if (write_step(s, st, "cannot write tensors", err)) goto fail;
        }
        sqlite3_finalize(st);
        st = NULL;
    }
    if (r->weights) {
        size_t size = dtype_size(r->dtype);
        if (size == 0) {
            err_set(err, ERR_FAIL,
                    "%s: trial %" PRId64 ": weights dtype '%s' is not float32 or "
                    "float64",
                    s->path, id, r->dtype ? r->dtype : "(none)");
            goto fail;
        }
        if (r->n_weights > (size_t)INT64_MAX / size) {
            err_set(err, ERR_FAIL, "%s: trial %" PRId64 ": %zu weights are too many", s->path, id,
                    r->n_weights);
            goto fail;
        }
        if (prepare(s, &st, "INSERT INTO weights (trial_id, dtype, n, data) VALUES (?, ?, ?, ?)",
                    err))
            return -1;
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, r->dtype, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, (int64_t)r->n_weights);
        sqlite3_bind_blob64(st, 4, r->weights, (sqlite3_uint64)(r->n_weights * size),
                            SQLITE_STATIC);
        if (write_step(s, st, "cannot write weights", err)) goto fail;
        sqlite3_finalize(st);
        st = NULL;
    }
    return 0;
fail:
    sqlite3_finalize(st);
    sqlite3_finalize(hist);
    return -1;
}

static void bind_seconds(sqlite3_stmt *st, int i, const store_result_t *r, double v) {
    if (r)
        sqlite3_bind_double(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

/* store_finish and store_fail: one transaction with the records and the
 * trial's final state.  seconds_store is measured from entry up to the final
 * UPDATE (the last statement before COMMIT); the COMMIT itself -- a WAL append
 * and, with synchronous=NORMAL, no fsync -- is not included. */
static int close_trial(store_t *s, int64_t id, bool failed, int step, const char *reason,
                       const store_result_t *r, err_t *err) {
    double t0 = monotonic_seconds();
    char now[32];
    now_iso(now);
    sqlite3_stmt *st = NULL;
    if (begin_write(s, err)) return -1;
    if (check_claimed(s, id, err)) goto fail;
    if (r && write_records(s, id, r, err)) goto fail;
    if (prepare(s, &st,
                "UPDATE trial SET status = ?, finished = ?, error = ?, failed_step = ?, "
                "final_step = ?, n_params = coalesce(?, n_params), seconds_data = ?, seconds_train "
                "= ?, "
                "seconds_gates = ?, seconds_store = ? WHERE id = ?",
                err))
        goto fail;
    sqlite3_bind_text(st, 1, failed ? "failed" : "done", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, now, -1, SQLITE_STATIC);
    if (failed) {
        sqlite3_bind_text(st, 3, reason ? reason : "unknown error", -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 4, step);
    }
    if (r) sqlite3_bind_int(st, 5, r->final_step);
    if (r && (r->weights || r->n_weights > 0)) sqlite3_bind_int64(st, 6, (int64_t)r->n_weights);
    bind_seconds(st, 7, r, r ? r->seconds_data : 0);
    bind_seconds(st, 8, r, r ? r->seconds_train : 0);
    bind_seconds(st, 9, r, r ? r->seconds_gates : 0);
    sqlite3_bind_double(st, 10, monotonic_seconds() - t0);
    sqlite3_bind_int64(st, 11, id);
    if (write_step(s, st, failed ? "cannot mark the trial failed" : "cannot mark the trial done",
                   err))
        goto fail;
    sqlite3_finalize(st);
    st = NULL;
    if (commit(s, err)) goto fail;
    return 0;
fail:
    sqlite3_finalize(st);
    rollback(s);
    return -1;
}

int store_finish(store_t *s, int64_t trial_id, const store_result_t *r, err_t *err) {
    return close_trial(s, trial_id, false, 0, NULL, r, err);
}

int store_fail(store_t *s, int64_t trial_id, int step, const char *reason,
               const store_result_t *partial, err_t *err) {
    return close_trial(s, trial_id, true, step, reason, partial, err);
}

int store_release(store_t *s, int64_t trial_id, err_t *err) {
    sqlite3_stmt *st = NULL;
    if (begin_write(s, err)) return -1;
    if (check_claimed(s, trial_id, err)) goto fail;
    if (prepare(s, &st,
                "UPDATE trial SET status = 'pending', host = NULL, pid = NULL, pid_start = NULL, "
                "started = NULL WHERE id = ?",
                err))
        goto fail;
    sqlite3_bind_int64(st, 1, trial_id);
    if (write_step(s, st, "cannot release the trial", err)) goto fail;
    sqlite3_finalize(st);
    st = NULL;
    if (commit(s, err)) goto fail;
    return 0;
fail:
    sqlite3_finalize(st);
    rollback(s);
    return -1;
}

int store_counts(store_t *s, int64_t experiment_id, store_counts_t *out, err_t *err) {
    memset(out, 0, sizeof *out);
    char host[STORE_HOST_MAX];
    host_name(host);
    sqlite3_stmt *st;
    if (prepare(s, &st,
                s->restricted
                    ? "SELECT status, count(*), sum(status = 'running' AND host IS NOT ?2), "
                      "sum(status = 'pending' AND NOT " CLAIMABLE ") FROM trial "
                      "WHERE experiment_id = ?1 GROUP BY status"
                    : "SELECT status, count(*), sum(status = 'running' AND host IS NOT ?2), 0 "
                      "FROM trial WHERE experiment_id = ?1 GROUP BY status",
                err))
        return -1;
    sqlite3_bind_int64(st, 1, experiment_id);
    sqlite3_bind_text(st, 2, host, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *status = (const char *)sqlite3_column_text(st, 0);
        int n = sqlite3_column_int(st, 1);
        if (strcmp(status, "pending") == 0) {
            out->pending = n;
            out->unclaimable = sqlite3_column_int(st, 3);
        } else if (strcmp(status, "running") == 0) {
            out->running = n;
            out->running_elsewhere = sqlite3_column_int(st, 2);
        } else if (strcmp(status, "done") == 0)
            out->done = n;
        else if (strcmp(status, "failed") == 0)
            out->failed = n;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return db_fail(s, err, "cannot count trials");
    return 0;
}
