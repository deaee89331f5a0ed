/* mtnas.c -- MTNAS supernet (Chen et al., WWW'21 Companion §3.1;
 * mtl-models.md §13).  Shapes (B rows, W0 root width, W sub-network width,
 * H sub-networks per layer, L layers):
 *
 *   root      r = relu(x · Wr + br)                       [B, W0]
 *   layer 1   s¹_j = relu(r · W¹_j + b¹_j)                [B, W] each, side by side [B, H·W]
 *   block     route k = (V, q):  P = the previous layer's outputs [B, H·W]
 *               gate = softmax, |V| ≥ 2:  g = softmax(q̂ · G^{b,V,q})   [B, |V|]  (no bias)
 *                                         y = Σ_{i∈V} g_i · P_i         [B, W]
 *               gate = mean:              y = (1/|V|) Σ_{i∈V} P_i
 *               |V| = 1:                  y = P_i (a softmax over one value is 1)
 *             q̂ = P_q [B, W], or the root r [B, W0] (query_set prev+root, or query = root)
 *   layer l   s^l_j = relu(y_{l,j} · W^l_j + b^l_j)       l = 2..L, y from block (l, j)
 *   task t    pred_t = tower_t(y_t)                       y from task block t
 *
 * Every route has a gate of its own, G^{b,V,q} [d_q, |V|] ("<block>.g<mask>.q<q>.W",
 * q "r" for the root); a route with one value has none.  The architecture
 * logits of block b are "arch.<block>" [1, |V|·|Q|] (TENSOR_ARCH, drawn
 * N(0, 1e-3²) as ProxylessNAS by init_custom).
 *
 * Which route a pass takes: MODEL_EVAL the derived route (argmax of the
 * logits); MODEL_TRAIN the route set by mtnas_set_route (the search sets the
 * one it sampled from m->rng), or the derived one when none is set.  So the
 * sampling lives in the search loop, and a plain trainer or the gradient
 * checker runs a fixed network.  Sub-networks no used block reads are
 * skipped (their outputs are never read, their gradients stay zero). */
#include "models/mtnas.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "models/blocks.h"
#include "nn/layers.h"

enum {
    MT_ROOT,
    MT_WIDTH,
    MT_LEVELS,
    MT_TOWER,
    MT_SUBNETS,
    MT_QUERY_SET,
    MT_GATE,
    MT_QUERY,
    MT_INIT,
    MT_SEARCH,
    MT_ARCH_LR,
    MT_DECAY,
    MT_SAMPLES,
    MT_WARMUP,
    MT_RETRAIN,
    MT_N_HP
};
static const model_hp_t mtnas_hp[MT_N_HP] = {
    [MT_LEVELS] = {"levels", HP_INT, 1, MTNAS_MAX_LEVELS, 2, "layers of sub-networks L"},
    [MT_SUBNETS] = {"subnets", HP_INT, 1, MTNAS_MAX_SUBNETS, 4,
                    "sub-networks per layer H (2^H - 1 value subsets per block)"},
    [MT_ROOT] = {"bottom_hidden", HP_INT, 1, 1e6, 64, "width of the root FC layer"},
    [MT_WIDTH] = {"expert_hidden", HP_INT, 1, 1e6, 64, "width of each sub-network"},
    [MT_TOWER] = {"tower_hidden", HP_INT, 1, 1e6, 8, "hidden units of each task tower"},
    [MT_QUERY_SET] = {"query_set", HP_WORD, 0, 1, 0,
                      "query sources of a block: prev (the previous layer's sub-networks, |Q| = H) "
                      "or prev+root (and the root feature, |Q| = H + 1)",
                      "prev prev+root"},
    [MT_GATE] = {"gate", HP_WORD, 0, 1, 0,
                 "a route's aggregation: softmax (a gate per route) or mean (Table 5 Baseline)",
                 "softmax mean"},
    [MT_QUERY] = {"query", HP_WORD, 0, 1, 0,
                  "query source: search (a choice of every block) or root (Table 5 w/o QS)",
                  "search root"},
    [MT_INIT] = MODEL_HP_INIT,
    [MT_SEARCH] = {"search", HP_WORD, 0, 1, 1,
                   "on: the trainer runs the REINFORCE route search; off: it trains the "
                   "derived route of the initial logits",
                   "off on"},
    [MT_ARCH_LR] = {"arch_lr", HP_NUM, 1e-6, 10, 0.01, "Adam learning rate of the route logits"},
    [MT_DECAY] = {"baseline_decay", HP_NUM, 0, 0.999, 0.9,
                  "REINFORCE baseline: b <- decay b + (1 - decay) mean reward"},
    [MT_SAMPLES] = {"samples", HP_INT, 1, 64, 1, "routes sampled per architecture update"},
    [MT_WARMUP] = {"warmup", HP_INT, 0, 1e9, 0,
                   "first steps: weights only, on uniformly random routes"},
    [MT_RETRAIN] = {"retrain", HP_WORD, 0, 1, 0,
                    "after the search: off (evaluate the derived route with the supernet "
                    "weights) or on (retrain it from the initial weights, steps more steps)",
                    "off on"},
};

