/* jobs.c: reading and changing stored jobs: binary job rows, their batch
 * summaries (cached), get, list, cancel and delete (see jobs.h). */
#include "store/jobs.h"

#include "store/db.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const jobs_batch_states[7] = {"intent",  "submitted", "succeeded", "failed",
                                          "expired", "cancelled", "released"};

bool jobs_valid_id(const char *s)
{
    if (strlen(s) != JOB_ID_LEN)
        return false;
    for (int i = 0; i < JOB_ID_LEN; i++) {
        char c = s[i];
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

/*
 * Job rows are read in binary (result format 1): PostgreSQL then sends the
 * integers, the uuid and the timestamps as they are stored, without running
 * an output function per column, and the timestamps are formatted here
 * (formatting them in SQL with to_char took a measurable share of the
 * status endpoint's database time).
 */
#define JOB_COLUMNS                                                                                \
    "id, state, display_name, model, task_type, output_dimensionality, normalize, priority,"       \
    " max_chars, overlap_chars, documents, chunks_total, chunks_pending, chunks_in_flight,"        \
    " chunks_succeeded, chunks_failed, token_estimate, created_at, started_at, finished_at,"       \
    " last_activity_at, collection_id, documents_new, documents_updated, documents_unchanged,"     \
    " documents_metadata, documents_deleted, chunks_reused, tokens_batch, tokens_interactive,"     \
    " tokens_reused, tokens_estimated, webhook_url"

/* PostgreSQL's timestamps count microseconds from 2000-01-01 00:00:00 UTC. */
#define PG_EPOCH_UNIX_US INT64_C(946684800000000)

/* Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's civil_from_days). */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/*
 * A binary timestamptz column as "YYYY-MM-DDTHH:MM:SS.ffffffZ" in UTC, the
 * text to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') gives;
 * "" when null. Writes the Unix time in microseconds to *unix_us if given.
 */
static void read_ts(const PGresult *r, int i, int col, char *out, size_t outlen, int64_t *unix_us)
{
    out[0] = '\0';
    if (PQgetisnull(r, i, col) || PQgetlength(r, i, col) != 8)
        return;
    int64_t us = db_bin_int(r, i, col) + PG_EPOCH_UNIX_US;
    if (unix_us)
        *unix_us = us;
    int64_t secs = us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
    int64_t frac = us - secs * 1000000;
    int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    int64_t sod = secs - days * 86400;
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    if (y < 0 || y > 9999 || outlen < 28) { /* never for a job; printf handles it */
        snprintf(out, outlen, "%04lld-%02u-%02uT%02u:%02u:%02u.%06uZ", (long long)y, m, d,
                 (unsigned)(sod / 3600), (unsigned)(sod / 60 % 60), (unsigned)(sod % 60),
                 (unsigned)frac);
        return;
    }
    /* the same text, digit by digit: this runs four times per job read */
    const unsigned v[7] = {(unsigned)y,
                           m,
                           d,
                           (unsigned)(sod / 3600),
                           (unsigned)(sod / 60 % 60),
                           (unsigned)(sod % 60),
                           (unsigned)frac};
    static const int width[7] = {4, 2, 2, 2, 2, 2, 6};
    static const char after[7] = {'-', '-', 'T', ':', ':', '.', 'Z'};
    char *w = out;
    for (int k = 0; k < 7; k++) {
        unsigned x = v[k];
        for (int q = width[k] - 1; q >= 0; q--) {
            w[q] = (char)('0' + x % 10);
            x /= 10;
        }
        w += width[k];
        *w++ = after[k];
    }
    *w = '\0';
}

/* A binary text column (libpq NUL-terminates every value). */
static void read_text(const PGresult *r, int i, int col, char *out, size_t outlen)
{
    size_t n = (size_t)PQgetlength(r, i, col);
    if (n >= outlen)
        n = outlen - 1;
    memcpy(out, PQgetvalue(r, i, col), n);
    out[n] = '\0';
}

/* Row i of a binary JOB_COLUMNS result; *created_us gets created_at in Unix microseconds. */
/* A binary uuid column as its canonical text ("" if null). */
static void read_uuid(const PGresult *r, int i, int col, char out[JOB_ID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    out[0] = '\0';
    if (PQgetlength(r, i, col) != 16)
        return;
    const unsigned char *u = (const unsigned char *)PQgetvalue(r, i, col);
    char *w = out;
    for (int k = 0; k < 16; k++) {
        if (k == 4 || k == 6 || k == 8 || k == 10)
            *w++ = '-';
        *w++ = hex[u[k] >> 4];
        *w++ = hex[u[k] & 15];
    }
    *w = '\0';
}

static void read_row(const PGresult *r, int i, struct job_row *j, int64_t *created_us)
{
    memset(j, 0, sizeof(*j));
    read_uuid(r, i, 0, j->id);
    read_text(r, i, 1, j->state, sizeof(j->state));
    j->has_display_name = !PQgetisnull(r, i, 2);
    read_text(r, i, 2, j->display_name, sizeof(j->display_name));
    read_text(r, i, 3, j->model, sizeof(j->model));
    read_text(r, i, 4, j->task_type, sizeof(j->task_type));
    j->output_dimensionality = (int)db_bin_int(r, i, 5);
    j->normalize = PQgetlength(r, i, 6) == 1 && PQgetvalue(r, i, 6)[0] != 0;
    j->priority = (int)db_bin_int(r, i, 7);
    j->max_chars = (int)db_bin_int(r, i, 8);
    j->overlap_chars = (int)db_bin_int(r, i, 9);
    j->documents = db_bin_int(r, i, 10);
    j->chunks_total = db_bin_int(r, i, 11);
    j->chunks_pending = db_bin_int(r, i, 12);
    j->chunks_in_flight = db_bin_int(r, i, 13);
    j->chunks_succeeded = db_bin_int(r, i, 14);
    j->chunks_failed = db_bin_int(r, i, 15);
    j->token_estimate = db_bin_int(r, i, 16);
    *created_us = 0;
    read_ts(r, i, 17, j->created_at, sizeof(j->created_at), created_us);
    read_ts(r, i, 18, j->started_at, sizeof(j->started_at), NULL);
    read_ts(r, i, 19, j->finished_at, sizeof(j->finished_at), NULL);
    read_ts(r, i, 20, j->last_activity_at, sizeof(j->last_activity_at), NULL);
    read_uuid(r, i, 21, j->collection_id);
    j->documents_new = db_bin_int(r, i, 22);
    j->documents_updated = db_bin_int(r, i, 23);
    j->documents_unchanged = db_bin_int(r, i, 24);
    j->documents_metadata = db_bin_int(r, i, 25);
    j->documents_deleted = db_bin_int(r, i, 26);
    j->chunks_reused = db_bin_int(r, i, 27);
    j->tokens_batch = db_bin_int(r, i, 28);
    j->tokens_interactive = db_bin_int(r, i, 29);
    j->tokens_reused = db_bin_int(r, i, 30);
    j->tokens_estimated = db_bin_int(r, i, 31);
    read_text(r, i, 32, j->webhook_url, sizeof(j->webhook_url));
}

/* A job's batches by state in the same row as the job (one round trip):
 * "state n created texts,..." with n batches, of which created were created
 * at Google, and the texts Google embedded for them (a succeeded batch
 * without a Google name went through the interactive API). */
#define BATCH_SUMMARY                                                                              \
    " (SELECT coalesce(string_agg(x.state || ' ' || x.n || ' ' || x.g || ' ' || x.t, ','), '')"    \
    "   FROM (SELECT state, count(*) AS n, count(*) FILTER (WHERE gemini_name IS NOT NULL) AS g,"  \
    "         coalesce(sum(n_chunks) FILTER (WHERE gemini_name IS NOT NULL"                        \
    "           OR state = 'succeeded'), 0) AS t"                                                  \
    "         FROM batches WHERE batches.job_id = jobs.id GROUP BY state) x)"
#define BATCH_SUMMARY_COL 33 /* after JOB_COLUMNS */

/* The next space- or comma-terminated decimal number of s, advancing s. */
static long long summary_num(const char **s)
{
    const char *p = *s;
    while (*p == ' ')
        p++;
    bool neg = *p == '-';
    if (neg)
        p++;
    long long v = 0;
    while (*p >= '0' && *p <= '9')
        v = v * 10 + (*p++ - '0');
    *s = p;
    return neg ? -v : v;
}

static void read_batch_summary(const char *s, struct job_row *j)
{
    while (s && *s) {
        size_t n_state = strcspn(s, " ,");
        const char *state = s;
        s += n_state;
        long long n = summary_num(&s), g = summary_num(&s), t = summary_num(&s);
        for (int k = 0; k < 7; k++)
            if (strlen(jobs_batch_states[k]) == n_state &&
                memcmp(state, jobs_batch_states[k], n_state) == 0)
                j->batches[k] = n;
        j->google_batches += g;
        j->texts_sent += t;
        s = strchr(s, ',');
        if (s)
            s++;
    }
}

/*
 * Recently read job rows, each with its row version (xmin). Every
 * transaction that changes a job or its batches also moves the job row
 * (counters, state or last_activity_at: see pipe_claim, pipe_submitted,
 * pipe_store_results, pipe_release), and every update of a row gives it a new
 * xmin, so a row read with its batch summary in one statement stays exactly
 * right for as long as the job's xmin is the same. A status poll of a job
 * whose row has not moved then costs one narrow index probe (its xmin, under
 * the caller's key) instead of the 33 columns and the aggregate over its
 * batches. A direct-mapped table: a collision only costs a miss.
 */
struct row_slot {
    char id[JOB_ID_LEN + 1];
    int64_t key_id, version;
    struct job_row row;
};

#define ROW_SLOTS 1024 /* a power of two; about 3 MB */
static struct row_slot row_cache[ROW_SLOTS];
static pthread_mutex_t row_lock = PTHREAD_MUTEX_INITIALIZER;

static struct row_slot *row_slot_of(const char *id)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = id; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return &row_cache[h & (ROW_SLOTS - 1)];
}

/* The cached row of job id at version for key_id into out; false on a miss. */
static bool row_lookup(const char *id, int64_t key_id, int64_t version, struct job_row *out)
{
    struct row_slot *s = row_slot_of(id);
    pthread_mutex_lock(&row_lock);
    bool hit = s->version == version && s->key_id == key_id && strcmp(s->id, id) == 0;
    if (hit)
        memcpy(out, &s->row, sizeof(*out));
    pthread_mutex_unlock(&row_lock);
    return hit;
}

static void row_store(const struct job_row *j, int64_t key_id, int64_t version)
{
    struct row_slot *s = row_slot_of(j->id);
    pthread_mutex_lock(&row_lock);
    memcpy(s->id, j->id, sizeof(s->id));
    s->key_id = key_id;
    s->version = version;
    memcpy(&s->row, j, sizeof(s->row));
    pthread_mutex_unlock(&row_lock);
}

enum jobs_result jobs_get(PGconn *c, int64_t key_id, const char *id, struct job_row *out, char *err,
                          size_t errlen)
{
    if (!jobs_valid_id(id))
        return JOBS_NOT_FOUND;
    char key[24];
    snprintf(key, sizeof(key), "%lld", (long long)key_id);
    const char *vals[2] = {id, key};
    static const struct db_stmt version = {
        "jobs_get_version", "SELECT xmin::text::bigint FROM jobs WHERE id = $1 AND api_key_id = $2",
        2};
    static const struct db_stmt full = {"jobs_get",
                                        "SELECT " JOB_COLUMNS "," BATCH_SUMMARY
                                        ", xmin::text::bigint FROM jobs WHERE id = $1"
                                        " AND api_key_id = $2",
                                        2};
    int64_t created_us;
    for (int pass = 0; pass < 2; pass++) {
        /* first the row's version; on a cache miss, the row and its batches */
        PGresult *r = db_exec_stmt(c, pass ? &full : &version, vals, 1);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            db_error(r, c, "could not read the job", err, errlen);
            PQclear(r);
            return JOBS_ERROR;
        }
        if (PQntuples(r) != 1) {
            PQclear(r);
            return JOBS_NOT_FOUND;
        }
        if (!pass) {
            int64_t v = db_bin_int(r, 0, 0);
            bool hit = row_lookup(id, key_id, v, out);
            out->version = v;
            PQclear(r);
            if (hit)
                return JOBS_OK;
            continue;
        }
        read_row(r, 0, out, &created_us);
        read_batch_summary(PQgetvalue(r, 0, BATCH_SUMMARY_COL), out);
        out->version = db_bin_int(r, 0, BATCH_SUMMARY_COL + 1);
        row_store(out, key_id, out->version);
        PQclear(r);
    }
    return JOBS_OK;
}

/* The text array "{id,id,...}" of the valid ids of ids[0..n) (malloc'd; NULL: out of memory). */
static char *id_array(const char *const *ids, size_t n)
{
    char *a = malloc(n * (JOB_ID_LEN + 1) + 3), *w = a;
    if (!a)
        return NULL;
    *w++ = '{';
    for (size_t i = 0; i < n; i++) {
        if (!jobs_valid_id(ids[i]))
            continue;
        if (w[-1] != '{')
            *w++ = ',';
        memcpy(w, ids[i], JOB_ID_LEN);
        w += JOB_ID_LEN;
    }
    *w++ = '}';
    *w = '\0';
    return a;
}

/* The index of id in ids[0..n), or n. */
static size_t id_index(const char *const *ids, size_t n, const char *id)
{
    size_t i = 0;
    while (i < n && strcmp(ids[i], id) != 0)
        i++;
    return i;
}

enum jobs_result jobs_versions(PGconn *c, const char *const *ids, size_t n, int64_t *versions,
                               char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++)
        versions[i] = -1;
    char *arr = id_array(ids, n);
    if (!arr) {
        snprintf(err, errlen, "out of memory");
        return JOBS_ERROR;
    }
    const char *vals[1] = {arr};
    static const struct db_stmt q = {
        "jobs_versions", "SELECT id, xmin::text::bigint FROM jobs WHERE id = ANY($1::uuid[])", 1};
    PGresult *r = db_exec_stmt(c, &q, vals, 1);
    free(arr);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_error(r, c, "could not read job versions", err, errlen);
        PQclear(r);
        return JOBS_ERROR;
    }
    for (int i = 0; i < PQntuples(r); i++) {
        char id[JOB_ID_LEN + 1];
        read_uuid(r, i, 0, id);
        size_t k = id_index(ids, n, id);
        if (k < n)
            versions[k] = db_bin_int(r, i, 1);
    }
    PQclear(r);
    return JOBS_OK;
}

