#include "testutil.h"

Suite *train_suite(void) {
    Suite *s = suite_create("train");
    return s;
}
