/* test_fusion2.c -- the AdaTT families (adatt_sp, adatt; AdaTT §3):
 * gradients of every tensor, the forward pass against a naive
 * implementation of the paper's equations, the reductions of issue 11,
 * parameter counts, native-weight init, gate registration, and a short
 * training run / sweep whose gate records are read back from the store. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/loss.h"
#include "gradcheck.h"
#include "models/model.h"
#include "testutil.h"

/* ---- configurations ---- */

typedef struct {
    const char *family;
    int T, L, m, ms; /* tasks, levels, task experts, shared experts (adatt only) */
    int native_lf;   /* 0 off, 1 on */
    int native_init; /* 0 paper, 1 ones */
    int gate_bias;
} shape_t;

#define MAX_B 6
#define DIM   4

/* A small configuration of `s`: d = 4, widths 4, 3, 3 (level 3 "as below"),
 * towers of 3, at most 6 rows. */
static model_config_t config_of(const shape_t *s) {
    const model_ops_t *ops = model_find(s->family);
    ck_assert_ptr_nonnull(ops);
    model_config_t c;
    model_config_default(&c, ops);
    c.input_dim = DIM;
    c.tasks = s->T;
    c.max_batch = MAX_B;
    err_t err = {0};
    const struct {
        const char *name;
        double value;
    } hps[] = {{"expert_hidden", 4},
               {"expert_hidden2", 3},
               {"expert_hidden3", 0},
               {"expert_hidden4", 0},
               {"levels", s->L},
               {"task_experts", s->m},
               {"tower_hidden", 3},
               {"native_lf", s->native_lf},
               {"native_init", s->native_init},
               {"gate_bias", s->gate_bias}};
    for (size_t i = 0; i < sizeof hps / sizeof hps[0]; i++)
        ck_assert_msg(model_config_set(&c, ops, hps[i].name, hps[i].value, &err) == 0, "%s",
                      err.msg);
    if (strcmp(s->family, "adatt") == 0)
        ck_assert_int_eq(model_config_set(&c, ops, "shared_experts", s->ms, &err), 0);
    else
        ck_assert_int_eq(s->ms, 0);
    return c;
}

static model_t *new_model(const shape_t *s, uint64_t seed) {
    model_config_t c = config_of(s);
    model_t *m;
    err_t err = {0};
    ck_assert_msg(model_new(&m, s->family, &c, seed, &err) == 0, "%s", err.msg);
    return m;
}

/* Random generic inputs and parameters (no zero biases, native weights away
 * from 1), so no check sits at a special point. */
static void randomise(model_t *m, real *x, uint64_t seed) {
    rng_t r;
    rng_seed(&r, seed, 77);
    for (int i = 0; i < MAX_B * m->cfg.input_dim; i++)
        x[i] = rng_normal(&r);
    for (size_t i = 0; i < m->n_params; i++)
        m->params[i] += 0.3 * rng_normal(&r);
}

static real *tensor(const model_t *m, const char *fmt, int a, const char *b) {
    char name[64];
    snprintf(name, sizeof name, fmt, a, b);
    int t = model_tensor_index(m, name);
    return t < 0 ? NULL : model_param(m, t);
}

/* Module `mod` (k-th, n experts from column `first`) at level l (0-based):
 * its expert layer W (row stride *ldw, expert i at column *col + i·D) and
 * bias (at *col too); its gate Wg (row stride *ldg, expert j at column
 * *gcol + j) and bias.  Level 1 holds every module in one layer
 * ("l1.experts", "l1.gates": module k's gate is the k-th of G); above, each
 * module has its own ("l2.t1.experts", "l2.t1.gate"). */
typedef struct {
    const real *W, *b, *Wg, *bg;
    int ldw, col, ldg, gcol;
} module_layers_t;

static module_layers_t module_layers(const model_t *m, int l, const char *mod, int k, int n,
                                     int first, int D, int N, int G) {
    module_layers_t r;
    if (l == 0) {
        r.W = tensor(m, "l%d%s.experts.W", 1, "");
        r.b = tensor(m, "l%d%s.experts.b", 1, "");
        r.Wg = tensor(m, "l%d%s.gates.W", 1, "");
        r.bg = tensor(m, "l%d%s.gates.b", 1, "");
        r.ldw = N * D;
        r.col = first * D;
        r.ldg = G * N;
        r.gcol = k * N;
    } else {
        r.W = tensor(m, "l%d.%s.experts.W", l + 1, mod);
        r.b = tensor(m, "l%d.%s.experts.b", l + 1, mod);
        r.Wg = tensor(m, "l%d.%s.gate.W", l + 1, mod);
        r.bg = tensor(m, "l%d.%s.gate.b", l + 1, mod);
        r.ldw = n * D;
        r.col = 0;
        r.ldg = N;
        r.gcol = 0;
    }
    ck_assert(r.W && r.b);
    return r;
}

static int hp(const model_t *m, const char *name, int def) {
    return (int)model_hp_value(m, name, def);
}

/* ---- a naive forward pass, one example at a time, from AdaTT §3 ---- */

#define REF_MAX 64

