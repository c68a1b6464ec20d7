/* test_sim_batches.c: gemini-sim batch routes and Operation shapes, field by field. */
#include "harness.h"

#include <criterion/criterion.h>

#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct simh sim;

static void start_fast(void)
{
    static const char *const flags[] = {"--pending-ms=40", "--running-ms=40", NULL};
    simh_start(&sim, flags);
}

static void stop(void)
{
    simh_stop(&sim);
}

TestSuite(batches, .init = start_fast, .fini = stop, .timeout = 300);

#define CREATE_PATH "/v1beta/models/gemini-embedding-001:asyncBatchEmbedContent"

static const char two_requests[] =
    "{\"batch\":{\"displayName\":\"t-batch-1\",\"inputConfig\":{\"requests\":{\"requests\":["
    "{\"request\":{\"model\":\"models/gemini-embedding-001\",\"content\":{\"parts\":[{\"text\":"
    "\"first chunk\"}]},\"taskType\":\"RETRIEVAL_DOCUMENT\",\"title\":\"Doc A\","
    "\"outputDimensionality\":768},\"metadata\":{\"key\":\"chunk-000001\"}},"
    "{\"request\":{\"content\":{\"parts\":[{\"text\":\"second \"},{\"text\":\"chunk\"}]},"
    "\"taskType\":\"RETRIEVAL_DOCUMENT\",\"outputDimensionality\":768},"
    "\"metadata\":{\"key\":\"chunk-000002\",\"n\":2}}]}}}}";

static void assert_rfc3339(const char *t)
{
    regex_t re;
    cr_assert(t, "timestamp missing");
    cr_assert_eq(regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{9}Z$",
                         REG_EXTENDED | REG_NOSUB),
                 0);
    cr_assert_eq(regexec(&re, t, 0, NULL, 0), 0, "not RFC 3339 with nanoseconds: %s", t);
    regfree(&re);
}

static char *create(const char *body)
{
    json_object *op = simh_call(&sim, "POST", CREATE_PATH, body, 200);
    char *name = strdup(simh_str(op, "name"));
    json_object_put(op);
    return name;
}

Test(batches, create_response_shape)
{
    json_object *op = simh_call(&sim, "POST", CREATE_PATH, two_requests, 200);
    const char *name = simh_str(op, "name");
    regex_t re;
    cr_assert_eq(regcomp(&re, "^batches/[a-z0-9]{36}$", REG_EXTENDED | REG_NOSUB), 0);
    cr_assert(name && regexec(&re, name, 0, NULL, 0) == 0, "bad batch name %s", name);
    regfree(&re);
    cr_assert_str_eq(simh_str(op, "metadata.@type"),
                     "type.googleapis.com/google.ai.generativelanguage.v1main.EmbedContentBatch");
    cr_assert_str_eq(simh_str(op, "metadata.model"), "models/gemini-embedding-001");
    cr_assert_str_eq(simh_str(op, "metadata.displayName"), "t-batch-1");
    cr_assert_str_eq(simh_str(op, "metadata.state"), "BATCH_STATE_PENDING");
    cr_assert_str_eq(simh_str(op, "metadata.name"), name);
    assert_rfc3339(simh_str(op, "metadata.createTime"));
    assert_rfc3339(simh_str(op, "metadata.updateTime"));
    cr_assert_null(simh_get(op, "metadata.endTime"));
    cr_assert_null(simh_get(op, "done"), "done must be absent until terminal");
    cr_assert_null(simh_get(op, "response"));
    cr_assert_null(simh_get(op, "metadata.output"));
    cr_assert_null(simh_get(op, "metadata.inputConfig"), "inline input is not echoed");
    cr_assert_str_eq(simh_str(op, "metadata.batchStats.requestCount"), "2");
    cr_assert_str_eq(simh_str(op, "metadata.batchStats.pendingRequestCount"), "2");
    cr_assert_null(simh_get(op, "metadata.batchStats.successfulRequestCount"),
                   "zero counts are omitted");
    cr_assert_null(simh_get(op, "metadata.batchStats.failedRequestCount"));
    json_object_put(op);
    cr_assert_eq(simh_stat(&sim, "creates"), 1);
    cr_assert_eq(simh_stat(&sim, "creates_accepted"), 1);
    cr_assert_eq(simh_stat(&sim, "texts_received"), 2);
}

