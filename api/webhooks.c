/* webhooks.c: GET /v1/jobs/{id}/webhooks: a job's webhook deliveries, each with its attempts. */
#include "api.h"

#include "store/jobs.h"
#include "store/webhooks.h"
#include "util/jsonw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool put_ts(struct buf *b, const char *name, const char *ts)
{
    return buf_printf(b, ",\"%s\":", name) && jsonw_cstr(b, ts[0] ? ts : NULL);
}

static bool put_delivery(struct buf *b, const struct wh_listed *d)
{
    bool ok = buf_puts(b, "{\"id\":") && jsonw_cstr(b, d->msg_id) && buf_puts(b, ",\"type\":") &&
              jsonw_cstr(b, d->event_type) && buf_puts(b, ",\"url\":") && jsonw_cstr(b, d->url) &&
              buf_puts(b, ",\"state\":") && jsonw_cstr(b, d->state) &&
              put_ts(b, "created_at", d->created_at) &&
              put_ts(b, "next_attempt_at", d->next_attempt_at) &&
              put_ts(b, "finished_at", d->finished_at) && buf_puts(b, ",\"last_error\":") &&
              jsonw_cstr(b, d->last_error) &&
              /* the body as sent: JSON that embedd wrote itself */
              buf_puts(b, ",\"payload\":") && buf_puts(b, d->body) &&
              buf_puts(b, ",\"attempts\":[");
    for (size_t i = 0; ok && i < d->n_tries; i++) {
        const struct wh_listed_attempt *a = &d->tries[i];
        ok = (!i || buf_putc(b, ',')) && buf_printf(b, "{\"n\":%d", a->n) &&
             put_ts(b, "started_at", a->started_at) &&
             buf_printf(b, ",\"duration_ms\":%lld,\"status_code\":", (long long)a->duration_ms) &&
             (a->status ? buf_printf(b, "%d", a->status) : buf_puts(b, "null")) &&
             buf_puts(b, ",\"error\":") && jsonw_cstr(b, a->error) && buf_putc(b, '}');
    }
    return ok && buf_puts(b, "]}");
}

void api_jobs_webhooks(void *appv, struct http_req *req, struct http_resp *resp)
{
    struct app *app = appv;
    PGconn *c = api_db_or_503(app, req, resp);
    if (!c)
        return;
    const char *id = req->params[0];
    struct job_row *row = malloc(sizeof(*row));
    struct wh_listed *l = NULL;
    size_t n = 0;
    char err[512] = "out of memory";
    enum jobs_result r = row ? jobs_get(c, req->key_id, id, row, err, sizeof(err)) : JOBS_ERROR;
    if (r == JOBS_OK && !wh_list(c, req->key_id, row->id, &l, &n, err, sizeof(err)))
        r = JOBS_ERROR;
    db_pool_release(app->db, c);
    free(row);
    if (r == JOBS_NOT_FOUND) {
        http_problem(resp, req, 404, "job_not_found", NULL, "no job %.40s", id);
        return;
    }
    if (r != JOBS_OK) {
        api_db_failed(req, resp, err);
        return;
    }
    resp->status = 200;
    resp->content_type = "application/json";
    struct buf *b = &resp->body;
    bool ok = buf_puts(b, "{\"deliveries\":[");
    for (size_t i = 0; ok && i < n; i++)
        ok = (!i || buf_putc(b, ',')) && put_delivery(b, &l[i]);
    ok = ok && buf_puts(b, "]}");
    wh_listed_free(l, n);
    if (!ok)
        http_problem(resp, req, 500, "internal", NULL, "the response could not be built");
}
