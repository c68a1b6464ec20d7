/* test_collections.c: collections in the store: upserts by document id, versions that become
 * current when their last vector is stored, content-hash reuse within one API key. */
#include "dbh.h"
#include "store/collections.h"
#include "store/jobs.h"
#include "store/jobs_ingest.h"
#include "store/keys.h"
#include "store/migrate.h"
#include "store/pipeline.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct dbh db;
static int64_t key_id, other_key;
static float vec[128];

static void setup(void)
{
    char err[512], key[KEY_LEN + 1];
    int applied;
    dbh_create(&db);
    cr_assert(migrate_run(db.conn, &applied, err, sizeof(err)), "%s", err);
    cr_assert(keys_create(db.conn, "t", key, &key_id, err, sizeof(err)), "%s", err);
    cr_assert(keys_create(db.conn, "u", key, &other_key, err, sizeof(err)), "%s", err);
    for (int i = 0; i < 128; i++)
        vec[i] = (float)(i + 1) / 128.0f;
}

static void teardown(void)
{
    dbh_drop(&db);
}

TestSuite(collections, .init = setup, .fini = teardown, .timeout = 120);

static void make_coll(int64_t key, const char *name, int dims, char id[JOB_ID_LEN + 1])
{
    char err[512];
    struct coll_spec s = {
        key,  name, "gemini-embedding-001", dims, "RETRIEVAL_DOCUMENT", "RETRIEVAL_QUERY", true,
        2000, 0};
    cr_assert_eq(coll_create(db.conn, &s, id, err, sizeof(err)), JOBS_OK, "%s", err);
}

/* A job of n documents "d<i>" whose text is "<prefix> text <i>" (one chunk each). */
static void upsert(int64_t key, const char *coll, int dims, int n, const char *prefix,
                   const char *const *deletes, size_t n_del, char id[JOB_ID_LEN + 1])
{
    char err[512];
    struct job_spec spec = {
        key, NULL, "gemini-embedding-001", "RETRIEVAL_DOCUMENT", dims, true, 0, 2000, 0, coll};
    struct jobs_ingest *in = jobs_ingest_begin(db.conn, &spec, err, sizeof(err));
    cr_assert_not_null(in, "%s", err);
    size_t missing = 0;
    cr_assert_eq(jobs_ingest_delete(in, deletes, n_del, &missing, err, sizeof(err)), JOBS_OK, "%s",
                 err);
    for (int i = 0; i < n; i++) {
        char did[16], text[64];
        snprintf(did, sizeof(did), "d%d", i);
        snprintf(text, sizeof(text), "%s text %d", prefix, i);
        struct ingest_doc d = {did, strlen(did), NULL, 0, NULL, text, strlen(text)};
        size_t dup;
        cr_assert_eq(jobs_ingest_add(in, &d, &dup, err, sizeof(err)), JOBS_OK, "%s", err);
    }
    cr_assert(jobs_ingest_finish(in, id, err, sizeof(err)), "%s", err);
}

/* The value of sql with %s replaced by a (an id; ids never hold a quote). */
static long long q1(const char *sql, const char *a)
{
    char out[512];
    const char *p = strstr(sql, "%s");
    cr_assert_not_null(p);
    snprintf(out, sizeof(out), "%.*s%s%s", (int)(p - sql), sql, a, p + 2);
    return dbh_scalar(&db, out);
}

static size_t size_of(const struct pipe_batch *b, const struct pipe_chunk *c, void *arg)
{
    (void)b;
    (void)arg;
    return (size_t)c->text_json_len + 100;
}

/* Claim everything pending and store a vector for every chunk. */
static void embed_all(void)
{
    char err[512];
    for (;;) {
        struct pipe_batch b;
        bool found;
        int64_t ms;
        struct pipe_claim_opts o = {.owner = "w",
                                    .lease_ms = 60000,
                                    .max_items = 1000,
                                    .max_bytes = 1 << 24,
                                    .overhead_bytes = 50,
                                    .size = size_of,
                                    .inline_max_bytes = 1 << 24};
        cr_assert(pipe_claim(db.conn, &o, &b, &found, &ms, err, sizeof(err)), "%s", err);
        if (!found)
            return;
        struct pipe_result *r = calloc(b.n_chunks, sizeof(*r));
        for (size_t i = 0; i < b.n_chunks; i++)
            r[i] = (struct pipe_result){b.chunks[i].seq, vec, 128, NULL, 5};
        size_t stored, requeued, failed;
        cr_assert(pipe_store_results(db.conn, &b, r, b.n_chunks, 3, &stored, &requeued, &failed,
                                     err, sizeof(err)),
                  "%s", err);
        cr_assert_eq(stored, b.n_chunks);
        free(r);
        pipe_batch_free(&b);
    }
}

