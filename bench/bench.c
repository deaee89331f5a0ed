/* bench.c -- `make bench`: how fast mtlab trains, next to this machine's limit.
 *
 * One run measures, in the same sitting (the machines are shared and noisy, so
 * every number is a median and the comparisons are ratios):
 *
 *   1. sgemm    OpenBLAS float GEMM on one core: a large square product (the
 *               practical peak) and the expert product of the standard MMoE
 *               step, x[128, 100] · W[100, 128] (the rate of "these shapes");
 *   2. step     for every registered model at its standard sizes: µs per
 *               training step (train_step: mini-batch copy, forward, loss,
 *               backward, Adam), the FLOPs of one step as the layers count
 *               them from their shapes (model_step_flops), the GFLOP/s achieved, the
 *               fraction of the SGEMM peak, and the ratio to the floor (the
 *               step's FLOPs at the expert-product SGEMM rate);
 *   3. sweep    `mtlab run` ($MTLAB_BIN) on a 40-trial sweep of the standard
 *               MMoE trial with --jobs 1 and --jobs <cores>: trials/s end to
 *               end (data, training, evaluation, gate statistics, store), the
 *               store's share of the trial time, the mean time per phase, and
 *               the peak resident memory of any process of the run;
 *   3b. peer    with --peer SCRIPT, the PyTorch peer (../shared/bench/peer_torch.py)
 *               right after the sweeps, as many processes as the sweep's jobs,
 *               and mtlab's trials/s over the peer's;
 *   4. scaling  mmoe step time against batch size, experts and input dimension.
 *
 * It prints the table and writes every row as CSV (--csv, default
 * build/bench.csv).  See bench/README.md for the meaning of each column and
 * the numbers measured.  Options: --quick (fewer repeats, 8-trial sweeps),
 * --no-sweep, --no-scaling, --csv FILE, --peer SCRIPT, --profile MODEL
 * [SECONDS] (train steps in a loop, for `perf record`).  Python is needed only
 * for --peer. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "data/synth.h"
#include "models/model.h"
#include "nn/layers.h"
#include "train/train.h"

#define BENCH_TASKS              2
#define BENCH_SWEEP_TRIALS       40
#define BENCH_QUICK_SWEEP_TRIALS 8
#define BENCH_REPEATS            9 /* timed runs per measurement (median) */
#define BENCH_QUICK_REPEATS      5
#define BENCH_WARMUP_STEPS       30
#define BENCH_RUN_SECONDS        0.03 /* length of one timed run of steps */

typedef struct {
    bool quick, sweep, scaling;
    const char *csv_path;
    const char *peer; /* path of peer_torch.py, or NULL */
    int repeats;
} bench_opts_t;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of v[0..n) (sorts v). */
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ---- CSV: one row per measurement, the union of all columns ------------- */

static FILE *csv;

static void csv_open(const char *path) {
    csv = fopen(path, "w");
    if (!csv) {
        fprintf(stderr, "bench: cannot write %s: %s (no CSV)\n", path, strerror(errno));
        return;
    }
    fprintf(csv, "section,model,batch,experts,dim,jobs,us_per_step,mflop_per_step,gflops,"
                 "peak_fraction,floor_ratio,trials,seconds,trials_per_s,store_share,"
                 "data_ms,train_ms,gates_ms,store_ms,peak_rss_mib,mtlab_over_peer\n");
}

#define CSV_VALUES 15 /* the columns after `jobs` */

/* Writes a row: values[0..n_values) in the columns after `jobs`, the rest
 * empty; NAN values and non-positive sizes are left empty. */
static void csv_row(const char *section, const char *model, int batch, int experts, int dim,
                    int jobs, const double *values, int n_values) {
    if (!csv) return;
    fprintf(csv, "%s,%s", section, model);
    int sizes[] = {batch, experts, dim, jobs};
    for (int i = 0; i < 4; i++)
        if (sizes[i] > 0)
            fprintf(csv, ",%d", sizes[i]);
        else
            fprintf(csv, ",");
    for (int i = 0; i < CSV_VALUES; i++)
        if (i < n_values && !isnan(values[i]))
            fprintf(csv, ",%.6g", values[i]);
        else
            fprintf(csv, ",");
    fprintf(csv, "\n");
}

