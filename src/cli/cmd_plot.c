/* cmd_plot.c -- `mtlab plot`: the papers' figures (gnuplot scripts with
 * their data inline, rendered when gnuplot is installed) and tables
 * (markdown or CSV) from a store.  The work is in plot/plot.h. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/opts.h"
#include "core/files.h"
#include "core/mem.h"
#include "plot/curves.h"
#include "plot/plot.h"
#include "plot/sqlplot.h"
#include "store/runs.h"
#include "store/store.h"

#define PLOT_MAX_NAMES 64

static void list_entries(void) {
    int n;
    const plot_figure_t *reg = plot_registry(&n);
    int w_name = 4, w_exp = 10;
    for (int i = 0; i < n; i++) {
        int a = (int)strlen(reg[i].name), b = (int)strlen(reg[i].experiment);
        if (a > w_name) w_name = a;
        if (b > w_exp) w_exp = b;
    }
    printf("%-*s  %-6s  %-*s  %s\n", w_name, "name", "kind", w_exp, "experiment", "description");
    for (int i = 0; i < n; i++)
        printf("%-*s  %-6s  %-*s  %s\n", w_name, reg[i].name,
               reg[i].kind == PLOT_TABLE ? "table" : "figure", w_exp, reg[i].experiment,
               reg[i].description);
}

/* Whether option `name` was given. */
static bool opts_seen_name(const opt_t *opts, int n_opts, const char *name) {
    for (int i = 0; i < n_opts; i++)
        if (strcmp(opts[i].name, name) == 0) return opts[i].seen;
    return false;
}

static bool is_figure_format(const char *f) {
    return strcmp(f, "png") == 0 || strcmp(f, "svg") == 0 || strcmp(f, "pdf") == 0;
}

/* Makes one entry and says what was written.  print_table: a table is also
 * printed on stdout (then the note goes to stderr).  Returns the exit status
 * (0, 1, 2) after printing any error; with skip_missing, an experiment
 * missing from the store is a note and sets *skipped. */
static int make_one(const char *db, const plot_figure_t *fig, const plot_params_t *params,
                    const char *out_dir, const char *format, bool render, bool print_table,
                    bool skip_missing, bool *skipped, bool *warned_no_gnuplot) {
    err_t err = {0};
    plot_output_t out;
    const char *fmt = format;
    if (skip_missing && format) /* --all: each entry takes the formats of its kind */
        fmt = (fig->kind == PLOT_FIGURE) == is_figure_format(format) ? format : NULL;
    int rc = plot_make_with(db, fig->name, params, out_dir, fmt, render, &out, &err);
    if (rc == PLOT_NO_EXPERIMENT && skip_missing) {
        fprintf(stderr, "mtlab plot: skipped %s: %s\n", fig->name, err.msg);
        *skipped = true;
        return 0;
    }
    if (rc) {
        int status = cli_fail("plot", &err);
        if (out.gnuplot_stderr[0]) fprintf(stderr, "%s", out.gnuplot_stderr);
        return status;
    }
    if (fig->kind == PLOT_TABLE) {
        if (print_table) {
            const char *tf = format && strcmp(format, "csv") == 0 ? "csv" : "md";
            if (plot_table_with(db, fig->name, params, tf, stdout, &err))
                return cli_fail("plot", &err);
            fprintf(stderr, "wrote %s (%d rows)\n", out.table, out.n_rows);
        } else {
            printf("wrote %s (%d rows)\n", out.table, out.n_rows);
        }
        return 0;
    }
    if (out.rendered)
        printf("wrote %s and %s (%d rows)\n", out.script, out.image, out.n_rows);
    else
        printf("wrote %s (%d rows)\n", out.script, out.n_rows);
    if (out.no_gnuplot && !*warned_no_gnuplot) {
        fprintf(stderr,
                "mtlab plot: gnuplot is not installed: the scripts are written but not drawn "
                "(`gnuplot %s` draws it; make deps installs gnuplot-nox)\n",
                out.script);
        *warned_no_gnuplot = true;
    }
    if (out.gnuplot_stderr[0])
        fprintf(stderr, "mtlab plot: gnuplot said on %s:\n%s", out.script, out.gnuplot_stderr);
    return 0;
}

