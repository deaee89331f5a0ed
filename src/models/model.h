/* model.h -- the one interface every multi-task model implements.
 *
 * A model is a model_t (generic part: config, parameter buffer, tensor table,
 * workspace, gate registry) plus an `impl` pointer to its family's state,
 * which the family carves, like every activation buffer, from the model's
 * workspace: one arena that model_free releases at once, so no family keeps
 * a list of buffers to free.  The trainer, the gradient checker, the store and the benchmarks
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
 * Passes.  Callers run a model through model_forward() / model_backward(),
 * which assert the shape contract (1 <= B <= max_batch, backward on the rows
 * of the last forward) and zero the activation gradients before the family's
 * backward.  forward() reads x[B, d] and writes pred[B, T] (one column per task:
 * a regression value or a logit), keeping what backward() needs.  In
 * MODEL_TRAIN mode stochastic models sample from m->rng (coding variables,
 * routes); in MODEL_EVAL mode they are deterministic (SNR's serving estimator,
 * MTNAS's derived route).  backward() takes dpred[B, T] and ACCUMULATES into
 * grads (callers zero them once per step with model_zero_grad).
 *
 * Inspection.  Every gate of the model is registered at build time
 * (model_add_gate) as a [B, experts] view into the workspace, valid after a
 * forward pass, with its level, its owner and its kind -- one per task for
 * MMoE, one per task and level (and per shared module) for multi-level
 * fusion models, any number of them -- so the recorder can compute means,
 * spreads and histograms without knowing the model.  Routes (SNR, MTNAS)
 * come from the optional `routes` hook the same way (counted first, written
 * without allocating: model_routes), and the serving size from
 * `serving_params` (model_serving_params). */
#ifndef MTLAB_MODEL_H
#define MTLAB_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/limits.h"
#include "core/real.h"
#include "core/rng.h"
#include "core/size.h"

#define MODEL_MAX_TASKS MTLAB_MAX_TASKS

/* A hyper-parameter a family declares (its [model] sweep key, its `mtlab
 * train model.NAME=VALUE` setting).  Families that share a concept share the
 * name ("experts", "tower_hidden") and agree on its type and range (a
 * registry test checks it): one [model] line sets it for every listed family
 * that declares it, and for no other.  Defaults are the family's own (single's
 * per-task bottom has 16 units, shared_bottom's shared one 113). */
typedef enum {
    HP_INT = 0, /* an integer in [min, max] */
    HP_NUM,     /* a number in [min, max] */
    HP_WORD     /* one of `words`; the value is the word's index (min 0, max count - 1) */
} model_hp_type_t;

typedef struct {
    const char *name; /* [model] key: "experts" */
    model_hp_type_t type;
    double min, max; /* inclusive: what a sweep file or the command line accepts */
    double def;      /* this family's default */
    const char *help;
    const char *words; /* HP_WORD: the allowed words, space-separated, in index order */
    /* Left out of a trial's canonical config while at its default (a key
     * added after configs existed, whose default is the behaviour before it:
     * README "Identity").  Such a default must never change. */
    bool omit_default;
} model_hp_t;

/* Initialisation schemes (the generic hyper-parameter "init", MODEL_HP_INIT):
 *   glorot  weights U(±√(6/(fan_in + fan_out))), biases 0 (Keras; the default)
 *   torch   weights and biases U(±1/√fan_in) (PyTorch nn.Linear:
 *           kaiming_uniform with a = √5, and its bias rule)
 *   he      weights U(±√(6/fan_in)) (He/Kaiming-uniform for ReLU), biases 0 */
typedef enum { MODEL_INIT_GLOROT = 0, MODEL_INIT_TORCH, MODEL_INIT_HE } model_init_t;
#define MODEL_INIT_WORDS "glorot torch he"
/* The row every family puts in its hyper-parameter table (one line), so
 * `model.init` applies to all of them; model_new reads it by name. */
