/*
 * collections.c: the /v1/collections handlers: create (201 + Location),
 * list, get, delete (cancels its jobs), and its documents (list, get,
 * delete). Documents arrive through jobs with "collection" (api/jobs.c).
 */
#include "api.h"

#include "jsonv.h"
#include "log.h"
#include "store/collections.h"
#include "search/search.h"
#include "store/db.h"
#include "util/jsonw.h"

#include <json-c/json.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COLL_MAX_BODY 16384
#define LIST_DEFAULT  20
#define LIST_MAX      100
#define DOCS_DEFAULT  100
#define DOCS_MAX      1000

bool api_query_limit(struct http_req *req, struct http_resp *resp, int dflt, int max, int *out)
{
    const char *lim = http_req_query(req, "limit");
    *out = dflt;
    if (!lim)
        return true;
    char *end;
    long v = strtol(lim, &end, 10);
    if (*lim == '\0' || *end || v < 1 || v > max) {
        http_problem(resp, req, 400, "invalid_parameter", NULL,
                     "limit must be an integer between 1 and %d", max);
        return false;
    }
    *out = (int)v;
    return true;
}

static bool put_coll(struct buf *b, const struct coll_row *c)
{
    struct api_tokens t = {c->tokens_batch, c->tokens_interactive, c->tokens_reused,
                           c->tokens_estimated};
    return buf_puts(b, "{\"id\":") && jsonw_cstr(b, c->id) && buf_puts(b, ",\"name\":") &&
           jsonw_cstr(b, c->name) && buf_puts(b, ",\"model\":") && jsonw_cstr(b, c->model) &&
           buf_printf(b,
                      ",\"output_dimensionality\":%d,\"task_type\":", c->output_dimensionality) &&
           jsonw_cstr(b, c->task_type) && buf_puts(b, ",\"query_task_type\":") &&
           jsonw_cstr(b, c->query_task_type) &&
           buf_printf(b,
                      ",\"normalize\":%s,\"chunking\":{\"max_chars\":%d,\"overlap_chars\":%d},"
                      "\"version\":%lld,\"documents\":{\"current\":%lld,\"updating\":%lld},"
                      "\"jobs\":{\"total\":%lld,\"active\":%lld},\"chunks_reused\":%lld,",
                      c->normalize ? "true" : "false", c->max_chars, c->overlap_chars,
                      (long long)c->version, (long long)c->documents,
                      (long long)c->documents_updating, (long long)c->jobs,
                      (long long)c->jobs_active, (long long)c->chunks_reused) &&
           api_put_cost(b, c->model, &t) && buf_puts(b, ",\"created_at\":") &&
           jsonw_cstr(b, c->created_at) && buf_putc(b, '}');
}

static void reply_coll(struct http_req *req, struct http_resp *resp, int status,
                       const struct coll_row *c)
{
    buf_reset(&resp->body);
    resp->status = status;
    resp->content_type = "application/json";
    if (!put_coll(&resp->body, c))
        http_problem(resp, req, 500, "internal", NULL, "the response could not be built");
}

static void problem_from(struct http_req *req, struct http_resp *resp,
                         const struct job_req_error *e)
{
    http_problem(resp, req, e->status, e->code, e->pointer[0] ? e->pointer : NULL, "%s", e->detail);
}

/* Parse and validate a POST /v1/collections body into s (borrowing from *root). */
static bool parse_create(const char *body, size_t len, json_object **root, struct coll_spec *s,
                         struct job_req_error *e)
{
    static const char *const keys[] = {
        "name",     "model", "output_dimensionality", "task_type", "query_task_type", "normalize",
        "chunking", NULL};
    if (!jsonv_parse(body, len, 16, root, e))
        return false;
    if (!jsonv_want(*root, json_type_object, "an object", "", e) ||
        !jsonv_only_known(*root, keys, "", e))
        return false;
    const char *name = NULL;
    size_t name_len = 0;
    if (!jsonv_string(*root, "name", "/name", 200, &name, &name_len, e))
        return false;
    if (!name || name_len == 0)
        return jsonv_fail(e, 422, "missing_field", "/name",
                          "/name is required: 1 to 200 bytes, unique among your collections");
    struct space sp;
    space_defaults(&sp);
    if (!space_parse(*root, &sp, true, e))
        return false;
    s->name = name;
    s->model = sp.model;
    s->output_dimensionality = sp.output_dimensionality;
    s->task_type = sp.task_type;
    s->query_task_type = sp.query_task_type;
    s->normalize = sp.normalize;
    s->max_chars = sp.max_chars;
    s->overlap_chars = sp.overlap_chars;
    return true;
}

