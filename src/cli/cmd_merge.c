/* cmd_merge.c -- `mtlab merge OUT.db A.db B.db ...`: the stores of a sweep's
 * shards (or of any runs of the same sweep files) into one (store/merge.h). */
#include <stdio.h>

#include "cli/cli.h"
#include "cli/opts.h"
#include "core/mem.h"
#include "store/merge.h"

static void print_note(const char *line, void *ctx) {
    (void)ctx;
    fprintf(stderr, "mtlab merge: %s\n", line);
}

int cmd_merge(int argc, char **argv) {
    bool allow_versions = false;
    opt_t opts[] = {
        {"allow-versions", OPT_FLAG, &allow_versions, NULL,
         "merge experiments written by different mtlab versions (refused by default)", 1, 0, 0},
    };
    const int n_opts = (int)(sizeof opts / sizeof opts[0]);
    err_t err = {0};
    const int max_pos = argc > 1 ? argc : 1;
    const char **pos = mem_alloc(sizeof *pos * (size_t)max_pos);
    if (!pos) {
        err_set(&err, ERR_FAIL, "out of memory");
        return cli_fail("merge", &err);
    }
    int n_pos;
    int rc = cli_options(
        "merge", "mtlab merge OUT.db IN.db... [--allow-versions]",
        "Merges the stores IN.db... into OUT.db (created when missing): experiments are\n"
        "matched by name and must have the same sweep file text, identity rule and mtlab\n"
        "version; trials are matched by (experiment, config, repeat) and stored once, a\n"
        "done copy kept over a failed one, a failed over a pending one.  Every record\n"
        "table is carried.  Two finished copies of a trial with different results are\n"
        "listed on stderr and nothing is written.  New rows get ids in a canonical order,\n"
        "so the result does not depend on the order of the inputs, and merging again\n"
        "changes nothing.  Exit status: 0 merged, 1 refused (different specs, versions or\n"
        "schema, conflicting duplicates) or failed, 2 bad usage.",
        opts, n_opts, argc, argv, pos, max_pos, &n_pos);
    if (rc != CLI_CONTINUE) {
        mem_free(pos);
        return rc;
    }
    if (n_pos < 2) {
        mem_free(pos);
        err_set(&err, ERR_USAGE, "expected OUT.db and at least one store to merge (see --help)");
        return cli_fail("merge", &err);
    }
    merge_opts_t mo = {.allow_versions = allow_versions};
    merge_summary_t sum;
    int status = store_merge(pos[0], pos + 1, n_pos - 1, &mo, print_note, NULL, &sum, &err);
    if (status == 0)
        printf("%s: merged %d store%s (%d skipped): %d experiments and %d trials added, %d "
               "replaced, %d duplicates, %d failed copies superseded\n",
               pos[0], sum.inputs, sum.inputs == 1 ? "" : "s", sum.skipped, sum.experiments_added,
               sum.trials_added, sum.trials_replaced, sum.duplicates, sum.superseded);
    mem_free(pos);
    if (status) return cli_fail("merge", &err);
    return 0;
}
