/* gemini_client.c: libcurl calls to Google's Gemini embedding API, each classified into a gem_call.
 */
#include "gemini/client.h"

#include "util/jsonw.h"

#include <curl/curl.h>
#include <json-c/json.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define URL_MAX       2048
#define ERR_BODY_MAX  (64 * 1024)   /* error bodies: only their head is kept */
#define BODY_KEEP_MAX (1024 * 1024) /* larger body storage is freed, not kept for reuse */
#define JSON_CTYPE    "Content-Type: application/json"
#define ID_CHARS      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."

struct gem_client {
    CURL *curl;      /* one easy handle, reused so that connections stay open */
    char *base;      /* base URL without a trailing slash */
    char *version;   /* "v1beta" or "v1" */
    char *key;       /* kept only to redact it from messages */
    char *key_hdr;   /* "x-goog-api-key: <key>" */
    bool key_usable; /* the key has no line break (which would split the header) */
    long connect_timeout_ms, timeout_ms;
    size_t max_response;
    const atomic_bool *abort;
    struct buf body;          /* 2xx body of the last request */
    struct buf err_body;      /* non-2xx body of the last request (its head) */
    char upload_url[URL_MAX]; /* X-Goog-Upload-URL of the last response; "" if none */
    bool upload_url_long;     /* the header was there but did not fit */
    char errbuf[CURL_ERROR_SIZE];
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
};

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

static void set_detail(const struct gem_client *c, struct gem_call *res, const char *fmt, ...)
    SVC_PRINTF(3, 4);

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
    c->max_response = o->max_response_bytes ? o->max_response_bytes : (size_t)1 << 30;
    c->abort = o->abort;
    buf_init(&c->body, c->max_response);
    buf_init(&c->err_body, ERR_BODY_MAX);
    return c;
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

static void set_detail(const struct gem_client *c, struct gem_call *res, const char *fmt, ...)
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
static void reject(const struct gem_client *c, struct gem_call *res, const char *op,
                   const char *why)
{
    call_init(res);
    res->outcome = GEM_FATAL;
    set_detail(c, res, "%s: %s", op, why);
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

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    struct gem_client *c = ud;
    size_t len = size * n;
    static const char name[] = "x-goog-upload-url:";
    const size_t nl = sizeof(name) - 1;
    if (len <= nl || strncasecmp(p, name, nl) != 0)
        return len;
    const char *v = p + nl;
    size_t vl = len - nl;
    while (vl && (*v == ' ' || *v == '\t'))
        v++, vl--;
    while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
        vl--;
    if (vl >= sizeof(c->upload_url)) {
        c->upload_url_long = true;
        return len;
    }
    memcpy(c->upload_url, v, vl);
    c->upload_url[vl] = '\0';
    return len;
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

/* Progress callback: a non-zero return ends the transfer (shutdown past its deadline). */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    const struct gem_client *c = arg;
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    return atomic_load(c->abort) ? 1 : 0;
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
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "embedd-gemini-client");
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
    if (c->abort) {
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, c);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    }
    if (r->body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->len);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body);
    }
    if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "POST") != 0)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
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
    set_detail(c, res, "%s: HTTP %ld%s%s: %.160s", r->op, h, res->status.status[0] ? " " : "",
               res->status.status, res->status.message);
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
    bool whole = r->body ? sent >= (curl_off_t)r->len && req_size > 0 : req_size > 0;
    bool unsent = no_conn || (res->http == 0 && !whole);
    const char *why = c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc);
    const char *maybe = create ? "; the batch may exist" : "";
    if (rc == CURLE_WRITE_ERROR && s->refused) {
        /* the caller's feed knows why; it sets the outcome after this */
        res->outcome = create ? GEM_UNKNOWN : GEM_RETRY;
        set_detail(c, res, "%s: the response body was refused%s", r->op, maybe);
    } else if (rc == CURLE_WRITE_ERROR && (s->overflow || s->oom)) {
        res->outcome = create ? GEM_UNKNOWN : s->oom ? GEM_RETRY : GEM_FATAL;
        if (s->oom)
            set_detail(c, res, "%s: out of memory reading the response%s", r->op, maybe);
        else
            set_detail(c, res, "%s: response larger than %zu bytes%s", r->op, s->ok->max, maybe);
    } else if (unsent) {
        res->outcome = GEM_RETRY;
        if (rc == CURLE_COULDNT_CONNECT)
            set_detail(c, res, "%s: could not connect: %.200s", r->op, why);
        else if (rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_RESOLVE_PROXY)
            set_detail(c, res, "%s: could not resolve host: %.200s", r->op, why);
        else if (rc == CURLE_OPERATION_TIMEDOUT)
            set_detail(c, res, "%s: timed out before the request was sent: %.180s", r->op, why);
        else
            set_detail(c, res, "%s: request not sent: %.200s", r->op, why);
    } else {
        res->outcome = create ? GEM_UNKNOWN : GEM_RETRY;
        if (rc == CURLE_OPERATION_TIMEDOUT)
            set_detail(c, res, "%s: timed out after %ld ms waiting for the response%s", r->op,
                       c->timeout_ms, maybe);
        else
            set_detail(c, res, "%s: no complete response: %.160s%s", r->op, why, maybe);
    }
}

