/* shared_bottom.c -- the Shared-Bottom model (Caruana; MMoE §3.1, Eq 1) and
 * the Single-Task baseline, which is the same network with one bottom per task.
 *
 *   shared_bottom:  y_k = tower_k(relu(x · Wb + bb))          one bottom
 *   single:         y_k = tower_k(relu(x · Wb_k + bb_k))      T bottoms
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/blocks.h"
#include "nn/layers.h"

/* The hyper-parameters of shared_bottom and single: their [model] keys
 * (model.h).  Only the bottom's default differs: the paper's Shared-Bottom has
 * one bottom of 113 units (about MMoE's parameter count), the single-task
 * baseline a bottom of 16 per task. */
enum { BOTTOM_HIDDEN, BOTTOM_TOWER_HIDDEN, BOTTOM_N_HP };
#define BOTTOM_HP(bottom_default, bottom_help)                                                     \
    {                                                                                              \
        [BOTTOM_HIDDEN] = {"bottom_hidden", HP_INT, 1, 1e6, bottom_default, bottom_help},          \
        [BOTTOM_TOWER_HIDDEN] = {                                                                  \
            "tower_hidden", HP_INT, 1, 1e6, 8, "hidden units of each task tower"},                 \
    }
static const model_hp_t shared_bottom_hp[BOTTOM_N_HP] =
    BOTTOM_HP(113, "units of the bottom shared by all tasks");
static const model_hp_t single_hp[BOTTOM_N_HP] = BOTTOM_HP(16, "units of each task's own bottom");

typedef struct {
    int n_bottoms;                       /* 1 (shared_bottom) or T (single) */
    dense_ref_t bottom[MODEL_MAX_TASKS];
    real *hidden;                        /* [n_bottoms][max_batch, H] post-ReLU */
    real *dhidden;                       /* same shape */
    tower_t tower[MODEL_MAX_TASKS];
} bottom_impl_t;

static void bottom_free(model_t *m) {
    bottom_impl_t *s = m->impl;
    for (int k = 0; k < m->cfg.tasks; k++) tower_free(&s->tower[k]);
    free(s->hidden);
    free(s->dhidden);
    free(s);
    m->impl = NULL;
}

/* What bottom_build declares and allocates (model_ops_t.sizes). */
static int bottom_sizes(const model_config_t *c, int n_bottoms, model_sizes_t *out, err_t *err) {
    const int d = c->input_dim, H = model_hp_int(c, BOTTOM_HIDDEN), B = c->max_batch, T = c->tasks;
    size_t bottom_W, bottom_params, hidden_act, tower_params;
    if (block_count(&bottom_W, d, H, 1))
        return err_set(err, ERR_USAGE, "a bottom of %d inputs x %d hidden units overflows", d, H);
    if (block_count(&hidden_act, n_bottoms, B, H))
        return err_set(err, ERR_USAGE, "%d bottoms x max_batch %d x %d hidden units overflows",
                       n_bottoms, B, H);
    size_tally_blocks(&out->act, 2, hidden_act, sizeof(real)); /* hidden, dhidden */
    size_tally_t tower_act = {0};
    if (tower_sizes(H, model_hp_int(c, BOTTOM_TOWER_HIDDEN), B, &tower_params, &tower_act, err))
        return -1;
    for (int k = 0; k < T; k++)
        size_tally_add(&out->act, &tower_act);
    if (size_add(&bottom_params, bottom_W, H) ||
        size_mul(&bottom_params, bottom_params, n_bottoms) ||
        size_mul(&tower_params, tower_params, T) ||
        size_add(&out->n_params, bottom_params, tower_params))
        return err_set(err, ERR_USAGE, "the parameter count overflows");
    out->n_weights = out->n_params;
    out->n_tensors = 2 * n_bottoms + 4 * T; /* W, b per bottom; 4 per tower */
    out->state_bytes = sizeof(bottom_impl_t);
    return 0;
}

static int shared_bottom_sizes(const model_config_t *c, model_sizes_t *out, err_t *err) {
    return bottom_sizes(c, 1, out, err);
}
static int single_sizes(const model_config_t *c, model_sizes_t *out, err_t *err) {
    return bottom_sizes(c, c->tasks, out, err);
}

