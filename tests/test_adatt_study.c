/* test_adatt_study.c -- the AdaTT study of issue 12 end to end at the tiny
 * scale: `mtlab reproduce --paper adatt --scale tiny --no-render` runs every
 * sweep of experiments/adatt/ into one store and writes every adatt- figure
 * and table; experiments/mmoe/baselines.ini runs beside it (its [scale.tiny]).
 * Then, on that store:
 *   - each new figure's script holds exactly its query's rows (numbers
 *     compared as doubles, text as text) and gnuplot accepts it silently;
 *     each table has one markdown line per row;
 *   - what the rows mean, against independent SQL on the raw tables: the
 *     paired difference from Shared-Bottom and its standard error, the
 *     reference rows of Tables 6-8, the heat maps (gate records: AdaTT-sp's
 *     effective weights of a task sum to 2 -- softmax 1 + the unit native
 *     weight -- with the native expert >= 1), the baselines' chosen grid
 *     point (lowest mean validation loss);
 *   - the claims: every AdaTT claim runs, and a claim's statistic is the mean
 *     difference computed directly from the metric table. */
#define _GNU_SOURCE /* mkdtemp, nftw, strndup */
#include <ftw.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "plot/plot.h"
#include "store/query.h"
#include "store/store.h"
#include "plotcheck.h"
#include "testutil.h"

/* ---- the shared store: reproduce --paper adatt --scale tiny --------------- */

static char study_dir[256], study_db[320], plots_dir[320];
static int reproduce_rc;
static char *reproduce_out, *reproduce_err;

