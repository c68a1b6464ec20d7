/* pipeline.c: the database side of the worker pipeline after the claim: a batch
 * submitted, polled, stored or released, leases (see pipeline.h). */
#include "store/pipeline_internal.h"

#include "store/collections.h"
#include "store/counters.h"
#include "store/db.h"
#include "store/pgarray.h"
#include "log.h"
#include "models.h"
#include "util/buf.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

void pipe_chunks_free(struct pipe_chunk *chunks, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(chunks[i].text);
        free(chunks[i].title);
    }
    free(chunks);
}

void pipe_batch_free(struct pipe_batch *b)
{
    pipe_chunks_free(b->chunks, b->n_chunks);
    b->chunks = NULL;
    b->n_chunks = 0;
}

PGresult *pipe_q(PGconn *c, const char *sql, int n, const char *const *vals, const char *what,
                 char *err, size_t errlen)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, vals, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        db_error(r, c, what, err, errlen);
        PQclear(r);
        return NULL;
    }
    return r;
}

bool pipe_run(PGconn *c, const char *sql, int n, const char *const *vals, const char *what,
              char *err, size_t errlen)
{
    PGresult *r = pipe_q(c, sql, n, vals, what, err, errlen);
    PQclear(r);
    return r != NULL;
}

void pipe_rollback(PGconn *c)
{
    PQclear(PQexec(c, "ROLLBACK"));
}

/*
 * End the open transaction: if ok (nothing failed so far), run steps in
 * order and COMMIT; ROLLBACK when anything failed, before or here. Returns
 * whether it committed; err says what failed. Each multi-statement
 * transition (claim, submitted, results, release) ends this way.
 */
bool pipe_commit_steps(PGconn *c, bool ok, const struct step *steps, size_t n, char *err,
                       size_t errlen)
{
    for (size_t i = 0; ok && i < n; i++)
        ok = pipe_run(c, steps[i].sql, steps[i].n, steps[i].vals, steps[i].what, err, errlen);
    ok = ok && db_exec(c, "COMMIT", err, errlen);
    if (!ok)
        pipe_rollback(c);
    return ok;
}

bool pipe_load_job(PGconn *c, struct pipe_batch *b, char *err, size_t errlen)
{
    const char *v[1] = {b->job_id};
    PGresult *r = pipe_q(c,
                         "SELECT model, task_type, output_dimensionality, normalize, state,"
                         " chunks_total, collection_id IS NOT NULL FROM jobs WHERE id = $1",
                         1, v, "could not read the job", err, errlen);
    if (!r)
        return false;
    bool ok = PQntuples(r) == 1;
    if (ok) {
        snprintf(b->model, sizeof(b->model), "%s", PQgetvalue(r, 0, 0));
        snprintf(b->task_type, sizeof(b->task_type), "%s", PQgetvalue(r, 0, 1));
        b->dims = (int)db_int(PQgetvalue(r, 0, 2));
        b->normalize = PQgetvalue(r, 0, 3)[0] == 't';
        snprintf(b->job_state, sizeof(b->job_state), "%s", PQgetvalue(r, 0, 4));
        b->job_chunks = db_int(PQgetvalue(r, 0, 5));
        b->in_collection = PQgetvalue(r, 0, 6)[0] == 't';
    } else {
        snprintf(err, errlen, "job %s is gone", b->job_id);
    }
    PQclear(r);
    return ok;
}

bool pipe_submitted(PGconn *c, int64_t batch_id, const char *gemini_name, int64_t poll_ms,
                    char *err, size_t errlen)
{
    char bid[24], ms[24];
    snprintf(bid, sizeof(bid), "%lld", (long long)batch_id);
    snprintf(ms, sizeof(ms), "%lld", (long long)poll_ms);
    const char *v[3] = {bid, gemini_name, ms};
    /* Every change to a job's batches moves its job row too (here its
     * last_activity_at), in the same transaction: readers key what they know
     * of the batches on that row (jobs_get). The job row is locked first, in
     * the order every other writer takes them. */
    const struct step submit[] = {
        {"UPDATE jobs SET last_activity_at = now()"
         " WHERE id = (SELECT job_id FROM batches WHERE id = $1)",
         1, v, "could not record the submission"},
        {"UPDATE batches SET state = 'submitted', gemini_name = $2, submitted_at = now(),"
         " next_poll_at = now() + $3::bigint * interval '1 millisecond',"
         " lease_owner = NULL, lease_until = NULL WHERE id = $1",
         3, v, "could not record the submission"},
    };
    bool begun = db_exec(c, "BEGIN", err, errlen);
    return pipe_commit_steps(c, begun, submit, SVC_ARRAY_LEN(submit), err, errlen);
}

