/* cli.h -- the subcommands of build/mtlab (one file each, git-style).
 *
 * Each returns the process exit status: 0 ok, 1 failure, 2 usage error; it
 * prints its own one-line error to stderr as "mtlab CMD: message". */
#ifndef MTLAB_CLI_H
#define MTLAB_CLI_H

#include "core/err.h"

int cmd_train(int argc, char **argv);
int cmd_gen(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_sql(int argc, char **argv);
int cmd_export(int argc, char **argv);

/* Prints "mtlab CMD: msg" and returns the exit status for err->kind. */
int cli_fail(const char *cmd, const err_t *err);

#endif
