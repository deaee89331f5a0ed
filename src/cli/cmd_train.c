/* cmd_train.c -- `mtlab train`: one trial from the command line.
 *
 * Generates a synthetic dataset, trains one model and prints a table of the
 * losses every --eval-every steps, then the final test losses, the loss of
 * predicting the training mean for comparison, and the mean gate weight per
 * gate and expert on the test set.  Output depends only on the arguments:
 * two runs with the same arguments print the same bytes.  With --params it
 * prints only the configured model's parameter count (or, with --target N
 * --width KEY, the KEY value whose model comes closest to N parameters, so a
 * sweep can compare families at matched size) and trains nothing. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"
#include "cli/opts.h"
#include "core/provenance.h"
#include "core/numtext.h"
#include "data/synth.h"
#include "models/model.h"
#include "sweep/sweep.h"
#include "train/trial.h"

typedef struct {
    int header_done;
    int digits; /* significant digits of printed losses (0: fixed %.6f) */
} printer_t;

/* A loss as printed in tables: fixed 6 decimals, or `digits` significant
 * digits (--digits 17 prints doubles exactly, for comparing runs bit by bit). */
static void print_loss(const char *prefix, double v, int digits, int width) {
    if (digits > 0)
        printf("%s%*.*g", prefix, width, digits, v);
    else
        printf("%s%*.6f", prefix, width, v);
}

static void on_eval(void *ctx, const train_eval_t *ev) {
    printer_t *p = ctx;
    const int T = ev->tasks;
    if (!p->header_done) {
        printf("%6s", "step");
        const char *labels[] = {"train", "val", "test"};
        for (int s = 0; s < 3; s++) {
            for (int k = 0; k < T; k++) {
                char h[32];
                snprintf(h, sizeof h, "%s/t%d", labels[s], k + 1);
                printf(" %11s", h);
            }
            char h[32];
            snprintf(h, sizeof h, "%s/total", labels[s]);
            printf(" %11s", h);
        }
        printf("\n");
        p->header_done = 1;
    }
    printf("%6d", ev->step);
    const double *rows[] = {ev->train, ev->val, ev->test};
    for (int s = 0; s < 3; s++)
        for (int k = 0; k <= T; k++)
            print_loss(" ", rows[s][k], p->digits, 11);
    printf("\n");
}

static void print_gates(const gate_stats_t *gs) {
    if (gs->n_gates == 0) return;
    int width = 0, name_width = 8; /* names longer than 8 ("l1/t1/weights") widen the column */
    for (int g = 0; g < gs->n_gates; g++) {
        if (gs->gate[g].experts > width) width = gs->gate[g].experts;
        if ((int)strlen(gs->gate[g].name) > name_width) name_width = (int)strlen(gs->gate[g].name);
    }
    printf("\nmean gate weight per expert (test set, %ld examples):\n%-*s", gs->examples,
           name_width, "gate");
    for (int e = 0; e < width; e++) {
        char h[16];
        snprintf(h, sizeof h, "e%d", e + 1);
        printf(" %7s", h);
    }
    printf("\n");
    for (int g = 0; g < gs->n_gates; g++) {
        printf("%-*s", name_width, gs->gate[g].name);
        for (int e = 0; e < gs->gate[g].experts; e++)
            printf(" %7.4f", gs->gate[g].mean[e]);
        printf("\n");
    }
}

/* A routing family's serving size and its final routes of kind "z" (SNR's
 * serving estimate), one matrix per routing layer: a row per destination
 * (the last layer's: the tasks), a column per source. */
static void print_routes(const trial_result_t *res) {
    if (res->route_count == 0 || res->n_evals == 0) return;
    const train_eval_t *last = &res->evals[res->n_evals - 1];
    if (last->has_serving)
        printf("\nserving parameters: %.0f of %zu\n", last->serving_params, res->model->n_weights);
    const model_route_t *r = res->routes + (size_t)(res->n_evals - 1) * res->route_count;
    int max_layer = 0;
    for (int i = 0; i < res->route_count; i++)
        if (strcmp(r[i].kind, "z") == 0 && r[i].layer > max_layer) max_layer = r[i].layer;
    if (max_layer == 0) return;
    printf("final routes z (serving estimate; rows: destination, columns: source):\n");
    for (int l = 1; l <= max_layer; l++) {
        int n_src = 0, n_dst = 0;
        for (int i = 0; i < res->route_count; i++)
            if (r[i].layer == l && strcmp(r[i].kind, "z") == 0) {
                if (r[i].src >= n_src) n_src = r[i].src + 1;
                if (r[i].dst >= n_dst) n_dst = r[i].dst + 1;
            }
        if (n_src == 0) continue;
        printf("layer %d%s\n", l, l == max_layer ? " (to the tasks)" : "");
        for (int dst = 0; dst < n_dst; dst++) {
            printf("  %s%-4d", l == max_layer ? "t" : "s", dst + 1);
            for (int src = 0; src < n_src; src++) {
                double v = NAN;
                for (int i = 0; i < res->route_count; i++)
                    if (r[i].layer == l && r[i].src == src && r[i].dst == dst &&
                        strcmp(r[i].kind, "z") == 0)
                        v = r[i].value;
                printf(" %6.3f", v);
            }
            printf("\n");
        }
    }
}

