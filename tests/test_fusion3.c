/* test_fusion3.c -- cross_stitch, l2_constrained, tensor_factorization
 * (issue 11) and the trainer's per-tensor learning rate.
 *
 * Each reduction test names the equation it pins (reference
 * mtl-models.md §8-§10).  "Independent networks" below is a plain-loop
 * reference in this file: per task t, h = relu(h · W_t^l + b_t^l) for each
 * hidden layer (h = x first), then tower_t: relu(h · W1 + b1) · W2 + b2. */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/adam.h"
#include "core/embedded.h"
#include "core/loss.h"
#include "data/synth.h"
#include "gradcheck.h"
#include "models/model.h"
#include "testutil.h"
#include "train/train.h"

#define D_IN  5
#define B_MAX 7

/* ---- helpers ---- */

static void set_hp(model_config_t *c, const char *family, const char *name, double v) {
    err_t err = {0};
    ck_assert_msg(model_config_set(c, model_find(family), name, v, &err) == 0, "%s", err.msg);
}

static model_config_t small(const char *family, int T, int layers) {
    model_config_t c;
    model_config_default(&c, model_find(family));
    c.input_dim = D_IN;
    c.tasks = T;
    c.max_batch = B_MAX;
    set_hp(&c, family, "column_hidden", 4);
    set_hp(&c, family, "column_layers", layers);
    set_hp(&c, family, "tower_hidden", 3);
    return c;
}

static model_t *make(const char *family, const model_config_t *c, uint64_t seed) {
    model_t *m;
    err_t err = {0};
    ck_assert_msg(model_new(&m, family, c, seed, &err) == 0, "%s: %s", family, err.msg);
    return m;
}

static const real *tensor(const model_t *m, const char *name) {
    int i = model_tensor_index(m, name);
    ck_assert_msg(i >= 0, "no tensor %s", name);
    return model_param(m, i);
}

static void fill_normal(real *p, size_t n, rng_t *r, double scale) {
    for (size_t i = 0; i < n; i++)
        p[i] = (real)(scale * rng_normal(r));
}

/* Every parameter redrawn N(0, 0.5²): a generic point (no special init). */
static void randomise(model_t *m, uint64_t seed) {
    rng_t r;
    rng_seed(&r, seed, 7);
    fill_normal(m->params, m->n_params, &r, 0.5);
}

/* Layer l of task t of the independent-network reference: W [in, out], b [out]. */
typedef struct {
    int in, out;
    double W[64 * 64], b[64];
} ref_layer_t;

/* Column families store W_t^l directly ("col<t>.l<l>.W"). */
static void column_layer(const model_t *m, int l, int t, ref_layer_t *y) {
    char name[48];
    snprintf(name, sizeof name, "col%d.l%d.W", t + 1, l + 1);
    const tensor_t *ts = &m->tensors[model_tensor_index(m, name)];
    y->in = ts->rows;
    y->out = ts->cols;
    const real *W = tensor(m, name);
    for (int i = 0; i < y->in * y->out; i++)
        y->W[i] = W[i];
    snprintf(name, sizeof name, "col%d.l%d.b", t + 1, l + 1);
    const real *b = tensor(m, name);
    for (int j = 0; j < y->out; j++)
        y->b[j] = b[j];
}

/* tensor_factorization: W_t[a, b] = Σ_{i1,i2,i3} S[i1,i2,i3] U1[a,i1] U2[b,i2]
 * U3[t,i3] by the plain sum of the Tucker form (§10), S stored [r3, r1·r2]. */
static void tucker_layer(const model_t *m, int l, int t, ref_layer_t *y) {
    char name[48];
    const real *U[3], *S, *bias;
    int dims[3], ranks[3];
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "tf%d.U%d", l + 1, i + 1);
        const tensor_t *ts = &m->tensors[model_tensor_index(m, name)];
        U[i] = tensor(m, name);
        dims[i] = ts->rows;
        ranks[i] = ts->cols;
    }
    snprintf(name, sizeof name, "tf%d.S", l + 1);
    S = tensor(m, name);
    snprintf(name, sizeof name, "tf%d.b", l + 1);
    bias = tensor(m, name);
    const int r1 = ranks[0], r2 = ranks[1], r3 = ranks[2];
    y->in = dims[0];
    y->out = dims[1];
    for (int a = 0; a < y->in; a++)
        for (int b = 0; b < y->out; b++) {
            double w = 0;
            for (int i1 = 0; i1 < r1; i1++)
                for (int i2 = 0; i2 < r2; i2++)
                    for (int i3 = 0; i3 < r3; i3++)
                        w += S[(size_t)i3 * r1 * r2 + i1 * r2 + i2] * U[0][a * r1 + i1] *
                             U[1][b * r2 + i2] * U[2][t * r3 + i3];
            y->W[a * y->out + b] = w;
        }
    for (int b = 0; b < y->out; b++)
        y->b[b] = bias[t * y->out + b];
}

static void dense_relu(const ref_layer_t *y, const double *in, double *out, bool relu) {
    for (int j = 0; j < y->out; j++) {
        double z = y->b[j];
        for (int a = 0; a < y->in; a++)
            z += in[a] * y->W[a * y->out + j];
        out[j] = relu && z < 0 ? 0 : z;
    }
}

/* Predictions pred[B, T] of T independent networks whose hidden layers come
 * from layer_of; with `stitch`, the columns are mixed after each hidden layer
 * by s_t = Σ_u A^l[t, u] h_u (A^l from tensor "stitch<l>"). */
