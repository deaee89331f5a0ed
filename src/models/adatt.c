/* adatt.c -- AdaTT-sp and general AdaTT (Li et al., KDD 2023, §3; the
 * reference notes in mtl-models.md §7).
 *
 * Modules: the T tasks, plus (adatt, shared_experts > 0) one shared module.
 * Task modules have m = task_experts experts per level, the shared one m_s;
 * E_tot = T·m + m_s experts per level, stored task by task, shared last.
 * With f⁰_k = x for every module k, level l = 1..L computes (D_l its width):
 *
 *   experts   E^l_{k,i} = relu(f^{l-1}_k · W^l_{k,i} + b)      [B, D_l]  (Eq 4)
 *             E^l = [E^l_1, ..., E^l_T, E^l_s]                   [B, E_tot, D_l]  (Eq 5-6)
 *   gate      G^l_k = softmax(f^{l-1}_k · Wg^l_k (+ bg))         [B, E_tot]  (Eq 10; bias only
 *                                                                  with gate_bias = on)
 *   weights   w^l_k = G^l_k + pad(v^l_k)                         [B, E_tot]  (Eq 11; v^l_k at
 *                                                                  k's own columns)
 *   fusion    f^l_k = Σ_j w^l_k[:, j] E^l_j                      [B, D_l]  (Eq 7-9, 11)
 *   towers    y_t = tower_t(f^L_t)                               (Eq 1)
 *
 * native_lf = off drops pad(v) (the NativeExpertLF ablation, §4.4 / Table
 * 6): w = G.  Native weights v^l_k [m_k]: with native_init = paper (the
 * reference code) a module of ONE expert has the fixed unit weight (no
 * parameter, §3.1.1) and one of m > 1 learns v ~ U(±√(1/m)); native_init =
 * ones learns v for every module, starting at 1.  (The reference code of
 * general AdaTT gives every module learned weights as soon as ANY module has
 * m ≠ 1; here the rule is per module.)
 *
 * The shared module has a gate over all experts and a native residual at
 * every level but the last, where it only computes experts that the task
 * gates read (§3.2).  Each module's experts and gate read that module's
 * previous-level output, so from level 2 on the gates differ per task.
 * adatt with shared_experts = 0 is adatt_sp.
 *
 * Tensors.  Level 1's modules all read x, so their experts are one layer
 * "l1.experts" [d, E_tot·D_1] (expert j at columns [j·D_1, (j+1)·D_1)) and
 * their gates one layer "l1.gates" [d, G·E_tot] (module k's gate at columns
 * [k·E_tot, (k+1)·E_tot)), one GEMM each as in MMoE; from level 2 on each
 * module has its own "l<l>.<module>.experts" and "l<l>.<module>.gate".
 * Native weights are "l<l>.<module>.native" [m_k, 1].
 *
 * Every gate is registered as "l<l>/<module>" (softmax, GATE_SOFTMAX), and
 * the effective weights w^l_k (AdaTT Fig 3) as "l<l>/<module>/weights"
 * (GATE_WEIGHTS): the recorder stores their means per level, module and
 * expert (the view v_gate_weights in sql/views.sql).
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "models/blocks.h"
#include "nn/layers.h"

#define ADATT_MAX_LEVELS  MULTI_LEVEL_MAX
#define ADATT_MAX_MODULES (MODEL_MAX_TASKS + 1) /* the tasks and the shared module */

/* The hyper-parameters, in the order shared by the fusion families. */
enum {
    AD_EXPERT_HIDDEN,
    AD_EXPERT_HIDDEN2,
    AD_EXPERT_HIDDEN3,
    AD_EXPERT_HIDDEN4,
    AD_LEVELS,
    AD_TASK_EXPERTS,
    AD_SHARED_EXPERTS,
    AD_TOWER_HIDDEN,
    AD_NATIVE_LF,
    AD_NATIVE_INIT,
    AD_INIT,
    AD_GATE_BIAS,
    AD_N_HP
};
enum { NATIVE_LF_OFF = 0, NATIVE_LF_ON = 1 };
enum { NATIVE_INIT_PAPER = 0, NATIVE_INIT_ONES = 1 };

