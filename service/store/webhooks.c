/* webhooks.c: keys' webhook settings and the outbox (see webhooks.h). */
#include "store/webhooks.h"

#include "store/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TS(col)                                                                                    \
    "coalesce(to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), '')"

static PGresult *q(PGconn *c, const char *sql, int n, const char *const *v, ExecStatusType want,
                   const char *what, char *err, size_t errlen)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) != want) {
        db_error(r, c, what, err, errlen);
        PQclear(r);
        return NULL;
    }
    return r;
}

/* ---- a key's webhook settings ---- */

enum keys_result keys_webhook_set_url(PGconn *c, int64_t id, const char *url, bool *has_secret,
                                      char *err, size_t errlen)
{
    char sid[24];
    snprintf(sid, sizeof(sid), "%lld", (long long)id);
    const char *v[2] = {sid, url};
    PGresult *r = q(c,
                    "UPDATE api_keys SET webhook_url = $2 WHERE id = $1 AND revoked_at IS NULL"
                    " RETURNING webhook_secret IS NOT NULL",
                    2, v, PGRES_TUPLES_OK, "could not set the webhook URL", err, errlen);
    if (!r)
        return KEYS_DB_ERROR;
    enum keys_result res = PQntuples(r) == 1 ? KEYS_OK : KEYS_INVALID;
    *has_secret = res == KEYS_OK && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    return res;
}

enum keys_result keys_webhook_get(PGconn *c, int64_t id, char *url, size_t url_len,
                                  bool *has_secret, char *err, size_t errlen)
{
    char sid[24];
    snprintf(sid, sizeof(sid), "%lld", (long long)id);
    const char *v[1] = {sid};
    PGresult *r = q(c,
                    "SELECT coalesce(webhook_url, ''), webhook_secret IS NOT NULL FROM api_keys"
                    " WHERE id = $1 AND revoked_at IS NULL",
                    1, v, PGRES_TUPLES_OK, "could not read the key", err, errlen);
    if (!r)
        return KEYS_DB_ERROR;
    enum keys_result res = PQntuples(r) == 1 ? KEYS_OK : KEYS_INVALID;
    snprintf(url, url_len, "%s", res == KEYS_OK ? PQgetvalue(r, 0, 0) : "");
    *has_secret = res == KEYS_OK && PQgetvalue(r, 0, 1)[0] == 't';
    PQclear(r);
    return res;
}

enum keys_result keys_webhook_set_secret(PGconn *c, int64_t id, const unsigned char *sealed,
                                         size_t n, int64_t grace_s, char *err, size_t errlen)
{
    char sid[24], grace[24];
    snprintf(sid, sizeof(sid), "%lld", (long long)id);
    snprintf(grace, sizeof(grace), "%lld", (long long)grace_s);
    const char *v[3] = {sid, (const char *)sealed, grace};
    const int lens[3] = {0, (int)n, 0};
    const int fmts[3] = {0, 1, 0};
    PGresult *r = PQexecParams(
        c,
        "UPDATE api_keys SET"
        " webhook_secret_prev = CASE WHEN $3::bigint > 0 THEN webhook_secret END,"
        " webhook_secret_prev_until = CASE WHEN $3::bigint > 0 AND webhook_secret IS NOT NULL"
        "   THEN now() + $3::bigint * interval '1 second' END,"
        " webhook_secret = $2 WHERE id = $1 AND revoked_at IS NULL",
        3, NULL, v, lens, fmts, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        db_error(r, c, "could not store the webhook secret", err, errlen);
        PQclear(r);
        return KEYS_DB_ERROR;
    }
    enum keys_result res = db_int(PQcmdTuples(r)) == 1 ? KEYS_OK : KEYS_INVALID;
    PQclear(r);
    return res;
}

/* ---- the outbox ---- */