static void reference(const model_t *m, int L,
                      void (*layer_of)(const model_t *, int, int, ref_layer_t *), bool stitch,
                      const real *x, int B, double *pred) {
    const int T = m->cfg.tasks, d = m->cfg.input_dim;
    static ref_layer_t y;
    double h[8][64], z[8][64];
    for (int b = 0; b < B; b++) {
        int width = d;
        for (int t = 0; t < T; t++)
            for (int a = 0; a < d; a++)
                h[t][a] = x[b * d + a];
        for (int l = 0; l < L; l++) {
            for (int t = 0; t < T; t++) {
                layer_of(m, l, t, &y);
                ck_assert_int_eq(y.in, width);
                dense_relu(&y, h[t], z[t], true);
            }
            width = y.out;
            char name[16];
            snprintf(name, sizeof name, "stitch%d", l + 1);
            const real *A = stitch ? tensor(m, name) : NULL;
            for (int t = 0; t < T; t++)
                for (int j = 0; j < width; j++) {
                    double s = 0;
                    if (!stitch) s = z[t][j];
                    for (int u = 0; stitch && u < T; u++)
                        s += A[t * T + u] * z[u][j];
                    h[t][j] = s;
                }
        }
        for (int t = 0; t < T; t++) { /* tower_t */
            char name[48];
            ref_layer_t *hid = malloc(sizeof *hid), *out = malloc(sizeof *out);
            snprintf(name, sizeof name, "tower%d.hidden.W", t + 1);
            const tensor_t *ts = &m->tensors[model_tensor_index(m, name)];
            hid->in = ts->rows;
            hid->out = ts->cols;
            for (int i = 0; i < hid->in * hid->out; i++)
                hid->W[i] = tensor(m, name)[i];
            snprintf(name, sizeof name, "tower%d.hidden.b", t + 1);
            for (int j = 0; j < hid->out; j++)
                hid->b[j] = tensor(m, name)[j];
            out->in = hid->out;
            out->out = 1;
            snprintf(name, sizeof name, "tower%d.out.W", t + 1);
            for (int i = 0; i < out->in; i++)
                out->W[i] = tensor(m, name)[i];
            snprintf(name, sizeof name, "tower%d.out.b", t + 1);
            out->b[0] = tensor(m, name)[0];
            double th[64], o;
            dense_relu(hid, h[t], th, true);
            dense_relu(out, th, &o, false);
            pred[b * T + t] = o;
            free(hid);
            free(out);
        }
    }
}

static void random_x(real *x, int n, uint64_t seed) {
    rng_t r;
    rng_seed(&r, seed, 3);
    fill_normal(x, (size_t)n, &r, 1.0);
}

/* max_i |a_i - b_i| / (1 + |b_i|) */
static double max_rel(const real *a, const double *b, int n) {
    double e = 0;
    for (int i = 0; i < n; i++) {
        double d = fabs(a[i] - b[i]) / (1 + fabs(b[i]));
        if (d > e) e = d;
    }
    return e;
}

/* ---- gradient checks: every tensor, the penalty's gradient included ---- */

typedef struct {
    const char *family;
    int T, layers;
    const char *hp; /* one more hyper-parameter (or NULL) */
    double value;
    const char *hp2;
    double value2;
} grad_case_t;

static const grad_case_t grad_cases[] = {
    {"cross_stitch", 2, 1, "stitch_init", 0, NULL, 0},
    {"cross_stitch", 3, 1, "stitch_init", 1, NULL, 0},
    {"cross_stitch", 2, 2, "stitch_init", 0, NULL, 0},
    {"cross_stitch", 3, 2, "stitch_init", 1, NULL, 0},
    {"cross_stitch", 2, 3, "stitch_init", 1, NULL, 0},
    {"cross_stitch", 3, 3, "stitch_init", 0, "stitch_lr", 100},
    {"l2_constrained", 2, 1, "l2_tied", 0, "l2_alpha", 0.7},
    {"l2_constrained", 3, 1, "l2_tied", 2, "l2_alpha", 0.7},
    {"l2_constrained", 2, 2, "l2_tied", 1, "l2_alpha", 0.7},
    {"l2_constrained", 3, 2, "l2_tied", 0, "l2_alpha", 0.7},
    {"l2_constrained", 2, 3, "l2_tied", 2, "l2_alpha", 0.7},
    {"l2_constrained", 3, 3, "l2_tied", 1, "l2_alpha", 0.7},
    {"tensor_factorization", 2, 1, NULL, 0, NULL, 0},
    {"tensor_factorization", 3, 1, "rank1", 2, "rank3", 2},
    {"tensor_factorization", 2, 2, "rank2", 3, NULL, 0},
    {"tensor_factorization", 3, 2, "rank1", 3, "rank3", 1},
    {"tensor_factorization", 2, 3, "rank1", 2, "rank2", 2},
    {"tensor_factorization", 3, 3, "rank1", 4, "rank2", 3},
};

typedef struct {
    model_t *m;
    real x[B_MAX * D_IN], y[B_MAX * 8], pred[B_MAX * 8], dpred[B_MAX * 8];
    task_kind_t kind[8];
    double weight[8];
} objective_t;

/* Σ_k w_k loss_k + penalty: what the trainer minimises (train.h). */
static double objective(void *ctx) {
    objective_t *f = ctx;
    const int T = f->m->cfg.tasks;
    model_forward(f->m, f->x, B_MAX, f->pred, MODEL_EVAL);
    double sum = 0;
    for (int k = 0; k < T; k++)
        sum += f->weight[k] * loss_task(f->kind[k], f->pred, f->y, B_MAX, T, k);
    if (f->m->ops->penalty) sum += f->m->ops->penalty(f->m); /* (its gradient is not read) */
    return sum;
}

/* Checks d(objective)/d(every tensor) against central differences, tasks
 * alternating regression and binary. */
START_TEST(test_gradients) {
    const grad_case_t *gc = &grad_cases[_i];
    model_config_t c = small(gc->family, gc->T, gc->layers);
    if (gc->hp) set_hp(&c, gc->family, gc->hp, gc->value);
    if (gc->hp2) set_hp(&c, gc->family, gc->hp2, gc->value2);
    objective_t f = {.m = make(gc->family, &c, 5)};
    model_t *m = f.m;
    randomise(m, 17 + _i);
    rng_t r;
    rng_seed(&r, 23, 1);
    for (int i = 0; i < B_MAX * D_IN; i++)
        f.x[i] = rng_normal(&r);
    for (int k = 0; k < gc->T; k++) {
        f.kind[k] = k % 2 ? TASK_BINARY : TASK_REGRESSION;
        f.weight[k] = 1.0 + 0.5 * k;
    }
    for (int i = 0; i < B_MAX * gc->T; i++)
        f.y[i] = f.kind[i % gc->T] == TASK_BINARY ? rng_uniform(&r) > 0.5 : rng_normal(&r);
    model_zero_grad(m);
    model_forward(m, f.x, B_MAX, f.pred, MODEL_TRAIN);
    for (int k = 0; k < gc->T; k++)
        loss_task_grad(f.kind[k], f.pred, f.y, B_MAX, gc->T, k, f.weight[k], f.dpred);
    model_backward(m, f.x, B_MAX, f.dpred);
    if (m->ops->penalty) ck_assert(m->ops->penalty(m) > 0);
    real *analytic = malloc(sizeof(real) * m->n_params);
    memcpy(analytic, m->grads, sizeof(real) * m->n_params);
    for (int t = 0; t < m->n_tensors; t++) {
        const tensor_t *ts = &m->tensors[t];
        size_t worst = 0;
        double e = gradcheck(objective, &f, m->params + ts->offset, analytic + ts->offset,
                             (size_t)ts->rows * ts->cols, &worst);
        ck_assert_msg(e < GRADCHECK_TOL, "%s T %d L %d: tensor %s element %zu: error %.3g",
                      gc->family, gc->T, gc->layers, ts->name, worst, e);
    }
    free(analytic);
    model_free(m);
}
END_TEST