#define HP_EXPERT_HIDDEN                                                                           \
    { "expert_hidden", HP_INT, 1, 1e6, 16, "hidden units per expert at level 1", NULL, false }
#define HP_EXPERT_HIDDEN_L(n)                                                                      \
    {                                                                                              \
        "expert_hidden" #n, HP_INT, 0, 1e6, 0,                                                     \
            "hidden units per expert at level " #n " (0: as the level below)", NULL, false         \
    }
#define HP_LEVELS                                                                                  \
    { "levels", HP_INT, 1, 5, 2, "fusion levels (L; level 5 is as wide as level 4)", NULL, false }
#define HP_TASK_EXPERTS                                                                            \
    { "task_experts", HP_INT, 1, 4096, 2, "experts per task module and level (m)", NULL, false }
#define HP_TOWER_HIDDEN                                                                            \
    { "tower_hidden", HP_INT, 1, 1e6, 8, "hidden units of each task tower", NULL, false }
#define HP_NATIVE_LF                                                                               \
    {                                                                                              \
        "native_lf", HP_WORD, 0, 1, NATIVE_LF_ON,                                                  \
            "NativeExpertLF, the native experts' linear fusion added to the gate: on (Eq 11) or "  \
            "off "                                                                                 \
            "(the Table 6 ablation: the gate alone)",                                              \
            "off on", false                                                                        \
    }
#define HP_NATIVE_INIT                                                                             \
    {                                                                                              \
        "native_init", HP_WORD, 0, 1, NATIVE_INIT_PAPER,                                           \
            "native weights: paper (one expert: a fixed unit weight; m > 1: learned, "             \
            "U(+-sqrt(1/m))) or ones (learned for every module, starting at 1)",                   \
            "paper ones", false                                                                    \
    }

static const model_hp_t adatt_hp[AD_N_HP] = {
    [AD_EXPERT_HIDDEN] = HP_EXPERT_HIDDEN,
    [AD_EXPERT_HIDDEN2] = HP_EXPERT_HIDDEN_L(2),
    [AD_EXPERT_HIDDEN3] = HP_EXPERT_HIDDEN_L(3),
    [AD_EXPERT_HIDDEN4] = HP_EXPERT_HIDDEN_L(4),
    [AD_LEVELS] = HP_LEVELS,
    [AD_TASK_EXPERTS] = HP_TASK_EXPERTS,
    [AD_SHARED_EXPERTS] = {"shared_experts", HP_INT, 0, 4096, 1,
                           "experts of the shared module per level (m_s; 0: adatt_sp)"},
    [AD_TOWER_HIDDEN] = HP_TOWER_HIDDEN,
    [AD_NATIVE_LF] = HP_NATIVE_LF,
    [AD_NATIVE_INIT] = HP_NATIVE_INIT,
    [AD_INIT] = MODEL_HP_INIT,
    [AD_GATE_BIAS] = MODEL_HP_GATE_BIAS,
};

/* adatt_sp: the same keys but shared_experts (none). */
static const model_hp_t adatt_sp_hp[AD_N_HP - 1] = {
    HP_EXPERT_HIDDEN, HP_EXPERT_HIDDEN_L(2), HP_EXPERT_HIDDEN_L(3), HP_EXPERT_HIDDEN_L(4),
    HP_LEVELS,        HP_TASK_EXPERTS,       HP_TOWER_HIDDEN,       HP_NATIVE_LF,
    HP_NATIVE_INIT,   MODEL_HP_INIT,         MODEL_HP_GATE_BIAS,
};

/* A configuration's shape, read by name (the two tables differ). */
typedef struct {
    int d, T, B;
    int L;                       /* levels */
    int m, ms;                   /* experts per task module, of the shared module */
    int K;                       /* modules: T, plus 1 with shared experts */
    int n_experts;               /* E_tot = T·m + ms */
    int width[ADATT_MAX_LEVELS]; /* D_l */
    int tower_hidden;
    bool native_lf, native_ones, gate_bias;
} adatt_shape_t;

