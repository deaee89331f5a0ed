/* synth.c -- the synthetic multi-task generator (SPEC §3, MMoE §3.2).
 *
 * Design.  A dataset is a pure function of (params, seed), computed in double
 * and stored as `real` only at the end:
 *
 *   - u_1..u_T: T·d normals from (seed, RNG_STREAM_DATA_W), vector after
 *     vector, orthonormalised by modified Gram-Schmidt run twice ("twice is
 *     enough": one pass loses orthogonality to rounding when d is large);
 *   - w_k = c · Σ_j L_kj u_j with R = L Lᵀ.  Because the u_j are orthonormal,
 *     w_iᵀw_j = c² (L Lᵀ)_ij = c² R_ij, so cos(w_i, w_j) = R_ij and |w_k| = c.
 *     For T = 2 the Cholesky factor is [[1, 0], [p, √(1-p²)]]: exactly Eq 2;
 *   - each split draws from its own stream of `seed`; per example, d normals
 *     for x, then T normals for the noise ε (drawn even when σ = 0, so the
 *     inputs of a seed do not depend on σ).  The labels are computed from the
 *     inputs as stored (rounded to `real`), so a reader of the dataset can
 *     recompute them from x;
 *   - binary tasks are thresholded at a quantile of the training labels, the
 *     same threshold for all three splits.
 *
 * α, β come from synth_sinusoids(): for ALPHA_NORMAL, α_1..α_m then β_1..β_m
 * from (alpha_seed, RNG_STREAM_ALPHA), independent of the dataset seed. */
#include "data/synth.h"
#include "core/mem.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/size.h"

#define SYNTH_SYMMETRY_TOL 1e-12 /* |R_ij - R_ji| and |R_ii - 1| */
#define SYNTH_PIVOT_TOL    1e-9  /* a Cholesky pivot this close to 0 is a dependent task */
#define SYNTH_RESIDUAL_TOL 1e-9  /* ... and then the rest of its column must vanish */
#define SYNTH_GS_PASSES    2     /* Gram-Schmidt re-orthogonalisation passes */
#define SYNTH_GS_MIN_KEEP  1e-6  /* redraw a vector that loses more than this fraction */
#define SYNTH_GS_MAX_DRAWS 64    /* per vector; a redraw has probability ~1e-6 */

/* ---- parameters ---------------------------------------------------------- */

void synth_defaults(synth_params_t *p) {
    memset(p, 0, sizeof *p);
    p->tasks = 2;
    p->dim = 100;
    p->scale = 1.0;
    p->sinusoids = 10;
    p->alpha_mode = ALPHA_NORMAL;
    p->alpha_seed = 2018;
    p->noise = 0.1;
    p->n_train = 40000; /* README "Choosing the open settings": 10000 overfits */
    p->n_val = 1000;
    p->n_test = 1000;
    for (int k = 0; k < MTLAB_MAX_TASKS; k++) {
        p->binary[k] = false;
        p->positive_rate[k] = 0.5;
    }
    synth_set_corr_all(p, 0.5, NULL);
}

static int check_tasks(const synth_params_t *p, err_t *err) {
    if (p->tasks < 1 || p->tasks > MTLAB_MAX_TASKS)
        return err_set(err, ERR_USAGE, "tasks %d is outside [1, %d]", p->tasks, MTLAB_MAX_TASKS);
    return 0;
}

static int check_corr_value(const char *what, double rho, err_t *err) {
    if (!(rho >= -1.0 && rho <= 1.0)) /* also rejects NaN */
        return err_set(err, ERR_USAGE, "%s %g is outside [-1, 1]", what, rho);
    return 0;
}

int synth_set_corr_all(synth_params_t *p, double rho, err_t *err) {
    if (check_tasks(p, err) || check_corr_value("correlation", rho, err)) return -1;
    const int T = p->tasks;
    for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++)
            p->corr[i * T + j] = i == j ? 1.0 : rho;
    return 0;
}

