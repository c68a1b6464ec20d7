/*
 * json_stream.h: the RFC 8259 check of json_strict.h (the same rules, the
 * same messages, the same byte offsets) for a body that arrives in pieces
 * split anywhere, plus the UTF-8 check of the whole body, plus events that
 * mark where the values of the outer levels begin and end, so that a caller
 * can cut one value at a time out of the stream (json_stream_capture)
 * instead of holding the body. Memory is this struct plus what the caller
 * captures, whatever the body's size. Nothing is allocated here.
 */
#ifndef API_JSON_STREAM_H
#define API_JSON_STREAM_H

#include "json_strict.h"

#include "util/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSON_STREAM_MAX_DEPTH 64

enum json_stream_kind {
    JSON_STREAM_OBJECT,
    JSON_STREAM_ARRAY,
    JSON_STREAM_STRING,
    JSON_STREAM_NUMBER,
    JSON_STREAM_TRUE,
    JSON_STREAM_FALSE,
    JSON_STREAM_NULL,
};

enum json_stream_event {
    JSON_STREAM_NAME_BEGIN,  /* the opening quote of a member name */
    JSON_STREAM_NAME_END,    /* its closing quote has been read */
    JSON_STREAM_VALUE_BEGIN, /* the first byte of a value */
    JSON_STREAM_VALUE_END,   /* its last byte has been read */
};

struct json_stream_ev {
    enum json_stream_event type;
    int depth; /* containers around the name or value: 0 for the body's value */
    enum json_stream_kind kind;
    bool fraction;   /* VALUE_END of a number: it has a '.' or an exponent */
    uint64_t offset; /* BEGIN events: byte offset of the first byte */
};

struct json_stream;

/* Called for names and values at depth <= event_depth, in body order. */
typedef void (*json_stream_fn)(void *cls, struct json_stream *s, const struct json_stream_ev *ev);

struct json_stream {
    /* results, read after json_stream_finish (or at any time: once set they stay) */
    bool utf8_bad;                /* the body is not valid UTF-8 */
    bool syntax_bad;              /* an RFC 8259 error: see err */
    struct json_strict_error err; /* as json_strict_check words it for the whole body */
    bool deep_scalar;             /* a scalar inside max_depth containers (json-c refuses it) */
    bool scalar_at_end;           /* the body is a number or literal with no byte after it (json-c
                                     asks for more input then) */
    bool capture_failed;          /* a capture buffer was full or out of memory */
    uint64_t bytes;               /* bytes fed so far */
    /* internal */
    json_stream_fn fn;
    void *cls;
    int max_depth, event_depth, depth;
    unsigned char stack[JSON_STREAM_MAX_DEPTH]; /* '{' or '[' per open container */
    int state, num, lit_len, lit_got;
    const char *lit;
    bool key, fraction, ev_name;
    enum json_stream_kind lit_kind;
    unsigned hex_n, hex_val, hi;
    bool hex_bad;
    uint64_t esc_off, hex_off, lit_off;
    unsigned utf8_need;
    unsigned char utf8_lo, utf8_hi;
    /* the capture in progress */
    struct buf *cap;
    int cap_depth;
    bool cap_name;
    const unsigned char *cap_from; /* where it starts in the current piece; NULL: at its start */
    const unsigned char *piece, *cur;
};

/* Start a body. max_depth: nesting limit (at most JSON_STREAM_MAX_DEPTH);
 * event_depth: the deepest level reported to fn (may be NULL). */
void json_stream_init(struct json_stream *s, int max_depth, int event_depth, json_stream_fn fn,
                      void *cls);
/* Feed the next n bytes. Returns false once the body is known to be invalid
 * (utf8_bad or syntax_bad); feeding on is allowed and keeps checking UTF-8,
 * whose verdict comes first (job_request checks it before the syntax). */
bool json_stream_feed(struct json_stream *s, const char *p, size_t n);
/* The body has ended: the last checks. Returns whether it is one valid JSON value. */
bool json_stream_finish(struct json_stream *s);
/* From a NAME_BEGIN or VALUE_BEGIN event only: append the name or value as
 * written, from its first byte to its last, to b (borrowed until its END
 * event, which is raised after the last byte was appended). A full b or a
 * failed allocation sets capture_failed and stops the capture. */
void json_stream_capture(struct json_stream *s, struct buf *b);

#endif
