/* test_pipeline.c: the pipeline's database transitions against a real PostgreSQL. */
#include "dbh.h"
#include "store/jobs.h"
#include "store/jobs_ingest.h"
#include "store/keys.h"
#include "store/migrate.h"
#include "store/pipeline.h"
#include "util/buf.h"

#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct dbh db;
static int64_t key_id;

static void setup(void)
{
    char err[512], key[KEY_LEN + 1];
    int applied;
    dbh_create(&db);
    cr_assert(migrate_run(db.conn, &applied, err, sizeof(err)), "%s", err);
    cr_assert(keys_create(db.conn, "t", key, &key_id, err, sizeof(err)), "%s", err);
}

static void teardown(void)
{
    dbh_drop(&db);
}

TestSuite(pipeline, .init = setup, .fini = teardown, .timeout = 120);

/* A job of n one-chunk documents. */
static void make_job(int n, int priority, char id[JOB_ID_LEN + 1])
{
    struct ingest_doc *docs = calloc((size_t)n, sizeof(*docs));
    char(*ids)[16] = calloc((size_t)n, 16);
    char(*texts)[32] = calloc((size_t)n, 32);
    for (int i = 0; i < n; i++) {
        snprintf(ids[i], 16, "d%d", i);
        snprintf(texts[i], 32, "text number %d", i);
        docs[i] =
            (struct ingest_doc){ids[i], strlen(ids[i]), NULL, 0, NULL, texts[i], strlen(texts[i])};
    }
    struct job_spec spec = {
        key_id, NULL, "gemini-embedding-001", "RETRIEVAL_DOCUMENT", 128, true, priority, 2000,
        200,    NULL};
    char err[512];
    cr_assert(jobs_create(db.conn, &spec, docs, (size_t)n, id, err, sizeof(err)), "%s", err);
    free(docs);
    free(ids);
    free(texts);
}

static size_t size_of(const struct pipe_batch *b, const struct pipe_chunk *c, void *arg)
{
    (void)b;
    (void)arg;
    return (size_t)c->text_json_len + 100;
}

static long long job_col(const char *id, const char *col)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT %s FROM jobs WHERE id = '%s'", col, id);
    return dbh_scalar(&db, sql);
}

static void claim_on(PGconn *c, struct pipe_batch *b, size_t max_items, size_t max_bytes, bool want)
{
    char err[512];
    bool found;
    int64_t ms;
    struct pipe_claim_opts o = {
        .owner = "w1",
        .lease_ms = 60000,
        .max_items = max_items,
        .max_bytes = max_bytes,
        .overhead_bytes = 50,
        .size = size_of,
        .inline_max_bytes = max_bytes,
        .max_open = 0,
    };
    cr_assert(pipe_claim(c, &o, b, &found, &ms, err, sizeof(err)), "%s", err);
    cr_assert_eq(found, want);
}

static void claim(struct pipe_batch *b, size_t max_items, size_t max_bytes, bool want)
{
    claim_on(db.conn, b, max_items, max_bytes, want);
}

Test(pipeline, claim_packs_and_counts)
{
    char id[JOB_ID_LEN + 1];
    make_job(10, 0, id);
    struct pipe_batch b;
    claim(&b, 4, 100000, true);
    cr_assert_eq(b.n_chunks, 4, "max_items caps the batch");
    cr_assert_str_eq(b.state, "intent");
    cr_assert_str_eq(b.job_id, id);
    cr_assert_eq(b.chunks[0].seq, 0);
    cr_assert_null(b.chunks[0].text, "the claim reads no text");
    cr_assert_eq(b.chunks[0].text_json_len, 13);
    cr_assert_eq(b.chunks[0].title_json_len, -1);
    char err[512];
    cr_assert(pipe_load_chunks(db.conn, &b, err, sizeof(err)), "%s", err);
    cr_assert_eq(b.n_chunks, 4);
    cr_assert_str_eq(b.chunks[0].text, "text number 0");
    cr_assert_str_eq(b.chunks[3].text, "text number 3");
    cr_assert_eq(b.dims, 128);
    cr_assert(strncmp(b.display_name, "embedd-", 7) == 0);
    cr_assert_eq(job_col(id, "chunks_pending"), 6);
    cr_assert_eq(job_col(id, "chunks_in_flight"), 4);
    cr_assert_eq(dbh_scalar(&db, "SELECT count(*) FROM batches WHERE state = 'intent'"), 1,
                 "the intent is committed before Google is called");
    pipe_batch_free(&b);

    /* byte packing: 50 overhead + 2 * (13 + 100) fits 300, a third does not */
    claim(&b, 100, 300, true);
    cr_assert_eq(b.n_chunks, 2);
    cr_assert_eq(b.chunks[0].seq, 4, "the next claim continues in order");
    pipe_batch_free(&b);
    /* one chunk is always taken, even past the limit */
    claim(&b, 100, 10, true);
    cr_assert_eq(b.n_chunks, 1);
    pipe_batch_free(&b);
}