int synth_set_corr_groups(synth_params_t *p, const int *sizes, int n_groups, double within,
                          double between, err_t *err) {
    if (check_tasks(p, err)) return -1;
    const int T = p->tasks;
    if (n_groups < 1 || n_groups > T)
        return err_set(err, ERR_USAGE, "%d correlation groups for %d tasks", n_groups, T);
    int group[MTLAB_MAX_TASKS], next = 0;
    for (int g = 0; g < n_groups; g++) {
        if (sizes[g] < 1)
            return err_set(err, ERR_USAGE, "correlation group %d has size %d (must be >= 1)", g + 1,
                           sizes[g]);
        if (sizes[g] > T - next)
            return err_set(err, ERR_USAGE, "correlation group sizes add up to more than %d tasks",
                           T);
        for (int i = 0; i < sizes[g]; i++)
            group[next++] = g;
    }
    if (next != T)
        return err_set(err, ERR_USAGE, "correlation group sizes add up to %d, not %d tasks", next,
                       T);
    if (check_corr_value("within-group correlation", within, err) ||
        check_corr_value("between-group correlation", between, err))
        return -1;
    for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++)
            p->corr[i * T + j] = i == j ? 1.0 : group[i] == group[j] ? within : between;
    return 0;
}

/* R = L Lᵀ for a positive semi-definite R (T x T row-major); L[T, T] is
 * lower-triangular.  A pivot within SYNTH_PIVOT_TOL of zero (rounding makes
 * it slightly negative as often as not) means task j is a linear combination
 * of the tasks before it: its column of L is zero, which is only consistent
 * when the residual of the rest of that column vanishes too; otherwise some
 * 2x2 minor of the residual is indefinite.  For T = 2 this yields exactly
 * L = [[1, 0], [p, √(1-p²)]]. */
static int corr_cholesky(const double *R, int T, double *L, err_t *err) {
    memset(L, 0, (size_t)T * (size_t)T * sizeof *L);
    for (int j = 0; j < T; j++) {
        double pivot = R[j * T + j];
        for (int k = 0; k < j; k++)
            pivot -= L[j * T + k] * L[j * T + k];
        if (pivot < -SYNTH_PIVOT_TOL)
            return err_set(err, ERR_USAGE,
                           "correlation matrix is not positive semi-definite (pivot %g at task %d)",
                           pivot, j + 1);
        const bool dependent = pivot <= SYNTH_PIVOT_TOL;
        const double diag = dependent ? 0.0 : sqrt(pivot);
        L[j * T + j] = diag;
        for (int i = j + 1; i < T; i++) {
            double residual = R[i * T + j];
            for (int k = 0; k < j; k++)
                residual -= L[i * T + k] * L[j * T + k];
            if (!dependent) {
                L[i * T + j] = residual / diag;
            } else if (fabs(residual) > SYNTH_RESIDUAL_TOL) {
                return err_set(err, ERR_USAGE,
                               "correlation matrix is not positive semi-definite (zero pivot at "
                               "task %d leaves residual %g with task %d)",
                               j + 1, residual, i + 1);
            }
        }
    }
    return 0;
}

static int check_count(const char *what, int n, int min, err_t *err) {
    if (n < min) return err_set(err, ERR_USAGE, "%s %d must be at least %d", what, n, min);
    return 0;
}

/* The heap synth_generate takes for p (tasks and dim already checked):
 * `resident`, the three splits it returns (x[n, d] and y[n, T] in real);
 * `transient`, an upper bound of its working buffers alive at once: the task
 * weights w[T, d] in double, plus the larger of synth_weights' u[T, d] and a
 * split's continuous labels [n, T] in double -- with, for the training split
 * when a task is binary, the sorted copy of a label column and glibc qsort's
 * temporary copy of it (its merge sort allocates one as large as the array).
 * Only n·d can overflow (T <= MTLAB_MAX_TASKS).  Returns 0, or -1 with *err
 * (ERR_USAGE) naming the size that overflows. */
static int data_sizes(const synth_params_t *p, size_t *resident, size_t *transient, err_t *err) {
    const int T = p->tasks, d = p->dim;
    const struct {
        const char *name;
        int n;
    } splits[] = {{"training", p->n_train}, {"validation", p->n_val}, {"test", p->n_test}};
    bool any_binary = false;
    for (int k = 0; k < T; k++)
        any_binary |= p->binary[k];
    size_t bytes;
    size_tally_t splits_kept = {0}, working = {0}, weights = {0};
    size_tally_block(&weights, (size_t)T * d, sizeof(double)); /* w */
    size_tally_block(&working, (size_t)T * d, sizeof(double)); /* u, inside synth_weights */
    for (int s = 0; s < 3; s++) {
        const int n = splits[s].n;
        if (size_mul3(&bytes, n, d, sizeof(real)))
            return err_set(err, ERR_USAGE, "%s set: %d examples x %d features overflows",
                           splits[s].name, n, d);
        size_tally_block(&splits_kept, (size_t)n * d, sizeof(real)); /* x */
        size_tally_block(&splits_kept, (size_t)n * T, sizeof(real)); /* y */
        size_tally_t split_working = {0};
        size_tally_block(&split_working, (size_t)n * T, sizeof(double)); /* labels */
        if (s == 0 && any_binary) /* binary_threshold's copy and qsort's */
            size_tally_blocks(&split_working, 2, (size_t)n, sizeof(double));
        if (split_working.overflow || split_working.bytes > working.bytes) working = split_working;
    }
    size_tally_add(&weights, &working);
    if (splits_kept.overflow || weights.overflow)
        return err_set(err, ERR_USAGE,
                       "the dataset of %d + %d + %d examples x %d features overflows", p->n_train,
                       p->n_val, p->n_test, d);
    *resident = splits_kept.bytes;
    *transient = weights.bytes;
    return 0;
}

