/*
 * totals.h: the database's own figures for metrics, the same for every
 * replica: jobs, chunks and batches by state, and the age of the oldest
 * pending chunk. Cheap at any size: chunks are counted from the jobs'
 * counters (kept exact in the transactions that move chunks), never by
 * scanning the chunks table.
 */
#ifndef SVC_STORE_TOTALS_H
#define SVC_STORE_TOTALS_H

#include <libpq-fe.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/compiler.h"

#define STORE_JOB_STATES   6
#define STORE_CHUNK_STATES 4
#define STORE_BATCH_STATES 7
/* "pending", "running", "succeeded", "completed_with_errors", "failed", "cancelled" */
extern const char *const store_job_states[STORE_JOB_STATES];
/* "pending", "in_flight", "succeeded", "failed" */
extern const char *const store_chunk_states[STORE_CHUNK_STATES];
/* the batch states are jobs_batch_states (store/jobs.h) */

struct store_totals {
    int64_t jobs[STORE_JOB_STATES];
    int64_t chunks[STORE_CHUNK_STATES];
    int64_t batches[STORE_BATCH_STATES];
    double oldest_pending_s; /* age of the oldest chunk waiting to be claimed; 0 when none */
};

/* Read them in one statement (one snapshot). */
bool store_totals_read(PGconn *c, struct store_totals *t, char *err, size_t errlen) SVC_MUSTCHECK;

#endif
