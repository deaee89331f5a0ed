/* query.c -- reading a store for the CLI (contract: query.h).
 *
 * Everything here goes through store_query_each(): one statement, rows handed
 * to a callback as text cells with their SQLite type.  The in-memory table
 * (store_query) serves the small results `ls` and `show` print; `sql`
 * (store_query_print) and export stream rows straight to their output, so a
 * large result never has to fit in memory.
 *
 * Only queries run here.  A statement is refused before it runs unless
 * SQLite says it changes no database file (sqlite3_stmt_readonly) and an
 * authorizer saw nothing but reads while compiling it: that keeps out what
 * a read-only connection alone does not stop (VACUUM INTO and ATTACH create
 * files; PRAGMA query_only=0 would lift the connection's guard). */
#include "store/query.h"
#include "core/mem.h"

#include "core/files.h"
#include "core/numtext.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <csv.h>
#include <sqlite3.h>

static bool only_blank(const char *s) {
    for (; *s; s++)
        if (!isspace((unsigned char)*s)) return false;
    return true;
}

/* Grows a per-column buffer to hold at least `need` bytes. */
static int reserve(char **buf, size_t *cap, size_t need) {
    if (*cap >= need) return 0;
    size_t n = need < 64 ? 64 : need;
    char *p = mem_realloc(*buf, n);
    if (!p) return -1;
    *buf = p;
    *cap = n;
    return 0;
}

/* ---- only queries ------------------------------------------------------ */

/* What the authorizer refused first, for the message. */
typedef struct {
    char refused[128];
} guard_t;

/* Pragmas that only report: without a value they read a setting or list
 * the schema; those marked `arg` also take an object name or a count. */
static const struct {
    const char *name;
    bool arg;
} pragma_reads[] = {
    {"application_id", false},  {"collation_list", false}, {"compile_options", false},
    {"database_list", false},   {"encoding", false},       {"foreign_key_check", true},
    {"foreign_key_list", true}, {"foreign_keys", false},   {"freelist_count", false},
    {"function_list", false},   {"index_info", true},      {"index_list", true},
    {"index_xinfo", true},      {"integrity_check", true}, {"module_list", false},
    {"page_count", false},      {"page_size", false},      {"pragma_list", false},
    {"quick_check", true},      {"schema_version", false}, {"table_info", true},
    {"table_list", true},       {"table_xinfo", true},     {"user_version", false},
};

static bool pragma_reads_only(const char *name, const char *value) {
    for (size_t i = 0; name && i < sizeof pragma_reads / sizeof pragma_reads[0]; i++)
        if (sqlite3_stricmp(name, pragma_reads[i].name) == 0)
            return value == NULL || pragma_reads[i].arg;
    return false;
}

static const char *action_name(int action) {
    switch (action) {
    case SQLITE_INSERT:
        return "INSERT";
    case SQLITE_UPDATE:
        return "UPDATE";
    case SQLITE_DELETE:
        return "DELETE";
    case SQLITE_ATTACH:
        return "ATTACH";
    case SQLITE_DETACH:
        return "DETACH";
    case SQLITE_TRANSACTION:
    case SQLITE_SAVEPOINT:
        return "a transaction";
    case SQLITE_ALTER_TABLE:
        return "ALTER TABLE";
    case SQLITE_REINDEX:
        return "REINDEX";
    case SQLITE_ANALYZE:
        return "ANALYZE";
    default:
        return "a statement that changes the schema";
    }
}

/* The authorizer: reads, functions and reporting pragmas; nothing else. */
static int guard_authorize(void *ctx, int action, const char *a, const char *b, const char *db,
                           const char *trigger) {
    guard_t *g = ctx;
    switch (action) {
    case SQLITE_SELECT:
    case SQLITE_READ:
    case SQLITE_FUNCTION:
    case SQLITE_RECURSIVE:
        return SQLITE_OK;
    case SQLITE_UPDATE:
        /* Table-valued functions (json_each, pragma_table_info) register
         * their table in the in-memory schema, which is reported as an
         * UPDATE of sqlite_master; a real one is not read-only for
         * sqlite3_stmt_readonly. */
        if (a &&
            (sqlite3_stricmp(a, "sqlite_master") == 0 || sqlite3_stricmp(a, "sqlite_schema") == 0))
            return SQLITE_OK;
        break;
    case SQLITE_PRAGMA:
        if (pragma_reads_only(a, b)) return SQLITE_OK;
        if (!g->refused[0])
            snprintf(g->refused, sizeof g->refused, "PRAGMA %s%s%s", a ? a : "", b ? "=" : "",
                     b ? b : "");
        return SQLITE_DENY;
    default:
        break;
    }
    if (!g->refused[0]) snprintf(g->refused, sizeof g->refused, "%s", action_name(action));
    return SQLITE_DENY;
}