/* pred[B, T] of AdaTT written straight from the paper, by loops over scalars:
 *   f⁰_k = x (Eq 2);  E^l_{k,i} = relu(f^{l-1}_k W^l_{k,i} + b) (Eq 4), stacked
 *   task by task, shared last (Eq 5-6);  G^l_k = softmax(f^{l-1}_k Wg^l_k)
 *   (Eq 10);  f^l_k = (pad(v^l_k) + G^l_k)ᵀ E^l (Eq 11; v = 1 for a module
 *   of one expert under native_init = paper, no v with native_lf = off);
 *   the shared module has no fusion at the last level (§3.2);
 *   y_t = tower_t(f^L_t) (Eq 1). */
static void reference_forward(const model_t *m, const real *x, int B, real *pred) {
    const int d = m->cfg.input_dim, T = m->cfg.tasks, L = hp(m, "levels", 1),
              mt = hp(m, "task_experts", 1), ms = hp(m, "shared_experts", 0),
              th = hp(m, "tower_hidden", 1), native_lf = hp(m, "native_lf", 1);
    const int K = T + (ms > 0), N = T * mt + ms;
    int width[5] = {hp(m, "expert_hidden", 1), hp(m, "expert_hidden2", 0),
                    hp(m, "expert_hidden3", 0), hp(m, "expert_hidden4", 0), 0};
    for (int l = 1; l < 5; l++)
        if (width[l] == 0) width[l] = width[l - 1];
    for (int b = 0; b < B; b++) {
        double f[REF_MAX][REF_MAX], next[REF_MAX][REF_MAX] = {{0}}, E[REF_MAX][REF_MAX];
        for (int k = 0; k < K; k++)
            for (int a = 0; a < d; a++)
                f[k][a] = x[b * d + a];
        int in = d;
        for (int l = 0; l < L; l++) {
            const int D = width[l], G = T + (ms > 0 && l < L - 1); /* gated modules */
            for (int k = 0; k < K; k++) {
                const char *mod = NULL;
                char name[16];
                if (k < T) snprintf(name, sizeof name, "t%d", k + 1);
                mod = k < T ? name : "shared";
                const int n = k < T ? mt : ms, first = k < T ? k * mt : T * mt;
                const module_layers_t ly = module_layers(m, l, mod, k, n, first, D, N, G);
                for (int i = 0; i < n; i++)
                    for (int u = 0; u < D; u++) {
                        double z = ly.b[ly.col + i * D + u];
                        for (int a = 0; a < in; a++)
                            z += f[k][a] * ly.W[a * ly.ldw + ly.col + i * D + u];
                        E[first + i][u] = z > 0 ? z : 0;
                    }
            }
            for (int k = 0; k < K; k++) {
                if (k == T && l == L - 1) continue; /* no shared fusion at the last level */
                char name[16];
                if (k < T) snprintf(name, sizeof name, "t%d", k + 1);
                const char *mod = k < T ? name : "shared";
                const int n = k < T ? mt : ms, first = k < T ? k * mt : T * mt;
                const module_layers_t ly = module_layers(m, l, mod, k, n, first, D, N, G);
                const real *v = tensor(m, "l%d.%s.native", l + 1, mod);
                ck_assert(ly.Wg);
                double z[REF_MAX], w[REF_MAX], zmax = -INFINITY, sum = 0;
                for (int j = 0; j < N; j++) {
                    z[j] = ly.bg ? ly.bg[ly.gcol + j] : 0;
                    for (int a = 0; a < in; a++)
                        z[j] += f[k][a] * ly.Wg[a * ly.ldg + ly.gcol + j];
                    zmax = fmax(zmax, z[j]);
                }
                for (int j = 0; j < N; j++)
                    sum += (w[j] = exp(z[j] - zmax));
                for (int j = 0; j < N; j++)
                    w[j] /= sum;
                if (native_lf) /* NativeExpertLF (Eq 8), padded (Eq 11) */
                    for (int i = 0; i < n; i++)
                        w[first + i] += v ? v[i] : 1.0;
                for (int u = 0; u < D; u++) {
                    next[k][u] = 0;
                    for (int j = 0; j < N; j++)
                        next[k][u] += w[j] * E[j][u];
                }
            }
            memcpy(f, next, sizeof f);
            in = D;
        }
        for (int t = 0; t < T; t++) {
            const real *W1 = tensor(m, "tower%d.hidden.W", t + 1, ""),
                       *b1 = tensor(m, "tower%d.hidden.b", t + 1, ""),
                       *W2 = tensor(m, "tower%d.out.W", t + 1, ""),
                       *b2 = tensor(m, "tower%d.out.b", t + 1, "");
            double y = b2[0];
            for (int h = 0; h < th; h++) {
                double z = b1[h];
                for (int a = 0; a < in; a++)
                    z += f[t][a] * W1[a * th + h];
                y += (z > 0 ? z : 0) * W2[h];
            }
            pred[b * T + t] = y;
        }
    }
}

static double max_rel_diff(const real *a, const real *b, int n) {
    double e = 0;
    for (int i = 0; i < n; i++)
        e = fmax(e, fabs(a[i] - b[i]) / fmax(1, fabs(b[i])));
    return e;
}

/* Shapes covering every code path: both families, T = 2 and 3, levels
 * 1-3, native_lf on (learned and fixed unit weights) and off, native_init
 * ones, shared experts 0 / 1 / 2, gate bias. */
