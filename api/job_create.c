/*
 * job_create.c: what the JSON and NDJSON forms of POST /v1/jobs share around
 * the ingest: a job into a collection (its space, its deletes), and the
 * Idempotency-Key (the body's hash, and the commit that records it or the
 * answer that replays the first request's).
 */
#include "api.h"

#include "jsonv.h"
#include "log.h"
#include "store/collections.h"
#include "store/idempotency.h"
#include "store/jobs_ingest.h"
#include "store/webhooks.h"
#include "webhook/url.h"

#include <stdio.h>
#include <string.h>

/* Append "name: the job's x, the collection's y; " for a setting that differs. */
static void differs(char *out, size_t n, const char *name, const char *job, const char *coll)
{
    size_t l = strlen(out);
    snprintf(out + l, n - l, "%s%s (job: %s, collection: %s)", l ? "; " : "", name, job, coll);
}

bool api_job_apply_space(const struct job_request *r, const struct coll_row *c, struct job_spec *s,
                         struct job_req_error *e)
{
    char d[300] = "", a[32], b[32];
    const char *first = NULL;
    if ((r->given & JOB_GIVEN_MODEL) && strcmp(r->model, c->model) != 0) {
        differs(d, sizeof(d), "model", r->model, c->model);
        first = first ? first : "/model";
    }
    if ((r->given & JOB_GIVEN_DIMS) && r->output_dimensionality != c->output_dimensionality) {
        snprintf(a, sizeof(a), "%d", r->output_dimensionality);
        snprintf(b, sizeof(b), "%d", c->output_dimensionality);
        differs(d, sizeof(d), "output_dimensionality", a, b);
        first = first ? first : "/output_dimensionality";
    }
    if ((r->given & JOB_GIVEN_TASK) && strcmp(r->task_type, c->task_type) != 0) {
        differs(d, sizeof(d), "task_type", r->task_type, c->task_type);
        first = first ? first : "/task_type";
    }
    if ((r->given & JOB_GIVEN_NORMALIZE) && r->normalize != c->normalize) {
        differs(d, sizeof(d), "normalize", r->normalize ? "true" : "false",
                c->normalize ? "true" : "false");
        first = first ? first : "/normalize";
    }
    if ((r->given & JOB_GIVEN_MAX_CHARS) && r->max_chars != c->max_chars) {
        snprintf(a, sizeof(a), "%d", r->max_chars);
        snprintf(b, sizeof(b), "%d", c->max_chars);
        differs(d, sizeof(d), "chunking.max_chars", a, b);
        first = first ? first : "/chunking/max_chars";
    }
    if ((r->given & JOB_GIVEN_OVERLAP) && r->overlap_chars != c->overlap_chars) {
        snprintf(a, sizeof(a), "%d", r->overlap_chars);
        snprintf(b, sizeof(b), "%d", c->overlap_chars);
        differs(d, sizeof(d), "chunking.overlap_chars", a, b);
        first = first ? first : "/chunking/overlap_chars";
    }
    if (first)
        return jsonv_fail(
            e, 409, "space_mismatch", first,
            "the job's settings differ from its collection's embedding space: %s; leave "
            "them out (a collection's space never changes: a new space is a new "
            "collection)",
            d);
    s->model = c->model;
    s->output_dimensionality = c->output_dimensionality;
    s->task_type = c->task_type;
    s->normalize = c->normalize;
    s->max_chars = c->max_chars;
    s->overlap_chars = c->overlap_chars;
    return true;
}

struct job_limits api_job_limits(const struct config *cfg)
{
    return (struct job_limits){(size_t)cfg->job_max_documents, (size_t)cfg->job_max_deletes};
}

/* The job's webhook: its URL's address against the settings, and a secret
 * to sign with. false with e filled (status 0: a database failure). */
static bool check_webhook(const struct config *cfg, PGconn *c, int64_t key_id,
                          const struct job_request *r, struct job_req_error *e)
{
    if (!r->webhook_url)
        return true;
    struct wh_target t;
    char why[300], url[8], err[512];
    enum wh_url_verdict v =
        wh_url_parse(r->webhook_url, cfg->webhook_allow_private != 0, &t, why, sizeof(why));
    if (v != WH_URL_OK)
        return jsonv_fail(e, 422,
                          v == WH_URL_REFUSED ? "webhook_url_refused" : "invalid_webhook_url",
                          "/webhook_url", "%s", why);
    bool has_secret = false;
    enum keys_result kr =
        keys_webhook_get(c, key_id, url, sizeof(url), &has_secret, err, sizeof(err));
    if (kr == KEYS_DB_ERROR)
        return jsonv_fail(e, 0, "", "", "%s", err);
    if (!has_secret)
        return jsonv_fail(e, 422, "webhook_secret_missing", "/webhook_url",
                          "this API key has no webhook signing secret yet; an operator makes one "
                          "with embedd keys rotate-webhook-secret %lld",
                          (long long)key_id);
    return true;
}