static double hp_of(const model_config_t *c, const model_hp_t *hp, int n_hp, const char *name,
                    double def) {
    for (int i = 0; i < n_hp; i++)
        if (strcmp(hp[i].name, name) == 0) return c->hp[i];
    return def;
}

static void adatt_shape(const model_config_t *c, const model_hp_t *hp, int n_hp, adatt_shape_t *s) {
    memset(s, 0, sizeof *s);
    s->d = c->input_dim;
    s->T = c->tasks;
    s->B = c->max_batch;
    s->L = (int)hp_of(c, hp, n_hp, "levels", 1);
    s->m = (int)hp_of(c, hp, n_hp, "task_experts", 1);
    s->ms = (int)hp_of(c, hp, n_hp, "shared_experts", 0);
    s->K = s->T + (s->ms > 0);
    s->tower_hidden = (int)hp_of(c, hp, n_hp, "tower_hidden", 1);
    s->native_lf = hp_of(c, hp, n_hp, "native_lf", NATIVE_LF_ON) == NATIVE_LF_ON;
    s->native_ones = hp_of(c, hp, n_hp, "native_init", NATIVE_INIT_PAPER) == NATIVE_INIT_ONES;
    s->gate_bias = hp_of(c, hp, n_hp, "gate_bias", 0) != 0;
    /* level 5 has no width key: it is as wide as level 4 (blocks.h) */
    static const char *const widths[LEVEL_WIDTH_KEYS] = {"expert_hidden", "expert_hidden2",
                                                         "expert_hidden3", "expert_hidden4"};
    for (int l = 0; l < ADATT_MAX_LEVELS; l++) {
        int w = l < LEVEL_WIDTH_KEYS ? (int)hp_of(c, hp, n_hp, widths[l], 0) : 0;
        s->width[l] = w > 0 || l == 0 ? w : s->width[l - 1];
    }
}

/* Module k's expert count and first expert column. */
static int module_experts(const adatt_shape_t *s, int k) {
    return k < s->T ? s->m : s->ms;
}
static int module_first(const adatt_shape_t *s, int k) {
    return k < s->T ? k * s->m : s->T * s->m;
}
/* Whether module k's native weights are parameters (else the fixed unit
 * weight of a single expert, or none with native_lf = off). */
static bool module_learns_native(const adatt_shape_t *s, int k) {
    return s->native_lf && (s->native_ones || module_experts(s, k) > 1);
}
static int level_input(const adatt_shape_t *s, int l) {
    return l == 0 ? s->d : s->width[l - 1];
}

/* Groups: the layers that read one input.  At level 1 every module reads x,
 * so all experts are one layer "l1.experts" [d, E_tot·D_1] (expert j at
 * columns [j·D_1, (j+1)·D_1)) and all gates one layer "l1.gates" [d, G·E_tot]
 * (module k's gate at columns [k·E_tot, (k+1)·E_tot)): one GEMM each, as
 * MMoE.  From level 2 on each module reads its own f^{l-1}_k, so module k
 * has its own "l<l>.<module>.experts" [D_{l-1}, m_k·D_l] and
 * "l<l>.<module>.gate" [D_{l-1}, E_tot].  Module k's gate is gate j of
 * group i: (0, k) at level 1, (k, 0) above. */
static bool level_fused(int l) {
    return l == 0;
}
static int level_gated(const adatt_shape_t *s, int l) { /* gated modules */
    return s->T + (s->ms > 0 && l < s->L - 1);
}

