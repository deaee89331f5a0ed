/* keys.c -- the sweep key table, value canonicalisation, point resolution
 * and "did you mean" (see keys.h). */
#include "sweep/keys.h"

#include "core/numtext.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/synth.h"
#include "models/model.h"

/* ---- strict number parsing ------------------------------------------------
 * The same rules as the CLI's parse_double/parse_long (src/cli/opts.c), kept
 * here because src/sweep sits below src/cli; and one more: a number must
 * survive the conversion to single precision, the `real` of the production
 * build (whatever `real` is in this build, so a file means the same to every
 * build).  The outcome says why a text is refused, so the message can. */

typedef enum {
    PARSE_OK = 0,
    PARSE_SYNTAX,     /* not a number / integer at all */
    PARSE_NOT_FINITE, /* "inf", "nan" */
    PARSE_TOO_LARGE,  /* overflows, or rounds to infinity in single precision */
    PARSE_TOO_SMALL,  /* underflows, or a nonzero value that rounds to 0 in single precision */
} parse_t;

static parse_t parse_number(const char *s, double *out) {
    char *end;
    if (isspace((unsigned char)*s)) return PARSE_SYNTAX;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0') return PARSE_SYNTAX;
    if (errno == ERANGE) /* ERANGE: +-HUGE_VAL on overflow, a tiny value or 0 on underflow */
        return fabs(v) > 1 ? PARSE_TOO_LARGE : PARSE_TOO_SMALL;
    if (!isfinite(v)) return PARSE_NOT_FINITE;
    if (fabs(v) > FLT_MAX) return PARSE_TOO_LARGE;
    if (v != 0 && (float)v == 0) return PARSE_TOO_SMALL;
    *out = v;
    return PARSE_OK;
}

static parse_t parse_integer(const char *s, long long *out) {
    char *end;
    if (isspace((unsigned char)*s)) return PARSE_SYNTAX;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end != '\0') return PARSE_SYNTAX;
    if (errno == ERANGE) return v < 0 ? PARSE_TOO_SMALL : PARSE_TOO_LARGE;
    *out = v;
    return PARSE_OK;
}

static void format_int(long long v, char *out, size_t n) {
    snprintf(out, n, "%lld", v);
}

/* ---- defaults and setters ---------------------------------------------------
 * Defaults come from r->def (trial_spec_default with this model family's
 * model_config_default), so the table never restates a default number. */

static int text_int(const char *t) {
    return (int)strtol(t, NULL, 10);
}
static double text_num(const char *t) {
    return strtod(t, NULL);
}

/* Parses a canonical space-separated vector; returns the item count. */
static int text_ints(const char *t, int *out, int max) {
    int n = 0;
    char *end;
    for (long v = strtol(t, &end, 10); end != t && n < max; v = strtol(t, &end, 10)) {
        out[n++] = (int)v;
        t = end;
    }
    return n;
}

static int text_nums(const char *t, double *out, int max) {
    int n = 0;
    char *end;
    for (double v = strtod(t, &end); end != t && n < max; v = strtod(t, &end)) {
        out[n++] = v;
        t = end;
    }
    return n;
}

#define DEF_INT(fn, field)                                                                         \
    static void fn(const sweep_resolve_t *r, char *out, size_t n) {                                \
        format_int(r->def.field, out, n);                                                          \
    }
#define DEF_NUM(fn, field)                                                                         \
    static void fn(const sweep_resolve_t *r, char *out, size_t n) {                                \
        num_to_text(r->def.field, out, n);                                                 \
    }
#define SET_INT(fn, field)                                                                         \
    static void fn(sweep_resolve_t *r, const char *t) {                                            \
        r->spec.field = text_int(t);                                                               \
    }
#define SET_NUM(fn, field)                                                                         \
    static void fn(sweep_resolve_t *r, const char *t) {                                            \
        r->spec.field = text_num(t);                                                               \
    }

static void def_synthetic(const sweep_resolve_t *r, char *out, size_t n) {
    snprintf(out, n, "synthetic");
}
static void set_nothing(sweep_resolve_t *r, const char *t) {}

DEF_INT(def_tasks, data.tasks)
SET_INT(set_tasks, data.tasks)

/* synth_defaults builds R for its default T = 2: R[0][1] is the default p. */
static void def_corr(const sweep_resolve_t *r, char *out, size_t n) {
    num_to_text(r->def.data.corr[1], out, n);
}
static void set_corr(sweep_resolve_t *r, const char *t) {
    r->corr = text_num(t);
}
static void set_groups(sweep_resolve_t *r, const char *t) {
    r->n_groups = text_ints(t, r->groups, MTLAB_MAX_TASKS);
}
static void set_within(sweep_resolve_t *r, const char *t) {
    r->within = text_num(t);
}
static void def_between(const sweep_resolve_t *r, char *out, size_t n) {
    snprintf(out, n, "0");
}
static void set_between(sweep_resolve_t *r, const char *t) {
    r->between = text_num(t);
}
static bool no_groups(const sweep_resolve_t *r) {
    return !r->groups_given;
}
static bool with_groups(const sweep_resolve_t *r) {
    return r->groups_given;
}

