/* cross_stitch.c -- Cross-stitch networks (Misra et al. 2016; MMoE §6.1;
 * reference mtl-models.md §8).
 *
 * One column per task: column_layers dense ReLU layers of column_hidden
 * units (columns_t).  After each hidden layer l a learned T x T matrix A^l
 * (tensor "stitch<l>", row t = the task it feeds) mixes the columns:
 *
 *     h_t^l = relu(s_t^{l-1} · W_t^l + b_t^l)      (s_t^0 = x)
 *     s_t^l = Σ_s A^l[t, s] h_s^l                  (the cross-stitch unit)
 *     y_t   = tower_t(s_t^L)                        (ReLU hidden layer, one output)
 *
 * A column ends in a task tower, as in the other families (AdaTT's code
 * stitches after every expert layer too, then its towers): with A^l = I the
 * model is T independent single-task networks.  Backward (§8):
 * ∂A[t, s] = Σ_{b,d} ∂s_t · h_s and ∂h_s += Σ_t A[t, s] ∂s_t.
 *
 * Initialisation of A (stitch_init, pitfall P3): `paper` 0.9 on the diagonal
 * and 0.1/(T-1) off it (Misra's 0.9/0.1, each row summing to 1 for any T;
 * set by init_custom, drawing nothing); `random` draws A like any weight
 * [T, T] of the model's scheme (model.init torch gives AdaTT's U(±1/√T)).
 * The units train with their own learning rate, train.lr x stitch_lr
 * (tensor_t.lr_scale; Misra gave them a 10²-10³ times larger one with SGD).
 * The matrices are stored with the weights (tensor "stitch<l>"). */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "models/blocks.h"

enum { CS_HIDDEN, CS_LAYERS, CS_TOWER_HIDDEN, CS_STITCH_INIT, CS_STITCH_LR, CS_INIT, CS_N_HP };
enum { STITCH_INIT_PAPER = 0, STITCH_INIT_RANDOM };

static const model_hp_t cross_stitch_hp[CS_N_HP] = {
    [CS_HIDDEN] = {"column_hidden", HP_INT, 1, 1e6, 64, "units of each hidden layer of a column"},
    [CS_LAYERS] = {"column_layers", HP_INT, 1, MLP_MAX_LAYERS, 1,
                   "hidden layers per column (a cross-stitch unit after each)"},
    [CS_TOWER_HIDDEN] = {"tower_hidden", HP_INT, 1, 1e6, 8, "hidden units of each task tower"},
    [CS_STITCH_INIT] = {"stitch_init", HP_WORD, 0, 1, STITCH_INIT_PAPER,
                        "cross-stitch matrices start at: paper (0.9 diagonal, 0.1/(T-1) off it) "
                        "or random (drawn as a T x T weight by model.init)",
                        "paper random"},
    [CS_STITCH_LR] = {"stitch_lr", HP_NUM, 1e-6, 1e6, 1,
                      "learning-rate multiplier of the cross-stitch matrices (x train.lr)"},
    [CS_INIT] = MODEL_HP_INIT,
};

typedef struct {
    columns_t col;
    int stitch[MLP_MAX_LAYERS];                   /* tensor A^l [T, T] */
    real *s[MLP_MAX_LAYERS], *ds[MLP_MAX_LAYERS]; /* [max_batch, T·D] stitched, its gradient */
    tower_t tower[MODEL_MAX_TASKS];
} cross_stitch_t;

