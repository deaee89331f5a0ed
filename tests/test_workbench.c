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

#include "core/mem.h"
#include "models/model.h"
#include "plot/curves.h"
#include "plot/plot.h"
#include "store/curate.h"
#include "store/runs.h"
#include "store/store.h"
#include "sweep/keys.h"
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

/* A store holding the sweep above, run: its path (caller frees; *dir too). */
static char *make_store(char **dir) {
    *dir = test_tmpdir();
    char *ini = test_write_file(*dir, "wb.ini", sweep_ini), *db = test_join(*dir, "r.db");
    const char *args[] = {"run", ini, "--db", db, "--jobs", "1", NULL};
    char *out = test_mtlab_ok(0, NULL, args);
    ck_assert_msg(strstr(out, "8 trials (8 new): 4 done, 4 failed"), "%s", out);
    free(out);
    free(ini);
    return db;
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
    char *out = test_mtlab_ok(0, NULL, args), line[4096];
    ck_assert_int_eq(test_count_lines(out), 1 + 8);
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
    char *sql = test_mtlab_ok(0, NULL, sqlargs);
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
    out = test_mtlab_ok(0, NULL, table);
    ck_assert_int_eq(test_count_lines(out), 2 + 8);
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
    const char *args[] = {"trials",  "1",
                          "--db",    db,
                          "--where", "model = 'mmoe' AND data.correlation >= 0.5 AND train.lr < 1",
                          "--sort",  "-test/loss/total",
                          "--cols",  "trial, model,test/loss/t*",
                          "--csv",   NULL};
    char *out = test_mtlab_ok(0, NULL, args);
    ck_assert_int_eq(test_count_lines(out), 1 + 2);
    ck_assert_str_eq(line_of(out, 0, line, sizeof line),
                     "\"trial\",\"model\",\"test/loss/t1\",\"test/loss/t2\",\"test/loss/total\"");
    double a = strtod(strrchr(line_of(out, 1, line, sizeof line), ',') + 1, NULL);
    double b = strtod(strrchr(line_of(out, 2, line, sizeof line), ',') + 1, NULL);
    ck_assert_msg(a >= b && isfinite(b), "not descending: %g %g", a, b);
    free(out);

    /* ascending: the 4 done trials by loss, then the 4 failed (NULL) ones */
    const char *asc[] = {
        "trials", "wb", "--db", db, "--sort", "test/loss/total", "--cols", "status,test/loss/total",
        "--csv",  NULL};
    out = test_mtlab_ok(0, NULL, asc);
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

    /* --columns: every column name, one a line, in table order */
    const char *cols[] = {"trials", "wb", "--db", db, "--columns", NULL};
    out = test_mtlab_ok(0, NULL, cols);
    ck_assert_msg(
        strncmp(out, "trial\nmodel\nrepeat\nstatus\ntags\ndata.correlation\ntrain.lr\n", 57) == 0,
        "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "\nval/loss/total\n"));
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
        {{"trials", "wb", "--db", db, "--where", "1); DELETE FROM trial; --"}, "one SQL statement"},
        {{"export", "--runs", "nope", "--db", db}, "no experiment 'nope'"},
        {{"export", "--runs", "wb", "--blobs", "--db", db}, "--blobs"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *err, *out = test_mtlab_ok(2, &err, cases[i].args);
        ck_assert_msg(strstr(err, cases[i].fragment) && test_count_lines(err) == 1,
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
    char *a = test_mtlab_ok(0, NULL, trials), *b = test_mtlab_ok(0, NULL, runs);
    ck_assert_str_eq(a, b);
    free(b);

    char *outdir = test_join(dir, "out/"), *file = test_join(dir, "out/wb-runs.csv");
    const char *to_dir[] = {"export", "--runs", "wb", "--csv", outdir, "--db", db, NULL};
    b = test_mtlab_ok(0, NULL, to_dir);
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
    b = test_mtlab_ok(0, NULL, all);
    ck_assert_msg(strstr(b, "out/meta.csv (1 rows)") && !strstr(b, "//"), "%s", b);
    ck_assert_msg(strstr(b, "tag.csv (0 rows)") && strstr(b, "note.csv (0 rows)"), "%s", b);
    free(b);
    free(file);
    free(outdir);
    free(db);
    free(dir);
}
END_TEST

/* ---- CLI hygiene ---------------------------------------------------------- */

/* --version: the build's version (git describe, "-dirty" when the tree had
 * changes), and the SQLite and BLAS in use. */
START_TEST(test_version) {
    const char *args[] = {"--version", NULL};
    char *out = test_mtlab_ok(0, NULL, args), line[512], expect[128];
    line_of(out, 0, line, sizeof line);
    ck_assert_msg(strncmp(line, "mtlab ", 6) == 0 && strlen(line) > 6, "%s", out);
    bool dirty = strlen(line) > 6 && strcmp(line + strlen(line) - 6, "-dirty") == 0;
    ck_assert_ptr_nonnull(strstr(out, dirty ? "source:  dirty" : "source:  clean"));
    snprintf(expect, sizeof expect, "SQLite:  %s", sqlite3_libversion());
    ck_assert_msg(strstr(out, expect), "%s", out);
    ck_assert_msg(strstr(out, "BLAS:    OpenBLAS "), "%s", out);
    free(out);
}
END_TEST

/* Unknown commands and options name the closest one. */
START_TEST(test_did_you_mean) {
    const struct {
        const char *args[6];
        const char *fragment;
    } cases[] = {
        {{"tirals"}, "unknown command 'tirals' (did you mean 'trials'?)"},
        {{"shwo", "1"}, "(did you mean 'show'?)"},
        {{"trials", "wb", "--sotr", "x"}, "unknown option '--sotr' (did you mean '--sort'?)"},
        {{"ls", "--bd", "x"}, "(did you mean '--db'?)"},
        {{"run", "x.ini", "--job", "2"}, "(did you mean '--jobs'?)"},
        {{"ls", "--zzzzzz"}, "unknown option '--zzzzzz' (see --help)"},
        {{"keys", "data.corelation"},
         "no key 'data.corelation' (did you mean 'data.correlation'?)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *err, *out = test_mtlab_ok(2, &err, cases[i].args);
        ck_assert_msg(strstr(err, cases[i].fragment), "case %zu: '%s' not in: %s", i,
                      cases[i].fragment, err);
        free(out);
        free(err);
    }
}
END_TEST

/* MTLAB_DB is the store of every command without --db (and their help's
 * default); --db still wins. */
START_TEST(test_mtlab_db) {
    char *dir, *db = make_store(&dir), *other = test_join(dir, "other.db");
    ck_assert_int_eq(setenv("MTLAB_DB", db, 1), 0);
    const char *ls[] = {"ls", NULL};
    char *out = test_mtlab_ok(0, NULL, ls);
    ck_assert_msg(strstr(out, " wb "), "%s", out);
    free(out);
    const char *trials[] = {"trials", "wb", "--cols", "trial", "--csv", NULL};
    out = test_mtlab_ok(0, NULL, trials);
    ck_assert_str_eq(out, "\"trial\"\n1\n2\n3\n4\n5\n6\n7\n8\n");
    free(out);
    const char *help[] = {"sql", "--help", NULL};
    out = test_mtlab_ok(0, NULL, help);
    char expect[1200];
    snprintf(expect, sizeof expect, "(default: %s)", db);
    ck_assert_msg(strstr(out, expect), "%s", out);
    free(out);
    /* --db wins: a missing store is an error, not the environment's */
    const char *explicit[] = {"ls", "--db", other, NULL};
    char *err;
    out = test_mtlab_ok(1, &err, explicit);
    ck_assert_msg(strstr(err, other), "%s", err);
    free(out);
    free(err);
    unsetenv("MTLAB_DB");
    free(other);
    free(db);
    free(dir);
}
END_TEST

/* Bad SQL is the user's input: exit 2 with SQLite's message. */
START_TEST(test_bad_sql_exit_2) {
    char *dir, *db = make_store(&dir), *err;
    const char *syntax[] = {"sql", "--db", db, "SELEC 1", NULL};
    char *out = test_mtlab_ok(2, &err, syntax);
    ck_assert_msg(strstr(err, "syntax error") && test_count_lines(err) == 1, "%s", err);
    free(out);
    free(err);
    const char *column[] = {"sql", "--db", db, "SELECT nosuch FROM trial", NULL};
    out = test_mtlab_ok(2, &err, column);
    ck_assert_msg(strstr(err, "no such column: nosuch"), "%s", err);
    free(out);
    free(err);
    const char *good[] = {"sql", "--db", db, "SELECT count(*) AS n FROM trial", NULL};
    out = test_mtlab_ok(0, NULL, good);
    ck_assert_str_eq(out, "n\n-\n8\n");
    free(out);
    free(db);
    free(dir);
}
END_TEST

/* `mtlab keys`: one entry per row of the key table (model hyper-parameters
 * included), each with type, default and meaning; a model key lists the
 * families that declare it and their default. */
START_TEST(test_keys) {
    const char *args[] = {"keys", NULL};
    char *out = test_mtlab_ok(0, NULL, args);
    int entries = 0;
    for (const char *p = out; *p; p = strchr(p, '\n') + 1) {
        if (*p != ' ') entries++;
        if (!strchr(p, '\n')) break;
    }
    int n_keys;
    const sweep_key_t *keys = sweep_keys(&n_keys);
    ck_assert_int_eq(entries, n_keys);
    for (int i = 0; i < n_keys; i++) {
        char head[128];
        snprintf(head, sizeof head, "\n%s\n  type:    ", keys[i].param);
        ck_assert_msg(i == 0 || strstr(out, head), "no entry for %s", keys[i].param);
        ck_assert_msg(strstr(out, keys[i].help), "no help for %s", keys[i].param);
    }
    ck_assert_ptr_nonnull(strstr(out, "data.groups\n  type:    integers in [1, "));
    ck_assert_ptr_nonnull(strstr(out, "train.lr\n  type:    number in (0, inf)\n"
                                      "  default: 0.001\n  grid:    yes\n"));
    ck_assert_ptr_nonnull(strstr(out, "record.gates\n  type:    true or false\n"
                                      "  default: true\n  grid:    no\n"));
    free(out);

    /* model.experts: the families of the registry that declare it */
    const char *experts[] = {"keys", "model.experts", NULL};
    out = test_mtlab_ok(0, NULL, experts);
    int n_reg;
    const model_ops_t *const *reg = model_registry(&n_reg);
    char fams[256] = "";
    for (int i = 0; i < n_reg; i++)
        if (model_hp_find(reg[i], "experts") >= 0)
            snprintf(fams + strlen(fams), sizeof fams - strlen(fams), "%s%s", fams[0] ? " " : "",
                     reg[i]->name);
    char expect[300];
    snprintf(expect, sizeof expect, "  for:     %s\n", fams);
    ck_assert_msg(strstr(out, expect), "'%s' not in: %s", expect, out);
    ck_assert_msg(strncmp(out, "model.experts\n  type:    integer in [1, ", 40) == 0, "%s", out);
    free(out);

    /* a section */
    const char *section[] = {"keys", "record", "--markdown", NULL};
    out = test_mtlab_ok(0, NULL, section);
    ck_assert_int_eq(test_count_lines(out), 2 + 2);
    ck_assert_ptr_nonnull(strstr(out, "| `record.weights` | true or false | true | no |"));
    free(out);
}
END_TEST

/* `mtlab schema` prints statements that rebuild the store's schema: run
 * on an empty database they make the same tables, indexes and views.  With
 * no store, a new store's schema, and no file left behind. */
START_TEST(test_schema) {
    char *dir, *db = make_store(&dir), *missing = test_join(dir, "none.db");
    const char *args[] = {"schema", "--db", db, NULL};
    char *out = test_mtlab_ok(0, NULL, args);
    ck_assert_msg(strstr(out, "-- schema version 8") && strstr(out, "CREATE TABLE trial (") &&
                      strstr(out, "CREATE TABLE tag (") && strstr(out, "CREATE VIEW v_final AS"),
                  "%s", out);
    sqlite3 *mem;
    ck_assert_int_eq(sqlite3_open(":memory:", &mem), SQLITE_OK);
    ck_assert_msg(sqlite3_exec(mem, out, NULL, NULL, NULL) == SQLITE_OK, "%s", sqlite3_errmsg(mem));
    sqlite3_stmt *st;
    ck_assert_int_eq(sqlite3_prepare_v2(mem,
                                        "SELECT group_concat(type || ':' || name, ' ') FROM "
                                        "(SELECT type, name FROM sqlite_master "
                                        "WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name)",
                                        -1, &st, NULL),
                     SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    char rebuilt[4096];
    snprintf(rebuilt, sizeof rebuilt, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(mem);
    char sql[] = "SELECT group_concat(type || ':' || name, ' ') FROM (SELECT type, name FROM "
                 "sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name)";
    sqlite3 *orig;
    ck_assert_int_eq(sqlite3_open_v2(db, &orig, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(orig, sql, -1, &st, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    ck_assert_str_eq(rebuilt, (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(orig);

    const char *none[] = {"schema", "--db", missing, NULL};
    char *fresh = test_mtlab_ok(0, NULL, none);
    ck_assert_msg(strstr(fresh, "does not exist: the schema of a new store"), "%s", fresh);
    ck_assert_str_eq(strstr(fresh, "-- schema version"), out);
    struct stat sb;
    ck_assert_int_ne(stat(missing, &sb), 0);
    free(fresh);
    free(out);
    free(missing);
    free(db);
    free(dir);
}
END_TEST

/* ---- curation --------------------------------------------------------------- */

/* Runs `sql` on the store and returns the first column of the first row as
 * text (caller frees; "" when no row or NULL). */
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

static int q_int(const char *db, const char *sql) {
    return (int)test_query(db, sql);
}

/* No row of any table refers to a row that is gone (PRAGMA
 * foreign_key_check over the whole store). */
static void assert_no_orphans(const char *db) {
    char *v = q_text(db, "SELECT count(*) FROM pragma_foreign_key_check");
    ck_assert_str_eq(v, "0");
    free(v);
}

START_TEST(test_tag_and_note) {
    char *dir, *db = make_store(&dir), *v;
    const char *tag12[] = {"tag", "1", "2", "best", "--db", db, NULL};
    char *out = test_mtlab_ok(0, NULL, tag12);
    ck_assert_str_eq(out, "added 2 tags\n");
    free(out);
    out = test_mtlab_ok(0, NULL, tag12);
    ck_assert_str_eq(out, "added 0 tags (2 already there)\n");
    free(out);
    const char *tag1[] = {"tag", "1", "paper:fig2", "--db", db, NULL};
    free(test_mtlab_ok(0, NULL, tag1));
    const char *texp[] = {"tag", "--exp", "wb", "baseline", "--db", db, NULL};
    free(test_mtlab_ok(0, NULL, texp));
    /* the runs table shows a trial's tags, sorted; --where can use them */
    const char *runs[] = {"trials", "wb",         "--db",    db,
                          "--cols", "trial,tags", "--where", "tags LIKE '%best%'",
                          "--csv",  NULL};
    out = test_mtlab_ok(0, NULL, runs);
    ck_assert_str_eq(out, "\"trial\",\"tags\"\n1,\"best paper:fig2\"\n2,\"best\"\n");
    free(out);
    /* listing: the experiment's own tags, then its trials' */
    const char *list[] = {"tag", "--exp", "wb", "--db", db, NULL};
    out = test_mtlab_ok(0, NULL, list);
    ck_assert_str_eq(out, "target      tags\n"
                          "----------  ---------------\n"
                          "experiment  baseline\n"
                          "trial 1     best paper:fig2\n"
                          "trial 2     best\n");
    free(out);
    const char *rm[] = {"tag", "1", "2", "--remove", "best", "--db", db, NULL};
    out = test_mtlab_ok(0, NULL, rm);
    ck_assert_str_eq(out, "removed 2 tags\n");
    free(out);
    ck_assert_int_eq(q_int(db, "SELECT count(*) FROM tag"), 2);
    ck_assert_int_eq(q_int(db, "SELECT count(*) FROM tag WHERE trial_id IS NULL "
                               "AND tag = 'baseline' AND experiment_id = 1"),
                     1);

    const char *note3[] = {"note", "3", "diverged:", "lr", "too", "high", "--db", db, NULL};
    out = test_mtlab_ok(0, NULL, note3);
    ck_assert_str_eq(out, "noted on trial 3\n");
    free(out);
    const char *nexp[] = {"note", "--exp", "wb", "4 models next time", "--db", db, NULL};
    free(test_mtlab_ok(0, NULL, nexp));
    v = q_text(db, "SELECT group_concat(ifnull(trial_id, 0) || '=' || text, '|') FROM "
                   "(SELECT * FROM note ORDER BY id)");
    ck_assert_str_eq(v, "3=diverged: lr too high|0=4 models next time");
    free(v);
    const char *nlist[] = {"note", "--exp", "wb", "--db", db, NULL};
    out = test_mtlab_ok(0, NULL, nlist);
    ck_assert_msg(strstr(out, "trial 3     diverged: lr too high\n") &&
                      strstr(out, "experiment  4 models next time\n"),
                  "%s", out);
    free(out);
    free(db);
    free(dir);
}
END_TEST

/* Bad input to tag, note, rm: exit 2, one line, nothing changed, no store
 * created where there was none. */
START_TEST(test_curation_bad_input) {
    char *dir, *db = make_store(&dir), *missing = test_join(dir, "none.db");
    const struct {
        const char *args[10];
        const char *fragment;
    } cases[] = {
        {{"tag", "1", "1bad", "--db", db}, "tag '1bad': a tag is 1 to 64 characters"},
        {{"tag", "1", "a/b", "--db", db}, "tag 'a/b': '/' is not allowed"},
        {{"tag", "99", "best", "--db", db}, "no trial 99 in"},
        {{"tag", "1", "best", "--exp", "wb", "--db", db}, "give trial ids or --exp, not both"},
        {{"tag", "best", "--db", db}, "missing target"},
        {{"tag", "--exp", "wbb", "x", "--db", db}, "no experiment 'wbb'"},
        {{"tag", "1", "--remove", "--db", db}, "--remove needs the TAGs"},
        {{"tag", "1", "best", "--db", missing}, "no store at"},
        {{"note", "1", "2", "text", "--db", db}, "a note is on one trial"},
        {{"note", "1", "  ", "--db", db}, "a note needs some text"},
        {{"note", "0", "x", "--db", db}, "'0' is not a trial id"},
        {{"note", "1", "x", "--db", missing}, "no store at"},
        {{"rm", "--db", db}, "missing what to remove"},
        {{"rm", "1", "--failed", "--db", db}, "not both"},
        {{"rm", "1", "x", "--db", db}, "'x' is not a trial id"},
        {{"rm", "2", "99", "--db", db}, "no trial 99 in"},
        {{"rm", "--exp", "nope", "--db", db}, "no experiment 'nope'"},
        {{"rm", "--failed", "--db", missing}, "no store at"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *err, *out = test_mtlab_ok(2, &err, cases[i].args);
        ck_assert_msg(strstr(err, cases[i].fragment) && test_count_lines(err) == 1,
                      "case %zu: '%s' not in: %s", i, cases[i].fragment, err);
        ck_assert_str_eq(out, "");
        free(out);
        free(err);
    }
    ck_assert_int_eq(q_int(db, "SELECT count(*) FROM trial"), 8);
    ck_assert_int_eq(q_int(db, "SELECT count(*) FROM tag") + q_int(db, "SELECT count(*) FROM note"),
                     0);
    struct stat sb;
    ck_assert_int_ne(stat(missing, &sb), 0);
    free(missing);
    free(db);
    free(dir);
}
END_TEST

/* rm: --dry-run changes nothing; --failed removes the failed trials and
 * every row that refers to them, in every table -- one a user added
 * included -- and reports the rows it removed; a running trial is refused
 * whole; --exp removes the experiment and all it holds. */
START_TEST(test_rm) {
    char *dir, *db = make_store(&dir);
    /* A table added after the schema, referring to trial: found by rm. */
    sqlite3 *h;
    ck_assert_int_eq(sqlite3_open(db, &h), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(h,
                                  "CREATE TABLE extra (trial_id INTEGER NOT NULL REFERENCES "
                                  "trial (id), what TEXT);"
                                  "INSERT INTO extra SELECT id, 'x' FROM trial",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(h);
    const char *tag[] = {"tag", "3", "broken", "--db", db, NULL};
    free(test_mtlab_ok(0, NULL, tag));
    int params = q_int(db, "SELECT count(*) FROM param");
    int failed_params = q_int(db, "SELECT count(*) FROM param p JOIN trial t ON t.id = p.trial_id "
                                  "WHERE t.status = 'failed'");
    ck_assert_int_gt(failed_params, 0);

    const char *dry[] = {"rm", "--failed", "--dry-run", "--db", db, NULL};
    char *out = test_mtlab_ok(0, NULL, dry), expect[128];
    snprintf(expect, sizeof expect, "would remove 4 failed trials (rows: param %d,", failed_params);
    ck_assert_msg(strncmp(out, expect, strlen(expect)) == 0, "%s", out);
    free(out);
    ck_assert_int_eq(q_int(db, "SELECT count(*) FROM param"), params);
    ck_assert_int_eq(q_int(db, "SELECT count(*) FROM trial"), 8);

    /* a running trial among those to remove: nothing is removed */
    ck_assert_int_eq(sqlite3_open(db, &h), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(h,
                                  "UPDATE trial SET status = 'running', host = 'elsewhere', "
                                  "pid = 4242 WHERE id = 4",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(h);
    const char *both[] = {"rm", "3", "4", "--db", db, NULL};
    char *err;
    out = test_mtlab_ok(2, &err, both);
    ck_assert_msg(strstr(err, "trial 4 is running (claimed by host elsewhere, pid 4242)"), "%s",
                  err);
    free(out);
    free(err);
    ck_assert_int_eq(q_int(db, "SELECT count(*) FROM trial"), 8);
    ck_assert_int_eq(sqlite3_open(db, &h), SQLITE_OK);
    ck_assert_int_eq(
        sqlite3_exec(h, "UPDATE trial SET status = 'failed' WHERE id = 4", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(h);

    const char *failed[] = {"rm", "--failed", "--exp", "wb", "--db", db, NULL};
    out = test_mtlab_ok(0, NULL, failed);
    snprintf(expect, sizeof expect, "removed 4 failed trials (rows: param %d,", failed_params);
    ck_assert_msg(strncmp(out, expect, strlen(expect)) == 0, "%s", out);
    ck_assert_msg(strstr(out, " tag 1,") && strstr(out, " extra 4,") && strstr(out, " trial 4)"),
                  "%s", out);
    free(out);
    ck_assert_int_eq(q_int(db, "SELECT count(*) FROM trial"), 4);
    ck_assert_int_eq(q_int(db, "SELECT count(*) FROM trial WHERE status <> 'done'"), 0);
    ck_assert_int_eq(q_int(db, "SELECT count(*) FROM param"), params - failed_params);
    ck_assert_int_eq(q_int(db, "SELECT count(*) FROM extra"), 4);
    ck_assert_int_eq(q_int(db, "SELECT count(*) FROM tag"), 0);
    assert_no_orphans(db);
    out = test_mtlab_ok(0, NULL, failed);
    ck_assert_str_eq(out, "no failed trials in wb\n");
    free(out);

    const char *exp[] = {"rm", "--exp", "wb", "--db", db, NULL};
    out = test_mtlab_ok(0, NULL, exp);
    ck_assert_msg(strncmp(out, "removed experiment wb and its 4 trials (rows: ", 46) == 0 &&
                      strstr(out, " experiment 1)"),
                  "%s", out);
    free(out);
    char *left = q_text(db, "SELECT (SELECT count(*) FROM experiment) + (SELECT count(*) FROM "
                            "trial) + (SELECT count(*) FROM param) + (SELECT count(*) FROM "
                            "metric) + (SELECT count(*) FROM gate_hist) + (SELECT count(*) FROM "
                            "weights) + (SELECT count(*) FROM extra)");
    ck_assert_str_eq(left, "0");
    free(left);
    assert_no_orphans(db);
    free(db);
    free(dir);
}
END_TEST

/* ---- a newcomer's script ----------------------------------------------------- */

/* mtlab in `dir` with no --db (the default results.db there): exit 0. */
static char *in_dir(const char *dir, const char *const *args) {
    char *out, *err;
    int rc = run_mtlab_in(dir, &out, &err, args);
    ck_assert_msg(rc == 0, "mtlab %s: exit %d: %s", args[0], rc, err);
    free(err);
    return out;
}

/* What a new user does after a first sweep, in a fresh directory, with the
 * defaults: run it, list the experiments, list its trials best first,
 * export the runs for pandas, tag the best trial, delete the failed ones,
 * check what is left -- and a rerun trains the deleted ones again. */
START_TEST(test_newcomer_script) {
    char *dir = test_tmpdir(), *ini = test_write_file(dir, "wb.ini", sweep_ini);
    char *db = test_join(dir, "results.db"), line[1024], sql[256];

    const char *run[] = {"run", "wb.ini", "--jobs", "1", NULL};
    char *out = in_dir(dir, run);
    ck_assert_msg(strstr(out, "wb: 8 trials (8 new): 4 done, 4 failed"), "%s", out);
    free(out);

    const char *ls[] = {"ls", NULL};
    out = in_dir(dir, ls);
    ck_assert_msg(strstr(out, "\n 1  wb         8        0        0     4       4  "), "%s", out);
    free(out);

    /* the best trial by validation loss comes first */
    const char *best[] = {"trials", "wb",
                          "--sort", "val/loss/total",
                          "--cols", "trial,model,data.correlation,train.lr,val/loss/total",
                          NULL};
    out = in_dir(dir, best);
    ck_assert_int_eq(test_count_lines(out), 2 + 8);
    ck_assert_str_eq(line_of(out, 0, line, sizeof line),
                     "trial  model          data.correlation  train.lr  val/loss/total");
    int best_id = atoi(line_of(out, 2, line, sizeof line));
    ck_assert_int_eq(best_id, q_int(db, "SELECT trial_id FROM v_final WHERE name = "
                                        "'val/loss/total' ORDER BY value LIMIT 1"));
    /* failed trials (no validation loss) come last */
    line_of(out, 9, line, sizeof line);
    for (size_t n = strlen(line); n > 0 && line[n - 1] == ' '; n--)
        line[n - 1] = '\0';
    ck_assert_msg(strcmp(line + strlen(line) - 8, "10000000") == 0, "%s", line);
    free(out);

    /* the runs table as one CSV: header and one line per trial */
    const char *export[] = {"export", "--runs", "wb", "--csv", "out", NULL};
    out = in_dir(dir, export);
    ck_assert_str_eq(out, "wrote out/wb-runs.csv (8 rows)\n");
    free(out);
    char *csv = test_join(dir, "out/wb-runs.csv");
    FILE *f = fopen(csv, "r");
    ck_assert_ptr_nonnull(f);
    int lines = 0;
    while (fgets(line, sizeof line, f))
        lines += strchr(line, '\n') != NULL;
    fclose(f);
    ck_assert_int_eq(lines, 1 + 8);
    free(csv);

    char id[16];
    snprintf(id, sizeof id, "%d", best_id);
    const char *tag[] = {"tag", id, "best", NULL};
    out = in_dir(dir, tag);
    ck_assert_str_eq(out, "added 1 tag\n");
    free(out);

    const char *rm[] = {"rm", "--failed", NULL};
    out = in_dir(dir, rm);
    ck_assert_msg(strncmp(out, "removed 4 failed trials (rows: ", 31) == 0, "%s", out);
    free(out);

    const char *left[] = {"trials", "wb", "--cols", "trial,status,tags", "--csv", NULL};
    out = in_dir(dir, left);
    ck_assert_int_eq(test_count_lines(out), 1 + 4);
    for (int r = 1; r <= 4; r++) {
        line_of(out, r, line, sizeof line);
        bool is_best = atoi(line) == best_id;
        ck_assert_msg(strstr(line, is_best ? ",\"done\",\"best\"" : ",\"done\","), "%s", line);
    }
    free(out);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM tag WHERE trial_id = %d AND tag = 'best'",
             best_id);
    ck_assert_int_eq(q_int(db, sql), 1);
    assert_no_orphans(db);

    /* the sweep file still describes the removed trials: a rerun trains them */
    out = in_dir(dir, run);
    ck_assert_msg(strstr(out, "wb: 8 trials (4 new): 4 done, 4 failed"), "%s", out);
    free(out);
    free(db);
    free(ini);
    free(dir);
}
END_TEST

/* ---- curves with bands ------------------------------------------------------ */

START_TEST(test_curves_stats) {
    const double x[] = {1, 2, 3, 4};
    double mean, sd, se;
    curves_stats(x, 4, &mean, &sd, &se);
    ck_assert_double_eq_tol(mean, 2.5, 1e-15);
    ck_assert_double_eq_tol(sd, sqrt(5.0 / 3.0), 1e-15); /* sample: divides by n - 1 */
    ck_assert_double_eq_tol(se, sqrt(5.0 / 3.0) / 2, 1e-15);
    curves_stats(x, 1, &mean, &sd, &se);
    ck_assert(mean == 1 && isnan(sd) && isnan(se));
    /* Student t, 0.975 quantile (tables: 12.7062, 4.3027, 2.0423, 2.0395,
     * 2.0003, 1.9799, 1.9600) */
    const struct {
        int df;
        double t;
    } t[] = {{1, 12.7062}, {2, 4.3027},   {30, 2.0423},    {31, 2.0395},
             {60, 2.0003}, {120, 1.9799}, {100000, 1.9600}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        ck_assert_msg(fabs(curves_t975(t[i].df) - t[i].t) < 2e-4, "df %d: %.5f", t[i].df,
                      curves_t975(t[i].df));
    curves_band_t b;
    ck_assert_int_eq(curves_band_parse("ci95", &b), 0);
    ck_assert_int_eq(b, CURVES_BAND_CI95);
    ck_assert_int_eq(curves_band_parse("ci90", &b), -1);
}
END_TEST

/* 3 repeats x 2 correlations of one model. */
static const char *repeats_ini = "[experiment]\nname = rep\nrepeats = 3\nseed = 2\n"
                                 "[data]\ncorrelation = 0.5, 0.9\ndim = 10\ntrain = 200\n"
                                 "validation = 50\ntest = 50\n"
                                 "[train]\nlr = 0.01\nbatch = 32\nsteps = 20\neval_every = 10\n"
                                 "[model]\nname = shared_bottom\n";

/* The script's datablock of correlation 0.5 holds, at each step, n, the
 * mean, the sample sd and se and the 95 % band of the 3 repeats' values, as
 * computed here from the store. */
START_TEST(test_curves_plot) {
    char *dir = test_tmpdir(), *ini = test_write_file(dir, "rep.ini", repeats_ini);
    char *db = test_join(dir, "r.db"), *out_dir = test_join(dir, "plots");
    const char *run[] = {"run", ini, "--db", db, NULL};
    free(test_mtlab_ok(0, NULL, run));
    const char *plot[] = {"plot",
                          "--db",
                          db,
                          "--curves",
                          "rep",
                          "--group-by",
                          "data.correlation",
                          "--metric",
                          "val/loss/total",
                          "--out",
                          out_dir,
                          "--no-render",
                          NULL};
    char *out = test_mtlab_ok(0, NULL, plot);
    char *script = test_join(dir, "plots/rep-val-loss-total.gp");
    char expect[1200];
    snprintf(expect, sizeof expect, "wrote %s (2 lines)\n", script);
    ck_assert_str_eq(out, expect);
    free(out);
    FILE *f = fopen(script, "r");
    ck_assert_ptr_nonnull(f);
    static char text[1 << 16];
    text[fread(text, 1, sizeof text - 1, f)] = '\0';
    fclose(f);
    const char *block =
        strstr(text, "$c1 << EOD\n# data.correlation 0.5\n# step n mean sd se lo hi\n");
    ck_assert_msg(block && strstr(text, "$c2 << EOD\n# data.correlation 0.9\n"), "%s", text);
    ck_assert_ptr_nonnull(strstr(text, "filledcurves"));
    const char *line = strchr(strstr(block, "# step"), '\n') + 1;
    for (int step = 10; step <= 20; step += 10) {
        double v[3];
        sqlite3 *h;
        ck_assert_int_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        sqlite3_stmt *st;
        char sql[256];
        snprintf(sql, sizeof sql,
                 "SELECT m.value FROM metric m JOIN param p ON p.trial_id = m.trial_id AND "
                 "p.key = 'data.correlation' AND p.value = 0.5 WHERE m.name = 'val/loss/total' "
                 "AND m.step = %d ORDER BY m.trial_id",
                 step);
        ck_assert_int_eq(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
        int n = 0;
        while (sqlite3_step(st) == SQLITE_ROW && n < 3)
            v[n++] = sqlite3_column_double(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(h);
        ck_assert_int_eq(n, 3);
        double mean = (v[0] + v[1] + v[2]) / 3, ss = 0;
        for (int i = 0; i < 3; i++)
            ss += (v[i] - mean) * (v[i] - mean);
        double sd = sqrt(ss / 2), se = sd / sqrt(3.0), half = 4.3027 * se;
        double got[7];
        ck_assert_int_eq(sscanf(line, "%lf %lf %lf %lf %lf %lf %lf", &got[0], &got[1], &got[2],
                                &got[3], &got[4], &got[5], &got[6]),
                         7);
        ck_assert_double_eq(got[0], step);
        ck_assert_double_eq(got[1], 3);
        ck_assert_double_eq_tol(got[2], mean, 1e-12 * fabs(mean));
        ck_assert_double_eq_tol(got[3], sd, 1e-9 * sd);
        ck_assert_double_eq_tol(got[4], se, 1e-9 * se);
        ck_assert_double_eq_tol(got[5], mean - half, 1e-9 * fabs(mean));
        ck_assert_double_eq_tol(got[6], mean + half, 1e-9 * fabs(mean));
        /* v_curve has the same sample sd and se (from one-pass sums: 1e-6) */
        snprintf(sql, sizeof sql,
                 "SELECT sd_sample, se, n FROM v_curve WHERE correlation = 0.5 AND "
                 "name = 'val/loss/total' AND step = %d",
                 step);
        ck_assert_int_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        ck_assert_int_eq(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
        ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
        ck_assert_double_eq_tol(sqlite3_column_double(st, 0), sd, 1e-6 * sd);
        ck_assert_double_eq_tol(sqlite3_column_double(st, 1), se, 1e-6 * se);
        ck_assert_int_eq(sqlite3_column_int(st, 2), 3);
        sqlite3_finalize(st);
        sqlite3_close(h);
        line = strchr(line, '\n') + 1;
    }
    ck_assert_msg(strncmp(line, "EOD\n", 4) == 0, "%s", line);

    /* --band none draws the means only; gnuplot (when installed) renders */
    const char *none[] = {"plot", "--db",  db,      "--curves", "rep", "--band",
                          "none", "--out", out_dir, "--format", "svg", NULL};
    out = test_mtlab_ok(0, NULL, none);
    f = fopen(script, "r");
    text[fread(text, 1, sizeof text - 1, f)] = '\0';
    fclose(f);
    ck_assert_ptr_null(strstr(text, "filledcurves"));
    ck_assert_ptr_nonnull(strstr(text, "$c1 << EOD\n# model shared_bottom\n"));
    if (plot_have_gnuplot()) {
        char *svg = test_join(dir, "plots/rep-val-loss-total.svg");
        struct stat sb;
        ck_assert_msg(stat(svg, &sb) == 0 && sb.st_size > 1000, "%s", out);
        free(svg);
    }
    free(out);

    /* bad input: exit 2, one line */
    const struct {
        const char *args[12];
        const char *fragment;
    } bad[] = {
        {{"plot", "--db", db, "--curves", "rep", "--band", "ci90"}, "--band: ci95, se, sd or none"},
        {{"plot", "--db", db, "--curves", "rep", "--group-by", "data.corelation"},
         "--group-by: no column 'data.corelation' (did you mean 'data.correlation'?)"},
        {{"plot", "--db", db, "--curves", "rep", "--metric", "val/loss/t9"},
         "no values of val/loss/t9"},
        {{"plot", "--db", db, "--curves", "nope"}, "no experiment 'nope'"},
        {{"plot", "--db", db, "--curves", "rep", "mmoe-fig4"}, "--curves takes no figure names"},
        {{"plot", "--db", db, "--curves", "rep", "--format", "md"}, "png, svg or pdf for curves"},
        {{"plot", "--db", db, "--curves", "rep", "--where", "nosuch = 1"}, "no such column"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *err;
        out = test_mtlab_ok(2, &err, bad[i].args);
        ck_assert_msg(strstr(err, bad[i].fragment) && test_count_lines(err) == 1,
                      "case %zu: '%s' not in: %s", i, bad[i].fragment, err);
        free(out);
        free(err);
    }
    free(script);
    free(out_dir);
    free(db);
    free(ini);
    free(dir);
}
END_TEST

/* ---- out of memory ----------------------------------------------------------- */

/* Every allocation of building the runs query and of a removal fails in
 * turn: each run fails cleanly with "out of memory", a failed removal
 * leaves the store as it was, and the run after the last allocation
 * succeeds. */
START_TEST(test_out_of_memory) {
    char *dir, *db = make_store(&dir);
    store_t *s;
    err_t err = {0};
    ck_assert_int_eq(store_open(&s, db, 0, &err), 0);
    int failures = 0;
    for (long n = 0;; n++) {
        mem_test_fail_at(n);
        err = (err_t){0};
        store_runs_t r;
        char *sql = NULL;
        const char *cols[] = {"trial", "test/loss/total"};
        store_runs_select_t sel = {"train.lr < 1", "test/loss/total", true, cols, 2};
        int rc = store_runs_columns(s, 1, false, &r, &err);
        if (rc == 0) {
            rc = store_runs_sql(&r, &sel, &sql, &err);
            store_runs_free(&r);
        }
        const long calls = mem_test_calls();
        mem_test_fail_at(-1);
        mem_free(sql);
        if (rc == 0) {
            ck_assert_int_ge(n, calls);
            break;
        }
        ck_assert_msg(strstr(err.msg, "out of memory"), "at %ld: %s", n, err.msg);
        failures++;
    }
    ck_assert_int_gt(failures, 5);

    failures = 0;
    for (long n = 0;; n++) {
        mem_test_fail_at(n);
        err = (err_t){0};
        store_removed_t removed;
        store_rm_t rm = {.kind = STORE_RM_FAILED, .experiment_id = 1};
        int rc = store_remove(s, &rm, &removed, &err);
        const long calls = mem_test_calls();
        mem_test_fail_at(-1);
        if (rc == 0) {
            ck_assert_int_ge(n, calls);
            ck_assert_int_eq(removed.trials, 4);
            break;
        }
        ck_assert_msg(strstr(err.msg, "out of memory"), "at %ld: %s", n, err.msg);
        ck_assert_int_eq(q_int(db, "SELECT count(*) FROM trial"), 8);
        failures++;
    }
    ck_assert_int_gt(failures, 2);
    store_close(s);
    ck_assert_int_eq(q_int(db, "SELECT count(*) FROM trial"), 4);
    assert_no_orphans(db);
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
    tc = tcase_create("hygiene");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_version);
    tcase_add_test(tc, test_did_you_mean);
    tcase_add_test(tc, test_mtlab_db);
    tcase_add_test(tc, test_bad_sql_exit_2);
    tcase_add_test(tc, test_keys);
    tcase_add_test(tc, test_schema);
    suite_add_tcase(s, tc);
    tc = tcase_create("curation");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_tag_and_note);
    tcase_add_test(tc, test_curation_bad_input);
    tcase_add_test(tc, test_rm);
    tcase_add_test(tc, test_out_of_memory);
    suite_add_tcase(s, tc);
    tc = tcase_create("newcomer");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_newcomer_script);
    suite_add_tcase(s, tc);
    tc = tcase_create("curves");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_curves_stats);
    tcase_add_test(tc, test_curves_plot);
    suite_add_tcase(s, tc);
    return s;
}