/* A failed statement: ERR_USAGE when SQLite blames the statement (a syntax
 * error, an unknown table or column, a bad function argument: SQLITE_ERROR),
 * ERR_FAIL for the store (busy, corrupt, I/O, out of memory). */
static int sql_error_kind(sqlite3 *db) {
    return (sqlite3_errcode(db) & 0xff) == SQLITE_ERROR ? ERR_USAGE : ERR_FAIL;
}

static int refuse(store_t *s, const char *what, err_t *err) {
    return err_set(err, ERR_FAIL, "read-only: %s refused before it ran (%s is opened read-only)",
                   what, store_path(s));
}

/* Compiles ONE statement of sql under the guard (the authorizer must be
 * cleared by the caller after sqlite3_finalize: SQLite may recompile the
 * statement while it steps).  Refuses a statement that is not a query. */
static int prepare_query(store_t *s, const char *sql, guard_t *g, sqlite3_stmt **out, err_t *err) {
    sqlite3 *db = store_db(s);
    sqlite3_stmt *st = NULL;
    const char *tail = NULL;
    *out = NULL;
    sqlite3_set_authorizer(db, guard_authorize, g);
    if (sqlite3_prepare_v2(db, sql, -1, &st, &tail) != SQLITE_OK) {
        if (g->refused[0]) return refuse(s, g->refused, err);
        /* SQLITE_ERROR: the statement itself is wrong (syntax, no such table
         * or column) -- the user's input; anything else is the store's. */
        return err_set(err, sql_error_kind(db), "%s: %s", store_path(s), sqlite3_errmsg(db));
    }
    if (!st)
        return err_set(err, ERR_USAGE, "no SQL statement in '%s' (for %s)", sql, store_path(s));
    if (tail && !only_blank(tail)) {
        /* Comments and semicolons may follow; another statement may not
         * (compiled only to tell, never run). */
        sqlite3_stmt *next = NULL;
        int rc = sqlite3_prepare_v2(db, tail, -1, &next, NULL);
        sqlite3_finalize(next);
        if (rc != SQLITE_OK || next) {
            sqlite3_finalize(st);
            return err_set(err, ERR_USAGE,
                           "one SQL statement at a time, please (found more after "
                           "the first ';'; nothing was run on %s)",
                           store_path(s));
        }
    }
    if (!sqlite3_stmt_readonly(st)) {
        /* VACUUM and VACUUM INTO, which the authorizer is not asked
         * about, and whatever it let through that writes after all */
        char what[128];
        const char *text = sqlite3_sql(st);
        while (isspace((unsigned char)*text))
            text++;
        snprintf(what, sizeof what, "%.60s%s", text, strlen(text) > 60 ? "..." : "");
        sqlite3_finalize(st);
        return refuse(s, what, err);
    }
    *out = st;
    return 0;
}

