/* idempotency.c: Idempotency-Key rows (see idempotency.h). */
#include "store/idempotency.h"

#include "store/db.h"

#include <stdio.h>
#include <string.h>

bool idem_key_valid(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if ((unsigned char)s[n] < 0x20 || (unsigned char)s[n] > 0x7e)
            return false;
    return n >= 1 && n <= IDEM_KEY_MAX;
}

enum idem_result idem_claim(PGconn *c, int64_t key_id, const char *key, const char *method,
                            const char *path, struct idem_prior *prior, char *err, size_t errlen)
{
    char kid[24];
    snprintf(kid, sizeof(kid), "%lld", (long long)key_id);
    const char *v[4] = {kid, key, method, path};
    /* A transaction lock on (key id, key) first, never waited for: a request
     * served by one HTTP thread must not block behind a first request whose
     * body that same thread still has to read. A concurrent holder means the
     * first request is still in flight (IDEM_BUSY). */
    PGresult *r = PQexecParams(c, "SELECT pg_try_advisory_xact_lock(hashtextextended($2, $1))", 2,
                               NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_error(r, c, "could not lock the idempotency key", err, errlen);
        PQclear(r);
        return IDEM_ERROR;
    }
    bool locked = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (!locked)
        return IDEM_BUSY;
    /* A row of the key older than 24 h is taken over; a fresh one is left
     * alone. The placeholder hash and status are never seen by others:
     * idem_complete sets them in the same transaction. */
    r = PQexecParams(
        c,
        "INSERT INTO idempotency_keys (api_key_id, key, request_sha256, method, path, status,"
        " resource_id)"
        " VALUES ($1, $2, '\\x0000000000000000000000000000000000000000000000000000000000000000',"
        " $3, $4, 0, '')"
        " ON CONFLICT (api_key_id, key) DO UPDATE SET method = excluded.method,"
        " path = excluded.path, status = 0, resource_id = '', created_at = now()"
        " WHERE idempotency_keys.created_at < now() - interval '24 hours'",
        4, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        db_error(r, c, "could not take the idempotency key", err, errlen);
        PQclear(r);
        return IDEM_ERROR;
    }
    bool mine = db_int(PQcmdTuples(r)) == 1;
    PQclear(r);
    if (mine)
        return IDEM_NEW;
    r = PQexecParams(c,
                     "SELECT request_sha256, method, path, status, resource_id FROM"
                     " idempotency_keys WHERE api_key_id = $1 AND key = $2",
                     2, NULL, v, NULL, NULL, 1);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        db_error(r, c, "could not read the idempotency key", err, errlen);
        PQclear(r);
        return IDEM_ERROR;
    }
    memset(prior, 0, sizeof(*prior));
    if (PQgetlength(r, 0, 0) == SHA256_LEN)
        memcpy(prior->request_sha256, PQgetvalue(r, 0, 0), SHA256_LEN);
    snprintf(prior->method, sizeof(prior->method), "%.*s", PQgetlength(r, 0, 1),
             PQgetvalue(r, 0, 1));
    snprintf(prior->path, sizeof(prior->path), "%.*s", PQgetlength(r, 0, 2), PQgetvalue(r, 0, 2));
    prior->status = (int)db_bin_int(r, 0, 3);
    snprintf(prior->resource_id, sizeof(prior->resource_id), "%.*s", PQgetlength(r, 0, 4),
             PQgetvalue(r, 0, 4));
    PQclear(r);
    return IDEM_REPLAY;
}

bool idem_complete(PGconn *c, int64_t key_id, const char *key, const unsigned char sha[SHA256_LEN],
                   int status, const char *resource_id, char *err, size_t errlen)
{
    char kid[24], st[16];
    snprintf(kid, sizeof(kid), "%lld", (long long)key_id);
    snprintf(st, sizeof(st), "%d", status);
    const char *v[5] = {kid, key, (const char *)sha, st, resource_id};
    const int lens[5] = {0, 0, SHA256_LEN, 0, 0};
    const int fmts[5] = {0, 0, 1, 0, 0};
    PGresult *r = PQexecParams(c,
                               "UPDATE idempotency_keys SET request_sha256 = $3, status = $4,"
                               " resource_id = $5 WHERE api_key_id = $1 AND key = $2",
                               5, NULL, v, lens, fmts, 0);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK && db_int(PQcmdTuples(r)) == 1;
    if (!ok)
        db_error(r, c, "could not record the idempotency key", err, errlen);
    PQclear(r);
    return ok;
}
