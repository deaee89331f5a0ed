/* runner.h -- runs a sweep into the store with N worker processes.
 *
 * The parent registers the experiment and inserts the missing trials, then
 * forks `jobs` workers.  Each worker opens its own connection and loops:
 * claim a trial (atomically, in the store), run it with trial_run(), write
 * its results in one transaction.  Workers are separate processes with one
 * BLAS thread each, so a crash or kill -9 of any of them loses at most the
 * trials in flight, which the next run takes up again (store_claim). */
#ifndef MTLAB_RUNNER_H
#define MTLAB_RUNNER_H

#include <stdbool.h>

#include "core/err.h"
#include "sweep/sweep.h"

typedef struct {
    const char *db_path;
    int jobs;          /* worker processes (>= 1) */
    int limit;         /* run at most this many trials in this invocation (0: no limit) */
    bool replace_spec; /* continue an experiment whose spec text changed */
    bool progress;     /* redraw a progress line on stderr */
} runner_opts_t;

typedef struct {
    int total;     /* trials of the sweep */
    int added;     /* newly registered in this invocation */
    int trained;   /* trials run to the end by this invocation (done + failed) */
    int failed;    /* of those, diverged or otherwise failed */
    int done_all, failed_all, pending_all; /* store counts at the end */
    double seconds;         /* wall-clock time of the whole run */
    double seconds_trials;  /* summed trial time (data + train + gates) of this run's trials */
    double seconds_store;   /* summed time writing them */
} runner_summary_t;

int runner_run(const sweep_t *sweep, const runner_opts_t *opts, runner_summary_t *sum,
               err_t *err);

#endif
