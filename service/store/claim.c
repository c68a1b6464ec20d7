/* claim.c: claiming pending chunks into a new batch at a cost bounded by the batch, and
 * reading a batch's texts a page at a time (see pipeline.h). */
#include "store/pipeline_internal.h"

#include "store/collections.h"
#include "store/counters.h"
#include "store/db.h"
#include "store/pgarray.h"
#include "log.h"
#include "util/buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* Read chunk rows (seq, text, title, text_json_len, title_json_len) into a
 * new array *out of *n. */
static bool take_chunks(PGresult *r, struct pipe_chunk **out, size_t *n_out, char *err,
                        size_t errlen)
{
    size_t n = (size_t)PQntuples(r);
    struct pipe_chunk *chunks = calloc(n ? n : 1, sizeof(*chunks));
    *out = chunks;
    *n_out = 0;
    if (!chunks) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        struct pipe_chunk *ch = &chunks[i];
        ch->seq = (int32_t)db_int(PQgetvalue(r, (int)i, 0));
        ch->text_len = (size_t)PQgetlength(r, (int)i, 1);
        ch->text = malloc(ch->text_len + 1);
        if (ch->text)
            memcpy(ch->text, PQgetvalue(r, (int)i, 1), ch->text_len + 1);
        if (!PQgetisnull(r, (int)i, 2))
            ch->title = strdup(PQgetvalue(r, (int)i, 2));
        ch->text_json_len = (int32_t)db_int(PQgetvalue(r, (int)i, 3));
        ch->title_json_len = (int32_t)db_int(PQgetvalue(r, (int)i, 4));
        *n_out = i + 1;
        if (!ch->text || (!PQgetisnull(r, (int)i, 2) && !ch->title)) {
            snprintf(err, errlen, "out of memory");
            return false;
        }
    }
    return true;
}

