/* test_snr.c -- suite "snr": route recording (the routes and serving_params
 * hooks of models/model.h, the route_step table, the model/serving_params
 * curve) and the SNR families (src/models/snr.c, src/nn/hard_concrete.c). */
#include "testutil.h"

#include "core/err.h"
#include "core/mem.h"
#include "core/loss.h"
#include "models/model.h"
#include "nn/hard_concrete.h"
#include "store/store.h"
#include "sweep/routes.h"
#include "train/metrics.h"
#include "train/trial.h"
#include "gradcheck.h"
#include "data/synth.h"

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

/* ---- the hard concrete distribution (nn/hard_concrete.h) ---- */

static const hc_params_t hc_default = {HC_BETA_DEFAULT, HC_GAMMA_DEFAULT, HC_ZETA_DEFAULT};

static double sigm(double x) {
    return 1 / (1 + exp(-x));
}

/* The closed forms of reference §11 at the defaults, written out. */
START_TEST(test_hc_closed_forms) {
    const hc_params_t *p = &hc_default;
    /* β log(−γ/ζ) = (2/3) log(1/11) = −1.5986 */
    const double shift = (2.0 / 3.0) * log(1.0 / 11.0);
    ck_assert_double_eq_tol(shift, -1.5985968, 1e-7);
    for (double la = -4; la <= 4; la += 0.5) {
        double dp;
        ck_assert_double_eq_tol(hc_p_open(p, la, &dp), sigm(la - shift), 1e-15);
        ck_assert_double_eq_tol(dp, sigm(la - shift) * (1 - sigm(la - shift)), 1e-15);
        /* P(z = 1) = σ(log α − β log((1−γ)/(ζ−1))) = σ(log α − 1.5986) at the defaults */
        ck_assert_double_eq_tol(hc_p_one(p, la), sigm(la + shift), 1e-12);
        /* ẑ = clip(σ(log α)(ζ − γ) + γ) */
        const double zhat = sigm(la) * 1.2 - 0.1;
        ck_assert_double_eq_tol(hc_serving(p, la), zhat < 0 ? 0 : zhat > 1 ? 1 : zhat, 1e-15);
    }
    /* At log α = 0: P(z = 0) = P(z = 1) = 0.168 */
    ck_assert_double_eq_tol(1 - hc_p_open(p, 0, NULL), 0.168, 5e-4);
    ck_assert_double_eq_tol(hc_p_one(p, 0), 0.168, 5e-4);
    /* ẑ = 0 exactly below log α = −log 11 = −2.398, and not above */
    ck_assert_double_eq(hc_serving(p, -log(11.0) - 1e-9), 0);
    ck_assert(hc_serving(p, -log(11.0) + 1e-9) > 0);
    ck_assert_double_eq(hc_serving(p, log(11.0) + 1e-9), 1);
    ck_assert(hc_serving(p, log(11.0) - 1e-9) < 1);
    /* The penalty term is clamped to [1e-6, 1 − 1e-6] (AMLab's clamp of Q),
     * with a zero derivative there. */
    double dp;
    ck_assert_double_eq(hc_p_open(p, -30, &dp), HC_EPS);
    ck_assert_double_eq(dp, 0);
    ck_assert_double_eq(hc_p_open(p, 30, &dp), 1 - HC_EPS);
    ck_assert_double_eq(dp, 0);
    /* AMLab initialisation: log(1 − p0) − log p0 */
    ck_assert_double_eq_tol(hc_log_alpha_init(0.5), 0, 1e-15);
    ck_assert_double_eq_tol(hc_log_alpha_init(0.2), log(4.0), 1e-15);
}
END_TEST

/* dz/dlog α and dP(z ≠ 0)/dlog α against central differences (u fixed). */
START_TEST(test_hc_derivatives) {
    const hc_params_t other = {0.5, -0.5, 1.5};
    const hc_params_t *ps[] = {&hc_default, &other};
    const double h = 1e-6;
    for (int k = 0; k < 2; k++)
        for (double u = 0.05; u < 1; u += 0.1)
            for (double la = -3; la <= 3; la += 0.37) {
                double dz, unused;
                const double z = hc_sample(ps[k], la, u, &dz);
                const double fd =
                    (hc_sample(ps[k], la + h, u, &unused) - hc_sample(ps[k], la - h, u, &unused)) /
                    (2 * h);
                if (z > 1e-5 && z < 1 - 1e-5) /* away from the clipping kinks */
                    ck_assert_msg(fabs(dz - fd) < 1e-6, "u %g la %g: %g vs %g", u, la, dz, fd);
                else
                    ck_assert_double_eq(dz, 0);
                double dp;
                hc_p_open(ps[k], la, &dp);
                const double fdp =
                    (hc_p_open(ps[k], la + h, NULL) - hc_p_open(ps[k], la - h, NULL)) / (2 * h);
                ck_assert_double_eq_tol(dp, fdp, 1e-8);
            }
}
END_TEST

/* The sampler: over 200 000 draws (u from hc_uniform), the fractions of
 * z = 0 and z = 1 match P(z = 0) = 1 − P(z ≠ 0) and P(z = 1) within 4.5
 * binomial standard errors sqrt(p (1 − p) / n) (~0.0038 at p = 0.168): a
 * correct sampler fails this with probability < 1e-5 per comparison, while a
 * wrong formula (e.g. P(z = 0) off by 0.01) fails it for sure.  Cases: the
 * defaults at log α = 0 (both 0.168), -1.5, 2 and other β, γ, ζ. */
