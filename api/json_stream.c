/* json_stream.c: the RFC 8259 and UTF-8 checks for a body fed in pieces (see json_stream.h). */
#include "json_stream.h"

#include "util/compiler.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Where the scanner is. The states that skip whitespace first are the ones
 * between tokens; the others are inside a string, a number or a literal. */
enum {
    ST_VALUE,       /* a value is due */
    ST_ARR_FIRST,   /* after '[': a value or ']' */
    ST_OBJ_FIRST,   /* after '{': a member name or '}' */
    ST_OBJ_NAME,    /* after ',' in an object: a member name */
    ST_COLON,       /* after a member name */
    ST_AFTER,       /* after a value in a container: ',' or the closing bracket */
    ST_END,         /* after the body's value: only whitespace */
    ST_STR,         /* inside a string */
    ST_STR_ESC,     /* after a backslash */
    ST_STR_HEX,     /* the 4 hex digits of a \u escape */
    ST_STR_SURR_BS, /* after a high surrogate escape: its low half's '\' */
    ST_STR_SURR_U,  /* ... and its 'u' */
    ST_STR_HEX2,    /* ... and its 4 hex digits */
    ST_NUM,         /* inside a number (see num) */
    ST_LIT,         /* inside true, false or null */
    ST_FAILED,      /* a syntax error was found: only UTF-8 is checked from here */
};

/* The parts of a number (RFC 8259, section 6). */
enum { N_MINUS, N_ZERO, N_INT, N_DOT, N_FRAC, N_EXP, N_EXP_SIGN, N_EXP_DIG };

static uint64_t pos(const struct json_stream *s, const unsigned char *p)
{
    return s->bytes + (uint64_t)(p - s->piece);
}

static void fail(struct json_stream *s, uint64_t off, const char *fmt, ...) SVC_PRINTF(3, 4);

static void fail(struct json_stream *s, uint64_t off, const char *fmt, ...)
{
    va_list ap;
    s->syntax_bad = true;
    s->err.offset = (size_t)off;
    va_start(ap, fmt);
    vsnprintf(s->err.message, sizeof(s->err.message), fmt, ap);
    va_end(ap);
    s->state = ST_FAILED;
    s->cap = NULL;
}

static void unexpected_char(struct json_stream *s, unsigned char c, uint64_t off,
                            const char *expected)
{
    if (c >= 0x20 && c < 0x7f)
        fail(s, off, "unexpected character '%c' at byte %zu (expected %s)", c, (size_t)off,
             expected);
    else
        fail(s, off, "unexpected byte 0x%02x at byte %zu (expected %s)", c, (size_t)off, expected);
}

/* p: the offending byte; NULL: the end of the body. */
static void unexpected(struct json_stream *s, const unsigned char *p, const char *expected)
{
    if (!p)
        fail(s, s->bytes, "unexpected end of the body (expected %s)", expected);
    else
        unexpected_char(s, *p, pos(s, p), expected);
}

static bool is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* ---- events and captures ---- */

static void emit(struct json_stream *s, enum json_stream_event type, enum json_stream_kind kind,
                 uint64_t off)
{
    if (!s->fn || s->depth > s->event_depth)
        return;
    struct json_stream_ev ev = {type, s->depth, kind, s->fraction, off};
    s->ev_name = type == JSON_STREAM_NAME_BEGIN;
    s->fn(s->cls, s, &ev);
}

void json_stream_capture(struct json_stream *s, struct buf *b)
{
    s->cap = b;
    s->cap_from = s->cur;
    s->cap_depth = s->depth;
    s->cap_name = s->ev_name;
}

/* Append the captured bytes of the current piece up to (not including) to. */
static void cap_flush(struct json_stream *s, const unsigned char *to)
{
    const unsigned char *from = s->cap_from ? s->cap_from : s->piece;
    s->cap_from = NULL;
    if (to && to > from && !buf_append(s->cap, from, (size_t)(to - from))) {
        s->capture_failed = true;
        s->cap = NULL;
    }
}