/* `--curves EXP`: the curves of `metric` over the done trials of EXP that
 * satisfy `where`, one line per value of the group-by columns (runs-table
 * names, store/runs.h), written to DIR/EXP-METRIC.gp (the metric's '/' as
 * '-') and rendered. */
static int make_curves(const char *db, const char *experiment, const char *metric,
                       const char *group_by, const char *facet, const char *band_name,
                       const char *where, const char *out_dir, const char *format, bool render) {
    err_t err = {0};
    curves_band_t band;
    if (curves_band_parse(band_name, &band)) {
        err_set(&err, ERR_USAGE, "--band: ci95, se, sd or none, not '%s'", band_name);
        return cli_fail("plot", &err);
    }
    if (format && !is_figure_format(format)) {
        err_set(&err, ERR_USAGE, "--format: png, svg or pdf for curves, not '%s'", format);
        return cli_fail("plot", &err);
    }
    if (!format) format = "png";
    if (strpbrk(group_by, "*?[")) {
        err_set(&err, ERR_USAGE, "--group-by: column names, not patterns ('%s')", group_by);
        return cli_fail("plot", &err);
    }
    if (facet && strpbrk(facet, "*?[,")) {
        err_set(&err, ERR_USAGE, "--facet: one column name, not '%s'", facet);
        return cli_fail("plot", &err);
    }
    store_t *s;
    if (store_open(&s, db, STORE_READONLY, &err)) return cli_fail("plot", &err);
    /* The runs of EXP with the group columns: (trial, groups...), filtered. */
    char cols[1024], cond[4096];
    char *runs = NULL, *sql = NULL;
    int status = 0;
    if (facet) { /* the facet column alone first: its error names --facet */
        snprintf(cols, sizeof cols, "trial,%s", facet);
        if (cli_runs_query(s, experiment, true, NULL, NULL, cols, &runs, &err)) {
            char msg[sizeof err.msg];
            snprintf(msg, sizeof msg, "%s", err.msg);
            char *p = strstr(msg, "--cols");
            if (p) err_set(&err, err.kind, "%.*s--facet%s", (int)(p - msg), msg, p + 6);
            status = cli_fail("plot", &err);
            goto done;
        }
        mem_free(runs);
        runs = NULL;
    }
    snprintf(cols, sizeof cols, "trial,%s%s%s", facet ? facet : "", facet ? "," : "", group_by);
    snprintf(cond, sizeof cond, "status = 'done'%s%s%s", where ? " AND (" : "", where ? where : "",
             where ? ")" : "");
    if (cli_runs_query(s, experiment, true, cond, NULL, cols, &runs, &err)) {
        if (strstr(err.msg, "--cols")) {
            /* say it in this command's words */
            char msg[sizeof err.msg];
            snprintf(msg, sizeof msg, "%s", err.msg);
            char *p = strstr(msg, "--cols");
            err_set(&err, err.kind, "%.*s--group-by%s", (int)(p - msg), msg, p + 6);
        }
        status = cli_fail("plot", &err);
        goto done;
    }
    /* group columns, step, value; ordered by the groups, then step */
    size_t need = strlen(runs) + 3 * strlen(group_by) + (facet ? 2 * strlen(facet) : 0) +
                  strlen(metric) * 2 + 512;
    sql = mem_alloc(need);
    if (!sql) {
        err_set(&err, ERR_FAIL, "out of memory");
        status = cli_fail("plot", &err);
        goto done;
    }
    size_t len = (size_t)snprintf(sql, need, "SELECT ");
    if (facet) len += (size_t)snprintf(sql + len, need - len, "r.\"%s\", ", facet);
    char list[1024];
    snprintf(list, sizeof list, "%s", group_by);
    for (char *save, *g = strtok_r(list, ",", &save); g; g = strtok_r(NULL, ",", &save)) {
        while (*g == ' ')
            g++;
        len += (size_t)snprintf(sql + len, need - len, "r.\"%s\", ", g);
    }
    len += (size_t)snprintf(sql + len, need - len,
                            "m.step, m.value FROM (%s) r JOIN metric m ON "
                            "m.trial_id = r.\"trial\" AND m.name = '",
                            runs);
    for (const char *p = metric; *p && len + 8 < need; p++) {
        sql[len++] = *p;
        if (*p == '\'') sql[len++] = '\'';
    }
    len += (size_t)snprintf(sql + len, need - len, "' ORDER BY ");
    if (facet) len += (size_t)snprintf(sql + len, need - len, "r.\"%s\", ", facet);
    snprintf(list, sizeof list, "%s", group_by);
    for (char *save, *g = strtok_r(list, ",", &save); g; g = strtok_r(NULL, ",", &save)) {
        while (*g == ' ')
            g++;
        len += (size_t)snprintf(sql + len, need - len, "r.\"%s\", ", g);
    }
    snprintf(sql + len, need - len, "m.step");

    char stem[512], script[4200], image[4200], image_name[600];
    snprintf(stem, sizeof stem, "%s-%s", experiment, metric);
    for (char *p = stem; *p; p++)
        if (*p == '/') *p = '-';
    snprintf(image_name, sizeof image_name, "%s.%s", stem, format);
    snprintf(script, sizeof script, "%s/%s.gp", out_dir, stem);
    snprintf(image, sizeof image, "%s/%s", out_dir, image_name);
    if (files_make_dirs(out_dir, &err)) {
        status = cli_fail("plot", &err);
        goto done;
    }
    FILE *f = fopen(script, "w");
    if (!f) {
        err_set(&err, ERR_FAIL, "cannot write %s", script);
        status = cli_fail("plot", &err);
        goto done;
    }
    curves_job_t job = {db, experiment, metric, format, image_name, band, NULL, facet};
    int n_lines = 0;
    int rc = curves_write(s, sql, &job, f, &n_lines, &err);
    if (fclose(f) != 0 && rc == 0) rc = err_set(&err, ERR_FAIL, "cannot write %s", script);
    if (rc) {
        remove(script);
        status = cli_fail("plot", &err);
        goto done;
    }
    plot_output_t out = {0};
    if (render && plot_render(script, image, &out, &err)) {
        status = cli_fail("plot", &err);
        goto done;
    }
    if (out.rendered)
        printf("wrote %s and %s (%d lines)\n", script, image, n_lines);
    else
        printf("wrote %s (%d lines)\n", script, n_lines);
    if (out.no_gnuplot)
        fprintf(stderr, "mtlab plot: gnuplot is not installed: `gnuplot %s` draws it\n", script);
done:
    mem_free(sql);
    mem_free(runs);
    store_close(s);
    return status;
}

