/*
 * vecfmt.h: JSON text holding float32 vectors as arrays of numbers, the
 * vectors formatted on several threads at once.
 *
 * Writing a vector's numbers (util/numfmt.h) costs about 25 ns per number,
 * 20 us for a 768-d vector: most of a results export. The text around the
 * vectors is appended to `text` as usual and each vector is only noted
 * (vecfmt_vector copies its bytes); vecfmt_flush then formats the noted
 * vectors in parts on a work pool's threads and the caller's, and appends
 * the finished text to the destination.
 */
#ifndef SVC_UTIL_VECFMT_H
#define SVC_UTIL_VECFMT_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"
#include "util/compiler.h"

struct work_pool;
struct vecfmt_hole;

struct vecfmt {
    struct buf text; /* the text so far, without the noted vectors */
    struct vecfmt_hole *holes;
    size_t n, cap;      /* vectors noted since the last flush */
    unsigned char *src; /* their bytes */
    size_t src_len, src_cap;
    char *out; /* their text, while flushing */
    size_t out_cap;
};

/* An empty batch whose text may grow to max bytes. Cannot fail. */
void vecfmt_init(struct vecfmt *v, size_t max);
void vecfmt_cleanup(struct vecfmt *v);
/* Note the dims float32 little-endian values at le (as stored) as a JSON
 * array at the end of the text so far. false (nothing noted) on OOM. */
bool vecfmt_vector(struct vecfmt *v, const unsigned char *le, int dims) SVC_MUSTCHECK;
/* Vectors noted since the last flush. */
static inline size_t vecfmt_pending(const struct vecfmt *v)
{
    return v->n;
}
/* Format the noted vectors (on pool's threads and this one; pool may be
 * NULL) and append the text with them to dst; v is empty after, whatever
 * the outcome. false past dst's cap or on OOM (dst then unchanged). */
bool vecfmt_flush(struct vecfmt *v, struct work_pool *pool, struct buf *dst) SVC_MUSTCHECK;

#endif