#define MT_MAX_SUBSETS ((1 << MTNAS_MAX_SUBNETS) - 1)
#define MT_MAX_Q       (MTNAS_MAX_SUBNETS + 1)

typedef struct {
    int L, H, W0, W, th, T, nq, n_blocks;
    bool mean, query_root, with_root;
    dense_ref_t root;
    dense_ref_t sub[MTNAS_MAX_LEVELS][MTNAS_MAX_SUBNETS];
    tower_t tower[MODEL_MAX_TASKS];
    int choices[MTNAS_MAX_BLOCKS];
    int arch[MTNAS_MAX_BLOCKS];                                   /* tensor of block b's logits */
    dense_ref_t gate[MTNAS_MAX_BLOCKS][MT_MAX_SUBSETS][MT_MAX_Q]; /* W = -1: none */
    real *r, *dr;                                                 /* [B, W0] */
    real *layer[MTNAS_MAX_LEVELS];                                /* [B, H·W] */
    real *dlayer[MTNAS_MAX_LEVELS];
    real *y[MTNAS_MAX_BLOCKS], *dy[MTNAS_MAX_BLOCKS]; /* [B, W] block outputs */
    real *p[MTNAS_MAX_BLOCKS];                        /* [B, H] gate weights */
    real *logits, *dp, *dlogits;                      /* [B, H] scratch */
    int route[MTNAS_MAX_BLOCKS];                      /* set by mtnas_set_route */
    bool route_set;
    int last[MTNAS_MAX_BLOCKS]; /* the route of the last pass */
    bool used[MTNAS_MAX_LEVELS][MTNAS_MAX_SUBNETS];
} mt_impl_t;

typedef struct {
    int L, H, W0, W, th, T, d, nq, n_blocks;
    bool mean, query_root, with_root;
} mt_shape_t;

static mt_shape_t shape_of(const model_config_t *c) {
    mt_shape_t s;
    s.L = model_hp_int(c, MT_LEVELS);
    s.H = model_hp_int(c, MT_SUBNETS);
    s.W0 = model_hp_int(c, MT_ROOT);
    s.W = model_hp_int(c, MT_WIDTH);
    s.th = model_hp_int(c, MT_TOWER);
    s.T = c->tasks;
    s.d = c->input_dim;
    s.mean = model_hp_int(c, MT_GATE) == 1;
    s.query_root = model_hp_int(c, MT_QUERY) == 1;
    s.with_root = model_hp_int(c, MT_QUERY_SET) == 1;
    s.nq = s.mean || s.query_root ? 1 : s.H + s.with_root;
    s.n_blocks = (s.L - 1) * s.H + s.T;
    return s;
}

/* Query source q's width (q = H or query = root: the root). */
static int query_dim(const mt_shape_t *s, int q) {
    return s->query_root || q == s->H ? s->W0 : s->W;
}
/* The query source index of choice q (H: the root). */
static int query_source(const mt_shape_t *s, int q) {
    return s->mean ? -1 : s->query_root ? s->H : q;
}

static int popcount(unsigned v) {
    int n = 0;
    for (; v; v &= v - 1)
        n++;
    return n;
}

/* Walks every tensor build() declares, in declaration order, summing
 * parameters (weights, arch) and counting tensors. */
