/*
 * index.h: a collection held in memory for search: an immutable snapshot
 * of its current chunks at one version. Rows (chunks) are in the
 * collection's order (document id, then seq) and their vectors form one
 * contiguous float32 matrix (its own page-aligned mapping), each row
 * padded with zeros to the kernel's stride. Built as the rows arrive, in
 * arrays that double (the matrix grows by mremap, without copying), then
 * trimmed. Shared by every thread that searches it, reference-counted;
 * freed by the last release.
 */
#ifndef SVC_SEARCH_INDEX_H
#define SVC_SEARCH_INDEX_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "search/filter.h"
#include "search/load.h"
#include "search/topk.h"
#include "util/compiler.h"

struct search_doc {
    uint64_t id_off, meta_off; /* into the strings */
    uint32_t id_len, meta_len;
    bool has_meta;
    unsigned char job_id[16];
};

struct search_row {
    uint32_t doc;
    int32_t seq, chunk_index, char_start, char_end;
};

struct search_index {
    atomic_int refs;
    int64_t version;
    int dims;
    size_t stride;
    size_t n_rows, n_docs, cap_rows, cap_docs;
    float *vecs; /* n_rows x stride */
    size_t vecs_bytes;
    float *inv_norm; /* 1/|row| (0 for a zero or non-finite row: never a hit) */
    struct search_row *rows;
    struct search_doc *docs;
    char *strings; /* document ids and metadata texts */
    size_t strings_len, strings_cap;
    size_t bytes;     /* what it holds, for the memory budget (index_finish) */
    size_t limit;     /* index_add_row refuses rows past this many bytes */
    bool over;        /* it did */
    int64_t bad_rows; /* rows skipped: a vector of the wrong size */
    /* each document's metadata packed for filters (filter.h), at the first filtered query */
    pthread_mutex_t pack_lock;
    atomic_bool packed_ready;
    struct buf packed;
    uint64_t *pack_off; /* n_docs + 1 */
};

/* The bytes an index of a collection of that size holds. */
size_t index_bytes(const struct load_plan *p, int dims);

/* An empty index of collection version version (rows of dims components)
 * that may grow to limit bytes; NULL on OOM. refs = 1. */
struct search_index *index_new(int64_t version, int dims, size_t limit);
/* load_sink_fn: append a row (arg: the index). false past the limit (over
 * is then set) or out of memory. */
bool index_add_row(void *arg, const struct load_row *r);
/* Every row is in: trim the arrays, count the bytes. false on OOM. */
bool index_finish(struct search_index *ix) SVC_MUSTCHECK;
void index_retain(struct search_index *ix);
void index_release(struct search_index *ix);

/* A document's id, and its metadata text (NULL when none). */
static inline const char *index_doc_id(const struct search_index *ix, uint32_t d)
{
    return ix->strings + ix->docs[d].id_off;
}
static inline const char *index_doc_meta(const struct search_index *ix, uint32_t d)
{
    return ix->docs[d].has_meta ? ix->strings + ix->docs[d].meta_off : NULL;
}

/* A bitmap (one bit per document) of the documents matching f; NULL on OOM. */
uint8_t *index_filter_docs(struct search_index *ix, const struct search_filter *f);

/* One part of a scan: rows [from, to) against nq query rows (stride floats
 * each): scaled to unit length for the float32 scan (queries), and as given
 * for the exact scores (exact, whose norms are qnorm); one heap per query. */
struct scan_part {
    const struct search_index *ix;
    const float *queries;
    const float *exact;
    const double *qnorm;
    size_t nq;
    const uint8_t *doc_ok; /* NULL: every document */
    size_t from, to;
    struct topk *heaps;
};
void index_scan(const struct scan_part *p);

/* The exact score of a query q (|q| = qnorm) against row x (stride floats):
 * <q, x> / (|q| |x|) in double; 0 for a zero row. */
double index_exact_score(const float *q, double qnorm, const float *x, size_t stride);

/* Decode a stored vector (float32 little-endian) into dst (stride floats,
 * zero-padded); false when len is not dims * 4. */
bool index_decode(float *dst, const unsigned char *src, size_t len, int dims, size_t stride);

#endif
