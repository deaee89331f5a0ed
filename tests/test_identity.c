/* test_identity.c -- one way to name a setting (issue 9 item 2) and trial
 * identity across versions.
 *
 * What a user relies on: for EVERY trial of every shipped sweep, the command
 * `mtlab show` prints reruns it to the same bits; a store written before
 * trial configs lost their unused model keys (identity 1) is not silently
 * mixed with new trials, while everything in it stays readable and
 * reproducible. */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* Reads the whole file into a malloc'd string. */
static char *slurp_file(const char *path) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot read %s (run from the repository root)", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)n + 1);
    ck_assert_uint_eq(fread(text, 1, (size_t)n, f), (size_t)n);
    text[n] = '\0';
    fclose(f);
    return text;
}

/* The values after `label` in out ("label  t1 V  t2 V  total V"), by name:
 * *value of the word following `name`.  Returns whether it was found. */
static int printed_value(const char *out, const char *label, const char *name, double *value) {
    const char *line = strstr(out, label);
    if (!line) return 0;
    line += strlen(label);
    const char *end = strchr(line, '\n');
    size_t len = end ? (size_t)(end - line) : strlen(line);
    char buf[2048];
    snprintf(buf, sizeof buf, "%.*s", (int)(len < sizeof buf - 1 ? len : sizeof buf - 1), line);
    char *save = NULL;
    for (char *tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
        if (strcmp(tok, name) == 0) {
            char *v = strtok_r(NULL, " ", &save);
            return v && sscanf(v, "%lf", value) == 1;
        }
    return 0;
}

/* Runs trial `id`'s reproduce command from `mtlab show` with --digits 17 and
 * compares what it prints with the store, bit for bit: every final test loss
 * of a trained trial; the baselines and label correlations of a data-only
 * one.  Returns the number of values compared. */
static int check_show_reproduces(const char *dbp, int id) {
    char *train_out = test_rerun_shown(dbp, id);
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM metric WHERE trial_id = %d AND name LIKE 'test/loss/%%'", id);
    const bool trained = test_query(dbp, sql) > 0;
    snprintf(sql, sizeof sql, "SELECT value FROM param WHERE trial_id = %d AND key = 'data.tasks'",
             id);
    const int tasks = (int)test_query(dbp, sql);
    int compared = 0;
    for (int k = 0; k <= tasks; k++) {
        char name[32], metric[64];
        if (k < tasks)
            snprintf(name, sizeof name, "t%d", k + 1);
        else
            snprintf(name, sizeof name, "total");
        snprintf(metric, sizeof metric, "%s/%s", trained ? "test/loss" : "test/baseline", name);
        snprintf(sql, sizeof sql,
                 "SELECT value FROM metric WHERE trial_id = %d AND name = '%s' ORDER BY step DESC "
                 "LIMIT 1",
                 id, metric);
        double stored = test_query(dbp, sql), got;
        ck_assert_msg(printed_value(train_out,
                                    trained ? "final test loss:" : "predicting the training mean:",
                                    name, &got),
                      "trial %d: no %s in:\n%s", id, name, train_out);
        ck_assert_msg(got == stored, "trial %d: %s: train gives %.17g, stored %.17g", id, metric,
                      got, stored);
        compared++;
    }
    if (!trained && tasks >= 2) {
        snprintf(sql, sizeof sql,
                 "SELECT value FROM metric WHERE trial_id = %d AND name = 'data/pearson/t1-t2'",
                 id);
        double stored = test_query(dbp, sql), got;
        ck_assert(
            printed_value(train_out, "label Pearson correlation (training set):", "t1-t2", &got));
        ck_assert_msg(got == stored, "trial %d: pearson %.17g, stored %.17g", id, got, stored);
        compared++;
    }
    free(train_out);
    return compared;
}

/* Every shipped sweep, shrunk by an added [scale.tiny] (fewer examples and
 * steps, one repeat; a data-only sweep stays data-only): a few trials run
 * into a store, and each one's `show` command reproduces its results. */
START_TEST(test_every_experiment_reproduces) {
    static const char *const files[] = {
        "experiments/example.ini",
        "experiments/mmoe/fig2.ini",
        "experiments/mmoe/fig3.ini",
        "experiments/mmoe/fig4.ini",
        "experiments/mmoe/fig5.ini",
        "experiments/mmoe/gates.ini",
        "experiments/mmoe/settings-study.ini",
        "experiments/mmoe/robustness.ini",
    };
    char *dir = test_tmpdir();
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        char *text = slurp_file(files[f]);
        const bool data_only = strstr(text, "\nsteps       = 0 ") != NULL;
        size_t n = strlen(text) + 512;
        char *tiny = malloc(n);
        snprintf(tiny, n,
                 "%s\n[scale.tiny]\nexperiment.repeats = 1\ndata.train = 300\n"
                 "data.validation = 40\ndata.test = 40\ntrain.batch = 32\n%s",
                 text, data_only ? "" : "train.steps = 12\ntrain.eval_every = 5\n");
        char name[32];
        snprintf(name, sizeof name, "sweep%zu.ini", f);
        char *ini = test_write_file(dir, name, tiny), *dbp = test_join(dir, "r.db");
        char *out, *err;
        const char *run[] = {"run",    ini, "--db",    dbp, "--scale", "tiny",
                             "--jobs", "1", "--limit", "5", NULL};
        int rc = run_mtlab(&out, &err, run);
        ck_assert_msg(rc == 0, "%s: run exited %d: %s", files[f], rc, err);
        free(out);
        free(err);
        char sql[160];
        const int first = (int)test_query(dbp, "SELECT min(t.id) FROM trial t JOIN experiment e ON "
                                               "e.id = t.experiment_id AND e.id = (SELECT max(id) "
                                               "FROM experiment)");
        int checked = 0;
        for (int id = first; id < first + 5; id++) {
            snprintf(sql, sizeof sql, "SELECT status = 'done' FROM trial WHERE id = %d", id);
            if (test_query(dbp, sql) != 1) continue;
            ck_assert_int_gt(check_show_reproduces(dbp, id), 0);
            checked++;
        }
        const int n_trials = (int)test_query(
            dbp,
            "SELECT count(*) FROM trial WHERE experiment_id = (SELECT max(id) FROM experiment)");
        ck_assert_msg(checked == (n_trials < 5 ? n_trials : 5), "%s: %d of %d trials checked",
                      files[f], checked, n_trials);
        free(ini);
        free(dbp);
        free(tiny);
        free(text);
    }
    free(dir);
}
END_TEST

