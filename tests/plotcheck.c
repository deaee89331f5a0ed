/* plotcheck.c -- the figure tests' checks of a script (contract: plotcheck.h). */
#include "plotcheck.h"

#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <sqlite3.h>

#include "plot/plot.h"
#include "testutil.h"

/* Splits a datablock line in place into fields: "quoted text" or bare words. */
static int split_fields(char *line, char **fields, int max) {
    int n = 0;
    char *p = line;
    while (*p && n < max) {
        while (*p == ' ')
            p++;
        if (!*p) break;
        if (*p == '"') {
            fields[n++] = ++p;
            while (*p && *p != '"')
                p++;
        } else {
            fields[n++] = p;
            while (*p && *p != ' ')
                p++;
        }
        if (*p) *p++ = '\0';
    }
    return n;
}

void plotcheck_script_data(const char *script, const store_table_t *t) {
    char *gp = test_read_file(script);
    int row = 0, blocks = 0;
    bool in_block = false;
    for (char *line = strtok(gp, "\n"); line; line = strtok(NULL, "\n")) {
        if (!in_block) {
            if (line[0] == '$' && strstr(line, " << EOD")) in_block = true, blocks++;
            continue;
        }
        if (strcmp(line, "EOD") == 0) {
            in_block = false;
            continue;
        }
        if (line[0] == '#') continue;
        ck_assert_msg(row < t->n_rows, "%s: more data rows than the query's %d", script, t->n_rows);
        char *fields[64];
        int n = split_fields(line, fields, 64);
        ck_assert_msg(n == t->n_cols, "%s row %d: %d fields, the query has %d columns", script, row,
                      n, t->n_cols);
        for (int c = 0; c < n; c++) {
            const char *want = store_table_cell(t, row, c);
            int type = store_table_type(t, row, c);
            if (!want) {
                ck_assert_str_eq(fields[c], "NaN");
            } else if (type == SQLITE_INTEGER || type == SQLITE_FLOAT) {
                char *end;
                double got = strtod(fields[c], &end);
                ck_assert_msg(*end == '\0' && got == strtod(want, NULL),
                              "%s row %d column %s: %s in the script, %s from the query", script,
                              row, t->names[c], fields[c], want);
            } else {
                ck_assert_str_eq(fields[c], want);
            }
        }
        row++;
    }
    ck_assert_msg(row == t->n_rows, "%s: %d data rows, the query has %d", script, row, t->n_rows);
    ck_assert_msg(blocks > 0, "%s has no datablock", script);
    free(gp);
}

void plotcheck_gnuplot_runs(const char *script) {
    if (!plot_have_gnuplot()) return;
    char cmd[5000];
    ck_assert((size_t)snprintf(cmd, sizeof cmd,
                               "gnuplot -e \"keep_terminal = 1; set terminal dumb size 160,60; "
                               "set output '/dev/null'\" '%s' 2>&1",
                               script) < sizeof cmd);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    char said[2048] = "";
    size_t n = fread(said, 1, sizeof said - 1, p);
    said[n] = '\0';
    int status = pclose(p);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "gnuplot %s: status %d: %s",
                  script, status, said);
    ck_assert_msg(n == 0, "gnuplot %s said: %s", script, said);
}
