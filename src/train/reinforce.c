/* reinforce.c -- REINFORCE over categorical choices (see reinforce.h). */
#include "train/reinforce.h"
#include "core/mem.h"

#include <math.h>
#include <string.h>

int reinforce_space_init(reinforce_space_t *s, int n_blocks, const int *choices, err_t *err) {
    memset(s, 0, sizeof *s);
    if (n_blocks < 1) return err_set(err, ERR_USAGE, "REINFORCE needs at least one block");
    s->choices = mem_calloc((size_t)n_blocks, sizeof *s->choices);
    s->offset = mem_calloc((size_t)n_blocks, sizeof *s->offset);
    if (!s->choices || !s->offset) {
        reinforce_space_free(s);
        return err_set(err, ERR_FAIL, "out of memory for %d REINFORCE blocks", n_blocks);
    }
    s->n_blocks = n_blocks;
    for (int b = 0; b < n_blocks; b++) {
        if (choices[b] < 1) {
            int c = choices[b];
            reinforce_space_free(s);
            return err_set(err, ERR_USAGE, "REINFORCE block %d has %d choices (needs >= 1)", b, c);
        }
        s->choices[b] = choices[b];
        s->offset[b] = s->n_logits;
        s->n_logits += (size_t)choices[b]; /* n_blocks ints of int size: no overflow */
    }
    return 0;
}

void reinforce_space_free(reinforce_space_t *s) {
    mem_free(s->choices);
    mem_free(s->offset);
    memset(s, 0, sizeof *s);
}

void reinforce_probs(const reinforce_space_t *s, const real *alpha, int b, double *p) {
    const real *a = alpha + s->offset[b];
    const int n = s->choices[b];
    double mx = a[0], sum = 0;
    for (int i = 1; i < n; i++)
        if (a[i] > mx) mx = a[i];
    for (int i = 0; i < n; i++)
        sum += p[i] = exp(a[i] - mx);
    for (int i = 0; i < n; i++)
        p[i] /= sum;
}

void reinforce_sample(const reinforce_space_t *s, const real *alpha, rng_t *rng, int *route) {
    for (int b = 0; b < s->n_blocks; b++) {
        const real *a = alpha + s->offset[b];
        const int n = s->choices[b];
        double mx = a[0], sum = 0;
        for (int i = 1; i < n; i++)
            if (a[i] > mx) mx = a[i];
        for (int i = 0; i < n; i++)
            sum += exp(a[i] - mx);
        const double u = rng_uniform(rng) * sum; /* u in [0, sum) */
        double acc = 0;
        int pick = n - 1; /* rounding: the last choice takes what is left */
        for (int i = 0; i < n; i++) {
            acc += exp(a[i] - mx);
            if (u < acc) {
                pick = i;
                break;
            }
        }
        route[b] = pick;
    }
}

void reinforce_argmax(const reinforce_space_t *s, const real *alpha, int *route) {
    for (int b = 0; b < s->n_blocks; b++) {
        const real *a = alpha + s->offset[b];
        int best = 0;
        for (int i = 1; i < s->choices[b]; i++)
            if (a[i] > a[best]) best = i;
        route[b] = best;
    }
}

double reinforce_entropy(const reinforce_space_t *s, const real *alpha, int b) {
    const real *a = alpha + s->offset[b];
    const int n = s->choices[b];
    double mx = a[0], sum = 0, h = 0;
    for (int i = 1; i < n; i++)
        if (a[i] > mx) mx = a[i];
    for (int i = 0; i < n; i++)
        sum += exp(a[i] - mx);
    const double log_sum = log(sum);
    for (int i = 0; i < n; i++) {
        double logp = a[i] - mx - log_sum;
        h -= exp(logp) * logp;
    }
    return h;
}

