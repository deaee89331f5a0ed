/* train.h -- the training loop and evaluation, free of printing and I/O.
 *
 * train_run() trains a model with Adam on mini-batches drawn from a shuffled
 * training set (reshuffled at every epoch), and every `eval_every` steps (and
 * after the last step) hands an evaluation to a callback: the mean training
 * loss since the previous evaluation, and the validation and test losses per
 * task and in total.  Callers (the `train` command, the sweep runner) decide
 * what to print or store.  Deterministic: the same model, data, config and
 * batch seed give bit-identical results. */
#ifndef MTLAB_TRAIN_H
#define MTLAB_TRAIN_H

#include <stdint.h>

#include "core/adam.h"
#include "core/err.h"
#include "core/limits.h"
#include "data/dataset.h"
#include "models/model.h"

typedef struct {
    double lr;                           /* Adam learning rate */
    int batch;                           /* examples per step (<= model max_batch) */
    int steps;                           /* optimiser steps */
    int eval_every;                      /* evaluate every k steps (and at the end) */
    double task_weight[MTLAB_MAX_TASKS]; /* total loss = Σ_k weight_k loss_k */
} train_config_t;

/* Losses at one evaluation; index T (= tasks) holds the weighted total. */
typedef struct {
    int step;
    int tasks;
    double train[MTLAB_MAX_TASKS + 1]; /* mean mini-batch loss over the steps since the last eval */
    double val[MTLAB_MAX_TASKS + 1];
    double test[MTLAB_MAX_TASKS + 1];
} train_eval_t;

typedef void (*train_eval_fn)(void *ctx, const train_eval_t *ev);

typedef struct {
    train_eval_t final; /* the last evaluation */
    int failed_step;    /* 0, or the step at which the loss became NaN/Inf */
} train_result_t;

/* Defaults: lr 1e-3, batch 128, steps 3000, eval_every 100, weights 1. */
void train_config_default(train_config_t *cfg);

/* Trains m on data->train; evaluates on data->val and data->test.  Mini-batch
 * order comes from (batch_seed, RNG_STREAM_BATCH).  On divergence (NaN/Inf in
 * the loss) returns -1 with ERR_FAIL naming the step, and res->failed_step
 * set; bad configuration returns -1 with ERR_USAGE. */
int train_run(model_t *m, const data_t *data, const train_config_t *cfg, uint64_t batch_seed,
              train_eval_fn on_eval, void *ctx, train_result_t *res, err_t *err);

/* The step loop of train_run(), for callers that drive the steps themselves
 * (the benchmarks).  train_begin() checks the configuration and allocates
 * everything the steps need (Adam moments, the shuffled order, one
 * mini-batch, predictions and their gradients); train_step() then allocates
 * nothing.  train_run() is train_begin, train_step x steps with evaluations,
 * train_end, so a caller that steps by hand trains the same bits. */
typedef struct {
    model_t *m;
    const data_t *data;
    train_config_t cfg;
    adam_t adam;
    rng_t batch_rng; /* (batch_seed, RNG_STREAM_BATCH): the epochs' shuffles */
    int *order;      /* [n_train] shuffled example indices */
    int pos;         /* next unused position in order */
    real *xb, *yb;   /* [batch, d], [batch, T] the current mini-batch */
    real *pred;      /* [max_batch, T] */
    real *dpred;     /* [max_batch, T] */
} train_state_t;

/* Returns 0, or -1 with *err (ERR_USAGE for a bad configuration). */
int train_begin(train_state_t *s, model_t *m, const data_t *data, const train_config_t *cfg,
                uint64_t batch_seed, err_t *err);
/* One optimiser step on the next mini-batch: forward, loss, backward, Adam.
 * batch_loss[0..T) gets the mini-batch loss per task, [T] the weighted
 * total.  Returns 0, or -1 when a loss is NaN or infinite (the parameters are
 * then left as they were). */
int train_step(train_state_t *s, double *batch_loss);
void train_end(train_state_t *s);

/* Upper estimate of the heap train_run, then train_gate_stats, take for a
 * model whose model_sizes() are *ms (config *mc), trained with *tc on
 * n_train examples -- computed without allocating.  Returns 0, or -1 with
 * *err (ERR_USAGE) when a size overflows. */
typedef struct {
    size_t adam;       /* Adam's two moments over the trained weights */
    size_t steps;      /* train_begin's buffers: shuffled order, mini-batch, predictions */
    size_t gate_stats; /* train_gate_stats: its predictions and the statistics it returns */
} train_memory_t;
int train_memory(const model_sizes_t *ms, const model_config_t *mc, const train_config_t *tc,
                 int n_train, train_memory_t *out, err_t *err);

/* Mean loss per task (and weighted total at [T]) of the model on a split, in
 * MODEL_EVAL mode, in chunks of the model's max_batch. */
int train_evaluate(model_t *m, const data_t *data, const dataset_t *split,
                   const double *task_weight, double *loss, err_t *err);

/* Loss per task (total at [T]) on `split` of the constant predictor that a
 * model should beat: the training-set mean of each label (for binary tasks the
 * logit of the training positive rate). */
void train_mean_baseline(const data_t *data, const dataset_t *split, const double *task_weight,
                         double *loss);

/* Gate statistics over a split (SPEC §7): per gate (every gate the model
 * registered, any number) and expert the mean and standard deviation of the
 * gate's weight, and a GATE_HIST_BINS-bin histogram of it on [lo, hi] (the
 * last bin includes hi): [0, 1] for a softmax gate; for a raw-weights gate
 * the range of its values over the split, so no value falls outside. */
#define GATE_HIST_BINS 20
typedef struct {
    char name[MODEL_GATE_NAME];
    int level;
    char owner[MODEL_GATE_OWNER];
    gate_kind_t kind;
    double lo, hi; /* histogram range */
    int experts;
    double *mean; /* [experts] */
    double *std;  /* [experts] */
    long *hist;   /* [experts][GATE_HIST_BINS] */
} gate_stat_t;

typedef struct {
    int n_gates;
    long examples;     /* rows measured (each histogram row sums to this) */
    gate_stat_t *gate; /* [n_gates] */
} gate_stats_t;

/* "softmax" or "weights": the gate kind as the store records it. */
const char *gate_kind_name(gate_kind_t kind);

int train_gate_stats(model_t *m, const dataset_t *split, gate_stats_t *out, err_t *err);
void gate_stats_free(gate_stats_t *s);

#endif
