/* cmd_show.c -- `mtlab show TRIAL_ID`: everything recorded about one trial:
 * experiment, model, repeat, status, seeds, config params, timings, the
 * final metrics and the mean gate weight per gate and expert. */
#include <ctype.h>
#include <inttypes.h>
#include <stdbool.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"
#include "cli/opts.h"
#include "core/mem.h"
#include "core/provenance.h"
#include "store/query.h"
#include "store/run_record.h"
#include "store/store.h"
#include "sweep/keys.h"

static const char *or_dash(const char *s) {
    return s ? s : "-";
}

static void print_seconds(const char *label, double v) {
    if (isnan(v))
        printf("  %s -", label);
    else
        printf("  %s %.4g", label, v);
}

/* Widest text in column `col` of t. */
static int column_width(const store_table_t *t, int col) {
    int w = 0;
    for (int r = 0; r < t->n_rows; r++) {
        const char *cell = store_table_cell(t, r, col);
        int n = cell ? (int)strlen(cell) : 0;
        if (n > w) w = n;
    }
    return w;
}

/* The gate rows (gate, expert, mean, std; sorted by gate, expert) as one
 * line per gate with a column per expert. */
static void print_gates(const store_table_t *g) {
    int w = column_width(g, 0);
    if (w < 8) w = 8; /* as in mtlab train */
    long max_expert = -1;
    for (int r = 0; r < g->n_rows; r++) {
        long long e;
        if (parse_long(store_table_cell(g, r, 1), &e) == 0 && e > max_expert) max_expert = (long)e;
    }
    printf("\nmean gate weight per expert (test set):\n%-*s", w, "gate");
    for (long e = 0; e <= max_expert; e++) {
        char h[24];
        snprintf(h, sizeof h, "e%ld", e + 1);
        printf(" %7s", h);
    }
    for (int r = 0; r < g->n_rows; r++) {
        const char *gate = store_table_cell(g, r, 0);
        long long e = 0;
        double mean;
        parse_long(store_table_cell(g, r, 1), &e);
        if (r == 0 || strcmp(gate, store_table_cell(g, r - 1, 0)) != 0) printf("\n%-*s", w, gate);
        const char *cell = store_table_cell(g, r, 2);
        if (cell && parse_double(cell, &mean) == 0)
            printf(" %7.4f", mean);
        else
            printf(" %7s", "-");
    }
    printf("\n");
}

/* Appends `word` to cmd[*n, cap) as one shell word: as is when it holds only
 * characters no shell treats specially, else in single quotes ('\'' for a
 * quote).  Returns -1 when it does not fit. */
static int append_word(char *cmd, size_t cap, size_t *n, const char *word) {
    bool plain = word[0] != '\0';
    for (const char *c = word; *c && plain; c++)
        plain = isalnum((unsigned char)*c) || strchr("._+-=:/,@%", *c);
    size_t len = *n;
    if (len + 1 >= cap) return -1;
    cmd[len++] = ' ';
    if (!plain && len < cap) cmd[len++] = '\'';
    for (const char *c = word; *c && len + 4 < cap; c++) {
        if (*c == '\'' && !plain) {
            memcpy(cmd + len, "'\\''", 4);
            len += 4;
        } else {
            cmd[len++] = *c;
        }
    }
    if (!plain && len + 1 < cap) cmd[len++] = '\'';
    if (len + 1 >= cap) return -1;
    cmd[len] = '\0';
    *n = len;
    return 0;
}

/* Prints the `mtlab train` command that reruns this trial bit for bit: every
 * stored param as section.key=value (the sweep key names), and the stored
 * seeds.  A model hyper-parameter the trial's family does not declare was
 * not used by it (stores of trial identity 1 list every family's), so it is
 * left out; a param that is no sweep key of this mtlab means there is no
 * such command. */
