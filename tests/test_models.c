/* test_models.c -- every registered model: tensor table, initialisation,
 * finite-difference gradient check of every parameter tensor, gate views. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/loss.h"
#include "gradcheck.h"
#include "models/model.h"
#include "testutil.h"

/* A small configuration: every code path (several tasks, several experts,
 * biases) with few enough parameters to check each one. */
static model_config_t small_config(const char *name) {
    model_config_t c;
    model_config_default(&c, model_find(name));
    c.input_dim = 5;
    c.tasks = 3;
    test_set_hp(&c, name, "experts", 3);
    test_set_hp(&c, name, "expert_hidden", 4);
    test_set_hp(&c, name, "bottom_hidden", 6);
    test_set_hp(&c, name, "tower_hidden", 3);
    c.max_batch = 7;
    return c;
}

static const char *registry_name(int i) {
    int n;
    const model_ops_t *const *all = model_registry(&n);
    ck_assert_int_lt(i, n);
    return all[i]->name;
}

static int registry_size(void) {
    int n;
    model_registry(&n);
    return n;
}

typedef struct {
    model_t *m;
    real x[7 * 5], y[7 * 3], pred[7 * 3], dpred[7 * 3];
    task_kind_t kind[3];
    real weight[3];
    int B;
    rng_t noise; /* m->rng where the analytic pass started (stochastic families: SNR) */
} fixture_t;

/* Total loss Σ_k weight_k loss_k with task 2 binary: exercises MSE and BCE.
 * A training pass with the noise of the analytic pass (f->noise): the same
 * coding variables every time; deterministic families ignore the mode. */
static double total_loss(void *ctx) {
    fixture_t *f = ctx;
    const int T = f->m->cfg.tasks;
    f->m->rng = f->noise;
    model_forward(f->m, f->x, f->B, f->pred, MODEL_TRAIN);
    double sum = 0;
    for (int k = 0; k < T; k++)
        sum += f->weight[k] * loss_task(f->kind[k], f->pred, f->y, f->B, T, k);
    return sum;
}

/* hp_name (or NULL) set to hp_value on top of small_config. */
static void fixture_init(fixture_t *f, const char *name, uint64_t seed, const char *hp_name,
                         double hp_value) {
    memset(f, 0, sizeof *f);
    model_config_t c = small_config(name);
    if (hp_name) test_set_hp(&c, name, hp_name, hp_value);
    err_t err = {0};
    ck_assert_msg(model_new(&f->m, name, &c, seed, &err) == 0, "%s: %s", name, err.msg);
    rng_t r;
    rng_seed(&r, seed, 99);
    f->B = c.max_batch;
    for (int i = 0; i < f->B * c.input_dim; i++)
        f->x[i] = rng_normal(&r);
    f->kind[0] = TASK_REGRESSION;
    f->kind[1] = TASK_BINARY;
    f->kind[2] = TASK_REGRESSION;
    for (int i = 0; i < f->B * c.tasks; i++) {
        f->y[i] = rng_normal(&r);
        if (i % c.tasks == 1) f->y[i] = f->y[i] > 0;
    }
    f->weight[0] = 1.0;
    f->weight[1] = 0.5;
    f->weight[2] = 2.0;
    /* Non-zero biases, so the check does not sit at a special point. */
    for (size_t i = 0; i < f->m->n_params; i++)
        if (f->m->params[i] == 0) f->m->params[i] = 0.1 * rng_normal(&r);
}

