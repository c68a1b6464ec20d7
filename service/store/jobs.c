/* jobs.c: the jobs store (see jobs.h). */
#include "store/jobs.h"

#include "chunker/chunker.h"
#include "store/db.h"
#include "util/buf.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

const char *const jobs_batch_states[7] = {"intent",  "submitted", "succeeded", "failed",
                                          "expired", "cancelled", "released"};

#define COPY_FLUSH (1 << 20) /* bytes per PQputCopyData */

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

/* ---- COPY FROM STDIN in text format ---- */

/* Append a text field with COPY's escapes. */
static bool copy_text(struct buf *b, const char *s, size_t n)
{
    if (!buf_reserve(b, n + 16))
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
        if (!buf_append(b, s + start, i - start) || !buf_append(b, esc, 2))
            return false;
        start = i + 1;
    }
    return buf_append(b, s + start, n - start);
}

/* Run one COPY ... FROM STDIN with the rows in b (whole rows, text format). */
static bool copy_rows(PGconn *c, const char *sql, const struct buf *b, const char *what, char *err,
                      size_t errlen)
{
    PGresult *r = PQexec(c, sql);
    bool ok = PQresultStatus(r) == PGRES_COPY_IN;
    if (!ok) {
        db_error(r, c, "could not start COPY", err, errlen);
        PQclear(r);
        return false;
    }
    PQclear(r);
    /* PQputCopyData takes an int length: send in pieces */
    for (size_t off = 0; ok && off < b->len; off += COPY_FLUSH) {
        size_t n = b->len - off < COPY_FLUSH ? b->len - off : COPY_FLUSH;
        ok = PQputCopyData(c, b->data + off, (int)n) == 1;
    }
    if (PQputCopyEnd(c, ok ? NULL : "aborted by embedd") != 1)
        ok = false;
    bool reported = false;
    while ((r = PQgetResult(c))) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK && !reported) {
            db_error(r, c, what, err, errlen);
            reported = true;
            ok = false;
        }
        PQclear(r);
    }
    if (!ok && !reported)
        db_error(NULL, c, what, err, errlen);
    return ok;
}

/* ---- ingest: documents and chunks written as they arrive ---- */

/*
 * Chunk rows go out as they are made, through a COPY that stays open, so
 * PostgreSQL stores them while the next documents are parsed and chunked
 * (on two cores that overlap is what keeps up with a bare COPY). One
 * connection cannot run two COPYs at once, so document rows (small) wait in
 * a buffer: when it passes INGEST_DOCS_BATCH bytes (and at the end, or when
 * an id must be checked against the stored rows) the chunks COPY is closed,
 * the documents are COPYed, and the next chunk row opens a new chunks COPY.
 * Memory stays at the two buffers plus the current document, whatever the
 * number of documents.
 *
 * COPY text, not binary: measured here (2 vCPUs, PostgreSQL 15, 100,000
 * rows of 1,000 B into the real chunks table with its keys, one transaction,
 * 5 alternating runs) text gave a median 53.6k rows/s (39.9k-58.4k) and
 * binary 52.7k (39.7k-69.7k): no gain beyond the noise once the table's
 * indexes are paid (LIMITS.md's 1.3x was for a bare table), so the simpler,
 * debuggable text format stays.
 */
#define INGEST_DOCS_BATCH (4u << 20)
#define INGEST_CHUNK_SEND (256u << 10) /* chunk rows handed to libpq at a time */

struct seen { /* one document id, by hash (exactness is checked on a hit) */
    uint64_t hash;
    uint32_t index_plus1; /* 0: empty slot */
};

struct jobs_ingest {
    PGconn *c;
    char id[JOB_ID_LEN + 1];
    struct chunk_opts opts;
    struct buf docs, chunks; /* COPY text rows not yet sent */
    bool copying;            /* the chunks COPY is open */
    size_t n_docs;           /* documents added so far */
    int64_t seq, tokens;
    struct seen *seen; /* open addressing, at most half full */
    size_t seen_cap;
};

static uint64_t id_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a, then a final mix */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

static bool seen_grow(struct jobs_ingest *in)
{
    size_t cap = in->seen_cap ? in->seen_cap * 2 : 1024;
    struct seen *t = calloc(cap, sizeof(*t));
    if (!t)
        return false;
    for (size_t i = 0; i < in->seen_cap; i++) {
        if (!in->seen[i].index_plus1)
            continue;
        size_t k = (size_t)in->seen[i].hash & (cap - 1);
        while (t[k].index_plus1)
            k = (k + 1) & (cap - 1);
        t[k] = in->seen[i];
    }
    free(in->seen);
    in->seen = t;
    in->seen_cap = cap;
    return true;
}

