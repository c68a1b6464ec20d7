/* test_sim_faults.c: every gemini-sim fault, the control API, counters, determinism and --help. */
#include "harness.h"

#include "util/buf.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct simh sim;

static void start_fast(void)
{
    static const char *const f[] = {"--pending-ms=10", "--running-ms=20", "--seed=11", NULL};
    simh_start(&sim, f);
}

static void stop(void)
{
    simh_stop(&sim);
}

TestSuite(faults, .init = start_fast, .fini = stop, .timeout = 120);

#define CREATE "/v1beta/models/gemini-embedding-001:asyncBatchEmbedContent"

/* An inline batch body of n texts "t<i>" (plus marker in every 10th), dims 8. */
static char *batch_body(int n, const char *marker)
{
    size_t cap = (size_t)n * 160 + 256;
    char *b = malloc(cap);
    size_t len = (size_t)snprintf(b, cap,
                                  "{\"batch\":{\"displayName\":\"f\",\"inputConfig\":{"
                                  "\"requests\":{\"requests\":[");
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(b + len, cap - len,
                                "%s{\"request\":{\"content\":{\"parts\":[{\"text\":\"t%d%s\"}]},"
                                "\"outputDimensionality\":8},\"metadata\":{\"key\":\"k%d\"}}",
                                i ? "," : "", i, marker && i % 10 == 0 ? marker : "", i);
    snprintf(b + len, cap - len, "]}}}}");
    return b;
}

static char *create(const char *body)
{
    json_object *op = simh_call(&sim, "POST", CREATE, body, 200);
    char *name = strdup(simh_str(op, "name"));
    json_object_put(op);
    return name;
}

/* Keys of failed items, in key order, as one string. */
static char *failed_keys(json_object *items)
{
    size_t n = json_object_array_length(items);
    struct buf out;
    buf_init(&out, 1 << 20);
    for (size_t i = 0; i < n; i++) {
        char key[32];
        snprintf(key, sizeof(key), "k%zu", i % 100000);
        for (size_t k = 0; k < n; k++) {
            json_object *it = json_object_array_get_idx(items, k);
            if (strcmp(simh_str(it, "metadata.key"), key) == 0 && simh_get(it, "error"))
                cr_assert(buf_printf(&out, "%s,", key));
        }
    }
    return buf_steal(&out, NULL);
}

static char *run_item_errors(void)
{
    simh_config(&sim, "{\"item_error_rate\":0.3}");
    char *body = batch_body(200, NULL);
    char *name = create(body);
    json_object *op = simh_wait_state(&sim, name, "BATCH_STATE_SUCCEEDED", 10000);
    json_object *items = simh_get(op, "response.inlinedResponses.inlinedResponses");
    int failed = 0;
    for (size_t i = 0; i < json_object_array_length(items); i++) {
        json_object *it = json_object_array_get_idx(items, i);
        if (simh_get(it, "error")) {
            failed++;
            cr_assert_eq(json_object_get_int(simh_get(it, "error.code")), 13);
            cr_assert(simh_str(it, "error.message"));
            cr_assert_null(simh_get(it, "response"));
        }
    }
    cr_assert(failed > 20 && failed < 100, "%d of 200 failed at rate 0.3", failed);
    char want[16];
    snprintf(want, sizeof(want), "%d", failed);
    cr_assert_str_eq(simh_str(op, "metadata.batchStats.failedRequestCount"), want);
    snprintf(want, sizeof(want), "%d", 200 - failed);
    cr_assert_str_eq(simh_str(op, "metadata.batchStats.successfulRequestCount"), want);
    char *keys = failed_keys(items);
    json_object_put(op);
    free(name);
    free(body);
    return keys;
}

Test(faults, item_errors_are_deterministic_under_the_seed)
{
    char *first = run_item_errors();
    simh_stop(&sim);
    start_fast(); /* a fresh simulator, same seed, same requests */
    char *second = run_item_errors();
    cr_assert_str_eq(first, second, "the same items fail");
    free(first);
    free(second);
}