static int count_params(const mt_shape_t *s, size_t *weights, size_t *arch, int *tensors,
                        err_t *err) {
    size_t w = 0, a = 0, t;
    int n = 0;
    const size_t subsets = ((size_t)1 << s->H) - 1;
    /* root, layer 1, layers 2..L */
    if (block_count(&t, s->d, s->W0, 1) || block_count(&t, s->W0, s->W, s->H) ||
        block_count(&t, s->W, s->W, s->H) || block_count(&t, s->H, s->W, 1) ||
        block_count(&t, s->W0 > s->W ? s->W0 : s->W, s->H, 1))
        return err_set(err, ERR_USAGE,
                       "mtnas: %d inputs, root %d, %d sub-networks x %d units overflows", s->d,
                       s->W0, s->H, s->W);
    w = (size_t)s->d * s->W0 + s->W0;
    w += (size_t)s->H * ((size_t)s->W0 * s->W + s->W);
    w += (size_t)(s->L - 1) * s->H * ((size_t)s->W * s->W + s->W);
    n = 2 + 2 * s->H * s->L;
    for (int b = 0; b < s->n_blocks; b++)
        for (unsigned mask = 1; mask <= subsets; mask++) {
            if (s->mean || popcount(mask) < 2) continue;
            for (int q = 0; q < s->nq; q++) {
                w += (size_t)query_dim(s, query_source(s, q)) * popcount(mask);
                n++;
            }
        }
    size_t tower, tw = 0;
    size_tally_t scratch = {0};
    if (tower_sizes(s->W, s->th, 1, &tower, &scratch, err)) return -1;
    if (size_mul(&tw, tower, s->T) || size_add(&w, w, tw))
        return err_set(err, ERR_USAGE, "mtnas: the parameter count overflows");
    n += 4 * s->T;
    a = (size_t)s->n_blocks * subsets * s->nq;
    n += s->n_blocks;
    *weights = w;
    *arch = a;
    *tensors = n;
    return 0;
}

/* Query sources a block's routes may read: H sub-networks (and the root),
 * the root alone (query = root), none (gate = mean). */
static int query_sources(const mt_shape_t *s) {
    return s->mean ? 0 : s->query_root ? 1 : s->H + s->with_root;
}
/* Rows ops->routes writes per block: 'value' and 'prob' per sub-network of
 * the previous layer, 'query' and 'query_prob' per query source, 'entropy'
 * and 'top_prob'. */
static int route_rows(const mt_shape_t *s) {
    return 2 * s->H + 2 * query_sources(s) + 2;
}

static int mtnas_sizes(const model_config_t *c, model_sizes_t *out, err_t *err) {
    const mt_shape_t s = shape_of(c);
    const int B = c->max_batch;
    size_t weights = 0, arch = 0;
    int tensors = 0;
    if (count_params(&s, &weights, &arch, &tensors, err)) return -1;
    size_t n;
    if (block_count(&n, B, s.H, s.W) || block_count(&n, B, s.W0, 1))
        return err_set(err, ERR_USAGE, "mtnas: max_batch %d x %d sub-networks x %d units overflows",
                       B, s.H, s.W);
    size_tally_blocks(&out->act, 2, (size_t)B * s.W0, sizeof(real));                    /* r, dr */
    size_tally_blocks(&out->act, 2 * (size_t)s.L, (size_t)B * s.H * s.W, sizeof(real)); /* layers */
    size_tally_blocks(&out->act, 2 * (size_t)s.n_blocks, (size_t)B * s.W, sizeof(real)); /* y, dy */
    size_tally_blocks(&out->act, (size_t)s.n_blocks + 3, (size_t)B * s.H,
                      sizeof(real)); /* p, scratch */
    size_tally_t tower_act = {0};
    size_t tower;
    if (tower_sizes(s.W, s.th, B, &tower, &tower_act, err)) return -1;
    for (int k = 0; k < s.T; k++)
        size_tally_add(&out->act, &tower_act);
    if (size_add(&out->n_params, weights, arch))
        return err_set(err, ERR_USAGE, "mtnas: the parameter count overflows");
    out->n_weights = weights;
    out->n_tensors = tensors;
    out->state_bytes = sizeof(mt_impl_t);
    out->n_routes = s.n_blocks * route_rows(&s);
    return 0;
}

static void block_label(const mt_impl_t *s, int b, char *out, size_t n) {
    if (b < (s->L - 1) * s->H)
        snprintf(out, n, "l%d.s%d", 2 + b / s->H, 1 + b % s->H);
    else
        snprintf(out, n, "t%d", 1 + b - (s->L - 1) * s->H);
}