/* A name (key) or value ends just before end_excl (NULL: at the end of the body). */
static void end_item(struct json_stream *s, bool name, enum json_stream_kind kind,
                     const unsigned char *end_excl)
{
    if (s->cap && s->cap_depth == s->depth && s->cap_name == name) {
        cap_flush(s, end_excl);
        s->cap = NULL;
    }
    emit(s, name ? JSON_STREAM_NAME_END : JSON_STREAM_VALUE_END, kind, 0);
}

static void after_value(struct json_stream *s)
{
    s->state = s->depth ? ST_AFTER : ST_END;
}

/* ---- the states ---- */

static const unsigned char *begin_value(struct json_stream *s, const unsigned char *p)
{
    unsigned char c = *p;
    uint64_t off = pos(s, p);
    s->fraction = false;
    s->cur = p;
    if (c == '{' || c == '[') {
        if (s->depth + 1 > s->max_depth) {
            fail(s, off, "nested deeper than %d levels at byte %zu", s->max_depth, (size_t)off);
            return p;
        }
        emit(s, JSON_STREAM_VALUE_BEGIN, c == '{' ? JSON_STREAM_OBJECT : JSON_STREAM_ARRAY, off);
        s->stack[s->depth++] = c;
        s->state = c == '{' ? ST_OBJ_FIRST : ST_ARR_FIRST;
        return p + 1;
    }
    enum json_stream_kind kind;
    if (c == '"') {
        kind = JSON_STREAM_STRING;
        s->key = false;
        s->state = ST_STR;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        kind = JSON_STREAM_NUMBER;
        s->state = ST_NUM;
        s->num = c == '-' ? N_MINUS : c == '0' ? N_ZERO : N_INT;
    } else if (c == 't' || c == 'f' || c == 'n') {
        kind = c == 't' ? JSON_STREAM_TRUE : c == 'f' ? JSON_STREAM_FALSE : JSON_STREAM_NULL;
        s->lit_kind = kind;
        s->lit = c == 't' ? "true" : c == 'f' ? "false" : "null";
        s->lit_len = (int)strlen(s->lit);
        s->lit_got = 1;
        s->lit_off = off;
        s->state = ST_LIT;
    } else {
        unexpected(s, p, "a JSON value");
        return p;
    }
    if (s->depth >= s->max_depth)
        s->deep_scalar = true;
    emit(s, JSON_STREAM_VALUE_BEGIN, kind, off);
    return p + 1;
}

static const unsigned char *close_container(struct json_stream *s, const unsigned char *p)
{
    enum json_stream_kind kind =
        s->stack[--s->depth] == '{' ? JSON_STREAM_OBJECT : JSON_STREAM_ARRAY;
    end_item(s, false, kind, p + 1);
    after_value(s);
    return p + 1;
}

static const unsigned char *name_begin(struct json_stream *s, const unsigned char *p)
{
    s->key = true;
    s->cur = p;
    emit(s, JSON_STREAM_NAME_BEGIN, JSON_STREAM_STRING, pos(s, p));
    s->state = ST_STR;
    return p + 1;
}

/* Bytes that end the plain run of a string: '"', '\' and control characters. */
static bool str_stop(unsigned char c)
{
    return c < 0x20 || c == '"' || c == '\\';
}

static const unsigned char *in_string(struct json_stream *s, const unsigned char *p,
                                      const unsigned char *end)
{
    while (p < end && !str_stop(*p))
        p++;
    if (p == end)
        return p;
    unsigned char c = *p;
    if (c == '"') {
        bool name = s->key;
        end_item(s, name, JSON_STREAM_STRING, p + 1);
        if (name)
            s->state = ST_COLON;
        else
            after_value(s);
        return p + 1;
    }
    if (c == '\\') {
        s->esc_off = pos(s, p);
        s->state = ST_STR_ESC;
        return p + 1;
    }
    fail(s, pos(s, p), "control character 0x%02x inside a string at byte %zu (escape it)", c,
         (size_t)pos(s, p));
    return p;
}