static void make_study(void) {
    snprintf(study_dir, sizeof study_dir, "/tmp/mtlab-adatt-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(study_dir));
    snprintf(study_db, sizeof study_db, "%s/study.db", study_dir);
    snprintf(plots_dir, sizeof plots_dir, "%s/plots", study_dir);
    const char *args[] = {"reproduce",   "--paper", "adatt",   "--scale", "tiny",
                          "--no-render", "--db",    study_db,  "--out",   plots_dir,
                          "--jobs",      "2",       "--quiet", NULL};
    reproduce_rc = run_mtlab(&reproduce_out, &reproduce_err, args);
    const char *base[] = {"run",     "experiments/mmoe/baselines.ini",
                          "--scale", "tiny",
                          "--db",    study_db,
                          "--jobs",  "2",
                          "--quiet", NULL};
    char *out, *err;
    int rc = run_mtlab(&out, &err, base);
    ck_assert_msg(rc == 0, "mtlab run baselines.ini: %s", err);
    free(out);
    free(err);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    return remove(path);
}

static void remove_study(void) {
    nftw(study_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(reproduce_out);
    free(reproduce_err);
}

/* ---- helpers ---------------------------------------------------------------- */

/* The entries this study registered: adatt-* and the MMoE baselines'. */
static bool is_study_entry(const plot_figure_t *fig) {
    return strncmp(fig->name, "adatt-", 6) == 0 || strcmp(fig->name, "mmoe-baselines") == 0 ||
           strcmp(fig->name, "mmoe-table-baselines") == 0;
}

static store_table_t *query(const char *name) {
    const plot_figure_t *fig = plot_find(name);
    ck_assert_msg(fig != NULL, "no figure %s", name);
    store_t *s;
    err_t err = {0};
    ck_assert_msg(store_open(&s, study_db, STORE_READONLY, &err) == 0, "%s", err.msg);
    store_table_t *t;
    ck_assert_msg(plot_query(s, fig, NULL, &t, &err) == 0, "%s: %s", name, err.msg);
    store_close(s);
    return t;
}

static int column(const store_table_t *t, const char *name) {
    for (int c = 0; c < t->n_cols; c++)
        if (strcmp(t->names[c], name) == 0) return c;
    ck_abort_msg("no column %s", name);
    return -1;
}

static double num(const store_table_t *t, int r, const char *name) {
    const char *s = store_table_cell(t, r, column(t, name));
    return s ? strtod(s, NULL) : NAN;
}

static const char *text(const store_table_t *t, int r, const char *name) {
    const char *s = store_table_cell(t, r, column(t, name));
    return s ? s : "";
}




/* Mean and standard error of v[0..n). */
static void mean_se(const double *v, int n, double *mean, double *se) {
    double s = 0, ss = 0;
    for (int i = 0; i < n; i++)
        s += v[i];
    *mean = s / n;
    for (int i = 0; i < n; i++)
        ss += (v[i] - *mean) * (v[i] - *mean);
    *se = n > 1 ? sqrt(ss / (n - 1) / n) : NAN;
}

/* The final value of metric `name` of the trial of `model` in `repeat` of
 * experiment `exp` (optional extra condition `where` on trial t). */
static double final_value(const char *exp, const char *model, int repeat, const char *name,
                          const char *where) {
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT m.value FROM trial t JOIN experiment e ON e.id = t.experiment_id "
             "JOIN metric m ON m.trial_id = t.id AND m.step = t.final_step "
             "WHERE e.name = '%s' AND t.model = '%s' AND t.repeat = %d AND m.name = '%s' %s",
             exp, model, repeat, name, where ? where : "");
    return test_query(study_db, sql);
}

/* ---- the run ---------------------------------------------------------------- */

/* reproduce ran every sweep into the store and wrote every adatt- entry,
 * scripts only (--no-render). */
START_TEST(test_reproduce_tiny) {
    ck_assert_msg(reproduce_rc == 0, "reproduce exited %d: %s", reproduce_rc, reproduce_err);
    static const struct {
        const char *experiment;
        int trials; /* points x repeats of the [scale.tiny] section */
    } want[] = {{"adatt-ablation", 2 * 2},    {"adatt-experts", 4 * 2},
                {"adatt-levels", 5 * 2},      {"adatt-comparison", 7 * 2},
                {"adatt-between", 4 * 7 * 1}, {"mmoe-baselines", 3 * 15}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char sql[256];
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM trial t JOIN experiment e ON e.id = t.experiment_id "
                 "WHERE e.name = '%s' AND t.status = 'done'",
                 want[i].experiment);
        ck_assert_msg(test_query(study_db, sql) == want[i].trials, "%s: %g done trials, want %d",
                      want[i].experiment, test_query(study_db, sql), want[i].trials);
    }
    /* the matched sizes of comparison.ini: every family within 2 % of MMoE's */
    const double mmoe = test_query(study_db, "SELECT n_params FROM trial t JOIN experiment e ON "
                                             "e.id = t.experiment_id WHERE e.name = "
                                             "'adatt-comparison' AND t.model = 'mmoe' LIMIT 1");
    ck_assert_double_eq(mmoe, 16708);
    ck_assert_double_le(test_query(study_db, "SELECT max(abs(n_params - 16708)) FROM trial t JOIN "
                                             "experiment e ON e.id = t.experiment_id WHERE e.name "
                                             "= 'adatt-comparison'"),
                        0.02 * 16708);
    int n, made = 0;
    const plot_figure_t *reg = plot_registry(&n);
    for (int i = 0; i < n; i++) {
        if (strncmp(reg[i].name, "adatt-", 6) != 0) continue;
        char name[400];
        snprintf(name, sizeof name, "%s/%s.%s", plots_dir, reg[i].name,
                 reg[i].kind == PLOT_FIGURE ? "gp" : "md");
        ck_assert_msg(access(name, R_OK) == 0, "reproduce wrote no %s", name);
        ck_assert_msg(strstr(reproduce_out, reg[i].name), "reproduce did not list %s", reg[i].name);
        if (reg[i].kind == PLOT_FIGURE) {
            snprintf(name, sizeof name, "%s/%s.png", plots_dir, reg[i].name);
            ck_assert_msg(access(name, F_OK) != 0, "--no-render drew %s", name);
        }
        made++;
    }
    ck_assert_int_eq(made, 8);
}
END_TEST

/* Each study entry: its script's data = its query's rows, gnuplot accepts
 * it; a table has one markdown line per row. */
