/*
 * batches.h: a job's Google batches as the API lists them (GET
 * /v1/jobs/{id}/batches): state, transport, sizes and times, oldest first,
 * paged by batch id. The pipeline's own reads and writes of batches are in
 * pipeline.h.
 */
#ifndef SVC_STORE_BATCHES_H
#define SVC_STORE_BATCHES_H

#include "store/jobs.h"

#include <libpq-fe.h>

#include <stddef.h>
#include <stdint.h>

#include "util/compiler.h"

struct batch_row {
    int64_t id;
    char state[16];        /* intent, submitted, succeeded, failed, expired, cancelled, released */
    char transport[8];     /* inline, file, sync */
    char gemini_name[128]; /* "batches/..." once created at Google; "" before, or for sync */
    char gemini_state[40]; /* the last state Google reported; "" if none */
    int64_t chunks, request_bytes, response_bytes, polls;
    char created_at[40], submitted_at[40], finished_at[40]; /* "" if null */
    char error[1024];                                       /* "" if none; at most 200 characters */
};

/*
 * The batches of job job_id of key key_id with an id above after (0: from the
 * first), up to max of them into out, oldest first; *n gets how many and
 * *more whether others follow. Another key's job, or none, is JOBS_NOT_FOUND.
 */
enum jobs_result batches_list(PGconn *c, int64_t key_id, const char *job_id, int64_t after,
                              struct batch_row *out, size_t max, size_t *n, bool *more, char *err,
                              size_t errlen) SVC_MUSTCHECK;

#endif