/* Hand the pending chunk rows to the open (or a new) chunks COPY. */
static bool chunks_send(struct jobs_ingest *in, char *err, size_t errlen)
{
    if (!in->chunks.len)
        return true;
    if (!in->copying) {
        PGresult *r = PQexec(in->c, "COPY chunks (job_id, seq, doc_index, chunk_index,"
                                    " char_start, char_end, tokens, text) FROM STDIN");
        bool ok = PQresultStatus(r) == PGRES_COPY_IN;
        if (!ok)
            db_error(r, in->c, "could not start COPY", err, errlen);
        PQclear(r);
        if (!ok)
            return false;
        in->copying = true;
    }
    bool ok = true;
    for (size_t off = 0; ok && off < in->chunks.len; off += COPY_FLUSH) {
        size_t n = in->chunks.len - off < COPY_FLUSH ? in->chunks.len - off : COPY_FLUSH;
        ok = PQputCopyData(in->c, in->chunks.data + off, (int)n) == 1;
    }
    buf_reset(&in->chunks);
    if (!ok)
        db_error(NULL, in->c, "could not store chunks", err, errlen);
    return ok;
}

/* Close the chunks COPY, if open; with failed, abort it. */
static bool chunks_end(struct jobs_ingest *in, bool failed, char *err, size_t errlen)
{
    if (!in->copying)
        return true;
    in->copying = false;
    bool ok = PQputCopyEnd(in->c, failed ? "aborted by embedd" : NULL) == 1, reported = false;
    PGresult *r;
    while ((r = PQgetResult(in->c))) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK && !reported && !failed) {
            db_error(r, in->c, "could not store chunks", err, errlen);
            reported = true;
        }
        ok = ok && PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
    }
    if (!ok && !reported && !failed)
        db_error(NULL, in->c, "could not store chunks", err, errlen);
    return ok;
}

/* Write everything pending: the chunk rows, then the document rows. */
static bool ingest_flush(struct jobs_ingest *in, char *err, size_t errlen)
{
    bool ok = chunks_send(in, err, errlen) && chunks_end(in, false, err, errlen);
    if (ok && in->docs.len)
        ok = copy_rows(in->c,
                       "COPY documents (job_id, doc_index, doc_id, title, metadata, chars)"
                       " FROM STDIN",
                       &in->docs, "could not store documents", err, errlen);
    buf_reset(&in->docs);
    buf_reset(&in->chunks);
    return ok;
}

/* Whether the stored doc_id of document index i (already flushed) is id. */
static bool stored_doc_id_is(struct jobs_ingest *in, size_t i, const char *id, size_t len,
                             bool *same, char *err, size_t errlen)
{
    char idx[24];
    snprintf(idx, sizeof(idx), "%zu", i);
    const char *vals[2] = {in->id, idx};
    PGresult *r =
        PQexecParams(in->c, "SELECT doc_id FROM documents WHERE job_id = $1 AND doc_index = $2", 2,
                     NULL, vals, NULL, NULL, 0);
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    if (!ok)
        db_error(r, in->c, "could not check document ids", err, errlen);
    else
        *same = (size_t)PQgetlength(r, 0, 0) == len && memcmp(PQgetvalue(r, 0, 0), id, len) == 0;
    PQclear(r);
    return ok;
}

/*
 * Whether d->id was already used in this job; records it otherwise. Only a
 * 16-byte entry per document is kept (1.6 MB for 100,000 documents), not the
 * ids: a hash hit is confirmed against the stored row, so the answer is exact
 * and names the first occurrence, like the JSON body's check. The UNIQUE
 * (job_id, doc_id) constraint stays as the last line of defence.
 */