enum jobs_result jobs_get_many(PGconn *c, const char *const *ids, size_t n, struct job_row *out,
                               int64_t *versions, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++)
        versions[i] = -1;
    char *arr = id_array(ids, n);
    if (!arr) {
        snprintf(err, errlen, "out of memory");
        return JOBS_ERROR;
    }
    const char *vals[1] = {arr};
    static const struct db_stmt q = {"jobs_get_many",
                                     "SELECT " JOB_COLUMNS "," BATCH_SUMMARY
                                     ", xmin::text::bigint FROM jobs WHERE id = ANY($1::uuid[])",
                                     1};
    PGresult *r = db_exec_stmt(c, &q, vals, 1);
    free(arr);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_error(r, c, "could not read jobs", err, errlen);
        PQclear(r);
        return JOBS_ERROR;
    }
    for (int i = 0; i < PQntuples(r); i++) {
        struct job_row row;
        int64_t created_us;
        read_row(r, i, &row, &created_us);
        size_t k = id_index(ids, n, row.id);
        if (k == n)
            continue;
        read_batch_summary(PQgetvalue(r, i, BATCH_SUMMARY_COL), &row);
        row.version = db_bin_int(r, i, BATCH_SUMMARY_COL + 1);
        out[k] = row;
        versions[k] = row.version;
    }
    PQclear(r);
    return JOBS_OK;
}