Test(pipeline, priority_then_age)
{
    char low[JOB_ID_LEN + 1], high[JOB_ID_LEN + 1];
    make_job(2, 0, low);
    make_job(2, 5, high);
    struct pipe_batch b;
    claim(&b, 10, 100000, true);
    cr_assert_str_eq(b.job_id, high);
    pipe_batch_free(&b);
    claim(&b, 10, 100000, true);
    cr_assert_str_eq(b.job_id, low);
    pipe_batch_free(&b);
    claim(&b, 10, 100000, false);
}

static float vec[128];

Test(pipeline, results_retries_and_finish)
{
    char id[JOB_ID_LEN + 1], err[512];
    make_job(4, 0, id);
    struct pipe_batch b;
    claim(&b, 10, 100000, true);
    cr_assert(pipe_submitted(db.conn, b.id, "batches/abc", 0, err, sizeof(err)), "%s", err);
    struct pipe_batch due;
    bool found;
    cr_assert(pipe_claim_due(db.conn, "w2", 60000, &due, &found, err, sizeof(err)), "%s", err);
    cr_assert(found);
    cr_assert_str_eq(due.gemini_name, "batches/abc");
    cr_assert_str_eq(due.state, "submitted");
    struct pipe_batch again;
    cr_assert(pipe_claim_due(db.conn, "w3", 60000, &again, &found, err, sizeof(err)), "%s", err);
    cr_assert_not(found, "a leased batch is not handed out twice");

    for (int i = 0; i < 128; i++)
        vec[i] = (float)(i + 1);
    /* seq 0, 1 succeed; 2 fails; 3 gets no result */
    struct pipe_result r[3] = {
        {0, vec, 128, NULL, 7}, {1, vec, 128, NULL, -1}, {2, NULL, 0, "code 13", -1}};
    size_t stored, requeued, failed;
    cr_assert(
        pipe_store_results(db.conn, &due, r, 3, 3, &stored, &requeued, &failed, err, sizeof(err)),
        "%s", err);
    cr_assert_eq(stored, 2);
    cr_assert_eq(requeued, 2);
    cr_assert_eq(failed, 0);
    cr_assert_eq(job_col(id, "chunks_succeeded"), 2);
    cr_assert_eq(job_col(id, "chunks_pending"), 2);
    cr_assert_eq(job_col(id, "chunks_in_flight"), 0);
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT polls FROM batches WHERE id = %lld", (long long)due.id);
    cr_assert_eq(dbh_scalar(&db, sql), due.polls + 1, "the GET that found it done is a poll");
    snprintf(sql, sizeof(sql),
             "SELECT length(embedding) FROM chunks WHERE job_id = '%s' AND seq = 0", id);
    cr_assert_eq(dbh_scalar(&db, sql), 128 * 4, "float32 bytes");
    /* normalised: check the stored vector's norm */
    snprintf(sql, sizeof(sql), "SELECT embedding FROM chunks WHERE job_id = '%s' AND seq = 1", id);
    PGresult *res = PQexecParams(db.conn, sql, 0, NULL, NULL, NULL, NULL, 1);
    cr_assert_eq(PQgetlength(res, 0, 0), 512);
    double s = 0;
    for (int i = 0; i < 128; i++) {
        float f;
        memcpy(&f, PQgetvalue(res, 0, 0) + 4 * i, 4);
        s += (double)f * (double)f;
    }
    PQclear(res);
    cr_assert(fabs(sqrt(s) - 1.0) < 1e-6, "norm %f", sqrt(s));
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM chunks WHERE job_id = '%s' AND state = 0 AND attempts = 1"
             " AND error IS NOT NULL",
             id);
    cr_assert_eq(dbh_scalar(&db, sql), 2, "failed and missing items go back with their error");
    pipe_batch_free(&b);

    /* the retry: both fail again with max_attempts 2 → failed for good; the job completes */
    claim(&b, 10, 100000, true);
    cr_assert_eq(b.n_chunks, 2);
    struct pipe_result r2[2] = {{2, NULL, 0, "code 3: bad", -1}, {3, NULL, 0, "code 3: bad", -1}};
    cr_assert(
        pipe_store_results(db.conn, &b, r2, 2, 2, &stored, &requeued, &failed, err, sizeof(err)),
        "%s", err);
    cr_assert_eq(failed, 2);
    cr_assert_eq(job_col(id, "chunks_failed"), 2);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM jobs WHERE id = '%s' AND state = 'completed_with_errors'"
             " AND finished_at IS NOT NULL",
             id);
    cr_assert_eq(dbh_scalar(&db, sql), 1);
    pipe_batch_free(&b);
}

