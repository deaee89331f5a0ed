/* test_mtnas.c -- REINFORCE apart from any model (train/reinforce.h), the
 * mtnas family (models/mtnas.h) and its route search (train/search.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/loss.h"
#include "data/synth.h"
#include "gradcheck.h"
#include "models/model.h"
#include "testutil.h"
#include "models/mtnas.h"
#include "train/reinforce.h"
#include "train/search.h"
#include "train/train.h"

/* ---- REINFORCE ---- */

static reinforce_space_t space_of(int n, const int *choices) {
    reinforce_space_t s;
    err_t err = {0};
    ck_assert_msg(reinforce_space_init(&s, n, choices, &err) == 0, "%s", err.msg);
    return s;
}

/* The score ∇ log p(u) against central differences of log p(u), and the
 * probabilities and entropy against their definitions. */
START_TEST(test_score_gradient) {
    const int choices[] = {4, 1, 15, 2};
    reinforce_space_t s = space_of(4, choices);
    ck_assert_uint_eq(s.n_logits, 22);
    real alpha[22], grad[22] = {0};
    rng_t r;
    rng_seed(&r, 5, 0);
    for (int i = 0; i < 22; i++)
        alpha[i] = rng_normal(&r);
    const int route[] = {2, 0, 11, 1};
    reinforce_score_grad(&s, alpha, route, 0.7, grad);
    for (int i = 0; i < 22; i++) {
        real keep = alpha[i];
        alpha[i] = keep + 1e-6;
        double up = reinforce_log_prob(&s, alpha, route);
        alpha[i] = keep - 1e-6;
        double down = reinforce_log_prob(&s, alpha, route);
        alpha[i] = keep;
        ck_assert_msg(fabs(grad[i] - 0.7 * (up - down) / 2e-6) < 1e-8, "logit %d: %g vs %g", i,
                      grad[i], 0.7 * (up - down) / 2e-6);
    }
    double p[15], h = 0, sum = 0;
    reinforce_probs(&s, alpha, 2, p);
    for (int i = 0; i < 15; i++) {
        sum += p[i];
        h -= p[i] * log(p[i]);
    }
    ck_assert(fabs(sum - 1) < 1e-12);
    ck_assert(fabs(h - reinforce_entropy(&s, alpha, 2)) < 1e-12);
    ck_assert(fabs(reinforce_entropy(&s, alpha, 1)) < 1e-15); /* one choice */
    reinforce_space_free(&s);
}
END_TEST

/* Sampling follows p: 40000 draws of a 3-way block land within 4 standard
 * errors of each probability; argmax takes the largest logit. */
START_TEST(test_sampling_frequencies) {
    const int choices[] = {3};
    reinforce_space_t s = space_of(1, choices);
    real alpha[3] = {0.0, log(3.0), log(6.0)}; /* p = 0.1, 0.3, 0.6 */
    rng_t r;
    rng_seed(&r, 9, 0);
    long count[3] = {0};
    const int n = 40000;
    for (int i = 0; i < n; i++) {
        int u;
        reinforce_sample(&s, alpha, &r, &u);
        count[u]++;
    }
    const double p[3] = {0.1, 0.3, 0.6};
    for (int i = 0; i < 3; i++) {
        double se = sqrt(p[i] * (1 - p[i]) / n);
        ck_assert_msg(fabs((double)count[i] / n - p[i]) < 4 * se, "choice %d: %ld of %d", i,
                      count[i], n);
    }
    int u;
    reinforce_argmax(&s, alpha, &u);
    ck_assert_int_eq(u, 2);
    reinforce_space_free(&s);
}
END_TEST

/* The baseline: the first mean, then decay·b + (1 − decay)·mean. */
START_TEST(test_baseline) {
    const int choices[] = {2};
    reinforce_space_t s = space_of(1, choices);
    reinforce_config_t c;
    reinforce_config_default(&c);
    c.samples = 2;
    c.decay = 0.75;
    reinforce_t rl;
    err_t err = {0};
    ck_assert_int_eq(reinforce_init(&rl, &s, &c, &err), 0);
    const double r1[] = {1, 3}, r2[] = {10, 10};
    ck_assert(reinforce_baseline(&rl, r1) == 2);
    ck_assert(fabs(reinforce_baseline(&rl, r2) - (0.75 * 2 + 0.25 * 10)) < 1e-15);
    reinforce_free(&rl);
    c.decay = 1;
    ck_assert_int_eq(reinforce_init(&rl, &s, &c, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "baseline_decay"));
    c.decay = 0.5;
    c.samples = 0;
    ck_assert_int_eq(reinforce_init(&rl, &s, &c, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "samples"));
    reinforce_space_free(&s);
}
END_TEST

/* A bandit with a known optimum: three blocks of 5, 15 and 2 arms, the
 * reward Σ_b mean_b[u_b] + N(0, 0.5²) noise, arm means drawn in [0, 1] with
 * the best arm 0.3 above the next.  From zero logits, 600 updates (K = 1, 2
 * and 4 samples) put the argmax on every block's best arm with probability
 * > 0.9 there; and the derived route is the same bits for the same seed. */
