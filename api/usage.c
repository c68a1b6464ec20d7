/* usage.c: GET /v1/usage: an API key's tokens and dollars over its jobs, per model. */
#include "api.h"

#include "store/jobs.h"
#include "util/jsonw.h"

#include <stdio.h>
#include <string.h>

#define USAGE_MODELS 16

void api_usage(void *appv, struct http_req *req, struct http_resp *resp)
{
    struct app *app = appv;
    const char *from = http_req_query(req, "from"), *to = http_req_query(req, "to");
    if ((from && (!*from || strlen(from) > 64)) || (to && (!*to || strlen(to) > 64))) {
        http_problem(resp, req, 400, "invalid_parameter", NULL,
                     "from and to must be RFC 3339 timestamps, e.g. 2026-12-01T00:00:00Z");
        return;
    }
    PGconn *c = api_db_or_503(app, req, resp);
    if (!c)
        return;
    struct jobs_usage u[USAGE_MODELS];
    size_t n = 0;
    char err[512];
    enum jobs_result r =
        jobs_usage(c, req->key_id, from, to, u, USAGE_MODELS, &n, err, sizeof(err));
    db_pool_release(app->db, c);
    if (r == JOBS_CONFLICT) {
        http_problem(resp, req, 400, "invalid_parameter", NULL,
                     "from and to must be RFC 3339 timestamps, e.g. 2026-12-01T00:00:00Z");
        return;
    }
    if (r != JOBS_OK) {
        api_db_failed(req, resp, err);
        return;
    }
    resp->status = 200;
    resp->content_type = "application/json";
    struct buf *b = &resp->body;
    bool ok = buf_puts(b, "{\"from\":") && jsonw_cstr(b, from) && buf_puts(b, ",\"to\":") &&
              jsonw_cstr(b, to) && buf_puts(b, ",\"models\":[");
    for (size_t i = 0; i < n && ok; i++) {
        struct api_tokens t = {u[i].tokens_batch, u[i].tokens_interactive, u[i].tokens_reused,
                               u[i].tokens_estimated};
        ok = (!i || buf_putc(b, ',')) && buf_puts(b, "{\"model\":") && jsonw_cstr(b, u[i].model) &&
             buf_printf(b,
                        ",\"jobs\":%lld,\"chunks\":{\"succeeded\":%lld,\"failed\":%lld,"
                        "\"reused\":%lld},",
                        (long long)u[i].jobs, (long long)u[i].chunks_succeeded,
                        (long long)u[i].chunks_failed, (long long)u[i].chunks_reused) &&
             api_put_cost(b, u[i].model, &t) && buf_putc(b, '}');
    }
    ok = ok && buf_puts(b, "]}");
    if (!ok)
        http_problem(resp, req, 500, "internal", NULL, "the response could not be built");
}