bool pipe_claim_due(PGconn *c, const char *owner, int64_t lease_ms, struct pipe_batch *out,
                    bool *found, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    *found = false;
    char lease[24];
    snprintf(lease, sizeof(lease), "%lld", (long long)lease_ms);
    const char *v[2] = {owner, lease};
    PGresult *r =
        pipe_q(c,
               "UPDATE batches SET lease_owner = $1,"
               " lease_until = now() + $2::bigint * interval '1 millisecond'"
               " WHERE id = (SELECT id FROM batches WHERE state IN ('intent', 'submitted')"
               "   AND next_poll_at <= now() AND (lease_until IS NULL OR lease_until < now())"
               "   ORDER BY next_poll_at FOR UPDATE SKIP LOCKED LIMIT 1)"
               " RETURNING id, job_id, display_name, state, coalesce(gemini_name, ''), polls,"
               " (extract(epoch FROM now() - coalesce(submitted_at, created_at)) * 1000)::bigint,"
               " transport, request_bytes, coalesce(input_file, ''), coalesce(output_file, '')",
               2, v, "could not lease a batch", err, errlen);
    if (!r)
        return false;
    if (PQntuples(r) == 1) {
        out->id = db_int(PQgetvalue(r, 0, 0));
        snprintf(out->job_id, sizeof(out->job_id), "%s", PQgetvalue(r, 0, 1));
        snprintf(out->display_name, sizeof(out->display_name), "%s", PQgetvalue(r, 0, 2));
        snprintf(out->state, sizeof(out->state), "%s", PQgetvalue(r, 0, 3));
        snprintf(out->gemini_name, sizeof(out->gemini_name), "%s", PQgetvalue(r, 0, 4));
        out->polls = (int)db_int(PQgetvalue(r, 0, 5));
        out->age_ms = db_int(PQgetvalue(r, 0, 6));
        snprintf(out->transport, sizeof(out->transport), "%s", PQgetvalue(r, 0, 7));
        out->request_bytes = db_int(PQgetvalue(r, 0, 8));
        snprintf(out->input_file, sizeof(out->input_file), "%s", PQgetvalue(r, 0, 9));
        snprintf(out->output_file, sizeof(out->output_file), "%s", PQgetvalue(r, 0, 10));
        *found = true;
    }
    PQclear(r);
    return !*found || pipe_load_job(c, out, err, errlen);
}

bool pipe_poll_later(PGconn *c, int64_t batch_id, const char *gemini_state, int64_t poll_ms,
                     char *err, size_t errlen)
{
    char bid[24], ms[24];
    snprintf(bid, sizeof(bid), "%lld", (long long)batch_id);
    snprintf(ms, sizeof(ms), "%lld", (long long)poll_ms);
    const char *v[3] = {bid, gemini_state, ms};
    return pipe_run(c,
                    "UPDATE batches SET gemini_state = $2, polls = polls + 1,"
                    " next_poll_at = now() + $3::bigint * interval '1 millisecond',"
                    " lease_owner = NULL, lease_until = NULL WHERE id = $1",
                    3, v, "could not schedule the next poll", err, errlen);
}

bool pipe_retry_later(PGconn *c, int64_t batch_id, int64_t delay_ms, char *err, size_t errlen)
{
    char bid[24], ms[24];
    snprintf(bid, sizeof(bid), "%lld", (long long)batch_id);
    snprintf(ms, sizeof(ms), "%lld", (long long)delay_ms);
    const char *v[2] = {bid, ms};
    return pipe_run(
        c,
        "UPDATE batches SET next_poll_at = now() + $2::bigint * interval '1 millisecond',"
        " polls = polls + 1, lease_owner = NULL, lease_until = NULL WHERE id = $1",
        2, v, "could not reschedule the batch", err, errlen);
}

/* Finish the job when nothing is pending or in flight and none of its
 * batches is still open (a cancelled job stays cancelled). A batch stored in
 * slices has all its chunks counted before it is closed: without the last
 * condition another batch closing in that moment finished the job while this
 * one still showed as submitted (a finished job with a batch in flight). The
 * batch closing is closed earlier in the same transaction. */
