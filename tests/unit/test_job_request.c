/* test_job_request.c: POST /v1/jobs validation: every bad input gets the right status, code and
 * pointer. */
#include "job_request.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bad_case {
    char body[320];
    int status;
    char code[32];
    char pointer[48];
};

static const struct job_limits lim = {100000, 100000};

#define D1 "\"documents\":[{\"id\":\"a\",\"text\":\"hello\"}]"

ParameterizedTestParameters(job_request, rejects)
{
    static struct bad_case cases[] = {
        {"", 400, "invalid_json", ""},
        {"{\"documents\": [", 400, "invalid_json", ""},
        {"{" D1 "} x", 400, "invalid_json", ""},
        {"{\"documents\":[{\"id\":\"a\",\"text\":\"\xff\xfe\"}]}", 400, "invalid_json", ""},
        {"[]", 400, "invalid_type", ""},
        {"{}", 400, "missing_field", "/documents"},
        {"{\"documents\":{}}", 400, "invalid_type", "/documents"},
        {"{\"documents\":[]}", 422, "no_documents", "/documents"},
        {"{\"documents\":[1]}", 400, "invalid_type", "/documents/0"},
        {"{\"documents\":[{\"text\":\"a\"}]}", 422, "missing_field", "/documents/0/id"},
        {"{\"documents\":[{\"id\":\"\",\"text\":\"a\"}]}", 422, "missing_field", "/documents/0/id"},
        {"{\"documents\":[{\"id\":7,\"text\":\"a\"}]}", 400, "invalid_type", "/documents/0/id"},
        {"{\"documents\":[{\"id\":\"a\"}]}", 422, "empty_text", "/documents/0/text"},
        {"{\"documents\":[{\"id\":\"a\",\"text\":\" \\n\\t \"}]}", 422, "empty_text",
         "/documents/0/text"},
        {"{\"documents\":[{\"id\":\"a\",\"text\":5}]}", 400, "invalid_type", "/documents/0/text"},
        {"{\"documents\":[{\"id\":\"a\",\"text\":\"x\\u0000y\"}]}", 422, "invalid_text",
         "/documents/0/text"},
        {"{\"documents\":[{\"id\":\"a\",\"text\":\"x\",\"foo\":1}]}", 400, "unknown_field",
         "/documents/0/foo"},
        {"{\"documents\":[{\"id\":\"a\",\"text\":\"x\"},{\"id\":\"b\",\"text\":\"y\"},"
         "{\"id\":\"a\",\"text\":\"z\"}]}",
         422, "duplicate_id", "/documents/2/id"},
        {"{\"documents\":[{\"id\":\"a\",\"text\":\"x\",\"title\":3}]}", 400, "invalid_type",
         "/documents/0/title"},
        {"{\"documents\":[{\"id\":\"a\",\"text\":\"x\",\"metadata\":\"m\"}]}", 400, "invalid_type",
         "/documents/0/metadata"},
        {"{\"documents\":[{\"id\":\"a\",\"text\":\"x\",\"metadata\":{\"k\":[\"\\u0000\"]}}]}", 422,
         "invalid_metadata", "/documents/0/metadata"},
        {"{" D1 ",\"output_dimensionality\":64}", 422, "out_of_range", "/output_dimensionality"},
        {"{" D1 ",\"output_dimensionality\":4000}", 422, "out_of_range", "/output_dimensionality"},
        {"{" D1 ",\"output_dimensionality\":\"768\"}", 400, "invalid_type",
         "/output_dimensionality"},
        {"{" D1 ",\"output_dimensionality\":768.5}", 400, "invalid_type", "/output_dimensionality"},
        {"{" D1 ",\"output_dimensionality\":99999999999999999999}", 422, "out_of_range",
         "/output_dimensionality"},
        {"{" D1 ",\"model\":\"text-embedding-004\"}", 422, "model_not_supported", "/model"},
        {"{" D1 ",\"model\":\"gpt-4\"}", 422, "unknown_model", "/model"},
        {"{" D1 ",\"model\":1}", 400, "invalid_type", "/model"},
        {"{" D1 ",\"task_type\":\"RETRIEVAL\"}", 422, "unknown_task_type", "/task_type"},
        {"{" D1 ",\"normalize\":\"yes\"}", 400, "invalid_type", "/normalize"},
        {"{" D1 ",\"priority\":5000}", 422, "out_of_range", "/priority"},
        {"{" D1 ",\"chunking\":[]}", 400, "invalid_type", "/chunking"},
        {"{" D1 ",\"chunking\":{\"max_chars\":50}}", 422, "out_of_range", "/chunking/max_chars"},
        {"{" D1 ",\"chunking\":{\"max_chars\":2000,\"overlap_chars\":1500}}", 422, "out_of_range",
         "/chunking/overlap_chars"},
        {"{" D1 ",\"chunking\":{\"size\":1}}", 400, "unknown_field", "/chunking/size"},
        {"{" D1 ",\"options\":{}}", 400, "unknown_field", "/options"},
        {"{" D1 ",\"display_name\":[]}", 400, "invalid_type", "/display_name"},
    };
    return cr_make_param_array(struct bad_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct bad_case *c, job_request, rejects)
{
    struct job_request r;
    struct job_req_error e;
    cr_assert_not(job_request_parse(c->body, strlen(c->body), &lim, &r, &e), "accepted: %s",
                  c->body);
    cr_assert_eq(e.status, c->status, "%s: status %d (%s: %s)", c->body, e.status, e.code,
                 e.detail);
    cr_assert_str_eq(e.code, c->code, "%s: %s", c->body, e.detail);
    cr_assert_str_eq(e.pointer, c->pointer, "%s: %s", c->body, e.detail);
    cr_assert(e.detail[0], "a detail is always given");
    cr_assert_null(r.root, "nothing is kept on failure");
}

Test(job_request, defaults_and_borrowed_fields)
{
    const char *body =
        "{\"documents\":[{\"id\":\"d1\",\"text\":\"caf\xc3\xa9 text\",\"title\":\"T\","
        "\"metadata\":{\"lang\":\"fr\",\"n\":[1,2]}},{\"id\":\"d2\",\"text\":\"b\"}]}";
    struct job_request r;
    struct job_req_error e;
    cr_assert(job_request_parse(body, strlen(body), &lim, &r, &e), "%s", e.detail);
    cr_assert_str_eq(r.model, "gemini-embedding-001");
    cr_assert_str_eq(r.task_type, "RETRIEVAL_DOCUMENT");
    cr_assert_eq(r.output_dimensionality, 768);
    cr_assert(r.normalize);
    cr_assert_eq(r.priority, 0);
    cr_assert_eq(r.max_chars, 2000);
    cr_assert_eq(r.overlap_chars, 200);
    cr_assert_null(r.display_name);
    cr_assert_eq(r.n_docs, 2);
    cr_assert_eq(r.docs[0].text_len, strlen("caf\xc3\xa9 text"));
    cr_assert_eq(memcmp(r.docs[0].id, "d1", 2), 0);
    cr_assert_str_eq(r.docs[0].title, "T");
    cr_assert_str_eq(r.docs[0].metadata_json, "{\"lang\":\"fr\",\"n\":[1,2]}");
    cr_assert_null(r.docs[1].title);
    cr_assert_null(r.docs[1].metadata_json);
    job_request_free(&r);
}

Test(job_request, options_are_read)
{
    const char *body =
        "{\"documents\":[{\"id\":\"a\",\"text\":\"x\"}],\"display_name\":\"n\",\"model\":"
        "\"gemini-embedding-001\",\"task_type\":\"CLUSTERING\",\"output_dimensionality\":3072,"
        "\"priority\":-5,\"normalize\":false,\"chunking\":{\"max_chars\":500,\"overlap_chars\":0}}";
    struct job_request r;
    struct job_req_error e;
    cr_assert(job_request_parse(body, strlen(body), &lim, &r, &e), "%s", e.detail);
    cr_assert_str_eq(r.display_name, "n");
    cr_assert_str_eq(r.task_type, "CLUSTERING");
    cr_assert_eq(r.output_dimensionality, 3072);
    cr_assert_eq(r.priority, -5);
    cr_assert_not(r.normalize);
    cr_assert_eq(r.max_chars, 500);
    cr_assert_eq(r.overlap_chars, 0);
    job_request_free(&r);
}

Test(job_request, deep_nesting_and_long_values)
{
    char body[4096];
    int n =
        snprintf(body, sizeof(body), "{\"documents\":[{\"id\":\"a\",\"text\":\"x\",\"metadata\":");
    for (int i = 0; i < 200; i++)
        body[n++] = '[';
    for (int i = 0; i < 200; i++)
        body[n++] = ']';
    snprintf(body + n, sizeof(body) - (size_t)n, "}]}");
    struct job_request r;
    struct job_req_error e;
    cr_assert_not(job_request_parse(body, strlen(body), &lim, &r, &e));
    cr_assert_eq(e.status, 400, "deep nesting is refused, not a crash");

    char *title = malloc(3000);
    memset(title, 't', 2999);
    title[2999] = '\0';
    char *b2 = malloc(4000);
    snprintf(b2, 4000, "{\"documents\":[{\"id\":\"a\",\"text\":\"x\",\"title\":\"%s\"}]}", title);
    cr_assert_not(job_request_parse(b2, strlen(b2), &lim, &r, &e));
    cr_assert_eq(e.status, 422);
    cr_assert_str_eq(e.code, "too_long");
    cr_assert_str_eq(e.pointer, "/documents/0/title");
    free(title);
    free(b2);
}
