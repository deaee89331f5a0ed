/* test_cli.c -- build/mtlab as a user runs it: help, determinism of
 * `train`, and bad arguments that must exit 2 with a one-line message. */
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "store/store.h"
#include "data/synth.h"
#include "testutil.h"

#define SHORT_RUN "--steps", "120", "--eval-every", "40", "--train", "2000"

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

START_TEST(test_train_help_lists_options) {
    char *out, *err;
    const char *args[] = {"train", "--help", NULL};
    ck_assert_int_eq(run_mtlab(&out, &err, args), 0);
    const char *expect[] = {"--model NAME", "(default: mmoe)", "--corr P", "(default: 0.5)",
                            "--lr LR", "(default: 0.001)", "--batch B", "(default: 128)",
                            "--steps S", "(default: 3000)", "--eval-every K", "(default: 100)",
                            "--seed S", "--experts N", "(default: 8)", "--tower-hidden H"};
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++)
        ck_assert_msg(strstr(out, expect[i]), "help lacks '%s'", expect[i]);
    free(out);
    free(err);
}
END_TEST

START_TEST(test_train_deterministic) {
    char *a, *b, *c, *e;
    const char *args[] = {"train", "--model", "mmoe", "--corr", "0.5", SHORT_RUN, "--seed", "1", NULL};
    const char *other[] = {"train", "--model", "mmoe", "--corr", "0.5", SHORT_RUN, "--seed", "2", NULL};
    ck_assert_int_eq(run_mtlab(&a, &e, args), 0);
    free(e);
    ck_assert_int_eq(run_mtlab(&b, &e, args), 0);
    free(e);
    ck_assert_int_eq(run_mtlab(&c, &e, other), 0);
    free(e);
    ck_assert_str_eq(a, b);
    ck_assert_str_ne(a, c);
    /* header, 3 evaluation rows, the final losses and the gate table */
    ck_assert_ptr_nonnull(strstr(a, "step"));
    ck_assert_ptr_nonnull(strstr(a, "\n   120 "));
    ck_assert_ptr_nonnull(strstr(a, "final test loss:"));
    ck_assert_ptr_nonnull(strstr(a, "mean gate weight"));
    ck_assert_ptr_nonnull(strstr(a, "\nt2 "));
    free(a);
    free(b);
    free(c);
}
END_TEST

/* Each of these must exit 2 with exactly one line on stderr that says what
 * is wrong (the expected fragment), and print no results. */
static const struct {
    const char *args[10];
    const char *fragment;
} bad_args[] = {
    {{"train", "--model", "nosuch"}, "unknown model 'nosuch'"},
    {{"train", "--corr", "1.5"}, "corr"},
    {{"train", "--corr", "-1.01"}, "corr"},
    {{"train", "--tasks", "3", "--corr", "-0.9"}, "positive semi-definite"},
    {{"train", "--train", "0"}, "--train"},
    {{"train", "--experts", "0"}, "--experts"},
    {{"train", "--steps", "-5"}, "--steps"},
    {{"train", "--lr", "abc"}, "--lr: 'abc' is not a number"},
    {{"train", "--lr", "1e-310"}, "--lr: 1e-310 is too small (out of range)"},
    {{"train", "--lr", "1e400"}, "--lr: 1e400 is too large (out of range)"},
    {{"train", "--lr", "1e-39"}, "--lr: 1e-39 is too small (below single precision"},
    {{"train", "--batch", "12x"}, "--batch: '12x' is not an integer"},
    {{"train", "--lr"}, "--lr needs a value"},
    {{"train", "--bogus", "1"}, "unknown option '--bogus'"},
    {{"train", "--batch", "600", "--train", "500"}, "larger than the training set"},
    {{"train", "--dim", "1"}, "dim"},
    {{"train", "--alpha", "weird"}, "--alpha"},
    {{"train", "--seed", "-3"}, "--seed"},
    {{"gen", "--corr", "nan"}, "--corr"},
    {{"gen", "--alpha", "list", "--sinusoids", "2", "--alpha-values", "1 2"}, "--beta-values"},
    {{"gen", "--alpha", "list", "--sinusoids", "2", "--alpha-values", "1", "--beta-values", "1 2"},
     "--alpha-values: 1 numbers for 2 sinusoids"},
    {{"gen", "--alpha-values", "1 2"}, "apply with --alpha list only"},
    {{"reproduce", "--paper", "nosuch"}, "--paper: unknown paper 'nosuch' (known: mmoe, "},
    {{"reproduce", "--scale", "a/b"}, "--scale: 'a/b' is not quick, paper or a scale section"},
    {{"nosuch"}, "unknown command 'nosuch'"},
};

