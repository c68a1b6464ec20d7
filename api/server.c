/*
 * server.c: the libmicrohttpd adapter behind http.h and server.h: request
 * lifetime (head checks, bounded or streamed bodies), dispatch through the
 * router and the auth callback (server_dispatch.c), response delivery, the
 * slow-header guard and graceful drain. The only file that includes
 * <microhttpd.h>.
 */
#include "server_internal.h"

#include "log.h"
#include "router.h"

#include <microhttpd.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct http_server {
    struct MHD_Daemon *daemon;
    struct http_server_opts o;
    int port;
    atomic_uint_fast64_t next_id;
    uint32_t id_salt;
    atomic_int in_flight; /* requests between their headers and their completion */
    atomic_bool draining; /* shutting down: answer what is in flight, then close */
    MHD_socket quiesced;  /* the listening socket once drain took it from MHD */
    /* slow-header guard: every open connection, with the time by which its
     * current request's head must be complete (see watch_*) */
    pthread_mutex_t watch_lock;
    struct conn_watch *watched;
    pthread_t reaper;
    bool reaper_running;
    atomic_bool reaper_stop;
    struct http_stream *waiting; /* waiting streams queued here (wait_lock) */
};

struct conn_watch {
    struct conn_watch *prev, *next;
    int fd;
    int64_t deadline_ms; /* 0: none (a request is being served) */
};

static void watch_set(struct http_server *s, struct MHD_Connection *c, int64_t deadline_ms);

/* MHD_OPTION_URI_LOG_CALLBACK: the first sight of a request, before
 * libmicrohttpd decodes its URI; what this returns becomes its req_cls. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)cls;
    (void)c;
    struct req_state *st = calloc(1, sizeof(*st));
    if (st && uri)
        st->raw_path = strndup(uri, strcspn(uri, "?"));
    return st;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

const char *http_req_query(const struct http_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn_, MHD_GET_ARGUMENT_KIND, name);
}

const char *http_req_header(const struct http_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn_, MHD_HEADER_KIND, name);
}

struct stream_resp {
    http_stream_read_fn read;
    http_stream_done_fn done;
    void *cls;
};

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct stream_resp *sr = cls;
    (void)pos;
    long n = sr->read(sr->cls, buf, max);
    if (n > 0)
        return (ssize_t)n;
    return n == 0 ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
}

/* MHD frees the response when it is done with it: sent, or the client gone. */
static void stream_free(void *cls)
{
    struct stream_resp *sr = cls;
    sr->done(sr->cls);
    free(sr);
}

/* ---- waiting streams (http_resp_stream_wait) ----
 * A waiting stream holds no server thread: when its read has nothing to send,
 * the connection is suspended in libmicrohttpd (MHD_suspend_connection, from
 * the content reader, as libmicrohttpd allows) and resumed by
 * http_stream_wake from any thread. wait_lock guards the flags of every
 * waiting stream and the servers' lists of them; read and done are called
 * without it, so a caller may hold its own lock while waking (lock order:
 * the caller's, then wait_lock). A wake that arrives between a read that
 * found nothing and the suspension is kept in woken, so the reader reads
 * again instead of sleeping through it. Draining ends every waiting body;
 * libmicrohttpd refuses to stop with a connection suspended, so stopping
 * resumes them all first. */
struct http_stream {
    struct http_stream *prev, *next; /* in srv->waiting once queued */
    struct http_server *srv;
    struct MHD_Connection *conn;
    bool suspended; /* we suspended conn; only a wake resumes it */
    bool woken;     /* a wake arrived while not suspended */
    http_stream_read_fn read;
    http_stream_done_fn done;
    void *cls;
};

static pthread_mutex_t wait_lock = PTHREAD_MUTEX_INITIALIZER;

struct http_stream *http_resp_stream_wait(struct http_resp *r, int status, const char *content_type,
                                          http_stream_read_fn read, http_stream_done_fn done,
                                          void *cls)
{
    struct http_stream *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->read = read;
    h->done = done;
    h->cls = cls;
    buf_reset(&r->body);
    r->status = status;
    r->content_type = content_type;
    r->stream_wait = h;
    return h;
}

