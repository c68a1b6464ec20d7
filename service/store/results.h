/*
 * results.h: reading a job's chunks with their vectors, in (document,
 * chunk) order, a page at a time (keyset on the chunk sequence number).
 * Vectors are stored as float32 little-endian bytea; they are decoded here.
 */
#ifndef SVC_STORE_RESULTS_H
#define SVC_STORE_RESULTS_H

#include "util/buf.h"

#include <libpq-fe.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One chunk; pointers borrow from the row's PGresult (see results_stream_next). */
struct result_row {
    int64_t seq;
    int doc_index, chunk_index;
    int char_start, char_end;
    int tokens;
    int state; /* 0 pending, 1 in flight, 2 succeeded, 3 failed */
    const char *doc_id;
    const char *title;    /* NULL if none */
    const char *metadata; /* jsonb as text; NULL if none */
    const char *text;
    size_t text_len;
    const unsigned char *embedding; /* float32 LE; NULL unless succeeded */
    int dims;
    const char *error; /* NULL unless failed */
    int version;       /* a collection's rows: the document's current version (else 0) */
};

/*
 * A page read row by row as the server sends it (libpq single-row mode), so
 * that rows are formatted while PostgreSQL still produces the rest of them.
 * Between results_stream_begin and the end of the rows (or
 * results_stream_end) the connection is busy with the query.
 */
struct result_stream {
    PGconn *c;        /* borrowed */
    PGresult *row;    /* owned: the current row, or NULL */
    int limit;        /* rows handed out at most; one more is read for next_seq */
    int given;        /* rows handed out so far */
    int64_t next_seq; /* once the rows ended: seq of the next page, -1 if none */
    bool active;      /* the query still has results to read */
    bool collection;  /* a collection's rows: the next page starts at next_doc, next_chunk */
    bool in_tx;       /* a transaction of the stream's own to end with it */
    char next_doc[260];
    int next_chunk;
};

/* Send the query for up to limit chunks of job_id starting at seq from.
 * The caller has already checked that the job belongs to it. On failure
 * err says why and nothing is left to read. */
bool results_stream_begin(struct result_stream *s, PGconn *c, const char *job_id, int64_t from,
                          int limit, char *err, size_t errlen) SVC_MUSTCHECK;
/* The same for a collection's current vectors (the caller has checked the
 * collection is its key's): each document's current version, documents by
 * id, chunks in order, from (from_doc, from_chunk) on ("" and 0 from the
 * start). Once the rows ended, next_seq >= 0 says there is a next page,
 * which starts at (next_doc, next_chunk). */
bool results_stream_begin_collection(struct result_stream *s, PGconn *c, const char *coll_id,
                                     const char *from_doc, int from_chunk, int limit, char *err,
                                     size_t errlen) SVC_MUSTCHECK;
/* The next row: 1 with *r filled (borrowed; valid until the next call),
 * 0 after the last one (s->next_seq set), -1 on failure (err says why).
 * After 0 or -1 the connection is idle again. */
int results_stream_next(struct result_stream *s, struct result_row *r, char *err, size_t errlen);
/* Stop early: read and drop the rest of the rows so the connection is idle.
 * A no-op after the rows ended and on a zeroed struct. */
void results_stream_end(struct result_stream *s);

/* Decode component k of a stored float32 LE vector. */
float results_value(const unsigned char *embedding, int k);

#endif