START_TEST(test_hc_sampler) {
    static const struct {
        hc_params_t p;
        double la;
    } cases[] = {
        {{HC_BETA_DEFAULT, HC_GAMMA_DEFAULT, HC_ZETA_DEFAULT}, 0},
        {{HC_BETA_DEFAULT, HC_GAMMA_DEFAULT, HC_ZETA_DEFAULT}, -1.5},
        {{HC_BETA_DEFAULT, HC_GAMMA_DEFAULT, HC_ZETA_DEFAULT}, 2},
        {{0.5, -0.5, 1.5}, 0.3},
        {{0.9, -1.0, 2.0}, -0.7},
    };
    const int n = 200000;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        rng_t rng;
        rng_seed(&rng, 1234 + c, RNG_STREAM_MODEL);
        long zeros = 0, ones = 0, outside = 0; /* (no ck_assert in the loop: each is a write) */
        double sum = 0;
        for (int i = 0; i < n; i++) {
            const double z = hc_sample(&cases[c].p, cases[c].la, hc_uniform(&rng), NULL);
            outside += !(z >= 0 && z <= 1);
            zeros += z == 0;
            ones += z == 1;
            sum += z;
        }
        ck_assert_int_eq(outside, 0);
        const double p0 = 1 - hc_p_open(&cases[c].p, cases[c].la, NULL);
        const double p1 = hc_p_one(&cases[c].p, cases[c].la);
        const double se0 = sqrt(p0 * (1 - p0) / n), se1 = sqrt(p1 * (1 - p1) / n);
        ck_assert_msg(fabs((double)zeros / n - p0) < 4.5 * se0, "case %zu: P(z=0) %g vs %g", c,
                      (double)zeros / n, p0);
        ck_assert_msg(fabs((double)ones / n - p1) < 4.5 * se1, "case %zu: P(z=1) %g vs %g", c,
                      (double)ones / n, p1);
        if (c == 0) { /* the figures the issue names */
            ck_assert_double_eq_tol(p0, 0.168, 5e-4);
            ck_assert_double_eq_tol(p1, 0.168, 5e-4);
            /* symmetric around 1/2 at log α = 0 (γ + ζ = 1) */
            ck_assert_double_eq_tol(sum / n, 0.5, 0.005);
        }
    }
}
END_TEST

/* ---- the families ---- */

typedef struct {
    const char *family;
    int T, L, n, h, h2, th;
} snr_case_t;

static model_config_t snr_config(const snr_case_t *c, int d, int B) {
    model_config_t mc;
    model_config_default(&mc, model_find(c->family));
    mc.input_dim = d;
    mc.tasks = c->T;
    mc.max_batch = B;
    test_set_hp(&mc, c->family, "levels", c->L);
    test_set_hp(&mc, c->family, "experts", c->n);
    test_set_hp(&mc, c->family, "expert_hidden", c->h);
    test_set_hp(&mc, c->family, "expert_hidden2", c->h2);
    test_set_hp(&mc, c->family, "tower_hidden", c->th);
    return mc;
}

static model_t *snr_new(const snr_case_t *c, int d, int B, uint64_t seed) {
    model_config_t mc = snr_config(c, d, B);
    model_t *m;
    err_t err = {0};
    ck_assert_msg(model_new(&m, c->family, &mc, seed, &err) == 0, "%s: %s", c->family, err.msg);
    return m;
}

static real *log_alpha(const model_t *m, int layer) {
    char name[32];
    snprintf(name, sizeof name, "l%d.log_alpha", layer);
    const int t = model_tensor_index(m, name);
    ck_assert_msg(t >= 0, "%s: no tensor %s", m->ops->name, name);
    return model_param(m, t);
}

static const real *tensor(const model_t *m, const char *name) {
    const int t = model_tensor_index(m, name);
    ck_assert_msg(t >= 0, "%s: no tensor %s", m->ops->name, name);
    return model_param(m, t);
}

/* Small data: d inputs, T tasks (task 2 binary), correlation 0.5. */
static void snr_data(data_t *data, int d, int T, int n_train, uint64_t seed) {
    synth_params_t p;
    synth_defaults(&p);
    p.dim = d;
    p.tasks = T;
    p.n_train = n_train;
    p.n_val = 200;
    p.n_test = 200;
    if (T > 1) {
        p.binary[1] = true;
        p.positive_rate[1] = 0.4;
    }
    err_t err = {0};
    ck_assert_msg(synth_set_corr_all(&p, 0.5, &err) == 0, "%s", err.msg);
    ck_assert_msg(synth_generate(&p, seed, data, &err) == 0, "%s", err.msg);
}

typedef struct {
    train_state_t *s;
    const real *x, *y;
    int B;
    rng_t noise; /* m->rng at the analytic pass: the same u in every pass */
} objective_t;

/* loss + penalty on a fixed batch, with the coding noise held fixed. */
static double objective(void *ctx) {
    objective_t *o = ctx;
    double loss[MTLAB_MAX_TASKS + 1];
    o->s->m->rng = o->noise;
    ck_assert_int_eq(train_gradient(o->s, o->x, o->y, o->B, loss), 0);
    return loss[o->s->data->T] + o->s->penalty;
}

static const snr_case_t grad_cases[] = {
    {"snr_trans", 2, 1, 3, 4, 0, 3}, {"snr_trans", 2, 2, 3, 4, 5, 3},
    {"snr_trans", 3, 3, 2, 3, 4, 2}, {"snr_trans", 3, 2, 4, 2, 0, 3},
    {"snr_aver", 2, 1, 3, 4, 0, 3},  {"snr_aver", 2, 2, 3, 4, 5, 3},
    {"snr_aver", 3, 3, 2, 3, 4, 2},  {"snr_aver", 3, 2, 4, 2, 0, 3},
};

/* Finite differences of every tensor, log α included, of the training
 * objective Σ_k w_k loss_k + λ Σ P(z ≠ 0) (λ = 0.05) with the coding noise
 * held fixed (m->rng restored before every pass): T = 2 and 3, levels 1-3,
 * distinct layer widths; log α spread over [-2, 2] so some z are clipped
 * (0 or 1) and some not.  Then a second backward doubles the gradient. */
