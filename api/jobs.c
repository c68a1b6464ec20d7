/*
 * jobs.c: the /v1/jobs handlers: create from an NDJSON body (validated and
 * stored a line at a time, one transaction, 202; the JSON body is
 * jobs_json.c's), get, list, cancel and delete.
 */
#include "api.h"

#include "job_request.h"
#include "store/eta.h"
#include "store/jobs.h"
#include "store/jobs_ingest.h"
#include "log.h"
#include "util/jsonw.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LIST_DEFAULT 20
#define LIST_MAX     100

static bool put_ts(struct buf *b, const char *name, const char *ts)
{
    return buf_printf(b, ",\"%s\":", name) && (ts[0] ? jsonw_cstr(b, ts) : buf_puts(b, "null"));
}

/* "eta": when the job should finish (store/eta.h), or null. */
static bool put_eta(struct buf *b, const struct job_eta *e)
{
    if (!e || !e->known)
        return buf_puts(b, ",\"eta\":null");
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    time_t at = ts.tv_sec + (ts.tv_nsec >= 500000000L) + (time_t)e->seconds;
    struct tm tm;
    char when[32] = "";
    if (gmtime_r(&at, &tm))
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    bool ok = buf_printf(b, ",\"eta\":{\"seconds\":%lld,\"at\":", (long long)e->seconds) &&
              jsonw_cstr(b, when) && buf_puts(b, ",\"basis\":{\"source\":") &&
              jsonw_cstr(b, e->source) &&
              buf_printf(b, ",\"batches_observed\":%lld,\"batch_seconds\":%.1f,",
                         (long long)e->batches_observed, e->batch_seconds);
    if (ok && e->chunks_per_second >= 0)
        ok = buf_printf(b, "\"chunks_per_second\":%.3g,", e->chunks_per_second);
    else if (ok)
        ok = buf_puts(b, "\"chunks_per_second\":null,");
    return ok && buf_printf(b, "\"remaining_chunks\":%lld,\"open_batches\":%lld}}",
                            (long long)e->remaining_chunks, (long long)e->open_batches);
}

/* The ETA of a job read on c; unknown (null) when it cannot be read, which
 * is logged rather than failing the request. */
static void job_eta(PGconn *c, int64_t key_id, const struct job_row *j, struct job_eta *e)
{
    char err[512];
    if (!jobs_eta(c, key_id, j, e, err, sizeof(err))) {
        log_warn("job %s: no ETA: %s", j->id, err);
        memset(e, 0, sizeof(*e));
    }
}

/* The job representation up to its cost (the part that depends on the row
 * alone; see put_job). */