struct jobs_ingest *api_job_begin(const struct config *cfg, PGconn *c, int64_t key_id,
                                  const struct job_request *r, struct job_req_error *e)
{
    struct job_spec spec = api_job_spec(key_id, r);
    struct coll_row coll;
    char err[512];
    memset(e, 0, sizeof(*e));
    if (!check_webhook(cfg, c, key_id, r, e))
        return NULL;
    if (r->collection) {
        enum jobs_result cr = coll_get(c, key_id, r->collection, &coll, err, sizeof(err));
        if (cr == JOBS_NOT_FOUND) {
            jsonv_fail(e, 422, "collection_not_found", "/collection", "no collection %.40s",
                       r->collection);
            return NULL;
        }
        if (cr != JOBS_OK) {
            jsonv_fail(e, 0, "", "", "%s", err);
            return NULL;
        }
        if (!api_job_apply_space(r, &coll, &spec, e))
            return NULL;
        spec.collection_id = coll.id;
    }
    struct jobs_ingest *in = jobs_ingest_begin(c, &spec, err, sizeof(err));
    if (!in) {
        jsonv_fail(e, 0, "", "", "%s", err);
        return NULL;
    }
    jobs_ingest_limit_chunks(in, cfg->job_max_chunks);
    if (!jobs_ingest_webhook(in, r->webhook_url, (int)cfg->webhook_degraded_threshold,
                             (int)cfg->webhook_degraded_min_chunks, err, sizeof(err))) {
        jobs_ingest_abort(in);
        jsonv_fail(e, 0, "", "", "%s", err);
        return NULL;
    }
    size_t missing = 0;
    enum jobs_result dr =
        jobs_ingest_delete(in, r->deletes, r->n_deletes, &missing, err, sizeof(err));
    if (dr == JOBS_NOT_FOUND) {
        char p[48];
        snprintf(p, sizeof(p), "/delete/%zu", missing);
        jsonv_fail(e, 422, "document_not_found", p, "the collection has no document \"%.200s\"",
                   r->deletes[missing]);
    } else if (dr != JOBS_OK) {
        jsonv_fail(e, 0, "", "", "%s", err);
    }
    if (dr != JOBS_OK) {
        jobs_ingest_abort(in);
        return NULL;
    }
    return in;
}

bool api_job_add_error(enum jobs_result r, size_t index, const struct ingest_doc *d, size_t first,
                       const char *err, struct job_req_error *e)
{
    if (r == JOBS_CONFLICT)
        return job_request_err_duplicate(e, d->id, d->id_len, index, first);
    if (r == JOBS_IN_USE) {
        char p[64];
        snprintf(p, sizeof(p), "/documents/%zu/id", index);
        return jsonv_fail(
            e, 422, "deleted_and_upserted", p,
            "document id \"%.*s\" is also in /delete: a job either upserts or deletes "
            "a document",
            (int)(d->id_len > 60 ? 60 : d->id_len), d->id);
    }
    if (r == JOBS_LIMIT)
        return jsonv_fail(e, 422, "too_many_chunks", "/documents",
                          "%s, the most accepted per job (setting job-max-chunks)", err);
    return jsonv_fail(e, 0, "", "", "%s", err);
}

/* ---- Idempotency-Key ---- */

bool api_idem_begin(struct api_idem *im, struct http_req *req, struct http_resp *resp)
{
    memset(im, 0, sizeof(*im));
    const char *k = http_req_header(req, "Idempotency-Key");
    if (!k)
        return true;
    if (!idem_key_valid(k)) {
        http_problem(resp, req, 400, "invalid_idempotency_key", NULL,
                     "Idempotency-Key must be 1 to %d printable ASCII characters", IDEM_KEY_MAX);
        return false;
    }
    if (!sha256_begin(&im->sha)) {
        http_problem(resp, req, 503, "out_of_memory", NULL, "the server is out of memory");
        return false;
    }
    snprintf(im->key, sizeof(im->key), "%s", k);
    im->on = true;
    return true;
}

void api_idem_update(struct api_idem *im, const void *data, size_t len)
{
    if (im->on)
        sha256_update(&im->sha, data, len);
}

