/*
 * embed.h: the vectors of POST /openai/v1/embeddings: texts already
 * embedded in the same space under the same API key are read from storage
 * (by their identity, store/identity.h: model, dimensions, task type,
 * normalisation and text); the rest go to Google's interactive
 * batchEmbedContents, at most 100 texts per call (search_embed), a text
 * repeated within the request sent once. What Google embedded is then
 * recorded as a succeeded job of the key (one verbatim document per text,
 * interactive tokens), so that the next request with those texts reuses it
 * and its cost shows in /v1/usage.
 */
#ifndef SVC_OPENAI_EMBED_H
#define SVC_OPENAI_EMBED_H

#include <libpq-fe.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "openai/space.h"
#include "search/search.h"
#include "util/compiler.h"

struct oai_vectors {
    size_t n;
    int dims;
    unsigned char *f32le; /* n rows of dims float32 little-endian, owned */
    bool *have;           /* row i filled */
    bool *fresh;          /* row i embedded by Google in this call (first of its text) */
    int64_t tokens;       /* Google's counts where it gave them, else embedd's estimates */
    size_t reused;        /* rows read from storage */
    size_t sent;          /* texts sent to Google */
    int64_t sent_tokens;  /* of those: Google's counts and embedd's estimates */
    int64_t sent_estimated;
};

/* Start: n empty rows of sp's dimensions. false on out of memory. */
bool oai_vectors_init(struct oai_vectors *v, size_t n, int dims) SVC_MUSTCHECK;
void oai_vectors_free(struct oai_vectors *v);

/* Fill the rows whose text already has a vector in sp under key_id. false
 * with err set when the database fails. */
bool oai_vectors_reuse(PGconn *c, int64_t key_id, const struct oai_space *sp,
                       const char *const *texts, const size_t *lens, struct oai_vectors *v,
                       char *err, size_t errlen) SVC_MUSTCHECK;

/* Embed the rows not filled yet through Google (search_embed's statuses;
 * info of the call that failed). */
enum search_embed_status oai_vectors_embed(struct search_engine *se, const struct oai_space *sp,
                                           const char *const *texts, const size_t *lens,
                                           struct oai_vectors *v,
                                           struct search_embed_info *info) SVC_MUSTCHECK;

/* Record the fresh rows as a succeeded job of key_id (one statement; no-op
 * when there are none). false with err set when the database fails. */
bool oai_vectors_record(PGconn *c, int64_t key_id, const struct oai_space *sp,
                        const char *const *texts, const size_t *lens, const struct oai_vectors *v,
                        char *err, size_t errlen) SVC_MUSTCHECK;

#endif
