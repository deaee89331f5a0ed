/* test_workbench.c -- the everyday commands around a store, as a user runs
 * them: the runs table (`mtlab trials`, `export --runs`), CLI hygiene
 * (--version, did-you-mean, MTLAB_DB, `keys`, `schema`, bad SQL), curation
 * (`tag`, `note`, `rm`), and a newcomer's script that goes through them in
 * order. */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

/* 2 models x 2 correlations x 2 learning rates, 1 repeat: 8 trials, of
 * which the 4 at lr 1e7 diverge (failed) -- well under a second. */
static const char *sweep_ini = "[experiment]\n"
                               "name = wb\n"
                               "seed = 5\n"
                               "[data]\n"
                               "correlation = 0.5, 0.9\n"
                               "dim = 10\n"
                               "train = 200\n"
                               "validation = 50\n"
                               "test = 50\n"
                               "[train]\n"
                               "lr = 0.01, 1e7\n"
                               "batch = 32\n"
                               "steps = 20\n"
                               "eval_every = 10\n"
                               "[model]\n"
                               "name = mmoe, shared_bottom\n"
                               "experts = 2\n"
                               "expert_hidden = 4\n";

/* Runs mtlab with args; asserts the exit status; returns stdout (caller
 * frees) and frees stderr unless errout is given. */
static char *mtlab_ok(int expect, char **errout, const char *const *args) {
    char *out, *err;
    int rc = run_mtlab(&out, &err, args);
    ck_assert_msg(rc == expect, "mtlab %s %s: exit %d (expected %d): %s", args[0],
                  args[1] ? args[1] : "", rc, expect, err);
    if (errout)
        *errout = err;
    else
        free(err);
    return out;
}