Test(faults, item_error_code_and_marker)
{
    simh_config(&sim, "{\"item_error_code\":3,\"fail_marker\":\"BOOM\"}");
    char *body = batch_body(30, "BOOM");
    char *name = create(body);
    json_object *op = simh_wait_state(&sim, name, "BATCH_STATE_SUCCEEDED", 10000);
    json_object *items = simh_get(op, "response.inlinedResponses.inlinedResponses");
    for (size_t i = 0; i < 30; i++) {
        json_object *it = json_object_array_get_idx(items, i);
        bool marked = i % 10 == 0;
        cr_assert_eq(simh_get(it, "error") != NULL, marked, "item %zu", i);
        if (marked)
            cr_assert_eq(json_object_get_int(simh_get(it, "error.code")), 3);
    }
    json_object_put(op);
    free(name);
    free(body);
}

Test(faults, whole_batch_outcomes)
{
    char *body = batch_body(3, NULL);
    simh_config(&sim, "{\"batch_fail_rate\":1}");
    char *n1 = create(body);
    json_object *op = simh_wait_state(&sim, n1, "BATCH_STATE_FAILED", 10000);
    cr_assert(json_object_get_boolean(simh_get(op, "done")));
    cr_assert_eq(json_object_get_int(simh_get(op, "error.code")), 13);
    cr_assert(simh_str(op, "error.message"));
    cr_assert_null(simh_get(op, "response"));
    cr_assert_null(simh_get(op, "metadata.output"));
    json_object_put(op);

    simh_config(&sim, "{\"batch_fail_rate\":0,\"batch_expire_rate\":1}");
    char *n2 = create(body);
    op = simh_wait_state(&sim, n2, "BATCH_STATE_EXPIRED", 10000);
    cr_assert(json_object_get_boolean(simh_get(op, "done")));
    cr_assert_eq(json_object_get_int(simh_get(op, "error.code")), 4);
    cr_assert_null(simh_get(op, "response"));
    json_object_put(op);

    simh_config(&sim, "{\"batch_expire_rate\":0,\"batch_stuck_rate\":1}");
    char *n3 = create(body);
    json_object_put(simh_wait_state(&sim, n3, "BATCH_STATE_RUNNING", 10000));
    int64_t until = simh_ms() + 300; /* 15 times its running time */
    while (simh_ms() < until) {
        json_object *g = simh_wait_state(&sim, n3, "BATCH_STATE_RUNNING", 1000);
        cr_assert_null(simh_get(g, "done"));
        json_object_put(g);
    }
    char path[128];
    snprintf(path, sizeof(path), "/v1beta/%s:cancel", n3);
    json_object_put(simh_call(&sim, "POST", path, "{}", 200));
    op = simh_wait_state(&sim, n3, "BATCH_STATE_CANCELLED", 1000);
    cr_assert_eq(json_object_get_int(simh_get(op, "error.code")), 1);
    json_object_put(op);
    free(n1);
    free(n2);
    free(n3);
    free(body);
}

static void expect_status(const char *method, const char *path, const char *body, long status,
                          const char *grpc)
{
    struct simh_resp r;
    simh_req(&sim, &r, method, path, body, body ? strlen(body) : 0, NULL, true);
    simh_assert_error(&r, status, grpc);
    simh_resp_free(&r);
}

