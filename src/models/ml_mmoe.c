/* ml_mmoe.c -- multi-level MMoE (reference mtl-models.md §5; AdaTT's MLMMoE;
 * SNR and MTNAS: "all gating networks share the same input, which is the
 * input of the whole model").
 *
 * L levels of n experts each; D_l the expert width of level l (D_0 = d).
 *   level 1   E¹ = relu(x · W¹ + b¹)                    [B, n·D_1]  (all n experts, one GEMM)
 *   level l   e^l_j = relu(m^{l-1}_j · W^l_j + b^l_j)    [B, D_l]    expert j reads its own mixture
 *   gates     P^l = softmax per gate of x · Wg^l (+ bg^l) [B, G_l·n] EVERY gate reads the raw x;
 *                                                                    G_l = n (l < L), T (l = L)
 *   mixtures  m^l_j = Σ_i P^l_j[:, i] · e^l_i            [B, D_l]    (l < L: feeds expert j of l+1;
 *                                                                    l = L: feeds task tower j)
 *   towers    y_k = tower_k(m^L_k)
 * With L = 1 this is MMoE (moe.c) exactly: same equations, same shapes.
 *
 * Gates are registered per level: "l<l>/e<j>" (owner "e<j>", the expert of
 * level l+1 the mixture feeds) at non-final levels, "l<L>/t<k>" (owner
 * "t<k>") at the last. */
#include <limits.h>
#include <stdio.h>

#include "models/blocks.h"
#include "nn/layers.h"

enum {
    MLM_EXPERTS,
    MLM_EXPERT_HIDDEN, /* .. MLM_EXPERT_HIDDEN + 3: expert_hidden, expert_hidden2..4 */
    MLM_EXPERT_HIDDEN2,
    MLM_EXPERT_HIDDEN3,
    MLM_EXPERT_HIDDEN4,
    MLM_LEVELS,
    MLM_TOWER_HIDDEN,
    MLM_INIT,
    MLM_GATE_BIAS,
    MLM_N_HP
};
static const model_hp_t ml_mmoe_hp[MLM_N_HP] = {
    [MLM_EXPERTS] = {"experts", HP_INT, 1, 4096, 8, "experts per level"},
    [MLM_EXPERT_HIDDEN] = {"expert_hidden", HP_INT, 1, 1e6, 16,
                           "hidden units per expert of level 1"},
    [MLM_EXPERT_HIDDEN2] = {"expert_hidden2", HP_INT, 0, 1e6, 0,
                            "hidden units per expert of level 2 (0: as level 1)"},
    [MLM_EXPERT_HIDDEN3] = {"expert_hidden3", HP_INT, 0, 1e6, 0,
                            "hidden units per expert of level 3 (0: as level 2)"},
    [MLM_EXPERT_HIDDEN4] = {"expert_hidden4", HP_INT, 0, 1e6, 0,
                            "hidden units per expert of level 4 (0: as level 3)"},
    [MLM_LEVELS] = {"levels", HP_INT, 1, 5, 2, "levels of experts and gates (level 5 as wide as 4)"},
    [MLM_TOWER_HIDDEN] = {"tower_hidden", HP_INT, 1, 1e6, 8, "hidden units of each task tower"},
    [MLM_INIT] = MODEL_HP_INIT,
    [MLM_GATE_BIAS] = MODEL_HP_GATE_BIAS,
};

typedef struct {
    int L, n, D[MULTI_LEVEL_MAX];
    experts_t level1;                  /* d -> n·D_1 */
    experts_t *upper[MULTI_LEVEL_MAX]; /* levels 2..L: n one-expert blocks D_{l-1} -> D_l */
    experts_t view[MULTI_LEVEL_MAX];   /* level l's experts [B, n·D_l] (view[0]: level1) */
    gates_t gates[MULTI_LEVEL_MAX];    /* d -> G_l·n */
    real *mix[MULTI_LEVEL_MAX];        /* [max_batch, G_l·D_l]: mixture g at columns g·D_l */
    real *d_mix[MULTI_LEVEL_MAX];
    tower_t tower[MODEL_MAX_TASKS];
} mlm_impl_t;

static int gates_at(int l, int L, int n, int T) {
    return l < L - 1 ? n : T;
}