void http_stream_wake(struct http_stream *h)
{
    pthread_mutex_lock(&wait_lock);
    if (h->suspended) {
        h->suspended = false;
        MHD_resume_connection(h->conn);
    } else {
        h->woken = true;
    }
    pthread_mutex_unlock(&wait_lock);
}

/* Resume every suspended waiting stream of s (draining: their reads end them). */
static void wake_all_waiting(struct http_server *s)
{
    pthread_mutex_lock(&wait_lock);
    for (struct http_stream *h = s->waiting; h; h = h->next)
        if (h->suspended) {
            h->suspended = false;
            MHD_resume_connection(h->conn);
        }
    pthread_mutex_unlock(&wait_lock);
}

static ssize_t wait_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct http_stream *h = cls;
    (void)pos;
    for (;;) {
        pthread_mutex_lock(&wait_lock);
        h->woken = false;
        pthread_mutex_unlock(&wait_lock);
        if (atomic_load(&h->srv->draining))
            return MHD_CONTENT_READER_END_OF_STREAM;
        long n = h->read(h->cls, buf, max);
        if (n > 0)
            return (ssize_t)n;
        if (n == 0)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (n != HTTP_STREAM_WAIT)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        pthread_mutex_lock(&wait_lock);
        bool again = h->woken || atomic_load(&h->srv->draining);
        if (!again) {
            MHD_suspend_connection(h->conn);
            h->suspended = true;
        }
        pthread_mutex_unlock(&wait_lock);
        if (!again)
            return 0; /* nothing now: libmicrohttpd calls again once resumed */
    }
}

static void wait_free(void *cls)
{
    struct http_stream *h = cls;
    pthread_mutex_lock(&wait_lock);
    if (h->srv) {
        if (h->prev)
            h->prev->next = h->next;
        else
            h->srv->waiting = h->next;
        if (h->next)
            h->next->prev = h->prev;
    }
    pthread_mutex_unlock(&wait_lock);
    h->done(h->cls);
    free(h);
}

/* The response of a waiting stream, listed in s before it can be read. */
static struct MHD_Response *wait_response(struct http_server *s, struct MHD_Connection *c,
                                          struct http_stream *h)
{
    /* small pieces: an event is sent as soon as it is there */
    struct MHD_Response *m =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, wait_reader, h, wait_free);
    if (!m) {
        h->done(h->cls);
        free(h);
        return NULL;
    }
    pthread_mutex_lock(&wait_lock);
    h->srv = s;
    h->conn = c;
    h->next = s->waiting;
    if (h->next)
        h->next->prev = h;
    s->waiting = h;
    pthread_mutex_unlock(&wait_lock);
    return m;
}

static struct MHD_Response *stream_response(struct http_resp *resp)
{
    struct stream_resp *sr = malloc(sizeof(*sr));
    if (!sr) {
        resp->stream_done(resp->stream_cls);
        return NULL;
    }
    *sr = (struct stream_resp){resp->stream_read, resp->stream_done, resp->stream_cls};
    /* 64 KiB pieces: large enough for a few rows, small enough to stay flat */
    struct MHD_Response *m = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024,
                                                               stream_reader, sr, stream_free);
    if (!m)
        stream_free(sr);
    return m;
}

static enum MHD_Result send_resp(struct http_server *s, struct MHD_Connection *c,
                                 struct http_req *req, struct http_resp *resp)
{
    struct MHD_Response *m;
    if (resp->stream_wait) {
        m = wait_response(s, c, resp->stream_wait);
        resp->stream_wait = NULL;
        if (!m)
            return MHD_NO;
    } else if (resp->stream_read) {
        m = stream_response(resp);
        resp->stream_read = NULL;
        if (!m)
            return MHD_NO;
    } else {
        size_t len;
        char *data = buf_steal(&resp->body, &len);
        if (!data)
            return MHD_NO;
        m = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
        if (!m) {
            free(data);
            return MHD_NO;
        }
    }
    MHD_add_response_header(m, MHD_HTTP_HEADER_CONTENT_TYPE,
                            resp->content_type ? resp->content_type : "application/json");
    MHD_add_response_header(m, "X-Request-Id", req->id);
    for (int i = 0; i < resp->n_hdr; i++)
        MHD_add_response_header(m, resp->hdr[i].name, resp->hdr[i].value);
    if (atomic_load(&s->draining)) /* clients move their keep-alive elsewhere */
        MHD_add_response_header(m, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)resp->status, m);
    MHD_destroy_response(m);
    return ret;
}

