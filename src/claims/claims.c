/* claims.c -- claims as queries, decided by a bootstrap over repeats
 * (contract: claims.h).
 *
 * The SQL does the selecting: which runs, which groups, which conditions.
 * This file does the statistics, which SQLite cannot do reproducibly (it has
 * no seedable random source): per condition it reduces every repeat to the
 * sufficient statistics of each group (count, sum, sum of squares, about a
 * per-group shift so that the variance does not cancel), so a resample is B
 * sums of R per-repeat records whatever the number of rows. */
#include "claims/claims.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "core/embedded.h"
#include "core/mem.h"
#include "core/numtext.h"
#include "core/rng.h"
#include "models/model.h"

#define MAX_GROUPS 4

typedef enum { STAT_MEAN_DIFF, STAT_SD_DIFF, STAT_ABS_GAP_DIFF } stat_kind_t;

static const struct {
    const char *name;
    int n_groups;
    const char *groups[MAX_GROUPS];
} stats[] = {
    [STAT_MEAN_DIFF] = {"mean_diff", 2, {"a", "b"}},
    [STAT_SD_DIFF] = {"sd_diff", 2, {"a", "b"}},
    [STAT_ABS_GAP_DIFF] = {"abs_gap_diff", 4, {"a1", "a2", "b1", "b2"}},
};
static const int n_stats = (int)(sizeof stats / sizeof stats[0]);

const char *claim_verdict_name(claim_verdict_t v) {
    switch (v) {
    case CLAIM_HOLDS:
        return "holds";
    case CLAIM_FAILS:
        return "fails";
    case CLAIM_UNDECIDED:
        return "undecided";
    case CLAIM_NO_DATA:
        return "no data";
    }
    return "?";
}

/* ---- the files --------------------------------------------------------- */

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int claims_files(const char *paper, const char **paths, int max) {
    char prefix[256];
    int len = snprintf(prefix, sizeof prefix, "sql/claims/%s/", paper);
    if (len < 0 || (size_t)len >= sizeof prefix || strchr(paper, '/')) return 0;
    int n = 0;
    for (const embedded_file_t *f = embedded_sql_files; f->path && n < max; f++)
        if (strncmp(f->path, prefix, (size_t)len) == 0) paths[n++] = f->path;
    qsort(paths, (size_t)n, sizeof *paths, cmp_str);
    return n;
}

/* The text after "-- KEY:" on the first such line of sql, trimmed, as a new
 * string; NULL when absent (or out of memory: *oom). */
static char *header_field(const char *sql, const char *key, bool *oom) {
    size_t klen = strlen(key);
    for (const char *line = sql; line && *line;
         line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        if (strncmp(line, "-- ", 3) != 0 || strncmp(line + 3, key, klen) != 0 ||
            line[3 + klen] != ':')
            continue;
        const char *v = line + 3 + klen + 1;
        while (*v == ' ')
            v++;
        const char *end = strchr(v, '\n');
        size_t n = end ? (size_t)(end - v) : strlen(v);
        while (n && (v[n - 1] == ' ' || v[n - 1] == '\r'))
            n--;
        char *out = mem_alloc(n + 1);
        if (!out) {
            *oom = true;
            return NULL;
        }
        memcpy(out, v, n);
        out[n] = '\0';
        return out;
    }
    return NULL;
}

/* ---- observations ------------------------------------------------------ */

typedef struct {
    char *condition;
    long long repeat;
    int group;
    double value;
} obs_t;

typedef struct {
    obs_t *v;
    int n, cap;
} obs_list_t;

static void obs_free(obs_list_t *l) {
    for (int i = 0; i < l->n; i++)
        mem_free(l->v[i].condition);
    mem_free(l->v);
}

static int cmp_obs(const void *pa, const void *pb) {
    const obs_t *a = pa, *b = pb;
    int c = strcmp(a->condition, b->condition);
    if (c) return c;
    return (a->repeat > b->repeat) - (a->repeat < b->repeat);
}

/* Sufficient statistics of one group's values, shifted. */
typedef struct {
    double n, sum, sumsq;
} acc_t;

static void acc_add(acc_t *dst, const acc_t *src) {
    dst->n += src->n;
    dst->sum += src->sum;
    dst->sumsq += src->sumsq;
}

static double acc_mean(const acc_t *a, double shift) {
    return a->n > 0 ? shift + a->sum / a->n : NAN;
}

