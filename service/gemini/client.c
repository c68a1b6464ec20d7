/* client.c: the libcurl transport of the Gemini client: one request performed, its outcome
 * classified into a gem_call, the API key kept out of every message. */
#include "gemini/client_internal.h"

#include "log.h"
#include "metrics/metrics.h"

#include <curl/curl.h>
#include <json-c/json.h>

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define ERR_BODY_MAX  (64 * 1024)   /* error bodies: only their head is kept */
#define BODY_KEEP_MAX (1024 * 1024) /* larger body storage is freed, not kept for reuse */
#define ID_CHARS      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."

/* Where the response body goes, decided at its first byte. */
struct sink {
    struct gem_client *c;
    const struct req *r;
    struct buf *ok;  /* 2xx destination */
    struct buf *dst; /* NULL until decided */
    bool is_ok;
    bool overflow; /* a 2xx body passed its cap */
    bool oom;
    bool refused; /* the feed refused the 2xx body */
};

bool gem_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

void gem_global_cleanup(void)
{
    curl_global_cleanup();
}

struct gem_client *gem_client_new(const struct gem_client_opts *o)
{
    struct gem_client *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    const char *key = o->api_key ? o->api_key : "";
    size_t hl = strlen(key) + sizeof("x-goog-api-key: ");
    c->curl = curl_easy_init();
    c->base = strdup(o->base_url ? o->base_url : "");
    c->version = strdup(o->api_version ? o->api_version : "v1beta");
    c->key = strdup(key);
    c->key_hdr = malloc(hl);
    if (!c->curl || !c->base || !c->version || !c->key || !c->key_hdr) {
        gem_client_free(c);
        return NULL;
    }
    snprintf(c->key_hdr, hl, "x-goog-api-key: %s", key);
    c->key_usable = strpbrk(key, "\r\n") == NULL;
    size_t bl = strlen(c->base);
    while (bl > 0 && c->base[bl - 1] == '/')
        c->base[--bl] = '\0';
    c->connect_timeout_ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 10000;
    c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 300000;
    c->stall_timeout_ms = o->stall_timeout_ms > 0 ? o->stall_timeout_ms : 120000;
    c->max_response = o->max_response_bytes ? o->max_response_bytes : (size_t)1 << 30;
    c->abort = o->abort;
    buf_init(&c->body, c->max_response);
    buf_init(&c->err_body, ERR_BODY_MAX);
    return c;
}

/* ---- names and accounting of calls ---- */

const char *gem_outcome_name(enum gem_outcome o)
{
    static const char *const names[] = {"ok", "retry", "fatal", "unknown"};
    return (size_t)o < SVC_ARRAY_LEN(names) ? names[o] : "?";
}

static const char *const endpoint_names[GEM_EP_COUNT] = {
    "create", "get", "list", "cancel", "delete", "sync", "upload", "download", "files"};

const char *gem_endpoint_name(enum gem_endpoint e)
{
    return (size_t)e < SVC_ARRAY_LEN(endpoint_names) ? endpoint_names[e] : "?";
}

/* ---- metrics: every call, by endpoint and outcome (this process's) ---- */

static const char *const outcome_names[] = {"ok", "retry", "fatal", "unknown"};
#define N_OUTCOMES SVC_ARRAY_LEN(outcome_names)
static const double call_le[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                 1,     2.5,  5,     10,   30,  60,   300};
static atomic_uint_least64_t calls_cells[GEM_EP_COUNT * N_OUTCOMES];
static atomic_uint_least64_t sent_cells[GEM_EP_COUNT], received_cells[GEM_EP_COUNT];
static struct metric_hist call_hists[GEM_EP_COUNT];
#define ENDPOINT_DIM                                                                               \
    {                                                                                              \
        "endpoint", endpoint_names, GEM_EP_COUNT                                                   \
    }

static const struct metric_family m_calls = {
    "embedd_gemini_calls_total",
    "Calls to Google's Gemini API by endpoint and outcome (ok; retry: transient, tried again "
    "later; fatal: refused for good; unknown: a create whose answer was lost), in this process",
    METRIC_COUNTER,
    false,
    false,
    {ENDPOINT_DIM, {"outcome", outcome_names, N_OUTCOMES}},
    NULL,
    0,
    calls_cells,
    NULL};
