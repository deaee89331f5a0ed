/* test_snr.c -- suite "snr": route recording (the routes and serving_params
 * hooks of models/model.h, the route_step table, the model/serving_params
 * curve) and the SNR families (src/models/snr.c, src/nn/hard_concrete.c). */
#include "testutil.h"

#include "core/err.h"
#include "core/mem.h"
#include "models/model.h"
#include "store/store.h"
#include "sweep/routes.h"
#include "train/metrics.h"
#include "train/trial.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- route plumbing, with a family of the test's own ---- */

/* "routetoy": pred = x W (W [d, T], a weight), and three routes whose values
 * the test can predict exactly at every evaluation:
 *   layer 1, src 0, dst i, kind "z":         value = (training passes so far) + i / 4
 *   layer 2, src i, dst 0, kind "log_alpha": value = W[0, 0] (the current parameter)
 * and a serving size of 1000 + (training passes so far).  The pass counter
 * lives in the family's state (workspace). */
enum { TOY_ROUTES = 3 };

typedef struct {
    long train_passes;
} routetoy_t;

static int routetoy_sizes(const model_config_t *cfg, model_sizes_t *out, err_t *err) {
    (void)err;
    out->n_params = out->n_weights = (size_t)cfg->input_dim * cfg->tasks;
    out->n_tensors = 1;
    out->state_bytes = sizeof(routetoy_t);
    out->n_routes = 2 * TOY_ROUTES;
    return 0;
}

static int routetoy_build(model_t *m, err_t *err) {
    if (model_declare(m, "W", m->cfg.input_dim, m->cfg.tasks, INIT_WEIGHT, TENSOR_WEIGHT) < 0)
        return err_set(err, ERR_FAIL, "out of memory");
    m->impl = model_work(m, sizeof(routetoy_t), err);
    return m->impl ? 0 : -1;
}

static void routetoy_forward(model_t *m, const real *x, int B, real *pred, model_mode_t mode) {
    const int d = m->cfg.input_dim, T = m->cfg.tasks;
    const real *W = m->params;
    for (int b = 0; b < B; b++)
        for (int k = 0; k < T; k++) {
            double sum = 0;
            for (int i = 0; i < d; i++)
                sum += x[(size_t)b * d + i] * W[(size_t)i * T + k];
            pred[(size_t)b * T + k] = (real)sum;
        }
    if (mode == MODEL_TRAIN) ((routetoy_t *)m->impl)->train_passes++;
}

static void routetoy_backward(model_t *m, const real *x, int B, const real *dpred) {
    const int d = m->cfg.input_dim, T = m->cfg.tasks;
    for (int b = 0; b < B; b++)
        for (int k = 0; k < T; k++)
            for (int i = 0; i < d; i++)
                m->grads[(size_t)i * T + k] += x[(size_t)b * d + i] * dpred[(size_t)b * T + k];
}

static int routetoy_routes(const model_t *m, model_route_t *out) {
    if (!out) return 2 * TOY_ROUTES;
    const long passes = ((const routetoy_t *)m->impl)->train_passes;
    for (int i = 0; i < TOY_ROUTES; i++) {
        out[i] = (model_route_t){1, 0, i, "z", (double)passes + i / 4.0};
        out[TOY_ROUTES + i] = (model_route_t){2, i, 0, "log_alpha", m->params[0]};
    }
    return 2 * TOY_ROUTES;
}

static size_t routetoy_serving(const model_t *m) {
    return 1000 + (size_t)((const routetoy_t *)m->impl)->train_passes;
}

static const model_ops_t routetoy_ops = {
    .name = "routetoy",
    .summary = "a linear model declaring routes (tests only)",
    .sizes = routetoy_sizes,
    .build = routetoy_build,
    .forward = routetoy_forward,
    .backward = routetoy_backward,
    .routes = routetoy_routes,
    .serving_params = routetoy_serving,
};