/* A store holding the sweep above, run: its path (caller frees; *dir too). */
static char *make_store(char **dir) {
    *dir = test_tmpdir();
    char *ini = test_write_file(*dir, "wb.ini", sweep_ini), *db = test_join(*dir, "r.db");
    const char *args[] = {"run", ini, "--db", db, "--jobs", "1", NULL};
    char *out = mtlab_ok(0, NULL, args);
    ck_assert_msg(strstr(out, "8 trials (8 new): 4 done, 4 failed"), "%s", out);
    free(out);
    free(ini);
    return db;
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* The n-th line of text (0-based) copied into buf. */
static const char *line_of(const char *text, int n, char *buf, size_t size) {
    for (; n > 0 && text; n--) {
        text = strchr(text, '\n');
        if (text) text++;
    }
    ck_assert_ptr_nonnull(text);
    size_t len = strcspn(text, "\n");
    ck_assert_uint_lt(len, size);
    memcpy(buf, text, len);
    buf[len] = '\0';
    return buf;
}

/* ---- the runs table ------------------------------------------------------ */

/* `trials --csv`: one row per trial; the varying keys (correlation, lr,
 * and each family's own hyper-parameters) and the final metrics as columns,
 * numbers bare; a metric equals the stored final value bit for bit. */
START_TEST(test_trials_columns_and_values) {
    char *dir, *db = make_store(&dir);
    const char *args[] = {"trials", "wb", "--db", db, "--csv", NULL};
    char *out = mtlab_ok(0, NULL, args), line[4096];
    ck_assert_int_eq(count_lines(out), 1 + 8);
    line_of(out, 0, line, sizeof line);
    ck_assert_msg(strncmp(line,
                          "\"trial\",\"model\",\"repeat\",\"status\",\"tags\","
                          "\"data.correlation\",\"train.lr\",\"model.experts\","
                          "\"model.bottom_hidden\",\"model.expert_hidden\","
                          "\"data/pearson/t1-t2\",",
                          strlen("\"trial\",\"model\",\"repeat\",\"status\",\"tags\","
                                 "\"data.correlation\",\"train.lr\",\"model.experts\","
                                 "\"model.bottom_hidden\",\"model.expert_hidden\","
                                 "\"data/pearson/t1-t2\",")) == 0,
                  "header: %s", line);
    /* constant keys are not columns */
    ck_assert_ptr_null(strstr(line, "data.dim"));
    ck_assert_ptr_null(strstr(line, "model.name"));
    ck_assert_ptr_nonnull(strstr(line, "\"test/loss/total\""));
    ck_assert_ptr_nonnull(strstr(line, "\"val/loss/total\""));
    /* trial 1: mmoe, done, correlation 0.5, lr 0.01, experts 2, no bottom_hidden */
    line_of(out, 1, line, sizeof line);
    ck_assert_msg(strncmp(line, "1,\"mmoe\",0,\"done\",,0.5,0.01,2,,4,", 33) == 0, "%s", line);
    /* the last field is val/loss/total: the stored final value, full precision */
    sqlite3 *sdb;
    ck_assert_int_eq(sqlite3_open_v2(db, &sdb, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    ck_assert_int_eq(sqlite3_prepare_v2(sdb,
                                        "SELECT value FROM v_final WHERE trial_id = 1 "
                                        "AND name = 'val/loss/total'",
                                        -1, &st, NULL),
                     SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    double stored = sqlite3_column_double(st, 0);
    sqlite3_finalize(st);
    double shown = strtod(strrchr(line, ',') + 1, NULL);
    ck_assert_msg(shown == stored, "%.17g != %.17g", shown, stored);
    /* a failed trial: lr as a number, no final losses */
    line_of(out, 3, line, sizeof line);
    ck_assert_msg(strstr(line, ",\"failed\",,0.5,10000000,"), "%s", line);
    ck_assert_msg(strcmp(line + strlen(line) - 3, ",,,") == 0, "%s", line);

    /* --sql prints the query itself; run as is, it gives typed columns */
    const char *sqlargs[] = {"trials", "wb", "--db", db, "--sql", NULL};
    char *sql = mtlab_ok(0, NULL, sqlargs);
    ck_assert_int_eq(sqlite3_prepare_v2(sdb, sql, -1, &st, NULL), SQLITE_OK);
    int rows = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        rows++;
        ck_assert_int_eq(sqlite3_column_type(st, 0), SQLITE_INTEGER); /* trial */
        ck_assert_int_eq(sqlite3_column_type(st, 5), SQLITE_FLOAT);   /* data.correlation */
        bool done = strcmp((const char *)sqlite3_column_text(st, 3), "done") == 0;
        ck_assert_int_eq(sqlite3_column_type(st, sqlite3_column_count(st) - 1),
                         done ? SQLITE_FLOAT : SQLITE_NULL);
    }
    ck_assert_int_eq(rows, 8);
    sqlite3_finalize(st);
    sqlite3_close(sdb);
    free(sql);
    free(out);

    /* the aligned table: the same rows, numbers right-aligned */
    const char *table[] = {"trials", "wb", "--db", db, NULL};
    out = mtlab_ok(0, NULL, table);
    ck_assert_int_eq(count_lines(out), 2 + 8);
    ck_assert_msg(strncmp(out, "trial  model          repeat  status", 36) == 0, "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "\n    1  mmoe                0  done"));
    free(out);
    free(db);
    free(dir);
}
END_TEST

/* --where with bare column names, --sort ascending and descending (NULLs
 * last), --cols with globs; an experiment by id. */
START_TEST(test_trials_where_sort_cols) {
    char *dir, *db = make_store(&dir), line[1024];
    const char *args[] = {"trials", "1",
                          "--db", db,
                          "--where", "model = 'mmoe' AND data.correlation >= 0.5 AND train.lr < 1",
                          "--sort", "-test/loss/total",
                          "--cols", "trial, model,test/loss/t*",
                          "--csv", NULL};
    char *out = mtlab_ok(0, NULL, args);
    ck_assert_int_eq(count_lines(out), 1 + 2);
    ck_assert_str_eq(line_of(out, 0, line, sizeof line),
                     "\"trial\",\"model\",\"test/loss/t1\",\"test/loss/t2\",\"test/loss/total\"");
    double a = strtod(strrchr(line_of(out, 1, line, sizeof line), ',') + 1, NULL);
    double b = strtod(strrchr(line_of(out, 2, line, sizeof line), ',') + 1, NULL);
    ck_assert_msg(a >= b && isfinite(b), "not descending: %g %g", a, b);
    free(out);

    /* ascending: the 4 done trials by loss, then the 4 failed (NULL) ones */
    const char *asc[] = {"trials", "wb", "--db", db, "--sort", "test/loss/total",
                         "--cols", "status,test/loss/total", "--csv", NULL};
    out = mtlab_ok(0, NULL, asc);
    double last = -1;
    for (int r = 1; r <= 8; r++) {
        line_of(out, r, line, sizeof line);
        if (r <= 4) {
            ck_assert_msg(strncmp(line, "\"done\",", 7) == 0, "row %d: %s", r, line);
            double v = strtod(line + 7, NULL);
            ck_assert_msg(v >= last, "row %d: %g after %g", r, v, last);
            last = v;
        } else {
            ck_assert_str_eq(line, "\"failed\",");
        }
    }
    free(out);
    free(db);
    free(dir);
}
END_TEST

/* Bad input: exit 2, one line naming what is wrong (with a suggestion when
 * a name is close), nothing on stdout. */
START_TEST(test_trials_bad_input) {
    char *dir, *db = make_store(&dir);
    const struct {
        const char *args[10];
        const char *fragment;
    } cases[] = {
        {{"trials", "nope", "--db", db}, "no experiment 'nope' in"},
        {{"trials", "nope", "--db", db}, "(it holds: wb)"},
        {{"trials", "--db", db}, "missing EXPERIMENT"},
        {{"trials", "wb", "--db", db, "--sort", "test/los/total"},
         "--sort: no column 'test/los/total' (did you mean 'test/loss/total'?)"},
        {{"trials", "wb", "--db", db, "--cols", "trial,data.corelation"},
         "did you mean 'data.correlation'?"},
        {{"trials", "wb", "--db", db, "--cols", "zzz*"}, "--cols: no column 'zzz*'"},
        {{"trials", "wb", "--db", db, "--where", "nosuch > 1"}, "no such column: nosuch"},
        {{"trials", "wb", "--db", db, "--where", "model = "}, "syntax error"},
        {{"trials", "wb", "--db", db, "--where", "1); DELETE FROM trial; --"},
         "one SQL statement"},
        {{"export", "--runs", "nope", "--db", db}, "no experiment 'nope'"},
        {{"export", "--runs", "wb", "--blobs", "--db", db}, "--blobs"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *err, *out = mtlab_ok(2, &err, cases[i].args);
        ck_assert_msg(strstr(err, cases[i].fragment) && count_lines(err) == 1,
                      "case %zu: '%s' not in: %s", i, cases[i].fragment, err);
        ck_assert_str_eq(out, "");
        free(out);
        free(err);
    }
    ck_assert_int_eq((int)test_query(db, "SELECT count(*) FROM trial"), 8);
    free(db);
    free(dir);
}
END_TEST

/* export --runs: trials --csv on stdout, or DIR/EXP-runs.csv; export --csv
 * DIR/ writes DIR/meta.csv (not DIR//meta.csv) and every table, tag and
 * note included. */
START_TEST(test_export_runs) {
    char *dir, *db = make_store(&dir);
    const char *trials[] = {"trials", "wb", "--db", db, "--csv", NULL};
    const char *runs[] = {"export", "--runs", "wb", "--db", db, NULL};
    char *a = mtlab_ok(0, NULL, trials), *b = mtlab_ok(0, NULL, runs);
    ck_assert_str_eq(a, b);
    free(b);

    char *outdir = test_join(dir, "out/"), *file = test_join(dir, "out/wb-runs.csv");
    const char *to_dir[] = {"export", "--runs", "wb", "--csv", outdir, "--db", db, NULL};
    b = mtlab_ok(0, NULL, to_dir);
    ck_assert_ptr_nonnull(strstr(b, "wb-runs.csv (8 rows)"));
    ck_assert_ptr_null(strstr(b, "//"));
    free(b);
    FILE *f = fopen(file, "r");
    ck_assert_ptr_nonnull(f);
    char text[1 << 16];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    ck_assert_str_eq(text, a);
    free(a);

    const char *all[] = {"export", "--csv", outdir, "--db", db, NULL};
    b = mtlab_ok(0, NULL, all);
    ck_assert_msg(strstr(b, "out/meta.csv (1 rows)") && !strstr(b, "//"), "%s", b);
    ck_assert_msg(strstr(b, "tag.csv (0 rows)") && strstr(b, "note.csv (0 rows)"), "%s", b);
    free(b);
    free(file);
    free(outdir);
    free(db);
    free(dir);
}
END_TEST

Suite *workbench_suite(void) {
    Suite *s = suite_create("workbench");
    TCase *tc = tcase_create("runs");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_trials_columns_and_values);
    tcase_add_test(tc, test_trials_where_sort_cols);
    tcase_add_test(tc, test_trials_bad_input);
    tcase_add_test(tc, test_export_runs);
    suite_add_tcase(s, tc);
    return s;
}
