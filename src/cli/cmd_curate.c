/* cmd_curate.c -- curating a store (store/curate.h), each change in one
 * transaction:
 *   mtlab tag TRIAL... TAG... [--remove]    mtlab tag --exp EXP TAG...
 *   mtlab note TRIAL TEXT                   mtlab note --exp EXP TEXT
 *   mtlab rm TRIAL...    mtlab rm --exp EXP    mtlab rm --failed [--exp EXP]
 * Without a TAG or TEXT, tag and note list what the target has.  A target is
 * given by trial ids (positive integers first on the line) or --exp. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/opts.h"
#include "core/mem.h"
#include "store/curate.h"
#include "store/query.h"
#include "store/runs.h"
#include "store/store.h"

#define CURATE_MAX_ARGS 256 /* positional arguments of one command, at most */

/* Opens an existing store for writing (never creates one). */
static int open_existing(const char *db, store_t **s, err_t *err) {
    struct stat sb;
    if (stat(db, &sb) != 0)
        return err_set(err, ERR_USAGE, "no store at %s (mtlab run SWEEP.ini --db %s makes one)", db,
                       db);
    return store_open(s, db, 0, err);
}

/* Splits the positional arguments: the leading positive integers are trial
 * ids (ids[0..*n_ids)), the rest (*rest) what follows. */
static int split_ids(const char **pos, int n_pos, int64_t *ids, int *n_ids, int *rest, err_t *err) {
    *n_ids = 0;
    int i = 0;
    for (; i < n_pos; i++) {
        long long v;
        if (parse_long(pos[i], &v)) break;
        if (v < 1)
            return err_set(err, ERR_USAGE, "'%s' is not a trial id (a positive integer)", pos[i]);
        ids[(*n_ids)++] = (int64_t)v;
    }
    *rest = i;
    return 0;
}

/* The targets: each trial of ids, or the experiment `exp`; exactly one of
 * the two must be given. */
static int targets_of(store_t *s, const int64_t *ids, int n_ids, const char *exp,
                      store_target_t *targets, int *n, err_t *err) {
    *n = 0;
    if (n_ids > 0 && exp) return err_set(err, ERR_USAGE, "give trial ids or --exp, not both");
    if (n_ids == 0 && !exp)
        return err_set(err, ERR_USAGE, "missing target: trial ids, or --exp EXPERIMENT");
    if (exp) {
        if (store_find_experiment(s, exp, &targets[0].experiment_id, err)) return -1;
        targets[0].trial_id = 0;
        *n = 1;
        return 0;
    }
    for (int i = 0; i < n_ids; i++)
        if (store_trial_target(s, ids[i], &targets[(*n)++], err)) return -1;
    return 0;
}

/* Prints the rows of `sql` as a table, or `none` when there are none. */
static int print_list(store_t *s, const char *sql, const char *none, err_t *err) {
    store_table_t *t;
    if (store_query(s, sql, &t, err)) return -1;
    int rc = 0;
    if (t->n_rows == 0)
        printf("%s\n", none);
    else
        rc = store_table_print(stdout, t, err);
    store_table_free(t);
    return rc;
}

/* "WHERE ..." of a listing: the experiment's own and its trials' rows, or
 * the given trials'. */
static void target_filter(const store_target_t *targets, int n, char *out, size_t size) {
    if (n == 1 && targets[0].trial_id == 0) {
        snprintf(out, size, "experiment_id = %" PRId64, targets[0].experiment_id);
        return;
    }
    size_t len = (size_t)snprintf(out, size, "trial_id IN (");
    for (int i = 0; i < n && len + 24 < size; i++)
        len += (size_t)snprintf(out + len, size - len, "%s%" PRId64, i ? ", " : "",
                                targets[i].trial_id);
    snprintf(out + len, size - len, ")");
}

static int finish(const char *cmd, int status) {
    if (status == 0 && (fflush(stdout) != 0 || ferror(stdout))) {
        err_t err;
        err_set(&err, ERR_FAIL, "cannot write to standard output");
        return cli_fail(cmd, &err);
    }
    return status;
}

