/* train.c -- mini-batch Adam training, evaluation and gate statistics.
 *
 * Memory: everything a run needs (Adam moments, the shuffled index, one
 * mini-batch, predictions and their gradients) is allocated once before the
 * first step; the step loop itself allocates nothing. */
#include "train/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/adam.h"

void train_config_default(train_config_t *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->lr = 1e-3;
    cfg->batch = 128;
    cfg->steps = 3000;
    cfg->eval_every = 100;
    for (int k = 0; k < MTLAB_MAX_TASKS; k++)
        cfg->task_weight[k] = 1.0;
}

static int check_shapes(const model_t *m, const data_t *data, err_t *err) {
    if (data->d != m->cfg.input_dim)
        return err_set(err, ERR_USAGE, "data has %d features but the model expects %d", data->d,
                       m->cfg.input_dim);
    if (data->T != m->cfg.tasks)
        return err_set(err, ERR_USAGE, "data has %d tasks but the model has %d", data->T,
                       m->cfg.tasks);
    return 0;
}

/* Sums the per-task losses of pred[B, T] against y[B, T] into sum[0..T)
 * (each weighted by B, so dividing by the example count gives the mean). */
static void add_losses(const data_t *data, const real *pred, const real *y, int B, double *sum) {
    for (int k = 0; k < data->T; k++)
        sum[k] += B * loss_task(data->kind[k], pred, y, B, data->T, k);
}

static void finish_losses(int T, const double *weight, double count, double *loss) {
    double total = 0;
    for (int k = 0; k < T; k++) {
        loss[k] /= count;
        total += weight[k] * loss[k];
    }
    loss[T] = total;
}

static bool all_finite(const double *v, int n) {
    for (int i = 0; i < n; i++)
        if (!isfinite(v[i])) return false;
    return true;
}

/* Evaluation with a caller-provided prediction buffer pred[max_batch, T]. */
static void evaluate_into(model_t *m, const data_t *data, const dataset_t *split,
                          const double *weight, real *pred, double *loss) {
    const int T = data->T, d = data->d, chunk = m->cfg.max_batch;
    memset(loss, 0, sizeof(double) * (T + 1));
    for (int start = 0, B; start < split->n; start += B) { /* start + B <= n: no overflow */
        B = split->n - start < chunk ? split->n - start : chunk;
        model_forward(m, split->x + (size_t)start * d, B, pred, MODEL_EVAL);
        add_losses(data, pred, split->y + (size_t)start * T, B, loss);
    }
    finish_losses(T, weight, split->n > 0 ? split->n : 1, loss);
}

int train_evaluate(model_t *m, const data_t *data, const dataset_t *split,
                   const double *task_weight, double *loss, err_t *err) {
    if (check_shapes(m, data, err)) return -1;
    real *pred = malloc(sizeof(real) * m->cfg.max_batch * data->T);
    if (!pred) return err_set(err, ERR_FAIL, "out of memory for predictions");
    evaluate_into(m, data, split, task_weight, pred, loss);
    free(pred);
    return 0;
}

static int check_config(const model_t *m, const data_t *data, const train_config_t *c, err_t *err) {
    if (!(c->lr > 0) || !isfinite(c->lr))
        return err_set(err, ERR_USAGE, "learning rate must be a positive number (got %g)", c->lr);
    if (c->batch < 1 || c->batch > m->cfg.max_batch)
        return err_set(err, ERR_USAGE, "batch must be in [1, %d] (got %d)", m->cfg.max_batch,
                       c->batch);
    if (c->batch > data->train.n)
        return err_set(err, ERR_USAGE, "batch %d is larger than the training set (%d examples)",
                       c->batch, data->train.n);
    if (c->steps < 1) return err_set(err, ERR_USAGE, "steps must be at least 1 (got %d)", c->steps);
    if (c->eval_every < 1)
        return err_set(err, ERR_USAGE, "eval_every must be at least 1 (got %d)", c->eval_every);
    if (data->val.n < 1 || data->test.n < 1)
        return err_set(err, ERR_USAGE, "validation and test sets must not be empty");
    for (int k = 0; k < data->T; k++)
        if (!(c->task_weight[k] >= 0) || !isfinite(c->task_weight[k]))
            return err_set(err, ERR_USAGE, "task weight %d must be >= 0 (got %g)", k + 1,
                           c->task_weight[k]);
    return 0;
}

static void state_free(train_state_t *s) {
    adam_free(&s->adam);
    free(s->order);
    free(s->xb);
    free(s->yb);
    free(s->pred);
    free(s->dpred);
    memset(s, 0, sizeof *s);
}

