/* test_rng.c -- PCG32 against the reference implementation, and the
 * distributions built on it.
 *
 * Bit-exactness is checked against the published output of the reference demo
 * (pcg32-demo.c of pcg-c-basic, also imneme/pcg-c test-high/expected/
 * check-pcg32.out): the generator, the bounded draw and the Fisher-Yates deal
 * of that demo are exactly rng_u32, rng_below and rng_shuffle, so the whole of
 * its "Round 1" can be replayed.  Statistical properties use fixed seeds, so
 * every test is deterministic; tolerances are 5 standard errors, i.e. a
 * correct generator would fail one with probability ~6e-7 for a fresh seed,
 * while a wrong distribution (wrong scale, bias, missing rejection) misses by
 * tens or hundreds of standard errors. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/rng.h"
#include "testutil.h"

#define STAT_DRAWS  1000000 /* 10^6 draws: SE(mean of N(0,1)) = 1e-3 */
#define STAT_SIGMAS 5.0     /* tolerance in standard errors */

/* Round 1 of the reference demo, seeded pcg32_srandom_r(&rng, 42u, 54u). */
static const uint32_t demo_round1_u32[6] = {0xa15c02b7u, 0x7b47f409u, 0xba1d3330u,
                                            0x83d2f293u, 0xbfa4784bu, 0xcbed606eu};
static const char demo_round1_coins[] =
    "HHTTTHTHHHTHTTTHHHHHTTTHHHTHTHTHTTHTTTHHHHHHTTTTHHTTTTTHTTTTTTTHT";
static const int demo_round1_rolls[33] = {3, 4, 1, 1, 2, 2, 3, 2, 4, 3, 2, 4, 3, 3, 5, 2, 3,
                                          1, 3, 1, 5, 1, 4, 1, 5, 6, 4, 6, 6, 2, 6, 3, 3};
static const char demo_round1_cards[] =
    "Qd Ks 6d 3s 3d 4c 3h Td Kc 5c Jh Kd Jd As 4s 4h Ad Th Ac Jc 7s Qs "
    "2s 7h Kh 2d 6c Ah 4d Qh 9h 6s 5s 2c 9c Ts 8d 9s 3c 8c Js 5d 2h 6h "
    "7d 8s 9d 5h 8h Qc 7c Tc";
/* First numbers of Round 2: the stream continues exactly after the deal. */
static const uint32_t demo_round2_u32[6] = {0x74ab93adu, 0x1c1da000u, 0x494ff896u,
                                            0x34462f2fu, 0xd308a3e5u, 0x0fa83babu};

START_TEST(test_u32_matches_reference) {
    rng_t rng;
    rng_seed(&rng, 42u, 54u);
    for (int i = 0; i < 6; i++) {
        uint32_t got = rng_u32(&rng);
        ck_assert_msg(got == demo_round1_u32[i], "draw %d: got 0x%08x, reference 0x%08x", i, got,
                      demo_round1_u32[i]);
    }
}
END_TEST

/* Replays the demo's coins (bounded 2), rolls (bounded 6, +1) and card deal
 * (its own Fisher-Yates loop, identical to rng_shuffle), then checks that the
 * stream is still in step with Round 2. */
