/* multipart.c: a streaming multipart/form-data parser (see multipart.h). */
#include "openai/multipart.h"

#include "http.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

enum { ST_PREAMBLE, ST_AFTER_DELIM, ST_HEADERS, ST_BODY, ST_DONE, ST_ERROR };

static bool fail(struct mp_parser *p, const char *msg)
{
    p->state = ST_ERROR;
    snprintf(p->err, sizeof(p->err), "%s", msg);
    return false;
}

/* Boundary characters of RFC 2046 (bchars). */
static bool bchar(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           strchr("'()+_,-./:=? ", c) != NULL;
}

/* The value of parameter name in a header value's "; k=v; k2=\"v2\"" list,
 * unquoted into out; false when absent. */
static bool param(const char *s, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name);
    while ((s = strchr(s, ';'))) {
        s++;
        while (*s == ' ' || *s == '\t')
            s++;
        if (strncasecmp(s, name, nl) != 0 || s[nl] != '=')
            continue;
        const char *v = s + nl + 1;
        size_t w = 0;
        if (*v == '"') {
            for (v++; *v && *v != '"'; v++) {
                if (*v == '\\' && v[1])
                    v++;
                if (w + 1 < n)
                    out[w++] = *v;
            }
        } else {
            for (; *v && *v != ';' && *v != ' ' && *v != '\t'; v++)
                if (w + 1 < n)
                    out[w++] = *v;
        }
        out[w] = '\0';
        return true;
    }
    return false;
}

bool mp_init(struct mp_parser *p, const char *content_type, const struct mp_callbacks *cb,
             void *cls)
{
    memset(p, 0, sizeof(*p));
    p->cb = cb;
    p->cls = cls;
    char b[MP_MAX_BOUNDARY + 2];
    if (!content_type || !http_media_type_is(content_type, "multipart/form-data"))
        return fail(p, "the body must be multipart/form-data");
    if (!param(content_type, "boundary", b, sizeof(b)) || !b[0] || strlen(b) > MP_MAX_BOUNDARY)
        return fail(p, "the Content-Type has no multipart boundary (1 to 70 characters)");
    for (const char *c = b; *c; c++)
        if (!bchar(*c))
            return fail(p, "the multipart boundary has a character RFC 2046 does not allow");
    p->dlen = (size_t)snprintf(p->delim, sizeof(p->delim), "\r\n--%s", b);
    /* the first delimiter may open the body without a line break before it */
    p->state = ST_PREAMBLE;
    p->matched = 2;
    return true;
}

/* A part's header block is complete: parse it and begin the part. */
static bool headers_done(struct mp_parser *p)
{
    char name[256] = "", filename[256] = "", ctype[128] = "";
    bool has_name = false, has_file = false, has_type = false;
    p->headers[p->hlen] = '\0';
    char *line = p->headers;
    while (line && *line) {
        char *eol = strstr(line, "\r\n");
        if (eol)
            *eol = '\0';
        char *colon = strchr(line, ':');
        if (colon) {
            *colon = '\0';
            const char *v = colon + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            if (strcasecmp(line, "Content-Disposition") == 0) {
                if (strncasecmp(v, "form-data", 9) != 0)
                    return fail(p, "a part's Content-Disposition is not form-data");
                has_name = param(v, "name", name, sizeof(name));
                has_file = param(v, "filename", filename, sizeof(filename));
            } else if (strcasecmp(line, "Content-Type") == 0) {
                snprintf(ctype, sizeof(ctype), "%s", v);
                has_type = true;
            }
        }
        line = eol ? eol + 2 : NULL;
    }
    if (!has_name)
        return fail(p, "a part has no Content-Disposition: form-data; name=...");
    p->state = ST_BODY;
    p->matched = 0;
    if (!p->cb->begin(p->cls, name, has_file ? filename : NULL, has_type ? ctype : NULL)) {
        p->state = ST_ERROR;
        return false;
    }
    return true;
}

/* Body bytes; in the preamble they are dropped. */
static bool out(struct mp_parser *p, const char *d, size_t n)
{
    if (!n || p->state == ST_PREAMBLE)
        return true;
    if (!p->cb->data(p->cls, d, n)) {
        p->state = ST_ERROR;
        return false;
    }
    return true;
}

