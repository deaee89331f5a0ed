/* check_main.c -- the test runner: every suite, or those named in
 * $CK_RUN_SUITE (Check's own selector), or one shard of them.
 *
 * Sharding ($MTLAB_TEST_SHARD = "I/N", `make check` runs N = 2 at once on
 * two cores): the suites are dealt to N shards by their measured cost,
 * longest first, each to the shard with the least so far (deterministic),
 * so the shards take about as long.  The costs are seconds of the normal
 * build on an idle 2-core machine (2026-11-30); a wrong cost only unbalances
 * the shards, it never drops a suite. */
#include <stdio.h>
#include <stdlib.h>

#include "testutil.h"

typedef struct {
    Suite *(*make)(void);
    double cost; /* seconds, normal build */
} suite_entry_t;

/* In the order they run when not sharded. */
static const suite_entry_t suites[] = {
    {rng_suite, 6.3},      {nn_suite, 0.2},        {models_suite, 3.4},   {synth_suite, 1.8},
    {train_suite, 6.0},    {learns_suite, 28.1},   {metrics_suite, 0.1},  {cli_suite, 5.9},
    {store_suite, 1.3},    {sweep_suite, 1.4},     {run_suite, 2.6},      {crash_suite, 13.1},
    {mem_suite, 0.1},      {plot_suite, 1.6},      {blocks_suite, 0.1},   {golden_suite, 0.2},
    {identity_suite, 2.0}, {claims_suite, 2.1},    {fusion1_suite, 1.4},  {fusion3_suite, 0.7},
    {fusion2_suite, 0.5},  {workbench_suite, 2.1}, {cluster_suite, 21.5}, {report_suite, 1.1},
    {install_suite, 4.0},
    {overrides_suite, 2.0},
    {snr_suite, 1.9},
    {routes_suite, 1.0},
    {adatt_study_suite, 3.0},
    {mtnas_suite, 3.0},
};
enum { N_SUITES = (int)(sizeof suites / sizeof suites[0]) };

/* shard[i]: the shard of suite i among n (longest-processing-time first). */
static void deal(int n, int *shard) {
    double load[64] = {0};
    int done[N_SUITES] = {0};
    for (int k = 0; k < N_SUITES; k++) {
        int longest = -1;
        for (int i = 0; i < N_SUITES; i++)
            if (!done[i] && (longest < 0 || suites[i].cost > suites[longest].cost)) longest = i;
        int least = 0;
        for (int s = 1; s < n; s++)
            if (load[s] < load[least]) least = s;
        shard[longest] = least;
        load[least] += suites[longest].cost;
        done[longest] = 1;
    }
}

int main(void) {
    int index = 0, count = 1;
    const char *spec = getenv("MTLAB_TEST_SHARD");
    if (spec && (sscanf(spec, "%d/%d", &index, &count) != 2 || count < 1 || count > 64 ||
                 index < 0 || index >= count)) {
        fprintf(stderr, "MTLAB_TEST_SHARD=%s: expected I/N with 0 <= I < N <= 64\n", spec);
        return EXIT_FAILURE;
    }
    int shard[N_SUITES];
    deal(count, shard);
    SRunner *sr = NULL;
    for (int i = 0; i < N_SUITES; i++) {
        if (shard[i] != index) continue;
        if (!sr)
            sr = srunner_create(suites[i].make());
        else
            srunner_add_suite(sr, suites[i].make());
    }
    if (!sr) return EXIT_SUCCESS;
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
