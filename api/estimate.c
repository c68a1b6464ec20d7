/*
 * estimate.c: POST /v1/collections/{id}/estimate: what embedding a job's
 * documents into a collection would cost, before anything is spent. The body
 * is a job's JSON body (job_stream.h validates it as it arrives, with the
 * verdicts POST /v1/jobs gives); each document is chunked as the job would
 * chunk it, in the collection's space: its model's token limit less the
 * instruction that model's prompt puts in front of each chunk, its chunking
 * settings (chunker/budget.h, store/jobs_ingest.c). The answer: documents,
 * chunks, tokens, and dollars at the batch price with the interactive
 * equivalent. Nothing is stored and nothing is sent to Google; the database
 * is read once, for the collection.
 *
 * An upper bound for an existing collection: documents it already holds
 * unchanged, and vectors the key already has (reuse), are not subtracted.
 */
#include "api.h"

#include "chunker/budget.h"
#include "chunker/chunker.h"
#include "job_stream.h"
#include "jsonv.h"
#include "log.h"
#include "models.h"
#include "util/jsonw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct seen_id {
    uint64_t hash;      /* FNV-1a 64 of the id */
    size_t index_plus1; /* 0: empty slot */
};

struct estimate {
    struct app *app;
    uint64_t bytes, max;
    bool too_large, oom;
    struct job_stream js;
    struct coll_row coll;
    const struct model_facts *m;
    int64_t docs, chunks, tokens;
    struct seen_id *seen; /* open addressing, at most half full */
    size_t seen_cap, seen_n;
};

static uint64_t id_hash(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* Note document index's id; false when an earlier document had it (*first:
 * that one). Ids are compared by a 64-bit hash: a collision would call two
 * different ids the same, about once in 10^10 bodies of 10^5 documents. */
static bool note_id(struct estimate *x, const char *id, size_t len, size_t index, size_t *first)
{
    if (2 * (x->seen_n + 1) > x->seen_cap) {
        size_t cap = x->seen_cap ? 2 * x->seen_cap : 1024;
        struct seen_id *t = calloc(cap, sizeof(*t));
        if (!t) {
            x->oom = true;
            return true;
        }
        for (size_t i = 0; i < x->seen_cap; i++)
            if (x->seen[i].index_plus1) {
                size_t j = (size_t)x->seen[i].hash & (cap - 1);
                while (t[j].index_plus1)
                    j = (j + 1) & (cap - 1);
                t[j] = x->seen[i];
            }
        free(x->seen);
        x->seen = t;
        x->seen_cap = cap;
    }
    uint64_t h = id_hash(id, len);
    size_t j = (size_t)h & (x->seen_cap - 1);
    for (; x->seen[j].index_plus1; j = (j + 1) & (x->seen_cap - 1))
        if (x->seen[j].hash == h) {
            *first = x->seen[j].index_plus1 - 1;
            return false;
        }
    x->seen[j] = (struct seen_id){h, index + 1};
    x->seen_n++;
    return true;
}

static void reset(struct estimate *x)
{
    x->docs = x->chunks = x->tokens = 0;
    if (x->seen)
        memset(x->seen, 0, x->seen_cap * sizeof(*x->seen));
    x->seen_n = 0;
}

static void on_documents(void *cls, const struct job_request *opts)
{
    (void)opts; /* checked against the collection's space at the end */
    reset(cls);
}

static enum job_stream_take on_document(void *cls, size_t index, const struct job_doc *d,
                                        size_t *dup_of)
{
    struct estimate *x = cls;
    if (!note_id(x, d->id, d->id_len, index, dup_of))
        return JOB_STREAM_DUPLICATE;
    struct chunk_budget bud;
    struct chunk_opts o = {(size_t)x->coll.max_chars, (size_t)x->coll.overlap_chars, 0};
    struct chunk *ch = NULL;
    size_t n = 0;
    if (x->oom || !chunk_budget_of(x->m, x->coll.task_type, d->title, d->title_len, &bud)) {
        x->oom = true;
        return JOB_STREAM_STOP;
    }
    o.max_tokens = bud.max_tokens;
    if (!chunker_split(d->text, d->text_len, &o, &ch, &n)) {
        x->oom = true;
        return JOB_STREAM_STOP;
    }
    for (size_t i = 0; i < n; i++)
        x->tokens += ch[i].tokens + bud.prompt_tokens;
    free(ch);
    x->docs++;
    x->chunks += (int64_t)n;
    return JOB_STREAM_TAKEN;
}

static void on_discard(void *cls)
{
    reset(cls);
}

static const struct job_stream_ops estimate_ops = {on_documents, on_document, on_discard};

