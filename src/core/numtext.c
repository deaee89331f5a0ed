#include "core/numtext.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

void num_to_text(double v, char *out, size_t size) {
    if (isnan(v)) {
        snprintf(out, size, "nan");
        return;
    }
    if (isinf(v)) {
        snprintf(out, size, "%s", v > 0 ? "inf" : "-inf");
        return;
    }
    if (v == 0.0) v = 0.0; /* -0 and 0 are one value */
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, size, "%.*g", prec, v);
        if (strtod(out, NULL) == v) return;
    }
}
