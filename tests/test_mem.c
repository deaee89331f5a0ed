/* test_mem.c -- out of memory, everywhere: the allocation wrapper
 * (core/mem.h) fails the n-th allocation, and the test walks n through every
 * allocation of building each model family, loading a sweep file and running
 * a trial.  Each must then fail cleanly: an error with a message, no output
 * object, no crash; the SANITIZE build (ASan + LeakSanitizer at the exit of
 * each forked test) adds: nothing leaked on any of those paths. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "models/model.h"
#include "sweep/sweep.h"
#include "train/trial.h"
#include "testutil.h"

/* The wrapper itself: the chosen call fails once, the others succeed. */
START_TEST(wrapper_fails_the_nth_call) {
    mem_test_fail_at(2);
    void *a = mem_alloc(8), *b = mem_calloc(2, 8), *c = mem_alloc(8), *d = mem_realloc(NULL, 8);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_null(c);
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(mem_test_calls(), 4);
    mem_test_fail_at(-1);
    void *e = mem_aligned(64, 100);
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq((size_t)e % 64, 0);
    mem_free(a);
    mem_free(b);
    mem_free(d);
    mem_free(e);
}
END_TEST

/* Every allocation of model_new, for every registered family. */
START_TEST(model_build_out_of_memory) {
    int n_families;
    const model_ops_t *const *all = model_registry(&n_families);
    for (int f = 0; f < n_families; f++) {
        model_config_t cfg;
        model_config_default(&cfg, all[f]);
        cfg.input_dim = 6;
        cfg.tasks = 3;
        cfg.max_batch = 8;
        model_t *m = NULL;
        err_t err = {0};
        mem_test_fail_at(-1);
        ck_assert_msg(model_new(&m, all[f]->name, &cfg, 1, &err) == 0, "%s", err.msg);
        const long calls = mem_test_calls();
        model_free(m);
        ck_assert_int_gt(calls, 0);
        for (long i = 0; i < calls; i++) {
            err = (err_t){0};
            m = NULL;
            mem_test_fail_at(i);
            int rc = model_new(&m, all[f]->name, &cfg, 1, &err);
            mem_test_fail_at(-1);
            ck_assert_msg(rc == -1, "%s: allocation %ld of %ld failed, model_new returned %d",
                          all[f]->name, i, calls, rc);
            ck_assert_ptr_null(m);
            ck_assert_msg(err.msg[0] != '\0', "%s: allocation %ld: no message", all[f]->name, i);
        }
    }
}
END_TEST

/* A sweep with a grid, random draws, a per-model section and a scale. */
static const char *sweep_text = "[experiment]\nname = oom\nrepeats = 2\nsamples = 2\n"
                                "[data]\ncorrelation = 0.5, 0.9\ntrain = 300\n"
                                "[train]\nlr = loguniform(0.001, 0.01)\nsteps = 10\n"
                                "[model]\nname = shared_bottom, mmoe\nexperts = 2, 3\n"
                                "[model.shared_bottom]\nbottom_hidden = 12\n"
                                "[scale.quick]\nexperiment.repeats = 1\n";

/* Every allocation of loading a sweep file (with and without a scale). */
START_TEST(sweep_load_out_of_memory) {
    char *dir = test_tmpdir(), *path = test_write_file(dir, "oom.ini", sweep_text);
    for (int scaled = 0; scaled <= 1; scaled++) {
        const char *scale = scaled ? "quick" : NULL;
        sweep_t *sw = NULL;
        err_t err = {0};
        mem_test_fail_at(-1);
        ck_assert_msg(sweep_load_scaled(path, scale, &sw, &err) == 0, "%s", err.msg);
        const long calls = mem_test_calls();
        ck_assert_int_eq(sw->n_trials, scaled ? 12 : 24);
        sweep_free(sw);
        int tolerated = 0;
        for (long i = 0; i < calls; i++) {
            err = (err_t){0};
            sw = NULL;
            mem_test_fail_at(i);
            int rc = sweep_load_scaled(path, scale, &sw, &err);
            mem_test_fail_at(-1);
            if (rc == 0) { /* only trimming the points array may fail so: it keeps the larger */
                ck_assert_msg(++tolerated == 1, "allocation %ld of %ld failed unnoticed", i, calls);
                ck_assert_int_eq(sw->n_trials, scaled ? 12 : 24);
                sweep_free(sw);
                continue;
            }
            ck_assert_int_eq(rc, -1);
            ck_assert_ptr_null(sw);
            ck_assert_msg(strstr(err.msg, "memory"), "allocation %ld: '%s'", i, err.msg);
        }
    }
    free(path);
    free(dir);
}
END_TEST

/* Every allocation of a whole trial (data, model, training, gates), for a
 * gated and an ungated family. */
START_TEST(trial_run_out_of_memory) {
    const char *models[] = {"mmoe", "shared_bottom"};
    for (int k = 0; k < 2; k++) {
        trial_spec_t spec;
        trial_spec_default(&spec);
        snprintf(spec.model, sizeof spec.model, "%s", models[k]);
        model_config_default(&spec.model_cfg, model_find(models[k]));
        spec.data.n_train = 200;
        spec.data.n_val = 50;
        spec.data.n_test = 50;
        spec.data.dim = 8;
        spec.train.batch = 16;
        spec.train.steps = 6;
        spec.train.eval_every = 3;
        trial_result_t res;
        err_t err = {0};
        mem_test_fail_at(-1);
        ck_assert_msg(trial_run(&spec, NULL, NULL, &res, &err) == 0, "%s", err.msg);
        const long calls = mem_test_calls();
        trial_result_free(&res);
        ck_assert_int_gt(calls, 10);
        for (long i = 0; i < calls; i++) {
            err = (err_t){0};
            mem_test_fail_at(i);
            int rc = trial_run(&spec, NULL, NULL, &res, &err);
            mem_test_fail_at(-1);
            ck_assert_msg(rc == -1, "%s: allocation %ld of %ld failed, trial_run returned %d",
                          models[k], i, calls, rc);
            ck_assert_msg(err.msg[0] != '\0', "%s: allocation %ld: no message", models[k], i);
            trial_result_free(&res);
        }
    }
}
END_TEST

Suite *mem_suite(void) {
    Suite *s = suite_create("mem");
    TCase *tc = tcase_create("mem");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, wrapper_fails_the_nth_call);
    tcase_add_test(tc, model_build_out_of_memory);
    tcase_add_test(tc, sweep_load_out_of_memory);
    tcase_add_test(tc, trial_run_out_of_memory);
    suite_add_tcase(s, tc);
    return s;
}
