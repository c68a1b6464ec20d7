/*
 * search.h: the query side of collections: query vectors in a collection's
 * embedding space, and exact similarity search over its current chunks.
 *
 * The engine keeps a cache of collections held in memory (index.h: one
 * contiguous float32 matrix per collection, rows = current chunks), loaded
 * lazily from PostgreSQL and bounded by a memory budget (least recently used
 * evicted first). Every query reads the collection's version (one indexed
 * SELECT) and reloads when it moved, whichever replica moved it. A
 * collection over the budget is still searched, exactly, by streaming its
 * vectors from PostgreSQL (slower). Large scans are split across a small
 * fixed pool of threads started with the engine.
 *
 * Scores are cosine similarities computed exactly in double precision from
 * the float32 vectors (kernel.h, topk.h): the float32 scan only decides
 * which rows can be in the top k. Ties go to the row that comes first in
 * the collection's order: document id (as PostgreSQL sorts the collection's
 * ids), then chunk.
 *
 * Thread safety: one engine serves every HTTP thread; a snapshot in use is
 * never changed (a reload builds a new one, the old one lives until its
 * last reader is done).
 */
#ifndef SVC_SEARCH_SEARCH_H
#define SVC_SEARCH_SEARCH_H

#include <libpq-fe.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "search/filter.h"
#include "util/compiler.h"

#define SEARCH_MAX_K       1000
#define SEARCH_MAX_QUERIES 100

struct search_opts {
    int64_t memory_bytes; /* budget of the collections held in memory (0: stream every query) */
    int threads;          /* threads of a large scan, the caller's included (>= 1) */
    /* query embedding through Google's interactive API */
    const char *gemini_base_url;
    const char *gemini_api_version;
    const char *gemini_api_key; /* "" or NULL: texts cannot be embedded */
    long query_timeout_ms;
    const atomic_bool *abort; /* when true, embedding calls in flight end (shutdown) */
};

struct search_engine;

/* Start the engine (its scan threads); strings are copied. NULL with err set. */
struct search_engine *search_engine_new(const struct search_opts *o, char *err,
                                        size_t errlen) SVC_MUSTCHECK;
/* Stop the threads, free the cache (no query may be running). NULL is a no-op. */
void search_engine_free(struct search_engine *e);
/* Drop a deleted collection's vectors from this replica's memory (other
 * replicas evict theirs as the least recently used). NULL e is a no-op. */
void search_forget(struct search_engine *e, const char *coll_id);
/* Bytes of collections held in memory now. */
int64_t search_held_bytes(struct search_engine *e);

/* What a query needs of its collection. */
struct search_coll {
    char id[37];
    char model[64];
    int dims;
    char query_task_type[32];
    bool normalize;
    int64_t version;
};

enum search_status { SEARCH_OK, SEARCH_NOT_FOUND, SEARCH_ERROR };

/* The collection id of API key key_id (another key's is SEARCH_NOT_FOUND). */
enum search_status search_coll_get(PGconn *c, int64_t key_id, const char *id,
                                   struct search_coll *out, char *err, size_t errlen) SVC_MUSTCHECK;

/* Whether embedd L2-normalises the collection's vectors (normalize, and a
 * size the model table does not promise unit length at, models.h): query
 * vectors for clients are then normalised the same way (and, as stored
 * vectors, any that comes back off unit length: search_off_unit). */
bool search_coll_normalises(const struct search_coll *c);
/* Normalise v[0..dims) as stored vectors are: v[i] / |v| with |v| summed
 * in double, in order. false (v unchanged) for a zero or non-finite vector. */
bool search_normalize(float *v, int dims) SVC_MUSTCHECK;
/* Whether v's squared length is off 1 by more than 1e-3 (store/pipeline.c
 * normalises such vectors when the job asks, whatever the model table says). */
bool search_off_unit(const float *v, int dims);

struct search_query {
    const float *vectors;               /* n rows of the collection's dims; borrowed */
    size_t n;                           /* 1..SEARCH_MAX_QUERIES */
    int k;                              /* 1..SEARCH_MAX_K */
    const struct search_filter *filter; /* NULL: every document */
    bool want_text, want_metadata, want_embedding;
};

struct search_hit {
    char *doc_id;   /* owned */
    char *metadata; /* owned JSON text; NULL when not asked or none */
    int32_t chunk_index, char_start, char_end;
    double score;
    char *text; /* owned, when asked (NULL if the chunk vanished meanwhile) */
    size_t text_len;
    unsigned char *embedding; /* owned float32 little-endian, dims of them, when asked */
    unsigned char job_id[16]; /* the chunk row */
    int32_t seq;
};

struct search_result {
    size_t n_queries;
    int k;
    size_t *counts;          /* hits of query i (at most k) */
    struct search_hit *hits; /* query i's hits at hits[i * k], best first */
    int dims;
    int64_t version; /* of the collection searched */
    int64_t rows;    /* chunks scanned */
    bool streamed;   /* over the memory budget: read from PostgreSQL */
    bool loaded;     /* loaded into memory for this query */
    double load_ms;  /* time spent loading or streaming */
};
void search_result_free(struct search_result *r);

/*
 * Search coll (from search_coll_get, with c) for the k best chunks of each
 * query vector. c is used for the version check, loading and the include
 * fetches; it is left outside any transaction. out is filled on SEARCH_OK
 * (free it with search_result_free); SEARCH_NOT_FOUND when the collection
 * is gone meanwhile.
 */
enum search_status search_run(struct search_engine *e, PGconn *c, const struct search_coll *coll,
                              const struct search_query *q, struct search_result *out, char *err,
                              size_t errlen) SVC_MUSTCHECK;

/* Query embedding: texts through Google's batchEmbedContents with the
 * collection's model, dimensions and query task type, normalised as the
 * collection's vectors are. An interactive call made on the caller's
 * thread, bounded by query_timeout_ms (the one slow call outside the
 * workers: a query cannot wait for a batch). */
enum search_embed_status {
    SEARCH_EMBED_OK,
    SEARCH_EMBED_UNCONFIGURED, /* no Gemini API key */
    SEARCH_EMBED_RETRY,        /* transient (timeout, 429, 5xx): try again later */
    SEARCH_EMBED_REFUSED,      /* Google refused the request, or answered nonsense */
};

struct search_embed_info {
    int64_t tokens;         /* of all the texts */
    int64_t estimated;      /* of those, embedd's estimates (Google gave no count) */
    int64_t retry_after_ms; /* -1 when Google named no delay */
    int64_t elapsed_ms;
    char detail[256]; /* why it failed; log-safe */
};

/* Embed texts[0..n) (lens[i] bytes each, 1 <= n <= SEARCH_MAX_QUERIES) into
 * out (n rows of coll->dims). */
enum search_embed_status search_embed(struct search_engine *e, const struct search_coll *coll,
                                      const char *const *texts, const size_t *lens, size_t n,
                                      float *out, struct search_embed_info *info) SVC_MUSTCHECK;

#endif
