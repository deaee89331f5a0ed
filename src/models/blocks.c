#include "models/blocks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/layers.h"

real *block_alloc(size_t n, err_t *err) {
    real *p = calloc(n ? n : 1, sizeof(real));
    if (!p) err_set(err, ERR_FAIL, "out of memory for a %zu-value activation buffer", n);
    return p;
}

int block_count(size_t *count, size_t a, size_t b, size_t c) {
    size_t bytes;
    if (size_mul3(count, a, b, c) || size_mul(&bytes, *count, sizeof(real))) return -1;
    return 0;
}

int dense_declare(model_t *m, dense_ref_t *d, const char *prefix, int in, int out, bool bias,
                  err_t *err) {
    char name[48];
    d->in = in;
    d->out = out;
    snprintf(name, sizeof name, "%s.W", prefix);
    d->W = model_declare(m, name, in, out, INIT_GLOROT, TENSOR_WEIGHT);
    d->b = -1;
    if (bias) {
        snprintf(name, sizeof name, "%s.b", prefix);
        d->b = model_declare(m, name, 1, out, INIT_ZERO, TENSOR_WEIGHT);
    }
    if (d->W < 0 || (bias && d->b < 0))
        return err_set(err, ERR_FAIL, "out of memory declaring tensor %s", prefix);
    return 0;
}

void dense_ref_forward(const model_t *m, const dense_ref_t *d, const real *in, int B, real *out) {
    dense_forward(out, in, model_param(m, d->W), d->b >= 0 ? model_param(m, d->b) : NULL, B,
                  d->in, d->out);
}

void dense_ref_backward(model_t *m, const dense_ref_t *d, const real *in, int B,
                        const real *dout, real *din) {
    dense_backward(din, model_grad(m, d->W), d->b >= 0 ? model_grad(m, d->b) : NULL, dout, in,
                   model_param(m, d->W), B, d->in, d->out);
}

void dense_ref_relu_forward(const model_t *m, const dense_ref_t *d, const real *in, int B,
                            real *out) {
    dense_relu_forward(out, in, model_param(m, d->W), d->b >= 0 ? model_param(m, d->b) : NULL, B,
                       d->in, d->out);
}

void dense_ref_relu_backward(model_t *m, const dense_ref_t *d, const real *in, int B,
                             const real *y, real *dout, real *din) {
    dense_relu_backward(din, model_grad(m, d->W), d->b >= 0 ? model_grad(m, d->b) : NULL, dout,
                        in, model_param(m, d->W), y, B, d->in, d->out);
}

int tower_build(model_t *m, tower_t *t, const char *prefix, int in, int hidden, err_t *err) {
    char name[48];
    snprintf(name, sizeof name, "%s.hidden", prefix);
    if (dense_declare(m, &t->hidden, name, in, hidden, true, err)) return -1;
    snprintf(name, sizeof name, "%s.out", prefix);
    if (dense_declare(m, &t->output, name, hidden, 1, true, err)) return -1;
    size_t B = (size_t)m->cfg.max_batch;
    if (!(t->h = block_alloc(B * hidden, err)) || !(t->dh = block_alloc(B * hidden, err)) ||
        !(t->y = block_alloc(B, err)) || !(t->dy = block_alloc(B, err)))
        return -1;
    return 0;
}

int tower_sizes(int in, int hidden, int max_batch, size_t *params, size_tally_t *act, err_t *err) {
    size_t W, rows;
    if (block_count(&W, in, hidden, 1))
        return err_set(err, ERR_USAGE, "a tower of %d inputs x %d hidden units overflows", in,
                       hidden);
    if (block_count(&rows, max_batch, hidden, 1))
        return err_set(err, ERR_USAGE, "max_batch %d x %d tower hidden units overflows", max_batch,
                       hidden);
    /* hidden.W [in, H], hidden.b [H], out.W [H, 1], out.b [1] */
    if (size_add(params, W, 2 * (size_t)hidden + 1))
        return err_set(err, ERR_USAGE, "a tower of %d inputs x %d hidden units overflows", in,
                       hidden);
    size_tally_blocks(act, 2, rows, sizeof(real));              /* h, dh */
    size_tally_blocks(act, 2, (size_t)max_batch, sizeof(real)); /* y, dy */
    return 0;
}

void tower_free(tower_t *t) {
    free(t->h);
    free(t->dh);
    free(t->y);
    free(t->dy);
}

void tower_forward(const model_t *m, tower_t *t, const real *in, int B, real *pred, int T, int k) {
    dense_ref_relu_forward(m, &t->hidden, in, B, t->h); /* h[B, H] = relu(in · W1 + b1) */
    dense_ref_forward(m, &t->output, t->h, B, t->y); /* y[B, 1] = h · W2 + b2 */
    for (int b = 0; b < B; b++) pred[(size_t)b * T + k] = t->y[b];
}

void tower_backward(model_t *m, tower_t *t, const real *in, int B, const real *dpred, int T,
                    int k, real *din) {
    int H = t->hidden.out;
    for (int b = 0; b < B; b++) t->dy[b] = dpred[(size_t)b * T + k];
    memset(t->dh, 0, sizeof(real) * B * H);
    dense_ref_backward(m, &t->output, t->h, B, t->dy, t->dh);
    dense_ref_relu_backward(m, &t->hidden, in, B, t->h, t->dh, din);
}