#define MODEL_HP_INIT                                                                              \
    {"init", HP_WORD, 0, 2, MODEL_INIT_GLOROT,                                                     \
     "initialisation: glorot (weights U(+-sqrt(6/(in+out))), zero biases), torch "                 \
     "(weights and biases U(+-1/sqrt(in))), he (weights U(+-sqrt(6/in)), zero biases)",            \
     MODEL_INIT_WORDS, true}
/* The row gated families add: a bias on the gate logits (off as in MMoE Eq 8). */
#define MODEL_HP_GATE_BIAS                                                                         \
    {"gate_bias", HP_WORD, 0, 1, 0, "a bias on the gate logits: off (MMoE Eq 8) or on", "off on", \
     true}

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

/* What a tensor is to the initialiser, which draws it per the model's
 * scheme (model_init_t): a weight matrix [fan_in, fan_out], a layer's bias
 * (with its layer's fan_in), or a tensor that always starts at zero.
 * INIT_CUSTOM: the generic draw leaves it at zero (and draws nothing for it,
 * so the other tensors get the values they would get without it); the
 * family's init_custom hook then sets it (a cross-stitch unit's 0.9/0.1
 * matrix, Tucker factors scaled so the weights they make follow the scheme,
 * AdaTT's native-expert weights). */
typedef enum { INIT_ZERO = 0, INIT_WEIGHT, INIT_BIAS, INIT_CUSTOM } init_kind_t;
typedef enum { TENSOR_WEIGHT = 0, TENSOR_ARCH } tensor_group_t;

typedef struct {
    char name[48];    /* e.g. "experts.W", "tower2.hidden.b" */
    int rows, cols;   /* shape; vectors are 1 x cols */
    size_t offset;    /* into params / grads */
    init_kind_t init; /* INIT_WEIGHT: rows = fan_in; INIT_BIAS: see fan_in */
    tensor_group_t group;
    int fan_in; /* INIT_BIAS: the inputs of its layer (model_declare_bias) */
    /* The trainer's learning rate for this tensor is its optimiser's times
     * lr_scale (model_set_lr_scale; a cross-stitch unit's own multiplier).
     * 0, as in a table entry built by hand, reads as 1. */
    double lr_scale;
} tensor_t;

/* What a gate's values are: softmax weights (in [0, 1], each row sums to 1),
 * or raw mixture weights of any sign and size (AdaTT's softmax + native
 * weight), whose histogram takes the range of the values themselves. */
typedef enum { GATE_SOFTMAX = 0, GATE_WEIGHTS } gate_kind_t;

#define MODEL_GATE_NAME  32
#define MODEL_GATE_OWNER 16

typedef struct {
    char name[MODEL_GATE_NAME];   /* unique in the model: "t1", "shared", "l2/t1" */
    int level;                    /* 1-based; 1 for single-level models */
    char owner[MODEL_GATE_OWNER]; /* what the mixture feeds: task "t1", "shared", expert "e3" */
    gate_kind_t kind;
    int experts;        /* columns */
    const real *values; /* [B, experts], row stride ld, after a forward of B rows */
    int ld;
} model_gate_t;

/* One learned route of a routing family (SNR, MTNAS): in routing `layer`
 * (1-based), the connection src -> dst (0-based units) has `value` of `kind`.
 * The numbering and the kinds are those of the store's route table
 * (sql/migrations/004-gates-routes.sql): SNR writes "z" (the serving
 * estimate ẑ), "log_alpha" and "p_open" (P(z != 0)); MTNAS "value",
 * "query", "prob".  kind points at a string constant. */
