/*
 * results.c: GET /v1/jobs/{id}/results: chunks with their vectors, either
 * cursor-paged JSON (one page built at a time) or, with Accept:
 * application/x-ndjson, every result streamed as one JSON object per line.
 * Vectors are arrays of numbers, or with ?encoding=base64 one string of their
 * float32 little-endian bytes (a third of the size, no number formatting).
 */
#include "api.h"

#include "models.h"

#include "store/collections.h"
#include "store/jobs.h"
#include "log.h"
#include "store/results.h"
#include "util/jsonw.h"
#include "util/vecfmt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RESULTS_DEFAULT 100
#define RESULTS_MAX     1000
/* Rows per query while streaming. The rows are read one at a time as the
 * client takes them, so the query stays open until the client has read
 * about a page (~2.8 MB of NDJSON at 768-d); a small page keeps that short
 * (statement_timeout) at the cost of one more query per page. */
#define STREAM_PAGE 250
/* Rows formatted together: their vectors' numbers are written on the format
 * threads (--format-threads) and this one at once (util/vecfmt.h). */
#define FORMAT_BATCH 32

static const char *const chunk_states[] = {"pending", "in_flight", "succeeded", "failed"};

/* A result row into v: its vector noted for vecfmt_flush, or as base64. */
static bool put_row(struct vecfmt *v, const struct result_row *r, bool base64)
{
    struct buf *b = &v->text;
    bool ok = buf_puts(b, "{\"document_id\":") && jsonw_cstr(b, r->doc_id) &&
              buf_printf(b,
                         ",\"document_index\":%d,\"chunk_index\":%d,\"char_start\":%d,"
                         "\"char_end\":%d,\"text\":",
                         r->doc_index, r->chunk_index, r->char_start, r->char_end) &&
              jsonw_str(b, r->text, r->text_len) &&
              buf_printf(b, ",\"token_estimate\":%d,\"title\":", r->tokens) &&
              jsonw_cstr(b, r->title) && buf_puts(b, ",\"metadata\":") &&
              buf_puts(b, r->metadata ? r->metadata : "null") && buf_puts(b, ",\"state\":") &&
              jsonw_cstr(b, chunk_states[r->state & 3]) && buf_puts(b, ",\"embedding\":");
    if (ok && r->state == 2 && r->embedding)
        ok = base64 ? jsonw_f32le_base64(b, r->embedding, r->dims)
                    : vecfmt_vector(v, r->embedding, r->dims);
    else if (ok)
        ok = buf_puts(b, "null");
    return ok && buf_puts(b, ",\"error\":") && jsonw_cstr(b, r->state == 3 ? r->error : NULL) &&
           buf_putc(b, '}');
}

/* A collection's current vector (GET /v1/collections/{id}/vectors). */
static bool put_vector_row(struct vecfmt *v, const struct result_row *r, bool base64)
{
    struct buf *b = &v->text;
    bool ok = buf_puts(b, "{\"document_id\":") && jsonw_cstr(b, r->doc_id) &&
              buf_printf(b,
                         ",\"version\":%d,\"chunk_index\":%d,\"char_start\":%d,\"char_end\":%d,"
                         "\"text\":",
                         r->version, r->chunk_index, r->char_start, r->char_end) &&
              jsonw_str(b, r->text, r->text_len) &&
              buf_printf(b, ",\"token_estimate\":%d,\"title\":", r->tokens) &&
              jsonw_cstr(b, r->title) && buf_puts(b, ",\"metadata\":") &&
              buf_puts(b, r->metadata ? r->metadata : "null") && buf_puts(b, ",\"embedding\":");
    if (ok && r->embedding)
        ok = base64 ? jsonw_f32le_base64(b, r->embedding, r->dims)
                    : vecfmt_vector(v, r->embedding, r->dims);
    else if (ok)
        ok = buf_puts(b, "null");
    return ok && buf_putc(b, '}');
}

/* Copy what is left of b from *off into out (max bytes); returns the bytes copied. */
static size_t copy_out(const struct buf *b, size_t *off, char *out, size_t max)
{
    size_t k = b->len - *off < max ? b->len - *off : max;
    memcpy(out, b->data + *off, k);
    *off += k;
    return k;
}

