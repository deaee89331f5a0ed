/* ple.c -- Progressive Layered Extraction (Tang et al., RecSys 2020) and its
 * one-level form CGC (reference mtl-models.md §6).
 *
 * N levels; at level j (D_j its expert width, D_0 = d) each task k has m_k
 * experts and the shared module m_s; E = T·m_k + m_s experts in all, stored
 * side by side in one level buffer, task 1's first, the shared ones last.
 * Every module reads its own previous output g^{·,j-1} (all = x at j = 1):
 *   experts   S^{k,j} = relu(g^{k,j-1} · W^{k,j} + b)   [B, m_k·D_j]  (task k's)
 *             S^{s,j} = relu(g^{s,j-1} · W^{s,j} + b)   [B, m_s·D_j]  (shared)
 *             at j = 1 all read x: one GEMM x · W¹ [d, E·D_1] for the level
 *   task gate g^{k,j} = Σ_i softmax(g^{k,j-1} · Wg^{k,j} (+ b))_i · [S^{k,j}; S^{s,j}]_i
 *                                                       [B, D_j]  over m_k + m_s experts
 *   shared    g^{s,j} = Σ_i softmax(g^{s,j-1} · Wg^{s,j} (+ b))_i · (all E experts)_i
 *                                                       [B, D_j]  non-final levels only
 *   towers    y_k = tower_k(g^{k,N})
 * CGC is PLE with N = 1 (no shared gate): the same code, without the levels
 * and expert_hidden2..4 keys.  With shared_experts = 0 there is no shared
 * module: each task mixes its own experts only (and no shared gate exists,
 * since nothing would read its output).
 *
 * Gates are registered per level and module: "l<j>/t<k>" (owner "t<k>") and
 * "l<j>/shared" (owner "shared"). */
#include <limits.h>
#include <stdio.h>

#include "models/blocks.h"
#include "nn/layers.h"

enum {
    PLE_EXPERT_HIDDEN, /* .. PLE_EXPERT_HIDDEN + 3: expert_hidden, expert_hidden2..4 */
    PLE_EXPERT_HIDDEN2,
    PLE_EXPERT_HIDDEN3,
    PLE_EXPERT_HIDDEN4,
    PLE_LEVELS,
    PLE_TASK_EXPERTS,
    PLE_SHARED_EXPERTS,
    PLE_TOWER_HIDDEN,
    PLE_INIT,
    PLE_GATE_BIAS,
    PLE_N_HP
};
#define PLE_HP_EXPERT_HIDDEN                                                                       \
    { "expert_hidden", HP_INT, 1, 1e6, 16, "hidden units per expert of level 1" }
#define PLE_HP_TASK_EXPERTS                                                                        \
    { "task_experts", HP_INT, 1, 4096, 3, "experts of each task, per level" }
#define PLE_HP_SHARED_EXPERTS                                                                      \
    {                                                                                              \
        "shared_experts", HP_INT, 0, 4096, 2,                                                      \
            "shared experts per level (0: no shared module, each task mixes its own)"              \
    }
#define PLE_HP_TOWER_HIDDEN                                                                        \
    { "tower_hidden", HP_INT, 1, 1e6, 8, "hidden units of each task tower" }

static const model_hp_t ple_hp[PLE_N_HP] = {
    [PLE_EXPERT_HIDDEN] = PLE_HP_EXPERT_HIDDEN,
    [PLE_EXPERT_HIDDEN2] = {"expert_hidden2", HP_INT, 0, 1e6, 0,
                            "hidden units per expert of level 2 (0: as level 1)"},
    [PLE_EXPERT_HIDDEN3] = {"expert_hidden3", HP_INT, 0, 1e6, 0,
                            "hidden units per expert of level 3 (0: as level 2)"},
    [PLE_EXPERT_HIDDEN4] = {"expert_hidden4", HP_INT, 0, 1e6, 0,
                            "hidden units per expert of level 4 (0: as level 3)"},
    [PLE_LEVELS] = {"levels", HP_INT, 1, 5, 2, "extraction levels (1: CGC; level 5 as wide as 4)"},
    [PLE_TASK_EXPERTS] = PLE_HP_TASK_EXPERTS,
    [PLE_SHARED_EXPERTS] = PLE_HP_SHARED_EXPERTS,
    [PLE_TOWER_HIDDEN] = PLE_HP_TOWER_HIDDEN,
    [PLE_INIT] = MODEL_HP_INIT,
    [PLE_GATE_BIAS] = MODEL_HP_GATE_BIAS,
};

