/* runner.c -- the parallel, resumable sweep runner (see runner.h). */
#define _GNU_SOURCE /* sigabbrev_np */
#include "sweep/runner.h"
#include "core/mem.h"
#include "sweep/routes.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/provenance.h"
#include "store/run_record.h"
#include "store/store.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#define WORKER_MSG_MAX 512

/* What one worker slot tells the parent: the trial it holds now, and why it
 * stopped when it stopped on an error. */
typedef struct {
    int64_t trial; /* the claimed trial being run, 0 between trials */
    int point, repeat;
    char error[WORKER_MSG_MAX];
} slot_t;

/* Counters the workers share with the parent (an anonymous shared mapping,
 * followed by one slot_t per worker). */
typedef struct {
    int claimed;    /* trials claimed so far by this invocation (for --limit) */
    int64_t run_id; /* this invocation's row of the run table (provenance) */
    int trained, failed;
    double seconds_trials, seconds_store;
    slot_t slot[];
} shared_t;

/* ---- registering the trials ---- */

bool runner_in_shard(int index, int shard, int shards) {
    return shards <= 1 || index % shards == shard;
}

int runner_shard_size(int n_trials, int shard, int shards) {
    if (shards <= 1) return n_trials;
    return n_trials / shards + (shard < n_trials % shards ? 1 : 0);
}

/* Registers the experiment and the trials of this runner's shard (all of
 * them without --shard). */
static int register_trials(store_t *st, const sweep_t *sw, const runner_opts_t *o, int64_t *exp_id,
                           int *added, err_t *err) {
    const bool replace = o->replace_spec;
    if (store_experiment(st, sw->name, sw->description, sw->text, SWEEP_IDENTITY, replace, exp_id,
                         err))
        return -1;
    /* The points' params as store records, back to back: point p's start at
     * kv + first[p]. */
    size_t n_kv = 0;
    for (int p = 0; p < sw->n_points; p++)
        n_kv += (size_t)sw->points[p].n_params;
    store_trial_t *rows = mem_calloc(sw->n_trials ? sw->n_trials : 1, sizeof *rows);
    store_kv_t *kv = mem_calloc(n_kv + 1, sizeof *kv);
    size_t *first = mem_calloc((size_t)sw->n_points + 1, sizeof *first);
    if (!rows || !kv || !first) {
        mem_free(rows);
        mem_free(kv);
        mem_free(first);
        return err_set(err, ERR_FAIL, "out of memory for %d trials", sw->n_trials);
    }
    /* Every trial's parameter count (trial.n_params), known before it runs. */
    int64_t *model_params = mem_calloc(sw->n_points ? sw->n_points : 1, sizeof *model_params);
    if (!model_params) {
        mem_free(rows);
        mem_free(kv);
        mem_free(first);
        return err_set(err, ERR_FAIL, "out of memory for %d trials", sw->n_trials);
    }
    for (int p = 0; p < sw->n_points; p++) {
        size_t count;
        err_t ignored = {0}; /* a point that cannot be sized fails when it runs */
        model_params[p] =
            trial_param_count(&sw->points[p].spec, &count, &ignored) || count > INT64_MAX
                ? -1
                : (int64_t)count;
    }
    for (int p = 0, k = 0; p < sw->n_points; p++) {
        first[p] = (size_t)k;
        for (int i = 0; i < sw->points[p].n_params; i++, k++)
            kv[k] = (store_kv_t){sw->points[p].params[i].key, sw->points[p].params[i].value};
    }
    int n_rows = 0;
    for (int i = 0; i < sw->n_trials; i++) {
        if (!runner_in_shard(i, o->shard, o->shards)) continue;
        int point, repeat;
        trial_spec_t spec;
        sweep_trial(sw, i, &point, &repeat, &spec);
        const sweep_point_t *pt = &sw->points[point];
        rows[n_rows++] = (store_trial_t){
            .repeat = repeat,
            .model = pt->spec.model,
            .config = pt->config,
            .data_seed = spec.data_seed,
            .init_seed = spec.init_seed,
            .n_params = pt->n_params,
            .params = kv + first[point],
            .model_params = model_params[point],
        };
    }
    int rc = store_add_trials(st, *exp_id, rows, n_rows, added, err);
    mem_free(model_params);
    mem_free(rows);
    mem_free(kv);
    mem_free(first);
    return rc;
}

/* ---- one trial: run it and turn its result into store records ---- */

