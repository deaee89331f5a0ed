/* tensor_factorization.c -- Tucker tensor-factorised multi-task layers (Yang
 * & Hospedales, DMTRL; MMoE §6.1; reference mtl-models.md §10).
 *
 * One column per task of column_layers dense ReLU layers of column_hidden
 * units whose weights are one Tucker-factored tensor per layer: for a layer of
 * m inputs and n outputs,
 *
 *     W[a, b, t] = Σ_{i1,i2,i3} S[i1, i2, i3] U1[a, i1] U2[b, i2] U3[t, i3],
 *
 * task t using W_t = W[:, :, t] [m, n] with a bias b_t of its own; then a
 * tower per task.  Stored tensors of layer l ("tf<l>."): U1 [m, r1], U2
 * [n, r2], U3 [T, r3], the core S as its mode-3 unfolding [r3, r1·r2]
 * (S[i3, i1·r2 + i2]) and the biases b [T, n].  Ranks: rank1..rank3, 0 =
 * full (m, n, T), and a rank above its dimension is taken as full.
 *
 * Forward (derived, §10): M = U3 · S [T, r1·r2], M_t [r1, r2] its row t;
 * h_t = relu(((in_t U1) M_t) U2ᵀ + b_t).  The first layer's input x is
 * shared, so x·U1 is computed once; a later layer's inputs [B, T·n] are
 * read as [B·T, n], so in·U1 and C·U2ᵀ are one GEMM for all tasks.
 * Backward with A = in U1, C = A M_t, δ = ∂(pre-activation):
 *     ∂U2 += δᵀ C;  ∂C = δ U2;  ∂M_t = A_tᵀ ∂C_t;  ∂A_t = ∂C_t M_tᵀ;
 *     ∂U1 += inᵀ ∂A;  ∂in += ∂A U1ᵀ;  ∂S += U3ᵀ ∂M;  ∂U3 += ∂M Sᵀ.
 *
 * Initialisation (init_custom; DMTRL's HOSVD of pre-trained single-task nets
 * is not done here): U_i ~ U(±√(3/dim_i)) (variance 1/dim_i), S ~
 * U(±a √(m n T / (r1 r2 r3))) with a the bound model.init gives an [m, n]
 * weight, so every W_t's entries have the variance of that scheme's W;
 * biases as the scheme's (zero but for torch, U(±1/√m)). */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "models/blocks.h"
#include "nn/layers.h"

enum { TF_HIDDEN, TF_LAYERS, TF_TOWER_HIDDEN, TF_RANK1, TF_RANK2, TF_RANK3, TF_INIT, TF_N_HP };

static const model_hp_t tensor_factorization_hp[TF_N_HP] = {
    [TF_HIDDEN] = {"column_hidden", HP_INT, 1, 1e6, 64,
                   "units of each factorised hidden layer of a task"},
    [TF_LAYERS] = {"column_layers", HP_INT, 1, MLP_MAX_LAYERS, 1,
                   "factorised hidden layers per task"},
    [TF_TOWER_HIDDEN] = {"tower_hidden", HP_INT, 1, 1e6, 8, "hidden units of each task tower"},
    [TF_RANK1] = {"rank1", HP_INT, 0, 1e6, 16,
                  "Tucker rank of the input mode (0 or above the layer's inputs: full)"},
    [TF_RANK2] = {"rank2", HP_INT, 0, 1e6, 0,
                  "Tucker rank of the output mode (0 or above column_hidden: full)"},
    [TF_RANK3] = {"rank3", HP_INT, 0, 1e6, 0,
                  "Tucker rank of the task mode (0 or above the task count: full)"},
    [TF_INIT] = MODEL_HP_INIT,
};

typedef struct {
    int m, n, r1, r2, r3;
    int U1, U2, U3, S, b; /* tensors */
    real *A, *dA;         /* [max_batch·T, r1] in·U1 (first layer: [max_batch, r1]) */
    real *C, *dC;         /* [max_batch·T, r2] A_t·M_t, row (b, t) */
    real *M, *dM;         /* [T, r1·r2] the tasks' core slices U3·S */
    real *h, *dh;         /* [max_batch, T·n] post-ReLU outputs, task t at t·n */
} tf_layer_t;

