/* test_blocks.c -- the blocks for multi-level models (models/blocks.h), the
 * workspace, the pass contract and the gate registry, on a family of the
 * tests' own: a PLE-like model of L levels.
 *
 *   level l has one expert per task and one shared expert, written side by
 *   side into one level buffer E_l [B, (T+1)·h] (strided dense layers);
 *   task k's expert reads F_{l-1,k}, the shared expert S_{l-1} (x at l = 1);
 *   task k's gate (softmax over [own, shared], reading F_{l-1,k}) mixes its
 *   own expert, then accumulates the shared one: F_{l,k} (two calls of the
 *   accumulating mixture on non-adjacent experts of one buffer);
 *   below the last level a shared gate over all T+1 experts gives S_l;
 *   towers read F_{L,k}.
 *
 * Every gate is registered: "l<l>/t<k>" (owner t<k>), "l<l>/shared" (owner
 * shared), and the logits of task 1's last gate as a raw-weights gate
 * "l<L>/t1/logits" -- 16 tasks x 5 levels give 85 gates. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/loss.h"
#include "gradcheck.h"
#include "models/blocks.h"
#include "testutil.h"
#include "train/train.h"

/* The test family's hyper-parameters (model.h). */
enum { LEVELS_EXPERT_HIDDEN, LEVELS_TOWER_HIDDEN, LEVELS_N_HP };
static const model_hp_t levels_hp[LEVELS_N_HP] = {
    [LEVELS_EXPERT_HIDDEN] = {"expert_hidden", HP_INT, 1, 1e6, 3, "units per expert"},
    [LEVELS_TOWER_HIDDEN] = {"tower_hidden", HP_INT, 1, 1e6, 2, "units per tower"},
};

#define LEVELS_MAX 5

static int test_levels = 2; /* L of the next model built (a test-only knob) */

typedef struct {
    int L;
    real *E[LEVELS_MAX], *dE[LEVELS_MAX];              /* [max_batch, (T+1)·h] */
    experts_t expert[LEVELS_MAX][MODEL_MAX_TASKS + 1]; /* [T]: the shared expert */
    experts_t level[LEVELS_MAX];                       /* a view of all T+1 experts of E_l */
    gates_t task_gate[LEVELS_MAX][MODEL_MAX_TASKS];
    gates_t shared_gate[LEVELS_MAX];
    real *F[LEVELS_MAX][MODEL_MAX_TASKS], *dF[LEVELS_MAX][MODEL_MAX_TASKS]; /* [max_batch, h] */
    real *S[LEVELS_MAX], *dS[LEVELS_MAX];
    tower_t tower[MODEL_MAX_TASKS];
} levels_t;

static int levels_sizes(const model_config_t *c, model_sizes_t *out, err_t *err) {
    const int L = test_levels, T = c->tasks, h = model_hp_int(c, LEVELS_EXPERT_HIDDEN), B = c->max_batch;
    size_t params = 0, p;
    for (int l = 0; l < L; l++) {
        const int in = l == 0 ? c->input_dim : h;
        size_tally_blocks(&out->act, 2, (size_t)B * (T + 1) * h, sizeof(real)); /* E, dE */
        for (int k = 0; k <= T; k++) {
            if (experts_sizes(in, 1, h, B, false, &p, &out->act, err)) return -1;
            params += p;
        }
        for (int k = 0; k < T; k++) {
            if (gates_sizes(in, 1, 2, true, B, &p, &out->act, err)) return -1;
            params += p;
        }
        size_tally_blocks(&out->act, 2 * (size_t)T, (size_t)B * h, sizeof(real)); /* F, dF */
        out->n_tensors += 2 * (T + 1) + 2 * T;
        out->n_gates += T;
        out->gate_experts += 2 * (size_t)T;
        if (l < L - 1) {
            if (gates_sizes(in, 1, T + 1, true, B, &p, &out->act, err)) return -1;
            params += p;
            size_tally_blocks(&out->act, 2, (size_t)B * h, sizeof(real)); /* S, dS */
            out->n_tensors += 2;
            out->n_gates += 1;
            out->gate_experts += T + 1;
        }
    }
    out->n_gates += 1; /* the logits */
    out->gate_experts += 2;
    for (int k = 0; k < T; k++) {
        if (tower_sizes(h, model_hp_int(c, LEVELS_TOWER_HIDDEN), B, &p, &out->act, err)) return -1;
        params += p;
    }
    out->n_tensors += 4 * T;
    out->n_params = out->n_weights = params;
    out->state_bytes = sizeof(levels_t);
    return 0;
}

