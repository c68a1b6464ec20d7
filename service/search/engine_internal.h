/*
 * engine_internal.h: the engine's state, shared by engine.c (the cache and
 * the queries) and embed.c (the query embedding and its Gemini clients).
 */
#ifndef SVC_SEARCH_ENGINE_INTERNAL_H
#define SVC_SEARCH_ENGINE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "gemini/client.h"
#include "search/index.h"
#include "util/workpool.h"

struct search_entry {
    char id[37];
    struct search_index *ix;  /* NULL while not held */
    int64_t streamed_version; /* the version last found over the budget; -1 */
    bool loading;
    uint64_t used; /* last use, for LRU */
    struct search_entry *next;
};

struct search_engine {
    int64_t budget;
    int threads;
    pthread_mutex_t lock;
    pthread_cond_t loaded;
    struct search_entry *entries;
    size_t n_entries;
    int64_t held; /* bytes of the indexes held */
    uint64_t tick;
    struct work_pool *pool;
    /* query embedding (embed.c) */
    struct gem_client_opts gem;
    char *gem_url, *gem_version, *gem_key;
    pthread_mutex_t gem_lock;
    struct gem_client **gem_idle;
    size_t n_gem_idle, gem_cap;
};

#endif