Test(collections, names_are_unique_per_key)
{
    char a[JOB_ID_LEN + 1], b[JOB_ID_LEN + 1], err[512];
    make_coll(key_id, "kb", 128, a);
    struct coll_spec s = {
        key_id, "kb", "gemini-embedding-001", 768, "RETRIEVAL_DOCUMENT", "RETRIEVAL_QUERY", true,
        2000,   0};
    cr_assert_eq(coll_create(db.conn, &s, b, err, sizeof(err)), JOBS_CONFLICT);
    s.key_id = other_key;
    cr_assert_eq(coll_create(db.conn, &s, b, err, sizeof(err)), JOBS_OK, "another key may");
    struct coll_row row;
    cr_assert_eq(coll_get(db.conn, other_key, a, &row, err, sizeof(err)), JOBS_NOT_FOUND);
    cr_assert_eq(coll_get(db.conn, key_id, a, &row, err, sizeof(err)), JOBS_OK);
    cr_assert_str_eq(row.name, "kb");
    cr_assert_eq(row.output_dimensionality, 128);
}

/* First upsert: every document new; versions become current with their last vector. A
 * resubmission unchanged: no chunk, the job succeeds at once. One document edited: only its
 * chunk is new; until it has its vector the old version stays current. */
Test(collections, upserts_send_only_what_changed)
{
    char coll[JOB_ID_LEN + 1], j1[JOB_ID_LEN + 1], j2[JOB_ID_LEN + 1], j3[JOB_ID_LEN + 1];
    make_coll(key_id, "kb", 128, coll);
    upsert(key_id, coll, 128, 20, "v1", NULL, 0, j1);
    cr_assert_eq(q1("SELECT chunks_total FROM jobs WHERE id = '%s'", j1), 20);
    cr_assert_eq(q1("SELECT documents_new FROM jobs WHERE id = '%s'", j1), 20);
    cr_assert_eq(q1("SELECT count(*) FROM collection_documents WHERE collection_id = '%s'"
                    " AND version = 0 AND next_job_id IS NOT NULL",
                    coll),
                 20, "not current before their vectors");
    embed_all();
    cr_assert_eq(q1("SELECT count(*) FROM collection_documents WHERE collection_id = '%s'"
                    " AND version = 1 AND next_job_id IS NULL",
                    coll),
                 20);
    cr_assert_eq(q1("SELECT documents FROM collections WHERE id = '%s'", coll), 20);
    cr_assert_eq(q1("SELECT count(*) FROM jobs WHERE id = '%s' AND state = 'succeeded'", j1), 1);

    upsert(key_id, coll, 128, 20, "v1", NULL, 0, j2);
    cr_assert_eq(q1("SELECT chunks_total FROM jobs WHERE id = '%s'", j2), 0);
    cr_assert_eq(q1("SELECT documents_unchanged FROM jobs WHERE id = '%s'", j2), 20);
    cr_assert_eq(q1("SELECT count(*) FROM jobs WHERE id = '%s' AND state = 'succeeded'", j2), 1,
                 "nothing to send: done at once");

    /* d3 changes: "v1 text 3" becomes "v2 text 3" for d3 only */
    char err[512];
    struct job_spec spec = {
        key_id, NULL, "gemini-embedding-001", "RETRIEVAL_DOCUMENT", 128, true, 0, 2000, 0, coll};
    struct jobs_ingest *in = jobs_ingest_begin(db.conn, &spec, err, sizeof(err));
    for (int i = 0; i < 20; i++) {
        char did[16], text[64];
        snprintf(did, sizeof(did), "d%d", i);
        snprintf(text, sizeof(text), "%s text %d", i == 3 ? "v2" : "v1", i);
        struct ingest_doc d = {did, strlen(did), NULL, 0, NULL, text, strlen(text)};
        size_t dup;
        cr_assert_eq(jobs_ingest_add(in, &d, &dup, err, sizeof(err)), JOBS_OK, "%s", err);
    }
    cr_assert(jobs_ingest_finish(in, j3, err, sizeof(err)), "%s", err);
    cr_assert_eq(q1("SELECT chunks_total FROM jobs WHERE id = '%s'", j3), 1);
    cr_assert_eq(q1("SELECT documents_updated FROM jobs WHERE id = '%s'", j3), 1);
    cr_assert_eq(q1("SELECT documents_unchanged FROM jobs WHERE id = '%s'", j3), 19);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM collection_documents WHERE collection_id = '%s' AND doc_id ="
             " 'd3' AND version = 1 AND job_id = '%s' AND next_job_id = '%s'",
             coll, j1, j3);
    cr_assert_eq(dbh_scalar(&db, sql), 1, "the old version stays current meanwhile");
    long long v0 = q1("SELECT version FROM collections WHERE id = '%s'", coll);
    embed_all();
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM collection_documents WHERE collection_id = '%s' AND doc_id ="
             " 'd3' AND version = 2 AND job_id = '%s' AND next_job_id IS NULL",
             coll, j3);
    cr_assert_eq(dbh_scalar(&db, sql), 1);
    cr_assert_gt(q1("SELECT version FROM collections WHERE id = '%s'", coll), v0);
}

