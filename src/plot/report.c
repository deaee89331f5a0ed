/* report.c -- an experiment as one self-contained HTML file (contract:
 * report.h).
 *
 * Everything comes from three reads: the experiment row, the runs table
 * (store/runs.h) held in memory, and per drawn metric its values over the
 * done trials ordered by step.  Settings are found once on the runs table
 * (done rows with equal model and varying-key cells, in order of their
 * first trial) and used by both the summary and the curves, so a curve and
 * its row in the settings table always describe the same trials. */
#include "plot/report.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "core/mem.h"
#include "core/version.h"
#include "plot/curves.h"
#include "plot/gp.h"
#include "plot/svg.h"
#include "store/query.h"
#include "store/runs.h"
#include "sweep/keys.h"

#define REPORT_FIG_W 760
#define REPORT_FIG_H 380

static const char *const report_style =
    "body{font-family:sans-serif;margin:2em;max-width:80em;color:#222}"
    "table{border-collapse:collapse;margin:0.5em 0 1.5em}"
    "th,td{border:1px solid #ccc;padding:2px 8px;text-align:left;white-space:nowrap}"
    "th{background:#f2f2f2}td.n{text-align:right;font-variant-numeric:tabular-nums}"
    "pre{background:#f7f7f7;border:1px solid #ddd;padding:0.8em;overflow-x:auto}"
    "div.wide{overflow-x:auto}figure{margin:1em 0}";

/* ---- small writers ----------------------------------------------------------- */

static void put_text(FILE *f, const char *s) {
    svg_put_escaped(f, s ? s : "");
}

/* <tag>text</tag> */
static void put_elem(FILE *f, const char *tag, const char *text) {
    fprintf(f, "<%s>", tag);
    put_text(f, text);
    fprintf(f, "</%s>", tag);
}

/* A cell of the runs table: numbers right-aligned (reals to 6 digits), text
 * escaped, NULL empty. */
static void put_cell(FILE *f, const char *cell, int type) {
    if (!cell) {
        fputs("<td></td>", f);
    } else if (type == SQLITE_FLOAT) {
        fprintf(f, "<td class=\"n\">%.6g</td>", strtod(cell, NULL));
    } else if (type == SQLITE_INTEGER) {
        fputs("<td class=\"n\">", f);
        put_text(f, cell);
        fputs("</td>", f);
    } else {
        put_elem(f, "td", cell);
    }
}

/* "mean ± half" (half blank for n < 2) */
static void put_stat(FILE *f, int n, double mean, double half) {
    if (n == 0)
        fputs("<td class=\"n\"></td>", f);
    else if (isfinite(half))
        fprintf(f, "<td class=\"n\">%.6g \xc2\xb1 %.3g</td>", mean, half);
    else
        fprintf(f, "<td class=\"n\">%.6g</td>", mean);
}

/* ---- settings ----------------------------------------------------------------- */

typedef struct {
    const store_table_t *runs;
    const store_runs_t *cols;
    int *group_of; /* [runs rows] the setting of a done trial, else -1 */
    int *first;    /* [n_groups] the row of each setting's first trial */
    int n_groups;
} settings_t;

/* The columns that name a setting: model, then the varying keys. */
static bool is_setting_col(const store_runs_t *c, int col) {
    return col == 1 || (col >= c->n_fixed && col < c->n_fixed + c->n_keys);
}

static bool same_setting(const settings_t *st, int r1, int r2) {
    for (int c = 0; c < st->cols->n_fixed + st->cols->n_keys; c++) {
        if (!is_setting_col(st->cols, c)) continue;
        const char *a = store_table_cell(st->runs, r1, c), *b = store_table_cell(st->runs, r2, c);
        if ((a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0)) return false;
    }
    return true;
}