static const shape_t shapes[] = {
    {"adatt_sp", 2, 1, 1, 0, 1, 0, 0}, {"adatt_sp", 2, 2, 2, 0, 1, 0, 0},
    {"adatt_sp", 3, 3, 2, 0, 1, 0, 1}, {"adatt_sp", 3, 1, 2, 0, 0, 0, 0},
    {"adatt_sp", 2, 2, 1, 0, 0, 0, 1}, {"adatt_sp", 3, 3, 1, 0, 1, 1, 0},
    {"adatt_sp", 3, 2, 3, 0, 0, 0, 0}, {"adatt", 2, 1, 2, 0, 1, 0, 0},
    {"adatt", 3, 1, 2, 2, 1, 0, 0},    {"adatt", 2, 2, 1, 1, 1, 0, 1},
    {"adatt", 3, 3, 2, 2, 1, 0, 0},    {"adatt", 2, 3, 1, 2, 0, 0, 0},
    {"adatt", 3, 2, 1, 1, 1, 1, 1},    {"adatt", 2, 2, 2, 0, 0, 0, 0},
    {"adatt_sp", 2, 5, 1, 0, 1, 0, 0}, {"adatt", 2, 5, 1, 1, 1, 0, 0}, /* level 5 as wide as 4 */
};
#define N_SHAPES ((int)(sizeof shapes / sizeof shapes[0]))

static const char *shape_str(const shape_t *s, char *out, size_t n) {
    snprintf(out, n, "%s T=%d L=%d m=%d ms=%d native_lf=%d native_init=%d gate_bias=%d", s->family,
             s->T, s->L, s->m, s->ms, s->native_lf, s->native_init, s->gate_bias);
    return out;
}

/* Pins Eq 1-11 and §3.2 as written above: the model's forward equals the
 * naive one to 1e-12 (double) for every shape. */
START_TEST(test_forward_matches_paper) {
    const shape_t *s = &shapes[_i];
    char what[160];
    model_t *m = new_model(s, 100 + _i);
    real x[MAX_B * DIM], pred[MAX_B * 3], ref[MAX_B * 3];
    randomise(m, x, _i);
    model_forward(m, x, MAX_B, pred, MODEL_EVAL);
    reference_forward(m, x, MAX_B, ref);
    double e = max_rel_diff(pred, ref, MAX_B * s->T);
    ck_assert_msg(e < 1e-12, "%s: forward differs from Eq 11 by %g", shape_str(s, what, 160), e);
    model_free(m);
}
END_TEST

/* ---- gradients ---- */

typedef struct {
    model_t *m;
    real x[MAX_B * DIM], y[MAX_B * 3], pred[MAX_B * 3], dpred[MAX_B * 3];
    task_kind_t kind[3];
    real weight[3];
} fixture_t;

static double total_loss(void *ctx) {
    fixture_t *f = ctx;
    const int T = f->m->cfg.tasks;
    model_forward(f->m, f->x, MAX_B, f->pred, MODEL_EVAL);
    double sum = 0;
    for (int k = 0; k < T; k++)
        sum += f->weight[k] * loss_task(f->kind[k], f->pred, f->y, MAX_B, T, k);
    return sum;
}

/* Every tensor's analytic gradient (mixed MSE and BCE losses) against
 * central differences; a second backward doubles it (accumulation). */
START_TEST(test_gradients) {
    const shape_t *s = &shapes[_i];
    char what[160];
    fixture_t f = {.m = new_model(s, 7 + _i),
                   .kind = {TASK_REGRESSION, TASK_BINARY, TASK_REGRESSION},
                   .weight = {1.0, 0.5, 2.0}};
    model_t *m = f.m;
    const int T = s->T;
    randomise(m, f.x, 50 + _i);
    rng_t r;
    rng_seed(&r, _i, 5);
    for (int i = 0; i < MAX_B * T; i++)
        f.y[i] = i % T == 1 ? rng_uniform(&r) > 0.5 : rng_normal(&r);
    model_zero_grad(m);
    model_forward(m, f.x, MAX_B, f.pred, MODEL_TRAIN);
    for (int k = 0; k < T; k++)
        loss_task_grad(f.kind[k], f.pred, f.y, MAX_B, T, k, f.weight[k], f.dpred);
    model_backward(m, f.x, MAX_B, f.dpred);
    real *analytic = malloc(sizeof(real) * m->n_params);
    memcpy(analytic, m->grads, sizeof(real) * m->n_params);
    for (int t = 0; t < m->n_tensors; t++) {
        const tensor_t *ts = &m->tensors[t];
        size_t n = (size_t)ts->rows * ts->cols, worst = 0;
        double e =
            gradcheck(total_loss, &f, m->params + ts->offset, analytic + ts->offset, n, &worst);
        ck_assert_msg(e < GRADCHECK_TOL, "%s: tensor %s element %zu: relative error %.3g",
                      shape_str(s, what, 160), ts->name, worst, e);
    }
    model_forward(m, f.x, MAX_B, f.pred, MODEL_TRAIN);
    model_backward(m, f.x, MAX_B, f.dpred);
    for (size_t i = 0; i < m->n_params; i++)
        ck_assert(fabs(m->grads[i] - 2 * analytic[i]) <= 1e-12 * (1 + fabs(analytic[i])));
    free(analytic);
    model_free(m);
}
END_TEST

