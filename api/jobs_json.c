/*
 * jobs_json.c: POST /v1/jobs with a JSON body, streamed. The body is never
 * held: job_stream.h validates it as it arrives and hands over one document
 * at a time, with the verdict the whole body would get. Where the documents
 * go depends on where the options are:
 *
 * - options first (the usual order): when "documents" begins, the options
 *   read so far are valid, so the ingest begins with them and each document
 *   is chunked and COPYed as it arrives (store/jobs_ingest.h), as for NDJSON;
 * - options after (or around) the documents: the options are only known at
 *   the end, so the validated documents wait in an unlinked temporary file
 *   (doc_spool.h, in --spool-dir) and are replayed into the ingest then.
 *
 * The spool is written in both cases, because an option member may still
 * follow "documents" when the ingest has already begun; the ingest is then
 * dropped and the spool replayed with the final options. (Writing it costs
 * about 30 ms per 100 MB here, against about 2 s for the ingest.) Nothing is
 * committed before the end of a valid body: any error rolls the transaction
 * back, releases the connection at once, and the rest of the body is only
 * scanned for errors that take precedence (job_stream.h). The database
 * connection is held only while documents go into the ingest.
 */
#include "api.h"

#include "doc_spool.h"
#include "job_stream.h"
#include "log.h"
#include "store/jobs_ingest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

/* Bodies at least this large give their memory back to the system when they
 * end (malloc_trim: glibc keeps freed heap memory of its thread arenas). */
#define TRIM_AFTER_BYTES ((uint64_t)8 << 20)

struct json_job {
    struct app *app;
    int64_t key_id;
    char req_id[24];
    uint64_t bytes, max;
    bool too_large;
    struct job_stream js;
    struct doc_spool spool; /* fd -1: closed */
    bool spool_ok;          /* every document since documents() is in the spool */
    PGconn *c;              /* held while documents go into in */
    struct jobs_ingest *in; /* the direct ingest, or NULL */
    struct api_idem idem;
};

static void release_db(struct json_job *j)
{
    jobs_ingest_abort(j->in);
    j->in = NULL;
    if (j->c)
        db_pool_release(j->app->db, j->c);
    j->c = NULL;
}

static const char *spool_dir(const struct app *app)
{
    if (app->cfg->spool_dir[0])
        return app->cfg->spool_dir;
    const char *t = getenv("TMPDIR");
    return t && *t ? t : "/tmp";
}

static void on_documents(void *cls, const struct job_request *opts)
{
    struct json_job *j = cls;
    char err[512];
    jobs_ingest_abort(j->in);
    j->in = NULL;
    if (j->spool.fd >= 0) {
        j->spool_ok = doc_spool_clear(&j->spool);
    } else {
        j->spool_ok =
            doc_spool_open(&j->spool, spool_dir(j->app), (size_t)j->max, err, sizeof(err));
        if (!j->spool_ok)
            log_warn("request %s: %s", j->req_id, err);
    }
    if (!opts) { /* not valid so far: the documents wait for the options at the end */
        release_db(j);
        return;
    }
    /* Only a connection that is free now: waiting here would also stall the
     * other requests this server thread serves, maybe the very ones holding
     * the connections. Without one the documents wait in the spool. */
    if (!j->c && !(j->c = db_pool_acquire(j->app->db, 0, err, sizeof(err)))) {
        log_debug("request %s: %s; the documents are spooled", j->req_id, err);
        return;
    }
    struct job_req_error e;
    j->in = api_job_begin(j->app->cfg, j->c, j->key_id, opts, &e);
    if (!j->in) { /* tried again from the spool at the end, which answers the error */
        if (!e.status)
            log_warn("request %s: %s", j->req_id, e.detail);
        release_db(j);
    }
}

static enum job_stream_take on_document(void *cls, size_t index, const struct job_doc *d,
                                        size_t *dup_of)
{
    struct json_job *j = cls;
    (void)index;
    struct ingest_doc doc = {d->id,   d->id_len,  d->title, d->title_len, d->metadata_json,
                             d->text, d->text_len};
    if (j->spool_ok && !doc_spool_add(&j->spool, &doc)) {
        j->spool_ok = false;
        log_warn("request %s: could not write the spool file (errno %d)", j->req_id,
                 j->spool.err_no);
    }
    if (j->in) {
        char err[512];
        enum jobs_result r = jobs_ingest_add(j->in, &doc, dup_of, err, sizeof(err));
        if (r == JOBS_CONFLICT)
            return JOB_STREAM_DUPLICATE;
        if (r != JOBS_OK) { /* tried again from the spool at the end, which answers it */
            if (r != JOBS_IN_USE && r != JOBS_LIMIT)
                log_warn("request %s: %s", j->req_id, err);
            release_db(j);
        }
    }
    return j->in || j->spool_ok ? JOB_STREAM_TAKEN : JOB_STREAM_STOP;
}

static void on_discard(void *cls)
{
    struct json_job *j = cls;
    release_db(j);
    doc_spool_close(&j->spool);
    j->spool_ok = false;
}

static const struct job_stream_ops json_job_ops = {on_documents, on_document, on_discard};

