/* hard_concrete.c -- the hard concrete distribution (hard_concrete.h). */
#include "nn/hard_concrete.h"

#include <math.h>

/* σ(x) without overflow for large |x|. */
static double sigmoid(double x) {
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    const double e = exp(x);
    return e / (1.0 + e);
}

double hc_uniform(rng_t *rng) {
    return HC_EPS + (1.0 - 2.0 * HC_EPS) * rng_uniform(rng);
}

double hc_sample(const hc_params_t *p, double log_alpha, double u, double *dz_dla) {
    const double s = sigmoid((log(u) - log(1.0 - u) + log_alpha) / p->beta);
    const double sbar = s * (p->zeta - p->gamma) + p->gamma;
    double z, dz = 0;
    if (sbar <= 0) {
        z = 0;
    } else if (sbar >= 1) {
        z = 1;
    } else {
        z = sbar;
        dz = (p->zeta - p->gamma) * s * (1.0 - s) / p->beta;
    }
    if (dz_dla) *dz_dla = dz;
    return z;
}

double hc_p_open(const hc_params_t *p, double log_alpha, double *dp_dla) {
    const double q = sigmoid(log_alpha - p->beta * log(-p->gamma / p->zeta));
    double value = q, d = q * (1.0 - q);
    if (q < HC_EPS) {
        value = HC_EPS;
        d = 0;
    } else if (q > 1.0 - HC_EPS) {
        value = 1.0 - HC_EPS;
        d = 0;
    }
    if (dp_dla) *dp_dla = d;
    return value;
}

double hc_p_one(const hc_params_t *p, double log_alpha) {
    return sigmoid(log_alpha - p->beta * log((1.0 - p->gamma) / (p->zeta - 1.0)));
}

double hc_serving(const hc_params_t *p, double log_alpha) {
    const double sbar = sigmoid(log_alpha) * (p->zeta - p->gamma) + p->gamma;
    return sbar <= 0 ? 0 : sbar >= 1 ? 1 : sbar;
}

double hc_log_alpha_init(double droprate) {
    return log(1.0 - droprate) - log(droprate);
}
