/*
 * test_upserts.c: jobs into collections through the API against a real
 * gemini-sim, whose counters of texts received are the ground truth: a
 * resubmitted corpus sends only what changed, nothing when unchanged; reuse
 * across collections of one space and never across keys or spaces; one
 * consistent version when two jobs upsert one document at once; deletes;
 * space mismatches; Idempotency-Key.
 */
#include "harness.h"
#include "svch.h"

#include "util/buf.h"

#include <criterion/criterion.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct simh sim;
static struct svch svc;

static void start(void)
{
    static const char *const sf[] = {"--pending-ms=10", "--running-ms=20", NULL};
    simh_start(&sim, sf);
    static char flags[4][256];
    snprintf(flags[0], sizeof(flags[0]), "--gemini-base-url=%s", sim.base);
    snprintf(flags[1], sizeof(flags[1]), "--gemini-api-key=%s", SIMH_KEY);
    const char *argv[] = {flags[0],           flags[1],
                          "--poll-min-ms=20", "--poll-max-ms=200",
                          "--workers=3",      "--sync-max-texts=0",
                          "--lease-ms=5000",  NULL};
    svch_start(&svc, argv);
}

static void stop(void)
{
    svch_stop(&svc);
    simh_stop(&sim);
}

TestSuite(upserts, .init = start, .fini = stop, .timeout = 600);

static json_object *call_key(const char *key, const char *method, const char *path,
                             const char *body, const char *idem, long want)
{
    char url[512], auth[128], ik[400];
    snprintf(url, sizeof(url), "%s%s", svc.base, path);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
    snprintf(ik, sizeof(ik), "Idempotency-Key: %s", idem ? idem : "");
    const char *hs[4] = {auth, "Content-Type: application/json", idem ? ik : NULL, NULL};
    struct simh_resp r;
    simh_req_url(&r, method, url, body, body ? strlen(body) : 0, hs);
    cr_assert_eq(r.status, want, "%s %s: %ld: %.400s", method, path, r.status, r.body);
    json_object *o = r.body && r.body[0] ? simh_json(&r) : NULL;
    simh_resp_free(&r);
    return o;
}

static json_object *call(const char *method, const char *path, const char *body, long want)
{
    return call_key(svc.key, method, path, body, NULL, want);
}

static char *make_collection(const char *key, const char *name, int dims)
{
    char body[256];
    snprintf(body, sizeof(body), "{\"name\":\"%s\",\"output_dimensionality\":%d}", name, dims);
    json_object *o = call_key(key, "POST", "/v1/collections", body, NULL, 201);
    char *id = strdup(simh_str(o, "id"));
    json_object_put(o);
    return id;
}

/* A job body into collection coll (NULL: none) of n documents "d<i>"; document `changed`
 * (or -1) gets another text. */
static char *corpus(const char *coll, int n, const char *tag, int changed)
{
    struct buf b;
    buf_init(&b, 1 << 26);
    cr_assert(buf_puts(&b, "{"));
    if (coll)
        cr_assert(buf_printf(&b, "\"collection\":\"%s\",", coll));
    cr_assert(buf_puts(&b, "\"documents\":["));
    for (int i = 0; i < n; i++)
        cr_assert(buf_printf(&b,
                             "%s{\"id\":\"d%d\",\"title\":\"Doc %d\",\"metadata\":{\"n\":%d},"
                             "\"text\":\"%s document number %d%s, about rivers and stones.\"}",
                             i ? "," : "", i, i, i, tag, i, i == changed ? " (edited)" : ""));
    cr_assert(buf_puts(&b, "]}"));
    return b.data; /* the caller frees */
}

