/* test_run.c -- `mtlab run` end to end, as a user runs it: the trials and
 * records a sweep produces, resuming, kill -9, concurrent runners, bit-exact
 * agreement with `mtlab train`, and bad input that leaves the store intact. */
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

/* A 2 x 2 grid (correlation x lr) with 3 repeats of one model, small enough
 * to run in well under a second per trial. */
static const char *grid_ini = "[experiment]\n"
                              "name = grid\n"
                              "repeats = 3\n"
                              "seed = 11\n"
                              "[data]\n"
                              "correlation = 0.5, 1.0\n"
                              "dim = 20\n"
                              "train = 400\n"
                              "validation = 100\n"
                              "test = 150\n"
                              "[train]\n"
                              "lr = 0.001, 0.01\n"
                              "batch = 32\n"
                              "steps = 60\n"
                              "eval_every = 20\n"
                              "[model]\n"
                              "name = mmoe\n"
                              "experts = 4\n"
                              "expert_hidden = 8\n";

static sqlite3 *open_db(const char *path) {
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    return db;
}

/* First column of the first row of `sql`, as a double (NAN when no row). */
static double q(sqlite3 *db, const char *sql) {
    sqlite3_stmt *st;
    ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql,
                  sqlite3_errmsg(db));
    double v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_double(st, 0) : 0.0 / 0.0;
    sqlite3_finalize(st);
    return v;
}

static int run_sweep(const char *ini, const char *db, const char *jobs, char **out) {
    char *err;
    const char *args[] = {"run", ini, "--db", db, "--jobs", jobs, NULL};
    int rc = run_mtlab(out, &err, args);
    if (rc != 0) fprintf(stderr, "mtlab run failed (%d): %s\n", rc, err);
    free(err);
    return rc;
}