/* ---- reductions ---- */

/* Issue 11: adatt_sp with one expert per task, one level and native_lf =
 * off is a mixture of the T experts with task gates -- AllExpertGF alone
 * (Eq 9-10):  y_t = tower_t(Σ_j softmax(x Wg_t)_j relu(x W_j + b_j)).
 * The reference is computed by hand from the model's weights, and equals
 * mmoe (MMoE Eq 5-7) with n = T experts given the same weights. */
START_TEST(test_single_expert_is_task_gated_mixture) {
    const int T = 3, D = 4;
    const shape_t s = {"adatt_sp", T, 1, 1, 0, 0, 0, 0};
    model_t *m = new_model(&s, 3);
    real x[MAX_B * DIM], pred[MAX_B * 3], ref[MAX_B * 3], mmoe_pred[MAX_B * 3];
    randomise(m, x, 3);
    model_forward(m, x, MAX_B, pred, MODEL_EVAL);
    for (int b = 0; b < MAX_B; b++) {
        double E[3][4];
        for (int j = 0; j < T; j++) { /* E_j = relu(x W_j + b_j) */
            const module_layers_t ly = module_layers(m, 0, NULL, j, 1, j, D, T, T);
            for (int u = 0; u < D; u++) {
                double z = ly.b[ly.col + u];
                for (int a = 0; a < DIM; a++)
                    z += x[b * DIM + a] * ly.W[a * ly.ldw + ly.col + u];
                E[j][u] = fmax(z, 0);
            }
        }
        for (int t = 0; t < T; t++) {
            const module_layers_t ly = module_layers(m, 0, NULL, t, 1, t, D, T, T);
            double z[3], p[3], sum = 0, f[4] = {0};
            for (int j = 0; j < T; j++) {
                z[j] = 0;
                for (int a = 0; a < DIM; a++)
                    z[j] += x[b * DIM + a] * ly.Wg[a * ly.ldg + ly.gcol + j];
            }
            for (int j = 0; j < T; j++)
                sum += exp(z[j]);
            for (int j = 0; j < T; j++)
                p[j] = exp(z[j]) / sum;
            for (int u = 0; u < D; u++)
                for (int j = 0; j < T; j++)
                    f[u] += p[j] * E[j][u];
            const real *W1 = tensor(m, "tower%d.hidden.W", t + 1, ""),
                       *b1 = tensor(m, "tower%d.hidden.b", t + 1, ""),
                       *W2 = tensor(m, "tower%d.out.W", t + 1, ""),
                       *b2 = tensor(m, "tower%d.out.b", t + 1, "");
            double y = b2[0];
            for (int h = 0; h < 3; h++) {
                double zh = b1[h];
                for (int u = 0; u < D; u++)
                    zh += f[u] * W1[u * 3 + h];
                y += fmax(zh, 0) * W2[h];
            }
            ref[b * T + t] = y;
        }
    }
    double e = max_rel_diff(pred, ref, MAX_B * T);
    ck_assert_msg(e < 1e-12, "adatt_sp (m = 1, L = 1, native_lf = off) vs Eq 9-10: %g", e);

    /* The same weights in mmoe: its experts.W [d, T·D] holds expert j at
     * columns [j·D, (j+1)·D) as l1.experts.W does, and its gates.W [d, T·T]
     * gate t at columns [t·T, (t+1)·T) as l1.gates.W: copied tensor by tensor
     * (the towers have the same names too). */
    model_config_t c;
    const model_ops_t *ops = model_find("mmoe");
    model_config_default(&c, ops);
    c.input_dim = DIM;
    c.tasks = T;
    c.max_batch = MAX_B;
    test_set_hp(&c, "mmoe", "experts", T);
    test_set_hp(&c, "mmoe", "expert_hidden", D);
    test_set_hp(&c, "mmoe", "tower_hidden", 3);
    model_t *mm;
    err_t err = {0};
    ck_assert_int_eq(model_new(&mm, "mmoe", &c, 1, &err), 0);
    static const char *const same[][2] = {
        {"experts.W", "l1.experts.W"}, {"experts.b", "l1.experts.b"}, {"gates.W", "l1.gates.W"}};
    for (int i = 0; i < 3; i++) {
        const int to = model_tensor_index(mm, same[i][0]), from = model_tensor_index(m, same[i][1]);
        ck_assert(to >= 0 && from >= 0);
        ck_assert_int_eq(mm->tensors[to].rows, m->tensors[from].rows);
        ck_assert_int_eq(mm->tensors[to].cols, m->tensors[from].cols);
        memcpy(model_param(mm, to), model_param(m, from),
               sizeof(real) * mm->tensors[to].rows * mm->tensors[to].cols);
    }
    for (int t = 0; t < mm->n_tensors; t++) {
        const tensor_t *ts = &mm->tensors[t];
        if (strncmp(ts->name, "tower", 5) != 0) continue;
        const int i = model_tensor_index(m, ts->name);
        ck_assert_int_ge(i, 0);
        memcpy(model_param(mm, t), model_param(m, i), sizeof(real) * ts->rows * ts->cols);
    }
    model_forward(mm, x, MAX_B, mmoe_pred, MODEL_EVAL);
    e = max_rel_diff(pred, mmoe_pred, MAX_B * T);
    ck_assert_msg(e < 1e-12, "adatt_sp (m = 1, L = 1, native_lf = off) vs mmoe: %g", e);
    model_free(mm);
    model_free(m);
}
END_TEST

