/* main.c -- `mtlab COMMAND [ARGS]`: dispatches to one file per subcommand. */
#include <stdio.h>
#include <string.h>

#include <cblas.h>
#include <sqlite3.h>

#include "cli/cli.h"
#include "cli/help_gen.h"
#include "core/real.h"
#include "core/version.h"
#include "sweep/keys.h"
#include "core/provenance.h"

typedef cli_command_t command_t; /* cli/help_gen.h */

static const command_t commands[] = {
    {"run", cmd_run, "run a sweep (experiments/*.ini) into the SQLite store, resuming"},
    {"ls", cmd_ls, "list the experiments of a store with trial counts by status"},
    {"show", cmd_show, "show one trial: config, seeds, final metrics, gate means"},
    {"sql", cmd_sql, "run a read-only SQL query on a store"},
    {"export", cmd_export, "write every table of a store as CSV files"},
    {"plot", cmd_plot, "write a paper figure as a gnuplot script (and render it)"},
    {"claims", cmd_claims, "check a paper's claims on an experiment: bootstrap CI, support, verdict"},
    {"reproduce", cmd_reproduce, "run the MMoE synthetic study and make all its figures"},
    {"train", cmd_train, "train one model on synthetic data and print its curves"},
    {"gen", cmd_gen, "write a synthetic dataset as CSV"},
    {"trials", cmd_trials, "list the trials of an experiment: varying keys and final metrics"},
    {"keys", cmd_keys, "list every sweep-file key: type, range, default, meaning"},
    {"schema", cmd_schema, "print the schema of a store (tables, indexes, views)"},
    {"tag", cmd_tag, "add, remove or list tags of trials or an experiment"},
    {"note", cmd_note, "add or list notes on a trial or an experiment"},
    {"rm", cmd_rm, "remove trials, an experiment, or the failed trials, with their records"},
    {"merge", cmd_merge, "merge stores (the shards of a sweep) into one"},
    {"slurm", cmd_slurm, "run a sweep on a Slurm cluster as a job array of shards"},
    {"diff", cmd_diff, "compare two trials: config, seeds, final metrics, curves overlaid"},
    {"report", cmd_report, "write an experiment as one self-contained HTML report"},
    {"rerun", cmd_rerun, "retrain a stored trial in memory and compare its final metrics' bits"},
};
static const int n_commands = (int)(sizeof commands / sizeof commands[0]);

static void usage(FILE *f) {
    fprintf(f, "usage: mtlab COMMAND [OPTIONS]   (mtlab COMMAND --help for its options)\n\n"
               "commands:\n");
    for (int i = 0; i < n_commands; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

/* `mtlab --version`: the code version (git describe; "-dirty" when built
 * from a tree with uncommitted changes), the BLAS and SQLite in use. */
static int print_version(void) {
    const char *v = mtlab_version();
    size_t n = strlen(v);
    const bool dirty = n >= 6 && strcmp(v + n - 6, "-dirty") == 0;
    printf("mtlab %s\n", v);
    printf("  source:  %s\n", dirty ? "dirty (built with uncommitted changes)" : "clean");
    printf("  numbers: %s\n", REAL_NAME);
    printf("  BLAS:    %s\n", openblas_get_config());
    printf("  SQLite:  %s (built against %s)\n", sqlite3_libversion(), SQLITE_VERSION);
    return fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
}

int main(int argc, char **argv) {
    /* MTLAB_BLAS_CORE: OpenBLAS reads its core when it loads, so asking for
     * one re-executes mtlab with OPENBLAS_CORETYPE set (core/provenance.h). */
    err_t core_err = {0};
    if (provenance_force_core(argv, &core_err)) {
        fprintf(stderr, "mtlab: %s\n", core_err.msg);
        return core_err.kind == ERR_USAGE ? 2 : 1;
    }
    /* One BLAS thread: results must not depend on how work is split (SPEC §5);
     * parallelism comes from running trials in separate processes. */
    openblas_set_num_threads(1);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) return print_version();
    if (strcmp(name, "help") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        if (argc > 2) {
            /* mtlab help --man | --completion: generated from the tables */
            if (strcmp(argv[2], "--man") == 0 || strcmp(argv[2], "--completion") == 0) {
                err_t err = {0};
                int rc = argv[2][2] == 'm'
                             ? help_man(stdout, commands, n_commands, mtlab_version(), &err)
                             : help_completion(stdout, commands, n_commands, &err);
                if (rc == 0 && fflush(stdout) != 0) rc = err_set(&err, ERR_FAIL, "cannot write");
                if (rc) fprintf(stderr, "mtlab help: %s\n", err.msg);
                return rc ? 1 : 0;
            }
            for (int i = 0; i < n_commands; i++)
                if (strcmp(commands[i].name, argv[2]) == 0) {
                    char *help_argv[] = {argv[2], "--help", NULL};
                    return commands[i].run(2, help_argv);
                }
        }
        usage(stdout);
        return 0;
    }
    for (int i = 0; i < n_commands; i++)
        if (strcmp(commands[i].name, name) == 0) return commands[i].run(argc - 1, argv + 1);
    const char *names[sizeof commands / sizeof commands[0]];
    for (int i = 0; i < n_commands; i++)
        names[i] = commands[i].name;
    const char *near = sweep_suggest(name, names, n_commands);
    if (near)
        fprintf(stderr, "mtlab: unknown command '%s' (did you mean '%s'?)\n", name, near);
    else
        fprintf(stderr, "mtlab: unknown command '%s'\n", name);
    usage(stderr);
    return 2;
}
