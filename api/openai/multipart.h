/*
 * multipart.h: a streaming multipart/form-data parser (RFC 7578 over RFC
 * 2046): the body is fed in pieces split anywhere, and each part's data is
 * handed on as it arrives, never held; memory is a part's headers (at most
 * MP_MAX_HEADERS bytes) and a delimiter's length.
 */
#ifndef API_OPENAI_MULTIPART_H
#define API_OPENAI_MULTIPART_H

#include <stdbool.h>
#include <stddef.h>

#define MP_MAX_BOUNDARY 70   /* RFC 2046 */
#define MP_MAX_HEADERS  8192 /* the header block of one part */

struct mp_callbacks {
    /* A part begins: its form field name, filename (NULL when absent) and
     * Content-Type (NULL when absent). Returning false stops the parse. */
    bool (*begin)(void *cls, const char *name, const char *filename, const char *content_type);
    /* Some of the part's bytes, in order. */
    bool (*data)(void *cls, const char *data, size_t len);
    /* The part ended. */
    bool (*end)(void *cls);
};

struct mp_parser {
    const struct mp_callbacks *cb;
    void *cls;
    char delim[MP_MAX_BOUNDARY + 5]; /* "\r\n--" boundary */
    size_t dlen;
    int state;
    size_t matched; /* bytes of delim matched so far */
    char headers[MP_MAX_HEADERS + 1];
    size_t hlen;
    int after; /* bytes seen after a delimiter: "--" or "\r\n" */
    bool dash; /* the first byte after a delimiter was '-' */
    char err[160];
};

/* Take the boundary from a Content-Type value ("multipart/form-data;
 * boundary=..."); false with p->err set when it has none or a bad one. */
bool mp_init(struct mp_parser *p, const char *content_type, const struct mp_callbacks *cb,
             void *cls);
/* Feed len bytes; false when the body is malformed or a callback refused
 * (p->err says why; empty when a callback refused). */
bool mp_feed(struct mp_parser *p, const char *data, size_t len);
/* Whether the closing delimiter has been seen (the body is complete). */
bool mp_done(const struct mp_parser *p);

#endif
