/* l2_constrained.c -- L2-constrained soft sharing (Duong et al. 2015; MMoE
 * §6.1; reference mtl-models.md §9).
 *
 * One network per task: a column of column_layers dense ReLU layers of
 * column_hidden units (columns_t) and a tower.  The layers chosen by l2_tied
 * are softly tied by the penalty (the model's `penalty` hook)
 *
 *     P = l2_alpha Σ_{s<t} ‖θ_s − θ_t‖²  =  l2_alpha · T · Σ_t ‖θ_t − θ̄‖²,
 *
 * θ_t being task t's tied weights and biases and θ̄ their mean over the
 * tasks (the two forms are equal; the second costs O(T) per parameter).  Its
 * gradient is ∂P/∂θ_t = 2 l2_alpha Σ_{s≠t} (θ_t − θ_s) = 2 l2_alpha T (θ_t − θ̄).
 * For T = 2 this is Duong's α‖θ_1 − θ_2‖².
 *
 * The trainer minimises Σ_k w_k loss_k + P and records P on its own, as the
 * `train/penalty` curve: the `…/loss/…` curves are the task losses alone
 * (train.h).  With l2_alpha = 0 the model is T independent networks.
 *
 * l2_tied (the MMoE paper does not say which layers are tied; the reference
 * recommends the hidden layers, task outputs free): `hidden` every hidden
 * layer of the columns, `first` only the first (the layer reading the
 * input), `all` the hidden layers and the towers. */
#include <stdio.h>
#include <string.h>

#include "models/blocks.h"

enum { L2_HIDDEN, L2_LAYERS, L2_TOWER_HIDDEN, L2_ALPHA, L2_TIED, L2_INIT, L2_N_HP };
enum { L2_TIED_HIDDEN = 0, L2_TIED_FIRST, L2_TIED_ALL };

static const model_hp_t l2_constrained_hp[L2_N_HP] = {
    [L2_HIDDEN] = {"column_hidden", HP_INT, 1, 1e6, 16,
                   "units of each hidden layer of a task's network"},
    [L2_LAYERS] = {"column_layers", HP_INT, 1, MLP_MAX_LAYERS, 1,
                   "hidden layers of each task's network"},
    [L2_TOWER_HIDDEN] = {"tower_hidden", HP_INT, 1, 1e6, 8, "hidden units of each task tower"},
    [L2_ALPHA] = {"l2_alpha", HP_NUM, 0, 1e6, 1e-3,
                  "weight of the penalty l2_alpha sum_{s<t} |theta_s - theta_t|^2 over the tied "
                  "layers"},
    [L2_TIED] = {"l2_tied", HP_WORD, 0, 2, L2_TIED_HIDDEN,
                 "layers tied by the penalty: hidden (every hidden layer), first (the input "
                 "layer only), all (hidden layers and towers)",
                 "hidden first all"},
    [L2_INIT] = MODEL_HP_INIT,
};

/* Tied tensors per task: each hidden layer's W and b, each tower's four. */
#define L2_MAX_TIED (2 * MLP_MAX_LAYERS + 4)

typedef struct {
    columns_t col;
    tower_t tower[MODEL_MAX_TASKS];
    int n_tied;                             /* tied tensors of each task */
    int tied[MODEL_MAX_TASKS][L2_MAX_TIED]; /* [t][k]: tensor k of task t (same shape for all t) */
} l2_constrained_t;

static int l2_constrained_sizes(const model_config_t *c, model_sizes_t *out, err_t *err) {
    const int d = c->input_dim, T = c->tasks, B = c->max_batch;
    const int D = model_hp_int(c, L2_HIDDEN), L = model_hp_int(c, L2_LAYERS);
    size_t columns, tower, towers;
    if (columns_sizes(d, T, L, D, B, &columns, &out->act, err)) return -1;
    size_tally_t tower_act = {0};
    if (tower_sizes(D, model_hp_int(c, L2_TOWER_HIDDEN), B, &tower, &tower_act, err)) return -1;
    for (int t = 0; t < T; t++)
        size_tally_add(&out->act, &tower_act);
    if (size_mul(&towers, tower, T) || size_add(&out->n_params, columns, towers))
        return err_set(err, ERR_USAGE, "the parameter count overflows");
    out->n_weights = out->n_params;
    out->n_tensors = 2 * L * T + 4 * T;
    out->state_bytes = sizeof(l2_constrained_t);
    return 0;
}

static int l2_constrained_build(model_t *m, err_t *err) {
    const model_config_t *c = &m->cfg;
    const int T = c->tasks, D = model_hp_int(c, L2_HIDDEN), L = model_hp_int(c, L2_LAYERS);
    l2_constrained_t *s = model_work(m, sizeof *s, err);
    if (!s) return -1;
    m->impl = s;
    if (columns_build(m, &s->col, "col", c->input_dim, T, L, D, err)) return -1;
    char name[48];
    for (int t = 0; t < T; t++) {
        snprintf(name, sizeof name, "tower%d", t + 1);
        if (tower_build(m, &s->tower[t], name, D, model_hp_int(c, L2_TOWER_HIDDEN), err)) return -1;
    }
    const int tied = (int)c->hp[L2_TIED];
    const int tied_layers = tied == L2_TIED_FIRST ? 1 : L;
    for (int t = 0; t < T; t++) {
        int k = 0;
        for (int l = 0; l < tied_layers; l++) {
            s->tied[t][k++] = s->col.layer[l][t].W;
            s->tied[t][k++] = s->col.layer[l][t].b;
        }
        if (tied == L2_TIED_ALL)
            for (int l = 0; l < s->tower[t].mlp.n_layers; l++) {
                s->tied[t][k++] = s->tower[t].mlp.layer[l].W;
                s->tied[t][k++] = s->tower[t].mlp.layer[l].b;
            }
        s->n_tied = k;
    }
    return 0;
}