static int mlm_sizes(const model_config_t *c, model_sizes_t *out, err_t *err) {
    const int d = c->input_dim, T = c->tasks, B = c->max_batch, n = model_hp_int(c, MLM_EXPERTS),
              L = model_hp_int(c, MLM_LEVELS);
    const bool gate_bias = model_hp_int(c, MLM_GATE_BIAS) != 0;
    if (L > MULTI_LEVEL_MAX)
        return err_set(err, ERR_USAGE, "levels = %d: at most %d levels", L, MULTI_LEVEL_MAX);
    int D[MULTI_LEVEL_MAX];
    level_widths(c, MLM_EXPERT_HIDDEN, L, D);
    size_t total = 0, p;
    int tensors = 0;
    for (int l = 0; l < L; l++) {
        const int G = gates_at(l, L, n, T);
        size_t width, rows;
        if (size_mul(&width, G > n ? G : n, D[l]) || width > INT_MAX)
            return err_set(err, ERR_USAGE,
                           "level %d: %d experts or gates x %d hidden units overflows a layer "
                           "width (at most %d)",
                           l + 1, G > n ? G : n, D[l], INT_MAX);
        if (block_count(&rows, B, width, 1))
            return err_set(err, ERR_USAGE, "level %d: max_batch %d x %zu units overflows", l + 1, B,
                           width);
        if (l == 0) {
            if (experts_sizes(d, n, D[0], B, true, &p, &out->act, err)) return -1;
            if (size_add(&total, total, p)) goto overflow;
            tensors += 2;
        } else {
            size_tally_t one = {0};
            if (experts_sizes(D[l - 1], 1, D[l], B, false, &p, &one, err) || size_mul(&p, p, n) ||
                size_add(&total, total, p))
                goto overflow;
            size_tally_blocks(&out->act, 2, (size_t)B * n * D[l], sizeof(real)); /* out, dout */
            size_tally_block(&out->act, n, sizeof(experts_t));
            tensors += 2 * n;
        }
        if (gates_sizes(d, G, n, gate_bias, B, &p, &out->act, err)) return -1;
        if (size_add(&total, total, p)) goto overflow;
        tensors += 1 + gate_bias;
        size_tally_blocks(&out->act, 2, rows, sizeof(real)); /* mix, d_mix */
        out->n_gates += G;
        out->gate_experts += (size_t)G * n;
    }
    size_tally_t tower_act = {0};
    if (tower_sizes(D[L - 1], model_hp_int(c, MLM_TOWER_HIDDEN), B, &p, &tower_act, err)) return -1;
    for (int k = 0; k < T; k++)
        size_tally_add(&out->act, &tower_act);
    if (size_mul(&p, p, T) || size_add(&total, total, p)) goto overflow;
    out->n_params = out->n_weights = total;
    out->n_tensors = tensors + 4 * T;
    out->state_bytes = sizeof(mlm_impl_t);
    return 0;
overflow:
    return err_set(err, ERR_USAGE, "the parameter count overflows");
}

/* Builds after mlm_sizes() accepted the config: the int products below fit. */
static int mlm_build(model_t *m, err_t *err) {
    const model_config_t *c = &m->cfg;
    mlm_impl_t *s = model_work(m, sizeof *s, err);
    if (!s) return -1;
    m->impl = s;
    const int d = c->input_dim, T = c->tasks, n = model_hp_int(c, MLM_EXPERTS);
    const bool gate_bias = model_hp_int(c, MLM_GATE_BIAS) != 0;
    s->L = model_hp_int(c, MLM_LEVELS);
    s->n = n;
    level_widths(c, MLM_EXPERT_HIDDEN, s->L, s->D);
    char name[48], owner[MODEL_GATE_OWNER];
    for (int l = 0; l < s->L; l++) {
        const int G = gates_at(l, s->L, n, T), Dl = s->D[l];
        if (l == 0) {
            if (experts_build(m, &s->level1, "l1.experts", d, n, Dl, NULL, NULL, 0, err)) return -1;
            s->view[0] = s->level1;
        } else {
            real *out = model_act(m, n * Dl, err),
                 *dout = out ? model_act_grad(m, n * Dl, err) : NULL;
            s->upper[l] = dout ? model_work(m, sizeof(experts_t) * (size_t)n, err) : NULL;
            if (!s->upper[l]) return -1;
            s->view[l] = experts_view(n, Dl, out, dout, n * Dl);
            for (int j = 0; j < n; j++) {
                snprintf(name, sizeof name, "l%d.expert%d", l + 1, j + 1);
                if (experts_build(m, &s->upper[l][j], name, s->D[l - 1], 1, Dl,
                                  out + (size_t)j * Dl, dout + (size_t)j * Dl, n * Dl, err))
                    return -1;
            }
        }
        snprintf(name, sizeof name, "l%d.gates", l + 1);
        if (gates_build(m, &s->gates[l], name, d, G, n, gate_bias, err) ||
            !(s->mix[l] = model_act(m, G * Dl, err)) ||
            !(s->d_mix[l] = model_act_grad(m, G * Dl, err)))
            return -1;
        for (int g = 0; g < G; g++) {
            snprintf(owner, sizeof owner, "%c%d", l < s->L - 1 ? 'e' : 't', g + 1);
            snprintf(name, sizeof name, "l%d/%s", l + 1, owner);
            if (gates_register(m, &s->gates[l], g, name, l + 1, owner, err)) return -1;
        }
    }
    for (int k = 0; k < T; k++) {
        snprintf(name, sizeof name, "tower%d", k + 1);
        if (tower_build(m, &s->tower[k], name, s->D[s->L - 1], model_hp_int(c, MLM_TOWER_HIDDEN),
                        err))
            return -1;
    }
    return 0;
}

