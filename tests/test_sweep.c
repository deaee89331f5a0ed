/* test_sweep.c -- sweep files (src/sweep/sweep.c, keys.c).
 *
 * What a user relies on: lists expand into the documented grid and trial
 * order, the model list is innermost with per-model overrides inside it,
 * every point carries its full canonical config (defaults included) and a
 * ready spec, the seeds follow SPEC §6 and never change between loads or
 * versions (golden values), random search is bounded and reproducible, and
 * every mistake in a file is a usage error that names FILE:LINE and the key. */
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/numtext.h"
#include "models/model.h"
#include "sweep/keys.h"
#include "data/synth.h"
#include "sweep/sweep.h"
#include "testutil.h"

/* ---- helpers ------------------------------------------------------------- */

/* Writes len bytes to DIR/name in a fresh temporary directory; returns the path. */
static char *write_fixture_bytes(const char *name, const char *bytes, size_t len) {
    char *dir = test_tmpdir();
    size_t n = strlen(dir) + strlen(name) + 2;
    char *path = malloc(n);
    snprintf(path, n, "%s/%s", dir, name);
    free(dir);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(bytes, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
    return path;
}

/* Writes text to DIR/name in a fresh temporary directory; returns the path. */
static char *write_fixture(const char *name, const char *text) {
    return write_fixture_bytes(name, text, strlen(text));
}

/* sweep_load of path must fail with a usage error whose message starts with
 * `start` and contains `needle`. */
static void assert_usage_error(const char *path, const char *start, const char *needle) {
    sweep_t *s = (sweep_t *)1;
    err_t err = {0};
    ck_assert_int_ne(sweep_load(path, &s, &err), 0);
    ck_assert_ptr_null(s);
    ck_assert_int_eq(err.kind, ERR_USAGE);
    ck_assert_msg(strncmp(err.msg, start, strlen(start)) == 0, "'%s' does not start '%s'", err.msg,
                  start);
    ck_assert_msg(strstr(err.msg, needle) != NULL, "'%s' lacks '%s'", err.msg, needle);
}

static void remove_fixture(char *path) {
    unlink(path);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    rmdir(path);
    free(path);
}

static sweep_t *load_text(const char *text) {
    char *path = write_fixture("sweep.ini", text);
    sweep_t *s = NULL;
    err_t err = {0};
    int rc = sweep_load(path, &s, &err);
    ck_assert_msg(rc == 0, "sweep_load failed: %s", err.msg);
    ck_assert_str_eq(s->path, path);
    remove_fixture(path);
    return s;
}

static const char *param(const sweep_point_t *p, const char *key) {
    for (int i = 0; i < p->n_params; i++)
        if (strcmp(p->params[i].key, key) == 0) return p->params[i].value;
    return NULL;
}

static void assert_param(const sweep_t *s, int point, const char *key, const char *value) {
    ck_assert_int_lt(point, s->n_points);
    const char *got = param(&s->points[point], key);
    ck_assert_msg(got != NULL, "point %d has no %s", point, key);
    ck_assert_msg(strcmp(got, value) == 0, "point %d: %s = %s, expected %s", point, key, got,
                  value);
}

/* Index of key in point's params, or -1. */
static int param_index(const sweep_t *s, int point, const char *key) {
    for (int i = 0; i < s->points[point].n_params; i++)
        if (strcmp(s->points[point].params[i].key, key) == 0) return i;
    return -1;
}

/* Hyper-parameter `name` of the spec's model, or -1 when it declares none. */
static int hp(const trial_spec_t *spec, const char *name) {
    int i = model_hp_find(model_find(spec->model), name);
    return i < 0 ? -1 : (int)spec->model_cfg.hp[i];
}

/* ---- grid and trial order ------------------------------------------------ */

static const char grid_ini[] = "[experiment]\n"
                               "name = grid\n"
                               "repeats = 3\n"
                               "[data]\n"
                               "correlation = 0.5, 1.0\n"
                               "[train]\n"
                               "lr = 0.001, 0.01\n"
                               "steps = 10\n"
                               "[model]\n"
                               "name = mmoe\n";

START_TEST(test_grid_2x2) {
    sweep_t *s = load_text(grid_ini);
    ck_assert_str_eq(s->name, "grid");
    ck_assert_int_eq(s->repeats, 3);
    ck_assert_int_eq(s->samples, 1);
    ck_assert_int_eq(s->n_points, 4);
    ck_assert_int_eq(s->n_trials, 12);
    /* File order: correlation outermost, lr inner. */
    static const char *const corr[] = {"0.5", "0.5", "1", "1"};
    static const char *const lr[] = {"0.001", "0.01", "0.001", "0.01"};
    for (int p = 0; p < 4; p++) {
        assert_param(s, p, "data.correlation", corr[p]);
        assert_param(s, p, "train.lr", lr[p]);
        assert_param(s, p, "model.name", "mmoe");
        assert_param(s, p, "train.steps", "10");
        const trial_spec_t *spec = &s->points[p].spec;
        ck_assert_str_eq(spec->model, "mmoe");
        ck_assert_double_eq(spec->data.corr[1], strtod(corr[p], NULL));
        ck_assert_double_eq(spec->data.corr[2], strtod(corr[p], NULL));
        ck_assert_double_eq(spec->train.lr, strtod(lr[p], NULL));
        ck_assert_int_eq(spec->train.steps, 10);
        ck_assert(spec->data_seed == 0 && spec->init_seed == 0);
    }
    /* index = repeat * n_points + point */
    for (int i = 0; i < s->n_trials; i++) {
        int point = -1, repeat = -1;
        trial_spec_t spec;
        sweep_trial(s, i, &point, &repeat, &spec);
        ck_assert_int_eq(point, i % 4);
        ck_assert_int_eq(repeat, i / 4);
        ck_assert_double_eq(spec.train.lr, s->points[point].spec.train.lr);
        ck_assert(spec.data_seed == sweep_data_seed(s, point, repeat));
        ck_assert(spec.init_seed == sweep_init_seed(s, point, repeat));
    }
    sweep_free(s);
}
END_TEST

START_TEST(test_models_innermost) {
    sweep_t *s = load_text("[experiment]\n"
                           "name = models\n"
                           "[data]\n"
                           "correlation = 0.2, 0.8\n"
                           "[model]\n"
                           "name = shared_bottom, mmoe\n"
                           "experts = 4\n"
                           "[model.shared_bottom]\n"
                           "bottom_hidden = 113, 50\n");
    ck_assert_int_eq(s->n_points, 6);
    static const char *const model[] = {"shared_bottom", "shared_bottom", "mmoe",
                                        "shared_bottom", "shared_bottom", "mmoe"};
    static const int bottom[] = {113, 50, 113, 113, 50, 113};
    for (int p = 0; p < 6; p++) {
        const trial_spec_t *spec = &s->points[p].spec;
        ck_assert_str_eq(spec->model, model[p]);
        assert_param(s, p, "model.name", model[p]);
        /* Each family gets only the hyper-parameters it declares. */
        const bool sb = strcmp(model[p], "shared_bottom") == 0;
        ck_assert_int_eq(hp(spec, "bottom_hidden"), sb ? bottom[p] : -1);
        ck_assert_int_eq(hp(spec, "experts"), sb ? -1 : 4);
        ck_assert_int_eq(hp(spec, "tower_hidden"), 8);
        ck_assert_int_eq(param_index(s, p, sb ? "model.experts" : "model.bottom_hidden"), -1);
        assert_param(s, p, "data.correlation", p < 3 ? "0.2" : "0.8");
    }
    assert_param(s, 1, "model.bottom_hidden", "50");
    sweep_free(s);

    /* Defaults are per family: single's bottom is 16, shared_bottom's 113. */
    s = load_text("[experiment]\nname = fam\n[model]\nname = single, shared_bottom\n");
    ck_assert_int_eq(s->n_points, 2);
    ck_assert_int_eq(hp(&s->points[0].spec, "bottom_hidden"), 16);
    assert_param(s, 0, "model.bottom_hidden", "16");
    ck_assert_int_eq(hp(&s->points[1].spec, "bottom_hidden"), 113);
    sweep_free(s);
}
END_TEST

/* Issue 9 (review W1): a [model] key applies only to the families that
 * declare it, so a Shared-Bottom baseline next to an experts grid is one
 * trial per repeat, not one per experts value. */
START_TEST(test_hp_per_family) {
    sweep_t *s = load_text("[experiment]\nname = w1\nrepeats = 2\n"
                           "[model]\nname = shared_bottom, mmoe\nexperts = 2, 4, 8\n");
    ck_assert_int_eq(s->n_points, 4);
    ck_assert_int_eq(s->n_trials, 8);
    static const char *const model[] = {"shared_bottom", "mmoe", "mmoe", "mmoe"};
    static const char *const experts[] = {NULL, "2", "4", "8"};
    for (int p = 0; p < 4; p++) {
        assert_param(s, p, "model.name", model[p]);
        if (experts[p])
            assert_param(s, p, "model.experts", experts[p]);
        else
            ck_assert_int_eq(param_index(s, p, "model.experts"), -1);
        ck_assert_ptr_null(strstr(s->points[p].config, p ? "bottom_hidden" : "expert"));
    }
    sweep_free(s);

    /* The same with a distribution: the draws of a key the family does not
     * declare do not multiply its points either. */
    s = load_text("[experiment]\nname = w1r\nsamples = 5\n"
                  "[model]\nname = shared_bottom, mmoe\nexperts = randint(2, 1000)\n"
                  "tower_hidden = 4, 6\n");
    int sb = 0;
    for (int p = 0; p < s->n_points; p++)
        sb += strcmp(s->points[p].spec.model, "shared_bottom") == 0;
    ck_assert_int_eq(sb, 2); /* one per tower_hidden, which it declares */
    sweep_free(s);
}
END_TEST

/* A trial's settings as `mtlab train` takes them: one point, resolved by the
 * sweep rules, errors naming the setting. */
START_TEST(test_settings) {
    const char *ok[] = {"model.name=shared_bottom", "data.tasks=4", "data.groups=2 2",
                        "model.bottom_hidden=50", "train.lr=0.01"};
    sweep_t *s;
    err_t err = {0};
    ck_assert_msg(sweep_from_settings(ok, ok, 5, 2018, &s, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(s->n_points, 1);
    assert_param(s, 0, "model.bottom_hidden", "50");
    assert_param(s, 0, "data.groups", "2 2");
    assert_param(s, 0, "data.alpha_seed", "2018");
    ck_assert_int_eq(hp(&s->points[0].spec, "bottom_hidden"), 50);
    ck_assert(s->points[0].spec.train.lr == 0.01);
    ck_assert_int_eq(s->points[0].spec.data.tasks, 4);
    sweep_free(s);

    /* No model given: mmoe, as `mtlab train` always defaulted to. */
    ck_assert_int_eq(sweep_from_settings(NULL, NULL, 0, 7, &s, &err), 0);
    assert_param(s, 0, "model.name", "mmoe");
    assert_param(s, 0, "model.experts", "8");
    sweep_free(s);

    static const struct {
        const char *setting, *message;
    } bad[] = {
        {"model.experts=0", "model.experts=0: [model] experts: 0 is out of range [1, 4096]"},
        {"data.nope=1", "data.nope=1: unknown key 'nope' in [data]"},
        {"train.lr=0.1, 0.2", "train.lr=0.1, 0.2: [train] lr: takes a single value here"},
        {"train.lr=loguniform(0.1, 1)", "takes a single value here"},
        {"model.bottom_hidden=5", "model mmoe has no such hyper-parameter"},
        {"experiment.seed=3", "[experiment] keys describe a sweep"},
        {"lr=3", "lr=3: expected section.key=value"},
        {"model.mmoe.experts=3", "not model.NAME.KEY"},
        {"tarin.lr=3", "unknown section [tarin] (did you mean [train]?)"},
        {"data.correlation=0.3", "given twice (data.correlation=0.1 and data.correlation=0.3)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *settings[] = {"data.correlation=0.1", bad[i].setting};
        s = (sweep_t *)1;
        err = (err_t){0};
        ck_assert_int_eq(sweep_from_settings(settings, settings, 2, 1, &s, &err), -1);
        ck_assert_ptr_null(s);
        ck_assert_int_eq(err.kind, ERR_USAGE);
        ck_assert_msg(strstr(err.msg, bad[i].message), "%zu: '%s' lacks '%s'", i, err.msg,
                      bad[i].message);
    }
    /* A rule across keys names each setting. */
    const char *batch[] = {"train.batch=600", "data.train=500"};
    const char *labels[] = {"--batch", "data.train=500"};
    ck_assert_int_eq(sweep_from_settings(batch, labels, 2, 1, &s, &err), -1);
    ck_assert_msg(strstr(err.msg, "--batch: train.batch = 600 (--batch) with data.train = 500 "
                                  "(data.train=500): a batch is larger than the training set"),
                  "%s", err.msg);
}
END_TEST

/* An override that replaces a [model] list gives equal configs: kept once. */
START_TEST(test_override_dedupes) {
    sweep_t *s = load_text("[experiment]\nname = d\n"
                           "[model]\nname = omoe, mmoe\nexperts = 2, 4\n"
                           "[model.mmoe]\nexperts = 8\n");
    /* experts 2: omoe, mmoe(8); experts 4: omoe (mmoe(8) again is a duplicate). */
    ck_assert_int_eq(s->n_points, 3);
    assert_param(s, 0, "model.experts", "2");
    assert_param(s, 1, "model.experts", "8");
    assert_param(s, 1, "model.name", "mmoe");
    assert_param(s, 2, "model.experts", "4");
    assert_param(s, 2, "model.name", "omoe");
    sweep_free(s);
}
END_TEST

/* ---- seeds --------------------------------------------------------------- */

static const char seeds_ini[] = "[experiment]\n"
                                "name = seeds\n"
                                "seed = 2018\n"
                                "repeats = 2\n"
                                "[data]\n"
                                "correlation = 0.5, 0.9\n"
                                "train = 10000\n" /* pinned: the goldens test the hash */
                                "[train]\n"
                                "lr = 0.001\n"
                                "[model]\n"
                                "name = shared_bottom, mmoe\n";

START_TEST(test_seeds) {
    sweep_t *s = load_text(seeds_ini);
    ck_assert_int_eq(s->n_points, 4); /* (0.5, sb) (0.5, mmoe) (0.9, sb) (0.9, mmoe) */
    for (int r = 0; r < 2; r++) {
        /* All models of one (data setting, repeat) share the dataset. */
        ck_assert(sweep_data_seed(s, 0, r) == sweep_data_seed(s, 1, r));
        ck_assert(sweep_data_seed(s, 2, r) == sweep_data_seed(s, 3, r));
        ck_assert(sweep_data_seed(s, 0, r) != sweep_data_seed(s, 2, r));
        ck_assert(sweep_init_seed(s, 0, r) != sweep_init_seed(s, 1, r));
        ck_assert(sweep_init_seed(s, 2, r) != sweep_init_seed(s, 3, r));
    }
    for (int p = 0; p < 4; p++) {
        ck_assert(sweep_data_seed(s, p, 0) != sweep_data_seed(s, p, 1));
        ck_assert(sweep_init_seed(s, p, 0) != sweep_init_seed(s, p, 1));
        for (int r = 0; r < 2; r++) { /* 63 bits, never 0 */
            ck_assert(sweep_data_seed(s, p, r) > 0 && sweep_data_seed(s, p, r) < (1ULL << 63));
            ck_assert(sweep_init_seed(s, p, r) > 0 && sweep_init_seed(s, p, r) < (1ULL << 63));
        }
    }

    /* Golden values: the seed hash is part of every stored result's identity. */
    static const uint64_t golden_data[2][2] = {
        /* [repeat][correlation] */
        {449201651094286033ULL, 8203402081700110739ULL},
        {3178505437287432096ULL, 6926904621474081024ULL},
    };
    /* Trial identity 2 (issue 9): a config lists only the hyper-parameters
     * its model declares, so these changed then; the data seeds did not. */
    static const uint64_t golden_init[2][4] = {
        /* [repeat][point] */
        {9008865240302619608ULL, 4570100821320054065ULL, 2000527975638226126ULL,
         4785320789280438646ULL},
        {6156267406931660411ULL, 3158303935686849090ULL, 3303660272012491058ULL,
         5451224900285151508ULL},
    };
    for (int r = 0; r < 2; r++) {
        for (int p = 0; p < 4; p++)
            ck_assert_msg(sweep_init_seed(s, p, r) == golden_init[r][p],
                          "init_seed(point %d, repeat %d) = %llu", p, r,
                          (unsigned long long)sweep_init_seed(s, p, r));
        for (int d = 0; d < 2; d++)
            ck_assert_msg(sweep_data_seed(s, 2 * d, r) == golden_data[r][d],
                          "data_seed(point %d, repeat %d) = %llu", 2 * d, r,
                          (unsigned long long)sweep_data_seed(s, 2 * d, r));
    }

    /* Stable across loads. */
    sweep_t *again = load_text(seeds_ini);
    for (int p = 0; p < 4; p++)
        for (int r = 0; r < 2; r++) {
            ck_assert(sweep_data_seed(s, p, r) == sweep_data_seed(again, p, r));
            ck_assert(sweep_init_seed(s, p, r) == sweep_init_seed(again, p, r));
        }
    sweep_free(again);

    /* A training change moves the init seed only. */
    char *text = strdup(seeds_ini);
    memcpy(strstr(text, "lr = 0.001"), "lr = 0.002", 10);
    sweep_t *lr = load_text(text);
    free(text);
    for (int p = 0; p < 4; p++)
        for (int r = 0; r < 2; r++) {
            ck_assert(sweep_data_seed(s, p, r) == sweep_data_seed(lr, p, r));
            ck_assert(sweep_init_seed(s, p, r) != sweep_init_seed(lr, p, r));
        }
    sweep_free(lr);

    /* The experiment seed moves both. */
    text = strdup(seeds_ini);
    memcpy(strstr(text, "seed = 2018"), "seed = 2019", 11);
    sweep_t *other = load_text(text);
    free(text);
    ck_assert(sweep_data_seed(s, 0, 0) != sweep_data_seed(other, 0, 0));
    ck_assert(sweep_init_seed(s, 0, 0) != sweep_init_seed(other, 0, 0));
    sweep_free(other);
    sweep_free(s);
}
END_TEST

/* ---- canonical config ---------------------------------------------------- */

START_TEST(test_canonical_config) {
    static const char text[] = "[experiment]\n"
                               "name = canon\n"
                               "seed = 42\n"
                               "[data]\n"
                               "noise = 0.10\n"
                               "[train]\n"
                               "lr = 1e-1, 1e-4\n"
                               "[model]\n"
                               "name = mmoe\n";
    sweep_t *s = load_text(text);
    ck_assert_int_eq(s->n_points, 2);
    /* Every key, defaults included, in key-table order; numbers in shortest form. */
    ck_assert_str_eq(s->points[0].config,
                     "data.source=synthetic;data.tasks=2;data.correlation=0.5;data.dim=100;"
                     "data.sinusoids=10;data.scale=1;data.noise=0.1;data.alpha=normal;"
                     "data.alpha_seed=42;data.train=40000;data.validation=1000;data.test=1000;"
                     "train.optimizer=adam;train.lr=0.1;train.batch=128;train.steps=3000;"
                     "train.eval_every=100;train.task_weights=1 1;model.name=mmoe;"
                     "model.experts=8;model.expert_hidden=16;model.tower_hidden=8");
    ck_assert_str_eq(s->points[0].data_config,
                     "data.source=synthetic;data.tasks=2;data.correlation=0.5;data.dim=100;"
                     "data.sinusoids=10;data.scale=1;data.noise=0.1;data.alpha=normal;"
                     "data.alpha_seed=42;data.train=40000;data.validation=1000;data.test=1000");
    assert_param(s, 1, "train.lr", "0.0001");
    ck_assert_int_eq(s->points[0].n_params, 22);
    ck_assert_str_eq(s->points[0].params[0].key, "data.source");
    ck_assert_str_eq(s->points[0].params[21].key, "model.tower_hidden");
    ck_assert_int_eq((int)s->points[0].spec.data.alpha_seed, 42); /* the experiment seed */

    sweep_t *again = load_text(text);
    for (int p = 0; p < s->n_points; p++) {
        ck_assert_str_eq(s->points[p].config, again->points[p].config);
        ck_assert_int_eq(sweep_find_point(s, s->points[p].config), p);
        ck_assert_int_eq(sweep_find_point(again, s->points[p].config), p);
    }
    ck_assert_int_eq(sweep_find_point(s, "data.tasks=2"), -1);
    ck_assert_int_eq(sweep_find_point(s, ""), -1);
    sweep_free(again);
    sweep_free(s);
}
END_TEST

/* model.init and model.gate_bias (issue 10) are left out of a point's config
 * and params while at their defaults (glorot, off): a point that leaves
 * them at their defaults -- given or not -- has the config, and so the init
 * seed, it had before the keys existed.  Other values are in the config. */
START_TEST(test_omitted_defaults) {
    static const char plain[] = "[experiment]\nname = keys\n[model]\nname = shared_bottom, mmoe\n";
    static const char keyed[] = "[experiment]\nname = keys\n[model]\n"
                                "name = shared_bottom, mmoe\n"
                                "init = glorot, torch, he\n"
                                "gate_bias = off, on\n";
    sweep_t *a = load_text(plain), *b = load_text(keyed);
    ck_assert_int_eq(a->n_points, 2);
    /* shared_bottom: 3 inits (gate_bias is not its key); mmoe: 3 x 2. */
    ck_assert_int_eq(b->n_points, 9);
    int found = 0;
    for (int p = 0; p < b->n_points; p++) {
        const sweep_point_t *pt = &b->points[p];
        const int init = hp(&pt->spec, "init"), gate_bias = hp(&pt->spec, "gate_bias");
        const bool defaults = init == 0 && gate_bias <= 0;
        ck_assert_int_eq(strstr(pt->config, "model.init") == NULL, init == 0);
        ck_assert_int_eq(param(pt, "model.init") == NULL, init == 0);
        ck_assert_int_eq(strstr(pt->config, "model.gate_bias") == NULL, gate_bias <= 0);
        if (init == 1) ck_assert_ptr_nonnull(strstr(pt->config, "model.init=torch"));
        if (init == 2) ck_assert_ptr_nonnull(strstr(pt->config, "model.init=he"));
        if (gate_bias == 1) ck_assert_ptr_nonnull(strstr(pt->config, "model.gate_bias=on"));
        if (strcmp(pt->spec.model, "shared_bottom") == 0) ck_assert_int_eq(gate_bias, -1);
        if (!defaults) continue;
        const int q = sweep_find_point(a, pt->config);
        ck_assert_int_ge(q, 0);
        ck_assert_uint_eq(sweep_init_seed(a, q, 2), sweep_init_seed(b, p, 2));
        found++;
    }
    ck_assert_int_eq(found, 2);
    sweep_free(a);
    sweep_free(b);
}
END_TEST

/* The sinusoids' alpha, beta as grid keys (issue 10): alpha_seed as a list
 * is a grid over draws (each its own data_config, so its own datasets);
 * alpha = list takes explicit values, which reach the generator. */
START_TEST(test_alpha_keys) {
    sweep_t *s = load_text("[experiment]\nname = draws\n[data]\nsinusoids = 3\n"
                           "alpha_seed = 1, 2, 3\n[model]\nname = mmoe\n");
    ck_assert_int_eq(s->n_points, 3);
    for (int p = 0; p < 3; p++) {
        ck_assert_int_eq((int)s->points[p].spec.data.alpha_seed, p + 1);
        ck_assert_ptr_null(param(&s->points[p], "data.alpha_values"));
    }
    double a0[3], b0[3], a1[3], b1[3];
    synth_sinusoids(&s->points[0].spec.data, a0, b0);
    synth_sinusoids(&s->points[1].spec.data, a1, b1);
    ck_assert(a0[0] != a1[0] && b0[2] != b1[2]);
    ck_assert_str_ne(s->points[0].data_config, s->points[1].data_config);
    sweep_free(s);

    s = load_text("[experiment]\nname = explicit\n[data]\nsinusoids = 3\n"
                  "alpha = normal, list\nalpha_values = 0.5 -1 2.25\nbeta_values = 0 1e-1 3\n"
                  "[model]\nname = mmoe\n");
    ck_assert_int_eq(s->n_points, 2);
    ck_assert_ptr_null(param(&s->points[0], "data.alpha_values")); /* normal: not its key */
    assert_param(s, 1, "data.alpha", "list");
    assert_param(s, 1, "data.alpha_values", "0.5 -1 2.25");
    assert_param(s, 1, "data.beta_values", "0 0.1 3");
    ck_assert_ptr_nonnull(
        strstr(s->points[1].data_config, "data.alpha_values=0.5 -1 2.25;data.beta_values=0 0.1 3"));
    double alpha[3], beta[3];
    synth_sinusoids(&s->points[1].spec.data, alpha, beta);
    ck_assert(alpha[0] == 0.5 && alpha[1] == -1 && alpha[2] == 2.25);
    ck_assert(beta[0] == 0 && beta[1] == 0.1 && beta[2] == 3);
    sweep_free(s);
}
END_TEST

START_TEST(test_number_format) {
    char buf[64];
    num_to_text(0.1, buf, sizeof buf);
    ck_assert_str_eq(buf, "0.1");
    num_to_text(1e-4, buf, sizeof buf);
    ck_assert_str_eq(buf, "0.0001");
    num_to_text(1.0, buf, sizeof buf);
    ck_assert_str_eq(buf, "1");
    num_to_text(-0.0, buf, sizeof buf);
    ck_assert_str_eq(buf, "0");
    num_to_text(1e-7, buf, sizeof buf);
    ck_assert_str_eq(buf, "1e-07");
    const double third = 1.0 / 3.0;
    num_to_text(third, buf, sizeof buf);
    ck_assert(strtod(buf, NULL) == third);
    ck_assert_str_eq(buf, "0.3333333333333333"); /* 16 digits suffice */
    num_to_text(0.1 + 0.2, buf, sizeof buf);
    ck_assert(strtod(buf, NULL) == 0.1 + 0.2);
    ck_assert_str_eq(buf, "0.30000000000000004");
}
END_TEST

/* Inline comments, indentation, vectors, groups, booleans, [record]. */
START_TEST(test_syntax_and_vectors) {
    sweep_t *s = load_text("; a comment\n"
                           "# another\n"
                           "[experiment]   ; the experiment\n"
                           "  name = syn.tax-1   # indented, '#' comment\n"
                           "  description = a, b and c ; commas are text here\n"
                           "[data]\n"
                           "tasks = 4\n"
                           "groups = 2 2\n"
                           "within = 0.9\n"
                           "between = 0\n"
                           "binary = 4 2\n"
                           "positive_rate = 0.25\n"
                           "[train]\n"
                           "task_weights = 1 0.5 2 1\n"
                           "[model]\n"
                           "name = mmoe ;trailing\n"
                           "[record]\n"
                           "gates = no\n"
                           "weights = yes\n");
    ck_assert_str_eq(s->name, "syn.tax-1");
    ck_assert_str_eq(s->description, "a, b and c");
    ck_assert(!s->record_gates);
    ck_assert(s->record_weights);
    ck_assert_int_eq(s->n_points, 1);
    const sweep_point_t *p = &s->points[0];
    ck_assert_ptr_null(param(p, "data.correlation")); /* groups replace it */
    assert_param(s, 0, "data.groups", "2 2");
    assert_param(s, 0, "data.within", "0.9");
    assert_param(s, 0, "data.binary", "2 4"); /* a set: sorted */
    assert_param(s, 0, "train.task_weights", "1 0.5 2 1");
    const synth_params_t *d = &p->spec.data;
    ck_assert_int_eq(d->tasks, 4);
    ck_assert_double_eq(d->corr[0 * 4 + 1], 0.9);
    ck_assert_double_eq(d->corr[2 * 4 + 3], 0.9);
    ck_assert_double_eq(d->corr[1 * 4 + 2], 0.0);
    ck_assert(!d->binary[0] && d->binary[1] && !d->binary[2] && d->binary[3]);
    ck_assert_double_eq(d->positive_rate[1], 0.25);
    ck_assert_double_eq(p->spec.train.task_weight[1], 0.5);
    ck_assert_double_eq(p->spec.train.task_weight[2], 2.0);
    sweep_free(s);

    /* Defaults of [record] and [experiment]. */
    s = load_text("[experiment]\nname = x\n[model]\nname = mmoe\n");
    ck_assert(s->record_gates && s->record_weights);
    ck_assert_int_eq(s->repeats, 1);
    ck_assert_int_eq(s->samples, 1);
    ck_assert(s->seed == 1);
    ck_assert_ptr_nonnull(strstr(s->text, "name = mmoe"));
    sweep_free(s);
}
END_TEST

/* ---- random search ------------------------------------------------------- */

/* draws = independent: the rule of every experiment stored before paired
 * draws (their golden values below); test_overrides pins the paired rule. */
static const char search_ini[] = "[experiment]\n"
                                 "name = search\n"
                                 "samples = 4\n"
                                 "draws = independent\n"
                                 "[data]\n"
                                 "correlation = 0.5, 0.9\n"
                                 "[train]\n"
                                 "lr = loguniform(1e-4, 1e-2)\n"
                                 "[model]\n"
                                 "name = mmoe\n";

START_TEST(test_distributions) {
    sweep_t *s = load_text(search_ini);
    ck_assert_int_eq(s->n_points, 8);
    for (int p = 0; p < 8; p++) {
        double lr = s->points[p].spec.train.lr;
        ck_assert(lr >= 1e-4 && lr <= 1e-2);
        ck_assert_double_eq(strtod(param(&s->points[p], "train.lr"), NULL), lr);
        assert_param(s, p, "data.correlation", p < 4 ? "0.5" : "0.9");
    }
    for (int p = 1; p < 8; p++) /* different draws, different grid points */
        for (int q = 0; q < p; q++)
            ck_assert(s->points[p].spec.train.lr != s->points[q].spec.train.lr);
    /* Golden draws: the draw rule is part of the reproducibility contract. */
    assert_param(s, 0, "train.lr", "0.0007580235135460556");
    assert_param(s, 4, "train.lr", "0.006199708153106846");
    sweep_t *again = load_text(search_ini);
    ck_assert_int_eq(again->n_points, 8);
    for (int p = 0; p < 8; p++)
        ck_assert_str_eq(s->points[p].config, again->points[p].config);
    sweep_free(again);
    sweep_free(s);

    /* randint is inclusive; equal draws are one point. */
    s = load_text("[experiment]\nname = r\nsamples = 60\n"
                  "[model]\nname = mmoe\nexperts = randint(2, 4)\n");
    ck_assert_int_eq(s->n_points, 3);
    bool seen[5] = {false};
    for (int p = 0; p < 3; p++) {
        int e = hp(&s->points[p].spec, "experts");
        ck_assert(e >= 2 && e <= 4);
        seen[e] = true;
    }
    ck_assert(seen[2] && seen[3] && seen[4]);
    sweep_free(s);

    /* choice picks only the given values (any type), uniform stays in [a, b). */
    s = load_text("[experiment]\nname = c\nsamples = 40\n"
                  "[data]\nalpha = choice(normal, index)\nnoise = uniform(0.05, 0.2)\n"
                  "[model]\nname = mmoe\nexperts = choice(3, 5, 9)\n");
    ck_assert_int_eq(s->n_points, 40);
    bool alpha_seen[2] = {false}, experts_seen[10] = {false};
    for (int p = 0; p < s->n_points; p++) {
        const trial_spec_t *spec = &s->points[p].spec;
        int e = hp(spec, "experts");
        ck_assert(e == 3 || e == 5 || e == 9);
        experts_seen[e] = true;
        alpha_seen[spec->data.alpha_mode == ALPHA_INDEX] = true;
        ck_assert(spec->data.noise >= 0.05 && spec->data.noise < 0.2);
    }
    ck_assert(alpha_seen[0] && alpha_seen[1]);
    ck_assert(experts_seen[3] && experts_seen[5] && experts_seen[9]);
    sweep_free(s);
}
END_TEST

/* ---- errors -------------------------------------------------------------- */

typedef struct {
    const char *text;
    int line;               /* expected FILE:LINE, or 0 for none */
    const char *needles[3]; /* substrings of the message */
} bad_case_t;

#define NAME10 "abcdefghij"
#define NAME150                                                                                    \
    NAME10 NAME10 NAME10 NAME10 NAME10 NAME10 NAME10 NAME10 NAME10 NAME10 NAME10 NAME10 NAME10     \
        NAME10 NAME10
#define HEAD  "[experiment]\nname = bad\n"
#define MODEL "[model]\nname = mmoe\n"

static const bad_case_t bad_cases[] = {
    {HEAD "this line has no equals sign\n" MODEL, 3, {"expected 'key = value'"}},
    {HEAD "[train]\nlearning_rate = 0.1\n" MODEL,
     4,
     {"unknown key 'learning_rate' in [train]", "did you mean 'lr'?"}},
    {HEAD MODEL "expert = 4\n", 5, {"unknown key 'expert' in [model]", "did you mean 'experts'?"}},
    {HEAD "[trian]\nlr = 0.1\n" MODEL, 3, {"unknown section [trian]", "did you mean [train]?"}},
    {HEAD "[train]\nlr = uniform(1)\n" MODEL, 4, {"[train] lr:", "2 arguments"}},
    {HEAD "[train]\nlr = uniform(2,1)\n" MODEL, 4, {"[train] lr:", "lower bound 2"}},
    {HEAD "[train]\nlr = loguniform(0,1)\n" MODEL, 4, {"[train] lr:", "loguniform", "0"}},
    {HEAD "[data]\nnoise = loguniform(0, 1)\n" MODEL, 4, {"[data] noise:", "positive"}},
    {HEAD "[train]\nlr = gauss(0,1)\n" MODEL, 4, {"[train] lr:", "unknown distribution 'gauss'"}},
    {HEAD "[data]\nalpha = uniform(0,1)\n" MODEL, 4, {"[data] alpha:", "numeric"}},
    {HEAD "[model]\nname =\n", 4, {"[model] name:", "empty"}},
    {HEAD "[train]\nlr =\n" MODEL, 4, {"[train] lr:", "empty"}},
    {HEAD "[train]\nlr = 0.1,,0.2\n" MODEL, 4, {"[train] lr:", "item 2", "empty"}},
    {HEAD "[train]\nlr = fast\n" MODEL, 4, {"[train] lr:", "'fast' is not a number"}},
    {HEAD "[train]\nsteps = 10.5\n" MODEL, 4, {"[train] steps:", "not an integer"}},
    /* Numbers that parse but do not survive strtod or single precision. */
    {HEAD "[train]\nlr = 1e-310\n" MODEL,
     4,
     {"[train] lr:", "1e-310 is too small", "rounds to 0 in single precision"}},
    {HEAD "[train]\nlr = 0.1, 1e-50\n" MODEL, 4, {"[train] lr:", "1e-50 is too small"}},
    {HEAD "[train]\nlr = 1e-400\n" MODEL, 4, {"[train] lr:", "1e-400 is too small"}},
    {HEAD "[data]\nscale = 1e39\n" MODEL,
     4,
     {"[data] scale:", "1e39 is too large", "rounds to infinity in single precision"}},
    {HEAD "[data]\nscale = 1e400\n" MODEL, 4, {"[data] scale:", "1e400 is too large"}},
    {HEAD "[data]\nnoise = inf\n" MODEL, 4, {"[data] noise:", "'inf' is not a finite number"}},
    {HEAD "[train]\nlr = nan\n" MODEL, 4, {"[train] lr:", "'nan' is not a finite number"}},
    {HEAD "[train]\ntask_weights = 1 1e-60\n" MODEL, 4, {"[train] task_weights:", "too small"}},
    {HEAD "[train]\nlr = uniform(1e-60, 1)\n" MODEL,
     4,
     {"[train] lr:", "bound 1e-60 is too small"}},
    {HEAD "[data]\ntrain = 99999999999999999999\n" MODEL,
     4,
     {"[data] train:", "99999999999999999999 is out of range [1, 1e+09]"}},
    {"[experiment]\nname = bad\nseed = 99999999999999999999\n" MODEL,
     3,
     {"[experiment] seed:", "is out of range [0, 2^63)"}},
    {HEAD "[data]\ncorrelation = 0.5, 1.5\n" MODEL,
     4,
     {"[data] correlation:", "1.5 is out of range"}},
    {"[experiment]\nname = bad\nrepeats = 0\n" MODEL, 3, {"[experiment] repeats:", "out of range"}},
    {HEAD "[model]\nname = mmoe, xgboost\n",
     4,
     {"[model] name:", "unknown model 'xgboost'", "mmoe"}},
    {HEAD MODEL "[model.omoe]\nexperts = 4\n", 5, {"[model.omoe]", "not in [model] name"}},
    {HEAD MODEL "[model.mmoee]\nexperts = 4\n",
     5,
     {"unknown model 'mmoee'", "did you mean 'mmoe'"}},
    {HEAD MODEL "[model.mmoe]\nname = omoe\n", 6, {"[model.mmoe] name:", "not allowed"}},
    {"[experiment]\ndescription = no name\n" MODEL, 1, {"[experiment] name is required"}},
    {HEAD "[train]\nlr = 0.1\nsteps = 5\nlr = 0.2\n" MODEL,
     6,
     {"[train] lr:", "duplicate key", "lines 4 and 6"}},
    {HEAD "[data]\nsource = csv:data/x.csv\n" MODEL,
     4,
     {"[data] source:", "csv data sources are not supported yet"}},
    {HEAD "[data]\ncorrelation = 0.2\ngroups = 1 1\n" MODEL, 5, {"correlation and groups"}},
    {HEAD "[data]\nwithin = 0.2\n" MODEL, 4, {"[data] within:", "groups"}},
    {"[experiment]\nname = bad\nsamples = 3\n" MODEL,
     3,
     {"samples = 3 but no key is a distribution"}},
    {"[experiment]\nname = bad inside\n" MODEL, 2, {"[experiment] name:", "letters"}},
    {"[experiment]\nname = bad\nrepeats = 1, 2\n" MODEL, 3, {"[experiment] repeats:", "list"}},
    {"name = bad\n" MODEL, 1, {"outside any section"}},
    {HEAD "[model]\nname = choice(mmoe, omoe)\n", 4, {"[model] name:", "list"}},
    {HEAD "[data]\nbinary = 1 1\n" MODEL, 4, {"[data] binary:", "twice"}},
    {HEAD "[data]\nsamples = 2\n" MODEL, 4, {"unknown key 'samples' in [data]", "[experiment]"}},
    {"[experiment]\nname = " NAME150 "\n" MODEL, 2, {"[experiment] name:", "too long"}},
    {HEAD "[record]\ngates = maybe\n" MODEL, 4, {"[record] gates:", "boolean"}},
    {HEAD "[data]\nsinusoids = 2\nalpha = list\nalpha_values = 1 2\nbeta_values = 1 2 3\n" MODEL,
     7,
     {"data.beta_values = 1 2 3 (line 7) with data.sinusoids = 2 (line 4)",
      "one value per sinusoid: 2, not 3"}},
    {HEAD "[data]\nsinusoids = 2\nalpha = list\nbeta_values = 1 2\n" MODEL, 5,
     {"data.alpha = list (line 5) with data.alpha_values =  (default)",
      "alpha = list needs data.alpha_values: 2 numbers, one per sinusoid"}},
    {HEAD "[data]\nalpha = index\nalpha_values = 1 2\n" MODEL, 5,
     {"[data] alpha_values: only applies with alpha = list"}},
    {HEAD "[data]\nalpha = list\nalpha_values = 1 x\n" MODEL, 5,
     {"[data] alpha_values:", "'x' is not a number"}},
    {HEAD "[model]\nname = mmoe\ninit = xavier\n", 5,
     {"[model] init:", "'xavier' is not one of glorot|torch|he"}},
    {HEAD "[model]\nname = mmoe\ngate_bias = yes\n", 5,
     {"[model] gate_bias:", "'yes' is not one of off|on"}},
    /* Model hyper-parameters belong to the families that declare them. */
    {HEAD "[model]\nname = shared_bottom, single\nexperts = 4\n",
     5,
     {"[model] experts: no listed model (shared_bottom, single) has this hyper-parameter"}},
    {HEAD "[model]\nexperts = 4\nname = single\n",
     4,
     {"[model] experts: model single has no such hyper-parameter",
      "(it declares: bottom_hidden, tower_hidden, init)"}},
    {HEAD "[model]\nname = shared_bottom, mmoe\n[model.shared_bottom]\nexperts = 4\n",
     6,
     {"[model.shared_bottom] experts: model shared_bottom has no such hyper-parameter"}},
    {HEAD "[model]\nname = shared_bottom, mmoe\n[scale.q]\nmodel.mmoe.bottom_hidden = 4\n",
     6,
     {"[model.mmoe] bottom_hidden: model mmoe has no such hyper-parameter"}},
    /* Errors found on a resolved point (rules across keys) name the point,
     * the line of one key in conflict, and the other key with its line. */
    {HEAD "[data]\ntasks = 3\ncorrelation = 0.2, -0.9\n" MODEL,
     5,
     {": point 1 (model=mmoe, data.correlation=-0.9):",
      "data.correlation = -0.9 (line 5) with data.tasks = 3 (line 4)", "semi-definite"}},
    {HEAD "[data]\ntasks = 4\ngroups = 2 2\nbetween = 0.9\nwithin = 0.1\n" MODEL,
     7, /* the last of groups, between, within in the file */
     {"data.within = 0.1 (line 7) with data.tasks = 4 (line 4)", "semi-definite"}},
    {HEAD "[data]\ntasks = 3\ngroups = 2 2\n" MODEL,
     5,
     {"data.groups = 2 2 (line 5) with data.tasks = 3 (line 4)", "add up to more than 3"}},
    {HEAD "[data]\nbinary = 3\n" MODEL,
     4,
     {": point 0 (model=mmoe):", "data.binary = 3 (line 4) with data.tasks = 2 (default)",
      "binary task 3"}},
    {HEAD "[train]\ntask_weights = 1 2 3\n" MODEL,
     4,
     {"point 0", "train.task_weights = 1 2 3 (line 4) with data.tasks = 2 (default)",
      "task_weights has 3 values"}},
    {HEAD "[data]\ntasks = 4\ndim = 3\n" MODEL,
     5,
     {"data.dim = 3 (line 5) with data.tasks = 4 (line 4)", "dim must be at least tasks"}},
    /* What only failed at training time. */
    {HEAD "[data]\ntrain = 100\n[train]\nbatch = 64, 512\n" MODEL,
     6,
     {"point 1 (model=mmoe, train.batch=512):",
      "train.batch = 512 (line 6) with data.train = 100 (line 4)", "larger than the training set"}},
    {HEAD "[data]\ntrain = 100\n" MODEL,
     4,
     {"train.batch = 128 (default) with data.train = 100 (line 4)"}},
    {HEAD "[data]\nvalidation = 0\n" MODEL,
     4,
     {"data.validation = 0 (line 4) with train.steps = 3000 (default)", "validation set"}},
    {HEAD "[data]\ntest = 0\n[train]\nsteps = 10\n" MODEL,
     4,
     {"data.test = 0 (line 4) with train.steps = 10 (line 6)", "test set"}},
    {HEAD "[data]\nvalidation = 0\n[train]\nsteps = 0, 5\n" MODEL,
     4,
     {"point 1 (model=mmoe, train.steps=5):", "with train.steps = 5 (line 6)"}},
};

#define LIST47                                                                                     \
    "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, "  \
    "26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47"
/* Counts that only the whole file decides name the line that passed the limit. */
static const bad_case_t bad_count_cases[] = {
    {HEAD "[train]\nsteps = " LIST47 "\nbatch = " LIST47 "\neval_every = " LIST47 "\n" MODEL,
     6,
     {"expands to more than 100000 points"}},
    {HEAD "[train]\nsteps = " LIST47 "\n[model]\nname = mmoe, omoe\n[model.omoe]\n"
          "experts = " LIST47 "\nexpert_hidden = " LIST47 "\n",
     9,
     {"expands to more than 100000 points"}},
    {"[experiment]\nname = bad\nrepeats = 1000000\n[train]\nsteps = " LIST47 "\nbatch = " LIST47
     "\n" MODEL,
     3,
     {"[experiment] repeats:", "2209 points x 1000000 repeats is too many trials"}},
};

/* Loading case c must fail with a usage error at its line with its needles. */
static void assert_bad_case(const bad_case_t *c, int i) {
    char *path = write_fixture("bad.ini", c->text);
    sweep_t *s = (sweep_t *)1;
    err_t err = {0};
    int rc = sweep_load(path, &s, &err);
    ck_assert_msg(rc != 0, "case %d loaded:\n%s", i, c->text);
    ck_assert_ptr_null(s);
    ck_assert_int_eq(err.kind, ERR_USAGE);
    char where[1200];
    if (c->line)
        snprintf(where, sizeof where, "%s:%d: ", path, c->line);
    else
        snprintf(where, sizeof where, "%s: ", path);
    ck_assert_msg(strncmp(err.msg, where, strlen(where)) == 0, "case %d: '%s' does not start '%s'",
                  i, err.msg, where);
    for (int n = 0; n < 3 && c->needles[n]; n++)
        ck_assert_msg(strstr(err.msg, c->needles[n]) != NULL, "case %d: '%s' lacks '%s'", i,
                      err.msg, c->needles[n]);
    remove_fixture(path);
}

START_TEST(test_bad_file) {
    assert_bad_case(&bad_cases[_i], _i);
}
END_TEST

START_TEST(test_bad_count) {
    assert_bad_case(&bad_count_cases[_i], _i);
}
END_TEST

/* The training-only rules do not apply to a data-only point (steps = 0, as
 * in MMoE Fig 2): empty validation and test sets, a batch above train. */
START_TEST(test_data_only_point) {
    sweep_t *s = load_text(HEAD "[data]\ntrain = 10\nvalidation = 0\ntest = 0\n"
                                "[train]\nsteps = 0\n" MODEL);
    ck_assert_int_eq(s->n_points, 1);
    ck_assert_int_eq(s->points[0].spec.data.n_val, 0);
    ck_assert_int_eq(s->points[0].spec.train.batch, 128);
    sweep_free(s);
}
END_TEST

START_TEST(test_long_line) {
    char text[1024];
    int n = snprintf(text, sizeof text, HEAD "description = ");
    memset(text + n, 'x', 300);
    snprintf(text + n + 300, sizeof text - (size_t)n - 300, "\n" MODEL);
    char *path = write_fixture("long.ini", text);
    sweep_t *s;
    err_t err = {0};
    ck_assert_int_ne(sweep_load(path, &s, &err), 0);
    ck_assert_int_eq(err.kind, ERR_USAGE);
    ck_assert_ptr_nonnull(strstr(err.msg, ":3: line too long"));
    remove_fixture(path);
}
END_TEST

/* A NUL byte would end the line reader early and silently drop the rest. */
START_TEST(test_nul_byte) {
    static const char text[] = HEAD "[train]\nlr = 0.1\0; the rest\nsteps = 5\n" MODEL;
    char *path = write_fixture_bytes("nul.ini", text, sizeof text - 1);
    char start[1100];
    snprintf(start, sizeof start, "%s:4: ", path);
    assert_usage_error(path, start, "NUL byte in the file");
    remove_fixture(path);
}
END_TEST

/* Files are read with a bounded read: SWEEP_FILE_MAX bytes load, one more is
 * refused, and so is an endless device, without reading it to the end. */
START_TEST(test_file_size_cap) {
    static const char head[] = HEAD MODEL;
    char *text = malloc(SWEEP_FILE_MAX + 1);
    ck_assert_ptr_nonnull(text);
    memcpy(text, head, sizeof head - 1);
    memset(text + sizeof head - 1, ';', SWEEP_FILE_MAX - (sizeof head - 1));
    for (size_t i = sizeof head - 1 + 100; i < SWEEP_FILE_MAX; i += 100)
        text[i] = '\n'; /* comment lines of 99 ';' */
    text[SWEEP_FILE_MAX - 1] = '\n';
    char *path = write_fixture_bytes("max.ini", text, SWEEP_FILE_MAX);
    sweep_t *s;
    err_t err = {0};
    ck_assert_msg(sweep_load(path, &s, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(s->n_points, 1);
    sweep_free(s);
    remove_fixture(path);

    text[SWEEP_FILE_MAX] = '\n';
    path = write_fixture_bytes("big.ini", text, SWEEP_FILE_MAX + 1);
    char start[1100];
    snprintf(start, sizeof start, "%s: ", path);
    assert_usage_error(path, start, "larger than 4 MiB; is this a sweep file?");
    remove_fixture(path);
    free(text);

    assert_usage_error("/dev/zero", "/dev/zero: ", "larger than 4 MiB");
}
END_TEST

START_TEST(test_unreadable) {
    char *dir = test_tmpdir();
    char path[1100];
    snprintf(path, sizeof path, "%s/missing.ini", dir);
    sweep_t *s = (sweep_t *)1;
    err_t err = {0};
    ck_assert_int_ne(sweep_load(path, &s, &err), 0);
    ck_assert_ptr_null(s);
    ck_assert_int_eq(err.kind, ERR_FAIL);
    ck_assert_ptr_nonnull(strstr(err.msg, path));
    /* A directory is not a sweep file either. */
    ck_assert_int_ne(sweep_load(dir, &s, &err), 0);
    ck_assert_int_eq(err.kind, ERR_FAIL);
    ck_assert_ptr_nonnull(strstr(err.msg, dir));
    rmdir(dir);
    free(dir);
}
END_TEST

START_TEST(test_suggest) {
    static const char *const keys[] = {"optimizer", "lr",         "batch",
                                       "steps",     "eval_every", "task_weights"};
    ck_assert_str_eq(sweep_suggest("learning_rate", keys, 6), "lr");
    ck_assert_str_eq(sweep_suggest("batch_size", keys, 6), "batch");
    ck_assert_str_eq(sweep_suggest("stpes", keys, 6), "steps");
    ck_assert_str_eq(sweep_suggest("optimiser", keys, 6), "optimizer");
    ck_assert_ptr_null(sweep_suggest("momentum", keys, 6));
    ck_assert_int_eq(sweep_edit_distance("kitten", "sitting"), 3);
}
END_TEST

/* [scale.<name>] overrides apply only when asked for, replace the file's
 * values (grid lists included), are validated either way, and mark the text. */
START_TEST(test_scale_sections) {
    char *dir = test_tmpdir(), path[512];
    snprintf(path, sizeof path, "%s/s.ini", dir);
    FILE *f = fopen(path, "w");
    fputs("[experiment]\nname = s\nrepeats = 200\n"
          "[data]\ncorrelation = 0.5, 0.9, 1.0\n"
          "[train]\nsteps = 2000\n"
          "[model]\nname = shared_bottom, mmoe\n"
          "[model.shared_bottom]\nbottom_hidden = 113\n"
          "[scale.quick]\nexperiment.repeats = 4\ntrain.steps = 500\n"
          "data.correlation = 0.5, 1.0\nmodel.shared_bottom.bottom_hidden = 50\n"
          "[scale.other]\ntrain.lr = 0.01\n",
          f);
    fclose(f);
    sweep_t *full, *quick;
    err_t err = {0};
    ck_assert_msg(sweep_load(path, &full, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(full->n_trials, 200 * 3 * 2);
    ck_assert_str_eq(full->scale, "");
    ck_assert_msg(sweep_load_scaled(path, "quick", &quick, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(quick->repeats, 4);
    ck_assert_int_eq(quick->n_points, 2 * 2);
    ck_assert_str_eq(quick->scale, "quick");
    ck_assert_ptr_nonnull(strstr(quick->text, "; mtlab run --scale quick"));
    ck_assert(strcmp(quick->text, full->text) != 0);
    for (int p = 0; p < quick->n_points; p++) {
        const trial_spec_t *sp = &quick->points[p].spec;
        ck_assert_int_eq(sp->train.steps, 500);
        ck_assert(sp->train.lr == 0.001); /* [scale.other] not applied */
        if (strcmp(sp->model, "shared_bottom") == 0) ck_assert_int_eq(hp(sp, "bottom_hidden"), 50);
    }
    sweep_free(full);
    sweep_free(quick);
    /* A scale that replaces keys given BEFORE a [model.<name>] section keeps
     * that section's values (the override once pointed at a moved entry and
     * was lost, silently, with --scale). */
    char *moved = write_fixture("m.ini", "[experiment]\nname = m\nrepeats = 9\n"
                                         "[train]\nsteps = 2000\n"
                                         "[model]\nname = shared_bottom, mmoe\n"
                                         "[model.shared_bottom]\nbottom_hidden = 40\n"
                                         "[model.mmoe]\nexperts = 3\n"
                                         "[scale.quick]\nexperiment.repeats = 2\n"
                                         "train.steps = 100\n");
    ck_assert_msg(sweep_load_scaled(moved, "quick", &quick, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(quick->n_points, 2);
    ck_assert_int_eq(hp(&quick->points[0].spec, "bottom_hidden"), 40);
    ck_assert_int_eq(hp(&quick->points[1].spec, "experts"), 3);
    ck_assert_int_eq(quick->points[1].spec.train.steps, 100);
    sweep_free(quick);
    remove_fixture(moved);
    ck_assert_int_eq(sweep_load_scaled(path, "nosuch", &quick, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "no [scale.nosuch] section"));
    /* A bad key in any scale section is an error, even when not applied. */
    f = fopen(path, "a");
    fputs("[scale.broken]\ntrain.learning_rate = 1\n", f);
    fclose(f);
    ck_assert_int_eq(sweep_load(path, &full, &err), -1);
    ck_assert_int_eq(err.kind, ERR_USAGE);
    ck_assert_msg(strstr(err.msg, "s.ini:20") && strstr(err.msg, "learning_rate") &&
                      strstr(err.msg, "'lr'"),
                  "%s", err.msg);
    free(dir);
}
END_TEST

/* sweep_key_line: the line a point's value came from, for errors found later. */
START_TEST(test_key_line) {
    char *path = write_fixture("lines.ini", "[experiment]\n"      /* 1 */
                                            "name = lines\n"      /* 2 */
                                            "repeats = 3\n"       /* 3 */
                                            "[data]\n"            /* 4 */
                                            "train = 1000\n"      /* 5 */
                                            "[train]\n"           /* 6 */
                                            "batch = 32, 64\n"    /* 7 */
                                            "steps = 100\n"       /* 8 */
                                            "[model]\n"           /* 9 */
                                            "name = omoe, mmoe\n" /* 10 */
                                            "experts = 4\n"       /* 11 */
                                            "[model.mmoe]\n"      /* 12 */
                                            "experts = 8\n"       /* 13 */
                                            "[scale.quick]\n"     /* 14 */
                                            "train.steps = 5\n"   /* 15 */
                                            "model.mmoe.experts = 2\n" /* 16 */);
    sweep_t *s;
    err_t err = {0};
    ck_assert_msg(sweep_load(path, &s, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(s->n_points, 4); /* (32, omoe) (32, mmoe) (64, omoe) (64, mmoe) */
    for (int p = 0; p < 4; p++) {
        const bool mmoe = strcmp(s->points[p].spec.model, "mmoe") == 0;
        ck_assert_int_eq(mmoe, p % 2 == 1);
        ck_assert_int_eq(sweep_key_line(s, p, "model.experts"), mmoe ? 13 : 11);
        ck_assert_int_eq(sweep_key_line(s, p, "train.batch"), 7);
        ck_assert_int_eq(sweep_key_line(s, p, "train.steps"), 8);
        ck_assert_int_eq(sweep_key_line(s, p, "data.train"), 5);
        ck_assert_int_eq(sweep_key_line(s, p, "model.name"), 10);
        ck_assert_int_eq(sweep_key_line(s, p, "experiment.repeats"), 3);
        ck_assert_int_eq(sweep_key_line(s, p, "train.lr"), 0); /* a default */
        ck_assert_int_eq(sweep_key_line(s, p, "model.tower_hidden"), 0);
        ck_assert_int_eq(sweep_key_line(s, p, "train.nosuch"), 0);
        ck_assert_int_eq(sweep_key_line(s, p, "nosuch"), 0);
    }
    sweep_free(s);
    /* A scale's value is set at its [scale.<name>] line. */
    ck_assert_msg(sweep_load_scaled(path, "quick", &s, &err) == 0, "%s", err.msg);
    for (int p = 0; p < s->n_points; p++) {
        const bool mmoe = strcmp(s->points[p].spec.model, "mmoe") == 0;
        ck_assert_int_eq(sweep_key_line(s, p, "train.steps"), 15);
        ck_assert_int_eq(sweep_key_line(s, p, "model.experts"), mmoe ? 16 : 11);
    }
    sweep_free(s);
    remove_fixture(path);
}
END_TEST

/* Heap bytes in use (mallinfo2 sees glibc's malloc only: under ASan its
 * allocations are not counted, and the bound below holds trivially). */
static size_t heap_in_use(void) {
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

/* A point costs what it uses: its struct (mostly the spec) plus one
 * exact-size allocation of its config and params, not fixed 4 KiB + 2 KiB +
 * 64 x 144 B buffers (18.5 KB a point: 1.7 GB for a 96,000-point sweep). */
START_TEST(test_large_grid_memory) {
    /* 25 correlations x 20 lrs x 10 steps x 4 models = 20,000 points. */
    char text[2048];
    size_t len = (size_t)snprintf(text, sizeof text,
                                  "[experiment]\nname = big\n[data]\n"
                                  "correlation = 0");
    for (int i = 1; i < 25; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, ", %g", i * 0.04);
    len += (size_t)snprintf(text + len, sizeof text - len, "\n[train]\nlr = 0.0001");
    for (int i = 1; i < 20; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, ", %g", (i + 1) * 1e-4);
    len += (size_t)snprintf(text + len, sizeof text - len, "\nsteps = 100");
    for (int i = 1; i < 10; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, ", %d", 100 + i);
    snprintf(text + len, sizeof text - len,
             "\n[model]\nname = mmoe, omoe, shared_bottom, single\n");
    char *path = write_fixture("big.ini", text);

    const size_t before = heap_in_use();
    sweep_t *s;
    err_t err = {0};
    ck_assert_msg(sweep_load(path, &s, &err) == 0, "%s", err.msg);
    const size_t used = heap_in_use() - before;
    ck_assert_int_eq(s->n_points, 20000);
    const double per_point = (double)used / s->n_points;
    /* Measured: sizeof(sweep_point_t) + about 1.1 KB (config 430 B, data
     * config 240 B, values 90 B, params 23 x 16 B, malloc and index overhead). */
    const double bound = (double)sizeof(sweep_point_t) + 1536;
    ck_assert_msg(per_point <= bound, "%.0f bytes per point (bound %.0f)", per_point, bound);
    ck_assert_uint_lt(sizeof(sweep_point_t), sizeof(trial_spec_t) + 64);

    /* Every point is found by its config, and its params agree with it. */
    for (int p = 0; p < s->n_points; p++)
        ck_assert_int_eq(sweep_find_point(s, s->points[p].config), p);
    const sweep_point_t *last = &s->points[s->n_points - 1];
    ck_assert_str_eq(param(last, "data.correlation"), "0.96");
    ck_assert_str_eq(param(last, "train.lr"), "0.002");
    ck_assert_str_eq(param(last, "train.steps"), "109");
    ck_assert_str_eq(param(last, "model.name"), "single");
    ck_assert_ptr_nonnull(strstr(last->config, "data.correlation=0.96;"));
    ck_assert_ptr_nonnull(strstr(last->config, ";train.lr=0.002;"));
    sweep_free(s);
    remove_fixture(path);
}
END_TEST

/* The shipped example loads and has the documented shape. */
START_TEST(test_example_file) {
    sweep_t *s;
    err_t err = {0};
    ck_assert_msg(sweep_load("experiments/example.ini", &s, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(s->n_points, 4);
    ck_assert_int_eq(s->repeats, 2);
    ck_assert_int_eq(s->n_trials, 8);
    sweep_free(s);
}
END_TEST

Suite *sweep_suite(void) {
    Suite *s = suite_create("sweep");
    TCase *tc = tcase_create("expand");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_grid_2x2);
    tcase_add_test(tc, test_omitted_defaults);
    tcase_add_test(tc, test_alpha_keys);
    tcase_add_test(tc, test_models_innermost);
    tcase_add_test(tc, test_override_dedupes);
    tcase_add_test(tc, test_hp_per_family);
    tcase_add_test(tc, test_settings);
    tcase_add_test(tc, test_seeds);
    tcase_add_test(tc, test_canonical_config);
    tcase_add_test(tc, test_number_format);
    tcase_add_test(tc, test_syntax_and_vectors);
    tcase_add_test(tc, test_distributions);
    tcase_add_test(tc, test_suggest);
    tcase_add_test(tc, test_example_file);
    tcase_add_test(tc, test_scale_sections);
    tcase_add_test(tc, test_key_line);
    suite_add_tcase(s, tc);

    TCase *big = tcase_create("large");
    tcase_set_timeout(big, 60);
    tcase_add_test(big, test_large_grid_memory);
    suite_add_tcase(s, big);

    TCase *bad = tcase_create("errors");
    tcase_add_loop_test(bad, test_bad_file, 0, (int)(sizeof bad_cases / sizeof bad_cases[0]));
    tcase_add_loop_test(bad, test_bad_count, 0,
                        (int)(sizeof bad_count_cases / sizeof bad_count_cases[0]));
    tcase_add_test(bad, test_long_line);
    tcase_add_test(bad, test_data_only_point);
    tcase_add_test(bad, test_unreadable);
    tcase_add_test(bad, test_nul_byte);
    tcase_add_test(bad, test_file_size_cap);
    suite_add_tcase(s, bad);
    return s;
}