/* ---- 1. SGEMM ------------------------------------------------------------- */

/* GFLOP/s of C[M,N] = op(A)[M,K] · B[K,N] (op: transpose when trans_a), the
 * median of `repeats` runs of about `seconds` each. */
static double sgemm_gflops(int M, int N, int K, bool trans_a, double seconds, int repeats) {
    float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N),
          *C = malloc(sizeof(float) * M * N);
    for (int i = 0; i < M * K; i++)
        A[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    for (int i = 0; i < K * N; i++)
        B[i] = (float)((i * 104729) % 1000) / 1000.0f - 0.5f;
    double rates[BENCH_REPEATS];
    for (int r = 0; r < repeats; r++) {
        long reps = 0;
        double t0 = now(), t;
        do {
            cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, CblasNoTrans, M, N, K,
                        1.0f, A, trans_a ? M : K, B, N, 0.0f, C, N);
            reps++;
            t = now() - t0;
        } while (t < seconds);
        rates[r] = 2.0 * M * N * K * reps / t / 1e9;
    }
    free(A);
    free(B);
    free(C);
    return median(rates, repeats);
}

typedef struct {
    double peak;  /* GFLOP/s, square product */
    double shape; /* GFLOP/s, the standard expert product */
} sgemm_rates_t;

static sgemm_rates_t bench_sgemm(const bench_opts_t *o) {
    sgemm_rates_t r;
    r.peak = sgemm_gflops(1024, 1024, 1024, false, 0.1, o->repeats);
    r.shape = sgemm_gflops(128, 128, 100, false, 0.05, o->repeats);
    double dw = sgemm_gflops(100, 128, 128, true, 0.05, o->repeats);
    printf("SGEMM, one core (%s)\n", openblas_get_config());
    printf("  square 1024^3                 %7.1f GFLOP/s   (peak)\n", r.peak);
    printf("  expert product 128x100x128    %7.1f GFLOP/s   (floor rate)\n", r.shape);
    printf("  expert gradient 100x128<-128  %7.1f GFLOP/s\n\n", dw);
    double row[] = {NAN, NAN, r.peak, 1.0};
    csv_row("sgemm_square", "", 1024, 0, 1024, 1, row, 4);
    double row2[] = {NAN, NAN, r.shape, r.shape / r.peak};
    csv_row("sgemm_expert", "", 128, 0, 100, 1, row2, 4);
    double row3[] = {NAN, NAN, dw, dw / r.peak};
    csv_row("sgemm_expert_grad", "", 128, 0, 100, 1, row3, 4);
    return r;
}

/* ---- 2. training steps ------------------------------------------------------ */

typedef struct {
    double us;     /* median µs per step */
    double lo, hi; /* fastest and slowest run, µs per step */
    double mflop;  /* per step, counted by the layers */
} step_time_t;

static int make_data(int dim, data_t *data, err_t *err) {
    synth_params_t p;
    synth_defaults(&p);
    p.n_train = 10000; /* the standard trial's sizes (issue, peer_torch.py) */
    p.tasks = BENCH_TASKS;
    p.dim = dim;
    if (synth_set_corr_all(&p, 0.5, err)) return -1;
    return synth_generate(&p, 1, data, err);
}

/* Times train_step on `model` (experts: 0 for the default) with mini-batches
 * of `batch` from `data`. */