typedef struct {
    /* the names of the metrics every evaluation carries (train_eval_metrics:
     * "split/loss/tK", "test/auc/tK", ...), then T + 1 "test/baseline/tK"
     * and the T (T - 1) / 2 "data/pearson/tI-tJ" */
    char (*metric_names)[METRIC_NAME_MAX];
    store_metric_t *metrics;
    store_gate_t *gates;
    store_tensor_t *tensors;
    route_records_t routes; /* the routes at every evaluation and the final ones */
} records_t;

static void records_free(records_t *r) {
    mem_free(r->metric_names);
    mem_free(r->metrics);
    mem_free(r->gates);
    mem_free(r->tensors);
    route_records_free(&r->routes);
}

/* Builds the records of a (possibly partial) trial result. */
static int make_records(const sweep_t *sw, const trial_result_t *res, int T, records_t *rec,
                        store_result_t *out, err_t *err) {
    memset(rec, 0, sizeof *rec);
    memset(out, 0, sizeof *out);
    /* Every evaluation of a trial carries the same metrics. */
    metric_id_t ids[TRAIN_EVAL_MAX_METRICS];
    const int per_eval = res->n_evals > 0 ? train_eval_metrics(&res->evals[0], ids) : 0;
    const int at_start = (T + 1) + T * (T - 1) / 2;
    int n_gate_rows = 0;
    for (int g = 0; g < res->gates.n_gates; g++)
        n_gate_rows += res->gates.gate[g].experts;
    const model_t *m = res->model;
    rec->metric_names = mem_alloc(sizeof *rec->metric_names * (per_eval + at_start));
    rec->metrics =
        mem_alloc(sizeof *rec->metrics * ((size_t)res->n_evals * per_eval + at_start + 1));
    rec->gates = mem_alloc(sizeof *rec->gates * (n_gate_rows + 1));
    rec->tensors = mem_alloc(sizeof *rec->tensors * ((m ? m->n_tensors : 0) + 1));
    if (!rec->metric_names || !rec->metrics || !rec->gates || !rec->tensors) {
        records_free(rec);
        return err_set(err, ERR_FAIL, "out of memory for the trial's records");
    }
    for (int i = 0; i < per_eval; i++)
        if (metric_name(ids[i], T, rec->metric_names[i], METRIC_NAME_MAX)) { /* cannot happen */
            records_free(rec);
            return err_set(err, ERR_FAIL, "metric %d of the trial has no name", i);
        }
    /* At step 0, what the dataset is like: the test loss of predicting the
     * training mean (what "learned something" is measured against) and the
     * labels' correlations. */
    int n = 0;
    for (int k = 0; k <= T; k++) {
        char *name = rec->metric_names[per_eval + n];
        metric_name((metric_id_t){METRIC_TEST, MEASURE_BASELINE, k}, T, name, METRIC_NAME_MAX);
        rec->metrics[n++] = (store_metric_t){name, 0, res->baseline[k]};
    }
    for (int i = 0; i < T; i++)
        for (int j = i + 1; j < T; j++) {
            char *name = rec->metric_names[per_eval + n];
            metric_name((metric_id_t){METRIC_DATA, MEASURE_PEARSON, metric_pair_index(i, j, T)}, T,
                        name, METRIC_NAME_MAX);
            rec->metrics[n++] = (store_metric_t){name, 0, res->label_pearson[i][j]};
        }
    for (int e = 0; e < res->n_evals; e++) {
        const train_eval_t *ev = &res->evals[e];
        for (int i = 0; i < per_eval; i++)
            rec->metrics[n++] =
                (store_metric_t){rec->metric_names[i], ev->step, train_eval_value(ev, ids[i])};
    }
    out->n_metrics = n;
    out->metrics = rec->metrics;
    if (sw->record_gates) {
        n = 0;
        for (int g = 0; g < res->gates.n_gates; g++) {
            const gate_stat_t *gs = &res->gates.gate[g];
            for (int e = 0; e < gs->experts; e++)
                rec->gates[n++] = (store_gate_t){.gate = gs->name,
                                                 .expert = e,
                                                 .mean = gs->mean[e],
                                                 .std = gs->std[e],
                                                 .bins = GATE_HIST_BINS,
                                                 .hist = gs->hist + (size_t)e * GATE_HIST_BINS,
                                                 .level = gs->level,
                                                 .owner = gs->owner,
                                                 .kind = gate_kind_name(gs->kind),
                                                 .hist_lo = gs->lo,
                                                 .hist_hi = gs->hi};
        }
        out->n_gates = n;
        out->gates = rec->gates;
    }
    if (route_records(res, &rec->routes, out, err)) {
        records_free(rec);
        return -1;
    }
    if (m && sw->record_weights) {
        for (int t = 0; t < m->n_tensors; t++)
            rec->tensors[t] = (store_tensor_t){m->tensors[t].name, m->tensors[t].rows,
                                               m->tensors[t].cols, m->tensors[t].offset};
        out->n_tensors = m->n_tensors;
        out->tensors = rec->tensors;
        out->weights = m->params;
        out->n_weights = m->n_params;
        out->dtype = sizeof(real) == sizeof(float) ? "float32" : "float64";
    }
    out->final_step = res->result.final.step;
    out->seconds_data = res->seconds_data;
    out->seconds_train = res->seconds_train;
    out->seconds_gates = res->seconds_gates;
    return 0;
}