int train_begin(train_state_t *s, model_t *m, const data_t *data, const train_config_t *cfg,
                uint64_t batch_seed, err_t *err) {
    memset(s, 0, sizeof *s);
    if (check_shapes(m, data, err) || check_config(m, data, cfg, err)) return -1;
    s->m = m;
    s->data = data;
    s->cfg = *cfg;
    if (adam_init(&s->adam, m->n_weights, cfg->lr, err)) return -1;
    /* Every product fits in size_t: batch <= n_train (check_config) and
     * data->train.x already holds n_train x d reals. */
    const size_t B = (size_t)m->cfg.max_batch, T = (size_t)data->T, d = (size_t)data->d;
    s->order = malloc(sizeof(int) * (size_t)data->train.n);
    s->xb = malloc(sizeof(real) * (size_t)cfg->batch * d);
    s->yb = malloc(sizeof(real) * (size_t)cfg->batch * T);
    s->pred = malloc(sizeof(real) * B * T);
    s->dpred = malloc(sizeof(real) * B * T);
    if (!s->order || !s->xb || !s->yb || !s->pred || !s->dpred) {
        state_free(s);
        return err_set(err, ERR_FAIL, "out of memory for the training buffers");
    }
    for (int i = 0; i < data->train.n; i++)
        s->order[i] = i;
    rng_seed(&s->batch_rng, batch_seed, RNG_STREAM_BATCH);
    rng_shuffle(&s->batch_rng, s->order, (size_t)data->train.n);
    return 0;
}

void train_end(train_state_t *s) {
    state_free(s);
}

int train_memory(const model_sizes_t *ms, const model_config_t *mc, const train_config_t *tc,
                 int n_train, train_memory_t *out, err_t *err) {
    memset(out, 0, sizeof *out);
    const size_t B = (size_t)mc->max_batch, T = (size_t)mc->tasks, d = (size_t)mc->input_dim;
    const size_t batch = tc->batch > 0 ? (size_t)tc->batch : 0;
    size_tally_t adam = {0}, steps = {0}, gates = {0};
    size_tally_blocks(&adam, 2, ms->n_weights, sizeof(real)); /* adam_init: m, v */
    /* train_begin */
    size_tally_block(&steps, n_train > 0 ? (size_t)n_train : 0, sizeof(int)); /* order */
    size_tally_block(&steps, batch * d, sizeof(real));                        /* xb */
    size_tally_block(&steps, batch * T, sizeof(real));                        /* yb */
    size_tally_blocks(&steps, 2, B * T, sizeof(real));                        /* pred, dpred */
    /* train_gate_stats: pred, the gate table, then per gate mean and std
     * [experts] in double and hist [experts][GATE_HIST_BINS] -- counted as
     * one block of all gates' statistics and the overhead of the other
     * blocks. */
    size_tally_block(&gates, B * T, sizeof(real));
    if (ms->n_gates > 0) {
        size_tally_block(&gates, (size_t)ms->n_gates, sizeof(gate_stat_t));
        size_tally_block(&gates, ms->gate_experts,
                         2 * sizeof(double) + GATE_HIST_BINS * sizeof(long));
        size_tally_blocks(&gates, 3 * (size_t)ms->n_gates - 1, 0, 1);
    }
    if (adam.overflow || steps.overflow || gates.overflow)
        return err_set(err, ERR_USAGE, "training buffers: batch %zu x %zu inputs overflows", batch,
                       d);
    out->adam = adam.bytes;
    out->steps = steps.bytes;
    out->gate_stats = gates.bytes;
    return 0;
}

/* Asks the cache for the inputs of the mini-batch after the one just copied
 * (when it lies in this epoch): its rows are scattered over the training set,
 * and they arrive while this step computes instead of stalling the next copy. */
static void prefetch_next_batch(const train_state_t *s) {
    const int d = s->data->d, B = s->cfg.batch;
    if (B > s->data->train.n - s->pos) return; /* pos <= n: no overflow */
    for (int b = 0; b < B; b++) {
        const char *row = (const char *)(s->data->train.x + (size_t)s->order[s->pos + b] * d);
        for (size_t k = 0; k < sizeof(real) * d; k += 64)
            __builtin_prefetch(row + k);
    }
}

/* Copies the next mini-batch into xb, yb (a new epoch drops the incomplete
 * tail and reshuffles). */
static void next_batch(train_state_t *s) {
    const data_t *data = s->data;
    const int T = data->T, d = data->d, B = s->cfg.batch, n = data->train.n;
    if (B > n - s->pos) { /* pos <= n: no overflow */
        rng_shuffle(&s->batch_rng, s->order, (size_t)n);
        s->pos = 0;
    }
    for (int b = 0; b < B; b++) {
        int i = s->order[s->pos + b];
        memcpy(s->xb + (size_t)b * d, data->train.x + (size_t)i * d, sizeof(real) * d);
        memcpy(s->yb + (size_t)b * T, data->train.y + (size_t)i * T, sizeof(real) * T);
    }
    s->pos += B;
    prefetch_next_batch(s);
}

