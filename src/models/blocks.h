/* blocks.h -- parameterised building blocks shared by model families.
 *
 * A block declares its tensors in the model's table at build time and keeps
 * only tensor indices, so it works on whatever buffer the model owns.  Its
 * activations come from the model's workspace, sized for cfg.max_batch rows
 * at build time (no allocation happens inside a pass, and nothing is freed
 * by hand: model_free releases the workspace).  Activation gradients are
 * model_act_grad buffers, which model_backward zeroes before the family's
 * backward runs: every block's backward ACCUMULATES into the gradient of its
 * input, so a buffer read by several consumers gets every contribution.
 *
 * Each block has a _sizes function that tallies, without allocating, the
 * parameters and buffers its _build takes: a family's sizes hook is the sum
 * of its blocks' (model_new reserves the workspace from it).
 *
 * Blocks for multi-level models:
 *   experts_t  n experts of h units reading one input, in one GEMM, writing
 *              into their own [B, n·h] buffer or into a column slice of a
 *              wider level buffer (so a gate can mix experts of several
 *              groups in one place);
 *   gates_t    G softmax gates over n experts each, reading one input, in
 *              one GEMM; each registers itself with the model (level, owner);
 *   gates_mix  one gate's weighted sum of a run of experts, overwriting or
 *              accumulating into a strided output;
 *   mlp_t      a stack of dense layers (ReLU between, optional ReLU last);
 *   tower_t    a task tower: one ReLU hidden layer, then one output column. */
#ifndef MTLAB_BLOCKS_H
#define MTLAB_BLOCKS_H

#include <stdbool.h>

#include "models/model.h"

/* ---- dense layers over the model's tensors ---- */

/* A dense layer y = x·W (+ b): W [in, out], b [out] (or none). */
typedef struct {
    int W, b; /* tensor indices; b = -1 without bias */
    int in, out;
} dense_ref_t;

int dense_declare(model_t *m, dense_ref_t *d, const char *prefix, int in, int out, bool bias,
                  err_t *err);
/* out[B, out] (row stride ldo) = in[B, in] (row stride ldi) · W + b */
void dense_ref_forward(const model_t *m, const dense_ref_t *d, const real *in, int ldi, int B,
                       real *out, int ldo);
/* grads of W, b += ...;  din[B, in] (stride ldi) += dout · Wᵀ (din may be NULL) */
void dense_ref_backward(model_t *m, const dense_ref_t *d, const real *in, int ldi, int B,
                        const real *dout, int ldo, real *din);
/* out[B, out] (stride ldo) = relu(in · W + b) */
void dense_ref_relu_forward(const model_t *m, const dense_ref_t *d, const real *in, int ldi, int B,
                            real *out, int ldo);
/* Backward of dense_ref_relu_forward, whose output was y (stride ldo, as
 * dout): dout is OVERWRITTEN with the gradient before the ReLU; grads of W,
 * b += ...; din (stride ldi) += ... (may be NULL) */
void dense_ref_relu_backward(model_t *m, const dense_ref_t *d, const real *in, int ldi, int B,
                             const real *y, real *dout, int ldo, real *din);

/* ---- experts ---- */

typedef struct {
    dense_ref_t layer; /* in -> n·h, with bias */
    int n, h;
    real *out;  /* [max_batch, ld] post-ReLU; expert i at columns [i·h, (i+1)·h) */
    real *dout; /* the same layout; consumers accumulate into it */
    int ld;     /* row stride of out / dout */
} experts_t;

/* Declares "<prefix>.W" [in, n·h] and "<prefix>.b".  out/dout NULL: own
 * buffers [max_batch, n·h]; else they point at the first column of a slice
 * of a caller's buffers of row stride ld (>= n·h), e.g. one level's experts
 * of several groups side by side. */
int experts_build(model_t *m, experts_t *e, const char *prefix, int in, int n, int h, real *out,
                  real *dout, int ld, err_t *err);
