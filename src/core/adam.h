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

typedef struct {
    size_t n;
    double lr, beta1, beta2, eps;
    long t;    /* steps taken */
    real *m;   /* [n] first moment */
    real *v;   /* [n] second moment */
} adam_t;

/* Defaults beta1 0.9, beta2 0.999, eps 1e-8 (TensorFlow/PyTorch defaults). */
int adam_init(adam_t *opt, size_t n, double lr, err_t *err);
void adam_free(adam_t *opt);
/* params[i] -= lr * mhat / (sqrt(vhat) + eps), with bias-corrected moments. */
void adam_step(adam_t *opt, real *params, const real *grads);

#endif
