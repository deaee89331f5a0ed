/* merge.h -- `mtlab merge OUT.db A.db B.db ...`: several stores into one.
 *
 * The shards of a sweep run on several machines each write their own store
 * (SQLite is never shared over a network filesystem); merging them gives
 * the store one machine would have written.  The rules:
 *
 *   - Experiments are matched by name.  Their sweep file's text (spec) and
 *     identity rule must agree, and so must the code version that wrote
 *     them (experiment.code_version) unless allow_versions: otherwise the
 *     merge is refused (ERR_FAIL naming the experiment and two files) and
 *     nothing is written.  Stores of another schema version are refused
 *     too: open an older one once with this mtlab (any command upgrades it).
 *   - Trials are matched by identity (experiment name, config, repeat).  Of
 *     the copies of a trial, a done one is kept over a failed one, a failed
 *     one over a pending or running one; OUT's own copy is kept over an
 *     input's of the same rank.  Copies of the same rank (done and done,
 *     failed and failed) must hold the same results: the same seeds,
 *     status, error and the same rows in every record table.  A copy that
 *     differs is a conflict: each one is reported (note callback) and the
 *     merge writes nothing (ERR_FAIL).  A failed copy set aside for a done
 *     one is counted (superseded) and reported.  A trial `running` in its
 *     store comes over as pending (no process of OUT's runs it).
 *   - The tables are found in the schema (sqlite_master), not in a list:
 *     every table with a trial_id column is a record table of a trial
 *     (param, metric, gate, gate_hist, route, tensor, weights and whatever
 *     later migrations add), copied with the trial that wins; a table the
 *     trial table references (other than experiment; e.g. run, the
 *     provenance of a run invocation) is carried for the trials taken from
 *     the inputs, rows of equal content merged into one; a table with an experiment_id column and
 * no trial_id gets the rows it does not hold yet.  A table of none of these kinds makes the merge
 * refuse (a test guards the schema).
 *   - New experiments, trials and referenced rows get ids in a canonical
 *     order (experiment name; repeat then config), so OUT's content does
 *     not depend on the order of the inputs, and merging again what is
 *     merged already changes nothing (OUT given as an input, or a file
 *     given twice, is read once).  OUT's existing rows keep their ids.
 *
 * Everything is written in one transaction: a reader never sees half a
 * merge, a failed one leaves OUT as it was. */
#ifndef MTLAB_MERGE_H
#define MTLAB_MERGE_H

#include <stdbool.h>

#include "core/err.h"

typedef struct {
    bool allow_versions; /* merge experiments written by different code versions */
} merge_opts_t;

typedef struct {
    int inputs;            /* input files read */
    int skipped;           /* inputs not read: OUT itself, or a file given twice */
    int experiments_added; /* new in OUT */
    int trials_added;      /* new in OUT */
    int trials_replaced;   /* OUT's pending/running/failed copy replaced by a better one */
    int duplicates;        /* copies of a kept trial with the same results (not written) */
    int superseded;        /* failed copies set aside for a done copy of the same trial */
    int conflicts;         /* copies with different results: nothing was written */
} merge_summary_t;

/* Receives one line (no newline) per conflict or superseded copy. */
typedef void (*merge_note_fn)(const char *line, void *ctx);

/* Merges inputs[0..n) into the store at out_path (created when missing).
 * Returns 0, or -1 with *err (*sum filled as far as the merge went). */
int store_merge(const char *out_path, const char *const *inputs, int n, const merge_opts_t *opts,
                merge_note_fn note, void *ctx, merge_summary_t *sum, err_t *err);

#endif
