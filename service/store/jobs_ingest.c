/* jobs_ingest.c: storing a new job: its documents are chunked as they arrive
 * and written with COPY, all in one transaction (see jobs_ingest.h). */
#include "store/jobs_ingest_internal.h"

#include "chunker/budget.h"
#include "chunker/chunker.h"
#include "store/collections.h"
#include "store/counters.h"
#include "store/db.h"
#include "store/identity.h"
#include "store/limits.h"
#include "util/crypto.h"
#include "util/buf.h"
#include "util/jsonw.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(JOB_ID_LEN == UUID_TEXT_LEN, "a job id is a random UUID");

#define COPY_FLUSH (1 << 20) /* bytes per PQputCopyData */

bool ingest_exec_params(PGconn *c, const char *sql, int n, const char *const *vals,
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

/* The duplicate-id check keeps one 64-bit hash per document (0 marks an
 * empty slot), in an open-addressing table at most 3/4 full: 8 bytes per slot,
 * 11 to 21 bytes per document (~134 MB at 10,000,000 documents). */
#define SEEN_EMPTY 0

static uint64_t id_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a, then a final mix */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h == SEEN_EMPTY ? 1 : h;
}

static bool seen_grow(struct jobs_ingest *in)
{
    size_t cap = in->seen_cap ? in->seen_cap * 2 : 1024;
    uint64_t *t = calloc(cap, sizeof(*t));
    if (!t)
        return false;
    for (size_t i = 0; i < in->seen_cap; i++) {
        if (in->seen[i] == SEEN_EMPTY)
            continue;
        size_t k = (size_t)in->seen[i] & (cap - 1);
        while (t[k] != SEEN_EMPTY)
            k = (k + 1) & (cap - 1);
        t[k] = in->seen[i];
    }
    free(in->seen);
    in->seen = t;
    in->seen_cap = cap;
    return true;
}

