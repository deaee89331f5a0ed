/* merge.c -- several stores into one (see merge.h).
 *
 * How.  SQLite cannot ATTACH inside a transaction, and attaches at most a
 * handful of files at once, so the merge goes in two stages on OUT's
 * connection:
 *   1. staging: each input in turn is attached (read only by us), its
 *      schema version checked, and every table copied into a temporary
 *      table temp.s_NAME with an extra column src (1-based input number; 0
 *      for OUT's own experiment rows), in one read transaction per input;
 *   2. one write transaction on OUT decides, from the staged rows and OUT's
 *      own, which copy of each trial wins, inserts what is new with
 *      canonical ids, compares the duplicates, and commits -- or rolls back
 *      when a duplicate holds different results.
 * The SQL is built from the schema (PRAGMA table_info, foreign_key_list),
 * so a column or record table added by a later migration is carried
 * without a change here. */
#include "store/merge.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/mem.h"
#include "store/store.h"

#define MERGE_MAX_TABLES 64
#define MERGE_MAX_COLS   64
#define MERGE_NAME_MAX   64
/* The staging tables' first column `src` is the input number, so a record
 * table's own column named src (route, route_step: the source unit of a
 * route) is staged as STAGED_SRC (staged_col). */
#define STAGED_SRC "rec_src"

typedef enum {
    TABLE_META,       /* meta: the schema version, checked */
    TABLE_EXPERIMENT, /* matched by name */
    TABLE_TRIAL,      /* matched by identity */
    TABLE_RECORD,     /* has trial_id: the records of one trial */
    TABLE_ENTITY,     /* referenced by trial (run): rows merged by content */
    TABLE_EXP_RECORD, /* has experiment_id, no trial_id: rows added when new */
    TABLE_ANNOTATION, /* has experiment_id and trial_id (tag, note): what a user wrote about
                         an experiment (trial_id NULL) or a trial, from every copy, added when
                         new; not a result, so never a conflict */
} table_kind_t;

typedef struct {
    char name[MERGE_NAME_MAX];
    table_kind_t kind;
    int n_cols;
    char cols[MERGE_MAX_COLS][MERGE_NAME_MAX];
    /* the INTEGER PRIMARY KEY (rowid alias) column, or -1: new rows get new
     * values (except trial_id of weights, which is the trial's) */
    int alias;
    /* trial only: for each column, the table it references (""), e.g. run */
    char refs[MERGE_MAX_COLS][MERGE_NAME_MAX];
} table_t;

typedef struct {
    sqlite3 *db;
    const char *out_path;
    const char *const *inputs;
    int n_inputs;
    table_t *tables;
    int n_tables;
    merge_note_fn note;
    void *ctx;
} merge_t;

/* ---- SQL text ------------------------------------------------------------ */

typedef struct {
    char *text;
    size_t len, cap;
    bool failed; /* out of memory */
} sql_t;

static void sql_add(sql_t *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sql_add(sql_t *q, const char *fmt, ...) {
    if (q->failed) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n =
            vsnprintf(q->text ? q->text + q->len : NULL, q->text ? q->cap - q->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            q->failed = true;
            return;
        }
        if (q->text && q->len + (size_t)n < q->cap) {
            q->len += (size_t)n;
            return;
        }
        size_t cap = (q->cap ? q->cap : 256);
        while (cap <= q->len + (size_t)n)
            cap *= 2;
        char *grown = mem_realloc(q->text, cap);
        if (!grown) {
            q->failed = true;
            return;
        }
        q->text = grown;
        q->cap = cap;
    }
}

static void sql_reset(sql_t *q) {
    q->len = 0;
    if (q->text) q->text[0] = '\0';
}

/* The input's file name for messages: src 0 is OUT. */
static const char *src_name(const merge_t *m, int src) {
    return src <= 0 || src > m->n_inputs ? m->out_path : m->inputs[src - 1];
}