/* A bytea column in text form into out (at most max bytes); *n 0 when null. */
static void bytea_into(const PGresult *r, int col, unsigned char *out, size_t max, size_t *n)
{
    *n = 0;
    if (PQgetisnull(r, 0, col))
        return;
    size_t len = 0;
    unsigned char *b = PQunescapeBytea((const unsigned char *)PQgetvalue(r, 0, col), &len);
    if (b && len <= max) {
        memcpy(out, b, len);
        *n = len;
    }
    if (b) {
        memset(b, 0, len);
        PQfreemem(b);
    }
}

bool wh_claim(PGconn *c, int64_t lease_ms, struct wh_delivery *d, bool *found, char *err,
              size_t errlen)
{
    memset(d, 0, sizeof(*d));
    *found = false;
    char lease[24];
    snprintf(lease, sizeof(lease), "%lld", (long long)lease_ms);
    const char *v[1] = {lease};
    PGresult *r =
        q(c,
          "WITH due AS (SELECT id FROM webhook_deliveries WHERE state = 'pending'"
          "   AND next_attempt_at <= now() ORDER BY next_attempt_at FOR UPDATE SKIP LOCKED LIMIT 1)"
          " UPDATE webhook_deliveries d"
          " SET next_attempt_at = now() + $1::bigint * interval '1 millisecond'"
          " FROM due, api_keys k WHERE d.id = due.id AND k.id = d.api_key_id"
          " RETURNING d.id, replace(d.id::text, '-', ''), d.job_id, d.event_type, d.url, d.body,"
          " d.attempts, (extract(epoch FROM now() - d.created_at) * 1000)::bigint,"
          " k.webhook_secret,"
          " CASE WHEN k.webhook_secret_prev_until > now() THEN k.webhook_secret_prev END",
          1, v, PGRES_TUPLES_OK, "could not claim a webhook delivery", err, errlen);
    if (!r)
        return false;
    if (PQntuples(r) == 1) {
        snprintf(d->id, sizeof(d->id), "%s", PQgetvalue(r, 0, 0));
        snprintf(d->msg_id, sizeof(d->msg_id), "msg_%s", PQgetvalue(r, 0, 1));
        snprintf(d->job_id, sizeof(d->job_id), "%s", PQgetvalue(r, 0, 2));
        snprintf(d->event_type, sizeof(d->event_type), "%s", PQgetvalue(r, 0, 3));
        d->url = strdup(PQgetvalue(r, 0, 4));
        d->body = strdup(PQgetvalue(r, 0, 5));
        d->body_len = (size_t)PQgetlength(r, 0, 5);
        d->attempts = (int)db_int(PQgetvalue(r, 0, 6));
        d->age_ms = db_int(PQgetvalue(r, 0, 7));
        bytea_into(r, 8, d->secret, sizeof(d->secret), &d->secret_len);
        bytea_into(r, 9, d->prev, sizeof(d->prev), &d->prev_len);
        *found = true;
    }
    PQclear(r);
    if (*found && (!d->url || !d->body)) {
        /* the claim stands: the delivery is due again once its lease ends */
        wh_delivery_free(d);
        *found = false;
        snprintf(err, errlen, "out of memory");
        return false;
    }
    return true;
}

void wh_delivery_free(struct wh_delivery *d)
{
    free(d->url);
    free(d->body);
    memset(d, 0, sizeof(*d));
}

/* Text for a text column: printable ASCII only (errors come from libcurl and
 * the resolver and may quote what a receiver sent). */
static void printable(const char *in, char *out, size_t n)
{
    size_t i = 0;
    for (; in[i] && i + 1 < n; i++)
        out[i] = in[i] >= 0x20 && in[i] < 0x7f ? in[i] : '?';
    out[i] = '\0';
}

