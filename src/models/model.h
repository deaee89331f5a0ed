/* model.h -- the one interface every multi-task model implements.
 *
 * A model is a model_t (generic part: config, parameter buffer, tensor table)
 * plus an `impl` pointer owned by its family's source file (activations and
 * workspace).  The trainer, the gradient checker, the store and the benchmarks
 * know only this header.
 *
 * Parameters.  All parameters live in ONE contiguous buffer `params` with a
 * gradient buffer `grads` of the same layout; a tensor table names each slice
 * (name, shape, offset).  Tensors are declared in two groups: ordinary weights
 * (trained by the main optimiser) first, then architecture parameters (MTNAS
 * route logits, trained by REINFORCE with an optimiser of their own) at the
 * end, so each optimiser runs over one contiguous slice:
 *     params[0, n_weights)           weights
 *     params[n_weights, n_params)    architecture parameters
 * Per-tensor values that are trained jointly but penalised (SNR's log-alpha of
 * its coding variables) are ordinary weights; the model adds their penalty via
 * the `penalty` hook.
 *
 * Passes.  forward() reads x[B, d] and writes pred[B, T] (one column per task:
 * a regression value or a logit), keeping what backward() needs.  In
 * MODEL_TRAIN mode stochastic models sample from m->rng (coding variables,
 * routes); in MODEL_EVAL mode they are deterministic (SNR's serving estimator,
 * MTNAS's derived route).  backward() takes dpred[B, T] and ACCUMULATES into
 * grads (callers zero them once per step with model_zero_grad).
 *
 * Inspection.  gates() reports, after a forward pass, every softmax gate of
 * the model as a [B, experts] view (per gate, per expert) -- one per task for
 * MMoE, one per task and level for multi-level fusion models -- so the
 * recorder can compute means, spreads and histograms without knowing the
 * model.  Routes (SNR, MTNAS) will get a hook of the same shape. */
#ifndef MTLAB_MODEL_H
#define MTLAB_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/limits.h"
#include "core/real.h"
#include "core/rng.h"
#include "core/size.h"

#define MODEL_MAX_TASKS MTLAB_MAX_TASKS
#define MODEL_MAX_GATES 64

/* A hyper-parameter a family declares (its [model] sweep key, its `mtlab
 * train model.NAME=VALUE` setting).  Families that share a concept share the
 * name ("experts", "tower_hidden") and agree on its type and range (a
 * registry test checks it): one [model] line sets it for every listed family
 * that declares it, and for no other.  Defaults are the family's own (single's
 * per-task bottom has 16 units, shared_bottom's shared one 113). */
typedef enum { HP_INT = 0, HP_NUM } model_hp_type_t;

typedef struct {
    const char *name; /* [model] key: "experts" */
    model_hp_type_t type;
    double min, max; /* inclusive: what a sweep file or the command line accepts */
    double def;      /* this family's default */
    const char *help;
} model_hp_t;

#define MODEL_MAX_HP 16 /* hyper-parameters of one family, at most */

/* What model_new builds: the data's shape, the workspace's batch, and the
 * family's hyper-parameters by index (its ops->hp order).  Plain data:
 * copyable; meaningful only with the family it was made for. */
typedef struct {
    int input_dim;           /* d: features per example */
    int tasks;               /* T: outputs */
    int max_batch;           /* largest B forward() is called with (sizes the workspace) */
    double hp[MODEL_MAX_HP]; /* the family's hyper-parameters, in ops->hp order */
} model_config_t;

typedef enum { INIT_ZERO = 0, INIT_GLOROT } init_kind_t;
typedef enum { TENSOR_WEIGHT = 0, TENSOR_ARCH } tensor_group_t;

typedef struct {
    char name[48];    /* e.g. "experts.W", "tower2.hidden.b" */
    int rows, cols;   /* shape; vectors are 1 x cols */
    size_t offset;    /* into params / grads */
    init_kind_t init; /* INIT_GLOROT: U(-a, a), a = sqrt(6 / (rows + cols)) */
    tensor_group_t group;
} tensor_t;

typedef struct {
    char name[32];      /* e.g. "t1" (task 1's gate), "shared", "l2/t1" */
    int experts;        /* columns */
    const real *values; /* [B, experts] softmax weights, row stride ld */
    int ld;
} model_gate_t;

typedef enum { MODEL_TRAIN = 0, MODEL_EVAL } model_mode_t;

/* What a model of a given configuration declares and allocates, computed
 * without allocating (ops->sizes fills the first group, model_sizes() the
 * rest): what model_new checks before it allocates anything, and what memory
 * estimates are made of. */
typedef struct {
    size_t n_params;     /* parameters; the gradients have as many */
    size_t n_weights;    /* of which trained by the main optimiser */
    int n_tensors;       /* tensor-table entries build() declares */
    size_t state_bytes;  /* the family's impl struct */
    size_tally_t act;    /* the buffers build() allocates for max_batch rows */
    int n_gates;         /* views gates() returns */
    size_t gate_experts; /* their experts, summed over the gates */
    /* filled by model_sizes(): upper estimates of heap bytes */
    size_t model_bytes; /* model_t, tensor table, impl struct, params, grads */
    size_t act_bytes;   /* activation and workspace buffers (act) */
} model_sizes_t;

typedef struct model model_t;