static int time_steps(const char *model, int batch, int experts, const data_t *data,
                      const bench_opts_t *o, step_time_t *out, err_t *err) {
    const model_ops_t *ops = model_find(model);
    model_config_t mc;
    model_config_default(&mc, ops);
    mc.input_dim = data->d;
    mc.tasks = data->T;
    mc.max_batch = batch;
    if (experts > 0 && model_config_set(&mc, ops, "experts", experts, err)) return -1;
    model_t *m;
    if (model_new(&m, model, &mc, 1, err)) return -1;
    train_config_t tc;
    train_config_default(&tc);
    tc.batch = batch;
    train_state_t s;
    if (train_begin(&s, m, data, &tc, 1, err)) {
        model_free(m);
        return -1;
    }
    double loss[MTLAB_MAX_TASKS + 1];
    int status = 0;
    status |= train_step(&s, loss);
    out->mflop = (double)model_step_flops(m, batch) / 1e6;
    double t0 = now();
    for (int i = 0; i < BENCH_WARMUP_STEPS; i++)
        status |= train_step(&s, loss);
    double per_step = (now() - t0) / BENCH_WARMUP_STEPS;
    int steps = (int)(BENCH_RUN_SECONDS / per_step) + 1;
    double us[BENCH_REPEATS];
    for (int r = 0; r < o->repeats; r++) {
        t0 = now();
        for (int i = 0; i < steps; i++)
            status |= train_step(&s, loss);
        us[r] = (now() - t0) / steps * 1e6;
    }
    train_end(&s);
    model_free(m);
    if (status) return err_set(err, ERR_FAIL, "%s diverged while being timed", model);
    out->us = median(us, o->repeats);
    out->lo = us[0];
    out->hi = us[o->repeats - 1];
    return 0;
}

/* The MTNAS search (train/search.h) at mtnas's defaults: µs per search step
 * (a weight step on a sampled route, then one REINFORCE update scoring one
 * sampled route on a validation batch), from train_run over `steps` steps
 * with one evaluation at the end, median of the runs.  The plain `mtnas` row
 * above is the derived route's step. */
static int bench_search(const bench_opts_t *o, const data_t *data, err_t *err) {
    const model_ops_t *ops = model_find("mtnas");
    if (!ops) return 0;
    model_config_t mc;
    model_config_default(&mc, ops);
    mc.input_dim = data->d;
    mc.tasks = data->T;
    mc.max_batch = 128;
    train_config_t tc;
    train_config_default(&tc);
    tc.steps = 200;
    tc.eval_every = tc.steps;
    double us[BENCH_REPEATS];
    for (int r = 0; r < o->repeats; r++) {
        model_t *m;
        if (model_new(&m, "mtnas", &mc, 1, err)) return -1;
        train_result_t res;
        double t0 = now();
        int rc = train_run(m, data, &tc, 1, NULL, NULL, &res, err);
        us[r] = (now() - t0) / tc.steps * 1e6;
        model_free(m);
        if (rc) return -1;
    }
    const double mid = median(us, o->repeats); /* sorts us */
    char range[32];
    snprintf(range, sizeof range, "%.0f-%.0f", us[0], us[o->repeats - 1]);
    printf("  %-14s %9.1f %11s   (route search: weight step + REINFORCE step)\n", "mtnas-search",
           mid, range);
    double row[] = {mid, NAN, NAN, NAN, NAN};
    csv_row("step", "mtnas-search", 128, 0, data->d, 1, row, 5);
    return 0;
}

static int bench_steps(const bench_opts_t *o, const sgemm_rates_t *rates, const data_t *data,
                       err_t *err) {
    int n;
    const model_ops_t *const *all = model_registry(&n);
    printf("Training step, standard sizes (d %d, T %d, batch 128), median of %d runs\n", data->d,
           data->T, o->repeats);
    printf("  %-14s %9s %11s %11s %9s %9s %10s %8s\n", "model", "us/step", "(min-max)",
           "MFLOP/step", "GFLOP/s", "of peak", "floor us", "x floor");
    for (int i = 0; i < n; i++) {
        step_time_t t;
        if (time_steps(all[i]->name, 128, 0, data, o, &t, err)) return -1;
        double gflops = t.mflop / t.us * 1e3, floor_us = t.mflop / rates->shape * 1e3;
        char range[32];
        snprintf(range, sizeof range, "%.0f-%.0f", t.lo, t.hi);
        printf("  %-14s %9.1f %11s %11.2f %9.1f %8.0f%% %10.1f %8.2f\n", all[i]->name, t.us, range,
               t.mflop, gflops, 100 * gflops / rates->peak, floor_us, t.us / floor_us);
        double row[] = {t.us, t.mflop, gflops, gflops / rates->peak, t.us / floor_us};
        csv_row("step", all[i]->name, 128, 0, data->d, 1, row, 5);
    }
    if (bench_search(o, data, err)) return -1;
    printf("\n");
    return 0;
}

