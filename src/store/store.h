/* store.h -- the run store: one SQLite file holding experiments, trials and
 * everything recorded about them (schema: sql/schema.sql, the user's API).
 *
 * The store knows nothing of models or sweeps: callers hand it plain records
 * (key/value params, metric rows, gate rows, a parameter blob with its tensor
 * table).  Guarantees:
 *   - WAL mode, foreign keys on, a busy timeout: several processes may use one
 *     file at once (never over a network filesystem);
 *   - a trial's results are written in ONE transaction (store_finish /
 *     store_fail): a reader never sees half a trial, a kill leaves none;
 *   - store_claim is atomic: two runners never claim the same trial; trials
 *     left `running` by a process that no longer exists (same host, pid gone or
 *     reused) are claimed again.
 * Every function returns 0 (or a count) on success and -1 with *err. */
#ifndef MTLAB_STORE_H
#define MTLAB_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

typedef struct store store_t;
typedef struct sqlite3 sqlite3;

/* 2: views in sql/views.sql, v_setting; 3 and later: sql/migrations/NNN-*.sql
 * (3: trial.kills; 4: gate level/owner/kind/histogram range, the route
 * conventions, trial.n_params for every trial; 5: experiment.identity;
 * 6: the run table, trial.run_id -- provenance, store/run_record.h;
 * 7: tag and note; 8: route_step, the routes at every evaluation). */
#define STORE_SCHEMA_VERSION 8

enum {
    STORE_READONLY = 1, /* open an existing file read-only (mtlab sql, ls, show) */
};

/* Opens (creating when allowed) the store at `path` and applies the schema
 * (sql/schema.sql, then sql/views.sql); upgrades a store of an older schema
 * version (even when opened read-only, through a short read-write
 * connection); refuses a newer version or a file that is not an mtlab store. */
int store_open(store_t **out, const char *path, int flags, err_t *err);
void store_close(store_t *s);
sqlite3 *store_db(store_t *s);
/* The run (store_run_add) that this connection's claims record as the
 * trials' trial.run_id; 0 (the default): none. */
void store_set_run(store_t *s, int64_t run_id);

/* Registers an experiment, returning its id.  Same name and same spec text:
 * the existing experiment (a re-run continues it).  Same name, different
 * text: ERR_USAGE naming the experiment, unless replace_spec (then the stored
 * text is replaced and its trials are kept).  `identity` is the caller's rule
 * for trial configs (SWEEP_IDENTITY), stored with a new experiment; an
 * existing one of another identity is taken over when it has no trials, and
 * otherwise refused with ERR_USAGE saying how to proceed, before anything is
 * changed (its trials' configs and seeds follow the other rule). */
int store_experiment(store_t *s, const char *name, const char *description, const char *spec_text,
                     int identity, bool replace_spec, int64_t *id, err_t *err);

typedef struct {
    const char *key;   /* "data.correlation" */
    const char *value; /* stored as a number when it parses as one, else text */
} store_kv_t;

typedef struct {
    int repeat;
    const char *model;
    const char *config; /* canonical config string; (experiment, config, repeat) is unique */
    uint64_t data_seed, init_seed; /* below 2^63 (SQLite integers are signed) */
    int n_params;                  /* entries in params (not the model's size) */
    const store_kv_t *params;
    int64_t model_params; /* the model's parameter count (trial.n_params); < 0: unknown */
} store_trial_t;

/* Inserts the trials that are not yet present, in one transaction, as
 * `pending`.  *added receives how many were new.  A trial already present
 * and still pending takes the seeds given here (a spec replaced with another
 * seed trains its pending trials with the new seeds, and stores those). */
int store_add_trials(store_t *s, int64_t experiment_id, const store_trial_t *trials, int n,
                     int *added, err_t *err);

typedef struct {
    int64_t id;
    int repeat;
    uint64_t data_seed, init_seed; /* as stored: what the trial must be trained with */
    char config[4096];
} store_claim_t;

/* Restricts this connection's claims to trials whose config is one of
 * `configs` (the points of the sweep file this runner was given): a runner of
 * an older or newer file never takes a trial its file does not describe, and
 * such trials stay pending for a runner of their own file.  n = 0 lifts the
 * restriction. */
int store_restrict_claims(store_t *s, const char *const *configs, int n, err_t *err);
/* The same, trial by trial: trial i claimable is (configs[i], repeats[i]) --
 * a shard of a sweep (`mtlab run --shard`).  repeats NULL: any repeat. */
int store_restrict_claims_trials(store_t *s, const char *const *configs, const int *repeats, int n,
                                 err_t *err);

/* Claims one trial of the experiment: one left running by a dead process of
 * this host (those first), else a pending one (lowest id first), among the
 * claimable ones (store_restrict_claims).  Sets status running, host, pid and
 * start time.  Returns 1 when claimed, 0 when none is left, -1. */