/* ---- request-head checks libmicrohttpd leaves to the application ---- */

struct head_check {
    int content_length, host, transfer_encoding;
    bool nul;        /* a NUL byte inside a header value */
    bool bad_name;   /* a field name that is not a token */
    bool host_bad;   /* a Host value with characters no host has */
    bool te_chunked; /* Transfer-Encoding is exactly "chunked" */
};

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    size_t key_size, const char *value, size_t value_size)
{
    struct head_check *h = cls;
    (void)kind;
    if (value && strlen(value) != value_size)
        h->nul = true;
    if (key && strlen(key) != key_size)
        h->nul = true;
    if (!key || !value)
        return MHD_YES;
    /* a field name is a token (RFC 9110, section 5.1): "Host : x" is not a Host header */
    for (const char *p = key; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("!#$%&'*+-.^_`|~", *p)))
            h->bad_name = true;
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
        h->content_length++;
    else if (strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0) {
        h->host++;
        for (const char *p = value; *p; p++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || strchr("-._~:[]%!$&'()*+,;=", *p)))
                h->host_bad = true;
        if (!*value)
            h->host_bad = true;
    } else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        h->transfer_encoding++;
        h->te_chunked = strcasecmp(value, "chunked") == 0;
    }
    return MHD_YES;
}

/* RFC 9110/9112 rules on the request head; false with resp filled when broken. */
static bool head_ok(struct MHD_Connection *c, const char *version, struct http_req *req,
                    struct http_resp *resp)
{
    struct head_check h;
    memset(&h, 0, sizeof(h));
    MHD_get_connection_values_n(c, MHD_HEADER_KIND, count_header, &h);
    if (h.nul)
        http_problem(resp, req, 400, "bad_header", NULL, "a header holds a NUL byte");
    else if (h.bad_name)
        http_problem(resp, req, 400, "bad_header", NULL, "a header name is not a token");
    else if (h.content_length > 1)
        http_problem(resp, req, 400, "bad_header", NULL,
                     "more than one Content-Length header (RFC 9112, section 6.3)");
    else if (h.transfer_encoding > 1 || (h.transfer_encoding == 1 && !h.te_chunked)) {
        http_problem(resp, req, 501, "unsupported_transfer_coding", NULL,
                     "only Transfer-Encoding: chunked is supported");
    } else if (h.transfer_encoding && h.content_length)
        http_problem(resp, req, 400, "bad_header", NULL,
                     "both Transfer-Encoding and Content-Length (RFC 9112, section 6.1)");
    else if (strcmp(version, MHD_HTTP_VERSION_1_1) == 0 && h.host != 1)
        http_problem(resp, req, 400, "bad_header", NULL,
                     h.host ? "more than one Host header" : "HTTP/1.1 requires a Host header");
    else if (h.host_bad)
        http_problem(resp, req, 400, "bad_header", NULL, "the Host header is not a host");
    else
        return true;
    return false;
}