START_TEST(test_gradients) {
    const snr_case_t *c = &grad_cases[_i];
    const int d = 5, B = 6;
    data_t data;
    snr_data(&data, d, c->T, 64, 7);
    model_config_t mc = snr_config(c, d, B);
    test_set_hp(&mc, c->family, "l0_lambda", 0.05);
    model_t *m;
    err_t err = {0};
    ck_assert_msg(model_new(&m, c->family, &mc, 3, &err) == 0, "%s", err.msg);
    rng_t r;
    rng_seed(&r, 5, 99);
    for (int t = 0; t < m->n_tensors; t++) { /* generic values: no zero biases */
        real *p = model_param(m, t);
        const bool la = strstr(m->tensors[t].name, "log_alpha") != NULL;
        for (int k = 0; k < m->tensors[t].rows * m->tensors[t].cols; k++)
            p[k] = la ? (real)(4 * rng_uniform(&r) - 2) : p[k] + (real)(0.1 * rng_normal(&r));
    }
    train_config_t tc;
    train_config_default(&tc);
    tc.batch = B;
    train_state_t s;
    ck_assert_msg(train_begin(&s, m, &data, &tc, 1, &err) == 0, "%s", err.msg);
    objective_t o = {&s, data.train.x, data.train.y, B, m->rng};
    objective(&o);
    real *analytic = malloc(sizeof(real) * m->n_params);
    memcpy(analytic, m->grads, sizeof(real) * m->n_params);
    /* The pass had clipped (0 or 1) and unclipped coding variables: replay
     * its noise (one u per connection, layers in order, as declared). */
    int clipped = 0, inside = 0;
    rng_t replay = o.noise;
    for (int t = 0; t < m->n_tensors; t++) {
        if (!strstr(m->tensors[t].name, "log_alpha")) continue;
        for (int k = 0; k < m->tensors[t].rows * m->tensors[t].cols; k++) {
            const double z =
                hc_sample(&hc_default, model_param(m, t)[k], hc_uniform(&replay), NULL);
            clipped += z == 0 || z == 1;
            inside += z > 0 && z < 1;
        }
    }
    ck_assert_msg(clipped > 0 && inside > 0, "%d clipped, %d inside", clipped, inside);
    for (int t = 0; t < m->n_tensors; t++) {
        const tensor_t *ts = &m->tensors[t];
        size_t n = (size_t)ts->rows * ts->cols, worst = 0;
        double e =
            gradcheck(objective, &o, m->params + ts->offset, analytic + ts->offset, n, &worst);
        ck_assert_msg(e < GRADCHECK_TOL, "%s T %d L %d: tensor %s element %zu: relative error %.3g",
                      c->family, c->T, c->L, ts->name, worst, e);
    }
    /* Backward accumulates: another backward of the same pass doubles the
     * loss part (the penalty's gradient is added once, by the hook). */
    m->rng = o.noise;
    model_zero_grad(m);
    real pred[6 * 3], dpred[6 * 3];
    model_forward(m, data.train.x, B, pred, MODEL_TRAIN);
    for (int k = 0; k < c->T; k++)
        loss_task_grad(data.kind[k], pred, data.train.y, B, c->T, k, 1.0, dpred);
    model_backward(m, data.train.x, B, dpred);
    memcpy(analytic, m->grads, sizeof(real) * m->n_params);
    model_backward(m, data.train.x, B, dpred);
    for (size_t i = 0; i < m->n_params; i++)
        ck_assert(fabs(m->grads[i] - 2 * analytic[i]) <= 1e-12 * (1 + fabs(analytic[i])));
    free(analytic);
    train_end(&s);
    model_free(m);
    data_free(&data);
}
END_TEST

/* ---- forward equations against plain loops (reference §12) ---- */

/* The coding variables of routing layer l (1-based, n_dst x n_src) as the
 * family uses them: ẑ (eval) or, replaying the noise stream in the family's
 * order (layers ascending, dst-major, then src), the samples (train). */
static void ref_codes(const model_t *m, int l, int n_src, int n_dst, bool train, rng_t *noise,
                      double *z) {
    const real *la = log_alpha(m, l);
    for (int k = 0; k < n_src * n_dst; k++)
        z[k] = train ? hc_sample(&hc_default, la[k], hc_uniform(noise), NULL)
                     : hc_serving(&hc_default, la[k]);
}

#define REF_MAX 64

/* SNR-Trans from its equations: h^l_i = relu(Σ_j z_ij h^{l-1}_j W_ij + b_i),
 * W_ij the block (rows j·D_{l-1}, columns i·D_l) of "l<l>.W"; the towers'
 * hidden layers are routing layer L+1, then y_t = g_t Wo_t + bo_t. */
static void ref_trans(const model_t *m, const snr_case_t *c, const real *x, int d, bool train,
                      rng_t noise, double *y) {
    const int L = c->L, n = c->n, T = c->T;
    int D[5] = {c->h, c->h2 ? c->h2 : c->h, c->h2 ? c->h2 : c->h, c->h2 ? c->h2 : c->h};
    double in[REF_MAX * 8], out[REF_MAX * 8], z[REF_MAX];
    int n_in = 1, h_in = d;
    for (int q = 0; q < d; q++)
        in[q] = x[q];
    double codes[5][REF_MAX];
    for (int l = 1; l <= L + 1; l++)
        ref_codes(m, l, l == 1 ? 1 : n, l == L + 1 ? T : n, train, &noise, codes[l - 1]);
    for (int l = 1; l <= L + 1; l++) {
        const int n_out = l == L + 1 ? T : n, h_out = l == L + 1 ? c->th : D[l - 1];
        char name[32];
        snprintf(name, sizeof name, "l%d.W", l);
        const real *W = tensor(m, name);
        snprintf(name, sizeof name, "l%d.b", l);
        const real *b = tensor(m, name);
        memcpy(z, codes[l - 1], sizeof z);
        const int cols = n_out * h_out;
        for (int i = 0; i < n_out; i++)
            for (int k = 0; k < h_out; k++) {
                double pre = b[i * h_out + k];
                for (int j = 0; j < n_in; j++) {
                    double t = 0;
                    for (int q = 0; q < h_in; q++)
                        t += in[j * h_in + q] * W[(size_t)(j * h_in + q) * cols + i * h_out + k];
                    pre += z[i * n_in + j] * t;
                }
                out[i * h_out + k] = pre > 0 ? pre : 0;
            }
        memcpy(in, out, sizeof(double) * n_out * h_out);
        n_in = n_out;
        h_in = h_out;
    }
    for (int t = 0; t < T; t++) {
        char name[32];
        snprintf(name, sizeof name, "tower%d.out.W", t + 1);
        const real *Wo = tensor(m, name);
        snprintf(name, sizeof name, "tower%d.out.b", t + 1);
        double sum = tensor(m, name)[0];
        for (int k = 0; k < c->th; k++)
            sum += in[t * c->th + k] * Wo[k];
        y[t] = sum;
    }
}

