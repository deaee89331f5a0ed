#include <stdio.h>

#include "cli/cli.h"
#include "cli/opts.h"

int cli_fail(const char *cmd, const err_t *err) {
    fprintf(stderr, "mtlab %s: %s\n", cmd, err->msg);
    return err->kind == ERR_USAGE ? 2 : 1;
}

int cli_options(const char *cmd, const char *usage, const char *description, opt_t *opts,
                int n_opts, int argc, char **argv, const char **pos, int max_pos, int *n_pos) {
    err_t err = {0};
    int rc = opts_parse(opts, n_opts, argc, argv, pos, max_pos, n_pos, &err);
    if (rc == 1) {
        opts_usage(stdout, usage, description, opts, n_opts);
        return 0;
    }
    return rc < 0 ? cli_fail(cmd, &err) : CLI_CONTINUE;
}