/* ---- reductions ---- */

/* Pins §8 with A^l = I: s_t^l = Σ_u I[t, u] h_u^l = h_t^l, so cross_stitch
 * is T independent single-task networks with the same weights -- for 1..3
 * layers against the reference, and for one layer against the `single`
 * family itself (its bottom<t> = col<t>.l1, same towers). */
START_TEST(test_cross_stitch_identity_is_independent) {
    const int T = 3;
    real x[B_MAX * D_IN], pred[B_MAX * 3];
    double ref[B_MAX * 3];
    random_x(x, B_MAX * D_IN, 1);
    for (int L = 1; L <= 3; L++) {
        model_config_t c = small("cross_stitch", T, L);
        model_t *m = make("cross_stitch", &c, 2);
        randomise(m, 3);
        for (int l = 0; l < L; l++) {
            char name[16];
            snprintf(name, sizeof name, "stitch%d", l + 1);
            real *A = m->params + m->tensors[model_tensor_index(m, name)].offset;
            for (int i = 0; i < T * T; i++)
                A[i] = i % (T + 1) == 0; /* identity */
        }
        model_forward(m, x, B_MAX, pred, MODEL_EVAL);
        reference(m, L, column_layer, false, x, B_MAX, ref);
        ck_assert_msg(max_rel(pred, ref, B_MAX * T) < 1e-12, "L %d: %g", L,
                      max_rel(pred, ref, B_MAX * T));
        if (L == 1) {
            model_config_t sc;
            model_config_default(&sc, model_find("single"));
            sc.input_dim = D_IN;
            sc.tasks = T;
            sc.max_batch = B_MAX;
            set_hp(&sc, "single", "bottom_hidden", 4);
            set_hp(&sc, "single", "tower_hidden", 3);
            model_t *single = make("single", &sc, 9);
            for (int i = 0; i < single->n_tensors; i++) {
                const tensor_t *ts = &single->tensors[i];
                char name[48];
                int t;
                char rest[8];
                if (sscanf(ts->name, "bottom%d.%1s", &t, rest) == 2)
                    snprintf(name, sizeof name, "col%d.l1.%s", t, ts->name + strlen(ts->name) - 1);
                else
                    snprintf(name, sizeof name, "%s", ts->name);
                memcpy(single->params + ts->offset, tensor(m, name),
                       sizeof(real) * ts->rows * ts->cols);
            }
            real pred_single[B_MAX * 3];
            model_forward(single, x, B_MAX, pred_single, MODEL_EVAL);
            for (int i = 0; i < B_MAX * T; i++)
                ck_assert(fabs(pred_single[i] - pred[i]) <= 1e-12 * (1 + fabs(pred[i])));
            model_free(single);
        }
        model_free(m);
    }
}
END_TEST

/* Pins the cross-stitch unit itself (MMoE §6.1: x̃_1 = α11 x1 + α12 x2, in
 * general s_t = Σ_u A[t, u] h_u, row t of A feeding task t) with random A,
 * and the paper init: A = 0.9 on the diagonal, 0.1/(T-1) off it. */
START_TEST(test_cross_stitch_mixing) {
    const int T = 3, L = 2;
    real x[B_MAX * D_IN], pred[B_MAX * 3];
    double ref[B_MAX * 3];
    random_x(x, B_MAX * D_IN, 4);
    model_config_t c = small("cross_stitch", T, L);
    model_t *m = make("cross_stitch", &c, 2);
    const real *A = tensor(m, "stitch2");
    for (int t = 0; t < T; t++)
        for (int u = 0; u < T; u++)
            ck_assert(A[t * T + u] == (real)(t == u ? 0.9 : 0.1 / (T - 1)));
    ck_assert(m->tensors[model_tensor_index(m, "stitch1")].init == INIT_CUSTOM);
    randomise(m, 5);
    model_forward(m, x, B_MAX, pred, MODEL_EVAL);
    reference(m, L, column_layer, true, x, B_MAX, ref);
    ck_assert_msg(max_rel(pred, ref, B_MAX * T) < 1e-12, "%g", max_rel(pred, ref, B_MAX * T));
    model_free(m);
    /* random: drawn as a [T, T] weight of the scheme (torch: U(±1/√T), AdaTT's) */
    set_hp(&c, "cross_stitch", "stitch_init", 1);
    set_hp(&c, "cross_stitch", "init", 1);
    m = make("cross_stitch", &c, 2);
    const int s = model_tensor_index(m, "stitch1");
    ck_assert(m->tensors[s].init == INIT_WEIGHT);
    for (int i = 0; i < T * T; i++)
        ck_assert(fabs(model_param(m, s)[i]) <= 1 / sqrt(T) && model_param(m, s)[i] != 0);
    model_free(m);
}
END_TEST

/* Pins §9 with l2_alpha = 0: the model is T independent networks (same
 * predictions as the reference and as cross_stitch with identity units and
 * the same weights), and its penalty adds nothing. */
START_TEST(test_l2_zero_is_independent) {
    const int T = 3, L = 2;
    real x[B_MAX * D_IN], pred[B_MAX * 3];
    double ref[B_MAX * 3];
    random_x(x, B_MAX * D_IN, 6);
    model_config_t c = small("l2_constrained", T, L);
    set_hp(&c, "l2_constrained", "l2_alpha", 0);
    model_t *m = make("l2_constrained", &c, 2);
    randomise(m, 7);
    model_forward(m, x, B_MAX, pred, MODEL_EVAL);
    reference(m, L, column_layer, false, x, B_MAX, ref);
    ck_assert_msg(max_rel(pred, ref, B_MAX * T) < 1e-12, "%g", max_rel(pred, ref, B_MAX * T));
    model_zero_grad(m);
    ck_assert(m->ops->penalty(m) == 0);
    for (size_t i = 0; i < m->n_params; i++)
        ck_assert(m->grads[i] == 0);
    model_free(m);
}
END_TEST

/* Pins the penalty of §9 in its pairwise form, P = α Σ_{s<t} ‖θ_s − θ_t‖²,
 * and its gradient 2α Σ_{s≠t} (θ_t − θ_s), computed here pair by pair over
 * the tensors each l2_tied word names; the other tensors get no gradient. */
