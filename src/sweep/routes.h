/* routes.h -- a trial's routes as store records.
 *
 * A routing family (SNR, MTNAS: models/model.h, ops->routes) reports its
 * routes at every evaluation (trial_result_t.routes).  They are stored as
 *   route_step  every evaluation's routes, with the evaluation's step
 *               (sql/migrations/008-route-steps.sql);
 *   route       the last evaluation's, the FINAL routes -- only for a trial
 *               that finished (failed_step 0); a failed trial keeps its
 *               route_step rows up to the failure.
 * Families without routes give no rows (their records are unchanged). */
#ifndef MTLAB_SWEEP_ROUTES_H
#define MTLAB_SWEEP_ROUTES_H

#include "core/err.h"
#include "store/store.h"
#include "train/trial.h"

typedef struct {
    store_route_t *routes;     /* [route_count] the final routes */
    store_route_step_t *steps; /* [n_evals * route_count] */
} route_records_t;

/* Fills rec from res and points out->routes / out->route_steps (with their
 * counts) at them; the kinds point into res's strings (constants).  Returns
 * 0, or -1 with *err (ERR_FAIL: out of memory, or more rows than an int
 * counts); rec is then empty.  Free with route_records_free. */
int route_records(const trial_result_t *res, route_records_t *rec, store_result_t *out, err_t *err);
void route_records_free(route_records_t *rec);

#endif