bool wh_record(PGconn *c, const char *id, const struct wh_attempt *a, enum wh_outcome o,
               int64_t retry_ms, char *err, size_t errlen)
{
    static const char *const states[] = {"delivered", "pending", "failed"};
    char started[32], dur[24], status[16], retry[24], error[400];
    snprintf(started, sizeof(started), "%lld", (long long)a->started_ms);
    snprintf(dur, sizeof(dur), "%lld", (long long)a->duration_ms);
    snprintf(status, sizeof(status), "%d", a->status);
    snprintf(retry, sizeof(retry), "%lld", (long long)retry_ms);
    if (a->error)
        printable(a->error, error, sizeof(error));
    const char *v[7] = {id,        started, dur, a->status ? status : NULL, a->error ? error : NULL,
                        states[o], retry};
    PGresult *r =
        q(c,
          "WITH u AS (UPDATE webhook_deliveries SET attempts = attempts + 1,"
          "   state = CASE WHEN state = 'delivered' OR $6 = 'delivered' THEN 'delivered'"
          "     WHEN state = 'failed' THEN 'failed' ELSE $6 END,"
          "   next_attempt_at = CASE WHEN state = 'pending' AND $6 = 'pending'"
          "     THEN now() + $7::bigint * interval '1 millisecond' ELSE next_attempt_at END,"
          "   finished_at = CASE WHEN $6 = 'pending' THEN finished_at"
          "     ELSE coalesce(finished_at, now()) END,"
          "   last_error = CASE WHEN state = 'delivered' THEN last_error ELSE $5 END"
          "   WHERE id = $1 RETURNING attempts)"
          " INSERT INTO webhook_attempts (delivery_id, n, started_at, duration_ms, status_code, "
          "error)"
          " SELECT $1, u.attempts, to_timestamp($2::float8 / 1000), $3::int, $4::int, $5 FROM u",
          7, v, PGRES_COMMAND_OK, "could not record a webhook attempt", err, errlen);
    PQclear(r);
    return r != NULL;
}

bool wh_hand_back(PGconn *c, const char *id, char *err, size_t errlen)
{
    const char *v[1] = {id};
    PGresult *r = q(c,
                    "UPDATE webhook_deliveries SET next_attempt_at = now()"
                    " WHERE id = $1 AND state = 'pending'",
                    1, v, PGRES_COMMAND_OK, "could not hand a webhook delivery back", err, errlen);
    PQclear(r);
    return r != NULL;
}

/* ---- reading them back ---- */

void wh_listed_free(struct wh_listed *l, size_t n)
{
    for (size_t i = 0; l && i < n; i++) {
        free(l[i].url);
        free(l[i].body);
        free(l[i].last_error);
        for (size_t k = 0; k < l[i].n_tries; k++)
            free(l[i].tries[k].error);
        free(l[i].tries);
    }
    free(l);
}

static char *dup_or_null(const PGresult *r, int row, int col, bool *oom)
{
    if (PQgetisnull(r, row, col))
        return NULL;
    char *s = strdup(PQgetvalue(r, row, col));
    *oom = *oom || !s;
    return s;
}