/* Issue 11 / AdaTT §3.2 ("when there are no shared modules, general AdaTT
 * falls back to AdaTT-sp"): adatt with shared_experts = 0 declares the same
 * tensors and gates as adatt_sp, draws the same initial weights, and with
 * the same (random) weights predicts the same values to 1e-12 and gets the
 * same gradients -- for levels 1-3, native_lf on and off. */
START_TEST(test_no_shared_is_adatt_sp) {
    static const int levels[] = {1, 2, 3}, natives[] = {1, 0};
    const int L = levels[_i % 3], nlf = natives[_i / 3];
    const shape_t sp = {"adatt_sp", 3, L, 2, 0, nlf, 0, _i % 2},
                  gen = {"adatt", 3, L, 2, 0, nlf, 0, _i % 2};
    model_t *a = new_model(&sp, 9), *b = new_model(&gen, 9);
    ck_assert_int_eq(a->n_tensors, b->n_tensors);
    ck_assert_uint_eq(a->n_params, b->n_params);
    for (int t = 0; t < a->n_tensors; t++) {
        ck_assert_str_eq(a->tensors[t].name, b->tensors[t].name);
        ck_assert_int_eq(a->tensors[t].rows, b->tensors[t].rows);
        ck_assert_int_eq(a->tensors[t].cols, b->tensors[t].cols);
    }
    ck_assert(memcmp(a->params, b->params, sizeof(real) * a->n_params) == 0);
    real x[MAX_B * DIM], pa[MAX_B * 3], pb[MAX_B * 3], dpred[MAX_B * 3];
    randomise(a, x, 4);
    memcpy(b->params, a->params, sizeof(real) * a->n_params);
    model_forward(a, x, MAX_B, pa, MODEL_TRAIN);
    model_forward(b, x, MAX_B, pb, MODEL_TRAIN);
    ck_assert(max_rel_diff(pa, pb, MAX_B * 3) < 1e-12);
    for (int i = 0; i < MAX_B * 3; i++)
        dpred[i] = 0.1 * (i % 7) - 0.3;
    model_zero_grad(a);
    model_zero_grad(b);
    model_backward(a, x, MAX_B, dpred);
    model_backward(b, x, MAX_B, dpred);
    ck_assert(max_rel_diff(a->grads, b->grads, (int)a->n_params) < 1e-12);
    const model_gate_t *ga, *gb;
    ck_assert_int_eq(model_gates(a, &ga), model_gates(b, &gb));
    for (int g = 0; g < model_gates(a, &ga); g++)
        ck_assert_str_eq(ga[g].name, gb[g].name);
    model_free(a);
    model_free(b);
}
END_TEST

/* With one expert per task and native_lf = on, the native expert gets the
 * fixed unit weight (§3.1.1, "falls back to E_t"): f_t = E_t + G_tᵀE, so the
 * effective weights differ from the softmax by exactly 1 at the task's own
 * expert and 0 elsewhere; with native_lf = off they are the softmax. */
START_TEST(test_gate_views) {
    const shape_t s = shapes[_i];
    char what[160];
    shape_str(&s, what, sizeof what);
    model_t *m = new_model(&s, 21);
    real x[MAX_B * DIM], pred[MAX_B * 3];
    randomise(m, x, 8);
    model_forward(m, x, MAX_B, pred, MODEL_EVAL);
    const model_gate_t *g;
    const int n = model_gates(m, &g), N = s.T * s.m + s.ms;
    /* Per level: T task modules, plus the shared one below the last level;
     * each a softmax gate then its effective weights. */
    int expect = 0;
    for (int l = 0; l < s.L; l++)
        expect += 2 * (s.T + (s.ms > 0 && l < s.L - 1));
    ck_assert_int_eq(n, expect);
    for (int i = 0; i < n; i += 2) {
        const model_gate_t *p = &g[i], *w = &g[i + 1];
        char name[40];
        snprintf(name, sizeof name, "l%d/%s", p->level, p->owner);
        ck_assert_str_eq(p->name, name);
        snprintf(name, sizeof name, "l%d/%s/weights", p->level, p->owner);
        ck_assert_str_eq(w->name, name);
        ck_assert_str_eq(w->owner, p->owner);
        ck_assert_int_eq(w->level, p->level);
        ck_assert_int_eq(p->kind, GATE_SOFTMAX);
        ck_assert_int_eq(w->kind, GATE_WEIGHTS);
        ck_assert_int_eq(p->experts, N);
        ck_assert_int_eq(w->experts, N);
        const bool shared = strcmp(p->owner, "shared") == 0;
        const int k = shared ? s.T : atoi(p->owner + 1) - 1, mk = shared ? s.ms : s.m,
                  first = shared ? s.T * s.m : k * s.m;
        char vname[48];
        snprintf(vname, sizeof vname, "l%d.%s.native", p->level, p->owner);
        const int vt = model_tensor_index(m, vname);
        /* learned native weights exactly when native_lf and (m > 1 or ones) */
        ck_assert_msg((vt >= 0) == (s.native_lf && (mk > 1 || s.native_init == 1)), "%s: %s", what,
                      vname);
        for (int b = 0; b < MAX_B; b++) {
            double sum = 0;
            for (int j = 0; j < N; j++) {
                const double pj = p->values[b * p->ld + j], wj = w->values[b * w->ld + j];
                sum += pj;
                ck_assert(pj > 0 && pj < 1);
                double native = 0;
                if (s.native_lf && j >= first && j < first + mk)
                    native = vt >= 0 ? model_param(m, vt)[j - first] : 1.0;
                ck_assert_msg(wj == pj + native, "%s: %s expert %d: %g != %g + %g", what, w->name,
                              j, wj, pj, native);
            }
            ck_assert(fabs(sum - 1) < 1e-12);
        }
    }
    model_free(m);
}
END_TEST