static enum jobs_result ingest_check_id(struct jobs_ingest *in, const struct ingest_doc *d,
                                        size_t *dup_of, char *err, size_t errlen)
{
    if ((in->n_docs + 1) * 2 > in->seen_cap && !seen_grow(in)) {
        snprintf(err, errlen, "out of memory");
        return JOBS_ERROR;
    }
    uint64_t h = id_hash(d->id, d->id_len);
    size_t k = (size_t)h & (in->seen_cap - 1);
    for (; in->seen[k].index_plus1; k = (k + 1) & (in->seen_cap - 1)) {
        if (in->seen[k].hash != h)
            continue;
        /* a duplicate or (rarely) a hash collision: compare with the stored id */
        if (!ingest_flush(in, err, errlen))
            return JOBS_ERROR;
        bool same = false;
        size_t first = in->seen[k].index_plus1 - 1;
        if (!stored_doc_id_is(in, first, d->id, d->id_len, &same, err, errlen))
            return JOBS_ERROR;
        if (same) {
            *dup_of = first;
            return JOBS_CONFLICT;
        }
    }
    in->seen[k] = (struct seen){h, (uint32_t)(in->n_docs + 1)};
    return JOBS_OK;
}

static void ingest_free(struct jobs_ingest *in)
{
    buf_cleanup(&in->docs);
    buf_cleanup(&in->chunks);
    free(in->seen);
    free(in);
}

struct jobs_ingest *jobs_ingest_begin(PGconn *c, const struct job_spec *spec, char *err,
                                      size_t errlen)
{
    struct jobs_ingest *in = calloc(1, sizeof(*in));
    if (!in) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    in->c = c;
    in->opts = (struct chunk_opts){.max_chars = (size_t)spec->max_chars,
                                   .overlap_chars = (size_t)spec->overlap_chars,
                                   .max_tokens = CHUNK_DEFAULT_MAX_TOKENS};
    /* one document may pass the batch size: the cap only stops runaway growth */
    buf_init(&in->docs, SIZE_MAX / 4);
    buf_init(&in->chunks, SIZE_MAX / 4);
    if (!new_uuid(in->id)) {
        snprintf(err, errlen, "could not read random bytes");
        ingest_free(in);
        return NULL;
    }
    char key[24], dims[16], prio[16], maxc[16], ovl[16];
    snprintf(key, sizeof(key), "%lld", (long long)spec->key_id);
    snprintf(dims, sizeof(dims), "%d", spec->output_dimensionality);
    snprintf(prio, sizeof(prio), "%d", spec->priority);
    snprintf(maxc, sizeof(maxc), "%d", spec->max_chars);
    snprintf(ovl, sizeof(ovl), "%d", spec->overlap_chars);
    const char *vals[10] = {in->id,
                            key,
                            spec->display_name,
                            spec->model,
                            spec->task_type,
                            dims,
                            spec->normalize ? "t" : "f",
                            prio,
                            maxc,
                            ovl};
    if (!db_exec(c, "BEGIN", err, errlen)) {
        ingest_free(in);
        return NULL;
    }
    if (!exec_params(c,
                     "INSERT INTO jobs (id, api_key_id, display_name, model, task_type,"
                     " output_dimensionality, normalize, priority, max_chars, overlap_chars,"
                     " documents, chunks_total, chunks_pending, token_estimate)"
                     " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, 0, 0, 0)",
                     10, vals, "could not store the job", err, errlen)) {
        jobs_ingest_abort(in);
        return NULL;
    }
    return in;
}

size_t jobs_ingest_documents(const struct jobs_ingest *in)
{
    return in->n_docs;
}

enum jobs_result jobs_ingest_add(struct jobs_ingest *in, const struct ingest_doc *d, size_t *dup_of,
                                 char *err, size_t errlen)
{
    enum jobs_result res = ingest_check_id(in, d, dup_of, err, errlen);
    if (res != JOBS_OK)
        return res;
    size_t i = in->n_docs;
    struct buf *db = &in->docs, *cb = &in->chunks;
    bool ok = buf_printf(db, "%s\t%zu\t", in->id, i) && copy_text(db, d->id, d->id_len) &&
              buf_putc(db, '\t') &&
              (d->title ? copy_text(db, d->title, d->title_len) : buf_puts(db, "\\N")) &&
              buf_putc(db, '\t') &&
              (d->metadata_json ? copy_text(db, d->metadata_json, strlen(d->metadata_json))
                                : buf_puts(db, "\\N")) &&
              buf_printf(db, "\t%zu\n", utf8_count(d->text, d->text_len));
    struct chunk *ch = NULL;
    size_t nc = 0;
    ok = ok && chunker_split(d->text, d->text_len, &in->opts, &ch, &nc);
    for (size_t k = 0; k < nc && ok; k++) {
        ok = buf_printf(cb, "%s\t%lld\t%zu\t%zu\t%zu\t%zu\t%lld\t", in->id, (long long)in->seq++, i,
                        k, ch[k].char_start, ch[k].char_end, (long long)ch[k].tokens) &&
             copy_text(cb, d->text + ch[k].byte_start, ch[k].byte_end - ch[k].byte_start) &&
             buf_putc(cb, '\n');
        in->tokens += ch[k].tokens;
    }
    free(ch);
    if (!ok) {
        snprintf(err, errlen, "could not chunk documents: out of memory");
        return JOBS_ERROR;
    }
    in->n_docs++;
    if (cb->len >= INGEST_CHUNK_SEND && !chunks_send(in, err, errlen))
        return JOBS_ERROR;
    if (db->len >= INGEST_DOCS_BATCH && !ingest_flush(in, err, errlen))
        return JOBS_ERROR;
    return JOBS_OK;
}

