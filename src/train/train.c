/* train.c -- mini-batch Adam training, evaluation and gate statistics.
 *
 * Memory: everything a run needs (Adam moments, the shuffled index, one
 * mini-batch, predictions and their gradients, the binary tasks' scored
 * examples for AUC) is allocated once before the first step; the step loop
 * and the evaluations allocate nothing. */
#include "train/train.h"
#include "core/mem.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/adam.h"
#include "train/search.h"

void train_config_default(train_config_t *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->lr = 1e-3;
    cfg->batch = 128;
    cfg->steps = 3000;
    cfg->eval_every = 100;
    for (int k = 0; k < MTLAB_MAX_TASKS; k++) cfg->task_weight[k] = 1.0;
    cfg->arch = TRAIN_ARCH_FROZEN;
    cfg->arch_lr = 1e-3;
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

/* Evaluation with a caller-provided prediction buffer pred[max_batch, T].
 * When scored is not NULL, scored[j * n + i] gets example i's logit and
 * label for the j-th binary task (n = split->n). */
static void evaluate_into(model_t *m, const data_t *data, const dataset_t *split,
                          const double *weight, real *pred, metric_scored_t *scored, double *loss) {
    const int T = data->T, d = data->d, chunk = m->cfg.max_batch;
    memset(loss, 0, sizeof(double) * (T + 1));
    for (int start = 0, B; start < split->n; start += B) { /* start + B <= n: no overflow */
        B = split->n - start < chunk ? split->n - start : chunk;
        model_forward(m, split->x + (size_t)start * d, B, pred, MODEL_EVAL);
        const real *y = split->y + (size_t)start * T;
        add_losses(data, pred, y, B, loss);
        if (!scored) continue;
        for (int k = 0, j = 0; k < T; k++) {
            if (data->kind[k] != TASK_BINARY) continue;
            metric_scored_t *row = scored + (size_t)j++ * split->n + start;
            for (int b = 0; b < B; b++)
                row[b] = (metric_scored_t){pred[(size_t)b * T + k], y[(size_t)b * T + k]};
        }
    }
    finish_losses(T, weight, split->n > 0 ? split->n : 1, loss);
}

int train_evaluate(model_t *m, const data_t *data, const dataset_t *split,
                   const double *task_weight, double *loss, err_t *err) {
    if (check_shapes(m, data, err)) return -1;
    real *pred = mem_alloc(sizeof(real) * m->cfg.max_batch * data->T);
    if (!pred) return err_set(err, ERR_FAIL, "out of memory for predictions");
    evaluate_into(m, data, split, task_weight, pred, NULL, loss);
    mem_free(pred);
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
    if (c->arch != TRAIN_ARCH_FROZEN && c->arch != TRAIN_ARCH_JOINT &&
        c->arch != TRAIN_ARCH_ALTERNATE)
        return err_set(err, ERR_USAGE, "unknown architecture schedule %d", (int)c->arch);
    if (c->arch != TRAIN_ARCH_FROZEN) {
        if (m->n_params == m->n_weights)
            return err_set(err, ERR_USAGE,
                           "model '%s' has no architecture parameters to train (its schedule "
                           "must be frozen)",
                           m->ops->name);
        if (!(c->arch_lr > 0) || !isfinite(c->arch_lr))
            return err_set(err, ERR_USAGE,
                           "architecture learning rate must be a positive number (got %g)",
                           c->arch_lr);
    }
    return 0;
}

static int count_binary(const data_t *data) {
    int n = 0;
    for (int k = 0; k < data->T; k++)
        n += data->kind[k] == TASK_BINARY;
    return n;
}

static void state_free(train_state_t *s) {
    adam_free(&s->adam);
    adam_free(&s->arch_adam);
    mem_free(s->scored);
    mem_free(s->order);
    mem_free(s->xb);
    mem_free(s->yb);
    mem_free(s->pred);
    mem_free(s->dpred);
    memset(s, 0, sizeof *s);
}

/* Hands each tensor's learning-rate multiplier (tensor_t.lr_scale, 1 for
 * every tensor of most families) to the Adam of its group, as a slice of
 * that Adam's buffer.  Tensors of one group lie in table order at increasing
 * offsets (model.c assign_offsets), as adam_set_scale requires. */
static int set_lr_scales(train_state_t *s, err_t *err) {
    const model_t *m = s->m;
    for (int i = 0; i < m->n_tensors; i++) {
        const tensor_t *t = &m->tensors[i];
        const double scale = model_lr_scale(t);
        if (scale == 1.0) continue;
        const bool arch = t->group == TENSOR_ARCH;
        if (arch && s->cfg.arch == TRAIN_ARCH_FROZEN) continue;
        adam_t *opt = arch ? &s->arch_adam : &s->adam;
        const size_t offset = arch ? t->offset - m->n_weights : t->offset;
        if (adam_set_scale(opt, offset, (size_t)t->rows * t->cols, scale, err))
            return err_prefix(err, "model %s, tensor %s", m->ops->name, t->name);
    }
    return 0;
}

int train_begin(train_state_t *s, model_t *m, const data_t *data, const train_config_t *cfg,
                uint64_t batch_seed, err_t *err) {
    memset(s, 0, sizeof *s);
    if (check_shapes(m, data, err) || check_config(m, data, cfg, err)) return -1;
    s->m = m;
    s->data = data;
    s->cfg = *cfg;
    if (adam_init(&s->adam, m->n_weights, cfg->lr, err)) return -1;
    if (cfg->arch != TRAIN_ARCH_FROZEN &&
        adam_init(&s->arch_adam, m->n_params - m->n_weights, cfg->arch_lr, err)) {
        state_free(s);
        return -1;
    }
    if (set_lr_scales(s, err)) {
        state_free(s);
        return -1;
    }
    /* Every product fits in size_t: batch <= n_train (check_config) and
     * data->train.x already holds n_train x d reals; the scored examples are
     * two reals per label of a split. */
    const size_t B = (size_t)m->cfg.max_batch, T = (size_t)data->T, d = (size_t)data->d;
    const int n_binary = count_binary(data);
    const size_t n_eval = (size_t)(data->val.n > data->test.n ? data->val.n : data->test.n);
    s->order = mem_alloc(sizeof(int) * (size_t)data->train.n);
    s->xb = mem_alloc(sizeof(real) * (size_t)cfg->batch * d);
    s->yb = mem_alloc(sizeof(real) * (size_t)cfg->batch * T);
    s->pred = mem_alloc(sizeof(real) * B * T);
    s->dpred = mem_alloc(sizeof(real) * B * T);
    if (n_binary > 0) s->scored = mem_alloc(sizeof(metric_scored_t) * n_binary * n_eval);
    if (!s->order || !s->xb || !s->yb || !s->pred || !s->dpred || (n_binary > 0 && !s->scored)) {
        state_free(s);
        return err_set(err, ERR_FAIL, "out of memory for the training buffers");
    }
    for (int k = 0; k < data->T; k++) {
        if (data->kind[k] != TASK_BINARY) continue;
        double positives = 0;
        for (int i = 0; i < data->train.n; i++)
            positives += data->train.y[(size_t)i * T + k] > 0.5;
        s->base_rate[k] = positives / data->train.n;
    }
    for (int i = 0; i < data->train.n; i++) s->order[i] = i;
    rng_seed(&s->batch_rng, batch_seed, RNG_STREAM_BATCH);
    rng_shuffle(&s->batch_rng, s->order, (size_t)data->train.n);
    return 0;
}

void train_end(train_state_t *s) {
    state_free(s);
}

int train_memory(const model_sizes_t *ms, const model_config_t *mc, const train_config_t *tc,
                 int n_train, int n_eval, int n_binary, train_memory_t *out, err_t *err) {
    memset(out, 0, sizeof *out);
    const size_t B = (size_t)mc->max_batch, T = (size_t)mc->tasks, d = (size_t)mc->input_dim;
    const size_t batch = tc->batch > 0 ? (size_t)tc->batch : 0;
    size_tally_t adam = {0}, steps = {0}, gates = {0};
    size_tally_blocks(&adam, 2, ms->n_weights, sizeof(real)); /* adam_init: m, v */
    /* the architecture's Adam */
    if (tc->arch != TRAIN_ARCH_FROZEN)
        size_tally_blocks(&adam, 2, ms->n_params - ms->n_weights, sizeof(real));
    /* train_begin */
    size_tally_block(&steps, n_train > 0 ? (size_t)n_train : 0, sizeof(int)); /* order */
    size_tally_block(&steps, batch * d, sizeof(real));                        /* xb */
    size_tally_block(&steps, batch * T, sizeof(real));                        /* yb */
    size_tally_blocks(&steps, 2, B * T, sizeof(real));                        /* pred, dpred */
    /* scored: the binary tasks' examples of a split, for AUC */
    if (n_binary > 0 && n_eval > 0)
        size_tally_block(&steps, (size_t)n_binary * (size_t)n_eval, sizeof(metric_scored_t));
    /* train_gate_stats: pred, then per gate mean and std [experts] in double
     * and hist [experts][GATE_HIST_BINS] -- counted as one block of all
     * gates' statistics and the overhead of the other blocks. */
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

int train_gradient(train_state_t *s, const real *x, const real *y, int B, double *batch_loss) {
    model_t *m = s->m;
    const data_t *data = s->data;
    const int T = data->T;
    assert(B >= 1 && B <= m->cfg.max_batch);
    s->penalty = 0;
    model_forward(m, x, B, s->pred, MODEL_TRAIN);
    memset(batch_loss, 0, sizeof(double) * (T + 1));
    add_losses(data, s->pred, y, B, batch_loss);
    finish_losses(T, s->cfg.task_weight, B, batch_loss);
    if (!all_finite(batch_loss, T + 1)) return -1;

    model_zero_grad(m);
    for (int k = 0; k < T; k++)
        loss_task_grad(data->kind[k], s->pred, y, B, T, k, (real)s->cfg.task_weight[k], s->dpred);
    model_backward(m, x, B, s->dpred);
    if (m->ops->penalty) {
        s->penalty = m->ops->penalty(m);
        if (!isfinite(s->penalty)) return -1;
    }
    return 0;
}

int train_step(train_state_t *s, double *batch_loss) {
    model_t *m = s->m;
    next_batch(s);
    if (train_gradient(s, s->xb, s->yb, s->cfg.batch, batch_loss)) return -1;
    s->step++;
    const train_arch_t arch = s->cfg.arch;
    const bool arch_turn =
        arch == TRAIN_ARCH_JOINT || (arch == TRAIN_ARCH_ALTERNATE && s->step % 2 == 0);
    const bool weight_turn = arch != TRAIN_ARCH_ALTERNATE || s->step % 2 == 1;
    if (weight_turn) adam_step(&s->adam, m->params, m->grads);
    if (arch_turn) adam_step(&s->arch_adam, m->params + m->n_weights, m->grads + m->n_weights);
    if (m->ops->constrain) m->ops->constrain(m);
    return 0;
}

/* ---- evaluation ---- */

int train_eval_metrics(const train_eval_t *ev, metric_id_t *out) {
    const int T = ev->tasks;
    int n = 0;
    for (int s = METRIC_TRAIN; s <= METRIC_TEST; s++)
        for (int k = 0; k <= T; k++)
            out[n++] = (metric_id_t){s, MEASURE_LOSS, k};
    for (int s = METRIC_VAL; s <= METRIC_TEST; s++)
        for (int measure = MEASURE_AUC; measure <= MEASURE_NE; measure++)
            for (int k = 0; k < T; k++)
                if (ev->binary >> k & 1) out[n++] = (metric_id_t){s, measure, k};
    if (ev->has_penalty) out[n++] = (metric_id_t){METRIC_TRAIN, MEASURE_PENALTY, METRIC_WHOLE};
    if (ev->has_serving) out[n++] = (metric_id_t){METRIC_MODEL, MEASURE_SERVING, METRIC_WHOLE};
    return n;
}

double train_eval_value(const train_eval_t *ev, metric_id_t id) {
    const int T = ev->tasks;
    const bool split_ok = id.split >= METRIC_TRAIN && id.split <= METRIC_TEST;
    switch (id.measure) {
    case MEASURE_LOSS:
        if (!split_ok || id.task < 0 || id.task > T) return NAN;
        return (id.split == METRIC_TRAIN ? ev->train
                : id.split == METRIC_VAL ? ev->val
                                         : ev->test)[id.task];
    case MEASURE_AUC:
    case MEASURE_NE:
        if (!split_ok || id.task < 0 || id.task >= T || !(ev->binary >> id.task & 1)) return NAN;
        return (id.measure == MEASURE_AUC ? ev->auc : ev->ne)[id.split][id.task];
    case MEASURE_PENALTY:
        return id.split == METRIC_TRAIN && id.task == METRIC_WHOLE && ev->has_penalty ? ev->penalty
                                                                                      : NAN;
    case MEASURE_SERVING:
        return id.split == METRIC_MODEL && id.task == METRIC_WHOLE && ev->has_serving
                   ? ev->serving_params
                   : NAN;
    default:
        return NAN;
    }
}

/* Evaluates the model on one split into ev: its losses, and AUC and NE of
 * the binary tasks. */
static void evaluate_split(train_state_t *s, metric_split_t which, train_eval_t *ev) {
    const data_t *data = s->data;
    const dataset_t *split = which == METRIC_VAL ? &data->val : &data->test;
    double *loss = which == METRIC_VAL ? ev->val : ev->test;
    evaluate_into(s->m, data, split, s->cfg.task_weight, s->pred, s->scored, loss);
    for (int k = 0, j = 0; k < data->T; k++) {
        if (data->kind[k] != TASK_BINARY) continue;
        ev->auc[which][k] = metric_auc(s->scored + (size_t)j++ * split->n, split->n);
        ev->ne[which][k] = metric_ne(loss[k], s->base_rate[k]);
    }
}

/* An evaluation of T tasks with every AUC and NE not yet measured. */
static train_eval_t eval_start(const train_state_t *s, int step) {
    train_eval_t ev;
    memset(&ev, 0, sizeof ev);
    ev.step = step;
    ev.tasks = s->data->T;
    ev.has_penalty = s->m->ops->penalty != NULL;
    ev.has_serving = model_has_serving_params(s->m);
    if (ev.has_serving) ev.serving_params = (double)model_serving_params(s->m);
    for (int i = 0; i <= METRIC_TEST; i++)
        for (int k = 0; k < MTLAB_MAX_TASKS; k++)
            ev.auc[i][k] = ev.ne[i][k] = NAN;
    for (int k = 0; k < s->data->T; k++)
        if (s->data->kind[k] == TASK_BINARY) ev.binary |= UINT32_C(1) << k;
    return ev;
}

static int diverged(train_result_t *res, int step, const char *what, err_t *err) {
    res->failed_step = step;
    return err_set(err, ERR_FAIL, "diverged at step %d: %s is NaN or infinite", step, what);
}

int train_evaluate_at(train_state_t *s, int step, const double *train_mean, double penalty,
                      train_eval_t *ev) {
    const int T = s->data->T;
    *ev = eval_start(s, step);
    for (int k = 0; k <= T; k++) ev->train[k] = train_mean[k];
    if (ev->has_penalty) ev->penalty = penalty;
    evaluate_split(s, METRIC_VAL, ev);
    evaluate_split(s, METRIC_TEST, ev);
    return all_finite(ev->val, T + 1) && all_finite(ev->test, T + 1) ? 0 : -1;
}

int train_run(model_t *m, const data_t *data, const train_config_t *cfg, uint64_t batch_seed,
              train_eval_fn on_eval, void *ctx, train_result_t *res, err_t *err) {
    if (search_wanted(m)) /* MTNAS: the route search (search.h) */
        return search_run(m, data, cfg, batch_seed, on_eval, ctx, res, err);
    memset(res, 0, sizeof *res);
    train_state_t s;
    if (train_begin(&s, m, data, cfg, batch_seed, err)) return -1;
    const int T = data->T;
    int since_eval = 0, status = 0;
    double train_sum[MTLAB_MAX_TASKS + 1] = {0}, penalty_sum = 0;

    for (int step = 1; step <= cfg->steps; step++) {
        double batch_loss[MTLAB_MAX_TASKS + 1];
        if (train_step(&s, batch_loss)) {
            status =
                diverged(res, step, isfinite(s.penalty) ? "the training loss" : "the penalty", err);
            break;
        }
        for (int k = 0; k <= T; k++) train_sum[k] += batch_loss[k];
        penalty_sum += s.penalty;
        since_eval++;

        if (step % cfg->eval_every == 0 || step == cfg->steps) {
            train_eval_t ev = eval_start(&s, step);
            for (int k = 0; k <= T; k++) ev.train[k] = train_sum[k] / since_eval;
            if (ev.has_penalty) ev.penalty = penalty_sum / since_eval;
            evaluate_split(&s, METRIC_VAL, &ev);
            evaluate_split(&s, METRIC_TEST, &ev);
            if (!all_finite(ev.val, T + 1) || !all_finite(ev.test, T + 1)) {
                status = diverged(res, step, "the evaluation loss", err);
                break;
            }
            res->final = ev;
            if (on_eval) on_eval(ctx, &ev);
            memset(train_sum, 0, sizeof train_sum);
            penalty_sum = 0;
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
        mem_free(s->gate[g].mean);
        mem_free(s->gate[g].std);
        mem_free(s->gate[g].hist);
    }
    mem_free(s->gate);
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
    real *pred = mem_alloc(sizeof(real) * m->cfg.max_batch * m->cfg.tasks);
    out->gate = mem_calloc((size_t)n_gates, sizeof *out->gate);
    if (!pred || !out->gate) {
        mem_free(pred);
        mem_free(out->gate);
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
        s->mean = mem_calloc(s->experts, sizeof(double));
        s->std = mem_calloc(s->experts, sizeof(double));
        s->hist = mem_calloc((size_t)s->experts * GATE_HIST_BINS, sizeof(long));
        if (!s->mean || !s->std || !s->hist) {
            mem_free(pred);
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
    mem_free(pred);
    return 0;
}