/* Runs claimed trial `claim` and records it.  Returns -1 only when the store
 * itself failed (the worker then stops; the trial stays `running` and a
 * later run takes it up again). */
static int run_claimed(store_t *st, const sweep_t *sw, const store_claim_t *claim, shared_t *sh,
                       slot_t *slot, trial_data_cache_t *cache, err_t *err) {
    int point = sweep_find_point(sw, claim->config);
    if (point < 0) {
        /* Claims are restricted to this file's configs: cannot happen unless
         * the store was edited by hand.  Leave the trial to others. */
        if (store_release(st, claim->id, err)) return -1;
        return err_set(err, ERR_FAIL, "trial %lld: its config is not one of %s's",
                       (long long)claim->id, sw->path);
    }
    slot->point = point;
    slot->repeat = claim->repeat;
    /* The seeds stored with the trial are the ones it is trained with (and
     * the ones `mtlab show` reproduces): the store, not the file, is the
     * record.  They equal the file's unless the spec was replaced. */
    trial_spec_t spec = sw->points[point].spec;
    spec.data_seed = claim->data_seed;
    spec.init_seed = claim->init_seed;

    trial_result_t res;
    err_t trial_err = {0};
    int failed = trial_run_cached(&spec, cache, NULL, NULL, &res, &trial_err) != 0;
    records_t rec;
    store_result_t out;
    int rc = make_records(sw, &res, spec.data.tasks, &rec, &out, err);
    if (rc == 0) {
        double t0 = now();
        if (failed)
            rc = store_fail(st, claim->id, res.result.failed_step, trial_err.msg, &out, err);
        else
            rc = store_finish(st, claim->id, &out, err);
        double t_store = now() - t0;
        if (rc == 0) {
            __atomic_add_fetch(&sh->trained, 1, __ATOMIC_SEQ_CST);
            if (failed) __atomic_add_fetch(&sh->failed, 1, __ATOMIC_SEQ_CST);
            /* Timing totals are only for the summary: a racy double add is harmless
             * but we keep it exact with a tiny spin on a compare-exchange. */
            double trial_s = res.seconds_data + res.seconds_train + res.seconds_gates;
            double old = sh->seconds_trials, new_v;
            do
                new_v = old + trial_s;
            while (!__atomic_compare_exchange(&sh->seconds_trials, &old, &new_v, false,
                                              __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
            old = sh->seconds_store;
            do
                new_v = old + t_store;
            while (!__atomic_compare_exchange(&sh->seconds_store, &old, &new_v, false,
                                              __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
        }
        records_free(&rec);
    }
    trial_result_free(&res);
    return rc;
}

/* Opens a connection whose claims (and counts) are those of this sweep file:
 * its points' configs, or with --shard the (config, repeat) of each trial of
 * the shard. */
static int open_restricted(store_t **st, const sweep_t *sw, const runner_opts_t *o, err_t *err) {
    if (store_open(st, o->db_path, 0, err)) return -1;
    /* Claims are limited to this file's (config, repeat) pairs -- of its
     * shard when sharded: a file with fewer repeats than the store holds
     * never trains the stored extra repeats. */
    const bool sharded = o->shards > 1;
    const int n = sharded ? runner_shard_size(sw->n_trials, o->shard, o->shards) : sw->n_trials;
    const char **configs = mem_alloc(sizeof *configs * (size_t)(n ? n : 1));
    int *repeats = mem_alloc(sizeof *repeats * (size_t)(n ? n : 1));
    int rc = -1;
    if (!configs || !repeats) {
        err_set(err, ERR_FAIL, "out of memory for %d trials", n);
        goto done;
    }
    for (int i = 0, k = 0; i < sw->n_trials; i++) {
        if (sharded && !runner_in_shard(i, o->shard, o->shards)) continue;
        int point, repeat;
        sweep_trial(sw, i, &point, &repeat, NULL);
        configs[k] = sw->points[point].config;
        repeats[k++] = repeat;
    }
    rc = store_restrict_claims_trials(*st, configs, repeats, n, err);
done:
    mem_free(configs);
    mem_free(repeats);
    if (rc) {
        store_close(*st);
        *st = NULL;
    }
    return rc;
}

/* A worker process: claims and runs trials until none is left.  Its error, if
 * any, goes to its slot for the parent to report. */
static int worker(const sweep_t *sw, const runner_opts_t *o, int64_t exp_id, shared_t *sh,
                  slot_t *slot) {
    err_t err = {0};
    store_t *st;
    if (open_restricted(&st, sw, o, &err)) {
        snprintf(slot->error, sizeof slot->error, "%s", err.msg);
        return 1;
    }
    store_set_run(st, sh->run_id);
    /* Consecutive claims often share their dataset (a sweep lists the models
     * of one data setting next to each other): keep the last one. */
    trial_data_cache_t cache = {0};
    int status = 0;
    for (;;) {
        if (o->limit > 0 && __atomic_add_fetch(&sh->claimed, 1, __ATOMIC_SEQ_CST) > o->limit) break;
        store_claim_t claim;
        int got = store_claim(st, exp_id, &claim, &err);
        if (got <= 0) {
            status = got < 0;
            break;
        }
        slot->point = -1;
        __atomic_store_n(&slot->trial, claim.id, __ATOMIC_SEQ_CST);
        int rc = run_claimed(st, sw, &claim, sh, slot, &cache, &err);
        __atomic_store_n(&slot->trial, 0, __ATOMIC_SEQ_CST);
        if (rc) {
            status = 1;
            break;
        }
    }
    if (status) snprintf(slot->error, sizeof slot->error, "%s", err.msg);
    trial_data_cache_free(&cache);
    store_close(st);
    return status;
}

/* ---- the parent: signals, workers, progress ---- */

/* The signal that asked the runner to stop, set by its handler: the one piece
 * of mutable state outside a call, as a handler can reach nothing else. */
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig) {
    if (!stop_signal) stop_signal = sig;
}

static const int stop_signals[] = {SIGINT, SIGTERM, SIGHUP};
#define N_STOP_SIGNALS 3

/* Starts a worker in slot i.  In the child: die with the parent, leave
 * SIGINT/SIGHUP to the parent, default SIGTERM. */
static pid_t start_worker(const sweep_t *sw, const runner_opts_t *o, int64_t exp_id, shared_t *sh,
                          int i, err_t *err) {
    pid_t parent = getpid();
    memset(&sh->slot[i], 0, sizeof sh->slot[i]);
    fflush(NULL); /* nothing buffered may be written twice by the children */
    pid_t pid = fork();
    if (pid < 0) {
        err_set(err, ERR_FAIL, "cannot start a worker: %s", strerror(errno));
        return -1;
    }
    if (pid > 0) return pid;
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGTERM, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* The parent may have died between fork() and prctl(): then getppid()
     * is no longer it. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(1);
    _exit(worker(sw, o, exp_id, sh, &sh->slot[i]));
}

static void emit(const runner_opts_t *o, const runner_event_t *ev) {
    if (o->on_event) o->on_event(ev, o->ctx);
}

/* Stores the effect of a worker killed by `sig` holding slot i's trial and
 * tells the caller. */
static void worker_killed(store_t *st, const runner_opts_t *o, const slot_t *slot, pid_t pid,
                          int sig) {
    runner_event_t ev = {.kind = RUNNER_WORKER_KILLED,
                         .pid = pid,
                         .signal = sig,
                         .trial_id = slot->trial,
                         .point = slot->trial ? slot->point : -1,
                         .repeat = slot->repeat};
    if (slot->trial && st) {
        char why[128];
        const char *name = sigabbrev_np(sig);
        snprintf(why, sizeof why, "signal %d (SIG%s%s)", sig, name ? name : "?",
                 sig == SIGKILL ? ": out of memory?" : "");
        err_t err = {0};
        if (store_worker_killed(st, slot->trial, pid, why, &ev.outcome, &err)) {
            runner_event_t fail = {.kind = RUNNER_WORKER_FAILED, .pid = pid, .message = err.msg};
            emit(o, &fail);
        }
    }
    emit(o, &ev);
}

/* Whether this run could still claim work: pending trials it may claim. */
static bool work_left(const store_counts_t *c) {
    return c->pending - c->unclaimable > 0;
}

/* What one worker holds besides its trial: the process itself and OpenBLAS's
 * per-thread buffers (measured: about 20 MiB resident at start). */
#define WORKER_BASE_BYTES ((size_t)32 << 20)

/* The line of the first of the dataset's size keys that the file sets for
 * point p (*key: which), or 0. */
static int data_line(const sweep_t *sw, int p, const char **key) {
    static const char *const keys[] = {"data.train", "data.dim", "data.validation", "data.test"};
    for (int i = 0; i < 4; i++) {
        int line = sweep_key_line(sw, p, keys[i]);
        if (line) return *key = keys[i], line;
    }
    return 0;
}

/* The line of the model hyper-parameter the file sets last for point p,
 * else of train.batch or data.dim (*key: which), or 0. */
static int model_line(const sweep_t *sw, int p, const char **key) {
    const sweep_point_t *pt = &sw->points[p];
    int line = 0;
    for (int k = 0; k < pt->n_params; k++) {
        const char *name = pt->params[k].key;
        if (strncmp(name, "model.", 6) != 0 || strcmp(name, "model.name") == 0) continue;
        int at = sweep_key_line(sw, p, name);
        if (at > line) line = at, *key = name;
    }
    static const char *const fallback[] = {"train.batch", "data.dim"};
    for (int i = 0; i < 2 && !line; i++)
        if ((line = sweep_key_line(sw, p, fallback[i]))) *key = fallback[i];
    return line;
}

/* "315.6 GiB", "34.5 MiB" */
static const char *human(size_t bytes, char buf[32]) {
    double b = (double)bytes;
    if (b >= 1073741824.0)
        snprintf(buf, 32, "%.1f GiB", b / 1073741824.0);
    else
        snprintf(buf, 32, "%.1f MiB", b / 1048576.0);
    return buf;
}

int runner_check_memory(const sweep_t *sw, size_t max_memory, int *jobs, size_t *largest,
                        err_t *err) {
    *largest = 0;
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    size_t machine = pages > 0 && page > 0 ? (size_t)pages * (size_t)page : 0;
    size_t limit = max_memory ? max_memory : machine;
    const char *what = max_memory ? "--max-memory" : "this machine's memory";
    for (int p = 0; p < sw->n_points; p++) {
        trial_memory_t m;
        err_t why = {0};
        /* A worker holds the trial and, in its data cache, the previous
         * dataset while the next one is made. */
        size_t need = 0;
        bool too_big = trial_memory_estimate(&sw->points[p].spec, &m, &why) != 0;
        if (!too_big) {
            need = m.total + m.data + WORKER_BASE_BYTES;
            too_big = need < m.total || (limit && need > limit);
        }
        if (!too_big) {
            if (need > *largest) *largest = need;
            continue;
        }
        /* Blame the dataset when it dominates -- or, when the estimate
         * itself failed (a size overflows), when the generator alone cannot
         * be sized. */
        size_t resident, transient;
        err_t ignored = {0};
        bool data_heavy = why.msg[0] ? synth_memory(&sw->points[p].spec.data, &resident, &transient,
                                                    &ignored) != 0
                                     : m.data >= m.model + m.workspace;
        const char *key = NULL;
        int line = data_heavy ? data_line(sw, p, &key) : model_line(sw, p, &key);
        if (!line) line = data_heavy ? model_line(sw, p, &key) : data_line(sw, p, &key);
        char where[1200];
        if (line)
            snprintf(where, sizeof where, "%s:%d: point %d (%s, %s)", sw->path, line, p,
                     sw->points[p].spec.model, key);
        else
            snprintf(where, sizeof where, "%s: point %d (%s)", sw->path, p,
                     sw->points[p].spec.model);
        if (why.msg[0]) return err_set(err, ERR_USAGE, "%s: %s", where, why.msg);
        char b[5][32];
        return err_set(err, ERR_USAGE,
                       "%s: a trial needs about %s (data %s, model %s, workspace %s, a second "
                       "dataset in the worker's cache and %zu MiB for the worker), more than "
                       "%s (%s)",
                       where, human(need, b[0]), human(m.data, b[1]), human(m.model, b[2]),
                       human(m.workspace, b[3]), WORKER_BASE_BYTES >> 20, what, human(limit, b[4]));
    }
    if (limit && *largest > 0 && *jobs > 1) {
        size_t fit = limit / *largest;
        if (fit < (size_t)*jobs) *jobs = fit > 0 ? (int)fit : 1;
    }
    return 0;
}

/* Registers the experiment and its trials and applies the --retry-failed and
 * --release-stale resets, then closes the connection before any fork. */
static int prepare_store(const sweep_t *sw, const runner_opts_t *o, int jobs, int64_t *exp_id,
                         int64_t *run_id, runner_summary_t *sum, err_t *err) {
    store_t *st;
    if (store_open(&st, o->db_path, 0, err)) return -1;
    int rc = register_trials(st, sw, o, exp_id, &sum->added, err);
    if (rc == 0) {
        provenance_t prov;
        provenance_collect(&prov);
        char shard[32];
        snprintf(shard, sizeof shard, "%d/%d", o->shard, o->shards);
        rc = store_run_add(st, &prov, jobs, o->shards > 1 ? shard : NULL, run_id, err);
    }
    if (rc == 0 && o->retry_failed) rc = store_retry_failed(st, *exp_id, &sum->retried, err);
    if (rc == 0 && o->release_stale)
        rc = store_release_stale(st, *exp_id, true, &sum->released, err);
    store_close(st);
    return rc;
}

int runner_run(const sweep_t *sw, const runner_opts_t *o, runner_summary_t *sum, err_t *err) {
    memset(sum, 0, sizeof *sum);
    sum->total = runner_shard_size(sw->n_trials, o->shard, o->shards);
    double t0 = now();
    int jobs = o->jobs > 0 ? o->jobs : 1;
    size_t largest;
    if (runner_check_memory(sw, o->max_memory, &jobs, &largest, err)) return -1;
    if (jobs < (o->jobs > 0 ? o->jobs : 1)) {
        runner_event_t ev = {.kind = RUNNER_JOBS_REDUCED, .jobs = jobs, .trial_bytes = largest};
        emit(o, &ev);
    }
    int64_t exp_id, run_id;
    if (prepare_store(sw, o, jobs, &exp_id, &run_id, sum, err)) return -1;

    size_t shared_size = sizeof(shared_t) + (size_t)jobs * sizeof(slot_t);
    shared_t *sh =
        mmap(NULL, shared_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pid_t *pids = mem_calloc((size_t)jobs, sizeof *pids);
    if (sh == MAP_FAILED || !pids) {
        if (sh != MAP_FAILED) munmap(sh, shared_size);
        mem_free(pids);
        return err_set(err, ERR_FAIL, "cannot set up %d workers: out of memory", jobs);
    }
    memset(sh, 0, shared_size);
    sh->run_id = run_id;

    /* Stop signals are handled from here on: block them around each fork so
     * that a child never runs the parent's handler. */
    struct sigaction act = {0}, old_act[N_STOP_SIGNALS];
    act.sa_handler = on_stop_signal;
    sigemptyset(&act.sa_mask);
    stop_signal = 0;
    for (int k = 0; k < N_STOP_SIGNALS; k++)
        sigaction(stop_signals[k], &act, &old_act[k]);
    sigset_t block, saved;
    sigemptyset(&block);
    for (int k = 0; k < N_STOP_SIGNALS; k++)
        sigaddset(&block, stop_signals[k]);

    int status = 0, alive = 0, worker_failed = 0;
    /* Restarts after kills are bounded: each trial kills at most
     * STORE_MAX_KILLS workers before it is failed. */
    long restarts_left = (long)STORE_MAX_KILLS * sw->n_trials + jobs;
    sigprocmask(SIG_BLOCK, &block, &saved);
    for (int i = 0; i < jobs && status == 0; i++) {
        pids[i] = start_worker(sw, o, exp_id, sh, i, err);
        if (pids[i] < 0) {
            pids[i] = 0;
            status = -1;
        } else
            alive++;
    }
    sigprocmask(SIG_SETMASK, &saved, NULL);
    sum->jobs = alive;

    /* The parent's own connection, opened only now that every fork is done. */
    store_t *st = NULL;
    err_t open_err = {0};
    if (open_restricted(&st, sw, o, &open_err)) {
        runner_event_t ev = {
            .kind = RUNNER_WORKER_FAILED, .pid = getpid(), .message = open_err.msg};
        emit(o, &ev);
    }
    bool stopping = false;
    /* a terminal's line at once; a log's first line after progress_every */
    double last_progress = o->progress_every > 0 ? now() : 0;
    while (alive > 0) {
        if (stop_signal && !stopping) {
            stopping = true;
            for (int i = 0; i < jobs; i++)
                if (pids[i]) kill(pids[i], SIGTERM);
        }
        for (int i = 0; i < jobs; i++) {
            if (!pids[i]) continue;
            int ws;
            pid_t r = waitpid(pids[i], &ws, WNOHANG);
            if (r != pids[i]) continue;
            pids[i] = 0;
            alive--;
            if (WIFSIGNALED(ws) && !(stopping && WTERMSIG(ws) == SIGTERM)) {
                sum->killed++;
                worker_killed(st, o, &sh->slot[i], r, WTERMSIG(ws));
                store_counts_t c;
                err_t cerr = {0};
                if (!stopping && !stop_signal && restarts_left > 0 && st &&
                    store_counts(st, exp_id, &c, &cerr) == 0 && work_left(&c)) {
                    restarts_left--;
                    sigprocmask(SIG_BLOCK, &block, &saved);
                    pid_t pid = start_worker(sw, o, exp_id, sh, i, &cerr);
                    sigprocmask(SIG_SETMASK, &saved, NULL);
                    if (pid > 0) {
                        pids[i] = pid;
                        alive++;
                    }
                }
            } else if (WIFEXITED(ws) && WEXITSTATUS(ws) != 0) {
                worker_failed++;
                runner_event_t ev = {.kind = RUNNER_WORKER_FAILED,
                                     .pid = r,
                                     .message = sh->slot[i].error[0] ? sh->slot[i].error
                                                                     : "exited with an error"};
                emit(o, &ev);
            }
        }
        if (alive == 0) break;
        if (o->progress && o->on_event && st &&
            now() - last_progress >= (o->progress_every > 0 ? o->progress_every : 0.25)) {
            store_counts_t c;
            err_t cerr = {0};
            if (store_counts(st, exp_id, &c, &cerr) == 0) {
                runner_event_t ev = {.kind = RUNNER_PROGRESS,
                                     .counts = &c,
                                     .elapsed = now() - t0,
                                     .trained = __atomic_load_n(&sh->trained, __ATOMIC_SEQ_CST)};
                emit(o, &ev);
            }
            last_progress = now();
        }
        usleep(20000);
    }
    for (int k = 0; k < N_STOP_SIGNALS; k++)
        sigaction(stop_signals[k], &old_act[k], NULL);
    sum->interrupted = stop_signal;

    if (st) {
        /* Trials of workers that are gone (stopped, killed before their slot
         * said what they held) go back to pending now rather than at the next
         * claim, so that `mtlab ls` does not show them running. */
        int released;
        err_t rerr = {0};
        store_release_stale(st, exp_id, false, &released, &rerr);
        store_counts(st, exp_id, &sum->counts, &rerr);
        store_close(st);
    }
    sum->trained = sh->trained;
    sum->failed = sh->failed;
    sum->seconds_trials = sh->seconds_trials;
    sum->seconds_store = sh->seconds_store;
    sum->seconds = now() - t0;
    if (status == 0 && open_err.msg[0]) status = err_set(err, ERR_FAIL, "%s", open_err.msg);
    if (status == 0 && sum->interrupted) {
        const char *name = sigabbrev_np(sum->interrupted);
        status = err_set(err, ERR_FAIL,
                         "interrupted by SIG%s: the trials in flight are pending again; run the "
                         "same command to resume",
                         name ? name : "?");
    }
    if (status == 0 && worker_failed)
        status = err_set(err, ERR_FAIL, "%d of %d workers failed", worker_failed, sum->jobs);
    if (status == 0 && sum->killed)
        status = err_set(err, ERR_FAIL, "%d worker%s killed by a signal (see above)", sum->killed,
                         sum->killed == 1 ? " was" : "s were");
    mem_free(pids);
    munmap(sh, shared_size);
    return status;
}