typedef struct {
    int L;
    tf_layer_t layer[MLP_MAX_LAYERS];
    tower_t tower[MODEL_MAX_TASKS];
} tensor_factorization_t;

static int rank_of(double hp, int dim) {
    return hp == 0 || hp > dim ? dim : (int)hp;
}

/* The shape of layer l (m, n and the ranks). */
static tf_layer_t layer_shape(const model_config_t *c, int l) {
    const int D = model_hp_int(c, TF_HIDDEN), m = l == 0 ? c->input_dim : D;
    return (tf_layer_t){.m = m,
                        .n = D,
                        .r1 = rank_of(c->hp[TF_RANK1], m),
                        .r2 = rank_of(c->hp[TF_RANK2], D),
                        .r3 = rank_of(c->hp[TF_RANK3], c->tasks)};
}

static int tensor_factorization_sizes(const model_config_t *c, model_sizes_t *out, err_t *err) {
    const int T = c->tasks, B = c->max_batch, L = model_hp_int(c, TF_LAYERS);
    size_t params = 0;
    for (int l = 0; l < L; l++) {
        const tf_layer_t s = layer_shape(c, l);
        size_t U1, U2, U3, S, rows_a, rows_c, core, h;
        if (block_count(&U1, s.m, s.r1, 1) || block_count(&U2, s.n, s.r2, 1) ||
            block_count(&U3, T, s.r3, 1) || block_count(&core, s.r1, s.r2, 1) || core > INT_MAX ||
            block_count(&S, s.r3, s.r1, s.r2) || block_count(&rows_a, B, T, s.r1) ||
            block_count(&rows_c, B, T, s.r2) || block_count(&h, B, T, s.n) ||
            (size_t)T * s.n > INT_MAX || (size_t)T * s.r1 > INT_MAX || (size_t)T * s.r2 > INT_MAX ||
            (size_t)B * T > INT_MAX || size_add(&params, params, U1) ||
            size_add(&params, params, U2) || size_add(&params, params, U3) ||
            size_add(&params, params, S) || size_add(&params, params, (size_t)T * s.n))
            return err_set(err, ERR_USAGE,
                           "layer %d: %d inputs x %d units x %d tasks (ranks %d, %d, %d) with "
                           "max_batch %d overflows",
                           l + 1, s.m, s.n, T, s.r1, s.r2, s.r3, B);
        size_tally_blocks(&out->act, 2, rows_a, sizeof(real));   /* A, dA */
        size_tally_blocks(&out->act, 2, rows_c, sizeof(real));   /* C, dC */
        size_tally_blocks(&out->act, 2, core * T, sizeof(real)); /* M, dM */
        size_tally_blocks(&out->act, 2, h, sizeof(real));        /* h, dh */
    }
    size_t tower, towers;
    size_tally_t tower_act = {0};
    if (tower_sizes(model_hp_int(c, TF_HIDDEN), model_hp_int(c, TF_TOWER_HIDDEN), B, &tower,
                    &tower_act, err))
        return -1;
    for (int t = 0; t < T; t++)
        size_tally_add(&out->act, &tower_act);
    if (size_mul(&towers, tower, T) || size_add(&out->n_params, params, towers))
        return err_set(err, ERR_USAGE, "the parameter count overflows");
    out->n_weights = out->n_params;
    out->n_tensors = 5 * L + 4 * T;
    out->state_bytes = sizeof(tensor_factorization_t);
    return 0;
}

