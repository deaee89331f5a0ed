/* cmd_rerun.c -- `mtlab rerun TRIAL_ID`: trains one stored trial again from
 * its stored config and seeds, in memory (the store is opened read-only and
 * nothing is written), and says for each of its final metrics whether the
 * rerun gives the same bits.
 *
 * The trial is rebuilt as `mtlab train` rebuilds what `mtlab show` prints
 * (every stored param as a setting; a model key the family does not declare
 * was not used and is left out), and run by the same trial_run(), so a
 * difference is a difference of code, BLAS kernel or machine, never of the
 * way the trial was described.  Compared: every metric stored at the
 * trial's final step (for a data-only trial, step 0: the baselines and label
 * correlations), bit for bit (NaN, stored as NULL, equals NaN). */
#include <inttypes.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"
#include "cli/opts.h"
#include "core/mem.h"
#include "core/provenance.h"
#include "store/query.h"
#include "store/run_record.h"
#include "store/store.h"
#include "sweep/keys.h"
#include "sweep/sweep.h"
#include "train/metrics.h"
#include "train/trial.h"

/* One metric of the rerun: its name and value at `step`. */
typedef struct {
    char name[METRIC_NAME_MAX];
    int step;
    double value;
} rerun_metric_t;

/* The metrics the runner would store for res at final_step (runner.c's
 * make_records): step 0 the baselines and label correlations, then every
 * evaluation's metrics.  Returns the count written to out[cap]. */
static int rerun_metrics(const trial_result_t *res, int T, int final_step, rerun_metric_t *out,
                         int cap) {
    int n = 0;
    if (final_step == 0) {
        for (int k = 0; k <= T && n < cap; k++) {
            metric_name((metric_id_t){METRIC_TEST, MEASURE_BASELINE, k}, T, out[n].name,
                        METRIC_NAME_MAX);
            out[n].step = 0;
            out[n++].value = res->baseline[k];
        }
        for (int i = 0; i < T; i++)
            for (int j = i + 1; j < T && n < cap; j++) {
                metric_name((metric_id_t){METRIC_DATA, MEASURE_PEARSON, metric_pair_index(i, j, T)},
                            T, out[n].name, METRIC_NAME_MAX);
                out[n].step = 0;
                out[n++].value = res->label_pearson[i][j];
            }
    }
    for (int e = 0; e < res->n_evals; e++) {
        const train_eval_t *ev = &res->evals[e];
        if (ev->step != final_step) continue;
        metric_id_t ids[TRAIN_EVAL_MAX_METRICS];
        const int per_eval = train_eval_metrics(ev, ids);
        for (int i = 0; i < per_eval && n < cap; i++) {
            if (metric_name(ids[i], T, out[n].name, METRIC_NAME_MAX)) continue;
            out[n].step = ev->step;
            out[n++].value = train_eval_value(ev, ids[i]);
        }
    }
    return n;
}

/* Whether two stored values are the same bits (NaN equals NaN: the store
 * keeps NaN as NULL). */
static bool same_bits(double a, double b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    return memcmp(&a, &b, sizeof a) == 0;
}

/* The trial's spec from its stored params and seeds (as `mtlab show`'s
 * reproduce command).  ERR_USAGE when a param is no key of this mtlab. */