static const struct metric_family m_call_seconds = {
    "embedd_gemini_call_duration_seconds",
    "Duration of calls to Google's Gemini API by endpoint, all of a call's requests included "
    "(an upload's pieces), in this process",
    METRIC_HISTOGRAM,
    false,
    true,
    {ENDPOINT_DIM, {0}},
    call_le,
    SVC_ARRAY_LEN(call_le),
    NULL,
    call_hists};
static const struct metric_family m_sent = {
    "embedd_gemini_sent_bytes_total",
    "Request body bytes sent to Google by endpoint, in this process",
    METRIC_COUNTER,
    false,
    false,
    {ENDPOINT_DIM, {0}},
    NULL,
    0,
    sent_cells,
    NULL};
static const struct metric_family m_received = {
    "embedd_gemini_received_bytes_total",
    "Response body bytes received from Google by endpoint (as sent, before decoding), in this "
    "process",
    METRIC_COUNTER,
    false,
    false,
    {ENDPOINT_DIM, {0}},
    NULL,
    0,
    received_cells,
    NULL};

static const struct metric_family *const gem_families[] = {&m_calls, &m_call_seconds, &m_sent,
                                                           &m_received};

const struct metric_family *const *gem_metrics(size_t *n)
{
    *n = SVC_ARRAY_LEN(gem_families);
    return gem_families;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void gem_client_begin(struct gem_client *c, enum gem_endpoint ep)
{
    c->call_ep = ep;
    c->call_start_ns = mono_ns();
    c->call_requests = 0;
    c->call_sent = c->call_received = 0;
}

/* The call's totals into res. */
static void call_totals(const struct gem_client *c, struct gem_call *res)
{
    res->endpoint = c->call_ep;
    res->requests = c->call_requests;
    res->bytes_sent = c->call_sent;
    res->bytes_received = c->call_received;
    int64_t ns = mono_ns() - c->call_start_ns;
    res->elapsed_ms = ns / 1000000;
    size_t ep = (size_t)res->endpoint < GEM_EP_COUNT ? (size_t)res->endpoint : 0;
    size_t out = (size_t)res->outcome < N_OUTCOMES ? (size_t)res->outcome : N_OUTCOMES - 1;
    metric_inc(&m_calls, metric_at(&m_calls, ep, out), 1);
    metric_observe(&m_call_seconds, ep, (double)ns / 1e9);
    metric_inc(&m_sent, ep, res->bytes_sent);
    metric_inc(&m_received, ep, res->bytes_received);
}

void gem_client_end(struct gem_client *c, struct gem_call *res)
{
    call_totals(c, res);
    log_debug("gemini %s: %s, http %ld, %u request%s, %lld ms, %llu bytes sent, %llu received",
              gem_endpoint_name(res->endpoint), gem_outcome_name(res->outcome), res->http,
              res->requests, res->requests == 1 ? "" : "s", (long long)res->elapsed_ms,
              (unsigned long long)res->bytes_sent, (unsigned long long)res->bytes_received);
}

/* Overwrite a secret before freeing it (volatile: the stores are not elided). */
static void free_secret(char *s)
{
    if (!s)
        return;
    for (volatile char *p = s; *p; p++)
        *p = '\0';
    free(s);
}

void gem_client_free(struct gem_client *c)
{
    if (!c)
        return;
    if (c->curl)
        curl_easy_cleanup(c->curl);
    free(c->base);
    free(c->version);
    free_secret(c->key);
    free_secret(c->key_hdr);
    buf_cleanup(&c->body);
    buf_cleanup(&c->err_body);
    free(c);
}

/* ---- messages ---- */

/* Star out every occurrence of the API key, and a key prefix cut off at the end. */
static void redact(const struct gem_client *c, char *s)
{
    size_t kl = strlen(c->key);
    if (kl == 0)
        return;
    for (char *p = strstr(s, c->key); p; p = strstr(p + kl, c->key))
        memset(p, '*', kl);
    size_t n = strlen(s);
    for (size_t k = kl - 1; k >= 4; k--) {
        if (n >= k && memcmp(s + n - k, c->key, k) == 0) {
            memset(s + n - k, '*', k);
            break;
        }
    }
}

/* Control characters (a message with a newline) would break a log line. */
static void flatten(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = ' ';
}

void gem_client_set_detail(const struct gem_client *c, struct gem_call *res, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->detail, sizeof(res->detail), fmt, ap);
    va_end(ap);
    flatten(res->detail);
    redact(c, res->detail);
}

static void call_init(struct gem_call *res)
{
    memset(res, 0, sizeof(*res));
    res->retry_after_ms = -1;
    res->status.retry_delay_ms = -1;
}

