/* test_plot.c -- `mtlab plot` end to end: a small store made by running tiny
 * versions of the MMoE sweeps with the real binary, then for every
 * registered figure and table: the files it writes, a gnuplot run of the
 * script, and the script's inline data compared value for value with the
 * figure's query (plot_query) -- exact, since both print every double as
 * its shortest round-trip text.  Also: what each figure's rows mean
 * (checked against independent SQL), a real PNG / SVG / PDF, and the
 * errors a user meets (unknown name, missing store or experiment, no
 * gnuplot, a failing gnuplot). */
#define _GNU_SOURCE /* setenv, mkdtemp, nftw */
#include <fcntl.h>
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

/* ---- the shared store ------------------------------------------------------ */

/* Tiny versions of the MMoE sweeps: every experiment the registry reads.
 * dim 10, 200 training examples, 20 steps: a trial takes milliseconds. */
#define TINY_DATA  "dim = 10\ntrain = 200\nvalidation = 50\ntest = 50\n"
#define TINY_TRAIN "steps = 20\neval_every = 10\nbatch = 32\n"
#define TINY_MOE   "experts = 3\nexpert_hidden = 4\ntower_hidden = 4\n"
#define TINY_MODEL                                                                                 \
    "experts = 3\nexpert_hidden = 4\ntower_hidden = 4\n[model.shared_bottom]\n"                    \
    "bottom_hidden = 8\n"
#define TINY_GROUPS "tasks = 4\ngroups = 2 2\nbinary = 2 3 4\n"
#define TINY_FUSION                                                                                \
    "experts = 3\nexpert_hidden = 4\ntower_hidden = 4\ntask_experts = 1\nshared_experts = 1\n"     \
    "[model.shared_bottom]\nbottom_hidden = 8\n"

static const char *const sweeps[][2] = {
    {"fig2.ini", "[experiment]\nname = mmoe-fig2\nrepeats = 3\nseed = 2\n"
                 "[data]\ncorrelation = 0, 0.5, 1.0\n" TINY_DATA "[train]\nsteps = 0\n"
                 "[model]\nname = mmoe\n"},
    {"fig3.ini", "[experiment]\nname = mmoe-fig3\nrepeats = 2\nseed = 3\n"
                 "[data]\ncorrelation = 0.5, 1.0\n" TINY_DATA "[train]\nlr = 0.01\n" TINY_TRAIN
                 "[model]\nname = shared_bottom\ntower_hidden = 4\nbottom_hidden = 8\n"},
    {"fig4.ini",
     "[experiment]\nname = mmoe-fig4\nrepeats = 2\nseed = 4\n"
     "[data]\ncorrelation = 0.5, 1.0\n" TINY_DATA "[train]\nlr = 0.001, 0.01\n" TINY_TRAIN
     "[model]\nname = shared_bottom, omoe, mmoe\n" TINY_MODEL},
    {"fig5.ini", "[experiment]\nname = mmoe-fig5\nrepeats = 3\nseed = 5\n"
                 "[data]\ncorrelation = 0.5, 1.0\n" TINY_DATA "[train]\nlr = 0.01\n" TINY_TRAIN
                 "[model]\nname = shared_bottom, omoe, mmoe\n" TINY_MODEL},
    {"gates.ini", "[experiment]\nname = mmoe-gates\nrepeats = 2\nseed = 6\n"
                  "[data]\ncorrelation = 0.5, 1.0\n" TINY_DATA "[train]\nlr = 0.01\n" TINY_TRAIN
                  "[model]\nname = omoe, mmoe\n" TINY_MOE},
    /* AdaTT (issue 12): four tasks in two groups, the adatt- figures' experiments. */
    {"adatt-comparison.ini",
     "[experiment]\nname = adatt-comparison\nrepeats = 2\nseed = 7\n[data]\n" TINY_GROUPS TINY_DATA
     "[train]\n" TINY_TRAIN "[model]\nname = shared_bottom, mmoe, adatt_sp, adatt\n" TINY_FUSION},
    {"adatt-ablation.ini",
     "[experiment]\nname = adatt-ablation\nrepeats = 2\nseed = 8\n[data]\n" TINY_GROUPS TINY_DATA
     "[train]\n" TINY_TRAIN "[model]\nname = adatt_sp\nnative_lf = on, off\nexpert_hidden = 4\n"},
    {"adatt-experts.ini",
     "[experiment]\nname = adatt-experts\nrepeats = 2\nseed = 9\n[data]\n" TINY_GROUPS TINY_DATA
     "[train]\n" TINY_TRAIN "[model]\nname = adatt_sp\ntask_experts = 1, 2\nexpert_hidden = 4\n"},
    {"adatt-levels.ini",
     "[experiment]\nname = adatt-levels\nrepeats = 2\nseed = 10\n[data]\n" TINY_GROUPS TINY_DATA
     "[train]\n" TINY_TRAIN "[model]\nname = adatt_sp\nlevels = 1, 2\nexpert_hidden = 4\n"},
    {"adatt-between.ini", "[experiment]\nname = adatt-between\nrepeats = 2\nseed = "
                          "11\n[data]\nwithin = 0.9\nbetween = 0, "
                          "0.9\n" TINY_GROUPS TINY_DATA "[train]\n" TINY_TRAIN
                          "[model]\nname = shared_bottom, mmoe, adatt_sp, adatt\n" TINY_FUSION},
    {"baselines.ini", "[experiment]\nname = mmoe-baselines\nrepeats = 2\nseed = "
                      "12\n[data]\ncorrelation = 0.5, 1.0\n" TINY_DATA "[train]\n" TINY_TRAIN
                      "[model]\nname = shared_bottom, mmoe, l2_constrained\n" TINY_MODEL
                      "[model.l2_constrained]\ncolumn_hidden = 4\nl2_alpha = 0.001, 0.01\n"},
    /* the MTNAS study's experiments (experiments/mtnas/) */
    {"rho0.ini", "[experiment]\nname = mtnas-rho0\nrepeats = 3\nseed = 7\n"
                 "[data]\ncorrelation = 0\n" TINY_DATA "[train]\nlr = 0.01\n" TINY_TRAIN
                 "[model]\nname = shared_bottom, mmoe, mtnas\n" TINY_MODEL
                 "[model.mtnas]\nlevels = 1\nsubnets = 3\nbottom_hidden = 6\n"},
    {"variants.ini", "[experiment]\nname = mtnas-variants\nrepeats = 2\nseed = 8\n"
                     "[data]\ncorrelation = 0\n" TINY_DATA "[train]\nlr = 0.01\n" TINY_TRAIN
                     "[model]\nname = mtnas\nsubnets = 2\nbottom_hidden = 6\nexpert_hidden = 4\n"
                     "gate = softmax, mean\nquery = search, root\n"},
};
#define N_SWEEPS ((int)(sizeof sweeps / sizeof sweeps[0]))

