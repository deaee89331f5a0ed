#include "train/trial.h"
#include "train/search.h"
#include "core/mem.h"

#include <limits.h>
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
    trial_result_t *out = c->out;
    if (out->n_evals == c->cap) { /* not expected: trial_run sizes the curve */
        if (c->cap > INT_MAX / 2) {
            c->oom = 1;
            return;
        }
        int cap = c->cap ? 2 * c->cap : 64;
        train_eval_t *grown = mem_realloc(out->evals, sizeof *grown * cap);
        if (!grown) {
            c->oom = 1;
            return;
        }
        out->evals = grown;
        if (out->route_count > 0) {
            size_t bytes;
            model_route_t *routes = NULL;
            if (!size_mul3(&bytes, (size_t)cap, (size_t)out->route_count, sizeof *routes))
                routes = mem_realloc(out->routes, bytes);
            if (!routes) {
                c->oom = 1;
                return;
            }
            out->routes = routes;
        }
        c->cap = cap;
    }
    if (out->route_count > 0) /* the routes at this evaluation's parameters */
        model_routes(out->model, out->routes + (size_t)out->n_evals * out->route_count);
    out->evals[out->n_evals++] = *ev;
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

/* The model a trial builds: the spec's hyper-parameters on the data's shape,
 * with a workspace for one mini-batch. */
static model_config_t trial_model_config(const trial_spec_t *spec) {
    model_config_t mc = spec->model_cfg;
    mc.input_dim = spec->data.dim;
    mc.tasks = spec->data.tasks;
    mc.max_batch = spec->train.batch > 0 ? spec->train.batch : 1;
    return mc;
}

/* Evaluations train_run will report: every eval_every steps and at the end. */
static size_t trial_eval_count(const train_config_t *tc) {
    if (tc->steps < 1 || tc->eval_every < 1) return 0; /* train_run refuses */
    return (size_t)(tc->steps / tc->eval_every) + (tc->steps % tc->eval_every != 0);
}

int trial_run_cached(const trial_spec_t *spec, trial_data_cache_t *cache, train_eval_fn on_eval,
                     void *ctx, trial_result_t *out, err_t *err) {
    memset(out, 0, sizeof *out);
    const model_ops_t *ops = model_find(spec->model);
    if (!ops) { /* let model_new word the message */
        model_t *none;
        return model_new(&none, spec->model, &spec->model_cfg, 0, err);
    }
    return trial_run_family(spec, ops, cache, on_eval, ctx, out, err);
}

int trial_run_family(const trial_spec_t *spec, const model_ops_t *ops, trial_data_cache_t *cache,
                     train_eval_fn on_eval, void *ctx, trial_result_t *out, err_t *err) {
    memset(out, 0, sizeof *out);
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

    model_config_t mc = trial_model_config(spec);
    int status = model_new_ops(&out->model, ops, &mc, spec->init_seed, err);
    /* The learning curve, allocated once for every evaluation. */
    collector_t col = {.out = out, .user_fn = on_eval, .user_ctx = ctx};
    const size_t n_evals = trial_eval_count(&spec->train);
    if (status == 0 && n_evals > 0) {
        out->evals = mem_calloc(n_evals, sizeof *out->evals);
        if (!out->evals)
            status = err_set(err, ERR_FAIL, "out of memory for a learning curve of %zu evaluations",
                             n_evals);
        /* The routes at every evaluation, allocated once too. */
        out->route_count = model_routes(out->model, NULL);
        if (status == 0 && out->route_count > 0) {
            size_t bytes;
            if (size_mul3(&bytes, n_evals, (size_t)out->route_count, sizeof *out->routes) ||
                !(out->routes = mem_alloc(bytes)))
                status = err_set(err, ERR_FAIL,
                                 "out of memory for the routes of %zu evaluations (%d each)",
                                 n_evals, out->route_count);
        }
        col.cap = (int)n_evals; /* <= steps */
    }
    if (status == 0) {
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
    mem_free(r->evals);
    mem_free(r->routes);
    gate_stats_free(&r->gates);
    model_free(r->model);
    memset(r, 0, sizeof *r);
}

int trial_memory_estimate(const trial_spec_t *spec, trial_memory_t *out, err_t *err) {
    memset(out, 0, sizeof *out);
    size_t resident, transient;
    if (synth_memory(&spec->data, &resident, &transient, err)) return -1;
    /* The generator's buffers are gone before the model exists, but a sum
     * is simpler and costs little (they are a few percent of the data). */
    if (size_add(&out->data, resident, transient)) goto overflow;
    if (spec->train.steps != 0) {
        const model_config_t mc = trial_model_config(spec);
        model_sizes_t ms;
        train_memory_t tm;
        int n_binary = 0;
        for (int k = 0; k < spec->data.tasks && k < MTLAB_MAX_TASKS; k++)
            n_binary += spec->data.binary[k];
        const int n_eval =
            spec->data.n_val > spec->data.n_test ? spec->data.n_val : spec->data.n_test;
        if (model_sizes(spec->model, &mc, &ms, err) ||
            train_memory(&ms, &mc, &spec->train, spec->data.n_train, n_eval, n_binary, &tm, err))
            return -1;
        size_t search = 0; /* the MTNAS route search's buffers (train/search.h) */
        if (search_wanted_config(model_find(spec->model), &mc) &&
            (search_memory(&ms, &mc, &spec->train, &search, err) ||
             size_add(&tm.steps, tm.steps, search)))
            return -1;
        size_tally_t curve = {0};
        size_tally_block(&curve, trial_eval_count(&spec->train), sizeof(train_eval_t));
        if (ms.n_routes > 0) /* the routes at every evaluation */
            size_tally_block(&curve, trial_eval_count(&spec->train) * (size_t)ms.n_routes,
                             sizeof(model_route_t));
        /* The training buffers are freed before the gate statistics are
         * taken; summing both keeps the estimate an upper bound. */
        if (size_add(&out->model, ms.model_bytes, tm.adam) || curve.overflow ||
            size_add(&out->workspace, ms.act_bytes, tm.steps) ||
            size_add(&out->workspace, out->workspace, tm.gate_stats) ||
            size_add(&out->workspace, out->workspace, curve.bytes))
            goto overflow;
    }
    if (size_add(&out->total, out->data, out->model) ||
        size_add(&out->total, out->total, out->workspace))
        goto overflow;
    return 0;
overflow:
    memset(out, 0, sizeof *out);
    return err_set(err, ERR_USAGE, "the memory a trial of model '%s' needs overflows", spec->model);
}

int trial_param_count(const trial_spec_t *spec, size_t *out, err_t *err) {
    *out = 0;
    if (spec->train.steps == 0) return 0;
    const model_config_t mc = trial_model_config(spec);
    model_sizes_t ms;
    if (model_sizes(spec->model, &mc, &ms, err)) return -1;
    *out = ms.n_params;
    return 0;
}
