/* train.h -- the training loop and evaluation, free of printing and I/O.
 *
 * train_run() trains a model with Adam on mini-batches drawn from a shuffled
 * training set (reshuffled at every epoch), and every `eval_every` steps (and
 * after the last step) hands an evaluation to a callback: the mean training
 * loss since the previous evaluation, and the validation and test losses per
 * task and in total; for binary tasks also AUC and normalised entropy on the
 * validation and test sets (metrics.h), for a model with a penalty the
 * mean penalty since the previous evaluation, and for a model with a
 * serving_params hook (SNR) its serving size at that step.  After every
 * optimiser step a model's constrain hook (SNR's log-alpha clamp) runs.  Callers (the `train` command,
 * the sweep runner) decide what to print or store.  Deterministic: the same
 * model, data, config and batch seed give bit-identical results.
 *
 * The objective.  Each step minimises  Σ_k weight_k loss_k + penalty(params)
 * on its mini-batch, where the penalty is the model's optional `penalty` hook
 * (0 without one).  A NaN or infinite loss or penalty stops the run as
 * diverged.
 *
 * Two parameter groups (models/model.h).  The weights params[0, n_weights)
 * have their own Adam; the architecture parameters params[n_weights,
 * n_params) are frozen unless `arch` says otherwise, in which case a second
 * Adam with its own learning rate, step count and moments updates them from
 * the gradient of the same objective: every step together with the weights
 * (TRAIN_ARCH_JOINT), or on alternate steps (TRAIN_ARCH_ALTERNATE: odd steps
 * the weights, even steps the architecture, each on its own mini-batch).
 * The REINFORCE search of MTNAS is train/search.h: train_run hands it the
 * models that want it (search_wanted).
 *
 * Per-tensor learning rates.  A tensor whose lr_scale (models/model.h) is
 * not 1 is trained by its group's Adam with that group's learning rate times
 * the scale (adam_set_scale): a cross-stitch unit's `stitch_lr`.  Tensors
 * at scale 1 -- every tensor of most families -- train exactly as without
 * the mechanism (the same bits). */
#ifndef MTLAB_TRAIN_H
#define MTLAB_TRAIN_H

#include <stdint.h>

#include "core/adam.h"
#include "core/err.h"
#include "core/limits.h"
#include "data/dataset.h"
#include "models/model.h"
#include "train/metrics.h"

/* What trains the architecture group params[n_weights, n_params). */
typedef enum {
    TRAIN_ARCH_FROZEN = 0, /* nothing: the group keeps its initial values */
    TRAIN_ARCH_JOINT,      /* both groups every step, on the same mini-batch */
    TRAIN_ARCH_ALTERNATE,  /* odd steps the weights, even steps the architecture */
} train_arch_t;

typedef struct {
    double lr;                             /* Adam learning rate of the weights */
    int batch;                             /* examples per step (<= model max_batch) */
    int steps;                             /* optimiser steps */
    int eval_every;                        /* evaluate every k steps (and at the end) */
    double task_weight[MTLAB_MAX_TASKS];   /* total loss = Σ_k weight_k loss_k */
    train_arch_t arch;                     /* the architecture group's schedule */
    double arch_lr;                        /* its Adam learning rate (unless frozen) */
} train_config_t;

/* Measures at one evaluation; index T (= tasks) of the losses holds the
 * weighted total.  No padding: callers compare evaluations with memcmp. */
typedef struct {
    int step;
    int tasks;
    uint32_t binary;                   /* bit k set: task k is binary (has AUC and NE) */
    int has_penalty;                   /* whether the model has a penalty */
    double train[MTLAB_MAX_TASKS + 1]; /* mean mini-batch loss over the steps since the last eval */
    double val[MTLAB_MAX_TASKS + 1];
    double test[MTLAB_MAX_TASKS + 1];
    /* Binary tasks on the validation and test sets, indexed [split][task]
     * (METRIC_VAL, METRIC_TEST); NAN elsewhere and where undefined. */
    double auc[METRIC_TEST + 1][MTLAB_MAX_TASKS];
    double ne[METRIC_TEST + 1][MTLAB_MAX_TASKS];
    double penalty; /* mean penalty over the steps since the last eval (if has_penalty) */
    /* The served model's parameters at this evaluation (model_serving_params),
     * for a family with a serving_params hook (has_serving; else 0): the
     * metric model/serving_params. */
    int has_serving;
    int unused; /* 0: keeps the struct free of padding (memcmp) */
    double serving_params;
} train_eval_t;
_Static_assert(MTLAB_MAX_TASKS <= 32, "train_eval_t.binary is a 32-bit mask");

/* The most metrics an evaluation carries (train_eval_metrics). */
#define TRAIN_EVAL_MAX_METRICS (3 * (MTLAB_MAX_TASKS + 1) + 4 * MTLAB_MAX_TASKS + 2)