static void print_reproduce(const store_trial_info_t *t, const char *blas_core) {
    char cmd[8192] = "build/mtlab train";
    size_t n = strlen(cmd);
    for (int r = 0; r < t->params->n_rows; r++) {
        const char *key = store_table_cell(t->params, r, 0);
        const char *value = store_table_cell(t->params, r, 1);
        const char *dot = key ? strchr(key, '.') : NULL;
        int k = -1;
        if (dot && value) {
            char section[64];
            snprintf(section, sizeof section, "%.*s", (int)(dot - key), key);
            k = sweep_key_find(section, dot + 1);
        }
        if (k < 0) {
            printf("\nreproduce: no `mtlab train` equivalent (%s = %s is not a key of this "
                   "mtlab)\n",
                   or_dash(key), or_dash(value));
            return;
        }
        int n_keys;
        const sweep_key_t *keys = sweep_keys(&n_keys);
        if (t->model && !sweep_key_declared(&keys[k], t->model)) continue;
        char setting[4200];
        snprintf(setting, sizeof setting, "%s=%s", key, value);
        if (append_word(cmd, sizeof cmd, &n, setting)) {
            printf("\nreproduce: no `mtlab train` equivalent (the command is too long)\n");
            return;
        }
    }
    snprintf(cmd + n, sizeof cmd - n, " --data-seed %" PRId64 " --init-seed %" PRId64, t->data_seed,
             t->init_seed);
    /* The kernel it ran with: `mtlab train` says so when it runs on another. */
    if (blas_core) {
        n = strlen(cmd);
        snprintf(cmd + n, sizeof cmd - n, " --expect-blas-core");
        n = strlen(cmd);
        if (append_word(cmd, sizeof cmd, &n, blas_core)) {
            printf("\nreproduce: no `mtlab train` equivalent (the command is too long)\n");
            return;
        }
    }
    printf("\nreproduce (same bits):\n  %s\n", cmd);
}

/* The provenance of the run that ran the trial (store/run_record.h), and
 * whether this machine runs the same OpenBLAS kernels. */
static void print_run(const store_run_info_t *r) {
    const char *v;
#define RUN(name) or_dash(store_run_value(r, name))
    printf("\nran by      run %s started %s on host %s", RUN("id"), RUN("started"), RUN("host"));
    if (store_run_value(r, "shard")) printf(", shard %s", RUN("shard"));
    printf(", %s worker(s)\n", RUN("jobs"));
    printf("  mtlab     %s%s, %s, real %s, SQLite %s\n", RUN("mtlab_version"),
           (v = store_run_value(r, "dirty")) && strcmp(v, "1") == 0 ? " (uncommitted changes)" : "",
           RUN("compiler"), RUN("real_type"), RUN("sqlite_version"));
    printf("  flags     %s\n", RUN("cflags"));
    printf("  BLAS      %s, core %s", RUN("blas_version"), RUN("blas_core"));
    if (store_run_value(r, "blas_core_forced")) printf(" (forced: %s)", RUN("blas_core_forced"));
    printf(", %s thread(s)\n", RUN("blas_threads"));
    printf("  CPU       %s\n", RUN("cpu_model"));
    const char *core = store_run_value(r, "blas_core");
    if (core && strcasecmp(core, provenance_blas_core()) != 0)
        printf("  note: this machine's OpenBLAS core is %s, the trial ran on %s: a rerun here may "
               "differ in the last bits (MTLAB_BLAS_CORE=%s forces that core where the CPU can run "
               "it)\n",
               provenance_blas_core(), core, core);
#undef RUN
}

