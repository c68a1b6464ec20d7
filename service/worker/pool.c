/* pool.c: the pool of worker threads (see worker.h): start, run, stop. */
#include "worker/worker.h"

#include "gemini/client.h"
#include "log.h"
#include "store/pipeline.h"
#include "util/clock.h"
#include "worker/worker_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* Sleep up to ms, waking early when the pool stops. */
static void nap(struct worker_pool *wp, int64_t ms)
{
    struct timespec ts = clock_after(CLOCK_REALTIME, ms);
    pthread_mutex_lock(&wp->lock);
    if (!atomic_load(&wp->stop))
        pthread_cond_timedwait(&wp->wake, &wp->lock, &ts);
    pthread_mutex_unlock(&wp->lock);
}

static void *run(void *arg)
{
    struct worker *w = arg;
    struct worker_pool *wp = w->wp;
    int64_t backoff = 100;
    while (!atomic_load(&wp->stop)) {
        char err[512];
        PGconn *c = db_pool_acquire(wp->db, 5000, err, sizeof(err));
        if (!c) {
            log_warn("worker %d: %s", w->index, err);
            nap(wp, worker_jitter(w, backoff));
            backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
            continue;
        }
        backoff = 100;
        bool busy = worker_step(w, c);
        db_pool_release(wp->db, c);
        if (!busy) {
            int64_t idle = wp->cfg->poll_min_ms < 1000 ? wp->cfg->poll_min_ms : 1000;
            nap(wp, worker_jitter(w, idle));
        }
    }
    pthread_mutex_lock(&wp->lock);
    wp->running--;
    pthread_cond_broadcast(&wp->exited);
    pthread_mutex_unlock(&wp->lock);
    return NULL;
}

struct worker_pool *worker_pool_start(const struct config *cfg, struct db_pool *db, char *err,
                                      size_t errlen)
{
    struct worker_pool *wp = calloc(1, sizeof(*wp));
    size_t n = (size_t)cfg->workers;
    if (!wp || !(wp->workers = calloc(n, sizeof(*wp->workers)))) {
        free(wp);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    wp->cfg = cfg;
    wp->db = db;
    atomic_init(&wp->stop, false);
    atomic_init(&wp->abort, false);
    atomic_init(&wp->create_hold_until, 0);
    const char *spool = getenv("TMPDIR");
    if (cfg->spool_dir[0])
        spool = cfg->spool_dir;
    else if (!spool || !*spool)
        spool = "/tmp";
    snprintf(wp->spool, sizeof(wp->spool), "%s", spool);
    if (cfg->file_batch_max_requests > 0 && access(wp->spool, W_OK | X_OK) != 0)
        log_warn("spool directory %s is not writable: file batches wait until it is", wp->spool);
    pthread_mutex_init(&wp->lock, NULL);
    pthread_mutex_init(&wp->claim_lock, NULL);
    pthread_cond_init(&wp->wake, NULL);
    pthread_condattr_t ca; /* wait_exited() measures its deadline on the monotonic clock */
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&wp->exited, &ca);
    pthread_condattr_destroy(&ca);
    char host[64] = "host";
    gethostname(host, sizeof(host) - 1);
    snprintf(wp->owner_prefix, sizeof(wp->owner_prefix), "%.60s:%d:", host, (int)getpid());
    /* Every Google call must end well inside the lease of the batch it works on:
     * otherwise another worker could take the intent over while a create is
     * still in flight, find nothing by displayName, and create it again. */
    long call_ms = (long)(cfg->lease_ms / 2);
    struct gem_client_opts go = {cfg->gemini_base_url,
                                 cfg->gemini_api_version,
                                 cfg->gemini_api_key,
                                 call_ms < 10000 ? call_ms : 10000,
                                 call_ms,
                                 0,
                                 &wp->abort,
                                 0};
    for (size_t i = 0; i < n; i++) {
        struct worker *w = &wp->workers[i];
        w->wp = wp;
        w->index = (int)i;
        snprintf(w->owner, sizeof(w->owner), "%.60s:%d:%zu", host, (int)getpid(), i);
        if (getrandom(&w->rng, sizeof(w->rng), 0) != (ssize_t)sizeof(w->rng) || !w->rng)
            w->rng = 0x9e3779b97f4a7c15ULL + i;
        w->gem = gem_client_new(&go);
        pthread_mutex_lock(&wp->lock);
        wp->running++;
        pthread_mutex_unlock(&wp->lock);
        if (!w->gem || pthread_create(&w->thread, NULL, run, w) != 0) {
            snprintf(err, errlen, "could not start worker %zu", i);
            gem_client_free(w->gem);
            w->gem = NULL;
            pthread_mutex_lock(&wp->lock);
            wp->running--;
            pthread_mutex_unlock(&wp->lock);
            wp->n = i;
            worker_pool_stop(wp, 0);
            return NULL;
        }
        wp->n = i + 1;
    }
    return wp;
}

/* Wait until no worker runs or the monotonic deadline passes; true if none runs. */
static bool wait_exited(struct worker_pool *wp, const struct timespec *until)
{
    pthread_mutex_lock(&wp->lock);
    while (wp->running > 0) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > until->tv_sec ||
            (now.tv_sec == until->tv_sec && now.tv_nsec >= until->tv_nsec))
            break;
        pthread_cond_timedwait(&wp->exited, &wp->lock, until);
    }
    bool done = wp->running == 0;
    pthread_mutex_unlock(&wp->lock);
    return done;
}

void worker_pool_request_stop(struct worker_pool *wp)
{
    if (!wp)
        return;
    pthread_mutex_lock(&wp->lock);
    atomic_store(&wp->stop, true);
    pthread_cond_broadcast(&wp->wake);
    pthread_mutex_unlock(&wp->lock);
}

int worker_pool_stop(struct worker_pool *wp, int64_t deadline_ms)
{
    if (!wp)
        return 0;
    worker_pool_request_stop(wp);
    /* steps in flight finish if they can; Google calls still going when most
     * of the deadline is spent are cut off (a cut-off create is reconciled) */
    struct timespec soft = clock_after(CLOCK_MONOTONIC, deadline_ms - deadline_ms / 5);
    if (!wait_exited(wp, &soft)) {
        log_warn("shutdown: workers still busy; ending their Google calls");
        atomic_store(&wp->abort, true);
    }
    for (size_t i = 0; i < wp->n; i++) {
        pthread_join(wp->workers[i].thread, NULL);
        gem_client_free(wp->workers[i].gem);
    }
    /* normally every step has released its lease already; this catches the
     * rest (a step whose last write failed), so others need not wait for expiry */
    int handed = 0;
    char err[512];
    PGconn *c = db_pool_acquire(wp->db, 2000, err, sizeof(err));
    if (!c)
        log_warn("shutdown: leases not handed back (%s); they expire by themselves", err);
    else if (!pipe_hand_back(c, wp->owner_prefix, &handed, err, sizeof(err)))
        log_warn("shutdown: %s; they expire by themselves", err);
    else if (handed)
        log_info("shutdown: handed back %d lease(s)", handed);
    if (c)
        db_pool_release(wp->db, c);
    pthread_mutex_destroy(&wp->lock);
    pthread_mutex_destroy(&wp->claim_lock);
    pthread_cond_destroy(&wp->wake);
    pthread_cond_destroy(&wp->exited);
    free(wp->workers);
    free(wp);
    return handed;
}
