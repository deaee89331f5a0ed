/* test_overrides.c -- the runner side of issue 15: command-line overrides
 * (`mtlab run FILE section.key=value`), the spec history (migration 009),
 * paired random-search draws, and `mtlab rerun ID`.
 *
 * What a user relies on: an override changes exactly the key it names and is
 * stored with the experiment, so a resume with other overrides is refused
 * with what differs (and no summary of zeros); every spec text an experiment
 * had stays in the store with the trials it added, through a merge too;
 * families are compared at the same sampled values by default, while an
 * experiment stored before that keeps expanding to its own trials; a rerun
 * says bit for bit whether a stored trial reproduces, and never writes. */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sweep/sweep.h"
#include "testutil.h"

/* Tiny: 2 models x 2 correlations, 1 repeat, 20 steps on 200 examples. */
static const char tiny_ini[] = "[experiment]\n"
                               "name = ov\n"
                               "seed = 3\n"
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

/* Runs sql on the store at path (read-write), asserting success. */
static void exec_sql(const char *path, const char *sql) {
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    char *msg = NULL;
    ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK, "%s: %s", sql, msg);
    sqlite3_close(db);
}

/* The first column of the first row of sql as text (caller frees). */
static char *query_text(const char *path, const char *sql) {
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK, "%s", sql);
    char *text = NULL;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        text = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return text;
}

/* ---- overrides through the CLI, the stored spec and its history --------- */