/* A store of trial identity 1 (tests/fixtures/schema2.db, made by mtlab
 * 8d32105: its Shared-Bottom trials carry model.experts, its MMoE trials
 * model.bottom_hidden): `mtlab run` refuses to add trials of identity 2 to
 * its experiment and says how to proceed; reading commands work, and each
 * stored trial is still reproduced by its `show` command. */
START_TEST(test_old_identity_store) {
    char *dir = test_tmpdir(), *dbp = test_join(dir, "old.db");
    {
        FILE *in = fopen("tests/fixtures/schema2.db", "rb");
        ck_assert_msg(in != NULL,
                      "tests/fixtures/schema2.db not found: run from the repository root");
        FILE *o = fopen(dbp, "wb");
        char buf[8192];
        size_t got;
        while ((got = fread(buf, 1, sizeof buf, in)) > 0)
            ck_assert_uint_eq(fwrite(buf, 1, got, o), got);
        fclose(in);
        ck_assert_int_eq(fclose(o), 0);
    }
    char *out, *err;
    const char *run[] = {"run", "tests/fixtures/schema2.ini", "--db", dbp, "--jobs", "1", NULL};
    ck_assert_int_eq(run_mtlab(&out, &err, run), 2);
    ck_assert_msg(strstr(err, "experiment 'fixture'") && strstr(err, "trial identity 1") &&
                      strstr(err, "new --db") && strstr(err, "rename the experiment"),
                  "%s", err);
    free(out);
    free(err);
    ck_assert_int_eq((int)test_query(dbp, "SELECT count(*) FROM trial WHERE status = 'done'"), 5);
    ck_assert_int_eq((int)test_query(dbp, "SELECT count(*) FROM trial"), 8);

    const char *ls[] = {"ls", "--db", dbp, NULL};
    ck_assert_int_eq(run_mtlab(&out, &err, ls), 0);
    ck_assert_msg(strstr(out, "fixture"), "%s", out);
    free(out);
    free(err);
    const char *sql[] = {"sql", "--db", dbp, "SELECT count(*) FROM v_final", NULL};
    ck_assert_int_eq(run_mtlab(&out, &err, sql), 0);
    free(out);
    free(err);
    /* Old params list unused model keys; show leaves them out of the command. */
    for (int id = 1; id <= 8; id++) {
        char q[96];
        snprintf(q, sizeof q, "SELECT status = 'done' FROM trial WHERE id = %d", id);
        if (test_query(dbp, q) == 1) ck_assert_int_gt(check_show_reproduces(dbp, id), 0);
    }
    free(dbp);
    free(dir);
}
END_TEST