/* ---- parameter counts ---- */

/* The count by hand: per level l (inputs in_l: d, then D_{l-1}), E_tot =
 * T·m + m_s experts of in_l·D_l + D_l; T task gates (+ the shared one below
 * the last level) of in_l·E_tot (+ E_tot with gate_bias); the native
 * weights of each gated module that learns them; T towers of
 * D_L·th + th + th + 1. */
static size_t hand_count(int d, int T, int L, int m, int ms, const int *D, int th, int native_lf,
                         int ones, int bias) {
    size_t n = 0;
    const size_t N = (size_t)T * m + ms;
    for (int l = 0, in = d; l < L; in = D[l++]) {
        const int gated_shared = ms > 0 && l < L - 1;
        n += N * ((size_t)in * D[l] + D[l]);
        n += (size_t)(T + gated_shared) * (in * N + (bias ? N : 0));
        if (native_lf)
            n += (size_t)T * (m > 1 || ones ? m : 0) + (gated_shared && (ms > 1 || ones) ? ms : 0);
    }
    return n + (size_t)T * ((size_t)D[L - 1] * th + th + th + 1);
}

START_TEST(test_param_counts) {
    /* The defaults on the standard synthetic data (d = 100, T = 2; levels
     * 2, experts of 16, 2 per task, towers of 8), written out:
     *   adatt_sp: experts 4 (100·16+16) + 4 (16·16+16); gates 2·100·4 + 2·16·4;
     *             native 2·2 per level; towers 2 (16·8+8+8+1)
     *   adatt:    1 shared expert more per level (5 experts), a shared gate at
     *             level 1; its single expert has the fixed unit weight. */
    const struct {
        const char *name;
        size_t params;
    } defaults[] = {
        {"adatt_sp", 4 * 1616 + 4 * 272 + 800 + 128 + 8 + 2 * 145},
        {"adatt", 5 * 1616 + 5 * 272 + 3 * 500 + 2 * 80 + 8 + 2 * 145},
    };
    for (int i = 0; i < 2; i++) {
        model_config_t c;
        model_config_default(&c, model_find(defaults[i].name));
        model_t *m;
        err_t err = {0};
        ck_assert_int_eq(model_new(&m, defaults[i].name, &c, 1, &err), 0);
        ck_assert_msg(m->n_params == defaults[i].params, "%s: %zu, expected %zu", defaults[i].name,
                      m->n_params, defaults[i].params);
        model_free(m);
    }
    /* A grid: T 2..8, levels 1..5 with distinct widths, m, m_s, native
     * on/off/ones, gate bias; model_sizes and model_new agree with the hand
     * count (model_sizes on large configurations, without building). */
    const int widths[4] = {7, 5, 0, 3}, D[5] = {7, 5, 5, 3, 3};
    for (int T = 2; T <= 8; T += 3)
        for (int L = 1; L <= 5; L++)
            for (int m = 1; m <= 3; m += 2)
                for (int ms = 0; ms <= 2; ms++)
                    for (int v = 0; v < 3; v++) {
                        const char *family = ms == 0 && (L + v) % 2 ? "adatt_sp" : "adatt";
                        const model_ops_t *ops = model_find(family);
                        model_config_t c;
                        model_config_default(&c, ops);
                        c.input_dim = 11;
                        c.tasks = T;
                        c.max_batch = 4;
                        err_t err = {0};
                        const char *hw[4] = {"expert_hidden", "expert_hidden2", "expert_hidden3",
                                             "expert_hidden4"};
                        for (int l = 0; l < 4; l++)
                            ck_assert_int_eq(model_config_set(&c, ops, hw[l], widths[l], &err), 0);
                        ck_assert_int_eq(model_config_set(&c, ops, "levels", L, &err), 0);
                        ck_assert_int_eq(model_config_set(&c, ops, "task_experts", m, &err), 0);
                        if (ms)
                            ck_assert_int_eq(model_config_set(&c, ops, "shared_experts", ms, &err),
                                             0);
                        else if (model_hp_find(ops, "shared_experts") >= 0)
                            ck_assert_int_eq(model_config_set(&c, ops, "shared_experts", 0, &err),
                                             0);
                        ck_assert_int_eq(model_config_set(&c, ops, "tower_hidden", 6, &err), 0);
                        ck_assert_int_eq(model_config_set(&c, ops, "native_lf", v != 1, &err), 0);
                        ck_assert_int_eq(model_config_set(&c, ops, "native_init", v == 2, &err), 0);
                        ck_assert_int_eq(model_config_set(&c, ops, "gate_bias", v == 1, &err), 0);
                        const size_t expect =
                            hand_count(11, T, L, m, ms, D, 6, v != 1, v == 2, v == 1);
                        model_sizes_t sz;
                        ck_assert_int_eq(model_sizes(family, &c, &sz, &err), 0);
                        ck_assert_msg(sz.n_params == expect,
                                      "%s T=%d L=%d m=%d ms=%d v=%d: %zu, expected %zu", family, T,
                                      L, m, ms, v, sz.n_params, expect);
                        model_t *mod;
                        ck_assert_int_eq(model_new(&mod, family, &c, 1, &err), 0);
                        ck_assert_uint_eq(mod->n_params, expect);
                        ck_assert_int_eq(model_work_blocks(mod), 1); /* sizes covered build */
                        model_free(mod);
                    }
}
END_TEST