/* SNR-Aver from its equations: u^1_i = relu(x W^1_i + b^1_i) (columns
 * i·D_1 of "l1.W"), u^l_i = relu((Σ_j z_ij u^{l-1}_j) W^l_i + b^l_i),
 * v_t = Σ_j z_tj u^L_j, y_t = tower_t(v_t). */
static void ref_aver(const model_t *m, const snr_case_t *c, const real *x, int d, bool train,
                     rng_t noise, double *y) {
    const int L = c->L, n = c->n, T = c->T;
    int D[4] = {c->h, c->h2 ? c->h2 : c->h, c->h2 ? c->h2 : c->h, c->h2 ? c->h2 : c->h};
    double u[REF_MAX * 8], next[REF_MAX * 8], mix[REF_MAX];
    double codes[5][REF_MAX];
    for (int l = 2; l <= L + 1; l++)
        ref_codes(m, l, n, l == L + 1 ? T : n, train, &noise, codes[l - 1]);
    const real *W1 = tensor(m, "l1.W"), *b1 = tensor(m, "l1.b");
    for (int i = 0; i < n * D[0]; i++) {
        double s = b1[i];
        for (int q = 0; q < d; q++)
            s += x[q] * W1[(size_t)q * n * D[0] + i];
        u[i] = s > 0 ? s : 0;
    }
    for (int l = 2; l <= L; l++) {
        const int hs = D[l - 2], hd = D[l - 1];
        for (int i = 0; i < n; i++) {
            for (int q = 0; q < hs; q++) {
                mix[q] = 0;
                for (int j = 0; j < n; j++)
                    mix[q] += codes[l - 1][i * n + j] * u[j * hs + q];
            }
            char name[32];
            snprintf(name, sizeof name, "l%d.s%d.W", l, i + 1);
            const real *W = tensor(m, name);
            snprintf(name, sizeof name, "l%d.s%d.b", l, i + 1);
            const real *b = tensor(m, name);
            for (int k = 0; k < hd; k++) {
                double s = b[k];
                for (int q = 0; q < hs; q++)
                    s += mix[q] * W[q * hd + k];
                next[i * hd + k] = s > 0 ? s : 0;
            }
        }
        memcpy(u, next, sizeof(double) * n * hd);
    }
    const int h = D[L - 1];
    for (int t = 0; t < T; t++) {
        double v[REF_MAX], g[REF_MAX];
        for (int q = 0; q < h; q++) {
            v[q] = 0;
            for (int j = 0; j < n; j++)
                v[q] += codes[L][t * n + j] * u[j * h + q];
        }
        char name[32];
        snprintf(name, sizeof name, "tower%d.hidden.W", t + 1);
        const real *Wh = tensor(m, name);
        snprintf(name, sizeof name, "tower%d.hidden.b", t + 1);
        const real *bh = tensor(m, name);
        for (int k = 0; k < c->th; k++) {
            double s = bh[k];
            for (int q = 0; q < h; q++)
                s += v[q] * Wh[q * c->th + k];
            g[k] = s > 0 ? s : 0;
        }
        snprintf(name, sizeof name, "tower%d.out.W", t + 1);
        const real *Wo = tensor(m, name);
        snprintf(name, sizeof name, "tower%d.out.b", t + 1);
        double s = tensor(m, name)[0];
        for (int k = 0; k < c->th; k++)
            s += g[k] * Wo[k];
        y[t] = s;
    }
}

/* Predictions of both modes against the plain loops, to 1e-12: MODEL_EVAL
 * with ẑ (log α spread so ẑ is 0, fractional and 1), MODEL_TRAIN with the
 * samples of the noise the model drew (one u per connection per batch, the
 * same for every example).  Every case of the gradient check. */
START_TEST(test_forward_equations) {
    const snr_case_t *c = &grad_cases[_i];
    const int d = 5, B = 4;
    model_t *m = snr_new(c, d, B, 9);
    rng_t r;
    rng_seed(&r, 17, 99);
    for (int t = 0; t < m->n_tensors; t++) {
        real *p = model_param(m, t);
        const bool la = strstr(m->tensors[t].name, "log_alpha") != NULL;
        for (int k = 0; k < m->tensors[t].rows * m->tensors[t].cols; k++)
            p[k] = la ? (real)(7 * rng_uniform(&r) - 3.5) : p[k] + (real)(0.1 * rng_normal(&r));
    }
    real x[4 * 5], pred[4 * 3];
    for (int i = 0; i < B * d; i++)
        x[i] = (real)rng_normal(&r);
    const bool trans = strcmp(c->family, "snr_trans") == 0;
    for (int mode = 0; mode < 2; mode++) {
        const bool train = mode == 0;
        const rng_t noise = m->rng;
        model_forward(m, x, B, pred, train ? MODEL_TRAIN : MODEL_EVAL);
        for (int b = 0; b < B; b++) {
            double y[3];
            if (trans)
                ref_trans(m, c, x + b * d, d, train, noise, y);
            else
                ref_aver(m, c, x + b * d, d, train, noise, y);
            for (int t = 0; t < c->T; t++)
                ck_assert_msg(fabs(pred[b * c->T + t] - y[t]) < 1e-12 * (1 + fabs(y[t])),
                              "%s L %d %s: example %d task %d: %.17g vs %.17g", c->family, c->L,
                              train ? "train" : "eval", b, t, pred[b * c->T + t], y[t]);
        }
    }
    model_free(m);
}
END_TEST