static double acc_sd(const acc_t *a) {
    if (a->n < 2) return NAN;
    double var = (a->sumsq - a->sum * a->sum / a->n) / (a->n - 1);
    return sqrt(var > 0 ? var : 0);
}

/* The statistic from the groups' totals (NAN when undefined). */
static double statistic(stat_kind_t kind, const acc_t *g, const double *shift) {
    switch (kind) {
    case STAT_MEAN_DIFF:
        return acc_mean(&g[0], shift[0]) - acc_mean(&g[1], shift[1]);
    case STAT_SD_DIFF:
        return acc_sd(&g[0]) - acc_sd(&g[1]);
    case STAT_ABS_GAP_DIFF:
        return fabs(acc_mean(&g[0], shift[0]) - acc_mean(&g[1], shift[1])) -
               fabs(acc_mean(&g[2], shift[2]) - acc_mean(&g[3], shift[3]));
    }
    return NAN;
}

static int cmp_double(const void *pa, const void *pb) {
    double a = *(const double *)pa, b = *(const double *)pb;
    return (a > b) - (a < b);
}

/* Quantile q of sorted x[0..m) (linear between order statistics). */
static double quantile(const double *x, int m, double q) {
    double h = (m - 1) * q;
    int i = (int)floor(h);
    if (i >= m - 1) return x[m - 1];
    return x[i] + (h - i) * (x[i + 1] - x[i]);
}

/* Decides one condition: obs[0..n) (one condition, sorted by repeat). */
static int decide(stat_kind_t kind, const obs_t *obs, int n, const claims_options_t *opt,
                  claim_result_t *res, err_t *err) {
    const int n_groups = stats[kind].n_groups;
    int n_rep = 0;
    for (int i = 0; i < n; i++)
        if (i == 0 || obs[i].repeat != obs[i - 1].repeat) n_rep++;
    double shift[MAX_GROUPS];
    bool shift_set[MAX_GROUPS] = {false};
    for (int i = 0; i < n; i++)
        if (!shift_set[obs[i].group]) {
            shift[obs[i].group] = obs[i].value;
            shift_set[obs[i].group] = true;
        }
    for (int g = 0; g < n_groups; g++)
        if (!shift_set[g]) shift[g] = 0;

    acc_t *per_rep = mem_calloc((size_t)n_rep * MAX_GROUPS, sizeof *per_rep);
    double *boot = mem_alloc((size_t)opt->resamples * sizeof *boot);
    if (!per_rep || !boot) {
        mem_free(per_rep);
        mem_free(boot);
        return err_set(err, ERR_FAIL, "out of memory");
    }
    acc_t total[MAX_GROUPS] = {{0}};
    for (int i = 0, r = -1; i < n; i++) {
        if (i == 0 || obs[i].repeat != obs[i - 1].repeat) r++;
        const int g = obs[i].group;
        const double d = obs[i].value - shift[g];
        acc_t one = {1, d, d * d};
        acc_add(&per_rep[(size_t)r * MAX_GROUPS + (size_t)g], &one);
        acc_add(&total[g], &one);
    }
    res->n_repeats = n_rep;
    res->statistic = statistic(kind, total, shift);

    rng_t rng;
    rng_seed(&rng, opt->seed, RNG_STREAM_BOOTSTRAP);
    int m = 0, positive = 0;
    for (int b = 0; b < opt->resamples; b++) {
        acc_t sample[MAX_GROUPS] = {{0}};
        for (int k = 0; k < n_rep; k++) {
            const uint32_t r = rng_below(&rng, (uint32_t)n_rep);
            for (int g = 0; g < n_groups; g++)
                acc_add(&sample[g], &per_rep[(size_t)r * MAX_GROUPS + (size_t)g]);
        }
        const double st = statistic(kind, sample, shift);
        if (isnan(st)) continue;
        boot[m++] = st;
        if (st > 0) positive++;
    }
    qsort(boot, (size_t)m, sizeof *boot, cmp_double);
    const double tail = (1 - CLAIMS_CI_LEVEL) / 2;
    res->ci_lo = m ? quantile(boot, m, tail) : NAN;
    res->ci_hi = m ? quantile(boot, m, 1 - tail) : NAN;
    res->support = m ? (double)positive / m : NAN;
    if (m == 0 || n_rep < CLAIMS_MIN_REPEATS)
        res->verdict = CLAIM_UNDECIDED;
    else if (res->support >= CLAIMS_HOLDS_SUPPORT)
        res->verdict = CLAIM_HOLDS;
    else if (res->support <= 1 - CLAIMS_HOLDS_SUPPORT)
        res->verdict = CLAIM_FAILS;
    else
        res->verdict = CLAIM_UNDECIDED;
    mem_free(per_rep);
    mem_free(boot);
    return 0;
}