DEF_INT(def_dim, data.dim)
SET_INT(set_dim, data.dim)
DEF_INT(def_sinusoids, data.sinusoids)
SET_INT(set_sinusoids, data.sinusoids)
DEF_NUM(def_scale, data.scale)
SET_NUM(set_scale, data.scale)
DEF_NUM(def_noise, data.noise)
SET_NUM(set_noise, data.noise)

static void def_alpha(const sweep_resolve_t *r, char *out, size_t n) {
    static const char *const modes[] = {[ALPHA_NORMAL] = "normal", [ALPHA_INDEX] = "index",
                                        [ALPHA_LIST] = "list"};
    snprintf(out, n, "%s", modes[r->def.data.alpha_mode]);
}
static void set_alpha(sweep_resolve_t *r, const char *t) {
    r->spec.data.alpha_mode = strcmp(t, "index") == 0  ? ALPHA_INDEX
                              : strcmp(t, "list") == 0 ? ALPHA_LIST
                                                       : ALPHA_NORMAL;
}
/* alpha = list: the values have no default (sweep_resolve_finish asks for
 * one per sinusoid). */
static bool alpha_list(const sweep_resolve_t *r) {
    return r->spec.data.alpha_mode == ALPHA_LIST;
}
static void def_empty(const sweep_resolve_t *r, char *out, size_t n) {
    out[0] = '\0';
}
static void set_alpha_values(sweep_resolve_t *r, const char *t) {
    r->n_alpha_values = text_nums(t, r->alpha_values, MTLAB_MAX_SINUSOIDS);
}
static void set_beta_values(sweep_resolve_t *r, const char *t) {
    r->n_beta_values = text_nums(t, r->beta_values, MTLAB_MAX_SINUSOIDS);
}
static void def_alpha_seed(const sweep_resolve_t *r, char *out, size_t n) {
    snprintf(out, n, "%" PRIu64, r->def.data.alpha_seed);
}
static void set_alpha_seed(sweep_resolve_t *r, const char *t) {
    r->spec.data.alpha_seed = strtoull(t, NULL, 10);
}

DEF_INT(def_train, data.n_train)
SET_INT(set_train, data.n_train)
DEF_INT(def_val, data.n_val)
SET_INT(set_val, data.n_val)
DEF_INT(def_test, data.n_test)
SET_INT(set_test, data.n_test)

static void set_binary(sweep_resolve_t *r, const char *t) {
    r->n_binary = text_ints(t, r->binary, MTLAB_MAX_TASKS);
}
static bool with_binary(const sweep_resolve_t *r) {
    return r->binary_given;
}
DEF_NUM(def_positive_rate, data.positive_rate[0])
static void set_positive_rate(sweep_resolve_t *r, const char *t) {
    r->positive_rate = text_num(t);
}

static void def_adam(const sweep_resolve_t *r, char *out, size_t n) {
    snprintf(out, n, "adam");
}
DEF_NUM(def_lr, train.lr)
SET_NUM(set_lr, train.lr)
DEF_INT(def_batch, train.batch)
SET_INT(set_batch, train.batch)
DEF_INT(def_steps, train.steps)
SET_INT(set_steps, train.steps)
DEF_INT(def_eval_every, train.eval_every)
SET_INT(set_eval_every, train.eval_every)

/* One default weight per task of this point (tasks precedes it in the table). */
static void def_task_weights(const sweep_resolve_t *r, char *out, size_t n) {
    size_t len = 0;
    out[0] = '\0';
    for (int k = 0; k < r->spec.data.tasks && k < MTLAB_MAX_TASKS && len + 1 < n; k++) {
        char item[32];
        num_to_text(r->def.train.task_weight[k], item, sizeof item);
        len += (size_t)snprintf(out + len, n - len, "%s%s", k ? " " : "", item);
    }
}
static void set_task_weights(sweep_resolve_t *r, const char *t) {
    r->n_weights = text_nums(t, r->weights, MTLAB_MAX_TASKS);
}

