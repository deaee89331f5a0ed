/* model.c -- the generic half of every model: registry, tensor table, one
 * parameter buffer, initialisation, the workspace arena, the gate registry
 * and the pass wrappers that hold the shape contract.
 *
 * Workspace.  A bump arena of chunks.  model_new reserves one chunk of what
 * the family's sizes hook tallied for its buffers and state (an upper
 * estimate: each tallied block carries the allocator's overhead, more than
 * the alignment padding the arena adds), so a family whose hook is right
 * takes exactly one block of heap; a further chunk is taken only if the
 * hook undercounts (model_work_blocks() lets the tests see it).  Nothing is
 * freed before model_free, which releases the chunks. */
#include "models/model.h"
#include "core/mem.h"

#include <assert.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const model_ops_t model_single_ops, model_shared_bottom_ops, model_omoe_ops, model_mmoe_ops;
extern const model_ops_t model_ml_mmoe_ops, model_ple_ops, model_cgc_ops, model_adatt_sp_ops,
    model_adatt_ops, model_cross_stitch_ops, model_l2_constrained_ops,
    model_tensor_factorization_ops;
extern const model_ops_t model_snr_trans_ops, model_snr_aver_ops;
extern const model_ops_t model_mtnas_ops;

/* Stable order: `--help`, benchmarks and tests iterate over this list.  New
 * families go at the end: the order of the [model] keys in a trial's config
 * follows it (model_hp_all), and a stored config must keep its text. */
static const model_ops_t *const registry[] = {
    &model_single_ops,
    &model_shared_bottom_ops,
    &model_omoe_ops,
    &model_mmoe_ops,
    &model_ml_mmoe_ops,
    &model_ple_ops,
    &model_cgc_ops,
    &model_adatt_sp_ops,
    &model_adatt_ops,
    &model_cross_stitch_ops,
    &model_l2_constrained_ops,
    &model_tensor_factorization_ops,
    &model_snr_trans_ops,
    &model_snr_aver_ops,
    &model_mtnas_ops,
};

const model_ops_t *const *model_registry(int *n) {
    *n = (int)(sizeof registry / sizeof registry[0]);
    return registry;
}

const model_ops_t *model_find(const char *name) {
    int n;
    const model_ops_t *const *all = model_registry(&n);
    for (int i = 0; i < n; i++)
        if (strcmp(all[i]->name, name) == 0) return all[i];
    return NULL;
}

/* ---- workspace ---- */

struct model_chunk {
    model_chunk_t *next;
    size_t size, used; /* bytes of data[], of which handed out */
    _Alignas(MODEL_WORK_ALIGN) unsigned char data[];
};

static size_t align_up(size_t n) {
    return (n + MODEL_WORK_ALIGN - 1) / MODEL_WORK_ALIGN * MODEL_WORK_ALIGN;
}

static model_chunk_t *chunk_new(size_t size) {
    if (size > SIZE_BYTES_MAX - sizeof(model_chunk_t) - MODEL_WORK_ALIGN) return NULL;
    size = align_up(size ? size : 1);
    model_chunk_t *c = mem_aligned(MODEL_WORK_ALIGN, align_up(sizeof(model_chunk_t) + size));
    if (!c) return NULL;
    memset(c, 0, sizeof(model_chunk_t) + size);
    c->size = size;
    return c;
}

void *model_work(model_t *m, size_t bytes, err_t *err) {
    model_chunk_t *c = m->work;
    if (!c || c->size - c->used < bytes) {
        /* A new chunk: at least as large as the last, to keep their count low. */
        size_t size = c && c->size > bytes ? c->size : bytes;
        model_chunk_t *fresh = chunk_new(size);
        if (!fresh) {
            err_set(err, ERR_FAIL, "out of memory for %zu bytes of model workspace", bytes);
            return NULL;
        }
        fresh->next = c;
        m->work = c = fresh;
    }
    void *p = c->data + c->used;
    c->used += align_up(bytes);
    if (c->used > c->size) c->used = c->size;
    return p;
}

