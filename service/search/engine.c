/* engine.c: the search engine: the cache of collections in memory, and queries over them (see
 * search.h). */
#include "search/search.h"

#include "search/engine_internal.h"
#include "gemini/client.h"
#include "log.h"
#include "search/index.h"
#include "search/kernel.h"
#include "search/load.h"
#include "util/workpool.h"
#include "search/stream.h"
#include "search/topk.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Multiply-adds worth a part of their own on another thread (about 1 ms). */
#define WORK_PER_PART ((size_t)4 << 20)
/* Collections remembered without vectors (over the budget, or failed loads). */
#define MAX_ENTRIES 256

/* One part of a scan, as the work pool runs it. */
static void scan_part_run(void *part)
{
    index_scan(part);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

struct search_engine *search_engine_new(const struct search_opts *o, char *err, size_t errlen)
{
    struct search_engine *e = calloc(1, sizeof(*e));
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    e->budget = o->memory_bytes;
    e->threads = o->threads > 0 ? o->threads : 1;
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->loaded, NULL);
    pthread_mutex_init(&e->gem_lock, NULL);
    e->gem_url = strdup(o->gemini_base_url ? o->gemini_base_url : "");
    e->gem_version = strdup(o->gemini_api_version ? o->gemini_api_version : "v1beta");
    e->gem_key = strdup(o->gemini_api_key ? o->gemini_api_key : "");
    e->gem = (struct gem_client_opts){e->gem_url,          e->gem_version,   e->gem_key, 0,
                                      o->query_timeout_ms, (size_t)64 << 20, o->abort,   0};
    e->gem.connect_timeout_ms = o->query_timeout_ms < 5000 ? o->query_timeout_ms : 5000;
    e->pool = work_pool_new(e->threads - 1);
    if (!e->gem_url || !e->gem_version || !e->gem_key || !e->pool) {
        snprintf(err, errlen, "could not start the search threads");
        search_engine_free(e);
        return NULL;
    }
    return e;
}

void search_engine_free(struct search_engine *e)
{
    if (!e)
        return;
    work_pool_free(e->pool);
    for (struct search_entry *n, *x = e->entries; x; x = n) {
        n = x->next;
        index_release(x->ix);
        free(x);
    }
    for (size_t i = 0; i < e->n_gem_idle; i++)
        gem_client_free(e->gem_idle[i]);
    free(e->gem_idle);
    free(e->gem_url);
    free(e->gem_version);
    free(e->gem_key);
    pthread_mutex_destroy(&e->lock);
    pthread_cond_destroy(&e->loaded);
    pthread_mutex_destroy(&e->gem_lock);
    free(e);
}

/* ---- the cache (under e->lock) ---- */

/* Forget entries that hold nothing, when there are too many of them. */
static void prune(struct search_engine *e)
{
    if (e->n_entries < MAX_ENTRIES)
        return;
    for (struct search_entry **at = &e->entries; *at;) {
        struct search_entry *x = *at;
        if (!x->ix && !x->loading) {
            *at = x->next;
            free(x);
            e->n_entries--;
        } else {
            at = &x->next;
        }
    }
}

static struct search_entry *entry_for(struct search_engine *e, const char *id)
{
    for (struct search_entry *x = e->entries; x; x = x->next)
        if (strcmp(x->id, id) == 0)
            return x;
    prune(e);
    struct search_entry *x = calloc(1, sizeof(*x));
    if (!x)
        return NULL;
    snprintf(x->id, sizeof(x->id), "%s", id);
    x->streamed_version = -1;
    x->next = e->entries;
    e->entries = x;
    e->n_entries++;
    return x;
}

static void drop_index(struct search_engine *e, struct search_entry *x)
{
    if (!x->ix)
        return;
    e->held -= (int64_t)x->ix->bytes;
    index_release(x->ix);
    x->ix = NULL;
}

int64_t search_held_bytes(struct search_engine *e)
{
    pthread_mutex_lock(&e->lock);
    int64_t n = e->held;
    pthread_mutex_unlock(&e->lock);
    return n;
}

void search_forget(struct search_engine *e, const char *coll_id)
{
    if (!e || !coll_id)
        return;
    pthread_mutex_lock(&e->lock);
    for (struct search_entry *x = e->entries; x; x = x->next)
        if (strcmp(x->id, coll_id) == 0) {
            /* a load in progress finishes into an entry nobody asks for */
            drop_index(e, x);
            break;
        }
    pthread_mutex_unlock(&e->lock);
}