typedef struct {
    int layer, src, dst;
    const char *kind;
    double value;
} model_route_t;

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
    int n_gates;         /* gates build() registers */
    size_t gate_experts; /* their experts, summed over the gates */
    int n_routes;        /* routes ops->routes writes (0: no hook) */
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
    /* Declares tensors with model_declare(), takes m->impl and its buffers
     * (for cfg.max_batch rows) from the workspace (model_work, model_act,
     * model_act_grad) and registers its gates (model_add_gate).  Called
     * once, before the parameter buffer exists. */
    int (*build)(model_t *m, err_t *err);
    /* Called through model_forward / model_backward only (their contract). */
    void (*forward)(model_t *m, const real *x, int B, real *pred, model_mode_t mode);
    void (*backward)(model_t *m, const real *x, int B, const real *dpred);
    /* Optional (SNR): adds d(penalty)/d(params) into grads, returns the penalty. */
    double (*penalty)(model_t *m);
    /* Optional (MTNAS): given the reward of the architecture sampled in the
     * last MODEL_TRAIN forward, writes the REINFORCE gradient of the
     * architecture parameters into grads[n_weights, n_params). */
    void (*arch_gradient)(model_t *m, double reward);
    /* Optional (families with INIT_CUSTOM tensors): sets them, after the
     * generic draw, from rng (the initialisation stream, continued), reading
     * the scheme with model_hp_value(m, "init", ...) where it matters. */
    void (*init_custom)(model_t *m, rng_t *rng);
    /* Optional: the FLOPs of one training step's matrix products on a batch
     * of B, for a family whose products the tensor shapes do not describe
     * (a Tucker core is no [In, Out] weight); model_step_flops returns it. */
    uint64_t (*step_flops)(const model_t *m, int B);
    /* Optional (routing families): the model's current routes.  With out NULL
     * returns their count, which depends on the configuration only (equal to
     * model_sizes_t.n_routes); else writes that many into out[] and returns
     * the count.  Reads the parameters only: allocates nothing, may be called
     * between any two steps (the trainer records them at every evaluation). */
    int (*routes)(const model_t *m, model_route_t *out);
    /* Optional: the parameters a served model keeps once every closed
     * connection (and whatever only it fed) is removed, at the current
     * parameters; model_serving_params() is n_weights without the hook. */
    size_t (*serving_params)(const model_t *m);
} model_ops_t;

typedef struct model_chunk model_chunk_t; /* a block of the workspace arena (model.c) */

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
    void *impl;       /* family-specific state, in the workspace */
    /* Workspace: the arena every activation buffer and the impl state come
     * from; the activation gradients model_backward zeroes; the gates. */
    model_chunk_t *work;
    real **act_grads; /* [n_act_grads] buffers of [max_batch, act_grad_cols[i]] */
    int *act_grad_cols;
    int n_act_grads, cap_act_grads;
    model_gate_t *gates; /* [n_gates] */
    int n_gates, cap_gates;
    int last_batch; /* B of the last forward pass (0: none yet) */
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
/* The word of an HP_WORD value ("torch"), or NULL when v is not one's index. */
const char *model_hp_word(const model_hp_t *hp, double v, char *out, size_t n);
/* The index of `word` among hp's words, or -1. */
int model_hp_word_index(const model_hp_t *hp, const char *word);
/* The value of hyper-parameter `name` of m's family, or `def` when it does
 * not declare it (the generic ones: "init", "gate_bias"). */
double model_hp_value(const model_t *m, const char *name, double def);
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
/* The same for a family given by its ops, registered or not (tests build
 * families of their own). */
int model_new_ops(model_t **out, const model_ops_t *ops, const model_config_t *cfg,
                  uint64_t init_seed, err_t *err);
int model_sizes_ops(const model_ops_t *ops, const model_config_t *cfg, model_sizes_t *out,
                    err_t *err);

/* ---- passes: the only way callers run a model ---- */

/* pred[B, T] = model(x[B, d]).  Asserts 1 <= B <= cfg.max_batch. */
void model_forward(model_t *m, const real *x, int B, real *pred, model_mode_t mode);
/* Accumulates d(loss)/d(params) into grads from dpred[B, T], for the x and B
 * of the last model_forward (asserted).  Zeroes the first B rows of every
 * activation gradient (model_act_grad) first, so families accumulate. */
