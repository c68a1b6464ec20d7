/* test_gemini_codec.c: every response shape of shared/gemini-batch-api.md parsed field by field;
 * request bodies accepted by the simulator's strict parser; exact packing sizes. */
#include "gemini_codec.h"
#include "sim.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PARSE_OP(json, op)                                                                         \
    do {                                                                                           \
        char e_[256] = "";                                                                         \
        cr_assert(gem_parse_operation((json), strlen(json), (op), e_, sizeof(e_)), "%s", e_);      \
    } while (0)

Test(codec, states)
{
    cr_assert_eq(gem_state_parse("BATCH_STATE_RUNNING"), GEM_STATE_RUNNING);
    cr_assert_eq(gem_state_parse("JOB_STATE_SUCCEEDED"), GEM_STATE_SUCCEEDED);
    cr_assert_eq(gem_state_parse("EXPIRED"), GEM_STATE_EXPIRED);
    cr_assert_eq(gem_state_parse("BATCH_STATE_WHATEVER"), GEM_STATE_UNSPECIFIED);
    cr_assert_eq(gem_state_parse(NULL), GEM_STATE_UNSPECIFIED);
    cr_assert(gem_state_terminal(GEM_STATE_CANCELLED));
    cr_assert_not(gem_state_terminal(GEM_STATE_PENDING));
    cr_assert_str_eq(gem_state_name(GEM_STATE_FAILED), "BATCH_STATE_FAILED");
}

/* §3.6 */
Test(codec, submit_response)
{
    const char *j =
        "{\"name\":\"batches/2icf9ky95pieco1jwucta7drijo5k8hjllzj\",\"metadata\":{\"@type\":"
        "\"type.googleapis.com/google.ai.generativelanguage.v1main.EmbedContentBatch\",\"model\":"
        "\"models/gemini-embedding-001\",\"displayName\":\"svc-embed-20260901-0001\",\"state\":"
        "\"BATCH_STATE_PENDING\",\"createTime\":\"2025-09-10T14:42:07.160573Z\",\"updateTime\":"
        "\"2025-09-10T14:42:07.160573Z\",\"name\":\"batches/"
        "2icf9ky95pieco1jwucta7drijo5k8hjllzj\"}}";
    struct gem_operation op;
    PARSE_OP(j, &op);
    cr_assert_str_eq(op.name, "batches/2icf9ky95pieco1jwucta7drijo5k8hjllzj");
    cr_assert_str_eq(op.display_name, "svc-embed-20260901-0001");
    cr_assert_str_eq(op.model, "models/gemini-embedding-001");
    cr_assert_eq(op.state, GEM_STATE_PENDING);
    cr_assert_not(op.done);
    cr_assert_eq(op.error.code, 0);
    cr_assert_not(op.has_inline);
    cr_assert_eq(op.request_count, 0);
    gem_operation_free(&op);
}