static int mtnas_build(model_t *m, err_t *err) {
    const model_config_t *c = &m->cfg;
    const mt_shape_t sh = shape_of(c);
    mt_impl_t *s = model_work(m, sizeof *s, err);
    if (!s) return -1;
    m->impl = s;
    s->L = sh.L, s->H = sh.H, s->W0 = sh.W0, s->W = sh.W, s->th = sh.th, s->T = sh.T;
    s->nq = sh.nq, s->n_blocks = sh.n_blocks;
    s->mean = sh.mean, s->query_root = sh.query_root, s->with_root = sh.with_root;
    char name[48], label[16];
    if (dense_declare(m, &s->root, "root", sh.d, sh.W0, true, err)) return -1;
    for (int l = 0; l < sh.L; l++)
        for (int j = 0; j < sh.H; j++) {
            snprintf(name, sizeof name, "l%d.s%d", l + 1, j + 1);
            if (dense_declare(m, &s->sub[l][j], name, l == 0 ? sh.W0 : sh.W, sh.W, true, err))
                return -1;
        }
    const unsigned subsets = (1u << sh.H) - 1;
    for (int b = 0; b < sh.n_blocks; b++) {
        block_label(s, b, label, sizeof label);
        s->choices[b] = (int)subsets * sh.nq;
        for (unsigned mask = 1; mask <= subsets; mask++)
            for (int q = 0; q < sh.nq; q++) {
                dense_ref_t *g = &s->gate[b][mask - 1][q];
                g->W = g->b = -1;
                if (sh.mean || popcount(mask) < 2) continue;
                const int src = query_source(&sh, q);
                char qn[4];
                if (src == sh.H)
                    snprintf(qn, sizeof qn, "r");
                else
                    snprintf(qn, sizeof qn, "%d", src + 1);
                snprintf(name, sizeof name, "%s.g%u.q%s", label, mask, qn);
                if (dense_declare(m, g, name, query_dim(&sh, src), popcount(mask), false, err))
                    return -1;
            }
    }
    for (int k = 0; k < sh.T; k++) {
        snprintf(name, sizeof name, "tower%d", k + 1);
        if (tower_build(m, &s->tower[k], name, sh.W, sh.th, err)) return -1;
    }
    for (int b = 0; b < sh.n_blocks; b++) {
        block_label(s, b, label, sizeof label);
        snprintf(name, sizeof name, "arch.%s", label);
        if ((s->arch[b] = model_declare(m, name, 1, s->choices[b], INIT_CUSTOM, TENSOR_ARCH)) < 0)
            return err_set(err, ERR_FAIL, "out of memory declaring tensor %s", name);
    }
    if (!(s->r = model_act(m, sh.W0, err)) || !(s->dr = model_act_grad(m, sh.W0, err))) return -1;
    for (int l = 0; l < sh.L; l++)
        if (!(s->layer[l] = model_act(m, sh.H * sh.W, err)) ||
            !(s->dlayer[l] = model_act_grad(m, sh.H * sh.W, err)))
            return -1;
    for (int b = 0; b < sh.n_blocks; b++)
        if (!(s->y[b] = model_act(m, sh.W, err)) || !(s->dy[b] = model_act_grad(m, sh.W, err)) ||
            !(s->p[b] = model_act(m, sh.H, err)))
            return -1;
    if (!(s->logits = model_act(m, sh.H, err)) || !(s->dp = model_act(m, sh.H, err)) ||
        !(s->dlogits = model_act(m, sh.H, err)))
        return -1;
    return 0;
}

static void mtnas_init_custom(model_t *m, rng_t *rng) {
    const mt_impl_t *s = m->impl;
    for (int b = 0; b < s->n_blocks; b++) { /* ProxylessNAS: N(0, 1e-3²) */
        real *a = model_param(m, s->arch[b]);
        for (int i = 0; i < s->choices[b]; i++)
            a[i] = (real)(1e-3 * rng_normal(rng));
    }
}

/* ---- routes ---- */

static void argmax_route(const model_t *m, int *route) {
    const mt_impl_t *s = m->impl;
    for (int b = 0; b < s->n_blocks; b++) {
        const real *a = model_param(m, s->arch[b]);
        int best = 0;
        for (int i = 1; i < s->choices[b]; i++)
            if (a[i] > a[best]) best = i;
        route[b] = best;
    }
}

