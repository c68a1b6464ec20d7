/* driver_internal.h: what the driver's steps share (driver.c, validate.c, finalize.c). */
#ifndef SVC_OPENAI_DRIVER_INTERNAL_H
#define SVC_OPENAI_DRIVER_INTERNAL_H

#include "openai/driver.h"
#include "store/openai_batches.h"

#include <libpq-fe.h>
#include <stdatomic.h>

struct oai_ctx {
    struct db_pool *db;
    char owner[128];
    int64_t max_requests;
    int db_timeout_ms;
    const atomic_bool *stop; /* abandon the step (roll back, hand the lease back) */
};

/* Validate batch b (leased to x->owner) on c, outside any transaction: the
 * batch ends failed, or in progress with its job, or (on a database
 * failure or a stop) is handed back to be tried again. */
void oai_validate(const struct oai_ctx *x, PGconn *c, struct oai_batch *b);
/* Write b's output and error files and end it (completed, cancelled or
 * expired), or hand it back. */
void oai_finalize(const struct oai_ctx *x, PGconn *c, struct oai_batch *b);

#endif