bool jobs_ingest_finish(struct jobs_ingest *in, char id_out[JOB_ID_LEN + 1], char *err,
                        size_t errlen)
{
    char ndocs[24], nchunks[24], ntok[24];
    snprintf(ndocs, sizeof(ndocs), "%zu", in->n_docs);
    snprintf(nchunks, sizeof(nchunks), "%lld", (long long)in->seq);
    snprintf(ntok, sizeof(ntok), "%lld", (long long)in->tokens);
    const char *vals[4] = {in->id, ndocs, nchunks, ntok};
    bool ok = ingest_flush(in, err, errlen) &&
              exec_params(in->c,
                          "UPDATE jobs SET documents = $2, chunks_total = $3, chunks_pending = $3,"
                          " token_estimate = $4 WHERE id = $1",
                          4, vals, "could not count chunks", err, errlen) &&
              db_exec(in->c, "COMMIT", err, errlen);
    if (!ok) {
        jobs_ingest_abort(in);
        return false;
    }
    memcpy(id_out, in->id, JOB_ID_LEN + 1);
    /* A large job changes the tables' statistics at once, long before
     * autovacuum looks: planned with the old ones, the workers' claims and
     * stores took the job for a handful of rows and looped over all of them
     * (measured: a second 100,000-chunk job took 75-89 s instead of 22 s, its
     * claims up to 40 s each). ANALYZE samples a bounded number of rows
     * (~0.3 s at 200,000 chunks); a failure only leaves the old statistics. */
    if (in->seq >= JOBS_ANALYZE_MIN_CHUNKS) {
        PGresult *r = PQexec(in->c, "ANALYZE chunks, documents");
        PQclear(r);
    }
    ingest_free(in);
    return true;
}

void jobs_ingest_abort(struct jobs_ingest *in)
{
    if (!in)
        return;
    char err[8];
    (void)chunks_end(in, true, err, sizeof(err));
    PGresult *r = PQexec(in->c, "ROLLBACK");
    PQclear(r);
    ingest_free(in);
}

bool jobs_create(PGconn *c, const struct job_spec *spec, const struct ingest_doc *docs,
                 size_t n_docs, char id_out[JOB_ID_LEN + 1], char *err, size_t errlen)
{
    struct jobs_ingest *in = jobs_ingest_begin(c, spec, err, errlen);
    if (!in)
        return false;
    for (size_t i = 0; i < n_docs; i++) {
        size_t dup = 0;
        enum jobs_result r = jobs_ingest_add(in, &docs[i], &dup, err, errlen);
        if (r == JOBS_CONFLICT)
            snprintf(err, errlen, "document %zu repeats the id of document %zu", i, dup);
        if (r != JOBS_OK) {
            jobs_ingest_abort(in);
            return false;
        }
    }
    return jobs_ingest_finish(in, id_out, err, errlen);
}

/* ---- reading ---- */

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
    " last_activity_at"

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
static void read_row(const PGresult *r, int i, struct job_row *j, int64_t *created_us)
{
    static const char hex[] = "0123456789abcdef";
    memset(j, 0, sizeof(*j));
    if (PQgetlength(r, i, 0) == 16) {
        const unsigned char *u = (const unsigned char *)PQgetvalue(r, i, 0);
        char *w = j->id;
        for (int k = 0; k < 16; k++) {
            if (k == 4 || k == 6 || k == 8 || k == 10)
                *w++ = '-';
            *w++ = hex[u[k] >> 4];
            *w++ = hex[u[k] & 15];
        }
        *w = '\0';
    }
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
#define BATCH_SUMMARY_COL 21

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
 * The batch summaries of recently read jobs. Every transaction that changes a
 * job's batches also moves its job row (counters, state or last_activity_at:
 * see pipe_claim, pipe_submitted, pipe_store_results, pipe_release), so a
 * summary read in one statement with a job row stays right for as long as
 * that row reads the same. Status polls of a busy job then cost the job row
 * alone, not the aggregate over its batches (about half the database time of
 * a GET). A direct-mapped table: a collision only costs a miss.
 */
