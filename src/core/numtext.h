/* numtext.h -- numbers as text that reads back exactly.
 *
 * Used wherever mtlab writes a number a program may read again: canonical
 * sweep configs (trial identity), query results, figure datablocks. */
#ifndef MTLAB_NUMTEXT_H
#define MTLAB_NUMTEXT_H

#include <stddef.h>

/* The shortest of %.15g, %.16g, %.17g that strtod reads back as v, so 0.1
 * prints as "0.1" and every double survives the round trip; -0 prints as "0"
 * (the same value), infinities as "inf" / "-inf", NaN as "nan". */
void num_to_text(double v, char *out, size_t size);

#endif
