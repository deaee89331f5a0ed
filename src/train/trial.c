#include "train/trial.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void trial_spec_default(trial_spec_t *spec) {
    memset(spec, 0, sizeof *spec);
    synth_defaults(&spec->data);
    snprintf(spec->model, sizeof spec->model, "mmoe");
    model_config_default(&spec->model_cfg, model_find(spec->model));
    train_config_default(&spec->train);
    spec->data_seed = 1;
    spec->init_seed = 1;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct {
    trial_result_t *out;
    int cap;
    train_eval_fn user_fn;
    void *user_ctx;
    int oom;
} collector_t;

static void collect(void *ctx, const train_eval_t *ev) {
    collector_t *c = ctx;
    if (c->out->n_evals == c->cap) {
        int cap = c->cap ? 2 * c->cap : 64;
        train_eval_t *grown = realloc(c->out->evals, sizeof *grown * cap);
        if (!grown) {
            c->oom = 1;
            return;
        }
        c->out->evals = grown;
        c->cap = cap;
    }
    c->out->evals[c->out->n_evals++] = *ev;
    if (c->user_fn) c->user_fn(c->user_ctx, ev);
}

/* Pearson correlation of label columns i and j of a split (0 when either is
 * constant). */
static double label_correlation(const dataset_t *split, int T, int i, int j) {
    double mi = 0, mj = 0;
    for (int r = 0; r < split->n; r++) {
        mi += split->y[(size_t)r * T + i];
        mj += split->y[(size_t)r * T + j];
    }
    mi /= split->n;
    mj /= split->n;
    double sij = 0, sii = 0, sjj = 0;
    for (int r = 0; r < split->n; r++) {
        double a = split->y[(size_t)r * T + i] - mi, b = split->y[(size_t)r * T + j] - mj;
        sij += a * b;
        sii += a * a;
        sjj += b * b;
    }
    return sii > 0 && sjj > 0 ? sij / sqrt(sii * sjj) : 0;
}

void trial_data_cache_free(trial_data_cache_t *cache) {
    if (cache->valid) data_free(&cache->data);
    memset(cache, 0, sizeof *cache);
}

/* Points *data at the dataset of (spec->data, spec->data_seed), generating it
 * unless the cache holds it. */
static int cached_data(const trial_spec_t *spec, trial_data_cache_t *cache, const data_t **data,
                       err_t *err) {
    if (!cache->valid || cache->seed != spec->data_seed ||
        memcmp(&cache->params, &spec->data, sizeof cache->params) != 0) {
        trial_data_cache_free(cache);
        if (synth_generate(&spec->data, spec->data_seed, &cache->data, err)) return -1;
        cache->params = spec->data;
        cache->seed = spec->data_seed;
        cache->valid = true;
    }
    *data = &cache->data;
    return 0;
}

int trial_run_cached(const trial_spec_t *spec, trial_data_cache_t *cache, train_eval_fn on_eval,
                     void *ctx, trial_result_t *out, err_t *err) {
    memset(out, 0, sizeof *out);
    if (!model_find(spec->model)) { /* let model_new word the message */
        model_t *none;
        return model_new(&none, spec->model, &spec->model_cfg, 0, err);
    }
    if (synth_check(&spec->data, err)) return -1;

    double t0 = now();
    const data_t *data;
    if (cached_data(spec, cache, &data, err)) return -1;
    double t1 = now();
    out->seconds_data = t1 - t0;
    const int T = spec->data.tasks;
    for (int i = 0; i < T; i++)
        for (int j = i + 1; j < T; j++)
            out->label_pearson[i][j] = label_correlation(&data->train, T, i, j);
    train_mean_baseline(data, &data->test, spec->train.task_weight, out->baseline);
    if (spec->train.steps == 0) return 0; /* data-only trial */

    model_config_t mc = spec->model_cfg;
    mc.input_dim = spec->data.dim;
    mc.tasks = spec->data.tasks;
    mc.max_batch = spec->train.batch > 0 ? spec->train.batch : 1;
    int status = model_new(&out->model, spec->model, &mc, spec->init_seed, err);
    if (status == 0) {
        collector_t col = {.out = out, .user_fn = on_eval, .user_ctx = ctx};
        status = train_run(out->model, data, &spec->train, spec->init_seed, collect, &col,
                           &out->result, err);
        if (status == 0 && col.oom)
            status = err_set(err, ERR_FAIL, "out of memory recording the learning curve");
    }
    double t2 = now();
    out->seconds_train = t2 - t1;
    if (status == 0) {
        status = train_gate_stats(out->model, &data->test, &out->gates, err);
        out->seconds_gates = now() - t2;
    }
    return status;
}

int trial_run(const trial_spec_t *spec, train_eval_fn on_eval, void *ctx, trial_result_t *out,
              err_t *err) {
    trial_data_cache_t cache = {0};
    int status = trial_run_cached(spec, &cache, on_eval, ctx, out, err);
    trial_data_cache_free(&cache);
    return status;
}

void trial_result_free(trial_result_t *r) {
    free(r->evals);
    gate_stats_free(&r->gates);
    model_free(r->model);
    memset(r, 0, sizeof *r);
}
