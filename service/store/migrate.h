/*
 * migrate.h: forward-only schema migrations, compiled into the binary from
 * migrations/NNNN_name.sql. Applying them is safe when several replicas
 * start at once: one transaction, serialised by an advisory lock.
 */
#ifndef SVC_STORE_MIGRATE_H
#define SVC_STORE_MIGRATE_H

#include <libpq-fe.h>

#include <stdbool.h>
#include <stddef.h>

#include "util/compiler.h"

struct migration {
    int version;
    const char *name;
    const char *sql;
};

extern const struct migration migrations[];
extern const size_t migrations_count;

/* Highest version compiled in. */
int migrate_latest(void);

/* Apply every migration the database lacks, in one transaction. *applied
 * receives how many ran. On failure err says why and nothing is applied. */
bool migrate_run(PGconn *conn, int *applied, char *err, size_t errlen) SVC_MUSTCHECK;

/* The highest applied version (0 for an empty database). */
bool migrate_version(PGconn *conn, int *version, char *err, size_t errlen) SVC_MUSTCHECK;

#endif