/* Decode %HH escapes in place, except %00: a NUL would cut the path or a
 * query value short ("/healthz%00" must not be "/healthz"), so it is left
 * as written and never matches a route or parses as a value. */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    char *w = s;
    for (const char *r = s; *r; r++) {
        int hi, lo;
        if (r[0] == '%' && (hi = hexval(r[1])) >= 0 && (lo = hexval(r[2])) >= 0 && (hi | lo) != 0) {
            *w++ = (char)(hi << 4 | lo);
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

/* The route of a request whose body a handler streams, or NULL. */
static const struct http_body_stream *stream_route(struct http_server *s, struct req_state *st,
                                                   const struct http_route **rt_out)
{
    for (size_t i = 0; i < s->o.n_routes; i++) {
        const struct http_route *rt = &s->o.routes[i];
        const char *params[HTTP_MAX_PARAMS];
        size_t n;
        char store[sizeof(st->req.param_store_)];
        if (!rt->streams || strcmp(rt->method, st->req.method) != 0 ||
            !http_route_match(rt->pattern, st->req.raw_path ? st->req.raw_path : st->req.path,
                              params, &n, store, sizeof(store)))
            continue;
        const char *ct = MHD_lookup_connection_value(st->req.conn_, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_TYPE);
        const struct http_body_stream *sops = NULL;
        for (size_t k = 0; rt->streams[k] && !sops; k++)
            if (ct ? http_media_type_is(ct, rt->streams[k]->content_type) : rt->streams[k]->untyped)
                sops = rt->streams[k];
        if (!sops)
            return NULL;
        memcpy(st->req.param_store_, store, sizeof(store));
        for (size_t k = 0; k < n; k++)
            st->req.params[k] = st->req.param_store_ + (params[k] - store);
        st->req.n_params = n;
        *rt_out = rt;
        return sops;
    }
    return NULL;
}

static bool length_too_large(struct MHD_Connection *c, size_t max)
{
    const char *cl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (!cl)
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(cl, &end, 10);
    return errno || *end || v > max;
}

/* "%08x%012llx" of salt and n (the low 48 bits), without snprintf: a
 * request id is written for every request. */
static void put_request_id(char *id, uint32_t salt, uint64_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 7; i >= 0; i--, salt >>= 4)
        id[i] = hex[salt & 15];
    for (int i = 19; i >= 8; i--, n >>= 4)
        id[i] = hex[n & 15];
    id[20] = '\0';
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version, const char *data,
                                 size_t *data_size, void **req_cls)
{
    struct http_server *s = cls;
    struct req_state *st = *req_cls;
    if (!st || !st->begun) {
        if (!st && !(st = calloc(1, sizeof(*st))))
            return MHD_NO;
        st->begun = true;
        st->start_ns = now_ns();
        uint64_t n = atomic_fetch_add(&s->next_id, 1);
        put_request_id(st->req.id, s->id_salt, n);
        st->req.method = method;
        st->req.path = url;
        st->req.raw_path = st->raw_path;
        st->req.conn_ = c;
        buf_init(&st->req.body, s->o.max_body_bytes);
        *req_cls = st;
        atomic_fetch_add(&s->in_flight, 1);
        watch_set(s, c, 0); /* the head is complete */
        struct http_resp bad;
        memset(&bad, 0, sizeof(bad));
        buf_init(&bad.body, SIZE_MAX / 2);
        if (!head_ok(c, version, &st->req, &bad)) {
            /* answered before the body, which is not read: the connection closes */
            http_resp_header(&bad, MHD_HTTP_HEADER_CONNECTION, "close");
            log_debug("request %s %s %s -> %d (bad head)", st->req.id, method, url, bad.status);
            st->status = bad.status;
            enum MHD_Result ret = send_resp(s, c, &st->req, &bad);
            buf_cleanup(&bad.body);
            return ret;
        }
        buf_cleanup(&bad.body);
        const struct http_route *rt = NULL;
        st->sops = stream_route(s, st, &rt);
        st->route = st->sops ? rt : NULL;
        if (st->sops)
            return server_stream_begin(&s->o, st, rt) ? MHD_YES : MHD_NO;
        st->too_large = length_too_large(c, s->o.max_body_bytes);
        if (!st->too_large && !server_head_auth(&s->o, st))
            return MHD_NO;
        return MHD_YES;
    }
    if (*data_size && st->sops) {
        if (st->sstate && !st->sfailed)
            st->sfailed = !st->sops->data(st->sstate, &st->req, data, *data_size);
        *data_size = 0;
        return MHD_YES;
    }
    if (*data_size) {
        if (!st->too_large && !st->refusal && !buf_append(&st->req.body, data, *data_size)) {
            st->too_large = true;
            buf_cleanup(&st->req.body);
        }
        *data_size = 0;
        return MHD_YES;
    }
    struct http_resp resp;
    memset(&resp, 0, sizeof(resp));
    resp.status = 500;
    buf_init(&resp.body, SIZE_MAX / 2);
    log_context_request(st->req.id);
    server_dispatch(&s->o, st, &resp);
    log_context_request(NULL);
    int status = resp.status;
    st->status = status;
    if (s->o.observe && !st->route) /* not found by the dispatch (refused before it) */
        st->route = http_route_of(s->o.routes, s->o.n_routes, method,
                                  st->req.raw_path ? st->req.raw_path : url);
    enum MHD_Result ret = send_resp(s, c, &st->req, &resp);
    buf_cleanup(&resp.body);
    if (resp.stream_wait) { /* the handler set a waiting stream, then answered otherwise */
        resp.stream_wait->done(resp.stream_wait->cls);
        free(resp.stream_wait);
    }
    server_free_refusal(st);
    double ms = (double)(now_ns() - st->start_ns) / 1e6;
    if (status >= 500)
        log_warn("request %s %s %s -> %d (%.1f ms)", st->req.id, method, url, status, ms);
    else
        log_debug("request %s %s %s -> %d (%.1f ms)", st->req.id, method, url, status, ms);
    return ret;
}

/* ---- slow-header guard ----
 * libmicrohttpd's connection timeout only measures silence, so a client that
 * sends one byte every few seconds keeps a connection (and a slot of
 * max-connections) forever. Every connection therefore gets a deadline by
 * which its request head must be complete (header_timeout_s from the
 * connection's start, or from the end of its previous request plus the idle
 * timeout); a reaper thread shuts down the sockets that miss it, and
 * libmicrohttpd then closes them through its normal path. The watch entry
 * is removed (under watch_lock) when libmicrohttpd reports the connection
 * closed, which it does before closing the socket, so the reaper never
 * touches a descriptor that has been reused. */

static int64_t mono_ms(void)
{
    return now_ns() / 1000000;
}

static struct conn_watch *watch_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static void watch_set(struct http_server *s, struct MHD_Connection *c, int64_t deadline_ms)
{
    struct conn_watch *w = watch_of(c);
    if (!w)
        return;
    pthread_mutex_lock(&s->watch_lock);
    w->deadline_ms = deadline_ms;
    pthread_mutex_unlock(&s->watch_lock);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct http_server *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        struct conn_watch *w = calloc(1, sizeof(*w));
        if (!w || !ci) {
            free(w);
            return;
        }
        w->fd = ci->connect_fd;
        w->deadline_ms = mono_ms() + (int64_t)s->o.header_timeout_s * 1000;
        pthread_mutex_lock(&s->watch_lock);
        w->next = s->watched;
        if (w->next)
            w->next->prev = w;
        s->watched = w;
        pthread_mutex_unlock(&s->watch_lock);
        *socket_context = w;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
        struct conn_watch *w = *socket_context;
        pthread_mutex_lock(&s->watch_lock);
        if (w->prev)
            w->prev->next = w->next;
        else
            s->watched = w->next;
        if (w->next)
            w->next->prev = w->prev;
        pthread_mutex_unlock(&s->watch_lock);
        free(w);
        *socket_context = NULL;
    }
}

