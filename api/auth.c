/* auth.c: bearer-key authentication for /v1 routes, and the shared database-failure replies. */
#include "api.h"

#include "keys.h"
#include "log.h"

#include <string.h>
#include <strings.h>

static void unauthorized(struct http_resp *resp, const struct http_req *req, const char *detail)
{
    http_resp_header(resp, "WWW-Authenticate", "Bearer realm=\"embedd\"");
    http_problem(resp, req, 401, "unauthorized", NULL, "%s", detail);
}

bool api_authenticate(void *appv, struct http_req *req, struct http_resp *resp)
{
    struct app *app = appv;
    const char *h = http_req_header(req, "Authorization");
    if (!h) {
        unauthorized(resp, req, "an Authorization: Bearer <key> header is required");
        return false;
    }
    if (strncasecmp(h, "Bearer ", 7) != 0) {
        unauthorized(resp, req, "the Authorization header must use the Bearer scheme");
        return false;
    }
    const char *key = h + 7;
    while (*key == ' ')
        key++;
    char err[512];
    PGconn *c = api_db_or_503(app, req, resp);
    if (!c)
        return false;
    int64_t id = 0;
    enum keys_result kr = keys_verify(c, key, &id, err, sizeof(err));
    db_pool_release(app->db, c);
    switch (kr) {
    case KEYS_OK:
        req->key_id = id;
        return true;
    case KEYS_INVALID:
        unauthorized(resp, req, "the API key is not valid");
        return false;
    default:
        api_db_failed(req, resp, err);
        return false;
    }
}

PGconn *api_db_or_503(struct app *app, struct http_req *req, struct http_resp *resp)
{
    char err[512];
    PGconn *c = db_pool_acquire(app->db, app->db_timeout_ms, err, sizeof(err));
    if (!c) {
        log_warn("request %s: %s", req->id, err);
        http_resp_header(resp, "Retry-After", "5");
        http_problem(resp, req, 503, "database_unavailable", NULL,
                     "the database is unreachable; retry later");
    }
    return c;
}

void api_db_failed(struct http_req *req, struct http_resp *resp, const char *err)
{
    log_error("request %s: %s", req->id, err);
    http_resp_header(resp, "Retry-After", "5");
    http_problem(resp, req, 503, "database_error", NULL,
                 "the request could not be completed; retry later");
}