/* The previous layer (0-based) that block b reads. */
static int block_prev(const mt_impl_t *s, int b) {
    return b < (s->L - 1) * s->H ? b / s->H : s->L - 1;
}

static void decode(const mt_impl_t *s, int k, unsigned *mask, int *q) {
    *mask = (unsigned)(k / s->nq) + 1;
    *q = k % s->nq;
}

/* used[l][j]: whether sub-network j of layer l (0-based) feeds the route. */
static void mark_used(const mt_impl_t *s, const int *route, bool used[][MTNAS_MAX_SUBNETS]) {
    memset(used, 0, sizeof(bool) * MTNAS_MAX_LEVELS * MTNAS_MAX_SUBNETS);
    for (int b = s->n_blocks - 1; b >= 0; b--) {
        const bool task = b >= (s->L - 1) * s->H;
        if (!task && !used[1 + b / s->H][b % s->H]) continue; /* its sub-network is unused */
        unsigned mask;
        int q;
        decode(s, route[b], &mask, &q);
        const int prev = block_prev(s, b);
        for (int i = 0; i < s->H; i++)
            if (mask >> i & 1) used[prev][i] = true;
        if (!s->mean && !s->query_root && q < s->H && popcount(mask) >= 2) used[prev][q] = true;
    }
}

/* ---- passes ---- */

static void query_of(const mt_impl_t *s, int prev, int q, const real **in, real **din, int *ld,
                     int *dim) {
    if (s->query_root || q == s->H) {
        *in = s->r, *din = s->dr, *ld = s->W0, *dim = s->W0;
    } else {
        *in = s->layer[prev] + (size_t)q * s->W, *din = s->dlayer[prev] + (size_t)q * s->W;
        *ld = s->H * s->W, *dim = s->W;
    }
}

/* y[B, W] of block b on route k. */
static void block_forward(const model_t *m, mt_impl_t *s, int b, int k, int B) {
    unsigned mask;
    int q, idx[MTNAS_MAX_SUBNETS], n = 0;
    decode(s, k, &mask, &q);
    for (int i = 0; i < s->H; i++)
        if (mask >> i & 1) idx[n++] = i;
    const int prev = block_prev(s, b), W = s->W, ld = s->H * W;
    const real *P = s->layer[prev];
    real *y = s->y[b], *p = s->p[b];
    if (s->mean || n == 1) {
        for (int r = 0; r < B; r++)
            for (int i = 0; i < n; i++)
                p[(size_t)r * n + i] = (real)1.0 / n;
    } else {
        const real *qin;
        real *unused;
        int ldq, dq;
        query_of(s, prev, q, &qin, &unused, &ldq, &dq);
        dense_ref_forward(m, &s->gate[b][mask - 1][q], qin, ldq, B, s->logits, n); /* [B, n] */
        softmax_forward(p, s->logits, B, n);
    }
    for (int r = 0; r < B; r++) { /* y[r] = Σ_i p[r, i] · P[r, idx_i] */
        real *yr = y + (size_t)r * W;
        for (int c = 0; c < W; c++)
            yr[c] = 0;
        for (int i = 0; i < n; i++) {
            const real g = p[(size_t)r * n + i], *v = P + (size_t)r * ld + (size_t)idx[i] * W;
            for (int c = 0; c < W; c++)
                yr[c] += g * v[c];
        }
    }
}

static void block_backward(model_t *m, mt_impl_t *s, int b, int k, int B) {
    unsigned mask;
    int q, idx[MTNAS_MAX_SUBNETS], n = 0;
    decode(s, k, &mask, &q);
    for (int i = 0; i < s->H; i++)
        if (mask >> i & 1) idx[n++] = i;
    const int prev = block_prev(s, b), W = s->W, ld = s->H * W;
    const real *P = s->layer[prev], *p = s->p[b], *dy = s->dy[b];
    real *dP = s->dlayer[prev];
    const bool gated = !s->mean && n > 1;
    for (int r = 0; r < B; r++) { /* dP_i += p_i dy;  dp_i = <dy, P_i> */
        const real *dyr = dy + (size_t)r * W;
        for (int i = 0; i < n; i++) {
            const size_t at = (size_t)r * ld + (size_t)idx[i] * W;
            const real g = p[(size_t)r * n + i];
            double dot = 0;
            for (int c = 0; c < W; c++) {
                dP[at + c] += g * dyr[c];
                dot += (double)dyr[c] * P[at + c];
            }
            if (gated) s->dp[(size_t)r * n + i] = (real)dot;
        }
    }
    if (!gated) return;
    const real *qin;
    real *dq_in;
    int ldq, dq;
    query_of(s, prev, q, &qin, &dq_in, &ldq, &dq);
    memset(s->dlogits, 0, sizeof(real) * (size_t)B * n);
    softmax_backward(s->dlogits, s->dp, p, B, n);
    dense_ref_backward(m, &s->gate[b][mask - 1][q], qin, ldq, B, s->dlogits, n, dq_in);
}

