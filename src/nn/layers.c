#include "nn/layers.h"

#include <math.h>
#include <string.h>

void dense_forward(real *out, const real *in, const real *W, const real *b, int B, int In, int Out) {
    if (b)
        for (int r = 0; r < B; r++) memcpy(out + (size_t)r * Out, b, sizeof(real) * Out);
    /* out[B,Out] = in[B,In] · W[In,Out] (+ out, holding the bias) */
    gemm(false, false, B, Out, In, 1, in, In, W, Out, b ? 1 : 0, out, Out);
}

void dense_backward(real *din, real *dW, real *db, const real *dout, const real *in,
                    const real *W, int B, int In, int Out) {
    /* dW[In,Out] += in[B,In]ᵀ · dout[B,Out] */
    gemm(true, false, In, Out, B, 1, in, In, dout, Out, 1, dW, Out);
    if (db)
        for (int r = 0; r < B; r++) {
            const real *row = dout + (size_t)r * Out;
            for (int o = 0; o < Out; o++) db[o] += row[o];
        }
    /* din[B,In] += dout[B,Out] · W[In,Out]ᵀ */
    if (din) gemm(false, true, B, In, Out, 1, dout, Out, W, Out, 1, din, In);
}

void relu_forward(real *x, int n) {
    for (int i = 0; i < n; i++)
        if (x[i] < 0) x[i] = 0; /* NaN passes through, so divergence stays visible */
}

void relu_backward(real *dx, const real *y, int n) {
    for (int i = 0; i < n; i++)
        if (y[i] <= 0) dx[i] = 0;
}

void softmax_forward(real *out, const real *logits, int B, int N) {
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
        for (int j = 0; j < N; j++) p[j] /= sum;
    }
}

void softmax_backward(real *dlogits, const real *dp, const real *p, int B, int N) {
    for (int r = 0; r < B; r++) {
        const real *pr = p + (size_t)r * N, *dpr = dp + (size_t)r * N;
        real dot = 0;
        for (int j = 0; j < N; j++) dot += dpr[j] * pr[j];
        real *dz = dlogits + (size_t)r * N;
        for (int j = 0; j < N; j++) dz[j] += pr[j] * (dpr[j] - dot);
    }
}

void mixture_forward(real *out, const real *gate, int ldg, const real *experts, int B, int N,
                     int H) {
    for (int r = 0; r < B; r++) {
        real *o = out + (size_t)r * H;
        const real *g = gate + (size_t)r * ldg;
        const real *e = experts + (size_t)r * N * H;
        memset(o, 0, sizeof(real) * H);
        for (int i = 0; i < N; i++)
            for (int h = 0; h < H; h++) o[h] += g[i] * e[(size_t)i * H + h];
    }
}

void mixture_backward(real *dgate, real *dexperts, const real *dout, const real *gate, int ldg,
                      const real *experts, int B, int N, int H) {
    for (int r = 0; r < B; r++) {
        const real *d = dout + (size_t)r * H;
        const real *g = gate + (size_t)r * ldg;
        const real *e = experts + (size_t)r * N * H;
        real *dg = dgate + (size_t)r * ldg;
        real *de = dexperts + (size_t)r * N * H;
        for (int i = 0; i < N; i++) {
            real dot = 0;
            for (int h = 0; h < H; h++) {
                dot += d[h] * e[(size_t)i * H + h];
                de[(size_t)i * H + h] += g[i] * d[h];
            }
            dg[i] += dot;
        }
    }
}
