/* run_report.h -- how `mtlab run` and `mtlab reproduce` show a running sweep:
 * the runner's events (sweep/runner.h) as a progress line on a terminal and
 * one line per killed or failed worker on stderr. */
#ifndef MTLAB_RUN_REPORT_H
#define MTLAB_RUN_REPORT_H

#include <stdbool.h>

/* Seconds between progress lines when stderr is not a terminal. */
#define RUN_PROGRESS_PLAIN_SECONDS 30

#include "sweep/runner.h"

typedef struct {
    const char *cmd; /* "run": messages read "mtlab run: ..." */
    const sweep_t *sw;
    int total;      /* trials this run is about (0: the sweep's; its shard's with --shard) */
    bool progress;  /* show progress on stderr */
    bool plain;     /* as whole lines (a pipe, a log file), not one redrawn line */
    bool line_open; /* a progress line is on the screen (cleared before a message) */
} run_report_t;

/* A runner_event_fn: ctx is a run_report_t. */
void run_report_event(const runner_event_t *ev, void *ctx);
/* Ends the progress line, if one is shown. */
void run_report_end(run_report_t *r);

#endif
