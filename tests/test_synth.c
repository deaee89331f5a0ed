/* test_synth.c -- the synthetic generator (src/data/synth.c) and `mtlab gen`.
 *
 * What a user relies on: the task weights have exactly the prescribed cosine
 * matrix and norm (and reduce to MMoE Eq 2 for two tasks), the labels follow
 * the stated formula, the label correlation behaves as the paper says, a
 * dataset is a pure function of (params, seed) with independent split
 * streams, binary tasks have the requested positive rate, bad parameters are
 * rejected with a usage error, and `mtlab gen` writes that data as CSV. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/size.h"
#include "data/synth.h"
#include "testutil.h"

/* ---- helpers ------------------------------------------------------------- */

static double vdot(const double *a, const double *b, int n) {
    double s = 0.0;
    for (int i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* Sample Pearson correlation of label columns a and b of a split. */
static double label_pearson(const dataset_t *split, int T, int a, int b) {
    const int n = split->n;
    double ma = 0.0, mb = 0.0;
    for (int r = 0; r < n; r++) {
        ma += split->y[(size_t)r * T + a];
        mb += split->y[(size_t)r * T + b];
    }
    ma /= n;
    mb /= n;
    double sab = 0.0, saa = 0.0, sbb = 0.0;
    for (int r = 0; r < n; r++) {
        const double da = split->y[(size_t)r * T + a] - ma, db = split->y[(size_t)r * T + b] - mb;
        sab += da * db;
        saa += da * da;
        sbb += db * db;
    }
    return sab / sqrt(saa * sbb);
}

/* Small, fast parameters: T tasks, d 20, only a training split. */
static synth_params_t small_params(int T) {
    synth_params_t p;
    synth_defaults(&p);
    p.tasks = T;
    p.dim = 20;
    p.n_train = 200;
    p.n_val = 30;
    p.n_test = 40;
    ck_assert_int_eq(synth_set_corr_all(&p, 0.5, NULL), 0);
    return p;
}

/* Asserts cos(w_i, w_j) = R_ij to 1e-6 and |w_k| = c to 1e-6·c. */
static void assert_weights_match(const synth_params_t *p, uint64_t seed) {
    const int T = p->tasks, d = p->dim;
    double *w = malloc((size_t)T * d * sizeof *w);
    err_t err = {0};
    ck_assert_msg(synth_weights(p, seed, w, &err) == 0, "synth_weights: %s", err.msg);
    for (int i = 0; i < T; i++) {
        const double *wi = w + (size_t)i * d;
        ck_assert_double_eq_tol(sqrt(vdot(wi, wi, d)), p->scale, 1e-6 * p->scale);
        for (int j = 0; j < T; j++) {
            const double *wj = w + (size_t)j * d;
            const double cosine = vdot(wi, wj, d) / sqrt(vdot(wi, wi, d) * vdot(wj, wj, d));
            ck_assert_msg(fabs(cosine - p->corr[i * T + j]) <= 1e-6,
                          "cos(w%d, w%d) = %.12f, R = %.12f", i + 1, j + 1, cosine,
                          p->corr[i * T + j]);
        }
    }
    free(w);
}

/* ---- weights: cosine matrix, norm, Eq 2 ---------------------------------- */

static const double two_task_corr[] = {-1.0, -0.5, 0.0, 0.5, 0.9, 1.0};

START_TEST(test_weights_two_tasks) {
    const double rho = two_task_corr[_i];
    synth_params_t p = small_params(2);
    p.dim = 50;
    p.scale = 2.5;
    ck_assert_int_eq(synth_set_corr_all(&p, rho, NULL), 0);
    assert_weights_match(&p, 11);

    /* Eq 2: w1 = c u1, w2 = c (p u1 + √(1-p²) u2) with u1 ⟂ u2 unit vectors,
     * i.e. w1·w2 = c² p and w2 - p w1 = c √(1-p²) u2 is orthogonal to w1. */
    const int d = p.dim;
    const double c = p.scale;
    double w[2 * 50], rest[50];
    ck_assert_int_eq(synth_weights(&p, 11, w, NULL), 0);
    const double *w1 = w, *w2 = w + d;
    ck_assert_double_eq_tol(vdot(w1, w2, d), c * c * rho, 1e-9);
    for (int i = 0; i < d; i++)
        rest[i] = w2[i] - rho * w1[i];
    ck_assert_double_eq_tol(vdot(rest, w1, d), 0.0, 1e-9);
    ck_assert_double_eq_tol(sqrt(vdot(rest, rest, d)), c * sqrt(1.0 - rho * rho), 1e-9);
}
END_TEST

/* Block-structured and semidefinite (rank-deficient) matrices. */
START_TEST(test_weights_groups) {
    synth_params_t p = small_params(4);
    const int sizes[] = {2, 2};
    err_t err = {0};
    ck_assert_int_eq(synth_set_corr_groups(&p, sizes, 2, 0.9, 0.2, &err), 0);
    ck_assert_double_eq(p.corr[0 * 4 + 1], 0.9);
    ck_assert_double_eq(p.corr[0 * 4 + 2], 0.2);
    ck_assert_double_eq(p.corr[2 * 4 + 3], 0.9);
    ck_assert_double_eq(p.corr[1 * 4 + 3], 0.2);
    assert_weights_match(&p, 3);

    /* within = 1: two pairs of identical tasks, zero Cholesky pivots. */
    ck_assert_int_eq(synth_set_corr_groups(&p, sizes, 2, 1.0, 0.3, &err), 0);
    assert_weights_match(&p, 4);

    /* Five identical tasks (rank 1) and uneven groups. */
    synth_params_t q = small_params(5);
    ck_assert_int_eq(synth_set_corr_all(&q, 1.0, NULL), 0);
    assert_weights_match(&q, 5);
    const int uneven[] = {1, 3, 1};
    ck_assert_int_eq(synth_set_corr_groups(&q, uneven, 3, 0.7, -0.1, &err), 0);
    assert_weights_match(&q, 6);

    /* d = T: the task vectors span the whole space. */
    q.dim = 5;
    assert_weights_match(&q, 7);
}
END_TEST

/* ---- labels -------------------------------------------------------------- */

/* With σ = 0, y_k = z_k + Σ sin(α_i z_k + β_i), z_k = w_kᵀx, recomputed here
 * from the stored inputs, the weights and the sinusoids. */
START_TEST(test_labels_follow_formula) {
    const synth_alpha_t modes[] = {ALPHA_NORMAL, ALPHA_INDEX, ALPHA_LIST};
    for (int mode = 0; mode < 3; mode++) {
        synth_params_t p = small_params(3);
        p.noise = 0.0;
        p.sinusoids = 4;
        p.alpha_mode = modes[mode];
        for (int i = 0; i < p.sinusoids; i++) {
            p.alpha[i] = 0.5 * i - 1.0;
            p.beta[i] = 0.25 * i;
        }
        double alpha[MTLAB_MAX_SINUSOIDS], beta[MTLAB_MAX_SINUSOIDS];
        synth_sinusoids(&p, alpha, beta);
        if (modes[mode] == ALPHA_INDEX)
            for (int i = 0; i < p.sinusoids; i++) {
                ck_assert_double_eq(alpha[i], i + 1);
                ck_assert_double_eq(beta[i], (double)i * i);
            }
        if (modes[mode] == ALPHA_LIST)
            for (int i = 0; i < p.sinusoids; i++) {
                ck_assert_double_eq(alpha[i], p.alpha[i]);
                ck_assert_double_eq(beta[i], p.beta[i]);
            }
        const int T = p.tasks, d = p.dim;
        double w[3 * 20];
        data_t data;
        err_t err = {0};
        ck_assert_int_eq(synth_weights(&p, 9, w, &err), 0);
        ck_assert_msg(synth_generate(&p, 9, &data, &err) == 0, "%s", err.msg);
        ck_assert_int_eq(data.d, d);
        ck_assert_int_eq(data.T, T);
        ck_assert_int_eq(data.train.n, p.n_train);
        ck_assert_int_eq(data.val.n, p.n_val);
        ck_assert_int_eq(data.test.n, p.n_test);
        const dataset_t *splits[] = {&data.train, &data.val, &data.test};
        for (int s = 0; s < 3; s++)
            for (int r = 0; r < splits[s]->n; r++)
                for (int k = 0; k < T; k++) {
                    double z = 0.0;
                    for (int i = 0; i < d; i++)
                        z += w[k * d + i] * splits[s]->x[r * d + i];
                    double y = z;
                    for (int i = 0; i < p.sinusoids; i++)
                        y += sin(alpha[i] * z + beta[i]);
                    ck_assert_double_eq_tol(splits[s]->y[r * T + k], y, 1e-9);
                }
        data_free(&data);
    }
}
END_TEST

/* α, β of ALPHA_NORMAL belong to the experiment: they depend on alpha_seed
 * only, and are not a constant. */
START_TEST(test_alpha_normal_from_alpha_seed) {
    synth_params_t p = small_params(2);
    double a1[MTLAB_MAX_SINUSOIDS], b1[MTLAB_MAX_SINUSOIDS], a2[MTLAB_MAX_SINUSOIDS],
        b2[MTLAB_MAX_SINUSOIDS];
    synth_sinusoids(&p, a1, b1);
    synth_sinusoids(&p, a2, b2);
    ck_assert_mem_eq(a1, a2, p.sinusoids * sizeof *a1);
    ck_assert_mem_eq(b1, b2, p.sinusoids * sizeof *b1);
    ck_assert_double_ne(a1[0], a1[1]);
    ck_assert_double_ne(a1[0], b1[0]);
    p.alpha_seed = 2019;
    synth_sinusoids(&p, a2, b2);
    ck_assert_double_ne(a1[0], a2[0]);
}
END_TEST

/* Linear case (m = 0): y_k = w_kᵀx + ε_k, so corr(y1, y2) = p c² / (c² + σ²)
 * exactly.  On n points the sample correlation has standard error
 * ≈ (1 - ρ²)/√n; we allow 4 standard errors. */
static const double linear_corr[] = {0.0, 0.3, 0.7, 1.0};

START_TEST(test_linear_label_correlation) {
    const double rho = linear_corr[_i];
    const int n = 20000;
    const double sigmas[] = {0.5, 0.0};
    for (int s = 0; s < 2; s++) {
        synth_params_t p = small_params(2);
        p.sinusoids = 0;
        p.scale = 1.0;
        p.noise = sigmas[s];
        p.n_train = n;
        p.n_val = p.n_test = 0;
        ck_assert_int_eq(synth_set_corr_all(&p, rho, NULL), 0);
        data_t data;
        err_t err = {0};
        ck_assert_msg(synth_generate(&p, 100 + _i, &data, &err) == 0, "%s", err.msg);
        const double c2 = p.scale * p.scale;
        const double expected = rho * c2 / (c2 + p.noise * p.noise);
        const double tol = 4.0 * (1.0 - expected * expected) / sqrt((double)n) + 1e-9;
        const double measured = label_pearson(&data.train, 2, 0, 1);
        ck_assert_msg(fabs(measured - expected) <= tol,
                      "p %.2f sigma %.2f: label Pearson %.5f, expected %.5f +- %.5f", rho, p.noise,
                      measured, expected, tol);
        data_free(&data);
    }
}
END_TEST

/* MMoE Fig 2 with the paper's settings (d 100, c 1, m 10, σ 0.1, α/β drawn
 * from alpha_seed 2018): the mean label Pearson correlation over 5 draws of
 * 10000 points rises strictly with the weight cosine. */
START_TEST(test_fig2_monotonic) {
    const double corr[] = {0.0, 0.2, 0.4, 0.6, 0.8, 1.0};
    const int n_corr = 6, draws = 5;
    double mean[6];
    for (int c = 0; c < n_corr; c++) {
        synth_params_t p;
        synth_defaults(&p);
        ck_assert_int_eq(p.dim, 100);
        ck_assert_double_eq(p.scale, 1.0);
        ck_assert_int_eq(p.sinusoids, 10);
        ck_assert_int_eq(p.alpha_mode, ALPHA_NORMAL);
        ck_assert_uint_eq(p.alpha_seed, 2018);
        ck_assert_double_eq(p.noise, 0.1);
        p.n_train = 10000;
        p.n_val = p.n_test = 0;
        ck_assert_int_eq(synth_set_corr_all(&p, corr[c], NULL), 0);
        mean[c] = 0.0;
        for (int r = 0; r < draws; r++) {
            data_t data;
            err_t err = {0};
            ck_assert_msg(synth_generate(&p, 1000 + r, &data, &err) == 0, "%s", err.msg);
            mean[c] += label_pearson(&data.train, 2, 0, 1) / draws;
            data_free(&data);
        }
        if (c > 0)
            ck_assert_msg(mean[c] > mean[c - 1],
                          "mean label Pearson %.4f at cos %.1f <= %.4f at %.1f", mean[c], corr[c],
                          mean[c - 1], corr[c - 1]);
    }
    /* Identical weights: only the noise separates the labels. */
    ck_assert_double_gt(mean[n_corr - 1], 0.95);
    ck_assert_double_lt(fabs(mean[0]), 0.05);
}
END_TEST

/* ---- determinism --------------------------------------------------------- */

static bool splits_equal(const data_t *a, const data_t *b, const dataset_t *sa,
                         const dataset_t *sb) {
    return sa->n == sb->n && memcmp(sa->x, sb->x, (size_t)sa->n * a->d * sizeof(real)) == 0 &&
           memcmp(sa->y, sb->y, (size_t)sa->n * a->T * sizeof(real)) == 0;
}

START_TEST(test_determinism) {
    synth_params_t p = small_params(3);
    data_t a, b, c;
    ck_assert_int_eq(synth_generate(&p, 42, &a, NULL), 0);
    ck_assert_int_eq(synth_generate(&p, 42, &b, NULL), 0);
    ck_assert(splits_equal(&a, &b, &a.train, &b.train));
    ck_assert(splits_equal(&a, &b, &a.val, &b.val));
    ck_assert(splits_equal(&a, &b, &a.test, &b.test));
    data_free(&b);

    ck_assert_int_eq(synth_generate(&p, 43, &b, NULL), 0);
    ck_assert(!splits_equal(&a, &b, &a.train, &b.train));
    ck_assert(!splits_equal(&a, &b, &a.test, &b.test));
    data_free(&b);

    /* The splits are different draws of one seed. */
    ck_assert(memcmp(a.val.x, a.test.x, (size_t)p.n_val * p.dim * sizeof(real)) != 0);

    /* Only the training size changes: validation and test stay put, and the
     * training set is a prefix of the larger one. */
    synth_params_t q = p;
    q.n_train = 3 * p.n_train;
    ck_assert_int_eq(synth_generate(&q, 42, &c, NULL), 0);
    ck_assert(splits_equal(&a, &c, &a.val, &c.val));
    ck_assert(splits_equal(&a, &c, &a.test, &c.test));
    ck_assert_mem_eq(a.train.x, c.train.x, (size_t)p.n_train * p.dim * sizeof(real));
    data_free(&c);

    /* So does the test set when only the validation size changes. */
    q = p;
    q.n_val = 0;
    ck_assert_int_eq(synth_generate(&q, 42, &c, NULL), 0);
    ck_assert(splits_equal(&a, &c, &a.test, &c.test));
    data_free(&c);
    data_free(&a);
}
END_TEST

/* The stream layout is part of the reproducibility contract: each split
 * draws from (seed, its stream), per example d normals for x then T normals
 * for the noise; ALPHA_NORMAL draws α_1..α_m then β_1..β_m from
 * (alpha_seed, RNG_STREAM_ALPHA). */
START_TEST(test_stream_layout) {
    synth_params_t p = small_params(2);
    p.sinusoids = 3;
    p.noise = 0.25;
    const int T = p.tasks, d = p.dim, m = p.sinusoids;
    double w[2 * 20], alpha[MTLAB_MAX_SINUSOIDS], beta[MTLAB_MAX_SINUSOIDS];
    data_t data;
    ck_assert_int_eq(synth_generate(&p, 77, &data, NULL), 0);
    ck_assert_int_eq(synth_weights(&p, 77, w, NULL), 0);
    synth_sinusoids(&p, alpha, beta);

    rng_t rng;
    rng_seed(&rng, p.alpha_seed, RNG_STREAM_ALPHA);
    for (int i = 0; i < m; i++)
        ck_assert_double_eq(alpha[i], rng_normal(&rng));
    for (int i = 0; i < m; i++)
        ck_assert_double_eq(beta[i], rng_normal(&rng));

    const struct {
        const dataset_t *split;
        uint64_t stream;
    } splits[] = {{&data.train, RNG_STREAM_DATA_TRAIN},
                  {&data.val, RNG_STREAM_DATA_VAL},
                  {&data.test, RNG_STREAM_DATA_TEST}};
    for (int s = 0; s < 3; s++) {
        rng_seed(&rng, 77, splits[s].stream);
        for (int r = 0; r < 3; r++) {
            const real *x = splits[s].split->x + r * d, *y = splits[s].split->y + r * T;
            for (int i = 0; i < d; i++)
                ck_assert_double_eq(x[i], (real)rng_normal(&rng));
            for (int k = 0; k < T; k++) {
                double z = 0.0, clean;
                for (int i = 0; i < d; i++)
                    z += w[k * d + i] * x[i];
                clean = z;
                for (int i = 0; i < m; i++)
                    clean += sin(alpha[i] * z + beta[i]);
                ck_assert_double_eq_tol(y[k], clean + p.noise * rng_normal(&rng), 1e-9);
            }
        }
    }
    data_free(&data);
}
END_TEST

/* ---- binary tasks -------------------------------------------------------- */

START_TEST(test_binary_tasks) {
    synth_params_t p = small_params(3);
    p.n_train = 1000;
    p.n_val = 2000;
    p.n_test = 2000;
    p.binary[0] = true;
    p.positive_rate[0] = 0.3;
    p.binary[2] = true;
    p.positive_rate[2] = 0.5;
    data_t data;
    err_t err = {0};
    ck_assert_msg(synth_generate(&p, 5, &data, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(data.kind[0], TASK_BINARY);
    ck_assert_int_eq(data.kind[1], TASK_REGRESSION);
    ck_assert_int_eq(data.kind[2], TASK_BINARY);
    const int T = p.tasks;
    const dataset_t *splits[] = {&data.train, &data.val, &data.test};
    for (int s = 0; s < 3; s++) {
        const dataset_t *split = splits[s];
        int positives[3] = {0}, binary_valued = 0;
        for (int r = 0; r < split->n; r++)
            for (int k = 0; k < T; k++) {
                const real y = split->y[r * T + k];
                if (p.binary[k]) ck_assert_msg(y == 0 || y == 1, "label %g of task %d", y, k + 1);
                if (y == 1) positives[k]++;
                if (!p.binary[k] && (y == 0 || y == 1)) binary_valued++;
            }
        ck_assert_int_lt(binary_valued, 3); /* the regression task stays continuous */
        for (int k = 0; k < T; k++) {
            if (!p.binary[k]) continue;
            const double rate = p.positive_rate[k], frac = (double)positives[k] / split->n;
            /* Training: the threshold is the quantile itself (no ties: continuous labels).
             * Validation/test: the same threshold, a fresh sample (4 standard errors). */
            const double tol = s == 0 ? 1.0 / split->n : 4.0 * sqrt(rate * (1 - rate) / split->n);
            ck_assert_msg(fabs(frac - rate) <= tol, "split %d task %d: %.4f positives, want %.2f",
                          s, k + 1, frac, rate);
        }
    }
    data_free(&data);

    /* Extreme rates still leave both classes on the training set. */
    p.positive_rate[0] = 0.9999;
    p.positive_rate[2] = 0.0001;
    ck_assert_int_eq(synth_generate(&p, 5, &data, &err), 0);
    int pos0 = 0, pos2 = 0;
    for (int r = 0; r < data.train.n; r++) {
        pos0 += data.train.y[r * T + 0] == 1;
        pos2 += data.train.y[r * T + 2] == 1;
    }
    ck_assert_int_eq(pos0, data.train.n - 1);
    ck_assert_int_eq(pos2, 0);
    data_free(&data);
}
END_TEST

/* ---- rejected parameters ------------------------------------------------- */

typedef struct {
    const char *name;
    void (*mutate)(synth_params_t *p);
    const char *message; /* substring of the error message */
} bad_params_t;

static void bad_not_psd(synth_params_t *p) {
    p->tasks = 3;
    ck_assert_int_eq(synth_set_corr_all(p, -0.9, NULL), 0);
}
static void bad_dependent_not_psd(synth_params_t *p) {
    /* Tasks 1 and 2 identical, but correlated differently with task 3. */
    p->tasks = 3;
    const double R[] = {1, 1, 0.5, 1, 1, -0.5, 0.5, -0.5, 1};
    memcpy(p->corr, R, sizeof R);
}
static void bad_asymmetric(synth_params_t *p) {
    p->corr[1] = 0.4;
}
static void bad_diagonal(synth_params_t *p) {
    p->corr[3] = 0.9;
}
static void bad_entry(synth_params_t *p) {
    p->corr[1] = p->corr[2] = 1.5;
}
static void bad_dim(synth_params_t *p) {
    p->tasks = 3;
    ck_assert_int_eq(synth_set_corr_all(p, 0.5, NULL), 0);
    p->dim = 2;
}
static void bad_tasks(synth_params_t *p) {
    p->tasks = MTLAB_MAX_TASKS + 1;
}
static void bad_train(synth_params_t *p) {
    p->n_train = 0;
}
static void bad_test(synth_params_t *p) {
    p->n_test = -1;
}
static void bad_sinusoids(synth_params_t *p) {
    p->sinusoids = MTLAB_MAX_SINUSOIDS + 1;
}
static void bad_scale(synth_params_t *p) {
    p->scale = 0.0;
}
static void bad_noise(synth_params_t *p) {
    p->noise = -0.1;
}
static void bad_noise_nan(synth_params_t *p) {
    p->noise = NAN;
}
static void bad_rate(synth_params_t *p) {
    p->binary[1] = true;
    p->positive_rate[1] = 1.0;
}

/* Sizes a user may type but no machine can hold (issue 8): caught as an
 * overflow before anything is allocated, not attempted. */
static void bad_train_overflow(synth_params_t *p) {
    p->n_train = INT_MAX;
    p->dim = INT_MAX;
}
static void bad_test_overflow(synth_params_t *p) {
    p->n_test = INT_MAX;
    p->dim = 1 << 30;
}

static const bad_params_t bad_params[] = {
    {"T=3 all -0.9", bad_not_psd, "not positive semi-definite (pivot"},
    {"dependent task, inconsistent", bad_dependent_not_psd, "not positive semi-definite"},
    {"asymmetric R", bad_asymmetric, "not symmetric"},
    {"diagonal not 1", bad_diagonal, "diagonal"},
    {"entry 1.5", bad_entry, "outside [-1, 1]"},
    {"dim < tasks", bad_dim, "dim 2"},
    {"tasks 17", bad_tasks, "tasks 17"},
    {"train 0", bad_train, "train size 0"},
    {"test -1", bad_test, "test size -1"},
    {"sinusoids", bad_sinusoids, "sinusoids"},
    {"scale 0", bad_scale, "scale"},
    {"noise < 0", bad_noise, "noise"},
    {"noise NaN", bad_noise_nan, "noise"},
    {"positive rate 1", bad_rate, "positive rate 1 of task 2"},
    {"train x dim overflows", bad_train_overflow,
     "training set: 2147483647 examples x 2147483647 features overflows"},
    {"test x dim overflows", bad_test_overflow,
     "test set: 2147483647 examples x 1073741824 features overflows"},
};

START_TEST(test_bad_params_rejected) {
    const bad_params_t *bad = &bad_params[_i];
    synth_params_t p = small_params(2);
    err_t err = {0};
    ck_assert_int_eq(synth_check(&p, &err), 0);
    bad->mutate(&p);
    ck_assert_msg(synth_check(&p, &err) != 0, "%s accepted", bad->name);
    ck_assert_int_eq(err.kind, ERR_USAGE);
    ck_assert_msg(strstr(err.msg, bad->message) != NULL, "%s: message '%s' lacks '%s'", bad->name,
                  err.msg, bad->message);
    ck_assert_ptr_null(strchr(err.msg, '\n'));
    /* The generator refuses too, and leaves nothing to free. */
    data_t data;
    err_t gen_err = {0};
    ck_assert_int_ne(synth_generate(&p, 1, &data, &gen_err), 0);
    ck_assert_int_eq(gen_err.kind, ERR_USAGE);
    ck_assert_ptr_null(data.train.x);
    ck_assert_ptr_null(data.test.y);
}
END_TEST

/* synth_memory: the splits it keeps are n x (d + T) values (plus at most a
 * block's overhead each), and its working buffers hold at least the
 * continuous training labels in double -- and, with a binary task, two more
 * copies of a label column (binary_threshold's and qsort's). */
START_TEST(test_memory_estimate) {
    synth_params_t p = small_params(3);
    err_t err = {0};
    size_t resident, transient;
    ck_assert_msg(synth_memory(&p, &resident, &transient, &err) == 0, "%s", err.msg);
    const size_t rows = (size_t)(p.n_train + p.n_val + p.n_test);
    const size_t kept = rows * (size_t)(p.dim + p.tasks) * sizeof(real);
    ck_assert_uint_ge(resident, kept);
    ck_assert_uint_le(resident, kept + 6 * SIZE_BLOCK_OVERHEAD);
    const size_t labels = (size_t)p.n_train * p.tasks * sizeof(double);
    ck_assert_uint_ge(transient, labels);
    p.binary[0] = true;
    size_t resident_binary, transient_binary;
    ck_assert_int_eq(synth_memory(&p, &resident_binary, &transient_binary, &err), 0);
    ck_assert_uint_eq(resident_binary, resident);
    ck_assert_uint_ge(transient_binary, transient + 2 * (size_t)p.n_train * sizeof(double));
    p.n_train = 0; /* invalid: the message synth_check gives */
    ck_assert_int_eq(synth_memory(&p, &resident, &transient, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "train size 0"));
}
END_TEST

START_TEST(test_bad_correlation_setters) {
    synth_params_t p = small_params(3);
    err_t err = {0};
    ck_assert_int_ne(synth_set_corr_all(&p, 1.5, &err), 0);
    ck_assert_int_eq(err.kind, ERR_USAGE);
    ck_assert_str_eq(err.msg, "correlation 1.5 is outside [-1, 1]");
    ck_assert_int_ne(synth_set_corr_all(&p, NAN, &err), 0);
    ck_assert_int_ne(synth_set_corr_all(&p, -1.0001, &err), 0);
    ck_assert_int_eq(synth_set_corr_all(&p, -1.0, &err), 0); /* a valid value ... */
    ck_assert_int_ne(synth_check(&p, &err), 0);              /* ... of a non-PSD R for T = 3 */
    ck_assert_ptr_nonnull(strstr(err.msg, "positive semi-definite"));

    const int wrong_sum[] = {2, 2}, empty[] = {3, 0}, ok[] = {1, 2};
    err.kind = ERR_NONE;
    ck_assert_int_ne(synth_set_corr_groups(&p, wrong_sum, 2, 0.5, 0.0, &err), 0);
    ck_assert_int_eq(err.kind, ERR_USAGE);
    ck_assert_int_ne(synth_set_corr_groups(&p, empty, 2, 0.5, 0.0, &err), 0);
    ck_assert_int_ne(synth_set_corr_groups(&p, ok, 2, 1.2, 0.0, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "within"));
    ck_assert_int_ne(synth_set_corr_groups(&p, ok, 2, 0.5, -2.0, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "between"));
    ck_assert_int_eq(synth_set_corr_groups(&p, ok, 2, 0.5, 0.0, &err), 0);
    ck_assert_int_eq(synth_check(&p, &err), 0);
}
END_TEST

START_TEST(test_defaults) {
    synth_params_t p;
    synth_defaults(&p);
    ck_assert_int_eq(p.tasks, 2);
    ck_assert_int_eq(p.n_train, 40000);
    ck_assert_int_eq(p.n_val, 1000);
    ck_assert_int_eq(p.n_test, 1000);
    ck_assert_double_eq(p.corr[0], 1.0);
    ck_assert_double_eq(p.corr[1], 0.5);
    ck_assert_double_eq(p.corr[2], 0.5);
    ck_assert_double_eq(p.corr[3], 1.0);
    ck_assert(!p.binary[0] && !p.binary[1]);
    ck_assert_int_eq(synth_check(&p, NULL), 0);
}
END_TEST

/* ---- mtlab gen ----------------------------------------------------------- */

static int count_char(const char *s, char c) {
    int n = 0;
    for (; *s; s++)
        n += *s == c;
    return n;
}

START_TEST(test_gen_csv) {
    const char *args[] = {"gen", "--corr", "0.5", "--n", "50", "--seed", "7", NULL};
    char *out, *errout;
    ck_assert_int_eq(run_mtlab(&out, &errout, args), 0);
    ck_assert_str_eq(errout, "");

    /* Header x1..x100,y1,y2. */
    char header[1024] = "";
    for (int i = 1; i <= 100; i++) {
        char f[16];
        snprintf(f, sizeof f, "%sx%d", i > 1 ? "," : "", i);
        strcat(header, f);
    }
    strcat(header, ",y1,y2\n");
    ck_assert_int_eq(strncmp(out, header, strlen(header)), 0);

    /* 50 data lines of 102 numeric fields. */
    int lines = 0;
    for (char *line = out + strlen(header); *line; lines++) {
        char *end = strchr(line, '\n');
        ck_assert_ptr_nonnull(end);
        *end = '\0';
        ck_assert_int_eq(count_char(line, ','), 101);
        for (char *field = line;;) {
            char *stop;
            strtod(field, &stop);
            ck_assert_msg(stop != field && (*stop == ',' || *stop == '\0'), "field '%s'", field);
            if (*stop == '\0') break;
            field = stop + 1;
        }
        line = end + 1;
    }
    ck_assert_int_eq(lines, 50);
    free(out);
    free(errout);
}
END_TEST

START_TEST(test_gen_deterministic) {
    const char *args[] = {"gen", "--corr", "0.5", "--n", "50", "--seed", "7", NULL};
    const char *other[] = {"gen", "--corr", "0.5", "--n", "50", "--seed", "8", NULL};
    char *a, *b, *c;
    ck_assert_int_eq(run_mtlab(&a, NULL, args), 0);
    ck_assert_int_eq(run_mtlab(&b, NULL, args), 0);
    ck_assert_int_eq(run_mtlab(&c, NULL, other), 0);
    ck_assert_str_eq(a, b);
    ck_assert_str_ne(a, c);
    ck_assert_int_eq(count_char(c, '\n'), 51);
    free(a);
    free(b);
    free(c);
}
END_TEST

/* `gen --split test` prints the test split of the library's dataset: the
 * same inputs (x is stored as float, "%.9g" reads back exactly) and labels
 * (the float binary computes them from float inputs: equal to ~1e-6). */
START_TEST(test_gen_matches_library) {
    const char *args[] = {"gen", "--split", "test", "--n",      "20", "--seed", "3",   "--dim",
                          "6",   "--tasks", "3",    "--binary", "2",  "--corr", "0.2", NULL};
    char *out;
    ck_assert_int_eq(run_mtlab(&out, NULL, args), 0);
    synth_params_t p;
    synth_defaults(&p);
    p.tasks = 3;
    p.dim = 6;
    p.n_val = 0;
    p.n_test = 20;
    p.binary[1] = true;
    ck_assert_int_eq(synth_set_corr_all(&p, 0.2, NULL), 0);
    data_t data;
    ck_assert_int_eq(synth_generate(&p, 3, &data, NULL), 0);
    char *line = strchr(out, '\n') + 1;
    int rows = 0;
    for (; *line; rows++) {
        ck_assert_int_lt(rows, 20);
        char *field = line;
        for (int j = 0; j < 9; j++) {
            char *stop;
            const double v = strtod(field, &stop);
            if (j < 6) {
                ck_assert_float_eq((float)v, (float)data.test.x[rows * 6 + j]);
            } else {
                const double want = data.test.y[rows * 3 + j - 6];
                ck_assert_double_eq_tol(v, want, 1e-5 * (1 + fabs(want)));
            }
            field = stop + 1;
        }
        line = field;
    }
    ck_assert_int_eq(rows, 20);
    data_free(&data);
    free(out);
}
END_TEST

START_TEST(test_gen_usage_errors) {
    const char *bad_corr[] = {"gen", "--corr", "2", NULL};
    const char *bad_n[] = {"gen", "--n", "abc", NULL};
    const char *bad_split[] = {"gen", "--split", "dev", NULL};
    const char *bad_binary[] = {"gen", "--binary", "1,3", NULL};
    const char *not_psd[] = {"gen", "--tasks", "3", "--corr", "-0.9", NULL};
    const char *unknown[] = {"gen", "--frobnicate", "1", NULL};
    char *out, *errout;

    ck_assert_int_eq(run_mtlab(&out, &errout, bad_corr), 2);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(count_char(errout, '\n'), 1);
    ck_assert_int_eq(strncmp(errout, "mtlab gen: ", 11), 0);
    ck_assert_ptr_nonnull(strstr(errout, "correlation"));
    free(out);
    free(errout);

    const char *const *cases[] = {bad_n, bad_split, bad_binary, not_psd, unknown};
    const char *needle[] = {"--n", "--split", "task 3", "positive semi-definite", "frobnicate"};
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(run_mtlab(&out, &errout, cases[i]), 2);
        ck_assert_int_eq(count_char(errout, '\n'), 1);
        ck_assert_msg(strstr(errout, needle[i]) != NULL, "'%s' lacks '%s'", errout, needle[i]);
        free(out);
        free(errout);
    }
}
END_TEST

START_TEST(test_gen_help) {
    const char *args[] = {"gen", "--help", NULL};
    char *out;
    ck_assert_int_eq(run_mtlab(&out, NULL, args), 0);
    const char *want[] = {"--corr P",        "(default: 0.5)", "--seed S",
                          "--split",         "--binary",       "--alpha-seed S",
                          "(default: 2018)", "--n N",          "(default: 1000)"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        ck_assert_msg(strstr(out, want[i]) != NULL, "help lacks '%s'", want[i]);
    free(out);
}
END_TEST

Suite *synth_suite(void) {
    Suite *s = suite_create("synth");

    TCase *weights = tcase_create("weights");
    tcase_add_loop_test(weights, test_weights_two_tasks, 0,
                        (int)(sizeof two_task_corr / sizeof two_task_corr[0]));
    tcase_add_test(weights, test_weights_groups);
    suite_add_tcase(s, weights);

    TCase *labels = tcase_create("labels");
    tcase_set_timeout(labels, 60);
    tcase_add_test(labels, test_labels_follow_formula);
    tcase_add_test(labels, test_alpha_normal_from_alpha_seed);
    tcase_add_loop_test(labels, test_linear_label_correlation, 0,
                        (int)(sizeof linear_corr / sizeof linear_corr[0]));
    tcase_add_test(labels, test_fig2_monotonic);
    tcase_add_test(labels, test_binary_tasks);
    suite_add_tcase(s, labels);

    TCase *contract = tcase_create("contract");
    tcase_add_test(contract, test_determinism);
    tcase_add_test(contract, test_stream_layout);
    tcase_add_loop_test(contract, test_bad_params_rejected, 0,
                        (int)(sizeof bad_params / sizeof bad_params[0]));
    tcase_add_test(contract, test_bad_correlation_setters);
    tcase_add_test(contract, test_defaults);
    tcase_add_test(contract, test_memory_estimate);
    suite_add_tcase(s, contract);

    TCase *gen = tcase_create("gen");
    tcase_set_timeout(gen, 60);
    tcase_add_test(gen, test_gen_csv);
    tcase_add_test(gen, test_gen_deterministic);
    tcase_add_test(gen, test_gen_matches_library);
    tcase_add_test(gen, test_gen_usage_errors);
    tcase_add_test(gen, test_gen_help);
    suite_add_tcase(s, gen);
    return s;
}
