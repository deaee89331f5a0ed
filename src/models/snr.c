/* snr.c -- Sub-Network Routing (Ma et al., AAAI 2019; reference
 * mtl-models.md §11-12): SNR-Trans and SNR-Aver.
 *
 * L = `levels` layers of n = `experts` sub-networks, D_l units each
 * (`expert_hidden`, `expert_hidden2..4`).  Routing layer l connects the units
 * of layer l-1 (src j) to those of layer l (dst i) through coding variables
 * z^l_ij, one learned log α^l_ij each (tensor "l<l>.log_alpha" [n_dst, n_src]);
 * routing layer L+1 connects layer L to the T tasks (dst = task).
 *
 *   snr_trans  (every connection a transformation W^l_ij [D_{l-1}, D_l]):
 *     h^0 = x (one unit, D_0 = d)
 *     h^l_i = relu(Σ_j z^l_ij h^{l-1}_j W^l_ij + b^l_i)       l = 1..L, i < n
 *     g_t   = relu(Σ_j z^{L+1}_tj h^L_j W^{L+1}_tj + b^{L+1}_t)  the tower's hidden layer
 *     y_t   = g_t · Wo_t + bo_t
 *   Routing layer l stores its W^l_ij as one tensor "l<l>.W" [n_src·D_{l-1},
 *   n_dst·D_l] (block (j, i): rows j·D_{l-1}.., columns i·D_l..) and its
 *   biases "l<l>.b"; with every z = 1 it is one dense layer over the
 *   concatenated units (SNR §"Sub-Network Routing").  The towers' hidden
 *   layers (tower_hidden units) are routing layer L+1; their outputs
 *   "tower<t>.out.W/b".
 *
 *   snr_aver  (identity connections; every sub-network a one-layer net):
 *     u^1_i = relu(x · W^1_i + b^1_i)                          (no coding variables)
 *     u^l_i = relu((Σ_j z^l_ij u^{l-1}_j) · W^l_i + b^l_i)     l = 2..L
 *     v_t   = Σ_j z^{L+1}_tj u^L_j,   y_t = tower_t(v_t)
 *   Tensors "l1.W" [d, n·D_1] (all of layer 1 in one GEMM), "l<l>.s<i>.W"
 *   [D_{l-1}, D_l] and ".b" for l >= 2, "tower<t>.hidden/out.W/b".
 *
 * Coding variables (nn/hard_concrete.h).  A MODEL_TRAIN forward draws one u
 * per connection from m->rng (fresh noise for every mini-batch, the same for
 * every example of it) and uses the sample z; backward gives log α the
 * gradient dL/dz · dz/dlog α.  A MODEL_EVAL forward uses the serving
 * estimate ẑ (deterministic).  The penalty hook adds λ Σ P(z ≠ 0) over every
 * connection (the expected L0; SNR Eq 4) and its gradient; the constrain hook
 * clamps every log α to [-clamp, clamp] after each optimiser step (AMLab:
 * [log 0.01, log 100]).  log α starts at N(log(1 - p0) - log p0, 0.01²),
 * p0 = droprate_init (INIT_CUSTOM, drawn from the init stream).
 *
 * Routes (model.h): every connection, per routing layer, dst, src, as kinds
 * "z" (ẑ), "log_alpha", "p_open" (P(z ≠ 0)).  Serving size: the weights the
 * served model keeps -- trans: every W^l_ij with ẑ_ij = 0 removed (the ẑ
 * are folded into the kept W, so no log α is served); aver: a sub-network
 * (its W and b) removed only when ẑ = 0 on ALL its outgoing connections. */
#include <assert.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "models/blocks.h"
#include "nn/hard_concrete.h"
#include "nn/layers.h"

enum {
    SNR_EXPERTS,
    SNR_EXPERT_HIDDEN, /* .. SNR_EXPERT_HIDDEN + 3: expert_hidden, expert_hidden2..4 */
    SNR_EXPERT_HIDDEN2,
    SNR_EXPERT_HIDDEN3,
    SNR_EXPERT_HIDDEN4,
    SNR_LEVELS,
    SNR_TOWER_HIDDEN,
    SNR_INIT,
    SNR_BETA,
    SNR_GAMMA,
    SNR_ZETA,
    SNR_LAMBDA,
    SNR_DROPRATE,
    SNR_CLAMP,
    SNR_N_HP
};