int cmd_tag(int argc, char **argv) {
    const char *db = "results.db", *exp = NULL;
    bool remove = false;
    opt_t opts[] = {
        {"db", OPT_STRING, &db, "FILE", "the SQLite store", 1, 0, 0},
        {"exp", OPT_STRING, &exp, "EXPERIMENT", "tag the experiment (its name or id)", 1, 0, 0},
        {"remove", OPT_FLAG, &remove, NULL, "remove the tags instead of adding them", 1, 0, 0},
    };
    const int n_opts = (int)(sizeof opts / sizeof opts[0]);
    err_t err = {0};
    const char *pos[CURATE_MAX_ARGS];
    int n_pos;
    int rc = cli_options(
        "tag", "mtlab tag (TRIAL... | --exp EXPERIMENT) [TAG...] [--remove] [--db FILE]",
        "Adds tags to trials or to an experiment, or removes them (--remove); without a\n"
        "TAG, lists the tags (of an experiment: its own and its trials').  A tag is a word\n"
        "of letters, digits and . _ : + - starting with a letter; `mtlab trials` shows a\n"
        "trial's tags (--where \"tags LIKE '%best%'\").  Examples:\n"
        "  mtlab tag 12 17 best        mtlab tag --exp grid baseline        mtlab tag 12",
        opts, n_opts, argc, argv, pos, CURATE_MAX_ARGS, &n_pos);
    if (rc != CLI_CONTINUE) return rc;
    int64_t ids[CURATE_MAX_ARGS];
    int n_ids, first_tag;
    if (split_ids(pos, n_pos, ids, &n_ids, &first_tag, &err)) return cli_fail("tag", &err);
    const int n_tags = n_pos - first_tag;
    for (int j = first_tag; j < n_pos; j++)
        if (store_tag_check(pos[j], &err)) return cli_fail("tag", &err);
    if (remove && n_tags == 0) {
        err_set(&err, ERR_USAGE, "--remove needs the TAGs to remove");
        return cli_fail("tag", &err);
    }

    store_t *s;
    if (open_existing(db, &s, &err)) return cli_fail("tag", &err);
    store_target_t targets[CURATE_MAX_ARGS];
    int n_targets, status = 0, changed;
    if (targets_of(s, ids, n_ids, exp, targets, &n_targets, &err)) {
        status = cli_fail("tag", &err);
    } else if (n_tags == 0) {
        char filter[4096], sql[4400];
        target_filter(targets, n_targets, filter, sizeof filter);
        snprintf(sql, sizeof sql,
                 "SELECT ifnull('trial ' || trial_id, 'experiment') AS target, "
                 "group_concat(tag, ' ') AS tags FROM (SELECT * FROM tag WHERE %s "
                 "ORDER BY trial_id IS NOT NULL, trial_id, tag) GROUP BY trial_id "
                 "ORDER BY trial_id IS NOT NULL, trial_id",
                 filter);
        if (print_list(s, sql, "no tags", &err)) status = cli_fail("tag", &err);
    } else if (store_tag(s, targets, n_targets, pos + first_tag, n_tags, remove, &changed, &err)) {
        status = cli_fail("tag", &err);
    } else {
        int asked = n_targets * n_tags;
        printf("%s %d tag%s", remove ? "removed" : "added", changed, changed == 1 ? "" : "s");
        if (changed < asked)
            printf(" (%d %s)", asked - changed, remove ? "not there" : "already there");
        printf("\n");
    }
    store_close(s);
    return finish("tag", status);
}

int cmd_note(int argc, char **argv) {
    const char *db = "results.db", *exp = NULL;
    opt_t opts[] = {
        {"db", OPT_STRING, &db, "FILE", "the SQLite store", 1, 0, 0},
        {"exp", OPT_STRING, &exp, "EXPERIMENT", "a note on the experiment (its name or id)", 1, 0,
         0},
    };
    const int n_opts = (int)(sizeof opts / sizeof opts[0]);
    err_t err = {0};
    const char *pos[CURATE_MAX_ARGS];
    int n_pos;
    int rc = cli_options(
        "note", "mtlab note (TRIAL | --exp EXPERIMENT) [TEXT...] [--db FILE]",
        "Adds a note (free text; several words are joined with spaces) to a trial or an\n"
        "experiment; without TEXT, lists the notes (of an experiment: its own and its\n"
        "trials'), oldest first.  Example:\n"
        "  mtlab note 12 \"diverged: lr too high for 8 experts\"",
        opts, n_opts, argc, argv, pos, CURATE_MAX_ARGS, &n_pos);
    if (rc != CLI_CONTINUE) return rc;
    int64_t ids[CURATE_MAX_ARGS];
    int n_ids, first_word;
    /* with --exp every word is text (a note may start with a number) */
    n_ids = 0;
    first_word = 0;
    if (!exp && split_ids(pos, n_pos, ids, &n_ids, &first_word, &err))
        return cli_fail("note", &err);
    if (n_ids > 1) {
        err_set(&err, ERR_USAGE, "a note is on one trial (got %d ids)", n_ids);
        return cli_fail("note", &err);
    }
    /* The text: the remaining words joined by single spaces. */
    size_t len = 0;
    for (int j = first_word; j < n_pos; j++)
        len += strlen(pos[j]) + 1;
    char *text = mem_alloc(len + 1);
    if (!text) {
        err_set(&err, ERR_FAIL, "out of memory");
        return cli_fail("note", &err);
    }
    text[0] = '\0';
    for (int j = first_word, at = 0; j < n_pos; j++)
        at += snprintf(text + at, len + 1 - (size_t)at, "%s%s", j > first_word ? " " : "", pos[j]);

    store_t *s;
    if (open_existing(db, &s, &err)) {
        mem_free(text);
        return cli_fail("note", &err);
    }
    store_target_t target;
    int n_targets, status = 0;
    if (targets_of(s, ids, n_ids, exp, &target, &n_targets, &err)) {
        status = cli_fail("note", &err);
    } else if (first_word == n_pos) {
        char filter[128], sql[512];
        target_filter(&target, 1, filter, sizeof filter);
        snprintf(sql, sizeof sql,
                 "SELECT id AS note, created, ifnull('trial ' || trial_id, 'experiment') AS "
                 "target, text FROM note WHERE %s ORDER BY id",
                 filter);
        if (print_list(s, sql, "no notes", &err)) status = cli_fail("note", &err);
    } else if (store_note(s, &target, text, &err)) {
        status = cli_fail("note", &err);
    } else if (target.trial_id) {
        printf("noted on trial %" PRId64 "\n", target.trial_id);
    } else {
        printf("noted on experiment %s\n", exp);
    }
    mem_free(text);
    store_close(s);
    return finish("note", status);
}