/*
 * Perform one request and classify it into res. Returns true only for a
 * complete 2xx response, whose body is then in r->sink (or c->body).
 */
static bool perform(struct gem_client *c, const struct req *r, struct gem_call *res)
{
    call_init(res);
    struct buf *ok = r->sink ? r->sink : &c->body;
    if (c->body.cap > BODY_KEEP_MAX)
        buf_cleanup(&c->body);
    buf_reset(&c->body);
    buf_reset(&c->err_body);
    c->upload_url[0] = '\0';
    c->upload_url_long = false;
    c->errbuf[0] = '\0';
    if (!c->key_usable) {
        res->outcome = GEM_FATAL;
        set_detail(c, res, "%s: the API key contains a line break", r->op);
        return false;
    }
    struct curl_slist *hl = NULL;
    if (!request_headers(c, r, &hl)) {
        curl_slist_free_all(hl);
        res->outcome = GEM_RETRY;
        set_detail(c, res, "%s: out of memory", r->op);
        return false;
    }
    struct sink s = {c, r, ok, NULL, false, false, false, false};
    set_options(c, r, &s, hl);
    CURLcode rc = curl_easy_perform(c->curl);
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hl);
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &res->http);
    bool is_2xx = res->http >= 200 && res->http < 300;
    if (rc == CURLE_OK && is_2xx) {
        res->outcome = GEM_OK;
        return true;
    }
    if (res->http >= 300 || rc == CURLE_OK)
        classify_http(c, r, res);
    else
        classify_transport(c, r, rc, &s, res);
    return false;
}

/* ---- 2xx bodies ---- */

static const char *data_of(const struct buf *b)
{
    return b->data ? b->data : "";
}

/* Parse a whole JSON text (trailing whitespace allowed). Caller owns it; NULL if invalid. */
static json_object *parse_json(const char *p, size_t len)
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
static void body_unusable_as(struct gem_client *c, const struct req *r, bool json, const char *why,
                             struct gem_call *res)
{
    if (r->kind == REQ_CREATE)
        res->outcome = GEM_UNKNOWN;
    else
        res->outcome = json ? GEM_FATAL : GEM_RETRY;
    set_detail(c, res, "%s: HTTP %ld with %s body: %.120s%s", r->op, res->http,
               json ? "an unexpected" : "a malformed", why,
               r->kind == REQ_CREATE ? "; the batch may exist" : "");
}

static void body_unusable(struct gem_client *c, const struct req *r, const struct buf *b,
                          const char *why, struct gem_call *res)
{
    json_object *o = parse_json(data_of(b), b->len);
    bool json = o != NULL;
    json_object_put(o);
    body_unusable_as(c, r, json, why, res);
}

/* ---- URLs and names ---- */

static bool fmt_url(char *url, size_t n, const char *fmt, ...) SVC_PRINTF(3, 4);

static bool fmt_url(char *url, size_t n, const char *fmt, ...)
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
static bool valid_name(const char *name, const char *prefix)
{
    size_t pl = strlen(prefix);
    return name && strncmp(name, prefix, pl) == 0 && valid_id(name + pl);
}