double reinforce_log_prob(const reinforce_space_t *s, const real *alpha, const int *route) {
    double lp = 0;
    for (int b = 0; b < s->n_blocks; b++) {
        const real *a = alpha + s->offset[b];
        const int n = s->choices[b];
        double mx = a[0], sum = 0;
        for (int i = 1; i < n; i++)
            if (a[i] > mx) mx = a[i];
        for (int i = 0; i < n; i++)
            sum += exp(a[i] - mx);
        lp += a[route[b]] - mx - log(sum);
    }
    return lp;
}

void reinforce_score_grad(const reinforce_space_t *s, const real *alpha, const int *route,
                          double weight, real *grad) {
    for (int b = 0; b < s->n_blocks; b++) {
        const real *a = alpha + s->offset[b];
        real *g = grad + s->offset[b];
        const int n = s->choices[b];
        double mx = a[0], sum = 0;
        for (int i = 1; i < n; i++)
            if (a[i] > mx) mx = a[i];
        for (int i = 0; i < n; i++)
            sum += exp(a[i] - mx);
        for (int i = 0; i < n; i++) { /* weight · (e_u − p)_i */
            double p = exp(a[i] - mx) / sum;
            g[i] += (real)(weight * ((i == route[b]) - p));
        }
    }
}

void reinforce_config_default(reinforce_config_t *c) {
    *c = (reinforce_config_t){.decay = 0.9, .lr = 0.01, .beta1 = 0.0, .samples = 1};
}

int reinforce_init(reinforce_t *r, const reinforce_space_t *space, const reinforce_config_t *cfg,
                   err_t *err) {
    memset(r, 0, sizeof *r);
    if (!(cfg->decay >= 0 && cfg->decay < 1))
        return err_set(err, ERR_USAGE, "baseline_decay must be in [0, 1) (got %g)", cfg->decay);
    if (!(cfg->lr > 0) || !isfinite(cfg->lr))
        return err_set(err, ERR_USAGE, "arch_lr must be a positive number (got %g)", cfg->lr);
    if (!(cfg->beta1 >= 0 && cfg->beta1 < 1))
        return err_set(err, ERR_USAGE, "the architecture Adam's beta1 must be in [0, 1) (got %g)",
                       cfg->beta1);
    if (cfg->samples < 1)
        return err_set(err, ERR_USAGE, "samples must be at least 1 (got %d)", cfg->samples);
    r->space = space;
    r->cfg = *cfg;
    if (adam_init(&r->adam, space->n_logits, cfg->lr, err)) return -1;
    r->adam.beta1 = cfg->beta1;
    r->grad = mem_calloc(space->n_logits, sizeof(real));
    if (!r->grad) {
        reinforce_free(r);
        return err_set(err, ERR_FAIL, "out of memory for %zu architecture gradients",
                       space->n_logits);
    }
    return 0;
}

void reinforce_free(reinforce_t *r) {
    adam_free(&r->adam);
    mem_free(r->grad);
    r->grad = NULL;
}

double reinforce_baseline(reinforce_t *r, const double *rewards) {
    double mean = 0;
    for (int j = 0; j < r->cfg.samples; j++)
        mean += rewards[j];
    mean /= r->cfg.samples;
    r->baseline = r->updates == 0 ? mean : r->cfg.decay * r->baseline + (1 - r->cfg.decay) * mean;
    r->updates++;
    return r->baseline;
}

void reinforce_update(reinforce_t *r, real *alpha, const int *routes, const double *rewards) {
    const reinforce_space_t *s = r->space;
    const int K = r->cfg.samples;
    const double b = reinforce_baseline(r, rewards);
    memset(r->grad, 0, sizeof(real) * s->n_logits);
    for (int j = 0; j < K; j++) /* −(1/K)(R_j − b) ∇ log p(u_j): Adam minimises −J */
        reinforce_score_grad(s, alpha, routes + (size_t)j * s->n_blocks, -(rewards[j] - b) / K,
                             r->grad);
    adam_step(&r->adam, alpha, r->grad);
}