START_TEST(test_l2_penalty_pairs) {
    static const char *const words[] = {"hidden", "first", "all"};
    const int T = 3, L = 2;
    const double alpha = 0.3;
    for (int w = 0; w < 3; w++) {
        model_config_t c = small("l2_constrained", T, L);
        set_hp(&c, "l2_constrained", "l2_alpha", alpha);
        set_hp(&c, "l2_constrained", "l2_tied", w);
        model_t *m = make("l2_constrained", &c, 2);
        randomise(m, 8);
        model_zero_grad(m);
        const double got = m->ops->penalty(m);
        double want = 0;
        size_t tied_params = 0;
        for (int i = 0; i < m->n_tensors; i++) {
            const tensor_t *ts = &m->tensors[i];
            int t, l;
            char part[16];
            bool tied;
            if (sscanf(ts->name, "col%d.l%d.%15s", &t, &l, part) == 3)
                tied = w != 1 || l == 1;
            else if (sscanf(ts->name, "tower%d.%15s", &t, part) == 2)
                tied = w == 2;
            else
                ck_abort_msg("unexpected tensor %s", ts->name);
            const size_t n = (size_t)ts->rows * ts->cols;
            const char *suffix = strchr(ts->name, '.'); /* the same tensor of every task */
            for (size_t j = 0; j < n; j++) {
                double grad = 0;
                for (int s = 1; s <= T; s++) {
                    if (s == t) continue;
                    char other[48];
                    snprintf(other, sizeof other, "%.*s%d%s", ts->name[0] == 'c' ? 3 : 5, ts->name,
                             s, suffix);
                    const double diff = model_param(m, i)[j] - tensor(m, other)[j];
                    grad += 2 * alpha * diff;
                    if (tied && s > t) want += alpha * diff * diff;
                }
                ck_assert_msg(fabs(m->grads[ts->offset + j] - (tied ? grad : 0)) <=
                                  1e-12 * (1 + fabs(grad)),
                              "l2_tied %s: %s[%zu]", words[w], ts->name, j);
            }
            if (tied) tied_params += n;
        }
        ck_assert_msg(fabs(got - want) <= 1e-12 * want, "l2_tied %s: %.17g vs %.17g", words[w], got,
                      want);
        /* first: W [5,4] + b per task; hidden: + [4,4] + b; all: + towers [4,3]+3+3+1 */
        const size_t per_task = w == 1 ? 24 : w == 0 ? 44 : 44 + 19;
        ck_assert_uint_eq(tied_params, T * per_task);
        model_free(m);
    }
}
END_TEST

/* Pins §10 (the Tucker form W[a, b, t] = Σ S[i1,i2,i3] U1[a,i1] U2[b,i2]
 * U3[t,i3]) at full ranks: any given per-task weights W_t and biases b_t are
 * held exactly by U1 = I, U2 = I, U3 = I and the core S[:, :, t] = W_t --
 * the predictions are those of independent networks with weights W_t. */
START_TEST(test_tucker_full_rank_holds_any_weights) {
    const int T = 3, L = 2, D = 4;
    real x[B_MAX * D_IN], pred[B_MAX * 3];
    double ref[B_MAX * 3];
    random_x(x, B_MAX * D_IN, 9);
    /* The given weights: a column model's, drawn at random. */
    model_config_t cc = small("l2_constrained", T, L);
    model_t *given = make("l2_constrained", &cc, 4);
    randomise(given, 10);
    model_config_t c = small("tensor_factorization", T, L);
    model_t *m = make("tensor_factorization", &c, 2);
    randomise(m, 11); /* towers: copied below; factors: set below */
    for (int l = 0; l < L; l++) {
        const int in = l == 0 ? D_IN : D;
        char name[48];
        real *U[3];
        const int dims[3] = {in, D, T};
        for (int i = 0; i < 3; i++) {
            snprintf(name, sizeof name, "tf%d.U%d", l + 1, i + 1);
            const int k = model_tensor_index(m, name);
            ck_assert_int_eq(m->tensors[k].rows, dims[i]); /* full rank: square */
            ck_assert_int_eq(m->tensors[k].cols, dims[i]);
            U[i] = model_param(m, k);
            for (int a = 0; a < dims[i]; a++)
                for (int j = 0; j < dims[i]; j++)
                    U[i][a * dims[i] + j] = a == j;
        }
        snprintf(name, sizeof name, "tf%d.S", l + 1);
        real *S = model_param(m, model_tensor_index(m, name));
        snprintf(name, sizeof name, "tf%d.b", l + 1);
        real *bias = model_param(m, model_tensor_index(m, name));
        for (int t = 0; t < T; t++) {
            char wname[48];
            snprintf(wname, sizeof wname, "col%d.l%d.W", t + 1, l + 1);
            memcpy(S + (size_t)t * in * D, tensor(given, wname), sizeof(real) * in * D);
            snprintf(wname, sizeof wname, "col%d.l%d.b", t + 1, l + 1);
            memcpy(bias + (size_t)t * D, tensor(given, wname), sizeof(real) * D);
        }
    }
    for (int i = 0; i < m->n_tensors; i++)
        if (strncmp(m->tensors[i].name, "tower", 5) == 0)
            memcpy(model_param(m, i), tensor(given, m->tensors[i].name),
                   sizeof(real) * m->tensors[i].rows * m->tensors[i].cols);
    model_forward(m, x, B_MAX, pred, MODEL_EVAL);
    reference(given, L, column_layer, false, x, B_MAX, ref);
    ck_assert_msg(max_rel(pred, ref, B_MAX * T) < 1e-12, "%g", max_rel(pred, ref, B_MAX * T));
    model_free(given);
    model_free(m);
}
END_TEST

/* Pins §10 with truncated ranks and random factors: the fast forward
 * ((x U1) M_t) U2ᵀ + b_t equals independent networks whose W_t is the plain
 * Tucker sum; and the init gives every W_t entry the variance model.init's
 * scheme gives an [m, n] weight (glorot 2/(m+n), torch 1/(3m), he 2/m). */
