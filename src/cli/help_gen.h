/* help_gen.h -- mtlab's man page and bash completion, generated from the
 * CLI's own tables: the command table of main.c and every command's option
 * table (cli/opts.h), so that neither can drift from what the parser takes.
 *
 *   mtlab help --man          troff for man(1): mtlab.1
 *   mtlab help --completion   a bash script: `complete -F _mtlab mtlab`
 *
 * How the tables are read: `mtlab CMD --help=describe` makes cli_options()
 * print the command's usage, description and options as tab-separated lines
 * (help_describe) instead of parsing; the generators run each command that
 * way in-process, read the lines back (help_read_described) and write troff
 * or bash.  Both generators write to f and return 0, or -1 with *err. */
#ifndef MTLAB_CLI_HELP_GEN_H
#define MTLAB_CLI_HELP_GEN_H

#include <stdbool.h>
#include <stdio.h>

#include "core/err.h"

struct opt;

/* One subcommand as main.c lists it. */
typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} cli_command_t;

/* The argument that makes a command describe itself (argv[1], alone). */
#define HELP_DESCRIBE "--help=describe"

/* Prints the description lines, fields escaped (\\ \n \t):
 *   usage <TAB> USAGE
 *   about <TAB> DESCRIPTION
 *   option <TAB> NAME <TAB> flag|value <TAB> META <TAB> HELP <TAB> DEFAULT
 * DEFAULT is "" when the help states its own. */
void help_describe(FILE *f, const char *usage, const char *description, const struct opt *opts,
                   int n_opts);

/* A command's description, read back. */
#define HELP_MAX_OPTS 64
typedef struct {
    char *usage, *about;
    int n_opts;
    struct {
        char *name, *meta, *help, *def;
        bool flag;
    } opts[HELP_MAX_OPTS];
} help_described_t;

/* Runs cmd with HELP_DESCRIBE, its stdout captured, and parses what it
 * printed into *d (help_described_free frees it). */
int help_read_described(const cli_command_t *cmd, help_described_t *d, err_t *err);
void help_described_free(help_described_t *d);

int help_man(FILE *f, const cli_command_t *cmds, int n_cmds, const char *version, err_t *err);
int help_completion(FILE *f, const cli_command_t *cmds, int n_cmds, err_t *err);

#endif
