/* moe.c -- One-gate and Multi-gate Mixture-of-Experts (MMoE §4, Eq 5-8).
 *
 *   experts  E = relu(x · We + be)                 [B, n, h]  (all n experts in one GEMM)
 *   gates    P_g = softmax(x · Wg_g)               [B, G, n]  (all G gates in one GEMM, no bias
 *                                                              as in Eq 8)
 *   mixture  f_g = Σ_i P_g[:, i] · E[:, i, :]      [B, h]
 *   towers   y_k = tower_k(f_{g(k)})
 *
 * MMoE has one gate per task (G = T, g(k) = k); OMoE one gate shared by all
 * tasks (G = 1, g(k) = 0).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/blocks.h"
#include "nn/layers.h"

/* The hyper-parameters of omoe and mmoe: their [model] keys (model.h). */
enum { MOE_EXPERTS, MOE_EXPERT_HIDDEN, MOE_TOWER_HIDDEN, MOE_N_HP };
static const model_hp_t moe_hp[MOE_N_HP] = {
    [MOE_EXPERTS] = {"experts", HP_INT, 1, 4096, 8, "experts per mixture"},
    [MOE_EXPERT_HIDDEN] = {"expert_hidden", HP_INT, 1, 1e6, 16, "hidden units per expert"},
    [MOE_TOWER_HIDDEN] = {"tower_hidden", HP_INT, 1, 1e6, 8, "hidden units of each task tower"},
};

typedef struct {
    int G;                 /* number of gates */
    dense_ref_t experts;   /* d -> n*h */
    dense_ref_t gates;     /* d -> G*n, no bias */
    real *expert_out;      /* [max_batch, n*h] post-ReLU */
    real *gate_logits;     /* [max_batch, G*n] */
    real *gate_p;          /* [max_batch, G*n] softmax per gate */
    real *mixed;           /* [G][max_batch, h] */
    real *d_expert_out;    /* backward buffers, same shapes as above */
    real *d_gate_logits;
    real *d_gate_p;
    real *d_mixed;
    tower_t tower[MODEL_MAX_TASKS];
} moe_impl_t;

static void moe_free(model_t *m) {
    moe_impl_t *s = m->impl;
    for (int k = 0; k < m->cfg.tasks; k++) tower_free(&s->tower[k]);
    free(s->expert_out);
    free(s->gate_logits);
    free(s->gate_p);
    free(s->mixed);
    free(s->d_expert_out);
    free(s->d_gate_logits);
    free(s->d_gate_p);
    free(s->d_mixed);
    free(s);
    m->impl = NULL;
}

/* What moe_build declares and allocates (model_ops_t.sizes).  The widths n·h
 * and G·n and the softmax rows max_batch·G reach BLAS and the layers as int;
 * every other size is a size_t within SIZE_BYTES_MAX. */
static int moe_sizes(const model_config_t *c, int G, model_sizes_t *out, err_t *err) {
    const int d = c->input_dim, T = c->tasks, n = model_hp_int(c, MOE_EXPERTS),
              h = model_hp_int(c, MOE_EXPERT_HIDDEN);
    const int B = c->max_batch;
    size_t nh, gn, bg, experts_W, gates_W, expert_act, gate_act, mixed_act, tower_params;
    if (size_mul(&nh, n, h) || nh > INT_MAX)
        return err_set(err, ERR_USAGE,
                       "%d experts x %d hidden units overflows a layer width (at most %d)", n, h,
                       INT_MAX);
    if (size_mul(&gn, G, n) || gn > INT_MAX)
        return err_set(err, ERR_USAGE, "%d gates x %d experts overflows a layer width (at most %d)",
                       G, n, INT_MAX);
    if (size_mul(&bg, B, G) || bg > INT_MAX)
        return err_set(err, ERR_USAGE, "max_batch %d x %d gates overflows (at most %d rows)", B, G,
                       INT_MAX);
    if (block_count(&experts_W, n, h, d))
        return err_set(err, ERR_USAGE, "%d experts x %d hidden units x %d inputs overflows", n, h,
                       d);
    if (block_count(&gates_W, G, n, d))
        return err_set(err, ERR_USAGE, "%d gates x %d experts x %d inputs overflows", G, n, d);
    if (block_count(&expert_act, B, n, h))
        return err_set(err, ERR_USAGE, "max_batch %d x %d experts x %d hidden units overflows", B,
                       n, h);
    if (block_count(&gate_act, B, G, n))
        return err_set(err, ERR_USAGE, "max_batch %d x %d gates x %d experts overflows", B, G, n);
    if (block_count(&mixed_act, G, B, h))
        return err_set(err, ERR_USAGE, "%d gates x max_batch %d x %d hidden units overflows", G, B,
                       h);
    size_tally_blocks(&out->act, 2, expert_act, sizeof(real)); /* expert_out, d_expert_out */
    size_tally_blocks(&out->act, 4, gate_act, sizeof(real));   /* gate logits, p; their grads */
    size_tally_blocks(&out->act, 2, mixed_act, sizeof(real));  /* mixed, d_mixed */
    size_tally_t tower_act = {0};
    if (tower_sizes(h, model_hp_int(c, MOE_TOWER_HIDDEN), B, &tower_params, &tower_act, err))
        return -1;
    for (int k = 0; k < T; k++)
        size_tally_add(&out->act, &tower_act);
    if (size_add(&out->n_params, experts_W, nh) ||
        size_add(&out->n_params, out->n_params, gates_W) ||
        size_mul(&tower_params, tower_params, T) ||
        size_add(&out->n_params, out->n_params, tower_params))
        return err_set(err, ERR_USAGE, "the parameter count overflows");
    out->n_weights = out->n_params;
    out->n_tensors = 3 + 4 * T; /* experts.W, experts.b, gates.W; 4 per tower */
    out->state_bytes = sizeof(moe_impl_t);
    out->n_gates = G;
    out->gate_experts = gn;
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
    moe_impl_t *s = calloc(1, sizeof *s);
    if (!s) return err_set(err, ERR_FAIL, "out of memory");
    m->impl = s;
    s->G = G;
    const int n = model_hp_int(c, MOE_EXPERTS), h = model_hp_int(c, MOE_EXPERT_HIDDEN);
    if (dense_declare(m, &s->experts, "experts", c->input_dim, n * h, true, err) ||
        dense_declare(m, &s->gates, "gates", c->input_dim, G * n, false, err))
        return -1;
    char name[48];
    for (int k = 0; k < c->tasks; k++) {
        snprintf(name, sizeof name, "tower%d", k + 1);
        if (tower_build(m, &s->tower[k], name, h, model_hp_int(c, MOE_TOWER_HIDDEN), err))
            return -1;
    }
    const size_t B = (size_t)c->max_batch;
    if (!(s->expert_out = block_alloc(B * n * h, err)) ||
        !(s->gate_logits = block_alloc(B * G * n, err)) ||
        !(s->gate_p = block_alloc(B * G * n, err)) || !(s->mixed = block_alloc(G * B * h, err)) ||
        !(s->d_expert_out = block_alloc(B * n * h, err)) ||
        !(s->d_gate_logits = block_alloc(B * G * n, err)) ||
        !(s->d_gate_p = block_alloc(B * G * n, err)) ||
        !(s->d_mixed = block_alloc(G * B * h, err)))
        return -1;
    return 0;
}