static void *json_begin(void *appv, struct http_req *req, struct http_resp *resp)
{
    struct app *app = appv;
    uint64_t max = (uint64_t)app->cfg->max_body_bytes;
    const char *cl = http_req_header(req, "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > max) {
        http_problem(resp, req, 413, "body_too_large", NULL,
                     "the request body is larger than the limit of %llu bytes (setting "
                     "max-body-bytes)",
                     (unsigned long long)max);
        return NULL;
    }
    if (!api_pending_precheck(app, req, resp))
        return NULL;
    struct json_job *j = calloc(1, sizeof(*j));
    if (!j) {
        http_problem(resp, req, 503, "out_of_memory", NULL, "the server is out of memory");
        return NULL;
    }
    j->app = app;
    j->key_id = req->key_id;
    snprintf(j->req_id, sizeof(j->req_id), "%s", req->id);
    j->max = max;
    j->spool.fd = -1;
    if (!api_idem_begin(&j->idem, req, resp)) {
        free(j);
        return NULL;
    }
    struct job_limits lim = api_job_limits(app->cfg);
    job_stream_init(&j->js, (size_t)max, &lim, &json_job_ops, j);
    return j;
}

static bool json_data(void *state, struct http_req *req, const char *data, size_t len)
{
    struct json_job *j = state;
    (void)req;
    j->bytes += len;
    if (j->bytes > j->max) { /* 413 beats any other verdict, as for a body read whole */
        j->too_large = true;
        on_discard(j);
        return false;
    }
    api_idem_update(&j->idem, data, len);
    job_stream_feed(&j->js, data, len);
    return true;
}

static void json_free(void *state)
{
    struct json_job *j = state;
    release_db(j);
    doc_spool_close(&j->spool);
    api_idem_cleanup(&j->idem);
    job_stream_cleanup(&j->js);
    bool large = j->bytes >= TRIM_AFTER_BYTES;
    free(j);
#ifdef __GLIBC__
    if (large)
        malloc_trim(0);
#else
    (void)large;
#endif
}

/* Replay the spool into a new ingest with the final options; false with resp filled. */
static bool replay(struct json_job *j, struct http_req *req, struct http_resp *resp,
                   const struct job_request *opts)
{
    char err[512];
    bool no_docs = !j->js.have_docs; /* a job that only deletes */
    if (!no_docs && (!j->spool_ok || !doc_spool_rewind(&j->spool))) {
        log_warn("request %s: the spool file is not usable (errno %d)", req->id, j->spool.err_no);
        http_problem(resp, req, 503, "spool_unavailable", NULL,
                     "the documents could not be kept until the options after them were read;"
                     " retry later, or send the options before the documents");
        return false;
    }
    if (!j->c && !(j->c = api_db_or_503(j->app, req, resp)))
        return false;
    struct job_req_error e;
    j->in = api_job_begin(j->app->cfg, j->c, j->key_id, opts, &e);
    if (!j->in) {
        if (e.status)
            http_problem(resp, req, e.status, e.code, e.pointer[0] ? e.pointer : NULL, "%s",
                         e.detail);
        else
            api_db_failed(req, resp, e.detail);
        return false;
    }
    struct ingest_doc d;
    int got = 0;
    while (!no_docs && (got = doc_spool_next(&j->spool, &d)) > 0) {
        size_t first = 0, index = jobs_ingest_documents(j->in);
        enum jobs_result r = jobs_ingest_add(j->in, &d, &first, err, sizeof(err));
        if (r != JOBS_OK) {
            (void)api_job_add_error(r, index, &d, first, err, &e);
            if (e.status)
                http_problem(resp, req, e.status, e.code, e.pointer, "%s", e.detail);
            else
                api_db_failed(req, resp, e.detail);
            return false;
        }
    }
    if (got < 0) {
        log_warn("request %s: could not read the spool file (errno %d)", req->id, j->spool.err_no);
        http_problem(resp, req, 503, "spool_unavailable", NULL,
                     "the documents could not be read back; retry later");
        return false;
    }
    return true;
}

/* A valid body: commit its job and answer 202 (or the failure). */
static void store(struct json_job *j, struct http_req *req, struct http_resp *resp,
                  const struct job_request *opts, bool options_after)
{
    if (options_after || !j->in) {
        jobs_ingest_abort(j->in);
        j->in = NULL;
        if (!replay(j, req, resp, opts))
            return;
    }
    doc_spool_close(&j->spool);
    struct jobs_ingest *in = j->in;
    j->in = NULL;
    api_job_commit(j->app, j->c, in, &j->idem, req, resp, "JSON");
    release_db(j);
}

static void json_end(void *state, struct http_req *req, struct http_resp *resp)
{
    struct json_job *j = state;
    struct job_request opts;
    struct job_req_error e;
    bool after = false;
    if (j->too_large) {
        http_problem(resp, req, 413, "body_too_large", NULL,
                     "the request body is larger than the limit of %llu bytes (setting "
                     "max-body-bytes)",
                     (unsigned long long)j->max);
    } else if (!job_stream_finish(&j->js, &opts, &after, &e)) {
        http_problem(resp, req, e.status, e.code, e.pointer[0] ? e.pointer : NULL, "%s", e.detail);
    } else {
        store(j, req, resp, &opts, after);
        job_request_free(&opts);
    }
    json_free(j);
}

const struct http_body_stream api_jobs_create_json = {
    .content_type = "application/json",
    .untyped = true,
    .begin = json_begin,
    .data = json_data,
    .end = json_end,
    .abort = json_free,
};