/* Lists into out[TRAIN_EVAL_MAX_METRICS] the metrics ev carries, in a fixed
 * order: the losses of train, val and test (tasks, then the total); AUC and
 * NE of each binary task on val, then test; the penalty (only for a model
 * that has one); the serving size (only for a model with a serving_params
 * hook).  Returns their count.  Name them with metric_name(). */
int train_eval_metrics(const train_eval_t *ev, metric_id_t *out);
/* The value of one of those metrics (NAN for one ev does not carry). */
double train_eval_value(const train_eval_t *ev, metric_id_t id);

typedef void (*train_eval_fn)(void *ctx, const train_eval_t *ev);

typedef struct {
    train_eval_t final; /* the last evaluation */
    int failed_step;    /* 0, or the step at which the loss became NaN/Inf */
} train_result_t;

/* Defaults: lr 1e-3, batch 128, steps 3000, eval_every 100, weights 1, the
 * architecture group frozen (arch_lr 1e-3 when it is not). */
void train_config_default(train_config_t *cfg);

/* Trains m on data->train; evaluates on data->val and data->test.  Mini-batch
 * order comes from (batch_seed, RNG_STREAM_BATCH).  On divergence (NaN/Inf in
 * the loss or the penalty) returns -1 with ERR_FAIL naming the step, and
 * res->failed_step set; bad configuration returns -1 with ERR_USAGE (also
 * for an architecture schedule on a model without architecture
 * parameters). */
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
    adam_t adam;      /* the weights params[0, n_weights) */
    adam_t arch_adam; /* the architecture params[n_weights, n_params) (unless frozen) */
    long step;        /* steps taken (the alternating schedule's clock) */
    double penalty;   /* the last step's penalty (0 for a model without one) */
    rng_t batch_rng;  /* (batch_seed, RNG_STREAM_BATCH): the epochs' shuffles */
    int *order;       /* [n_train] shuffled example indices */
    int pos;          /* next unused position in order */
    real *xb, *yb;    /* [batch, d], [batch, T] the current mini-batch */
    real *pred;       /* [max_batch, T] */
    real *dpred;      /* [max_batch, T] */
    /* AUC: each binary task's scored examples of the split being evaluated,
     * [n_binary][max(n_val, n_test)]; NULL without binary tasks. */
    metric_scored_t *scored;
    double base_rate[MTLAB_MAX_TASKS]; /* training positive rate of each binary task (NE) */
} train_state_t;

/* Returns 0, or -1 with *err (ERR_USAGE for a bad configuration). */
int train_begin(train_state_t *s, model_t *m, const data_t *data, const train_config_t *cfg,
                uint64_t batch_seed, err_t *err);
/* One optimiser step on the next mini-batch: train_gradient, then Adam over
 * the group(s) the schedule updates at this step.  batch_loss[0..T) gets the
 * mini-batch loss per task, [T] the weighted total; s->penalty the penalty.
 * Returns 0, or -1 when a loss or the penalty is NaN or infinite (the
 * parameters are then left as they were). */
int train_step(train_state_t *s, double *batch_loss);
/* The objective on one batch x[B, d], y[B, T] (B <= max_batch) and its
 * gradient: forward (MODEL_TRAIN), losses into batch_loss[0..T]
 * as train_step, then grads = d(Σ_k weight_k loss_k + penalty)/d(params),
 * and s->penalty.  Returns 0, or -1 when a loss or the penalty is not finite
 * (grads are then not meaningful). */
int train_gradient(train_state_t *s, const real *x, const real *y, int B, double *batch_loss);
void train_end(train_state_t *s);
/* The evaluation train_run makes at `step`, into *ev: train_mean[0..T] the
 * mean mini-batch loss since the previous one, penalty its mean penalty (for
 * a model with one); the validation and test splits measured now (MODEL_EVAL).
 * Returns 0, or -1 when a validation or test loss is not finite. */
int train_evaluate_at(train_state_t *s, int step, const double *train_mean, double penalty,
                      train_eval_t *ev);

/* Upper estimate of the heap train_run, then train_gate_stats, take for a
 * model whose model_sizes() are *ms (config *mc), trained with *tc on
 * n_train examples and evaluated on splits of at most n_eval examples, of
 * which n_binary tasks are binary -- computed without allocating.  Returns
 * 0, or -1 with *err (ERR_USAGE) when a size overflows. */
typedef struct {
    size_t adam;       /* Adam's two moments over the trained weights (and architecture) */
    size_t steps;      /* train_begin's buffers: shuffled order, mini-batch, predictions,
                          the binary tasks' scored examples */
    size_t gate_stats; /* train_gate_stats: its predictions and the statistics it returns */
} train_memory_t;
int train_memory(const model_sizes_t *ms, const model_config_t *mc, const train_config_t *tc,
                 int n_train, int n_eval, int n_binary, train_memory_t *out, err_t *err);

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
