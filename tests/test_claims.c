/* test_claims.c -- the MMoE claims (sql/claims/mmoe/) on a hand-made store
 * whose verdicts are known, the bootstrap's reproducibility, and `mtlab
 * claims` as a user runs it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "claims/claims.h"
#include "core/mem.h"
#include "core/rng.h"
#include "store/store.h"
#include "testutil.h"

#define N_REPEATS  40
#define EXPERIMENT "claims-test"

/* The design: mean final loss per model at correlation 0.5 (lo) and 1.0
 * (hi, stored as the integer 1 as a sweep stores it), and the sample sd of every cell.  Each cell's
 * values are noise centred and scaled to exactly that mean and sd, so every statistic's value on
 * the data is the design's (the true effect). */
static const struct {
    const char *model;
    double lo, hi, sd;
} design[] = {
    {"shared_bottom", 0.028, 0.033, 0.002}, /* loss falls as correlation falls: fails */
    {"omoe", 0.022, 0.019, 0.004},          /* rises: holds */
    {"mmoe", 0.020, 0.020, 0.001},          /* the same: undecided */
};
enum { N_MODELS = 3 };

static void exec_or_die(sqlite3 *db, const char *sql) {
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    ck_assert_msg(rc == SQLITE_OK, "%s: %s", sql, msg ? msg : "");
    sqlite3_free(msg);
}

/* A store made by the normal code (store_open creates it) with experiment
 * EXPERIMENT: 3 models x correlations {0.5, 1.0} x data.alpha_seed {1, 2} x
 * N_REPEATS repeats, one final test/loss/t1 each; train.lr constant and
 * model.bottom_hidden on Shared-Bottom only (neither splits conditions).
 * Also experiment "empty" with one pending trial. */
static char *make_store(void) {
    char *dir = test_tmpdir(), *path = test_join(dir, "claims.db");
    free(dir);
    store_t *s;
    err_t err = {0};
    ck_assert_msg(store_open(&s, path, 0, &err) == 0, "%s", err.msg);
    sqlite3 *db = store_db(s);
    exec_or_die(db, "BEGIN");
    exec_or_die(db, "INSERT INTO experiment (id, name, spec, identity) VALUES "
                    "(1, '" EXPERIMENT "', 'hand-made', 2), (2, 'empty', 'hand-made', 2)");
    exec_or_die(db, "INSERT INTO trial (id, experiment_id, model, repeat, config, data_seed, "
                    "init_seed, status) VALUES (100000, 2, 'mmoe', 0, 'x', 1, 1, 'pending')");
    sqlite3_stmt *trial, *param, *metric;
    ck_assert_int_eq(sqlite3_prepare_v2(db,
                                        "INSERT INTO trial (id, experiment_id, model, repeat, "
                                        "config, data_seed, init_seed, status, final_step) "
                                        "VALUES (?1, 1, ?2, ?3, ?4, ?5, ?5, 'done', 1000)",
                                        -1, &trial, NULL),
                     SQLITE_OK);
    ck_assert_int_eq(
        sqlite3_prepare_v2(db, "INSERT INTO param VALUES (?1, ?2, ?3)", -1, &param, NULL),
        SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db,
                                        "INSERT INTO metric VALUES (?1, 'test/loss/t1', 1000, ?2)",
                                        -1, &metric, NULL),
                     SQLITE_OK);
    rng_t rng;
    rng_seed(&rng, 7, 1);
    int id = 1;
    for (int m = 0; m < N_MODELS; m++)
        for (int alpha = 1; alpha <= 2; alpha++)
            for (int c = 0; c < 2; c++) {
                const double corr = c == 0 ? 0.5 : 1.0;
                const double mean = c == 0 ? design[m].lo : design[m].hi;
                double noise[N_REPEATS], sum = 0, sumsq = 0;
                for (int r = 0; r < N_REPEATS; r++)
                    sum += noise[r] = rng_normal(&rng);
                for (int r = 0; r < N_REPEATS; r++) {
                    noise[r] -= sum / N_REPEATS;
                    sumsq += noise[r] * noise[r];
                }
                const double scale = design[m].sd / sqrt(sumsq / (N_REPEATS - 1));
                char config[128];
                snprintf(config, sizeof config, "model=%s;alpha=%d;corr=%g", design[m].model, alpha,
                         corr);
                for (int r = 0; r < N_REPEATS; r++, id++) {
                    sqlite3_reset(trial);
                    sqlite3_bind_int(trial, 1, id);
                    sqlite3_bind_text(trial, 2, design[m].model, -1, SQLITE_STATIC);
                    sqlite3_bind_int(trial, 3, r);
                    sqlite3_bind_text(trial, 4, config, -1, SQLITE_TRANSIENT);
                    sqlite3_bind_int(trial, 5, 1000 * alpha + r);
                    ck_assert_int_eq(sqlite3_step(trial), SQLITE_DONE);
                    struct {
                        const char *key;
                        double value;
                    } params[] = {{"data.correlation", corr},
                                  {"data.alpha_seed", alpha},
                                  {"train.lr", 0.001},
                                  {"model.bottom_hidden", 113}};
                    const int n_params = m == 0 ? 4 : 3;
                    for (int p = 0; p < n_params; p++) {
                        sqlite3_reset(param);
                        sqlite3_bind_int(param, 1, id);
                        sqlite3_bind_text(param, 2, params[p].key, -1, SQLITE_STATIC);
                        if (params[p].value == floor(params[p].value))
                            sqlite3_bind_int(param, 3, (int)params[p].value);
                        else
                            sqlite3_bind_double(param, 3, params[p].value);
                        ck_assert_int_eq(sqlite3_step(param), SQLITE_DONE);
                    }
                    sqlite3_reset(metric);
                    sqlite3_bind_int(metric, 1, id);
                    sqlite3_bind_double(metric, 2, mean + scale * noise[r]);
                    ck_assert_int_eq(sqlite3_step(metric), SQLITE_DONE);
                }
            }
    sqlite3_finalize(trial);
    sqlite3_finalize(param);
    sqlite3_finalize(metric);
    exec_or_die(db, "COMMIT");
    store_close(s);
    return path;
}