int model_work_blocks(const model_t *m) {
    int n = 0;
    for (const model_chunk_t *c = m->work; c; c = c->next)
        n++;
    return n;
}

real *model_act(model_t *m, int cols, err_t *err) {
    assert(cols >= 1);
    return model_work(m, sizeof(real) * (size_t)m->cfg.max_batch * (size_t)cols, err);
}

real *model_act_grad(model_t *m, int cols, err_t *err) {
    if (m->n_act_grads == m->cap_act_grads) {
        int cap = m->cap_act_grads ? 2 * m->cap_act_grads : 16;
        real **bufs = mem_realloc(m->act_grads, sizeof *bufs * cap);
        if (bufs) m->act_grads = bufs;
        int *cols_grown = bufs ? mem_realloc(m->act_grad_cols, sizeof *cols_grown * cap) : NULL;
        if (!bufs || !cols_grown) {
            err_set(err, ERR_FAIL, "out of memory for the activation-gradient table");
            return NULL;
        }
        m->act_grad_cols = cols_grown;
        m->cap_act_grads = cap;
    }
    real *buf = model_act(m, cols, err);
    if (!buf) return NULL;
    m->act_grads[m->n_act_grads] = buf;
    m->act_grad_cols[m->n_act_grads++] = cols;
    return buf;
}

/* ---- gates ---- */

int model_add_gate(model_t *m, const model_gate_t *g, err_t *err) {
    if (strlen(g->name) == 0 || strlen(g->name) >= MODEL_GATE_NAME ||
        strlen(g->owner) >= MODEL_GATE_OWNER)
        return err_set(err, ERR_USAGE, "%s: gate name '%s' or owner '%s' is empty or too long",
                       m->ops->name, g->name, g->owner);
    if (g->level < 1 || g->experts < 1 || g->ld < g->experts || !g->values)
        return err_set(err, ERR_USAGE, "%s: gate %s: level %d, %d experts, row stride %d",
                       m->ops->name, g->name, g->level, g->experts, g->ld);
    for (int i = 0; i < m->n_gates; i++)
        if (strcmp(m->gates[i].name, g->name) == 0)
            return err_set(err, ERR_USAGE, "%s: two gates named %s", m->ops->name, g->name);
    if (m->n_gates == m->cap_gates) {
        int cap = m->cap_gates ? 2 * m->cap_gates : 8;
        model_gate_t *grown = mem_realloc(m->gates, sizeof *grown * cap);
        if (!grown) return err_set(err, ERR_FAIL, "out of memory for the gate table");
        m->gates = grown;
        m->cap_gates = cap;
    }
    m->gates[m->n_gates++] = *g;
    return 0;
}

int model_gates(const model_t *m, const model_gate_t **out) {
    *out = m->gates;
    return m->n_gates;
}

/* ---- routes and serving size ---- */

int model_routes(const model_t *m, model_route_t *out) {
    return m->ops->routes ? m->ops->routes(m, out) : 0;
}

size_t model_serving_params(const model_t *m) {
    return m->ops->serving_params ? m->ops->serving_params(m) : m->n_weights;
}

/* ---- passes ---- */

void model_forward(model_t *m, const real *x, int B, real *pred, model_mode_t mode) {
    assert(B >= 1 && B <= m->cfg.max_batch && x && pred);
    m->last_batch = B;
    m->ops->forward(m, x, B, pred, mode);
}

void model_backward(model_t *m, const real *x, int B, const real *dpred) {
    assert(B >= 1 && B == m->last_batch && x && dpred);
    for (int i = 0; i < m->n_act_grads; i++)
        memset(m->act_grads[i], 0, sizeof(real) * (size_t)B * (size_t)m->act_grad_cols[i]);
    m->ops->backward(m, x, B, dpred);
}