static bool put_job_head(struct buf *b, const struct job_row *j)
{
    int64_t done = j->chunks_succeeded + j->chunks_failed;
    double progress = j->chunks_total ? 100.0 * (double)done / (double)j->chunks_total : 0.0;
    bool ok = buf_puts(b, "{\"id\":") && jsonw_cstr(b, j->id) && buf_puts(b, ",\"state\":") &&
              jsonw_cstr(b, j->state) && buf_puts(b, ",\"display_name\":") &&
              jsonw_cstr(b, j->has_display_name ? j->display_name : NULL) &&
              buf_puts(b, ",\"settings\":{\"model\":") && jsonw_cstr(b, j->model) &&
              buf_puts(b, ",\"task_type\":") && jsonw_cstr(b, j->task_type) &&
              buf_printf(b,
                         ",\"output_dimensionality\":%d,\"normalize\":%s,\"priority\":%d,"
                         "\"chunking\":{\"max_chars\":%d,\"overlap_chars\":%d}}",
                         j->output_dimensionality, j->normalize ? "true" : "false", j->priority,
                         j->max_chars, j->overlap_chars) &&
              buf_printf(
                  b,
                  ",\"stats\":{\"documents\":%lld,\"chunks\":{\"total\":%lld,\"pending\":%lld,"
                  "\"in_flight\":%lld,\"succeeded\":%lld,\"failed\":%lld,\"reused\":%lld},"
                  "\"progress_percent\":%.1f,",
                  (long long)j->documents, (long long)j->chunks_total, (long long)j->chunks_pending,
                  (long long)j->chunks_in_flight, (long long)j->chunks_succeeded,
                  (long long)j->chunks_failed, (long long)j->chunks_reused, progress);
    if (ok && done)
        ok = buf_printf(b, "\"success_rate\":%.4f,", (double)j->chunks_succeeded / (double)done);
    else if (ok)
        ok = buf_puts(b, "\"success_rate\":null,");
    ok = ok && buf_puts(b, "\"batches\":{");
    for (int k = 0; k < 7 && ok; k++)
        ok = buf_printf(b, "%s\"%s\":%lld", k ? "," : "", jobs_batch_states[k],
                        (long long)j->batches[k]);
    struct api_tokens t = {j->tokens_batch, j->tokens_interactive, j->tokens_reused,
                           j->tokens_estimated};
    ok = ok &&
         buf_printf(b, "},\"google\":{\"batches_created\":%lld,\"texts_sent\":%lld},",
                    (long long)j->google_batches, (long long)j->texts_sent) &&
         buf_printf(b, "\"token_estimate\":%lld}", (long long)j->token_estimate) &&
         buf_puts(b, ",\"collection\":") &&
         jsonw_cstr(b, j->collection_id[0] ? j->collection_id : NULL) &&
         buf_puts(b, ",\"webhook_url\":") &&
         jsonw_cstr(b, j->webhook_url[0] ? j->webhook_url : NULL);
    /* what a collection job did with its documents */
    if (ok && j->collection_id[0])
        ok = buf_printf(b,
                        ",\"documents\":{\"new\":%lld,\"updated\":%lld,\"unchanged\":%lld,"
                        "\"metadata_only\":%lld,\"deleted\":%lld}",
                        (long long)j->documents_new, (long long)j->documents_updated,
                        (long long)j->documents_unchanged, (long long)j->documents_metadata,
                        (long long)j->documents_deleted);
    return ok && buf_putc(b, ',') && api_put_cost(b, j->model, &t);
}

/* The job representation after its ETA. */
static bool put_job_tail(struct buf *b, const struct job_row *j)
{
    return put_ts(b, "created_at", j->created_at) && put_ts(b, "started_at", j->started_at) &&
           put_ts(b, "finished_at", j->finished_at) &&
           put_ts(b, "last_activity_at", j->last_activity_at) && buf_putc(b, '}');
}

/*
 * The representations of recently read row versions (store/jobs.h: equal
 * versions of a job are equal rows), without their ETA, which moves with
 * the clock: a status poll of a job whose row has not moved copies about a
 * kilobyte instead of formatting some forty numbers (half of embedd's own
 * CPU time per GET /v1/jobs/{id}). Direct-mapped; a collision only costs a
 * miss. The strings are freed when replaced (at most RENDER_SLOTS live).
 */
struct rendered {
    char id[JOB_ID_LEN + 1];
    int64_t version;
    char *text; /* head, then tail */
    size_t head_len, len;
};

#define RENDER_SLOTS 256 /* a power of two */
static struct rendered render_cache[RENDER_SLOTS];
static pthread_mutex_t render_lock = PTHREAD_MUTEX_INITIALIZER;

static struct rendered *render_slot(const char *id)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = id; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return &render_cache[h & (RENDER_SLOTS - 1)];
}

/* The job representation shared by every endpoint; eta NULL: null. */
static bool put_job(struct buf *b, const struct job_row *j, const struct job_eta *eta)
{
    struct rendered *r = j->version ? render_slot(j->id) : NULL;
    if (r) {
        pthread_mutex_lock(&render_lock);
        bool hit = r->version == j->version && strcmp(r->id, j->id) == 0;
        bool ok = hit && buf_append(b, r->text, r->head_len) && put_eta(b, eta) &&
                  buf_append(b, r->text + r->head_len, r->len - r->head_len);
        pthread_mutex_unlock(&render_lock);
        if (hit)
            return ok;
    }
    size_t start = b->len;
    if (!put_job_head(b, j))
        return false;
    size_t head_end = b->len;
    if (!put_eta(b, eta))
        return false;
    size_t tail = b->len;
    if (!put_job_tail(b, j))
        return false;
    if (!r)
        return true;
    size_t head_len = head_end - start, len = head_len + (b->len - tail);
    char *text = malloc(len);
    if (!text)
        return true; /* only not remembered */
    memcpy(text, b->data + start, head_len);
    memcpy(text + head_len, b->data + tail, len - head_len);
    pthread_mutex_lock(&render_lock);
    char *old = r->text;
    memcpy(r->id, j->id, sizeof(r->id));
    r->version = j->version;
    r->text = text;
    r->head_len = head_len;
    r->len = len;
    pthread_mutex_unlock(&render_lock);
    free(old);
    return true;
}

