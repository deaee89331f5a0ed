/* testutil.h -- helpers shared by the Check suites. */
#ifndef MTLAB_TESTUTIL_H
#define MTLAB_TESTUTIL_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Runs build/mtlab (path from $MTLAB_BIN) with the given arguments, no shell.
 * Captures stdout and stderr into malloc'd strings (caller frees) and returns
 * the exit status (128 + signal when killed by a signal). */
int run_mtlab(char **out, char **errout, const char *const *args);
/* Runs mtlab with args and asserts its exit status is `expect`; returns
 * stdout (caller frees) and frees stderr unless errout is given. */
char *test_mtlab_ok(int expect, char **errout, const char *const *args);
/* The number of '\n' in s. */
int test_count_lines(const char *s);
/* The same as run_mtlab, run in directory `dir` (NULL: the current one). */
int run_mtlab_in(const char *dir, char **out, char **errout, const char *const *args);

/* Path of a fresh temporary directory for this test (caller frees). */
char *test_tmpdir(void);
/* "dir/name" (caller frees). */
char *test_join(const char *dir, const char *name);
/* Writes text to dir/name and returns the path (caller frees). */
char *test_write_file(const char *dir, const char *name, const char *text);
/* The whole text file at path, NUL-terminated (caller frees); fails the
 * test when it cannot be opened. */
char *test_read_file(const char *path);
/* First column of the first row of `sql` on the store at db_path, through a
 * fresh read-only connection (NAN when no row). */
double test_query(const char *db_path, const char *sql);
/* Starts build/mtlab with args in the background (stdin /dev/null, stdout
 * and stderr to the given files or /dev/null; new_session: setsid, so that
 * kill(-pid) reaches its workers).  Returns its pid. */
pid_t test_spawn_mtlab(const char *const *args, const char *out_path, const char *err_path,
                       bool new_session);

/* Sets hyper-parameter `name` of c, made for family `model`, when that
 * family declares it (a test's one config for several families). */
void test_set_hp(void *model_config, const char *model, const char *name, double value);

/* Splits a command line as a POSIX shell would for what `mtlab show` prints
 * (words separated by blanks; '...' quotes a word, '\'' inside it a quote):
 * the words overwrite `line` and go to words[0..n), at most max - 1, then
 * NULL.  Returns n. */
int test_split_words(char *line, const char **words, int max);

/* Runs the `mtlab train` command that `mtlab show ID` prints for trial id
 * of the store at db_path, with --digits 17, asserting it succeeds; returns
 * what it printed (caller frees). */
char *test_rerun_shown(const char *db_path, int id);

/* Every suite of the runner. */
Suite *rng_suite(void);
Suite *nn_suite(void);
Suite *models_suite(void);
Suite *synth_suite(void);
Suite *train_suite(void);
Suite *learns_suite(void);
Suite *metrics_suite(void);
Suite *cli_suite(void);
Suite *store_suite(void);
Suite *sweep_suite(void);
Suite *run_suite(void);
Suite *crash_suite(void);
Suite *mem_suite(void);
Suite *plot_suite(void);
Suite *golden_suite(void);
Suite *blocks_suite(void);
Suite *identity_suite(void);
Suite *claims_suite(void);
Suite *fusion1_suite(void);
Suite *fusion3_suite(void);
Suite *fusion2_suite(void);
Suite *workbench_suite(void);
Suite *cluster_suite(void);
Suite *report_suite(void);
Suite *install_suite(void);
Suite *overrides_suite(void);
Suite *mtnas_suite(void);
Suite *snr_suite(void);
Suite *routes_suite(void);
Suite *adatt_study_suite(void);

#endif