/* own_buffers: whether out/dout will be the block's own. */
int experts_sizes(int in, int n, int h, int max_batch, bool own_buffers, size_t *params,
                  size_tally_t *act, err_t *err);
/* out[B, n·h] = relu(in[B, in] (stride ldi) · W + b) */
void experts_forward(const model_t *m, experts_t *e, const real *in, int ldi, int B);
/* From dout: grads += ..., din[B, in] (stride ldi) += ... (NULL: data).
 * dout is overwritten (ReLU). */
void experts_backward(model_t *m, experts_t *e, const real *in, int ldi, int B, real *din);

/* ---- softmax gates ---- */

typedef struct {
    dense_ref_t logits; /* in -> G·n, optional bias */
    int G, n;
    real *z, *p; /* [max_batch, G·n] logits, softmax per gate (gate j: columns [j·n, (j+1)·n)) */
    real *dz, *dp; /* their gradients */
} gates_t;

/* Declares "<prefix>.W" [in, G·n] (and "<prefix>.b" with bias). */
int gates_build(model_t *m, gates_t *g, const char *prefix, int in, int G, int n, bool bias,
                err_t *err);
int gates_sizes(int in, int G, int n, bool bias, int max_batch, size_t *params, size_tally_t *act,
                err_t *err);
/* Registers gate j with the model as a softmax gate named `name`, at
 * `level`, feeding `owner`. */
int gates_register(model_t *m, const gates_t *g, int j, const char *name, int level,
                   const char *owner, err_t *err);
/* p = softmax per gate of z = in[B, in] (stride ldi) · W (+ b) */
void gates_forward(const model_t *m, gates_t *g, const real *in, int ldi, int B);
/* From dp: dz += softmax backward; grads += ...; din (stride ldi) += ... (NULL: data) */
void gates_backward(model_t *m, gates_t *g, const real *in, int ldi, int B, real *din);

/* out[B, h] (stride ldo) = (or += with accumulate) Σ_{i<count} p_j[:, col+i] ·
 * expert (first+i) of e: gate j's weights from column col mix `count`
 * experts of e starting at `first`. */
void gates_mix(const gates_t *g, int j, int col, const experts_t *e, int first, int count, int B,
               real *out, int ldo, bool accumulate);
/* Its backward: g->dp and e->dout += ... from dout (stride ldo). */
void gates_mix_backward(gates_t *g, int j, int col, experts_t *e, int first, int count, int B,
                        const real *dout, int ldo);

/* ---- MLPs and towers ---- */

#define MLP_MAX_LAYERS 4

typedef struct {
    int n_layers;
    bool relu_last; /* a ReLU after the last layer too */
    dense_ref_t layer[MLP_MAX_LAYERS];
    real *h[MLP_MAX_LAYERS];  /* [max_batch, width of layer l] its output */
    real *dh[MLP_MAX_LAYERS]; /* their gradients (consumers of the last accumulate) */
} mlp_t;

/* Declares, per layer l, "<prefix>.<names[l]>.W" and ".b" ("<prefix>.W" when
 * names[l] is ""; names NULL: "<prefix>.l<l+1>"), widths[l] units each. */
int mlp_build(model_t *m, mlp_t *p, const char *prefix, const char *const *names, int in,
              int n_layers, const int *widths, bool relu_last, err_t *err);
int mlp_sizes(int in, int n_layers, const int *widths, int max_batch, size_t *params,
              size_tally_t *act, err_t *err);
/* h[last] = mlp(in[B, in] (stride ldi)) */
void mlp_forward(const model_t *m, mlp_t *p, const real *in, int ldi, int B);
/* From dh[last]: grads += ..., din (stride ldi) += ... (NULL: data). */
void mlp_backward(model_t *m, mlp_t *p, const real *in, int ldi, int B, real *din);
/* The output of the last layer and its width. */
static inline real *mlp_out(const mlp_t *p) {
    return p->h[p->n_layers - 1];
}
static inline real *mlp_dout(const mlp_t *p) {
    return p->dh[p->n_layers - 1];
}