static double norm(json_object *values)
{
    double s = 0;
    for (size_t i = 0; i < json_object_array_length(values); i++) {
        double x = json_object_get_double(json_object_array_get_idx(values, i));
        s += x * x;
    }
    return sqrt(s);
}

Test(batches, lifecycle_and_inline_results)
{
    char *name = create(two_requests);
    json_object *op = simh_wait_state(&sim, name, "BATCH_STATE_RUNNING", 5000);
    cr_assert_null(simh_get(op, "done"));
    cr_assert_null(simh_get(op, "metadata.endTime"));
    json_object_put(op);
    op = simh_wait_state(&sim, name, "BATCH_STATE_SUCCEEDED", 5000);
    cr_assert(json_object_get_boolean(simh_get(op, "done")));
    assert_rfc3339(simh_str(op, "metadata.endTime"));
    cr_assert_str_eq(simh_str(op, "metadata.batchStats.requestCount"), "2");
    cr_assert_str_eq(simh_str(op, "metadata.batchStats.successfulRequestCount"), "2");
    cr_assert_null(simh_get(op, "metadata.batchStats.failedRequestCount"));
    cr_assert_null(simh_get(op, "metadata.batchStats.pendingRequestCount"));
    cr_assert_null(simh_get(op, "error"));
    cr_assert_str_eq(
        simh_str(op, "response.@type"),
        "type.googleapis.com/google.ai.generativelanguage.v1main.EmbedContentBatchOutput");
    json_object *a = simh_get(op, "response.inlinedResponses.inlinedResponses");
    json_object *b = simh_get(op, "metadata.output.inlinedResponses.inlinedResponses");
    cr_assert(a && b, "results must be in both response and metadata.output");
    cr_assert_str_eq(json_object_to_json_string(a), json_object_to_json_string(b));
    cr_assert_eq(json_object_array_length(a), 2);

    float exp[768];
    simh_expected_vector("gemini-embedding-001", 3072, "RETRIEVAL_DOCUMENT", "first chunk", 11, 768,
                         exp);
    cr_assert_str_eq(simh_str(a, "0.metadata.key"), "chunk-000001");
    simh_assert_vector(simh_get(a, "0.response.embedding.values"), exp, 768);
    cr_assert_str_eq(simh_str(a, "0.response.tokenCount"), "4");
    simh_expected_vector("gemini-embedding-001", 3072, "RETRIEVAL_DOCUMENT", "second chunk", 12,
                         768, exp);
    cr_assert_str_eq(simh_str(a, "1.metadata.key"), "chunk-000002");
    cr_assert_eq(json_object_get_int(simh_get(a, "1.metadata.n")), 2, "metadata echoed whole");
    simh_assert_vector(simh_get(a, "1.response.embedding.values"), exp, 768);
    double n = norm(simh_get(a, "1.response.embedding.values"));
    cr_assert(n < 0.9, "a truncated 768-d vector is not unit length (norm %f)", n);
    json_object_put(op);
    free(name);
}

Test(batches, full_dimension_is_unit_length)
{
    char *name = create("{\"batch\":{\"inputConfig\":{\"requests\":{\"requests\":[{\"request\":"
                        "{\"content\":{\"parts\":[{\"text\":\"hello\"}]}}}]}}}}");
    json_object *op = simh_wait_state(&sim, name, "BATCH_STATE_SUCCEEDED", 5000);
    json_object *v = simh_get(op, "response.inlinedResponses.inlinedResponses.0.response."
                                  "embedding.values");
    cr_assert_eq(json_object_array_length(v), 3072);
    cr_assert(fabs(norm(v) - 1.0) < 1e-5, "3072-d vector norm %f", norm(v));
    float *exp = malloc(3072 * sizeof(float));
    simh_expected_vector("gemini-embedding-001", 3072, "TASK_TYPE_UNSPECIFIED", "hello", 5, 3072,
                         exp);
    simh_assert_vector(v, exp, 3072);
    cr_assert_null(simh_get(op, "metadata.displayName"));
    cr_assert_null(simh_get(op, "response.inlinedResponses.inlinedResponses.0.metadata"),
                   "no metadata sent, none echoed");
    free(exp);
    json_object_put(op);
    free(name);
}