/*
 * The rows of st appended to b as a JSON array's elements, FORMAT_BATCH rows
 * at a time (their vectors on the format threads too) as the server sends
 * them; *got is results_stream_next's last answer (< 0: err says why).
 * false when b could not take them. The page is built whole and the
 * connection released before a byte is sent: sending is paced by the
 * client, and a connection held for that could starve the pool.
 */
static bool put_page(struct app *app, struct result_stream *st, struct buf *b, bool base64,
                     bool collection, int *got, char *err, size_t errlen)
{
    struct vecfmt vf[2]; /* one filled here while the pool formats the other */
    struct result_row r;
    bool w = true;
    size_t i = 0;
    int fill = 0;
    vecfmt_init(&vf[0], b->max);
    vecfmt_init(&vf[1], b->max);
    while (w && (*got = results_stream_next(st, &r, err, errlen)) > 0) {
        struct vecfmt *v = &vf[fill];
        w = (!i || buf_putc(&v->text, ',')) &&
            (collection ? put_vector_row(v, &r, base64) : put_row(v, &r, base64));
        if (w && ++i % FORMAT_BATCH == 0) { /* the batch before out, this one to the pool */
            if (vf[!fill].started)
                w = vecfmt_finish(&vf[!fill], b);
            vecfmt_start(v, app->fmt);
            fill = !fill;
        }
    }
    if (w && vf[!fill].started)
        w = vecfmt_finish(&vf[!fill], b);
    w = w && vecfmt_flush(&vf[fill], app->fmt, b);
    vecfmt_cleanup(&vf[0]); /* finishes a batch still formatting */
    vecfmt_cleanup(&vf[1]);
    return w;
}

