/* cli.h -- the subcommands of build/mtlab (one file each, git-style).
 *
 * Each returns the process exit status: 0 ok, 1 failure, 2 usage error; it
 * prints its own one-line error to stderr as "mtlab CMD: message". */
#ifndef MTLAB_CLI_H
#define MTLAB_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "core/err.h"

int cmd_train(int argc, char **argv);
int cmd_gen(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_sql(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_reproduce(int argc, char **argv);
int cmd_claims(int argc, char **argv);
int cmd_trials(int argc, char **argv);
int cmd_keys(int argc, char **argv);
int cmd_schema(int argc, char **argv);
int cmd_tag(int argc, char **argv);
int cmd_note(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_slurm(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_rerun(int argc, char **argv);

/* Prints "mtlab CMD: msg" and returns the exit status for err->kind. */
int cli_fail(const char *cmd, const err_t *err);

/* Parses a subcommand's options (cli/opts.h).  Returns CLI_CONTINUE when the
 * command should go on; otherwise the exit status to return: 0 after printing
 * the help for --help, 2 after printing a usage error. */
#define CLI_CONTINUE (-1)
struct opt;
int cli_options(const char *cmd, const char *usage, const char *description, struct opt *opts,
                int n_opts, int argc, char **argv, const char **pos, int max_pos, int *n_pos);

/* The runs-table query of `experiment` (a name or id) with the --where,
 * --sort ([-]COL) and --cols (names or globs) of `mtlab trials` (NULL: none);
 * unknown columns are ERR_USAGE with a suggestion.  *sql: mem_free. */
struct store;
int cli_runs_query(struct store *s, const char *experiment, bool all_keys, const char *where,
                   const char *sort, const char *cols, char **sql, err_t *err);

/* `mtlab ls --history EXPERIMENT` (a name or id): every spec text it was run
 * with, oldest first, with overrides, draw rule, trials added and the line
 * diff from the one before.  ERR_USAGE when there is no such experiment. */
int cli_spec_history(struct store *s, const char *experiment, FILE *f, err_t *err);

#endif