/* Unrepresentable shapes: a clean ERR_USAGE naming the quantity, from
 * model_sizes and model_new alike, before anything is allocated. */
START_TEST(test_overflow) {
    const model_ops_t *ops = model_find("adatt");
    model_config_t c;
    model_config_default(&c, ops);
    c.tasks = 16;
    err_t err = {0};
    ck_assert_int_eq(model_config_set(&c, ops, "task_experts", 4096, &err), 0);
    ck_assert_int_eq(model_config_set(&c, ops, "expert_hidden", 1e6, &err), 0);
    model_sizes_t sz;
    ck_assert_int_eq(model_sizes("adatt", &c, &sz, &err), -1);
    ck_assert_int_eq(err.kind, ERR_USAGE);
    ck_assert_msg(strstr(err.msg, "adatt: level 1: max_batch 128 x 65537 experts x 1000000 "
                                  "hidden units overflows"),
                  "%s", err.msg);
    model_t *m = NULL;
    err_t new_err = {0};
    ck_assert_int_eq(model_new(&m, "adatt", &c, 1, &new_err), -1);
    ck_assert_ptr_null(m);
    ck_assert_str_eq(new_err.msg, err.msg);
}
END_TEST

/* ---- native-weight init ---- */

/* native_init = paper draws learned native weights U(±√(1/m)) (the
 * reference code), ones sets them to 1; either way every other tensor keeps
 * the values model.init gave it (they come from their own stream), and the
 * same seed gives the same bits. */
START_TEST(test_native_init) {
    const shape_t paper = {"adatt", 3, 2, 4, 2, 1, 0, 0}, ones = {"adatt", 3, 2, 4, 2, 1, 1, 0};
    model_t *a = new_model(&paper, 12), *a2 = new_model(&paper, 12), *b = new_model(&ones, 12);
    ck_assert(memcmp(a->params, a2->params, sizeof(real) * a->n_params) == 0);
    ck_assert_uint_eq(a->n_params, b->n_params);
    int natives = 0;
    double sq = 0;
    for (int t = 0; t < a->n_tensors; t++) {
        const tensor_t *ts = &a->tensors[t];
        const size_t n = (size_t)ts->rows * ts->cols;
        const real *pa = a->params + ts->offset, *pb = b->params + ts->offset;
        if (strstr(ts->name, ".native")) {
            natives++;
            ck_assert_int_eq(ts->cols, 1);
            const double bound = sqrt(1.0 / ts->rows); /* m = 4 or m_s = 2 */
            for (size_t i = 0; i < n; i++) {
                ck_assert(fabs(pa[i]) <= bound && pa[i] != 0);
                sq += pa[i] * pa[i] / (bound * bound);
                ck_assert(pb[i] == 1);
            }
        } else {
            ck_assert_msg(memcmp(pa, pb, sizeof(real) * n) == 0, "%s differs", ts->name);
        }
    }
    /* natives: 3 tasks x 2 levels + the shared module at level 1 */
    ck_assert_int_eq(natives, 7);
    /* 26 values of U(-1, 1) (scaled): mean square 1/3 +- 5 standard errors
     * (sd of x² is sqrt(4/45) ~ 0.298, so 5 SE = 0.29) */
    ck_assert(fabs(sq / 26 - 1.0 / 3) < 0.29);
    model_free(a);
    model_free(a2);
    model_free(b);
}
END_TEST

/* ---- training and the store ---- */

/* A short training run of each family with T = 8, binary and regression
 * tasks mixed and grouped task correlations: it finishes, prints finite
 * losses for all 8 tasks and every gate of both levels. */