#define SNR_HP(experts_help, hidden_help)                                                          \
    {                                                                                              \
        [SNR_EXPERTS] = {"experts", HP_INT, 1, 4096, 4, experts_help},                             \
        [SNR_EXPERT_HIDDEN] = {"expert_hidden", HP_INT, 1, 1e6, 16, hidden_help},                  \
        [SNR_EXPERT_HIDDEN2] = {"expert_hidden2",                                                  \
                                HP_INT,                                                            \
                                0,                                                                 \
                                1e6,                                                               \
                                0,                                                                 \
                                "units per sub-network of layer 2 (0: as layer 1)"},               \
        [SNR_EXPERT_HIDDEN3] = {"expert_hidden3",                                                  \
                                HP_INT,                                                            \
                                0,                                                                 \
                                1e6,                                                               \
                                0,                                                                 \
                                "units per sub-network of layer 3 (0: as layer 2)"},               \
        [SNR_EXPERT_HIDDEN4] = {"expert_hidden4",                                                  \
                                HP_INT,                                                            \
                                0,                                                                 \
                                1e6,                                                               \
                                0,                                                                 \
                                "units per sub-network of layer 4 (0: as layer 3)"},               \
        [SNR_LEVELS] = {"levels", HP_INT, 1, 5, 2, "layers of sub-networks (layer 5 as wide as 4)"},                      \
        [SNR_TOWER_HIDDEN] =                                                                       \
            {"tower_hidden", HP_INT, 1, 1e6, 8, "hidden units of each task tower"},                \
        [SNR_INIT] = MODEL_HP_INIT,                                                                \
        [SNR_BETA] = {"hc_beta",                                                                   \
                      HP_NUM,                                                                      \
                      0.01,                                                                        \
                      100,                                                                         \
                      HC_BETA_DEFAULT,                                                             \
                      "hard concrete temperature beta (Louizos et al.: 2/3)"},                     \
        [SNR_GAMMA] =                                                                              \
            {"hc_gamma", HP_NUM,           -100,                                                   \
             -1e-6,      HC_GAMMA_DEFAULT, "hard concrete stretch: lower end gamma < 0"},          \
        [SNR_ZETA] = {"hc_zeta", HP_NUM,          1.000001,                                        \
                      100,       HC_ZETA_DEFAULT, "hard concrete stretch: upper end zeta > 1"},    \
        [SNR_LAMBDA] = {"l0_lambda", HP_NUM,                                                       \
                        0,           1e6,                                                          \
                        1e-4,        "weight of the expected-L0 penalty lambda * sum P(z != 0)"},  \
        [SNR_DROPRATE] = {"droprate_init",                                                         \
                          HP_NUM,                                                                  \
                          1e-6,                                                                    \
                          0.999999,                                                                \
                          0.5,                                                                     \
                          "initial log alpha ~ N(log(1-p)-log(p), 0.01^2) (0.5: mean 0)"},         \
        [SNR_CLAMP] = {"log_alpha_clamp",                                                          \
                       HP_NUM,                                                                     \
                       0.01,                                                                       \
                       1e3,                                                                        \
                       4.605170185988092,                                                          \
                       "log alpha clamped to [-c, c] after every step (log 100)"},                 \
    }
static const model_hp_t snr_trans_hp[SNR_N_HP] =
    SNR_HP("sub-networks per layer", "units per sub-network of layer 1 (each W_ij's output)");
static const model_hp_t snr_aver_hp[SNR_N_HP] =
    SNR_HP("sub-networks per layer", "units per sub-network of layer 1");

#define SNR_MAX_ROUTING (MULTI_LEVEL_MAX + 1)

/* The coding variables of one routing layer: n_dst x n_src connections,
 * connection (i, j) at [i·n_src + j]. */
typedef struct {
    int n_src, n_dst;
    int log_alpha; /* tensor [n_dst, n_src] */
    double *z;     /* this pass's z (sample or ẑ) */
    real *zr;      /* the same as reals (the mixing kernels') */
    real *acc;     /* aver: [n_dst·n_src, h_src] per-unit sums of dL/dz over the batch */
    double *dz;    /* dz/dlog α of this pass's z (0 in MODEL_EVAL) */
    double *gz;    /* dL/dz of the last backward (zeroed at its start) */
} coding_t;

/* A transformation routing layer (trans).  With the coding variables of the
 * pass folded into the weights, Weff = W ⊙ Z (block (j, i) of W times z_ij),
 * the layer is one dense ReLU layer over the concatenated source units:
 *   out = relu(in · Weff + b)
 * so a pass is the GEMMs of a dense layer plus O(|W|) element-wise work. */
typedef struct {
    int W, b; /* [n_src·h_src, n_dst·h_dst], [1, n_dst·h_dst] */
    int h_src, h_dst;
    real *Weff, *dWeff; /* [n_src·h_src, n_dst·h_dst]: W ⊙ Z of this pass; its gradient */
    real *out, *dout;   /* [max_batch, n_dst·h_dst] post-ReLU; its gradient (accumulated) */
} trans_t;

/* An averaging layer (aver, l >= 2): n sub-networks reading their mixtures. */
typedef struct {
    int h_src, h_dst;
    dense_ref_t *sub; /* [n_dst] "l<l>.s<i>" [h_src, h_dst] */
    real *mix, *dmix; /* [max_batch, n_dst·h_src] mixture i at column i·h_src */
    real *out, *dout; /* [max_batch, n_dst·h_dst] */
} aver_t;

typedef struct {
    bool aver;
    hc_params_t hc;
    double lambda, clamp;
    int L, n, D[MULTI_LEVEL_MAX];
    int n_routing;                  /* L + 1 */
    coding_t code[SNR_MAX_ROUTING]; /* [l-1]: routing layer l (aver: code[0] unused) */
    /* trans */
    trans_t trans[SNR_MAX_ROUTING];
    dense_ref_t out[MODEL_MAX_TASKS]; /* "tower<t>.out" [tower_hidden, 1] */
    /* aver */
    experts_t first;             /* layer 1: d -> n·D_1 */
    aver_t avg[SNR_MAX_ROUTING]; /* [l-1] for l = 2..L */
    real *v, *dv;                /* [max_batch, T·D_L]: v_t at column t·D_L */
    tower_t tower[MODEL_MAX_TASKS];
} snr_t;

