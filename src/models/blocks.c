/* blocks.c -- the blocks of blocks.h. */
#include "models/blocks.h"

#include <assert.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "nn/layers.h"

int block_count(size_t *count, size_t a, size_t b, size_t c) {
    size_t bytes;
    if (size_mul3(count, a, b, c) || size_mul(&bytes, *count, sizeof(real))) return -1;
    return 0;
}

/* ---- dense ---- */

int dense_declare(model_t *m, dense_ref_t *d, const char *prefix, int in, int out, bool bias,
                  err_t *err) {
    char name[48];
    d->in = in;
    d->out = out;
    snprintf(name, sizeof name, "%s.W", prefix);
    d->W = model_declare(m, name, in, out, INIT_WEIGHT, TENSOR_WEIGHT);
    d->b = -1;
    if (bias) {
        snprintf(name, sizeof name, "%s.b", prefix);
        d->b = model_declare_bias(m, name, out, in);
    }
    if (d->W < 0 || (bias && d->b < 0))
        return err_set(err, ERR_FAIL, "out of memory declaring tensor %s", prefix);
    return 0;
}

static const real *bias_of(const model_t *m, const dense_ref_t *d) {
    return d->b >= 0 ? model_param(m, d->b) : NULL;
}

static real *bias_grad_of(const model_t *m, const dense_ref_t *d) {
    return d->b >= 0 ? model_grad(m, d->b) : NULL;
}

void dense_ref_forward(const model_t *m, const dense_ref_t *d, const real *in, int ldi, int B,
                       real *out, int ldo) {
    dense_forward_ld(out, ldo, in, ldi, model_param(m, d->W), bias_of(m, d), B, d->in, d->out);
}

void dense_ref_backward(model_t *m, const dense_ref_t *d, const real *in, int ldi, int B,
                        const real *dout, int ldo, real *din) {
    dense_backward_ld(din, ldi, model_grad(m, d->W), bias_grad_of(m, d), dout, ldo, in,
                      model_param(m, d->W), B, d->in, d->out);
}

void dense_ref_relu_forward(const model_t *m, const dense_ref_t *d, const real *in, int ldi, int B,
                            real *out, int ldo) {
    dense_relu_forward_ld(out, ldo, in, ldi, model_param(m, d->W), bias_of(m, d), B, d->in, d->out);
}

void dense_ref_relu_backward(model_t *m, const dense_ref_t *d, const real *in, int ldi, int B,
                             const real *y, real *dout, int ldo, real *din) {
    dense_relu_backward_ld(din, ldi, model_grad(m, d->W), bias_grad_of(m, d), dout, ldo, in,
                           model_param(m, d->W), y, B, d->in, d->out);
}

/* Parameters of a dense layer [in, out] (+ bias), added to *params. */
static int dense_params(size_t *params, int in, int out, bool bias) {
    size_t W;
    if (block_count(&W, in, out, 1) || size_add(params, *params, W) ||
        size_add(params, *params, bias ? (size_t)out : 0))
        return -1;
    return 0;
}

/* ---- experts ---- */

int experts_sizes(int in, int n, int h, int max_batch, bool own_buffers, size_t *params,
                  size_tally_t *act, err_t *err) {
    size_t nh, rows;
    if (size_mul(&nh, n, h) || nh > INT_MAX)
        return err_set(err, ERR_USAGE,
                       "%d experts x %d hidden units overflows a layer width (at most %d)", n, h,
                       INT_MAX);
    if (block_count(&rows, in, n, h))
        return err_set(err, ERR_USAGE, "%d experts x %d hidden units x %d inputs overflows", n, h,
                       in);
    if (block_count(&rows, max_batch, n, h))
        return err_set(err, ERR_USAGE, "max_batch %d x %d experts x %d hidden units overflows",
                       max_batch, n, h);
    *params = 0;
    if (dense_params(params, in, (int)nh, true))
        return err_set(err, ERR_USAGE, "%d experts x %d hidden units x %d inputs overflows", n, h,
                       in);
    if (own_buffers) size_tally_blocks(act, 2, rows, sizeof(real)); /* out, dout */
    return 0;
}

int experts_build(model_t *m, experts_t *e, const char *prefix, int in, int n, int h, real *out,
                  real *dout, int ld, err_t *err) {
    e->n = n;
    e->h = h;
    if (dense_declare(m, &e->layer, prefix, in, n * h, true, err)) return -1;
    if (out) {
        assert(dout && ld >= n * h);
        e->out = out;
        e->dout = dout;
        e->ld = ld;
        return 0;
    }
    e->ld = n * h;
    if (!(e->out = model_act(m, n * h, err)) || !(e->dout = model_act_grad(m, n * h, err)))
        return -1;
    return 0;
}

