/*
 * client.h: libcurl calls to Google's Gemini embedding API, on top of
 * gemini/response.h (the transport in client.c, the calls in batches.c and
 * files.c). One client per thread (it owns a curl easy handle and
 * reuses its connections); not thread-safe. The API key travels only in
 * the x-goog-api-key header and never appears in errors or logs.
 *
 * Every call fills a struct gem_call that tells the caller what to do next:
 *   GEM_OK       success; outputs are filled
 *   GEM_RETRY    transient: HTTP 408, 429 or 5xx; a timeout or transport
 *                error (for gem_create_batch only one before the whole
 *                request was sent); a 2xx body that is not JSON (cut off on
 *                the way; not for a create): retry after retry_after_ms
 *                (RetryInfo when Google gave one, else -1: the caller picks
 *                its backoff)
 *   GEM_FATAL    permanent (other 4xx, 404 included; a 2xx JSON body of the
 *                wrong shape; a response past max_response_bytes; an invalid
 *                name or model id, refused with http 0): do not retry
 *   GEM_UNKNOWN  only for gem_create_batch: the request may have reached
 *                Google but no valid answer came back (timeout or connection
 *                lost after sending, truncated or malformed 2xx body); the
 *                batch may exist — reconcile by listing and matching the
 *                displayName before creating again
 *
 * Every call also reports what it cost (struct gem_call: its endpoint class,
 * the requests it made, body bytes each way, milliseconds), summed over all
 * of its requests, and logs one debug line with the same figures (never the
 * key, never a body).
 */
#ifndef SVC_GEMINI_CLIENT_H
#define SVC_GEMINI_CLIENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gemini/file_meta.h"
#include "gemini/response.h"
#include "util/buf.h"
#include "util/compiler.h"

enum gem_outcome { GEM_OK, GEM_RETRY, GEM_FATAL, GEM_UNKNOWN };
const char *gem_outcome_name(enum gem_outcome o); /* "ok", "retry", "fatal", "unknown" */

/* What a call talks to, for counting calls by kind. */
enum gem_endpoint {
    GEM_EP_CREATE,   /* asyncBatchEmbedContent */
    GEM_EP_GET,      /* batches/{id} */
    GEM_EP_LIST,     /* batches */
    GEM_EP_CANCEL,   /* batches/{id}:cancel */
    GEM_EP_DELETE,   /* DELETE batches/{id} */
    GEM_EP_SYNC,     /* batchEmbedContents */
    GEM_EP_UPLOAD,   /* the resumable upload of a file */
    GEM_EP_DOWNLOAD, /* files/{id}:download */
    GEM_EP_FILES,    /* files/{id} get and delete, files list */
    GEM_EP_COUNT
};
const char *gem_endpoint_name(enum gem_endpoint e); /* "create", "get", ... "files" */

struct gem_call {
    enum gem_outcome outcome;
    long http;                /* HTTP status of the last request; 0 when no response arrived */
    struct gem_status status; /* the error body, when there was one */
    int64_t retry_after_ms;   /* from RetryInfo; -1 if none */
    char detail[256];         /* what went wrong, log-safe (no key, no body dump) */
    /* the cost of the call, all of its requests summed */
    enum gem_endpoint endpoint;
    unsigned requests;       /* HTTP requests made (0 when refused before sending) */
    uint64_t bytes_sent;     /* request body bytes that left */
    uint64_t bytes_received; /* response body bytes that arrived (as sent, before decoding) */
    int64_t elapsed_ms;      /* from the call's start to its end, backoff sleeps included */
};

struct metric_family;
/* The client's metrics, counted in gem_client_end for every call of every
 * client of the process: calls by endpoint and outcome, their durations,
 * bytes each way (metrics/metrics.h). */
const struct metric_family *const *gem_metrics(size_t *n);

struct gem_client_opts {
    const char *base_url;    /* e.g. "https://generativelanguage.googleapis.com" */
    const char *api_version; /* "v1beta" or "v1" */
    const char *api_key;
    long connect_timeout_ms;   /* default 10 s when 0 */
    long timeout_ms;           /* whole request; default 300 s when 0 */
    size_t max_response_bytes; /* default 1 GiB when 0 */
    const atomic_bool *abort;  /* when set and true, calls in flight end at once (shutdown) */
    /* File downloads are not bound by timeout_ms: a results file of 2 GB takes as long as
     * it takes to receive and store. They end when no byte came for this long (default
     * 120 s when 0), counted from the request (Google may take a while to begin). */
    long stall_timeout_ms;
};

struct gem_client;

/* Process-wide libcurl set-up and teardown: call once in main(), before and
 * after any thread uses a client. */
bool gem_global_init(void);
void gem_global_cleanup(void);

/* Copies the strings it needs. NULL on OOM. */
struct gem_client *gem_client_new(const struct gem_client_opts *o);
void gem_client_free(struct gem_client *c);

/* POST models/{model}:asyncBatchEmbedContent with a body from gem_build_batch
 * (or a file-based body). On GEM_OK op is filled (caller frees it); results
 * in the answer (a batch done at once) are read as they arrive and dropped. */
