/* jsonw.c: JSON text into bounded buffers: escaped strings, float32 vectors (see jsonw.h). */
#include "util/jsonw.h"

#include "util/crypto.h"
#include "util/numfmt.h"

#include <string.h>

bool jsonw_str(struct buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    if (!buf_reserve(b, len + 2) || !buf_putc(b, '"'))
        return false;
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        if (!buf_append(b, s + start, i - start))
            return false;
        start = i + 1;
        char esc[6] = {'\\', (char)c, 0, 0, 0, 0};
        size_t n = 2;
        if (c == '\n')
            esc[1] = 'n';
        else if (c == '\r')
            esc[1] = 'r';
        else if (c == '\t')
            esc[1] = 't';
        else if (c < 0x20) {
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        if (!buf_append(b, esc, n))
            return false;
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