/* §3.8, with a per-item error, the metadata echo and tokenCount strings */
Test(codec, succeeded_inline)
{
    const char *j =
        "{\"name\":\"batches/pq\",\"metadata\":{\"model\":\"models/gemini-embedding-001\","
        "\"displayName\":\"d\",\"output\":{\"inlinedResponses\":{\"inlinedResponses\":[{"
        "\"response\":"
        "{\"embedding\":{\"values\":[-0.0165,0.0201,0.0261]},\"tokenCount\":\"2\"},\"metadata\":{"
        "\"key\":\"chunk-000001\"}},{\"error\":{\"code\":3,\"message\":\"bad\"},\"metadata\":{"
        "\"key\":"
        "\"chunk-000002\"}}]}},\"batchStats\":{\"requestCount\":\"2\",\"successfulRequestCount\":"
        "\"1\","
        "\"failedRequestCount\":\"1\"},\"state\":\"BATCH_STATE_SUCCEEDED\",\"name\":\"batches/"
        "pq\"},"
        "\"done\":true,\"response\":{\"@type\":\"x.EmbedContentBatchOutput\",\"inlinedResponses\":{"
        "\"inlinedResponses\":[{\"response\":{\"embedding\":{\"values\":[-0.0165,0.0201,0.0261]},"
        "\"tokenCount\":\"2\"},\"metadata\":{\"key\":\"chunk-000001\"}},{\"error\":{\"code\":3,"
        "\"message\":\"bad\"},\"metadata\":{\"key\":\"chunk-000002\"}}]}}}";
    struct gem_operation op;
    PARSE_OP(j, &op);
    cr_assert(op.done);
    cr_assert_eq(op.state, GEM_STATE_SUCCEEDED);
    cr_assert_eq(op.request_count, 2);
    cr_assert_eq(op.successful_count, 1);
    cr_assert_eq(op.failed_count, 1);
    cr_assert_eq(op.pending_count, 0, "absent means zero");
    cr_assert(op.has_inline);
    cr_assert_eq(op.n_results, 2);
    cr_assert_str_eq(op.results[0].key, "chunk-000001");
    cr_assert_eq(op.results[0].dims, 3);
    cr_assert(op.results[0].values[0] == -0.0165f);
    cr_assert_eq(op.results[0].token_count, 2);
    cr_assert_null(op.results[1].values);
    cr_assert_eq(op.results[1].error.code, 3);
    cr_assert_str_eq(op.results[1].error.message, "bad");
    gem_operation_free(&op);
}

Test(codec, output_variants)
{
    /* metadata.output only; response.output; usageMetadata; no metadata echo */
    const char *a =
        "{\"name\":\"batches/a\",\"metadata\":{\"state\":\"JOB_STATE_SUCCEEDED\","
        "\"output\":{\"inlinedResponses\":{\"inlinedResponses\":[{\"response\":{"
        "\"embedding\":{\"values\":[1,2]},\"usageMetadata\":{\"promptTokenCount\":7}}}]}}},"
        "\"done\":true}";
    struct gem_operation op;
    PARSE_OP(a, &op);
    cr_assert_eq(op.n_results, 1);
    cr_assert_null(op.results[0].key);
    cr_assert_eq(op.results[0].token_count, 7);
    cr_assert(op.results[0].values[1] == 2.0f);
    gem_operation_free(&op);
    const char *b = "{\"name\":\"batches/b\",\"metadata\":{\"state\":\"BATCH_STATE_SUCCEEDED\"},"
                    "\"done\":true,\"response\":{\"output\":{\"inlinedResponses\":{"
                    "\"inlinedResponses\":[]}}}}";
    PARSE_OP(b, &op);
    cr_assert(op.has_inline);
    cr_assert_eq(op.n_results, 0);
    gem_operation_free(&op);
    const char *f = "{\"name\":\"batches/c\",\"metadata\":{\"state\":\"BATCH_STATE_SUCCEEDED\","
                    "\"inputConfig\":{\"fileName\":\"files/7t2beg32d5er\"},\"output\":{"
                    "\"responsesFile\":\"files/batch-c\"}},\"done\":true,\"response\":{\"@type\":"
                    "\"x\",\"responsesFile\":\"files/batch-c\"}}";
    PARSE_OP(f, &op);
    cr_assert_str_eq(op.responses_file, "files/batch-c");
    cr_assert_not(op.has_inline);
    gem_operation_free(&op);
}

