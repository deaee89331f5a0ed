/* cmd_gen.c -- `mtlab gen`: one split of a synthetic dataset as CSV.
 *
 * Writes the header x1,...,xd,y1,...,yT and one row per example to stdout,
 * every number with "%.9g" (enough digits to read a float back exactly).
 * The rows are those of the chosen split of synth_generate(): --split test
 * --n 1000 prints the very test set a trial with test = 1000 sees, since each
 * split has its own random stream.  Binary tasks are thresholded on the
 * training labels, so for --split val/test the training split is generated
 * too (with the default training size, as in a default experiment) and
 * discarded.  Output depends only on the arguments.
 *
 * --sinusoids-only prints instead the sinusoids' α_i, β_i of these options
 * (one line per sinusoid, shortest round-trip numbers): what a trial with the
 * same [data] keys uses, e.g. to see the draw of an alpha_seed. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/mem.h"
#include "core/numtext.h"
#include "cli/opts.h"
#include "data/synth.h"

static int parse_alpha(const char *s, synth_alpha_t *mode, err_t *err) {
    if (strcmp(s, "normal") == 0)
        *mode = ALPHA_NORMAL;
    else if (strcmp(s, "index") == 0)
        *mode = ALPHA_INDEX;
    else if (strcmp(s, "list") == 0)
        *mode = ALPHA_LIST;
    else
        return err_set(err, ERR_USAGE, "--alpha: '%s' is not one of normal, index, list", s);
    return 0;
}

/* "0.5 -1 2": exactly m numbers (--alpha list), into out[m]. */
static int parse_values(const char *opt, const char *list, int m, double *out, err_t *err) {
    if (!list) return err_set(err, ERR_USAGE, "--alpha list needs --%s (%d numbers)", opt, m);
    int n = 0;
    for (const char *s = list;;) {
        while (*s == ' ')
            s++;
        if (!*s) break;
        size_t len = strcspn(s, " ");
        char item[64];
        if (len >= sizeof item || n == m)
            return err_set(err, ERR_USAGE, "--%s: '%s' is not %d numbers", opt, list, m);
        memcpy(item, s, len);
        item[len] = '\0';
        if (parse_double(item, &out[n++]))
            return err_set(err, ERR_USAGE, "--%s: '%s' is not a number", opt, item);
        s += len;
    }
    if (n != m)
        return err_set(err, ERR_USAGE, "--%s: %d numbers for %d sinusoids", opt, n, m);
    return 0;
}

/* "sinusoid alpha beta", then one line per sinusoid; nonzero on a write error. */
static int write_sinusoids(FILE *f, const synth_params_t *p) {
    double alpha[MTLAB_MAX_SINUSOIDS], beta[MTLAB_MAX_SINUSOIDS];
    synth_sinusoids(p, alpha, beta);
    fprintf(f, "sinusoid alpha beta\n");
    for (int i = 0; i < p->sinusoids; i++) {
        char a[32], b[32];
        num_to_text(alpha[i], a, sizeof a);
        num_to_text(beta[i], b, sizeof b);
        fprintf(f, "%d %s %s\n", i + 1, a, b);
    }
    return fflush(f) != 0 || ferror(f);
}

/* "1,3": 1-based indices of the binary tasks, each in [1, tasks]. */
static int parse_binary(const char *list, synth_params_t *p, double rate, err_t *err) {
    const char *s = list;
    for (;;) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        char item[32];
        long long task;
        if (len == 0 || len >= sizeof item)
            return err_set(err, ERR_USAGE, "--binary: '%s' is not a list of task numbers", list);
        memcpy(item, s, len);
        item[len] = '\0';
        if (parse_long(item, &task))
            return err_set(err, ERR_USAGE, "--binary: '%s' is not a task number", item);
        if (task < 1 || task > p->tasks)
            return err_set(err, ERR_USAGE, "--binary: task %lld is outside [1, %d]", task,
                           p->tasks);
        p->binary[task - 1] = true;
        p->positive_rate[task - 1] = rate;
        if (!comma) return 0;
        s = comma + 1;
    }
}

/* The split's rows as CSV on f; nonzero on a write error. */
static int write_csv(FILE *f, const data_t *data, const dataset_t *split) {
    const int d = data->d, T = data->T;
    for (int i = 0; i < d; i++)
        fprintf(f, "%sx%d", i ? "," : "", i + 1);
    for (int k = 0; k < T; k++)
        fprintf(f, ",y%d", k + 1);
    fputc('\n', f);
    for (int r = 0; r < split->n && !ferror(f); r++) {
        const real *x = split->x + (size_t)r * d, *y = split->y + (size_t)r * T;
        for (int i = 0; i < d; i++)
            fprintf(f, "%s%.9g", i ? "," : "", (double)x[i]);
        for (int k = 0; k < T; k++)
            fprintf(f, ",%.9g", (double)y[k]);
        fputc('\n', f);
    }
    return fflush(f) != 0 || ferror(f);
}

