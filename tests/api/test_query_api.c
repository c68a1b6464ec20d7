/* test_query_api.c: POST /v1/collections/{id}/query and POST /v1/embed over real HTTP: a real
 * embedd serve with its workers embedding a collection through gemini-sim, query texts embedded
 * with the collection's query task type and compared with a reference computed here from the
 * simulator's documented vectors (double precision); vectors, filters, include, 3072 and 128
 * dimensions, deleted documents, another key's 404, and every kind of bad input. */
#include "chunker/chunker.h"
#include "harness.h"
#include "store/jobs.h"
#include "store/jobs_ingest.h"
#include "svch.h"

#include <criterion/criterion.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MODEL "gemini-embedding-001"

static struct simh sim;
static struct svch svc;

static void start_with(bool with_key)
{
    static char flags[4][256];
    const char *argv[8];
    int n = 0;
    if (with_key) {
        simh_start(&sim, NULL);
        snprintf(flags[0], sizeof(flags[0]), "--gemini-base-url=%s", sim.base);
        snprintf(flags[1], sizeof(flags[1]), "--gemini-api-key=%s", SIMH_KEY);
        argv[n++] = flags[0];
        argv[n++] = flags[1];
    }
    argv[n++] = "--poll-min-ms=20";
    argv[n++] = "--poll-max-ms=200";
    argv[n] = NULL;
    svch_start(&svc, argv);
}

static void start(void)
{
    start_with(true);
}

static void stop(void)
{
    svch_stop(&svc);
    if (sim.pid)
        simh_stop(&sim);
    memset(&sim, 0, sizeof(sim));
}

TestSuite(query, .init = start, .fini = stop, .timeout = 300);

static void call(struct simh_resp *r, const char *method, const char *path, const char *key,
                 const char *body)
{
    char url[512], auth[128];
    snprintf(url, sizeof(url), "%s%s", svc.base, path);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key ? key : svc.key);
    const char *hs[3] = {auth, body ? "Content-Type: application/json" : NULL, NULL};
    simh_req_url(r, method, url, body, body ? strlen(body) : 0, hs);
    cr_assert_eq(r->curl_code, 0, "%s %s: transfer failed", method, path);
}

static json_object *call_json(const char *method, const char *path, const char *body, long want)
{
    struct simh_resp r;
    call(&r, method, path, NULL, body);
    cr_assert_eq(r.status, want, "%s %s: %ld, want %ld: %.400s", method, path, r.status, want,
                 r.body);
    json_object *o = r.body && r.body[0] ? simh_json(&r) : NULL;
    simh_resp_free(&r);
    return o;
}

/* The simulator's vector for text, normalised as embedd stores it (dims < 3072). */
static void expected(const char *task, const char *text, int dims, bool normalize, float *out)
{
    simh_expected_vector(MODEL, 3072, task, text, strlen(text), dims, out);
    if (!normalize || dims == 3072)
        return;
    double s = 0;
    for (int i = 0; i < dims; i++)
        s += (double)out[i] * (double)out[i];
    double n = sqrt(s);
    for (int i = 0; i < dims; i++)
        out[i] = (float)((double)out[i] / n);
}

static double cosine(const float *a, const float *b, int dims)
{
    double d = 0, na = 0, nb = 0;
    for (int i = 0; i < dims; i++) {
        d += (double)a[i] * (double)b[i];
        na += (double)a[i] * (double)a[i];
        nb += (double)b[i] * (double)b[i];
    }
    return d / (sqrt(na) * sqrt(nb));
}

static void doc_text(int i, char *out, size_t n)
{
    snprintf(out, n, "Document %d is about topic %d and colour %d.", i, i % 17, i % 5);
}

/* A collection created through the API; returns its id. */
static void create_coll(const char *name, int dims, char id[64])
{
    char body[256];
    snprintf(body, sizeof(body), "{\"name\":\"%s\",\"output_dimensionality\":%d}", name, dims);
    json_object *o = call_json("POST", "/v1/collections", body, 201);
    snprintf(id, 64, "%s", simh_str(o, "id"));
    json_object_put(o);
}

/* Upsert documents [0, n) straight through the store (the job's "collection" option of POST
 * /v1/jobs lands separately), then wait for the service's workers to embed them. */