static void def_model(const sweep_resolve_t *r, char *out, size_t n) {
    snprintf(out, n, "%s", r->def.model);
}
static void set_model(sweep_resolve_t *r, const char *t) {
    snprintf(r->spec.model, sizeof r->spec.model, "%s", t);
}
/* Sweep-level keys. */
static void set_name(sweep_t *s, const char *t) {
    snprintf(s->name, sizeof s->name, "%s", t);
}
static void set_description(sweep_t *s, const char *t) {
    snprintf(s->description, sizeof s->description, "%s", t);
}
static void set_repeats(sweep_t *s, const char *t) {
    s->repeats = text_int(t);
}
static void set_seed(sweep_t *s, const char *t) {
    s->seed = strtoull(t, NULL, 10);
}
static void set_samples(sweep_t *s, const char *t) {
    s->samples = text_int(t);
}
static void set_draws(sweep_t *s, const char *t) {
    s->draws = sweep_draws_parse(t) == SWEEP_DRAWS_INDEPENDENT ? SWEEP_DRAWS_INDEPENDENT
                                                               : SWEEP_DRAWS_PAIRED;
}
static void set_gates(sweep_t *s, const char *t) {
    s->record_gates = strcmp(t, "true") == 0;
}
static void set_weights(sweep_t *s, const char *t) {
    s->record_weights = strcmp(t, "true") == 0;
}

static int check_source(const char *text, char *msg, size_t n) {
    if (strncmp(text, "csv:", 4) == 0) {
        snprintf(msg, n, "csv data sources are not supported yet");
        return -1;
    }
    return 0;
}

/* ---- the table ------------------------------------------------------------ */

#define K(sec, nm)           .section = sec, .name = nm, .param = sec "." nm
#define RANGE(lo, hi)        .min = (lo), .max = (hi)
#define POINT(def, set)      .flags = KEY_GRID, .get_default = def, .set_point = set
#define POINTF(def, set, fl) .flags = KEY_GRID | (fl), .get_default = def, .set_point = set
#define BIG                  1e9

/* Canonical order: the order of a point's config and params.  Within [data],
 * tasks precedes everything whose default depends on it. */