Test(pipeline, release_and_cancel)
{
    char id[JOB_ID_LEN + 1], err[512];
    make_job(3, 0, id);
    struct pipe_batch b;
    claim(&b, 10, 100000, true);
    cr_assert(pipe_release(db.conn, &b, "expired", "the batch expired", true, 4, err, sizeof(err)),
              "%s", err);
    cr_assert_eq(job_col(id, "chunks_pending"), 3);
    cr_assert_eq(job_col(id, "chunks_in_flight"), 0);
    cr_assert_eq(dbh_scalar(&db, "SELECT count(*) FROM batches WHERE state = 'expired'"), 1);
    pipe_batch_free(&b);

    claim(&b, 2, 100000, true);
    cr_assert_eq(b.n_chunks, 2);
    cr_assert_eq(jobs_cancel(db.conn, key_id, id, err, sizeof(err)), JOBS_OK);
    cr_assert_eq(job_col(id, "chunks_failed"), 1, "the pending chunk is dropped at once");
    char names[4][128];
    int64_t ids[4];
    size_t n;
    cr_assert(pipe_cancelled_open(db.conn, names, ids, 4, &n, err, sizeof(err)), "%s", err);
    cr_assert_eq(n, 1, "the in-flight batch still has to be cancelled at Google");
    cr_assert(pipe_release(db.conn, &b, "cancelled", "cancelled", false, 4, err, sizeof(err)), "%s",
              err);
    cr_assert_eq(job_col(id, "chunks_failed"), 3);
    cr_assert_eq(job_col(id, "chunks_in_flight"), 0);
    char sql[200];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM jobs WHERE id = '%s' AND state = 'cancelled'",
             id);
    cr_assert_eq(dbh_scalar(&db, sql), 1, "a cancelled job stays cancelled");
    cr_assert(pipe_cancelled_open(db.conn, names, ids, 4, &n, err, sizeof(err)), "%s", err);
    cr_assert_eq(n, 0);
    pipe_batch_free(&b);
}

Test(pipeline, all_failed_means_failed)
{
    char id[JOB_ID_LEN + 1], err[512];
    make_job(2, 0, id);
    struct pipe_batch b;
    claim(&b, 10, 100000, true);
    struct pipe_result r[2] = {{0, NULL, 0, "code 3", -1}, {1, NULL, 0, "code 3", -1}};
    size_t stored, requeued, failed;
    cr_assert(
        pipe_store_results(db.conn, &b, r, 2, 1, &stored, &requeued, &failed, err, sizeof(err)),
        "%s", err);
    cr_assert_eq(failed, 2);
    char sql[200];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM jobs WHERE id = '%s' AND state = 'failed'",
             id);
    cr_assert_eq(dbh_scalar(&db, sql), 1, "no chunk succeeded: the job failed");
    pipe_batch_free(&b);
}

/* jobs_get remembers a job's batch summary while its row is unchanged: every
 * change to the batches must show at the next read all the same. */
