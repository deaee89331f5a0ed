#include "core/adam.h"

#include <math.h>
#include <stdlib.h>

int adam_init(adam_t *opt, size_t n, double lr, err_t *err) {
    *opt = (adam_t){.n = n, .lr = lr, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
    opt->m = calloc(n ? n : 1, sizeof(real));
    opt->v = calloc(n ? n : 1, sizeof(real));
    if (!opt->m || !opt->v) {
        adam_free(opt);
        return err_set(err, ERR_FAIL, "out of memory for the Adam state (%zu parameters)", n);
    }
    return 0;
}

void adam_free(adam_t *opt) {
    free(opt->m);
    free(opt->v);
    opt->m = opt->v = NULL;
}

void adam_step(adam_t *opt, real *params, const real *grads) {
    opt->t++;
    /* Fold both bias corrections into the step size, as the paper's
     * "efficient version" does: lr_t = lr * sqrt(1-b2^t) / (1-b1^t), and
     * eps_hat = eps * sqrt(1-b2^t) keeps the result identical to the
     * textbook form mhat / (sqrt(vhat) + eps). */
    const double c2 = sqrt(1.0 - pow(opt->beta2, (double)opt->t));
    const real step = (real)(opt->lr * c2 / (1.0 - pow(opt->beta1, (double)opt->t)));
    const real eps = (real)(opt->eps * c2);
    const real b1 = (real)opt->beta1, b2 = (real)opt->beta2;
    real *m = opt->m, *v = opt->v;
    for (size_t i = 0; i < opt->n; i++) {
        real g = grads[i];
        m[i] = b1 * m[i] + (1 - b1) * g;
        v[i] = b2 * v[i] + (1 - b2) * g * g;
        params[i] -= step * m[i] / (sqrt(v[i]) + eps);
    }
}
