/* files.h -- small file-system helpers. */
#ifndef MTLAB_FILES_H
#define MTLAB_FILES_H

#include "core/err.h"

/* `mkdir -p dir`: creates dir and its missing parents.  Returns 0, or -1
 * with *err naming the directory that could not be created (ERR_FAIL), or
 * ERR_USAGE for an empty path. */
int files_make_dirs(const char *dir, err_t *err);

#endif