static const char *const finish_sql =
    "UPDATE jobs SET state = CASE WHEN chunks_failed = 0 THEN 'succeeded'"
    " WHEN chunks_succeeded = 0 THEN 'failed' ELSE 'completed_with_errors' END,"
    " finished_at = now(), last_activity_at = now()"
    " WHERE id = $1 AND state IN ('pending', 'running') AND chunks_pending = 0"
    " AND chunks_in_flight = 0 AND NOT EXISTS (SELECT 1 FROM batches"
    "   WHERE batches.job_id = $1 AND batches.state IN ('intent', 'submitted'))";

/* Fail or requeue the chunks seqs of the batch (with their errors); counts
 * go to *requeued and *failed, and *min_back gets the lowest seq requeued
 * (the claim cursor must go back there). */
static bool requeue_or_fail(PGconn *c, const struct pipe_batch *b, const char *seqs,
                            const char *errors, int max_attempts, size_t *requeued, size_t *failed,
                            int64_t *min_back, struct buf *dead_docs, char *err, size_t errlen)
{
    char bid[24], maxa[16];
    snprintf(bid, sizeof(bid), "%lld", (long long)b->id);
    snprintf(maxa, sizeof(maxa), "%d", max_attempts);
    const char *v[5] = {b->job_id, bid, seqs, errors, maxa};
    PGresult *r =
        pipe_q(c,
               "UPDATE chunks SET attempts = attempts + 1,"
               " state = CASE WHEN attempts + 1 >= $5::int THEN 3 ELSE 0 END,"
               " batch_id = NULL, error = u.e"
               " FROM unnest($3::int[], $4::text[]) AS u(s, e)"
               " WHERE chunks.job_id = $1 AND chunks.seq = u.s AND chunks.batch_id = $2"
               " AND chunks.state = 1 RETURNING chunks.state, chunks.seq, chunks.doc_index",
               5, v, "could not requeue failed chunks", err, errlen);
    if (!r)
        return false;
    bool ok = true;
    for (int i = 0; i < PQntuples(r) && ok; i++) {
        bool dead = PQgetvalue(r, i, 0)[0] == '3';
        (*(dead ? failed : requeued))++;
        int64_t seq = db_int(PQgetvalue(r, i, 1));
        if (!dead && seq < *min_back)
            *min_back = seq;
        if (dead && b->in_collection)
            ok = (!dead_docs->len || buf_putc(dead_docs, ',')) &&
                 buf_puts(dead_docs, PQgetvalue(r, i, 2));
    }
    if (!ok) {
        PQclear(r);
        snprintf(err, errlen, "out of memory");
        return false;
    }
    PQclear(r);
    return true;
}

/* Vectors go in statements of at most this many (a few MB each, not a batch's worth). */
#define STORE_SLICE 1000

/* UPDATE the chunks of res[from..to) that have a vector; adds to *stored.
 * Each result finds its row by primary key in a subquery the planner may not
 * flatten (OFFSET 0), and the row is updated by its ctid: whatever the
 * statistics say of the job (a job stored since the last ANALYZE looks like
 * one row), the cost is the slice's, never the slice times the batch (a
 * 10,000-chunk batch stored in slices of 1,000 took 13 s that way). */
const char *const pipe_store_begin_sql =
    "BEGIN; SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off;"
    " SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off";

const char *const pipe_store_vectors_sql =
    "WITH v AS (SELECT x.tid, r.e, r.t"
    "   FROM unnest($3::int[], $4::bytea[], $5::int[]) AS r(s, e, t)"
    "   CROSS JOIN LATERAL (SELECT c.ctid AS tid FROM chunks c WHERE c.job_id = $1"
    "     AND c.seq = r.s AND c.batch_id = $2 AND c.state = 1 OFFSET 0) x),"
    " u AS (UPDATE chunks SET state = 2, embedding = v.e,"
    "   error = NULL, google_tokens = nullif(v.t, -1)"
    "   FROM v WHERE chunks.ctid = v.tid AND (chunks.batch_id = $2 AND chunks.state = 1) IS TRUE"
    "   RETURNING chunks.doc_index, chunks.tokens, chunks.google_tokens),"
    " d AS (SELECT doc_index, count(*) AS n FROM u GROUP BY doc_index),"
    " done AS (UPDATE documents SET chunks_done = chunks_done + y.n"
    "   FROM (SELECT z.tid, d.n FROM d CROSS JOIN LATERAL (SELECT dd.ctid AS tid"
    "     FROM documents dd WHERE $6::bool AND dd.job_id = $1"
    "     AND dd.doc_index = d.doc_index OFFSET 0) z) y"
    "   WHERE documents.ctid = y.tid RETURNING 1)"
    " SELECT (SELECT count(*) FROM u),"
    " (SELECT coalesce(sum(coalesce(google_tokens, tokens)), 0) FROM u),"
    " (SELECT coalesce(sum(tokens) FILTER (WHERE google_tokens IS NULL), 0)"
    "   FROM u),"
    " (SELECT coalesce(string_agg(doc_index::text, ','), '') FROM d)";