/* "{1,2,3}" for the first n chunks. */
static bool seq_array(const struct pipe_batch *b, size_t n, struct buf *out)
{
    bool ok = buf_putc(out, '{');
    for (size_t i = 0; i < n && ok; i++)
        ok = buf_printf(out, "%s%d", i ? "," : "", b->chunks[i].seq);
    return ok && buf_putc(out, '}');
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * The job whose turn it is: the highest priority, then the one claimed
 * longest ago (never claimed first), then the oldest; a job another claim is
 * marking right now is skipped (another job's turn). Its row stays locked for
 * the claim, which costs the batch: it is what orders a claim against a
 * cancel, which takes the job first and its pending chunks after.
 */
const char *const pipe_claim_begin_sql =
    "BEGIN; SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off";

const char *const pipe_claim_job_sql =
    "SELECT id, model, task_type, output_dimensionality, normalize, state, chunks_total,"
    " claim_seq, collection_id IS NOT NULL FROM jobs"
    " WHERE state IN ('pending', 'running') AND chunks_pending > 0"
    " ORDER BY priority DESC, last_claim_at NULLS FIRST, created_at LIMIT 1"
    " FOR NO KEY UPDATE SKIP LOCKED";

/* Pending chunks from the cursor in primary-key order: the index scan stops
 * after limit rows, so the cost is the batch's, not the job's. */
const char *const pipe_claim_chunks_sql = "SELECT seq, text_json_len, title_json_len FROM chunks"
                                          " WHERE job_id = $1 AND seq >= $2::int AND state = 0"
                                          " ORDER BY seq LIMIT $3::bigint FOR UPDATE SKIP LOCKED";

/* Read the claimed job's settings into out: 1, or 0 when there is no job,
 * -1 on failure (err set). */
static int claim_job(PGconn *c, struct pipe_batch *out, int64_t *cursor, char *err, size_t errlen)
{
    PGresult *r = pipe_q(c, pipe_claim_job_sql, 0, NULL, "could not look for work", err, errlen);
    if (!r)
        return -1;
    int any = PQntuples(r) == 1;
    if (any) {
        snprintf(out->job_id, sizeof(out->job_id), "%s", PQgetvalue(r, 0, 0));
        snprintf(out->model, sizeof(out->model), "%s", PQgetvalue(r, 0, 1));
        snprintf(out->task_type, sizeof(out->task_type), "%s", PQgetvalue(r, 0, 2));
        out->dims = (int)db_int(PQgetvalue(r, 0, 3));
        out->normalize = PQgetvalue(r, 0, 4)[0] == 't';
        snprintf(out->job_state, sizeof(out->job_state), "%s", PQgetvalue(r, 0, 5));
        out->job_chunks = db_int(PQgetvalue(r, 0, 6));
        *cursor = db_int(PQgetvalue(r, 0, 7));
        out->in_collection = PQgetvalue(r, 0, 8)[0] == 't';
    }
    PQclear(r);
    return any;
}

/* The job's pending chunks from seq `from`, up to limit rows, locked (seqs and sizes). */
static PGresult *claim_chunks(PGconn *c, const char *job_id, int64_t from, size_t limit, char *err,
                              size_t errlen)
{
    char f[24], l[24];
    snprintf(f, sizeof(f), "%lld", (long long)from);
    snprintf(l, sizeof(l), "%zu", limit);
    const char *v[3] = {job_id, f, l};
    return pipe_q(c, pipe_claim_chunks_sql, 3, v, "could not read pending chunks", err, errlen);
}

/* Pack the claimed rows in order up to the limits (always at least one);
 * fills out->chunks with their seqs and sizes; returns the request bytes. */
static size_t claim_pack(PGresult *r, const struct pipe_claim_opts *o, struct pipe_batch *out,
                         char *err, size_t errlen)
{
    size_t rows = (size_t)PQntuples(r);
    out->chunks = calloc(rows ? rows : 1, sizeof(*out->chunks));
    if (!out->chunks) {
        snprintf(err, errlen, "out of memory");
        return 0;
    }
    size_t bytes = o->overhead_bytes, n = 0;
    for (; n < rows; n++) {
        struct pipe_chunk *ch = &out->chunks[n];
        ch->seq = (int32_t)db_int(PQgetvalue(r, (int)n, 0));
        ch->text_json_len = (int32_t)db_int(PQgetvalue(r, (int)n, 1));
        ch->title_json_len = (int32_t)db_int(PQgetvalue(r, (int)n, 2));
        size_t s = o->size(out, ch, o->size_arg);
        if (n > 0 && bytes + s > o->max_bytes)
            break;
        bytes += s;
    }
    out->n_chunks = n;
    return bytes;
}

static bool claim(PGconn *c, const struct pipe_claim_opts *o, struct pipe_batch *out, bool *found,
                  int64_t *claim_ms, char *err, size_t errlen)
{
    int64_t t0 = mono_ms();
    memset(out, 0, sizeof(*out));
    *found = false;
    *claim_ms = 0;
    /* Plans that cannot go wrong: the statements below are index lookups by
     * design, and a planner with stale statistics (a job of a million rows
     * just stored) must not turn them into scans. */
    if (!db_exec(c, pipe_claim_begin_sql, err, errlen))
        return false;
    PGresult *r = pipe_q(c, "SELECT count(*) FROM batches WHERE state IN ('intent', 'submitted')",
                         0, NULL, "could not count open batches", err, errlen);
    if (!r)
        goto fail;
    bool full = o->max_open > 0 && db_int(PQgetvalue(r, 0, 0)) >= o->max_open;
    PQclear(r);
    int64_t cursor = 0;
    int job = full ? 0 : claim_job(c, out, &cursor, err, errlen);
    if (job < 0)
        goto fail;
    if (job == 0)
        return db_exec(c, "COMMIT", err, errlen);
    r = claim_chunks(c, out->job_id, cursor, o->max_items, err, errlen);
    if (r && PQntuples(r) == 0 && cursor > 0) {
        /* nothing from the cursor, yet the job has pending chunks: a claim
         * that rolled back, or a requeue the cursor missed; look again from
         * the start (rare: it walks what was claimed before) */
        PQclear(r);
        log_debug("job %s: no pending chunk from claim cursor %lld; rescanning", out->job_id,
                  (long long)cursor);
        cursor = 0;
        r = claim_chunks(c, out->job_id, 0, o->max_items, err, errlen);
    }
    if (!r)
        goto fail;
    if (PQntuples(r) == 0) { /* every pending chunk is being claimed by someone else */
        PQclear(r);
        pipe_batch_free(out);
        return db_exec(c, "COMMIT", err, errlen);
    }
    size_t bytes = claim_pack(r, o, out, err, errlen);
    PQclear(r);
    if (!out->chunks)
        goto fail;
    size_t n = out->n_chunks;
    bool too_big = bytes > o->inline_max_bytes || (o->inline_max_items && n > o->inline_max_items);
    const char *transport = too_big ? "file" : "inline";
    if (o->sync_max_chunks > 0 && out->job_chunks <= o->sync_max_chunks)
        transport = "sync";

    unsigned char rnd[6];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
        snprintf(err, errlen, "could not read random bytes");
        goto fail;
    }
    snprintf(out->display_name, sizeof(out->display_name), "embedd-%.8s-%02x%02x%02x%02x%02x%02x",
             out->job_id, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
    *claim_ms = mono_ms() - t0;
    char nstr[24], bstr[24], lease[24], cms[24];
    snprintf(nstr, sizeof(nstr), "%zu", n);
    snprintf(bstr, sizeof(bstr), "%zu", bytes);
    snprintf(lease, sizeof(lease), "%lld", (long long)o->lease_ms);
    snprintf(cms, sizeof(cms), "%lld", (long long)*claim_ms);
    const char *v2[8] = {out->job_id, out->display_name, nstr, bstr, o->owner,
                         lease,       transport,         cms};
    r = pipe_q(
        c,
        "INSERT INTO batches (job_id, display_name, state, n_chunks, request_bytes, lease_owner,"
        " lease_until, transport, claim_ms) VALUES ($1, $2, 'intent', $3, $4, $5,"
        " now() + $6::bigint * interval '1 millisecond', $7, $8) RETURNING id",
        8, v2, "could not record the batch", err, errlen);
    if (!r)
        goto fail;
    out->id = db_int(PQgetvalue(r, 0, 0));
    PQclear(r);
    struct buf seqs;
    buf_init(&seqs, SIZE_MAX / 2);
    char bid[24], first[16], last[16];
    snprintf(bid, sizeof(bid), "%lld", (long long)out->id);
    snprintf(first, sizeof(first), "%d", out->chunks[0].seq);
    snprintf(last, sizeof(last), "%d", out->chunks[n - 1].seq);
    bool ok = seq_array(out, n, &seqs);
    const char *v3[3] = {out->job_id, seqs.data, bid};
    const char *v4[4] = {out->job_id, nstr, first, last};
    PGresult *jr = NULL;
    ok = ok && pipe_run(c,
                        "UPDATE chunks SET state = 1, batch_id = $3"
                        " WHERE job_id = $1 AND seq = ANY($2::int[])",
                        3, v3, "could not mark chunks in flight", err, errlen);
    /* The cursor moves past what was taken unless a requeue moved it back
     * below this claim meanwhile; a job cancelled meanwhile takes nothing. */
    ok = ok && (jr = pipe_q(c,
                            "UPDATE jobs SET chunks_pending = chunks_pending - $2::int,"
                            " chunks_in_flight = chunks_in_flight + $2::int, state = 'running',"
                            " started_at = coalesce(started_at, now()), last_activity_at = now(),"
                            " last_claim_at = clock_timestamp(),"
                            " claim_seq = CASE WHEN claim_seq >= $3::int"
                            "   THEN greatest(claim_seq, $4::int + 1) ELSE claim_seq END"
                            " WHERE id = $1 AND state IN ('pending', 'running')",
                            4, v4, "could not update the job", err, errlen)) != NULL;
    if (ok && db_int(PQcmdTuples(jr)) == 0) {
        snprintf(err, errlen, "job %s changed state during the claim", out->job_id);
        ok = false;
    }
    PQclear(jr);
    ok = pipe_commit_steps(c, ok, NULL, 0, err, errlen);
    buf_cleanup(&seqs);
    if (!ok) {
        pipe_batch_free(out); /* rolled back */
        return false;
    }
    snprintf(out->state, sizeof(out->state), "intent");
    snprintf(out->transport, sizeof(out->transport), "%s", transport);
    out->request_bytes = (int64_t)bytes;
    *found = true;
    log_debug("batch %s: claimed %zu chunks of job %s (%s, %zu bytes) in %lld ms",
              out->display_name, n, out->job_id, transport, bytes, (long long)*claim_ms);
    return true;
fail:
    pipe_rollback(c);
    pipe_batch_free(out);
    return false;
}

bool pipe_claim(PGconn *c, const struct pipe_claim_opts *o, struct pipe_batch *out, bool *found,
                int64_t *claim_ms, char *err, size_t errlen)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    bool ok = claim(c, o, out, found, claim_ms, err, errlen);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    store_count_claim(!ok ? STORE_CLAIM_ERROR : *found ? STORE_CLAIM_BATCH : STORE_CLAIM_EMPTY, s);
    return ok;
}

/* A batch's chunks with their texts: the chunks_by_batch index in seq order,
 * the title by primary key per row (a scalar subquery, which the planner
 * runs as written rather than as a join of whole tables). */
static const char *const batch_chunks_sql =
    "SELECT c.seq, c.text, (SELECT d.title FROM documents d"
    "   WHERE d.job_id = c.job_id AND d.doc_index = c.doc_index),"
    " c.text_json_len, c.title_json_len FROM chunks c"
    " WHERE c.batch_id = $1 AND c.seq > $2::int AND c.state = 1 ORDER BY c.seq LIMIT $3::bigint";

bool pipe_chunks_page(PGconn *c, const struct pipe_batch *b, int64_t after, size_t max,
                      struct pipe_chunk **out, size_t *n, char *err, size_t errlen)
{
    char bid[24], a[24], l[24];
    snprintf(bid, sizeof(bid), "%lld", (long long)b->id);
    snprintf(a, sizeof(a), "%lld", (long long)after);
    snprintf(l, sizeof(l), "%zu", max);
    const char *v[3] = {bid, a, l};
    *out = NULL;
    *n = 0;
    /* a read with the claim's planner settings: the batch's rows by index, whatever the
     * statistics say (a transaction of its own, as SET LOCAL needs) */
    if (!db_exec(c, pipe_claim_begin_sql, err, errlen))
        return false;
    PGresult *r =
        pipe_q(c, batch_chunks_sql, 3, v, "could not read the batch's chunks", err, errlen);
    bool ok = r && take_chunks(r, out, n, err, errlen);
    PQclear(r);
    ok = db_exec(c, ok ? "COMMIT" : "ROLLBACK", err, errlen) && ok;
    if (!ok) {
        pipe_chunks_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return ok;
}

bool pipe_load_chunks(PGconn *c, struct pipe_batch *b, char *err, size_t errlen)
{
    pipe_batch_free(b);
    return pipe_chunks_page(c, b, -1, (size_t)INT32_MAX, &b->chunks, &b->n_chunks, err, errlen);
}