START_TEST(test_bandit_converges) {
    const int choices[] = {5, 15, 2};
    const int best[] = {3, 9, 0};
    reinforce_space_t s = space_of(3, choices);
    double mean[3][15];
    rng_t r;
    rng_seed(&r, 17, 0);
    for (int b = 0; b < 3; b++)
        for (int i = 0; i < choices[b]; i++)
            mean[b][i] = i == best[b] ? 1.0 : 0.7 * rng_uniform(&r);
    const int K = 1 << _i;
    reinforce_config_t c;
    reinforce_config_default(&c);
    c.samples = K;
    c.lr = 0.05;
    real alpha[22] = {0}, again[22] = {0};
    for (int rep = 0; rep < 2; rep++) {
        real *a = rep ? again : alpha;
        reinforce_t rl;
        err_t err = {0};
        ck_assert_int_eq(reinforce_init(&rl, &s, &c, &err), 0);
        rng_t draw, noise;
        rng_seed(&draw, 3, 1);
        rng_seed(&noise, 3, 2);
        int routes[4 * 3];
        double rewards[4];
        for (int t = 0; t < 600; t++) {
            for (int j = 0; j < K; j++) {
                reinforce_sample(&s, a, &draw, routes + 3 * j);
                rewards[j] = 0.5 * rng_normal(&noise);
                for (int b = 0; b < 3; b++)
                    rewards[j] += mean[b][routes[3 * j + b]];
            }
            reinforce_update(&rl, a, routes, rewards);
        }
        reinforce_free(&rl);
    }
    ck_assert_mem_eq(alpha, again, sizeof alpha);
    int route[3];
    reinforce_argmax(&s, alpha, route);
    for (int b = 0; b < 3; b++) {
        double p[15];
        reinforce_probs(&s, alpha, b, p);
        ck_assert_msg(route[b] == best[b] && p[best[b]] > 0.9, "K %d block %d: argmax %d p %.3f", K,
                      b, route[b], p[best[b]]);
    }
    reinforce_space_free(&s);
}
END_TEST

/* ---- the mtnas family ---- */

#define D_IN  5
#define B_MAX 7

typedef struct {
    int T, L, H;
    const char *query_set, *gate, *query;
} shape_t;

static model_config_t small_mtnas(const shape_t *sh) {
    const model_ops_t *ops = model_find("mtnas");
    model_config_t c;
    model_config_default(&c, ops);
    c.input_dim = D_IN;
    c.tasks = sh->T;
    c.max_batch = B_MAX;
    err_t err = {0};
    const model_hp_t *hp = ops->hp;
    ck_assert_int_eq(model_config_set(&c, ops, "bottom_hidden", 4, &err), 0);
    ck_assert_int_eq(model_config_set(&c, ops, "expert_hidden", 3, &err), 0);
    ck_assert_int_eq(model_config_set(&c, ops, "tower_hidden", 3, &err), 0);
    ck_assert_int_eq(model_config_set(&c, ops, "levels", sh->L, &err), 0);
    ck_assert_int_eq(model_config_set(&c, ops, "subnets", sh->H, &err), 0);
    const char *words[3][2] = {
        {"query_set", sh->query_set}, {"gate", sh->gate}, {"query", sh->query}};
    for (int i = 0; i < 3; i++) {
        int k = model_hp_find(ops, words[i][0]);
        int v = model_hp_word_index(&hp[k], words[i][1]);
        ck_assert_int_ge(v, 0);
        ck_assert_int_eq(model_config_set(&c, ops, words[i][0], v, &err), 0);
    }
    return c;
}

typedef struct {
    model_t *m;
    real x[B_MAX * D_IN], y[B_MAX * 3], pred[B_MAX * 3], dpred[B_MAX * 3];
} fx_t;

static task_kind_t kind_of(int k) {
    return k == 1 ? TASK_BINARY : TASK_REGRESSION;
}

static double fx_loss(void *ctx) {
    fx_t *f = ctx;
    const int T = f->m->cfg.tasks;
    model_forward(f->m, f->x, B_MAX, f->pred, MODEL_TRAIN);
    double sum = 0;
    for (int k = 0; k < T; k++)
        sum += (k + 1) * loss_task(kind_of(k), f->pred, f->y, B_MAX, T, k);
    return sum;
}

static void fx_init(fx_t *f, const shape_t *sh, uint64_t seed) {
    memset(f, 0, sizeof *f);
    model_config_t c = small_mtnas(sh);
    err_t err = {0};
    ck_assert_msg(model_new(&f->m, "mtnas", &c, seed, &err) == 0, "%s", err.msg);
    rng_t r;
    rng_seed(&r, seed, 99);
    for (int i = 0; i < B_MAX * D_IN; i++)
        f->x[i] = rng_normal(&r);
    for (int i = 0; i < B_MAX * sh->T; i++) {
        f->y[i] = rng_normal(&r);
        if (i % sh->T == 1) f->y[i] = f->y[i] > 0;
    }
    for (size_t i = 0; i < f->m->n_params; i++) /* generic point: non-zero biases */
        if (f->m->params[i] == 0) f->m->params[i] = 0.1 * rng_normal(&r);
}

static void random_route(const model_t *m, rng_t *r, int *route) {
    const int *choices;
    const int n = mtnas_choices(m, &choices);
    for (int b = 0; b < n; b++)
        route[b] = (int)rng_below(r, (uint32_t)choices[b]);
}

static const shape_t grad_shapes[] = {
    {2, 1, 3, "prev", "softmax", "search"},      {3, 2, 3, "prev", "softmax", "search"},
    {2, 2, 3, "prev+root", "softmax", "search"}, {2, 3, 2, "prev+root", "softmax", "search"},
    {3, 2, 3, "prev", "mean", "search"},         {2, 2, 3, "prev", "softmax", "root"},
    {2, 2, 1, "prev", "softmax", "search"},      {2, 2, 4, "prev+root", "softmax", "search"},
};

/* Finite differences of every tensor on 4 fixed routes per shape (random,
 * plus all-values routes), in MODEL_TRAIN mode with the route set; tensors
 * the route does not use have exactly zero gradient; a second backward
 * doubles the gradient. */