static int settings_find(settings_t *st, err_t *err) {
    const store_table_t *t = st->runs;
    st->group_of = mem_calloc((size_t)t->n_rows + 1, sizeof *st->group_of);
    st->first = mem_calloc((size_t)t->n_rows + 1, sizeof *st->first);
    if (!st->group_of || !st->first) return err_set(err, ERR_FAIL, "out of memory");
    for (int r = 0; r < t->n_rows; r++) {
        st->group_of[r] = -1;
        const char *status = store_table_cell(t, r, 3);
        if (!status || strcmp(status, "done") != 0) continue;
        int g = 0;
        while (g < st->n_groups && !same_setting(st, st->first[g], r))
            g++;
        if (g == st->n_groups) st->first[st->n_groups++] = r;
        st->group_of[r] = g;
    }
    return 0;
}

static void settings_free(settings_t *st) {
    mem_free(st->group_of);
    mem_free(st->first);
}

/* "model mmoe, data.correlation 0.5" */
static void setting_label(const settings_t *st, int g, char *out, size_t size) {
    size_t n = 0;
    out[0] = '\0';
    for (int c = 0; c < st->cols->n_fixed + st->cols->n_keys && n < size; c++) {
        if (!is_setting_col(st->cols, c)) continue;
        const char *v = store_table_cell(st->runs, st->first[g], c);
        if (!v) continue; /* a key of another family */
        n += (size_t)snprintf(out + n, size - n, "%s%s %s", n ? ", " : "", st->runs->names[c], v);
    }
}

/* ---- sections ----------------------------------------------------------------- */

static int put_provenance(FILE *f, store_t *s, int64_t id, err_t *err) {
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT e.name, e.description, e.spec, e.created, e.updated, e.code_version,"
             " (SELECT count(*) FROM trial WHERE experiment_id = e.id),"
             " (SELECT count(*) FROM trial WHERE experiment_id = e.id AND status = 'done'),"
             " (SELECT count(*) FROM trial WHERE experiment_id = e.id AND status = 'failed'),"
             " (SELECT count(*) FROM trial WHERE experiment_id = e.id AND status = 'pending'),"
             " (SELECT count(*) FROM trial WHERE experiment_id = e.id AND status = 'running')"
             " FROM experiment e WHERE e.id = %" PRId64,
             id);
    store_table_t *e;
    if (store_query(s, sql, &e, err)) return -1;
    if (e->n_rows != 1) {
        store_table_free(e);
        return err_set(err, ERR_FAIL, "experiment %" PRId64 " vanished", id);
    }
    const char *name = store_table_cell(e, 0, 0);
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<title>mtlab "
          "report: ",
          f);
    put_text(f, name);
    fprintf(f, "</title>\n<style>%s</style>\n</head>\n<body>\n<h1>", report_style);
    put_text(f, name);
    fputs("</h1>\n", f);
    if (store_table_cell(e, 0, 1) && store_table_cell(e, 0, 1)[0]) {
        fputs("<p id=\"description\">", f);
        put_text(f, store_table_cell(e, 0, 1));
        fputs("</p>\n", f);
    }
    fputs("<h2>Provenance</h2>\n<table id=\"provenance\">\n", f);
    const struct {
        const char *label;
        const char *value;
    } rows[] = {
        {"experiment", name},
        {"created", store_table_cell(e, 0, 3)},
        {"last continued", store_table_cell(e, 0, 4)},
        {"code version", store_table_cell(e, 0, 5)},
        {"store", store_path(s)},
        {"report written by", mtlab_version()},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        fputs("<tr>", f);
        put_elem(f, "th", rows[i].label);
        put_elem(f, "td", rows[i].value ? rows[i].value : "-");
        fputs("</tr>\n", f);
    }
    fprintf(f, "<tr><th>experiment id</th><td>%" PRId64 "</td></tr>\n", id);
    fprintf(f, "<tr><th>trials</th><td>");
    put_text(f, store_table_cell(e, 0, 6));
    fprintf(f, " (");
    put_text(f, store_table_cell(e, 0, 7));
    fprintf(f, " done, ");
    put_text(f, store_table_cell(e, 0, 8));
    fprintf(f, " failed, ");
    put_text(f, store_table_cell(e, 0, 9));
    fprintf(f, " pending, ");
    put_text(f, store_table_cell(e, 0, 10));
    fprintf(f, " running)</td></tr>\n</table>\n");
    fputs("<details open=\"open\"><summary>the sweep file (spec) as stored</summary>\n<pre "
          "id=\"spec\">",
          f);
    put_text(f, store_table_cell(e, 0, 2));
    fputs("</pre></details>\n", f);
    store_table_free(e);
    return 0;
}