Test(batches, snake_case_and_sdk_shapes_accepted)
{
    /* the GUIDE's snake_case spelling */
    char *n1 = create("{\"batch\":{\"display_name\":\"snake\",\"input_config\":{\"requests\":{"
                      "\"requests\":[{\"request\":{\"content\":{\"parts\":[{\"text\":\"x\"}]},"
                      "\"task_type\":\"CLUSTERING\",\"output_dimensionality\":\"16\"},"
                      "\"metadata\":{\"key\":\"k\"}}]}},\"priority\":\"5\"}}");
    /* the JS SDK's shape: role inside content, no model, no metadata */
    char *n2 = create("{\"batch\":{\"inputConfig\":{\"requests\":{\"requests\":[{\"request\":{"
                      "\"content\":{\"role\":\"user\",\"parts\":[{\"text\":\"x\"}]},\"taskType\":"
                      "\"CLUSTERING\",\"title\":\"t\",\"outputDimensionality\":16}}]}},"
                      "\"displayName\":\"demo\",\"model\":\"models/gemini-embedding-001\"}}");
    json_object *a = simh_wait_state(&sim, n1, "BATCH_STATE_SUCCEEDED", 5000);
    json_object *b = simh_wait_state(&sim, n2, "BATCH_STATE_SUCCEEDED", 5000);
    cr_assert_str_eq(simh_str(a, "metadata.displayName"), "snake");
    cr_assert_str_eq(simh_str(a, "metadata.priority"), "5", "int64 priority as a string");
    float exp[16];
    simh_expected_vector("gemini-embedding-001", 3072, "CLUSTERING", "x", 1, 16, exp);
    simh_assert_vector(simh_get(a, "response.inlinedResponses.inlinedResponses.0.response."
                                   "embedding.values"),
                       exp, 16);
    simh_assert_vector(simh_get(b, "response.inlinedResponses.inlinedResponses.0.response."
                                   "embedding.values"),
                       exp, 16);
    json_object_put(a);
    json_object_put(b);
    free(n1);
    free(n2);
}

Test(batches, task_type_and_model_change_the_vector)
{
    char *n1 = create("{\"batch\":{\"inputConfig\":{\"requests\":{\"requests\":["
                      "{\"request\":{\"content\":{\"parts\":[{\"text\":\"same\"}]},\"taskType\":"
                      "\"RETRIEVAL_QUERY\",\"outputDimensionality\":8}},"
                      "{\"request\":{\"content\":{\"parts\":[{\"text\":\"same\"}]},\"taskType\":"
                      "3,\"outputDimensionality\":8}}]}}}}");
    json_object *op = simh_wait_state(&sim, n1, "BATCH_STATE_SUCCEEDED", 5000);
    json_object *items = simh_get(op, "response.inlinedResponses.inlinedResponses");
    float q[8], s[8];
    simh_expected_vector("gemini-embedding-001", 3072, "RETRIEVAL_QUERY", "same", 4, 8, q);
    simh_expected_vector("gemini-embedding-001", 3072, "SEMANTIC_SIMILARITY", "same", 4, 8, s);
    cr_assert(q[0] != s[0] || q[1] != s[1]);
    simh_assert_vector(simh_get(items, "0.response.embedding.values"), q, 8);
    simh_assert_vector(simh_get(items, "1.response.embedding.values"), s, 8);
    json_object_put(op);
    free(n1);
}

Test(batches, both_api_versions)
{
    json_object *op = simh_call(
        &sim, "POST", "/v1/models/gemini-embedding-001:asyncBatchEmbedContent", two_requests, 200);
    char path[128];
    snprintf(path, sizeof(path), "/v1/%s", simh_str(op, "name"));
    json_object *g1 = simh_call(&sim, "GET", path, NULL, 200);
    snprintf(path, sizeof(path), "/v1beta/%s", simh_str(op, "name"));
    json_object *g2 = simh_call(&sim, "GET", path, NULL, 200);
    cr_assert_str_eq(simh_str(g1, "name"), simh_str(g2, "name"));
    json_object_put(g1);
    json_object_put(g2);
    json_object_put(op);
}

static void expect_error(const char *method, const char *path, const char *body, long http,
                         const char *status, const char *msg_part)
{
    struct simh_resp r;
    simh_req(&sim, &r, method, path, body, body ? strlen(body) : 0, NULL, true);
    simh_assert_error(&r, http, status);
    if (msg_part)
        cr_assert(strstr(r.body, msg_part), "message lacks \"%s\": %s", msg_part, r.body);
    simh_resp_free(&r);
}

