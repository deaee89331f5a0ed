/* gradcheck.h -- finite-difference gradient checks (double build only).
 *
 * Tolerance: with central differences of step h = 1e-6 in double precision
 * the truncation error is O(h² f''') ~ 1e-12 and the round-off O(ε/h) ~ 1e-10
 * relative to the loss scale, so an error above ~1e-6 means a wrong backward
 * pass (a wrong formula gives errors of order 1).  ReLU kinks are crossed
 * with probability ~h per element at random points; GRADCHECK_TOL leaves room
 * for none, so the inputs used are generic random values. */
#ifndef MTLAB_GRADCHECK_H
#define MTLAB_GRADCHECK_H

#include <stddef.h>

#include "core/real.h"

#define GRADCHECK_STEP 1e-6
#define GRADCHECK_TOL 1e-6

/* Compares analytic[0..n) with central differences of loss(ctx) with respect
 * to theta[0..n) (perturbed in place and restored).  Returns the largest
 * error  |a - f| / max(1, |a|, |f|)  over the elements, and its index in
 * *worst (may be NULL). */
double gradcheck(double (*loss)(void *ctx), void *ctx, real *theta, const real *analytic,
                 size_t n, size_t *worst);

#endif
