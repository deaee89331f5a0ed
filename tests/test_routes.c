/* test_routes.c -- the route recovery score and the SNR study's figures
 * (sql/routes/recovery.sql, sql/figures/snr-*.sql, experiments/snr/).
 *
 * Recovery: hand-made stores whose trials are finished through the store API
 * (store_finish, so the recorder's metric model/route_recovery is checked
 * with the views) with routes or gates chosen so every overlap is a simple
 * fraction: the score, the within/between means, the use and utilisation
 * rows are compared with values worked out by hand (exact up to rounding,
 * 1e-12).  Then a real MMoE run on grouped tasks: its stored score equals an
 * independent computation from its gate rows.
 *
 * Figures: a hand-made store with the experiments the snr-* entries read;
 * each script's inline data equals its query's rows, gnuplot accepts it
 * (when installed), and the rows mean what they say (checked with
 * independent SQL). */
#define _GNU_SOURCE
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "plot/plot.h"
#include "store/query.h"
#include "store/store.h"
#include "plotcheck.h"
#include "testutil.h"

#define EXACT 1e-12

/* ---- a hand-made store ------------------------------------------------------ */

static store_t *open_store(const char *path) {
    store_t *s = NULL;
    err_t err = {0};
    ck_assert_msg(store_open(&s, path, 0, &err) == 0, "%s", err.msg);
    return s;
}

static int64_t add_experiment(store_t *s, const char *name) {
    int64_t id = 0;
    err_t err = {0};
    ck_assert_msg(store_experiment(s, name, "", name, 2, false, &id, &err) == 0, "%s", err.msg);
    return id;
}

/* Registers, claims and finishes one trial of `model` with params (a NULL-
 * terminated key, value list) and the given records; returns its id. */
