/* test_crash.c -- the runner under hostile conditions, as a user meets them:
 * a kill -9 of the runner alone while readers poll the store, SIGTERM and
 * Ctrl-C, a trial that kills its worker (the out-of-memory killer), a spec
 * replaced under a running experiment, trials held by another host, and
 * retrying failed trials.  Each asserts rows in the store and what the
 * runner prints, through build/mtlab. */
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sweep/sweep.h"
#include "testutil.h"

/* 48 short trials (about 40 ms each, 1-2 s of work on 2 workers): a runner
 * killed after a fraction of a second leaves finished, running and pending
 * trials, and its workers (before the fix) seconds of work to go on with. */
static const char *crash_ini = "[experiment]\nname = crash\nrepeats = 16\n"
                               "[data]\ntrain = 1000\nvalidation = 100\ntest = 100\n"
                               "[train]\nsteps = 600\neval_every = 300\n"
                               "[model]\nname = shared_bottom, mmoe, omoe\n"
                               "experts = 4\nexpert_hidden = 16\n";
#define CRASH_TRIALS 48

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void sleep_s(double s) {
    struct timespec t = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&t, NULL);
}

/* Whether process pid is still running (not gone, not a zombie: a killed
 * worker whose parent died stays a zombie until init reaps it). */
static bool running(pid_t pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f) return false;
    bool alive = false;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "State:", 6) == 0) alive = !strchr(line, 'Z') && !strchr(line, 'X');
    fclose(f);
    return alive;
}

/* The children of pid (its workers), at most max. */
static int children(pid_t pid, pid_t *kids, int max) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/task/%ld/children", (long)pid, (long)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int n = 0;
    long k;
    while (n < max && fscanf(f, "%ld", &k) == 1)
        kids[n++] = (pid_t)k;
    fclose(f);
    return n;
}

static int count(const char *dbp, const char *status) {
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM trial WHERE status = '%s'", status);
    return (int)test_query(dbp, sql);
}

/* The first column of `sql` as an integer, or -1 while the store is not
 * there yet (no file, no schema). */
static long long try_query(const char *dbp, const char *sql) {
    sqlite3 *db;
    long long v = -1;
    if (sqlite3_open_v2(dbp, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(db, 10000);
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
            if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
            sqlite3_finalize(st);
        }
    }
    sqlite3_close(db);
    return v;
}

/* Waits (up to 20 s) until the store at dbp has at least n trials done. */
static void wait_done(const char *dbp, int n) {
    for (double t0 = now(); now() - t0 < 20; sleep_s(0.005))
        if (try_query(dbp, "SELECT count(*) FROM trial WHERE status = 'done'") >= n) return;
    ck_abort_msg("the sweep never reached %d done trials", n);
}

static int trained_by(const char *out) {
    const char *p = strstr(out, "this run trained ");
    ck_assert_msg(p != NULL, "no summary in: %s", out);
    return atoi(p + strlen("this run trained "));
}