enum {
    CGC_EXPERT_HIDDEN,
    CGC_TASK_EXPERTS,
    CGC_SHARED_EXPERTS,
    CGC_TOWER_HIDDEN,
    CGC_INIT,
    CGC_GATE_BIAS,
    CGC_N_HP
};
static const model_hp_t cgc_hp[CGC_N_HP] = {
    [CGC_EXPERT_HIDDEN] = PLE_HP_EXPERT_HIDDEN,
    [CGC_TASK_EXPERTS] = PLE_HP_TASK_EXPERTS,
    [CGC_SHARED_EXPERTS] = PLE_HP_SHARED_EXPERTS,
    [CGC_TOWER_HIDDEN] = PLE_HP_TOWER_HIDDEN,
    [CGC_INIT] = MODEL_HP_INIT,
    [CGC_GATE_BIAS] = MODEL_HP_GATE_BIAS,
};

/* A configuration's shape, read from either family's keys. */
typedef struct {
    int N, T, mk, ms, E, d, B, tower_hidden;
    int D[MULTI_LEVEL_MAX];
    bool gate_bias;
} ple_shape_t;

/* Modules whose outputs level j (0-based) writes: the T tasks, and the
 * shared one at non-final levels when there are shared experts. */
static bool has_shared_gate(const ple_shape_t *sh, int j) {
    return sh->ms > 0 && j < sh->N - 1;
}
static int modules_at(const ple_shape_t *sh, int j) {
    return sh->T + has_shared_gate(sh, j);
}

static void ple_shape(const model_config_t *c, bool cgc, ple_shape_t *sh) {
    sh->T = c->tasks;
    sh->d = c->input_dim;
    sh->B = c->max_batch;
    if (cgc) {
        sh->N = 1;
        sh->D[0] = model_hp_int(c, CGC_EXPERT_HIDDEN);
        sh->mk = model_hp_int(c, CGC_TASK_EXPERTS);
        sh->ms = model_hp_int(c, CGC_SHARED_EXPERTS);
        sh->tower_hidden = model_hp_int(c, CGC_TOWER_HIDDEN);
        sh->gate_bias = model_hp_int(c, CGC_GATE_BIAS) != 0;
    } else {
        sh->N = model_hp_int(c, PLE_LEVELS);
        if (sh->N >= 1 && sh->N <= MULTI_LEVEL_MAX)
            level_widths(c, PLE_EXPERT_HIDDEN, sh->N, sh->D);
        sh->mk = model_hp_int(c, PLE_TASK_EXPERTS);
        sh->ms = model_hp_int(c, PLE_SHARED_EXPERTS);
        sh->tower_hidden = model_hp_int(c, PLE_TOWER_HIDDEN);
        sh->gate_bias = model_hp_int(c, PLE_GATE_BIAS) != 0;
    }
    sh->E = 0; /* set by ple_check_shape */
}

/* The int products the build uses fit (E, E·D_j, (T+1)·D_j, B·...). */
static int ple_check_shape(ple_shape_t *sh, err_t *err) {
    if (sh->N > MULTI_LEVEL_MAX)
        return err_set(err, ERR_USAGE, "levels = %d: at most %d levels", sh->N, MULTI_LEVEL_MAX);
    size_t E;
    if (size_mul(&E, sh->T, sh->mk) || size_add(&E, E, sh->ms) || E > INT_MAX)
        return err_set(err, ERR_USAGE, "%d tasks x %d task experts + %d shared experts overflows",
                       sh->T, sh->mk, sh->ms);
    sh->E = (int)E;
    for (int j = 0; j < sh->N; j++) {
        size_t width, rows;
        const int wide = sh->E > sh->T + 1 ? sh->E : sh->T + 1;
        if (size_mul(&width, wide, sh->D[j]) || width > INT_MAX)
            return err_set(err, ERR_USAGE,
                           "level %d: %d experts x %d hidden units overflows a layer width (at "
                           "most %d)",
                           j + 1, wide, sh->D[j], INT_MAX);
        if (block_count(&rows, sh->B, width, 1))
            return err_set(err, ERR_USAGE, "level %d: max_batch %d x %zu units overflows", j + 1,
                           sh->B, width);
    }
    return 0;
}