static int cross_stitch_sizes(const model_config_t *c, model_sizes_t *out, err_t *err) {
    const int d = c->input_dim, T = c->tasks, B = c->max_batch;
    const int D = model_hp_int(c, CS_HIDDEN), L = model_hp_int(c, CS_LAYERS);
    const int tower_hidden = model_hp_int(c, CS_TOWER_HIDDEN);
    size_t columns, tower, rows, towers, stitches = (size_t)L * T * T;
    if (columns_sizes(d, T, L, D, B, &columns, &out->act, err)) return -1;
    if (block_count(&rows, B, T, D)) return err_set(err, ERR_USAGE, "the stitched layer overflows");
    size_tally_blocks(&out->act, 2 * (size_t)L, rows, sizeof(real)); /* s, ds */
    size_tally_t tower_act = {0};
    if (tower_sizes(D, tower_hidden, B, &tower, &tower_act, err)) return -1;
    for (int t = 0; t < T; t++)
        size_tally_add(&out->act, &tower_act);
    if (size_mul(&towers, tower, T) || size_add(&out->n_params, columns, towers) ||
        size_add(&out->n_params, out->n_params, stitches))
        return err_set(err, ERR_USAGE, "the parameter count overflows");
    out->n_weights = out->n_params;
    out->n_tensors = 2 * L * T + L + 4 * T;
    out->state_bytes = sizeof(cross_stitch_t);
    return 0;
}

static int cross_stitch_build(model_t *m, err_t *err) {
    const model_config_t *c = &m->cfg;
    const int T = c->tasks, D = model_hp_int(c, CS_HIDDEN), L = model_hp_int(c, CS_LAYERS);
    cross_stitch_t *s = model_work(m, sizeof *s, err);
    if (!s) return -1;
    m->impl = s;
    if (columns_build(m, &s->col, "col", c->input_dim, T, L, D, err)) return -1;
    const bool paper = (int)c->hp[CS_STITCH_INIT] == STITCH_INIT_PAPER;
    char name[48];
    for (int l = 0; l < L; l++) {
        snprintf(name, sizeof name, "stitch%d", l + 1);
        s->stitch[l] =
            model_declare(m, name, T, T, paper ? INIT_CUSTOM : INIT_WEIGHT, TENSOR_WEIGHT);
        if (s->stitch[l] < 0) return err_set(err, ERR_FAIL, "out of memory declaring %s", name);
        model_set_lr_scale(m, s->stitch[l], c->hp[CS_STITCH_LR]);
        if (!(s->s[l] = model_act(m, T * D, err)) || !(s->ds[l] = model_act_grad(m, T * D, err)))
            return -1;
    }
    for (int t = 0; t < T; t++) {
        snprintf(name, sizeof name, "tower%d", t + 1);
        if (tower_build(m, &s->tower[t], name, D, model_hp_int(c, CS_TOWER_HIDDEN), err)) return -1;
    }
    return 0;
}

/* stitch_init = paper: A = 0.9 on the diagonal, 0.1/(T-1) off it (T = 1: 1). */
static void cross_stitch_init(model_t *m, rng_t *rng) {
    (void)rng;
    const cross_stitch_t *s = m->impl;
    const int T = m->cfg.tasks;
    if ((int)m->cfg.hp[CS_STITCH_INIT] != STITCH_INIT_PAPER) return;
    for (int l = 0; l < s->col.L; l++) {
        real *A = model_param(m, s->stitch[l]);
        for (int t = 0; t < T; t++)
            for (int u = 0; u < T; u++)
                A[t * T + u] = (real)(T == 1 ? 1.0 : t == u ? 0.9 : 0.1 / (T - 1));
    }
}

/* Row kernels in blocks of STITCH_LANES, which GCC vectorises at -O2 (its
 * cost model takes loops of known trip count, as in nn/layers.c). */
#define STITCH_LANES 8

/* o[n] (= with first, else +=) a · x[n] */
static void axpy_row(real *restrict o, real a, const real *restrict x, int n, bool first) {
    int j = 0;
    if (first) {
        for (; j + STITCH_LANES <= n; j += STITCH_LANES)
            for (int k = 0; k < STITCH_LANES; k++)
                o[j + k] = a * x[j + k];
        for (; j < n; j++)
            o[j] = a * x[j];
        return;
    }
    for (; j + STITCH_LANES <= n; j += STITCH_LANES)
        for (int k = 0; k < STITCH_LANES; k++)
            o[j + k] += a * x[j + k];
    for (; j < n; j++)
        o[j] += a * x[j];
}