int store_query_each(store_t *s, const char *sql, store_row_fn on_header, store_row_fn fn,
                     void *ctx, err_t *err) {
    sqlite3 *db = store_db(s);
    sqlite3_stmt *st = NULL;
    guard_t guard = {""};
    if (prepare_query(s, sql, &guard, &st, err)) {
        sqlite3_set_authorizer(db, NULL, NULL);
        return -1;
    }
    const int n = sqlite3_column_count(st);
    const char **names = mem_calloc((size_t)n + 1, sizeof *names);
    const char **cells = mem_calloc((size_t)n + 1, sizeof *cells);
    int *types = mem_calloc((size_t)n + 1, sizeof *types);
    char **bufs = mem_calloc((size_t)n + 1, sizeof *bufs);
    size_t *caps = mem_calloc((size_t)n + 1, sizeof *caps);
    int status = -1;
    if (!names || !cells || !types || !bufs || !caps) {
        err_set(err, ERR_FAIL, "out of memory");
        goto done;
    }
    for (int c = 0; c < n; c++) {
        names[c] = sqlite3_column_name(st, c);
        types[c] = SQLITE_TEXT;
    }
    store_row_t row = {n, names, types, cells};
    if (on_header) {
        for (int c = 0; c < n; c++)
            cells[c] = names[c];
        if (on_header(ctx, &row, err)) goto done;
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        for (int c = 0; c < n; c++) {
            types[c] = sqlite3_column_type(st, c);
            switch (types[c]) {
            case SQLITE_INTEGER:
                if (reserve(&bufs[c], &caps[c], 32)) goto oom;
                snprintf(bufs[c], caps[c], "%lld", (long long)sqlite3_column_int64(st, c));
                cells[c] = bufs[c];
                break;
            case SQLITE_FLOAT:
                if (reserve(&bufs[c], &caps[c], 32)) goto oom;
                num_to_text(sqlite3_column_double(st, c), bufs[c], caps[c]);
                cells[c] = bufs[c];
                break;
            case SQLITE_BLOB: {
                const unsigned char *blob = sqlite3_column_blob(st, c);
                size_t len = (size_t)sqlite3_column_bytes(st, c);
                if (reserve(&bufs[c], &caps[c], 2 * len + 1)) goto oom;
                static const char hex[] = "0123456789abcdef";
                for (size_t i = 0; i < len; i++) {
                    bufs[c][2 * i] = hex[blob[i] >> 4];
                    bufs[c][2 * i + 1] = hex[blob[i] & 15];
                }
                bufs[c][2 * len] = '\0';
                cells[c] = bufs[c];
                break;
            }
            case SQLITE_NULL:
                cells[c] = NULL;
                break;
            default: /* SQLITE_TEXT */
                cells[c] = (const char *)sqlite3_column_text(st, c);
                if (!cells[c]) goto oom;
                break;
            }
        }
        if (fn && fn(ctx, &row, err)) goto done;
    }
    if (rc != SQLITE_DONE) {
        err_set(err, sql_error_kind(db), "%s: %s", store_path(s), sqlite3_errmsg(db));
        goto done;
    }
    status = 0;
    goto done;
oom:
    err_set(err, ERR_FAIL, "out of memory reading a query result");
done:
    for (int c = 0; bufs && c < n; c++)
        mem_free(bufs[c]);
    mem_free(bufs);
    mem_free(caps);
    mem_free(names);
    mem_free(cells);
    mem_free(types);
    sqlite3_finalize(st);
    sqlite3_set_authorizer(db, NULL, NULL);
    return status;
}

/* ---- in-memory tables -------------------------------------------------- */

typedef struct {
    store_table_t *t;
    int cap_rows;
} collect_t;

static int collect_header(void *ctx, const store_row_t *row, err_t *err) {
    store_table_t *t = ((collect_t *)ctx)->t;
    t->n_cols = row->n_cols;
    t->names = mem_calloc((size_t)row->n_cols + 1, sizeof *t->names);
    if (!t->names) return err_set(err, ERR_FAIL, "out of memory");
    for (int c = 0; c < row->n_cols; c++)
        if (!(t->names[c] = mem_strdup(row->names[c] ? row->names[c] : "")))
            return err_set(err, ERR_FAIL, "out of memory");
    return 0;
}

static int collect_row(void *ctx, const store_row_t *row, err_t *err) {
    collect_t *c = ctx;
    store_table_t *t = c->t;
    const int n = t->n_cols;
    if (t->n_rows == c->cap_rows) {
        int cap = c->cap_rows ? 2 * c->cap_rows : 16;
        char **cells = mem_realloc(t->cells, (size_t)cap * (size_t)(n ? n : 1) * sizeof *cells);
        if (!cells) return err_set(err, ERR_FAIL, "out of memory");
        t->cells = cells;
        int *types = mem_realloc(t->types, (size_t)cap * (size_t)(n ? n : 1) * sizeof *types);
        if (!types) return err_set(err, ERR_FAIL, "out of memory");
        t->types = types;
        c->cap_rows = cap;
    }
    for (int k = 0; k < n; k++) {
        size_t i = (size_t)t->n_rows * (size_t)n + (size_t)k;
        t->types[i] = row->types[k];
        t->cells[i] = NULL;
        if (row->cells[k] && !(t->cells[i] = mem_strdup(row->cells[k]))) {
            for (int j = 0; j < k; j++)
                mem_free(t->cells[(size_t)t->n_rows * (size_t)n + (size_t)j]);
            return err_set(err, ERR_FAIL, "out of memory");
        }
    }
    t->n_rows++;
    return 0;
}