typedef struct {
    ple_shape_t sh;
    experts_t view[MULTI_LEVEL_MAX]; /* level j's E experts [B, E·D_j] (view[0]: level1's) */
    experts_t level1;                /* d -> E·D_1: every expert of level 1 reads x */
    experts_t task_experts[MULTI_LEVEL_MAX][MODEL_MAX_TASKS]; /* j >= 1: D_{j-1} -> m_k·D_j */
    experts_t shared_experts[MULTI_LEVEL_MAX];                /* j >= 1: D_{j-1} -> m_s·D_j */
    gates_t task_gate[MULTI_LEVEL_MAX][MODEL_MAX_TASKS];      /* -> m_k + m_s */
    gates_t shared_gate[MULTI_LEVEL_MAX];                     /* -> E, non-final levels */
    /* Module outputs g^{·,j}: [max_batch, modules_at(j)·D_j], task k at
     * columns k·D_j, the shared module at T·D_j. */
    real *out[MULTI_LEVEL_MAX], *d_out[MULTI_LEVEL_MAX];
    tower_t tower[MODEL_MAX_TASKS];
} ple_impl_t;

static int ple_sizes_of(const model_config_t *c, bool cgc, model_sizes_t *out, err_t *err) {
    ple_shape_t sh;
    ple_shape(c, cgc, &sh);
    if (ple_check_shape(&sh, err)) return -1;
    const int T = sh.T, B = sh.B;
    size_t total = 0, p;
    int tensors = 0;
    for (int j = 0; j < sh.N; j++) {
        const int in = j == 0 ? sh.d : sh.D[j - 1], M = modules_at(&sh, j);
        if (j == 0) {
            if (experts_sizes(sh.d, sh.E, sh.D[0], B, true, &p, &out->act, err)) return -1;
            if (size_add(&total, total, p)) goto overflow;
            tensors += 2;
        } else {
            size_tally_blocks(&out->act, 2, (size_t)B * sh.E * sh.D[j], sizeof(real));
            size_tally_t none = {0};
            if (experts_sizes(in, sh.mk, sh.D[j], B, false, &p, &none, err)) return -1;
            if (size_mul(&p, p, T) || size_add(&total, total, p)) goto overflow;
            tensors += 2 * T;
            if (sh.ms > 0) {
                if (experts_sizes(in, sh.ms, sh.D[j], B, false, &p, &none, err)) return -1;
                if (size_add(&total, total, p)) goto overflow;
                tensors += 2;
            }
        }
        size_tally_t gate_act = {0};
        if (gates_sizes(in, 1, sh.mk + sh.ms, sh.gate_bias, B, &p, &gate_act, err)) return -1;
        for (int k = 0; k < T; k++)
            size_tally_add(&out->act, &gate_act);
        if (size_mul(&p, p, T) || size_add(&total, total, p)) goto overflow;
        tensors += T * (1 + sh.gate_bias);
        out->n_gates += T;
        out->gate_experts += (size_t)T * (sh.mk + sh.ms);
        if (has_shared_gate(&sh, j)) {
            if (gates_sizes(in, 1, sh.E, sh.gate_bias, B, &p, &out->act, err)) return -1;
            if (size_add(&total, total, p)) goto overflow;
            tensors += 1 + sh.gate_bias;
            out->n_gates += 1;
            out->gate_experts += (size_t)sh.E;
        }
        size_tally_blocks(&out->act, 2, (size_t)B * M * sh.D[j], sizeof(real)); /* out, d_out */
    }
    size_tally_t tower_act = {0};
    if (tower_sizes(sh.D[sh.N - 1], sh.tower_hidden, B, &p, &tower_act, err)) return -1;
    for (int k = 0; k < T; k++)
        size_tally_add(&out->act, &tower_act);
    if (size_mul(&p, p, T) || size_add(&total, total, p)) goto overflow;
    out->n_params = out->n_weights = total;
    out->n_tensors = tensors + 4 * T;
    out->state_bytes = sizeof(ple_impl_t);
    return 0;
overflow:
    return err_set(err, ERR_USAGE, "the parameter count overflows");
}

static int ple_sizes(const model_config_t *c, model_sizes_t *out, err_t *err) {
    return ple_sizes_of(c, false, out, err);
}
static int cgc_sizes(const model_config_t *c, model_sizes_t *out, err_t *err) {
    return ple_sizes_of(c, true, out, err);
}

extern const model_ops_t model_cgc_ops;