Test(faults, rate_limits_with_and_without_retry_info)
{
    simh_config(&sim, "{\"http_error_count\":2,\"http_error_code\":429,\"retry_delay\":\"3s\"}");
    char *body = batch_body(2, NULL);
    for (int i = 0; i < 2; i++) {
        struct simh_resp r;
        simh_req(&sim, &r, "POST", CREATE, body, strlen(body), NULL, true);
        simh_assert_error(&r, 429, "RESOURCE_EXHAUSTED");
        json_object *o = simh_json(&r);
        json_object *d = simh_get(o, "error.details");
        bool retry = false;
        for (size_t k = 0; d && k < json_object_array_length(d); k++) {
            json_object *x = json_object_array_get_idx(d, k);
            if (strcmp(simh_str(x, "@type"), "type.googleapis.com/google.rpc.RetryInfo") == 0) {
                cr_assert_str_eq(simh_str(x, "retryDelay"), "3s");
                retry = true;
            }
        }
        cr_assert(retry, "RetryInfo present: %s", r.body);
        json_object_put(o);
        simh_resp_free(&r);
    }
    cr_assert_eq(simh_stat(&sim, "creates_accepted"), 0, "a 429'd create creates nothing");
    free(create(body));
    simh_config(&sim, "{\"http_error_count\":1,\"retry_delay\":\"\"}");
    struct simh_resp r;
    simh_req(&sim, &r, "GET", "/v1beta/batches", NULL, 0, NULL, true);
    simh_assert_error(&r, 429, "RESOURCE_EXHAUSTED");
    cr_assert_null(strstr(r.body, "RetryInfo"), "no RetryInfo without retry_delay");
    simh_resp_free(&r);
    cr_assert_eq(simh_stat(&sim, "faults.http_error"), 3);
    free(body);
}

Test(faults, server_errors_and_scope)
{
    simh_config(&sim, "{\"http_error_count\":1,\"http_error_code\":500}");
    expect_status("GET", "/v1beta/batches", NULL, 500, "INTERNAL");
    simh_config(&sim, "{\"http_error_count\":1,\"http_error_code\":503}");
    expect_status("GET", "/v1beta/batches", NULL, 503, "UNAVAILABLE");
    /* only GET batches/{id} fails; creates, lists and the control API are untouched */
    simh_config(&sim, "{\"http_error_rate\":1,\"http_error_code\":503,\"fault_scope\":\"get\"}");
    char *body = batch_body(1, NULL);
    char *name = create(body);
    json_object_put(simh_call(&sim, "GET", "/v1beta/batches", NULL, 200));
    char path[128];
    snprintf(path, sizeof(path), "/v1beta/%s", name);
    expect_status("GET", path, NULL, 503, "UNAVAILABLE");
    cr_assert_eq(simh_stat(&sim, "creates_accepted"), 1);
    free(name);
    free(body);
}

Test(faults, latency)
{
    simh_config(&sim, "{\"latency_ms\":300}");
    int64_t t0 = simh_ms();
    json_object_put(simh_call(&sim, "GET", "/v1beta/batches", NULL, 200));
    cr_assert_geq(simh_ms() - t0, 300, "added latency");
    cr_assert_eq(simh_stat(&sim, "faults.latency"), 1);
}

Test(faults, dropped_response_after_the_side_effect)
{
    simh_config(&sim, "{\"drop_count\":1}");
    char *body = batch_body(200, NULL);
    struct simh_resp r;
    simh_req(&sim, &r, "POST", CREATE, body, strlen(body), NULL, true);
    cr_assert_neq(r.curl_code, 0, "the transfer must fail (got status %ld)", r.status);
    simh_resp_free(&r);
    cr_assert_eq(simh_stat(&sim, "faults.drop"), 1);
    cr_assert_eq(simh_stat(&sim, "creates_accepted"), 1, "the batch exists all the same");
    json_object *l = simh_call(&sim, "GET", "/v1beta/batches", NULL, 200);
    cr_assert_eq(json_object_array_length(simh_get(l, "operations")), 1);
    json_object_put(l);
    free(body);
}

Test(faults, malformed_body)
{
    simh_config(&sim, "{\"malformed_count\":1}");
    struct simh_resp r;
    simh_req(&sim, &r, "GET", "/v1beta/batches", NULL, 0, NULL, true);
    cr_assert_eq(r.status, 200);
    json_tokener *tok = json_tokener_new();
    json_object *o = json_tokener_parse_ex(tok, r.body, (int)r.len);
    cr_assert(!o || json_tokener_get_error(tok) != json_tokener_success,
              "a truncated body does not parse: %s", r.body);
    json_object_put(o);
    json_tokener_free(tok);
    simh_resp_free(&r);
    json_object_put(simh_call(&sim, "GET", "/v1beta/batches", NULL, 200));
    cr_assert_eq(simh_stat(&sim, "faults.malformed"), 1);
}

