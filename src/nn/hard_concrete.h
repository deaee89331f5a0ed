/* hard_concrete.h -- the hard concrete distribution and its L0 penalty
 * (Louizos, Welling & Kingma 2018; reference mtl-models.md §11), the coding
 * variables of SNR.
 *
 * A gate z in [0, 1] with location log α and hyper-parameters β (temperature),
 * γ < 0 < 1 < ζ (the stretch interval):
 *
 *   train-time sample, u ~ U(ε, 1 − ε), ε = 1e-6:
 *     s = σ((log u − log(1 − u) + log α) / β),  s̄ = s (ζ − γ) + γ,
 *     z = min(1, max(0, s̄))
 *   dz/dlog α = (ζ − γ) s (1 − s) / β  where 0 < s̄ < 1, else 0
 *
 *   P(z ≠ 0) = 1 − Q(s̄ ≤ 0) = σ(log α − β log(−γ / ζ))   ("p_open", the
 *     expected L0 of one gate), clamped to [1e-6, 1 − 1e-6] as the AMLab
 *     code clamps Q; its derivative q (1 − q) inside the clamp, 0 outside
 *   P(z = 1) = σ(log α − β log((1 − γ) / (ζ − 1)))
 *   serving estimator ẑ = min(1, max(0, σ(log α) (ζ − γ) + γ))
 *
 * With the defaults β = 2/3, γ = −0.1, ζ = 1.1 and log α = 0:
 * P(z = 0) = P(z = 1) = 0.168 (tested against 10⁵ draws); ẑ = 0 exactly when
 * log α < −log 11 = −2.398.
 *
 * Everything here is a pure function of its arguments, in double. */
#ifndef MTLAB_HARD_CONCRETE_H
#define MTLAB_HARD_CONCRETE_H

#include "core/rng.h"

#define HC_BETA_DEFAULT  (2.0 / 3.0)
#define HC_GAMMA_DEFAULT (-0.1)
#define HC_ZETA_DEFAULT  1.1
#define HC_EPS           1e-6 /* u in [ε, 1 − ε]; P(z ≠ 0) in [ε, 1 − ε] */

typedef struct {
    double beta;  /* temperature, > 0 */
    double gamma; /* lower end of the stretch, < 0 */
    double zeta;  /* upper end of the stretch, > 1 */
} hc_params_t;

/* One uniform for a sample: U(ε, 1 − ε) from one draw of rng. */
double hc_uniform(rng_t *rng);
/* The sample z for noise u and location log_alpha; *dz_dla (may be NULL)
 * receives dz/dlog α (0 where z is clipped to 0 or 1). */
double hc_sample(const hc_params_t *p, double log_alpha, double u, double *dz_dla);
/* P(z ≠ 0) and (dp_dla may be NULL) its derivative in log α. */
double hc_p_open(const hc_params_t *p, double log_alpha, double *dp_dla);
/* P(z = 1). */
double hc_p_one(const hc_params_t *p, double log_alpha);
/* The serving estimate ẑ. */
double hc_serving(const hc_params_t *p, double log_alpha);
/* The log α at which a fraction p0 of gates would be dropped under the
 * AMLab initialisation: log(1 − p0) − log(p0) (p0 in (0, 1)). */
double hc_log_alpha_init(double droprate);

#endif
