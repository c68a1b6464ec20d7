/* files.c: the Gemini Files API (resumable upload in pieces with resume, file get and list,
 * download whole or streamed, delete), on the transport of client.c. */
#include "gemini/client_internal.h"

#include "util/jsonw.h"

#include <curl/curl.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define PIECE_DEFAULT      ((size_t)8 << 20) /* what Google's SDKs send */
#define ATTEMPTS_DEFAULT   5
#define BACKOFF_DEFAULT_MS 1000L
#define BACKOFF_MAX_MS     30000L
#define GRANULARITY_MAX    ((int64_t)256 << 20) /* an announced granularity beyond this is ignored */
#define PAUSE_STEP_MS      50L                  /* how often a pause looks at the abort flag */

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

/* Step 1 of a resumable upload: returns the session URL in session. */
static bool upload_start(struct gem_client *c, const char *display_name, uint64_t len,
                         char *session, size_t session_len, struct gem_call *res)
{
    static const char what[] = "upload start";
    char url[URL_MAX], size_hdr[96], base_origin[512], up_origin[512];
    struct buf meta;
    buf_init(&meta, 4096);
    bool built = buf_puts(&meta, "{\"file\":{\"displayName\":") &&
                 jsonw_cstr(&meta, display_name ? display_name : "") && buf_puts(&meta, "}}");
    if (!built ||
        !gem_client_fmt_url(url, sizeof(url), "%s/upload/%s/files", c->base, c->version)) {
        buf_cleanup(&meta);
        gem_client_reject(c, res, what, "display name too long");
        return false;
    }
    snprintf(size_hdr, sizeof(size_hdr), "X-Goog-Upload-Header-Content-Length: %llu",
             (unsigned long long)len);
    const char *hdrs[] = {"X-Goog-Upload-Protocol: resumable", "X-Goog-Upload-Command: start",
                          size_hdr, "X-Goog-Upload-Header-Content-Type: application/jsonl", NULL};
    struct req r = {what,     "POST", url,  meta.data, meta.len, JSON_CTYPE, hdrs,
                    REQ_SAFE, NULL,   NULL, NULL,      NULL,     false};
    bool ok = gem_client_perform(c, &r, res);
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
        gem_client_set_detail(c, res, "%s: HTTP %ld: %s", what, res->http, bad);
    }
    return !bad;
}

/* One upload in progress. */
struct upload {
    struct gem_client *c;
    int fd;          /* the file, read with pread... */
    const char *mem; /* ...or the bytes in memory */
    uint64_t len;
    uint64_t piece; /* bytes per upload request */
    int max_attempts;
    long backoff_ms, backoff_max_ms;
    char session[URL_MAX];
    char *name_out;
    size_t name_len;
};

/* Send bytes [off, off + n) as one piece, the last one finalizing. */
static bool send_piece(struct upload *u, uint64_t off, uint64_t n, bool last, struct gem_call *res)
{
    char off_hdr[64];
    snprintf(off_hdr, sizeof(off_hdr), "X-Goog-Upload-Offset: %llu", (unsigned long long)off);
    const char *hdrs[] = {
        off_hdr, last ? "X-Goog-Upload-Command: upload, finalize" : "X-Goog-Upload-Command: upload",
        NULL};
    struct gem_body_src src = {u->fd, u->mem, off, n, 0, 0, false};
    struct req r = {
        "upload", "POST",   u->session, NULL, 0,    "Content-Type: application/octet-stream",
        hdrs,     REQ_SAFE, NULL,       NULL, NULL, &src,
        false};
    return gem_client_perform(u->c, &r, res);
}

/* Ask the session how much of the file it has (X-Goog-Upload-Size-Received). */
static bool send_query(struct upload *u, struct gem_call *res)
{
    const char *hdrs[] = {"X-Goog-Upload-Command: query", NULL};
    struct req r = {"upload query", "POST", u->session, "",   0,    NULL, hdrs,
                    REQ_SAFE,       NULL,   NULL,       NULL, NULL, false};
    return gem_client_perform(u->c, &r, res);
}