Test(faults, shuffle_and_missing_metadata)
{
    simh_config(&sim, "{\"shuffle\":true}");
    char *body = batch_body(50, NULL);
    char *name = create(body);
    json_object *op = simh_wait_state(&sim, name, "BATCH_STATE_SUCCEEDED", 10000);
    json_object *items = simh_get(op, "response.inlinedResponses.inlinedResponses");
    bool moved = false;
    for (size_t i = 0; i < 50; i++) {
        json_object *it = json_object_array_get_idx(items, i);
        const char *key = simh_str(it, "metadata.key");
        int k = (int)strtol(key + 1, NULL, 10);
        moved = moved || k != (int)i;
        char text[16];
        snprintf(text, sizeof(text), "t%d", k);
        float exp[8];
        simh_expected_vector("gemini-embedding-001", 3072, "TASK_TYPE_UNSPECIFIED", text,
                             strlen(text), 8, exp);
        simh_assert_vector(simh_get(it, "response.embedding.values"), exp, 8);
    }
    cr_assert(moved, "results are out of order");
    json_object_put(op);
    free(name);
    simh_config(&sim, "{\"shuffle\":false,\"omit_metadata\":true}");
    name = create(body);
    op = simh_wait_state(&sim, name, "BATCH_STATE_SUCCEEDED", 10000);
    items = simh_get(op, "response.inlinedResponses.inlinedResponses");
    for (size_t i = 0; i < 50; i++)
        cr_assert_null(simh_get(json_object_array_get_idx(items, i), "metadata"));
    json_object_put(op);
    free(name);
    free(body);
}

Test(faults, per_request_processing_cost)
{
    simh_config(&sim, "{\"running_ms\":0,\"per_request_us\":3000}");
    char *body = batch_body(100, NULL); /* 300 ms of RUNNING */
    char *name = create(body);
    json_object_put(simh_wait_state(&sim, name, "BATCH_STATE_RUNNING", 1000));
    json_object_put(simh_wait_state(&sim, name, "BATCH_STATE_SUCCEEDED", 10000));
    free(name);
    free(body);
}

Test(faults, control_api)
{
    simh_config(&sim, "{\"latency_ms\":5,\"fault_scope\":\"create,list\"}");
    json_object *c = simh_call(&sim, "GET", "/_sim/config", NULL, 200);
    cr_assert_eq(json_object_get_int(simh_get(c, "latency_ms")), 5);
    cr_assert_str_eq(simh_str(c, "fault_scope"), "create,list");
    cr_assert_eq(json_object_get_int(simh_get(c, "pending_ms")), 10);
    json_object_put(c);
    static const char *const bad[] = {"{\"no_such\":1}",
                                      "{\"latency_ms\":\"5\"}",
                                      "{\"item_error_rate\":2}",
                                      "{\"fault_scope\":\"x\"}",
                                      "[1]",
                                      "{"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct simh_resp r;
        simh_req(&sim, &r, "PUT", "/_sim/config", bad[i], strlen(bad[i]), NULL, false);
        cr_assert_eq(r.status, 400, "%s accepted", bad[i]);
        simh_resp_free(&r);
    }
    c = simh_call(&sim, "GET", "/_sim/config", NULL, 200);
    cr_assert_eq(json_object_get_int(simh_get(c, "latency_ms")), 5, "bad updates change nothing");
    json_object_put(c);

    char *body = batch_body(3, NULL);
    char *name = create(body);
    free(name);
    cr_assert_eq(simh_stat(&sim, "batches"), 1);
    json_object_put(simh_call(&sim, "POST", "/_sim/reset", NULL, 200));
    cr_assert_eq(simh_stat(&sim, "batches"), 0);
    cr_assert_eq(simh_stat(&sim, "creates"), 0);
    c = simh_call(&sim, "GET", "/_sim/config", NULL, 200);
    cr_assert_eq(json_object_get_int(simh_get(c, "latency_ms")), 0, "start-up settings restored");
    json_object_put(c);
    json_object *h = simh_call(&sim, "GET", "/_sim/health", NULL, 200);
    cr_assert_str_eq(simh_str(h, "status"), "ok");
    json_object_put(h);
    free(body);
}