START_TEST(test_gradients_fixed_route) {
    const shape_t *sh = &grad_shapes[_i];
    fx_t f;
    fx_init(&f, sh, 11 + _i);
    model_t *m = f.m;
    const int T = sh->T;
    rng_t r;
    rng_seed(&r, 40 + _i, 0);
    const int *choices;
    const int nb = mtnas_choices(m, &choices);
    ck_assert_int_eq(nb, (sh->L - 1) * sh->H + T);
    real *analytic = malloc(sizeof(real) * m->n_params);
    bool *used = malloc(sizeof(bool) * m->n_tensors);
    for (int rep = 0; rep < 4; rep++) {
        int route[MTNAS_MAX_BLOCKS];
        random_route(m, &r, route);
        if (rep == 3) /* every block reads all values with the last query */
            for (int b = 0; b < nb; b++)
                route[b] = choices[b] - 1;
        mtnas_set_route(m, route);
        model_zero_grad(m);
        model_forward(m, f.x, B_MAX, f.pred, MODEL_TRAIN);
        ck_assert_mem_eq(mtnas_last_route(m), route, sizeof(int) * nb);
        for (int k = 0; k < T; k++)
            loss_task_grad(kind_of(k), f.pred, f.y, B_MAX, T, k, k + 1, f.dpred);
        model_backward(m, f.x, B_MAX, f.dpred);
        memcpy(analytic, m->grads, sizeof(real) * m->n_params);
        mtnas_tensors_used(m, route, used);
        for (int t = 0; t < m->n_tensors; t++) {
            const tensor_t *ts = &m->tensors[t];
            size_t n = (size_t)ts->rows * ts->cols, worst = 0;
            if (!used[t] || ts->group == TENSOR_ARCH)
                for (size_t i = 0; i < n; i++)
                    ck_assert(analytic[ts->offset + i] == 0);
            if (!used[t]) continue; /* (and its differences are zero: checked on one shape below) */
            double e =
                gradcheck(fx_loss, &f, m->params + ts->offset, analytic + ts->offset, n, &worst);
            ck_assert_msg(e < GRADCHECK_TOL, "shape %d route %d: tensor %s element %zu: %.3g", _i,
                          rep, ts->name, worst, e);
        }
        model_backward(m, f.x, B_MAX, f.dpred);
        for (size_t i = 0; i < m->n_params; i++)
            ck_assert(fabs(m->grads[i] - 2 * analytic[i]) <= 1e-12 * (1 + fabs(analytic[i])));
        if (_i == 1 && rep == 0) /* an unused tensor changes nothing */
            for (int t = 0; t < m->n_tensors; t++) {
                if (used[t]) continue;
                const tensor_t *ts = &m->tensors[t];
                size_t n = (size_t)ts->rows * ts->cols;
                ck_assert(gradcheck(fx_loss, &f, m->params + ts->offset, analytic + ts->offset, n,
                                    NULL) == 0);
            }
    }
    free(used);
    free(analytic);
    model_free(m);
}
END_TEST

/* The arch_gradient hook: −reward · ∇α log p(u) of the last pass's route,
 * as reinforce_score_grad computes it, into the architecture slice only. */
START_TEST(test_arch_gradient_hook) {
    const shape_t sh = {2, 2, 3, "prev+root", "softmax", "search"};
    fx_t f;
    fx_init(&f, &sh, 5);
    model_t *m = f.m;
    const int *choices;
    const int nb = mtnas_choices(m, &choices);
    reinforce_space_t space = space_of(nb, choices);
    ck_assert_uint_eq(space.n_logits, m->n_params - m->n_weights);
    rng_t r;
    rng_seed(&r, 8, 0);
    int route[MTNAS_MAX_BLOCKS];
    random_route(m, &r, route);
    mtnas_set_route(m, route);
    model_forward(m, f.x, B_MAX, f.pred, MODEL_TRAIN);
    model_zero_grad(m);
    m->ops->arch_gradient(m, 0.3);
    real *expect = calloc(space.n_logits, sizeof(real));
    reinforce_score_grad(&space, m->params + m->n_weights, route, -0.3, expect);
    for (size_t i = 0; i < m->n_weights; i++)
        ck_assert(m->grads[i] == 0);
    for (size_t i = 0; i < space.n_logits; i++)
        ck_assert(fabs(m->grads[m->n_weights + i] - expect[i]) < 1e-15);
    /* MODEL_EVAL and a cleared route take the derived route (the argmax) */
    int derived[MTNAS_MAX_BLOCKS], argmax[MTNAS_MAX_BLOCKS];
    mtnas_derived_route(m, derived);
    reinforce_argmax(&space, m->params + m->n_weights, argmax);
    ck_assert_mem_eq(derived, argmax, sizeof(int) * nb);
    model_forward(m, f.x, B_MAX, f.pred, MODEL_EVAL);
    ck_assert_mem_eq(mtnas_last_route(m), derived, sizeof(int) * nb);
    mtnas_set_route(m, NULL);
    model_forward(m, f.x, B_MAX, f.pred, MODEL_TRAIN);
    ck_assert_mem_eq(mtnas_last_route(m), derived, sizeof(int) * nb);
    free(expect);
    reinforce_space_free(&space);
    model_free(m);
}
END_TEST

/* ---- a plain-loop reference of §3.1 (L = 2, any H, T; weights read by name) ---- */

static const real *P_(const model_t *m, const char *name) {
    int t = model_tensor_index(m, name);
    ck_assert_msg(t >= 0, "no tensor %s", name);
    return model_param(m, t);
}

/* out[n] = relu?(in[k] · W[k, n] + b[n]) for one example. */
static void ref_dense(const real *in, int k, const real *W, const real *b, int n, bool relu,
                      double *out) {
    for (int j = 0; j < n; j++) {
        double z = b ? b[j] : 0;
        for (int i = 0; i < k; i++)
            z += in[i] * W[(size_t)i * n + j];
        out[j] = relu && z < 0 ? 0 : z;
    }
}