START_TEST(test_bounded_and_shuffle_match_reference) {
    rng_t rng;
    rng_seed(&rng, 42u, 54u);
    for (int i = 0; i < 6; i++)
        rng_u32(&rng);

    char coins[sizeof demo_round1_coins];
    for (int i = 0; i < 65; i++)
        coins[i] = rng_below(&rng, 2) ? 'H' : 'T';
    coins[65] = '\0';
    ck_assert_str_eq(coins, demo_round1_coins);

    for (int i = 0; i < 33; i++) {
        int roll = (int)rng_below(&rng, 6) + 1;
        ck_assert_msg(roll == demo_round1_rolls[i], "roll %d: got %d, reference %d", i, roll,
                      demo_round1_rolls[i]);
    }

    enum { SUITS = 4, CARDS = 52 };
    static const char number[] = "A23456789TJQK", suit[] = "hcds";
    int cards[CARDS];
    for (int i = 0; i < CARDS; i++)
        cards[i] = i;
    rng_shuffle(&rng, cards, CARDS);
    char dealt[3 * CARDS];
    for (int i = 0; i < CARDS; i++) {
        dealt[3 * i] = number[cards[i] / SUITS];
        dealt[3 * i + 1] = suit[cards[i] % SUITS];
        dealt[3 * i + 2] = i + 1 < CARDS ? ' ' : '\0';
    }
    ck_assert_str_eq(dealt, demo_round1_cards);

    for (int i = 0; i < 6; i++) {
        uint32_t got = rng_u32(&rng);
        ck_assert_msg(got == demo_round2_u32[i], "round 2 draw %d: got 0x%08x, reference 0x%08x", i,
                      got, demo_round2_u32[i]);
    }
}
END_TEST

START_TEST(test_below_in_range) {
    static const uint32_t bounds[] = {1u, 2u, 3u, 6u, 7u, 1000u, 0x80000001u, UINT32_MAX};
    rng_t rng;
    rng_seed(&rng, 7u, 3u);
    for (size_t b = 0; b < sizeof bounds / sizeof bounds[0]; b++) {
        uint32_t seen_max = 0;
        for (int i = 0; i < 10000; i++) {
            uint32_t v = rng_below(&rng, bounds[b]);
            ck_assert_msg(v < bounds[b], "rng_below(%u) returned %u", bounds[b], v);
            if (v > seen_max) seen_max = v;
        }
        /* The upper part of small ranges is reached (10^4 draws of <= 1000 values). */
        if (bounds[b] <= 1000u) ck_assert_uint_eq(seen_max, bounds[b] - 1);
    }
}
END_TEST

/* Without the rejection step, x % (3·2^30) maps the 2^32 outputs so that
 * [0, 2^30) has probability 1/2 instead of 1/3: the rejection is visible. */
START_TEST(test_below_no_modulo_bias) {
    const uint32_t bound = 3u << 30, third = 1u << 30;
    const int n = 100000;
    rng_t rng;
    rng_seed(&rng, 11u, 5u);
    int low = 0;
    for (int i = 0; i < n; i++)
        low += rng_below(&rng, bound) < third;
    double p = 1.0 / 3.0, se = sqrt(p * (1 - p) / n); /* binomial SE ~ 1.5e-3 */
    double frac = (double)low / n;
    ck_assert_msg(fabs(frac - p) < STAT_SIGMAS * se, "P(x < 2^30) = %.5f, expected 1/3 +- %.5f",
                  frac, STAT_SIGMAS * se);
}
END_TEST

/* Each face of a die within 5 SE of 1/6 over 6·10^5 rolls. */
START_TEST(test_below_uniform_faces) {
    const int n = 600000, faces = 6;
    long count[6] = {0};
    rng_t rng;
    rng_seed(&rng, 2024u, 1u);
    for (int i = 0; i < n; i++)
        count[rng_below(&rng, (uint32_t)faces)]++;
    double p = 1.0 / faces, se = sqrt(n * p * (1 - p));
    for (int f = 0; f < faces; f++)
        ck_assert_msg(fabs(count[f] - n * p) < STAT_SIGMAS * se, "face %d: %ld of %d", f, count[f],
                      n);
}
END_TEST