/* Create the collection (or replay the Idempotency-Key's first answer) in
 * one transaction on c, and answer. */
static void create_in_tx(PGconn *c, const struct coll_spec *s, struct api_idem *im,
                         struct http_req *req, struct http_resp *resp)
{
    char id[JOB_ID_LEN + 1], err[512] = "";
    struct coll_row row;
    bool replayed = false;
    if (!db_exec(c, "BEGIN", err, sizeof(err))) {
        api_db_failed(req, resp, err);
        return;
    }
    if (!api_idem_take(im, c, req, resp, "/v1/collections", &replayed)) {
        if (replayed && im->replay_id[0]) {
            if (coll_get(c, req->key_id, im->replay_id, &row, err, sizeof(err)) == JOBS_OK) {
                char loc[64];
                snprintf(loc, sizeof(loc), "/v1/collections/%s", row.id);
                http_resp_header(resp, "Location", loc);
                http_resp_header(resp, "Idempotent-Replayed", "true");
                reply_coll(req, resp, im->replay_status, &row);
            } else {
                http_problem(resp, req, 422, "idempotency_key_reused", NULL,
                             "the collection this Idempotency-Key created is gone; use a new key");
            }
        }
        if (!db_exec(c, "ROLLBACK", err, sizeof(err)))
            log_warn("request %s: %s", req->id, err);
        return;
    }
    enum jobs_result r = coll_create(c, s, id, err, sizeof(err));
    if (r == JOBS_OK && !api_idem_record(im, c, req, "/v1/collections", 201, id, err, sizeof(err)))
        r = JOBS_ERROR;
    if (r == JOBS_OK)
        r = coll_get(c, req->key_id, id, &row, err, sizeof(err));
    if (r == JOBS_OK && !db_exec(c, "COMMIT", err, sizeof(err)))
        r = JOBS_ERROR;
    if (r != JOBS_OK) {
        char e2[256];
        if (!db_exec(c, "ROLLBACK", e2, sizeof(e2)))
            log_warn("request %s: %s", req->id, e2);
    }
    if (r == JOBS_CONFLICT) {
        http_problem(resp, req, 409, "name_taken", "/name",
                     "you already have a collection named \"%.200s\"", s->name);
    } else if (r != JOBS_OK) {
        api_db_failed(req, resp, err);
    } else {
        char loc[64];
        snprintf(loc, sizeof(loc), "/v1/collections/%s", id);
        http_resp_header(resp, "Location", loc);
        reply_coll(req, resp, 201, &row);
    }
}

void api_collections_create(void *appv, struct http_req *req, struct http_resp *resp)
{
    struct app *app = appv;
    const char *ct = http_req_header(req, "Content-Type");
    if (ct && !http_media_type_is(ct, "application/json")) {
        http_problem(resp, req, 415, "unsupported_media_type", NULL,
                     "the body must be application/json");
        return;
    }
    if (req->body.len > COLL_MAX_BODY) {
        http_problem(resp, req, 413, "body_too_large", NULL,
                     "a collection is described in at most %d bytes", COLL_MAX_BODY);
        return;
    }
    struct coll_spec s = {.key_id = req->key_id};
    struct job_req_error e;
    memset(&e, 0, sizeof(e));
    json_object *root = NULL;
    if (!parse_create(req->body.data ? req->body.data : "", req->body.len, &root, &s, &e)) {
        problem_from(req, resp, &e);
        json_object_put(root);
        return;
    }
    struct api_idem im;
    if (!api_idem_begin(&im, req, resp)) {
        json_object_put(root);
        return;
    }
    api_idem_update(&im, req->body.data ? req->body.data : "", req->body.len);
    PGconn *c = api_db_or_503(app, req, resp);
    if (!c) {
        api_idem_cleanup(&im);
        json_object_put(root);
        return;
    }
    create_in_tx(c, &s, &im, req, resp);
    api_idem_cleanup(&im);
    db_pool_release(app->db, c);
    json_object_put(root);
}

