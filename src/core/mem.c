/* mem.c -- the allocation wrapper (see mem.h). */
#include "core/mem.h"

#include <stdlib.h>
#include <string.h>

static long calls;        /* allocations since the last mem_test_fail_at */
static long fail_at = -1; /* the call number that fails, -1: none */

/* Whether this call is the one a test asked to fail. */
static int injected_failure(void) {
    return calls++ == fail_at;
}

void *mem_alloc(size_t size) {
    return injected_failure() ? NULL : malloc(size ? size : 1);
}

void *mem_calloc(size_t n, size_t size) {
    return injected_failure() ? NULL : calloc(n ? n : 1, size ? size : 1);
}

void *mem_realloc(void *p, size_t size) {
    return injected_failure() ? NULL : realloc(p, size ? size : 1);
}

void *mem_aligned(size_t align, size_t size) {
    size = (size ? size : 1) + align - 1;
    return injected_failure() ? NULL : aligned_alloc(align, size - size % align);
}

void mem_free(void *p) {
    free(p);
}

char *mem_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *copy = mem_alloc(n);
    if (copy) memcpy(copy, s, n);
    return copy;
}

void mem_test_fail_at(long n) {
    calls = 0;
    fail_at = n;
}

long mem_test_calls(void) {
    return calls;
}