/* Routing layer l (1-based)'s source and destination units. */
static void layer_units(int l, int L, int n, int T, int *n_src, int *n_dst) {
    *n_src = l == 1 ? 1 : n;
    *n_dst = l == L + 1 ? T : n;
}

/* ---- sizes ---- */

static int snr_sizes(const model_config_t *c, bool aver, model_sizes_t *out, err_t *err) {
    const int d = c->input_dim, T = c->tasks, B = c->max_batch, n = model_hp_int(c, SNR_EXPERTS),
              L = model_hp_int(c, SNR_LEVELS), th = model_hp_int(c, SNR_TOWER_HIDDEN);
    if (L > MULTI_LEVEL_MAX)
        return err_set(err, ERR_USAGE, "levels = %d: at most %d layers", L, MULTI_LEVEL_MAX);
    int D[MULTI_LEVEL_MAX];
    level_widths(c, SNR_EXPERT_HIDDEN, L, D);
    size_t total = 0, p, routes = 0;
    int tensors = 0;
    for (int l = 1; l <= L + 1; l++) {
        int n_src, n_dst;
        layer_units(l, L, n, T, &n_src, &n_dst);
        const int h_src = l == 1 ? d : D[l - 2],
                  h_dst = l == L + 1 ? (aver ? D[L - 1] : th) : D[l - 1];
        size_t src_w, dst_w, rows, conn;
        if (size_mul(&src_w, n_src, h_src) || src_w > INT_MAX || size_mul(&dst_w, n_dst, h_dst) ||
            dst_w > INT_MAX)
            return err_set(err, ERR_USAGE,
                           "routing layer %d: %d x %d or %d x %d units overflows a layer width "
                           "(at most %d)",
                           l, n_src, h_src, n_dst, h_dst, INT_MAX);
        if (size_mul(&conn, n_src, n_dst) || conn > INT_MAX / 3)
            return err_set(err, ERR_USAGE, "routing layer %d: %d x %d connections overflows", l,
                           n_src, n_dst);
        if (block_count(&rows, B, dst_w, 1) || block_count(&rows, B, src_w, 1))
            return err_set(err, ERR_USAGE, "routing layer %d: max_batch %d x %zu units overflows",
                           l, B, src_w > dst_w ? src_w : dst_w);
        /* coding variables (aver: none at layer 1) */
        if (!aver || l > 1) {
            if (size_add(&total, total, conn) || size_add(&routes, routes, 3 * conn)) goto overflow;
            tensors += 1;
            size_tally_blocks(&out->act, 3, conn, sizeof(double)); /* z, dz, gz */
            size_tally_block(&out->act, conn, sizeof(real));       /* zr */
            if (aver) size_tally_block(&out->act, conn * (size_t)h_src, sizeof(real)); /* acc */
        }
        if (!aver) {
            if (block_count(&p, src_w, dst_w, 1) || size_add(&total, total, p) ||
                size_add(&total, total, dst_w))
                goto overflow;
            tensors += 2;
            size_tally_blocks(&out->act, 2, p, sizeof(real));                 /* Weff, dWeff */
            size_tally_blocks(&out->act, 2, (size_t)B * dst_w, sizeof(real)); /* out, dout */
        } else if (l == 1) {
            if (experts_sizes(d, n, D[0], B, true, &p, &out->act, err)) return -1;
            if (size_add(&total, total, p)) goto overflow;
            tensors += 2;
        } else if (l <= L) {
            if (block_count(&p, h_src, h_dst, n_dst) || size_add(&total, total, p) ||
                size_add(&total, total, dst_w))
                goto overflow;
            tensors += 2 * n_dst;
            size_tally_block(&out->act, (size_t)n_dst, sizeof(dense_ref_t));
            size_tally_blocks(&out->act, 2, (size_t)B * n_dst * h_src, sizeof(real)); /* mix */
            size_tally_blocks(&out->act, 2, (size_t)B * dst_w, sizeof(real));         /* out */
        } else {
            size_tally_blocks(&out->act, 2, (size_t)B * dst_w, sizeof(real)); /* v, dv */
        }
    }
    if (!aver) { /* the towers' outputs */
        if (size_add(&total, total, (size_t)T * (th + 1))) goto overflow;
        tensors += 2 * T;
    } else {
        size_tally_t tower_act = {0};
        if (tower_sizes(D[L - 1], th, B, &p, &tower_act, err)) return -1;
        for (int k = 0; k < T; k++)
            size_tally_add(&out->act, &tower_act);
        if (size_mul(&p, p, T) || size_add(&total, total, p)) goto overflow;
        tensors += 4 * T;
    }
    if (routes > INT_MAX) goto overflow;
    out->n_params = out->n_weights = total;
    out->n_tensors = tensors;
    out->n_routes = (int)routes;
    out->state_bytes = sizeof(snr_t);
    return 0;
overflow:
    return err_set(err, ERR_USAGE, "the parameter count overflows");
}