/* §3.9, cancel, expiry, and the odd stats */
Test(codec, failed_cancelled_expired)
{
    const char *j = "{\"name\":\"batches/abc\",\"metadata\":{\"state\":\"BATCH_STATE_FAILED\","
                    "\"name\":\"batches/abc\"},\"done\":true,\"error\":{\"code\":3,\"message\":"
                    "\"<reason>\"}}";
    struct gem_operation op;
    PARSE_OP(j, &op);
    cr_assert_eq(op.state, GEM_STATE_FAILED);
    cr_assert_eq(op.error.code, 3);
    cr_assert_str_eq(op.error.message, "<reason>");
    gem_operation_free(&op);
    const char *k = "{\"name\":\"batches/x\",\"metadata\":{\"state\":\"BATCH_STATE_CANCELLED\"},"
                    "\"done\":true,\"error\":{\"code\":1}}";
    PARSE_OP(k, &op);
    cr_assert_eq(op.state, GEM_STATE_CANCELLED);
    cr_assert_eq(op.error.code, 1);
    gem_operation_free(&op);
    const char *s = "{\"name\":\"batches/y\",\"metadata\":{\"state\":\"BATCH_STATE_SUCCEEDED\","
                    "\"batchStats\":{\"requestCount\":\"6\",\"pendingRequestCount\":6}}}";
    PARSE_OP(s, &op);
    cr_assert_eq(op.request_count, 6);
    cr_assert_eq(op.pending_count, 6, "numbers accepted as well as strings");
    gem_operation_free(&op);
}

Test(codec, bad_operations)
{
    static const char *const bad[] = {
        "",
        "{\"name\":\"batches/a\"",
        "[]",
        "{\"metadata\":{}}",
        "{\"name\":\"batches/a\"} x",
        "{\"name\":\"b\",\"response\":{\"inlinedResponses\":{\"inlinedResponses\":[{\"response\":{"
        "\"embedding\":{\"values\":[1,\"2\"]}}}]}}}",
        "{\"name\":\"b\",\"response\":{\"inlinedResponses\":{\"inlinedResponses\":[{\"metadata\":{"
        "}}]}}}",
        "<html>502 Bad Gateway</html>",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct gem_operation op;
        char err[256] = "";
        cr_assert_not(gem_parse_operation(bad[i], strlen(bad[i]), &op, err, sizeof(err)),
                      "accepted case %zu", i);
        cr_assert(err[0], "case %zu has a reason", i);
        gem_operation_free(&op);
    }
}

/* §3.10 */
Test(codec, list)
{
    struct gem_operation *ops;
    size_t n;
    char next[64], err[128] = "";
    cr_assert(gem_parse_list("{}", 2, &ops, &n, next, sizeof(next), err, sizeof(err)), "%s", err);
    cr_assert_eq(n, 0);
    cr_assert_str_eq(next, "");
    free(ops);
    const char *j =
        "{\"operations\":[{\"name\":\"batches/a\",\"metadata\":{\"displayName\":\"x\","
        "\"state\":\"BATCH_STATE_RUNNING\"}},{\"name\":\"batches/b\",\"metadata\":{"
        "\"state\":\"BATCH_STATE_SUCCEEDED\"},\"done\":true}],\"nextPageToken\":\"tok\"}";
    cr_assert(gem_parse_list(j, strlen(j), &ops, &n, next, sizeof(next), err, sizeof(err)), "%s",
              err);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(ops[0].display_name, "x");
    cr_assert_eq(ops[1].state, GEM_STATE_SUCCEEDED);
    cr_assert_str_eq(next, "tok");
    for (size_t i = 0; i < n; i++)
        gem_operation_free(&ops[i]);
    free(ops);
}

/* §5.2 output lines, verbatim, and an error line */
Test(codec, result_lines)
{
    const char *l1 = "{\"response\":{\"tokenCount\":\"1\",\"embedding\":{\"values\":[-0.034119852,"
                     "0.0025719088,0.017325249]}},\"key\":\"request_1\"}";
    struct gem_result r;
    char err[128] = "";
    cr_assert(gem_parse_result_line(l1, strlen(l1), &r, err, sizeof(err)), "%s", err);
    cr_assert_str_eq(r.key, "request_1");
    cr_assert_eq(r.dims, 3);
    cr_assert(r.values[0] == -0.034119852f);
    cr_assert_eq(r.token_count, 1);
    gem_result_free(&r);
    const char *l2 = "{\"key\":\"k2\",\"error\":{\"code\":13,\"message\":\"internal\"}}";
    cr_assert(gem_parse_result_line(l2, strlen(l2), &r, err, sizeof(err)), "%s", err);
    cr_assert_null(r.values);
    cr_assert_eq(r.error.code, 13);
    gem_result_free(&r);
    cr_assert_not(gem_parse_result_line("{\"key\":\"x\"}", 11, &r, err, sizeof(err)));
    gem_result_free(&r);
}