START_TEST(test_override_run_resume) {
    char *dir = test_tmpdir();
    char *ini = test_write_file(dir, "ov.ini", tiny_ini), *db = test_join(dir, "r.db");
    /* A list makes a grid in the file's place; a [model.NAME] key for one model. */
    const char *dry[] = {
        "run",       ini, "data.correlation=0.2,0.4,0.6", "model.mmoe.experts=3", "--db", db,
        "--dry-run", NULL};
    char *out = test_mtlab_ok(0, NULL, dry);
    ck_assert_msg(
        strstr(out, "6 points x 1 repeats = 6 trials") &&
            strstr(out, "# overrides: data.correlation=0.2,0.4,0.6 model.mmoe.experts=3") &&
            strstr(out, "every trial is new"),
        "%s", out);
    free(out);
    const char *run[] = {"run",
                         ini,
                         "data.correlation=0.2,0.4,0.6",
                         "model.mmoe.experts=3",
                         "--db",
                         db,
                         "--jobs",
                         "1",
                         "--quiet",
                         NULL};
    out = test_mtlab_ok(0, NULL, run);
    ck_assert_msg(strstr(out, "6 trials (6 new): 6 done"), "%s", out);
    free(out);
    ck_assert_double_eq(test_query(db, "SELECT count(*) FROM trial"), 6);
    ck_assert_double_eq(test_query(db, "SELECT count(DISTINCT value) FROM param WHERE key = "
                                       "'data.correlation' AND value IN (0.2, 0.4, 0.6)"),
                        3);
    ck_assert_double_eq(test_query(db, "SELECT count(*) FROM param WHERE key = "
                                       "'data.correlation' AND value NOT IN (0.2, 0.4, 0.6)"),
                        0);
    ck_assert_double_eq(test_query(db, "SELECT min(p.value) + max(p.value) FROM param p JOIN "
                                       "trial t ON t.id = p.trial_id WHERE t.model = 'mmoe' AND "
                                       "p.key = 'model.experts'"),
                        6); /* 3 for every mmoe trial; shared_bottom has no experts */
    /* Stored: the spec text ends with the overrides, the history holds them. */
    char *spec = query_text(db, "SELECT spec FROM experiment");
    ck_assert_msg(strstr(spec, "expert_hidden = 4\n; mtlab run override: "
                               "data.correlation=0.2,0.4,0.6\n; mtlab run override: "
                               "model.mmoe.experts=3\n"),
                  "%s", spec);
    free(spec);
    char *overrides = query_text(db, "SELECT overrides FROM spec");
    ck_assert_str_eq(overrides, "data.correlation=0.2,0.4,0.6\nmodel.mmoe.experts=3\n");
    free(overrides);
    ck_assert_double_eq(test_query(db, "SELECT count(*) FROM trial WHERE spec_id = 1"), 6);
    /* v_best_lr tells the settings apart: 6 settings, 3 data settings that
     * each pair the two models. */
    ck_assert_double_eq(test_query(db, "SELECT count(DISTINCT setting_id) FROM v_best_lr "
                                       "WHERE rank = 1"),
                        6);
    ck_assert_double_eq(test_query(db, "SELECT count(*) FROM (SELECT data_setting_id FROM "
                                       "v_best_lr GROUP BY data_setting_id HAVING count(DISTINCT "
                                       "model) = 2)"),
                        3);

    /* The same overrides resume (nothing new); others are refused, naming
     * the line that differs, with nothing on stdout and nothing stored. */
    out = test_mtlab_ok(0, NULL, run);
    ck_assert_msg(strstr(out, "6 trials (0 new): 6 done"), "%s", out);
    free(out);
    const char *other[] = {"run",
                           ini,
                           "data.correlation=0.2,0.4,0.6",
                           "model.mmoe.experts=4",
                           "--db",
                           db,
                           "--jobs",
                           "1",
                           "--quiet",
                           NULL};
    char *err;
    out = test_mtlab_ok(2, &err, other);
    ck_assert_str_eq(out, "");
    ck_assert_msg(strstr(err, "different spec") &&
                      strstr(err, "'; mtlab run override: model.mmoe.experts=3' -> "
                                  "'; mtlab run override: model.mmoe.experts=4'"),
                  "%s", err);
    free(out);
    free(err);
    ck_assert_double_eq(test_query(db, "SELECT count(*) FROM spec"), 1);
    /* The dry run says what would change: the diff and the trials. */
    const char *other_dry[] = {
        "run",       ini, "data.correlation=0.2,0.4,0.6", "model.mmoe.experts=4", "--db", db,
        "--dry-run", NULL};
    out = test_mtlab_ok(0, NULL, other_dry);
    ck_assert_msg(strstr(out, "has another spec (2 lines differ") &&
                      strstr(out, "#   -; mtlab run override: model.mmoe.experts=3\n") &&
                      strstr(out, "#   +; mtlab run override: model.mmoe.experts=4\n") &&
                      strstr(out, "3 stored (3 done), 3 new; 3 stored trials are not in this file"),
                  "%s", out);
    free(out);
    /* --replace-spec appends to the history; the new trials know their spec. */
    const char *replace[] = {"run",
                             ini,
                             "data.correlation=0.2,0.4,0.6",
                             "model.mmoe.experts=4",
                             "--db",
                             db,
                             "--jobs",
                             "1",
                             "--quiet",
                             "--replace-spec",
                             NULL};
    out = test_mtlab_ok(0, NULL, replace);
    ck_assert_msg(strstr(out, "6 trials (3 new)"), "%s", out);
    free(out);
    ck_assert_double_eq(test_query(db, "SELECT count(*) FROM spec"), 2);
    ck_assert_double_eq(test_query(db, "SELECT count(*) FROM trial WHERE spec_id = 1"), 6);
    ck_assert_double_eq(test_query(db, "SELECT count(*) FROM trial t JOIN param p ON p.trial_id = "
                                       "t.id WHERE t.spec_id = 2 AND p.key = 'model.experts' AND "
                                       "p.value = 4"),
                        3);
    const char *history[] = {"ls", "--db", db, "--history", "ov", NULL};
    out = test_mtlab_ok(0, NULL, history);
    ck_assert_msg(strstr(out, "spec 1: registered") && strstr(out, "added 6 trials") &&
                      strstr(out, "spec 2 (current): registered") &&
                      strstr(out, "added 3 trials") &&
                      strstr(out, "    -; mtlab run override: model.mmoe.experts=3\n"),
                  "%s", out);
    free(out);
    const char *no_history[] = {"ls", "--db", db, "--history", "nope", NULL};
    out = test_mtlab_ok(2, &err, no_history);
    ck_assert_msg(strstr(err, "no experiment 'nope'"), "%s", err);
    free(out);
    free(err);
    free(ini);
    free(db);
    free(dir);
}
END_TEST

