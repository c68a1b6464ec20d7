/* db_pool.c: the connection pool behind db_pool.h. */
#include "store/pool.h"

#include "store/db.h"
#include "util/clock.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct db_pool {
    pthread_mutex_t lock;
    pthread_cond_t freed;
    char *url;
    size_t size;
    PGconn **conns; /* NULL: not connected */
    bool *busy;
};

struct db_pool *db_pool_new(const char *url, size_t size)
{
    struct db_pool *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->url = strdup(url);
    p->conns = calloc(size, sizeof(*p->conns));
    p->busy = calloc(size, sizeof(*p->busy));
    if (!p->url || !p->conns || !p->busy) {
        free(p->url);
        free(p->conns);
        free(p->busy);
        free(p);
        return NULL;
    }
    p->size = size;
    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->freed, &ca);
    pthread_condattr_destroy(&ca);
    return p;
}

void db_pool_free(struct db_pool *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->size; i++)
        if (p->conns[i])
            PQfinish(p->conns[i]);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->freed);
    free(p->url);
    free(p->conns);
    free(p->busy);
    free(p);
}

PGconn *db_pool_acquire(struct db_pool *p, int timeout_ms, char *err, size_t errlen)
{
    struct timespec deadline = clock_after(CLOCK_MONOTONIC, timeout_ms);
    pthread_mutex_lock(&p->lock);
    size_t slot = p->size;
    for (;;) {
        /* prefer an open connection, then an empty slot */
        for (size_t i = 0; i < p->size && slot == p->size; i++)
            if (!p->busy[i] && p->conns[i])
                slot = i;
        for (size_t i = 0; i < p->size && slot == p->size; i++)
            if (!p->busy[i])
                slot = i;
        if (slot < p->size)
            break;
        if (pthread_cond_timedwait(&p->freed, &p->lock, &deadline) == ETIMEDOUT) {
            pthread_mutex_unlock(&p->lock);
            snprintf(err, errlen, "no database connection free within %d ms", timeout_ms);
            return NULL;
        }
    }
    p->busy[slot] = true;
    PGconn *c = p->conns[slot];
    p->conns[slot] = NULL;
    pthread_mutex_unlock(&p->lock);

    if (c && PQstatus(c) != CONNECTION_OK) {
        PQfinish(c);
        c = NULL;
    }
    if (!c)
        c = db_connect(p->url, err, errlen);
    pthread_mutex_lock(&p->lock);
    if (c) {
        p->conns[slot] = c;
    } else {
        p->busy[slot] = false;
        pthread_cond_signal(&p->freed);
    }
    pthread_mutex_unlock(&p->lock);
    return c;
}

void db_pool_release(struct db_pool *p, PGconn *c)
{
    if (!c)
        return;
    bool reuse = PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) == PQTRANS_IDLE;
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->size; i++) {
        if (p->conns[i] == c && p->busy[i]) {
            p->busy[i] = false;
            if (!reuse)
                p->conns[i] = NULL;
            break;
        }
    }
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->lock);
    if (!reuse)
        PQfinish(c);
}

void db_pool_stats(struct db_pool *p, size_t *in_use, size_t *open, size_t *size)
{
    size_t busy = 0, conns = 0;
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->size; i++) {
        busy += p->busy[i];
        conns += p->conns[i] != NULL;
    }
    pthread_mutex_unlock(&p->lock);
    *in_use = busy;
    *open = conns;
    *size = p->size;
}
