/* sweep.h -- sweep definitions (experiments/NAME.ini, SPEC §6) and their
 * expansion into a deterministic list of trials.
 *
 * A sweep file has sections [experiment], [data], [train], [model],
 * [model.<name>] (overrides for one model family), [record] and
 * [scale.<name>] (overrides applied by `mtlab run --scale <name>`).  A value is
 *   - a scalar:        lr = 0.001
 *   - a list (grid):   lr = 0.0001, 0.001, 0.01
 *   - a distribution drawn `samples` times per grid point:
 *                      uniform(a,b)  loguniform(a,b)  choice(x,y,...)  randint(a,b)
 * Vector-valued keys (data.binary, data.groups, train.task_weights) take
 * space-separated items ("binary = 2 3"), since commas form grids.
 *
 * Expansion.  Grid dimensions are the list-valued keys in file order; the
 * model name is the innermost dimension, and [model.<name>] lists expand
 * inside it.  Every grid point is drawn `samples` times (distributions), and
 * each resulting point runs `repeats` times.  Trial index
 *     index = repeat * n_points + point
 * so an interrupted sweep has balanced partial results, and consecutive trials
 * (the models of one setting) share a dataset.
 *
 * Identity and seeds (SPEC §6).  A point's canonical config is
 * "key=value;key=value..." over EVERY resolved key (defaults included; of the
 * model hyper-parameters, those its family declares: SWEEP_IDENTITY) in a
 * fixed key order; a trial is (experiment, config, repeat).
 *     data_seed = H(experiment seed, data.* part of config, repeat)
 *     init_seed = H(experiment seed, config, repeat)
 * so all models of one repeat see the same dataset and different repeats see
 * different ones.  H is a fixed 64-bit hash (never 0). */
#ifndef MTLAB_SWEEP_H
#define MTLAB_SWEEP_H

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"
#include "train/trial.h"

#define SWEEP_MAX_PARAMS 64 /* params of one point, at most */
/* The rule that makes a point's canonical config, stored with each
 * experiment (store_experiment): 1 listed every [model] key for every family
 * (mtlab before issue 9), 2 lists only the keys the point's family declares.
 * Configs, and so init seeds, of one experiment must follow one rule. */
#define SWEEP_IDENTITY 2
/* The largest sweep file sweep_load reads (4 MiB: the shipped ones are a few
 * KiB).  The read stops one byte past it, so a device or an endless stream
 * (`mtlab run /dev/zero`) is refused instead of filling memory. */
#define SWEEP_FILE_MAX (4 << 20)

/* How random-search draws are shared ([experiment] draws; README "Paired
 * draws").  PAIRED: draw s of key K is the same at every grid point and for
 * every model (the same distribution gives the same values), so families and
 * settings are compared at the same sampled values.  INDEPENDENT: each grid
 * point and model draws its own (every experiment stored before schema
 * version 9 was drawn so, and keeps that rule: sweep_opts_t.draws). */
typedef enum { SWEEP_DRAWS_PAIRED = 0, SWEEP_DRAWS_INDEPENDENT = 1 } sweep_draws_t;
/* The word of a rule ("paired", "independent"), and back (-1: unknown). */
const char *sweep_draws_name(int draws);
int sweep_draws_parse(const char *word);

/* Command-line overrides at most (`mtlab run FILE section.key=value ...`). */
#define SWEEP_MAX_OVERRIDES 64

/* One resolved key of a point.  Both strings belong to the sweep: key is the
 * key table's static name, value lives in its point's allocation. */
typedef struct {
    const char *key;   /* "data.correlation", "train.lr", "model.name" */
    const char *value; /* canonical text: shortest round-trip number, or a word */
} sweep_param_t;

/* A point of the expanded sweep.  Its params[], config, data_config and
 * values are one exact-size allocation (a few hundred bytes), so a large
 * sweep costs about sizeof(sweep_point_t) -- mostly the spec -- plus that. */
typedef struct {
    char *config;      /* canonical config (without the repeat), at most 4095 bytes */
    char *data_config; /* its data.* part (seeds the dataset) */
    int n_params;
    sweep_param_t *params; /* [n_params]: every resolved key, config order */
    trial_spec_t spec;     /* ready to run except data_seed / init_seed */
} sweep_point_t;

