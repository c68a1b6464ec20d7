/*
 * client_internal.h: the transport of gemini/client.c as gemini/batches.c
 * and gemini/files.c use it: the client's state, one request performed and
 * classified, URLs and names checked. Internal to service/gemini/.
 */
#ifndef SVC_GEMINI_CLIENT_INTERNAL_H
#define SVC_GEMINI_CLIENT_INTERNAL_H

#include <curl/curl.h>
#include <json-c/json.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "gemini/client.h"
#include "util/buf.h"
#include "util/compiler.h"

#define URL_MAX    2048
#define JSON_CTYPE "Content-Type: application/json"

struct gem_client {
    CURL *curl;      /* one easy handle, reused so that connections stay open */
    char *base;      /* base URL without a trailing slash */
    char *version;   /* "v1beta" or "v1" */
    char *key;       /* kept only to redact it from messages */
    char *key_hdr;   /* "x-goog-api-key: <key>" */
    bool key_usable; /* the key has no line break (which would split the header) */
    long connect_timeout_ms, timeout_ms;
    long stall_timeout_ms;  /* streamed downloads: see gem_client_opts */
    bool (*tick)(void *ud); /* while a streamed download lasts (gem_download_stream) */
    void *tick_ud;
    int64_t tick_ms; /* when tick was last called */
    size_t max_response;
    const atomic_bool *abort;
    struct buf body;          /* 2xx body of the last request */
    struct buf err_body;      /* non-2xx body of the last request (its head) */
    char upload_url[URL_MAX]; /* X-Goog-Upload-URL of the last response; "" if none */
    bool upload_url_long;     /* the header was there but did not fit */
    char upload_status[16];   /* X-Goog-Upload-Status of the last response; "" if none */
    int64_t size_received;    /* X-Goog-Upload-Size-Received of the last response; -1 if none */
    int64_t granularity;      /* X-Goog-Upload-Chunk-Granularity of the last response; -1 */
    char errbuf[CURL_ERROR_SIZE];
    /* the call in progress (gem_client_begin .. gem_client_end) */
    enum gem_endpoint call_ep;
    int64_t call_start_ns;
    unsigned call_requests;
    uint64_t call_sent, call_received;
};

/* A request body read piece by piece as libcurl sends it (an upload piece),
 * from a file with pread or from memory. */
struct gem_body_src {
    int fd;          /* pread from here when mem is NULL */
    const char *mem; /* or copy from here (the whole file; off applies) */
    uint64_t off;    /* where the body starts */
    uint64_t len;    /* its length */
    uint64_t pos;    /* bytes handed to libcurl so far */
    int read_errno;  /* pread failed with this; 0 if not */
    bool short_read; /* the file ended before off + len */
};

/* A create is not idempotent; everything else may be repeated. */
enum req_kind { REQ_SAFE, REQ_CREATE };

struct req {
    const char *op;     /* names the call in messages: "create batch", ... */
    const char *method; /* GET, POST or DELETE */
    const char *url;
    const char *body; /* NULL: no body */
    size_t len;
    const char *ctype;          /* "Content-Type: ..." header of the body, or NULL */
    const char *const *headers; /* extra headers, NULL-terminated; may be NULL */
    enum req_kind kind;
    struct buf *sink; /* where a 2xx body goes; NULL: c->body */
    /* or, when set, who takes a 2xx body piece by piece (false: refused, the
     * transfer stops) */
    bool (*feed)(void *ud, const char *p, size_t n);
    void *feed_ud;
    struct gem_body_src *src; /* when set, the body comes from here (body, len unused) */
    bool stall_only;          /* no deadline for the whole request: only c->stall_timeout_ms without
                                 a byte ends it (a download of any size, stored as it arrives) */
};

/* Start the accounting of a public call (its endpoint class, clock, requests, bytes). */
void gem_client_begin(struct gem_client *c, enum gem_endpoint ep);
/* End it: the totals go into res and one debug line is logged. */
void gem_client_end(struct gem_client *c, struct gem_call *res);

/*
 * Perform one request and classify it into res (reset first; the call's
 * totals carry on in c). Returns true only for a complete 2xx response,
 * whose body is then in r->sink (or c->body). A body source that could not
 * be read makes the outcome GEM_FATAL.
 */
bool gem_client_perform(struct gem_client *c, const struct req *r, struct gem_call *res);

/* A call refused before anything was sent: a bad argument (GEM_FATAL). */
void gem_client_reject(const struct gem_client *c, struct gem_call *res, const char *op,
                       const char *why);

/* Format res->detail, flattened to one line, the API key starred out. */
void gem_client_set_detail(const struct gem_client *c, struct gem_call *res, const char *fmt, ...)
    SVC_PRINTF(3, 4);

/* b's text, "" when it has none. Borrowed from b. */
const char *gem_client_data_of(const struct buf *b);

/* Parse a whole JSON text (trailing whitespace allowed). Caller owns it; NULL if invalid. */
json_object *gem_client_parse_json(const char *p, size_t len);

/* A 2xx body the codec refused, for the reason why: json says whether it was
 * well-formed JSON (of the wrong shape) or not JSON at all. */
void gem_client_body_unusable_as(struct gem_client *c, const struct req *r, bool json,
                                 const char *why, struct gem_call *res);
/* The same, telling JSON from not-JSON by parsing b. */
void gem_client_body_unusable(struct gem_client *c, const struct req *r, const struct buf *b,
                              const char *why, struct gem_call *res);

/* snprintf into url[n]; false if it did not fit. */
bool gem_client_fmt_url(char *url, size_t n, const char *fmt, ...) SVC_PRINTF(3, 4);

/* "batches/<id>" or "files/<id>" (prefix given) with an id safe to put in a URL as is. */
bool gem_client_valid_name(const char *name, const char *prefix);

/* The bare model id ("models/" tolerated); NULL if unusable. Borrowed from model. */
const char *gem_client_model_id(const char *model);

/* POST {name}{suffix} with body {} or DELETE {name}; the answer's body is not needed. */
void gem_client_name_call(struct gem_client *c, const char *what, const char *method,
                          const char *name, const char *prefix, const char *suffix,
                          struct gem_call *res);

#endif
