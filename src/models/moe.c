/* moe.c -- One-gate and Multi-gate Mixture-of-Experts (MMoE §4, Eq 5-8).
 *
 *   experts  E = relu(x · We + be)                 [B, n, h]  (all n experts in one GEMM)
 *   gates    P_g = softmax(x · Wg_g (+ bg_g))      [B, G, n]  (all G gates in one GEMM; no bias
 *                                                              as in Eq 8 unless gate_bias = on)
 *   mixture  f_g = Σ_i P_g[:, i] · E[:, i, :]      [B, h]
 *   towers   y_k = tower_k(f_{g(k)})
 *
 * MMoE has one gate per task (G = T, g(k) = k); OMoE one gate shared by all
 * tasks (G = 1, g(k) = 0).
 */
#include <stdio.h>

#include "models/blocks.h"
#include "nn/layers.h"

/* The hyper-parameters of omoe and mmoe: their [model] keys (model.h). */
enum { MOE_EXPERTS, MOE_EXPERT_HIDDEN, MOE_TOWER_HIDDEN, MOE_INIT, MOE_GATE_BIAS, MOE_N_HP };
static const model_hp_t moe_hp[MOE_N_HP] = {
    [MOE_EXPERTS] = {"experts", HP_INT, 1, 4096, 8, "experts per mixture"},
    [MOE_EXPERT_HIDDEN] = {"expert_hidden", HP_INT, 1, 1e6, 16, "hidden units per expert"},
    [MOE_TOWER_HIDDEN] = {"tower_hidden", HP_INT, 1, 1e6, 8, "hidden units of each task tower"},
    [MOE_INIT] = MODEL_HP_INIT,
    [MOE_GATE_BIAS] = MODEL_HP_GATE_BIAS,
};

typedef struct {
    experts_t experts;              /* d -> n·h, all experts in one GEMM */
    gates_t gates;                  /* d -> G·n, no bias (Eq 8) unless gate_bias */
    real *mixed[MODEL_MAX_TASKS];   /* per gate [max_batch, h] */
    real *d_mixed[MODEL_MAX_TASKS]; /* their gradients */
    tower_t tower[MODEL_MAX_TASKS];
} moe_impl_t;

/* What moe_build declares and allocates (model_ops_t.sizes): the blocks'
 * sizes, checked in size_t before any int product reaches BLAS. */
static int moe_sizes(const model_config_t *c, int G, model_sizes_t *out, err_t *err) {
    const int d = c->input_dim, T = c->tasks, n = model_hp_int(c, MOE_EXPERTS), h = model_hp_int(c, MOE_EXPERT_HIDDEN);
    const int B = c->max_batch;
    const bool gate_bias = model_hp_int(c, MOE_GATE_BIAS) != 0;
    size_t experts_params, gates_params, mixed_act, tower_params;
    if (experts_sizes(d, n, h, B, true, &experts_params, &out->act, err) ||
        gates_sizes(d, G, n, gate_bias, B, &gates_params, &out->act, err))
        return -1;
    if (block_count(&mixed_act, G, B, h))
        return err_set(err, ERR_USAGE, "%d gates x max_batch %d x %d hidden units overflows", G, B,
                       h);
    size_tally_blocks(&out->act, 2 * (size_t)G, (size_t)B * h, sizeof(real)); /* mixed, d_mixed */
    size_tally_t tower_act = {0};
    if (tower_sizes(h, model_hp_int(c, MOE_TOWER_HIDDEN), B, &tower_params, &tower_act, err)) return -1;
    for (int k = 0; k < T; k++)
        size_tally_add(&out->act, &tower_act);
    if (size_add(&out->n_params, experts_params, gates_params) ||
        size_mul(&tower_params, tower_params, T) ||
        size_add(&out->n_params, out->n_params, tower_params))
        return err_set(err, ERR_USAGE, "the parameter count overflows");
    out->n_weights = out->n_params;
    out->n_tensors = 3 + gate_bias + 4 * T; /* experts.W, experts.b, gates.W (.b); 4 per tower */
    out->state_bytes = sizeof(moe_impl_t);
    out->n_gates = G;
    out->gate_experts = (size_t)G * n; /* fits: gates_sizes checked G·n */
    return 0;
}

static int omoe_sizes(const model_config_t *c, model_sizes_t *out, err_t *err) {
    return moe_sizes(c, 1, out, err);
}
static int mmoe_sizes(const model_config_t *c, model_sizes_t *out, err_t *err) {
    return moe_sizes(c, c->tasks, out, err);
}

