/* test_report.c -- comparing and reporting: `mtlab diff A B` (config,
 * seeds, final metrics, the overlay script) and `mtlab report EXP` (one
 * self-contained HTML file), each checked against the numbers in the store
 * and on bad input. */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

/* 2 models x 2 correlations x 2 repeats: 8 done trials, well under a
 * second.  Trial ids in config order: 1 mmoe 0.5, 2 shared_bottom 0.5,
 * 3 mmoe 0.9, 4 shared_bottom 0.9 (repeat 0), then 5..8 (repeat 1). */
static const char *sweep_ini = "[experiment]\n"
                               "name = rep\n"
                               "description = two families & two <correlations>\n"
                               "repeats = 2\n"
                               "seed = 2\n"
                               "[data]\n"
                               "correlation = 0.5, 0.9\n"
                               "dim = 10\n"
                               "train = 200\n"
                               "validation = 50\n"
                               "test = 50\n"
                               "[train]\n"
                               "lr = 0.01\n"
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
    char *ini = test_write_file(*dir, "rep.ini", sweep_ini), *db = test_join(*dir, "r.db");
    const char *args[] = {"run", ini, "--db", db, "--jobs", "1", NULL};
    char *out = mtlab_ok(0, NULL, args);
    ck_assert_msg(strstr(out, "8 trials (8 new): 8 done, 0 failed"), "%s", out);
    free(out);
    free(ini);
    return db;
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* The line of text that starts with `prefix`, copied into buf (NULL when
 * none). */
static const char *line_starting(const char *text, const char *prefix, char *buf, size_t size) {
    for (const char *p = text; p && *p;) {
        size_t len = strcspn(p, "\n");
        if (strncmp(p, prefix, strlen(prefix)) == 0) {
            ck_assert_uint_lt(len, size);
            memcpy(buf, p, len);
            buf[len] = '\0';
            return buf;
        }
        p += len;
        if (*p) p++;
    }
    return NULL;
}

/* First column of the first row as text (caller frees). */
static char *q_text(const char *db, const char *sql) {
    sqlite3 *h;
    ck_assert_int_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    ck_assert_msg(sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql,
                  sqlite3_errmsg(h));
    const char *v = sqlite3_step(st) == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : "";
    char *out = strdup(v ? v : "");
    sqlite3_finalize(st);
    sqlite3_close(h);
    return out;
}

/* An int64 as text. */
static void seed_eq(long long got, const char *db, const char *sql) {
    char *want = q_text(db, sql), buf[32];
    snprintf(buf, sizeof buf, "%lld", got);
    ck_assert_str_eq(buf, want);
    free(want);
}

static double q_num(const char *db, const char *fmt, const char *a, int b) {
    char sql[512];
    snprintf(sql, sizeof sql, fmt, a, b);
    return test_query(db, sql);
}

/* ---- mtlab diff ------------------------------------------------------------ */

/* diff 1 4 (mmoe 0.5 vs shared_bottom 0.9): the counts of the config diff
 * from the param table, the differing values, each family's own keys, the
 * stored seeds, and every final metric of both trials as stored (printed to
 * 6 digits) with B - A. */
