/*
 * api.h: embedd's REST surface: the route table handed to the HTTP server,
 * the bearer-key authentication callback, and the handlers. Handlers call
 * into service/ and shape JSON; they never touch libmicrohttpd.
 */
#ifndef API_API_H
#define API_API_H

#include "app.h"
#include "http.h"
#include "job_request.h"
#include "store/collections.h"
#include "store/idempotency.h"
#include "store/jobs.h"
#include "store/jobs_ingest.h"
#include "store/keys.h"
#include "util/crypto.h"
#include "util/buf.h"
#include "util/compiler.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

extern const struct http_route api_routes[];
extern const size_t api_routes_count;
/* The routes of the metrics listener (--metrics-listen): GET /metrics. */
extern const struct http_route api_metrics_routes[];
extern const size_t api_metrics_routes_count;

/* GET /metrics: Prometheus text (metrics.c). */
void api_metrics(void *app, struct http_req *req, struct http_resp *resp);
/* Name both route tables for the HTTP request metrics; once, before a server
 * starts. */
void api_metrics_init(void);
/* http_server_opts.observe: count a request by route and status, and its time. */
void api_metrics_observe(void *app, const struct http_route *rt, int status, double seconds);

/* Borrow a database connection; when none can be had, log why and answer
 * 503 database_unavailable with Retry-After, and return NULL. */
PGconn *api_db_or_503(struct app *app, struct http_req *req, struct http_resp *resp);
/* A query failed: log err, answer 503 database_error with Retry-After. */
void api_db_failed(struct http_req *req, struct http_resp *resp, const char *err);

/* http_auth_fn: "Authorization: Bearer <key>" → req->key_id, else 401 (503
 * when the database cannot be reached). */
bool api_authenticate(void *app, struct http_req *req, struct http_resp *resp);

/* Per-key limits (limits.c). After authentication: the key's effective
 * limits (its own, else the settings'); sets req->key_max_pending; false with
 * a 429 rate_limited and Retry-After in resp when the key is over its
 * requests per second in this process. */
bool api_key_admit(struct app *app, struct http_req *req, struct http_resp *resp,
                   const struct key_limits *lim);
/* Before a job's body is read: false with a 429 too_many_pending_chunks when
 * the key already has req->key_max_pending chunks or more waiting (then no
 * job of it could be stored). Skipped when no connection is free at once. */
bool api_pending_precheck(struct app *app, struct http_req *req, struct http_resp *resp);
/* The 429 of a job that jobs_ingest_finish refused at the limit (lim->over). */
void api_pending_refused(struct http_req *req, struct http_resp *resp,
                         const struct ingest_limit *lim);

/* GET /healthz: liveness; never touches the database. */
void api_healthz(void *app, struct http_req *req, struct http_resp *resp);
/* GET /readyz: database reachable and migrations current. */
void api_readyz(void *app, struct http_req *req, struct http_resp *resp);

/* POST /v1/jobs with a body of any other media type: 415. */
void api_jobs_create(void *app, struct http_req *req, struct http_resp *resp);
/* POST /v1/jobs with Content-Type: application/json (or none): streamed,
 * validated and stored one document at a time (see jobs_json.c). */
extern const struct http_body_stream api_jobs_create_json;
/* POST /v1/jobs with Content-Type: application/x-ndjson: line 1 the options,
 * then one document per line; streamed (see jobs.c). */
extern const struct http_body_stream api_jobs_create_ndjson;
/* The spec of a new job of key key_id with the options of r (borrowed from r). */
struct job_spec api_job_spec(int64_t key_id, const struct job_request *r);
/* A job was created: log it and answer 202 with its representation and Location. */
void api_job_created(struct http_req *req, struct http_resp *resp, const struct job_row *row,
                     const char *how, int status);

/* Begin the ingest of a job with options r on c: a job into a collection
 * takes the collection's space for the settings r did not name (409
 * space_mismatch for those that differ) and checks its deletes (422
 * document_not_found); a webhook_url must pass the address settings (422
 * webhook_url_refused) and the key must have a webhook secret (422
 * webhook_secret_missing). NULL with e filled; e->status 0: a database
 * failure (e->detail: the log message). */
struct jobs_ingest *api_job_begin(const struct config *cfg, PGconn *c, int64_t key_id,
                                  const struct job_request *r, struct job_req_error *e);
/* The per-job limits of the settings (job-max-documents, job-max-deletes). */
struct job_limits api_job_limits(const struct config *cfg);
/* A job with options r into collection c: the settings r named must be the
 * collection's (a different model, dimension, task type, normalisation or
 * chunking is 409 space_mismatch in e, naming both values); the others are
 * taken from it into s. */
bool api_job_apply_space(const struct job_request *r, const struct coll_row *c, struct job_spec *s,
                         struct job_req_error *e);
/* The error of jobs_ingest_add's result r for document index (first: the
 * earlier document with its id): duplicate_id, deleted_and_upserted,
 * too_many_chunks, or a database failure (status 0, detail err). Returns
 * false. */
bool api_job_add_error(enum jobs_result r, size_t index, const struct ingest_doc *d, size_t first,
                       const char *err, struct job_req_error *e);

/* Idempotency-Key of a creating request: the header, and the body's SHA-256
 * as it arrives. */