enum jobs_result jobs_list(PGconn *c, int64_t key_id, const char *state, const char *cursor,
                           int limit, struct job_row *out, size_t *n, char *next_cursor,
                           size_t cursor_len, char *err, size_t errlen)
{
    char key[24], lim[16], us[24] = "", cid[JOB_ID_LEN + 1] = "";
    *n = 0;
    next_cursor[0] = '\0';
    if (cursor && *cursor) {
        const char *dot = strchr(cursor, '.');
        char *end;
        long long v = dot ? strtoll(cursor, &end, 10) : 0;
        if (!dot || end != dot || v <= 0 || !jobs_valid_id(dot + 1))
            return JOBS_CONFLICT;
        snprintf(us, sizeof(us), "%lld", v);
        snprintf(cid, sizeof(cid), "%s", dot + 1);
    }
    snprintf(key, sizeof(key), "%lld", (long long)key_id);
    snprintf(lim, sizeof(lim), "%d", limit + 1);
    const char *vals[5] = {key, state, us[0] ? us : NULL, cid[0] ? cid : NULL, lim};
    PGresult *r = PQexecParams(
        c,
        "SELECT " JOB_COLUMNS "," BATCH_SUMMARY " FROM jobs WHERE api_key_id = $1"
        " AND ($2::text IS NULL OR state = $2)"
        " AND ($3::bigint IS NULL OR (created_at, id) <"
        "      ('epoch'::timestamptz + $3::bigint * interval '1 microsecond', $4::uuid))"
        " ORDER BY created_at DESC, id DESC LIMIT $5",
        5, NULL, vals, NULL, NULL, 1);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_error(r, c, "could not list jobs", err, errlen);
        PQclear(r);
        return JOBS_ERROR;
    }
    int rows = PQntuples(r);
    int64_t created_us = 0;
    for (int i = 0; i < rows && i < limit; i++) {
        read_row(r, i, &out[*n], &created_us);
        read_batch_summary(PQgetvalue(r, i, BATCH_SUMMARY_COL), &out[*n]);
        (*n)++;
    }
    if (rows > limit) /* the last row returned: created_at in Unix microseconds, and its id */
        snprintf(next_cursor, cursor_len, "%lld.%s", (long long)created_us, out[*n - 1].id);
    PQclear(r);
    return JOBS_OK;
}