static int exec(merge_t *m, const char *sql, const char *what, err_t *err) {
    char *msg = NULL;
    if (sqlite3_exec(m->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        err_set(err, ERR_FAIL, "%s: %s: %s", m->out_path, what, msg ? msg : sqlite3_errmsg(m->db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static int exec_q(merge_t *m, sql_t *q, const char *what, err_t *err) {
    if (q->failed) return err_set(err, ERR_FAIL, "%s: %s: out of memory", m->out_path, what);
    return exec(m, q->text, what, err);
}

/* The first column of the first row of sql as an integer (0 when no row). */
static int query_int(merge_t *m, const char *sql, long long *out, err_t *err) {
    sqlite3_stmt *st;
    *out = 0;
    if (sqlite3_prepare_v2(m->db, sql, -1, &st, NULL) != SQLITE_OK)
        return err_set(err, ERR_FAIL, "%s: %s", m->out_path, sqlite3_errmsg(m->db));
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return err_set(err, ERR_FAIL, "%s: %s", m->out_path, sqlite3_errmsg(m->db));
    return 0;
}

/* ---- the schema ------------------------------------------------------------ */

static table_t *find_table(merge_t *m, const char *name) {
    for (int i = 0; i < m->n_tables; i++)
        if (strcmp(m->tables[i].name, name) == 0) return &m->tables[i];
    return NULL;
}

static int col_index(const table_t *t, const char *name) {
    for (int i = 0; i < t->n_cols; i++)
        if (strcmp(t->cols[i], name) == 0) return i;
    return -1;
}

/* Columns and rowid alias of one table of OUT. */
static int read_columns(merge_t *m, table_t *t, bool without_rowid, err_t *err) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(m->db, "SELECT name, upper(type), pk FROM pragma_table_info(?)", -1, &st,
                           NULL) != SQLITE_OK)
        return err_set(err, ERR_FAIL, "%s: %s", m->out_path, sqlite3_errmsg(m->db));
    sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
    int n_pk = 0, pk_col = -1;
    bool pk_integer = false;
    t->n_cols = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        if (t->n_cols == MERGE_MAX_COLS || strlen(name) >= MERGE_NAME_MAX) {
            sqlite3_finalize(st);
            return err_set(err, ERR_FAIL, "%s: table %s: too many or too long columns", m->out_path,
                           t->name);
        }
        if (sqlite3_column_int(st, 2) > 0) {
            n_pk++;
            pk_col = t->n_cols;
            pk_integer = strcmp((const char *)sqlite3_column_text(st, 1), "INTEGER") == 0;
        }
        snprintf(t->cols[t->n_cols++], MERGE_NAME_MAX, "%s", name);
    }
    sqlite3_finalize(st);
    t->alias = (n_pk == 1 && pk_integer && !without_rowid) ? pk_col : -1;
    return 0;
}

/* The tables of OUT and what each is to the merge. */
static int read_schema(merge_t *m, err_t *err) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(m->db,
                           "SELECT name, sql LIKE '%WITHOUT ROWID%' FROM main.sqlite_master WHERE "
                           "type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
                           -1, &st, NULL) != SQLITE_OK)
        return err_set(err, ERR_FAIL, "%s: %s", m->out_path, sqlite3_errmsg(m->db));
    int rc = 0;
    while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        if (m->n_tables == MERGE_MAX_TABLES || strlen(name) >= MERGE_NAME_MAX) {
            rc = err_set(err, ERR_FAIL, "%s: too many tables", m->out_path);
            break;
        }
        table_t *t = &m->tables[m->n_tables++];
        memset(t, 0, sizeof *t);
        snprintf(t->name, sizeof t->name, "%s", name);
        rc = read_columns(m, t, sqlite3_column_int(st, 1) != 0, err);
    }
    sqlite3_finalize(st);
    if (rc) return -1;
    table_t *trial = find_table(m, "trial");
    if (!trial || !find_table(m, "experiment") || !find_table(m, "meta"))
        return err_set(err, ERR_FAIL, "%s: not an mtlab store", m->out_path);
    /* What the trial table references. */
    if (sqlite3_prepare_v2(m->db,
                           "SELECT \"table\", \"from\" FROM pragma_foreign_key_list('trial')", -1,
                           &st, NULL) != SQLITE_OK)
        return err_set(err, ERR_FAIL, "%s: %s", m->out_path, sqlite3_errmsg(m->db));
    while (sqlite3_step(st) == SQLITE_ROW) {
        int c = col_index(trial, (const char *)sqlite3_column_text(st, 1));
        if (c >= 0) snprintf(trial->refs[c], MERGE_NAME_MAX, "%s", sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    for (int i = 0; i < m->n_tables; i++) {
        table_t *t = &m->tables[i];
        bool referenced = false;
        for (int c = 0; c < trial->n_cols; c++)
            referenced |= strcmp(trial->refs[c], t->name) == 0;
        if (strcmp(t->name, "meta") == 0)
            t->kind = TABLE_META;
        else if (strcmp(t->name, "experiment") == 0)
            t->kind = TABLE_EXPERIMENT;
        else if (strcmp(t->name, "trial") == 0)
            t->kind = TABLE_TRIAL;
        else if (col_index(t, "trial_id") >= 0 && col_index(t, "experiment_id") >= 0)
            t->kind = TABLE_ANNOTATION;
        else if (col_index(t, "trial_id") >= 0)
            t->kind = TABLE_RECORD;
        else if (referenced && t->alias >= 0)
            t->kind = TABLE_ENTITY;
        else if (col_index(t, "experiment_id") >= 0)
            t->kind = TABLE_EXP_RECORD;
        else
            return err_set(err, ERR_FAIL,
                           "%s: table %s is neither a trial's record (trial_id), an "
                           "experiment's (experiment_id) nor referenced by trial: mtlab merge "
                           "does not know how to carry it",
                           m->out_path, t->name);
    }
    /* Only a record table may have a column named src (staged_col); none
     * may have one named STAGED_SRC. */
    for (int i = 0; i < m->n_tables; i++) {
        const table_t *t = &m->tables[i];
        if (col_index(t, STAGED_SRC) >= 0 || (t->kind != TABLE_RECORD && col_index(t, "src") >= 0))
            return err_set(err, ERR_FAIL,
                           "%s: table %s has a column named src or " STAGED_SRC
                           ": mtlab merge does not know how to carry it",
                           m->out_path, t->name);
    }
    return 0;
}

/* "a, b, c": the table's columns, each prefixed by `prefix` ("s." or ""),
 * leaving out the rowid alias when skip_alias and trial_id when skip_trial. */
static void add_cols(sql_t *q, const table_t *t, const char *prefix, bool skip_alias,
                     bool skip_trial) {
    bool first = true;
    for (int c = 0; c < t->n_cols; c++) {
        if ((skip_alias && c == t->alias) || (skip_trial && strcmp(t->cols[c], "trial_id") == 0))
            continue;
        sql_add(q, "%s%s\"%s\"", first ? "" : ", ", prefix, t->cols[c]);
        first = false;
    }
}

static const char *staged_col(const char *col) {
    return strcmp(col, "src") == 0 ? STAGED_SRC : col;
}

/* add_cols for a record table's staging copy: its columns by their staged
 * names; with `define`, "col" AS "staged" where they differ (creating it). */
static void add_staged_cols(sql_t *q, const table_t *t, const char *prefix, bool skip_alias,
                            bool skip_trial, bool define) {
    bool first = true;
    for (int c = 0; c < t->n_cols; c++) {
        if ((skip_alias && c == t->alias) || (skip_trial && strcmp(t->cols[c], "trial_id") == 0))
            continue;
        const char *name = staged_col(t->cols[c]);
        if (define && name != t->cols[c])
            sql_add(q, "%s\"%s\" AS \"%s\"", first ? "" : ", ", t->cols[c], name);
        else
            sql_add(q, "%s%s\"%s\"", first ? "" : ", ", prefix, name);
        first = false;
    }
}

/* ---- stage 1: the inputs into temp tables -------------------------------- */

static int make_staging(merge_t *m, err_t *err) {
    sql_t q = {0};
    for (int i = 0; i < m->n_tables; i++) {
        const table_t *t = &m->tables[i];
        if (t->kind == TABLE_META) continue;
        sql_add(&q, "CREATE TEMP TABLE \"s_%s\" AS SELECT 0 AS src, ", t->name);
        if (t->kind == TABLE_RECORD)
            add_staged_cols(&q, t, "", false, false, true);
        else
            add_cols(&q, t, "", false, false);
        sql_add(&q, " FROM main.\"%s\" WHERE 0;", t->name);
        if (t->kind == TABLE_RECORD)
            sql_add(&q, "CREATE INDEX temp.\"s_%s_trial\" ON \"s_%s\" (src, trial_id);", t->name,
                    t->name);
    }
    sql_add(&q, "CREATE INDEX temp.s_trial_id ON s_trial (src, id);"
                "INSERT INTO s_experiment SELECT 0, * FROM main.experiment;");
    int rc = exec_q(m, &q, "cannot make the staging tables", err);
    mem_free(q.text);
    return rc;
}

/* Whether paths a and b are the same file (both exist). */
static bool same_file(const char *a, const char *b) {
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

/* Copies input number src (1-based) into the staging tables. */
static int stage_input(merge_t *m, int src, err_t *err) {
    const char *path = m->inputs[src - 1];
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode) || access(path, R_OK) != 0)
        return err_set(err, ERR_FAIL, "cannot read %s: no such file", path);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(m->db, "ATTACH ? AS src", -1, &st, NULL) != SQLITE_OK)
        return err_set(err, ERR_FAIL, "%s: %s", path, sqlite3_errmsg(m->db));
    sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return err_set(err, ERR_FAIL, "cannot open %s: %s", path, sqlite3_errmsg(m->db));
    int status = -1;
    long long version = -1;
    sql_t q = {0};
    if (sqlite3_exec(m->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        err_set(err, ERR_FAIL, "%s: %s", path, sqlite3_errmsg(m->db));
        goto done;
    }
    if (sqlite3_prepare_v2(m->db,
                           "SELECT CAST(value AS INTEGER) FROM src.meta WHERE key = "
                           "'schema_version'",
                           -1, &st, NULL) != SQLITE_OK) {
        err_set(err, ERR_FAIL, "%s: not an mtlab store (%s)", path, sqlite3_errmsg(m->db));
        goto done;
    }
    if (sqlite3_step(st) == SQLITE_ROW) version = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (version != STORE_SCHEMA_VERSION) {
        if (version < 0)
            err_set(err, ERR_FAIL, "%s: not an mtlab store (no schema version)", path);
        else if (version < STORE_SCHEMA_VERSION)
            err_set(err, ERR_FAIL,
                    "%s: schema version %lld, this mtlab's is %d: open it once with this mtlab "
                    "(e.g. mtlab ls %s upgrades it) and merge again",
                    path, version, STORE_SCHEMA_VERSION, path);
        else
            err_set(err, ERR_FAIL,
                    "%s: schema version %lld is newer than this mtlab's (%d): merge with the "
                    "mtlab that wrote it",
                    path, version, STORE_SCHEMA_VERSION);
        goto done;
    }
    /* Every table of the input must be one of OUT's: none is dropped. */
    if (sqlite3_prepare_v2(m->db,
                           "SELECT name FROM src.sqlite_master WHERE type = 'table' AND name NOT "
                           "LIKE 'sqlite_%' ORDER BY name",
                           -1, &st, NULL) != SQLITE_OK) {
        err_set(err, ERR_FAIL, "%s: %s", path, sqlite3_errmsg(m->db));
        goto done;
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        if (!find_table(m, name)) {
            err_set(err, ERR_FAIL,
                    "%s: has a table %s that %s does not: a store of another mtlab (merge "
                    "with the mtlab that wrote it)",
                    path, name, m->out_path);
            sqlite3_finalize(st);
            goto done;
        }
    }
    sqlite3_finalize(st);
    for (int i = 0; i < m->n_tables; i++) {
        const table_t *t = &m->tables[i];
        if (t->kind == TABLE_META) continue;
        sql_add(&q, "INSERT INTO temp.\"s_%s\" SELECT %d, ", t->name, src);
        add_cols(&q, t, "", false, false);
        sql_add(&q, " FROM src.\"%s\";", t->name);
    }
    if (q.failed) {
        err_set(err, ERR_FAIL, "%s: out of memory", path);
        goto done;
    }
    char *msg = NULL;
    if (sqlite3_exec(m->db, q.text, NULL, NULL, &msg) != SQLITE_OK) {
        err_set(err, ERR_FAIL, "%s: cannot read it (%s): a store of another mtlab?", path,
                msg ? msg : sqlite3_errmsg(m->db));
        sqlite3_free(msg);
        goto done;
    }
    status = 0;
done:
    mem_free(q.text);
    sqlite3_exec(m->db, status == 0 ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
    sqlite3_exec(m->db, "DETACH src", NULL, NULL, NULL);
    return status;
}

/* ---- stage 2: decide and write ------------------------------------------- */

/* Experiments: the copies must agree; new names are added in name order. */
static int merge_experiments(merge_t *m, bool allow_versions, merge_summary_t *sum, err_t *err) {
    sqlite3_stmt *st;
    const char *check =
        "SELECT a.name, a.src, b.src, a.spec IS NOT b.spec, (a.identity IS NOT b.identity OR "
        "a.draws IS NOT b.draws), "
        "a.code_version, b.code_version FROM s_experiment a JOIN s_experiment b ON a.name = b.name "
        "AND a.src < b.src WHERE a.spec IS NOT b.spec OR a.identity IS NOT b.identity OR a.draws "
        "IS NOT b.draws OR (?1 = 0 "
        "AND a.code_version IS NOT b.code_version) ORDER BY a.name, a.src, b.src LIMIT 1";
    if (sqlite3_prepare_v2(m->db, check, -1, &st, NULL) != SQLITE_OK)
        return err_set(err, ERR_FAIL, "%s: %s", m->out_path, sqlite3_errmsg(m->db));
    sqlite3_bind_int(st, 1, allow_versions);
    int rc = 0;
    if (sqlite3_step(st) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        const char *a = src_name(m, sqlite3_column_int(st, 1)),
                   *b = src_name(m, sqlite3_column_int(st, 2));
        if (sqlite3_column_int(st, 3))
            rc = err_set(err, ERR_FAIL,
                         "experiment '%s': its sweep file's text differs between %s and %s: only "
                         "stores of the same sweep file merge",
                         name, a, b);
        else if (sqlite3_column_int(st, 4))
            rc = err_set(err, ERR_FAIL,
                         "experiment '%s': %s and %s made its trial configs by different identity "
                         "or draw rules (experiment.identity, experiment.draws)",
                         name, a, b);
        else {
            const char *va = (const char *)sqlite3_column_text(st, 5),
                       *vb = (const char *)sqlite3_column_text(st, 6);
            rc = err_set(err, ERR_FAIL,
                         "experiment '%s': written by mtlab %s in %s and %s in %s: results of "
                         "different code may differ (--allow-versions merges them anyway)",
                         name, va ? va : "?", a, vb ? vb : "?", b);
        }
    }
    sqlite3_finalize(st);
    if (rc) return -1;

    const table_t *e = find_table(m, "experiment");
    sql_t q = {0};
    sql_add(&q, "CREATE TEMP TABLE new_exp AS SELECT name FROM s_experiment WHERE src > 0 AND name "
                "NOT IN (SELECT name FROM main.experiment) GROUP BY name;"
                "INSERT INTO main.experiment (");
    add_cols(&q, e, "", false, false);
    sql_add(&q, ") SELECT (SELECT coalesce(max(id), 0) FROM main.experiment) + row_number() OVER "
                "(ORDER BY name)");
    for (int c = 0; c < e->n_cols; c++)
        if (c != e->alias)
            sql_add(&q, ", %s(\"%s\")", strcmp(e->cols[c], "updated") == 0 ? "max" : "min",
                    e->cols[c]);
    sql_add(&q, " FROM s_experiment WHERE src > 0 AND name IN (SELECT name FROM new_exp) GROUP BY "
                "name ORDER BY name;"
                "CREATE TEMP TABLE exp_map AS SELECT s.src, s.id AS old_id, e.id AS new_id FROM "
                "s_experiment s JOIN main.experiment e ON e.name = s.name;"
                "CREATE INDEX temp.exp_map_i ON exp_map (src, old_id);");
    rc = exec_q(m, &q, "cannot merge the experiments", err);
    mem_free(q.text);
    long long n;
    if (rc == 0 && query_int(m, "SELECT count(*) FROM new_exp", &n, err) == 0)
        sum->experiments_added = (int)n;
    return rc;
}

/* Whether column c of an experiment's entity is bookkeeping of when and by
 * what it was registered (not part of what the row is). */
static bool bookkeeping_col(const char *col) {
    return strcmp(col, "created") == 0 || strcmp(col, "code_version") == 0;
}

/* An entity of an experiment (spec: experiment_id, referenced by trial):
 * every input row is carried -- an experiment's whole spec history, not
 * only the rows a winning trial names -- with experiment_id mapped through
 * exp_map.  Rows are one when they agree on everything but when and by what
 * they were registered (the same spec text run on two shards is one spec;
 * the earliest created and code_version are kept), so a merge of duplicates
 * adds nothing and the result does not depend on the order of the inputs. */
static void owned_entity_sql(const table_t *t, sql_t *q) {
    const char *id = t->cols[t->alias];
    sql_add(q, "CREATE TEMP TABLE \"o_%s\" AS SELECT s.src, s.\"%s\" AS old_id", t->name, id);
    for (int c = 0; c < t->n_cols; c++) {
        if (c == t->alias) continue;
        if (strcmp(t->cols[c], "experiment_id") == 0)
            sql_add(q, ", (SELECT new_id FROM exp_map e WHERE e.src = s.src AND e.old_id = "
                       "s.experiment_id) AS experiment_id");
        else
            sql_add(q, ", s.\"%s\"", t->cols[c]);
    }
    sql_add(q, " FROM temp.\"s_%s\" s WHERE s.src > 0;", t->name);
    /* "k1", "k2", ...: the identifying columns */
    sql_t keys = {0}, match = {0};
    for (int c = 0, first = 1; c < t->n_cols; c++) {
        if (c == t->alias || bookkeeping_col(t->cols[c])) continue;
        sql_add(&keys, "%s\"%s\"", first ? "" : ", ", t->cols[c]);
        sql_add(&match, " AND x.\"%s\" IS o.\"%s\"", t->cols[c], t->cols[c]);
        first = 0;
    }
    if (keys.failed || match.failed) {
        q->failed = true;
    } else {
        sql_add(q, "INSERT INTO main.\"%s\" (\"%s\", %s", t->name, id, keys.text);
        for (int c = 0; c < t->n_cols; c++)
            if (c != t->alias && bookkeeping_col(t->cols[c])) sql_add(q, ", \"%s\"", t->cols[c]);
        sql_add(q,
                ") SELECT (SELECT coalesce(max(\"%s\"), 0) FROM main.\"%s\") + row_number() OVER "
                "(ORDER BY %s), * FROM (SELECT %s",
                id, t->name, keys.text, keys.text);
        for (int c = 0; c < t->n_cols; c++)
            if (c != t->alias && bookkeeping_col(t->cols[c]))
                sql_add(q, ", min(\"%s\")", t->cols[c]);
        sql_add(q,
                " FROM \"o_%s\" o WHERE NOT EXISTS (SELECT 1 FROM main.\"%s\" x WHERE 1%s) "
                "GROUP BY %s);",
                t->name, t->name, match.text, keys.text);
        sql_add(q,
                "CREATE TEMP TABLE \"map_%s\" AS SELECT o.src, o.old_id, min(x.\"%s\") AS new_id "
                "FROM \"o_%s\" o JOIN main.\"%s\" x ON 1%s GROUP BY o.src, o.old_id;"
                "CREATE INDEX temp.\"map_%s_i\" ON \"map_%s\" (src, old_id);",
                t->name, id, t->name, t->name, match.text, t->name, t->name);
    }
    mem_free(keys.text);
    mem_free(match.text);
}

/* Tables the trial table references (e.g. run): the rows that the trials
 * taken from the inputs reference (after choose_trials) are carried, rows
 * of equal content being one row; new contents get ids in content order.  temp.map_NAME (src,
 * old_id, new_id) maps the inputs' ids. */
static int merge_entities(merge_t *m, err_t *err) {
    sql_t q = {0};
    int rc = 0;
    for (int i = 0; i < m->n_tables && rc == 0; i++) {
        const table_t *t = &m->tables[i];
        if (t->kind != TABLE_ENTITY) continue;
        sql_reset(&q);
        if (col_index(t, "experiment_id") >= 0) { /* an experiment's (spec) */
            owned_entity_sql(t, &q);
            rc = exec_q(m, &q, "cannot merge an experiment's referenced table", err);
            continue;
        }
        const char *id = t->cols[t->alias];
        sql_add(&q, "INSERT INTO main.\"%s\" (\"%s\", ", t->name, id);
        add_cols(&q, t, "", true, false);
        sql_add(&q,
                ") SELECT (SELECT coalesce(max(\"%s\"), 0) FROM main.\"%s\") + row_number() "
                "OVER (ORDER BY ",
                id, t->name);
        add_cols(&q, t, "", true, false);
        sql_add(&q, "), * FROM (SELECT ");
        add_cols(&q, t, "", true, false);
        sql_add(&q,
                " FROM temp.\"s_%s\" s WHERE src > 0 AND EXISTS (SELECT 1 FROM win w JOIN "
                "s_trial x ON x.src = w.src AND x.id = w.old_id WHERE w.src = s.src AND (0",
                t->name);
        const table_t *trial = find_table(m, "trial");
        for (int c = 0; c < trial->n_cols; c++)
            if (strcmp(trial->refs[c], t->name) == 0)
                sql_add(&q, " OR x.\"%s\" = s.\"%s\"", trial->cols[c], id);
        sql_add(&q, ")) EXCEPT SELECT ");
        add_cols(&q, t, "", true, false);
        sql_add(&q, " FROM main.\"%s\");", t->name);
        sql_add(&q,
                "CREATE TEMP TABLE \"map_%s\" AS SELECT s.src, s.\"%s\" AS old_id, min(x.\"%s\") "
                "AS new_id FROM temp.\"s_%s\" s JOIN main.\"%s\" x ON 1",
                t->name, id, id, t->name, t->name);
        for (int c = 0; c < t->n_cols; c++)
            if (c != t->alias) sql_add(&q, " AND s.\"%s\" IS x.\"%s\"", t->cols[c], t->cols[c]);
        sql_add(&q,
                " WHERE s.src > 0 GROUP BY s.src, s.\"%s\";"
                "CREATE INDEX temp.\"map_%s_i\" ON \"map_%s\" (src, old_id);",
                id, t->name, t->name);
        rc = exec_q(m, &q, "cannot merge a referenced table", err);
    }
    mem_free(q.text);
    return rc;
}

/* Rows of experiment-level tables that OUT does not hold yet. */
static int merge_exp_records(merge_t *m, err_t *err) {
    sql_t q = {0};
    int rc = 0;
    for (int i = 0; i < m->n_tables && rc == 0; i++) {
        const table_t *t = &m->tables[i];
        if (t->kind != TABLE_EXP_RECORD) continue;
        sql_reset(&q);
        sql_add(&q, "INSERT INTO main.\"%s\" (", t->name);
        add_cols(&q, t, "", true, false);
        sql_add(&q, ") SELECT * FROM (SELECT ");
        bool first = true;
        for (int c = 0; c < t->n_cols; c++) {
            if (c == t->alias) continue;
            if (strcmp(t->cols[c], "experiment_id") == 0)
                sql_add(&q,
                        "%s(SELECT new_id FROM exp_map x WHERE x.src = s.src AND x.old_id = "
                        "s.experiment_id)",
                        first ? "" : ", ");
            else
                sql_add(&q, "%ss.\"%s\"", first ? "" : ", ", t->cols[c]);
            first = false;
        }
        sql_add(&q, " FROM temp.\"s_%s\" s WHERE s.src > 0 EXCEPT SELECT ", t->name);
        add_cols(&q, t, "", true, false);
        sql_add(&q, " FROM main.\"%s\") ORDER BY 1;", t->name);
        rc = exec_q(m, &q, "cannot merge an experiment table", err);
    }
    mem_free(q.text);
    return rc;
}

/* Rows of annotation tables (tag, note) that OUT does not hold yet, from
 * every copy of a trial (the winner's or not): experiment_id through
 * exp_map, trial_id to the id its identity has in OUT (NULL stays NULL: an
 * experiment's own).  A row whose trial is not in OUT is left out.  OR IGNORE:
 * the same tag from two inputs, made at different times, is kept once. */
static int merge_annotations(merge_t *m, err_t *err) {
    sql_t q = {0};
    int rc = 0;
    for (int i = 0; i < m->n_tables && rc == 0; i++) {
        const table_t *t = &m->tables[i];
        if (t->kind != TABLE_ANNOTATION) continue;
        sql_reset(&q);
        sql_add(&q, "INSERT OR IGNORE INTO main.\"%s\" (", t->name);
        add_cols(&q, t, "", true, false);
        sql_add(&q, ") SELECT * FROM (SELECT ");
        bool first = true;
        for (int c = 0; c < t->n_cols; c++) {
            if (c == t->alias) continue;
            sql_add(&q, "%s", first ? "" : ", ");
            first = false;
            if (strcmp(t->cols[c], "experiment_id") == 0)
                sql_add(&q, "(SELECT new_id FROM exp_map x WHERE x.src = s.src AND x.old_id = "
                            "s.experiment_id)");
            else if (strcmp(t->cols[c], "trial_id") == 0)
                sql_add(&q, "(SELECT w.new_id FROM cand c JOIN win w ON w.exp_name = c.exp_name "
                            "AND w.config = c.config AND w.repeat = c.repeat WHERE c.src = s.src "
                            "AND c.old_id = s.trial_id)");
            else
                sql_add(&q, "s.\"%s\"", t->cols[c]);
        }
        sql_add(&q,
                " FROM temp.\"s_%s\" s WHERE s.src > 0 AND (s.trial_id IS NULL OR EXISTS "
                "(SELECT 1 FROM cand c WHERE c.src = s.src AND c.old_id = s.trial_id)) "
                "EXCEPT SELECT ",
                t->name);
        add_cols(&q, t, "", true, false);
        sql_add(&q, " FROM main.\"%s\") ORDER BY 1", t->name); /* every column: order-free */
        for (int c = 2; c <= t->n_cols - (t->alias >= 0); c++)
            sql_add(&q, ", %d", c);
        sql_add(&q, ";");
        rc = exec_q(m, &q, "cannot merge an annotation table", err);
    }
    mem_free(q.text);
    return rc;
}

/* The columns whose values must agree between two copies of a finished
 * trial (besides the record tables). */
static const char *const result_cols[] = {"model", "data_seed",   "init_seed",  "status",
                                          "error", "failed_step", "final_step", "n_params"};

/* Trials: candidates, winners, new ids. */
static int choose_trials(merge_t *m, err_t *err) {
    const char *sql =
        "CREATE TEMP TABLE cand AS "
        "SELECT s.src, s.id AS old_id, e.name AS exp_name, s.config, s.repeat, "
        "  CASE s.status WHEN 'done' THEN 3 WHEN 'failed' THEN 2 ELSE 1 END AS rank, "
        "  s.started, s.finished, s.host, s.pid, s.pid_start, s.seconds_train, s.seconds_store "
        "FROM s_trial s JOIN s_experiment e ON e.src = s.src AND e.id = s.experiment_id "
        "UNION ALL "
        "SELECT 0, t.id, e.name, t.config, t.repeat, "
        "  CASE t.status WHEN 'done' THEN 3 WHEN 'failed' THEN 2 ELSE 1 END, "
        "  t.started, t.finished, t.host, t.pid, t.pid_start, t.seconds_train, t.seconds_store "
        "FROM main.trial t JOIN main.experiment e ON e.id = t.experiment_id;"
        "CREATE INDEX temp.cand_i ON cand (exp_name, config, repeat);"
        /* The winner of each identity: best rank, OUT's own copy on a tie,
         * then the earliest run (content, not input order). */
        "CREATE TEMP TABLE win AS SELECT w.src, w.old_id, w.exp_name, w.config, w.repeat, w.rank, "
        "  (SELECT o.old_id FROM cand o WHERE o.src = 0 AND o.exp_name = w.exp_name AND "
        "   o.config = w.config AND o.repeat = w.repeat) AS main_id, NULL AS new_id "
        "FROM (SELECT c.*, row_number() OVER (PARTITION BY exp_name, config, repeat ORDER BY "
        "  rank DESC, src = 0 DESC, started, finished, host, pid, pid_start, seconds_train, "
        "  seconds_store, src) AS rn FROM cand c) w WHERE rn = 1;"
        "UPDATE win SET new_id = main_id WHERE main_id IS NOT NULL;"
        "UPDATE win SET new_id = n.nid FROM (SELECT rowid AS r, (SELECT coalesce(max(id), 0) FROM "
        "  main.trial) + row_number() OVER (ORDER BY exp_name, repeat, config) AS nid FROM win "
        "  WHERE main_id IS NULL) n WHERE win.rowid = n.r;"
        "CREATE INDEX temp.win_i ON win (src, old_id);";
    return exec(m, sql, "cannot choose the trials", err);
}

/* Writes the winning copies of the inputs: replaces OUT's lesser copies,
 * inserts the new trials and their records. */
static int write_trials(merge_t *m, err_t *err) {
    sql_t q = {0};
    /* OUT's copies that lose: their records, then the rows. */
    for (int i = 0; i < m->n_tables; i++)
        if (m->tables[i].kind == TABLE_RECORD)
            sql_add(&q,
                    "DELETE FROM main.\"%s\" WHERE trial_id IN (SELECT main_id FROM win WHERE "
                    "src > 0 AND main_id IS NOT NULL);",
                    m->tables[i].name);
    sql_add(&q, "DELETE FROM main.trial WHERE id IN (SELECT main_id FROM win WHERE src > 0 AND "
                "main_id IS NOT NULL);");
    const table_t *t = find_table(m, "trial");
    sql_add(&q, "INSERT INTO main.trial (");
    add_cols(&q, t, "", false, false);
    sql_add(&q, ") SELECT ");
    for (int c = 0; c < t->n_cols; c++) {
        const char *col = t->cols[c];
        if (c) sql_add(&q, ", ");
        if (c == t->alias)
            sql_add(&q, "w.new_id");
        else if (strcmp(col, "experiment_id") == 0)
            sql_add(&q, "(SELECT new_id FROM exp_map x WHERE x.src = s.src AND x.old_id = "
                        "s.experiment_id)");
        else if (t->refs[c][0])
            sql_add(&q,
                    "(SELECT new_id FROM temp.\"map_%s\" x WHERE x.src = s.src AND x.old_id = "
                    "s.\"%s\")",
                    t->refs[c], col);
        else if (strcmp(col, "status") == 0)
            sql_add(&q, "CASE s.status WHEN 'running' THEN 'pending' ELSE s.status END");
        else if (strcmp(col, "host") == 0 || strcmp(col, "pid") == 0 ||
                 strcmp(col, "pid_start") == 0 || strcmp(col, "started") == 0)
            sql_add(&q, "CASE s.status WHEN 'running' THEN NULL ELSE s.\"%s\" END", col);
        else
            sql_add(&q, "s.\"%s\"", col);
    }
    sql_add(&q, " FROM win w JOIN s_trial s ON s.src = w.src AND s.id = w.old_id WHERE w.src > 0 "
                "ORDER BY w.new_id;");
    for (int i = 0; i < m->n_tables; i++) {
        const table_t *r = &m->tables[i];
        if (r->kind != TABLE_RECORD) continue;
        bool alias_is_trial = r->alias >= 0 && strcmp(r->cols[r->alias], "trial_id") == 0;
        sql_add(&q, "INSERT INTO main.\"%s\" (trial_id", r->name);
        for (int c = 0; c < r->n_cols; c++)
            if ((c != r->alias || alias_is_trial) && strcmp(r->cols[c], "trial_id") != 0)
                sql_add(&q, ", \"%s\"", r->cols[c]);
        sql_add(&q, ") SELECT w.new_id");
        for (int c = 0; c < r->n_cols; c++)
            if ((c != r->alias || alias_is_trial) && strcmp(r->cols[c], "trial_id") != 0)
                sql_add(&q, ", s.\"%s\"", staged_col(r->cols[c]));
        sql_add(&q,
                " FROM win w JOIN temp.\"s_%s\" s ON s.src = w.src AND s.trial_id = w.old_id "
                "WHERE w.src > 0 ORDER BY w.new_id",
                r->name);
        for (int c = 0; c < r->n_cols; c++)
            if (c != r->alias && strcmp(r->cols[c], "trial_id") != 0)
                sql_add(&q, ", s.\"%s\"", staged_col(r->cols[c]));
        sql_add(&q, ";");
    }
    int rc = exec_q(m, &q, "cannot write the trials", err);
    mem_free(q.text);
    return rc;
}

/* Compares every other finished copy with the one now in OUT; reports the
 * differences.  *conflicts receives their count. */
static int compare_copies(merge_t *m, merge_summary_t *sum, err_t *err) {
    sql_t q = {0};
    sql_add(&q, "CREATE TEMP TABLE cmp AS SELECT c.src, c.old_id, w.new_id, w.src AS win_src, "
                "c.exp_name, c.config, c.repeat FROM cand c JOIN win w ON w.exp_name = c.exp_name "
                "AND w.config = c.config AND w.repeat = c.repeat WHERE c.rank = w.rank AND "
                "c.rank >= 2 AND NOT (c.src = w.src AND c.old_id = w.old_id);"
                "CREATE TEMP TABLE diff (src INTEGER, old_id INTEGER, what TEXT);"
                "INSERT INTO diff SELECT c.src, c.old_id, 'trial' FROM cmp c JOIN s_trial s ON "
                "s.src = c.src AND s.id = c.old_id JOIN main.trial t ON t.id = c.new_id WHERE 0");
    for (size_t k = 0; k < sizeof result_cols / sizeof result_cols[0]; k++)
        sql_add(&q, " OR s.\"%s\" IS NOT t.\"%s\"", result_cols[k], result_cols[k]);
    sql_add(&q, ";");
    for (int i = 0; i < m->n_tables; i++) {
        const table_t *r = &m->tables[i];
        if (r->kind != TABLE_RECORD) continue;
        bool alias_is_trial = r->alias >= 0 && strcmp(r->cols[r->alias], "trial_id") == 0;
        sql_t cols = {0}, staged = {0}; /* the columns in OUT, in the staging copy */
        add_cols(&cols, r, "", !alias_is_trial, true);
        add_staged_cols(&staged, r, "", !alias_is_trial, true, false);
        if (cols.failed || staged.failed) {
            mem_free(cols.text);
            mem_free(staged.text);
            q.failed = true;
            break;
        }
        if (cols.len == 0) { /* nothing but trial_id: compare the row counts */
            sql_add(&cols, "count(*)");
            sql_add(&staged, "count(*)");
        }
        sql_add(&q,
                "INSERT INTO diff SELECT c.src, c.old_id, '%s' FROM cmp c WHERE "
                "EXISTS (SELECT %s FROM temp.\"s_%s\" s WHERE s.src = c.src AND s.trial_id = "
                "c.old_id EXCEPT SELECT %s FROM main.\"%s\" x WHERE x.trial_id = c.new_id) OR "
                "EXISTS (SELECT %s FROM main.\"%s\" x WHERE x.trial_id = c.new_id EXCEPT SELECT %s "
                "FROM temp.\"s_%s\" s WHERE s.src = c.src AND s.trial_id = c.old_id);",
                r->name, staged.text, r->name, cols.text, r->name, cols.text, r->name, staged.text,
                r->name);
        mem_free(cols.text);
        mem_free(staged.text);
    }
    int rc = exec_q(m, &q, "cannot compare the duplicate trials", err);
    mem_free(q.text);
    if (rc) return -1;

    long long n_cmp, n_sup;
    if (query_int(m, "SELECT count(*) FROM cmp", &n_cmp, err)) return -1;
    sqlite3_stmt *st;
    /* The usual cause, when the provenance says so: another OpenBLAS core. */
    const table_t *trial = find_table(m, "trial"), *run = find_table(m, "run");
    const bool cores = run && col_index(trial, "run_id") >= 0 && col_index(run, "blas_core") >= 0;
    sql_t report = {0};
    sql_add(&report,
            "SELECT c.src, c.win_src, c.exp_name, c.repeat, c.config, group_concat(d.what, "
            "', '), %s FROM cmp c JOIN (SELECT DISTINCT src, old_id, what FROM diff ORDER "
            "BY what) d ON d.src = c.src AND d.old_id = c.old_id GROUP BY c.src, "
            "c.old_id ORDER BY c.exp_name, c.repeat, c.config, c.src",
            cores ? "(SELECT r.blas_core FROM s_trial x JOIN s_run r ON r.src = x.src AND r.id = "
                    "x.run_id WHERE x.src = c.src AND x.id = c.old_id), (SELECT r.blas_core FROM "
                    "main.trial t JOIN main.run r ON r.id = t.run_id WHERE t.id = c.new_id)"
                  : "NULL, NULL");
    if (report.failed) return err_set(err, ERR_FAIL, "out of memory");
    int prepared = sqlite3_prepare_v2(m->db, report.text, -1, &st, NULL);
    mem_free(report.text);
    if (prepared != SQLITE_OK)
        return err_set(err, ERR_FAIL, "%s: %s", m->out_path, sqlite3_errmsg(m->db));
    int conflicts = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        conflicts++;
        if (m->note) {
            char line[8192];
            const char *core_a = (const char *)sqlite3_column_text(st, 6);
            char core_note[256] = "";
            if (core_a && sqlite3_column_text(st, 7) &&
                strcmp(core_a, (const char *)sqlite3_column_text(st, 7)) != 0)
                snprintf(core_note, sizeof core_note,
                         "; they ran on different OpenBLAS cores (%s, %s): see MTLAB_BLAS_CORE",
                         sqlite3_column_text(st, 7), core_a);
            snprintf(line, sizeof line,
                     "conflict: experiment '%s', repeat %d, config %s: %s and %s hold different "
                     "results (%s)%s",
                     sqlite3_column_text(st, 2), sqlite3_column_int(st, 3),
                     sqlite3_column_text(st, 4), src_name(m, sqlite3_column_int(st, 1)),
                     src_name(m, sqlite3_column_int(st, 0)), sqlite3_column_text(st, 5), core_note);
            m->note(line, m->ctx);
        }
    }
    sqlite3_finalize(st);
    sum->conflicts = conflicts;
    sum->duplicates = (int)n_cmp - conflicts;
    /* Failed copies set aside for a done one. */
    if (sqlite3_prepare_v2(m->db,
                           "SELECT c.src, w.src, c.exp_name, c.repeat, c.config FROM cand c JOIN "
                           "win w ON w.exp_name = c.exp_name AND w.config = c.config AND w.repeat "
                           "= c.repeat WHERE c.rank = 2 AND w.rank = 3 ORDER BY c.exp_name, "
                           "c.repeat, c.config, c.src",
                           -1, &st, NULL) != SQLITE_OK)
        return err_set(err, ERR_FAIL, "%s: %s", m->out_path, sqlite3_errmsg(m->db));
    n_sup = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        n_sup++;
        if (m->note) {
            char line[8192];
            snprintf(line, sizeof line,
                     "note: experiment '%s', repeat %d, config %s: failed in %s, done in %s: "
                     "the done copy is kept",
                     sqlite3_column_text(st, 2), sqlite3_column_int(st, 3),
                     sqlite3_column_text(st, 4), src_name(m, sqlite3_column_int(st, 0)),
                     src_name(m, sqlite3_column_int(st, 1)));
            m->note(line, m->ctx);
        }
    }
    sqlite3_finalize(st);
    sum->superseded = (int)n_sup;
    return 0;
}