START_TEST(test_diff_text) {
    char *dir, *db = make_store(&dir);
    const char *args[] = {"diff", "1", "4", "--db", db, NULL};
    char *out = mtlab_ok(0, NULL, args), line[1024];
    ck_assert_msg(strncmp(out,
                          "A: trial 1: experiment rep (id 1), model mmoe, repeat 0, status done\n"
                          "B: trial 4: experiment rep (id 1), model shared_bottom, repeat 0, "
                          "status done\n",
                          140) == 0,
                  "%s", out);
    /* the counts, from the store */
    int same =
        (int)test_query(db, "SELECT count(*) FROM param a JOIN param b ON a.key = b.key "
                            "AND a.value IS b.value WHERE a.trial_id = 1 AND b.trial_id = 4");
    int only_a = (int)test_query(db, "SELECT count(*) FROM param WHERE trial_id = 1 AND key NOT IN "
                                     "(SELECT key FROM param WHERE trial_id = 4)");
    int only_b = (int)test_query(db, "SELECT count(*) FROM param WHERE trial_id = 4 AND key NOT IN "
                                     "(SELECT key FROM param WHERE trial_id = 1)");
    ck_assert_int_gt(same, 10);
    ck_assert_int_eq(only_a, 2); /* model.experts, model.expert_hidden */
    ck_assert_int_eq(only_b, 1); /* model.bottom_hidden */
    char expect[256];
    snprintf(expect, sizeof expect,
             "\nconfig: %d keys the same, 2 differ, 2 only in A, 1 only in B\n", same);
    ck_assert_msg(strstr(out, expect), "%s\nnot in\n%s", expect, out);
    char key[64], va[64], vb[64];
    ck_assert_ptr_nonnull(line_starting(out, "    data.correlation", line, sizeof line));
    ck_assert_int_eq(sscanf(line, "%63s %63s %63s", key, va, vb), 3);
    ck_assert_str_eq(va, "0.5");
    ck_assert_str_eq(vb, "0.9");
    ck_assert_ptr_nonnull(line_starting(out, "    model.name", line, sizeof line));
    ck_assert_int_eq(sscanf(line, "%63s %63s %63s", key, va, vb), 3);
    ck_assert_str_eq(va, "mmoe");
    ck_assert_str_eq(vb, "shared_bottom");
    ck_assert_msg(strstr(out, "  only in A (trial 1):\n    model.expert_hidden = 4\n"
                              "    model.experts       = 2\n"
                              "  only in B (trial 4):\n    model.bottom_hidden = 113\n"),
                  "%s", out);
    /* keys that are the same are not listed */
    ck_assert_ptr_null(line_starting(out, "    train.lr", line, sizeof line));
    /* seeds as stored */
    long long s1, s2;
    ck_assert_ptr_nonnull(line_starting(out, "  data_seed", line, sizeof line));
    ck_assert_int_eq(sscanf(line, " data_seed %lld %lld", &s1, &s2), 2);
    seed_eq(s1, db, "SELECT data_seed FROM trial WHERE id = 1");
    seed_eq(s2, db, "SELECT data_seed FROM trial WHERE id = 4");
    ck_assert_ptr_nonnull(line_starting(out, "  init_seed", line, sizeof line));
    ck_assert_int_eq(sscanf(line, " init_seed %lld %lld", &s1, &s2), 2);
    seed_eq(s1, db, "SELECT init_seed FROM trial WHERE id = 1");
    seed_eq(s2, db, "SELECT init_seed FROM trial WHERE id = 4");
    ck_assert_int_ne(s1, s2);
    /* every final metric: the last value up to the final step */
    const char *metrics = strstr(out, "\nfinal metrics:\n");
    ck_assert_ptr_nonnull(metrics);
    int n_metrics = (int)test_query(db, "SELECT count(DISTINCT name) FROM metric WHERE trial_id "
                                        "IN (1, 4)");
    ck_assert_int_ge(n_metrics, 10);
    const char *p = strchr(strchr(metrics + 1, '\n') + 1, '\n') + 1; /* past the header */
    for (int i = 0; i < n_metrics; i++) {
        char name[64];
        double a, b, d;
        ck_assert_msg(sscanf(p, " %63s %lf %lf %lf", name, &a, &b, &d) == 4, "%s", p);
        const char *fmt = "SELECT value FROM metric WHERE name = '%s' AND trial_id = %d "
                          "ORDER BY step DESC LIMIT 1";
        double sa = q_num(db, fmt, name, 1), sb = q_num(db, fmt, name, 4);
        ck_assert_msg(fabs(a - sa) <= 1e-5 * fabs(sa), "%s: A %g, stored %g", name, a, sa);
        ck_assert_msg(fabs(b - sb) <= 1e-5 * fabs(sb), "%s: B %g, stored %g", name, b, sb);
        ck_assert_msg(fabs(d - (sb - sa)) <= 1e-5 * (fabs(sa) + fabs(sb)), "%s: B - A %g", name, d);
        p = strchr(p, '\n') + 1;
    }
    ck_assert_int_eq(*p, '\0');
    ck_assert_ptr_nonnull(strstr(out, "  data/pearson/t1-t2")); /* a step-0 measure */
    free(out);

    /* a trial against itself: nothing differs, every difference is 0 */
    const char *self[] = {"diff", "5", "5", "--db", db, NULL};
    out = mtlab_ok(0, NULL, self);
    snprintf(expect, sizeof expect, "config: %d keys the same, 0 differ, 0 only in A, 0 only in B",
             (int)test_query(db, "SELECT count(*) FROM param WHERE trial_id = 5"));
    ck_assert_msg(strstr(out, expect), "%s", out);
    ck_assert_ptr_null(strstr(out, "differ:\n"));
    ck_assert_ptr_nonnull(strstr(out, "(same)"));
    ck_assert_ptr_nonnull(line_starting(out, "  val/loss/total", line, sizeof line));
    double a, b, d;
    ck_assert_int_eq(sscanf(line, " val/loss/total %lf %lf %lf", &a, &b, &d), 3);
    ck_assert_double_eq(d, 0);
    free(out);
    free(db);
    free(dir);
}
END_TEST

/* --plot: a gnuplot script with one datablock per trial holding, at each
 * step, the stored value bit for bit; --metric picks the metric. */
