/* cmd_diff.c -- `mtlab diff A B`: two trials side by side: what differs in
 * their configs (keys only in A, only in B, different values), their seeds,
 * their final metrics with the difference B - A, and with --plot FILE.gp a
 * self-contained gnuplot script overlaying one metric's curves.
 *
 * A trial's final metric is, as in the runs table (store/runs.h), its last
 * value up to the final step, so the data measures of step 0 are compared
 * too.  The script is the `plot --curves` writer's (plot/curves.h) with one
 * line per trial (n = 1 at each step: no band). */
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/opts.h"
#include "core/mem.h"
#include "plot/curves.h"
#include "store/query.h"
#include "store/store.h"
#include "sweep/keys.h"

static const char *or_dash(const char *s) {
    return s ? s : "-";
}

/* The trial id in `text`; ERR_USAGE naming it when it is not one. */
static int parse_trial(const char *text, int64_t *id, err_t *err) {
    long long v;
    if (parse_long(text, &v) || v < 1)
        return err_set(err, ERR_USAGE, "'%s' is not a trial id (a positive integer)", text);
    *id = (int64_t)v;
    return 0;
}

/* name, value: the trial's final metrics (the last value of each up to its
 * final step), by name. */
static int final_metrics(store_t *s, int64_t id, store_table_t **out, err_t *err) {
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT m.name, m.value FROM metric m JOIN trial t ON t.id = m.trial_id"
             " WHERE t.id = %" PRId64 " AND m.step = (SELECT max(step) FROM metric"
             " WHERE trial_id = t.id AND name = m.name AND step <= t.final_step)"
             " ORDER BY m.name",
             id);
    return store_query(s, sql, out, err);
}

/* A cell as a number; false for NULL or text. */
static bool cell_number(const char *cell, double *v) {
    return cell && parse_double(cell, v) == 0;
}

static void print_header(const char *label, const store_trial_info_t *t) {
    printf("%s trial %" PRId64 ": experiment %s (id %" PRId64 "), model %s, repeat %d, status %s",
           label, t->id, or_dash(t->experiment), t->experiment_id, or_dash(t->model), t->repeat,
           or_dash(t->status));
    if (t->status && strcmp(t->status, "done") != 0 && t->has_final_step)
        printf(" (stopped at step %d)", t->final_step);
    printf("\n");
}

static int max_width(const store_table_t *t, int col, int w) {
    for (int r = 0; r < t->n_rows; r++) {
        const char *c = store_table_cell(t, r, col);
        if (c && (int)strlen(c) > w) w = (int)strlen(c);
    }
    return w;
}

/* The config diff: a merge of the two key-sorted param tables. */
static void print_config(const store_trial_info_t *a, const store_trial_info_t *b) {
    const store_table_t *pa = a->params, *pb = b->params;
    int w = max_width(pb, 0, max_width(pa, 0, 3));
    int wa = max_width(pa, 1, 1);
    int same = 0, differ = 0, only_a = 0, only_b = 0;
    /* two passes: count, then print by kind */
    for (int pass = 0; pass < 4; pass++) {
        if (pass == 1 && differ) printf("  differ:\n    %-*s  %-*s  %s\n", w, "key", wa, "A", "B");
        if (pass == 2 && only_a) printf("  only in A (trial %" PRId64 "):\n", a->id);
        if (pass == 3 && only_b) printf("  only in B (trial %" PRId64 "):\n", b->id);
        int i = 0, j = 0;
        while (i < pa->n_rows || j < pb->n_rows) {
            const char *ka = i < pa->n_rows ? store_table_cell(pa, i, 0) : NULL;
            const char *kb = j < pb->n_rows ? store_table_cell(pb, j, 0) : NULL;
            int c = !ka ? 1 : !kb ? -1 : strcmp(ka, kb);
            if (c == 0) {
                const char *va = store_table_cell(pa, i, 1), *vb = store_table_cell(pb, j, 1);
                bool eq = (va == NULL && vb == NULL) || (va && vb && strcmp(va, vb) == 0);
                if (pass == 0) eq ? same++ : differ++;
                if (pass == 1 && !eq)
                    printf("    %-*s  %-*s  %s\n", w, ka, wa, or_dash(va), or_dash(vb));
                i++, j++;
            } else if (c < 0) {
                if (pass == 0) only_a++;
                if (pass == 2)
                    printf("    %-*s = %s\n", w, ka, or_dash(store_table_cell(pa, i, 1)));
                i++;
            } else {
                if (pass == 0) only_b++;
                if (pass == 3)
                    printf("    %-*s = %s\n", w, kb, or_dash(store_table_cell(pb, j, 1)));
                j++;
            }
        }
        if (pass == 0)
            printf("\nconfig: %d key%s the same, %d differ, %d only in A, %d only in B\n", same,
                   same == 1 ? "" : "s", differ, only_a, only_b);
    }
}