Test(pipeline, status_sees_every_batch_change)
{
    char id[JOB_ID_LEN + 1], err[512];
    make_job(4, 0, id);
    struct job_row j;
    cr_assert_eq(jobs_get(db.conn, key_id, id, &j, err, sizeof(err)), JOBS_OK, "%s", err);
    cr_assert_eq(j.batches[0] + j.batches[1], 0);
    struct pipe_batch b;
    claim(&b, 10, 1 << 20, true);
    for (int k = 0; k < 2; k++) { /* the second read comes from the cache */
        cr_assert_eq(jobs_get(db.conn, key_id, id, &j, err, sizeof(err)), JOBS_OK, "%s", err);
        cr_assert_eq(j.batches[0], 1, "one batch in intent");
        cr_assert_eq(j.google_batches, 0);
    }
    cr_assert(pipe_submitted(db.conn, b.id, "batches/abc", 0, err, sizeof(err)), "%s", err);
    cr_assert_eq(jobs_get(db.conn, key_id, id, &j, err, sizeof(err)), JOBS_OK, "%s", err);
    cr_assert_eq(j.batches[0], 0, "no batch left in intent");
    cr_assert_eq(j.batches[1], 1, "the submission shows at once");
    cr_assert_eq(j.google_batches, 1);
    cr_assert_eq(j.texts_sent, 4);
    /* a change made behind the row's back is not seen until the row moves:
     * that is why every writer moves it (this checks the test, not embedd) */
    char sql[160];
    snprintf(sql, sizeof(sql),
             "WITH u AS (UPDATE batches SET state = 'failed' WHERE id = %lld RETURNING 1)"
             " SELECT count(*) FROM u",
             (long long)b.id);
    cr_assert_eq(dbh_scalar(&db, sql), 1);
    snprintf(sql, sizeof(sql),
             "WITH u AS (UPDATE jobs SET last_activity_at = now() WHERE id = '%s' RETURNING 1)"
             " SELECT count(*) FROM u",
             id);
    cr_assert_eq(dbh_scalar(&db, sql), 1);
    cr_assert_eq(jobs_get(db.conn, key_id, id, &j, err, sizeof(err)), JOBS_OK, "%s", err);
    cr_assert_eq(j.batches[3], 1, "failed");
    pipe_batch_free(&b);
}

/* Jobs of one priority take turns: the one claimed longest ago goes next,
 * so a job accepted behind a large one gets its first batch at once. */
Test(pipeline, jobs_of_one_priority_take_turns)
{
    char a[JOB_ID_LEN + 1], b2[JOB_ID_LEN + 1], c3[JOB_ID_LEN + 1];
    make_job(10, 0, a);
    make_job(10, 0, b2);
    make_job(10, 0, c3);
    const char *want[] = {a, b2, c3, a, b2, c3};
    for (int i = 0; i < 6; i++) {
        struct pipe_batch b;
        claim(&b, 2, 100000, true);
        cr_assert_str_eq(b.job_id, want[i], "claim %d", i);
        pipe_batch_free(&b);
    }
}

/* Two claims on one job at once (two connections, the first not yet
 * committed) take disjoint chunks, and the counters add up. */
Test(pipeline, concurrent_claims_share_a_job)
{
    char id[JOB_ID_LEN + 1], err[512];
    make_job(10, 0, id);
    PGconn *other = PQconnectdb(db.url);
    cr_assert_eq(PQstatus(other), CONNECTION_OK);
    /* hold the first four pending rows as an open claim would */
    PGresult *r = PQexec(other, "BEGIN");
    PQclear(r);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT seq FROM chunks WHERE job_id = '%s' AND state = 0 ORDER BY seq LIMIT 4"
             " FOR UPDATE",
             id);
    r = PQexec(other, sql);
    cr_assert_eq(PQntuples(r), 4);
    PQclear(r);
    struct pipe_batch b;
    claim(&b, 3, 100000, true);
    cr_assert_eq(b.chunks[0].seq, 4, "rows held by another claim are skipped, not waited for");
    cr_assert_eq(b.n_chunks, 3);
    pipe_batch_free(&b);
    PQclear(PQexec(other, "ROLLBACK"));
    /* the cursor did not jump over the rows the other claim let go */
    claim(&b, 10, 100000, true);
    cr_assert_eq(b.chunks[0].seq, 0);
    cr_assert_eq(b.n_chunks, 7, "0-3 and 7-9");
    cr_assert_eq(b.chunks[4].seq, 7);
    pipe_batch_free(&b);
    cr_assert_eq(job_col(id, "chunks_pending"), 0);
    cr_assert_eq(job_col(id, "chunks_in_flight"), 10);
    PQfinish(other);
    (void)err;
}

/* A requeued chunk below the cursor is claimed next; a cursor past every
 * pending chunk (a claim that rolled back) still finds them. */
