/* vecfmt.c: vectors formatted as JSON on several threads (see vecfmt.h). */
#include "util/vecfmt.h"

#include "util/numfmt.h"
#include "util/workpool.h"

#include <stdlib.h>
#include <string.h>

struct vecfmt_hole {
    size_t at;  /* where in text the vector goes */
    size_t src; /* its bytes in src */
    size_t dims;
    size_t out; /* its text in out, while flushing */
    size_t len;
};

/* Vectors per part of a flush: small enough to share a batch evenly, large
 * enough (about 40 us at 768-d) that handing a part over costs little. */
#define VECFMT_PART 2

void vecfmt_init(struct vecfmt *v, size_t max)
{
    memset(v, 0, sizeof(*v));
    buf_init(&v->text, max);
}

void vecfmt_cleanup(struct vecfmt *v)
{
    if (v->started) {                       /* the pool's threads may still be writing into it */
        bool kept = vecfmt_finish(v, NULL); /* false: the text is dropped */
        (void)kept;
    }
    buf_cleanup(&v->text);
    free(v->holes);
    free(v->src);
    free(v->out);
    memset(v, 0, sizeof(*v));
}

/* Grow *p (holding *cap elements of size) to hold at least need. */
static bool grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return true;
    size_t n = *cap ? *cap : 16;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, n * size);
    if (!q)
        return false;
    *p = q;
    *cap = n;
    return true;
}

bool vecfmt_vector(struct vecfmt *v, const unsigned char *le, int dims)
{
    size_t bytes = dims > 0 ? (size_t)dims * 4 : 0;
    if (!grow((void **)&v->holes, &v->cap, v->n + 1, sizeof(*v->holes)) ||
        !grow((void **)&v->src, &v->src_cap, v->src_len + bytes, 1))
        return false;
    if (bytes)
        memcpy(v->src + v->src_len, le, bytes);
    v->holes[v->n++] = (struct vecfmt_hole){v->text.len, v->src_len, bytes / 4, 0, 0};
    v->src_len += bytes;
    return true;
}

static void format_part(void *arg)
{
    const struct vecfmt_part *p = arg;
    struct vecfmt *v = p->v;
    for (size_t i = p->from; i < p->to; i++) {
        struct vecfmt_hole *h = &v->holes[i];
        h->len = numfmt_f32le_array(v->out + h->out, v->src + h->src, h->dims);
    }
}

static void empty(struct vecfmt *v)
{
    buf_reset(&v->text);
    v->n = 0;
    v->src_len = 0;
}

void vecfmt_start(struct vecfmt *v, struct work_pool *pool)
{
    size_t room = 0;
    for (size_t i = 0; i < v->n; i++) {
        v->holes[i].out = room;
        room += NUMFMT_F32_ARRAY_MAX(v->holes[i].dims);
    }
    v->started = true;
    v->failed = !grow((void **)&v->out, &v->out_cap, room, 1);
    size_t per = VECFMT_PART, nparts = v->failed ? 0 : (v->n + per - 1) / per;
    if (nparts > VECFMT_MAX_PARTS) {
        nparts = VECFMT_MAX_PARTS;
        per = (v->n + nparts - 1) / nparts;
    }
    for (size_t i = 0; i < nparts; i++)
        v->parts[i] = (struct vecfmt_part){v, i * per, (i + 1) * per < v->n ? (i + 1) * per : v->n};
    work_pool_start(pool, &v->run, format_part, v->parts, sizeof(v->parts[0]), nparts);
}

bool vecfmt_finish(struct vecfmt *v, struct buf *dst)
{
    work_pool_finish(&v->run);
    v->started = false;
    bool ok = !v->failed && dst;
    size_t total = v->text.len;
    for (size_t i = 0; ok && i < v->n; i++)
        total += v->holes[i].len;
    ok = ok && buf_reserve(dst, total);
    size_t at = 0;
    for (size_t i = 0; ok && i <= v->n; i++) {
        size_t upto = i < v->n ? v->holes[i].at : v->text.len;
        if (upto > at) /* text.data is NULL while nothing was written */
            memcpy(dst->data + dst->len, v->text.data + at, upto - at);
        dst->len += upto - at;
        at = upto;
        if (i < v->n) {
            memcpy(dst->data + dst->len, v->out + v->holes[i].out, v->holes[i].len);
            dst->len += v->holes[i].len;
        }
    }
    if (ok)
        dst->data[dst->len] = '\0';
    empty(v);
    return ok;
}

bool vecfmt_flush(struct vecfmt *v, struct work_pool *pool, struct buf *dst)
{
    vecfmt_start(v, pool);
    return vecfmt_finish(v, dst);
}
