/* files.c: the Gemini Files API (resumable upload, download whole or streamed, delete), on the
 * transport of client.c. */
#include "gemini/client_internal.h"

#include "util/jsonw.h"

#include <curl/curl.h>
#include <json-c/json.h>

#include <stdio.h>
#include <string.h>
#include <strings.h>

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
static bool upload_start(struct gem_client *c, const char *display_name, size_t len, char *session,
                         size_t session_len, struct gem_call *res)
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
    snprintf(size_hdr, sizeof(size_hdr), "X-Goog-Upload-Header-Content-Length: %zu", len);
    const char *hdrs[] = {"X-Goog-Upload-Protocol: resumable", "X-Goog-Upload-Command: start",
                          size_hdr, "X-Goog-Upload-Header-Content-Type: application/jsonl", NULL};
    struct req r = {what, "POST",   url,  meta.data, meta.len, JSON_CTYPE,
                    hdrs, REQ_SAFE, NULL, NULL,      NULL};
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

/* The file's "name" from an upload's final {"file":{...}} answer. */
static bool upload_name(const struct buf *b, char *out, size_t n)
{
    json_object *o = gem_client_parse_json(gem_client_data_of(b), b->len), *file = NULL,
                *name = NULL;
    bool ok = o && json_object_object_get_ex(o, "file", &file) &&
              json_object_object_get_ex(file, "name", &name) &&
              json_object_is_type(name, json_type_string) &&
              gem_client_valid_name(json_object_get_string(name), "files/") &&
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
    if (gem_client_perform(c, &r, res) && !upload_name(&c->body, name_out, name_len)) {
        if (name_len)
            name_out[0] = '\0';
        gem_client_body_unusable(c, &r, &c->body, "no usable file name", res);
    }
}

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
    struct req r = {what, "GET", url, NULL, 0, NULL, NULL, REQ_SAFE, out, feed, ud};
    if (!gem_client_perform(c, &r, res) && out) {
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
    gem_client_name_call(c, "delete file", "DELETE", name, "files/", "", res);
}