/* Evict the least recently used indexes (other than keep's) until bytes more fit. */
static void make_room(struct search_engine *e, const struct search_entry *keep, int64_t bytes)
{
    while (e->held + bytes > e->budget) {
        struct search_entry *lru = NULL;
        for (struct search_entry *x = e->entries; x; x = x->next)
            if (x != keep && x->ix && (!lru || x->used < lru->used))
                lru = x;
        if (!lru)
            return;
        log_debug("search: evicting collection %s (%zu bytes)", lru->id, lru->ix->bytes);
        drop_index(e, lru);
    }
}

/*
 * Inside load_begin's snapshot (collection version version): load the
 * collection into *fresh, or decide that it is over the budget (*stream).
 * A collection not known to be large is loaded at once and abandoned when
 * it passes the budget; one that was over it at an earlier version is
 * measured first (a pass over its documents) rather than loaded again.
 */
static enum search_status fill(struct search_engine *e, PGconn *c, const struct search_coll *coll,
                               int64_t version, bool known_big, bool found,
                               struct search_index **fresh, bool *stream, char *err, size_t errlen)
{
    if (!found)
        return SEARCH_NOT_FOUND;
    if (e->budget <= 0) {
        *stream = true;
    } else if (known_big) {
        struct load_plan plan;
        if (!load_plan(c, coll->id, &plan, err, errlen))
            return SEARCH_ERROR;
        *stream = (int64_t)index_bytes(&plan, coll->dims) > e->budget;
    }
    struct search_index *ix =
        *stream ? NULL : index_new(version, coll->dims, e->budget > 0 ? (size_t)e->budget : 0);
    if (!*stream && !ix) {
        snprintf(err, errlen, "could not load the collection: out of memory");
        return SEARCH_ERROR;
    }
    if (ix && !load_rows(c, coll->id, index_add_row, ix, err, errlen) && !ix->over) {
        index_release(ix);
        return SEARCH_ERROR;
    }
    if (ix && ix->over) {
        index_release(ix);
        *stream = true;
    } else if (ix && !index_finish(ix)) {
        index_release(ix);
        snprintf(err, errlen, "could not load the collection: out of memory");
        return SEARCH_ERROR;
    }
    if (*stream && e->budget > 0)
        log_info("search: collection %s is over the memory budget of %lld bytes: its queries "
                 "stream from PostgreSQL",
                 coll->id, (long long)e->budget);
    *fresh = ix && !*stream ? ix : NULL;
    return SEARCH_OK;
}

/*
 * The snapshot of coll to search: *ix (retained; release it) at coll's
 * version or later, loading it when needed, or *ix NULL when the collection
 * is over the memory budget (stream it). Loads of one collection happen
 * once, other threads wait for them.
 */
static enum search_status acquire(struct search_engine *e, PGconn *c,
                                  const struct search_coll *coll, struct search_index **ix,
                                  struct search_result *out, char *err, size_t errlen)
{
    *ix = NULL;
    pthread_mutex_lock(&e->lock);
    struct search_entry *x;
    for (;;) {
        x = entry_for(e, coll->id);
        if (!x) {
            pthread_mutex_unlock(&e->lock);
            snprintf(err, errlen, "out of memory");
            return SEARCH_ERROR;
        }
        x->used = ++e->tick;
        if (x->ix && x->ix->version >= coll->version) {
            *ix = x->ix;
            index_retain(*ix);
            pthread_mutex_unlock(&e->lock);
            return SEARCH_OK;
        }
        if (x->streamed_version >= coll->version) {
            pthread_mutex_unlock(&e->lock);
            return SEARCH_OK;
        }
        if (!x->loading)
            break;
        pthread_cond_wait(&e->loaded, &e->lock);
    }
    x->loading = true;
    bool known_big = x->streamed_version >= 0; /* over the budget at an earlier version */
    pthread_mutex_unlock(&e->lock);

    double t0 = now_ms();
    bool found = false, stream = false;
    int64_t version = 0;
    struct search_index *fresh = NULL;
    enum search_status st = SEARCH_ERROR;
    if (load_begin(c, coll->id, &found, &version, err, errlen)) {
        st = fill(e, c, coll, version, known_big, found, &fresh, &stream, err, errlen);
        load_end(c);
    }
    if (fresh) {
        out->loaded = true;
        out->load_ms = now_ms() - t0;
        if (fresh->bad_rows)
            log_warn("search: collection %s: %lld vectors of the wrong size skipped", coll->id,
                     (long long)fresh->bad_rows);
        log_info("search: loaded collection %s version %lld: %zu chunks of %zu documents, %zu "
                 "bytes, in %.0f ms",
                 coll->id, (long long)fresh->version, fresh->n_rows, fresh->n_docs, fresh->bytes,
                 out->load_ms);
    }