/* ---- running ----------------------------------------------------------- */

static int push_result(claims_t *c, const claim_result_t *r, err_t *err) {
    claim_result_t *rows = mem_realloc(c->rows, (size_t)(c->n + 1) * sizeof *rows);
    if (!rows) return err_set(err, ERR_FAIL, "out of memory");
    c->rows = rows;
    c->rows[c->n++] = *r;
    return 0;
}

static void result_free(claim_result_t *r) {
    mem_free(r->claim);
    mem_free(r->text);
    mem_free(r->condition);
}

static const char *opt_metric(const claims_options_t *opt) {
    return opt->metric ? opt->metric : CLAIMS_DEFAULT_METRIC;
}

/* Binds :experiment and :metric, the only parameters a claims statement may
 * have (`what` names the statement in the error). */
static int bind_params(sqlite3_stmt *st, const char *what, const claims_options_t *opt,
                       err_t *err) {
    for (int i = 1; i <= sqlite3_bind_parameter_count(st); i++) {
        const char *p = sqlite3_bind_parameter_name(st, i);
        const char *v = p && strcmp(p, ":experiment") == 0 ? opt->experiment
                        : p && strcmp(p, ":metric") == 0   ? opt_metric(opt)
                                                           : NULL;
        if (!v)
            return err_set(err, ERR_FAIL, "%s: unknown parameter %s", what, p ? p : "(unnamed)");
        if (sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT) != SQLITE_OK)
            return err_set(err, ERR_FAIL, "%s: cannot bind %s", what, p);
    }
    return 0;
}

/* Reads the claim's rows into *l. */
static int read_rows(store_t *s, const char *name, const char *sql, stat_kind_t kind,
                     const claims_options_t *opt, obs_list_t *l, err_t *err) {
    sqlite3 *db = store_db(s);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK || !st) {
        err_set(err, ERR_FAIL, "claim %s: %s", name, sqlite3_errmsg(db));
        sqlite3_finalize(st);
        return -1;
    }
    int rc = -1;
    if (!sqlite3_stmt_readonly(st)) {
        err_set(err, ERR_FAIL, "claim %s: not a query", name);
        goto done;
    }
    char what[300];
    snprintf(what, sizeof what, "claim %s", name);
    if (bind_params(st, what, opt, err)) goto done;
    static const char *const columns[] = {"condition", "repeat", "grp", "value"};
    if (sqlite3_column_count(st) != 4) {
        err_set(err, ERR_FAIL, "claim %s: returns %d columns, not (condition, repeat, grp, value)",
                name, sqlite3_column_count(st));
        goto done;
    }
    for (int c = 0; c < 4; c++)
        if (strcmp(sqlite3_column_name(st, c), columns[c]) != 0) {
            err_set(err, ERR_FAIL, "claim %s: column %d is %s, not %s", name, c + 1,
                    sqlite3_column_name(st, c), columns[c]);
            goto done;
        }
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_type(st, 3) == SQLITE_NULL) continue; /* no value: not observed */
        const char *grp = (const char *)sqlite3_column_text(st, 2);
        int g = -1;
        for (int k = 0; grp && k < stats[kind].n_groups; k++)
            if (strcmp(grp, stats[kind].groups[k]) == 0) g = k;
        if (g < 0) {
            err_set(err, ERR_FAIL, "claim %s: group '%s' is not one of %s's", name,
                    grp ? grp : "NULL", stats[kind].name);
            goto done;
        }
        if (sqlite3_column_type(st, 1) != SQLITE_INTEGER) {
            err_set(err, ERR_FAIL, "claim %s: repeat is not an integer", name);
            goto done;
        }
        if (l->n == l->cap) {
            int cap = l->cap ? 2 * l->cap : 256;
            obs_t *v = mem_realloc(l->v, (size_t)cap * sizeof *v);
            if (!v) {
                err_set(err, ERR_FAIL, "out of memory");
                goto done;
            }
            l->v = v;
            l->cap = cap;
        }
        const char *cond = (const char *)sqlite3_column_text(st, 0);
        obs_t *o = &l->v[l->n];
        if (!(o->condition = mem_strdup(cond ? cond : ""))) {
            err_set(err, ERR_FAIL, "out of memory");
            goto done;
        }
        o->repeat = sqlite3_column_int64(st, 1);
        o->group = g;
        o->value = sqlite3_column_double(st, 3);
        l->n++;
    }
    if (step != SQLITE_DONE) {
        err_set(err, ERR_FAIL, "claim %s: %s", name, sqlite3_errmsg(db));
        goto done;
    }
    rc = 0;
