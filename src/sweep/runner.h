/* runner.h -- runs a sweep into the store with N worker processes.
 *
 * The parent registers the experiment and inserts the missing trials, CLOSES
 * its connection (an SQLite connection must not cross fork()), then forks
 * `jobs` workers.  Each worker opens its own connection, restricted to the
 * configs of this sweep file (store_restrict_claims), and loops: claim a
 * trial atomically, run it with trial_run() on the seeds stored with it,
 * write its results in one transaction.  Workers are separate processes with
 * one BLAS thread each, so a crash or kill of any of them loses at most the
 * trial in flight.
 *
 * Processes.  Workers die with the runner (PR_SET_PDEATHSIG): no worker goes
 * on writing after a kill -9 of the runner, when another process may already
 * be reading or resuming the store.  SIGINT, SIGTERM and SIGHUP to the runner
 * stop the workers (SIGTERM), put their trials back to pending and return
 * with the signal in the summary; workers ignore SIGINT and SIGHUP and leave
 * stopping to the runner.  A worker killed by a signal the runner did not
 * send (the out-of-memory killer, a crash) is reported with its trial
 * (RUNNER_WORKER_KILLED); the trial goes back to pending, or is marked
 * failed the second time it kills a worker (store_worker_killed), and a new
 * worker takes the slot, so one oversized trial cannot stop a sweep.
 *
 * Nothing here prints: progress, killed and failed workers reach the caller
 * through opts->on_event, and errors through *err. */
#ifndef MTLAB_RUNNER_H
#define MTLAB_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "store/store.h"
#include "sweep/sweep.h"

typedef enum {
    RUNNER_PROGRESS,      /* counts, elapsed, trained: every 250 ms while workers run */
    RUNNER_WORKER_KILLED, /* pid, signal, trial (0: none held), point, repeat, outcome */
    RUNNER_WORKER_FAILED, /* pid, message: a worker stopped on an error (store, memory) */
    RUNNER_JOBS_REDUCED,  /* jobs: fewer workers than asked, so that they fit in memory */
} runner_event_kind_t;

typedef struct {
    runner_event_kind_t kind;
    const store_counts_t *counts; /* PROGRESS: the experiment's trials now */
    double elapsed;               /* PROGRESS: seconds since the run started */
    int trained;                  /* PROGRESS: trials finished by this run */
    long pid;                     /* KILLED, FAILED: the worker */
    int signal;                   /* KILLED */
    int64_t trial_id;             /* KILLED: the trial it held, or 0 */
    int point, repeat;            /* KILLED: that trial in the sweep (point -1: unknown) */
    char outcome;                 /* KILLED: 'p' pending again, 'f' failed for good, 0 */
    const char *message;          /* FAILED: the worker's error */
    int jobs;                     /* JOBS_REDUCED: workers that will run */
    size_t trial_bytes;           /* JOBS_REDUCED: the largest trial's memory estimate */
} runner_event_t;

typedef void (*runner_event_fn)(const runner_event_t *ev, void *ctx);

typedef struct {
    const char *db_path;
    int jobs;                 /* worker processes (>= 1) */
    int limit;                /* run at most this many trials in this invocation (0: no limit) */
    bool replace_spec;        /* continue an experiment whose spec text changed */
    bool retry_failed;        /* put the experiment's failed trials back to pending first */
    bool release_stale;       /* put EVERY running trial not held by a live process of this
                                 host back to pending first (store_release_stale) */
    size_t max_memory;        /* bytes all workers together may use; 0: the machine's memory */
    int shard, shards;        /* run only the trials i with i % shards == shard (runner_in_shard);
                                 shards <= 1: every trial */
    bool progress;            /* emit RUNNER_PROGRESS events (each counts the store) */
    double progress_every;    /* seconds between them (<= 0: 0.25, a terminal's redraw) */
    runner_event_fn on_event; /* may be NULL */
    void *ctx;
} runner_opts_t;

typedef struct {
    int total;             /* trials of the sweep (of its shard with --shard) */
    int added;             /* newly registered in this invocation */
    int retried;           /* failed trials put back to pending (retry_failed) */
    int released;          /* running trials put back to pending (release_stale) */
    int trained;           /* trials run to the end by this invocation (done + failed) */
    int failed;            /* of those, diverged or otherwise failed */
    int killed;            /* workers killed by a signal the runner did not send */
    int interrupted;       /* the signal that stopped the run (SIGINT, SIGTERM, SIGHUP), or 0 */
    int jobs;              /* workers started at first */
    store_counts_t counts; /* the experiment's trials at the end */
    double seconds;        /* wall-clock time of the whole run */
    double seconds_trials; /* summed trial time (data + train + gates) of this run's trials */
    double seconds_store;  /* summed time writing them */
} runner_summary_t;

/* Checks every point's memory estimate against opts->max_memory (or the
 * machine's physical memory): ERR_USAGE naming the sweep file, the line of
 * the key that makes it large (sweep_key_line) and the trial, before anything
 * is stored.  *jobs is lowered so that that many of the largest trial fit
 * (at least 1).  Called by runner_run; exposed for --dry-run. */
int runner_check_memory(const sweep_t *sweep, size_t max_memory, int *jobs, size_t *largest_trial,
                        err_t *err);

/* Whether trial `index` of the sweep (sweep_trial) belongs to shard `shard`
 * of `shards`: a round robin over the trial list, so every trial is in
 * exactly one shard for any shards >= 1, each shard gets every model and
 * setting, and adding repeats to a sweep (indices at the end) leaves the
 * existing trials in their shards.  shards <= 1: every trial. */
bool runner_in_shard(int index, int shard, int shards);
/* The number of trials of a sweep of n_trials in that shard. */
int runner_shard_size(int n_trials, int shard, int shards);

/* Runs the sweep.  Returns 0, or -1 with *err (ERR_USAGE for a spec or
 * memory error before anything ran; ERR_FAIL for a store error, failed or
 * killed workers, or an interruption -- *sum is filled in every case once
 * the trials are registered). */
int runner_run(const sweep_t *sweep, const runner_opts_t *opts, runner_summary_t *sum, err_t *err);

#endif
