/* test_report.c -- comparing and reporting: `mtlab diff A B` (config,
 * seeds, final metrics, the overlay script) and `mtlab report EXP` (one
 * self-contained HTML file), each checked against the numbers in the store
 * and on bad input. */
#include <math.h>
#include <stdbool.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/mem.h"
#include "plot/report.h"
#include "store/store.h"
#include "testutil.h"

/* 2 models x 2 correlations x 2 repeats: 8 done trials, well under a
 * second.  Trial ids in config order: 1 mmoe 0.5, 2 shared_bottom 0.5,
 * 3 mmoe 0.9, 4 shared_bottom 0.9 (repeat 0), then 5..8 (repeat 1). */
static const char *sweep_ini = "[experiment]\n"
                               "name = rep\n"
                               "description = two families & two <correlations>\n"
                               "repeats = 2\n"
                               "seed = 2\n"
                               "[data]\n"
                               "correlation = 0.5, 0.9\n"
                               "dim = 10\n"
                               "train = 200\n"
                               "validation = 50\n"
                               "test = 50\n"
                               "[train]\n"
                               "lr = 0.01\n"
                               "batch = 32\n"
                               "steps = 20\n"
                               "eval_every = 10\n"
                               "[model]\n"
                               "name = mmoe, shared_bottom\n"
                               "experts = 2\n"
                               "expert_hidden = 4\n";

/* A store holding the sweep above, run: its path (caller frees; *dir too). */
static char *make_store(char **dir) {
    *dir = test_tmpdir();
    char *ini = test_write_file(*dir, "rep.ini", sweep_ini), *db = test_join(*dir, "r.db");
    const char *args[] = {"run", ini, "--db", db, "--jobs", "1", NULL};
    char *out = test_mtlab_ok(0, NULL, args);
    ck_assert_msg(strstr(out, "8 trials (8 new): 8 done, 0 failed"), "%s", out);
    free(out);
    free(ini);
    return db;
}

/* The line of text that starts with `prefix`, copied into buf (NULL when
 * none). */
static const char *line_starting(const char *text, const char *prefix, char *buf, size_t size) {
    for (const char *p = text; p && *p;) {
        size_t len = strcspn(p, "\n");
        if (strncmp(p, prefix, strlen(prefix)) == 0) {
            ck_assert_uint_lt(len, size);
            memcpy(buf, p, len);
            buf[len] = '\0';
            return buf;
        }
        p += len;
        if (*p) p++;
    }
    return NULL;
}

/* First column of the first row as text (caller frees). */
static char *q_text(const char *db, const char *sql) {
    sqlite3 *h;
    ck_assert_int_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    ck_assert_msg(sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql,
                  sqlite3_errmsg(h));
    const char *v = sqlite3_step(st) == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : "";
    char *out = strdup(v ? v : "");
    sqlite3_finalize(st);
    sqlite3_close(h);
    return out;
}

/* An int64 as text. */
static void seed_eq(long long got, const char *db, const char *sql) {
    char *want = q_text(db, sql), buf[32];
    snprintf(buf, sizeof buf, "%lld", got);
    ck_assert_str_eq(buf, want);
    free(want);
}

static double q_num(const char *db, const char *fmt, const char *a, int b) {
    char sql[512];
    snprintf(sql, sizeof sql, fmt, a, b);
    return test_query(db, sql);
}

/* ---- mtlab diff ------------------------------------------------------------ */

/* diff 1 4 (mmoe 0.5 vs shared_bottom 0.9): the counts of the config diff
 * from the param table, the differing values, each family's own keys, the
 * stored seeds, and every final metric of both trials as stored (printed to
 * 6 digits) with B - A. */
