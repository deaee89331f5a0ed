/* trial.h -- one trial end to end: generate the data, build the model, train,
 * measure the gates.  `mtlab train` and the sweep runner both call
 * trial_run(), so a trial stored by a sweep and the same trial run from the
 * command line give the same bits.  No printing or I/O: the curve is handed
 * to the caller's callback as it is produced, and collected in the result. */
#ifndef MTLAB_TRIAL_H
#define MTLAB_TRIAL_H

#include <stdbool.h>
#include <stdint.h>

#include "data/synth.h"
#include "models/model.h"
#include "train/train.h"

typedef struct {
    synth_params_t data;
    char model[32];           /* registry name */
    model_config_t model_cfg; /* input_dim, tasks and max_batch are set by trial_run */
    train_config_t train;
    uint64_t data_seed; /* the dataset */
    uint64_t init_seed; /* initialisation, batch order, stochastic passes */
} trial_spec_t;

typedef struct {
    int n_evals;
    train_eval_t *evals;                  /* [n_evals] the curve, one entry per evaluation */
    train_result_t result;                /* final evaluation; failed_step on divergence */
    gate_stats_t gates;                   /* on the test set after training (empty on failure) */
    double baseline[MTLAB_MAX_TASKS + 1]; /* test loss of predicting the training mean */
    /* Pearson correlation of the labels of tasks i < j on the training split
     * ([i][j]; the MMoE paper's measure of task relatedness, its Fig 2). */
    double label_pearson[MTLAB_MAX_TASKS][MTLAB_MAX_TASKS];
    /* The model's routes (model_routes) at every evaluation: route_count per
     * evaluation, routes[e * route_count + i] taken right after evals[e] (at
     * the parameters of step evals[e].step); the last evaluation's are the
     * final routes.  route_count 0 (routes NULL): a family without routes. */
    int route_count;
    model_route_t *routes; /* [n_evals * route_count] */
    model_t *model;        /* the trained model: parameters and tensor table */
    double seconds_data, seconds_train, seconds_gates; /* wall-clock time per phase */
} trial_result_t;

/* The dataset of the last trial, kept for the next: trial_run_cached()
 * generates data only when the data parameters or the data seed differ from
 * the cached ones.  A dataset is a pure function of (params, seed), so a trial
 * on cached data gives the bits of one on fresh data.  The sweep runner keeps
 * one per worker, because a sweep lists the models of one data setting next
 * to each other.  Zero-initialise; free with trial_data_cache_free. */
typedef struct {
    bool valid;
    synth_params_t params; /* compared byte for byte: equal bytes, equal data */
    uint64_t seed;
    data_t data;
} trial_data_cache_t;

void trial_data_cache_free(trial_data_cache_t *cache);

/* Fills spec with the defaults of every part (SPEC §3-5; model mmoe). */
void trial_spec_default(trial_spec_t *spec);

/* Runs the trial.  on_eval (may be NULL) sees each evaluation as it happens.
 * With spec->train.steps == 0 the trial is data-only: the dataset is
 * generated and measured (label_pearson, baseline), no model is built (model
 * stays NULL) -- what a study of the generator itself (MMoE Fig 2) needs.
 * Returns 0, or -1 with *err: ERR_USAGE for an invalid spec, ERR_FAIL for a
 * diverged run (out->result.failed_step > 0; the curve up to then is kept) or
 * another failure.  Free *out with trial_result_free in every case. */
int trial_run(const trial_spec_t *spec, train_eval_fn on_eval, void *ctx, trial_result_t *out,
              err_t *err);
/* trial_run with the data taken from, or generated into, *cache. */
int trial_run_cached(const trial_spec_t *spec, trial_data_cache_t *cache, train_eval_fn on_eval,
                     void *ctx, trial_result_t *out, err_t *err);
/* trial_run_cached with the family given by its ops, registered or not
 * (spec->model is not read): tests run families of their own through the
 * whole trial. */
int trial_run_family(const trial_spec_t *spec, const model_ops_t *ops, trial_data_cache_t *cache,
                     train_eval_fn on_eval, void *ctx, trial_result_t *out, err_t *err);
void trial_result_free(trial_result_t *r);

/* ---- memory ---- */

typedef struct {
    size_t data, model, workspace, total; /* bytes; total = data + model + workspace */
} trial_memory_t;

/* Upper estimate of the heap one trial needs: dataset (train+val+test rows x
 * (inputs + labels), and the generator's working buffers), model
 * (parameters, gradients, Adam moments, tensor table and state), workspace
 * (activations for max_batch, the training and evaluation buffers, gate
 * statistics, the learning curve); every block with the allocator's
 * overhead.  A data-only spec (train.steps == 0) needs data only.  Cheap: it
 * computes sizes and allocates nothing.  Process-wide memory (OpenBLAS's
 * buffers, the code, the stack) is not a trial's and is not counted.
 * Returns 0, or -1 with *err (ERR_USAGE) when a size overflows size_t or the
 * spec is invalid (the message trial_run would give). */
int trial_memory_estimate(const trial_spec_t *spec, trial_memory_t *out, err_t *err);

/* The parameter count of the model the trial trains, without building it
 * (0 for a data-only spec).  Returns 0, or -1 with *err as model_sizes. */
int trial_param_count(const trial_spec_t *spec, size_t *out, err_t *err);

#endif