static const sweep_key_t keys[] = {
    {K("experiment", "name"), .type = KEY_NAME, .flags = KEY_REQUIRED, .set_sweep = set_name,
     .help = "experiment name ([A-Za-z0-9._-]+), its identity in the store"},
    {K("experiment", "description"), .type = KEY_TEXT, .def = "", .set_sweep = set_description,
     .help = "one line describing the experiment"},
    {K("experiment", "repeats"), .type = KEY_INT, RANGE(1, 1e6), .def = "1",
     .set_sweep = set_repeats, .help = "runs (seeds) of every point"},
    {K("experiment", "seed"), .type = KEY_U64, .def = "1", .set_sweep = set_seed,
     .help = "base seed of the whole experiment"},
    {K("experiment", "samples"), .type = KEY_INT, RANGE(1, 1e6), .def = "1",
     .set_sweep = set_samples, .help = "random-search draws per grid point"},
    {K("experiment", "draws"), .type = KEY_WORD, .words = "paired independent", .def = "paired",
     .set_sweep = set_draws,
     .help = "random search: paired (draw s of a distribution is the same value at every grid "
             "point and for every model) or independent (each grid point and model draws its "
             "own; experiments stored before paired draws keep this)"},

    {K("data", "source"), .type = KEY_WORD, .words = "synthetic", POINT(def_synthetic, set_nothing),
     .check = check_source, .help = "where the data comes from: synthetic (SPEC 3)"},
    {K("data", "tasks"), .type = KEY_INT, RANGE(1, MTLAB_MAX_TASKS), POINT(def_tasks, set_tasks),
     .help = "number of tasks T"},
    {K("data", "correlation"), .type = KEY_NUM, RANGE(-1, 1), POINT(def_corr, set_corr),
     .applies = no_groups, .help = "task correlation (cosine) of every pair of tasks"},
    {K("data", "groups"), .type = KEY_INTS, RANGE(1, MTLAB_MAX_TASKS), POINT(NULL, set_groups),
     .applies = with_groups, .help = "sizes of consecutive task groups, e.g. \"2 2\""},
    {K("data", "within"), .type = KEY_NUM, RANGE(-1, 1), POINT(def_corr, set_within),
     .applies = with_groups, .help = "correlation inside a group (with groups)"},
    {K("data", "between"), .type = KEY_NUM, RANGE(-1, 1), POINT(def_between, set_between),
     .applies = with_groups, .help = "correlation across groups (with groups)"},
    {K("data", "dim"), .type = KEY_INT, RANGE(1, 1e6), POINT(def_dim, set_dim),
     .help = "input dimension d"},
    {K("data", "sinusoids"), .type = KEY_INT, RANGE(0, MTLAB_MAX_SINUSOIDS),
     POINT(def_sinusoids, set_sinusoids), .help = "number of sinusoids m"},
    {K("data", "scale"), .type = KEY_NUM, RANGE(0, INFINITY), .min_open = true,
     POINT(def_scale, set_scale), .help = "norm c of the task weight vectors"},
    {K("data", "noise"), .type = KEY_NUM, RANGE(0, INFINITY), POINT(def_noise, set_noise),
     .help = "label noise sigma (a standard deviation)"},
    {K("data", "alpha"), .type = KEY_WORD, .words = "normal index list",
     POINT(def_alpha, set_alpha),
     .help = "sinusoid parameters: normal (drawn from alpha_seed), index (alpha_i = i, beta_i = "
             "(i-1)^2) or list (alpha_values, beta_values)"},
    {K("data", "alpha_seed"), .type = KEY_U64, POINT(def_alpha_seed, set_alpha_seed),
     .help = "seed of alpha, beta (default: the experiment seed)"},
    {K("data", "alpha_values"), .type = KEY_NUMS, RANGE(-INFINITY, INFINITY),
     .max_items = MTLAB_MAX_SINUSOIDS, POINT(def_empty, set_alpha_values), .applies = alpha_list,
     .help = "alpha = list: alpha_1 ... alpha_m, space-separated (one per sinusoid)"},
    {K("data", "beta_values"), .type = KEY_NUMS, RANGE(-INFINITY, INFINITY),
     .max_items = MTLAB_MAX_SINUSOIDS, POINT(def_empty, set_beta_values), .applies = alpha_list,
     .help = "alpha = list: beta_1 ... beta_m, space-separated (one per sinusoid)"},
    {K("data", "train"), .type = KEY_INT, RANGE(1, BIG), POINT(def_train, set_train),
     .help = "training examples"},
    {K("data", "validation"), .type = KEY_INT, RANGE(0, BIG), POINT(def_val, set_val),
     .help = "validation examples"},
    {K("data", "test"), .type = KEY_INT, RANGE(0, BIG), POINT(def_test, set_test),
     .help = "test examples"},
    {K("data", "binary"), .type = KEY_INTS, RANGE(1, MTLAB_MAX_TASKS),
     POINTF(NULL, set_binary, KEY_SET), .applies = with_binary,
     .help = "1-based indices of binary (classification) tasks, e.g. \"2\""},
    {K("data", "positive_rate"), .type = KEY_NUM, RANGE(0, 1), .min_open = true, .max_open = true,
     POINT(def_positive_rate, set_positive_rate), .applies = with_binary,
     .help = "fraction of positive training labels of binary tasks"},

    {K("train", "optimizer"), .type = KEY_WORD, .words = "adam", POINT(def_adam, set_nothing),
     .help = "optimiser: adam"},
    {K("train", "lr"), .type = KEY_NUM, RANGE(0, INFINITY), .min_open = true, POINT(def_lr, set_lr),
     .help = "learning rate"},
    {K("train", "batch"), .type = KEY_INT, RANGE(1, 1e6), POINT(def_batch, set_batch),
     .help = "examples per step"},
    {K("train", "steps"), .type = KEY_INT, RANGE(0, BIG), POINT(def_steps, set_steps),
     .help = "optimiser steps (0: data only: generate and measure the dataset)"},
    {K("train", "eval_every"), .type = KEY_INT, RANGE(1, BIG),
     POINT(def_eval_every, set_eval_every), .help = "evaluate every k steps (and at the end)"},
    {K("train", "task_weights"), .type = KEY_NUMS, RANGE(0, INFINITY),
     POINT(def_task_weights, set_task_weights),
     .help = "loss weight of each task, space-separated (default all 1)"},

    {K("model", "name"), .type = KEY_MODEL, POINTF(def_model, set_model, KEY_REQUIRED),
     .help = "model families to compare (the innermost grid)"},
    {K("record", "gates"), .type = KEY_BOOL, .def = "true", .set_sweep = set_gates,
     .help = "record gate statistics on the test set"},
    {K("record", "weights"), .type = KEY_BOOL, .def = "true", .set_sweep = set_weights,
     .help = "store the final parameters"},
};

/* The whole table: the rows above with, after model.name, one row per model
 * hyper-parameter of the registry (model_hp_all's order), built on first use. */
static sweep_key_t table[SWEEP_MAX_KEYS];
static char hp_params[SWEEP_MAX_KEYS][80];
static int n_table;

const sweep_key_t *sweep_keys(int *n) {
    if (n_table == 0) {
        const int n_static = (int)(sizeof keys / sizeof keys[0]);
        int n_hp;
        const model_hp_t *const *hp = model_hp_all(&n_hp);
        assert(n_static + n_hp <= SWEEP_MAX_KEYS);
        int len = 0;
        for (int i = 0; i < n_static; i++) {
            table[len++] = keys[i];
            if (strcmp(keys[i].param, "model.name") != 0) continue;
            for (int j = 0; j < n_hp; j++) {
                snprintf(hp_params[j], sizeof hp_params[j], "model.%s", hp[j]->name);
                table[len++] = (sweep_key_t){
                    .section = "model",
                    .name = hp[j]->name,
                    .param = hp_params[j],
                    .type = hp[j]->type == HP_INT    ? KEY_INT
                            : hp[j]->type == HP_WORD ? KEY_WORD
                                                     : KEY_NUM,
                    .min = hp[j]->min,
                    .max = hp[j]->max,
                    .words = hp[j]->words,
                    .flags = KEY_GRID | (hp[j]->omit_default ? KEY_OMIT_DEFAULT : 0),
                    .help = hp[j]->help,
                    .hp = hp[j]->name,
                };
            }
        }
        n_table = len;
    }
    *n = n_table;
    return table;
}

