/* test_collections_api.c: /v1/collections over real HTTP against a real database: create (201 +
 * Location), names unique per key, validation against the model table, get, list, delete,
 * another key's collection is 404. */
#include "harness.h"
#include "svch.h"

#include <criterion/criterion.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct svch svc;

static void start(void)
{
    svch_start(&svc, NULL);
}

static void stop(void)
{
    svch_stop(&svc);
}

TestSuite(collections, .init = start, .fini = stop, .timeout = 300);

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
    cr_assert_eq(r.status, want, "%s %s: %ld, want %ld: %s", method, path, r.status, want, r.body);
    json_object *o = r.body && r.body[0] ? simh_json(&r) : NULL;
    simh_resp_free(&r);
    return o;
}

/* A problem reply: status, code, and (when given) the pointer of its field. */
static void expect_problem(const char *body, long status, const char *code, const char *pointer)
{
    struct simh_resp r;
    call(&r, "POST", "/v1/collections", NULL, body);
    cr_assert_eq(r.status, status, "%s: %ld %s", body, r.status, r.body);
    json_object *o = simh_json(&r);
    cr_assert_str_eq(simh_str(o, "code"), code, "%s: %s", body, r.body);
    if (pointer)
        cr_assert_str_eq(
            json_object_get_string(json_object_object_get(
                json_object_array_get_idx(json_object_object_get(o, "errors"), 0), "pointer")),
            pointer, "%s", r.body);
    json_object_put(o);
    simh_resp_free(&r);
}

