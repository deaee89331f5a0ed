/* keys.h -- the table of sweep keys (internal to src/sweep).
 *
 * ONE table describes every key a sweep file may set: its section, type and
 * range, its default, what it sets, and a line of help.  The parser validates
 * against it, the expansion takes defaults and the canonical config order
 * from it, and "did you mean" suggestions search it; nothing else lists keys.
 * Its [model] rows other than `name` are made from the model registry (every
 * family's declared hyper-parameters, model_hp_all): such a key is part of a
 * point only when the point's family declares it.
 *
 * Values travel as canonical text (sweep_key_canon): integers in decimal,
 * numbers as the shortest of %.15g/%.16g/%.17g that reads back to the same
 * double, words as given, booleans as true/false, vectors as single-space
 * separated items.  Setters read that text back, so a point's params[] and
 * its spec can never disagree. */
#ifndef MTLAB_SWEEP_KEYS_H
#define MTLAB_SWEEP_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/limits.h"
#include "sweep/sweep.h"
#include "train/trial.h"

typedef enum {
    KEY_INT,   /* integer within [min, max] */
    KEY_NUM,   /* finite number within min/max (each bound open or closed) */
    KEY_U64,   /* seed: integer in [0, 2^63) (the store keeps seeds as signed integers) */
    KEY_BOOL,  /* true/false, yes/no, on/off, 1/0 */
    KEY_WORD,  /* one of `words` */
    KEY_MODEL, /* a registered model name */
    KEY_NAME,  /* an identifier: [A-Za-z0-9._-]+ */
    KEY_TEXT,  /* free text, taken as is (commas included) */
    KEY_INTS,  /* space-separated integers, each within [min, max] */
    KEY_NUMS,  /* space-separated numbers, each within min/max */
} key_type_t;

enum {
    KEY_GRID = 1u << 0,     /* a point key: may be a list or distribution; in the config */
    KEY_REQUIRED = 1u << 1, /* no default: the file must give it */
    KEY_SET = 1u << 2,      /* KEY_INTS of distinct items, kept sorted (data.binary) */
    /* Left out of a point's config and params while at its default: a key
     * added after configs existed whose default is the earlier behaviour, so
     * every earlier config (and so init seed) stays what it was (README
     * "Identity").  Its default must never change. */
    KEY_OMIT_DEFAULT = 1u << 3,
};

#define SWEEP_MAX_KEYS 96 /* >= the key table's size, model hyper-parameters included */

/* A point being resolved: the spec, plus the keys that can only be applied
 * once all keys are known (the correlation matrix needs tasks and groups;
 * binary indices and task weights need tasks). */
typedef struct {
    trial_spec_t spec;
    trial_spec_t def; /* defaults of this model family; alpha_seed = experiment seed */
    bool groups_given, binary_given;
    double corr, within, between, positive_rate;
    int groups[MTLAB_MAX_TASKS], n_groups;
    int binary[MTLAB_MAX_TASKS], n_binary;
    double weights[MTLAB_MAX_TASKS];
    int n_weights;
    double alpha_values[MTLAB_MAX_SINUSOIDS], beta_values[MTLAB_MAX_SINUSOIDS];
    int n_alpha_values, n_beta_values;
    /* Set by the caller, per key of the table: the canonical text this point
     * applied (NULL: the key is not part of it) and the file line it came
     * from (0: a default).  Errors of sweep_resolve_finish quote them. */
    const char *text[SWEEP_MAX_KEYS];
    int line[SWEEP_MAX_KEYS];
    /* Settings (sweep_from_settings): labels[line - 1] names a "line"; NULL
     * for a file. */
    const char *const *labels;
    /* Set by sweep_resolve_finish on an error: the line to name (one of the
     * keys in conflict that the file gives), or 0 when all are defaults. */
    int err_line;
} sweep_resolve_t;

typedef struct {
    const char *section; /* "experiment", "data", "train", "model", "record" */
    const char *name;    /* key within the section */
    const char *param;   /* stored key: "section.name" */
    key_type_t type;
    double min, max; /* bounds of numbers and vector items */
    bool min_open, max_open;
    const char *words; /* KEY_WORD: the allowed words, space-separated */
    int max_items;     /* KEY_INTS, KEY_NUMS: items at most (0: MTLAB_MAX_TASKS) */
    unsigned flags;
    const char *def; /* sweep-level keys: default text (NULL when required) */
    /* Point keys: default text for the point being resolved. */
    void (*get_default)(const sweep_resolve_t *r, char *out, size_t n);
    /* Point keys: applies canonical text to the point. */
    void (*set_point)(sweep_resolve_t *r, const char *text);
    /* Sweep-level keys ([experiment], [record]): applies canonical text. */
    void (*set_sweep)(sweep_t *s, const char *text);
    /* Point keys: whether the key is part of this point (NULL: always). */
    bool (*applies)(const sweep_resolve_t *r);
    /* Extra validation of a canonical value (csv sources), or NULL. */
    int (*check)(const char *text, char *msg, size_t n);
    const char *help;
    /* A model hyper-parameter row (made from the registry): its name, which
     * the point's family must declare for the key to apply; NULL otherwise. */
    const char *hp;
} sweep_key_t;

/* The table, in canonical order. */
const sweep_key_t *sweep_keys(int *n);
/* Index of the key `name` of section `section` ("model" for [model.<x>]), or -1. */
int sweep_key_find(const char *section, const char *name);

/* Point keys: whether k is part of the point being resolved (a model
 * hyper-parameter: whether the point's family declares it), its default text
 * for that point, and applying canonical text to it. */
bool sweep_key_applies(const sweep_key_t *k, const sweep_resolve_t *r);
void sweep_key_default(const sweep_key_t *k, const sweep_resolve_t *r, char *out, size_t n);
void sweep_key_set(const sweep_key_t *k, sweep_resolve_t *r, const char *text);
/* Whether model family `model` declares hyper-parameter key k (true for
 * every key that is not a model hyper-parameter). */
bool sweep_key_declared(const sweep_key_t *k, const char *model);

/* Validates one raw value of key k and writes its canonical text.  Returns 0,
 * or -1 with a message (without file, line or key) in msg. */
int sweep_key_canon(const sweep_key_t *k, const char *raw, char *out, size_t n, char *msg,
                    size_t msg_n);
/* Whether a key of this type takes numbers (and so uniform/loguniform/randint). */
bool sweep_key_numeric(const sweep_key_t *k);

/* Starts resolving a point of model family `model` (a registered name). */
void sweep_resolve_init(sweep_resolve_t *r, const char *model, uint64_t experiment_seed);
/* Builds the spec from the applied keys and validates it whole (synth_check
 * and the cross-key rules: groups, binary, task_weights and dim against
 * tasks; when the point trains (steps > 0) batch <= train and non-empty
 * validation and test sets).  Returns 0, or -1 with *err (ERR_USAGE; the
 * message quotes each key in conflict as "param = value (line N)" or
 * "(default)", without file or line) and r->err_line. */
int sweep_resolve_finish(sweep_resolve_t *r, err_t *err);

/* Levenshtein distance of a and b (bytes). */
int sweep_edit_distance(const char *a, const char *b);
/* The candidate the user most likely meant by `typed`, or NULL: the closest
 * by edit distance when within max(2, strlen(typed) / 3); else one whose name
 * is the initials of typed's '_'-separated words ("learning_rate" -> "lr") or
 * one of those words ("num_experts" -> "experts"). */
const char *sweep_suggest(const char *typed, const char *const *candidates, int n);

#endif