Test(pipeline, claim_cursor_moves_back_and_recovers)
{
    char id[JOB_ID_LEN + 1], err[512];
    make_job(6, 0, id);
    struct pipe_batch b;
    claim(&b, 2, 100000, true); /* 0, 1 */
    cr_assert_eq(job_col(id, "claim_seq"), 2);
    struct pipe_batch b2;
    claim(&b2, 2, 100000, true); /* 2, 3 */
    cr_assert_eq(job_col(id, "claim_seq"), 4);
    cr_assert(pipe_release(db.conn, &b, "failed", "the batch failed", true, 4, err, sizeof(err)),
              "%s", err);
    cr_assert_eq(job_col(id, "claim_seq"), 0, "a requeue moves the cursor back");
    pipe_batch_free(&b);
    claim(&b, 10, 100000, true);
    cr_assert_eq(b.chunks[0].seq, 0);
    cr_assert_eq(b.n_chunks, 4, "0, 1, 4, 5");
    pipe_batch_free(&b);
    cr_assert(pipe_release(db.conn, &b2, "failed", "the batch failed", true, 4, err, sizeof(err)),
              "%s", err);
    pipe_batch_free(&b2);
    char sql[160];
    snprintf(sql, sizeof(sql), "UPDATE jobs SET claim_seq = 6 WHERE id = '%s'", id);
    PQclear(PQexec(db.conn, sql));
    claim(&b, 10, 100000, true);
    cr_assert_eq(b.n_chunks, 2, "found from the start again");
    cr_assert_eq(b.chunks[0].seq, 2);
    pipe_batch_free(&b);
}

/* No new batch while max_open are open at Google. */
Test(pipeline, open_batch_limit)
{
    char id[JOB_ID_LEN + 1], err[512];
    make_job(6, 0, id);
    struct pipe_claim_opts o = {.owner = "w1",
                                .lease_ms = 60000,
                                .max_items = 2,
                                .max_bytes = 100000,
                                .overhead_bytes = 50,
                                .size = size_of,
                                .inline_max_bytes = 100000,
                                .max_open = 2};
    struct pipe_batch b[3];
    bool found;
    int64_t ms;
    for (int i = 0; i < 3; i++) {
        cr_assert(pipe_claim(db.conn, &o, &b[i], &found, &ms, err, sizeof(err)), "%s", err);
        cr_assert_eq(found, i < 2, "claim %d", i);
    }
    cr_assert(pipe_release(db.conn, &b[0], "failed", "x", true, 4, err, sizeof(err)), "%s", err);
    pipe_batch_free(&b[0]);
    cr_assert(pipe_claim(db.conn, &o, &b[0], &found, &ms, err, sizeof(err)), "%s", err);
    cr_assert(found, "a slot freed up");
    for (int i = 0; i < 2; i++)
        pipe_batch_free(&b[i]);
}

/* The transport follows the size: a job small enough goes interactive; a
 * batch over inline_max_bytes goes as a file. */
Test(pipeline, transport_by_size)
{
    char small[JOB_ID_LEN + 1], big[JOB_ID_LEN + 1], err[512];
    make_job(3, 1, small);
    make_job(20, 0, big);
    struct pipe_claim_opts o = {.owner = "w1",
                                .lease_ms = 60000,
                                .max_items = 100,
                                .max_bytes = 1 << 20,
                                .overhead_bytes = 50,
                                .size = size_of,
                                .inline_max_bytes = 1000,
                                .sync_max_chunks = 5};
    struct pipe_batch b;
    bool found;
    int64_t ms;
    cr_assert(pipe_claim(db.conn, &o, &b, &found, &ms, err, sizeof(err)) && found, "%s", err);
    cr_assert_str_eq(b.job_id, small);
    cr_assert_str_eq(b.transport, "sync");
    pipe_batch_free(&b);
    cr_assert(pipe_claim(db.conn, &o, &b, &found, &ms, err, sizeof(err)) && found, "%s", err);
    cr_assert_str_eq(b.transport, "file", "20 * 113 + 50 bytes > 1000");
    cr_assert_eq(b.request_bytes, 50 + 20 * 113 + 10, "texts 0-9 are 13 bytes, 10-19 are 14");
    pipe_batch_free(&b);
    cr_assert_eq(dbh_scalar(&db, "SELECT count(*) FROM batches WHERE transport = 'file'"), 1);
}

/* The claim's reads are index scans that stop after the batch, whatever the
 * planner believes about the tables: here 60,000 chunks stored and never
 * analysed, and the plans asked for inside the claim's settings. */