/* Checks every tensor's analytic gradient against central differences. */
static void check_gradients(const char *name, const char *hp_name, double hp_value) {
    fixture_t f;
    fixture_init(&f, name, 11, hp_name, hp_value);
    model_t *m = f.m;
    const int T = m->cfg.tasks;
    /* Analytic gradient. */
    model_zero_grad(m);
    f.noise = m->rng;
    model_forward(m, f.x, f.B, f.pred, MODEL_TRAIN);
    for (int k = 0; k < T; k++)
        loss_task_grad(f.kind[k], f.pred, f.y, f.B, T, k, f.weight[k], f.dpred);
    model_backward(m, f.x, f.B, f.dpred);
    real *analytic = malloc(sizeof(real) * m->n_params);
    memcpy(analytic, m->grads, sizeof(real) * m->n_params);
    for (int t = 0; t < m->n_tensors; t++) {
        const tensor_t *ts = &m->tensors[t];
        size_t n = (size_t)ts->rows * ts->cols, worst = 0;
        double e =
            gradcheck(total_loss, &f, m->params + ts->offset, analytic + ts->offset, n, &worst);
        ck_assert_msg(e < GRADCHECK_TOL, "%s: tensor %s element %zu: relative error %.3g", name,
                      ts->name, worst, e);
    }
    /* Backward accumulates: a second pass doubles the gradient. */
    model_backward(m, f.x, f.B, f.dpred);
    for (size_t i = 0; i < m->n_params; i++)
        ck_assert(fabs(m->grads[i] - 2 * analytic[i]) <= 1e-12 * (1 + fabs(analytic[i])));
    free(analytic);
    model_free(m);
}

START_TEST(test_gradients) {
    check_gradients(registry_name(_i), NULL, 0);
}
END_TEST

/* gate_bias = on (issue 10): the gated families get a tensor gates.b of
 * G·n logit biases, and its gradient (with every other) passes the
 * finite-difference check. */
START_TEST(test_gate_bias_gradients) {
    static const char *const gated[] = {"omoe", "mmoe"};
    const char *name = gated[_i];
    model_config_t c = small_config(name);
    const model_ops_t *ops = model_find(name);
    err_t err = {0};
    model_t *m;
    ck_assert_int_eq(model_new(&m, name, &c, 3, &err), 0);
    ck_assert_int_eq(model_tensor_index(m, "gates.b"), -1); /* off by default (Eq 8) */
    model_free(m);
    ck_assert_int_eq(model_config_set(&c, ops, "gate_bias", 1, &err), 0);
    ck_assert_int_eq(model_new(&m, name, &c, 3, &err), 0);
    const int b = model_tensor_index(m, "gates.b");
    ck_assert_int_ge(b, 0);
    const int G = strcmp(name, "mmoe") == 0 ? c.tasks : 1;
    ck_assert_int_eq(m->tensors[b].cols, G * model_hp_int(&c, model_hp_find(ops, "experts")));
    model_free(m);
    check_gradients(name, "gate_bias", 1);
}
END_TEST

START_TEST(test_tensor_table) {
    const char *name = registry_name(_i);
    model_config_t c = small_config(name);
    model_t *m;
    err_t err;
    ck_assert(model_new(&m, name, &c, 1, &err) == 0);
    size_t expect = 0;
    for (int t = 0; t < m->n_tensors; t++) {
        const tensor_t *ts = &m->tensors[t];
        ck_assert_msg(ts->offset == expect, "%s: %s is not contiguous", name, ts->name);
        expect += (size_t)ts->rows * ts->cols;
        ck_assert_int_eq(model_tensor_index(m, ts->name), t); /* names are unique */
    }
    ck_assert_uint_eq(expect, m->n_params);
    if (!m->ops->arch_gradient) /* only families searched by REINFORCE have architecture logits */
        ck_assert_uint_eq(m->n_weights, m->n_params);
    model_free(m);
}
END_TEST

