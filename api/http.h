/*
 * http.h: what a handler sees of HTTP: struct http_req and struct http_resp,
 * the helpers that read a request and build a reply (JSON, streamed bodies,
 * RFC 9457 problem+json), and the route table's types. The libmicrohttpd
 * adapter behind them is server.c, the only file that includes
 * <microhttpd.h>.
 */
#ifndef API_HTTP_H
#define API_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/compiler.h"

#define HTTP_MAX_PARAMS  4
#define HTTP_MAX_HEADERS 8

struct http_req {
    char id[24];          /* request id, also sent as X-Request-Id */
    const char *method;   /* borrowed from MHD, valid for the request */
    const char *path;     /* decoded path, no query string */
    const char *raw_path; /* the path as sent (percent-encoded), no query string; routing
                             matches it and decodes each {param} on its own, so an id may hold
                             an encoded "/"; NULL when unknown (then path is used) */
    struct buf body;
    int64_t key_id;                      /* set by authentication; 0 for public routes */
    const char *params[HTTP_MAX_PARAMS]; /* {name} segments, decoded, NUL-terminated copies */
    size_t n_params;
    void *conn_; /* the MHD connection: use the accessors below */
    char param_store_[512];

    int64_t key_max_pending; /* set by authentication: the key's pending-chunk limit (0: none) */
};

/*
 * A streamed response body (see http_resp_stream): read writes up to max
 * bytes into out and returns how many (> 0), 0 at the end of the body, or -1
 * to abort the connection (the client sees a truncated chunked body). It is
 * called from the server's thread as the client reads, so a slow client
 * slows the producer instead of growing a buffer. done is called exactly
 * once when the response is finished or the client went away.
 */
typedef long (*http_stream_read_fn)(void *cls, char *out, size_t max);
typedef void (*http_stream_done_fn)(void *cls);

/* What the read of a waiting stream (http_resp_stream_wait) returns when it
 * has nothing to send yet. */
#define HTTP_STREAM_WAIT (-2L)

/* A waiting stream's handle (server.c). */
struct http_stream;

struct http_resp {
    int status;
    struct buf body;
    const char *content_type; /* static string; default application/json */
    struct {
        char name[40];
        char value[256];
    } hdr[HTTP_MAX_HEADERS];
    int n_hdr;
    http_stream_read_fn stream_read; /* set by http_resp_stream; body is then unused */
    http_stream_done_fn stream_done;
    void *stream_cls;
    struct http_stream *stream_wait; /* set by http_resp_stream_wait */
};

/* A query parameter (already percent-decoded) or request header; NULL if absent. */
const char *http_req_query(const struct http_req *r, const char *name);
const char *http_req_header(const struct http_req *r, const char *name);

void http_resp_header(struct http_resp *r, const char *name, const char *value);
/* Set status and a JSON body (copied). */
void http_resp_json(struct http_resp *r, int status, const char *json);
/*
 * Set an RFC 9457 problem+json reply: {"type", "title", "status", "detail",
 * "code", "request_id"} plus "errors": [{"pointer", "detail"}] when pointer
 * is not NULL. code is a stable snake_case identifier; title is derived from
 * the status; detail is lowercase, with no trailing period.
 */
void http_problem(struct http_resp *r, const struct http_req *req, int status, const char *code,
                  const char *pointer, const char *fmt, ...) SVC_PRINTF(6, 7);

/* Add a member "name": value to the problem http_problem just built in r
 * (RFC 9457 extension members, e.g. the limit a 429 refers to). */
void http_problem_member(struct http_resp *r, const char *name, int64_t value);

/* Answer with a body produced piece by piece (chunked transfer encoding),
 * never held whole in memory. content_type: a static string. The server
 * owns cls from here on and hands it to done (also if the reply cannot be
 * queued). */
void http_resp_stream(struct http_resp *r, int status, const char *content_type,
                      http_stream_read_fn read, http_stream_done_fn done, void *cls);

/*
 * Answer with a body that waits for events (Server-Sent Events): like
 * http_resp_stream, but read may also return HTTP_STREAM_WAIT when it has
 * nothing to send now. The response then holds no server thread: the
 * connection is parked until http_stream_wake. When the server drains for
 * shutdown, the body ends (read is not called again). Returns the handle to
 * wake it with, valid until done has been called; NULL when out of memory
 * (then nothing is set and the caller still owns cls).
 */
struct http_stream *http_resp_stream_wait(struct http_resp *r, int status, const char *content_type,
                                          http_stream_read_fn read, http_stream_done_fn done,
                                          void *cls);
/* From any thread, until the stream's done has been called: read has
 * something to send (or the body has ended). Cheap when it is not waiting. */
void http_stream_wake(struct http_stream *h);

typedef void (*http_handler)(void *app, struct http_req *req, struct http_resp *resp);

/*
 * A route may take its request body as a stream instead of one buffer, when
 * the request's Content-Type is content_type (or, with untyped, when it has
 * none): the body then has no max_body_bytes limit (the handler applies its
 * own) and is never held whole.
 * After authentication, begin returns the handler's state, or NULL with resp
 * filled to refuse the request (the body is then read and dropped). data gets
 * each piece as it arrives, in order, split anywhere; returning false means
 * the handler has failed (it keeps the reason) and wants no more data. end
 * fills resp and frees the state; abort frees the state when the client went
 * away before the end. Exactly one of end and abort is called.
 */
struct http_body_stream {
    const char *content_type; /* media type, matched case-insensitively, parameters ignored */
    bool untyped;             /* also for a request without Content-Type */
    void *(*begin)(void *app, struct http_req *req, struct http_resp *resp);
    bool (*data)(void *state, struct http_req *req, const char *data, size_t len);
    void (*end)(void *state, struct http_req *req, struct http_resp *resp);
    void (*abort)(void *state);
};

/* Verify the request's credentials; return true and set req->key_id, or fill
 * resp (401, 503...) and return false. */
typedef bool (*http_auth_fn)(void *app, struct http_req *req, struct http_resp *resp);

enum { HTTP_ROUTE_AUTH = 1 };

struct http_route {
    const char *method;
    const char *pattern; /* "/v1/jobs/{id}/results": {x} matches one segment */
    http_handler handler;
    unsigned flags;
    /* the media types whose body is streamed (NULL-terminated), or NULL; a
     * request with another type has its body whole in req->body */
    const struct http_body_stream *const *streams;
};

/* Whether a Content-Type value names media type mt ("application/json"):
 * case-insensitive, parameters after ';' ignored, nothing else accepted. */
bool http_media_type_is(const char *content_type, const char *mt);

#endif