/* Loads `text` (as dir/s.ini) with the overrides; returns the sweep or NULL
 * with *err. */
static sweep_t *load_with(const char *dir, const char *text, const char *const *overrides, int n,
                          err_t *err) {
    char *path = test_write_file(dir, "s.ini", text);
    sweep_opts_t o = {.overrides = overrides, .n_overrides = n};
    sweep_t *s = NULL;
    memset(err, 0, sizeof *err);
    sweep_load_opts(path, &o, &s, err);
    free(path);
    return s;
}

/* Every bad override is refused with a message naming it and what is wrong. */
START_TEST(test_override_errors) {
    static const struct {
        const char *override, *expect;
    } cases[] = {
        {"train.lr=abc", "argument 'train.lr=abc': [train] lr: 'abc' is not a number"},
        {"trian.lr=0.1",
         "argument 'trian.lr=0.1': unknown section [trian] (did you mean [train]?)"},
        {"train.lrr=0.1", "unknown key 'lrr' in [train] (did you mean 'lr'?)"},
        {"data.lr=0.1", "unknown key 'lr' in [data] (it belongs in [train])"},
        {"train.lr", "argument 'train.lr': expected section.key=value"},
        {"lr=0.1", "argument 'lr=0.1': expected section.key=value"},
        {"train.lr=", "[train] lr: empty value"},
        {"model.omoe.experts=3", "[model.omoe]: model 'omoe' is not in [model] name"},
        {"model.shared_bottom.experts=3",
         "[model.shared_bottom] experts: model shared_bottom has no such hyper-parameter"},
        {"scale.quick.steps=1", "a [scale.<name>] section is applied with --scale NAME"},
        {"data.correlation=0.5,0.5", "'0.5' is listed twice"},
        {"experiment.draws=sometimes", "argument 'experiment.draws=sometimes'"},
        {"train.lr=loguniform(0.1,0.01)", "lower bound 0.1 must be below upper bound 0.01"},
    };
    char *dir = test_tmpdir();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        err_t err;
        const char *ov[] = {cases[i].override};
        sweep_t *s = load_with(dir, tiny_ini, ov, 1, &err);
        ck_assert_msg(s == NULL, "%s: accepted", cases[i].override);
        ck_assert_int_eq(err.kind, ERR_USAGE);
        ck_assert_msg(strstr(err.msg, cases[i].expect), "%s: got '%s', expected '%s'",
                      cases[i].override, err.msg, cases[i].expect);
    }
    /* Twice the same key: both named. */
    err_t err;
    const char *twice[] = {"train.lr=0.1", "train.lr=0.2"};
    ck_assert_ptr_null(load_with(dir, tiny_ini, twice, 2, &err));
    ck_assert_msg(strstr(err.msg, "given twice (argument 'train.lr=0.1' and argument "
                                  "'train.lr=0.2')"),
                  "%s", err.msg);
    /* A conflict between an override and a file line names both. */
    const char *groups[] = {"data.groups=1 1"};
    ck_assert_ptr_null(load_with(dir, tiny_ini, groups, 1, &err));
    ck_assert_msg(strstr(err.msg, "argument 'data.groups=1 1'") &&
                      strstr(err.msg, "correlation and groups exclude each other"),
                  "%s", err.msg);
    free(dir);
}
END_TEST