START_TEST(test_init_deterministic) {
    const char *name = registry_name(_i);
    model_config_t c = small_config(name);
    model_t *a, *b, *other;
    err_t err;
    ck_assert(model_new(&a, name, &c, 5, &err) == 0);
    ck_assert(model_new(&b, name, &c, 5, &err) == 0);
    ck_assert(model_new(&other, name, &c, 6, &err) == 0);
    ck_assert(memcmp(a->params, b->params, sizeof(real) * a->n_params) == 0);
    ck_assert(memcmp(a->params, other->params, sizeof(real) * a->n_params) != 0);
    /* Glorot bound: every weight of a [r, c] matrix lies in ±sqrt(6/(r+c)). */
    for (int t = 0; t < a->n_tensors; t++) {
        const tensor_t *ts = &a->tensors[t];
        if (ts->init == INIT_CUSTOM) continue; /* the family's own rule (its suite tests it) */
        double bound = ts->init == INIT_WEIGHT ? sqrt(6.0 / ((double)ts->rows + ts->cols)) : 0;
        for (size_t i = 0; i < (size_t)ts->rows * ts->cols; i++)
            ck_assert(fabs(a->params[ts->offset + i]) <= bound);
    }
    model_free(a);
    model_free(b);
    model_free(other);
}
END_TEST

/* The bound a of U(-a, a) that `scheme` gives tensor t of m, computed from
 * the shapes alone: a weight [fan_in, fan_out]; a bias "<layer>.b" takes
 * its fan_in from the rows of "<layer>.W"; 0 for zeros. */
static double expected_bound(const model_t *m, const tensor_t *t, const char *scheme) {
    const size_t len = strlen(t->name);
    if (len > 2 && strcmp(t->name + len - 2, ".b") == 0) {
        if (strcmp(scheme, "torch") != 0) return 0;
        char W[48];
        snprintf(W, sizeof W, "%.*s.W", (int)(len - 2), t->name);
        const int w = model_tensor_index(m, W);
        ck_assert_msg(w >= 0, "no %s for %s", W, t->name);
        return 1.0 / sqrt((double)m->tensors[w].rows);
    }
    const double in = t->rows, out = t->cols;
    if (strcmp(scheme, "torch") == 0) return 1.0 / sqrt(in);
    if (strcmp(scheme, "he") == 0) return sqrt(6.0 / in);
    return sqrt(6.0 / (in + out));
}

/* model.init (issue 10): for each family at the paper's sizes (gated ones
 * with gate_bias on too), schemes torch and he (and glorot, the default),
 * each tensor's values follow U(-a, a) with the expected a:
 *   - every |value| <= a, and none is 0 unless a is (zeros);
 *   - with n >= 100 values, max |value| >= a (1 - 21/n): a uniform sample
 *     falls short of that with probability (1 - 21/n)^n < e^-21 ~ 1e-9;
 *   - the mean of value² estimates a²/3 (the mean is known to be 0); its
 *     standard error is a² sqrt(4 / (45 n)) (Var x² = a⁴/5 - a⁴/9), and the
 *     estimate must lie within 5 standard errors (two-sided p ~ 6e-7 per
 *     tensor); the same for all tensors pooled (values divided by their a).
 * A wrong scheme (glorot's bound on a torch model: a ratio of 1.4 to 2.5 at
 * these shapes) misses the variance check by many standard errors. */
