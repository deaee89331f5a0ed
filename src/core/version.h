/* version.h -- the code version recorded with every experiment. */
#ifndef MTLAB_VERSION_H
#define MTLAB_VERSION_H

/* `git describe --always --dirty` at build time, or "unknown". */
const char *mtlab_version(void);

#endif