static bool parse_bounded(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || !*s || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

/*
 * The NDJSON export: rows are queried a page at a time (keyset on seq, no
 * transaction and no server-side cursor) as the client reads, received one
 * row at a time (results_stream) and formatted FORMAT_BATCH rows at a time
 * (their vectors on the format threads while the next batch is read), so
 * memory holds a few rows whatever the job's size, and PostgreSQL produces
 * rows while they are formatted. The pooled connection is held for the
 * response's lifetime and released in export_done, which the HTTP layer
 * calls on completion and on client abort, after reading off the rest of a
 * page so that the connection goes back idle.
 */
struct export
{
    struct app *app;
    PGconn *c;
    char job_id[JOB_ID_LEN + 1];
    char req_id[24];
    int64_t next; /* seq of the next page; -1 after the last one */
    struct result_stream st;
    bool open;           /* st has a page's rows to read */
    struct vecfmt vf[2]; /* rows being read into vf[fill]; the other formatting */
    int fill;
    struct buf row; /* the formatted rows being sent */
    size_t off;     /* bytes of row already sent */
    bool base64;    /* vectors as base64 strings */
    /* a collection's vectors instead of a job's results */
    bool collection;
    char coll_id[JOB_ID_LEN + 1];
    char next_doc[260];
    int next_chunk;
};

static long export_read(void *cls, char *out, size_t max)
{
    struct export *x = cls;
    char err[512];
    size_t n = 0;
    while (n < max) {
        if (x->off < x->row.len) {
            n += copy_out(&x->row, &x->off, out + n, max - n);
            continue;
        }
        struct vecfmt *flying = &x->vf[!x->fill];
        if (x->open || flying->started) {
            buf_reset(&x->row);
            x->off = 0;
            /* the batch formatted since the last refill goes out now */
            if (flying->started && !vecfmt_finish(flying, &x->row)) {
                log_error("request %s: result rows could not be formatted", x->req_id);
                return -1;
            }
            /* the next batch is read here and formatted while that one is sent */
            struct vecfmt *v = &x->vf[x->fill];
            int rows = 0;
            while (x->open && rows < FORMAT_BATCH) {
                struct result_row r;
                int got = results_stream_next(&x->st, &r, err, sizeof(err));
                if (got < 0) {
                    log_error("request %s: %s", x->req_id, err);
                    return -1; /* the client sees a chunked body cut short */
                }
                if (got == 0) {
                    x->open = false;
                    x->next = x->st.next_seq;
                    snprintf(x->next_doc, sizeof(x->next_doc), "%s", x->st.next_doc);
                    x->next_chunk = x->st.next_chunk;
                    break;
                }
                bool ok =
                    x->collection ? put_vector_row(v, &r, x->base64) : put_row(v, &r, x->base64);
                if (!ok || !buf_putc(&v->text, '\n')) {
                    log_error("request %s: a result row could not be formatted", x->req_id);
                    return -1;
                }
                rows++;
            }
            if (rows) {
                vecfmt_start(v, x->app->fmt);
                x->fill = !x->fill;
            }
            continue;
        }
        if (x->next < 0)
            break;
        bool begun = x->collection ? results_stream_begin_collection(&x->st, x->c, x->coll_id,
                                                                     x->next_doc, x->next_chunk,
                                                                     STREAM_PAGE, err, sizeof(err))
                                   : results_stream_begin(&x->st, x->c, x->job_id, x->next,
                                                          STREAM_PAGE, err, sizeof(err));
        if (!begun) {
            log_error("request %s: %s", x->req_id, err);
            return -1;
        }
        x->open = true;
    }
    return (long)n;
}

static void export_done(void *cls)
{
    struct export *x = cls;
    results_stream_end(&x->st);
    vecfmt_cleanup(&x->vf[0]); /* finishes a batch still formatting */
    vecfmt_cleanup(&x->vf[1]);
    buf_cleanup(&x->row);
    db_pool_release(x->app->db, x->c);
    free(x);
}

/* Whether the client asked for NDJSON. */
static bool wants_ndjson(const struct http_req *req)
{
    const char *a = http_req_header(req, "Accept");
    return a && strstr(a, "application/x-ndjson") != NULL;
}

/* Start x as the NDJSON response of req (its fields other than the buffers set). */
static void export_start(struct export *x, const struct http_req *req, struct http_resp *resp)
{
    snprintf(x->req_id, sizeof(x->req_id), "%s", req->id);
    buf_init(&x->row, SIZE_MAX / 4);
    vecfmt_init(&x->vf[0], SIZE_MAX / 4);
    vecfmt_init(&x->vf[1], SIZE_MAX / 4);
    http_resp_stream(resp, 200, "application/x-ndjson", export_read, export_done, x);
}

/* The "normalized" member: vectors of unit length, made so or as Google sends them. */
static const char *normalized(const char *model, int dims, bool normalize)
{
    return normalize || models_unit_length(models_find(model), dims) ? "true" : "false";
}

/* The page's rows after what resp->body holds (put_page), the stream ended and
 * c released; *w false when the body could not take them. false after
 * answering resp with the database's error. */
static bool page_rows(struct app *app, PGconn *c, struct result_stream *st, bool base64,
                      bool collection, bool *w, struct http_req *req, struct http_resp *resp)
{
    char err[512];
    int got = 0;
    *w = *w && put_page(app, st, &resp->body, base64, collection, &got, err, sizeof(err));
    results_stream_end(st);
    db_pool_release(app->db, c);
    if (got < 0) {
        buf_reset(&resp->body);
        api_db_failed(req, resp, err);
        return false;
    }
    return true;
}

void api_jobs_results(void *appv, struct http_req *req, struct http_resp *resp)
{
    struct app *app = appv;
    const char *cur = http_req_query(req, "cursor"), *lim = http_req_query(req, "limit");
    const char *enc = http_req_query(req, "encoding");
    long long from = 0, limit = RESULTS_DEFAULT;
    bool base64 = enc && strcmp(enc, "base64") == 0;
    if (enc && !base64 && strcmp(enc, "float") != 0) {
        http_problem(resp, req, 400, "invalid_parameter", NULL,
                     "encoding must be float (arrays of numbers, the default) or base64");
        return;
    }
    if (cur && !parse_bounded(cur, 0, INT32_MAX, &from)) {
        http_problem(resp, req, 400, "invalid_parameter", NULL, "cursor is not valid");
        return;
    }
    if (lim && !parse_bounded(lim, 1, RESULTS_MAX, &limit)) {
        http_problem(resp, req, 400, "invalid_parameter", NULL,
                     "limit must be an integer between 1 and %d", RESULTS_MAX);
        return;
    }
    char err[512];
    PGconn *c = api_db_or_503(app, req, resp);
    if (!c)
        return;
    struct job_row job;
    if (wants_ndjson(req)) { /* every result from the cursor on; limit does not apply */
        enum jobs_result jr = jobs_get(c, req->key_id, req->params[0], &job, err, sizeof(err));
        struct export *x = jr == JOBS_OK ? calloc(1, sizeof(*x)) : NULL;
        if (!x) {
            db_pool_release(app->db, c);
            if (jr == JOBS_NOT_FOUND)
                http_problem(resp, req, 404, "job_not_found", NULL, "no job %.40s", req->params[0]);
            else if (jr == JOBS_OK)
                http_problem(resp, req, 503, "out_of_memory", NULL, "the server is out of memory");
            else
                api_db_failed(req, resp, err);
            return;
        }
        x->app = app;
        x->c = c;
        x->next = from;
        x->base64 = base64;
        snprintf(x->job_id, sizeof(x->job_id), "%s", job.id);
        export_start(x, req, resp);
        return;
    }
    /* rows are formatted as they arrive, while the server sends the rest */
    struct result_stream st = {0};
    enum jobs_result jr = jobs_get(c, req->key_id, req->params[0], &job, err, sizeof(err));
    bool ok =
        jr == JOBS_OK && results_stream_begin(&st, c, job.id, from, (int)limit, err, sizeof(err));
    if (!ok) {
        db_pool_release(app->db, c);
        if (jr == JOBS_NOT_FOUND)
            http_problem(resp, req, 404, "job_not_found", NULL, "no job %.40s", req->params[0]);
        else
            api_db_failed(req, resp, err);
        return;
    }
    struct buf *b = &resp->body;
    bool w = buf_puts(b, "{\"job_id\":") && jsonw_cstr(b, job.id) && buf_puts(b, ",\"state\":") &&
             jsonw_cstr(b, job.state) && buf_puts(b, ",\"model\":") && jsonw_cstr(b, job.model) &&
             buf_printf(b, ",\"output_dimensionality\":%d,\"normalized\":%s,\"results\":[",
                        job.output_dimensionality,
                        normalized(job.model, job.output_dimensionality, job.normalize));
    if (!page_rows(app, c, &st, base64, false, &w, req, resp))
        return;
    if (w && st.next_seq >= 0)
        w = buf_printf(b, "],\"next_cursor\":\"%lld\"}", (long long)st.next_seq);
    else if (w)
        w = buf_puts(b, "],\"next_cursor\":null}");
    if (!w) {
        http_problem(resp, req, 500, "internal", NULL, "the response could not be built");
        return;
    }
    resp->status = 200;
    resp->content_type = "application/json";
}

/* A collection cursor: "<chunk index>.<hex of the document id>"; false if malformed. */
static bool parse_vector_cursor(const char *s, char *doc, size_t doclen, int *chunk)
{
    const char *dot = strchr(s, '.');
    long long ci;
    char num[16];
    if (!dot || (size_t)(dot - s) >= sizeof(num))
        return false;
    memcpy(num, s, (size_t)(dot - s));
    num[dot - s] = '\0';
    if (!parse_bounded(num, 0, INT32_MAX, &ci))
        return false;
    size_t n = strlen(dot + 1);
    if (n % 2 || n / 2 >= doclen || n == 0)
        return false;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v = 0;
        for (int k = 0; k < 2; k++) {
            char c = dot[1 + 2 * i + k];
            int h = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (h < 0)
                return false;
            v = v << 4 | (unsigned)h;
        }
        if (v == 0)
            return false;
        doc[i] = (char)v;
    }
    doc[n / 2] = '\0';
    *chunk = (int)ci;
    return true;
}

