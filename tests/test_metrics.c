/* test_metrics.c -- metric names, exact AUC and normalised entropy, and the
 * curves a trial with a binary task records (trainer and `mtlab run`). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/loss.h"
#include "core/rng.h"
#include "data/synth.h"
#include "testutil.h"
#include "train/metrics.h"
#include "train/train.h"

static const char *name_of(metric_split_t split, metric_measure_t measure, int task, int T) {
    static char name[METRIC_NAME_MAX];
    ck_assert_int_eq(metric_name((metric_id_t){split, measure, task}, T, name, sizeof name), 0);
    return name;
}

/* Every kind of name the store holds, made by the one function. */
START_TEST(test_names) {
    ck_assert_str_eq(name_of(METRIC_TRAIN, MEASURE_LOSS, 0, 2), "train/loss/t1");
    ck_assert_str_eq(name_of(METRIC_VAL, MEASURE_LOSS, 2, 2), "val/loss/total");
    ck_assert_str_eq(name_of(METRIC_TEST, MEASURE_AUC, 1, 2), "test/auc/t2");
    ck_assert_str_eq(name_of(METRIC_TEST, MEASURE_NE, 1, 2), "test/ne/t2");
    ck_assert_str_eq(name_of(METRIC_VAL, MEASURE_NE, 15, 16), "val/ne/t16");
    ck_assert_str_eq(name_of(METRIC_TRAIN, MEASURE_PENALTY, METRIC_WHOLE, 3), "train/penalty");
    ck_assert_str_eq(name_of(METRIC_TEST, MEASURE_BASELINE, 3, 3), "test/baseline/total");
    ck_assert_str_eq(name_of(METRIC_DATA, MEASURE_PEARSON, metric_pair_index(0, 1, 3), 3),
                     "data/pearson/t1-t2");
    ck_assert_str_eq(name_of(METRIC_DATA, MEASURE_PEARSON, metric_pair_index(0, 2, 3), 3),
                     "data/pearson/t1-t3");
    ck_assert_str_eq(name_of(METRIC_DATA, MEASURE_PEARSON, metric_pair_index(1, 2, 3), 3),
                     "data/pearson/t2-t3");
    /* The pair index enumerates the T(T-1)/2 pairs without gaps or repeats. */
    for (int T = 2; T <= 16; T++) {
        int expect = 0;
        for (int i = 0; i < T; i++)
            for (int j = i + 1; j < T; j++)
                ck_assert_int_eq(metric_pair_index(i, j, T), expect++);
    }
    /* Out of range, or too long: -1 and an empty name. */
    char name[METRIC_NAME_MAX] = "x";
    const metric_id_t bad[] = {
        {METRIC_TEST, MEASURE_LOSS, 3},     {METRIC_TEST, MEASURE_LOSS, -2},
        {METRIC_N_SPLITS, MEASURE_LOSS, 0}, {METRIC_TEST, METRIC_N_MEASURES, 0},
        {METRIC_DATA, MEASURE_PEARSON, 1},  {METRIC_DATA, MEASURE_PEARSON, -1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(metric_name(bad[i], 2, name, sizeof name), -1);
        ck_assert_str_eq(name, "");
    }
    ck_assert_int_eq(metric_name((metric_id_t){METRIC_TEST, MEASURE_AUC, 0}, 2, name, 11), -1);
    ck_assert_str_eq(name, "");
    ck_assert_int_eq(metric_name((metric_id_t){METRIC_TEST, MEASURE_AUC, 0}, 2, name, 12), 0);
    ck_assert_str_eq(name, "test/auc/t1");
}
END_TEST

static double auc_of(const double *score, const double *label, int n) {
    metric_scored_t ex[64];
    ck_assert_int_le(n, 64);
    for (int i = 0; i < n; i++)
        ex[i] = (metric_scored_t){(real)score[i], (real)label[i]};
    return metric_auc(ex, n);
}

/* AUC against hand-counted pairs, ties included, and its undefined cases. */
START_TEST(test_auc_by_hand) {
    /* Separated, reversed, all tied. */
    const double sep[] = {0.1, 0.2, 0.8, 0.9}, lab[] = {0, 0, 1, 1}, rev[] = {1, 1, 0, 0};
    ck_assert_double_eq(auc_of(sep, lab, 4), 1.0);
    ck_assert_double_eq(auc_of(sep, rev, 4), 0.0);
    const double flat[] = {0.3, 0.3, 0.3, 0.3};
    ck_assert_double_eq(auc_of(flat, lab, 4), 0.5);
    /* Positives 0.8, 0.4, 0.4 against negatives 0.4, 0.3, 0.9: 0.8 beats
     * 0.4 and 0.3 (2); each 0.4 ties 0.4 and beats 0.3 (1.5 each): 5 of 9. */
    const double s1[] = {0.8, 0.4, 0.4, 0.4, 0.3, 0.9}, l1[] = {1, 1, 1, 0, 0, 0};
    ck_assert_double_eq_tol(auc_of(s1, l1, 6), 5.0 / 9.0, 1e-15);
    /* Order of the input does not matter. */
    const double s2[] = {0.9, 0.4, 0.3, 0.4, 0.8, 0.4}, l2[] = {0, 1, 0, 0, 1, 1};
    ck_assert_double_eq(auc_of(s2, l2, 6), auc_of(s1, l1, 6));
    /* Negative logits; one positive tied with all three negatives: 1.5 + 3 of 6. */
    const double s3[] = {-2, -2, -2, -2, -1}, l3[] = {0, 1, 0, 0, 1};
    ck_assert_double_eq(auc_of(s3, l3, 5), 4.5 / 6.0);
    /* Undefined: no positives, no negatives, nothing, a NaN score. */
    const double ones[] = {1, 1, 1, 1}, zeros[] = {0, 0, 0, 0};
    ck_assert(isnan(auc_of(sep, ones, 4)));
    ck_assert(isnan(auc_of(sep, zeros, 4)));
    ck_assert(isnan(auc_of(sep, lab, 0)));
    const double with_nan[] = {0.1, NAN, 0.8, 0.9};
    ck_assert(isnan(auc_of(with_nan, lab, 4)));
}
END_TEST

/* Against the O(n²) definition on many ties: scores on a coarse grid. */
START_TEST(test_auc_matches_pair_count) {
    rng_t rng;
    rng_seed(&rng, 42, 0);
    enum { N = 2000 };
    metric_scored_t *ex = malloc(sizeof *ex * N);
    for (int round = 0; round < 5; round++) {
        double wins = 0, pos = 0, neg = 0;
        for (int i = 0; i < N; i++) {
            real label = rng_uniform(&rng) < 0.2 + 0.15 * round;
            /* positives a little higher; 21 distinct values: many ties */
            real score = (real)(floor(20 * rng_uniform(&rng) + 3 * label) - 10);
            ex[i] = (metric_scored_t){score, label};
        }
        for (int i = 0; i < N; i++) {
            if (ex[i].label < 0.5) {
                neg++;
                continue;
            }
            pos++;
            for (int j = 0; j < N; j++)
                if (ex[j].label < 0.5)
                    wins += ex[i].score > ex[j].score ? 1 : ex[i].score == ex[j].score ? 0.5 : 0;
        }
        ck_assert_double_eq(metric_auc(ex, N), wins / (pos * neg));
    }
    free(ex);
}
END_TEST

/* NE = mean cross-entropy / H(base rate), by hand. */
START_TEST(test_ne_by_hand) {
    ck_assert_double_eq_tol(metric_binary_entropy(0.5), log(2), 1e-15);
    ck_assert_double_eq_tol(metric_binary_entropy(0.25), 0.5623351446188083, 1e-15);
    ck_assert_double_eq(metric_binary_entropy(0), 0);
    ck_assert_double_eq(metric_binary_entropy(1), 0);
    /* Logit 0 everywhere costs ln 2 per example; at base rate 0.25 that is
     * ln 2 / H(0.25). */
    ck_assert_double_eq_tol(metric_ne(log(2), 0.25), 1.2326229068073113, 1e-14);
    /* Predicting the base rate on labels with exactly that rate: NE 1. */
    real label[8] = {1, 0, 0, 0, 1, 0, 0, 0}, pred[8];
    for (int i = 0; i < 8; i++)
        pred[i] = (real)log(0.25 / 0.75);
    ck_assert_double_eq_tol(metric_ne(loss_task(TASK_BINARY, pred, label, 8, 1, 0), 0.25), 1.0,
                            1e-12);
    /* A degenerate base rate has no entropy to normalise by. */
    ck_assert(isnan(metric_ne(0.5, 0)));
    ck_assert(isnan(metric_ne(0.5, 1)));
    ck_assert(isnan(metric_ne(0.5, NAN)));
}
END_TEST

/* A small dataset whose task 2 is binary (30% positive in training). */
static void binary_data(data_t *data) {
    synth_params_t p;
    synth_defaults(&p);
    p.dim = 10;
    p.n_train = 1000;
    p.n_val = 300;
    p.n_test = 400;
    p.binary[1] = true;
    p.positive_rate[1] = 0.3;
    err_t err = {0};
    ck_assert_msg(synth_set_corr_all(&p, 0.5, &err) == 0, "%s", err.msg);
    ck_assert_msg(synth_generate(&p, 9, data, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(data->kind[1], TASK_BINARY);
}

typedef struct {
    int calls;
    train_eval_t last;
} last_eval_t;

static void keep_last(void *ctx, const train_eval_t *ev) {
    last_eval_t *l = ctx;
    l->calls++;
    l->last = *ev;
}

/* The trainer's AUC and NE of the binary task are those of the final
 * model's predictions; the regression task has neither. */
START_TEST(test_trainer_measures_binary_tasks) {
    data_t data;
    binary_data(&data);
    model_config_t mc;
    model_config_default(&mc, model_find("mmoe"));
    mc.input_dim = data.d;
    model_t *m;
    err_t err = {0};
    ck_assert_int_eq(model_config_set(&mc, model_find("mmoe"), "experts", 3, &err), 0);
    ck_assert_int_eq(model_config_set(&mc, model_find("mmoe"), "expert_hidden", 8, &err), 0);
    ck_assert_msg(model_new(&m, "mmoe", &mc, 2, &err) == 0, "%s", err.msg);
    train_config_t tc;
    train_config_default(&tc);
    tc.steps = 120;
    tc.eval_every = 40;
    tc.lr = 0.01;
    train_result_t res;
    last_eval_t seen = {0};
    ck_assert_msg(train_run(m, &data, &tc, 2, keep_last, &seen, &res, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(seen.calls, 3);
    const train_eval_t *ev = &res.final;
    ck_assert(memcmp(ev, &seen.last, sizeof *ev) == 0);
    ck_assert_uint_eq(ev->binary, 2u);
    ck_assert(!ev->has_penalty);

    /* Recompute from the trained model. */
    double positives = 0;
    for (int i = 0; i < data.train.n; i++)
        positives += data.train.y[(size_t)i * 2 + 1];
    const double rate = positives / data.train.n;
    ck_assert_double_eq_tol(rate, 0.3, 1e-12);
    const dataset_t *splits[] = {NULL, &data.val, &data.test};
    for (int s = METRIC_VAL; s <= METRIC_TEST; s++) {
        const dataset_t *sp = splits[s];
        real *pred = malloc(sizeof(real) * 2 * sp->n);
        metric_scored_t *ex = malloc(sizeof *ex * sp->n);
        for (int start = 0; start < sp->n; start += mc.max_batch) {
            int B = sp->n - start < mc.max_batch ? sp->n - start : mc.max_batch;
            model_forward(m, sp->x + (size_t)start * data.d, B, pred + (size_t)start * 2,
                            MODEL_EVAL);
        }
        for (int i = 0; i < sp->n; i++)
            ex[i] = (metric_scored_t){pred[i * 2 + 1], sp->y[i * 2 + 1]};
        const double bce = loss_task(TASK_BINARY, pred, sp->y, sp->n, 2, 1);
        ck_assert_double_eq(ev->auc[s][1], metric_auc(ex, sp->n));
        ck_assert_double_eq_tol(ev->ne[s][1], bce / metric_binary_entropy(rate), 1e-12);
        ck_assert(ev->auc[s][1] > 0.5 && ev->auc[s][1] <= 1);
        ck_assert(ev->ne[s][1] > 0 && ev->ne[s][1] < 1); /* learned something */
        ck_assert(isnan(ev->auc[s][0]) && isnan(ev->ne[s][0]));
        free(pred);
        free(ex);
    }
    /* What an evaluation lists, and the values it hands out. */
    metric_id_t ids[TRAIN_EVAL_MAX_METRICS];
    int n = train_eval_metrics(ev, ids);
    ck_assert_int_eq(n, 3 * 3 + 4);
    const char *expect[] = {"val/auc/t2", "val/ne/t2", "test/auc/t2", "test/ne/t2"};
    for (int i = 0; i < 4; i++) {
        char name[METRIC_NAME_MAX];
        ck_assert_int_eq(metric_name(ids[9 + i], 2, name, sizeof name), 0);
        ck_assert_str_eq(name, expect[i]);
    }
    ck_assert_double_eq(train_eval_value(ev, ids[12]), ev->ne[METRIC_TEST][1]);
    ck_assert_double_eq(train_eval_value(ev, (metric_id_t){METRIC_TEST, MEASURE_LOSS, 2}),
                        ev->test[2]);
    ck_assert(isnan(train_eval_value(ev, (metric_id_t){METRIC_TEST, MEASURE_AUC, 0})));
    ck_assert(isnan(train_eval_value(ev, (metric_id_t){METRIC_TRAIN, MEASURE_AUC, 1})));
    ck_assert(
        isnan(train_eval_value(ev, (metric_id_t){METRIC_TRAIN, MEASURE_PENALTY, METRIC_WHOLE})));
    model_free(m);
    data_free(&data);
}
END_TEST

/* `mtlab run` of a sweep with a binary task stores its AUC and NE curves at
 * every evaluation step (and the regression task gets none). */
START_TEST(test_run_stores_auc_curves) {
    const char *ini = "[experiment]\n"
                      "name = auc\n"
                      "repeats = 2\n"
                      "seed = 5\n"
                      "[data]\n"
                      "tasks = 2\n"
                      "binary = 2\n"
                      "positive_rate = 0.3\n"
                      "dim = 10\n"
                      "train = 600\n"
                      "validation = 200\n"
                      "test = 250\n"
                      "[train]\n"
                      "batch = 32\n"
                      "steps = 70\n"
                      "eval_every = 20\n"
                      "[model]\n"
                      "name = shared_bottom, mmoe\n"
                      "experts = 3\n"
                      "expert_hidden = 8\n";
    char *dir = test_tmpdir(), *path = test_write_file(dir, "auc.ini", ini),
         *db = test_join(dir, "r.db");
    char *out, *errout;
    const char *args[] = {"run", path, "--db", db, "--jobs", "2", NULL};
    int rc = run_mtlab(&out, &errout, args);
    ck_assert_msg(rc == 0, "mtlab run: %d %s", rc, errout);
    ck_assert_int_eq(test_query(db, "SELECT count(*) FROM trial WHERE status = 'done'"), 4);
    /* Every trial: steps 20, 40, 60, 70 for each of the four curves. */
    const char *names[] = {"val/auc/t2", "test/auc/t2", "val/ne/t2", "test/ne/t2"};
    for (int i = 0; i < 4; i++) {
        char sql[512];
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM (SELECT trial_id FROM (SELECT * FROM metric "
                 "WHERE name = '%s' ORDER BY trial_id, step) GROUP BY trial_id "
                 "HAVING group_concat(step, ',') = '20,40,60,70' AND count(value) = 4)",
                 names[i]);
        ck_assert_msg(test_query(db, sql) == 4, "%s", names[i]);
    }
    ck_assert_int_eq(test_query(db, "SELECT count(*) FROM metric WHERE name LIKE '%/t1' AND "
                                    "(name LIKE '%/auc/%' OR name LIKE '%/ne/%')"),
                     0);
    ck_assert_int_eq(test_query(db, "SELECT count(*) FROM metric WHERE name LIKE 'train/auc%' OR "
                                    "name LIKE 'train/ne%' OR name = 'train/penalty'"),
                     0);
    /* Finals: in [0, 1], as v_final reports them. */
    ck_assert_int_eq(test_query(db, "SELECT count(*) FROM v_final WHERE name = 'test/auc/t2' "
                                    "AND value BETWEEN 0 AND 1"),
                     4);
    ck_assert(test_query(db, "SELECT min(value) FROM v_final WHERE name = 'test/ne/t2'") > 0);
    free(out);
    free(errout);
    free(dir);
    free(path);
    free(db);
}
END_TEST

Suite *metrics_suite(void) {
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("metrics");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_auc_by_hand);
    tcase_add_test(tc, test_auc_matches_pair_count);
    tcase_add_test(tc, test_ne_by_hand);
    tcase_add_test(tc, test_trainer_measures_binary_tasks);
    tcase_add_test(tc, test_run_stores_auc_curves);
    suite_add_tcase(s, tc);
    return s;
}
