/*
 * load.h: reading a collection's current chunks from PostgreSQL for
 * search: the collection's head, then, in one REPEATABLE READ READ ONLY
 * transaction (so that the version matches the rows), the plan (how many
 * documents, chunks and bytes of ids and metadata) and every current chunk
 * with its vector, in the collection's order (document id, then seq), read
 * as COPY ... TO STDOUT (FORMAT binary) and parsed as it arrives. The
 * plans are index lookups only (collection_documents by its primary key,
 * documents by theirs, chunks by a seq range of their primary key),
 * whatever the size of the tables; tests/db/test_search.c checks them.
 */
#ifndef SVC_SEARCH_LOAD_H
#define SVC_SEARCH_LOAD_H

#include <libpq-fe.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/compiler.h"

struct load_plan {
    bool found;
    int64_t version;
    int64_t docs, rows;   /* current documents and their chunks */
    int64_t string_bytes; /* their ids and metadata texts */
};

/* One current chunk, borrowed for the sink's call. */
struct load_row {
    const char *doc_id;
    size_t doc_id_len;
    const char *metadata; /* the document's metadata JSON text: only on its first chunk; NULL */
    size_t metadata_len;
    const unsigned char *job_id; /* 16 bytes: the document's job */
    int32_t seq, chunk_index, char_start, char_end;
    const unsigned char *embedding; /* float32 little-endian */
    size_t embedding_len;
};

/* Called for each row in order; false stops the read (the rest is drained). */
typedef bool (*load_sink_fn)(void *arg, const struct load_row *r);

/* The statements, exposed for the plan checks of the tests and the bench:
 * the transaction's start with its planner settings, the size, the rows
 * (the SELECT, and the COPY of it; $1 of the setting statement is the
 * collection id, which the SELECT reads from a transaction setting). */
extern const char *const load_begin_sql;
extern const char *const load_plan_sql;
extern const char *const load_rows_select;
extern const char *const load_rows_sql;
extern const char *const load_rows_set_sql;

/* BEGIN the snapshot and read collection coll_id's version (*found false
 * when it is gone). On false the transaction is closed. */
bool load_begin(PGconn *c, const char *coll_id, bool *found, int64_t *version, char *err,
                size_t errlen) SVC_MUSTCHECK;
/* The size of its current content (inside load_begin's transaction): a pass
 * over its documents, for a collection known to be large. */
bool load_plan(PGconn *c, const char *coll_id, struct load_plan *p, char *err,
               size_t errlen) SVC_MUSTCHECK;
/* Read every row into sink (inside load_begin's transaction). When sink
 * refuses a row, the COPY is cancelled (the rest is not read). */
bool load_rows(PGconn *c, const char *coll_id, load_sink_fn sink, void *arg, char *err,
               size_t errlen) SVC_MUSTCHECK;
/* End the transaction (it only read). */
void load_end(PGconn *c);

/* The text and vector of chunks (job_id, seq) for include: for each i in
 * [0, n), fill(arg, i, text, text_len, embedding, embedding_len) once if the
 * chunk exists. */
typedef void (*load_chunk_fn)(void *arg, size_t i, const char *text, size_t text_len,
                              const unsigned char *emb, size_t emb_len);
bool load_chunks(PGconn *c, const unsigned char (*job_ids)[16], const int32_t *seqs, size_t n,
                 bool want_embedding, load_chunk_fn fill, void *arg, char *err,
                 size_t errlen) SVC_MUSTCHECK;

/* "xxxxxxxx-xxxx-..." of 16 bytes into out (37 bytes). */
void load_uuid_text(const unsigned char id[16], char out[37]);

#endif