/* The session is final: the file's name from its {"file":{...}} answer. */
static void take_final(struct upload *u, const char *op, struct gem_call *res)
{
    struct gem_client *c = u->c;
    struct gem_file f;
    char err[200] = "";
    if (gem_parse_file(gem_client_data_of(&c->body), c->body.len, &f, err, sizeof(err))) {
        if (strlen(f.name) < u->name_len) {
            memcpy(u->name_out, f.name, strlen(f.name) + 1);
            return;
        }
        res->outcome = GEM_FATAL;
        gem_client_set_detail(c, res, "%s: the file name does not fit in %zu bytes", op,
                              u->name_len);
        return;
    }
    if (c->body.len == 0) {
        /* the file is there but unnamed: it can be found (and deleted) by its displayName */
        res->outcome = GEM_RETRY;
        gem_client_set_detail(c, res, "%s: the upload is final but its answer names no file", op);
        return;
    }
    struct req r = {op,       "POST", u->session, NULL, 0,    NULL, NULL,
                    REQ_SAFE, NULL,   NULL,       NULL, NULL, false};
    gem_client_body_unusable(c, &r, &c->body, err, res);
}

static bool aborted(const struct gem_client *c)
{
    return c->abort && atomic_load(c->abort);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleep before attempt n (1-based) after a failure: exponential, capped, with up to a quarter of
 * jitter, at least a RetryInfo delay; cut short by the abort flag. */
static void pause_before(const struct upload *u, int n, int64_t retry_after_ms)
{
    int64_t d = u->backoff_ms;
    for (int i = 1; i < n && d < u->backoff_max_ms; i++)
        d *= 2;
    if (d > u->backoff_max_ms)
        d = u->backoff_max_ms;
    /* the clients of several workers that failed together do not retry together */
    uint64_t mix = ((uint64_t)now_ms() ^ (uint64_t)(uintptr_t)u->c) * 0x9e3779b97f4a7c15ULL;
    d -= (int64_t)((mix >> 40) % (uint64_t)(d / 4 + 1));
    if (retry_after_ms > d)
        d = retry_after_ms < u->backoff_max_ms ? retry_after_ms : u->backoff_max_ms;
    for (int64_t end = now_ms() + d; !aborted(u->c);) {
        int64_t left = end - now_ms();
        if (left <= 0)
            break;
        if (left > PAUSE_STEP_MS)
            left = PAUSE_STEP_MS;
        struct timespec ts = {0, (long)left * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* Keep what went wrong last, and say where the upload stood. */
static void give_up(struct upload *u, struct gem_call *res, uint64_t off, int tries)
{
    char last[sizeof(res->detail)];
    memcpy(last, res->detail, sizeof(last));
    gem_client_set_detail(u->c, res, "%.190s (gave up at byte %llu of %llu after %d tries)", last,
                          (unsigned long long)off, (unsigned long long)u->len, tries);
}

/*
 * Send the pieces from offset 0. After a broken piece (GEM_RETRY), or an
 * answer without the status it should carry, ask the session where it
 * stands and go on from there; max_attempts such tries in a row without
 * progress give up. Any other failure ends the upload at once.
 */
static void upload_pieces(struct upload *u, struct gem_call *res)
{
    struct gem_client *c = u->c;
    uint64_t off = 0;
    int fails = 0;
    bool ask = false;
    for (;;) {
        if (aborted(c)) {
            res->outcome = GEM_RETRY;
            gem_client_set_detail(c, res, "upload: stopped by shutdown at byte %llu",
                                  (unsigned long long)off);
            return;
        }
        if (!ask) {
            uint64_t n = u->len - off < u->piece ? u->len - off : u->piece;
            bool last = off + n == u->len;
            if (send_piece(u, off, n, last, res)) {
                if (strcasecmp(c->upload_status, "final") == 0) {
                    take_final(u, "upload", res);
                    return;
                }
                int64_t got = c->size_received;
                uint64_t next = got >= 0 ? (uint64_t)got : off + n;
                if (!last && strcasecmp(c->upload_status, "active") == 0 && next > off &&
                    next <= u->len) {
                    off = next;
                    fails = 0;
                    continue;
                }
                /* a 2xx that does not say the piece was taken: ask (retryable) */
                res->outcome = GEM_RETRY;
                gem_client_set_detail(c, res, "upload: HTTP %ld with upload status \"%s\"",
                                      res->http, c->upload_status);
            } else if (res->outcome != GEM_RETRY) {
                return;
            }
            ask = true;
        }
        if (++fails >= u->max_attempts) {
            give_up(u, res, off, fails);
            return;
        }
        pause_before(u, fails, res->retry_after_ms);
        if (!send_query(u, res)) {
            if (res->outcome != GEM_RETRY)
                return;
            continue; /* ask again */
        }
        if (strcasecmp(c->upload_status, "final") == 0) {
            take_final(u, "upload query", res);
            return;
        }
        int64_t got = c->size_received;
        if (strcasecmp(c->upload_status, "active") != 0 || got < 0 || (uint64_t)got > u->len) {
            /* cancelled, or an answer that tells nothing: this session is of no more use */
            res->outcome = GEM_RETRY;
            gem_client_set_detail(c, res,
                                  "upload query: HTTP %ld, upload status \"%s\", %lld bytes "
                                  "received of %llu: the upload must start over",
                                  res->http, c->upload_status, (long long)got,
                                  (unsigned long long)u->len);
            return;
        }
        if ((uint64_t)got > off)
            fails = 0; /* the session moved on since the last answer we had */
        off = (uint64_t)got;
        ask = false;
    }
}

static void upload_source(struct gem_client *c, const char *display_name, int fd, const char *mem,
                          uint64_t len, const struct gem_upload_opts *o, char *name_out,
                          size_t name_len, struct gem_call *res)
{
    static const struct gem_upload_opts defaults = {0};
    if (!o)
        o = &defaults;
    if (name_len)
        name_out[0] = '\0';
    size_t piece = o->piece_bytes ? o->piece_bytes : PIECE_DEFAULT;
    if (piece % GEM_UPLOAD_UNIT != 0 || name_len == 0 || (!mem && fd < 0)) {
        gem_client_reject(c, res, "upload",
                          piece % GEM_UPLOAD_UNIT != 0 ? "piece size is not a multiple of 256 KiB"
                          : name_len == 0              ? "no room for the file name"
                                                       : "invalid file descriptor");
        return;
    }
    struct upload u = {c,
                       fd,
                       mem,
                       len,
                       piece,
                       o->max_attempts > 0 ? o->max_attempts : ATTEMPTS_DEFAULT,
                       o->backoff_ms > 0 ? o->backoff_ms : BACKOFF_DEFAULT_MS,
                       o->backoff_max_ms > 0 ? o->backoff_max_ms : BACKOFF_MAX_MS,
                       "",
                       name_out,
                       name_len};
    if (u.backoff_max_ms < u.backoff_ms)
        u.backoff_max_ms = u.backoff_ms;
    if (!upload_start(c, display_name, len, u.session, sizeof(u.session), res))
        return;
    /* pieces come in multiples of the granularity the session announces */
    int64_t g = c->granularity;
    if (g > 0 && g <= GRANULARITY_MAX && u.piece % (uint64_t)g != 0)
        u.piece = (u.piece / (uint64_t)g + 1) * (uint64_t)g;
    upload_pieces(&u, res);
    if (res->outcome != GEM_OK)
        name_out[0] = '\0';
}

void gem_upload_fd(struct gem_client *c, const char *display_name, int fd, uint64_t len,
                   const struct gem_upload_opts *opts, char *name_out, size_t name_len,
                   struct gem_call *res)
{
    gem_client_begin(c, GEM_EP_UPLOAD);
    upload_source(c, display_name, fd, NULL, len, opts, name_out, name_len, res);
    gem_client_end(c, res);
}

void gem_upload_file(struct gem_client *c, const char *display_name, const char *data, size_t len,
                     char *name_out, size_t name_len, struct gem_call *res)
{
    gem_client_begin(c, GEM_EP_UPLOAD);
    upload_source(c, display_name, -1, data ? data : "", data ? len : 0, NULL, name_out, name_len,
                  res);
    gem_client_end(c, res);
}

/* ---- file metadata ---- */

void gem_get_file(struct gem_client *c, const char *name, struct gem_file *f, struct gem_call *res)
{
    static const char what[] = "get file";
    char url[URL_MAX], err[256] = "";
    gem_client_begin(c, GEM_EP_FILES);
    memset(f, 0, sizeof(*f));
    if (!gem_client_valid_name(name, "files/") ||
        !gem_client_fmt_url(url, sizeof(url), "%s/%s/%s", c->base, c->version, name)) {
        gem_client_reject(c, res, what, "invalid file name");
    } else {
        struct req r = {what,     "GET", url,  NULL, 0,    NULL, NULL,
                        REQ_SAFE, NULL,  NULL, NULL, NULL, false};
        if (gem_client_perform(c, &r, res) &&
            !gem_parse_file(gem_client_data_of(&c->body), c->body.len, f, err, sizeof(err)))
            gem_client_body_unusable(c, &r, &c->body, err, res);
    }
    gem_client_end(c, res);
}

static void list_files(struct gem_client *c, int page_size, const char *page_token,
                       struct gem_file **files, size_t *n, char *next_token, size_t token_len,
                       struct gem_call *res)
{
    static const char what[] = "list files";
    char err[256] = "";
    *files = NULL;
    *n = 0;
    /* the token is read before next_token is cleared: both may be the same buffer */
    bool have_token = page_token && *page_token;
    char *esc = have_token ? curl_easy_escape(c->curl, page_token, 0) : NULL;
    if (token_len)
        next_token[0] = '\0';
    struct buf url;
    buf_init(&url, URL_MAX);
    bool built = (esc || !have_token) && buf_printf(&url, "%s/%s/files", c->base, c->version);
    char sep = '?';
    if (built && page_size > 0) {
        built = buf_printf(&url, "?pageSize=%d", page_size < 100 ? page_size : 100);
        sep = '&';
    }
    if (built && esc)
        built = buf_printf(&url, "%cpageToken=%s", sep, esc);
    curl_free(esc);
    if (!built) {
        buf_cleanup(&url);
        gem_client_reject(c, res, what, "page token too long");
        return;
    }
    struct req r = {what,     "GET", url.data, NULL, 0,    NULL, NULL,
                    REQ_SAFE, NULL,  NULL,     NULL, NULL, false};
    if (gem_client_perform(c, &r, res) &&
        !gem_parse_file_list(gem_client_data_of(&c->body), c->body.len, files, n, next_token,
                             token_len, err, sizeof(err)))
        gem_client_body_unusable(c, &r, &c->body, err, res);
    buf_cleanup(&url);
}

void gem_list_files(struct gem_client *c, int page_size, const char *page_token,
                    struct gem_file **files, size_t *n, char *next_token, size_t token_len,
                    struct gem_call *res)
{
    gem_client_begin(c, GEM_EP_FILES);
    list_files(c, page_size, page_token, files, n, next_token, token_len, res);
    gem_client_end(c, res);
}

/* ---- download and delete ---- */

static void download(struct gem_client *c, const char *name, struct buf *out,
                     bool (*feed)(void *, const char *, size_t), void *ud, struct gem_call *res)
{
    static const char what[] = "download";
    char url[URL_MAX];
    if (!gem_client_valid_name(name, "files/") ||
        !gem_client_fmt_url(url, sizeof(url), "%s/%s/%s:download?alt=media", c->base, c->version,
                            name)) {
        gem_client_reject(c, res, what, "invalid file name");
        return;
    }
    size_t keep = out ? out->len : 0;
    struct req r = {what, "GET", url, NULL, 0, NULL, NULL, REQ_SAFE, out, feed, ud, NULL, true};
    if (!gem_client_perform(c, &r, res) && out) {
        out->len = keep; /* nothing of a failed download stays in out */
        if (out->data)
            out->data[keep] = '\0';
    }
}

void gem_download_file(struct gem_client *c, const char *name, struct buf *out,
                       struct gem_call *res)
{
    gem_client_begin(c, GEM_EP_DOWNLOAD);
    download(c, name, out, NULL, NULL, res);
    gem_client_end(c, res);
}

void gem_download_stream(struct gem_client *c, const char *name,
                         bool (*feed)(void *ud, const char *p, size_t n), bool (*tick)(void *ud),
                         void *ud, struct gem_call *res)
{
    gem_client_begin(c, GEM_EP_DOWNLOAD);
    c->tick = tick;
    c->tick_ud = ud;
    c->tick_ms = 0; /* the first tick comes at once */
    download(c, name, NULL, feed, ud, res);
    c->tick = NULL;
    c->tick_ud = NULL;
    gem_client_end(c, res);
}

void gem_delete_file(struct gem_client *c, const char *name, struct gem_call *res)
{
    gem_client_begin(c, GEM_EP_FILES);
    gem_client_name_call(c, "delete file", "DELETE", name, "files/", "", res);
    gem_client_end(c, res);
}