START_TEST(test_uniform_range_and_mean) {
    rng_t rng;
    rng_seed(&rng, 1u, 2u);
    double sum = 0, sumsq = 0;
    int fine_bits = 0; /* draws that are not multiples of 2^-32 */
    for (int i = 0; i < STAT_DRAWS; i++) {
        double u = rng_uniform(&rng);
        ck_assert_msg(u >= 0.0 && u < 1.0, "rng_uniform returned %.17g", u);
        /* 53 random bits: u·2^53 is an integer, and bits below 2^-32 are used. */
        ck_assert(ldexp(u, 53) == floor(ldexp(u, 53)));
        fine_bits += ldexp(u, 32) != floor(ldexp(u, 32));
        sum += u;
        sumsq += u * u;
    }
    double mean = sum / STAT_DRAWS, var = sumsq / STAT_DRAWS - mean * mean;
    double se_mean = sqrt(1.0 / 12.0 / STAT_DRAWS); /* Var U(0,1) = 1/12 */
    ck_assert_msg(fabs(mean - 0.5) < STAT_SIGMAS * se_mean, "mean %.6f", mean);
    /* SE(sample variance) = sqrt((mu4 - sigma^4)/n), mu4 - sigma^4 = 1/80 - 1/144 = 1/180: ~7.5e-5.
     */
    ck_assert_msg(fabs(var - 1.0 / 12.0) < STAT_SIGMAS * sqrt(1.0 / 180.0 / STAT_DRAWS),
                  "variance %.6f", var);
    ck_assert_msg(fine_bits > STAT_DRAWS / 2, "only %d draws use bits below 2^-32", fine_bits);
}
END_TEST

START_TEST(test_normal_moments_and_tail) {
    rng_t rng;
    rng_seed(&rng, 3u, 4u);
    double sum = 0, sumsq = 0;
    long tail = 0;
    for (int i = 0; i < STAT_DRAWS; i++) {
        double z = rng_normal(&rng);
        ck_assert_msg(isfinite(z), "draw %d is %g", i, z);
        sum += z;
        sumsq += z * z;
        tail += fabs(z) > 1.96;
    }
    double mean = sum / STAT_DRAWS, var = sumsq / STAT_DRAWS - mean * mean;
    double se_mean = 1.0 / sqrt(STAT_DRAWS);                   /* 1e-3 */
    double se_var = sqrt(2.0 / STAT_DRAWS);                    /* Var(z²) = 2: ~1.4e-3 */
    const double p_tail = 0.04999579029644087;                 /* P(|Z| > 1.96) = erfc(1.96/√2) */
    double se_tail = sqrt(p_tail * (1 - p_tail) / STAT_DRAWS); /* ~2.2e-4 */
    double frac_tail = (double)tail / STAT_DRAWS;
    ck_assert_msg(fabs(mean) < STAT_SIGMAS * se_mean, "mean %.6f", mean);
    ck_assert_msg(fabs(var - 1.0) < STAT_SIGMAS * se_var, "variance %.6f", var);
    ck_assert_msg(fabs(frac_tail - p_tail) < STAT_SIGMAS * se_tail, "P(|z| > 1.96) = %.6f",
                  frac_tail);
}
END_TEST

START_TEST(test_streams_and_reproducibility) {
    enum { N = 1000 };
    rng_t a, b, other_stream, other_seed;
    rng_seed(&a, 123u, RNG_STREAM_DATA_TRAIN);
    rng_seed(&b, 123u, RNG_STREAM_DATA_TRAIN);
    rng_seed(&other_stream, 123u, RNG_STREAM_DATA_TEST);
    rng_seed(&other_seed, 124u, RNG_STREAM_DATA_TRAIN);
    int same_stream_hits = 0, same_seed_hits = 0;
    for (int i = 0; i < N; i++) {
        uint32_t x = rng_u32(&a);
        ck_assert_uint_eq(x, rng_u32(&b));
        same_stream_hits += x == rng_u32(&other_stream);
        same_seed_hits += x == rng_u32(&other_seed);
    }
    /* Independent 32-bit sequences agree at a position with probability 2^-32. */
    ck_assert_int_eq(same_stream_hits, 0);
    ck_assert_int_eq(same_seed_hits, 0);
    /* Re-seeding restarts the sequence. */
    rng_seed(&b, 123u, RNG_STREAM_DATA_TRAIN);
    rng_seed(&a, 123u, RNG_STREAM_DATA_TRAIN);
    for (int i = 0; i < 10; i++)
        ck_assert(rng_normal(&a) == rng_normal(&b));
}
END_TEST

