/* pgarray.c: PostgreSQL array parameters, binary one-dimensional arrays and
 * text-array elements (see pgarray.h). */
#include "store/pgarray.h"

#include <math.h>
#include <string.h>

static void put_be32(char *p, uint32_t v)
{
    p[0] = (char)(v >> 24);
    p[1] = (char)(v >> 16);
    p[2] = (char)(v >> 8);
    p[3] = (char)v;
}

/* header of an array of n elements of type oid; the elements follow */
bool pgarray_begin(struct buf *out, uint32_t oid, size_t n)
{
    if (n > INT32_MAX || !buf_reserve(out, 20))
        return false;
    char *p = out->data + out->len;
    put_be32(p, 1);                /* dimensions */
    put_be32(p + 4, 0);            /* no NULLs */
    put_be32(p + 8, oid);          /* element type */
    put_be32(p + 12, (uint32_t)n); /* length */
    put_be32(p + 16, 1);           /* lower bound */
    out->len += 20;
    return true;
}

bool pgarray_int4(struct buf *out, int32_t v)
{
    if (!buf_reserve(out, 8))
        return false;
    put_be32(out->data + out->len, 4);
    put_be32(out->data + out->len + 4, (uint32_t)v);
    out->len += 8;
    return true;
}

/* a float32 vector as a bytea element: little-endian floats, L2-normalised if asked */
bool pgarray_vector(struct buf *out, const float *v, int dims, bool normalize)
{
    double norm = 1.0;
    if (normalize) {
        double s = 0;
        for (int i = 0; i < dims; i++)
            s += (double)v[i] * (double)v[i];
        norm = s > 0 ? sqrt(s) : 1.0;
    }
    if (dims <= 0 || !buf_reserve(out, 4 + (size_t)dims * 4))
        return false;
    put_be32(out->data + out->len, (uint32_t)dims * 4);
    unsigned char *p = (unsigned char *)out->data + out->len + 4;
    for (int i = 0; i < dims; i++) {
        float f = normalize ? (float)((double)v[i] / norm) : v[i];
        uint32_t u;
        memcpy(&u, &f, 4);
        p[0] = (unsigned char)u;
        p[1] = (unsigned char)(u >> 8);
        p[2] = (unsigned char)(u >> 16);
        p[3] = (unsigned char)(u >> 24);
        p += 4;
    }
    out->len += 4 + (size_t)dims * 4;
    return true;
}

/* Append s as an element of a PostgreSQL text array literal. */
bool pgarray_text(struct buf *out, const char *s)
{
    bool ok = buf_putc(out, '"');
    for (; *s && ok; s++)
        ok = (*s == '"' || *s == '\\') ? buf_putc(out, '\\') && buf_putc(out, *s)
                                       : buf_putc(out, *s);
    return ok && buf_putc(out, '"');
}