int synth_memory(const synth_params_t *p, size_t *resident, size_t *transient, err_t *err) {
    *resident = *transient = 0;
    if (synth_check(p, err)) return -1;
    return data_sizes(p, resident, transient, err);
}

int synth_check(const synth_params_t *p, err_t *err) {
    if (check_tasks(p, err)) return -1;
    const int T = p->tasks;
    if (p->dim < T)
        return err_set(err, ERR_USAGE,
                       "dim %d is smaller than tasks %d (the task vectors must be orthogonal)",
                       p->dim, T);
    if (p->sinusoids < 0 || p->sinusoids > MTLAB_MAX_SINUSOIDS)
        return err_set(err, ERR_USAGE, "sinusoids %d is outside [0, %d]", p->sinusoids,
                       MTLAB_MAX_SINUSOIDS);
    if (p->alpha_mode != ALPHA_NORMAL && p->alpha_mode != ALPHA_INDEX &&
        p->alpha_mode != ALPHA_LIST)
        return err_set(err, ERR_USAGE, "alpha mode %d is unknown", (int)p->alpha_mode);
    if (p->alpha_mode == ALPHA_LIST)
        for (int i = 0; i < p->sinusoids; i++)
            if (!isfinite(p->alpha[i]) || !isfinite(p->beta[i]))
                return err_set(err, ERR_USAGE, "sinusoid %d: alpha %g, beta %g must be finite",
                               i + 1, p->alpha[i], p->beta[i]);
    if (!(p->scale > 0.0) || !isfinite(p->scale))
        return err_set(err, ERR_USAGE, "scale %g must be a positive finite number", p->scale);
    if (!(p->noise >= 0.0) || !isfinite(p->noise))
        return err_set(err, ERR_USAGE, "noise %g must be a non-negative finite number", p->noise);
    if (check_count("train size", p->n_train, 1, err) ||
        check_count("validation size", p->n_val, 0, err) ||
        check_count("test size", p->n_test, 0, err))
        return -1;
    size_t resident, transient;
    if (data_sizes(p, &resident, &transient, err)) return -1;

    const double *R = p->corr;
    for (int i = 0; i < T; i++) {
        if (!(fabs(R[i * T + i] - 1.0) <= SYNTH_SYMMETRY_TOL))
            return err_set(err, ERR_USAGE, "correlation matrix diagonal R[%d][%d] = %g is not 1",
                           i + 1, i + 1, R[i * T + i]);
        for (int j = 0; j < T; j++) {
            if (!(R[i * T + j] >= -1.0 && R[i * T + j] <= 1.0))
                return err_set(err, ERR_USAGE, "correlation R[%d][%d] = %g is outside [-1, 1]",
                               i + 1, j + 1, R[i * T + j]);
            if (!(fabs(R[i * T + j] - R[j * T + i]) <= SYNTH_SYMMETRY_TOL))
                return err_set(err, ERR_USAGE,
                               "correlation matrix is not symmetric (R[%d][%d] = %g, R[%d][%d] = "
                               "%g)",
                               i + 1, j + 1, R[i * T + j], j + 1, i + 1, R[j * T + i]);
        }
    }
    double L[MTLAB_MAX_TASKS * MTLAB_MAX_TASKS];
    if (corr_cholesky(R, T, L, err)) return -1;

    for (int k = 0; k < T; k++)
        if (p->binary[k] && !(p->positive_rate[k] > 0.0 && p->positive_rate[k] < 1.0))
            return err_set(err, ERR_USAGE, "positive rate %g of task %d is outside (0, 1)",
                           p->positive_rate[k], k + 1);
    return 0;
}

/* ---- weights ------------------------------------------------------------- */