/* `--sql QUERY`: y over x of the query's rows, a line per --group value,
 * a band from --band-lo to --band-hi (plot/sqlplot.h), written to
 * DIR/NAME.gp and rendered. */
static int make_sql_plot(const char *db, const sqlplot_job_t *tmpl, const char *name,
                         const char *out_dir, const char *format, bool render) {
    err_t err = {0};
    if (format && !is_figure_format(format)) {
        err_set(&err, ERR_USAGE, "--format: png, svg or pdf for --sql, not '%s'", format);
        return cli_fail("plot", &err);
    }
    if (!format) format = "png";
    if (!tmpl->x || !tmpl->y) {
        err_set(&err, ERR_USAGE, "--sql needs --x COL and --y COL (columns of the query)");
        return cli_fail("plot", &err);
    }
    if (!tmpl->lo != !tmpl->hi) {
        err_set(&err, ERR_USAGE, "--band-lo and --band-hi go together");
        return cli_fail("plot", &err);
    }
    if (!name[0] || strpbrk(name, "/\\")) {
        err_set(&err, ERR_USAGE, "--name: a file name without '/', not '%s'", name);
        return cli_fail("plot", &err);
    }
    store_t *s;
    if (store_open(&s, db, STORE_READONLY, &err)) return cli_fail("plot", &err);
    char script[4200], image[4200], image_name[600];
    snprintf(image_name, sizeof image_name, "%s.%s", name, format);
    snprintf(script, sizeof script, "%s/%s.gp", out_dir, name);
    snprintf(image, sizeof image, "%s/%s", out_dir, image_name);
    sqlplot_job_t job = *tmpl;
    job.db_path = db;
    job.format = format;
    job.image_name = image_name;
    int status = 0, n_lines = 0;
    /* the query first (its errors are the user's to fix), then the file */
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp", script);
    FILE *f = NULL;
    if (files_make_dirs(out_dir, &err) || !(f = fopen(tmp, "w"))) {
        if (!f && err.msg[0] == '\0') err_set(&err, ERR_FAIL, "cannot write %s", tmp);
        status = cli_fail("plot", &err);
        goto done;
    }
    int rc = sqlplot_write(s, &job, f, &n_lines, &err);
    if (fclose(f) != 0 && rc == 0) rc = err_set(&err, ERR_FAIL, "cannot write %s", tmp);
    if (rc == 0 && rename(tmp, script) != 0) rc = err_set(&err, ERR_FAIL, "cannot write %s", script);
    if (rc) {
        remove(tmp);
        status = cli_fail("plot", &err);
        goto done;
    }
    plot_output_t out = {0};
    if (render && plot_render(script, image, &out, &err)) {
        status = cli_fail("plot", &err);
        goto done;
    }
    if (out.rendered)
        printf("wrote %s and %s (%d line%s)\n", script, image, n_lines, n_lines == 1 ? "" : "s");
    else
        printf("wrote %s (%d line%s)\n", script, n_lines, n_lines == 1 ? "" : "s");
    if (out.no_gnuplot)
        fprintf(stderr, "mtlab plot: gnuplot is not installed: `gnuplot %s` draws it\n", script);
done:
    store_close(s);
    return status;
}