static void mtnas_forward(model_t *m, const real *x, int B, real *pred, model_mode_t mode) {
    mt_impl_t *s = m->impl;
    if (mode == MODEL_TRAIN && s->route_set)
        memcpy(s->last, s->route, sizeof(int) * s->n_blocks);
    else
        argmax_route(m, s->last);
    mark_used(s, s->last, s->used);
    const int W = s->W, ld = s->H * W;
    dense_ref_relu_forward(m, &s->root, x, m->cfg.input_dim, B, s->r, s->W0); /* r [B, W0] */
    for (int j = 0; j < s->H; j++) /* s¹_j = relu(r · W¹_j + b¹_j) */
        if (s->used[0][j])
            dense_ref_relu_forward(m, &s->sub[0][j], s->r, s->W0, B, s->layer[0] + (size_t)j * W,
                                   ld);
    for (int b = 0; b < (s->L - 1) * s->H; b++) {
        const int l = 1 + b / s->H, j = b % s->H;
        if (!s->used[l][j]) continue;
        block_forward(m, s, b, s->last[b], B);
        dense_ref_relu_forward(m, &s->sub[l][j], s->y[b], W, B, s->layer[l] + (size_t)j * W, ld);
    }
    for (int t = 0; t < s->T; t++) {
        const int b = (s->L - 1) * s->H + t;
        block_forward(m, s, b, s->last[b], B);
        tower_forward(m, &s->tower[t], s->y[b], W, B, pred, s->T, t);
    }
}

static void mtnas_backward(model_t *m, const real *x, int B, const real *dpred) {
    mt_impl_t *s = m->impl;
    const int W = s->W, ld = s->H * W;
    for (int t = 0; t < s->T; t++) {
        const int b = (s->L - 1) * s->H + t;
        tower_backward(m, &s->tower[t], s->y[b], W, B, dpred, s->T, t, s->dy[b]);
        block_backward(m, s, b, s->last[b], B);
    }
    for (int b = (s->L - 1) * s->H - 1; b >= 0; b--) {
        const int l = 1 + b / s->H, j = b % s->H;
        if (!s->used[l][j]) continue;
        dense_ref_relu_backward(m, &s->sub[l][j], s->y[b], W, B, s->layer[l] + (size_t)j * W,
                                s->dlayer[l] + (size_t)j * W, ld, s->dy[b]);
        block_backward(m, s, b, s->last[b], B);
    }
    for (int j = 0; j < s->H; j++)
        if (s->used[0][j])
            dense_ref_relu_backward(m, &s->sub[0][j], s->r, s->W0, B, s->layer[0] + (size_t)j * W,
                                    s->dlayer[0] + (size_t)j * W, ld, s->dr);
    dense_ref_relu_backward(m, &s->root, x, m->cfg.input_dim, B, s->r, s->dr, s->W0, NULL);
}

/* grads[arch] += −reward · ∇α log p(u), u the last pass's route: the
 * gradient of −reward·log p(u), which the architecture optimiser minimises. */
static void mtnas_arch_gradient(model_t *m, double reward) {
    const mt_impl_t *s = m->impl;
    for (int b = 0; b < s->n_blocks; b++) {
        const real *a = model_param(m, s->arch[b]);
        real *g = model_grad(m, s->arch[b]);
        const int n = s->choices[b];
        double mx = a[0], sum = 0;
        for (int i = 1; i < n; i++)
            if (a[i] > mx) mx = a[i];
        for (int i = 0; i < n; i++)
            sum += exp(a[i] - mx);
        for (int i = 0; i < n; i++)
            g[i] += (real)(-reward * ((i == s->last[b]) - exp(a[i] - mx) / sum));
    }
}