START_TEST(test_grid_records) {
    char *dir = test_tmpdir(), *ini = test_write_file(dir, "grid.ini", grid_ini),
         *dbp = test_join(dir, "r.db");
    char *out;
    ck_assert_int_eq(run_sweep(ini, dbp, "2", &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "12 trials (12 new): 12 done, 0 failed"));
    free(out);
    sqlite3 *db = open_db(dbp);
    ck_assert_int_eq(q(db, "SELECT count(*) FROM trial"), 12);
    ck_assert_int_eq(q(db, "SELECT count(*) FROM trial WHERE status = 'done'"), 12);
    /* Each (correlation, lr) pair appears 3 times, once per repeat. */
    ck_assert_int_eq(q(db, "SELECT count(*) FROM (SELECT c.value, l.value, count(*) n FROM trial t "
                           "JOIN param c ON c.trial_id = t.id AND c.key = 'data.correlation' "
                           "JOIN param l ON l.trial_id = t.id AND l.key = 'train.lr' "
                           "GROUP BY c.value, l.value HAVING n = 3 AND "
                           "count(DISTINCT t.repeat) = 3)"),
                     4);
    ck_assert_int_eq(
        q(db, "SELECT count(*) FROM param WHERE key = 'data.correlation' AND value = 0.5"), 6);
    /* Curves: 3 evaluations (20, 40, 60) x 3 splits x (2 tasks + total), plus
     * at step 0 the mean predictor's test loss (2 tasks + total) and the
     * labels' Pearson correlation. */
    ck_assert_int_eq(q(db, "SELECT min(n) FROM (SELECT count(*) n FROM metric GROUP BY trial_id)"),
                     31);
    ck_assert_int_eq(q(db, "SELECT max(n) FROM (SELECT count(*) n FROM metric GROUP BY trial_id)"),
                     31);
    ck_assert_int_eq(q(db, "SELECT count(DISTINCT step) FROM metric"), 4);
    ck_assert_int_eq(q(db, "SELECT count(*) FROM metric WHERE name = 'val/loss/total'"), 36);
    /* Gates: 2 gates x 4 experts per trial; every histogram row sums to the test size. */
    ck_assert_int_eq(q(db, "SELECT count(*) FROM gate"), 12 * 2 * 4);
    ck_assert_int_eq(q(db, "SELECT min(s) FROM (SELECT sum(count) s FROM gate_hist GROUP BY "
                           "trial_id, gate, expert)"),
                     150);
    ck_assert_int_eq(q(db, "SELECT max(s) FROM (SELECT sum(count) s FROM gate_hist GROUP BY "
                           "trial_id, gate, expert)"),
                     150);
    /* MMoE's gates: level 1, each owned by its task, softmax on [0, 1]. */
    ck_assert_int_eq(q(db, "SELECT count(*) FROM gate WHERE level = 1 AND owner = gate AND "
                           "gate IN ('t1', 't2') AND kind = 'softmax' AND hist_lo = 0 AND "
                           "hist_hi = 1"),
                     12 * 2 * 4);
    /* Weights stored with their tensor table. */
    ck_assert_int_eq(q(db, "SELECT count(*) FROM weights w JOIN trial t ON t.id = w.trial_id WHERE "
                           "w.n = t.n_params AND length(w.data) = 4 * w.n"),
                     12);
    /* Seeds: one dataset per (correlation, repeat) shared by both lrs; repeats differ. */
    ck_assert_int_eq(q(db, "SELECT count(DISTINCT data_seed) FROM trial"), 6);
    ck_assert_int_eq(q(db, "SELECT count(DISTINCT init_seed) FROM trial"), 12);
    ck_assert_int_eq(q(db,
                       "SELECT count(*) FROM (SELECT c.value, t.repeat FROM trial t JOIN param c "
                       "ON c.trial_id = t.id AND c.key = 'data.correlation' "
                       "GROUP BY c.value, t.repeat HAVING count(DISTINCT t.data_seed) = 1)"),
                     6);
    ck_assert_int_eq(q(db, "SELECT count(*) FROM v_final WHERE name = 'test/loss/t1'"), 12);
    sqlite3_close(db);

    /* Re-running the finished sweep trains nothing and changes nothing. */
    ck_assert_int_eq(run_sweep(ini, dbp, "2", &out), 0);
    ck_assert_ptr_nonnull(
        strstr(out, "12 trials (0 new): 12 done, 0 failed, 0 pending; this run trained 0"));
    free(out);
    free(dir);
    free(ini);
    free(dbp);
}
END_TEST

/* The trial the runner stored and the same trial run again by the
 * `mtlab train` command that `mtlab show` prints for it give the same final
 * losses to the last bit. */
START_TEST(test_same_bits_as_train) {
    char *dir = test_tmpdir(), *dbp = test_join(dir, "r.db");
    char *ini = test_write_file(dir, "one.ini",
                                "[experiment]\nname = one\nseed = 5\n"
                                "[data]\ncorrelation = 0.7\ntrain = 2000\n"
                                "[train]\nsteps = 150\neval_every = 50\n"
                                "[model]\nname = mmoe\n");
    char *out;
    ck_assert_int_eq(run_sweep(ini, dbp, "1", &out), 0);
    free(out);
    sqlite3 *db = open_db(dbp);
    double stored_t1 = q(db, "SELECT value FROM v_final WHERE name = 'test/loss/t1'");
    double stored_t2 = q(db, "SELECT value FROM v_final WHERE name = 'test/loss/t2'");
    sqlite3_close(db);

    char *train_out = test_rerun_shown(dbp, 1);
    const char *final = strstr(train_out, "final test loss:");
    ck_assert_ptr_nonnull(final);
    double t1, t2;
    ck_assert_int_eq(sscanf(final, "final test loss: t1 %lf t2 %lf", &t1, &t2), 2);
    ck_assert_msg(t1 == stored_t1 && t2 == stored_t2, "train %.17g %.17g vs stored %.17g %.17g", t1,
                  t2, stored_t1, stored_t2);
    free(train_out);
    free(dir);
    free(ini);
    free(dbp);
}
END_TEST

