/* test_fusion1.c -- the multi-level families of issue 11: ml_mmoe, ple, cgc.
 *
 *   - finite-difference gradient check of every tensor (T = 2, 3; levels
 *     1..3; gate bias on; no shared experts);
 *   - the forward equations (reference mtl-models.md §5, §6) against a plain
 *     reference written here from the equations, reading the weights by
 *     tensor name: which input every expert and gate reads, what each gate
 *     mixes;
 *   - the reductions, to 1e-12 in double: ml_mmoe with one level = mmoe,
 *     ple with one level = cgc (same weights, copied tensor by tensor);
 *   - the gates registered per level, task and shared module;
 *   - parameter counts against hand formulas; T = 8 with binary and
 *     regression tasks mixed and grouped correlations trains; `mtlab train
 *     --params` and its matched-size solver. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/loss.h"
#include "gradcheck.h"
#include "models/model.h"
#include "testutil.h"

#define FX_B 6 /* batch rows */
#define FX_D 5 /* inputs */
#define FX_T 3 /* tasks, at most */

/* A small config of family `name`: widths that differ per level (4, 5, 3),
 * so a width read from the wrong level breaks a shape. */
static model_config_t small(const char *name, int T, int levels) {
    model_config_t c;
    model_config_default(&c, model_find(name));
    c.input_dim = FX_D;
    c.tasks = T;
    c.max_batch = FX_B;
    test_set_hp(&c, name, "experts", 3);
    test_set_hp(&c, name, "expert_hidden", 4);
    test_set_hp(&c, name, "expert_hidden2", 5);
    test_set_hp(&c, name, "expert_hidden3", 3);
    test_set_hp(&c, name, "levels", levels);
    test_set_hp(&c, name, "task_experts", 2);
    test_set_hp(&c, name, "shared_experts", 2);
    test_set_hp(&c, name, "tower_hidden", 3);
    return c;
}

static void set_hp(model_config_t *c, const char *name, const char *key, double v) {
    err_t err = {0};
    ck_assert_msg(model_config_set(c, model_find(name), key, v, &err) == 0, "%s", err.msg);
}

typedef struct {
    model_t *m;
    int B, T;
    real x[FX_B * FX_D], y[FX_B * FX_T], pred[FX_B * FX_T], dpred[FX_B * FX_T];
    task_kind_t kind[FX_T];
    real weight[FX_T];
} fixture_t;

/* Σ_k weight_k loss_k, task 2 binary (BCE), the others regression (MSE). */
static double total_loss(void *ctx) {
    fixture_t *f = ctx;
    model_forward(f->m, f->x, f->B, f->pred, MODEL_EVAL);
    double sum = 0;
    for (int k = 0; k < f->T; k++)
        sum += f->weight[k] * loss_task(f->kind[k], f->pred, f->y, f->B, f->T, k);
    return sum;
}

static void fixture_init(fixture_t *f, const char *name, const model_config_t *c, uint64_t seed) {
    memset(f, 0, sizeof *f);
    err_t err = {0};
    ck_assert_msg(model_new(&f->m, name, c, seed, &err) == 0, "%s: %s", name, err.msg);
    rng_t r;
    rng_seed(&r, seed, 77);
    f->B = c->max_batch;
    f->T = c->tasks;
    for (int i = 0; i < f->B * FX_D; i++)
        f->x[i] = rng_normal(&r);
    for (int k = 0; k < f->T; k++) {
        f->kind[k] = k == 1 ? TASK_BINARY : TASK_REGRESSION;
        f->weight[k] = 1.0 + 0.5 * k;
    }
    for (int i = 0; i < f->B * f->T; i++)
        f->y[i] = f->kind[i % f->T] == TASK_BINARY ? rng_uniform(&r) > 0.5 : rng_normal(&r);
    /* Non-zero biases: no check at the special point b = 0. */
    for (size_t i = 0; i < f->m->n_params; i++)
        if (f->m->params[i] == 0) f->m->params[i] = 0.1 * rng_normal(&r);
}

/* ---- gradients ---- */

static const struct {
    const char *name;
    int T, levels;
    const char *key; /* one more setting, or NULL */
    double value;
} grad_cases[] = {
    {"ml_mmoe", 2, 1, NULL, 0},
    {"ml_mmoe", 3, 1, NULL, 0},
    {"ml_mmoe", 2, 2, NULL, 0},
    {"ml_mmoe", 3, 2, NULL, 0},
    {"ml_mmoe", 2, 3, NULL, 0},
    {"ml_mmoe", 3, 3, NULL, 0},
    {"ml_mmoe", 3, 3, "gate_bias", 1},
    {"ml_mmoe", 2, 5, NULL, 0}, /* level 5: as wide as level 4 (blocks.h) */
    {"ple", 2, 1, NULL, 0},
    {"ple", 3, 1, NULL, 0},
    {"ple", 2, 2, NULL, 0},
    {"ple", 3, 2, NULL, 0},
    {"ple", 2, 3, NULL, 0},
    {"ple", 3, 3, NULL, 0},
    {"ple", 3, 3, "gate_bias", 1},
    {"ple", 3, 3, "shared_experts", 0}, /* no shared module */
    {"ple", 2, 3, "task_experts", 1},
    {"ple", 2, 5, NULL, 0},
    {"cgc", 2, 1, NULL, 0},
    {"cgc", 3, 1, NULL, 0},
    {"cgc", 3, 1, "gate_bias", 1},
    {"cgc", 3, 1, "shared_experts", 0},
};
#define N_GRAD_CASES ((int)(sizeof grad_cases / sizeof grad_cases[0]))