/* Fresh noise: consecutive training passes draw new coding variables
 * (different predictions), a pass from the same generator state repeats
 * them bit for bit, and evaluation is deterministic. */
START_TEST(test_noise_per_batch) {
    const snr_case_t c = {"snr_trans", 2, 2, 3, 4, 0, 3};
    const int d = 5, B = 4;
    model_t *m = snr_new(&c, d, B, 2);
    real x[4 * 5], p1[8], p2[8], p3[8];
    rng_t r;
    rng_seed(&r, 1, 99);
    for (int i = 0; i < B * d; i++)
        x[i] = (real)rng_normal(&r);
    const rng_t start = m->rng;
    model_forward(m, x, B, p1, MODEL_TRAIN);
    model_forward(m, x, B, p2, MODEL_TRAIN);
    ck_assert(memcmp(p1, p2, sizeof p1) != 0);
    m->rng = start;
    model_forward(m, x, B, p3, MODEL_TRAIN);
    ck_assert(memcmp(p1, p3, sizeof p1) == 0);
    model_forward(m, x, B, p1, MODEL_EVAL);
    const rng_t after = m->rng;
    model_forward(m, x, B, p2, MODEL_EVAL);
    ck_assert(memcmp(p1, p2, sizeof p1) == 0);
    ck_assert(memcmp(&after, &m->rng, sizeof after) == 0); /* eval draws nothing */
    model_free(m);
}
END_TEST

/* ---- parameter counts, serving size and routes on hand-set models ---- */

/* trans, d 5, T 2, L 2, n 3, D 4 then 5, tower_hidden 3:
 *   l1.W [5, 12] + b 12 + log α [3, 1]; l2.W [12, 15] + b 15 + log α [3, 3];
 *   l3.W [15, 6] + b 6 + log α [2, 3]; tower outputs 2 x (3 + 1)
 *   = 60 + 12 + 3 + 180 + 15 + 9 + 90 + 6 + 6 + 8 = 389.
 * Closing W¹_10, W²_02, W²_22, W³_10 (ẑ = 0) removes 20 + 2·20 + 15 of the
 * 371 served weights (389 less the 18 log α): 296.
 * aver, same shapes: l1 3 x (5·4 + 4) = 72; l2 3 x (4·5 + 5) = 75 + log α 9;
 * log α of the towers' layer 6; towers 2 x (5·3 + 3 + 3 + 1) = 44: 206.
 * Closing every outgoing connection of layer-1 sub-network 2 (z²_i1, all i)
 * removes it (24); closing z²_00 alone removes nothing; closing both of
 * layer-2 sub-network 3's (z³_t2) removes it (25); z³_00 alone nothing:
 * 206 - 15 - 24 - 25 = 142. */
