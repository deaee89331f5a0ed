/* layers.c -- the forward/backward pairs of layers.h.
 *
 * Speed.  A training step of the standard models is a handful of GEMMs
 * (OpenBLAS, dispatched at run time to the machine's vector units) and a few
 * element-wise passes over the same activations: bias, ReLU, mixtures.  The
 * element-wise loops are written for the compiler's vectoriser at -O2, whose
 * cost model only takes loops of KNOWN trip count: each one runs over blocks
 * of LANES elements (an inner loop of constant length, which GCC turns into
 * SIMD code) followed by a scalar tail, on restrict-qualified rows.
 * On x86-64 each such kernel (NN_KERNEL) is compiled twice, for AVX2 and for
 * the baseline SSE2, and the dynamic loader picks the one the CPU runs
 * (GCC's target_clones).  Vectorising across independent elements never
 * reorders a sum and -ffp-contract=off keeps multiplies and adds apart, so
 * every variant gives the bits of the plain loops in the comments. */
#include "nn/layers.h"

#include <assert.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

/* Elements per block of an element-wise loop: one AVX vector of floats. */
#define LANES 8

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define NN_KERNEL __attribute__((target_clones("avx2", "default")))
#else
#define NN_KERNEL
#endif

/* ---- element-wise kernels on one row ---- */

/* ReLU that lets NaN through, so divergence stays visible. */
static inline real relu(real v) {
    return v < 0 ? 0 : v;
}

/* The gradient through a ReLU whose output was y (NaN in y passes dx). */
static inline real relu_grad(real dx, real y) {
    return y <= 0 ? 0 : dx;
}

/* out[B, n] (row stride ld) = x[n] in every row.  Contiguous rows: one row,
 * then copies that double the rows filled (log2 B calls of memcpy rather than
 * B calls for short rows); strided rows: one copy per row. */
static void broadcast_rows(real *out, int ld, const real *x, int B, int n) {
    if (B <= 0) return;
    if (ld != n) {
        for (int r = 0; r < B; r++)
            memcpy(out + (size_t)r * ld, x, sizeof(real) * n);
        return;
    }
    memcpy(out, x, sizeof(real) * n);
    for (int filled = 1; filled < B;) {
        int more = filled < B - filled ? filled : B - filled;
        memcpy(out + (size_t)filled * n, out, sizeof(real) * more * n);
        filled += more;
    }
}

/* y[n] /= a */
static inline void divide_row(real *restrict y, real a, int n) {
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++)
            y[i + j] /= a;
    for (; i < n; i++)
        y[i] /= a;
}

/* y[n] += a · x[n] */
static inline void axpy(real *restrict y, real a, const real *restrict x, int n) {
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++)
            y[i + j] += a * x[i + j];
    for (; i < n; i++)
        y[i] += a * x[i];
}

/* y[n] += x[n] */
static inline void add_into(real *restrict y, const real *restrict x, int n) {
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++)
            y[i + j] += x[i + j];
    for (; i < n; i++)
        y[i] += x[i];
}