done:
    sqlite3_finalize(st);
    return rc;
}

int claims_run_sql(store_t *s, const char *name, const char *sql, const claims_options_t *opt,
                   claims_t *into, err_t *err) {
    bool oom = false;
    char *kind_name = header_field(sql, "statistic", &oom);
    char *text = header_field(sql, "claim", &oom);
    obs_list_t l = {0};
    claim_result_t res = {0};
    int rc = -1;
    if (oom) {
        err_set(err, ERR_FAIL, "out of memory");
        goto done;
    }
    if (!kind_name || !text) {
        err_set(err, ERR_FAIL, "claim %s: its header has no '-- %s:' line", name,
                kind_name ? "claim" : "statistic");
        goto done;
    }
    int kind = -1;
    for (int k = 0; k < n_stats; k++)
        if (strcmp(kind_name, stats[k].name) == 0) kind = k;
    if (kind < 0) {
        err_set(err, ERR_FAIL,
                "claim %s: unknown statistic '%s' (mean_diff, sd_diff, abs_gap_diff)", name,
                kind_name);
        goto done;
    }
    if (read_rows(s, name, sql, (stat_kind_t)kind, opt, &l, err)) goto done;
    if (l.n > 1) qsort(l.v, (size_t)l.n, sizeof *l.v, cmp_obs);
    if (l.n == 0) {
        res = (claim_result_t){
            .statistic = NAN, .ci_lo = NAN, .ci_hi = NAN, .support = NAN, .verdict = CLAIM_NO_DATA};
        if (!(res.claim = mem_strdup(name)) || !(res.text = mem_strdup(text))) {
            err_set(err, ERR_FAIL, "out of memory");
            goto done;
        }
        if (push_result(into, &res, err)) goto done;
        res = (claim_result_t){0};
    }
    for (int i = 0, j; i < l.n; i = j) {
        for (j = i + 1; j < l.n && strcmp(l.v[j].condition, l.v[i].condition) == 0; j++)
            ;
        if (!(res.claim = mem_strdup(name)) || !(res.text = mem_strdup(text)) ||
            !(res.condition = mem_strdup(l.v[i].condition))) {
            err_set(err, ERR_FAIL, "out of memory");
            goto done;
        }
        if (decide((stat_kind_t)kind, l.v + i, j - i, opt, &res, err)) goto done;
        if (push_result(into, &res, err)) goto done;
        res = (claim_result_t){0};
    }
    rc = 0;
done:
    result_free(&res);
    obs_free(&l);
    mem_free(kind_name);
    mem_free(text);
    return rc;
}

/* ERR_FAIL unless the store holds the experiment with a finished trial that
 * has the metric. */
static int check_experiment(store_t *s, const claims_options_t *opt, err_t *err) {
    sqlite3 *db = store_db(s);
    sqlite3_stmt *st = NULL;
    const char *sql = "SELECT (SELECT count(*) FROM experiment WHERE name = ?1),"
                      "       (SELECT count(*) FROM v_final WHERE experiment = ?1 AND name = ?2)";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        err_set(err, ERR_FAIL, "%s: %s", store_path(s), sqlite3_errmsg(db));
        sqlite3_finalize(st);
        return -1;
    }
    sqlite3_bind_text(st, 1, opt->experiment, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, opt_metric(opt), -1, SQLITE_TRANSIENT);
    int rc = 0;
    if (sqlite3_step(st) != SQLITE_ROW)
        rc = err_set(err, ERR_FAIL, "%s: %s", store_path(s), sqlite3_errmsg(db));
    else if (sqlite3_column_int64(st, 0) == 0)
        rc = err_set(err, ERR_FAIL, "no experiment '%s' in %s (mtlab ls lists them)",
                     opt->experiment, store_path(s));
    else if (sqlite3_column_int64(st, 1) == 0)
        rc = err_set(err, ERR_FAIL, "experiment '%s' has no finished trial with metric %s",
                     opt->experiment, opt_metric(opt));
    sqlite3_finalize(st);
    return rc;
}

