/* gemini_client.c: libcurl calls to the Gemini embedding API (see gemini_client.h). */
#include "gemini_client.h"

#include "util/jsonw.h"

#include <curl/curl.h>
#include <json-c/json.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct gem_client {
    CURL *curl;
    char *base;    /* base URL without a trailing slash */
    char *version; /* "v1beta" */
    char key_header[320];
    long connect_timeout_ms, timeout_ms;
    size_t max_response;
    struct buf body;       /* last response body */
    char upload_url[1024]; /* X-Goog-Upload-URL of the last response */
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
    c->curl = curl_easy_init();
    c->base = strdup(o->base_url);
    c->version = strdup(o->api_version);
    if (!c->curl || !c->base || !c->version) {
        gem_client_free(c);
        return NULL;
    }
    size_t bl = strlen(c->base);
    while (bl > 0 && c->base[bl - 1] == '/')
        c->base[--bl] = '\0';
    snprintf(c->key_header, sizeof(c->key_header), "x-goog-api-key: %s", o->api_key);
    c->connect_timeout_ms = o->connect_timeout_ms ? o->connect_timeout_ms : 10000;
    c->timeout_ms = o->timeout_ms ? o->timeout_ms : 300000;
    c->max_response = o->max_response_bytes ? o->max_response_bytes : (size_t)1 << 30;
    buf_init(&c->body, c->max_response);
    return c;
}

void gem_client_free(struct gem_client *c)
{
    if (!c)
        return;
    if (c->curl)
        curl_easy_cleanup(c->curl);
    free(c->base);
    free(c->version);
    memset(c->key_header, 0, sizeof(c->key_header));
    buf_cleanup(&c->body);
    free(c);
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct buf *b = ud;
    return buf_append(b, p, size * n) ? size * n : 0; /* past the cap: abort the transfer */
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    struct gem_client *c = ud;
    size_t len = size * n;
    static const char name[] = "x-goog-upload-url:";
    if (len > sizeof(name) - 1 && strncasecmp(p, name, sizeof(name) - 1) == 0) {
        const char *v = p + sizeof(name) - 1;
        size_t vl = len - (sizeof(name) - 1);
        while (vl && (*v == ' ' || *v == '\t')) {
            v++;
            vl--;
        }
        while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
            vl--;
        if (vl < sizeof(c->upload_url)) {
            memcpy(c->upload_url, v, vl);
            c->upload_url[vl] = '\0';
        }
    }
    return len;
}

enum req_kind { REQ_SAFE, REQ_CREATE };

/*
 * Perform one request. body may be NULL (GET/DELETE). extra: NULL-terminated
 * header list. Fills res and leaves the response body in c->body.
 */
static bool perform(struct gem_client *c, const char *method, const char *url, const char *body,
                    size_t len, const char *const *extra, enum req_kind kind, struct gem_call *res)
{
    memset(res, 0, sizeof(*res));
    res->retry_after_ms = -1;
    res->status.retry_delay_ms = -1;
    buf_reset(&c->body);
    c->upload_url[0] = '\0';
    CURL *h = c->curl;
    curl_easy_reset(h);
    struct curl_slist *hl = curl_slist_append(NULL, c->key_header);
    hl = curl_slist_append(hl, "Content-Type: application/json");
    hl = curl_slist_append(hl, "Expect:");
    for (size_t i = 0; extra && extra[i]; i++)
        hl = curl_slist_append(hl, extra[i]);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &c->body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "GET") == 0)
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(hl);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &res->http);
    curl_off_t sent = 0;
    curl_easy_getinfo(h, CURLINFO_SIZE_UPLOAD_T, &sent);
    if (rc != CURLE_OK) {
        /* never echo the URL's query or headers: the detail is the curl reason only */
        snprintf(res->detail, sizeof(res->detail), "%s %s: %s", method,
                 kind == REQ_CREATE ? "create" : "request", curl_easy_strerror(rc));
        bool nothing_sent =
            rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
            rc == CURLE_COULDNT_RESOLVE_PROXY ||
            (rc == CURLE_OPERATION_TIMEDOUT && sent == 0 && res->http == 0 && (!body || len > 0));
        res->outcome = kind == REQ_CREATE && !nothing_sent ? GEM_UNKNOWN : GEM_RETRY;
        if (rc == CURLE_WRITE_ERROR) {
            snprintf(res->detail, sizeof(res->detail), "response larger than %zu bytes",
                     c->max_response);
            res->outcome = kind == REQ_CREATE ? GEM_UNKNOWN : GEM_FATAL;
        }
        return false;
    }
    if (res->http >= 200 && res->http < 300) {
        res->outcome = GEM_OK;
        return true;
    }
    gem_parse_error(c->body.data ? c->body.data : "", c->body.len, (int)res->http, &res->status);
    res->retry_after_ms = res->status.retry_delay_ms;
    bool transient = res->http == 408 || res->http == 429 || res->http >= 500;
    res->outcome = transient ? GEM_RETRY : GEM_FATAL;
    snprintf(res->detail, sizeof(res->detail), "HTTP %ld %s: %.180s", res->http, res->status.status,
             res->status.message);
    return false;
}

