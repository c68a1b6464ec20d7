/* jobs_ingest.c: storing a new job: its documents are chunked as they arrive
 * and written with COPY, all in one transaction (see jobs_ingest.h). */
#include "store/jobs_ingest.h"

#include "chunker/chunker.h"
#include "store/db.h"
#include "util/buf.h"
#include "util/jsonw.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define COPY_FLUSH (1 << 20) /* bytes per PQputCopyData */

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
                                    " char_start, char_end, tokens, text_json_len,"
                                    " title_json_len, text) FROM STDIN");
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
    /* request sizes for the claim (store/pipeline.c), which reads no text */
    long title_len = d->title ? (long)jsonw_str_len(d->title, d->title_len) : -1;
    for (size_t k = 0; k < nc && ok; k++) {
        const char *t = d->text + ch[k].byte_start;
        size_t tl = ch[k].byte_end - ch[k].byte_start;
        ok = buf_printf(cb, "%s\t%lld\t%zu\t%zu\t%zu\t%zu\t%lld\t%zu\t%ld\t", in->id,
                        (long long)in->seq++, i, k, ch[k].char_start, ch[k].char_end,
                        (long long)ch[k].tokens, jsonw_str_len(t, tl), title_len) &&
             copy_text(cb, t, tl) && buf_putc(cb, '\n');
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