START_TEST(test_serving_and_routes) {
    const snr_case_t ct = {"snr_trans", 2, 2, 3, 4, 5, 3}, ca = {"snr_aver", 2, 2, 3, 4, 5, 3};
    model_t *m = snr_new(&ct, 5, 8, 1);
    ck_assert_uint_eq(m->n_params, 389);
    ck_assert_uint_eq(m->n_weights, 389);
    ck_assert_int_eq(model_routes(m, NULL), 3 * (3 + 9 + 6));
    for (int l = 1; l <= 3; l++) {
        real *la = log_alpha(m, l);
        for (int k = 0; k < (l == 1 ? 3 : l == 2 ? 9 : 6); k++)
            la[k] = 3; /* ẑ = 1 */
    }
    ck_assert_uint_eq(model_serving_params(m), 371);
    log_alpha(m, 1)[1] = -3;         /* dst 1, src 0 */
    log_alpha(m, 2)[0 * 3 + 2] = -3; /* dst 0, src 2 */
    log_alpha(m, 2)[2 * 3 + 2] = -2.5;
    log_alpha(m, 3)[1 * 3 + 0] = -4; /* task 2, src 0 */
    log_alpha(m, 3)[0] = -2.3;       /* ẑ = 0.0097: kept */
    ck_assert_uint_eq(model_serving_params(m), 296);
    /* the routes: layer, src, dst, kind, value for every connection */
    model_route_t routes[54];
    ck_assert_int_eq(model_routes(m, routes), 54);
    int seen = 0;
    for (int r = 0; r < 54; r++) {
        if (routes[r].layer == 2 && routes[r].src == 2 && routes[r].dst == 0) {
            seen++;
            if (strcmp(routes[r].kind, "z") == 0) ck_assert_double_eq(routes[r].value, 0);
            if (strcmp(routes[r].kind, "log_alpha") == 0) ck_assert_double_eq(routes[r].value, -3);
            if (strcmp(routes[r].kind, "p_open") == 0)
                ck_assert_double_eq(routes[r].value, hc_p_open(&hc_default, -3, NULL));
        }
        if (routes[r].layer == 3 && routes[r].src == 0 && routes[r].dst == 0 &&
            strcmp(routes[r].kind, "z") == 0) {
            ck_assert_double_eq_tol(routes[r].value, sigm(-2.3) * 1.2 - 0.1, 1e-15);
            ck_assert(routes[r].value > 0);
        }
        ck_assert(routes[r].layer >= 1 && routes[r].layer <= 3);
        ck_assert_int_lt(routes[r].dst, routes[r].layer == 3 ? 2 : 3);
        ck_assert_int_lt(routes[r].src, routes[r].layer == 1 ? 1 : 3);
    }
    ck_assert_int_eq(seen, 3);
    ck_assert_str_eq(routes[0].kind, "z");
    ck_assert_str_eq(routes[1].kind, "log_alpha");
    ck_assert_str_eq(routes[2].kind, "p_open");
    model_free(m);

    m = snr_new(&ca, 5, 8, 1);
    ck_assert_uint_eq(m->n_params, 206);
    ck_assert_int_eq(model_routes(m, NULL), 3 * (9 + 6)); /* layer 1 has no coding variables */
    for (int l = 2; l <= 3; l++) {
        real *la = log_alpha(m, l);
        for (int k = 0; k < (l == 2 ? 9 : 6); k++)
            la[k] = 3;
    }
    ck_assert_uint_eq(model_serving_params(m), 206 - 15);
    for (int i = 0; i < 3; i++)
        log_alpha(m, 2)[i * 3 + 1] = -3; /* every z²_i1 */
    log_alpha(m, 2)[0] = -3;             /* z²_00 */
    ck_assert_uint_eq(model_serving_params(m), 206 - 15 - 24);
    log_alpha(m, 3)[0 * 3 + 2] = -3;
    log_alpha(m, 3)[1 * 3 + 2] = -3; /* both z³_t2 */
    log_alpha(m, 3)[0] = -3;         /* z³_00 */
    ck_assert_uint_eq(model_serving_params(m), 142);
    /* what model_new asserted: the sizes hook counts the routes */
    model_sizes_t sz;
    err_t err = {0};
    ck_assert_int_eq(model_sizes("snr_aver", &m->cfg, &sz, &err), 0);
    ck_assert_int_eq(sz.n_routes, 45);
    model_free(m);
    /* the defaults on the standard synthetic data (d 100, T 2) */
    model_config_t mc;
    model_config_default(&mc, model_find("snr_trans"));
    ck_assert_int_eq(model_sizes("snr_trans", &mc, &sz, &err), 0);
    /* 100·16·4 + 64 + 4 + 64·64 + 64 + 16 + 64·16 + 16 + 8 + 2·9 */
    ck_assert_uint_eq(sz.n_params, 6400 + 64 + 4 + 4096 + 64 + 16 + 1024 + 16 + 8 + 18);
    model_config_default(&mc, model_find("snr_aver"));
    ck_assert_int_eq(model_sizes("snr_aver", &mc, &sz, &err), 0);
    /* 100·64 + 64 + 4·(16·16 + 16) + 16 + 8 + 2·(16·8 + 8 + 8 + 1) */
    ck_assert_uint_eq(sz.n_params, 6400 + 64 + 4 * 272 + 16 + 8 + 2 * 145);
    /* Sizes that overflow are refused with the quantity named, before anything is allocated. */
    for (int f = 0; f < 2; f++) {
        const char *family = f ? "snr_aver" : "snr_trans";
        model_config_default(&mc, model_find(family));
        test_set_hp(&mc, family, "experts", 4096);
        test_set_hp(&mc, family, "expert_hidden", 1000000);
        err = (err_t){0};
        ck_assert_int_eq(model_sizes(family, &mc, &sz, &err), -1);
        ck_assert_msg(err.kind == ERR_USAGE && strstr(err.msg, "overflows"), "%s: %s", family,
                      err.msg);
    }
}
END_TEST

/* The log α clamp: train_step projects every log α onto [-c, c]
 * (log_alpha_clamp, default log 100) after the update. */
START_TEST(test_clamp) {
    const snr_case_t c = {"snr_aver", 2, 1, 3, 4, 0, 3};
    data_t data;
    snr_data(&data, 5, 2, 64, 3);
    model_config_t mc = snr_config(&c, 5, 16);
    test_set_hp(&mc, "snr_aver", "log_alpha_clamp", 2.5);
    model_t *m;
    err_t err = {0};
    ck_assert(model_new(&m, "snr_aver", &mc, 1, &err) == 0);
    real *la = log_alpha(m, 2);
    la[0] = 9;
    la[1] = -9;
    la[2] = 1;
    train_config_t tc;
    train_config_default(&tc);
    tc.batch = 16;
    train_state_t s;
    ck_assert(train_begin(&s, m, &data, &tc, 1, &err) == 0);
    double loss[3];
    ck_assert_int_eq(train_step(&s, loss), 0);
    ck_assert_double_eq(la[0], 2.5);
    ck_assert_double_eq(la[1], -2.5);
    ck_assert(la[2] != 1 && fabs(la[2] - 1) < 2e-3); /* one Adam step of lr 1e-3 */
    train_end(&s);
    model_free(m);
    data_free(&data);
}
END_TEST

/* ---- training: λ closes routes, determinism, the command line ---- */

/* A tiny trial of `family`: d 10, T 2, n 3, D 4, levels 2, λ, Adam lr 0.05. */
static void tiny_spec(trial_spec_t *spec, const char *family, double lambda, int steps) {
    trial_spec_default(spec);
    snprintf(spec->model, sizeof spec->model, "%s", family);
    model_config_default(&spec->model_cfg, model_find(family));
    test_set_hp(&spec->model_cfg, family, "experts", 3);
    test_set_hp(&spec->model_cfg, family, "expert_hidden", 4);
    test_set_hp(&spec->model_cfg, family, "tower_hidden", 3);
    test_set_hp(&spec->model_cfg, family, "l0_lambda", lambda);
    spec->data.dim = 10;
    spec->data.n_train = 1000;
    spec->data.n_val = 200;
    spec->data.n_test = 200;
    spec->train.steps = steps;
    spec->train.eval_every = 100;
    spec->train.batch = 32;
    spec->train.lr = 0.05;
}