/* What a store did, for the job's counters and its collection's documents. */
struct store_tally {
    size_t stored;
    int64_t tokens, estimated; /* tokens of the stored chunks; of those, estimated ones */
    struct buf docs;           /* "1,5,..." doc_index of every stored chunk (collection jobs) */
};

/* Whether a vector of the batch's job is L2-normalised before it is stored:
 * the job asks for normalised vectors and the model table does not promise
 * unit length at this size (models.h), or it does but this vector is not
 * (some third parties say gemini-embedding-2's truncated vectors are not;
 * docs/gemini-embedding-2.md §3). */
static bool needs_normalising(const struct pipe_batch *b, const float *v, int dims)
{
    if (!b->normalize)
        return false;
    if (models_normalises(b->model, dims, true))
        return true;
    double s = 0;
    for (int i = 0; i < dims; i++)
        s += (double)v[i] * (double)v[i];
    return fabs(s - 1.0) > 1e-3;
}

static bool store_slice(PGconn *c, const struct pipe_batch *b, const char *bid,
                        const struct pipe_result *res, size_t from, size_t to, struct buf *seqs,
                        struct buf *vecs, struct buf *toks, struct store_tally *t, char *err,
                        size_t errlen)
{
    size_t nok = 0;
    for (size_t i = from; i < to; i++)
        nok += res[i].values != NULL;
    if (nok == 0)
        return true;
    buf_reset(seqs);
    buf_reset(vecs);
    buf_reset(toks);
    bool ok = pgarray_begin(seqs, PGARRAY_INT4_OID, nok) &&
              pgarray_begin(vecs, PGARRAY_BYTEA_OID, nok) &&
              pgarray_begin(toks, PGARRAY_INT4_OID, nok);
    for (size_t i = from; i < to && ok; i++)
        if (res[i].values)
            ok = pgarray_int4(seqs, res[i].seq) &&
                 pgarray_vector(vecs, res[i].values, res[i].dims,
                                needs_normalising(b, res[i].values, res[i].dims)) &&
                 pgarray_int4(toks, res[i].tokens >= 0 && res[i].tokens < INT32_MAX
                                        ? (int32_t)res[i].tokens
                                        : -1);
    if (!ok || vecs->len > INT32_MAX) {
        snprintf(err, errlen, "could not store vectors: out of memory");
        return false;
    }
    const char *v[6] = {b->job_id,  bid,        seqs->data,
                        vecs->data, toks->data, b->in_collection ? "t" : "f"};
    const int lens[6] = {0, 0, (int)seqs->len, (int)vecs->len, (int)toks->len, 0};
    const int fmts[6] = {0, 0, 1, 1, 1, 0};
    /* Google's token count when it gave one, else the chunker's estimate; a
     * collection job's documents count their chunks with vectors (the rows
     * this statement changed, so a slice stored twice counts once) */
    PGresult *r = PQexecParams(c, pipe_store_vectors_sql, 6, NULL, v, lens, fmts, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        db_error(r, c, "could not store vectors", err, errlen);
        PQclear(r);
        return false;
    }
    t->stored += (size_t)db_int(PQgetvalue(r, 0, 0));
    t->tokens += db_int(PQgetvalue(r, 0, 1));
    t->estimated += db_int(PQgetvalue(r, 0, 2));
    const char *docs = PQgetvalue(r, 0, 3);
    ok = !b->in_collection || !docs[0] ||
         ((!t->docs.len || buf_putc(&t->docs, ',')) && buf_puts(&t->docs, docs));
    PQclear(r);
    if (!ok)
        snprintf(err, errlen, "out of memory");
    return ok;
}