static int rebuild_spec(const store_trial_info_t *t, trial_spec_t *spec, err_t *err) {
    const int n = t->params->n_rows;
    const char **settings = mem_calloc((size_t)n + 1, sizeof *settings);
    char **owned = mem_calloc((size_t)n + 1, sizeof *owned);
    int n_settings = 0, status = -1;
    if (!settings || !owned) {
        err_set(err, ERR_FAIL, "out of memory");
        goto done;
    }
    int n_keys;
    const sweep_key_t *keys = sweep_keys(&n_keys);
    for (int r = 0; r < n; r++) {
        const char *key = store_table_cell(t->params, r, 0);
        const char *value = store_table_cell(t->params, r, 1);
        const char *dot = key ? strchr(key, '.') : NULL;
        int k = -1;
        if (dot && value) {
            char section[64];
            snprintf(section, sizeof section, "%.*s", (int)(dot - key), key);
            k = sweep_key_find(section, dot + 1);
        }
        if (k < 0) {
            err_set(err, ERR_USAGE,
                    "trial %" PRId64 ": its param %s = %s is not a key of this mtlab: it cannot "
                    "be rebuilt",
                    t->id, key ? key : "-", value ? value : "-");
            goto done;
        }
        if (t->model && !sweep_key_declared(&keys[k], t->model)) continue;
        size_t len = strlen(key) + strlen(value) + 2;
        if (!(owned[n_settings] = mem_alloc(len))) {
            err_set(err, ERR_FAIL, "out of memory");
            goto done;
        }
        snprintf(owned[n_settings], len, "%s=%s", key, value);
        settings[n_settings] = owned[n_settings];
        n_settings++;
    }
    sweep_t *point;
    if (sweep_from_settings(settings, settings, n_settings, 1, &point, err)) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        err_set(err, ERR_USAGE, "trial %" PRId64 ": its stored config is not valid now: %s", t->id,
                msg);
        goto done;
    }
    *spec = point->points[0].spec;
    spec->data_seed = (uint64_t)t->data_seed;
    spec->init_seed = (uint64_t)t->init_seed;
    sweep_free(point);
    status = 0;
done:
    for (int i = 0; owned && i < n_settings; i++)
        mem_free(owned[i]);
    mem_free(owned);
    mem_free(settings);
    return status;
}

/* Runs the comparison and prints it; *all_same receives the verdict. */
static int rerun_trial(store_t *s, const store_trial_info_t *t, bool *all_same, err_t *err) {
    trial_spec_t spec;
    if (rebuild_spec(t, &spec, err)) return -1;
    const int final_step = t->has_final_step ? t->final_step : 0;
    /* the stored metrics at the final step, as doubles (not their text) */
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(store_db(s),
                           "SELECT name, value FROM metric WHERE trial_id = ? AND step = ? "
                           "ORDER BY name",
                           -1, &q, NULL) != SQLITE_OK)
        return err_set(err, ERR_FAIL, "cannot read the metrics: %s", sqlite3_errmsg(store_db(s)));
    sqlite3_bind_int64(q, 1, t->id);
    sqlite3_bind_int(q, 2, final_step);

    printf("rerunning trial %" PRId64 " (%s, repeat %d, data seed %" PRId64 ", init seed %" PRId64
           ") in memory; the store is not changed\n",
           t->id, t->model ? t->model : "-", t->repeat, t->data_seed, t->init_seed);
    fflush(stdout);
    trial_result_t res;
    err_t trial_err = {0};
    const bool failed = trial_run(&spec, NULL, NULL, &res, &trial_err) != 0;
    if (failed && res.result.failed_step == 0) { /* not a divergence: an error */
        trial_result_free(&res);
        sqlite3_finalize(q);
        return err_set(err, ERR_FAIL, "trial %" PRId64 ": %s", t->id, trial_err.msg);
    }
    const int cap = 2 * TRAIN_EVAL_MAX_METRICS + MTLAB_MAX_TASKS * MTLAB_MAX_TASKS;
    rerun_metric_t *got = mem_calloc((size_t)cap, sizeof *got);
    if (!got) {
        trial_result_free(&res);
        sqlite3_finalize(q);
        return err_set(err, ERR_FAIL, "out of memory");
    }
    const int n_got = rerun_metrics(&res, spec.data.tasks, final_step, got, cap);
    int n_same = 0, n_differ = 0;
    *all_same = true;
    if (failed) {
        printf("the rerun diverged at step %d (%s); the stored trial finished\n",
               res.result.failed_step, trial_err.msg);
        *all_same = false;
    }
    printf("%-24s %24s %24s  %s\n", "metric (final step)", "stored", "rerun", "bits");
    while (sqlite3_step(q) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(q, 0);
        const double stored =
            sqlite3_column_type(q, 1) == SQLITE_NULL ? NAN : sqlite3_column_double(q, 1);
        const rerun_metric_t *m = NULL;
        for (int i = 0; i < n_got && !m; i++)
            if (strcmp(got[i].name, name) == 0) m = &got[i];
        if (!m) {
            printf("%-24s %24.17g %24s  missing in the rerun\n", name, stored, "-");
            n_differ++;
            continue;
        }
        if (same_bits(stored, m->value)) {
            printf("%-24s %24.17g %24.17g  identical\n", name, stored, m->value);
            n_same++;
        } else {
            printf("%-24s %24.17g %24.17g  differ by %.3g\n", name, stored, m->value,
                   m->value - stored);
            n_differ++;
        }
    }
    sqlite3_finalize(q);
    mem_free(got);
    trial_result_free(&res);
    if (n_same + n_differ == 0) {
        printf("(no metrics stored at step %d)\n", final_step);
        *all_same = false;
    }
    *all_same = *all_same && n_differ == 0;
    printf("%s: %d of %d final metrics identical\n", *all_same ? "same bits" : "DIFFERENT", n_same,
           n_same + n_differ);
    return 0;
}