/* ---- mtnas.h ---- */

bool mtnas_is(const model_t *m) {
    return m->ops == &model_mtnas_ops;
}

int mtnas_choices(const model_t *m, const int **choices) {
    const mt_impl_t *s = m->impl;
    *choices = s->choices;
    return s->n_blocks;
}

void mtnas_block_name(const model_t *m, int b, char *out, size_t n) {
    block_label(m->impl, b, out, n);
}

void mtnas_route_decode(const model_t *m, int b, int k, unsigned *mask, int *query) {
    const mt_impl_t *s = m->impl;
    int q;
    (void)b;
    decode(s, k, mask, &q);
    *query = s->mean || popcount(*mask) < 2 ? -1 : s->query_root ? s->H : q;
}

void mtnas_block_position(const model_t *m, int b, int *layer, int *index) {
    const mt_impl_t *s = m->impl;
    const int sub = (s->L - 1) * s->H;
    *layer = b < sub ? 2 + b / s->H : s->L + 1;
    *index = b < sub ? b % s->H : b - sub;
}

void mtnas_set_route(model_t *m, const int *route) {
    mt_impl_t *s = m->impl;
    s->route_set = route != NULL;
    if (route) memcpy(s->route, route, sizeof(int) * s->n_blocks);
}

void mtnas_derived_route(const model_t *m, int *route) {
    argmax_route(m, route);
}

const int *mtnas_last_route(const model_t *m) {
    const mt_impl_t *s = m->impl;
    return s->last;
}

/* Calls mark(ctx, i) for every tensor i a pass on `route` reads. */
static void visit_used(const model_t *m, const int *route, void (*mark)(void *ctx, int tensor),
                       void *ctx) {
    const mt_impl_t *s = m->impl;
    bool sub[MTNAS_MAX_LEVELS][MTNAS_MAX_SUBNETS];
    mark_used(s, route, sub);
    mark(ctx, s->root.W);
    mark(ctx, s->root.b);
    for (int l = 0; l < s->L; l++)
        for (int j = 0; j < s->H; j++)
            if (sub[l][j]) {
                mark(ctx, s->sub[l][j].W);
                mark(ctx, s->sub[l][j].b);
            }
    for (int b = 0; b < s->n_blocks; b++) {
        const bool task = b >= (s->L - 1) * s->H;
        if (!task && !sub[1 + b / s->H][b % s->H]) continue;
        unsigned mask;
        int q;
        decode(s, route[b], &mask, &q);
        const dense_ref_t *g = &s->gate[b][mask - 1][q];
        if (g->W >= 0) mark(ctx, g->W);
    }
    for (int t = 0; t < s->T; t++) {
        const mlp_t *p = &s->tower[t].mlp;
        for (int l = 0; l < p->n_layers; l++) {
            mark(ctx, p->layer[l].W);
            if (p->layer[l].b >= 0) mark(ctx, p->layer[l].b);
        }
    }
}

static void mark_flag(void *ctx, int tensor) {
    ((bool *)ctx)[tensor] = true;
}

void mtnas_tensors_used(const model_t *m, const int *route, bool *used) {
    memset(used, 0, sizeof(bool) * m->n_tensors);
    visit_used(m, route, mark_flag, used);
}

typedef struct {
    const model_t *m;
    size_t n;
} param_sum_t;

static void add_params(void *ctx, int tensor) {
    param_sum_t *c = ctx;
    c->n += (size_t)c->m->tensors[tensor].rows * c->m->tensors[tensor].cols;
}

size_t mtnas_route_params(const model_t *m, const int *route) {
    param_sum_t c = {m, 0};
    visit_used(m, route, add_params, &c);
    return c.n;
}

/* ---- recorded routes (model.h ops->routes; sql/migrations/004, 008) ----
 *
 * Per block, in routing layer l (2..L for sub-network blocks, L + 1 for task
 * blocks; dst the sub-network or task, 0-based; src a sub-network of layer
 * l − 1, 0-based, or H for the root feature):
 *   value       1 when src is in the derived route's value subset, else 0;
 *   query       1 when src is the derived route's query source (a route with
 *               one value, or gate = mean, reads no query: all 0);
 *   prob        P(src ∈ V) under the block's current distribution p = softmax(α);
 *   query_prob  P(query = src) under p (only with a query choice);
 *   entropy     H(p) in nats (src = -1);
 *   top_prob    max_k p_k, the probability of the derived route (src = -1). */
