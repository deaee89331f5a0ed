#include "cli/opts.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sweep/keys.h"

#define OPTS_MAX 64 /* options of one command, at most (for suggestions) */

int parse_double(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || errno == ERANGE || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

int parse_long(const char *s, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end != '\0' || errno == ERANGE) return -1;
    *out = v;
    return 0;
}

static bool in_range(const opt_t *o, double v) {
    return o->min > o->max || (v >= o->min && v <= o->max);
}

static int range_error(const opt_t *o, const char *value, err_t *err) {
    return err_set(err, ERR_USAGE, "--%s: %s is out of range [%g, %g]", o->name, value, o->min,
                   o->max);
}

static int set_value(opt_t *o, const char *value, err_t *err) {
    double d;
    long long i;
    switch (o->type) {
    case OPT_INT:
        if (parse_long(value, &i) || i < INT32_MIN || i > INT32_MAX)
            return err_set(err, ERR_USAGE, "--%s: '%s' is not an integer", o->name, value);
        if (!in_range(o, (double)i)) return range_error(o, value, err);
        *(int *)o->target = (int)i;
        break;
    case OPT_U64:
        if (parse_long(value, &i) || i < 0)
            return err_set(err, ERR_USAGE, "--%s: '%s' is not a non-negative integer", o->name,
                           value);
        *(uint64_t *)o->target = (uint64_t)i;
        break;
    case OPT_DOUBLE:
        if (parse_double(value, &d)) {
            char *end;
            double v = strtod(value, &end);
            if (end != value && *end == '\0') /* a number, out of range */
                return err_set(err, ERR_USAGE, "--%s: %s is too %s (out of range)", o->name, value,
                               isinf(v) ? "large" : "small");
            return err_set(err, ERR_USAGE, "--%s: '%s' is not a number", o->name, value);
        }
        if (d != 0 && fabs(d) < FLT_MIN && o->min > 0)
            return err_set(err, ERR_USAGE,
                           "--%s: %s is too small (below single precision's smallest normal "
                           "number, %g)",
                           o->name, value, (double)FLT_MIN);
        if (!in_range(o, d)) return range_error(o, value, err);
        *(double *)o->target = d;
        break;
    case OPT_STRING:
        *(const char **)o->target = value;
        break;
    case OPT_FLAG:
        *(bool *)o->target = true;
        break;
    }
    o->seen = true;
    return 0;
}

/* "unknown option '--sotr' (did you mean '--sort'?)", or "(see --help)". */
static int unknown_option(const opt_t *opts, int n_opts, const char *name, size_t len, err_t *err) {
    char typed[64];
    const char *names[OPTS_MAX];
    int n = 0;
    snprintf(typed, sizeof typed, "%.*s", (int)(len < sizeof typed ? len : sizeof typed - 1), name);
    for (int i = 0; i < n_opts && n < OPTS_MAX; i++)
        names[n++] = opts[i].name;
    const char *near = sweep_suggest(typed, names, n);
    if (near)
        return err_set(err, ERR_USAGE, "unknown option '--%s' (did you mean '--%s'?)", typed, near);
    return err_set(err, ERR_USAGE, "unknown option '--%s' (see --help)", typed);
}

int opts_parse(opt_t *opts, int n_opts, int argc, char **argv, const char **pos, int max_pos,
               int *n_pos, err_t *err) {
    *n_pos = 0;
    for (int a = 1; a < argc && strcmp(argv[a], "--") != 0; a++)
        if (strcmp(argv[a], "--help") == 0 || strcmp(argv[a], "-h") == 0) return 1;
    bool options_done = false; /* after "--" every argument is positional */
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (!options_done && strcmp(arg, "--") == 0) {
            options_done = true;
            continue;
        }
        if (options_done || strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
            if (*n_pos >= max_pos) return err_set(err, ERR_USAGE, "unexpected argument '%s'", arg);
            pos[(*n_pos)++] = arg;
            continue;
        }
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        opt_t *o = NULL;
        for (int i = 0; i < n_opts; i++)
            if (strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0) o = &opts[i];
        if (!o) return unknown_option(opts, n_opts, name, len, err);
        const char *value;
        if (o->type == OPT_FLAG) {
            if (eq) return err_set(err, ERR_USAGE, "--%s takes no value", o->name);
            value = "";
        } else if (eq) {
            value = eq + 1;
        } else {
            if (a + 1 >= argc) return err_set(err, ERR_USAGE, "--%s needs a value", o->name);
            value = argv[++a];
        }
        if (set_value(o, value, err)) return -1;
    }
    return 0;
}

void opts_usage(FILE *f, const char *usage, const char *description, const opt_t *opts,
                int n_opts) {
    fprintf(f, "usage: %s\n\n%s\n\noptions:\n", usage, description);
    for (int i = 0; i < n_opts; i++) {
        const opt_t *o = &opts[i];
        char left[64], def[64] = "";
        if (o->type == OPT_FLAG)
            snprintf(left, sizeof left, "--%s", o->name);
        else
            snprintf(left, sizeof left, "--%s %s", o->name, o->meta ? o->meta : "X");
        switch (o->type) {
        case OPT_INT:
            snprintf(def, sizeof def, "%d", *(const int *)o->target);
            break;
        case OPT_U64:
            snprintf(def, sizeof def, "%" PRIu64, *(const uint64_t *)o->target);
            break;
        case OPT_DOUBLE:
            snprintf(def, sizeof def, "%g", *(const double *)o->target);
            break;
        case OPT_STRING: {
            const char *s = *(const char *const *)o->target;
            snprintf(def, sizeof def, "%s", s ? s : "none");
            break;
        }
        case OPT_FLAG:
            snprintf(def, sizeof def, "off");
            break;
        }
        if (strstr(o->help, "default")) /* the help states its own default */
            fprintf(f, "  %-24s %s\n", left, o->help);
        else
            fprintf(f, "  %-24s %s (default: %s)\n", left, o->help, def);
    }
    fprintf(f, "  %-24s %s\n", "--help", "show this help");
}