typedef struct {
    char path[1024];
    char name[128];
    char description[512];
    int repeats;   /* [experiment] repeats (default 1) */
    int samples;   /* [experiment] samples (default 1) */
    uint64_t seed; /* [experiment] seed (default 1) */
    bool record_gates;   /* [record] gates   (default true) */
    bool record_weights; /* [record] weights (default true): store final parameters */
    char *text; /* the file's bytes, stored with the experiment (plus scale, override lines) */
    char scale[32]; /* the applied [scale.<name>], or "" */
    int draws;      /* sweep_draws_t: how distributions are drawn */
    bool draws_given; /* the file or an override sets [experiment] draws */
    bool random;      /* some key is a distribution (draws matters) */
    /* The command-line overrides, "section.key=value" one per line in the
     * order given ("" none); they are also in text (sweep_load_opts). */
    char *overrides;
    int n_points;
    sweep_point_t *points;
    int n_trials;  /* n_points * repeats */
} sweep_t;

/* Reads, validates and expands a sweep file.  Errors are ERR_USAGE with
 * "FILE:LINE: message" (an unknown key suggests the closest known one; a NUL
 * byte or a file over SWEEP_FILE_MAX bytes is refused too), or ERR_FAIL when
 * the file cannot be read. */
int sweep_load(const char *path, sweep_t **out, err_t *err);
/* The same with the overrides of the file's [scale.<name>] section applied
 * (scale NULL: none).  A scale section holds "section.key = value" lines
 * (experiment.repeats = 10, train.steps = 1000, model.mmoe.experts = 4) that
 * replace the file's values; its name is appended to the stored text. */
int sweep_load_scaled(const char *path, const char *scale, sweep_t **out, err_t *err);

/* Everything sweep_load_opts applies on top of the file. */
typedef struct {
    const char *scale; /* [scale.<name>] to apply, or NULL */
    /* Command-line overrides "section.key=value[,value...]" (a list makes a
     * grid, a distribution draws; "model.NAME.key=..." sets [model.NAME]),
     * applied after the scale: each replaces the file's value of that key in
     * place (the grid keeps its order) or adds the key.  Validated as the
     * file's lines are; errors name "argument 'section.key=value'". */
    const char *const *overrides;
    int n_overrides;
    /* The draw rule when neither the file nor an override sets [experiment]
     * draws (sweep_draws_t; 0: paired).  `mtlab run` passes the rule stored
     * with an existing experiment, so its file keeps expanding to its
     * trials. */
    int draws;
} sweep_opts_t;

/* sweep_load_scaled with overrides and a default draw rule.  The stored
 * text (s->text) is the file, then "; mtlab run --scale NAME" when scaled,
 * then one "; mtlab run override: section.key=value" line per override:
 * a resume needs the same scale and overrides.  opts NULL: none. */
int sweep_load_opts(const char *path, const sweep_opts_t *opts, sweep_t **out, err_t *err);
void sweep_free(sweep_t *s);

/* One point from settings "section.key=value" (`mtlab train`'s arguments):
 * each is validated by the key table as the line "key = value" of its
 * [section] would be (the same messages), one value each (no list or
 * distribution), and the point is resolved with a sweep's defaults and rules:
 * a model hyper-parameter the model does not declare is an error, model.name
 * defaults to mmoe, data.alpha_seed to `seed` (the experiment seed's role).
 * [experiment] and [record] keys are refused.  labels[i] names settings[i] in
 * errors ("argument 'model.experts=0'", "--experts").  Returns 0 with *out
 * (n_points 1, repeats 1), or -1 with *err (ERR_USAGE "LABEL: message"). */
int sweep_from_settings(const char *const *settings, const char *const *labels, int n,
                        uint64_t seed, sweep_t **out, err_t *err);

/* Trial `index` in [0, n_trials): its point, repeat, and a runnable spec
 * with both seeds set. */
void sweep_trial(const sweep_t *s, int index, int *point, int *repeat, trial_spec_t *spec);

/* The point whose canonical config is `config`, or -1 (a hash lookup: the
 * runner calls it for every claimed trial). */
int sweep_find_point(const sweep_t *s, const char *config);

/* The line of the sweep file where `key` ("train.batch", "model.experts",
 * "experiment.repeats": a config key as in params[]) got its value for
 * `point`: the [model.<name>] line for that point's model when there is one,
 * else the line in the base section ([data], [train], [model], ...), or the
 * [scale.<name>] line when the applied scale replaced the value; 0 when the
 * key took its default (or is not a sweep key).  For errors about a point
 * found after loading (a memory estimate, say) to name FILE:LINE.
 * point in [0, n_points). */
int sweep_key_line(const sweep_t *s, int point, const char *key);

/* The seeds of SPEC §6 for (point, repeat). */
uint64_t sweep_data_seed(const sweep_t *s, int point, int repeat);
uint64_t sweep_init_seed(const sweep_t *s, int point, int repeat);

#endif