/* The union of the families' hyper-parameter names, built on first use: each
 * family in registry order contributes the names it declares that are not
 * there yet, each inserted before the first of its LATER names already there
 * (else after its previous one), so every family's own order is kept. */
static const model_hp_t *hp_all[MODEL_MAX_HP * 8];
static int n_hp_all = -1;

static int hp_all_index(const char *name) {
    for (int i = 0; i < n_hp_all; i++)
        if (strcmp(hp_all[i]->name, name) == 0) return i;
    return -1;
}

const model_hp_t *const *model_hp_all(int *n) {
    if (n_hp_all < 0) {
        n_hp_all = 0;
        int n_families;
        const model_ops_t *const *all = model_registry(&n_families);
        for (int f = 0; f < n_families; f++) {
            const model_ops_t *ops = all[f];
            assert(ops->n_hp <= MODEL_MAX_HP);
            for (int j = 0; j < ops->n_hp; j++) {
                if (hp_all_index(ops->hp[j].name) >= 0) continue;
                assert(n_hp_all < (int)(sizeof hp_all / sizeof hp_all[0]));
                int at = n_hp_all, later = -1;
                for (int k = j + 1; k < ops->n_hp && later < 0; k++)
                    later = hp_all_index(ops->hp[k].name);
                if (later >= 0) {
                    at = later;
                } else {
                    for (int k = j - 1; k >= 0; k--) {
                        int prev = hp_all_index(ops->hp[k].name);
                        if (prev >= 0) {
                            at = prev + 1;
                            break;
                        }
                    }
                }
                memmove(&hp_all[at + 1], &hp_all[at], sizeof hp_all[0] * (size_t)(n_hp_all - at));
                hp_all[at] = &ops->hp[j];
                n_hp_all++;
            }
        }
    }
    *n = n_hp_all;
    return hp_all;
}

int model_hp_find(const model_ops_t *ops, const char *name) {
    for (int i = 0; ops && i < ops->n_hp; i++)
        if (strcmp(ops->hp[i].name, name) == 0) return i;
    return -1;
}

const char *model_hp_word(const model_hp_t *hp, double v, char *out, size_t n) {
    if (hp->type != HP_WORD || !(v >= 0 && v == floor(v))) return NULL;
    int at = 0;
    for (const char *w = hp->words; *w; at++) {
        size_t len = strcspn(w, " ");
        if (at == (int)v) {
            snprintf(out, n, "%.*s", (int)len, w);
            return out;
        }
        w += len;
        while (*w == ' ')
            w++;
    }
    return NULL;
}

int model_hp_word_index(const model_hp_t *hp, const char *word) {
    if (hp->type != HP_WORD) return -1;
    size_t want = strlen(word);
    int at = 0;
    for (const char *w = hp->words; *w; at++) {
        size_t len = strcspn(w, " ");
        if (len == want && strncmp(w, word, len) == 0) return at;
        w += len;
        while (*w == ' ')
            w++;
    }
    return -1;
}

double model_hp_value(const model_t *m, const char *name, double def) {
    const int i = model_hp_find(m->ops, name);
    return i < 0 ? def : m->cfg.hp[i];
}

void model_config_default(model_config_t *cfg, const model_ops_t *ops) {
    *cfg = (model_config_t){.input_dim = 100, .tasks = 2, .max_batch = 128};
    for (int i = 0; ops && i < ops->n_hp; i++)
        cfg->hp[i] = ops->hp[i].def;
}

int model_config_set(model_config_t *cfg, const model_ops_t *ops, const char *name, double value,
                     err_t *err) {
    const int i = model_hp_find(ops, name);
    if (i < 0)
        return err_set(err, ERR_USAGE, "model %s has no hyper-parameter '%s'",
                       ops ? ops->name : "(none)", name);
    const model_hp_t *hp = &ops->hp[i];
    if (!(value >= hp->min && value <= hp->max) ||
        (hp->type != HP_NUM && value != floor(value)))
        return err_set(err, ERR_USAGE, "%s: %s = %.17g is outside %s [%g, %g]", ops->name, name,
                       value, hp->type == HP_NUM ? "the numbers" : "the integers", hp->min,
                       hp->max);
    cfg->hp[i] = value;
    return 0;
}