/* Σ_j x[j] y[j], in STITCH_LANES partial sums added in a fixed order. */
static real dot_row(const real *restrict x, const real *restrict y, int n) {
    real part[STITCH_LANES] = {0}, sum = 0;
    int j = 0;
    for (; j + STITCH_LANES <= n; j += STITCH_LANES)
        for (int k = 0; k < STITCH_LANES; k++)
            part[k] += x[j + k] * y[j + k];
    for (int k = 0; k < STITCH_LANES; k++)
        sum += part[k];
    for (; j < n; j++)
        sum += x[j] * y[j];
    return sum;
}

/* out[B, T·D] (column t at t·D) = Σ_u A[t, u] in[:, u·D..]: the cross-stitch
 * unit on every row. */
static void stitch_forward(real *out, const real *A, const real *in, int B, int T, int D) {
    const size_t TD = (size_t)T * D;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int u = 0; u < T; u++)
                axpy_row(out + b * TD + (size_t)t * D, A[t * T + u], in + b * TD + (size_t)u * D, D,
                         u == 0);
}

/* dA[T, T] += Σ_{b,j} dout[b, t·D + j] in[b, u·D + j];
 * din[b, u·D + j] += Σ_t A[t, u] dout[b, t·D + j]. */
static void stitch_backward(real *dA, real *din, const real *A, const real *in, const real *dout,
                            int B, int T, int D) {
    const size_t TD = (size_t)T * D;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            const real *g = dout + b * TD + (size_t)t * D;
            for (int u = 0; u < T; u++) {
                const size_t at = b * TD + (size_t)u * D;
                dA[t * T + u] += dot_row(g, in + at, D);
                axpy_row(din + at, A[t * T + u], g, D, false);
            }
        }
}

static void cross_stitch_forward(model_t *m, const real *x, int B, real *pred, model_mode_t mode) {
    (void)mode;
    cross_stitch_t *s = m->impl;
    const int T = m->cfg.tasks, D = s->col.D, TD = T * D;
    for (int l = 0; l < s->col.L; l++) {
        if (l == 0)
            columns_forward(m, &s->col, 0, x, m->cfg.input_dim, 0, B); /* every column reads x */
        else
            columns_forward(m, &s->col, l, s->s[l - 1], TD, D, B);
        stitch_forward(s->s[l], model_param(m, s->stitch[l]), s->col.h[l], B, T, D);
    }
    const real *last = s->s[s->col.L - 1];
    for (int t = 0; t < T; t++)
        tower_forward(m, &s->tower[t], last + (size_t)t * D, TD, B, pred, T, t);
}

static void cross_stitch_backward(model_t *m, const real *x, int B, const real *dpred) {
    cross_stitch_t *s = m->impl;
    const int T = m->cfg.tasks, D = s->col.D, TD = T * D, L = s->col.L;
    for (int t = 0; t < T; t++)
        tower_backward(m, &s->tower[t], s->s[L - 1] + (size_t)t * D, TD, B, dpred, T, t,
                       s->ds[L - 1] + (size_t)t * D);
    for (int l = L - 1; l >= 0; l--) {
        stitch_backward(model_grad(m, s->stitch[l]), s->col.dh[l], model_param(m, s->stitch[l]),
                        s->col.h[l], s->ds[l], B, T, D);
        if (l == 0)
            columns_backward(m, &s->col, 0, x, m->cfg.input_dim, 0, B, NULL);
        else
            columns_backward(m, &s->col, l, s->s[l - 1], TD, D, B, s->ds[l - 1]);
    }
}

const model_ops_t model_cross_stitch_ops = {
    .name = "cross_stitch",
    .summary = "one column per task, a learned T x T cross-stitch mixing after each hidden layer, "
               "towers (column_hidden 64)",
    .hp = cross_stitch_hp,
    .n_hp = CS_N_HP,
    .sizes = cross_stitch_sizes,
    .build = cross_stitch_build,
    .forward = cross_stitch_forward,
    .backward = cross_stitch_backward,
    .init_custom = cross_stitch_init,
};
