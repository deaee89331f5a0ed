#include "testutil.h"

Suite *models_suite(void) {
    Suite *s = suite_create("models");
    return s;
}
