/*
 * db_pool.h: a fixed-size pool of PostgreSQL connections shared by threads.
 * Connections open lazily and are dropped and reopened when they break, so
 * the pool recovers by itself after the database restarts.
 */
#ifndef SVC_STORE_POOL_H
#define SVC_STORE_POOL_H

#include <libpq-fe.h>

#include <stddef.h>

struct db_pool;

/* A pool of size connections to url (copied). NULL on OOM. */
struct db_pool *db_pool_new(const char *url, size_t size);
/* Close every connection; all must have been released. NULL is a no-op. */
void db_pool_free(struct db_pool *p);

/* Borrow a connection, waiting up to timeout_ms for a free one. Returns NULL
 * with err set when none frees up in time or the database is unreachable. */
PGconn *db_pool_acquire(struct db_pool *p, int timeout_ms, char *err, size_t errlen);
/* Give it back. A broken connection, or one left inside a transaction, is
 * closed rather than reused. */
void db_pool_release(struct db_pool *p, PGconn *c);

/* At this moment: connections lent out, connections open (lent or idle), and
 * the pool's size. */
void db_pool_stats(struct db_pool *p, size_t *in_use, size_t *open, size_t *size);

#endif
