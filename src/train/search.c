/* search.c -- the MTNAS route search (see search.h).
 *
 * Memory: every buffer the search needs (the REINFORCE learner, the saved
 * slices of unused tensors, the validation batch, the sampled routes, the
 * initial weights for a retrain) is allocated before the first step. */
#include "train/search.h"

#include <math.h>
#include <string.h>

#include "core/mem.h"
#include "models/mtnas.h"
#include "train/reinforce.h"

bool search_wanted(const model_t *m) {
    return mtnas_is(m) && model_hp_value(m, "search", 0) != 0;
}

bool search_wanted_config(const model_ops_t *ops, const model_config_t *mc) {
    const int i = ops == &model_mtnas_ops ? model_hp_find(ops, "search") : -1;
    return i >= 0 && mc->hp[i] != 0;
}

int search_memory(const model_sizes_t *ms, const model_config_t *mc, const train_config_t *tc,
                  size_t *bytes, err_t *err) {
    const size_t na = ms->n_params - ms->n_weights, nw = ms->n_weights ? ms->n_weights : 1;
    const size_t B = tc->batch > 0 ? (size_t)tc->batch : 0, T = (size_t)mc->tasks;
    const size_t samples = 64; /* the "samples" key's maximum */
    size_tally_t t = {0};
    size_tally_blocks(&t, 4, nw, sizeof(real)); /* keep_p, keep_m, keep_v, init */
    size_tally_blocks(&t, 3, na, sizeof(real)); /* REINFORCE's Adam m, v and its gradient */
    size_tally_block(&t, na, sizeof(int));      /* choices: at most one block per logit */
    size_tally_block(&t, na, sizeof(size_t));   /* offsets */
    size_tally_block(&t, (size_t)ms->n_tensors, sizeof(bool));
    size_tally_block(&t, B * (size_t)mc->input_dim, sizeof(real));
    size_tally_blocks(&t, 2, B * T, sizeof(real));
    size_tally_block(&t, B, sizeof(metric_scored_t));
    size_tally_block(&t, samples * (size_t)MTNAS_MAX_BLOCKS, sizeof(int));
    size_tally_block(&t, samples, sizeof(double));
    if (t.overflow)
        return err_set(err, ERR_USAGE, "the route search's buffers (%zu weights) overflow", nw);
    *bytes = t.bytes;
    return 0;
}

typedef struct {
    model_t *m;
    const data_t *data;
    train_config_t cfg;
    train_state_t st;
    reinforce_space_t space;
    reinforce_t rl;
    int nb, K, warmup;
    bool retrain;
    rng_t val_rng;
    bool *used;                     /* [n_tensors] */
    real *keep_p, *keep_m, *keep_v; /* [n_weights] the unused tensors' values and moments */
    real *init;                     /* [n_weights] initial weights (retrain only) */
    real *xv, *yv, *pv;             /* [batch, d], [batch, T], [batch, T] */
    metric_scored_t *scored;        /* [batch] */
    int *routes;                    /* [K, nb] */
    double *rewards;                /* [K] */
} search_t;

static void search_free(search_t *s) {
    reinforce_free(&s->rl);
    reinforce_space_free(&s->space);
    mem_free(s->used);
    mem_free(s->keep_p);
    mem_free(s->keep_m);
    mem_free(s->keep_v);
    mem_free(s->init);
    mem_free(s->xv);
    mem_free(s->yv);
    mem_free(s->pv);
    mem_free(s->scored);
    mem_free(s->routes);
    mem_free(s->rewards);
}

