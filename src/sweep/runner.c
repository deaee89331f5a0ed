/* runner.c -- the parallel, resumable sweep runner (see runner.h). */
#include "sweep/runner.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Counters the workers share with the parent (an anonymous shared mapping). */
typedef struct {
    int claimed; /* trials claimed so far by this invocation (for --limit) */
    int trained, failed;
    double seconds_trials, seconds_store;
} shared_t;

/* ---- registering the trials ---- */

static int register_trials(store_t *st, const sweep_t *sw, bool replace, int64_t *exp_id,
                           int *added, err_t *err) {
    if (store_experiment(st, sw->name, sw->description, sw->text, replace, exp_id, err)) return -1;
    store_trial_t *rows = calloc(sw->n_trials ? sw->n_trials : 1, sizeof *rows);
    store_kv_t *kv = calloc((size_t)sw->n_points * SWEEP_MAX_PARAMS + 1, sizeof *kv);
    if (!rows || !kv) {
        free(rows);
        free(kv);
        return err_set(err, ERR_FAIL, "out of memory for %d trials", sw->n_trials);
    }
    for (int p = 0; p < sw->n_points; p++)
        for (int i = 0; i < sw->points[p].n_params; i++)
            kv[(size_t)p * SWEEP_MAX_PARAMS + i] =
                (store_kv_t){sw->points[p].params[i].key, sw->points[p].params[i].value};
    for (int i = 0; i < sw->n_trials; i++) {
        int point, repeat;
        trial_spec_t spec;
        sweep_trial(sw, i, &point, &repeat, &spec);
        const sweep_point_t *pt = &sw->points[point];
        rows[i] = (store_trial_t){
            .repeat = repeat,
            .model = pt->spec.model,
            .config = pt->config,
            .data_seed = spec.data_seed,
            .init_seed = spec.init_seed,
            .n_params = pt->n_params,
            .params = kv + (size_t)point * SWEEP_MAX_PARAMS,
        };
    }
    int rc = store_add_trials(st, *exp_id, rows, sw->n_trials, added, err);
    free(rows);
    free(kv);
    return rc;
}

/* ---- one trial: run it and turn its result into store records ---- */

#define METRIC_NAME_MAX 48

typedef struct {
    /* [3 * (T + 1)] "split/loss/tK", then T + 1 "test/baseline/tK" and the
     * T (T - 1) / 2 "data/pearson/tI-tJ" */
    char (*metric_names)[METRIC_NAME_MAX];
    store_metric_t *metrics;
    store_gate_t *gates;
    store_tensor_t *tensors;
} records_t;

static void records_free(records_t *r) {
    free(r->metric_names);
    free(r->metrics);
    free(r->gates);
    free(r->tensors);
}