static void print_info(const store_trial_info_t *t, const store_run_info_t *run) {
    printf("trial       %" PRId64 "\n", t->id);
    printf("experiment  %s (id %" PRId64 ")\n", or_dash(t->experiment), t->experiment_id);
    printf("model       %s\n", or_dash(t->model));
    printf("repeat      %d\n", t->repeat);
    printf("status      %s\n", or_dash(t->status));
    if (t->status && strcmp(t->status, "failed") == 0) {
        if (t->has_failed_step) printf("failed at   step %d\n", t->failed_step);
        printf("error       %s\n", or_dash(t->error));
    }
    printf("data_seed   %" PRId64 "\n", t->data_seed);
    printf("init_seed   %" PRId64 "\n", t->init_seed);
    if (t->host || t->has_pid) {
        printf("host        %s", or_dash(t->host));
        if (t->has_pid) printf(" (pid %" PRId64 ")", t->pid);
        printf("\n");
    }
    printf("started     %s\n", or_dash(t->started));
    printf("finished    %s\n", or_dash(t->finished));
    printf("seconds   ");
    print_seconds("data", t->seconds_data);
    print_seconds("train", t->seconds_train);
    print_seconds("gates", t->seconds_gates);
    print_seconds("store", t->seconds_store);
    printf("\n");
    if (t->has_n_params)
        printf("n_params    %" PRId64 "\n", t->n_params);
    else
        printf("n_params    -\n");

    printf("\nconfig:\n");
    int w = column_width(t->params, 0);
    for (int r = 0; r < t->params->n_rows; r++)
        printf("  %-*s = %s\n", w, store_table_cell(t->params, r, 0),
               or_dash(store_table_cell(t->params, r, 1)));

    if (t->metrics->n_rows > 0) {
        if (t->status && strcmp(t->status, "done") == 0)
            printf("\nfinal metrics (step %d):\n", t->final_step);
        else
            printf("\nmetrics at step %d (the last before it stopped):\n", t->final_step);
        w = column_width(t->metrics, 0);
        for (int r = 0; r < t->metrics->n_rows; r++) {
            const char *cell = store_table_cell(t->metrics, r, 1);
            double v;
            if (cell && parse_double(cell, &v) == 0)
                printf("  %-*s %.6g\n", w, store_table_cell(t->metrics, r, 0), v);
            else
                printf("  %-*s %s\n", w, store_table_cell(t->metrics, r, 0), or_dash(cell));
        }
    }
    if (t->gates->n_rows > 0) print_gates(t->gates);
    if (run->n) print_run(run);
    print_reproduce(t, run->n ? store_run_value(run, "blas_core") : NULL);
}

int cmd_show(int argc, char **argv) {
    const char *db = "results.db";
    opt_t opts[] = {
        {"db", OPT_STRING, &db, "FILE", "the SQLite store", 1, 0, 0},
    };
    const int n_opts = (int)(sizeof opts / sizeof opts[0]);
    err_t err = {0};
    const char *pos[1];
    int n_pos;
    int rc = cli_options(
        "show", "mtlab show TRIAL_ID [--db FILE]",
        "Shows one trial: experiment, model, repeat, status (and error), seeds, config\n"
        "params, timings, parameter count, final metrics and mean gate weights.",
        opts, n_opts, argc, argv, pos, 1, &n_pos);
    if (rc != CLI_CONTINUE) return rc;
    long long id;
    if (n_pos == 0) {
        err_set(&err, ERR_USAGE, "missing TRIAL_ID (see mtlab show --help)");
        return cli_fail("show", &err);
    }
    if (parse_long(pos[0], &id) || id < 1) {
        err_set(&err, ERR_USAGE, "'%s' is not a trial id (a positive integer)", pos[0]);
        return cli_fail("show", &err);
    }

    store_t *s;
    if (store_open(&s, db, STORE_READONLY, &err)) return cli_fail("show", &err);
    store_trial_info_t info;
    int status = 0;
    if (store_trial_info(s, (int64_t)id, &info, &err)) {
        status = cli_fail("show", &err);
    } else {
        store_run_info_t run;
        if (store_run_info(s, (int64_t)id, &run, &err)) {
            status = cli_fail("show", &err);
        } else {
            print_info(&info, &run);
            mem_free(run.owned);
        }
        store_trial_info_free(&info);
    }
    store_close(s);
    if (status == 0 && (fflush(stdout) != 0 || ferror(stdout))) {
        err_set(&err, ERR_FAIL, "cannot write to standard output");
        status = cli_fail("show", &err);
    }
    return status;
}