/* The `mtlab run` invocations that trained the experiment's trials (the run
 * table, schema version 6): where, with which code, BLAS and CPU. */
static int put_run_records(FILE *f, store_t *s, int64_t id, err_t *err) {
    char sql[768];
    snprintf(sql, sizeof sql,
             "SELECT r.id AS run, count(t.id) AS trials, r.started, r.host, r.mtlab_version,"
             " r.dirty, r.compiler, r.real_type, r.blas_version, r.blas_core, r.cpu_model,"
             " r.jobs, r.shard FROM run r JOIN trial t ON t.run_id = r.id"
             " WHERE t.experiment_id = %" PRId64 " GROUP BY r.id ORDER BY r.id",
             id);
    store_table_t *t;
    if (store_query(s, sql, &t, err)) return -1;
    if (t->n_rows > 0) {
        fputs("<h3>Runs that trained its trials</h3>\n<div class=\"wide\"><table "
              "id=\"run-records\">\n<thead><tr>",
              f);
        for (int c = 0; c < t->n_cols; c++)
            put_elem(f, "th", t->names[c]);
        fputs("</tr></thead>\n<tbody>\n", f);
        for (int r = 0; r < t->n_rows; r++) {
            fputs("<tr>", f);
            for (int c = 0; c < t->n_cols; c++)
                put_cell(f, store_table_cell(t, r, c), store_table_type(t, r, c));
            fputs("</tr>\n", f);
        }
        fputs("</tbody></table></div>\n", f);
    }
    store_table_free(t);
    return 0;
}