static int bottom_build(model_t *m, int n_bottoms, err_t *err) {
    const model_config_t *c = &m->cfg;
    bottom_impl_t *s = calloc(1, sizeof *s);
    if (!s) return err_set(err, ERR_FAIL, "out of memory");
    m->impl = s;
    s->n_bottoms = n_bottoms;
    const int H = model_hp_int(c, BOTTOM_HIDDEN);
    char name[48];
    for (int j = 0; j < n_bottoms; j++) {
        if (n_bottoms == 1)
            snprintf(name, sizeof name, "bottom");
        else
            snprintf(name, sizeof name, "bottom%d", j + 1);
        if (dense_declare(m, &s->bottom[j], name, c->input_dim, H, true, err)) return -1;
    }
    for (int k = 0; k < c->tasks; k++) {
        snprintf(name, sizeof name, "tower%d", k + 1);
        if (tower_build(m, &s->tower[k], name, H, model_hp_int(c, BOTTOM_TOWER_HIDDEN), err))
            return -1;
    }
    size_t n = (size_t)n_bottoms * c->max_batch * H;
    if (!(s->hidden = block_alloc(n, err)) || !(s->dhidden = block_alloc(n, err))) return -1;
    return 0;
}

static int shared_bottom_build(model_t *m, err_t *err) { return bottom_build(m, 1, err); }
static int single_build(model_t *m, err_t *err) { return bottom_build(m, m->cfg.tasks, err); }

/* Hidden activations of bottom j: [B, H] inside the [max_batch, H] slot. */
static real *slot(const model_t *m, real *base, int j) {
    return base + (size_t)j * m->cfg.max_batch * model_hp_int(&m->cfg, BOTTOM_HIDDEN);
}

static void bottom_forward(model_t *m, const real *x, int B, real *pred, model_mode_t mode) {
    bottom_impl_t *s = m->impl;
    const int T = m->cfg.tasks;
    for (int j = 0; j < s->n_bottoms; j++) /* h_j[B, H] = relu(x[B, d] · W_j + b_j) */
        dense_ref_relu_forward(m, &s->bottom[j], x, B, slot(m, s->hidden, j));
    for (int k = 0; k < T; k++)
        tower_forward(m, &s->tower[k], slot(m, s->hidden, s->n_bottoms == 1 ? 0 : k), B, pred, T,
                      k);
}

static void bottom_backward(model_t *m, const real *x, int B, const real *dpred) {
    bottom_impl_t *s = m->impl;
    const int H = model_hp_int(&m->cfg, BOTTOM_HIDDEN), T = m->cfg.tasks;
    memset(s->dhidden, 0, sizeof(real) * s->n_bottoms * m->cfg.max_batch * H);
    for (int k = 0; k < T; k++) {
        int j = s->n_bottoms == 1 ? 0 : k;
        tower_backward(m, &s->tower[k], slot(m, s->hidden, j), B, dpred, T, k,
                       slot(m, s->dhidden, j));
    }
    for (int j = 0; j < s->n_bottoms; j++) {
        dense_ref_relu_backward(m, &s->bottom[j], x, B, slot(m, s->hidden, j),
                                slot(m, s->dhidden, j), NULL);
    }
}

static int no_gates(const model_t *m, model_gate_t *out) { return 0; }

const model_ops_t model_shared_bottom_ops = {
    .name = "shared_bottom",
    .summary = "one bottom MLP shared by all tasks, one tower per task (bottom_hidden 113)",
    .hp = shared_bottom_hp,
    .n_hp = BOTTOM_N_HP,
    .sizes = shared_bottom_sizes,
    .build = shared_bottom_build,
    .forward = bottom_forward,
    .backward = bottom_backward,
    .gates = no_gates,
    .free_impl = bottom_free,
};

const model_ops_t model_single_ops = {
    .name = "single",
    .summary = "single-task baseline: a separate bottom (bottom_hidden 16) and tower per task",
    .hp = single_hp,
    .n_hp = BOTTOM_N_HP,
    .sizes = single_sizes,
    .build = single_build,
    .forward = bottom_forward,
    .backward = bottom_backward,
    .gates = no_gates,
    .free_impl = bottom_free,
};
