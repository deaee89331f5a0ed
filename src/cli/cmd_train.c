/* cmd_train.c -- `mtlab train`: one trial from the command line.
 *
 * Generates a synthetic dataset, trains one model and prints a table of the
 * losses every --eval-every steps, then the final test losses, the loss of
 * predicting the training mean for comparison, and the mean gate weight per
 * gate and expert on the test set.  Output depends only on the arguments:
 * two runs with the same arguments print the same bytes. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/opts.h"
#include "data/synth.h"
#include "models/model.h"
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

static int parse_alpha(const char *s, synth_alpha_t *mode, err_t *err) {
    if (strcmp(s, "normal") == 0)
        *mode = ALPHA_NORMAL;
    else if (strcmp(s, "index") == 0)
        *mode = ALPHA_INDEX;
    else
        return err_set(err, ERR_USAGE, "--alpha: '%s' is not one of normal, index", s);
    return 0;
}

static void print_gates(const gate_stats_t *gs) {
    if (gs->n_gates == 0) return;
    printf("\nmean gate weight per expert (test set, %ld examples):\n%-8s", gs->examples, "gate");
    int width = 0;
    for (int g = 0; g < gs->n_gates; g++)
        if (gs->gate[g].experts > width) width = gs->gate[g].experts;
    for (int e = 0; e < width; e++) {
        char h[16];
        snprintf(h, sizeof h, "e%d", e + 1);
        printf(" %7s", h);
    }
    printf("\n");
    for (int g = 0; g < gs->n_gates; g++) {
        printf("%-8s", gs->gate[g].name);
        for (int e = 0; e < gs->gate[g].experts; e++)
            printf(" %7.4f", gs->gate[g].mean[e]);
        printf("\n");
    }
}

int cmd_train(int argc, char **argv) {
    const char *model_name = "mmoe", *alpha = "normal";
    double corr = 0.5;
    trial_spec_t spec;
    trial_spec_default(&spec);
    synth_params_t *sp = &spec.data;
    train_config_t *tc = &spec.train;
    model_config_t *mc = &spec.model_cfg;
    int bottom_hidden = 0; /* 0: the model family's default */
    uint64_t seed = 1, data_seed = 0, init_seed = 0;
    int digits = 0;

    opt_t opts[] = {
        {"model", OPT_STRING, &model_name, "NAME", "single, shared_bottom, omoe or mmoe", 1, 0, 0},
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
        {"experts", OPT_INT, &mc->experts, "N", "experts (omoe, mmoe)", 1, 4096, 0},
        {"expert-hidden", OPT_INT, &mc->expert_hidden, "H", "hidden units per expert", 1, 1e6, 0},
        {"bottom-hidden", OPT_INT, &bottom_hidden, "H",
         "bottom units (default 0: the model's own, 113 shared_bottom / 16 single)", 0, 1e6, 0},
        {"tower-hidden", OPT_INT, &mc->tower_hidden, "H", "hidden units of each task tower", 1, 1e6,
         0},
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
    };
    const int n_opts = (int)(sizeof opts / sizeof opts[0]);
    err_t err = {0};
    const char *pos[1];
    int n_pos;
    int rc =
        cli_options("train", "mtlab train [OPTIONS]",
                    "Trains one model on synthetic data (SPEC §3) and prints the losses every\n"
                    "--eval-every steps, the final test losses and the mean gate weights.",
                    opts, n_opts, argc, argv, pos, 0, &n_pos);
    if (rc != CLI_CONTINUE) return rc;

    const model_ops_t *ops = model_find(model_name);
    if (!ops) {
        model_t *none;
        model_new(&none, model_name, mc, 0, &err); /* builds the "unknown model" message */
        return cli_fail("train", &err);
    }
    if (parse_alpha(alpha, &sp->alpha_mode, &err) || synth_set_corr_all(sp, corr, &err) ||
        synth_check(sp, &err))
        return cli_fail("train", &err);
    snprintf(spec.model, sizeof spec.model, "%s", model_name);
    /* Family defaults first, then whatever the user gave explicitly. */
    model_config_t family;
    model_config_default(&family, ops);
    mc->bottom_hidden = bottom_hidden > 0 ? bottom_hidden : family.bottom_hidden;
    spec.data_seed = data_seed ? data_seed : seed;
    spec.init_seed = init_seed ? init_seed : seed;

    printf("# mtlab train: model=%s corr=%g tasks=%d dim=%d train=%d lr=%g batch=%d steps=%d "
           "data_seed=%" PRIu64 " init_seed=%" PRIu64 " (%s)\n",
           model_name, corr, sp->tasks, sp->dim, sp->n_train, tc->lr, tc->batch, tc->steps,
           spec.data_seed, spec.init_seed, REAL_NAME);
    printer_t printer = {.digits = digits};
    trial_result_t res;
    int status = 0;
    if (trial_run(&spec, on_eval, &printer, &res, &err)) {
        status = cli_fail("train", &err);
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
    }
    trial_result_free(&res);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        err_set(&err, ERR_FAIL, "cannot write to standard output");
        status = cli_fail("train", &err);
    }
    return status;
}