static int search_begin(search_t *s, model_t *m, const data_t *data, const train_config_t *cfg,
                        uint64_t batch_seed, err_t *err) {
    memset(s, 0, sizeof *s);
    s->m = m;
    s->data = data;
    s->cfg = *cfg;
    if (cfg->arch != TRAIN_ARCH_FROZEN)
        return err_set(err, ERR_USAGE,
                       "model '%s' searches its routes by REINFORCE (model.search = on): the "
                       "architecture schedule must stay frozen",
                       m->ops->name);
    const int *choices;
    s->nb = mtnas_choices(m, &choices);
    reinforce_config_t rc;
    reinforce_config_default(&rc);
    rc.lr = model_hp_value(m, "arch_lr", rc.lr);
    rc.decay = model_hp_value(m, "baseline_decay", rc.decay);
    rc.samples = (int)model_hp_value(m, "samples", rc.samples);
    s->K = rc.samples;
    s->warmup = (int)model_hp_value(m, "warmup", 0);
    s->retrain = model_hp_value(m, "retrain", 0) != 0;
    if (reinforce_space_init(&s->space, s->nb, choices, err)) return -1;
    if (s->space.n_logits != m->n_params - m->n_weights) /* the layout of mtnas.h */
        return err_set(err, ERR_FAIL, "mtnas: %zu route logits but %zu architecture parameters",
                       s->space.n_logits, m->n_params - m->n_weights);
    if (reinforce_init(&s->rl, &s->space, &rc, err)) return -1;
    if (train_begin(&s->st, m, data, cfg, batch_seed, err)) return -1;
    rng_seed(&s->val_rng, batch_seed, RNG_STREAM_SEARCH_VAL);
    const size_t nw = m->n_weights, B = (size_t)cfg->batch, T = (size_t)data->T;
    s->used = mem_calloc((size_t)m->n_tensors, sizeof(bool));
    s->keep_p = mem_alloc(sizeof(real) * (nw ? nw : 1));
    s->keep_m = mem_alloc(sizeof(real) * (nw ? nw : 1));
    s->keep_v = mem_alloc(sizeof(real) * (nw ? nw : 1));
    if (s->retrain) s->init = mem_alloc(sizeof(real) * (nw ? nw : 1));
    s->xv = mem_alloc(sizeof(real) * B * (size_t)data->d);
    s->yv = mem_alloc(sizeof(real) * B * T);
    s->pv = mem_alloc(sizeof(real) * B * T);
    s->scored = mem_alloc(sizeof(metric_scored_t) * B);
    s->routes = mem_calloc((size_t)s->K * (size_t)s->nb, sizeof(int));
    s->rewards = mem_calloc((size_t)s->K, sizeof(double));
    if (!s->used || !s->keep_p || !s->keep_m || !s->keep_v || (s->retrain && !s->init) || !s->xv ||
        !s->yv || !s->pv || !s->scored || !s->routes || !s->rewards) {
        train_end(&s->st);
        return err_set(err, ERR_FAIL, "out of memory for the route search buffers");
    }
    if (s->retrain) memcpy(s->init, m->params, sizeof(real) * nw);
    return 0;
}

/* Copies (save) or restores the values and Adam moments of the weight
 * tensors the current route does not read. */
static void unused_slices(search_t *s, bool save) {
    const model_t *m = s->m;
    const adam_t *opt = &s->st.adam;
    for (int t = 0; t < m->n_tensors; t++) {
        const tensor_t *ts = &m->tensors[t];
        if (s->used[t] || ts->group != TENSOR_WEIGHT) continue;
        const size_t at = ts->offset, n = sizeof(real) * (size_t)ts->rows * ts->cols;
        if (save) {
            memcpy(s->keep_p + at, m->params + at, n);
            memcpy(s->keep_m + at, opt->m + at, n);
            memcpy(s->keep_v + at, opt->v + at, n);
        } else {
            memcpy(m->params + at, s->keep_p + at, n);
            memcpy(opt->m + at, s->keep_m + at, n);
            memcpy(opt->v + at, s->keep_v + at, n);
        }
    }
}

/* One weight step through `route`, the unused tensors untouched. */
static int weight_step(search_t *s, const int *route, double *batch_loss) {
    mtnas_set_route(s->m, route);
    mtnas_tensors_used(s->m, route, s->used);
    unused_slices(s, true);
    if (train_step(&s->st, batch_loss)) {
        unused_slices(s, false); /* train_step left the parameters as they were */
        return -1;
    }
    unused_slices(s, false);
    return 0;
}

/* A validation batch of cfg.batch examples drawn with replacement. */
static void val_batch(search_t *s) {
    const data_t *data = s->data;
    const int T = data->T, d = data->d;
    for (int b = 0; b < s->cfg.batch; b++) {
        const int i = (int)rng_below(&s->val_rng, (uint32_t)data->val.n);
        memcpy(s->xv + (size_t)b * d, data->val.x + (size_t)i * d, sizeof(real) * d);
        memcpy(s->yv + (size_t)b * T, data->val.y + (size_t)i * T, sizeof(real) * T);
    }
}

