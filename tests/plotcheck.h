/* plotcheck.h -- what the figure tests assert of a written gnuplot script,
 * shared by the suites that test figures (plot, adatt_study, routes). */
#ifndef MTLAB_PLOTCHECK_H
#define MTLAB_PLOTCHECK_H

#include "store/query.h"

/* Every data row of every datablock ("$name << EOD" ... "EOD") of the script
 * equals the query's rows t, in order: numbers exactly (parsed back), text
 * as text, NULL as NaN; the script has at least one datablock.  Fails the
 * running Check test otherwise, naming the row and column. */
void plotcheck_script_data(const char *script, const store_table_t *t);

/* gnuplot, when installed, runs the script on the dumb terminal and says
 * nothing on stdout or stderr (a warning such as "Skipping data file with no
 * valid points" means an empty panel).  Does nothing without gnuplot. */
void plotcheck_gnuplot_runs(const char *script);

#endif