bool sweep_key_declared(const sweep_key_t *k, const char *model) {
    return !k->hp || model_hp_find(model_find(model), k->hp) >= 0;
}

bool sweep_key_applies(const sweep_key_t *k, const sweep_resolve_t *r) {
    if (k->hp) return sweep_key_declared(k, r->def.model);
    return !k->applies || k->applies(r);
}

void sweep_key_default(const sweep_key_t *k, const sweep_resolve_t *r, char *out, size_t n) {
    if (!k->hp) {
        k->get_default(r, out, n);
        return;
    }
    const model_ops_t *ops = model_find(r->def.model);
    const int i = model_hp_find(ops, k->hp);
    const double v = r->def.model_cfg.hp[i];
    if (k->type == KEY_WORD)
        model_hp_word(&ops->hp[i], v, out, n);
    else if (k->type == KEY_INT)
        format_int((long long)v, out, n);
    else
        num_to_text(v, out, n);
}

void sweep_key_set(const sweep_key_t *k, sweep_resolve_t *r, const char *text) {
    if (!k->hp) {
        k->set_point(r, text);
        return;
    }
    /* The value passed the key's range, which every declaring family shares. */
    const model_ops_t *ops = model_find(r->def.model);
    const int i = model_hp_find(ops, k->hp);
    assert(i >= 0); /* called only when the key applies */
    if (k->type == KEY_WORD)
        r->spec.model_cfg.hp[i] = model_hp_word_index(&ops->hp[i], text);
    else
        r->spec.model_cfg.hp[i] = text_num(text);
}

int sweep_key_find(const char *section, const char *name) {
    int n;
    const sweep_key_t *k = sweep_keys(&n);
    for (int i = 0; i < n; i++)
        if (strcmp(k[i].section, section) == 0 && strcmp(k[i].name, name) == 0) return i;
    return -1;
}

bool sweep_key_numeric(const sweep_key_t *k) {
    return k->type == KEY_INT || k->type == KEY_NUM || k->type == KEY_U64;
}

/* ---- canonical values ------------------------------------------------------ */

static void format_bound(double v, char *out, size_t n) {
    if (isinf(v))
        snprintf(out, n, "%sinf", v < 0 ? "-" : "");
    else
        snprintf(out, n, "%g", v);
}

static bool in_range(const sweep_key_t *k, double v) {
    bool lo = k->min_open ? v > k->min : v >= k->min;
    bool hi = k->max_open ? v < k->max : v <= k->max;
    return lo && hi;
}

static int range_msg(const sweep_key_t *k, const char *raw, char *msg, size_t n) {
    char lo[32], hi[32];
    format_bound(k->min, lo, sizeof lo);
    format_bound(k->max, hi, sizeof hi);
    snprintf(msg, n, "%s is out of range %s%s, %s%s", raw, k->min_open ? "(" : "[", lo, hi,
             k->max_open || isinf(k->max) ? ")" : "]");
    return -1;
}

/* One integer or number item (scalars and vector items). */
static int canon_item(const sweep_key_t *k, bool integer, const char *raw, char *out, size_t n,
                      char *msg, size_t msg_n) {
    if (integer) {
        long long v;
        switch (parse_integer(raw, &v)) {
        case PARSE_OK:
            break;
        case PARSE_TOO_LARGE:
        case PARSE_TOO_SMALL:
            return range_msg(k, raw, msg, msg_n);
        default:
            snprintf(msg, msg_n, "'%s' is not an integer", raw);
            return -1;
        }
        if (!in_range(k, (double)v)) return range_msg(k, raw, msg, msg_n);
        format_int(v, out, n);
    } else {
        double v;
        switch (parse_number(raw, &v)) {
        case PARSE_OK:
            break;
        case PARSE_NOT_FINITE:
            snprintf(msg, msg_n, "'%s' is not a finite number", raw);
            return -1;
        case PARSE_TOO_LARGE:
            snprintf(msg, msg_n, "%s is too large (rounds to infinity in single precision)", raw);
            return -1;
        case PARSE_TOO_SMALL:
            snprintf(msg, msg_n, "%s is too small (rounds to 0 in single precision)", raw);
            return -1;
        default:
            snprintf(msg, msg_n, "'%s' is not a number", raw);
            return -1;
        }
        if (!in_range(k, v)) return range_msg(k, raw, msg, msg_n);
        num_to_text(v, out, n);
    }
    return 0;
}

static int cmp_int(const void *a, const void *b) {
    long long x = strtoll(*(char *const *)a, NULL, 10), y = strtoll(*(char *const *)b, NULL, 10);
    return (x > y) - (x < y);
}