static int put_config(FILE *f, store_t *s, int64_t id, err_t *err) {
    char sql[640];
    snprintf(sql, sizeof sql,
             "SELECT p.key, min(p.value) FROM param p JOIN trial t ON t.id = p.trial_id"
             " WHERE t.experiment_id = %" PRId64 " GROUP BY p.key"
             " HAVING count(DISTINCT p.value) = 1 AND count(*) = (SELECT count(*) FROM trial"
             " WHERE experiment_id = %" PRId64 ") ORDER BY p.key",
             id, id);
    store_table_t *t;
    if (store_query(s, sql, &t, err)) return -1;
    fputs("<h2>Config shared by every trial</h2>\n<table id=\"config\">\n", f);
    for (int r = 0; r < t->n_rows; r++) {
        fputs("<tr>", f);
        put_elem(f, "th", store_table_cell(t, r, 0));
        put_cell(f, store_table_cell(t, r, 1), store_table_type(t, r, 1));
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
    store_table_free(t);
    return 0;
}

static int put_settings(FILE *f, const settings_t *st, err_t *err) {
    const store_table_t *t = st->runs;
    const store_runs_t *c = st->cols;
    const int m0 = c->n_fixed + c->n_keys;
    fputs("<h2>Results per setting</h2>\n<p>One row per setting (the done trials with the same "
          "model and values of the keys that vary; repeats pooled): n trials, and for each "
          "final metric the mean \xc2\xb1 the half-width of its 95 % confidence interval, "
          "t(0.975, n - 1) \xc3\x97 sd / \xe2\x88\x9an with the sample sd (blank for n = "
          "1).</p>\n",
          f);
    if (st->n_groups == 0) {
        fputs("<p id=\"settings\">No trial is done yet.</p>\n", f);
        return 0;
    }
    double *v = mem_calloc((size_t)t->n_rows + 1, sizeof *v);
    if (!v) return err_set(err, ERR_FAIL, "out of memory");
    fputs("<div class=\"wide\"><table>\n<thead><tr>", f);
    for (int col = 0; col < m0; col++)
        if (is_setting_col(c, col)) put_elem(f, "th", t->names[col]);
    fputs("<th>n</th>", f);
    for (int col = m0; col < t->n_cols; col++)
        put_elem(f, "th", t->names[col]);
    fputs("</tr></thead>\n<tbody id=\"settings\">\n", f);
    for (int g = 0; g < st->n_groups; g++) {
        fputs("<tr>", f);
        for (int col = 0; col < m0; col++)
            if (is_setting_col(c, col))
                put_cell(f, store_table_cell(t, st->first[g], col),
                         store_table_type(t, st->first[g], col));
        int n_trials = 0;
        for (int r = 0; r < t->n_rows; r++)
            n_trials += st->group_of[r] == g;
        fprintf(f, "<td class=\"n\">%d</td>", n_trials);
        for (int col = m0; col < t->n_cols; col++) {
            int n = 0;
            for (int r = 0; r < t->n_rows; r++) {
                const char *cell = store_table_cell(t, r, col);
                if (st->group_of[r] == g && cell) v[n++] = strtod(cell, NULL);
            }
            double mean, sd, se;
            curves_stats(v, n, &mean, &sd, &se);
            put_stat(f, n, mean, n >= 2 ? curves_t975(n - 1) * se : NAN);
        }
        fputs("</tr>\n", f);
    }
    fputs("</tbody></table></div>\n", f);
    mem_free(v);
    return 0;
}

/* The row of trial `id` in the runs table (ordered by trial), or -1. */
static int row_of_trial(const store_table_t *t, long long id) {
    int lo = 0, hi = t->n_rows - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        long long v = strtoll(store_table_cell(t, mid, 0), NULL, 10);
        if (v == id) return mid;
        if (v < id)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

/* One figure: per setting the mean and 95 % band of `metric` at each step. */
static int put_curves(FILE *f, store_t *s, int64_t id, const settings_t *st, const char *metric,
                      int index, err_t *err) {
    char lit[512];
    size_t k = 0;
    for (const char *p = metric; *p && k + 3 < sizeof lit; p++) {
        lit[k++] = *p;
        if (*p == '\'') lit[k++] = '\'';
    }
    lit[k] = '\0';
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT m.trial_id, m.step, m.value FROM metric m JOIN trial t ON t.id = m.trial_id"
             " WHERE t.experiment_id = %" PRId64 " AND t.status = 'done' AND m.name = '%s'"
             " AND m.value IS NOT NULL ORDER BY m.step, m.trial_id",
             id, lit);
    store_table_t *m;
    if (store_query(s, sql, &m, err)) return -1;
    const int G = st->n_groups;
    /* steps: distinct, in order */
    int n_steps = 0;
    for (int r = 0; r < m->n_rows; r++)
        if (r == 0 || strcmp(store_table_cell(m, r, 1), store_table_cell(m, r - 1, 1)) != 0)
            n_steps++;
    size_t cells = (size_t)(G ? G : 1) * (size_t)(n_steps ? n_steps : 1);
    double *x = mem_calloc(cells, sizeof *x), *y = mem_calloc(cells, sizeof *y);
    double *lo = mem_calloc(cells, sizeof *lo), *hi = mem_calloc(cells, sizeof *hi);
    int *cnt = mem_calloc(cells, sizeof *cnt), *np = mem_calloc((size_t)G + 1, sizeof *np);
    double *v = mem_calloc((size_t)m->n_rows + 1, sizeof *v);
    svg_series_t *series = mem_calloc((size_t)G + 1, sizeof *series);
    char(*labels)[512] = mem_calloc((size_t)G + 1, sizeof *labels);
    int rc = 0;
    if (!x || !y || !lo || !hi || !cnt || !np || !v || !series || !labels) {
        rc = err_set(err, ERR_FAIL, "out of memory");
        goto done;
    }
    for (int r = 0; r < m->n_rows;) {
        int end = r;
        while (end < m->n_rows &&
               strcmp(store_table_cell(m, end, 1), store_table_cell(m, r, 1)) == 0)
            end++;
        const double step = strtod(store_table_cell(m, r, 1), NULL);
        for (int g = 0; g < G; g++) {
            int n = 0;
            for (int i = r; i < end; i++) {
                int row = row_of_trial(st->runs, strtoll(store_table_cell(m, i, 0), NULL, 10));
                if (row >= 0 && st->group_of[row] == g)
                    v[n++] = strtod(store_table_cell(m, i, 2), NULL);
            }
            if (n == 0) continue;
            double mean, sd, se;
            curves_stats(v, n, &mean, &sd, &se);
            const double half = n >= 2 ? curves_t975(n - 1) * se : NAN;
            const size_t at = (size_t)g * (size_t)n_steps + (size_t)np[g]++;
            x[at] = step;
            y[at] = mean;
            lo[at] = mean - half;
            hi[at] = mean + half;
            cnt[at] = n;
        }
        r = end;
    }
    char words[128], title[700];
    gp_metric_words(metric, words, sizeof words);
    snprintf(title, sizeof title, "%s: mean and 95%% confidence band per setting", metric);
    for (int g = 0; g < G; g++) {
        setting_label(st, g, labels[g], sizeof labels[g]);
        const size_t at = (size_t)g * (size_t)n_steps;
        series[g] = (svg_series_t){labels[g], np[g], x + at, y + at, lo + at, hi + at};
    }
    fprintf(f, "<figure id=\"curve-%d\">\n", index);
    svg_frame_t frame = {title, "step", words, REPORT_FIG_W, REPORT_FIG_H};
    svg_put_lines(f, &frame, series, G);
    fputs("<figcaption>", f);
    put_text(f, metric);
    fputs(" over the done trials of each setting: the line is the mean at each step, the band "
          "its 95 % confidence interval (Student t; none where a setting has one trial)."
          "</figcaption>\n</figure>\n",
          f);
    fprintf(f,
            "<details><summary>the numbers behind the figure</summary>\n<table "
            "id=\"curve-data-%d\">\n<thead><tr><th>setting</th><th>step</th><th>n</th>"
            "<th>mean</th><th>95 %% lo</th><th>95 %% hi</th></tr></thead>\n<tbody>\n",
            index);
    for (int g = 0; g < G; g++)
        for (int i = 0; i < np[g]; i++) {
            const size_t at = (size_t)g * (size_t)n_steps + (size_t)i;
            fputs("<tr>", f);
            put_elem(f, "td", labels[g]);
            fprintf(f, "<td class=\"n\">%g</td><td class=\"n\">%d</td><td class=\"n\">%.6g</td>",
                    x[at], cnt[at], y[at]);
            if (isfinite(lo[at]))
                fprintf(f, "<td class=\"n\">%.6g</td><td class=\"n\">%.6g</td>", lo[at], hi[at]);
            else
                fputs("<td class=\"n\"></td><td class=\"n\"></td>", f);
            fputs("</tr>\n", f);
        }
    fputs("</tbody></table></details>\n", f);
done:
    mem_free(x);
    mem_free(y);
    mem_free(lo);
    mem_free(hi);
    mem_free(cnt);
    mem_free(np);
    mem_free(v);
    mem_free(series);
    mem_free(labels);
    store_table_free(m);
    return rc;
}

static void put_runs(FILE *f, const store_table_t *t) {
    fputs("<h2>Trials</h2>\n<div class=\"wide\"><table>\n<thead><tr>", f);
    for (int c = 0; c < t->n_cols; c++)
        put_elem(f, "th", t->names[c]);
    fputs("</tr></thead>\n<tbody id=\"runs\">\n", f);
    for (int r = 0; r < t->n_rows; r++) {
        fputs("<tr id=\"trial-", f);
        put_text(f, store_table_cell(t, r, 0));
        fputs("\">", f);
        for (int c = 0; c < t->n_cols; c++)
            put_cell(f, store_table_cell(t, r, c), store_table_type(t, r, c));
        fputs("</tr>\n", f);
    }
    fputs("</tbody></table></div>\n", f);
}

static int put_notes(FILE *f, store_t *s, int64_t id, err_t *err) {
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT trial_id, created, text FROM note WHERE experiment_id = %" PRId64
             " ORDER BY id",
             id);
    store_table_t *t;
    if (store_query(s, sql, &t, err)) return -1;
    if (t->n_rows > 0) {
        fputs("<h2>Notes</h2>\n<ul id=\"notes\">\n", f);
        for (int r = 0; r < t->n_rows; r++) {
            fputs("<li>", f);
            if (store_table_cell(t, r, 0)) {
                fputs("trial ", f);
                put_text(f, store_table_cell(t, r, 0));
            } else {
                fputs("experiment", f);
            }
            fputs(" (", f);
            put_text(f, store_table_cell(t, r, 1) ? store_table_cell(t, r, 1) : "-");
            fputs("): ", f);
            put_text(f, store_table_cell(t, r, 2));
            fputs("</li>\n", f);
        }
        fputs("</ul>\n", f);
    }
    store_table_free(t);
    return 0;
}