/* The tensor table starts with room for TENSOR_TABLE_MIN entries and doubles. */
#define TENSOR_TABLE_MIN 16

static size_t tensor_table_capacity(int n_tensors) {
    size_t cap = TENSOR_TABLE_MIN;
    while (cap < (size_t)n_tensors)
        cap *= 2;
    return cap;
}

int model_declare(model_t *m, const char *name, int rows, int cols, init_kind_t init,
                  tensor_group_t group) {
    if (m->n_tensors == m->cap_tensors) {
        int cap = m->cap_tensors ? 2 * m->cap_tensors : TENSOR_TABLE_MIN;
        tensor_t *grown = mem_realloc(m->tensors, sizeof(tensor_t) * cap);
        if (!grown) return -1;
        m->tensors = grown;
        m->cap_tensors = cap;
    }
    tensor_t *t = &m->tensors[m->n_tensors];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->rows = rows;
    t->cols = cols;
    t->init = init;
    t->fan_in = rows;
    t->group = group;
    t->lr_scale = 1.0;
    return m->n_tensors++;
}

void model_set_lr_scale(model_t *m, int tensor, double scale) {
    assert(tensor >= 0 && tensor < m->n_tensors && scale > 0);
    m->tensors[tensor].lr_scale = scale;
}

int model_declare_bias(model_t *m, const char *name, int cols, int fan_in) {
    int i = model_declare(m, name, 1, cols, INIT_BIAS, TENSOR_WEIGHT);
    if (i >= 0) m->tensors[i].fan_in = fan_in;
    return i;
}

int model_tensor_index(const model_t *m, const char *name) {
    for (int i = 0; i < m->n_tensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0) return i;
    return -1;
}

uint64_t model_step_flops(const model_t *m, int B) {
    if (m->ops->step_flops) return m->ops->step_flops(m, B);
    uint64_t flops = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const tensor_t *t = &m->tensors[i];
        if (t->group != TENSOR_WEIGHT || t->rows < 2) continue; /* biases are 1 x Out */
        uint64_t product = 2 * (uint64_t)B * t->rows * t->cols;
        flops += (t->rows == m->cfg.input_dim ? 2 : 3) * product;
    }
    return flops;
}

void model_zero_grad(model_t *m) {
    memset(m->grads, 0, sizeof(real) * m->n_params);
}

/* Lays tensors out weights-first (declaration order within each group). */
static void assign_offsets(model_t *m) {
    size_t off = 0;
    for (int group = TENSOR_WEIGHT; group <= TENSOR_ARCH; group++) {
        for (int i = 0; i < m->n_tensors; i++) {
            tensor_t *t = &m->tensors[i];
            if ((int)t->group != group) continue;
            t->offset = off;
            off += (size_t)t->rows * t->cols;
        }
        if (group == TENSOR_WEIGHT) m->n_weights = off;
    }
    m->n_params = off;
}

/* Draws every tensor in declaration order from one stream, per the model's
 * scheme (model_init_t).  glorot (Glorot/Xavier uniform weights, zero
 * biases: the Keras defaults of the paper's TensorFlow models) draws only
 * for weights, exactly as before the other schemes existed, so its models
 * are bit-identical to those of earlier trials.  torch draws for weights
 * and biases alike (nn.Linear.reset_parameters: kaiming_uniform(a = √5),
 * whose bound is gain·√(3/fan_in) with gain = √(2/(1+a²)) = √(1/3), i.e.
 * 1/√fan_in; the bias U(±1/√fan_in)); he draws weights U(±√(6/fan_in)). */
