/* pipeline.c: the database side of the worker pipeline (see pipeline.h). */
#include "store/pipeline.h"

#include "store/db.h"
#include "store/pgarray.h"
#include "util/buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

void pipe_batch_free(struct pipe_batch *b)
{
    for (size_t i = 0; i < b->n_chunks; i++) {
        free(b->chunks[i].text);
        free(b->chunks[i].title);
    }
    free(b->chunks);
    b->chunks = NULL;
    b->n_chunks = 0;
}

static PGresult *q(PGconn *c, const char *sql, int n, const char *const *vals, const char *what,
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

static bool run(PGconn *c, const char *sql, int n, const char *const *vals, const char *what,
                char *err, size_t errlen)
{
    PGresult *r = q(c, sql, n, vals, what, err, errlen);
    PQclear(r);
    return r != NULL;
}

static void rollback(PGconn *c)
{
    PQclear(PQexec(c, "ROLLBACK"));
}

/* One statement of a transaction: sql with n text parameters; what names it in err. */
struct step {
    const char *sql;
    int n;
    const char *const *vals;
    const char *what;
};

/*
 * End the open transaction: if ok (nothing failed so far), run steps in
 * order and COMMIT; ROLLBACK when anything failed, before or here. Returns
 * whether it committed; err says what failed. Each multi-statement
 * transition (claim, submitted, results, release) ends this way.
 */
static bool commit_steps(PGconn *c, bool ok, const struct step *steps, size_t n, char *err,
                         size_t errlen)
{
    for (size_t i = 0; ok && i < n; i++)
        ok = run(c, steps[i].sql, steps[i].n, steps[i].vals, steps[i].what, err, errlen);
    ok = ok && db_exec(c, "COMMIT", err, errlen);
    if (!ok)
        rollback(c);
    return ok;
}

static bool load_job(PGconn *c, struct pipe_batch *b, char *err, size_t errlen)
{
    const char *v[1] = {b->job_id};
    PGresult *r = q(c,
                    "SELECT model, task_type, output_dimensionality, normalize, state,"
                    " chunks_total FROM jobs WHERE id = $1",
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
    } else {
        snprintf(err, errlen, "job %s is gone", b->job_id);
    }
    PQclear(r);
    return ok;
}

/* Read chunk rows (seq, text, title) into b->chunks. */
static bool take_chunks(PGresult *r, struct pipe_batch *b, char *err, size_t errlen)
{
    size_t n = (size_t)PQntuples(r);
    b->chunks = calloc(n ? n : 1, sizeof(*b->chunks));
    if (!b->chunks) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        struct pipe_chunk *ch = &b->chunks[i];
        ch->seq = (int32_t)db_int(PQgetvalue(r, (int)i, 0));
        ch->text_len = (size_t)PQgetlength(r, (int)i, 1);
        ch->text = malloc(ch->text_len + 1);
        if (ch->text)
            memcpy(ch->text, PQgetvalue(r, (int)i, 1), ch->text_len + 1);
        if (!PQgetisnull(r, (int)i, 2))
            ch->title = strdup(PQgetvalue(r, (int)i, 2));
        b->n_chunks = i + 1;
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

bool pipe_claim(PGconn *c, const char *owner, int64_t lease_ms, size_t max_items, size_t max_bytes,
                size_t overhead_bytes, pipe_size_fn size, void *size_arg, struct pipe_batch *out,
                bool *found, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    *found = false;
    if (!db_exec(c, "BEGIN", err, errlen))
        return false;
    PGresult *r =
        q(c,
          "SELECT id FROM jobs WHERE state IN ('pending', 'running') AND chunks_pending > 0"
          " ORDER BY priority DESC, created_at FOR UPDATE SKIP LOCKED LIMIT 1",
          0, NULL, "could not look for work", err, errlen);
    if (!r)
        goto fail;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return db_exec(c, "COMMIT", err, errlen);
    }
    snprintf(out->job_id, sizeof(out->job_id), "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    if (!load_job(c, out, err, errlen))
        goto fail;
    char lim[24];
    snprintf(lim, sizeof(lim), "%zu", max_items);
    const char *v1[2] = {out->job_id, lim};
    r = q(c,
          "SELECT c.seq, c.text, d.title FROM chunks c JOIN documents d"
          "   ON d.job_id = c.job_id AND d.doc_index = c.doc_index"
          " WHERE c.job_id = $1 AND c.state = 0 ORDER BY c.seq LIMIT $2",
          2, v1, "could not read pending chunks", err, errlen);
    if (!r)
        goto fail;
    bool ok = take_chunks(r, out, err, errlen);
    PQclear(r);
    if (!ok)
        goto fail;
    /* pack in order up to the byte limit, always at least one chunk */
    size_t bytes = overhead_bytes, n = 0;
    while (n < out->n_chunks) {
        size_t s = size(out, &out->chunks[n], size_arg);
        if (n > 0 && bytes + s > max_bytes)
            break;
        bytes += s;
        n++;
    }
    for (size_t i = n; i < out->n_chunks; i++) {
        free(out->chunks[i].text);
        free(out->chunks[i].title);
    }
    out->n_chunks = n;

    unsigned char rnd[6];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
        snprintf(err, errlen, "could not read random bytes");
        goto fail;
    }
    snprintf(out->display_name, sizeof(out->display_name), "embedd-%.8s-%02x%02x%02x%02x%02x%02x",
             out->job_id, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
    char nstr[24], bstr[24], lease[24];
    snprintf(nstr, sizeof(nstr), "%zu", n);
    snprintf(bstr, sizeof(bstr), "%zu", bytes);
    snprintf(lease, sizeof(lease), "%lld", (long long)lease_ms);
    const char *v2[6] = {out->job_id, out->display_name, nstr, bstr, owner, lease};
    r = q(c,
          "INSERT INTO batches (job_id, display_name, state, n_chunks, request_bytes, lease_owner,"
          " lease_until) VALUES ($1, $2, 'intent', $3, $4, $5,"
          " now() + $6::bigint * interval '1 millisecond') RETURNING id",
          6, v2, "could not record the batch", err, errlen);
    if (!r)
        goto fail;
    out->id = db_int(PQgetvalue(r, 0, 0));
    PQclear(r);
    struct buf seqs;
    buf_init(&seqs, SIZE_MAX / 2);
    char bid[24];
    snprintf(bid, sizeof(bid), "%lld", (long long)out->id);
    ok = seq_array(out, n, &seqs);
    const char *v3[3] = {out->job_id, seqs.data, bid};
    const char *v4[2] = {out->job_id, nstr};
    const struct step mark[] = {
        {"UPDATE chunks SET state = 1, batch_id = $3 WHERE job_id = $1 AND seq = ANY($2::int[])", 3,
         v3, "could not mark chunks in flight"},
        {"UPDATE jobs SET chunks_pending = chunks_pending - $2::int,"
         " chunks_in_flight = chunks_in_flight + $2::int, state = 'running',"
         " started_at = coalesce(started_at, now()), last_activity_at = now()"
         " WHERE id = $1",
         2, v4, "could not update the job"},
    };
    ok = commit_steps(c, ok, mark, SVC_ARRAY_LEN(mark), err, errlen);
    buf_cleanup(&seqs);
    if (!ok) {
        pipe_batch_free(out); /* rolled back */
        return false;
    }
    snprintf(out->state, sizeof(out->state), "intent");
    *found = true;
    return true;
fail:
    rollback(c);
    pipe_batch_free(out);
    return false;
}

bool pipe_load_chunks(PGconn *c, struct pipe_batch *b, char *err, size_t errlen)
{
    char bid[24];
    snprintf(bid, sizeof(bid), "%lld", (long long)b->id);
    const char *v[1] = {bid};
    PGresult *r = q(c,
                    "SELECT c.seq, c.text, d.title FROM chunks c JOIN documents d"
                    "   ON d.job_id = c.job_id AND d.doc_index = c.doc_index"
                    " WHERE c.batch_id = $1 AND c.state = 1 ORDER BY c.seq",
                    1, v, "could not read the batch's chunks", err, errlen);
    if (!r)
        return false;
    bool ok = take_chunks(r, b, err, errlen);
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
    return commit_steps(c, begun, submit, SVC_ARRAY_LEN(submit), err, errlen);
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
        q(c,
          "UPDATE batches SET lease_owner = $1,"
          " lease_until = now() + $2::bigint * interval '1 millisecond'"
          " WHERE id = (SELECT id FROM batches WHERE state IN ('intent', 'submitted')"
          "   AND next_poll_at <= now() AND (lease_until IS NULL OR lease_until < now())"
          "   ORDER BY next_poll_at FOR UPDATE SKIP LOCKED LIMIT 1)"
          " RETURNING id, job_id, display_name, state, coalesce(gemini_name, ''), polls,"
          " (extract(epoch FROM now() - coalesce(submitted_at, created_at)) * 1000)::bigint",
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
        *found = true;
    }
    PQclear(r);
    return !*found || load_job(c, out, err, errlen);
}

bool pipe_poll_later(PGconn *c, int64_t batch_id, const char *gemini_state, int64_t poll_ms,
                     char *err, size_t errlen)
{
    char bid[24], ms[24];
    snprintf(bid, sizeof(bid), "%lld", (long long)batch_id);
    snprintf(ms, sizeof(ms), "%lld", (long long)poll_ms);
    const char *v[3] = {bid, gemini_state, ms};
    return run(c,
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
    return run(c,
               "UPDATE batches SET next_poll_at = now() + $2::bigint * interval '1 millisecond',"
               " polls = polls + 1, lease_owner = NULL, lease_until = NULL WHERE id = $1",
               2, v, "could not reschedule the batch", err, errlen);
}

/* Finish the job when nothing is pending or in flight (a cancelled job stays cancelled). */
static const char *const finish_sql =
    "UPDATE jobs SET state = CASE WHEN chunks_failed = 0 THEN 'succeeded'"
    " WHEN chunks_succeeded = 0 THEN 'failed' ELSE 'completed_with_errors' END,"
    " finished_at = now(), last_activity_at = now()"
    " WHERE id = $1 AND state IN ('pending', 'running') AND chunks_pending = 0"
    " AND chunks_in_flight = 0";

static bool requeue_or_fail(PGconn *c, const struct pipe_batch *b, const char *seqs,
                            const char *errors, int max_attempts, size_t *requeued, size_t *failed,
                            char *err, size_t errlen)
{
    char bid[24], maxa[16];
    snprintf(bid, sizeof(bid), "%lld", (long long)b->id);
    snprintf(maxa, sizeof(maxa), "%d", max_attempts);
    const char *v[5] = {b->job_id, bid, seqs, errors, maxa};
    PGresult *r = q(c,
                    "UPDATE chunks SET attempts = attempts + 1,"
                    " state = CASE WHEN attempts + 1 >= $5::int THEN 3 ELSE 0 END,"
                    " batch_id = NULL, error = u.e"
                    " FROM unnest($3::int[], $4::text[]) AS u(s, e)"
                    " WHERE chunks.job_id = $1 AND chunks.seq = u.s AND chunks.batch_id = $2"
                    " AND chunks.state = 1 RETURNING chunks.state",
                    5, v, "could not requeue failed chunks", err, errlen);
    if (!r)
        return false;
    for (int i = 0; i < PQntuples(r); i++)
        (*(PQgetvalue(r, i, 0)[0] == '3' ? failed : requeued))++;
    PQclear(r);
    return true;
}

/* Vectors go in statements of at most this many (a few MB each, not a batch's worth). */
#define STORE_SLICE 1000

/* UPDATE the chunks of res[from..to) that have a vector; adds to *stored. */
static bool store_slice(PGconn *c, const struct pipe_batch *b, const char *bid,
                        const struct pipe_result *res, size_t from, size_t to, struct buf *seqs,
                        struct buf *vecs, size_t *stored, char *err, size_t errlen)
{
    bool norm = b->normalize;
    size_t nok = 0;
    for (size_t i = from; i < to; i++)
        nok += res[i].values != NULL;
    if (nok == 0)
        return true;
    buf_reset(seqs);
    buf_reset(vecs);
    bool ok =
        pgarray_begin(seqs, PGARRAY_INT4_OID, nok) && pgarray_begin(vecs, PGARRAY_BYTEA_OID, nok);
    for (size_t i = from; i < to && ok; i++)
        if (res[i].values)
            ok = pgarray_int4(seqs, res[i].seq) &&
                 pgarray_vector(vecs, res[i].values, res[i].dims, norm && res[i].dims < 3072);
    if (!ok || vecs->len > INT32_MAX) {
        snprintf(err, errlen, "could not store vectors: out of memory");
        return false;
    }
    const char *v[4] = {b->job_id, bid, seqs->data, vecs->data};
    const int lens[4] = {0, 0, (int)seqs->len, (int)vecs->len};
    const int fmts[4] = {0, 0, 1, 1};
    PGresult *r = PQexecParams(c,
                               "UPDATE chunks SET state = 2, embedding = u.e, error = NULL"
                               " FROM unnest($3::int[], $4::bytea[]) AS u(s, e)"
                               " WHERE chunks.job_id = $1 AND chunks.seq = u.s"
                               " AND chunks.batch_id = $2 AND chunks.state = 1",
                               4, NULL, v, lens, fmts, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        db_error(r, c, "could not store vectors", err, errlen);
        PQclear(r);
        return false;
    }
    *stored += (size_t)db_int(PQcmdTuples(r));
    PQclear(r);
    return true;
}

bool pipe_store_results(PGconn *c, const struct pipe_batch *b, const struct pipe_result *res,
                        size_t n, int max_attempts, size_t *stored, size_t *requeued,
                        size_t *failed, char *err, size_t errlen)
{
    struct buf ok_seqs, vecs, bad_seqs, errs;
    buf_init(&ok_seqs, SIZE_MAX / 2);
    buf_init(&vecs, SIZE_MAX / 2);
    buf_init(&bad_seqs, SIZE_MAX / 2);
    buf_init(&errs, SIZE_MAX / 2);
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
    if (!(ok = db_exec(c, "BEGIN", err, errlen)))
        goto out;
    for (size_t from = 0; ok && from < n; from += STORE_SLICE)
        ok = store_slice(c, b, bid, res, from, n - from < STORE_SLICE ? n : from + STORE_SLICE,
                         &ok_seqs, &vecs, stored, err, errlen);
    PGresult *r;
    ok = ok && requeue_or_fail(c, b, bad_seqs.data, errs.data, max_attempts, requeued, failed, err,
                               errlen);
    /* chunks of the batch that got no result at all */
    const char *v2[1] = {bid};
    r = ok ? q(c,
               "SELECT coalesce(array_agg(seq), '{}'), coalesce(array_agg("
               "'no result returned for this chunk'::text), '{}') FROM chunks"
               " WHERE batch_id = $1 AND state = 1",
               1, v2, "could not find missing results", err, errlen)
           : NULL;
    ok = ok && r;
    if (ok) {
        char *ms = strdup(PQgetvalue(r, 0, 0)), *me = strdup(PQgetvalue(r, 0, 1));
        ok = ms && me && requeue_or_fail(c, b, ms, me, max_attempts, requeued, failed, err, errlen);
        free(ms);
        free(me);
    }
    PQclear(r);
    char s1[24], s2[24], s3[24];
    snprintf(s1, sizeof(s1), "%zu", *stored);
    snprintf(s2, sizeof(s2), "%zu", *requeued);
    snprintf(s3, sizeof(s3), "%zu", *failed);
    const char *v3[4] = {b->job_id, s1, s2, s3};
    const struct step close_batch[] = {
        {"UPDATE jobs SET chunks_in_flight = chunks_in_flight - ($2::int + $3::int + $4::int),"
         " chunks_succeeded = chunks_succeeded + $2::int,"
         " chunks_pending = chunks_pending + $3::int, chunks_failed = chunks_failed + $4::int,"
         " last_activity_at = now() WHERE id = $1",
         4, v3, "could not update job counters"},
        {"UPDATE batches SET state = 'succeeded', gemini_state = 'BATCH_STATE_SUCCEEDED',"
         " polls = polls + 1, finished_at = now(), lease_owner = NULL, lease_until = NULL"
         " WHERE id = $1",
         1, v2, "could not close the batch"},
        {finish_sql, 1, v3, "could not finish the job"},
    };
    ok = commit_steps(c, ok, close_batch, SVC_ARRAY_LEN(close_batch), err, errlen);
out:
    buf_cleanup(&ok_seqs);
    buf_cleanup(&vecs);
    buf_cleanup(&bad_seqs);
    buf_cleanup(&errs);
    return ok;
}

bool pipe_release(PGconn *c, const struct pipe_batch *b, const char *state, const char *reason,
                  bool count_attempt, int max_attempts, char *err, size_t errlen)
{
    char bid[24], maxa[16];
    snprintf(bid, sizeof(bid), "%lld", (long long)b->id);
    snprintf(maxa, sizeof(maxa), "%d", count_attempt ? max_attempts : 1 << 30);
    const char *v1[5] = {b->job_id, bid, reason, maxa, count_attempt ? "1" : "0"};
    if (!db_exec(c, "BEGIN", err, errlen))
        return false;
    /* chunks of a cancelled job fail; others go back to pending (or fail after max attempts) */
    PGresult *r = q(c,
                    "WITH j AS (SELECT state FROM jobs WHERE id = $1 FOR UPDATE)"
                    " UPDATE chunks SET attempts = attempts + $5::int, batch_id = NULL,"
                    " state = CASE WHEN (SELECT state FROM j) = 'cancelled'"
                    "   OR attempts + $5::int >= $4::int THEN 3 ELSE 0 END,"
                    " error = CASE WHEN (SELECT state FROM j) = 'cancelled' THEN 'cancelled'"
                    "   ELSE $3 END"
                    " WHERE job_id = $1 AND batch_id = $2 AND state = 1 RETURNING state",
                    5, v1, "could not release chunks", err, errlen);
    if (!r) {
        rollback(c);
        return false;
    }
    int back = 0, dead = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        if (PQgetvalue(r, i, 0)[0] == '3')
            dead++;
        else
            back++;
    }
    PQclear(r);
    char nb[16], nd[16];
    snprintf(nb, sizeof(nb), "%d", back);
    snprintf(nd, sizeof(nd), "%d", dead);
    const char *v2[3] = {b->job_id, nb, nd};
    const char *v3[3] = {bid, state, reason};
    const struct step close_batch[] = {
        {"UPDATE jobs SET chunks_in_flight = chunks_in_flight - ($2::int + $3::int),"
         " chunks_pending = chunks_pending + $2::int,"
         " chunks_failed = chunks_failed + $3::int, last_activity_at = now()"
         " WHERE id = $1",
         3, v2, "could not update job counters"},
        {"UPDATE batches SET state = $2, error = $3, finished_at = now(),"
         " lease_owner = NULL, lease_until = NULL WHERE id = $1",
         3, v3, "could not close the batch"},
        {finish_sql, 1, v2, "could not finish the job"},
    };
    return commit_steps(c, true, close_batch, SVC_ARRAY_LEN(close_batch), err, errlen);
}

bool pipe_cancelled_open(PGconn *c, char names[][128], int64_t *ids, size_t max, size_t *n,
                         char *err, size_t errlen)
{
    char lim[16];
    snprintf(lim, sizeof(lim), "%zu", max);
    const char *v[1] = {lim};
    PGresult *r = q(c,
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