static const claim_result_t *find(const claims_t *c, const char *claim, const char *condition) {
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->rows[i].claim, claim) == 0 && c->rows[i].condition &&
            strcmp(c->rows[i].condition, condition) == 0)
            return &c->rows[i];
    ck_abort_msg("no row for claim %s under '%s'", claim, condition);
    return NULL;
}

static claims_t *run_claims(const char *path, uint64_t seed) {
    store_t *s;
    err_t err = {0};
    ck_assert_msg(store_open(&s, path, STORE_READONLY, &err) == 0, "%s", err.msg);
    claims_options_t opt = {.experiment = EXPERIMENT, .seed = seed, .resamples = 2000};
    claims_t *c;
    ck_assert_msg(claims_run(s, "mmoe", &opt, &c, &err) == 0, "%s", err.msg);
    store_close(s);
    return c;
}

/* Every claim of the MMoE paper under every condition of the hand-made
 * store: the verdict the design implies, and an interval that holds the
 * design's effect. */
START_TEST(claims_known_verdicts) {
    char *path = make_store();
    claims_t *c = run_claims(path, 1);
    static const struct {
        const char *claim, *condition;
        double effect;
        claim_verdict_t verdict;
    } expect[] = {
        {"moe-beats-shared-bottom", "moe=omoe", 0.0305 - 0.0205, CLAIM_HOLDS},
        {"moe-beats-shared-bottom", "moe=mmoe", 0.0305 - 0.020, CLAIM_HOLDS},
        {"loss-rises-as-correlation-falls", "model=shared_bottom", -0.005, CLAIM_FAILS},
        {"loss-rises-as-correlation-falls", "model=omoe", 0.003, CLAIM_HOLDS},
        {"loss-rises-as-correlation-falls", "model=mmoe", 0, CLAIM_UNDECIDED},
        {"mmoe-gap-smallest", "vs=omoe", 0.003, CLAIM_HOLDS},
        {"mmoe-gap-smallest", "vs=shared_bottom", 0.005, CLAIM_HOLDS},
        {"shared-bottom-spread-widest", "correlation=0.5 vs=omoe", -0.002, CLAIM_FAILS},
        {"shared-bottom-spread-widest", "correlation=1 vs=mmoe", 0.001, CLAIM_HOLDS},
    };
    const int n_expect = (int)(sizeof expect / sizeof expect[0]);
    /* 2 + 3 + 2 + 2 x 2 conditions, each under data.alpha_seed 1 and 2 */
    ck_assert_int_eq(c->n, 2 * 11);
    for (int alpha = 1; alpha <= 2; alpha++)
        for (int i = 0; i < n_expect; i++) {
            char condition[128];
            snprintf(condition, sizeof condition, "data.alpha_seed=%d %s", alpha,
                     expect[i].condition);
            const claim_result_t *r = find(c, expect[i].claim, condition);
            ck_assert_msg(r->verdict == expect[i].verdict, "%s under %s: %s (support %g)", r->claim,
                          condition, claim_verdict_name(r->verdict), r->support);
            ck_assert_int_eq(r->n_repeats, N_REPEATS);
            ck_assert_msg(fabs(r->statistic - expect[i].effect) < 1e-12, "%s under %s: %g",
                          r->claim, condition, r->statistic);
            ck_assert_msg(r->ci_lo <= expect[i].effect && expect[i].effect <= r->ci_hi,
                          "%s under %s: [%g, %g] misses %g", r->claim, condition, r->ci_lo,
                          r->ci_hi, expect[i].effect);
            ck_assert(r->ci_lo < r->ci_hi);
            if (r->verdict == CLAIM_UNDECIDED) {
                ck_assert(r->support > 0.2 && r->support < 0.8);
            }
        }
    claims_free(c);
    free(path);
}
END_TEST