static void *reaper(void *arg)
{
    struct http_server *s = arg;
    while (!atomic_load(&s->reaper_stop)) {
        struct timespec ts = {0, 200 * 1000000L};
        nanosleep(&ts, NULL);
        int64_t now = mono_ms();
        int cut = 0;
        pthread_mutex_lock(&s->watch_lock);
        for (struct conn_watch *w = s->watched; w; w = w->next)
            if (w->deadline_ms && now > w->deadline_ms) {
                shutdown(w->fd, SHUT_RDWR);
                w->deadline_ms = 0;
                cut++;
            }
        pthread_mutex_unlock(&s->watch_lock);
        if (cut)
            log_info("closed %d connection(s) whose request head took over %u s", cut,
                     s->o.header_timeout_s);
    }
    return NULL;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct http_server *s = cls;
    struct req_state *st = *req_cls;
    (void)toe;
    /* the next request on this connection: idle time, then the head's time */
    if (s->o.header_timeout_s)
        watch_set(s, c,
                  mono_ms() +
                      ((int64_t)s->o.connection_timeout_s + (int64_t)s->o.header_timeout_s) * 1000);
    if (st) {
        if (st->status && s->o.observe)
            s->o.observe(s->o.app, st->route, st->status, (double)(now_ns() - st->start_ns) / 1e9);
        if (st->sstate) /* the client went away before the end of its body */
            st->sops->abort(st->sstate);
        server_free_refusal(st);
        if (st->begun)
            atomic_fetch_sub(&s->in_flight, 1);
        buf_cleanup(&st->req.body);
        free(st->raw_path);
        free(st);
        *req_cls = NULL;
    }
}