/* A 2xx whose body does not parse: unknown for a create, retryable otherwise. */
static void bad_body(struct gem_call *res, enum req_kind kind, const char *why)
{
    res->outcome = kind == REQ_CREATE ? GEM_UNKNOWN : GEM_RETRY;
    snprintf(res->detail, sizeof(res->detail), "unusable response: %.200s", why);
}

void gem_create_batch(struct gem_client *c, const char *model, const char *body, size_t len,
                      struct gem_operation *op, struct gem_call *res)
{
    char url[1024], err[256] = "";
    memset(op, 0, sizeof(*op));
    snprintf(url, sizeof(url), "%s/%s/models/%s:asyncBatchEmbedContent", c->base, c->version,
             model);
    if (perform(c, "POST", url, body, len, NULL, REQ_CREATE, res) &&
        !gem_parse_operation(c->body.data, c->body.len, op, err, sizeof(err)))
        bad_body(res, REQ_CREATE, err);
}

void gem_get_batch(struct gem_client *c, const char *name, struct gem_operation *op,
                   struct gem_call *res)
{
    char url[1024], err[256] = "";
    memset(op, 0, sizeof(*op));
    snprintf(url, sizeof(url), "%s/%s/%s", c->base, c->version, name);
    if (perform(c, "GET", url, NULL, 0, NULL, REQ_SAFE, res) &&
        !gem_parse_operation(c->body.data, c->body.len, op, err, sizeof(err)))
        bad_body(res, REQ_SAFE, err);
}

void gem_list_batches(struct gem_client *c, int page_size, const char *page_token,
                      struct gem_operation **ops, size_t *n, char *next_token, size_t token_len,
                      struct gem_call *res)
{
    char url[2048], err[256] = "";
    *ops = NULL;
    *n = 0;
    next_token[0] = '\0';
    int len =
        snprintf(url, sizeof(url), "%s/%s/batches?pageSize=%d", c->base, c->version, page_size);
    if (page_token && *page_token) {
        char *esc = curl_easy_escape(c->curl, page_token, 0);
        if (esc)
            snprintf(url + len, sizeof(url) - (size_t)len, "&pageToken=%s", esc);
        curl_free(esc);
    }
    if (perform(c, "GET", url, NULL, 0, NULL, REQ_SAFE, res) &&
        !gem_parse_list(c->body.data, c->body.len, ops, n, next_token, token_len, err, sizeof(err)))
        bad_body(res, REQ_SAFE, err);
}

void gem_cancel_batch(struct gem_client *c, const char *name, struct gem_call *res)
{
    char url[1024];
    snprintf(url, sizeof(url), "%s/%s/%s:cancel", c->base, c->version, name);
    perform(c, "POST", url, "{}", 2, NULL, REQ_SAFE, res);
}

void gem_delete_batch(struct gem_client *c, const char *name, struct gem_call *res)
{
    char url[1024];
    snprintf(url, sizeof(url), "%s/%s/%s", c->base, c->version, name);
    perform(c, "DELETE", url, NULL, 0, NULL, REQ_SAFE, res);
}

