/*
 * app.h: what the handlers share: the settings, the database pool, the
 * search engine, the hub of job event streams and the shutdown flag, handed
 * to every handler as its app argument. Built and torn down by the
 * composition root (main/main.c).
 */
#ifndef API_APP_H
#define API_APP_H

#include "config.h"
#include "search/search.h"
#include "store/pool.h"

#include <stdatomic.h>

struct events_hub;
struct ratelimit;
struct work_pool;

struct app {
    const struct config *cfg;
    struct db_pool *db;
    int db_timeout_ms;            /* how long a request waits for a connection */
    atomic_bool stopping;         /* SIGTERM received: /readyz says not ready */
    struct search_engine *search; /* queries into collections (NULL: 503) */
    struct events_hub *events;    /* job event streams (NULL: 503) */
    struct ratelimit *limiter;    /* requests per second per key (NULL: none) */
    struct work_pool *fmt;        /* threads that help format vectors (NULL: none) */
};

#endif
