/* test_train.c -- the training loop: models learn, runs are deterministic,
 * divergence is reported, evaluation and gate statistics are consistent. */
#include <limits.h>
#include <malloc.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "data/synth.h"
#include "gradcheck.h"
#include "testutil.h"
#include "train/train.h"
#include "train/trial.h"

/* The paper's synthetic setting (SPEC §3 defaults: d 100, m 10, σ 0.1,
 * 40000 / 1000 / 1000 examples). */
static void make_data(data_t *data, double corr, uint64_t seed) {
    synth_params_t p;
    synth_defaults(&p);
    err_t err = {0};
    ck_assert_msg(synth_set_corr_all(&p, corr, &err) == 0, "%s", err.msg);
    ck_assert_msg(synth_generate(&p, seed, data, &err) == 0, "%s", err.msg);
}

static model_t *make_model(const char *name, uint64_t seed) {
    model_config_t c;
    model_config_default(&c, model_find(name));
    model_t *m;
    err_t err = {0};
    ck_assert_msg(model_new(&m, name, &c, seed, &err) == 0, "%s", err.msg);
    return m;
}

#ifndef MTLAB_SANITIZE /* see learns_suite */
static const char *registry_name(int i) {
    int n;
    return model_registry(&n)[i]->name;
}

/* Each model, trained with the CLI's defaults (lr 1e-3, batch 128, 3000
 * steps) on correlation 1.0 and 0.5, ends with a test loss well below that of
 * predicting the training mean: at most a quarter of it on every task.  The
 * noise (σ = 0.1) is 0.5% of the label variance (~2), so the floor is far
 * lower; the models reach 5-15% of the mean predictor's loss at these
 * settings, and a model that learns nothing stays near 100%. */
START_TEST(test_learns) {
    const char *name = registry_name(_i / 2);
    double corr = _i % 2 ? 0.5 : 1.0;
    data_t data;
    make_data(&data, corr, 7);
    model_t *m = make_model(name, 3);
    train_config_t tc;
    train_config_default(&tc);
    train_result_t res;
    err_t err = {0};
    ck_assert_msg(train_run(m, &data, &tc, 3, NULL, NULL, &res, &err) == 0, "%s", err.msg);
    double base[MTLAB_MAX_TASKS + 1];
    train_mean_baseline(&data, &data.test, tc.task_weight, base);
    for (int k = 0; k < data.T; k++)
        ck_assert_msg(res.final.test[k] < 0.25 * base[k],
                      "%s corr %.1f task %d: test loss %.4f vs mean predictor %.4f", name, corr,
                      k + 1, res.final.test[k], base[k]);
    model_free(m);
    data_free(&data);
}
END_TEST
#endif

typedef struct {
    int calls;
    int steps[64];
} recorder_t;

static void record(void *ctx, const train_eval_t *ev) {
    recorder_t *r = ctx;
    if (r->calls < 64) r->steps[r->calls] = ev->step;
    r->calls++;
}

START_TEST(test_deterministic_and_evaluations) {
    data_t data;
    make_data(&data, 0.5, 1);
    train_config_t tc;
    train_config_default(&tc);
    tc.steps = 250;
    tc.eval_every = 100;
    train_result_t a, b, c;
    recorder_t rec = {0};
    err_t err = {0};
    model_t *m1 = make_model("mmoe", 4), *m2 = make_model("mmoe", 4), *m3 = make_model("mmoe", 5);
    ck_assert(train_run(m1, &data, &tc, 4, record, &rec, &a, &err) == 0);
    ck_assert(train_run(m2, &data, &tc, 4, NULL, NULL, &b, &err) == 0);
    ck_assert(train_run(m3, &data, &tc, 5, NULL, NULL, &c, &err) == 0);
    ck_assert(memcmp(&a.final, &b.final, sizeof a.final) == 0);
    ck_assert(memcmp(m1->params, m2->params, sizeof(real) * m1->n_params) == 0);
    ck_assert(a.final.test[2] != c.final.test[2]);
    /* Evaluations at 100, 200 and the last step. */
    ck_assert_int_eq(rec.calls, 3);
    ck_assert_int_eq(rec.steps[0], 100);
    ck_assert_int_eq(rec.steps[1], 200);
    ck_assert_int_eq(rec.steps[2], 250);
    /* The reported final test loss is what train_evaluate measures. */
    double loss[MTLAB_MAX_TASKS + 1];
    ck_assert(train_evaluate(m1, &data, &data.test, tc.task_weight, loss, &err) == 0);
    for (int k = 0; k <= data.T; k++)
        ck_assert(loss[k] == a.final.test[k]);
    ck_assert(fabs(loss[2] - (loss[0] + loss[1])) < 1e-12);
    model_free(m1);
    model_free(m2);
    model_free(m3);
    data_free(&data);
}
END_TEST

/* train_begin / train_step / train_end (the benchmarks' loop) train the same
 * bits as train_run: evaluations read the model without changing it. */