/* The sweep key each option sets: an option is a name for a setting, given
 * to the same resolution as `section.key=value` arguments and sweep files. */
static const struct {
    const char *option, *key;
} option_keys[] = {
    {"model", "model.name"},
    {"corr", "data.correlation"},
    {"tasks", "data.tasks"},
    {"dim", "data.dim"},
    {"sinusoids", "data.sinusoids"},
    {"scale", "data.scale"},
    {"noise", "data.noise"},
    {"alpha", "data.alpha"},
    {"alpha-seed", "data.alpha_seed"},
    {"train", "data.train"},
    {"val", "data.validation"},
    {"test", "data.test"},
    {"experts", "model.experts"},
    {"expert-hidden", "model.expert_hidden"},
    {"bottom-hidden", "model.bottom_hidden"},
    {"tower-hidden", "model.tower_hidden"},
    {"lr", "train.lr"},
    {"batch", "train.batch"},
    {"steps", "train.steps"},
    {"eval-every", "train.eval_every"},
};

#define TRAIN_MAX_SETTINGS 96

/* The canonical value of a stored param of the point, or NULL. */
static const char *param(const sweep_point_t *pt, const char *key) {
    for (int i = 0; i < pt->n_params; i++)
        if (strcmp(pt->params[i].key, key) == 0) return pt->params[i].value;
    return NULL;
}

/* The option's value as text (what a sweep file would say). */
static void option_text(const opt_t *o, char *out, size_t n) {
    switch (o->type) {
    case OPT_INT:
        snprintf(out, n, "%d", *(const int *)o->target);
        break;
    case OPT_U64:
        snprintf(out, n, "%" PRIu64, *(const uint64_t *)o->target);
        break;
    case OPT_DOUBLE:
        num_to_text(*(const double *)o->target, out, n);
        break;
    case OPT_STRING:
        snprintf(out, n, "%s", *(const char *const *)o->target);
        break;
    case OPT_FLAG:
        snprintf(out, n, "%s", *(const bool *)o->target ? "true" : "false");
        break;
    }
}

/* Output of a data-only trial (train.steps=0): what the data measures. */
static void print_data_only(const trial_result_t *res, int T, int digits) {
    printf("\ndata only (train.steps = 0): no model trained\npredicting the training mean:");
    for (int k = 0; k < T; k++) {
        printf("  t%d", k + 1);
        print_loss(" ", res->baseline[k], digits, 0);
    }
    print_loss("  total ", res->baseline[T], digits, 0);
    printf("\nlabel Pearson correlation (training set):");
    for (int i = 0; i < T; i++)
        for (int j = i + 1; j < T; j++) {
            printf("  t%d-t%d", i + 1, j + 1);
            if (digits > 0)
                printf(" %.*g", digits, res->label_pearson[i][j]);
            else
                printf(" %.4f", res->label_pearson[i][j]);
        }
    printf("\n");
}

/* Parameters of family ops with config c (model_sizes: nothing allocated),
 * or SIZE_MAX when that config is refused (its sizes overflow). */
static size_t params_of(const model_ops_t *ops, const model_config_t *c) {
    model_sizes_t sz;
    err_t ignored = {0};
    return model_sizes_ops(ops, c, &sz, &ignored) ? SIZE_MAX : sz.n_params;
}

/* --params: prints the parameter count of spec's model.  With --target
 * (solve), the value of the integer model key `key` whose model's count is
 * closest to target, ties to the smaller, as "model.KEY=V parameters=N": a
 * setting to paste into a sweep file or onto a command line, so families can
 * be compared at equal size.  The count never decreases as a width or count
 * key grows, so a bisection over the key's declared range finds it. */
