/* query.c -- reading a store for the CLI (contract: query.h).
 *
 * Everything here goes through store_query_each(): one statement, rows handed
 * to a callback as text cells with their SQLite type.  The in-memory table
 * (store_query) serves the small results `ls`, `show` and `sql` print; export
 * streams rows straight to the CSV files, so a large metric table never has
 * to fit in memory. */
#include "store/query.h"

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
    char *p = realloc(*buf, n);
    if (!p) return -1;
    *buf = p;
    *cap = n;
    return 0;
}

int store_query_each(store_t *s, const char *sql, store_row_fn on_header, store_row_fn fn,
                     void *ctx, err_t *err) {
    sqlite3 *db = store_db(s);
    sqlite3_stmt *st = NULL;
    const char *tail = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, &tail) != SQLITE_OK)
        return err_set(err, ERR_FAIL, "%s: %s", store_path(s), sqlite3_errmsg(db));
    if (!st) return err_set(err, ERR_USAGE, "no SQL statement in '%s'", sql);
    if (tail && !only_blank(tail)) {
        /* Comments and semicolons may follow; another statement may not. */
        sqlite3_stmt *next = NULL;
        int rc = sqlite3_prepare_v2(db, tail, -1, &next, NULL);
        sqlite3_finalize(next);
        if (rc != SQLITE_OK || next) {
            sqlite3_finalize(st);
            return err_set(err, ERR_USAGE,
                           "one SQL statement at a time, please (found more after "
                           "the first ';')");
        }
    }
    const int n = sqlite3_column_count(st);
    const char **names = calloc((size_t)n + 1, sizeof *names);
    const char **cells = calloc((size_t)n + 1, sizeof *cells);
    int *types = calloc((size_t)n + 1, sizeof *types);
    char **bufs = calloc((size_t)n + 1, sizeof *bufs);
    size_t *caps = calloc((size_t)n + 1, sizeof *caps);
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
        err_set(err, ERR_FAIL, "%s: %s", store_path(s), sqlite3_errmsg(db));
        goto done;
    }
    status = 0;
    goto done;
oom:
    err_set(err, ERR_FAIL, "out of memory reading a query result");
done:
    for (int c = 0; bufs && c < n; c++)
        free(bufs[c]);
    free(bufs);
    free(caps);
    free(names);
    free(cells);
    free(types);
    sqlite3_finalize(st);
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
    t->names = calloc((size_t)row->n_cols + 1, sizeof *t->names);
    if (!t->names) return err_set(err, ERR_FAIL, "out of memory");
    for (int c = 0; c < row->n_cols; c++)
        if (!(t->names[c] = strdup(row->names[c] ? row->names[c] : "")))
            return err_set(err, ERR_FAIL, "out of memory");
    return 0;
}

static int collect_row(void *ctx, const store_row_t *row, err_t *err) {
    collect_t *c = ctx;
    store_table_t *t = c->t;
    const int n = t->n_cols;
    if (t->n_rows == c->cap_rows) {
        int cap = c->cap_rows ? 2 * c->cap_rows : 16;
        char **cells = realloc(t->cells, (size_t)cap * (size_t)(n ? n : 1) * sizeof *cells);
        if (!cells) return err_set(err, ERR_FAIL, "out of memory");
        t->cells = cells;
        int *types = realloc(t->types, (size_t)cap * (size_t)(n ? n : 1) * sizeof *types);
        if (!types) return err_set(err, ERR_FAIL, "out of memory");
        t->types = types;
        c->cap_rows = cap;
    }
    for (int k = 0; k < n; k++) {
        size_t i = (size_t)t->n_rows * (size_t)n + (size_t)k;
        t->types[i] = row->types[k];
        t->cells[i] = NULL;
        if (row->cells[k] && !(t->cells[i] = strdup(row->cells[k]))) {
            for (int j = 0; j < k; j++)
                free(t->cells[(size_t)t->n_rows * (size_t)n + (size_t)j]);
            return err_set(err, ERR_FAIL, "out of memory");
        }
    }
    t->n_rows++;
    return 0;
}