START_TEST(test_diff_text) {
    char *dir, *db = make_store(&dir);
    const char *args[] = {"diff", "1", "4", "--db", db, NULL};
    char *out = test_mtlab_ok(0, NULL, args), line[1024];
    ck_assert_msg(strncmp(out,
                          "A: trial 1: experiment rep (id 1), model mmoe, repeat 0, status done\n"
                          "B: trial 4: experiment rep (id 1), model shared_bottom, repeat 0, "
                          "status done\n",
                          140) == 0,
                  "%s", out);
    /* the counts, from the store */
    int same =
        (int)test_query(db, "SELECT count(*) FROM param a JOIN param b ON a.key = b.key "
                            "AND a.value IS b.value WHERE a.trial_id = 1 AND b.trial_id = 4");
    int only_a = (int)test_query(db, "SELECT count(*) FROM param WHERE trial_id = 1 AND key NOT IN "
                                     "(SELECT key FROM param WHERE trial_id = 4)");
    int only_b = (int)test_query(db, "SELECT count(*) FROM param WHERE trial_id = 4 AND key NOT IN "
                                     "(SELECT key FROM param WHERE trial_id = 1)");
    ck_assert_int_gt(same, 10);
    ck_assert_int_eq(only_a, 2); /* model.experts, model.expert_hidden */
    ck_assert_int_eq(only_b, 1); /* model.bottom_hidden */
    char expect[256];
    snprintf(expect, sizeof expect,
             "\nconfig: %d keys the same, 2 differ, 2 only in A, 1 only in B\n", same);
    ck_assert_msg(strstr(out, expect), "%s\nnot in\n%s", expect, out);
    char key[64], va[64], vb[64];
    ck_assert_ptr_nonnull(line_starting(out, "    data.correlation", line, sizeof line));
    ck_assert_int_eq(sscanf(line, "%63s %63s %63s", key, va, vb), 3);
    ck_assert_str_eq(va, "0.5");
    ck_assert_str_eq(vb, "0.9");
    ck_assert_ptr_nonnull(line_starting(out, "    model.name", line, sizeof line));
    ck_assert_int_eq(sscanf(line, "%63s %63s %63s", key, va, vb), 3);
    ck_assert_str_eq(va, "mmoe");
    ck_assert_str_eq(vb, "shared_bottom");
    ck_assert_msg(strstr(out, "  only in A (trial 1):\n    model.expert_hidden = 4\n"
                              "    model.experts       = 2\n"
                              "  only in B (trial 4):\n    model.bottom_hidden = 113\n"),
                  "%s", out);
    /* keys that are the same are not listed */
    ck_assert_ptr_null(line_starting(out, "    train.lr", line, sizeof line));
    /* seeds as stored */
    long long s1, s2;
    ck_assert_ptr_nonnull(line_starting(out, "  data_seed", line, sizeof line));
    ck_assert_int_eq(sscanf(line, " data_seed %lld %lld", &s1, &s2), 2);
    seed_eq(s1, db, "SELECT data_seed FROM trial WHERE id = 1");
    seed_eq(s2, db, "SELECT data_seed FROM trial WHERE id = 4");
    ck_assert_ptr_nonnull(line_starting(out, "  init_seed", line, sizeof line));
    ck_assert_int_eq(sscanf(line, " init_seed %lld %lld", &s1, &s2), 2);
    seed_eq(s1, db, "SELECT init_seed FROM trial WHERE id = 1");
    seed_eq(s2, db, "SELECT init_seed FROM trial WHERE id = 4");
    ck_assert_int_ne(s1, s2);
    /* every final metric: the last value up to the final step */
    const char *metrics = strstr(out, "\nfinal metrics:\n");
    ck_assert_ptr_nonnull(metrics);
    int n_metrics = (int)test_query(db, "SELECT count(DISTINCT name) FROM metric WHERE trial_id "
                                        "IN (1, 4)");
    ck_assert_int_ge(n_metrics, 10);
    const char *p = strchr(strchr(metrics + 1, '\n') + 1, '\n') + 1; /* past the header */
    for (int i = 0; i < n_metrics; i++) {
        char name[64];
        double a, b, d;
        ck_assert_msg(sscanf(p, " %63s %lf %lf %lf", name, &a, &b, &d) == 4, "%s", p);
        const char *fmt = "SELECT value FROM metric WHERE name = '%s' AND trial_id = %d "
                          "ORDER BY step DESC LIMIT 1";
        double sa = q_num(db, fmt, name, 1), sb = q_num(db, fmt, name, 4);
        ck_assert_msg(fabs(a - sa) <= 1e-5 * fabs(sa), "%s: A %g, stored %g", name, a, sa);
        ck_assert_msg(fabs(b - sb) <= 1e-5 * fabs(sb), "%s: B %g, stored %g", name, b, sb);
        ck_assert_msg(fabs(d - (sb - sa)) <= 1e-5 * (fabs(sa) + fabs(sb)), "%s: B - A %g", name, d);
        p = strchr(p, '\n') + 1;
    }
    ck_assert_int_eq(*p, '\0');
    ck_assert_ptr_nonnull(strstr(out, "  data/pearson/t1-t2")); /* a step-0 measure */
    free(out);

    /* a trial against itself: nothing differs, every difference is 0 */
    const char *self[] = {"diff", "5", "5", "--db", db, NULL};
    out = test_mtlab_ok(0, NULL, self);
    snprintf(expect, sizeof expect, "config: %d keys the same, 0 differ, 0 only in A, 0 only in B",
             (int)test_query(db, "SELECT count(*) FROM param WHERE trial_id = 5"));
    ck_assert_msg(strstr(out, expect), "%s", out);
    ck_assert_ptr_null(strstr(out, "differ:\n"));
    ck_assert_ptr_nonnull(strstr(out, "(same)"));
    ck_assert_ptr_nonnull(line_starting(out, "  val/loss/total", line, sizeof line));
    double a, b, d;
    ck_assert_int_eq(sscanf(line, " val/loss/total %lf %lf %lf", &a, &b, &d), 3);
    ck_assert_double_eq(d, 0);
    free(out);
    free(db);
    free(dir);
}
END_TEST