START_TEST(test_train_eight_tasks) {
    static const char *const families[] = {"model.name=adatt_sp", "model.name=adatt"};
    const char *args[] = {"train",
                          families[_i],
                          "data.tasks=8",
                          "data.binary=2 5 7",
                          "data.groups=3 3 2",
                          "data.dim=20",
                          "data.train=300",
                          "data.validation=50",
                          "data.test=100",
                          "train.steps=20",
                          "train.eval_every=20",
                          "train.batch=32",
                          "model.expert_hidden=6",
                          "model.task_experts=2",
                          NULL};
    char *out, *err;
    int rc = run_mtlab(&out, &err, args);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, err);
    const char *final = strstr(out, "final test loss:");
    ck_assert_ptr_nonnull(final);
    for (int t = 1; t <= 8; t++) {
        char key[8];
        snprintf(key, sizeof key, " t%d ", t);
        const char *at = strstr(final, key);
        ck_assert_msg(at, "no loss for task %d", t);
        ck_assert(isfinite(strtod(at + strlen(key), NULL)));
    }
    ck_assert_ptr_nonnull(strstr(out, "l2/t8/weights"));
    ck_assert_ptr_nonnull(strstr(out, "l1/t1 "));
    if (_i == 1) {
        ck_assert_ptr_nonnull(strstr(out, "l1/shared/weights"));
        ck_assert_ptr_null(strstr(out, "l2/shared")); /* no shared fusion at the last level */
    }
    free(out);
    free(err);
}
END_TEST

/* A sweep of adatt_sp (one expert per task, T = 3, two levels: the AdaTT
 * Fig 3 setting) into a store: the gate table holds every softmax gate and
 * every effective-weight matrix per level, task and expert, and the view
 * v_gate_weights gives the Fig 3 matrices -- each row of a level's T x T
 * matrix is the softmax mean plus 1 on the task's own expert (the fixed unit
 * native weight). */
START_TEST(test_store_records_weights) {
    char *dir = test_tmpdir(), *dbp = test_join(dir, "r.db");
    char *ini = test_write_file(dir, "adatt.ini",
                                "[experiment]\nname = fig3\nseed = 3\n"
                                "[data]\ntasks = 3\ncorrelation = 0.5\ndim = 10\n"
                                "train = 300\nvalidation = 50\ntest = 120\n"
                                "[train]\nsteps = 20\neval_every = 20\nbatch = 32\n"
                                "[model]\nname = adatt_sp\ntask_experts = 1\nlevels = 2\n"
                                "expert_hidden = 6\n");
    const char *args[] = {"run", ini, "--db", dbp, "--jobs", "1", NULL};
    char *out, *err;
    ck_assert_msg(run_mtlab(&out, &err, args) == 0, "%s", err);
    free(out);
    free(err);
    /* 2 levels x 3 tasks x 3 experts, for each kind */
    ck_assert_int_eq(test_query(dbp, "SELECT count(*) FROM gate WHERE kind = 'softmax'"), 18);
    ck_assert_int_eq(test_query(dbp, "SELECT count(*) FROM gate WHERE kind = 'weights'"), 18);
    ck_assert_int_eq(test_query(dbp, "SELECT count(*) FROM v_gate_weights WHERE experiment = "
                                     "'fig3' AND model = 'adatt_sp'"),
                     18);
    ck_assert_int_eq(test_query(dbp, "SELECT count(DISTINCT level || module) FROM v_gate_weights"),
                     6);
    /* weights - softmax: 1 on the diagonal (expert k-1 of task tk), else 0 */
    const double worst = test_query(
        dbp, "SELECT max(abs(w.mean - g.mean - (w.expert = CAST(substr(w.module, 2) AS INTEGER) - "
             "1))) FROM v_gate_weights w JOIN gate g ON g.trial_id = w.trial_id AND g.gate = "
             "'l' || w.level || '/' || w.module AND g.expert = w.expert");
    /* mtlab trains in float: w = p + 1 is rounded to 2^-24 ~ 6e-8 (relative
     * to 1) per example, so the means agree to 1e-7; a wrong expert or a
     * missing native weight is off by ~1. */
    ck_assert_msg(worst < 1e-7, "weights - softmax - unit native weight: %g", worst);
    /* each Fig 3 row sums to 2 (softmax 1 + native 1) */
    ck_assert(fabs(test_query(dbp, "SELECT max(abs(s - 2)) FROM (SELECT sum(mean) AS s FROM "
                                   "v_gate_weights GROUP BY trial_id, level, module)")) < 1e-6);
    free(ini);
    free(dbp);
    free(dir);
}
END_TEST

Suite *fusion2_suite(void) {
    Suite *s = suite_create("fusion2");
    TCase *tc = tcase_create("adatt");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_forward_matches_paper, 0, N_SHAPES);
    tcase_add_loop_test(tc, test_gradients, 0, N_SHAPES);
    tcase_add_test(tc, test_single_expert_is_task_gated_mixture);
    tcase_add_loop_test(tc, test_no_shared_is_adatt_sp, 0, 6);
    tcase_add_loop_test(tc, test_gate_views, 0, N_SHAPES);
    tcase_add_test(tc, test_param_counts);
    tcase_add_test(tc, test_native_init);
    tcase_add_test(tc, test_overflow);
    suite_add_tcase(s, tc);
    TCase *cli = tcase_create("adatt_cli");
    tcase_set_timeout(cli, 120);
    tcase_add_loop_test(cli, test_train_eight_tasks, 0, 2);
    tcase_add_test(cli, test_store_records_weights);
    suite_add_tcase(s, cli);
    return s;
}
