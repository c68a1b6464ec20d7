/* test_http_route.c: path template matching and problem+json bodies. */
#include "router.h"

#include <criterion/criterion.h>

#include <json-c/json.h>

#include <stdio.h>
#include <string.h>

static bool match(const char *pattern, const char *path, const char **params, size_t *n)
{
    static char store[256];
    return http_route_match(pattern, path, params, n, store, sizeof(store));
}

Test(http_route, templates)
{
    const char *p[HTTP_MAX_PARAMS];
    size_t n;
    cr_assert(match("/healthz", "/healthz", p, &n));
    cr_assert_eq(n, 0);
    cr_assert_not(match("/healthz", "/healthz/", p, &n));
    cr_assert_not(match("/healthz", "/healthzz", p, &n));
    cr_assert_not(match("/v1/jobs", "/v1/job", p, &n));
    cr_assert(match("/v1/jobs/{id}", "/v1/jobs/abc", p, &n));
    cr_assert_eq(n, 1);
    cr_assert_str_eq(p[0], "abc");
    cr_assert(match("/v1/jobs/{id}/results", "/v1/jobs/42/results", p, &n));
    cr_assert_str_eq(p[0], "42");
    cr_assert_not(match("/v1/jobs/{id}/results", "/v1/jobs//results", p, &n), "empty param");
    cr_assert_not(match("/v1/jobs/{id}", "/v1/jobs/a/b", p, &n));
    cr_assert_not(match("/v1/jobs/{id}", "/v1/jobs", p, &n));
    cr_assert(match("/a/{x}/b/{y}", "/a/1/b/2", p, &n));
    cr_assert_eq(n, 2);
    cr_assert_str_eq(p[1], "2");
}

/* Paths are matched as sent: each {param} is percent-decoded on its own, so
 * an id may hold an encoded "/"; literal segments must match as written. */
Test(http_route, parameters_are_decoded_one_by_one)
{
    const char *p[HTTP_MAX_PARAMS];
    size_t n;
    cr_assert(match("/c/{id}/documents/{doc}", "/c/x/documents/a%2Fb%20c", p, &n));
    cr_assert_eq(n, 2);
    cr_assert_str_eq(p[1], "a/b c");
    cr_assert(match("/c/{doc}", "/c/%25%2f", p, &n));
    cr_assert_str_eq(p[0], "%/", "decoded once");
    cr_assert(match("/c/{doc}", "/c/caf%C3%A9", p, &n));
    cr_assert_str_eq(p[0], "caf\xc3\xa9");
    cr_assert_not(match("/c/{doc}", "/c/a%00", p, &n), "an encoded NUL");
    cr_assert_not(match("/c/{doc}", "/c/a%zz", p, &n), "a bad escape");
    cr_assert_not(match("/c/{doc}", "/c/a%2", p, &n), "a cut escape");
    cr_assert_not(match("/c/{doc}", "/c/a%", p, &n));
    cr_assert_not(match("/healthz", "/health%7a", p, &n), "literal segments as written");
    cr_assert_not(match("/c/{doc}/x", "/c/a%2Fx", p, &n));
}

Test(http_route, problem_json_is_escaped_and_complete)
{
    struct http_resp r;
    struct http_req req;
    memset(&r, 0, sizeof(r));
    memset(&req, 0, sizeof(req));
    snprintf(req.id, sizeof(req.id), "rid1");
    buf_init(&r.body, 1 << 16);
    http_problem(&r, &req, 422, "invalid_field", "/documents/0/text", "bad \"text\"\n at %d", 3);
    cr_assert_eq(r.status, 422);
    cr_assert_str_eq(r.content_type, "application/problem+json");
    json_object *o = json_tokener_parse(r.body.data);
    cr_assert_not_null(o, "not JSON: %s", r.body.data);
    json_object *v;
    cr_assert(json_object_object_get_ex(o, "detail", &v));
    cr_assert_str_eq(json_object_get_string(v), "bad \"text\"\n at 3");
    cr_assert(json_object_object_get_ex(o, "errors", &v));
    cr_assert_str_eq(
        json_object_get_string(json_object_object_get(json_object_array_get_idx(v, 0), "pointer")),
        "/documents/0/text");
    cr_assert(json_object_object_get_ex(o, "title", &v));
    cr_assert_str_eq(json_object_get_string(v), "Unprocessable Content");
    cr_assert(json_object_object_get_ex(o, "request_id", &v));
    cr_assert_str_eq(json_object_get_string(v), "rid1");
    json_object_put(o);
    buf_cleanup(&r.body);
}