/* A call refused before anything was sent: a bad argument. */
void gem_client_reject(const struct gem_client *c, struct gem_call *res, const char *op,
                       const char *why)
{
    call_init(res);
    res->outcome = GEM_FATAL;
    gem_client_set_detail(c, res, "%s: %s", op, why);
}

/* ---- curl callbacks ---- */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct sink *s = ud;
    size_t len = size * n;
    if (!s->dst) {
        long code = 0;
        curl_easy_getinfo(s->c->curl, CURLINFO_RESPONSE_CODE, &code);
        s->is_ok = code >= 200 && code < 300;
        s->dst = s->is_ok ? s->ok : &s->c->err_body;
    }
    if (!s->is_ok) {
        /* an error body: keep its head, read and drop the rest */
        size_t room = s->dst->max - s->dst->len;
        bool kept = buf_append(s->dst, p, len < room ? len : room);
        (void)kept;
        return len;
    }
    if (s->r->feed) {
        if (s->r->feed(s->r->feed_ud, p, len))
            return len;
        s->refused = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (buf_append(s->dst, p, len))
        return len;
    if (s->dst->len + len > s->dst->max)
        s->overflow = true;
    else
        s->oom = true;
    return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
}

/* The value of header line p[0..len) if it is the header name (ending in ':'); trimmed. */
static bool header_value(const char *p, size_t len, const char *name, const char **v, size_t *vl)
{
    size_t nl = strlen(name);
    if (len <= nl || strncasecmp(p, name, nl) != 0)
        return false;
    *v = p + nl;
    *vl = len - nl;
    while (*vl && (**v == ' ' || **v == '\t'))
        (*v)++, (*vl)--;
    while (*vl && ((*v)[*vl - 1] == '\r' || (*v)[*vl - 1] == '\n' || (*v)[*vl - 1] == ' '))
        (*vl)--;
    return true;
}

/* A header's decimal value; -1 if it is not one. */
static int64_t header_count(const char *v, size_t vl)
{
    int64_t n = 0;
    if (vl == 0 || vl > 18)
        return -1;
    for (size_t i = 0; i < vl; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        n = n * 10 + (v[i] - '0');
    }
    return n;
}

/* The resumable upload protocol's headers (§5.3), names matched in any case. */
static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    struct gem_client *c = ud;
    size_t len = size * n;
    const char *v;
    size_t vl;
    if (header_value(p, len, "x-goog-upload-url:", &v, &vl)) {
        if (vl >= sizeof(c->upload_url)) {
            c->upload_url_long = true;
            return len;
        }
        memcpy(c->upload_url, v, vl);
        c->upload_url[vl] = '\0';
    } else if (header_value(p, len, "x-goog-upload-status:", &v, &vl)) {
        if (vl >= sizeof(c->upload_status))
            vl = 0; /* no status we know is that long */
        memcpy(c->upload_status, v, vl);
        c->upload_status[vl] = '\0';
    } else if (header_value(p, len, "x-goog-upload-size-received:", &v, &vl)) {
        c->size_received = header_count(v, vl);
    } else if (header_value(p, len, "x-goog-upload-chunk-granularity:", &v, &vl)) {
        c->granularity = header_count(v, vl);
    }
    return len;
}

/* libcurl asks for the next bytes of a streamed body. */
static size_t on_read(char *out, size_t size, size_t n, void *ud)
{
    struct gem_body_src *src = ud;
    size_t want = size * n;
    if (want > src->len - src->pos)
        want = (size_t)(src->len - src->pos);
    if (want == 0)
        return 0;
    uint64_t at = src->off + src->pos;
    if (src->mem) {
        memcpy(out, src->mem + at, want);
        src->pos += want;
        return want;
    }
    ssize_t got;
    do
        got = pread(src->fd, out, want, (off_t)at);
    while (got < 0 && errno == EINTR);
    if (got <= 0) {
        if (got < 0)
            src->read_errno = errno;
        else
            src->short_read = true;
        return CURL_READFUNC_ABORT;
    }
    src->pos += (uint64_t)got;
    return (size_t)got;
}

/* ---- one request ---- */

static bool add_header(struct curl_slist **hl, const char *h)
{
    struct curl_slist *t = curl_slist_append(*hl, h);
    if (!t)
        return false;
    *hl = t;
    return true;
}