START_TEST(test_bad_arguments) {
    char *out, *err;
    int rc = run_mtlab(&out, &err, bad_args[_i].args);
    ck_assert_msg(rc == 2, "%s %s: exit %d, stderr: %s", bad_args[_i].args[0],
                  bad_args[_i].args[1], rc, err);
    ck_assert_msg(strstr(err, bad_args[_i].fragment), "stderr '%s' lacks '%s'", err,
                  bad_args[_i].fragment);
    if (strcmp(bad_args[_i].args[0], "nosuch") != 0)
        ck_assert_msg(count_lines(err) == 1, "expected one line, got: %s", err);
    ck_assert_ptr_null(strstr(out, "final test loss"));
    free(out);
    free(err);
}
END_TEST

/* `mtlab gen --sinusoids-only` prints exactly the alpha, beta the generator
 * uses (synth_sinusoids) for the given options: drawn, index and list. */
START_TEST(test_gen_sinusoids_only) {
    static const char *const cases[][12] = {
        {"gen", "--sinusoids", "4", "--alpha-seed", "7", "--sinusoids-only", NULL},
        {"gen", "--sinusoids", "3", "--alpha", "index", "--sinusoids-only", NULL},
        {"gen", "--sinusoids", "2", "--alpha", "list", "--alpha-values", "0.5 -1e-3",
         "--beta-values", "2 0.1", "--sinusoids-only", NULL},
    };
    for (int c = 0; c < 3; c++) {
        synth_params_t p;
        synth_defaults(&p);
        if (c == 0) {
            p.sinusoids = 4;
            p.alpha_seed = 7;
        } else if (c == 1) {
            p.sinusoids = 3;
            p.alpha_mode = ALPHA_INDEX;
        } else {
            p.sinusoids = 2;
            p.alpha_mode = ALPHA_LIST;
            p.alpha[0] = 0.5, p.alpha[1] = -1e-3, p.beta[0] = 2, p.beta[1] = 0.1;
        }
        double alpha[MTLAB_MAX_SINUSOIDS], beta[MTLAB_MAX_SINUSOIDS];
        synth_sinusoids(&p, alpha, beta);
        char *out, *err;
        ck_assert_int_eq(run_mtlab(&out, &err, cases[c]), 0);
        const char *line = out;
        ck_assert_msg(strncmp(line, "sinusoid alpha beta\n", 20) == 0, "%s", out);
        line = strchr(line, '\n') + 1;
        for (int i = 0; i < p.sinusoids; i++) {
            int index;
            double a, b;
            ck_assert_int_eq(sscanf(line, "%d %lf %lf", &index, &a, &b), 3);
            ck_assert_int_eq(index, i + 1);
            ck_assert_msg(a == alpha[i] && b == beta[i], "case %d sinusoid %d: %.17g %.17g", c, i,
                          a, b);
            line = strchr(line, '\n') + 1;
        }
        ck_assert_str_eq(line, "");
        free(out);
        free(err);
    }
}
END_TEST

START_TEST(test_top_level) {
    char *out, *err;
    const char *none[] = {NULL};
    ck_assert_int_eq(run_mtlab(&out, &err, none), 2);
    ck_assert_ptr_nonnull(strstr(err, "usage: mtlab"));
    free(out);
    free(err);
    const char *help[] = {"help", NULL};
    ck_assert_int_eq(run_mtlab(&out, &err, help), 0);
    ck_assert_ptr_nonnull(strstr(out, "train"));
    ck_assert_ptr_nonnull(strstr(out, "gen"));
    free(out);
    free(err);
}
END_TEST

/* ---- mtlab sql on a large result --------------------------------------- */

#define BIG_ROWS   2000000
#define BIG_RSS_KB (64 * 1024) /* bound on mtlab's peak memory for BIG_ROWS rows */

/* VmHWM (peak resident memory, kB) of process pid when it runs the program
 * named `name`, else -1. */
static long peak_rss_kb(pid_t pid, const char *name) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long kb = -1;
    bool named = false;
    while (fgets(line, sizeof line, f)) {
        char value[64];
        if (sscanf(line, "Name: %63s", value) == 1) named = strcmp(value, name) == 0;
        if (sscanf(line, "VmHWM: %ld", &kb) == 1) break;
    }
    fclose(f);
    return named ? kb : -1;
}

/* Runs build/mtlab with args, stdout to the file out_path; returns its exit
 * status and its peak resident memory (kB) in *peak_kb.  The peak is VmHWM of
 * the mtlab image, read every few milliseconds while it runs: wait4's
 * ru_maxrss would also count the child before its exec, a copy of this test
 * runner (hundreds of MB under ASan). */
