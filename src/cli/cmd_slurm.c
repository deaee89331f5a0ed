/* cmd_slurm.c -- `mtlab slurm SWEEP --out DIR`: a sweep as a Slurm job array
 * (SPEC §10).  Task I of the array runs `mtlab run --shard I/N` into its own
 * store DIR/shard-I.db (SQLite is never shared between nodes); `mtlab merge`
 * joins the shards afterwards.
 *
 * DIR holds everything of one cluster sweep:
 *   sweep.ini          the sweep file as given (the tasks run this copy, so
 *                      editing the original does not change a running sweep)
 *   mtlab-slurm.conf   tasks=N and scale=NAME: fixed at the first call, since
 *                      the trial -> shard map depends on N
 *   job.sbatch         the job-array script (rewritten at each call)
 *   jobs               the ids of the jobs submitted, one a line
 *   shard-I.db         the shards' stores; slurm-JOB_I.out their logs
 * A second call submits only the shards that are not complete and not
 * queued or running (squeue): that is the resume, after a failure, a
 * timeout or an scancel.  `mtlab slurm --status DIR` shows each shard's
 * progress from its store. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/opts.h"
#include "core/files.h"
#include "core/mem.h"
#include "store/query.h"
#include "store/store.h"
#include "sweep/runner.h"
#include "sweep/sweep.h"

#define SLURM_MAX_TASKS 100000
#define SLURM_PATH_MAX  4096

/* ---- small file helpers ------------------------------------------------- */

