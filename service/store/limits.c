/* limits.c: an API key's pending chunks against its limit (see limits.h). */
#include "store/limits.h"

#include "store/db.h"

#include <stdio.h>

/* The first key of the two-int advisory lock taken per API key ("lmts"). */
#define LIMITS_LOCK_CLASS "1819112563"

static const struct db_stmt pending_sum = {
    "limits_pending",
    "SELECT coalesce(sum(chunks_pending + chunks_in_flight), 0) FROM jobs"
    " WHERE api_key_id = $1 AND state IN ('pending', 'running')",
    1};

static bool read_sum(PGconn *c, const char *key, int64_t *n, char *err, size_t errlen)
{
    const char *v[1] = {key};
    PGresult *r = db_exec_stmt(c, &pending_sum, v, 0);
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    if (ok)
        *n = db_int(PQgetvalue(r, 0, 0));
    else
        db_error(r, c, "could not count the key's pending chunks", err, errlen);
    PQclear(r);
    return ok;
}

bool limits_pending(PGconn *c, int64_t key_id, int64_t *pending, char *err, size_t errlen)
{
    char key[24];
    snprintf(key, sizeof(key), "%lld", (long long)key_id);
    return read_sum(c, key, pending, err, errlen);
}

bool limits_pending_locked(PGconn *c, int64_t key_id, int64_t adding, int64_t max, bool *over,
                           int64_t *others, char *err, size_t errlen)
{
    char key[24];
    snprintf(key, sizeof(key), "%lld", (long long)key_id);
    const char *v[1] = {key};
    /* a statement of its own: the sum below then reads a snapshot taken
     * after the lock, which sees the jobs committed by its last holder */
    PGresult *r = PQexecParams(
        c, "SELECT pg_advisory_xact_lock(" LIMITS_LOCK_CLASS ", ($1::bigint & 2147483647)::int)", 1,
        NULL, v, NULL, NULL, 0);
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        db_error(r, c, "could not take the key's limit lock", err, errlen);
    PQclear(r);
    int64_t all = 0;
    if (!ok || !read_sum(c, key, &all, err, errlen))
        return false;
    *others = all - adding;
    *over = all > max;
    return true;
}
