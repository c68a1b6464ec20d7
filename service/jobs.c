/* jobs.c: the jobs store (see jobs.h). */
#include "jobs.h"

#include "chunker.h"
#include "db.h"
#include "util/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

const char *const jobs_batch_states[7] = {"intent",  "submitted", "succeeded", "failed",
                                          "expired", "cancelled", "released"};

#define COPY_FLUSH (1 << 20)

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

static bool new_uuid(char out[JOB_ID_LEN + 1])
{
    unsigned char b[16];
    if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
        return false;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    snprintf(out, JOB_ID_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
    return true;
}

/* ---- COPY FROM STDIN in text format ---- */

struct copy {
    PGconn *c;
    struct buf b;
    bool failed;
};

static bool copy_flush(struct copy *cp)
{
    if (cp->b.len && PQputCopyData(cp->c, cp->b.data, (int)cp->b.len) != 1)
        cp->failed = true;
    buf_reset(&cp->b);
    return !cp->failed;
}

/* Append a text field with COPY's escapes. */
static bool copy_text(struct copy *cp, const char *s, size_t n)
{
    if (!buf_reserve(&cp->b, n + 16))
        return false;
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i], e = 0;
        if (c == '\\')
            e = '\\';
        else if (c == '\n')
            e = 'n';
        else if (c == '\r')
            e = 'r';
        else if (c == '\t')
            e = 't';
        if (!e)
            continue;
        char esc[2] = {'\\', e};
        if (!buf_append(&cp->b, s + start, i - start) || !buf_append(&cp->b, esc, 2))
            return false;
        start = i + 1;
    }
    return buf_append(&cp->b, s + start, n - start);
}

static bool copy_end_row(struct copy *cp)
{
    if (!buf_putc(&cp->b, '\n'))
        return false;
    return cp->b.len < COPY_FLUSH || copy_flush(cp);
}

static bool copy_finish(struct copy *cp, const char *what, char *err, size_t errlen)
{
    bool ok = copy_flush(cp);
    if (PQputCopyEnd(cp->c, ok ? NULL : "aborted by embedd") != 1)
        ok = false;
    PGresult *r;
    while ((r = PQgetResult(cp->c))) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK && ok) {
            db_error(r, cp->c, what, err, errlen);
            ok = false;
        }
        PQclear(r);
    }
    if (!ok && !*err)
        db_error(NULL, cp->c, what, err, errlen);
    buf_cleanup(&cp->b);
    return ok;
}

static bool copy_start(struct copy *cp, PGconn *c, const char *sql, char *err, size_t errlen)
{
    cp->c = c;
    cp->failed = false;
    buf_init(&cp->b, (size_t)COPY_FLUSH * 4 + 64 * 1024 * 1024);
    PGresult *r = PQexec(c, sql);
    bool ok = PQresultStatus(r) == PGRES_COPY_IN;
    if (!ok)
        db_error(r, c, "could not start COPY", err, errlen);
    PQclear(r);
    return ok;
}

static bool copy_documents(PGconn *c, const char *id, const struct ingest_doc *docs, size_t n,
                           char *err, size_t errlen)
{
    struct copy cp;
    if (!copy_start(&cp, c,
                    "COPY documents (job_id, doc_index, doc_id, title, metadata, chars)"
                    " FROM STDIN",
                    err, errlen))
        return false;
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        const struct ingest_doc *d = &docs[i];
        ok = buf_printf(&cp.b, "%s\t%zu\t", id, i) && copy_text(&cp, d->id, d->id_len) &&
             buf_putc(&cp.b, '\t') &&
             (d->title ? copy_text(&cp, d->title, d->title_len) : buf_puts(&cp.b, "\\N")) &&
             buf_putc(&cp.b, '\t') &&
             (d->metadata_json ? copy_text(&cp, d->metadata_json, strlen(d->metadata_json))
                               : buf_puts(&cp.b, "\\N")) &&
             buf_printf(&cp.b, "\t%zu", utf8_count(d->text, d->text_len)) && copy_end_row(&cp);
    }
    if (!ok)
        cp.failed = true;
    return copy_finish(&cp, "could not store documents", err, errlen);
}

