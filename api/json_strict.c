/* json_strict.c: the RFC 8259 syntax check (see json_strict.h). */
#include "json_strict.h"

#include "util/compiler.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct scan {
    const unsigned char *p, *end, *start;
    int depth, max_depth;
    struct json_strict_error *e;
};

static bool fail(struct scan *s, const char *fmt, ...) SVC_PRINTF(2, 3);

static bool fail(struct scan *s, const char *fmt, ...)
{
    va_list ap;
    s->e->offset = (size_t)(s->p - s->start);
    va_start(ap, fmt);
    vsnprintf(s->e->message, sizeof(s->e->message), fmt, ap);
    va_end(ap);
    return false;
}

static bool unexpected(struct scan *s, const char *expected)
{
    if (s->p >= s->end)
        return fail(s, "unexpected end of the body (expected %s)", expected);
    unsigned char c = *s->p;
    if (c >= 0x20 && c < 0x7f)
        return fail(s, "unexpected character '%c' at byte %zu (expected %s)", c,
                    (size_t)(s->p - s->start), expected);
    return fail(s, "unexpected byte 0x%02x at byte %zu (expected %s)", c, (size_t)(s->p - s->start),
                expected);
}

static void skip_ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int hex(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* \uXXXX after the backslash and 'u'; writes the code unit. */
static bool hex4(struct scan *s, unsigned *u)
{
    if (s->end - s->p < 4)
        return fail(s, "truncated \\u escape at byte %zu", (size_t)(s->p - s->start));
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hex(s->p[i]);
        if (h < 0)
            return fail(s, "bad \\u escape at byte %zu", (size_t)(s->p - s->start));
        v = v << 4 | (unsigned)h;
    }
    s->p += 4;
    *u = v;
    return true;
}

static bool string(struct scan *s, bool key)
{
    s->p++; /* the opening quote */
    while (s->p < s->end) {
        unsigned char c = *s->p;
        if (c == '"') {
            s->p++;
            return true;
        }
        if (c < 0x20)
            return fail(s, "control character 0x%02x inside a string at byte %zu (escape it)", c,
                        (size_t)(s->p - s->start));
        if (c != '\\') {
            s->p++;
            continue;
        }
        s->p++;
        if (s->p >= s->end)
            break;
        c = *s->p++;
        if (strchr("\"\\/bfnrt", c) && c) /* strchr finds the terminator too */
            continue;
        if (c != 'u') {
            s->p--;
            return fail(s, "invalid escape '\\%c' at byte %zu", c >= 0x20 && c < 0x7f ? c : '?',
                        (size_t)(s->p - s->start));
        }
        unsigned u;
        if (!hex4(s, &u))
            return false;
        if (u == 0 && key)
            return fail(s, "\\u0000 (NUL) in a member name at byte %zu",
                        (size_t)(s->p - s->start - 6));
        if (u >= 0xDC00 && u <= 0xDFFF)
            return fail(s, "unpaired surrogate \\u%04x at byte %zu", u,
                        (size_t)(s->p - s->start - 6));
        if (u >= 0xD800 && u <= 0xDBFF) {
            unsigned lo;
            if (s->end - s->p < 2 || s->p[0] != '\\' || s->p[1] != 'u')
                return fail(s, "unpaired surrogate \\u%04x at byte %zu", u,
                            (size_t)(s->p - s->start - 6));
            s->p += 2;
            if (!hex4(s, &lo))
                return false;
            if (lo < 0xDC00 || lo > 0xDFFF)
                return fail(s, "unpaired surrogate \\u%04x at byte %zu", u,
                            (size_t)(s->p - s->start - 12));
        }
    }
    return fail(s, "unterminated string");
}

static bool digits(struct scan *s)
{
    const unsigned char *b = s->p;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
        s->p++;
    return s->p > b;
}

static bool number(struct scan *s)
{
    if (*s->p == '-')
        s->p++;
    if (s->p < s->end && *s->p == '0')
        s->p++;
    else if (!digits(s))
        return unexpected(s, "a digit");
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (!digits(s))
            return unexpected(s, "a digit after '.'");
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (!digits(s))
            return unexpected(s, "a digit in the exponent");
    }
    return true;
}

static bool literal(struct scan *s, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return unexpected(s, "a JSON value");
    s->p += n;
    return true;
}

static bool value(struct scan *s);

static bool container(struct scan *s, bool object)
{
    if (++s->depth > s->max_depth)
        return fail(s, "nested deeper than %d levels at byte %zu", s->max_depth,
                    (size_t)(s->p - s->start));
    unsigned char close = object ? '}' : ']';
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        s->depth--;
        return true;
    }
    for (;;) {
        if (object) {
            skip_ws(s);
            if (s->p >= s->end || *s->p != '"')
                return unexpected(s, "a member name in double quotes");
            if (!string(s, true))
                return false;
            skip_ws(s);
            if (s->p >= s->end || *s->p != ':')
                return unexpected(s, "':'");
            s->p++;
        }
        if (!value(s))
            return false;
        skip_ws(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            continue;
        }
        if (s->p < s->end && *s->p == close) {
            s->p++;
            s->depth--;
            return true;
        }
        return unexpected(s, object ? "',' or '}'" : "',' or ']'");
    }
}

static bool value(struct scan *s)
{
    skip_ws(s);
    if (s->p >= s->end)
        return unexpected(s, "a JSON value");
    switch (*s->p) {
    case '{':
        return container(s, true);
    case '[':
        return container(s, false);
    case '"':
        return string(s, false);
    case 't':
        return literal(s, "true");
    case 'f':
        return literal(s, "false");
    case 'n':
        return literal(s, "null");
    default:
        if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))
            return number(s);
        return unexpected(s, "a JSON value");
    }
}

bool json_strict_check(const char *p, size_t len, int max_depth, struct json_strict_error *e)
{
    struct scan s = {(const unsigned char *)p,
                     (const unsigned char *)p + len,
                     (const unsigned char *)p,
                     0,
                     max_depth,
                     e};
    e->offset = 0;
    e->message[0] = '\0';
    if (!value(&s))
        return false;
    skip_ws(&s);
    if (s.p != s.end)
        return unexpected(&s, "the end of the body");
    return true;
}
