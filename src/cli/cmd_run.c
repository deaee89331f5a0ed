/* cmd_run.c -- `mtlab run SWEEP.ini`: expand a sweep and run its missing
 * trials into the store with N worker processes (see sweep/runner.h). */
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/opts.h"
#include "cli/run_report.h"
#include "core/mem.h"
#include "store/store.h"
#include "sweep/specdiff.h"
#include "sweep/keys.h"
#include "sweep/runner.h"
#include "sweep/sweep.h"

/* The keys whose value differs between the points that have them (a model's
 * hyper-parameters are only its points'): what a reader of the dry-run
 * listing needs to tell trials apart.  Keys are the key table's strings, so
 * equal keys are equal pointers. */
typedef struct {
    const char *key, *first;
    bool varies;
} key_seen_t;

static int varying_keys(const sweep_t *sw, key_seen_t *seen, int cap) {
    int n = 0;
    for (int p = 0; p < sw->n_points; p++)
        for (int k = 0; k < sw->points[p].n_params; k++) {
            const sweep_param_t *param = &sw->points[p].params[k];
            int i = 0;
            while (i < n && seen[i].key != param->key)
                i++;
            if (i == n && n < cap)
                seen[n++] = (key_seen_t){param->key, param->value, false};
            else if (i < n && !seen[i].varies)
                seen[i].varies = strcmp(seen[i].first, param->value) != 0;
        }
    /* A key left out of a point whose family declares it is at its default
     * there (model.init, model.gate_bias are omitted at their defaults):
     * it varies if another point has it. */
    int n_table;
    const sweep_key_t *table = sweep_keys(&n_table);
    for (int i = 0; i < n; i++) {
        const sweep_key_t *key = NULL;
        for (int t = 0; t < n_table && !key; t++)
            if (strcmp(table[t].param, seen[i].key) == 0) key = &table[t];
        for (int p = 0; key && p < sw->n_points && !seen[i].varies; p++) {
            bool has = false;
            for (int k = 0; k < sw->points[p].n_params && !has; k++)
                has = sw->points[p].params[k].key == seen[i].key;
            seen[i].varies = !has && sweep_key_declared(key, sw->points[p].spec.model);
        }
    }
    return n;
}

static bool is_varying(const key_seen_t *seen, int n, const char *key) {
    for (int i = 0; i < n; i++)
        if (seen[i].key == key) return seen[i].varies;
    return false;
}

static void dry_run(const sweep_t *sw, int shard, int shards) {
    printf("# experiment %s: %d points x %d repeats = %d trials\n", sw->name, sw->n_points,
           sw->repeats, sw->n_trials);
    if (shards > 1)
        printf("# shard %d/%d: %d trials\n", shard, shards,
               runner_shard_size(sw->n_trials, shard, shards));
    if (sw->overrides && sw->overrides[0]) {
        printf("# overrides:");
        for (const char *o = sw->overrides; *o;) {
            const char *nl = strchr(o, '\n');
            int len = nl ? (int)(nl - o) : (int)strlen(o);
            printf(" %.*s", len, o);
            o += len + (nl != NULL);
        }
        printf("\n");
    }
    if (sw->random)
        printf("# draws: %s (%s)\n", sweep_draws_name(sw->draws),
               sw->draws == SWEEP_DRAWS_PAIRED
                   ? "every grid point and model gets the same sampled values"
                   : "each grid point and model draws its own");
    key_seen_t seen[SWEEP_MAX_KEYS];
    const int n_seen = varying_keys(sw, seen, SWEEP_MAX_KEYS);
    printf("%6s %6s %-14s %20s %20s  %s\n", "index", "repeat", "model", "data_seed", "init_seed",
           "varying keys");
    for (int i = 0; i < sw->n_trials; i++) {
        if (!runner_in_shard(i, shard, shards)) continue;
        int point, repeat;
        trial_spec_t spec;
        sweep_trial(sw, i, &point, &repeat, &spec);
        const sweep_point_t *pt = &sw->points[point];
        printf("%6d %6d %-14s %20" PRIu64 " %20" PRIu64 " ", i, repeat, spec.model, spec.data_seed,
               spec.init_seed);
        for (int k = 0; k < pt->n_params; k++)
            if (strcmp(pt->params[k].key, "model.name") != 0 &&
                is_varying(seen, n_seen, pt->params[k].key))
                printf(" %s=%s", pt->params[k].key, pt->params[k].value);
        printf("\n");
    }
}

