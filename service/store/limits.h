/*
 * limits.h: the pending-chunk limit of an API key, read from PostgreSQL so
 * that it holds across replicas: the chunks of a key's active jobs that
 * have no vector yet (pending or in flight), summed from the jobs' counters
 * over the key's active jobs only (index jobs_active_by_key), never from the
 * chunks.
 */
#ifndef SVC_STORE_LIMITS_H
#define SVC_STORE_LIMITS_H

#include <libpq-fe.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/compiler.h"

/* The chunks key_id has pending or in flight now, committed jobs only. */
bool limits_pending(PGconn *c, int64_t key_id, int64_t *pending, char *err,
                    size_t errlen) SVC_MUSTCHECK;

/*
 * Inside the transaction that creates a job adding `adding` chunks to send
 * (its counters already written): take the key's limit lock (a transaction
 * advisory lock, so that two jobs of one key created at once, on any
 * replicas, are counted one after the other) and read the key's pending
 * chunks, this job's included. *over: they pass max; *others: the pending
 * chunks of the key's other jobs. Call it last before COMMIT: the lock is
 * held until then, and the caller must take no other lock after it.
 */
bool limits_pending_locked(PGconn *c, int64_t key_id, int64_t adding, int64_t max, bool *over,
                           int64_t *others, char *err, size_t errlen) SVC_MUSTCHECK;

#endif