static bool put_vector_cursor(struct buf *b, const char *doc, int chunk)
{
    static const char hex[] = "0123456789abcdef";
    bool ok = buf_printf(b, "\"%d.", chunk);
    for (const unsigned char *p = (const unsigned char *)doc; ok && *p; p++)
        ok = buf_putc(b, hex[*p >> 4]) && buf_putc(b, hex[*p & 15]);
    return ok && buf_putc(b, '"');
}

void api_collection_vectors(void *appv, struct http_req *req, struct http_resp *resp)
{
    struct app *app = appv;
    const char *cur = http_req_query(req, "cursor"), *lim = http_req_query(req, "limit");
    const char *enc = http_req_query(req, "encoding");
    long long limit = RESULTS_DEFAULT;
    char from_doc[260] = "";
    int from_chunk = 0;
    bool base64 = enc && strcmp(enc, "base64") == 0;
    if (enc && !base64 && strcmp(enc, "float") != 0) {
        http_problem(resp, req, 400, "invalid_parameter", NULL,
                     "encoding must be float (arrays of numbers, the default) or base64");
        return;
    }
    if (cur && !parse_vector_cursor(cur, from_doc, sizeof(from_doc), &from_chunk)) {
        http_problem(resp, req, 400, "invalid_parameter", NULL, "cursor is not valid");
        return;
    }
    if (lim && !parse_bounded(lim, 1, RESULTS_MAX, &limit)) {
        http_problem(resp, req, 400, "invalid_parameter", NULL,
                     "limit must be an integer between 1 and %d", RESULTS_MAX);
        return;
    }
    char err[512];
    PGconn *c = api_db_or_503(app, req, resp);
    if (!c)
        return;
    struct coll_row coll;
    enum jobs_result jr = coll_get(c, req->key_id, req->params[0], &coll, err, sizeof(err));
    if (jr != JOBS_OK) {
        db_pool_release(app->db, c);
        if (jr == JOBS_NOT_FOUND)
            http_problem(resp, req, 404, "collection_not_found", NULL, "no collection %.40s",
                         req->params[0]);
        else
            api_db_failed(req, resp, err);
        return;
    }
    if (wants_ndjson(req)) { /* every vector from the cursor on; limit does not apply */
        struct export *x = calloc(1, sizeof(*x));
        if (!x) {
            db_pool_release(app->db, c);
            http_problem(resp, req, 503, "out_of_memory", NULL, "the server is out of memory");
            return;
        }
        x->app = app;
        x->c = c;
        x->next = 0;
        x->base64 = base64;
        x->collection = true;
        snprintf(x->coll_id, sizeof(x->coll_id), "%s", coll.id);
        snprintf(x->next_doc, sizeof(x->next_doc), "%s", from_doc);
        x->next_chunk = from_chunk;
        export_start(x, req, resp);
        return;
    }
    struct result_stream st = {0};
    if (!results_stream_begin_collection(&st, c, coll.id, from_doc, from_chunk, (int)limit, err,
                                         sizeof(err))) {
        db_pool_release(app->db, c);
        api_db_failed(req, resp, err);
        return;
    }
    struct buf *b = &resp->body;
    bool w = buf_puts(b, "{\"collection_id\":") && jsonw_cstr(b, coll.id) &&
             buf_printf(b, ",\"version\":%lld,\"model\":", (long long)coll.version) &&
             jsonw_cstr(b, coll.model) &&
             buf_printf(b, ",\"output_dimensionality\":%d,\"normalized\":%s,\"vectors\":[",
                        coll.output_dimensionality,
                        normalized(coll.model, coll.output_dimensionality, coll.normalize));
    if (!page_rows(app, c, &st, base64, true, &w, req, resp))
        return;
    w = w && buf_puts(b, "],\"next_cursor\":") &&
        (st.next_seq >= 0 ? put_vector_cursor(b, st.next_doc, st.next_chunk)
                          : buf_puts(b, "null")) &&
        buf_putc(b, '}');
    if (!w) {
        http_problem(resp, req, 500, "internal", NULL, "the response could not be built");
        return;
    }
    resp->status = 200;
    resp->content_type = "application/json";
}
