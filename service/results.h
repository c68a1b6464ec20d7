/*
 * results.h: reading a job's chunks with their vectors, in (document,
 * chunk) order, a page at a time (keyset on the chunk sequence number).
 * Vectors are stored as float32 little-endian bytea; they are decoded here.
 */
#ifndef SVC_RESULTS_H
#define SVC_RESULTS_H

#include <libpq-fe.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One chunk of a page; pointers borrow from the page's PGresult. */
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
};

struct result_page {
    PGresult *res; /* owned */
    size_t n;
    int64_t next_seq; /* -1 when this is the last page */
};

/* Read up to limit chunks of job_id starting at seq from. The caller has
 * already checked that the job belongs to it. On failure err says why. */
bool results_page(PGconn *c, const char *job_id, int64_t from, int limit, struct result_page *p,
                  char *err, size_t errlen);
/* Row i of a page. */
void results_row(const struct result_page *p, size_t i, struct result_row *r);
void results_page_free(struct result_page *p);

/* Decode component k of a stored float32 LE vector. */
float results_value(const unsigned char *embedding, int k);

#endif