static int snr_trans_sizes(const model_config_t *c, model_sizes_t *out, err_t *err) {
    return snr_sizes(c, false, out, err);
}
static int snr_aver_sizes(const model_config_t *c, model_sizes_t *out, err_t *err) {
    return snr_sizes(c, true, out, err);
}

/* ---- build ---- */

/* acc_cols: the width of the sources of an averaging layer (its per-unit
 * accumulators), 0 for a transformation layer. */
static int coding_build(model_t *m, coding_t *cd, int l, int n_src, int n_dst, int acc_cols,
                        err_t *err) {
    char name[48];
    snprintf(name, sizeof name, "l%d.log_alpha", l);
    cd->n_src = n_src;
    cd->n_dst = n_dst;
    cd->log_alpha = model_declare(m, name, n_dst, n_src, INIT_CUSTOM, TENSOR_WEIGHT);
    if (cd->log_alpha < 0) return err_set(err, ERR_FAIL, "out of memory declaring %s", name);
    const size_t conn = (size_t)n_src * n_dst;
    if (!(cd->z = model_work(m, sizeof(double) * conn, err)) ||
        !(cd->dz = model_work(m, sizeof(double) * conn, err)) ||
        !(cd->gz = model_work(m, sizeof(double) * conn, err)) ||
        !(cd->zr = model_work(m, sizeof(real) * conn, err)))
        return -1;
    if (acc_cols > 0 && !(cd->acc = model_work(m, sizeof(real) * conn * acc_cols, err))) return -1;
    for (size_t k = 0; k < conn; k++) /* before any pass: z = 1, as a dense layer */
        cd->z[k] = cd->zr[k] = 1;
    return 0;
}

static int snr_build(model_t *m, bool aver, err_t *err) {
    const model_config_t *c = &m->cfg;
    snr_t *s = model_work(m, sizeof *s, err);
    if (!s) return -1;
    m->impl = s;
    s->aver = aver;
    s->n = model_hp_int(c, SNR_EXPERTS);
    s->L = model_hp_int(c, SNR_LEVELS);
    s->n_routing = s->L + 1;
    level_widths(c, SNR_EXPERT_HIDDEN, s->L, s->D);
    s->hc = (hc_params_t){c->hp[SNR_BETA], c->hp[SNR_GAMMA], c->hp[SNR_ZETA]};
    s->lambda = c->hp[SNR_LAMBDA];
    s->clamp = c->hp[SNR_CLAMP];
    const int d = c->input_dim, T = c->tasks, L = s->L, n = s->n,
              th = model_hp_int(c, SNR_TOWER_HIDDEN);
    char name[48];
    for (int l = 1; l <= L + 1; l++) {
        int n_src, n_dst;
        layer_units(l, L, n, T, &n_src, &n_dst);
        if (!aver) {
            trans_t *t = &s->trans[l - 1];
            t->h_src = l == 1 ? d : s->D[l - 2];
            t->h_dst = l == L + 1 ? th : s->D[l - 1];
            const int src_w = n_src * t->h_src, dst_w = n_dst * t->h_dst;
            snprintf(name, sizeof name, "l%d.W", l);
            t->W = model_declare(m, name, src_w, dst_w, INIT_WEIGHT, TENSOR_WEIGHT);
            snprintf(name, sizeof name, "l%d.b", l);
            t->b = model_declare_bias(m, name, dst_w, src_w);
            if (t->W < 0 || t->b < 0)
                return err_set(err, ERR_FAIL, "out of memory declaring %s", name);
            if (coding_build(m, &s->code[l - 1], l, n_src, n_dst, 0, err)) return -1;
            const size_t w_bytes = sizeof(real) * (size_t)src_w * dst_w; /* checked by sizes */
            if (!(t->Weff = model_work(m, w_bytes, err)) ||
                !(t->dWeff = model_work(m, w_bytes, err)) || !(t->out = model_act(m, dst_w, err)) ||
                !(t->dout = model_act_grad(m, dst_w, err)))
                return -1;
        } else if (l == 1) {
            if (experts_build(m, &s->first, "l1", d, n, s->D[0], NULL, NULL, 0, err)) return -1;
        } else if (l <= L) {
            aver_t *a = &s->avg[l - 1];
            a->h_src = s->D[l - 2];
            a->h_dst = s->D[l - 1];
            if (!(a->sub = model_work(m, sizeof *a->sub * (size_t)n_dst, err))) return -1;
            for (int i = 0; i < n_dst; i++) {
                snprintf(name, sizeof name, "l%d.s%d", l, i + 1);
                if (dense_declare(m, &a->sub[i], name, a->h_src, a->h_dst, true, err)) return -1;
            }
            if (coding_build(m, &s->code[l - 1], l, n_src, n_dst, a->h_src, err)) return -1;
            if (!(a->mix = model_act(m, n_dst * a->h_src, err)) ||
                !(a->dmix = model_act_grad(m, n_dst * a->h_src, err)) ||
                !(a->out = model_act(m, n_dst * a->h_dst, err)) ||
                !(a->dout = model_act_grad(m, n_dst * a->h_dst, err)))
                return -1;
        } else {
            if (coding_build(m, &s->code[l - 1], l, n_src, n_dst, s->D[L - 1], err)) return -1;
            if (!(s->v = model_act(m, T * s->D[L - 1], err)) ||
                !(s->dv = model_act_grad(m, T * s->D[L - 1], err)))
                return -1;
        }
    }
    for (int k = 0; k < T; k++) {
        snprintf(name, sizeof name, "tower%d", k + 1);
        if (!aver) {
            snprintf(name, sizeof name, "tower%d.out", k + 1);
            if (dense_declare(m, &s->out[k], name, th, 1, true, err)) return -1;
        } else if (tower_build(m, &s->tower[k], name, s->D[L - 1], th, err)) {
            return -1;
        }
    }
    return 0;
}