static int tensor_factorization_build(model_t *m, err_t *err) {
    const model_config_t *c = &m->cfg;
    const int T = c->tasks, L = model_hp_int(c, TF_LAYERS);
    tensor_factorization_t *s = model_work(m, sizeof *s, err);
    if (!s) return -1;
    m->impl = s;
    s->L = L;
    char name[48];
    for (int l = 0; l < L; l++) {
        tf_layer_t *y = &s->layer[l];
        *y = layer_shape(c, l);
        const struct {
            const char *what;
            int rows, cols, *index;
        } tensors[] = {{"U1", y->m, y->r1, &y->U1},
                       {"U2", y->n, y->r2, &y->U2},
                       {"U3", T, y->r3, &y->U3},
                       {"S", y->r3, y->r1 * y->r2, &y->S},
                       {"b", T, y->n, &y->b}};
        for (int i = 0; i < 5; i++) {
            snprintf(name, sizeof name, "tf%d.%s", l + 1, tensors[i].what);
            *tensors[i].index = model_declare(m, name, tensors[i].rows, tensors[i].cols,
                                              INIT_CUSTOM, TENSOR_WEIGHT);
            if (*tensors[i].index < 0)
                return err_set(err, ERR_FAIL, "out of memory declaring %s", name);
        }
        const size_t core = (size_t)y->r1 * y->r2;
        if (!(y->A = model_act(m, T * y->r1, err)) || !(y->dA = model_act(m, T * y->r1, err)) ||
            !(y->C = model_act(m, T * y->r2, err)) || !(y->dC = model_act(m, T * y->r2, err)) ||
            !(y->M = model_work(m, sizeof(real) * core * T, err)) ||
            !(y->dM = model_work(m, sizeof(real) * core * T, err)) ||
            !(y->h = model_act(m, T * y->n, err)) || !(y->dh = model_act_grad(m, T * y->n, err)))
            return -1;
    }
    for (int t = 0; t < T; t++) {
        snprintf(name, sizeof name, "tower%d", t + 1);
        if (tower_build(m, &s->tower[t], name, model_hp_int(c, TF_HIDDEN),
                        model_hp_int(c, TF_TOWER_HIDDEN), err))
            return -1;
    }
    return 0;
}

static void fill_uniform(real *p, size_t n, double a, rng_t *rng) {
    for (size_t i = 0; i < n; i++)
        p[i] = (real)(a * (2.0 * rng_uniform(rng) - 1.0));
}

static void tensor_factorization_init(model_t *m, rng_t *rng) {
    const tensor_factorization_t *s = m->impl;
    const int T = m->cfg.tasks;
    const model_init_t scheme = (model_init_t)model_hp_value(m, "init", MODEL_INIT_GLOROT);
    for (int l = 0; l < s->L; l++) {
        const tf_layer_t *y = &s->layer[l];
        const double fan_in = y->m, fan_out = y->n;
        const double a = scheme == MODEL_INIT_TORCH ? 1.0 / sqrt(fan_in)
                         : scheme == MODEL_INIT_HE  ? sqrt(6.0 / fan_in)
                                                    : sqrt(6.0 / (fan_in + fan_out));
        fill_uniform(model_param(m, y->U1), (size_t)y->m * y->r1, sqrt(3.0 / y->m), rng);
        fill_uniform(model_param(m, y->U2), (size_t)y->n * y->r2, sqrt(3.0 / y->n), rng);
        fill_uniform(model_param(m, y->U3), (size_t)T * y->r3, sqrt(3.0 / T), rng);
        const double ranks = (double)y->r1 * y->r2 * y->r3;
        fill_uniform(model_param(m, y->S), (size_t)y->r3 * y->r1 * y->r2,
                     a * sqrt(fan_in * fan_out * T / ranks), rng);
        if (scheme == MODEL_INIT_TORCH)
            fill_uniform(model_param(m, y->b), (size_t)T * y->n, 1.0 / sqrt(fan_in), rng);
    }
}

/* db[n] += dz[n], in blocks of 8 the compiler vectorises at -O2 (the sum
 * over rows keeps its order: one row after the other). */
static void add_row(real *restrict db, const real *restrict dz, int n) {
    int j = 0;
    for (; j + 8 <= n; j += 8)
        for (int k = 0; k < 8; k++)
            db[j + k] += dz[j + k];
    for (; j < n; j++)
        db[j] += dz[j];
}

/* Layer l forward: y->h from in (x[B, d] for l = 0, else the previous
 * layer's h[B, T·m]). */