/* Σ_i a[i] · b[i], summed left to right. */
static inline real dot(const real *a, const real *b, int n) {
    real s = 0;
    for (int i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* o[H] = Σ_i g[i] · e[i, H] (e row-major [N, H]), summed over i in order; with
 * `accumulate`, o[H] += that sum (the sum is formed first, then added).
 * A block of LANES outputs stays in registers while the experts are added. */
static inline void mix_row(real *restrict o, const real *restrict g, const real *restrict e, int N,
                           int H, bool accumulate) {
    int h = 0;
    for (; h + LANES <= H; h += LANES) {
        real acc[LANES] = {0};
        for (int i = 0; i < N; i++)
            for (int j = 0; j < LANES; j++)
                acc[j] += g[i] * e[(size_t)i * H + h + j];
        for (int j = 0; j < LANES; j++)
            o[h + j] = accumulate ? o[h + j] + acc[j] : acc[j];
    }
    for (; h < H; h++) {
        real acc = 0;
        for (int i = 0; i < N; i++)
            acc += g[i] * e[(size_t)i * H + h];
        o[h] = accumulate ? o[h] + acc : acc;
    }
}

/* dots[i] += d[H] · e[i, H] for i < N (e row-major [N, H]).  DOT_LANES dot
 * products run side by side, one per vector lane, each summed over h in
 * order as dot() does: vectorised without reordering any sum. */
#define DOT_LANES 4
static inline void dots_into(real *restrict dots, const real *restrict d, const real *restrict e,
                             int N, int H) {
    int i = 0;
    for (; i + DOT_LANES <= N; i += DOT_LANES) {
        real acc[DOT_LANES] = {0};
        for (int h = 0; h < H; h++)
            for (int j = 0; j < DOT_LANES; j++)
                acc[j] += d[h] * e[(size_t)(i + j) * H + h];
        for (int j = 0; j < DOT_LANES; j++)
            dots[i + j] += acc[j];
    }
    for (; i < N; i++)
        dots[i] += dot(d, e + (size_t)i * H, H);
}

/* dx[n] = relu_grad(dx, y) and db[n] += dx: the gradient before a ReLU and its
 * bias gradient, one row of a batch. */
static inline void relu_bias_grad_row(real *restrict dx, real *restrict db, const real *restrict y,
                                      int n) {
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) {
            dx[i + j] = relu_grad(dx[i + j], y[i + j]);
            db[i + j] += dx[i + j];
        }
    for (; i < n; i++) {
        dx[i] = relu_grad(dx[i], y[i]);
        db[i] += dx[i];
    }
}

/* ---- dense ---- */

/* relu_forward over B rows of n values, row stride ld. */
static void relu_rows(real *x, int ld, int B, int n) {
    if (ld == n) {
        relu_forward(x, (size_t)B * n);
        return;
    }
    for (int r = 0; r < B; r++)
        relu_forward(x + (size_t)r * ld, (size_t)n);
}

void dense_forward_ld(real *out, int ldo, const real *in, int ldi, const real *W, const real *b,
                      int B, int In, int Out) {
    assert(B >= 1 && In >= 1 && Out >= 1 && ldo >= Out && ldi >= In);
    if (b) broadcast_rows(out, ldo, b, B, Out);
    /* out[B,Out] = in[B,In] · W[In,Out] (+ out, holding the bias) */
    gemm(false, false, B, Out, In, 1, in, ldi, W, Out, b ? 1 : 0, out, ldo);
}

void dense_forward(real *out, const real *in, const real *W, const real *b, int B, int In,
                   int Out) {
    dense_forward_ld(out, Out, in, In, W, b, B, In, Out);
}

NN_KERNEL void dense_backward_ld(real *din, int ldi, real *dW, real *db, const real *dout, int ldo,
                                 const real *in, const real *W, int B, int In, int Out) {
    assert(B >= 1 && In >= 1 && Out >= 1 && ldo >= Out && ldi >= In);
    /* dW[In,Out] += in[B,In]ᵀ · dout[B,Out] */
    gemm(true, false, In, Out, B, 1, in, ldi, dout, ldo, 1, dW, Out);
    if (db)
        for (int r = 0; r < B; r++)
            add_into(db, dout + (size_t)r * ldo, Out);
    /* din[B,In] += dout[B,Out] · W[In,Out]ᵀ */
    if (din) {
        gemm(false, true, B, In, Out, 1, dout, ldo, W, Out, 1, din, ldi);
    }
}

void dense_backward(real *din, real *dW, real *db, const real *dout, const real *in, const real *W,
                    int B, int In, int Out) {
    dense_backward_ld(din, In, dW, db, dout, Out, in, W, B, In, Out);
}

void dense_relu_forward_ld(real *out, int ldo, const real *in, int ldi, const real *W,
                           const real *b, int B, int In, int Out) {
    dense_forward_ld(out, ldo, in, ldi, W, b, B, In, Out);
    relu_rows(out, ldo, B, Out);
}

void dense_relu_forward(real *out, const real *in, const real *W, const real *b, int B, int In,
                        int Out) {
    dense_relu_forward_ld(out, Out, in, In, W, b, B, In, Out);
}

NN_KERNEL void dense_relu_backward_ld(real *din, int ldi, real *dW, real *db, real *dout, int ldo,
                                      const real *in, const real *W, const real *y, int B, int In,
                                      int Out) {
    if (db)
        for (int r = 0; r < B; r++)
            relu_bias_grad_row(dout + (size_t)r * ldo, db, y + (size_t)r * ldo, Out);
    else if (ldo == Out)
        relu_backward(dout, y, (size_t)B * Out);
    else
        for (int r = 0; r < B; r++)
            relu_backward(dout + (size_t)r * ldo, y + (size_t)r * ldo, (size_t)Out);
    dense_backward_ld(din, ldi, dW, NULL, dout, ldo, in, W, B, In, Out);
}

void dense_relu_backward(real *din, real *dW, real *db, real *dout, const real *in, const real *W,
                         const real *y, int B, int In, int Out) {
    dense_relu_backward_ld(din, In, dW, db, dout, Out, in, W, y, B, In, Out);
}

/* ---- activations ---- */

NN_KERNEL void relu_forward(real *x, size_t n) {
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++)
            x[i + j] = relu(x[i + j]);
    for (; i < n; i++)
        x[i] = relu(x[i]);
}