/* A vector stored under a key fills every later chunk with the same identity under that key,
 * in any job, bit for bit; never under another key, nor in another space. */
Test(collections, reuse_within_a_key_and_a_space)
{
    char j1[JOB_ID_LEN + 1], j2[JOB_ID_LEN + 1], j3[JOB_ID_LEN + 1], j4[JOB_ID_LEN + 1];
    upsert(key_id, NULL, 128, 5, "same", NULL, 0, j1);
    embed_all();
    upsert(key_id, NULL, 128, 8, "same", NULL, 0, j2);
    cr_assert_eq(q1("SELECT chunks_reused FROM jobs WHERE id = '%s'", j2), 5);
    cr_assert_eq(q1("SELECT chunks_pending FROM jobs WHERE id = '%s'", j2), 3);
    cr_assert_eq(q1("SELECT tokens_reused FROM jobs WHERE id = '%s'", j2), 25, "Google's counts");
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM chunks a JOIN chunks b ON a.identity = b.identity"
             " WHERE a.job_id = '%s' AND b.job_id = '%s' AND a.embedding = b.embedding"
             " AND b.reused",
             j1, j2);
    cr_assert_eq(dbh_scalar(&db, sql), 5, "bit-identical");
    upsert(other_key, NULL, 128, 5, "same", NULL, 0, j3);
    cr_assert_eq(q1("SELECT chunks_reused FROM jobs WHERE id = '%s'", j3), 0, "another key");
    upsert(key_id, NULL, 256, 5, "same", NULL, 0, j4);
    cr_assert_eq(q1("SELECT chunks_reused FROM jobs WHERE id = '%s'", j4), 0, "another space");
}

/* A resubmitted collection reuses vectors of another collection of the same space. */
Test(collections, collections_of_one_space_share_reuse)
{
    char a[JOB_ID_LEN + 1], b[JOB_ID_LEN + 1], c3[JOB_ID_LEN + 1], j1[JOB_ID_LEN + 1],
        j2[JOB_ID_LEN + 1], j3[JOB_ID_LEN + 1];
    make_coll(key_id, "a", 128, a);
    make_coll(key_id, "b", 128, b);
    make_coll(key_id, "c", 256, c3);
    upsert(key_id, a, 128, 10, "shared", NULL, 0, j1);
    embed_all();
    upsert(key_id, b, 128, 10, "shared", NULL, 0, j2);
    cr_assert_eq(q1("SELECT chunks_reused FROM jobs WHERE id = '%s'", j2), 10);
    cr_assert_eq(q1("SELECT documents FROM collections WHERE id = '%s'", b), 10,
                 "all reused: current at once");
    upsert(key_id, c3, 256, 10, "shared", NULL, 0, j3);
    cr_assert_eq(q1("SELECT chunks_reused FROM jobs WHERE id = '%s'", j3), 0);
}

/* Deletes remove documents; an unknown id is refused. A version whose chunk fails keeps the
 * old one current and says why. */