/* §8 error bodies */
Test(codec, error_bodies)
{
    struct gem_status st;
    const char *e400 = "{\"error\": {\"code\": 400, \"message\": \"* BatchEmbedContentsRequest."
                       "requests: at most 100 requests can be in one batch\\n\", \"status\": "
                       "\"INVALID_ARGUMENT\"}}";
    gem_parse_error(e400, strlen(e400), 400, &st);
    cr_assert_eq(st.code, 400);
    cr_assert_str_eq(st.status, "INVALID_ARGUMENT");
    cr_assert(strstr(st.message, "at most 100 requests"));
    cr_assert_eq(st.retry_delay_ms, -1);
    const char *e429 =
        "{\"error\": {\"code\": 429, \"message\": \"You exceeded your current quota\", \"status\": "
        "\"RESOURCE_EXHAUSTED\", \"details\": [{\"@type\": \"type.googleapis.com/google.rpc.Help\","
        " \"links\": []}, {\"@type\": \"type.googleapis.com/google.rpc.QuotaFailure\", "
        "\"violations\": []}, {\"@type\": \"type.googleapis.com/google.rpc.RetryInfo\", "
        "\"retryDelay\": \"5.026807431s\"}]}}";
    gem_parse_error(e429, strlen(e429), 429, &st);
    cr_assert_str_eq(st.status, "RESOURCE_EXHAUSTED");
    cr_assert_eq(st.retry_delay_ms, 5027, "rounded up to the millisecond");
    const char *key =
        "{\"error\":{\"code\":400,\"message\":\"API key not valid. Please pass a valid "
        "API key.\",\"status\":\"INVALID_ARGUMENT\",\"details\":[{\"@type\":"
        "\"type.googleapis.com/google.rpc.ErrorInfo\",\"reason\":\"API_KEY_INVALID\"}]}}";
    gem_parse_error(key, strlen(key), 400, &st);
    cr_assert_str_eq(st.reason, "API_KEY_INVALID");
    gem_parse_error("<html>Bad Gateway</html>", 24, 502, &st);
    cr_assert_eq(st.code, 502);
    cr_assert_str_eq(st.message, "HTTP 502");
    gem_parse_error("", 0, 503, &st);
    cr_assert_eq(st.code, 503);
}

Test(codec, sync_response)
{
    const char *j = "{\"embeddings\": [{\"values\": [0.5, -1]}, {\"values\": [2]}]}";
    struct gem_result *r;
    size_t n;
    char err[128] = "";
    cr_assert(gem_parse_sync(j, strlen(j), &r, &n, err, sizeof(err)), "%s", err);
    cr_assert_eq(n, 2);
    cr_assert(r[0].values[1] == -1.0f);
    cr_assert_eq(r[1].dims, 1);
    for (size_t i = 0; i < n; i++)
        gem_result_free(&r[i]);
    free(r);
    const char *one = "{\"embedding\": {\"values\": [1, 2, 3]}}";
    cr_assert(gem_parse_sync(one, strlen(one), &r, &n, err, sizeof(err)), "%s", err);
    cr_assert_eq(n, 1);
    gem_result_free(&r[0]);
    free(r);
}

static const char tricky[] =
    "quote \" backslash \\ tab \t newline \n nul \0 emoji \xf0\x9f\x98\x80";