static int omoe_build(model_t *m, err_t *err) { return moe_build(m, 1, err); }
static int mmoe_build(model_t *m, err_t *err) { return moe_build(m, m->cfg.tasks, err); }

static void moe_forward(model_t *m, const real *x, int B, real *pred, model_mode_t mode) {
    moe_impl_t *s = m->impl;
    const int n = model_hp_int(&m->cfg, MOE_EXPERTS), h = model_hp_int(&m->cfg, MOE_EXPERT_HIDDEN);
    const int T = m->cfg.tasks, G = s->G;
    const size_t slot = (size_t)m->cfg.max_batch * h;
    dense_ref_relu_forward(m, &s->experts, x, B, s->expert_out); /* E[B, n*h] = relu(x · We + be) */
    dense_ref_forward(m, &s->gates, x, B, s->gate_logits); /* L[B, G*n] = x[B, d] · Wg */
    softmax_forward(s->gate_p, s->gate_logits, B * G, n);   /* per gate: rows of n */
    for (int g = 0; g < G; g++) /* f_g[B, h] = Σ_i P_g[B, i] E[B, i, h] */
        mixture_forward(s->mixed + g * slot, s->gate_p + g * n, G * n, s->expert_out, B, n, h);
    for (int k = 0; k < T; k++)
        tower_forward(m, &s->tower[k], s->mixed + (G == 1 ? 0 : k) * slot, B, pred, T, k);
}

static void moe_backward(model_t *m, const real *x, int B, const real *dpred) {
    moe_impl_t *s = m->impl;
    const int n = model_hp_int(&m->cfg, MOE_EXPERTS), h = model_hp_int(&m->cfg, MOE_EXPERT_HIDDEN);
    const int T = m->cfg.tasks, G = s->G;
    const size_t slot = (size_t)m->cfg.max_batch * h;
    memset(s->d_mixed, 0, sizeof(real) * G * slot);
    memset(s->d_expert_out, 0, sizeof(real) * B * n * h);
    memset(s->d_gate_p, 0, sizeof(real) * B * G * n);
    memset(s->d_gate_logits, 0, sizeof(real) * B * G * n);
    for (int k = 0; k < T; k++) {
        int g = G == 1 ? 0 : k;
        tower_backward(m, &s->tower[k], s->mixed + g * slot, B, dpred, T, k, s->d_mixed + g * slot);
    }
    for (int g = 0; g < G; g++)
        mixture_backward(s->d_gate_p + g * n, s->d_expert_out, s->d_mixed + g * slot,
                         s->gate_p + g * n, G * n, s->expert_out, B, n, h);
    softmax_backward(s->d_gate_logits, s->d_gate_p, s->gate_p, B * G, n);
    dense_ref_backward(m, &s->gates, x, B, s->d_gate_logits, NULL);
    dense_ref_relu_backward(m, &s->experts, x, B, s->expert_out, s->d_expert_out, NULL);
}

static int moe_gates(const model_t *m, model_gate_t *out) {
    const moe_impl_t *s = m->impl;
    const int n = model_hp_int(&m->cfg, MOE_EXPERTS);
    for (int g = 0; g < s->G; g++) {
        if (s->G == 1)
            snprintf(out[g].name, sizeof out[g].name, "shared");
        else
            snprintf(out[g].name, sizeof out[g].name, "t%d", g + 1);
        out[g].experts = n;
        out[g].values = s->gate_p + g * n;
        out[g].ld = s->G * n;
    }
    return s->G;
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
    .gates = moe_gates,
    .free_impl = moe_free,
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
    .gates = moe_gates,
    .free_impl = moe_free,
};