/* ERR_USAGE unless `metric` is a metric column of the runs table. */
static int check_metric(const store_runs_t *c, const char *experiment, const char *metric,
                        err_t *err) {
    const int m0 = c->n_fixed + c->n_keys;
    for (int i = m0; i < c->n; i++)
        if (strcmp(c->names[i], metric) == 0) return 0;
    const char *near = c->n_metrics
                           ? sweep_suggest(metric, (const char *const *)c->names + m0, c->n_metrics)
                           : NULL;
    if (near)
        return err_set(err, ERR_USAGE, "--metrics: %s has no metric '%s' (did you mean '%s'?)",
                       experiment, metric, near);
    return err_set(err, ERR_USAGE,
                   "--metrics: %s has no metric '%s' (mtlab trials %s --columns lists them)",
                   experiment, metric, experiment);
}

int report_write(store_t *s, const report_job_t *job, FILE *f, err_t *err) {
    int64_t id;
    if (store_find_experiment(s, job->experiment, &id, err)) return -1;
    store_runs_t cols;
    if (store_runs_columns(s, id, false, &cols, err)) return -1;
    char *sql = NULL;
    store_table_t *runs = NULL;
    settings_t st = {0};
    int rc = 0;
    for (int i = 0; i < job->n_metrics && job->metrics_given; i++)
        if ((rc = check_metric(&cols, job->experiment, job->metrics[i], err))) goto done;
    if ((rc = store_runs_sql(&cols, NULL, &sql, err))) goto done;
    if ((rc = store_query(s, sql, &runs, err))) goto done;
    st.runs = runs;
    st.cols = &cols;
    if ((rc = settings_find(&st, err))) goto done;
    if ((rc = put_provenance(f, s, id, err))) goto done;
    if ((rc = put_run_records(f, s, id, err))) goto done;
    if ((rc = put_config(f, s, id, err))) goto done;
    if ((rc = put_settings(f, &st, err))) goto done;
    fputs("<h2>Curves</h2>\n", f);
    for (int i = 0; i < job->n_metrics; i++) {
        if (check_metric(&cols, job->experiment, job->metrics[i], err)) {
            fputs("<p>No values of ", f);
            put_text(f, job->metrics[i]);
            fputs(" were recorded.</p>\n", f);
            continue;
        }
        if ((rc = put_curves(f, s, id, &st, job->metrics[i], i + 1, err))) goto done;
    }
    put_runs(f, runs);
    if ((rc = put_notes(f, s, id, err))) goto done;
    fputs("</body>\n</html>\n", f);
    if (ferror(f)) rc = err_set(err, ERR_FAIL, "cannot write the report");
done:
    settings_free(&st);
    store_table_free(runs);
    mem_free(sql);
    store_runs_free(&cols);
    return rc;
}
