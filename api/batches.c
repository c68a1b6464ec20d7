/*
 * batches.c: GET /v1/jobs/{id}/batches: the Google batches that carried a
 * job's chunks (state, transport, chunks, bytes, polls, times), oldest first,
 * paged by an opaque cursor.
 */
#include "api.h"

#include "store/batches.h"
#include "util/jsonw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCHES_DEFAULT 100
#define BATCHES_MAX     1000

static bool put_str(struct buf *b, const char *name, const char *v)
{
    return buf_printf(b, ",\"%s\":", name) && jsonw_cstr(b, v[0] ? v : NULL);
}

static bool put_batch(struct buf *b, const struct batch_row *r)
{
    return buf_printf(b, "{\"id\":\"%lld\",\"state\":", (long long)r->id) &&
           jsonw_cstr(b, r->state) && put_str(b, "transport", r->transport) &&
           put_str(b, "gemini_name", r->gemini_name) &&
           put_str(b, "gemini_state", r->gemini_state) &&
           buf_printf(b,
                      ",\"chunks\":%lld,\"request_bytes\":%lld,\"response_bytes\":%lld,"
                      "\"polls\":%lld",
                      (long long)r->chunks, (long long)r->request_bytes,
                      (long long)r->response_bytes, (long long)r->polls) &&
           put_str(b, "created_at", r->created_at) && put_str(b, "submitted_at", r->submitted_at) &&
           put_str(b, "finished_at", r->finished_at) && put_str(b, "error", r->error) &&
           buf_putc(b, '}');
}

void api_jobs_batches(void *appv, struct http_req *req, struct http_resp *resp)
{
    struct app *app = appv;
    int limit;
    if (!api_query_limit(req, resp, BATCHES_DEFAULT, BATCHES_MAX, &limit))
        return;
    const char *cur = http_req_query(req, "cursor");
    long long after = 0;
    if (cur) {
        char *end;
        after = strtoll(cur, &end, 10);
        if (*cur < '1' || *cur > '9' || *end || after <= 0) {
            http_problem(resp, req, 400, "invalid_parameter", NULL, "cursor is not valid");
            return;
        }
    }
    PGconn *c = api_db_or_503(app, req, resp);
    if (!c)
        return;
    struct batch_row *rows = calloc((size_t)limit, sizeof(*rows));
    size_t n = 0;
    bool more = false;
    char err[512] = "out of memory";
    enum jobs_result r = rows ? batches_list(c, req->key_id, req->params[0], after, rows,
                                             (size_t)limit, &n, &more, err, sizeof(err))
                              : JOBS_ERROR;
    db_pool_release(app->db, c);
    if (r == JOBS_NOT_FOUND) {
        http_problem(resp, req, 404, "job_not_found", NULL, "no job %.40s", req->params[0]);
    } else if (r != JOBS_OK) {
        api_db_failed(req, resp, err);
    } else {
        resp->status = 200;
        resp->content_type = "application/json";
        bool ok = buf_puts(&resp->body, "{\"batches\":[");
        for (size_t i = 0; i < n && ok; i++)
            ok = (!i || buf_putc(&resp->body, ',')) && put_batch(&resp->body, &rows[i]);
        if (ok && more)
            ok = buf_printf(&resp->body, "],\"next_cursor\":\"%lld\"}", (long long)rows[n - 1].id);
        else if (ok)
            ok = buf_puts(&resp->body, "],\"next_cursor\":null}");
        if (!ok)
            http_problem(resp, req, 500, "internal", NULL, "the response could not be built");
    }
    free(rows);
}
