#include "gradcheck.h"

#include <math.h>

double gradcheck(double (*loss)(void *ctx), void *ctx, real *theta, const real *analytic,
                 size_t n, size_t *worst) {
    double max_err = 0;
    for (size_t i = 0; i < n; i++) {
        real saved = theta[i];
        theta[i] = saved + GRADCHECK_STEP;
        double up = loss(ctx);
        theta[i] = saved - GRADCHECK_STEP;
        double down = loss(ctx);
        theta[i] = saved;
        double numeric = (up - down) / (2 * GRADCHECK_STEP);
        double a = analytic[i];
        double scale = fmax(1.0, fmax(fabs(a), fabs(numeric)));
        double e = fabs(a - numeric) / scale;
        if (e > max_err || isnan(e)) {
            max_err = isnan(e) ? INFINITY : e;
            if (worst) *worst = i;
        }
    }
    return max_err;
}