/* Loads the sweep with its overrides.  A file with distributions that does
 * not say how to draw them follows the rule stored with its experiment, when
 * the store has it (experiments stored before paired draws existed keep
 * drawing independently, so their file keeps expanding to their trials). */
static int load_sweep(const char *path, const char *scale, const char *const *overrides,
                      int n_overrides, const char *db, sweep_t **sw, err_t *err) {
    sweep_opts_t so = {.scale = scale, .overrides = overrides, .n_overrides = n_overrides};
    if (sweep_load_opts(path, &so, sw, err)) return -1;
    if (!(*sw)->random || (*sw)->draws_given || access(db, F_OK) != 0) return 0;
    store_t *st;
    err_t ignored = {0};
    if (store_open(&st, db, STORE_READONLY, &ignored)) return 0; /* the run says why */
    store_experiment_info_t info;
    int found = store_experiment_find(st, (*sw)->name, &info, &ignored);
    store_close(st);
    if (found != 1) return 0;
    so.draws = sweep_draws_parse(info.draws) == SWEEP_DRAWS_INDEPENDENT ? SWEEP_DRAWS_INDEPENDENT
                                                                        : SWEEP_DRAWS_PAIRED;
    store_experiment_info_free(&info);
    if (so.draws == (*sw)->draws) return 0;
    sweep_free(*sw);
    *sw = NULL;
    return sweep_load_opts(path, &so, sw, err);
}

/* (config, repeat) of a stored trial, sorted for lookups. */
typedef struct {
    char *config;
    int repeat;
    int64_t id;
    char status[8];
    char model[32];
} stored_trial_t;

static int stored_cmp(const void *a, const void *b) {
    const stored_trial_t *x = a, *y = b;
    int c = strcmp(x->config, y->config);
    return c ? c : (x->repeat > y->repeat) - (x->repeat < y->repeat);
}

/* What --dry-run says about the store: the stored spec against this one
 * (a line diff), and which trials are stored, new, or stored but no longer
 * described by this file. */
