/*
 * embed.h: the vectors of POST /openai/v1/embeddings: texts already
 * embedded in the same space under the same API key are read from storage
 * (by their identity, store/identity.h: model, dimensions, task type,
 * normalisation and text); the rest go to Google's interactive
 * batchEmbedContents, at most 100 texts per call (search_embed), a text
 * repeated within the request sent once.
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
    int64_t tokens;       /* Google's counts where it gave them, else embedd's estimates */
    size_t reused;        /* rows read from storage */
    size_t sent;          /* texts sent to Google */
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

#endif