/*
 * A collection job's documents after a store (their chunks_done moved with
 * the vectors, store_slice): the new versions complete now become current,
 * and those with a chunk failed for good (failed_docs) keep their old
 * version. docs, failed_docs: "1,5,..." or "".
 */
static bool store_versions(PGconn *c, const struct pipe_batch *b, const char *docs,
                           const char *failed_docs, const char *reason, char *err, size_t errlen)
{
    if (!b->in_collection)
        return true;
    bool ok = true;
    if (docs[0]) {
        struct buf lit;
        buf_init(&lit, SIZE_MAX / 4);
        ok = buf_printf(&lit, "{%s}", docs) && coll_flip(c, b->job_id, lit.data, err, errlen);
        buf_cleanup(&lit);
    }
    if (ok && failed_docs[0]) {
        struct buf lit;
        buf_init(&lit, SIZE_MAX / 4);
        ok = buf_printf(&lit, "{%s}", failed_docs) &&
             coll_fail_versions(c, b->job_id, lit.data, reason, err, errlen);
        buf_cleanup(&lit);
    }
    return ok;
}

static bool store_tx(PGconn *c, const struct pipe_batch *b, const struct pipe_result *res, size_t n,
                     int max_attempts, bool close, size_t *stored, size_t *requeued, size_t *failed,
                     char *err, size_t errlen)
{
    struct buf ok_seqs, vecs, toks, bad_seqs, errs, dead_docs;
    struct store_tally t = {0};
    struct buf *bufs[] = {&ok_seqs, &vecs, &toks, &bad_seqs, &errs, &dead_docs, &t.docs};
    for (size_t i = 0; i < SVC_ARRAY_LEN(bufs); i++)
        buf_init(bufs[i], SIZE_MAX / 2);
    *stored = *requeued = *failed = 0;
    size_t nbad = 0;
    bool ok = buf_putc(&bad_seqs, '{') && buf_putc(&errs, '{');
    for (size_t i = 0; i < n && ok; i++) {
        if (!res[i].values) {
            ok = buf_printf(&bad_seqs, "%s%d", nbad ? "," : "", res[i].seq) &&
                 (!nbad || buf_putc(&errs, ',')) &&
                 pgarray_text(&errs, res[i].error ? res[i].error : "the item failed");
            nbad++;
        }
    }
    ok = ok && buf_putc(&bad_seqs, '}') && buf_putc(&errs, '}');
    char bid[24];
    snprintf(bid, sizeof(bid), "%lld", (long long)b->id);
    if (!ok) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    /* Plans that cannot go wrong (as for the claim): every statement here
     * touches the batch's rows by primary key, and statistics taken before a
     * large job was stored must not turn that into scans of the table. */
    if (!(ok = db_exec(c, pipe_store_begin_sql, err, errlen)))
        goto out;
    for (size_t from = 0; ok && from < n; from += STORE_SLICE)
        ok = store_slice(c, b, bid, res, from, n - from < STORE_SLICE ? n : from + STORE_SLICE,
                         &ok_seqs, &vecs, &toks, &t, err, errlen);
    *stored = t.stored;
    int64_t min_back = INT32_MAX;
    ok = ok && (nbad == 0 || requeue_or_fail(c, b, bad_seqs.data, errs.data, max_attempts, requeued,
                                             failed, &min_back, &dead_docs, err, errlen));
    const char *v2[1] = {bid};
    if (ok && close) {
        /* chunks of the batch that got no result at all */
        PGresult *r = pipe_q(c,
                             "SELECT coalesce(array_agg(seq), '{}'), coalesce(array_agg("
                             "'no result returned for this chunk'::text), '{}') FROM chunks"
                             " WHERE batch_id = $1 AND state = 1",
                             1, v2, "could not find missing results", err, errlen);
        ok = r != NULL;
        if (ok) {
            char *ms = strdup(PQgetvalue(r, 0, 0)), *me = strdup(PQgetvalue(r, 0, 1));
            ok = ms && me &&
                 requeue_or_fail(c, b, ms, me, max_attempts, requeued, failed, &min_back,
                                 &dead_docs, err, errlen);
            free(ms);
            free(me);
        }
        PQclear(r);
    }
    ok = ok &&
         store_versions(c, b, t.docs.data ? t.docs.data : "", dead_docs.data ? dead_docs.data : "",
                        "a chunk of this version failed; the previous version stays current", err,
                        errlen);
    char s1[24], s2[24], s3[24], s4[24], s5[24], s6[24];
    snprintf(s1, sizeof(s1), "%zu", *stored);
    snprintf(s2, sizeof(s2), "%zu", *requeued);
    snprintf(s3, sizeof(s3), "%zu", *failed);
    snprintf(s4, sizeof(s4), "%lld", (long long)min_back);
    snprintf(s5, sizeof(s5), "%lld", (long long)t.tokens);
    snprintf(s6, sizeof(s6), "%lld", (long long)t.estimated);
    const char *v3[7] = {b->job_id, s1, s2, s3, s4, s5, s6};
    const struct step steps[] = {
        {b->interactive
             ? "UPDATE jobs SET chunks_in_flight = chunks_in_flight - ($2::int + $3::int + "
               "$4::int),"
               " chunks_succeeded = chunks_succeeded + $2::int,"
               " chunks_pending = chunks_pending + $3::int, chunks_failed = chunks_failed + "
               "$4::int,"
               " claim_seq = least(claim_seq, $5::int), tokens_interactive = tokens_interactive"
               " + $6::bigint, tokens_estimated = tokens_estimated + $7::bigint,"
               " last_activity_at = now() WHERE id = $1"
             : "UPDATE jobs SET chunks_in_flight = chunks_in_flight - ($2::int + $3::int + "
               "$4::int),"
               " chunks_succeeded = chunks_succeeded + $2::int,"
               " chunks_pending = chunks_pending + $3::int, chunks_failed = chunks_failed + "
               "$4::int,"
               " claim_seq = least(claim_seq, $5::int), tokens_batch = tokens_batch + $6::bigint,"
               " tokens_estimated = tokens_estimated + $7::bigint, last_activity_at = now()"
               " WHERE id = $1",
         7, v3, "could not update job counters"},
        {"UPDATE batches SET state = 'succeeded', gemini_state = 'BATCH_STATE_SUCCEEDED',"
         " polls = polls + 1, finished_at = now(), lease_owner = NULL, lease_until = NULL"
         " WHERE id = $1",
         1, v2, "could not close the batch"},
        {finish_sql, 1, v3, "could not finish the job"},
    };
    /* a slice leaves the batch open: more slices follow, then the close */
    ok = pipe_commit_steps(c, ok, steps, close ? SVC_ARRAY_LEN(steps) : 1, err, errlen);
    if (!ok)
        *stored = *requeued = *failed = 0; /* rolled back */
    else
        store_count_results(b->model, b->interactive, *stored, *requeued, *failed, t.tokens);
out:
    for (size_t i = 0; i < SVC_ARRAY_LEN(bufs); i++)
        buf_cleanup(bufs[i]);
    return ok;
}