Test(batches, strict_request_validation)
{
    expect_error("POST", CREATE_PATH,
                 "{\"batch\":{\"inputConfig\":{\"requests\":{\"requests\":"
                 "[{\"request\":{\"content\":{\"parts\":[{\"text\":\"x\"}]},"
                 "\"outputDimensionalty\":8}}]}}}}",
                 400, "INVALID_ARGUMENT",
                 "Unknown name \\\"outputDimensionalty\\\" at "
                 "'batch.input_config.requests.requests[0].request': Cannot find field.");
    expect_error("POST", CREATE_PATH, "{\"batsh\":{}}", 400, "INVALID_ARGUMENT",
                 "Unknown name \\\"batsh\\\": Cannot find field.");
    expect_error("POST", CREATE_PATH,
                 "{\"batch\":{\"inputConfig\":{\"fileName\":\"files/abc\",\"requests\":{"
                 "\"requests\":[{\"request\":{\"content\":{\"parts\":[{\"text\":\"x\"}]}}}]}}}}",
                 400, "INVALID_ARGUMENT", "exactly one of file_name and requests");
    expect_error("POST", CREATE_PATH, "{\"batch\":{\"inputConfig\":{}}}", 400, "INVALID_ARGUMENT",
                 "exactly one of file_name and requests");
    expect_error("POST", CREATE_PATH, "{\"batch\":{\"displayName\":\"x\"}}", 400,
                 "INVALID_ARGUMENT", "input_config");
    expect_error("POST", CREATE_PATH,
                 "{\"batch\":{\"priority\":\"high\",\"inputConfig\":{"
                 "\"fileName\":\"files/a\"}}}",
                 400, "INVALID_ARGUMENT", "Invalid value at 'batch.priority' (TYPE_INT64)");
    expect_error("POST", CREATE_PATH,
                 "{\"batch\":{\"inputConfig\":{\"requests\":{\"requests\":"
                 "[{\"request\":{\"content\":{\"parts\":[{\"text\":\"x\"}]},"
                 "\"taskType\":\"RETRIEVAL\"}}]}}}}",
                 400, "INVALID_ARGUMENT", "task_type");
    expect_error("POST", CREATE_PATH,
                 "{\"batch\":{\"inputConfig\":{\"requests\":{\"requests\":"
                 "[{\"request\":{\"content\":{\"parts\":[{\"text\":\"\"}]}}}"
                 "]}}}}",
                 400, "INVALID_ARGUMENT", NULL);
    expect_error("POST", CREATE_PATH,
                 "{\"batch\":{\"inputConfig\":{\"requests\":{\"requests\":"
                 "[]}}}}",
                 400, "INVALID_ARGUMENT", NULL);
    expect_error("POST", CREATE_PATH,
                 "{\"batch\":{\"inputConfig\":{\"requests\":{\"requests\":"
                 "[{\"request\":{\"model\":\"models/other\",\"content\":{"
                 "\"parts\":[{\"text\":\"x\"}]}}}]}}}}",
                 400, "INVALID_ARGUMENT", NULL);
    expect_error("POST", CREATE_PATH,
                 "{\"batch\":{\"inputConfig\":{\"requests\":{\"requests\":"
                 "[{\"request\":{\"content\":{\"parts\":[{\"text\":\"x\"}]},"
                 "\"outputDimensionality\":4000}}]}}}}",
                 400, "INVALID_ARGUMENT", NULL);
    expect_error("POST", CREATE_PATH,
                 "{\"batch\":{\"inputConfig\":{\"requests\":{\"requests\":"
                 "[{\"request\":{\"content\":{\"parts\":[{\"text\":\"x\"}]}"
                 "},\"metadata\":\"k\"}]}}}}",
                 400, "INVALID_ARGUMENT", "google.protobuf.Struct");
    expect_error("POST", CREATE_PATH, "{\"batch\": {", 400, "INVALID_ARGUMENT",
                 "Invalid JSON payload received.");
    expect_error("POST", CREATE_PATH, "{\"batch\":{}} trailing", 400, "INVALID_ARGUMENT",
                 "Invalid JSON payload received.");
    expect_error("POST", CREATE_PATH, "", 400, "INVALID_ARGUMENT", NULL);
    expect_error("POST", CREATE_PATH, "{\"batch\":{\"displayName\":\"\xff\xfe\"}}", 400,
                 "INVALID_ARGUMENT", NULL);
    /* nothing above created a batch */
    cr_assert_eq(simh_stat(&sim, "creates_accepted"), 0);
    cr_assert_eq(simh_stat(&sim, "batches"), 0);
}

