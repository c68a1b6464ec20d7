/*
 * workpool.h: a fixed pool of threads that share CPU-bound work cut into
 * parts (a large search scan, the vectors of a results page), started once
 * (no thread per request). The caller runs the first part itself and takes
 * back any part no pool thread has started when it is done, so a busy pool
 * never makes a request wait behind another one, and a pool of 0 threads
 * runs everything on the caller.
 */
#ifndef SVC_UTIL_WORKPOOL_H
#define SVC_UTIL_WORKPOOL_H

#include <stddef.h>

struct work_pool;

/* n threads (0: none, every part runs on the caller). NULL on failure. */
struct work_pool *work_pool_new(int n);
/* Stop and join the threads (no run in progress). NULL is a no-op. */
void work_pool_free(struct work_pool *p);
/* The pool's threads (0 for NULL). */
int work_pool_threads(const struct work_pool *p);
/* Run fn on each of the n parts, parts + i * size, and return when every one
 * is done. Several callers may run at once; p may be NULL (all on the
 * caller). */
void work_pool_run(struct work_pool *p, void (*fn)(void *part), void *parts, size_t size, size_t n);

#endif