START_TEST(test_shuffle_permutation_and_determinism) {
    enum { N = 100 };
    int x[N], y[N], seen[N] = {0};
    for (int i = 0; i < N; i++)
        x[i] = y[i] = i;
    rng_t a, b;
    rng_seed(&a, 9u, RNG_STREAM_BATCH);
    rng_seed(&b, 9u, RNG_STREAM_BATCH);
    rng_shuffle(&a, x, N);
    rng_shuffle(&b, y, N);
    int moved = 0;
    for (int i = 0; i < N; i++) {
        ck_assert_msg(x[i] >= 0 && x[i] < N, "x[%d] = %d", i, x[i]);
        seen[x[i]]++;
        ck_assert_int_eq(x[i], y[i]);
        moved += x[i] != i;
    }
    for (int i = 0; i < N; i++)
        ck_assert_msg(seen[i] == 1, "%d appears %d times", i, seen[i]);
    /* A random permutation of 100 has ~1 fixed point; 90 is astronomically unlikely. */
    ck_assert_msg(moved > 90, "only %d of %d elements moved", moved, N);

    /* n = 0 and n = 1 are no-ops and draw nothing. */
    int one = 5;
    rng_t c = a;
    rng_shuffle(&a, NULL, 0);
    rng_shuffle(&a, &one, 1);
    ck_assert_int_eq(one, 5);
    ck_assert_uint_eq(rng_u32(&a), rng_u32(&c));
}
END_TEST

/* Every element reaches every position with probability 1/5: the counts of
 * the 5x5 (element, position) table over 10^5 shuffles are within 5 SE of
 * 2·10^4 (binomial SE = sqrt(n·p·(1-p)) ~ 126).  A classic off-by-one
 * (j drawn from [0, i-1), Sattolo) makes the diagonal zero. */
START_TEST(test_shuffle_positions_uniform) {
    enum { N = 5, SHUFFLES = 100000 };
    long count[N][N] = {{0}};
    rng_t rng;
    rng_seed(&rng, 77u, RNG_STREAM_BATCH);
    for (int s = 0; s < SHUFFLES; s++) {
        int idx[N] = {0, 1, 2, 3, 4};
        rng_shuffle(&rng, idx, N);
        for (int pos = 0; pos < N; pos++)
            count[idx[pos]][pos]++;
    }
    double p = 1.0 / N, se = sqrt(SHUFFLES * p * (1 - p));
    for (int e = 0; e < N; e++)
        for (int pos = 0; pos < N; pos++)
            ck_assert_msg(fabs(count[e][pos] - SHUFFLES * p) < STAT_SIGMAS * se,
                          "element %d at position %d: %ld of %d", e, pos, count[e][pos], SHUFFLES);
}
END_TEST

Suite *rng_suite(void) {
    Suite *s = suite_create("rng");

    TCase *tc = tcase_create("reference");
    tcase_add_test(tc, test_u32_matches_reference);
    tcase_add_test(tc, test_bounded_and_shuffle_match_reference);
    tcase_add_test(tc, test_streams_and_reproducibility);
    tcase_add_test(tc, test_shuffle_permutation_and_determinism);
    suite_add_tcase(s, tc);

    tc = tcase_create("distributions");
    tcase_set_timeout(tc, 30); /* 10^6 draws per test; slow under sanitizers */
    tcase_add_test(tc, test_below_in_range);
    tcase_add_test(tc, test_below_no_modulo_bias);
    tcase_add_test(tc, test_below_uniform_faces);
    tcase_add_test(tc, test_uniform_range_and_mean);
    tcase_add_test(tc, test_normal_moments_and_tail);
    tcase_add_test(tc, test_shuffle_positions_uniform);
    suite_add_tcase(s, tc);
    return s;
}