/* Every tensor's analytic gradient equals central differences of the loss
 * (GRADCHECK_TOL, gradcheck.h); a second backward doubles it (accumulation). */
START_TEST(test_gradients) {
    const char *name = grad_cases[_i].name;
    model_config_t c = small(name, grad_cases[_i].T, grad_cases[_i].levels);
    if (grad_cases[_i].key) set_hp(&c, name, grad_cases[_i].key, grad_cases[_i].value);
    fixture_t f;
    fixture_init(&f, name, &c, 11 + _i);
    model_t *m = f.m;
    model_zero_grad(m);
    model_forward(m, f.x, f.B, f.pred, MODEL_TRAIN);
    for (int k = 0; k < f.T; k++)
        loss_task_grad(f.kind[k], f.pred, f.y, f.B, f.T, k, f.weight[k], f.dpred);
    model_backward(m, f.x, f.B, f.dpred);
    real *analytic = malloc(sizeof(real) * m->n_params);
    memcpy(analytic, m->grads, sizeof(real) * m->n_params);
    double largest = 0;
    for (int t = 0; t < m->n_tensors; t++) {
        const tensor_t *ts = &m->tensors[t];
        size_t n = (size_t)ts->rows * ts->cols, worst = 0;
        double e =
            gradcheck(total_loss, &f, m->params + ts->offset, analytic + ts->offset, n, &worst);
        ck_assert_msg(e < GRADCHECK_TOL, "case %d %s T=%d L=%d: tensor %s element %zu: error %.3g",
                      _i, name, f.T, grad_cases[_i].levels, ts->name, worst, e);
        for (size_t i = 0; i < n; i++)
            if (fabs(analytic[ts->offset + i]) > largest) largest = fabs(analytic[ts->offset + i]);
    }
    ck_assert(largest > 1e-3); /* a check of all-zero gradients would prove nothing */
    model_backward(m, f.x, f.B, f.dpred);
    for (size_t i = 0; i < m->n_params; i++)
        ck_assert(fabs(m->grads[i] - 2 * analytic[i]) <= 1e-12 * (1 + fabs(analytic[i])));
    free(analytic);
    model_free(m);
}
END_TEST

/* ---- the forward equations, by a plain reference ---- */

/* Tensor `name` of m, asserting its shape. */
static const real *tensor(const model_t *m, const char *name, int rows, int cols) {
    const int i = model_tensor_index(m, name);
    ck_assert_msg(i >= 0, "no tensor %s", name);
    ck_assert_msg(m->tensors[i].rows == rows && m->tensors[i].cols == cols,
                  "%s is [%d, %d], expected [%d, %d]", name, m->tensors[i].rows, m->tensors[i].cols,
                  rows, cols);
    return model_param(m, i);
}

/* out[b][j] = (relu)(Σ_i in[b][i] W[i][col0 + j] + bias[col0 + j]) for j < n,
 * W [rows, ldw]; bias may be NULL.  Plain loops, in double. */
static void ref_dense(const double *in, int B, int rows, const real *W, int ldw, const real *bias,
                      int col0, int n, bool relu, double *out) {
    for (int b = 0; b < B; b++)
        for (int j = 0; j < n; j++) {
            double s = bias ? bias[col0 + j] : 0;
            for (int i = 0; i < rows; i++)
                s += in[b * rows + i] * W[(size_t)i * ldw + col0 + j];
            out[b * n + j] = relu && s < 0 ? 0 : s;
        }
}

static void ref_softmax(double *z, int B, int n) {
    for (int b = 0; b < B; b++) {
        double mx = z[b * n], sum = 0;
        for (int i = 1; i < n; i++)
            mx = z[b * n + i] > mx ? z[b * n + i] : mx;
        for (int i = 0; i < n; i++)
            sum += (z[b * n + i] = exp(z[b * n + i] - mx));
        for (int i = 0; i < n; i++)
            z[b * n + i] /= sum;
    }
}

/* The gate "<prefix>.W" [in, cols] (+ ".b" with gate_bias): softmax over
 * columns [col0, col0 + n) of in · W (+ b). */
static void ref_gate(const model_t *m, const char *prefix, const double *in, int B, int rows,
                     int cols, int col0, int n, bool bias, double *p) {
    char name[64];
    snprintf(name, sizeof name, "%s.W", prefix);
    const real *W = tensor(m, name, rows, cols);
    snprintf(name, sizeof name, "%s.b", prefix);
    const real *b = bias ? tensor(m, name, 1, cols) : NULL;
    ref_dense(in, B, rows, W, cols, b, col0, n, false, p);
    ref_softmax(p, B, n);
}

/* y_k = relu(f · Wh + bh) · Wo + bo (tower "tower<k+1>"), into pred[:, k]. */
static void ref_tower(const model_t *m, int k, const double *f, int B, int D, int th, double *pred,
                      int T) {
    char w[48], b[48];
    double h[FX_B * 8], y[FX_B];
    ck_assert_int_le(th, 8);
    snprintf(w, sizeof w, "tower%d.hidden.W", k + 1);
    snprintf(b, sizeof b, "tower%d.hidden.b", k + 1);
    ref_dense(f, B, D, tensor(m, w, D, th), th, tensor(m, b, 1, th), 0, th, true, h);
    snprintf(w, sizeof w, "tower%d.out.W", k + 1);
    snprintf(b, sizeof b, "tower%d.out.b", k + 1);
    ref_dense(h, B, th, tensor(m, w, th, 1), 1, tensor(m, b, 1, 1), 0, 1, false, y);
    for (int r = 0; r < B; r++)
        pred[r * T + k] = y[r];
}

