/*
 * response.c: building replies for handlers: headers, JSON bodies, streamed
 * bodies and RFC 9457 problem+json errors (see http.h).
 */
#include "http.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

void http_resp_header(struct http_resp *r, const char *name, const char *value)
{
    if (r->n_hdr >= HTTP_MAX_HEADERS)
        return;
    snprintf(r->hdr[r->n_hdr].name, sizeof(r->hdr[0].name), "%s", name);
    snprintf(r->hdr[r->n_hdr].value, sizeof(r->hdr[0].value), "%s", value);
    r->n_hdr++;
}

void http_resp_json(struct http_resp *r, int status, const char *json)
{
    buf_reset(&r->body);
    r->status = status;
    r->content_type = "application/json";
    if (!buf_puts(&r->body, json)) {
        r->status = 500;
        buf_reset(&r->body);
    }
}

void http_resp_stream(struct http_resp *r, int status, const char *content_type,
                      http_stream_read_fn read, http_stream_done_fn done, void *cls)
{
    buf_reset(&r->body);
    r->status = status;
    r->content_type = content_type;
    r->stream_read = read;
    r->stream_done = done;
    r->stream_cls = cls;
}

static const char *status_title(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    default:
        return status >= 500 ? "Internal Server Error" : "Error";
    }
}

/* Append s as a JSON string literal. */
static bool put_jstr(struct buf *b, const char *s)
{
    if (!buf_putc(b, '"'))
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        bool ok;
        if (*p == '"' || *p == '\\')
            ok = buf_putc(b, '\\') && buf_putc(b, (char)*p);
        else if (*p < 0x20)
            ok = buf_printf(b, "\\u%04x", *p);
        else
            ok = buf_putc(b, (char)*p);
        if (!ok)
            return false;
    }
    return buf_putc(b, '"');
}

void http_problem(struct http_resp *r, const struct http_req *req, int status, const char *code,
                  const char *pointer, const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    buf_reset(&r->body);
    r->status = status;
    r->content_type = "application/problem+json";
    bool ok = buf_printf(&r->body, "{\"type\":\"urn:embedd:problem:%s\",\"title\":", code) &&
              put_jstr(&r->body, status_title(status)) &&
              buf_printf(&r->body, ",\"status\":%d,\"detail\":", status) &&
              put_jstr(&r->body, detail) && buf_puts(&r->body, ",\"code\":") &&
              put_jstr(&r->body, code) && buf_puts(&r->body, ",\"request_id\":") &&
              put_jstr(&r->body, req ? req->id : "");
    if (ok && pointer)
        ok = buf_puts(&r->body, ",\"errors\":[{\"pointer\":") && put_jstr(&r->body, pointer) &&
             buf_puts(&r->body, ",\"detail\":") && put_jstr(&r->body, detail) &&
             buf_puts(&r->body, "}]");
    if (!(ok && buf_putc(&r->body, '}'))) {
        buf_reset(&r->body);
        r->status = 500;
    }
}

void http_problem_member(struct http_resp *r, const char *name, int64_t value)
{
    if (r->body.len < 2 || r->body.data[r->body.len - 1] != '}')
        return;
    r->body.len--; /* reopen the object */
    r->body.data[r->body.len] = '\0';
    if (!(buf_putc(&r->body, ',') && put_jstr(&r->body, name) &&
          buf_printf(&r->body, ":%lld}", (long long)value))) {
        buf_reset(&r->body);
        r->status = 500;
    }
}

bool http_media_type_is(const char *ct, const char *mt)
{
    if (!ct)
        return false;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strlen(mt);
    if (strncasecmp(ct, mt, n) != 0)
        return false;
    const char *p = ct + n;
    while (*p == ' ' || *p == '\t')
        p++;
    return *p == '\0' || *p == ';';
}