/* Runs every statement of `script` (a few DDL statements with :experiment
 * and :metric) on db. */
static int exec_script(sqlite3 *db, const char *what, const char *script,
                       const claims_options_t *opt, err_t *err) {
    const char *tail = script;
    while (tail && *tail) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, tail, -1, &st, &tail) != SQLITE_OK)
            return err_set(err, ERR_FAIL, "%s: %s", what, sqlite3_errmsg(db));
        if (!st) break; /* only comments and space were left */
        int rc = bind_params(st, what, opt, err);
        if (rc == 0 && sqlite3_step(st) != SQLITE_DONE)
            rc = err_set(err, ERR_FAIL, "%s: %s", what, sqlite3_errmsg(db));
        sqlite3_finalize(st);
        if (rc) return -1;
    }
    return 0;
}

/* temp.claim_default(model, key, value): for every family, the value of each
 * hyper-parameter its configs leave out at the default (model_hp_t
 * .omit_default), so that conditions see "model.init=glorot" on trials whose
 * config does not say it. */
static int fill_defaults(sqlite3 *db, err_t *err) {
    if (sqlite3_exec(db,
                     "DROP TABLE IF EXISTS temp.claim_default;"
                     "CREATE TEMP TABLE claim_default (model TEXT, key TEXT, value TEXT)",
                     NULL, NULL, NULL) != SQLITE_OK)
        return err_set(err, ERR_FAIL, "claims: %s", sqlite3_errmsg(db));
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "INSERT INTO temp.claim_default VALUES (?1, 'model.' || ?2, ?3)", -1,
                           &st, NULL) != SQLITE_OK)
        return err_set(err, ERR_FAIL, "claims: %s", sqlite3_errmsg(db));
    int n_families, rc = 0;
    const model_ops_t *const *all = model_registry(&n_families);
    for (int f = 0; f < n_families && rc == 0; f++)
        for (int i = 0; i < all[f]->n_hp && rc == 0; i++) {
            const model_hp_t *hp = &all[f]->hp[i];
            if (!hp->omit_default) continue;
            char word[64];
            char value[64];
            if (hp->type == HP_WORD)
                snprintf(value, sizeof value, "%s",
                         model_hp_word(hp, hp->def, word, sizeof word) ? word : "?");
            else
                num_to_text(hp->def, value, sizeof value);
            sqlite3_bind_text(st, 1, all[f]->name, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, hp->name, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 3, value, -1, SQLITE_TRANSIENT);
            if (sqlite3_step(st) != SQLITE_DONE)
                rc = err_set(err, ERR_FAIL, "claims: %s", sqlite3_errmsg(db));
            sqlite3_reset(st);
        }
    sqlite3_finalize(st);
    return rc;
}

/* The TEMP tables every claim reads (sql/claims/prepare.sql).  The store is
 * open read-only (PRAGMA query_only, which also guards TEMP tables): the
 * guard is lifted for these statements only, which write nothing but TEMP
 * tables, kept in memory. */