    pthread_mutex_lock(&e->lock);
    x->loading = false;
    if (stream)
        x->streamed_version = version;
    if (fresh) {
        x->streamed_version = -1;
        drop_index(e, x);
        make_room(e, x, (int64_t)fresh->bytes);
        x->ix = fresh;
        e->held += (int64_t)fresh->bytes;
        index_retain(fresh);
        *ix = fresh;
    }
    pthread_cond_broadcast(&e->loaded);
    pthread_mutex_unlock(&e->lock);
    return st;
}

/* ---- queries ---- */

void search_result_free(struct search_result *r)
{
    for (size_t q = 0; r->hits && q < r->n_queries; q++)
        for (size_t i = 0; i < r->counts[q]; i++) {
            struct search_hit *h = &r->hits[q * (size_t)r->k + i];
            free(h->doc_id);
            free(h->metadata);
            free(h->text);
            free(h->embedding);
        }
    free(r->hits);
    free(r->counts);
    memset(r, 0, sizeof(*r));
}

/* The query rows, padded to the stride: as given (rows[n..2n): exact
 * scores, with their norms) and scaled to unit length (rows[0..n): the
 * float32 scan). false on OOM or a zero vector. */
static bool prepare_queries(const struct search_query *q, int dims, float **rows, double **norms)
{
    size_t stride = kernel_stride(dims);
    *rows = aligned_alloc(64, 2 * q->n * stride * sizeof(float));
    *norms = malloc(q->n * sizeof(double));
    if (!*rows || !*norms)
        return false;
    memset(*rows, 0, 2 * q->n * stride * sizeof(float));
    for (size_t i = 0; i < q->n; i++) {
        float *scan = *rows + i * stride, *exact = *rows + (q->n + i) * stride;
        memcpy(exact, q->vectors + i * (size_t)dims, (size_t)dims * sizeof(float));
        memcpy(scan, exact, (size_t)dims * sizeof(float));
        (*norms)[i] = kernel_norm_exact(exact, stride);
        if (!search_normalize(scan, dims))
            return false;
    }
    return true;
}

static int cmp_best(const void *pa, const void *pb)
{
    const struct topk_entry *a = pa, *b = pb;
    if (topk_better(a->score, a->row, b->score, b->row))
        return -1;
    return topk_better(b->score, b->row, a->score, a->row) ? 1 : 0;
}

/* Scan ix in parts across the pool and write each query's k best into out. */
static bool scan_memory(struct search_engine *e, struct search_index *ix, const float *queries,
                        const float *exact, const double *qnorm, const struct search_query *q,
                        struct search_result *out)
{
    size_t nq = q->n, k = (size_t)q->k;
    uint8_t *doc_ok = NULL;
    if (q->filter && q->filter->n > 0 && !(doc_ok = index_filter_docs(ix, q->filter)))
        return false;
    size_t work = ix->n_rows * ix->stride * nq;
    size_t parts = work / WORK_PER_PART + 1;
    if (parts > (size_t)e->threads)
        parts = (size_t)e->threads;
    if (parts > ix->n_rows)
        parts = ix->n_rows ? ix->n_rows : 1;
    struct scan_part *p = calloc(parts, sizeof(*p));
    struct topk *heaps = calloc(parts * nq, sizeof(*heaps));
    struct topk_entry *ent = calloc(parts * nq * k, sizeof(*ent));
    struct topk_entry *merged = calloc(parts * k, sizeof(*merged));
    bool ok = p && heaps && ent && merged;
    for (size_t i = 0; ok && i < parts; i++) {
        p[i] = (struct scan_part){ix,
                                  queries,
                                  exact,
                                  qnorm,
                                  nq,
                                  doc_ok,
                                  ix->n_rows * i / parts,
                                  ix->n_rows * (i + 1) / parts,
                                  heaps + i * nq};
        for (size_t j = 0; j < nq; j++)
            topk_init(&p[i].heaps[j], ent + (i * nq + j) * k, (int)k, kernel_delta(ix->dims));
    }
    if (ok)
        work_pool_run(e->pool, scan_part_run, p, sizeof(*p), parts);
    for (size_t j = 0; ok && j < nq; j++) {
        size_t n = 0;
        for (size_t i = 0; i < parts; i++) {
            const struct topk *t = &heaps[i * nq + j];
            memcpy(merged + n, t->e, (size_t)t->n * sizeof(*merged));
            n += (size_t)t->n;
        }
        qsort(merged, n, sizeof(*merged), cmp_best);
        out->counts[j] = n < k ? n : k;
        for (size_t i = 0; i < out->counts[j] && ok; i++) {
            const struct search_row *row = &ix->rows[merged[i].row];
            const struct search_doc *d = &ix->docs[row->doc];
            struct search_hit *h = &out->hits[j * k + i];
            h->doc_id = strdup(index_doc_id(ix, row->doc));
            if (q->want_metadata && d->has_meta &&
                !(h->metadata = strdup(index_doc_meta(ix, row->doc))))
                ok = false;
            ok = ok && h->doc_id;
            h->chunk_index = row->chunk_index;
            h->char_start = row->char_start;
            h->char_end = row->char_end;
            h->score = merged[i].score;
            memcpy(h->job_id, d->job_id, 16);
            h->seq = row->seq;
        }
    }
    out->version = ix->version;
    out->rows = (int64_t)ix->n_rows;
    free(merged);
    free(ent);
    free(heaps);
    free(p);
    free(doc_ok);
    return ok;
}