Test(pipeline, claim_plans_cost_the_batch)
{
    char id[JOB_ID_LEN + 1];
    make_job(60000, 0, id);
    PQclear(PQexec(db.conn, pipe_claim_begin_sql));
    char sql[1024];
    PGresult *r;
    const char *plans[2] = {pipe_claim_job_sql, pipe_claim_chunks_sql};
    for (int i = 0; i < 2; i++) {
        snprintf(sql, sizeof(sql), "EXPLAIN %s", plans[i]);
        const char *v[3] = {id, "0", "10000"};
        r = PQexecParams(db.conn, sql, i == 0 ? 0 : 3, NULL, i == 0 ? NULL : v, NULL, NULL, 0);
        cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQerrorMessage(db.conn));
        char plan[4096] = "";
        for (int k = 0; k < PQntuples(r); k++) {
            strncat(plan, PQgetvalue(r, k, 0), sizeof(plan) - strlen(plan) - 2);
            strncat(plan, "\n", sizeof(plan) - strlen(plan) - 1);
        }
        PQclear(r);
        cr_assert_null(strstr(plan, "Seq Scan"), "%s", plan);
        cr_assert_null(strstr(plan, "Sort"), "rows come in index order: %s", plan);
        cr_assert_not_null(strstr(plan, "Limit"), "%s", plan);
    }
    PQclear(PQexec(db.conn, "ROLLBACK"));
    cr_assert(strstr(pipe_claim_chunks_sql, "FOR UPDATE SKIP LOCKED") != NULL);
}

/* A batch of more chunks than inline_max_items goes as a file too, whatever its bytes. */
Test(pipeline, transport_by_items)
{
    char id[JOB_ID_LEN + 1], err[512];
    make_job(20, 0, id);
    struct pipe_claim_opts o = {.owner = "w1",
                                .lease_ms = 60000,
                                .max_items = 12,
                                .max_bytes = 1 << 20,
                                .overhead_bytes = 50,
                                .size = size_of,
                                .inline_max_bytes = 1 << 20,
                                .inline_max_items = 10};
    struct pipe_batch b;
    bool found;
    int64_t ms;
    cr_assert(pipe_claim(db.conn, &o, &b, &found, &ms, err, sizeof(err)) && found, "%s", err);
    cr_assert_eq(b.n_chunks, 12);
    cr_assert_str_eq(b.transport, "file", "12 chunks > 10");
    pipe_batch_free(&b);
    cr_assert(pipe_claim(db.conn, &o, &b, &found, &ms, err, sizeof(err)) && found, "%s", err);
    cr_assert_eq(b.n_chunks, 8);
    cr_assert_str_eq(b.transport, "inline", "the job's last 8 fit inline");
    pipe_batch_free(&b);
}

static char *batch_text(int64_t id, const char *col)
{
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT coalesce(%s::text, '') FROM batches WHERE id = %lld", col,
             (long long)id);
    PGresult *r = PQexec(db.conn, sql);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK);
    char *v = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

static void expire_lease(int64_t id)
{
    char sql[160];
    snprintf(sql, sizeof(sql),
             "WITH u AS (UPDATE batches SET lease_until = now() - interval '1 second'"
             " WHERE id = %lld RETURNING 1) SELECT count(*) FROM u",
             (long long)id);
    cr_assert_eq(dbh_scalar(&db, sql), 1);
}

/* The writes of a file intent's steps happen only while the writer holds the
 * lease, and renew it; a worker that overran its lease writes nothing. */
