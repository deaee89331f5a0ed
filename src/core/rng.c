/* PCG32 from its published definition (M.E. O'Neill, "PCG: A Family of Simple
 * Fast Space-Efficient Statistically Good Algorithms for Random Number
 * Generation", 2014; pcg32_random_r / pcg32_srandom_r of pcg-c-basic). */
#include "core/rng.h"

#include <math.h>

#define PCG_MULT 6364136223846793005ULL

uint32_t rng_u32(rng_t *rng) {
    uint64_t old = rng->state;
    rng->state = old * PCG_MULT + rng->inc;
    uint32_t xorshifted = (uint32_t)(((old >> 18u) ^ old) >> 27u);
    uint32_t rot = (uint32_t)(old >> 59u);
    return (xorshifted >> rot) | (xorshifted << ((-rot) & 31u));
}

void rng_seed(rng_t *rng, uint64_t seed, uint64_t stream) {
    rng->state = 0u;
    rng->inc = (stream << 1u) | 1u;
    rng_u32(rng);
    rng->state += seed;
    rng_u32(rng);
}

uint32_t rng_below(rng_t *rng, uint32_t bound) {
    /* Reject the low values that would make the modulo uneven (pcg32_boundedrand_r). */
    uint32_t threshold = (uint32_t)(-bound) % bound;
    for (;;) {
        uint32_t r = rng_u32(rng);
        if (r >= threshold) return r % bound;
    }
}

double rng_uniform(rng_t *rng) {
    uint64_t hi = rng_u32(rng) >> 5; /* 27 bits */
    uint64_t lo = rng_u32(rng) >> 6; /* 26 bits */
    return (double)(hi * 67108864u + lo) * (1.0 / 9007199254740992.0);
}

double rng_normal(rng_t *rng) {
    /* 1 - u is in (0, 1], so the log is finite. */
    double u1 = 1.0 - rng_uniform(rng);
    double u2 = rng_uniform(rng);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void rng_shuffle(rng_t *rng, int *idx, size_t n) {
    for (size_t i = n; i > 1; i--) {
        size_t j = rng_below(rng, (uint32_t)i);
        int t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}
