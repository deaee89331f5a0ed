/* test_cluster.c -- beyond one machine (SPEC §10): `mtlab run --shard I/N`,
 * `mtlab merge`, the provenance of a run and `mtlab slurm`.  The key
 * property: the shards of a sweep, run separately and merged, hold the same
 * trials with the same bits as one `--jobs 1` run of the sweep. */
#include <math.h>
#include <signal.h>
#include <sys/wait.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/provenance.h"
#include "sweep/runner.h"
#include "testutil.h"

/* 2 models x 2 correlations x 3 repeats = 12 small trials. */
static const char *tiny_ini = "[experiment]\n"
                              "name = tiny\n"
                              "repeats = 3\n"
                              "seed = 7\n"
                              "[data]\n"
                              "correlation = 0.5, 0.9\n"
                              "dim = 12\n"
                              "train = 300\n"
                              "validation = 60\n"
                              "test = 80\n"
                              "[train]\n"
                              "batch = 32\n"
                              "steps = 40\n"
                              "eval_every = 20\n"
                              "[model]\n"
                              "name = shared_bottom, mmoe\n"
                              "experts = 3\n"
                              "expert_hidden = 4\n"
                              "tower_hidden = 4\n"
                              "[model.shared_bottom]\n"
                              "bottom_hidden = 8\n";
#define TINY_TRIALS 12

static int mtlab(char **out, char **err, const char *const *args) {
    char *o = NULL, *e = NULL;
    int rc = run_mtlab(&o, &e, args);
    if (out)
        *out = o;
    else
        free(o);
    if (err)
        *err = e;
    else
        free(e);
    return rc;
}

/* text with the first `from` replaced by `to` (malloc'd). */
static char *replaced(const char *text, const char *from, const char *to) {
    const char *at = strstr(text, from);
    ck_assert_ptr_nonnull(at);
    char *out = malloc(strlen(text) + strlen(to) + 1);
    sprintf(out, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    return out;
}

/* Lines of a file (0 when absent). */
static int count_lines(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int n = 0, ch;
    while ((ch = fgetc(f)) != EOF)
        n += ch == '\n';
    fclose(f);
    return n;
}

/* The trial indices `mtlab run --dry-run --shard I/N` lists: sets seen[index]
 * += 1 for each, returns how many. */
static int dry_run_indices(const char *ini, const char *shard, int *seen, int cap) {
    char *out;
    const char *args[] = {"run", ini, "--dry-run", "--shard", shard, NULL};
    ck_assert_int_eq(mtlab(&out, NULL, args), 0);
    int n = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#' || strstr(line, "index")) continue;
        int index;
        ck_assert_int_eq(sscanf(line, "%d", &index), 1);
        ck_assert(index >= 0 && index < cap);
        seen[index]++;
        n++;
    }
    free(out);
    return n;
}

/* Every trial is in exactly one shard, for several N (N above the trial
 * count included): the union of the shards is the trial list, disjoint. */
START_TEST(test_shards_partition) {
    /* The rule itself, over many sizes. */
    for (int total = 0; total < 40; total++)
        for (int shards = 1; shards <= 17; shards++) {
            int sum = 0;
            for (int s = 0; s < shards; s++) {
                int count = 0;
                for (int i = 0; i < total; i++)
                    count += runner_in_shard(i, s, shards);
                ck_assert_int_eq(count, runner_shard_size(total, s, shards));
                sum += count;
            }
            ck_assert_int_eq(sum, total);
            for (int i = 0; i < total; i++) {
                int owners = 0;
                for (int s = 0; s < shards; s++)
                    owners += runner_in_shard(i, s, shards);
                ck_assert_int_eq(owners, 1);
            }
        }
    /* What the CLI lists. */
    char *dir = test_tmpdir(), *ini = test_write_file(dir, "tiny.ini", tiny_ini);
    const int ns[] = {1, 2, 3, 5, 13};
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        int seen[TINY_TRIALS] = {0}, total = 0;
        for (int s = 0; s < ns[k]; s++) {
            char shard[32];
            snprintf(shard, sizeof shard, "%d/%d", s, ns[k]);
            total += dry_run_indices(ini, shard, seen, TINY_TRIALS);
        }
        ck_assert_int_eq(total, TINY_TRIALS);
        for (int i = 0; i < TINY_TRIALS; i++)
            ck_assert_msg(seen[i] == 1, "N=%d: trial %d in %d shards", ns[k], i, seen[i]);
    }
    /* Bad shards are usage errors naming the option. */
    const char *bad[] = {"4/4", "-1/4", "1/0", "1", "a/b", "1/4x", "/4"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char *err;
        const char *args[] = {"run", ini, "--dry-run", "--shard", bad[k], NULL};
        ck_assert_int_eq(mtlab(NULL, &err, args), 2);
        ck_assert_msg(strstr(err, "--shard") != NULL, "%s: %s", bad[k], err);
        free(err);
    }
    free(ini);
    free(dir);
}
END_TEST

/* A shard's store holds exactly the shard's trials, and resumes like any
 * store: a run stopped by --limit goes on where it stopped. */
START_TEST(test_shard_store_resumes) {
    char *dir = test_tmpdir(), *ini = test_write_file(dir, "tiny.ini", tiny_ini),
         *db = test_join(dir, "shard-1.db");
    char *out;
    const char *first[] = {"run",    ini, "--shard", "1/3", "--db", db,
                           "--jobs", "1", "--limit", "2",   NULL};
    ck_assert_int_eq(mtlab(&out, NULL, first), 0);
    ck_assert_msg(strstr(out, "tiny: 4 trials (4 new): 2 done, 0 failed, 2 pending") != NULL, "%s",
                  out);
    free(out);
    const char *rest[] = {"run", ini, "--shard", "1/3", "--db", db, "--jobs", "2", NULL};
    ck_assert_int_eq(mtlab(&out, NULL, rest), 0);
    ck_assert_msg(strstr(out, "tiny: 4 trials (0 new): 4 done, 0 failed, 0 pending; this run "
                              "trained 2") != NULL,
                  "%s", out);
    free(out);
    /* Trials 1, 4, 7, 10 of the sweep: index = repeat * 4 points + point. */
    ck_assert_int_eq(test_query(db, "SELECT count(*) FROM trial WHERE status = 'done'"), 4);
    ck_assert_int_eq(test_query(db, "SELECT count(DISTINCT repeat) FROM trial"), 3);
    /* The same store run as another shard adds that shard's trials and runs
     * only those: shard 1's are not trained again. */
    const char *other[] = {"run", ini, "--shard", "0/3", "--db", db, "--jobs", "1", NULL};
    ck_assert_int_eq(mtlab(&out, NULL, other), 0);
    ck_assert_msg(strstr(out, "this run trained 4 ") != NULL, "%s", out);
    free(out);
    ck_assert_int_eq(test_query(db, "SELECT count(*) FROM trial WHERE status = 'done'"), 8);
    free(db);
    free(ini);
    free(dir);
}
END_TEST

/* ---- merge ---------------------------------------------------------------- */