/* Chunk and COPY every document's chunks; counts what was stored. */
static bool copy_chunks(PGconn *c, const char *id, const struct job_spec *spec,
                        const struct ingest_doc *docs, size_t n, int64_t *n_chunks, int64_t *tokens,
                        char *err, size_t errlen)
{
    struct copy cp;
    if (!copy_start(&cp, c,
                    "COPY chunks (job_id, seq, doc_index, chunk_index, char_start, char_end,"
                    " tokens, text) FROM STDIN",
                    err, errlen))
        return false;
    struct chunk_opts o = {.max_chars = (size_t)spec->max_chars,
                           .overlap_chars = (size_t)spec->overlap_chars,
                           .max_tokens = CHUNK_DEFAULT_MAX_TOKENS};
    int64_t seq = 0, tok = 0;
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        struct chunk *ch = NULL;
        size_t nc = 0;
        ok = chunker_split(docs[i].text, docs[i].text_len, &o, &ch, &nc);
        for (size_t k = 0; k < nc && ok; k++) {
            ok = buf_printf(&cp.b, "%s\t%lld\t%zu\t%zu\t%zu\t%zu\t%lld\t", id, (long long)seq++, i,
                            k, ch[k].char_start, ch[k].char_end, (long long)ch[k].tokens) &&
                 copy_text(&cp, docs[i].text + ch[k].byte_start,
                           ch[k].byte_end - ch[k].byte_start) &&
                 copy_end_row(&cp);
            tok += ch[k].tokens;
        }
        free(ch);
    }
    if (!ok) {
        cp.failed = true;
        snprintf(err, errlen, "could not chunk documents: out of memory");
    }
    *n_chunks = seq;
    *tokens = tok;
    return copy_finish(&cp, "could not store chunks", err, errlen) && ok;
}

static bool exec_params(PGconn *c, const char *sql, int n, const char *const *vals,
                        const char *what, char *err, size_t errlen)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, vals, NULL, NULL, 0);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        db_error(r, c, what, err, errlen);
    PQclear(r);
    return ok;
}

bool jobs_create(PGconn *c, const struct job_spec *spec, const struct ingest_doc *docs,
                 size_t n_docs, char id_out[JOB_ID_LEN + 1], char *err, size_t errlen)
{
    char key[24], dims[16], prio[16], maxc[16], ovl[16], ndocs[24], nchunks[24], ntok[24];
    if (!new_uuid(id_out)) {
        snprintf(err, errlen, "could not read random bytes");
        return false;
    }
    snprintf(key, sizeof(key), "%lld", (long long)spec->key_id);
    snprintf(dims, sizeof(dims), "%d", spec->output_dimensionality);
    snprintf(prio, sizeof(prio), "%d", spec->priority);
    snprintf(maxc, sizeof(maxc), "%d", spec->max_chars);
    snprintf(ovl, sizeof(ovl), "%d", spec->overlap_chars);
    snprintf(ndocs, sizeof(ndocs), "%zu", n_docs);
    const char *vals[11] = {id_out,
                            key,
                            spec->display_name,
                            spec->model,
                            spec->task_type,
                            dims,
                            spec->normalize ? "t" : "f",
                            prio,
                            maxc,
                            ovl,
                            ndocs};
    int64_t n_chunks = 0, tokens = 0;
    if (!db_exec(c, "BEGIN", err, errlen))
        return false;
    bool ok = exec_params(c,
                          "INSERT INTO jobs (id, api_key_id, display_name, model, task_type,"
                          " output_dimensionality, normalize, priority, max_chars, overlap_chars,"
                          " documents, chunks_total, chunks_pending, token_estimate)"
                          " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0, 0, 0)",
                          11, vals, "could not store the job", err, errlen) &&
              copy_documents(c, id_out, docs, n_docs, err, errlen) &&
              copy_chunks(c, id_out, spec, docs, n_docs, &n_chunks, &tokens, err, errlen);
    if (ok) {
        snprintf(nchunks, sizeof(nchunks), "%lld", (long long)n_chunks);
        snprintf(ntok, sizeof(ntok), "%lld", (long long)tokens);
        const char *v2[3] = {id_out, nchunks, ntok};
        ok = exec_params(c,
                         "UPDATE jobs SET chunks_total = $2, chunks_pending = $2,"
                         " token_estimate = $3 WHERE id = $1",
                         3, v2, "could not count chunks", err, errlen) &&
             db_exec(c, "COMMIT", err, errlen);
    }
    if (!ok) {
        PGresult *r = PQexec(c, "ROLLBACK");
        PQclear(r);
    }
    return ok;
}

/* ---- reading ---- */

#define TS(col)                                                                                    \
    "coalesce(to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), '')"
#define JOB_COLUMNS                                                                                \
    "id, state, display_name, model, task_type, output_dimensionality, normalize, priority,"       \
    " max_chars, overlap_chars, documents, chunks_total, chunks_pending, chunks_in_flight,"        \
    " chunks_succeeded, chunks_failed, token_estimate, " TS("created_at") ", " TS(                 \
        "started_at") ", " TS("finished_at") ", " TS("last_activity_at") ","                       \
                                                                         " (extract(epoch FROM "   \
                                                                         "created_at) * "          \
                                                                         "1000000)::bigint"