static int canon_vector(const sweep_key_t *k, const char *raw, char *out, size_t n, char *msg,
                        size_t msg_n) {
    enum { ITEMS_MAX = MTLAB_MAX_TASKS > MTLAB_MAX_SINUSOIDS ? MTLAB_MAX_TASKS : MTLAB_MAX_SINUSOIDS };
    char items[ITEMS_MAX][32];
    char *order[ITEMS_MAX];
    const int max_items = k->max_items ? k->max_items : MTLAB_MAX_TASKS;
    assert(max_items <= ITEMS_MAX);
    int count = 0;
    for (const char *p = raw; *p;) {
        while (isspace((unsigned char)*p))
            p++;
        if (!*p) break;
        size_t len = strcspn(p, " \t\r\n\v\f");
        if (count == max_items) {
            snprintf(msg, msg_n, "more than %d items", max_items);
            return -1;
        }
        char item[64];
        snprintf(item, sizeof item, "%.*s", (int)(len < 63 ? len : 63), p);
        if (canon_item(k, k->type == KEY_INTS, item, items[count], sizeof items[count], msg, msg_n))
            return -1;
        order[count] = items[count];
        count++;
        p += len;
    }
    if (count == 0) {
        snprintf(msg, msg_n, "empty value");
        return -1;
    }
    if (k->flags & KEY_SET) {
        qsort(order, (size_t)count, sizeof order[0], cmp_int);
        for (int i = 1; i < count; i++)
            if (strcmp(order[i], order[i - 1]) == 0) {
                snprintf(msg, msg_n, "%s is given twice", order[i]);
                return -1;
            }
    }
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; i < count; i++) {
        int w = snprintf(out + len, n - len, "%s%s", i ? " " : "", order[i]);
        if (w < 0 || (size_t)w >= n - len) {
            snprintf(msg, msg_n, "value is too long (at most %zu characters)", n - 1);
            return -1;
        }
        len += (size_t)w;
    }
    return 0;
}

static int canon_word(const sweep_key_t *k, const char *raw, char *out, size_t n, char *msg,
                      size_t msg_n) {
    size_t len = strlen(raw);
    for (const char *w = k->words; *w;) {
        size_t wl = strcspn(w, " ");
        if (wl == len && strncmp(w, raw, len) == 0) {
            snprintf(out, n, "%s", raw);
            return 0;
        }
        w += wl;
        while (*w == ' ')
            w++;
    }
    char listed[128];
    snprintf(listed, sizeof listed, "%s", k->words);
    for (char *c = listed; *c; c++)
        if (*c == ' ') *c = '|';
    snprintf(msg, msg_n, "'%s' is not one of %s", raw, listed);
    return -1;
}

static int canon_model(const char *raw, char *out, size_t n, char *msg, size_t msg_n) {
    if (model_find(raw)) {
        snprintf(out, n, "%s", raw);
        return 0;
    }
    int count;
    const model_ops_t *const *all = model_registry(&count);
    const char *names[64];
    char known[512] = "";
    size_t len = 0;
    for (int i = 0; i < count && i < 64; i++) {
        names[i] = all[i]->name;
        int w = snprintf(known + len, sizeof known - len, "%s%s", i ? ", " : "", all[i]->name);
        if (w > 0 && (size_t)w < sizeof known - len) len += (size_t)w;
    }
    const char *guess = sweep_suggest(raw, names, count < 64 ? count : 64);
    if (guess)
        snprintf(msg, msg_n, "unknown model '%s' (did you mean '%s'? known: %s)", raw, guess,
                 known);
    else
        snprintf(msg, msg_n, "unknown model '%s' (known: %s)", raw, known);
    return -1;
}