typedef struct {
    adatt_shape_t shape;
    real *E[ADATT_MAX_LEVELS], *dE[ADATT_MAX_LEVELS]; /* [max_batch, E_tot·D_l] */
    /* per group: its experts (slices of E, dE) and its gates */
    experts_t experts[ADATT_MAX_LEVELS][ADATT_MAX_MODULES];
    gates_t gate[ADATT_MAX_LEVELS][ADATT_MAX_MODULES];
    /* per group: w [max_batch, G·E_tot] laid out as the gates' p (p itself
     * when native_lf = off) */
    real *weights[ADATT_MAX_LEVELS][ADATT_MAX_MODULES];
    int native[ADATT_MAX_LEVELS][ADATT_MAX_MODULES]; /* per module: tensor [m_k, 1] or -1 */
    real *f[ADATT_MAX_LEVELS][ADATT_MAX_MODULES], *df[ADATT_MAX_LEVELS][ADATT_MAX_MODULES];
    tower_t tower[MODEL_MAX_TASKS];
} adatt_impl_t;

static void module_name(const adatt_shape_t *s, int k, char *out, size_t n) {
    if (k < s->T)
        snprintf(out, n, "t%d", k + 1);
    else
        snprintf(out, n, "shared");
}

static int adatt_sizes_of(const model_config_t *c, const model_hp_t *hp, int n_hp,
                          model_sizes_t *out, err_t *err) {
    adatt_shape_t s;
    adatt_shape(c, hp, n_hp, &s);
    if (s.L < 1 || s.L > ADATT_MAX_LEVELS)
        return err_set(err, ERR_USAGE, "levels = %d is outside [1, %d]", s.L, ADATT_MAX_LEVELS);
    size_t n_experts;
    if (size_mul(&n_experts, s.T, s.m) || size_add(&n_experts, n_experts, s.ms) ||
        n_experts > INT_MAX)
        return err_set(err, ERR_USAGE, "%d tasks x %d task experts + %d shared experts overflows",
                       s.T, s.m, s.ms);
    s.n_experts = (int)n_experts;
    const int B = s.B, N = s.n_experts;
    size_t params = 0, p;
    int tensors = 0, gates = 0;
    for (int l = 0; l < s.L; l++) {
        const int in = level_input(&s, l), D = s.width[l], G = level_gated(&s, l);
        size_t level_cols, rows;
        if (size_mul(&level_cols, N, D) || level_cols > INT_MAX || block_count(&rows, B, N, D))
            return err_set(err, ERR_USAGE,
                           "level %d: max_batch %d x %d experts x %d hidden units overflows", l + 1,
                           B, N, D);
        size_tally_blocks(&out->act, 2, rows, sizeof(real)); /* E, dE */
        if (level_fused(l)) {
            if (experts_sizes(in, N, D, B, false, &p, &out->act, err) ||
                size_add(&params, params, p) ||
                gates_sizes(in, G, N, s.gate_bias, B, &p, &out->act, err) ||
                size_add(&params, params, p))
                return -1;
            tensors += 3 + s.gate_bias;
            if (s.native_lf) size_tally_block(&out->act, (size_t)B * G * N, sizeof(real)); /* w */
        }
        for (int k = 0; k < s.K; k++) {
            const bool gated = k < G;
            if (!level_fused(l)) {
                if (experts_sizes(in, module_experts(&s, k), D, B, false, &p, &out->act, err) ||
                    size_add(&params, params, p))
                    return -1;
                tensors += 2;
                if (gated) {
                    if (gates_sizes(in, 1, N, s.gate_bias, B, &p, &out->act, err) ||
                        size_add(&params, params, p))
                        return -1;
                    tensors += 1 + s.gate_bias;
                    if (s.native_lf) size_tally_block(&out->act, (size_t)B * N, sizeof(real));
                }
            }
            if (!gated) continue;
            if (module_learns_native(&s, k)) {
                params += (size_t)module_experts(&s, k);
                tensors++;
            }
            size_tally_blocks(&out->act, 2, (size_t)B * D, sizeof(real)); /* f, df */
            gates += 2;
        }
    }
    size_t tower_params;
    size_tally_t tower_act = {0};
    if (tower_sizes(s.width[s.L - 1], s.tower_hidden, B, &tower_params, &tower_act, err)) return -1;
    for (int t = 0; t < s.T; t++) {
        size_tally_add(&out->act, &tower_act);
        if (size_add(&params, params, tower_params))
            return err_set(err, ERR_USAGE, "the parameter count overflows");
    }
    out->n_params = out->n_weights = params;
    out->n_tensors = tensors + 4 * s.T;
    out->state_bytes = sizeof(adatt_impl_t);
    out->n_gates = gates;
    out->gate_experts = (size_t)gates * N;
    return 0;
}