static int run_measured(const char *const *args, const char *out_path, long *peak_kb) {
    const char *bin = getenv("MTLAB_BIN");
    ck_assert_msg(bin != NULL, "MTLAB_BIN is not set (run the tests through `make check`)");
    pid_t pid = fork();
    ck_assert(pid >= 0);
    if (pid == 0) {
        const char *argv[16];
        int n = 0;
        argv[n++] = bin;
        for (int i = 0; args[i] && n < 15; i++)
            argv[n++] = args[i];
        argv[n] = NULL;
        /* Under ASan freed memory waits in a quarantine (256 MB by default)
         * that would count as mtlab's own; a small one keeps the bound. */
        char asan[512];
        const char *had = getenv("ASAN_OPTIONS");
        snprintf(asan, sizeof asan, "%s%squarantine_size_mb=4", had ? had : "",
                 had && *had ? ":" : "");
        setenv("ASAN_OPTIONS", asan, 1);
        int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || dup2(fd, 1) < 0) _exit(126);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    const char *name = strrchr(bin, '/') ? strrchr(bin, '/') + 1 : bin;
    int status;
    pid_t done;
    *peak_kb = -1;
    while ((done = waitpid(pid, &status, WNOHANG)) == 0) {
        long kb = peak_rss_kb(pid, name);
        if (kb > *peak_kb) *peak_kb = kb;
        struct timespec pause = {0, 5 * 1000000L};
        nanosleep(&pause, NULL);
    }
    ck_assert_int_eq(done, pid);
    ck_assert_msg(*peak_kb > 0, "never saw %s running as pid %d", name, (int)pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Lines of a file and a copy of its last one. */
static long file_lines(const char *path, char *last, size_t size) {
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    long n = 0;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        size_t len = strlen(line);
        if (len > 0 && line[len - 1] == '\n') {
            n++;
            snprintf(last, size, "%s", line);
        }
    }
    fclose(f);
    return n;
}

/* mtlab sql streams its result: two million rows, as CSV and as a table,
 * all printed, in a bounded amount of memory (it used to hold the whole
 * result: about 350 MB here). */
START_TEST(sql_streams_large_results) {
    char *dir = test_tmpdir(), db[512], out_path[512], sql[512], last[256];
    snprintf(db, sizeof db, "%s/results.db", dir);
    snprintf(out_path, sizeof out_path, "%s/out.txt", dir);
    store_t *s;
    err_t err = {0};
    ck_assert_msg(store_open(&s, db, 0, &err) == 0, "%s", err.msg);
    store_close(s);
    snprintf(sql, sizeof sql,
             "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d) "
             "SELECT i, 'row ' || i AS label, i * 0.5 AS half FROM n",
             BIG_ROWS);
    for (int csv = 0; csv <= 1; csv++) {
        const char *table_args[] = {"sql", "--db", db, sql, NULL};
        const char *csv_args[] = {"sql", "--csv", "--db", db, sql, NULL};
        long peak_kb;
        int rc = run_measured(csv ? csv_args : table_args, out_path, &peak_kb);
        ck_assert_msg(rc == 0, "mtlab sql%s: exit %d", csv ? " --csv" : "", rc);
        ck_assert_msg(peak_kb < BIG_RSS_KB, "mtlab sql%s: peak memory %ld kB, bound %d kB",
                      csv ? " --csv" : "", peak_kb, BIG_RSS_KB);
        long lines = file_lines(out_path, last, sizeof last);
        ck_assert_int_eq(lines, BIG_ROWS + (csv ? 1 : 2)); /* header (and rule) */
        char expect[128];
        if (csv)
            snprintf(expect, sizeof expect, "%d,\"row %d\",%d\n", BIG_ROWS, BIG_ROWS, BIG_ROWS / 2);
        else /* wider than the columns sized on the first rows: no padding */
            snprintf(expect, sizeof expect, "%d  row %d  1e+06\n", BIG_ROWS, BIG_ROWS);
        ck_assert_str_eq(last, expect);
    }
    unlink(out_path);
    unlink(db);
    rmdir(dir);
    free(dir);
}
END_TEST

Suite *cli_suite(void) {
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("cli");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_train_help_lists_options);
    tcase_add_test(tc, test_train_deterministic);
    tcase_add_loop_test(tc, test_bad_arguments, 0, (int)(sizeof bad_args / sizeof bad_args[0]));
    tcase_add_test(tc, test_top_level);
    tcase_add_test(tc, test_gen_sinusoids_only);
    suite_add_tcase(s, tc);
    TCase *big = tcase_create("sql_stream"); /* seconds per run; more under ASan */
    tcase_set_timeout(big, 300);
    tcase_add_test(big, sql_streams_large_results);
    suite_add_tcase(s, big);
    return s;
}
