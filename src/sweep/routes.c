/* routes.c -- a trial's routes as store records (routes.h). */
#include "sweep/routes.h"
#include "core/mem.h"

#include <limits.h>
#include <string.h>

void route_records_free(route_records_t *rec) {
    mem_free(rec->routes);
    mem_free(rec->steps);
    memset(rec, 0, sizeof *rec);
}

int route_records(const trial_result_t *res, route_records_t *rec, store_result_t *out,
                  err_t *err) {
    memset(rec, 0, sizeof *rec);
    const int per_eval = res->route_count;
    if (per_eval <= 0 || res->n_evals <= 0 || !res->routes) return 0;
    const size_t n_steps = (size_t)res->n_evals * (size_t)per_eval; /* both ints: no overflow */
    if (n_steps > INT_MAX)
        return err_set(err, ERR_FAIL, "%zu route rows (%d evaluations x %d routes) are too many",
                       n_steps, res->n_evals, per_eval);
    rec->steps = mem_alloc(sizeof *rec->steps * n_steps);
    rec->routes = mem_alloc(sizeof *rec->routes * (size_t)per_eval);
    if (!rec->steps || !rec->routes) {
        route_records_free(rec);
        return err_set(err, ERR_FAIL, "out of memory for %zu route rows", n_steps);
    }
    for (int e = 0; e < res->n_evals; e++)
        for (int i = 0; i < per_eval; i++) {
            const size_t at = (size_t)e * per_eval + i;
            const model_route_t *r = &res->routes[at];
            rec->steps[at] = (store_route_step_t){
                res->evals[e].step, r->layer, r->src, r->dst, r->kind, r->value};
        }
    out->n_route_steps = (int)n_steps;
    out->route_steps = rec->steps;
    if (res->result.failed_step == 0) {
        const model_route_t *last = &res->routes[(size_t)(res->n_evals - 1) * per_eval];
        for (int i = 0; i < per_eval; i++)
            rec->routes[i] = (store_route_t){last[i].layer, last[i].src, last[i].dst, last[i].kind,
                                             last[i].value};
        out->n_routes = per_eval;
        out->routes = rec->routes;
    }
    return 0;
}