#define REF_MAX 64 /* experts or modules of a reference level, at most */
#define REF_W   8  /* widths, at most */

/* ML-MMoE (mtl-models.md §5): level-1 experts read x; expert j of level
 * l+1 reads m^l_j = Σ_i G^l_j[i] e^l_i; every gate G^l reads the raw x;
 * n gates at non-final levels, T at the last; towers read m^L_k. */
static void ref_ml_mmoe(const model_t *m, const real *x, int B, double *pred) {
    const model_config_t *c = &m->cfg;
    const model_ops_t *ops = m->ops;
    const int d = c->input_dim, T = c->tasks, n = c->hp[model_hp_find(ops, "experts")],
              L = c->hp[model_hp_find(ops, "levels")];
    const bool bias = c->hp[model_hp_find(ops, "gate_bias")] != 0;
    const char *width_keys[] = {"expert_hidden", "expert_hidden2", "expert_hidden3"};
    static double xin[FX_B * FX_D], e[REF_MAX][FX_B * REF_W], mix[REF_MAX][FX_B * REF_W],
        p[FX_B * REF_MAX];
    for (int i = 0; i < B * d; i++)
        xin[i] = x[i];
    ck_assert_int_le(n, REF_MAX);
    int Dp = d;
    for (int l = 0; l < L; l++) {
        int D = (int)c->hp[model_hp_find(ops, width_keys[l])];
        if (D == 0) D = Dp;
        ck_assert_int_le(D, REF_W);
        char name[48];
        for (int j = 0; j < n; j++) { /* e^l_j */
            if (l == 0) {
                const real *W = tensor(m, "l1.experts.W", d, n * D);
                ref_dense(xin, B, d, W, n * D, tensor(m, "l1.experts.b", 1, n * D), j * D, D, true,
                          e[j]);
            } else {
                snprintf(name, sizeof name, "l%d.expert%d.W", l + 1, j + 1);
                const real *W = tensor(m, name, Dp, D);
                snprintf(name, sizeof name, "l%d.expert%d.b", l + 1, j + 1);
                ref_dense(mix[j], B, Dp, W, D, tensor(m, name, 1, D), 0, D, true, e[j]);
            }
        }
        const int G = l < L - 1 ? n : T;
        snprintf(name, sizeof name, "l%d.gates", l + 1);
        for (int g = 0; g < G; g++) { /* m^l_g = Σ_i softmax(x · Wg)_i e^l_i */
            ref_gate(m, name, xin, B, d, G * n, g * n, n, bias, p);
            for (int b = 0; b < B; b++)
                for (int h = 0; h < D; h++) {
                    double s = 0;
                    for (int i = 0; i < n; i++)
                        s += p[b * n + i] * e[i][b * D + h];
                    mix[g][b * D + h] = s;
                }
        }
        Dp = D;
    }
    for (int k = 0; k < T; k++)
        ref_tower(m, k, mix[k], B, Dp, (int)c->hp[model_hp_find(ops, "tower_hidden")], pred, T);
}

/* PLE / CGC (mtl-models.md §6): module outputs g^{k,0} = g^{s,0} = x; at
 * level j task k's experts read g^{k,j-1}, the shared experts g^{s,j-1};
 * task k's gate reads g^{k,j-1} and mixes [its own experts; the shared
 * ones]; the shared gate (non-final levels) reads g^{s,j-1} and mixes all
 * experts of the level; towers read g^{k,N}. */
