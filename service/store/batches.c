/* batches.c: listing a job's Google batches (see batches.h). */
#include "store/batches.h"

#include "store/db.h"

#include <stdio.h>
#include <string.h>

static void copy_col(const PGresult *r, int i, int col, char *out, size_t n)
{
    snprintf(out, n, "%s", PQgetisnull(r, i, col) ? "" : PQgetvalue(r, i, col));
}

enum jobs_result batches_list(PGconn *c, int64_t key_id, const char *job_id, int64_t after,
                              struct batch_row *out, size_t max, size_t *n, bool *more, char *err,
                              size_t errlen)
{
    *n = 0;
    *more = false;
    if (!jobs_valid_id(job_id))
        return JOBS_NOT_FOUND;
    char key[24], aft[24], lim[24];
    snprintf(key, sizeof(key), "%lld", (long long)key_id);
    snprintf(aft, sizeof(aft), "%lld", (long long)after);
    snprintf(lim, sizeof(lim), "%zu", max + 1);
    const char *vals[4] = {job_id, key, aft, lim};
    /* the job's row first (ownership), then its batches by primary key order */
    PGresult *r = PQexecParams(
        c,
        "SELECT b.id, b.state, b.transport, b.gemini_name, b.gemini_state, b.n_chunks,"
        " b.request_bytes, b.response_bytes, b.polls,"
        " to_char(b.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
        " to_char(b.submitted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
        " to_char(b.finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
        " left(b.error, 200)"
        " FROM jobs j LEFT JOIN LATERAL (SELECT * FROM batches WHERE batches.job_id = j.id"
        "   AND batches.id > $3::bigint ORDER BY batches.id LIMIT $4::int) b ON true"
        " WHERE j.id = $1 AND j.api_key_id = $2 ORDER BY b.id",
        4, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_error(r, c, "could not list the job's batches", err, errlen);
        PQclear(r);
        return JOBS_ERROR;
    }
    int rows = PQntuples(r);
    if (rows == 0) {
        PQclear(r);
        return JOBS_NOT_FOUND;
    }
    for (int i = 0; i < rows; i++) {
        if (PQgetisnull(r, i, 0)) /* the job has no batch (past after) */
            break;
        if (*n == max) {
            *more = true;
            break;
        }
        struct batch_row *b = &out[(*n)++];
        memset(b, 0, sizeof(*b));
        b->id = db_int(PQgetvalue(r, i, 0));
        copy_col(r, i, 1, b->state, sizeof(b->state));
        copy_col(r, i, 2, b->transport, sizeof(b->transport));
        copy_col(r, i, 3, b->gemini_name, sizeof(b->gemini_name));
        copy_col(r, i, 4, b->gemini_state, sizeof(b->gemini_state));
        b->chunks = db_int(PQgetvalue(r, i, 5));
        b->request_bytes = db_int(PQgetvalue(r, i, 6));
        b->response_bytes = db_int(PQgetvalue(r, i, 7));
        b->polls = db_int(PQgetvalue(r, i, 8));
        copy_col(r, i, 9, b->created_at, sizeof(b->created_at));
        copy_col(r, i, 10, b->submitted_at, sizeof(b->submitted_at));
        copy_col(r, i, 11, b->finished_at, sizeof(b->finished_at));
        copy_col(r, i, 12, b->error, sizeof(b->error));
    }
    PQclear(r);
    return JOBS_OK;
}