Test(faults, counters)
{
    char *body = batch_body(3, NULL);
    char *n1 = create(body);
    char *n2 = create(body); /* the same three texts again: double payment */
    const char *dup = "{\"batch\":{\"inputConfig\":{\"requests\":{\"requests\":["
                      "{\"request\":{\"content\":{\"parts\":[{\"text\":\"same\"}]}}},"
                      "{\"request\":{\"content\":{\"parts\":[{\"text\":\"same\"}]}}}]}}}}";
    char *n3 = create(dup); /* twice in one batch is not a cross-batch duplicate */
    cr_assert_eq(simh_stat(&sim, "creates"), 3);
    cr_assert_eq(simh_stat(&sim, "texts_received"), 8);
    cr_assert_eq(simh_stat(&sim, "texts_unique"), 4);
    cr_assert_eq(simh_stat(&sim, "texts_duplicate"), 3);
    json_object_put(simh_wait_state(&sim, n1, "BATCH_STATE_SUCCEEDED", 10000));
    cr_assert_geq(simh_stat(&sim, "gets"), 1);
    json_object_put(simh_call(&sim, "GET", "/v1beta/batches", NULL, 200));
    json_object *s = simh_call(&sim, "GET", "/_sim/stats", NULL, 200);
    cr_assert_eq(json_object_get_int(simh_get(s, "lists")), 1);
    cr_assert_gt(json_object_get_int64(simh_get(s, "bytes_in")), 0);
    cr_assert_gt(json_object_get_int64(simh_get(s, "bytes_out")), 0);
    int total = 0;
    json_object_object_foreach(simh_get(s, "batches_by_state"), k, v)
    {
        (void)k;
        total += json_object_get_int(v);
    }
    cr_assert_eq(total, 3);
    json_object_put(s);
    free(n1);
    free(n2);
    free(n3);
    free(body);
}

Test(faults, help_lists_every_flag)
{
    char cmd[600];
    const char *bin = getenv("SIMH_SIM_BIN");
    if (!bin || !*bin)
        bin = getenv("GEMINI_SIM_BIN");
    snprintf(cmd, sizeof(cmd), "%s --help", bin);
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    char *text = calloc(1, 65536);
    size_t n = fread(text, 1, 65535, p);
    text[n] = '\0';
    cr_assert_eq(pclose(p), 0);
    static const char *const flags[] = {"--port",
                                        "--port-file",
                                        "--api-key",
                                        "--seed",
                                        "--pending-ms",
                                        "--running-ms",
                                        "--per-request-us",
                                        "--max-request-bytes",
                                        "--max-input-tokens",
                                        "--item-error-rate",
                                        "--item-error-code",
                                        "--fail-marker",
                                        "--batch-fail-rate",
                                        "--batch-expire-rate",
                                        "--batch-stuck-rate",
                                        "--http-error-rate",
                                        "--http-error-count",
                                        "--http-error-code",
                                        "--retry-delay",
                                        "--fault-scope",
                                        "--latency-ms",
                                        "--latency-rate",
                                        "--drop-rate",
                                        "--drop-count",
                                        "--malformed-rate",
                                        "--malformed-count",
                                        "--shuffle",
                                        "--omit-metadata"};
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        cr_assert(strstr(text, flags[i]), "--help lacks %s", flags[i]);
    free(text);
    snprintf(cmd, sizeof(cmd), "%s --no-such-flag 2>/dev/null", bin);
    p = popen(cmd, "r");
    cr_assert_neq(pclose(p), 0, "an unknown flag is an error");
}