/* --plot: a gnuplot script with one datablock per trial holding, at each
 * step, the stored value bit for bit; --metric picks the metric. */
START_TEST(test_diff_plot) {
    char *dir, *db = make_store(&dir);
    char *gp = test_join(dir, "cmp.gp");
    const char *args[] = {"diff",   "3", "2",        "--db",         db,
                          "--plot", gp,  "--metric", "test/loss/t1", NULL};
    char *out = test_mtlab_ok(0, NULL, args);
    ck_assert_ptr_nonnull(strstr(out, "wrote "));
    char *text = test_read_file(gp);
    ck_assert_msg(strncmp(text, "# mtlab diff 3 2 --metric test/loss/t1: 2 lines", 47) == 0, "%s",
                  text);
    ck_assert_ptr_nonnull(strstr(text, "set output mtlab_dir . \"cmp.png\""));
    ck_assert_ptr_null(strstr(text, "filledcurves"));
    const int ids[2] = {3, 2};
    const char *labels[2] = {"$c1 << EOD\n# trial 3, model mmoe\n# step n mean sd se lo hi\n",
                             "$c2 << EOD\n# trial 2, model shared_bottom\n# step n mean sd se lo "
                             "hi\n"};
    for (int k = 0; k < 2; k++) {
        const char *block = strstr(text, labels[k]);
        ck_assert_msg(block, "%s", text);
        const char *line = block + strlen(labels[k]);
        int n = (int)test_query(db, ids[k] == 3 ? "SELECT count(*) FROM metric WHERE trial_id = 3 "
                                                  "AND name = 'test/loss/t1'"
                                                : "SELECT count(*) FROM metric WHERE trial_id = 2 "
                                                  "AND name = 'test/loss/t1'");
        ck_assert_int_ge(n, 2);
        sqlite3 *h;
        ck_assert_int_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        sqlite3_stmt *st;
        ck_assert_int_eq(sqlite3_prepare_v2(h,
                                            "SELECT step, value FROM metric WHERE trial_id = ?1 "
                                            "AND name = 'test/loss/t1' ORDER BY step",
                                            -1, &st, NULL),
                         SQLITE_OK);
        sqlite3_bind_int(st, 1, ids[k]);
        for (int i = 0; i < n; i++) {
            ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
            double step, count, mean;
            ck_assert_int_eq(sscanf(line, "%lf %lf %lf", &step, &count, &mean), 3);
            ck_assert_double_eq(step, sqlite3_column_double(st, 0));
            ck_assert_double_eq(count, 1);
            ck_assert_double_eq(mean, sqlite3_column_double(st, 1)); /* bit for bit */
            line = strchr(line, '\n') + 1;
        }
        ck_assert_msg(strncmp(line, "EOD\n", 4) == 0, "%s", line);
        sqlite3_finalize(st);
        sqlite3_close(h);
    }
    ck_assert_ptr_nonnull(strstr(text, "title \"trial 3, model mmoe\""));
    free(text);
    free(out);
    /* the default metric is val/loss/total */
    const char *dflt[] = {"diff", "1", "2", "--db", db, "--plot", gp, NULL};
    free(test_mtlab_ok(0, NULL, dflt));
    text = test_read_file(gp);
    ck_assert_ptr_nonnull(strstr(text, "--metric val/loss/total: 2 lines"));
    free(text);
    free(gp);
    free(db);
    free(dir);
}
END_TEST

