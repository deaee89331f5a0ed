#include "cli/cli.h"
int cmd_gen(int argc, char **argv) { return 2; }
