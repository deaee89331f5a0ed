/* shared_bottom.c -- the Shared-Bottom model (Caruana; MMoE §3.1, Eq 1) and
 * the Single-Task baseline, which is the same network with one bottom per task.
 *
 *   shared_bottom:  y_k = tower_k(relu(x · Wb + bb))          one bottom
 *   single:         y_k = tower_k(relu(x · Wb_k + bb_k))      T bottoms
 */
#include <stdio.h>

#include "models/blocks.h"
#include "nn/layers.h"

/* The hyper-parameters of shared_bottom and single: their [model] keys
 * (model.h).  Only the bottom's default differs: the paper's Shared-Bottom has
 * one bottom of 113 units (about MMoE's parameter count), the single-task
 * baseline a bottom of 16 per task. */
enum { BOTTOM_HIDDEN, BOTTOM_TOWER_HIDDEN, BOTTOM_INIT, BOTTOM_N_HP };
#define BOTTOM_HP(bottom_default, bottom_help)                                                     \
    {                                                                                              \
        [BOTTOM_HIDDEN] = {"bottom_hidden", HP_INT, 1, 1e6, bottom_default, bottom_help},          \
        [BOTTOM_TOWER_HIDDEN] = {                                                                  \
            "tower_hidden", HP_INT, 1, 1e6, 8, "hidden units of each task tower"},                 \
        [BOTTOM_INIT] = MODEL_HP_INIT,                                                             \
    }
static const model_hp_t shared_bottom_hp[BOTTOM_N_HP] =
    BOTTOM_HP(113, "units of the bottom shared by all tasks");
static const model_hp_t single_hp[BOTTOM_N_HP] = BOTTOM_HP(16, "units of each task's own bottom");

typedef struct {
    int n_bottoms;                 /* 1 (shared_bottom) or T (single) */
    mlp_t bottom[MODEL_MAX_TASKS]; /* one ReLU layer d -> H each */
    tower_t tower[MODEL_MAX_TASKS];
} bottom_impl_t;

/* What bottom_build declares and allocates (model_ops_t.sizes). */
static int bottom_sizes(const model_config_t *c, int n_bottoms, model_sizes_t *out, err_t *err) {
    const int d = c->input_dim, H = model_hp_int(c, BOTTOM_HIDDEN), B = c->max_batch, T = c->tasks;
    size_t bottom_W, bottom_params, hidden_act, tower_params;
    if (block_count(&bottom_W, d, H, 1))
        return err_set(err, ERR_USAGE, "a bottom of %d inputs x %d hidden units overflows", d, H);
    if (block_count(&hidden_act, n_bottoms, B, H))
        return err_set(err, ERR_USAGE, "%d bottoms x max_batch %d x %d hidden units overflows",
                       n_bottoms, B, H);
    size_tally_t bottom_act = {0};
    if (mlp_sizes(d, 1, &H, B, &bottom_params, &bottom_act, err)) return -1;
    for (int j = 0; j < n_bottoms; j++)
        size_tally_add(&out->act, &bottom_act);
    size_tally_t tower_act = {0};
    if (tower_sizes(H, model_hp_int(c, BOTTOM_TOWER_HIDDEN), B, &tower_params, &tower_act, err)) return -1;
    for (int k = 0; k < T; k++)
        size_tally_add(&out->act, &tower_act);
    if (size_mul(&bottom_params, bottom_params, n_bottoms) ||
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
    bottom_impl_t *s = model_work(m, sizeof *s, err);
    if (!s) return -1;
    m->impl = s;
    s->n_bottoms = n_bottoms;
    const int H = model_hp_int(c, BOTTOM_HIDDEN);
    char name[48];
    static const char *const unnamed[] = {""}; /* "bottom.W", not "bottom.l1.W" */
    for (int j = 0; j < n_bottoms; j++) {
        if (n_bottoms == 1)
            snprintf(name, sizeof name, "bottom");
        else
            snprintf(name, sizeof name, "bottom%d", j + 1);
        if (mlp_build(m, &s->bottom[j], name, unnamed, c->input_dim, 1, &H, true, err)) return -1;
    }
    for (int k = 0; k < c->tasks; k++) {
        snprintf(name, sizeof name, "tower%d", k + 1);
        if (tower_build(m, &s->tower[k], name, H, model_hp_int(c, BOTTOM_TOWER_HIDDEN), err))
            return -1;
    }
    return 0;
}

static int shared_bottom_build(model_t *m, err_t *err) {
    return bottom_build(m, 1, err);
}
static int single_build(model_t *m, err_t *err) {
    return bottom_build(m, m->cfg.tasks, err);
}

static void bottom_forward(model_t *m, const real *x, int B, real *pred, model_mode_t mode) {
    bottom_impl_t *s = m->impl;
    const int T = m->cfg.tasks, d = m->cfg.input_dim, H = model_hp_int(&m->cfg, BOTTOM_HIDDEN);
    for (int j = 0; j < s->n_bottoms; j++) /* h_j[B, H] = relu(x[B, d] · W_j + b_j) */
        mlp_forward(m, &s->bottom[j], x, d, B);
    for (int k = 0; k < T; k++)
        tower_forward(m, &s->tower[k], mlp_out(&s->bottom[s->n_bottoms == 1 ? 0 : k]), H, B, pred,
                      T, k);
}

static void bottom_backward(model_t *m, const real *x, int B, const real *dpred) {
    bottom_impl_t *s = m->impl;
    const int T = m->cfg.tasks, d = m->cfg.input_dim, H = model_hp_int(&m->cfg, BOTTOM_HIDDEN);
    for (int k = 0; k < T; k++) {
        const mlp_t *bottom = &s->bottom[s->n_bottoms == 1 ? 0 : k];
        tower_backward(m, &s->tower[k], mlp_out(bottom), H, B, dpred, T, k, mlp_dout(bottom));
    }
    for (int j = 0; j < s->n_bottoms; j++)
        mlp_backward(m, &s->bottom[j], x, d, B, NULL);
}

const model_ops_t model_shared_bottom_ops = {
    .name = "shared_bottom",
    .summary = "one bottom MLP shared by all tasks, one tower per task (bottom_hidden 113)",
    .hp = shared_bottom_hp,
    .n_hp = BOTTOM_N_HP,
    .sizes = shared_bottom_sizes,
    .build = shared_bottom_build,
    .forward = bottom_forward,
    .backward = bottom_backward,
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
};