static void ref_ple(const model_t *m, const real *x, int B, double *pred) {
    const model_config_t *c = &m->cfg;
    const model_ops_t *ops = m->ops;
    const int d = c->input_dim, T = c->tasks, mk = c->hp[model_hp_find(ops, "task_experts")],
              ms = c->hp[model_hp_find(ops, "shared_experts")], E = T * mk + ms,
              N = model_hp_find(ops, "levels") >= 0 ? c->hp[model_hp_find(ops, "levels")] : 1;
    const bool bias = c->hp[model_hp_find(ops, "gate_bias")] != 0;
    const char *width_keys[] = {"expert_hidden", "expert_hidden2", "expert_hidden3"};
    /* g[k]: module k's current output (k = T: shared), width Dp */
    static double g[FX_T + 1][FX_B * REF_W], g_next[FX_T + 1][FX_B * REF_W],
        S[REF_MAX][FX_B * REF_W], p[FX_B * REF_MAX];
    ck_assert_int_le(d, REF_W);
    for (int k = 0; k <= T; k++)
        for (int i = 0; i < B * d; i++)
            g[k][i] = x[i];
    int Dp = d;
    for (int j = 0; j < N; j++) {
        int D = (int)c->hp[model_hp_find(ops, width_keys[j])];
        if (D == 0) D = Dp;
        char name[48], bname[48];
        for (int e = 0; e < E; e++) { /* expert e of the level: task e / mk's, or shared */
            const int module = e < T * mk ? e / mk : T, i = e < T * mk ? e % mk : e - T * mk;
            if (j == 0) {
                ref_dense(g[module], B, d, tensor(m, "l1.experts.W", d, E * D), E * D,
                          tensor(m, "l1.experts.b", 1, E * D), e * D, D, true, S[e]);
            } else {
                const int count = module < T ? mk : ms;
                if (module < T) {
                    snprintf(name, sizeof name, "l%d.t%d.experts.W", j + 1, module + 1);
                    snprintf(bname, sizeof bname, "l%d.t%d.experts.b", j + 1, module + 1);
                } else {
                    snprintf(name, sizeof name, "l%d.shared.experts.W", j + 1);
                    snprintf(bname, sizeof bname, "l%d.shared.experts.b", j + 1);
                }
                ref_dense(g[module], B, Dp, tensor(m, name, Dp, count * D), count * D,
                          tensor(m, bname, 1, count * D), i * D, D, true, S[e]);
            }
        }
        for (int k = 0; k < T; k++) { /* g^{k,j} = Σ softmax(g^{k,j-1} · Wg)_i [own; shared]_i */
            snprintf(name, sizeof name, "l%d.t%d.gate", j + 1, k + 1);
            ref_gate(m, name, g[k], B, Dp, mk + ms, 0, mk + ms, bias, p);
            for (int b = 0; b < B; b++)
                for (int h = 0; h < D; h++) {
                    double s = 0;
                    for (int i = 0; i < mk; i++)
                        s += p[b * (mk + ms) + i] * S[k * mk + i][b * D + h];
                    for (int i = 0; i < ms; i++)
                        s += p[b * (mk + ms) + mk + i] * S[T * mk + i][b * D + h];
                    g_next[k][b * D + h] = s;
                }
        }
        if (j < N - 1 && ms > 0) { /* g^{s,j} = Σ softmax(g^{s,j-1} · Wg)_e S_e over all E */
            snprintf(name, sizeof name, "l%d.shared.gate", j + 1);
            ref_gate(m, name, g[T], B, Dp, E, 0, E, bias, p);
            for (int b = 0; b < B; b++)
                for (int h = 0; h < D; h++) {
                    double s = 0;
                    for (int e = 0; e < E; e++)
                        s += p[b * E + e] * S[e][b * D + h];
                    g_next[T][b * D + h] = s;
                }
        } else {
            char shared_gate[48];
            snprintf(shared_gate, sizeof shared_gate, "l%d.shared.gate.W", j + 1);
            ck_assert_int_eq(model_tensor_index(m, shared_gate), -1); /* none at the last level */
        }
        memcpy(g, g_next, sizeof g);
        Dp = D;
    }
    for (int k = 0; k < T; k++)
        ref_tower(m, k, g[k], B, Dp, (int)c->hp[model_hp_find(ops, "tower_hidden")], pred, T);
}

static const struct {
    const char *name;
    int T, levels;
    const char *key;
    double value;
} eq_cases[] = {
    {"ml_mmoe", 3, 3, "gate_bias", 1},  {"ml_mmoe", 2, 2, NULL, 0},
    {"ple", 3, 3, "gate_bias", 1},      {"ple", 2, 2, NULL, 0},
    {"ple", 3, 3, "shared_experts", 0}, {"cgc", 3, 1, NULL, 0},
};

/* The model's predictions equal the reference's to 1e-12 (double): pins
 * ML-MMoE §5 (every gate reads x; level l+1 expert j reads mixture j of
 * level l) and PLE §6 (gates and experts read their module's previous
 * output; task gates mix own + shared; the shared gate mixes all, only at
 * non-final levels). */
START_TEST(test_forward_equations) {
    const char *name = eq_cases[_i].name;
    model_config_t c = small(name, eq_cases[_i].T, eq_cases[_i].levels);
    if (eq_cases[_i].key) set_hp(&c, name, eq_cases[_i].key, eq_cases[_i].value);
    fixture_t f;
    fixture_init(&f, name, &c, 5 + _i);
    double ref[FX_B * FX_T];
    if (strcmp(name, "ml_mmoe") == 0)
        ref_ml_mmoe(f.m, f.x, f.B, ref);
    else
        ref_ple(f.m, f.x, f.B, ref);
    model_forward(f.m, f.x, f.B, f.pred, MODEL_EVAL);
    for (int i = 0; i < f.B * f.T; i++)
        ck_assert_msg(fabs(f.pred[i] - ref[i]) <= 1e-12 * (1 + fabs(ref[i])),
                      "%s case %d: prediction %d: %.17g, reference %.17g", name, _i, i,
                      (double)f.pred[i], ref[i]);
    model_free(f.m);
}
END_TEST

/* ---- reductions ---- */

/* Runs a and b (same config shape) on the same x and dpred; their
 * predictions, the gradients of tensors mapped by `map` (name in a -> name
 * in b), and their gates must agree to 1e-12. */
typedef void (*name_map_t)(const char *in_a, char *in_b, size_t n);