void gem_create_batch(struct gem_client *c, const char *model, const char *body, size_t len,
                      struct gem_operation *op, struct gem_call *res);
/* GET {name} ("batches/<id>"); inline results are kept in op. */
void gem_get_batch(struct gem_client *c, const char *name, struct gem_operation *op,
                   struct gem_call *res);
/* The same, with inline results handed to sink one at a time as they arrive
 * (op->results stays empty; memory: one result). What the sink got is only
 * good once the call ends with GEM_OK and op says the batch succeeded. */
void gem_get_batch_to(struct gem_client *c, const char *name, const struct gem_result_sink *sink,
                      struct gem_operation *op, struct gem_call *res);
/* GET batches?pageSize=&pageToken= (token may be NULL or "", and may be next_token itself). */
void gem_list_batches(struct gem_client *c, int page_size, const char *page_token,
                      struct gem_operation **ops, size_t *n, char *next_token, size_t token_len,
                      struct gem_call *res);
/* POST {name}:cancel with body {} / DELETE {name}. A 404 is GEM_FATAL with http 404. */
void gem_cancel_batch(struct gem_client *c, const char *name, struct gem_call *res);
void gem_delete_batch(struct gem_client *c, const char *name, struct gem_call *res);
/* POST models/{model}:batchEmbedContents with a body from gem_build_sync. */
void gem_embed_sync(struct gem_client *c, const char *model, const char *body, size_t len,
                    struct gem_result **results, size_t *n, struct gem_call *res);
/* How gem_upload_fd sends a file. Zeroed fields take the defaults. */
struct gem_upload_opts {
    size_t piece_bytes;  /* bytes per upload request: a multiple of 256 KiB (GEM_UPLOAD_UNIT),
                            rounded up to the X-Goog-Upload-Chunk-Granularity the session
                            announces; default 8 MiB, as Google's SDKs send */
    int max_attempts;    /* tries at one offset before giving up (GEM_RETRY); default 5 */
    long backoff_ms;     /* first pause after a broken piece, doubled each time; default 1 s */
    long backoff_max_ms; /* cap of the pause (and of a RetryInfo delay); default 30 s */
};
#define GEM_UPLOAD_UNIT ((size_t)256 * 1024)

/*
 * Upload len bytes of the open file fd (read with pread from offset 0, one
 * piece at a time: never the whole file in memory; fd's position is not
 * used or moved) as a JSONL file named display_name, through the resumable
 * protocol (§5.3): a start, then upload pieces of opts->piece_bytes, the
 * last one "upload, finalize", each at its X-Goog-Upload-Offset. A broken
 * piece (transport error, 408, 429, 5xx) makes it ask the session how much
 * it has (X-Goog-Upload-Command: query) and go on from there, with bounded
 * retries and backoff; a session that answers "final" has the whole file.
 * On GEM_OK name_out holds the file's name ("files/<id>"); else "".
 * Outcomes: GEM_RETRY when the start or the retries failed transiently (the
 * caller may upload again: at worst an orphaned file, to be found by its
 * displayName and deleted), GEM_FATAL for another 4xx, a bad argument or a
 * file that could not be read (detail says why). opts may be NULL.
 */
void gem_upload_fd(struct gem_client *c, const char *display_name, int fd, uint64_t len,
                   const struct gem_upload_opts *opts, char *name_out, size_t name_len,
                   struct gem_call *res);
/* The same from memory (data[0..len), borrowed for the call), default options. */
void gem_upload_file(struct gem_client *c, const char *display_name, const char *data, size_t len,
                     char *name_out, size_t name_len, struct gem_call *res);
/* GET {name} ("files/<id>"): the File (state, sizeBytes, displayName...) into f. */
void gem_get_file(struct gem_client *c, const char *name, struct gem_file *f, struct gem_call *res);
/* GET files?pageSize=&pageToken= (token may be NULL, "" or next_token itself; page_size <= 0:
 * Google's default of 10; at most 100). *files is malloc'd (caller frees; NULL when *n is 0);
 * next_token is "" on the last page. */
void gem_list_files(struct gem_client *c, int page_size, const char *page_token,
                    struct gem_file **files, size_t *n, char *next_token, size_t token_len,
                    struct gem_call *res);
/* GET {name}:download?alt=media into out (appended; bounded by out->max;
 * out is left as it was unless the call succeeds). */
void gem_download_file(struct gem_client *c, const char *name, struct buf *out,
                       struct gem_call *res);
/* The same, handing the body to feed piece by piece as it arrives (a
 * results file runs to gigabytes); feed returns false to stop the transfer
 * (the call then fails with GEM_RETRY). tick, when not NULL, is called about
 * once a second for as long as the download lasts, bytes or not (before the
 * first one too); false stops it the same way. */
void gem_download_stream(struct gem_client *c, const char *name,
                         bool (*feed)(void *ud, const char *p, size_t n), bool (*tick)(void *ud),
                         void *ud, struct gem_call *res);
/* DELETE {name} for a file. */
void gem_delete_file(struct gem_client *c, const char *name, struct gem_call *res);

#endif