/* Σ of the routes of `kind` at evaluation e (-1: before training, from a
 * fresh model of the same seed). */
static double route_sum(const trial_spec_t *spec, const trial_result_t *res, int e,
                        const char *kind, int *n_kind) {
    model_route_t buf[256];
    const model_route_t *r;
    int n;
    model_t *fresh = NULL;
    if (e < 0) {
        model_config_t mc = spec->model_cfg;
        mc.input_dim = spec->data.dim;
        mc.tasks = spec->data.tasks;
        mc.max_batch = spec->train.batch;
        err_t err = {0};
        ck_assert(model_new(&fresh, spec->model, &mc, spec->init_seed, &err) == 0);
        n = model_routes(fresh, buf);
        r = buf;
    } else {
        n = res->route_count;
        r = res->routes + (size_t)e * n;
    }
    double sum = 0;
    *n_kind = 0;
    for (int i = 0; i < n; i++)
        if (strcmp(r[i].kind, kind) == 0) {
            sum += r[i].value;
            (*n_kind)++;
        }
    model_free(fresh);
    return sum;
}

/* At λ = 20 (the penalty outweighs any loss here) every route closes within
 * 300 steps: every ẑ = 0, P(z ≠ 0) at its clamp floor σ(-log 100 + 1.6) =
 * 0.047, the serving size at its floor (trans: biases and tower outputs;
 * aver: towers only).  At λ = 0 the expected L0 Σ P(z ≠ 0) does not fall
 * from its initial value (0.832 per connection at log α ≈ 0) over 300 steps
 * of lr 0.01 (measured: trans 15.0 -> 16.2-16.5, aver 12.5 -> 13.2-13.3 over
 * three seeds; at lr 0.05 aver's can dip: 12.48 -> 12.11 for seed 1).  The
 * values measured are in the failure messages. */
START_TEST(test_lambda) {
    static const char *const families[] = {"snr_trans", "snr_aver"};
    const char *family = families[_i];
    for (int big = 0; big < 2; big++) {
        trial_spec_t spec;
        tiny_spec(&spec, family, big ? 20 : 0, 300);
        if (!big) spec.train.lr = 0.01;
        trial_result_t res;
        err_t err = {0};
        ck_assert_msg(trial_run(&spec, NULL, NULL, &res, &err) == 0, "%s", err.msg);
        ck_assert_int_eq(res.n_evals, 3);
        int n, nz;
        const double l0_start = route_sum(&spec, &res, -1, "p_open", &n);
        const double l0_end = route_sum(&spec, &res, 2, "p_open", &n);
        const double z_end = route_sum(&spec, &res, 2, "z", &nz);
        ck_assert_int_eq(n, nz);
        ck_assert_double_eq_tol(l0_start, n * sigm(1.5985968), 0.01 * n);
        const double serving = res.evals[2].serving_params;
        if (big) {
            ck_assert_msg(z_end == 0, "%s λ 20: Σ ẑ = %g over %d routes", family, z_end, n);
            ck_assert_msg(l0_end < n * 0.0475, "%s λ 20: expected L0 %g (%d routes)", family,
                          l0_end, n);
            /* trans: biases 12 + 12 + 6, outputs 2·4; aver: 2 towers of 4·3 + 3 + 3 + 1 */
            ck_assert_double_eq(serving, strcmp(family, "snr_trans") == 0 ? 38 : 38);
            ck_assert(res.evals[2].penalty < res.evals[0].penalty);
        } else {
            ck_assert_msg(l0_end >= l0_start, "%s λ 0: expected L0 %g at the start, %g at the end",
                          family, l0_start, l0_end);
            ck_assert_double_eq(res.evals[2].penalty, 0);
        }
        trial_result_free(&res);
    }
}
END_TEST

/* Same trial, same seed: the same bits (curve, routes, parameters);
 * another init seed: other routes (the noise and weights differ). */
START_TEST(test_determinism) {
    trial_spec_t spec;
    tiny_spec(&spec, _i ? "snr_aver" : "snr_trans", 0.01, 200);
    trial_result_t a, b;
    err_t err = {0};
    ck_assert(trial_run(&spec, NULL, NULL, &a, &err) == 0);
    ck_assert(trial_run(&spec, NULL, NULL, &b, &err) == 0);
    ck_assert_int_eq(a.n_evals, b.n_evals);
    ck_assert(memcmp(a.evals, b.evals, sizeof *a.evals * a.n_evals) == 0);
    ck_assert(memcmp(a.model->params, b.model->params, sizeof(real) * a.model->n_params) == 0);
    for (int i = 0; i < a.n_evals * a.route_count; i++)
        ck_assert(a.routes[i].value == b.routes[i].value);
    trial_result_free(&b);
    spec.init_seed = 2;
    ck_assert(trial_run(&spec, NULL, NULL, &b, &err) == 0);
    ck_assert(memcmp(a.model->params, b.model->params, sizeof(real) * a.model->n_params) != 0);
    trial_result_free(&a);
    trial_result_free(&b);
}
END_TEST

/* `mtlab train model.name=snr_trans` with its defaults on the standard
 * synthetic data, and `mtlab run` of both families into a store: route_step
 * holds every evaluation's routes, route the final ones (equal to the last
 * step's), model/serving_params a value per evaluation; `mtlab merge`
 * carries route_step; `mtlab show`'s command reproduces the stored test
 * losses bit for bit. */