Test(codec, built_batch_is_accepted_by_the_strict_simulator_and_sizes_are_exact)
{
    struct gem_req_opts o = {"gemini-embedding-001", "RETRIEVAL_DOCUMENT", 768};
    struct gem_text t[3] = {{"0", "first chunk", 11, "Doc A"},
                            {"17", tricky, sizeof(tricky) - 1, NULL},
                            {"42", "third", 5, "T \"q\""}};
    struct buf b;
    buf_init(&b, 1 << 20);
    cr_assert(gem_build_batch(&b, "embedd-12345678-abcdefabcdef", &o, t, 3));
    size_t expect = gem_batch_overhead("embedd-12345678-abcdefabcdef");
    for (int i = 0; i < 3; i++)
        expect += gem_batch_item_size(&o, &t[i]);
    cr_assert_eq(b.len, expect - 1, "overhead + item sizes (each with a comma) = body + 1");
    struct sim_perr e = {0};
    json_object *root = sim_parse_json(b.data, b.len, &e);
    cr_assert_not_null(root, "%s", e.msg);
    struct sim_batch_req req;
    cr_assert(sim_parse_batch_create(root, sim_model_find("gemini-embedding-001"), &req, &e), "%s",
              e.msg);
    cr_assert_str_eq(req.display_name, "embedd-12345678-abcdefabcdef");
    cr_assert_eq(req.n_items, 3);
    cr_assert_eq(req.items[1].text_len, sizeof(tricky) - 1);
    cr_assert_eq(memcmp(req.items[1].text, tricky, sizeof(tricky) - 1), 0, "text byte-exact");
    cr_assert_str_eq(req.items[0].title, "Doc A");
    cr_assert_null(req.items[1].title);
    cr_assert_eq(req.items[2].dims, 768);
    cr_assert_eq(req.items[2].task, SIM_TASK_RETRIEVAL_DOCUMENT);
    cr_assert_str_eq(req.items[2].metadata, "{\"key\":\"42\"}");
    sim_batch_req_cleanup(&req);
    json_object_put(root);

    /* a body over the buffer's limit is refused and leaves the buffer as it was */
    struct buf small;
    buf_init(&small, 100);
    cr_assert(buf_puts(&small, "x"));
    cr_assert_not(gem_build_batch(&small, "n", &o, t, 3));
    cr_assert_eq(small.len, 1);
    cr_assert_str_eq(small.data, "x");
    buf_cleanup(&small);
    buf_cleanup(&b);
}

Test(codec, sync_and_jsonl_bodies_are_accepted)
{
    struct gem_req_opts o = {"gemini-embedding-001", "CLUSTERING", 128};
    struct gem_text t[2] = {{"a", "one", 3, "ignored for clustering"},
                            {"b", tricky, sizeof(tricky) - 1, NULL}};
    struct buf b;
    buf_init(&b, 1 << 20);
    cr_assert(gem_build_sync(&b, &o, t, 2));
    struct sim_perr e = {0};
    json_object *root = sim_parse_json(b.data, b.len, &e);
    cr_assert_not_null(root, "%s", e.msg);
    struct sim_item *items;
    size_t n;
    cr_assert(sim_parse_sync_batch(root, sim_model_find("gemini-embedding-001"), &items, &n, &e),
              "%s", e.msg);
    cr_assert_eq(n, 2);
    cr_assert_null(items[0].title, "title only with RETRIEVAL_DOCUMENT");
    cr_assert_eq(items[1].text_len, sizeof(tricky) - 1);
    sim_items_free(items, n);
    json_object_put(root);
    buf_reset(&b);
    cr_assert(gem_build_jsonl_line(&b, &o, &t[0]) && gem_build_jsonl_line(&b, &o, &t[1]));
    cr_assert(
        sim_parse_jsonl(b.data, b.len, sim_model_find("gemini-embedding-001"), &items, &n, &e),
        "%s", e.msg);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(items[1].key, "b");
    sim_items_free(items, n);
    buf_cleanup(&b);
}
