#include "core/files.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int files_make_dirs(const char *dir, err_t *err) {
    char path[4096];
    if (!*dir) return err_set(err, ERR_USAGE, "no directory given");
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return err_set(err, ERR_FAIL, "%s: path too long", dir);
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(path, 0777) != 0 && errno != EEXIST)
            return err_set(err, ERR_FAIL, "cannot create directory %s: %s", path, strerror(errno));
        *p = saved;
        if (saved == '\0') break;
    }
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return err_set(err, ERR_FAIL, "%s is not a directory", dir);
    return 0;
}