/* The block output of one example: values prev[H][W], query source q (H: root r). */
static void ref_block(const model_t *m, const char *label, int k, int H, int W, int W0, int nq,
                      bool mean, bool qroot, double prev[][8], const double *r, double *y) {
    unsigned mask = (unsigned)(k / nq) + 1;
    int q = qroot ? H : k % nq, idx[8], n = 0;
    for (int i = 0; i < H; i++)
        if (mask >> i & 1) idx[n++] = i;
    double g[8];
    if (mean || n == 1) {
        for (int i = 0; i < n; i++)
            g[i] = 1.0 / n;
    } else {
        char name[48];
        if (q == H)
            snprintf(name, sizeof name, "%s.g%u.qr.W", label, mask);
        else
            snprintf(name, sizeof name, "%s.g%u.q%d.W", label, mask, q + 1);
        const real *G = P_(m, name);
        const double *qv = q == H ? r : prev[q];
        const int dq = q == H ? W0 : W;
        double mx = -INFINITY, sum = 0;
        for (int i = 0; i < n; i++) {
            g[i] = 0;
            for (int c = 0; c < dq; c++)
                g[i] += qv[c] * G[(size_t)c * n + i];
            if (g[i] > mx) mx = g[i];
        }
        for (int i = 0; i < n; i++)
            sum += g[i] = exp(g[i] - mx);
        for (int i = 0; i < n; i++)
            g[i] /= sum;
    }
    for (int c = 0; c < W; c++) {
        y[c] = 0;
        for (int i = 0; i < n; i++)
            y[c] += g[i] * prev[idx[i]][c];
    }
}

static const shape_t fwd_shapes[] = {
    {2, 2, 3, "prev+root", "softmax", "search"},
    {3, 2, 3, "prev", "softmax", "search"},
    {2, 2, 3, "prev", "mean", "search"},
    {2, 2, 2, "prev", "softmax", "root"},
};

/* The forward pass on 5 random routes against the reference, to 1e-12. */
START_TEST(test_forward_equations) {
    const shape_t *sh = &fwd_shapes[_i];
    fx_t f;
    fx_init(&f, sh, 21 + _i);
    model_t *m = f.m;
    const int H = sh->H, W = 3, W0 = 4, T = sh->T;
    const bool mean = strcmp(sh->gate, "mean") == 0, qroot = strcmp(sh->query, "root") == 0;
    const int nq = mean || qroot ? 1 : H + (strcmp(sh->query_set, "prev+root") == 0);
    rng_t rr;
    rng_seed(&rr, 3, 0);
    for (int rep = 0; rep < 5; rep++) {
        int route[MTNAS_MAX_BLOCKS];
        random_route(m, &rr, route);
        mtnas_set_route(m, route);
        model_forward(m, f.x, B_MAX, f.pred, MODEL_TRAIN);
        for (int b = 0; b < B_MAX; b++) {
            double r[8], l1[8][8], l2[8][8], y[8], h[8], out;
            char name[48], label[16];
            ref_dense(f.x + b * D_IN, D_IN, P_(m, "root.W"), P_(m, "root.b"), W0, true, r);
            real rin[8], vin[8];
            for (int c = 0; c < W0; c++)
                rin[c] = (real)r[c];
            for (int j = 0; j < H; j++) {
                snprintf(name, sizeof name, "l1.s%d.W", j + 1);
                const real *Wj = P_(m, name);
                snprintf(name, sizeof name, "l1.s%d.b", j + 1);
                ref_dense(rin, W0, Wj, P_(m, name), W, true, l1[j]);
            }
            for (int j = 0; j < H; j++) {
                snprintf(label, sizeof label, "l2.s%d", j + 1);
                ref_block(m, label, route[j], H, W, W0, nq, mean, qroot, l1, r, y);
                for (int c = 0; c < W; c++)
                    vin[c] = (real)y[c];
                snprintf(name, sizeof name, "l2.s%d.W", j + 1);
                const real *Wj = P_(m, name);
                snprintf(name, sizeof name, "l2.s%d.b", j + 1);
                ref_dense(vin, W, Wj, P_(m, name), W, true, l2[j]);
            }
            for (int t = 0; t < T; t++) {
                snprintf(label, sizeof label, "t%d", t + 1);
                ref_block(m, label, route[H + t], H, W, W0, nq, mean, qroot, l2, r, y);
                for (int c = 0; c < W; c++)
                    vin[c] = (real)y[c];
                snprintf(name, sizeof name, "tower%d.hidden.W", t + 1);
                const real *W1 = P_(m, name);
                snprintf(name, sizeof name, "tower%d.hidden.b", t + 1);
                ref_dense(vin, W, W1, P_(m, name), 3, true, h);
                real hin[8];
                for (int c = 0; c < 3; c++)
                    hin[c] = (real)h[c];
                snprintf(name, sizeof name, "tower%d.out.W", t + 1);
                const real *W2 = P_(m, name);
                snprintf(name, sizeof name, "tower%d.out.b", t + 1);
                ref_dense(hin, 3, W2, P_(m, name), 1, false, &out);
                ck_assert_msg(fabs(f.pred[b * T + t] - out) < 1e-12, "shape %d route %d: %g vs %g",
                              _i, rep, f.pred[b * T + t], out);
            }
        }
    }
    model_free(m);
}
END_TEST