/* An override replaces the file's value where it stands (the grid keeps its
 * order, so trial indices and shards stay as the file has them), adds an
 * absent key, and changes nothing else: without overrides the points are
 * the file's, bit for bit. */
START_TEST(test_override_in_place) {
    char *dir = test_tmpdir();
    err_t err;
    sweep_t *plain = load_with(dir, tiny_ini, NULL, 0, &err);
    ck_assert_msg(plain, "%s", err.msg);
    sweep_t *file = NULL;
    char *path = test_write_file(dir, "t.ini", tiny_ini);
    ck_assert_int_eq(sweep_load(path, &file, &err), 0);
    ck_assert_int_eq(plain->n_points, file->n_points);
    for (int p = 0; p < plain->n_points; p++)
        ck_assert_str_eq(plain->points[p].config, file->points[p].config);
    ck_assert_str_eq(plain->text, file->text); /* no override: the file's text */
    sweep_free(file);

    const char *ov[] = {"data.correlation=0.1,0.3", "train.lr=0.001,0.1", "data.noise=0.2"};
    sweep_t *s = load_with(dir, tiny_ini, ov, 3, &err);
    ck_assert_msg(s, "%s", err.msg);
    /* correlation (outermost, the file's first list), then lr, then the model */
    ck_assert_int_eq(s->n_points, 8);
    static const char *const corr[] = {"0.1", "0.1", "0.1", "0.1", "0.3", "0.3", "0.3", "0.3"};
    static const char *const lr[] = {"0.001", "0.001", "0.1", "0.1",
                                     "0.001", "0.001", "0.1", "0.1"};
    for (int p = 0; p < 8; p++) {
        char want[64];
        snprintf(want, sizeof want, "data.correlation=%s;", corr[p]);
        ck_assert_msg(strstr(s->points[p].config, want), "%d: %s", p, s->points[p].config);
        snprintf(want, sizeof want, ";train.lr=%s;", lr[p]);
        ck_assert_msg(strstr(s->points[p].config, want), "%d: %s", p, s->points[p].config);
        ck_assert_msg(strstr(s->points[p].config, ";data.noise=0.2;"), "%s", s->points[p].config);
        ck_assert_str_eq(s->points[p].spec.model, p % 2 ? "shared_bottom" : "mmoe");
    }
    /* An overridden key has no file line (errors name the argument). */
    ck_assert_int_eq(sweep_key_line(s, 0, "data.correlation"), 0);
    ck_assert_int_eq(sweep_key_line(s, 0, "train.batch"), 12);
    ck_assert_str_eq(s->overrides,
                     "data.correlation=0.1,0.3\ntrain.lr=0.001,0.1\ndata.noise=0.2\n");
    sweep_free(s);
    sweep_free(plain);
    free(path);
    free(dir);
}
END_TEST

/* ---- paired draws ---------------------------------------------------------- */

static const char search_ini[] = "[experiment]\n"
                                 "name = search\n"
                                 "samples = 3\n"
                                 "[data]\n"
                                 "correlation = 0.5, 0.9\n"
                                 "[train]\n"
                                 "lr = loguniform(1e-4, 1e-2)\n"
                                 "[model]\n"
                                 "name = mmoe, omoe\n";

/* train.lr of point p. */
static double lr_of(const sweep_t *s, int p) {
    return s->points[p].spec.train.lr;
}

