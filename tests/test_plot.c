#include "testutil.h"

Suite *plot_suite(void) { return suite_create("plot"); } /* placeholder, being written */
