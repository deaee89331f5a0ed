#include "testutil.h"

Suite *synth_suite(void) {
    Suite *s = suite_create("synth");
    return s;
}