static void assert_same_model(model_t *a, model_t *b, name_map_t map, uint64_t seed) {
    ck_assert_uint_eq(a->n_params, b->n_params);
    ck_assert_int_eq(a->n_tensors, b->n_tensors);
    /* b takes a's weights, tensor by tensor. */
    for (int t = 0; t < a->n_tensors; t++) {
        char other[64];
        map(a->tensors[t].name, other, sizeof other);
        const int u = model_tensor_index(b, other);
        ck_assert_msg(u >= 0, "%s has no %s (for %s)", b->ops->name, other, a->tensors[t].name);
        ck_assert_int_eq(a->tensors[t].rows, b->tensors[u].rows);
        ck_assert_int_eq(a->tensors[t].cols, b->tensors[u].cols);
        memcpy(model_param(b, u), model_param(a, t),
               sizeof(real) * a->tensors[t].rows * a->tensors[t].cols);
    }
    const int B = a->cfg.max_batch, T = a->cfg.tasks, d = a->cfg.input_dim;
    real *x = malloc(sizeof(real) * B * d), *pa = malloc(sizeof(real) * B * T),
         *pb = malloc(sizeof(real) * B * T), *dpred = malloc(sizeof(real) * B * T);
    rng_t r;
    rng_seed(&r, seed, 5);
    for (int i = 0; i < B * d; i++)
        x[i] = rng_normal(&r);
    for (int i = 0; i < B * T; i++)
        dpred[i] = rng_normal(&r);
    model_zero_grad(a);
    model_zero_grad(b);
    model_forward(a, x, B, pa, MODEL_TRAIN);
    model_forward(b, x, B, pb, MODEL_TRAIN);
    for (int i = 0; i < B * T; i++)
        ck_assert_msg(fabs(pa[i] - pb[i]) <= 1e-12, "prediction %d: %s %.17g, %s %.17g", i,
                      a->ops->name, (double)pa[i], b->ops->name, (double)pb[i]);
    model_backward(a, x, B, dpred);
    model_backward(b, x, B, dpred);
    for (int t = 0; t < a->n_tensors; t++) {
        char other[64];
        map(a->tensors[t].name, other, sizeof other);
        const int u = model_tensor_index(b, other);
        for (int i = 0; i < a->tensors[t].rows * a->tensors[t].cols; i++)
            ck_assert_msg(fabs(model_grad(a, t)[i] - model_grad(b, u)[i]) <= 1e-12,
                          "gradient of %s[%d]", a->tensors[t].name, i);
    }
    const model_gate_t *ga, *gb;
    const int n = model_gates(a, &ga);
    ck_assert_int_eq(n, model_gates(b, &gb));
    for (int g = 0; g < n; g++) {
        ck_assert_int_eq(ga[g].experts, gb[g].experts);
        for (int row = 0; row < B; row++)
            for (int e = 0; e < ga[g].experts; e++)
                ck_assert(fabs(ga[g].values[(size_t)row * ga[g].ld + e] -
                               gb[g].values[(size_t)row * gb[g].ld + e]) <= 1e-12);
    }
    free(x);
    free(pa);
    free(pb);
    free(dpred);
}

/* ml_mmoe's one-level names -> mmoe's: "l1.experts.W" -> "experts.W",
 * "l1.gates.b" -> "gates.b"; towers keep theirs. */
static void ml_to_mmoe(const char *in, char *out, size_t n) {
    snprintf(out, n, "%s", strncmp(in, "l1.", 3) == 0 ? in + 3 : in);
}
static void same_name(const char *in, char *out, size_t n) {
    snprintf(out, n, "%s", in);
}

/* ml_mmoe with levels = 1 is MMoE (mtl-models.md §5 with L = 1 = MMoE §4,
 * Eq 5-8: f^k = Σ_i softmax(x · Wg_k)_i relu(x · W_i + b_i), y_k =
 * tower_k(f^k)): with mmoe's weights, the same predictions, gradients and
 * gates to 1e-12, for T = 2 and 3, gate bias off and on. */
START_TEST(test_ml_mmoe_one_level_is_mmoe) {
    const int T = 2 + _i % 2, bias = _i / 2;
    model_config_t cm = small("mmoe", T, 1), cl = small("ml_mmoe", T, 1);
    set_hp(&cm, "mmoe", "gate_bias", bias);
    set_hp(&cl, "ml_mmoe", "gate_bias", bias);
    model_t *ml, *mm;
    err_t err = {0};
    ck_assert_int_eq(model_new(&ml, "ml_mmoe", &cl, 3, &err), 0);
    ck_assert_int_eq(model_new(&mm, "mmoe", &cm, 4, &err), 0);
    assert_same_model(ml, mm, ml_to_mmoe, 10 + _i);
    model_free(ml);
    model_free(mm);
}
END_TEST

/* ple with levels = 1 is CGC (PLE paper Eq 1-3 / mtl-models.md §6 with N = 1:
 * no shared gate, task gates over own + shared experts reading x): same
 * tensor table, and with cgc's weights the same predictions, gradients and
 * gates to 1e-12; T = 2 and 3, with and without shared experts, gate bias
 * on. */
START_TEST(test_ple_one_level_is_cgc) {
    const int T = 2 + _i % 2, shared = _i / 2 ? 0 : 2;
    model_config_t cp = small("ple", T, 1), cc = small("cgc", T, 1);
    set_hp(&cp, "ple", "shared_experts", shared);
    set_hp(&cc, "cgc", "shared_experts", shared);
    set_hp(&cp, "ple", "gate_bias", 1);
    set_hp(&cc, "cgc", "gate_bias", 1);
    set_hp(&cp, "ple", "expert_hidden2", 7); /* ignored: one level */
    model_t *p, *c;
    err_t err = {0};
    ck_assert_int_eq(model_new(&p, "ple", &cp, 3, &err), 0);
    ck_assert_int_eq(model_new(&c, "cgc", &cc, 4, &err), 0);
    for (int t = 0; t < p->n_tensors; t++) /* the same table, in the same order */
        ck_assert_str_eq(p->tensors[t].name, c->tensors[t].name);
    assert_same_model(p, c, same_name, 20 + _i);
    model_free(p);
    model_free(c);
}
END_TEST

/* ---- gates ---- */

/* Every gate per level, task and shared module, with its level, owner and
 * expert count; softmax rows sum to 1. */