/* Builds after ple_sizes_of() accepted the config: the int products fit. */
static int ple_build(model_t *m, err_t *err) {
    ple_impl_t *s = model_work(m, sizeof *s, err);
    if (!s) return -1;
    m->impl = s;
    ple_shape_t *sh = &s->sh;
    ple_shape(&m->cfg, m->ops == &model_cgc_ops, sh);
    if (ple_check_shape(sh, err)) return -1;
    const int T = sh->T, mk = sh->mk, ms = sh->ms, E = sh->E;
    char name[48], gate[MODEL_GATE_NAME], owner[MODEL_GATE_OWNER];
    for (int j = 0; j < sh->N; j++) {
        const int in = j == 0 ? sh->d : sh->D[j - 1], Dj = sh->D[j], M = modules_at(sh, j);
        if (j == 0) {
            if (experts_build(m, &s->level1, "l1.experts", sh->d, E, Dj, NULL, NULL, 0, err))
                return -1;
            s->view[0] = s->level1;
        } else {
            real *eo = model_act(m, E * Dj, err), *deo = eo ? model_act_grad(m, E * Dj, err) : NULL;
            if (!deo) return -1;
            s->view[j] = experts_view(E, Dj, eo, deo, E * Dj);
            for (int k = 0; k < T; k++) {
                const size_t at = (size_t)k * mk * Dj;
                snprintf(name, sizeof name, "l%d.t%d.experts", j + 1, k + 1);
                if (experts_build(m, &s->task_experts[j][k], name, in, mk, Dj, eo + at, deo + at,
                                  E * Dj, err))
                    return -1;
            }
            if (ms > 0) {
                const size_t at = (size_t)T * mk * Dj;
                snprintf(name, sizeof name, "l%d.shared.experts", j + 1);
                if (experts_build(m, &s->shared_experts[j], name, in, ms, Dj, eo + at, deo + at,
                                  E * Dj, err))
                    return -1;
            }
        }
        for (int k = 0; k < T; k++) {
            snprintf(name, sizeof name, "l%d.t%d.gate", j + 1, k + 1);
            snprintf(owner, sizeof owner, "t%d", k + 1);
            snprintf(gate, sizeof gate, "l%d/t%d", j + 1, k + 1);
            if (gates_build(m, &s->task_gate[j][k], name, in, 1, mk + ms, sh->gate_bias, err) ||
                gates_register(m, &s->task_gate[j][k], 0, gate, j + 1, owner, err))
                return -1;
        }
        if (has_shared_gate(sh, j)) {
            snprintf(name, sizeof name, "l%d.shared.gate", j + 1);
            snprintf(gate, sizeof gate, "l%d/shared", j + 1);
            if (gates_build(m, &s->shared_gate[j], name, in, 1, E, sh->gate_bias, err) ||
                gates_register(m, &s->shared_gate[j], 0, gate, j + 1, "shared", err))
                return -1;
        }
        if (!(s->out[j] = model_act(m, M * Dj, err)) ||
            !(s->d_out[j] = model_act_grad(m, M * Dj, err)))
            return -1;
    }
    for (int k = 0; k < T; k++) {
        snprintf(name, sizeof name, "tower%d", k + 1);
        if (tower_build(m, &s->tower[k], name, sh->D[sh->N - 1], sh->tower_hidden, err)) return -1;
    }
    return 0;
}

/* Module k's input at level j (the shared module's: k = T), its row stride,
 * and its gradient buffer (NULL at level 1: the data). */
static const real *module_in(const ple_impl_t *s, const real *x, int j, int k, int *ld) {
    if (j == 0) {
        *ld = s->sh.d;
        return x;
    }
    const int Dp = s->sh.D[j - 1];
    *ld = modules_at(&s->sh, j - 1) * Dp;
    return s->out[j - 1] + (size_t)k * Dp;
}
static real *module_din(const ple_impl_t *s, int j, int k) {
    return j == 0 ? NULL : s->d_out[j - 1] + (size_t)k * s->sh.D[j - 1];
}

