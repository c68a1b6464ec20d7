/* stream.c: search by streaming a collection's vectors from PostgreSQL (see stream.h). */
#include "search/stream.h"

#include "search/index.h"
#include "search/kernel.h"
#include "search/load.h"
#include "search/topk.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a heap entry stands for: the hit, copied when the row entered. */
struct slot {
    char *doc_id, *metadata;
    int32_t seq, chunk_index, char_start, char_end;
    unsigned char job_id[16];
};

struct stream {
    const float *queries, *exact;
    const double *qnorm;
    size_t nq, stride;
    int k, dims;
    const struct search_filter *filter;
    bool want_meta;
    struct topk *heaps;
    struct topk_entry *entries;
    struct slot *slots; /* nq x k */
    float *row;
    uint64_t n; /* rows of the right size seen: the collection's order, as in memory */
    /* the document being read */
    bool have_doc, has_meta, doc_ok;
    struct buf doc_id, meta, pack;
    unsigned char job_id[16];
    bool oom;
};

static bool same_doc(const struct stream *s, const struct load_row *r)
{
    return s->have_doc && s->doc_id.len == r->doc_id_len &&
           memcmp(s->doc_id.data ? s->doc_id.data : "", r->doc_id, r->doc_id_len) == 0 &&
           memcmp(s->job_id, r->job_id, 16) == 0;
}

static bool begin_doc(struct stream *s, const struct load_row *r)
{
    buf_reset(&s->doc_id);
    buf_reset(&s->meta);
    s->have_doc = true;
    s->has_meta = r->metadata != NULL;
    memcpy(s->job_id, r->job_id, 16);
    if (!buf_append(&s->doc_id, r->doc_id, r->doc_id_len) || !buf_putc(&s->doc_id, '\0') ||
        (s->has_meta &&
         (!buf_append(&s->meta, r->metadata, r->metadata_len) || !buf_putc(&s->meta, '\0'))))
        return false;
    s->doc_id.len--; /* the NUL is a terminator, not part of the id */
    if (s->has_meta)
        s->meta.len--;
    s->doc_ok = true;
    if (s->filter && s->filter->n > 0) {
        buf_reset(&s->pack);
        if (s->has_meta && !filter_pack(r->metadata, r->metadata_len, &s->pack))
            return false;
        s->doc_ok = filter_match(s->filter, s->has_meta, s->pack.data, s->pack.len);
    }
    return true;
}

static bool fill_slot(struct stream *s, struct slot *sl, const struct load_row *r)
{
    free(sl->doc_id);
    free(sl->metadata);
    sl->doc_id = strdup(s->doc_id.data);
    sl->metadata = s->want_meta && s->has_meta ? strdup(s->meta.data) : NULL;
    sl->seq = r->seq;
    sl->chunk_index = r->chunk_index;
    sl->char_start = r->char_start;
    sl->char_end = r->char_end;
    memcpy(sl->job_id, r->job_id, 16);
    return sl->doc_id && (sl->metadata || !(s->want_meta && s->has_meta));
}

static bool sink(void *arg, const struct load_row *r)
{
    struct stream *s = arg;
    if (!same_doc(s, r) && !begin_doc(s, r)) {
        s->oom = true;
        return false;
    }
    if (!index_decode(s->row, r->embedding, r->embedding_len, s->dims, s->stride))
        return true; /* the in-memory index skips it too */
    uint64_t row = s->n++;
    float ss = kernel_sumsq(s->row, s->stride);
    float inv = ss > 0 && isfinite(ss) ? 1.0f / sqrtf(ss) : 0.0f;
    if (inv == 0.0f || !s->doc_ok)
        return true;
    for (size_t qi = 0; qi < s->nq; qi++) {
        const float *q = s->queries + qi * s->stride;
        struct topk *t = &s->heaps[qi];
        float f;
        kernel_dots(q, s->row, s->stride, 1, &f);
        if (!topk_admits(t, f * inv))
            continue;
        double score =
            index_exact_score(s->exact + qi * s->stride, s->qnorm[qi], s->row, s->stride);
        int slot = topk_push(t, score, row);
        if (slot >= 0 && !fill_slot(s, &s->slots[qi * (size_t)s->k + (size_t)slot], r)) {
            s->oom = true;
            return false;
        }
    }
    return true;
}

/* Move the heaps' entries, best first, into out's hits. */
static void take_hits(struct stream *s, struct search_result *out)
{
    for (size_t qi = 0; qi < s->nq; qi++) {
        struct topk *t = &s->heaps[qi];
        topk_sort(t);
        out->counts[qi] = (size_t)t->n;
        for (int i = 0; i < t->n; i++) {
            struct slot *sl = &s->slots[qi * (size_t)s->k + t->e[i].slot];
            struct search_hit *h = &out->hits[qi * (size_t)s->k + (size_t)i];
            h->doc_id = sl->doc_id;
            h->metadata = sl->metadata;
            sl->doc_id = sl->metadata = NULL;
            h->chunk_index = sl->chunk_index;
            h->char_start = sl->char_start;
            h->char_end = sl->char_end;
            h->score = t->e[i].score;
            memcpy(h->job_id, sl->job_id, 16);
            h->seq = sl->seq;
        }
    }
}

enum search_status stream_search(PGconn *c, const char *coll_id, int dims, const float *queries,
                                 const float *exact, const double *qnorm, size_t nq, int k,
                                 const struct search_filter *filter, bool want_meta,
                                 struct search_result *out, char *err, size_t errlen)
{
    struct stream s;
    memset(&s, 0, sizeof(s));
    s.queries = queries;
    s.exact = exact;
    s.qnorm = qnorm;
    s.nq = nq;
    s.stride = kernel_stride(dims);
    s.k = k;
    s.dims = dims;
    s.filter = filter;
    s.want_meta = want_meta;
    size_t slots = nq * (size_t)k;
    s.heaps = calloc(nq, sizeof(*s.heaps));
    s.entries = calloc(slots, sizeof(*s.entries));
    s.slots = calloc(slots, sizeof(*s.slots));
    s.row = aligned_alloc(64, s.stride * sizeof(float));
    buf_init(&s.doc_id, SIZE_MAX / 2);
    buf_init(&s.meta, SIZE_MAX / 2);
    buf_init(&s.pack, SIZE_MAX / 2);
    enum search_status st = SEARCH_ERROR;
    snprintf(err, errlen, "out of memory");
    if (!s.heaps || !s.entries || !s.slots || !s.row)
        goto out;
    for (size_t qi = 0; qi < nq; qi++)
        topk_init(&s.heaps[qi], s.entries + qi * (size_t)k, k, kernel_delta(dims));
    bool found;
    int64_t version;
    if (!load_begin(c, coll_id, &found, &version, err, errlen))
        goto out;
    if (!found) {
        load_end(c);
        st = SEARCH_NOT_FOUND;
        goto out;
    }
    bool ok = load_rows(c, coll_id, sink, &s, err, errlen);
    load_end(c);
    if (!ok) {
        if (s.oom)
            snprintf(err, errlen, "could not search the collection: out of memory");
        goto out;
    }
    take_hits(&s, out);
    out->version = version;
    out->rows = (int64_t)s.n;
    st = SEARCH_OK;
out:
    for (size_t i = 0; s.slots && i < slots; i++) {
        free(s.slots[i].doc_id);
        free(s.slots[i].metadata);
    }
    free(s.slots);
    free(s.entries);
    free(s.heaps);
    free(s.row);
    buf_cleanup(&s.doc_id);
    buf_cleanup(&s.meta);
    buf_cleanup(&s.pack);
    return st;
}