void api_collections_list(void *appv, struct http_req *req, struct http_resp *resp)
{
    struct app *app = appv;
    int limit;
    if (!api_query_limit(req, resp, LIST_DEFAULT, LIST_MAX, &limit))
        return;
    PGconn *c = api_db_or_503(app, req, resp);
    if (!c)
        return;
    struct coll_row *rows = calloc((size_t)limit, sizeof(*rows));
    size_t n = 0;
    char next[96], err[512] = "out of memory";
    enum jobs_result r = rows ? coll_list(c, req->key_id, http_req_query(req, "cursor"), limit,
                                          rows, &n, next, sizeof(next), err, sizeof(err))
                              : JOBS_ERROR;
    db_pool_release(app->db, c);
    if (r == JOBS_CONFLICT) {
        http_problem(resp, req, 400, "invalid_parameter", NULL, "cursor is not valid");
    } else if (r != JOBS_OK) {
        api_db_failed(req, resp, err);
    } else {
        resp->status = 200;
        resp->content_type = "application/json";
        bool ok = buf_puts(&resp->body, "{\"collections\":[");
        for (size_t i = 0; i < n && ok; i++)
            ok = (!i || buf_putc(&resp->body, ',')) && put_coll(&resp->body, &rows[i]);
        ok = ok && buf_puts(&resp->body, "],\"next_cursor\":") &&
             jsonw_cstr(&resp->body, next[0] ? next : NULL) && buf_putc(&resp->body, '}');
        if (!ok)
            http_problem(resp, req, 500, "internal", NULL, "the response could not be built");
    }
    free(rows);
}

static void not_found(struct http_req *req, struct http_resp *resp, const char *id)
{
    http_problem(resp, req, 404, "collection_not_found", NULL, "no collection %.40s", id);
}

void api_collections_get(void *appv, struct http_req *req, struct http_resp *resp)
{
    struct app *app = appv;
    PGconn *c = api_db_or_503(app, req, resp);
    if (!c)
        return;
    char err[512];
    struct coll_row row;
    enum jobs_result r = coll_get(c, req->key_id, req->params[0], &row, err, sizeof(err));
    db_pool_release(app->db, c);
    if (r == JOBS_NOT_FOUND)
        not_found(req, resp, req->params[0]);
    else if (r != JOBS_OK)
        api_db_failed(req, resp, err);
    else
        reply_coll(req, resp, 200, &row);
}

void api_collections_delete(void *appv, struct http_req *req, struct http_resp *resp)
{
    struct app *app = appv;
    PGconn *c = api_db_or_503(app, req, resp);
    if (!c)
        return;
    char err[512];
    enum jobs_result r = coll_delete(c, req->key_id, req->params[0], err, sizeof(err));
    db_pool_release(app->db, c);
    if (r == JOBS_NOT_FOUND) {
        not_found(req, resp, req->params[0]);
    } else if (r != JOBS_OK) {
        api_db_failed(req, resp, err);
    } else {
        search_forget(app->search, req->params[0]);
        resp->status = 204;
        resp->content_type = "application/json";
    }
}

static bool put_doc(struct buf *b, const struct coll_doc_row *d)
{
    return buf_puts(b, "{\"id\":") && jsonw_cstr(b, d->doc_id) &&
           buf_printf(b, ",\"version\":%d,\"state\":", d->version) && jsonw_cstr(b, d->state) &&
           buf_puts(b, ",\"job_id\":") && jsonw_cstr(b, d->job_id[0] ? d->job_id : NULL) &&
           buf_puts(b, ",\"next_job_id\":") &&
           jsonw_cstr(b, d->next_job_id[0] ? d->next_job_id : NULL) &&
           buf_printf(b, ",\"chunks\":%d,\"title\":", d->chunks) && jsonw_cstr(b, d->title) &&
           buf_puts(b, ",\"metadata\":") && buf_puts(b, d->metadata ? d->metadata : "null") &&
           buf_puts(b, ",\"error\":") && jsonw_cstr(b, d->error) &&
           buf_puts(b, ",\"updated_at\":") && jsonw_cstr(b, d->updated_at) && buf_putc(b, '}');
}