void model_backward(model_t *m, const real *x, int B, const real *dpred);

/* ---- used by model families inside build() ---- */

/* Declares a tensor and returns its index (or -1 when out of memory). */
int model_declare(model_t *m, const char *name, int rows, int cols, init_kind_t init,
                  tensor_group_t group);
/* Declares the bias [1, cols] of a layer with fan_in inputs (INIT_BIAS). */
int model_declare_bias(model_t *m, const char *name, int cols, int fan_in);
/* Gives tensor `tensor` a learning rate of scale x its optimiser's (scale > 0;
 * see tensor_t.lr_scale). */
void model_set_lr_scale(model_t *m, int tensor, double scale);
/* A tensor's learning-rate multiplier (1 unless set). */
static inline double model_lr_scale(const tensor_t *t) {
    return t->lr_scale > 0 ? t->lr_scale : 1.0;
}

/* Workspace: `bytes` zeroed bytes, aligned to MODEL_WORK_ALIGN, that live
 * until model_free -- the family's state and any buffer.  NULL (with *err)
 * when out of memory.  Only during build(): no allocation in a pass. */
#define MODEL_WORK_ALIGN 64
void *model_work(model_t *m, size_t bytes, err_t *err);
/* An activation buffer [max_batch, cols] (zeroed) from the workspace. */
real *model_act(model_t *m, int cols, err_t *err);
/* An activation-gradient buffer [max_batch, cols]: model_backward zeroes its
 * first B rows before each backward pass, so every consumer accumulates. */
real *model_act_grad(model_t *m, int cols, err_t *err);
/* Blocks of heap the workspace took (1 when the family's sizes hook
 * accounted for every buffer its build took: model_new reserves that much). */
int model_work_blocks(const model_t *m);

/* Registers a gate (copied; g->values must stay valid for the model's life).
 * Returns 0, or -1 with *err: ERR_USAGE for a duplicate name, a name or
 * owner too long, a level < 1 or experts < 1; ERR_FAIL out of memory. */
int model_add_gate(model_t *m, const model_gate_t *g, err_t *err);

static inline real *model_param(const model_t *m, int tensor) {
    return m->params + m->tensors[tensor].offset;
}
static inline real *model_grad(const model_t *m, int tensor) {
    return m->grads + m->tensors[tensor].offset;
}

/* ---- used by trainers ---- */

void model_zero_grad(model_t *m);
/* The registered gates (*out owned by m; values valid after a forward). */
int model_gates(const model_t *m, const model_gate_t **out);
/* Index of the tensor with this name, or -1. */
int model_tensor_index(const model_t *m, const char *name);

/* The model's routes (ops->routes): with out NULL their count, else writes
 * them into out[count] and returns the count; 0 for a family without routes. */
int model_routes(const model_t *m, model_route_t *out);
/* Whether the family reports a serving size (has ops->serving_params). */
static inline int model_has_serving_params(const model_t *m) {
    return m->ops->serving_params != NULL;
}
/* Parameters of the served model at the current parameters: ops->serving_params,
 * or n_weights (every trained weight; architecture parameters are not served). */
size_t model_serving_params(const model_t *m);

/* Floating-point operations (2 per multiply-add) of the matrix products of
 * one training step on a batch of B, from the tensor table's shapes: every
 * weight matrix W[In, Out] costs 2·B·In·Out forward, as much for its
 * gradient, and as much again for its input's gradient unless it reads the
 * raw input (In = input_dim).  Element-wise work (bias, ReLU, softmax,
 * mixtures: a few percent for the standard models) is not counted.  A
 * family with an ops->step_flops hook counts its own. */
uint64_t model_step_flops(const model_t *m, int B);

#endif