static void mlm_forward(model_t *m, const real *x, int B, real *pred, model_mode_t mode) {
    mlm_impl_t *s = m->impl;
    const int d = m->cfg.input_dim, T = m->cfg.tasks, n = s->n, L = s->L;
    for (int l = 0; l < L; l++) {
        const int G = gates_at(l, L, n, T), Dl = s->D[l];
        if (l == 0) {
            experts_forward(m, &s->level1, x, d, B); /* E¹[B, n·D_1] = relu(x · W¹ + b¹) */
        } else {
            const int Dp = s->D[l - 1];
            for (int j = 0; j < n; j++) /* e^l_j[B, D_l] = relu(m^{l-1}_j[B, D_{l-1}] · W + b) */
                experts_forward(m, &s->upper[l][j], s->mix[l - 1] + (size_t)j * Dp, n * Dp, B);
        }
        gates_forward(m, &s->gates[l], x, d, B); /* P^l[B, G·n] = softmax per gate of x · Wg */
        for (int g = 0; g < G; g++)              /* m^l_g[B, D_l] = Σ_i P^l_g[:, i] e^l_i */
            gates_mix(&s->gates[l], g, 0, &s->view[l], 0, n, B, s->mix[l] + (size_t)g * Dl, G * Dl,
                      false);
    }
    const int DL = s->D[L - 1];
    for (int k = 0; k < T; k++)
        tower_forward(m, &s->tower[k], s->mix[L - 1] + (size_t)k * DL, T * DL, B, pred, T, k);
}

static void mlm_backward(model_t *m, const real *x, int B, const real *dpred) {
    mlm_impl_t *s = m->impl;
    const int d = m->cfg.input_dim, T = m->cfg.tasks, n = s->n, L = s->L;
    const int DL = s->D[L - 1];
    for (int k = 0; k < T; k++)
        tower_backward(m, &s->tower[k], s->mix[L - 1] + (size_t)k * DL, T * DL, B, dpred, T, k,
                       s->d_mix[L - 1] + (size_t)k * DL);
    for (int l = L - 1; l >= 0; l--) {
        const int G = gates_at(l, L, n, T), Dl = s->D[l];
        for (int g = 0; g < G; g++) /* dP^l, de^l += from dm^l_g */
            gates_mix_backward(&s->gates[l], g, 0, &s->view[l], 0, n, B,
                               s->d_mix[l] + (size_t)g * Dl, G * Dl);
        gates_backward(m, &s->gates[l], x, d, B, NULL);
        if (l == 0) {
            experts_backward(m, &s->level1, x, d, B, NULL);
        } else {
            const int Dp = s->D[l - 1];
            for (int j = 0; j < n; j++) /* dm^{l-1}_j += de^l_j · W^l_jᵀ */
                experts_backward(m, &s->upper[l][j], s->mix[l - 1] + (size_t)j * Dp, n * Dp, B,
                                 s->d_mix[l - 1] + (size_t)j * Dp);
        }
    }
}

const model_ops_t model_ml_mmoe_ops = {
    .name = "ml_mmoe",
    .summary = "multi-level MMoE: levels x experts; level l+1 experts read gated mixtures of "
               "level l; every gate reads the input",
    .hp = ml_mmoe_hp,
    .n_hp = MLM_N_HP,
    .sizes = mlm_sizes,
    .build = mlm_build,
    .forward = mlm_forward,
    .backward = mlm_backward,
};
