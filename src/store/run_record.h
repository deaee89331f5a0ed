/* run_record.h -- the provenance of a run invocation in the store (the run
 * table, sql/migrations/006-provenance.sql): one row per `mtlab run`,
 * referenced by the trials it ran (trial.run_id, set when a trial is claimed
 * through a connection given the run by store_set_run). */
#ifndef MTLAB_RUN_RECORD_H
#define MTLAB_RUN_RECORD_H

#include <stdint.h>

#include "core/err.h"
#include "core/provenance.h"
#include "store/store.h"

/* Inserts a run row for provenance p (plus the SQLite library's version, the
 * invocation's worker count and its shard "I/N", NULL when none) and returns
 * its id in *id. */
int store_run_add(store_t *s, const provenance_t *p, int jobs, const char *shard, int64_t *id,
                  err_t *err);

/* The run of trial_id as (column, value) text pairs, for `mtlab show`:
 * *n receives the count (0 when the trial has no run: stored before schema
 * version 6, or never claimed).  names and values point into *owned, which
 * the caller frees with mem_free. */
typedef struct {
    int n;
    const char *names[32];
    const char *values[32];
    char *owned;
} store_run_info_t;
int store_run_info(store_t *s, int64_t trial_id, store_run_info_t *out, err_t *err);
/* The value of column `name` of info, NULL when absent or NULL. */
const char *store_run_value(const store_run_info_t *info, const char *name);

#endif