START_TEST(test_tucker_truncated) {
    const int T = 3, L = 2;
    real x[B_MAX * D_IN], pred[B_MAX * 3];
    double ref[B_MAX * 3];
    random_x(x, B_MAX * D_IN, 12);
    model_config_t c = small("tensor_factorization", T, L);
    set_hp(&c, "tensor_factorization", "rank1", 3);
    set_hp(&c, "tensor_factorization", "rank2", 2);
    set_hp(&c, "tensor_factorization", "rank3", 2);
    model_t *m = make("tensor_factorization", &c, 2);
    randomise(m, 13);
    model_forward(m, x, B_MAX, pred, MODEL_EVAL);
    reference(m, L, tucker_layer, false, x, B_MAX, ref);
    ck_assert_msg(max_rel(pred, ref, B_MAX * T) < 1e-12, "%g", max_rel(pred, ref, B_MAX * T));
    model_free(m);

    /* Init: d 60 -> 40 units, T 4, ranks 8, 6, 3: 9600 entries of W. */
    model_config_default(&c, model_find("tensor_factorization"));
    c.input_dim = 60;
    c.tasks = 4;
    set_hp(&c, "tensor_factorization", "column_hidden", 40);
    set_hp(&c, "tensor_factorization", "rank1", 8);
    set_hp(&c, "tensor_factorization", "rank2", 6);
    set_hp(&c, "tensor_factorization", "rank3", 3);
    /* Per scheme (model.init): the variance a²/3 of U(±a) for an [m, n] =
     * [60, 40] weight, and the biases' bound (torch: 1/√m, else zeros). */
    static const struct {
        double var, bias_bound;
    } schemes[] = {{2.0 / (60 + 40), 0}, {1.0 / (3 * 60.0), 1 / sqrt(60.0)}, {2.0 / 60, 0}};
    static ref_layer_t y;
    enum { SEEDS = 40 };
    for (int scheme = 0; scheme < 3; scheme++) {
        set_hp(&c, "tensor_factorization", "init", scheme);
        double sq = 0, largest_bias = 0;
        for (int seed = 0; seed < SEEDS; seed++) {
            m = make("tensor_factorization", &c, 2018 + seed);
            for (int t = 0; t < 4; t++) {
                tucker_layer(m, 0, t, &y);
                for (int i = 0; i < 60 * 40; i++)
                    sq += y.W[i] * y.W[i];
                for (int j = 0; j < 40; j++) {
                    ck_assert(fabs(y.b[j]) <= schemes[scheme].bias_bound);
                    if (fabs(y.b[j]) > largest_bias) largest_bias = fabs(y.b[j]);
                }
            }
            model_free(m);
        }
        ck_assert(schemes[scheme].bias_bound == 0 ||
                  largest_bias > 0.9 * schemes[scheme].bias_bound);
        const double mean_sq = sq / (SEEDS * 4 * 60 * 40), want = schemes[scheme].var;
        /* One draw's mean square has a relative sd of about 0.28 (the 12
         * draws of U3 dominate: entries of W share factors); over 40 draws
         * about 0.045, so a 20% band is 4.5 sd wide and still fails a scale
         * off by sqrt(2) -- or another scheme's variance (ratios 1.7-6). */
        ck_assert_msg(fabs(mean_sq - want) < 0.2 * want, "scheme %d: mean square %g, variance %g",
                      scheme, mean_sq, want);
    }
}
END_TEST

/* ---- parameter counts against the hand formulas ---- */

static size_t tower_params(size_t in, size_t th) {
    return in * th + th + th + 1;
}

START_TEST(test_param_counts) {
    struct {
        const char *family;
        int d, T, D, L, th, r1, r2, r3;
        size_t want;
    } cases[] = {
        /* T (d D + D + (L-1)(D² + D)) + L T² + T towers */
        {"cross_stitch", 100, 2, 64, 1, 8, 0, 0, 0,
         2 * (100 * 64 + 64) + 1 * 4 + 2 * tower_params(64, 8)},
        {"cross_stitch", 7, 5, 6, 3, 4, 0, 0, 0,
         5 * (7 * 6 + 6 + 2 * (36 + 6)) + 3 * 25 + 5 * tower_params(6, 4)},
        /* the same without the units */
        {"l2_constrained", 100, 2, 16, 1, 8, 0, 0, 0,
         2 * (100 * 16 + 16) + 2 * tower_params(16, 8)},
        {"l2_constrained", 7, 5, 6, 3, 4, 0, 0, 0,
         5 * (7 * 6 + 6 + 2 * (36 + 6)) + 5 * tower_params(6, 4)},
        /* per layer m r1 + n r2 + T r3 + r1 r2 r3 + T n (ranks capped at m, n, T) */
        {"tensor_factorization", 100, 2, 64, 1, 8, 16, 0, 0,
         100 * 16 + 64 * 64 + 2 * 2 + 16 * 64 * 2 + 2 * 64 + 2 * tower_params(64, 8)},
        {"tensor_factorization", 7, 5, 6, 2, 4, 9, 3, 2,
         (7 * 7 + 6 * 3 + 5 * 2 + 7 * 3 * 2 + 5 * 6) + (6 * 6 + 6 * 3 + 5 * 2 + 6 * 3 * 2 + 5 * 6) +
             5 * tower_params(6, 4)},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *f = cases[i].family;
        model_config_t c;
        model_config_default(&c, model_find(f));
        c.input_dim = cases[i].d;
        c.tasks = cases[i].T;
        if (i % 2) { /* the defaults, except the shape, in the even cases */
            set_hp(&c, f, "column_hidden", cases[i].D);
            set_hp(&c, f, "column_layers", cases[i].L);
            set_hp(&c, f, "tower_hidden", cases[i].th);
            if (strcmp(f, "tensor_factorization") == 0) {
                set_hp(&c, f, "rank1", cases[i].r1);
                set_hp(&c, f, "rank2", cases[i].r2);
                set_hp(&c, f, "rank3", cases[i].r3);
            }
        }
        model_t *m = make(f, &c, 1);
        ck_assert_msg(m->n_params == cases[i].want, "case %zu %s: %zu parameters, formula %zu", i,
                      f, m->n_params, cases[i].want);
        if (i == 4) {
            /* The bench's floor: one step's products at B = 128 (r1 16, r2 64,
             * r3 2): M = U3 S with ∂S, ∂U3; x U1 and ∂U1; C_t = A M_t, ∂M_t,
             * ∂A_t; C U2ᵀ, ∂U2, ∂C; the towers [64, 8], [8, 1] x 3 each. */
            const uint64_t B = 128, T = 2;
            const uint64_t want = 3 * 2 * T * 2 * 16 * 64 + 2 * 2 * B * 100 * 16 +
                                  3 * 2 * B * T * 16 * 64 + 3 * 2 * B * T * 64 * 64 +
                                  T * 3 * 2 * B * (64 * 8 + 8 * 1);
            ck_assert_uint_eq(model_step_flops(m, 128), want);
        }
        model_free(m);
    }
}
END_TEST

/* Legal but unrepresentable shapes: a clean ERR_USAGE naming the family and
 * the quantity, from model_sizes and model_new alike, before any allocation. */