Test(collections, deletes_and_failed_versions)
{
    char coll[JOB_ID_LEN + 1], j1[JOB_ID_LEN + 1], j2[JOB_ID_LEN + 1], err[512];
    make_coll(key_id, "kb", 128, coll);
    upsert(key_id, coll, 128, 4, "v1", NULL, 0, j1);
    embed_all();
    const char *del[2] = {"d1", "d2"};
    upsert(key_id, coll, 128, 0, "", del, 2, j2);
    cr_assert_eq(q1("SELECT documents_deleted FROM jobs WHERE id = '%s'", j2), 2);
    cr_assert_eq(q1("SELECT documents FROM collections WHERE id = '%s'", coll), 2);
    struct job_spec spec = {
        key_id, NULL, "gemini-embedding-001", "RETRIEVAL_DOCUMENT", 128, true, 0, 2000, 0, coll};
    struct jobs_ingest *in = jobs_ingest_begin(db.conn, &spec, err, sizeof(err));
    const char *bad[2] = {"d0", "nope"};
    size_t missing = 9;
    cr_assert_eq(jobs_ingest_delete(in, bad, 2, &missing, err, sizeof(err)), JOBS_NOT_FOUND);
    cr_assert_eq(missing, 1);
    jobs_ingest_abort(in);
    cr_assert_eq(coll_doc_delete(db.conn, key_id, coll, "d0", err, sizeof(err)), JOBS_OK);
    cr_assert_eq(coll_doc_delete(db.conn, key_id, coll, "d0", err, sizeof(err)), JOBS_NOT_FOUND);
    cr_assert_eq(coll_doc_delete(db.conn, other_key, coll, "d3", err, sizeof(err)), JOBS_NOT_FOUND);
    cr_assert_eq(q1("SELECT documents FROM collections WHERE id = '%s'", coll), 1);

    /* d3 gets a new version whose only chunk fails for good */
    char j3[JOB_ID_LEN + 1];
    upsert(key_id, coll, 128, 4, "v2", NULL, 0, j3); /* d0-d2 new again, d3 updated */
    struct pipe_batch b;
    bool found;
    int64_t ms;
    struct pipe_claim_opts o = {.owner = "w",
                                .lease_ms = 60000,
                                .max_items = 100,
                                .max_bytes = 1 << 24,
                                .overhead_bytes = 50,
                                .size = size_of,
                                .inline_max_bytes = 1 << 24};
    cr_assert(pipe_claim(db.conn, &o, &b, &found, &ms, err, sizeof(err)) && found, "%s", err);
    struct pipe_result r[4];
    for (size_t i = 0; i < 4; i++)
        r[i] = (struct pipe_result){b.chunks[i].seq, i == 3 ? NULL : vec, i == 3 ? 0 : 128,
                                    i == 3 ? "code 3: bad" : NULL, -1};
    size_t stored, requeued, failed;
    cr_assert(
        pipe_store_results(db.conn, &b, r, 4, 1, &stored, &requeued, &failed, err, sizeof(err)),
        "%s", err);
    cr_assert_eq(failed, 1);
    pipe_batch_free(&b);
    char sql[256];
    snprintf(
        sql, sizeof(sql),
        "SELECT count(*) FROM collection_documents WHERE collection_id = '%s' AND doc_id ="
        " 'd3' AND version = 1 AND job_id = '%s' AND next_job_id IS NULL AND error IS NOT NULL",
        coll, j1);
    cr_assert_eq(dbh_scalar(&db, sql), 1, "the old version stays, with the reason");
    cr_assert_eq(q1("SELECT documents FROM collections WHERE id = '%s'", coll), 4);

    /* deleting the collection cancels its active jobs and keeps them as history */
    char j4[JOB_ID_LEN + 1];
    upsert(key_id, coll, 128, 2, "v3", NULL, 0, j4);
    cr_assert_eq(coll_delete(db.conn, key_id, coll, err, sizeof(err)), JOBS_OK, "%s", err);
    cr_assert_eq(q1("SELECT count(*) FROM jobs WHERE id = '%s' AND state = 'cancelled'"
                    " AND collection_id IS NULL",
                    j4),
                 1);
    cr_assert_eq(q1("SELECT count(*) FROM collection_documents WHERE collection_id = '%s'", coll),
                 0);
}
