#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/help_gen.h"
#include "cli/opts.h"

int cli_fail(const char *cmd, const err_t *err) {
    fprintf(stderr, "mtlab %s: %s\n", cmd, err->msg);
    return err->kind == ERR_USAGE ? 2 : 1;
}

int cli_options(const char *cmd, const char *usage, const char *description, opt_t *opts,
                int n_opts, int argc, char **argv, const char **pos, int max_pos, int *n_pos) {
    err_t err = {0};
    /* `mtlab CMD --help=describe`: the tables, for the man page and the
     * completion (cli/help_gen.h); before MTLAB_DB changes a default. */
    if (argc == 2 && strcmp(argv[1], HELP_DESCRIBE) == 0) {
        help_describe(stdout, usage, description, opts, n_opts);
        return fflush(stdout) == 0 ? 0 : 1;
    }
    /* MTLAB_DB: the store every command uses when --db is not given (and
     * what its --help shows as the default). */
    const char *env_db = getenv("MTLAB_DB");
    for (int i = 0; env_db && env_db[0] && i < n_opts; i++)
        if (opts[i].type == OPT_STRING && strcmp(opts[i].name, "db") == 0)
            *(const char **)opts[i].target = env_db;
    int rc = opts_parse(opts, n_opts, argc, argv, pos, max_pos, n_pos, &err);
    if (rc == 1) {
        opts_usage(stdout, usage, description, opts, n_opts);
        return 0;
    }
    return rc < 0 ? cli_fail(cmd, &err) : CLI_CONTINUE;
}