/* ---- 3. sweeps through `mtlab run` ------------------------------------------- */

typedef struct {
    int trials;                       /* finished (done) */
    double seconds;                   /* wall clock of `mtlab run` */
    double data, train, gates, store; /* summed seconds per phase, from the store */
    double peak_rss_mib;
} sweep_time_t;

static int write_sweep(const char *path, int trials, err_t *err) {
    FILE *f = fopen(path, "w");
    if (!f) return err_set(err, ERR_FAIL, "cannot write %s: %s", path, strerror(errno));
    fprintf(f,
            "; the standard MMoE trial (MMoE §5.1 sizes), %d trials: 4 correlations\n"
            "[experiment]\nname = bench_mmoe\nrepeats = %d\nseed = 1\n"
            "[data]\ncorrelation = 0.5, 0.7, 0.9, 1.0\n"
            "train = 10000\nvalidation = 1000\ntest = 1000\n" /* the standard trial, as the peer */
            "[train]\nsteps = 2000\neval_every = 100\nbatch = 128\n"
            "[model]\nname = mmoe\nexperts = 8\nexpert_hidden = 16\ntower_hidden = 8\n",
            trials, trials / 4);
    return fclose(f) == 0 ? 0 : err_set(err, ERR_FAIL, "cannot write %s", path);
}

/* Sums the per-phase seconds the runner stored with each finished trial. */
static int read_phases(const char *db_path, sweep_time_t *out, err_t *err) {
    sqlite3 *db;
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db,
                                "SELECT count(*), sum(seconds_data), sum(seconds_train), "
                                "sum(seconds_gates), sum(seconds_store) FROM trial "
                                "WHERE status = 'done'",
                                -1, &q, NULL);
    if (rc == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW) {
        out->trials = sqlite3_column_int(q, 0);
        out->data = sqlite3_column_double(q, 1);
        out->train = sqlite3_column_double(q, 2);
        out->gates = sqlite3_column_double(q, 3);
        out->store = sqlite3_column_double(q, 4);
    } else {
        err_set(err, ERR_FAIL, "reading %s: %s", db_path, sqlite3_errmsg(db));
        rc = -1;
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    return rc == SQLITE_OK ? 0 : -1;
}

/* Runs `mtlab run SWEEP --db DB --jobs N --quiet` and waits for it. */
static int run_sweep(const char *mtlab, const char *dir, const char *ini, int jobs,
                     sweep_time_t *out, err_t *err) {
    char db[512], log[512], jobs_arg[16];
    snprintf(db, sizeof db, "%s/jobs%d.db", dir, jobs);
    snprintf(log, sizeof log, "%s/jobs%d.log", dir, jobs);
    snprintf(jobs_arg, sizeof jobs_arg, "%d", jobs);
    memset(out, 0, sizeof *out);
    fflush(NULL);
    double t0 = now();
    pid_t pid = fork();
    if (pid < 0) return err_set(err, ERR_FAIL, "fork: %s", strerror(errno));
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(mtlab, mtlab, "run", ini, "--db", db, "--jobs", jobs_arg, "--quiet", (char *)NULL);
        _exit(127);
    }
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) != pid)
        return err_set(err, ERR_FAIL, "waiting for mtlab run: %s", strerror(errno));
    out->seconds = now() - t0;
    /* The run's rusage includes its reaped workers: the largest process's peak. */
    out->peak_rss_mib = ru.ru_maxrss / 1024.0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return err_set(err, ERR_FAIL, "mtlab run --jobs %d failed (see %s)", jobs, log);
    return read_phases(db, out, err);
}