static void init_params(model_t *m, uint64_t init_seed) {
    const model_init_t scheme = (model_init_t)model_hp_value(m, "init", MODEL_INIT_GLOROT);
    rng_t rng;
    rng_seed(&rng, init_seed, RNG_STREAM_INIT);
    for (int i = 0; i < m->n_tensors; i++) {
        const tensor_t *t = &m->tensors[i];
        real *p = m->params + t->offset;
        size_t n = (size_t)t->rows * t->cols;
        double a = 0; /* U(-a, a); 0: zeros, no draw */
        if (t->init == INIT_WEIGHT) {
            switch (scheme) {
            case MODEL_INIT_GLOROT:
                a = sqrt(6.0 / ((double)t->rows + t->cols)); /* exact: < 2^53 */
                break;
            case MODEL_INIT_TORCH:
                a = 1.0 / sqrt((double)t->rows);
                break;
            case MODEL_INIT_HE:
                a = sqrt(6.0 / (double)t->rows);
                break;
            }
        } else if (t->init == INIT_BIAS && scheme == MODEL_INIT_TORCH) {
            assert(t->fan_in >= 1);
            a = 1.0 / sqrt((double)t->fan_in);
        }
        if (a > 0) {
            for (size_t j = 0; j < n; j++)
                p[j] = (real)(a * (2.0 * rng_uniform(&rng) - 1.0));
        } else {
            memset(p, 0, sizeof(real) * n);
        }
    }
    /* INIT_CUSTOM tensors were left at zero above; the family sets them
     * from the same stream, after every generic draw. */
    if (m->ops->init_custom) m->ops->init_custom(m, &rng);
}

/* The shape fields, and every hyper-parameter at or above its declared
 * minimum (an HP_INT a whole number that fits an int).  The declared maximum
 * bounds what users may type; model_new takes any representable size, and the
 * family's sizes hook refuses what overflows. */