static void print_seeds(const store_trial_info_t *a, const store_trial_info_t *b) {
    printf("\nseeds:      %20s  %20s\n", "A", "B");
    printf("  data_seed %20" PRId64 "  %20" PRId64 "%s\n", a->data_seed, b->data_seed,
           a->data_seed == b->data_seed ? "  (same)" : "");
    printf("  init_seed %20" PRId64 "  %20" PRId64 "%s\n", a->init_seed, b->init_seed,
           a->init_seed == b->init_seed ? "  (same)" : "");
}

static void put_value(const char *cell, int w) {
    double v;
    if (cell_number(cell, &v))
        printf("  %*.6g", w, v);
    else
        printf("  %*s", w, or_dash(cell));
}

/* Final metrics side by side: name, A, B, B - A (a merge by name). */
static void print_metrics(const store_table_t *ma, const store_table_t *mb) {
    if (ma->n_rows == 0 && mb->n_rows == 0) {
        printf("\nfinal metrics: none recorded\n");
        return;
    }
    int w = max_width(mb, 0, max_width(ma, 0, 6));
    printf("\nfinal metrics:\n  %-*s  %12s  %12s  %12s\n", w, "metric", "A", "B", "B - A");
    int i = 0, j = 0;
    while (i < ma->n_rows || j < mb->n_rows) {
        const char *ka = i < ma->n_rows ? store_table_cell(ma, i, 0) : NULL;
        const char *kb = j < mb->n_rows ? store_table_cell(mb, j, 0) : NULL;
        int c = !ka ? 1 : !kb ? -1 : strcmp(ka, kb);
        const char *va = c <= 0 ? store_table_cell(ma, i, 1) : NULL;
        const char *vb = c >= 0 ? store_table_cell(mb, j, 1) : NULL;
        printf("  %-*s", w, c <= 0 ? ka : kb);
        put_value(va, 12);
        put_value(vb, 12);
        double x, y;
        if (cell_number(va, &x) && cell_number(vb, &y))
            printf("  %12.6g", y - x);
        else
            printf("  %12s", "-");
        printf("\n");
        if (c <= 0) i++;
        if (c >= 0) j++;
    }
}

/* ERR_USAGE when neither trial recorded `metric`, with the closest name. */
static int check_metric(store_t *s, int64_t a, int64_t b, const char *metric, err_t *err) {
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT DISTINCT name FROM metric WHERE trial_id IN (%" PRId64 ", %" PRId64
             ") ORDER BY name",
             a, b);
    store_table_t *t;
    if (store_query(s, sql, &t, err)) return -1;
    const char **names = mem_calloc((size_t)t->n_rows + 1, sizeof *names);
    int rc = 0, found = 0;
    for (int r = 0; r < t->n_rows; r++) {
        if (names) names[r] = store_table_cell(t, r, 0);
        found = found || strcmp(store_table_cell(t, r, 0), metric) == 0;
    }
    if (!found) {
        const char *near = names ? sweep_suggest(metric, names, t->n_rows) : NULL;
        if (near)
            rc = err_set(err, ERR_USAGE,
                         "--metric: trials %" PRId64 " and %" PRId64
                         " have no metric '%s' (did you mean '%s'?)",
                         a, b, metric, near);
        else
            rc = err_set(err, ERR_USAGE,
                         "--metric: trials %" PRId64 " and %" PRId64
                         " have no metric '%s' (mtlab show %" PRId64 " lists them)",
                         a, b, metric, a);
    }
    mem_free(names);
    store_table_free(t);
    return rc;
}

/* Writes the overlay script of `metric` for trials a and b to `path`. */
static int write_plot(store_t *s, const char *db, int64_t a, int64_t b, const char *metric,
                      const char *path, err_t *err) {
    if (check_metric(s, a, b, metric, err)) return -1;
    /* The image next to the script: FILE.gp -> FILE.png. */
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t len = strlen(base);
    if (len >= 3 && strcmp(base + len - 3, ".gp") == 0) len -= 3;
    if (len == 0) return err_set(err, ERR_USAGE, "--plot: '%s' names no file", path);
    char image[1024], title[128];
    snprintf(image, sizeof image, "%.*s.png", (int)len, base);
    snprintf(title, sizeof title, "trials %" PRId64 " and %" PRId64, a, b);
    /* the metric as an SQL literal (quotes doubled) */
    char lit[512];
    size_t n = 0;
    for (const char *p = metric; *p; p++) {
        if (n + 3 >= sizeof lit) return err_set(err, ERR_USAGE, "--metric: too long");
        lit[n++] = *p;
        if (*p == '\'') lit[n++] = '\'';
    }
    lit[n] = '\0';
    /* (trial, model, step, value), A's rows first: one line per trial,
     * labelled "trial 3, model mmoe" */
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT t.id AS trial, t.model AS model, m.step, m.value FROM trial t"
             " JOIN metric m ON m.trial_id = t.id AND m.name = '%s'"
             " WHERE t.id IN (%" PRId64 ", %" PRId64 ") ORDER BY t.id = %" PRId64 ", m.step",
             lit, a, b, b);
    FILE *f = fopen(path, "w");
    if (!f) return err_set(err, ERR_FAIL, "--plot: cannot write %s", path);
    char origin[256];
    snprintf(origin, sizeof origin, "mtlab diff %" PRId64 " %" PRId64 " --metric %s", a, b, metric);
    curves_job_t job = {db, title, metric, "png", image, CURVES_BAND_NONE, origin, NULL};
    int n_lines = 0;
    int rc = curves_write(s, sql, &job, f, &n_lines, err);
    if (fclose(f) != 0 && rc == 0) rc = err_set(err, ERR_FAIL, "--plot: cannot write %s", path);
    if (rc) remove(path);
    return rc;
}

