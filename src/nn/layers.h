/* layers.h -- forward/backward pairs of the building blocks of every model.
 *
 * Conventions (as in llm.c): every buffer is row-major and its shape is given
 * in the comment; B is the batch size.  Weights are stored input-major,
 * W[In, Out], so a forward pass is one plain GEMM out = in · W.  Backward passes
 * ACCUMULATE (+=) into parameter gradients and into input gradients, so a
 * tensor used twice simply receives two contributions; callers zero gradient
 * buffers once per step.  An input-gradient pointer may be NULL when the input
 * is data (nothing to propagate).
 *
 * Results do not depend on how the work is vectorised: every sum is taken in
 * the same order as the plain loops of the comments, so a float build and the
 * reference loops agree bit for bit (see layers.c).
 *
 * Strided rows.  The _ld forms read and write rows with a leading dimension
 * (row stride, in values) of their own, so a layer can read a column slice of
 * a wider activation and write its output into one: the experts of one level
 * of a multi-level model write side by side into one [B, E·h] buffer that a
 * gate mixes in one call.  A gradient buffer has the row stride of the
 * activation it belongs to.  The plain forms are the _ld forms with every
 * stride equal to the row width.
 *
 * Sizes.  Dimensions (B, In, Out, N, H) are ints, as BLAS takes them; every
 * product of two of them (a buffer length, an offset) is taken in size_t
 * here, so callers only have to keep each dimension within int. */
#ifndef MTLAB_LAYERS_H
#define MTLAB_LAYERS_H

#include <stddef.h>
#include <stdint.h>

#include "core/real.h"

/* ---- dense layers ---- */

/* out[B, Out] = in[B, In] · W[In, Out] + b[Out]   (b may be NULL: no bias) */
void dense_forward(real *out, const real *in, const real *W, const real *b, int B, int In, int Out);
/* dW[In, Out] += inᵀ · dout;  db[Out] += Σ_b dout (db NULL: no bias);  din[B, In] += dout · Wᵀ (din
 * may be NULL). */
void dense_backward(real *din, real *dW, real *db, const real *dout, const real *in, const real *W,
                    int B, int In, int Out);

/* out[B, Out] = relu(in[B, In] · W[In, Out] + b[Out]): dense_forward and
 * relu_forward in one call (the bias rides in the GEMM, the ReLU is one pass). */
void dense_relu_forward(real *out, const real *in, const real *W, const real *b, int B, int In,
                        int Out);
/* Backward of dense_relu_forward, whose output was y[B, Out]: dout[B, Out] is
 * OVERWRITTEN with the gradient before the ReLU (dout ⊙ [y > 0]); then
 * dW += inᵀ · dout, db += Σ_b dout (db may be NULL), din += dout · Wᵀ (din may
 * be NULL), as dense_backward. */
void dense_relu_backward(real *din, real *dW, real *db, real *dout, const real *in, const real *W,
                         const real *y, int B, int In, int Out);

/* The same four with row strides: in/din rows of stride ldi, out/dout/y rows
 * of stride ldo (ldi >= In, ldo >= Out). */
void dense_forward_ld(real *out, int ldo, const real *in, int ldi, const real *W, const real *b,
                      int B, int In, int Out);
void dense_backward_ld(real *din, int ldi, real *dW, real *db, const real *dout, int ldo,
                       const real *in, const real *W, int B, int In, int Out);
void dense_relu_forward_ld(real *out, int ldo, const real *in, int ldi, const real *W,
                           const real *b, int B, int In, int Out);
void dense_relu_backward_ld(real *din, int ldi, real *dW, real *db, real *dout, int ldo,
                            const real *in, const real *W, const real *y, int B, int In, int Out);

/* ---- activations ---- */

/* x[n] = max(x, 0) in place. */
void relu_forward(real *x, size_t n);
/* dx[n] is zeroed where the forward OUTPUT y[n] was zero (y > 0 <=> x > 0). */
void relu_backward(real *dx, const real *y, size_t n);

/* out[B, N] = softmax over each row of logits[B, N] (max-subtracted). */
void softmax_forward(real *out, const real *logits, int B, int N);
/* dlogits[B, N] += p ⊙ (dp − Σ_j dp_j p_j), with p the forward output. */
void softmax_backward(real *dlogits, const real *dp, const real *p, int B, int N);

/* ---- mixture of experts ---- */

/* Gated mixture of experts:
 * out[B, H] = Σ_i gate[B, i] · experts[B, i, H]   (experts[B, N, H] stored as [B, N·H]).
 * ldg is the row stride of gate/dgate (N for a plain [B, N] matrix; G·N when
 * the gates of G tasks are interleaved as [B, G, N]). */
void mixture_forward(real *out, const real *gate, int ldg, const real *experts, int B, int N,
                     int H);
/* dgate[B, N] += dout · expertsᵀ per row;  dexperts[B, N, H] += gate ⊙ dout. */
void mixture_backward(real *dgate, real *dexperts, const real *dout, const real *gate, int ldg,
                      const real *experts, int B, int N, int H);

/* Accumulating mixture with row strides, for gates that mix experts from
 * several places (a task's own experts, then the shared ones):
 * out[B, H] (stride ldo) += Σ_i gate[B, i] · experts[B, i, H]
 * with gate rows of stride ldg and expert rows of stride lde (expert i at
 * column i·H of its row).  The sum over i is formed first, then added. */
void mixture_accumulate(real *out, int ldo, const real *gate, int ldg, const real *experts, int lde,
                        int B, int N, int H);
/* mixture_forward with the strides of mixture_accumulate: out = the sum. */
void mixture_forward_ld(real *out, int ldo, const real *gate, int ldg, const real *experts, int lde,
                        int B, int N, int H);
/* Backward of mixture_accumulate (and of mixture_forward): with dout rows of
 * stride ldo, dgate[B, N] (stride ldg, as gate) += dout · expertsᵀ per row;
 * dexperts[B, N, H] (stride lde, as experts) += gate ⊙ dout. */
void mixture_backward_ld(real *dgate, int ldg, real *dexperts, int lde, const real *dout, int ldo,
                         const real *gate, const real *experts, int B, int N, int H);

#endif
