#include "cli/cli.h"
int cmd_reproduce(int argc, char **argv) { return 2; } /* placeholder, being written */