/* Parameter counts: the defaults (d 100, T 2) by hand, and a derived route's. */
START_TEST(test_param_counts) {
    model_config_t c;
    model_config_default(&c, model_find("mtnas"));
    model_t *m;
    err_t err = {0};
    ck_assert_int_eq(model_new(&m, "mtnas", &c, 1, &err), 0);
    /* root 100x64+64; layer 1 4 x (64x64+64); layer 2 the same; gates: 6
     * blocks x (subsets of >= 2 of 4 values: Σ C(4,s) s = 12 + 12 + 4 = 28)
     * x 4 query sources x 64 rows; towers 2 x (64x8+8+8+1); logits 6 x 15 x 4 */
    const size_t weights = 6464 + 16640 + 16640 + 6 * 28 * 4 * 64 + 2 * 529;
    ck_assert_uint_eq(m->n_weights, weights);
    ck_assert_uint_eq(m->n_params, weights + 6 * 60);
    /* route k = (mask - 1)·4 + query: l2.s1 reads {1,2} (query s3), l2.s2
     * {4}, l2.s3 and l2.s4 all (query s4), t1 {1} and t2 {2,3} (query s1):
     * layer 2 uses s1, s2, s3 (l2.s4 and its gate are unused), layer 1 all
     * four; gates [64, 2] of l2.s1, [64, 4] of l2.s3, [64, 2] of t2 */
    int route[6] = {(3 - 1) * 4 + 2, (8 - 1) * 4 + 0, 59, 59, (1 - 1) * 4 + 3, (6 - 1) * 4 + 0};
    const size_t expect = 6464 + 4 * 4160 + 3 * 4160 + 2 * 64 + 4 * 64 + 2 * 64 + 2 * 529;
    ck_assert_uint_eq(mtnas_route_params(m, route), expect);
    model_free(m);
    /* prev+root and query = root change the query sources */
    const model_ops_t *ops = model_find("mtnas");
    ck_assert_int_eq(model_config_set(&c, ops, "query_set", 1, &err), 0);
    model_sizes_t sz;
    ck_assert_int_eq(model_sizes("mtnas", &c, &sz, &err), 0);
    ck_assert_uint_eq(sz.n_weights, weights + 6 * 28 * 64);
    ck_assert_uint_eq(sz.n_params - sz.n_weights, 6 * 15 * 5);
    ck_assert_int_eq(model_config_set(&c, ops, "query", 1, &err), 0);
    ck_assert_int_eq(model_sizes("mtnas", &c, &sz, &err), 0);
    ck_assert_uint_eq(sz.n_weights, weights - 6 * 28 * 3 * 64);
    ck_assert_uint_eq(sz.n_params - sz.n_weights, 6 * 15);
    ck_assert_int_eq(model_config_set(&c, ops, "gate", 1, &err), 0); /* mean: no gates */
    ck_assert_int_eq(model_sizes("mtnas", &c, &sz, &err), 0);
    ck_assert_uint_eq(sz.n_weights, weights - 6 * 28 * 4 * 64);
}
END_TEST

/* ---- the search ---- */

/* Small synthetic data: d 8, T 2 (task 2 binary when `binary`), 600 / 200 / 200. */
static void small_data(data_t *data, bool binary) {
    synth_params_t p;
    synth_defaults(&p);
    p.dim = 8;
    p.n_train = 600;
    p.n_val = 200;
    p.n_test = 200;
    p.binary[1] = binary;
    err_t err = {0};
    ck_assert_msg(synth_set_corr_all(&p, 0.0, &err) == 0, "%s", err.msg);
    ck_assert_msg(synth_generate(&p, 4, data, &err) == 0, "%s", err.msg);
}

/* A small mtnas for `data`: L 2, H 3, widths 6, batch 32, with extra hps. */
static model_t *search_model(const data_t *data, uint64_t seed, const char *const *hp,
                             const double *val, int n_hp) {
    const model_ops_t *ops = model_find("mtnas");
    model_config_t c;
    model_config_default(&c, ops);
    c.input_dim = data->d;
    c.tasks = data->T;
    c.max_batch = 32;
    err_t err = {0};
    const char *names[] = {"bottom_hidden", "expert_hidden", "subnets", "tower_hidden"};
    const double vals[] = {6, 6, 3, 4};
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(model_config_set(&c, ops, names[i], vals[i], &err), 0);
    for (int i = 0; i < n_hp; i++)
        ck_assert_msg(model_config_set(&c, ops, hp[i], val[i], &err) == 0, "%s", err.msg);
    model_t *m;
    ck_assert_msg(model_new(&m, "mtnas", &c, seed, &err) == 0, "%s", err.msg);
    return m;
}

static train_config_t search_train(int steps) {
    train_config_t tc;
    train_config_default(&tc);
    tc.batch = 32;
    tc.steps = steps;
    tc.eval_every = 20;
    tc.lr = 0.01;
    return tc;
}

typedef struct {
    int n;
    train_eval_t ev[64];
} curve_t;

static void keep_eval(void *ctx, const train_eval_t *ev) {
    curve_t *c = ctx;
    ck_assert_int_lt(c->n, 64);
    c->ev[c->n++] = *ev;
}

/* The derived route, the logits, the weights and the curve are the same bits
 * for the same seeds (binary and regression rewards, K = 3, a warmup); a
 * different batch seed changes the logits.  The search moves the logits and
 * the model ends on its derived route. */