START_TEST(test_gates_registered) {
    const char *name = _i == 0 ? "ml_mmoe" : "ple";
    const int T = 3, L = 3, n = 3, mk = 2, ms = 2;
    model_config_t c = small(name, T, L);
    fixture_t f;
    fixture_init(&f, name, &c, 9);
    model_forward(f.m, f.x, f.B, f.pred, MODEL_EVAL);
    const model_gate_t *g;
    const int count = model_gates(f.m, &g);
    int at = 0;
    for (int l = 1; l <= L; l++) {
        /* ml_mmoe: n gates "l<l>/e<j>" below the last level, T "l<L>/t<k>" at it;
         * ple: T "l<l>/t<k>" per level, then "l<l>/shared" below the last. */
        const int modules = _i == 0 ? (l < L ? n : T) : (l < L ? T + 1 : T);
        for (int j = 0; j < modules; j++, at++) {
            ck_assert_int_lt(at, count);
            char want[32], owner[16];
            int experts;
            if (_i == 0) {
                snprintf(owner, sizeof owner, "%c%d", l < L ? 'e' : 't', j + 1);
                experts = n;
            } else if (j < T) {
                snprintf(owner, sizeof owner, "t%d", j + 1);
                experts = mk + ms;
            } else {
                snprintf(owner, sizeof owner, "shared");
                experts = T * mk + ms;
            }
            snprintf(want, sizeof want, "l%d/%s", l, owner);
            ck_assert_str_eq(g[at].name, want);
            ck_assert_str_eq(g[at].owner, owner);
            ck_assert_int_eq(g[at].level, l);
            ck_assert_int_eq(g[at].kind, GATE_SOFTMAX);
            ck_assert_int_eq(g[at].experts, experts);
            for (int b = 0; b < f.B; b++) {
                double sum = 0;
                for (int e = 0; e < experts; e++)
                    sum += g[at].values[(size_t)b * g[at].ld + e];
                ck_assert(fabs(sum - 1) < 1e-12);
            }
        }
    }
    ck_assert_int_eq(at, count);
    model_free(f.m);
}
END_TEST

/* ---- parameter counts ---- */

/* Hand formulas (a layer [in, out] with bias has (in + 1)·out parameters; a
 * tower (D + 1)·th + th + 1).  ml_mmoe: level 1 (d + 1)·n·D_1, level l > 1
 * n·(D_{l-1} + 1)·D_l, gates (d + bias)·n·n below the last level and
 * (d + bias)·n·T at it. */
static size_t ml_mmoe_formula(int d, int T, int n, const int *D, int L, int th, int bias) {
    size_t p = (size_t)(d + 1) * n * D[0];
    for (int l = 1; l < L; l++)
        p += (size_t)n * (D[l - 1] + 1) * D[l];
    p += (size_t)(L - 1) * (d + bias) * n * n + (size_t)(d + bias) * n * T;
    return p + (size_t)T * ((D[L - 1] + 1) * th + th + 1);
}

/* ple: level 1 (d + 1)·E·D_1; level j > 1 T·(D_{j-1} + 1)·m_k·D_j +
 * (D_{j-1} + 1)·m_s·D_j; task gates T·(in_j + bias)·(m_k + m_s); a shared
 * gate (in_j + bias)·E below the last level when m_s > 0. */
static size_t ple_formula(int d, int T, int mk, int ms, const int *D, int N, int th, int bias) {
    const int E = T * mk + ms;
    size_t p = (size_t)(d + 1) * E * D[0];
    for (int j = 1; j < N; j++)
        p += (size_t)T * (D[j - 1] + 1) * mk * D[j] + (size_t)(D[j - 1] + 1) * ms * D[j];
    for (int j = 0; j < N; j++) {
        const int in = j == 0 ? d : D[j - 1];
        p += (size_t)T * (in + bias) * (mk + ms);
        if (j < N - 1 && ms > 0) p += (size_t)(in + bias) * E;
    }
    return p + (size_t)T * ((D[N - 1] + 1) * th + th + 1);
}

static size_t count_of(const char *name, const model_config_t *c) {
    model_sizes_t sz;
    err_t err = {0};
    ck_assert_msg(model_sizes(name, c, &sz, &err) == 0, "%s", err.msg);
    model_t *m;
    ck_assert_int_eq(model_new(&m, name, c, 1, &err), 0);
    ck_assert_uint_eq(m->n_params, sz.n_params);
    model_free(m);
    return sz.n_params;
}

START_TEST(test_parameter_counts) {
    model_config_t c;
    /* Defaults, d = 100, T = 2: ml_mmoe 2 levels of 8 experts x 16:
     * 101·128 + 8·17·16 + 100·64 + 100·16 + 2·(17·8 + 9) = 23394;
     * ple 2 levels, 3 task + 2 shared experts x 16 (E = 8):
     * 101·128 + 2·17·48 + 17·32 + 2·100·5 + 100·8 + 2·16·5 + 290 = 17354;
     * cgc: 101·128 + 2·100·5 + 290 = 14218. */
    model_config_default(&c, model_find("ml_mmoe"));
    ck_assert_uint_eq(count_of("ml_mmoe", &c), 23394);
    model_config_default(&c, model_find("ple"));
    ck_assert_uint_eq(count_of("ple", &c), 17354);
    model_config_default(&c, model_find("cgc"));
    ck_assert_uint_eq(count_of("cgc", &c), 14218);
    /* Other shapes against the formulas: widths per level, T up to 8. */
    for (int T = 2; T <= 8; T += 3)
        for (int L = 1; L <= 3; L++)
            for (int bias = 0; bias <= 1; bias++) {
                const int D[] = {4, 5, 3};
                c = small("ml_mmoe", T, L);
                set_hp(&c, "ml_mmoe", "gate_bias", bias);
                ck_assert_uint_eq(count_of("ml_mmoe", &c),
                                  ml_mmoe_formula(FX_D, T, 3, D, L, 3, bias));
                for (int ms = 0; ms <= 2; ms += 2) {
                    c = small("ple", T, L);
                    set_hp(&c, "ple", "gate_bias", bias);
                    set_hp(&c, "ple", "shared_experts", ms);
                    ck_assert_uint_eq(count_of("ple", &c),
                                      ple_formula(FX_D, T, 2, ms, D, L, 3, bias));
                }
            }
    /* expert_hidden2 = 0 means "as level 1"; expert_hidden3 = 0 "as level 2". */
    c = small("ml_mmoe", 2, 3);
    set_hp(&c, "ml_mmoe", "expert_hidden2", 0);
    set_hp(&c, "ml_mmoe", "expert_hidden3", 0);
    const int same[] = {4, 4, 4};
    ck_assert_uint_eq(count_of("ml_mmoe", &c), ml_mmoe_formula(FX_D, 2, 3, same, 3, 3, 0));
}
END_TEST

