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
#include "util/workpool.h"

struct vecfmt_hole;

/* Parts at most in one flush (a larger batch makes larger parts). */
#define VECFMT_MAX_PARTS 64

struct vecfmt_part {
    struct vecfmt *v;
    size_t from, to; /* holes */
};

struct vecfmt {
    struct buf text; /* the text so far, without the noted vectors */
    struct vecfmt_hole *holes;
    size_t n, cap;      /* vectors noted since the last flush */
    unsigned char *src; /* their bytes */
    size_t src_len, src_cap;
    char *out; /* their text, while flushing */
    size_t out_cap;
    /* between vecfmt_start and vecfmt_finish */
    bool started, failed;
    struct work_run run;
    struct vecfmt_part parts[VECFMT_MAX_PARTS];
};

/* An empty batch whose text may grow to max bytes. Cannot fail. */
void vecfmt_init(struct vecfmt *v, size_t max);
/* Free v (a started batch is finished first, its text dropped). */
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
/* vecfmt_flush in two steps, so that the pool's threads format while the
 * caller does something else (fills another batch): start hands the
 * vectors to the pool and returns at once; v is not to be touched until
 * finish, which formats what no pool thread has started, waits for the
 * rest and appends the text to dst (NULL: drops it). */
void vecfmt_start(struct vecfmt *v, struct work_pool *pool);
bool vecfmt_finish(struct vecfmt *v, struct buf *dst) SVC_MUSTCHECK;

#endif