Test(pipeline, file_steps_guarded_by_the_lease)
{
    char id[JOB_ID_LEN + 1], err[512];
    make_job(5, 0, id);
    struct pipe_batch b;
    claim(&b, 10, 100000, true); /* leased to "w1" */
    bool held = true;
    cr_assert(pipe_file_written(db.conn, b.id, "w2", 777, 60000, &held, err, sizeof(err)), "%s",
              err);
    cr_assert_not(held, "another owner writes nothing");
    cr_assert(pipe_file_written(db.conn, b.id, "w1", 777, 60000, &held, err, sizeof(err)), "%s",
              err);
    cr_assert(held);
    char *v = batch_text(b.id, "request_bytes");
    cr_assert_str_eq(v, "777", "the file's size is what a reused upload must measure");
    free(v);
    cr_assert(pipe_input_file(db.conn, b.id, "w1", "files/abc", 60000, &held, err, sizeof(err)),
              "%s", err);
    cr_assert(held);
    v = batch_text(b.id, "input_file");
    cr_assert_str_eq(v, "files/abc");
    free(v);
    cr_assert(pipe_file_written(db.conn, b.id, "w1", 5, 60000, &held, err, sizeof(err)), "%s", err);
    cr_assert_not(held, "no new JSONL while a complete file is recorded");

    /* the lease runs out: nothing is written any more, not even a renewal */
    expire_lease(b.id);
    cr_assert(pipe_renew_lease(db.conn, b.id, "w1", 60000, &held, err, sizeof(err)), "%s", err);
    cr_assert_not(held);
    cr_assert(pipe_input_file(db.conn, b.id, "w1", NULL, 60000, &held, err, sizeof(err)), "%s",
              err);
    cr_assert_not(held);
    v = batch_text(b.id, "input_file");
    cr_assert_str_eq(v, "files/abc", "unchanged");
    free(v);

    /* the new owner finds what was recorded, and may forget a file that is gone */
    struct pipe_batch due;
    bool found;
    cr_assert(pipe_claim_due(db.conn, "w2", 60000, &due, &found, err, sizeof(err)), "%s", err);
    cr_assert(found);
    cr_assert_str_eq(due.state, "intent");
    cr_assert_str_eq(due.input_file, "files/abc");
    cr_assert_eq(due.request_bytes, 777);
    cr_assert(pipe_renew_lease(db.conn, due.id, "w2", 60000, &held, err, sizeof(err)), "%s", err);
    cr_assert(held);
    cr_assert(pipe_input_file(db.conn, due.id, "w2", NULL, 60000, &held, err, sizeof(err)), "%s",
              err);
    cr_assert(held);
    v = batch_text(b.id, "input_file");
    cr_assert_str_eq(v, "");
    free(v);
    /* once submitted, the input file is no longer the intent's to change */
    cr_assert(pipe_submitted(db.conn, b.id, "batches/x", 0, err, sizeof(err)), "%s", err);
    cr_assert(pipe_input_file(db.conn, b.id, "w2", "files/z", 60000, &held, err, sizeof(err)), "%s",
              err);
    cr_assert_not(held, "the submission dropped the lease");
    pipe_batch_free(&due);
    pipe_batch_free(&b);
}

/* Results stored a slice at a time, each with the job's counters; a slice
 * stored twice counts once; the close deals with the chunks left. */
Test(pipeline, results_in_slices)
{
    char id[JOB_ID_LEN + 1], err[512];
    make_job(6, 0, id);
    struct pipe_batch b;
    claim(&b, 10, 100000, true);
    cr_assert(pipe_submitted(db.conn, b.id, "batches/s", 0, err, sizeof(err)), "%s", err);
    static float v[128];
    for (int i = 0; i < 128; i++)
        v[i] = 1.0f;
    struct pipe_result r1[3] = {
        {0, v, 128, NULL, -1}, {1, v, 128, NULL, -1}, {2, NULL, 0, "code 13", -1}};
    size_t stored, requeued, failed;
    for (int k = 0; k < 2; k++) {
        cr_assert(
            pipe_store_slice(db.conn, &b, r1, 3, 3, &stored, &requeued, &failed, err, sizeof(err)),
            "%s", err);
        cr_assert_eq(stored, k == 0 ? 2 : 0, "a slice stored twice counts once");
        cr_assert_eq(requeued, k == 0 ? 1 : 0);
        cr_assert_eq(job_col(id, "chunks_succeeded"), 2);
        cr_assert_eq(job_col(id, "chunks_pending"), 1);
        cr_assert_eq(job_col(id, "chunks_in_flight"), 3);
    }
    char *st = batch_text(b.id, "state");
    cr_assert_str_eq(st, "submitted", "the batch stays open between slices");
    free(st);
    struct pipe_result r2[2] = {{3, v, 128, NULL, -1}, {99, v, 128, NULL, -1}};
    cr_assert(
        pipe_store_slice(db.conn, &b, r2, 2, 3, &stored, &requeued, &failed, err, sizeof(err)),
        "%s", err);
    cr_assert_eq(stored, 1, "a key that is not the batch's stores nothing");
    /* the close: 4 and 5 got no result */
    cr_assert(
        pipe_store_results(db.conn, &b, NULL, 0, 3, &stored, &requeued, &failed, err, sizeof(err)),
        "%s", err);
    cr_assert_eq(stored, 0);
    cr_assert_eq(requeued, 2);
    cr_assert_eq(job_col(id, "chunks_succeeded"), 3);
    cr_assert_eq(job_col(id, "chunks_pending"), 3);
    cr_assert_eq(job_col(id, "chunks_in_flight"), 0);
    st = batch_text(b.id, "state");
    cr_assert_str_eq(st, "succeeded");
    free(st);
    pipe_batch_free(&b);
}

/* Bytes received add up; the results file is recorded; a batch can be found
 * by its displayName or its Google name. */
