/*
 * test_upgrade.c: the migrations that came with collections and later run on
 * a database that already holds work of the version before them (schema 3:
 * jobs, documents, chunks, batches as that version wrote them): the service
 * starts on it, migrates, serves the finished job's vectors bit for bit,
 * finishes the pending job through gemini-sim, and takes new work beside it.
 */
#include "harness.h"
#include "svch.h"

#include "util/buf.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define OLD_SCHEMA 3 /* the last migration before collections (0004) */
#define OLD_KEY    "ek_Upgrade0aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define DONE_JOB   "11111111-1111-4111-8111-111111111111"
#define OPEN_JOB   "22222222-2222-4222-8222-222222222222"
#define DIMS       128

static struct simh sim;
static struct svch svc;

static void sql(struct dbh *db, const char *q)
{
    PGresult *r = PQexec(db->conn, q);
    ExecStatusType st = PQresultStatus(r);
    cr_assert(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "%s: %s", q,
              PQerrorMessage(db->conn));
    PQclear(r);
}

/* The bytes of chunk seq's stored vector: float32 little-endian. */
static void old_vector(int seq, float v[DIMS])
{
    for (int k = 0; k < DIMS; k++)
        v[k] = (float)((k % 7) - 3) / (float)(seq + 2) + (float)k * 0.0001f;
}

/* The vector as an SQL bytea literal; out holds at least 2 * DIMS * 4 + 8 bytes. */
static void hex_vector(int seq, char *out)
{
    float v[DIMS];
    old_vector(seq, v);
    const unsigned char *b = (const unsigned char *)v;
    static const char hx[] = "0123456789abcdef";
    size_t n = 0;
    out[n++] = '\'', out[n++] = '\\', out[n++] = 'x';
    for (size_t i = 0; i < sizeof(v); i++)
        out[n++] = hx[b[i] >> 4], out[n++] = hx[b[i] & 15];
    out[n++] = '\'', out[n] = '\0';
}