/* The reward of the current route on the validation batch (search.h). */
static double reward_of(search_t *s) {
    const data_t *data = s->data;
    const int B = s->cfg.batch, T = data->T;
    model_forward(s->m, s->xv, B, s->pv, MODEL_TRAIN);
    double r = 0;
    for (int k = 0; k < T; k++) {
        if (data->kind[k] != TASK_BINARY) {
            r -= s->cfg.task_weight[k] * loss_task(data->kind[k], s->pv, s->yv, B, T, k);
            continue;
        }
        for (int b = 0; b < B; b++)
            s->scored[b] = (metric_scored_t){s->pv[(size_t)b * T + k], s->yv[(size_t)b * T + k]};
        const double auc = metric_auc(s->scored, B);
        r += isnan(auc) ? 0.5 : auc;
    }
    return r;
}

/* One REINFORCE update from K routes sampled on one validation batch. */
static int arch_step(search_t *s) {
    real *alpha = s->m->params + s->m->n_weights;
    val_batch(s);
    for (int j = 0; j < s->K; j++) {
        int *route = s->routes + (size_t)j * s->nb;
        reinforce_sample(&s->space, alpha, &s->m->rng, route);
        mtnas_set_route(s->m, route);
        s->rewards[j] = reward_of(s);
        if (!isfinite(s->rewards[j])) return -1;
    }
    reinforce_update(&s->rl, alpha, s->routes, s->rewards);
    return 0;
}

static int diverged(train_result_t *res, int step, const char *what, err_t *err) {
    res->failed_step = step;
    return err_set(err, ERR_FAIL, "diverged at step %d: %s is NaN or infinite", step, what);
}

/* Runs `steps` steps of one phase: search (route sampling and REINFORCE) or
 * the retraining of the derived route, reporting evaluations at offset +
 * step. */
static int run_phase(search_t *s, bool search, int offset, train_eval_fn on_eval, void *ctx,
                     train_result_t *res, err_t *err) {
    const int T = s->data->T, steps = s->cfg.steps;
    double train_sum[MTLAB_MAX_TASKS + 1] = {0}, penalty_sum = 0;
    int since_eval = 0, route[MTNAS_MAX_BLOCKS];
    const int *choices;
    mtnas_choices(s->m, &choices);
    for (int step = 1; step <= steps; step++) {
        double batch_loss[MTLAB_MAX_TASKS + 1];
        int status;
        if (!search) {
            status = train_step(&s->st, batch_loss);
        } else {
            if (step <= s->warmup)
                for (int b = 0; b < s->nb; b++)
                    route[b] = (int)rng_below(&s->m->rng, (uint32_t)choices[b]);
            else
                reinforce_sample(&s->space, s->m->params + s->m->n_weights, &s->m->rng, route);
            status = weight_step(s, route, batch_loss);
        }
        if (status)
            return diverged(res, offset + step,
                            isfinite(s->st.penalty) ? "the training loss" : "the penalty", err);
        if (search && step > s->warmup && arch_step(s))
            return diverged(res, offset + step, "the architecture reward", err);
        for (int k = 0; k <= T; k++)
            train_sum[k] += batch_loss[k];
        penalty_sum += s->st.penalty;
        since_eval++;
        if (step % s->cfg.eval_every == 0 || step == steps) {
            for (int k = 0; k <= T; k++)
                train_sum[k] /= since_eval;
            train_eval_t ev;
            if (train_evaluate_at(&s->st, offset + step, train_sum, penalty_sum / since_eval, &ev))
                return diverged(res, offset + step, "the evaluation loss", err);
            res->final = ev;
            if (on_eval) on_eval(ctx, &ev);
            memset(train_sum, 0, sizeof train_sum);
            penalty_sum = 0;
            since_eval = 0;
        }
    }
    return 0;
}

int search_run(model_t *m, const data_t *data, const train_config_t *cfg, uint64_t batch_seed,
               train_eval_fn on_eval, void *ctx, train_result_t *res, err_t *err) {
    memset(res, 0, sizeof *res);
    search_t s;
    if (search_begin(&s, m, data, cfg, batch_seed, err)) {
        search_free(&s);
        return -1;
    }
    int status = run_phase(&s, true, 0, on_eval, ctx, res, err);
    mtnas_set_route(m, NULL); /* from now on: the derived route */
    train_end(&s.st);
    if (status == 0 && s.retrain) {
        memcpy(m->params, s.init, sizeof(real) * m->n_weights);
        status = train_begin(&s.st, m, data, cfg, batch_seed, err);
        if (status == 0) status = run_phase(&s, false, cfg->steps, on_eval, ctx, res, err);
        train_end(&s.st);
    }
    search_free(&s);
    return status;
}