static char fixture_dir[256], full_db[300], partial_db[300];

static char *path_in(const char *dir, const char *name) {
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void run_sweep(const char *ini_name, const char *ini_text, const char *db) {
    char *ini = path_in(fixture_dir, ini_name), *out, *err;
    write_text(ini, ini_text);
    const char *args[] = {"run", ini, "--db", db, "--jobs", "2", NULL};
    int rc = run_mtlab(&out, &err, args);
    ck_assert_msg(rc == 0, "mtlab run %s: %s", ini_name, err);
    free(out);
    free(err);
    free(ini);
}

/* Once per test case, in the runner: the full store (every experiment) and
 * a partial one (mmoe-fig2 only). */
static void make_stores(void) {
    snprintf(fixture_dir, sizeof fixture_dir, "/tmp/mtlab-plot-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(fixture_dir));
    snprintf(full_db, sizeof full_db, "%s/full.db", fixture_dir);
    snprintf(partial_db, sizeof partial_db, "%s/partial.db", fixture_dir);
    for (int i = 0; i < N_SWEEPS; i++)
        run_sweep(sweeps[i][0], sweeps[i][1], full_db);
    run_sweep(sweeps[0][0], sweeps[0][1], partial_db);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    return remove(path);
}

static void remove_stores(void) {
    if (fixture_dir[0]) nftw(fixture_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- helpers ----------------------------------------------------------------- */

static char *slurp_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    buf[got] = '\0';
    fclose(f);
    if (size) *size = got;
    return buf;
}

static bool exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Runs argv (argv[0] looked up on $PATH) in directory cwd (NULL: here),
 * stdout to /dev/null, stderr captured; returns the exit status. */
static int run_prog(const char *cwd, char *const argv[], char **err_text) {
    char err_path[] = "/tmp/mtlab-plot-err-XXXXXX";
    int err_fd = mkstemp(err_path);
    ck_assert(err_fd >= 0);
    pid_t pid = fork();
    ck_assert(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(err_fd, 2);
        if (cwd && chdir(cwd) != 0) _exit(126);
        execvp(argv[0], argv);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    close(err_fd);
    *err_text = slurp_file(err_path, NULL);
    unlink(err_path);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* `mtlab plot ARGS... --db db --out dir` */
static int plot(const char *db, const char *dir, char **out, char **err, const char *a1,
                const char *a2, const char *a3, const char *a4) {
    const char *args[16] = {"plot"};
    int n = 1;
    const char *extra[] = {a1, a2, a3, a4};
    for (int i = 0; i < 4 && extra[i]; i++)
        args[n++] = extra[i];
    if (db) args[n++] = "--db", args[n++] = db;
    if (dir) args[n++] = "--out", args[n++] = dir;
    args[n] = NULL;
    return run_mtlab(out, err, args);
}

/* The figure's query on the store, through the library. */
static store_table_t *query(const char *db, const plot_figure_t *fig, const plot_params_t *params) {
    store_t *s;
    err_t err = {0};
    ck_assert_msg(store_open(&s, db, STORE_READONLY, &err) == 0, "%s", err.msg);
    store_table_t *t;
    ck_assert_msg(plot_query(s, fig, params, &t, &err) == 0, "%s", err.msg);
    store_close(s);
    return t;
}

static double num(const store_table_t *t, int r, const char *column) {
    for (int c = 0; c < t->n_cols; c++)
        if (strcmp(t->names[c], column) == 0) {
            const char *s = store_table_cell(t, r, c);
            return s ? strtod(s, NULL) : NAN;
        }
    ck_abort_msg("no column %s", column);
    return NAN;
}

static const char *text(const store_table_t *t, int r, const char *column) {
    for (int c = 0; c < t->n_cols; c++)
        if (strcmp(t->names[c], column) == 0) return store_table_cell(t, r, c);
    ck_abort_msg("no column %s", column);
    return NULL;
}

/* First column of the first row of sql on db, as a double. */
static double sql1(const char *db, const char *sql) {
    sqlite3 *h;
    ck_assert_int_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    ck_assert_msg(sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql,
                  sqlite3_errmsg(h));
    double v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_double(st, 0) : NAN;
    sqlite3_finalize(st);
    sqlite3_close(h);
    return v;
}




/* ---- every registered figure and table --------------------------------------- */

START_TEST(test_list) {
    char *out, *err;
    const char *args[] = {"plot", "--list", NULL};
    ck_assert_int_eq(run_mtlab(&out, &err, args), 0);
    int n;
    const plot_figure_t *reg = plot_registry(&n);
    ck_assert_int_ge(n, 7);
    for (int i = 0; i < n; i++) {
        ck_assert_msg(strstr(out, reg[i].name) != NULL, "--list lacks %s", reg[i].name);
        ck_assert_msg(strstr(out, reg[i].description) != NULL, "--list lacks %s's description",
                      reg[i].name);
        ck_assert_ptr_eq(plot_find(reg[i].name), &reg[i]);
    }
    free(out);
    free(err);
}
END_TEST

/* Whether the fixture store holds the experiments of figure `name`: the
 * MMoE, AdaTT and MTNAS sweeps above; the SNR entries (snr-) are tested by
 * their own suite (test_routes.c). */
static bool in_fixture(const char *name) {
    return strncmp(name, "mmoe-", 5) == 0 || strncmp(name, "adatt-", 6) == 0 ||
           strncmp(name, "mtnas-", 6) == 0;
}

/* Loop over the registry: each entry's files, and their data = its query. */
START_TEST(test_each_entry) {
    int n;
    const plot_figure_t *fig = &plot_registry(&n)[_i];
    if (!in_fixture(fig->name)) return;
    char *dir = test_tmpdir(), *out, *err;
    int rc = plot(full_db, dir, &out, &err, fig->name, "--no-render", NULL, NULL);
    ck_assert_msg(rc == 0, "mtlab plot %s: exit %d: %s", fig->name, rc, err);
    store_table_t *t = query(full_db, fig, NULL);
    ck_assert_msg(t->n_rows > 0, "%s: no rows on the test store", fig->name);
    char name[128];
    if (fig->kind == PLOT_FIGURE) {
        snprintf(name, sizeof name, "%s.gp", fig->name);
        char *script = path_in(dir, name);
        ck_assert_msg(exists(script), "no %s", script);
        snprintf(name, sizeof name, "%s.png", fig->name);
        char *png = path_in(dir, name);
        ck_assert_msg(!exists(png), "--no-render drew %s", png);
        ck_assert_ptr_nonnull(strstr(out, script));
        plotcheck_script_data(script, t);
        plotcheck_gnuplot_runs(script);
        free(script);
        free(png);
    } else {
        snprintf(name, sizeof name, "%s.md", fig->name);
        char *md = path_in(dir, name);
        char *file = slurp_file(md, NULL);
        ck_assert_msg(file != NULL, "no %s", md);
        /* The file and stdout hold the same markdown: header, rule, one line a row. */
        ck_assert_str_eq(file, out);
        int lines = 0;
        for (char *p = out; *p; p++)
            lines += *p == '\n';
        ck_assert_int_eq(lines, t->n_rows + 2);
        ck_assert_msg(strncmp(out, "| ", 2) == 0, "%s", out);
        char *header = strndup(out, (size_t)(strchr(out, '\n') - out));
        for (int c = 0; c < t->n_cols; c++)
            ck_assert_msg(strstr(header, t->names[c]), "no column %s", t->names[c]);
        free(header);
        ck_assert_ptr_nonnull(strstr(out, "\n| ---"));
        /* CSV: the same rows at full precision. */
        free(out);
        free(err);
        rc = plot(full_db, dir, &out, &err, fig->name, "--format", "csv", NULL);
        ck_assert_msg(rc == 0, "%s", err);
        lines = 0;
        for (char *p = out; *p; p++)
            lines += *p == '\n';
        ck_assert_int_eq(lines, t->n_rows + 1);
        snprintf(name, sizeof name, "%s.csv", fig->name);
        char *csv = path_in(dir, name);
        ck_assert(exists(csv));
        free(csv);
        free(md);
        free(file);
    }
    store_table_free(t);
    free(out);
    free(err);
    free(dir);
}
END_TEST

/* ---- what the rows mean ------------------------------------------------------ */

/* Fig 2: per cosine, the mean Pearson over the three datasets. */
START_TEST(test_fig2_values) {
    store_table_t *t = query(full_db, plot_find("mmoe-fig2"), NULL);
    ck_assert_int_eq(t->n_rows, 3);
    for (int r = 0; r < t->n_rows; r++) {
        char sql[512];
        snprintf(sql, sizeof sql,
                 "SELECT avg(value) FROM v_final WHERE experiment = 'mmoe-fig2' AND name = "
                 "'data/pearson/t1-t2' AND correlation = %s",
                 text(t, r, "correlation"));
        ck_assert_double_eq_tol(num(t, r, "mean"), sql1(full_db, sql), 1e-12);
        ck_assert_double_eq(num(t, r, "n"), 3);
        ck_assert(num(t, r, "sd") >= 0);
    }
    /* Correlated weights give correlated labels. */
    ck_assert(num(t, 2, "mean") > num(t, 1, "mean") && num(t, 1, "mean") > num(t, 0, "mean"));
    store_table_free(t);
}
END_TEST

/* Fig 4: each curve is at the lr with the lowest mean final validation loss
 * of its model and correlation, computed here without v_best_lr. */
START_TEST(test_fig4_best_lr) {
    store_table_t *t = query(full_db, plot_find("mmoe-fig4"), NULL);
    ck_assert_int_eq(t->n_rows, 3 * 2 * 2); /* models x correlations x evaluations */
    for (int r = 0; r < t->n_rows; r++) {
        char sql[768];
        snprintf(sql, sizeof sql,
                 "SELECT lr FROM v_final WHERE experiment = 'mmoe-fig4' AND name = "
                 "'val/loss/total' AND model = '%s' AND correlation = %s GROUP BY lr "
                 "ORDER BY avg(value) LIMIT 1",
                 text(t, r, "model"), text(t, r, "correlation"));
        ck_assert_double_eq(num(t, r, "lr"), sql1(full_db, sql));
        snprintf(sql, sizeof sql,
                 "SELECT avg(m.value) FROM metric m JOIN v_final f ON f.trial_id = m.trial_id "
                 "AND f.name = 'test/loss/t1' WHERE f.experiment = 'mmoe-fig4' AND f.model = "
                 "'%s' AND f.correlation = %s AND f.lr = %s AND m.name = 'test/loss/t1' AND "
                 "m.step = %s",
                 text(t, r, "model"), text(t, r, "correlation"), text(t, r, "lr"),
                 text(t, r, "step"));
        ck_assert_double_eq_tol(num(t, r, "mean"), sql1(full_db, sql), 1e-12);
        ck_assert_double_eq(num(t, r, "n"), 2);
    }
    store_table_free(t);
}
END_TEST

/* Fig 5: each panel's bins count all its runs; a row's panels share edges
 * that span the row's final losses. */
START_TEST(test_fig5_bins) {
    plot_params_t params = {NULL, NULL, 7, NULL};
    store_table_t *t = query(full_db, plot_find("mmoe-fig5"), &params);
    ck_assert_int_eq(t->n_rows, 2 * 3 * 7);
    for (int p = 0; p < 6; p++) {
        double total = 0;
        for (int b = 0; b < 7; b++) {
            int r = p * 7 + b;
            ck_assert_double_eq(num(t, r, "bin"), b);
            ck_assert(num(t, r, "hi") > num(t, r, "lo"));
            if (b) ck_assert_double_eq_tol(num(t, r, "lo"), num(t, r - 1, "hi"), 1e-15);
            /* same edges as the first panel of the row */
            ck_assert_double_eq(num(t, r, "lo"), num(t, (p / 3) * 21 + b, "lo"));
            total += num(t, r, "count");
        }
        ck_assert_double_eq(total, 3);
        ck_assert_double_eq(num(t, p * 7, "n"), 3);
    }
    for (int row = 0; row < 2; row++) {
        char sql[512];
        snprintf(sql, sizeof sql,
                 "SELECT min(value) FROM v_final WHERE experiment = 'mmoe-fig5' AND "
                 "name = 'test/loss/t1' AND correlation = %s",
                 text(t, row * 21, "correlation"));
        ck_assert_double_eq_tol(num(t, row * 21, "lo"), sql1(full_db, sql), 1e-12);
        snprintf(sql, sizeof sql,
                 "SELECT max(value) FROM v_final WHERE experiment = 'mmoe-fig5' AND "
                 "name = 'test/loss/t1' AND correlation = %s",
                 text(t, row * 21, "correlation"));
        ck_assert_double_eq_tol(num(t, row * 21 + 20, "hi"), sql1(full_db, sql), 1e-12);
    }
    store_table_free(t);
}
END_TEST

/* Gates: a gate's mean weights sum to 1 over the ranks, and the reference
 * gate's (the first) fall with the rank it defines. */
START_TEST(test_gates_values) {
    store_table_t *t = query(full_db, plot_find("mmoe-gates"), NULL);
    /* omoe: 1 gate, mmoe: 2 gates; x 2 correlations x 3 experts */
    ck_assert_int_eq(t->n_rows, (1 + 2) * 2 * 3);
    for (int r = 0; r < t->n_rows; r += 3) {
        double sum = 0;
        for (int k = 0; k < 3; k++) {
            ck_assert_double_eq(num(t, r + k, "rank"), k + 1);
            ck_assert_double_eq(num(t, r + k, "n"), 2);
            sum += num(t, r + k, "mean");
        }
        ck_assert_double_eq_tol(sum, 1, 1e-5);
        const char *gate = text(t, r, "gate");
        if (strcmp(gate, "shared") == 0 || strcmp(gate, "t1") == 0)
            ck_assert(num(t, r, "mean") >= num(t, r + 1, "mean") &&
                      num(t, r + 1, "mean") >= num(t, r + 2, "mean"));
    }
    store_table_free(t);

    t = query(full_db, plot_find("mmoe-gates-hist"), NULL);
    int bins = (int)sql1(full_db, "SELECT max(bin) + 1 FROM gate_hist");
    ck_assert_int_eq(t->n_rows, (1 + 2) * 2 * bins);
    for (int r = 0; r < t->n_rows; r += bins) {
        double sum = 0;
        for (int k = 0; k < bins; k++)
            sum += num(t, r + k, "fraction");
        ck_assert_double_eq_tol(sum, 1, 1e-12);
        ck_assert_double_eq(num(t, r + bins - 1, "hi"), 1);
    }
    store_table_free(t);
}
END_TEST

/* The table: one row per model and correlation, n runs, min <= median <= max. */
START_TEST(test_table_values) {
    store_table_t *t = query(full_db, plot_find("mmoe-table"), NULL);
    ck_assert_int_eq(t->n_rows, 6);
    for (int r = 0; r < t->n_rows; r++) {
        ck_assert_double_eq(num(t, r, "n"), 3);
        ck_assert_double_eq(num(t, r, "failed"), 0);
        ck_assert(num(t, r, "min") <= num(t, r, "median"));
        ck_assert(num(t, r, "median") <= num(t, r, "max"));
        ck_assert(num(t, r, "min") <= num(t, r, "mean") && num(t, r, "mean") <= num(t, r, "max"));
    }
    ck_assert_str_eq(text(t, 0, "model"), "shared_bottom");
    store_table_free(t);
    t = query(full_db, plot_find("mmoe-table-fig4"), NULL);
    ck_assert_int_eq(t->n_rows, 6);
    store_table_free(t);
}
END_TEST

/* ---- rendering ------------------------------------------------------------------ */

static unsigned be32(const unsigned char *p) {
    return (unsigned)p[0] << 24 | (unsigned)p[1] << 16 | (unsigned)p[2] << 8 | p[3];
}

START_TEST(test_render_png) {
    if (!plot_have_gnuplot()) return;
    char *dir = test_tmpdir(), *out, *err;
    int rc = plot(full_db, dir, &out, &err, "mmoe-fig4", NULL, NULL, NULL);
    ck_assert_msg(rc == 0, "%s", err);
    char *png = path_in(dir, "mmoe-fig4.png");
    ck_assert_ptr_nonnull(strstr(out, png));
    size_t size;
    unsigned char *data = (unsigned char *)slurp_file(png, &size);
    ck_assert_ptr_nonnull(data);
    ck_assert(size > 10000 && size < 5000000);
    ck_assert(memcmp(data, "\x89PNG\r\n\x1a\n", 8) == 0);
    /* IHDR: a panel per correlation (two here) side by side, wider than tall */
    unsigned width = be32(data + 16), height = be32(data + 20);
    ck_assert_msg(width >= 1000 && height >= 400 && width > height, "%ux%u", width, height);
    free(data);

    /* The script alone, run from elsewhere, writes the image next to itself. */
    unlink(png);
    char *script = path_in(dir, "mmoe-fig4.gp");
    char *const argv[] = {"gnuplot", script, NULL};
    char *gp_err;
    ck_assert_int_eq(run_prog("/", argv, &gp_err), 0);
    ck_assert_msg(exists(png), "gnuplot %s from / wrote no %s: %s", script, png, gp_err);
    free(gp_err);
    free(script);
    free(png);
    free(out);
    free(err);

    /* svg and pdf */
    const char *formats[][2] = {{"svg", "<svg"}, {"pdf", "%PDF"}};
    for (int i = 0; i < 2; i++) {
        rc = plot(full_db, dir, &out, &err, "mmoe-fig2", "--format", formats[i][0], NULL);
        ck_assert_msg(rc == 0, "%s", err);
        char name[64];
        snprintf(name, sizeof name, "mmoe-fig2.%s", formats[i][0]);
        char *file = path_in(dir, name), *content = slurp_file(file, &size);
        ck_assert_msg(content != NULL, "no %s", file);
        ck_assert_msg(
            memmem(content, size < 400 ? size : 400, formats[i][1], strlen(formats[i][1])) != NULL,
            "%s is not %s", file, formats[i][0]);
        free(content);
        free(file);
        free(out);
        free(err);
    }
    free(dir);
}
END_TEST

/* --all makes every entry whose experiment is in the store and skips the
 * others with a note. */
START_TEST(test_all) {
    char *dir = test_tmpdir(), *out, *err;
    int rc = plot(partial_db, dir, &out, &err, "--all", "--no-render", NULL, NULL);
    ck_assert_msg(rc == 0, "%s", err);
    char *gp = path_in(dir, "mmoe-fig2.gp"), *gp4 = path_in(dir, "mmoe-fig4.gp");
    ck_assert(exists(gp));
    ck_assert(!exists(gp4));
    ck_assert_ptr_nonnull(strstr(err, "skipped mmoe-fig4: experiment mmoe-fig4 is not in"));
    ck_assert_ptr_nonnull(strstr(err, "skipped mmoe-table"));
    free(out);
    free(err);
    free(gp);
    free(gp4);

    rc = plot(full_db, dir, &out, &err, "--all", "--no-render", NULL, NULL);
    ck_assert_msg(rc == 0, "%s", err);
    int n;
    const plot_figure_t *reg = plot_registry(&n);
    for (int i = 0; i < n; i++) {
        char name[128];
        snprintf(name, sizeof name, "%s.%s", reg[i].name, reg[i].kind == PLOT_FIGURE ? "gp" : "md");
        char *file = path_in(dir, name);
        if (in_fixture(reg[i].name)) /* the experiments of this store */
            ck_assert_msg(exists(file), "--all wrote no %s", file);
        free(file);
    }
    ck_assert_ptr_null(strstr(err, "skipped mmoe-"));
    free(out);
    free(err);
    free(dir);
}
END_TEST

/* --metric and --experiment override the figure's own; --data prints rows. */
START_TEST(test_overrides) {
    char *dir = test_tmpdir(), *out, *err;
    int rc = plot(full_db, dir, &out, &err, "mmoe-fig3", "--metric", "val/loss/t2", "--no-render");
    ck_assert_msg(rc == 0, "%s", err);
    char *script = path_in(dir, "mmoe-fig3.gp");
    plot_params_t params = {NULL, "val/loss/t2", 0, NULL};
    store_table_t *t = query(full_db, plot_find("mmoe-fig3"), &params);
    plotcheck_script_data(script, t);
    char *gp = slurp_file(script, NULL);
    ck_assert_ptr_nonnull(strstr(gp, ":metric = val/loss/t2"));
    ck_assert_ptr_nonnull(strstr(gp, "val loss, task 2"));
    free(gp);
    store_table_free(t);
    free(out);
    free(err);

    /* Fig 3's drawing of the fig4 experiment: one line per model, lr, correlation. */
    rc = plot(full_db, dir, &out, &err, "mmoe-fig3", "--experiment", "mmoe-fig4", "--no-render");
    ck_assert_msg(rc == 0, "%s", err);
    params = (plot_params_t){"mmoe-fig4", NULL, 0, NULL};
    t = query(full_db, plot_find("mmoe-fig3"), &params);
    ck_assert_int_eq(t->n_rows, 3 * 2 * 2 * 2);
    plotcheck_script_data(script, t);
    plotcheck_gnuplot_runs(script);
    store_table_free(t);
    free(out);
    free(err);

    rc = plot(full_db, NULL, &out, &err, "mmoe-fig2", "--data", NULL, NULL);
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert(strncmp(out, "\"correlation\",\"n\",\"mean\",\"sd\"\n", 30) == 0);
    free(out);
    free(err);
    free(script);
    free(dir);
}
END_TEST

/* ---- errors ------------------------------------------------------------------------ */

START_TEST(test_errors) {
    char *dir = test_tmpdir(), *out, *err;
    /* unknown name: usage error naming the known ones */
    ck_assert_int_eq(plot(full_db, dir, &out, &err, "mmoe-fig9", NULL, NULL, NULL), 2);
    ck_assert_ptr_nonnull(strstr(err, "unknown figure 'mmoe-fig9'"));
    ck_assert_ptr_nonnull(strstr(err, "mmoe-fig4"));
    free(out);
    free(err);
    /* no name */
    ck_assert_int_eq(plot(full_db, dir, &out, &err, NULL, NULL, NULL, NULL), 2);
    free(out);
    free(err);
    /* a figure in a table format */
    ck_assert_int_eq(plot(full_db, dir, &out, &err, "mmoe-fig4", "--format", "md", NULL), 2);
    free(out);
    free(err);
    /* missing store */
    char *nodb = path_in(dir, "none.db");
    ck_assert_int_eq(plot(nodb, dir, &out, &err, "mmoe-fig4", NULL, NULL, NULL), 1);
    ck_assert_ptr_nonnull(strstr(err, "none.db"));
    ck_assert(!exists(nodb));
    free(out);
    free(err);
    /* missing experiment: says which sweep makes it */
    ck_assert_int_eq(plot(partial_db, dir, &out, &err, "mmoe-fig4", NULL, NULL, NULL), 1);
    ck_assert_msg(strstr(err, "experiment mmoe-fig4 is not in ") &&
                      strstr(err, ": run build/mtlab run experiments/mmoe/fig4.ini first"),
                  "%s", err);
    free(out);
    free(err);
    /* an experiment with nothing to draw */
    ck_assert_int_eq(
        plot(full_db, dir, &out, &err, "mmoe-fig3", "--metric", "test/loss/t9", "--no-render"), 1);
    ck_assert_ptr_nonnull(strstr(err, "nothing to draw"));
    free(out);
    free(err);
    free(nodb);
    free(dir);
}
END_TEST

/* Without gnuplot the script is kept and the run succeeds with a note; a
 * failing gnuplot fails the run with its message. */
START_TEST(test_gnuplot_missing_or_failing) {
    char *dir = test_tmpdir(), *out, *err;
    char *bin = path_in(dir, "bin");
    ck_assert_int_eq(mkdir(bin, 0755), 0);
    setenv("PATH", bin, 1); /* this test's process only (Check forks each test) */
    int rc = plot(full_db, dir, &out, &err, "mmoe-fig3", NULL, NULL, NULL);
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_ptr_nonnull(strstr(err, "gnuplot is not installed"));
    char *script = path_in(dir, "mmoe-fig3.gp"), *png = path_in(dir, "mmoe-fig3.png");
    ck_assert(exists(script));
    ck_assert(!exists(png));
    free(out);
    free(err);

    char *fake = path_in(bin, "gnuplot");
    write_text(fake, "#!/bin/sh\necho \"line 7: something broke\" >&2\nexit 1\n");
    ck_assert_int_eq(chmod(fake, 0755), 0);
    rc = plot(full_db, dir, &out, &err, "mmoe-fig3", NULL, NULL, NULL);
    ck_assert_int_eq(rc, 1);
    ck_assert_ptr_nonnull(strstr(err, "gnuplot"));
    ck_assert_ptr_nonnull(strstr(err, "line 7: something broke"));
    free(out);
    free(err);
    free(fake);
    free(script);
    free(png);
    free(bin);
    free(dir);
}
END_TEST

/* ---- bands, --sql, --facet (issue 15) --------------------------------------------- */

#include "plot/curves.h"

/* The values behind one point of a curve figure, from the metric table:
 * the done trials of (experiment, model, lr, correlation) at step. */
static int point_values(const char *db, const char *experiment, const store_table_t *t, int r,
                        const char *metric, double *v, int max) {
    sqlite3 *h;
    ck_assert_int_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    const char *sql =
        "SELECT m.value FROM metric m JOIN trial t ON t.id = m.trial_id "
        "JOIN experiment e ON e.id = t.experiment_id "
        "JOIN param pl ON pl.trial_id = t.id AND pl.key = 'train.lr' "
        "JOIN param pc ON pc.trial_id = t.id AND pc.key = 'data.correlation' "
        "WHERE e.name = ?1 AND t.status = 'done' AND t.model = ?2 AND pl.value = ?3 "
        "AND pc.value = ?4 AND m.name = ?5 AND m.step = ?6 AND m.value IS NOT NULL";
    ck_assert_int_eq(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_text(st, 1, experiment, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, text(t, r, "model"), -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 3, num(t, r, "lr"));
    sqlite3_bind_double(st, 4, num(t, r, "correlation"));
    sqlite3_bind_text(st, 5, metric, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 6, num(t, r, "step"));
    int n = 0;
    while (sqlite3_step(st) == SQLITE_ROW && n < max)
        v[n++] = sqlite3_column_double(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return n;
}

/* Figs 3 and 4: every row's lo and hi are the mean -+ the half-width of the
 * chosen band, computed here from the raw values (two-pass sample sd; the
 * view sums in one pass: 1e-6 relative); none and n < 2 leave them NULL. */
START_TEST(test_fig_bands) {
    const char *figs[] = {"mmoe-fig3", "mmoe-fig4"};
    const char *bands[] = {"ci95", "se", "sd", "none"};
    for (int fi = 0; fi < 2; fi++)
        for (int bi = 0; bi < 4; bi++) {
            plot_params_t params = {NULL, NULL, 0, bands[bi]};
            const plot_figure_t *fig = plot_find(figs[fi]);
            store_table_t *t = query(full_db, fig, &params);
            ck_assert_int_gt(t->n_rows, 0);
            for (int r = 0; r < t->n_rows; r++) {
                double v[64];
                int n = point_values(full_db, fig->experiment, t, r, fig->metric, v, 64);
                ck_assert_int_eq(n, (int)num(t, r, "n"));
                double mean, sd, se;
                curves_stats(v, n, &mean, &sd, &se);
                ck_assert_double_eq_tol(num(t, r, "mean"), mean, 1e-12 * fabs(mean));
                double half = bi == 0 ? curves_t975(n - 1) * se : bi == 1 ? se : sd;
                if (bi == 3 || n < 2) {
                    ck_assert_ptr_null(text(t, r, "lo"));
                    ck_assert_ptr_null(text(t, r, "hi"));
                    continue;
                }
                ck_assert_double_eq_tol(num(t, r, "sd_sample"), sd, 1e-6 * sd + 1e-12);
                ck_assert_double_eq_tol(num(t, r, "se"), se, 1e-6 * se + 1e-12);
                ck_assert_msg(fabs(num(t, r, "lo") - (mean - half)) <= 1e-6 * half + 1e-12 &&
                                  fabs(num(t, r, "hi") - (mean + half)) <= 1e-6 * half + 1e-12,
                              "%s --band %s row %d: [%g, %g], want %g -+ %g", figs[fi],
                              bands[bi], r, num(t, r, "lo"), num(t, r, "hi"), mean, half);
            }
            store_table_free(t);
        }
    /* The command: the script holds the rows of the band asked for, draws
     * them as filled curves (none: not at all) and the title says which. */
    char *dir = test_tmpdir(), *out, *err;
    char *script = path_in(dir, "mmoe-fig4.gp");
    int rc = plot(full_db, dir, &out, &err, "mmoe-fig4", "--band", "se", "--no-render");
    ck_assert_msg(rc == 0, "%s", err);
    plot_params_t se_params = {NULL, NULL, 0, "se"};
    store_table_t *t = query(full_db, plot_find("mmoe-fig4"), &se_params);
    plotcheck_script_data(script, t);
    plotcheck_gnuplot_runs(script);
    char *gp = slurp_file(script, NULL);
    ck_assert_ptr_nonnull(strstr(gp, "with filledcurves"));
    ck_assert_ptr_nonnull(strstr(gp, "band: ± 1 standard error"));
    free(gp);
    store_table_free(t);
    free(out);
    free(err);
    rc = plot(full_db, dir, &out, &err, "mmoe-fig4", "--band", "none", "--no-render");
    ck_assert_msg(rc == 0, "%s", err);
    gp = slurp_file(script, NULL);
    ck_assert_ptr_null(strstr(gp, "filledcurves"));
    ck_assert_ptr_null(strstr(gp, "band:"));
    free(gp);
    free(out);
    free(err);
    /* the default is ci95 */
    rc = plot(full_db, dir, &out, &err, "mmoe-fig3", "--no-render", NULL, NULL);
    ck_assert_msg(rc == 0, "%s", err);
    free(script);
    script = path_in(dir, "mmoe-fig3.gp");
    gp = slurp_file(script, NULL);
    ck_assert_ptr_nonnull(strstr(gp, "band: 95% CI of the mean"));
    ck_assert_ptr_nonnull(strstr(gp, "with filledcurves"));
    free(gp);
    free(out);
    free(err);
    rc = plot(full_db, dir, &out, &err, "mmoe-fig3", "--band", "ci90", NULL);
    ck_assert_int_eq(rc, 2);
    ck_assert_ptr_nonnull(strstr(err, "--band: ci95, se, sd or none, not 'ci90'"));
    free(out);
    free(err);
    free(script);
    free(dir);
}
END_TEST

/* `mtlab plot --sql`: one datablock per --group value, in order of first
 * appearance, holding exactly the query's (x, y, lo, hi) of that group in
 * query order; and the errors, each exit 2 with one line. */
START_TEST(test_sql_plot) {
    const char *query_text =
        "SELECT model, step, mean, mean - se AS lo, mean + se AS hi FROM v_curve "
        "WHERE experiment = 'mmoe-fig5' AND name = 'test/loss/t1' AND correlation = 0.5 "
        "ORDER BY CASE model WHEN 'mmoe' THEN 0 ELSE 1 END, model, step";
    char *dir = test_tmpdir(), *out, *err;
    const char *args[] = {"plot",   "--db",      full_db, "--out",     dir,  "--sql", query_text,
                          "--x",    "step",      "--y",   "mean",      "--group", "model",
                          "--band-lo", "lo",     "--band-hi", "hi",    "--name",  "mine",
                          "--no-render", NULL};
    int rc = run_mtlab(&out, &err, args);
    ck_assert_msg(rc == 0, "%s", err);
    char *script = path_in(dir, "mine.gp");
    char expect[600];
    snprintf(expect, sizeof expect, "wrote %s (3 lines)\n", script);
    ck_assert_str_eq(out, expect);
    free(out);
    free(err);
    store_t *s;
    err_t e = {0};
    ck_assert(store_open(&s, full_db, STORE_READONLY, &e) == 0);
    store_table_t *t;
    ck_assert_msg(store_query(s, query_text, &t, &e) == 0, "%s", e.msg);
    store_close(s);
    ck_assert_int_eq(t->n_rows, 3 * 2); /* models x evaluations */
    char *gp = slurp_file(script, NULL);
    /* walk the blocks: $l1 is mmoe (first in the query), rows as queried */
    const char *order[] = {"mmoe", "omoe", "shared_bottom"};
    const char *p = gp;
    for (int l = 0; l < 3; l++) {
        char head[128];
        snprintf(head, sizeof head, "$l%d << EOD\n# model %s\n", l + 1, order[l]);
        p = strstr(p, head);
        ck_assert_msg(p != NULL, "no block '%s' in:\n%s", head, gp);
        p += strlen(head);
        for (int r = 0; r < t->n_rows; r++) {
            if (strcmp(store_table_cell(t, r, 0), order[l]) != 0) continue;
            double got[4];
            ck_assert_int_eq(sscanf(p, "%lf %lf %lf %lf", &got[0], &got[1], &got[2], &got[3]), 4);
            for (int c = 0; c < 4; c++)
                ck_assert_msg(got[c] == strtod(store_table_cell(t, r, c + 1), NULL),
                              "line %d row %d column %d: %.17g vs %s", l, r, c, got[c],
                              store_table_cell(t, r, c + 1));
            p = strchr(p, '\n') + 1;
        }
        ck_assert_msg(strncmp(p, "EOD\n", 4) == 0, "%s", p);
    }
    ck_assert_ptr_nonnull(strstr(gp, "$l1 using 1:3:4 with filledcurves"));
    ck_assert_ptr_nonnull(strstr(gp, "title \"model omoe\""));
    free(gp);
    store_table_free(t);
    plotcheck_gnuplot_runs(script);

    const struct {
        const char *args[12];
        const char *fragment;
    } bad[] = {
        {{"--sql", "SELEC step FROM v_curve", "--x", "step", "--y", "mean"}, "syntax error"},
        {{"--sql", "SELECT step, mean FROM v_curve", "--x", "step", "--y", "maen"},
         "--y: the query has no column 'maen' (it has: step, mean)"},
        {{"--sql", "SELECT step, mean FROM v_curve", "--x", "step", "--y", "mean", "--group", "g"},
         "--group: the query has no column 'g'"},
        {{"--sql", "SELECT model, mean FROM v_curve", "--x", "model", "--y", "mean"},
         "--x: column 'model' holds"},
        {{"--sql", "SELECT step, mean FROM v_curve", "--x", "step", "--y", "mean", "--band-lo",
          "mean"},
         "--band-lo and --band-hi go together"},
        {{"--sql", "SELECT step, mean FROM v_curve", "--y", "mean"}, "--sql needs --x COL and --y"},
        {{"--sql", "DELETE FROM trial", "--x", "a", "--y", "b"}, "read-only"},
        {{"--sql", "SELECT 1 AS a, 2 AS b WHERE 0", "--x", "a", "--y", "b"}, "no rows"},
        {{"--x", "a"}, "go with --sql"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *argv[20] = {"plot", "--db", full_db, "--out", dir, "--no-render"};
        int n = 6;
        for (int k = 0; k < 12 && bad[i].args[k]; k++)
            argv[n++] = bad[i].args[k];
        argv[n] = NULL;
        rc = run_mtlab(&out, &err, argv);
        ck_assert_msg(rc == 2 && strstr(err, bad[i].fragment) && test_count_lines(err) == 1,
                      "case %zu: exit %d, '%s' not in: %s", i, rc, bad[i].fragment, err);
        free(out);
        free(err);
    }
    ck_assert_int_eq(sql1(full_db, "SELECT count(*) FROM trial") > 0, 1); /* DELETE refused */
    free(script);
    free(dir);
}
END_TEST

/* `--curves --facet`: one panel per value, the other keys as lines, each
 * line in the same colour in every panel. */
START_TEST(test_curves_facet) {
    char *dir = test_tmpdir(), *out, *err;
    const char *args[] = {"plot", "--db", full_db, "--out", dir, "--curves", "mmoe-fig5",
                          "--metric", "test/loss/t1", "--facet", "data.correlation",
                          "--group-by", "model", "--no-render", NULL};
    int rc = run_mtlab(&out, &err, args);
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_ptr_nonnull(strstr(out, "(6 lines)"));
    char *script = path_in(dir, "mmoe-fig5-test-loss-t1.gp");
    char *gp = slurp_file(script, NULL);
    ck_assert_ptr_nonnull(strstr(gp, "set multiplot layout 1,2"));
    ck_assert_ptr_nonnull(strstr(gp, "set title \"data.correlation 0.5\"\nplot"));
    ck_assert_ptr_nonnull(strstr(gp, "set title \"data.correlation 1\"\nplot"));
    ck_assert_ptr_nonnull(strstr(gp, "$c1 << EOD\n# data.correlation 0.5, model mmoe\n"));
    ck_assert_ptr_nonnull(strstr(gp, "$c6 << EOD\n# data.correlation 1, model shared_bottom\n"));
    /* the same model, the same linetype in both panels */
    const char *models[] = {"mmoe", "omoe", "shared_bottom"};
    for (int m = 0; m < 3; m++) {
        char a[128], b[128];
        snprintf(a, sizeof a, "$c%d using 1:3 with lines lt %d title \"model %s\"", m + 1, m + 1,
                 models[m]);
        snprintf(b, sizeof b, "$c%d using 1:3 with lines lt %d title \"model %s\"", m + 4, m + 1,
                 models[m]);
        ck_assert_msg(strstr(gp, a) && strstr(gp, b), "'%s' / '%s' not in:\n%s", a, b, gp);
    }
    free(gp);
    plotcheck_gnuplot_runs(script);
    free(out);
    free(err);
    const char *bad[] = {"plot", "--db", full_db, "--curves", "mmoe-fig5", "--facet",
                         "data.corelation", NULL};
    rc = run_mtlab(&out, &err, bad);
    ck_assert_int_eq(rc, 2);
    ck_assert_msg(strstr(err, "--facet: no column 'data.corelation'"), "%s", err);
    free(out);
    free(err);
    const char *bad2[] = {"plot", "--db", full_db, "mmoe-fig3", "--facet", "model", NULL};
    rc = run_mtlab(&out, &err, bad2);
    ck_assert_int_eq(rc, 2);
    ck_assert_ptr_nonnull(strstr(err, "--facet goes with --curves"));
    free(out);
    free(err);
    free(script);
    free(dir);
}
END_TEST

Suite *plot_suite(void) {
    Suite *s = suite_create("plot");
    TCase *tc = tcase_create("plot");
    tcase_add_unchecked_fixture(tc, make_stores, remove_stores);
    tcase_set_timeout(tc, 120);
    int n;
    plot_registry(&n);
    tcase_add_test(tc, test_list);
    tcase_add_loop_test(tc, test_each_entry, 0, n);
    tcase_add_test(tc, test_fig2_values);
    tcase_add_test(tc, test_fig4_best_lr);
    tcase_add_test(tc, test_fig5_bins);
    tcase_add_test(tc, test_gates_values);
    tcase_add_test(tc, test_table_values);
    tcase_add_test(tc, test_render_png);
    tcase_add_test(tc, test_all);
    tcase_add_test(tc, test_overrides);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_gnuplot_missing_or_failing);
    tcase_add_test(tc, test_fig_bands);
    tcase_add_test(tc, test_sql_plot);
    tcase_add_test(tc, test_curves_facet);
    suite_add_tcase(s, tc);
    return s;
}