static const unsigned char *escape(struct json_stream *s, const unsigned char *p)
{
    unsigned char c = *p;
    if (c && strchr("\"\\/bfnrt", c)) {
        s->state = ST_STR;
        return p + 1;
    }
    if (c != 'u') {
        fail(s, pos(s, p), "invalid escape '\\%c' at byte %zu", c >= 0x20 && c < 0x7f ? c : '?',
             (size_t)pos(s, p));
        return p;
    }
    s->hex_n = s->hex_val = 0;
    s->hex_bad = false;
    s->hex_off = pos(s, p + 1);
    s->state = ST_STR_HEX;
    return p + 1;
}

/* One hex digit of \uXXXX; the escape is judged once its 4 bytes are in. */
static const unsigned char *hex_digit(struct json_stream *s, const unsigned char *p)
{
    int h = hexval(*p);
    if (h < 0)
        s->hex_bad = true;
    else
        s->hex_val = s->hex_val << 4 | (unsigned)h;
    if (++s->hex_n < 4)
        return p + 1;
    if (s->hex_bad) {
        fail(s, s->hex_off, "bad \\u escape at byte %zu", (size_t)s->hex_off);
        return p;
    }
    unsigned u = s->hex_val;
    size_t at = (size_t)s->esc_off;
    if (s->state == ST_STR_HEX2) {
        if (u < 0xDC00 || u > 0xDFFF)
            fail(s, at + 12, "unpaired surrogate \\u%04x at byte %zu", s->hi, at);
        else
            s->state = ST_STR;
    } else if (u == 0 && s->key) {
        fail(s, at + 6, "\\u0000 (NUL) in a member name at byte %zu", at);
    } else if (u >= 0xDC00 && u <= 0xDFFF) {
        fail(s, at + 6, "unpaired surrogate \\u%04x at byte %zu", u, at);
    } else if (u >= 0xD800 && u <= 0xDBFF) {
        s->hi = u;
        s->state = ST_STR_SURR_BS;
    } else {
        s->state = ST_STR;
    }
    return p + 1;
}

static const unsigned char *surrogate(struct json_stream *s, const unsigned char *p)
{
    unsigned char want = s->state == ST_STR_SURR_BS ? '\\' : 'u';
    if (*p != want) {
        fail(s, s->esc_off + 6, "unpaired surrogate \\u%04x at byte %zu", s->hi,
             (size_t)s->esc_off);
        return p;
    }
    if (s->state == ST_STR_SURR_BS) {
        s->state = ST_STR_SURR_U;
    } else {
        s->hex_n = s->hex_val = 0;
        s->hex_bad = false;
        s->hex_off = pos(s, p + 1);
        s->state = ST_STR_HEX2;
    }
    return p + 1;
}

static void end_number(struct json_stream *s, const unsigned char *end_excl)
{
    end_item(s, false, JSON_STREAM_NUMBER, end_excl);
    after_value(s);
}

static const unsigned char *number(struct json_stream *s, const unsigned char *p,
                                   const unsigned char *end)
{
    for (; p < end; p++) {
        unsigned char c = *p;
        bool digit = c >= '0' && c <= '9';
        switch (s->num) {
        case N_MINUS:
            if (!digit) {
                unexpected(s, p, "a digit");
                return p;
            }
            s->num = c == '0' ? N_ZERO : N_INT;
            continue;
        case N_DOT:
            if (!digit) {
                unexpected(s, p, "a digit after '.'");
                return p;
            }
            s->num = N_FRAC;
            continue;
        case N_EXP:
        case N_EXP_SIGN:
            if (s->num == N_EXP && (c == '+' || c == '-')) {
                s->num = N_EXP_SIGN;
                continue;
            }
            if (!digit) {
                unexpected(s, p, "a digit in the exponent");
                return p;
            }
            s->num = N_EXP_DIG;
            continue;
        default: /* N_ZERO, N_INT, N_FRAC, N_EXP_DIG: the number may end here */
            if (digit && s->num != N_ZERO)
                continue;
            if (c == '.' && (s->num == N_ZERO || s->num == N_INT)) {
                s->num = N_DOT;
                s->fraction = true;
                continue;
            }
            if ((c == 'e' || c == 'E') && s->num != N_EXP_DIG) {
                s->num = N_EXP;
                s->fraction = true;
                continue;
            }
            end_number(s, p);
            return p; /* this byte belongs to what follows */
        }
    }
    return p;
}

