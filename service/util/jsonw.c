/* jsonw.c: JSON text into bounded buffers: escaped strings, float32 vectors (see jsonw.h). */
#include "util/jsonw.h"

#include "util/crypto.h"
#include "util/numfmt.h"

#include <string.h>

size_t jsonw_escape(unsigned char c, char out[6])
{
    static const char hex[] = "0123456789abcdef";
    static const char shorts[] = {['"'] = '"',  ['\\'] = '\\', ['\b'] = 'b', ['\f'] = 'f',
                                  ['\n'] = 'n', ['\r'] = 'r',  ['\t'] = 't'};
    out[0] = '\\';
    if (c < sizeof(shorts) && shorts[c]) {
        out[1] = shorts[c];
        return 2;
    }
    out[1] = 'u';
    out[2] = '0';
    out[3] = '0';
    out[4] = hex[c >> 4];
    out[5] = hex[c & 15];
    return 6;
}

size_t jsonw_str_len(const char *s, size_t len)
{
    size_t n = len;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char e[6];
        if (jsonw_needs_escape(c))
            n += jsonw_escape(c, e) - 1;
    }
    return n;
}

bool jsonw_str(struct buf *b, const char *s, size_t len)
{
    if (!buf_reserve(b, len + 2) || !buf_putc(b, '"'))
        return false;
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!jsonw_needs_escape(c))
            continue;
        char esc[6];
        if (!buf_append(b, s + start, i - start) || !buf_append(b, esc, jsonw_escape(c, esc)))
            return false;
        start = i + 1;
    }
    return buf_append(b, s + start, len - start) && buf_putc(b, '"');
}

bool jsonw_cstr(struct buf *b, const char *s)
{
    return s ? jsonw_str(b, s, strlen(s)) : buf_puts(b, "null");
}

bool jsonw_f32le_base64(struct buf *b, const unsigned char *v, int dims)
{
    size_t n = (size_t)dims * 4;
    if (!buf_reserve(b, BASE64_ENCODED_SIZE(n) + 1)) /* the quotes; encoding's NUL is cap's */
        return false;
    b->data[b->len++] = '"';
    b->len += base64_encode(b->data + b->len, v, n);
    b->data[b->len++] = '"';
    b->data[b->len] = '\0';
    return true;
}

bool jsonw_f32le_array(struct buf *b, const unsigned char *v, int dims)
{
    if (!buf_reserve(b, NUMFMT_F32_ARRAY_MAX(dims)))
        return false;
    b->len += numfmt_f32le_array(b->data + b->len, v, (size_t)dims);
    return true;
}