NN_KERNEL void relu_backward(real *restrict dx, const real *restrict y, size_t n) {
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++)
            dx[i + j] = relu_grad(dx[i + j], y[i + j]);
    for (; i < n; i++)
        dx[i] = relu_grad(dx[i], y[i]);
}

NN_KERNEL void softmax_forward(real *out, const real *logits, int B, int N) {
    for (int r = 0; r < B; r++) {
        const real *z = logits + (size_t)r * N;
        real *p = out + (size_t)r * N;
        real zmax = z[0];
        for (int j = 1; j < N; j++)
            if (z[j] > zmax) zmax = z[j];
        real sum = 0;
        for (int j = 0; j < N; j++) {
            p[j] = (real)exp(z[j] - zmax);
            sum += p[j];
        }
        divide_row(p, sum, N);
    }
}

/* dz[N] += p ⊙ (dp − Σ_j dp_j p_j): one row of softmax_backward. */
static inline void softmax_grad_row(real *restrict dz, const real *restrict dp,
                                    const real *restrict p, int N) {
    const real dot_dp_p = dot(dp, p, N);
    int j = 0;
    for (; j + LANES <= N; j += LANES)
        for (int l = 0; l < LANES; l++)
            dz[j + l] += p[j + l] * (dp[j + l] - dot_dp_p);
    for (; j < N; j++)
        dz[j] += p[j] * (dp[j] - dot_dp_p);
}

NN_KERNEL void softmax_backward(real *dlogits, const real *dp, const real *p, int B, int N) {
    for (int r = 0; r < B; r++)
        softmax_grad_row(dlogits + (size_t)r * N, dp + (size_t)r * N, p + (size_t)r * N, N);
}

/* ---- mixture of experts ---- */

/* The rows of mixture_forward / mixture_accumulate; `accumulate` is a
 * constant at each call, so each caller gets its own loop. */
static inline void mixture_rows(real *out, int ldo, const real *gate, int ldg, const real *experts,
                                int lde, int B, int N, int H, bool accumulate) {
    for (int r = 0; r < B; r++)
        mix_row(out + (size_t)r * ldo, gate + (size_t)r * ldg, experts + (size_t)r * lde, N, H,
                accumulate);
}

NN_KERNEL void mixture_forward(real *out, const real *gate, int ldg, const real *experts, int B,
                               int N, int H) {
    mixture_rows(out, H, gate, ldg, experts, N * H, B, N, H, false);
}

NN_KERNEL void mixture_forward_ld(real *out, int ldo, const real *gate, int ldg,
                                  const real *experts, int lde, int B, int N, int H) {
    assert(ldo >= H && ldg >= N && lde >= N * H);
    mixture_rows(out, ldo, gate, ldg, experts, lde, B, N, H, false);
}

NN_KERNEL void mixture_accumulate(real *out, int ldo, const real *gate, int ldg,
                                  const real *experts, int lde, int B, int N, int H) {
    assert(ldo >= H && ldg >= N && lde >= N * H);
    mixture_rows(out, ldo, gate, ldg, experts, lde, B, N, H, true);
}

NN_KERNEL void mixture_backward_ld(real *dgate, int ldg, real *dexperts, int lde, const real *dout,
                                   int ldo, const real *gate, const real *experts, int B, int N,
                                   int H) {
    assert(ldo >= H && ldg >= N && lde >= N * H);
    for (int r = 0; r < B; r++) {
        const real *d = dout + (size_t)r * ldo;
        const real *g = gate + (size_t)r * ldg;
        const real *e = experts + (size_t)r * lde;
        real *dg = dgate + (size_t)r * ldg;
        real *de = dexperts + (size_t)r * lde;
        dots_into(dg, d, e, N, H); /* dg_i += d · e_i */
        for (int i = 0; i < N; i++)
            axpy(de + (size_t)i * H, g[i], d, H); /* de_i += g_i d */
    }
}

void mixture_backward(real *dgate, real *dexperts, const real *dout, const real *gate, int ldg,
                      const real *experts, int B, int N, int H) {
    mixture_backward_ld(dgate, ldg, dexperts, N * H, dout, H, gate, experts, B, N, H);
}