static int print_params(const trial_spec_t *spec, bool solve, uint64_t target, const char *key,
                        err_t *err) {
    const model_ops_t *ops = model_find(spec->model);
    model_sizes_t sz;
    if (model_sizes(spec->model, &spec->model_cfg, &sz, err)) return -1;
    if (!solve) {
        printf("%zu\n", sz.n_params);
        return 0;
    }
    const int i = model_hp_find(ops, key);
    if (i < 0 || ops->hp[i].type != HP_INT)
        return err_set(err, ERR_USAGE, "--width %s: model %s has no integer key '%s'", key,
                       ops->name, key);
    model_config_t c = spec->model_cfg;
    const size_t want = target > SIZE_MAX ? SIZE_MAX : (size_t)target;
    long lo = ops->hp[i].min < 1 ? 1 : (long)ops->hp[i].min, hi = (long)ops->hp[i].max;
    while (lo < hi) { /* the smallest value whose count reaches the target (hi if none) */
        const long mid = lo + (hi - lo) / 2;
        c.hp[i] = (double)mid;
        if (params_of(ops, &c) >= want)
            hi = mid;
        else
            lo = mid + 1;
    }
    c.hp[i] = (double)lo;
    size_t best = params_of(ops, &c);
    if (best >= want && lo > (ops->hp[i].min < 1 ? 1 : (long)ops->hp[i].min)) { /* or below */
        c.hp[i] = (double)(lo - 1);
        const size_t below = params_of(ops, &c);
        if (best == SIZE_MAX || want - below <= best - want) { /* below < want <= best */
            best = below;
            lo--;
        }
    }
    if (best == SIZE_MAX)
        return err_set(err, ERR_USAGE, "--width %s: no value of %s gives a representable model",
                       key, key);
    printf("model.%s=%ld parameters=%zu\n", key, lo, best);
    return 0;
}

