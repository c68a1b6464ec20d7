/* keys.c: creation and verification of API keys (see keys.h). */
#include "store/keys.h"

#include "store/db.h"
#include "util/crypto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

static bool random_base62(char *out, size_t n)
{
    static const char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    size_t i = 0;
    while (i < n) {
        unsigned char r[64];
        if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
            return false;
        for (size_t k = 0; k < sizeof(r) && i < n; k++)
            if (r[k] < 248) /* 248 = 4 * 62: rejection keeps the choice uniform */
                out[i++] = alphabet[r[k] % 62];
    }
    return true;
}

bool keys_create(PGconn *conn, const char *name, char key_out[KEY_LEN + 1], int64_t *id, char *err,
                 size_t errlen)
{
    memcpy(key_out, "ek_", 3);
    if (!random_base62(key_out + 3, KEY_LEN - 3)) {
        snprintf(err, errlen, "could not read random bytes");
        return false;
    }
    key_out[KEY_LEN] = '\0';
    unsigned char h[SHA256_LEN];
    if (!sha256_digest(key_out, strlen(key_out), h)) {
        snprintf(err, errlen, "could not hash the key: libcrypto failed");
        return false;
    }
    char prefix[KEY_PREFIX_LEN + 1];
    memcpy(prefix, key_out, KEY_PREFIX_LEN);
    prefix[KEY_PREFIX_LEN] = '\0';
    const char *params[3] = {name, prefix, (const char *)h};
    int lens[3] = {0, 0, 32};
    int fmts[3] = {0, 0, 1};
    PGresult *r = PQexecParams(conn,
                               "INSERT INTO api_keys (name, prefix, key_sha256)"
                               " VALUES ($1, $2, $3) RETURNING id",
                               3, NULL, params, lens, fmts, 0);
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    if (ok)
        *id = db_int(PQgetvalue(r, 0, 0));
    else
        db_error(r, conn, "could not store the key", err, errlen);
    PQclear(r);
    if (!ok)
        memset(key_out, 0, KEY_LEN + 1);
    return ok;
}

static bool well_formed(const char *key)
{
    if (strlen(key) != KEY_LEN || strncmp(key, "ek_", 3) != 0)
        return false;
    for (size_t i = 3; i < KEY_LEN; i++) {
        char c = key[i];
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')))
            return false;
    }
    return true;
}

/* A nullable integer column: KEY_LIMIT_DEFAULT when null. */
static int64_t limit_col(const PGresult *r, int row, int col, bool binary)
{
    if (PQgetisnull(r, row, col))
        return KEY_LIMIT_DEFAULT;
    return binary ? db_bin_int(r, row, col) : db_int(PQgetvalue(r, row, col));
}

enum keys_result keys_verify(PGconn *conn, const char *key, int64_t *id, char *err, size_t errlen)
{
    struct key_limits lim;
    return keys_verify_limits(conn, key, id, &lim, err, errlen);
}

enum keys_result keys_verify_limits(PGconn *conn, const char *key, int64_t *id,
                                    struct key_limits *lim, char *err, size_t errlen)
{
    if (!well_formed(key))
        return KEYS_INVALID;
    char prefix[KEY_PREFIX_LEN + 1];
    memcpy(prefix, key, KEY_PREFIX_LEN);
    prefix[KEY_PREFIX_LEN] = '\0';
    const char *params[1] = {prefix};
    static const struct db_stmt lookup = {
        "keys_lookup",
        "SELECT id, key_sha256, rps_limit, rps_burst, max_pending_chunks FROM api_keys"
        " WHERE prefix = $1 AND revoked_at IS NULL",
        1};
    PGresult *r = db_exec_stmt(conn, &lookup, params, 1);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_error(r, conn, "could not look up the key", err, errlen);
        PQclear(r);
        return KEYS_DB_ERROR;
    }
    enum keys_result res = KEYS_INVALID;
    unsigned char h[SHA256_LEN];
    if (!sha256_digest(key, strlen(key), h)) {
        snprintf(err, errlen, "could not hash the key: libcrypto failed");
        res = KEYS_DB_ERROR;
    } else if (PQntuples(r) == 1 && PQgetlength(r, 0, 1) == SHA256_LEN) {
        const unsigned char *stored = (const unsigned char *)PQgetvalue(r, 0, 1);
        unsigned diff = 0;
        for (int i = 0; i < 32; i++)
            diff |= (unsigned)(h[i] ^ stored[i]);
        if (diff == 0) {
            /* binary result: id is a big-endian int8 */
            const unsigned char *p = (const unsigned char *)PQgetvalue(r, 0, 0);
            uint64_t v = 0;
            for (int i = 0; i < 8; i++)
                v = v << 8 | p[i];
            *id = (int64_t)v;
            lim->rps = limit_col(r, 0, 2, true);
            lim->burst = limit_col(r, 0, 3, true);
            lim->max_pending_chunks = limit_col(r, 0, 4, true);
            res = KEYS_OK;
        }
    }
    PQclear(r);
    if (res == KEYS_OK) {
        /* last use, at most once a minute: this runs on verified-key cache misses only */
        char sid[24];
        snprintf(sid, sizeof(sid), "%lld", (long long)*id);
        const char *v[1] = {sid};
        static const struct db_stmt touch = {
            "keys_touch",
            "UPDATE api_keys SET last_used_at = now() WHERE id = $1 AND"
            " (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
            1};
        PQclear(db_exec_stmt(conn, &touch, v, 0)); /* best effort: a failure changes nothing */
    }
    return res;
}

