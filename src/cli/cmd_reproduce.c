/* cmd_reproduce.c -- `mtlab reproduce`: a paper's synthetic study end to
 * end.  Runs the paper's sweeps into one store (resuming whatever is already
 * there) and makes every registered figure and table of that paper.
 *
 *   --paper NAME    one paper of the table below, or `all` (each in turn)
 *   --scale quick   the files' [scale.quick] sections: same shape, fewer
 *                   repeats and steps; results.db, plots/   (the default)
 *   --scale paper   the files as written (the papers' run counts);
 *                   results-paper.db, plots/paper/
 *   --scale NAME    the files' [scale.NAME] sections (the tests' `tiny`);
 *                   results-NAME.db, plots/NAME/ */
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

/* A paper: its sweeps, in the order they run (cheapest first, so the first
 * figures can be looked at early), and its figures: every registered figure
 * and table whose name starts with `figures` (mtlab plot --list). */
typedef struct {
    const char *name;    /* --paper NAME */
    const char *title;   /* one line for --help and the first line printed */
    const char *figures; /* figure-name prefix: "mmoe-" */
    const char *const *sweeps;
    int n_sweeps;
} paper_t;

static const char *const mmoe_sweeps[] = {
    "experiments/mmoe/fig2.ini", "experiments/mmoe/fig3.ini", "experiments/mmoe/gates.ini",
    "experiments/mmoe/fig4.ini", "experiments/mmoe/fig5.ini",
    "experiments/mmoe/baselines.ini",
};

static const char *const adatt_sweeps[] = {
    "experiments/adatt/ablation.ini", "experiments/adatt/experts.ini",
    "experiments/adatt/levels.ini",   "experiments/adatt/comparison.ini",
    "experiments/adatt/between.ini",
};

static const char *const snr_sweeps[] = {
    "experiments/snr/lambda.ini",
    "experiments/snr/recovery.ini",
    "experiments/snr/size.ini",
};

static const char *const mtnas_sweeps[] = {
    "experiments/mtnas/rho0.ini",
    "experiments/mtnas/variants.ini",
    "experiments/mtnas/groups.ini",
};

#define SWEEPS(a) a, (int)(sizeof a / sizeof a[0])

/* `all` runs them in this order (the order of the issues' dependencies). */
static const paper_t papers[] = {
    {"mmoe", "MMoE (Ma et al., KDD 2018), synthetic section 3-5", "mmoe-", SWEEPS(mmoe_sweeps)},
    {"adatt", "AdaTT (Li et al., KDD 2023) section 4 on grouped synthetic tasks", "adatt-",
     SWEEPS(adatt_sweeps)},
    {"snr", "SNR (Ma et al., AAAI 2019) on synthetic grouped tasks: lambda, recovery, size",
     "snr-", SWEEPS(snr_sweeps)},
    {"mtnas", "MTNAS (Chen et al., WWW'21 Companion), synthetic section 5.1 and Table 5", "mtnas-",
     SWEEPS(mtnas_sweeps)},
};

#define N_PAPERS ((int)(sizeof papers / sizeof papers[0]))
#define DEFAULT_PAPER "mmoe"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The [scale.<name>] section a scale applies (NULL: the files as written). */
static const char *scale_section(const char *scale) {
    return strcmp(scale, "paper") == 0 ? NULL : scale;
}

