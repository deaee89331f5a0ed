/* test_nn.c -- the numerical primitives every model is built from: layer
 * forward/backward pairs (nn/layers), per-task losses (core/loss) and Adam
 * (core/adam), and that their vectorised forms give the bits of the plain
 * loops.
 *
 * Gradients are checked against central differences (tests/gradcheck.h,
 * double build) of a scalar loss L = Σ c ⊙ output with fixed random
 * coefficients c, so that the upstream gradient fed to backward is simply c.
 * All random inputs come from the project's own rng with fixed seeds, so the
 * tests are deterministic.  Exact-value comparisons use tolerances a few
 * orders above double rounding (~1e-16 per operation) and far below the size
 * of any real mistake (a wrong index or formula changes results by O(1)). */
#include <math.h>
#include <string.h>

#include "core/adam.h"
#include "core/loss.h"
#include "core/rng.h"
#include "gradcheck.h"
#include "nn/layers.h"
#include "testutil.h"

/* Results of short sums of O(1) products: rounding is ~1e-15 at worst. */
#define EXACT_TOL 1e-12

static void fill_uniform(rng_t *rng, real *x, int n, double lo, double hi) {
    for (int i = 0; i < n; i++)
        x[i] = (real)(lo + (hi - lo) * rng_uniform(rng));
}