static int snr_trans_build(model_t *m, err_t *err) {
    return snr_build(m, false, err);
}
static int snr_aver_build(model_t *m, err_t *err) {
    return snr_build(m, true, err);
}

/* log α ~ N(log(1 - p0) - log p0, 0.01²), every coding tensor in order. */
static void snr_init_custom(model_t *m, rng_t *rng) {
    const snr_t *s = m->impl;
    const double mean = hc_log_alpha_init(m->cfg.hp[SNR_DROPRATE]);
    for (int l = s->aver ? 1 : 0; l < s->n_routing; l++) {
        const coding_t *cd = &s->code[l];
        real *la = model_param(m, cd->log_alpha);
        for (int k = 0; k < cd->n_src * cd->n_dst; k++)
            la[k] = (real)(mean + 0.01 * rng_normal(rng));
    }
}

/* ---- coding variables ---- */

/* z for this pass: a fresh sample per connection (MODEL_TRAIN) or ẑ. */
static void coding_draw(model_t *m, const snr_t *s, coding_t *cd, model_mode_t mode) {
    const real *la = model_param(m, cd->log_alpha);
    for (int k = 0; k < cd->n_src * cd->n_dst; k++) {
        if (mode == MODEL_TRAIN) {
            cd->z[k] = hc_sample(&s->hc, la[k], hc_uniform(&m->rng), &cd->dz[k]);
        } else {
            cd->z[k] = hc_serving(&s->hc, la[k]);
            cd->dz[k] = 0;
        }
        cd->zr[k] = (real)cd->z[k];
    }
}

/* grads of log α += dL/dz · dz/dlog α. */
static void coding_backward(model_t *m, const coding_t *cd) {
    real *g = model_grad(m, cd->log_alpha);
    for (int k = 0; k < cd->n_src * cd->n_dst; k++)
        g[k] += (real)(cd->gz[k] * cd->dz[k]);
}

/* ---- trans ---- */

/* The element-wise loops are written as nn/layers.c's kernels are:
 * blocks of LANES elements (loops of constant length, which GCC's -O2
 * vectoriser takes) on restrict rows, compiled for AVX2 and the baseline
 * (target_clones); vectorised across independent elements, so no sum is
 * reordered. */
#define LANES 8
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SNR_KERNEL __attribute__((target_clones("avx2", "default")))
#else
#define SNR_KERNEL
#endif

/* o[n] = z · x[n] */
static inline void scale_row(real *restrict o, real z, const real *restrict x, int n) {
    int k = 0;
    for (; k + LANES <= n; k += LANES)
        for (int l = 0; l < LANES; l++)
            o[k + l] = z * x[k + l];
    for (; k < n; k++)
        o[k] = z * x[k];
}

/* acc[n] += u[n] · d[n];  du[n] += z · d[n] */
static inline void products_axpy(real *restrict acc, real *restrict du, real z,
                                 const real *restrict u, const real *restrict d, int n) {
    int k = 0;
    for (; k + LANES <= n; k += LANES)
        for (int l = 0; l < LANES; l++) {
            acc[k + l] += u[k + l] * d[k + l];
            du[k + l] += z * d[k + l];
        }
    for (; k < n; k++) {
        acc[k] += u[k] * d[k];
        du[k] += z * d[k];
    }
}

/* Units per block of the per-unit accumulators of a batch sum. */
#define SNR_CHUNK 64

/* Weff = W ⊙ Z: the rows of source unit j, columns of destination unit i,
 * scaled by z_ij. */
SNR_KERNEL static void trans_fold(const model_t *m, trans_t *t, const coding_t *cd) {
    const int src_w = cd->n_src * t->h_src, dst_w = cd->n_dst * t->h_dst;
    const real *W = model_param(m, t->W);
    for (int r = 0; r < src_w; r++)
        for (int i = 0; i < cd->n_dst; i++) {
            const size_t at = (size_t)r * dst_w + (size_t)i * t->h_dst;
            scale_row(t->Weff + at, cd->zr[i * cd->n_src + r / t->h_src], W + at, t->h_dst);
        }
}

/* out[B, n_dst·h_dst] = relu(in[B, n_src·h_src] (stride ldi) · Weff + b), i.e.
 * h_i = relu(Σ_j z_ij in_j W_ij + b_i). */