static int adatt_sizes(const model_config_t *c, model_sizes_t *out, err_t *err) {
    return adatt_sizes_of(c, adatt_hp, AD_N_HP, out, err);
}
static int adatt_sp_sizes(const model_config_t *c, model_sizes_t *out, err_t *err) {
    return adatt_sizes_of(c, adatt_sp_hp, AD_N_HP - 1, out, err);
}

/* Module k's gate at level l: group *i, gate *j. */
static void module_gate(int l, int k, int *i, int *j) {
    *i = level_fused(l) ? 0 : k;
    *j = level_fused(l) ? k : 0;
}

/* Registers module k's gate at level l: the softmax, then the effective weights. */
static int register_gates(model_t *m, adatt_impl_t *st, int l, int k, err_t *err) {
    const adatt_shape_t *s = &st->shape;
    char owner[MODEL_GATE_OWNER], name[MODEL_GATE_NAME];
    int i, j;
    module_gate(l, k, &i, &j);
    const gates_t *g = &st->gate[l][i];
    module_name(s, k, owner, sizeof owner);
    snprintf(name, sizeof name, "l%d/%s", l + 1, owner);
    if (gates_register(m, g, j, name, l + 1, owner, err)) return -1;
    model_gate_t w = {.level = l + 1,
                      .kind = GATE_WEIGHTS,
                      .experts = s->n_experts,
                      .values = st->weights[l][i] + (size_t)j * s->n_experts,
                      .ld = g->G * s->n_experts};
    char weights_name[64] = ""; /* "l4/shared/weights": fits w.name */
    snprintf(weights_name, sizeof weights_name, "%s/weights", name);
    memcpy(w.name, weights_name, sizeof w.name - 1);
    memcpy(w.owner, owner, sizeof w.owner);
    return model_add_gate(m, &w, err);
}

/* Group i of level l: its n experts (from expert column col of E) and its
 * G gates (none: G = 0), all reading one input. */
static int build_group(model_t *m, adatt_impl_t *st, int l, int i, int G, int n, int col,
                       err_t *err) {
    const adatt_shape_t *s = &st->shape;
    const int in = level_input(s, l), D = s->width[l], N = s->n_experts;
    char prefix[48], module[MODEL_GATE_OWNER], layer[24]; /* "l2.shared" */
    if (level_fused(l))
        snprintf(layer, sizeof layer, "l%d", l + 1);
    else {
        module_name(s, i, module, sizeof module);
        snprintf(layer, sizeof layer, "l%d.%s", l + 1, module);
    }
    snprintf(prefix, sizeof prefix, "%s.experts", layer);
    if (experts_build(m, &st->experts[l][i], prefix, in, n, D, st->E[l] + (size_t)col * D,
                      st->dE[l] + (size_t)col * D, N * D, err))
        return -1;
    if (G == 0) return 0;
    snprintf(prefix, sizeof prefix, level_fused(l) ? "%s.gates" : "%s.gate", layer);
    gates_t *g = &st->gate[l][i];
    if (gates_build(m, g, prefix, in, G, N, s->gate_bias, err)) return -1;
    st->weights[l][i] = s->native_lf ? model_act(m, G * N, err) : g->p;
    return st->weights[l][i] ? 0 : -1;
}