typedef struct model_ops {
    const char *name;    /* registry key, e.g. "mmoe" */
    const char *summary; /* one line for `--help` */
    /* The family's hyper-parameters (declared next to its code), read by
     * index from cfg.hp; n_hp <= MODEL_MAX_HP. */
    const model_hp_t *hp;
    int n_hp;
    /* Required.  Pure: checks that cfg's shapes are representable (every layer width and
     * GEMM dimension an int, every size within SIZE_BYTES_MAX) and fills the
     * family's fields of *out with exactly what build() declares and
     * allocates.  Returns 0, or -1 with *err (ERR_USAGE) naming the
     * quantity that overflows.  build() runs only after it succeeded. */
    int (*sizes)(const model_config_t *cfg, model_sizes_t *out, err_t *err);
    /* Declares tensors with model_declare() and allocates m->impl (workspace
     * for cfg.max_batch rows).  Called once, before the buffer exists. */
    int (*build)(model_t *m, err_t *err);
    void (*forward)(model_t *m, const real *x, int B, real *pred, model_mode_t mode);
    void (*backward)(model_t *m, const real *x, int B, const real *dpred);
    /* Fills out[0..n) with the gates of the last forward pass; returns n. */
    int (*gates)(const model_t *m, model_gate_t *out);
    /* Optional (SNR): adds d(penalty)/d(params) into grads, returns the penalty. */
    double (*penalty)(model_t *m);
    /* Optional (MTNAS): given the reward of the architecture sampled in the
     * last MODEL_TRAIN forward, writes the REINFORCE gradient of the
     * architecture parameters into grads[n_weights, n_params). */
    void (*arch_gradient)(model_t *m, double reward);
    void (*free_impl)(model_t *m);
} model_ops_t;

struct model {
    const model_ops_t *ops;
    model_config_t cfg;
    tensor_t *tensors; /* [n_tensors], weights first, then architecture */
    int n_tensors, cap_tensors;
    real *params; /* [n_params] */
    real *grads;  /* [n_params], same layout */
    size_t n_params;
    size_t n_weights; /* params[0, n_weights) are trained by the main optimiser */
    rng_t rng;        /* stochastic forward passes (MODEL_TRAIN mode) */
    void *impl;       /* family-specific state, owned by ops->free_impl */
};

/* ---- registry ---- */

/* The registered model families, in a stable order; n receives their count. */
const model_ops_t *const *model_registry(int *n);
/* NULL when no family has that name. */
const model_ops_t *model_find(const char *name);
/* Every hyper-parameter name some family declares, once each, in a canonical
 * order that keeps each family's own declaration order (the order of the
 * [model] keys in a trial's config); the entry is the first declaring
 * family's.  n receives the count. */
const model_hp_t *const *model_hp_all(int *n);
/* Index of hyper-parameter `name` in ops->hp, or -1 when the family does not
 * declare it. */
int model_hp_find(const model_ops_t *ops, const char *name);

/* ---- life cycle ---- */

/* Defaults: d 100, T 2, max_batch 128 (the MMoE paper's synthetic sizes)
 * and the family's declared hyper-parameter defaults (ops NULL: none). */
void model_config_default(model_config_t *cfg, const model_ops_t *ops);
/* Sets hyper-parameter `name` of family ops.  Returns 0, or -1 with *err
 * (ERR_USAGE) when the family does not declare it or the value is out of its
 * declared range (an HP_INT must be an integer). */
int model_config_set(model_config_t *cfg, const model_ops_t *ops, const char *name, double value,
                     err_t *err);
/* Hyper-parameter i of an integer type (families read their sizes so). */
static inline int model_hp_int(const model_config_t *cfg, int i) {
    return (int)cfg->hp[i];
}
/* Builds a model of family `name` and initialises its weights from the
 * generator (init_seed, RNG_STREAM_INIT); m->rng gets (init_seed,
 * RNG_STREAM_MODEL).  Returns 0 or -1 with *err (ERR_USAGE for bad config). */
int model_new(model_t **out, const char *name, const model_config_t *cfg, uint64_t init_seed,
              err_t *err);
void model_free(model_t *m);
/* What model_new(name, cfg) would declare and allocate, without allocating.
 * Returns 0, or -1 with *err as model_new (ERR_USAGE for an unknown family,
 * a bad config, or one whose sizes overflow, the message naming the
 * quantity: "mmoe: 4096 experts x 1000000 hidden units overflows ..."). */
int model_sizes(const char *name, const model_config_t *cfg, model_sizes_t *out, err_t *err);

/* ---- used by model families inside build() ---- */

/* Declares a tensor and returns its index (or -1 when out of memory). */
int model_declare(model_t *m, const char *name, int rows, int cols, init_kind_t init,
                  tensor_group_t group);

static inline real *model_param(const model_t *m, int tensor) {
    return m->params + m->tensors[tensor].offset;
}
static inline real *model_grad(const model_t *m, int tensor) {
    return m->grads + m->tensors[tensor].offset;
}

/* ---- used by trainers ---- */

void model_zero_grad(model_t *m);
/* Index of the tensor with this name, or -1. */
int model_tensor_index(const model_t *m, const char *name);

/* Floating-point operations (2 per multiply-add) of the matrix products of
 * one training step on a batch of B, from the tensor table's shapes: every
 * weight matrix W[In, Out] costs 2·B·In·Out forward, as much for its
 * gradient, and as much again for its input's gradient unless it reads the
 * raw input (In = input_dim).  Element-wise work (bias, ReLU, softmax,
 * mixtures: a few percent for the standard models) is not counted. */
uint64_t model_step_flops(const model_t *m, int B);

#endif
