/*
 * eta.h: when a job should finish, estimated from what its batches have
 * taken so far (or, before any has finished, what the batches of the same
 * key's recent jobs of the same model took) and how fast its chunks are
 * being claimed. Costs one small read of the job's batches (by index, never
 * its chunks), remembered until the job's row moves.
 *
 * The method: a batch takes D seconds from its claim to its stored results,
 * D the mean over the job's succeeded batches (else the recent jobs'). Each
 * open batch should end D after it was claimed; chunks still pending are
 * claimed at the rate observed since the job's first claim, and the last of
 * them ends D after its claim. The ETA is the later of the two, at least one
 * second (an overdue batch counts as ending now).
 */
#ifndef SVC_STORE_ETA_H
#define SVC_STORE_ETA_H

#include <libpq-fe.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/jobs.h"
#include "util/compiler.h"

/* What an estimate is computed from (times in seconds since the epoch, on
 * the database's clock). */
struct job_eta_inputs {
    int64_t pending, in_flight; /* the job's chunks waiting for a claim, and in batches */
    int64_t claimed;            /* chunks claimed so far (total - reused - pending) */
    double started;             /* the job's first claim; 0: none yet */
    int64_t done;               /* the job's succeeded batches */
    double done_s;              /* their mean duration, claim to stored results */
    int64_t open;               /* the job's open batches (intent or submitted) */
    double newest_open;         /* when the newest of them was claimed */
    int64_t recent;             /* succeeded batches of recent jobs (same key and model) */
    double recent_s;            /* their mean duration */
};

struct job_eta {
    bool known;         /* false: nothing to estimate (JSON null) */
    int64_t seconds;    /* from now */
    const char *source; /* "job" (its own batches) or "recent_jobs" */
    int64_t batches_observed;
    double batch_seconds;     /* D */
    double chunks_per_second; /* claim rate used for pending chunks; < 0: none were pending */
    int64_t remaining_chunks; /* pending + in flight */
    int64_t open_batches;
};

/* The estimate at time now (database clock). Pure; exposed for tests. */
void jobs_eta_compute(const struct job_eta_inputs *in, double now, struct job_eta *out);

/* The ETA of job j (as read by jobs_get or jobs_list for key_id): not known
 * for a finished job or one with nothing to go on. */
bool jobs_eta(PGconn *c, int64_t key_id, const struct job_row *j, struct job_eta *out, char *err,
              size_t errlen) SVC_MUSTCHECK;

#endif
