/* test_gemini_codec.c: Gemini codec vs the wire reference's shapes, json-c and the simulator. */
#include "gemini/file_meta.h"
#include "gemini/request.h"
#include "gemini/response.h"
#include "gemini/status.h"
#include "sim.h"
#include "util/jsonw.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <json-c/json.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- fixtures: the reference's examples, verbatim unless noted ---- */

/* §3.6 */
static const char submit_3_6[] =
    "{\n"
    "  \"name\": \"batches/2icf9ky95pieco1jwucta7drijo5k8hjllzj\",\n"
    "  \"metadata\": {\n"
    "    \"@type\": "
    "\"type.googleapis.com/google.ai.generativelanguage.v1main.EmbedContentBatch\",\n"
    "    \"model\": \"models/gemini-embedding-001\",\n"
    "    \"displayName\": \"svc-embed-20260901-0001\",\n"
    "    \"state\": \"BATCH_STATE_PENDING\",\n"
    "    \"createTime\": \"2025-09-10T14:42:07.160573Z\",\n"
    "    \"updateTime\": \"2025-09-10T14:42:07.160573Z\",\n"
    "    \"name\": \"batches/2icf9ky95pieco1jwucta7drijo5k8hjllzj\"\n"
    "  }\n"
    "}";

/* §3.7: the §3.6 object while running, with the stats the reference expects */
static const char running_3_7[] =
    "{\n"
    "  \"name\": \"batches/2icf9ky95pieco1jwucta7drijo5k8hjllzj\",\n"
    "  \"metadata\": {\n"
    "    \"@type\": "
    "\"type.googleapis.com/google.ai.generativelanguage.v1main.EmbedContentBatch\",\n"
    "    \"model\": \"models/gemini-embedding-001\",\n"
    "    \"displayName\": \"svc-embed-20260901-0001\",\n"
    "    \"state\": \"BATCH_STATE_RUNNING\",\n"
    "    \"createTime\": \"2025-09-10T14:42:07.160573Z\",\n"
    "    \"updateTime\": \"2025-09-10T14:43:19.000000001Z\",\n"
    "    \"batchStats\": {\"requestCount\": \"2\", \"pendingRequestCount\": \"2\"},\n"
    "    \"name\": \"batches/2icf9ky95pieco1jwucta7drijo5k8hjllzj\"\n"
    "  }\n"
    "}";

/* §3.8, with the placeholder under "response" replaced by the same array */
static const char succeeded_3_8[] =
    "{\n"
    "  \"name\": \"batches/pq1j6cr5x7usrrlj98tlukhnsav7gcq5lt8x\",\n"
    "  \"metadata\": {\n"
    "    \"@type\": "
    "\"type.googleapis.com/google.ai.generativelanguage.v1main.EmbedContentBatch\",\n"
    "    \"model\": \"models/gemini-embedding-001\",\n"
    "    \"displayName\": \"svc-embed-20260901-0001\",\n"
    "    \"output\": {\n"
    "      \"inlinedResponses\": {\n"
    "        \"inlinedResponses\": [\n"
    "          { \"response\": { \"embedding\": { \"values\": [-0.0165, 0.0201, 0.0261] }, "
    "\"tokenCount\": \"2\" },\n"
    "            \"metadata\": { \"key\": \"chunk-000001\" } },\n"
    "          { \"error\": { \"code\": 3, \"message\": \"...\" },\n"
    "            \"metadata\": { \"key\": \"chunk-000002\" } }\n"
    "        ]\n"
    "      }\n"
    "    },\n"
    "    \"createTime\": \"2026-07-25T00:15:48.588771827Z\",\n"
    "    \"endTime\": \"2026-07-25T00:17:11.340704784Z\",\n"
    "    \"updateTime\": \"2026-07-25T00:17:11.340704700Z\",\n"
    "    \"batchStats\": { \"requestCount\": \"2\", \"successfulRequestCount\": \"1\", "
    "\"failedRequestCount\": \"1\" },\n"
    "    \"state\": \"BATCH_STATE_SUCCEEDED\",\n"
    "    \"name\": \"batches/pq1j6cr5x7usrrlj98tlukhnsav7gcq5lt8x\"\n"
    "  },\n"
    "  \"done\": true,\n"
    "  \"response\": {\n"
    "    \"@type\": "
    "\"type.googleapis.com/google.ai.generativelanguage.v1main.EmbedContentBatchOutput\",\n"
    "    \"inlinedResponses\": { \"inlinedResponses\": [\n"
    "          { \"response\": { \"embedding\": { \"values\": [-0.0165, 0.0201, 0.0261] }, "
    "\"tokenCount\": \"2\" },\n"
    "            \"metadata\": { \"key\": \"chunk-000001\" } },\n"
    "          { \"error\": { \"code\": 3, \"message\": \"...\" },\n"
    "            \"metadata\": { \"key\": \"chunk-000002\" } }\n"
    "    ] }\n"
    "  }\n"
    "}";

/* §3.8 file-based success (the JSSDK mock getFileOkResponse) */
static const char succeeded_file[] =
    "{\"name\":\"batches/7t2beg32d5erxq\",\"metadata\":{\"@type\":\"type.googleapis.com/"
    "google.ai.generativelanguage.v1main.EmbedContentBatch\",\"model\":\"models/"
    "gemini-embedding-001\",\"displayName\":\"svc-embed-file-1\",\"inputConfig\":{\"fileName\":"
    "\"files/7t2beg32d5er\"},\"output\":{\"responsesFile\":\"files/batch-7t2beg32d5erxq\"},"
    "\"createTime\":\"2025-08-30T00:44:07.900645097Z\",\"endTime\":\"2025-08-30T00:46:12."
    "000000001Z\",\"updateTime\":\"2025-08-30T00:46:12.000000001Z\",\"batchStats\":{"
    "\"requestCount\":\"3\",\"successfulRequestCount\":\"3\"},\"state\":\"BATCH_STATE_SUCCEEDED\","
    "\"name\":\"batches/7t2beg32d5erxq\"},\"done\":true,\"response\":{\"@type\":\"type."
    "googleapis.com/google.ai.generativelanguage.v1main.EmbedContentBatchOutput\","
    "\"responsesFile\":\"files/batch-7t2beg32d5erxq\"}}";

/* KIO's live capture shape: gemini-embedding-2, usageMetadata, response @type EmbedContentBatch,
 * no updateTime */
static const char succeeded_kio[] =
    "{\n"
    "  \"name\": \"batches/k10capture0000000000000000000000000\",\n"
    "  \"metadata\": {\n"
    "    \"@type\": "
    "\"type.googleapis.com/google.ai.generativelanguage.v1main.EmbedContentBatch\",\n"
    "    \"model\": \"models/gemini-embedding-2\",\n"
    "    \"displayName\": \"kio-embed\",\n"
    "    \"output\": {\"inlinedResponses\": {\"inlinedResponses\": [\n"
    "      {\"response\": {\"embedding\": {\"values\": [0.25, -0.5]}, \"usageMetadata\": "
    "{\"promptTokenCount\": 5}}, \"metadata\": {\"key\": \"sha256:aaa\"}}]}},\n"
    "    \"createTime\": \"2026-07-25T00:15:48.588771827Z\",\n"
    "    \"endTime\": \"2026-07-25T00:17:11.340704784Z\",\n"
    "    \"batchStats\": {\"requestCount\": \"1\", \"successfulRequestCount\": \"1\"},\n"
    "    \"state\": \"BATCH_STATE_SUCCEEDED\",\n"
    "    \"name\": \"batches/k10capture0000000000000000000000000\"\n"
    "  },\n"
    "  \"done\": true,\n"
    "  \"response\": {\n"
    "    \"@type\": "
    "\"type.googleapis.com/google.ai.generativelanguage.v1main.EmbedContentBatch\",\n"
    "    \"inlinedResponses\": {\"inlinedResponses\": [\n"
    "      {\"response\": {\"embedding\": {\"values\": [0.25, -0.5]}, \"usageMetadata\": "
    "{\"promptTokenCount\": 5}}, \"metadata\": {\"key\": \"sha256:aaa\"}}]}\n"
    "  }\n"
    "}";

/* §3.9 */
static const char failed_3_9[] =
    "{\n"
    "  \"name\": \"batches/abc\",\n"
    "  \"metadata\": { \"@type\": "
    "\"type.googleapis.com/google.ai.generativelanguage.v1main.EmbedContentBatch\",\n"
    "                \"model\": \"models/gemini-embedding-001\", \"state\": "
    "\"BATCH_STATE_FAILED\",\n"
    "                \"createTime\": \"...\", \"endTime\": \"...\", \"name\": \"batches/abc\" },\n"
    "  \"done\": true,\n"
    "  \"error\": { \"code\": 3, \"message\": \"<reason>\" }\n"
    "}";

/* §5.2, verbatim (COOKBOOK) */
static const char cookbook_line1[] =
    "{\"response\":{\"tokenCount\":\"1\",\"embedding\":{\"values\":[-0.034119852,0.0025719088,0."
    "017325249]}},\"key\":\"request_1\"}";
static const char cookbook_line2[] =
    "{\"response\":{\"tokenCount\":\"1\",\"embedding\":{\"values\":[0.020208105,-0.016668973,-0."
    "011120025,-0.063684635]}},\"key\":\"request_2\"}";

/* §8, verbatim */
static const char err_400_too_many[] =
    "{\"error\": {\"code\": 400, \"message\": \"* BatchEmbedContentsRequest.requests: at most 100 "
    "requests can be in one batch\\n\", \"status\": \"INVALID_ARGUMENT\"}}";
static const char err_429_retryinfo[] =
    "{\"error\": {\"code\": 429,\n"
    "  \"message\": \"You exceeded your current quota, please check your plan and billing "
    "details. ... Please retry in 5.026807431s.\",\n"
    "  \"status\": \"RESOURCE_EXHAUSTED\",\n"
    "  \"details\": [\n"
    "    {\"@type\": \"type.googleapis.com/google.rpc.Help\", \"links\": [{\"description\": "
    "\"Learn more about Gemini API quotas\", \"url\": "
    "\"https://ai.google.dev/gemini-api/docs/rate-limits\"}]},\n"
    "    {\"@type\": \"type.googleapis.com/google.rpc.QuotaFailure\", \"violations\": "
    "[{\"quotaMetric\": \"generativelanguage.googleapis.com/generate_content_free_tier_requests\", "
    "\"quotaId\": \"GenerateRequestsPerDayPerProjectPerModel-FreeTier\", \"quotaDimensions\": "
    "{\"location\": \"global\", \"model\": \"...\"}, \"quotaValue\": \"20\"}]},\n"
    "    {\"@type\": \"type.googleapis.com/google.rpc.RetryInfo\", \"retryDelay\": \"5s\"}]}}";
/* the forum's asyncBatchEmbedContent 429: code, message and status only */
static const char err_429_bare[] =
    "{\n  \"error\": {\n    \"code\": 429,\n    \"message\": \"Resource has been exhausted (e.g. "
    "check quota).\",\n    \"status\": \"RESOURCE_EXHAUSTED\"\n  }\n}\n";
static const char err_key_invalid[] =
    "{\n  \"error\": {\n    \"code\": 400,\n    \"message\": \"API key not valid. Please pass a "
    "valid API key.\",\n    \"status\": \"INVALID_ARGUMENT\",\n    \"details\": [\n      {\n"
    "        \"@type\": \"type.googleapis.com/google.rpc.ErrorInfo\",\n        \"reason\": "
    "\"API_KEY_INVALID\",\n        \"domain\": \"googleapis.com\",\n        \"metadata\": {\n"
    "          \"service\": \"generativelanguage.googleapis.com\"\n        }\n      },\n      {\n"
    "        \"@type\": \"type.googleapis.com/google.rpc.LocalizedMessage\",\n        \"locale\": "
    "\"en-US\",\n        \"message\": \"API key not valid. Please pass a valid API key.\"\n      "
    "}\n    ]\n  }\n}\n";

/* ---- helpers ---- */

static void op_ok(const char *json, size_t len, struct gem_operation *op)
{
    char err[256] = "";
    bool ok = gem_parse_operation(json, len, op, err, sizeof(err));
    cr_assert(ok, "rejected: %s", err);
}

#define OP_OK(lit, op) op_ok((lit), strlen(lit), (op))

static void free_ops(struct gem_operation *ops, size_t n)
{
    for (size_t i = 0; i < n; i++)
        gem_operation_free(&ops[i]);
    free(ops);
}