static int prepare_conditions(store_t *s, const claims_options_t *opt, err_t *err) {
    sqlite3 *db = store_db(s);
    sqlite3_stmt *st = NULL;
    int query_only = 0;
    if (sqlite3_prepare_v2(db, "PRAGMA query_only", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        query_only = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (sqlite3_exec(db, "PRAGMA query_only=0; PRAGMA temp_store=MEMORY", NULL, NULL, NULL) !=
        SQLITE_OK)
        return err_set(err, ERR_FAIL, "%s: %s", store_path(s), sqlite3_errmsg(db));
    int rc = fill_defaults(db, err);
    if (rc == 0)
        rc = exec_script(db, "sql/claims/prepare.sql", embedded_sql("sql/claims/prepare.sql"), opt,
                         err);
    if (query_only && sqlite3_exec(db, "PRAGMA query_only=1", NULL, NULL, NULL) != SQLITE_OK &&
        rc == 0)
        rc = err_set(err, ERR_FAIL, "%s: %s", store_path(s), sqlite3_errmsg(db));
    return rc;
}

int claims_run(store_t *s, const char *paper, const claims_options_t *opt, claims_t **out,
               err_t *err) {
    *out = NULL;
    if (opt->resamples < 1) return err_set(err, ERR_USAGE, "resamples must be at least 1");
    const char *paths[256];
    int n = claims_files(paper, paths, 256);
    if (n == 0) return err_set(err, ERR_USAGE, "no claims for paper '%s' (sql/claims/*/)", paper);
    if (check_experiment(s, opt, err) || prepare_conditions(s, opt, err)) return -1;
    claims_t *c = mem_calloc(1, sizeof *c);
    if (!c) return err_set(err, ERR_FAIL, "out of memory");
    /* Every claim continues the CTEs of sql/claims/conditions.sql. */
    const char *conditions = embedded_sql("sql/claims/conditions.sql");
    for (int i = 0; i < n; i++) {
        const char *base = strrchr(paths[i], '/') + 1, *claim = embedded_sql(paths[i]);
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(strlen(base) - 4), base); /* without ".sql" */
        size_t n_cond = strlen(conditions), n_claim = strlen(claim);
        char *sql = mem_alloc(n_cond + n_claim + 1);
        if (!sql) {
            claims_free(c);
            return err_set(err, ERR_FAIL, "out of memory");
        }
        memcpy(sql, conditions, n_cond);
        memcpy(sql + n_cond, claim, n_claim + 1);
        int rc = claims_run_sql(s, name, sql, opt, c, err);
        mem_free(sql);
        if (rc) {
            claims_free(c);
            return -1;
        }
    }
    *out = c;
    return 0;
}

void claims_free(claims_t *c) {
    if (!c) return;
    for (int i = 0; i < c->n; i++)
        result_free(&c->rows[i]);
    mem_free(c->rows);
    mem_free(c);
}

/* ---- as a table -------------------------------------------------------- */

/* An empty table of n_rows x n_cols with these column names (cells NULL). */
static store_table_t *table_new(const char *const *names, int n_cols, int n_rows) {
    store_table_t *t = mem_calloc(1, sizeof *t);
    if (!t) return NULL;
    t->n_cols = n_cols;
    t->n_rows = n_rows;
    const size_t n_cells = (size_t)n_rows * n_cols;
    t->names = mem_calloc(n_cols, sizeof *t->names);
    t->cells = mem_calloc(n_cells ? n_cells : 1, sizeof *t->cells);
    t->types = mem_calloc(n_cells ? n_cells : 1, sizeof *t->types);
    if (!t->names || !t->cells || !t->types) goto oom;
    for (int k = 0; k < n_cols; k++)
        if (!(t->names[k] = mem_strdup(names[k]))) goto oom;
    for (size_t k = 0; k < n_cells; k++)
        t->types[k] = SQLITE_NULL;
    return t;
oom:
    store_table_free(t);
    return NULL;
}

/* Cell (row, col) := text of SQLite type `type` (NULL text: SQL NULL). */
static int table_set(store_table_t *t, int row, int col, const char *text, int type) {
    size_t k = (size_t)row * t->n_cols + col;
    if (!text) return 0;
    if (!(t->cells[k] = mem_strdup(text))) return -1;
    t->types[k] = type;
    return 0;
}

static int table_set_num(store_table_t *t, int row, int col, double v) {
    char buf[64];
    if (isnan(v)) return 0;
    num_to_text(v, buf, sizeof buf);
    return table_set(t, row, col, buf, SQLITE_FLOAT);
}

static int table_set_int(store_table_t *t, int row, int col, long long v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", v);
    return table_set(t, row, col, buf, SQLITE_INTEGER);
}

int claims_table(const claims_t *c, store_table_t **out, err_t *err) {
    static const char *const names[] = {"claim", "condition", "statistic", "ci_lo",
                                        "ci_hi", "support",   "n",         "verdict"};
    store_table_t *t = table_new(names, 8, c->n);
    if (!t) goto oom;
    for (int i = 0; i < c->n; i++) {
        const claim_result_t *r = &c->rows[i];
        if (table_set(t, i, 0, r->claim, SQLITE_TEXT) ||
            table_set(t, i, 1, r->condition, SQLITE_TEXT) || table_set_num(t, i, 2, r->statistic) ||
            table_set_num(t, i, 3, r->ci_lo) || table_set_num(t, i, 4, r->ci_hi) ||
            table_set_num(t, i, 5, r->support) || table_set_int(t, i, 6, r->n_repeats) ||
            table_set(t, i, 7, claim_verdict_name(r->verdict), SQLITE_TEXT))
            goto oom;
    }
    *out = t;
    return 0;
oom:
    store_table_free(t);
    *out = NULL;
    return err_set(err, ERR_FAIL, "out of memory");
}

/* ---- the summary: verdicts counted per part of the condition ------------ */

/* One line of the summary: the conditions of `claim` whose text has the
 * part `part` ("model.init=torch"; "" for all of them), counted by verdict. */
typedef struct {
    const char *claim; /* borrowed from the results */
    char *part;
    int count[CLAIM_NO_DATA + 1];
} summary_line_t;

typedef struct {
    summary_line_t *v;
    int n, cap;
} summary_t;

/* The line (claim, part), added when absent; NULL when out of memory. */
static summary_line_t *summary_line(summary_t *sm, const char *claim, const char *part, size_t n) {
    for (int i = sm->n - 1; i >= 0 && strcmp(sm->v[i].claim, claim) == 0; i--)
        if (strlen(sm->v[i].part) == n && strncmp(sm->v[i].part, part, n) == 0) return &sm->v[i];
    if (sm->n == sm->cap) {
        int cap = sm->cap ? 2 * sm->cap : 64;
        summary_line_t *v = mem_realloc(sm->v, (size_t)cap * sizeof *v);
        if (!v) return NULL;
        sm->v = v;
        sm->cap = cap;
    }
    summary_line_t *l = &sm->v[sm->n];
    memset(l, 0, sizeof *l);
    l->claim = claim;
    if (!(l->part = mem_alloc(n + 1))) return NULL;
    memcpy(l->part, part, n);
    l->part[n] = '\0';
    sm->n++;
    return l;
}

/* Within one claim: the line of all conditions (part ""), then parts by text. */
static int cmp_line(const void *pa, const void *pb) {
    const summary_line_t *a = pa, *b = pb;
    return strcmp(a->part, b->part);
}

int claims_summary(const claims_t *c, store_table_t **out, err_t *err) {
    static const char *const names[] = {"claim", "where",     "conditions", "holds",
                                        "fails", "undecided", "no_data"};
    summary_t sm = {0};
    store_table_t *t = NULL;
    int first = 0; /* the first line of the current claim */
    for (int i = 0; i < c->n; i++) {
        const claim_result_t *r = &c->rows[i];
        if (i > 0 && strcmp(r->claim, c->rows[i - 1].claim) != 0) {
            qsort(sm.v + first, (size_t)(sm.n - first), sizeof *sm.v, cmp_line);
            first = sm.n;
        }
        summary_line_t *all = summary_line(&sm, r->claim, "", 0);
        if (!all) goto oom;
        all->count[r->verdict]++;
        /* every space-separated part of the condition: "key=value" */
        for (const char *p = r->condition ? r->condition : ""; *p;) {
            size_t n = strcspn(p, " ");
            if (n > 0) {
                summary_line_t *l = summary_line(&sm, r->claim, p, n);
                if (!l) goto oom;
                l->count[r->verdict]++;
            }
            p += n + (p[n] == ' ');
        }
    }
    qsort(sm.v + first, (size_t)(sm.n - first), sizeof *sm.v, cmp_line);
    if (!(t = table_new(names, 7, sm.n))) goto oom;
    for (int i = 0; i < sm.n; i++) {
        const summary_line_t *l = &sm.v[i];
        int n = 0;
        for (int v = 0; v <= CLAIM_NO_DATA; v++)
            n += l->count[v];
        if (table_set(t, i, 0, l->claim, SQLITE_TEXT) ||
            table_set(t, i, 1, l->part[0] ? l->part : "(all)", SQLITE_TEXT) ||
            table_set_int(t, i, 2, n) || table_set_int(t, i, 3, l->count[CLAIM_HOLDS]) ||
            table_set_int(t, i, 4, l->count[CLAIM_FAILS]) ||
            table_set_int(t, i, 5, l->count[CLAIM_UNDECIDED]) ||
            table_set_int(t, i, 6, l->count[CLAIM_NO_DATA]))
            goto oom;
    }
    for (int i = 0; i < sm.n; i++)
        mem_free(sm.v[i].part);
    mem_free(sm.v);
    *out = t;
    return 0;
oom:
    for (int i = 0; i < sm.n; i++)
        mem_free(sm.v[i].part);
    mem_free(sm.v);
    store_table_free(t);
    *out = NULL;
    return err_set(err, ERR_FAIL, "out of memory");
}
