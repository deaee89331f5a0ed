/* curate.h -- curating a store: tags and notes on trials and experiments,
 * and removing trials or experiments with everything recorded about them
 * (`mtlab tag`, `mtlab note`, `mtlab rm`).
 *
 * Each operation is ONE write transaction: it happens whole or not at all.
 * Removal follows the foreign keys of the schema as SQLite reports them
 * (pragma_foreign_key_list over every table), not a list kept here: a table
 * a later migration adds that refers to trial or experiment is emptied of
 * the removed rows too, before the rows it refers to (foreign keys are
 * enforced, so a table missed would fail the removal, never orphan rows).
 * A trial that is running (claimed by a live runner) is never removed: its
 * runner would write its results into nothing. */
#ifndef MTLAB_STORE_CURATE_H
#define MTLAB_STORE_CURATE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"
#include "store/store.h"

/* What a tag or note belongs to: a trial (trial_id > 0) of an experiment,
 * or the experiment itself (trial_id 0). */
typedef struct {
    int64_t experiment_id;
    int64_t trial_id;
} store_target_t;

/* The target of trial `trial_id`; ERR_USAGE "no trial N in PATH". */
int store_trial_target(store_t *s, int64_t trial_id, store_target_t *out, err_t *err);

/* Tags: 1 to STORE_TAG_MAX characters of [A-Za-z0-9._:+-], starting with a
 * letter (so a tag is never mistaken for a trial id).  0, or -1 with
 * ERR_USAGE naming the tag. */
#define STORE_TAG_MAX 64
int store_tag_check(const char *tag, err_t *err);

/* Adds (remove false) or removes each of tags[0..n_tags) on each target,
 * in one transaction; *changed receives the number of tags added or
 * removed (a tag already there, or not there to remove, changes nothing). */
int store_tag(store_t *s, const store_target_t *targets, int n_targets, const char *const *tags,
              int n_tags, bool remove, int *changed, err_t *err);

/* Adds a note (non-empty text, at most STORE_NOTE_MAX bytes) to a target. */
#define STORE_NOTE_MAX 65536
int store_note(store_t *s, const store_target_t *target, const char *text, err_t *err);

/* What to remove. */
typedef enum {
    STORE_RM_TRIALS,     /* trial ids[0..n_ids) */
    STORE_RM_EXPERIMENT, /* experiment_id, its trials, its tags and notes */
    STORE_RM_FAILED,     /* the failed trials of experiment_id (0: of every experiment) */
} store_rm_kind_t;

typedef struct {
    store_rm_kind_t kind;
    const int64_t *ids;
    int n_ids;
    int64_t experiment_id;
    bool dry_run; /* count what would go, then roll back */
} store_rm_t;

/* Rows removed per table, in the order the tables were emptied. */
#define STORE_RM_MAX_TABLES 32
typedef struct {
    int trials, experiments;
    int n_tables;
    struct {
        char name[64];
        long rows;
    } tables[STORE_RM_MAX_TABLES];
} store_removed_t;

/* Removes what rm says, in one transaction.  ERR_USAGE (nothing removed)
 * for an unknown trial id, or when a trial to remove is running. */
int store_remove(store_t *s, const store_rm_t *rm, store_removed_t *out, err_t *err);

#endif
