/* runs.c -- the runs table of an experiment as one generated query
 * (contract: runs.h).
 *
 * The columns are found with two small queries (which keys vary, which
 * metrics exist at a final step); each cell is then a correlated subquery
 * on a primary key (param (trial_id, key), metric (trial_id, name, step)),
 * so the table costs one index lookup per cell.  The user's --where, --sort
 * and --cols wrap that query: SELECT cols FROM (runs) WHERE ... ORDER BY ...,
 * so a condition may use any column, shown or not. */
#include "store/runs.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "core/mem.h"
#include "core/size.h"
#include "store/query.h"

/* ---- a growing string ---------------------------------------------------- */

typedef struct {
    char *s;
    size_t len, cap;
    bool oom;
} sbuf_t;

static void sb_putn(sbuf_t *b, const char *text, size_t n) {
    if (b->oom) return;
    size_t need;
    if (size_add(&need, b->len, n + 1)) {
        b->oom = true;
        return;
    }
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < need)
            if (size_mul(&cap, cap, 2)) {
                b->oom = true;
                return;
            }
        char *p = mem_realloc(b->s, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, text, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_put(sbuf_t *b, const char *text) {
    sb_putn(b, text, strlen(text));
}

/* text between `q` quotes, each q inside doubled: 'an SQL string' or
 * "an identifier". */
static void sb_quoted(sbuf_t *b, const char *text, char q) {
    sb_putn(b, &q, 1);
    for (const char *p = text; *p; p++) {
        sb_putn(b, p, 1);
        if (*p == q) sb_putn(b, &q, 1);
    }
    sb_putn(b, &q, 1);
}

/* Takes the string (NULL when out of memory). */
static char *sb_take(sbuf_t *b) {
    if (b->oom) {
        mem_free(b->s);
        return NULL;
    }
    if (!b->s) return mem_strdup("");
    return b->s;
}

/* ---- finding the experiment ---------------------------------------------- */

static int64_t one_int(sqlite3 *db, const char *sql, const char *text, bool *found) {
    sqlite3_stmt *st;
    *found = false;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return 0;
    sqlite3_bind_text(st, 1, text, -1, SQLITE_TRANSIENT);
    int64_t v = 0;
    if (sqlite3_step(st) == SQLITE_ROW) {
        v = sqlite3_column_int64(st, 0);
        *found = true;
    }
    sqlite3_finalize(st);
    return v;
}

int store_find_experiment(store_t *s, const char *name, int64_t *id, err_t *err) {
    sqlite3 *db = store_db(s);
    bool found;
    *id = one_int(db, "SELECT id FROM experiment WHERE name = ?1", name, &found);
    if (found) return 0;
    char *end;
    long long n = strtoll(name, &end, 10);
    if (end != name && *end == '\0' && n > 0) {
        *id = one_int(db, "SELECT id FROM experiment WHERE id = CAST(?1 AS INTEGER)", name, &found);
        if (found) return 0;
    }
    /* Name the experiments there are, so a typo is easy to see. */
    sbuf_t list = {0};
    sqlite3_stmt *st;
    int count = 0;
    if (sqlite3_prepare_v2(db, "SELECT name FROM experiment ORDER BY id", -1, &st, NULL) ==
        SQLITE_OK) {
        while (sqlite3_step(st) == SQLITE_ROW) {
            if (count < 8) {
                sb_put(&list, count ? ", " : "");
                sb_put(&list, (const char *)sqlite3_column_text(st, 0));
            } else if (count == 8) {
                sb_put(&list, ", ...");
            }
            count++;
        }
        sqlite3_finalize(st);
    }
    char *names = sb_take(&list);
    if (count == 0)
        err_set(err, ERR_USAGE, "no experiment '%s' in %s (it holds none yet)", name,
                store_path(s));
    else
        err_set(err, ERR_USAGE, "no experiment '%s' in %s (it holds: %s)", name, store_path(s),
                names ? names : "?");
    mem_free(names);
    return -1;
}

/* ---- the columns ---------------------------------------------------------- */

void store_runs_free(store_runs_t *r) {
    for (int i = 0; i < r->n; i++) {
        mem_free(r->names[i]);
        mem_free(r->exprs[i]);
    }
    mem_free(r->names);
    mem_free(r->exprs);
    memset(r, 0, sizeof *r);
}

int store_runs_find(const store_runs_t *r, const char *name) {
    for (int i = 0; i < r->n; i++)
        if (strcmp(r->names[i], name) == 0) return i;
    return -1;
}

/* Appends a column (takes neither string). */
static int add_column(store_runs_t *r, int *cap, const char *name, const char *expr, err_t *err) {
    if (r->n == *cap) {
        int c = *cap ? 2 * *cap : 16;
        char **names = mem_realloc(r->names, (size_t)c * sizeof *names);
        if (!names) return err_set(err, ERR_FAIL, "out of memory");
        r->names = names;
        char **exprs = mem_realloc(r->exprs, (size_t)c * sizeof *exprs);
        if (!exprs) return err_set(err, ERR_FAIL, "out of memory");
        r->exprs = exprs;
        *cap = c;
    }
    r->names[r->n] = mem_strdup(name);
    r->exprs[r->n] = mem_strdup(expr);
    if (!r->names[r->n] || !r->exprs[r->n]) {
        mem_free(r->names[r->n]);
        mem_free(r->exprs[r->n]);
        return err_set(err, ERR_FAIL, "out of memory");
    }
    r->n++;
    return 0;
}

/* The expression of a key or metric column: a lookup by primary key. */
static int add_lookup(store_runs_t *r, int *cap, const char *name, bool metric, err_t *err) {
    sbuf_t e = {0};
    sb_put(&e, metric ? "(SELECT value FROM metric WHERE trial_id = t.id AND name = "
                      : "(SELECT value FROM param WHERE trial_id = t.id AND key = ");
    sb_quoted(&e, name, '\'');
    sb_put(&e, metric ? " AND step <= t.final_step ORDER BY step DESC LIMIT 1)" : ")");
    char *expr = sb_take(&e);
    if (!expr) return err_set(err, ERR_FAIL, "out of memory");
    int rc = add_column(r, cap, name, expr, err);
    mem_free(expr);
    return rc;
}

/* Runs `sql` (?1 = the experiment, ?2 = all_keys) and adds a column for the
 * text of the first column of each row. */
static int add_found(store_t *s, store_runs_t *r, int *cap, const char *sql, bool all_keys,
                     bool metric, err_t *err) {
    sqlite3 *db = store_db(s);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return err_set(err, ERR_FAIL, "%s: %s", store_path(s), sqlite3_errmsg(db));
    sqlite3_bind_int64(st, 1, r->experiment_id);
    sqlite3_bind_int(st, 2, all_keys);
    int rc, status = 0;
    while (status == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        if (!name) continue;
        status = add_lookup(r, cap, name, metric, err);
        if (status == 0 && metric) r->n_metrics++;
        if (status == 0 && !metric) r->n_keys++;
    }
    if (status == 0 && rc != SQLITE_DONE)
        status = err_set(err, ERR_FAIL, "%s: %s", store_path(s), sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return status;
}

int store_runs_columns(store_t *s, int64_t experiment_id, bool all_keys, store_runs_t *out,
                       err_t *err) {
    memset(out, 0, sizeof *out);
    out->experiment_id = experiment_id;
    int cap = 0;
    static const char *const fixed[][2] = {
        {"trial", "t.id"},
        {"model", "t.model"},
        {"repeat", "t.repeat"},
        {"status", "t.status"},
        {"tags", "(SELECT group_concat(tag, ' ') FROM (SELECT tag FROM tag WHERE trial_id = t.id "
                 "ORDER BY tag))"},
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (add_column(out, &cap, fixed[i][0], fixed[i][1], err)) goto fail;
    out->n_fixed = out->n;
    /* A key varies when it has two values or is missing from some trials
     * (a hyper-parameter of some families only).  Config order: where the
     * key first appears in a config. */
    if (add_found(s, out, &cap,
                  "SELECT p.key FROM param p JOIN trial t ON t.id = p.trial_id"
                  " WHERE t.experiment_id = ?1 AND p.key <> 'model.name'"
                  " GROUP BY p.key"
                  " HAVING ?2 OR count(DISTINCT p.value) > 1"
                  "    OR count(*) < (SELECT count(*) FROM trial WHERE experiment_id = ?1)"
                  " ORDER BY min(instr(';' || t.config, ';' || p.key || '=')), p.key",
                  all_keys, false, err))
        goto fail;
    if (add_found(s, out, &cap,
                  "SELECT DISTINCT m.name FROM trial t"
                  " JOIN metric m ON m.trial_id = t.id AND m.step <= t.final_step"
                  " WHERE t.experiment_id = ?1 ORDER BY m.name",
                  all_keys, true, err))
        goto fail;
    return 0;
fail:
    store_runs_free(out);
    return -1;
}

/* ---- the query ------------------------------------------------------------ */

static bool ident_char(char c) {
    return isalnum((unsigned char)c) || c == '_' || c == '.';
}

/* Copies a condition, quoting every bare column name as an identifier: at
 * a word start, the longest column name written there that ends at a word
 * end (so test/loss/t1 is one name, not a division).  String literals and
 * quoted identifiers are copied as they are. */
static void put_condition(sbuf_t *b, const store_runs_t *r, const char *cond) {
    const char *p = cond;
    while (*p) {
        if (*p == '\'' || *p == '"' || *p == '`' || *p == '[') {
            char close = *p == '[' ? ']' : *p;
            const char *q = p + 1;
            while (*q && !(*q == close && q[1] != close))
                q += (*q == close) ? 2 : 1;
            if (*q) q++;
            sb_putn(b, p, (size_t)(q - p));
            p = q;
            continue;
        }
        if (p == cond || !ident_char(p[-1])) {
            size_t best = 0;
            int which = -1;
            for (int i = 0; i < r->n; i++) {
                size_t len = strlen(r->names[i]);
                if (len > best && strncmp(p, r->names[i], len) == 0 && !ident_char(p[len])) {
                    best = len;
                    which = i;
                }
            }
            if (which >= 0 && (isalpha((unsigned char)*p) || *p == '_')) {
                sb_quoted(b, r->names[which], '"');
                p += best;
                continue;
            }
        }
        sb_putn(b, p, 1);
        p++;
    }
}

int store_runs_sql(const store_runs_t *r, const store_runs_select_t *sel, char **sql, err_t *err) {
    *sql = NULL;
    if (sel && sel->sort && store_runs_find(r, sel->sort) < 0)
        return err_set(err, ERR_USAGE, "no column '%s' to sort by", sel->sort);
    for (int i = 0; sel && sel->cols && i < sel->n_cols; i++)
        if (store_runs_find(r, sel->cols[i]) < 0)
            return err_set(err, ERR_USAGE, "no column '%s' in the runs table", sel->cols[i]);
    bool wrap = sel && (sel->where || sel->sort || sel->cols);
    sbuf_t b = {0};
    char num[32];
    if (wrap) {
        sb_put(&b, "SELECT ");
        if (sel->cols) {
            for (int i = 0; i < sel->n_cols; i++) {
                sb_put(&b, i ? ", " : "");
                sb_quoted(&b, sel->cols[i], '"');
            }
        } else {
            sb_put(&b, "*");
        }
        sb_put(&b, " FROM (\n");
    }
    sb_put(&b, "SELECT ");
    for (int i = 0; i < r->n; i++) {
        sb_put(&b, i ? ",\n       " : "");
        sb_put(&b, r->exprs[i]);
        sb_put(&b, " AS ");
        sb_quoted(&b, r->names[i], '"');
    }
    snprintf(num, sizeof num, "%" PRId64, r->experiment_id);
    sb_put(&b, "\n  FROM trial t\n WHERE t.experiment_id = ");
    sb_put(&b, num);
    if (!wrap) {
        sb_put(&b, "\n ORDER BY t.id");
    } else {
        sb_put(&b, "\n) AS runs");
        if (sel->where) {
            sb_put(&b, "\n WHERE (");
            put_condition(&b, r, sel->where);
            sb_put(&b, "\n)");
        }
        sb_put(&b, "\n ORDER BY ");
        if (sel->sort) {
            sb_put(&b, "(runs.");
            sb_quoted(&b, sel->sort, '"');
            sb_put(&b, " IS NULL), runs.");
            sb_quoted(&b, sel->sort, '"');
            sb_put(&b, sel->descending ? " DESC, " : ", ");
        }
        sb_put(&b, "runs.\"trial\"");
    }
    *sql = sb_take(&b);
    return *sql ? 0 : err_set(err, ERR_FAIL, "out of memory");
}