int store_claim(store_t *s, int64_t experiment_id, store_claim_t *out, err_t *err);

/* The runner saw the worker `pid` of this host killed by a signal it did not
 * send while it held trial_id (`why`: "signal 9 (SIGKILL)").  If the trial is
 * still running under that pid, its kill count goes up: below
 * STORE_MAX_KILLS the trial goes back to pending, at STORE_MAX_KILLS it is
 * marked failed with `why` in its error.  *outcome: 'p' (pending again),
 * 'f' (failed), or 0 (the trial was no longer that worker's: nothing done). */
#define STORE_MAX_KILLS 2
int store_worker_killed(store_t *s, int64_t trial_id, long pid, const char *why, char *outcome,
                        err_t *err);

/* Puts back to pending the running trials of the experiment whose claimer is
 * gone: with all_hosts false only those of this host whose process no longer
 * exists (what a runner does after its workers stopped); with all_hosts true
 * also EVERY running trial of another host -- `mtlab run --release-stale`,
 * for a user who knows that no runner of that host is alive (a container
 * that is gone; this host cannot see another host's processes).  *released
 * receives the count. */
int store_release_stale(store_t *s, int64_t experiment_id, bool all_hosts, int *released,
                        err_t *err);

/* Puts every failed trial of the experiment back to pending, deleting what
 * was recorded of its failed attempt (curves, gates, tensors, weights) and its
 * kill count, in one transaction (`mtlab run --retry-failed`). */
int store_retry_failed(store_t *s, int64_t experiment_id, int *retried, err_t *err);

typedef struct {
    const char *name; /* "test/loss/t1" */
    int step;
    double value;
} store_metric_t;

typedef struct {
    const char *gate; /* "t1", "shared", "l2/t1", ... (unique in a trial) */
    int expert;       /* 0-based */
    double mean, std;
    int bins;
    const long *hist;        /* [bins] counts of equal bins on [hist_lo, hist_hi] */
    int level;               /* 1-based (0 is taken as 1) */
    const char *owner;       /* "t1", "shared", "e3" (NULL: the gate's name) */
    const char *kind;        /* "softmax" or "weights" (NULL: softmax) */
    double hist_lo, hist_hi; /* the histogram's range ([0, 1] for softmax) */
} store_gate_t;

/* One learned route (the route table, sql/schema.sql): in `layer`, the
 * connection src -> dst of `kind` has weight `value`. */
typedef struct {
    int layer, src, dst;
    const char *kind; /* "z", "log_alpha", "value", "query", "prob", ... */
    double value;
} store_route_t;

/* A route at one evaluation step (the route_step table, migration 008). */
typedef struct {
    int step; /* the evaluation's step */
    int layer, src, dst;
    const char *kind;
    double value;
} store_route_step_t;

typedef struct {
    const char *name;
    int rows, cols;
    size_t offset; /* in values, into the parameter blob */
} store_tensor_t;

typedef struct {
    int n_metrics;
    const store_metric_t *metrics;
    int n_gates;
    const store_gate_t *gates;
    int n_routes;
    const store_route_t *routes;
    int n_route_steps; /* routes at every evaluation (route_step) */
    const store_route_step_t *route_steps;
    int n_tensors;
    const store_tensor_t *tensors;
    const void *weights; /* final parameters, NULL to not store them */
    size_t n_weights;    /* values in the blob; also trial.n_params when weights is NULL */
    const char *dtype;   /* "float32" or "float64" */
    int final_step;
    double seconds_data, seconds_train, seconds_gates;
} store_result_t;

/* Marks a claimed trial done and writes its results, in one transaction; the
 * seconds spent writing are stored with it (trial.seconds_store). */
int store_finish(store_t *s, int64_t trial_id, const store_result_t *r, err_t *err);
/* Marks a claimed trial failed with the step and reason; `partial` (may be
 * NULL) holds what was measured before the failure (e.g. the curve). */
int store_fail(store_t *s, int64_t trial_id, int step, const char *reason,
               const store_result_t *partial, err_t *err);
/* Puts a claimed trial back to pending (a worker interrupted cleanly). */
int store_release(store_t *s, int64_t trial_id, err_t *err);

typedef struct {
    int pending, running, done, failed;
    int running_elsewhere; /* of `running`: claimed by another host */
    int unclaimable;       /* of `pending`: not claimable here (store_restrict_claims) */
} store_counts_t;

int store_counts(store_t *s, int64_t experiment_id, store_counts_t *out, err_t *err);

/* Testing the failure paths: after `n_ok` more write statements (inserts,
 * updates and COMMITs of the functions above) succeed, the next one fails as
 * if SQLite had reported an I/O error, and keeps failing until the hook is
 * reset with n_ok < 0 (the default).  The caller then sees the real error
 * path: the transaction is rolled back and -1 returned. */
void store_test_fail_writes(store_t *s, long n_ok);

#endif