START_TEST(test_paired_draws) {
    char *dir = test_tmpdir();
    err_t err;
    sweep_t *s = load_with(dir, search_ini, NULL, 0, &err);
    ck_assert_msg(s, "%s", err.msg);
    ck_assert(s->random && !s->draws_given);
    ck_assert_int_eq(s->draws, SWEEP_DRAWS_PAIRED);
    /* 2 correlations x (2 models x 3 draws): every model at every grid point
     * gets the same 3 lrs, draw by draw. */
    ck_assert_int_eq(s->n_points, 12);
    for (int p = 0; p < 12; p++)
        ck_assert_msg(lr_of(s, p) == lr_of(s, p % 3), "point %d: lr %.17g, draw %d is %.17g", p,
                      lr_of(s, p), p % 3, lr_of(s, p % 3));
    ck_assert(lr_of(s, 0) != lr_of(s, 1) && lr_of(s, 1) != lr_of(s, 2) &&
              lr_of(s, 0) != lr_of(s, 2));
    for (int k = 0; k < 3; k++)
        ck_assert(lr_of(s, k) >= 1e-4 && lr_of(s, k) <= 1e-2);
    /* Golden draws: the paired rule is part of the reproducibility contract. */
    ck_assert_msg(strstr(s->points[0].config, ";train.lr=0.000603877085392327;"), "%s",
                  s->points[0].config);
    ck_assert_msg(strstr(s->points[2].config, ";train.lr=0.0004599142992154575;"), "%s",
                  s->points[2].config);

    /* The same values whatever else the file grids over or its key order. */
    sweep_t *fewer = load_with(dir,
                               "[experiment]\nname = other\nsamples = 3\n[model]\nname = mmoe\n"
                               "[train]\nlr = loguniform(1e-4, 1e-2)\n",
                               NULL, 0, &err);
    ck_assert_msg(fewer, "%s", err.msg);
    for (int p = 0; p < 3; p++)
        ck_assert(lr_of(fewer, p) == lr_of(s, p));
    sweep_free(fewer);

    /* draws = independent: each grid point and model draws its own. */
    const char *ind[] = {"experiment.draws=independent"};
    sweep_t *own = load_with(dir, search_ini, ind, 1, &err);
    ck_assert_msg(own, "%s", err.msg);
    ck_assert(own->draws_given && own->draws == SWEEP_DRAWS_INDEPENDENT);
    ck_assert_int_eq(own->n_points, 12);
    for (int p = 1; p < 12; p++)
        for (int q = 0; q < p; q++)
            ck_assert(lr_of(own, p) != lr_of(own, q));
    sweep_free(own);
    /* The default rule a caller passes (a stored experiment's) applies
     * only when the file does not say. */
    char *path = test_write_file(dir, "d.ini", search_ini);
    sweep_opts_t o = {.draws = SWEEP_DRAWS_INDEPENDENT};
    ck_assert_int_eq(sweep_load_opts(path, &o, &own, &err), 0);
    ck_assert_int_eq(own->draws, SWEEP_DRAWS_INDEPENDENT);
    ck_assert(lr_of(own, 0) != lr_of(own, 3));
    sweep_free(own);
    const char *paired[] = {"experiment.draws=paired"};
    o.overrides = paired;
    o.n_overrides = 1;
    ck_assert_int_eq(sweep_load_opts(path, &o, &own, &err), 0);
    ck_assert_int_eq(own->draws, SWEEP_DRAWS_PAIRED);
    ck_assert(lr_of(own, 0) == lr_of(own, 3));
    sweep_free(own);
    free(path);
    sweep_free(s);
    free(dir);
}
END_TEST

/* An experiment stored before paired draws (experiment.draws 'independent',
 * as migration 009 marks every existing one) keeps expanding to its trials
 * from the same file; a new store of that file draws paired. */