int cmd_gen(int argc, char **argv) {
    synth_params_t sp;
    synth_defaults(&sp);
    double corr = 0.5, positive_rate = 0.5;
    const char *alpha = "normal", *split_name = "train", *binary = NULL;
    const char *alpha_values = NULL, *beta_values = NULL;
    bool sinusoids_only = false;
    int n = 1000;
    uint64_t seed = 1;

    /* Ranges are checked by synth_check (one message per field for every
     * caller), except --n which is this command's own. */
    opt_t opts[] = {
        {"corr", OPT_DOUBLE, &corr, "P", "task correlation (cosine of task weights), all pairs", 1,
         0, 0},
        {"tasks", OPT_INT, &sp.tasks, "T", "number of tasks", 1, 0, 0},
        {"dim", OPT_INT, &sp.dim, "D", "input features d", 1, 0, 0},
        {"sinusoids", OPT_INT, &sp.sinusoids, "M", "sinusoids m per label", 1, 0, 0},
        {"scale", OPT_DOUBLE, &sp.scale, "C", "scale c of the task weight vectors", 1, 0, 0},
        {"noise", OPT_DOUBLE, &sp.noise, "SIGMA", "label noise standard deviation", 1, 0, 0},
        {"alpha", OPT_STRING, &alpha, "MODE",
         "sinusoid alpha/beta: normal (drawn from --alpha-seed), index or list", 1, 0, 0},
        {"alpha-seed", OPT_U64, &sp.alpha_seed, "S", "experiment seed of alpha/beta (alpha normal)",
         1, 0, 0},
        {"alpha-values", OPT_STRING, &alpha_values, "LIST",
         "--alpha list: alpha_1 ... alpha_m, space-separated", 1, 0, 0},
        {"beta-values", OPT_STRING, &beta_values, "LIST",
         "--alpha list: beta_1 ... beta_m, space-separated", 1, 0, 0},
        {"sinusoids-only", OPT_FLAG, &sinusoids_only, NULL,
         "print the sinusoids' alpha, beta (one line each) instead of data", 1, 0, 0},
        {"n", OPT_INT, &n, "N", "rows to write", 1, 1e9, 0},
        {"split", OPT_STRING, &split_name, "SPLIT",
         "which split's stream to draw: train, val, test", 1, 0, 0},
        {"seed", OPT_U64, &seed, "S", "dataset seed", 1, 0, 0},
        {"binary", OPT_STRING, &binary, "LIST", "binary tasks, comma-separated 1-based indices", 1,
         0, 0},
        {"positive-rate", OPT_DOUBLE, &positive_rate, "R",
         "fraction of positive training labels of binary tasks", 1, 0, 0},
    };
    const int n_opts = (int)(sizeof opts / sizeof opts[0]);
    err_t err = {0};
    const char *pos[1];
    int n_pos;
    int rc =
        cli_options("gen", "mtlab gen [OPTIONS] > FILE.csv",
                    "Writes one split of a synthetic dataset (SPEC §3) as CSV: header\n"
                    "x1,...,xd,y1,...,yT, then --n rows.  The same arguments give the same bytes.",
                    opts, n_opts, argc, argv, pos, 0, &n_pos);
    if (rc != CLI_CONTINUE) return rc;
    if (!binary && opts[n_opts - 1].seen) { /* the last entry: --positive-rate */
        err_set(&err, ERR_USAGE, "--positive-rate applies to binary tasks only (see --binary)");
        return cli_fail("gen", &err);
    }

    const char *split_names[] = {"train", "val", "test"};
    int *split_sizes[] = {&sp.n_train, &sp.n_val, &sp.n_test};
    int which = 0;
    while (which < 3 && strcmp(split_name, split_names[which]) != 0)
        which++;
    if (which == 3) {
        err_set(&err, ERR_USAGE, "--split: '%s' is not one of train, val, test", split_name);
        return cli_fail("gen", &err);
    }
    /* Only the requested split is written.  Binary tasks are thresholded on
     * the training labels, so --split val/test keeps the default training
     * size (that of a default experiment) for them. */
    sp.n_val = sp.n_test = 0;
    *split_sizes[which] = n;

    if (parse_alpha(alpha, &sp.alpha_mode, &err) || synth_set_corr_all(&sp, corr, &err) ||
        (binary && parse_binary(binary, &sp, positive_rate, &err)))
        return cli_fail("gen", &err);
    if (sp.alpha_mode == ALPHA_LIST) {
        if (sp.sinusoids < 0 || sp.sinusoids > MTLAB_MAX_SINUSOIDS) {
            err_set(&err, ERR_USAGE, "--sinusoids: %d is outside [0, %d]", sp.sinusoids,
                    MTLAB_MAX_SINUSOIDS);
            return cli_fail("gen", &err);
        }
        if (parse_values("alpha-values", alpha_values, sp.sinusoids, sp.alpha, &err) ||
            parse_values("beta-values", beta_values, sp.sinusoids, sp.beta, &err))
            return cli_fail("gen", &err);
    } else if (alpha_values || beta_values) {
        err_set(&err, ERR_USAGE, "--alpha-values and --beta-values apply with --alpha list only");
        return cli_fail("gen", &err);
    }
    if (synth_check(&sp, &err)) return cli_fail("gen", &err);
    if (sinusoids_only) {
        if (!write_sinusoids(stdout, &sp)) return 0;
        err_set(&err, ERR_FAIL, "cannot write to standard output");
        return cli_fail("gen", &err);
    }

    data_t data;
    if (synth_generate(&sp, seed, &data, &err)) return cli_fail("gen", &err);
    const dataset_t *splits[] = {&data.train, &data.val, &data.test};
    int status = 0;
    if (write_csv(stdout, &data, splits[which])) {
        err_set(&err, ERR_FAIL, "cannot write to standard output");
        status = cli_fail("gen", &err);
    }
    data_free(&data);
    return status;
}