START_TEST(test_init_schemes) {
    static const char *const schemes[] = {"glorot", "torch", "he"};
    const char *name = registry_name(_i / 3), *scheme = schemes[_i % 3];
    const model_ops_t *ops = model_find(name);
    model_config_t c;
    model_config_default(&c, ops);
    const int init = model_hp_find(ops, "init");
    ck_assert_msg(init >= 0, "%s does not declare model.init", name);
    ck_assert_int_eq(model_hp_word_index(&ops->hp[init], scheme), _i % 3);
    test_set_hp(&c, name, "init", _i % 3);
    test_set_hp(&c, name, "gate_bias", 1);
    model_t *m;
    err_t err = {0};
    ck_assert_msg(model_new(&m, name, &c, 2018, &err) == 0, "%s", err.msg);
    double pooled_sq = 0;
    size_t pooled_n = 0;
    for (int t = 0; t < m->n_tensors; t++) {
        const tensor_t *ts = &m->tensors[t];
        if (ts->init == INIT_CUSTOM) continue; /* the family's own rule (its suite tests it) */
        const real *p = m->params + ts->offset;
        const size_t n = (size_t)ts->rows * ts->cols;
        const double a = expected_bound(m, ts, scheme);
        double sq = 0, largest = 0;
        for (size_t i = 0; i < n; i++) {
            const double v = fabs((double)p[i]);
            ck_assert_msg(v <= a * (1 + 1e-6), "%s/%s: %s value %g outside +-%g", name, scheme,
                          ts->name, (double)p[i], a);
            ck_assert_msg(a == 0 || v > 0, "%s/%s: %s has a zero", name, scheme, ts->name);
            if (v > largest) largest = v;
            sq += v * v;
        }
        if (a == 0) continue;
        if (n >= 100)
            ck_assert_msg(largest >= a * (1 - 21.0 / n), "%s/%s: %s: max |value| %g, bound %g",
                          name, scheme, ts->name, largest, a);
        const double mean_sq = sq / n, se = a * a * sqrt(4.0 / (45.0 * n));
        ck_assert_msg(fabs(mean_sq - a * a / 3) <= 5 * se,
                      "%s/%s: %s: mean square %g, expected %g +- 5 x %g", name, scheme, ts->name,
                      mean_sq, a * a / 3, se);
        pooled_sq += sq / (a * a);
        pooled_n += n;
    }
    ck_assert_uint_gt(pooled_n, 1000);
    const double pooled = pooled_sq / pooled_n, se = sqrt(4.0 / (45.0 * pooled_n));
    ck_assert_msg(fabs(pooled - 1.0 / 3) <= 5 * se, "%s/%s: pooled mean square %g, 1/3 +- 5 x %g",
                  name, scheme, pooled, se);
    /* glorot is the default: an explicit glorot draws the default's values. */
    if (_i % 3 == 0) {
        model_config_t d;
        model_config_default(&d, ops);
        test_set_hp(&d, name, "gate_bias", 1);
        model_t *def;
        ck_assert(model_new(&def, name, &d, 2018, &err) == 0);
        ck_assert(memcmp(def->params, m->params, sizeof(real) * m->n_params) == 0);
        model_free(def);
    }
    model_free(m);
}
END_TEST

/* Parameter counts of the paper's synthetic models (MMoE §5.1), derived
 * from the layer shapes: d = 100, T = 2, towers 8. */
START_TEST(test_paper_sizes) {
    struct {
        const char *name;
        size_t params;
    } cases[] = {
        /* bottom 100x113+113, towers 2 x (113x8+8 + 8+1) */
        {"shared_bottom", 100 * 113 + 113 + 2 * (113 * 8 + 8 + 8 + 1)},
        /* experts 100x128+128, one gate 100x8, towers 2 x (16x8+8 + 8+1) */
        {"omoe", 100 * 128 + 128 + 100 * 8 + 2 * (16 * 8 + 8 + 8 + 1)},
        {"mmoe", 100 * 128 + 128 + 2 * 100 * 8 + 2 * (16 * 8 + 8 + 8 + 1)},
        /* two bottoms 100x16+16 and two towers */
        {"single", 2 * (100 * 16 + 16) + 2 * (16 * 8 + 8 + 8 + 1)},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        model_config_t c;
        model_config_default(&c, model_find(cases[i].name));
        model_t *m;
        err_t err;
        ck_assert(model_new(&m, cases[i].name, &c, 1, &err) == 0);
        ck_assert_msg(m->n_params == cases[i].params, "%s: %zu parameters, expected %zu",
                      cases[i].name, m->n_params, cases[i].params);
        if (strcmp(cases[i].name, "mmoe") == 0) {
            /* One step, B = 128: experts [100, 128] and gates [100, 16] read the
             * input (forward + weight gradient); the towers' [16, 8] and [8, 1]
             * also pass a gradient to their input. */
            uint64_t expect = 2 * (2 * 128ull * 100 * 128) + 2 * (2 * 128ull * 100 * 16) +
                              2 * 3 * (2 * 128ull * 16 * 8) + 2 * 3 * (2 * 128ull * 8 * 1);
            ck_assert_uint_eq(model_step_flops(m, 128), expect);
        }
        model_free(m);
    }
}
END_TEST

