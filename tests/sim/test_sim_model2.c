/* test_sim_model2.c: gemini-sim's gemini-embedding-2 (docs/gemini-embedding-2.md): its own
 * vector space for the same text, truncated vectors re-normalised, taskType and title ignored
 * (or refused with strict_task_fields), the 8,192-token limit with over-long input cut (or
 * refused with long_input_error), usageMetadata.promptTokenCount as a number, and beside it
 * gemini-embedding-001 unchanged. */
#include "harness.h"

#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct simh sim;

static void start(void)
{
    static const char *const flags[] = {"--pending-ms=20", "--running-ms=20", NULL};
    simh_start(&sim, flags);
}

static void stop(void)
{
    simh_stop(&sim);
}

TestSuite(model2, .init = start, .fini = stop, .timeout = 120);

#define M2      "gemini-embedding-2"
#define M1      "gemini-embedding-001"
#define EMBED2  "/v1beta/models/gemini-embedding-2:embedContent"
#define SYNC2   "/v1beta/models/gemini-embedding-2:batchEmbedContents"
#define CREATE2 "/v1beta/models/gemini-embedding-2:asyncBatchEmbedContent"
#define EMBED1  "/v1beta/models/gemini-embedding-001:embedContent"

static json_object *embed(const char *path, const char *model, const char *text, const char *extra,
                          int dims, long want)
{
    char body[1024];
    snprintf(body, sizeof(body),
             "{\"model\":\"models/%s\",\"content\":{\"parts\":[{\"text\":\"%s\"}]}%s"
             ",\"outputDimensionality\":%d}",
             model, text, extra, dims);
    return simh_call(&sim, "POST", path, body, want);
}

static double norm_of(json_object *values)
{
    double s = 0;
    for (size_t i = 0; i < json_object_array_length(values); i++) {
        double x = json_object_get_double(json_object_array_get_idx(values, i));
        s += x * x;
    }
    return sqrt(s);
}

/* The same text under the two models: unrelated vectors; gemini-embedding-2's truncated
 * vectors have unit length, 001's do not. */
Test(model2, own_vector_space_and_unit_length)
{
    static float e1[768], e2[768], full[3072];
    json_object *a = embed(EMBED2, M2, "the same text", "", 768, 200);
    json_object *b = embed(EMBED1, M1, "the same text", "", 768, 200);
    simh_expected_vector_renormalised(M2, 3072, "the same text", 13, 768, e2);
    simh_expected_vector(M1, 3072, "TASK_TYPE_UNSPECIFIED", "the same text", 13, 768, e1);
    simh_assert_vector(simh_get(a, "embedding.values"), e2, 768);
    simh_assert_vector(simh_get(b, "embedding.values"), e1, 768);
    double dot = 0;
    for (int i = 0; i < 768; i++)
        dot += (double)e1[i] * (double)e2[i];
    cr_assert_lt(fabs(dot), 0.2, "the two spaces are unrelated (dot %g)", dot);
    cr_assert(fabs(norm_of(simh_get(a, "embedding.values")) - 1) < 1e-5);
    cr_assert(fabs(norm_of(simh_get(b, "embedding.values")) - 1) > 0.1, "001 is not re-normalised");
    json_object_put(a);
    json_object_put(b);
    /* no outputDimensionality: the native 3072 values */
    a = simh_call(&sim, "POST", EMBED2, "{\"content\":{\"parts\":[{\"text\":\"the same text\"}]}}",
                  200);
    simh_expected_vector_renormalised(M2, 3072, "the same text", 13, 3072, full);
    simh_assert_vector(simh_get(a, "embedding.values"), full, 3072);
    json_object_put(a);
}

/* taskType and title change nothing for gemini-embedding-2 (Google ignores them); the text,
 * with the task's instruction in it, decides. 001 still follows taskType. */
Test(model2, task_fields_ignored_and_counted)
{
    json_object *plain = embed(EMBED2, M2, "what is a cat?", "", 64, 200);
    json_object *task = embed(EMBED2, M2, "what is a cat?",
                              ",\"taskType\":\"RETRIEVAL_QUERY\",\"title\":\"t\"", 64, 200);
    json_object *prefixed =
        embed(EMBED2, M2, "task: search result | query: what is a cat?", "", 64, 200);
    const char *pv = json_object_to_json_string(simh_get(plain, "embedding.values"));
    cr_assert_str_eq(pv, json_object_to_json_string(simh_get(task, "embedding.values")));
    cr_assert_str_neq(pv, json_object_to_json_string(simh_get(prefixed, "embedding.values")));
    cr_assert_eq(simh_stat(&sim, "task_fields_ignored"), 1);
    json_object_put(plain);
    json_object_put(task);
    json_object_put(prefixed);
    json_object *q =
        embed(EMBED1, M1, "what is a cat?", ",\"taskType\":\"RETRIEVAL_QUERY\"", 64, 200);
    json_object *d =
        embed(EMBED1, M1, "what is a cat?", ",\"taskType\":\"RETRIEVAL_DOCUMENT\"", 64, 200);
    cr_assert_str_neq(json_object_to_json_string(simh_get(q, "embedding.values")),
                      json_object_to_json_string(simh_get(d, "embedding.values")));
    cr_assert_eq(simh_stat(&sim, "task_fields_ignored"), 1, "001 uses its fields");
    json_object_put(q);
    json_object_put(d);
}

