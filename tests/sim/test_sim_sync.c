/* test_sim_sync.c: gemini-sim interactive endpoints (embedContent, batchEmbedContents). */
#include "harness.h"

#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct simh sim;

static void start(void)
{
    simh_start(&sim, NULL);
}

static void stop(void)
{
    simh_stop(&sim);
}

TestSuite(sync, .init = start, .fini = stop, .timeout = 60);

#define SYNC_PATH  "/v1beta/models/gemini-embedding-001:batchEmbedContents"
#define EMBED_PATH "/v1beta/models/gemini-embedding-001:embedContent"

Test(sync, embed_content)
{
    json_object *o = simh_call(&sim, "POST", EMBED_PATH,
                               "{\"model\":\"models/gemini-embedding-001\",\"content\":{\"parts\":"
                               "[{\"text\":\"what is the capital of France?\"}]},\"taskType\":"
                               "\"RETRIEVAL_QUERY\",\"outputDimensionality\":768}",
                               200);
    float exp[768];
    const char *t = "what is the capital of France?";
    simh_expected_vector("gemini-embedding-001", 3072, "RETRIEVAL_QUERY", t, strlen(t), 768, exp);
    simh_assert_vector(simh_get(o, "embedding.values"), exp, 768);
    cr_assert_eq(json_object_object_length(o), 1, "only embedding at top level");
    json_object_put(o);
    cr_assert_eq(simh_stat(&sim, "sync_calls"), 1);
    cr_assert_eq(simh_stat(&sim, "texts_received"), 0, "sync texts are not batch texts");
}

Test(sync, batch_embed_contents_in_order)
{
    json_object *o = simh_call(
        &sim, "POST", SYNC_PATH,
        "{\"requests\":[{\"model\":\"models/gemini-embedding-001\",\"content\":{\"parts\":[{"
        "\"text\":\"q1\"}]},\"taskType\":\"RETRIEVAL_QUERY\",\"outputDimensionality\":32},"
        "{\"model\":\"models/gemini-embedding-001\",\"content\":{\"parts\":[{\"text\":\"q2\"}]},"
        "\"task_type\":\"RETRIEVAL_QUERY\",\"output_dimensionality\":32}]}",
        200);
    json_object *e = simh_get(o, "embeddings");
    cr_assert_eq(json_object_array_length(e), 2);
    float exp[32];
    simh_expected_vector("gemini-embedding-001", 3072, "RETRIEVAL_QUERY", "q1", 2, 32, exp);
    simh_assert_vector(simh_get(e, "0.values"), exp, 32);
    simh_expected_vector("gemini-embedding-001", 3072, "RETRIEVAL_QUERY", "q2", 2, 32, exp);
    simh_assert_vector(simh_get(e, "1.values"), exp, 32);
    json_object_put(o);
    cr_assert_eq(simh_stat(&sim, "sync_texts"), 2);
}

static char *n_requests(int n)
{
    size_t cap = (size_t)n * 120 + 64;
    char *b = malloc(cap);
    size_t len = (size_t)snprintf(b, cap, "{\"requests\":[");
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(b + len, cap - len,
                                "%s{\"content\":{\"parts\":[{\"text\":\"t%d\"}]},"
                                "\"outputDimensionality\":4}",
                                i ? "," : "", i);
    snprintf(b + len, cap - len, "]}");
    return b;
}

Test(sync, at_most_100_requests)
{
    char *ok = n_requests(100);
    json_object *o = simh_call(&sim, "POST", SYNC_PATH, ok, 200);
    cr_assert_eq(json_object_array_length(simh_get(o, "embeddings")), 100);
    json_object_put(o);
    free(ok);

    char *bad = n_requests(101);
    struct simh_resp r;
    simh_req(&sim, &r, "POST", SYNC_PATH, bad, strlen(bad), NULL, true);
    simh_assert_error(&r, 400, "INVALID_ARGUMENT");
    json_object *e = simh_json(&r);
    cr_assert_str_eq(simh_str(e, "error.message"),
                     "* BatchEmbedContentsRequest.requests: at most 100 requests can be in one "
                     "batch\n");
    json_object_put(e);
    simh_resp_free(&r);
    free(bad);
}

Test(sync, interactive_only_model)
{
    json_object *o = simh_call(&sim, "POST", "/v1/models/text-embedding-004:embedContent",
                               "{\"content\":{\"parts\":[{\"text\":\"hello\"}]}}", 200);
    json_object *v = simh_get(o, "embedding.values");
    cr_assert_eq(json_object_array_length(v), 768, "text-embedding-004 is 768-d");
    float exp[768];
    simh_expected_vector("text-embedding-004", 768, "TASK_TYPE_UNSPECIFIED", "hello", 5, 768, exp);
    simh_assert_vector(v, exp, 768);
    json_object_put(o);
}

Test(sync, bad_requests)
{
    static const struct {
        const char *path, *body;
    } cases[] = {
        {EMBED_PATH, "{\"content\":{\"parts\":[{\"text\":\"\"}]}}"},
        {EMBED_PATH, "{\"content\":{\"parts\":[]}}"},
        {EMBED_PATH, "{}"},
        {EMBED_PATH, "{\"content\":{\"parts\":[{\"txt\":\"a\"}]}}"},
        {EMBED_PATH, "{\"content\":{\"parts\":[{\"text\":5}]}}"},
        {EMBED_PATH, "{\"content\":{\"parts\":[{\"text\":\"a\"}]},\"outputDimensionality\":-1}"},
        {EMBED_PATH, "{\"content\":{\"parts\":[{\"text\":\"a\"}]},\"taskType\":\"NOPE\"}"},
        {EMBED_PATH, "[1,2]"},
        {SYNC_PATH, "{\"requests\":[]}"},
        {SYNC_PATH, "{\"requests\":{}}"},
        {SYNC_PATH, "{\"requests\":[{\"model\":\"models/text-embedding-004\",\"content\":{"
                    "\"parts\":[{\"text\":\"a\"}]}}]}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct simh_resp r;
        simh_req(&sim, &r, "POST", cases[i].path, cases[i].body, strlen(cases[i].body), NULL, true);
        simh_assert_error(&r, 400, "INVALID_ARGUMENT");
        simh_resp_free(&r);
    }
    cr_assert_eq(simh_stat(&sim, "sync_calls"), 0);
}

Test(sync, token_limit)
{
    simh_config(&sim, "{\"max_input_tokens\":2}");
    struct simh_resp r;
    const char *body = "{\"content\":{\"parts\":[{\"text\":\"one two three\"}]}}";
    simh_req(&sim, &r, "POST", EMBED_PATH, body, strlen(body), NULL, true);
    simh_assert_error(&r, 400, "INVALID_ARGUMENT");
    cr_assert(strstr(r.body, "exceeds the maximum number of tokens"), "%s", r.body);
    simh_resp_free(&r);
}