static bool request_headers(const struct gem_client *c, const struct req *r, struct curl_slist **hl)
{
    /* "Expect:" turns off 100-continue: one round trip, and bytes sent mean bytes sent */
    bool ok = add_header(hl, c->key_hdr) && add_header(hl, "Expect:");
    if (ok && r->ctype)
        ok = add_header(hl, r->ctype);
    for (size_t i = 0; ok && r->headers && r->headers[i]; i++)
        ok = add_header(hl, r->headers[i]);
    return ok;
}

/* Progress callback (about once a second, and as data moves): a non-zero
 * return ends the transfer (shutdown past its deadline, or the tick of a
 * streamed download said stop). */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    struct gem_client *c = arg;
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    if (c->abort && atomic_load(c->abort))
        return 1;
    if (c->tick) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        if (now - c->tick_ms >= 1000) {
            c->tick_ms = now;
            if (!c->tick(c->tick_ud))
                return 1;
        }
    }
    return 0;
}

static void set_options(struct gem_client *c, const struct req *r, struct sink *s,
                        struct curl_slist *hl)
{
    CURL *h = c->curl;
    curl_easy_reset(h); /* keeps the connection cache */
    curl_easy_setopt(h, CURLOPT_URL, r->url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    if (r->stall_only) { /* under 1 byte/s for the whole stall time: ended */
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 0L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (c->stall_timeout_ms + 999) / 1000);
    } else {
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    }
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "embedd-gemini-client");
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
    if (c->abort || c->tick) {
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, c);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    }
    if (r->src) {
        r->src->pos = 0;
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->src->len);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, r->src);
        /* No CURLOPT_SEEKFUNCTION, on purpose: when a reused connection dies before any
         * answer, libcurl would rewind and send the piece again by itself, though the upload
         * session may have kept part of it (a second send at the same offset is refused).
         * Unable to rewind, it fails instead, and the caller asks the session its offset. */
    } else if (r->body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->len);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body);
    }
    if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "POST") != 0)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
    /* A create goes on a connection of its own. On a reused connection that dies before any
     * byte of the answer arrives, libcurl sends the request again by itself (it cannot tell an
     * idle connection the server had closed from one that closed after acting on the
     * request): a second batch, paid twice, that we never hear of. On a new connection it
     * does not; the create fails as GEM_UNKNOWN and is reconciled by its displayName
     * (tests/sim/test_create_once.c). */
    if (r->kind == REQ_CREATE)
        curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
}

/* A non-2xx status: the server answered, so it decides. */
static void classify_http(struct gem_client *c, const struct req *r, struct gem_call *res)
{
    const struct buf *b = &c->err_body;
    gem_parse_error(b->data ? b->data : "", b->len, (int)res->http, &res->status);
    flatten(res->status.message);
    redact(c, res->status.message);
    long h = res->http;
    bool transient = h == 408 || h == 429 || (h >= 500 && h <= 599);
    res->outcome = transient ? GEM_RETRY : GEM_FATAL;
    res->retry_after_ms = transient ? res->status.retry_delay_ms : -1;
    gem_client_set_detail(c, res, "%s: HTTP %ld%s%s: %.160s", r->op, h,
                          res->status.status[0] ? " " : "", res->status.status,
                          res->status.message);
}

