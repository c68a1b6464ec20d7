/* filter.c: metadata equality filters (see filter.h). */
#include "search/filter.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* A pair is: key length (4 bytes, host order), key, value length, value;
 * the value is a type byte ('s' string, 'n' number, 't', 'f', 'z' null)
 * followed by the string's bytes or the number as "%.17g". */

void search_filter_init(struct search_filter *f)
{
    buf_init(&f->packed, (size_t)1 << 20);
    f->n = 0;
}

void search_filter_cleanup(struct search_filter *f)
{
    buf_cleanup(&f->packed);
    f->n = 0;
}

bool search_filter_scalar(json_object *v)
{
    switch (json_object_get_type(v)) {
    case json_type_null:
    case json_type_boolean:
    case json_type_double:
    case json_type_int:
    case json_type_string:
        return true;
    default:
        return false;
    }
}

static bool put_len(struct buf *b, size_t n)
{
    uint32_t u = (uint32_t)n;
    return n <= UINT32_MAX && buf_append(b, &u, sizeof(u));
}

/* Append the pair key = v; false if v is not a scalar or out of memory. */
static bool put_pair(struct buf *b, const char *key, size_t key_len, json_object *v)
{
    char num[40];
    const char *val = num;
    size_t val_len;
    char type;
    switch (json_object_get_type(v)) {
    case json_type_null:
        type = 'z', val_len = 0;
        break;
    case json_type_boolean:
        type = json_object_get_boolean(v) ? 't' : 'f', val_len = 0;
        break;
    case json_type_int:
    case json_type_double: {
        double d = json_object_is_type(v, json_type_int) ? (double)json_object_get_int64(v)
                                                         : json_object_get_double(v);
        if (d == 0)
            d = 0; /* -0 equals 0 */
        type = 'n';
        val_len = (size_t)snprintf(num, sizeof(num), "%.17g", d);
        break;
    }
    case json_type_string:
        type = 's';
        val = json_object_get_string(v);
        val_len = (size_t)json_object_get_string_len(v);
        break;
    default:
        return false;
    }
    return put_len(b, key_len) && buf_append(b, key, key_len) && put_len(b, val_len + 1) &&
           buf_putc(b, type) && buf_append(b, val, val_len);
}

bool search_filter_add(struct search_filter *f, const char *key, size_t key_len, json_object *v)
{
    if (!put_pair(&f->packed, key, key_len, v))
        return false;
    f->n++;
    return true;
}

bool filter_pack(const char *json, size_t len, struct buf *out)
{
    if (len > INT32_MAX)
        return true;
    struct json_tokener *tok = json_tokener_new();
    if (!tok)
        return false;
    json_object *o = json_tokener_parse_ex(tok, json, (int)len);
    json_tokener_free(tok);
    bool ok = true;
    if (o && json_object_is_type(o, json_type_object)) {
        struct json_object_iterator it = json_object_iter_begin(o);
        struct json_object_iterator end = json_object_iter_end(o);
        for (; ok && !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
            json_object *v = json_object_iter_peek_value(&it);
            const char *k = json_object_iter_peek_name(&it);
            if (search_filter_scalar(v))
                ok = put_pair(out, k, strlen(k), v);
        }
    }
    json_object_put(o);
    return ok;
}

/* Read the pair at p (within end): key and value spans; the next pair. */
static const char *next_pair(const char *p, const char *end, const char **key, uint32_t *key_len,
                             const char **val, uint32_t *val_len)
{
    if ((size_t)(end - p) < sizeof(uint32_t))
        return NULL;
    memcpy(key_len, p, sizeof(*key_len));
    p += sizeof(*key_len);
    if ((size_t)(end - p) < (size_t)*key_len + sizeof(uint32_t))
        return NULL;
    *key = p;
    p += *key_len;
    memcpy(val_len, p, sizeof(*val_len));
    p += sizeof(*val_len);
    if ((size_t)(end - p) < *val_len)
        return NULL;
    *val = p;
    return p + *val_len;
}

bool filter_match(const struct search_filter *f, bool has_meta, const char *doc, size_t len)
{
    if (f->n == 0)
        return true;
    if (!has_meta)
        return false;
    const char *p = f->packed.data, *pend = p + f->packed.len;
    const char *dend = doc + len;
    for (size_t i = 0; i < f->n; i++) {
        const char *k, *v;
        uint32_t kl, vl;
        p = next_pair(p, pend, &k, &kl, &v, &vl);
        if (!p)
            return false;
        bool found = false;
        for (const char *q = doc; q && q < dend && !found;) {
            const char *dk, *dv;
            uint32_t dkl, dvl;
            q = next_pair(q, dend, &dk, &dkl, &dv, &dvl);
            found = q && dkl == kl && dvl == vl && memcmp(dk, k, kl) == 0 && memcmp(dv, v, vl) == 0;
        }
        if (!found)
            return false;
    }
    return true;
}
