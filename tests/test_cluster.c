/* test_cluster.c -- beyond one machine (SPEC §10): `mtlab run --shard I/N`,
 * `mtlab merge`, the provenance of a run and `mtlab slurm`.  The key
 * property: the shards of a sweep, run separately and merged, hold the same
 * trials with the same bits as one `--jobs 1` run of the sweep. */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    const int ns[] = {1, 2, 3, 4, 5, 12, 13};
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
    const char *first[] = {"run", ini, "--shard", "1/3", "--db", db, "--jobs", "1", "--limit", "2",
                           NULL};
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

Suite *cluster_suite(void) {
    Suite *s = suite_create("cluster");
    TCase *tc = tcase_create("shard");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_shards_partition);
    tcase_add_test(tc, test_shard_store_resumes);
    suite_add_tcase(s, tc);
    return s;
}
