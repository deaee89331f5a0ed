/* testutil.h -- helpers shared by the Check suites. */
#ifndef MTLAB_TESTUTIL_H
#define MTLAB_TESTUTIL_H

#include <check.h>
#include <stddef.h>

/* Runs build/mtlab (path from $MTLAB_BIN) with the given arguments, no shell.
 * Captures stdout and stderr into malloc'd strings (caller frees) and returns
 * the exit status (128 + signal when killed by a signal). */
int run_mtlab(char **out, char **errout, const char *const *args);
/* The same, run in directory `dir` (NULL: the current one). */
int run_mtlab_in(const char *dir, char **out, char **errout, const char *const *args);

/* Path of a fresh temporary directory for this test (caller frees). */
char *test_tmpdir(void);

/* Every suite of the runner. */
Suite *rng_suite(void);
Suite *nn_suite(void);
Suite *models_suite(void);
Suite *synth_suite(void);
Suite *train_suite(void);
Suite *cli_suite(void);
Suite *store_suite(void);
Suite *sweep_suite(void);
Suite *run_suite(void);
Suite *plot_suite(void);

#endif