START_TEST(test_entry_data) {
    int n;
    const plot_figure_t *fig = &plot_registry(&n)[_i];
    if (!is_study_entry(fig)) return;
    char *dir = test_tmpdir(), *out, *err;
    const char *args[] = {"plot", fig->name, "--db", study_db, "--out", dir, "--no-render", NULL};
    int rc = run_mtlab(&out, &err, args);
    ck_assert_msg(rc == 0, "mtlab plot %s: %s", fig->name, err);
    store_table_t *t = query(fig->name);
    ck_assert_msg(t->n_rows > 0, "%s: no rows", fig->name);
    char name[160];
    snprintf(name, sizeof name, "%s.%s", fig->name, fig->kind == PLOT_FIGURE ? "gp" : "md");
    char *path = test_join(dir, name);
    if (fig->kind == PLOT_FIGURE) {
        plotcheck_script_data(path, t);
        plotcheck_gnuplot_runs(path);
    } else {
        char *md = test_read_file(path);
        ck_assert_int_eq(test_count_lines(md), t->n_rows + 2);
        free(md);
    }
    free(path);
    store_table_free(t);
    free(out);
    free(err);
    free(dir);
}
END_TEST

/* ---- what the rows mean -------------------------------------------------------- */

/* Tables 1-3: the difference from Shared-Bottom is the mean over repeats of
 * the paired 100 (v - v_SB) / v_SB of the final test NE (binary task) or
 * MSE (regression task 1), with its standard error. */
START_TEST(test_comparison_paired_difference) {
    store_table_t *t = query("adatt-table-comparison");
    ck_assert_int_eq(t->n_rows, 6 * 4); /* six families x four tasks */
    int checked = 0;
    for (int r = 0; r < t->n_rows; r++) {
        const char *model = text(t, r, "model");
        const int task = (int)num(t, r, "task");
        ck_assert_str_eq(text(t, r, "measure"), task == 1 ? "MSE" : "NE");
        ck_assert_str_ne(model, "shared_bottom");
        if (strcmp(model, "adatt") != 0 && strcmp(model, "cross_stitch") != 0) continue;
        char metric[32];
        snprintf(metric, sizeof metric, task == 1 ? "test/loss/t%d" : "test/ne/t%d", task);
        double d[2];
        for (int rep = 0; rep < 2; rep++) {
            double v = final_value("adatt-comparison", model, rep, metric, NULL),
                   sb = final_value("adatt-comparison", "shared_bottom", rep, metric, NULL);
            ck_assert(isfinite(v) && isfinite(sb) && sb > 0);
            d[rep] = 100 * (v - sb) / sb;
        }
        double mean, se;
        mean_se(d, 2, &mean, &se);
        ck_assert_int_eq((int)num(t, r, "n"), 2);
        ck_assert_double_eq_tol(num(t, r, "diff_pct"), mean, 1e-9 * (1 + fabs(mean)));
        ck_assert_double_eq_tol(num(t, r, "se_pct"), se, 1e-9 * (1 + se));
        checked++;
    }
    ck_assert_int_eq(checked, 8);
    store_table_free(t);
}
END_TEST

/* Tables 6-8: one row per (value, task), the reference value's rows first
 * with difference 0, the others paired with it on the same dataset. */
START_TEST(test_study_tables) {
    static const struct {
        const char *name, *column, *experiment, *key;
        const char *ref, *other; /* values as the store holds them */
        int values;
    } tables[] = {
        {"adatt-table-ablation", "native_lf", "adatt-ablation", "model.native_lf", "'on'", "'off'",
         2},
        {"adatt-table-experts", "task_experts", "adatt-experts", "model.task_experts", "1", "4", 4},
        {"adatt-table-levels", "levels", "adatt-levels", "model.levels", "2", "5", 5},
    };
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        store_table_t *t = query(tables[i].name);
        ck_assert_int_eq(t->n_rows, tables[i].values * 4);
        for (int r = 0; r < 4; r++) {
            ck_assert_double_eq(num(t, r, "diff_pct"), 0);
            ck_assert_double_eq(num(t, r, "se_pct"), 0);
            ck_assert_int_eq((int)num(t, r, "task"), r + 1);
        }
        /* task 3 of the other value, from the raw tables */
        char where_ref[200], where_other[200];
        snprintf(where_ref, sizeof where_ref,
                 "AND EXISTS (SELECT 1 FROM param p WHERE p.trial_id = t.id AND p.key = '%s' AND "
                 "p.value = %s)",
                 tables[i].key, tables[i].ref);
        snprintf(where_other, sizeof where_other,
                 "AND EXISTS (SELECT 1 FROM param p WHERE p.trial_id = t.id AND p.key = '%s' AND "
                 "p.value = %s)",
                 tables[i].key, tables[i].other);
        double d[2];
        for (int rep = 0; rep < 2; rep++) {
            double v = final_value(tables[i].experiment, "adatt_sp", rep, "test/ne/t3",
                                   where_other),
                   ref =
                       final_value(tables[i].experiment, "adatt_sp", rep, "test/ne/t3", where_ref);
            d[rep] = 100 * (v - ref) / ref;
        }
        double mean, se;
        mean_se(d, 2, &mean, &se);
        int found = 0;
        for (int r = 0; r < t->n_rows; r++) {
            char want[16];
            snprintf(want, sizeof want, "%.*s",
                     (int)strlen(tables[i].other) - (tables[i].other[0] == '\'' ? 2 : 0),
                     tables[i].other + (tables[i].other[0] == '\''));
            if (strcmp(text(t, r, tables[i].column), want) != 0 || num(t, r, "task") != 3) continue;
            ck_assert_double_eq_tol(num(t, r, "diff_pct"), mean, 1e-9 * (1 + fabs(mean)));
            ck_assert_double_eq_tol(num(t, r, "se_pct"), se, 1e-9 * (1 + se));
            found++;
        }
        ck_assert_int_eq(found, 1);
        store_table_free(t);
    }
}
END_TEST