/* strict_task_fields: the fields are refused, in every endpoint, so that a client that sends
 * them to gemini-embedding-2 fails a test; without them all is well. */
Test(model2, strict_task_fields_refused)
{
    simh_config(&sim, "{\"strict_task_fields\":true}");
    struct simh_resp r;
    static const char body[] = "{\"content\":{\"parts\":[{\"text\":\"x\"}]},\"title\":\"T\"}";
    simh_req(&sim, &r, "POST", EMBED2, body, strlen(body), NULL, true);
    simh_assert_error(&r, 400, "INVALID_ARGUMENT");
    cr_assert(strstr(r.body, "strict_task_fields"), "%s", r.body);
    simh_resp_free(&r);
    static const char sync[] = "{\"requests\":[{\"content\":{\"parts\":[{\"text\":\"x\"}]}},"
                               "{\"content\":{\"parts\":[{\"text\":\"y\"}]},\"task_type\":3}]}";
    simh_req(&sim, &r, "POST", SYNC2, sync, strlen(sync), NULL, true);
    simh_assert_error(&r, 400, "INVALID_ARGUMENT");
    cr_assert(strstr(r.body, "request 1"), "%s", r.body);
    simh_resp_free(&r);
    static const char batch[] =
        "{\"batch\":{\"inputConfig\":{\"requests\":{\"requests\":[{\"request\":{\"content\":{"
        "\"parts\":[{\"text\":\"x\"}]},\"taskType\":\"CLUSTERING\"},\"metadata\":{\"key\":"
        "\"a\"}}]}}}}";
    simh_req(&sim, &r, "POST", CREATE2, batch, strlen(batch), NULL, true);
    simh_assert_error(&r, 400, "INVALID_ARGUMENT");
    simh_resp_free(&r);
    cr_assert_eq(simh_stat(&sim, "creates_accepted"), 0);
    json_object_put(embed(EMBED2, M2, "fine", "", 8, 200));
    json_object_put(embed(EMBED1, M1, "fine", ",\"taskType\":\"CLUSTERING\"", 8, 200));
}

/* gemini-embedding-2 reports usageMetadata.promptTokenCount (a number) on interactive calls
 * (one for a batchEmbedContents call) and in batch results; 001 keeps tokenCount strings. */
Test(model2, usage_metadata)
{
    json_object *o = embed(EMBED2, M2, "four words of text", "", 8, 200);
    json_object *n = simh_get(o, "usageMetadata.promptTokenCount");
    cr_assert(n && json_object_is_type(n, json_type_int));
    cr_assert_eq(json_object_get_int(n), 5, "four, words (2), of, text");
    json_object_put(o);
    o = simh_call(&sim, "POST", SYNC2,
                  "{\"requests\":[{\"content\":{\"parts\":[{\"text\":\"one two\"}]}},"
                  "{\"content\":{\"parts\":[{\"text\":\"three\"}]}}]}",
                  200);
    cr_assert_eq(json_object_array_length(simh_get(o, "embeddings")), 2);
    cr_assert_eq(json_object_get_int(simh_get(o, "usageMetadata.promptTokenCount")), 4);
    json_object_put(o);
    o = embed(EMBED1, M1, "four words of text", "", 8, 200);
    cr_assert_null(simh_get(o, "usageMetadata"));
    json_object_put(o);

    json_object *op = simh_call(
        &sim, "POST", CREATE2,
        "{\"batch\":{\"inputConfig\":{\"requests\":{\"requests\":[{\"request\":{\"content\":{"
        "\"parts\":[{\"text\":\"title: none | text: hello\"}]},\"outputDimensionality\":16},"
        "\"metadata\":{\"key\":\"k1\"}}]}}}}",
        200);
    char name[128];
    snprintf(name, sizeof(name), "%s", simh_str(op, "name"));
    json_object_put(op);
    op = simh_wait_state(&sim, name, "BATCH_STATE_SUCCEEDED", 10000);
    json_object *it = simh_get(op, "response.inlinedResponses.inlinedResponses.0");
    n = simh_get(it, "response.usageMetadata.promptTokenCount");
    cr_assert(n && json_object_is_type(n, json_type_int), "%s", json_object_to_json_string(it));
    cr_assert_eq(json_object_get_int(n), 9, "title (2), :, none, |, text, :, hello (2)");
    cr_assert_null(simh_get(it, "response.tokenCount"));
    float e[16];
    simh_expected_vector_renormalised(M2, 3072, "title: none | text: hello", 25, 16, e);
    simh_assert_vector(simh_get(it, "response.embedding.values"), e, 16);
    json_object_put(op);
}

