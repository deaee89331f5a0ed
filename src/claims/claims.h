/* claims.h -- a paper's qualitative claims, checked against a store.
 *
 * A claim is one SQL file, sql/claims/PAPER/NAME.sql (compiled into the
 * binary, see core/embedded.h), run with :experiment and :metric bound.  Its
 * header says what it claims and which statistic decides it:
 *   -- claim: MMoE's gap between correlations is the smallest
 *   -- statistic: mean_diff | sd_diff | abs_gap_diff
 * and it returns rows (condition TEXT, repeat INTEGER, grp TEXT, value REAL):
 * one observation of group grp in repeat `repeat` under `condition` (the
 * settings the claim is checked at, e.g. "data.alpha_seed=3 vs=omoe").
 *
 * The statistics, over the rows of one condition (groups by name):
 *   mean_diff     mean(a) - mean(b)
 *   sd_diff       sd(a) - sd(b)                      (sample sd, n - 1)
 *   abs_gap_diff  |mean(a1) - mean(a2)| - |mean(b1) - mean(b2)|
 * and the claim holds in a sample when its statistic is > 0 (the SQL orients
 * its groups so).
 *
 * Per condition the repeats are the bootstrap unit: a resample draws as many
 * repeats as the condition has, with replacement, and takes every row of each
 * drawn repeat (all groups: a repeat shares its data seed across models).
 * Over B resamples: the percentile interval of the statistic (95 %, linear
 * interpolation between order statistics), and the support, the fraction of
 * resamples whose statistic is > 0 (resamples where it is undefined -- a
 * group without rows, an sd of one row -- are left out of both).  Verdict:
 *   holds      support >= CLAIMS_HOLDS_SUPPORT (0.95)
 *   fails      support <= 1 - CLAIMS_HOLDS_SUPPORT (0.05)
 *   undecided  otherwise, or fewer than CLAIMS_MIN_REPEATS repeats
 *   no data    the claim's query returned no row for this experiment
 * The generator is PCG32 (core/rng.h) seeded afresh with (seed,
 * RNG_STREAM_BOOTSTRAP) for every claim and condition, so a result does not
 * depend on which other claims or conditions were computed, and the same seed
 * gives the same numbers bit for bit. */
#ifndef MTLAB_CLAIMS_H
#define MTLAB_CLAIMS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"
#include "store/query.h"
#include "store/store.h"

#define CLAIMS_DEFAULT_RESAMPLES 2000
#define CLAIMS_DEFAULT_SEED      2018
#define CLAIMS_DEFAULT_METRIC    "test/loss/t1"
#define CLAIMS_HOLDS_SUPPORT     0.95
#define CLAIMS_MIN_REPEATS       3
#define CLAIMS_CI_LEVEL          0.95

typedef enum { CLAIM_HOLDS, CLAIM_FAILS, CLAIM_UNDECIDED, CLAIM_NO_DATA } claim_verdict_t;

/* "holds", "fails", "undecided", "no data". */
const char *claim_verdict_name(claim_verdict_t v);

typedef struct {
    const char *experiment; /* required */
    const char *metric;     /* NULL: CLAIMS_DEFAULT_METRIC */
    uint64_t seed;
    int resamples; /* B >= 1 */
} claims_options_t;

/* One claim under one condition.  Strings are owned by the result. */
typedef struct {
    char *claim;         /* the file's stem: "mmoe-gap-smallest" */
    char *text;          /* its "-- claim:" line */
    char *condition;     /* "" when the claim has a single condition; NULL for no data */
    double statistic;    /* on the observed repeats (NAN when undefined) */
    double ci_lo, ci_hi; /* percentile interval (NAN when no resample is defined) */
    double support;      /* fraction of resamples with statistic > 0 (NAN: none defined) */
    int n_repeats;
    claim_verdict_t verdict;
} claim_result_t;

typedef struct {
    int n;
    claim_result_t *rows; /* by claim (file name), then condition */
} claims_t;

/* The embedded claim files of `paper` ("sql/claims/PAPER/NAME.sql", by
 * name) into paths[0..*n), at most max; 0 when the paper has none. */
int claims_files(const char *paper, const char **paths, int max);

/* Checks every claim of `paper` on the store, each file's SQL run after
 * sql/claims/conditions.sql (the shared CTEs final and cond, read from the
 * TEMP tables sql/claims/prepare.sql makes once per call).  Errors: a paper without
 * claims (ERR_USAGE), an experiment the store does not hold or one without a
 * finished trial that has the metric (ERR_FAIL), a claim file that breaks
 * the contract (ERR_FAIL naming it). */
int claims_run(store_t *s, const char *paper, const claims_options_t *opt, claims_t **out,
               err_t *err);
/* The same for one complete SQL text (name: what the rows call it); nothing
 * is prepended. */
int claims_run_sql(store_t *s, const char *name, const char *sql, const claims_options_t *opt,
                   claims_t *into, err_t *err);
void claims_free(claims_t *c);

/* The results as a table: claim, condition, statistic, ci_lo, ci_hi,
 * support, n, verdict (numbers as shortest round-trip text, NaN as NULL), for
 * store_table_print / store_table_csv. */
int claims_table(const claims_t *c, store_table_t **out, err_t *err);

/* How robust each claim is: per claim, its conditions counted by verdict --
 * all of them ("(all)"), then those whose condition has each part
 * ("model.init=torch", "vs=omoe": the space-separated key=value parts), by
 * part.  Columns: claim, where, conditions, holds, fails, undecided, no_data. */
int claims_summary(const claims_t *c, store_table_t **out, err_t *err);

/* Writes PATH (must end in .gp): a gnuplot 5 script drawing the results,
 * one row of boxes per claim and one box per condition, coloured by verdict
 * and labelled with the condition and the support; run as `gnuplot PATH` it
 * writes PATH's stem + ".png" (define keep_terminal to draw elsewhere). */
int claims_plot(const claims_t *c, const char *experiment, const char *path, err_t *err);
/* The same for claims_summary's table t: one row of boxes per claim, one box
 * per part of the condition, coloured by the verdicts' colours mixed in
 * proportion to their counts and labelled with the counts. */
int claims_plot_summary(const store_table_t *t, const char *experiment, const char *path,
                        err_t *err);

#endif