/* The same family without the hooks. */
static int plaintoy_sizes(const model_config_t *cfg, model_sizes_t *out, err_t *err) {
    int rc = routetoy_sizes(cfg, out, err);
    out->n_routes = 0;
    return rc;
}

static const model_ops_t plaintoy_ops = {
    .name = "plaintoy",
    .summary = "a linear model without routes (tests only)",
    .sizes = plaintoy_sizes,
    .build = routetoy_build,
    .forward = routetoy_forward,
    .backward = routetoy_backward,
};

/* What the test's callback saw at each evaluation: the step and W[0, 0]. */
#define TOY_MAX_EVALS 16
typedef struct {
    const trial_result_t *res;
    int n;
    int step[TOY_MAX_EVALS];
    double w00[TOY_MAX_EVALS];
} seen_t;

static void seen_eval(void *ctx, const train_eval_t *ev) {
    seen_t *s = ctx;
    ck_assert_int_lt(s->n, TOY_MAX_EVALS);
    s->step[s->n] = ev->step;
    s->w00[s->n++] = s->res->model->params[0];
}

/* 25 steps evaluated every 10: evaluations at steps 10, 20 and 25. */
static void toy_spec(trial_spec_t *spec) {
    trial_spec_default(spec);
    spec->data.dim = 5;
    spec->data.n_train = 200;
    spec->data.n_val = 50;
    spec->data.n_test = 50;
    spec->train.steps = 25;
    spec->train.eval_every = 10;
    spec->train.batch = 16;
    model_config_default(&spec->model_cfg, &routetoy_ops);
}

static void run_toy(const model_ops_t *ops, trial_result_t *res, seen_t *seen) {
    trial_spec_t spec;
    toy_spec(&spec);
    trial_data_cache_t cache = {0};
    err_t err = {0};
    memset(seen, 0, sizeof *seen);
    seen->res = res;
    int rc = trial_run_family(&spec, ops, &cache, seen_eval, seen, res, &err);
    trial_data_cache_free(&cache);
    ck_assert_msg(rc == 0, "%s", err.msg);
    ck_assert_int_eq(res->n_evals, 3);
    ck_assert_int_eq(seen->n, 3);
}

/* The trial collects every evaluation's routes (taken at that evaluation's
 * parameters) and the serving size as a metric of the evaluation. */
START_TEST(test_routes_per_eval) {
    trial_result_t res;
    seen_t seen;
    run_toy(&routetoy_ops, &res, &seen);
    static const int steps[] = {10, 20, 25};
    ck_assert_int_eq(res.route_count, 2 * TOY_ROUTES);
    for (int e = 0; e < 3; e++) {
        ck_assert_int_eq(res.evals[e].step, steps[e]);
        ck_assert_int_eq(seen.step[e], steps[e]);
        const model_route_t *r = res.routes + (size_t)e * res.route_count;
        for (int i = 0; i < TOY_ROUTES; i++) {
            ck_assert_int_eq(r[i].layer, 1);
            ck_assert_int_eq(r[i].src, 0);
            ck_assert_int_eq(r[i].dst, i);
            ck_assert_str_eq(r[i].kind, "z");
            ck_assert_double_eq(r[i].value, steps[e] + i / 4.0);
            ck_assert_int_eq(r[TOY_ROUTES + i].layer, 2);
            ck_assert_int_eq(r[TOY_ROUTES + i].src, i);
            ck_assert_str_eq(r[TOY_ROUTES + i].kind, "log_alpha");
            ck_assert_double_eq(r[TOY_ROUTES + i].value, seen.w00[e]);
        }
        /* The serving size: a metric of every evaluation, after the others. */
        ck_assert_int_eq(res.evals[e].has_serving, 1);
        ck_assert_double_eq(res.evals[e].serving_params, 1000 + steps[e]);
        metric_id_t ids[TRAIN_EVAL_MAX_METRICS];
        const int n = train_eval_metrics(&res.evals[e], ids);
        char name[METRIC_NAME_MAX];
        ck_assert_int_eq(metric_name(ids[n - 1], 2, name, sizeof name), 0);
        ck_assert_str_eq(name, "model/serving_params");
        ck_assert_double_eq(train_eval_value(&res.evals[e], ids[n - 1]), 1000 + steps[e]);
    }
    /* W[0, 0] moved between evaluations: the log_alpha rows are per step. */
    ck_assert(seen.w00[0] != seen.w00[2]);
    trial_result_free(&res);

    /* A family without the hooks: no routes, no serving metric, and the
     * same metric list as before the hooks existed. */
    run_toy(&plaintoy_ops, &res, &seen);
    ck_assert_int_eq(res.route_count, 0);
    ck_assert_ptr_null(res.routes);
    ck_assert_int_eq(res.evals[0].has_serving, 0);
    metric_id_t ids[TRAIN_EVAL_MAX_METRICS];
    ck_assert_int_eq(train_eval_metrics(&res.evals[0], ids), 3 * 3); /* 2 regression tasks */
    route_records_t rec;
    store_result_t out = {0};
    err_t err = {0};
    ck_assert_int_eq(route_records(&res, &rec, &out, &err), 0);
    ck_assert_int_eq(out.n_routes + out.n_route_steps, 0);
    route_records_free(&rec);
    trial_result_free(&res);
}
END_TEST