int cmd_rerun(int argc, char **argv) {
    const char *db = "results.db";
    opt_t opts[] = {
        {"db", OPT_STRING, &db, "FILE", "the SQLite store (read only)", 1, 0, 0},
    };
    const int n_opts = (int)(sizeof opts / sizeof opts[0]);
    err_t err = {0};
    const char *pos[1];
    int n_pos;
    int rc = cli_options(
        "rerun", "mtlab rerun TRIAL_ID [--db FILE]",
        "Trains one finished trial again from its stored config and seeds, in memory\n"
        "(nothing is written to the store), and prints for every metric stored at its\n"
        "final step the stored value, the rerun's, and whether the bits are identical.\n"
        "Exit status: 0 all identical, 1 some differ (or the rerun failed), 2 bad input.",
        opts, n_opts, argc, argv, pos, 1, &n_pos);
    if (rc != CLI_CONTINUE) return rc;
    long long id;
    if (n_pos != 1 || parse_long(pos[0], &id) || id < 1) {
        err_set(&err, ERR_USAGE,
                "expected one trial id (a positive integer; mtlab trials EXP "
                "lists them)");
        return cli_fail("rerun", &err);
    }
    store_t *s;
    if (store_open(&s, db, STORE_READONLY, &err)) return cli_fail("rerun", &err);
    store_trial_info_t info;
    if (store_trial_info(s, (int64_t)id, &info, &err)) {
        store_close(s);
        return cli_fail("rerun", &err);
    }
    int status = 0;
    bool same = false;
    if (!info.status || strcmp(info.status, "done") != 0) {
        err_set(&err, ERR_USAGE,
                "trial %lld is %s: only a finished (done) trial has final metrics to compare", id,
                info.status ? info.status : "of no status");
        status = cli_fail("rerun", &err);
    } else {
        store_run_info_t run = {0};
        err_t ignored = {0};
        if (store_run_info(s, (int64_t)id, &run, &ignored) == 0) {
            const char *core = run.n ? store_run_value(&run, "blas_core") : NULL;
            if (core && strcasecmp(core, provenance_blas_core()) != 0)
                printf("note: the trial ran with BLAS kernel %s, this machine uses %s: bits may "
                       "differ for that reason alone (MTLAB_BLAS_CORE=%s mtlab rerun ... forces "
                       "it)\n",
                       core, provenance_blas_core(), core);
            mem_free(run.owned);
        }
        if (rerun_trial(s, &info, &same, &err))
            status = cli_fail("rerun", &err);
        else
            status = same ? 0 : 1;
    }
    store_trial_info_free(&info);
    store_close(s);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        err_set(&err, ERR_FAIL, "cannot write to standard output");
        return cli_fail("rerun", &err);
    }
    return status;
}