int train_step(train_state_t *s, double *batch_loss) {
    model_t *m = s->m;
    const data_t *data = s->data;
    const int T = data->T, B = s->cfg.batch;
    next_batch(s);
    model_forward(m, s->xb, B, s->pred, MODEL_TRAIN);
    memset(batch_loss, 0, sizeof(double) * (T + 1));
    add_losses(data, s->pred, s->yb, B, batch_loss);
    finish_losses(T, s->cfg.task_weight, B, batch_loss);
    if (!all_finite(batch_loss, T + 1)) return -1;

    model_zero_grad(m);
    for (int k = 0; k < T; k++)
        loss_task_grad(data->kind[k], s->pred, s->yb, B, T, k, (real)s->cfg.task_weight[k],
                       s->dpred);
    model_backward(m, s->xb, B, s->dpred);
    if (m->ops->penalty) m->ops->penalty(m);
    adam_step(&s->adam, m->params, m->grads);
    return 0;
}

static int diverged(train_result_t *res, int step, const char *what, err_t *err) {
    res->failed_step = step;
    return err_set(err, ERR_FAIL, "diverged at step %d: %s is NaN or infinite", step, what);
}

int train_run(model_t *m, const data_t *data, const train_config_t *cfg, uint64_t batch_seed,
              train_eval_fn on_eval, void *ctx, train_result_t *res, err_t *err) {
    memset(res, 0, sizeof *res);
    train_state_t s;
    if (train_begin(&s, m, data, cfg, batch_seed, err)) return -1;
    const int T = data->T;
    int since_eval = 0, status = 0;
    double train_sum[MTLAB_MAX_TASKS + 1] = {0};

    for (int step = 1; step <= cfg->steps; step++) {
        double batch_loss[MTLAB_MAX_TASKS + 1];
        if (train_step(&s, batch_loss)) {
            status = diverged(res, step, "the training loss", err);
            break;
        }
        for (int k = 0; k <= T; k++)
            train_sum[k] += batch_loss[k];
        since_eval++;

        if (step % cfg->eval_every == 0 || step == cfg->steps) {
            train_eval_t ev = {.step = step, .tasks = T};
            for (int k = 0; k <= T; k++)
                ev.train[k] = train_sum[k] / since_eval;
            evaluate_into(m, data, &data->val, cfg->task_weight, s.pred, ev.val);
            evaluate_into(m, data, &data->test, cfg->task_weight, s.pred, ev.test);
            if (!all_finite(ev.val, T + 1) || !all_finite(ev.test, T + 1)) {
                status = diverged(res, step, "the evaluation loss", err);
                break;
            }
            res->final = ev;
            if (on_eval) on_eval(ctx, &ev);
            memset(train_sum, 0, sizeof train_sum);
            since_eval = 0;
        }
    }
    train_end(&s);
    return status;
}

void train_mean_baseline(const data_t *data, const dataset_t *split, const double *task_weight,
                         double *loss) {
    const int T = data->T;
    double mean[MTLAB_MAX_TASKS] = {0};
    for (int i = 0; i < data->train.n; i++)
        for (int k = 0; k < T; k++)
            mean[k] += data->train.y[(size_t)i * T + k];
    real constant[MTLAB_MAX_TASKS];
    for (int k = 0; k < T; k++) {
        double mu = mean[k] / data->train.n;
        if (data->kind[k] == TASK_BINARY) /* logit of the positive rate, kept finite */
            mu = log(fmax(mu, 1e-12) / fmax(1 - mu, 1e-12));
        constant[k] = (real)mu;
    }
    memset(loss, 0, sizeof(double) * (T + 1));
    for (int i = 0; i < split->n; i++) /* one example at a time: pred is the constant row */
        add_losses(data, constant, split->y + (size_t)i * T, 1, loss);
    finish_losses(T, task_weight, split->n > 0 ? split->n : 1, loss);
}

/* ---- gate statistics ---- */

const char *gate_kind_name(gate_kind_t kind) {
    return kind == GATE_WEIGHTS ? "weights" : "softmax";
}

void gate_stats_free(gate_stats_t *s) {
    for (int g = 0; g < s->n_gates; g++) {
        free(s->gate[g].mean);
        free(s->gate[g].std);
        free(s->gate[g].hist);
    }
    free(s->gate);
    memset(s, 0, sizeof *s);
}

/* Runs the model over the split in chunks of max_batch and hands each chunk's
 * gates to visit(). */