void api_collection_docs_list(void *appv, struct http_req *req, struct http_resp *resp)
{
    struct app *app = appv;
    int limit;
    if (!api_query_limit(req, resp, DOCS_DEFAULT, DOCS_MAX, &limit))
        return;
    const char *after = http_req_query(req, "cursor");
    PGconn *c = api_db_or_503(app, req, resp);
    if (!c)
        return;
    struct coll_doc_row *rows = calloc((size_t)limit, sizeof(*rows));
    size_t n = 0;
    bool more = false;
    char err[512] = "out of memory";
    enum jobs_result r = rows ? coll_docs_list(c, req->key_id, req->params[0], after, limit, rows,
                                               &n, &more, err, sizeof(err))
                              : JOBS_ERROR;
    db_pool_release(app->db, c);
    if (r == JOBS_NOT_FOUND) {
        not_found(req, resp, req->params[0]);
    } else if (r != JOBS_OK) {
        api_db_failed(req, resp, err);
    } else {
        resp->status = 200;
        resp->content_type = "application/json";
        bool ok = buf_puts(&resp->body, "{\"documents\":[");
        for (size_t i = 0; i < n && ok; i++)
            ok = (!i || buf_putc(&resp->body, ',')) && put_doc(&resp->body, &rows[i]);
        /* the cursor is the last document id: opaque to clients, exact for keyset paging */
        ok = ok && buf_puts(&resp->body, "],\"next_cursor\":") &&
             jsonw_cstr(&resp->body, more && n ? rows[n - 1].doc_id : NULL) &&
             buf_putc(&resp->body, '}');
        if (!ok)
            http_problem(resp, req, 500, "internal", NULL, "the response could not be built");
    }
    for (size_t i = 0; rows && i < n; i++)
        coll_doc_row_free(&rows[i]);
    free(rows);
}

void api_collection_doc_get(void *appv, struct http_req *req, struct http_resp *resp)
{
    struct app *app = appv;
    PGconn *c = api_db_or_503(app, req, resp);
    if (!c)
        return;
    char err[512];
    struct coll_doc_row d;
    memset(&d, 0, sizeof(d));
    enum jobs_result r =
        coll_doc_get(c, req->key_id, req->params[0], req->params[1], &d, err, sizeof(err));
    db_pool_release(app->db, c);
    if (r == JOBS_NOT_FOUND) {
        http_problem(resp, req, 404, "document_not_found", NULL,
                     "no document \"%.200s\" in collection %.40s", req->params[1], req->params[0]);
    } else if (r != JOBS_OK) {
        api_db_failed(req, resp, err);
    } else {
        resp->status = 200;
        resp->content_type = "application/json";
        if (!put_doc(&resp->body, &d))
            http_problem(resp, req, 500, "internal", NULL, "the response could not be built");
    }
    coll_doc_row_free(&d);
}

void api_collection_doc_delete(void *appv, struct http_req *req, struct http_resp *resp)
{
    struct app *app = appv;
    PGconn *c = api_db_or_503(app, req, resp);
    if (!c)
        return;
    char err[512];
    enum jobs_result r =
        coll_doc_delete(c, req->key_id, req->params[0], req->params[1], err, sizeof(err));
    db_pool_release(app->db, c);
    if (r == JOBS_NOT_FOUND) {
        http_problem(resp, req, 404, "document_not_found", NULL,
                     "no document \"%.200s\" in collection %.40s", req->params[1], req->params[0]);
    } else if (r != JOBS_OK) {
        api_db_failed(req, resp, err);
    } else {
        resp->status = 204;
        resp->content_type = "application/json";
    }
}
