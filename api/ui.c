/*
 * ui.c: the dashboard: GET / serves its page, GET /ui/{file} its script and
 * style sheet, all compiled into the binary (ui_assets.h). The page runs in
 * the browser against this server's REST API with the key its user pastes;
 * these routes need no key and serve nothing but the files. A strict
 * Content-Security-Policy lets the page load only its own script and style
 * sheet and talk only to this server.
 */
#include "api.h"

#include "ui_assets.h"

#include <string.h>

#define UI_CSP                                                                                     \
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "                \
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

static const struct ui_asset *find(const char *name)
{
    for (size_t i = 0; i < ui_assets_count; i++)
        if (strcmp(ui_assets[i].name, name) == 0)
            return &ui_assets[i];
    return NULL;
}

static void serve(struct http_req *req, struct http_resp *resp, const struct ui_asset *a)
{
    http_resp_header(resp, "Content-Security-Policy", UI_CSP);
    http_resp_header(resp, "X-Content-Type-Options", "nosniff");
    http_resp_header(resp, "Referrer-Policy", "no-referrer");
    http_resp_header(resp, "X-Frame-Options", "DENY");
    /* revalidated on every load, so a new binary's files are used at once */
    http_resp_header(resp, "Cache-Control", "no-cache");
    http_resp_header(resp, "ETag", a->etag);
    const char *inm = http_req_header(req, "If-None-Match");
    buf_reset(&resp->body);
    resp->content_type = a->content_type;
    if (inm && strstr(inm, a->etag)) {
        resp->status = 304;
        return;
    }
    resp->status = 200;
    if (!buf_append(&resp->body, a->data, a->len))
        http_problem(resp, req, 500, "internal", NULL, "the response could not be built");
}

void api_ui_index(void *app, struct http_req *req, struct http_resp *resp)
{
    (void)app;
    const struct ui_asset *a = find("index.html");
    if (a)
        serve(req, resp, a);
    else
        http_problem(resp, req, 404, "not_found", NULL, "this build has no dashboard");
}

void api_ui_file(void *app, struct http_req *req, struct http_resp *resp)
{
    (void)app;
    const struct ui_asset *a = strcmp(req->params[0], "index.html") ? find(req->params[0]) : NULL;
    if (a)
        serve(req, resp, a);
    else
        http_problem(resp, req, 404, "not_found", NULL, "no resource at %s", req->path);
}