/* A sweep whose trials take long enough to be killed mid-run. */
static const char *slow_ini = "[experiment]\nname = slow\nrepeats = 8\n"
                              "[data]\ncorrelation = 0.5, 0.9\ntrain = 2000\n"
                              "[train]\nsteps = 300\neval_every = 100\n"
                              "[model]\nname = shared_bottom, mmoe\n";

static pid_t spawn_run(const char *ini, const char *db) {
    pid_t pid = fork();
    ck_assert(pid >= 0);
    if (pid == 0) {
        setsid(); /* own process group, so the test can kill the workers too */
        int devnull = open("/dev/null", 1);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execl(getenv("MTLAB_BIN"), "mtlab", "run", ini, "--db", db, "--jobs", "2", (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void wait_done_at_least(const char *dbp, int n) {
    for (int i = 0; i < 2000; i++) {
        usleep(10000);
        if (access(dbp, F_OK) != 0) continue;
        sqlite3 *db;
        if (sqlite3_open_v2(dbp, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) continue;
        sqlite3_busy_timeout(db, 1000);
        sqlite3_stmt *st;
        int done = -1;
        if (sqlite3_prepare_v2(db, "SELECT count(*) FROM trial WHERE status = 'done'", -1, &st,
                               NULL) == SQLITE_OK) {
            if (sqlite3_step(st) == SQLITE_ROW) done = sqlite3_column_int(st, 0);
            sqlite3_finalize(st);
        }
        sqlite3_close(db);
        if (done >= n) return;
    }
    ck_abort_msg("the sweep never reached %d done trials", n);
}

START_TEST(test_kill_and_resume) {
    char *dir = test_tmpdir(), *ini = test_write_file(dir, "slow.ini", slow_ini),
         *dbp = test_join(dir, "r.db");
    /* Kill -9 the whole run (parent and workers) three times at different
     * points, then let it finish. */
    int targets[] = {2, 9, 17};
    for (int k = 0; k < 3; k++) {
        pid_t pid = spawn_run(ini, dbp);
        wait_done_at_least(dbp, targets[k]);
        kill(-pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    sqlite3 *db = open_db(dbp);
    ck_assert_int_lt(q(db, "SELECT count(*) FROM trial WHERE status = 'done'"), 32);
    sqlite3_close(db);
    char *out;
    ck_assert_int_eq(run_sweep(ini, dbp, "2", &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "32 trials (0 new): 32 done, 0 failed, 0 pending"));
    free(out);
    db = open_db(dbp);
    sqlite3_stmt *st;
    ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    ck_assert_int_eq(q(db, "SELECT count(*) FROM trial"), 32);
    /* No trial half-written: every one has its full curve (3 evals x 3 splits
     * x 3 series, + 3 baselines + 1 label correlation) and gate rows where the
     * model has gates. */
    ck_assert_int_eq(q(db, "SELECT count(*) FROM trial t WHERE (SELECT count(*) FROM metric m "
                           "WHERE m.trial_id = t.id) = 31"),
                     32);
    ck_assert_int_eq(q(db, "SELECT count(*) FROM trial t WHERE model = 'mmoe' AND (SELECT count(*) "
                           "FROM gate g WHERE g.trial_id = t.id) = 16"),
                     16);
    ck_assert_int_eq(q(db, "SELECT count(*) FROM weights"), 32);
    sqlite3_close(db);
    free(dir);
    free(ini);
    free(dbp);
}
END_TEST

/* Two runners on the same file at once share the work: together they train
 * each trial exactly once. */
START_TEST(test_concurrent_runners) {
    char *dir = test_tmpdir(), *ini = test_write_file(dir, "grid.ini", grid_ini),
         *dbp = test_join(dir, "r.db");
    char *out_paths[2];
    pid_t pids[2];
    for (int i = 0; i < 2; i++) {
        char name[16];
        snprintf(name, sizeof name, "out%d", i);
        out_paths[i] = test_join(dir, name);
        pids[i] = fork();
        ck_assert(pids[i] >= 0);
        if (pids[i] == 0) {
            freopen(out_paths[i], "w", stdout);
            execl(getenv("MTLAB_BIN"), "mtlab", "run", ini, "--db", dbp, "--jobs", "2",
                  (char *)NULL);
            _exit(127);
        }
    }
    int trained_total = 0;
    for (int i = 0; i < 2; i++) {
        int status;
        waitpid(pids[i], &status, 0);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        FILE *f = fopen(out_paths[i], "r");
        char line[512] = "";
        ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
        fclose(f);
        const char *p = strstr(line, "this run trained ");
        ck_assert_ptr_nonnull(p);
        trained_total += atoi(p + strlen("this run trained "));
        free(out_paths[i]);
    }
    ck_assert_int_eq(trained_total, 12);
    sqlite3 *db = open_db(dbp);
    ck_assert_int_eq(q(db, "SELECT count(*) FROM trial WHERE status = 'done'"), 12);
    ck_assert_int_eq(q(db, "SELECT count(*) FROM metric"), 12 * 31);
    sqlite3_close(db);
    free(dir);
    free(ini);
    free(dbp);
}
END_TEST

/* A diverging trial (lr 1e7 overflows the activations within a few steps)
 * is stored as failed with its step; the others finish. */
START_TEST(test_divergence_is_failed) {
    char *dir = test_tmpdir(), *dbp = test_join(dir, "r.db");
    char *ini = test_write_file(dir, "div.ini",
                                "[experiment]\nname = div\n"
                                "[data]\ndim = 20\ntrain = 500\n"
                                "[train]\nsteps = 40\neval_every = 20\nlr = 0.001, 1e7\n"
                                "[model]\nname = shared_bottom\n");
    char *out;
    ck_assert_int_eq(run_sweep(ini, dbp, "1", &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "2 trials (2 new): 1 done, 1 failed"));
    free(out);
    sqlite3 *db = open_db(dbp);
    ck_assert_int_eq(q(db, "SELECT count(*) FROM trial WHERE status = 'failed' AND failed_step > 0 "
                           "AND error LIKE 'diverged at step%'"),
                     1);
    sqlite3_close(db);
    free(dir);
    free(ini);
    free(dbp);
}
END_TEST

START_TEST(test_bad_input_leaves_store_intact) {
    char *dir = test_tmpdir(), *ini = test_write_file(dir, "grid.ini", grid_ini),
         *dbp = test_join(dir, "r.db");
    char *out, *err;
    ck_assert_int_eq(run_sweep(ini, dbp, "2", &out), 0);
    free(out);
    /* Same experiment name, changed file: refused, nothing touched. */
    char *changed = malloc(strlen(grid_ini) + 32);
    sprintf(changed, "%s", grid_ini);
    *strstr(changed, "steps = 60") = '\0';
    strcat(changed, "steps = 80\neval_every = 20\n[model]\nname = mmoe\n");
    free(test_write_file(dir, "grid.ini", changed));
    const char *args[] = {"run", ini, "--db", dbp, NULL};
    ck_assert_int_eq(run_mtlab(&out, &err, args), 2);
    ck_assert_ptr_nonnull(strstr(err, "grid"));
    ck_assert_ptr_nonnull(strstr(err, "--replace-spec"));
    free(out);
    free(err);
    /* A malformed file: exit 2 naming file:line. */
    char *bad =
        test_write_file(dir, "bad.ini", "[experiment]\nname = bad\n[train]\nlearning_rate = 0.1\n");
    const char *bad_args[] = {"run", bad, "--db", dbp, NULL};
    ck_assert_int_eq(run_mtlab(&out, &err, bad_args), 2);
    ck_assert_msg(strstr(err, "bad.ini:4") && strstr(err, "lr"), "stderr: %s", err);
    free(out);
    free(err);
    /* An unwritable store location: exit 1. */
    const char *nodir[] = {"run", ini, "--db", "/nonexistent/dir/r.db", NULL};
    ck_assert_int_eq(run_mtlab(&out, &err, nodir), 1);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/dir/r.db"));
    free(out);
    free(err);
    sqlite3 *db = open_db(dbp);
    ck_assert_int_eq(q(db, "SELECT count(*) FROM trial WHERE status = 'done'"), 12);
    ck_assert_int_eq(q(db, "SELECT count(*) FROM metric"), 12 * 31);
    sqlite3_close(db);
    free(changed);
    free(bad);
    free(dir);
    free(ini);
    free(dbp);
}
END_TEST

/* On a pipe (a log file, nohup, Slurm) progress comes as whole lines every
 * $MTLAB_PROGRESS_EVERY seconds (30 by default), never the terminal's
 * redrawn line; --quiet silences them; a bad value is bad input. */
START_TEST(test_progress_lines_on_a_pipe) {
    char text[1024]; /* the grid with 2000 steps: about half a second of training */
    snprintf(text, sizeof text, "%s", grid_ini);
    char *steps = strstr(text, "steps = 60\n");
    ck_assert_ptr_nonnull(steps);
    memmove(steps + 10, steps + 8, strlen(steps + 8) + 1);
    memcpy(steps, "steps = 2000", 12);
    char *dir = test_tmpdir(), *ini = test_write_file(dir, "grid.ini", text),
         *db = test_join(dir, "p.db");
    setenv("MTLAB_PROGRESS_EVERY", "0.05", 1);
    char *out, *err;
    const char *args[] = {"run", ini, "--db", db, "--jobs", "1", NULL};
    ck_assert_int_eq(run_mtlab(&out, &err, args), 0);
    ck_assert_msg(strstr(err, "grid: ") && strstr(err, " done, 0 failed, ") && strstr(err, "ETA"),
                  "%s", err);
    ck_assert_msg(strchr(err, '\r') == NULL && strstr(err, "\033[K") == NULL, "%s", err);
    ck_assert_int_eq(err[strlen(err) - 1], '\n');
    free(out);
    free(err);
    const char *quiet[] = {"run", ini, "--db", db, "--jobs", "1", "--quiet", NULL};
    ck_assert_int_eq(run_mtlab(&out, &err, quiet), 0);
    ck_assert_str_eq(err, "");
    free(out);
    free(err);
    setenv("MTLAB_PROGRESS_EVERY", "soon", 1);
    ck_assert_int_eq(run_mtlab(&out, &err, args), 2);
    ck_assert_msg(strstr(err, "MTLAB_PROGRESS_EVERY=soon"), "%s", err);
    free(out);
    free(err);
    unsetenv("MTLAB_PROGRESS_EVERY");
    free(db);
    free(ini);
    free(dir);
}
END_TEST

START_TEST(test_dry_run) {
    char *dir = test_tmpdir(), *ini = test_write_file(dir, "grid.ini", grid_ini),
         *dbp = test_join(dir, "r.db");
    char *out, *err;
    const char *args[] = {"run", ini, "--db", dbp, "--dry-run", NULL};
    ck_assert_int_eq(run_mtlab(&out, &err, args), 0);
    ck_assert_ptr_nonnull(strstr(out, "4 points x 3 repeats = 12 trials"));
    ck_assert_ptr_nonnull(strstr(out, "data.correlation=0.5"));
    ck_assert_ptr_nonnull(strstr(out, "train.lr=0.01"));
    ck_assert_int_ne(access(dbp, F_OK), 0); /* nothing written */
    free(out);
    free(err);
    free(dir);
    free(ini);
    free(dbp);
}
END_TEST

/* steps = 0: data-only trials record the labels' Pearson correlation (Fig 2)
 * and train nothing.  With m = 0 it is p c² / (c² + σ²) = p / 1.01 here,
 * within 4 standard errors ((1 - ρ²)/sqrt(n), n = 4000) of sampling. */
START_TEST(test_data_only) {
    char *dir = test_tmpdir(), *dbp = test_join(dir, "r.db");
    char *ini = test_write_file(dir, "fig2.ini",
                                "[experiment]\nname = pearson\nrepeats = 3\n"
                                "[data]\ncorrelation = 0, 0.5, 1\nsinusoids = 0\ntrain = 4000\n"
                                "[train]\nsteps = 0\n[model]\nname = mmoe\n");
    char *out;
    ck_assert_int_eq(run_sweep(ini, dbp, "2", &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "9 trials (9 new): 9 done"));
    free(out);
    sqlite3 *db = open_db(dbp);
    ck_assert_int_eq(q(db, "SELECT count(*) FROM v_final WHERE name = 'data/pearson/t1-t2'"), 9);
    ck_assert_int_eq(q(db, "SELECT count(*) FROM metric WHERE name LIKE '%/loss/%'"), 0);
    ck_assert_int_eq(
        q(db, "SELECT count(*) FROM v_final WHERE name = 'test/baseline/total' AND value > 0"), 9);
    ck_assert_int_eq(q(db, "SELECT count(*) FROM weights"), 0);
    ck_assert_int_eq(q(db, "SELECT count(*) FROM trial WHERE n_params = 0"), 9); /* no model */
    const double p[] = {0, 0.5, 1};
    for (int i = 0; i < 3; i++) {
        char sql[256];
        snprintf(sql, sizeof sql,
                 "SELECT max(abs(value - %g / 1.01)) FROM v_final "
                 "WHERE name = 'data/pearson/t1-t2' AND correlation = %g",
                 p[i], p[i]);
        double expect = p[i] / 1.01, se = (1 - expect * expect) / sqrt(4000.0);
        ck_assert_msg(q(db, sql) <= 4 * se + 1e-12, "corr %g: |pearson - expected| = %g", p[i],
                      q(db, sql));
    }
    sqlite3_close(db);
    free(dir);
    free(ini);
    free(dbp);
}
END_TEST

/* trial.n_params is the model's parameter count for every trial, written
 * when the trial is registered: without stored weights, and before the
 * trial has run. */
START_TEST(test_n_params_always) {
    char *dir = test_tmpdir(), *dbp = test_join(dir, "r.db");
    char *ini = test_write_file(dir, "count.ini",
                                "[experiment]\nname = count\nrepeats = 2\n"
                                "[data]\ndim = 10\ntrain = 300\nvalidation = 50\ntest = 50\n"
                                "[train]\nsteps = 10\neval_every = 10\nbatch = 16\n"
                                "[model]\nname = mmoe, shared_bottom\nexperts = 3\n"
                                "expert_hidden = 4\ntower_hidden = 2\nbottom_hidden = 5\n"
                                "[record]\nweights = false\n");
    char *out, *err;
    const char *dry[] = {"run", ini, "--db", dbp, "--limit", "1", NULL};
    ck_assert_int_eq(run_mtlab(&out, &err, dry), 0);
    free(out);
    free(err);
    sqlite3 *db = open_db(dbp);
    /* mmoe: experts 10x12+12, gates 2 x 10x3, towers 2 x (4x2+2 + 2+1);
     * shared_bottom: bottom 10x5+5, towers 2 x (5x2+2 + 2+1) */
    const double mmoe = 10 * 12 + 12 + 2 * 10 * 3 + 2 * (4 * 2 + 2 + 2 + 1);
    const double sb = 10 * 5 + 5 + 2 * (5 * 2 + 2 + 2 + 1);
    ck_assert_int_eq(q(db, "SELECT count(*) FROM trial WHERE status = 'pending'"), 3);
    ck_assert(q(db, "SELECT min(n_params) FROM trial WHERE model = 'mmoe'") == mmoe);
    ck_assert(q(db, "SELECT max(n_params) FROM trial WHERE model = 'mmoe'") == mmoe);
    ck_assert(q(db, "SELECT min(n_params) FROM trial WHERE model = 'shared_bottom'") == sb);
    ck_assert_int_eq(q(db, "SELECT count(*) FROM trial WHERE n_params IS NULL"), 0);
    sqlite3_close(db);
    ck_assert_int_eq(run_sweep(ini, dbp, "1", &out), 0);
    free(out);
    db = open_db(dbp);
    ck_assert_int_eq(q(db, "SELECT count(*) FROM trial WHERE status = 'done'"), 4);
    ck_assert_int_eq(q(db, "SELECT count(*) FROM weights"), 0);
    ck_assert_int_eq(q(db, "SELECT count(*) FROM trial WHERE n_params IS NULL"), 0);
    ck_assert(q(db, "SELECT max(n_params) FROM trial WHERE model = 'mmoe'") == mmoe);
    sqlite3_close(db);
    free(dir);
    free(ini);
    free(dbp);
}
END_TEST

/* `mtlab reproduce` from a repository root: runs every sweep of
 * experiments/mmoe/ at the quick scale, makes every figure and table, and a
 * second run resumes (trains nothing).  The sweeps here are tiny stand-ins
 * with the real experiment names. */
START_TEST(test_reproduce) {
    char *dir = test_tmpdir();
    char sub[512];
    snprintf(sub, sizeof sub, "%s/experiments/mmoe", dir);
    char *cmd = malloc(strlen(sub) + 16);
    sprintf(cmd, "mkdir -p %s", sub);
    ck_assert_int_eq(system(cmd), 0);
    free(cmd);
    const char *common = "[data]\ndim = 10\ntrain = 300\nvalidation = 50\ntest = 50\n"
                         "correlation = %s\n"
                         "[train]\nsteps = %s\neval_every = 10\nbatch = 32\nlr = %s\n"
                         "[model]\nname = %s\ntower_hidden = 4\n%s"
                         "[scale.quick]\nexperiment.repeats = 2\n";
    const struct {
        const char *file, *name, *corr, *steps, *lr, *models;
    } sweeps[] = {
        {"fig2.ini", "mmoe-fig2", "0, 0.5, 1", "0", "0.001", "mmoe"},
        {"fig3.ini", "mmoe-fig3", "0.5, 1", "20", "0.001", "shared_bottom"},
        {"fig4.ini", "mmoe-fig4", "0.5, 0.9, 1", "20", "0.001, 0.01", "shared_bottom, omoe, mmoe"},
        {"fig5.ini", "mmoe-fig5", "0.5, 1", "20", "0.001", "shared_bottom, omoe, mmoe"},
        {"gates.ini", "mmoe-gates", "0, 1", "20", "0.001", "omoe, mmoe"},
        {"baselines.ini", "mmoe-baselines", "0.5, 1", "20", "0.001",
         "shared_bottom, mmoe, l2_constrained"},
    };
    for (size_t i = 0; i < sizeof sweeps / sizeof sweeps[0]; i++) {
        char text[1024];
        int n = snprintf(text, sizeof text, "[experiment]\nname = %s\n", sweeps[i].name);
        /* experts only where a listed model declares them (issue 9) */
        snprintf(text + n, sizeof text - n, common, sweeps[i].corr, sweeps[i].steps, sweeps[i].lr,
                 sweeps[i].models,
                 strstr(sweeps[i].models, "moe") ? "experts = 3\nexpert_hidden = 4\n" : "");
        free(test_write_file(sub, sweeps[i].file, text));
    }
    char *out, *err;
    const char *args[] = {"reproduce", "--quiet", "--no-render", "--jobs", "2", NULL};
    int rc = run_mtlab_in(dir, &out, &err, args);
    ck_assert_msg(rc == 0, "reproduce exited %d: %s", rc, err);
    const char *outputs[] = {"mmoe-fig2.gp",           "mmoe-fig3.gp",       "mmoe-fig4.gp",
                             "mmoe-fig5.gp",           "mmoe-gates.gp",      "mmoe-gates-hist.gp",
                             "mmoe-table.md",          "mmoe-table-fig4.md", "mmoe-baselines.gp",
                             "mmoe-table-baselines.md"};
    for (size_t i = 0; i < sizeof outputs / sizeof outputs[0]; i++) {
        char path[700];
        snprintf(path, sizeof path, "%s/plots/%s", dir, outputs[i]);
        ck_assert_msg(access(path, F_OK) == 0, "%s missing; stdout: %s", path, out);
    }
    free(out);
    free(err);
    rc = run_mtlab_in(dir, &out, &err, args);
    ck_assert_int_eq(rc, 0);
    ck_assert_msg(strstr(out, "this run trained 0 ") && !strstr(out, "this run trained 1"),
                  "the second run trained again: %s", out);
    char *dbp = test_join(dir, "results.db");
    sqlite3 *db = open_db(dbp);
    /* fig2: 3 x 2, fig3: 2 x 2, fig4: 18 x 2, fig5: 6 x 2, gates: 4 x 2, baselines: 6 x 2 */
    ck_assert_int_eq(q(db, "SELECT count(*) FROM trial WHERE status = 'done'"),
                     6 + 4 + 36 + 12 + 8 + 12);
    sqlite3_close(db);
    free(out);
    free(err);
    free(dbp);
    free(dir);
}
END_TEST

/* The dry run names the keys that tell trials apart, also those left out of
 * a config at their default (model.init, model.gate_bias). */
START_TEST(test_dry_run_defaults_left_out) {
    char *dir = test_tmpdir();
    char *ini = test_write_file(dir, "ti.ini",
                                "[experiment]\nname = ti\n[data]\ntrain = 500\n"
                                "[train]\nsteps = 50\n[model]\nname = mmoe\n"
                                "init = glorot, torch\ngate_bias = off, on\n");
    char *out, *err;
    const char *args[] = {"run", ini, "--dry-run", NULL};
    ck_assert_int_eq(run_mtlab(&out, &err, args), 0);
    char *lines[8];
    int n = 0;
    for (char *l = strtok(out, "\n"); l && n < 8; l = strtok(NULL, "\n"))
        lines[n++] = l;
    ck_assert_int_ge(n, 6);
    ck_assert_ptr_null(strstr(lines[2], "model.")); /* glorot, off: the defaults */
    ck_assert_msg(strstr(lines[3], " model.gate_bias=on") && !strstr(lines[3], "model.init"), "%s",
                  lines[3]);
    ck_assert_msg(strstr(lines[4], " model.init=torch") && !strstr(lines[4], "gate_bias"), "%s",
                  lines[4]);
    ck_assert_msg(strstr(lines[5], " model.init=torch model.gate_bias=on"), "%s", lines[5]);
    free(out);
    free(err);
    free(ini);
    free(dir);
}
END_TEST

Suite *run_suite(void) {
    Suite *s = suite_create("run");
    TCase *tc = tcase_create("run");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_grid_records);
    tcase_add_test(tc, test_same_bits_as_train);
    tcase_add_test(tc, test_kill_and_resume);
    tcase_add_test(tc, test_concurrent_runners);
    tcase_add_test(tc, test_divergence_is_failed);
    tcase_add_test(tc, test_bad_input_leaves_store_intact);
    tcase_add_test(tc, test_dry_run);
    tcase_add_test(tc, test_dry_run_defaults_left_out);
    tcase_add_test(tc, test_data_only);
    tcase_add_test(tc, test_n_params_always);
    tcase_add_test(tc, test_reproduce);
    tcase_add_test(tc, test_progress_lines_on_a_pipe);
    suite_add_tcase(s, tc);
    return s;
}