void experts_forward(const model_t *m, experts_t *e, const real *in, int ldi, int B) {
    dense_ref_relu_forward(m, &e->layer, in, ldi, B, e->out, e->ld);
}

void experts_backward(model_t *m, experts_t *e, const real *in, int ldi, int B, real *din) {
    dense_ref_relu_backward(m, &e->layer, in, ldi, B, e->out, e->dout, e->ld, din);
}

/* ---- gates ---- */

int gates_sizes(int in, int G, int n, bool bias, int max_batch, size_t *params, size_tally_t *act,
                err_t *err) {
    size_t gn, bg, rows;
    if (size_mul(&gn, G, n) || gn > INT_MAX)
        return err_set(err, ERR_USAGE, "%d gates x %d experts overflows a layer width (at most %d)",
                       G, n, INT_MAX);
    if (size_mul(&bg, max_batch, G) || bg > INT_MAX) /* softmax rows */
        return err_set(err, ERR_USAGE, "max_batch %d x %d gates overflows (at most %d rows)",
                       max_batch, G, INT_MAX);
    *params = 0;
    if (block_count(&rows, G, n, in) || dense_params(params, in, (int)gn, bias))
        return err_set(err, ERR_USAGE, "%d gates x %d experts x %d inputs overflows", G, n, in);
    if (block_count(&rows, max_batch, G, n))
        return err_set(err, ERR_USAGE, "max_batch %d x %d gates x %d experts overflows", max_batch,
                       G, n);
    size_tally_blocks(act, 4, rows, sizeof(real)); /* z, p, dz, dp */
    return 0;
}

int gates_build(model_t *m, gates_t *g, const char *prefix, int in, int G, int n, bool bias,
                err_t *err) {
    g->G = G;
    g->n = n;
    if (dense_declare(m, &g->logits, prefix, in, G * n, bias, err)) return -1;
    if (!(g->z = model_act(m, G * n, err)) || !(g->p = model_act(m, G * n, err)) ||
        !(g->dz = model_act_grad(m, G * n, err)) || !(g->dp = model_act_grad(m, G * n, err)))
        return -1;
    return 0;
}

int gates_register(model_t *m, const gates_t *g, int j, const char *name, int level,
                   const char *owner, err_t *err) {
    model_gate_t view = {.level = level,
                         .kind = GATE_SOFTMAX,
                         .experts = g->n,
                         .values = g->p + (size_t)j * g->n,
                         .ld = g->G * g->n};
    snprintf(view.name, sizeof view.name, "%s", name);
    snprintf(view.owner, sizeof view.owner, "%s", owner);
    if (strlen(name) >= sizeof view.name || strlen(owner) >= sizeof view.owner)
        return err_set(err, ERR_USAGE, "gate name '%s' or owner '%s' is too long", name, owner);
    return model_add_gate(m, &view, err);
}

void gates_forward(const model_t *m, gates_t *g, const real *in, int ldi, int B) {
    const int Gn = g->G * g->n;
    dense_ref_forward(m, &g->logits, in, ldi, B, g->z, Gn); /* z[B, G·n] = in · Wg (+ bg) */
    softmax_forward(g->p, g->z, B * g->G, g->n);            /* per gate: rows of n */
}

void gates_backward(model_t *m, gates_t *g, const real *in, int ldi, int B, real *din) {
    const int Gn = g->G * g->n;
    softmax_backward(g->dz, g->dp, g->p, B * g->G, g->n);
    dense_ref_backward(m, &g->logits, in, ldi, B, g->dz, Gn, din);
}

void gates_mix(const gates_t *g, int j, int col, const experts_t *e, int first, int count, int B,
               real *out, int ldo, bool accumulate) {
    assert(col + count <= g->n && first + count <= e->n);
    const real *p = g->p + (size_t)j * g->n + col;
    const real *experts = e->out + (size_t)first * e->h;
    const int ldg = g->G * g->n;
    if (accumulate)
        mixture_accumulate(out, ldo, p, ldg, experts, e->ld, B, count, e->h);
    else if (ldo == e->h && e->ld == count * e->h)
        mixture_forward(out, p, ldg, experts, B, count, e->h);
    else
        mixture_forward_ld(out, ldo, p, ldg, experts, e->ld, B, count, e->h);
}

