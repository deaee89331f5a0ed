/* mem.h -- the one allocation wrapper.
 *
 * Every allocation of mtlab's own code goes through mem_alloc, mem_calloc
 * and mem_realloc (and is released with mem_free), so that a test can make
 * the n-th allocation fail and walk the failure point through model build,
 * sweep load and trial run: each must then fail cleanly with an error, leak
 * nothing and not crash.  SQLite, inih and OpenBLAS allocate on their own.
 *
 * Outside tests the wrapper is malloc and friends, plus one counter.  The
 * counter and the failure point are the library's only mutable globals
 * besides the runner's signal flag; they are per process (every runner
 * worker is a process). */
#ifndef MTLAB_MEM_H
#define MTLAB_MEM_H

#include <stddef.h>

void *mem_alloc(size_t size);
void *mem_calloc(size_t n, size_t size);
void *mem_realloc(void *p, size_t size);
/* size bytes aligned to `align` (a power of two; size is rounded up to a
 * multiple of it). */
void *mem_aligned(size_t align, size_t size);
void mem_free(void *p);
/* A copy of s (NULL when out of memory). */
char *mem_strdup(const char *s);

/* Testing: the allocation `n` calls from now (0: the next one) returns
 * NULL, once; n < 0 turns the failure off.  mem_test_calls() counts the
 * calls since the last mem_test_fail_at, so a test can run an operation once
 * to learn how many allocations it makes, then fail each in turn. */
void mem_test_fail_at(long n);
long mem_test_calls(void);

#endif