Test(batches, bad_field_reports_field_violation)
{
    struct simh_resp r;
    const char *body = "{\"batch\":{\"inputConfig\":{\"requests\":{\"requests\":[{\"request\":"
                       "{\"content\":{\"parts\":[{\"text\":\"x\"}]},\"foo\":1}}]}}}}";
    simh_req(&sim, &r, "POST", CREATE_PATH, body, strlen(body), NULL, true);
    simh_assert_error(&r, 400, "INVALID_ARGUMENT");
    json_object *o = simh_json(&r);
    cr_assert_str_eq(simh_str(o, "error.details.0.@type"),
                     "type.googleapis.com/google.rpc.BadRequest");
    cr_assert_str_eq(simh_str(o, "error.details.0.fieldViolations.0.field"),
                     "batch.input_config.requests.requests[0].request");
    json_object_put(o);
    simh_resp_free(&r);
}

Test(batches, models_without_batch_support)
{
    expect_error("POST", "/v1beta/models/text-embedding-004:asyncBatchEmbedContent", two_requests,
                 404, "NOT_FOUND",
                 "models/text-embedding-004 is not found for API version v1beta, or is not "
                 "supported for asyncBatchEmbedContent");
    expect_error("POST", "/v1beta/models/no-such-model:asyncBatchEmbedContent", two_requests, 404,
                 "NOT_FOUND", NULL);
    expect_error("POST", "/v1beta/models/gemini-embedding-001:fooBar", two_requests, 404,
                 "NOT_FOUND", NULL);
}

Test(batches, unknown_routes_and_ids)
{
    expect_error("GET", "/v1beta/batches/doesnotexist", NULL, 404, "NOT_FOUND", NULL);
    expect_error("POST", "/v1beta/batches/doesnotexist:cancel", NULL, 404, "NOT_FOUND", NULL);
    expect_error("DELETE", "/v1beta/batches/doesnotexist", NULL, 404, "NOT_FOUND", NULL);
    expect_error("GET", "/v1beta/nothing", NULL, 404, "NOT_FOUND", NULL);
    expect_error("GET", "/v2/batches", NULL, 404, "NOT_FOUND", NULL);
    expect_error("PUT", "/v1beta/batches", NULL, 404, "NOT_FOUND", NULL);
    expect_error("GET", "/v1beta/batches/Bad.Id", NULL, 404, "NOT_FOUND", NULL);
}

Test(batches, authentication)
{
    struct simh_resp r;
    simh_req(&sim, &r, "GET", "/v1beta/batches", NULL, 0, NULL, false);
    simh_assert_error(&r, 403, "PERMISSION_DENIED");
    simh_resp_free(&r);

    static const char *const wrong[] = {"x-goog-api-key: nope", NULL};
    simh_req(&sim, &r, "GET", "/v1beta/batches", NULL, 0, wrong, false);
    simh_assert_error(&r, 400, "INVALID_ARGUMENT");
    json_object *o = simh_json(&r);
    cr_assert_str_eq(simh_str(o, "error.message"),
                     "API key not valid. Please pass a valid API key.");
    cr_assert_str_eq(simh_str(o, "error.details.0.reason"), "API_KEY_INVALID");
    json_object_put(o);
    simh_resp_free(&r);

    simh_req(&sim, &r, "GET", "/v1beta/batches?key=wrong", NULL, 0, NULL, false);
    simh_assert_error(&r, 400, "INVALID_ARGUMENT");
    simh_resp_free(&r);

    simh_req(&sim, &r, "GET", "/v1beta/batches?key=" SIMH_KEY, NULL, 0, NULL, false);
    cr_assert_eq(r.status, 200);
    simh_resp_free(&r);
    cr_assert_eq(simh_stat(&sim, "auth_failures"), 3);
}

