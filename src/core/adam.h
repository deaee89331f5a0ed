/* adam.h -- Adam (Kingma & Ba) over one flat parameter buffer.
 *
 * A model keeps all its parameters in one contiguous buffer, with gradients in
 * a buffer of the same layout, so the optimiser is one loop over n numbers.
 * Models with a second group of parameters (MTNAS architecture logits) run a
 * second adam_t over that slice of the same buffer. */
#ifndef MTLAB_ADAM_H
#define MTLAB_ADAM_H

#include <stddef.h>

#include "core/err.h"
#include "core/real.h"

/* Slices of the buffer with a learning rate of their own: lr x scale over
 * [offset, offset + n) (a cross-stitch unit's multiplier, model.h
 * tensor_t.lr_scale).  At most ADAM_MAX_SCALED of them, in increasing order
 * of offset, disjoint. */
#define ADAM_MAX_SCALED 16
typedef struct {
    size_t offset, n;
    double scale;
} adam_scaled_t;

typedef struct {
    size_t n;
    double lr, beta1, beta2, eps;
    long t;    /* steps taken */
    real *m;   /* [n] first moment */
    real *v;   /* [n] second moment */
    int n_scaled;
    adam_scaled_t scaled[ADAM_MAX_SCALED];
} adam_t;

/* Defaults beta1 0.9, beta2 0.999, eps 1e-8 (TensorFlow/PyTorch defaults). */
int adam_init(adam_t *opt, size_t n, double lr, err_t *err);
void adam_free(adam_t *opt);
/* Gives params[offset, offset + n) the learning rate lr x scale (scale > 0),
 * after the slices given so far.  Returns 0, or -1 with *err (ERR_USAGE)
 * when the slice overlaps or precedes the last one, lies outside [0, opt->n),
 * or is one too many. */
int adam_set_scale(adam_t *opt, size_t offset, size_t n, double scale, err_t *err);
/* params[i] -= lr_i * mhat / (sqrt(vhat) + eps), with bias-corrected moments;
 * lr_i = lr x the scale of the slice holding i (1 outside every slice).
 * Element by element the update is the same whatever the slices, so a
 * buffer without scaled slices, or with scale 1, gets the same bits. */
void adam_step(adam_t *opt, real *params, const real *grads);

/* The update adam_step runs in the float build, over elements [0, n) with the
 * step's constants (step = lr_t and eps = eps_hat of adam.c): m, v, params
 * updated in place, bit for bit as the scalar form, on AVX-512 or AVX vectors
 * where the CPU has them.  Returns how many elements went through a vector
 * path (a multiple of 8; 0 without AVX).  Public so that the double-precision
 * test build can check it against the scalar form. */
size_t adam_update_f32(float *params, const float *grads, float *m, float *v, size_t n, float b1,
                       float b2, float step, float eps);

#endif