/* A task tower: "<prefix>.hidden" (ReLU), then "<prefix>.out" (one column). */
typedef struct {
    mlp_t mlp;
} tower_t;

int tower_build(model_t *m, tower_t *t, const char *prefix, int in, int hidden, err_t *err);
int tower_sizes(int in, int hidden, int max_batch, size_t *params, size_tally_t *act, err_t *err);
/* pred[b, k] (row stride T) = tower(in[B, in] (stride ldi)) */
void tower_forward(const model_t *m, tower_t *t, const real *in, int ldi, int B, real *pred, int T,
                   int k);
/* From dpred[:, k]: tower grads += ..., din[B, in] (stride ldi) += ... */
void tower_backward(model_t *m, tower_t *t, const real *in, int ldi, int B, const real *dpred,
                    int T, int k, real *din);

/* *count = a * b * c reals.  Returns 0, or -1 when their bytes would exceed
 * SIZE_BYTES_MAX. */
int block_count(size_t *count, size_t a, size_t b, size_t c);

/* ---- fusion1: multi-level families (ml_mmoe, ple, cgc) ---- */

#define MULTI_LEVEL_MAX  5 /* levels of a multi-level family (the "levels" key: 1..5) */
#define LEVEL_WIDTH_KEYS 4 /* expert_hidden .. expert_hidden4; level 5 is as wide as level 4 */

/* The expert width of each level l = 0..levels-1 from the family's
 * consecutive keys expert_hidden, expert_hidden2, expert_hidden3,
 * expert_hidden4 (hp[first + l]): widths[0] = hp[first]; widths[l] =
 * hp[first + l] when > 0, else widths[l - 1] (0: "same as the level below");
 * a level past the LEVEL_WIDTH_KEYS keys (level 5) is as wide as the one
 * below it. */
void level_widths(const model_config_t *c, int first, int levels, int *widths);

/* An experts_t that names a level's expert buffer [max_batch, ld] as n
 * experts of h units (expert i at columns [i·h, (i+1)·h)), for gates_mix to
 * mix experts that separate blocks wrote into it.  It declares nothing. */
experts_t experts_view(int n, int h, real *out, real *dout, int ld);
/* ---- fusion3: parallel task columns (cross_stitch, l2_constrained) ---- */

/* T columns of L dense ReLU layers of D units each.  Column t's layer l is
 * "<prefix><t+1>.l<l+1>.W" [in_l, D] and ".b" (in_1 = in, then D), declared
 * column by column.  Level l's outputs lie side by side in
 * h[l][max_batch, T·D] (column t at columns [t·D, (t+1)·D)), so a family can
 * mix them between levels (cross-stitch) or tie them (L2). */
typedef struct {
    int T, L, D, in;
    dense_ref_t layer[MLP_MAX_LAYERS][MODEL_MAX_TASKS]; /* [l][t] */
    real *h[MLP_MAX_LAYERS];  /* [max_batch, T·D] post-ReLU outputs of level l */
    real *dh[MLP_MAX_LAYERS]; /* their gradients (consumers accumulate) */
} columns_t;

int columns_sizes(int in, int T, int L, int D, int max_batch, size_t *params, size_tally_t *act,
                  err_t *err);
int columns_build(model_t *m, columns_t *c, const char *prefix, int in, int T, int L, int D,
                  err_t *err);
/* Level l (0-based): h[l][:, t·D..(t+1)·D) = relu(in_t · W_lt + b_lt), where
 * column t reads in + t·step with row stride ldi: step 0 when every column
 * reads the same input (the data x[B, d]), D for a [B, T·D] buffer holding
 * one input per column. */
void columns_forward(const model_t *m, columns_t *c, int l, const real *in, int ldi, int step,
                     int B);
/* Backward of level l from dh[l] (overwritten: ReLU): grads += ...; din (the
 * layout of in) += ... (NULL: data). */
void columns_backward(model_t *m, columns_t *c, int l, const real *in, int ldi, int step, int B,
                      real *din);

#endif