bool api_put_job(struct buf *b, const struct job_row *j, const struct job_eta *eta)
{
    return put_job(b, j, eta);
}

static void reply_job(struct http_req *req, struct http_resp *resp, int status,
                      const struct job_row *j, const struct job_eta *eta)
{
    buf_reset(&resp->body);
    resp->status = status;
    resp->content_type = "application/json";
    if (!put_job(&resp->body, j, eta))
        http_problem(resp, req, 500, "internal", NULL, "the response could not be built");
}

void api_jobs_create(void *appv, struct http_req *req, struct http_resp *resp)
{
    (void)appv; /* JSON and NDJSON bodies go to their streams (routes.c) */
    http_problem(resp, req, 415, "unsupported_media_type", NULL,
                 "the body must be application/json or application/x-ndjson");
}

struct job_spec api_job_spec(int64_t key_id, const struct job_request *r)
{
    return (struct job_spec){
        key_id,       r->display_name, r->model,     r->task_type,     r->output_dimensionality,
        r->normalize, r->priority,     r->max_chars, r->overlap_chars, NULL};
}

void api_job_created(struct http_req *req, struct http_resp *resp, const struct job_row *row,
                     const char *how, int status)
{
    log_info("request %s: job %s created from %s: %lld documents, %lld chunks", req->id, row->id,
             how, (long long)row->documents, (long long)row->chunks_total);
    char loc[64];
    snprintf(loc, sizeof(loc), "/v1/jobs/%s", row->id);
    http_resp_header(resp, "Location", loc);
    reply_job(req, resp, status, row, NULL);
}

/* ---- POST /v1/jobs with an NDJSON body, streamed ---- */

/*
 * Line 1 holds the options, every following non-empty line one document.
 * Lines are cut out of the body as it arrives (a line may span any number of
 * pieces; only an incomplete line is copied, capped at max-body-bytes), each
 * document is validated, chunked and handed to the ingest at once, and the
 * whole job commits at the end: the body is never held, and a bad line
 * anywhere leaves nothing stored. After a failure the rest of the body is
 * read and dropped and the error is answered at the end.
 */
struct ndjson {
    struct app *app;
    struct buf line;   /* the incomplete line carried between pieces */
    size_t line_no;    /* lines seen so far (1-based numbers in errors) */
    uint64_t bytes;    /* body bytes so far */
    bool have_options; /* line 1 was read */
    struct job_request opts;
    PGconn *c;
    struct jobs_ingest *in;
    struct api_idem idem;
    /* the failure, once there is one */
    bool failed;
    int status; /* 0: database failure (err) */
    char code[40], pointer[96], detail[480], err[512];
};

static void nd_release(struct ndjson *nd)
{
    jobs_ingest_abort(nd->in);
    nd->in = NULL;
    if (nd->c)
        db_pool_release(nd->app->db, nd->c);
    nd->c = NULL;
}

/* Record the first failure and drop everything stored so far. */
static bool nd_fail(struct ndjson *nd, int status, const char *code, const char *pointer,
                    const char *fmt, ...) SVC_PRINTF(5, 6);

static bool nd_fail(struct ndjson *nd, int status, const char *code, const char *pointer,
                    const char *fmt, ...)
{
    va_list ap;
    nd->failed = true;
    nd->status = status;
    snprintf(nd->code, sizeof(nd->code), "%s", code);
    snprintf(nd->pointer, sizeof(nd->pointer), "%s", pointer ? pointer : "");
    va_start(ap, fmt);
    vsnprintf(nd->detail, sizeof(nd->detail), fmt, ap);
    va_end(ap);
    nd_release(nd);
    buf_cleanup(&nd->line);
    return false;
}