START_TEST(test_steps_by_hand_match_train_run) {
    data_t data;
    make_data(&data, 0.5, 3);
    train_config_t tc;
    train_config_default(&tc);
    tc.steps = 330; /* crosses an epoch boundary (an epoch is 312 steps of 128 in 40000) */
    tc.eval_every = 50;
    model_t *a = make_model("mmoe", 6), *b = make_model("mmoe", 6);
    train_result_t res;
    err_t err = {0};
    ck_assert_msg(train_run(a, &data, &tc, 6, NULL, NULL, &res, &err) == 0, "%s", err.msg);
    train_state_t st;
    ck_assert_msg(train_begin(&st, b, &data, &tc, 6, &err) == 0, "%s", err.msg);
    for (int step = 0; step < tc.steps; step++) {
        double loss[MTLAB_MAX_TASKS + 1];
        ck_assert_int_eq(train_step(&st, loss), 0);
        ck_assert(isfinite(loss[data.T]) && fabs(loss[data.T] - (loss[0] + loss[1])) < 1e-12);
    }
    train_end(&st);
    ck_assert(memcmp(a->params, b->params, sizeof(real) * a->n_params) == 0);
    model_free(a);
    model_free(b);
    data_free(&data);
}
END_TEST

/* Trials on cached data give the bits of trials on fresh data; the cache is
 * reused for the same (data parameters, data seed) and replaced otherwise. */
START_TEST(test_trial_data_cache) {
    trial_spec_t spec;
    trial_spec_default(&spec);
    spec.data.n_train = 2000;
    spec.train.steps = 60;
    spec.train.eval_every = 30;
    trial_data_cache_t cache = {0};
    err_t err = {0};
    const char *models[] = {"shared_bottom", "mmoe", "mmoe"};
    const uint64_t data_seeds[] = {5, 5, 6};
    const real *first_x = NULL;
    for (int t = 0; t < 3; t++) {
        snprintf(spec.model, sizeof spec.model, "%s", models[t]);
        model_config_default(&spec.model_cfg, model_find(spec.model));
        spec.data_seed = data_seeds[t];
        trial_result_t fresh, cached;
        ck_assert_msg(trial_run(&spec, NULL, NULL, &fresh, &err) == 0, "%s", err.msg);
        ck_assert_msg(trial_run_cached(&spec, &cache, NULL, NULL, &cached, &err) == 0, "%s",
                      err.msg);
        ck_assert(cache.valid && cache.seed == data_seeds[t]);
        if (t == 0) first_x = cache.data.train.x;
        if (t == 1) /* same data: nothing regenerated */
            ck_assert(cache.data.train.x == first_x);
        ck_assert(memcmp(&fresh.result.final, &cached.result.final, sizeof fresh.result.final) ==
                  0);
        ck_assert(memcmp(fresh.model->params, cached.model->params,
                         sizeof(real) * fresh.model->n_params) == 0);
        ck_assert(fresh.label_pearson[0][1] == cached.label_pearson[0][1]);
        trial_result_free(&fresh);
        trial_result_free(&cached);
    }
    /* Seed 6 differs from 5: the cache now holds seed 6's data. */
    data_t six;
    ck_assert(synth_generate(&spec.data, 6, &six, &err) == 0);
    ck_assert(memcmp(six.train.x, cache.data.train.x, sizeof(real) * six.train.n * six.d) == 0);
    data_free(&six);
    trial_data_cache_free(&cache);
    ck_assert(!cache.valid);
}
END_TEST

START_TEST(test_divergence_reported) {
    data_t data;
    make_data(&data, 0.5, 1);
    for (int i = 0; i < data.train.n; i += 100) /* 1% of the examples poison their batches */
        data.train.y[(size_t)i * data.T] = NAN;
    model_t *m = make_model("shared_bottom", 1);
    train_config_t tc;
    train_config_default(&tc);
    tc.steps = 200;
    train_result_t res;
    err_t err = {0};
    ck_assert_int_eq(train_run(m, &data, &tc, 1, NULL, NULL, &res, &err), -1);
    ck_assert_int_eq(err.kind, ERR_FAIL);
    ck_assert_int_gt(res.failed_step, 0);
    ck_assert_int_le(res.failed_step, 200);
    char expect[64];
    snprintf(expect, sizeof expect, "diverged at step %d", res.failed_step);
    ck_assert_msg(strstr(err.msg, expect), "message: %s", err.msg);
    model_free(m);
    data_free(&data);
}
END_TEST

START_TEST(test_bad_config) {
    data_t data;
    make_data(&data, 0.5, 1);
    model_t *m = make_model("mmoe", 1);
    train_result_t res;
    err_t err = {0};
    train_config_t tc;
    train_config_default(&tc);
    tc.batch = 129; /* beyond the model's max_batch of 128 */
    ck_assert_int_eq(train_run(m, &data, &tc, 1, NULL, NULL, &res, &err), -1);
    ck_assert_int_eq(err.kind, ERR_USAGE);
    train_config_default(&tc);
    tc.steps = 0;
    ck_assert_int_eq(train_run(m, &data, &tc, 1, NULL, NULL, &res, &err), -1);
    train_config_default(&tc);
    tc.lr = NAN;
    ck_assert_int_eq(train_run(m, &data, &tc, 1, NULL, NULL, &res, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "learning rate"));
    model_free(m);
    data_free(&data);
}
END_TEST

/* Gate statistics: every histogram row counts each test example once, the
 * mean weights of a gate sum to 1 (softmax), spreads are in [0, 0.5]. */