/* The bare model id ("models/" tolerated); NULL if unusable. */
static const char *model_id(const char *model)
{
    if (model && strncmp(model, "models/", 7) == 0)
        model += 7;
    return model && valid_id(model) ? model : NULL;
}

/* scheme://host:port of a URL (port made explicit), for same-origin checks. */
static bool url_origin(const char *url, char *out, size_t n)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    bool ok = u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK;
    if (ok) {
        int w = snprintf(out, n, "%s://%s:%s", scheme, host, port);
        ok = w > 0 && (size_t)w < n;
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return ok;
}

/* ---- batches ---- */

void gem_create_batch(struct gem_client *c, const char *model, const char *body, size_t len,
                      struct gem_operation *op, struct gem_call *res)
{
    static const char what[] = "create batch";
    char url[URL_MAX], err[256] = "";
    memset(op, 0, sizeof(*op));
    const char *id = model_id(model);
    if (!id || !body) {
        reject(c, res, what, !id ? "invalid model id" : "no request body");
        return;
    }
    if (!fmt_url(url, sizeof(url), "%s/%s/models/%s:asyncBatchEmbedContent", c->base, c->version,
                 id)) {
        reject(c, res, what, "URL too long");
        return;
    }
    struct req r = {what, "POST", url, body, len, JSON_CTYPE, NULL, REQ_CREATE, NULL, NULL, NULL};
    if (perform(c, &r, res) &&
        !gem_parse_operation(data_of(&c->body), c->body.len, op, err, sizeof(err)))
        body_unusable(c, &r, &c->body, err, res);
}

/* A batch GET's body, parsed as it arrives (never held whole), within the client's cap. */
struct op_feed {
    struct gem_op_stream st;
    size_t seen, max;
    bool over;
};

static bool op_feed(void *ud, const char *p, size_t n)
{
    struct op_feed *f = ud;
    if (n > f->max - f->seen) {
        f->over = true;
        return false;
    }
    f->seen += n;
    return gem_op_stream_feed(&f->st, p, n);
}

void gem_get_batch(struct gem_client *c, const char *name, struct gem_operation *op,
                   struct gem_call *res)
{
    static const char what[] = "get batch";
    char url[URL_MAX], err[256] = "";
    memset(op, 0, sizeof(*op));
    if (!valid_name(name, "batches/") ||
        !fmt_url(url, sizeof(url), "%s/%s/%s", c->base, c->version, name)) {
        reject(c, res, what, "invalid batch name");
        return;
    }
    /* a succeeded batch's body holds its inline results: hundreds of MB */
    struct op_feed f = {.max = c->max_response};
    gem_op_stream_init(&f.st);
    struct req r = {what, "GET", url, NULL, 0, NULL, NULL, REQ_SAFE, NULL, op_feed, &f};
    bool json = false, limit = false;
    const char *why;
    if (perform(c, &r, res)) {
        if (!gem_op_stream_finish(&f.st, op, &json, err, sizeof(err)))
            body_unusable_as(c, &r, json, err, res);
    } else if (f.over) {
        res->outcome = GEM_FATAL;
        set_detail(c, res, "%s: response larger than %zu bytes", what, f.max);
    } else if ((why = gem_op_stream_error(&f.st, &limit))) {
        /* refused on the way: mangled (worth another GET) or beyond reason */
        body_unusable_as(c, &r, limit, why, res);
        if (limit)
            res->outcome = GEM_FATAL;
    }
    gem_op_stream_cleanup(&f.st);
}