/* Same seed: the same numbers; another seed: other intervals, the same
 * verdicts. */
START_TEST(claims_seeded) {
    char *path = make_store();
    claims_t *a = run_claims(path, 1), *b = run_claims(path, 1), *other = run_claims(path, 2);
    ck_assert_int_eq(a->n, b->n);
    ck_assert_int_eq(a->n, other->n);
    int moved = 0;
    for (int i = 0; i < a->n; i++) {
        ck_assert(memcmp(&a->rows[i].ci_lo, &b->rows[i].ci_lo, sizeof(double)) == 0);
        ck_assert(memcmp(&a->rows[i].ci_hi, &b->rows[i].ci_hi, sizeof(double)) == 0);
        ck_assert(a->rows[i].support == b->rows[i].support);
        ck_assert_int_eq(a->rows[i].verdict, other->rows[i].verdict);
        moved += a->rows[i].ci_lo != other->rows[i].ci_lo;
    }
    ck_assert_int_eq(moved, a->n);
    claims_free(a);
    claims_free(b);
    claims_free(other);
    free(path);
}
END_TEST

static char *last_fields(const char *csv) {
    /* the verdict of every line: the text after its last comma */
    char *out = calloc(strlen(csv) + 1, 1);
    for (const char *line = csv; *line;) {
        const char *end = strchr(line, '\n');
        if (!end) end = line + strlen(line);
        const char *comma = line;
        for (const char *p = line; p < end; p++)
            if (*p == ',') comma = p + 1;
        strncat(out, comma, (size_t)(end - comma));
        strcat(out, "\n");
        line = *end ? end + 1 : end;
    }
    return out;
}

/* `mtlab claims`: the same seed prints the same bytes, another seed other
 * bytes but the same verdicts; the table has a header and one line per row. */
