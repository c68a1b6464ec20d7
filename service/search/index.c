/* index.c: a collection's current chunks held in memory, and the scan over them (see index.h). */
#define _GNU_SOURCE /* mremap */
#include "search/index.h"

#include "search/kernel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
/* Rows scored per kernel call: a block stays in L2 while every query of a
 * request passes over it. */
#define BLOCK_BYTES (128 * 1024)
#define BLOCK_MAX   256

size_t index_bytes(const struct load_plan *p, int dims)
{
    size_t stride = kernel_stride(dims);
    size_t rows = (size_t)p->rows, docs = (size_t)p->docs;
    /* the strings twice: as loaded, and packed for filters when one is used */
    return sizeof(struct search_index) + rows * (stride * sizeof(float) + sizeof(float)) +
           rows * sizeof(struct search_row) + docs * (sizeof(struct search_doc) + 8) +
           (size_t)p->string_bytes * 2 + docs * 2;
}

/* What ix holds now, as index_bytes counts it. */
static size_t held_bytes(const struct search_index *ix)
{
    struct load_plan p;
    p.docs = (int64_t)ix->n_docs;
    p.rows = (int64_t)ix->n_rows;
    p.string_bytes = (int64_t)ix->strings_len;
    return index_bytes(&p, ix->dims);
}

struct search_index *index_new(int64_t version, int dims, size_t limit)
{
    struct search_index *ix = calloc(1, sizeof(*ix));
    if (!ix)
        return NULL;
    atomic_init(&ix->refs, 1);
    atomic_init(&ix->packed_ready, false);
    pthread_mutex_init(&ix->pack_lock, NULL);
    buf_init(&ix->packed, SIZE_MAX / 2);
    ix->version = version;
    ix->dims = dims;
    ix->stride = kernel_stride(dims);
    ix->limit = limit;
    return ix;
}

/* The matrix lives in its own mapping (page-aligned; grown and shrunk with
 * mremap, which moves pages instead of copying them). */
static bool resize_matrix(struct search_index *ix, size_t rows)
{
    size_t bytes = (rows * ix->stride * sizeof(float) + 4095) / 4096 * 4096;
    if (bytes == ix->vecs_bytes)
        return true;
    void *p;
    if (!ix->vecs)
        p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    else
        p = mremap(ix->vecs, ix->vecs_bytes, bytes, MREMAP_MAYMOVE);
    if (p == MAP_FAILED)
        return false;
    ix->vecs = p;
    ix->vecs_bytes = bytes;
    return true;
}

static bool grow_rows(struct search_index *ix)
{
    size_t cap = ix->cap_rows ? ix->cap_rows * 2 : 1024;
    float *inv = realloc(ix->inv_norm, cap * sizeof(float));
    if (inv)
        ix->inv_norm = inv;
    struct search_row *rows = realloc(ix->rows, cap * sizeof(*rows));
    if (rows)
        ix->rows = rows;
    if (!inv || !rows || !resize_matrix(ix, cap))
        return false;
    ix->cap_rows = cap;
    return true;
}

static bool grow_docs(struct search_index *ix)
{
    size_t cap = ix->cap_docs ? ix->cap_docs * 2 : 1024;
    struct search_doc *d = realloc(ix->docs, cap * sizeof(*d));
    if (!d)
        return false;
    ix->docs = d;
    ix->cap_docs = cap;
    return true;
}

bool index_finish(struct search_index *ix)
{
    size_t rows = ix->n_rows ? ix->n_rows : 1;
    if (!resize_matrix(ix, rows))
        return false;
    ix->cap_rows = rows;
    float *inv = realloc(ix->inv_norm, rows * sizeof(float));
    struct search_row *r = realloc(ix->rows, rows * sizeof(*r));
    struct search_doc *d = realloc(ix->docs, (ix->n_docs ? ix->n_docs : 1) * sizeof(*d));
    char *st = realloc(ix->strings, ix->strings_len ? ix->strings_len : 1);
    ix->inv_norm = inv ? inv : ix->inv_norm;
    ix->rows = r ? r : ix->rows;
    ix->docs = d ? d : ix->docs;
    ix->strings = st ? st : ix->strings;
    ix->strings_cap = st ? (ix->strings_len ? ix->strings_len : 1) : ix->strings_cap;
    ix->bytes = held_bytes(ix);
    return inv && r && d && st;
}