/* Schema 3 from migrations/, then rows as the version of schema 3 wrote them. */
static void old_database(struct dbh *db)
{
    const char *src = getenv("EMBEDD_SOURCE_DIR");
    cr_assert(src, "EMBEDD_SOURCE_DIR is not set");
    static const char *const files[OLD_SCHEMA] = {"0001_api_keys.sql", "0002_jobs.sql",
                                                  "0003_claims_and_files.sql"};
    sql(db, "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())");
    for (int i = 0; i < OLD_SCHEMA; i++) {
        char path[512];
        snprintf(path, sizeof(path), "%s/migrations/%s", src, files[i]);
        FILE *f = fopen(path, "r");
        cr_assert(f, "cannot open %s", path);
        struct buf b;
        buf_init(&b, 1 << 20);
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
            cr_assert(buf_append(&b, chunk, n));
        fclose(f);
        cr_assert(buf_putc(&b, '\0'));
        sql(db, b.data);
        buf_cleanup(&b);
        char rec[256];
        snprintf(rec, sizeof(rec), "INSERT INTO schema_migrations VALUES (%d, '%.*s')", i + 1,
                 (int)(strlen(files[i]) - 9), files[i] + 5);
        sql(db, rec);
    }
    sql(db, "INSERT INTO api_keys (name, prefix, key_sha256) VALUES ('before the upgrade',"
            " left('" OLD_KEY "', 12), sha256('" OLD_KEY "'::bytea))");

    /* a finished job: 2 documents, 3 chunks with vectors, its batch done */
    sql(db, "INSERT INTO jobs (id, api_key_id, state, display_name, model, task_type,"
            " output_dimensionality, normalize, max_chars, overlap_chars, documents,"
            " chunks_total, chunks_pending, chunks_succeeded, token_estimate, started_at,"
            " finished_at, claim_seq, last_claim_at) VALUES ('" DONE_JOB "', 1, 'succeeded',"
            " 'old and done', 'gemini-embedding-001', 'RETRIEVAL_DOCUMENT', 128, true, 2000, 200,"
            " 2, 3, 0, 3, 30, now() - interval '1 hour', now() - interval '50 minutes', 3,"
            " now() - interval '55 minutes')");
    sql(db, "INSERT INTO documents (job_id, doc_index, doc_id, title, metadata, chars) VALUES"
            " ('" DONE_JOB "', 0, 'a', 'Alpha', '{\"k\":1}', 20),"
            " ('" DONE_JOB "', 1, 'b', NULL, NULL, 10)");
    sql(db, "INSERT INTO batches (job_id, display_name, state, gemini_name, gemini_state,"
            " n_chunks, request_bytes, submitted_at, finished_at, transport) VALUES ('" DONE_JOB
            "', 'embedd-old-1', 'succeeded', 'batches/old1', 'BATCH_STATE_SUCCEEDED', 3, 900,"
            " now() - interval '58 minutes', now() - interval '50 minutes', 'inline')");
    for (int seq = 0; seq < 3; seq++) {
        char hex[2 * DIMS * 4 + 8], q[2 * DIMS * 4 + 512];
        hex_vector(seq, hex);
        snprintf(q, sizeof(q),
                 "INSERT INTO chunks (job_id, seq, doc_index, chunk_index, char_start, char_end,"
                 " tokens, text, state, attempts, batch_id, embedding) VALUES ('" DONE_JOB
                 "', %d, %d, %d, 0, 10, 10, 'old text %d', 2, 1, 1, %s)",
                 seq, seq < 2 ? 0 : 1, seq < 2 ? seq : 0, seq, hex);
        sql(db, q);
    }

    /* a job still pending: 3 documents, 5 chunks, nothing claimed yet */
    sql(db, "INSERT INTO jobs (id, api_key_id, state, model, task_type, output_dimensionality,"
            " normalize, max_chars, overlap_chars, documents, chunks_total, chunks_pending,"
            " token_estimate) VALUES ('" OPEN_JOB "', 1, 'pending', 'gemini-embedding-001',"
            " 'RETRIEVAL_DOCUMENT', 128, true, 2000, 200, 3, 5, 5, 50)");
    sql(db, "INSERT INTO documents (job_id, doc_index, doc_id, title, chars) VALUES"
            " ('" OPEN_JOB "', 0, 'x', 'Ex', 40), ('" OPEN_JOB "', 1, 'y', NULL, 20),"
            " ('" OPEN_JOB "', 2, 'z', NULL, 20)");
    sql(db, "INSERT INTO chunks (job_id, seq, doc_index, chunk_index, char_start, char_end,"
            " tokens, text, text_json_len, title_json_len)"
            " SELECT '" OPEN_JOB "', s, d, c, 0, 20, 10, 'pending text number ' || s,"
            " octet_length('pending text number ' || s), CASE WHEN d = 0 THEN 2 ELSE -1 END"
            " FROM (VALUES (0, 0, 0), (1, 0, 1), (2, 1, 0), (3, 2, 0), (4, 2, 1)) v(s, d, c)");
}

static void start(void)
{
    static const char *const sf[] = {"--pending-ms=10", "--running-ms=20", NULL};
    simh_start(&sim, sf);
    static char flags[2][256];
    snprintf(flags[0], sizeof(flags[0]), "--gemini-base-url=%s", sim.base);
    snprintf(flags[1], sizeof(flags[1]), "--gemini-api-key=%s", SIMH_KEY);
    const char *argv[] = {
        flags[0], flags[1], "--poll-min-ms=20", "--poll-max-ms=200", "--sync-max-texts=0", NULL};
    svch_start_prepared(&svc, argv, old_database);
}

static void stop(void)
{
    svch_stop(&svc);
    simh_stop(&sim);
}

TestSuite(upgrade, .init = start, .fini = stop, .timeout = 300);

static json_object *get(const char *key, const char *path, long want)
{
    char url[512], auth[128];
    snprintf(url, sizeof(url), "%s%s", svc.base, path);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
    const char *hs[2] = {auth, NULL};
    struct simh_resp r;
    simh_req_url(&r, "GET", url, NULL, 0, hs);
    cr_assert_eq(r.status, want, "GET %s: %ld %s", path, r.status, r.body);
    json_object *o = simh_json(&r);
    simh_resp_free(&r);
    return o;
}