void synth_sinusoids(const synth_params_t *p, double *alpha, double *beta) {
    const int m = p->sinusoids;
    switch (p->alpha_mode) {
    case ALPHA_NORMAL: {
        rng_t rng;
        rng_seed(&rng, p->alpha_seed, RNG_STREAM_ALPHA);
        for (int i = 0; i < m; i++)
            alpha[i] = rng_normal(&rng);
        for (int i = 0; i < m; i++)
            beta[i] = rng_normal(&rng);
        break;
    }
    case ALPHA_INDEX:
        for (int i = 0; i < m; i++) {
            alpha[i] = (double)(i + 1);
            beta[i] = (double)i * (double)i;
        }
        break;
    case ALPHA_LIST:
        memcpy(alpha, p->alpha, (size_t)m * sizeof *alpha);
        memcpy(beta, p->beta, (size_t)m * sizeof *beta);
        break;
    }
}

static double dot(const double *a, const double *b, int n) {
    double s = 0.0;
    for (int i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* u[T, d]: orthonormal rows from Gaussian draws (modified Gram-Schmidt, two
 * passes).  A draw that is (numerically) in the span of the previous vectors
 * is replaced by the next draw of the stream; that keeps the result a pure
 * function of the stream. */
static int orthonormal_rows(rng_t *rng, int T, int d, double *u, err_t *err) {
    for (int k = 0; k < T; k++) {
        double *v = u + (size_t)k * d;
        int draws = 0;
        for (;;) {
            if (++draws > SYNTH_GS_MAX_DRAWS)
                return err_set(err, ERR_FAIL, "cannot draw %d orthogonal vectors in R^%d", T, d);
            for (int i = 0; i < d; i++)
                v[i] = rng_normal(rng);
            const double drawn_norm = sqrt(dot(v, v, d));
            for (int pass = 0; pass < SYNTH_GS_PASSES; pass++)
                for (int j = 0; j < k; j++) {
                    const double *uj = u + (size_t)j * d;
                    const double proj = dot(v, uj, d);
                    for (int i = 0; i < d; i++)
                        v[i] -= proj * uj[i];
                }
            const double norm = sqrt(dot(v, v, d));
            if (norm > SYNTH_GS_MIN_KEEP * drawn_norm) {
                for (int i = 0; i < d; i++)
                    v[i] /= norm;
                break;
            }
        }
    }
    return 0;
}

int synth_weights(const synth_params_t *p, uint64_t seed, double *w, err_t *err) {
    if (synth_check(p, err)) return -1;
    const int T = p->tasks, d = p->dim;
    double L[MTLAB_MAX_TASKS * MTLAB_MAX_TASKS];
    if (corr_cholesky(p->corr, T, L, err)) return -1;
    double *u = mem_alloc((size_t)T * (size_t)d * sizeof *u);
    if (!u) return err_set(err, ERR_FAIL, "out of memory (task vectors %d x %d)", T, d);
    rng_t rng;
    rng_seed(&rng, seed, RNG_STREAM_DATA_W);
    if (orthonormal_rows(&rng, T, d, u, err)) {
        mem_free(u);
        return -1;
    }
    for (int k = 0; k < T; k++)
        for (int i = 0; i < d; i++) {
            double s = 0.0;
            for (int j = 0; j <= k; j++)
                s += L[k * T + j] * u[(size_t)j * d + i];
            w[(size_t)k * d + i] = p->scale * s;
        }
    mem_free(u);
    return 0;
}

/* ---- splits -------------------------------------------------------------- */

/* The generator as drawn by one split, with what all splits share. */
typedef struct {
    const synth_params_t *p;
    const double *w; /* [T, d] */
    double alpha[MTLAB_MAX_SINUSOIDS], beta[MTLAB_MAX_SINUSOIDS];
} generator_t;

/* mem_alloc(n * width * size) with an overflow check; NULL only on failure
 * (a zero-sized request returns a distinct non-NULL block, never used). */
static void *alloc_table(int n, int width, size_t size) {
    size_t count = (size_t)n * (size_t)width;
    if (width != 0 && count / (size_t)width != (size_t)n) return NULL;
    if (count > SIZE_MAX / size) return NULL;
    return mem_alloc(count ? count * size : 1);
}

/* Draws n examples of one split from (seed, stream): x[n, d] stored as real,
 * continuous labels y[n, T] in double. */
static void draw_split(const generator_t *g, uint64_t seed, uint64_t stream, int n, real *x,
                       double *y) {
    const synth_params_t *p = g->p;
    const int T = p->tasks, d = p->dim, m = p->sinusoids;
    rng_t rng;
    rng_seed(&rng, seed, stream);
    for (int r = 0; r < n; r++) {
        real *xr = x + (size_t)r * d;
        for (int i = 0; i < d; i++)
            xr[i] = (real)rng_normal(&rng);
        for (int k = 0; k < T; k++) {
            const double *wk = g->w + (size_t)k * d;
            double z = 0.0;
            for (int i = 0; i < d; i++)
                z += wk[i] * (double)xr[i];
            double label = z;
            for (int i = 0; i < m; i++)
                label += sin(g->alpha[i] * z + g->beta[i]);
            y[(size_t)r * T + k] = label;
        }
        for (int k = 0; k < T; k++)
            y[(size_t)r * T + k] += p->noise * rng_normal(&rng);
    }
}

static int compare_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Threshold of binary task k from the training labels y[n, T]: the
 * (1 - rate) quantile.  We take the order statistic at index
 * n - 1 - round(rate · n), clamped to [0, n - 1], so that without ties exactly
 * round(rate · n) training labels lie strictly above it (at least one label
 * stays at or below it: a rate within 0.5/n of 1 gives n - 1 positives). */
static int binary_threshold(const double *y, int n, int T, int k, double rate, double *threshold,
                            err_t *err) {
    double *sorted = alloc_table(n, 1, sizeof *sorted);
    if (!sorted) return err_set(err, ERR_FAIL, "out of memory (sorting %d labels)", n);
    for (int r = 0; r < n; r++)
        sorted[r] = y[(size_t)r * T + k];
    qsort(sorted, (size_t)n, sizeof *sorted, compare_double);
    long idx = (long)n - 1 - lround(rate * (double)n);
    if (idx < 0) idx = 0;
    if (idx > n - 1) idx = n - 1;
    *threshold = sorted[idx];
    mem_free(sorted);
    return 0;
}

/* Converts the labels y[n, T] of one split to `real`, thresholding the binary tasks. */
static void store_labels(const synth_params_t *p, const double *threshold, const double *y, int n,
                         real *out) {
    const int T = p->tasks;
    for (int r = 0; r < n; r++)
        for (int k = 0; k < T; k++) {
            const double v = y[(size_t)r * T + k];
            out[(size_t)r * T + k] = p->binary[k] ? (real)(v > threshold[k]) : (real)v;
        }
}

int synth_generate(const synth_params_t *p, uint64_t seed, data_t *out, err_t *err) {
    memset(out, 0, sizeof *out);
    if (synth_check(p, err)) return -1;
    const int T = p->tasks, d = p->dim;
    generator_t g = {.p = p};
    synth_sinusoids(p, g.alpha, g.beta);
    double *w = alloc_table(T, d, sizeof *w);
    if (!w) return err_set(err, ERR_FAIL, "out of memory (task weights %d x %d)", T, d);
    if (synth_weights(p, seed, w, err)) {
        mem_free(w);
        return -1;
    }
    g.w = w;

    out->d = d;
    out->T = T;
    for (int k = 0; k < T; k++)
        out->kind[k] = p->binary[k] ? TASK_BINARY : TASK_REGRESSION;

    struct {
        dataset_t *split;
        int n;
        uint64_t stream;
        const char *name;
    } splits[] = {
        {&out->train, p->n_train, RNG_STREAM_DATA_TRAIN, "training"},
        {&out->val, p->n_val, RNG_STREAM_DATA_VAL, "validation"},
        {&out->test, p->n_test, RNG_STREAM_DATA_TEST, "test"},
    };
    double threshold[MTLAB_MAX_TASKS] = {0};
    double *labels = NULL;
    for (int s = 0; s < 3; s++) {
        dataset_t *split = splits[s].split;
        const int n = splits[s].n;
        split->x = alloc_table(n, d, sizeof *split->x);
        split->y = alloc_table(n, T, sizeof *split->y);
        labels = alloc_table(n, T, sizeof *labels);
        if (!split->x || !split->y || !labels) {
            err_set(err, ERR_FAIL, "out of memory (%s set of %d examples x %d features)",
                    splits[s].name, n, d);
            goto fail;
        }
        split->n = n;
        draw_split(&g, seed, splits[s].stream, n, split->x, labels);
        if (s == 0)
            for (int k = 0; k < T; k++)
                if (p->binary[k] &&
                    binary_threshold(labels, n, T, k, p->positive_rate[k], &threshold[k], err))
                    goto fail;
        store_labels(p, threshold, labels, n, split->y);
        mem_free(labels);
        labels = NULL;
    }
    mem_free(w);
    return 0;

fail:
    mem_free(labels);
    mem_free(w);
    data_free(out);
    return -1;
}
