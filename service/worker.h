/*
 * worker.h: the pool of worker threads that moves chunks through Google's
 * batch API: claim pending chunks, write the intent, create the batch, poll
 * it, store the vectors; reconcile batches whose create had an unknown
 * outcome; cancel at Google what users cancelled; a watchdog for batches
 * stuck past batch_deadline_ms. All state lives in PostgreSQL (pipeline.h),
 * so any number of processes can run workers against one database.
 */
#ifndef SVC_WORKER_H
#define SVC_WORKER_H

#include "config.h"
#include "db_pool.h"

#include <stddef.h>

struct worker_pool;

/* Start cfg->workers threads. NULL with err set on failure. */
struct worker_pool *worker_pool_start(const struct config *cfg, struct db_pool *db, char *err,
                                      size_t errlen);
/* Ask the workers to stop, wait for them (each finishes the step it is in;
 * leases it holds expire or are handed back), free the pool. NULL is a no-op. */
void worker_pool_stop(struct worker_pool *wp);

#endif