Test(pipeline, file_bookkeeping)
{
    char id[JOB_ID_LEN + 1], err[512];
    make_job(2, 0, id);
    struct pipe_batch b;
    claim(&b, 10, 100000, true);
    int64_t total = 0;
    cr_assert(pipe_add_response_bytes(db.conn, b.id, 500, &total, err, sizeof(err)), "%s", err);
    cr_assert(pipe_add_response_bytes(db.conn, b.id, 1200, &total, err, sizeof(err)), "%s", err);
    cr_assert_eq(total, 1700);
    struct pipe_batch_ref ref;
    cr_assert(pipe_batch_ref(db.conn, b.display_name, NULL, &ref, err, sizeof(err)), "%s", err);
    cr_assert(ref.found);
    cr_assert_str_eq(ref.state, "intent");
    cr_assert_str_eq(ref.gemini_name, "");
    cr_assert(pipe_submitted(db.conn, b.id, "batches/bk", 0, err, sizeof(err)), "%s", err);
    cr_assert(pipe_output_file(db.conn, b.id, "files/batch-bk", err, sizeof(err)), "%s", err);
    cr_assert(pipe_batch_ref(db.conn, NULL, "batches/bk", &ref, err, sizeof(err)), "%s", err);
    cr_assert(ref.found);
    cr_assert_str_eq(ref.state, "submitted");
    cr_assert_str_eq(ref.output_file, "files/batch-bk");
    cr_assert(pipe_batch_ref(db.conn, "embedd-none", NULL, &ref, err, sizeof(err)), "%s", err);
    cr_assert_not(ref.found);
    struct pipe_batch due;
    bool found;
    cr_assert(pipe_claim_due(db.conn, "w2", 60000, &due, &found, err, sizeof(err)), "%s", err);
    cr_assert(found);
    cr_assert_str_eq(due.output_file, "files/batch-bk");
    pipe_batch_free(&due);
    pipe_batch_free(&b);
}

/* A store of results touches the batch's rows by primary key, whatever the
 * planner believes: 60,000 chunks stored and never analysed. */
Test(pipeline, store_plans_cost_the_batch)
{
    char id[JOB_ID_LEN + 1];
    /* statistics of empty tables, as before a first large job */
    PQclear(PQexec(db.conn, "ANALYZE chunks, documents"));
    make_job(60000, 0, id);
    PQclear(PQexec(db.conn, pipe_store_begin_sql));
    char sql[4096];
    snprintf(sql, sizeof(sql), "EXPLAIN %s", pipe_store_vectors_sql);
    /* a batch of 1,000 results */
    struct buf seqs, vecs, toks;
    buf_init(&seqs, 1 << 20);
    buf_init(&vecs, 1 << 20);
    buf_init(&toks, 1 << 20);
    for (int i = 0; i < 1000; i++)
        cr_assert(buf_printf(&seqs, "%s%d", i ? "," : "{", i) &&
                  buf_printf(&vecs, "%s\\\\x00", i ? "," : "{") &&
                  buf_printf(&toks, "%s-1", i ? "," : "{"));
    cr_assert(buf_putc(&seqs, '}') && buf_putc(&vecs, '}') && buf_putc(&toks, '}'));
    const char *v[6] = {id, "1", seqs.data, vecs.data, toks.data, "t"};
    PGresult *r = PQexecParams(db.conn, sql, 6, NULL, v, NULL, NULL, 0);
    buf_cleanup(&seqs);
    buf_cleanup(&vecs);
    buf_cleanup(&toks);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQerrorMessage(db.conn));
    char plan[8192] = "";
    for (int k = 0; k < PQntuples(r); k++) {
        strncat(plan, PQgetvalue(r, k, 0), sizeof(plan) - strlen(plan) - 2);
        strncat(plan, "\n", sizeof(plan) - strlen(plan) - 1);
    }
    PQclear(r);
    PQclear(PQexec(db.conn, "ROLLBACK"));
    cr_assert_null(strstr(plan, "Seq Scan on chunks"), "%s", plan);
    cr_assert_null(strstr(plan, "Seq Scan on documents"), "%s", plan);
    cr_assert_null(strstr(plan, "Hash Join"), "%s", plan);
    /* each result finds its row (by key, in a subquery the planner keeps),
     * then the row is updated by its ctid: no scan of the job's or the
     * batch's rows per result */
    cr_assert_not_null(strstr(plan, "Tid Scan on chunks"), "%s", plan);
    cr_assert_not_null(strstr(plan, "Tid Scan on documents"), "%s", plan);
}
