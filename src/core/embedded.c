#include "core/embedded.h"

#include <string.h>

const char *embedded_sql(const char *path) {
    for (const embedded_file_t *f = embedded_sql_files; f->path; f++)
        if (strcmp(f->path, path) == 0) return f->text;
    return NULL;
}