int store_merge(const char *out_path, const char *const *inputs, int n, const merge_opts_t *opts,
                merge_note_fn note, void *ctx, merge_summary_t *sum, err_t *err) {
    memset(sum, 0, sizeof *sum);
    /* Every input readable before OUT is created or touched. */
    for (int i = 0; i < n; i++) {
        struct stat sb;
        if (stat(inputs[i], &sb) != 0 || !S_ISREG(sb.st_mode) || access(inputs[i], R_OK) != 0)
            return err_set(err, ERR_FAIL, "cannot read %s: no such file", inputs[i]);
    }
    store_t *s;
    if (store_open(&s, out_path, 0, err)) return -1;
    merge_t m = {.db = store_db(s),
                 .out_path = out_path,
                 .inputs = inputs,
                 .n_inputs = n,
                 .note = note,
                 .ctx = ctx};
    m.tables = mem_calloc(MERGE_MAX_TABLES, sizeof *m.tables);
    int rc = -1;
    if (!m.tables) {
        err_set(err, ERR_FAIL, "%s: out of memory", out_path);
        goto done;
    }
    if (read_schema(&m, err) || make_staging(&m, err)) goto done;
    for (int i = 0; i < n; i++) {
        bool seen = same_file(inputs[i], out_path);
        for (int j = 0; j < i && !seen; j++)
            seen = same_file(inputs[i], inputs[j]);
        if (seen) {
            sum->skipped++;
            continue;
        }
        if (stage_input(&m, i + 1, err)) goto done;
        sum->inputs++;
    }
    if (exec(&m, "BEGIN IMMEDIATE", "cannot start the write transaction", err)) goto done;
    /* A replaced trial is deleted and written again under its id: the
     * annotations pointing at it are checked at COMMIT, not in between. */
    if (exec(&m, "PRAGMA defer_foreign_keys = ON", "cannot defer foreign keys", err)) goto rollback;
    if (merge_experiments(&m, opts && opts->allow_versions, sum, err) || choose_trials(&m, err) ||
        merge_entities(&m, err) || merge_exp_records(&m, err) || write_trials(&m, err) ||
        merge_annotations(&m, err) || compare_copies(&m, sum, err))
        goto rollback;
    long long added, replaced;
    if (query_int(&m, "SELECT count(*) FROM win WHERE src > 0 AND main_id IS NULL", &added, err) ||
        query_int(&m, "SELECT count(*) FROM win WHERE src > 0 AND main_id IS NOT NULL", &replaced,
                  err))
        goto rollback;
    sum->trials_added = (int)added;
    sum->trials_replaced = (int)replaced;
    if (sum->conflicts) {
        err_set(err, ERR_FAIL,
                "%d duplicate trial%s hold%s different results (listed above): nothing was "
                "written to %s",
                sum->conflicts, sum->conflicts == 1 ? "" : "s", sum->conflicts == 1 ? "s" : "",
                out_path);
        goto rollback;
    }
    if (exec(&m, "COMMIT", "cannot commit the merge", err)) goto rollback;
    rc = 0;
    goto done;
rollback:
    sqlite3_exec(m.db, "ROLLBACK", NULL, NULL, NULL);
    sum->trials_added = sum->trials_replaced = 0;
    sum->experiments_added = 0;
done:
    mem_free(m.tables);
    store_close(s);
    return rc;
}