void gates_mix_backward(gates_t *g, int j, int col, experts_t *e, int first, int count, int B,
                        const real *dout, int ldo) {
    const size_t gate_off = (size_t)j * g->n + col, expert_off = (size_t)first * e->h;
    mixture_backward_ld(g->dp + gate_off, g->G * g->n, e->dout + expert_off, e->ld, dout, ldo,
                        g->p + gate_off, e->out + expert_off, B, count, e->h);
}

/* ---- MLPs ---- */

int mlp_sizes(int in, int n_layers, const int *widths, int max_batch, size_t *params,
              size_tally_t *act, err_t *err) {
    assert(n_layers >= 1 && n_layers <= MLP_MAX_LAYERS);
    *params = 0;
    for (int l = 0, width_in = in; l < n_layers; width_in = widths[l++]) {
        size_t rows;
        if (dense_params(params, width_in, widths[l], true))
            return err_set(err, ERR_USAGE, "a layer of %d inputs x %d units overflows", width_in,
                           widths[l]);
        if (block_count(&rows, max_batch, widths[l], 1))
            return err_set(err, ERR_USAGE, "max_batch %d x %d units overflows", max_batch,
                           widths[l]);
        size_tally_blocks(act, 2, rows, sizeof(real)); /* h, dh */
    }
    return 0;
}

int mlp_build(model_t *m, mlp_t *p, const char *prefix, const char *const *names, int in,
              int n_layers, const int *widths, bool relu_last, err_t *err) {
    assert(n_layers >= 1 && n_layers <= MLP_MAX_LAYERS);
    p->n_layers = n_layers;
    p->relu_last = relu_last;
    for (int l = 0, width_in = in; l < n_layers; width_in = widths[l++]) {
        char name[48];
        if (!names)
            snprintf(name, sizeof name, "%s.l%d", prefix, l + 1);
        else if (names[l][0] == '\0')
            snprintf(name, sizeof name, "%s", prefix);
        else
            snprintf(name, sizeof name, "%s.%s", prefix, names[l]);
        if (dense_declare(m, &p->layer[l], name, width_in, widths[l], true, err)) return -1;
        if (!(p->h[l] = model_act(m, widths[l], err)) ||
            !(p->dh[l] = model_act_grad(m, widths[l], err)))
            return -1;
    }
    return 0;
}

void mlp_forward(const model_t *m, mlp_t *p, const real *in, int ldi, int B) {
    for (int l = 0; l < p->n_layers; l++) {
        const dense_ref_t *d = &p->layer[l];
        const real *x = l == 0 ? in : p->h[l - 1];
        const int ldx = l == 0 ? ldi : p->layer[l - 1].out;
        if (l < p->n_layers - 1 || p->relu_last)
            dense_ref_relu_forward(m, d, x, ldx, B, p->h[l], d->out); /* h_l = relu(x · W + b) */
        else
            dense_ref_forward(m, d, x, ldx, B, p->h[l], d->out); /* h_l = x · W + b */
    }
}

void mlp_backward(model_t *m, mlp_t *p, const real *in, int ldi, int B, real *din) {
    for (int l = p->n_layers - 1; l >= 0; l--) {
        const dense_ref_t *d = &p->layer[l];
        const real *x = l == 0 ? in : p->h[l - 1];
        const int ldx = l == 0 ? ldi : p->layer[l - 1].out;
        real *dx = l == 0 ? din : p->dh[l - 1];
        if (l < p->n_layers - 1 || p->relu_last)
            dense_ref_relu_backward(m, d, x, ldx, B, p->h[l], p->dh[l], d->out, dx);
        else
            dense_ref_backward(m, d, x, ldx, B, p->dh[l], d->out, dx);
    }
}

/* ---- towers ---- */

static const char *const tower_layer_names[] = {"hidden", "out"};

int tower_sizes(int in, int hidden, int max_batch, size_t *params, size_tally_t *act, err_t *err) {
    size_t W;
    if (block_count(&W, in, hidden, 1))
        return err_set(err, ERR_USAGE, "a tower of %d inputs x %d hidden units overflows", in,
                       hidden);
    if (block_count(&W, max_batch, hidden, 1))
        return err_set(err, ERR_USAGE, "max_batch %d x %d tower hidden units overflows", max_batch,
                       hidden);
    const int widths[] = {hidden, 1};
    return mlp_sizes(in, 2, widths, max_batch, params, act, err);
}

int tower_build(model_t *m, tower_t *t, const char *prefix, int in, int hidden, err_t *err) {
    const int widths[] = {hidden, 1};
    return mlp_build(m, &t->mlp, prefix, tower_layer_names, in, 2, widths, false, err);
}