/* mtlab train: every sweep key as section.key=value, the same errors as a
 * sweep file, naming the argument. */
START_TEST(test_train_settings) {
    char *out, *err;
    const char *groups[] = {"train",
                            "model.name=mmoe",
                            "data.tasks=4",
                            "data.groups=2 2",
                            "train.lr=0.01",
                            "model.experts=4",
                            "train.steps=10",
                            "train.eval_every=5",
                            "data.train=200",
                            "--digits",
                            "17",
                            NULL};
    ck_assert_int_eq(run_mtlab(&out, &err, groups), 0);
    ck_assert_msg(strstr(out, "model=mmoe groups=\"2 2\"") && strstr(out, "final test loss:  t1") &&
                      strstr(out, "t4"),
                  "%s", out);
    free(out);
    free(err);
    /* An option and the key it names are one setting. */
    const char *a[] = {"train",          "--corr",   "0.3", "train.steps=10",
                       "data.train=200", "--digits", "17",  NULL};
    const char *b[] = {
        "train", "data.correlation=0.3", "--steps", "10", "--train", "200", "--digits", "17", NULL};
    char *out_b;
    ck_assert_int_eq(run_mtlab(&out, &err, a), 0);
    free(err);
    ck_assert_int_eq(run_mtlab(&out_b, &err, b), 0);
    ck_assert_str_eq(out, out_b);
    free(out);
    free(out_b);
    free(err);
    static const struct {
        const char *arg, *message;
    } bad[] = {
        {"model.experts=0", "mtlab train: model.experts=0: [model] experts: 0 is out of range"},
        {"model.bottom_hidden=8", "model mmoe has no such hyper-parameter"},
        {"data.corelation=0.2", "unknown key 'corelation' in [data] (did you mean 'correlation'?)"},
        {"train.lr=abc", "train.lr=abc: [train] lr: 'abc' is not a number"},
        {"train.lr", "train.lr: expected section.key=value"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *args[] = {"train", bad[i].arg, NULL};
        ck_assert_int_eq(run_mtlab(&out, &err, args), 2);
        ck_assert_msg(strstr(err, bad[i].message), "%s: %s", bad[i].arg, err);
        free(out);
        free(err);
    }
}
END_TEST

Suite *identity_suite(void) {
    Suite *s = suite_create("identity");
    TCase *tc = tcase_create("identity");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_train_settings);
    tcase_add_test(tc, test_old_identity_store);
    tcase_add_test(tc, test_every_experiment_reproduces);
    suite_add_tcase(s, tc);
    return s;
}
