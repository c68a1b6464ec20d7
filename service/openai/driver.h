/*
 * driver.h: the thread that moves OpenAI batches along (one per embedd
 * serve process; any number of replicas share the work through leases):
 *
 * - validating: the input file is read a part at a time and every line
 *   checked as OpenAI does; a file with malformed lines, duplicate
 *   custom_ids, another url or mixed models makes the batch failed with
 *   errors naming the lines, and nothing reaches Google. A valid file
 *   becomes one embedd job (one verbatim document per input text; texts
 *   already embedded under the key are reused) and its lines are stored,
 *   in the job's own transaction: a crash leaves either both or neither.
 *   A line whose body OpenAI would refuse (a token array, a text over the
 *   model's limit) gets that 400 in the error file instead.
 * - finalizing: once the job ended (or the batch was cancelled, or passed
 *   its 24 h window: its job is cancelled first) the output and error
 *   files are written from the job's vectors in input order, streamed into
 *   storage inside one transaction that also ends the batch.
 *
 * Each step holds a lease of lease_ms on the batch; a process that dies
 * mid-step leaves it to be retried by any replica once the lease expires.
 */
#ifndef SVC_OPENAI_DRIVER_H
#define SVC_OPENAI_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/pool.h"
#include "util/compiler.h"

struct oai_driver_opts {
    struct db_pool *db;
    int64_t lease_ms;     /* a step's lease on its batch */
    int64_t idle_ms;      /* pause between looks for work when there is none */
    int64_t max_requests; /* requests in one batch at most */
    int db_timeout_ms;    /* waiting for a pooled connection */
};

struct oai_driver;

/* Start the thread. NULL with err set. */
struct oai_driver *oai_driver_start(const struct oai_driver_opts *o, char *err,
                                    size_t errlen) SVC_MUSTCHECK;
/* Ask the thread to stop (it abandons a step in progress, handing its lease
 * back), join it and free. NULL is a no-op. */
void oai_driver_stop(struct oai_driver *d);

#endif