static void assert_integrity(const char *dbp) {
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open_v2(dbp, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* Every done trial has its whole curve: 2 evaluations (steps 300, 600) x 3
 * splits x 3 series + 3 baselines + 1 label correlation. */
static void assert_done_complete(const char *dbp) {
    ck_assert_int_eq(test_query(dbp, "SELECT count(*) FROM trial t WHERE status = 'done' AND "
                                     "(SELECT count(*) FROM metric m WHERE m.trial_id = t.id) "
                                     "<> 22"),
                     0);
}

/* Issue 8, item 1: kill -9 of the runner ALONE while a reader polls the
 * store.  Before the fix the workers went on after their runner died, with
 * a connection carried across fork(); a reader's connection then reset the
 * WAL index under them and commits vanished.  Repeated: the kill lands at
 * different points of the sweep.  Must hold every time: the workers die
 * with the runner, no commit a reader saw is lost, the store is intact, and
 * the rerun trains exactly the trials that were not done. */
START_TEST(kill_runner_alone) {
    char *dir = test_tmpdir(), *ini = test_write_file(dir, "crash.ini", crash_ini),
         *dbp = test_join(dir, "o.db");
    const int campaigns = 6;
    for (int c = 0; c < campaigns; c++) {
        unlink(dbp);
        const char *args[] = {"run", ini, "--db", dbp, "--jobs", "2", "--quiet", NULL};
        pid_t runner = test_spawn_mtlab(args, NULL, NULL, true);
        wait_done(dbp, 2 + 5 * c);
        pid_t kids[8];
        int n_kids = children(runner, kids, 8);
        kill(runner, SIGKILL);
        waitpid(runner, NULL, 0);
        double killed_at = now();
        /* A reader polls as `mtlab ls` or sqlite3 would, each time with a
         * fresh connection, until no worker runs. */
        int max_done = 0;
        bool workers_alive = true;
        while (workers_alive && now() - killed_at < 5) {
            int done = count(dbp, "done");
            ck_assert_msg(done >= max_done, "campaign %d: done went down from %d to %d", c,
                          max_done, done);
            max_done = done;
            workers_alive = false;
            for (int k = 0; k < n_kids; k++)
                workers_alive |= running(kids[k]);
            sleep_s(0.01);
        }
        ck_assert_msg(now() - killed_at < 0.5,
                      "campaign %d: the workers outlived their runner by %.2f s", c,
                      now() - killed_at);
        int done = count(dbp, "done");
        ck_assert_int_ge(done, max_done);
        ck_assert_int_le(count(dbp, "running"), 2);
        assert_integrity(dbp);
        assert_done_complete(dbp);

        char *out, *err;
        const char *rerun[] = {"run", ini, "--db", dbp, "--jobs", "2", NULL};
        ck_assert_int_eq(run_mtlab(&out, &err, rerun), 0);
        ck_assert_msg(trained_by(out) == CRASH_TRIALS - done,
                      "campaign %d: %d done before the rerun, which trained %d", c, done,
                      trained_by(out));
        ck_assert_int_eq(count(dbp, "done"), CRASH_TRIALS);
        assert_done_complete(dbp);
        free(out);
        free(err);
    }
    free(dir);
    free(ini);
    free(dbp);
}
END_TEST

/* SIGTERM to the runner, and Ctrl-C (SIGINT to the whole process group):
 * the workers stop, their trials are pending again (none left running), the
 * exit status is 128 + the signal, and the rerun finishes the sweep. */
START_TEST(stop_signals) {
    char *dir = test_tmpdir(), *ini = test_write_file(dir, "crash.ini", crash_ini),
         *dbp = test_join(dir, "o.db"), *errp = test_join(dir, "err");
    const int sigs[] = {SIGTERM, SIGINT};
    for (int k = 0; k < 2; k++) {
        unlink(dbp);
        const char *args[] = {"run", ini, "--db", dbp, "--jobs", "2", "--quiet", NULL};
        pid_t runner = test_spawn_mtlab(args, NULL, errp, true);
        wait_done(dbp, 4);
        pid_t kids[8];
        int n_kids = children(runner, kids, 8);
        ck_assert_int_eq(n_kids, 2);
        if (sigs[k] == SIGINT)
            kill(-runner, SIGINT); /* what a terminal's Ctrl-C does */
        else
            kill(runner, SIGTERM);
        int ws;
        waitpid(runner, &ws, 0);
        ck_assert_msg(WIFEXITED(ws) && WEXITSTATUS(ws) == 128 + sigs[k], "exit status %d",
                      WIFEXITED(ws) ? WEXITSTATUS(ws) : -WTERMSIG(ws));
        for (int i = 0; i < n_kids; i++)
            ck_assert(!running(kids[i]));
        ck_assert_int_eq(count(dbp, "running"), 0);
        int done = count(dbp, "done");
        ck_assert_int_eq(done + count(dbp, "pending"), CRASH_TRIALS);
        char *text = NULL;
        FILE *f = fopen(errp, "r");
        ck_assert_ptr_nonnull(f);
        text = calloc(1, 4096);
        fread(text, 1, 4095, f);
        fclose(f);
        ck_assert_msg(
            strstr(text, sigs[k] == SIGINT ? "interrupted by SIGINT" : "interrupted by SIGTERM"),
            "%s", text);
        free(text);

        char *out, *err;
        const char *rerun[] = {"run", ini, "--db", dbp, "--jobs", "2", NULL};
        ck_assert_int_eq(run_mtlab(&out, &err, rerun), 0);
        ck_assert_int_eq(trained_by(out), CRASH_TRIALS - done);
        free(out);
        free(err);
    }
    free(dir);
    free(ini);
    free(dbp);
    free(errp);
}
END_TEST

/* Issue 8, item 6: a trial that kills its worker (as the out-of-memory killer
 * does) is reported with the signal and the trial, goes back to pending
 * once, and is failed the second time; a new worker takes the slot, so the
 * other trials still run. */
START_TEST(trial_killing_its_worker) {
    char *dir = test_tmpdir(), *dbp = test_join(dir, "o.db"), *errp = test_join(dir, "err"),
         *outp = test_join(dir, "out");
    /* Trial 1 (steps = 200000) runs for minutes; the others in milliseconds. */
    char *ini = test_write_file(dir, "oom.ini",
                                "[experiment]\nname = oom\n"
                                "[data]\ntrain = 500\nvalidation = 100\ntest = 100\n"
                                "[train]\nsteps = 200000, 50, 60, 70\neval_every = 10\n"
                                "[model]\nname = shared_bottom\n");
    const char *args[] = {"run", ini, "--db", dbp, "--jobs", "1", "--quiet", NULL};
    pid_t runner = test_spawn_mtlab(args, outp, errp, true);
    long killed[2] = {0, 0};
    for (int kill_no = 0; kill_no < 2; kill_no++) {
        /* Wait for trial 1 to run under a worker not killed yet, then kill it. */
        long pid = 0;
        for (double t0 = now(); now() - t0 < 20 && !pid; sleep_s(0.01)) {
            long p = (long)try_query(dbp, "SELECT pid FROM trial WHERE id = 1 AND "
                                          "status = 'running'");
            if (p > 0 && p != killed[0]) pid = p;
        }
        ck_assert_msg(pid > 0, "trial 1 was not claimed (kill %d)", kill_no + 1);
        kill((pid_t)pid, SIGKILL);
        killed[kill_no] = pid;
    }
    int ws;
    waitpid(runner, &ws, 0);
    ck_assert(WIFEXITED(ws));
    ck_assert_int_eq(WEXITSTATUS(ws), 1); /* a worker died: a failure of the run */
    ck_assert_int_eq(count(dbp, "done"), 3);
    ck_assert_int_eq(count(dbp, "failed"), 1);
    ck_assert_int_eq(test_query(dbp, "SELECT count(*) FROM trial WHERE id = 1 AND status = "
                                     "'failed' AND kills = 2 AND error LIKE 'killed its worker 2 "
                                     "times (last: signal 9 (SIGKILL%'"),
                     1);
    FILE *f = fopen(errp, "r");
    char text[4096] = "";
    fread(text, 1, sizeof text - 1, f);
    fclose(f);
    char expect[256];
    snprintf(expect, sizeof expect,
             "worker %ld was killed by signal 9 (SIGKILL), perhaps by the out-of-memory killer "
             "while running trial 1 (shared_bottom, repeat 0); the trial is pending again",
             killed[0]);
    ck_assert_msg(strstr(text, expect), "%s", text);
    snprintf(expect, sizeof expect, "worker %ld was killed by signal 9", killed[1]);
    ck_assert_msg(strstr(text, expect) && strstr(text, "is marked failed"), "%s", text);
    ck_assert_msg(strstr(text, "2 workers were killed by a signal"), "%s", text);

    free(dir);
    free(dbp);
    free(errp);
    free(outp);
    free(ini);
}
END_TEST

/* --retry-failed puts failed trials back to pending and runs them. */
START_TEST(retry_failed) {
    char *dir = test_tmpdir(), *dbp = test_join(dir, "o.db");
    char *ini = test_write_file(dir, "div.ini",
                                "[experiment]\nname = div\n"
                                "[data]\ndim = 20\ntrain = 500\n"
                                "[train]\nsteps = 40\neval_every = 20\nlr = 0.001, 1e7\n"
                                "[model]\nname = shared_bottom\n");
    char *out, *err;
    const char *run[] = {"run", ini, "--db", dbp, "--jobs", "1", NULL};
    ck_assert_int_eq(run_mtlab(&out, &err, run), 0);
    free(out);
    free(err);
    ck_assert_int_eq(count(dbp, "failed"), 1);
    /* Fake a failed attempt that left records and kills. */
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(dbp, &db), SQLITE_OK);
    ck_assert_int_eq(
        sqlite3_exec(db, "UPDATE trial SET kills = 1 WHERE status = 'failed'", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    ck_assert_int_gt(test_query(dbp, "SELECT count(*) FROM metric WHERE trial_id IN (SELECT id "
                                     "FROM trial WHERE status = 'failed')"),
                     0);
    const char *retry[] = {"run", ini, "--db", dbp, "--jobs", "1", "--retry-failed", NULL};
    ck_assert_int_eq(run_mtlab(&out, &err, retry), 0);
    ck_assert_msg(strstr(out, "1 failed trials were put back to pending (--retry-failed)"), "%s",
                  out);
    ck_assert_int_eq(trained_by(out), 1);
    free(out);
    free(err);
    /* It diverges again (lr 1e7): failed once more, with one attempt's records. */
    ck_assert_int_eq(count(dbp, "failed"), 1);
    ck_assert_int_eq(test_query(dbp, "SELECT kills FROM trial WHERE status = 'failed'"), 0);
    ck_assert_int_eq(test_query(dbp, "SELECT count(*) FROM metric WHERE trial_id IN (SELECT id "
                                     "FROM trial WHERE status = 'failed') AND step = 0 AND "
                                     "name = 'test/baseline/t1'"),
                     1);
    free(dir);
    free(dbp);
    free(ini);
}
END_TEST

/* Issue 8, items 2 and 3: a spec replaced with other points and another
 * seed (alpha_seed is fixed: by default it is the experiment seed, and a new
 * sinusoid draw makes every config new).  The old file's pending trials stay pending (never
 * failed), the new file's pending trials take the new seeds, every trial is trained with the seeds
 * stored with it (`mtlab show`'s command reproduces it), and a runner of the old file never takes a
 * trial of the new one. */
static const char *v1_ini =
    "[experiment]\nname = spec\nrepeats = 2\nseed = 1\n"
    "[data]\nalpha_seed = 3\ndim = 20\ntrain = 400\nvalidation = 100\ntest = 100\n"
    "[train]\nsteps = 40\neval_every = 20\nlr = 0.001, 0.01, 0.1\n"
    "[model]\nname = shared_bottom\n";
static const char *v2_ini =
    "[experiment]\nname = spec\nrepeats = 2\nseed = 5\n"
    "[data]\nalpha_seed = 3\ndim = 20\ntrain = 400\nvalidation = 100\ntest = 100\n"
    "[train]\nsteps = 40\neval_every = 20\nlr = 0.01, 0.03\n"
    "[model]\nname = shared_bottom\n";

/* The trials `ids` (an SQL list) are described by the sweep file at ini
 * and carry its seeds. */
static void assert_seeds(const char *ini, const char *dbp, const char *ids) {
    sweep_t *sw;
    err_t e = {0};
    ck_assert_int_eq(sweep_load(ini, &sw, &e), 0);
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open_v2(dbp, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT config, repeat, data_seed, init_seed FROM trial WHERE id IN (%s)", ids);
    ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    int checked = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        int p = sweep_find_point(sw, (const char *)sqlite3_column_text(st, 0));
        ck_assert_int_ge(p, 0);
        int r = sqlite3_column_int(st, 1);
        ck_assert_uint_eq((uint64_t)sqlite3_column_int64(st, 2), sweep_data_seed(sw, p, r));
        ck_assert_uint_eq((uint64_t)sqlite3_column_int64(st, 3), sweep_init_seed(sw, p, r));
        checked++;
    }
    ck_assert_int_gt(checked, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    sweep_free(sw);
}

/* Reruns trial id by the `mtlab train` command `mtlab show` prints and
 * compares its final test loss with the stored one, to the bit. */
static void assert_show_reproduces(const char *dbp, int id) {
    char *train_out = test_rerun_shown(dbp, id);
    const char *final = strstr(train_out, "final test loss:");
    ck_assert_ptr_nonnull(final);
    double t1;
    ck_assert_int_eq(sscanf(final, "final test loss: t1 %lf", &t1), 1);
    char sql[160];
    snprintf(sql, sizeof sql,
             "SELECT value FROM v_final WHERE trial_id = %d AND name = 'test/loss/t1'", id);
    ck_assert_msg(t1 == test_query(dbp, sql), "trial %d: train gives %.17g, stored %.17g", id, t1,
                  test_query(dbp, sql));
    free(train_out);
}

/* A spec with fewer repeats than the store holds: its runner trains only
 * its own (config, repeat) trials, not the stored extra repeats, and says
 * they are not described by the file. */
START_TEST(replace_spec_fewer_repeats) {
    char *dir = test_tmpdir(), *dbp = test_join(dir, "o.db"),
         *v1 = test_write_file(dir, "v1.ini", v1_ini);
    char one_repeat[1024];
    snprintf(one_repeat, sizeof one_repeat, "%s", v1_ini);
    char *r = strstr(one_repeat, "repeats = 2");
    ck_assert_ptr_nonnull(r);
    r[10] = '1';
    char *v1r1 = test_write_file(dir, "v1r1.ini", one_repeat);
    char *out, *err;
    const char *run_v1[] = {"run", v1, "--db", dbp, "--jobs", "1", "--limit", "1", NULL};
    ck_assert_int_eq(run_mtlab(&out, &err, run_v1), 0); /* registers 6, trains 1 */
    free(out);
    free(err);
    const char *run_r1[] = {"run", v1r1, "--db", dbp, "--jobs", "2", "--replace-spec", NULL};
    ck_assert_int_eq(run_mtlab(&out, &err, run_r1), 0);
    ck_assert_int_eq(trained_by(out), 2); /* repeat 0's other two lrs */
    ck_assert_msg(strstr(out, "3 pending trials are not described by this file"), "%s", out);
    free(out);
    free(err);
    ck_assert_int_eq(test_query(dbp, "SELECT count(*) FROM trial WHERE repeat = 1 AND status = "
                                     "'pending'"),
                     3);
    free(v1r1);
    free(v1);
    free(dbp);
    free(dir);
}
END_TEST

START_TEST(replace_spec) {
    char *dir = test_tmpdir(), *dbp = test_join(dir, "o.db"),
         *v1 = test_write_file(dir, "v1.ini", v1_ini), *v2 = test_write_file(dir, "v2.ini", v2_ini);
    char *out, *err;
    /* v1 runs 3 of its 6 trials: lr 0.001, 0.01, 0.1 of repeat 0. */
    const char *run_v1[] = {"run", v1, "--db", dbp, "--jobs", "1", "--limit", "3", NULL};
    ck_assert_int_eq(run_mtlab(&out, &err, run_v1), 0);
    free(out);
    free(err);
    /* v2 replaces it: lr 0.01 (repeat 0 done under v1's seeds, repeat 1
     * pending, now with v2's seeds) and lr 0.03 (new). */
    const char *run_v2[] = {"run", v2, "--db", dbp, "--jobs", "2", "--replace-spec", NULL};
    ck_assert_int_eq(run_mtlab(&out, &err, run_v2), 0);
    ck_assert_msg(strstr(out, "spec: 8 trials") == NULL, "%s", out);
    ck_assert_msg(strstr(out, "2 pending trials are not described by this file"), "%s", out);
    ck_assert_int_eq(trained_by(out), 3); /* 0.01 r1, 0.03 r0, 0.03 r1 */
    free(out);
    free(err);
    ck_assert_int_eq(count(dbp, "failed"), 0);
    ck_assert_int_eq(count(dbp, "done"), 6);
    ck_assert_int_eq(count(dbp, "pending"), 2); /* v1's lr 0.001 and 0.1 of repeat 1 */
    /* Every trial, old seeds or new, is reproduced by its `show` command. */
    for (int id = 1; id <= 8; id++) {
        char sql[96];
        snprintf(sql, sizeof sql, "SELECT status = 'done' FROM trial WHERE id = %d", id);
        if (test_query(dbp, sql) == 1) assert_show_reproduces(dbp, id);
    }
    /* Trial ids: v1 repeat 0 = 1..3, repeat 1 = 4..6 (lr 0.001, 0.01, 0.1);
     * v2's lr 0.03 = 7, 8.  Trial 5 was pending when v2 replaced the spec:
     * it ran with v2's seeds and stores them; 2 was done under v1's. */
    assert_seeds(v2, dbp, "5, 7, 8");
    assert_seeds(v1, dbp, "1, 2, 3, 4, 6");
    /* v1 --replace-spec again runs its two pending trials with v1's seeds;
     * v2's trials are not touched. */
    const char *back[] = {"run", v1, "--db", dbp, "--jobs", "1", "--replace-spec", NULL};
    ck_assert_int_eq(run_mtlab(&out, &err, back), 0);
    ck_assert_int_eq(trained_by(out), 2);
    free(out);
    free(err);
    assert_seeds(v1, dbp, "4, 6");
    assert_seeds(v2, dbp, "5, 7, 8");
    assert_show_reproduces(dbp, 4);
    ck_assert_int_eq(count(dbp, "done"), 8);
    ck_assert_int_eq(count(dbp, "failed"), 0);
    free(dir);
    free(dbp);
    free(v1);
    free(v2);
}
END_TEST

/* A runner of the old file and one of the new file at once: neither takes
 * the other's trials, and nothing is failed. */
START_TEST(old_and_new_runner_together) {
    char *dir = test_tmpdir(), *dbp = test_join(dir, "o.db"),
         *v1 = test_write_file(dir, "v1.ini", v1_ini), *v2 = test_write_file(dir, "v2.ini", v2_ini);
    char *out, *err;
    const char *reg[] = {"run", v1, "--db", dbp, "--limit", "0", NULL};
    ck_assert_int_eq(run_mtlab(&out, &err, reg), 0);
    free(out);
    free(err);
    const char *a1[] = {"run", v1, "--db", dbp, "--jobs", "1", "--replace-spec", "--quiet", NULL};
    const char *a2[] = {"run", v2, "--db", dbp, "--jobs", "1", "--replace-spec", "--quiet", NULL};
    pid_t p1 = test_spawn_mtlab(a1, NULL, NULL, false),
          p2 = test_spawn_mtlab(a2, NULL, NULL, false);
    int w1, w2;
    waitpid(p1, &w1, 0);
    waitpid(p2, &w2, 0);
    ck_assert(WIFEXITED(w1) && WEXITSTATUS(w1) == 0 && WIFEXITED(w2) && WEXITSTATUS(w2) == 0);
    ck_assert_int_eq(count(dbp, "failed"), 0);
    ck_assert_int_eq(count(dbp, "running"), 0);
    /* Whichever registered last left its seeds on the shared pending
     * trials; all 8 trials ran once the other runner finished. */
    ck_assert_int_eq(count(dbp, "done") + count(dbp, "pending"), 8);
    const char *rest1[] = {"run", v1, "--db", dbp, "--replace-spec", NULL};
    const char *rest2[] = {"run", v2, "--db", dbp, "--replace-spec", NULL};
    ck_assert_int_eq(run_mtlab(&out, &err, rest1), 0);
    free(out);
    free(err);
    ck_assert_int_eq(run_mtlab(&out, &err, rest2), 0);
    free(out);
    free(err);
    ck_assert_int_eq(count(dbp, "done"), 8);
    free(dir);
    free(dbp);
    free(v1);
    free(v2);
}
END_TEST

/* Issue 8, item 4: trials left running by another host (a container that is
 * gone) are not judged by this host; the run says so, and --release-stale
 * puts them back to pending so the sweep completes. */
START_TEST(other_host_release_stale) {
    char *dir = test_tmpdir(), *dbp = test_join(dir, "o.db"),
         *ini = test_write_file(dir, "v1.ini", v1_ini);
    char *out, *err;
    const char *first[] = {"run", ini, "--db", dbp, "--jobs", "1", "--limit", "2", NULL};
    ck_assert_int_eq(run_mtlab(&out, &err, first), 0);
    free(out);
    free(err);
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(dbp, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db,
                                  "UPDATE trial SET status = 'running', host = 'gone-container', "
                                  "pid = 1234, started = '2026-01-01T00:00:00Z' WHERE id IN (3, 4)",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    const char *again[] = {"run", ini, "--db", dbp, "--jobs", "1", NULL};
    ck_assert_int_eq(run_mtlab(&out, &err, again), 0);
    ck_assert_msg(strstr(out, "2 trials are running on another host; if no runner is alive there "
                              "any more, rerun with --release-stale"),
                  "%s", out);
    ck_assert_int_eq(trained_by(out), 2);
    free(out);
    free(err);
    ck_assert_int_eq(count(dbp, "running"), 2);
    const char *release[] = {"run", ini, "--db", dbp, "--jobs", "1", "--release-stale", NULL};
    ck_assert_int_eq(run_mtlab(&out, &err, release), 0);
    ck_assert_msg(strstr(out, "2 running trials were put back to pending (--release-stale)"), "%s",
                  out);
    ck_assert_int_eq(trained_by(out), 2);
    free(out);
    free(err);
    ck_assert_int_eq(count(dbp, "done"), 6);
    free(dir);
    free(dbp);
    free(ini);
}
END_TEST

/* Issue 8, item 5: a trial no machine holds is bad input before anything is
 * stored (exit 2, FILE:LINE and the trial), from --dry-run too; --max-memory
 * lowers the limit; --jobs is lowered to what fits. */
START_TEST(memory_checked_before_running) {
    char *dir = test_tmpdir(), *dbp = test_join(dir, "o.db");
    char *big = test_write_file(dir, "big.ini",
                                "[experiment]\nname = big\n[data]\ndim = 1000000\n"
                                "train = 40000\n[model]\nname = mmoe\n");
    char *wide = test_write_file(dir, "wide.ini",
                                 "[experiment]\nname = wide\n[model]\nname = mmoe\n"
                                 "experts = 4096\nexpert_hidden = 1000000\n");
    char *small = test_write_file(dir, "small.ini", crash_ini);
    char *out, *err;
    const char *dry[] = {"run", big, "--dry-run", NULL};
    ck_assert_int_eq(run_mtlab(&out, &err, dry), 2);
    ck_assert_msg(strstr(err, "big.ini:5: point 0 (mmoe, data.train): a trial needs about") &&
                      strstr(err, "GiB (data 156.5 GiB") &&
                      strstr(err, "more than this machine's memory"),
                  "%s", err);
    free(out);
    free(err);
    const char *run[] = {"run", big, "--db", dbp, NULL};
    ck_assert_int_eq(run_mtlab(&out, &err, run), 2);
    ck_assert_int_eq(access(dbp, F_OK), -1); /* nothing stored, not even the file */
    free(out);
    free(err);
    const char *overflow[] = {"run", wide, "--db", dbp, NULL};
    ck_assert_int_eq(run_mtlab(&out, &err, overflow), 2);
    ck_assert_msg(strstr(err, "wide.ini:6: point 0 (mmoe, model.expert_hidden): mmoe: 4096 "
                              "experts x 1000000 hidden units overflows"),
                  "%s", err);
    ck_assert_int_eq(access(dbp, F_OK), -1);
    free(out);
    free(err);
    const char *tight[] = {"run", small, "--db", dbp, "--max-memory", "10M", NULL};
    ck_assert_int_eq(run_mtlab(&out, &err, tight), 2);
    ck_assert_msg(strstr(err, "small.ini:5: point 0 (shared_bottom, data.train)") &&
                      strstr(err, "more than --max-memory (10.0 MiB)"),
                  "%s", err);
    ck_assert_int_eq(access(dbp, F_OK), -1);
    free(out);
    free(err);
    const char *bad[] = {"run", small, "--max-memory", "lots", NULL};
    ck_assert_int_eq(run_mtlab(&out, &err, bad), 2);
    ck_assert_msg(strstr(err, "--max-memory lots: expected a size"), "%s", err);
    free(out);
    free(err);
    /* --max-memory 100M holds as many workers as the largest trial's
     * estimate (about 35 MiB, mostly the worker itself) fits in. */
    const char *fit[] = {"run", small, "--dry-run", "--max-memory", "100M", "--jobs", "8", NULL};
    ck_assert_int_eq(run_mtlab(&out, &err, fit), 0);
    const char *largest = strstr(out, "# largest trial: about ");
    double mib;
    int fits, jobs;
    ck_assert_msg(largest && sscanf(largest, "# largest trial: about %lf MiB; %d of %d workers",
                                    &mib, &fits, &jobs) == 3,
                  "%s", out);
    ck_assert_int_eq(jobs, 8);
    ck_assert_int_eq(fits, (int)(100 / mib)); /* mib is rounded to 0.1: far from a step */
    ck_assert_int_lt(fits, jobs);             /* lowered from --jobs 8 */
    free(out);
    free(err);
    const char *fit_run[] = {"run", small,     "--db", dbp, "--max-memory", "100M", "--jobs",
                             "8",   "--limit", "1",    NULL};
    ck_assert_int_eq(run_mtlab(&out, &err, fit_run), 0);
    ck_assert_msg(strstr(err, "running 2 workers: the largest trial needs about"), "%s", err);
    free(out);
    free(err);
    free(dir);
    free(dbp);
    free(big);
    free(wide);
    free(small);
}
END_TEST

Suite *crash_suite(void) {
    Suite *s = suite_create("crash");
    TCase *tc = tcase_create("crash");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, kill_runner_alone);
    tcase_add_test(tc, stop_signals);
    tcase_add_test(tc, trial_killing_its_worker);
    tcase_add_test(tc, retry_failed);
    tcase_add_test(tc, replace_spec);
    tcase_add_test(tc, replace_spec_fewer_repeats);
    tcase_add_test(tc, old_and_new_runner_together);
    tcase_add_test(tc, other_host_release_stale);
    tcase_add_test(tc, memory_checked_before_running);
    suite_add_tcase(s, tc);
    return s;
}
