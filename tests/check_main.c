/* check_main.c -- the test runner: every suite, or those named in
 * $CK_RUN_SUITE (Check's own selector). */
#include <stdlib.h>

#include "testutil.h"

int main(void) {
    SRunner *sr = srunner_create(rng_suite());
    srunner_add_suite(sr, nn_suite());
    srunner_add_suite(sr, models_suite());
    srunner_add_suite(sr, synth_suite());
    srunner_add_suite(sr, train_suite());
    srunner_add_suite(sr, metrics_suite());
    srunner_add_suite(sr, cli_suite());
    srunner_add_suite(sr, store_suite());
    srunner_add_suite(sr, sweep_suite());
    srunner_add_suite(sr, run_suite());
    srunner_add_suite(sr, crash_suite());
    srunner_add_suite(sr, mem_suite());
    srunner_add_suite(sr, plot_suite());
    srunner_add_suite(sr, blocks_suite());
    srunner_add_suite(sr, golden_suite());
    srunner_add_suite(sr, identity_suite());
    srunner_add_suite(sr, claims_suite());
    srunner_add_suite(sr, fusion1_suite());
    srunner_add_suite(sr, fusion3_suite());
    srunner_add_suite(sr, fusion2_suite());
    srunner_add_suite(sr, workbench_suite());
    srunner_add_suite(sr, cluster_suite());
    srunner_add_suite(sr, report_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
