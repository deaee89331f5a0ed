/* synth.h -- the synthetic multi-task generator of SPEC §3 (MMoE §3.2,
 * generalised to T tasks with a prescribed task-correlation matrix R).
 *
 *   1. u_1..u_T orthonormal in R^d (Gaussian draws, Gram-Schmidt)
 *   2. R = L Lᵀ (Cholesky; semidefinite R allowed, non-PSD R rejected);
 *      w_k = c · Σ_j L_kj u_j, so cos(w_i, w_j) = R_ij and |w_k| = c
 *   3. x ~ N(0, I_d)
 *   4. y_k = w_kᵀx + Σ_{i=1..m} sin(α_i w_kᵀx + β_i) + ε_k,  ε_k ~ N(0, σ²)
 *   5. binary tasks: y_k := 1[y_k > q_k], q_k the (1 - positive_rate)
 *      quantile of task k's TRAINING labels (applied to all splits): the
 *      sorted training label at index n - 1 - round(rate·n), so exactly
 *      round(rate·n) training labels (without ties) are positive
 *
 * A dataset is a pure function of (params, seed).  Each part draws from its
 * own PCG32 stream of `seed` (weights, train, validation, test), so the test
 * set does not change when only the training size does.  α, β belong to the
 * experiment (SPEC §3): ALPHA_NORMAL draws them from `alpha_seed`, not from
 * the dataset seed, so all repeats of a study share them. */
#ifndef MTLAB_SYNTH_H
#define MTLAB_SYNTH_H

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"
#include "core/limits.h"
#include "data/dataset.h"

typedef enum {
    ALPHA_NORMAL = 0, /* α_i, β_i ~ N(0,1), drawn from alpha_seed */
    ALPHA_INDEX,      /* α_i = i, β_i = (i-1)² */
    ALPHA_LIST        /* α, β given explicitly */
} synth_alpha_t;

typedef struct {
    int tasks;                                     /* T */
    int dim;                                       /* d */
    double corr[MTLAB_MAX_TASKS * MTLAB_MAX_TASKS]; /* R, T x T row-major (row stride
                                                       `tasks`: set tasks first) */
    double scale;                                  /* c */
    int sinusoids;                                 /* m */
    synth_alpha_t alpha_mode;
    double alpha[MTLAB_MAX_SINUSOIDS];             /* ALPHA_LIST only */
    double beta[MTLAB_MAX_SINUSOIDS];              /* ALPHA_LIST only */
    uint64_t alpha_seed;                           /* ALPHA_NORMAL: the experiment's base seed */
    double noise;                                  /* σ (a standard deviation) */
    int n_train, n_val, n_test;
    bool binary[MTLAB_MAX_TASKS];
    double positive_rate[MTLAB_MAX_TASKS];         /* binary tasks only, in (0, 1) */
} synth_params_t;

/* Defaults of SPEC §3: T 2, d 100, R with p = 0.5, c 1, m 10, ALPHA_NORMAL
 * with alpha_seed 2018, σ 0.1, 40000 / 1000 / 1000 (chosen by the settings
 * study, README), all tasks regression. */
void synth_defaults(synth_params_t *p);

/* R_ij = rho for all i != j (and 1 on the diagonal); rho in [-1, 1].
 * Uses p->tasks, so set the number of tasks before calling. */
int synth_set_corr_all(synth_params_t *p, double rho, err_t *err);
/* Block structure: consecutive groups of tasks (sizes sum to p->tasks) with
 * correlation `within` inside a group and `between` across groups. */
int synth_set_corr_groups(synth_params_t *p, const int *sizes, int n_groups, double within,
                          double between, err_t *err);

/* Validates every field (sizes, ranges, R symmetric with unit diagonal and
 * positive semi-definite, buffer sizes representable); ERR_USAGE with a
 * message naming the field or the size that overflows. */
int synth_check(const synth_params_t *p, err_t *err);

/* Upper estimate of the heap synth_generate takes for p, without generating:
 * *resident for the three splits it returns (inputs and labels), *transient
 * for its working buffers (task weights, continuous labels, sort buffers),
 * freed before it returns.  Returns 0, or -1 with *err as synth_check. */
int synth_memory(const synth_params_t *p, size_t *resident, size_t *transient, err_t *err);

/* The α, β the generator will use: alpha[m], beta[m]. */
void synth_sinusoids(const synth_params_t *p, double *alpha, double *beta);

/* The task weight vectors w[T, d] for this seed (step 1-2 above). */
int synth_weights(const synth_params_t *p, uint64_t seed, double *w, err_t *err);

/* Generates all three splits into *out (caller frees with data_free).  On
 * failure *out is zeroed and holds nothing to free. */
int synth_generate(const synth_params_t *p, uint64_t seed, data_t *out, err_t *err);

#endif