static double dot(const real *a, const real *b, int n) {
    double s = 0;
    for (int i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

static void fill_value(real *x, int n, real value) {
    for (int i = 0; i < n; i++)
        x[i] = value;
}

static void assert_gradcheck(const char *what, double (*loss)(void *), void *ctx, real *theta,
                             const real *analytic, int n) {
    size_t worst = 0;
    double err = gradcheck(loss, ctx, theta, analytic, (size_t)n, &worst);
    ck_assert_msg(err < GRADCHECK_TOL, "%s: relative error %.3g at element %zu (analytic %.9g)",
                  what, err, worst, (double)analytic[worst]);
}

static void assert_close(const char *what, const real *got, const real *want, int n, double tol) {
    for (int i = 0; i < n; i++)
        ck_assert_msg(fabs((double)got[i] - want[i]) <= tol, "%s[%d]: got %.17g, want %.17g", what,
                      i, (double)got[i], (double)want[i]);
}

/* ---- dense ---------------------------------------------------------------- */

enum { DB = 5, DIN = 4, DOUT = 3 }; /* batch, input and output widths */

typedef struct {
    const real *in, *W, *b, *coef; /* in[B,In], W[In,Out], b[Out] or NULL, coef[B,Out] */
    real *out;                     /* [B,Out] */
} dense_ctx_t;

static double dense_loss(void *p) {
    dense_ctx_t *c = p;
    dense_forward(c->out, c->in, c->W, c->b, DB, DIN, DOUT);
    return dot(c->coef, c->out, DB * DOUT);
}

typedef struct {
    real in[DB * DIN], W[DIN * DOUT], b[DOUT], coef[DB * DOUT], out[DB * DOUT];
} dense_data_t;

static void dense_data_init(dense_data_t *d, uint64_t seed) {
    rng_t rng;
    rng_seed(&rng, seed, 0);
    fill_uniform(&rng, d->in, DB * DIN, -1, 1);
    fill_uniform(&rng, d->W, DIN * DOUT, -1, 1);
    fill_uniform(&rng, d->b, DOUT, -1, 1);
    fill_uniform(&rng, d->coef, DB * DOUT, -1, 1);
}

START_TEST(test_dense_gradcheck) {
    dense_data_t d;
    dense_data_init(&d, 1);
    dense_ctx_t ctx = {d.in, d.W, d.b, d.coef, d.out};
    real din[DB * DIN] = {0}, dW[DIN * DOUT] = {0}, db[DOUT] = {0};
    dense_backward(din, dW, db, d.coef, d.in, d.W, DB, DIN, DOUT);
    assert_gradcheck("dense dW", dense_loss, &ctx, d.W, dW, DIN * DOUT);
    assert_gradcheck("dense db", dense_loss, &ctx, d.b, db, DOUT);
    assert_gradcheck("dense din", dense_loss, &ctx, d.in, din, DB * DIN);
}
END_TEST

/* b = NULL: no bias in forward, db = NULL in backward; din = NULL is allowed
 * and leaves the parameter gradient unchanged. */
START_TEST(test_dense_no_bias_gradcheck) {
    dense_data_t d;
    dense_data_init(&d, 2);
    dense_ctx_t ctx = {d.in, d.W, NULL, d.coef, d.out};
    real din[DB * DIN] = {0}, dW[DIN * DOUT] = {0}, dW_no_din[DIN * DOUT] = {0};
    dense_backward(din, dW, NULL, d.coef, d.in, d.W, DB, DIN, DOUT);
    assert_gradcheck("bias-less dense dW", dense_loss, &ctx, d.W, dW, DIN * DOUT);
    assert_gradcheck("bias-less dense din", dense_loss, &ctx, d.in, din, DB * DIN);

    dense_backward(NULL, dW_no_din, NULL, d.coef, d.in, d.W, DB, DIN, DOUT);
    assert_close("dW with din = NULL", dW_no_din, dW, DIN * DOUT, EXACT_TOL);
}
END_TEST

/* out = in · W + b against the definition; without a bias, out may hold
 * garbage (NaN) beforehand and must be overwritten, not accumulated into. */
START_TEST(test_dense_forward_matches_naive) {
    dense_data_t d;
    dense_data_init(&d, 3);
    real want[DB * DOUT], want_no_bias[DB * DOUT];
    for (int r = 0; r < DB; r++)
        for (int o = 0; o < DOUT; o++) {
            double s = 0;
            for (int i = 0; i < DIN; i++)
                s += (double)d.in[r * DIN + i] * d.W[i * DOUT + o];
            want_no_bias[r * DOUT + o] = (real)s;
            want[r * DOUT + o] = (real)(s + d.b[o]);
        }
    fill_value(d.out, DB * DOUT, NAN);
    dense_forward(d.out, d.in, d.W, d.b, DB, DIN, DOUT);
    assert_close("dense out", d.out, want, DB * DOUT, EXACT_TOL);
    fill_value(d.out, DB * DOUT, NAN);
    dense_forward(d.out, d.in, d.W, NULL, DB, DIN, DOUT);
    assert_close("bias-less dense out", d.out, want_no_bias, DB * DOUT, EXACT_TOL);
}
END_TEST

/* Backward adds into dW, db and din: two calls give twice the gradient. */
START_TEST(test_dense_backward_accumulates) {
    dense_data_t d;
    dense_data_init(&d, 4);
    real din[DB * DIN] = {0}, dW[DIN * DOUT] = {0}, db[DOUT] = {0};
    dense_backward(din, dW, db, d.coef, d.in, d.W, DB, DIN, DOUT);
    real din2[DB * DIN], dW2[DIN * DOUT], db2[DOUT];
    for (int i = 0; i < DB * DIN; i++)
        din2[i] = 2 * din[i];
    for (int i = 0; i < DIN * DOUT; i++)
        dW2[i] = 2 * dW[i];
    for (int i = 0; i < DOUT; i++)
        db2[i] = 2 * db[i];
    dense_backward(din, dW, db, d.coef, d.in, d.W, DB, DIN, DOUT);
    assert_close("dW after two calls", dW, dW2, DIN * DOUT, EXACT_TOL);
    assert_close("db after two calls", db, db2, DOUT, EXACT_TOL);
    assert_close("din after two calls", din, din2, DB * DIN, EXACT_TOL);
}
END_TEST

/* ---- dense + ReLU (fused pair) ------------------------------------------- */

typedef struct {
    const real *in, *W, *b, *coef; /* as dense_ctx_t */
    real *out;
} dense_relu_ctx_t;

static double dense_relu_loss(void *p) {
    dense_relu_ctx_t *c = p;
    dense_relu_forward(c->out, c->in, c->W, c->b, DB, DIN, DOUT);
    return dot(c->coef, c->out, DB * DOUT);
}

/* Data whose pre-activations are all at least 0.1 away from the kink (so no
 * finite difference crosses it), with both signs present: the first seed from
 * `seed` on that gives such data. */
static void dense_relu_data_init(dense_data_t *d, uint64_t seed) {
    for (;; seed++) {
        dense_data_init(d, seed);
        real pre[DB * DOUT];
        dense_forward(pre, d->in, d->W, d->b, DB, DIN, DOUT);
        int negatives = 0, near_kink = 0;
        for (int i = 0; i < DB * DOUT; i++) {
            negatives += pre[i] < 0;
            near_kink += fabs(pre[i]) < 0.1;
        }
        if (!near_kink && negatives > 0 && negatives < DB * DOUT) return;
    }
}

START_TEST(test_dense_relu_gradcheck) {
    dense_data_t d;
    dense_relu_data_init(&d, 20);
    dense_relu_ctx_t ctx = {d.in, d.W, d.b, d.coef, d.out};
    dense_relu_loss(&ctx); /* out = relu(in · W + b) */
    real din[DB * DIN] = {0}, dW[DIN * DOUT] = {0}, db[DOUT] = {0}, dout[DB * DOUT];
    memcpy(dout, d.coef, sizeof dout);
    dense_relu_backward(din, dW, db, dout, d.in, d.W, d.out, DB, DIN, DOUT);
    assert_gradcheck("dense+relu dW", dense_relu_loss, &ctx, d.W, dW, DIN * DOUT);
    assert_gradcheck("dense+relu db", dense_relu_loss, &ctx, d.b, db, DOUT);
    assert_gradcheck("dense+relu din", dense_relu_loss, &ctx, d.in, din, DB * DIN);
}
END_TEST

/* The fused pair is exactly the unfused sequence (same bits), dout comes back
 * as the gradient before the ReLU, NULL db/din are allowed, and gradients
 * accumulate. */
START_TEST(test_dense_relu_matches_unfused) {
    dense_data_t d;
    dense_relu_data_init(&d, 30);
    real fused[DB * DOUT], plain[DB * DOUT];
    dense_relu_forward(fused, d.in, d.W, d.b, DB, DIN, DOUT);
    dense_forward(plain, d.in, d.W, d.b, DB, DIN, DOUT);
    relu_forward(plain, DB * DOUT);
    ck_assert(memcmp(fused, plain, sizeof fused) == 0);

    real din[DB * DIN] = {0}, dW[DIN * DOUT] = {0}, db[DOUT] = {0}, dout[DB * DOUT];
    real din2[DB * DIN] = {0}, dW2[DIN * DOUT] = {0}, db2[DOUT] = {0}, dpre[DB * DOUT];
    memcpy(dout, d.coef, sizeof dout);
    dense_relu_backward(din, dW, db, dout, d.in, d.W, fused, DB, DIN, DOUT);
    memcpy(dpre, d.coef, sizeof dpre);
    relu_backward(dpre, plain, DB * DOUT);
    dense_backward(din2, dW2, db2, dpre, d.in, d.W, DB, DIN, DOUT);
    ck_assert(memcmp(dout, dpre, sizeof dout) == 0);
    ck_assert(memcmp(dW, dW2, sizeof dW) == 0);
    ck_assert(memcmp(db, db2, sizeof db) == 0);
    ck_assert(memcmp(din, din2, sizeof din) == 0);

    /* No bias, no input gradient: dW as before; a second call doubles it. */
    real dW3[DIN * DOUT] = {0};
    for (int call = 0; call < 2; call++) {
        memcpy(dout, d.coef, sizeof dout);
        dense_relu_backward(NULL, dW3, NULL, dout, d.in, d.W, fused, DB, DIN, DOUT);
    }
    for (int i = 0; i < DIN * DOUT; i++)
        dW2[i] = 2 * dW[i];
    assert_close("dW after two calls", dW3, dW2, DIN * DOUT, EXACT_TOL);
}
END_TEST

/* ---- relu ----------------------------------------------------------------- */

enum { RELU_N = 40 };

typedef struct {
    const real *x, *coef;
    real *y;
} relu_ctx_t;

static double relu_loss(void *p) {
    relu_ctx_t *c = p;
    memcpy(c->y, c->x, sizeof(real) * RELU_N);
    relu_forward(c->y, RELU_N);
    return dot(c->coef, c->y, RELU_N);
}

START_TEST(test_relu_forward_values) {
    /* Small values on both sides of 0 pin the threshold at exactly 0. */
    real x[] = {-2.0, -0.5, -1e-3, 0.0, 1e-3, 0.3, 5.0, NAN};
    const real want[] = {0.0, 0.0, 0.0, 0.0, 1e-3, 0.3, 5.0};
    relu_forward(x, 8);
    assert_close("relu", x, want, 7, 0.0);
    /* NaN must survive so a diverged run is detected (the NaN -> failed rule). */
    ck_assert_msg(isnan(x[7]), "relu(NaN) = %g", (double)x[7]);
}
END_TEST

START_TEST(test_relu_gradcheck) {
    rng_t rng;
    rng_seed(&rng, 5, 0);
    real x[RELU_N], coef[RELU_N], y[RELU_N], dx[RELU_N];
    int negatives = 0;
    for (int i = 0; i < RELU_N; i++) {
        /* |x| > 0.1 >> GRADCHECK_STEP: no difference crosses the kink. */
        do
            x[i] = (real)(4 * rng_uniform(&rng) - 2);
        while (fabs(x[i]) <= 0.1);
        negatives += x[i] < 0;
    }
    ck_assert(negatives > 0 && negatives < RELU_N); /* both branches exercised */
    fill_uniform(&rng, coef, RELU_N, -1, 1);
    relu_ctx_t ctx = {x, coef, y};
    relu_loss(&ctx); /* y = relu(x) */
    memcpy(dx, coef, sizeof dx);
    relu_backward(dx, y, RELU_N);
    assert_gradcheck("relu dx", relu_loss, &ctx, x, dx, RELU_N);
}
END_TEST

/* ---- softmax -------------------------------------------------------------- */

enum { SB = 3, SN = 5 };

typedef struct {
    const real *z, *coef;
    real *p;
} softmax_ctx_t;

static double softmax_loss(void *ptr) {
    softmax_ctx_t *c = ptr;
    softmax_forward(c->p, c->z, SB, SN);
    return dot(c->coef, c->p, SB * SN);
}

START_TEST(test_softmax_rows_sum_to_one_and_shift_invariant) {
    rng_t rng;
    rng_seed(&rng, 6, 0);
    real z[SB * SN], p[SB * SN], shifted_z[SB * SN], shifted_p[SB * SN];
    fill_uniform(&rng, z, SB * SN, -3, 3);
    softmax_forward(p, z, SB, SN);
    for (int r = 0; r < SB; r++) {
        double sum = 0;
        for (int j = 0; j < SN; j++) {
            ck_assert(p[r * SN + j] > 0 && p[r * SN + j] < 1);
            sum += p[r * SN + j];
        }
        ck_assert_msg(fabs(sum - 1) < EXACT_TOL, "row %d sums to %.17g", r, sum);
    }
    /* A different constant per row: rows are normalised independently. */
    const real shift[SB] = {123.456, -50.0, 0.75};
    for (int r = 0; r < SB; r++)
        for (int j = 0; j < SN; j++)
            shifted_z[r * SN + j] = z[r * SN + j] + shift[r];
    softmax_forward(shifted_p, shifted_z, SB, SN);
    assert_close("softmax of shifted logits", shifted_p, p, SB * SN, EXACT_TOL);
}
END_TEST

START_TEST(test_softmax_extreme_logits) {
    const real z[3 * SN] = {1000,  -1000, 999,   0,     1000,   /* two maxima and e^-1 */
                            -1000, -1000, -1000, -1000, -1000,  /* uniform */
                            -1000, 1000,  -1000, -1000, -1000}; /* one-hot */
    const double e1 = exp(-1.0), norm = 2 + e1;
    const real want[3 * SN] = {1 / norm, 0,   e1 / norm, 0, 1 / norm, 0.2, 0.2, 0.2,
                               0.2,      0.2, 0,         1, 0,        0,   0};
    real p[3 * SN];
    softmax_forward(p, z, 3, SN);
    for (int i = 0; i < 3 * SN; i++)
        ck_assert_msg(isfinite(p[i]), "p[%d] = %g", i, (double)p[i]);
    assert_close("softmax(+-1000)", p, want, 3 * SN, EXACT_TOL);
}
END_TEST

START_TEST(test_softmax_gradcheck) {
    rng_t rng;
    rng_seed(&rng, 7, 0);
    real z[SB * SN], coef[SB * SN], p[SB * SN], dz[SB * SN] = {0};
    fill_uniform(&rng, z, SB * SN, -2, 2);
    fill_uniform(&rng, coef, SB * SN, -1, 1);
    softmax_ctx_t ctx = {z, coef, p};
    softmax_loss(&ctx);
    softmax_backward(dz, coef, p, SB, SN);
    assert_gradcheck("softmax dz", softmax_loss, &ctx, z, dz, SB * SN);

    /* Accumulates: a second call adds the same gradient again.  gradcheck left
     * p from a perturbed z, so recompute it first. */
    softmax_loss(&ctx);
    real dz2[SB * SN];
    for (int i = 0; i < SB * SN; i++)
        dz2[i] = 2 * dz[i];
    softmax_backward(dz, coef, p, SB, SN);
    assert_close("softmax dz after two calls", dz, dz2, SB * SN, EXACT_TOL);
}
END_TEST

/* ---- mixture -------------------------------------------------------------- */

enum { MB = 3, MN = 4, MH = 5, MG = 2 }; /* batch, experts, expert width, tasks */

typedef struct {
    const real *gate; /* row stride ldg */
    int ldg;
    const real *experts, *coef; /* experts[B, N·H], coef[B, H] */
    real *out;                  /* [B, H] */
} mixture_ctx_t;

static double mixture_loss(void *p) {
    mixture_ctx_t *c = p;
    mixture_forward(c->out, c->gate, c->ldg, c->experts, MB, MN, MH);
    return dot(c->coef, c->out, MB * MH);
}

/* Gradient check for gates stored with row stride ldg = G·N, using the task
 * slice g: gate_all[B, G, N] is perturbed as a whole, so the check also
 * proves that the other slices neither feed the output nor get a gradient. */
static void check_mixture(int G, int g, uint64_t seed) {
    rng_t rng;
    rng_seed(&rng, seed, 0);
    const int ldg = G * MN;
    real gate_all[MB * MG * MN], experts[MB * MN * MH], coef[MB * MH], out[MB * MH];
    real dgate_all[MB * MG * MN] = {0}, dexperts[MB * MN * MH] = {0};
    fill_uniform(&rng, gate_all, MB * ldg, 0, 1);
    fill_uniform(&rng, experts, MB * MN * MH, -1, 1);
    fill_uniform(&rng, coef, MB * MH, -1, 1);
    mixture_ctx_t ctx = {gate_all + g * MN, ldg, experts, coef, out};

    /* Forward against the definition; out starts as garbage. */
    real want[MB * MH];
    for (int r = 0; r < MB; r++)
        for (int h = 0; h < MH; h++) {
            double s = 0;
            for (int i = 0; i < MN; i++)
                s += (double)gate_all[r * ldg + g * MN + i] * experts[(r * MN + i) * MH + h];
            want[r * MH + h] = (real)s;
        }
    fill_value(out, MB * MH, NAN);
    mixture_forward(out, ctx.gate, ldg, experts, MB, MN, MH);
    assert_close("mixture out", out, want, MB * MH, EXACT_TOL);

    mixture_backward(dgate_all + g * MN, dexperts, coef, ctx.gate, ldg, experts, MB, MN, MH);
    assert_gradcheck("mixture dgate", mixture_loss, &ctx, gate_all, dgate_all, MB * ldg);
    assert_gradcheck("mixture dexperts", mixture_loss, &ctx, experts, dexperts, MB * MN * MH);

    /* Accumulates into both gradients. */
    real dgate2[MB * MG * MN], dexperts2[MB * MN * MH];
    for (int i = 0; i < MB * ldg; i++)
        dgate2[i] = 2 * dgate_all[i];
    for (int i = 0; i < MB * MN * MH; i++)
        dexperts2[i] = 2 * dexperts[i];
    mixture_backward(dgate_all + g * MN, dexperts, coef, ctx.gate, ldg, experts, MB, MN, MH);
    assert_close("dgate after two calls", dgate_all, dgate2, MB * ldg, EXACT_TOL);
    assert_close("dexperts after two calls", dexperts, dexperts2, MB * MN * MH, EXACT_TOL);
}

START_TEST(test_mixture_plain_gates) {
    check_mixture(1, 0, 8);
}
END_TEST

START_TEST(test_mixture_interleaved_gates) {
    check_mixture(MG, 1, 9);
}
END_TEST

/* ---- strided rows --------------------------------------------------------- */

/* A dense (or dense + ReLU) layer reading columns [SOFF, SOFF + DIN) of rows
 * of stride SLDI and writing columns [SOFF, SOFF + DOUT) of rows of stride
 * SLDO: the gradient check perturbs the whole input buffer, so it also proves
 * that columns outside the slice neither feed the output nor get a gradient,
 * and the forward must leave the output's other columns as they were. */
enum { SLDI = DIN + 3, SLDO = DOUT + 4, SOFF = 2 };

typedef struct {
    real in[DB * SLDI], W[DIN * DOUT], b[DOUT], coef[DB * SLDO], out[DB * SLDO];
    bool relu;
} strided_ctx_t;

static double strided_loss(void *p) {
    strided_ctx_t *c = p;
    if (c->relu)
        dense_relu_forward_ld(c->out + SOFF, SLDO, c->in + SOFF, SLDI, c->W, c->b, DB, DIN, DOUT);
    else
        dense_forward_ld(c->out + SOFF, SLDO, c->in + SOFF, SLDI, c->W, c->b, DB, DIN, DOUT);
    double sum = 0;
    for (int r = 0; r < DB; r++)
        sum += dot(c->coef + r * SLDO + SOFF, c->out + r * SLDO + SOFF, DOUT);
    return sum;
}

static void check_strided_dense(bool relu, uint64_t seed) {
    rng_t rng;
    rng_seed(&rng, seed, 0);
    strided_ctx_t c = {.relu = relu};
    fill_uniform(&rng, c.in, DB * SLDI, -1, 1);
    fill_uniform(&rng, c.W, DIN * DOUT, -1, 1);
    fill_uniform(&rng, c.b, DOUT, -1, 1);
    fill_uniform(&rng, c.coef, DB * SLDO, -1, 1);
    fill_value(c.out, DB * SLDO, 7);
    strided_loss(&c);
    /* Against the contiguous layer; the columns around the slice untouched. */
    real in[DB * DIN], out[DB * DOUT];
    for (int r = 0; r < DB; r++)
        memcpy(in + r * DIN, c.in + r * SLDI + SOFF, sizeof(real) * DIN);
    if (relu)
        dense_relu_forward(out, in, c.W, c.b, DB, DIN, DOUT);
    else
        dense_forward(out, in, c.W, c.b, DB, DIN, DOUT);
    for (int r = 0; r < DB; r++)
        for (int j = 0; j < SLDO; j++) {
            bool inside = j >= SOFF && j < SOFF + DOUT;
            real want = inside ? out[r * DOUT + j - SOFF] : 7;
            ck_assert_msg(c.out[r * SLDO + j] == want, "strided out[%d][%d]", r, j);
        }
    /* Backward: dout has the output's stride; relu overwrites it. */
    real din[DB * SLDI] = {0}, dW[DIN * DOUT] = {0}, db[DOUT] = {0}, dout[DB * SLDO];
    memcpy(dout, c.coef, sizeof dout);
    if (relu)
        dense_relu_backward_ld(din + SOFF, SLDI, dW, db, dout + SOFF, SLDO, c.in + SOFF, c.W,
                               c.out + SOFF, DB, DIN, DOUT);
    else
        dense_backward_ld(din + SOFF, SLDI, dW, db, dout + SOFF, SLDO, c.in + SOFF, c.W, DB, DIN,
                          DOUT);
    assert_gradcheck("strided dense dW", strided_loss, &c, c.W, dW, DIN * DOUT);
    assert_gradcheck("strided dense db", strided_loss, &c, c.b, db, DOUT);
    assert_gradcheck("strided dense din", strided_loss, &c, c.in, din, DB * SLDI);
}

START_TEST(test_dense_strided_gradcheck) {
    check_strided_dense(false, 31);
}
END_TEST

START_TEST(test_dense_relu_strided_gradcheck) {
    check_strided_dense(true, 32);
}
END_TEST

/* out += Σ gate · experts over strided rows: two groups of experts (a task's
 * own, then shared ones, as in PLE) mixed into one output by two calls, with
 * the gate columns of each group, onto an output holding a previous value. */
enum { AN1 = 2, AN2 = 3, ALDE = (AN1 + AN2) * MH + 2, ALDG = AN1 + AN2 + 1, ALDO = MH + 3 };

typedef struct {
    real gate[MB * ALDG], experts[MB * ALDE], coef[MB * ALDO], start[MB * ALDO], out[MB * ALDO];
} accumulate_ctx_t;

static void accumulate_forward(accumulate_ctx_t *c) {
    memcpy(c->out, c->start, sizeof c->out);
    mixture_accumulate(c->out, ALDO, c->gate, ALDG, c->experts, ALDE, MB, AN1, MH);
    mixture_accumulate(c->out, ALDO, c->gate + AN1, ALDG, c->experts + AN1 * MH, ALDE, MB, AN2, MH);
}

static double accumulate_loss(void *p) {
    accumulate_ctx_t *c = p;
    accumulate_forward(c);
    double sum = 0;
    for (int r = 0; r < MB; r++)
        sum += dot(c->coef + r * ALDO, c->out + r * ALDO, MH);
    return sum;
}

START_TEST(test_mixture_accumulate_gradcheck) {
    rng_t rng;
    rng_seed(&rng, 33, 0);
    accumulate_ctx_t c;
    fill_uniform(&rng, c.gate, MB * ALDG, 0, 1);
    fill_uniform(&rng, c.experts, MB * ALDE, -1, 1);
    fill_uniform(&rng, c.coef, MB * ALDO, -1, 1);
    fill_uniform(&rng, c.start, MB * ALDO, -1, 1);
    accumulate_forward(&c);
    for (int r = 0; r < MB; r++)
        for (int h = 0; h < ALDO; h++) {
            double want = c.start[r * ALDO + h];
            if (h < MH)
                for (int i = 0; i < AN1 + AN2; i++)
                    want += (double)c.gate[r * ALDG + i] * c.experts[r * ALDE + i * MH + h];
            ck_assert_msg(fabs(c.out[r * ALDO + h] - want) < EXACT_TOL, "accumulated out[%d][%d]",
                          r, h);
        }
    real dgate[MB * ALDG] = {0}, dexperts[MB * ALDE] = {0};
    mixture_backward_ld(dgate, ALDG, dexperts, ALDE, c.coef, ALDO, c.gate, c.experts, MB, AN1, MH);
    mixture_backward_ld(dgate + AN1, ALDG, dexperts + AN1 * MH, ALDE, c.coef, ALDO, c.gate + AN1,
                        c.experts + AN1 * MH, MB, AN2, MH);
    assert_gradcheck("accumulating mixture dgate", accumulate_loss, &c, c.gate, dgate, MB * ALDG);
    assert_gradcheck("accumulating mixture dexperts", accumulate_loss, &c, c.experts, dexperts,
                     MB * ALDE);
    real dstart[MB * ALDO]; /* out += ...: the previous value passes dout through */
    for (int i = 0; i < MB * ALDO; i++)
        dstart[i] = i % ALDO < MH ? c.coef[i] : 0;
    assert_gradcheck("accumulating mixture dstart", accumulate_loss, &c, c.start, dstart,
                     MB * ALDO);
}
END_TEST

/* ---- vectorised kernels against the plain loops --------------------------- */

/* The layers vectorise across independent elements only, so on sizes that
 * exercise both the vector blocks and the scalar tails they must give exactly
 * the bits of the plain loops of their comments (layers.c). */
enum { KB = 3, KN = 6, KH = 19, KG = 2 }; /* experts: a block of 4 + 2; width: 2 x 8 + 3 */

START_TEST(test_kernels_match_plain_loops) {
    rng_t rng;
    rng_seed(&rng, 40, 0);
    const int ldg = KG * KN;
    real gate[KB * KG * KN], experts[KB * KN * KH], dout[KB * KH], out[KB * KH];
    fill_uniform(&rng, gate, KB * ldg, 0, 1);
    fill_uniform(&rng, experts, KB * KN * KH, -1, 1);
    fill_uniform(&rng, dout, KB * KH, -1, 1);
    for (int g = 0; g < KG; g++) {
        const real *gg = gate + g * KN;
        mixture_forward(out, gg, ldg, experts, KB, KN, KH);
        real dgate[KB * KG * KN] = {0}, dexperts[KB * KN * KH] = {0};
        mixture_backward(dgate + g * KN, dexperts, dout, gg, ldg, experts, KB, KN, KH);
        for (int r = 0; r < KB; r++) {
            for (int h = 0; h < KH; h++) {
                real o = 0;
                for (int i = 0; i < KN; i++)
                    o += gg[r * ldg + i] * experts[(r * KN + i) * KH + h];
                ck_assert_msg(out[r * KH + h] == o, "mixture out[%d][%d]", r, h);
            }
            for (int i = 0; i < KN; i++) {
                real dg = 0;
                for (int h = 0; h < KH; h++)
                    dg += dout[r * KH + h] * experts[(r * KN + i) * KH + h];
                ck_assert_msg(dgate[r * ldg + g * KN + i] == dg, "mixture dgate[%d][%d]", r, i);
                for (int h = 0; h < KH; h++) {
                    real de = 0;
                    de += gg[r * ldg + i] * dout[r * KH + h];
                    ck_assert(dexperts[(r * KN + i) * KH + h] == de);
                }
            }
        }
    }

    /* softmax over rows of KH logits, and its backward */
    real z[KB * KH], p[KB * KH], dz[KB * KH] = {0};
    fill_uniform(&rng, z, KB * KH, -3, 3);
    softmax_forward(p, z, KB, KH);
    softmax_backward(dz, dout, p, KB, KH);
    for (int r = 0; r < KB; r++) {
        const real *zr = z + r * KH;
        real zmax = zr[0], sum = 0, e[KH], dot_dp_p = 0;
        for (int j = 1; j < KH; j++)
            if (zr[j] > zmax) zmax = zr[j];
        for (int j = 0; j < KH; j++) {
            e[j] = (real)exp(zr[j] - zmax);
            sum += e[j];
        }
        for (int j = 0; j < KH; j++) {
            ck_assert_msg(p[r * KH + j] == e[j] / sum, "softmax p[%d][%d]", r, j);
            dot_dp_p += dout[r * KH + j] * p[r * KH + j];
        }
        for (int j = 0; j < KH; j++) {
            real want = 0;
            want += p[r * KH + j] * (dout[r * KH + j] - dot_dp_p);
            ck_assert_msg(dz[r * KH + j] == want, "softmax dz[%d][%d]", r, j);
        }
    }

    /* dense_relu_backward's bias gradient: rows added in order */
    real y[KB * KH], dpre[KB * KH], db[KH] = {0}, dW[1 * KH] = {0}, in[KB] = {1, 2, 3}, W[KH];
    fill_uniform(&rng, y, KB * KH, -1, 1);
    fill_uniform(&rng, W, KH, -1, 1);
    memcpy(dpre, dout, sizeof dpre);
    dense_relu_backward(NULL, dW, db, dpre, in, W, y, KB, 1, KH);
    for (int h = 0; h < KH; h++) {
        real want = 0;
        for (int r = 0; r < KB; r++)
            want += y[r * KH + h] <= 0 ? 0 : dout[r * KH + h];
        ck_assert_msg(db[h] == want, "db[%d]", h);
    }
}
END_TEST

/* ---- losses --------------------------------------------------------------- */

enum { LB = 4, LT = 3, LK = 1 }; /* batch, tasks, task column under test */

/* Columns other than k hold values that would change the result if read. */
START_TEST(test_loss_mse_value) {
    const real pred[3 * LT] = {99, 1.5, -7, 99, -0.5, -7, 99, 2.0, -7};
    const real label[3 * LT] = {-5, 0.5, 8, -5, 1.5, 8, -5, 2.0, 8};
    /* errors 1, -2, 0: (1 + 4 + 0) / 3 */
    ck_assert_double_eq_tol(loss_task(TASK_REGRESSION, pred, label, 3, LT, LK), 5.0 / 3.0, 1e-15);
}
END_TEST

START_TEST(test_loss_bce_value) {
    const real pred[LB * LT] = {99, 0, -7, 99, 2, -7, 99, -3, -7, 99, 3, -7};
    const real label[LB * LT] = {0, 1, 1, 0, 0, 1, 0, 0, 1, 0, 1, 1};
    /* (logit, label) = (0,1): ln 2; (2,0): ln(1+e^2); (-3,0) and (3,1): ln(1+e^-3).
     * Mean (0.6931471805599453 + 2.1269280110429727 + 2·0.04858735157374206) / 4. */
    const double want = 0.7293124736876005;
    ck_assert_double_eq_tol(loss_task(TASK_BINARY, pred, label, LB, LT, LK), want, 1e-15);
}
END_TEST

/* |logit| = 1000: exp overflows in a naive form; the limits are exact in double. */
START_TEST(test_loss_bce_extreme_logits) {
    const real logit[4] = {1000, 1000, -1000, -1000};
    const real label[4] = {1, 0, 0, 1};
    const double want_loss[4] = {0, 1000, 0, 1000}; /* confident right / wrong */
    const double want_grad[4] = {0, 1, 0, -1};      /* sigmoid(logit) - label */
    for (int i = 0; i < 4; i++) {
        double l = loss_task(TASK_BINARY, &logit[i], &label[i], 1, 1, 0);
        real g = 0;
        loss_task_grad(TASK_BINARY, &logit[i], &label[i], 1, 1, 0, 1, &g);
        ck_assert_msg(isfinite(l) && fabs(l - want_loss[i]) < EXACT_TOL,
                      "BCE(%g, %g) = %.17g, want %g", (double)logit[i], (double)label[i], l,
                      want_loss[i]);
        ck_assert_msg(isfinite(g) && fabs(g - want_grad[i]) < EXACT_TOL,
                      "dBCE(%g, %g) = %.17g, want %g", (double)logit[i], (double)label[i],
                      (double)g, want_grad[i]);
    }
}
END_TEST

typedef struct {
    task_kind_t kind;
    const real *pred, *label;
    real weight;
} loss_ctx_t;

static double weighted_task_loss(void *p) {
    loss_ctx_t *c = p;
    return c->weight * loss_task(c->kind, c->pred, c->label, LB, LT, LK);
}

static void check_loss_grad(task_kind_t kind, uint64_t seed) {
    const real weight = 0.7, untouched = 42;
    rng_t rng;
    rng_seed(&rng, seed, 0);
    real pred[LB * LT], label[LB * LT], dpred[LB * LT], analytic[LB * LT];
    fill_uniform(&rng, pred, LB * LT, -2, 2);
    for (int i = 0; i < LB * LT; i++)
        label[i] = kind == TASK_BINARY ? (real)(i % 2) : (real)(2 * rng_uniform(&rng) - 1);
    fill_value(dpred, LB * LT, untouched);
    loss_task_grad(kind, pred, label, LB, LT, LK, weight, dpred);
    for (int b = 0; b < LB; b++)
        for (int t = 0; t < LT; t++) {
            int i = b * LT + t;
            if (t != LK)
                ck_assert_msg(dpred[i] == untouched, "dpred[%d][%d] overwritten: %g", b, t,
                              (double)dpred[i]);
            analytic[i] = t == LK ? dpred[i] : 0; /* other columns do not affect loss k */
        }
    loss_ctx_t ctx = {kind, pred, label, weight};
    assert_gradcheck(kind == TASK_BINARY ? "BCE dpred" : "MSE dpred", weighted_task_loss, &ctx,
                     pred, analytic, LB * LT);
}

START_TEST(test_loss_mse_gradcheck) {
    check_loss_grad(TASK_REGRESSION, 10);
}
END_TEST

START_TEST(test_loss_bce_gradcheck) {
    check_loss_grad(TASK_BINARY, 11);
}
END_TEST

/* ---- Adam ----------------------------------------------------------------- */

enum { AN = 7 };

/* Step 1 from zero moments: mhat = g and vhat = g², so every parameter moves
 * by lr·g/(|g| + eps) = lr·sign(g) up to eps/|g| <= 2e-7 for |g| >= 0.05;
 * a zero gradient leaves its parameter in place. */
START_TEST(test_adam_first_step_is_lr_sign) {
    const double lr = 1e-3;
    const real grads[AN] = {0.3, -2, 0.05, -0.1, 10, -7, 0};
    real params[AN] = {0.5, -1, 2, 0, 3, -0.25, 1.5}, before[AN];
    memcpy(before, params, sizeof params);
    adam_t opt;
    ck_assert_int_eq(adam_init(&opt, AN, lr, NULL), 0);
    adam_step(&opt, params, grads);
    for (int i = 0; i < AN; i++) {
        double sign = grads[i] > 0 ? 1 : grads[i] < 0 ? -1 : 0;
        double moved = (double)params[i] - before[i];
        ck_assert_msg(fabs(moved + lr * sign) <= 1e-6 * lr, "param %d moved by %.17g (g = %g)", i,
                      moved, (double)grads[i]);
    }
    ck_assert_int_eq(opt.t, 1);
    adam_free(&opt);
}
END_TEST

/* The textbook form of Kingma & Ba, Algorithm 1, with the documented defaults. */
static void textbook_adam_step(double *p, double *m, double *v, const real *g, int n, double lr,
                               int t) {
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    for (int i = 0; i < n; i++) {
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
        double mhat = m[i] / (1 - pow(b1, t)), vhat = v[i] / (1 - pow(b2, t));
        p[i] -= lr * mhat / (sqrt(vhat) + eps);
    }
}

/* Five steps with varying gradients, some tiny so that eps matters (a wrong
 * eps correction shows at ~1e-4 relative).  The forms are algebraically equal,
 * so the displacements agree to rounding: 1e-12 of the displacement. */
START_TEST(test_adam_matches_textbook) {
    const double lr = 0.01;
    rng_t rng;
    rng_seed(&rng, 12, 0);
    real params[AN], grads[AN], start[AN];
    double ref_p[AN], ref_m[AN] = {0}, ref_v[AN] = {0};
    fill_uniform(&rng, params, AN, -1, 1);
    memcpy(start, params, sizeof params);
    for (int i = 0; i < AN; i++)
        ref_p[i] = params[i];
    adam_t opt;
    ck_assert_int_eq(adam_init(&opt, AN, lr, NULL), 0);
    for (int t = 1; t <= 5; t++) {
        for (int i = 0; i < AN; i++) {
            double scale = pow(10.0, -(double)(i % 5)); /* 1 .. 1e-4 */
            grads[i] = (real)(scale * (2 * rng_uniform(&rng) - 1));
        }
        adam_step(&opt, params, grads);
        textbook_adam_step(ref_p, ref_m, ref_v, grads, AN, lr, t);
    }
    for (int i = 0; i < AN; i++) {
        double moved = ref_p[i] - start[i];
        ck_assert_msg(fabs(params[i] - ref_p[i]) <= 1e-12 * fabs(moved),
                      "param %d: adam %.17g, textbook %.17g", i, (double)params[i], ref_p[i]);
    }
    ck_assert_int_eq(opt.t, 5);
    adam_free(&opt);
}
END_TEST

/* Σ (p_i - t_i)² from p = 0 with lr 0.01: the farthest target (3) needs >= 300
 * steps at <= lr per step; 5000 steps leave ample room to settle within 1e-3. */
START_TEST(test_adam_minimises_quadratic) {
    enum { QN = 5, STEPS = 5000 };
    const real target[QN] = {1, -2, 0.5, 3, -0.25};
    real params[QN] = {0}, grads[QN];
    adam_t opt;
    ck_assert_int_eq(adam_init(&opt, QN, 0.01, NULL), 0);
    for (int s = 0; s < STEPS; s++) {
        for (int i = 0; i < QN; i++)
            grads[i] = 2 * (params[i] - target[i]);
        adam_step(&opt, params, grads);
    }
    for (int i = 0; i < QN; i++)
        ck_assert_msg(fabs(params[i] - target[i]) < 1e-3, "param %d = %.9g, target %g", i,
                      (double)params[i], (double)target[i]);
    adam_free(&opt);
}
END_TEST

/* The float update of the float build (AVX-512 / AVX where the CPU has them)
 * gives exactly the bits of the scalar form, over a length with vector blocks
 * and a scalar tail, for several steps. */
START_TEST(test_adam_f32_matches_scalar) {
    enum { FN = 16 * 3 + 8 + 5 };
    float p[FN], m[FN] = {0}, v[FN] = {0}, g[FN];
    float rp[FN], rm[FN] = {0}, rv[FN] = {0};
    rng_t rng;
    rng_seed(&rng, 13, 0);
    for (int i = 0; i < FN; i++)
        p[i] = rp[i] = (float)(2 * rng_uniform(&rng) - 1);
    const float b1 = 0.9f, b2 = 0.999f;
    for (int t = 1; t <= 4; t++) {
        for (int i = 0; i < FN; i++)
            g[i] = (float)(pow(10.0, -(double)(i % 6)) * (2 * rng_uniform(&rng) - 1));
        const float step = (float)(1e-3 * sqrt(1 - pow(0.999, t)) / (1 - pow(0.9, t)));
        const float eps = (float)(1e-8 * sqrt(1 - pow(0.999, t)));
        size_t vectorised = adam_update_f32(p, g, m, v, FN, b1, b2, step, eps);
        ck_assert(vectorised % 8 == 0 && vectorised <= FN);
        for (int i = 0; i < FN; i++) { /* the scalar form of adam_step, in float */
            float gi = g[i];
            rm[i] = b1 * rm[i] + (1 - b1) * gi;
            rv[i] = b2 * rv[i] + (1 - b2) * gi * gi;
            rp[i] -= step * rm[i] / (sqrt(rv[i]) + eps);
        }
        ck_assert_msg(memcmp(p, rp, sizeof p) == 0, "step %d: parameters differ", t);
        ck_assert(memcmp(m, rm, sizeof m) == 0 && memcmp(v, rv, sizeof v) == 0);
    }
}
END_TEST

Suite *nn_suite(void) {
    Suite *s = suite_create("nn");

    TCase *tc = tcase_create("layers");
    tcase_set_timeout(tc, 30); /* gradient checks: cheap here, but slow under sanitizers */
    tcase_add_test(tc, test_dense_gradcheck);
    tcase_add_test(tc, test_dense_no_bias_gradcheck);
    tcase_add_test(tc, test_dense_forward_matches_naive);
    tcase_add_test(tc, test_dense_backward_accumulates);
    tcase_add_test(tc, test_dense_relu_gradcheck);
    tcase_add_test(tc, test_dense_relu_matches_unfused);
    tcase_add_test(tc, test_relu_forward_values);
    tcase_add_test(tc, test_relu_gradcheck);
    tcase_add_test(tc, test_softmax_rows_sum_to_one_and_shift_invariant);
    tcase_add_test(tc, test_softmax_extreme_logits);
    tcase_add_test(tc, test_softmax_gradcheck);
    tcase_add_test(tc, test_mixture_plain_gates);
    tcase_add_test(tc, test_mixture_interleaved_gates);
    tcase_add_test(tc, test_kernels_match_plain_loops);
    tcase_add_test(tc, test_dense_strided_gradcheck);
    tcase_add_test(tc, test_dense_relu_strided_gradcheck);
    tcase_add_test(tc, test_mixture_accumulate_gradcheck);
    suite_add_tcase(s, tc);

    tc = tcase_create("loss");
    tcase_add_test(tc, test_loss_mse_value);
    tcase_add_test(tc, test_loss_bce_value);
    tcase_add_test(tc, test_loss_bce_extreme_logits);
    tcase_add_test(tc, test_loss_mse_gradcheck);
    tcase_add_test(tc, test_loss_bce_gradcheck);
    suite_add_tcase(s, tc);

    tc = tcase_create("adam");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_adam_first_step_is_lr_sign);
    tcase_add_test(tc, test_adam_matches_textbook);
    tcase_add_test(tc, test_adam_minimises_quadratic);
    tcase_add_test(tc, test_adam_f32_matches_scalar);
    suite_add_tcase(s, tc);
    return s;
}
