/*
 * app.h: the running service's shared state, handed to HTTP handlers (as
 * their app argument) and to workers. Created and torn down by main.c.
 */
#ifndef API_APP_H
#define API_APP_H

#include "config.h"
#include "store/pool.h"

#include <stdatomic.h>

struct app {
    const struct config *cfg;
    struct db_pool *db;
    int db_timeout_ms;    /* how long a request waits for a connection */
    atomic_bool stopping; /* SIGTERM received: /readyz says not ready */
};

#endif