int sweep_key_canon(const sweep_key_t *k, const char *raw, char *out, size_t n, char *msg,
                    size_t msg_n) {
    if (k->type != KEY_TEXT && raw[0] == '\0') {
        snprintf(msg, msg_n, "empty value");
        return -1;
    }
    if (k->check && k->check(raw, msg, msg_n)) return -1;
    switch (k->type) {
    case KEY_INT:
    case KEY_NUM:
        if (canon_item(k, k->type == KEY_INT, raw, out, n, msg, msg_n)) return -1;
        break;
    case KEY_U64: {
        long long v;
        parse_t parsed = parse_integer(raw, &v);
        if (parsed == PARSE_SYNTAX) {
            snprintf(msg, msg_n, "'%s' is not an integer in [0, 2^63)", raw);
            return -1;
        }
        if (parsed != PARSE_OK || v < 0) {
            snprintf(msg, msg_n, "%s is out of range [0, 2^63)", raw);
            return -1;
        }
        format_int(v, out, n);
        break;
    }
    case KEY_BOOL: {
        static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no",
                                                                                    "off", "0"};
        for (int i = 0; i < 4; i++) {
            if (strcmp(raw, yes[i]) == 0 || strcmp(raw, no[i]) == 0) {
                snprintf(out, n, "%s", strcmp(raw, yes[i]) == 0 ? "true" : "false");
                return 0;
            }
        }
        snprintf(msg, msg_n, "'%s' is not a boolean (true or false)", raw);
        return -1;
    }
    case KEY_WORD:
        return canon_word(k, raw, out, n, msg, msg_n);
    case KEY_MODEL:
        return canon_model(raw, out, n, msg, msg_n);
    case KEY_NAME:
        for (const char *c = raw; *c; c++)
            if (!isalnum((unsigned char)*c) && *c != '.' && *c != '_' && *c != '-') {
                snprintf(msg, msg_n, "'%s' may contain only letters, digits, '.', '_' and '-'",
                         raw);
                return -1;
            }
        if (strlen(raw) >= sizeof(((sweep_t *)0)->name)) {
            snprintf(msg, msg_n, "name is too long (at most %zu characters)",
                     sizeof(((sweep_t *)0)->name) - 1);
            return -1;
        }
        /* fall through */
    case KEY_TEXT:
        if (strlen(raw) >= n) {
            snprintf(msg, msg_n, "value is too long (at most %zu characters)", n - 1);
            return -1;
        }
        snprintf(out, n, "%s", raw);
        break;
    case KEY_INTS:
    case KEY_NUMS:
        return canon_vector(k, raw, out, n, msg, msg_n);
    }
    return 0;
}

/* ---- resolving a point ------------------------------------------------------ */

void sweep_resolve_init(sweep_resolve_t *r, const char *model, uint64_t experiment_seed) {
    memset(r, 0, sizeof *r);
    trial_spec_default(&r->def);
    snprintf(r->def.model, sizeof r->def.model, "%s", model);
    model_config_default(&r->def.model_cfg, model_find(model));
    r->def.data.alpha_seed = experiment_seed; /* SPEC 3: alpha, beta belong to the experiment */
    r->def.data_seed = 0;
    r->def.init_seed = 0;
    r->spec = r->def;
}

/* Index of the key stored as `param` (a table literal: always found). */
static int key_index(const char *param) {
    int n;
    const sweep_key_t *k = sweep_keys(&n);
    for (int i = 0; i < n; i++)
        if (strcmp(k[i].param, param) == 0) return i;
    assert(0);
    return 0;
}

/* "param = value (line N)", or "(default)" when the file does not give it. */
static const char *describe(const sweep_resolve_t *r, const char *param, char *out, size_t n) {
    const int k = key_index(param);
    const char *value = r->text[k] ? r->text[k] : "?";
    if (r->line[k] && r->labels && r->labels[r->line[k] - 1])
        snprintf(out, n, "%s = %s (%s)", param, value, r->labels[r->line[k] - 1]);
    else if (r->line[k])
        snprintf(out, n, "%s = %s (line %d)", param, value, r->line[k]);
    else
        snprintf(out, n, "%s = %s (default)", param, value);
    return out;
}

/* A rule broken by keys a and b: the error names a's line, or b's when a is a
 * default; msg follows "A with B: ". */
static int conflict(sweep_resolve_t *r, err_t *err, const char *a, const char *b, const char *msg) {
    char da[160], db[160];
    const int ka = key_index(a), kb = key_index(b);
    r->err_line = r->line[ka] ? r->line[ka] : r->line[kb];
    return err_set(err, ERR_USAGE, "%s with %s: %s", describe(r, a, da, sizeof da),
                   describe(r, b, db, sizeof db), msg);
}

/* The same with the message of a failed check in *err. */
static int conflict_err(sweep_resolve_t *r, err_t *err, const char *a, const char *b) {
    char msg[sizeof err->msg];
    snprintf(msg, sizeof msg, "%s", err->msg);
    return conflict(r, err, a, b, msg);
}

/* The key of the correlation matrix a failed synth_check blames: correlation,
 * or with groups whichever of within, between, groups comes last in the file. */
static const char *corr_key(const sweep_resolve_t *r) {
    if (!r->groups_given) return "data.correlation";
    static const char *const parts[] = {"data.groups", "data.within", "data.between"};
    const char *last = parts[0];
    for (int i = 1; i < 3; i++)
        if (r->line[key_index(parts[i])] > r->line[key_index(last)]) last = parts[i];
    return last;
}