int cmd_train(int argc, char **argv) {
    const char *model_name = "mmoe", *alpha = "normal";
    double corr = 0.5;
    trial_spec_t spec;
    trial_spec_default(&spec);
    synth_params_t *sp = &spec.data;
    train_config_t *tc = &spec.train;
    /* The model options' defaults, as --help shows them: the default model's. */
    const model_ops_t *mmoe = model_find("mmoe");
    const int i_experts = model_hp_find(mmoe, "experts"),
              i_expert_hidden = model_hp_find(mmoe, "expert_hidden"),
              i_tower_hidden = model_hp_find(mmoe, "tower_hidden");
    int experts = i_experts >= 0 ? (int)spec.model_cfg.hp[i_experts] : 0;
    int expert_hidden = i_expert_hidden >= 0 ? (int)spec.model_cfg.hp[i_expert_hidden] : 0;
    int tower_hidden = i_tower_hidden >= 0 ? (int)spec.model_cfg.hp[i_tower_hidden] : 0;
    int bottom_hidden = 0; /* 0: the model family's default */
    const uint64_t alpha_seed_default = sp->alpha_seed;
    char model_help[256] = "the model family:";
    int n_families;
    const model_ops_t *const *families = model_registry(&n_families);
    for (int i = 0; i < n_families; i++)
        snprintf(model_help + strlen(model_help), sizeof model_help - strlen(model_help), "%s %s",
                 i ? "," : "", families[i]->name);
    uint64_t seed = 1, data_seed = 0, init_seed = 0;
    int digits = 0;
    bool params_only = false;
    uint64_t target = 0;
    const char *width_key = "expert_hidden";
    const char *expect_core = NULL;

    opt_t opts[] = {
        {"model", OPT_STRING, &model_name, "NAME", model_help, 1, 0, 0},
        {"corr", OPT_DOUBLE, &corr, "P", "task correlation (cosine of task weights), all pairs", -1,
         1, 0},
        {"tasks", OPT_INT, &sp->tasks, "T", "number of tasks", 1, MTLAB_MAX_TASKS, 0},
        {"dim", OPT_INT, &sp->dim, "D", "input features", 1, 1e6, 0},
        {"sinusoids", OPT_INT, &sp->sinusoids, "M", "sinusoids m per label", 0, MTLAB_MAX_SINUSOIDS,
         0},
        {"scale", OPT_DOUBLE, &sp->scale, "C", "scale c of the task weight vectors", 1, 0, 0},
        {"noise", OPT_DOUBLE, &sp->noise, "SIGMA", "label noise standard deviation", 0, 1e9, 0},
        {"alpha", OPT_STRING, &alpha, "MODE",
         "sinusoid alpha/beta: normal (drawn from --alpha-seed) or index", 1, 0, 0},
        {"alpha-seed", OPT_U64, &sp->alpha_seed, "S",
         "experiment seed of alpha/beta (alpha normal)", 1, 0, 0},
        {"train", OPT_INT, &sp->n_train, "N", "training examples", 1, 1e9, 0},
        {"val", OPT_INT, &sp->n_val, "N", "validation examples", 1, 1e9, 0},
        {"test", OPT_INT, &sp->n_test, "N", "test examples", 1, 1e9, 0},
        {"experts", OPT_INT, &experts, "N",
         "experts (families with model.experts; ignored by the others)", 1, 4096, 0},
        {"expert-hidden", OPT_INT, &expert_hidden, "H", "hidden units per expert", 1, 1e6, 0},
        {"bottom-hidden", OPT_INT, &bottom_hidden, "H",
         "bottom units (default 0: the model's own, 113 shared_bottom / 16 single)", 0, 1e6, 0},
        {"tower-hidden", OPT_INT, &tower_hidden, "H", "hidden units of each task tower", 1, 1e6, 0},
        {"lr", OPT_DOUBLE, &tc->lr, "LR", "Adam learning rate", 1e-12, 1e3, 0},
        {"batch", OPT_INT, &tc->batch, "B", "mini-batch size", 1, 1e6, 0},
        {"steps", OPT_INT, &tc->steps, "S", "training steps", 1, 1e9, 0},
        {"eval-every", OPT_INT, &tc->eval_every, "K", "evaluate every K steps", 1, 1e9, 0},
        {"seed", OPT_U64, &seed, "S", "seed of the data and of the initialisation", 1, 0, 0},
        {"data-seed", OPT_U64, &data_seed, "S", "dataset seed (0: use --seed)", 1, 0, 0},
        {"init-seed", OPT_U64, &init_seed, "S",
         "initialisation and batch-order seed (0: use --seed)", 1, 0, 0},
        {"digits", OPT_INT, &digits, "N",
         "print losses with N significant digits (0: 6 decimals; 17: exact)", 0, 17, 0},
        {"params", OPT_FLAG, &params_only, NULL,
         "print the model's parameter count and exit (nothing is trained)", 1, 0, 0},
        {"target", OPT_U64, &target, "N",
         "with --params: print the --width value whose count is closest to N", 1, 0, 0},
        {"width", OPT_STRING, &width_key, "KEY", "the integer model key --target solves for", 1, 0,
         0},
        {"expect-blas-core", OPT_STRING, &expect_core, "NAME",
         "the OpenBLAS core the trial ran on (mtlab show prints it): a note on stderr when this "
         "machine runs another, since the same bits are promised only on the same core",
         1, 0, 0},
    };
    const int n_opts = (int)(sizeof opts / sizeof opts[0]);
    err_t err = {0};
    const char *pos[TRAIN_MAX_SETTINGS];
    int n_pos;
    int rc = cli_options(
        "train", "mtlab train [SECTION.KEY=VALUE ...] [OPTIONS]",
        "Trains one model on synthetic data (SPEC §3) and prints the losses every\n"
        "--eval-every steps, the final test losses and the mean gate weights.\n"
        "Every point key of a sweep file may be given as SECTION.KEY=VALUE (e.g.\n"
        "model.name=mmoe data.groups=\"2 2\" model.experts=4 train.lr=0.01), checked as\n"
        "a sweep file's line; the options below name some of them (--corr is\n"
        "data.correlation).  train.steps=0 only generates and measures the data.",
        opts, n_opts, argc, argv, pos, TRAIN_MAX_SETTINGS / 2, &n_pos);
    if (rc != CLI_CONTINUE) return rc;
    if (expect_core && strcasecmp(expect_core, provenance_blas_core()) != 0)
        fprintf(stderr,
                "mtlab train: note: this machine's OpenBLAS core is %s, the trial ran on %s: the "
                "results may differ in the last bits (MTLAB_BLAS_CORE=%s forces that core where "
                "the CPU can run it)\n",
                provenance_blas_core(), expect_core, expect_core);

    /* Options given, then arguments: one list of settings, resolved as a
     * sweep file's one point would be. */
    /* The model options predate per-family hyper-parameters: like commands
     * `mtlab show` printed then (every option for every family), they are
     * ignored by a family that does not declare them.  Arguments are not. */
    const char *family = model_name;
    for (int i = 0; i < n_pos; i++)
        if (strncmp(pos[i], "model.name=", 11) == 0) family = pos[i] + 11;
    const model_ops_t *family_ops = model_find(family);
    const char *settings[TRAIN_MAX_SETTINGS], *labels[TRAIN_MAX_SETTINGS];
    char texts[TRAIN_MAX_SETTINGS / 2][160], option_labels[TRAIN_MAX_SETTINGS / 2][32];
    int n_settings = 0;
    for (size_t i = 0; i < sizeof option_keys / sizeof option_keys[0]; i++) {
        const opt_t *o = NULL;
        for (int j = 0; j < n_opts && !o; j++)
            if (strcmp(opts[j].name, option_keys[i].option) == 0) o = &opts[j];
        if (!o || !o->seen || (o->target == &bottom_hidden && bottom_hidden == 0)) continue;
        if (strncmp(option_keys[i].key, "model.", 6) == 0 && family_ops &&
            strcmp(option_keys[i].key, "model.name") != 0 &&
            model_hp_find(family_ops, option_keys[i].key + 6) < 0)
            continue;
        char value[128];
        option_text(o, value, sizeof value);
        snprintf(texts[n_settings], sizeof texts[n_settings], "%s=%s", option_keys[i].key, value);
        snprintf(option_labels[n_settings], sizeof option_labels[n_settings], "--%s", o->name);
        settings[n_settings] = texts[n_settings];
        labels[n_settings] = option_labels[n_settings];
        n_settings++;
    }
    for (int i = 0; i < n_pos; i++) {
        settings[n_settings] = pos[i];
        labels[n_settings] = pos[i];
        n_settings++;
    }
    sweep_t *point;
    if (sweep_from_settings(settings, labels, n_settings, alpha_seed_default, &point, &err))
        return cli_fail("train", &err);
    const sweep_point_t *pt = &point->points[0];
    spec = pt->spec;
    spec.data_seed = data_seed ? data_seed : seed;
    spec.init_seed = init_seed ? init_seed : seed;
    bool target_seen = false, width_seen = false;
    for (int j = 0; j < n_opts; j++) {
        if (opts[j].target == &target) target_seen = opts[j].seen;
        if (opts[j].target == &width_key) width_seen = opts[j].seen;
    }
    if ((target_seen || width_seen) && !params_only) {
        sweep_free(point);
        err_set(&err, ERR_USAGE, "--target and --width go with --params");
        return cli_fail("train", &err);
    }
    if (params_only) {
        int status = print_params(&spec, target_seen, target, width_key, &err);
        sweep_free(point);
        if (status == 0 && (fflush(stdout) != 0 || ferror(stdout)))
            status = err_set(&err, ERR_FAIL, "cannot write to standard output");
        return status ? cli_fail("train", &err) : 0;
    }

    const char *corr_text = param(pt, "data.correlation");
    char relation[160];
    if (corr_text)
        snprintf(relation, sizeof relation, "corr=%g", strtod(corr_text, NULL));
    else
        snprintf(relation, sizeof relation, "groups=\"%s\" within=%s between=%s",
                 param(pt, "data.groups"), param(pt, "data.within"), param(pt, "data.between"));
    printf("# mtlab train: model=%s %s tasks=%d dim=%d train=%d lr=%g batch=%d steps=%d "
           "data_seed=%" PRIu64 " init_seed=%" PRIu64 " (%s)\n",
           spec.model, relation, sp->tasks, sp->dim, sp->n_train, tc->lr, tc->batch, tc->steps,
           spec.data_seed, spec.init_seed, REAL_NAME);
    sweep_free(point);
    printer_t printer = {.digits = digits};
    trial_result_t res;
    int status = 0;
    if (trial_run(&spec, on_eval, &printer, &res, &err)) {
        status = cli_fail("train", &err);
    } else if (!res.model) {
        print_data_only(&res, sp->tasks, digits);
    } else {
        const int T = sp->tasks;
        printf("\nparameters: %zu\nfinal test loss:", res.model->n_params);
        for (int k = 0; k < T; k++) {
            printf("  t%d", k + 1);
            print_loss(" ", res.result.final.test[k], digits, 0);
        }
        print_loss("  total ", res.result.final.test[T], digits, 0);
        printf("\npredicting the training mean:");
        for (int k = 0; k < T; k++) {
            printf("  t%d", k + 1);
            print_loss(" ", res.baseline[k], digits, 0);
        }
        print_loss("  total ", res.baseline[T], digits, 0);
        printf("\nlabel Pearson correlation (training set):");
        for (int i = 0; i < T; i++)
            for (int j = i + 1; j < T; j++)
                printf("  t%d-t%d %.4f", i + 1, j + 1, res.label_pearson[i][j]);
        printf("\n");
        print_gates(&res.gates);
        print_routes(&res);
    }
    trial_result_free(&res);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        err_set(&err, ERR_FAIL, "cannot write to standard output");
        status = cli_fail("train", &err);
    }
    return status;
}