int store_query(store_t *s, const char *sql, store_table_t **out, err_t *err) {
    *out = NULL;
    store_table_t *t = mem_calloc(1, sizeof *t);
    if (!t) return err_set(err, ERR_FAIL, "out of memory");
    collect_t c = {t, 0};
    if (store_query_each(s, sql, collect_header, collect_row, &c, err)) {
        store_table_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

void store_table_free(store_table_t *t) {
    if (!t) return;
    for (size_t i = 0; t->cells && i < (size_t)t->n_rows * (size_t)t->n_cols; i++)
        mem_free(t->cells[i]);
    for (int c = 0; t->names && c < t->n_cols; c++)
        mem_free(t->names[c]);
    mem_free(t->cells);
    mem_free(t->types);
    mem_free(t->names);
    mem_free(t);
}

const char *store_table_cell(const store_table_t *t, int row, int col) {
    return t->cells[(size_t)row * (size_t)t->n_cols + (size_t)col];
}

int store_table_type(const store_table_t *t, int row, int col) {
    return t->types[(size_t)row * (size_t)t->n_cols + (size_t)col];
}

static int write_error(err_t *err) {
    return err_set(err, ERR_FAIL, "cannot write the output: %s",
                   errno ? strerror(errno) : "write error");
}

/* What the aligned table shows for a cell. */
static const char *display(const char *cell, int type, char *buf, size_t size) {
    switch (type) {
    case SQLITE_NULL:
        return "";
    case SQLITE_FLOAT:
        snprintf(buf, size, "%.6g", strtod(cell, NULL));
        return buf;
    case SQLITE_BLOB:
        snprintf(buf, size, "<%zu bytes>", strlen(cell) / 2);
        return buf;
    default:
        return cell;
    }
}

/* Display width: UTF-8 code points, not bytes. */
static int text_width(const char *s) {
    int w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xc0) != 0x80) w++;
    return w;
}

static bool is_number_type(int type) {
    return type == SQLITE_INTEGER || type == SQLITE_FLOAT;
}

/* The columns of an aligned table: each as wide as its widest text (header
 * included) among the rows measured; numeric when those rows hold numbers
 * and NULLs only (the header is then right-aligned too). */
typedef struct {
    int n_cols;
    int *width;    /* [n_cols] */
    bool *numeric; /* [n_cols] */
} layout_t;

static void layout_free(layout_t *L) {
    mem_free(L->width);
    mem_free(L->numeric);
    L->width = NULL;
    L->numeric = NULL;
}

static int layout_measure(layout_t *L, const store_table_t *t, err_t *err) {
    const int n = t->n_cols;
    L->n_cols = n;
    L->width = mem_calloc((size_t)n + 1, sizeof *L->width);
    L->numeric = mem_calloc((size_t)n + 1, sizeof *L->numeric);
    if (!L->width || !L->numeric) {
        layout_free(L);
        return err_set(err, ERR_FAIL, "out of memory");
    }
    char buf[64];
    for (int c = 0; c < n; c++) {
        L->width[c] = text_width(t->names[c]);
        int numbers = 0, others = 0;
        for (int r = 0; r < t->n_rows; r++) {
            int type = store_table_type(t, r, c);
            int w = text_width(display(store_table_cell(t, r, c), type, buf, sizeof buf));
            if (w > L->width[c]) L->width[c] = w;
            if (is_number_type(type))
                numbers++;
            else if (type != SQLITE_NULL)
                others++;
        }
        L->numeric[c] = numbers > 0 && others == 0;
    }
    return 0;
}