/* Builds the records of a (possibly partial) trial result. */
static int make_records(const sweep_t *sw, const trial_result_t *res, int T, records_t *rec,
                        store_result_t *out, err_t *err) {
    memset(rec, 0, sizeof *rec);
    memset(out, 0, sizeof *out);
    const int per_eval = 3 * (T + 1), at_start = (T + 1) + T * (T - 1) / 2;
    const char *splits[] = {"train", "val", "test"};
    int n_gate_rows = 0;
    for (int g = 0; g < res->gates.n_gates; g++)
        n_gate_rows += res->gates.gate[g].experts;
    const model_t *m = res->model;
    rec->metric_names = malloc(sizeof *rec->metric_names * (per_eval + at_start));
    rec->metrics = malloc(sizeof *rec->metrics * ((size_t)res->n_evals * per_eval + at_start + 1));
    rec->gates = malloc(sizeof *rec->gates * (n_gate_rows + 1));
    rec->tensors = malloc(sizeof *rec->tensors * ((m ? m->n_tensors : 0) + 1));
    if (!rec->metric_names || !rec->metrics || !rec->gates || !rec->tensors) {
        records_free(rec);
        return err_set(err, ERR_FAIL, "out of memory for the trial's records");
    }
    for (int s = 0; s < 3; s++)
        for (int k = 0; k <= T; k++) {
            char *name = rec->metric_names[s * (T + 1) + k];
            if (k < T)
                snprintf(name, METRIC_NAME_MAX, "%s/loss/t%d", splits[s], k + 1);
            else
                snprintf(name, METRIC_NAME_MAX, "%s/loss/total", splits[s]);
        }
    /* At step 0, what the dataset is like: the test loss of predicting the
     * training mean (what "learned something" is measured against) and the
     * labels' correlations. */
    int n = 0;
    for (int k = 0; k <= T; k++) {
        char *name = rec->metric_names[per_eval + n];
        if (k < T)
            snprintf(name, METRIC_NAME_MAX, "test/baseline/t%d", k + 1);
        else
            snprintf(name, METRIC_NAME_MAX, "test/baseline/total");
        rec->metrics[n++] = (store_metric_t){name, 0, res->baseline[k]};
    }
    for (int i = 0; i < T; i++)
        for (int j = i + 1; j < T; j++) {
            char *name = rec->metric_names[per_eval + n];
            snprintf(name, METRIC_NAME_MAX, "data/pearson/t%d-t%d", i + 1, j + 1);
            rec->metrics[n++] = (store_metric_t){name, 0, res->label_pearson[i][j]};
        }
    for (int e = 0; e < res->n_evals; e++) {
        const train_eval_t *ev = &res->evals[e];
        const double *rows[] = {ev->train, ev->val, ev->test};
        for (int s = 0; s < 3; s++)
            for (int k = 0; k <= T; k++)
                rec->metrics[n++] =
                    (store_metric_t){rec->metric_names[s * (T + 1) + k], ev->step, rows[s][k]};
    }
    out->n_metrics = n;
    out->metrics = rec->metrics;
    if (sw->record_gates) {
        n = 0;
        for (int g = 0; g < res->gates.n_gates; g++) {
            const gate_stat_t *gs = &res->gates.gate[g];
            for (int e = 0; e < gs->experts; e++)
                rec->gates[n++] =
                    (store_gate_t){gs->name,       e,
                                   gs->mean[e],    gs->std[e],
                                   GATE_HIST_BINS, gs->hist + (size_t)e * GATE_HIST_BINS};
        }
        out->n_gates = n;
        out->gates = rec->gates;
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
                       trial_data_cache_t *cache, err_t *err) {
    int point = sweep_find_point(sw, claim->config);
    if (point < 0) {
        /* The store holds a trial this file does not describe (spec replaced). */
        err_t why;
        err_set(&why, ERR_FAIL, "the sweep file no longer describes this trial's config");
        return store_fail(st, claim->id, 0, why.msg, NULL, err);
    }
    trial_spec_t spec = sw->points[point].spec;
    spec.data_seed = sweep_data_seed(sw, point, claim->repeat);
    spec.init_seed = sweep_init_seed(sw, point, claim->repeat);

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

static int worker(const sweep_t *sw, const runner_opts_t *o, int64_t exp_id, shared_t *sh) {
    err_t err = {0};
    store_t *st;
    if (store_open(&st, o->db_path, 0, &err)) {
        fprintf(stderr, "mtlab run: worker %d: %s\n", (int)getpid(), err.msg);
        return 1;
    }
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
        if (run_claimed(st, sw, &claim, sh, &cache, &err)) {
            status = 1;
            break;
        }
    }
    if (status) fprintf(stderr, "mtlab run: worker %d: %s\n", (int)getpid(), err.msg);
    trial_data_cache_free(&cache);
    store_close(st);
    return status;
}

/* ---- the parent: progress and waiting ---- */

static void print_progress(const sweep_t *sw, const store_counts_t *c, double elapsed,
                           int trained) {
    int finished = c->done + c->failed, total = sw->n_trials;
    double rate = elapsed > 0 ? trained / elapsed : 0;
    int left = total - finished;
    char eta[32] = "--";
    if (rate > 0) {
        double s = left / rate;
        snprintf(eta, sizeof eta, "%dm%02ds", (int)(s / 60), (int)s % 60);
    }
    fprintf(stderr, "\r\033[K%s: %d/%d done, %d failed, %d running, %.2f trials/s, ETA %s",
            sw->name, finished, total, c->failed, c->running, rate, eta);
    fflush(stderr);
}

int runner_run(const sweep_t *sw, const runner_opts_t *o, runner_summary_t *sum, err_t *err) {
    memset(sum, 0, sizeof *sum);
    sum->total = sw->n_trials;
    double t0 = now();
    store_t *st;
    if (store_open(&st, o->db_path, 0, err)) return -1;
    int64_t exp_id;
    if (register_trials(st, sw, o->replace_spec, &exp_id, &sum->added, err)) {
        store_close(st);
        return -1;
    }
    shared_t *sh =
        mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) {
        store_close(st);
        return err_set(err, ERR_FAIL, "cannot map shared memory: %s", strerror(errno));
    }
    memset(sh, 0, sizeof *sh);

    int jobs = o->jobs > 0 ? o->jobs : 1;
    pid_t *pids = calloc(jobs, sizeof *pids);
    int started = 0, status = 0;
    fflush(NULL); /* nothing buffered may be written twice by the children */
    for (; pids && started < jobs; started++) {
        pid_t pid = fork();
        if (pid < 0) {
            err_set(err, ERR_FAIL, "cannot start worker: %s", strerror(errno));
            status = -1;
            break;
        }
        if (pid == 0) _exit(worker(sw, o, exp_id, sh));
        pids[started] = pid;
    }
    int alive = started, worker_failed = 0;
    while (alive > 0) {
        for (int i = 0; i < started; i++) {
            if (!pids[i]) continue;
            int ws;
            pid_t r = waitpid(pids[i], &ws, WNOHANG);
            if (r == pids[i]) {
                pids[i] = 0;
                alive--;
                if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) worker_failed++;
            }
        }
        if (alive == 0) break;
        if (o->progress) {
            store_counts_t c;
            if (store_counts(st, exp_id, &c, err) == 0)
                print_progress(sw, &c, now() - t0, __atomic_load_n(&sh->trained, __ATOMIC_SEQ_CST));
        }
        usleep(o->progress ? 250000 : 20000);
    }
    store_counts_t c = {0};
    if (store_counts(st, exp_id, &c, err) == 0 && o->progress) {
        print_progress(sw, &c, now() - t0, sh->trained);
        fputc('\n', stderr);
    }
    sum->trained = sh->trained;
    sum->failed = sh->failed;
    sum->seconds_trials = sh->seconds_trials;
    sum->seconds_store = sh->seconds_store;
    sum->done_all = c.done;
    sum->failed_all = c.failed;
    sum->pending_all = c.pending + c.running;
    sum->seconds = now() - t0;
    if (status == 0 && worker_failed)
        status = err_set(err, ERR_FAIL, "%d of %d workers failed (see messages above)",
                         worker_failed, started);
    free(pids);
    munmap(sh, sizeof *sh);
    store_close(st);
    return status;
}
