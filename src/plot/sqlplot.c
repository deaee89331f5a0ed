/* sqlplot.c -- a plot of any query (contract: sqlplot.h).
 *
 * The result is held whole (store_query): a plot is read by eye, so its
 * rows are few; lines are found by one pass over the group column. */
#include "plot/sqlplot.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "core/mem.h"
#include "core/numtext.h"
#include "plot/curves.h"
#include "plot/gp.h"
#include "store/query.h"

/* The index of column `name` in t, or an ERR_USAGE naming the option and
 * the columns the query has. */
static int find_column(const store_table_t *t, const char *option, const char *name, int *col,
                       err_t *err) {
    for (int c = 0; c < t->n_cols; c++)
        if (strcmp(t->names[c], name) == 0) {
            *col = c;
            return 0;
        }
    char have[512] = "";
    for (int c = 0; c < t->n_cols; c++) {
        size_t len = strlen(have);
        snprintf(have + len, sizeof have - len, "%s%s", c ? ", " : "", t->names[c]);
    }
    return err_set(err, ERR_USAGE, "%s: the query has no column '%s' (it has: %s)", option, name,
                   have);
}

/* Every drawn cell is a number or NULL. */
static int check_numbers(const store_table_t *t, const char *option, int col, err_t *err) {
    for (int r = 0; r < t->n_rows; r++) {
        int type = store_table_type(t, r, col);
        if (type != SQLITE_INTEGER && type != SQLITE_FLOAT && type != SQLITE_NULL)
            return err_set(err, ERR_USAGE,
                           "%s: column '%s' holds '%s' in row %d, not a number (CAST it or "
                           "plot another column)",
                           option, t->names[col], store_table_cell(t, r, col), r + 1);
    }
    return 0;
}

static void put_cell(FILE *f, const store_table_t *t, int r, int c) {
    const char *s = store_table_cell(t, r, c);
    if (!s) {
        fputs("NaN", f);
        return;
    }
    char buf[40];
    num_to_text(strtod(s, NULL), buf, sizeof buf);
    fputs(buf, f);
}

/* The group value of row r as text ("NULL" for SQL NULL). */
static const char *group_of(const store_table_t *t, int r, int gcol) {
    if (gcol < 0) return "";
    const char *s = store_table_cell(t, r, gcol);
    return s ? s : "NULL";
}

static void put_script(FILE *f, const sqlplot_job_t *job, const store_table_t *t, const int *cols,
                       const int *line_of, const int *first_row, int n_lines) {
    const bool band = cols[2] >= 0;
    fprintf(f, "# mtlab plot --sql: %d row%s of this query on %s, %d line%s:\n", t->n_rows,
            t->n_rows == 1 ? "" : "s", job->db_path, n_lines, n_lines == 1 ? "" : "s");
    for (const char *p = job->sql; *p;) { /* the query, as comment lines */
        size_t len = strcspn(p, "\n");
        fprintf(f, "#   %.*s\n", (int)len, p);
        p += len + (p[len] == '\n');
    }
    fprintf(f, "# Columns of each datablock: %s %s%s%s%s (the query's rows of the line, in\n"
               "# order).\n",
            job->x, job->y, band ? " " : "", band ? job->lo : "", band ? " " : "");
    if (band) fprintf(f, "#   and %s: the band.\n", job->hi);
    curves_put_preamble(f, job->format, job->image_name, 1, 1);
    char title[512];
    if (job->title)
        snprintf(title, sizeof title, "%s", job->title);
    else
        snprintf(title, sizeof title, "%s by %s", job->y, job->x);
    fprintf(f, "set title ");
    gp_put_quoted(f, title);
    fprintf(f, "\nset xlabel ");
    gp_put_quoted(f, job->x);
    fprintf(f, "\nset ylabel ");
    gp_put_quoted(f, job->y);
    fprintf(f, "\n");
    const int n_drawn = band ? 4 : 2;
    for (int l = 0; l < n_lines; l++) {
        const int first = first_row[l];
        fprintf(f, "$l%d << EOD\n", l + 1);
        if (cols[4] >= 0) {
            fprintf(f, "# %s ", job->group);
            fputs(group_of(t, first, cols[4]), f);
            fputc('\n', f);
        }
        for (int r = 0; r < t->n_rows; r++) {
            if (line_of[r] != l) continue;
            for (int k = 0; k < n_drawn; k++) {
                if (k) fputc(' ', f);
                put_cell(f, t, r, cols[k]);
            }
            fputc('\n', f);
        }
        fprintf(f, "EOD\n");
    }
    fprintf(f, "plot");
    for (int l = 0; l < n_lines; l++) {
        const int first = first_row[l];
        const int lt = l % 8 + 1;
        if (band)
            fprintf(f,
                    "%s \\\n    $l%d using 1:3:4 with filledcurves lt %d fs transparent solid "
                    "0.18 noborder notitle",
                    l ? "," : "", l + 1, lt);
        fprintf(f, "%s \\\n    $l%d using 1:2 with linespoints lt %d pt 7 ps 0.6 ",
                band || l ? "," : "", l + 1, lt);
        if (cols[4] >= 0) {
            char label[512];
            snprintf(label, sizeof label, "%s %s", job->group, group_of(t, first, cols[4]));
            fprintf(f, "title ");
            gp_put_quoted(f, label);
        } else {
            fprintf(f, "notitle");
        }
    }
    fprintf(f, "\n");
}