void tower_forward(const model_t *m, tower_t *t, const real *in, int ldi, int B, real *pred, int T,
                   int k) {
    mlp_forward(m, &t->mlp, in, ldi, B); /* y[B, 1] = relu(in · W1 + b1) · W2 + b2 */
    const real *y = mlp_out(&t->mlp);
    for (int b = 0; b < B; b++)
        pred[(size_t)b * T + k] = y[b];
}

void tower_backward(model_t *m, tower_t *t, const real *in, int ldi, int B, const real *dpred,
                    int T, int k, real *din) {
    real *dy = mlp_dout(&t->mlp);
    for (int b = 0; b < B; b++)
        dy[b] = dpred[(size_t)b * T + k];
    mlp_backward(m, &t->mlp, in, ldi, B, din);
}

/* ---- fusion1: multi-level families (ml_mmoe, ple, cgc) ---- */

void level_widths(const model_config_t *c, int first, int levels, int *widths) {
    assert(levels >= 1 && levels <= MULTI_LEVEL_MAX);
    for (int l = 0; l < levels; l++) {
        const int own = l < LEVEL_WIDTH_KEYS ? model_hp_int(c, first + l) : 0;
        widths[l] = l == 0 || own > 0 ? own : widths[l - 1];
    }
}

experts_t experts_view(int n, int h, real *out, real *dout, int ld) {
    assert(ld >= n * h);
    return (experts_t){.layer = {.W = -1, .b = -1}, .n = n, .h = h, .out = out, .dout = dout,
                       .ld = ld};
}
/* ---- fusion3: parallel task columns ---- */

int columns_sizes(int in, int T, int L, int D, int max_batch, size_t *params, size_tally_t *act,
                  err_t *err) {
    assert(L >= 1 && L <= MLP_MAX_LAYERS && T >= 1 && T <= MODEL_MAX_TASKS);
    size_t TD, rows, column = 0;
    if (size_mul(&TD, T, D) || TD > INT_MAX)
        return err_set(err, ERR_USAGE, "%d columns x %d units overflows a layer width (at most %d)",
                       T, D, INT_MAX);
    if (block_count(&rows, max_batch, T, D))
        return err_set(err, ERR_USAGE, "max_batch %d x %d columns x %d units overflows", max_batch,
                       T, D);
    for (int l = 0; l < L; l++)
        if (dense_params(&column, l == 0 ? in : D, D, true))
            return err_set(err, ERR_USAGE, "a column layer of %d inputs x %d units overflows",
                           l == 0 ? in : D, D);
    if (size_mul(params, column, T))
        return err_set(err, ERR_USAGE, "%d columns of %zu parameters overflow", T, column);
    size_tally_blocks(act, 2 * (size_t)L, rows, sizeof(real)); /* h, dh per level */
    return 0;
}

int columns_build(model_t *m, columns_t *c, const char *prefix, int in, int T, int L, int D,
                  err_t *err) {
    *c = (columns_t){.T = T, .L = L, .D = D, .in = in};
    for (int t = 0; t < T; t++)
        for (int l = 0; l < L; l++) {
            char name[48];
            snprintf(name, sizeof name, "%s%d.l%d", prefix, t + 1, l + 1);
            if (dense_declare(m, &c->layer[l][t], name, l == 0 ? in : D, D, true, err)) return -1;
        }
    for (int l = 0; l < L; l++)
        if (!(c->h[l] = model_act(m, T * D, err)) || !(c->dh[l] = model_act_grad(m, T * D, err)))
            return -1;
    return 0;
}

void columns_forward(const model_t *m, columns_t *c, int l, const real *in, int ldi, int step,
                     int B) {
    const int TD = c->T * c->D;
    for (int t = 0; t < c->T; t++) /* h_t[B, D] = relu(in_t[B, in_l] · W_lt + b_lt) */
        dense_ref_relu_forward(m, &c->layer[l][t], in + (size_t)t * step, ldi, B,
                               c->h[l] + (size_t)t * c->D, TD);
}

void columns_backward(model_t *m, columns_t *c, int l, const real *in, int ldi, int step, int B,
                      real *din) {
    const int TD = c->T * c->D;
    for (int t = 0; t < c->T; t++) {
        const size_t out_col = (size_t)t * c->D;
        dense_ref_relu_backward(m, &c->layer[l][t], in + (size_t)t * step, ldi, B,
                                c->h[l] + out_col, c->dh[l] + out_col, TD,
                                din ? din + (size_t)t * step : NULL);
    }
}