int sweep_resolve_finish(sweep_resolve_t *r, err_t *err) {
    trial_spec_t *s = &r->spec;
    const int T = s->data.tasks;
    char msg[256];
    r->err_line = 0;
    if (T < 1 || T > MTLAB_MAX_TASKS) { /* the key's range excludes it */
        r->err_line = r->line[key_index("data.tasks")];
        return err_set(err, ERR_USAGE, "tasks %d is outside [1, %d]", T, MTLAB_MAX_TASKS);
    }
    if (r->groups_given) {
        if (synth_set_corr_groups(&s->data, r->groups, r->n_groups, r->within, r->between, err))
            return conflict_err(r, err, "data.groups", "data.tasks");
    } else if (synth_set_corr_all(&s->data, r->corr, err)) {
        return conflict_err(r, err, "data.correlation", "data.tasks");
    }
    for (int k = 0; k < MTLAB_MAX_TASKS; k++) {
        s->data.binary[k] = false;
        s->data.positive_rate[k] =
            r->binary_given ? r->positive_rate : r->def.data.positive_rate[k];
    }
    for (int i = 0; r->binary_given && i < r->n_binary; i++) {
        if (r->binary[i] > T) {
            snprintf(msg, sizeof msg, "binary task %d is outside 1..%d", r->binary[i], T);
            return conflict(r, err, "data.binary", "data.tasks", msg);
        }
        s->data.binary[r->binary[i] - 1] = true;
    }
    if (r->n_weights != T) {
        snprintf(msg, sizeof msg, "task_weights has %d value%s for %d tasks", r->n_weights,
                 r->n_weights == 1 ? "" : "s", T);
        return conflict(r, err, "train.task_weights", "data.tasks", msg);
    }
    for (int k = 0; k < T; k++)
        s->train.task_weight[k] = r->weights[k];
    if (s->data.alpha_mode == ALPHA_LIST) {
        const int m = s->data.sinusoids;
        static const char *const keys_of[] = {"data.alpha_values", "data.beta_values"};
        const int counts[] = {r->n_alpha_values, r->n_beta_values};
        for (int j = 0; j < 2; j++)
            if (counts[j] != m) {
                if (!r->line[key_index(keys_of[j])]) { /* not given: blame alpha = list */
                    snprintf(msg, sizeof msg, "alpha = list needs %s: %d numbers, one per sinusoid",
                             keys_of[j], m);
                    return conflict(r, err, "data.alpha", keys_of[j], msg);
                }
                snprintf(msg, sizeof msg, "alpha = list needs one value per sinusoid: %d, not %d",
                         m, counts[j]);
                return conflict(r, err, keys_of[j], "data.sinusoids", msg);
            }
        for (int i = 0; i < m; i++) {
            s->data.alpha[i] = r->alpha_values[i];
            s->data.beta[i] = r->beta_values[i];
        }
    }
    if (s->data.dim < T)
        return conflict(r, err, "data.dim", "data.tasks",
                        "dim must be at least tasks (the task weight vectors are orthogonal)");
    /* What training needs; a data-only point (steps = 0) only generates data. */
    if (s->train.steps > 0) {
        if (s->train.batch > s->data.n_train)
            return conflict(r, err, "train.batch", "data.train",
                            "a batch is larger than the training set");
        if (s->data.n_val < 1)
            return conflict(r, err, "data.validation", "train.steps",
                            "training evaluates on the validation set (0 only with steps = 0: "
                            "a data-only trial)");
        if (s->data.n_test < 1)
            return conflict(r, err, "data.test", "train.steps",
                            "training evaluates on the test set (0 only with steps = 0: a "
                            "data-only trial)");
    }
    s->model_cfg.input_dim = s->data.dim;
    s->model_cfg.tasks = T;
    s->model_cfg.max_batch = s->train.batch;
    /* The other rules of synth_check hold by the key ranges and the checks
     * above; what remains is a correlation matrix that is not PSD. */
    if (synth_check(&s->data, err)) return conflict_err(r, err, corr_key(r), "data.tasks");
    return 0;
}

/* ---- did you mean ------------------------------------------------------------ */

int sweep_edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 255 || lb > 255) return (int)(la > lb ? la : lb);
    int row[256];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j];
            int best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* Whether `word` is one of typed's '_'-separated words, or their initials. */
static bool word_match(const char *typed, const char *word) {
    char initials[64];
    size_t n_init = 0, wl = strlen(word);
    for (const char *p = typed; *p;) {
        size_t len = strcspn(p, "_");
        if (len == wl && strncmp(p, word, wl) == 0) return true;
        if (len > 0 && n_init + 1 < sizeof initials) initials[n_init++] = p[0];
        p += len;
        while (*p == '_')
            p++;
    }
    initials[n_init] = '\0';
    return n_init > 1 && strcmp(initials, word) == 0;
}

const char *sweep_suggest(const char *typed, const char *const *candidates, int n) {
    const char *best = NULL;
    int best_d = 0;
    for (int i = 0; i < n; i++) {
        int d = sweep_edit_distance(typed, candidates[i]);
        if (!best || d < best_d) {
            best = candidates[i];
            best_d = d;
        }
    }
    int limit = (int)strlen(typed) / 3;
    if (limit < 2) limit = 2;
    if (best && best_d <= limit) return best;
    for (int i = 0; i < n; i++)
        if (word_match(typed, candidates[i])) return candidates[i];
    return NULL;
}
