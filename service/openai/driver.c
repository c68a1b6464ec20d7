/* driver.c: the thread that validates and finalizes OpenAI batches (see driver.h). */
#include "openai/driver_internal.h"

#include "log.h"
#include "util/clock.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct oai_driver {
    struct oai_driver_opts o;
    struct oai_ctx x;
    atomic_bool stop;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
};

/* One claim and its step; true when a batch was handled. */
static bool run_once(struct oai_driver *d)
{
    char err[512];
    PGconn *c = db_pool_acquire(d->o.db, d->o.db_timeout_ms, err, sizeof(err));
    if (!c) {
        log_warn("openai batches: %s", err);
        return false;
    }
    struct oai_batch b;
    enum oai_work w = OAI_WORK_NONE;
    if (!oai_batch_claim(c, d->x.owner, d->o.lease_ms, &b, &w, err, sizeof(err)))
        log_error("openai batches: %s", err);
    if (w == OAI_WORK_VALIDATE)
        oai_validate(&d->x, c, &b);
    else if (w == OAI_WORK_FINALIZE)
        oai_finalize(&d->x, c, &b);
    if (w != OAI_WORK_NONE)
        oai_batch_free(&b);
    db_pool_release(d->o.db, c);
    return w != OAI_WORK_NONE;
}

static void *run(void *arg)
{
    struct oai_driver *d = arg;
    while (!atomic_load(&d->stop)) {
        if (run_once(d))
            continue;
        struct timespec ts = clock_after(CLOCK_REALTIME, d->o.idle_ms);
        pthread_mutex_lock(&d->lock);
        if (!atomic_load(&d->stop))
            pthread_cond_timedwait(&d->wake, &d->lock, &ts);
        pthread_mutex_unlock(&d->lock);
    }
    return NULL;
}

struct oai_driver *oai_driver_start(const struct oai_driver_opts *o, char *err, size_t errlen)
{
    struct oai_driver *d = calloc(1, sizeof(*d));
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    d->o = *o;
    char host[64] = "";
    if (gethostname(host, sizeof(host) - 1) != 0)
        snprintf(host, sizeof(host), "unknown");
    snprintf(d->x.owner, sizeof(d->x.owner), "%.60s:%d:openai", host, (int)getpid());
    d->x.db = o->db;
    d->x.max_requests = o->max_requests;
    d->x.db_timeout_ms = o->db_timeout_ms;
    d->x.stop = &d->stop;
    atomic_init(&d->stop, false);
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->wake, NULL);
    int rc = pthread_create(&d->thread, NULL, run, d);
    if (rc != 0) {
        snprintf(err, errlen, "could not start the openai batch thread (error %d)", rc);
        pthread_mutex_destroy(&d->lock);
        pthread_cond_destroy(&d->wake);
        free(d);
        return NULL;
    }
    return d;
}

void oai_driver_stop(struct oai_driver *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->lock);
    atomic_store(&d->stop, true);
    pthread_cond_broadcast(&d->wake);
    pthread_mutex_unlock(&d->lock);
    pthread_join(d->thread, NULL);
    pthread_mutex_destroy(&d->lock);
    pthread_cond_destroy(&d->wake);
    free(d);
}