START_TEST(test_gates) {
    const char *name = registry_name(_i);
    fixture_t f;
    fixture_init(&f, name, 3, NULL, 0);
    const model_gate_t *g;
    model_forward(f.m, f.x, f.B, f.pred, MODEL_EVAL);
    int n = model_gates(f.m, &g);
    /* The families after mmoe in the registry (issue 11) register the gates
     * their sizes hook counts; their own suites check names and levels. */
    const bool later = _i > 3;
    model_sizes_t sz;
    err_t err = {0};
    ck_assert_int_eq(model_sizes(name, &f.m->cfg, &sz, &err), 0);
    int expect = strcmp(name, "mmoe") == 0 ? f.m->cfg.tasks : strcmp(name, "omoe") == 0 ? 1 : 0;
    ck_assert_int_eq(n, later ? sz.n_gates : expect);
    for (int i = 0; i < n; i++) {
        if (g[i].kind != GATE_SOFTMAX) continue; /* raw mixture weights: no unit sum */
        if (!later) {
            ck_assert_int_eq(g[i].experts, 3); /* small_config's */
            ck_assert_int_eq(g[i].level, 1);
            ck_assert_str_eq(g[i].owner, g[i].name); /* "t1".. (mmoe), "shared" (omoe) */
        }
        for (int b = 0; b < f.B; b++) {
            double sum = 0;
            for (int e = 0; e < g[i].experts; e++) {
                double v = g[i].values[(size_t)b * g[i].ld + e];
                ck_assert(v > 0 && v < 1);
                sum += v;
            }
            ck_assert(fabs(sum - 1) < 1e-12);
        }
    }
    model_free(f.m);
}
END_TEST

START_TEST(test_bad_config) {
    model_config_t c = small_config("mmoe");
    model_t *m = NULL;
    err_t err = {0};
    ck_assert_int_eq(model_new(&m, "nosuch", &c, 1, &err), -1);
    ck_assert_int_eq(err.kind, ERR_USAGE);
    ck_assert_ptr_nonnull(strstr(err.msg, "unknown model 'nosuch'"));
    ck_assert_ptr_nonnull(strstr(err.msg, "mmoe"));
    c.hp[model_hp_find(model_find("mmoe"), "experts")] = 0;
    ck_assert_int_eq(model_new(&m, "mmoe", &c, 1, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "experts"));
    ck_assert_ptr_null(m);
}
END_TEST

/* model_sizes() tells, without allocating, what model_new declares: the
 * parameter count and tensor table of every family, for the small config and
 * the paper's sizes, and a heap estimate that covers the parameters. */
START_TEST(test_sizes_match_build) {
    const char *name = registry_name(_i);
    model_config_t configs[2] = {small_config(name)};
    model_config_default(&configs[1], model_find(name));
    for (int i = 0; i < 2; i++) {
        model_sizes_t sz;
        model_t *m;
        err_t err = {0};
        ck_assert_msg(model_sizes(name, &configs[i], &sz, &err) == 0, "%s: %s", name, err.msg);
        ck_assert_msg(model_new(&m, name, &configs[i], 1, &err) == 0, "%s: %s", name, err.msg);
        ck_assert_uint_eq(sz.n_params, m->n_params);
        ck_assert_uint_eq(sz.n_weights, m->n_weights);
        ck_assert_int_eq(sz.n_tensors, m->n_tensors);
        const model_gate_t *views;
        ck_assert_int_eq(sz.n_gates, model_gates(m, &views));
        size_t gate_experts = 0;
        for (int g = 0; g < sz.n_gates; g++)
            gate_experts += (size_t)views[g].experts;
        ck_assert_uint_eq(sz.gate_experts, gate_experts);
        ck_assert_uint_ge(sz.model_bytes, 2 * sizeof(real) * m->n_params);
        ck_assert_uint_gt(sz.act_bytes, 0);
        /* The workspace took the one block model_new reserved from the sizes. */
        ck_assert_int_eq(model_work_blocks(m), 1);
        model_free(m);
    }
}
END_TEST