START_TEST(test_gate_stats) {
    data_t data;
    make_data(&data, 0.5, 2);
    model_t *m = make_model("mmoe", 2);
    gate_stats_t gs;
    err_t err = {0};
    ck_assert(train_gate_stats(m, &data.test, &gs, &err) == 0);
    ck_assert_int_eq(gs.n_gates, 2);
    ck_assert_int_eq(gs.examples, data.test.n);
    for (int g = 0; g < gs.n_gates; g++) {
        double mean_sum = 0;
        for (int e = 0; e < gs.gate[g].experts; e++) {
            long count = 0;
            for (int b = 0; b < GATE_HIST_BINS; b++)
                count += gs.gate[g].hist[e * GATE_HIST_BINS + b];
            ck_assert_int_eq(count, data.test.n);
            mean_sum += gs.gate[g].mean[e];
            ck_assert(gs.gate[g].std[e] >= 0 && gs.gate[g].std[e] <= 0.5);
        }
        ck_assert(fabs(mean_sum - 1) < 1e-9);
    }
    gate_stats_free(&gs);
    model_free(m);
    data_free(&data);
}
END_TEST

/* ---- memory estimates ---- */

/* mallinfo2 sees glibc's heap; under AddressSanitizer every block comes from
 * ASan's own allocator, so the measurements below are skipped there. */
#if defined(__SANITIZE_ADDRESS__)
#define HEAP_MEASURABLE 0
#else
#define HEAP_MEASURABLE 1
#endif

#if HEAP_MEASURABLE /* the heap probes of the memory tests */
/* Bytes in use on glibc's heap: arena chunks (uordblks) and mmap'ed blocks
 * (hblkhd), each with its allocator overhead. */
