/* opts.h -- table-driven `--name value` option parsing for subcommands.
 *
 * A subcommand describes its options in an opt_t table pointing at variables
 * that already hold the defaults; opts_usage() prints every option with that
 * default, so `--help` can never drift from the parser.  Numbers go through
 * strtod/strtoll with end-pointer and range checks. */
#ifndef MTLAB_OPTS_H
#define MTLAB_OPTS_H

#include <stdbool.h>
#include <stdio.h>

#include "core/err.h"

typedef enum {
    OPT_INT,    /* int *            */
    OPT_U64,    /* uint64_t *       */
    OPT_DOUBLE, /* double *         */
    OPT_STRING, /* const char **    */
    OPT_FLAG,   /* bool *  (no value) */
} opt_type_t;

typedef struct opt {
    const char *name; /* without the leading "--" */
    opt_type_t type;
    void *target;
    const char *meta; /* value placeholder in help, e.g. "P" */
    const char *help;
    double min, max; /* inclusive bounds for numbers; ignored when min > max */
    bool seen;       /* set by opts_parse when given on the command line */
} opt_t;

/* Parses argv[1..argc) ("--name value" or "--name=value"; after a lone "--"
 * every argument is positional, e.g. an SQL query starting with "--").  Positional
 * arguments are collected into pos[0..*n_pos) (at most max_pos).  Returns 0,
 * 1 when --help/-h was given (nothing else is parsed), or -1 with ERR_USAGE. */
int opts_parse(opt_t *opts, int n_opts, int argc, char **argv, const char **pos, int max_pos,
               int *n_pos, err_t *err);

/* "usage: ..." line, description, then one line per option with its default. */
void opts_usage(FILE *f, const char *usage, const char *description, const opt_t *opts, int n_opts);

/* Parses a whole string as a finite number / integer; -1 on any junk. */
int parse_double(const char *s, double *out);
int parse_long(const char *s, long long *out);

#endif