/* More levels than the blocks hold: a clean ERR_USAGE from model_new (the
 * key's declared range already refuses it from a sweep file). */
START_TEST(test_bad_levels) {
    for (int i = 0; i < 2; i++) {
        const char *name = i ? "ple" : "ml_mmoe";
        model_config_t c = small(name, 2, 1);
        err_t err = {0};
        ck_assert_int_eq(model_config_set(&c, model_find(name), "levels", 6, &err), -1);
        c.hp[model_hp_find(model_find(name), "levels")] = 6;
        model_t *m = NULL;
        ck_assert_int_eq(model_new(&m, name, &c, 1, &err), -1);
        ck_assert_int_eq(err.kind, ERR_USAGE);
        ck_assert_msg(strstr(err.msg, "levels = 6: at most 5 levels"), "%s", err.msg);
        ck_assert_ptr_null(m);
    }
}
END_TEST

/* ---- command line ---- */

/* "parameters: N" of mtlab train's output. */
static size_t printed_params(const char *out) {
    const char *at = strstr(out, "\nparameters: ");
    ck_assert_ptr_nonnull(at);
    return (size_t)strtoull(at + 13, NULL, 10);
}

/* T = 8 tasks, three of them binary, in two correlated groups: each family
 * trains (a short run) to finite losses below those of predicting the
 * training mean, with the parameter count of the formula. */
START_TEST(test_eight_tasks_mixed) {
    static const char *const names[] = {"ml_mmoe", "ple", "cgc"};
    const char *name = names[_i];
    char model[32];
    snprintf(model, sizeof model, "model.name=%s", name);
    const char *args[] = {"train",
                          model,
                          "data.tasks=8",
                          "data.binary=2 5 7",
                          "data.groups=4 4",
                          "data.train=10000",
                          "data.validation=200",
                          "data.test=1000",
                          "train.steps=300",
                          "train.eval_every=300",
                          NULL};
    char *out, *err;
    ck_assert_msg(run_mtlab(&out, &err, args) == 0, "%s: %s", name, err);
    model_config_t c;
    model_config_default(&c, model_find(name));
    c.tasks = 8;
    ck_assert_uint_eq(printed_params(out), count_of(name, &c));
    /* "final test loss: ... total X" and "predicting the training mean: ... total Y" */
    const char *fin = strstr(out, "final test loss:"), *base = strstr(out, "predicting the");
    ck_assert_ptr_nonnull(fin);
    ck_assert_ptr_nonnull(base);
    const double total = strtod(strstr(fin, "total ") + 6, NULL),
                 baseline = strtod(strstr(base, "total ") + 6, NULL);
    ck_assert_msg(isfinite(total) && total < 0.95 * baseline, "%s: test loss %g, baseline %g", name,
                  total, baseline);
    ck_assert_ptr_nonnull(strstr(out, "/t8 ")); /* a gate per task, printed */
    free(out);
    free(err);
}
END_TEST

/* `mtlab train --params` prints the configured model's count and nothing
 * else, without training; with --target N --width KEY the KEY value whose
 * count is closest to N. */
START_TEST(test_params_option) {
    char *out, *err;
    const char *plain[] = {"train", "model.name=ple", "--params", NULL};
    ck_assert_int_eq(run_mtlab(&out, &err, plain), 0);
    ck_assert_str_eq(out, "17354\n");
    free(out);
    free(err);
    const char *shaped[] = {"train",
                            "model.name=ml_mmoe",
                            "model.levels=3",
                            "model.experts=3",
                            "model.expert_hidden=4",
                            "model.expert_hidden2=5",
                            "model.expert_hidden3=3",
                            "model.tower_hidden=3",
                            "data.tasks=3",
                            "data.dim=5",
                            "model.gate_bias=on",
                            "--params",
                            NULL};
    ck_assert_int_eq(run_mtlab(&out, &err, shaped), 0);
    const int D[] = {4, 5, 3};
    char want[64];
    snprintf(want, sizeof want, "%zu\n", ml_mmoe_formula(5, 3, 3, D, 3, 3, 1));
    ck_assert_str_eq(out, want);
    free(out);
    free(err);
    /* ple at mmoe's default size (14818 parameters): no neighbour of the
     * solver's width comes closer. */
    const char *solve[] = {"train", "model.name=ple", "--params",      "--target",
                           "14818", "--width",        "expert_hidden", NULL};
    ck_assert_int_eq(run_mtlab(&out, &err, solve), 0);
    int width = 0;
    size_t count = 0;
    ck_assert_int_eq(sscanf(out, "model.expert_hidden=%d parameters=%zu", &width, &count), 2);
    model_config_t c;
    model_config_default(&c, model_find("ple"));
    set_hp(&c, "ple", "expert_hidden", width);
    ck_assert_uint_eq(count_of("ple", &c), count);
    const double gap = fabs((double)count - 14818);
    for (int w = width - 1; w <= width + 1; w += 2) {
        set_hp(&c, "ple", "expert_hidden", w);
        ck_assert_msg(fabs((double)count_of("ple", &c) - 14818) >= gap, "width %d is closer", w);
    }
    free(out);
    free(err);
    const char *bad_width[] = {"train", "model.name=cgc", "--params",      "--target",
                               "100",   "--width",        "bottom_hidden", NULL};
    ck_assert_int_eq(run_mtlab(&out, &err, bad_width), 2);
    ck_assert_ptr_nonnull(strstr(err, "model cgc has no integer key 'bottom_hidden'"));
    free(out);
    free(err);
    const char *no_params[] = {"train", "model.name=cgc", "--target", "100", NULL};
    ck_assert_int_eq(run_mtlab(&out, &err, no_params), 2);
    ck_assert_ptr_nonnull(strstr(err, "--target and --width go with --params"));
    ck_assert_str_eq(out, "");
    free(out);
    free(err);
}
END_TEST

