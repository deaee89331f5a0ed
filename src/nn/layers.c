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

#include <math.h>
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

/* out[B, n] = x[n] in every row: one row, then copies that double the rows
 * filled (log2 B calls of memcpy rather than B calls for short rows). */
static void broadcast_rows(real *out, const real *x, int B, int n) {
    if (B <= 0) return;
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

/* o[H] = Σ_i g[i] · e[i, H] (e row-major [N, H]), summed over i in order.
 * A block of LANES outputs stays in registers while the experts are added. */
static inline void mix_row(real *restrict o, const real *restrict g, const real *restrict e, int N,
                           int H) {
    int h = 0;
    for (; h + LANES <= H; h += LANES) {
        real acc[LANES] = {0};
        for (int i = 0; i < N; i++)
            for (int j = 0; j < LANES; j++)
                acc[j] += g[i] * e[(size_t)i * H + h + j];
        for (int j = 0; j < LANES; j++)
            o[h + j] = acc[j];
    }
    for (; h < H; h++) {
        real acc = 0;
        for (int i = 0; i < N; i++)
            acc += g[i] * e[(size_t)i * H + h];
        o[h] = acc;
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

void dense_forward(real *out, const real *in, const real *W, const real *b, int B, int In,
                   int Out) {
    if (b) broadcast_rows(out, b, B, Out);
    /* out[B,Out] = in[B,In] · W[In,Out] (+ out, holding the bias) */
    gemm(false, false, B, Out, In, 1, in, In, W, Out, b ? 1 : 0, out, Out);
}

NN_KERNEL void dense_backward(real *din, real *dW, real *db, const real *dout, const real *in,
                              const real *W, int B, int In, int Out) {
    /* dW[In,Out] += in[B,In]ᵀ · dout[B,Out] */
    gemm(true, false, In, Out, B, 1, in, In, dout, Out, 1, dW, Out);
    if (db)
        for (int r = 0; r < B; r++)
            add_into(db, dout + (size_t)r * Out, Out);
    /* din[B,In] += dout[B,Out] · W[In,Out]ᵀ */
    if (din) {
        gemm(false, true, B, In, Out, 1, dout, Out, W, Out, 1, din, In);
    }
}

void dense_relu_forward(real *out, const real *in, const real *W, const real *b, int B, int In,
                        int Out) {
    dense_forward(out, in, W, b, B, In, Out);
    relu_forward(out, (size_t)B * Out);
}

NN_KERNEL void dense_relu_backward(real *din, real *dW, real *db, real *dout, const real *in,
                                   const real *W, const real *y, int B, int In, int Out) {
    if (db)
        for (int r = 0; r < B; r++)
            relu_bias_grad_row(dout + (size_t)r * Out, db, y + (size_t)r * Out, Out);
    else
        relu_backward(dout, y, (size_t)B * Out);
    dense_backward(din, dW, NULL, dout, in, W, B, In, Out);
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

NN_KERNEL void mixture_forward(real *out, const real *gate, int ldg, const real *experts, int B,
                               int N, int H) {
    for (int r = 0; r < B; r++) {
        real *o = out + (size_t)r * H;
        const real *g = gate + (size_t)r * ldg;
        const real *e = experts + (size_t)r * N * H;
        mix_row(o, g, e, N, H);
    }
}

NN_KERNEL void mixture_backward(real *dgate, real *dexperts, const real *dout, const real *gate,
                                int ldg, const real *experts, int B, int N, int H) {
    for (int r = 0; r < B; r++) {
        const real *d = dout + (size_t)r * H;
        const real *g = gate + (size_t)r * ldg;
        const real *e = experts + (size_t)r * N * H;
        real *dg = dgate + (size_t)r * ldg;
        real *de = dexperts + (size_t)r * N * H;
        dots_into(dg, d, e, N, H); /* dg_i += d · e_i */
        for (int i = 0; i < N; i++)
            axpy(de + (size_t)i * H, g[i], d, H); /* de_i += g_i d */
    }
}
