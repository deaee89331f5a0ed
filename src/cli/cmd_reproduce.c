/* cmd_reproduce.c -- `mtlab reproduce`: the MMoE paper's synthetic section
 * end to end.  Runs the sweeps of experiments/mmoe/ into one store (resuming
 * whatever is already there) and makes every registered figure and table.
 *
 *   --scale quick   the files' [scale.quick] sections: same shape, fewer
 *                   repeats and steps; results.db, plots/   (the default)
 *   --scale paper   the files as written (200 repeats); results-paper.db,
 *                   plots/paper/ */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/data_path.h"
#include "core/mem.h"
#include "cli/opts.h"
#include "cli/run_report.h"
#include "plot/plot.h"
#include "sweep/runner.h"
#include "sweep/sweep.h"

/* The sweeps, in the order they run (cheapest first, so the first figures
 * can be looked at early). */
static const char *const sweep_files[] = {
    "experiments/mmoe/fig2.ini", "experiments/mmoe/fig3.ini", "experiments/mmoe/gates.ini",
    "experiments/mmoe/fig4.ini", "experiments/mmoe/fig5.ini",
};

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int run_sweeps(const char *scale, const char *db, int jobs, bool progress, err_t *err) {
    const int n = (int)(sizeof sweep_files / sizeof sweep_files[0]);
    for (int i = 0; i < n; i++) {
        char installed[4200]; /* the installed copy, when not in the current directory */
        const char *file = cli_data_path(sweep_files[i], installed, sizeof installed);
        if (access(file, R_OK) != 0)
            return err_set(err, ERR_USAGE,
                           "%s not found: run mtlab reproduce from the repository root",
                           sweep_files[i]);
        sweep_t *sw;
        if (sweep_load_scaled(file, strcmp(scale, "quick") == 0 ? "quick" : NULL, &sw,
                              err))
            return -1;
        printf("[%d/%d] %s: %d trials\n", i + 1, n, sw->name, sw->n_trials);
        fflush(stdout);
        run_report_t report = {.cmd = "reproduce", .sw = sw, .progress = progress};
        runner_opts_t ro = {.db_path = db,
                            .jobs = jobs,
                            .progress = progress,
                            .on_event = run_report_event,
                            .ctx = &report};
        runner_summary_t sum;
        int rc = runner_run(sw, &ro, &sum, err);
        run_report_end(&report);
        if (rc == 0)
            printf("      %d done, %d failed; this run trained %d in %.1f s\n", sum.counts.done,
                   sum.counts.failed, sum.trained, sum.seconds);
        sweep_free(sw);
        if (rc) return -1;
    }
    return 0;
}

static int make_plots(const char *db, const char *out_dir, const char *format, bool render,
                      err_t *err) {
    int n, failed = 0;
    const plot_figure_t *all = plot_registry(&n);
    for (int i = 0; i < n; i++) {
        plot_output_t out;
        err_t perr = {0};
        if (plot_make(db, all[i].name, out_dir, format, render, &out, &perr) != 0) {
            fprintf(stderr, "mtlab reproduce: %s: %s\n", all[i].name, perr.msg);
            failed++;
            continue;
        }
        if (out.table[0])
            printf("  %-18s %s\n", all[i].name, out.table);
        else
            printf("  %-18s %s%s%s\n", all[i].name, out.script, out.rendered ? " -> " : "",
                   out.rendered ? out.image : "");
        if (out.no_gnuplot && i == 0)
            printf("  (gnuplot is not installed: run `gnuplot FILE.gp` where it is)\n");
    }
    if (failed) return err_set(err, ERR_FAIL, "%d of %d figures failed (see above)", failed, n);
    return 0;
}

int cmd_reproduce(int argc, char **argv) {
    const char *scale = "quick", *db = NULL, *out_dir = NULL, *format = "png";
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int jobs = cores > 0 ? (int)cores : 1;
    bool no_render = false, quiet = false, plots_only = false;
    opt_t opts[] = {
        {"scale", OPT_STRING, &scale, "S",
         "quick (about 1.5 minutes on 2 cores) or paper (200 repeats, about 70 minutes)", 1, 0, 0},
        {"db", OPT_STRING, &db, "FILE",
         "store (default: results.db, or results-paper.db for paper)", 1, 0, 0},
        {"out", OPT_STRING, &out_dir, "DIR", "figures (default: plots, or plots/paper for paper)",
         1, 0, 0},
        {"jobs", OPT_INT, &jobs, "N", "worker processes (default: the number of cores)", 1, 1024,
         0},
        {"format", OPT_STRING, &format, "F", "png, svg or pdf", 1, 0, 0},
        {"no-render", OPT_FLAG, &no_render, NULL,
         "write the gnuplot scripts without running gnuplot", 1, 0, 0},
        {"plots-only", OPT_FLAG, &plots_only, NULL, "only remake the figures from the store", 1, 0,
         0},
        {"quiet", OPT_FLAG, &quiet, NULL, "no progress line even on a terminal", 1, 0, 0},
    };
    const int n_opts = (int)(sizeof opts / sizeof opts[0]);
    const char *pos[1];
    int n_pos;
    int rc = cli_options("reproduce", "mtlab reproduce [--scale quick|paper] [OPTIONS]",
                         "Runs the MMoE paper's synthetic study (experiments/mmoe/*.ini) into the\n"
                         "store and makes every figure and table (mtlab plot --list).  Re-running\n"
                         "resumes: finished trials are kept.  Run it from the repository root (an\n"
                         "installed mtlab reads PREFIX/share/mtlab/experiments/mmoe/ instead).",
                         opts, n_opts, argc, argv, pos, 0, &n_pos);
    if (rc != CLI_CONTINUE) return rc;
    err_t err = {0};
    bool paper = strcmp(scale, "paper") == 0;
    if (!paper && strcmp(scale, "quick") != 0) {
        err_set(&err, ERR_USAGE, "--scale: '%s' is not one of quick, paper", scale);
        return cli_fail("reproduce", &err);
    }
    if (!db) db = paper ? "results-paper.db" : "results.db";
    if (!out_dir) out_dir = paper ? "plots/paper" : "plots";

    double t0 = now();
    printf("mtlab reproduce --scale %s: store %s, figures in %s/\n", scale, db, out_dir);
    if (!plots_only && run_sweeps(scale, db, jobs, !quiet && isatty(2), &err))
        return cli_fail("reproduce", &err);
    printf("figures and tables:\n");
    if (make_plots(db, out_dir, format, !no_render, &err)) return cli_fail("reproduce", &err);
    printf("done in %.0f s\n", now() - t0);
    return 0;
}