void api_idem_cleanup(struct api_idem *im)
{
    if (im->on)
        sha256_abort(&im->sha);
    im->on = false;
}

bool api_idem_take(struct api_idem *im, PGconn *c, struct http_req *req, struct http_resp *resp,
                   const char *path, bool *replay_done)
{
    *replay_done = false;
    if (!im->on)
        return true;
    unsigned char sha[SHA256_LEN];
    bool hashed = sha256_end(&im->sha, sha);
    im->on = false;
    if (!hashed) {
        http_problem(resp, req, 503, "out_of_memory", NULL, "the server is out of memory");
        return false;
    }
    memcpy(im->body_sha, sha, SHA256_LEN);
    char err[512];
    struct idem_prior prior;
    enum idem_result r =
        idem_claim(c, req->key_id, im->key, "POST", path, &prior, err, sizeof(err));
    if (r == IDEM_ERROR) {
        api_db_failed(req, resp, err);
        return false;
    }
    if (r == IDEM_BUSY) {
        http_resp_header(resp, "Retry-After", "1");
        http_problem(resp, req, 409, "idempotency_key_in_use", NULL,
                     "a request with this Idempotency-Key is still in progress; retry shortly "
                     "for its answer");
        return false;
    }
    if (r == IDEM_REPLAY) {
        *replay_done = true;
        if (strcmp(prior.path, path) != 0 || memcmp(prior.request_sha256, sha, SHA256_LEN) != 0) {
            http_problem(resp, req, 422, "idempotency_key_reused", NULL,
                         "this Idempotency-Key was used in the last 24 hours for another request "
                         "(%s with a different body); use a new key for a new request",
                         prior.path);
            return false;
        }
        snprintf(im->replay_id, sizeof(im->replay_id), "%s", prior.resource_id);
        im->replay_status = prior.status;
        return false;
    }
    im->claimed = true;
    return true;
}

bool api_idem_record(struct api_idem *im, PGconn *c, struct http_req *req, const char *path,
                     int status, const char *id, char *err, size_t errlen)
{
    (void)path;
    return !im->claimed ||
           idem_complete(c, req->key_id, im->key, im->body_sha, status, id, err, errlen);
}

void api_job_commit(struct app *app, PGconn *c, struct jobs_ingest *in, struct api_idem *im,
                    struct http_req *req, struct http_resp *resp, const char *how)
{
    char id[JOB_ID_LEN + 1], err[512];
    bool replayed = false;
    if (!api_idem_take(im, c, req, resp, "/v1/jobs", &replayed)) {
        jobs_ingest_abort(in);
        if (replayed && im->replay_id[0]) {
            struct job_row row;
            enum jobs_result r = jobs_get(c, req->key_id, im->replay_id, &row, err, sizeof(err));
            if (r != JOBS_OK) {
                /* the job of the first request was deleted since */
                http_problem(resp, req, 422, "idempotency_key_reused", NULL,
                             "the job this Idempotency-Key created is gone; use a new key");
                return;
            }
            log_info("request %s: Idempotency-Key replayed job %s", req->id, row.id);
            http_resp_header(resp, "Idempotent-Replayed", "true");
            api_job_created(req, resp, &row, "a replay", im->replay_status);
        }
        return;
    }
    /* a collection job's last documents are chunked now: its chunk limit may show */
    enum jobs_result sr = jobs_ingest_settle(in, err, sizeof(err));
    if (sr != JOBS_OK) {
        struct job_req_error e;
        jobs_ingest_abort(in);
        (void)api_job_add_error(sr, 0, NULL, 0, err, &e);
        if (e.status)
            http_problem(resp, req, e.status, e.code, e.pointer, "%s", e.detail);
        else
            api_db_failed(req, resp, e.detail);
        return;
    }
    struct job_row row;
    if (!api_idem_record(im, c, req, "/v1/jobs", 202, jobs_ingest_id(in), err, sizeof(err))) {
        jobs_ingest_abort(in);
        api_db_failed(req, resp, err);
        return;
    }
    /* the key's pending-chunk limit, checked last inside the transaction */
    struct ingest_limit lim = {.max = req->key_max_pending};
    jobs_ingest_limit(in, &lim);
    if (!jobs_ingest_finish(in, id, err, sizeof(err))) {
        if (lim.over)
            api_pending_refused(req, resp, &lim);
        else
            api_db_failed(req, resp, err);
        return;
    }
    if (jobs_get(c, req->key_id, id, &row, err, sizeof(err)) != JOBS_OK) {
        api_db_failed(req, resp, err);
        return;
    }
    (void)app;
    api_job_created(req, resp, &row, how, 202);
}