struct api_idem {
    bool on, claimed;
    char key[IDEM_KEY_MAX + 1];
    struct sha256_ctx sha;
    unsigned char body_sha[SHA256_LEN];
    char replay_id[64]; /* a replay: what the first request created, and its status */
    int replay_status;
};
/* Read the header; false with a 400 in resp when it is malformed. */
bool api_idem_begin(struct api_idem *im, struct http_req *req, struct http_resp *resp);
void api_idem_update(struct api_idem *im, const void *data, size_t len);
void api_idem_cleanup(struct api_idem *im);
/* At the end of the body, in the transaction that creates the resource on
 * c: take the key. true: go on and create (then api_idem_record). false
 * with resp filled (409 in progress, 422 reused, 503), or with
 * *replay_done and im->replay_id set: answer with that resource. */
bool api_idem_take(struct api_idem *im, PGconn *c, struct http_req *req, struct http_resp *resp,
                   const char *path, bool *replay_done);
/* Record what was created (status, id) under the key, before the commit. */
bool api_idem_record(struct api_idem *im, PGconn *c, struct http_req *req, const char *path,
                     int status, const char *id, char *err, size_t errlen);
/* Commit a job's ingest (or replay the key's first job) and answer. */
void api_job_commit(struct app *app, PGconn *c, struct jobs_ingest *in, struct api_idem *im,
                    struct http_req *req, struct http_resp *resp, const char *how);
/* GET /v1/jobs, GET /v1/jobs/{id}, POST /v1/jobs/{id}/cancel, DELETE /v1/jobs/{id}. */
void api_jobs_list(void *app, struct http_req *req, struct http_resp *resp);
void api_jobs_get(void *app, struct http_req *req, struct http_resp *resp);
void api_jobs_cancel(void *app, struct http_req *req, struct http_resp *resp);
void api_jobs_delete(void *app, struct http_req *req, struct http_resp *resp);
/* The job representation of every endpoint (GET /v1/jobs/{id}, lists,
 * events), appended to b; eta NULL (or not known): "eta": null. */
struct job_eta;
bool api_put_job(struct buf *b, const struct job_row *j, const struct job_eta *eta) SVC_MUSTCHECK;
/* GET /v1/jobs/{id}/events: the job's progress as Server-Sent Events (events.c). */
void api_jobs_events(void *app, struct http_req *req, struct http_resp *resp);
/* GET /v1/jobs/{id}/batches: the job's Google batches, oldest first, paged. */
void api_jobs_batches(void *app, struct http_req *req, struct http_resp *resp);
/* GET /: the dashboard page; GET /ui/{file}: its script and style sheet (ui.c). */
void api_ui_index(void *app, struct http_req *req, struct http_resp *resp);
void api_ui_file(void *app, struct http_req *req, struct http_resp *resp);
/* GET /v1/jobs/{id}/results: paged JSON, or every result streamed as NDJSON
 * (Accept: application/x-ndjson). */
void api_jobs_results(void *app, struct http_req *req, struct http_resp *resp);

/* GET /v1/jobs/{id}/webhooks: the job's webhook deliveries with their attempts. */
void api_jobs_webhooks(void *app, struct http_req *req, struct http_resp *resp);

/* Token counts behind a cost report. */
struct api_tokens {
    int64_t batch, interactive, reused, estimated;
};
/* Append "cost":{...}: tokens (sent through batch, interactive, reused; how
 * many are estimates), USD paid, the same tokens at the interactive price,
 * saved by batch and by reuse, and the prices used (models.h). */
bool api_put_cost(struct buf *b, const char *model, const struct api_tokens *t) SVC_MUSTCHECK;

/* POST/GET /v1/collections, GET/DELETE /v1/collections/{id}, its documents
 * (GET list, GET/DELETE one). */
void api_collections_create(void *app, struct http_req *req, struct http_resp *resp);
void api_collections_list(void *app, struct http_req *req, struct http_resp *resp);
void api_collections_get(void *app, struct http_req *req, struct http_resp *resp);
void api_collections_delete(void *app, struct http_req *req, struct http_resp *resp);
void api_collection_docs_list(void *app, struct http_req *req, struct http_resp *resp);
void api_collection_doc_get(void *app, struct http_req *req, struct http_resp *resp);
void api_collection_doc_delete(void *app, struct http_req *req, struct http_resp *resp);
/* GET /v1/collections/{id}/vectors: the current vectors, paged JSON or NDJSON,
 * float or base64, as job results. */
void api_collection_vectors(void *app, struct http_req *req, struct http_resp *resp);

/* POST /v1/collections/{id}/estimate: what a job with these documents would
 * cost in the collection's space (chunks, tokens, dollars at the batch price
 * and the interactive one); nothing is stored and nothing is sent to Google
 * (estimate.c). The JSON body is streamed; any other media type is 415. */
extern const struct http_body_stream api_collection_estimate_json;
void api_collection_estimate(void *app, struct http_req *req, struct http_resp *resp);

/* POST /v1/collections/{id}/query: the top_k chunks nearest to each query
 * (texts embedded with the collection's query task type, or a vector), by
 * exact cosine similarity; POST /v1/embed: query vectors in a collection's
 * space (query.c). */
void api_collection_query(void *app, struct http_req *req, struct http_resp *resp);
void api_embed(void *app, struct http_req *req, struct http_resp *resp);

/* GET /v1/usage?from=&to=: the key's tokens and dollars per model, over its
 * jobs created in [from, to). */
void api_usage(void *app, struct http_req *req, struct http_resp *resp);

/* A "limit" query parameter in [1, max] (default dflt); false with a 400
 * problem in resp when it is malformed. */
bool api_query_limit(struct http_req *req, struct http_resp *resp, int dflt, int max, int *out);

#endif
