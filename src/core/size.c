/* size.c -- heap tallies (see size.h). */
#include "core/size.h"

void size_tally_blocks(size_tally_t *t, size_t n, size_t count, size_t elem_size) {
    size_t one, all;
    if (t->overflow || size_mul(&one, count, elem_size) ||
        size_add(&one, one, SIZE_BLOCK_OVERHEAD) || size_mul(&all, n, one) ||
        size_add(&t->bytes, t->bytes, all) || size_add(&t->blocks, t->blocks, n))
        t->overflow = true;
}

void size_tally_block(size_tally_t *t, size_t count, size_t elem_size) {
    size_tally_blocks(t, 1, count, elem_size);
}

void size_tally_add(size_tally_t *t, const size_tally_t *other) {
    if (t->overflow || other->overflow || size_add(&t->bytes, t->bytes, other->bytes) ||
        size_add(&t->blocks, t->blocks, other->blocks))
        t->overflow = true;
}
