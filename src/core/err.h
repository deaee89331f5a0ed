/* err.h -- error messages returned up the call stack.
 *
 * Functions that can fail take an `err_t *` and return an int status (0 ok,
 * nonzero failure) after filling it with a one-line message.  Nothing below
 * the CLI prints or exits; the CLI prints the message and picks the exit code
 * from `kind`: ERR_USAGE (bad input the user typed, exit 2) or ERR_FAIL
 * (everything else, exit 1). */
#ifndef MTLAB_ERR_H
#define MTLAB_ERR_H

enum { ERR_NONE = 0, ERR_FAIL = 1, ERR_USAGE = 2 };

typedef struct {
    int kind;      /* ERR_NONE, ERR_FAIL or ERR_USAGE */
    char msg[512]; /* one line, no trailing newline */
} err_t;

/* Fills *err (may be NULL) and returns -1, so callers can `return err_set(...)`. */
int err_set(err_t *err, int kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Prepends "prefix: " to an existing message (e.g. a file name or trial id). */
int err_prefix(err_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
