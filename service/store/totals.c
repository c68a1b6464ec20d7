/* totals.c: the database's figures for metrics (see totals.h). */
#include "store/totals.h"

#include "store/db.h"
#include "store/jobs.h"

#include <stdlib.h>
#include <string.h>

const char *const store_job_states[STORE_JOB_STATES] = {
    "pending", "running", "succeeded", "completed_with_errors", "failed", "cancelled"};
const char *const store_chunk_states[STORE_CHUNK_STATES] = {"pending", "in_flight", "succeeded",
                                                            "failed"};

/*
 * One row per job state (with the sums of its jobs' chunk counters), one per
 * batch state, and the oldest pending chunk: a job's chunks are all written
 * with the job, so that is the oldest job with pending chunks (found through
 * the jobs_active index). A scan of jobs and of batches, never of chunks.
 */
static const char *const totals_sql =
    "SELECT 'j', state, count(*), sum(chunks_pending), sum(chunks_in_flight),"
    "  sum(chunks_succeeded), sum(chunks_failed) FROM jobs GROUP BY state"
    " UNION ALL SELECT 'b', state, count(*), 0, 0, 0, 0 FROM batches GROUP BY state"
    " UNION ALL SELECT 'o', '', (extract(epoch FROM now() - min(created_at)) * 1000000)::bigint,"
    "  0, 0, 0, 0 FROM jobs WHERE state IN ('pending', 'running') AND chunks_pending > 0";

static int state_index(const char *const *states, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(states[i], s) == 0)
            return (int)i;
    return -1;
}

bool store_totals_read(PGconn *c, struct store_totals *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof(*t));
    PGresult *r = PQexec(c, totals_sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_error(r, c, "could not read the totals", err, errlen);
        PQclear(r);
        return false;
    }
    for (int i = 0; i < PQntuples(r); i++) {
        char kind = PQgetvalue(r, i, 0)[0];
        const char *state = PQgetvalue(r, i, 1);
        int64_t n = db_int(PQgetvalue(r, i, 2));
        int k;
        if (kind == 'j' && (k = state_index(store_job_states, STORE_JOB_STATES, state)) >= 0) {
            t->jobs[k] = n;
            for (int s = 0; s < STORE_CHUNK_STATES; s++)
                t->chunks[s] += db_int(PQgetvalue(r, i, 3 + s));
        } else if (kind == 'b' &&
                   (k = state_index(jobs_batch_states, STORE_BATCH_STATES, state)) >= 0) {
            t->batches[k] = n;
        } else if (kind == 'o' && !PQgetisnull(r, i, 2)) {
            t->oldest_pending_s = (double)n / 1e6;
        }
    }
    PQclear(r);
    return true;
}