/* Fig 3 from the gate records: AdaTT-sp (one expert per task) puts softmax
 * weights summing to 1 plus the fixed unit native weight, so each task's
 * row sums to 2 and its own expert gets >= 1; every cell is the mean over
 * repeats of the stored gate row. */
START_TEST(test_heatmap_from_gates) {
    store_table_t *t = query("adatt-fig3");
    double sum[3][5] = {{0}};
    int sp_rows = 0;
    for (int r = 0; r < t->n_rows; r++) {
        if (strcmp(text(t, r, "model"), "adatt_sp") != 0) continue;
        const int level = (int)num(t, r, "level"), task = (int)num(t, r, "task"),
                  expert = (int)num(t, r, "expert");
        ck_assert(level >= 1 && level <= 2 && task >= 1 && task <= 4 && expert >= 1 && expert <= 4);
        const double w = num(t, r, "weight");
        sum[level][task] += w;
        if (expert == task) ck_assert_double_ge(w, 1.0 - 1e-6);
        char sql[400];
        snprintf(sql, sizeof sql,
                 "SELECT avg(g.mean) FROM gate g JOIN trial t ON t.id = g.trial_id JOIN "
                 "experiment e ON e.id = t.experiment_id WHERE e.name = 'adatt-comparison' AND "
                 "t.model = 'adatt_sp' AND g.gate = 'l%d/t%d/weights' AND g.expert = %d AND "
                 "g.kind = 'weights'",
                 level, task, expert - 1);
        ck_assert_double_eq_tol(w, test_query(study_db, sql), 1e-12);
        ck_assert_int_eq((int)num(t, r, "n"), 2);
        sp_rows++;
    }
    ck_assert_int_eq(sp_rows, 2 * 4 * 4);
    for (int l = 1; l <= 2; l++)
        for (int k = 1; k <= 4; k++)
            ck_assert_double_eq_tol(sum[l][k], 2.0, 1e-5); /* float means */
    store_table_free(t);

    /* per between-group correlation: four panels of rows of the same kind */
    t = query("adatt-fig3-between");
    ck_assert_int_eq(t->n_rows, 4 * 2 * 4 * 4);
    store_table_free(t);
}
END_TEST

/* The baselines: each family's chosen grid point per correlation is the one
 * with the lowest mean final validation loss, and the figure draws exactly
 * the chosen rows. */