static void layer_forward(const model_t *m, tf_layer_t *y, int l, const real *in, int B) {
    const int T = m->cfg.tasks, r12 = y->r1 * y->r2;
    /* M[T, r1·r2] = U3[T, r3] · S[r3, r1·r2] */
    gemm(false, false, T, r12, y->r3, 1, model_param(m, y->U3), y->r3, model_param(m, y->S), r12, 0,
         y->M, r12);
    const real *U1 = model_param(m, y->U1);
    if (l == 0) /* A[B, r1] = x[B, d] · U1[d, r1], shared by the tasks */
        gemm(false, false, B, y->r1, y->m, 1, in, y->m, U1, y->r1, 0, y->A, y->r1);
    else /* A[B·T, r1] = in[B·T, m] · U1[m, r1] */
        gemm(false, false, B * T, y->r1, y->m, 1, in, y->m, U1, y->r1, 0, y->A, y->r1);
    for (int t = 0; t < T; t++) { /* C_t[B, r2] (rows of stride T·r2) = A_t[B, r1] · M_t[r1, r2] */
        const real *A_t = l == 0 ? y->A : y->A + (size_t)t * y->r1;
        const int lda = l == 0 ? y->r1 : T * y->r1;
        gemm(false, false, B, y->r2, y->r1, 1, A_t, lda, y->M + (size_t)t * r12, y->r2, 0,
             y->C + (size_t)t * y->r2, T * y->r2);
    }
    /* h[B·T, n] = relu(C[B·T, r2] · U2ᵀ[r2, n] + b_t): the biases b[T, n] are
     * one row [T·n] of h, copied into every row before the GEMM adds to it */
    const size_t Tn = (size_t)T * y->n;
    for (int b = 0; b < B; b++)
        memcpy(y->h + b * Tn, model_param(m, y->b), sizeof(real) * Tn);
    gemm(false, true, B * T, y->n, y->r2, 1, y->C, y->r2, model_param(m, y->U2), y->r2, 1, y->h,
         y->n);
    relu_forward(y->h, (size_t)B * Tn);
}

/* Layer l backward from y->dh (overwritten with the pre-activation
 * gradient); din[B·T, m] += ... (l > 0). */
static void layer_backward(model_t *m, tf_layer_t *y, int l, const real *in, int B, real *din) {
    const int T = m->cfg.tasks, r12 = y->r1 * y->r2, BT = B * T;
    real *delta = y->dh;
    const size_t Tn = (size_t)T * y->n;
    relu_backward(delta, y->h, (size_t)B * Tn); /* δ = ∂h ⊙ [h > 0] */
    for (int b = 0; b < B; b++)                 /* ∂b[T, n] += Σ_b δ[b] (rows of T·n) */
        add_row(model_grad(m, y->b), delta + b * Tn, (int)Tn);
    /* ∂U2[n, r2] += δᵀ[n, B·T] · C[B·T, r2];  ∂C[B·T, r2] = δ · U2[n, r2] */
    gemm(true, false, y->n, y->r2, BT, 1, delta, y->n, y->C, y->r2, 1, model_grad(m, y->U2), y->r2);
    gemm(false, false, BT, y->r2, y->n, 1, delta, y->n, model_param(m, y->U2), y->r2, 0, y->dC,
         y->r2);
    for (int t = 0; t < T; t++) {
        const real *A_t = l == 0 ? y->A : y->A + (size_t)t * y->r1;
        real *dA_t = l == 0 ? y->dA : y->dA + (size_t)t * y->r1;
        const int lda = l == 0 ? y->r1 : T * y->r1;
        const real *dC_t = y->dC + (size_t)t * y->r2;
        /* ∂M_t[r1, r2] = A_tᵀ[r1, B] · ∂C_t[B, r2] */
        gemm(true, false, y->r1, y->r2, B, 1, A_t, lda, dC_t, T * y->r2, 0, y->dM + (size_t)t * r12,
             y->r2);
        /* ∂A_t[B, r1] (=, or += over the tasks for the shared first layer) = ∂C_t · M_tᵀ */
        gemm(false, true, B, y->r1, y->r2, 1, dC_t, T * y->r2, y->M + (size_t)t * r12, y->r2,
             l == 0 && t > 0 ? 1 : 0, dA_t, lda);
    }
    const int rows = l == 0 ? B : BT; /* of in and ∂A */
    /* ∂U1[m, r1] += inᵀ[m, rows] · ∂A[rows, r1];  ∂in[rows, m] += ∂A · U1ᵀ */
    gemm(true, false, y->m, y->r1, rows, 1, in, y->m, y->dA, y->r1, 1, model_grad(m, y->U1), y->r1);
    if (din)
        gemm(false, true, rows, y->m, y->r1, 1, y->dA, y->r1, model_param(m, y->U1), y->r1, 1, din,
             y->m);
    /* ∂S[r3, r1·r2] += U3ᵀ[r3, T] · ∂M[T, r1·r2];  ∂U3[T, r3] += ∂M · Sᵀ[r1·r2, r3] */
    gemm(true, false, y->r3, r12, T, 1, model_param(m, y->U3), y->r3, y->dM, r12, 1,
         model_grad(m, y->S), r12);
    gemm(false, true, T, y->r3, r12, 1, y->dM, r12, model_param(m, y->S), r12, 1,
         model_grad(m, y->U3), y->r3);
}

