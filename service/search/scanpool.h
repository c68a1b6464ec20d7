/*
 * scanpool.h: the fixed pool of threads that share large scans, started
 * with the engine (no thread per query). A scan is cut into parts; the
 * caller runs the first itself and takes back any part no pool thread has
 * started when it is done, so a busy pool never makes a query wait behind
 * another one.
 */
#ifndef SVC_SEARCH_SCANPOOL_H
#define SVC_SEARCH_SCANPOOL_H

#include <stdbool.h>
#include <stddef.h>

#include "search/index.h"

struct scan_pool;

/* n threads (0: none, every part runs on the caller). NULL on failure. */
struct scan_pool *scan_pool_new(int n);
/* Stop and join the threads (no run in progress). NULL is a no-op. */
void scan_pool_free(struct scan_pool *p);
/* Run parts[0..n) and return when every one is done. */
void scan_pool_run(struct scan_pool *p, const struct scan_part *parts, size_t n);

#endif