START_TEST(test_search_reproducible) {
    data_t data;
    small_data(&data, true);
    const char *hp[] = {"samples", "warmup", "query_set"};
    const double val[] = {3, 10, 1};
    model_t *a = search_model(&data, 7, hp, val, 3), *b = search_model(&data, 7, hp, val, 3),
            *c = search_model(&data, 7, hp, val, 3);
    ck_assert(search_wanted(a));
    real *start = malloc(sizeof(real) * a->n_params);
    memcpy(start, a->params, sizeof(real) * a->n_params);
    train_config_t tc = search_train(100);
    train_result_t ra, rb, rc;
    curve_t ca = {0}, cb = {0};
    err_t err = {0};
    ck_assert_msg(train_run(a, &data, &tc, 5, keep_eval, &ca, &ra, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(train_run(b, &data, &tc, 5, keep_eval, &cb, &rb, &err), 0);
    ck_assert_int_eq(train_run(c, &data, &tc, 6, NULL, NULL, &rc, &err), 0);
    ck_assert_mem_eq(a->params, b->params, sizeof(real) * a->n_params);
    ck_assert_int_eq(ca.n, 5);
    ck_assert_int_eq(cb.n, 5);
    ck_assert_mem_eq(ca.ev, cb.ev, sizeof(train_eval_t) * ca.n);
    ck_assert_int_eq(ca.ev[4].step, 100);
    ck_assert(!isnan(ca.ev[4].auc[METRIC_TEST][1]));
    int ra_route[MTNAS_MAX_BLOCKS], rb_route[MTNAS_MAX_BLOCKS];
    mtnas_derived_route(a, ra_route);
    mtnas_derived_route(b, rb_route);
    const int *choices;
    const int nb = mtnas_choices(a, &choices);
    ck_assert_mem_eq(ra_route, rb_route, sizeof(int) * nb);
    const size_t na = a->n_params - a->n_weights;
    ck_assert(memcmp(a->params + a->n_weights, start + a->n_weights, sizeof(real) * na) != 0);
    ck_assert(memcmp(a->params + a->n_weights, c->params + c->n_weights, sizeof(real) * na) != 0);
    /* no route left set: a training pass takes the derived route */
    real x[8] = {0}, pred[2];
    model_forward(a, x, 1, pred, MODEL_TRAIN);
    ck_assert_mem_eq(mtnas_last_route(a), ra_route, sizeof(int) * nb);
    /* an architecture schedule of the trainer's is refused */
    tc.arch = TRAIN_ARCH_JOINT;
    ck_assert_int_eq(train_run(a, &data, &tc, 5, NULL, NULL, &ra, &err), -1);
    ck_assert_int_eq(err.kind, ERR_USAGE);
    ck_assert_ptr_nonnull(strstr(err.msg, "frozen"));
    free(start);
    model_free(a);
    model_free(b);
    model_free(c);
    data_free(&data);
}
END_TEST

/* Weights of unsampled routes stay untouched, their Adam state too.  Two
 * warmup steps (routes drawn uniformly from m->rng, replayed here): after
 * step 1 every tensor route 1 does not read still has its initial bits;
 * after step 2 the tensors route 1 read and route 2 did not have exactly
 * their values after step 1 -- a plain Adam would move them again with the
 * momentum of step 1. */
START_TEST(test_unsampled_untouched) {
    data_t data;
    small_data(&data, false);
    const char *hp[] = {"warmup"};
    const double val[] = {5};
    model_t *one = search_model(&data, 3, hp, val, 1), *two = search_model(&data, 3, hp, val, 1);
    real *start = malloc(sizeof(real) * one->n_params);
    memcpy(start, one->params, sizeof(real) * one->n_params);
    const int *choices;
    const int nb = mtnas_choices(one, &choices);
    rng_t r;
    rng_seed(&r, 3, RNG_STREAM_MODEL);
    int route1[MTNAS_MAX_BLOCKS], route2[MTNAS_MAX_BLOCKS];
    for (int b = 0; b < nb; b++)
        route1[b] = (int)rng_below(&r, (uint32_t)choices[b]);
    for (int b = 0; b < nb; b++)
        route2[b] = (int)rng_below(&r, (uint32_t)choices[b]);
    bool *used1 = malloc(one->n_tensors), *used2 = malloc(one->n_tensors);
    mtnas_tensors_used(one, route1, used1);
    mtnas_tensors_used(one, route2, used2);
    train_config_t tc = search_train(1);
    train_result_t res;
    err_t err = {0};
    ck_assert_int_eq(train_run(one, &data, &tc, 9, NULL, NULL, &res, &err), 0);
    tc.steps = 2;
    ck_assert_int_eq(train_run(two, &data, &tc, 9, NULL, NULL, &res, &err), 0);
    int untouched = 0, kept = 0, moved = 0;
    for (int t = 0; t < one->n_tensors; t++) {
        const tensor_t *ts = &one->tensors[t];
        const size_t n = sizeof(real) * ts->rows * ts->cols;
        const bool same1 = memcmp(one->params + ts->offset, start + ts->offset, n) == 0;
        if (ts->group == TENSOR_ARCH) { /* warmup: no architecture step */
            ck_assert(same1);
            continue;
        }
        ck_assert_msg(same1 == !used1[t], "tensor %s: used %d, unchanged %d", ts->name, used1[t],
                      same1);
        untouched += !used1[t];
        if (used1[t] && !used2[t]) {
            ck_assert_msg(memcmp(two->params + ts->offset, one->params + ts->offset, n) == 0,
                          "tensor %s moved at step 2 without being sampled", ts->name);
            kept++;
        }
        if (used2[t]) moved += memcmp(two->params + ts->offset, one->params + ts->offset, n) != 0;
    }
    ck_assert_int_gt(untouched, 5);
    ck_assert_int_gt(kept, 0);
    ck_assert_int_gt(moved, 5);
    free(used1);
    free(used2);
    free(start);
    model_free(one);
    model_free(two);
    data_free(&data);
}
END_TEST

/* retrain = on: the curve has a search phase (steps 20..100) and a retrain
 * phase (120..200); the retrain equals training, from the initial weights
 * and with the same batch seed, a model with search = off whose logits are
 * the searched ones (so its fixed route is the derived route): same weights,
 * same evaluations, bit for bit. */
START_TEST(test_retrain_phase) {
    data_t data;
    small_data(&data, false);
    const char *hp[] = {"retrain", "search"};
    const double on[] = {1, 1}, off[] = {0, 0};
    model_t *a = search_model(&data, 2, hp, on, 2), *b = search_model(&data, 2, hp, off, 2);
    ck_assert(!search_wanted(b));
    ck_assert_mem_eq(a->params, b->params, sizeof(real) * a->n_params);
    train_config_t tc = search_train(100);
    train_result_t ra, rb;
    curve_t ca = {0}, cb = {0};
    err_t err = {0};
    ck_assert_msg(train_run(a, &data, &tc, 4, keep_eval, &ca, &ra, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(ca.n, 10);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(ca.ev[i].step, 20 * (i + 1));
    memcpy(b->params + b->n_weights, a->params + a->n_weights,
           sizeof(real) * (a->n_params - a->n_weights));
    ck_assert_int_eq(train_run(b, &data, &tc, 4, keep_eval, &cb, &rb, &err), 0);
    ck_assert_int_eq(cb.n, 5);
    ck_assert_mem_eq(a->params, b->params, sizeof(real) * a->n_params);
    for (int i = 0; i < 5; i++) {
        train_eval_t e = cb.ev[i];
        e.step += 100;
        ck_assert_mem_eq(&e, &ca.ev[5 + i], sizeof e);
    }
    ck_assert_int_eq(ra.final.step, 200);
    model_free(a);
    model_free(b);
    data_free(&data);
}
END_TEST

/* ---- records ---- */

/* The routes hook on hand-set logits: L 1, H 2, prev+root, T 2 (2 task
 * blocks of 3 subsets x 3 queries).  Block t1 puts its mass on route 8
 * (values {1,2}, query = the root), t2 on route 0 ({1}, no query read). */
START_TEST(test_routes_rows) {
    const shape_t sh = {2, 1, 2, "prev+root", "softmax", "search"};
    fx_t f;
    fx_init(&f, &sh, 6);
    model_t *m = f.m;
    real *a1 = model_param(m, model_tensor_index(m, "arch.t1"));
    real *a2 = model_param(m, model_tensor_index(m, "arch.t2"));
    for (int k = 0; k < 9; k++) {
        a1[k] = k == 8 ? 2.0 : 0.1 * k;
        a2[k] = k == 0 ? 1.0 : 0.0;
    }
    const int n = model_routes(m, NULL);
    ck_assert_int_eq(n, 2 * (2 * 2 + 2 * 3 + 2));
    model_route_t rows[64];
    ck_assert_int_eq(model_routes(m, rows), n);
    /* expected, from the definition: route k = (mask - 1)·3 + q */
    for (int t = 0; t < 2; t++) {
        const real *a = t ? a2 : a1;
        double p[9], sum = 0, h = 0, top = 0, pin[2] = {0}, pq[3] = {0};
        for (int k = 0; k < 9; k++)
            sum += p[k] = exp(a[k]);
        for (int k = 0; k < 9; k++) {
            p[k] /= sum;
            h -= p[k] * log(p[k]);
            top = fmax(top, p[k]);
            unsigned mask = (unsigned)(k / 3) + 1;
            for (int i = 0; i < 2; i++)
                if (mask >> i & 1) pin[i] += p[k];
            if (mask == 3) pq[k % 3] += p[k];
        }
        int seen = 0;
        for (int i = 0; i < n; i++) {
            const model_route_t *r = &rows[i];
            if (r->dst != t) continue;
            seen++;
            ck_assert_int_eq(r->layer, 2);     /* the towers' inputs: layer L + 1 */
            if (strcmp(r->kind, "value") == 0) /* t1: {1,2}; t2: {1} */
                ck_assert(r->value == (t == 0 || r->src == 0 ? 1 : 0));
            else if (strcmp(r->kind, "query") == 0) /* t1 reads the root (src H = 2) */
                ck_assert(r->value == (t == 0 && r->src == 2 ? 1 : 0));
            else if (strcmp(r->kind, "prob") == 0)
                ck_assert(fabs(r->value - pin[r->src]) < 1e-12);
            else if (strcmp(r->kind, "query_prob") == 0)
                ck_assert(fabs(r->value - pq[r->src]) < 1e-12);
            else if (strcmp(r->kind, "entropy") == 0)
                ck_assert(r->src == -1 && fabs(r->value - h) < 1e-12);
            else if (strcmp(r->kind, "top_prob") == 0)
                ck_assert(r->src == -1 && fabs(r->value - top) < 1e-12);
            else
                ck_abort_msg("unknown kind %s", r->kind);
        }
        ck_assert_int_eq(seen, n / 2);
    }
    /* the serving size is the derived route's parameters: root, both
     * sub-networks, t1's gate [4, 2] from the root (width 4), the towers */
    const size_t expect = (5 * 4 + 4) + 2 * (4 * 3 + 3) + 4 * 2 + 2 * (3 * 3 + 3 + 3 + 1);
    ck_assert_uint_eq(model_serving_params(m), expect);
    model_free(m);
}
END_TEST

/* `mtlab run` of a small search sweep stores the final routes, the routes of
 * every evaluation (route_step: both phases with retrain = on) and the
 * serving size curve, and `show` -> `train` reproduces the trial's losses bit
 * for bit. */
START_TEST(test_routes_recorded) {
    char *dir = test_tmpdir(), *db = test_join(dir, "r.db");
    char *ini = test_write_file(dir, "s.ini",
                                "[experiment]\nname = mt\nrepeats = 1\nseed = 3\n"
                                "[data]\ntasks = 2\ncorrelation = 0.0\ntrain = 1000\n"
                                "validation = 200\ntest = 200\ndim = 10\n"
                                "[train]\nbatch = 32\nsteps = 60\neval_every = 20\n"
                                "[model]\nname = mtnas\nsubnets = 3\nbottom_hidden = 6\n"
                                "expert_hidden = 6\nretrain = off, on\n");
    const char *args[] = {"run", ini, "--db", db, "--jobs", "1", "--quiet", NULL};
    free(test_mtlab_ok(0, NULL, args));
    /* per block: 3 value + 3 prob + 3 query + 3 query_prob + entropy + top_prob;
     * blocks: l2.s1..s3, t1, t2 */
    const int per_trial = 5 * 14;
    ck_assert_double_eq(test_query(db, "SELECT count(*) FROM route WHERE trial_id = 1"), per_trial);
    ck_assert_double_eq(test_query(db, "SELECT count(*) FROM route_step WHERE trial_id = 1"),
                        3 * per_trial);
    ck_assert_double_eq(test_query(db, "SELECT count(*) FROM route_step WHERE trial_id = 2"),
                        6 * per_trial);
    ck_assert_double_eq(test_query(db, "SELECT max(step) FROM route_step WHERE trial_id = 2"), 120);
    /* the final routes are the last evaluation's */
    ck_assert_double_eq(
        test_query(db,
                   "SELECT count(*) FROM route r JOIN route_step s USING (trial_id, layer, "
                   "src, dst, kind) WHERE s.step = 60 AND r.trial_id = 1 AND r.value = s.value"),
        per_trial);
    /* each block's derived value subset is non-empty; its value rows are 0/1 */
    ck_assert_double_eq(
        test_query(db, "SELECT count(*) FROM (SELECT trial_id, layer, dst, sum(value) AS n FROM "
                       "route WHERE kind = 'value' GROUP BY 1, 2, 3) WHERE n >= 1"),
        10);
    ck_assert_double_eq(
        test_query(db, "SELECT count(*) FROM route WHERE kind = 'value' AND value NOT IN (0, 1)"),
        0);
    /* the serving size: fewer parameters than the supernet, at every evaluation */
    ck_assert_double_eq(test_query(db, "SELECT count(*) FROM metric m JOIN trial t ON t.id = "
                                       "m.trial_id WHERE m.name = 'model/serving_params' AND "
                                       "m.value > 0 AND m.value < t.n_params"),
                        9);
    /* sql/figures/mtnas-overlap.sql against the value subsets read here */
    int disjoint = 0;
    for (int id = 1; id <= 2; id++) {
        char q[256];
        int bits[2];
        for (int t = 0; t < 2; t++) {
            snprintf(q, sizeof q,
                     "SELECT sum(1 << src) FROM route WHERE trial_id = %d AND kind = 'value' "
                     "AND value > 0 AND layer = 3 AND dst = %d",
                     id, t);
            bits[t] = (int)test_query(db, q);
            ck_assert_int_gt(bits[t], 0);
        }
        disjoint += (bits[0] & bits[1]) == 0;
    }
    const char *plot_args[] = {"plot", "mtnas-overlap", "--db", db, "--experiment",
                               "mt",   "--data",        NULL};
    char *csv = test_mtlab_ok(0, NULL, plot_args);
    const char *row = strchr(csv, '\n');
    ck_assert_ptr_nonnull(row);
    int levels, subnets, n, dv;
    double corr;
    ck_assert_int_eq(sscanf(row + 1, "%d,%d,%lf,%d,%d", &levels, &subnets, &corr, &n, &dv), 5);
    ck_assert_int_eq(levels, 2);
    ck_assert_int_eq(subnets, 3);
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(dv, disjoint);
    free(csv);
    char *shown = test_rerun_shown(db, 2);
    const char *final = strstr(shown, "final test loss:");
    ck_assert_ptr_nonnull(final);
    double t[2];
    ck_assert_int_eq(sscanf(final, "final test loss: t1 %lf t2 %lf", &t[0], &t[1]), 2);
    ck_assert(t[0] == test_query(db, "SELECT value FROM metric WHERE trial_id = 2 AND name = "
                                     "'test/loss/t1' AND step = 120"));
    ck_assert(t[1] == test_query(db, "SELECT value FROM metric WHERE trial_id = 2 AND name = "
                                     "'test/loss/t2' AND step = 120"));
    free(shown);
    free(ini);
    free(db);
    free(dir);
}
END_TEST

Suite *mtnas_suite(void) {
    Suite *s = suite_create("mtnas");
    TCase *rl = tcase_create("reinforce");
    tcase_set_timeout(rl, 60);
    tcase_add_test(rl, test_score_gradient);
    tcase_add_test(rl, test_sampling_frequencies);
    tcase_add_test(rl, test_baseline);
    tcase_add_loop_test(rl, test_bandit_converges, 0, 3);
    suite_add_tcase(s, rl);
    TCase *fam = tcase_create("family");
    tcase_set_timeout(fam, 60);
    tcase_add_loop_test(fam, test_gradients_fixed_route, 0,
                        (int)(sizeof grad_shapes / sizeof grad_shapes[0]));
    tcase_add_test(fam, test_arch_gradient_hook);
    tcase_add_loop_test(fam, test_forward_equations, 0,
                        (int)(sizeof fwd_shapes / sizeof fwd_shapes[0]));
    tcase_add_test(fam, test_param_counts);
    suite_add_tcase(s, fam);
    TCase *se = tcase_create("search");
    tcase_set_timeout(se, 60);
    tcase_add_test(se, test_search_reproducible);
    tcase_add_test(se, test_unsampled_untouched);
    tcase_add_test(se, test_retrain_phase);
    tcase_add_test(se, test_routes_rows);
    tcase_add_test(se, test_routes_recorded);
    suite_add_tcase(s, se);
    return s;
}