/* One line of the table.  A text wider than its column (a row after those
 * measured) is printed whole, pushing the rest of its line right. */
static void put_blanks(FILE *f, int n) {
    for (; n > 0; n--)
        putc(' ', f);
}

static void print_line(FILE *f, const layout_t *L, const char *const *texts, const bool *right) {
    for (int c = 0; c < L->n_cols; c++) {
        int pad = L->width[c] - text_width(texts[c]);
        if (c > 0) fputs("  ", f);
        if (right[c]) put_blanks(f, pad);
        fputs(texts[c], f);
        if (!right[c] && c < L->n_cols - 1) put_blanks(f, pad); /* no trailing blanks */
    }
    putc('\n', f);
}

/* The header line and the rule under it. */
static int print_header(FILE *f, const layout_t *L, const char *const *names, err_t *err) {
    const int n = L->n_cols;
    char **rules = mem_calloc((size_t)n + 1, sizeof *rules);
    bool *left = mem_calloc((size_t)n + 1, sizeof *left);
    int status = 0;
    for (int c = 0; rules && c < n; c++) {
        int w = L->width[c] < 255 ? L->width[c] : 255;
        if (!(rules[c] = mem_alloc((size_t)w + 1))) break;
        memset(rules[c], '-', (size_t)w);
        rules[c][w] = '\0';
    }
    if (!rules || !left || (n > 0 && !rules[n - 1])) {
        status = err_set(err, ERR_FAIL, "out of memory");
    } else {
        print_line(f, L, names, L->numeric);
        print_line(f, L, (const char *const *)rules, left);
    }
    for (int c = 0; rules && c < n; c++)
        mem_free(rules[c]);
    mem_free(rules);
    mem_free(left);
    return status;
}

/* A row of cells (types as in store_row_t); texts and right hold n_cols. */
static void print_row(FILE *f, const layout_t *L, const char *const *cells, const int *types,
                      const char **texts, bool *right, char (*bufs)[64]) {
    for (int c = 0; c < L->n_cols; c++) {
        texts[c] = display(cells[c], types[c], bufs[c], sizeof bufs[c]);
        right[c] = is_number_type(types[c]);
    }
    print_line(f, L, texts, right);
}

/* Scratch space of print_row for n columns. */
typedef struct {
    const char **texts;
    bool *right;
    char (*bufs)[64];
} row_scratch_t;

static void scratch_free(row_scratch_t *x) {
    mem_free(x->texts);
    mem_free(x->right);
    mem_free(x->bufs);
    *x = (row_scratch_t){0};
}

static int scratch_new(row_scratch_t *x, int n, err_t *err) {
    x->texts = mem_calloc((size_t)n + 1, sizeof *x->texts);
    x->right = mem_calloc((size_t)n + 1, sizeof *x->right);
    x->bufs = mem_calloc((size_t)n + 1, sizeof *x->bufs);
    if (x->texts && x->right && x->bufs) return 0;
    scratch_free(x);
    return err_set(err, ERR_FAIL, "out of memory");
}

/* Header, rule and every row of t under layout L. */
static int print_table(FILE *f, const layout_t *L, const store_table_t *t, err_t *err) {
    row_scratch_t x;
    if (scratch_new(&x, t->n_cols, err)) return -1;
    int rc = print_header(f, L, (const char *const *)t->names, err);
    for (int r = 0; rc == 0 && r < t->n_rows; r++) {
        size_t first = (size_t)r * (size_t)t->n_cols;
        print_row(f, L, (const char *const *)&t->cells[first], &t->types[first], x.texts, x.right,
                  x.bufs);
    }
    scratch_free(&x);
    return rc;
}

int store_table_print(FILE *f, const store_table_t *t, err_t *err) {
    if (t->n_cols == 0) return 0;
    layout_t L;
    if (layout_measure(&L, t, err)) return -1;
    errno = 0;
    int rc = print_table(f, &L, t, err);
    layout_free(&L);
    if (rc == 0 && ferror(f)) return write_error(err);
    return rc;
}