int sqlplot_write(store_t *s, const sqlplot_job_t *job, FILE *f, int *n_lines, err_t *err) {
    *n_lines = 0;
    if (!job->lo != !job->hi)
        return err_set(err, ERR_USAGE, "--band-lo and --band-hi go together");
    store_table_t *t = NULL;
    if (store_query(s, job->sql, &t, err)) {
        err->kind = ERR_USAGE; /* the query is the user's input */
        return -1;
    }
    /* x, y, lo, hi, group */
    int cols[5] = {-1, -1, -1, -1, -1};
    int rc = find_column(t, "--x", job->x, &cols[0], err);
    if (rc == 0) rc = find_column(t, "--y", job->y, &cols[1], err);
    if (rc == 0 && job->lo) rc = find_column(t, "--band-lo", job->lo, &cols[2], err);
    if (rc == 0 && job->hi) rc = find_column(t, "--band-hi", job->hi, &cols[3], err);
    if (rc == 0 && job->group) rc = find_column(t, "--group", job->group, &cols[4], err);
    static const char *const options[] = {"--x", "--y", "--band-lo", "--band-hi"};
    for (int k = 0; k < 4 && rc == 0; k++)
        if (cols[k] >= 0) rc = check_numbers(t, options[k], cols[k], err);
    if (rc == 0 && t->n_rows == 0) rc = err_set(err, ERR_USAGE, "the query returned no rows");
    int *line_of = NULL, *first_row = NULL; /* [n_rows] each: a row's line, a line's first row */
    if (rc == 0 && (!(line_of = mem_calloc((size_t)t->n_rows, sizeof *line_of)) ||
                    !(first_row = mem_calloc((size_t)t->n_rows, sizeof *first_row))))
        rc = err_set(err, ERR_FAIL, "out of memory");
    if (rc == 0) {
        /* line of each row: the rank of its group value's first appearance */
        /* each row against the first row of each line so far: rows x lines */
        int lines = 0;
        for (int r = 0; r < t->n_rows; r++) {
            line_of[r] = -1;
            for (int l = 0; l < lines && line_of[r] < 0; l++)
                if (strcmp(group_of(t, first_row[l], cols[4]), group_of(t, r, cols[4])) == 0)
                    line_of[r] = l;
            if (line_of[r] < 0) {
                first_row[lines] = r;
                line_of[r] = lines++;
            }
        }
        put_script(f, job, t, cols, line_of, first_row, lines);
        *n_lines = lines;
        if (ferror(f)) rc = err_set(err, ERR_FAIL, "cannot write the script");
    }
    mem_free(line_of);
    mem_free(first_row);
    store_table_free(t);
    return rc;
}
