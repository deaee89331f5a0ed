/* size.h -- sizes in size_t with overflow checks, and heap estimates.
 *
 * Every buffer length, tensor offset and parameter count is computed in
 * size_t through these helpers, so a configuration too large to represent is
 * a clean error at build time instead of a wrapped product (or, in int, UB).
 * A size is representable when its bytes do not exceed SIZE_BYTES_MAX
 * (PTRDIFF_MAX): glibc's malloc refuses larger blocks, and pointer
 * differences inside a larger object would overflow.
 *
 * size_tally_t sums an upper estimate of the heap a set of blocks takes, for
 * the memory estimates that let a caller refuse work before allocating. */
#ifndef MTLAB_SIZE_H
#define MTLAB_SIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIZE_BYTES_MAX ((size_t)PTRDIFF_MAX)

/* Bytes a heap block can take beyond its request: glibc's chunk header and
 * 16-byte alignment (< 32 bytes), or, for a block served by mmap, the header
 * and the rounding up to a 4 KiB page. */
#define SIZE_BLOCK_OVERHEAD (4096 + 32)

/* *out = a * b.  Returns 0, or -1 (with *out = SIZE_MAX) when the product
 * exceeds SIZE_BYTES_MAX. */
static inline int size_mul(size_t *out, size_t a, size_t b) {
    size_t r;
    if (__builtin_mul_overflow(a, b, &r) || r > SIZE_BYTES_MAX) {
        *out = SIZE_MAX;
        return -1;
    }
    *out = r;
    return 0;
}

/* *out = a * b * c, checked as size_mul. */
static inline int size_mul3(size_t *out, size_t a, size_t b, size_t c) {
    size_t ab;
    return size_mul(&ab, a, b) ? (*out = SIZE_MAX, -1) : size_mul(out, ab, c);
}

/* *out = a + b, checked as size_mul. */
static inline int size_add(size_t *out, size_t a, size_t b) {
    size_t r;
    if (__builtin_add_overflow(a, b, &r) || r > SIZE_BYTES_MAX) {
        *out = SIZE_MAX;
        return -1;
    }
    *out = r;
    return 0;
}

/* An upper estimate of heap bytes, summed block by block.  Once a size
 * overflows, `overflow` stays set and `bytes` is meaningless. */
typedef struct {
    size_t bytes;
    size_t blocks;
    bool overflow;
} size_tally_t;

/* Adds one block of count elements of elem_size bytes (and its overhead). */
void size_tally_block(size_tally_t *t, size_t count, size_t elem_size);
/* Adds n blocks of count elements each. */
void size_tally_blocks(size_tally_t *t, size_t n, size_t count, size_t elem_size);
/* Adds another tally's blocks. */
void size_tally_add(size_tally_t *t, const size_tally_t *other);

#endif