int store_csv_line(FILE *f, int n, const char *const *cells, const int *types, err_t *err) {
    errno = 0;
    for (int c = 0; c < n; c++) {
        if (c > 0) fputc(',', f);
        if (!cells[c] || types[c] == SQLITE_NULL) continue; /* NULL: an empty field */
        if (is_number_type(types[c]))
            fputs(cells[c], f);
        else if (csv_fwrite(f, cells[c], strlen(cells[c])) != 0)
            return write_error(err);
    }
    fputc('\n', f);
    if (ferror(f)) return write_error(err);
    return 0;
}

int store_table_csv(FILE *f, const store_table_t *t, err_t *err) {
    const int n = t->n_cols;
    if (n == 0) return 0;
    int *types = mem_alloc((size_t)n * sizeof *types);
    if (!types) return err_set(err, ERR_FAIL, "out of memory");
    for (int c = 0; c < n; c++)
        types[c] = SQLITE_TEXT;
    int rc = store_csv_line(f, n, (const char *const *)t->names, types, err);
    mem_free(types);
    for (int r = 0; rc == 0 && r < t->n_rows; r++)
        rc = store_csv_line(f, n, (const char *const *)&t->cells[(size_t)r * (size_t)n],
                            &t->types[(size_t)r * (size_t)n], err);
    return rc;
}

/* ---- printing as the rows come (mtlab sql) ------------------------------ */

/* The table is printed from the first STORE_PRINT_SAMPLE_ROWS rows (kept
 * in `sample` until then), every later row as it comes: memory stays that
 * of the sample whatever the size of the result. */
typedef struct {
    FILE *f;
    store_print_t format;
    long rows;
    store_table_t *sample;
    collect_t collect;
    bool printed; /* the sample (header, rule, rows) is out */
    layout_t layout;
    row_scratch_t scratch;
} printer_t;

/* Measures the sample, prints it and drops its rows. */
static int printer_flush(printer_t *p, err_t *err) {
    store_table_t *t = p->sample;
    p->printed = true;
    if (t->n_cols == 0) return 0;
    if (layout_measure(&p->layout, t, err) || scratch_new(&p->scratch, t->n_cols, err)) return -1;
    if (print_table(p->f, &p->layout, t, err)) return -1;
    for (size_t i = 0; i < (size_t)t->n_rows * (size_t)t->n_cols; i++) {
        mem_free(t->cells[i]);
        t->cells[i] = NULL;
    }
    t->n_rows = 0;
    if (ferror(p->f)) return write_error(err);
    return 0;
}

static int printer_header(void *ctx, const store_row_t *row, err_t *err) {
    printer_t *p = ctx;
    if (p->format == STORE_PRINT_CSV)
        return row->n_cols == 0 ? 0
                                : store_csv_line(p->f, row->n_cols, row->cells, row->types, err);
    return collect_header(&p->collect, row, err);
}

static int printer_row(void *ctx, const store_row_t *row, err_t *err) {
    printer_t *p = ctx;
    p->rows++;
    if (p->format == STORE_PRINT_CSV)
        return store_csv_line(p->f, row->n_cols, row->cells, row->types, err);
    if (!p->printed) {
        if (p->sample->n_rows < STORE_PRINT_SAMPLE_ROWS) return collect_row(&p->collect, row, err);
        if (printer_flush(p, err)) return -1;
    }
    if (row->n_cols == 0) return 0;
    print_row(p->f, &p->layout, row->cells, row->types, p->scratch.texts, p->scratch.right,
              p->scratch.bufs);
    if (ferror(p->f)) return write_error(err);
    return 0;
}

int store_query_print(store_t *s, const char *sql, store_print_t format, FILE *f, long *n_rows,
                      err_t *err) {
    printer_t p = {.f = f, .format = format};
    if (n_rows) *n_rows = 0;
    if (!(p.sample = mem_calloc(1, sizeof *p.sample)))
        return err_set(err, ERR_FAIL, "out of memory");
    p.collect = (collect_t){p.sample, 0};
    errno = 0;
    int rc = store_query_each(s, sql, printer_header, printer_row, &p, err);
    if (rc == 0 && format == STORE_PRINT_TABLE && !p.printed) rc = printer_flush(&p, err);
    if (rc == 0 && ferror(f)) rc = write_error(err);
    layout_free(&p.layout);
    scratch_free(&p.scratch);
    store_table_free(p.sample);
    if (rc == 0 && n_rows) *n_rows = p.rows;
    return rc;
}