int store_query(store_t *s, const char *sql, store_table_t **out, err_t *err) {
    *out = NULL;
    store_table_t *t = calloc(1, sizeof *t);
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
        free(t->cells[i]);
    for (int c = 0; t->names && c < t->n_cols; c++)
        free(t->names[c]);
    free(t->cells);
    free(t->types);
    free(t->names);
    free(t);
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
static const char *display(const store_table_t *t, int r, int c, char *buf, size_t size) {
    const char *cell = store_table_cell(t, r, c);
    switch (store_table_type(t, r, c)) {
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

int store_table_print(FILE *f, const store_table_t *t, err_t *err) {
    const int n = t->n_cols;
    if (n == 0) return 0;
    int *width = calloc((size_t)n, sizeof *width);
    bool *numeric = calloc((size_t)n, sizeof *numeric);
    if (!width || !numeric) {
        free(width);
        free(numeric);
        return err_set(err, ERR_FAIL, "out of memory");
    }
    char buf[64];
    for (int c = 0; c < n; c++) {
        width[c] = text_width(t->names[c]);
        int numbers = 0, others = 0;
        for (int r = 0; r < t->n_rows; r++) {
            int w = text_width(display(t, r, c, buf, sizeof buf));
            if (w > width[c]) width[c] = w;
            int type = store_table_type(t, r, c);
            if (is_number_type(type))
                numbers++;
            else if (type != SQLITE_NULL)
                others++;
        }
        numeric[c] = numbers > 0 && others == 0;
    }
    errno = 0;
    for (int line = -2; line < t->n_rows; line++) {
        for (int c = 0; c < n; c++) {
            const char *text;
            bool right;
            char rule[256];
            if (line == -2) {
                text = t->names[c];
                right = numeric[c];
            } else if (line == -1) {
                int w = width[c] < (int)sizeof rule - 1 ? width[c] : (int)sizeof rule - 1;
                memset(rule, '-', (size_t)w);
                rule[w] = '\0';
                text = rule;
                right = false;
            } else {
                text = display(t, line, c, buf, sizeof buf);
                right = is_number_type(store_table_type(t, line, c));
            }
            int pad = width[c] - text_width(text);
            if (c > 0) fputs("  ", f);
            if (right)
                fprintf(f, "%*s%s", pad, "", text);
            else if (c == n - 1)
                fputs(text, f); /* no trailing blanks */
            else
                fprintf(f, "%s%*s", text, pad, "");
        }
        fputc('\n', f);
    }
    free(width);
    free(numeric);
    if (ferror(f)) return write_error(err);
    return 0;
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
    int *types = malloc((size_t)n * sizeof *types);
    if (!types) return err_set(err, ERR_FAIL, "out of memory");
    for (int c = 0; c < n; c++)
        types[c] = SQLITE_TEXT;
    int rc = store_csv_line(f, n, (const char *const *)t->names, types, err);
    free(types);
    for (int r = 0; rc == 0 && r < t->n_rows; r++)
        rc = store_csv_line(f, n, (const char *const *)&t->cells[(size_t)r * (size_t)n],
                            &t->types[(size_t)r * (size_t)n], err);
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
    char *copy = text ? strdup(text) : NULL;
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
    free(info->experiment);
    free(info->model);
    free(info->config);
    free(info->status);
    free(info->error);
    free(info->host);
    free(info->started);
    free(info->finished);
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

int store_export_csv(store_t *s, const char *dir, bool with_blobs,
                     void (*on_file)(void *ctx, const char *path, long rows), void *ctx,
                     err_t *err) {
    static const char *const tables[] = {"meta", "experiment", "trial", "param", "metric",
                                         "gate", "gate_hist",  "route", "tensor"};
    if (files_make_dirs(dir, err)) return -1;
    const int n_tables = (int)(sizeof tables / sizeof tables[0]);
    for (int i = 0; i <= n_tables; i++) {
        const char *name = i < n_tables ? tables[i] : "weights";
        char sql[256], path[1200];
        if (i < n_tables)
            snprintf(sql, sizeof sql, "SELECT * FROM %s", name);
        else
            snprintf(sql, sizeof sql,
                     "SELECT trial_id, dtype, n, length(data) AS bytes%s FROM weights "
                     "ORDER BY trial_id",
                     with_blobs ? ", data" : "");
        snprintf(path, sizeof path, "%s/%s.csv", dir, name);
        csv_sink_t sink = {fopen(path, "w"), 0};
        if (!sink.f) return err_set(err, ERR_FAIL, "cannot write %s: %s", path, strerror(errno));
        int rc = store_query_each(s, sql, sink_header, sink_row, &sink, err);
        if (fclose(sink.f) != 0 && rc == 0)
            rc = err_set(err, ERR_FAIL, "cannot write %s: %s", path, strerror(errno));
        if (rc) return err_prefix(err, "%s", path);
        if (on_file) on_file(ctx, path, sink.rows);
    }
    return 0;
}
