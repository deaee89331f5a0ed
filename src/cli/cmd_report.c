/* cmd_report.c -- `mtlab report EXP > report.html`: the experiment as one
 * self-contained HTML file (plot/report.h): provenance and spec, shared
 * config, mean +- 95 % CI per setting, the curves as inline SVG, the runs
 * table and the notes. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/opts.h"
#include "core/mem.h"
#include "plot/report.h"
#include "store/store.h"

#define REPORT_MAX_METRICS 16

int cmd_report(int argc, char **argv) {
    const char *db = "results.db", *out = NULL, *metrics = NULL;
    opt_t opts[] = {
        {"db", OPT_STRING, &db, "FILE", "the SQLite store", 1, 0, 0},
        {"out", OPT_STRING, &out, "FILE", "write the report to FILE (default: standard output)", 1,
         0, 0},
        {"metrics", OPT_STRING, &metrics, "LIST",
         "comma-separated metrics drawn as curves (default val/loss/total,test/loss/total)", 1, 0,
         0},
    };
    const int n_opts = (int)(sizeof opts / sizeof opts[0]);
    err_t err = {0};
    const char *pos[1];
    int n_pos;
    int rc = cli_options(
        "report", "mtlab report EXPERIMENT [--db FILE] [--out FILE] [--metrics LIST]",
        "Writes the experiment (its name, or its id) as ONE self-contained HTML file,\n"
        "viewable from disk in any browser (no server, no script, no other file):\n"
        "provenance and the sweep file, the config every trial shares, per setting\n"
        "the mean +- 95 % confidence interval (Student t) of every final metric, the\n"
        "curves as inline SVG with their bands and numbers, the runs table, the notes.\n"
        "  mtlab report grid > grid.html",
        opts, n_opts, argc, argv, pos, 1, &n_pos);
    if (rc != CLI_CONTINUE) return rc;
    if (n_pos == 0) {
        err_set(&err, ERR_USAGE, "missing EXPERIMENT (mtlab ls lists them)");
        return cli_fail("report", &err);
    }
    /* the metric list, split in place */
    char list[1024];
    const char *names[REPORT_MAX_METRICS];
    int n_metrics = 0;
    if (snprintf(list, sizeof list, "%s", metrics ? metrics : "val/loss/total,test/loss/total") >=
        (int)sizeof list) {
        err_set(&err, ERR_USAGE, "--metrics: the list is too long");
        return cli_fail("report", &err);
    }
    for (char *save, *m = strtok_r(list, ",", &save); m; m = strtok_r(NULL, ",", &save)) {
        while (*m == ' ')
            m++;
        size_t len = strlen(m);
        while (len > 0 && m[len - 1] == ' ')
            m[--len] = '\0';
        if (!*m) continue;
        if (n_metrics == REPORT_MAX_METRICS) {
            err_set(&err, ERR_USAGE, "--metrics: at most %d metrics", REPORT_MAX_METRICS);
            return cli_fail("report", &err);
        }
        names[n_metrics++] = m;
    }
    if (n_metrics == 0) {
        err_set(&err, ERR_USAGE, "--metrics: no metric named");
        return cli_fail("report", &err);
    }
    if (out && !out[0]) {
        err_set(&err, ERR_USAGE, "--out: an empty file name");
        return cli_fail("report", &err);
    }

    store_t *s;
    if (store_open(&s, db, STORE_READONLY, &err)) return cli_fail("report", &err);
    FILE *f = stdout;
    if (out && !(f = fopen(out, "w"))) {
        err_set(&err, ERR_FAIL, "--out: cannot write %s", out);
        store_close(s);
        return cli_fail("report", &err);
    }
    report_job_t job = {pos[0], names, n_metrics, metrics != NULL};
    int status = 0;
    if (report_write(s, &job, f, &err)) status = cli_fail("report", &err);
    if (out) {
        if (fclose(f) != 0 && status == 0) {
            err_set(&err, ERR_FAIL, "--out: cannot write %s", out);
            status = cli_fail("report", &err);
        }
        if (status != 0) remove(out);
    } else if (status == 0 && (fflush(stdout) != 0 || ferror(stdout))) {
        err_set(&err, ERR_FAIL, "cannot write to standard output");
        status = cli_fail("report", &err);
    }
    store_close(s);
    if (status == 0 && out) printf("wrote %s\n", out);
    return status;
}