/* Builds after adatt_sizes_of() accepted the config: the int products fit. */
static int adatt_build(model_t *m, err_t *err) {
    adatt_impl_t *st = model_work(m, sizeof *st, err);
    if (!st) return -1;
    m->impl = st;
    adatt_shape_t *s = &st->shape;
    adatt_shape(&m->cfg, m->ops->hp, m->ops->n_hp, s);
    s->n_experts = s->T * s->m + s->ms;
    const int N = s->n_experts;
    char name[48], owner[MODEL_GATE_OWNER];
    for (int l = 0; l < s->L; l++) {
        const int D = s->width[l], G = level_gated(s, l);
        if (!(st->E[l] = model_act(m, N * D, err)) || !(st->dE[l] = model_act_grad(m, N * D, err)))
            return -1;
        if (level_fused(l) && build_group(m, st, l, 0, G, N, 0, err)) return -1;
        for (int k = 0; k < s->K; k++) {
            if (!level_fused(l) &&
                build_group(m, st, l, k, k < G, module_experts(s, k), module_first(s, k), err))
                return -1;
            st->native[l][k] = -1;
            if (k >= G) continue;
            if (module_learns_native(s, k)) {
                /* NativeExpertLF as a linear layer of m_k inputs and one output (Eq 8). */
                module_name(s, k, owner, sizeof owner);
                snprintf(name, sizeof name, "l%d.%s.native", l + 1, owner);
                st->native[l][k] =
                    model_declare(m, name, module_experts(s, k), 1, INIT_CUSTOM, TENSOR_WEIGHT);
                if (st->native[l][k] < 0)
                    return err_set(err, ERR_FAIL, "out of memory declaring tensor %s", name);
            }
            if (!(st->f[l][k] = model_act(m, D, err)) ||
                !(st->df[l][k] = model_act_grad(m, D, err)) || register_gates(m, st, l, k, err))
                return -1;
        }
    }
    for (int t = 0; t < s->T; t++) {
        snprintf(name, sizeof name, "tower%d", t + 1);
        if (tower_build(m, &st->tower[t], name, s->width[s->L - 1], s->tower_hidden, err))
            return -1;
    }
    return 0;
}

/* model_ops_t.init_custom: the native weights (INIT_CUSTOM) per native_init,
 * from the initialisation stream after every generic draw. */
static void adatt_init(model_t *m, rng_t *rng) {
    const adatt_impl_t *st = m->impl;
    const adatt_shape_t *s = &st->shape;
    for (int l = 0; l < s->L; l++)
        for (int k = 0; k < s->K; k++) {
            if (st->native[l][k] < 0) continue;
            const int n = module_experts(s, k);
            const double a = sqrt(1.0 / n); /* the reference code's U(±√(1/m)) */
            real *v = model_param(m, st->native[l][k]);
            for (int i = 0; i < n; i++)
                v[i] = s->native_ones ? 1 : (real)(a * (2.0 * rng_uniform(rng) - 1.0));
        }
}

/* The input of group i at level l: x, or module i's previous output. */
static const real *group_input(const adatt_impl_t *st, const real *x, int l, int i, int *ld) {
    *ld = level_input(&st->shape, l);
    return l == 0 ? x : st->f[l - 1][i];
}
static int level_groups(const adatt_shape_t *s, int l, bool gates) {
    return level_fused(l) ? 1 : gates ? level_gated(s, l) : s->K;
}

