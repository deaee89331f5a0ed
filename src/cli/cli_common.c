#include <stdio.h>

#include "cli/cli.h"

int cli_fail(const char *cmd, const err_t *err) {
    fprintf(stderr, "mtlab %s: %s\n", cmd, err->msg);
    return err->kind == ERR_USAGE ? 2 : 1;
}