void index_retain(struct search_index *ix)
{
    atomic_fetch_add_explicit(&ix->refs, 1, memory_order_relaxed);
}

void index_release(struct search_index *ix)
{
    if (!ix || atomic_fetch_sub_explicit(&ix->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (ix->vecs)
        munmap(ix->vecs, ix->vecs_bytes);
    free(ix->inv_norm);
    free(ix->rows);
    free(ix->docs);
    free(ix->strings);
    buf_cleanup(&ix->packed);
    free(ix->pack_off);
    pthread_mutex_destroy(&ix->pack_lock);
    free(ix);
}

bool index_decode(float *dst, const unsigned char *src, size_t len, int dims, size_t stride)
{
    if (len != (size_t)dims * 4)
        return false;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(dst, src, len);
#else
    for (int i = 0; i < dims; i++) {
        uint32_t u = (uint32_t)src[4 * i] | (uint32_t)src[4 * i + 1] << 8 |
                     (uint32_t)src[4 * i + 2] << 16 | (uint32_t)src[4 * i + 3] << 24;
        memcpy(&dst[i], &u, 4);
    }
#endif
    memset(dst + dims, 0, (stride - (size_t)dims) * sizeof(float));
    return true;
}

/* Append s[0..n) and a NUL to the strings, growing them. */
static bool put_string(struct search_index *ix, const char *s, size_t n, uint64_t *off)
{
    if (ix->strings_len + n + 1 > ix->strings_cap) {
        size_t cap = (ix->strings_len + n + 1) * 2 + 4096;
        char *p = realloc(ix->strings, cap);
        if (!p)
            return false;
        ix->strings = p;
        ix->strings_cap = cap;
    }
    *off = ix->strings_len;
    memcpy(ix->strings + ix->strings_len, s, n);
    ix->strings[ix->strings_len + n] = '\0';
    ix->strings_len += n + 1;
    return true;
}

/* A new document begins at this row (rows come grouped by document). */
static bool new_doc(const struct search_index *ix, const struct load_row *r)
{
    if (ix->n_docs == 0)
        return true;
    const struct search_doc *d = &ix->docs[ix->n_docs - 1];
    return d->id_len != r->doc_id_len || memcmp(d->job_id, r->job_id, 16) != 0 ||
           memcmp(ix->strings + d->id_off, r->doc_id, r->doc_id_len) != 0;
}

bool index_add_row(void *arg, const struct load_row *r)
{
    struct search_index *ix = arg;
    if (r->doc_id_len > UINT32_MAX || r->metadata_len > UINT32_MAX)
        return false;
    /* over the budget: stop here (checked every 1024 rows, and at each large metadata) */
    if ((ix->n_rows % 1024 == 0 || r->metadata_len > 65536) &&
        held_bytes(ix) + r->metadata_len * 2 > ix->limit) {
        ix->over = true;
        return false;
    }
    if (ix->n_rows == ix->cap_rows && !grow_rows(ix))
        return false;
    if (new_doc(ix, r)) {
        if (ix->n_docs == ix->cap_docs && !grow_docs(ix))
            return false;
        struct search_doc *d = &ix->docs[ix->n_docs];
        memset(d, 0, sizeof(*d));
        if (!put_string(ix, r->doc_id, r->doc_id_len, &d->id_off))
            return false;
        d->id_len = (uint32_t)r->doc_id_len;
        memcpy(d->job_id, r->job_id, 16);
        if (r->metadata) {
            if (!put_string(ix, r->metadata, r->metadata_len, &d->meta_off))
                return false;
            d->meta_len = (uint32_t)r->metadata_len;
            d->has_meta = true;
        }
        ix->n_docs++;
    }
    float *v = ix->vecs + ix->n_rows * ix->stride;
    if (!index_decode(v, r->embedding, r->embedding_len, ix->dims, ix->stride)) {
        ix->bad_rows++;
        return true;
    }
    float ss = kernel_sumsq(v, ix->stride);
    ix->inv_norm[ix->n_rows] = ss > 0 && isfinite(ss) ? 1.0f / sqrtf(ss) : 0.0f;
    ix->rows[ix->n_rows] = (struct search_row){(uint32_t)(ix->n_docs - 1), r->seq, r->chunk_index,
                                               r->char_start, r->char_end};
    ix->n_rows++;
    return true;
}

/* Pack every document's metadata once (filter.h), under the lock. */
static bool pack_all(struct search_index *ix)
{
    if (atomic_load_explicit(&ix->packed_ready, memory_order_acquire))
        return true;
    pthread_mutex_lock(&ix->pack_lock);
    bool ok = atomic_load_explicit(&ix->packed_ready, memory_order_relaxed);
    if (!ok) {
        ix->pack_off = calloc(ix->n_docs + 1, sizeof(*ix->pack_off));
        ok = ix->pack_off != NULL;
        for (size_t d = 0; d < ix->n_docs && ok; d++) {
            ix->pack_off[d] = ix->packed.len;
            if (ix->docs[d].has_meta)
                ok = filter_pack(ix->strings + ix->docs[d].meta_off, ix->docs[d].meta_len,
                                 &ix->packed);
        }
        if (ok) {
            ix->pack_off[ix->n_docs] = ix->packed.len;
            atomic_store_explicit(&ix->packed_ready, true, memory_order_release);
        } else {
            free(ix->pack_off);
            ix->pack_off = NULL;
            buf_reset(&ix->packed);
        }
    }
    pthread_mutex_unlock(&ix->pack_lock);
    return ok;
}

uint8_t *index_filter_docs(struct search_index *ix, const struct search_filter *f)
{
    uint8_t *bits = calloc(ix->n_docs / 8 + 1, 1);
    if (!bits || (f->n > 0 && !pack_all(ix))) {
        free(bits);
        return NULL;
    }
    for (size_t d = 0; d < ix->n_docs; d++) {
        bool ok =
            f->n == 0 || filter_match(f, ix->docs[d].has_meta, ix->packed.data + ix->pack_off[d],
                                      (size_t)(ix->pack_off[d + 1] - ix->pack_off[d]));
        if (ok)
            bits[d / 8] |= (uint8_t)(1u << (d % 8));
    }
    return bits;
}

double index_exact_score(const float *q, double qnorm, const float *x, size_t stride)
{
    double xn = kernel_norm_exact(x, stride);
    if (!(xn > 0) || !(qnorm > 0))
        return 0;
    double s = kernel_dot_exact(q, x, stride) / (qnorm * xn);
    return isfinite(s) ? s : 0;
}

void index_scan(const struct scan_part *p)
{
    const struct search_index *ix = p->ix;
    size_t stride = ix->stride;
    size_t block = BLOCK_BYTES / (stride * sizeof(float));
    block = block < 1 ? 1 : block > BLOCK_MAX ? BLOCK_MAX : block;
    float dots[BLOCK_MAX];
    for (size_t start = p->from; start < p->to; start += block) {
        size_t nb = p->to - start < block ? p->to - start : block;
        const float *rows = ix->vecs + start * stride;
        const float *inv = ix->inv_norm + start;
        for (size_t qi = 0; qi < p->nq; qi++) {
            const float *q = p->queries + qi * stride;
            struct topk *t = &p->heaps[qi];
            kernel_dots(q, rows, stride, nb, dots);
            for (size_t r = 0; r < nb; r++) {
                if (!topk_admits(t, dots[r] * inv[r]) || inv[r] == 0.0f)
                    continue;
                size_t row = start + r;
                uint32_t d = ix->rows[row].doc;
                if (p->doc_ok && !(p->doc_ok[d / 8] & (1u << (d % 8))))
                    continue;
                double s = index_exact_score(p->exact + qi * stride, p->qnorm[qi],
                                             rows + r * stride, stride);
                (void)topk_push(t, s, row);
            }
        }
    }
}