static bool nd_fail_req(struct ndjson *nd, const struct job_req_error *e)
{
    return nd_fail(nd, e->status, e->code, e->pointer[0] ? e->pointer : NULL, "%s (line %zu)",
                   e->detail, nd->line_no);
}

static bool nd_options(struct ndjson *nd, struct http_req *req, const char *p, size_t n)
{
    struct job_req_error e;
    struct job_limits lim = api_job_limits(nd->app->cfg);
    if (!job_request_parse_options(p, n, &lim, &nd->opts, &e))
        return nd_fail_req(nd, &e);
    nd->have_options = true;
    char err[512];
    nd->c = db_pool_acquire(nd->app->db, nd->app->db_timeout_ms, err, sizeof(err));
    if (!nd->c) {
        log_warn("request %s: %s", req->id, err);
        return nd_fail(nd, 503, "database_unavailable", NULL,
                       "the database is unreachable; retry later");
    }
    nd->in = api_job_begin(nd->app->cfg, nd->c, req->key_id, &nd->opts, &e);
    if (!nd->in)
        return e.status ? nd_fail(nd, e.status, e.code, e.pointer[0] ? e.pointer : NULL,
                                  "%s (line 1)", e.detail)
                        : nd_fail(nd, 0, "", NULL, "%s", e.detail);
    return true;
}

static bool nd_document(struct ndjson *nd, const char *p, size_t n)
{
    size_t i = jobs_ingest_documents(nd->in);
    size_t max = (size_t)nd->app->cfg->job_max_documents;
    if (i >= max)
        return nd_fail(nd, 422, "too_many_documents", "/documents",
                       "the body has more than %zu documents; at most %zu are accepted per job"
                       " (setting job-max-documents) (line %zu)",
                       max, max, nd->line_no);
    struct job_doc_line dl;
    struct job_req_error e;
    if (!job_request_parse_doc(p, n, i, &dl, &e))
        return nd_fail_req(nd, &e);
    const struct job_doc *d = &dl.doc;
    struct ingest_doc doc = {d->id,   d->id_len,  d->title, d->title_len, d->metadata_json,
                             d->text, d->text_len};
    size_t first = 0;
    char err[512];
    enum jobs_result r = jobs_ingest_add(nd->in, &doc, &first, err, sizeof(err));
    if (r != JOBS_OK) {
        (void)api_job_add_error(r, i, &doc, first, err, &e);
        if (e.status)
            nd_fail(nd, e.status, e.code, e.pointer, "%s (line %zu)", e.detail, nd->line_no);
        else
            nd_fail(nd, 0, "", NULL, "%s", e.detail);
    }
    job_doc_line_free(&dl);
    return r == JOBS_OK;
}

static bool nd_line(struct ndjson *nd, struct http_req *req, const char *p, size_t n)
{
    nd->line_no++;
    size_t k = 0;
    while (k < n && (p[k] == ' ' || p[k] == '\t' || p[k] == '\r'))
        k++;
    if (k == n) /* blank lines are allowed anywhere */
        return true;
    return nd->have_options ? nd_document(nd, p, n) : nd_options(nd, req, p, n);
}

static void *nd_begin(void *appv, struct http_req *req, struct http_resp *resp)
{
    struct app *app = appv;
    uint64_t max = (uint64_t)app->cfg->max_stream_bytes;
    const char *cl = http_req_header(req, "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > max) {
        http_problem(resp, req, 413, "body_too_large", NULL,
                     "the request body is larger than the limit of %llu bytes (setting "
                     "max-stream-bytes)",
                     (unsigned long long)max);
        return NULL;
    }
    if (!api_pending_precheck(app, req, resp))
        return NULL;
    struct ndjson *nd = calloc(1, sizeof(*nd));
    if (!nd) {
        http_problem(resp, req, 503, "out_of_memory", NULL, "the server is out of memory");
        return NULL;
    }
    nd->app = app;
    if (!api_idem_begin(&nd->idem, req, resp)) {
        free(nd);
        return NULL;
    }
    /* one line (one document) may be as large as a whole JSON body */
    buf_init(&nd->line, (size_t)app->cfg->max_body_bytes);
    return nd;
}