static const unsigned char *literal(struct json_stream *s, const unsigned char *p,
                                    const unsigned char *end)
{
    for (; p < end; p++) {
        if (*p != (unsigned char)s->lit[s->lit_got]) {
            unexpected_char(s, (unsigned char)s->lit[0], s->lit_off, "a JSON value");
            return p;
        }
        if (++s->lit_got == s->lit_len) {
            s->scalar_at_end = s->depth == 0 && p + 1 == end; /* cleared by more bytes */
            end_item(s, false, s->lit_kind, p + 1);
            after_value(s);
            return p + 1;
        }
    }
    return p;
}

/* The states between tokens: whitespace, then one structural byte or a value. */
static const unsigned char *between(struct json_stream *s, const unsigned char *p,
                                    const unsigned char *end)
{
    while (p < end && is_ws(*p))
        p++;
    if (p == end)
        return p;
    unsigned char c = *p;
    switch (s->state) {
    case ST_VALUE:
        return begin_value(s, p);
    case ST_ARR_FIRST:
        return c == ']' ? close_container(s, p) : begin_value(s, p);
    case ST_OBJ_FIRST:
    case ST_OBJ_NAME:
        if (c == '}' && s->state == ST_OBJ_FIRST)
            return close_container(s, p);
        if (c == '"')
            return name_begin(s, p);
        unexpected(s, p, "a member name in double quotes");
        return p;
    case ST_COLON:
        if (c == ':') {
            s->state = ST_VALUE;
            return p + 1;
        }
        unexpected(s, p, "':'");
        return p;
    case ST_AFTER: {
        bool object = s->stack[s->depth - 1] == '{';
        if (c == ',') {
            s->state = object ? ST_OBJ_NAME : ST_VALUE;
            return p + 1;
        }
        if (c == (object ? '}' : ']'))
            return close_container(s, p);
        unexpected(s, p, object ? "',' or '}'" : "',' or ']'");
        return p;
    }
    default: /* ST_END */
        unexpected(s, p, "the end of the body");
        return p;
    }
}

static void scan(struct json_stream *s, const unsigned char *p, const unsigned char *end)
{
    while (p < end && s->state != ST_FAILED) {
        s->cur = p;
        switch (s->state) {
        case ST_STR:
            p = in_string(s, p, end);
            break;
        case ST_STR_ESC:
            p = escape(s, p);
            break;
        case ST_STR_HEX:
        case ST_STR_HEX2:
            p = hex_digit(s, p);
            break;
        case ST_STR_SURR_BS:
        case ST_STR_SURR_U:
            p = surrogate(s, p);
            break;
        case ST_NUM:
            p = number(s, p, end);
            break;
        case ST_LIT:
            p = literal(s, p, end);
            break;
        default:
            p = between(s, p, end);
            break;
        }
    }
    if (s->cap)
        cap_flush(s, end);
}

/* ---- UTF-8 (RFC 3629), the same rules as utf8_valid in chunker/chunker.c ---- */

