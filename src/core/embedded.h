/* embedded.h -- the files under sql/ compiled into the binary.
 *
 * build/mtlab runs from anywhere, so the store schema, the figures' SQL and
 * the claims are not read at run time: the Makefile turns every sql/NAME.sql,
 * sql/figures/NAME.sql, sql/migrations/NNN-NAME.sql and
 * sql/claims/PAPER/NAME.sql into C strings (build/gen/sql_embedded.c).  The
 * files in sql/ stay the readable source of truth. */
#ifndef MTLAB_EMBEDDED_H
#define MTLAB_EMBEDDED_H

typedef struct {
    const char *path; /* relative to the repository root, e.g. "sql/schema.sql" */
    const char *text;
} embedded_file_t;

/* All embedded files, terminated by an entry with path NULL. */
extern const embedded_file_t embedded_sql_files[];

/* The text of an embedded file, or NULL. */
const char *embedded_sql(const char *path);

#endif