static int levels_build(model_t *m, err_t *err) {
    const model_config_t *c = &m->cfg;
    const int L = test_levels, T = c->tasks, h = model_hp_int(c, LEVELS_EXPERT_HIDDEN), W = (T + 1) * h;
    levels_t *s = model_work(m, sizeof *s, err);
    if (!s) return -1;
    m->impl = s;
    s->L = L;
    char name[48], owner[16];
    for (int l = 0; l < L; l++) {
        const int in = l == 0 ? c->input_dim : h;
        if (!(s->E[l] = model_act(m, W, err)) || !(s->dE[l] = model_act_grad(m, W, err))) return -1;
        s->level[l] = (experts_t){.n = T + 1, .h = h, .out = s->E[l], .dout = s->dE[l], .ld = W};
        for (int k = 0; k <= T; k++) {
            if (k < T)
                snprintf(name, sizeof name, "l%d.expert_t%d", l + 1, k + 1);
            else
                snprintf(name, sizeof name, "l%d.expert_shared", l + 1);
            if (experts_build(m, &s->expert[l][k], name, in, 1, h, s->E[l] + (size_t)k * h,
                              s->dE[l] + (size_t)k * h, W, err))
                return -1;
        }
        for (int k = 0; k < T; k++) {
            snprintf(name, sizeof name, "l%d.gate_t%d", l + 1, k + 1);
            if (gates_build(m, &s->task_gate[l][k], name, in, 1, 2, true, err)) return -1;
            snprintf(name, sizeof name, "l%d/t%d", l + 1, k + 1);
            snprintf(owner, sizeof owner, "t%d", k + 1);
            if (gates_register(m, &s->task_gate[l][k], 0, name, l + 1, owner, err)) return -1;
            if (!(s->F[l][k] = model_act(m, h, err)) || !(s->dF[l][k] = model_act_grad(m, h, err)))
                return -1;
        }
        if (l < L - 1) {
            snprintf(name, sizeof name, "l%d.gate_shared", l + 1);
            if (gates_build(m, &s->shared_gate[l], name, in, 1, T + 1, true, err)) return -1;
            snprintf(name, sizeof name, "l%d/shared", l + 1);
            if (gates_register(m, &s->shared_gate[l], 0, name, l + 1, "shared", err) ||
                !(s->S[l] = model_act(m, h, err)) || !(s->dS[l] = model_act_grad(m, h, err)))
                return -1;
        }
    }
    model_gate_t logits = {.level = L,
                           .owner = "t1",
                           .kind = GATE_WEIGHTS,
                           .experts = 2,
                           .values = s->task_gate[L - 1][0].z,
                           .ld = 2};
    snprintf(logits.name, sizeof logits.name, "l%d/t1/logits", L);
    if (model_add_gate(m, &logits, err)) return -1;
    for (int k = 0; k < T; k++) {
        snprintf(name, sizeof name, "tower%d", k + 1);
        if (tower_build(m, &s->tower[k], name, h, model_hp_int(c, LEVELS_TOWER_HIDDEN), err)) return -1;
    }
    return 0;
}

