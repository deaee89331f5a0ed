/* run_report.c -- the runner's events on stderr (see run_report.h). */
#define _GNU_SOURCE /* sigabbrev_np */
#include "cli/run_report.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

static void clear_line(run_report_t *r) {
    if (r->line_open) fputs("\r\033[K", stderr);
    r->line_open = false;
}

static void progress(run_report_t *r, const runner_event_t *ev) {
    const store_counts_t *c = ev->counts;
    int finished = c->done + c->failed, total = r->total > 0 ? r->total : r->sw->n_trials;
    double rate = ev->elapsed > 0 ? ev->trained / ev->elapsed : 0;
    char eta[32] = "--";
    if (rate > 0) {
        double s = (total - finished) / rate;
        snprintf(eta, sizeof eta, "%dm%02ds", (int)(s / 60), (int)s % 60);
    }
    fprintf(stderr, "%s%s: %d/%d done, %d failed, %d running, %.2f trials/s, ETA %s%s",
            r->plain ? "" : "\r\033[K", r->sw->name, finished, total, c->failed, c->running, rate,
            eta, r->plain ? "\n" : "");
    fflush(stderr);
    r->line_open = !r->plain;
}

void run_report_event(const runner_event_t *ev, void *ctx) {
    run_report_t *r = ctx;
    switch (ev->kind) {
    case RUNNER_PROGRESS:
        if (r->progress) progress(r, ev);
        return;
    case RUNNER_WORKER_KILLED: {
        clear_line(r);
        const char *name = sigabbrev_np(ev->signal);
        fprintf(stderr, "mtlab %s: worker %ld was killed by signal %d (SIG%s)%s", r->cmd, ev->pid,
                ev->signal, name ? name : "?",
                ev->signal == SIGKILL ? ", perhaps by the out-of-memory killer" : "");
        if (ev->trial_id && ev->point >= 0 && ev->point < r->sw->n_points)
            fprintf(stderr, " while running trial %lld (%s, repeat %d)", (long long)ev->trial_id,
                    r->sw->points[ev->point].spec.model, ev->repeat);
        else if (ev->trial_id)
            fprintf(stderr, " while running trial %lld", (long long)ev->trial_id);
        if (ev->outcome == 'p')
            fprintf(stderr, "; the trial is pending again and a new worker goes on\n");
        else if (ev->outcome == 'f')
            fprintf(stderr,
                    "; it killed its worker %d times and is marked failed (mtlab show "
                    "%lld; --retry-failed runs it again)\n",
                    STORE_MAX_KILLS, (long long)ev->trial_id);
        else
            fprintf(stderr, "\n");
        return;
    }
    case RUNNER_WORKER_FAILED:
        clear_line(r);
        fprintf(stderr, "mtlab %s: worker %ld: %s\n", r->cmd, ev->pid, ev->message);
        return;
    case RUNNER_JOBS_REDUCED:
        clear_line(r);
        fprintf(stderr,
                "mtlab %s: running %d worker%s: the largest trial needs about %.1f MiB "
                "(see --max-memory)\n",
                r->cmd, ev->jobs, ev->jobs == 1 ? "" : "s", ev->trial_bytes / 1048576.0);
        return;
    }
}

void run_report_end(run_report_t *r) {
    if (r->line_open) fputc('\n', stderr);
    r->line_open = false;
}