static void over_split(model_t *m, const dataset_t *split, real *pred,
                       void (*visit)(void *ctx, const model_gate_t *views, int B), void *ctx) {
    const int d = m->cfg.input_dim, chunk = m->cfg.max_batch;
    const model_gate_t *views;
    model_gates(m, &views);
    for (int start = 0, B; start < split->n; start += B) { /* start + B <= n: no overflow */
        B = split->n - start < chunk ? split->n - start : chunk;
        model_forward(m, split->x + (size_t)start * d, B, pred, MODEL_EVAL);
        visit(ctx, views, B);
    }
}

/* First pass for raw-weights gates: widens [lo, hi] to their values. */
static void visit_range(void *ctx, const model_gate_t *views, int B) {
    gate_stats_t *out = ctx;
    for (int g = 0; g < out->n_gates; g++) {
        gate_stat_t *s = &out->gate[g];
        if (s->kind != GATE_WEIGHTS) continue;
        for (int b = 0; b < B; b++)
            for (int e = 0; e < s->experts; e++) {
                double v = views[g].values[(size_t)b * views[g].ld + e];
                if (v < s->lo) s->lo = v; /* NaN compares false: left out */
                if (v > s->hi) s->hi = v;
            }
    }
}

static void visit_stats(void *ctx, const model_gate_t *views, int B) {
    gate_stats_t *out = ctx;
    for (int g = 0; g < out->n_gates; g++) {
        gate_stat_t *s = &out->gate[g];
        const double scale = GATE_HIST_BINS / (s->hi - s->lo);
        for (int b = 0; b < B; b++)
            for (int e = 0; e < s->experts; e++) {
                double v = views[g].values[(size_t)b * views[g].ld + e];
                s->mean[e] += v; /* sums for now */
                s->std[e] += v * v;
                /* v in [lo, hi]; the value hi joins the last bin, NaN the first */
                double at = (v - s->lo) * scale;
                int bin = at >= 0 ? (at < GATE_HIST_BINS ? (int)at : GATE_HIST_BINS - 1) : 0;
                s->hist[(size_t)e * GATE_HIST_BINS + bin]++;
            }
    }
    out->examples += B;
}

int train_gate_stats(model_t *m, const dataset_t *split, gate_stats_t *out, err_t *err) {
    memset(out, 0, sizeof *out);
    const model_gate_t *views;
    const int n_gates = model_gates(m, &views);
    if (n_gates == 0 || split->n == 0) return 0;
    real *pred = malloc(sizeof(real) * m->cfg.max_batch * m->cfg.tasks);
    out->gate = calloc((size_t)n_gates, sizeof *out->gate);
    if (!pred || !out->gate) {
        free(pred);
        free(out->gate);
        out->gate = NULL;
        return err_set(err, ERR_FAIL, "out of memory for the statistics of %d gates", n_gates);
    }
    out->n_gates = n_gates;
    bool any_weights = false;
    for (int g = 0; g < n_gates; g++) {
        gate_stat_t *s = &out->gate[g];
        memcpy(s->name, views[g].name, sizeof s->name);
        memcpy(s->owner, views[g].owner, sizeof s->owner);
        s->level = views[g].level;
        s->kind = views[g].kind;
        s->experts = views[g].experts;
        s->lo = s->kind == GATE_WEIGHTS ? INFINITY : 0;
        s->hi = s->kind == GATE_WEIGHTS ? -INFINITY : 1;
        any_weights |= s->kind == GATE_WEIGHTS;
        s->mean = calloc(s->experts, sizeof(double));
        s->std = calloc(s->experts, sizeof(double));
        s->hist = calloc((size_t)s->experts * GATE_HIST_BINS, sizeof(long));
        if (!s->mean || !s->std || !s->hist) {
            free(pred);
            gate_stats_free(out);
            return err_set(err, ERR_FAIL, "out of memory for gate statistics");
        }
    }
    if (any_weights) {
        over_split(m, split, pred, visit_range, out);
        for (int g = 0; g < n_gates; g++) {
            gate_stat_t *s = &out->gate[g];
            if (s->kind != GATE_WEIGHTS) continue;
            if (!(s->lo <= s->hi)) s->lo = s->hi = 0; /* no finite value */
            if (!(s->hi > s->lo)) s->hi = s->lo + 1;  /* one value: a unit range above it */
        }
    }
    over_split(m, split, pred, visit_stats, out);
    for (int g = 0; g < out->n_gates; g++) {
        gate_stat_t *s = &out->gate[g];
        for (int e = 0; e < s->experts; e++) {
            double mean = s->mean[e] / out->examples;
            double var = s->std[e] / out->examples - mean * mean;
            s->mean[e] = mean;
            s->std[e] = sqrt(var > 0 ? var : 0);
        }
    }
    free(pred);
    return 0;
}