static int run_sweeps(const paper_t *p, const char *scale, const char *db, int jobs,
                      bool progress, err_t *err) {
    const int n = p->n_sweeps;
    for (int i = 0; i < n; i++) {
        char installed[4200]; /* the installed copy, when not in the current directory */
        const char *file = cli_data_path(p->sweeps[i], installed, sizeof installed);
        if (access(file, R_OK) != 0)
            return err_set(err, ERR_USAGE,
                           "%s not found: run mtlab reproduce from the repository root",
                           p->sweeps[i]);
        sweep_t *sw;
        if (sweep_load_scaled(file, scale_section(scale), &sw, err)) return -1;
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

static int make_plots(const paper_t *p, const char *db, const char *out_dir, const char *format,
                      bool render, err_t *err) {
    int n, failed = 0, made = 0;
    const plot_figure_t *all = plot_registry(&n);
    for (int i = 0; i < n; i++) {
        if (strncmp(all[i].name, p->figures, strlen(p->figures)) != 0) continue;
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
        if (out.no_gnuplot && made == 0)
            printf("  (gnuplot is not installed: run `gnuplot FILE.gp` where it is)\n");
        made++;
    }
    if (failed)
        return err_set(err, ERR_FAIL, "%s: %d of %d figures failed (see above)", p->name, failed,
                       failed + made);
    return 0;
}

/* The papers --paper names: one, or all of them (*n receives the count). */
static const paper_t *find_papers(const char *name, int *n, err_t *err) {
    if (strcmp(name, "all") == 0) {
        *n = N_PAPERS;
        return papers;
    }
    for (int i = 0; i < N_PAPERS; i++)
        if (strcmp(papers[i].name, name) == 0) {
            *n = 1;
            return &papers[i];
        }
    char known[200] = "";
    for (int i = 0; i < N_PAPERS; i++) {
        size_t len = strlen(known);
        snprintf(known + len, sizeof known - len, "%s, ", papers[i].name);
    }
    err_set(err, ERR_USAGE, "--paper: unknown paper '%s' (known: %sall)", name, known);
    return NULL;
}

int cmd_reproduce(int argc, char **argv) {
    const char *scale = "quick", *paper_name = DEFAULT_PAPER, *db = NULL, *out_dir = NULL,
               *format = "png";
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int jobs = cores > 0 ? (int)cores : 1;
    bool no_render = false, quiet = false, plots_only = false;
    opt_t opts[] = {
        {"paper", OPT_STRING, &paper_name, "P",
         "which paper: mmoe (the default), or all (mtlab reproduce --help lists them)", 1, 0, 0},
        {"scale", OPT_STRING, &scale, "S",
         "quick (MMoE: about 2 minutes on 2 cores), paper (the papers' run counts; MMoE: 200 "
         "repeats, about 70 minutes), or the name of the files' [scale.NAME] sections",
         1, 0, 0},
        {"db", OPT_STRING, &db, "FILE",
         "store (default: results.db; results-paper.db for paper, results-NAME.db otherwise)", 1,
         0, 0},
        {"out", OPT_STRING, &out_dir, "DIR",
         "figures (default: plots; plots/paper for paper, plots/NAME otherwise)", 1, 0, 0},
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
    char help[1024];
    int len = snprintf(help, sizeof help,
                       "Runs a paper's synthetic study (its sweeps in experiments/) into the\n"
                       "store and makes its figures and tables (mtlab plot --list).  Re-running\n"
                       "resumes: finished trials are kept.  Run it from the repository root (an\n"
                       "installed mtlab reads PREFIX/share/mtlab/experiments/ instead).\n"
                       "Papers (--paper):");
    for (int i = 0; i < N_PAPERS && len > 0 && (size_t)len < sizeof help; i++)
        len += snprintf(help + len, sizeof help - (size_t)len, "\n  %-6s %s", papers[i].name,
                        papers[i].title);
    int rc = cli_options("reproduce",
                         "mtlab reproduce [--paper P|all] [--scale quick|paper] [OPTIONS]", help,
                         opts, n_opts, argc, argv, pos, 0, &n_pos);
    if (rc != CLI_CONTINUE) return rc;
    err_t err = {0};
    int n_run;
    const paper_t *run = find_papers(paper_name, &n_run, &err);
    if (!run) return cli_fail("reproduce", &err);
    if (!scale[0] || strlen(scale) > 24 || strpbrk(scale, "/ \t")) {
        err_set(&err, ERR_USAGE, "--scale: '%s' is not quick, paper or a scale section's name",
                scale);
        return cli_fail("reproduce", &err);
    }
    bool quick = strcmp(scale, "quick") == 0;
    char db_buf[64], out_buf[64];
    if (!db) {
        snprintf(db_buf, sizeof db_buf, "results-%s.db", scale);
        db = quick ? "results.db" : db_buf;
    }
    if (!out_dir) {
        snprintf(out_buf, sizeof out_buf, "plots/%s", scale);
        out_dir = quick ? "plots" : out_buf;
    }

    double t0 = now();
    for (int k = 0; k < n_run; k++) {
        const paper_t *p = &run[k];
        double tp = now();
        printf("mtlab reproduce --paper %s --scale %s: %s; store %s, figures in %s/\n", p->name,
               scale, p->title, db, out_dir);
        if (!plots_only && run_sweeps(p, scale, db, jobs, !quiet && isatty(2), &err))
            return cli_fail("reproduce", &err);
        printf("figures and tables:\n");
        if (make_plots(p, db, out_dir, format, !no_render, &err))
            return cli_fail("reproduce", &err);
        printf("%s done in %.0f s\n", p->name, now() - tp);
    }
    if (n_run > 1) printf("all done in %.0f s\n", now() - t0);
    return 0;
}