static void trans_forward(const model_t *m, trans_t *t, const coding_t *cd, const real *in, int ldi,
                          int B) {
    const int src_w = cd->n_src * t->h_src, dst_w = cd->n_dst * t->h_dst;
    trans_fold(m, t, cd);
    dense_relu_forward_ld(t->out, dst_w, in, ldi, t->Weff, model_param(m, t->b), B, src_w, dst_w);
}

/* dW_ij += z_ij · dWeff_ij;  dL/dz_ij += Σ dWeff_ij ⊙ W_ij (per column summed
 * over the block's rows in order, then over the columns). */
SNR_KERNEL static void trans_unfold(model_t *m, trans_t *t, coding_t *cd) {
    const int dst_w = cd->n_dst * t->h_dst, hs = t->h_src, hd = t->h_dst;
    const real *W = model_param(m, t->W);
    real *dW = model_grad(m, t->W);
    for (int j = 0; j < cd->n_src; j++)
        for (int i = 0; i < cd->n_dst; i++) {
            const real z = cd->zr[i * cd->n_src + j];
            double g = 0;
            for (int k0 = 0; k0 < hd; k0 += SNR_CHUNK) {
                const int kn = hd - k0 < SNR_CHUNK ? hd - k0 : SNR_CHUNK;
                real acc[SNR_CHUNK] = {0};
                for (int r = j * hs; r < (j + 1) * hs; r++) {
                    const size_t at = (size_t)r * dst_w + (size_t)i * hd + k0;
                    products_axpy(acc, dW + at, z, W + at, t->dWeff + at, kn);
                }
                for (int k = 0; k < kn; k++)
                    g += acc[k];
            }
            cd->gz[i * cd->n_src + j] += g;
        }
}

/* From dout (overwritten: ReLU): dWeff = inᵀ · dpre, then trans_unfold; db;
 * din += dpre · Weffᵀ (NULL: data). */
static void trans_backward(model_t *m, trans_t *t, coding_t *cd, const real *in, int ldi, int B,
                           real *din) {
    const int src_w = cd->n_src * t->h_src, dst_w = cd->n_dst * t->h_dst;
    memset(t->dWeff, 0, sizeof(real) * (size_t)src_w * dst_w);
    dense_relu_backward_ld(din, ldi, t->dWeff, model_grad(m, t->b), t->dout, dst_w, in, t->Weff,
                           t->out, B, src_w, dst_w);
    trans_unfold(m, t, cd);
}

/* ---- aver ---- */

/* o[h] = Σ_j z[j] · e[j, h] (e: n rows of h, contiguous), summed over j in order. */
static inline void mix_row(real *restrict o, const real *restrict z, const real *restrict e, int n,
                           int h) {
    int k = 0;
    for (; k + LANES <= h; k += LANES) {
        real acc[LANES] = {0};
        for (int j = 0; j < n; j++)
            for (int l = 0; l < LANES; l++)
                acc[l] += z[j] * e[(size_t)j * h + k + l];
        for (int l = 0; l < LANES; l++)
            o[k + l] = acc[l];
    }
    for (; k < h; k++) {
        real acc = 0;
        for (int j = 0; j < n; j++)
            acc += z[j] * e[(size_t)j * h + k];
        o[k] = acc;
    }
}

/* mix[B, n_dst·h] (stride ld_mix) = Σ_j z_ij · u_j, u_j at column j·h of u
 * (stride ldu). */
SNR_KERNEL static void aver_mix(const coding_t *cd, const real *u, int ldu, int h, int B, real *mix,
                                int ld_mix) {
    for (int b = 0; b < B; b++)
        for (int i = 0; i < cd->n_dst; i++)
            mix_row(mix + (size_t)b * ld_mix + (size_t)i * h, cd->zr + (size_t)i * cd->n_src,
                    u + (size_t)b * ldu, cd->n_src, h);
}

/* Its backward: du_j += z_ij · dmix_i;  dL/dz_ij += Σ_b <u_j, dmix_i>, where
 * each unit's products are summed over the batch first (in order of b, into
 * cd->acc), then over the units in order: no long chain of dependent adds,
 * and each batch row is read once. */
SNR_KERNEL static void aver_mix_backward(coding_t *cd, const real *u, int ldu, int h, int B,
                                         const real *dmix, int ld_mix, real *du) {
    const int n_src = cd->n_src, conn = n_src * cd->n_dst;
    memset(cd->acc, 0, sizeof(real) * (size_t)conn * h);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < cd->n_dst; i++)
            for (int j = 0; j < n_src; j++)
                products_axpy(cd->acc + (size_t)(i * n_src + j) * h,
                              du + (size_t)b * ldu + (size_t)j * h, cd->zr[i * n_src + j],
                              u + (size_t)b * ldu + (size_t)j * h,
                              dmix + (size_t)b * ld_mix + (size_t)i * h, h);
    for (int c = 0; c < conn; c++) {
        double g = 0;
        for (int k = 0; k < h; k++)
            g += cd->acc[(size_t)c * h + k];
        cd->gz[c] += g;
    }
}

/* ---- passes ---- */

