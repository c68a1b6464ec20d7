/* test_http.c: embedd serve over real HTTP: health, readiness, auth, routing errors, limits. */
#include "harness.h"
#include "svch.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct svch svc;

static void start(void)
{
    static const char *const flags[] = {"--max-body-bytes=4096", "--key-cache-ms=500", NULL};
    svch_start(&svc, flags);
}

static void stop(void)
{
    svch_stop(&svc);
}

TestSuite(http, .init = start, .fini = stop, .timeout = 120);

static void get(struct simh_resp *r, const char *method, const char *path, const char *auth,
                const char *body)
{
    char url[256], hdr[128];
    snprintf(url, sizeof(url), "%s%s", svc.base, path);
    const char *hs[2] = {NULL, NULL};
    if (auth) {
        snprintf(hdr, sizeof(hdr), "Authorization: %s", auth);
        hs[0] = hdr;
    }
    simh_req_url(r, method, url, body, body ? strlen(body) : 0, hs);
    cr_assert_eq(r->curl_code, 0, "%s %s: transfer failed", method, path);
}

/* Assert an RFC 9457 body with the given status and code. */
static void assert_problem(const struct simh_resp *r, long status, const char *code)
{
    char ct[128] = "";
    cr_assert_eq(r->status, status, "status %ld, want %ld: %s", r->status, status, r->body);
    cr_assert(simh_header(r, "Content-Type", ct, sizeof(ct)));
    cr_assert_str_eq(ct, "application/problem+json");
    json_object *o = simh_json(r);
    cr_assert_eq(json_object_get_int(simh_get(o, "status")), status);
    cr_assert_str_eq(simh_str(o, "code"), code);
    char type[128];
    snprintf(type, sizeof(type), "urn:embedd:problem:%s", code);
    cr_assert_str_eq(simh_str(o, "type"), type);
    cr_assert(simh_str(o, "title") && simh_str(o, "detail"));
    char rid[64];
    cr_assert(simh_header(r, "X-Request-Id", rid, sizeof(rid)));
    cr_assert_str_eq(simh_str(o, "request_id"), rid, "request_id matches the header");
    json_object_put(o);
}

Test(http, healthz_and_readyz)
{
    struct simh_resp r;
    get(&r, "GET", "/healthz", NULL, NULL);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "{\"status\":\"ok\"}");
    simh_resp_free(&r);
    get(&r, "GET", "/readyz", NULL, NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_object *o = simh_json(&r);
    cr_assert_str_eq(simh_str(o, "status"), "ready");
    json_object_put(o);
    simh_resp_free(&r);

    /* a schema behind this build is not ready */
    PQclear(PQexec(svc.db.conn, "DELETE FROM schema_migrations"));
    get(&r, "GET", "/readyz", NULL, NULL);
    assert_problem(&r, 503, "migrations_pending");
    char ra[16];
    cr_assert(simh_header(&r, "Retry-After", ra, sizeof(ra)));
    simh_resp_free(&r);
}

/* X-Request-Id: 20 lowercase hex digits, this server's 8-digit salt then a
 * counter, so that two requests never share one. */
Test(http, request_ids_are_hex_and_distinct)
{
    char id[2][64];
    for (int i = 0; i < 2; i++) {
        struct simh_resp r;
        get(&r, "GET", "/healthz", NULL, NULL);
        cr_assert(simh_header(&r, "X-Request-Id", id[i], sizeof(id[i])));
        simh_resp_free(&r);
        cr_assert_eq(strlen(id[i]), 20, "%s", id[i]);
        cr_assert_eq(strspn(id[i], "0123456789abcdef"), 20, "%s is lowercase hex", id[i]);
    }
    cr_assert_str_neq(id[0], id[1]);
    cr_assert_eq(strncmp(id[0], id[1], 8), 0, "%s and %s share the salt", id[0], id[1]);
    cr_assert_gt(strcmp(id[1], id[0]), 0, "the counter goes up: %s after %s", id[1], id[0]);
}

Test(http, v1_needs_a_valid_bearer_key)
{
    struct simh_resp r;
    get(&r, "GET", "/v1/jobs", NULL, NULL);
    assert_problem(&r, 401, "unauthorized");
    char www[64];
    cr_assert(simh_header(&r, "WWW-Authenticate", www, sizeof(www)));
    simh_resp_free(&r);
    get(&r, "GET", "/v1/no-such-thing", NULL, NULL);
    assert_problem(&r, 401, "unauthorized"); /* unknown paths look the same */
    simh_resp_free(&r);
    get(&r, "GET", "/v1/jobs", "Basic dXNlcjpwYXNz", NULL);
    assert_problem(&r, 401, "unauthorized");
    simh_resp_free(&r);
    get(&r, "GET", "/v1/jobs", "Bearer ek_0000000000000000000000000000000000000000", NULL);
    assert_problem(&r, 401, "unauthorized");
    simh_resp_free(&r);
    char auth[96];
    snprintf(auth, sizeof(auth), "Bearer %s", svc.key);
    get(&r, "GET", "/v1/no-such-thing", auth, NULL);
    assert_problem(&r, 404, "not_found");
    simh_resp_free(&r);
    /* a revoked key stops working within --key-cache-ms (500 here) */
    PQclear(PQexec(svc.db.conn, "UPDATE api_keys SET revoked_at = now()"));
    int64_t t0 = simh_ms();
    for (;;) {
        get(&r, "GET", "/v1/no-such-thing", auth, NULL);
        if (r.status == 401)
            break;
        cr_assert_eq(r.status, 404);
        cr_assert_lt(simh_ms() - t0, 2000, "a revoked key still works after 2 s");
        simh_resp_free(&r);
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    assert_problem(&r, 401, "unauthorized");
    simh_resp_free(&r);
}

Test(http, unknown_path_and_wrong_method)
{
    struct simh_resp r;
    get(&r, "GET", "/nope", NULL, NULL);
    assert_problem(&r, 404, "not_found");
    simh_resp_free(&r);
    get(&r, "DELETE", "/healthz", NULL, NULL);
    assert_problem(&r, 405, "method_not_allowed");
    char allow[32];
    cr_assert(simh_header(&r, "Allow", allow, sizeof(allow)));
    cr_assert_str_eq(allow, "GET, HEAD");
    simh_resp_free(&r);
    /* HEAD is GET without a body */
    get(&r, "HEAD", "/healthz", NULL, NULL);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.len, 0);
    simh_resp_free(&r);
    /* %00 never shortens a path ("/healthz%00" is not "/healthz") */
    get(&r, "GET", "/healthz%00", NULL, NULL);
    assert_problem(&r, 404, "not_found");
    simh_resp_free(&r);
}

Test(http, body_limit_gives_413)
{
    char *big = malloc(5000);
    memset(big, 'x', 4999);
    big[4999] = '\0';
    struct simh_resp r;
    get(&r, "POST", "/healthz", NULL, big);
    assert_problem(&r, 413, "body_too_large");
    simh_resp_free(&r);
    free(big);
    /* the server is still fine afterwards */
    get(&r, "GET", "/healthz", NULL, NULL);
    cr_assert_eq(r.status, 200);
    simh_resp_free(&r);
}