static void *est_begin(void *appv, struct http_req *req, struct http_resp *resp)
{
    struct app *app = appv;
    uint64_t max = (uint64_t)app->cfg->max_stream_bytes;
    const char *cl = http_req_header(req, "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > max) {
        http_problem(resp, req, 413, "body_too_large", NULL,
                     "the request body is larger than the limit of %llu bytes",
                     (unsigned long long)max);
        return NULL;
    }
    struct estimate *x = calloc(1, sizeof(*x));
    if (!x) {
        http_problem(resp, req, 503, "out_of_memory", NULL, "the server is out of memory");
        return NULL;
    }
    PGconn *c = api_db_or_503(app, req, resp);
    if (!c) {
        free(x);
        return NULL;
    }
    char err[512];
    enum jobs_result r = coll_get(c, req->key_id, req->params[0], &x->coll, err, sizeof(err));
    db_pool_release(app->db, c);
    if (r != JOBS_OK) {
        if (r == JOBS_NOT_FOUND)
            http_problem(resp, req, 404, "collection_not_found", NULL, "no collection %.40s",
                         req->params[0]);
        else
            api_db_failed(req, resp, err);
        free(x);
        return NULL;
    }
    x->m = models_find(x->coll.model);
    if (!x->m) { /* a collection of a model this build does not know */
        http_problem(resp, req, 422, "unknown_model", NULL,
                     "the collection's model \"%.60s\" is not in this server's model table",
                     x->coll.model);
        free(x);
        return NULL;
    }
    x->app = app;
    x->max = max;
    /* one document at most max-body-bytes, as for a job */
    struct job_limits lim = api_job_limits(app->cfg);
    job_stream_init(&x->js, (size_t)app->cfg->max_body_bytes, &lim, &estimate_ops, x);
    return x;
}

static bool est_data(void *state, struct http_req *req, const char *data, size_t len)
{
    struct estimate *x = state;
    (void)req;
    x->bytes += len;
    if (x->bytes > x->max) {
        x->too_large = true;
        return false;
    }
    job_stream_feed(&x->js, data, len);
    return true;
}

static void est_free(void *state)
{
    struct estimate *x = state;
    job_stream_cleanup(&x->js);
    free(x->seen);
    free(x);
}

static bool put_estimate(struct buf *b, const struct estimate *x)
{
    struct api_tokens t = {x->tokens, 0, 0, x->tokens};
    return buf_puts(b, "{\"collection\":") && jsonw_cstr(b, x->coll.id) &&
           buf_puts(b, ",\"model\":") && jsonw_cstr(b, x->coll.model) &&
           buf_printf(
               b, ",\"output_dimensionality\":%d,\"task_type\":", x->coll.output_dimensionality) &&
           jsonw_cstr(b, x->coll.task_type) &&
           buf_printf(b,
                      ",\"max_input_tokens\":%d,\"documents\":%lld,\"chunks\":%lld,"
                      "\"tokens\":%lld,",
                      x->m->max_input_tokens, (long long)x->docs, (long long)x->chunks,
                      (long long)x->tokens) &&
           api_put_cost(b, x->coll.model, &t) && buf_putc(b, '}');
}

static void est_end(void *state, struct http_req *req, struct http_resp *resp)
{
    struct estimate *x = state;
    struct job_request opts;
    struct job_req_error e;
    struct job_spec spec;
    bool after = false;
    if (x->too_large) {
        http_problem(resp, req, 413, "body_too_large", NULL,
                     "the request body is larger than the limit of %llu bytes",
                     (unsigned long long)x->max);
    } else if (!job_stream_finish(&x->js, &opts, &after, &e)) {
        http_problem(resp, req, e.status, e.code, e.pointer[0] ? e.pointer : NULL, "%s", e.detail);
    } else {
        memset(&spec, 0, sizeof(spec));
        if (x->oom) {
            http_problem(resp, req, 503, "out_of_memory", NULL, "the server is out of memory");
        } else if (opts.collection && strcmp(opts.collection, x->coll.id) != 0) {
            http_problem(resp, req, 422, "collection_mismatch", "/collection",
                         "/collection names another collection than the path's (%s)", x->coll.id);
        } else if (!api_job_apply_space(&opts, &x->coll, &spec, &e)) {
            http_problem(resp, req, e.status, e.code, e.pointer[0] ? e.pointer : NULL, "%s",
                         e.detail);
        } else {
            resp->status = 200;
            resp->content_type = "application/json";
            if (!put_estimate(&resp->body, x))
                http_problem(resp, req, 500, "internal", NULL, "the response could not be built");
            else
                log_info("request %s: estimate for collection %s: %lld documents, %lld chunks, "
                         "%lld tokens",
                         req->id, x->coll.id, (long long)x->docs, (long long)x->chunks,
                         (long long)x->tokens);
        }
        job_request_free(&opts);
    }
    est_free(x);
}

const struct http_body_stream api_collection_estimate_json = {
    .content_type = "application/json",
    .untyped = true,
    .begin = est_begin,
    .data = est_data,
    .end = est_end,
    .abort = est_free,
};

void api_collection_estimate(void *app, struct http_req *req, struct http_resp *resp)
{
    (void)app;
    http_problem(resp, req, 415, "unsupported_media_type", NULL,
                 "the body must be application/json: a job's body, {\"documents\": [...]}");
}