Test(collections, create_get_list_delete)
{
    struct simh_resp r;
    call(&r, "POST", "/v1/collections", NULL,
         "{\"name\":\"handbook\",\"output_dimensionality\":256,"
         "\"chunking\":{\"max_chars\":1000,\"overlap_chars\":100}}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    char loc[128];
    cr_assert(simh_header(&r, "Location", loc, sizeof(loc)));
    json_object *o = simh_json(&r);
    char id[64];
    snprintf(id, sizeof(id), "%s", simh_str(o, "id"));
    char want[128];
    snprintf(want, sizeof(want), "/v1/collections/%s", id);
    cr_assert_str_eq(loc, want);
    cr_assert_str_eq(simh_str(o, "model"), "gemini-embedding-001");
    cr_assert_eq(json_object_get_int(simh_get(o, "output_dimensionality")), 256);
    cr_assert_str_eq(simh_str(o, "task_type"), "RETRIEVAL_DOCUMENT");
    cr_assert_str_eq(simh_str(o, "query_task_type"), "RETRIEVAL_QUERY");
    cr_assert_eq(json_object_get_int(simh_get(o, "chunking.max_chars")), 1000);
    cr_assert_eq(json_object_get_int(simh_get(o, "documents.current")), 0);
    cr_assert_str_eq(simh_str(o, "cost.currency"), "USD");
    cr_assert(json_object_get_double(simh_get(o, "cost.prices.batch_per_1m_tokens")) == 0.075);
    json_object_put(o);
    simh_resp_free(&r);

    o = call_json("GET", want, NULL, 200);
    cr_assert_str_eq(simh_str(o, "name"), "handbook");
    json_object_put(o);

    /* a second one, then list: newest first, paged */
    json_object_put(call_json("POST", "/v1/collections", "{\"name\":\"second\"}", 201));
    o = call_json("GET", "/v1/collections?limit=1", NULL, 200);
    cr_assert_eq(json_object_array_length(simh_get(o, "collections")), 1);
    cr_assert_str_eq(json_object_get_string(json_object_object_get(
                         json_object_array_get_idx(simh_get(o, "collections"), 0), "name")),
                     "second");
    char next[256];
    snprintf(next, sizeof(next), "/v1/collections?limit=1&cursor=%s", simh_str(o, "next_cursor"));
    json_object_put(o);
    o = call_json("GET", next, NULL, 200);
    cr_assert_str_eq(json_object_get_string(json_object_object_get(
                         json_object_array_get_idx(simh_get(o, "collections"), 0), "name")),
                     "handbook");
    json_object_put(o);

    /* another key sees nothing of it */
    char other[64];
    svch_new_key(&svc, "other", other);
    call(&r, "GET", want, other, NULL);
    cr_assert_eq(r.status, 404, "%s", r.body);
    simh_resp_free(&r);
    call(&r, "DELETE", want, other, NULL);
    cr_assert_eq(r.status, 404);
    simh_resp_free(&r);
    /* the same name is another key's to take */
    call(&r, "POST", "/v1/collections", other, "{\"name\":\"handbook\"}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    simh_resp_free(&r);

    json_object_put(call_json("DELETE", want, NULL, 204));
    json_object_put(call_json("GET", want, NULL, 404));
    json_object_put(call_json("GET", "/v1/collections/not-a-uuid", NULL, 404));
}

Test(collections, names_are_unique_per_key)
{
    json_object_put(call_json("POST", "/v1/collections", "{\"name\":\"kb\"}", 201));
    expect_problem("{\"name\":\"kb\",\"output_dimensionality\":1536}", 409, "name_taken", "/name");
}

/* Bad input: each a clear 4xx naming the field and the allowed values; nothing stored. */
Test(collections, bad_input_stores_nothing)
{
    expect_problem("{}", 422, "missing_field", "/name");
    expect_problem("{\"name\":\"\"}", 422, "missing_field", "/name");
    expect_problem("{\"name\":5}", 400, "invalid_type", "/name");
    expect_problem("{\"name\":\"x\",\"colour\":1}", 400, "unknown_field", "/colour");
    expect_problem("{\"name\":\"x\",\"model\":\"text-embedding-004\"}", 422, "model_not_supported",
                   "/model");
    expect_problem("{\"name\":\"x\",\"model\":\"gpt-4\"}", 422, "unknown_model", "/model");
    expect_problem("{\"name\":\"x\",\"output_dimensionality\":64}", 422, "out_of_range",
                   "/output_dimensionality");
    expect_problem("{\"name\":\"x\",\"output_dimensionality\":4096}", 422, "out_of_range",
                   "/output_dimensionality");
    expect_problem("{\"name\":\"x\",\"query_task_type\":\"QUERY\"}", 422, "unknown_task_type",
                   "/query_task_type");
    expect_problem("{\"name\":\"x\",\"chunking\":{\"max_chars\":1000,\"overlap_chars\":600}}", 422,
                   "out_of_range", "/chunking/overlap_chars");
    expect_problem("{\"name\":\"x\"", 400, "invalid_json", NULL);
    char big[400];
    memset(big, 'n', sizeof(big));
    big[sizeof(big) - 1] = '\0';
    char body[512];
    snprintf(body, sizeof(body), "{\"name\":\"%s\"}", big);
    expect_problem(body, 422, "too_long", "/name");
    /* the unknown-model message names what is allowed */
    struct simh_resp r;
    call(&r, "POST", "/v1/collections", NULL, "{\"name\":\"x\",\"model\":\"gpt-4\"}");
    cr_assert(strstr(r.body, "gemini-embedding-001"), "%s", r.body);
    simh_resp_free(&r);
    cr_assert_eq(dbh_scalar(&svc.db, "SELECT count(*) FROM collections"), 0);
}

Test(collections, documents_of_an_empty_collection)
{
    json_object *o = call_json("POST", "/v1/collections", "{\"name\":\"kb\"}", 201);
    char path[256];
    snprintf(path, sizeof(path), "/v1/collections/%s/documents", simh_str(o, "id"));
    json_object *d = call_json("GET", path, NULL, 200);
    cr_assert_eq(json_object_array_length(simh_get(d, "documents")), 0);
    json_object_put(d);
    char one[320];
    snprintf(one, sizeof(one), "/v1/collections/%s/documents/a%%2Fb", simh_str(o, "id"));
    d = call_json("GET", one, NULL, 404);
    cr_assert_str_eq(simh_str(d, "code"), "document_not_found");
    cr_assert(strstr(simh_str(d, "detail"), "\"a/b\""), "%s", simh_str(d, "detail"));
    json_object_put(d);
    json_object_put(call_json("DELETE", one, NULL, 404));
    json_object_put(o);
}

/* GET /v1/usage: per model over the key's jobs, a time range, bad ranges refused. */
Test(collections, usage)
{
    json_object *o = call_json("GET", "/v1/usage", NULL, 200);
    cr_assert_eq(json_object_array_length(simh_get(o, "models")), 0);
    json_object_put(o);
    json_object_put(call_json(
        "POST", "/v1/jobs",
        "{\"documents\":[{\"id\":\"a\",\"text\":\"one\"},{\"id\":\"b\",\"text\":\"two\"}]}", 202));
    o = call_json("GET", "/v1/usage?from=2000-01-01T00:00:00Z", NULL, 200);
    cr_assert_eq(json_object_array_length(simh_get(o, "models")), 1);
    json_object *m = json_object_array_get_idx(simh_get(o, "models"), 0);
    cr_assert_str_eq(json_object_get_string(json_object_object_get(m, "model")),
                     "gemini-embedding-001");
    cr_assert_eq(json_object_get_int(json_object_object_get(m, "jobs")), 1);
    cr_assert_str_eq(simh_str(o, "from"), "2000-01-01T00:00:00Z");
    json_object_put(o);
    o = call_json("GET", "/v1/usage?to=2000-01-01T00:00:00Z", NULL, 200);
    cr_assert_eq(json_object_array_length(simh_get(o, "models")), 0, "before any job");
    json_object_put(o);
    o = call_json("GET", "/v1/usage?from=yesterday-ish", NULL, 400);
    cr_assert_str_eq(simh_str(o, "code"), "invalid_parameter");
    json_object_put(o);
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
    snprintf(url, sizeof(url), "%s/v1/collections", svc.base);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", svc.key);
    const char *hs[4] = {auth, "Content-Type: application/json", "Idempotency-Key: coll-7", NULL};
    struct simh_resp r;
    simh_req_url(&r, "POST", url, a->body, strlen(a->body), hs);
    a->status = r.status;
    if (r.status == 201) {
        json_object *o = simh_json(&r);
        snprintf(a->id, sizeof(a->id), "%s", simh_str(o, "id"));
        json_object_put(o);
    }
    simh_resp_free(&r);
    return NULL;
}

/* Idempotency-Key on POST /v1/collections: 8 concurrent requests create one collection (the
 * others are told the first is in flight, or replay it); a retry replays it with 201, Location
 * and Idempotent-Replayed; the key with another body is refused; nothing else is stored. */
Test(collections, idempotency_key)
{
    const char *body = "{\"name\":\"kb-idem\",\"output_dimensionality\":512}";
    struct idem_arg args[8];
    pthread_t t[8];
    for (int i = 0; i < 8; i++) {
        args[i] = (struct idem_arg){body, 0, ""};
        cr_assert_eq(pthread_create(&t[i], NULL, idem_post, &args[i]), 0);
    }
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    const char *first = NULL;
    for (int i = 0; i < 8; i++) {
        cr_assert(args[i].status == 201 || args[i].status == 409, "status %ld", args[i].status);
        if (args[i].status == 201) {
            if (!first)
                first = args[i].id;
            cr_assert_str_eq(args[i].id, first, "every 201 names the same collection");
        }
    }
    cr_assert_not_null(first);
    cr_assert_eq(dbh_scalar(&svc.db, "SELECT count(*) FROM collections"), 1);

    char url[256], auth[128];
    snprintf(url, sizeof(url), "%s/v1/collections", svc.base);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", svc.key);
    const char *hs[4] = {auth, "Content-Type: application/json", "Idempotency-Key: coll-7", NULL};
    struct simh_resp r;
    simh_req_url(&r, "POST", url, body, strlen(body), hs);
    cr_assert_eq(r.status, 201, "%s", r.body);
    char h[128];
    cr_assert(simh_header(&r, "Idempotent-Replayed", h, sizeof(h)));
    cr_assert_str_eq(h, "true");
    cr_assert(simh_header(&r, "Location", h, sizeof(h)));
    char want[128];
    snprintf(want, sizeof(want), "/v1/collections/%s", first);
    cr_assert_str_eq(h, want);
    json_object *o = simh_json(&r);
    cr_assert_str_eq(simh_str(o, "id"), first);
    cr_assert_eq(json_object_get_int(simh_get(o, "output_dimensionality")), 512);
    json_object_put(o);
    simh_resp_free(&r);

    /* without the key the same body is a name conflict; with it and another body, refused */
    expect_problem(body, 409, "name_taken", "/name");
    const char *other = "{\"name\":\"kb-other\"}";
    simh_req_url(&r, "POST", url, other, strlen(other), hs);
    cr_assert_eq(r.status, 422, "%s", r.body);
    cr_assert(strstr(r.body, "idempotency_key_reused"), "%s", r.body);
    simh_resp_free(&r);
    /* a key used for a job is not a collection's */
    const char *jb = "{\"documents\":[{\"id\":\"a\",\"text\":\"x\"}]}";
    const char *hj[4] = {auth, "Content-Type: application/json", "Idempotency-Key: shared-9", NULL};
    snprintf(url, sizeof(url), "%s/v1/jobs", svc.base);
    simh_req_url(&r, "POST", url, jb, strlen(jb), hj);
    cr_assert_eq(r.status, 202, "%s", r.body);
    simh_resp_free(&r);
    snprintf(url, sizeof(url), "%s/v1/collections", svc.base);
    simh_req_url(&r, "POST", url, other, strlen(other), hj);
    cr_assert_eq(r.status, 422, "%s", r.body);
    cr_assert(strstr(r.body, "/v1/jobs"), "names where the key was used: %s", r.body);
    simh_resp_free(&r);
    cr_assert_eq(dbh_scalar(&svc.db, "SELECT count(*) FROM collections"), 1, "nothing else stored");
}