static double q_double(sqlite3 *db, const char *sql) {
    sqlite3_stmt *st;
    ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql,
                  sqlite3_errmsg(db));
    double v = NAN;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        v = sqlite3_column_double(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Stores the toy's trial (finished or failed) and checks the route_step rows
 * (every evaluation, exact values), the route rows (the last evaluation's,
 * only when finished) and the model/serving_params curve. */
static void check_stored(bool failed) {
    trial_result_t res;
    seen_t seen;
    run_toy(&routetoy_ops, &res, &seen);
    if (failed) res.result.failed_step = 26; /* as a divergence after the last evaluation */

    char *dir = test_tmpdir(), *path = test_join(dir, "results.db");
    store_t *s;
    err_t err = {0};
    ck_assert_msg(store_open(&s, path, 0, &err) == 0, "%s", err.msg);
    int64_t exp_id;
    ck_assert_msg(store_experiment(s, "routes", "", "[experiment]\nname = routes\n", 2, false,
                                   &exp_id, &err) == 0,
                  "%s", err.msg);
    store_kv_t kv = {"model.name", "routetoy"};
    store_trial_t t = {.repeat = 0,
                       .model = "routetoy",
                       .config = "model.name=routetoy",
                       .data_seed = 1,
                       .init_seed = 1,
                       .n_params = 1,
                       .params = &kv,
                       .model_params = -1};
    int added;
    ck_assert_msg(store_add_trials(s, exp_id, &t, 1, &added, &err) == 0, "%s", err.msg);
    store_claim_t claim;
    ck_assert_int_eq(store_claim(s, exp_id, &claim, &err), 1);

    /* The records: the serving curve (as the runner names metrics) and the routes. */
    store_metric_t metrics[3];
    char names[3][METRIC_NAME_MAX];
    for (int e = 0; e < 3; e++) {
        metric_id_t ids[TRAIN_EVAL_MAX_METRICS];
        const int n = train_eval_metrics(&res.evals[e], ids);
        metric_name(ids[n - 1], 2, names[e], METRIC_NAME_MAX);
        metrics[e] = (store_metric_t){names[e], res.evals[e].step,
                                      train_eval_value(&res.evals[e], ids[n - 1])};
    }
    route_records_t rec;
    store_result_t out = {.n_metrics = 3, .metrics = metrics, .final_step = 25};
    ck_assert_msg(route_records(&res, &rec, &out, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(out.n_route_steps, 3 * 2 * TOY_ROUTES);
    ck_assert_int_eq(out.n_routes, failed ? 0 : 2 * TOY_ROUTES);
    if (failed)
        ck_assert_msg(store_fail(s, claim.id, 26, "diverged", &out, &err) == 0, "%s", err.msg);
    else
        ck_assert_msg(store_finish(s, claim.id, &out, &err) == 0, "%s", err.msg);
    route_records_free(&rec);

    sqlite3 *db = store_db(s);
    ck_assert_double_eq(q_double(db, "SELECT count(*) FROM route_step"), 3 * 2 * TOY_ROUTES);
    ck_assert_double_eq(
        q_double(db, "SELECT count(DISTINCT step) FROM route_step WHERE kind = 'z'"), 3);
    static const int steps[] = {10, 20, 25};
    for (int e = 0; e < 3; e++) {
        char sql[256];
        for (int i = 0; i < TOY_ROUTES; i++) {
            snprintf(sql, sizeof sql,
                     "SELECT value FROM route_step WHERE trial_id = %lld AND kind = 'z' AND "
                     "step = %d AND layer = 1 AND src = 0 AND dst = %d",
                     (long long)claim.id, steps[e], i);
            ck_assert_double_eq(q_double(db, sql), steps[e] + i / 4.0);
            snprintf(sql, sizeof sql,
                     "SELECT value FROM route_step WHERE trial_id = %lld AND kind = 'log_alpha' "
                     "AND step = %d AND layer = 2 AND src = %d AND dst = 0",
                     (long long)claim.id, steps[e], i);
            ck_assert_double_eq(q_double(db, sql), seen.w00[e]);
        }
        snprintf(sql, sizeof sql,
                 "SELECT value FROM metric WHERE name = 'model/serving_params' AND step = %d",
                 steps[e]);
        ck_assert_double_eq(q_double(db, sql), 1000 + steps[e]);
    }
    if (failed) {
        ck_assert_double_eq(q_double(db, "SELECT count(*) FROM route"), 0);
    } else {
        /* route = the last evaluation's rows of route_step, row for row. */
        ck_assert_double_eq(q_double(db, "SELECT count(*) FROM route"), 2 * TOY_ROUTES);
        ck_assert_double_eq(
            q_double(db, "SELECT count(*) FROM route r JOIN route_step s USING (trial_id, "
                         "layer, src, dst, kind) WHERE s.step = 25 AND s.value = r.value"),
            2 * TOY_ROUTES);
        ck_assert_double_eq(q_double(db, "SELECT value FROM route WHERE kind = 'z' AND dst = 2"),
                            25.5);
    }
    /* --retry-failed and `mtlab rm` clear route_step with the rest. */
    int retried;
    ck_assert_int_eq(store_retry_failed(s, exp_id, &retried, &err), 0);
    ck_assert_int_eq(retried, failed ? 1 : 0);
    ck_assert_double_eq(q_double(db, "SELECT count(*) FROM route_step"),
                        failed ? 0 : 3 * 2 * TOY_ROUTES);
    store_close(s);
    if (!failed) {
        const char *rm[] = {"rm", "--db", path, "--exp", "routes", NULL};
        char *o = test_mtlab_ok(0, NULL, rm);
        free(o);
        ck_assert_double_eq(test_query(path, "SELECT count(*) FROM route_step"), 0);
    }
    free(path);
    free(dir);
    trial_result_free(&res);
}

START_TEST(test_routes_stored) {
    check_stored(false);
}
END_TEST

START_TEST(test_routes_stored_failed) {
    check_stored(true);
}
END_TEST

Suite *snr_suite(void) {
    Suite *s = suite_create("snr");
    TCase *tc = tcase_create("routes");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_routes_per_eval);
    tcase_add_test(tc, test_routes_stored);
    tcase_add_test(tc, test_routes_stored_failed);
    suite_add_tcase(s, tc);
    return s;
}
