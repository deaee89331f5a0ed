/* data_path.c -- the installed data files (contract: data_path.h). */
#include "cli/data_path.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

const char *cli_data_path(const char *rel, char *buf, size_t size) {
    if (access(rel, R_OK) == 0 || rel[0] == '/') return rel;
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return rel;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash) return rel;
    *slash = '\0'; /* the binary's directory: PREFIX/bin */
    if ((size_t)snprintf(buf, size, "%s/../share/mtlab/%s", exe, rel) >= size) return rel;
    return access(buf, R_OK) == 0 ? buf : rel;
}
