/* data_path.h -- where an installed mtlab finds its data files.
 *
 * `make install PREFIX=P` puts the binary in P/bin and the sweep files in
 * P/share/mtlab/experiments.  A path such as "experiments/mmoe/fig2.ini" is
 * looked up in the current directory first (a checkout), then next to the
 * running binary: DIR/../share/mtlab/PATH where DIR holds /proc/self/exe.
 * Nothing is compiled in, so an installed tree can be moved (DESTDIR). */
#ifndef MTLAB_CLI_DATA_PATH_H
#define MTLAB_CLI_DATA_PATH_H

#include <stddef.h>

/* rel when it is readable from the current directory, else the installed
 * copy written into buf when that one is readable, else rel. */
const char *cli_data_path(const char *rel, char *buf, size_t size);

#endif