static int mtnas_routes(const model_t *m, model_route_t *out) {
    const mt_impl_t *s = m->impl;
    const mt_shape_t sh = shape_of(&m->cfg);
    const int per = route_rows(&sh), nqs = query_sources(&sh);
    if (!out) return s->n_blocks * per;
    int route[MTNAS_MAX_BLOCKS];
    argmax_route(m, route);
    int n = 0;
    for (int b = 0; b < s->n_blocks; b++) {
        int layer, dst;
        mtnas_block_position(m, b, &layer, &dst);
        const real *a = model_param(m, s->arch[b]);
        const int nc = s->choices[b];
        double mx = a[0], sum = 0, h = 0, top = 0;
        double pin[MTNAS_MAX_SUBNETS] = {0}, pq[MT_MAX_Q] = {0};
        for (int i = 1; i < nc; i++)
            if (a[i] > mx) mx = a[i];
        for (int i = 0; i < nc; i++)
            sum += exp(a[i] - mx);
        for (int k = 0; k < nc; k++) {
            const double p = exp(a[k] - mx) / sum;
            unsigned mask;
            int q;
            decode(s, k, &mask, &q);
            for (int i = 0; i < s->H; i++)
                if (mask >> i & 1) pin[i] += p;
            if (!s->mean && popcount(mask) >= 2) pq[s->query_root ? 0 : q] += p;
            if (p > 0) h -= p * log(p);
            if (p > top) top = p;
        }
        unsigned mask;
        int q;
        decode(s, route[b], &mask, &q);
        const bool reads_query = !s->mean && popcount(mask) >= 2;
        for (int i = 0; i < s->H; i++) {
            out[n++] = (model_route_t){layer, i, dst, "value", (double)(mask >> i & 1)};
            out[n++] = (model_route_t){layer, i, dst, "prob", pin[i]};
        }
        for (int j = 0; j < nqs; j++) {
            const int src = s->query_root ? s->H : j;
            const bool chosen = reads_query && (s->query_root || q == j);
            out[n++] = (model_route_t){layer, src, dst, "query", chosen ? 1.0 : 0.0};
            out[n++] = (model_route_t){layer, src, dst, "query_prob", pq[j]};
        }
        out[n++] = (model_route_t){layer, -1, dst, "entropy", h};
        out[n++] = (model_route_t){layer, -1, dst, "top_prob", top};
    }
    return n;
}

/* The derived route's parameter count (P5: not the supernet's). */
static size_t mtnas_serving_params(const model_t *m) {
    int route[MTNAS_MAX_BLOCKS];
    argmax_route(m, route);
    return mtnas_route_params(m, route);
}

typedef struct {
    const model_t *m;
    int B;
    uint64_t flops;
} flop_sum_t;

static void add_flops(void *ctx, int tensor) {
    flop_sum_t *c = ctx;
    const tensor_t *t = &c->m->tensors[tensor];
    if (t->rows < 2) return; /* biases */
    const mt_impl_t *s = c->m->impl;
    const uint64_t product = 2 * (uint64_t)c->B * t->rows * t->cols;
    c->flops += (tensor == s->root.W ? 2 : 3) * product; /* the root reads the data */
}

/* The FLOPs of one plain training step: the products of the derived route
 * (the route train_step takes), not of the whole supernet. */
static uint64_t mtnas_step_flops(const model_t *m, int B) {
    int route[MTNAS_MAX_BLOCKS];
    argmax_route(m, route);
    flop_sum_t c = {m, B, 0};
    visit_used(m, route, add_flops, &c);
    return c.flops;
}

const model_ops_t model_mtnas_ops = {
    .name = "mtnas",
    .summary = "MTNAS supernet: root FC, levels x subnets sub-networks, a route (value subset x "
               "query) per block, searched by REINFORCE",
    .hp = mtnas_hp,
    .n_hp = MT_N_HP,
    .sizes = mtnas_sizes,
    .build = mtnas_build,
    .forward = mtnas_forward,
    .backward = mtnas_backward,
    .arch_gradient = mtnas_arch_gradient,
    .init_custom = mtnas_init_custom,
    .step_flops = mtnas_step_flops,
    .routes = mtnas_routes,
    .serving_params = mtnas_serving_params,
};