/* Fills rate[j] with the trials/s of `mtlab run --jobs jobs[j]`, j < *n_jobs. */
static int bench_sweeps(const bench_opts_t *o, int *jobs, double *rate, int *n_jobs, err_t *err) {
    const char *mtlab = getenv("MTLAB_BIN");
    *n_jobs = 0;
    if (!mtlab || !*mtlab) {
        printf("Sweeps: skipped (set MTLAB_BIN to the mtlab binary; `make bench` does)\n\n");
        return 0;
    }
    char dir[] = "/tmp/mtlab-bench-XXXXXX", ini[600];
    if (!mkdtemp(dir)) return err_set(err, ERR_FAIL, "mkdtemp: %s", strerror(errno));
    snprintf(ini, sizeof ini, "%s/sweep.ini", dir);
    const int trials = o->quick ? BENCH_QUICK_SWEEP_TRIALS : BENCH_SWEEP_TRIALS;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int jobs_list[2] = {1, cores > 1 ? (int)cores : 1}, n = cores > 1 ? 2 : 1;
    if (write_sweep(ini, trials, err)) return -1;
    printf("Sweep: `mtlab run` of %d standard MMoE trials (2000 steps, eval every 100), end to "
           "end\n",
           trials);
    printf("  %5s %8s %10s %9s %8s %8s %8s %8s %10s\n", "jobs", "seconds", "trials/s", "store %",
           "data ms", "train ms", "gates ms", "store ms", "peak MiB");
    for (int j = 0; j < n; j++) {
        sweep_time_t s;
        if (run_sweep(mtlab, dir, ini, jobs_list[j], &s, err)) return -1;
        jobs[j] = jobs_list[j];
        rate[j] = s.trials / s.seconds;
        *n_jobs = j + 1;
        double busy = s.data + s.train + s.gates + s.store;
        double per = s.trials > 0 ? 1e3 / s.trials : 0;
        printf("  %5d %8.2f %10.2f %8.2f%% %8.1f %8.1f %8.1f %8.2f %10.1f\n", jobs_list[j],
               s.seconds, s.trials / s.seconds, 100 * s.store / busy, s.data * per, s.train * per,
               s.gates * per, s.store * per, s.peak_rss_mib);
        double row[] = {NAN,
                        NAN,
                        NAN,
                        NAN,
                        NAN,
                        s.trials,
                        s.seconds,
                        s.trials / s.seconds,
                        s.store / busy,
                        s.data * per,
                        s.train * per,
                        s.gates * per,
                        s.store * per,
                        s.peak_rss_mib};
        csv_row("sweep", "mmoe", 128, 8, 100, jobs_list[j], row, 14);
    }
    printf("  (trial files in %s)\n\n", dir);
    return 0;
}

/* ---- 3b. the PyTorch peer, side by side (optional: --peer SCRIPT) ---------------- */

#define BENCH_PEER_TRIALS 3

/* Runs `procs` copies of the peer at once (`PYTHON SCRIPT --model mmoe --steps
 * 2000 --trials N --threads 1`, seeds apart) and returns the sum of the
 * trials/s they report: each process times its own trials, without the
 * interpreter's start-up, as the reference numbers do. */
static int run_peer(const char *script, const char *dir, int procs, double *rate, err_t *err) {
    const char *python = getenv("PYTHON");
    if (!python || !*python) python = "/usr/bin/python3";
    pid_t pids[64];
    char logs[64][600];
    if (procs > 64) procs = 64;
    fflush(NULL);
    for (int p = 0; p < procs; p++) {
        char seed[16], trials[16];
        snprintf(seed, sizeof seed, "%d", 1 + 100 * p);
        snprintf(trials, sizeof trials, "%d", BENCH_PEER_TRIALS);
        snprintf(logs[p], sizeof logs[p], "%s/peer%d-%d.log", dir, procs, p);
        pids[p] = fork();
        if (pids[p] < 0) return err_set(err, ERR_FAIL, "fork: %s", strerror(errno));
        if (pids[p] == 0) {
            int fd = open(logs[p], O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
            }
            execl(python, python, script, "--model", "mmoe", "--steps", "2000", "--trials", trials,
                  "--threads", "1", "--seed", seed, (char *)NULL);
            _exit(127);
        }
    }
    *rate = 0;
    int failed = 0;
    for (int p = 0; p < procs; p++) {
        int status;
        waitpid(pids[p], &status, 0);
        failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    }
    for (int p = 0; p < procs && !failed; p++) {
        FILE *f = fopen(logs[p], "r");
        char line[512];
        double per_trial = 0, trials_per_s = 0;
        while (f && fgets(line, sizeof line, f)) {
            const char *at = strstr(line, ": ");
            if (strstr(line, "trials/s") && at)
                sscanf(at + 2, "%lf s/trial, %lf trials/s", &per_trial, &trials_per_s);
        }
        if (f) fclose(f);
        if (!(trials_per_s > 0)) failed = 1;
        *rate += trials_per_s;
    }
    if (failed)
        return err_set(err, ERR_FAIL, "the peer failed or printed no rate (see %s)", logs[0]);
    return 0;
}