static bool nd_data(void *state, struct http_req *req, const char *data, size_t len)
{
    struct ndjson *nd = state;
    nd->bytes += len;
    api_idem_update(&nd->idem, data, len);
    if (nd->bytes > (uint64_t)nd->app->cfg->max_stream_bytes)
        return nd_fail(nd, 413, "body_too_large", NULL,
                       "the request body is larger than the limit of %lld bytes (setting "
                       "max-stream-bytes)",
                       (long long)nd->app->cfg->max_stream_bytes);
    while (len) {
        const char *nl = memchr(data, '\n', len);
        size_t n = nl ? (size_t)(nl - data) : len;
        if (!buf_append(&nd->line, data, n))
            return nd_fail(nd, 413, "line_too_large", NULL,
                           "line %zu is longer than the limit of %zu bytes (setting "
                           "max-body-bytes)",
                           nd->line_no + 1, nd->line.max);
        if (!nl)
            return true;
        bool ok = nd_line(nd, req, nd->line.data ? nd->line.data : "", nd->line.len);
        if (!ok)
            return false;
        buf_reset(&nd->line);
        data += n + 1;
        len -= n + 1;
    }
    return true;
}

static void nd_free(void *state)
{
    struct ndjson *nd = state;
    nd_release(nd);
    api_idem_cleanup(&nd->idem);
    if (nd->have_options)
        job_request_free(&nd->opts);
    buf_cleanup(&nd->line);
    free(nd);
}

static void nd_end(void *state, struct http_req *req, struct http_resp *resp)
{
    struct ndjson *nd = state;
    /* the last line may lack its newline */
    if (!nd->failed && nd->line.len)
        (void)nd_line(nd, req, nd->line.data, nd->line.len);
    if (!nd->failed && !nd->have_options)
        nd_fail(nd, 400, "invalid_json", NULL,
                "the body is empty; its first line must hold the job options");
    if (!nd->failed && jobs_ingest_documents(nd->in) == 0 && nd->opts.n_deletes == 0)
        nd_fail(nd, 422, "no_documents", "/documents",
                "/documents must not be empty: the body has no document line after the options");
    if (nd->failed && nd->status == 0) {
        api_db_failed(req, resp, nd->detail);
    } else if (nd->failed) {
        http_problem(resp, req, nd->status, nd->code, nd->pointer[0] ? nd->pointer : NULL, "%s",
                     nd->detail);
    } else {
        struct jobs_ingest *in = nd->in;
        nd->in = NULL;
        api_job_commit(nd->app, nd->c, in, &nd->idem, req, resp, "NDJSON");
    }
    nd_free(nd);
}

const struct http_body_stream api_jobs_create_ndjson = {
    .content_type = "application/x-ndjson",
    .begin = nd_begin,
    .data = nd_data,
    .end = nd_end,
    .abort = nd_free,
};

void api_jobs_get(void *appv, struct http_req *req, struct http_resp *resp)
{
    struct app *app = appv;
    PGconn *c = api_db_or_503(app, req, resp);
    if (!c)
        return;
    struct job_row row;
    char err[512];
    enum jobs_result r = jobs_get(c, req->key_id, req->params[0], &row, err, sizeof(err));
    struct job_eta eta;
    if (r == JOBS_OK)
        job_eta(c, req->key_id, &row, &eta);
    db_pool_release(app->db, c);
    if (r == JOBS_OK)
        reply_job(req, resp, 200, &row, &eta);
    else if (r == JOBS_NOT_FOUND)
        http_problem(resp, req, 404, "job_not_found", NULL, "no job %.40s", req->params[0]);
    else
        api_db_failed(req, resp, err);
}

static const char *const job_states[] = {
    "pending", "running", "succeeded", "completed_with_errors", "failed", "cancelled", NULL};