/* Run one statement that returns the affected job's state, if any. */
static enum jobs_result state_change(PGconn *c, const char *sql, int64_t key_id, const char *id,
                                     const char *what, char *err, size_t errlen)
{
    if (!jobs_valid_id(id))
        return JOBS_NOT_FOUND;
    char key[24];
    snprintf(key, sizeof(key), "%lld", (long long)key_id);
    const char *vals[2] = {id, key};
    PGresult *r = PQexecParams(c, sql, 2, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        /* a foreign key from collection_documents: the job holds current versions */
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        bool in_use = state && strcmp(state, "23503") == 0;
        db_error(r, c, what, err, errlen);
        PQclear(r);
        return in_use ? JOBS_IN_USE : JOBS_ERROR;
    }
    enum jobs_result res = JOBS_NOT_FOUND;
    if (PQntuples(r) == 1)
        res = PQgetvalue(r, 0, 0)[0] == 't' ? JOBS_OK : JOBS_CONFLICT;
    PQclear(r);
    return res;
}

enum jobs_result jobs_cancel(PGconn *c, int64_t key_id, const char *id, char *err, size_t errlen)
{
    /* One statement: lock the job, fail its pending chunks, fix the counters. */
    return state_change(
        c,
        "WITH j AS (SELECT id, state FROM jobs WHERE id = $1 AND api_key_id = $2 FOR UPDATE),"
        " dropped AS (UPDATE chunks SET state = 3, error = 'cancelled'"
        "   WHERE job_id = (SELECT id FROM j WHERE state IN ('pending', 'running'))"
        "   AND state = 0 RETURNING 1),"
        " upd AS (UPDATE jobs SET state = 'cancelled', finished_at = now(),"
        "   last_activity_at = now(), chunks_failed = chunks_failed + (SELECT count(*) FROM "
        "dropped),"
        "   chunks_pending = chunks_pending - (SELECT count(*) FROM dropped)"
        "   WHERE id = (SELECT id FROM j WHERE state IN ('pending', 'running')) RETURNING 1),"
        /* a collection's documents keep their current versions */
        " kept AS (UPDATE collection_documents SET next_job_id = NULL, next_doc_index = NULL,"
        "   next_content_sha256 = NULL, error = 'the job was cancelled', updated_at = now()"
        "   WHERE next_job_id = (SELECT id FROM j WHERE state IN ('pending', 'running')))"
        " SELECT (SELECT count(*) FROM upd) > 0 FROM j",
        key_id, id, "could not cancel the job", err, errlen);
}

