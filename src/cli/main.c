/* main.c -- `mtlab COMMAND [ARGS]`: dispatches to one file per subcommand. */
#include <stdio.h>
#include <string.h>

#include <cblas.h>

#include "cli/cli.h"
#include "core/provenance.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command_t;

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
    {"merge", cmd_merge, "merge stores (the shards of a sweep) into one"},
    {"slurm", cmd_slurm, "run a sweep on a Slurm cluster as a job array of shards"},
};
static const int n_commands = (int)(sizeof commands / sizeof commands[0]);

static void usage(FILE *f) {
    fprintf(f, "usage: mtlab COMMAND [OPTIONS]   (mtlab COMMAND --help for its options)\n\n"
               "commands:\n");
    for (int i = 0; i < n_commands; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
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
    if (strcmp(name, "help") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        if (argc > 2) {
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
    fprintf(stderr, "mtlab: unknown command '%s'\n", name);
    usage(stderr);
    return 2;
}