static int check_config(const model_ops_t *ops, const model_config_t *c, err_t *err) {
    struct {
        const char *key;
        int value;
    } sizes[] = {
        {"input_dim", c->input_dim},
        {"tasks", c->tasks},
        {"max_batch", c->max_batch},
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if (sizes[i].value <= 0)
            return err_set(err, ERR_USAGE, "model: %s must be a positive integer (got %d)",
                           sizes[i].key, sizes[i].value);
    if (c->tasks > MODEL_MAX_TASKS)
        return err_set(err, ERR_USAGE, "model: at most %d tasks are supported (got %d)",
                       MODEL_MAX_TASKS, c->tasks);
    for (int i = 0; i < ops->n_hp; i++) {
        const model_hp_t *hp = &ops->hp[i];
        const double v = c->hp[i];
        if (hp->type == HP_INT && !(v >= hp->min && v <= INT_MAX && v == floor(v)))
            return err_set(err, ERR_USAGE, "model: %s must be an integer of at least %g (got %g)",
                           hp->name, hp->min, v);
        if (hp->type == HP_NUM && !(isfinite(v) && v >= hp->min))
            return err_set(err, ERR_USAGE, "model: %s must be a number of at least %g (got %g)",
                           hp->name, hp->min, v);
        char word[32];
        if (hp->type == HP_WORD && !model_hp_word(hp, v, word, sizeof word))
            return err_set(err, ERR_USAGE, "model: %s must be one of %s (got index %g)", hp->name,
                           hp->words, v);
    }
    return 0;
}

static int unknown_model(const char *name, err_t *err) {
    char known[256] = "";
    int n;
    const model_ops_t *const *all = model_registry(&n);
    for (int i = 0; i < n; i++) {
        strncat(known, i ? ", " : "", sizeof known - strlen(known) - 1);
        strncat(known, all[i]->name, sizeof known - strlen(known) - 1);
    }
    return err_set(err, ERR_USAGE, "unknown model '%s' (known: %s)", name, known);
}

int model_sizes(const char *name, const model_config_t *cfg, model_sizes_t *out, err_t *err) {
    memset(out, 0, sizeof *out);
    const model_ops_t *ops = model_find(name);
    if (!ops) return unknown_model(name, err);
    return model_sizes_ops(ops, cfg, out, err);
}

int model_sizes_ops(const model_ops_t *ops, const model_config_t *cfg, model_sizes_t *out,
                    err_t *err) {
    memset(out, 0, sizeof *out);
    const char *name = ops->name;
    if (check_config(ops, cfg, err)) return -1;
    if (ops->sizes(cfg, out, err)) return err_prefix(err, "%s", name);
    /* model_new's blocks: the model, its tensor table, the family's state,
     * params and grads; then build()'s buffers. */
    size_tally_t model = {0};
    size_tally_block(&model, 1, sizeof(model_t));
    size_tally_block(&model, tensor_table_capacity(out->n_tensors), sizeof(tensor_t));
    size_tally_blocks(&model, 2, out->n_params, sizeof(real));
    /* The workspace: the family's state with its buffers (one chunk), and
     * the tables of activation gradients and gates (at most doubled). */
    size_tally_block(&out->act, 1, out->state_bytes);
    size_tally_blocks(&out->act, 2, 2 * (size_t)out->n_gates + 8, sizeof(model_gate_t));
    size_tally_blocks(&out->act, 2, 2 * out->act.blocks + 16, sizeof(real *));
    if (model.overflow || out->act.overflow)
        return err_set(err, ERR_USAGE,
                       "%s: the memory for %zu parameters and their buffers overflows", name,
                       out->n_params);
    out->model_bytes = model.bytes;
    out->act_bytes = out->act.bytes;
    return 0;
}

int model_new(model_t **out, const char *name, const model_config_t *cfg, uint64_t init_seed,
              err_t *err) {
    *out = NULL;
    const model_ops_t *ops = model_find(name);
    if (!ops) return unknown_model(name, err);
    return model_new_ops(out, ops, cfg, init_seed, err);
}

int model_new_ops(model_t **out, const model_ops_t *ops, const model_config_t *cfg,
                  uint64_t init_seed, err_t *err) {
    *out = NULL;
    const char *name = ops->name;
    model_sizes_t sizes; /* validates the config and every size */
    if (model_sizes_ops(ops, cfg, &sizes, err)) return -1;
    model_t *m = mem_calloc(1, sizeof *m);
    if (!m) return err_set(err, ERR_FAIL, "out of memory for model '%s'", name);
    m->ops = ops;
    m->cfg = *cfg;
    if (!(m->work = chunk_new(sizes.act_bytes))) {
        model_free(m);
        return err_set(err, ERR_FAIL, "out of memory for %zu bytes of workspace of '%s'",
                       sizes.act_bytes, name);
    }
    if (ops->build(m, err)) {
        model_free(m);
        return -1;
    }
    assign_offsets(m);
    /* The family's sizes hook describes its build (memory estimates rely on it). */
    assert(m->n_params == sizes.n_params && m->n_weights == sizes.n_weights &&
           m->n_tensors == sizes.n_tensors && m->n_gates == sizes.n_gates);
    assert(model_routes(m, NULL) == sizes.n_routes);
    m->params = mem_calloc(m->n_params ? m->n_params : 1, sizeof(real));
    m->grads = mem_calloc(m->n_params ? m->n_params : 1, sizeof(real));
    if (!m->params || !m->grads) {
        const size_t n_params = m->n_params;
        model_free(m);
        return err_set(err, ERR_FAIL, "out of memory for %zu parameters of '%s'", n_params, name);
    }
    init_params(m, init_seed);
    rng_seed(&m->rng, init_seed, RNG_STREAM_MODEL);
    *out = m;
    return 0;
}

void model_free(model_t *m) {
    if (!m) return;
    for (model_chunk_t *c = m->work, *next; c; c = next) {
        next = c->next;
        mem_free(c);
    }
    mem_free(m->act_grads);
    mem_free(m->act_grad_cols);
    mem_free(m->gates);
    mem_free(m->tensors);
    mem_free(m->params);
    mem_free(m->grads);
    mem_free(m);
}
