/*
 * embeddings.c: POST /openai/v1/embeddings: OpenAI's request and response
 * (request.h, render.h). Texts already embedded in the space under the key
 * come from storage; the rest from Google's interactive API on the
 * request's thread, at most 100 per call (openai/embed.h).
 */
#include "openai/oai_api.h"

#include "jsonv.h"
#include "log.h"
#include "openai/embed.h"
#include "openai/render.h"
#include "openai/space.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void api_oai_error(struct http_resp *resp, const struct oai_err *e)
{
    http_openai_error(resp, e->status, e->code, e->param, e->message);
}

bool api_oai_json_body(struct http_req *req, struct http_resp *resp, json_object **root)
{
    *root = NULL;
    const char *ct = http_req_header(req, "Content-Type");
    if (ct && !http_media_type_is(ct, "application/json")) {
        http_openai_error(resp, 415, "unsupported_media_type", NULL,
                          "the body must be application/json");
        return false;
    }
    struct job_req_error e;
    memset(&e, 0, sizeof(e));
    if (!jsonv_parse(req->body.data ? req->body.data : "", req->body.len, 64, root, &e)) {
        http_openai_error(resp, 400, "invalid_json", NULL, e.detail);
        return false;
    }
    return true;
}

bool api_oai_limit(struct http_req *req, struct http_resp *resp, int dflt, int max, int *out)
{
    const char *lim = http_req_query(req, "limit");
    *out = dflt;
    if (!lim)
        return true;
    char *end;
    long v = strtol(lim, &end, 10);
    if (*lim == '\0' || *end || v < 1 || v > max) {
        char msg[96];
        snprintf(msg, sizeof(msg), "limit must be an integer between 1 and %d", max);
        http_openai_error(resp, 400, "invalid_value", "limit", msg);
        return false;
    }
    *out = (int)v;
    return true;
}

static bool render(struct buf *b, const struct oai_emb_req *r, const struct oai_vectors *v)
{
    bool ok = oai_render_begin(b);
    for (size_t i = 0; ok && i < v->n; i++)
        ok = oai_render_item(b, i, v->f32le + i * (size_t)v->dims * 4, v->dims, r->base64);
    return ok && oai_render_end(b, r->model, v->tokens);
}

/* Google's part; false with resp filled. */
static bool embed_rest(struct app *app, struct http_req *req, struct http_resp *resp,
                       const struct oai_space *sp, const struct oai_emb_req *r,
                       struct oai_vectors *v)
{
    if (v->reused == v->n)
        return true;
    if (!app->search) {
        http_openai_error(resp, 503, "embedding_unavailable", NULL, "embedding is not running");
        return false;
    }
    struct search_embed_info info;
    enum search_embed_status st = oai_vectors_embed(app->search, sp, r->texts, r->lens, v, &info);
    switch (st) {
    case SEARCH_EMBED_OK:
        return true;
    case SEARCH_EMBED_UNCONFIGURED:
        http_openai_error(resp, 503, "embedding_unavailable", NULL,
                          "texts cannot be embedded: this server has no Gemini API key");
        return false;
    case SEARCH_EMBED_RETRY: {
        char ra[24];
        int64_t s = info.retry_after_ms > 0 ? (info.retry_after_ms + 999) / 1000 : 1;
        snprintf(ra, sizeof(ra), "%lld", (long long)s);
        log_warn("request %s: embeddings deferred: %s", req->id, info.detail);
        http_resp_header(resp, "Retry-After", ra);
        http_openai_error(resp, 503, "upstream_unavailable", NULL,
                          "Google's embedding API did not answer in time; retry later");
        return false;
    }
    case SEARCH_EMBED_REFUSED:
        break;
    }
    log_error("request %s: embeddings refused: %s", req->id, info.detail);
    http_openai_error(resp, 502, "upstream_error", NULL,
                      "Google's embedding API refused the texts");
    return false;
}

void api_oai_embeddings(void *appv, struct http_req *req, struct http_resp *resp)
{
    struct app *app = appv;
    json_object *root = NULL;
    struct oai_emb_req r;
    memset(&r, 0, sizeof(r));
    struct oai_vectors v;
    memset(&v, 0, sizeof(v));
    struct oai_err e;
    struct oai_space sp;
    PGconn *c = NULL;
    char err[512];
    if (!api_oai_json_body(req, resp, &root))
        goto out;
    if (!oai_parse_embeddings(root, &r, &e)) {
        api_oai_error(resp, &e);
        goto out;
    }
    if (!(c = api_db_or_503(app, req, resp)))
        goto out;
    enum oai_space_result sr =
        oai_space_resolve(c, req->key_id, r.model, r.dims, &sp, &e, err, sizeof(err));
    if (sr == OAI_SPACE_DB_ERROR) {
        api_db_failed(req, resp, err);
        goto out;
    }
    if (sr == OAI_SPACE_REFUSED) {
        api_oai_error(resp, &e);
        goto out;
    }
    if (!oai_space_texts_fit(&sp, r.texts, r.lens, r.n, r.single, &e)) {
        api_oai_error(resp, &e);
        goto out;
    }
    if (!oai_vectors_init(&v, r.n, sp.dims)) {
        http_openai_error(resp, 503, "out_of_memory", NULL, "the server is out of memory");
        goto out;
    }
    if (!oai_vectors_reuse(c, req->key_id, &sp, r.texts, r.lens, &v, err, sizeof(err))) {
        api_db_failed(req, resp, err);
        goto out;
    }
    /* no connection is held while Google answers */
    db_pool_release(app->db, c);
    c = NULL;
    if (!embed_rest(app, req, resp, &sp, &r, &v))
        goto out;
    /* what Google embedded is kept for reuse (and for usage); the answer
     * stands whether or not that succeeds */
    if (v.sent) {
        c = db_pool_acquire(app->db, app->db_timeout_ms, err, sizeof(err));
        if (!c || !oai_vectors_record(c, req->key_id, &sp, r.texts, r.lens, &v, err, sizeof(err)))
            log_warn("request %s: embeddings not kept for reuse: %s", req->id, err);
        if (c)
            db_pool_release(app->db, c);
        c = NULL;
    }
    buf_reset(&resp->body);
    if (!render(&resp->body, &r, &v)) {
        http_openai_error(resp, 500, "internal_error", NULL, "the response could not be built");
        goto out;
    }
    resp->status = 200;
    resp->content_type = "application/json";
    char n[24];
    snprintf(n, sizeof(n), "%zu", v.reused);
    http_resp_header(resp, "X-Embedd-Reused", n);
    snprintf(n, sizeof(n), "%zu", v.sent);
    http_resp_header(resp, "X-Embedd-Sent", n);
    log_debug("request %s: %zu embeddings (%zu from storage, %zu sent to Google)", req->id, v.n,
              v.reused, v.sent);
out:
    if (c)
        db_pool_release(app->db, c);
    oai_vectors_free(&v);
    oai_emb_req_free(&r);
    json_object_put(root);
}