static bool utf8_feed(struct json_stream *s, const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (s->utf8_need) {
            if (p[i] < s->utf8_lo || p[i] > s->utf8_hi)
                return false;
            s->utf8_lo = 0x80;
            s->utf8_hi = 0xBF;
            s->utf8_need--;
            i++;
            continue;
        }
        while (i + 8 <= n) { /* ASCII runs, eight bytes at a time */
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (w & 0x8080808080808080ULL)
                break;
            i += 8;
        }
        while (i < n && p[i] < 0x80)
            i++;
        if (i == n)
            break;
        unsigned char c = p[i++];
        s->utf8_lo = 0x80;
        s->utf8_hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            s->utf8_need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            s->utf8_need = 2;
            s->utf8_lo = c == 0xE0 ? 0xA0 : 0x80; /* overlong */
            s->utf8_hi = c == 0xED ? 0x9F : 0xBF; /* surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            s->utf8_need = 3;
            s->utf8_lo = c == 0xF0 ? 0x90 : 0x80; /* overlong */
            s->utf8_hi = c == 0xF4 ? 0x8F : 0xBF; /* past U+10FFFF */
        } else {
            return false; /* a continuation byte, C0/C1 (overlong) or F5..FF */
        }
    }
    return true;
}

/* ---- the interface ---- */

void json_stream_init(struct json_stream *s, int max_depth, int event_depth, json_stream_fn fn,
                      void *cls)
{
    memset(s, 0, sizeof(*s));
    s->max_depth = max_depth < JSON_STREAM_MAX_DEPTH ? max_depth : JSON_STREAM_MAX_DEPTH;
    s->event_depth = event_depth;
    s->fn = fn;
    s->cls = cls;
    s->state = ST_VALUE;
    s->utf8_lo = 0x80;
    s->utf8_hi = 0xBF;
}

bool json_stream_feed(struct json_stream *s, const char *data, size_t n)
{
    const unsigned char *p = (const unsigned char *)data;
    if (!s->utf8_bad && !utf8_feed(s, p, n))
        s->utf8_bad = true;
    s->piece = p;
    if (n)
        s->scalar_at_end = false;
    if (s->state != ST_FAILED)
        scan(s, p, p + n);
    s->bytes += n;
    s->piece = s->cur = NULL;
    return !s->utf8_bad && !s->syntax_bad;
}

bool json_stream_finish(struct json_stream *s)
{
    if (s->utf8_need)
        s->utf8_bad = true;
    s->piece = s->cur = NULL;
    if (s->state == ST_NUM && s->num != N_MINUS && s->num != N_DOT && s->num != N_EXP &&
        s->num != N_EXP_SIGN) {
        s->scalar_at_end = s->depth == 0;
        end_number(s, NULL);
    }
    switch (s->state) {
    case ST_END:
    case ST_FAILED:
        break;
    case ST_VALUE:
    case ST_ARR_FIRST:
        unexpected(s, NULL, "a JSON value");
        break;
    case ST_OBJ_FIRST:
    case ST_OBJ_NAME:
        unexpected(s, NULL, "a member name in double quotes");
        break;
    case ST_COLON:
        unexpected(s, NULL, "':'");
        break;
    case ST_AFTER:
        unexpected(s, NULL, s->stack[s->depth - 1] == '{' ? "',' or '}'" : "',' or ']'");
        break;
    case ST_STR:
    case ST_STR_ESC:
        fail(s, s->bytes, "unterminated string");
        break;
    case ST_STR_HEX:
    case ST_STR_HEX2:
        fail(s, s->hex_off, "truncated \\u escape at byte %zu", (size_t)s->hex_off);
        break;
    case ST_STR_SURR_BS:
    case ST_STR_SURR_U:
        fail(s, s->esc_off + 6, "unpaired surrogate \\u%04x at byte %zu", s->hi,
             (size_t)s->esc_off);
        break;
    case ST_NUM:
        unexpected(s, NULL,
                   s->num == N_MINUS ? "a digit"
                   : s->num == N_DOT ? "a digit after '.'"
                                     : "a digit in the exponent");
        break;
    default: /* ST_LIT: the error names the literal's first byte, as json_strict does */
        unexpected_char(s, (unsigned char)s->lit[0], s->lit_off, "a JSON value");
        break;
    }
    return !s->utf8_bad && !s->syntax_bad;
}