static void snr_forward(model_t *m, const real *x, int B, real *pred, model_mode_t mode) {
    snr_t *s = m->impl;
    const int d = m->cfg.input_dim, T = m->cfg.tasks, L = s->L, n = s->n;
    for (int l = s->aver ? 1 : 0; l < s->n_routing; l++)
        coding_draw(m, s, &s->code[l], mode);
    if (!s->aver) {
        const real *in = x;
        int ldi = d;
        for (int l = 0; l <= L; l++) {
            trans_forward(m, &s->trans[l], &s->code[l], in, ldi, B);
            in = s->trans[l].out;
            ldi = s->code[l].n_dst * s->trans[l].h_dst;
        }
        const int th = s->trans[L].h_dst;
        for (int k = 0; k < T; k++) /* y_k = g_k · Wo_k + bo_k */
            dense_ref_forward(m, &s->out[k], in + (size_t)k * th, ldi, B, pred + k, T);
        return;
    }
    experts_forward(m, &s->first, x, d, B); /* u¹ = relu(x · W¹ + b¹) */
    const real *u = s->first.out;
    int ldu = s->first.ld;
    for (int l = 1; l < L; l++) { /* routing layer l + 1 */
        aver_t *a = &s->avg[l];
        aver_mix(&s->code[l], u, ldu, a->h_src, B, a->mix, n * a->h_src);
        for (int i = 0; i < n; i++)
            dense_ref_relu_forward(m, &a->sub[i], a->mix + (size_t)i * a->h_src, n * a->h_src, B,
                                   a->out + (size_t)i * a->h_dst, n * a->h_dst);
        u = a->out;
        ldu = n * a->h_dst;
    }
    const int h = s->D[L - 1];
    aver_mix(&s->code[L], u, ldu, h, B, s->v, T * h);
    for (int k = 0; k < T; k++)
        tower_forward(m, &s->tower[k], s->v + (size_t)k * h, T * h, B, pred, T, k);
}

static void snr_backward(model_t *m, const real *x, int B, const real *dpred) {
    snr_t *s = m->impl;
    const int d = m->cfg.input_dim, T = m->cfg.tasks, L = s->L, n = s->n;
    for (int l = s->aver ? 1 : 0; l < s->n_routing; l++) /* dL/dz of this backward alone */
        memset(s->code[l].gz, 0, sizeof(double) * s->code[l].n_src * s->code[l].n_dst);
    if (!s->aver) {
        const int th = s->trans[L].h_dst, top_w = T * th;
        for (int k = 0; k < T; k++)
            dense_ref_backward(m, &s->out[k], s->trans[L].out + (size_t)k * th, top_w, B, dpred + k,
                               T, s->trans[L].dout + (size_t)k * th);
        for (int l = L; l >= 0; l--) {
            const real *in = l ? s->trans[l - 1].out : x;
            const int ldi = l ? s->code[l - 1].n_dst * s->trans[l - 1].h_dst : d;
            trans_backward(m, &s->trans[l], &s->code[l], in, ldi, B,
                           l ? s->trans[l - 1].dout : NULL);
            coding_backward(m, &s->code[l]);
        }
        return;
    }
    const int h = s->D[L - 1];
    for (int k = 0; k < T; k++)
        tower_backward(m, &s->tower[k], s->v + (size_t)k * h, T * h, B, dpred, T, k,
                       s->dv + (size_t)k * h);
    real *u = L > 1 ? s->avg[L - 1].out : s->first.out;
    real *du = L > 1 ? s->avg[L - 1].dout : s->first.dout;
    int ldu = L > 1 ? n * s->avg[L - 1].h_dst : s->first.ld;
    aver_mix_backward(&s->code[L], u, ldu, h, B, s->dv, T * h, du);
    coding_backward(m, &s->code[L]);
    for (int l = L - 1; l >= 1; l--) {
        aver_t *a = &s->avg[l];
        for (int i = 0; i < n; i++)
            dense_ref_relu_backward(m, &a->sub[i], a->mix + (size_t)i * a->h_src, n * a->h_src, B,
                                    a->out + (size_t)i * a->h_dst, a->dout + (size_t)i * a->h_dst,
                                    n * a->h_dst, a->dmix + (size_t)i * a->h_src);
        u = l > 1 ? s->avg[l - 1].out : s->first.out;
        du = l > 1 ? s->avg[l - 1].dout : s->first.dout;
        ldu = l > 1 ? n * s->avg[l - 1].h_dst : s->first.ld;
        aver_mix_backward(&s->code[l], u, ldu, a->h_src, B, a->dmix, n * a->h_src, du);
        coding_backward(m, &s->code[l]);
    }
    experts_backward(m, &s->first, x, d, B, NULL);
}

/* ---- penalty, constraint, routes, serving size ---- */

/* λ Σ P(z ≠ 0) over every connection; grads of log α += λ dP/dlog α. */
static double snr_penalty(model_t *m) {
    const snr_t *s = m->impl;
    double sum = 0;
    for (int l = s->aver ? 1 : 0; l < s->n_routing; l++) {
        const coding_t *cd = &s->code[l];
        const real *la = model_param(m, cd->log_alpha);
        real *g = model_grad(m, cd->log_alpha);
        for (int k = 0; k < cd->n_src * cd->n_dst; k++) {
            double dp;
            sum += hc_p_open(&s->hc, la[k], &dp);
            g[k] += (real)(s->lambda * dp);
        }
    }
    return s->lambda * sum;
}