static int64_t finish_trial(store_t *s, int64_t exp, const char *model, int repeat,
                            const char *const *kv, const store_result_t *r) {
    store_kv_t params[16];
    int n = 0;
    char config[1024] = "";
    for (; kv[2 * n]; n++) {
        params[n] = (store_kv_t){kv[2 * n], kv[2 * n + 1]};
        size_t len = strlen(config);
        snprintf(config + len, sizeof config - len, "%s%s=%s", n ? ";" : "", kv[2 * n],
                 kv[2 * n + 1]);
    }
    store_trial_t t = {.repeat = repeat,
                       .model = model,
                       .config = config,
                       .data_seed = 1,
                       .init_seed = 2,
                       .n_params = n,
                       .params = params,
                       .model_params = 100};
    int added;
    err_t err = {0};
    ck_assert_msg(store_add_trials(s, exp, &t, 1, &added, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(added, 1);
    store_claim_t c;
    ck_assert_int_eq(store_claim(s, exp, &c, &err), 1);
    ck_assert_str_eq(c.config, config);
    ck_assert_msg(store_finish(s, c.id, r, &err) == 0, "%s", err.msg);
    return c.id;
}

/* One value of `sql` (a %lld for the trial id) on the store; NAN when no row
 * or NULL. */
static double q(store_t *s, const char *fmt, long long id) {
    char sql[2048];
    snprintf(sql, sizeof sql, fmt, id);
    sqlite3_stmt *st;
    ck_assert_msg(sqlite3_prepare_v2(store_db(s), sql, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql,
                  sqlite3_errmsg(store_db(s)));
    double v = NAN;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        v = sqlite3_column_double(st, 0);
    sqlite3_finalize(st);
    return v;
}

static double score_of(store_t *s, int64_t id) {
    return q(s, "SELECT score FROM v_route_recovery WHERE trial_id = %lld", (long long)id);
}
static double metric_of(store_t *s, int64_t id) {
    return q(s,
             "SELECT value FROM metric WHERE trial_id = %lld AND name = 'model/route_recovery' "
             "AND step = 40",
             (long long)id);
}
static double use_of(store_t *s, int64_t id, int task, int unit) {
    char fmt[256];
    snprintf(fmt, sizeof fmt,
             "SELECT use FROM v_route_use WHERE trial_id = %%lld AND task = %d AND unit = %d", task,
             unit);
    return q(s, fmt, (long long)id);
}

#define ASSERT_NEAR(a, b)                                                                          \
    ck_assert_msg(fabs((a) - (b)) < EXACT, "%s = %.17g, expected %.17g", #a, (double)(a),          \
                  (double)(b))

/* A 2-layer SNR-like route: layer 1 input -> units 0..3 (unit 3 closed),
 * layer 2 unit j -> task t open for the pairs in `open2` (4 x 4, [j][t]). */
static int snr_routes(store_route_t *out, const int open1[4], const int open2[4][4]) {
    int n = 0;
    for (int j = 0; j < 4; j++) {
        out[n++] = (store_route_t){1, 0, j, "z", open1[j] ? 0.5 + 0.1 * j : 0.0};
        out[n++] = (store_route_t){1, 0, j, "p_open", open1[j] ? 0.9 : 0.05};
    }
    for (int j = 0; j < 4; j++)
        for (int t = 0; t < 4; t++) {
            out[n++] = (store_route_t){2, j, t, "z", open2[j][t] ? 1.0 : 0.0};
            out[n++] = (store_route_t){2, j, t, "log_alpha", open2[j][t] ? 2.0 : -5.0};
        }
    return n;
}

/* Groups {t1, t2}, {t3, t4}; t1 uses {0, 1}, t2 {0, 1, 2}, t3 {2} (its
 * edge from the closed unit 3 does not count), t4 {2}.  Within: (t1, t2)
 * 2/3, (t3, t4) 1 -> 5/6; between: (t1, t3) 0, (t1, t4) 0, (t2, t3) 1/3,
 * (t2, t4) 1/3 -> 1/6; score 2/3. */
START_TEST(test_recovery_routes) {
    char *dir = test_tmpdir(), *db = test_join(dir, "r.db");
    store_t *s = open_store(db);
    int64_t exp = add_experiment(s, "hand");
    const int open1[4] = {1, 1, 1, 0};
    const int open2[4][4] = {{1, 1, 0, 0}, {1, 1, 0, 0}, {0, 1, 1, 1}, {0, 0, 1, 0}};
    store_route_t routes[64];
    store_result_t r = {.final_step = 40};
    r.n_routes = snr_routes(routes, open1, open2);
    r.routes = routes;
    const char *kv[] = {"data.groups", "2 2", "model.name", "snr_trans", NULL};
    int64_t id = finish_trial(s, exp, "snr_trans", 0, kv, &r);

    ASSERT_NEAR(score_of(s, id), 2.0 / 3.0);
    ASSERT_NEAR(metric_of(s, id), 2.0 / 3.0); /* the recorder stored the same */
    ASSERT_NEAR(q(s, "SELECT within_groups FROM v_route_recovery WHERE trial_id = %lld", id),
                5.0 / 6.0);
    ASSERT_NEAR(q(s, "SELECT between_groups FROM v_route_recovery WHERE trial_id = %lld", id),
                1.0 / 6.0);
    ck_assert_int_eq((int)q(s, "SELECT n_within FROM v_route_recovery WHERE trial_id = %lld", id),
                     2);
    ck_assert_int_eq((int)q(s, "SELECT n_between FROM v_route_recovery WHERE trial_id = %lld", id),
                     4);
    ck_assert_int_eq((int)q(s, "SELECT count(*) FROM v_route_use WHERE trial_id = %lld", id), 16);
    ASSERT_NEAR(use_of(s, id, 3, 2), 1.0);
    ASSERT_NEAR(use_of(s, id, 3, 3), 0.0); /* unit 3 is not fed */
    ASSERT_NEAR(use_of(s, id, 1, 2), 0.0);
    ASSERT_NEAR(
        q(s, "SELECT utilisation FROM v_route_utilisation WHERE trial_id = %lld AND task = 2", id),
        0.75);
    ASSERT_NEAR(q(s, "SELECT used FROM v_route_utilisation WHERE trial_id = %lld AND task = 4", id),
                1.0);
    ASSERT_NEAR(q(s,
                  "SELECT overlap FROM v_route_overlap WHERE trial_id = %lld AND task_a = 1 AND "
                  "task_b = 2",
                  id),
                2.0 / 3.0);
    ck_assert_int_eq(
        (int)q(s, "SELECT count(*) FROM v_route_use WHERE trial_id = %lld AND source = 'route'",
               id),
        16);

    /* The same routes with every task on every unit: the sharing ignores the
     * groups, score 0; everything closed: 0 too (no task uses anything). */
    const int all1[4] = {1, 1, 1, 1}, none1[4] = {0, 0, 0, 0};
    const int all2[4][4] = {{1, 1, 1, 1}, {1, 1, 1, 1}, {1, 1, 1, 1}, {1, 1, 1, 1}};
    r.n_routes = snr_routes(routes, all1, all2);
    int64_t dense = finish_trial(s, exp, "snr_trans", 1, kv, &r);
    ASSERT_NEAR(score_of(s, dense), 0.0);
    ASSERT_NEAR(q(s, "SELECT within_groups FROM v_route_recovery WHERE trial_id = %lld", dense),
                1.0);
    r.n_routes = snr_routes(routes, none1, all2);
    int64_t closed = finish_trial(s, exp, "snr_trans", 2, kv, &r);
    ASSERT_NEAR(score_of(s, closed), 0.0);
    ASSERT_NEAR(metric_of(s, closed), 0.0);
    ASSERT_NEAR(q(s, "SELECT sum(use) FROM v_route_use WHERE trial_id = %lld", closed), 0.0);

    /* Perfect separation: t1, t2 on {0, 1}; t3, t4 on {2, 3}: score 1. */
    const int sep2[4][4] = {{1, 1, 0, 0}, {1, 1, 0, 0}, {0, 0, 1, 1}, {0, 0, 1, 1}};
    r.n_routes = snr_routes(routes, all1, sep2);
    int64_t sep = finish_trial(s, exp, "snr_trans", 3, kv, &r);
    ASSERT_NEAR(score_of(s, sep), 1.0);

    /* No data.groups: use and utilisation, but no score and no metric;
     * groups "1 3" -> within pairs only in the second group. */
    const char *nogroups[] = {"data.correlation", "0.5", NULL};
    int64_t ng = finish_trial(s, exp, "snr_trans", 4, nogroups, &r);
    ck_assert(isnan(score_of(s, ng)));
    ck_assert(isnan(metric_of(s, ng)));
    ck_assert_int_eq(
        (int)q(s, "SELECT count(*) FROM v_route_utilisation WHERE trial_id = %lld", ng), 4);
    const char *singles[] = {"data.groups", "1 1 1 1", NULL};
    int64_t sg = finish_trial(s, exp, "snr_trans", 5, singles, &r);
    ck_assert(isnan(score_of(s, sg))); /* no pair within a group */
    ck_assert(isnan(metric_of(s, sg)));
    ck_assert_int_eq((int)q(s, "SELECT count(*) FROM metric WHERE trial_id = %lld", sg), 0);
    store_close(s);
    free(db);
    free(dir);
}
END_TEST

/* Three routing layers (input -> 3 units -> 2 units -> 3 tasks), groups "2
 * 1": a task reaches a bottom unit only through open edges of every layer.
 * t1: mid 0 <- {0, 1}; t2: mid 0 and mid 1 <- {2} but the edge 2 -> mid 1 is
 * closed, so t2 uses {0, 1}; t3: mid 1 <- {2} closed -> nothing.  Within
 * (t1, t2) 1; between (t1, t3) 0, (t2, t3) 0; score 1. */
START_TEST(test_recovery_deep) {
    char *dir = test_tmpdir(), *db = test_join(dir, "r.db");
    store_t *s = open_store(db);
    int64_t exp = add_experiment(s, "deep");
    store_route_t routes[] = {
        {1, 0, 0, "z", 1},   {1, 0, 1, "z", 1},   {1, 0, 2, "z", 0.3},                    /* */
        {2, 0, 0, "z", 0.7}, {2, 1, 0, "z", 0.2}, {2, 2, 0, "z", 0},   {2, 0, 1, "z", 0}, /* */
        {2, 1, 1, "z", 0},   {2, 2, 1, "z", 0},                                           /* */
        {3, 0, 0, "z", 1},   {3, 0, 1, "z", 1},   {3, 1, 1, "z", 1},   {3, 1, 2, "z", 1}, /* */
        {3, 0, 2, "z", 0},
    };
    store_result_t r = {
        .final_step = 40, .n_routes = (int)(sizeof routes / sizeof routes[0]), .routes = routes};
    const char *kv[] = {"data.groups", "2 1", NULL};
    int64_t id = finish_trial(s, exp, "snr_trans", 0, kv, &r);
    ASSERT_NEAR(score_of(s, id), 1.0);
    ASSERT_NEAR(use_of(s, id, 2, 1), 1.0);
    ASSERT_NEAR(use_of(s, id, 2, 2), 0.0);
    ASSERT_NEAR(q(s, "SELECT sum(use) FROM v_route_use WHERE trial_id = %lld AND task = 3", id),
                0.0);
    ck_assert_int_eq((int)q(s, "SELECT count(*) FROM v_route_use WHERE trial_id = %lld", id), 9);
    /* MTNAS 'value' edges count the same way; 'query' and 'prob' do not. */
    store_route_t mtnas[] = {
        {2, 0, 0, "value", 1}, {2, 1, 0, "value", 1}, {2, 1, 1, "value", 1},
        {2, 2, 2, "value", 1}, {2, 2, 0, "query", 1}, {2, 0, 2, "prob", 0.9},
    };
    r.n_routes = 6;
    r.routes = mtnas;
    const char *kv3[] = {"data.groups", "2 1", NULL};
    int64_t m = finish_trial(s, exp, "mtnas", 1, kv3, &r);
    /* t1 {0, 1}, t2 {1}, t3 {2}: within 1/2, between 0 -> 1/2. */
    ASSERT_NEAR(score_of(s, m), 0.5);
    ASSERT_NEAR(metric_of(s, m), 0.5);
    store_close(s);
    free(db);
    free(dir);
}
END_TEST

static store_gate_t gate(const char *name, int level, const char *owner, int expert, double mean) {
    return (store_gate_t){.gate = name,
                          .expert = expert,
                          .mean = mean,
                          .level = level,
                          .owner = owner,
                          .kind = "softmax",
                          .hist_hi = 1};
}

/* MMoE: gate masses over 2 experts t1 (.75, .25), t2 (.5, .5), t3 and t4
 * (.25, .75), groups "2 2".  Overlaps: (t1, t2) .75/1.25 = .6, (t3, t4) 1,
 * (t1, t3) = (t1, t4) = .5/1.5 = 1/3, (t2, t3) = (t2, t4) = .75/1.25 = .6:
 * within .8, between (2/3 + 1.2)/4 = 7/15, score 1/3.
 * ML-MMoE, 2 levels x 2 experts: l2/t1 (1, 0), l2/t2 (.5, .5), l2/t3 (0, 1);
 * l1/e1 (.2, .8), l1/e2 (.6, .4): level-1 masses t1 (.2, .8), t2 (.4, .6), t3
 * (.6, .4); groups "2 1": within (t1, t2) .8/1.2 = 2/3, between (t1, t3)
 * .6/1.4 = 3/7 and (t2, t3) 2/3 -> 23/42; score 5/42.  PLE with the same
 * gates: not scored (its gates index per-task experts). */
START_TEST(test_recovery_gates) {
    char *dir = test_tmpdir(), *db = test_join(dir, "g.db");
    store_t *s = open_store(db);
    int64_t exp = add_experiment(s, "gates");
    store_gate_t g[] = {
        gate("t1", 1, "t1", 0, .75), gate("t1", 1, "t1", 1, .25), gate("t2", 1, "t2", 0, .5),
        gate("t2", 1, "t2", 1, .5),  gate("t3", 1, "t3", 0, .25), gate("t3", 1, "t3", 1, .75),
        gate("t4", 1, "t4", 0, .25), gate("t4", 1, "t4", 1, .75),
    };
    store_result_t r = {.final_step = 40, .n_gates = 8, .gates = g};
    const char *kv[] = {"data.groups", "2 2", NULL};
    int64_t id = finish_trial(s, exp, "mmoe", 0, kv, &r);
    ASSERT_NEAR(score_of(s, id), 1.0 / 3.0);
    ASSERT_NEAR(metric_of(s, id), 1.0 / 3.0);
    ASSERT_NEAR(q(s, "SELECT between_groups FROM v_route_recovery WHERE trial_id = %lld", id),
                7.0 / 15.0);
    ASSERT_NEAR(use_of(s, id, 1, 0), .75);
    ck_assert_int_eq(
        (int)q(s, "SELECT count(*) FROM v_route_use WHERE trial_id = %lld AND source = 'gate'", id),
        8);

    store_gate_t ml[] = {
        gate("l2/t1", 2, "t1", 0, 1),  gate("l2/t1", 2, "t1", 1, 0),  gate("l2/t2", 2, "t2", 0, .5),
        gate("l2/t2", 2, "t2", 1, .5), gate("l2/t3", 2, "t3", 0, 0),  gate("l2/t3", 2, "t3", 1, 1),
        gate("l1/e1", 1, "e1", 0, .2), gate("l1/e1", 1, "e1", 1, .8), gate("l1/e2", 1, "e2", 0, .6),
        gate("l1/e2", 1, "e2", 1, .4),
    };
    store_result_t rm = {.final_step = 40, .n_gates = 10, .gates = ml};
    const char *kv3[] = {"data.groups", "2 1", NULL};
    int64_t mid = finish_trial(s, exp, "ml_mmoe", 1, kv3, &rm);
    ASSERT_NEAR(use_of(s, mid, 2, 0), .4);
    ASSERT_NEAR(use_of(s, mid, 3, 1), .4);
    ASSERT_NEAR(score_of(s, mid), 5.0 / 42.0);
    ASSERT_NEAR(metric_of(s, mid), 5.0 / 42.0);
    ASSERT_NEAR(q(s, "SELECT sum(utilisation) FROM v_route_utilisation WHERE trial_id = %lld", mid),
                1.5); /* each task's masses sum to 1, over 2 experts */

    int64_t ple = finish_trial(s, exp, "ple", 2, kv3, &rm);
    ck_assert(isnan(score_of(s, ple)));
    ck_assert(isnan(metric_of(s, ple)));
    ck_assert_int_eq((int)q(s, "SELECT count(*) FROM v_route_use WHERE trial_id = %lld", ple), 0);
    store_close(s);
    free(db);
    free(dir);
}
END_TEST

/* The recorder's score is written in the finishing transaction: every
 * write of store_finish made to fail in turn (the test hook) leaves the
 * trial running with no metric and no gate row; the retry that succeeds
 * writes the score. */
START_TEST(test_recovery_write_fails) {
    char *dir = test_tmpdir(), *db = test_join(dir, "f.db");
    store_t *s = open_store(db);
    int64_t exp = add_experiment(s, "fail");
    store_kv_t params[] = {{"data.groups", "2 2"}};
    store_trial_t t = {
        .model = "mmoe", .config = "x", .n_params = 1, .params = params, .model_params = 10};
    int added;
    err_t err = {0};
    ck_assert_int_eq(store_add_trials(s, exp, &t, 1, &added, &err), 0);
    store_claim_t c;
    ck_assert_int_eq(store_claim(s, exp, &c, &err), 1);
    store_gate_t g[8];
    static const char *const owner[4] = {"t1", "t2", "t3", "t4"};
    static const double w[4] = {.75, .5, .25, .25};
    for (int k = 0; k < 4; k++) {
        g[2 * k] = gate(owner[k], 1, owner[k], 0, w[k]);
        g[2 * k + 1] = gate(owner[k], 1, owner[k], 1, 1 - w[k]);
    }
    store_result_t r = {.final_step = 40, .n_gates = 8, .gates = g};
    int failures = 0;
    for (long n_ok = 0;; n_ok++) {
        store_test_fail_writes(s, n_ok);
        int rc = store_finish(s, c.id, &r, &err);
        store_test_fail_writes(s, -1);
        if (rc == 0) break;
        failures++;
        ck_assert_msg(strstr(err.msg, "injected"), "%s", err.msg);
        ck_assert_int_eq((int)q(s, "SELECT count(*) FROM metric WHERE trial_id = %lld", c.id), 0);
        ck_assert_int_eq((int)q(s, "SELECT count(*) FROM gate WHERE trial_id = %lld", c.id), 0);
        ck_assert_int_eq((int)q(s, "SELECT status = 'running' FROM trial WHERE id = %lld", c.id),
                         1);
    }
    /* the 8 gate rows (no histogram bins), the trial update, the score, commit */
    ck_assert_int_eq(failures, 8 + 1 + 1 + 1);
    ASSERT_NEAR(metric_of(s, c.id), 1.0 / 3.0);
    store_close(s);
    free(db);
    free(dir);
}
END_TEST

/* Group parsing: sizes with extra blanks or commas; tasks numbered from 1. */
START_TEST(test_task_groups) {
    char *dir = test_tmpdir(), *db = test_join(dir, "p.db");
    store_t *s = open_store(db);
    int64_t exp = add_experiment(s, "groups");
    store_result_t r = {.final_step = 40};
    const char *kv[] = {"data.groups", " 2  1,3 ", NULL};
    int64_t id = finish_trial(s, exp, "mmoe", 0, kv, &r);
    ck_assert_int_eq((int)q(s, "SELECT count(*) FROM v_route_task_group WHERE trial_id = %lld", id),
                     6);
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT group_concat(grp, '') = '112333' FROM (SELECT grp FROM v_route_task_group "
             "WHERE trial_id = %lld ORDER BY task)",
             (long long)id);
    ck_assert_int_eq((int)test_query(db, sql), 1);
    store_close(s);
    free(db);
    free(dir);
}
END_TEST

/* A real MMoE run on grouped tasks: each trial's stored score equals the
 * score computed here from its gate rows (weighted Jaccard of the gate
 * means, within minus between groups "2 2"). */
START_TEST(test_recovery_mmoe_run) {
    char *dir = test_tmpdir();
    char *ini = test_write_file(dir, "g.ini",
                                "[experiment]\nname = grouped\nrepeats = 2\nseed = 7\n"
                                "[data]\ntasks = 4\ngroups = 2 2\nwithin = 0.9\nbetween = 0\n"
                                "dim = 8\ntrain = 300\nvalidation = 50\ntest = 100\n"
                                "[train]\nsteps = 60\neval_every = 30\nbatch = 32\nlr = 0.01\n"
                                "[model]\nname = mmoe, ml_mmoe\nexperts = 3\nexpert_hidden = 4\n"
                                "tower_hidden = 4\n");
    char *db = test_join(dir, "g.db");
    const char *args[] = {"run", ini, "--db", db, "--jobs", "2", "--quiet", NULL};
    free(test_mtlab_ok(0, NULL, args));
    store_t *s = open_store(db);
    sqlite3_stmt *st;
    ck_assert_int_eq(sqlite3_prepare_v2(store_db(s),
                                        "SELECT t.id, t.model, m.value FROM trial t JOIN metric m "
                                        "ON m.trial_id = t.id AND m.name = 'model/route_recovery' "
                                        "AND m.step = t.final_step ORDER BY t.id",
                                        -1, &st, NULL),
                     SQLITE_OK);
    int n = 0, n_ml = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        long long id = sqlite3_column_int64(st, 0);
        const char *model = (const char *)sqlite3_column_text(st, 1);
        double stored = sqlite3_column_double(st, 2);
        n++;
        if (strcmp(model, "ml_mmoe") == 0) {
            n_ml++;
            ASSERT_NEAR(stored, score_of(s, id));
            continue;
        }
        /* mmoe: use[t][e] = mean of gate t<t+1> at expert e. */
        double use[4][3];
        for (int t = 0; t < 4; t++)
            for (int e = 0; e < 3; e++) {
                char fmt[200];
                snprintf(fmt, sizeof fmt,
                         "SELECT mean FROM gate WHERE trial_id = %%lld AND owner = 't%d' AND "
                         "expert = %d",
                         t + 1, e);
                use[t][e] = q(s, fmt, id);
                ck_assert(isfinite(use[t][e]));
            }
        double within = 0, between = 0;
        int nw = 0, nb = 0;
        for (int a = 0; a < 4; a++)
            for (int b = a + 1; b < 4; b++) {
                double lo = 0, hi = 0;
                for (int e = 0; e < 3; e++) {
                    lo += fmin(use[a][e], use[b][e]);
                    hi += fmax(use[a][e], use[b][e]);
                }
                if (a / 2 == b / 2) {
                    within += lo / hi;
                    nw++;
                } else {
                    between += lo / hi;
                    nb++;
                }
            }
        ck_assert_int_eq(nw, 2);
        ck_assert_int_eq(nb, 4);
        ck_assert_msg(fabs(stored - (within / nw - between / nb)) < 1e-9, "trial %lld: %g vs %g",
                      id, stored, within / nw - between / nb);
        ck_assert(stored > -1 && stored < 1);
    }
    sqlite3_finalize(st);
    ck_assert_int_eq(n, 4);
    ck_assert_int_eq(n_ml, 2);
    store_close(s);
    free(db);
    free(ini);
    free(dir);
}
END_TEST

/* ---- the figures ------------------------------------------------------------ */

/* The connections of a 2-layer route (input -> 4 units -> 4 tasks): 'z' 1
 * and 'p_open' .9 where open, 0 and .05 where closed. */
static int route_rows(store_route_t *out, const int open1[4], const int open2[4][4]) {
    int n = 0;
    for (int j = 0; j < 4; j++) {
        out[n++] = (store_route_t){1, 0, j, "z", open1[j] ? 1.0 : 0.0};
        out[n++] = (store_route_t){1, 0, j, "p_open", open1[j] ? 0.9 : 0.05};
    }
    for (int j = 0; j < 4; j++)
        for (int t = 0; t < 4; t++) {
            out[n++] = (store_route_t){2, j, t, "z", open2[j][t] ? 1.0 : 0.0};
            out[n++] = (store_route_t){2, j, t, "p_open", open2[j][t] ? 0.9 : 0.05};
        }
    return n;
}

static const int ALL1[4] = {1, 1, 1, 1}, NONE1[4] = {0, 0, 0, 0};
static const int ALL2[4][4] = {{1, 1, 1, 1}, {1, 1, 1, 1}, {1, 1, 1, 1}, {1, 1, 1, 1}};
static const int SEP2[4][4] = {{1, 1, 0, 0}, {1, 1, 0, 0}, {0, 0, 1, 1}, {0, 0, 1, 1}};
static const int NONE2[4][4] = {{0}};

/* A finished trial with routes (or MMoE gates when `gates`), a test loss and
 * a serving size at step 40. */
static void figure_trial(store_t *s, int64_t exp, const char *model, int repeat, const char *lambda,
                         const char *between, const int *open1, const int (*open2)[4], bool gates,
                         double loss, double serving) {
    store_route_t routes[64];
    store_gate_t g[8];
    store_metric_t m[2] = {{"test/loss/total", 40, loss}, {"model/serving_params", 40, serving}};
    store_result_t r = {.final_step = 40, .n_metrics = serving > 0 ? 2 : 1, .metrics = m};
    store_route_step_t steps[128];
    if (open1) {
        r.n_routes = route_rows(routes, open1, open2);
        r.routes = routes;
        /* route_step: every route at step 20 with p_open .5, and the final
         * ones at step 40 */
        for (int i = 0; i < r.n_routes; i++) {
            const store_route_t *x = &routes[i];
            bool p = strcmp(x->kind, "p_open") == 0;
            steps[2 * i] =
                (store_route_step_t){20, x->layer, x->src, x->dst, x->kind, p ? 0.5 : x->value};
            steps[2 * i + 1] =
                (store_route_step_t){40, x->layer, x->src, x->dst, x->kind, x->value};
        }
        r.n_route_steps = 2 * r.n_routes;
        r.route_steps = steps;
    }
    if (gates) { /* the masses of test_recovery_gates: score 1/3 */
        static const char *const owner[4] = {"t1", "t2", "t3", "t4"};
        static const double w[4] = {.75, .5, .25, .25};
        for (int t = 0; t < 4; t++) {
            g[2 * t] = gate(owner[t], 1, owner[t], 0, w[t]);
            g[2 * t + 1] = gate(owner[t], 1, owner[t], 1, 1 - w[t]);
        }
        r.n_gates = 8;
        r.gates = g;
    }
    const char *kv[12] = {"data.groups", "2 2", "model.name", model};
    int n = 4;
    if (lambda) kv[n++] = "model.l0_lambda", kv[n++] = lambda;
    if (between) kv[n++] = "data.between", kv[n++] = between;
    kv[n] = NULL;
    finish_trial(s, exp, model, repeat, kv, &r);
}

static char fig_dir[256], fig_db[300];

/* Once for the tcase: the experiments the snr-* entries read, by hand.
 *   snr-lambda:   snr_trans and snr_aver at λ 0 (all open), 1e-4 (grouped:
 *                 t1, t2 on units 0-1, t3, t4 on 2-3), 0.01 (all closed);
 *                 2 repeats each, the same routes.
 *   snr-size:     snr_trans at λ 1e-4 with two serving sizes (losses .5,
 *                 .3), shared_bottom (n_params from the trial: 100).
 *   snr-recovery: snr_trans grouped (score 1) and mmoe gates (1/3) at
 *                 between 0; snr_trans dense (0) at between 0.5. */
static void make_figure_store(void) {
    snprintf(fig_dir, sizeof fig_dir, "/tmp/mtlab-routes-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(fig_dir));
    snprintf(fig_db, sizeof fig_db, "%s/snr.db", fig_dir);
    store_t *s = open_store(fig_db);
    int64_t lam = add_experiment(s, "snr-lambda");
    const char *const models[] = {"snr_trans", "snr_aver"};
    for (int m = 0; m < 2; m++)
        for (int rep = 0; rep < 2; rep++) {
            figure_trial(s, lam, models[m], rep, "0", NULL, ALL1, ALL2, false, 0.4, 2000);
            figure_trial(s, lam, models[m], rep, "0.0001", NULL, ALL1, SEP2, false, 0.35, 1200);
            figure_trial(s, lam, models[m], rep, "0.01", NULL, NONE1, NONE2, false, 1.0, 50);
        }
    int64_t size = add_experiment(s, "snr-size");
    figure_trial(s, size, "snr_trans", 0, "0.0001", "0", ALL1, SEP2, false, 0.5, 800);
    figure_trial(s, size, "snr_trans", 1, "0.0001", "0", ALL1, SEP2, false, 0.7, 1000);
    figure_trial(s, size, "shared_bottom", 0, NULL, "0", NULL, NULL, false, 0.6, 0);
    int64_t rec = add_experiment(s, "snr-recovery");
    for (int rep = 0; rep < 2; rep++) {
        figure_trial(s, rec, "snr_trans", rep, "0.001", "0", ALL1, SEP2, false, 0.3, 900);
        figure_trial(s, rec, "mmoe", rep, NULL, "0", NULL, NULL, true, 0.3, 0);
        figure_trial(s, rec, "snr_trans", rep, "0.001", "0.5", ALL1, ALL2, false, 0.3, 2000);
    }
    store_close(s);
}

static void remove_figure_store(void) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fig_dir);
    if (fig_dir[0] && system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", fig_dir);
}




static store_table_t *fig_rows(const char *name) {
    store_t *s;
    err_t err = {0};
    ck_assert_msg(store_open(&s, fig_db, STORE_READONLY, &err) == 0, "%s", err.msg);
    store_table_t *t = NULL;
    ck_assert_msg(plot_query(s, plot_find(name), NULL, &t, &err) == 0, "%s: %s", name, err.msg);
    store_close(s);
    return t;
}

/* The cell of row r in column `name` as a number (NAN for NULL). */
static double cell(const store_table_t *t, int r, const char *name) {
    for (int c = 0; c < t->n_cols; c++)
        if (strcmp(t->names[c], name) == 0) {
            const char *v = store_table_cell(t, r, c);
            return v ? strtod(v, NULL) : NAN;
        }
    ck_abort_msg("no column %s", name);
    return NAN;
}
static const char *text(const store_table_t *t, int r, const char *name) {
    for (int c = 0; c < t->n_cols; c++)
        if (strcmp(t->names[c], name) == 0) return store_table_cell(t, r, c);
    ck_abort_msg("no column %s", name);
    return NULL;
}

/* Every snr-* entry: its file, the script's data = its query's rows, and
 * gnuplot accepts the script; tables: one markdown line a row. */
START_TEST(test_snr_entries) {
    int n, seen = 0;
    const plot_figure_t *reg = plot_registry(&n);
    for (int i = 0; i < n; i++) {
        if (strncmp(reg[i].name, "snr-", 4) != 0) continue;
        seen++;
        char *dir = test_tmpdir();
        plot_output_t out;
        err_t err = {0};
        ck_assert_msg(plot_make(fig_db, reg[i].name, dir, NULL, false, &out, &err) == 0, "%s: %s",
                      reg[i].name, err.msg);
        store_table_t *t = fig_rows(reg[i].name);
        ck_assert_msg(t->n_rows > 0, "%s: no rows", reg[i].name);
        ck_assert_int_eq(out.n_rows, t->n_rows);
        if (reg[i].kind == PLOT_FIGURE) {
            plotcheck_script_data(out.script, t);
            plotcheck_gnuplot_runs(out.script);
        } else {
            char *md = test_read_file(out.table);
            ck_assert_int_eq(test_count_lines(md), t->n_rows + 2);
            free(md);
        }
        store_table_free(t);
        free(dir);
    }
    ck_assert_int_eq(seen, 7);
}
END_TEST

/* What the rows say, against the store made by hand. */
START_TEST(test_snr_values) {
    /* Sparsity: per model, 2 measures x 3 λ; at λ 1e-4, 12 of 20 connections
     * open, expected L0 (12 x .9 + 8 x .05) / 20 = .56; λ = 0 drawn at 1e-5. */
    store_table_t *t = fig_rows("snr-sparsity");
    ck_assert_int_eq(t->n_rows, 12);
    int checked = 0;
    for (int r = 0; r < t->n_rows; r++) {
        ck_assert_int_eq((int)cell(t, r, "n"), 2);
        ck_assert_int_eq((int)cell(t, r, "conn"), 20);
        ASSERT_NEAR(cell(t, r, "sd"), 0.0);
        double lambda = cell(t, r, "lambda"), mean = cell(t, r, "mean");
        bool open = strcmp(text(t, r, "measure"), "open connections") == 0;
        if (lambda == 0) {
            ASSERT_NEAR(cell(t, r, "x"), 1e-5);
            ASSERT_NEAR(mean, open ? 1.0 : 0.9);
        } else if (lambda == 1e-4) {
            ASSERT_NEAR(mean, open ? 0.6 : 0.56);
            checked++;
        } else {
            ASSERT_NEAR(mean, open ? 0.0 : 0.05);
        }
    }
    ck_assert_int_eq(checked, 4);
    store_table_free(t);

    /* Expected L0 over the steps: .5 at step 20, the final values at 40. */
    t = fig_rows("snr-l0-steps");
    ck_assert_int_eq(t->n_rows, 2 * 3 * 2);
    for (int r = 0; r < t->n_rows; r++) {
        double lambda = cell(t, r, "lambda");
        ck_assert_int_eq((int)cell(t, r, "n"), 2);
        ASSERT_NEAR(cell(t, r, "mean"), cell(t, r, "step") == 20 ? 0.5
                                        : lambda == 0            ? 0.9
                                        : lambda == 1e-4         ? 0.56
                                                                 : 0.05);
    }
    store_table_free(t);

    /* Utilisation: 2 of 4 bottom units per task at λ 1e-4, all at 0, none
     * at 0.01. */
    t = fig_rows("snr-utilisation");
    ck_assert_int_eq(t->n_rows, 2 * 3 * 4);
    for (int r = 0; r < t->n_rows; r++) {
        double lambda = cell(t, r, "lambda");
        ASSERT_NEAR(cell(t, r, "mean"), lambda == 0 ? 1.0 : lambda == 1e-4 ? 0.5 : 0.0);
    }
    store_table_free(t);

    /* Recovery vs between: snr_trans 1 at 0 and 0 at 0.5; mmoe 1/3 at 0. */
    t = fig_rows("snr-recovery");
    ck_assert_int_eq(t->n_rows, 3);
    ck_assert_str_eq(text(t, 0, "model"), "snr_trans");
    ASSERT_NEAR(cell(t, 0, "between"), 0.0);
    ASSERT_NEAR(cell(t, 0, "mean"), 1.0);
    ASSERT_NEAR(cell(t, 1, "between"), 0.5);
    ASSERT_NEAR(cell(t, 1, "mean"), 0.0);
    ck_assert_str_eq(text(t, 2, "model"), "mmoe");
    ASSERT_NEAR(cell(t, 2, "mean"), 1.0 / 3.0);
    ck_assert_int_eq((int)cell(t, 2, "n"), 2);
    store_table_free(t);

    /* Size: shared_bottom serves its n_params; snr_trans its serving metric,
     * each config a point (mean over its repeats). */
    t = fig_rows("snr-size");
    ck_assert_int_eq(t->n_rows, 2);
    ck_assert_str_eq(text(t, 0, "model"), "shared_bottom");
    ASSERT_NEAR(cell(t, 0, "serving"), 100);
    ASSERT_NEAR(cell(t, 0, "mean"), 0.6);
    ASSERT_NEAR(cell(t, 1, "serving"), 900);
    ASSERT_NEAR(cell(t, 1, "mean"), 0.6);
    ASSERT_NEAR(cell(t, 1, "sd"), sqrt(0.02));
    store_table_free(t);

    /* Routes: the repeat-0 snr_trans trials of snr-recovery (mmoe has no
     * routes), 20 edges each; node coordinates centred on their level. */
    t = fig_rows("snr-routes");
    ck_assert_int_eq(t->n_rows, 40);
    for (int r = 0; r < t->n_rows; r++) {
        int layer = (int)cell(t, r, "layer"), src = (int)cell(t, r, "src"),
            dst = (int)cell(t, r, "dst");
        ASSERT_NEAR(cell(t, r, "x1"), layer - 1);
        ASSERT_NEAR(cell(t, r, "y1"), layer == 1 ? 0.0 : src - 1.5);
        ASSERT_NEAR(cell(t, r, "y2"), dst - 1.5);
        char want_src[16], want_dst[16];
        snprintf(want_src, sizeof want_src, layer == 1 ? "x" : "s1.%d", src + 1);
        snprintf(want_dst, sizeof want_dst, layer == 1 ? "s1.%d" : "t%d", dst + 1);
        ck_assert_str_eq(text(t, r, "src_label"), want_src);
        ck_assert_str_eq(text(t, r, "dst_label"), want_dst);
        ASSERT_NEAR(cell(t, r, "p_open"), cell(t, r, "z") > 0 ? 0.9 : 0.05);
    }
    ASSERT_NEAR(cell(t, 0, "between"), 0.0);
    ASSERT_NEAR(cell(t, 39, "between"), 0.5);
    store_table_free(t);

    /* The table: λ 1e-4 of snr_trans: 20 connections, l0 11.2, 12 open,
     * serving 1200, loss .35, recovery 1. */
    t = fig_rows("snr-table");
    ck_assert_int_eq(t->n_rows, 6);
    int r = 0;
    while (r < t->n_rows &&
           !(strcmp(text(t, r, "model"), "snr_trans") == 0 && cell(t, r, "lambda") == 1e-4))
        r++;
    ck_assert_int_lt(r, t->n_rows);
    ASSERT_NEAR(cell(t, r, "conn"), 20);
    ASSERT_NEAR(cell(t, r, "l0"), 11.2);
    ASSERT_NEAR(cell(t, r, "open"), 12);
    ASSERT_NEAR(cell(t, r, "serving"), 1200);
    ASSERT_NEAR(cell(t, r, "loss"), 0.35);
    ASSERT_NEAR(cell(t, r, "recovery"), 1.0);
    ck_assert_int_eq((int)cell(t, r, "failed"), 0);
    store_table_free(t);
}
END_TEST

/* ---- the study -------------------------------------------------------------- */

/* `mtlab reproduce --paper snr --scale tiny --no-render` on a copy of
 * experiments/snr/ (the repository's files, read from the working directory
 * the tests run in): every sweep runs, every snr-* figure and table is
 * written, the SNR trials record their routes and serving size, and every
 * trial with routes or scored gates has its recovery metric. */
START_TEST(test_reproduce_snr_tiny) {
    static const char *const files[] = {"lambda.ini", "recovery.ini", "size.ini"};
    char *dir = test_tmpdir();
    char sub[600];
    snprintf(sub, sizeof sub, "%s/experiments/snr", dir);
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", sub);
    ck_assert_int_eq(system(cmd), 0);
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char src[128];
        snprintf(src, sizeof src, "experiments/snr/%s", files[i]);
        char *text = test_read_file(src);
        free(test_write_file(sub, files[i], text));
        free(text);
    }
    const char *args[] = {"reproduce",   "--paper", "snr",    "--scale", "tiny",
                          "--no-render", "--quiet", "--jobs", "2",       NULL};
    char *out, *err;
    int rc = run_mtlab_in(dir, &out, &err, args);
    ck_assert_msg(rc == 0, "reproduce exited %d: %s\n%s", rc, err, out);
    int n;
    const plot_figure_t *reg = plot_registry(&n);
    for (int i = 0; i < n; i++) {
        if (strncmp(reg[i].name, "snr-", 4) != 0) continue;
        char path[900];
        snprintf(path, sizeof path, "%s/plots/tiny/%s.%s", dir, reg[i].name,
                 reg[i].kind == PLOT_FIGURE ? "gp" : "md");
        struct stat sb;
        ck_assert_msg(stat(path, &sb) == 0 && sb.st_size > 0, "%s missing; stdout: %s", path, out);
    }
    char *db = test_join(dir, "results-tiny.db");
    /* lambda: 2 models x 2 λ; recovery: (2 SNR models x 2 depths + MMoE +
     * ML-MMoE) x 2 between. */
    ck_assert_int_eq((int)test_query(db, "SELECT count(*) FROM trial WHERE status <> 'done'"), 0);
    ck_assert_int_eq((int)test_query(db, "SELECT count(*) FROM trial t JOIN experiment e ON "
                                         "e.id = t.experiment_id WHERE e.name = 'snr-lambda'"),
                     4);
    ck_assert_int_eq((int)test_query(db, "SELECT count(*) FROM trial t JOIN experiment e ON "
                                         "e.id = t.experiment_id WHERE e.name = 'snr-recovery'"),
                     12);
    /* every SNR trial: routes of each kind, a serving-size curve, a score */
    ck_assert_int_eq((int)test_query(db, "SELECT count(*) FROM trial t WHERE t.model LIKE 'snr%' "
                                         "AND (NOT EXISTS (SELECT 1 FROM route r WHERE r.trial_id "
                                         "= t.id AND r.kind = 'p_open') OR NOT EXISTS (SELECT 1 "
                                         "FROM metric m WHERE m.trial_id = t.id AND m.name = "
                                         "'model/serving_params'))"),
                     0);
    ck_assert_int_eq((int)test_query(db, "SELECT count(*) FROM trial t WHERE t.model IN "
                                         "('snr_trans', 'snr_aver', 'mmoe', 'ml_mmoe') AND NOT "
                                         "EXISTS (SELECT 1 FROM metric m WHERE m.trial_id = t.id "
                                         "AND m.name = 'model/route_recovery' AND m.step = "
                                         "t.final_step)"),
                     0);
    ck_assert_int_eq((int)test_query(db, "SELECT count(*) FROM trial t JOIN metric m ON "
                                         "m.trial_id = t.id AND m.name = 'model/route_recovery' "
                                         "JOIN v_route_recovery r ON r.trial_id = t.id WHERE "
                                         "m.value <> r.score"),
                     0);
    free(db);
    free(out);
    free(err);
    free(dir);
}
END_TEST

Suite *routes_suite(void) {
    Suite *s = suite_create("routes");
    TCase *tc = tcase_create("recovery");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_recovery_routes);
    tcase_add_test(tc, test_recovery_deep);
    tcase_add_test(tc, test_recovery_gates);
    tcase_add_test(tc, test_task_groups);
    tcase_add_test(tc, test_recovery_write_fails);
    tcase_add_test(tc, test_recovery_mmoe_run);
    suite_add_tcase(s, tc);
    TCase *fig = tcase_create("figures");
    tcase_add_unchecked_fixture(fig, make_figure_store, remove_figure_store);
    tcase_set_timeout(fig, 60);
    tcase_add_test(fig, test_snr_entries);
    tcase_add_test(fig, test_snr_values);
    suite_add_tcase(s, fig);
    TCase *study = tcase_create("study");
    tcase_set_timeout(study, 120);
    tcase_add_test(study, test_reproduce_snr_tiny);
    suite_add_tcase(s, study);
    return s;
}
