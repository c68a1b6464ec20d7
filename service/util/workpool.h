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

struct work_task;

/* A run begun with work_pool_start: the pool's threads work on its parts
 * while the caller does something else, until work_pool_finish. It must stay
 * where it is in between (the tasks point into it). */
struct work_run {
    void (*fn)(void *part);
    char *parts;
    size_t size, n;
    struct work_pool *pool;
    struct work_task *tasks; /* NULL: every part runs in work_pool_finish */
    int left;                /* parts not done yet */
};

/* Queue the n parts for the pool's threads and return at once. Without a
 * pool, threads or memory, nothing is queued and work_pool_finish runs them
 * all. */
void work_pool_start(struct work_pool *p, struct work_run *r, void (*fn)(void *part), void *parts,
                     size_t size, size_t n);
/* Run the parts no pool thread has started, then wait for the others. */
void work_pool_finish(struct work_run *r);

#endif