static void ple_forward(model_t *m, const real *x, int B, real *pred, model_mode_t mode) {
    ple_impl_t *s = m->impl;
    const ple_shape_t *sh = &s->sh;
    const int T = sh->T, mk = sh->mk, ms = sh->ms, E = sh->E;
    for (int j = 0; j < sh->N; j++) {
        const int Dj = sh->D[j], ldo = modules_at(sh, j) * Dj;
        int ld;
        const real *in;
        if (j == 0) {
            experts_forward(m, &s->level1, x, sh->d, B); /* [B, E·D_1] = relu(x · W¹ + b¹) */
        } else {
            for (int k = 0; k < T; k++) { /* S^{k,j}[B, m_k·D_j] = relu(g^{k,j-1} · W + b) */
                in = module_in(s, x, j, k, &ld);
                experts_forward(m, &s->task_experts[j][k], in, ld, B);
            }
            if (ms > 0) { /* S^{s,j}[B, m_s·D_j] = relu(g^{s,j-1} · W + b) */
                in = module_in(s, x, j, T, &ld);
                experts_forward(m, &s->shared_experts[j], in, ld, B);
            }
        }
        for (int k = 0; k < T; k++) {
            /* p[B, m_k + m_s] = softmax(g^{k,j-1} · Wg (+ b));
             * g^{k,j}[B, D_j] = Σ p_i [S^{k,j}; S^{s,j}]_i */
            gates_t *g = &s->task_gate[j][k];
            real *o = s->out[j] + (size_t)k * Dj;
            in = module_in(s, x, j, k, &ld);
            gates_forward(m, g, in, ld, B);
            gates_mix(g, 0, 0, &s->view[j], k * mk, mk, B, o, ldo, false);
            if (ms > 0) gates_mix(g, 0, mk, &s->view[j], T * mk, ms, B, o, ldo, true);
        }
        if (has_shared_gate(sh, j)) { /* g^{s,j}[B, D_j] = Σ softmax(g^{s,j-1} · Wg)_i S_i, all E */
            in = module_in(s, x, j, T, &ld);
            gates_forward(m, &s->shared_gate[j], in, ld, B);
            gates_mix(&s->shared_gate[j], 0, 0, &s->view[j], 0, E, B, s->out[j] + (size_t)T * Dj,
                      ldo, false);
        }
    }
    const int last = sh->N - 1, DN = sh->D[last], ldN = modules_at(sh, last) * DN;
    for (int k = 0; k < T; k++)
        tower_forward(m, &s->tower[k], s->out[last] + (size_t)k * DN, ldN, B, pred, T, k);
}

static void ple_backward(model_t *m, const real *x, int B, const real *dpred) {
    ple_impl_t *s = m->impl;
    const ple_shape_t *sh = &s->sh;
    const int T = sh->T, mk = sh->mk, ms = sh->ms, E = sh->E;
    const int last = sh->N - 1, DN = sh->D[last], ldN = modules_at(sh, last) * DN;
    for (int k = 0; k < T; k++)
        tower_backward(m, &s->tower[k], s->out[last] + (size_t)k * DN, ldN, B, dpred, T, k,
                       s->d_out[last] + (size_t)k * DN);
    for (int j = last; j >= 0; j--) {
        const int Dj = sh->D[j], ldo = modules_at(sh, j) * Dj;
        int ld;
        const real *in;
        if (has_shared_gate(sh, j)) {
            in = module_in(s, x, j, T, &ld);
            gates_mix_backward(&s->shared_gate[j], 0, 0, &s->view[j], 0, E, B,
                               s->d_out[j] + (size_t)T * Dj, ldo);
            gates_backward(m, &s->shared_gate[j], in, ld, B, module_din(s, j, T));
        }
        for (int k = 0; k < T; k++) {
            gates_t *g = &s->task_gate[j][k];
            const real *dout = s->d_out[j] + (size_t)k * Dj;
            in = module_in(s, x, j, k, &ld);
            gates_mix_backward(g, 0, 0, &s->view[j], k * mk, mk, B, dout, ldo);
            if (ms > 0) gates_mix_backward(g, 0, mk, &s->view[j], T * mk, ms, B, dout, ldo);
            gates_backward(m, g, in, ld, B, module_din(s, j, k));
        }
        if (j == 0) {
            experts_backward(m, &s->level1, x, sh->d, B, NULL);
        } else {
            for (int k = 0; k < T; k++) {
                in = module_in(s, x, j, k, &ld);
                experts_backward(m, &s->task_experts[j][k], in, ld, B, module_din(s, j, k));
            }
            if (ms > 0) {
                in = module_in(s, x, j, T, &ld);
                experts_backward(m, &s->shared_experts[j], in, ld, B, module_din(s, j, T));
            }
        }
    }
}

const model_ops_t model_ple_ops = {
    .name = "ple",
    .summary = "progressive layered extraction: levels of task_experts per task + shared_experts; "
               "task gates over own + shared, a shared gate over all",
    .hp = ple_hp,
    .n_hp = PLE_N_HP,
    .sizes = ple_sizes,
    .build = ple_build,
    .forward = ple_forward,
    .backward = ple_backward,
};

const model_ops_t model_cgc_ops = {
    .name = "cgc",
    .summary = "customized gate control (one level of ple): task_experts per task + "
               "shared_experts, task gates over own + shared",
    .hp = cgc_hp,
    .n_hp = CGC_N_HP,
    .sizes = cgc_sizes,
    .build = ple_build,
    .forward = ple_forward,
    .backward = ple_backward,
};