static void adatt_forward(model_t *m, const real *x, int B, real *pred, model_mode_t mode) {
    adatt_impl_t *st = m->impl;
    const adatt_shape_t *s = &st->shape;
    const int N = s->n_experts;
    for (int l = 0; l < s->L; l++) {
        const int D = s->width[l];
        int ldi;
        for (int i = 0; i < level_groups(s, l, false); i++) {
            const real *in = group_input(st, x, l, i, &ldi);    /* E[B, n·D] = relu(in · W + b) */
            experts_forward(m, &st->experts[l][i], in, ldi, B); /* (Eq 4) */
        }
        for (int i = 0; i < level_groups(s, l, true); i++) {
            const real *in = group_input(st, x, l, i, &ldi);
            gates_t *g = &st->gate[l][i];
            gates_forward(m, g, in, ldi, B); /* p[B, G·N] = softmax per gate of in · Wg (Eq 10) */
            if (s->native_lf) memcpy(st->weights[l][i], g->p, sizeof(real) * (size_t)B * g->G * N);
        }
        for (int k = 0; k < level_gated(s, l); k++) {
            int i, j;
            module_gate(l, k, &i, &j);
            const int ldw = st->gate[l][i].G * N;
            real *w = st->weights[l][i] + (size_t)j * N; /* [B, N], row stride ldw */
            if (s->native_lf) {                          /* w = G + pad(v) (Eq 11) */
                const int first = module_first(s, k), n = module_experts(s, k);
                const real *v = st->native[l][k] >= 0 ? model_param(m, st->native[l][k]) : NULL;
                for (int b = 0; b < B; b++)
                    for (int e = 0; e < n; e++)
                        w[(size_t)b * ldw + first + e] += v ? v[e] : 1;
            }
            mixture_forward(st->f[l][k], w, ldw, st->E[l], B, N, D); /* f[B, D] = Σ_j w_j E_j */
        }
    }
    const int T = s->T, DL = s->width[s->L - 1];
    for (int t = 0; t < T; t++)
        tower_forward(m, &st->tower[t], st->f[s->L - 1][t], DL, B, pred, T, t);
}

static void adatt_backward(model_t *m, const real *x, int B, const real *dpred) {
    adatt_impl_t *st = m->impl;
    const adatt_shape_t *s = &st->shape;
    const int N = s->n_experts, T = s->T, L = s->L;
    for (int t = 0; t < T; t++)
        tower_backward(m, &st->tower[t], st->f[L - 1][t], s->width[L - 1], B, dpred, T, t,
                       st->df[L - 1][t]);
    for (int l = L - 1; l >= 0; l--) {
        const int D = s->width[l];
        int ldi;
        for (int k = 0; k < level_gated(s, l); k++) {
            int i, j;
            module_gate(l, k, &i, &j);
            gates_t *g = &st->gate[l][i];
            const int ldw = g->G * N;
            real *dp = g->dp + (size_t)j * N;
            /* dw[B, N] (= dG: w = G + const) and dE += ... from df[B, D] */
            mixture_backward(dp, st->dE[l], st->df[l][k], st->weights[l][i] + (size_t)j * N, ldw,
                             st->E[l], B, N, D);
            if (st->native[l][k] >= 0) { /* dv_e = Σ_b dw[b, first + e] */
                real *dv = model_grad(m, st->native[l][k]);
                const int first = module_first(s, k), n = module_experts(s, k);
                for (int b = 0; b < B; b++)
                    for (int e = 0; e < n; e++)
                        dv[e] += dp[(size_t)b * ldw + first + e];
            }
        }
        for (int i = 0; i < level_groups(s, l, true); i++) {
            const real *in = group_input(st, x, l, i, &ldi);
            gates_backward(m, &st->gate[l][i], in, ldi, B, l == 0 ? NULL : st->df[l - 1][i]);
        }
        for (int i = 0; i < level_groups(s, l, false); i++) { /* every mixture added to dE */
            const real *in = group_input(st, x, l, i, &ldi);
            experts_backward(m, &st->experts[l][i], in, ldi, B, l == 0 ? NULL : st->df[l - 1][i]);
        }
    }
}

const model_ops_t model_adatt_sp_ops = {
    .name = "adatt_sp",
    .summary = "AdaTT-sp: levels of per-task experts fused by task gates over all experts plus "
               "the native experts' linear fusion",
    .hp = adatt_sp_hp,
    .n_hp = AD_N_HP - 1,
    .sizes = adatt_sp_sizes,
    .build = adatt_build,
    .forward = adatt_forward,
    .backward = adatt_backward,
    .init_custom = adatt_init,
};

const model_ops_t model_adatt_ops = {
    .name = "adatt",
    .summary = "AdaTT: adatt_sp plus shared experts (with a shared fusion unit below the last "
               "level)",
    .hp = adatt_hp,
    .n_hp = AD_N_HP,
    .sizes = adatt_sizes,
    .build = adatt_build,
    .forward = adatt_forward,
    .backward = adatt_backward,
    .init_custom = adatt_init,
};
