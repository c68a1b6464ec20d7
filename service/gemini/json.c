/* json.c: reading json-c values for the Gemini parsers: whole bodies, member paths, proto3 int64s,
 * bounded string copies. */
#include "gemini/json.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void gem_json_fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* One JSON value filling body[0..len) exactly (trailing whitespace allowed). */
json_object *gem_json_parse_body(const char *body, size_t len, char *err, size_t errlen)
{
    if (!body || len == 0) {
        gem_json_fail(err, errlen, "empty response body");
        return NULL;
    }
    if (len > INT_MAX) {
        gem_json_fail(err, errlen, "response body too large to parse (%zu bytes)", len);
        return NULL;
    }
    struct json_tokener *tok = json_tokener_new_ex(64);
    if (!tok) {
        gem_json_fail(err, errlen, "out of memory");
        return NULL;
    }
    json_object *o = json_tokener_parse_ex(tok, body, (int)len);
    enum json_tokener_error e = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (o && e == json_tokener_success && end == len)
        return o;
    if (e == json_tokener_continue)
        gem_json_fail(err, errlen, "response is not valid JSON: incomplete (truncated?)");
    else if (e != json_tokener_success)
        gem_json_fail(err, errlen, "response is not valid JSON: %s at byte %zu",
                      json_tokener_error_desc(e), end);
    else
        gem_json_fail(err, errlen, "response is not valid JSON: unexpected data at byte %zu", end);
    json_object_put(o);
    return NULL;
}

/* Walk the member names given (NULL-terminated); NULL if any step is not an object or absent. */
json_object *gem_json_dig(json_object *o, ...)
{
    va_list ap;
    va_start(ap, o);
    for (const char *name = va_arg(ap, const char *); o && name; name = va_arg(ap, const char *)) {
        json_object *next = NULL;
        if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, name, &next))
            next = NULL;
        o = next;
    }
    va_end(ap);
    return o;
}

bool gem_json_is_obj(json_object *v)
{
    return v && json_object_is_type(v, json_type_object);
}

const char *gem_json_str_of(json_object *v)
{
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* Decimal integer text, all of it; false if malformed or out of range. */
static bool parse_int_text(const char *s, int64_t *out)
{
    const char *p = s;
    bool neg = *p == '-';
    if (neg)
        p++;
    if (*p < '0' || *p > '9')
        return false;
    uint64_t v = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (*p || v > (uint64_t)INT64_MAX)
        return false;
    *out = neg ? -(int64_t)v : (int64_t)v;
    return true;
}

/* proto3 int64: a JSON integer or a string of digits. */
static bool i64_of(json_object *v, int64_t *out)
{
    if (v && json_object_is_type(v, json_type_int)) {
        *out = json_object_get_int64(v);
        return true;
    }
    const char *s = gem_json_str_of(v);
    return s && parse_int_text(s, out);
}

int64_t gem_json_i64_or(json_object *v, int64_t dflt)
{
    int64_t x;
    return i64_of(v, &x) ? x : dflt;
}

/* Copy a JSON string into dst[n]. Cut at a UTF-8 boundary when too long; returns
 * whether it fit. A missing or non-string value gives "". */
bool gem_json_copy_str(char *dst, size_t n, json_object *v)
{
    const char *s = gem_json_str_of(v);
    size_t len = s ? (size_t)json_object_get_string_len(v) : 0;
    bool fits = len < n;
    if (!fits) {
        len = n - 1;
        while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
            len--;
    }
    if (len)
        memcpy(dst, s, len);
    dst[len] = '\0';
    return fits;
}