static void l2_constrained_forward(model_t *m, const real *x, int B, real *pred,
                                   model_mode_t mode) {
    (void)mode;
    l2_constrained_t *s = m->impl;
    const int T = m->cfg.tasks, D = s->col.D, TD = T * D;
    columns_forward(m, &s->col, 0, x, m->cfg.input_dim, 0, B); /* every column reads x */
    for (int l = 1; l < s->col.L; l++)
        columns_forward(m, &s->col, l, s->col.h[l - 1], TD, D, B);
    const real *last = s->col.h[s->col.L - 1];
    for (int t = 0; t < T; t++)
        tower_forward(m, &s->tower[t], last + (size_t)t * D, TD, B, pred, T, t);
}

static void l2_constrained_backward(model_t *m, const real *x, int B, const real *dpred) {
    l2_constrained_t *s = m->impl;
    const int T = m->cfg.tasks, D = s->col.D, TD = T * D, L = s->col.L;
    for (int t = 0; t < T; t++)
        tower_backward(m, &s->tower[t], s->col.h[L - 1] + (size_t)t * D, TD, B, dpred, T, t,
                       s->col.dh[L - 1] + (size_t)t * D);
    for (int l = L - 1; l >= 1; l--)
        columns_backward(m, &s->col, l, s->col.h[l - 1], TD, D, B, s->col.dh[l - 1]);
    columns_backward(m, &s->col, 0, x, m->cfg.input_dim, 0, B, NULL);
}

/* Elements per block of the penalty's loops (a vector of floats), so GCC
 * vectorises them at -O2 (it takes loops of known trip count). */
#define L2_LANES 8

/* One tied tensor of n values per task: grad_t[i] += c (θ_t[i] − θ̄[i]) with
 * c = 2 alpha T; returns Σ_t Σ_i (θ_t[i] − θ̄[i])², summed per block of
 * L2_LANES in real and the blocks in double. */
static double tied_pull(const real *const *theta, real *const *grad, int T, size_t n, real c) {
    const real inv_T = (real)(1.0 / T);
    double sum = 0;
    for (size_t i = 0; i < n; i += L2_LANES) {
        const int len = n - i < L2_LANES ? (int)(n - i) : L2_LANES;
        real mean[L2_LANES] = {0}, sq[L2_LANES] = {0};
        for (int t = 0; t < T; t++) {
            const real *restrict th = theta[t] + i;
            for (int k = 0; k < len; k++)
                mean[k] += th[k];
        }
        for (int k = 0; k < len; k++)
            mean[k] *= inv_T;
        for (int t = 0; t < T; t++) {
            const real *restrict th = theta[t] + i;
            real *restrict g = grad[t] + i;
            for (int k = 0; k < len; k++) {
                const real diff = th[k] - mean[k];
                g[k] += c * diff;
                sq[k] += diff * diff;
            }
        }
        for (int k = 0; k < len; k++)
            sum += sq[k];
    }
    return sum;
}

/* P = alpha T Σ_t ‖θ_t − θ̄‖² over the tied tensors; grads_t += 2 alpha T (θ_t − θ̄). */
static double l2_constrained_penalty(model_t *m) {
    const l2_constrained_t *s = m->impl;
    const int T = m->cfg.tasks;
    const double alpha = m->cfg.hp[L2_ALPHA], scale = alpha * T;
    if (alpha == 0) return 0;
    double sum = 0;
    for (int k = 0; k < s->n_tied; k++) {
        const tensor_t *first = &m->tensors[s->tied[0][k]];
        const real *theta[MODEL_MAX_TASKS];
        real *grad[MODEL_MAX_TASKS];
        for (int t = 0; t < T; t++) {
            theta[t] = model_param(m, s->tied[t][k]);
            grad[t] = model_grad(m, s->tied[t][k]);
        }
        sum += tied_pull(theta, grad, T, (size_t)first->rows * first->cols, (real)(2 * scale));
    }
    return scale * sum;
}

const model_ops_t model_l2_constrained_ops = {
    .name = "l2_constrained",
    .summary = "one network per task, the tied layers pulled together by l2_alpha sum_{s<t} "
               "|theta_s - theta_t|^2 (column_hidden 16)",
    .hp = l2_constrained_hp,
    .n_hp = L2_N_HP,
    .sizes = l2_constrained_sizes,
    .build = l2_constrained_build,
    .forward = l2_constrained_forward,
    .backward = l2_constrained_backward,
    .penalty = l2_constrained_penalty,
};