static void levels_forward(model_t *m, const real *x, int B, real *pred, model_mode_t mode) {
    levels_t *s = m->impl;
    const int T = m->cfg.tasks, h = model_hp_int(&m->cfg, LEVELS_EXPERT_HIDDEN), d = m->cfg.input_dim;
    for (int l = 0; l < s->L; l++) {
        for (int k = 0; k <= T; k++) {
            const real *in = l == 0 ? x : k < T ? s->F[l - 1][k] : s->S[l - 1];
            experts_forward(m, &s->expert[l][k], in, l == 0 ? d : h, B);
        }
        for (int k = 0; k < T; k++) {
            const real *in = l == 0 ? x : s->F[l - 1][k];
            gates_t *g = &s->task_gate[l][k];
            gates_forward(m, g, in, l == 0 ? d : h, B);
            gates_mix(g, 0, 0, &s->level[l], k, 1, B, s->F[l][k], h, false); /* own expert */
            gates_mix(g, 0, 1, &s->level[l], T, 1, B, s->F[l][k], h, true);  /* + shared */
        }
        if (l < s->L - 1) {
            gates_forward(m, &s->shared_gate[l], l == 0 ? x : s->S[l - 1], l == 0 ? d : h, B);
            gates_mix(&s->shared_gate[l], 0, 0, &s->level[l], 0, T + 1, B, s->S[l], h, false);
        }
    }
    for (int k = 0; k < T; k++)
        tower_forward(m, &s->tower[k], s->F[s->L - 1][k], h, B, pred, T, k);
}

static void levels_backward(model_t *m, const real *x, int B, const real *dpred) {
    levels_t *s = m->impl;
    const int T = m->cfg.tasks, h = model_hp_int(&m->cfg, LEVELS_EXPERT_HIDDEN), d = m->cfg.input_dim;
    for (int k = 0; k < T; k++)
        tower_backward(m, &s->tower[k], s->F[s->L - 1][k], h, B, dpred, T, k, s->dF[s->L - 1][k]);
    for (int l = s->L - 1; l >= 0; l--) {
        const int ldi = l == 0 ? d : h;
        if (l < s->L - 1) {
            gates_mix_backward(&s->shared_gate[l], 0, 0, &s->level[l], 0, T + 1, B, s->dS[l], h);
            gates_backward(m, &s->shared_gate[l], l == 0 ? x : s->S[l - 1], ldi, B,
                           l == 0 ? NULL : s->dS[l - 1]);
        }
        for (int k = 0; k < T; k++) {
            gates_t *g = &s->task_gate[l][k];
            gates_mix_backward(g, 0, 0, &s->level[l], k, 1, B, s->dF[l][k], h);
            gates_mix_backward(g, 0, 1, &s->level[l], T, 1, B, s->dF[l][k], h);
            gates_backward(m, g, l == 0 ? x : s->F[l - 1][k], ldi, B,
                           l == 0 ? NULL : s->dF[l - 1][k]);
        }
        for (int k = 0; k <= T; k++) {
            const real *in = l == 0 ? x : k < T ? s->F[l - 1][k] : s->S[l - 1];
            real *din = l == 0 ? NULL : k < T ? s->dF[l - 1][k] : s->dS[l - 1];
            experts_backward(m, &s->expert[l][k], in, ldi, B, din);
        }
    }
}

static const model_ops_t levels_ops = {
    .name = "test_levels",
    .summary = "PLE-like test model of test_levels levels",
    .hp = levels_hp,
    .n_hp = LEVELS_N_HP,
    .sizes = levels_sizes,
    .build = levels_build,
    .forward = levels_forward,
    .backward = levels_backward,
};

static model_config_t levels_config(int T, int L, int max_batch) {
    model_config_t c;
    model_config_default(&c, &levels_ops);
    c.input_dim = 4;
    c.tasks = T;
    c.hp[LEVELS_EXPERT_HIDDEN] = 3;
    c.hp[LEVELS_TOWER_HIDDEN] = 2;
    c.max_batch = max_batch;
    test_levels = L;
    return c;
}

typedef struct {
    model_t *m;
    real *x, *y, *pred, *dpred;
    int B;
} levels_fixture_t;

static double levels_loss(void *ctx) {
    levels_fixture_t *f = ctx;
    const int T = f->m->cfg.tasks;
    model_forward(f->m, f->x, f->B, f->pred, MODEL_EVAL);
    double sum = 0;
    for (int k = 0; k < T; k++)
        sum += (k + 1) * loss_task(TASK_REGRESSION, f->pred, f->y, f->B, T, k);
    return sum;
}

