/* test_store.c -- the run store (src/store) and the commands that read it
 * (mtlab ls, show, sql, export).
 *
 * What users rely on: the schema and its views answer their queries; a trial
 * is claimed by one process only, even under contention; a trial's results are
 * all there or not at all (every write of store_finish is made to fail in
 * turn); a killed claimer's trial is taken up again, a live one's is not; bad
 * files and paths give clear errors; the read commands never write. */
#define _GNU_SOURCE /* unshare */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <stdbool.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csv.h>
#include <sqlite3.h>

#include "core/version.h"
#include "store/query.h"
#include "core/embedded.h"
#include "store/store.h"
#include "testutil.h"

#define N_STEPS    3 /* evaluations in the fixture curves: steps 0, 10, 20 */
#define FINAL_STEP 20
#define N_BINS     5
#define TEST_SIZE  100 /* examples behind each gate histogram */
#define N_WEIGHTS  24

/* ---- fixtures ---------------------------------------------------------- */

static char *path_in(const char *dir, const char *name) {
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

static store_t *open_or_die(const char *path, int flags) {
    store_t *s = NULL;
    err_t err = {0};
    int rc = store_open(&s, path, flags, &err);
    ck_assert_msg(rc == 0, "store_open(%s): %s", path, err.msg);
    return s;
}

/* The single integer a query returns. */
static long long q_int(store_t *s, const char *sql) {
    sqlite3_stmt *st;
    ck_assert_msg(sqlite3_prepare_v2(store_db(s), sql, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql,
                  sqlite3_errmsg(store_db(s)));
    ck_assert_msg(sqlite3_step(st) == SQLITE_ROW, "%s: no row", sql);
    long long v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static double q_real(store_t *s, const char *sql) {
    sqlite3_stmt *st;
    ck_assert_msg(sqlite3_prepare_v2(store_db(s), sql, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql,
                  sqlite3_errmsg(store_db(s)));
    ck_assert_msg(sqlite3_step(st) == SQLITE_ROW, "%s: no row", sql);
    double v = sqlite3_column_double(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* The single text a query returns, copied into buf. */
static const char *q_text(store_t *s, const char *sql, char *buf, size_t size) {
    sqlite3_stmt *st;
    ck_assert_msg(sqlite3_prepare_v2(store_db(s), sql, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql,
                  sqlite3_errmsg(store_db(s)));
    ck_assert_msg(sqlite3_step(st) == SQLITE_ROW, "%s: no row", sql);
    const unsigned char *t = sqlite3_column_text(st, 0);
    snprintf(buf, size, "%s", t ? (const char *)t : "(null)");
    sqlite3_finalize(st);
    return buf;
}

static void exec_or_die(store_t *s, const char *sql) {
    char *msg = NULL;
    ck_assert_msg(sqlite3_exec(store_db(s), sql, NULL, NULL, &msg) == SQLITE_OK, "%s: %s", sql,
                  msg ? msg : "");
}

/* Registers experiment "exp" and adds n trials: models alternate mmoe /
 * shared_bottom; trial i has correlation 0.5 or 0.9 (i/2 even/odd), lr 0.001
 * or 0.01 (i/4 even/odd) and repeat i/8.  Params are kept as text like the
 * sweep code hands them. */
#define MAX_FIXTURE 64
typedef struct {
    char config[MAX_FIXTURE][128];
    char corr[MAX_FIXTURE][16], lr[MAX_FIXTURE][16];
    store_kv_t kv[MAX_FIXTURE][5];
    store_trial_t trials[MAX_FIXTURE];
} fixture_t;

static int64_t add_fixture(store_t *s, int n, int *added) {
    static fixture_t fx; /* large: not on the stack */
    ck_assert(n <= MAX_FIXTURE);
    err_t err = {0};
    int64_t exp_id;
    ck_assert_msg(store_experiment(s, "exp", "a test experiment", "[experiment]\nname = exp\n", 2,
                                   false, &exp_id, &err) == 0,
                  "%s", err.msg);
    for (int i = 0; i < n; i++) {
        const char *model = i % 2 ? "shared_bottom" : "mmoe";
        snprintf(fx.corr[i], sizeof fx.corr[i], "%s", (i / 2) % 2 ? "0.9" : "0.5");
        snprintf(fx.lr[i], sizeof fx.lr[i], "%s", (i / 4) % 2 ? "0.01" : "0.001");
        snprintf(fx.config[i], sizeof fx.config[i],
                 "data.correlation=%s;data.tasks=2;model.name=%s;train.lr=%s", fx.corr[i], model,
                 fx.lr[i]);
        fx.kv[i][0] = (store_kv_t){"data.correlation", fx.corr[i]};
        fx.kv[i][1] = (store_kv_t){"data.tasks", "2"};
        fx.kv[i][2] = (store_kv_t){"model.name", model};
        fx.kv[i][3] = (store_kv_t){"train.lr", fx.lr[i]};
        fx.kv[i][4] = (store_kv_t){"data.alpha", "normal"};
        fx.trials[i] = (store_trial_t){
            .repeat = i / 8,
            .model = model,
            .config = fx.config[i],
            .data_seed = 1000 + (uint64_t)(i / 8),
            .init_seed = 5000 + (uint64_t)i,
            .n_params = 5,
            .params = fx.kv[i],
            .model_params = 777,
        };
    }
    int dummy;
    ck_assert_msg(store_add_trials(s, exp_id, fx.trials, n, added ? added : &dummy, &err) == 0,
                  "%s", err.msg);
    return exp_id;
}

/* A complete result: 3 curves at steps 0, 10, 20 whose values encode the
 * offset v, gates t1/t2 x 3 experts with 5-bin histograms summing to
 * TEST_SIZE, two tensors over N_WEIGHTS float32 weights. */
typedef struct {
    char names[3][32];
    store_metric_t metrics[3 * N_STEPS];
    long hist[6][N_BINS];
    store_gate_t gates[6];
    store_tensor_t tensors[2];
    float weights[N_WEIGHTS];
    store_result_t r;
} result_t;

static void make_result(result_t *x, double v) {
    memset(x, 0, sizeof *x);
    const char *names[3] = {"test/loss/t1", "val/loss/total", "test/loss/total"};
    for (int k = 0; k < 3; k++) {
        snprintf(x->names[k], sizeof x->names[k], "%s", names[k]);
        for (int j = 0; j < N_STEPS; j++)
            x->metrics[k * N_STEPS + j] = (store_metric_t){x->names[k], 10 * j, v + k + 0.1 * j};
    }
    for (int g = 0; g < 6; g++) {
        for (int b = 0; b < N_BINS; b++)
            x->hist[g][b] = b == g % N_BINS ? 0 : TEST_SIZE / 4;
        /* level, owner and kind left out: the defaults of a softmax gate */
        x->gates[g] = (store_gate_t){.gate = g < 3 ? "t1" : "t2",
                                     .expert = g % 3,
                                     .mean = 0.25 + 0.1 * g,
                                     .std = 0.05,
                                     .bins = N_BINS,
                                     .hist = x->hist[g]};
    }
    x->tensors[0] = (store_tensor_t){"expert0.w", 4, 4, 0};
    x->tensors[1] = (store_tensor_t){"gate.w", 2, 4, 16};
    for (int i = 0; i < N_WEIGHTS; i++)
        x->weights[i] = (float)i * 0.5f - 3.0f;
    x->r = (store_result_t){
        .n_metrics = 3 * N_STEPS,
        .metrics = x->metrics,
        .n_gates = 6,
        .gates = x->gates,
        .n_tensors = 2,
        .tensors = x->tensors,
        .weights = x->weights,
        .n_weights = N_WEIGHTS,
        .dtype = "float32",
        .final_step = FINAL_STEP,
        .seconds_data = 0.5,
        .seconds_train = 2.5,
        .seconds_gates = 0.25,
    };
}

static int64_t claim_or_die(store_t *s, int64_t exp_id) {
    store_claim_t c;
    err_t err = {0};
    int rc = store_claim(s, exp_id, &c, &err);
    ck_assert_msg(rc == 1, "store_claim returned %d: %s", rc, err.msg);
    return c.id;
}

/* Rows of one trial in every results table. */
static long long result_rows(store_t *s, int64_t id) {
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT (SELECT count(*) FROM metric WHERE trial_id = %1$lld) +"
             " (SELECT count(*) FROM gate WHERE trial_id = %1$lld) +"
             " (SELECT count(*) FROM gate_hist WHERE trial_id = %1$lld) +"
             " (SELECT count(*) FROM tensor WHERE trial_id = %1$lld) +"
             " (SELECT count(*) FROM weights WHERE trial_id = %1$lld)",
             (long long)id);
    return q_int(s, sql);
}

static const char *trial_status(store_t *s, int64_t id, char *buf, size_t size) {
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT status FROM trial WHERE id = %lld", (long long)id);
    return q_text(s, sql, buf, size);
}

/* Start time (/proc/PID/stat field 22) of a process. */
static long long proc_start(pid_t pid) {
    char path[64], line[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    ck_assert(f != NULL);
    size_t n = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[n] = '\0';
    char *p = strrchr(line, ')') + 2; /* field 3 */
    for (int field = 3; field < 22; field++)
        p = strchr(p, ' ') + 1;
    return strtoll(p, NULL, 10);
}

static void mark_running(store_t *s, int64_t id, const char *host, long long pid,
                         long long pid_start) {
    char sql[512];
    snprintf(sql, sizeof sql,
             "UPDATE trial SET status = 'running', host = '%s', pid = %lld, pid_start = %lld "
             "WHERE id = %lld",
             host, pid, pid_start, (long long)id);
    exec_or_die(s, sql);
}

/* ---- schema and open --------------------------------------------------- */

START_TEST(schema_applied) {
    char *dir = test_tmpdir(), *path = path_in(dir, "results.db"), buf[64];
    store_t *s = open_or_die(path, 0);
    ck_assert_str_eq(
        q_text(s, "SELECT value FROM meta WHERE key = 'schema_version'", buf, sizeof buf), "8");
    ck_assert_int_eq(STORE_SCHEMA_VERSION, 8);
    ck_assert_int_eq(
        q_int(s, "SELECT count(*) FROM pragma_table_info('trial') WHERE name = 'kills'"), 1);
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM pragma_table_info('gate') WHERE name IN "
                              "('level', 'owner', 'kind', 'hist_lo', 'hist_hi')"),
                     5);
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM sqlite_master WHERE type = 'view'"), 5);
    ck_assert_str_eq(q_text(s, "PRAGMA journal_mode", buf, sizeof buf), "wal");
    ck_assert_int_eq(q_int(s, "PRAGMA foreign_keys"), 1);
    const char *names[] = {"meta",    "experiment", "trial",     "param",     "metric",
                           "gate",    "gate_hist",  "route",     "tensor",    "weights",
                           "v_final", "v_curve",    "v_best_lr", "route_step"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM sqlite_master WHERE name = '%s'", names[i]);
        ck_assert_msg(q_int(s, sql) == 1, "missing %s", names[i]);
    }
    store_close(s);
    /* Reopening keeps it (no second schema), read-only too. */
    s = open_or_die(path, 0);
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM meta"), 1);
    store_close(s);
    s = open_or_die(path, STORE_READONLY);
    ck_assert_str_eq(q_text(s, "PRAGMA integrity_check", buf, sizeof buf), "ok");
    store_close(s);
    free(path);
    free(dir);
}
END_TEST

/* Every embedded file is byte for byte the file under sql/ (the Makefile's
 * escaping of \\, " and ? round-trips). */
START_TEST(schema_embedded) {
    ck_assert_ptr_nonnull(embedded_sql("sql/schema.sql"));
    int files = 0;
    for (const embedded_file_t *e = embedded_sql_files; e->path; e++, files++) {
        FILE *f = fopen(e->path, "rb");
        ck_assert_msg(f != NULL, "%s not found: run the tests from the repository root", e->path);
        char *text = malloc(1 << 20);
        size_t n = fread(text, 1, (1 << 20) - 1, f);
        fclose(f);
        text[n] = '\0';
        ck_assert_msg(n == strlen(e->text) && strcmp(text, e->text) == 0,
                      "the embedded %s differs from the file (rebuild)", e->path);
        free(text);
    }
    ck_assert_int_ge(files, 1);
}
END_TEST

/* Copies the committed schema-2 store (tests/fixtures/schema2.db, made by
 * mtlab 8d32105 from tests/fixtures/schema2.ini: 5 trials done, 3 pending)
 * to `path`. */
static void copy_fixture(const char *path) {
    FILE *in = fopen("tests/fixtures/schema2.db", "rb");
    ck_assert_msg(in != NULL, "tests/fixtures/schema2.db not found: run from the repository root");
    FILE *out = fopen(path, "wb");
    ck_assert_ptr_nonnull(out);
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        ck_assert_uint_eq(fwrite(buf, 1, n, out), n);
    fclose(in);
    ck_assert_int_eq(fclose(out), 0);
}

/* A schema-2 store written by an older mtlab is upgraded when opened, for
 * writing or read-only: every migration is applied, its views recreated, its
 * rows untouched. */
START_TEST(older_schema_upgraded) {
    char *dir = test_tmpdir(), *path = path_in(dir, "results.db"), buf[64];
    for (int readonly = 0; readonly <= 1; readonly++) {
        unlink(path);
        copy_fixture(path);
        store_t *s = open_or_die(path, readonly ? STORE_READONLY : 0);
        ck_assert_str_eq(
            q_text(s, "SELECT value FROM meta WHERE key = 'schema_version'", buf, sizeof buf), "8");
        ck_assert_int_eq(q_int(s, "SELECT count(*) FROM sqlite_master WHERE type = 'view'"), 5);
        ck_assert_int_eq(q_int(s, "SELECT count(*) FROM trial WHERE status = 'done'"), 5);
        /* 004: the old gates are single-level softmax gates owned by their task */
        ck_assert_int_eq(q_int(s, "SELECT count(*) FROM gate"), 8);
        ck_assert_int_eq(q_int(s, "SELECT count(*) FROM gate WHERE level = 1 AND owner = gate AND "
                                  "kind = 'softmax' AND hist_lo = 0 AND hist_hi = 1"),
                         8);
        /* ... and the trials whose weights were stored keep their counts */
        ck_assert_int_eq(q_int(s, "SELECT count(*) FROM trial WHERE n_params = "
                                  "(SELECT n FROM weights WHERE trial_id = trial.id)"),
                         5);
        ck_assert_int_eq(q_int(s, "SELECT count(*) FROM trial WHERE status = 'pending'"), 3);
        ck_assert_int_eq(q_int(s, "SELECT sum(kills) FROM trial"), 0);
        /* written by mtlab before issue 9: trial identity 1 */
        ck_assert_int_eq(q_int(s, "SELECT count(*) FROM experiment WHERE identity = 1"), 1);
        ck_assert_int_eq(q_int(s, "SELECT count(DISTINCT trial_id) FROM metric"), 5);
        ck_assert_int_eq(q_int(s, "SELECT count(*) FROM v_setting"), 8); /* a row per trial */
        ck_assert_str_eq(q_text(s, "PRAGMA integrity_check", buf, sizeof buf), "ok");
        store_close(s);
    }
    free(path);
    free(dir);
}
END_TEST

/* A version-1 store (views without v_setting) goes through every step. */
START_TEST(version1_upgraded) {
    char *dir = test_tmpdir(), *path = path_in(dir, "results.db"), buf[64];
    copy_fixture(path);
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db,
                                  "DROP VIEW v_curve; DROP VIEW v_best_lr; DROP VIEW v_setting;"
                                  "CREATE VIEW v_curve AS SELECT 1 AS old;"
                                  "UPDATE meta SET value = '1' WHERE key = 'schema_version'",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    store_t *s = open_or_die(path, 0);
    ck_assert_str_eq(
        q_text(s, "SELECT value FROM meta WHERE key = 'schema_version'", buf, sizeof buf), "8");
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM sqlite_master WHERE type = 'view'"), 5);
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM v_curve WHERE step = 40") > 0, 1);
    store_close(s);
    free(path);
    free(dir);
}
END_TEST

/* A migration that fails leaves the store exactly as it was: the upgrade is
 * one transaction (here the column 003 adds already exists). */
START_TEST(failed_migration_rolled_back) {
    char *dir = test_tmpdir(), *path = path_in(dir, "results.db"), buf[64];
    copy_fixture(path);
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(
        sqlite3_exec(db, "ALTER TABLE trial ADD COLUMN kills INTEGER", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    store_t *s = NULL;
    err_t err = {0};
    ck_assert_int_eq(store_open(&s, path, 0, &err), -1);
    ck_assert_msg(strstr(err.msg, "sql/migrations/003-claims.sql") && strstr(err.msg, "kills"),
                  "%s", err.msg);
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'schema_version'",
                                        -1, &st, NULL),
                     SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    snprintf(buf, sizeof buf, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
    ck_assert_str_eq(buf, "2");
    free(path);
    free(dir);
}
END_TEST

/* Trial identity (issue 9): an experiment whose trials' configs follow
 * another rule is refused before anything changes, with a way out; one
 * without trials is taken over; a new one records the caller's. */
START_TEST(identity_refused) {
    char *dir = test_tmpdir(), *path = path_in(dir, "results.db"), buf[256];
    copy_fixture(path);
    store_t *s = open_or_die(path, 0);
    exec_or_die(s, "UPDATE experiment SET spec = 'old spec'");
    int64_t id;
    err_t err = {0};
    for (int replace = 0; replace <= 1; replace++) {
        ck_assert_int_eq(store_experiment(s, "fixture", "", "new spec", 2, replace, &id, &err), -1);
        ck_assert_int_eq(err.kind, ERR_USAGE);
        ck_assert_msg(strstr(err.msg, "experiment 'fixture'") &&
                          strstr(err.msg, "has 8 trials of trial identity 1, this mtlab writes "
                                          "identity 2") &&
                          strstr(err.msg, "stay readable") && strstr(err.msg, "new --db") &&
                          strstr(err.msg, "rename the experiment"),
                      "%s", err.msg);
        ck_assert_str_eq(q_text(s, "SELECT spec FROM experiment", buf, sizeof buf), "old spec");
        ck_assert_int_eq(q_int(s, "SELECT identity FROM experiment"), 1);
    }
    /* Without trials there is nothing to mix up: it takes identity 2. */
    exec_or_die(s, "DELETE FROM param; DELETE FROM metric; DELETE FROM gate_hist; DELETE FROM gate;"
                   "DELETE FROM tensor; DELETE FROM weights; DELETE FROM trial");
    ck_assert_msg(store_experiment(s, "fixture", "", "old spec", 2, false, &id, &err) == 0, "%s",
                  err.msg);
    ck_assert_int_eq(q_int(s, "SELECT identity FROM experiment"), 2);
    ck_assert_msg(store_experiment(s, "new", "", "spec", 2, false, &id, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(q_int(s, "SELECT identity FROM experiment WHERE name = 'new'"), 2);
    store_close(s);
    free(path);
    free(dir);
}
END_TEST

START_TEST(newer_schema_refused) {
    char *dir = test_tmpdir(), *path = path_in(dir, "results.db");
    store_t *s = open_or_die(path, 0);
    exec_or_die(s, "UPDATE meta SET value = '9' WHERE key = 'schema_version'");
    store_close(s);
    err_t err = {0};
    ck_assert_int_eq(store_open(&s, path, 0, &err), -1);
    ck_assert_ptr_null(s);
    ck_assert_int_eq(err.kind, ERR_FAIL);
    ck_assert_msg(strstr(err.msg, "has schema version 9, this mtlab understands 8") &&
                      strstr(err.msg, path),
                  "%s", err.msg);
    free(path);
    free(dir);
}
END_TEST

START_TEST(not_a_store) {
    char *dir = test_tmpdir(), *junk = path_in(dir, "junk.db"), *other = path_in(dir, "other.db");
    FILE *f = fopen(junk, "wb");
    for (int i = 0; i < 4096; i++)
        fputc((i * 7919) & 0xff, f);
    fclose(f);
    for (int flags = 0; flags <= STORE_READONLY; flags += STORE_READONLY) {
        store_t *s = NULL;
        err_t err = {0};
        ck_assert_int_eq(store_open(&s, junk, flags, &err), -1);
        ck_assert_int_eq(err.kind, ERR_FAIL);
        ck_assert_msg(strstr(err.msg, junk) && strstr(err.msg, "not an SQLite database"), "%s",
                      err.msg);
    }
    /* Another application's database: tables but no meta. */
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(other, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "CREATE TABLE songs (title TEXT)", NULL, NULL, NULL), 0);
    sqlite3_close(db);
    store_t *s = NULL;
    err_t err = {0};
    ck_assert_int_eq(store_open(&s, other, 0, &err), -1);
    ck_assert_msg(strstr(err.msg, other) && strstr(err.msg, "not an mtlab store"), "%s", err.msg);
    /* The file was left alone. */
    ck_assert_int_eq(sqlite3_open(other, &db), SQLITE_OK);
    sqlite3_stmt *st;
    ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master", -1, &st, NULL),
                     SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    ck_assert_int_eq(sqlite3_column_int(st, 0), 1);
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(junk);
    free(other);
    free(dir);
}
END_TEST

START_TEST(bad_paths) {
    store_t *s = NULL;
    err_t err = {0};
    const char *nodir = "/nonexistent-mtlab-dir/sub/results.db";
    ck_assert_int_eq(store_open(&s, nodir, 0, &err), -1);
    ck_assert_int_eq(err.kind, ERR_FAIL);
    ck_assert_msg(strstr(err.msg, "cannot open /nonexistent-mtlab-dir/sub/results.db: "), "%s",
                  err.msg);
    char *dir = test_tmpdir(), *missing = path_in(dir, "missing.db");
    ck_assert_int_eq(store_open(&s, missing, STORE_READONLY, &err), -1);
    char expect[512];
    snprintf(expect, sizeof expect, "cannot open %s: no such file", missing);
    ck_assert_str_eq(err.msg, expect);
    struct stat sb;
    ck_assert_int_ne(stat(missing, &sb), 0); /* read-only never creates */
    /* A directory is not a store. */
    ck_assert_int_eq(store_open(&s, dir, 0, &err), -1);
    ck_assert_msg(strstr(err.msg, dir), "%s", err.msg);
    free(missing);
    free(dir);
}
END_TEST

START_TEST(readonly_never_writes) {
    char *dir = test_tmpdir(), *path = path_in(dir, "results.db");
    store_t *s = open_or_die(path, 0);
    add_fixture(s, 2, NULL);
    store_close(s);
    s = open_or_die(path, STORE_READONLY);
    err_t err = {0};
    int64_t id;
    ck_assert_int_eq(store_experiment(s, "x", "", "spec", 2, false, &id, &err), -1);
    ck_assert_int_eq(store_experiment(s, "exp", "", "other spec", 2, true, &id, &err), -1);
    char *msg = NULL;
    ck_assert_int_ne(sqlite3_exec(store_db(s), "DELETE FROM param", NULL, NULL, &msg), SQLITE_OK);
    sqlite3_free(msg);
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM param"), 10);
    store_close(s);
    free(path);
    free(dir);
}
END_TEST

/* ---- experiments and trials -------------------------------------------- */

START_TEST(experiment_registration) {
    char *dir = test_tmpdir(), *path = path_in(dir, "results.db"), buf[256];
    store_t *s = open_or_die(path, 0);
    err_t err = {0};
    int64_t a, b, c;
    ck_assert_int_eq(store_experiment(s, "mmoe-fig4", "desc", "spec v1", 2, false, &a, &err), 0);
    ck_assert_int_eq(store_experiment(s, "mmoe-fig4", "desc", "spec v1", 2, false, &b, &err), 0);
    ck_assert_int_eq(a, b);
    ck_assert_str_eq(q_text(s, "SELECT code_version FROM experiment", buf, sizeof buf),
                     mtlab_version());
    q_text(s, "SELECT created FROM experiment", buf, sizeof buf);
    ck_assert_msg(strlen(buf) == 20 && buf[4] == '-' && buf[10] == 'T' && buf[19] == 'Z', "%s",
                  buf);
    /* A changed spec is refused, naming the experiment and the flag. */
    ck_assert_int_eq(store_experiment(s, "mmoe-fig4", "desc", "spec v2", 2, false, &c, &err), -1);
    ck_assert_int_eq(err.kind, ERR_USAGE);
    char expect[512];
    snprintf(expect, sizeof expect,
             "experiment 'mmoe-fig4' in %s was created from a different spec (use "
             "--replace-spec to continue it with the new one, or rename the experiment)",
             path);
    ck_assert_str_eq(err.msg, expect);
    /* Replacing keeps the id and the trials. */
    int added;
    add_fixture(s, 4, &added); /* experiment "exp" */
    ck_assert_int_eq(store_experiment(s, "exp", "new", "new spec", 2, true, &c, &err), 0);
    ck_assert_int_eq(q_int(s, "SELECT id FROM experiment WHERE name = 'exp'"), c);
    ck_assert_str_eq(q_text(s, "SELECT spec FROM experiment WHERE name = 'exp'", buf, sizeof buf),
                     "new spec");
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM trial"), 4);
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM experiment"), 2);
    store_close(s);
    free(path);
    free(dir);
}
END_TEST

START_TEST(add_trials_idempotent_typed) {
    char *dir = test_tmpdir(), *path = path_in(dir, "results.db"), buf[64];
    store_t *s = open_or_die(path, 0);
    int added;
    int64_t exp_id = add_fixture(s, 16, &added);
    ck_assert_int_eq(added, 16);
    ck_assert_int_eq(add_fixture(s, 16, &added), exp_id);
    ck_assert_int_eq(added, 0);
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM trial WHERE status = 'pending'"), 16);
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM param"), 16 * 5);
    /* Numbers compare as numbers: 8 trials have lr 0.001. */
    ck_assert_int_eq(
        q_int(s, "SELECT count(*) FROM param WHERE key = 'train.lr' AND value < 0.005"), 8);
    ck_assert_str_eq(q_text(s, "SELECT typeof(value) FROM param WHERE key = 'train.lr' LIMIT 1",
                            buf, sizeof buf),
                     "real");
    ck_assert_str_eq(q_text(s, "SELECT typeof(value) FROM param WHERE key = 'data.tasks' LIMIT 1",
                            buf, sizeof buf),
                     "integer");
    ck_assert_str_eq(q_text(s, "SELECT typeof(value) FROM param WHERE key = 'model.name' LIMIT 1",
                            buf, sizeof buf),
                     "text");
    ck_assert_int_eq(q_int(s, "SELECT data_seed FROM trial WHERE id = 9"), 1001);

    /* Text that only looks numeric to strtod stays text; seeds up to 2^63-1. */
    err_t err = {0};
    store_kv_t kv[] = {{"a", "0x10"},    {"b", "inf"},   {"c", "nan"}, {"d", " 1"},
                       {"e", "-2.5e-3"}, {"f", "1e400"}, {"g", ""}};
    store_trial_t t = {.repeat = 0,
                       .model = "mmoe",
                       .config = "odd",
                       .data_seed = INT64_MAX,
                       .init_seed = 1,
                       .n_params = 7,
                       .params = kv};
    ck_assert_int_eq(store_add_trials(s, exp_id, &t, 1, &added, &err), 0);
    ck_assert_int_eq(added, 1);
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM param WHERE key IN ('a','b','c','d','f','g') "
                              "AND typeof(value) = 'text'"),
                     6);
    ck_assert(q_real(s, "SELECT value FROM param WHERE key = 'e'") == -2.5e-3);
    ck_assert_int_eq(q_int(s, "SELECT data_seed FROM trial WHERE config = 'odd'"), INT64_MAX);
    /* A seed of 64 bits does not fit: an error, and nothing of the batch stays. */
    store_trial_t bad[2] = {t, t};
    bad[0].config = "fine";
    bad[1].config = "too-big";
    bad[1].init_seed = (uint64_t)INT64_MAX + 1;
    ck_assert_int_eq(store_add_trials(s, exp_id, bad, 2, &added, &err), -1);
    ck_assert_msg(strstr(err.msg, "2^63"), "%s", err.msg);
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM trial WHERE config = 'fine'"), 0);
    /* An unknown experiment violates the foreign key. */
    ck_assert_int_eq(store_add_trials(s, 999, &t, 1, &added, &err), -1);
    ck_assert_msg(strstr(err.msg, "FOREIGN KEY"), "%s", err.msg);
    store_close(s);
    free(path);
    free(dir);
}
END_TEST

/* ---- claim, finish, fail, release -------------------------------------- */

/* Gates of any level, owner and kind keep them, with their histogram range;
 * routes are written; the parameter count given at registration stays when
 * no weights are stored. */
START_TEST(gates_routes_params) {
    char *dir = test_tmpdir(), *path = path_in(dir, "results.db"), buf[64];
    store_t *s = open_or_die(path, 0);
    err_t err = {0};
    int64_t exp_id;
    ck_assert_int_eq(store_experiment(s, "levels", NULL, "spec", 2, false, &exp_id, &err), 0);
    store_trial_t t = {.repeat = 0, .model = "adatt", .config = "c", .model_params = 4321};
    int added;
    ck_assert_int_eq(store_add_trials(s, exp_id, &t, 1, &added, &err), 0);
    ck_assert_int_eq(q_int(s, "SELECT n_params FROM trial WHERE id = 1"), 4321);
    int64_t id = claim_or_die(s, exp_id);
    long hist[2][N_BINS] = {{1, 2, 3, 4, 90}, {100, 0, 0, 0, 0}};
    store_gate_t gates[] = {
        {.gate = "l2/t1",
         .expert = 0,
         .mean = 0.5,
         .bins = N_BINS,
         .hist = hist[0],
         .level = 2,
         .owner = "t1",
         .kind = "softmax",
         .hist_lo = 0,
         .hist_hi = 1},
        {.gate = "l1/e3",
         .expert = 0,
         .mean = 1.5,
         .bins = N_BINS,
         .hist = hist[1],
         .level = 1,
         .owner = "e3",
         .kind = "weights",
         .hist_lo = -0.5,
         .hist_hi = 2.25},
    };
    store_route_t routes[] = {{1, 0, 2, "z", 0.75}, {2, 2, 1, "value", 1}};
    store_result_t r = {
        .n_gates = 2, .gates = gates, .n_routes = 2, .routes = routes, .final_step = 1};
    ck_assert_msg(store_finish(s, id, &r, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(q_int(s, "SELECT n_params FROM trial WHERE id = 1"), 4321);
    ck_assert_int_eq(q_int(s, "SELECT level FROM gate WHERE gate = 'l2/t1'"), 2);
    ck_assert_str_eq(q_text(s, "SELECT owner FROM gate WHERE gate = 'l1/e3'", buf, sizeof buf),
                     "e3");
    ck_assert_str_eq(q_text(s, "SELECT kind FROM gate WHERE gate = 'l1/e3'", buf, sizeof buf),
                     "weights");
    ck_assert(q_real(s, "SELECT hist_lo FROM gate WHERE gate = 'l1/e3'") == -0.5);
    ck_assert(q_real(s, "SELECT hist_hi FROM gate WHERE gate = 'l1/e3'") == 2.25);
    ck_assert(q_real(s, "SELECT hist_hi FROM gate WHERE gate = 'l2/t1'") == 1);
    ck_assert_int_eq(q_int(s, "SELECT sum(count) FROM gate_hist WHERE gate = 'l1/e3'"), 100);
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM route WHERE trial_id = 1"), 2);
    ck_assert(q_real(s, "SELECT value FROM route WHERE kind = 'z' AND layer = 1 AND src = 0 AND "
                        "dst = 2") == 0.75);
    /* The schema refuses a kind it does not know. */
    ck_assert_int_ne(sqlite3_exec(store_db(s),
                                  "INSERT INTO gate (trial_id, gate, expert, kind) "
                                  "VALUES (1, 'x', 0, 'other')",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    store_close(s);
    free(path);
    free(dir);
}
END_TEST

START_TEST(claim_finish_roundtrip) {
    char *dir = test_tmpdir(), *path = path_in(dir, "results.db"), buf[256], sql[256];
    store_t *s = open_or_die(path, 0);
    int64_t exp_id = add_fixture(s, 4, NULL);
    store_claim_t c;
    err_t err = {0};
    ck_assert_int_eq(store_claim(s, exp_id, &c, &err), 1);
    ck_assert_int_eq(c.id, 1); /* lowest pending id first */
    ck_assert_int_eq(c.repeat, 0);
    ck_assert_str_eq(c.config, "data.correlation=0.5;data.tasks=2;model.name=mmoe;train.lr=0.001");
    ck_assert_str_eq(trial_status(s, 1, buf, sizeof buf), "running");
    ck_assert_int_eq(q_int(s, "SELECT pid FROM trial WHERE id = 1"), getpid());
    ck_assert_int_eq(q_int(s, "SELECT pid_start FROM trial WHERE id = 1"), proc_start(getpid()));
    char host[256];
    gethostname(host, sizeof host);
    ck_assert_str_eq(q_text(s, "SELECT host FROM trial WHERE id = 1", buf, sizeof buf), host);

    result_t x;
    make_result(&x, 1.0);
    ck_assert_msg(store_finish(s, 1, &x.r, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(trial_status(s, 1, buf, sizeof buf), "done");
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM metric WHERE trial_id = 1"), 3 * N_STEPS);
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM gate WHERE trial_id = 1"), 6);
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM gate_hist WHERE trial_id = 1"), 6 * N_BINS);
    /* Every bin is stored, zeros included: each histogram sums to the test set. */
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM gate_hist WHERE count = 0"), 6);
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM (SELECT sum(count) AS n FROM gate_hist "
                              "GROUP BY trial_id, gate, expert) WHERE n = 100"),
                     6);
    ck_assert(q_real(s, "SELECT mean FROM gate WHERE gate = 't2' AND expert = 1") == 0.25 + 0.4);
    ck_assert_int_eq(q_int(s, "SELECT offset FROM tensor WHERE name = 'gate.w'"), 16);
    ck_assert_int_eq(q_int(s, "SELECT n_params FROM trial WHERE id = 1"), N_WEIGHTS);
    ck_assert_int_eq(q_int(s, "SELECT final_step FROM trial WHERE id = 1"), FINAL_STEP);
    ck_assert(q_real(s, "SELECT seconds_train FROM trial WHERE id = 1") == 2.5);
    ck_assert(q_real(s, "SELECT seconds_store FROM trial WHERE id = 1") >= 0);
    ck_assert_int_eq(q_int(s, "SELECT seconds_store IS NOT NULL FROM trial WHERE id = 1"), 1);
    /* The blob round-trips byte for byte. */
    sqlite3_stmt *st;
    ck_assert_int_eq(sqlite3_prepare_v2(store_db(s),
                                        "SELECT dtype, n, data FROM weights WHERE trial_id = 1", -1,
                                        &st, NULL),
                     SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "float32");
    ck_assert_int_eq(sqlite3_column_int(st, 1), N_WEIGHTS);
    ck_assert_int_eq(sqlite3_column_bytes(st, 2), (int)sizeof x.weights);
    ck_assert_int_eq(memcmp(sqlite3_column_blob(st, 2), x.weights, sizeof x.weights), 0);
    sqlite3_finalize(st);

    /* v_final: the final-step rows, with the params as columns. */
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM v_final"), 3);
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM v_final WHERE step = 20 AND trial_id = 1 AND "
                              "experiment = 'exp' AND model = 'mmoe' AND correlation = 0.5 AND "
                              "lr = 0.001"),
                     3);
    ck_assert(q_real(s, "SELECT value FROM v_final WHERE name = 'test/loss/t1'") == 1.2);
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM v_final f JOIN param p ON p.trial_id = "
                              "f.trial_id AND p.key = 'data.tasks' WHERE p.value = 2"),
                     3);

    /* A finished trial is no longer claimed: finishing it again fails. */
    ck_assert_int_eq(store_finish(s, 1, &x.r, &err), -1);
    snprintf(sql, sizeof sql, "%s: trial 1 is not claimed by this process", path);
    ck_assert_str_eq(err.msg, sql);
    /* Nor may a pending one be finished. */
    ck_assert_int_eq(store_finish(s, 2, &x.r, &err), -1);
    ck_assert_msg(strstr(err.msg, "trial 2 is not claimed by this process"), "%s", err.msg);
    ck_assert_int_eq(result_rows(s, 2), 0);
    /* Nor an unknown one. */
    ck_assert_int_eq(store_finish(s, 77, &x.r, &err), -1);
    ck_assert_msg(strstr(err.msg, "no trial 77"), "%s", err.msg);

    store_counts_t n;
    ck_assert_int_eq(store_counts(s, exp_id, &n, &err), 0);
    ck_assert_int_eq(n.done, 1);
    ck_assert_int_eq(n.pending, 3);
    ck_assert_int_eq(n.running + n.failed, 0);
    ck_assert_str_eq(q_text(s, "PRAGMA integrity_check", buf, sizeof buf), "ok");
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
    store_close(s);
    free(path);
    free(dir);
}
END_TEST

/* Weights are optional; without them n_weights still counts the parameters. */
START_TEST(finish_without_weights) {
    char *dir = test_tmpdir(), *path = path_in(dir, "results.db");
    store_t *s = open_or_die(path, 0);
    int64_t exp_id = add_fixture(s, 1, NULL);
    int64_t id = claim_or_die(s, exp_id);
    result_t x;
    make_result(&x, 0);
    x.r.weights = NULL;
    x.r.n_tensors = 0;
    err_t err = {0};
    ck_assert_msg(store_finish(s, id, &x.r, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM weights"), 0);
    ck_assert_int_eq(q_int(s, "SELECT n_params FROM trial"), N_WEIGHTS);
    store_close(s);
    free(path);
    free(dir);
}
END_TEST

/* v_curve: mean, population sd, min, max and n over the repeats of a config. */
START_TEST(curve_view_averages) {
    char *dir = test_tmpdir(), *path = path_in(dir, "results.db");
    store_t *s = open_or_die(path, 0);
    int64_t exp_id = add_fixture(s, 24, NULL); /* trials 1, 9, 17: one config, repeats 0-2 */
    err_t err = {0};
    for (int k = 0; k < 24; k++) {
        int64_t id = claim_or_die(s, exp_id);
        result_t x;
        make_result(&x, (id - 1) % 8 == 0 ? (double)(id - 1) / 8 : 10.0); /* 0, 1, 2 */
        ck_assert_msg(store_finish(s, id, &x.r, &err) == 0, "%s", err.msg);
    }
    const char *where = " FROM v_curve WHERE config = "
                        "'data.correlation=0.5;data.tasks=2;model.name=mmoe;train.lr=0.001' "
                        "AND name = 'test/loss/t1' AND step = 10";
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT count(*)%s", where);
    ck_assert_int_eq(q_int(s, sql), 1);
    snprintf(sql, sizeof sql, "SELECT n%s", where);
    ck_assert_int_eq(q_int(s, sql), 3);
    snprintf(sql, sizeof sql, "SELECT mean%s", where);
    ck_assert_double_eq_tol(q_real(s, sql), 1.1, 1e-12);
    snprintf(sql, sizeof sql, "SELECT sd%s", where);
    ck_assert_double_eq_tol(q_real(s, sql), sqrt(2.0 / 3.0), 1e-12);
    snprintf(sql, sizeof sql, "SELECT min%s", where);
    ck_assert_double_eq_tol(q_real(s, sql), 0.1, 1e-12);
    snprintf(sql, sizeof sql, "SELECT max%s", where);
    ck_assert_double_eq_tol(q_real(s, sql), 2.1, 1e-12);
    snprintf(sql, sizeof sql, "SELECT correlation = 0.5 AND lr = 0.001%s", where);
    ck_assert_int_eq(q_int(s, sql), 1);
    /* 8 configs x 3 metrics x 3 steps. */
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM v_curve"), 8 * 3 * N_STEPS);
    /* v_best_lr: mmoe at correlation 0.5 does best (val loss 1.1+1) at lr 0.001. */
    ck_assert(q_real(s, "SELECT lr FROM v_best_lr WHERE rank = 1 AND model = 'mmoe' AND setting = "
                        "'data.correlation=0.5;data.tasks=2;model.name=mmoe'") == 0.001);
    ck_assert_int_eq(q_int(s, "SELECT n FROM v_best_lr WHERE rank = 1 AND model = 'mmoe' AND "
                              "setting = 'data.correlation=0.5;data.tasks=2;model.name=mmoe'"),
                     3);
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM v_best_lr"), 8);
    store_close(s);
    free(path);
    free(dir);
}
END_TEST

START_TEST(fail_records_error) {
    char *dir = test_tmpdir(), *path = path_in(dir, "results.db"), buf[256];
    store_t *s = open_or_die(path, 0);
    int64_t exp_id = add_fixture(s, 2, NULL);
    err_t err = {0};
    int64_t a = claim_or_die(s, exp_id), b = claim_or_die(s, exp_id);
    ck_assert_int_eq(store_fail(s, a, 42, "loss is NaN", NULL, &err), 0);
    ck_assert_str_eq(trial_status(s, a, buf, sizeof buf), "failed");
    ck_assert_str_eq(q_text(s, "SELECT error FROM trial WHERE id = 1", buf, sizeof buf),
                     "loss is NaN");
    ck_assert_int_eq(q_int(s, "SELECT failed_step FROM trial WHERE id = 1"), 42);
    ck_assert_int_eq(result_rows(s, a), 0);
    /* With the curve measured before the failure; a NaN value reads as NULL. */
    result_t x;
    make_result(&x, 3.0);
    x.r.n_gates = x.r.n_tensors = 0;
    x.r.weights = NULL;
    x.r.n_weights = 0;
    x.metrics[0].value = NAN;
    ck_assert_msg(store_fail(s, b, 10, "diverged", &x.r, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM metric WHERE trial_id = 2"), 3 * N_STEPS);
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM metric WHERE value IS NULL"), 1);
    /* the parameter count of the registration stays (no weights to count) */
    ck_assert_int_eq(q_int(s, "SELECT n_params FROM trial WHERE id = 2"), 777);
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM v_final"), 0); /* failed trials are not final */
    store_counts_t n;
    ck_assert_int_eq(store_counts(s, exp_id, &n, &err), 0);
    ck_assert_int_eq(n.failed, 2);
    store_claim_t c;
    ck_assert_int_eq(store_claim(s, exp_id, &c, &err), 0); /* nothing left */
    store_close(s);
    free(path);
    free(dir);
}
END_TEST

START_TEST(release_makes_pending) {
    char *dir = test_tmpdir(), *path = path_in(dir, "results.db"), buf[64];
    store_t *s = open_or_die(path, 0);
    int64_t exp_id = add_fixture(s, 2, NULL);
    err_t err = {0};
    int64_t id = claim_or_die(s, exp_id);
    ck_assert_int_eq(store_release(s, id, &err), 0);
    ck_assert_str_eq(trial_status(s, id, buf, sizeof buf), "pending");
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM trial WHERE host IS NULL AND pid IS NULL"), 2);
    ck_assert_int_eq(claim_or_die(s, exp_id), id);
    ck_assert_int_eq(store_release(s, 2, &err), -1); /* not claimed */
    store_close(s);
    free(path);
    free(dir);
}
END_TEST

/* A trial left running by a process that is gone (exited, a zombie, or its
 * pid now used by another process) is claimed again before pending ones; one
 * whose claimer lives, or that belongs to another host, is not. */
START_TEST(dead_claimer_reclaimed) {
    char *dir = test_tmpdir(), *path = path_in(dir, "results.db"), buf[64];
    store_t *s = open_or_die(path, 0);
    int64_t exp_id = add_fixture(s, 8, NULL);
    char host[256];
    gethostname(host, sizeof host);
    err_t err = {0};

    pid_t dead = fork();
    if (dead == 0) _exit(0);
    ck_assert_int_eq(waitpid(dead, NULL, 0), dead);
    pid_t zombie = fork(); /* exits, not reaped until the end */
    if (zombie == 0) _exit(0);
    pid_t live = fork();
    if (live == 0) {
        pause();
        _exit(0);
    }
    usleep(100 * 1000); /* the zombie has exited, the live child is up */
    long long live_start = proc_start(live);

    mark_running(s, 8, host, dead, 12345);
    mark_running(s, 7, host, live, live_start);
    mark_running(s, 6, "some-other-host", dead, 12345);
    mark_running(s, 5, host, zombie, proc_start(zombie));
    ck_assert_int_eq(claim_or_die(s, exp_id), 5); /* the zombie's */
    ck_assert_int_eq(claim_or_die(s, exp_id), 8); /* the exited one's */
    ck_assert_int_eq(claim_or_die(s, exp_id), 1); /* then pending, lowest id */
    ck_assert_str_eq(trial_status(s, 7, buf, sizeof buf), "running");
    ck_assert_int_eq(q_int(s, "SELECT pid FROM trial WHERE id = 7"), live);
    /* The live child's pid, but another start time: a reused pid. */
    mark_running(s, 7, host, live, live_start + 1);
    ck_assert_int_eq(claim_or_die(s, exp_id), 7);
    ck_assert_int_eq(q_int(s, "SELECT pid FROM trial WHERE id = 7"), getpid());
    /* Our own claims are not taken from us. */
    ck_assert_int_eq(claim_or_die(s, exp_id), 2);
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM trial WHERE status = 'running' AND pid = "
                              "(SELECT pid FROM trial WHERE id = 1)"),
                     5);
    ck_assert_str_eq(trial_status(s, 6, buf, sizeof buf), "running"); /* other host: untouched */

    kill(live, SIGKILL);
    waitpid(live, NULL, 0);
    waitpid(zombie, NULL, 0);
    store_close(s);
    free(path);
    free(dir);
    (void)err;
}
END_TEST

/* Several processes claiming from one file never get the same trial. */
#define CLAIM_TRIALS 50
#define CLAIMERS     3
START_TEST(concurrent_claims_disjoint) {
    char *dir = test_tmpdir(), *path = path_in(dir, "results.db");
    store_t *s = open_or_die(path, 0);
    int64_t exp_id = add_fixture(s, CLAIM_TRIALS, NULL);
    store_close(s);
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t kids[CLAIMERS];
    for (int k = 0; k < CLAIMERS; k++) {
        kids[k] = fork();
        ck_assert(kids[k] >= 0);
        if (kids[k] == 0) {
            close(fds[0]);
            store_t *mine;
            err_t err = {0};
            if (store_open(&mine, path, 0, &err)) _exit(10);
            for (;;) {
                store_claim_t c;
                int rc = store_claim(mine, exp_id, &c, &err);
                if (rc == 0) break;
                if (rc < 0) {
                    fprintf(stderr, "claimer %d: %s\n", k, err.msg);
                    _exit(11);
                }
                if (write(fds[1], &c.id, sizeof c.id) != sizeof c.id) _exit(12);
                result_t x;
                make_result(&x, (double)c.id);
                if (store_finish(mine, c.id, &x.r, &err)) {
                    fprintf(stderr, "claimer %d: %s\n", k, err.msg);
                    _exit(13);
                }
            }
            store_close(mine);
            _exit(0);
        }
    }
    close(fds[1]);
    int seen[CLAIM_TRIALS + 1] = {0}, total = 0;
    int64_t id;
    while (read(fds[0], &id, sizeof id) == sizeof id) {
        ck_assert(id >= 1 && id <= CLAIM_TRIALS);
        ck_assert_msg(seen[id] == 0, "trial %lld claimed twice", (long long)id);
        seen[id] = 1;
        total++;
    }
    close(fds[0]);
    for (int k = 0; k < CLAIMERS; k++) {
        int status;
        ck_assert_int_eq(waitpid(kids[k], &status, 0), kids[k]);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "claimer %d failed (%d)", k,
                      status);
    }
    ck_assert_int_eq(total, CLAIM_TRIALS);
    s = open_or_die(path, 0);
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM trial WHERE status = 'done'"), CLAIM_TRIALS);
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM metric"), CLAIM_TRIALS * 3 * N_STEPS);
    store_close(s);
    free(path);
    free(dir);
}
END_TEST

/* Processes that open a new file at the same moment (a sweep started with
 * several workers) all succeed, and the schema is applied once. */
START_TEST(concurrent_open_fresh_file) {
    char *dir = test_tmpdir(), *path = path_in(dir, "results.db");
    pid_t kids[CLAIMERS];
    for (int k = 0; k < CLAIMERS; k++) {
        kids[k] = fork();
        ck_assert(kids[k] >= 0);
        if (kids[k] == 0) {
            store_t *mine;
            err_t err = {0};
            int64_t id;
            if (store_open(&mine, path, 0, &err) ||
                store_experiment(mine, "exp", "", "spec", 2, false, &id, &err)) {
                fprintf(stderr, "opener %d: %s\n", k, err.msg);
                _exit(1);
            }
            store_close(mine);
            _exit(0);
        }
    }
    for (int k = 0; k < CLAIMERS; k++) {
        int status;
        ck_assert_int_eq(waitpid(kids[k], &status, 0), kids[k]);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "opener %d failed", k);
    }
    store_t *s = open_or_die(path, STORE_READONLY);
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM meta"), 1);
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM experiment"), 1);
    store_close(s);
    free(path);
    free(dir);
}
END_TEST

/* Every write of store_finish made to fail in turn (the test hook): each time
 * the call fails, the trial stays running under this process with no rows,
 * and a retry succeeds.  The same for store_fail and store_add_trials. */
START_TEST(failed_write_leaves_nothing) {
    char *dir = test_tmpdir(), *path = path_in(dir, "results.db"), buf[64];
    store_t *s = open_or_die(path, 0);
    int64_t exp_id = add_fixture(s, 2, NULL);
    int64_t id = claim_or_die(s, exp_id);
    result_t x;
    make_result(&x, 1.0);
    err_t err = {0};
    int failures = 0;
    for (long n_ok = 0;; n_ok++) {
        store_test_fail_writes(s, n_ok);
        if (store_finish(s, id, &x.r, &err) == 0) {
            store_test_fail_writes(s, -1);
            break;
        }
        failures++;
        ck_assert_msg(strstr(err.msg, "injected"), "%s", err.msg);
        store_test_fail_writes(s, -1);
        ck_assert_str_eq(trial_status(s, id, buf, sizeof buf), "running");
        ck_assert_int_eq(q_int(s, "SELECT pid FROM trial WHERE id = 1"), getpid());
        ck_assert_int_eq(result_rows(s, id), 0);
        ck_assert_int_eq(q_int(s, "SELECT seconds_store IS NULL FROM trial WHERE id = 1"), 1);
    }
    /* metrics + gates + bins + tensors + weights + trial update + commit */
    ck_assert_int_eq(failures, 3 * N_STEPS + 6 + 6 * N_BINS + 2 + 1 + 1 + 1);
    ck_assert_str_eq(trial_status(s, id, buf, sizeof buf), "done");
    ck_assert_int_eq(result_rows(s, id), 3 * N_STEPS + 6 + 6 * N_BINS + 2 + 1);

    id = claim_or_die(s, exp_id);
    store_test_fail_writes(s, 3);
    ck_assert_int_eq(store_fail(s, id, 5, "boom", &x.r, &err), -1);
    store_test_fail_writes(s, -1);
    ck_assert_str_eq(trial_status(s, id, buf, sizeof buf), "running");
    ck_assert_int_eq(result_rows(s, id), 0);

    int added;
    store_trial_t t = {.repeat = 9, .model = "mmoe", .config = "c", .data_seed = 1, .init_seed = 2};
    store_test_fail_writes(s, 0);
    ck_assert_int_eq(store_add_trials(s, exp_id, &t, 1, &added, &err), -1);
    ck_assert_int_eq(added, 0);
    store_test_fail_writes(s, -1);
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM trial"), 2);
    ck_assert_str_eq(q_text(s, "PRAGMA integrity_check", buf, sizeof buf), "ok");
    store_close(s);
    free(path);
    free(dir);
}
END_TEST

/* A real SQLite failure: the file may not grow (max_page_count), so a large
 * weights blob cannot be written -- SQLITE_FULL, as on a full disk. */
START_TEST(full_database_rolls_back) {
    char *dir = test_tmpdir(), *path = path_in(dir, "results.db"), buf[64];
    store_t *s = open_or_die(path, 0);
    int64_t exp_id = add_fixture(s, 1, NULL);
    int64_t id = claim_or_die(s, exp_id);
    enum { BIG = 200000 };
    float *big = calloc(BIG, sizeof *big);
    result_t x;
    make_result(&x, 1.0);
    x.r.weights = big;
    x.r.n_weights = BIG;
    char sql[128];
    snprintf(sql, sizeof sql, "PRAGMA max_page_count = %lld", q_int(s, "PRAGMA page_count") + 2);
    exec_or_die(s, sql);
    err_t err = {0};
    ck_assert_int_eq(store_finish(s, id, &x.r, &err), -1);
    ck_assert_msg(strstr(err.msg, "full") && strstr(err.msg, path), "%s", err.msg);
    ck_assert_str_eq(trial_status(s, id, buf, sizeof buf), "running");
    ck_assert_int_eq(result_rows(s, id), 0);
    exec_or_die(s, "PRAGMA max_page_count = 1000000");
    ck_assert_msg(store_finish(s, id, &x.r, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(q_int(s, "SELECT length(data) FROM weights"), BIG * (int)sizeof(float));
    free(big);
    store_close(s);
    free(path);
    free(dir);
}
END_TEST

/* ---- CLI: ls, show, sql, export ---------------------------------------- */

/* A store for the CLI tests: experiment "exp" with 4 trials: 1 and 2 done,
 * 3 failed at step 7, 4 pending. */
static char *cli_store(char **dir_out) {
    char *dir = test_tmpdir(), *path = path_in(dir, "results.db");
    store_t *s = open_or_die(path, 0);
    int64_t exp_id = add_fixture(s, 4, NULL);
    err_t err = {0};
    for (int k = 0; k < 3; k++) {
        int64_t id = claim_or_die(s, exp_id);
        result_t x;
        make_result(&x, (double)id);
        if (k < 2)
            ck_assert_msg(store_finish(s, id, &x.r, &err) == 0, "%s", err.msg);
        else
            ck_assert_int_eq(store_fail(s, id, 7, "loss is NaN at step 7", NULL, &err), 0);
    }
    store_close(s);
    *dir_out = dir;
    return path;
}

static int count_lines(const char *text) {
    int n = 0;
    for (; *text; text++)
        n += *text == '\n';
    return n;
}

START_TEST(cli_ls) {
    char *dir, *path = cli_store(&dir), *out, *errout;
    const char *args[] = {"ls", "--db", path, NULL};
    ck_assert_int_eq(run_mtlab(&out, &errout, args), 0);
    ck_assert_msg(strstr(out, "name") && strstr(out, "pending") && strstr(out, "failed") &&
                      strstr(out, "description"),
                  "%s", out);
    /* id 1, "exp", 4 trials: 1 pending, 0 running, 2 done, 1 failed */
    ck_assert_msg(strstr(out, "exp") && strstr(out, "a test experiment"), "%s", out);
    char *row = strstr(out, "\n");
    row = strstr(row + 1, "\n") + 1; /* past header and rule */
    int id, trials, pending, running, done, failed;
    char name[32];
    ck_assert_int_eq(sscanf(row, "%d %31s %d %d %d %d %d", &id, name, &trials, &pending, &running,
                            &done, &failed),
                     7);
    ck_assert_str_eq(name, "exp");
    ck_assert_int_eq(trials, 4);
    ck_assert_int_eq(pending, 1);
    ck_assert_int_eq(running, 0);
    ck_assert_int_eq(done, 2);
    ck_assert_int_eq(failed, 1);
    free(out);
    free(errout);

    char *missing = path_in(dir, "none.db");
    const char *args2[] = {"ls", "--db", missing, NULL};
    ck_assert_int_eq(run_mtlab(&out, &errout, args2), 1);
    char expect[512];
    snprintf(expect, sizeof expect, "mtlab ls: cannot open %s: no such file\n", missing);
    ck_assert_str_eq(errout, expect);
    free(out);
    free(errout);

    /* An empty store says so. */
    store_t *s = open_or_die(missing, 0);
    store_close(s);
    ck_assert_int_eq(run_mtlab(&out, &errout, args2), 0);
    ck_assert_msg(strstr(out, "no experiments"), "%s", out);
    free(out);
    free(errout);
    free(missing);
    free(path);
    free(dir);
}
END_TEST

START_TEST(cli_show) {
    char *dir, *path = cli_store(&dir), *out, *errout;
    const char *args[] = {"show", "2", "--db", path, NULL};
    ck_assert_int_eq(run_mtlab(&out, &errout, args), 0);
    const char *expect[] = {"experiment  exp (id 1)",
                            "model       shared_bottom",
                            "status      done",
                            "init_seed   5001",
                            "data.correlation = 0.5",
                            "train.lr         = 0.001",
                            "final metrics (step 20):",
                            "test/loss/t1    2.2",
                            "n_params    24",
                            "gate          e1      e2      e3",
                            "t1        0.2500  0.3500  0.4500",
                            "t2        0.5500  0.6500  0.7500"};
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++)
        ck_assert_msg(strstr(out, expect[i]), "missing '%s' in:\n%s", expect[i], out);
    free(out);
    free(errout);

    const char *failed[] = {"show", "3", "--db", path, NULL};
    ck_assert_int_eq(run_mtlab(&out, &errout, failed), 0);
    ck_assert_msg(strstr(out, "status      failed") && strstr(out, "failed at   step 7") &&
                      strstr(out, "error       loss is NaN at step 7"),
                  "%s", out);
    free(out);
    free(errout);

    const char *unknown[] = {"show", "999", "--db", path, NULL};
    ck_assert_int_eq(run_mtlab(&out, &errout, unknown), 1);
    char msg[512];
    snprintf(msg, sizeof msg, "mtlab show: no trial 999 in %s\n", path);
    ck_assert_str_eq(errout, msg);
    free(out);
    free(errout);

    const char *word[] = {"show", "abc", "--db", path, NULL};
    ck_assert_int_eq(run_mtlab(&out, &errout, word), 2);
    ck_assert_msg(strstr(errout, "'abc' is not a trial id"), "%s", errout);
    free(out);
    free(errout);
    free(path);
    free(dir);
}
END_TEST

START_TEST(cli_sql) {
    char *dir, *path = cli_store(&dir), *out, *errout;
    const char *args[] = {"sql", "--db", path,
                          "SELECT model, count(*) AS n, avg(value) AS mean FROM v_final WHERE "
                          "name = 'test/loss/t1' GROUP BY model ORDER BY model",
                          NULL};
    ck_assert_int_eq(run_mtlab(&out, &errout, args), 0);
    ck_assert_str_eq(out, "model          n  mean\n"
                          "-------------  -  ----\n"
                          "mmoe           1   1.2\n"
                          "shared_bottom  1   2.2\n");
    free(out);
    free(errout);

    const char *csv[] = {"sql",
                         "--csv",
                         "--db",
                         path,
                         "SELECT trial_id, name, value, NULL AS none, 'a,\"b\"' AS quoted "
                         "FROM v_final ORDER BY trial_id, name",
                         NULL};
    ck_assert_int_eq(run_mtlab(&out, &errout, csv), 0);
    ck_assert_int_eq(count_lines(out), 1 + 2 * 3);
    ck_assert_msg(strncmp(out,
                          "\"trial_id\",\"name\",\"value\",\"none\",\"quoted\"\n"
                          "1,\"test/loss/t1\",1.2,,\"a,\"\"b\"\"\"\n",
                          strlen("\"trial_id\",\"name\",\"value\",\"none\",\"quoted\"\n") +
                              strlen("1,\"test/loss/t1\",1.2,,\"a,\"\"b\"\"\"\n")) == 0,
                  "%s", out);
    free(out);
    free(errout);

    /* Writes are refused and change nothing. */
    const char *del[] = {"sql", "--db", path, "DELETE FROM trial", NULL};
    ck_assert_int_eq(run_mtlab(&out, &errout, del), 1);
    ck_assert_msg(strstr(errout, "mtlab sql: read-only: "), "%s", errout);
    free(out);
    free(errout);
    store_t *s = open_or_die(path, STORE_READONLY);
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM trial"), 4);
    store_close(s);

    const char *bad[] = {"sql", "--db", path, "SELECT * FROM nosuch", NULL};
    ck_assert_int_eq(run_mtlab(&out, &errout, bad), 2); /* bad SQL: the user's input */
    ck_assert_msg(strstr(errout, "no such table: nosuch"), "%s", errout);
    free(out);
    free(errout);

    const char *two[] = {"sql", "--db", path, "SELECT 1; SELECT 2", NULL};
    ck_assert_int_eq(run_mtlab(&out, &errout, two), 2);
    free(out);
    free(errout);

    const char *none[] = {"sql", "--db", path, NULL};
    ck_assert_int_eq(run_mtlab(&out, &errout, none), 2);
    ck_assert_msg(strstr(errout, "missing QUERY"), "%s", errout);
    free(out);
    free(errout);
    free(path);
    free(dir);
}
END_TEST

static void on_record(int c, void *ctx) {
    (void)c;
    (*(int *)ctx)++;
}

/* CSV records of a file, parsed by libcsv (quoted fields may hold newlines,
 * e.g. the sweep text in experiment.csv); -1 when it cannot be read. */
static int csv_records(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    struct csv_parser p;
    ck_assert_int_eq(csv_init(&p, CSV_STRICT), 0);
    int records = 0;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        ck_assert_msg(csv_parse(&p, buf, n, NULL, on_record, &records) == n, "%s: %s", path,
                      csv_strerror(csv_error(&p)));
    csv_fini(&p, NULL, on_record, &records);
    csv_free(&p);
    fclose(f);
    return records;
}

START_TEST(cli_export) {
    char *dir, *path = cli_store(&dir), *out, *errout;
    char *target = path_in(dir, "csv/nested");
    const char *args[] = {"export", "--csv", target, "--db", path, NULL};
    ck_assert_int_eq(run_mtlab(&out, &errout, args), 0);
    struct {
        const char *table;
        int rows;
    } expect[] = {{"meta", 1},
                  {"experiment", 1},
                  {"trial", 4},
                  {"param", 4 * 5},
                  {"metric", 2 * 3 * N_STEPS},
                  {"gate", 2 * 6},
                  {"gate_hist", 2 * 6 * N_BINS},
                  {"route", 0},
                  {"tensor", 2 * 2},
                  {"weights", 2}};
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s.csv", expect[i].table);
        char *file = path_in(target, name);
        ck_assert_msg(csv_records(file) == 1 + expect[i].rows, "%s: %d records", file,
                      csv_records(file));
        ck_assert_msg(strstr(out, file), "%s not reported in:\n%s", file, out);
        free(file);
    }
    char *weights = path_in(target, "weights.csv");
    FILE *f = fopen(weights, "r");
    char header[128];
    ck_assert_ptr_nonnull(fgets(header, sizeof header, f));
    fclose(f);
    ck_assert_str_eq(header, "\"trial_id\",\"dtype\",\"n\",\"bytes\"\n");
    free(out);
    free(errout);

    /* --blobs adds the parameters, hex. */
    const char *blobs[] = {"export", "--csv", target, "--db", path, "--blobs", NULL};
    ck_assert_int_eq(run_mtlab(&out, &errout, blobs), 0);
    f = fopen(weights, "r");
    char line[512];
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    ck_assert_str_eq(line, "\"trial_id\",\"dtype\",\"n\",\"bytes\",\"data\"\n");
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    fclose(f);
    /* weight 0 is -3.0f = 0xc0400000, little-endian bytes 00 00 40 c0 */
    const char *first = "1,\"float32\",24,96,\"000040c0";
    ck_assert_msg(strncmp(line, first, strlen(first)) == 0, "%s", line);
    free(out);
    free(errout);

    const char *nodir[] = {"export", "--db", path, NULL};
    ck_assert_int_eq(run_mtlab(&out, &errout, nodir), 2);
    free(out);
    free(errout);
    free(weights);
    free(target);
    free(path);
    free(dir);
}
END_TEST

START_TEST(cli_help) {
    const char *cmds[] = {"ls", "show", "sql", "export"};
    for (int i = 0; i < 4; i++) {
        char *out, *errout;
        const char *args[] = {cmds[i], "--help", NULL};
        ck_assert_int_eq(run_mtlab(&out, &errout, args), 0);
        ck_assert_msg(strstr(out, "usage: mtlab ") && strstr(out, "--db FILE") &&
                          strstr(out, "(default: results.db)"),
                      "%s", out);
        free(out);
        free(errout);
    }
}
END_TEST

/* ---- read-only opening: no -wal/-shm left, read-only filesystems --------- */

static bool exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Asserts that neither PATH-wal nor PATH-shm exists. */
static void assert_no_wal_files(const char *path, const char *after) {
    char name[1100];
    snprintf(name, sizeof name, "%s-wal", path);
    ck_assert_msg(!exists(name), "%s left behind after %s", name, after);
    snprintf(name, sizeof name, "%s-shm", path);
    ck_assert_msg(!exists(name), "%s left behind after %s", name, after);
}

/* Runs every read-only command on the store at path; each must succeed.
 * export writes into export_dir. */
static void run_read_commands(const char *path, const char *export_dir) {
    const char *ls[] = {"ls", "--db", path, NULL};
    const char *show[] = {"show", "2", "--db", path, NULL};
    const char *sql[] = {"sql", "--db", path, "SELECT count(*) AS n FROM v_final", NULL};
    const char *csv[] = {"sql", "--csv", "--db", path, "SELECT id FROM trial ORDER BY id", NULL};
    const char *export[] = {"export", "--csv", export_dir, "--db", path, NULL};
    const char *const *cmds[] = {ls, show, sql, csv, export};
    const char *expect[] = {"exp", "shared_bottom", "n\n-\n6\n", "\"id\"\n1\n2\n3\n4\n",
                            "trial.csv (4 rows)"};
    for (int i = 0; i < 5; i++) {
        char *out, *errout;
        int rc = run_mtlab(&out, &errout, cmds[i]);
        ck_assert_msg(rc == 0, "mtlab %s: exit %d: %s", cmds[i][0], rc, errout);
        ck_assert_msg(strstr(out, expect[i]), "mtlab %s: '%s' not in:\n%s", cmds[i][0], expect[i],
                      out);
        free(out);
        free(errout);
        assert_no_wal_files(path, cmds[i][0]);
    }
}

/* A store nobody has open has no -wal/-shm; reading it (the API and every
 * read-only command) must not leave them behind.  While a writer holds the
 * store open they are its files: a reader leaves them, and they go when the
 * writer closes. */
START_TEST(readonly_leaves_no_wal_files) {
    char *dir, *path = cli_store(&dir), *csv_dir = path_in(dir, "csv");
    assert_no_wal_files(path, "the writer closed");
    store_t *s = open_or_die(path, STORE_READONLY);
    store_table_t *t;
    err_t err = {0};
    ck_assert_msg(store_query(s, "SELECT count(*) FROM trial", &t, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(store_table_cell(t, 0, 0), "4");
    store_table_free(t);
    store_close(s);
    assert_no_wal_files(path, "store_open(STORE_READONLY)");
    run_read_commands(path, csv_dir);

    store_t *writer = open_or_die(path, 0);
    ck_assert_int_eq(q_int(writer, "SELECT count(*) FROM trial"), 4);
    s = open_or_die(path, STORE_READONLY);
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM param"), 20);
    store_close(s);
    char wal[1100];
    snprintf(wal, sizeof wal, "%s-wal", path);
    ck_assert_msg(exists(wal), "a reader removed the -wal of a writer that is still open");
    store_close(writer);
    assert_no_wal_files(path, "the writer closed");
    free(csv_dir);
    free(path);
    free(dir);
}
END_TEST

/* A store on a read-only filesystem (the only way to make a directory
 * unwritable for root, who runs the tests): in a mount namespace of its own,
 * a tmpfs is mounted, the store written there and the tmpfs remounted
 * read-only.  The store's name needs percent-encoding in a URI. */
START_TEST(readonly_filesystem) {
    const char *fork_mode = getenv("CK_FORK");
    ck_assert_msg(!fork_mode || strcmp(fork_mode, "no") != 0,
                  "readonly_filesystem needs CK_FORK=yes: it unshares its mount namespace in a "
                  "child (check_fork) that must not outlive the test");
    pid_t pid = check_fork();
    ck_assert_msg(pid >= 0, "check_fork: %s", strerror(errno));
    if (pid == 0) {
        ck_assert_msg(unshare(CLONE_NEWNS) == 0, "unshare(CLONE_NEWNS): %s", strerror(errno));
        ck_assert_msg(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0,
                      "making mounts private: %s", strerror(errno));
        char *mnt = test_tmpdir(), *out_dir = test_tmpdir();
        ck_assert_msg(mount("mtlab-test", mnt, "tmpfs", 0, "size=16m") == 0, "mount tmpfs: %s",
                      strerror(errno));
        char *sub = path_in(mnt, "a dir %41?#"), *dir;
        ck_assert_int_eq(mkdir(sub, 0755), 0);
        char *fixture = cli_store(&dir), *path = path_in(sub, "results 1.db");
        char cmd[4096];
        snprintf(cmd, sizeof cmd, "cp '%s' '%s'", fixture, path);
        ck_assert_int_eq(system(cmd), 0);
        ck_assert_msg(mount(NULL, mnt, NULL, MS_REMOUNT | MS_RDONLY, NULL) == 0,
                      "remount read-only: %s", strerror(errno));
        ck_assert_int_eq(access(sub, W_OK), -1);

        store_t *s = open_or_die(path, STORE_READONLY);
        ck_assert_int_eq(q_int(s, "SELECT count(*) FROM trial"), 4);
        ck_assert_int_eq(q_int(s, "SELECT count(*) FROM metric"), 2 * 3 * N_STEPS);
        err_t err = {0};
        int64_t id;
        ck_assert_int_eq(store_experiment(s, "x", "", "spec", 2, false, &id, &err), -1);
        store_close(s);
        assert_no_wal_files(path, "store_open(STORE_READONLY)");
        char *csv_dir = path_in(out_dir, "csv");
        run_read_commands(path, csv_dir);
        ck_assert_int_eq(umount(mnt), 0);
        free(csv_dir);
        free(path);
        free(fixture);
        free(dir);
        free(sub);
        free(out_dir);
        free(mnt);
    }
    check_waitpid_and_exit(pid);
}
END_TEST

/* mtlab sql refuses, before running it, every statement that could change a
 * file: nothing is created, the store keeps its rows and its WAL mode. */
START_TEST(cli_sql_refuses_writes) {
    char *dir, *path = cli_store(&dir), *target = path_in(dir, "copy.db"), *out, *errout;
    char vacuum[1200], attach[1200];
    snprintf(vacuum, sizeof vacuum, "VACUUM INTO '%s'", target);
    snprintf(attach, sizeof attach, "ATTACH '%s' AS other", target);
    const char *refused[] = {vacuum,
                             attach,
                             "PRAGMA journal_mode=DELETE",
                             "PRAGMA query_only=0",
                             "PRAGMA wal_checkpoint(TRUNCATE)",
                             "DELETE FROM trial",
                             "CREATE TEMP TABLE t(x)",
                             "BEGIN IMMEDIATE",
                             "REINDEX"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        const char *args[] = {"sql", "--db", path, refused[i], NULL};
        int rc = run_mtlab(&out, &errout, args);
        ck_assert_msg(rc == 1, "'%s': exit %d, %s", refused[i], rc, errout);
        ck_assert_msg(strstr(errout, "mtlab sql: read-only: ") && strstr(errout, path) &&
                          count_lines(errout) == 1,
                      "'%s': %s", refused[i], errout);
        ck_assert_str_eq(out, "");
        ck_assert_msg(!exists(target), "'%s' created %s", refused[i], target);
        free(out);
        free(errout);
    }
    /* A second statement is refused as such, before the first one runs. */
    const char *two[] = {"sql", "--db", path, "SELECT 1; DELETE FROM trial", NULL};
    ck_assert_int_eq(run_mtlab(&out, &errout, two), 2);
    ck_assert_msg(strstr(errout, "one SQL statement"), "%s", errout);
    free(out);
    free(errout);
    /* Queries that only read the schema or settings still run. */
    const char *reads[] = {"PRAGMA table_info(trial)", "SELECT * FROM pragma_table_info('metric')",
                           "PRAGMA user_version"};
    for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++) {
        const char *args[] = {"sql", "--db", path, reads[i], NULL};
        int rc = run_mtlab(&out, &errout, args);
        ck_assert_msg(rc == 0, "'%s': exit %d, %s", reads[i], rc, errout);
        free(out);
        free(errout);
    }
    store_t *s = open_or_die(path, STORE_READONLY);
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM trial"), 4);
    store_close(s);
    /* Byte 18 of the header is 2 in WAL mode (read without SQLite, which
     * would switch it back). */
    FILE *f = fopen(path, "rb");
    unsigned char header[20];
    ck_assert_int_eq(fread(header, 1, sizeof header, f), sizeof header);
    fclose(f);
    ck_assert_int_eq(header[18], 2);
    free(target);
    free(path);
    free(dir);
}
END_TEST

/* The aligned table of mtlab sql streams: widths come from the first
 * STORE_PRINT_SAMPLE_ROWS rows.  Up to that many rows the output is the
 * in-memory table's, byte for byte; a wider value after them widens only its
 * own line. */
START_TEST(cli_sql_table_widths) {
    char *dir, *path = cli_store(&dir), *out, *errout;
    char sql[512];
    snprintf(sql, sizeof sql,
             "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d) "
             "SELECT i, i * 0.25 AS quarter, CASE WHEN i %% 7 = 0 THEN NULL ELSE 'r' || i END "
             "AS label, x'00ff' AS bytes FROM n",
             STORE_PRINT_SAMPLE_ROWS);
    store_t *s = open_or_die(path, STORE_READONLY);
    store_table_t *t;
    err_t err = {0};
    ck_assert_msg(store_query(s, sql, &t, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(t->n_rows, STORE_PRINT_SAMPLE_ROWS);
    char *expect;
    size_t expect_len;
    FILE *mem = open_memstream(&expect, &expect_len);
    ck_assert_int_eq(store_table_print(mem, t, &err), 0);
    fclose(mem);
    store_table_free(t);
    store_close(s);
    const char *args[] = {"sql", "--db", path, sql, NULL};
    ck_assert_int_eq(run_mtlab(&out, &errout, args), 0);
    ck_assert_str_eq(out, expect);
    free(out);
    free(errout);
    free(expect);

    /* One row past the sample, wider than every row of it. */
    snprintf(sql, sizeof sql,
             "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d) "
             "SELECT CASE WHEN i > %d THEN 'a much longer value' ELSE 'v' END AS v, i FROM n",
             STORE_PRINT_SAMPLE_ROWS + 1, STORE_PRINT_SAMPLE_ROWS);
    const char *wide[] = {"sql", "--db", path, sql, NULL};
    ck_assert_int_eq(run_mtlab(&out, &errout, wide), 0);
    const char *head = "v     i\n-  ----\nv     1\n";
    ck_assert_msg(strncmp(out, head, strlen(head)) == 0, "%.40s", out);
    ck_assert_msg(strstr(out, "\nv  1000\na much longer value  1001\n"), "%s",
                  out + strlen(out) - 60);
    ck_assert_int_eq(count_lines(out), 2 + STORE_PRINT_SAMPLE_ROWS + 1);
    free(out);
    free(errout);
    free(path);
    free(dir);
}
END_TEST

Suite *store_suite(void) {
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("store");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, schema_applied);
    tcase_add_test(tc, schema_embedded);
    tcase_add_test(tc, newer_schema_refused);
    tcase_add_test(tc, older_schema_upgraded);
    tcase_add_test(tc, version1_upgraded);
    tcase_add_test(tc, identity_refused);
    tcase_add_test(tc, failed_migration_rolled_back);
    tcase_add_test(tc, not_a_store);
    tcase_add_test(tc, bad_paths);
    tcase_add_test(tc, readonly_never_writes);
    tcase_add_test(tc, experiment_registration);
    tcase_add_test(tc, add_trials_idempotent_typed);
    tcase_add_test(tc, claim_finish_roundtrip);
    tcase_add_test(tc, gates_routes_params);
    tcase_add_test(tc, finish_without_weights);
    tcase_add_test(tc, curve_view_averages);
    tcase_add_test(tc, fail_records_error);
    tcase_add_test(tc, release_makes_pending);
    tcase_add_test(tc, dead_claimer_reclaimed);
    tcase_add_test(tc, concurrent_claims_disjoint);
    tcase_add_test(tc, concurrent_open_fresh_file);
    tcase_add_test(tc, failed_write_leaves_nothing);
    tcase_add_test(tc, full_database_rolls_back);
    suite_add_tcase(s, tc);
    TCase *cli = tcase_create("cli");
    tcase_set_timeout(cli, 60);
    tcase_add_test(cli, cli_ls);
    tcase_add_test(cli, cli_show);
    tcase_add_test(cli, cli_sql);
    tcase_add_test(cli, cli_export);
    tcase_add_test(cli, cli_help);
    tcase_add_test(cli, readonly_leaves_no_wal_files);
    tcase_add_test(cli, readonly_filesystem);
    tcase_add_test(cli, cli_sql_refuses_writes);
    tcase_add_test(cli, cli_sql_table_widths);
    suite_add_tcase(s, cli);
    return s;
}