static void tensor_factorization_forward(model_t *m, const real *x, int B, real *pred,
                                         model_mode_t mode) {
    (void)mode;
    tensor_factorization_t *s = m->impl;
    const int T = m->cfg.tasks;
    for (int l = 0; l < s->L; l++)
        layer_forward(m, &s->layer[l], l, l == 0 ? x : s->layer[l - 1].h, B);
    const tf_layer_t *last = &s->layer[s->L - 1];
    for (int t = 0; t < T; t++)
        tower_forward(m, &s->tower[t], last->h + (size_t)t * last->n, T * last->n, B, pred, T, t);
}

static void tensor_factorization_backward(model_t *m, const real *x, int B, const real *dpred) {
    tensor_factorization_t *s = m->impl;
    const int T = m->cfg.tasks;
    tf_layer_t *last = &s->layer[s->L - 1];
    for (int t = 0; t < T; t++)
        tower_backward(m, &s->tower[t], last->h + (size_t)t * last->n, T * last->n, B, dpred, T, t,
                       last->dh + (size_t)t * last->n);
    for (int l = s->L - 1; l >= 0; l--)
        layer_backward(m, &s->layer[l], l, l == 0 ? x : s->layer[l - 1].h, B,
                       l == 0 ? NULL : s->layer[l - 1].dh);
}

/* The products of one step (2 FLOPs per multiply-add), as layer_forward and
 * layer_backward run them, and the towers' by the generic rule (model.h). */
static uint64_t tensor_factorization_flops(const model_t *m, int B) {
    const tensor_factorization_t *s = m->impl;
    const uint64_t T = (uint64_t)m->cfg.tasks, b = (uint64_t)B;
    uint64_t f = 0;
    for (int l = 0; l < s->L; l++) {
        const tf_layer_t *y = &s->layer[l];
        const uint64_t m_in = y->m, n = y->n, r1 = y->r1, r2 = y->r2, r3 = y->r3;
        const uint64_t rows = l == 0 ? b : b * T; /* of the input and of A */
        f += 2 * 2 * T * r3 * r1 * r2;            /* M = U3 S; ∂S, ∂U3: +2 more */
        f += 2 * T * r3 * r1 * r2;
        f += (l == 0 ? 2 : 3) * 2 * rows * m_in * r1; /* A = in U1; ∂U1; ∂in (l > 0) */
        f += 3 * 2 * b * T * r1 * r2;                 /* C_t = A_t M_t; ∂M_t; ∂A_t */
        f += 3 * 2 * b * T * r2 * n;                  /* h = C U2ᵀ; ∂U2; ∂C */
    }
    const tower_t *tw = &s->tower[0];
    for (int i = 0; i < tw->mlp.n_layers; i++)
        f += T * 3 * 2 * b * (uint64_t)tw->mlp.layer[i].in * (uint64_t)tw->mlp.layer[i].out;
    return f;
}

const model_ops_t model_tensor_factorization_ops = {
    .name = "tensor_factorization",
    .summary = "per-task hidden layers whose weights are one Tucker-factored tensor (core + 3 "
               "factors), per-task biases, towers (rank1 16)",
    .hp = tensor_factorization_hp,
    .n_hp = TF_N_HP,
    .sizes = tensor_factorization_sizes,
    .build = tensor_factorization_build,
    .forward = tensor_factorization_forward,
    .backward = tensor_factorization_backward,
    .init_custom = tensor_factorization_init,
    .step_flops = tensor_factorization_flops,
};