/* n words of 4 letters: n tokens by the simulator's rule. */
static char *words(int n)
{
    char *t = malloc((size_t)n * 5 + 1);
    for (int i = 0; i < n; i++)
        memcpy(t + 5 * i, "abcd ", 5);
    t[5 * n - 1] = '\0';
    return t;
}

/* 8,192 tokens pass whole; more are cut to the longest prefix within the limit (Google's
 * guide), counted in texts_truncated, and embedded as that prefix; with long_input_error the
 * text is refused as 001 refuses past its 2,048. */
Test(model2, token_limit_and_truncation)
{
    char *ok = words(8192), *over = words(8193), *body = malloc(64 * 1024);
    snprintf(body, 64 * 1024,
             "{\"content\":{\"parts\":[{\"text\":\"%s\"}]},\"outputDimensionality\":8}", ok);
    json_object *o = simh_call(&sim, "POST", EMBED2, body, 200);
    cr_assert_eq(json_object_get_int(simh_get(o, "usageMetadata.promptTokenCount")), 8192);
    json_object_put(o);
    cr_assert_eq(simh_stat(&sim, "texts_truncated"), 0);

    snprintf(body, 64 * 1024,
             "{\"content\":{\"parts\":[{\"text\":\"%s\"}]},\"outputDimensionality\":8}", over);
    o = simh_call(&sim, "POST", EMBED2, body, 200);
    cr_assert_eq(json_object_get_int(simh_get(o, "usageMetadata.promptTokenCount")), 8192);
    float e[8];
    /* the prefix: 8,192 words and the space after the last */
    simh_expected_vector_renormalised(M2, 3072, over, 8192 * 5, 8, e);
    simh_assert_vector(simh_get(o, "embedding.values"), e, 8);
    json_object_put(o);
    cr_assert_eq(simh_stat(&sim, "texts_truncated"), 1);

    simh_config(&sim, "{\"long_input_error\":true}");
    struct simh_resp r;
    simh_req(&sim, &r, "POST", EMBED2, body, strlen(body), NULL, true);
    simh_assert_error(&r, 400, "INVALID_ARGUMENT");
    cr_assert(strstr(r.body, "(8193) exceeds the maximum number of tokens allowed (8192)"), "%s",
              r.body);
    simh_resp_free(&r);

    /* gemini-embedding-001: 2,048 */
    char *w1 = words(2049);
    snprintf(body, 64 * 1024, "{\"content\":{\"parts\":[{\"text\":\"%s\"}]}}", w1);
    simh_req(&sim, &r, "POST", EMBED1, body, strlen(body), NULL, true);
    simh_assert_error(&r, 400, "INVALID_ARGUMENT");
    cr_assert(strstr(r.body, "(2049) exceeds the maximum number of tokens allowed (2048)"), "%s",
              r.body);
    simh_resp_free(&r);
    free(w1);
    free(ok);
    free(over);
    free(body);
}

/* Over-long batch items are cut too (and counted), not failed. */
Test(model2, batch_item_truncated)
{
    char *over = words(8200);
    size_t cap = 64 * 1024;
    char *body = malloc(cap);
    snprintf(body, cap,
             "{\"batch\":{\"inputConfig\":{\"requests\":{\"requests\":[{\"request\":{\"content\":{"
             "\"parts\":[{\"text\":\"%s\"}]},\"outputDimensionality\":8},\"metadata\":{\"key\":"
             "\"k\"}}]}}}}",
             over);
    json_object *op = simh_call(&sim, "POST", CREATE2, body, 200);
    char name[128];
    snprintf(name, sizeof(name), "%s", simh_str(op, "name"));
    json_object_put(op);
    op = simh_wait_state(&sim, name, "BATCH_STATE_SUCCEEDED", 10000);
    json_object *it = simh_get(op, "response.inlinedResponses.inlinedResponses.0");
    cr_assert_null(simh_get(it, "error"));
    cr_assert_eq(json_object_get_int(simh_get(it, "response.usageMetadata.promptTokenCount")),
                 8192);
    json_object_put(op);
    cr_assert_eq(simh_stat(&sim, "texts_truncated"), 1);
    free(over);
    free(body);
}

/* text-embedding-004 has no batch support: 404 on create, as Google answers; it still embeds
 * interactively. */
Test(model2, text_embedding_004_no_batch)
{
    struct simh_resp r;
    static const char batch[] =
        "{\"batch\":{\"inputConfig\":{\"requests\":{\"requests\":[{\"request\":{\"content\":{"
        "\"parts\":[{\"text\":\"x\"}]}},\"metadata\":{\"key\":\"a\"}}]}}}}";
    simh_req(&sim, &r, "POST", "/v1beta/models/text-embedding-004:asyncBatchEmbedContent", batch,
             strlen(batch), NULL, true);
    simh_assert_error(&r, 404, "NOT_FOUND");
    cr_assert(strstr(r.body, "not supported for asyncBatchEmbedContent"), "%s", r.body);
    simh_resp_free(&r);
}