static void snr_constrain(model_t *m) {
    const snr_t *s = m->impl;
    const real lo = (real)-s->clamp, hi = (real)s->clamp;
    for (int l = s->aver ? 1 : 0; l < s->n_routing; l++) {
        const coding_t *cd = &s->code[l];
        real *la = model_param(m, cd->log_alpha);
        for (int k = 0; k < cd->n_src * cd->n_dst; k++)
            la[k] = la[k] < lo ? lo : la[k] > hi ? hi : la[k];
    }
}

static int snr_routes(const model_t *m, model_route_t *out) {
    const snr_t *s = m->impl;
    int n = 0;
    for (int l = s->aver ? 1 : 0; l < s->n_routing; l++) {
        const coding_t *cd = &s->code[l];
        const real *la = out ? model_param(m, cd->log_alpha) : NULL;
        for (int i = 0; i < cd->n_dst; i++)
            for (int j = 0; j < cd->n_src; j++) {
                if (out) {
                    const double a = la[i * cd->n_src + j];
                    out[n] = (model_route_t){l + 1, j, i, "z", hc_serving(&s->hc, a)};
                    out[n + 1] = (model_route_t){l + 1, j, i, "log_alpha", a};
                    out[n + 2] = (model_route_t){l + 1, j, i, "p_open", hc_p_open(&s->hc, a, NULL)};
                }
                n += 3;
            }
    }
    return n;
}

/* Whether ẑ of connection (i, j) of routing layer index l is 0. */
static bool closed(const model_t *m, const snr_t *s, int l, int i, int j) {
    const coding_t *cd = &s->code[l];
    return hc_serving(&s->hc, model_param(m, cd->log_alpha)[i * cd->n_src + j]) == 0;
}

static size_t snr_serving_params(const model_t *m) {
    const snr_t *s = m->impl;
    const int T = m->cfg.tasks, L = s->L, n = s->n;
    size_t total = 0;
    if (!s->aver) {
        for (int l = 0; l <= L; l++) {
            const trans_t *t = &s->trans[l];
            const coding_t *cd = &s->code[l];
            total += (size_t)cd->n_dst * t->h_dst; /* biases */
            for (int i = 0; i < cd->n_dst; i++)
                for (int j = 0; j < cd->n_src; j++)
                    if (!closed(m, s, l, i, j)) total += (size_t)t->h_src * t->h_dst;
        }
        return total + (size_t)T * (s->trans[L].h_dst + 1);
    }
    /* sub-network j of layer l (1-based) is kept when some outgoing ẑ (routing
     * layer l + 1, index l) is not 0 */
    for (int l = 1; l <= L; l++) {
        const int h_in = l == 1 ? m->cfg.input_dim : s->D[l - 2], h = s->D[l - 1];
        const coding_t *next = &s->code[l];
        for (int j = 0; j < n; j++) {
            bool kept = false;
            for (int i = 0; i < next->n_dst && !kept; i++)
                kept = !closed(m, s, l, i, j);
            if (kept) total += (size_t)h_in * h + h;
        }
    }
    const size_t th = (size_t)model_hp_int(&m->cfg, SNR_TOWER_HIDDEN);
    return total + (size_t)T * (s->D[L - 1] * th + th + th + 1);
}

/* The matrix products of a step: every W (log α tensors are not products). */
static uint64_t snr_step_flops(const model_t *m, int B) {
    uint64_t flops = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const tensor_t *t = &m->tensors[i];
        if (t->init != INIT_WEIGHT) continue;
        uint64_t product = 2 * (uint64_t)B * t->rows * t->cols;
        flops += (t->rows == m->cfg.input_dim ? 2 : 3) * product;
    }
    return flops;
}

const model_ops_t model_snr_trans_ops = {
    .name = "snr_trans",
    .summary = "SNR-Trans: layers of sub-networks joined by transformations W_ij gated by "
               "hard-concrete z_ij, L0 penalty (Ma et al. 2019)",
    .hp = snr_trans_hp,
    .n_hp = SNR_N_HP,
    .sizes = snr_trans_sizes,
    .build = snr_trans_build,
    .forward = snr_forward,
    .backward = snr_backward,
    .penalty = snr_penalty,
    .init_custom = snr_init_custom,
    .step_flops = snr_step_flops,
    .routes = snr_routes,
    .serving_params = snr_serving_params,
    .constrain = snr_constrain,
};

const model_ops_t model_snr_aver_ops = {
    .name = "snr_aver",
    .summary = "SNR-Aver: one-layer sub-networks joined by hard-concrete weighted sums "
               "sum_j z_ij u_j, L0 penalty (Ma et al. 2019)",
    .hp = snr_aver_hp,
    .n_hp = SNR_N_HP,
    .sizes = snr_aver_sizes,
    .build = snr_aver_build,
    .forward = snr_forward,
    .backward = snr_backward,
    .penalty = snr_penalty,
    .init_custom = snr_init_custom,
    .step_flops = snr_step_flops,
    .routes = snr_routes,
    .serving_params = snr_serving_params,
    .constrain = snr_constrain,
};