/* A sweep of both multi-level families (levels 2, per-level widths, gate
 * bias on, a binary task among three) stores each trial's parameter count
 * and every gate with its level and owner; `mtlab show`'s command reproduces
 * each trial's final test loss bit for bit. */
START_TEST(test_sweep_records_and_reproduces) {
    char *dir = test_tmpdir();
    char *ini = test_write_file(dir, "f.ini",
                                "[experiment]\nname = fusion1\nrepeats = 1\nseed = 5\n"
                                "[data]\ntasks = 3\nbinary = 2\ngroups = 2 1\ntrain = 1000\n"
                                "validation = 100\ntest = 200\n"
                                "[model]\nname = ml_mmoe, ple\nlevels = 2\nexperts = 3\n"
                                "expert_hidden = 6\nexpert_hidden2 = 4\ngate_bias = on\n"
                                "[train]\nsteps = 30\neval_every = 30\n");
    char *db = test_join(dir, "r.db");
    const char *run[] = {"run", ini, "--db", db, "--jobs", "1", "--quiet", NULL};
    char *out, *err;
    ck_assert_msg(run_mtlab(&out, &err, run) == 0, "%s", err);
    free(out);
    free(err);
    for (int id = 1; id <= 2; id++) {
        char sql[256];
        snprintf(sql, sizeof sql, "SELECT count(DISTINCT gate) FROM gate WHERE trial_id = %d", id);
        const double gates = test_query(db, sql);
        snprintf(sql, sizeof sql,
                 "SELECT count(DISTINCT gate) FROM gate WHERE trial_id = %d AND level = 2 AND "
                 "owner LIKE 't%%'",
                 id);
        ck_assert_int_eq((int)test_query(db, sql), 3); /* one per task at the last level */
        snprintf(sql, sizeof sql, "SELECT n_params FROM trial WHERE id = %d", id);
        const double params = test_query(db, sql);
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM param WHERE trial_id = %d AND key = 'model.name' AND "
                 "value = 'ple'",
                 id);
        const bool ple = test_query(db, sql) == 1;
        const int D[] = {6, 4};
        /* ml_mmoe: 3 gates per level; ple: 3 task gates + 1 shared, then 3 */
        ck_assert_int_eq((int)gates, ple ? 7 : 6);
        ck_assert_uint_eq((size_t)params, ple ? ple_formula(100, 3, 3, 2, D, 2, 8, 1)
                                              : ml_mmoe_formula(100, 3, 3, D, 2, 8, 1));
        char *train_out = test_rerun_shown(db, id);
        ck_assert_uint_eq(printed_params(train_out), (size_t)params);
        snprintf(sql, sizeof sql,
                 "SELECT value FROM metric WHERE trial_id = %d AND name = 'test/loss/total' "
                 "ORDER BY step DESC LIMIT 1",
                 id);
        const double stored = test_query(db, sql);
        const char *fin = strstr(train_out, "final test loss:");
        ck_assert_ptr_nonnull(fin);
        ck_assert_msg(strtod(strstr(fin, "total ") + 6, NULL) == stored, "trial %d: %s", id,
                      train_out);
        free(train_out);
    }
    free(ini);
    free(db);
    free(dir);
}
END_TEST

Suite *fusion1_suite(void) {
    Suite *s = suite_create("fusion1");
    TCase *tc = tcase_create("models");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_gradients, 0, N_GRAD_CASES);
    tcase_add_loop_test(tc, test_forward_equations, 0, (int)(sizeof eq_cases / sizeof eq_cases[0]));
    tcase_add_loop_test(tc, test_ml_mmoe_one_level_is_mmoe, 0, 4);
    tcase_add_loop_test(tc, test_ple_one_level_is_cgc, 0, 4);
    tcase_add_loop_test(tc, test_gates_registered, 0, 2);
    tcase_add_test(tc, test_parameter_counts);
    tcase_add_test(tc, test_bad_levels);
    suite_add_tcase(s, tc);
    TCase *cli = tcase_create("cli");
    tcase_set_timeout(cli, 120);
    tcase_add_loop_test(cli, test_eight_tasks_mixed, 0, 3);
    tcase_add_test(cli, test_params_option);
    tcase_add_test(cli, test_sweep_records_and_reproduces);
    suite_add_tcase(s, cli);
    return s;
}