/* Builds after moe_sizes() accepted the config: the int products below fit. */
static int moe_build(model_t *m, int G, err_t *err) {
    const model_config_t *c = &m->cfg;
    moe_impl_t *s = model_work(m, sizeof *s, err);
    if (!s) return -1;
    m->impl = s;
    const int n = model_hp_int(c, MOE_EXPERTS), h = model_hp_int(c, MOE_EXPERT_HIDDEN);
    if (experts_build(m, &s->experts, "experts", c->input_dim, n, h, NULL, NULL, 0, err) ||
        gates_build(m, &s->gates, "gates", c->input_dim, G, n, model_hp_int(c, MOE_GATE_BIAS) != 0,
                    err))
        return -1;
    char name[48];
    for (int k = 0; k < c->tasks; k++) {
        snprintf(name, sizeof name, "tower%d", k + 1);
        if (tower_build(m, &s->tower[k], name, h, model_hp_int(c, MOE_TOWER_HIDDEN), err)) return -1;
    }
    for (int g = 0; g < G; g++) {
        /* OMoE's one gate feeds every task; MMoE's gate g feeds task g. */
        snprintf(name, sizeof name, "t%d", g + 1);
        if (!(s->mixed[g] = model_act(m, h, err)) || !(s->d_mixed[g] = model_act_grad(m, h, err)) ||
            gates_register(m, &s->gates, g, G == 1 ? "shared" : name, 1, G == 1 ? "shared" : name,
                           err))
            return -1;
    }
    return 0;
}

static int omoe_build(model_t *m, err_t *err) {
    return moe_build(m, 1, err);
}
static int mmoe_build(model_t *m, err_t *err) {
    return moe_build(m, m->cfg.tasks, err);
}

static void moe_forward(model_t *m, const real *x, int B, real *pred, model_mode_t mode) {
    moe_impl_t *s = m->impl;
    const int d = m->cfg.input_dim, n = model_hp_int(&m->cfg, MOE_EXPERTS), h = model_hp_int(&m->cfg, MOE_EXPERT_HIDDEN), T = m->cfg.tasks,
              G = s->gates.G;
    experts_forward(m, &s->experts, x, d, B); /* E[B, n·h] = relu(x · We + be) */
    gates_forward(m, &s->gates, x, d, B);     /* P[B, G·n] = softmax per gate of x · Wg */
    for (int g = 0; g < G; g++)               /* f_g[B, h] = Σ_i P_g[B, i] E[B, i, h] */
        gates_mix(&s->gates, g, 0, &s->experts, 0, n, B, s->mixed[g], h, false);
    for (int k = 0; k < T; k++)
        tower_forward(m, &s->tower[k], s->mixed[G == 1 ? 0 : k], h, B, pred, T, k);
}

static void moe_backward(model_t *m, const real *x, int B, const real *dpred) {
    moe_impl_t *s = m->impl;
    const int d = m->cfg.input_dim, n = model_hp_int(&m->cfg, MOE_EXPERTS), h = model_hp_int(&m->cfg, MOE_EXPERT_HIDDEN), T = m->cfg.tasks,
              G = s->gates.G;
    for (int k = 0; k < T; k++) {
        int g = G == 1 ? 0 : k;
        tower_backward(m, &s->tower[k], s->mixed[g], h, B, dpred, T, k, s->d_mixed[g]);
    }
    for (int g = 0; g < G; g++)
        gates_mix_backward(&s->gates, g, 0, &s->experts, 0, n, B, s->d_mixed[g], h);
    gates_backward(m, &s->gates, x, d, B, NULL);
    experts_backward(m, &s->experts, x, d, B, NULL);
}

const model_ops_t model_omoe_ops = {
    .name = "omoe",
    .summary =
        "one-gate mixture of experts: experts x expert_hidden, ONE softmax gate for all tasks",
    .hp = moe_hp,
    .n_hp = MOE_N_HP,
    .sizes = omoe_sizes,
    .build = omoe_build,
    .forward = moe_forward,
    .backward = moe_backward,
};

const model_ops_t model_mmoe_ops = {
    .name = "mmoe",
    .summary = "multi-gate mixture of experts: experts x expert_hidden, one softmax gate per task",
    .hp = moe_hp,
    .n_hp = MOE_N_HP,
    .sizes = mmoe_sizes,
    .build = mmoe_build,
    .forward = moe_forward,
    .backward = moe_backward,
};