static int bench_peer(const char *script, const int *jobs, const double *mtlab_rate, int n_jobs,
                      err_t *err) {
    char dir[] = "/tmp/mtlab-peer-XXXXXX";
    if (!mkdtemp(dir)) return err_set(err, ERR_FAIL, "mkdtemp: %s", strerror(errno));
    printf("PyTorch peer %s: mmoe, 2000 steps, %d trials per process, 1 thread each\n", script,
           BENCH_PEER_TRIALS);
    printf("  %5s %14s %14s %13s\n", "procs", "peer trials/s", "mtlab trials/s", "mtlab / peer");
    for (int j = 0; j < n_jobs; j++) {
        double rate;
        if (run_peer(script, dir, jobs[j], &rate, err)) return -1;
        printf("  %5d %14.2f %14.2f %13.1f\n", jobs[j], rate, mtlab_rate[j], mtlab_rate[j] / rate);
        double row[CSV_VALUES];
        for (int i = 0; i < CSV_VALUES; i++)
            row[i] = NAN;
        row[7] = rate;                  /* trials_per_s */
        row[14] = mtlab_rate[j] / rate; /* mtlab_over_peer */
        csv_row("peer", "mmoe", 128, 8, 100, jobs[j], row, CSV_VALUES);
    }
    printf("  (logs in %s)\n\n", dir);
    return 0;
}

/* ---- 4. scaling ------------------------------------------------------------------ */

typedef enum { SCALE_BATCH, SCALE_EXPERTS, SCALE_DIM } scale_kind_t;

static int bench_scale(const bench_opts_t *o, scale_kind_t kind, const data_t *std_data,
                       err_t *err) {
    static const int batches[] = {32, 64, 128, 256, 512, 1024};
    static const int experts[] = {2, 4, 8, 16, 32};
    static const int dims[] = {100, 250, 500, 1000};
    static const char *const names[] = {"batch", "experts", "dim"};
    static const char *const sections[] = {"scale_batch", "scale_experts", "scale_dim"};
    const int *values = kind == SCALE_BATCH ? batches : kind == SCALE_EXPERTS ? experts : dims;
    const int n = kind == SCALE_BATCH ? 6 : kind == SCALE_EXPERTS ? 5 : 4;
    const int base_value = kind == SCALE_BATCH ? 128 : kind == SCALE_EXPERTS ? 8 : 100;
    step_time_t t[6];
    int base = 0;
    for (int i = 0; i < n; i++) {
        int batch = kind == SCALE_BATCH ? values[i] : 128;
        int ne = kind == SCALE_EXPERTS ? values[i] : 8;
        int dim = kind == SCALE_DIM ? values[i] : 100;
        data_t own;
        const data_t *data = std_data;
        if (dim != std_data->d) {
            if (make_data(dim, &own, err)) return -1;
            data = &own;
        }
        int rc = time_steps("mmoe", batch, ne, data, o, &t[i], err);
        if (data != std_data) data_free(&own);
        if (rc) return -1;
        if (values[i] == base_value) base = i;
        double row[] = {t[i].us, t[i].mflop, t[i].mflop / t[i].us * 1e3};
        csv_row(sections[kind], "mmoe", batch, ne, dim, 1, row, 3);
    }
    printf("mmoe step time against %s (others standard; x: relative to %s %d)\n", names[kind],
           names[kind], base_value);
    printf("  %7s %9s %8s %11s %8s %9s\n", names[kind], "us/step", "x time", "MFLOP/step", "x work",
           "GFLOP/s");
    for (int i = 0; i < n; i++)
        printf("  %7d %9.1f %8.2f %11.2f %8.2f %9.1f\n", values[i], t[i].us, t[i].us / t[base].us,
               t[i].mflop, t[i].mflop / t[base].mflop, t[i].mflop / t[i].us * 1e3);
    printf("\n");
    return 0;
}