/* The attempts of the rows' deliveries (ids in r's column 0) into l. */
static bool list_attempts(PGconn *c, const char *job_id, const char *key, struct wh_listed *l,
                          const PGresult *dr, size_t n, char *err, size_t errlen)
{
    const char *v[2] = {job_id, key};
    PGresult *r =
        q(c,
          "SELECT a.delivery_id, a.n, " TS(
              "a.started_at") ", a.duration_ms,"
                              " coalesce(a.status_code, 0), a.error FROM webhook_attempts a"
                              " JOIN webhook_deliveries d ON d.id = a.delivery_id"
                              " WHERE d.job_id = $1 AND d.api_key_id = $2 ORDER BY d.seq, a.n",
          2, v, PGRES_TUPLES_OK, "could not list webhook attempts", err, errlen);
    if (!r)
        return false;
    bool oom = false;
    size_t d = 0;
    for (int i = 0; i < PQntuples(r) && !oom; i++) {
        while (d < n && strcmp(PQgetvalue(dr, (int)d, 0), PQgetvalue(r, i, 0)) != 0)
            d++;
        if (d == n)
            break;
        struct wh_listed *x = &l[d];
        if (!x->tries && !(x->tries = calloc((size_t)x->attempts + 1, sizeof(*x->tries)))) {
            oom = true;
            break;
        }
        if (x->n_tries > (size_t)x->attempts)
            continue; /* a row recorded since the deliveries were read */
        struct wh_listed_attempt *t = &x->tries[x->n_tries++];
        t->n = (int)db_int(PQgetvalue(r, i, 1));
        snprintf(t->started_at, sizeof(t->started_at), "%s", PQgetvalue(r, i, 2));
        t->duration_ms = db_int(PQgetvalue(r, i, 3));
        t->status = (int)db_int(PQgetvalue(r, i, 4));
        t->error = dup_or_null(r, i, 5, &oom);
    }
    PQclear(r);
    if (oom)
        snprintf(err, errlen, "out of memory");
    return !oom;
}

bool wh_list(PGconn *c, int64_t key_id, const char *job_id, struct wh_listed **out, size_t *n,
             char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    char key[24];
    snprintf(key, sizeof(key), "%lld", (long long)key_id);
    const char *v[2] = {job_id, key};
    /* one snapshot for both reads */
    if (!db_exec(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err, errlen))
        return false;
    PGresult *r = q(
        c,
        "SELECT id, replace(id::text, '-', ''), event_type, url, body, state, attempts,"
        " " TS(
            "created_at") ","
                          " CASE WHEN state = 'pending' THEN " TS(
                              "next_attempt_at") " ELSE '' END,"
                                                 " " TS(
                                                     "finished_at") ", last_error FROM "
                                                                    "webhook_deliveries"
                                                                    " WHERE job_id = $1 AND "
                                                                    "api_key_id = $2 ORDER BY seq",
        2, v, PGRES_TUPLES_OK, "could not list webhook deliveries", err, errlen);
    bool ok = r != NULL;
    int rows = ok ? PQntuples(r) : 0;
    struct wh_listed *l = ok ? calloc(rows ? (size_t)rows : 1, sizeof(*l)) : NULL;
    if (ok && !l) {
        ok = false;
        snprintf(err, errlen, "out of memory");
    }
    bool oom = false;
    for (int i = 0; ok && i < rows; i++) {
        struct wh_listed *x = &l[i];
        snprintf(x->msg_id, sizeof(x->msg_id), "msg_%s", PQgetvalue(r, i, 1));
        snprintf(x->event_type, sizeof(x->event_type), "%s", PQgetvalue(r, i, 2));
        x->url = dup_or_null(r, i, 3, &oom);
        x->body = dup_or_null(r, i, 4, &oom);
        snprintf(x->state, sizeof(x->state), "%s", PQgetvalue(r, i, 5));
        x->attempts = (int)db_int(PQgetvalue(r, i, 6));
        snprintf(x->created_at, sizeof(x->created_at), "%s", PQgetvalue(r, i, 7));
        snprintf(x->next_attempt_at, sizeof(x->next_attempt_at), "%s", PQgetvalue(r, i, 8));
        snprintf(x->finished_at, sizeof(x->finished_at), "%s", PQgetvalue(r, i, 9));
        x->last_error = dup_or_null(r, i, 10, &oom);
    }
    if (ok && oom) {
        ok = false;
        snprintf(err, errlen, "out of memory");
    }
    ok = ok && (rows == 0 || list_attempts(c, job_id, key, l, r, (size_t)rows, err, errlen));
    PQclear(r);
    PQclear(PQexec(c, ok ? "COMMIT" : "ROLLBACK"));
    if (!ok) {
        wh_listed_free(l, (size_t)rows);
        return false;
    }
    *out = l;
    *n = (size_t)rows;
    return true;
}