static bool parse_listen(const char *listen, struct sockaddr_in *sa, char *err, size_t errlen)
{
    const char *colon = strrchr(listen, ':');
    char host[64];
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    if (!colon || (size_t)(colon - listen) >= sizeof(host)) {
        snprintf(err, errlen, "listen address \"%s\" is not host:port", listen);
        return false;
    }
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || port < 0 || port > 65535 ||
        inet_pton(AF_INET, host, &sa->sin_addr) != 1) {
        snprintf(err, errlen, "listen address \"%s\" is not an IPv4 host:port", listen);
        return false;
    }
    sa->sin_port = htons((uint16_t)port);
    return true;
}

struct http_server *http_server_start(const struct http_server_opts *o, char *err, size_t errlen)
{
    struct sockaddr_in sa;
    if (!parse_listen(o->listen, &sa, err, errlen))
        return NULL;
    struct http_server *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->o = *o;
    if (getrandom(&s->id_salt, sizeof(s->id_salt), 0) != (ssize_t)sizeof(s->id_salt))
        s->id_salt = (uint32_t)time(NULL);
    atomic_init(&s->in_flight, 0);
    atomic_init(&s->draining, false);
    s->quiesced = MHD_INVALID_SOCKET;
    atomic_init(&s->reaper_stop, false);
    pthread_mutex_init(&s->watch_lock, NULL);
    /* MHD_USE_ITC: MHD_quiesce_daemon() needs it to wake the pool's threads.
     * The connection memory limit is libmicrohttpd's default, 32 KiB: the
     * per-connection pool holds the request head (a larger one is refused
     * with 414 or 431) and is zeroed whole after every request of a keep-alive
     * connection, so a 128 KiB pool cost a 128 KiB memset per request (about
     * a tenth of embedd's CPU on GET /v1/jobs/{id} under wrk). */
    s->daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_USE_ITC |
            MHD_ALLOW_SUSPEND_RESUME,
        0, NULL, NULL, on_access, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_THREAD_POOL_SIZE, o->threads, MHD_OPTION_CONNECTION_LIMIT, o->connection_limit,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, o->per_ip_connection_limit,
        MHD_OPTION_CONNECTION_TIMEOUT, o->connection_timeout_s, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, s, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024),
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
        MHD_OPTION_END);
    if (!s->daemon) {
        snprintf(err, errlen, "could not listen on %s", o->listen);
        pthread_mutex_destroy(&s->watch_lock);
        free(s);
        return NULL;
    }
    if (o->header_timeout_s)
        s->reaper_running = pthread_create(&s->reaper, NULL, reaper, s) == 0;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : ntohs(sa.sin_port);
    return s;
}

int http_server_port(const struct http_server *s)
{
    return s->port;
}

int http_server_drain(struct http_server *s, int64_t deadline_ms)
{
    if (!s)
        return 0;
    atomic_store(&s->draining, true);
    /* stop accepting: new connections are refused at once (and go to another
     * replica). shutdown() takes the socket out of the LISTEN state now; it is
     * closed only after MHD_stop_daemon, because MHD's threads still hold it in
     * their epoll sets until they notice the quiesce. */
    s->quiesced = MHD_quiesce_daemon(s->daemon);
    if (s->quiesced != MHD_INVALID_SOCKET)
        shutdown(s->quiesced, SHUT_RDWR);
    wake_all_waiting(s); /* waiting bodies end at once */
    int64_t end = mono_ms() + deadline_ms;
    int n;
    while ((n = atomic_load(&s->in_flight)) > 0 && mono_ms() < end) {
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return n;
}

void http_server_stop(struct http_server *s)
{
    if (!s)
        return;
    if (s->reaper_running) {
        atomic_store(&s->reaper_stop, true);
        pthread_join(s->reaper, NULL);
    }
    /* libmicrohttpd must not stop with a suspended connection */
    atomic_store(&s->draining, true);
    wake_all_waiting(s);
    MHD_stop_daemon(s->daemon); /* reports every connection closed: the watch list empties */
    if (s->quiesced != MHD_INVALID_SOCKET)
        close(s->quiesced);
    pthread_mutex_destroy(&s->watch_lock);
    free(s);
}