/* ---- main ------------------------------------------------------------------------ */

/* Trains `model` step after step for `seconds`, for a profiler to watch. */
static int profile(const char *model, double seconds, const data_t *data, err_t *err) {
    model_config_t mc;
    model_config_default(&mc, model_find(model));
    mc.input_dim = data->d;
    mc.tasks = data->T;
    model_t *m;
    if (model_new(&m, model, &mc, 1, err)) return -1;
    train_config_t tc;
    train_config_default(&tc);
    train_state_t s;
    if (train_begin(&s, m, data, &tc, 1, err)) return -1;
    double loss[MTLAB_MAX_TASKS + 1], t0 = now();
    long steps = 0;
    while (now() - t0 < seconds) {
        train_step(&s, loss);
        steps++;
    }
    printf("%s: %ld steps, %.1f us/step\n", model, steps, (now() - t0) / steps * 1e6);
    train_end(&s);
    model_free(m);
    return 0;
}

static int usage(void) {
    fprintf(stderr, "usage: bench_mtlab [--quick] [--no-sweep] [--no-scaling] [--csv FILE]\n"
                    "                   [--peer PATH/peer_torch.py]\n"
                    "       bench_mtlab --profile MODEL [SECONDS]\n");
    return 2;
}

int main(int argc, char **argv) {
    openblas_set_num_threads(1); /* as mtlab: one BLAS thread per process */
    bench_opts_t o = {.sweep = true, .scaling = true, .csv_path = "build/bench.csv"};
    const char *profile_model = NULL;
    double profile_seconds = 10;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            o.quick = true;
        else if (strcmp(argv[i], "--no-sweep") == 0)
            o.sweep = false;
        else if (strcmp(argv[i], "--no-scaling") == 0)
            o.scaling = false;
        else if (strcmp(argv[i], "--csv") == 0 && i + 1 < argc)
            o.csv_path = argv[++i];
        else if (strcmp(argv[i], "--peer") == 0 && i + 1 < argc)
            o.peer = argv[++i];
        else if (strcmp(argv[i], "--profile") == 0 && i + 1 < argc) {
            profile_model = argv[++i];
            if (i + 1 < argc && argv[i + 1][0] != '-') profile_seconds = strtod(argv[++i], NULL);
        } else
            return usage();
    }
    o.repeats = o.quick ? BENCH_QUICK_REPEATS : BENCH_REPEATS;
    err_t err = {0};
    data_t data;
    if (make_data(100, &data, &err)) goto fail;
    if (profile_model) {
        int rc = profile(profile_model, profile_seconds, &data, &err);
        data_free(&data);
        if (rc) goto fail;
        return 0;
    }
    csv_open(o.csv_path);
    sgemm_rates_t rates = bench_sgemm(&o);
    if (bench_steps(&o, &rates, &data, &err)) goto fail;
    int jobs[2], n_jobs = 0;
    double rate[2];
    if (o.sweep && bench_sweeps(&o, jobs, rate, &n_jobs, &err)) goto fail;
    if (o.peer && n_jobs > 0 && bench_peer(o.peer, jobs, rate, n_jobs, &err)) goto fail;
    if (o.scaling &&
        (bench_scale(&o, SCALE_BATCH, &data, &err) || bench_scale(&o, SCALE_EXPERTS, &data, &err) ||
         bench_scale(&o, SCALE_DIM, &data, &err)))
        goto fail;
    data_free(&data);
    if (csv) {
        fclose(csv);
        printf("CSV: %s\n", o.csv_path);
    }
    return 0;
fail:
    fprintf(stderr, "bench: %s\n", err.msg);
    return 1;
}