static void free_results(struct gem_result *rs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        gem_result_free(&rs[i]);
    free(rs);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- states ---- */

struct state_case {
    char text[40];
    int want;
};

ParameterizedTestParameters(states, parse)
{
    static struct state_case cases[] = {
        {"BATCH_STATE_PENDING", GEM_STATE_PENDING},
        {"BATCH_STATE_RUNNING", GEM_STATE_RUNNING},
        {"BATCH_STATE_SUCCEEDED", GEM_STATE_SUCCEEDED},
        {"BATCH_STATE_FAILED", GEM_STATE_FAILED},
        {"BATCH_STATE_CANCELLED", GEM_STATE_CANCELLED},
        {"BATCH_STATE_EXPIRED", GEM_STATE_EXPIRED},
        {"BATCH_STATE_UNSPECIFIED", GEM_STATE_UNSPECIFIED},
        {"JOB_STATE_PENDING", GEM_STATE_PENDING},
        {"JOB_STATE_RUNNING", GEM_STATE_RUNNING},
        {"JOB_STATE_SUCCEEDED", GEM_STATE_SUCCEEDED},
        {"JOB_STATE_FAILED", GEM_STATE_FAILED},
        {"JOB_STATE_CANCELLED", GEM_STATE_CANCELLED},
        {"JOB_STATE_EXPIRED", GEM_STATE_EXPIRED},
        {"PENDING", GEM_STATE_PENDING},
        {"RUNNING", GEM_STATE_RUNNING},
        {"SUCCEEDED", GEM_STATE_SUCCEEDED},
        {"FAILED", GEM_STATE_FAILED},
        {"CANCELLED", GEM_STATE_CANCELLED},
        {"EXPIRED", GEM_STATE_EXPIRED},
        {"", GEM_STATE_UNSPECIFIED},
        {"BATCH_STATE_", GEM_STATE_UNSPECIFIED},
        {"batch_state_running", GEM_STATE_UNSPECIFIED},
        {"BATCH_STATE_PROCESSING", GEM_STATE_UNSPECIFIED},
        {"COMPLETED", GEM_STATE_UNSPECIFIED},
        {"JOB_STATE_BATCH_STATE_RUNNING", GEM_STATE_UNSPECIFIED},
        {"BATCH_STATE_RUNNING ", GEM_STATE_UNSPECIFIED},
    };
    return cr_make_param_array(struct state_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct state_case *c, states, parse)
{
    cr_assert_eq(gem_state_parse(c->text), c->want, "\"%s\"", c->text);
}

Test(states, names_and_terminal)
{
    cr_assert_eq(gem_state_parse(NULL), GEM_STATE_UNSPECIFIED);
    for (int s = GEM_STATE_UNSPECIFIED; s <= GEM_STATE_EXPIRED; s++)
        cr_assert_eq(gem_state_parse(gem_state_name((enum gem_state)s)), s, "round trip %d", s);
    cr_assert_str_eq(gem_state_name(GEM_STATE_FAILED), "BATCH_STATE_FAILED");
    cr_assert_str_eq(gem_state_name((enum gem_state)42), "BATCH_STATE_UNSPECIFIED");
    cr_assert_not(gem_state_terminal(GEM_STATE_UNSPECIFIED));
    cr_assert_not(gem_state_terminal(GEM_STATE_PENDING));
    cr_assert_not(gem_state_terminal(GEM_STATE_RUNNING));
    cr_assert(gem_state_terminal(GEM_STATE_SUCCEEDED));
    cr_assert(gem_state_terminal(GEM_STATE_FAILED));
    cr_assert(gem_state_terminal(GEM_STATE_CANCELLED));
    cr_assert(gem_state_terminal(GEM_STATE_EXPIRED));
}

/* ---- operations ---- */

Test(operation, submit_response_3_6)
{
    struct gem_operation op;
    OP_OK(submit_3_6, &op);
    cr_assert_str_eq(op.name, "batches/2icf9ky95pieco1jwucta7drijo5k8hjllzj");
    cr_assert_str_eq(op.display_name, "svc-embed-20260901-0001");
    cr_assert_str_eq(op.model, "models/gemini-embedding-001");
    cr_assert_eq(op.state, GEM_STATE_PENDING);
    cr_assert_not(op.done, "done is absent until terminal");
    cr_assert_eq(op.error.code, 0);
    cr_assert_eq(op.error.retry_delay_ms, -1);
    cr_assert_eq(op.request_count, 0);
    cr_assert_eq(op.successful_count, 0);
    cr_assert_eq(op.failed_count, 0);
    cr_assert_eq(op.pending_count, 0);
    cr_assert_str_eq(op.responses_file, "");
    cr_assert_not(op.has_inline);
    cr_assert_null(op.results);
    cr_assert_eq(op.n_results, 0);
    gem_operation_free(&op);
}

Test(operation, running_3_7)
{
    struct gem_operation op;
    OP_OK(running_3_7, &op);
    cr_assert_eq(op.state, GEM_STATE_RUNNING);
    cr_assert_not(op.done);
    cr_assert_eq(op.request_count, 2);
    cr_assert_eq(op.pending_count, 2);
    cr_assert_eq(op.successful_count, 0, "zero counts are omitted on the wire");
    cr_assert_eq(op.failed_count, 0);
    cr_assert_not(op.has_inline);
    gem_operation_free(&op);
}

Test(operation, succeeded_inline_3_8)
{
    struct gem_operation op;
    OP_OK(succeeded_3_8, &op);
    cr_assert_str_eq(op.name, "batches/pq1j6cr5x7usrrlj98tlukhnsav7gcq5lt8x");
    cr_assert_str_eq(op.display_name, "svc-embed-20260901-0001");
    cr_assert_str_eq(op.model, "models/gemini-embedding-001");
    cr_assert_eq(op.state, GEM_STATE_SUCCEEDED);
    cr_assert(op.done);
    cr_assert_eq(op.error.code, 0);
    cr_assert_eq(op.request_count, 2);
    cr_assert_eq(op.successful_count, 1);
    cr_assert_eq(op.failed_count, 1);
    cr_assert_eq(op.pending_count, 0);
    cr_assert_str_eq(op.responses_file, "");
    cr_assert(op.has_inline);
    cr_assert_eq(op.n_results, 2);
    const struct gem_result *r = &op.results[0];
    cr_assert_str_eq(r->key, "chunk-000001");
    cr_assert_eq(r->dims, 3);
    cr_assert(r->values[0] == -0.0165f && r->values[1] == 0.0201f && r->values[2] == 0.0261f);
    cr_assert_eq(r->token_count, 2, "tokenCount is a string");
    cr_assert_eq(r->error.code, 0);
    r = &op.results[1];
    cr_assert_str_eq(r->key, "chunk-000002");
    cr_assert_null(r->values);
    cr_assert_eq(r->dims, 0);
    cr_assert_eq(r->error.code, 3);
    cr_assert_str_eq(r->error.message, "...");
    cr_assert_eq(r->error.retry_delay_ms, -1);
    cr_assert_eq(r->token_count, -1);
    gem_operation_free(&op);
    cr_assert_null(op.results);
    cr_assert_eq(op.n_results, 0);
    gem_operation_free(&op); /* a second free is harmless */
}

Test(operation, succeeded_file_based)
{
    struct gem_operation op;
    OP_OK(succeeded_file, &op);
    cr_assert_eq(op.state, GEM_STATE_SUCCEEDED);
    cr_assert(op.done);
    cr_assert_str_eq(op.responses_file, "files/batch-7t2beg32d5erxq");
    cr_assert_not(op.has_inline);
    cr_assert_eq(op.n_results, 0);
    cr_assert_eq(op.request_count, 3);
    cr_assert_eq(op.successful_count, 3);
    gem_operation_free(&op);

    /* the same without "response": the file name from metadata.output */
    const char *m = "{\"name\":\"batches/f\",\"metadata\":{\"state\":\"BATCH_STATE_SUCCEEDED\","
                    "\"output\":{\"responsesFile\":\"files/batch-f\"}},\"done\":true}";
    OP_OK(m, &op);
    cr_assert_str_eq(op.responses_file, "files/batch-f");
    gem_operation_free(&op);
    /* and under response.output */
    const char *ro = "{\"name\":\"batches/g\",\"metadata\":{\"state\":\"SUCCEEDED\"},\"done\":true,"
                     "\"response\":{\"output\":{\"responsesFile\":\"files/batch-g\"}}}";
    OP_OK(ro, &op);
    cr_assert_str_eq(op.responses_file, "files/batch-g");
    cr_assert_eq(op.state, GEM_STATE_SUCCEEDED);
    gem_operation_free(&op);
}

Test(operation, kio_usage_metadata)
{
    struct gem_operation op;
    OP_OK(succeeded_kio, &op);
    cr_assert_str_eq(op.model, "models/gemini-embedding-2");
    cr_assert_eq(op.state, GEM_STATE_SUCCEEDED);
    cr_assert(op.has_inline);
    cr_assert_eq(op.n_results, 1);
    cr_assert_str_eq(op.results[0].key, "sha256:aaa");
    cr_assert_eq(op.results[0].token_count, 5, "usageMetadata.promptTokenCount");
    cr_assert_eq(op.results[0].dims, 2);
    cr_assert(op.results[0].values[0] == 0.25f && op.results[0].values[1] == -0.5f);
    gem_operation_free(&op);
}

Test(operation, response_output_variant)
{
    const char *j = "{\"name\":\"batches/ro\",\"metadata\":{\"state\":\"BATCH_STATE_SUCCEEDED\"},"
                    "\"done\":true,\"response\":{\"@type\":\"type.googleapis.com/"
                    "google.ai.generativelanguage.v1beta.AsyncBatchEmbedContentResponse\","
                    "\"output\":{\"inlinedResponses\":{\"inlinedResponses\":[{\"response\":{"
                    "\"embedding\":{\"values\":[1,-2,3.5]},\"tokenCount\":\"9\"},\"metadata\":{"
                    "\"key\":\"7\"}}]}}}}";
    struct gem_operation op;
    OP_OK(j, &op);
    cr_assert(op.has_inline);
    cr_assert_eq(op.n_results, 1);
    cr_assert_str_eq(op.results[0].key, "7");
    cr_assert_eq(op.results[0].dims, 3);
    cr_assert(op.results[0].values[0] == 1.0f, "integers are numbers too");
    cr_assert(op.results[0].values[1] == -2.0f);
    cr_assert(op.results[0].values[2] == 3.5f);
    cr_assert_eq(op.results[0].token_count, 9);
    gem_operation_free(&op);
}

Test(operation, metadata_output_only)
{
    /* no "response"; items without a metadata echo (the SDKs send none) */
    const char *j = "{\"name\":\"batches/mo\",\"metadata\":{\"state\":\"BATCH_STATE_SUCCEEDED\","
                    "\"output\":{\"inlinedResponses\":{\"inlinedResponses\":[{\"response\":{"
                    "\"embedding\":{\"values\":[0.5]}}},{\"response\":{\"embedding\":{\"values\":"
                    "[-0.5]}},\"metadata\":{}},{\"response\":{\"embedding\":{\"values\":[0]}},"
                    "\"metadata\":{\"key\":12}}]}}},\"done\":true}";
    struct gem_operation op;
    OP_OK(j, &op);
    cr_assert(op.has_inline);
    cr_assert_eq(op.n_results, 3);
    cr_assert_null(op.results[0].key, "no metadata: no key");
    cr_assert_null(op.results[1].key, "metadata without key");
    cr_assert_null(op.results[2].key, "a key that is not a string is no key");
    cr_assert(op.results[0].values[0] == 0.5f);
    cr_assert(op.results[1].values[0] == -0.5f);
    cr_assert_eq(op.results[0].token_count, -1, "no token count");
    gem_operation_free(&op);
}

Test(operation, response_is_read_before_metadata_output)
{
    const char *j = "{\"name\":\"batches/x\",\"metadata\":{\"output\":{\"inlinedResponses\":{"
                    "\"inlinedResponses\":[{\"response\":{\"embedding\":{\"values\":[1]}}}]}}},"
                    "\"response\":{\"inlinedResponses\":{\"inlinedResponses\":[{\"response\":{"
                    "\"embedding\":{\"values\":[2]}}},{\"response\":{\"embedding\":{\"values\":"
                    "[3]}}}]}}}";
    struct gem_operation op;
    OP_OK(j, &op);
    cr_assert_eq(op.n_results, 2);
    cr_assert(op.results[0].values[0] == 2.0f);
    gem_operation_free(&op);
}

Test(operation, empty_inline_results)
{
    /* proto3 leaves out an empty list: the outer object alone still means inline output */
    const char *a = "{\"name\":\"batches/e\",\"done\":true,\"response\":{\"inlinedResponses\":{}}}";
    const char *b = "{\"name\":\"batches/e\",\"done\":true,\"response\":{\"inlinedResponses\":{"
                    "\"inlinedResponses\":[]}}}";
    struct gem_operation op;
    OP_OK(a, &op);
    cr_assert(op.has_inline);
    cr_assert_eq(op.n_results, 0);
    gem_operation_free(&op);
    OP_OK(b, &op);
    cr_assert(op.has_inline);
    cr_assert_eq(op.n_results, 0);
    gem_operation_free(&op);
}

Test(operation, item_errors)
{
    /* an error without a code still fails; an error beside an embedding wins */
    const char *j =
        "{\"name\":\"batches/ie\",\"response\":{\"inlinedResponses\":{"
        "\"inlinedResponses\":[{\"error\":{\"message\":\"no code\"},\"metadata\":{"
        "\"key\":\"a\"}},{\"error\":{\"code\":13,\"message\":\"An internal error has "
        "occurred.\",\"details\":[]},\"response\":{\"embedding\":{\"values\":[1]}}}]}}}";
    struct gem_operation op;
    OP_OK(j, &op);
    cr_assert_eq(op.n_results, 2);
    cr_assert_eq(op.results[0].error.code, 2, "UNKNOWN when the code is missing");
    cr_assert_str_eq(op.results[0].error.message, "no code");
    cr_assert_eq(op.results[1].error.code, 13);
    cr_assert_null(op.results[1].values, "the error wins");
    gem_operation_free(&op);
}

Test(operation, failed_3_9)
{
    struct gem_operation op;
    OP_OK(failed_3_9, &op);
    cr_assert_str_eq(op.name, "batches/abc");
    cr_assert_eq(op.state, GEM_STATE_FAILED);
    cr_assert(op.done);
    cr_assert_eq(op.error.code, 3);
    cr_assert_str_eq(op.error.message, "<reason>");
    cr_assert_str_eq(op.error.status, "");
    cr_assert_not(op.has_inline);
    cr_assert_str_eq(op.display_name, "", "no displayName in this one");
    gem_operation_free(&op);
}

Test(operation, cancelled_and_expired)
{
    const char *c =
        "{\"name\":\"batches/c\",\"metadata\":{\"@type\":\"type.googleapis.com/"
        "google.ai.generativelanguage.v1main.EmbedContentBatch\",\"state\":"
        "\"BATCH_STATE_CANCELLED\",\"endTime\":\"2026-07-25T00:17:11Z\",\"batchStats\":{"
        "\"requestCount\":\"4\",\"pendingRequestCount\":\"4\"},\"name\":\"batches/c\"},\"done\":"
        "true,\"error\":{\"code\":1,\"message\":\"The operation was cancelled.\"}}";
    struct gem_operation op;
    OP_OK(c, &op);
    cr_assert_eq(op.state, GEM_STATE_CANCELLED);
    cr_assert(op.done);
    cr_assert_eq(op.error.code, 1);
    cr_assert_str_eq(op.error.message, "The operation was cancelled.");
    cr_assert_eq(op.pending_count, 4);
    gem_operation_free(&op);

    const char *e = "{\"name\":\"batches/x\",\"metadata\":{\"state\":\"BATCH_STATE_EXPIRED\","
                    "\"name\":\"batches/x\"},\"done\":true}";
    OP_OK(e, &op);
    cr_assert_eq(op.state, GEM_STATE_EXPIRED);
    cr_assert(op.done);
    cr_assert_eq(op.error.code, 0, "no error set");
    cr_assert_not(op.has_inline);
    cr_assert_str_eq(op.responses_file, "");
    gem_operation_free(&op);

    const char *e2 = "{\"name\":\"batches/x\",\"metadata\":{\"state\":\"BATCH_STATE_EXPIRED\"},"
                     "\"done\":true,\"error\":{\"code\":4,\"message\":\"expired\"}}";
    OP_OK(e2, &op);
    cr_assert_eq(op.error.code, 4);
    gem_operation_free(&op);
}

Test(operation, odd_stats_and_state_spellings)
{
    /* KIO's SUCCEEDED entry with everything pending; counts as numbers; JOB_STATE_ names */
    const char *s = "{\"name\":\"batches/y\",\"metadata\":{\"state\":\"BATCH_STATE_SUCCEEDED\","
                    "\"batchStats\":{\"requestCount\":\"6\",\"pendingRequestCount\":\"6\"}},"
                    "\"done\":true}";
    struct gem_operation op;
    OP_OK(s, &op);
    cr_assert_eq(op.state, GEM_STATE_SUCCEEDED, "state decides, not stats");
    cr_assert_eq(op.request_count, 6);
    cr_assert_eq(op.pending_count, 6);
    cr_assert_eq(op.successful_count, 0);
    gem_operation_free(&op);

    const char *n = "{\"name\":\"batches/z\",\"metadata\":{\"state\":\"JOB_STATE_RUNNING\","
                    "\"batchStats\":{\"requestCount\":7,\"successfulRequestCount\":\"3\","
                    "\"failedRequestCount\":1,\"pendingRequestCount\":\"x\"}}}";
    OP_OK(n, &op);
    cr_assert_eq(op.state, GEM_STATE_RUNNING);
    cr_assert_eq(op.request_count, 7);
    cr_assert_eq(op.successful_count, 3);
    cr_assert_eq(op.failed_count, 1);
    cr_assert_eq(op.pending_count, 0, "a malformed count reads as 0");
    gem_operation_free(&op);

    const char *b = "{\"name\":\"batches/w\",\"metadata\":{\"state\":\"SUCCEEDED\"},\"done\":true,"
                    "\"unknownField\":[1,2,{\"x\":null}]}";
    OP_OK(b, &op);
    cr_assert_eq(op.state, GEM_STATE_SUCCEEDED, "bare names; unknown fields ignored");
    gem_operation_free(&op);

    const char *u = "{\"name\":\"batches/v\",\"metadata\":{\"state\":\"BATCH_STATE_ON_FIRE\"}}";
    OP_OK(u, &op);
    cr_assert_eq(op.state, GEM_STATE_UNSPECIFIED);
    gem_operation_free(&op);
}

Test(operation, name_from_metadata_when_missing_on_top)
{
    const char *j = "{\"metadata\":{\"name\":\"batches/m\",\"state\":\"BATCH_STATE_PENDING\"}}";
    struct gem_operation op;
    OP_OK(j, &op);
    cr_assert_str_eq(op.name, "batches/m");
    gem_operation_free(&op);
}

struct bad_case {
    char label[48];
    char json[480];
};

#define ITEMS(x) "{\"name\":\"batches/b\",\"response\":{\"inlinedResponses\":" x "}}"
#define ITEM(x)  ITEMS("{\"inlinedResponses\":[" x "]}")

ParameterizedTestParameters(operation, rejects)
{
    static struct bad_case cases[] = {
        {"html page", "<html><body><h1>502 Bad Gateway</h1></body></html>"},
        {"plain text", "upstream connect error or disconnect/reset before headers"},
        {"empty", ""},
        {"whitespace", "  \n"},
        {"truncated", "{\"name\":\"batches/a\",\"metadata\":{\"state\":\"BATCH_STATE_"},
        {"trailing garbage", "{\"name\":\"batches/a\"} x"},
        {"two values", "{\"name\":\"batches/a\"}{\"name\":\"batches/b\"}"},
        {"array", "[{\"name\":\"batches/a\"}]"},
        {"string", "\"batches/a\""},
        {"no name", "{\"metadata\":{\"state\":\"BATCH_STATE_RUNNING\"}}"},
        {"empty name", "{\"name\":\"\"}"},
        {"name not a string", "{\"name\":42}"},
        {"error body", "{\"error\":{\"code\":500,\"message\":\"x\"}}"},
        {"value is a string", ITEM("{\"response\":{\"embedding\":{\"values\":[0.1,\"0.2\"]}}}")},
        {"value is null", ITEM("{\"response\":{\"embedding\":{\"values\":[0.1,null]}}}")},
        {"value is a bool", ITEM("{\"response\":{\"embedding\":{\"values\":[true]}}}")},
        {"value is an array", ITEM("{\"response\":{\"embedding\":{\"values\":[[1]]}}}")},
        {"value is nan", ITEM("{\"response\":{\"embedding\":{\"values\":[nan]}}}")},
        {"value overflows float", ITEM("{\"response\":{\"embedding\":{\"values\":[1e39]}}}")},
        {"values not an array", ITEM("{\"response\":{\"embedding\":{\"values\":{\"0\":1}}}}")},
        {"values missing", ITEM("{\"response\":{\"embedding\":{}}}")},
        {"values empty", ITEM("{\"response\":{\"embedding\":{\"values\":[]}}}")},
        {"neither", ITEM("{\"metadata\":{\"key\":\"k\"}}")},
        {"response without embedding", ITEM("{\"response\":{\"tokenCount\":\"3\"}}")},
        {"embedding under the SDK name",
         ITEM("{\"response\":{\"embeddings\":[{\"values\":[1]}]}}")},
        {"item not an object", ITEM("{\"response\":{\"embedding\":{\"values\":[1]}}},7")},
        {"outer not an object", ITEMS("\"x\"")},
        {"inner not an array", ITEMS("{\"inlinedResponses\":{\"0\":{}}}")},
        {"name too long", "{\"name\":\"batches/"
                          "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                          "xxxxxxxxxxxxxxxxxx"
                          "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}"},
    };
    return cr_make_param_array(struct bad_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct bad_case *c, operation, rejects)
{
    struct gem_operation op;
    char err[256] = "";
    cr_assert_not(gem_parse_operation(c->json, strlen(c->json), &op, err, sizeof(err)),
                  "%s: accepted", c->label);
    cr_assert(err[0], "%s: no reason given", c->label);
    cr_assert_null(op.results, "%s: results left behind", c->label);
    cr_assert_eq(op.n_results, 0);
    gem_operation_free(&op);
}

Test(operation, rejects_every_truncation)
{
    size_t len = strlen(succeeded_3_8);
    for (size_t cut = 0; cut < len; cut++) {
        struct gem_operation op;
        char err[256] = "";
        cr_assert_not(gem_parse_operation(succeeded_3_8, cut, &op, err, sizeof(err)),
                      "accepted %zu of %zu bytes", cut, len);
        gem_operation_free(&op);
    }
    struct gem_operation op;
    cr_assert_not(gem_parse_operation(NULL, 0, &op, NULL, 0), "NULL body, no err buffer");
    /* a NUL inside the length is not the end of the body */
    char nul[] = "{\"name\":\"batches/a\"}\0{}";
    cr_assert_not(gem_parse_operation(nul, sizeof(nul) - 1, &op, NULL, 0));
    /* a trailing newline is fine */
    char nl[] = "{\"name\":\"batches/a\"}\r\n";
    op_ok(nl, sizeof(nl) - 1, &op);
    gem_operation_free(&op);
}

Test(operation, error_fields_in_failed_item_later_in_the_list_free_everything)
{
    /* a bad item after good ones: nothing leaks (LeakSanitizer checks) */
    const char *j = ITEM("{\"response\":{\"embedding\":{\"values\":[1,2]}},\"metadata\":{\"key\":"
                         "\"a\"}},{\"response\":{\"embedding\":{\"values\":[1,\"x\"]}},"
                         "\"metadata\":{\"key\":\"b\"}}");
    struct gem_operation op;
    char err[256] = "";
    cr_assert_not(gem_parse_operation(j, strlen(j), &op, err, sizeof(err)));
    cr_assert(strstr(err, "inline result 1"), "%s", err);
    cr_assert(strstr(err, "not a finite number"), "%s", err);
    cr_assert_not(op.has_inline);
    gem_operation_free(&op);
}

/* ---- list ---- */

Test(list, with_next_page_token)
{
    /* KIO's REAL_LIST_RESPONSE shape: a generate batch mixed in, output-less entries */
    const char *j =
        "{\n  \"operations\": [\n    {\n      \"name\": \"batches/aaa\",\n      \"metadata\": {\n"
        "        \"@type\": \"type.googleapis.com/google.ai.generativelanguage.v1main."
        "EmbedContentBatch\",\n        \"model\": \"models/gemini-embedding-2\",\n"
        "        \"displayName\": \"embedd-0000abcd-0123456789ab\",\n        \"createTime\": "
        "\"2026-07-25T00:15:48.588771827Z\",\n        \"endTime\": "
        "\"2026-07-25T00:17:11.340704784Z\",\n        \"batchStats\": {\"requestCount\": \"6\", "
        "\"pendingRequestCount\": \"6\"},\n        \"state\": \"BATCH_STATE_SUCCEEDED\",\n"
        "        \"name\": \"batches/aaa\"\n      },\n      \"done\": true\n    },\n    {\n"
        "      \"name\": \"batches/bbb\",\n      \"metadata\": {\n        \"@type\": "
        "\"type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch\",\n"
        "        \"model\": \"models/gemini-2.5-flash\",\n        \"displayName\": \"gen\",\n"
        "        \"output\": {\"inlinedResponses\": {\"inlinedResponses\": [{\"response\": "
        "{\"candidates\": []}}]}},\n        \"state\": \"BATCH_STATE_RUNNING\"\n      }\n    }\n"
        "  ],\n  \"nextPageToken\": \"CgwI2c-0xAYQgK2D7AE=\"\n}\n";
    struct gem_operation *ops;
    size_t n;
    char next[64], err[256] = "";
    cr_assert(gem_parse_list(j, strlen(j), &ops, &n, next, sizeof(next), err, sizeof(err)), "%s",
              err);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(ops[0].name, "batches/aaa");
    cr_assert_str_eq(ops[0].display_name, "embedd-0000abcd-0123456789ab");
    cr_assert_str_eq(ops[0].model, "models/gemini-embedding-2");
    cr_assert_eq(ops[0].state, GEM_STATE_SUCCEEDED);
    cr_assert(ops[0].done);
    cr_assert_eq(ops[0].request_count, 6);
    cr_assert_eq(ops[0].pending_count, 6);
    cr_assert_str_eq(ops[1].name, "batches/bbb");
    cr_assert_eq(ops[1].state, GEM_STATE_RUNNING);
    cr_assert_not(ops[1].done);
    cr_assert_eq(ops[1].n_results, 0, "list entries are not read for results");
    cr_assert_str_eq(next, "CgwI2c-0xAYQgK2D7AE=");
    free_ops(ops, n);
}

Test(list, empty)
{
    struct gem_operation *ops = (struct gem_operation *)1;
    size_t n = 99;
    char next[64] = "stale", err[128] = "";
    cr_assert(gem_parse_list("{}", 2, &ops, &n, next, sizeof(next), err, sizeof(err)), "%s", err);
    cr_assert_eq(n, 0);
    cr_assert_str_eq(next, "");
    free_ops(ops, n);
    const char *e = "{\"operations\": [], \"nextPageToken\": \"\"}\n";
    cr_assert(gem_parse_list(e, strlen(e), &ops, &n, next, sizeof(next), err, sizeof(err)));
    cr_assert_eq(n, 0);
    cr_assert_str_eq(next, "");
    free_ops(ops, n);
}

Test(list, rejects)
{
    static const char *const bad[] = {
        "",
        "[]",
        "{\"operations\":{}}",
        "{\"operations\":[{\"name\":\"batches/a\"},7]}",
        "{\"operations\":[{\"name\":\"batches/a\"},{\"metadata\":{}}]}",
        "{\"operations\":[],\"nextPageToken\":5}",
        "{\"operations\":[{\"name\":\"batches/a\"}],\"nextPageToken\":\"0123456789abcdef\"}",
        "<html>503</html>",
        "{\"operations\":[",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct gem_operation *ops = NULL;
        size_t n = 5;
        char next[16], err[256] = "";
        cr_assert_not(
            gem_parse_list(bad[i], strlen(bad[i]), &ops, &n, next, sizeof(next), err, sizeof(err)),
            "accepted case %zu", i);
        cr_assert(err[0], "case %zu: no reason", i);
        cr_assert_null(ops, "case %zu", i);
        cr_assert_eq(n, 0);
        cr_assert_str_eq(next, "", "case %zu: a token too long for the buffer is refused", i);
    }
}

/* ---- output file lines ---- */

Test(lines, cookbook_verbatim)
{
    struct gem_result r;
    char err[256] = "";
    cr_assert(gem_parse_result_line(cookbook_line1, strlen(cookbook_line1), &r, err, sizeof(err)),
              "%s", err);
    cr_assert_str_eq(r.key, "request_1", "\"key\" after \"response\"");
    cr_assert_eq(r.dims, 3);
    cr_assert(r.values[0] == -0.034119852f && r.values[1] == 0.0025719088f &&
              r.values[2] == 0.017325249f);
    cr_assert_eq(r.token_count, 1);
    cr_assert_eq(r.error.code, 0);
    gem_result_free(&r);
    cr_assert(gem_parse_result_line(cookbook_line2, strlen(cookbook_line2), &r, err, sizeof(err)),
              "%s", err);
    cr_assert_str_eq(r.key, "request_2");
    cr_assert_eq(r.dims, 4);
    cr_assert(r.values[3] == -0.063684635f);
    gem_result_free(&r);
    cr_assert_null(r.key);
    cr_assert_null(r.values);
}

Test(lines, errors_and_variants)
{
    const char *e = "{\"key\":\"request_9\",\"error\":{\"code\":13,\"message\":\"An internal error "
                    "has occurred. Please retry or report in "
                    "https://developers.generativeai.google/guide/troubleshooting\"}}";
    struct gem_result r;
    char err[256] = "";
    cr_assert(gem_parse_result_line(e, strlen(e), &r, err, sizeof(err)), "%s", err);
    cr_assert_str_eq(r.key, "request_9");
    cr_assert_null(r.values);
    cr_assert_eq(r.dims, 0);
    cr_assert_eq(r.error.code, 13);
    cr_assert(strstr(r.error.message, "An internal error") == r.error.message);
    gem_result_free(&r);

    /* key first, usageMetadata, and a Vertex-style "request" echo that is ignored */
    const char *v = "{\"key\":\"k\\\"1\",\"request\":{\"content\":{\"parts\":[{\"text\":\"x\"}]}},"
                    "\"response\":{\"embedding\":{\"values\":[1.5e-7,-3.25e12]},\"usageMetadata\":"
                    "{\"promptTokenCount\":\"12\"}}}\n";
    cr_assert(gem_parse_result_line(v, strlen(v), &r, err, sizeof(err)), "%s", err);
    cr_assert_str_eq(r.key, "k\"1");
    cr_assert(r.values[0] == 1.5e-7f && r.values[1] == -3.25e12f);
    cr_assert_eq(r.token_count, 12);
    gem_result_free(&r);

    /* no key at all */
    const char *nk = "{\"response\":{\"embedding\":{\"values\":[1]}}}";
    cr_assert(gem_parse_result_line(nk, strlen(nk), &r, err, sizeof(err)), "%s", err);
    cr_assert_null(r.key);
    gem_result_free(&r);
}

Test(lines, bad_lines_hold_nothing)
{
    static const char *const bad[] = {
        "{\"key\":\"x\"}",
        "{\"key\":\"x\",\"response\":{\"embedding\":{\"values\":[1,\"2\"]}}}",
        "{\"key\":\"x\",\"response\":{}}",
        "{\"key\":\"x\",\"response\":{\"embedding\":{\"values\":[1]}}",
        "[]",
        "",
        "{\"key\":\"x\",\"error\":\"boom\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct gem_result r;
        char err[256] = "";
        cr_assert_not(gem_parse_result_line(bad[i], strlen(bad[i]), &r, err, sizeof(err)),
                      "accepted case %zu", i);
        cr_assert(err[0]);
        cr_assert_null(r.key, "case %zu: key left allocated", i);
        cr_assert_null(r.values, "case %zu", i);
    }
}

/* ---- error bodies ---- */

Test(errors, too_many_requests_400)
{
    struct gem_status st;
    gem_parse_error(err_400_too_many, strlen(err_400_too_many), 400, &st);
    cr_assert_eq(st.code, 400);
    cr_assert_str_eq(st.status, "INVALID_ARGUMENT");
    cr_assert_str_eq(st.message,
                     "* BatchEmbedContentsRequest.requests: at most 100 requests can be in one "
                     "batch\n");
    cr_assert_str_eq(st.reason, "");
    cr_assert_eq(st.retry_delay_ms, -1);
}

Test(errors, quota_429_with_retry_info)
{
    struct gem_status st;
    gem_parse_error(err_429_retryinfo, strlen(err_429_retryinfo), 429, &st);
    cr_assert_eq(st.code, 429);
    cr_assert_str_eq(st.status, "RESOURCE_EXHAUSTED");
    cr_assert(strstr(st.message, "You exceeded your current quota") == st.message, "%s",
              st.message);
    cr_assert_eq(st.retry_delay_ms, 5000, "RetryInfo.retryDelay \"5s\", not the message's delay");
    cr_assert_str_eq(st.reason, "");
}

Test(errors, quota_429_without_details)
{
    struct gem_status st;
    gem_parse_error(err_429_bare, strlen(err_429_bare), 429, &st);
    cr_assert_eq(st.code, 429);
    cr_assert_str_eq(st.status, "RESOURCE_EXHAUSTED");
    cr_assert_str_eq(st.message, "Resource has been exhausted (e.g. check quota).");
    cr_assert_eq(st.retry_delay_ms, -1, "no hint: the caller backs off on its own");
}

Test(errors, error_info_reasons)
{
    struct gem_status st;
    gem_parse_error(err_key_invalid, strlen(err_key_invalid), 400, &st);
    cr_assert_eq(st.code, 400);
    cr_assert_str_eq(st.status, "INVALID_ARGUMENT");
    cr_assert_str_eq(st.message, "API key not valid. Please pass a valid API key.");
    cr_assert_str_eq(st.reason, "API_KEY_INVALID");
    cr_assert_eq(st.retry_delay_ms, -1);

    const char *rl = "{\"error\":{\"code\":429,\"message\":\"Quota exceeded for quota metric 'Read "
                     "API requests' and limit 'Model operations request limit per minute for a "
                     "region'\",\"status\":\"RESOURCE_EXHAUSTED\",\"details\":[{\"@type\":"
                     "\"type.googleapis.com/google.rpc.ErrorInfo\",\"reason\":"
                     "\"RATE_LIMIT_EXCEEDED\",\"domain\":\"googleapis.com\",\"metadata\":{"
                     "\"quota_limit\":\"ModelRequestsPerMinutePerProjectPerRegion\"}},{\"@type\":"
                     "\"type.googleapis.com/google.rpc.RetryInfo\",\"retryDelay\":\"37s\"}]}}";
    gem_parse_error(rl, strlen(rl), 429, &st);
    cr_assert_str_eq(st.reason, "RATE_LIMIT_EXCEEDED");
    cr_assert_eq(st.retry_delay_ms, 37000);
}

Test(errors, bodies_that_are_not_google_errors)
{
    struct gem_status st;
    const char *html = "<!DOCTYPE html>\n<html lang=en>\n<title>Error 502 (Server Error)!!1</title>"
                       "\n<p><b>502.</b> That's an error.</p></html>\n";
    gem_parse_error(html, strlen(html), 502, &st);
    cr_assert_eq(st.code, 502);
    cr_assert_str_eq(st.message, "HTTP 502");
    cr_assert_str_eq(st.status, "");
    cr_assert_eq(st.retry_delay_ms, -1);

    gem_parse_error("", 0, 503, &st);
    cr_assert_eq(st.code, 503);
    cr_assert_str_eq(st.message, "HTTP 503");
    gem_parse_error(NULL, 0, 504, &st);
    cr_assert_eq(st.code, 504);
    cr_assert_str_eq(st.message, "HTTP 504");

    const char *cut = "{\"error\": {\"code\": 500, \"message\": \"Internal err";
    gem_parse_error(cut, strlen(cut), 500, &st);
    cr_assert_eq(st.code, 500);
    cr_assert_str_eq(st.message, "HTTP 500");

    gem_parse_error("{}", 2, 404, &st);
    cr_assert_eq(st.code, 404);
    cr_assert_str_eq(st.message, "HTTP 404");

    const char *s = "{\"error\":\"invalid_request\"}";
    gem_parse_error(s, strlen(s), 400, &st);
    cr_assert_str_eq(st.message, "invalid_request");

    const char *arr = "[{\"error\":{\"code\":403,\"message\":\"denied\",\"status\":"
                      "\"PERMISSION_DENIED\"}}]";
    gem_parse_error(arr, strlen(arr), 403, &st);
    cr_assert_str_eq(st.status, "PERMISSION_DENIED");
    cr_assert_str_eq(st.message, "denied");

    /* the HTTP status wins over the body's code */
    const char *mismatch = "{\"error\":{\"code\":400,\"message\":\"m\"}}";
    gem_parse_error(mismatch, strlen(mismatch), 503, &st);
    cr_assert_eq(st.code, 503);
    cr_assert_str_eq(st.message, "m");

    /* odd details never crash */
    const char *odd = "{\"error\":{\"code\":429,\"details\":[7,null,{},{\"@type\":5},{\"@type\":"
                      "\"type.googleapis.com/google.rpc.RetryInfo\"},{\"@type\":\"type."
                      "googleapis.com/google.rpc.ErrorInfo\",\"reason\":[1]}]}}";
    gem_parse_error(odd, strlen(odd), 429, &st);
    cr_assert_eq(st.retry_delay_ms, -1);
    cr_assert_str_eq(st.reason, "");
    cr_assert_str_eq(st.message, "HTTP 429");
}

Test(errors, long_message_cut_at_a_character_boundary)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    cr_assert(buf_puts(&b, "{\"error\":{\"code\":400,\"message\":\"a"));
    for (int i = 0; i < 600; i++)
        cr_assert(buf_puts(&b, "\xc3\xa9")); /* é */
    cr_assert(buf_puts(&b, "\",\"status\":\"INVALID_ARGUMENT_BUT_LONGER_THAN_THIRTY_TWO\"}}"));
    struct gem_status st;
    gem_parse_error(b.data, b.len, 400, &st);
    size_t n = strlen(st.message);
    cr_assert_lt(n, sizeof(st.message));
    cr_assert_gt(n, sizeof(st.message) - 4);
    cr_assert_eq((n - 1) % 2, 0, "no half character: %zu bytes", n);
    cr_assert_eq(strlen(st.status), sizeof(st.status) - 1);
    buf_cleanup(&b);
}

struct delay_case {
    char delay[48]; /* JSON value of retryDelay */
    long long ms;
};

ParameterizedTestParameters(errors, retry_delay)
{
    static struct delay_case cases[] = {
        {"\"37s\"", 37000},
        {"\"5s\"", 5000},
        {"\"0s\"", 0},
        {"\"5.026807431s\"", 5027},
        {"\"0.007s\"", 7},
        {"\"0.0071s\"", 8},
        {"\"0.5s\"", 500},
        {"\"1.000000001s\"", 1001},
        {"\"1.000s\"", 1000},
        {"\"86400s\"", 86400000},
        {"{\"seconds\":\"2\",\"nanos\":500000000}", 2500},
        {"{\"seconds\":3}", 3000},
        {"\"5\"", -1},
        {"\"s\"", -1},
        {"\"-5s\"", -1},
        {"\"5.s\"", -1},
        {"\".5s\"", -1},
        {"\"5ms\"", -1},
        {"\"nans\"", -1},
        {"\"infs\"", -1},
        {"\"1e3s\"", -1},
        {"\"0x10s\"", -1},
        {"\" 5s\"", -1},
        {"\"99999999999999999999s\"", -1},
        {"5", -1},
        {"null", -1},
    };
    return cr_make_param_array(struct delay_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct delay_case *c, errors, retry_delay)
{
    char body[256];
    int n = snprintf(body, sizeof(body),
                     "{\"error\":{\"code\":429,\"status\":\"RESOURCE_EXHAUSTED\",\"details\":[{"
                     "\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\",\"retryDelay\":%s}]}}",
                     c->delay);
    struct gem_status st;
    gem_parse_error(body, (size_t)n, 429, &st);
    cr_assert_eq(st.retry_delay_ms, c->ms, "%s: %lld ms", c->delay, (long long)st.retry_delay_ms);
}

/* ---- sync responses ---- */

Test(sync, batch_embed_contents)
{
    const char *j = "{\n  \"embeddings\": [\n    {\n      \"values\": [\n        0.0123,\n"
                    "        -0.0456\n      ]\n    },\n    {\n      \"values\": [\n        1\n"
                    "      ]\n    }\n  ]\n}\n";
    struct gem_result *r;
    size_t n;
    char err[256] = "";
    cr_assert(gem_parse_sync(j, strlen(j), &r, &n, err, sizeof(err)), "%s", err);
    cr_assert_eq(n, 2);
    cr_assert_null(r[0].key);
    cr_assert_eq(r[0].dims, 2);
    cr_assert(r[0].values[0] == 0.0123f && r[0].values[1] == -0.0456f);
    cr_assert_eq(r[1].dims, 1);
    cr_assert_eq(r[0].token_count, -1);
    cr_assert_eq(r[0].error.code, 0);
    free_results(r, n);
}

Test(sync, embed_content)
{
    const char *j = "{\"embedding\": {\"values\": [0.0123, -0.0456, 0.5]}, \"usageMetadata\": "
                    "{\"promptTokenCount\": 8}}";
    struct gem_result *r;
    size_t n;
    char err[256] = "";
    cr_assert(gem_parse_sync(j, strlen(j), &r, &n, err, sizeof(err)), "%s", err);
    cr_assert_eq(n, 1);
    cr_assert_eq(r[0].dims, 3);
    cr_assert_eq(r[0].token_count, 8);
    free_results(r, n);
}

Test(sync, rejects)
{
    static const char *const bad[] = {
        "{}",
        "{\"embeddings\":[]}",
        "{\"embeddings\":{}}",
        "{\"embeddings\":[{\"values\":[1]},{\"values\":[\"x\"]}]}",
        "{\"embeddings\":[{\"values\":[1]},{}]}",
        "{\"embedding\":{\"values\":\"1,2\"}}",
        "{\"embeddings\":[{\"values\":[1]}]",
        "<html></html>",
        "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct gem_result *r = (struct gem_result *)1;
        size_t n = 3;
        char err[256] = "";
        cr_assert_not(gem_parse_sync(bad[i], strlen(bad[i]), &r, &n, err, sizeof(err)),
                      "accepted case %zu", i);
        cr_assert(err[0]);
        cr_assert_null(r);
        cr_assert_eq(n, 0);
    }
}

/* ---- request bodies ---- */

static const struct gem_req_opts doc_opts = {"gemini-embedding-001", "RETRIEVAL_DOCUMENT", 768};

/* The §2 example, minus whitespace, with the model in every request. */
static const char golden_batch[] =
    "{\"batch\":{\"displayName\":\"svc-embed-20260901-0001\",\"inputConfig\":{\"requests\":{"
    "\"requests\":[{\"request\":{\"model\":\"models/gemini-embedding-001\",\"content\":{\"parts\":["
    "{\"text\":\"first chunk\"}]},\"taskType\":\"RETRIEVAL_DOCUMENT\",\"title\":\"Doc A\","
    "\"outputDimensionality\":768},\"metadata\":{\"key\":\"chunk-000001\"}},{\"request\":{"
    "\"model\":\"models/gemini-embedding-001\",\"content\":{\"parts\":[{\"text\":\"second "
    "chunk\"}]},\"taskType\":\"RETRIEVAL_DOCUMENT\",\"outputDimensionality\":768},\"metadata\":{"
    "\"key\":\"chunk-000002\"}}]}}}}";

static const char expected_tree[] =
    "{ \"batch\": {\n"
    "    \"displayName\": \"svc-embed-20260901-0001\",\n"
    "    \"inputConfig\": {\n"
    "      \"requests\": {\n"
    "        \"requests\": [\n"
    "          { \"request\": { \"model\": \"models/gemini-embedding-001\",\n"
    "                         \"content\": { \"parts\": [ { \"text\": \"first chunk\" } ] },\n"
    "                         \"taskType\": \"RETRIEVAL_DOCUMENT\",\n"
    "                         \"title\": \"Doc A\",\n"
    "                         \"outputDimensionality\": 768 },\n"
    "            \"metadata\": { \"key\": \"chunk-000001\" } },\n"
    "          { \"request\": { \"model\": \"models/gemini-embedding-001\",\n"
    "                         \"content\": { \"parts\": [ { \"text\": \"second chunk\" } ] },\n"
    "                         \"taskType\": \"RETRIEVAL_DOCUMENT\",\n"
    "                         \"outputDimensionality\": 768 },\n"
    "            \"metadata\": { \"key\": \"chunk-000002\" } }\n"
    "        ]\n"
    "      }\n"
    "    }\n"
    "  }\n"
    "}\n";

Test(build, batch_is_the_reference_shape)
{
    struct gem_text t[2] = {{"chunk-000001", "first chunk", 11, "Doc A"},
                            {"chunk-000002", "second chunk", 12, NULL}};
    struct buf b;
    buf_init(&b, 1 << 20);
    cr_assert(gem_build_batch(&b, "svc-embed-20260901-0001", &doc_opts, t, 2));
    cr_assert_str_eq(b.data, golden_batch);
    cr_assert_eq(b.len, strlen(golden_batch));
    cr_assert_eq(b.len, gem_batch_overhead("svc-embed-20260901-0001") +
                            gem_batch_item_size(&doc_opts, &t[0]) +
                            gem_batch_item_size(&doc_opts, &t[1]));
    json_object *got = json_tokener_parse(b.data);
    json_object *want = json_tokener_parse(expected_tree);
    cr_assert_not_null(got);
    cr_assert_not_null(want);
    cr_assert(json_object_equal(got, want), "structure differs: %s",
              json_object_to_json_string(got));
    json_object_put(got);
    json_object_put(want);

    /* a model given with its prefix is not prefixed twice */
    struct gem_req_opts pre = {"models/gemini-embedding-001", "RETRIEVAL_DOCUMENT", 768};
    buf_reset(&b);
    cr_assert(gem_build_batch(&b, "svc-embed-20260901-0001", &pre, t, 2));
    cr_assert_str_eq(b.data, golden_batch);
    buf_cleanup(&b);
}

Test(build, strings_are_escaped)
{
    /* every control byte, quote, backslash, slash, DEL, UTF-8 (2, 3, 4 bytes), U+2028, NUL */
    char text[64];
    size_t n = 0;
    for (int c = 0; c < 0x20; c++)
        text[n++] = (char)c;
    static const char tail[] = "\"\\/\x7f\xc3\xa9\xe6\x97\xa5\xf0\x9f\x98\x80\xe2\x80\xa8";
    memcpy(text + n, tail, sizeof(tail) - 1);
    n += sizeof(tail) - 1;
    struct gem_text t = {"k\"\\\n", text, n, NULL};
    struct gem_req_opts o = {"gemini-embedding-001", "RETRIEVAL_QUERY", 3};
    struct buf b;
    buf_init(&b, 4096);
    cr_assert(gem_build_jsonl_line(&b, &o, &t));
    static const char want[] =
        "{\"key\":\"k\\\"\\\\\\n\",\"request\":{\"model\":\"models/gemini-embedding-001\","
        "\"content\":{\"parts\":[{\"text\":\"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006"
        "\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015"
        "\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\\\"\\\\/\x7f"
        "\xc3\xa9\xe6\x97\xa5\xf0\x9f\x98\x80\xe2\x80\xa8\"}]},\"taskType\":\"RETRIEVAL_QUERY\","
        "\"outputDimensionality\":3}}\n";
    cr_assert_eq(b.len, sizeof(want) - 1);
    cr_assert_eq(memcmp(b.data, want, b.len), 0, "got %s", b.data);
    /* json-c reads the exact bytes back */
    json_object *o2 = json_tokener_parse(b.data);
    cr_assert_not_null(o2);
    json_object *parts, *txt;
    cr_assert(json_object_object_get_ex(o2, "request", &parts));
    cr_assert(json_object_object_get_ex(parts, "content", &parts));
    cr_assert(json_object_object_get_ex(parts, "parts", &parts));
    cr_assert(json_object_object_get_ex(json_object_array_get_idx(parts, 0), "text", &txt));
    cr_assert_eq((size_t)json_object_get_string_len(txt), n);
    cr_assert_eq(memcmp(json_object_get_string(txt), text, n), 0);
    json_object_put(o2);
    buf_cleanup(&b);
}

Test(build, title_only_with_retrieval_document)
{
    for (int task = 0; task < SIM_TASK_COUNT; task++) {
        struct gem_req_opts o = {"gemini-embedding-001", sim_task_names[task], 128};
        struct gem_text t[2] = {{"a", "x", 1, "A title"}, {"b", "y", 1, ""}};
        struct buf b;
        buf_init(&b, 1 << 16);
        cr_assert(gem_build_batch(&b, "d", &o, t, 2));
        bool doc = task == SIM_TASK_RETRIEVAL_DOCUMENT;
        cr_assert_eq(strstr(b.data, "\"title\":\"A title\"") != NULL, doc, "%s", b.data);
        cr_assert_eq(strstr(b.data, "\"title\":\"\"") != NULL, doc, "empty titles are sent too");
        cr_assert_eq(b.len, gem_batch_overhead("d") + gem_batch_item_size(&o, &t[0]) +
                                gem_batch_item_size(&o, &t[1]));
        buf_cleanup(&b);
    }
}

Test(build, refused_bodies_leave_the_buffer_alone)
{
    struct gem_text t[3] = {{"1", "alpha", 5, "T"}, {"2", "beta", 4, NULL}, {"3", "g\"", 2, NULL}};
    size_t body = gem_batch_overhead("name");
    for (int i = 0; i < 3; i++)
        body += gem_batch_item_size(&doc_opts, &t[i]);
    /* exactly enough room succeeds; one byte less fails and changes nothing */
    struct buf b;
    buf_init(&b, 6 + body);
    cr_assert(buf_puts(&b, "prefix"));
    cr_assert(gem_build_batch(&b, "name", &doc_opts, t, 3));
    cr_assert_eq(b.len, 6 + body);
    buf_cleanup(&b);
    buf_init(&b, 6 + body - 1);
    cr_assert(buf_puts(&b, "prefix"));
    char *before = b.data;
    cr_assert_not(gem_build_batch(&b, "name", &doc_opts, t, 3));
    cr_assert_eq(b.len, 6);
    cr_assert_str_eq(b.data, "prefix");
    cr_assert_eq(b.data, before, "not even reallocated");
    cr_assert_not(gem_build_batch(&b, "name", &doc_opts, t, 0), "an empty batch is refused");
    cr_assert_not(gem_build_sync(&b, &doc_opts, t, 0));
    cr_assert_str_eq(b.data, "prefix");
    buf_cleanup(&b);
}

Test(build, sync_body)
{
    struct gem_req_opts o = {"gemini-embedding-001", "RETRIEVAL_QUERY", 768};
    struct gem_text t[2] = {{"a", "q1", 2, "ignored"}, {NULL, "q2", 2, NULL}};
    struct buf b;
    buf_init(&b, 1 << 20);
    cr_assert(gem_build_sync(&b, &o, t, 2));
    cr_assert_str_eq(
        b.data,
        "{\"requests\":[{\"model\":\"models/gemini-embedding-001\",\"content\":{\"parts\":[{"
        "\"text\":\"q1\"}]},\"taskType\":\"RETRIEVAL_QUERY\",\"outputDimensionality\":768},{"
        "\"model\":\"models/gemini-embedding-001\",\"content\":{\"parts\":[{\"text\":\"q2\"}]},"
        "\"taskType\":\"RETRIEVAL_QUERY\",\"outputDimensionality\":768}]}");

    /* 100 is the limit; the simulator takes all 100, the codec refuses 101 */
    struct gem_text many[101];
    char keys[101][8];
    for (int i = 0; i < 101; i++) {
        snprintf(keys[i], sizeof(keys[i]), "%d", i);
        many[i] = (struct gem_text){keys[i], keys[i], strlen(keys[i]), NULL};
    }
    buf_reset(&b);
    cr_assert_not(gem_build_sync(&b, &o, many, 101));
    cr_assert_eq(b.len, 0);
    cr_assert(gem_build_sync(&b, &o, many, 100));
    struct sim_perr e = {0};
    json_object *root = sim_parse_json(b.data, b.len, &e);
    cr_assert_not_null(root, "%s", e.msg);
    struct sim_item *items;
    size_t n;
    cr_assert(sim_parse_sync_batch(root, sim_model_find("gemini-embedding-001"), &items, &n, &e),
              "%s", e.msg);
    cr_assert_eq(n, 100);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(items[i].text_len, strlen(keys[i]));
        cr_assert_eq(memcmp(items[i].text, keys[i], items[i].text_len), 0);
        cr_assert_eq(items[i].task, SIM_TASK_RETRIEVAL_QUERY);
        cr_assert_eq(items[i].dims, 768);
    }
    sim_items_free(items, n);
    json_object *reqs, *model;
    cr_assert(json_object_object_get_ex(root, "requests", &reqs));
    for (size_t i = 0; i < json_object_array_length(reqs); i++) {
        cr_assert(json_object_object_get_ex(json_object_array_get_idx(reqs, i), "model", &model),
                  "request %zu has no model", i);
        cr_assert_str_eq(json_object_get_string(model), "models/gemini-embedding-001");
    }
    json_object_put(root);
    buf_cleanup(&b);
}

Test(build, jsonl_lines)
{
    struct gem_req_opts o = {"gemini-embedding-001", "RETRIEVAL_DOCUMENT", 4};
    struct gem_text t[3] = {{"request_1", "1", 1, NULL},
                            {"request_2", "two\n", 4, "Doc \"2\""},
                            {"request_3", "tr\0s", 4, ""}};
    struct buf b;
    buf_init(&b, 1 << 20);
    cr_assert(gem_build_jsonl_line(&b, &o, &t[0]));
    cr_assert_str_eq(b.data, "{\"key\":\"request_1\",\"request\":{\"model\":\"models/"
                             "gemini-embedding-001\",\"content\":{\"parts\":[{\"text\":\"1\"}]},"
                             "\"taskType\":\"RETRIEVAL_DOCUMENT\",\"outputDimensionality\":4}}\n");
    cr_assert(gem_build_jsonl_line(&b, &o, &t[1]) && gem_build_jsonl_line(&b, &o, &t[2]));
    size_t lines = 0;
    for (size_t i = 0; i < b.len; i++)
        lines += b.data[i] == '\n';
    cr_assert_eq(lines, 3, "one line each");
    struct sim_perr e = {0};
    struct sim_item *items;
    size_t n;
    cr_assert(
        sim_parse_jsonl(b.data, b.len, sim_model_find("gemini-embedding-001"), &items, &n, &e),
        "%s", e.msg);
    cr_assert_eq(n, 3);
    for (size_t i = 0; i < 3; i++) {
        cr_assert_str_eq(items[i].key, t[i].key);
        cr_assert_eq(items[i].text_len, t[i].text_len);
        cr_assert_eq(memcmp(items[i].text, t[i].text, t[i].text_len), 0);
        cr_assert_eq(items[i].dims, 4);
        cr_assert_eq(items[i].task, SIM_TASK_RETRIEVAL_DOCUMENT);
    }
    cr_assert_null(items[0].title);
    cr_assert_str_eq(items[1].title, "Doc \"2\"");
    cr_assert_str_eq(items[2].title, "");
    sim_items_free(items, n);
    buf_cleanup(&b);
}

/* ---- random bodies: exact sizes, accepted by the simulator, fields intact ---- */

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

struct piece {
    const char *p;
    size_t n;
};

static const struct piece pieces[] = {
    {"a", 1},
    {"Z", 1},
    {"0", 1},
    {" ", 1},
    {"lorem ", 6},
    {"\"", 1},
    {"\\", 1},
    {"/", 1},
    {"\n", 1},
    {"\t", 1},
    {"\r", 1},
    {"\b", 1},
    {"\f", 1},
    {"\x01", 1},
    {"\x1f", 1},
    {"\x7f", 1},
    {"\0", 1},
    {"\xc3\xa9", 2},
    {"\xe6\x97\xa5", 3},
    {"\xf0\x9f\x98\x80", 4},
    {"\\u0041", 6},
    {"\xe2\x80\xa8", 3},
};
#define N_PIECES (sizeof(pieces) / sizeof(pieces[0]))

/* Random valid UTF-8 of 1..max pieces into b (reset first); NUL bytes only if nul. */
static void random_text(uint64_t *s, struct buf *b, size_t max, bool nul)
{
    buf_reset(b);
    size_t k = 1 + rnd(s) % max;
    for (size_t i = 0; i < k; i++) {
        size_t p = rnd(s) % N_PIECES;
        if (pieces[p].p[0] == '\0' && !nul)
            p = 0;
        cr_assert(buf_append(b, pieces[p].p, pieces[p].n));
    }
}

struct rand_batch {
    struct gem_req_opts o;
    const char *display_name;
    struct gem_text t[12];
    size_t n;
    struct buf texts[12], titles[12], keys[12], dn;
};

static void rand_batch_make(uint64_t *s, struct rand_batch *rb)
{
    static const int dims[] = {0, 1, 3, 128, 768, 3072};
    int task = (int)(rnd(s) % (SIM_TASK_COUNT + 1));
    rb->o.model = "gemini-embedding-001";
    rb->o.task_type = task == SIM_TASK_COUNT ? NULL : sim_task_names[task];
    rb->o.dims = dims[rnd(s) % 6];
    rb->n = rnd(s) % 4 == 0 ? 1 : 1 + rnd(s) % 12;
    buf_init(&rb->dn, 1 << 16);
    random_text(s, &rb->dn, 8, false);
    rb->display_name = rnd(s) % 8 == 0 ? NULL : rb->dn.data;
    for (size_t i = 0; i < rb->n; i++) {
        buf_init(&rb->texts[i], 1 << 16);
        buf_init(&rb->titles[i], 1 << 16);
        buf_init(&rb->keys[i], 1 << 16);
        random_text(s, &rb->texts[i], 40, true);
        random_text(s, &rb->titles[i], 6, false);
        random_text(s, &rb->keys[i], 4, false);
        uint64_t r = rnd(s) % 4;
        const char *title = r == 0 ? NULL : r == 1 ? "" : rb->titles[i].data;
        const char *key = rnd(s) % 10 == 0 ? NULL : rb->keys[i].data;
        rb->t[i] = (struct gem_text){key, rb->texts[i].data, rb->texts[i].len, title};
    }
}

static void rand_batch_free(struct rand_batch *rb)
{
    for (size_t i = 0; i < rb->n; i++) {
        buf_cleanup(&rb->texts[i]);
        buf_cleanup(&rb->titles[i]);
        buf_cleanup(&rb->keys[i]);
    }
    buf_cleanup(&rb->dn);
}

/* The simulator's view of item i matches what was sent. */
static void check_item(const struct rand_batch *rb, size_t i, const struct sim_item *it)
{
    const struct gem_text *t = &rb->t[i];
    cr_assert_eq(it->text_len, t->text_len, "item %zu text length", i);
    cr_assert_eq(memcmp(it->text, t->text, t->text_len), 0, "item %zu text bytes", i);
    int want_task = SIM_TASK_UNSPECIFIED;
    for (int k = 0; rb->o.task_type && k < SIM_TASK_COUNT; k++)
        if (strcmp(rb->o.task_type, sim_task_names[k]) == 0)
            want_task = k;
    cr_assert_eq(it->task, want_task);
    cr_assert_eq(it->dims, rb->o.dims);
    if (t->title && want_task == SIM_TASK_RETRIEVAL_DOCUMENT)
        cr_assert_str_eq(it->title, t->title);
    else
        cr_assert_null(it->title, "item %zu: title only with RETRIEVAL_DOCUMENT", i);
    if (!t->key) {
        cr_assert_null(it->metadata);
        return;
    }
    json_object *md = json_tokener_parse(it->metadata), *key;
    cr_assert(md && json_object_object_get_ex(md, "key", &key), "%s", it->metadata);
    cr_assert_eq(json_object_object_length(md), 1);
    cr_assert_str_eq(json_object_get_string(key), t->key);
    json_object_put(md);
}

Test(build, random_batches_sizes_exact_and_accepted)
{
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    const struct sim_model *m = sim_model_find("gemini-embedding-001");
    for (int iter = 0; iter < 400; iter++) {
        struct rand_batch rb;
        rand_batch_make(&seed, &rb);
        size_t want = gem_batch_overhead(rb.display_name);
        for (size_t i = 0; i < rb.n; i++)
            want += gem_batch_item_size(&rb.o, &rb.t[i]);
        struct buf b;
        buf_init(&b, 1 << 22);
        cr_assert(gem_build_batch(&b, rb.display_name, &rb.o, rb.t, rb.n));
        cr_assert_eq(b.len, want, "iteration %d: built %zu, predicted %zu", iter, b.len, want);
        cr_assert_eq(strlen(b.data), b.len, "no raw NUL in the body");
        struct sim_perr e = {0};
        json_object *root = sim_parse_json(b.data, b.len, &e);
        cr_assert_not_null(root, "iteration %d: %s", iter, e.msg);
        struct sim_batch_req req;
        cr_assert(sim_parse_batch_create(root, m, &req, &e), "iteration %d: %s", iter, e.msg);
        cr_assert_eq(req.n_items, rb.n);
        if (rb.display_name)
            cr_assert_str_eq(req.display_name, rb.display_name);
        else
            cr_assert_null(req.display_name);
        for (size_t i = 0; i < rb.n; i++)
            check_item(&rb, i, &req.items[i]);
        sim_batch_req_cleanup(&req);
        json_object_put(root);

        /* the same texts as JSONL lines and, 100 at most, as a sync body */
        buf_reset(&b);
        for (size_t i = 0; i < rb.n; i++)
            cr_assert(gem_build_jsonl_line(&b, &rb.o, &rb.t[i]));
        struct sim_item *items;
        size_t n;
        cr_assert(sim_parse_jsonl(b.data, b.len, m, &items, &n, &e), "%s", e.msg);
        cr_assert_eq(n, rb.n);
        for (size_t i = 0; i < n; i++) {
            cr_assert_eq(items[i].text_len, rb.t[i].text_len);
            cr_assert_eq(memcmp(items[i].text, rb.t[i].text, rb.t[i].text_len), 0);
            if (rb.t[i].key)
                cr_assert_str_eq(items[i].key, rb.t[i].key);
            else
                cr_assert_null(items[i].key);
        }
        sim_items_free(items, n);
        buf_reset(&b);
        cr_assert(gem_build_sync(&b, &rb.o, rb.t, rb.n));
        root = sim_parse_json(b.data, b.len, &e);
        cr_assert_not_null(root, "%s", e.msg);
        cr_assert(sim_parse_sync_batch(root, m, &items, &n, &e), "%s", e.msg);
        cr_assert_eq(n, rb.n);
        sim_items_free(items, n);
        json_object_put(root);
        buf_cleanup(&b);
        rand_batch_free(&rb);
    }
}

/* ---- Operations rendered by the simulator ---- */

struct simenv {
    struct sim sim;
    const struct sim_model *m;
};

static void simenv_init(struct simenv *env, const struct sim_settings *s)
{
    struct sim_config cfg;
    sim_config_defaults(&cfg);
    if (s)
        cfg.s = *s;
    sim_init(&env->sim, &cfg);
    env->m = sim_model_find("gemini-embedding-001");
}

static struct sim_settings fast_settings(void)
{
    struct sim_config cfg;
    sim_config_defaults(&cfg);
    cfg.s.pending_ms = 0;
    cfg.s.running_ms = 0;
    return cfg.s;
}

/* Submit a body built by the codec, as the simulator's create handler would. */
static struct sim_batch *simenv_submit(struct simenv *env, const struct buf *body)
{
    struct sim_perr e = {0};
    json_object *root = sim_parse_json(body->data, body->len, &e);
    cr_assert_not_null(root, "%s", e.msg);
    struct sim_batch_req req;
    cr_assert(sim_parse_batch_create(root, env->m, &req, &e), "%s", e.msg);
    json_object_put(root);
    struct sim_batch *b = sim_batch_create(&env->sim, env->m, &req);
    cr_assert_not_null(b);
    return b;
}

static int key_index(const char *key)
{
    char *end = NULL;
    long v = key ? strtol(key, &end, 10) : -1;
    return key && end != key && *end == '\0' ? (int)v : -1;
}

static void simenv_render(struct simenv *env, struct sim_batch *b, struct gem_operation *op)
{
    struct buf out;
    buf_init(&out, SIZE_MAX / 2);
    cr_assert(sim_render_operation(&env->sim, b, true, &out));
    op_ok(out.data, out.len, op);
    buf_cleanup(&out);
}

static const struct gem_text sim_texts[] = {
    {"0", "first chunk", 11, "Doc A"},
    {"1", "second \"chunk\"\n", 15, NULL},
    {"2", "please FAILME now", 17, NULL},
    {"3", "caf\xc3\xa9 \xf0\x9f\x98\x80", 10, ""},
};
#define N_SIM_TEXTS (sizeof(sim_texts) / sizeof(sim_texts[0]))

static struct buf sim_body(const struct gem_req_opts *o, size_t n)
{
    struct buf b;
    buf_init(&b, 1 << 26);
    cr_assert(gem_build_batch(&b, "embedd-12345678-abcdefabcdef", o, sim_texts, n));
    return b;
}

Test(simulator, succeeded_inline_operation)
{
    struct sim_settings s = fast_settings();
    snprintf(s.fail_marker, sizeof(s.fail_marker), "FAILME");
    struct simenv env;
    simenv_init(&env, &s);
    struct gem_req_opts o = {"gemini-embedding-001", "RETRIEVAL_DOCUMENT", 768};
    struct buf body = sim_body(&o, N_SIM_TEXTS);
    struct sim_batch *b = simenv_submit(&env, &body);
    struct gem_operation op;
    simenv_render(&env, b, &op);
    char name[64];
    snprintf(name, sizeof(name), "batches/%s", b->id);
    cr_assert_str_eq(op.name, name);
    cr_assert_str_eq(op.display_name, "embedd-12345678-abcdefabcdef");
    cr_assert_str_eq(op.model, "models/gemini-embedding-001");
    cr_assert_eq(op.state, GEM_STATE_SUCCEEDED);
    cr_assert(op.done);
    cr_assert_eq(op.error.code, 0);
    cr_assert_eq(op.request_count, 4);
    cr_assert_eq(op.successful_count, 3);
    cr_assert_eq(op.failed_count, 1);
    cr_assert(op.has_inline);
    cr_assert_eq(op.n_results, N_SIM_TEXTS);
    float *want = malloc(SIM_NATIVE_DIMS_MAX * sizeof(float));
    for (size_t i = 0; i < N_SIM_TEXTS; i++) {
        const struct gem_result *r = &op.results[i];
        cr_assert_str_eq(r->key, sim_texts[i].key, "metadata echo");
        if (i == 2) {
            cr_assert_eq(r->error.code, 13);
            cr_assert_null(r->values);
            continue;
        }
        cr_assert_eq(r->dims, 768);
        cr_assert_eq(r->token_count, sim_token_count(sim_texts[i].text, sim_texts[i].text_len));
        sim_vector(env.m, SIM_TASK_RETRIEVAL_DOCUMENT, sim_texts[i].text, sim_texts[i].text_len,
                   want);
        for (int k = 0; k < 768; k++)
            cr_assert(r->values[k] == want[k], "item %zu value %d: %.9g != %.9g", i, k,
                      (double)r->values[k], (double)want[k]);
    }
    free(want);
    gem_operation_free(&op);
    sim_batch_release(&env.sim, b);
    buf_cleanup(&body);
    sim_cleanup(&env.sim);
}

Test(simulator, pending_cancelled_failed_expired)
{
    struct gem_req_opts o = {"gemini-embedding-001", "CLUSTERING", 3};
    struct buf body = sim_body(&o, 2);
    struct gem_operation op;

    struct simenv env;
    simenv_init(&env, NULL); /* default timings: pending for a second */
    struct sim_batch *b = simenv_submit(&env, &body);
    simenv_render(&env, b, &op);
    cr_assert_eq(op.state, GEM_STATE_PENDING);
    cr_assert_not(op.done);
    cr_assert_eq(op.pending_count, 2);
    cr_assert_not(op.has_inline);
    gem_operation_free(&op);
    cr_assert(sim_batch_cancel(&env.sim, b->id));
    simenv_render(&env, b, &op);
    cr_assert_eq(op.state, GEM_STATE_CANCELLED);
    cr_assert(op.done);
    cr_assert_eq(op.error.code, 1);
    cr_assert_not(op.has_inline);
    gem_operation_free(&op);
    sim_batch_release(&env.sim, b);
    sim_cleanup(&env.sim);

    struct sim_settings s = fast_settings();
    s.batch_fail_rate = 1;
    simenv_init(&env, &s);
    b = simenv_submit(&env, &body);
    simenv_render(&env, b, &op);
    cr_assert_eq(op.state, GEM_STATE_FAILED);
    cr_assert(op.done);
    cr_assert_eq(op.error.code, 13);
    cr_assert_eq(op.failed_count, 2);
    cr_assert_not(op.has_inline);
    gem_operation_free(&op);
    sim_batch_release(&env.sim, b);
    sim_cleanup(&env.sim);

    s = fast_settings();
    s.batch_expire_rate = 1;
    simenv_init(&env, &s);
    b = simenv_submit(&env, &body);
    simenv_render(&env, b, &op);
    cr_assert_eq(op.state, GEM_STATE_EXPIRED);
    cr_assert(op.done);
    cr_assert_eq(op.error.code, 4);
    cr_assert_not(op.has_inline);
    gem_operation_free(&op);
    sim_batch_release(&env.sim, b);
    sim_cleanup(&env.sim);
    buf_cleanup(&body);
}

Test(simulator, shuffled_and_without_metadata)
{
    struct gem_req_opts o = {"gemini-embedding-001", "SEMANTIC_SIMILARITY", 8};
    struct buf body = sim_body(&o, N_SIM_TEXTS);
    struct sim_settings s = fast_settings();
    s.shuffle = true;
    struct simenv env;
    simenv_init(&env, &s);
    struct sim_batch *b = simenv_submit(&env, &body);
    struct gem_operation op;
    simenv_render(&env, b, &op);
    cr_assert_eq(op.n_results, N_SIM_TEXTS);
    bool moved = false, seen[N_SIM_TEXTS] = {false};
    for (size_t i = 0; i < op.n_results; i++) {
        int k = key_index(op.results[i].key);
        cr_assert(k >= 0 && k < (int)N_SIM_TEXTS && !seen[k]);
        seen[k] = true;
        moved = moved || k != (int)i;
    }
    cr_assert(moved, "the simulator shuffled: keys, not positions, identify results");
    gem_operation_free(&op);
    sim_batch_release(&env.sim, b);
    sim_cleanup(&env.sim);

    s = fast_settings();
    s.omit_metadata = true;
    simenv_init(&env, &s);
    b = simenv_submit(&env, &body);
    simenv_render(&env, b, &op);
    cr_assert_eq(op.n_results, N_SIM_TEXTS);
    for (size_t i = 0; i < op.n_results; i++)
        cr_assert_null(op.results[i].key);
    gem_operation_free(&op);
    sim_batch_release(&env.sim, b);
    sim_cleanup(&env.sim);
    buf_cleanup(&body);
}

Test(simulator, file_batch_output_lines)
{
    /* JSONL input → a file batch → responsesFile, and output lines parsed one by one */
    struct gem_req_opts o = {"gemini-embedding-001", "RETRIEVAL_DOCUMENT", 3};
    struct buf lines;
    buf_init(&lines, 1 << 20);
    for (size_t i = 0; i < N_SIM_TEXTS; i++)
        cr_assert(gem_build_jsonl_line(&lines, &o, &sim_texts[i]));
    struct sim_settings s = fast_settings();
    snprintf(s.fail_marker, sizeof(s.fail_marker), "FAILME");
    s.shuffle = true;
    struct simenv env;
    simenv_init(&env, &s);
    struct sim_batch_req req = {0};
    struct sim_perr e = {0};
    cr_assert(sim_parse_jsonl(lines.data, lines.len, env.m, &req.items, &req.n_items, &e), "%s",
              e.msg);
    req.file_name = strdup("files/t5snrshrqff1");
    struct sim_batch *b = sim_batch_create(&env.sim, env.m, &req);
    struct gem_operation op;
    simenv_render(&env, b, &op);
    char file[80];
    snprintf(file, sizeof(file), "files/batch-%s", b->id);
    cr_assert_str_eq(op.responses_file, file);
    cr_assert_not(op.has_inline);
    cr_assert_eq(op.state, GEM_STATE_SUCCEEDED);
    gem_operation_free(&op);

    const char *data;
    size_t len;
    cr_assert(sim_batch_results(b, &data, &len));
    bool seen[N_SIM_TEXTS] = {false};
    size_t count = 0;
    for (const char *p = data, *end = data + len; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
        struct gem_result r;
        char err[256] = "";
        cr_assert(gem_parse_result_line(p, l, &r, err, sizeof(err)), "%s: %.*s", err, (int)l, p);
        int k = key_index(r.key);
        cr_assert(k >= 0 && k < (int)N_SIM_TEXTS && !seen[k], "key %s", r.key);
        seen[k] = true;
        if (k == 2) {
            cr_assert_eq(r.error.code, 13);
        } else {
            cr_assert_eq(r.dims, 3);
            cr_assert_eq(r.token_count, sim_token_count(sim_texts[k].text, sim_texts[k].text_len));
        }
        gem_result_free(&r);
        count++;
        p += l + 1;
    }
    cr_assert_eq(count, N_SIM_TEXTS);
    sim_batch_release(&env.sim, b);
    sim_cleanup(&env.sim);
    buf_cleanup(&lines);
}

/* ---- large polls ---- */

/* A succeeded n × dims Operation as the simulator renders it (results twice). */
static struct buf big_operation(size_t n, int dims)
{
    struct gem_text *t = calloc(n, sizeof(*t));
    char(*keys)[24] = calloc(n, 24);
    char(*texts)[48] = calloc(n, 48);
    cr_assert(t && keys && texts);
    for (size_t i = 0; i < n; i++) {
        snprintf(keys[i], 24, "%zu", i);
        int l = snprintf(texts[i], 48, "chunk %zu of the big poll", i);
        t[i] = (struct gem_text){keys[i], texts[i], (size_t)l, NULL};
    }
    struct gem_req_opts o = {"gemini-embedding-001", "RETRIEVAL_DOCUMENT", dims};
    struct buf body;
    buf_init(&body, 1 << 26);
    cr_assert(gem_build_batch(&body, "embedd-12345678-abcdefabcdef", &o, t, n));
    free(t);
    free(keys);
    free(texts);
    struct sim_settings s = fast_settings();
    struct simenv env;
    simenv_init(&env, &s);
    struct sim_batch *b = simenv_submit(&env, &body);
    struct buf out;
    buf_init(&out, SIZE_MAX / 2);
    cr_assert(sim_render_operation(&env.sim, b, true, &out));
    sim_batch_release(&env.sim, b);
    sim_cleanup(&env.sim);
    buf_cleanup(&body);
    return out;
}

/* Best of three parses, in seconds; checks the result each time. */
static double time_parse(const char *body, size_t len, size_t n, int dims)
{
    double best = 1e9;
    for (int run = 0; run < 3; run++) {
        struct gem_operation op;
        double t0 = now_s();
        op_ok(body, len, &op);
        double dt = now_s() - t0;
        best = dt < best ? dt : best;
        cr_assert_eq(op.n_results, n);
        cr_assert_eq(op.results[n - 1].dims, dims);
        cr_assert_eq(key_index(op.results[n - 1].key), (int)(n - 1));
        gem_operation_free(&op);
    }
    return best;
}

Test(large, poll_of_1000_items_of_768_dims, .timeout = 600)
{
    struct buf compact = big_operation(1000, 768);
    /* Google pretty-prints: re-serialise the same Operation with indentation */
    json_object *tree = json_tokener_parse(compact.data);
    cr_assert_not_null(tree);
    size_t plen;
    const char *pretty = json_object_to_json_string_length(
        tree, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE,
        &plen);
    double tp = time_parse(pretty, plen, 1000, 768);
    double tc = time_parse(compact.data, compact.len, 1000, 768);
    fprintf(stderr,
            "gemini_codec: 1000 x 768 succeeded Operation: pretty %.1f MB in %.0f ms = %.0f MB/s; "
            "compact %.1f MB in %.0f ms = %.0f MB/s\n",
            (double)plen / 1e6, tp * 1e3, (double)plen / 1e6 / tp, (double)compact.len / 1e6,
            tc * 1e3, (double)compact.len / 1e6 / tc);
    json_object_put(tree);

    /* linear: ten times the items costs about ten times the time, not a hundred */
    struct buf small = big_operation(100, 768);
    double ts = time_parse(small.data, small.len, 100, 768);
    double per_byte_small = ts / (double)small.len, per_byte_big = tc / (double)compact.len;
    cr_assert_lt(per_byte_big, 4 * per_byte_small, "per byte: %.3g s vs %.3g s", per_byte_big,
                 per_byte_small);
    buf_cleanup(&small);
    buf_cleanup(&compact);
}

/* A results file fed in pieces of every size gives the results of its lines, in order. */
Test(codec, results_file_in_pieces)
{
    const char *file = "{\"key\":\"3\",\"response\":{\"embedding\":{\"values\":[0.25,-1.5]},"
                       "\"tokenCount\":\"4\"}}\n"
                       "\r\n"
                       "not json at all\n"
                       "{\"key\":\"4\",\"error\":{\"code\":3,\"message\":\"too long\"}}\r\n"
                       "{\"key\":\"5\",\"response\":{\"embedding\":{\"values\":[1e-3,2]}}}";
    size_t len = strlen(file);
    for (size_t piece = 1; piece <= len; piece += (piece < 20 ? 1 : 17)) {
        struct gem_lines l;
        gem_lines_init(&l);
        for (size_t i = 0; i < len; i += piece)
            cr_assert(gem_lines_feed(&l, file + i, len - i < piece ? len - i : piece));
        cr_assert(gem_lines_finish(&l));
        cr_assert_eq(l.n, 3, "piece %zu: %zu results", piece, l.n);
        cr_assert_eq(l.bad, 1, "piece %zu", piece);
        cr_assert(strstr(l.err, "line 3"), "%s", l.err);
        cr_assert_str_eq(l.results[0].key, "3");
        cr_assert_eq(l.results[0].dims, 2);
        cr_assert(l.results[0].values[0] == 0.25f && l.results[0].values[1] == -1.5f);
        cr_assert_eq(l.results[0].token_count, 4);
        cr_assert_str_eq(l.results[1].key, "4");
        cr_assert_eq(l.results[1].error.code, 3);
        cr_assert_null(l.results[1].values);
        cr_assert_str_eq(l.results[2].key, "5");
        cr_assert(l.results[2].values[0] == 0.001f);
        gem_lines_cleanup(&l);
    }
}

/* The claim packs batches from the sizes the store keeps (jsonw_str_len of
 * the text and of the title): they must give exactly the bytes the builder
 * writes, for every task type and for texts full of escapes. */
Test(build, item_size_from_stored_lengths)
{
    static const char *const texts[] = {"", "plain", "q\"u\\o\nt\te\r\b\f", "\x01\x1f ctl",
                                        "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac"};
    static const char *const titles[] = {NULL, "", "T\"itle\n", "\x02"};
    for (int task = 0; task < SIM_TASK_COUNT; task++) {
        struct gem_req_opts o = {"gemini-embedding-001", sim_task_names[task], 768};
        for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
            for (size_t k = 0; k < sizeof(titles) / sizeof(titles[0]); k++) {
                struct gem_text t = {"12345", texts[i], strlen(texts[i]), titles[k]};
                long tl = titles[k] ? (long)jsonw_str_len(titles[k], strlen(titles[k])) : -1;
                cr_assert_eq(
                    gem_batch_item_size_of(&o, "12345", jsonw_str_len(t.text, t.text_len), tl),
                    gem_batch_item_size(&o, &t), "task %s, text %zu, title %zu",
                    sim_task_names[task], i, k);
            }
    }
}

/* jsonw_str_len is the length of jsonw_str's output inside the quotes, and
 * the escapes are PostgreSQL's to_json escapes (migrations/0003). */
Test(build, jsonw_escapes_and_lengths)
{
    struct buf b;
    buf_init(&b, 1 << 12);
    char all[0x80];
    for (int c = 1; c < 0x80; c++)
        all[c - 1] = (char)c;
    cr_assert(jsonw_str(&b, all, sizeof(all) - 1));
    cr_assert_eq(b.len, jsonw_str_len(all, sizeof(all) - 1) + 2);
    cr_assert(
        strstr(b.data, "\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r"));
    cr_assert(strstr(b.data, " !\\\"#") && strstr(b.data, "[\\\\]"), "%s", b.data);
    buf_cleanup(&b);
}
/* ---- Files API resources (§5.3) ---- */

/* §5.3: the COOKBOOK File in wire camelCase; name, mimeType, sizeBytes, state and source as
 * printed there, the display name, times and hash illustrative. */
static const char file_5_3[] =
    "{\"name\":\"files/t5snrshrqff1\",\"displayName\":\"batch-input-1\",\"mimeType\":\"jsonl\","
    "\"sizeBytes\":\"202\",\"createTime\":\"2025-09-10T14:41:57.382361Z\","
    "\"updateTime\":\"2025-09-10T14:41:57.382361Z\","
    "\"expirationTime\":\"2025-09-12T14:41:57.346432Z\","
    "\"sha256Hash\":"
    "\"ZDk3YmVlNjcyYjA5NWIyNjc4Nzc1OTRiMzM3ZmIzZGM2MzVkYzMwMTk3ZmUwOWI2OWQ2YTg0N2M0YzQwNjgwMg==\","
    "\"uri\":\"https://generativelanguage.googleapis.com/v1beta/files/t5snrshrqff1\","
    "\"state\":\"ACTIVE\",\"source\":\"UPLOADED\"}";

static void parse_file_ok(const char *body, struct gem_file *f)
{
    char err[200] = "";
    cr_assert(gem_parse_file(body, strlen(body), f, err, sizeof(err)), "%s: %s", err, body);
}

static void parse_file_bad(const char *body, const char *why)
{
    struct gem_file f;
    char err[200] = "";
    cr_assert_not(gem_parse_file(body, strlen(body), &f, err, sizeof(err)), "accepted %s", body);
    cr_assert(strstr(err, why), "reason \"%s\" lacks \"%s\"", err, why);
    cr_assert_str_eq(f.name, "", "a refused File leaves nothing behind");
}

Test(codec, file_resource_bare_and_wrapped)
{
    struct gem_file f;
    parse_file_ok(file_5_3, &f);
    cr_assert_str_eq(f.name, "files/t5snrshrqff1");
    cr_assert_str_eq(f.display_name, "batch-input-1");
    cr_assert_str_eq(f.mime_type, "jsonl");
    cr_assert_eq(f.size_bytes, 202);
    cr_assert_eq(f.state, GEM_FILE_ACTIVE);
    cr_assert_str_eq(f.source, "UPLOADED");
    cr_assert_str_eq(f.create_time, "2025-09-10T14:41:57.382361Z");
    cr_assert_str_eq(f.expiration_time, "2025-09-12T14:41:57.346432Z");
    cr_assert_eq(strncmp(f.sha256_hash, "ZDk3", 4), 0);

    /* the answer to a finalized upload wraps it */
    char wrapped[sizeof(file_5_3) + 16];
    snprintf(wrapped, sizeof(wrapped), "{\"file\":%s}", file_5_3);
    struct gem_file g;
    parse_file_ok(wrapped, &g);
    cr_assert_eq(memcmp(&f, &g, sizeof(f)), 0);
}

Test(codec, file_resource_lenient_fields)
{
    struct gem_file f;
    /* int64 as a number; zero left out; states; unknown fields ignored */
    parse_file_ok("{\"name\":\"files/a\",\"sizeBytes\":17,\"state\":\"PROCESSING\"}", &f);
    cr_assert_eq(f.size_bytes, 17);
    cr_assert_eq(f.state, GEM_FILE_PROCESSING);
    cr_assert_str_eq(f.display_name, "");
    parse_file_ok("{\"name\":\"files/batch-x1\",\"state\":\"FAILED\",\"videoMetadata\":{}}", &f);
    cr_assert_eq(f.size_bytes, 0, "proto3 leaves a zero sizeBytes out");
    cr_assert_eq(f.state, GEM_FILE_FAILED);
    parse_file_ok("{\"name\":\"files/a\",\"state\":\"STATE_UNSPECIFIED\"}", &f);
    cr_assert_eq(f.state, GEM_FILE_STATE_UNSPECIFIED);
    parse_file_ok("{\"name\":\"files/a\",\"state\":\"MELTING\"}", &f);
    cr_assert_eq(f.state, GEM_FILE_STATE_UNSPECIFIED);
    parse_file_ok("{\"name\":\"files/a\"}", &f);
    cr_assert_eq(f.state, GEM_FILE_STATE_UNSPECIFIED);
    cr_assert_str_eq(gem_file_state_name(GEM_FILE_ACTIVE), "ACTIVE");
    cr_assert_str_eq(gem_file_state_name(GEM_FILE_PROCESSING), "PROCESSING");

    /* a display name too long for the field is cut at a UTF-8 boundary */
    struct buf b;
    buf_init(&b, 4096);
    cr_assert(buf_puts(&b, "{\"name\":\"files/a\",\"displayName\":\""));
    for (int i = 0; i < 200; i++)
        cr_assert(buf_puts(&b, "\xc3\xa9")); /* é, two bytes */
    cr_assert(buf_puts(&b, "\"}"));
    parse_file_ok(b.data, &f);
    cr_assert_eq(strlen(f.display_name), 254, "cut before the 256th byte, between code points");
    buf_cleanup(&b);
}

Test(codec, file_resource_refused)
{
    parse_file_bad("", "empty");
    parse_file_bad("{\"name\":\"files/a\"", "not valid JSON");
    parse_file_bad("[]", "not an object");
    parse_file_bad("{\"file\":[]}", "not an object");
    parse_file_bad("{\"displayName\":\"x\"}", "name");
    parse_file_bad("{\"name\":\"batches/a\"}", "name");
    parse_file_bad("{\"name\":\"files/\"}", "name");
    parse_file_bad("{\"name\":\"files/a/b\"}", "name");
    parse_file_bad("{\"name\":\"files/..\"}", "name");
    parse_file_bad("{\"name\":\"files/a?b\"}", "name");
    parse_file_bad("{\"name\":7}", "name");
    parse_file_bad("{\"name\":\"files/a\",\"sizeBytes\":\"-1\"}", "sizeBytes");
    parse_file_bad("{\"name\":\"files/a\",\"sizeBytes\":\"12x\"}", "sizeBytes");
    parse_file_bad("{\"name\":\"files/a\",\"sizeBytes\":true}", "sizeBytes");
}

Test(codec, file_list_pages)
{
    struct gem_file *files = (struct gem_file *)1;
    size_t n = 7;
    char tok[64] = "junk", err[200] = "";
    cr_assert(gem_parse_file_list("{}", 2, &files, &n, tok, sizeof(tok), err, sizeof(err)), "%s",
              err);
    cr_assert_null(files);
    cr_assert_eq(n, 0);
    cr_assert_str_eq(tok, "", "{} is the last (and only) page");

    char page[2048];
    snprintf(page, sizeof(page),
             "{\"files\":[%s,{\"name\":\"files/b2\",\"displayName\":\"embedd-7-3\","
             "\"state\":\"PROCESSING\"}],\"nextPageToken\":\"CgtmaWxlcy9iMg==\"}",
             file_5_3);
    cr_assert(
        gem_parse_file_list(page, strlen(page), &files, &n, tok, sizeof(tok), err, sizeof(err)),
        "%s", err);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(files[0].name, "files/t5snrshrqff1");
    cr_assert_eq(files[0].size_bytes, 202);
    cr_assert_str_eq(files[1].display_name, "embedd-7-3");
    cr_assert_eq(files[1].state, GEM_FILE_PROCESSING);
    cr_assert_str_eq(tok, "CgtmaWxlcy9iMg==");
    free(files);

    static const char *const bad[] = {
        "{\"files\":{}}",
        "{\"files\":[{\"name\":\"files/a\"},{\"displayName\":\"nameless\"}]}",
        "{\"files\":[],\"nextPageToken\":5}",
        "{\"files\":[],\"nextPageToken\":\"0123456789012345678901234567890123456789012345678901234"
        "567890123456789\"}",
        "[]",
        "{\"files\":[",
        NULL};
    for (int i = 0; bad[i]; i++) {
        snprintf(tok, sizeof(tok), "junk");
        cr_assert_not(gem_parse_file_list(bad[i], strlen(bad[i]), &files, &n, tok, sizeof(tok), err,
                                          sizeof(err)),
                      "accepted %s", bad[i]);
        cr_assert_null(files);
        cr_assert_eq(n, 0);
        cr_assert_str_eq(tok, "");
        cr_assert(err[0]);
    }
    cr_assert(strstr(err, "JSON"), "%s", err);
}

/* The simulator's File resources parse as Google's do. */
Test(codec, file_resource_from_the_simulator)
{
    struct sim_file sf;
    memset(&sf, 0, sizeof(sf));
    snprintf(sf.id, sizeof(sf.id), "abcdef012345");
    sf.display_name = "embedd-job-9";
    sf.mime_type = "application/jsonl";
    sf.create_ns = 1757515317382361000LL;
    sf.finalized = true;
    snprintf(sf.sha256_b64, sizeof(sf.sha256_b64), "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
    buf_init(&sf.data, 1 << 20);
    cr_assert(buf_puts(&sf.data, "{\"key\":\"a\"}\n"));
    struct buf out;
    buf_init(&out, 1 << 20);
    cr_assert(sim_render_file(&sf, "http://127.0.0.1:1/v1beta", &out));
    struct gem_file f;
    parse_file_ok(out.data, &f);
    cr_assert_str_eq(f.name, "files/abcdef012345");
    cr_assert_str_eq(f.display_name, "embedd-job-9");
    cr_assert_eq(f.size_bytes, 12);
    cr_assert_eq(f.state, GEM_FILE_ACTIVE);
    cr_assert_str_eq(f.source, "UPLOADED");

    /* an unfinished upload: PROCESSING, and an empty one has no sizeBytes at all */
    sf.finalized = false;
    buf_reset(&sf.data);
    buf_reset(&out);
    cr_assert(sim_render_file(&sf, "http://127.0.0.1:1/v1beta", &out));
    cr_assert_null(strstr(out.data, "sizeBytes"), "%s", out.data);
    parse_file_ok(out.data, &f);
    cr_assert_eq(f.state, GEM_FILE_PROCESSING);
    cr_assert_eq(f.size_bytes, 0);
    buf_cleanup(&out);
    buf_cleanup(&sf.data);
}

/* A results-file line answering an inline request (an inline batch whose output came as a
 * file, §4 and §9 item 6) names its request by the metadata echo. */
Test(codec, result_line_keyed_by_metadata)
{
    static const char line[] =
        "{\"response\":{\"tokenCount\":\"1\",\"embedding\":{\"values\":[0.5]}},"
        "\"metadata\":{\"key\":\"chunk-7\"}}";
    struct gem_result r;
    char err[200] = "";
    cr_assert(gem_parse_result_line(line, strlen(line), &r, err, sizeof(err)), "%s", err);
    cr_assert_str_eq(r.key, "chunk-7");
    cr_assert_eq(r.dims, 1);
    gem_result_free(&r);
    /* a "key" wins over the echo */
    static const char both[] = "{\"key\":\"k\",\"error\":{\"code\":13,\"message\":\"x\"},"
                               "\"metadata\":{\"key\":\"m\"}}";
    cr_assert(gem_parse_result_line(both, strlen(both), &r, err, sizeof(err)), "%s", err);
    cr_assert_str_eq(r.key, "k");
    cr_assert_eq(r.error.code, 13);
    gem_result_free(&r);
    /* neither: no key (matched by position, if at all) */
    static const char none[] = "{\"error\":{\"code\":3,\"message\":\"x\"},\"metadata\":{}}";
    cr_assert(gem_parse_result_line(none, strlen(none), &r, err, sizeof(err)), "%s", err);
    cr_assert_null(r.key);
    gem_result_free(&r);
}

/* §2 "Example: file-based submit", byte for byte; refused without a file name. */
Test(build, file_batch_body)
{
    struct buf b;
    buf_init(&b, 4096);
    cr_assert(gem_build_file_batch(&b, "svc-embed-file-1", "files/t5snrshrqff1"));
    cr_assert_str_eq(b.data, "{\"batch\":{\"displayName\":\"svc-embed-file-1\","
                             "\"inputConfig\":{\"fileName\":\"files/t5snrshrqff1\"}}}");
    buf_reset(&b);
    cr_assert(gem_build_file_batch(&b, NULL, "files/a\"b"));
    cr_assert_str_eq(b.data, "{\"batch\":{\"inputConfig\":{\"fileName\":\"files/a\\\"b\"}}}");
    buf_reset(&b);
    cr_assert_not(gem_build_file_batch(&b, "x", ""));
    cr_assert_not(gem_build_file_batch(&b, "x", NULL));
    cr_assert_eq(b.len, 0);
    buf_cleanup(&b);
    struct buf small;
    buf_init(&small, 20);
    cr_assert_not(gem_build_file_batch(&small, "x", "files/abc"), "past the buffer's cap");
    cr_assert_eq(small.len, 0);
    buf_cleanup(&small);
}