bool pipe_store_results(PGconn *c, const struct pipe_batch *b, const struct pipe_result *res,
                        size_t n, int max_attempts, size_t *stored, size_t *requeued,
                        size_t *failed, char *err, size_t errlen)
{
    return store_tx(c, b, res, n, max_attempts, true, stored, requeued, failed, err, errlen);
}

bool pipe_store_slice(PGconn *c, const struct pipe_batch *b, const struct pipe_result *res,
                      size_t n, int max_attempts, size_t *stored, size_t *requeued, size_t *failed,
                      char *err, size_t errlen)
{
    return store_tx(c, b, res, n, max_attempts, false, stored, requeued, failed, err, errlen);
}

bool pipe_release(PGconn *c, const struct pipe_batch *b, const char *state, const char *reason,
                  bool count_attempt, int max_attempts, char *err, size_t errlen)
{
    char bid[24], maxa[16];
    snprintf(bid, sizeof(bid), "%lld", (long long)b->id);
    snprintf(maxa, sizeof(maxa), "%d", count_attempt ? max_attempts : 1 << 30);
    const char *v1[5] = {b->job_id, bid, reason, maxa, count_attempt ? "1" : "0"};
    if (!db_exec(c, pipe_store_begin_sql, err, errlen))
        return false;
    /* chunks of a cancelled job fail; others go back to pending (or fail after max attempts) */
    PGresult *r = pipe_q(c,
                         "WITH j AS (SELECT state FROM jobs WHERE id = $1 FOR UPDATE)"
                         " UPDATE chunks SET attempts = attempts + $5::int, batch_id = NULL,"
                         " state = CASE WHEN (SELECT state FROM j) = 'cancelled'"
                         "   OR attempts + $5::int >= $4::int THEN 3 ELSE 0 END,"
                         " error = CASE WHEN (SELECT state FROM j) = 'cancelled' THEN 'cancelled'"
                         "   ELSE $3 END"
                         " WHERE job_id = $1 AND batch_id = $2 AND state = 1"
                         " RETURNING state, seq, doc_index",
                         5, v1, "could not release chunks", err, errlen);
    if (!r) {
        pipe_rollback(c);
        return false;
    }
    int back = 0, dead = 0;
    int64_t min_back = INT32_MAX;
    struct buf dead_docs;
    buf_init(&dead_docs, SIZE_MAX / 2);
    bool ok = true;
    for (int i = 0; i < PQntuples(r); i++) {
        if (PQgetvalue(r, i, 0)[0] == '3') {
            dead++;
            if (b->in_collection)
                ok = ok && (!dead_docs.len || buf_putc(&dead_docs, ',')) &&
                     buf_puts(&dead_docs, PQgetvalue(r, i, 2));
        } else {
            back++;
            int64_t seq = db_int(PQgetvalue(r, i, 1));
            min_back = seq < min_back ? seq : min_back;
        }
    }
    PQclear(r);
    char nb[16], nd[16], mb[24];
    snprintf(nb, sizeof(nb), "%d", back);
    snprintf(nd, sizeof(nd), "%d", dead);
    snprintf(mb, sizeof(mb), "%lld", (long long)min_back);
    const char *v2[4] = {b->job_id, nb, nd, mb};
    const char *v3[3] = {bid, state, reason};
    const struct step close_batch[] = {
        {"UPDATE jobs SET chunks_in_flight = chunks_in_flight - ($2::int + $3::int),"
         " chunks_pending = chunks_pending + $2::int,"
         " chunks_failed = chunks_failed + $3::int, claim_seq = least(claim_seq, $4::int),"
         " last_activity_at = now() WHERE id = $1",
         4, v2, "could not update job counters"},
        {"UPDATE batches SET state = $2, error = $3, finished_at = now(),"
         " lease_owner = NULL, lease_until = NULL WHERE id = $1",
         3, v3, "could not close the batch"},
        {finish_sql, 1, v2, "could not finish the job"},
    };
    if (!ok)
        snprintf(err, errlen, "out of memory");
    ok = ok && store_versions(c, b, "", dead_docs.data ? dead_docs.data : "", reason, err, errlen);
    buf_cleanup(&dead_docs);
    return pipe_commit_steps(c, ok, close_batch, SVC_ARRAY_LEN(close_batch), err, errlen);
}

