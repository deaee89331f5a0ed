/* schema.h -- the store's schema (sql/schema.sql) as compiled into the binary. */
#ifndef MTLAB_STORE_SCHEMA_H
#define MTLAB_STORE_SCHEMA_H

/* The bytes of sql/schema.sql, NUL-terminated. */
extern const char store_schema_sql[];

#endif