static size_t heap_in_use(void) {
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

typedef struct {
    size_t peak;
} heap_probe_t;

static void heap_sample(heap_probe_t *p) {
    size_t now = heap_in_use();
    if (now > p->peak) p->peak = now;
}

/* Sampled at every evaluation: data, model, training buffers, curve. */
static void sample_on_eval(void *ctx, const train_eval_t *ev) {
    heap_sample(ctx);
}
#endif

typedef struct {
    const char *name;
    const char *model;
    int n_train, tasks, experts, expert_hidden, bottom_hidden, batch, steps;
    bool binary;
} memory_case_t;

static const memory_case_t memory_cases[] = {
    {"mmoe paper sizes", "mmoe", 10000, 2, 8, 16, 0, 128, 3, false},
    {"mmoe wide experts", "mmoe", 5000, 3, 32, 64, 0, 128, 3, false},
    {"omoe paper sizes, binary task", "omoe", 10000, 2, 8, 16, 0, 128, 3, true},
    {"omoe many experts", "omoe", 3000, 2, 256, 16, 0, 64, 3, false},
    {"shared_bottom paper sizes", "shared_bottom", 10000, 2, 8, 16, 113, 128, 3, false},
    {"shared_bottom wide", "shared_bottom", 5000, 4, 8, 16, 2000, 256, 3, false},
    {"single paper sizes", "single", 10000, 2, 8, 16, 16, 128, 3, false},
    {"single 6 tasks", "single", 5000, 6, 8, 16, 300, 128, 3, false},
    {"tiny mmoe", "mmoe", 300, 2, 2, 4, 0, 16, 3, false},
    {"mtnas defaults (route search)", "mtnas", 10000, 2, 8, 64, 64, 128, 3, false},
    {"data only", "mmoe", 20000, 2, 8, 16, 0, 128, 0, false},
    {"data only, binary tasks", "single", 20000, 4, 8, 16, 0, 128, 0, true},
};

#if HEAP_MEASURABLE /* the helpers of test_trial_memory_estimate */
static trial_spec_t memory_spec(const memory_case_t *c) {
    trial_spec_t spec;
    trial_spec_default(&spec);
    spec.data.tasks = c->tasks;
    ck_assert_int_eq(synth_set_corr_all(&spec.data, 0.5, NULL), 0);
    spec.data.n_train = c->n_train;
    spec.data.binary[0] = c->binary;
    snprintf(spec.model, sizeof spec.model, "%s", c->model);
    model_config_default(&spec.model_cfg, model_find(c->model));
    test_set_hp(&spec.model_cfg, c->model, "experts", c->experts);
    test_set_hp(&spec.model_cfg, c->model, "expert_hidden", c->expert_hidden);
    if (c->bottom_hidden) test_set_hp(&spec.model_cfg, c->model, "bottom_hidden", c->bottom_hidden);
    spec.train.batch = c->batch;
    spec.train.steps = c->steps;
    spec.train.eval_every = 1;
    return spec;
}

/* The heap one run of the trial takes above what was in use before it:
 * sampled at every evaluation and after trial_run_cached returns (data,
 * model, gate statistics and curve still held), or, when `high_water`, read
 * from glibc's heap extent with mmap and trimming switched off -- a
 * high-water mark that sees the transient buffers between samples too (the
 * generator's labels, the gate statistics' predictions), and fragmentation. */
static size_t trial_heap(const trial_spec_t *spec, bool high_water) {
    if (high_water) {
        ck_assert(mallopt(M_MMAP_MAX, 0) == 1);
        ck_assert(mallopt(M_TRIM_THRESHOLD, INT_MAX) == 1);
        ck_assert(mallopt(M_TOP_PAD, 0) == 1);
    }
    malloc_trim(0);
    const size_t base = heap_in_use(), base_extent = mallinfo2().arena;
    heap_probe_t probe = {base};
    trial_data_cache_t cache = {0};
    trial_result_t res;
    err_t err = {0};
    ck_assert_msg(trial_run_cached(spec, &cache, sample_on_eval, &probe, &res, &err) == 0, "%s",
                  err.msg);
    heap_sample(&probe);
    const size_t extent = mallinfo2().arena;
    trial_result_free(&res);
    trial_data_cache_free(&cache);
    return high_water ? extent - base_extent : probe.peak - base;
}
#endif

/* trial_memory_estimate bounds what a trial really takes, and not by much.
 * Each case runs twice in its own process: with glibc's default allocator
 * (heap in use sampled at its peaks) and with mmap and trimming off (the
 * heap's high-water mark).  Both must satisfy
 *     actual <= estimate <= 1.3 x actual + 1 MiB.
 * The slack is the estimate's by design: it adds the generator's working
 * buffers (a few percent of the data, freed before the model exists) and the
 * training buffers to the gate statistics (never alive at once), and charges
 * every block (~30-100 per trial) a page of allocator overhead, where a brk
 * block takes 16 bytes -- at most ~0.4 MiB, so the absolute 1 MiB covers
 * small trials.  OpenBLAS's buffers are per process, not per trial: a GEMM
 * before the baseline allocates them, so neither side counts them. */
START_TEST(test_trial_memory_estimate) {
#if HEAP_MEASURABLE
    const memory_case_t *c = &memory_cases[_i];
    const trial_spec_t spec = memory_spec(c);
    trial_memory_t est;
    err_t err = {0};
    ck_assert_msg(trial_memory_estimate(&spec, &est, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(est.total, est.data + est.model + est.workspace);
    ck_assert(c->steps > 0 ? est.model > 0 && est.workspace > 0 : est.model + est.workspace == 0);
    real a[4] = {1, 2, 3, 4}, b[4] = {1, 0, 0, 1}, out[4];
    gemm(false, false, 2, 2, 2, 1, a, 2, b, 2, 0, out, 2); /* OpenBLAS's buffers, now */
    for (int high_water = 0; high_water < 2; high_water++) {
        const size_t actual = trial_heap(&spec, high_water);
        const double ratio = (double)est.total / (double)actual;
        if (getenv("MTLAB_MEMORY_REPORT")) /* the ratios, for the record */
            fprintf(stderr, "%-30s %-10s estimate %9zu actual %9zu ratio %.3f\n", c->name,
                    high_water ? "high-water" : "sampled", est.total, actual, ratio);
        ck_assert_msg(actual <= est.total, "%s: %zu bytes used, %zu estimated", c->name, actual,
                      est.total);
        ck_assert_msg(est.total <= 1.3 * actual + (1 << 20), "%s: %zu estimated, %zu used", c->name,
                      est.total, actual);
    }
#endif
}
END_TEST

/* Legal sizes no allocation can satisfy: under an address-space limit, a
 * trial whose dataset or whose model does not fit fails with ERR_FAIL and a
 * message (the SANITIZE build runs this under UBSan; ASan's allocator aborts
 * on such requests instead of returning NULL, so it is skipped there) -- and
 * its estimate says so beforehand. */
START_TEST(test_trial_unallocatable) {
#if HEAP_MEASURABLE
    static const struct {
        const char *what;
        int n_train, experts, expert_hidden;
        const char *message;
    } cases[] = {
        {"dataset", 5000000, 8, 16, "out of memory (training set of 5000000 examples"},
        {"model", 1000, 4096, 1000, "bytes of workspace of 'mmoe'"},
    };
    const size_t headroom = (size_t)512 << 20;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        trial_spec_t spec;
        trial_spec_default(&spec);
        spec.data.n_train = cases[i].n_train;
        test_set_hp(&spec.model_cfg, spec.model, "experts", cases[i].experts);
        test_set_hp(&spec.model_cfg, spec.model, "expert_hidden", cases[i].expert_hidden);
        spec.train.steps = 1;
        trial_memory_t est;
        err_t err = {0};
        ck_assert_msg(trial_memory_estimate(&spec, &est, &err) == 0, "%s", err.msg);
        ck_assert_uint_gt(est.total, headroom);

        long pages = 0;
        FILE *statm = fopen("/proc/self/statm", "r");
        ck_assert(statm && fscanf(statm, "%ld", &pages) == 1);
        fclose(statm);
        struct rlimit old, limited;
        ck_assert(getrlimit(RLIMIT_AS, &old) == 0);
        limited = old;
        limited.rlim_cur = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + headroom;
        ck_assert(setrlimit(RLIMIT_AS, &limited) == 0);
        trial_result_t res;
        int status = trial_run(&spec, NULL, NULL, &res, &err);
        ck_assert(setrlimit(RLIMIT_AS, &old) == 0);
        ck_assert_int_eq(status, -1);
        ck_assert_msg(err.kind == ERR_FAIL && strstr(err.msg, cases[i].message), "%s: %s",
                      cases[i].what, err.msg);
        trial_result_free(&res);
    }
#endif
}
END_TEST

/* ---- the objective: penalty and the architecture group ---- */

/* A toy with one tensor of each group, pred[b, k] = Σ_i x[b, i] W[i, k] +
 * a[k]: W[d, T] is a weight, a[1, T] an architecture parameter, and
 * backward gives both their gradients.  Built by hand (it is no registered
 * family); model_free frees it. */
static void toy_forward(model_t *m, const real *x, int B, real *pred, model_mode_t mode) {
    const int d = m->cfg.input_dim, T = m->cfg.tasks;
    const real *W = m->params, *a = m->params + m->n_weights;
    for (int b = 0; b < B; b++)
        for (int k = 0; k < T; k++) {
            double sum = a[k];
            for (int i = 0; i < d; i++)
                sum += x[(size_t)b * d + i] * W[(size_t)i * T + k];
            pred[(size_t)b * T + k] = (real)sum;
        }
}

static void toy_backward(model_t *m, const real *x, int B, const real *dpred) {
    const int d = m->cfg.input_dim, T = m->cfg.tasks;
    real *dW = m->grads, *da = m->grads + m->n_weights;
    for (int b = 0; b < B; b++)
        for (int k = 0; k < T; k++) {
            const real g = dpred[(size_t)b * T + k];
            da[k] += g;
            for (int i = 0; i < d; i++)
                dW[(size_t)i * T + k] += x[(size_t)b * d + i] * g;
        }
}

static const model_ops_t toy_ops = {
    .name = "toy",
    .summary = "linear weights plus an architecture bias (tests only)",
    .forward = toy_forward,
    .backward = toy_backward,
};

static model_t *toy_new(int d, int T, uint64_t seed) {
    model_t *m = calloc(1, sizeof *m);
    ck_assert_ptr_nonnull(m);
    m->ops = &toy_ops;
    m->cfg.input_dim = d;
    m->cfg.tasks = T;
    m->cfg.max_batch = 64;
    m->tensors = calloc(2, sizeof *m->tensors);
    ck_assert_ptr_nonnull(m->tensors);
    m->n_tensors = m->cap_tensors = 2;
    m->tensors[0] = (tensor_t){"W", d, T, 0, INIT_WEIGHT, TENSOR_WEIGHT, 0, 1.0};
    m->tensors[1] = (tensor_t){"arch.a", 1, T, (size_t)d * T, INIT_ZERO, TENSOR_ARCH, 0, 1.0};
    m->n_weights = (size_t)d * T;
    m->n_params = m->n_weights + T;
    m->params = calloc(m->n_params, sizeof(real));
    m->grads = calloc(m->n_params, sizeof(real));
    ck_assert(m->params && m->grads);
    rng_t rng;
    rng_seed(&rng, seed, RNG_STREAM_INIT);
    for (size_t i = 0; i < m->n_params; i++)
        m->params[i] = (real)(rng_uniform(&rng) - 0.5);
    return m;
}

/* Small data: 6 features, task 1 regression, task 2 binary (30% positive). */
static void small_data(data_t *data) {
    synth_params_t p;
    synth_defaults(&p);
    p.dim = 6;
    p.n_train = 512;
    p.n_val = 100;
    p.n_test = 100;
    p.binary[1] = true;
    p.positive_rate[1] = 0.3;
    err_t err = {0};
    ck_assert_msg(synth_set_corr_all(&p, 0.5, &err) == 0, "%s", err.msg);
    ck_assert_msg(synth_generate(&p, 4, data, &err) == 0, "%s", err.msg);
}

/* A test-only penalty wrapped around any model: (λ/2) Σ w² over the weight
 * group params[0, n_weights), or NaN from its `nan_at`-th call on. */
static double l2_lambda;
static int penalty_calls, penalty_nan_at;
static model_ops_t wrapped_ops;

static double l2_penalty(model_t *m) {
    if (penalty_nan_at > 0 && ++penalty_calls >= penalty_nan_at) return NAN;
    double sum = 0;
    for (size_t i = 0; i < m->n_weights; i++) {
        sum += (double)m->params[i] * m->params[i];
        m->grads[i] += (real)(l2_lambda * m->params[i]);
    }
    return 0.5 * l2_lambda * sum;
}

static void add_l2_penalty(model_t *m, double lambda) {
    wrapped_ops = *m->ops;
    wrapped_ops.penalty = l2_penalty;
    m->ops = &wrapped_ops;
    l2_lambda = lambda;
    penalty_calls = penalty_nan_at = 0;
}

typedef struct {
    train_state_t *s;
    const real *x, *y;
    int B;
} objective_t;

/* The objective train_step minimises on one fixed batch. */
static double objective(void *ctx) {
    objective_t *o = ctx;
    double loss[MTLAB_MAX_TASKS + 1];
    ck_assert_int_eq(train_gradient(o->s, o->x, o->y, o->B, loss), 0);
    return loss[o->s->data->T] + o->s->penalty;
}

/* d(loss + penalty)/d(params) from train_gradient matches central
 * differences of the objective, for every parameter of a real model (MMoE)
 * and of the toy (both groups); the penalty's value is (λ/2)|w|². */
START_TEST(test_objective_gradient_with_penalty) {
    data_t data;
    small_data(&data);
    for (int which = 0; which < 2; which++) {
        model_t *m;
        err_t err = {0};
        if (which == 0) {
            model_config_t mc;
            model_config_default(&mc, model_find("mmoe"));
            mc.input_dim = data.d;
            const model_ops_t *mmoe = model_find("mmoe");
            ck_assert_int_eq(model_config_set(&mc, mmoe, "experts", 3, &err), 0);
            ck_assert_int_eq(model_config_set(&mc, mmoe, "expert_hidden", 4, &err), 0);
            ck_assert_int_eq(model_config_set(&mc, mmoe, "tower_hidden", 3, &err), 0);
            mc.max_batch = 16;
            ck_assert_msg(model_new(&m, "mmoe", &mc, 3, &err) == 0, "%s", err.msg);
        } else {
            m = toy_new(data.d, data.T, 3);
        }
        add_l2_penalty(m, 0.3);
        train_config_t tc;
        train_config_default(&tc);
        tc.batch = 8;
        tc.task_weight[1] = 0.7;
        train_state_t s;
        ck_assert_msg(train_begin(&s, m, &data, &tc, 1, &err) == 0, "%s", err.msg);
        objective_t o = {&s, data.train.x, data.train.y, 8};
        objective(&o);
        double norm2 = 0;
        for (size_t i = 0; i < m->n_weights; i++)
            norm2 += (double)m->params[i] * m->params[i];
        ck_assert_double_eq_tol(s.penalty, 0.15 * norm2, 1e-12 * norm2);
        real *analytic = malloc(sizeof(real) * m->n_params);
        memcpy(analytic, m->grads, sizeof(real) * m->n_params);
        size_t worst;
        double e = gradcheck(objective, &o, m->params, analytic, m->n_params, &worst);
        ck_assert_msg(e < GRADCHECK_TOL, "%s: error %g at parameter %zu", m->ops->name, e, worst);
        /* Without the penalty's gradient the check fails: it is in grads. */
        for (size_t i = 0; i < m->n_weights; i++)
            analytic[i] -= (real)(0.3 * m->params[i]);
        ck_assert(gradcheck(objective, &o, m->params, analytic, m->n_params, NULL) > 1e-3);
        free(analytic);
        train_end(&s);
        model_free(m);
    }
    data_free(&data);
}
END_TEST

typedef struct {
    int n;
    train_eval_t ev[8];
} evals_t;

static void keep_evals(void *ctx, const train_eval_t *ev) {
    evals_t *e = ctx;
    ck_assert_int_lt(e->n, 8);
    e->ev[e->n++] = *ev;
}

/* The penalty's curve is the mean of the steps' penalties since the last
 * evaluation, listed as "train/penalty"; and it is minimised (weights
 * shrink). */
START_TEST(test_penalty_curve) {
    data_t data;
    small_data(&data);
    train_config_t tc;
    train_config_default(&tc);
    tc.batch = 16;
    tc.steps = 12;
    tc.eval_every = 5;
    tc.lr = 0.01;
    err_t err = {0};
    model_t *a = toy_new(data.d, data.T, 5), *b = toy_new(data.d, data.T, 5);
    add_l2_penalty(a, 1.0);
    b->ops = a->ops;
    evals_t got = {0};
    train_result_t res;
    ck_assert_msg(train_run(a, &data, &tc, 2, keep_evals, &got, &res, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(got.n, 3);
    train_state_t s;
    ck_assert(train_begin(&s, b, &data, &tc, 2, &err) == 0);
    const int ends[] = {5, 10, 12};
    for (int e = 0, step = 0; e < 3; e++) {
        double sum = 0;
        int n = 0;
        for (; step < ends[e]; step++, n++) {
            double loss[MTLAB_MAX_TASKS + 1];
            ck_assert_int_eq(train_step(&s, loss), 0);
            ck_assert(s.penalty > 0);
            sum += s.penalty;
        }
        ck_assert(got.ev[e].has_penalty);
        ck_assert_double_eq(got.ev[e].penalty, sum / n);
    }
    train_end(&s);
    ck_assert(memcmp(a->params, b->params, sizeof(real) * a->n_params) == 0);
    metric_id_t ids[TRAIN_EVAL_MAX_METRICS];
    int n = train_eval_metrics(&res.final, ids);
    char name[METRIC_NAME_MAX];
    ck_assert_int_eq(metric_name(ids[n - 1], data.T, name, sizeof name), 0);
    ck_assert_str_eq(name, "train/penalty");
    ck_assert_double_eq(train_eval_value(&res.final, ids[n - 1]), res.final.penalty);
    /* A strong penalty keeps the weights smaller than none does. */
    model_t *plain = toy_new(data.d, data.T, 5), *strong = toy_new(data.d, data.T, 5);
    add_l2_penalty(strong, 5.0);
    tc.steps = 300;
    ck_assert(train_run(plain, &data, &tc, 2, NULL, NULL, &res, &err) == 0);
    ck_assert(!res.final.has_penalty);
    ck_assert(train_run(strong, &data, &tc, 2, NULL, NULL, &res, &err) == 0);
    double n_plain = 0, n_strong = 0;
    for (size_t i = 0; i < plain->n_weights; i++) {
        n_plain += (double)plain->params[i] * plain->params[i];
        n_strong += (double)strong->params[i] * strong->params[i];
    }
    ck_assert_msg(n_strong < 0.5 * n_plain, "|w|² %g with the penalty, %g without", n_strong,
                  n_plain);
    model_free(a);
    model_free(b);
    model_free(plain);
    model_free(strong);
    data_free(&data);
}
END_TEST

/* A penalty that becomes NaN stops the run as diverged at that step, naming
 * the penalty, with the parameters of the step before. */
START_TEST(test_penalty_nan_diverges) {
    data_t data;
    small_data(&data);
    train_config_t tc;
    train_config_default(&tc);
    tc.batch = 16;
    tc.steps = 10;
    model_t *a = toy_new(data.d, data.T, 5), *b = toy_new(data.d, data.T, 5);
    add_l2_penalty(a, 0.1);
    b->ops = a->ops;
    train_result_t res;
    err_t err = {0};
    penalty_nan_at = 3;
    ck_assert_int_eq(train_run(a, &data, &tc, 2, NULL, NULL, &res, &err), -1);
    ck_assert_int_eq(err.kind, ERR_FAIL);
    ck_assert_int_eq(res.failed_step, 3);
    ck_assert_msg(strstr(err.msg, "step 3") && strstr(err.msg, "penalty"), "%s", err.msg);
    penalty_nan_at = 0;
    train_state_t s;
    ck_assert(train_begin(&s, b, &data, &tc, 2, &err) == 0);
    for (int step = 0; step < 2; step++) {
        double loss[MTLAB_MAX_TASKS + 1];
        ck_assert_int_eq(train_step(&s, loss), 0);
    }
    train_end(&s);
    ck_assert(memcmp(a->params, b->params, sizeof(real) * a->n_params) == 0);
    model_free(a);
    model_free(b);
    data_free(&data);
}
END_TEST

static bool same(const real *a, const real *b, size_t n) {
    return memcmp(a, b, sizeof(real) * n) == 0;
}

static bool all_zero(const real *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (v[i] != 0) return false;
    return true;
}

/* Alternating schedule: odd steps move only the weights, even steps only the
 * architecture; each group has its own Adam (size, learning rate, step count,
 * moments). */
START_TEST(test_arch_alternate) {
    data_t data;
    small_data(&data);
    model_t *m = toy_new(data.d, data.T, 7);
    const size_t nw = m->n_weights, na = m->n_params - m->n_weights;
    train_config_t tc;
    train_config_default(&tc);
    tc.batch = 16;
    tc.arch = TRAIN_ARCH_ALTERNATE;
    tc.arch_lr = 0.05;
    train_state_t s;
    err_t err = {0};
    ck_assert_msg(train_begin(&s, m, &data, &tc, 1, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(s.adam.n, nw);
    ck_assert_uint_eq(s.arch_adam.n, na);
    ck_assert(s.adam.lr == 1e-3 && s.arch_adam.lr == 0.05);
    real *before = malloc(sizeof(real) * m->n_params);
    for (int step = 1; step <= 10; step++) {
        memcpy(before, m->params, sizeof(real) * m->n_params);
        double loss[MTLAB_MAX_TASKS + 1];
        ck_assert_int_eq(train_step(&s, loss), 0);
        const bool weights_moved = !same(before, m->params, nw);
        const bool arch_moved = !same(before + nw, m->params + nw, na);
        ck_assert_msg(weights_moved == (step % 2 == 1) && arch_moved == (step % 2 == 0),
                      "step %d: weights %s, architecture %s", step,
                      weights_moved ? "moved" : "kept", arch_moved ? "moved" : "kept");
        ck_assert_int_eq(s.adam.t, (step + 1) / 2);
        ck_assert_int_eq(s.arch_adam.t, step / 2);
        if (step == 1) /* the architecture's moments are untouched by a weight step */
            ck_assert(all_zero(s.arch_adam.m, na) && all_zero(s.arch_adam.v, na));
    }
    ck_assert(!all_zero(s.arch_adam.m, na));
    train_end(&s);
    free(before);
    model_free(m);
    data_free(&data);
}
END_TEST

/* Joint: both groups every step.  Frozen (the default): the architecture
 * keeps its values and gets no optimiser. */
START_TEST(test_arch_joint_and_frozen) {
    data_t data;
    small_data(&data);
    train_config_t tc;
    train_config_default(&tc);
    tc.batch = 16;
    tc.steps = 7;
    ck_assert_int_eq(tc.arch, TRAIN_ARCH_FROZEN);
    err_t err = {0};
    model_t *m = toy_new(data.d, data.T, 7);
    const size_t nw = m->n_weights, na = m->n_params - m->n_weights;
    real *init = malloc(sizeof(real) * m->n_params);
    memcpy(init, m->params, sizeof(real) * m->n_params);
    train_state_t s;
    ck_assert(train_begin(&s, m, &data, &tc, 1, &err) == 0);
    ck_assert_uint_eq(s.arch_adam.n, 0);
    for (int step = 0; step < tc.steps; step++) {
        double loss[MTLAB_MAX_TASKS + 1];
        ck_assert_int_eq(train_step(&s, loss), 0);
    }
    ck_assert(!same(init, m->params, nw) && same(init + nw, m->params + nw, na));
    ck_assert_int_eq(s.adam.t, 7);
    train_end(&s);

    memcpy(m->params, init, sizeof(real) * m->n_params);
    tc.arch = TRAIN_ARCH_JOINT;
    ck_assert(train_begin(&s, m, &data, &tc, 1, &err) == 0);
    real *prev = malloc(sizeof(real) * m->n_params);
    for (int step = 0; step < tc.steps; step++) {
        memcpy(prev, m->params, sizeof(real) * m->n_params);
        double loss[MTLAB_MAX_TASKS + 1];
        ck_assert_int_eq(train_step(&s, loss), 0);
        ck_assert(!same(prev, m->params, nw) && !same(prev + nw, m->params + nw, na));
    }
    ck_assert_int_eq(s.adam.t, 7);
    ck_assert_int_eq(s.arch_adam.t, 7);
    train_end(&s);
    free(init);
    free(prev);
    model_free(m);
    data_free(&data);
}
END_TEST

/* Training both groups is deterministic: the same model, data, config and
 * seed give the same bits; another batch seed does not. */
START_TEST(test_arch_deterministic) {
    data_t data;
    small_data(&data);
    train_config_t tc;
    train_config_default(&tc);
    tc.batch = 16;
    tc.steps = 40;
    tc.eval_every = 15;
    tc.arch_lr = 0.02;
    err_t err = {0};
    for (int arch = TRAIN_ARCH_JOINT; arch <= TRAIN_ARCH_ALTERNATE; arch++) {
        tc.arch = (train_arch_t)arch;
        model_t *a = toy_new(data.d, data.T, 8), *b = toy_new(data.d, data.T, 8),
                *c = toy_new(data.d, data.T, 8);
        evals_t ea = {0}, eb = {0};
        train_result_t ra, rb, rc;
        ck_assert_msg(train_run(a, &data, &tc, 3, keep_evals, &ea, &ra, &err) == 0, "%s", err.msg);
        ck_assert(train_run(b, &data, &tc, 3, keep_evals, &eb, &rb, &err) == 0);
        ck_assert(train_run(c, &data, &tc, 4, NULL, NULL, &rc, &err) == 0);
        ck_assert(same(a->params, b->params, a->n_params));
        ck_assert_int_eq(ea.n, 3);
        ck_assert(memcmp(ea.ev, eb.ev, sizeof ea.ev[0] * ea.n) == 0);
        ck_assert(
            !same(a->params + a->n_weights, c->params + c->n_weights, a->n_params - a->n_weights));
        model_free(a);
        model_free(b);
        model_free(c);
    }
    data_free(&data);
}
END_TEST

/* An architecture schedule needs architecture parameters and a learning
 * rate; the memory estimate counts the second optimiser. */
START_TEST(test_arch_config) {
    data_t data;
    small_data(&data);
    model_config_t mc;
    model_config_default(&mc, model_find("mmoe"));
    mc.input_dim = data.d;
    model_t *mmoe, *toy = toy_new(data.d, data.T, 1);
    err_t err = {0};
    ck_assert(model_new(&mmoe, "mmoe", &mc, 1, &err) == 0);
    train_config_t tc;
    train_config_default(&tc);
    tc.batch = 16;
    tc.arch = TRAIN_ARCH_JOINT;
    train_result_t res;
    ck_assert_int_eq(train_run(mmoe, &data, &tc, 1, NULL, NULL, &res, &err), -1);
    ck_assert_int_eq(err.kind, ERR_USAGE);
    ck_assert_msg(strstr(err.msg, "no architecture parameters"), "%s", err.msg);
    tc.arch_lr = 0;
    err = (err_t){0};
    ck_assert_int_eq(train_run(toy, &data, &tc, 1, NULL, NULL, &res, &err), -1);
    ck_assert_msg(err.kind == ERR_USAGE && strstr(err.msg, "architecture learning rate"), "%s",
                  err.msg);
    tc.arch = (train_arch_t)7;
    err = (err_t){0};
    ck_assert_int_eq(train_run(toy, &data, &tc, 1, NULL, NULL, &res, &err), -1);
    ck_assert_int_eq(err.kind, ERR_USAGE);

    model_sizes_t ms = {.n_params = 1000, .n_weights = 900};
    train_memory_t frozen, joint, binary;
    train_config_default(&tc);
    ck_assert(train_memory(&ms, &mc, &tc, 500, 100, 0, &frozen, &err) == 0);
    ck_assert(train_memory(&ms, &mc, &tc, 500, 100, 2, &binary, &err) == 0);
    tc.arch = TRAIN_ARCH_ALTERNATE;
    ck_assert(train_memory(&ms, &mc, &tc, 500, 100, 0, &joint, &err) == 0);
    ck_assert_uint_ge(joint.adam, frozen.adam + 2 * 100 * sizeof(real));
    ck_assert_uint_ge(binary.steps, frozen.steps + 2 * 100 * sizeof(metric_scored_t));
    model_free(mmoe);
    model_free(toy);
    data_free(&data);
}
END_TEST

/* Every family learns (its own suite, so that `make check` can run it beside
 * the others).  Left out of the sanitizer build: it checks a numeric
 * property, 24 trainings of 3000 steps that the sanitizer slows six-fold,
 * and their code paths (every family's passes, Adam, evaluation) are
 * exercised there by the gradient checks and the other train tests. */
Suite *learns_suite(void) {
    Suite *s = suite_create("learns");
    TCase *tc = tcase_create("learns");
    tcase_set_timeout(tc, 120);
#ifndef MTLAB_SANITIZE
    int n;
    model_registry(&n);
    tcase_add_loop_test(tc, test_learns, 0, 2 * n);
#endif
    suite_add_tcase(s, tc);
    return s;
}

Suite *train_suite(void) {
    Suite *s = suite_create("train");
    TCase *tc = tcase_create("train");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_deterministic_and_evaluations);
    tcase_add_test(tc, test_steps_by_hand_match_train_run);
    tcase_add_test(tc, test_trial_data_cache);
    tcase_add_test(tc, test_divergence_reported);
    tcase_add_test(tc, test_bad_config);
    tcase_add_test(tc, test_gate_stats);
    suite_add_tcase(s, tc);

    TCase *objective = tcase_create("objective");
    tcase_set_timeout(objective, 60);
    tcase_add_test(objective, test_objective_gradient_with_penalty);
    tcase_add_test(objective, test_penalty_curve);
    tcase_add_test(objective, test_penalty_nan_diverges);
    tcase_add_test(objective, test_arch_alternate);
    tcase_add_test(objective, test_arch_joint_and_frozen);
    tcase_add_test(objective, test_arch_deterministic);
    tcase_add_test(objective, test_arch_config);
    suite_add_tcase(s, objective);

    TCase *memory = tcase_create("memory");
    tcase_set_timeout(memory, 60);
    tcase_add_loop_test(memory, test_trial_memory_estimate, 0,
                        (int)(sizeof memory_cases / sizeof memory_cases[0]));
    tcase_add_test(memory, test_trial_unallocatable);
    suite_add_tcase(s, memory);
    return s;
}
