/* search.h -- the MTNAS route search (paper §3.2-3.3, Algorithm 1; ProxylessNAS).
 *
 * train_run() hands an mtnas model with `search = on` (the default) to
 * search_run(), which alternates, every step:
 *   1. a weight step on the next training mini-batch through ONE route
 *      sampled from the architecture distributions (m->rng; during the first
 *      `warmup` steps uniformly at random): the weights' Adam updates only the
 *      tensors that route reads -- the others keep their values AND their
 *      Adam moments (a lazy Adam; the step count t is shared);
 *   2. (after the warmup) an architecture step: `samples` = K routes sampled
 *      from the distributions, each scored on one validation batch (train.batch
 *      examples drawn with replacement from the validation split by
 *      (batch seed, RNG_STREAM_SEARCH_VAL)) with the reward
 *          R = Σ_k  AUC_k          (binary task k; 0.5 when the batch has one class)
 *                 − weight_k·loss_k (regression task k)
 *      and one REINFORCE update of the logits (train/reinforce.h: the baseline
 *      with decay `baseline_decay`, their own Adam with lr `arch_lr`, β1 = 0).
 * Evaluations (every eval_every steps and at the last) run in MODEL_EVAL
 * mode: the derived route -- the argmax per block -- with the supernet's
 * current weights, so the curve of steps 1..steps is the derived route over
 * the search, and its last point the paper's result (no retraining).  With
 * `retrain = on` the weights then go back to their initial values and the
 * derived route alone trains for `steps` more steps with a fresh Adam and the
 * same batch seed; those evaluations are reported at steps steps+1..2·steps
 * (the retrain phase of the curve).  The model ends with no route set: every
 * later pass takes the derived route.
 *
 * Deterministic: the same model, data, config and batch seed give the same
 * logits, derived route and weights, bit for bit. */
#ifndef MTLAB_SEARCH_H
#define MTLAB_SEARCH_H

#include "train/train.h"

/* Whether train_run hands this model to search_run. */
bool search_wanted(const model_t *m);

/* The same before the model exists: a model of family ops built from mc. */
bool search_wanted_config(const model_ops_t *ops, const model_config_t *mc);

/* Upper estimate of the heap search_run takes beyond train_run's own
 * (train_memory) for a model whose sizes are *ms: the unused tensors' saved
 * values and moments, the initial weights (retrain), REINFORCE's Adam,
 * gradient and block tables, the validation batch and its predictions, the
 * sampled routes and their rewards.  Returns 0, or -1 with *err (ERR_USAGE)
 * when a size overflows. */
int search_memory(const model_sizes_t *ms, const model_config_t *mc, const train_config_t *tc,
                  size_t *bytes, err_t *err);

/* As train_run.  ERR_USAGE also for a train.arch schedule other than frozen
 * (the search trains the logits itself). */
int search_run(model_t *m, const data_t *data, const train_config_t *cfg, uint64_t batch_seed,
               train_eval_fn on_eval, void *ctx, train_result_t *res, err_t *err);

#endif