START_TEST(claims_cli_output) {
    char *path = make_store(), *out1, *out2, *out3, *err;
    const char *a1[] = {"claims", EXPERIMENT, "--db", path, "--csv", "--seed", "5", NULL};
    ck_assert_int_eq(run_mtlab(&out1, &err, a1), 0);
    free(err);
    ck_assert_int_eq(run_mtlab(&out2, &err, a1), 0);
    free(err);
    ck_assert_str_eq(out1, out2);
    const char *a3[] = {"claims", EXPERIMENT, "--db", path, "--csv", "--seed", "6", NULL};
    ck_assert_int_eq(run_mtlab(&out3, &err, a3), 0);
    free(err);
    ck_assert_str_ne(out1, out3);
    char *v1 = last_fields(out1), *v3 = last_fields(out3);
    ck_assert_str_eq(v1, v3);
    const char *header = "\"claim\",\"condition\",\"statistic\",\"ci_lo\",\"ci_hi\",\"support\","
                         "\"n\",\"verdict\"\n";
    ck_assert(strncmp(out1, header, strlen(header)) == 0);
    ck_assert_ptr_nonnull(strstr(out1, "\"mmoe-gap-smallest\",\"data.alpha_seed=1 vs=omoe\","));
    free(v1);
    free(v3);
    free(out1);
    free(out2);
    free(out3);

    const char *table[] = {"claims", EXPERIMENT, "--db", path, "--resamples", "200", NULL};
    ck_assert_int_eq(run_mtlab(&out1, &err, table), 0);
    ck_assert_ptr_nonnull(strstr(out1, "verdict"));
    ck_assert_ptr_nonnull(strstr(out1, "undecided"));
    ck_assert_ptr_nonnull(strstr(out1, "fails"));
    ck_assert_ptr_nonnull(strstr(out1, "holds"));
    free(out1);
    free(err);
    free(path);
}
END_TEST