bool pipe_cancelled_open(PGconn *c, char names[][128], int64_t *ids, size_t max, size_t *n,
                         char *err, size_t errlen)
{
    char lim[16];
    snprintf(lim, sizeof(lim), "%zu", max);
    const char *v[1] = {lim};
    PGresult *r = pipe_q(c,
                         "SELECT b.id, coalesce(b.gemini_name, '') FROM batches b JOIN jobs j"
                         " ON j.id = b.job_id WHERE j.state = 'cancelled'"
                         " AND b.state IN ('intent', 'submitted') ORDER BY b.id LIMIT $1::int",
                         1, v, "could not list cancelled batches", err, errlen);
    if (!r)
        return false;
    *n = (size_t)PQntuples(r);
    for (size_t i = 0; i < *n; i++) {
        ids[i] = db_int(PQgetvalue(r, (int)i, 0));
        snprintf(names[i], 128, "%s", PQgetvalue(r, (int)i, 1));
    }
    PQclear(r);
    return true;
}

bool pipe_hand_back(PGconn *c, const char *owner_prefix, int *n, char *err, size_t errlen)
{
    const char *v[1] = {owner_prefix};
    PGresult *r = PQexecParams(c,
                               "UPDATE batches SET lease_owner = NULL, lease_until = NULL"
                               " WHERE lease_owner IS NOT NULL AND starts_with(lease_owner, $1)",
                               1, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        snprintf(err, errlen, "could not hand back leases: %s", PQerrorMessage(c));
        PQclear(r);
        return false;
    }
    *n = (int)strtol(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return true;
}