static void sql_exec(const char *db_path, const char *sql) {
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    char *msg = NULL;
    ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK, "%s: %s", sql, msg);
    sqlite3_close(db);
}

/* Appends the text of every row of `sql` (columns quoted) to *buf. */
static void append_rows(sqlite3 *db, const char *sql, char **buf, size_t *len) {
    sqlite3_stmt *st;
    ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql,
                  sqlite3_errmsg(db));
    while (sqlite3_step(st) == SQLITE_ROW)
        for (int c = 0; c < sqlite3_column_count(st); c++) {
            const char *text = (const char *)sqlite3_column_text(st, c);
            size_t n = text ? strlen(text) : 4;
            *buf = realloc(*buf, *len + n + 2);
            memcpy(*buf + *len, text ? text : "NULL", n);
            *len += n;
            (*buf)[(*len)++] = c + 1 < sqlite3_column_count(st) ? '|' : '\n';
            (*buf)[*len] = '\0';
        }
    sqlite3_finalize(st);
}

/* A store's whole content as text: every table (from sqlite_master), every
 * row in the order of all its columns, every value quote()d (blobs in hex,
 * reals to 17 digits through printf). */
static char *dump_store(const char *db_path) {
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    char *buf = calloc(1, 1), *tables = NULL;
    size_t len = 0, tables_len = 0;
    append_rows(db,
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                "ORDER BY name",
                &tables, &tables_len);
    for (char *name = strtok(tables, "\n"); name; name = strtok(NULL, "\n")) {
        char sql[32768], cols[16384] = "";
        snprintf(sql, sizeof sql, "SELECT name FROM pragma_table_info('%s')", name);
        char *names = NULL;
        size_t names_len = 0;
        append_rows(db, sql, &names, &names_len);
        int k = 0;
        for (char *save, *col = strtok_r(names, "\n", &save); col;
             col = strtok_r(NULL, "\n", &save), k++) {
            size_t n = strlen(cols);
            snprintf(cols + n, sizeof cols - n,
                     "%sCASE typeof(\"%s\") WHEN 'real' THEN printf('%%!.17g', \"%s\") ELSE "
                     "quote(\"%s\") END",
                     k ? " || '|' || " : "", col, col, col);
        }
        free(names);
        snprintf(sql, sizeof sql, "SELECT '%s: ' || %s FROM \"%s\" ORDER BY %s", name, cols, name,
                 "1");
        append_rows(db, sql, &buf, &len);
    }
    free(tables);
    sqlite3_close(db);
    return buf;
}

/* Rows of `sql` on the connection (first column of the first row). */
static long long q_int(sqlite3 *db, const char *sql) {
    sqlite3_stmt *st;
    ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql,
                  sqlite3_errmsg(db));
    long long v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    return v;
}

/* Asserts that stores a and b hold the same trials (by experiment name,
 * config and repeat: model, seeds, status, sizes) and, in every table with a
 * trial_id column (found in the schema), the same rows with the same values:
 * SQL compares reals by value, so equal means equal bits (but for -0 and +0;
 * NaN is stored as NULL). */