/* Bad input: a one-line message and exit 1 (store contents) or 2 (usage). */
START_TEST(claims_cli_errors) {
    char *path = make_store(), *out, *err;
    static const struct {
        const char *args[10];
        int status;
        const char *message;
    } cases[] = {
        {{"claims", "nope", "--db", NULL}, 1, "no experiment 'nope'"},
        {{"claims", "empty", "--db", NULL}, 1, "experiment 'empty' has no finished trial"},
        {{"claims", EXPERIMENT, "--db", NULL, "--metric", "test/loss/t9"},
         1,
         "no finished trial with metric test/loss/t9"},
        {{"claims", EXPERIMENT, "--db", NULL, "--paper", "nosuch"},
         2,
         "no claims for paper 'nosuch'"},
        {{"claims", EXPERIMENT, "--db", NULL, "--resamples", "0"}, 2, "--resamples"},
        {{"claims", "--db", NULL}, 2, "missing EXP"},
        {{"claims", EXPERIMENT, "--db", NULL, "--plot", "x.png"}, 2, "must end in .gp"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *args[10];
        memcpy(args, cases[i].args, sizeof args);
        for (int k = 0; k < 10; k++)
            if (args[k] == NULL) {
                args[k] = path; /* the value of --db */
                break;
            }
        int rc = run_mtlab(&out, &err, args);
        ck_assert_msg(rc == cases[i].status, "case %zu: exit %d: %s", i, rc, err);
        ck_assert_msg(strstr(err, cases[i].message), "case %zu: %s", i, err);
        free(out);
        free(err);
    }
    const char *no_db[] = {"claims", EXPERIMENT, "--db", "/nonexistent/claims.db", NULL};
    ck_assert_int_eq(run_mtlab(&out, &err, no_db), 1);
    free(out);
    free(err);
    free(path);
}
END_TEST

/* A claim file that breaks the contract is an error naming it; a claim
 * whose query has no rows for the experiment says "no data". */
START_TEST(claims_contract) {
    char *path = make_store();
    store_t *s;
    err_t err = {0};
    ck_assert(store_open(&s, path, STORE_READONLY, &err) == 0);
    claims_options_t opt = {.experiment = EXPERIMENT, .seed = 1, .resamples = 100};
    static const struct {
        const char *sql, *message;
    } bad[] = {
        {"-- claim: x\nSELECT 'c' AS condition, 0 AS repeat, 'a' AS grp, 1.0 AS value",
         "no '-- statistic:' line"},
        {"-- claim: x\n-- statistic: median\nSELECT 1", "unknown statistic 'median'"},
        {"-- claim: x\n-- statistic: mean_diff\nSELECT 1 AS condition", "returns 1 columns"},
        {"-- claim: x\n-- statistic: mean_diff\n"
         "SELECT 'c' AS condition, 0 AS repeat, 'z' AS grp, 1.0 AS value",
         "group 'z' is not one of mean_diff's"},
        {"-- claim: x\n-- statistic: mean_diff\n"
         "SELECT 'c' AS condition, 0 AS repeat, 'a' AS grp, :bins AS value",
         "unknown parameter :bins"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        claims_t c = {0};
        ck_assert_int_eq(claims_run_sql(s, "bad", bad[i].sql, &opt, &c, &err), -1);
        ck_assert_msg(strstr(err.msg, bad[i].message), "case %zu: %s", i, err.msg);
        ck_assert_ptr_nonnull(strstr(err.msg, "claim bad"));
        ck_assert_int_eq(c.n, 0);
    }
    claims_t c = {0};
    ck_assert_int_eq(claims_run_sql(s, "none",
                                    "-- claim: x\n-- statistic: sd_diff\n"
                                    "SELECT 'c' AS condition, 0 AS repeat, 'a' AS grp, "
                                    "1.0 AS value WHERE 0",
                                    &opt, &c, &err),
                     0);
    ck_assert_int_eq(c.n, 1);
    ck_assert_int_eq(c.rows[0].verdict, CLAIM_NO_DATA);
    ck_assert(isnan(c.rows[0].support));
    claims_t *owned = mem_calloc(1, sizeof *owned);
    *owned = c;
    claims_free(owned); /* claims_free releases what claims_run_sql added */
    store_close(s);
    free(path);
}
END_TEST

/* A store with experiment "defaults": Shared-Bottom and MMoE at correlations
 * 0.5 and 1, model.init glorot (left out of the config, as a sweep stores
 * the default) or torch, MMoE's model.gate_bias off (left out) or on, 3
 * repeats; every trial's final loss is its cell's constant below. */
static const struct {
    const char *model, *init, *gate_bias; /* NULL: not in the config */
    double loss;
} default_cells[] = {
    {"shared_bottom", NULL, NULL, 0.030}, {"shared_bottom", "torch", NULL, 0.020},
    {"mmoe", NULL, NULL, 0.010},          {"mmoe", NULL, "on", 0.015},
    {"mmoe", "torch", NULL, 0.012},       {"mmoe", "torch", "on", 0.025},
};

static char *make_defaults_store(void) {
    char *dir = test_tmpdir(), *path = test_join(dir, "defaults.db");
    free(dir);
    store_t *s;
    err_t err = {0};
    ck_assert_msg(store_open(&s, path, 0, &err) == 0, "%s", err.msg);
    sqlite3 *db = store_db(s);
    exec_or_die(db, "BEGIN");
    exec_or_die(db, "INSERT INTO experiment (id, name, spec, identity) VALUES "
                    "(1, 'defaults', 'hand-made', 2)");
    int id = 1;
    char sql[512];
    for (size_t k = 0; k < sizeof default_cells / sizeof default_cells[0]; k++)
        for (int c = 0; c < 2; c++)
            for (int r = 0; r < 3; r++, id++) {
                snprintf(sql, sizeof sql,
                         "INSERT INTO trial (id, experiment_id, model, repeat, config, "
                         "data_seed, init_seed, status, final_step) VALUES "
                         "(%d, 1, '%s', %d, 'cell %zu corr %d', %d, %d, 'done', 10);"
                         "INSERT INTO param VALUES (%d, 'data.correlation', %s);"
                         "INSERT INTO param VALUES (%d, 'train.lr', 0.001);"
                         "INSERT INTO metric VALUES (%d, 'test/loss/t1', 10, %.17g);",
                         id, default_cells[k].model, r, k, c, r, id, id, c ? "1" : "0.5", id, id,
                         default_cells[k].loss);
                exec_or_die(db, sql);
                if (default_cells[k].init) {
                    snprintf(sql, sizeof sql, "INSERT INTO param VALUES (%d, 'model.init', '%s')",
                             id, default_cells[k].init);
                    exec_or_die(db, sql);
                }
                if (default_cells[k].gate_bias) {
                    snprintf(sql, sizeof sql,
                             "INSERT INTO param VALUES (%d, 'model.gate_bias', '%s')", id,
                             default_cells[k].gate_bias);
                    exec_or_die(db, sql);
                }
            }
    exec_or_die(db, "COMMIT");
    store_close(s);
    return path;
}

/* Conditions split by keys a config leaves out at their default (model.init
 * = glorot, model.gate_bias = off, from the model registry), and a family
 * without a key (Shared-Bottom has no gate bias) is compared under each of
 * its values: moe-beats-shared-bottom has exactly the 4 conditions
 * init x gate_bias, each statistic mean(Shared-Bottom) - mean(MMoE) of its
 * cells.  The summary counts them per part. */
START_TEST(claims_default_keys) {
    char *path = make_defaults_store();
    store_t *s;
    err_t err = {0};
    ck_assert(store_open(&s, path, STORE_READONLY, &err) == 0);
    claims_options_t opt = {.experiment = "defaults", .seed = 1, .resamples = 50};
    claims_t *c = NULL;
    ck_assert_msg(claims_run(s, "mmoe", &opt, &c, &err) == 0, "%s", err.msg);
    static const struct {
        const char *condition;
        double statistic;
    } expect[] = {
        {"model.gate_bias=off model.init=glorot moe=mmoe", 0.030 - 0.010},
        {"model.gate_bias=on model.init=glorot moe=mmoe", 0.030 - 0.015},
        {"model.gate_bias=off model.init=torch moe=mmoe", 0.020 - 0.012},
        {"model.gate_bias=on model.init=torch moe=mmoe", 0.020 - 0.025},
    };
    int n_rows = 0;
    for (int i = 0; i < c->n; i++)
        n_rows += strcmp(c->rows[i].claim, "moe-beats-shared-bottom") == 0;
    ck_assert_int_eq(n_rows, 4);
    for (int i = 0; i < 4; i++) {
        const claim_result_t *r = find(c, "moe-beats-shared-bottom", expect[i].condition);
        ck_assert_int_eq(r->n_repeats, 3);
        ck_assert_msg(fabs(r->statistic - expect[i].statistic) < 1e-12, "%s: %.17g",
                      expect[i].condition, r->statistic);
        ck_assert_int_eq(r->verdict, expect[i].statistic > 0 ? CLAIM_HOLDS : CLAIM_FAILS);
    }
    /* the store stays read-only after the TEMP tables */
    ck_assert_int_ne(sqlite3_exec(store_db(s), "DELETE FROM metric", NULL, NULL, NULL), SQLITE_OK);

    store_table_t *t = NULL;
    ck_assert_msg(claims_summary(c, &t, &err) == 0, "%s", err.msg);
    int seen = 0;
    for (int i = 0; i < t->n_rows; i++) {
        if (strcmp(store_table_cell(t, i, 0), "moe-beats-shared-bottom") != 0) continue;
        const char *where = store_table_cell(t, i, 1);
        const char *n = store_table_cell(t, i, 2), *holds = store_table_cell(t, i, 3),
                   *fails = store_table_cell(t, i, 4);
        if (strcmp(where, "(all)") == 0) {
            ck_assert_str_eq(n, "4");
            ck_assert_str_eq(holds, "3");
            ck_assert_str_eq(fails, "1");
            ck_assert_int_eq(seen, 0); /* first */
            seen++;
        } else if (strcmp(where, "model.init=torch") == 0) {
            ck_assert_str_eq(n, "2");
            ck_assert_str_eq(holds, "1");
            ck_assert_str_eq(fails, "1");
            seen++;
        } else if (strcmp(where, "model.gate_bias=off") == 0) {
            ck_assert_str_eq(holds, "2");
            seen++;
        }
    }
    ck_assert_int_eq(seen, 3);
    store_table_free(t);
    claims_free(c);
    store_close(s);
    free(path);
}
END_TEST

/* Every allocation of claims_run, claims_table and claims_summary failing in turn: an
 * "out of memory" error, nothing leaked (ASan), then success. */
START_TEST(claims_out_of_memory) {
    char *path = make_defaults_store(); /* small: the walk runs every claim once per allocation */
    store_t *s;
    err_t err = {0};
    ck_assert(store_open(&s, path, STORE_READONLY, &err) == 0);
    claims_options_t opt = {.experiment = "defaults", .seed = 1, .resamples = 20};
    int failures = 0;
    for (long n = 0;; n++) {
        mem_test_fail_at(n);
        claims_t *c = NULL;
        store_table_t *t = NULL;
        err = (err_t){0};
        int rc = claims_run(s, "mmoe", &opt, &c, &err);
        if (rc == 0) rc = claims_table(c, &t, &err);
        store_table_free(t);
        t = NULL;
        if (rc == 0) rc = claims_summary(c, &t, &err);
        const long calls = mem_test_calls();
        mem_test_fail_at(-1);
        store_table_free(t);
        claims_free(c);
        if (rc == 0) {
            ck_assert_int_ge(n, calls); /* no failure was swallowed: it came past the last call */
            break;
        }
        ck_assert_msg(strstr(err.msg, "out of memory"), "at %ld: %s", n, err.msg);
        failures++;
    }
    ck_assert_int_gt(failures, 10);
    store_close(s);
    free(path);
}
END_TEST

/* --plot writes a gnuplot script that gnuplot renders (when installed). */
START_TEST(claims_plot_script) {
    char *path = make_store(), *out, *err;
    char *dir = test_tmpdir(), *gp = test_join(dir, "claims.gp"),
         *png = test_join(dir, "claims.png");
    const char *args[] = {"claims", EXPERIMENT, "--db", path, "--plot", gp, NULL};
    ck_assert_int_eq(run_mtlab(&out, &err, args), 0);
    struct stat sb;
    ck_assert_int_eq(stat(gp, &sb), 0);
    ck_assert_int_gt(sb.st_size, 100);
    if (system("command -v gnuplot >/dev/null 2>&1") == 0) {
        char cmd[8192];
        snprintf(cmd, sizeof cmd, "gnuplot '%s' 2>/dev/null", gp);
        ck_assert_int_eq(system(cmd), 0);
        ck_assert_int_eq(stat(png, &sb), 0);
        ck_assert_int_gt(sb.st_size, 1000);
    }
    free(out);
    free(err);
    /* the summary's plot: one box per claim and part, labelled with the counts (the
     * design: under data.alpha_seed=2 OMoE's loss rises, Shared-Bottom's falls, MMoE's is flat) */
    const char *sargs[] = {"claims", EXPERIMENT, "--db", path, "--summary", "--plot", gp, NULL};
    ck_assert_int_eq(run_mtlab(&out, &err, sargs), 0);
    char *script = test_read_file(gp);
    ck_assert_ptr_nonnull(
        strstr(script, "\"data.alpha_seed=2\" \"1 holds, 1 fails, 1 undecided of 3\""));
    free(script);
    free(out);
    free(err);
    free(gp);
    free(png);
    free(dir);
    free(path);
}
END_TEST

Suite *claims_suite(void) {
    Suite *s = suite_create("claims");
    TCase *tc = tcase_create("claims");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, claims_known_verdicts);
    tcase_add_test(tc, claims_seeded);
    tcase_add_test(tc, claims_cli_output);
    tcase_add_test(tc, claims_cli_errors);
    tcase_add_test(tc, claims_contract);
    tcase_add_test(tc, claims_default_keys);
    tcase_add_test(tc, claims_plot_script);
    tcase_add_test(tc, claims_out_of_memory);
    suite_add_tcase(s, tc);
    return s;
}