/* ---- ls and show ------------------------------------------------------- */

int store_list_experiments(store_t *s, store_table_t **out, err_t *err) {
    return store_query(s,
                       "SELECT e.id, e.name, count(t.id) AS trials,"
                       "  count(CASE WHEN t.status = 'pending' THEN 1 END) AS pending,"
                       "  count(CASE WHEN t.status = 'running' THEN 1 END) AS running,"
                       "  count(CASE WHEN t.status = 'done' THEN 1 END) AS done,"
                       "  count(CASE WHEN t.status = 'failed' THEN 1 END) AS failed,"
                       "  e.created, e.description"
                       " FROM experiment e LEFT JOIN trial t ON t.experiment_id = e.id"
                       " GROUP BY e.id ORDER BY e.id",
                       out, err);
}

static char *column_strdup(sqlite3_stmt *st, int c, bool *oom) {
    if (sqlite3_column_type(st, c) == SQLITE_NULL) return NULL;
    const char *text = (const char *)sqlite3_column_text(st, c);
    char *copy = text ? mem_strdup(text) : NULL;
    if (!copy) *oom = true;
    return copy;
}

static double column_seconds(sqlite3_stmt *st, int c) {
    return sqlite3_column_type(st, c) == SQLITE_NULL ? NAN : sqlite3_column_double(st, c);
}

int store_trial_info(store_t *s, int64_t trial_id, store_trial_info_t *out, err_t *err) {
    memset(out, 0, sizeof *out);
    sqlite3 *db = store_db(s);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "SELECT t.id, t.experiment_id, e.name, t.model, t.config, t.status, "
                           "t.error, t.host, t.started, t.finished, t.repeat, t.data_seed, "
                           "t.init_seed, t.pid, t.failed_step, t.final_step, t.n_params, "
                           "t.seconds_data, t.seconds_train, t.seconds_gates, t.seconds_store "
                           "FROM trial t JOIN experiment e ON e.id = t.experiment_id "
                           "WHERE t.id = ?",
                           -1, &st, NULL) != SQLITE_OK)
        return err_set(err, ERR_FAIL, "%s: %s", store_path(s), sqlite3_errmsg(db));
    sqlite3_bind_int64(st, 1, trial_id);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        if (rc == SQLITE_DONE)
            err_set(err, ERR_FAIL, "no trial %" PRId64 " in %s", trial_id, store_path(s));
        else
            err_set(err, ERR_FAIL, "%s: %s", store_path(s), sqlite3_errmsg(db));
        sqlite3_finalize(st);
        return -1;
    }
    bool oom = false;
    out->id = sqlite3_column_int64(st, 0);
    out->experiment_id = sqlite3_column_int64(st, 1);
    out->experiment = column_strdup(st, 2, &oom);
    out->model = column_strdup(st, 3, &oom);
    out->config = column_strdup(st, 4, &oom);
    out->status = column_strdup(st, 5, &oom);
    out->error = column_strdup(st, 6, &oom);
    out->host = column_strdup(st, 7, &oom);
    out->started = column_strdup(st, 8, &oom);
    out->finished = column_strdup(st, 9, &oom);
    out->repeat = sqlite3_column_int(st, 10);
    out->data_seed = sqlite3_column_int64(st, 11);
    out->init_seed = sqlite3_column_int64(st, 12);
    out->has_pid = sqlite3_column_type(st, 13) != SQLITE_NULL;
    out->pid = sqlite3_column_int64(st, 13);
    out->has_failed_step = sqlite3_column_type(st, 14) != SQLITE_NULL;
    out->failed_step = sqlite3_column_int(st, 14);
    out->has_final_step = sqlite3_column_type(st, 15) != SQLITE_NULL;
    out->final_step = sqlite3_column_int(st, 15);
    out->has_n_params = sqlite3_column_type(st, 16) != SQLITE_NULL;
    out->n_params = sqlite3_column_int64(st, 16);
    out->seconds_data = column_seconds(st, 17);
    out->seconds_train = column_seconds(st, 18);
    out->seconds_gates = column_seconds(st, 19);
    out->seconds_store = column_seconds(st, 20);
    sqlite3_finalize(st);
    if (oom) {
        store_trial_info_free(out);
        return err_set(err, ERR_FAIL, "out of memory");
    }
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT key, value FROM param WHERE trial_id = %" PRId64 " ORDER BY key", trial_id);
    if (store_query(s, sql, &out->params, err)) goto fail;
    /* Metrics at the final step; none when no final step is recorded. */
    snprintf(sql, sizeof sql,
             "SELECT m.name, m.value FROM metric m JOIN trial t ON t.id = m.trial_id "
             "WHERE t.id = %" PRId64 " AND m.step = t.final_step ORDER BY m.name",
             trial_id);
    if (store_query(s, sql, &out->metrics, err)) goto fail;
    snprintf(sql, sizeof sql,
             "SELECT gate, expert, mean, std FROM gate WHERE trial_id = %" PRId64
             " ORDER BY gate, expert",
             trial_id);
    if (store_query(s, sql, &out->gates, err)) goto fail;
    return 0;