int cmd_diff(int argc, char **argv) {
    const char *db = "results.db", *plot = NULL, *metric = NULL;
    opt_t opts[] = {
        {"db", OPT_STRING, &db, "FILE", "the SQLite store", 1, 0, 0},
        {"plot", OPT_STRING, &plot, "FILE.gp",
         "also write a gnuplot script overlaying the two trials' curves of --metric", 1, 0, 0},
        {"metric", OPT_STRING, &metric, "NAME",
         "the metric drawn by --plot (default val/loss/total)", 1, 0, 0},
    };
    const int n_opts = (int)(sizeof opts / sizeof opts[0]);
    err_t err = {0};
    const char *pos[2];
    int n_pos;
    int rc = cli_options(
        "diff", "mtlab diff TRIAL_A TRIAL_B [--db FILE] [--plot FILE.gp [--metric NAME]]",
        "Compares two trials: the config keys that differ (values, keys only in one),\n"
        "their seeds, and their final metrics side by side with the difference B - A.\n"
        "--plot writes a self-contained gnuplot script drawing both trials' curves of\n"
        "one metric (gnuplot FILE.gp draws FILE.png next to it).",
        opts, n_opts, argc, argv, pos, 2, &n_pos);
    if (rc != CLI_CONTINUE) return rc;
    int64_t a = 0, b = 0;
    if (n_pos < 2) {
        err_set(&err, ERR_USAGE,
                "needs two trial ids: mtlab diff A B (mtlab trials EXP lists them)");
        return cli_fail("diff", &err);
    }
    if (parse_trial(pos[0], &a, &err) || parse_trial(pos[1], &b, &err))
        return cli_fail("diff", &err);
    if (metric && !plot) {
        err_set(&err, ERR_USAGE, "--metric goes with --plot FILE.gp");
        return cli_fail("diff", &err);
    }
    if (plot && !plot[0]) {
        err_set(&err, ERR_USAGE, "--plot: an empty file name");
        return cli_fail("diff", &err);
    }

    store_t *s;
    if (store_open(&s, db, STORE_READONLY, &err)) return cli_fail("diff", &err);
    store_trial_info_t ta = {0}, tb = {0};
    store_table_t *ma = NULL, *mb = NULL;
    bool have_a = false, have_b = false;
    int status = 0;
    if (store_trial_info(s, a, &ta, &err)) {
        err.kind = ERR_USAGE; /* an id the user typed */
        status = cli_fail("diff", &err);
        goto done;
    }
    have_a = true;
    if (store_trial_info(s, b, &tb, &err)) {
        err.kind = ERR_USAGE;
        status = cli_fail("diff", &err);
        goto done;
    }
    have_b = true;
    if (final_metrics(s, a, &ma, &err) || final_metrics(s, b, &mb, &err)) {
        status = cli_fail("diff", &err);
        goto done;
    }
    /* the script first: a bad --metric prints nothing else */
    if (plot && write_plot(s, db, a, b, metric ? metric : "val/loss/total", plot, &err)) {
        status = cli_fail("diff", &err);
        goto done;
    }
    print_header("A:", &ta);
    print_header("B:", &tb);
    print_config(&ta, &tb);
    print_seeds(&ta, &tb);
    print_metrics(ma, mb);
    if (plot)
        printf("\nwrote %s (%s of both trials; gnuplot %s draws it)\n", plot,
               metric ? metric : "val/loss/total", plot);
done:
    store_table_free(ma);
    store_table_free(mb);
    if (have_a) store_trial_info_free(&ta);
    if (have_b) store_trial_info_free(&tb);
    store_close(s);
    if (status == 0 && (fflush(stdout) != 0 || ferror(stdout))) {
        err_set(&err, ERR_FAIL, "cannot write to standard output");
        status = cli_fail("diff", &err);
    }
    return status;
}