/* No usable status: tell "never sent" (safe to repeat) from "sent, no answer". */
static void classify_transport(struct gem_client *c, const struct req *r, CURLcode rc,
                               const struct sink *s, struct gem_call *res)
{
    curl_off_t sent = 0;
    long req_size = 0;
    curl_easy_getinfo(c->curl, CURLINFO_SIZE_UPLOAD_T, &sent);
    curl_easy_getinfo(c->curl, CURLINFO_REQUEST_SIZE, &req_size);
    bool create = r->kind == REQ_CREATE;
    bool no_conn = rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
                   rc == CURLE_COULDNT_RESOLVE_PROXY;
    /* a request whose body did not fully leave cannot have been acted upon */
    bool has_body = r->body || r->src;
    uint64_t body_len = r->src ? r->src->len : r->len;
    bool whole = has_body ? sent >= (curl_off_t)body_len && req_size > 0 : req_size > 0;
    bool unsent = no_conn || (res->http == 0 && !whole);
    const char *why = c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc);
    const char *maybe = create ? "; the batch may exist" : "";
    if (r->src && (r->src->read_errno || r->src->short_read)) {
        /* our own file failed us: sending it again would fail the same way */
        char why_read[128] = "the file ended early";
        if (r->src->read_errno && strerror_r(r->src->read_errno, why_read, sizeof(why_read)) != 0)
            snprintf(why_read, sizeof(why_read), "errno %d", r->src->read_errno);
        res->outcome = GEM_FATAL;
        gem_client_set_detail(c, res, "%s: could not read the file to send at byte %llu: %s", r->op,
                              (unsigned long long)(r->src->off + r->src->pos), why_read);
    } else if (rc == CURLE_WRITE_ERROR && s->refused) {
        /* the caller's feed knows why; it sets the outcome after this */
        res->outcome = create ? GEM_UNKNOWN : GEM_RETRY;
        gem_client_set_detail(c, res, "%s: the response body was refused%s", r->op, maybe);
    } else if (rc == CURLE_WRITE_ERROR && (s->overflow || s->oom)) {
        res->outcome = create ? GEM_UNKNOWN : s->oom ? GEM_RETRY : GEM_FATAL;
        if (s->oom)
            gem_client_set_detail(c, res, "%s: out of memory reading the response%s", r->op, maybe);
        else
            gem_client_set_detail(c, res, "%s: response larger than %zu bytes%s", r->op, s->ok->max,
                                  maybe);
    } else if (unsent) {
        res->outcome = GEM_RETRY;
        if (rc == CURLE_COULDNT_CONNECT)
            gem_client_set_detail(c, res, "%s: could not connect: %.200s", r->op, why);
        else if (rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_RESOLVE_PROXY)
            gem_client_set_detail(c, res, "%s: could not resolve host: %.200s", r->op, why);
        else if (rc == CURLE_OPERATION_TIMEDOUT)
            gem_client_set_detail(c, res, "%s: timed out before the request was sent: %.180s",
                                  r->op, why);
        else
            gem_client_set_detail(c, res, "%s: request not sent: %.200s", r->op, why);
    } else {
        res->outcome = create ? GEM_UNKNOWN : GEM_RETRY;
        if (rc == CURLE_OPERATION_TIMEDOUT && r->stall_only)
            gem_client_set_detail(c, res, "%s: no data for %ld ms%s", r->op, c->stall_timeout_ms,
                                  maybe);
        else if (rc == CURLE_OPERATION_TIMEDOUT)
            gem_client_set_detail(c, res, "%s: timed out after %ld ms waiting for the response%s",
                                  r->op, c->timeout_ms, maybe);
        else
            gem_client_set_detail(c, res, "%s: no complete response: %.160s%s", r->op, why, maybe);
    }
}

/*
 * Perform one request and classify it into res. Returns true only for a
 * complete 2xx response, whose body is then in r->sink (or c->body).
 */
bool gem_client_perform(struct gem_client *c, const struct req *r, struct gem_call *res)
{
    call_init(res);
    struct buf *ok = r->sink ? r->sink : &c->body;
    if (c->body.cap > BODY_KEEP_MAX)
        buf_cleanup(&c->body);
    buf_reset(&c->body);
    buf_reset(&c->err_body);
    c->upload_url[0] = '\0';
    c->upload_url_long = false;
    c->upload_status[0] = '\0';
    c->size_received = -1;
    c->granularity = -1;
    c->errbuf[0] = '\0';
    if (!c->key_usable) {
        res->outcome = GEM_FATAL;
        gem_client_set_detail(c, res, "%s: the API key contains a line break", r->op);
        return false;
    }
    struct curl_slist *hl = NULL;
    if (!request_headers(c, r, &hl)) {
        curl_slist_free_all(hl);
        res->outcome = GEM_RETRY;
        gem_client_set_detail(c, res, "%s: out of memory", r->op);
        return false;
    }
    struct sink s = {c, r, ok, NULL, false, false, false, false};
    set_options(c, r, &s, hl);
    CURLcode rc = curl_easy_perform(c->curl);
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hl);
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &res->http);
    curl_off_t up = 0, down = 0;
    curl_easy_getinfo(c->curl, CURLINFO_SIZE_UPLOAD_T, &up);
    curl_easy_getinfo(c->curl, CURLINFO_SIZE_DOWNLOAD_T, &down);
    /* a streamed body that broke off counts what it handed over (libcurl may report 0) */
    if (r->src && (curl_off_t)r->src->pos > up)
        up = (curl_off_t)r->src->pos;
    c->call_requests++;
    c->call_sent += up > 0 ? (uint64_t)up : 0;
    c->call_received += down > 0 ? (uint64_t)down : 0;
    bool is_2xx = res->http >= 200 && res->http < 300;
    if (rc == CURLE_OK && is_2xx) {
        res->outcome = GEM_OK;
        return true;
    }
    if (r->src && (r->src->read_errno || r->src->short_read))
        classify_transport(c, r, rc, &s, res);
    else if (res->http >= 300 || rc == CURLE_OK)
        classify_http(c, r, res);
    else
        classify_transport(c, r, rc, &s, res);
    return false;
}