static void fill(const char *coll, int dims, int n)
{
    char err[512], job[JOB_ID_LEN + 1], text[256];
    int64_t key = dbh_scalar(&svc.db, "SELECT min(id) FROM api_keys");
    struct job_spec spec = {key, NULL, MODEL, "RETRIEVAL_DOCUMENT", dims, true, 0, 2000, 200, coll};
    struct jobs_ingest *in = jobs_ingest_begin(svc.db.conn, &spec, err, sizeof(err));
    cr_assert_not_null(in, "%s", err);
    for (int i = 0; i < n; i++) {
        char did[16], meta[64];
        snprintf(did, sizeof(did), "d%04d", i);
        snprintf(meta, sizeof(meta), "{\"colour\":%d,\"even\":%s}", i % 5,
                 i % 2 ? "false" : "true");
        doc_text(i, text, sizeof(text));
        struct ingest_doc d = {did, strlen(did), NULL, 0, meta, text, strlen(text)};
        size_t dup;
        cr_assert_eq(jobs_ingest_add(in, &d, &dup, err, sizeof(err)), JOBS_OK, "%s", err);
    }
    cr_assert(jobs_ingest_finish(in, job, err, sizeof(err)), "%s", err);
    char path[96];
    snprintf(path, sizeof(path), "/v1/jobs/%s", job);
    int64_t deadline = simh_ms() + 120000;
    for (;;) {
        json_object *o = call_json("GET", path, NULL, 200);
        bool done = strcmp(simh_str(o, "state"), "succeeded") == 0;
        json_object_put(o);
        if (done)
            break;
        cr_assert(simh_ms() < deadline, "job %s not done", job);
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

struct scored {
    int doc;
    double s;
};

static int cmp_scored(const void *pa, const void *pb)
{
    const struct scored *a = pa, *b = pb;
    if (a->s != b->s)
        return a->s > b->s ? -1 : 1;
    return a->doc - b->doc;
}

/* The reference ranking of documents [0, n) for query vector q (colour filter: -1 none). */
static size_t reference(const float *q, int dims, int n, int colour, struct scored *out)
{
    float *v = malloc(sizeof(float) * (size_t)dims);
    char text[256];
    size_t m = 0;
    for (int i = 0; i < n; i++) {
        if (colour >= 0 && i % 5 != colour)
            continue;
        doc_text(i, text, sizeof(text));
        expected("RETRIEVAL_DOCUMENT", text, dims, true, v);
        out[m++] = (struct scored){i, cosine(q, v, dims)};
    }
    free(v);
    qsort(out, m, sizeof(*out), cmp_scored);
    return m;
}

static void check_matches(json_object *matches, const struct scored *want, size_t n_want, int k)
{
    size_t expect = n_want < (size_t)k ? n_want : (size_t)k;
    cr_assert_eq(json_object_array_length(matches), expect);
    for (size_t i = 0; i < expect; i++) {
        json_object *m = json_object_array_get_idx(matches, i);
        char did[16];
        snprintf(did, sizeof(did), "d%04d", want[i].doc);
        cr_assert_str_eq(simh_str(m, "document_id"), did, "rank %zu", i);
        double s = json_object_get_double(simh_get(m, "score"));
        cr_assert(fabs(s - want[i].s) < 1e-12, "rank %zu: %.17g, want %.17g", i, s, want[i].s);
        cr_assert_eq(json_object_get_int(simh_get(m, "chunk_index")), 0);
        cr_assert_eq(json_object_get_int(simh_get(m, "char_start")), 0);
    }
}

static void query_path(const char *coll, char *out, size_t n)
{
    snprintf(out, n, "/v1/collections/%s/query", coll);
}

/* Query texts are embedded with RETRIEVAL_QUERY, normalised like the collection, and ranked
 * exactly; texts answer in order; the cost is the interactive price of their tokens. */
Test(query, texts_ranked_exactly)
{
    char coll[64], path[128];
    create_coll("kb", 256, coll);
    fill(coll, 256, 400);
    query_path(coll, path, sizeof(path));
    const char *qt[2] = {"which documents are about topic 3?", "colour 4"};
    json_object *o = call_json(
        "POST", path,
        "{\"texts\":[\"which documents are about topic 3?\",\"colour 4\"],\"top_k\":25}", 200);
    cr_assert_eq(json_object_array_length(simh_get(o, "results")), 2);
    struct scored *want = malloc(sizeof(*want) * 400);
    float q[256];
    int64_t tokens = 0;
    for (int i = 0; i < 2; i++) {
        expected("RETRIEVAL_QUERY", qt[i], 256, true, q);
        size_t n = reference(q, 256, 400, -1, want);
        json_object *r = json_object_array_get_idx(simh_get(o, "results"), (size_t)i);
        cr_assert_eq(json_object_get_int(simh_get(r, "index")), i);
        check_matches(simh_get(r, "matches"), want, n, 25);
        tokens += chunker_token_estimate(qt[i], strlen(qt[i]));
    }
    cr_assert_eq(json_object_get_int64(simh_get(o, "tokens")), tokens);
    cr_assert_eq(json_object_get_int64(simh_get(o, "cost.tokens.interactive")), tokens);
    cr_assert_str_eq(simh_str(o, "cost.tokens.source"), "estimate", "the simulator gives none");
    cr_assert_eq(json_object_get_int64(simh_get(o, "chunks_searched")), 400);
    json_object_put(o);

    /* one text, a metadata filter, and everything included */
    o = call_json("POST", path,
                  "{\"text\":\"colour 4\",\"top_k\":3,\"filter\":{\"metadata\":{\"colour\":2}},"
                  "\"include\":[\"text\",\"metadata\",\"embedding\"]}",
                  200);
    expected("RETRIEVAL_QUERY", "colour 4", 256, true, q);
    size_t n = reference(q, 256, 400, 2, want);
    json_object *m = simh_get(o, "results.0.matches");
    check_matches(m, want, n, 3);
    char text[256];
    doc_text(want[0].doc, text, sizeof(text));
    cr_assert_str_eq(simh_str(m, "0.text"), text);
    cr_assert_eq(json_object_get_int(simh_get(m, "0.metadata.colour")), 2);
    float v[256];
    expected("RETRIEVAL_DOCUMENT", text, 256, true, v);
    simh_assert_vector(simh_get(m, "0.embedding"), v, 256);
    json_object_put(o);
    free(want);
}

/* A vector query of the collection's dimension; the same vector through /v1/embed; a deleted
 * document is gone; another key gets 404. */
Test(query, vectors_embed_deletes_and_keys)
{
    char coll[64], path[256];
    create_coll("kb", 128, coll);
    fill(coll, 128, 200);
    query_path(coll, path, sizeof(path));
    char body[4096];
    snprintf(body, sizeof(body), "{\"collection\":\"%s\",\"texts\":[\"topic 5\",\"colour 1\"]}",
             coll);
    json_object *e = call_json("POST", "/v1/embed", body, 200);
    float q[128];
    expected("RETRIEVAL_QUERY", "topic 5", 128, true, q);
    simh_assert_vector(simh_get(e, "embeddings.0"), q, 128);
    cr_assert(json_object_get_boolean(simh_get(e, "normalized")));
    cr_assert_str_eq(simh_str(e, "task_type"), "RETRIEVAL_QUERY");
    /* the returned vector, sent back as a vector query */
    size_t len = (size_t)snprintf(body, sizeof(body), "{\"top_k\":200,\"vector\":%s}",
                                  json_object_to_json_string(simh_get(e, "embeddings.0")));
    cr_assert_lt(len, sizeof(body));
    json_object_put(e);
    json_object *o = call_json("POST", path, body, 200);
    struct scored want[200];
    size_t n = reference(q, 128, 200, -1, want);
    check_matches(simh_get(o, "results.0.matches"), want, n, 200);
    cr_assert_eq(json_object_get_int64(simh_get(o, "tokens")), 0);
    json_object_put(o);

    char del[160], first[16];
    snprintf(first, sizeof(first), "d%04d", want[0].doc);
    snprintf(del, sizeof(del), "/v1/collections/%s/documents/%s", coll, first);
    json_object_put(call_json("DELETE", del, NULL, 204));
    o = call_json("POST", path, body, 200);
    json_object *m = simh_get(o, "results.0.matches");
    cr_assert_eq(json_object_array_length(m), 199);
    for (size_t i = 0; i < 199; i++)
        cr_assert_str_neq(simh_str(json_object_array_get_idx(m, i), "document_id"), first);
    json_object_put(o);

    char other[64];
    svch_new_key(&svc, "other", other);
    struct simh_resp r;
    call(&r, "POST", path, other, "{\"text\":\"topic 5\"}");
    cr_assert_eq(r.status, 404, "%s", r.body);
    cr_assert(strstr(r.body, "collection_not_found"));
    simh_resp_free(&r);
    snprintf(body, sizeof(body), "{\"collection\":\"%s\",\"texts\":[\"x\"]}", coll);
    call(&r, "POST", "/v1/embed", other, body);
    cr_assert_eq(r.status, 404, "%s", r.body);
    simh_resp_free(&r);
}

/* 3072 dimensions: Google's vectors come back unit length and are stored as they are. */
Test(query, dims_3072)
{
    char coll[64], path[128];
    create_coll("big", 3072, coll);
    fill(coll, 3072, 40);
    query_path(coll, path, sizeof(path));
    json_object *o = call_json("POST", path, "{\"text\":\"topic 7\",\"top_k\":40}", 200);
    float *q = malloc(sizeof(float) * 3072);
    expected("RETRIEVAL_QUERY", "topic 7", 3072, true, q);
    struct scored want[40];
    float *v = malloc(sizeof(float) * 3072);
    char text[256];
    for (int i = 0; i < 40; i++) {
        doc_text(i, text, sizeof(text));
        expected("RETRIEVAL_DOCUMENT", text, 3072, true, v);
        want[i] = (struct scored){i, cosine(q, v, 3072)};
    }
    qsort(want, 40, sizeof(*want), cmp_scored);
    check_matches(simh_get(o, "results.0.matches"), want, 40, 40);
    cr_assert_eq(json_object_get_int(simh_get(o, "output_dimensionality")), 3072);
    json_object_put(o);
    free(q);
    free(v);
}

static void expect_problem(const char *path, const char *body, long status, const char *code,
                           const char *pointer)
{
    struct simh_resp r;
    call(&r, "POST", path, NULL, body);
    cr_assert_eq(r.status, status, "%.200s: %ld %.300s", body, r.status, r.body);
    char ct[64];
    cr_assert(simh_header(&r, "Content-Type", ct, sizeof(ct)));
    cr_assert_str_eq(ct, "application/problem+json");
    json_object *o = simh_json(&r);
    cr_assert_str_eq(simh_str(o, "code"), code, "%.200s: %s", body, r.body);
    if (pointer)
        cr_assert_str_eq(simh_str(o, "errors.0.pointer"), pointer, "%.200s: %s", body, r.body);
    json_object_put(o);
    simh_resp_free(&r);
}

/* Bad input is a clear 4xx problem, before Google is called. */
Test(query, bad_input)
{
    char coll[64], path[128], big[8192];
    create_coll("kb", 128, coll);
    query_path(coll, path, sizeof(path));
    long long before = simh_stat(&sim, "sync_calls");
    /* a vector of the wrong dimension, non-finite components, all zeros */
    expect_problem(path, "{\"vector\":[1,2,3]}", 422, "dimension_mismatch", "/vector");
    size_t n = (size_t)snprintf(big, sizeof(big), "{\"vector\":[1e39");
    for (int i = 1; i < 128; i++)
        n += (size_t)snprintf(big + n, sizeof(big) - n, ",0.5");
    snprintf(big + n, sizeof(big) - n, "]}");
    expect_problem(path, big, 422, "non_finite", "/vector/0");
    expect_problem(path, "{\"vector\":[NaN,1]}", 400, "invalid_json", NULL);
    expect_problem(path, "{\"vector\":[1,-Infinity]}", 400, "invalid_json", NULL);
    expect_problem(path, "{\"vector\":[1e999,1]}", 422, "non_finite", "/vector/0");
    expect_problem(path, "{\"vector\":[1,\"x\"]}", 400, "invalid_type", "/vector/1");
    n = (size_t)snprintf(big, sizeof(big), "{\"vector\":[0");
    for (int i = 1; i < 128; i++)
        n += (size_t)snprintf(big + n, sizeof(big) - n, ",0");
    snprintf(big + n, sizeof(big) - n, "]}");
    expect_problem(path, big, 422, "zero_vector", "/vector");
    /* top_k bounds */
    expect_problem(path, "{\"text\":\"a\",\"top_k\":0}", 422, "out_of_range", "/top_k");
    expect_problem(path, "{\"text\":\"a\",\"top_k\":10000}", 422, "out_of_range", "/top_k");
    expect_problem(path, "{\"text\":\"a\",\"top_k\":2.5}", 400, "invalid_type", "/top_k");
    /* texts */
    expect_problem(path, "{\"text\":\"\"}", 422, "empty_text", "/text");
    expect_problem(path, "{\"text\":\"  \\n\"}", 422, "empty_text", "/text");
    expect_problem(path, "{\"texts\":[\"a\",\"\"]}", 422, "empty_text", "/texts/1");
    expect_problem(path, "{\"texts\":[]}", 422, "empty_text", "/texts");
    n = (size_t)snprintf(big, sizeof(big), "{\"texts\":[\"q\"");
    for (int i = 1; i < 101; i++)
        n += (size_t)snprintf(big + n, sizeof(big) - n, ",\"q%d\"", i);
    snprintf(big + n, sizeof(big) - n, "]}");
    expect_problem(path, big, 422, "too_many_texts", "/texts");
    expect_problem(path, "{}", 422, "missing_field", NULL);
    expect_problem(path, "{\"text\":\"a\",\"vector\":[1]}", 422, "ambiguous_query", NULL);
    /* filters and include */
    expect_problem(path, "{\"text\":\"a\",\"filter\":{\"tags\":{\"a\":1}}}", 422, "invalid_filter",
                   "/filter/tags");
    expect_problem(path, "{\"text\":\"a\",\"filter\":{\"metadata\":{\"a\":[1]}}}", 422,
                   "invalid_filter", "/filter/metadata/a");
    expect_problem(path, "{\"text\":\"a\",\"filter\":{\"metadata\":[]}}", 400, "invalid_type",
                   "/filter/metadata");
    expect_problem(path, "{\"text\":\"a\",\"filter\":\"x\"}", 400, "invalid_type", "/filter");
    expect_problem(path, "{\"text\":\"a\",\"include\":[\"vectors\"]}", 422, "invalid_include",
                   "/include/0");
    n = (size_t)snprintf(big, sizeof(big),
                         "{\"top_k\":1000,\"include\":[\"text\"],\"texts\":[\"q\"");
    for (int i = 1; i < 11; i++)
        n += (size_t)snprintf(big + n, sizeof(big) - n, ",\"q%d\"", i);
    snprintf(big + n, sizeof(big) - n, "]}");
    expect_problem(path, big, 422, "too_many_results", "/top_k");
    expect_problem(path, "{\"text\":\"a\",\"extra\":1}", 400, "unknown_field", "/extra");
    expect_problem(path, "[1]", 400, "invalid_type", NULL);
    expect_problem(path, "{\"text\":", 400, "invalid_json", NULL);
    /* unknown collection */
    expect_problem("/v1/collections/5f0c7b0e-8a43-4c55-9b1e-2f8f6f1d2c3a/query", "{\"text\":\"a\"}",
                   404, "collection_not_found", NULL);
    expect_problem("/v1/collections/nope/query", "{\"text\":\"a\"}", 404, "collection_not_found",
                   NULL);
    /* /v1/embed */
    expect_problem("/v1/embed", "{\"texts\":[\"a\"]}", 422, "missing_field", "/collection");
    snprintf(big, sizeof(big), "{\"collection\":\"%s\"}", coll);
    expect_problem("/v1/embed", big, 422, "missing_field", "/texts");
    snprintf(big, sizeof(big), "{\"collection\":\"%s\",\"texts\":[\"\"]}", coll);
    expect_problem("/v1/embed", big, 422, "empty_text", "/texts/0");
    cr_assert_eq(simh_stat(&sim, "sync_calls"), before, "nothing reached Google");
}

/* Google's failures: a transient one is 503 with Retry-After, a refusal 502; both say so. */
Test(query, upstream_errors)
{
    char coll[64], path[128];
    create_coll("kb", 128, coll);
    query_path(coll, path, sizeof(path));
    simh_config(&sim, "{\"http_error_rate\":1,\"http_error_code\":429,\"retry_delay\":\"3s\","
                      "\"fault_scope\":\"sync\"}");
    struct simh_resp r;
    call(&r, "POST", path, NULL, "{\"text\":\"a\"}");
    cr_assert_eq(r.status, 503, "%s", r.body);
    cr_assert(strstr(r.body, "upstream_unavailable"), "%s", r.body);
    char ra[16];
    cr_assert(simh_header(&r, "Retry-After", ra, sizeof(ra)));
    cr_assert_str_eq(ra, "3");
    simh_resp_free(&r);
    simh_config(&sim, "{\"http_error_code\":400}");
    call(&r, "POST", path, NULL, "{\"text\":\"a\"}");
    cr_assert_eq(r.status, 502, "%s", r.body);
    cr_assert(strstr(r.body, "upstream_error"), "%s", r.body);
    simh_resp_free(&r);
    simh_config(&sim, "{\"http_error_rate\":0}");
    json_object_put(call_json("POST", path, "{\"text\":\"a\"}", 200));
}

static void start_no_key(void)
{
    stop(); /* Criterion ran the suite's start first */
    start_with(false);
}

/* Without a Gemini key, vectors are still searched; texts are 503 embedding_unavailable. */
Test(query, without_a_gemini_key, .init = start_no_key)
{
    char coll[64], path[128], body[4096];
    create_coll("kb", 128, coll);
    query_path(coll, path, sizeof(path));
    size_t n = (size_t)snprintf(body, sizeof(body), "{\"vector\":[1");
    for (int i = 1; i < 128; i++)
        n += (size_t)snprintf(body + n, sizeof(body) - n, ",0");
    snprintf(body + n, sizeof(body) - n, "]}");
    json_object *o = call_json("POST", path, body, 200);
    cr_assert_eq(json_object_array_length(simh_get(o, "results.0.matches")), 0);
    json_object_put(o);
    struct simh_resp r;
    call(&r, "POST", path, NULL, "{\"text\":\"a\"}");
    cr_assert_eq(r.status, 503, "%s", r.body);
    cr_assert(strstr(r.body, "embedding_unavailable"), "%s", r.body);
    simh_resp_free(&r);
}

struct hammer {
    char path[128];
    int ok, bad;
};

static void *hammer_run(void *arg)
{
    struct hammer *h = arg;
    for (int i = 0; i < 15; i++) {
        struct simh_resp r;
        char body[256];
        snprintf(body, sizeof(body),
                 "{\"texts\":[\"topic %d\",\"colour %d\",\"document %d\"],\"top_k\":20,"
                 "\"include\":[\"metadata\"]}",
                 i, i % 5, i * 7);
        call(&r, "POST", h->path, NULL, body);
        if (r.status == 200 && strstr(r.body, "\"index\":2"))
            h->ok++;
        else
            h->bad++;
        simh_resp_free(&r);
    }
    return NULL;
}

/* Queries from four clients at once (each scan split across the search threads, the texts
 * embedded on clients of their own) while documents are deleted (the collection reloads under
 * them): every answer is whole, and the deleted documents are gone afterwards. */
Test(query, concurrent_queries_during_changes)
{
    char coll[64];
    create_coll("kb", 768, coll);
    fill(coll, 768, 2000);
    struct hammer h[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        memset(&h[i], 0, sizeof(h[i]));
        query_path(coll, h[i].path, sizeof(h[i].path));
        pthread_create(&th[i], NULL, hammer_run, &h[i]);
    }
    for (int d = 0; d < 10; d++) {
        char del[160];
        snprintf(del, sizeof(del), "/v1/collections/%s/documents/d%04d", coll, d * 3);
        json_object_put(call_json("DELETE", del, NULL, 204));
        struct timespec ts = {0, 30 * 1000000L};
        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(h[i].bad, 0, "client %d: %d bad answers", i, h[i].bad);
        cr_assert_eq(h[i].ok, 15);
    }
    char path[128];
    query_path(coll, path, sizeof(path));
    json_object *o = call_json("POST", path, "{\"text\":\"document 3\",\"top_k\":1000}", 200);
    json_object *m = simh_get(o, "results.0.matches");
    cr_assert_eq(json_object_array_length(m), 1000);
    for (size_t i = 0; i < 1000; i++) {
        const char *id = simh_str(json_object_array_get_idx(m, i), "document_id");
        int num = (int)strtol(id + 1, NULL, 10);
        cr_assert(!(num % 3 == 0 && num < 30), "deleted %s answered", id);
    }
    cr_assert_eq(json_object_get_int(simh_get(o, "chunks_searched")), 1990);
    json_object_put(o);
}