static void dry_run_store(const sweep_t *sw, const char *db, int shard, int shards) {
    if (access(db, F_OK) != 0) {
        printf("# store %s: not there yet; every trial is new\n", db);
        return;
    }
    store_t *st;
    err_t err = {0};
    if (store_open(&st, db, STORE_READONLY, &err)) {
        printf("# store %s: cannot read it (%s)\n", db, err.msg);
        return;
    }
    store_experiment_info_t info;
    int found = store_experiment_find(st, sw->name, &info, &err);
    if (found != 1) {
        printf("# store %s: no experiment '%s' yet; every trial is new\n", db, sw->name);
        store_close(st);
        return;
    }
    int changed = 0;
    char *diff = specdiff_text(info.spec, sw->text, &changed);
    if (changed == 0)
        printf("# store %s: experiment '%s' has this spec\n", db, sw->name);
    else {
        printf("# store %s: experiment '%s' has another spec (%d lines differ; mtlab run "
               "refuses it without --replace-spec):\n",
               db, sw->name, changed);
        for (const char *line = diff; line && *line;) {
            const char *nl = strchr(line, '\n');
            int len = nl ? (int)(nl - line) : (int)strlen(line);
            printf("#   %.*s\n", len, line);
            line += len + (nl != NULL);
        }
    }
    mem_free(diff);
    /* The stored trials, sorted by (config, repeat). */
    sqlite3_stmt *q;
    stored_trial_t *rows = NULL;
    int n = 0, cap = 0;
    if (sqlite3_prepare_v2(store_db(st),
                           "SELECT config, repeat, id, status, model FROM trial WHERE "
                           "experiment_id = ?",
                           -1, &q, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(q, 1, info.id);
        while (sqlite3_step(q) == SQLITE_ROW) {
            if (n == cap) {
                cap = cap ? 2 * cap : 256;
                stored_trial_t *grown = mem_realloc(rows, sizeof *rows * (size_t)cap);
                if (!grown) break;
                rows = grown;
            }
            stored_trial_t *r = &rows[n];
            r->config = mem_strdup((const char *)sqlite3_column_text(q, 0));
            if (!r->config) break;
            r->repeat = sqlite3_column_int(q, 1);
            r->id = sqlite3_column_int64(q, 2);
            snprintf(r->status, sizeof r->status, "%s", (const char *)sqlite3_column_text(q, 3));
            snprintf(r->model, sizeof r->model, "%s", (const char *)sqlite3_column_text(q, 4));
            n++;
        }
        sqlite3_finalize(q);
    }
    if (n > 1) qsort(rows, (size_t)n, sizeof *rows, stored_cmp);
    bool *in_file = mem_calloc((size_t)n + 1, sizeof *in_file);
    int stored = 0, fresh = 0, done = 0, total = 0;
    for (int i = 0; in_file && i < sw->n_trials; i++) {
        if (!runner_in_shard(i, shard, shards)) continue;
        int point, repeat;
        sweep_trial(sw, i, &point, &repeat, NULL);
        stored_trial_t key = {.config = sw->points[point].config, .repeat = repeat};
        stored_trial_t *hit = n ? bsearch(&key, rows, (size_t)n, sizeof *rows, stored_cmp) : NULL;
        total++;
        if (!hit) {
            fresh++;
            continue;
        }
        in_file[hit - rows] = true;
        stored++;
        done += strcmp(hit->status, "done") == 0;
    }
    int removed = 0;
    for (int i = 0; in_file && i < n; i++)
        removed += !in_file[i];
    printf("# trials of this file%s: %d stored (%d done), %d new; %d stored trials are not in "
           "this file%s\n",
           shards > 1 ? " (this shard)" : "", stored, done, fresh, removed,
           removed ? " (kept; mtlab rm removes them):" : "");
    int shown = 0;
    for (int i = 0; in_file && i < n && shown < 10; i++)
        if (!in_file[i]) {
            printf("#   not in this file: trial %" PRId64 " %s repeat %d (%s)\n", rows[i].id,
                   rows[i].model, rows[i].repeat, rows[i].status);
            shown++;
        }
    if (removed > shown) printf("#   ... and %d more\n", removed - shown);
    (void)total;
    for (int i = 0; i < n; i++)
        mem_free(rows[i].config);
    mem_free(rows);
    mem_free(in_file);
    store_experiment_info_free(&info);
    store_close(st);
}
/* "8G", "512M", "1.5GiB", "100000000" (bytes) -> bytes.  -1 on junk. */
static int parse_size(const char *text, size_t *out) {
    char *end;
    double v = strtod(text, &end);
    if (end == text || !(v > 0)) return -1;
    double unit = 1;
    switch (*end) {
    case 'k':
    case 'K':
        unit = 1024.0;
        end++;
        break;
    case 'm':
    case 'M':
        unit = 1048576.0;
        end++;
        break;
    case 'g':
    case 'G':
        unit = 1073741824.0;
        end++;
        break;
    case 't':
    case 'T':
        unit = 1099511627776.0;
        end++;
        break;
    default:
        break;
    }
    if (unit > 1 && (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0)) end += strlen(end);
    if (*end != '\0' || v * unit >= 1.8e19) return -1;
    *out = (size_t)(v * unit);
    return 0;
}

/* "I/N" with 0 <= I < N -> shard, shards.  -1 on junk. */
static int parse_shard(const char *text, int *shard, int *shards) {
    const char *slash = strchr(text, '/');
    if (!slash || slash == text) return -1;
    char first[32];
    size_t len = (size_t)(slash - text);
    if (len >= sizeof first) return -1;
    memcpy(first, text, len);
    first[len] = '\0';
    long long i, n;
    if (parse_long(first, &i) || parse_long(slash + 1, &n)) return -1;
    if (n < 1 || n > 1000000 || i < 0 || i >= n) return -1;
    *shard = (int)i;
    *shards = (int)n;
    return 0;
}

/* The closing line on stdout, and what the user can do about trials this run
 * could not take. */
static void print_summary(const sweep_t *sw, const runner_summary_t *sum) {
    const store_counts_t *c = &sum->counts;
    printf("%s: %d trials (%d new): %d done, %d failed, %d pending; this run trained %d "
           "(%d failed) in %.1f s",
           sw->name, sum->total, sum->added, c->done, c->failed, c->pending + c->running,
           sum->trained, sum->failed, sum->seconds);
    if (sum->trained > 0 && sum->seconds_trials > 0)
        printf(", %.2f trials/s, store %.2f%% of trial time", sum->trained / sum->seconds,
               100.0 * sum->seconds_store / sum->seconds_trials);
    printf("\n");
    if (sum->retried)
        printf("  %d failed trials were put back to pending (--retry-failed)\n", sum->retried);
    if (sum->released)
        printf("  %d running trials were put back to pending (--release-stale)\n", sum->released);
    if (c->unclaimable)
        printf("  %d pending trials are not described by this file (an earlier or later spec of "
               "the experiment): a runner of their file runs them\n",
               c->unclaimable);
    if (c->running_elsewhere)
        printf("  %d trials are running on another host; if no runner is alive there any "
               "more, rerun with --release-stale\n",
               c->running_elsewhere);
}

int cmd_run(int argc, char **argv) {
    const char *db = "results.db", *scale = NULL, *max_memory = NULL, *shard_text = NULL;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int jobs = cores > 0 ? (int)cores : 1, limit = 0;
    bool dry = false, replace = false, quiet = false, retry = false, release = false;
    opt_t opts[] = {
        {"db", OPT_STRING, &db, "FILE", "SQLite store to write (created if missing)", 1, 0, 0},
        {"jobs", OPT_INT, &jobs, "N", "worker processes (default: the number of cores)", 1, 1024,
         0},
        {"limit", OPT_INT, &limit, "N", "run at most N trials in this invocation (0: all)", 0, 1e9,
         0},
        {"dry-run", OPT_FLAG, &dry, NULL,
         "print the expanded trials without training (and check their memory)", 1, 0, 0},
        {"replace-spec", OPT_FLAG, &replace, NULL,
         "continue an experiment whose sweep file changed (stores the new text; keeps old trials)",
         1, 0, 0},
        {"retry-failed", OPT_FLAG, &retry, NULL,
         "put the experiment's failed trials back to pending (their partial records are "
         "deleted) and run them again",
         1, 0, 0},
        {"release-stale", OPT_FLAG, &release, NULL,
         "put back to pending every running trial whose runner is not alive on this host, "
         "those of OTHER hosts included: only when no runner of the experiment runs elsewhere",
         1, 0, 0},
        {"max-memory", OPT_STRING, &max_memory, "SIZE",
         "memory all workers together may use, e.g. 8G (default: the machine's)", 1, 0, 0},
        {"scale", OPT_STRING, &scale, "NAME",
         "apply the file's [scale.NAME] overrides (e.g. quick: fewer repeats and steps)", 1, 0, 0},
        {"shard", OPT_STRING, &shard_text, "I/N",
         "run only shard I of N (0 <= I < N): the trials whose index (--dry-run) is I modulo N; "
         "every trial is in exactly one shard, and mtlab merge joins the shards' stores",
         1, 0, 0},
        {"quiet", OPT_FLAG, &quiet, NULL,
         "no progress (a redrawn line on a terminal, else a line every 30 s)", 1, 0, 0},
    };
    const int n_opts = (int)(sizeof opts / sizeof opts[0]);
    err_t err = {0};
    const char *pos[1 + SWEEP_MAX_OVERRIDES + 1];
    int n_pos;
    int rc = cli_options(
        "run", "mtlab run SWEEP.ini [SECTION.KEY=VALUE[,VALUE...] ...] [OPTIONS]",
        "Expands the sweep and trains every trial not yet in the store, with N\n"
        "worker processes (one BLAS thread each).  Re-running the same file resumes:\n"
        "finished trials are kept, trials left running by a killed run are redone.\n"
        "Ctrl-C (SIGINT), SIGTERM and SIGHUP stop the workers and put their trials back\n"
        "to pending.  Arguments SECTION.KEY=VALUE[,VALUE...] override the file's value of\n"
        "that key (a list makes a grid: train.lr=0.001,0.01; model.NAME.KEY=... sets\n"
        "[model.NAME]); they are stored with the experiment's spec, so a resume needs\n"
        "the same ones.  Exit status: 0 ok, 1 failure, 2 bad input, 128+N stopped by signal N.",
        opts, n_opts, argc, argv, pos, 1 + SWEEP_MAX_OVERRIDES + 1, &n_pos);
    if (rc != CLI_CONTINUE) return rc;
    if (n_pos < 1) {
        err_set(&err, ERR_USAGE, "expected one sweep file (see --help)");
        return cli_fail("run", &err);
    }
    size_t max_bytes = 0;
    if (max_memory && parse_size(max_memory, &max_bytes)) {
        err_set(&err, ERR_USAGE, "--max-memory %s: expected a size such as 8G, 512M or 2000000",
                max_memory);
        return cli_fail("run", &err);
    }
    int shard = 0, shards = 1;
    if (shard_text && parse_shard(shard_text, &shard, &shards)) {
        err_set(&err, ERR_USAGE, "--shard %s: expected I/N with 0 <= I < N, e.g. 0/4", shard_text);
        return cli_fail("run", &err);
    }
    sweep_t *sw;
    if (n_pos > 1 + SWEEP_MAX_OVERRIDES) {
        err_set(&err, ERR_USAGE, "%d overrides: at most %d", n_pos - 1, SWEEP_MAX_OVERRIDES);
        return cli_fail("run", &err);
    }
    if (load_sweep(pos[0], scale, pos + 1, n_pos - 1, db, &sw, &err)) return cli_fail("run", &err);
    if (dry) {
        int fit = jobs;
        size_t largest;
        if (runner_check_memory(sw, max_bytes, &fit, &largest, &err)) {
            sweep_free(sw);
            return cli_fail("run", &err);
        }
        dry_run(sw, shard, shards);
        dry_run_store(sw, db, shard, shards);
        printf("# largest trial: about %.1f MiB; %d of %d workers fit in memory\n",
               largest / 1048576.0, fit, jobs);
        sweep_free(sw);
        return 0;
    }
    /* On a log, a progress line every RUN_PROGRESS_PLAIN_SECONDS, or every
     * $MTLAB_PROGRESS_EVERY seconds. */
    double every = RUN_PROGRESS_PLAIN_SECONDS;
    const char *every_text = getenv("MTLAB_PROGRESS_EVERY");
    if (every_text) {
        char *end;
        every = strtod(every_text, &end);
        if (end == every_text || *end || !(every > 0) || every > 1e6) {
            err_set(&err, ERR_USAGE,
                    "MTLAB_PROGRESS_EVERY=%s: expected the seconds between progress lines (> 0)",
                    every_text);
            sweep_free(sw);
            return cli_fail("run", &err);
        }
    }
    run_report_t report = {.cmd = "run",
                           .sw = sw,
                           .total = runner_shard_size(sw->n_trials, shard, shards),
                           .progress = !quiet,
                           .plain = !isatty(2)};
    runner_opts_t ro = {.db_path = db,
                        .jobs = jobs,
                        .limit = limit,
                        .replace_spec = replace,
                        .retry_failed = retry,
                        .release_stale = release,
                        .max_memory = max_bytes,
                        .shard = shard,
                        .shards = shards,
                        .progress = report.progress,
                        /* a log (nohup, Slurm) gets a line every 30 s */
                        .progress_every = report.plain ? every : 0,
                        .on_event = run_report_event,
                        .ctx = &report};
    runner_summary_t sum;
    int status = runner_run(sw, &ro, &sum, &err);
    run_report_end(&report);
    if (status == 0 || sum.total > 0) print_summary(sw, &sum);
    sweep_free(sw);
    fflush(stdout);
    if (status) {
        int exit_status = cli_fail("run", &err);
        return sum.interrupted ? 128 + sum.interrupted : exit_status;
    }
    return 0;
}
