/*
 * worker.h: the pool of worker threads that moves chunks through Google's
 * batch API: claim pending chunks, write the intent, create the batch, poll
 * it, store the vectors; reconcile batches whose create had an unknown
 * outcome; cancel at Google what users cancelled; a watchdog for batches
 * stuck past batch_deadline_ms. All state lives in PostgreSQL (pipeline.h),
 * so any number of processes can run workers against one database.
 */
#ifndef SVC_WORKER_WORKER_H
#define SVC_WORKER_WORKER_H

#include "config.h"
#include "store/pool.h"

#include <stddef.h>
#include <stdint.h>

struct worker_pool;

/* Start cfg->workers threads. NULL with err set on failure. */
struct worker_pool *worker_pool_start(const struct config *cfg, struct db_pool *db, char *err,
                                      size_t errlen);
/* Ask the workers to stop after their current step; returns at once. */
void worker_pool_request_stop(struct worker_pool *wp);
/* Ask the workers to stop and wait for them: each finishes the step it is in;
 * Google calls still in flight when 80% of deadline_ms is spent are cut off
 * (a cut-off create is reconciled later, never blindly resent). Then every
 * lease this process still holds is handed back so that other replicas take
 * the work over at once. Frees the pool; returns the leases handed back.
 * NULL is a no-op. */
int worker_pool_stop(struct worker_pool *wp, int64_t deadline_ms);

#endif