/* Bad input: exit 2 with one line naming what is wrong; nothing written. */
START_TEST(test_diff_bad_input) {
    char *dir, *db = make_store(&dir);
    char *gp = test_join(dir, "bad.gp"), *nodir = test_join(dir, "no/such/dir.gp");
    const struct {
        const char *args[12];
        int status;
        const char *fragment;
    } bad[] = {
        {{"diff", "1", "--db", db}, 2, "needs two trial ids"},
        {{"diff", "--db", db}, 2, "needs two trial ids"},
        {{"diff", "1", "x2", "--db", db}, 2, "'x2' is not a trial id"},
        {{"diff", "0", "2", "--db", db}, 2, "'0' is not a trial id"},
        {{"diff", "1", "99", "--db", db}, 2, "no trial 99"},
        {{"diff", "1", "2", "3", "--db", db}, 2, ""},
        {{"diff", "1", "2", "--db", db, "--metric", "val/loss/t1"}, 2, "--metric goes with --plot"},
        {{"diff", "1", "2", "--db", db, "--plot", gp, "--metric", "val/loss/totl"},
         2,
         "have no metric 'val/loss/totl' (did you mean 'val/loss/total'?)"},
        {{"diff", "1", "2", "--db", db, "--plto", gp}, 2, "(did you mean '--plot'?)"},
        {{"diff", "1", "2", "--db", db, "--plot", nodir}, 1, "cannot write"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *err, *out = test_mtlab_ok(bad[i].status, &err, bad[i].args);
        ck_assert_msg(strstr(err, bad[i].fragment) && test_count_lines(err) >= 1,
                      "case %zu: '%s' not in: %s", i, bad[i].fragment, err);
        ck_assert_msg(bad[i].status != 2 || i == 5 || test_count_lines(err) == 1, "case %zu: %s", i,
                      err);
        ck_assert_str_eq(out, "");
        free(out);
        free(err);
    }
    ck_assert_int_ne(access(gp, F_OK), 0);
    free(nodir);
    free(gp);
    free(db);
    free(dir);
}
END_TEST

/* ---- mtlab report ------------------------------------------------------------ */

/* A strict well-formedness check of the report, as XML: after the doctype,
 * every tag is closed (or self-closed) in order, attribute values are
 * double-quoted, and the text holds no raw '<' or '>' and no '&' that is
 * not one of the entities the writer emits.  0, or -1 with why. */
static int xml_check(const char *s, char *why, size_t size) {
    static const char *const doctype = "<!DOCTYPE html>\n";
    char stack[64][32];
    int depth = 0;
    bool rooted = false;
    if (strncmp(s, doctype, strlen(doctype)) != 0) {
        snprintf(why, size, "no doctype");
        return -1;
    }
    const char *p = s + strlen(doctype);
    for (; *p; p++) {
        const long at = (long)(p - s);
        if (*p == '&') {
            static const char *const ents[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&#39;"};
            bool ok = false;
            for (size_t i = 0; i < 5; i++)
                ok = ok || strncmp(p, ents[i], strlen(ents[i])) == 0;
            if (!ok) {
                snprintf(why, size, "a bare '&' at byte %ld: %.40s", at, p);
                return -1;
            }
            continue;
        }
        if (*p == '>') {
            snprintf(why, size, "a bare '>' at byte %ld: %.40s", at, p - 20 > s ? p - 20 : s);
            return -1;
        }
        if (*p != '<') continue;
        bool closing = p[1] == '/';
        const char *q = p + 1 + closing;
        size_t n = strspn(q, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-");
        if (n == 0 || n >= sizeof stack[0]) {
            snprintf(why, size, "a bare '<' at byte %ld: %.40s", at, p);
            return -1;
        }
        char name[32];
        memcpy(name, q, n);
        name[n] = '\0';
        q += n;
        if (closing) {
            if (*q != '>' || depth == 0 || strcmp(stack[depth - 1], name) != 0) {
                snprintf(why, size, "</%s> at byte %ld closes <%s>", name, at,
                         depth ? stack[depth - 1] : "(nothing)");
                return -1;
            }
            depth--;
            p = q;
            continue;
        }
        if (depth == 0 && (rooted || strcmp(name, "html") != 0)) {
            snprintf(why, size, "<%s> at byte %ld outside <html>", name, at);
            return -1;
        }
        rooted = true;
        for (;;) { /* attributes */
            q += strspn(q, " \n");
            if (*q == '>' || (q[0] == '/' && q[1] == '>')) break;
            size_t an =
                strspn(q, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-:");
            if (an == 0 || q[an] != '=' || q[an + 1] != '"') {
                snprintf(why, size, "a bad attribute in <%s> at byte %ld: %.40s", name, at, q);
                return -1;
            }
            q += an + 2;
            const char *end = strchr(q, '"');
            if (!end) {
                snprintf(why, size, "an unclosed attribute in <%s>", name);
                return -1;
            }
            for (const char *c = q; c < end; c++)
                if (*c == '<' || *c == '>' ||
                    (*c == '&' && strncmp(c, "&amp;", 5) && strncmp(c, "&quot;", 6) &&
                     strncmp(c, "&lt;", 4) && strncmp(c, "&gt;", 4) && strncmp(c, "&#39;", 5))) {
                    snprintf(why, size, "an unescaped '%c' in an attribute of <%s>", *c, name);
                    return -1;
                }
            q = end + 1;
        }
        if (*q == '/') {
            p = q + 1; /* self-closed */
            continue;
        }
        if (depth == (int)(sizeof stack / sizeof stack[0])) {
            snprintf(why, size, "nested too deep");
            return -1;
        }
        strcpy(stack[depth++], name);
        p = q;
    }
    if (depth != 0 || !rooted) {
        snprintf(why, size, "%d element(s) left open (<%s>)", depth, depth ? stack[depth - 1] : "");
        return -1;
    }
    return 0;
}

/* The checker itself rejects what it must. */
START_TEST(test_xml_check) {
    char why[256];
    ck_assert_int_eq(
        xml_check("<!DOCTYPE html>\n<html><p a=\"1\">x &amp; y</p><br/></html>\n", why, sizeof why),
        0);
    const char *bad[] = {
        "<html></html>",                                 /* no doctype */
        "<!DOCTYPE html>\n<html><p></html>",             /* unclosed */
        "<!DOCTYPE html>\n<html><p></b></p></html>",     /* crossed */
        "<!DOCTYPE html>\n<html>a & b</html>",           /* bare & */
        "<!DOCTYPE html>\n<html>a < b</html>",           /* bare < */
        "<!DOCTYPE html>\n<html>a > b</html>",           /* bare > */
        "<!DOCTYPE html>\n<html><p a=1></p></html>",     /* unquoted */
        "<!DOCTYPE html>\n<html><p a=\"<\"></p></html>", /* < in an attribute */
        "<!DOCTYPE html>\n<html></html><p></p>",         /* two roots */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(xml_check(bad[i], why, sizeof why) == -1, "accepted: %s", bad[i]);
}
END_TEST

/* The n-th (0-based) "<tr" after `from`, or NULL. */
static const char *nth_row(const char *from, int n) {
    const char *p = from;
    for (int i = 0; p && i <= n; i++) {
        p = strstr(p, "<tr");
        if (p && i < n) p += 3;
    }
    return p;
}

/* The text of the last <td> of the row at `row`, into buf. */
static void last_cell(const char *row, char *buf, size_t size) {
    const char *end = strstr(row, "</tr>"), *cell = NULL;
    ck_assert_ptr_nonnull(end);
    for (const char *p = row; (p = strstr(p, "<td")) && p < end; p++)
        cell = p;
    ck_assert_ptr_nonnull(cell);
    cell = strchr(cell, '>') + 1;
    size_t len = (size_t)(strstr(cell, "</td>") - cell);
    ck_assert_uint_lt(len, size);
    memcpy(buf, cell, len);
    buf[len] = '\0';
}

/* Values of `metric` of trials (a, b) at `step` (step < 0: the last). */
static void two_values(const char *db, const char *metric, int a, int b, int step, double v[2]) {
    char sql[512];
    for (int i = 0; i < 2; i++) {
        if (step < 0)
            snprintf(sql, sizeof sql,
                     "SELECT value FROM metric WHERE trial_id = %d AND name = '%s' ORDER BY step "
                     "DESC LIMIT 1",
                     i ? b : a, metric);
        else
            snprintf(sql, sizeof sql,
                     "SELECT value FROM metric WHERE trial_id = %d AND name = '%s' AND step = %d",
                     i ? b : a, metric, step);
        v[i] = test_query(db, sql);
        ck_assert(isfinite(v[i]));
    }
}

/* Mean and 95 % half-width of two values (t(0.975, 1) = 12.7062). */
static void mean_ci2(const double v[2], double *mean, double *half) {
    *mean = (v[0] + v[1]) / 2;
    double sd = fabs(v[0] - v[1]) / sqrt(2.0);
    *half = 12.7062 * sd / sqrt(2.0);
}

/* The report of the sweep: well-formed; every text escaped (a description
 * with & and <, a note with a script tag); provenance from the experiment
 * row; the runs table's values as stored; per setting the mean and 95 %
 * CI computed here from the store; one polyline per setting whose last
 * point maps back to the setting's final mean; the same bytes with --out. */
START_TEST(test_report_html) {
    char *dir, *db = make_store(&dir);
    const char *note[] = {"note", "--db", db, "3", "<script>alert(1)</script> & \"x\"", NULL};
    free(test_mtlab_ok(0, NULL, note));
    const char *args[] = {"report", "rep", "--db", db, NULL};
    char *html = test_mtlab_ok(0, NULL, args), why[512];
    ck_assert_msg(xml_check(html, why, sizeof why) == 0, "%s", why);
    /* no external resource of any kind */
    ck_assert_ptr_null(strstr(html, "<script"));
    ck_assert_ptr_null(strstr(html, "<link"));
    ck_assert_ptr_null(strstr(html, "src=\""));
    ck_assert_ptr_null(strstr(html, "href=\""));
    /* escaped text */
    ck_assert_ptr_nonnull(strstr(html, "<title>mtlab report: rep</title>"));
    ck_assert_ptr_nonnull(
        strstr(html, "<p id=\"description\">two families &amp; two &lt;correlations&gt;</p>"));
    ck_assert_ptr_nonnull(
        strstr(html, "description = two families &amp; two &lt;correlations&gt;\nrepeats = 2\n"));
    ck_assert_ptr_nonnull(strstr(html, "trial 3 (")); /* the note, with its trial */
    ck_assert_ptr_nonnull(strstr(html, "): &lt;script&gt;alert(1)&lt;/script&gt; &amp; "
                                       "&quot;x&quot;</li>"));
    /* provenance */
    char *version = q_text(db, "SELECT code_version FROM experiment WHERE name = 'rep'");
    char *created = q_text(db, "SELECT created FROM experiment WHERE name = 'rep'");
    char want[512];
    snprintf(want, sizeof want, "<tr><th>code version</th><td>%s</td></tr>", version);
    ck_assert_msg(strstr(html, want), "%s", want);
    snprintf(want, sizeof want, "<tr><th>created</th><td>%s</td></tr>", created);
    ck_assert_msg(strstr(html, want), "%s", want);
    ck_assert_ptr_nonnull(strstr(html, "<td>8 (8 done, 0 failed, 0 pending, 0 running)</td>"));
    ck_assert_ptr_nonnull(strstr(html, "<tr><th>train.lr</th><td class=\"n\">0.01</td></tr>"));
    /* the run that trained the 8 trials, with its code version */
    char *run_version = q_text(db, "SELECT mtlab_version FROM run WHERE id = 1");
    ck_assert_str_ne(run_version, "");
    char *started = q_text(db, "SELECT started FROM run WHERE id = 1");
    snprintf(want, sizeof want, "<tr><td class=\"n\">1</td><td class=\"n\">8</td><td>%s</td>",
             started);
    free(started);
    ck_assert_msg(strstr(strstr(html, "<table id=\"run-records\">"), want), "%s", want);
    snprintf(want, sizeof want, "<td>%s</td>", run_version);
    ck_assert_ptr_nonnull(strstr(strstr(html, "<table id=\"run-records\">"), want));
    free(run_version);
    free(version);
    free(created);
    /* the runs table: each trial's final val/loss/total as stored */
    for (int id = 1; id <= 8; id++) {
        char tag[32], cell[64];
        snprintf(tag, sizeof tag, "<tr id=\"trial-%d\">", id);
        const char *row = strstr(html, tag);
        ck_assert_msg(row, "%s", tag);
        double v[2];
        two_values(db, "val/loss/total", id, id, -1, v);
        last_cell(row, cell, sizeof cell);
        snprintf(want, sizeof want, "%.6g", v[0]);
        ck_assert_str_eq(cell, want);
    }
    /* per setting (in order of first trial: 1, 2, 3, 4; repeats 5..8) */
    const char *settings = strstr(html, "<tbody id=\"settings\">");
    ck_assert_ptr_nonnull(settings);
    for (int g = 0; g < 4; g++) {
        char cell[128];
        last_cell(nth_row(settings, g), cell, sizeof cell);
        double v[2], mean, half, got_mean, got_half;
        two_values(db, "val/loss/total", g + 1, g + 5, -1, v);
        mean_ci2(v, &mean, &half);
        ck_assert_msg(sscanf(cell, "%lf \xc2\xb1 %lf", &got_mean, &got_half) == 2, "%s", cell);
        ck_assert_msg(fabs(got_mean - mean) <= 1e-5 * fabs(mean), "setting %d: %s, mean %g", g,
                      cell, mean);
        ck_assert_msg(fabs(got_half - half) <= 5e-3 * half, "setting %d: %s, half %g", g, cell,
                      half);
    }
    ck_assert_ptr_nonnull(
        strstr(nth_row(settings, 0), "<tr><td>mmoe</td><td class=\"n\">0.5</td>"));
    /* curves: two figures (val and test total loss), one polyline per setting */
    ck_assert_ptr_nonnull(strstr(html, "<figure id=\"curve-2\">"));
    const char *fig = strstr(html, "<figure id=\"curve-1\">");
    ck_assert_ptr_nonnull(fig);
    const char *fig_end = strstr(fig, "</figure>");
    int lines = 0;
    for (const char *p = fig; (p = strstr(p, "<polyline")) && p < fig_end; p++)
        lines++;
    ck_assert_int_eq(lines, 4);
    double ylo, yhi, bl, bt, br, bb;
    const char *attr = strstr(fig, "data-y-range=\"");
    ck_assert_int_eq(sscanf(attr, "data-y-range=\"%lf %lf\"", &ylo, &yhi), 2);
    attr = strstr(fig, "data-box=\"");
    ck_assert_int_eq(sscanf(attr, "data-box=\"%lf %lf %lf %lf\"", &bl, &bt, &br, &bb), 4);
    const char *pts = strstr(strstr(fig, "<polyline"), "points=\"") + 8;
    const char *pts_end = strchr(pts, '"');
    const char *last = pts_end;
    while (last > pts && last[-1] != ' ')
        last--;
    double px, py;
    ck_assert_int_eq(sscanf(last, "%lf,%lf", &px, &py), 2);
    ck_assert_double_eq_tol(px, br, 0.01 + (br - bl) * 0.05); /* the last step, near the right */
    double v[2], mean, half;
    two_values(db, "val/loss/total", 1, 5, 20, v);
    mean_ci2(v, &mean, &half);
    const double drawn = ylo + (bb - py) / (bb - bt) * (yhi - ylo);
    ck_assert_msg(fabs(drawn - mean) <= 0.01 * (yhi - ylo) / (bb - bt) + 1e-9, "drawn %g, mean %g",
                  drawn, mean);
    /* the numbers behind it: setting 1 at step 20 */
    snprintf(want, sizeof want,
             "<tr><td>model mmoe, data.correlation 0.5, model.experts 2, model.expert_hidden "
             "4</td><td class=\"n\">20</td><td class=\"n\">2</td><td class=\"n\">%.6g</td><td "
             "class=\"n\">%.6g</td><td class=\"n\">%.6g</td></tr>",
             mean, mean - half, mean + half);
    ck_assert_msg(strstr(html, want), "%s", want);
    /* --out writes the same bytes */
    char *path = test_join(dir, "rep.html");
    const char *to_file[] = {"report", "rep", "--db", db, "--out", path, NULL};
    char *out = test_mtlab_ok(0, NULL, to_file);
    snprintf(want, sizeof want, "wrote %s\n", path);
    ck_assert_str_eq(out, want);
    char *text = test_read_file(path);
    ck_assert_str_eq(text, html);
    free(text);
    free(out);
    /* a real browser, when one is installed (never required) */
    const char *browsers[] = {"chromium", "chromium-browser", "google-chrome"};
    for (size_t i = 0; i < sizeof browsers / sizeof browsers[0]; i++) {
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", browsers[i]);
        if (system(cmd) != 0) continue;
        snprintf(cmd, sizeof cmd,
                 "%s --headless --no-sandbox --disable-gpu --dump-dom 'file://%s' 2>/dev/null",
                 browsers[i], path);
        FILE *pipe = popen(cmd, "r");
        ck_assert_ptr_nonnull(pipe);
        static char dom[1 << 20];
        size_t n = fread(dom, 1, sizeof dom - 1, pipe);
        dom[n] = '\0';
        pclose(pipe);
        ck_assert_msg(strstr(dom, "<polyline"), "%s: no polyline in the DOM", browsers[i]);
        ck_assert_msg(strstr(dom, "&lt;script&gt;alert(1)&lt;/script&gt;"), "%s: the note",
                      browsers[i]);
        ck_assert_ptr_nonnull(strstr(dom, "id=\"trial-8\""));
        break;
    }
    free(path);
    free(html);
    free(db);
    free(dir);
}
END_TEST

/* An experiment whose trials all failed (lr 1e7 diverges): the report is
 * still well-formed, says no trial is done, lists the failed trials; the
 * experiment may be named by id. */
START_TEST(test_report_no_done_trials) {
    char *dir = test_tmpdir(), *db = test_join(dir, "r.db");
    char *ini = test_write_file(dir, "bad.ini",
                                "[experiment]\nname = bad\n[data]\ndim = 10\ntrain = 200\n"
                                "validation = 50\ntest = 50\n[train]\nlr = 1e7\nbatch = 32\n"
                                "steps = 20\neval_every = 10\n[model]\nname = shared_bottom\n");
    const char *run[] = {"run", ini, "--db", db, NULL};
    free(test_mtlab_ok(0, NULL, run));
    const char *args[] = {"report", "1", "--db", db, NULL};
    char *html = test_mtlab_ok(0, NULL, args), why[512];
    ck_assert_msg(xml_check(html, why, sizeof why) == 0, "%s", why);
    ck_assert_ptr_nonnull(strstr(html, "<h1>bad</h1>"));
    ck_assert_ptr_nonnull(strstr(html, "No trial is done yet."));
    ck_assert_ptr_nonnull(strstr(html, "<td>1 (0 done, 1 failed, 0 pending, 0 running)</td>"));
    ck_assert_ptr_nonnull(strstr(html, "<tr id=\"trial-1\"><td class=\"n\">1</td><td>shared_bottom"
                                       "</td><td class=\"n\">0</td><td>failed</td>"));
    free(html);
    free(ini);
    free(db);
    free(dir);
}
END_TEST

/* Bad input: exit 2 (1 for an unwritable file) with one line naming what
 * is wrong; nothing on standard output, no file left by --out. */
START_TEST(test_report_bad_input) {
    char *dir, *db = make_store(&dir);
    char *path = test_join(dir, "r.html"), *nodir = test_join(dir, "no/such/r.html");
    const struct {
        const char *args[10];
        int status;
        const char *fragment;
    } bad[] = {
        {{"report", "--db", db}, 2, "missing EXPERIMENT"},
        {{"report", "nope", "--db", db, "--out", path}, 2, "no experiment 'nope'"},
        {{"report", "rep", "--db", db, "--metrics", "val/loss/totl", "--out", path},
         2,
         "--metrics: rep has no metric 'val/loss/totl' (did you mean 'val/loss/total'?)"},
        {{"report", "rep", "--db", db, "--metrics", " , "}, 2, "--metrics: no metric named"},
        {{"report", "rep", "--db", db, "--metric", "x"}, 2, "(did you mean '--metrics'?)"},
        {{"report", "rep", "extra", "--db", db}, 2, ""},
        {{"report", "rep", "--db", db, "--out", nodir}, 1, "--out: cannot write"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *err, *out = test_mtlab_ok(bad[i].status, &err, bad[i].args);
        ck_assert_msg(strstr(err, bad[i].fragment), "case %zu: '%s' not in: %s", i, bad[i].fragment,
                      err);
        ck_assert_msg(i == 5 || test_count_lines(err) == 1, "case %zu: %s", i, err);
        ck_assert_str_eq(out, "");
        ck_assert_int_ne(access(path, F_OK), 0);
        free(out);
        free(err);
    }
    /* a metric given by name is drawn; --metrics takes several */
    const char *two[] = {"report", "rep", "--db", db, "--metrics", "test/loss/t1, val/loss/t2",
                         "--out",  path,  NULL};
    free(test_mtlab_ok(0, NULL, two));
    char *html = test_read_file(path), why[512];
    ck_assert_msg(xml_check(html, why, sizeof why) == 0, "%s", why);
    ck_assert_ptr_nonnull(strstr(html, "<figcaption>test/loss/t1 over"));
    ck_assert_ptr_nonnull(strstr(html, "<figcaption>val/loss/t2 over"));
    ck_assert_ptr_null(strstr(html, "<figure id=\"curve-3\">"));
    free(html);
    free(nodir);
    free(path);
    free(db);
    free(dir);
}
END_TEST

/* Every allocation of writing a report fails in turn: each run fails
 * cleanly with "out of memory" (ASan: nothing leaked), and the run after
 * the last allocation writes the same bytes as an undisturbed one. */
static char *report_text(store_t *s, const report_job_t *job, int *rc, err_t *err) {
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    *rc = report_write(s, job, f, err);
    long n = ftell(f);
    rewind(f);
    char *text = calloc((size_t)n + 1, 1);
    ck_assert_int_eq(fread(text, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return text;
}

START_TEST(test_report_out_of_memory) {
    char *dir, *db = make_store(&dir);
    store_t *s;
    err_t err = {0};
    ck_assert_int_eq(store_open(&s, db, STORE_READONLY, &err), 0);
    const char *metrics[] = {"val/loss/total"};
    report_job_t job = {"rep", metrics, 1, true};
    int rc;
    char *want = report_text(s, &job, &rc, &err);
    ck_assert_int_eq(rc, 0);
    int failures = 0;
    for (long n = 0;; n++) {
        mem_test_fail_at(n);
        err = (err_t){0};
        char *got = report_text(s, &job, &rc, &err);
        const long calls = mem_test_calls();
        mem_test_fail_at(-1);
        if (rc == 0) {
            ck_assert_int_ge(n, calls);
            ck_assert_str_eq(got, want);
            free(got);
            break;
        }
        ck_assert_msg(strstr(err.msg, "out of memory"), "at %ld: %s", n, err.msg);
        free(got);
        failures++;
    }
    ck_assert_int_gt(failures, 10);
    store_close(s);
    free(want);
    free(db);
    free(dir);
}
END_TEST

Suite *report_suite(void) {
    Suite *s = suite_create("report");
    TCase *tc = tcase_create("diff");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_diff_text);
    tcase_add_test(tc, test_diff_plot);
    tcase_add_test(tc, test_diff_bad_input);
    suite_add_tcase(s, tc);
    tc = tcase_create("report");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_xml_check);
    tcase_add_test(tc, test_report_html);
    tcase_add_test(tc, test_report_no_done_trials);
    tcase_add_test(tc, test_report_bad_input);
    tcase_add_test(tc, test_report_out_of_memory);
    suite_add_tcase(s, tc);
    return s;
}
