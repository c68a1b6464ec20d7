/* batch_files.c: the steps of a batch that travels through the Files API, each guarded by
 * the batch's lease (see pipeline.h). */
#include "store/pipeline_internal.h"

#include "store/collections.h"
#include "store/db.h"
#include "store/pgarray.h"
#include "log.h"
#include "util/buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* Run an UPDATE of one batch row guarded by its lease; *held: it matched. */
static bool run_leased(PGconn *c, const char *sql, int n, const char *const *v, const char *what,
                       bool *held, char *err, size_t errlen)
{
    *held = false;
    PGresult *r = pipe_q(c, sql, n, v, what, err, errlen);
    if (!r)
        return false;
    *held = db_int(PQcmdTuples(r)) == 1;
    PQclear(r);
    return true;
}

/* The guard of every write made after a long call: the batch is still ours. */
#define HELD_BY_2 " WHERE id = $1 AND lease_owner = $2 AND lease_until > now()"

bool pipe_renew_lease(PGconn *c, int64_t batch_id, const char *owner, int64_t lease_ms, bool *held,
                      char *err, size_t errlen)
{
    char bid[24], lease[24];
    snprintf(bid, sizeof(bid), "%lld", (long long)batch_id);
    snprintf(lease, sizeof(lease), "%lld", (long long)lease_ms);
    const char *v[3] = {bid, owner, lease};
    return run_leased(c,
                      "UPDATE batches SET lease_until = now() + $3::bigint * interval"
                      " '1 millisecond'" HELD_BY_2 " AND state IN ('intent', 'submitted')",
                      3, v, "could not renew the lease", held, err, errlen);
}

bool pipe_file_written(PGconn *c, int64_t batch_id, const char *owner, int64_t bytes,
                       int64_t lease_ms, bool *held, char *err, size_t errlen)
{
    char bid[24], lease[24], size[24];
    snprintf(bid, sizeof(bid), "%lld", (long long)batch_id);
    snprintf(lease, sizeof(lease), "%lld", (long long)lease_ms);
    snprintf(size, sizeof(size), "%lld", (long long)bytes);
    const char *v[4] = {bid, owner, lease, size};
    return run_leased(c,
                      "UPDATE batches SET request_bytes = $4::bigint,"
                      " lease_until = now() + $3::bigint * interval '1 millisecond'" HELD_BY_2
                      " AND state = 'intent' AND input_file IS NULL",
                      4, v, "could not record the file's size", held, err, errlen);
}

bool pipe_input_file(PGconn *c, int64_t batch_id, const char *owner, const char *name,
                     int64_t lease_ms, bool *held, char *err, size_t errlen)
{
    char bid[24], lease[24];
    snprintf(bid, sizeof(bid), "%lld", (long long)batch_id);
    snprintf(lease, sizeof(lease), "%lld", (long long)lease_ms);
    const char *v[4] = {bid, owner, lease, name};
    return run_leased(c,
                      "UPDATE batches SET input_file = $4,"
                      " lease_until = now() + $3::bigint * interval '1 millisecond'" HELD_BY_2
                      " AND state = 'intent'",
                      4, v, "could not record the input file", held, err, errlen);
}

bool pipe_output_file(PGconn *c, int64_t batch_id, const char *name, char *err, size_t errlen)
{
    char bid[24];
    snprintf(bid, sizeof(bid), "%lld", (long long)batch_id);
    const char *v[2] = {bid, name};
    return pipe_run(c, "UPDATE batches SET output_file = $2 WHERE id = $1", 2, v,
                    "could not record the results file", err, errlen);
}

bool pipe_add_response_bytes(PGconn *c, int64_t batch_id, int64_t bytes, int64_t *total, char *err,
                             size_t errlen)
{
    char bid[24], n[24];
    snprintf(bid, sizeof(bid), "%lld", (long long)batch_id);
    snprintf(n, sizeof(n), "%lld", (long long)bytes);
    const char *v[2] = {bid, n};
    PGresult *r = pipe_q(c,
                         "UPDATE batches SET response_bytes = response_bytes + $2::bigint"
                         " WHERE id = $1 RETURNING response_bytes",
                         2, v, "could not count the bytes received", err, errlen);
    if (!r)
        return false;
    *total = PQntuples(r) == 1 ? db_int(PQgetvalue(r, 0, 0)) : 0;
    PQclear(r);
    return true;
}

bool pipe_batch_ref(PGconn *c, const char *display_name, const char *gemini_name,
                    struct pipe_batch_ref *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    const char *v[1] = {display_name ? display_name : gemini_name};
    PGresult *r = pipe_q(c,
                         display_name ? "SELECT state, coalesce(gemini_name, ''),"
                                        " coalesce(input_file, ''), coalesce(output_file, '')"
                                        " FROM batches WHERE display_name = $1"
                                      : "SELECT state, coalesce(gemini_name, ''),"
                                        " coalesce(input_file, ''), coalesce(output_file, '')"
                                        " FROM batches WHERE gemini_name = $1",
                         1, v, "could not look up a batch", err, errlen);
    if (!r)
        return false;
    out->found = PQntuples(r) == 1;
    if (out->found) {
        snprintf(out->state, sizeof(out->state), "%s", PQgetvalue(r, 0, 0));
        snprintf(out->gemini_name, sizeof(out->gemini_name), "%s", PQgetvalue(r, 0, 1));
        snprintf(out->input_file, sizeof(out->input_file), "%s", PQgetvalue(r, 0, 2));
        snprintf(out->output_file, sizeof(out->output_file), "%s", PQgetvalue(r, 0, 3));
    }
    PQclear(r);
    return true;
}