void gem_list_batches(struct gem_client *c, int page_size, const char *page_token,
                      struct gem_operation **ops, size_t *n, char *next_token, size_t token_len,
                      struct gem_call *res)
{
    static const char what[] = "list batches";
    char err[256] = "";
    *ops = NULL;
    *n = 0;
    if (token_len)
        next_token[0] = '\0';
    struct buf url;
    buf_init(&url, URL_MAX);
    char *esc = page_token && *page_token ? curl_easy_escape(c->curl, page_token, 0) : NULL;
    bool built = (esc || !page_token || !*page_token) &&
                 buf_printf(&url, "%s/%s/batches", c->base, c->version);
    char sep = '?';
    if (built && page_size > 0) {
        built = buf_printf(&url, "?pageSize=%d", page_size);
        sep = '&';
    }
    if (built && esc)
        built = buf_printf(&url, "%cpageToken=%s", sep, esc);
    curl_free(esc);
    if (!built) {
        buf_cleanup(&url);
        reject(c, res, what, "page token too long");
        return;
    }
    struct req r = {what, "GET", url.data, NULL, 0, NULL, NULL, REQ_SAFE, NULL, NULL, NULL};
    if (perform(c, &r, res) && !gem_parse_list(data_of(&c->body), c->body.len, ops, n, next_token,
                                               token_len, err, sizeof(err)))
        body_unusable(c, &r, &c->body, err, res);
    buf_cleanup(&url);
}

/* POST {name}:cancel or DELETE {name}; the answer's body ({}) is not needed. */
static void name_call(struct gem_client *c, const char *what, const char *method, const char *name,
                      const char *prefix, const char *suffix, struct gem_call *res)
{
    char url[URL_MAX];
    if (!valid_name(name, prefix) ||
        !fmt_url(url, sizeof(url), "%s/%s/%s%s", c->base, c->version, name, suffix)) {
        reject(c, res, what,
               strcmp(prefix, "files/") == 0 ? "invalid file name" : "invalid batch name");
        return;
    }
    bool post = strcmp(method, "POST") == 0;
    /* a POST always carries a body: Google front ends answer 411 to one without */
    struct req r = {what,         method,
                    url,          post ? "{}" : NULL,
                    post ? 2 : 0, post ? JSON_CTYPE : NULL,
                    NULL,         REQ_SAFE,
                    NULL,         NULL,
                    NULL};
    perform(c, &r, res);
}

void gem_cancel_batch(struct gem_client *c, const char *name, struct gem_call *res)
{
    name_call(c, "cancel batch", "POST", name, "batches/", ":cancel", res);
}

void gem_delete_batch(struct gem_client *c, const char *name, struct gem_call *res)
{
    name_call(c, "delete batch", "DELETE", name, "batches/", "", res);
}

void gem_embed_sync(struct gem_client *c, const char *model, const char *body, size_t len,
                    struct gem_result **results, size_t *n, struct gem_call *res)
{
    static const char what[] = "embed";
    char url[URL_MAX], err[256] = "";
    *results = NULL;
    *n = 0;
    const char *id = model_id(model);
    if (!id || !body ||
        !fmt_url(url, sizeof(url), "%s/%s/models/%s:batchEmbedContents", c->base, c->version, id)) {
        reject(c, res, what, !body ? "no request body" : "invalid model id");
        return;
    }
    struct req r = {what, "POST", url, body, len, JSON_CTYPE, NULL, REQ_SAFE, NULL, NULL, NULL};
    if (perform(c, &r, res) &&
        !gem_parse_sync(data_of(&c->body), c->body.len, results, n, err, sizeof(err)))
        body_unusable(c, &r, &c->body, err, res);
}

/* ---- files ---- */