/* "trial 8, param 184, metric 96 rows" */
static void print_rows(const store_removed_t *r) {
    printf(" (rows:");
    int shown = 0;
    for (int i = 0; i < r->n_tables; i++)
        if (r->tables[i].rows > 0)
            printf("%s %s %ld", shown++ ? "," : "", r->tables[i].name, r->tables[i].rows);
    printf("%s)\n", shown ? "" : " none");
}

int cmd_rm(int argc, char **argv) {
    const char *db = "results.db", *exp = NULL;
    bool failed = false, dry_run = false;
    opt_t opts[] = {
        {"db", OPT_STRING, &db, "FILE", "the SQLite store", 1, 0, 0},
        {"exp", OPT_STRING, &exp, "EXPERIMENT",
         "remove the experiment (its name or id), or with --failed: its failed trials", 1, 0, 0},
        {"failed", OPT_FLAG, &failed, NULL, "remove the failed trials (of --exp, or of all)", 1, 0,
         0},
        {"dry-run", OPT_FLAG, &dry_run, NULL, "say what would be removed, remove nothing", 1, 0, 0},
    };
    const int n_opts = (int)(sizeof opts / sizeof opts[0]);
    err_t err = {0};
    const char *pos[CURATE_MAX_ARGS];
    int n_pos;
    int rc = cli_options(
        "rm", "mtlab rm (TRIAL... | --exp EXPERIMENT | --failed [--exp EXPERIMENT]) [--dry-run]",
        "Removes trials, or a whole experiment, with everything recorded about them\n"
        "(params, curves, gates, weights, tags, notes: every table that refers to them),\n"
        "in one transaction.  A running trial is never removed.  A removed trial of a\n"
        "sweep is trained again by the next `mtlab run` of its file (so `mtlab rm\n"
        "--failed` then `mtlab run` retries the failed trials from scratch).",
        opts, n_opts, argc, argv, pos, CURATE_MAX_ARGS, &n_pos);
    if (rc != CLI_CONTINUE) return rc;
    int64_t ids[CURATE_MAX_ARGS];
    int n_ids, rest;
    if (split_ids(pos, n_pos, ids, &n_ids, &rest, &err)) return cli_fail("rm", &err);
    if (rest < n_pos) {
        err_set(&err, ERR_USAGE, "'%s' is not a trial id (a positive integer)", pos[rest]);
        return cli_fail("rm", &err);
    }
    store_rm_t rm = {.ids = ids, .n_ids = n_ids, .dry_run = dry_run};
    if (n_ids > 0 && (exp || failed)) {
        err_set(&err, ERR_USAGE, "give trial ids, or --exp / --failed, not both");
        return cli_fail("rm", &err);
    }
    if (n_ids == 0 && !exp && !failed) {
        err_set(&err, ERR_USAGE, "missing what to remove: trial ids, --exp EXPERIMENT or --failed");
        return cli_fail("rm", &err);
    }
    rm.kind = n_ids ? STORE_RM_TRIALS : failed ? STORE_RM_FAILED : STORE_RM_EXPERIMENT;

    store_t *s;
    if (open_existing(db, &s, &err)) return cli_fail("rm", &err);
    int status = 0;
    store_removed_t removed;
    if (exp && store_find_experiment(s, exp, &rm.experiment_id, &err)) {
        status = cli_fail("rm", &err);
    } else if (store_remove(s, &rm, &removed, &err)) {
        status = cli_fail("rm", &err);
    } else if (rm.kind == STORE_RM_FAILED && removed.trials == 0) {
        printf("no failed trials%s%s\n", exp ? " in " : "", exp ? exp : "");
    } else {
        const char *verb = dry_run ? "would remove" : "removed";
        if (rm.kind == STORE_RM_EXPERIMENT)
            printf("%s experiment %s and its %d trial%s", verb, exp, removed.trials,
                   removed.trials == 1 ? "" : "s");
        else
            printf("%s %d %strial%s", verb, removed.trials, failed ? "failed " : "",
                   removed.trials == 1 ? "" : "s");
        print_rows(&removed);
    }
    store_close(s);
    return finish("rm", status);
}