START_TEST(test_cli) {
    const char *train[] = {"train", "model.name=snr_trans", "train.steps=200", "data.train=2000",
                           NULL};
    char *out = test_mtlab_ok(0, NULL, train);
    ck_assert_msg(strstr(out, "parameters: 11710") && strstr(out, "final test loss:") &&
                      strstr(out, "serving parameters: ") &&
                      strstr(out, "layer 3 (to the tasks)\n  t1 "),
                  "%s", out);
    free(out);

    char *dir = test_tmpdir(), *db = test_join(dir, "results.db");
    char *ini = test_write_file(dir, "snr.ini",
                                "[experiment]\nname = snr-cli\nrepeats = 1\nseed = 3\n"
                                "[data]\ndim = 10\ntrain = 1000\nvalidation = 200\ntest = 200\n"
                                "[model]\nname = snr_trans, snr_aver\nexperts = 3\n"
                                "expert_hidden = 4\nl0_lambda = 0.001\n"
                                "[train]\nsteps = 150\neval_every = 100\nbatch = 32\n");
    const char *run[] = {"run", ini, "--db", db, "--quiet", NULL};
    free(test_mtlab_ok(0, NULL, run));
    /* trans: 3 + 9 + 6 connections, aver: 9 + 6; 3 kinds; 2 evaluations */
    ck_assert_double_eq(test_query(db, "SELECT count(*) FROM route_step s JOIN trial t ON t.id = "
                                       "s.trial_id WHERE t.model = 'snr_trans'"),
                        2 * 3 * 18);
    ck_assert_double_eq(test_query(db, "SELECT count(*) FROM route_step s JOIN trial t ON t.id = "
                                       "s.trial_id WHERE t.model = 'snr_aver'"),
                        2 * 3 * 15);
    ck_assert_double_eq(test_query(db, "SELECT count(DISTINCT step) FROM route_step"), 2);
    ck_assert_double_eq(test_query(db, "SELECT count(*) FROM route"), 3 * (18 + 15));
    ck_assert_double_eq(test_query(db, "SELECT count(*) FROM route r JOIN route_step s USING "
                                       "(trial_id, layer, src, dst, kind) WHERE s.step = 150 "
                                       "AND s.value = r.value"),
                        3 * (18 + 15));
    ck_assert_double_eq(
        test_query(db, "SELECT count(*) FROM metric WHERE name = 'model/serving_params'"), 4);
    /* the trans serving size: all 18 open (log α moved < 0.15 from 0) */
    ck_assert_double_eq(
        test_query(db, "SELECT m.value FROM metric m JOIN trial t ON t.id = "
                       "m.trial_id WHERE t.model = 'snr_trans' AND m.name = "
                       "'model/serving_params' AND m.step = 150"),
        test_query(db, "SELECT n_params - 18 FROM trial WHERE model = 'snr_trans'"));
    /* `mtlab merge` carries route_step (the table is picked from the schema),
     * `mtlab schema` shows it. */
    char *merged = test_join(dir, "merged.db");
    const char *merge[] = {"merge", merged, db, NULL};
    free(test_mtlab_ok(0, NULL, merge));
    ck_assert_double_eq(test_query(merged, "SELECT count(*) FROM route_step"), 2 * 3 * (18 + 15));
    ck_assert_double_eq(test_query(merged, "SELECT count(*) FROM route_step s JOIN trial t ON "
                                           "t.id = s.trial_id WHERE t.model = 'snr_aver'"),
                        2 * 3 * 15);
    /* ... with every row's own src (the staging tables number their inputs in a
     * column of that name too) */
    static const char checksum[] =
        "SELECT sum((step * 7 + layer * 5 + src * 3 + dst) * length(kind) + value) FROM route_step";
    ck_assert_double_eq_tol(test_query(merged, checksum), test_query(db, checksum), 1e-9);
    ck_assert_double_eq(test_query(merged, "SELECT count(DISTINCT src) FROM route WHERE layer = 2"),
                        3);
    const char *schema[] = {"schema", "--db", merged, NULL};
    char *text = test_mtlab_ok(0, NULL, schema);
    ck_assert_ptr_nonnull(strstr(text, "CREATE TABLE route_step"));
    free(text);
    free(merged);
    for (int id = 1; id <= 2; id++) {
        char sql[160];
        double stored[2];
        for (int k = 0; k < 2; k++) {
            snprintf(sql, sizeof sql,
                     "SELECT value FROM metric WHERE trial_id = %d AND name = 'test/loss/t%d' "
                     "AND step = 150",
                     id, k + 1);
            stored[k] = test_query(db, sql);
        }
        char *train_out = test_rerun_shown(db, id);
        const char *final = strstr(train_out, "final test loss:");
        ck_assert_ptr_nonnull(final);
        double t[2];
        ck_assert_int_eq(sscanf(final, "final test loss: t1 %lf t2 %lf", &t[0], &t[1]), 2);
        for (int k = 0; k < 2; k++)
            ck_assert_msg(t[k] == stored[k], "trial %d task %d: train %.17g, stored %.17g", id,
                          k + 1, t[k], stored[k]);
        free(train_out);
    }
    free(ini);
    free(db);
    free(dir);
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

    TCase *hc = tcase_create("hard_concrete");
    tcase_set_timeout(hc, 60);
    tcase_add_test(hc, test_hc_closed_forms);
    tcase_add_test(hc, test_hc_derivatives);
    tcase_add_test(hc, test_hc_sampler);
    suite_add_tcase(s, hc);

    TCase *fam = tcase_create("families");
    tcase_set_timeout(fam, 120);
    const int n_cases = (int)(sizeof grad_cases / sizeof grad_cases[0]);
    tcase_add_loop_test(fam, test_gradients, 0, n_cases);
    tcase_add_loop_test(fam, test_forward_equations, 0, n_cases);
    tcase_add_test(fam, test_noise_per_batch);
    tcase_add_test(fam, test_serving_and_routes);
    tcase_add_test(fam, test_clamp);
    suite_add_tcase(s, fam);

    TCase *tr = tcase_create("training");
    tcase_set_timeout(tr, 120);
    tcase_add_loop_test(tr, test_lambda, 0, 2);
    tcase_add_loop_test(tr, test_determinism, 0, 2);
    tcase_add_test(tr, test_cli);
    suite_add_tcase(s, tr);
    return s;
}
