/* specdiff.h -- what differs between two spec texts (the stored one of an
 * experiment and the one a run brings): a line diff for `mtlab run
 * --dry-run` and a one-line summary for the changed-spec refusal.
 *
 * Lines are compared whole (a changed comment is a change: the stored text
 * is the record).  The diff is a longest common subsequence of the lines
 * between the common first and last lines, so an edit of a few lines in a
 * long file costs little; a middle part of more than SPECDIFF_MAX_CELLS
 * line pairs is shown as all removed then all added. */
#ifndef MTLAB_SPECDIFF_H
#define MTLAB_SPECDIFF_H

#include <stddef.h>

#define SPECDIFF_MAX_CELLS 4000000 /* old x new lines compared pairwise, at most */

/* The diff of old -> new as text: for each change a line
 *     "@@ stored line A, new line B @@"
 * then "-TEXT" for each removed line and "+TEXT" for each added one; "" when
 * the texts are equal.  *n_changed (may be NULL): removed + added lines.
 * Returns a mem_alloc'd string (mem_free), or NULL when out of memory. */
char *specdiff_text(const char *old_text, const char *new_text, int *n_changed);

/* One line for an error message: "N lines differ, first at stored line A:
 * 'OLD' -> 'NEW'" (each quoted line cut to about 60 bytes), into out. */
void specdiff_summary(const char *old_text, const char *new_text, char *out, size_t n);

#endif
