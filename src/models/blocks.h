/* blocks.h -- parameterised building blocks shared by model families.
 *
 * A block declares its tensors in the model's table at build time and keeps
 * only tensor indices, so it works on whatever buffer the model owns.  Blocks
 * that keep activations allocate them for cfg.max_batch rows at build time:
 * no allocation happens inside a training step. */
#ifndef MTLAB_BLOCKS_H
#define MTLAB_BLOCKS_H

#include <stdbool.h>

#include "models/model.h"

/* A dense layer y = x·W (+ b): W [in, out], b [out] (or none). */
typedef struct {
    int W, b; /* tensor indices; b = -1 without bias */
    int in, out;
} dense_ref_t;

int dense_declare(model_t *m, dense_ref_t *d, const char *prefix, int in, int out, bool bias,
                  err_t *err);
/* out[B, out] = in[B, in] · W + b */
void dense_ref_forward(const model_t *m, const dense_ref_t *d, const real *in, int B, real *out);
/* grads of W, b += ...;  din[B, in] += dout · Wᵀ (din may be NULL) */
void dense_ref_backward(model_t *m, const dense_ref_t *d, const real *in, int B,
                        const real *dout, real *din);

/* out[B, out] = relu(in[B, in] · W + b) */
void dense_ref_relu_forward(const model_t *m, const dense_ref_t *d, const real *in, int B,
                            real *out);
/* Backward of dense_ref_relu_forward, whose output was y: dout is OVERWRITTEN
 * with the gradient before the ReLU; grads of W, b += ...; din += ... (may be NULL) */
void dense_ref_relu_backward(model_t *m, const dense_ref_t *d, const real *in, int B,
                             const real *y, real *dout, real *din);

/* A task tower: one ReLU hidden layer, then a linear output (one column). */
typedef struct {
    dense_ref_t hidden, output;
    real *h;   /* [max_batch, hidden] post-ReLU activations */
    real *dh;  /* [max_batch, hidden] */
    real *y;   /* [max_batch, 1] */
    real *dy;  /* [max_batch, 1] */
} tower_t;

int tower_build(model_t *m, tower_t *t, const char *prefix, int in, int hidden, err_t *err);
/* What tower_build declares and allocates, without allocating: *params gets
 * its parameter count, *act its buffers for max_batch rows.  Returns 0, or
 * -1 with *err (ERR_USAGE) naming the size that overflows. */
int tower_sizes(int in, int hidden, int max_batch, size_t *params, size_tally_t *act, err_t *err);
void tower_free(tower_t *t);
/* pred[b, k] (row stride T) = tower(in[B, in]) */
void tower_forward(const model_t *m, tower_t *t, const real *in, int B, real *pred, int T, int k);
/* From dpred[:, k]: tower grads += ..., din[B, in] += ... */
void tower_backward(model_t *m, tower_t *t, const real *in, int B, const real *dpred, int T,
                    int k, real *din);

/* calloc of n reals that reports failure through err. */
real *block_alloc(size_t n, err_t *err);
/* *count = a * b * c reals.  Returns 0, or -1 when their bytes would exceed
 * SIZE_BYTES_MAX. */
int block_count(size_t *count, size_t a, size_t b, size_t c);

#endif