enum jobs_result jobs_delete(PGconn *c, int64_t key_id, const char *id, char *err, size_t errlen)
{
    return state_change(c,
                        "WITH j AS (SELECT id, state FROM jobs WHERE id = $1 AND api_key_id = $2"
                        "   FOR UPDATE),"
                        " del AS (DELETE FROM jobs WHERE id = (SELECT id FROM j WHERE state NOT IN"
                        "   ('pending', 'running')) RETURNING 1)"
                        " SELECT (SELECT count(*) FROM del) > 0 FROM j",
                        key_id, id, "could not delete the job", err, errlen);
}

enum jobs_result jobs_usage(PGconn *c, int64_t key_id, const char *from, const char *to,
                            struct jobs_usage *out, size_t max, size_t *n, char *err, size_t errlen)
{
    char key[24];
    snprintf(key, sizeof(key), "%lld", (long long)key_id);
    const char *v[3] = {key, from, to};
    *n = 0;
    PGresult *r = PQexecParams(
        c,
        "SELECT model, count(*), sum(chunks_succeeded), sum(chunks_failed), sum(chunks_reused),"
        " sum(tokens_batch), sum(tokens_interactive), sum(tokens_reused), sum(tokens_estimated)"
        " FROM jobs WHERE api_key_id = $1"
        " AND ($2::timestamptz IS NULL OR created_at >= $2::timestamptz)"
        " AND ($3::timestamptz IS NULL OR created_at < $3::timestamptz)"
        " GROUP BY model ORDER BY model",
        3, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        /* a bad timestamp (22007, 22008) is the caller's */
        const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        bool bad = st && strncmp(st, "2200", 4) == 0;
        db_error(r, c, "could not sum usage", err, errlen);
        PQclear(r);
        return bad ? JOBS_CONFLICT : JOBS_ERROR;
    }
    for (int i = 0; i < PQntuples(r) && *n < max; i++) {
        struct jobs_usage *u = &out[(*n)++];
        snprintf(u->model, sizeof(u->model), "%s", PQgetvalue(r, i, 0));
        u->jobs = db_int(PQgetvalue(r, i, 1));
        u->chunks_succeeded = db_int(PQgetvalue(r, i, 2));
        u->chunks_failed = db_int(PQgetvalue(r, i, 3));
        u->chunks_reused = db_int(PQgetvalue(r, i, 4));
        u->tokens_batch = db_int(PQgetvalue(r, i, 5));
        u->tokens_interactive = db_int(PQgetvalue(r, i, 6));
        u->tokens_reused = db_int(PQgetvalue(r, i, 7));
        u->tokens_estimated = db_int(PQgetvalue(r, i, 8));
    }
    PQclear(r);
    return JOBS_OK;
}