START_TEST(test_baselines_choice) {
    store_table_t *all = query("mmoe-table-baselines"), *fig = query("mmoe-baselines");
    ck_assert_int_eq(all->n_rows, 3 * 15);
    ck_assert_int_eq(fig->n_rows, 3 * 6);
    int chosen = 0;
    for (int r = 0; r < all->n_rows; r++) {
        const char *model = text(all, r, "model");
        const double corr = num(all, r, "correlation");
        double best = INFINITY;
        for (int q = 0; q < all->n_rows; q++)
            if (strcmp(text(all, q, "model"), model) == 0 && num(all, q, "correlation") == corr &&
                num(all, q, "val_mean") < best)
                best = num(all, q, "val_mean");
        if (num(all, r, "chosen") != 1) {
            ck_assert_double_gt(num(all, r, "val_mean"), best);
            continue;
        }
        ck_assert_double_eq(num(all, r, "val_mean"), best);
        chosen++;
        int drawn = 0;
        for (int q = 0; q < fig->n_rows; q++)
            if (strcmp(text(fig, q, "model"), model) == 0 && num(fig, q, "correlation") == corr) {
                ck_assert_str_eq(text(fig, q, "setting"), text(all, r, "setting"));
                ck_assert_double_eq(num(fig, q, "mean"), num(all, r, "mean"));
                drawn++;
            }
        ck_assert_int_eq(drawn, 1);
    }
    ck_assert_int_eq(chosen, 3 * 6);
    store_table_free(all);
    store_table_free(fig);
}
END_TEST

/* The claims: all nine AdaTT claims run on the comparison; the statistic
 * of "ML-MMoE is worse than MMoE" on task 1 is mean(ML-MMoE MSE) -
 * mean(MMoE MSE) over the repeats. */
START_TEST(test_claims) {
    const char *args[] = {"claims", "adatt-comparison", "--paper", "adatt", "--db", study_db,
                          "--csv",  "--resamples",      "50",      NULL};
    char *out = test_mtlab_ok(0, NULL, args);
    static const char *const claims[] = {"adatt-beats-gated",       "adatt-sp-beats-cross-stitch",
                                         "cross-stitch-weakest",    "fusion-beats-shared-bottom",
                                         "ml-mmoe-worse-than-mmoe", "more-experts-better",
                                         "more-levels-better",      "native-lf-helps",
                                         "fig3-group-blocks"};
    for (size_t i = 0; i < sizeof claims / sizeof claims[0]; i++)
        ck_assert_msg(strstr(out, claims[i]), "no line for %s", claims[i]);
    const char *key = "\"ml-mmoe-worse-than-mmoe\",\"between=0.3 task=t1 a=ml_mmoe b=mmoe\",";
    const char *line = strstr(out, key);
    ck_assert_msg(line != NULL, "%s", out);
    double stat = strtod(line + strlen(key), NULL), a = 0, b = 0;
    for (int rep = 0; rep < 2; rep++) {
        a += final_value("adatt-comparison", "ml_mmoe", rep, "test/loss/t1", NULL) / 2;
        b += final_value("adatt-comparison", "mmoe", rep, "test/loss/t1", NULL) / 2;
    }
    ck_assert_double_eq_tol(stat, a - b, 1e-9);
    /* 3 rivals x 4 tasks for the first claim */
    int lines = 0;
    for (const char *p = out; (p = strstr(p, "\n\"adatt-beats-gated\",")); p++)
        lines++;
    ck_assert_int_eq(lines, 12);
    free(out);

    const char *base[] = {"claims",  "mmoe-baselines",
                          "--paper", "mmoe-baselines",
                          "--db",    study_db,
                          "--csv",   "--resamples",
                          "50",      NULL};
    out = test_mtlab_ok(0, NULL, base);
    ck_assert_ptr_nonnull(strstr(out, "\"l2-cross-stitch-worse-than-sb\",\"correlation=0.5 "
                                      "a=l2_constrained b=shared_bottom\""));
    ck_assert_ptr_nonnull(strstr(out, "\"tf-worst\""));
    free(out);
}
END_TEST

Suite *adatt_study_suite(void) {
    Suite *s = suite_create("adatt_study");
    TCase *tc = tcase_create("adatt_study");
    tcase_add_unchecked_fixture(tc, make_study, remove_study);
    tcase_set_timeout(tc, 120);
    int n;
    plot_registry(&n);
    tcase_add_test(tc, test_reproduce_tiny);
    tcase_add_loop_test(tc, test_entry_data, 0, n);
    tcase_add_test(tc, test_comparison_paired_difference);
    tcase_add_test(tc, test_study_tables);
    tcase_add_test(tc, test_heatmap_from_gates);
    tcase_add_test(tc, test_baselines_choice);
    tcase_add_test(tc, test_claims);
    suite_add_tcase(s, tc);
    return s;
}