static json_object *wait_job_key(const char *key, const char *id)
{
    char path[96];
    snprintf(path, sizeof(path), "/v1/jobs/%s", id);
    int64_t deadline = simh_ms() + 120000;
    for (;;) {
        json_object *o = call_key(key, "GET", path, NULL, NULL, 200);
        const char *st = simh_str(o, "state");
        if (strcmp(st, "pending") && strcmp(st, "running"))
            return o;
        json_object_put(o);
        cr_assert(simh_ms() < deadline, "job %s not finished", id);
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static json_object *wait_job(const char *id)
{
    return wait_job_key(svc.key, id);
}

/* Submit body, wait for the job, return it (the caller frees). */
static json_object *run_job(const char *key, const char *body)
{
    json_object *o = call_key(key, "POST", "/v1/jobs", body, NULL, 202);
    char id[64];
    snprintf(id, sizeof(id), "%s", simh_str(o, "id"));
    json_object_put(o);
    return wait_job_key(key, id);
}

static long jint(json_object *o, const char *path)
{
    return (long)json_object_get_int64(simh_get(o, path));
}

Test(upserts, a_resubmitted_corpus_sends_only_what_changed)
{
    char *coll = make_collection(svc.key, "kb", 256);
    int n = 1000;
    char *b1 = corpus(coll, n, "v1", -1);
    json_object *j = run_job(svc.key, b1);
    cr_assert_str_eq(simh_str(j, "state"), "succeeded");
    cr_assert_eq(jint(j, "documents.new"), n);
    long sent = simh_stat(&sim, "texts_received");
    cr_assert_eq(sent, n, "every chunk sent once");
    json_object_put(j);

    /* the same corpus again: nothing sent, done at once */
    json_object *o = call("POST", "/v1/jobs", b1, 202);
    cr_assert_str_eq(simh_str(o, "state"), "succeeded", "nothing to send: succeeded when created");
    cr_assert_eq(jint(o, "documents.unchanged"), n);
    cr_assert_eq(jint(o, "stats.chunks.total"), 0);
    json_object_put(o);
    cr_assert_eq(simh_stat(&sim, "texts_received"), sent);

    /* one document edited: exactly its chunk is sent */
    char *b2 = corpus(coll, n, "v1", 17);
    j = run_job(svc.key, b2);
    cr_assert_eq(jint(j, "documents.updated"), 1);
    cr_assert_eq(jint(j, "documents.unchanged"), n - 1);
    cr_assert_eq(simh_stat(&sim, "texts_received"), sent + 1, "only the edited document");
    cr_assert(json_object_get_double(simh_get(j, "cost.batch")) > 0);
    json_object_put(j);
    char path[256];
    snprintf(path, sizeof(path), "/v1/collections/%s/documents/d17", coll);
    o = call("GET", path, NULL, 200);
    cr_assert_eq(jint(o, "version"), 2);
    cr_assert_str_eq(simh_str(o, "state"), "current");
    json_object_put(o);
    snprintf(path, sizeof(path), "/v1/collections/%s", coll);
    o = call("GET", path, NULL, 200);
    cr_assert_eq(jint(o, "documents.current"), n);
    json_object_put(o);

    /* a second collection of the same space reuses every vector; another dimension none */
    char *same = make_collection(svc.key, "kb-copy", 256);
    char *b3 = corpus(same, n, "v1", 17);
    j = run_job(svc.key, b3);
    cr_assert_eq(jint(j, "stats.chunks.reused"), n);
    cr_assert(json_object_get_double(simh_get(j, "cost.saved_by_reuse")) > 0);
    cr_assert_eq(simh_stat(&sim, "texts_received"), sent + 1, "same space: nothing sent");
    json_object_put(j);
    char *other_dims = make_collection(svc.key, "kb-768", 768);
    char *b4 = corpus(other_dims, 50, "v1", -1);
    j = run_job(svc.key, b4);
    cr_assert_eq(jint(j, "stats.chunks.reused"), 0, "another dimension is another space");
    json_object_put(j);

    /* another key: 404 for the collection, and no reuse of this key's vectors */
    char other[64];
    svch_new_key(&svc, "other", other);
    json_object_put(call_key(other, "GET", path, NULL, NULL, 404));
    o = call_key(other, "POST", "/v1/jobs", b1, NULL, 422);
    cr_assert_str_eq(simh_str(o, "code"), "collection_not_found");
    json_object_put(o);
    char *plain = corpus(NULL, 20, "v1", -1);
    j = run_job(other, plain);
    cr_assert_eq(jint(j, "stats.chunks.reused"), 0, "never across keys");
    json_object_put(j);
    free(b1);
    free(b2);
    free(b3);
    free(b4);
    free(plain);
    free(coll);
    free(same);
    free(other_dims);
}

Test(upserts, space_mismatch_deletes_and_bad_input)
{
    char *coll = make_collection(svc.key, "kb", 256);
    char body[512];
    snprintf(body, sizeof(body),
             "{\"collection\":\"%s\",\"output_dimensionality\":768,\"task_type\":\"CLUSTERING\","
             "\"documents\":[{\"id\":\"a\",\"text\":\"x\"}]}",
             coll);
    json_object *o = call("POST", "/v1/jobs", body, 409);
    cr_assert_str_eq(simh_str(o, "code"), "space_mismatch");
    cr_assert(strstr(simh_str(o, "detail"), "output_dimensionality") &&
                  strstr(simh_str(o, "detail"), "task_type"),
              "%s", simh_str(o, "detail"));
    json_object_put(o);
    /* the collection's own settings are fine, said or left out */
    snprintf(body, sizeof(body),
             "{\"collection\":\"%s\",\"output_dimensionality\":256,"
             "\"documents\":[{\"id\":\"a\",\"text\":\"alpha\"},{\"id\":\"b\",\"text\":\"beta\"},"
             "{\"id\":\"c\",\"text\":\"gamma\"}]}",
             coll);
    json_object *j = run_job(svc.key, body);
    cr_assert_eq(jint(j, "settings.output_dimensionality"), 256);
    json_object_put(j);

    /* a delete of a missing document, a delete without a collection, both upsert and delete */
    snprintf(body, sizeof(body), "{\"collection\":\"%s\",\"delete\":[\"a\",\"zz\"]}", coll);
    o = call("POST", "/v1/jobs", body, 422);
    cr_assert_str_eq(simh_str(o, "code"), "document_not_found");
    json_object_put(o);
    o = call("POST", "/v1/jobs",
             "{\"delete\":[\"a\"],\"documents\":[{\"id\":\"a\",\"text\":\"x\"}]}", 422);
    cr_assert_str_eq(simh_str(o, "code"), "delete_without_collection");
    json_object_put(o);
    snprintf(body, sizeof(body),
             "{\"collection\":\"%s\",\"delete\":[\"b\"],\"documents\":[{\"id\":\"b\",\"text\":"
             "\"x\"}]}",
             coll);
    o = call("POST", "/v1/jobs", body, 422);
    cr_assert_str_eq(simh_str(o, "code"), "deleted_and_upserted");
    json_object_put(o);
    /* a job that only deletes */
    snprintf(body, sizeof(body), "{\"collection\":\"%s\",\"delete\":[\"a\"],\"documents\":[]}",
             coll);
    o = call("POST", "/v1/jobs", body, 202);
    cr_assert_eq(jint(o, "documents.deleted"), 1);
    cr_assert_str_eq(simh_str(o, "state"), "succeeded");
    json_object_put(o);
    char path[256];
    snprintf(path, sizeof(path), "/v1/collections/%s/documents/a", coll);
    json_object_put(call("GET", path, NULL, 404));
    o = call("POST", "/v1/jobs",
             "{\"collection\":\"00000000-0000-4000-8000-000000000000\",\"documents\":[{\"id\":"
             "\"a\",\"text\":\"x\"}]}",
             422);
    cr_assert_str_eq(simh_str(o, "code"), "collection_not_found");
    json_object_put(o);
    /* the NDJSON form takes the collection in its options line */
    char nd[512];
    snprintf(nd, sizeof(nd),
             "{\"collection\":\"%s\",\"output_dimensionality\":1536}\n"
             "{\"id\":\"q\",\"text\":\"x\"}\n",
             coll);
    char url[256], auth[128];
    snprintf(url, sizeof(url), "%s/v1/jobs", svc.base);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", svc.key);
    const char *hs[3] = {auth, "Content-Type: application/x-ndjson", NULL};
    struct simh_resp r;
    simh_req_url(&r, "POST", url, nd, strlen(nd), hs);
    cr_assert_eq(r.status, 409, "%s", r.body);
    cr_assert(strstr(r.body, "space_mismatch"));
    simh_resp_free(&r);
    free(coll);
}

/* Two jobs upserting the same documents at once: each document ends with one current version,
 * complete, from one of the two jobs, and no next version left over. */
Test(upserts, concurrent_upserts_of_one_document)
{
    char *coll = make_collection(svc.key, "kb", 256);
    char *a = corpus(coll, 200, "alpha", -1), *b = corpus(coll, 200, "beta", -1);
    json_object *ja = call("POST", "/v1/jobs", a, 202), *jb = call("POST", "/v1/jobs", b, 202);
    json_object *wa = wait_job(simh_str(ja, "id")), *wb = wait_job(simh_str(jb, "id"));
    cr_assert_str_eq(simh_str(wa, "state"), "succeeded");
    cr_assert_str_eq(simh_str(wb, "state"), "succeeded");
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM collection_documents cd JOIN documents d"
             " ON d.job_id = cd.job_id AND d.doc_index = cd.doc_index"
             " WHERE cd.collection_id = '%s' AND cd.next_job_id IS NULL AND cd.version >= 1"
             " AND d.chunks_done = d.n_chunks AND d.doc_id = cd.doc_id",
             coll);
    cr_assert_eq(dbh_scalar(&svc.db, sql), 200, "one complete current version each");
    snprintf(sql, sizeof(sql),
             "SELECT count(DISTINCT cd.job_id) FROM collection_documents cd"
             " WHERE cd.collection_id = '%s'",
             coll);
    long jobs = dbh_scalar(&svc.db, sql);
    cr_assert(jobs >= 1 && jobs <= 2);
    json_object_put(ja);
    json_object_put(jb);
    json_object_put(wa);
    json_object_put(wb);
    free(a);
    free(b);
    free(coll);
}

struct idem_arg {
    const char *body;
    long status;
    char id[64];
};

static void *idem_post(void *p)
{
    struct idem_arg *a = p;
    char url[256], auth[128];
    snprintf(url, sizeof(url), "%s/v1/jobs", svc.base);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", svc.key);
    const char *hs[4] = {auth, "Content-Type: application/json", "Idempotency-Key: order-42", NULL};
    struct simh_resp r;
    simh_req_url(&r, "POST", url, a->body, strlen(a->body), hs);
    a->status = r.status;
    if (r.status == 202) {
        json_object *o = simh_json(&r);
        snprintf(a->id, sizeof(a->id), "%s", simh_str(o, "id"));
        json_object_put(o);
    }
    simh_resp_free(&r);
    return NULL;
}

/* 16 concurrent POSTs with one Idempotency-Key create one job; later ones replay it; another
 * body with the key is refused; a malformed key is refused; nothing else is stored. */
Test(upserts, idempotency_key)
{
    char *body = corpus(NULL, 300, "idem", -1);
    struct idem_arg args[16];
    pthread_t t[16];
    for (int i = 0; i < 16; i++) {
        args[i] = (struct idem_arg){body, 0, ""};
        cr_assert_eq(pthread_create(&t[i], NULL, idem_post, &args[i]), 0);
    }
    for (int i = 0; i < 16; i++)
        pthread_join(t[i], NULL);
    const char *first = NULL;
    for (int i = 0; i < 16; i++) {
        cr_assert(args[i].status == 202 || args[i].status == 409, "status %ld", args[i].status);
        if (args[i].status == 202) {
            if (!first)
                first = args[i].id;
            cr_assert_str_eq(args[i].id, first, "every 202 names the same job");
        }
    }
    cr_assert_not_null(first);
    cr_assert_eq(dbh_scalar(&svc.db, "SELECT count(*) FROM jobs"), 1, "exactly one job");
    /* a later retry replays it */
    char url[256], auth[128];
    snprintf(url, sizeof(url), "%s/v1/jobs", svc.base);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", svc.key);
    const char *hs[4] = {auth, "Content-Type: application/json", "Idempotency-Key: order-42", NULL};
    struct simh_resp r;
    simh_req_url(&r, "POST", url, body, strlen(body), hs);
    cr_assert_eq(r.status, 202, "%s", r.body);
    char replayed[16];
    cr_assert(simh_header(&r, "Idempotent-Replayed", replayed, sizeof(replayed)));
    cr_assert_str_eq(replayed, "true");
    json_object *o = simh_json(&r);
    cr_assert_str_eq(simh_str(o, "id"), first);
    json_object_put(o);
    simh_resp_free(&r);
    /* the same key with another body */
    char *other = corpus(NULL, 3, "different", -1);
    simh_req_url(&r, "POST", url, other, strlen(other), hs);
    cr_assert_eq(r.status, 422, "%s", r.body);
    cr_assert(strstr(r.body, "idempotency_key_reused"));
    simh_resp_free(&r);
    /* a key that is not printable ASCII, and one far too long */
    const char *bad[4] = {auth, "Content-Type: application/json", "Idempotency-Key: caf\xc3\xa9",
                          NULL};
    simh_req_url(&r, "POST", url, other, strlen(other), bad);
    cr_assert_eq(r.status, 400, "%s", r.body);
    cr_assert(strstr(r.body, "invalid_idempotency_key"));
    simh_resp_free(&r);
    char *huge = malloc(10 << 20);
    memcpy(huge, "Idempotency-Key: ", 17);
    memset(huge + 17, 'k', (10 << 20) - 18);
    huge[(10 << 20) - 1] = '\0';
    const char *big[4] = {auth, "Content-Type: application/json", huge, NULL};
    simh_req_url(&r, "POST", url, other, strlen(other), big);
    /* the server refuses a request head past its 32 KiB buffer as soon as it
     * passes it (431); curl, still sending the 10 MB, may see the connection
     * closed before it reads the answer */
    cr_assert(r.status == 0 || r.status == 431 || r.status == 414, "a 10 MB key: %ld", r.status);
    simh_resp_free(&r);
    huge[17 + 40000] = '\0'; /* 40 KB: sent whole, answered */
    simh_req_url(&r, "POST", url, other, strlen(other), big);
    cr_assert(r.status == 431 || r.status == 414, "a 40 KB key: %ld %s", r.status, r.body);
    simh_resp_free(&r);
    free(huge);
    cr_assert_eq(dbh_scalar(&svc.db, "SELECT count(*) FROM jobs"), 1, "nothing else stored");
    free(other);
    free(body);
}

/* GET /v1/collections/{id}/vectors: every current vector once, paged and as NDJSON, numbers or
 * base64 of the same floats; a document being re-embedded shows its current version. */
Test(upserts, collection_vectors)
{
    char *coll = make_collection(svc.key, "kb", 128);
    char *b1 = corpus(coll, 30, "v1", -1);
    json_object_put(run_job(svc.key, b1));
    char path[512], next[400] = "";
    int seen = 0, pages = 0;
    for (;;) {
        snprintf(path, sizeof(path), "/v1/collections/%s/vectors?limit=7%s%s", coll,
                 next[0] ? "&cursor=" : "", next);
        json_object *o = call("GET", path, NULL, 200);
        json_object *v = simh_get(o, "vectors");
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            json_object *row = json_object_array_get_idx(v, i);
            cr_assert_eq(json_object_array_length(json_object_object_get(row, "embedding")), 128);
            cr_assert_eq(json_object_get_int(json_object_object_get(row, "version")), 1);
        }
        seen += (int)json_object_array_length(v);
        pages++;
        json_object *nc = simh_get(o, "next_cursor");
        if (!nc || json_object_is_type(nc, json_type_null)) {
            json_object_put(o);
            break;
        }
        snprintf(next, sizeof(next), "%s", json_object_get_string(nc));
        json_object_put(o);
        cr_assert(pages < 20);
    }
    cr_assert_eq(seen, 30);
    cr_assert_eq(pages, 5);
    /* NDJSON, base64 */
    char url[512], auth[128];
    snprintf(url, sizeof(url), "%s/v1/collections/%s/vectors?encoding=base64", svc.base, coll);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", svc.key);
    const char *hs[3] = {auth, "Accept: application/x-ndjson", NULL};
    struct simh_resp r;
    simh_req_url(&r, "GET", url, NULL, 0, hs);
    cr_assert_eq(r.status, 200);
    int lines = 0;
    for (const char *p = r.body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        json_object *row = json_tokener_parse(p);
        if (!row)
            break;
        cr_assert(json_object_is_type(json_object_object_get(row, "embedding"), json_type_string));
        cr_assert_eq(strlen(json_object_get_string(json_object_object_get(row, "embedding"))),
                     (size_t)(128 * 4 + 2) / 3 * 4);
        json_object_put(row);
        lines++;
    }
    cr_assert_eq(lines, 30);
    simh_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/collections/%s/vectors?cursor=zz", coll);
    json_object_put(call("GET", path, NULL, 400));
    free(b1);
    free(coll);
}
