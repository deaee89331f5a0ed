#include "core/version.h"

#ifndef MTLAB_VERSION
#define MTLAB_VERSION "unknown"
#endif

const char *mtlab_version(void) { return MTLAB_VERSION; }