START_TEST(test_stored_rule_kept) {
    char *dir = test_tmpdir();
    static const char ini_text[] = "[experiment]\nname = rs\nsamples = 2\n[data]\ndim = 10\n"
                                   "train = 100\nvalidation = 20\ntest = 20\n[train]\n"
                                   "lr = loguniform(1e-3, 1e-2)\nbatch = 20\nsteps = 0\n"
                                   "[model]\nname = mmoe, shared_bottom\n";
    char *ini = test_write_file(dir, "rs.ini", ini_text), *db = test_join(dir, "old.db");
    /* The old store: the file run with independent draws, then its spec text
     * made the file's own (what a store of an older mtlab holds). */
    const char *ind[] = {"run",     ini, "experiment.draws=independent", "--db", db, "--jobs", "1",
                         "--quiet", NULL};
    char *out = test_mtlab_ok(0, NULL, ind);
    free(out);
    sqlite3 *h;
    ck_assert_int_eq(sqlite3_open(db, &h), SQLITE_OK);
    sqlite3_stmt *st;
    ck_assert_int_eq(sqlite3_prepare_v2(h, "UPDATE experiment SET spec = ?1", -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, ini_text, -1, SQLITE_STATIC);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    ck_assert_int_eq(sqlite3_exec(h,
                                  "UPDATE spec SET text = (SELECT spec FROM experiment), "
                                  "overrides = ''",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(h);
    ck_assert_double_eq(test_query(db, "SELECT count(DISTINCT p.value) FROM param p WHERE "
                                       "p.key = 'train.lr'"),
                        4); /* 2 models x 2 draws of their own */
    const char *again[] = {"run", ini, "--db", db, "--jobs", "1", "--quiet", NULL};
    out = test_mtlab_ok(0, NULL, again);
    ck_assert_msg(strstr(out, "4 trials (0 new): 4 done"), "%s", out);
    free(out);
    const char *dry[] = {"run", ini, "--db", db, "--dry-run", NULL};
    out = test_mtlab_ok(0, NULL, dry);
    ck_assert_msg(strstr(out, "# draws: independent") && strstr(out, "has this spec") &&
                      strstr(out, "4 stored (4 done), 0 new; 0 stored trials are not in"),
                  "%s", out);
    free(out);
    /* A new store of the same file: paired, 2 lrs shared by both models. */
    char *fresh = test_join(dir, "new.db");
    const char *run_new[] = {"run", ini, "--db", fresh, "--jobs", "1", "--quiet", NULL};
    out = test_mtlab_ok(0, NULL, run_new);
    free(out);
    ck_assert_double_eq(test_query(fresh, "SELECT count(DISTINCT value) FROM param WHERE key = "
                                          "'train.lr'"),
                        2);
    char *draws = query_text(fresh, "SELECT draws FROM experiment");
    ck_assert_str_eq(draws, "paired");
    free(draws);
    free(fresh);
    free(ini);
    free(db);
    free(dir);
}
END_TEST

/* Migration 009 on a store of schema version 2: one spec row per experiment
 * (its last text), every experiment's draws 'independent', its trials of no
 * known spec; `ls --history` says so. */
START_TEST(test_migration_history) {
    char *dir = test_tmpdir(), *db = test_join(dir, "old.db");
    FILE *in = fopen("tests/fixtures/schema2.db", "rb");
    ck_assert_msg(in != NULL, "tests/fixtures/schema2.db not found: run from the repository root");
    FILE *copy = fopen(db, "wb");
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        ck_assert_uint_eq(fwrite(buf, 1, n, copy), n);
    fclose(in);
    fclose(copy);
    const char *ls[] = {"ls", "--db", db, NULL};
    char *out = test_mtlab_ok(0, NULL, ls);
    free(out);
    ck_assert_double_eq(test_query(db, "SELECT count(*) FROM spec"),
                        test_query(db, "SELECT count(*) FROM experiment"));
    ck_assert_double_eq(test_query(db, "SELECT count(*) FROM spec s JOIN experiment e ON "
                                       "e.id = s.experiment_id WHERE s.text = e.spec AND "
                                       "s.draws = 'independent' AND s.overrides = ''"),
                        test_query(db, "SELECT count(*) FROM experiment"));
    ck_assert_double_eq(test_query(db, "SELECT count(*) FROM experiment WHERE draws <> "
                                       "'independent'"),
                        0);
    ck_assert_double_eq(test_query(db, "SELECT count(*) FROM trial WHERE spec_id IS NOT NULL"), 0);
    char *name = query_text(db, "SELECT name FROM experiment ORDER BY id LIMIT 1");
    const char *history[] = {"ls", "--db", db, "--history", name, NULL};
    out = test_mtlab_ok(0, NULL, history);
    ck_assert_msg(strstr(out, "spec 1 (current)") && strstr(out, "draws independent") &&
                      strstr(out, "registered before the spec history"),
                  "%s", out);
    free(out);
    free(name);
    free(db);
    free(dir);
}
END_TEST

/* Shards with different spec histories merge into one store holding every
 * spec row, each trial's spec_id pointing at the spec of its own overrides. */
START_TEST(test_merge_history) {
    char *dir = test_tmpdir();
    char *ini = test_write_file(dir, "ov.ini", tiny_ini);
    char *a = test_join(dir, "a.db"), *b = test_join(dir, "b.db"), *m = test_join(dir, "m.db");
    const char *a1[] = {"run", ini, "train.steps=10", "--db", a, "--jobs", "1", "--quiet", NULL};
    const char *a2[] = {"run",    ini, "train.steps=10", "train.lr=0.02",  "--db", a,
                        "--jobs", "1", "--quiet",        "--replace-spec", NULL};
    const char *b1[] = {"run", ini, "train.steps=10", "--db", b, "--jobs", "1", "--quiet", NULL};
    free(test_mtlab_ok(0, NULL, a1));
    free(test_mtlab_ok(0, NULL, a2));
    free(test_mtlab_ok(0, NULL, b1));
    /* b, then a: the final spec texts must agree, so b gets a's last one. */
    const char *b2[] = {"run", ini,       "train.steps=10", "train.lr=0.02", "--db", b,   "--jobs",
                        "1",   "--quiet", "--replace-spec", "--limit",       "1",    NULL};
    free(test_mtlab_ok(0, NULL, b2));
    const char *merge[] = {"merge", m, a, b, NULL};
    free(test_mtlab_ok(0, NULL, merge));
    /* 2 specs: the same text registered on two shards is one spec */
    ck_assert_double_eq(test_query(m, "SELECT count(*) FROM spec"), 2);
    ck_assert_double_eq(test_query(m, "SELECT count(DISTINCT text || overrides) FROM spec"), 2);
    ck_assert_double_eq(test_query(m, "SELECT count(*) FROM trial"), 8);
    /* every trial's spec is of its experiment and holds its lr override */
    ck_assert_double_eq(test_query(m, "SELECT count(*) FROM trial t JOIN spec s ON s.id = "
                                      "t.spec_id AND s.experiment_id = t.experiment_id JOIN param "
                                      "p ON p.trial_id = t.id AND p.key = 'train.lr' WHERE "
                                      "(p.value = 0.02) = (s.overrides LIKE '%train.lr=0.02%')"),
                        8);
    free(ini);
    free(a);
    free(b);
    free(m);
    free(dir);
}
END_TEST

/* ---- mtlab rerun --------------------------------------------------------- */

/* The whole file at path (caller frees); *n its size. */
static char *file_bytes(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    ck_assert(f != NULL);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc(*n + 1);
    ck_assert_uint_eq(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

START_TEST(test_rerun) {
    char *dir = test_tmpdir();
    char *ini = test_write_file(dir, "ov.ini", tiny_ini), *db = test_join(dir, "r.db");
    const char *run[] = {"run",    ini, "train.lr=0.01,1e7", "--db", db,
                         "--jobs", "1", "--quiet",           NULL};
    free(test_mtlab_ok(0, NULL, run)); /* lr 1e7 diverges: failed trials */
    const int done = (int)test_query(db, "SELECT min(id) FROM trial WHERE status = 'done'");
    const int failed = (int)test_query(db, "SELECT min(id) FROM trial WHERE status = 'failed'");
    ck_assert(done > 0 && failed > 0);
    const int n_final = (int)test_query(
        db, "SELECT count(*) FROM metric m JOIN trial t ON t.id = m.trial_id AND m.step = "
            "t.final_step WHERE t.id = (SELECT min(id) FROM trial WHERE status = 'done')");
    ck_assert_int_gt(n_final, 5);
    size_t n_before, n_after;
    char *before = file_bytes(db, &n_before);
    char id[32], line[96];
    snprintf(id, sizeof id, "%d", done);
    const char *rerun[] = {"rerun", id, "--db", db, NULL};
    char *out = test_mtlab_ok(0, NULL, rerun);
    snprintf(line, sizeof line, "same bits: %d of %d final metrics identical\n", n_final, n_final);
    ck_assert_msg(strstr(out, line) && strstr(out, "val/loss/total") &&
                      strstr(out, "the store is not changed"),
                  "%s", out);
    free(out);
    char *after = file_bytes(db, &n_after); /* nothing written */
    ck_assert(n_before == n_after && memcmp(before, after, n_before) == 0);
    free(before);
    free(after);
    ck_assert_double_eq(test_query(db, "SELECT count(*) FROM trial"), 8);

    /* A stored value one ulp off: reported, exit 1. */
    char sql[256];
    snprintf(sql, sizeof sql,
             "UPDATE metric SET value = value * (1 + 1e-15) WHERE trial_id = %d AND name = "
             "'test/loss/t1' AND step = (SELECT final_step FROM trial WHERE id = %d)",
             done, done);
    exec_sql(db, sql);
    out = test_mtlab_ok(1, NULL, rerun);
    snprintf(line, sizeof line, "DIFFERENT: %d of %d final metrics identical\n", n_final - 1,
             n_final);
    ck_assert_msg(strstr(out, line) && strstr(out, "differ by"), "%s", out);
    free(out);

    /* Bad input. */
    char failed_id[32];
    snprintf(failed_id, sizeof failed_id, "%d", failed);
    const char *not_done[] = {"rerun", failed_id, "--db", db, NULL};
    char *err;
    out = test_mtlab_ok(2, &err, not_done);
    ck_assert_msg(strstr(err, "is failed: only a finished (done) trial"), "%s", err);
    free(out);
    free(err);
    const char *zero[] = {"rerun", "0", "--db", db, NULL};
    out = test_mtlab_ok(2, &err, zero);
    ck_assert_msg(strstr(err, "expected one trial id"), "%s", err);
    free(out);
    free(err);
    const char *missing[] = {"rerun", "999", "--db", db, NULL};
    out = test_mtlab_ok(1, &err, missing);
    ck_assert_msg(strstr(err, "999"), "%s", err);
    free(out);
    free(err);
    /* A param this mtlab does not know: no rebuild, said so. */
    snprintf(sql, sizeof sql, "INSERT INTO param VALUES (%d, 'train.warmup', 5)", done);
    exec_sql(db, sql);
    out = test_mtlab_ok(2, &err, rerun);
    ck_assert_msg(strstr(err, "train.warmup = 5 is not a key of this mtlab"), "%s", err);
    free(out);
    free(err);
    free(ini);
    free(db);
    free(dir);
}
END_TEST

Suite *overrides_suite(void) {
    Suite *s = suite_create("overrides");
    TCase *sweep = tcase_create("sweep");
    tcase_add_test(sweep, test_override_errors);
    tcase_add_test(sweep, test_override_in_place);
    tcase_add_test(sweep, test_paired_draws);
    suite_add_tcase(s, sweep);
    TCase *cli = tcase_create("cli");
    tcase_set_timeout(cli, 120);
    tcase_add_test(cli, test_override_run_resume);
    tcase_add_test(cli, test_stored_rule_kept);
    tcase_add_test(cli, test_migration_history);
    tcase_add_test(cli, test_merge_history);
    tcase_add_test(cli, test_rerun);
    suite_add_tcase(s, cli);
    return s;
}
