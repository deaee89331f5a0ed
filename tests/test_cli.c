/* test_cli.c -- build/mtlab as a user runs it: help, determinism of
 * `train`, and bad arguments that must exit 2 with a one-line message. */
#include <stdlib.h>
#include <string.h>

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
    {{"train", "--batch", "12x"}, "--batch: '12x' is not an integer"},
    {{"train", "--lr"}, "--lr needs a value"},
    {{"train", "--bogus", "1"}, "unknown option '--bogus'"},
    {{"train", "--batch", "600", "--train", "500"}, "larger than the training set"},
    {{"train", "--dim", "1"}, "dim"},
    {{"train", "--alpha", "weird"}, "--alpha"},
    {{"train", "--seed", "-3"}, "--seed"},
    {{"gen", "--corr", "nan"}, "--corr"},
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

Suite *cli_suite(void) {
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("cli");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_train_help_lists_options);
    tcase_add_test(tc, test_train_deterministic);
    tcase_add_loop_test(tc, test_bad_arguments, 0, (int)(sizeof bad_args / sizeof bad_args[0]));
    tcase_add_test(tc, test_top_level);
    suite_add_tcase(s, tc);
    return s;
}
