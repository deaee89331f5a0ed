/* report.h -- an experiment as ONE self-contained HTML file (`mtlab report
 * EXP > report.html`): readable in any browser from disk, without a server,
 * scripts, or any file next to it.
 *
 * Sections, in order:
 *   provenance   the experiment's name, description, id, created/updated,
 *                the code version that registered it, the store's path, the
 *                mtlab that wrote the report, trial counts by status, and the
 *                sweep file's text (the spec) verbatim;
 *                the `mtlab run` invocations that trained its trials (host,
 *                code version, compiler, BLAS, CPU; the run table);
 *   config       the keys every trial shares, with their value;
 *   settings     per setting -- the done trials with the same model and
 *                values of the keys that vary (store/runs.h), repeats
 *                pooled -- n and, for every final metric, the mean and the
 *                half-width of its 95 % confidence interval, t(0.975, n - 1)
 *                * sd / sqrt(n) with the sample sd (plot/curves.h; blank for
 *                n = 1);
 *   curves       for each requested metric, an inline SVG (plot/svg.h) with
 *                one line per setting (the mean over its done trials at each
 *                step) and the 95 % band, and the numbers behind it in a
 *                table;
 *   trials       the runs table (store/runs.h), one row per trial;
 *   notes        the notes on the experiment and its trials.
 * Every text from the store is escaped; numbers are written with 6
 * significant digits (half-widths with 3). */
#ifndef MTLAB_PLOT_REPORT_H
#define MTLAB_PLOT_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "core/err.h"
#include "store/store.h"

typedef struct {
    const char *experiment;     /* name, or id */
    const char *const *metrics; /* the metrics drawn as curves */
    int n_metrics;
    bool metrics_given; /* the user named them: one that was never recorded is
                           ERR_USAGE (else it is skipped with a line saying so) */
} report_job_t;

/* Writes the report to f.  ERR_USAGE for an unknown experiment or a named
 * metric it never recorded (with the closest name); ERR_FAIL for store or
 * write errors.  On failure part of the file may have been written. */
int report_write(store_t *s, const report_job_t *job, FILE *f, err_t *err);

#endif