/* ---- 2xx bodies ---- */

const char *gem_client_data_of(const struct buf *b)
{
    return b->data ? b->data : "";
}

/* Parse a whole JSON text (trailing whitespace allowed). Caller owns it; NULL if invalid. */
json_object *gem_client_parse_json(const char *p, size_t len)
{
    if (len > INT32_MAX)
        return NULL;
    struct json_tokener *tok = json_tokener_new();
    if (!tok)
        return NULL;
    json_object *o = json_tokener_parse_ex(tok, p, (int)len);
    size_t end = o ? json_tokener_get_parse_end(tok) : 0;
    while (o && end < len && (p[end] == ' ' || p[end] == '\t' || p[end] == '\r' || p[end] == '\n'))
        end++;
    if (o && (json_tokener_get_error(tok) != json_tokener_success || end != len)) {
        json_object_put(o);
        o = NULL;
    }
    json_tokener_free(tok);
    return o;
}

/*
 * A 2xx body the codec refused. For a create the batch may exist. Otherwise
 * a body that is not even JSON was most likely cut off or mangled on the
 * way (worth retrying); well-formed JSON of the wrong shape will not change
 * on a retry.
 */
void gem_client_body_unusable_as(struct gem_client *c, const struct req *r, bool json,
                                 const char *why, struct gem_call *res)
{
    if (r->kind == REQ_CREATE)
        res->outcome = GEM_UNKNOWN;
    else
        res->outcome = json ? GEM_FATAL : GEM_RETRY;
    gem_client_set_detail(c, res, "%s: HTTP %ld with %s body: %.120s%s", r->op, res->http,
                          json ? "an unexpected" : "a malformed", why,
                          r->kind == REQ_CREATE ? "; the batch may exist" : "");
}

void gem_client_body_unusable(struct gem_client *c, const struct req *r, const struct buf *b,
                              const char *why, struct gem_call *res)
{
    json_object *o = gem_client_parse_json(gem_client_data_of(b), b->len);
    bool json = o != NULL;
    json_object_put(o);
    gem_client_body_unusable_as(c, r, json, why, res);
}

/* ---- URLs and names ---- */

bool gem_client_fmt_url(char *url, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(url, n, fmt, ap);
    va_end(ap);
    return w > 0 && (size_t)w < n;
}

/* A path segment we put in URLs as is: letters, digits, '-', '_' and '.'. */
static bool valid_id(const char *id)
{
    size_t n = strspn(id, ID_CHARS);
    return n > 0 && id[n] == '\0' && strcmp(id, ".") != 0 && strcmp(id, "..") != 0;
}

/* "batches/<id>" or "files/<id>". */
bool gem_client_valid_name(const char *name, const char *prefix)
{
    size_t pl = strlen(prefix);
    return name && strncmp(name, prefix, pl) == 0 && valid_id(name + pl);
}

/* The bare model id ("models/" tolerated); NULL if unusable. */
const char *gem_client_model_id(const char *model)
{
    if (model && strncmp(model, "models/", 7) == 0)
        model += 7;
    return model && valid_id(model) ? model : NULL;
}

/* ---- calls on a name ---- */

/* POST {name}:cancel or DELETE {name}; the answer's body ({}) is not needed. */
void gem_client_name_call(struct gem_client *c, const char *what, const char *method,
                          const char *name, const char *prefix, const char *suffix,
                          struct gem_call *res)
{
    char url[URL_MAX];
    if (!gem_client_valid_name(name, prefix) ||
        !gem_client_fmt_url(url, sizeof(url), "%s/%s/%s%s", c->base, c->version, name, suffix)) {
        gem_client_reject(c, res, what,
                          strcmp(prefix, "files/") == 0 ? "invalid file name"
                                                        : "invalid batch name");
        return;
    }
    bool post = strcmp(method, "POST") == 0;
    /* a POST always carries a body: Google front ends answer 411 to one without */
    struct req r = {what,         method,
                    url,          post ? "{}" : NULL,
                    post ? 2 : 0, post ? JSON_CTYPE : NULL,
                    NULL,         REQ_SAFE,
                    NULL,         NULL,
                    NULL,         NULL,
                    false};
    gem_client_perform(c, &r, res);
}
