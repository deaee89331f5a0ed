/* rng.h -- PCG32 random numbers (O'Neill, PCG-XSH-RR with 64-bit state).
 *
 * Every random decision in mtlab goes through an explicit rng_t: there is no
 * hidden global generator.  A generator is identified by (seed, stream); mtlab
 * gives each purpose its own stream (RNG_STREAM_*), so e.g. the test set does
 * not change when the training-set size does, and the init seed never
 * correlates with the data seed even when they are the same number. */
#ifndef MTLAB_RNG_H
#define MTLAB_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t state;
    uint64_t inc; /* stream selector, always odd */
} rng_t;

/* Streams: one per purpose.  Values are part of the reproducibility contract;
 * never renumber them. */
enum {
    RNG_STREAM_DATA_W = 1,     /* task weight vectors (u_k) */
    RNG_STREAM_DATA_TRAIN = 2, /* training inputs and noise */
    RNG_STREAM_DATA_VAL = 3,
    RNG_STREAM_DATA_TEST = 4,
    RNG_STREAM_ALPHA = 5, /* sinusoid alpha/beta of an experiment */
    RNG_STREAM_INIT = 10, /* model parameter initialisation */
    RNG_STREAM_BATCH = 11, /* mini-batch shuffling */
    RNG_STREAM_MODEL = 12, /* stochastic forward passes (SNR, MTNAS) */
    RNG_STREAM_SEARCH_VAL = 13, /* MTNAS search: the validation batches of the reward */
    RNG_STREAM_SWEEP_DRAW = 20, /* random-search draws of a sweep's distributions */
    RNG_STREAM_BOOTSTRAP = 30,  /* resampling of repeats (claims) */
};

/* The reference pcg32_srandom_r(initstate, initseq). */
void rng_seed(rng_t *rng, uint64_t seed, uint64_t stream);
uint32_t rng_u32(rng_t *rng);
/* Uniform integer in [0, bound) without modulo bias; bound > 0. */
uint32_t rng_below(rng_t *rng, uint32_t bound);
/* Uniform double in [0, 1) with 53 random bits. */
double rng_uniform(rng_t *rng);
/* Standard normal N(0,1) (Box-Muller on two fresh uniforms; stateless). */
double rng_normal(rng_t *rng);
/* Fisher-Yates shuffle of idx[0..n). */
void rng_shuffle(rng_t *rng, int *idx, size_t n);

#endif