/* The whole file (mem_free), or NULL. */
static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, len = 0;
    char *text = mem_alloc(cap);
    size_t got;
    while (text && (got = fread(text + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (cap - len < 2) {
            char *grown = mem_realloc(text, cap * 2);
            if (!grown) {
                mem_free(text);
                text = NULL;
                break;
            }
            text = grown;
            cap *= 2;
        }
    }
    fclose(f);
    if (text) text[len] = '\0';
    return text;
}

static int write_text(const char *path, const char *text, err_t *err) {
    FILE *f = fopen(path, "w");
    if (!f) return err_set(err, ERR_FAIL, "cannot write %s: %s", path, strerror(errno));
    fputs(text, f);
    if (fclose(f) != 0) return err_set(err, ERR_FAIL, "cannot write %s: %s", path, strerror(errno));
    return 0;
}

/* Appends `word` quoted for sh ('...', '\'' for a quote) to buf. */
static void sh_quote(char *buf, size_t cap, const char *word) {
    size_t n = strlen(buf);
    if (n + 1 < cap) buf[n++] = '\'';
    for (const char *c = word; *c && n + 5 < cap; c++) {
        if (*c == '\'') {
            memcpy(buf + n, "'\\''", 4);
            n += 4;
        } else
            buf[n++] = *c;
    }
    if (n + 1 < cap) buf[n++] = '\'';
    buf[n] = '\0';
}

/* ---- the directory's settings --------------------------------------------- */

typedef struct {
    char dir[SLURM_PATH_MAX];        /* absolute */
    char sweep[SLURM_PATH_MAX + 32]; /* DIR/sweep.ini */
    int tasks;
    char scale[128]; /* "" when none */
} setup_t;

static void path_in(char *out, size_t size, const char *dir, const char *name) {
    snprintf(out, size, "%s/%s", dir, name);
}

/* Reads DIR/mtlab-slurm.conf: 0, 1 when absent, -1 on junk. */
static int read_conf(setup_t *st, err_t *err) {
    char path[SLURM_PATH_MAX + 32];
    path_in(path, sizeof path, st->dir, "mtlab-slurm.conf");
    char *text = read_text(path);
    if (!text) return 1;
    st->tasks = 0;
    st->scale[0] = '\0';
    int line_no = 0;
    for (char *save, *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        line_no++;
        long long v;
        if (strncmp(line, "tasks=", 6) == 0 && parse_long(line + 6, &v) == 0 && v >= 1 &&
            v <= SLURM_MAX_TASKS)
            st->tasks = (int)v;
        else if (strncmp(line, "scale=", 6) == 0)
            snprintf(st->scale, sizeof st->scale, "%s", line + 6);
        else {
            mem_free(text);
            return err_set(err, ERR_FAIL, "%s:%d: not a line mtlab slurm wrote", path, line_no);
        }
    }
    mem_free(text);
    if (st->tasks == 0) return err_set(err, ERR_FAIL, "%s: no tasks= line", path);
    return 0;
}

/* ---- shard progress ---------------------------------------------------- */

typedef struct {
    bool exists;
    int trials, done, failed, pending, running;
} shard_state_t;

static int count_row(void *ctx, const store_row_t *row, err_t *err) {
    shard_state_t *s = ctx;
    long long v[5] = {0};
    for (int c = 0; c < 5 && c < row->n_cols; c++)
        if (row->cells[c]) parse_long(row->cells[c], &v[c]);
    s->trials = (int)v[0];
    s->done = (int)v[1];
    s->failed = (int)v[2];
    s->pending = (int)v[3];
    s->running = (int)v[4];
    return 0;
}

/* The trials of experiment `name` in DIR/shard-I.db. */
static int shard_state(const setup_t *st, const char *name, int shard, shard_state_t *out,
                       err_t *err) {
    memset(out, 0, sizeof *out);
    char path[SLURM_PATH_MAX + 32], file[32];
    snprintf(file, sizeof file, "shard-%d.db", shard);
    path_in(path, sizeof path, st->dir, file);
    if (access(path, F_OK) != 0) return 0;
    out->exists = true;
    store_t *s;
    if (store_open(&s, path, STORE_READONLY, err)) return -1;
    char quoted[512] = "";
    size_t n = 0;
    for (const char *c = name; *c && n + 3 < sizeof quoted; c++) {
        if (*c == '\'') quoted[n++] = '\'';
        quoted[n++] = *c;
    }
    quoted[n] = '\0';
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT count(*), coalesce(sum(t.status = 'done'), 0), coalesce(sum(t.status = "
             "'failed'), 0), coalesce(sum(t.status = 'pending'), 0), coalesce(sum(t.status = "
             "'running'), 0) FROM trial t JOIN experiment e ON e.id = t.experiment_id WHERE "
             "e.name = '%s'",
             quoted);
    int rc = store_query_each(s, sql, NULL, count_row, out, err);
    store_close(s);
    if (rc) err_prefix(err, "%s", path);
    return rc;
}

static bool shard_complete(const shard_state_t *s, int size) {
    return s->exists && s->trials == size && s->pending == 0 && s->running == 0;
}

/* ---- Slurm ------------------------------------------------------------- */

/* Runs argv (PATH lookup) with stdout into out[cap]; returns the exit status,
 * or -1 when it cannot be started. */
static int run_tool(const char *const *argv, char *out, size_t cap) {
    int fds[2];
    if (pipe(fds) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    size_t len = 0;
    ssize_t got;
    while ((got = read(fds[0], out + len, cap - len - 1)) > 0)
        if ((len += (size_t)got) + 1 >= cap) break;
    out[len] = '\0';
    close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status)) return -1;
    return WEXITSTATUS(status) == 127 ? -1 : WEXITSTATUS(status);
}

/* Marks live[i] for every array task of this directory's jobs that Slurm
 * still has queued or running (squeue).  Returns -1 when squeue cannot
 * tell (not installed, no controller): then nothing is marked. */
static int live_tasks(const setup_t *st, bool *live) {
    char path[SLURM_PATH_MAX + 32];
    path_in(path, sizeof path, st->dir, "jobs");
    char *jobs = read_text(path);
    if (!jobs) return 0;
    char list[4096] = "";
    for (char *save, *line = strtok_r(jobs, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        if (strlen(list) + strlen(line) + 2 < sizeof list)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", list[0] ? "," : "",
                     line);
    mem_free(jobs);
    if (!list[0]) return 0;
    const size_t cap = (size_t)1 << 20;
    char *out = mem_alloc(cap);
    if (!out) return -1;
    const char *argv[] = {"squeue", "-h", "-r", "-o", "%K", "-j", list, NULL};
    if (run_tool(argv, out, cap) != 0) {
        mem_free(out);
        return -1;
    }
    for (char *save, *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        long long i;
        if (parse_long(line, &i) == 0 && i >= 0 && i < st->tasks) live[i] = true;
    }
    mem_free(out);
    return 0;
}

/* "0-3,5,7-9": the indices i with want[i], as ranges. */
static void array_list(const bool *want, int n, char *out, size_t cap) {
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (!want[i]) continue;
        int j = i;
        while (j + 1 < n && want[j + 1])
            j++;
        size_t len = strlen(out);
        if (j > i)
            snprintf(out + len, cap - len, "%s%d-%d", len ? "," : "", i, j);
        else
            snprintf(out + len, cap - len, "%s%d", len ? "," : "", i);
        i = j;
    }
}

typedef struct {
    int parallel, cpus;
    const char *time, *partition;
} job_opts_t;

/* Writes DIR/job.sbatch. */
static int write_script(const setup_t *st, const sweep_t *sw, const job_opts_t *jo, err_t *err) {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return err_set(err, ERR_FAIL, "cannot find the mtlab binary (/proc/self/exe)");
    exe[n] = '\0';
    size_t cap = 4 * SLURM_PATH_MAX + 4096;
    char *s = mem_alloc(cap);
    if (!s) return err_set(err, ERR_FAIL, "out of memory");
    snprintf(s, cap,
             "#!/bin/sh\n"
             "# Written by mtlab slurm for experiment %s: array task I runs shard I/%d of\n"
             "# the sweep into its own store shard-I.db (SQLite is never shared between\n"
             "# nodes); a resubmitted task resumes its shard.  Then:\n"
             "#   mtlab merge OUT.db %s/shard-*.db\n"
             "#SBATCH --job-name=mtlab-%s\n"
             "#SBATCH --array=0-%d",
             sw->name, st->tasks, st->dir, sw->name, st->tasks - 1);
    size_t len = strlen(s);
    if (jo->parallel > 0) snprintf(s + len, cap - len, "%%%d", jo->parallel);
    len = strlen(s);
    snprintf(s + len, cap - len,
             "\n#SBATCH --cpus-per-task=%d\n#SBATCH --output=%s/slurm-%%A_%%a.out\n"
             "#SBATCH --requeue\n",
             jo->cpus, st->dir);
    len = strlen(s);
    if (jo->time) snprintf(s + len, cap - len, "#SBATCH --time=%s\n", jo->time);
    len = strlen(s);
    if (jo->partition) snprintf(s + len, cap - len, "#SBATCH --partition=%s\n", jo->partition);
    len = strlen(s);
    snprintf(s + len, cap - len,
             "# One BLAS thread per worker; --release-stale: a shard runs in one task at a\n"
             "# time, so trials left running belong to a task that is gone.\n"
             "export OPENBLAS_NUM_THREADS=1\n"
             "exec ");
    sh_quote(s, cap, exe);
    len = strlen(s);
    snprintf(s + len, cap - len, " run ");
    sh_quote(s, cap, st->sweep);
    len = strlen(s);
    snprintf(s + len, cap - len, " --shard \"$SLURM_ARRAY_TASK_ID/%d\" --db ", st->tasks);
    char db[SLURM_PATH_MAX + 64];
    snprintf(db, sizeof db, "%s/shard-", st->dir);
    sh_quote(s, cap, db);
    len = strlen(s);
    snprintf(s + len, cap - len, "\"$SLURM_ARRAY_TASK_ID.db\" --jobs %d --release-stale --quiet",
             jo->cpus);
    if (st->scale[0]) {
        len = strlen(s);
        snprintf(s + len, cap - len, " --scale ");
        sh_quote(s, cap, st->scale);
    }
    len = strlen(s);
    snprintf(s + len, cap - len, "\n");
    char path[SLURM_PATH_MAX + 32];
    path_in(path, sizeof path, st->dir, "job.sbatch");
    int rc = write_text(path, s, err);
    mem_free(s);
    return rc;
}

/* ---- the two modes -------------------------------------------------------- */

/* `mtlab slurm --status DIR`: a line per shard; 0, or 1 when not all are
 * complete (so scripts can wait on it). */
static int status_mode(const char *dir_arg) {
    err_t err = {0};
    setup_t st = {0};
    if (!realpath(dir_arg, st.dir)) {
        err_set(&err, ERR_USAGE, "--status %s: no such directory", dir_arg);
        return cli_fail("slurm", &err);
    }
    int rc = read_conf(&st, &err);
    if (rc) {
        if (rc > 0)
            err_set(&err, ERR_USAGE, "%s: not a directory of mtlab slurm (no mtlab-slurm.conf)",
                    st.dir);
        return cli_fail("slurm", &err);
    }
    path_in(st.sweep, sizeof st.sweep, st.dir, "sweep.ini");
    sweep_t *sw;
    if (sweep_load_scaled(st.sweep, st.scale[0] ? st.scale : NULL, &sw, &err))
        return cli_fail("slurm", &err);
    bool *live = mem_calloc((size_t)st.tasks, sizeof *live);
    if (!live) {
        sweep_free(sw);
        err_set(&err, ERR_FAIL, "out of memory");
        return cli_fail("slurm", &err);
    }
    bool known = live_tasks(&st, live) == 0;
    printf("%s: experiment %s, %d trials in %d shards\n", st.dir, sw->name, sw->n_trials, st.tasks);
    printf("%5s %7s %6s %6s %7s %7s  %s\n", "shard", "trials", "done", "failed", "pending",
           "running", "state");
    int complete = 0, status = 0;
    for (int i = 0; i < st.tasks; i++) {
        shard_state_t s;
        if (shard_state(&st, sw->name, i, &s, &err)) {
            status = cli_fail("slurm", &err);
            break;
        }
        int size = runner_shard_size(sw->n_trials, i, st.tasks);
        const char *state = shard_complete(&s, size) ? "complete"
                            : live[i]                ? "queued or running"
                            : s.exists               ? "incomplete"
                                                     : "not started";
        complete += shard_complete(&s, size);
        printf("%5d %7d %6d %6d %7d %7d  %s\n", i, size, s.done, s.failed,
               size - s.done - s.failed - s.running, s.running, state);
    }
    if (status == 0) {
        if (!known) printf("(squeue cannot tell which tasks are queued or running)\n");
        if (complete == st.tasks)
            printf("all %d shards complete: mtlab merge OUT.db %s/shard-*.db\n", st.tasks, st.dir);
        else
            printf("%d of %d shards complete\n", complete, st.tasks);
    }
    mem_free(live);
    sweep_free(sw);
    if (status) return status;
    return complete == st.tasks ? 0 : 1;
}

int cmd_slurm(int argc, char **argv) {
    const char *out_dir = NULL, *status_dir = NULL, *scale = NULL, *time_limit = NULL,
               *partition = NULL;
    int tasks = 0, parallel = 0, cpus = 1;
    bool dry = false;
    opt_t opts[] = {
        {"out", OPT_STRING, &out_dir, "DIR",
         "directory of the shards' stores, logs and job script (created)", 1, 0, 0},
        {"tasks", OPT_INT, &tasks, "N",
         "array tasks = shards (default: 16, at most the number of trials; fixed at the first "
         "call)",
         1, SLURM_MAX_TASKS, 0},
        {"parallel", OPT_INT, &parallel, "K",
         "at most K tasks at once (--array=...%K; 0: no limit)", 0, SLURM_MAX_TASKS, 0},
        {"cpus-per-task", OPT_INT, &cpus, "C", "CPUs per task = worker processes (--jobs C)", 1,
         1024, 0},
        {"time", OPT_STRING, &time_limit, "TIME", "time limit per task (sbatch --time)", 1, 0, 0},
        {"partition", OPT_STRING, &partition, "NAME", "Slurm partition (sbatch --partition)", 1, 0,
         0},
        {"scale", OPT_STRING, &scale, "NAME", "the sweep file's [scale.NAME] overrides", 1, 0, 0},
        {"dry-run", OPT_FLAG, &dry, NULL,
         "write the job script, print the sbatch command, submit nothing", 1, 0, 0},
        {"status", OPT_STRING, &status_dir, "DIR",
         "show each shard's progress (exit 0 when all are complete, 1 otherwise)", 1, 0, 0},
    };
    const int n_opts = (int)(sizeof opts / sizeof opts[0]);
    err_t err = {0};
    const char *pos[1];
    int n_pos;
    int rc = cli_options(
        "slurm", "mtlab slurm SWEEP.ini --out DIR [OPTIONS] | mtlab slurm --status DIR",
        "Runs a sweep on a Slurm cluster as a job array: task I runs shard I of N\n"
        "(mtlab run --shard I/N) into its own store DIR/shard-I.db.  Writes\n"
        "DIR/job.sbatch and submits it with sbatch.  Calling it again submits only the\n"
        "shards that are not complete and not queued or running: the resume after a\n"
        "failure, timeout or scancel.  When all are complete:\n"
        "  mtlab merge OUT.db DIR/shard-*.db\n"
        "DIR must be on a filesystem every node sees (as must mtlab); each shard's\n"
        "store has one writer at a time.",
        opts, n_opts, argc, argv, pos, 1, &n_pos);
    if (rc != CLI_CONTINUE) return rc;
    if (status_dir) {
        if (n_pos || out_dir) {
            err_set(&err, ERR_USAGE, "--status DIR takes no sweep file and no --out");
            return cli_fail("slurm", &err);
        }
        return status_mode(status_dir);
    }
    if (n_pos != 1 || !out_dir) {
        err_set(&err, ERR_USAGE, "expected SWEEP.ini and --out DIR (see --help)");
        return cli_fail("slurm", &err);
    }
    char *text = read_text(pos[0]);
    if (!text) {
        err_set(&err, ERR_USAGE, "cannot read %s: %s", pos[0], strerror(errno));
        return cli_fail("slurm", &err);
    }
    sweep_t *sw = NULL;
    bool *want = NULL, *live = NULL;
    int status = 1;
    if (sweep_load_scaled(pos[0], scale, &sw, &err)) goto fail;
    if (files_make_dirs(out_dir, &err)) goto fail;
    setup_t st = {0};
    if (!realpath(out_dir, st.dir)) {
        err_set(&err, ERR_FAIL, "%s: %s", out_dir, strerror(errno));
        goto fail;
    }
    path_in(st.sweep, sizeof st.sweep, st.dir, "sweep.ini");
    int conf = read_conf(&st, &err);
    if (conf < 0) goto fail;
    if (conf == 0) {
        /* A directory set up before: same sweep text, tasks and scale. */
        char *old = read_text(st.sweep);
        bool same = old && strcmp(old, text) == 0;
        mem_free(old);
        if (!same) {
            err_set(&err, ERR_USAGE,
                    "%s holds the shards of another sweep file (%s differs from %s): use "
                    "another --out",
                    st.dir, st.sweep, pos[0]);
            goto fail;
        }
        if (tasks && tasks != st.tasks) {
            err_set(&err, ERR_USAGE,
                    "%s was set up with --tasks %d: which trials a shard holds depends on it; "
                    "use another --out for %d tasks",
                    st.dir, st.tasks, tasks);
            goto fail;
        }
        if (strcmp(st.scale, scale ? scale : "") != 0) {
            err_set(&err, ERR_USAGE, "%s was set up with --scale '%s'", st.dir, st.scale);
            goto fail;
        }
    } else {
        st.tasks = tasks ? tasks : (sw->n_trials < 16 ? (sw->n_trials > 0 ? sw->n_trials : 1) : 16);
        snprintf(st.scale, sizeof st.scale, "%s", scale ? scale : "");
        char conf_text[256], path[SLURM_PATH_MAX + 32];
        snprintf(conf_text, sizeof conf_text, "tasks=%d\n%s%s%s", st.tasks, scale ? "scale=" : "",
                 scale ? scale : "", scale ? "\n" : "");
        path_in(path, sizeof path, st.dir, "mtlab-slurm.conf");
        if (write_text(st.sweep, text, &err) || write_text(path, conf_text, &err)) goto fail;
    }
    job_opts_t jo = {
        .parallel = parallel, .cpus = cpus, .time = time_limit, .partition = partition};
    if (write_script(&st, sw, &jo, &err)) goto fail;

    /* Which shards to submit. */
    want = mem_calloc((size_t)st.tasks, sizeof *want);
    live = mem_calloc((size_t)st.tasks, sizeof *live);
    if (!want || !live) {
        err_set(&err, ERR_FAIL, "out of memory");
        goto fail;
    }
    bool known = live_tasks(&st, live) == 0;
    int n_want = 0, n_complete = 0, n_live = 0;
    for (int i = 0; i < st.tasks; i++) {
        shard_state_t s;
        if (shard_state(&st, sw->name, i, &s, &err)) goto fail;
        bool complete = shard_complete(&s, runner_shard_size(sw->n_trials, i, st.tasks));
        n_complete += complete;
        n_live += !complete && live[i];
        want[i] = !complete && !live[i];
        n_want += want[i];
    }
    if (!known)
        fprintf(stderr, "mtlab slurm: squeue cannot tell which tasks are queued or running: "
                        "submitting every incomplete shard\n");
    if (n_want == 0) {
        if (n_complete == st.tasks)
            printf("%s: all %d shards complete: mtlab merge OUT.db %s/shard-*.db\n", st.dir,
                   st.tasks, st.dir);
        else
            printf("%s: %d shards complete, %d queued or running: nothing to submit\n", st.dir,
                   n_complete, n_live);
        status = 0;
        goto fail;
    }
    char array[65536 + 16];
    array_list(want, st.tasks, array, sizeof array - 16);
    if (parallel > 0) snprintf(array + strlen(array), 16, "%%%d", parallel);
    char array_opt[sizeof array + 16], script[SLURM_PATH_MAX + 32];
    snprintf(array_opt, sizeof array_opt, "--array=%s", array);
    path_in(script, sizeof script, st.dir, "job.sbatch");
    const char *sbatch[] = {"sbatch", "--parsable", array_opt, script, NULL};
    printf("%s: %d trials in %d shards; %d complete, %d queued or running, submitting %d\n", st.dir,
           sw->n_trials, st.tasks, n_complete, n_live, n_want);
    if (dry) {
        printf("sbatch --parsable %s %s\n", array_opt, script);
        status = 0;
        goto fail;
    }
    char out[256];
    int sb = run_tool(sbatch, out, sizeof out);
    if (sb != 0) {
        err_set(&err, ERR_FAIL, "sbatch %s %s: %s", array_opt, script,
                sb < 0 ? "cannot run sbatch (is Slurm installed?)"
                       : "failed (see its message above)");
        goto fail;
    }
    long long job;
    out[strcspn(out, ";\n")] = '\0';
    if (parse_long(out, &job) || job <= 0) {
        err_set(&err, ERR_FAIL, "sbatch printed '%s', not a job id", out);
        goto fail;
    }
    char jobs_path[SLURM_PATH_MAX + 32];
    path_in(jobs_path, sizeof jobs_path, st.dir, "jobs");
    FILE *f = fopen(jobs_path, "a");
    if (!f || fprintf(f, "%lld\n", job) < 0 || fclose(f) != 0) {
        err_set(&err, ERR_FAIL, "job %lld submitted, but cannot record it in %s", job, jobs_path);
        goto fail;
    }
    printf("submitted job %lld (array %s); mtlab slurm --status %s shows progress\n", job, array,
           st.dir);
    status = 0;
fail:
    mem_free(want);
    mem_free(live);
    mem_free(text);
    sweep_free(sw);
    if (status) return cli_fail("slurm", &err);
    return 0;
}