struct summary_version {
    char last_activity_at[40];
    char state[32];
    int64_t counters[4];
};

struct summary_slot {
    char id[JOB_ID_LEN + 1];
    struct summary_version v;
    int64_t batches[7], google_batches, texts_sent;
};

#define SUMMARY_SLOTS 1024 /* a power of two */
static struct summary_slot summary_cache[SUMMARY_SLOTS];
static pthread_mutex_t summary_lock = PTHREAD_MUTEX_INITIALIZER;

static void summary_version_of(const struct job_row *j, struct summary_version *v)
{
    memset(v, 0, sizeof(*v));
    memcpy(v->last_activity_at, j->last_activity_at, sizeof(v->last_activity_at));
    memcpy(v->state, j->state, sizeof(v->state));
    v->counters[0] = j->chunks_pending;
    v->counters[1] = j->chunks_in_flight;
    v->counters[2] = j->chunks_succeeded;
    v->counters[3] = j->chunks_failed;
}

static struct summary_slot *summary_slot_of(const char *id)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = id; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return &summary_cache[h & (SUMMARY_SLOTS - 1)];
}

/* Fill j's batch summary from the cache; false on a miss. */
static bool summary_lookup(struct job_row *j)
{
    struct summary_version v;
    summary_version_of(j, &v);
    struct summary_slot *s = summary_slot_of(j->id);
    pthread_mutex_lock(&summary_lock);
    bool hit = strcmp(s->id, j->id) == 0 && memcmp(&s->v, &v, sizeof(v)) == 0;
    if (hit) {
        memcpy(j->batches, s->batches, sizeof(j->batches));
        j->google_batches = s->google_batches;
        j->texts_sent = s->texts_sent;
    }
    pthread_mutex_unlock(&summary_lock);
    return hit;
}

static void summary_store(const struct job_row *j)
{
    struct summary_slot *s = summary_slot_of(j->id);
    pthread_mutex_lock(&summary_lock);
    memcpy(s->id, j->id, sizeof(s->id));
    summary_version_of(j, &s->v);
    memcpy(s->batches, j->batches, sizeof(s->batches));
    s->google_batches = j->google_batches;
    s->texts_sent = j->texts_sent;
    pthread_mutex_unlock(&summary_lock);
}

enum jobs_result jobs_get(PGconn *c, int64_t key_id, const char *id, struct job_row *out, char *err,
                          size_t errlen)
{
    if (!jobs_valid_id(id))
        return JOBS_NOT_FOUND;
    char key[24];
    snprintf(key, sizeof(key), "%lld", (long long)key_id);
    const char *vals[2] = {id, key};
    static const struct db_stmt row = {
        "jobs_get_row", "SELECT " JOB_COLUMNS " FROM jobs WHERE id = $1 AND api_key_id = $2", 2};
    static const struct db_stmt full = {"jobs_get",
                                        "SELECT " JOB_COLUMNS "," BATCH_SUMMARY
                                        " FROM jobs WHERE id = $1"
                                        " AND api_key_id = $2",
                                        2};
    int64_t created_us;
    for (int pass = 0; pass < 2; pass++) {
        /* first the job row alone; on a cache miss, row and batches together */
        PGresult *r = db_exec_stmt(c, pass ? &full : &row, vals, 1);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            db_error(r, c, "could not read the job", err, errlen);
            PQclear(r);
            return JOBS_ERROR;
        }
        if (PQntuples(r) != 1) {
            PQclear(r);
            return JOBS_NOT_FOUND;
        }
        read_row(r, 0, out, &created_us);
        if (pass) {
            read_batch_summary(PQgetvalue(r, 0, BATCH_SUMMARY_COL), out);
            summary_store(out);
        }
        PQclear(r);
        if (pass || summary_lookup(out))
            return JOBS_OK;
    }
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