static json_object *wait_done(const char *key, const char *id)
{
    char path[96];
    snprintf(path, sizeof(path), "/v1/jobs/%s", id);
    int64_t deadline = simh_ms() + 60000;
    for (;;) {
        json_object *o = get(key, path, 200);
        const char *st = simh_str(o, "state");
        if (strcmp(st, "pending") && strcmp(st, "running"))
            return o;
        json_object_put(o);
        cr_assert(simh_ms() < deadline, "job %s did not finish", id);
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

Test(upgrade, work_from_before_the_upgrade_goes_on)
{
    char q[128];
    snprintf(q, sizeof(q), "SELECT max(version) FROM schema_migrations");
    cr_assert_gt(dbh_scalar(&svc.db, q), OLD_SCHEMA, "the service migrated the old database");

    /* the finished job: as it was, its vectors bit for bit */
    json_object *j = get(OLD_KEY, "/v1/jobs/" DONE_JOB, 200);
    cr_assert_str_eq(simh_str(j, "state"), "succeeded");
    cr_assert_eq(json_object_get_int(simh_get(j, "stats.chunks.succeeded")), 3);
    cr_assert_eq(json_object_get_int(simh_get(j, "stats.chunks.reused")), 0);
    cr_assert_not_null(simh_get(j, "cost"), "old jobs report a cost too");
    json_object_put(j);
    j = get(OLD_KEY, "/v1/jobs/" DONE_JOB "/results?encoding=base64", 200);
    json_object *res = simh_get(j, "results");
    cr_assert_eq(json_object_array_length(res), 3);
    for (int seq = 0; seq < 3; seq++) {
        json_object *row = json_object_array_get_idx(res, (size_t)seq);
        float v[DIMS];
        old_vector(seq, v);
        unsigned char raw[DIMS * 4 + 4];
        const char *b64 = json_object_get_string(json_object_object_get(row, "embedding"));
        size_t n = simh_b64_decode(b64, raw, sizeof(raw));
        cr_assert_eq(n, sizeof(v), "chunk %d: %zu bytes", seq, n);
        cr_assert(memcmp(raw, v, sizeof(v)) == 0, "chunk %d: the stored vector, unchanged", seq);
    }
    cr_assert_str_eq(simh_str(json_object_array_get_idx(res, 0), "document_id"), "a");
    json_object_put(j);

    /* the pending job: finished through Google (the simulator) after the upgrade */
    j = wait_done(OLD_KEY, OPEN_JOB);
    cr_assert_str_eq(simh_str(j, "state"), "succeeded", "the old pending job finishes");
    cr_assert_eq(json_object_get_int(simh_get(j, "stats.chunks.succeeded")), 5);
    json_object_put(j);
    cr_assert_eq(simh_stat(&sim, "texts_received"), 5, "each old chunk sent once");
    j = get(OLD_KEY, "/v1/jobs/" OPEN_JOB "/results", 200);
    res = simh_get(j, "results");
    cr_assert_eq(json_object_array_length(res), 5);
    for (size_t i = 0; i < 5; i++)
        cr_assert_eq(json_object_array_length(
                         json_object_object_get(json_object_array_get_idx(res, i), "embedding")),
                     DIMS);
    json_object_put(j);

    /* the old key takes new work of every kind beside the old jobs */
    json_object_put(get(OLD_KEY, "/v1/usage", 200));
    char url[256], auth[128];
    snprintf(url, sizeof(url), "%s/v1/collections", svc.base);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", OLD_KEY);
    const char *hs[3] = {auth, "Content-Type: application/json", NULL};
    const char *cb = "{\"name\":\"after\",\"output_dimensionality\":128}";
    struct simh_resp r;
    simh_req_url(&r, "POST", url, cb, strlen(cb), hs);
    cr_assert_eq(r.status, 201, "%s", r.body);
    json_object *c = simh_json(&r);
    simh_resp_free(&r);
    char body[512];
    snprintf(body, sizeof(body),
             "{\"collection\":\"%s\",\"documents\":[{\"id\":\"n1\",\"text\":\"new text\"},"
             "{\"id\":\"n2\",\"text\":\"pending text number 3\"}]}",
             simh_str(c, "id"));
    json_object_put(c);
    snprintf(url, sizeof(url), "%s/v1/jobs", svc.base);
    simh_req_url(&r, "POST", url, body, strlen(body), hs);
    cr_assert_eq(r.status, 202, "%s", r.body);
    json_object *nj = simh_json(&r);
    simh_resp_free(&r);
    j = wait_done(OLD_KEY, simh_str(nj, "id"));
    cr_assert_str_eq(simh_str(j, "state"), "succeeded");
    cr_assert_eq(json_object_get_int(simh_get(j, "documents.new")), 2);
    json_object_put(j);
    json_object_put(nj);
    json_object *l = get(OLD_KEY, "/v1/jobs", 200);
    cr_assert_eq(json_object_array_length(simh_get(l, "jobs")), 3);
    json_object_put(l);
}