void api_jobs_list(void *appv, struct http_req *req, struct http_resp *resp)
{
    struct app *app = appv;
    const char *state = http_req_query(req, "state");
    const char *cursor = http_req_query(req, "cursor");
    const char *lim = http_req_query(req, "limit");
    int limit = LIST_DEFAULT;
    if (state) {
        bool ok = false;
        for (size_t i = 0; job_states[i] && !ok; i++)
            ok = strcmp(state, job_states[i]) == 0;
        if (!ok) {
            http_problem(resp, req, 400, "invalid_parameter", NULL,
                         "state must be one of pending, running, succeeded, "
                         "completed_with_errors, failed, cancelled");
            return;
        }
    }
    if (lim) {
        char *end;
        long v = strtol(lim, &end, 10);
        if (*lim == '\0' || *end || v < 1 || v > LIST_MAX) {
            http_problem(resp, req, 400, "invalid_parameter", NULL,
                         "limit must be an integer between 1 and %d", LIST_MAX);
            return;
        }
        limit = (int)v;
    }
    PGconn *c = api_db_or_503(app, req, resp);
    if (!c)
        return;
    struct job_row *rows = calloc((size_t)limit, sizeof(*rows));
    size_t n = 0;
    char next[96], err[512] = "out of memory";
    struct job_eta *etas = calloc((size_t)limit, sizeof(*etas));
    enum jobs_result r = rows && etas ? jobs_list(c, req->key_id, state, cursor, limit, rows, &n,
                                                  next, sizeof(next), err, sizeof(err))
                                      : JOBS_ERROR;
    for (size_t i = 0; r == JOBS_OK && i < n; i++)
        job_eta(c, req->key_id, &rows[i], &etas[i]);
    db_pool_release(app->db, c);
    if (r == JOBS_CONFLICT) {
        http_problem(resp, req, 400, "invalid_parameter", NULL, "cursor is not valid");
    } else if (r != JOBS_OK) {
        api_db_failed(req, resp, err);
    } else {
        resp->status = 200;
        resp->content_type = "application/json";
        bool ok = buf_puts(&resp->body, "{\"jobs\":[");
        for (size_t i = 0; i < n && ok; i++)
            ok = (!i || buf_putc(&resp->body, ',')) && put_job(&resp->body, &rows[i], &etas[i]);
        ok = ok && buf_puts(&resp->body, "],\"next_cursor\":") &&
             jsonw_cstr(&resp->body, next[0] ? next : NULL) && buf_putc(&resp->body, '}');
        if (!ok)
            http_problem(resp, req, 500, "internal", NULL, "the response could not be built");
    }
    free(rows);
    free(etas);
}

static void change(struct app *app, struct http_req *req, struct http_resp *resp, bool del)
{
    PGconn *c = api_db_or_503(app, req, resp);
    if (!c)
        return;
    char err[512];
    const char *id = req->params[0];
    enum jobs_result r = del ? jobs_delete(c, req->key_id, id, err, sizeof(err))
                             : jobs_cancel(c, req->key_id, id, err, sizeof(err));
    struct job_row row;
    if (r == JOBS_OK && !del && jobs_get(c, req->key_id, id, &row, err, sizeof(err)) != JOBS_OK)
        r = JOBS_ERROR;
    db_pool_release(app->db, c);
    switch (r) {
    case JOBS_OK:
        if (del) {
            resp->status = 204;
            resp->content_type = "application/json";
        } else {
            reply_job(req, resp, 202, &row, NULL); /* cancelled: no ETA */
        }
        break;
    case JOBS_NOT_FOUND:
        http_problem(resp, req, 404, "job_not_found", NULL, "no job %.40s", id);
        break;
    case JOBS_IN_USE:
        http_problem(resp, req, 409, "job_in_collection", NULL,
                     "the job holds the current version of documents of its collection; delete "
                     "those documents or the collection first");
        break;
    case JOBS_CONFLICT:
        if (del)
            http_problem(resp, req, 409, "job_active", NULL,
                         "the job is still pending or running; cancel it first");
        else
            http_problem(resp, req, 409, "job_finished", NULL, "the job has already finished");
        break;
    default:
        api_db_failed(req, resp, err);
    }
}

void api_jobs_cancel(void *app, struct http_req *req, struct http_resp *resp)
{
    change(app, req, resp, false);
}

void api_jobs_delete(void *app, struct http_req *req, struct http_resp *resp)
{
    change(app, req, resp, true);
}