int cmd_plot(int argc, char **argv) {
    const char *db = "results.db", *out_dir = "plots", *format = NULL;
    const char *experiment = NULL, *metric = NULL;
    const char *curves = NULL, *group_by = "model", *band = "ci95", *where = NULL;
    const char *facet = NULL, *query = NULL, *stem = "sql-plot", *title = NULL;
    sqlplot_job_t sq = {0};
    int bins = 0;
    bool no_render = false, list = false, all = false, data = false;
    opt_t opts[] = {
        {"db", OPT_STRING, &db, "FILE", "the SQLite store", 1, 0, 0},
        {"out", OPT_STRING, &out_dir, "DIR", "where NAME.gp, NAME.png and tables go", 1, 0, 0},
        {"format", OPT_STRING, &format, "F",
         "figures: png (default), svg or pdf; tables: md (default) or csv", 1, 0, 0},
        {"no-render", OPT_FLAG, &no_render, NULL, "write the gnuplot scripts, do not run gnuplot",
         1, 0, 0},
        {"all", OPT_FLAG, &all, NULL,
         "every figure and table whose experiment is in the store (others are skipped)", 1, 0, 0},
        {"list", OPT_FLAG, &list, NULL, "list the figures and tables", 1, 0, 0},
        {"experiment", OPT_STRING, &experiment, "NAME",
         "read this experiment instead of the figure's own", 1, 0, 0},
        {"metric", OPT_STRING, &metric, "NAME",
         "draw this metric instead of the figure's own (e.g. test/loss/t2)", 1, 0, 0},
        {"bins", OPT_INT, &bins, "N", "histogram bins (mmoe-fig5; 0: 20)", 0, 1000, 0},
        {"data", OPT_FLAG, &data, NULL, "print the rows of the figures' queries as CSV instead", 1,
         0, 0},
        {"curves", OPT_STRING, &curves, "EXP",
         "the curves of any experiment: --metric (default val/loss/total) over steps, one line "
         "per --group-by value, with a --band",
         1, 0, 0},
        {"group-by", OPT_STRING, &group_by, "COLS",
         "--curves: comma-separated runs-table columns (model, data.correlation, train.lr, ...)", 1,
         0, 0},
        {"band", OPT_STRING, &band, "B",
         "--curves and the paper figures' curves (mmoe-fig3, -fig4): ci95 (Student t), se, sd "
         "(sample, n - 1) or none",
         1, 0, 0},
        {"where", OPT_STRING, &where, "EXPR",
         "--curves: only the trials where this condition on the runs table holds", 1, 0, 0},
        {"facet", OPT_STRING, &facet, "COL",
         "--curves: one panel per value of this runs-table column (a grid of panels)", 1, 0, 0},
        {"sql", OPT_STRING, &query, "QUERY",
         "plot any read-only query: --y over --x, a line per --group, a --band-lo/--band-hi band",
         1, 0, 0},
        {"x", OPT_STRING, &sq.x, "COL", "--sql: the column on the x axis", 1, 0, 0},
        {"y", OPT_STRING, &sq.y, "COL", "--sql: the column on the y axis", 1, 0, 0},
        {"group", OPT_STRING, &sq.group, "COL", "--sql: one line per value of this column", 1, 0,
         0},
        {"band-lo", OPT_STRING, &sq.lo, "COL", "--sql: the lower edge of a filled band", 1, 0, 0},
        {"band-hi", OPT_STRING, &sq.hi, "COL", "--sql: the upper edge of the band", 1, 0, 0},
        {"title", OPT_STRING, &title, "TEXT", "--sql: the title (default: Y by X)", 1, 0, 0},
        {"name", OPT_STRING, &stem, "NAME", "--sql: the files' stem: DIR/NAME.gp, DIR/NAME.png", 1,
         0, 0},
    };
    const int n_opts = (int)(sizeof opts / sizeof opts[0]);
    const char *names[PLOT_MAX_NAMES];
    int n_names;
    int rc = cli_options(
        "plot",
        "mtlab plot NAME... | --all | --list | --curves EXP [options] | --sql QUERY --x COL --y COL "
        "[options]",
        "Redraws the papers' figures from a store: runs each figure's SQL (sql/figures/),\n"
        "writes DIR/NAME.gp -- a self-contained gnuplot script with the data inline --\n"
        "and runs gnuplot on it (when installed) to make DIR/NAME.png (svg, pdf).\n"
        "Tables are printed and written to DIR/NAME.md (or .csv).  `mtlab plot --list`\n"
        "names them all.  Any experiment's curves, grouped, with a band:\n"
        "  mtlab plot --curves grid --metric val/loss/total --group-by model,data.correlation\n"
        "Any query, a line per group, with a band:\n"
        "  mtlab plot --sql \"SELECT model, step, mean, mean - se AS lo, mean + se AS hi FROM\n"
        "    v_curve WHERE name = 'val/loss/total' ORDER BY step\" --x step --y mean\n"
        "    --group model --band-lo lo --band-hi hi --name val-loss",
        opts, n_opts, argc, argv, names, PLOT_MAX_NAMES, &n_names);
    if (rc != CLI_CONTINUE) return rc;
    err_t err = {0};
    const bool band_seen = opts_seen_name(opts, n_opts, "band");
    curves_band_t band_kind;
    if (band_seen && curves_band_parse(band, &band_kind)) {
        err_set(&err, ERR_USAGE, "--band: ci95, se, sd or none, not '%s'", band);
        return cli_fail("plot", &err);
    }

    if (query) {
        if (curves || all || n_names > 0 || list || data || experiment || metric || bins ||
            facet || where) {
            err_set(&err, ERR_USAGE,
                    "--sql takes no figure names, --curves, --all, --list, --data, "
                    "--experiment, --metric, --bins, --facet or --where (put it in the query)");
            return cli_fail("plot", &err);
        }
        sq.sql = query;
        sq.title = title;
        return make_sql_plot(db, &sq, stem, out_dir, format, !no_render);
    }
    if (sq.x || sq.y || sq.group || sq.lo || sq.hi || title || opts_seen_name(opts, n_opts, "name")) {
        err_set(&err, ERR_USAGE, "--x, --y, --group, --band-lo, --band-hi, --title and --name "
                                 "go with --sql");
        return cli_fail("plot", &err);
    }
    if (facet && !curves) {
        err_set(&err, ERR_USAGE, "--facet goes with --curves");
        return cli_fail("plot", &err);
    }
    if (curves) {
        if (all || n_names > 0 || list || data || experiment || bins) {
            err_set(&err, ERR_USAGE,
                    "--curves takes no figure names, --all, --list, --data, "
                    "--experiment or --bins");
            return cli_fail("plot", &err);
        }
        return make_curves(db, curves, metric ? metric : "val/loss/total", group_by, facet, band,
                           where, out_dir, format, !no_render);
    }
    if (list) {
        list_entries();
        return fflush(stdout) == 0 ? 0 : 1;
    }
    if (format && !is_figure_format(format) && strcmp(format, "md") != 0 &&
        strcmp(format, "csv") != 0) {
        err_set(&err, ERR_USAGE, "--format: png, svg, pdf (figures), md or csv (tables), not '%s'",
                format);
        return cli_fail("plot", &err);
    }
    if (all && n_names > 0) {
        err_set(&err, ERR_USAGE, "name figures or give --all, not both");
        return cli_fail("plot", &err);
    }
    if (all && (experiment || metric)) {
        err_set(&err, ERR_USAGE, "--experiment and --metric apply to a named figure, not --all");
        return cli_fail("plot", &err);
    }
    if (!all && n_names == 0) {
        err_set(&err, ERR_USAGE, "which figure? (mtlab plot --list names them, --all makes all)");
        return cli_fail("plot", &err);
    }
    for (int i = 0; i < n_names; i++)
        if (!plot_find(names[i])) {
            plot_output_t out;
            plot_make(db, names[i], out_dir, NULL, false, &out, &err); /* words the message */
            return cli_fail("plot", &err);
        }
    /* The store must exist before anything is written. */
    store_t *s;
    if (store_open(&s, db, STORE_READONLY, &err)) return cli_fail("plot", &err);
    store_close(s);

    plot_params_t params = {experiment, metric, bins, band_seen ? band : NULL};
    int status = 0;
    if (data) {
        int n_reg;
        const plot_figure_t *reg = plot_registry(&n_reg);
        for (int i = 0; i < (all ? n_reg : n_names); i++) {
            const char *name = all ? reg[i].name : names[i];
            if (all) printf("# %s\n", name);
            rc = plot_table_with(db, name, &params, "csv", stdout, &err);
            if (rc == PLOT_NO_EXPERIMENT && all) {
                fprintf(stderr, "mtlab plot: skipped %s: %s\n", name, err.msg);
            } else if (rc) {
                int s_rc = cli_fail("plot", &err);
                if (s_rc > status) status = s_rc;
            }
        }
        return status;
    }

    bool warned = false;
    if (all) {
        int n_reg, made = 0;
        const plot_figure_t *reg = plot_registry(&n_reg);
        for (int i = 0; i < n_reg; i++) {
            bool skipped = false;
            rc = make_one(db, &reg[i], &params, out_dir, format, !no_render, false, true, &skipped,
                          &warned);
            if (rc)
                status = rc;
            else if (!skipped)
                made++;
        }
        if (made == 0 && status == 0) {
            err_set(&err, ERR_FAIL, "%s holds none of the figures' experiments", db);
            status = cli_fail("plot", &err);
        }
    } else {
        for (int i = 0; i < n_names; i++) {
            rc = make_one(db, plot_find(names[i]), &params, out_dir, format, !no_render, true,
                          false, NULL, &warned);
            if (rc > status) status = rc;
        }
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        err_set(&err, ERR_FAIL, "cannot write to standard output");
        status = cli_fail("plot", &err);
    }
    return status;
}