#define TS(col)                                                                                    \
    "coalesce(to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '')"

bool keys_list(PGconn *conn, struct key_row **out, size_t *n, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    PGresult *r = PQexec(
        conn,
        "SELECT id, name, prefix, " TS("created_at") ", " TS("last_used_at") ", " TS(
            "revoked_at") ", rps_limit, rps_burst, max_pending_chunks FROM api_keys ORDER BY id");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_error(r, conn, "could not list keys", err, errlen);
        PQclear(r);
        return false;
    }
    int rows = PQntuples(r);
    *out = calloc(rows ? (size_t)rows : 1, sizeof(**out));
    if (!*out) {
        PQclear(r);
        snprintf(err, errlen, "out of memory");
        return false;
    }
    for (int i = 0; i < rows; i++) {
        struct key_row *k = &(*out)[i];
        k->id = db_int(PQgetvalue(r, i, 0));
        snprintf(k->name, sizeof(k->name), "%s", PQgetvalue(r, i, 1));
        snprintf(k->prefix, sizeof(k->prefix), "%s", PQgetvalue(r, i, 2));
        snprintf(k->created_at, sizeof(k->created_at), "%s", PQgetvalue(r, i, 3));
        snprintf(k->last_used_at, sizeof(k->last_used_at), "%s", PQgetvalue(r, i, 4));
        snprintf(k->revoked_at, sizeof(k->revoked_at), "%s", PQgetvalue(r, i, 5));
        k->limits = (struct key_limits){limit_col(r, i, 6, false), limit_col(r, i, 7, false),
                                        limit_col(r, i, 8, false)};
    }
    *n = (size_t)rows;
    PQclear(r);
    return true;
}

enum keys_result keys_revoke(PGconn *conn, int64_t id, char *err, size_t errlen)
{
    char sid[24];
    snprintf(sid, sizeof(sid), "%lld", (long long)id);
    const char *v[1] = {sid};
    PGresult *r = PQexecParams(conn,
                               "UPDATE api_keys SET revoked_at = now() WHERE id = $1"
                               " AND revoked_at IS NULL",
                               1, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        db_error(r, conn, "could not revoke the key", err, errlen);
        PQclear(r);
        return KEYS_DB_ERROR;
    }
    enum keys_result res = db_int(PQcmdTuples(r)) == 1 ? KEYS_OK : KEYS_INVALID;
    PQclear(r);
    return res;
}

/* One SET item: keep (NULL parameter), default ("default": NULL) or a value. */
static const char *limit_param(int64_t v, char *out, size_t n)
{
    if (v == KEY_LIMIT_KEEP)
        return NULL;
    if (v == KEY_LIMIT_DEFAULT)
        return "default";
    snprintf(out, n, "%lld", (long long)v);
    return out;
}

enum keys_result keys_set_limits(PGconn *conn, int64_t id, const struct key_limits *lim, char *err,
                                 size_t errlen)
{
    char sid[24], a[24], b[24], c[24];
    snprintf(sid, sizeof(sid), "%lld", (long long)id);
    const char *v[4] = {sid, limit_param(lim->rps, a, sizeof(a)),
                        limit_param(lim->burst, b, sizeof(b)),
                        limit_param(lim->max_pending_chunks, c, sizeof(c))};
#define SET_LIMIT(col, p, type)                                                                    \
    " " col " = CASE WHEN " p "::text IS NULL THEN " col " WHEN " p " = 'default' THEN NULL"       \
    " ELSE " p "::" type " END"
    PGresult *r =
        PQexecParams(conn,
                     "UPDATE api_keys SET" SET_LIMIT("rps_limit", "$2", "integer") "," SET_LIMIT(
                         "rps_burst", "$3",
                         "integer") "," SET_LIMIT("max_pending_chunks", "$4",
                                                  "bigint") " WHERE id = $1 AND revoked_at IS NULL",
                     4, NULL, v, NULL, NULL, 0);
#undef SET_LIMIT
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        db_error(r, conn, "could not set the key's limits", err, errlen);
        PQclear(r);
        return KEYS_DB_ERROR;
    }
    enum keys_result res = db_int(PQcmdTuples(r)) == 1 ? KEYS_OK : KEYS_INVALID;
    PQclear(r);
    return res;
}
