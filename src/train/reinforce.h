/* reinforce.h -- REINFORCE over independent categorical choices, apart from
 * any model (MTNAS §3.2, following ProxylessNAS; mtl-models.md §13).
 *
 * A route is one choice per block: block b picks u_b in [0, choices[b])
 * with probability p_b = softmax(α_b), the logits α_b lying side by side in
 * one flat buffer α[n_logits] (block b at offset[b]).  The objective is the
 * expected reward J(α) = E_{u ~ p(α)} R(u); its REINFORCE estimate from K
 * routes u_1..u_K sampled from p and their rewards R_j is
 *     ∇α J ≈ (1/K) Σ_j (R_j − b) ∇α log p(u_j),   ∇α_b log p(u) = e_{u_b} − p_b,
 * with b a moving-average baseline of the rewards:
 *     b ← R̄ at the first update, then b ← decay·b + (1 − decay)·R̄
 * (R̄ the mean of the K rewards), updated BEFORE the gradient is formed, as
 * ProxylessNAS does (its b += 0.99 (R̄ − b) is decay = 0.01).  The logits
 * have an Adam of their own that MINIMISES −J: its gradient buffer gets
 * −(1/K) Σ_j (R_j − b)(e_{u_j} − p).
 *
 * Deterministic: sampling draws one rng_uniform per block, in block order. */
#ifndef MTLAB_REINFORCE_H
#define MTLAB_REINFORCE_H

#include <stddef.h>

#include "core/adam.h"
#include "core/err.h"
#include "core/real.h"
#include "core/rng.h"

/* The blocks and their choices: block b's logits are alpha[offset[b],
 * offset[b] + choices[b]). */
typedef struct {
    int n_blocks;
    int *choices;   /* [n_blocks], each >= 1 */
    size_t *offset; /* [n_blocks] */
    size_t n_logits;
} reinforce_space_t;

/* Copies choices[n_blocks].  Returns 0, or -1 with *err (ERR_USAGE for a
 * block without choices, ERR_FAIL out of memory). */
int reinforce_space_init(reinforce_space_t *s, int n_blocks, const int *choices, err_t *err);
void reinforce_space_free(reinforce_space_t *s);

/* p[choices[b]] = softmax of block b's logits (max-subtracted, in double). */
void reinforce_probs(const reinforce_space_t *s, const real *alpha, int b, double *p);
/* route[b] ~ p_b for every block: one rng_uniform per block, inverse CDF. */
void reinforce_sample(const reinforce_space_t *s, const real *alpha, rng_t *rng, int *route);
/* route[b] = argmax p_b (the lowest index among equal logits): the derived route. */
void reinforce_argmax(const reinforce_space_t *s, const real *alpha, int *route);
/* Entropy of p_b in nats (0 for one choice, log choices[b] at most). */
double reinforce_entropy(const reinforce_space_t *s, const real *alpha, int b);
/* log p(route) = Σ_b log p_b(route[b]). */
double reinforce_log_prob(const reinforce_space_t *s, const real *alpha, const int *route);
/* grad += weight · ∇α log p(route), i.e. weight·(e_{route[b]} − p_b) per block. */
void reinforce_score_grad(const reinforce_space_t *s, const real *alpha, const int *route,
                          double weight, real *grad);

/* The learner: the baseline and the logits' own Adam. */
typedef struct {
    double decay; /* baseline decay in [0, 1) */
    double lr;    /* the logits' Adam learning rate */
    double beta1; /* its first-moment decay (ProxylessNAS: 0) */
    int samples;  /* K routes per update, >= 1 */
} reinforce_config_t;

typedef struct {
    const reinforce_space_t *space; /* not owned */
    reinforce_config_t cfg;
    adam_t adam;     /* over the n_logits logits */
    real *grad;      /* [n_logits] the last update's gradient of −J */
    double baseline; /* valid once updates > 0 */
    long updates;
} reinforce_t;

/* Defaults: decay 0.9, lr 0.01 (MTNAS §4), beta1 0 (ProxylessNAS), 1 sample. */
void reinforce_config_default(reinforce_config_t *c);
/* Returns 0, or -1 with *err (ERR_USAGE for a bad config, naming the key:
 * decay outside [0, 1), lr not positive, samples < 1). */
int reinforce_init(reinforce_t *r, const reinforce_space_t *space, const reinforce_config_t *cfg,
                   err_t *err);
void reinforce_free(reinforce_t *r);
/* Updates the baseline with the mean of rewards[K] (K = cfg.samples) and
 * returns it: the b that reinforce_update subtracts. */
double reinforce_baseline(reinforce_t *r, const double *rewards);
/* One update from routes[K][n_blocks] (row j the j-th sampled route) and
 * their rewards[K]: the baseline (reinforce_baseline), grad = the estimate of
 * −∇J above, then one Adam step on alpha[n_logits]. */
void reinforce_update(reinforce_t *r, real *alpha, const int *routes, const double *rewards);

#endif
