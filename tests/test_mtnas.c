/* test_mtnas.c -- REINFORCE apart from any model (train/reinforce.h), the
 * mtnas family (models/mtnas.h) and its route search (train/search.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/loss.h"
#include "gradcheck.h"
#include "models/model.h"
#include "testutil.h"
#include "train/reinforce.h"

/* ---- REINFORCE ---- */

static reinforce_space_t space_of(int n, const int *choices) {
    reinforce_space_t s;
    err_t err = {0};
    ck_assert_msg(reinforce_space_init(&s, n, choices, &err) == 0, "%s", err.msg);
    return s;
}

/* The score ∇ log p(u) against central differences of log p(u), and the
 * probabilities and entropy against their definitions. */
START_TEST(test_score_gradient) {
    const int choices[] = {4, 1, 15, 2};
    reinforce_space_t s = space_of(4, choices);
    ck_assert_uint_eq(s.n_logits, 22);
    real alpha[22], grad[22] = {0};
    rng_t r;
    rng_seed(&r, 5, 0);
    for (int i = 0; i < 22; i++) alpha[i] = rng_normal(&r);
    const int route[] = {2, 0, 11, 1};
    reinforce_score_grad(&s, alpha, route, 0.7, grad);
    for (int i = 0; i < 22; i++) {
        real keep = alpha[i];
        alpha[i] = keep + 1e-6;
        double up = reinforce_log_prob(&s, alpha, route);
        alpha[i] = keep - 1e-6;
        double down = reinforce_log_prob(&s, alpha, route);
        alpha[i] = keep;
        ck_assert_msg(fabs(grad[i] - 0.7 * (up - down) / 2e-6) < 1e-8, "logit %d: %g vs %g", i,
                      grad[i], 0.7 * (up - down) / 2e-6);
    }
    double p[15], h = 0, sum = 0;
    reinforce_probs(&s, alpha, 2, p);
    for (int i = 0; i < 15; i++) {
        sum += p[i];
        h -= p[i] * log(p[i]);
    }
    ck_assert(fabs(sum - 1) < 1e-12);
    ck_assert(fabs(h - reinforce_entropy(&s, alpha, 2)) < 1e-12);
    ck_assert(fabs(reinforce_entropy(&s, alpha, 1)) < 1e-15); /* one choice */
    reinforce_space_free(&s);
}
END_TEST

/* Sampling follows p: 40000 draws of a 3-way block land within 4 standard
 * errors of each probability; argmax takes the largest logit. */
START_TEST(test_sampling_frequencies) {
    const int choices[] = {3};
    reinforce_space_t s = space_of(1, choices);
    real alpha[3] = {0.0, log(3.0), log(6.0)}; /* p = 0.1, 0.3, 0.6 */
    rng_t r;
    rng_seed(&r, 9, 0);
    long count[3] = {0};
    const int n = 40000;
    for (int i = 0; i < n; i++) {
        int u;
        reinforce_sample(&s, alpha, &r, &u);
        count[u]++;
    }
    const double p[3] = {0.1, 0.3, 0.6};
    for (int i = 0; i < 3; i++) {
        double se = sqrt(p[i] * (1 - p[i]) / n);
        ck_assert_msg(fabs((double)count[i] / n - p[i]) < 4 * se, "choice %d: %ld of %d", i,
                      count[i], n);
    }
    int u;
    reinforce_argmax(&s, alpha, &u);
    ck_assert_int_eq(u, 2);
    reinforce_space_free(&s);
}
END_TEST

/* The baseline: the first mean, then decay·b + (1 − decay)·mean. */
START_TEST(test_baseline) {
    const int choices[] = {2};
    reinforce_space_t s = space_of(1, choices);
    reinforce_config_t c;
    reinforce_config_default(&c);
    c.samples = 2;
    c.decay = 0.75;
    reinforce_t rl;
    err_t err = {0};
    ck_assert_int_eq(reinforce_init(&rl, &s, &c, &err), 0);
    const double r1[] = {1, 3}, r2[] = {10, 10};
    ck_assert(reinforce_baseline(&rl, r1) == 2);
    ck_assert(fabs(reinforce_baseline(&rl, r2) - (0.75 * 2 + 0.25 * 10)) < 1e-15);
    reinforce_free(&rl);
    c.decay = 1;
    ck_assert_int_eq(reinforce_init(&rl, &s, &c, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "baseline_decay"));
    c.decay = 0.5;
    c.samples = 0;
    ck_assert_int_eq(reinforce_init(&rl, &s, &c, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "samples"));
    reinforce_space_free(&s);
}
END_TEST

/* A bandit with a known optimum: three blocks of 5, 15 and 2 arms, the
 * reward Σ_b mean_b[u_b] + N(0, 0.5²) noise, arm means drawn in [0, 1] with
 * the best arm 0.3 above the next.  From zero logits, 600 updates (K = 1, 2
 * and 4 samples) put the argmax on every block's best arm with probability
 * > 0.9 there; and the derived route is the same bits for the same seed. */
START_TEST(test_bandit_converges) {
    const int choices[] = {5, 15, 2};
    const int best[] = {3, 9, 0};
    reinforce_space_t s = space_of(3, choices);
    double mean[3][15];
    rng_t r;
    rng_seed(&r, 17, 0);
    for (int b = 0; b < 3; b++)
        for (int i = 0; i < choices[b]; i++)
            mean[b][i] = i == best[b] ? 1.0 : 0.7 * rng_uniform(&r);
    const int K = 1 << _i;
    reinforce_config_t c;
    reinforce_config_default(&c);
    c.samples = K;
    c.lr = 0.05;
    real alpha[22] = {0}, again[22] = {0};
    for (int rep = 0; rep < 2; rep++) {
        real *a = rep ? again : alpha;
        reinforce_t rl;
        err_t err = {0};
        ck_assert_int_eq(reinforce_init(&rl, &s, &c, &err), 0);
        rng_t draw, noise;
        rng_seed(&draw, 3, 1);
        rng_seed(&noise, 3, 2);
        int routes[4 * 3];
        double rewards[4];
        for (int t = 0; t < 600; t++) {
            for (int j = 0; j < K; j++) {
                reinforce_sample(&s, a, &draw, routes + 3 * j);
                rewards[j] = 0.5 * rng_normal(&noise);
                for (int b = 0; b < 3; b++) rewards[j] += mean[b][routes[3 * j + b]];
            }
            reinforce_update(&rl, a, routes, rewards);
        }
        reinforce_free(&rl);
    }
    ck_assert_mem_eq(alpha, again, sizeof alpha);
    int route[3];
    reinforce_argmax(&s, alpha, route);
    for (int b = 0; b < 3; b++) {
        double p[15];
        reinforce_probs(&s, alpha, b, p);
        ck_assert_msg(route[b] == best[b] && p[best[b]] > 0.9, "K %d block %d: argmax %d p %.3f", K,
                      b, route[b], p[best[b]]);
    }
    reinforce_space_free(&s);
}
END_TEST

Suite *mtnas_suite(void) {
    Suite *s = suite_create("mtnas");
    TCase *rl = tcase_create("reinforce");
    tcase_set_timeout(rl, 60);
    tcase_add_test(rl, test_score_gradient);
    tcase_add_test(rl, test_sampling_frequencies);
    tcase_add_test(rl, test_baseline);
    tcase_add_loop_test(rl, test_bandit_converges, 0, 3);
    suite_add_tcase(s, rl);
    return s;
}