Test(batches, list_paging_and_empty)
{
    json_object *o = simh_call(&sim, "GET", "/v1beta/batches", NULL, 200);
    cr_assert_eq(json_object_object_length(o), 0, "an empty list is {}");
    json_object_put(o);
    char *names[3];
    for (int i = 0; i < 3; i++)
        names[i] = create(two_requests);
    json_object_put(simh_wait_state(&sim, names[0], "BATCH_STATE_SUCCEEDED", 5000));

    json_object *p1 = simh_call(&sim, "GET", "/v1beta/batches?pageSize=2", NULL, 200);
    json_object *ops = simh_get(p1, "operations");
    cr_assert_eq(json_object_array_length(ops), 2);
    cr_assert_str_eq(simh_str(ops, "0.name"), names[2], "newest first");
    cr_assert_str_eq(simh_str(ops, "1.name"), names[1]);
    const char *tok = simh_str(p1, "nextPageToken");
    cr_assert(tok && *tok);
    char path[256];
    snprintf(path, sizeof(path), "/v1beta/batches?pageSize=2&pageToken=%s", tok);
    json_object *p2 = simh_call(&sim, "GET", path, NULL, 200);
    json_object *ops2 = simh_get(p2, "operations");
    cr_assert_eq(json_object_array_length(ops2), 1);
    cr_assert_str_eq(simh_str(ops2, "0.name"), names[0]);
    cr_assert_null(simh_get(p2, "nextPageToken"));
    /* list entries carry state and stats but no results, even when done */
    cr_assert_str_eq(simh_str(ops2, "0.metadata.state"), "BATCH_STATE_SUCCEEDED");
    cr_assert(json_object_get_boolean(simh_get(ops2, "0.done")));
    cr_assert_null(simh_get(ops2, "0.response"));
    cr_assert_null(simh_get(ops2, "0.metadata.output"));
    cr_assert_str_eq(simh_str(ops2, "0.metadata.batchStats.successfulRequestCount"), "2");
    json_object_put(p1);
    json_object_put(p2);
    expect_error("GET", "/v1beta/batches?pageToken=garbage", NULL, 400, "INVALID_ARGUMENT", NULL);
    expect_error("GET", "/v1beta/batches?pageSize=-1", NULL, 400, "INVALID_ARGUMENT", NULL);
    cr_assert_eq(simh_stat(&sim, "lists"), 3);
    for (int i = 0; i < 3; i++)
        free(names[i]);
}

Test(batches, cancel_and_delete)
{
    simh_config(&sim, "{\"running_ms\":600000}");
    char *name = create(two_requests);
    json_object_put(simh_wait_state(&sim, name, "BATCH_STATE_RUNNING", 5000));
    char path[128];
    snprintf(path, sizeof(path), "/v1beta/%s:cancel", name);
    json_object *o = simh_call(&sim, "POST", path, "{}", 200);
    cr_assert_eq(json_object_object_length(o), 0, "cancel returns {}");
    json_object_put(o);
    json_object *op = simh_wait_state(&sim, name, "BATCH_STATE_CANCELLED", 1000);
    cr_assert(json_object_get_boolean(simh_get(op, "done")));
    cr_assert_eq(json_object_get_int(simh_get(op, "error.code")), 1);
    cr_assert_null(simh_get(op, "response"));
    assert_rfc3339(simh_str(op, "metadata.endTime"));
    json_object_put(op);
    /* cancelling a finished batch changes nothing */
    json_object_put(simh_call(&sim, "POST", path, "{}", 200));
    json_object_put(simh_wait_state(&sim, name, "BATCH_STATE_CANCELLED", 1000));

    snprintf(path, sizeof(path), "/v1beta/%s", name);
    o = simh_call(&sim, "DELETE", path, NULL, 200);
    cr_assert_eq(json_object_object_length(o), 0, "delete returns {}");
    json_object_put(o);
    expect_error("GET", path, NULL, 404, "NOT_FOUND", NULL);
    o = simh_call(&sim, "GET", "/v1beta/batches", NULL, 200);
    cr_assert_eq(json_object_object_length(o), 0);
    json_object_put(o);
    cr_assert_eq(simh_stat(&sim, "cancels"), 2);
    cr_assert_eq(simh_stat(&sim, "deletes"), 1);
    free(name);
}