/* Every tensor of a 2- and a 3-level model against central differences,
 * with B below max_batch: the strided experts, the accumulating mixture on
 * separate experts of one buffer, gates with biases, gradients flowing
 * through levels into both a task's and the shared path. */
START_TEST(test_levels_gradients) {
    const int L = 2 + _i, T = 3, B = 5;
    model_config_t c = levels_config(T, L, 7);
    levels_fixture_t f = {.B = B};
    err_t err = {0};
    ck_assert_msg(model_new_ops(&f.m, &levels_ops, &c, 17, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(model_work_blocks(f.m), 1); /* the sizes hook covers the build */
    rng_t r;
    rng_seed(&r, 5, 0);
    f.x = malloc(sizeof(real) * B * c.input_dim);
    f.y = malloc(sizeof(real) * B * T);
    f.pred = malloc(sizeof(real) * B * T);
    f.dpred = calloc((size_t)B * T, sizeof(real));
    for (int i = 0; i < B * c.input_dim; i++)
        f.x[i] = rng_normal(&r);
    for (int i = 0; i < B * T; i++)
        f.y[i] = rng_normal(&r);
    model_t *m = f.m;
    for (size_t i = 0; i < m->n_params; i++)
        if (m->params[i] == 0) m->params[i] = 0.1 * rng_normal(&r);
    model_zero_grad(m);
    model_forward(m, f.x, B, f.pred, MODEL_TRAIN);
    for (int k = 0; k < T; k++)
        loss_task_grad(TASK_REGRESSION, f.pred, f.y, B, T, k, k + 1, f.dpred);
    model_backward(m, f.x, B, f.dpred);
    real *analytic = malloc(sizeof(real) * m->n_params);
    memcpy(analytic, m->grads, sizeof(real) * m->n_params);
    for (int t = 0; t < m->n_tensors; t++) {
        const tensor_t *ts = &m->tensors[t];
        size_t worst = 0;
        double e = gradcheck(levels_loss, &f, m->params + ts->offset, analytic + ts->offset,
                             (size_t)ts->rows * ts->cols, &worst);
        ck_assert_msg(e < GRADCHECK_TOL, "L=%d: tensor %s element %zu: relative error %.3g", L,
                      ts->name, worst, e);
    }
    /* model_backward zeroes the activation gradients: a second pass (after
     * the forward passes of the check) adds exactly the same again. */
    model_forward(m, f.x, B, f.pred, MODEL_TRAIN);
    model_backward(m, f.x, B, f.dpred);
    for (size_t i = 0; i < m->n_params; i++)
        ck_assert(fabs(m->grads[i] - 2 * analytic[i]) <= 1e-12 * (1 + fabs(analytic[i])));
    free(analytic);
    free(f.x);
    free(f.y);
    free(f.pred);
    free(f.dpred);
    model_free(m);
}
END_TEST

/* 16 tasks x 5 levels: every one of the 85 gates is registered and measured
 * by the recorder (train_gate_stats), with its level, owner and kind; the
 * softmax gates' histograms lie on [0, 1]; the raw-weights gate's histogram
 * spans its own values (its extremes land in the first and last bins). */
START_TEST(test_many_gates_recorded) {
    const int T = 16, L = 5, n = 50;
    model_config_t c = levels_config(T, L, 8);
    model_t *m;
    err_t err = {0};
    ck_assert_msg(model_new_ops(&m, &levels_ops, &c, 3, &err) == 0, "%s", err.msg);
    model_sizes_t sz;
    ck_assert_int_eq(model_sizes_ops(&levels_ops, &c, &sz, &err), 0);
    const model_gate_t *views;
    const int n_gates = model_gates(m, &views);
    ck_assert_int_eq(n_gates, T * L + (L - 1) + 1);
    ck_assert_int_eq(sz.n_gates, n_gates);
    /* Task 1's last gate sharp enough for logits outside [0, 1]. */
    const tensor_t *sharp = &m->tensors[model_tensor_index(m, "l5.gate_t1.W")];
    for (int i = 0; i < sharp->rows * sharp->cols; i++)
        m->params[sharp->offset + i] *= 30;
    dataset_t split = {.n = n};
    split.x = malloc(sizeof(real) * n * c.input_dim);
    rng_t r;
    rng_seed(&r, 9, 0);
    for (int i = 0; i < n * c.input_dim; i++)
        split.x[i] = 3 * rng_normal(&r);
    gate_stats_t gs;
    ck_assert_msg(train_gate_stats(m, &split, &gs, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(gs.n_gates, n_gates);
    ck_assert_int_eq(gs.examples, n);
    int per_level[LEVELS_MAX + 1] = {0}, shared = 0, weights = 0;
    for (int g = 0; g < gs.n_gates; g++) {
        const gate_stat_t *s = &gs.gate[g];
        ck_assert_str_eq(s->name, views[g].name);
        ck_assert(s->level >= 1 && s->level <= L);
        per_level[s->level]++;
        shared += strcmp(s->owner, "shared") == 0;
        for (int e = 0; e < s->experts; e++) {
            long count = 0;
            for (int b = 0; b < GATE_HIST_BINS; b++)
                count += s->hist[e * GATE_HIST_BINS + b];
            ck_assert_int_eq(count, n);
        }
        if (s->kind == GATE_SOFTMAX) {
            ck_assert(s->lo == 0 && s->hi == 1);
            continue;
        }
        weights++;
        ck_assert_str_eq(s->name, "l5/t1/logits");
        ck_assert_str_eq(s->owner, "t1");
        /* the range is the values' own: min and max over the split */
        double lo = INFINITY, hi = -INFINITY;
        real pred[8 * 16];
        for (int start = 0; start < n; start += 8) {
            int B = n - start < 8 ? n - start : 8;
            model_forward(m, split.x + start * c.input_dim, B, pred, MODEL_EVAL);
            for (int b = 0; b < B; b++)
                for (int e = 0; e < 2; e++) {
                    double v = views[g].values[b * views[g].ld + e];
                    lo = fmin(lo, v);
                    hi = fmax(hi, v);
                }
        }
        ck_assert_msg(s->lo == lo && s->hi == hi && (lo < 0 || hi > 1),
                      "range %g..%g, values %g..%g", s->lo, s->hi, lo, hi);
        long first = 0, last = 0;
        for (int e = 0; e < 2; e++) {
            first += s->hist[e * GATE_HIST_BINS];
            last += s->hist[e * GATE_HIST_BINS + GATE_HIST_BINS - 1];
        }
        ck_assert(first >= 1 && last >= 1);
    }
    ck_assert_int_eq(weights, 1);
    ck_assert_int_eq(shared, L - 1);
    for (int l = 1; l <= L; l++)
        ck_assert_int_eq(per_level[l], T + (l < L) + (l == L));
    gate_stats_free(&gs);
    free(split.x);
    model_free(m);
}
END_TEST

/* The gate registry refuses what would corrupt the records. */
START_TEST(test_gate_registry_checks) {
    model_config_t c = levels_config(2, 1, 4);
    model_t *m;
    err_t err = {0};
    ck_assert_int_eq(model_new_ops(&m, &levels_ops, &c, 1, &err), 0);
    const model_gate_t *views;
    model_gates(m, &views);
    model_gate_t g = views[0];
    ck_assert_int_eq(model_add_gate(m, &g, &err), -1); /* same name */
    ck_assert_ptr_nonnull(strstr(err.msg, "two gates named l1/t1"));
    snprintf(g.name, sizeof g.name, "other");
    g.level = 0;
    ck_assert_int_eq(model_add_gate(m, &g, &err), -1);
    ck_assert_int_eq(err.kind, ERR_USAGE);
    model_free(m);
}
END_TEST

Suite *blocks_suite(void) {
    Suite *s = suite_create("blocks");
    TCase *tc = tcase_create("levels");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_levels_gradients, 0, 2);
    tcase_add_test(tc, test_many_gates_recorded);
    tcase_add_test(tc, test_gate_registry_checks);
    suite_add_tcase(s, tc);
    return s;
}