/* Legal but unrepresentable shapes (issue 8): a clean ERR_USAGE naming the
 * quantity, from model_new and model_sizes alike, before anything is
 * allocated -- and, in the SANITIZE build, without a UBSan report (the old
 * code multiplied experts x expert_hidden in int). */
START_TEST(test_overflowing_configs) {
    static const struct {
        const char *model;
        int input_dim, experts, expert_hidden, bottom_hidden, tower_hidden, max_batch;
        const char *message;
    } cases[] = {
        {"mmoe", 100, 4096, 1000000, 1, 8, 128,
         "mmoe: 4096 experts x 1000000 hidden units overflows a layer width"},
        {"omoe", 100, 4096, 1000000, 1, 8, 128,
         "omoe: 4096 experts x 1000000 hidden units overflows a layer width"},
        {"mmoe", 2000000000, 4096, 500000, 1, 8, 128,
         "mmoe: 4096 experts x 500000 hidden units x 2000000000 inputs overflows"},
        {"mmoe", 100, 8, 16, 1, 8, INT_MAX, "mmoe: max_batch 2147483647 x 3 gates overflows"},
        {"omoe", 100, 2000000, 1000, 1, 8, 2000000000,
         "omoe: max_batch 2000000000 x 2000000 experts x 1000 hidden units overflows"},
        {"mmoe", 100, 1, INT_MAX, 1, INT_MAX, 1,
         "mmoe: a tower of 2147483647 inputs x 2147483647 hidden units overflows"},
        {"shared_bottom", INT_MAX, 8, 16, INT_MAX, 8, 1,
         "shared_bottom: a bottom of 2147483647 inputs x 2147483647 hidden units overflows"},
        {"single", 100, 8, 16, INT_MAX, 8, INT_MAX,
         "single: 3 bottoms x max_batch 2147483647 x 2147483647 hidden units overflows"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *name = cases[i].model;
        model_config_t c = small_config(name); /* 3 tasks */
        c.input_dim = cases[i].input_dim;
        /* Beyond the declared maxima on purpose: model_new takes any int. */
        const model_ops_t *ops = model_find(name);
        const struct {
            const char *hp;
            int value;
        } hps[] = {{"experts", cases[i].experts},
                   {"expert_hidden", cases[i].expert_hidden},
                   {"bottom_hidden", cases[i].bottom_hidden},
                   {"tower_hidden", cases[i].tower_hidden}};
        for (int h = 0; h < 4; h++)
            if (model_hp_find(ops, hps[h].hp) >= 0)
                c.hp[model_hp_find(ops, hps[h].hp)] = hps[h].value;
        c.max_batch = cases[i].max_batch;
        model_t *m = (model_t *)&c; /* model_new must reset it */
        err_t err = {0};
        ck_assert_int_eq(model_new(&m, cases[i].model, &c, 1, &err), -1);
        ck_assert_ptr_null(m);
        ck_assert_msg(err.kind == ERR_USAGE && strstr(err.msg, cases[i].message), "case %zu: %s", i,
                      err.msg);
        model_sizes_t sz;
        err_t size_err = {0};
        ck_assert_int_eq(model_sizes(cases[i].model, &c, &sz, &size_err), -1);
        ck_assert_str_eq(size_err.msg, err.msg);
    }
}
END_TEST

/* The families' hyper-parameter tables (issue 9): one [model] line is
 * validated once for every listed family, so families that share a name
 * agree on its type and range; each default lies in its range; the
 * registry's union lists every name once and keeps each family's order (the
 * order of a config's model keys).  Defaults may differ (single's bottom is
 * 16, shared_bottom's 113): each trial's config records the value it used. */
START_TEST(test_hp_tables) {
    int n, n_all;
    const model_ops_t *const *all = model_registry(&n);
    const model_hp_t *const *names = model_hp_all(&n_all);
    for (int f = 0; f < n; f++) {
        ck_assert_int_le(all[f]->n_hp, MODEL_MAX_HP);
        int last = -1;
        for (int i = 0; i < all[f]->n_hp; i++) {
            const model_hp_t *hp = &all[f]->hp[i];
            ck_assert_msg(hp->min <= hp->def && hp->def <= hp->max,
                          "%s.%s: default %g outside [%g, %g]", all[f]->name, hp->name, hp->def,
                          hp->min, hp->max);
            ck_assert_msg(hp->help && hp->help[0], "%s.%s has no help", all[f]->name, hp->name);
            ck_assert_int_eq(model_hp_find(all[f], hp->name), i); /* unique in the family */
            int at = -1;
            for (int j = 0; j < n_all; j++)
                if (strcmp(names[j]->name, hp->name) == 0) {
                    ck_assert_int_eq(at, -1); /* once in the union */
                    at = j;
                }
            ck_assert_int_gt(at, last); /* the family's order */
            last = at;
            for (int g = 0; g < n; g++) {
                int k = model_hp_find(all[g], hp->name);
                if (k < 0) continue;
                const model_hp_t *other = &all[g]->hp[k];
                ck_assert_msg(other->type == hp->type && other->min == hp->min &&
                                  other->max == hp->max &&
                                  (hp->type != HP_WORD || strcmp(other->words, hp->words) == 0) &&
                                  other->omit_default == hp->omit_default &&
                                  (!hp->omit_default || other->def == hp->def),
                              "%s and %s disagree on the type or range of '%s'", all[f]->name,
                              all[g]->name, hp->name);
            }
        }
    }
    /* Setting by name checks the family and the range. */
    model_config_t c;
    const model_ops_t *sb = model_find("shared_bottom");
    model_config_default(&c, sb);
    err_t err = {0};
    ck_assert_int_eq(model_config_set(&c, sb, "bottom_hidden", 50, &err), 0);
    ck_assert_int_eq(model_hp_int(&c, model_hp_find(sb, "bottom_hidden")), 50);
    ck_assert_int_eq(model_config_set(&c, sb, "experts", 4, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "no hyper-parameter 'experts'"));
    ck_assert_int_eq(model_config_set(&c, sb, "bottom_hidden", 2.5, &err), -1);
    ck_assert_int_eq(model_config_set(&c, sb, "bottom_hidden", 0, &err), -1);
}
END_TEST

Suite *models_suite(void) {
    Suite *s = suite_create("models");
    TCase *tc = tcase_create("registry");
    tcase_set_timeout(tc, 60);
    int n = registry_size();
    tcase_add_loop_test(tc, test_gradients, 0, n);
    tcase_add_loop_test(tc, test_gate_bias_gradients, 0, 2);
    tcase_add_loop_test(tc, test_init_schemes, 0, 3 * n);
    tcase_add_loop_test(tc, test_tensor_table, 0, n);
    tcase_add_loop_test(tc, test_init_deterministic, 0, n);
    tcase_add_loop_test(tc, test_gates, 0, n);
    tcase_add_test(tc, test_paper_sizes);
    tcase_add_test(tc, test_bad_config);
    tcase_add_test(tc, test_hp_tables);
    tcase_add_loop_test(tc, test_sizes_match_build, 0, n);
    tcase_add_test(tc, test_overflowing_configs);
    suite_add_tcase(s, tc);
    return s;
}
