/* real.h -- the numeric type of every tensor in mtlab.
 *
 * `real` is float by default and double when MTLAB_DOUBLE is defined; the test
 * suite builds every source twice so that finite-difference gradient checks
 * run in double precision on the very code that ships in float.  The GEMM
 * wrapper picks cblas_sgemm or cblas_dgemm accordingly. */
#ifndef MTLAB_REAL_H
#define MTLAB_REAL_H

#include <stdbool.h>
#include <cblas.h>

#ifdef MTLAB_DOUBLE
typedef double real;
#define REAL_NAME "double"
#else
typedef float real;
#define REAL_NAME "float"
#endif

/* C[M,N] = alpha * op(A)[M,K] · op(B)[K,N] + beta * C[M,N], all row-major.
 * lda/ldb/ldc are the row strides of A, B, C as stored (before op). */
static inline void gemm(bool trans_a, bool trans_b, int M, int N, int K, real alpha,
                        const real *A, int lda, const real *B, int ldb, real beta, real *C,
                        int ldc) {
#ifdef MTLAB_DOUBLE
    cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C,
                ldc);
#else
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C,
                ldc);
#endif
}

#endif