START_TEST(test_overflowing_configs) {
    static const struct {
        const char *family;
        int d, T, D;
        const char *message;
    } cases[] = {
        {"cross_stitch", 100, 8, 1000000000,
         "8 columns x 1000000000 units overflows a layer width"},
        {"l2_constrained", 100, 8, 1000000000,
         "8 columns x 1000000000 units overflows a layer width"},
        {"tensor_factorization", 2000000000, 8, 64,
         "layer 1: 2000000000 inputs x 64 units x 8 tasks (ranks 2000000000, 64, 8)"},
        {"tensor_factorization", 100, 8, 1000000000, "layer 1: 100 inputs x 1000000000 units"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *f = cases[i].family;
        const model_ops_t *ops = model_find(f);
        model_config_t c;
        model_config_default(&c, ops);
        c.input_dim = cases[i].d;
        c.tasks = cases[i].T;
        c.hp[model_hp_find(ops, "column_hidden")] = cases[i].D;
        if (strcmp(f, "tensor_factorization") == 0) /* full ranks */
            c.hp[model_hp_find(ops, "rank1")] = 0;
        model_sizes_t sz;
        err_t err = {0}, new_err = {0};
        ck_assert_int_eq(model_sizes(f, &c, &sz, &err), -1);
        ck_assert_msg(err.kind == ERR_USAGE && strstr(err.msg, cases[i].message) &&
                          strncmp(err.msg, f, strlen(f)) == 0,
                      "case %zu: %s", i, err.msg);
        model_t *m = (model_t *)&c;
        ck_assert_int_eq(model_new(&m, f, &c, 1, &new_err), -1);
        ck_assert_ptr_null(m);
        ck_assert_str_eq(new_err.msg, err.msg);
    }
}
END_TEST

/* ---- the trainer: per-tensor learning rate, the penalty ---- */

static void make_data(data_t *data, int T, int n_binary, bool groups, uint64_t seed) {
    synth_params_t p;
    synth_defaults(&p);
    p.tasks = T;
    p.dim = 20;
    p.n_train = 1000;
    p.n_val = 300;
    p.n_test = 300;
    err_t err = {0};
    if (groups) {
        const int sizes[] = {3, 3, 2};
        ck_assert_msg(synth_set_corr_groups(&p, sizes, 3, 0.9, 0.2, &err) == 0, "%s", err.msg);
    } else {
        ck_assert(synth_set_corr_all(&p, 0.5, &err) == 0);
    }
    for (int k = 0; k < n_binary; k++) {
        p.binary[2 * k + 1] = true;
        p.positive_rate[2 * k + 1] = 0.3;
    }
    ck_assert_msg(synth_generate(&p, seed, data, &err) == 0, "%s", err.msg);
}

/* Adam with a slice at scale 1 gives the same bits as without slices; a
 * slice at scale s moves its parameters s times as far on the first step
 * (lr_t = lr s √(1-β2)/(1-β1), the same m̂/(√v̂+ε)); bad slices are refused. */
START_TEST(test_adam_scaled_slices) {
    enum { N = 40 };
    real p0[N], g[N], a[N], b[N], c[N];
    rng_t r;
    rng_seed(&r, 1, 1);
    fill_normal(p0, N, &r, 1);
    fill_normal(g, N, &r, 1);
    adam_t plain, unit, scaled;
    err_t err = {0};
    ck_assert(adam_init(&plain, N, 1e-3, &err) == 0);
    ck_assert(adam_init(&unit, N, 1e-3, &err) == 0);
    ck_assert(adam_init(&scaled, N, 1e-3, &err) == 0);
    ck_assert(adam_set_scale(&unit, 10, 7, 1.0, &err) == 0);
    ck_assert(adam_set_scale(&scaled, 10, 7, 250.0, &err) == 0);
    ck_assert(adam_set_scale(&scaled, 30, 5, 0.5, &err) == 0);
    memcpy(a, p0, sizeof a);
    memcpy(b, p0, sizeof b);
    memcpy(c, p0, sizeof c);
    adam_step(&plain, a, g);
    adam_step(&unit, b, g);
    adam_step(&scaled, c, g);
    ck_assert(memcmp(a, b, sizeof a) == 0);
    for (int i = 0; i < N; i++) {
        const double s = i >= 10 && i < 17 ? 250.0 : i >= 30 && i < 35 ? 0.5 : 1.0;
        const double step_plain = a[i] - p0[i], step_scaled = c[i] - p0[i];
        ck_assert_msg(fabs(step_scaled - s * step_plain) <= 1e-12 * fabs(s * step_plain) + 1e-15,
                      "element %d: %g vs %g x %g", i, step_scaled, s, step_plain);
    }
    ck_assert_int_eq(adam_set_scale(&scaled, 32, 2, 2.0, &err), -1); /* overlaps */
    ck_assert_ptr_nonnull(strstr(err.msg, "overlaps"));
    ck_assert_int_eq(adam_set_scale(&scaled, 38, 5, 2.0, &err), -1); /* outside */
    ck_assert_int_eq(adam_set_scale(&scaled, 36, 2, 0.0, &err), -1);
    adam_free(&plain);
    adam_free(&unit);
    adam_free(&scaled);
}
END_TEST

/* stitch_lr really scales the units' update: one train_step of two models
 * that differ only in stitch_lr (1 and 100) moves every stitch<l> entry 100
 * times as far, and every other parameter by the same bits. */
START_TEST(test_stitch_lr_scales_the_update) {
    data_t data;
    make_data(&data, 3, 1, false, 3);
    model_config_t c;
    model_config_default(&c, model_find("cross_stitch"));
    c.input_dim = 20;
    c.tasks = 3;
    set_hp(&c, "cross_stitch", "column_layers", 2);
    set_hp(&c, "cross_stitch", "column_hidden", 8);
    model_t *m[2];
    train_state_t s[2];
    train_config_t tc;
    train_config_default(&tc);
    tc.batch = 32;
    err_t err = {0};
    real *before = malloc(sizeof(real) * 4096);
    for (int i = 0; i < 2; i++) {
        set_hp(&c, "cross_stitch", "stitch_lr", i == 0 ? 1 : 100);
        m[i] = make("cross_stitch", &c, 8);
        ck_assert_msg(train_begin(&s[i], m[i], &data, &tc, 5, &err) == 0, "%s", err.msg);
    }
    ck_assert_uint_le(m[0]->n_params, 4096);
    memcpy(before, m[0]->params, sizeof(real) * m[0]->n_params);
    ck_assert(memcmp(before, m[1]->params, sizeof(real) * m[0]->n_params) == 0);
    double loss[MTLAB_MAX_TASKS + 1];
    for (int i = 0; i < 2; i++)
        ck_assert(train_step(&s[i], loss) == 0);
    int stitched = 0;
    for (int t = 0; t < m[0]->n_tensors; t++) {
        const tensor_t *ts = &m[0]->tensors[t];
        const bool unit = strncmp(ts->name, "stitch", 6) == 0;
        ck_assert(model_lr_scale(&m[1]->tensors[t]) == (unit ? 100 : 1));
        for (size_t j = ts->offset; j < ts->offset + (size_t)ts->rows * ts->cols; j++) {
            const double d1 = m[0]->params[j] - before[j], d100 = m[1]->params[j] - before[j];
            if (!unit) {
                ck_assert(m[0]->params[j] == m[1]->params[j]);
                continue;
            }
            ck_assert(fabs(d1) > 1e-4); /* the first Adam step moves by ~lr */
            ck_assert_msg(fabs(d100 - 100 * d1) <= 1e-9 * fabs(100 * d1), "%s: %g vs 100 x %g",
                          ts->name, d100, d1);
            stitched++;
        }
    }
    ck_assert_int_eq(stitched, 2 * 9);
    for (int i = 0; i < 2; i++) {
        train_end(&s[i]);
        model_free(m[i]);
    }
    free(before);
    data_free(&data);
}
END_TEST

/* How the trainer uses the l2 penalty (train.h): the step's gradient is
 * that of Σ_k w_k loss_k + P; the recorded train loss is the task losses
 * alone and P is its own curve, the mean over the steps since the previous
 * evaluation of P at each step's parameters (before its update). */
START_TEST(test_penalty_in_the_trainer) {
    data_t data;
    make_data(&data, 3, 1, false, 4);
    model_config_t c;
    model_config_default(&c, model_find("l2_constrained"));
    c.input_dim = 20;
    c.tasks = 3;
    set_hp(&c, "l2_constrained", "l2_alpha", 0.05);
    model_t *m = make("l2_constrained", &c, 6), *same = make("l2_constrained", &c, 6);
    train_config_t tc;
    train_config_default(&tc);
    tc.batch = 16;
    train_state_t s;
    err_t err = {0};
    ck_assert(train_begin(&s, m, &data, &tc, 2, &err) == 0);
    /* The gradient: loss part (backward alone) + the penalty's. */
    double loss[MTLAB_MAX_TASKS + 1];
    ck_assert(train_gradient(&s, data.train.x, data.train.y, 16, loss) == 0);
    real *with = malloc(sizeof(real) * m->n_params);
    memcpy(with, m->grads, sizeof(real) * m->n_params);
    real pred[16 * 3], dpred[16 * 3];
    model_zero_grad(same);
    model_forward(same, data.train.x, 16, pred, MODEL_TRAIN);
    double task_loss = 0;
    for (int k = 0; k < 3; k++) {
        task_loss += loss_task(data.kind[k], pred, data.train.y, 16, 3, k);
        loss_task_grad(data.kind[k], pred, data.train.y, 16, 3, k, 1.0, dpred);
    }
    model_backward(same, data.train.x, 16, dpred);
    const double P = same->ops->penalty(same);
    ck_assert(P > 0);
    ck_assert(s.penalty == P);
    ck_assert(fabs(loss[3] - task_loss) <= 1e-12 * task_loss); /* no penalty in the loss */
    for (size_t i = 0; i < m->n_params; i++)
        ck_assert(with[i] == same->grads[i]);
    train_end(&s);
    model_free(m);
    free(with);
    /* The recorded curve: one step, evaluated at once. */
    m = make("l2_constrained", &c, 6);
    tc.steps = 1;
    tc.eval_every = 1;
    train_result_t res;
    ck_assert(train_run(m, &data, &tc, 2, NULL, NULL, &res, &err) == 0);
    ck_assert(res.final.has_penalty);
    model_free(m);
    /* train_run's first step draws its own batch: compare with a state
     * stepped by hand instead (train_run = train_begin + train_step). */
    m = make("l2_constrained", &c, 6);
    ck_assert(train_begin(&s, m, &data, &tc, 2, &err) == 0);
    ck_assert(train_step(&s, loss) == 0);
    ck_assert(res.final.penalty == s.penalty);
    ck_assert(res.final.train[3] == loss[3]);
    ck_assert(fabs(res.final.train[3] - (loss[0] + loss[1] + loss[2])) <= 1e-12 * loss[3]);
    train_end(&s);
    model_free(m);
    model_free(same);
    data_free(&data);
}
END_TEST

/* T = 8 with binary and regression tasks mixed and grouped correlations
 * (data.groups 3 3 2): each family trains 300 steps without failing and
 * beats the mean predictor on the total test loss. */
START_TEST(test_eight_tasks_mixed) {
    static const char *const families[] = {"cross_stitch", "l2_constrained",
                                           "tensor_factorization"};
    data_t data;
    make_data(&data, 8, 3, true, 5);
    const char *family = families[_i];
    model_config_t c;
    model_config_default(&c, model_find(family));
    c.input_dim = 20;
    c.tasks = 8;
    set_hp(&c, family, "column_layers", 2);
    set_hp(&c, family, "column_hidden", 16);
    model_t *m = make(family, &c, 1);
    train_config_t tc;
    train_config_default(&tc);
    tc.steps = 300;
    tc.batch = 64;
    tc.lr = 3e-3;
    train_result_t res;
    err_t err = {0};
    ck_assert_msg(train_run(m, &data, &tc, 1, NULL, NULL, &res, &err) == 0, "%s: %s", family,
                  err.msg);
    double base[MTLAB_MAX_TASKS + 1];
    train_mean_baseline(&data, &data.test, tc.task_weight, base);
    ck_assert_msg(res.final.test[8] < 0.8 * base[8], "%s: total test loss %g, mean predictor %g",
                  family, res.final.test[8], base[8]);
    for (int k = 1; k < 6; k += 2) {
        ck_assert(data.kind[k] == TASK_BINARY);
        ck_assert_msg(res.final.auc[METRIC_TEST][k] > 0.6, "%s task %d AUC %g", family, k + 1,
                      res.final.auc[METRIC_TEST][k]);
    }
    model_free(m);
    data_free(&data);
}
END_TEST

/* ---- recorded: the cross-stitch matrices in the stored weights ---- */

/* `mtlab run` records every trial's final parameters: the stitch<l> tensors
 * (T x T) are found by name in `tensor` and read from the `weights` blob,
 * here by the pure-SQL float32 decoding the README shows; the values equal
 * the blob's bytes read directly, and the units moved from the 0.9/0.1 init. */
START_TEST(test_alpha_recorded) {
    const char *ini = "[experiment]\nname = stitch\nrepeats = 1\nseed = 3\n"
                      "[data]\ntasks = 3\nbinary = 2\ncorrelation = 0.5\ndim = 10\n"
                      "train = 300\nvalidation = 100\ntest = 100\n"
                      "[train]\nbatch = 32\nsteps = 40\neval_every = 20\n"
                      "[model]\nname = cross_stitch, l2_constrained, tensor_factorization\n"
                      "column_layers = 2\ncolumn_hidden = 8\nstitch_lr = 10\n";
    char *dir = test_tmpdir(), *path = test_write_file(dir, "s.ini", ini),
         *db = test_join(dir, "s.db");
    char *out, *errout;
    const char *args[] = {"run", path, "--db", db, "--jobs", "1", NULL};
    ck_assert_msg(run_mtlab(&out, &errout, args) == 0, "%s", errout);
    free(out);
    free(errout);
    sqlite3 *h;
    ck_assert(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    /* blob bytes of stitch2, and the README's decoding of the same values */
    sqlite3_stmt *q;
    const char *blob_sql =
        "SELECT t.rows, t.cols, substr(w.data, 4 * t.offset + 1, 4 * t.rows * t.cols) "
        "FROM tensor t JOIN weights w USING (trial_id) JOIN trial r ON r.id = t.trial_id "
        "WHERE r.model = 'cross_stitch' AND t.name = 'stitch2' AND w.dtype = 'float32'";
    ck_assert(sqlite3_prepare_v2(h, blob_sql, -1, &q, NULL) == SQLITE_OK);
    ck_assert(sqlite3_step(q) == SQLITE_ROW);
    ck_assert_int_eq(sqlite3_column_int(q, 0), 3);
    ck_assert_int_eq(sqlite3_column_int(q, 1), 3);
    ck_assert_int_eq(sqlite3_column_bytes(q, 2), 36);
    float alpha[9];
    memcpy(alpha, sqlite3_column_blob(q, 2), sizeof alpha); /* little-endian host */
    sqlite3_finalize(q);
    double moved = 0;
    for (int i = 0; i < 9; i++)
        moved += fabs(alpha[i] - (i % 4 == 0 ? 0.9 : 0.05));
    ck_assert_msg(moved > 1e-3, "the units did not train (%g)", moved);
    const char *decode = embedded_sql("sql/figures/stitch-alpha.sql");
    ck_assert_ptr_nonnull(decode);
    ck_assert(sqlite3_prepare_v2(h, decode, -1, &q, NULL) == SQLITE_OK);
    int rows = 0;
    while (sqlite3_step(q) == SQLITE_ROW) {
        /* trial_id, model, tensor, dst, src, value */
        if (strcmp((const char *)sqlite3_column_text(q, 2), "stitch2") != 0) continue;
        const int dst = sqlite3_column_int(q, 3), src = sqlite3_column_int(q, 4);
        ck_assert_msg(sqlite3_column_double(q, 5) == (double)alpha[(dst - 1) * 3 + (src - 1)],
                      "stitch2[%d, %d]: %.9g vs %.9g", dst, src, sqlite3_column_double(q, 5),
                      (double)alpha[(dst - 1) * 3 + (src - 1)]);
        rows++;
    }
    sqlite3_finalize(q);
    ck_assert_int_eq(rows, 9);
    /* every family's trial done, with its parameter count */
    ck_assert_int_eq(test_query(db, "SELECT count(*) FROM trial WHERE status = 'done'"), 3);
    ck_assert(test_query(db, "SELECT count(*) FROM metric m JOIN trial t ON t.id = m.trial_id "
                             "WHERE t.model = 'l2_constrained' AND m.name = 'train/penalty'") == 2);
    /* `mtlab show ID` prints a `mtlab train` command (stitch_lr, column_layers, ...
     * included) that reproduces each family's stored final test losses bit for bit. */
    for (int id = 1; id <= 3; id++) {
        char sql[160];
        double stored[3];
        for (int k = 0; k < 3; k++) {
            snprintf(sql, sizeof sql,
                     "SELECT value FROM v_final WHERE trial_id = %d AND name = 'test/loss/t%d'", id,
                     k + 1);
            stored[k] = test_query(db, sql);
        }
        char *train_out = test_rerun_shown(db, id);
        const char *final = strstr(train_out, "final test loss:");
        ck_assert_ptr_nonnull(final);
        double t[3];
        ck_assert_int_eq(
            sscanf(final, "final test loss: t1 %lf t2 %lf t3 %lf", &t[0], &t[1], &t[2]), 3);
        for (int k = 0; k < 3; k++)
            ck_assert_msg(t[k] == stored[k], "trial %d task %d: train %.17g, stored %.17g", id,
                          k + 1, t[k], stored[k]);
        free(train_out);
    }
    sqlite3_close(h);
    free(path);
    free(db);
    free(dir);
}
END_TEST

Suite *fusion3_suite(void) {
    Suite *s = suite_create("fusion3");
    TCase *grad = tcase_create("gradients");
    tcase_set_timeout(grad, 60);
    tcase_add_loop_test(grad, test_gradients, 0, (int)(sizeof grad_cases / sizeof grad_cases[0]));
    suite_add_tcase(s, grad);

    TCase *red = tcase_create("reductions");
    tcase_set_timeout(red, 30);
    tcase_add_test(red, test_cross_stitch_identity_is_independent);
    tcase_add_test(red, test_cross_stitch_mixing);
    tcase_add_test(red, test_l2_zero_is_independent);
    tcase_add_test(red, test_l2_penalty_pairs);
    tcase_add_test(red, test_tucker_full_rank_holds_any_weights);
    tcase_add_test(red, test_tucker_truncated);
    tcase_add_test(red, test_param_counts);
    tcase_add_test(red, test_overflowing_configs);
    suite_add_tcase(s, red);

    TCase *tr = tcase_create("trainer");
    tcase_set_timeout(tr, 120);
    tcase_add_test(tr, test_adam_scaled_slices);
    tcase_add_test(tr, test_stitch_lr_scales_the_update);
    tcase_add_test(tr, test_penalty_in_the_trainer);
    tcase_add_loop_test(tr, test_eight_tasks_mixed, 0, 3);
    tcase_add_test(tr, test_alpha_recorded);
    suite_add_tcase(s, tr);
    return s;
}