static void assert_same_results(const char *a, const char *b) {
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open_v2(a, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    char attach[2048];
    snprintf(attach, sizeof attach, "ATTACH '%s' AS other", b);
    ck_assert_int_eq(sqlite3_exec(db, attach, NULL, NULL, NULL), SQLITE_OK);
    const char *trial_cols = "e.name, t.config, t.repeat, t.model, t.data_seed, t.init_seed, "
                             "t.status, t.n_params, t.final_step, t.error";
    char sql[8192];
    for (int dir = 0; dir < 2; dir++) {
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM (SELECT %s FROM %s.trial t JOIN %s.experiment e ON e.id = "
                 "t.experiment_id EXCEPT SELECT %s FROM %s.trial t JOIN %s.experiment e ON e.id = "
                 "t.experiment_id)",
                 trial_cols, dir ? "other" : "main", dir ? "other" : "main", trial_cols,
                 dir ? "main" : "other", dir ? "main" : "other");
        ck_assert_int_eq(q_int(db, sql), 0);
    }
    ck_assert_int_eq(q_int(db, "SELECT count(*) FROM main.trial"),
                     q_int(db, "SELECT count(*) FROM other.trial"));
    char *tables = NULL;
    size_t tables_len = 0;
    append_rows(db,
                "SELECT m.name FROM sqlite_master m WHERE m.type = 'table' AND EXISTS (SELECT 1 "
                "FROM pragma_table_info(m.name) WHERE name = 'trial_id') ORDER BY m.name",
                &tables, &tables_len);
    int n_tables = 0;
    for (char *name = strtok(tables, "\n"); name; name = strtok(NULL, "\n"), n_tables++) {
        char cols[2048] = "";
        snprintf(sql, sizeof sql,
                 "SELECT group_concat('x.\"' || name || '\"', ', ') FROM pragma_table_info('%s') "
                 "WHERE name != 'trial_id'",
                 name);
        sqlite3_stmt *st;
        ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
        snprintf(cols, sizeof cols, "%s", sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
        for (int dir = 0; dir < 2; dir++) {
            const char *x = dir ? "other" : "main", *y = dir ? "main" : "other";
            snprintf(sql, sizeof sql,
                     "SELECT count(*) FROM (SELECT e.name, t.config, t.repeat, %s FROM %s.\"%s\" x "
                     "JOIN %s.trial t ON t.id = x.trial_id JOIN %s.experiment e ON e.id = "
                     "t.experiment_id EXCEPT SELECT e.name, t.config, t.repeat, %s FROM %s.\"%s\" "
                     "x JOIN %s.trial t ON t.id = x.trial_id JOIN %s.experiment e ON e.id = "
                     "t.experiment_id)",
                     cols, x, name, x, x, cols, y, name, y, y);
            ck_assert_msg(q_int(db, sql) == 0, "table %s differs", name);
        }
        snprintf(sql, sizeof sql,
                 "SELECT (SELECT count(*) FROM main.\"%s\") - (SELECT count(*) FROM other.\"%s\")",
                 name, name);
        ck_assert_msg(q_int(db, sql) == 0, "table %s: row counts differ", name);
    }
    ck_assert_int_ge(n_tables, 7); /* param, metric, gate, gate_hist, route, tensor, weights */
    free(tables);
    sqlite3_close(db);
}

/* Runs the tiny sweep as 4 shards (stores dir/s0.db .. s3.db), --jobs 1. */
static void run_shards(const char *ini, const char *dir, int shards) {
    for (int s = 0; s < shards; s++) {
        char name[32], shard[32];
        snprintf(name, sizeof name, "s%d.db", s);
        snprintf(shard, sizeof shard, "%d/%d", s, shards);
        char *db = test_join(dir, name);
        const char *args[] = {"run", ini,      "--shard", shard,     "--db",
                              db,    "--jobs", "1",       "--quiet", NULL};
        ck_assert_int_eq(mtlab(NULL, NULL, args), 0);
        free(db);
    }
}

static int merge(const char *out, const char *const *ins, int n, char **err) {
    const char *args[16] = {"merge", out};
    for (int i = 0; i < n; i++)
        args[2 + i] = ins[i];
    args[2 + n] = NULL;
    return mtlab(NULL, err, args);
}

/* The key property: 4 shards run separately and merged hold the same trials
 * with the same bits as one --jobs 1 run; merging is order-independent,
 * idempotent, and a no-op on a store with itself. */
START_TEST(test_merge_shards_equal_one_run) {
    char *dir = test_tmpdir(), *ini = test_write_file(dir, "tiny.ini", tiny_ini);
    run_shards(ini, dir, 4);
    char *one = test_join(dir, "one.db"), *m1 = test_join(dir, "m1.db"),
         *m2 = test_join(dir, "m2.db");
    const char *one_args[] = {"run", ini, "--db", one, "--jobs", "1", "--quiet", NULL};
    ck_assert_int_eq(mtlab(NULL, NULL, one_args), 0);
    char *s[4];
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf(name, sizeof name, "s%d.db", i);
        s[i] = test_join(dir, name);
    }
    const char *fwd[] = {s[0], s[1], s[2], s[3]}, *rev[] = {s[3], s[1], s[0], s[2]};
    ck_assert_int_eq(merge(m1, fwd, 4, NULL), 0);
    ck_assert_int_eq(merge(m2, rev, 4, NULL), 0);
    assert_same_results(m1, one);
    char *d1 = dump_store(m1), *d2 = dump_store(m2);
    ck_assert_msg(strcmp(d1, d2) == 0, "the merge depends on the order of its inputs");
    ck_assert_int_ge(strlen(d1), 10000);
    /* Again, with OUT among the inputs: nothing changes. */
    const char *again[] = {s[2], m1, s[0], s[3], s[1]};
    ck_assert_int_eq(merge(m1, again, 5, NULL), 0);
    char *d3 = dump_store(m1);
    ck_assert_msg(strcmp(d1, d3) == 0, "merging again changed the store");
    /* A store with itself. */
    char *before = dump_store(one);
    const char *self[] = {one};
    ck_assert_int_eq(merge(one, self, 1, NULL), 0);
    char *after = dump_store(one);
    ck_assert_msg(strcmp(before, after) == 0, "merging a store with itself changed it");
    /* The single run's store takes the shards: all duplicates, same bits. */
    char *out, *err;
    const char *args[] = {"merge", one, s[0], s[1], s[2], s[3], NULL};
    ck_assert_int_eq(run_mtlab(&out, &err, args), 0);
    ck_assert_msg(strstr(out, "0 trials added, 0 replaced, 12 duplicates") != NULL, "%s", out);
    free(out);
    free(err);
    free(after);
    after = dump_store(one);
    ck_assert_msg(strcmp(before, after) == 0, "merging duplicates changed the store");
    free(before);
    free(after);
    free(d1);
    free(d2);
    free(d3);
    for (int i = 0; i < 4; i++)
        free(s[i]);
    free(one);
    free(m1);
    free(m2);
    free(ini);
    free(dir);
}
END_TEST

/* Unfinished shards: a pending copy is replaced by a done one, whatever the
 * order; the merged store resumes like any other. */
START_TEST(test_merge_unfinished) {
    char *dir = test_tmpdir(), *ini = test_write_file(dir, "tiny.ini", tiny_ini);
    char *part = test_join(dir, "part.db"), *full = test_join(dir, "full.db"),
         *m1 = test_join(dir, "m1.db"), *m2 = test_join(dir, "m2.db");
    const char *a1[] = {"run", ini, "--db", part, "--jobs", "1", "--limit", "5", "--quiet", NULL};
    ck_assert_int_eq(mtlab(NULL, NULL, a1), 0);
    /* part.db: 5 done, 7 pending; m1 = part alone, then the shard 0/2. */
    ck_assert_int_eq(merge(m1, (const char *[]){part}, 1, NULL), 0);
    ck_assert_int_eq(test_query(m1, "SELECT count(*) FROM trial WHERE status = 'pending'"), 7);
    const char *a2[] = {"run", ini, "--shard", "0/2", "--db", full, "--jobs", "1", "--quiet", NULL};
    ck_assert_int_eq(mtlab(NULL, NULL, a2), 0);
    char *out;
    const char *args[] = {"merge", m1, full, NULL};
    ck_assert_int_eq(run_mtlab(&out, NULL, args), 0);
    ck_assert_int_eq(test_query(m1, "SELECT count(*) FROM trial"), 12);
    int pending = (int)test_query(m1, "SELECT count(*) FROM trial WHERE status = 'pending'");
    ck_assert_int_lt(pending, 7);
    ck_assert_int_gt(pending, 0);
    free(out);
    /* The other order gives the same trials, and the merged store runs its
     * rest: then it equals a full run. */
    ck_assert_int_eq(merge(m2, (const char *[]){full, part}, 2, NULL), 0);
    ck_assert_int_eq(test_query(m2, "SELECT count(*) FROM trial WHERE status = 'pending'"),
                     pending);
    const char *rest[] = {"run", ini, "--db", m2, "--jobs", "2", "--quiet", NULL};
    ck_assert_int_eq(mtlab(NULL, NULL, rest), 0);
    char *one = test_join(dir, "one.db");
    const char *a3[] = {"run", ini, "--db", one, "--jobs", "1", "--quiet", NULL};
    ck_assert_int_eq(mtlab(NULL, NULL, a3), 0);
    assert_same_results(m2, one);
    free(one);
    free(part);
    free(full);
    free(m1);
    free(m2);
    free(ini);
    free(dir);
}
END_TEST

/* Tags and notes (tables with experiment_id and trial_id) are what users
 * wrote, not results: merge carries them from every copy onto the trial of
 * the same identity in OUT, keeps an experiment's own (trial_id NULL), adds
 * each once however often it is merged, and never calls a copy that lacks
 * them a conflict; a replaced (pending -> done) trial keeps OUT's tags. */
/* Rows of `table` in the store `out` matching `cond` whose trial has the
 * identity (config, repeat) of trial src_id of the store `src`. */
static int on_same_trial(const char *out, const char *src, int src_id, const char *table,
                         const char *cond) {
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open_v2(out, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    char *attach = sqlite3_mprintf("ATTACH %Q AS src", src);
    char *select = sqlite3_mprintf(
        "SELECT count(*) FROM main.\"%w\" x JOIN main.trial t ON t.id = x.trial_id JOIN "
        "src.trial o ON o.id = %d AND o.config = t.config AND o.repeat = t.repeat WHERE %s",
        table, src_id, cond);
    ck_assert_int_eq(sqlite3_exec(db, attach, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    ck_assert_msg(sqlite3_prepare_v2(db, select, -1, &st, NULL) == SQLITE_OK, "%s",
                  sqlite3_errmsg(db));
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    int n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_free(select);
    sqlite3_free(attach);
    sqlite3_close(db);
    return n;
}

START_TEST(test_merge_annotations) {
    char *dir = test_tmpdir(), *ini = test_write_file(dir, "tiny.ini", tiny_ini);
    char *part = test_join(dir, "part.db"), *out = test_join(dir, "out.db");
    run_shards(ini, dir, 2);
    char *s0 = test_join(dir, "s0.db"), *s1 = test_join(dir, "s1.db");
    const char *a1[] = {"run", ini, "--db", part, "--jobs", "1", "--limit", "2", "--quiet", NULL};
    ck_assert_int_eq(mtlab(NULL, NULL, a1), 0);
    /* part.db: trial 12 pending and tagged; merged first, so OUT's copy is pending */
    const int pending_id = (int)test_query(part, "SELECT max(id) FROM trial");
    ck_assert_int_eq(test_query(part, "SELECT status = 'pending' FROM trial WHERE id = (SELECT "
                                      "max(id) FROM trial)"),
                     1);
    char id[16];
    snprintf(id, sizeof id, "%d", pending_id);
    const char *t0[] = {"tag", id, "later", "--db", part, NULL};
    ck_assert_int_eq(mtlab(NULL, NULL, t0), 0);
    ck_assert_int_eq(merge(out, (const char *[]){part}, 1, NULL), 0);
    /* s0: an experiment tag and a note on its first trial; s1: a tag on its first */
    const char *t1[] = {"tag", "--exp", "tiny", "sweep-a", "--db", s0, NULL};
    const char *n1[] = {"note", "1", "first of shard 0", "--db", s0, NULL};
    const char *t2[] = {"tag", "1", "best", "--db", s1, NULL};
    ck_assert_int_eq(mtlab(NULL, NULL, t1), 0);
    ck_assert_int_eq(mtlab(NULL, NULL, n1), 0);
    ck_assert_int_eq(mtlab(NULL, NULL, t2), 0);
    char *err = NULL;
    ck_assert_msg(merge(out, (const char *[]){s1, s0}, 2, &err) == 0, "%s", err);
    free(err);
    ck_assert_int_eq(test_query(out, "SELECT count(*) FROM trial"), TINY_TRIALS);
    ck_assert_int_eq(test_query(out, "SELECT count(*) FROM trial WHERE status <> 'done'"), 0);
    ck_assert_int_eq(test_query(out, "SELECT count(*) FROM tag WHERE trial_id IS NULL AND tag = "
                                     "'sweep-a'"),
                     1);
    /* each trial's tag or note sits on the trial of the same identity in OUT */
    ck_assert_int_eq(on_same_trial(out, s0, 1, "note", "x.text = 'first of shard 0'"), 1);
    ck_assert_int_eq(on_same_trial(out, s1, 1, "tag", "x.tag = 'best'"), 1);
    /* OUT's tag on the replaced trial stays on it, now done */
    ck_assert_int_eq(
        on_same_trial(out, part, pending_id, "tag", "x.tag = 'later' AND t.status = 'done'"), 1);
    /* again, either order: nothing added */
    ck_assert_int_eq(merge(out, (const char *[]){s0, s1, part}, 3, NULL), 0);
    ck_assert_int_eq(test_query(out, "SELECT count(*) FROM tag"), 3);
    ck_assert_int_eq(test_query(out, "SELECT count(*) FROM note"), 1);
    free(s0);
    free(s1);
    free(part);
    free(out);
    free(ini);
    free(dir);
}
END_TEST

/* What merge refuses, with the message and exit status documented in
 * `mtlab merge --help`, leaving OUT unchanged: another sweep text under the
 * same name, another mtlab version (unless --allow-versions), another
 * schema version, and a duplicate trial with different results. */
START_TEST(test_merge_refuses) {
    char *dir = test_tmpdir(), *ini = test_write_file(dir, "tiny.ini", tiny_ini);
    run_shards(ini, dir, 2);
    char *s0 = test_join(dir, "s0.db"), *s1 = test_join(dir, "s1.db"),
         *out = test_join(dir, "out.db"), *err;
    ck_assert_int_eq(merge(out, (const char *[]){s0}, 1, NULL), 0);
    char *before = dump_store(out);

    /* A different spec text. */
    char *text2 = strdup(tiny_ini);
    *strstr(text2, "seed = 7") = '\0';
    char *spec2 = malloc(strlen(tiny_ini) + 16);
    sprintf(spec2, "%sseed = 8%s", text2, strstr(tiny_ini, "seed = 7") + 8);
    char *ini2 = test_write_file(dir, "tiny2.ini", spec2), *other = test_join(dir, "other.db");
    const char *a[] = {"run", ini2, "--db", other, "--jobs", "1", "--limit", "1", "--quiet", NULL};
    ck_assert_int_eq(mtlab(NULL, NULL, a), 0);
    ck_assert_int_eq(merge(out, (const char *[]){s1, other}, 2, &err), 1);
    ck_assert_msg(strstr(err, "experiment 'tiny': its sweep file's text differs") != NULL, "%s",
                  err);
    free(err);

    /* A missing input: refused before OUT is created. */
    char *fresh = test_join(dir, "fresh.db"), *missing = test_join(dir, "missing.db");
    ck_assert_int_eq(merge(fresh, (const char *[]){missing}, 1, &err), 1);
    ck_assert_msg(strstr(err, "missing.db") != NULL, "%s", err);
    ck_assert_int_ne(access(fresh, F_OK), 0);
    free(err);
    free(fresh);
    free(missing);

    /* Another code version. */
    sql_exec(s1, "UPDATE experiment SET code_version = 'v0-other'");
    ck_assert_int_eq(merge(out, (const char *[]){s1}, 1, &err), 1);
    ck_assert_msg(strstr(err, "v0-other") && strstr(err, "--allow-versions"), "%s", err);
    free(err);
    char *now = dump_store(out);
    ck_assert_msg(strcmp(before, now) == 0, "a refused merge changed the store");
    free(now);

    /* Another schema version. */
    char *old = test_join(dir, "old.db");
    const char *copy[] = {"run", ini, "--db", old, "--jobs", "1", "--limit", "1", "--quiet", NULL};
    ck_assert_int_eq(mtlab(NULL, NULL, copy), 0);
    sql_exec(old, "UPDATE meta SET value = '99' WHERE key = 'schema_version'");
    ck_assert_int_eq(merge(out, (const char *[]){old}, 1, &err), 1);
    ck_assert_msg(strstr(err, "schema version 99 is newer") != NULL, "%s", err);
    free(err);

    /* A duplicate with different results: one metric value changed in a
     * copy of shard 0's store. */
    char *s0b = test_join(dir, "s0b.db");
    ck_assert_int_eq(merge(s0b, (const char *[]){s0}, 1, NULL), 0);
    sql_exec(s0b, "UPDATE metric SET value = value + 1e-6 WHERE trial_id = 2 AND name = "
                  "'test/loss/t1' AND step = 40");
    sql_exec(s0b, "UPDATE run SET blas_core = 'OtherCore'");
    ck_assert_int_eq(merge(out, (const char *[]){s0b}, 1, &err), 1);
    ck_assert_msg(strstr(err, "conflict: experiment 'tiny', repeat") && strstr(err, "(metric)") &&
                      strstr(err, "1 duplicate trial holds different results") &&
                      strstr(err, "different OpenBLAS cores") && strstr(err, "OtherCore"),
                  "%s", err);
    free(err);
    now = dump_store(out);
    ck_assert_msg(strcmp(before, now) == 0, "a refused merge changed the store");
    free(now);

    /* --allow-versions merges the other version's shard. */
    const char *allow[] = {"merge", out, s1, "--allow-versions", NULL};
    ck_assert_int_eq(mtlab(NULL, NULL, allow), 0);
    ck_assert_int_eq(test_query(out, "SELECT count(*) FROM trial WHERE status = 'done'"), 12);

    free(before);
    free(s0b);
    free(old);
    free(text2);
    free(spec2);
    free(ini2);
    free(other);
    free(s0);
    free(s1);
    free(out);
    free(ini);
    free(dir);
}
END_TEST

/* The record tables come from the schema: a table with a trial_id column
 * that mtlab does not know (a later migration's) is carried with its
 * trial; a table merge cannot place is refused by name. */
START_TEST(test_merge_schema_tables) {
    char *dir = test_tmpdir(), *ini = test_write_file(dir, "tiny.ini", tiny_ini);
    run_shards(ini, dir, 2);
    char *s0 = test_join(dir, "s0.db"), *s1 = test_join(dir, "s1.db"),
         *out = test_join(dir, "out.db"), *err;
    const char *extra = "CREATE TABLE user_note (trial_id INTEGER NOT NULL REFERENCES trial (id), "
                        "text TEXT, PRIMARY KEY (trial_id, text)) WITHOUT ROWID";
    ck_assert_int_eq(merge(out, (const char *[]){s0}, 1, NULL), 0); /* creates out */
    sql_exec(s0, extra);
    sql_exec(s1, extra);
    sql_exec(out, extra);
    sql_exec(s0, "INSERT INTO user_note SELECT id, 'from s0 ' || config || repeat FROM trial");
    sql_exec(s1, "INSERT INTO user_note SELECT id, 'from s1 ' || config || repeat FROM trial");
    sql_exec(out, "DELETE FROM user_note; DELETE FROM metric; DELETE FROM gate_hist; DELETE FROM "
                  "gate; DELETE FROM param; DELETE FROM route; DELETE FROM tensor; DELETE FROM "
                  "weights; DELETE FROM trial; DELETE FROM experiment");
    ck_assert_int_eq(merge(out, (const char *[]){s1, s0}, 2, NULL), 0);
    /* Every note is on its own trial. */
    ck_assert_int_eq(test_query(out, "SELECT count(*) FROM user_note n JOIN trial t ON t.id = "
                                     "n.trial_id WHERE substr(n.text, 9) = t.config || t.repeat"),
                     12);
    /* An input with a table OUT does not have: refused, not dropped. */
    sql_exec(s1, "CREATE TABLE only_here (trial_id INTEGER)");
    ck_assert_int_eq(merge(out, (const char *[]){s1}, 1, &err), 1);
    ck_assert_msg(strstr(err, "only_here") != NULL, "%s", err);
    free(err);
    sql_exec(s1, "DROP TABLE only_here");
    /* A table of no known kind. */
    sql_exec(out, "CREATE TABLE loose (x INTEGER)");
    ck_assert_int_eq(merge(out, (const char *[]){s1}, 1, &err), 1);
    ck_assert_msg(strstr(err, "table loose") != NULL, "%s", err);
    free(err);
    free(s0);
    free(s1);
    free(out);
    free(ini);
    free(dir);
}
END_TEST

/* ---- provenance ----------------------------------------------------------- */

/* Every run invocation is recorded with what its bits depend on, its trials
 * point at it, merge carries it, show prints it and tells when this
 * machine's OpenBLAS kernels differ. */
START_TEST(test_provenance_recorded) {
    char *dir = test_tmpdir(), *ini = test_write_file(dir, "tiny.ini", tiny_ini);
    run_shards(ini, dir, 2);
    char *s0 = test_join(dir, "s0.db"), *s1 = test_join(dir, "s1.db"),
         *out = test_join(dir, "out.db");
    ck_assert_int_eq(test_query(s0, "SELECT count(*) FROM run"), 1);
    ck_assert_int_eq(test_query(s0, "SELECT count(*) FROM trial WHERE run_id = 1"), 6);
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM run WHERE shard = '0/2' AND jobs = 1 AND real_type = 'float' "
             "AND blas_threads = 1 AND sqlite_version = '%s' AND blas_core = '%s' AND "
             "blas_version LIKE 'OpenBLAS %%' AND cflags LIKE '%%-ffp-contract=off%%' AND "
             "compiler != '' AND cpu_model != '' AND host != '' AND mtlab_version != '' AND "
             "dirty = (mtlab_version LIKE '%%-dirty') AND started LIKE '20%%Z'",
             sqlite3_libversion(), provenance_blas_core());
    ck_assert_int_eq(test_query(s0, sql), 1);
    /* Merged: one run per shard, each trial still on its own. */
    ck_assert_int_eq(merge(out, (const char *[]){s1, s0}, 2, NULL), 0);
    ck_assert_int_eq(merge(out, (const char *[]){s0, s1}, 2, NULL), 0);
    ck_assert_int_eq(test_query(out, "SELECT count(*) FROM run"), 2);
    ck_assert_int_eq(test_query(out, "SELECT count(*) FROM trial t JOIN run r ON r.id = t.run_id "
                                     "WHERE r.shard = '0/2'"),
                     6);
    ck_assert_int_eq(test_query(out, "SELECT count(*) FROM trial t JOIN run r ON r.id = t.run_id "
                                     "WHERE r.shard = '1/2'"),
                     6);
    /* mtlab export writes it too (its tables come from the schema). */
    char *csv = test_join(dir, "csv"), *run_csv = test_join(csv, "run.csv");
    const char *export[] = {"export", "--csv", csv, "--db", s0, NULL};
    ck_assert_int_eq(mtlab(NULL, NULL, export), 0);
    ck_assert_int_eq(count_lines(run_csv), 2);
    free(csv);
    free(run_csv);
    /* show prints it; the rerun command carries the core. */
    char *text;
    const char *show[] = {"show", "1", "--db", s0, NULL};
    ck_assert_int_eq(mtlab(&text, NULL, show), 0);
    char want[128];
    snprintf(want, sizeof want, "core %s", provenance_blas_core());
    ck_assert_msg(strstr(text, "ran by      run 1") && strstr(text, want) &&
                      strstr(text, "shard 0/2") && strstr(text, "real float"),
                  "%s", text);
    snprintf(want, sizeof want, "--expect-blas-core %s\n", provenance_blas_core());
    ck_assert_msg(strstr(text, want) != NULL, "%s", text);
    ck_assert_ptr_null(strstr(text, "note: this machine"));
    free(text);
    /* A trial run on other kernels: show and the rerun both say so. */
    sql_exec(s0, "UPDATE run SET blas_core = 'OtherCore'");
    ck_assert_int_eq(mtlab(&text, NULL, show), 0);
    ck_assert_msg(strstr(text, "note: this machine's OpenBLAS core is") &&
                      strstr(text, "the trial ran on OtherCore"),
                  "%s", text);
    free(text);
    char *err;
    const char *train[] = {"train", "train.steps=0", "--expect-blas-core", "OtherCore", NULL};
    ck_assert_int_eq(mtlab(NULL, &err, train), 0);
    ck_assert_msg(strstr(err, "the trial ran on OtherCore") != NULL, "%s", err);
    free(err);
    free(s0);
    free(s1);
    free(out);
    free(ini);
    free(dir);
}
END_TEST

/* MTLAB_BLAS_CORE forces OpenBLAS's core (here the one it runs anyway, so
 * the test holds on any CPU) and the run records that it was forced; a core
 * OpenBLAS does not run is a usage error naming the variable. */
START_TEST(test_blas_core_forced) {
    char *dir = test_tmpdir(), *ini = test_write_file(dir, "tiny.ini", tiny_ini),
         *db = test_join(dir, "r.db");
    setenv("MTLAB_BLAS_CORE", provenance_blas_core(), 1);
    const char *args[] = {"run", ini, "--db", db, "--jobs", "1", "--limit", "1", "--quiet", NULL};
    ck_assert_int_eq(mtlab(NULL, NULL, args), 0);
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM run WHERE blas_core = '%s' AND "
             "blas_core_forced = '%s'",
             provenance_blas_core(), provenance_blas_core());
    ck_assert_int_eq(test_query(db, sql), 1);
    setenv("MTLAB_BLAS_CORE", "NoSuchCore", 1);
    char *err;
    ck_assert_int_eq(mtlab(NULL, &err, args), 2);
    ck_assert_msg(strstr(err, "MTLAB_BLAS_CORE=NoSuchCore") != NULL, "%s", err);
    free(err);
    unsetenv("MTLAB_BLAS_CORE");
    free(db);
    free(ini);
    free(dir);
}
END_TEST

/* mtlab slurm without Slurm: the script it writes, what a second call
 * submits (only the incomplete shards), what it refuses, and --status. */
START_TEST(test_slurm_dry_run) {
    char *dir = test_tmpdir(), *ini = test_write_file(dir, "tiny.ini", tiny_ini),
         *out_dir = test_join(dir, "c"), *script = test_join(out_dir, "job.sbatch"), *out, *err;
    const char *first[] = {"slurm",           ini, "--out",     out_dir,    "--tasks",     "3",
                           "--parallel",      "2", "--time",    "00:10:00", "--partition", "short",
                           "--cpus-per-task", "2", "--dry-run", NULL};
    ck_assert_int_eq(mtlab(&out, NULL, first), 0);
    ck_assert_msg(strstr(out, "sbatch --parsable --array=0-2%2 ") != NULL, "%s", out);
    free(out);
    FILE *f = fopen(script, "r");
    ck_assert_ptr_nonnull(f);
    char text[8192];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    ck_assert_msg(strstr(text, "#SBATCH --array=0-2%2\n") &&
                      strstr(text, "#SBATCH --cpus-per-task=2\n") &&
                      strstr(text, "#SBATCH --time=00:10:00\n") &&
                      strstr(text, "#SBATCH --partition=short\n") &&
                      strstr(text, "--shard \"$SLURM_ARRAY_TASK_ID/3\"") &&
                      strstr(text, "/shard-'\"$SLURM_ARRAY_TASK_ID.db\" --jobs 2 --release-stale"),
                  "%s", text);
    /* Shard 1 run by hand into its store (as its task would): a second call
     * submits shards 0 and 2 only; --status tells the same. */
    char *s1 = test_join(out_dir, "shard-1.db"), *copy = test_join(out_dir, "sweep.ini");
    const char *run1[] = {"run", copy,     "--shard", "1/3",     "--db",
                          s1,    "--jobs", "1",       "--quiet", NULL};
    ck_assert_int_eq(mtlab(NULL, NULL, run1), 0);
    const char *again[] = {"slurm", ini, "--out", out_dir, "--dry-run", NULL};
    ck_assert_int_eq(mtlab(&out, NULL, again), 0);
    ck_assert_msg(strstr(out, "1 complete, 0 queued or running, submitting 2") &&
                      strstr(out, "--array=0,2 "),
                  "%s", out);
    free(out);
    const char *status[] = {"slurm", "--status", out_dir, NULL};
    ck_assert_int_eq(mtlab(&out, NULL, status), 1);
    ck_assert_msg(strstr(out, "    1       4      4      0       0       0  complete") &&
                      strstr(out, "not started") && strstr(out, "1 of 3 shards complete"),
                  "%s", out);
    free(out);
    /* Refused: another --tasks, another sweep file, for the same DIR. */
    const char *other_tasks[] = {"slurm", ini, "--out", out_dir, "--tasks", "4", "--dry-run", NULL};
    ck_assert_int_eq(mtlab(NULL, &err, other_tasks), 2);
    ck_assert_msg(strstr(err, "set up with --tasks 3") != NULL, "%s", err);
    free(err);
    char *edited = replaced(tiny_ini, "seed = 7\n", "seed = 8\n");
    char *ini2 = test_write_file(dir, "tiny2.ini", edited);
    const char *other_sweep[] = {"slurm", ini2, "--out", out_dir, "--dry-run", NULL};
    ck_assert_int_eq(mtlab(NULL, &err, other_sweep), 2);
    ck_assert_msg(strstr(err, "holds the shards of another sweep file") != NULL, "%s", err);
    free(err);
    /* All shards complete: nothing to submit, --status exits 0. */
    for (int i = 0; i < 3; i += 2) {
        char name[32], shard[16];
        snprintf(name, sizeof name, "shard-%d.db", i);
        snprintf(shard, sizeof shard, "%d/3", i);
        char *db = test_join(out_dir, name);
        const char *run[] = {"run", copy,     "--shard", shard,     "--db",
                             db,    "--jobs", "1",       "--quiet", NULL};
        ck_assert_int_eq(mtlab(NULL, NULL, run), 0);
        free(db);
    }
    ck_assert_int_eq(mtlab(&out, NULL, again), 0);
    ck_assert_msg(strstr(out, "all 3 shards complete") != NULL, "%s", out);
    free(out);
    ck_assert_int_eq(mtlab(&out, NULL, status), 0);
    free(out);
    free(edited);
    free(ini2);
    free(s1);
    free(copy);
    free(script);
    free(out_dir);
    free(ini);
    free(dir);
}
END_TEST

/* ---- a real one-node Slurm cluster ----------------------------------------- *
 *
 * The test starts its own cluster, as in ../shared/reference/slurm-local.md
 * but private: munged on a socket and key in the test's scratch folder,
 * slurmctld and slurmd on a slurm.conf there (SLURM_CONF points every Slurm
 * command at it) with ports of their own, so a system Slurm or another test
 * run is neither used nor disturbed.  It stops exactly the daemons it
 * started, by the pids they wrote.  When they cannot run (Slurm not
 * installed, not root), the test says so loudly on stderr and passes: the
 * shard and merge tests above cover the rest without Slurm. */

typedef struct {
    char *dir;
    bool up;      /* daemons may have been started: stop them */
    bool running; /* the cluster answers */
} cluster_t;

/* Started once for the slurm tcase by an unchecked fixture, in Check's
 * parent process: its teardown runs even when a test fails, so no daemon
 * outlives the suite. */
static cluster_t the_cluster;

static bool on_path(const char *tool) {
    const char *path = getenv("PATH");
    char buf[4096];
    snprintf(buf, sizeof buf, "%s:/usr/sbin:/sbin", path ? path : "/usr/bin:/bin");
    for (char *save, *d = strtok_r(buf, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        char full[4200];
        snprintf(full, sizeof full, "%s/%s", d, tool);
        if (access(full, X_OK) == 0) return true;
    }
    return false;
}

/* Runs a shell command (the daemons' own start-up), 0 when it exits 0. */
static int sh(const char *cmd) {
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static long read_pid(const char *dir, const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    long pid = 0;
    if (f) {
        if (fscanf(f, "%ld", &pid) != 1) pid = 0;
        fclose(f);
    }
    return pid;
}

static void cluster_stop(cluster_t *c) {
    const char *pids[] = {"slurmd.pid", "slurmctld.pid", "munged.pid"};
    for (size_t i = 0; i < sizeof pids / sizeof pids[0]; i++) {
        long pid = read_pid(c->dir, pids[i]);
        if (pid <= 1) continue;
        kill((pid_t)pid, SIGTERM);
        for (int k = 0; k < 100 && kill((pid_t)pid, 0) == 0; k++)
            usleep(50000);
        if (kill((pid_t)pid, 0) == 0) kill((pid_t)pid, SIGKILL);
    }
}

/* Starts the private cluster; false (with the reason printed) when it
 * cannot run here. */
static bool cluster_start(cluster_t *c) {
    const char *tools[] = {"munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo"};
    for (size_t i = 0; i < sizeof tools / sizeof tools[0]; i++)
        if (!on_path(tools[i])) {
            fprintf(stderr,
                    "\n*** cluster test SKIPPED: %s is not installed (make deps installs Slurm "
                    "and munge); the shard + merge tests ran without Slurm ***\n\n",
                    tools[i]);
            return false;
        }
    if (geteuid() != 0) {
        fprintf(stderr, "\n*** cluster test SKIPPED: slurmd must run as root here; the shard + "
                        "merge tests ran without Slurm ***\n\n");
        return false;
    }
    c->dir = test_tmpdir();
    char host[256];
    gethostname(host, sizeof host);
    host[sizeof host - 1] = '\0';
    char *dot = strchr(host, '.');
    if (dot) *dot = '\0';
    const int port = 20000 + (int)(getpid() % 10000) * 2;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    char conf[4096];
    snprintf(conf, sizeof conf,
             "ClusterName=mtlabtest\nSlurmctldHost=%s\nSlurmctldPort=%d\nSlurmdPort=%d\n"
             "SlurmUser=root\nSlurmdUser=root\nAuthType=auth/munge\nCredType=cred/munge\n"
             "AuthInfo=socket=%s/munge.sock\nProctrackType=proctrack/linuxproc\n"
             "TaskPlugin=task/none\nJobAcctGatherType=jobacct_gather/none\nMpiDefault=none\n"
             "SchedulerType=sched/backfill\nSelectType=select/cons_tres\n"
             "SelectTypeParameters=CR_Core\nStateSaveLocation=%s/state\nSlurmdSpoolDir=%s/spool\n"
             "SlurmctldPidFile=%s/slurmctld.pid\nSlurmdPidFile=%s/slurmd.pid\n"
             "SlurmctldLogFile=%s/slurmctld.log\nSlurmdLogFile=%s/slurmd.log\n"
             "ReturnToService=2\nKillWait=2\n"
             "NodeName=%s CPUs=%ld State=UNKNOWN\n"
             "PartitionName=debug Nodes=%s Default=YES MaxTime=INFINITE State=UP\n",
             host, port, port + 1, c->dir, c->dir, c->dir, c->dir, c->dir, c->dir, c->dir, host,
             cpus > 0 ? cpus : 1, host);
    free(test_write_file(c->dir, "slurm.conf", conf));
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "cd %s && mkdir -p state spool && head -c 128 /dev/urandom > munge.key && "
             "chmod 600 munge.key && munged --force --socket=%s/munge.sock "
             "--key-file=%s/munge.key --pid-file=%s/munged.pid --log-file=%s/munged.log "
             "--seed-file=%s/munged.seed",
             c->dir, c->dir, c->dir, c->dir, c->dir, c->dir);
    c->up = true; /* from here on, cluster_stop stops whatever wrote a pid */
    if (sh(cmd) != 0) {
        fprintf(stderr, "\n*** cluster test SKIPPED: munged does not start (%s/munged.log) ***\n\n",
                c->dir);
        return false;
    }
    char conf_path[512];
    snprintf(conf_path, sizeof conf_path, "%s/slurm.conf", c->dir);
    setenv("SLURM_CONF", conf_path, 1);
    snprintf(cmd, sizeof cmd, "slurmctld -f %s && slurmd -f %s", conf_path, conf_path);
    if (sh(cmd) != 0) {
        fprintf(stderr,
                "\n*** cluster test SKIPPED: slurmctld or slurmd does not start (logs in %s) "
                "***\n\n",
                c->dir);
        return false;
    }
    /* The node is up when sinfo says idle. */
    for (int k = 0; k < 100; k++) {
        snprintf(cmd, sizeof cmd, "sinfo -h -o %%t 2>/dev/null | grep -q idle");
        if (sh(cmd) == 0) return true;
        usleep(100000);
    }
    fprintf(stderr, "\n*** cluster test SKIPPED: the node never became idle (logs in %s) ***\n\n",
            c->dir);
    return false;
}

/* Waits until `mtlab slurm --status dir` says every shard is complete. */
static void wait_complete(const char *dir, int seconds) {
    for (int k = 0; k < seconds * 5; k++) {
        const char *args[] = {"slurm", "--status", dir, NULL};
        if (mtlab(NULL, NULL, args) == 0) return;
        usleep(200000);
    }
    char *out;
    const char *args[] = {"slurm", "--status", dir, NULL};
    mtlab(&out, NULL, args);
    ck_abort_msg("the job array did not complete in %d s: %s", seconds, out);
}

/* Done trials of a store being written (-1 while it has no tables yet). */
static double done_count(const char *path) {
    sqlite3 *db;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return -1;
    }
    sqlite3_busy_timeout(db, 2000);
    sqlite3_stmt *st;
    double v = -1;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM trial WHERE status = 'done'", -1, &st, NULL) ==
        SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_double(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return v;
}

/* The last job id mtlab slurm recorded in dir/jobs. */
static long last_job(const char *dir) {
    char *path = test_join(dir, "jobs");
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    long job = 0, v;
    while (fscanf(f, "%ld", &v) == 1)
        job = v;
    fclose(f);
    free(path);
    return job;
}

/* A 4-task array of the tiny sweep on a real Slurm, merged, equals a --jobs
 * 1 run bit for bit; the second call submits nothing; a task cancelled
 * mid-run (scancel) and resubmitted completes its shard without
 * duplicates. */
static void cluster_setup(void) {
    the_cluster.running = cluster_start(&the_cluster);
}

static void cluster_teardown(void) {
    if (the_cluster.up) cluster_stop(&the_cluster);
    free(the_cluster.dir);
    the_cluster = (cluster_t){0};
}

START_TEST(test_slurm_array) {
    if (!the_cluster.running) {
        fprintf(stderr, "*** test_slurm_array: no Slurm cluster here (see above): skipped ***\n");
        return;
    }
    char *dir = test_tmpdir(), *ini = test_write_file(dir, "tiny.ini", tiny_ini),
         *out_dir = test_join(dir, "cluster"), *one = test_join(dir, "one.db"),
         *merged = test_join(dir, "merged.db"), *jobs = test_join(out_dir, "jobs");
    char *out, *err;
    const char *submit[] = {"slurm", ini,          "--out", out_dir, "--tasks",
                            "4",     "--parallel", "2",     NULL};
    int rc = mtlab(&out, &err, submit);
    ck_assert_msg(rc == 0 && strstr(out, "submitting 4") && strstr(out, "submitted job"),
                  "%d: %s %s", rc, out, err);
    free(out);
    free(err);
    wait_complete(out_dir, 60);
    /* Complete: a second call submits nothing. */
    ck_assert_int_eq(mtlab(&out, NULL, submit), 0);
    ck_assert_msg(strstr(out, "all 4 shards complete") != NULL, "%s", out);
    free(out);
    ck_assert_int_eq(count_lines(jobs), 1);
    const char *ins[4];
    char *shard_paths[4];
    for (int i = 0; i < 4; i++) {
        char name[32];
        snprintf(name, sizeof name, "shard-%d.db", i);
        ins[i] = shard_paths[i] = test_join(out_dir, name);
    }
    ck_assert_int_eq(merge(merged, ins, 4, NULL), 0);
    const char *one_args[] = {"run", ini, "--db", one, "--jobs", "1", "--quiet", NULL};
    ck_assert_int_eq(mtlab(NULL, NULL, one_args), 0);
    assert_same_results(merged, one);
    ck_assert_int_eq(test_query(merged, "SELECT count(DISTINCT shard) FROM run"), 4);

    /* scancel mid-run, then resubmit. */
    /* 4 trials of about a second (one model, one correlation, 4 repeats):
     * shard 0 holds trials 0 and 2. */
    const char *edits[][2] = {{"steps = 40\n", "steps = 30000\n"},
                              {"eval_every = 20\n", "eval_every = 10000\n"},
                              {"correlation = 0.5, 0.9\n", "correlation = 0.5\n"},
                              {"name = shared_bottom, mmoe\n", "name = mmoe\n"},
                              {"repeats = 3\n", "repeats = 4\n"},
                              {"[model.shared_bottom]\nbottom_hidden = 8\n", ""}};
    char *slow_ini = strdup(tiny_ini);
    for (size_t e = 0; e < sizeof edits / sizeof edits[0]; e++) {
        char *next = replaced(slow_ini, edits[e][0], edits[e][1]);
        free(slow_ini);
        slow_ini = next;
    }
    char *ini2 = test_write_file(dir, "slow.ini", slow_ini), *dir2 = test_join(dir, "cluster2"),
         *one2 = test_join(dir, "one2.db"), *merged2 = test_join(dir, "merged2.db");
    const char *submit2[] = {"slurm", ini2, "--out", dir2, "--tasks", "2", NULL};
    ck_assert_int_eq(mtlab(NULL, NULL, submit2), 0);
    char *s0 = test_join(dir2, "shard-0.db");
    /* Cancel task 0 once it has finished a trial but not its shard. */
    bool cancelled = false;
    for (int k = 0; k < 600 && !cancelled; k++) {
        usleep(50000);
        if (access(s0, F_OK) != 0) continue;
        double done = done_count(s0);
        if (done >= 1 && done < 2) {
            char cmd[128];
            snprintf(cmd, sizeof cmd, "scancel %ld_0", last_job(dir2));
            ck_assert_int_eq(sh(cmd), 0);
            cancelled = true;
        } else if (done >= 2)
            break;
    }
    ck_assert_msg(cancelled, "task 0 finished before it could be cancelled");
    /* Wait until Slurm no longer runs it, then resubmit: only what is
     * incomplete goes. */
    for (int k = 0; k < 100; k++) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "squeue -h -r -o %%K -j %ld | grep -qx 0", last_job(dir2));
        if (sh(cmd) != 0) break;
        usleep(100000);
    }
    ck_assert_int_lt(test_query(s0, "SELECT count(*) FROM trial WHERE status = 'done'"), 2);
    ck_assert_int_eq(mtlab(&out, NULL, submit2), 0);
    ck_assert_msg(strstr(out, "submitted job") && strstr(out, "array 0"), "%s", out);
    free(out);
    wait_complete(dir2, 90);
    char *s1 = test_join(dir2, "shard-1.db");
    ck_assert_int_eq(merge(merged2, (const char *[]){s0, s1}, 2, NULL), 0);
    const char *one2_args[] = {"run", ini2, "--db", one2, "--jobs", "1", "--quiet", NULL};
    ck_assert_int_eq(mtlab(NULL, NULL, one2_args), 0);
    ck_assert_int_eq(test_query(merged2, "SELECT count(*) FROM trial"), 4);
    assert_same_results(merged2, one2);

    for (int i = 0; i < 4; i++)
        free(shard_paths[i]);
    free(s0);
    free(s1);
    free(slow_ini);
    free(ini2);
    free(dir2);
    free(one2);
    free(merged2);
    free(jobs);
    free(one);
    free(merged);
    free(out_dir);
    free(ini);
    free(dir);
}
END_TEST

Suite *cluster_suite(void) {
    Suite *s = suite_create("cluster");
    TCase *tc = tcase_create("shard");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_shards_partition);
    tcase_add_test(tc, test_shard_store_resumes);
    suite_add_tcase(s, tc);
    tc = tcase_create("merge");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_merge_shards_equal_one_run);
    tcase_add_test(tc, test_merge_unfinished);
    tcase_add_test(tc, test_merge_refuses);
    tcase_add_test(tc, test_merge_annotations);
    tcase_add_test(tc, test_merge_schema_tables);
    suite_add_tcase(s, tc);
    tc = tcase_create("provenance");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_provenance_recorded);
    tcase_add_test(tc, test_blas_core_forced);
    suite_add_tcase(s, tc);
    tc = tcase_create("script");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_slurm_dry_run);
    suite_add_tcase(s, tc);
    tc = tcase_create("slurm");
    tcase_add_unchecked_fixture(tc, cluster_setup, cluster_teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_slurm_array);
    suite_add_tcase(s, tc);
    return s;
}