struct fill_ctx {
    struct search_hit **hits;
    int dims;
    bool oom;
};

static void fill_chunk(void *arg, size_t i, const char *text, size_t text_len,
                       const unsigned char *emb, size_t emb_len)
{
    struct fill_ctx *f = arg;
    struct search_hit *h = f->hits[i];
    h->text = malloc(text_len + 1);
    if (h->text) {
        memcpy(h->text, text, text_len);
        h->text[text_len] = '\0';
        h->text_len = text_len;
    }
    if (emb && emb_len == (size_t)f->dims * 4 && (h->embedding = malloc(emb_len)))
        memcpy(h->embedding, emb, emb_len);
    f->oom = f->oom || !h->text || (emb && !h->embedding);
}

/* Fetch what include asks for of every hit: text, vector. */
static bool fetch_chunks(PGconn *c, const struct search_query *q, struct search_result *out,
                         char *err, size_t errlen)
{
    size_t n = 0, k = (size_t)q->k;
    for (size_t j = 0; j < out->n_queries; j++)
        n += out->counts[j];
    if (n == 0)
        return true;
    unsigned char(*ids)[16] = malloc(n * 16);
    int32_t *seqs = malloc(n * sizeof(*seqs));
    struct search_hit **hits = malloc(n * sizeof(*hits));
    bool ok = ids && seqs && hits;
    size_t m = 0;
    for (size_t j = 0; ok && j < out->n_queries; j++)
        for (size_t i = 0; i < out->counts[j]; i++, m++) {
            hits[m] = &out->hits[j * k + i];
            memcpy(ids[m], hits[m]->job_id, 16);
            seqs[m] = hits[m]->seq;
        }
    struct fill_ctx f = {hits, out->dims, false};
    if (!ok)
        snprintf(err, errlen, "out of memory");
    else
        ok = load_chunks(c, (const unsigned char(*)[16])ids, seqs, n, q->want_embedding, fill_chunk,
                         &f, err, errlen);
    if (ok && f.oom) {
        snprintf(err, errlen, "could not read chunks: out of memory");
        ok = false;
    }
    free(ids);
    free(seqs);
    free(hits);
    return ok;
}

enum search_status search_run(struct search_engine *e, PGconn *c, const struct search_coll *coll,
                              const struct search_query *q, struct search_result *out, char *err,
                              size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (q->n == 0 || q->n > SEARCH_MAX_QUERIES || q->k < 1 || q->k > SEARCH_MAX_K ||
        coll->dims <= 0) {
        snprintf(err, errlen, "bad query: %zu vectors, k %d", q->n, q->k);
        return SEARCH_ERROR;
    }
    out->n_queries = q->n;
    out->k = q->k;
    out->dims = coll->dims;
    out->counts = calloc(q->n, sizeof(*out->counts));
    out->hits = calloc(q->n * (size_t)q->k, sizeof(*out->hits));
    float *queries = NULL;
    double *qnorm = NULL;
    size_t stride = kernel_stride(coll->dims);
    struct search_index *ix = NULL;
    enum search_status st = SEARCH_ERROR;
    if (!out->counts || !out->hits || !prepare_queries(q, coll->dims, &queries, &qnorm)) {
        snprintf(err, errlen, "out of memory, or a zero query vector");
        goto out;
    }
    st = acquire(e, c, coll, &ix, out, err, errlen);
    if (st != SEARCH_OK)
        goto out;
    if (ix) {
        if (!scan_memory(e, ix, queries, queries + q->n * stride, qnorm, q, out)) {
            snprintf(err, errlen, "could not search the collection: out of memory");
            st = SEARCH_ERROR;
        }
    } else {
        double t0 = now_ms();
        out->streamed = true;
        st = stream_search(c, coll->id, coll->dims, queries, queries + q->n * stride, qnorm, q->n,
                           q->k, q->filter, q->want_metadata, out, err, errlen);
        out->load_ms = now_ms() - t0;
    }
    if (st == SEARCH_OK && (q->want_text || q->want_embedding) &&
        !fetch_chunks(c, q, out, err, errlen))
        st = SEARCH_ERROR;
out:
    index_release(ix);
    free(queries);
    free(qnorm);
    if (st != SEARCH_OK)
        search_result_free(out);
    return st;
}