void gem_embed_sync(struct gem_client *c, const char *model, const char *body, size_t len,
                    struct gem_result **results, size_t *n, struct gem_call *res)
{
    char url[1024], err[256] = "";
    *results = NULL;
    *n = 0;
    snprintf(url, sizeof(url), "%s/%s/models/%s:batchEmbedContents", c->base, c->version, model);
    if (perform(c, "POST", url, body, len, NULL, REQ_SAFE, res) &&
        !gem_parse_sync(c->body.data, c->body.len, results, n, err, sizeof(err)))
        bad_body(res, REQ_SAFE, err);
}

/* The "file.name" of an upload's final response. */
static bool upload_name(const struct buf *b, char *out, size_t n)
{
    json_object *o = b->data ? json_tokener_parse(b->data) : NULL;
    json_object *file = NULL, *name = NULL;
    bool ok = o && json_object_object_get_ex(o, "file", &file) &&
              json_object_object_get_ex(file, "name", &name) &&
              json_object_is_type(name, json_type_string) &&
              (size_t)json_object_get_string_len(name) < n;
    if (ok)
        snprintf(out, n, "%s", json_object_get_string(name));
    json_object_put(o);
    return ok;
}

void gem_upload_file(struct gem_client *c, const char *display_name, const char *data, size_t len,
                     char *name_out, size_t name_len, struct gem_call *res)
{
    char url[1024], h1[96];
    name_out[0] = '\0';
    snprintf(url, sizeof(url), "%s/upload/%s/files", c->base, c->version);
    snprintf(h1, sizeof(h1), "X-Goog-Upload-Header-Content-Length: %zu", len);
    struct buf meta;
    buf_init(&meta, 4096);
    if (!(buf_puts(&meta, "{\"file\":{\"displayName\":") && jsonw_cstr(&meta, display_name) &&
          buf_puts(&meta, "}}"))) {
        buf_cleanup(&meta);
        memset(res, 0, sizeof(*res));
        res->outcome = GEM_FATAL;
        snprintf(res->detail, sizeof(res->detail), "display name too long");
        return;
    }
    const char *start[] = {"X-Goog-Upload-Protocol: resumable", "X-Goog-Upload-Command: start", h1,
                           "X-Goog-Upload-Header-Content-Type: application/jsonl", NULL};
    bool ok = perform(c, "POST", url, meta.data, meta.len, start, REQ_SAFE, res);
    buf_cleanup(&meta);
    if (!ok)
        return;
    if (!c->upload_url[0]) {
        bad_body(res, REQ_SAFE, "no X-Goog-Upload-URL in the response");
        return;
    }
    char upload[1024];
    snprintf(upload, sizeof(upload), "%s", c->upload_url);
    const char *fin[] = {"X-Goog-Upload-Offset: 0", "X-Goog-Upload-Command: upload, finalize",
                         NULL};
    if (perform(c, "POST", upload, data, len, fin, REQ_SAFE, res) &&
        !upload_name(&c->body, name_out, name_len))
        bad_body(res, REQ_SAFE, "no file name in the upload response");
}

void gem_download_file(struct gem_client *c, const char *name, struct buf *out,
                       struct gem_call *res)
{
    char url[1024];
    snprintf(url, sizeof(url), "%s/%s/%s:download?alt=media", c->base, c->version, name);
    if (perform(c, "GET", url, NULL, 0, NULL, REQ_SAFE, res) &&
        !buf_append(out, c->body.data ? c->body.data : "", c->body.len)) {
        res->outcome = GEM_FATAL;
        snprintf(res->detail, sizeof(res->detail), "download larger than the buffer");
    }
}

void gem_delete_file(struct gem_client *c, const char *name, struct gem_call *res)
{
    char url[1024];
    snprintf(url, sizeof(url), "%s/%s/%s", c->base, c->version, name);
    perform(c, "DELETE", url, NULL, 0, NULL, REQ_SAFE, res);
}