/* Step 1 of a resumable upload: returns the session URL in session. */
static bool upload_start(struct gem_client *c, const char *display_name, size_t len, char *session,
                         size_t session_len, struct gem_call *res)
{
    static const char what[] = "upload start";
    char url[URL_MAX], size_hdr[96], base_origin[512], up_origin[512];
    struct buf meta;
    buf_init(&meta, 4096);
    bool built = buf_puts(&meta, "{\"file\":{\"displayName\":") &&
                 jsonw_cstr(&meta, display_name ? display_name : "") && buf_puts(&meta, "}}");
    if (!built || !fmt_url(url, sizeof(url), "%s/upload/%s/files", c->base, c->version)) {
        buf_cleanup(&meta);
        reject(c, res, what, "display name too long");
        return false;
    }
    snprintf(size_hdr, sizeof(size_hdr), "X-Goog-Upload-Header-Content-Length: %zu", len);
    const char *hdrs[] = {"X-Goog-Upload-Protocol: resumable", "X-Goog-Upload-Command: start",
                          size_hdr, "X-Goog-Upload-Header-Content-Type: application/jsonl", NULL};
    struct req r = {what, "POST",   url,  meta.data, meta.len, JSON_CTYPE,
                    hdrs, REQ_SAFE, NULL, NULL,      NULL};
    bool ok = perform(c, &r, res);
    buf_cleanup(&meta);
    if (!ok)
        return false;
    const char *bad = NULL;
    if (!c->upload_url[0])
        bad = c->upload_url_long ? "X-Goog-Upload-URL too long" : "no X-Goog-Upload-URL";
    /* the session URL gets the API key: it must point where the key already goes */
    else if (!url_origin(c->base, base_origin, sizeof(base_origin)) ||
             !url_origin(c->upload_url, up_origin, sizeof(up_origin)) ||
             strcasecmp(base_origin, up_origin) != 0)
        bad = "X-Goog-Upload-URL is not on the API host";
    else if (snprintf(session, session_len, "%s", c->upload_url) >= (int)session_len)
        bad = "X-Goog-Upload-URL too long";
    if (bad) {
        res->outcome = GEM_FATAL;
        set_detail(c, res, "%s: HTTP %ld: %s", what, res->http, bad);
    }
    return !bad;
}

/* The file's "name" from an upload's final {"file":{...}} answer. */
static bool upload_name(const struct buf *b, char *out, size_t n)
{
    json_object *o = parse_json(data_of(b), b->len), *file = NULL, *name = NULL;
    bool ok = o && json_object_object_get_ex(o, "file", &file) &&
              json_object_object_get_ex(file, "name", &name) &&
              json_object_is_type(name, json_type_string) &&
              valid_name(json_object_get_string(name), "files/") &&
              (size_t)json_object_get_string_len(name) < n;
    if (ok)
        snprintf(out, n, "%s", json_object_get_string(name));
    json_object_put(o);
    return ok;
}

void gem_upload_file(struct gem_client *c, const char *display_name, const char *data, size_t len,
                     char *name_out, size_t name_len, struct gem_call *res)
{
    static const char what[] = "upload";
    char session[URL_MAX];
    if (name_len)
        name_out[0] = '\0';
    if (!upload_start(c, display_name, len, session, sizeof(session), res))
        return;
    const char *hdrs[] = {"X-Goog-Upload-Offset: 0", "X-Goog-Upload-Command: upload, finalize",
                          NULL};
    struct req r = {what,
                    "POST",
                    session,
                    data ? data : "",
                    data ? len : 0,
                    "Content-Type: application/octet-stream",
                    hdrs,
                    REQ_SAFE,
                    NULL,
                    NULL,
                    NULL};
    if (perform(c, &r, res) && !upload_name(&c->body, name_out, name_len)) {
        if (name_len)
            name_out[0] = '\0';
        body_unusable(c, &r, &c->body, "no usable file name", res);
    }
}

static void download(struct gem_client *c, const char *name, struct buf *out,
                     bool (*feed)(void *, const char *, size_t), void *ud, struct gem_call *res)
{
    static const char what[] = "download";
    char url[URL_MAX];
    if (!valid_name(name, "files/") ||
        !fmt_url(url, sizeof(url), "%s/%s/%s:download?alt=media", c->base, c->version, name)) {
        reject(c, res, what, "invalid file name");
        return;
    }
    size_t keep = out ? out->len : 0;
    struct req r = {what, "GET", url, NULL, 0, NULL, NULL, REQ_SAFE, out, feed, ud};
    if (!perform(c, &r, res) && out) {
        out->len = keep; /* nothing of a failed download stays in out */
        if (out->data)
            out->data[keep] = '\0';
    }
}

void gem_download_file(struct gem_client *c, const char *name, struct buf *out,
                       struct gem_call *res)
{
    download(c, name, out, NULL, NULL, res);
}

void gem_download_stream(struct gem_client *c, const char *name,
                         bool (*feed)(void *ud, const char *p, size_t n), void *ud,
                         struct gem_call *res)
{
    download(c, name, NULL, feed, ud, res);
}

void gem_delete_file(struct gem_client *c, const char *name, struct gem_call *res)
{
    name_call(c, "delete file", "DELETE", name, "files/", "", res);
}