/* Scan body (or preamble) bytes for the delimiter. The delimiter holds one
 * CR, its first byte, so a failed partial match never hides the start of
 * another: its bytes are data, and the current byte is looked at again. */
static size_t scan(struct mp_parser *p, const char *d, size_t n, bool *found)
{
    size_t i = 0, run = 0; /* run: start of the data not yet handed on */
    *found = false;
    while (i < n) {
        if (p->matched == 0) {
            const char *cr = memchr(d + i, '\r', n - i);
            if (!cr) {
                i = n;
                break;
            }
            i = (size_t)(cr - d) + 1;
            p->matched = 1;
            continue;
        }
        if (d[i] == p->delim[p->matched]) {
            i++;
            if (++p->matched == p->dlen) {
                /* data ends where the delimiter began (maybe in an earlier piece) */
                size_t start = i >= p->dlen ? i - p->dlen : 0;
                if (start > run && !out(p, d + run, start - run))
                    return 0;
                p->matched = 0;
                *found = true;
                return i;
            }
            continue;
        }
        /* a partial match that failed: its bytes are data (those of this
         * piece equal the delimiter's prefix, so the prefix stands for all of
         * them), and the current byte is looked at again */
        size_t here = i - run < p->matched ? i - run : p->matched;
        if (i - here > run && !out(p, d + run, i - here - run))
            return 0;
        if (!out(p, p->delim, p->matched))
            return 0;
        run = i;
        p->matched = 0;
    }
    /* hand on what cannot be part of a delimiter */
    size_t keep = p->matched < n - run ? p->matched : n - run;
    if (n - keep > run && !out(p, d + run, n - keep - run))
        return 0;
    /* the bytes of a possible delimiter wait (as its prefix, which they equal) */
    return n;
}

bool mp_feed(struct mp_parser *p, const char *d, size_t n)
{
    size_t i = 0;
    while (i < n) {
        switch (p->state) {
        case ST_PREAMBLE:
        case ST_BODY: {
            bool found;
            bool was_body = p->state == ST_BODY;
            size_t used = scan(p, d + i, n - i, &found);
            if (p->state == ST_ERROR)
                return false;
            i += used;
            if (found) {
                if (was_body && !p->cb->end(p->cls)) {
                    p->state = ST_ERROR;
                    return false;
                }
                p->state = ST_AFTER_DELIM;
                p->after = 0;
                p->dash = false;
            }
            break;
        }
        case ST_AFTER_DELIM: {
            char c = d[i++];
            if (p->after == 0 && c == '-') {
                p->dash = true;
                p->after = 1;
            } else if (p->dash) {
                if (c != '-')
                    return fail(p, "a multipart delimiter is followed by a lone \"-\"");
                p->state = ST_DONE;
            } else if (c == ' ' || c == '\t') {
                continue; /* transport padding */
            } else if (c == '\r' && p->after == 0) {
                p->after = 1;
            } else if (c == '\n' && p->after == 1) {
                p->state = ST_HEADERS;
                p->hlen = 0;
            } else {
                return fail(p, "a multipart delimiter is not followed by a line break");
            }
            break;
        }
        case ST_HEADERS: {
            char c = d[i++];
            if (p->hlen >= MP_MAX_HEADERS)
                return fail(p, "a part's headers are too long");
            p->headers[p->hlen++] = c;
            if (p->hlen == 2 && memcmp(p->headers, "\r\n", 2) == 0) {
                p->hlen = 0; /* no headers at all */
                if (!headers_done(p))
                    return false;
            } else if (p->hlen >= 4 && memcmp(p->headers + p->hlen - 4, "\r\n\r\n", 4) == 0) {
                p->hlen -= 2; /* keep the last header's CRLF */
                if (!headers_done(p))
                    return false;
            }
            break;
        }
        case ST_DONE:
            return true; /* the epilogue is ignored */
        default:
            return false;
        }
    }
    return true;
}

bool mp_done(const struct mp_parser *p)
{
    return p->state == ST_DONE;
}
