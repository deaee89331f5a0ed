/* cmd_claims.c -- `mtlab claims EXP`: a paper's qualitative claims
 * (sql/claims/PAPER/NAME.sql) checked on one experiment of a store opened
 * read-only, each per condition with its bootstrap interval, support and
 * verdict (claims/claims.h). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "claims/claims.h"
#include "cli/cli.h"
#include "cli/opts.h"
#include "store/query.h"
#include "store/store.h"

int cmd_claims(int argc, char **argv) {
    const char *db = "results.db", *paper = "mmoe", *metric = CLAIMS_DEFAULT_METRIC;
    const char *plot = NULL;
    uint64_t seed = CLAIMS_DEFAULT_SEED;
    int resamples = CLAIMS_DEFAULT_RESAMPLES;
    bool csv = false, summary = false;
    opt_t opts[] = {
        {"db", OPT_STRING, &db, "FILE", "the SQLite store", 1, 0, 0},
        {"paper", OPT_STRING, &paper, "NAME", "the claims of sql/claims/NAME/", 1, 0, 0},
        {"metric", OPT_STRING, &metric, "NAME", "the final metric the claims are about", 1, 0, 0},
        {"seed", OPT_U64, &seed, "N", "seed of the bootstrap's generator", 1, 0, 0},
        {"resamples", OPT_INT, &resamples, "B", "bootstrap resamples", 1, 1e7, 0},
        {"csv", OPT_FLAG, &csv, NULL, "print CSV (full precision) instead of a table", 1, 0, 0},
        {"summary", OPT_FLAG, &summary, NULL,
         "print each claim's conditions counted by verdict, per part of the condition "
         "(model.init=torch, ...) instead of one line per condition",
         1, 0, 0},
        {"plot", OPT_STRING, &plot, "FILE.gp",
         "also write a gnuplot script drawing claims x conditions coloured by verdict", 1, 0, 0},
    };
    const int n_opts = (int)(sizeof opts / sizeof opts[0]);
    err_t err = {0};
    const char *pos[1];
    int n_pos;
    int rc = cli_options(
        "claims",
        "mtlab claims EXP [--db FILE] [--paper mmoe] [--metric M] [--seed N] [--resamples B] "
        "[--summary] [--csv] [--plot FILE.gp]",
        "Checks a paper's qualitative claims (sql/claims/PAPER/*.sql) on experiment EXP.\n"
        "Per claim and condition: the statistic on the runs, its 95 % percentile bootstrap\n"
        "interval over repeats, the support (fraction of resamples in which the claim holds)\n"
        "and the verdict: holds if support >= 0.95, fails if <= 0.05, else undecided\n"
        "(also with fewer than 3 repeats).  The same seed gives the same output.",
        opts, n_opts, argc, argv, pos, 1, &n_pos);
    if (rc != CLI_CONTINUE) return rc;
    if (n_pos == 0) {
        err_set(&err, ERR_USAGE, "missing EXP, the experiment (see mtlab claims --help)");
        return cli_fail("claims", &err);
    }

    store_t *s;
    if (store_open(&s, db, STORE_READONLY, &err)) return cli_fail("claims", &err);
    claims_options_t opt = {
        .experiment = pos[0], .metric = metric, .seed = seed, .resamples = resamples};
    claims_t *c = NULL;
    store_table_t *t = NULL;
    int status = 0;
    if (claims_run(s, paper, &opt, &c, &err) ||
        (summary ? claims_summary(c, &t, &err) : claims_table(c, &t, &err)) ||
        (csv ? store_table_csv(stdout, t, &err) : store_table_print(stdout, t, &err)))
        status = cli_fail("claims", &err);
    if (status == 0 && plot &&
        (summary ? claims_plot_summary(t, pos[0], plot, &err) : claims_plot(c, pos[0], plot, &err)))
        status = cli_fail("claims", &err);
    store_table_free(t);
    claims_free(c);
    store_close(s);
    if (status == 0 && (fflush(stdout) != 0 || ferror(stdout))) {
        err_set(&err, ERR_FAIL, "cannot write to standard output");
        status = cli_fail("claims", &err);
    }
    return status;
}