/* Hand the pending chunk rows to the open (or a new) chunks COPY. */
bool ingest_chunks_send(struct jobs_ingest *in, char *err, size_t errlen)
{
    if (!in->chunks.len)
        return true;
    if (!in->copying) {
        PGresult *r = PQexec(in->c, "COPY chunks (job_id, seq, doc_index, chunk_index,"
                                    " char_start, char_end, tokens, text_json_len,"
                                    " title_json_len, key_id, identity, text) FROM STDIN");
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
bool ingest_chunks_end(struct jobs_ingest *in, bool failed, char *err, size_t errlen)
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

/* Write everything pending: the chunk rows, then the document rows, then a
 * collection job's new versions and metadata changes of those documents
 * (collection_documents refers to the document rows). */
bool ingest_flush(struct jobs_ingest *in, char *err, size_t errlen)
{
    bool ok = ingest_chunks_send(in, err, errlen) && ingest_chunks_end(in, false, err, errlen);
    if (ok && in->docs.len)
        ok = copy_rows(in->c,
                       "COPY documents (job_id, doc_index, doc_id, title, metadata, chars,"
                       " first_seq, n_chunks, content_sha256) FROM STDIN",
                       &in->docs, "could not store documents", err, errlen);
    buf_reset(&in->docs);
    buf_reset(&in->chunks);
    return ok && ingest_upserts_send(in, err, errlen);
}

/* The index of the (flushed) document of this job whose id is id; *found
 * false when there is none (a hash collision). */
static bool stored_doc_index(struct jobs_ingest *in, const char *id, size_t len, bool *found,
                             size_t *index, char *err, size_t errlen)
{
    char *idz = strndup(id, len);
    if (!idz) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    const char *vals[2] = {in->id, idz};
    PGresult *r =
        PQexecParams(in->c, "SELECT doc_index FROM documents WHERE job_id = $1 AND doc_id = $2", 2,
                     NULL, vals, NULL, NULL, 0);
    free(idz);
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        db_error(r, in->c, "could not check document ids", err, errlen);
    *found = ok && PQntuples(r) == 1;
    if (*found)
        *index = (size_t)db_int(PQgetvalue(r, 0, 0));
    PQclear(r);
    return ok;
}

/*
 * Whether d->id was already used in this job; records it otherwise. Only a
 * hash per document is kept (see SEEN_EMPTY), not the ids: a hash hit is
 * confirmed against the stored rows (by the UNIQUE (doc_id, job_id) index),
 * so the answer is exact and names the first occurrence, like the JSON
 * body's check. That constraint stays as the last line of defence.
 */
static enum jobs_result ingest_check_id(struct jobs_ingest *in, const struct ingest_doc *d,
                                        size_t *dup_of, char *err, size_t errlen)
{
    if ((in->n_docs + 1) * 4 > in->seen_cap * 3 && !seen_grow(in)) {
        snprintf(err, errlen, "out of memory");
        return JOBS_ERROR;
    }
    uint64_t h = id_hash(d->id, d->id_len);
    size_t k = (size_t)h & (in->seen_cap - 1);
    bool checked = false;
    for (; in->seen[k] != SEEN_EMPTY; k = (k + 1) & (in->seen_cap - 1)) {
        if (in->seen[k] != h || checked)
            continue;
        /* a duplicate or (rarely) a hash collision: look the id up among
         * the stored rows (queued documents first) */
        if (!(ingest_queue_resolve(in, err, errlen) && ingest_flush(in, err, errlen)))
            return JOBS_ERROR;
        bool found = false;
        size_t first = 0;
        if (!stored_doc_index(in, d->id, d->id_len, &found, &first, err, errlen))
            return JOBS_ERROR;
        if (found) {
            *dup_of = first;
            return JOBS_CONFLICT;
        }
        checked = true; /* a collision: the id is new; find a free slot */
    }
    in->seen[k] = h;
    return JOBS_OK;
}

void ingest_qdoc_free(struct qdoc *d)
{
    free(d->id);
    free(d->title);
    free(d->meta);
    free(d->text);
}

static void ingest_free(struct jobs_ingest *in)
{
    buf_cleanup(&in->docs);
    buf_cleanup(&in->chunks);
    for (size_t i = 0; i < in->nq; i++)
        ingest_qdoc_free(&in->q[i]);
    free(in->q);
    struct buf *bufs[] = {&in->up_ids, &in->up_idx,  &in->up_hash,
                          &in->md_ids, &in->md_meta, &in->del};
    for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
        buf_cleanup(bufs[i]);
    for (size_t i = 0; i < in->n_del_sorted; i++)
        free(in->del_sorted[i]);
    free(in->del_sorted);
    free(in->seen);
    free(in);
}

/* "\\x" and the hex of n bytes: a bytea in a COPY text row. */
static bool copy_bytea(struct buf *b, const unsigned char *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (!buf_puts(b, "\\\\x") || !buf_reserve(b, 2 * n))
        return false;
    for (size_t i = 0; i < n; i++) {
        b->data[b->len++] = hex[p[i] >> 4];
        b->data[b->len++] = hex[p[i] & 15];
    }
    b->data[b->len] = '\0';
    return true;
}

/*
 * The rows of document number i: its documents row and, unless chunks is
 * false (an unchanged or metadata-only document of a collection), its chunks
 * with their identities and request sizes. content: its identity_content,
 * or NULL outside collections.
 */
bool ingest_store_doc(struct jobs_ingest *in, size_t i, const struct ingest_doc *d,
                      const unsigned char *content, bool chunks)
{
    struct chunk *ch = NULL;
    size_t nc = 0;
    /* the model's limit less its prompt's instruction (chunker/budget.h); the
     * instruction's tokens are sent, and paid, with every chunk */
    struct chunk_opts o = in->opts;
    struct chunk_budget bud = {(int64_t)o.max_tokens, 0};
    if (chunks && !chunk_budget_of(in->facts, in->task, d->title, d->title_len, &bud))
        return false;
    o.max_tokens = chunks ? bud.max_tokens : o.max_tokens;
    if (chunks && in->verbatim) { /* the whole text, as it is, in one chunk */
        if (!(ch = malloc(sizeof(*ch))))
            return false;
        *ch = (struct chunk){0, d->text_len, 0, utf8_count(d->text, d->text_len),
                             chunker_token_estimate(d->text, d->text_len)};
        nc = 1;
    } else if (chunks && !chunker_split(d->text, d->text_len, &o, &ch, &nc)) {
        return false;
    }
    if (in->seq + (int64_t)nc > in->max_chunks) {
        free(ch);
        in->over_chunks = true;
        in->over_doc = i;
        return false;
    }
    struct buf *db = &in->docs, *cb = &in->chunks;
    bool ok = buf_printf(db, "%s\t%zu\t", in->id, i) && copy_text(db, d->id, d->id_len) &&
              buf_putc(db, '\t') &&
              (d->title ? copy_text(db, d->title, d->title_len) : buf_puts(db, "\\N")) &&
              buf_putc(db, '\t') &&
              (d->metadata_json ? copy_text(db, d->metadata_json, strlen(d->metadata_json))
                                : buf_puts(db, "\\N")) &&
              buf_printf(db, "\t%zu\t%lld\t%zu\t", utf8_count(d->text, d->text_len),
                         (long long)in->seq, nc) &&
              (content ? copy_bytea(db, content, IDENTITY_LEN) : buf_puts(db, "\\N")) &&
              buf_putc(db, '\n');
    /* request sizes for the claim (store/pipeline.c), which reads no text */
    long title_len = d->title ? (long)jsonw_str_len(d->title, d->title_len) : -1;
    for (size_t k = 0; k < nc && ok; k++) {
        const char *t = d->text + ch[k].byte_start;
        size_t tl = ch[k].byte_end - ch[k].byte_start;
        unsigned char ident[IDENTITY_LEN];
        ok = identity_of(&in->sp, d->title, d->title_len, t, tl, ident) &&
             buf_printf(cb, "%s\t%lld\t%zu\t%zu\t%zu\t%zu\t%lld\t%zu\t%ld\t%s\t", in->id,
                        (long long)in->seq++, i, k, ch[k].char_start, ch[k].char_end,
                        (long long)(ch[k].tokens + bud.prompt_tokens), jsonw_str_len(t, tl),
                        title_len, in->key) &&
             copy_bytea(cb, ident, IDENTITY_LEN) && buf_putc(cb, '\t') && copy_text(cb, t, tl) &&
             buf_putc(cb, '\n');
        in->tokens += ch[k].tokens + bud.prompt_tokens;
    }
    free(ch);
    return ok;
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
    in->max_chunks = INT32_MAX; /* what seq holds */
    in->facts = models_find(spec->model);
    if (!in->facts) {
        snprintf(err, errlen, "unknown model \"%.60s\"", spec->model);
        free(in);
        return NULL;
    }
    in->opts = (struct chunk_opts){.max_chars = (size_t)spec->max_chars,
                                   .overlap_chars = (size_t)spec->overlap_chars,
                                   .max_tokens = in->facts->max_input_tokens};
    /* one document may pass the batch size: the cap only stops runaway growth */
    buf_init(&in->docs, SIZE_MAX / 4);
    buf_init(&in->chunks, SIZE_MAX / 4);
    if (!uuid_v4(in->id)) {
        snprintf(err, errlen, "could not read random bytes");
        ingest_free(in);
        return NULL;
    }
    snprintf(in->key, sizeof(in->key), "%lld", (long long)spec->key_id);
    snprintf(in->model, sizeof(in->model), "%s", spec->model);
    snprintf(in->task, sizeof(in->task), "%s", spec->task_type);
    in->sp =
        (struct identity_space){in->model, spec->output_dimensionality, in->task, spec->normalize};
    if (spec->collection_id)
        snprintf(in->coll, sizeof(in->coll), "%s", spec->collection_id);
    struct buf *bufs[] = {&in->up_ids, &in->up_idx,  &in->up_hash,
                          &in->md_ids, &in->md_meta, &in->del};
    for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
        buf_init(bufs[i], SIZE_MAX / 4);
    char dims[16], prio[16], maxc[16], ovl[16];
    snprintf(dims, sizeof(dims), "%d", spec->output_dimensionality);
    snprintf(prio, sizeof(prio), "%d", spec->priority);
    snprintf(maxc, sizeof(maxc), "%d", spec->max_chars);
    snprintf(ovl, sizeof(ovl), "%d", spec->overlap_chars);
    const char *vals[11] = {in->id,
                            in->key,
                            spec->display_name,
                            spec->model,
                            spec->task_type,
                            dims,
                            spec->normalize ? "t" : "f",
                            prio,
                            maxc,
                            ovl,
                            in->coll[0] ? in->coll : NULL};
    if (!db_exec(c, "BEGIN", err, errlen)) {
        ingest_free(in);
        return NULL;
    }
    if (!ingest_exec_params(
            c,
            "INSERT INTO jobs (id, api_key_id, display_name, model, task_type,"
            " output_dimensionality, normalize, priority, max_chars, overlap_chars,"
            " collection_id, documents, chunks_total, chunks_pending, token_estimate)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0, 0, 0, 0)",
            11, vals, "could not store the job", err, errlen)) {
        jobs_ingest_abort(in);
        return NULL;
    }
    return in;
}

void jobs_ingest_limit_chunks(struct jobs_ingest *in, int64_t max_chunks)
{
    in->max_chunks = max_chunks > 0 && max_chunks < INT32_MAX ? max_chunks : INT32_MAX;
}

bool jobs_ingest_webhook(struct jobs_ingest *in, const char *url, int degraded_below,
                         int degraded_min, char *err, size_t errlen)
{
    if (!url && degraded_below <= 0)
        return true;
    char below[16], dmin[16];
    snprintf(below, sizeof(below), "%d", degraded_below);
    snprintf(dmin, sizeof(dmin), "%d", degraded_min);
    const char *v[4] = {in->id, url, degraded_below > 0 ? below : NULL, dmin};
    return ingest_exec_params(in->c,
                              "UPDATE jobs SET webhook_url = $2, webhook_degraded_below = $3,"
                              " webhook_degraded_min = $4 WHERE id = $1",
                              4, v, "could not store the job's webhook", err, errlen);
}

size_t jobs_ingest_documents(const struct jobs_ingest *in)
{
    return in->n_docs;
}

const char *jobs_ingest_id(const struct jobs_ingest *in)
{
    return in->id;
}

void jobs_ingest_verbatim(struct jobs_ingest *in)
{
    in->verbatim = !in->coll[0];
}

int64_t jobs_ingest_chunks(const struct jobs_ingest *in)
{
    return in->seq;
}

PGconn *jobs_ingest_conn(struct jobs_ingest *in, char *err, size_t errlen)
{
    if (in->coll[0] && !ingest_queue_resolve(in, err, errlen))
        return NULL;
    return ingest_flush(in, err, errlen) ? in->c : NULL;
}

void ingest_over_chunks_err(const struct jobs_ingest *in, char *err, size_t errlen)
{
    snprintf(err, errlen, "document %zu brings the job past %lld chunks", in->over_doc,
             (long long)in->max_chunks);
}

enum jobs_result jobs_ingest_add(struct jobs_ingest *in, const struct ingest_doc *d, size_t *dup_of,
                                 char *err, size_t errlen)
{
    enum jobs_result res = ingest_check_id(in, d, dup_of, err, errlen);
    if (res != JOBS_OK)
        return res;
    size_t i = in->n_docs;
    bool ok;
    if (in->coll[0]) {
        if (in->n_del_sorted) {
            char *id = strndup(d->id, d->id_len);
            bool both = id && bsearch(&id, in->del_sorted, in->n_del_sorted,
                                      sizeof(*in->del_sorted), ingest_cmp_str) != NULL;
            free(id);
            if (both) {
                snprintf(err, errlen, "document %zu is also deleted by the job", i);
                return JOBS_IN_USE;
            }
        }
        ok = ingest_queue_doc(in, i, d);
        in->n_docs++;
        if (ok && (in->nq == QUEUE_DOCS || in->qbytes >= QUEUE_BYTES))
            return ingest_queue_resolve(in, err, errlen) ? JOBS_OK
                   : in->over_chunks                     ? JOBS_LIMIT
                                                         : JOBS_ERROR;
    } else {
        ok = ingest_store_doc(in, i, d, NULL, true);
        in->n_docs++;
    }
    if (!ok && in->over_chunks) {
        ingest_over_chunks_err(in, err, errlen);
        return JOBS_LIMIT;
    }
    if (!ok) {
        snprintf(err, errlen, "could not chunk documents: out of memory");
        return JOBS_ERROR;
    }
    if (in->chunks.len >= INGEST_CHUNK_SEND && !ingest_chunks_send(in, err, errlen))
        return JOBS_ERROR;
    if (in->docs.len >= INGEST_DOCS_BATCH && !ingest_flush(in, err, errlen))
        return JOBS_ERROR;
    return JOBS_OK;
}

/*
 * Fill the job's pending chunks whose identity already has a vector under
 * the same API key (any earlier job or collection), without calling Google:
 * the vector's bytes are copied, and Google's token count with them. Every
 * lookup is a subquery run once per pending chunk of the job (an index probe
 * of chunks_by_identity), never a join: the job's rows are not yet committed,
 * so the planner's statistics know nothing of them, and a join planned on
 * those statistics was a nested loop of the job's chunks against themselves
 * (a 10,000-document upsert spent 20 s here). The documents' counters follow
 * in a second statement, only when something was reused, each document
 * counting its own range of chunks. The cost is the job's size, not the
 * table's; none when the key has no stored vector at all (one probe of the
 * same index), as for a new key. Returns the counts through *n and *tokens.
 */
#define REUSE_PROBE                                                                                \
    " FROM chunks s WHERE s.key_id = $2 AND s.identity = c.identity AND s.state = 2 LIMIT 1)"
#define DOC_REUSED                                                                                 \
    " FROM chunks c WHERE c.job_id = $1 AND c.seq >= d.first_seq"                                  \
    " AND c.seq < d.first_seq + d.n_chunks AND c.reused"
static bool reuse_vectors(struct jobs_ingest *in, int64_t *n, int64_t *tokens, char *err,
                          size_t errlen)
{
    const char *v[2] = {in->id, in->key};
    *n = *tokens = 0;
    bool ok = db_exec(in->c, "SET LOCAL enable_seqscan = off", err, errlen);
    PGresult *r =
        ok ? PQexecParams(in->c, "SELECT 1 FROM chunks WHERE key_id = $1 AND state = 2 LIMIT 1", 1,
                          NULL, v + 1, NULL, NULL, 0)
           : NULL;
    if (ok && PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_error(r, in->c, "could not look for stored vectors", err, errlen);
        ok = false;
    }
    bool none = ok && PQntuples(r) == 0;
    PQclear(r);
    if (!ok || none) /* nothing the key could reuse */
        return ok && db_exec(in->c, "SET LOCAL enable_seqscan = on", err, errlen);
    r = PQexecParams(in->c,
                     "WITH upd AS (UPDATE chunks c SET state = 2, reused = true,"
                     "   (embedding, google_tokens) = (SELECT s.embedding,"
                     "   s.google_tokens" REUSE_PROBE "   WHERE c.job_id = $1 AND c.state = 0"
                     "   AND (SELECT true" REUSE_PROBE
                     "   RETURNING coalesce(c.google_tokens, c.tokens) AS t)"
                     " SELECT count(*), coalesce(sum(t), 0) FROM upd",
                     2, NULL, v, NULL, NULL, 0);
    ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok && r)
        db_error(r, in->c, "could not reuse stored vectors", err, errlen);
    if (ok) {
        *n = db_int(PQgetvalue(r, 0, 0));
        *tokens = db_int(PQgetvalue(r, 0, 1));
    }
    PQclear(r);
    /* a later statement: it sees the chunks just filled */
    ok = ok && (*n == 0 || ingest_exec_params(in->c,
                                              "UPDATE documents d SET chunks_done = d.chunks_done +"
                                              " (SELECT count(*)" DOC_REUSED ")"
                                              " WHERE d.job_id = $1 AND d.n_chunks > 0"
                                              " AND (SELECT true" DOC_REUSED " LIMIT 1)",
                                              1, v, "could not count reused vectors", err, errlen));
    return ok && db_exec(in->c, "SET LOCAL enable_seqscan = on", err, errlen);
}

enum jobs_result jobs_ingest_settle(struct jobs_ingest *in, char *err, size_t errlen)
{
    if (in->over_chunks) {
        ingest_over_chunks_err(in, err, errlen);
        return JOBS_LIMIT;
    }
    if (ingest_queue_resolve(in, err, errlen))
        return JOBS_OK;
    return in->over_chunks ? JOBS_LIMIT : JOBS_ERROR;
}

bool jobs_ingest_finish(struct jobs_ingest *in, char id_out[JOB_ID_LEN + 1], char *err,
                        size_t errlen)
{
    if (in->over_chunks) {
        ingest_over_chunks_err(in, err, errlen);
        jobs_ingest_abort(in);
        return false;
    }
    int64_t reused = 0, reused_tokens = 0, deleted = 0;
    bool ok = ingest_queue_resolve(in, err, errlen) && ingest_flush(in, err, errlen) &&
              reuse_vectors(in, &reused, &reused_tokens, err, errlen);
    if (ok && in->n_del) {
        struct buf lit;
        buf_init(&lit, SIZE_MAX / 4);
        ok = buf_puts(&lit, in->del.data) && buf_putc(&lit, '}');
        const char *v[2] = {in->coll, lit.data};
        PGresult *r = ok ? PQexecParams(in->c,
                                        "WITH d AS (DELETE FROM collection_documents"
                                        "   USING (SELECT k.tid FROM unnest($2::text[]) AS u(id)"
                                        "   CROSS JOIN LATERAL (SELECT cd.ctid AS tid"
                                        "   FROM collection_documents cd"
                                        "   WHERE cd.collection_id = $1 AND cd.doc_id = u.id"
                                        "   OFFSET 0) k) x"
                                        "   WHERE collection_documents.ctid = x.tid"
                                        "   RETURNING version)"
                                        " SELECT count(*), count(*) FILTER (WHERE version > 0)"
                                        " FROM d",
                                        2, NULL, v, NULL, NULL, 0)
                         : NULL;
        buf_cleanup(&lit);
        ok = ok && PQresultStatus(r) == PGRES_TUPLES_OK;
        if (!ok)
            db_error(r, in->c, "could not delete documents", err, errlen);
        int64_t current = 0;
        if (ok) {
            deleted = db_int(PQgetvalue(r, 0, 0));
            current = db_int(PQgetvalue(r, 0, 1));
        }
        PQclear(r);
        char cur[24];
        snprintf(cur, sizeof(cur), "%lld", (long long)current);
        const char *v2[2] = {in->coll, cur};
        ok = ok && ingest_exec_params(in->c,
                                      "UPDATE collections SET version = version + 1,"
                                      " documents = documents - $2::int WHERE id = $1",
                                      2, v2, "could not update the collection", err, errlen);
    }
    char ndocs[24], nchunks[24], ntok[24], nre[24], retok[24], c_new[24], c_upd[24], c_unch[24],
        c_md[24], c_del[24];
    snprintf(ndocs, sizeof(ndocs), "%zu", in->n_docs);
    snprintf(nchunks, sizeof(nchunks), "%lld", (long long)in->seq);
    snprintf(ntok, sizeof(ntok), "%lld", (long long)in->tokens);
    snprintf(nre, sizeof(nre), "%lld", (long long)reused);
    snprintf(retok, sizeof(retok), "%lld", (long long)reused_tokens);
    snprintf(c_new, sizeof(c_new), "%lld", (long long)in->docs_new);
    snprintf(c_upd, sizeof(c_upd), "%lld", (long long)in->docs_updated);
    snprintf(c_unch, sizeof(c_unch), "%lld", (long long)in->docs_unchanged);
    snprintf(c_md, sizeof(c_md), "%lld", (long long)in->docs_metadata);
    snprintf(c_del, sizeof(c_del), "%lld", (long long)deleted);
    const char *vals[11] = {in->id, ndocs, nchunks, ntok, nre,  retok,
                            c_new,  c_upd, c_unch,  c_md, c_del};
    /* a job with nothing left to send is done at once */
    ok = ok &&
         ingest_exec_params(in->c,
                            "UPDATE jobs SET documents = $2, chunks_total = $3,"
                            " chunks_pending = $3::int - $5::int, chunks_succeeded = $5,"
                            " chunks_reused = $5, tokens_reused = $6, token_estimate = $4,"
                            " documents_new = $7, documents_updated = $8, documents_unchanged = $9,"
                            " documents_metadata = $10, documents_deleted = $11,"
                            " state = CASE WHEN $3::int = $5::int THEN 'succeeded' ELSE state END,"
                            " finished_at = CASE WHEN $3::int = $5::int THEN now() END"
                            " WHERE id = $1",
                            11, vals, "could not count chunks", err, errlen);
    /* documents whose every chunk was reused become current now */
    if (ok && in->coll[0]) {
        const char *v[1] = {in->coll};
        ok =
            coll_flip(in->c, in->id, NULL, err, errlen) &&
            (in->docs_metadata == 0 ||
             ingest_exec_params(in->c, "UPDATE collections SET version = version + 1 WHERE id = $1",
                                1, v, "could not update the collection", err, errlen));
    }
    /* last: the limit's lock is held until the commit (store/limits.h) */
    struct ingest_limit *lim = in->limit;
    int64_t adding = in->seq - reused;
    if (ok && lim && lim->max > 0 && adding > 0) {
        ok = limits_pending_locked(in->c, db_int(in->key), adding, lim->max, &lim->over,
                                   &lim->pending, err, errlen);
        if (ok && lim->over) {
            lim->adding = adding;
            snprintf(err, errlen, "the job would pass the key's pending-chunk limit");
            ok = false;
        }
    }
    ok = ok && db_exec(in->c, "COMMIT", err, errlen);
    if (!ok) {
        jobs_ingest_abort(in);
        return false;
    }
    store_count_reused(in->model, reused, reused_tokens);
    memcpy(id_out, in->id, JOB_ID_LEN + 1);
    ingest_free(in);
    return true;
}

void jobs_ingest_limit(struct jobs_ingest *in, struct ingest_limit *lim)
{
    in->limit = lim;
}

void jobs_ingest_abort(struct jobs_ingest *in)
{
    if (!in)
        return;
    char err[8];
    (void)ingest_chunks_end(in, true, err, sizeof(err));
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

bool store_refresh_statistics(PGconn *c, int64_t min_changes, bool *ran, char *err, size_t errlen)
{
    *ran = false;
    char n[24];
    snprintf(n, sizeof(n), "%lld", (long long)min_changes);
    const char *v[1] = {n};
    PGresult *r = PQexecParams(c,
                               "SELECT coalesce(max(n_mod_since_analyze), 0) > $1::bigint"
                               " FROM pg_stat_user_tables WHERE relname = 'chunks'",
                               1, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_error(r, c, "could not read table statistics", err, errlen);
        PQclear(r);
        return false;
    }
    bool due = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (!due)
        return true;
    /* A large job changes the tables at once, long before autovacuum looks;
     * ANALYZE samples a bounded number of rows (~0.3 s at 200,000 chunks). */
    if (!db_exec(c, "ANALYZE chunks, documents", err, errlen))
        return false;
    *ran = true;
    return true;
}