fail:
    store_trial_info_free(out);
    return -1;
}

void store_trial_info_free(store_trial_info_t *info) {
    mem_free(info->experiment);
    mem_free(info->model);
    mem_free(info->config);
    mem_free(info->status);
    mem_free(info->error);
    mem_free(info->host);
    mem_free(info->started);
    mem_free(info->finished);
    store_table_free(info->params);
    store_table_free(info->metrics);
    store_table_free(info->gates);
    memset(info, 0, sizeof *info);
}

/* ---- export ------------------------------------------------------------ */

typedef struct {
    FILE *f;
    long rows;
} csv_sink_t;

static int sink_header(void *ctx, const store_row_t *row, err_t *err) {
    csv_sink_t *k = ctx;
    return store_csv_line(k->f, row->n_cols, row->cells, row->types, err);
}

static int sink_row(void *ctx, const store_row_t *row, err_t *err) {
    csv_sink_t *k = ctx;
    k->rows++;
    return store_csv_line(k->f, row->n_cols, row->cells, row->types, err);
}

/* The tables of the store, in the order they were created (the schema's
 * order: every table, those of later migrations included). */
static int list_tables(store_t *s, store_table_t **out, err_t *err) {
    return store_query(s,
                       "SELECT name FROM sqlite_master WHERE type = 'table' "
                       "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid",
                       out, err);
}

int store_export_csv(store_t *s, const char *dir, bool with_blobs,
                     void (*on_file)(void *ctx, const char *path, long rows), void *ctx,
                     err_t *err) {
    if (files_make_dirs(dir, err)) return -1;
    /* "out/" and "out" name the same directory: no "out//meta.csv" */
    int dir_len = (int)strlen(dir);
    while (dir_len > 1 && dir[dir_len - 1] == '/')
        dir_len--;
    store_table_t *tables;
    if (list_tables(s, &tables, err)) return -1;
    int status = 0;
    for (int i = 0; status == 0 && i < tables->n_rows; i++) {
        const char *name = store_table_cell(tables, i, 0);
        char sql[256], path[1200];
        if (strcmp(name, "weights") != 0)
            snprintf(sql, sizeof sql, "SELECT * FROM \"%s\"", name);
        else
            snprintf(sql, sizeof sql,
                     "SELECT trial_id, dtype, n, length(data) AS bytes%s FROM weights "
                     "ORDER BY trial_id",
                     with_blobs ? ", data" : "");
        snprintf(path, sizeof path, "%.*s/%s.csv", dir_len, dir, name);
        csv_sink_t sink = {fopen(path, "w"), 0};
        if (!sink.f) {
            status = err_set(err, ERR_FAIL, "cannot write %s: %s", path, strerror(errno));
            break;
        }
        int rc = store_query_each(s, sql, sink_header, sink_row, &sink, err);
        if (fclose(sink.f) != 0 && rc == 0)
            rc = err_set(err, ERR_FAIL, "cannot write %s: %s", path, strerror(errno));
        if (rc) {
            status = err_prefix(err, "%s", path);
            break;
        }
        if (on_file) on_file(ctx, path, sink.rows);
    }
    store_table_free(tables);
    return status;
}