START_TEST(test_diff_plot) {
    char *dir, *db = make_store(&dir);
    char *gp = test_join(dir, "cmp.gp");
    const char *args[] = {"diff",   "3", "2",        "--db",         db,
                          "--plot", gp,  "--metric", "test/loss/t1", NULL};
    char *out = mtlab_ok(0, NULL, args);
    ck_assert_ptr_nonnull(strstr(out, "wrote "));
    char *text = test_read_file(gp);
    ck_assert_msg(strncmp(text, "# mtlab diff 3 2 --metric test/loss/t1: 2 lines", 47) == 0, "%s",
                  text);
    ck_assert_ptr_nonnull(strstr(text, "set output mtlab_dir . \"cmp.png\""));
    ck_assert_ptr_null(strstr(text, "filledcurves"));
    const int ids[2] = {3, 2};
    const char *labels[2] = {"$c1 << EOD\n# trial 3, model mmoe\n# step n mean sd se lo hi\n",
                             "$c2 << EOD\n# trial 2, model shared_bottom\n# step n mean sd se lo "
                             "hi\n"};
    for (int k = 0; k < 2; k++) {
        const char *block = strstr(text, labels[k]);
        ck_assert_msg(block, "%s", text);
        const char *line = block + strlen(labels[k]);
        int n = (int)test_query(db, ids[k] == 3 ? "SELECT count(*) FROM metric WHERE trial_id = 3 "
                                                  "AND name = 'test/loss/t1'"
                                                : "SELECT count(*) FROM metric WHERE trial_id = 2 "
                                                  "AND name = 'test/loss/t1'");
        ck_assert_int_ge(n, 2);
        sqlite3 *h;
        ck_assert_int_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        sqlite3_stmt *st;
        ck_assert_int_eq(sqlite3_prepare_v2(h,
                                            "SELECT step, value FROM metric WHERE trial_id = ?1 "
                                            "AND name = 'test/loss/t1' ORDER BY step",
                                            -1, &st, NULL),
                         SQLITE_OK);
        sqlite3_bind_int(st, 1, ids[k]);
        for (int i = 0; i < n; i++) {
            ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
            double step, count, mean;
            ck_assert_int_eq(sscanf(line, "%lf %lf %lf", &step, &count, &mean), 3);
            ck_assert_double_eq(step, sqlite3_column_double(st, 0));
            ck_assert_double_eq(count, 1);
            ck_assert_double_eq(mean, sqlite3_column_double(st, 1)); /* bit for bit */
            line = strchr(line, '\n') + 1;
        }
        ck_assert_msg(strncmp(line, "EOD\n", 4) == 0, "%s", line);
        sqlite3_finalize(st);
        sqlite3_close(h);
    }
    ck_assert_ptr_nonnull(strstr(text, "title \"trial 3, model mmoe\""));
    free(text);
    free(out);
    /* the default metric is val/loss/total */
    const char *dflt[] = {"diff", "1", "2", "--db", db, "--plot", gp, NULL};
    free(mtlab_ok(0, NULL, dflt));
    text = test_read_file(gp);
    ck_assert_ptr_nonnull(strstr(text, "--metric val/loss/total: 2 lines"));
    free(text);
    free(gp);
    free(db);
    free(dir);
}
END_TEST

/* Bad input: exit 2 with one line naming what is wrong; nothing written. */
START_TEST(test_diff_bad_input) {
    char *dir, *db = make_store(&dir);
    char *gp = test_join(dir, "bad.gp"), *nodir = test_join(dir, "no/such/dir.gp");
    const struct {
        const char *args[12];
        int status;
        const char *fragment;
    } bad[] = {
        {{"diff", "1", "--db", db}, 2, "needs two trial ids"},
        {{"diff", "--db", db}, 2, "needs two trial ids"},
        {{"diff", "1", "x2", "--db", db}, 2, "'x2' is not a trial id"},
        {{"diff", "0", "2", "--db", db}, 2, "'0' is not a trial id"},
        {{"diff", "1", "99", "--db", db}, 2, "no trial 99"},
        {{"diff", "1", "2", "3", "--db", db}, 2, ""},
        {{"diff", "1", "2", "--db", db, "--metric", "val/loss/t1"}, 2, "--metric goes with --plot"},
        {{"diff", "1", "2", "--db", db, "--plot", gp, "--metric", "val/loss/totl"},
         2,
         "have no metric 'val/loss/totl' (did you mean 'val/loss/total'?)"},
        {{"diff", "1", "2", "--db", db, "--plto", gp}, 2, "(did you mean '--plot'?)"},
        {{"diff", "1", "2", "--db", db, "--plot", nodir}, 1, "cannot write"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *err, *out = mtlab_ok(bad[i].status, &err, bad[i].args);
        ck_assert_msg(strstr(err, bad[i].fragment) && count_lines(err) >= 1,
                      "case %zu: '%s' not in: %s", i, bad[i].fragment, err);
        ck_assert_msg(bad[i].status != 2 || i == 5 || count_lines(err) == 1, "case %zu: %s", i,
                      err);
        ck_assert_str_eq(out, "");
        free(out);
        free(err);
    }
    ck_assert_int_ne(access(gp, F_OK), 0);
    free(nodir);
    free(gp);
    free(db);
    free(dir);
}
END_TEST

Suite *report_suite(void) {
    Suite *s = suite_create("report");
    TCase *tc = tcase_create("diff");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_diff_text);
    tcase_add_test(tc, test_diff_plot);
    tcase_add_test(tc, test_diff_bad_input);
    suite_add_tcase(s, tc);
    return s;
}
