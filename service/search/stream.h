/*
 * stream.h: searching a collection too large for the memory budget: its
 * current chunks are read from PostgreSQL in the collection's order (load.h)
 * and scored as they arrive, with the same kernel and the same exact top-k
 * as the in-memory scan, so both give the same answer; memory holds one
 * row and the k best of each query.
 */
#ifndef SVC_SEARCH_STREAM_H
#define SVC_SEARCH_STREAM_H

#include <libpq-fe.h>

#include "search/filter.h"
#include "search/search.h"

/* Score every current chunk of coll_id against nq queries (rows of stride
 * floats: scaled to unit length in queries, as given in exact, whose norms
 * are qnorm; see index.h) and fill out's hits (out->counts and out->hits
 * allocated by the caller for nq x k), version and rows. */
enum search_status stream_search(PGconn *c, const char *coll_id, int dims, const float *queries,
                                 const float *exact, const double *qnorm, size_t nq, int k,
                                 const struct search_filter *filter, bool want_meta,
                                 struct search_result *out, char *err, size_t errlen) SVC_MUSTCHECK;

#endif