static void read_row(PGresult *r, int i, struct job_row *j)
{
    memset(j, 0, sizeof(*j));
    snprintf(j->id, sizeof(j->id), "%s", PQgetvalue(r, i, 0));
    snprintf(j->state, sizeof(j->state), "%s", PQgetvalue(r, i, 1));
    j->has_display_name = !PQgetisnull(r, i, 2);
    snprintf(j->display_name, sizeof(j->display_name), "%s", PQgetvalue(r, i, 2));
    snprintf(j->model, sizeof(j->model), "%s", PQgetvalue(r, i, 3));
    snprintf(j->task_type, sizeof(j->task_type), "%s", PQgetvalue(r, i, 4));
    j->output_dimensionality = (int)db_int(PQgetvalue(r, i, 5));
    j->normalize = PQgetvalue(r, i, 6)[0] == 't';
    j->priority = (int)db_int(PQgetvalue(r, i, 7));
    j->max_chars = (int)db_int(PQgetvalue(r, i, 8));
    j->overlap_chars = (int)db_int(PQgetvalue(r, i, 9));
    j->documents = db_int(PQgetvalue(r, i, 10));
    j->chunks_total = db_int(PQgetvalue(r, i, 11));
    j->chunks_pending = db_int(PQgetvalue(r, i, 12));
    j->chunks_in_flight = db_int(PQgetvalue(r, i, 13));
    j->chunks_succeeded = db_int(PQgetvalue(r, i, 14));
    j->chunks_failed = db_int(PQgetvalue(r, i, 15));
    j->token_estimate = db_int(PQgetvalue(r, i, 16));
    snprintf(j->created_at, sizeof(j->created_at), "%s", PQgetvalue(r, i, 17));
    snprintf(j->started_at, sizeof(j->started_at), "%s", PQgetvalue(r, i, 18));
    snprintf(j->finished_at, sizeof(j->finished_at), "%s", PQgetvalue(r, i, 19));
    snprintf(j->last_activity_at, sizeof(j->last_activity_at), "%s", PQgetvalue(r, i, 20));
}

static bool read_batch_counts(PGconn *c, struct job_row *j, char *err, size_t errlen)
{
    const char *vals[1] = {j->id};
    PGresult *r = PQexecParams(c,
                               "SELECT state, count(*),"
                               " count(*) FILTER (WHERE gemini_name IS NOT NULL),"
                               " coalesce(sum(n_chunks) FILTER (WHERE gemini_name IS NOT NULL"
                               "   OR state = 'succeeded'), 0)"
                               " FROM batches WHERE job_id = $1 GROUP BY state",
                               1, NULL, vals, NULL, NULL, 0);
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        db_error(r, c, "could not count batches", err, errlen);
    for (int i = 0; ok && i < PQntuples(r); i++) {
        for (int k = 0; k < 7; k++)
            if (strcmp(PQgetvalue(r, i, 0), jobs_batch_states[k]) == 0)
                j->batches[k] = db_int(PQgetvalue(r, i, 1));
        /* a succeeded batch without a Google name went through the interactive API */
        j->google_batches += db_int(PQgetvalue(r, i, 2));
        j->texts_sent += db_int(PQgetvalue(r, i, 3));
    }
    PQclear(r);
    return ok;
}

enum jobs_result jobs_get(PGconn *c, int64_t key_id, const char *id, struct job_row *out, char *err,
                          size_t errlen)
{
    if (!jobs_valid_id(id))
        return JOBS_NOT_FOUND;
    char key[24];
    snprintf(key, sizeof(key), "%lld", (long long)key_id);
    const char *vals[2] = {id, key};
    PGresult *r = PQexecParams(c,
                               "SELECT " JOB_COLUMNS " FROM jobs WHERE id = $1"
                               " AND api_key_id = $2",
                               2, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_error(r, c, "could not read the job", err, errlen);
        PQclear(r);
        return JOBS_ERROR;
    }
    enum jobs_result res = PQntuples(r) == 1 ? JOBS_OK : JOBS_NOT_FOUND;
    if (res == JOBS_OK)
        read_row(r, 0, out);
    PQclear(r);
    if (res == JOBS_OK && !read_batch_counts(c, out, err, errlen))
        return JOBS_ERROR;
    return res;
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
        "SELECT " JOB_COLUMNS " FROM jobs WHERE api_key_id = $1"
        " AND ($2::text IS NULL OR state = $2)"
        " AND ($3::bigint IS NULL OR (created_at, id) <"
        "      ('epoch'::timestamptz + $3::bigint * interval '1 microsecond', $4::uuid))"
        " ORDER BY created_at DESC, id DESC LIMIT $5",
        5, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_error(r, c, "could not list jobs", err, errlen);
        PQclear(r);
        return JOBS_ERROR;
    }
    int rows = PQntuples(r);
    for (int i = 0; i < rows && i < limit; i++)
        read_row(r, i, &out[(*n)++]);
    if (rows > limit)
        snprintf(next_cursor, cursor_len, "%s.%s", PQgetvalue(r, limit - 1, 21),
                 PQgetvalue(r, limit - 1, 0));
    PQclear(r);
    for (size_t i = 0; i < *n; i++)
        if (!read_batch_counts(c, &out[i], err, errlen))
            return JOBS_ERROR;
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
        db_error(r, c, what, err, errlen);
        PQclear(r);
        return JOBS_ERROR;
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
        "   WHERE id = (SELECT id FROM j WHERE state IN ('pending', 'running')) RETURNING 1)"
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