Test(batches, over_long_text_fails_per_item)
{
    simh_config(&sim, "{\"max_input_tokens\":3}");
    char *name = create("{\"batch\":{\"inputConfig\":{\"requests\":{\"requests\":["
                        "{\"request\":{\"content\":{\"parts\":[{\"text\":\"short\"}]},"
                        "\"outputDimensionality\":4},\"metadata\":{\"key\":\"a\"}},"
                        "{\"request\":{\"content\":{\"parts\":[{\"text\":\"a b c d e f\"}]},"
                        "\"outputDimensionality\":4},\"metadata\":{\"key\":\"b\"}}]}}}}");
    json_object *op = simh_wait_state(&sim, name, "BATCH_STATE_SUCCEEDED", 5000);
    json_object *items = simh_get(op, "response.inlinedResponses.inlinedResponses");
    cr_assert(simh_get(items, "0.response.embedding.values"));
    cr_assert_eq(json_object_get_int(simh_get(items, "1.error.code")), 3);
    cr_assert_str_eq(simh_str(items, "1.metadata.key"), "b");
    cr_assert_null(simh_get(items, "1.response"));
    cr_assert_str_eq(simh_str(op, "metadata.batchStats.failedRequestCount"), "1");
    cr_assert_str_eq(simh_str(op, "metadata.batchStats.successfulRequestCount"), "1");
    json_object_put(op);
    free(name);
}

/* Build an inline batch body of about target bytes with texts of text_len bytes. */
static char *big_body(size_t target, size_t text_len, size_t *n_out, size_t *len_out)
{
    size_t cap = target + 1024 * 1024;
    char *b = malloc(cap);
    size_t len = (size_t)snprintf(b, cap,
                                  "{\"batch\":{\"displayName\":\"big\",\"inputConfig\":{"
                                  "\"requests\":{\"requests\":[");
    size_t n = 0;
    while (len + text_len + 200 < target) {
        len += (size_t)snprintf(b + len, cap - len,
                                "%s{\"request\":{\"outputDimensionality\":8,\"content\":{\"parts\":"
                                "[{\"text\":\"%06zu ",
                                n ? "," : "", n);
        for (size_t i = 0; i < text_len; i++)
            b[len++] = (i % 5 == 4) ? ' ' : (char)('a' + (i + n) % 26);
        len += (size_t)snprintf(b + len, cap - len, "\"}]}},\"metadata\":{\"key\":\"k%zu\"}}", n);
        n++;
    }
    len += (size_t)snprintf(b + len, cap - len, "]}}}}");
    *n_out = n;
    *len_out = len;
    return b;
}

Test(batches, twenty_mb_inline_batch)
{
    size_t n, len;
    char *body = big_body(20000000, 6000, &n, &len);
    cr_assert(len > 19900000 && len <= 20000000, "body is %zu bytes", len);
    struct simh_resp r;
    simh_req(&sim, &r, "POST", CREATE_PATH, body, len, NULL, true);
    cr_assert_eq(r.status, 200, "20 MB batch refused: %.300s", r.body);
    json_object *op = simh_json(&r);
    char *name = strdup(simh_str(op, "name"));
    json_object_put(op);
    simh_resp_free(&r);
    op = simh_wait_state(&sim, name, "BATCH_STATE_SUCCEEDED", 30000);
    json_object *items = simh_get(op, "response.inlinedResponses.inlinedResponses");
    cr_assert_eq(json_object_array_length(items), n);
    char key[32];
    snprintf(key, sizeof(key), "k%zu", n - 1);
    cr_assert_str_eq(simh_str(items, "1.metadata.key"), "k1");
    json_object *last = json_object_array_get_idx(items, n - 1);
    cr_assert_str_eq(simh_str(last, "metadata.key"), key);
    cr_assert_eq(json_object_array_length(simh_get(last, "response.embedding.values")), 8);
    json_object_put(op);
    free(name);
    free(body);
}

Test(batches, over_twenty_mib_is_refused)
{
    size_t n, len;
    char *body = big_body(21000000, 6000, &n, &len);
    cr_assert(len > 20971520);
    struct simh_resp r;
    simh_req(&sim, &r, "POST", CREATE_PATH, body, len, NULL, true);
    simh_assert_error(&r, 400, "INVALID_ARGUMENT");
    cr_assert(strstr(r.body, "Request payload size exceeds the limit: 20971520 bytes."), "%s",
              r.body);
    simh_resp_free(&r);
    cr_assert_eq(simh_stat(&sim, "creates_accepted"), 0);
    free(body);
}
