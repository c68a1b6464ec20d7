/* sender.c: delivery threads over the webhook outbox (see sender.h). */
#include "webhook/sender.h"

#include "log.h"
#include "store/webhooks.h"
#include "util/clock.h"
#include "webhook/deliver.h"
#include "webhook/secret.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How long an attempt waits for a connection to record itself; the claim's
 * lease covers it (past it the delivery is due again: at least once). */
#define RECORD_WAIT_MS 4000

struct wh_thread {
    struct wh_sender *s;
    pthread_t thread;
    uint64_t rng;
};

struct wh_sender {
    const struct config *cfg;
    struct db_pool *db;
    struct wh_sealer sealer;
    atomic_bool stop;
    atomic_bool abort; /* cut attempts in flight (the shutdown deadline is near) */
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_cond_t exited; /* a thread returned (running went down) */
    size_t running;
    struct wh_thread *threads;
    size_t n;
};

int64_t wh_backoff_ms(int attempts, int64_t base_ms, int64_t max_ms, int64_t retry_after_s,
                      uint64_t r)
{
    int64_t cap = base_ms;
    for (int i = 1; i < attempts && cap < max_ms; i++)
        cap *= 2;
    if (cap > max_ms)
        cap = max_ms;
    int64_t d = cap > 0 ? (int64_t)(r % (uint64_t)(cap + 1)) : 0;
    if (retry_after_s >= 0 && retry_after_s * 1000 > d)
        d = retry_after_s < max_ms / 1000 ? retry_after_s * 1000 : max_ms;
    return d;
}

static uint64_t next_random(uint64_t *x)
{
    /* xorshift64*: spreading retries needs no more */
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    return *x * UINT64_C(2685821657736338717);
}

static int64_t unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The webhook-signature header: the current secret's, then the previous
 * one's during a rotation's grace. False with err when none can be made. */
static bool signatures(struct wh_sender *s, const struct wh_delivery *d, int64_t ts, char *out,
                       size_t n, char *err, size_t errlen)
{
    if (!d->secret_len) {
        snprintf(err, errlen,
                 "the API key has no webhook secret yet: run embedd keys rotate-webhook-secret");
        return false;
    }
    unsigned char raw[WH_SECRET_LEN];
    char sig[WH_SIG_LEN];
    if (!wh_unseal(&s->sealer, d->secret, d->secret_len, raw, err, errlen))
        return false;
    bool ok = wh_sign(raw, sizeof(raw), d->msg_id, ts, d->body, d->body_len, sig);
    if (ok)
        snprintf(out, n, "%s", sig);
    char perr[200];
    if (ok && d->prev_len && wh_unseal(&s->sealer, d->prev, d->prev_len, raw, perr, sizeof(perr)) &&
        wh_sign(raw, sizeof(raw), d->msg_id, ts, d->body, d->body_len, sig))
        snprintf(out + strlen(out), n - strlen(out), " %s", sig);
    memset(raw, 0, sizeof(raw));
    memset(sig, 0, sizeof(sig));
    if (!ok)
        snprintf(err, errlen, "could not sign: libcrypto failed");
    return ok;
}

/* Where the URL points, for logs: scheme and host only (a path or query
 * may carry a token of the receiver's). */
static void url_for_log(const struct wh_target *t, char *out, size_t n)
{
    snprintf(out, n, "%s://%s:%d", t->scheme, t->host, t->port);
}

/* Make one attempt at d and record it. */
static void attempt(struct wh_thread *t, struct wh_delivery *d)
{
    struct wh_sender *s = t->s;
    const struct config *cfg = s->cfg;
    struct wh_target target;
    struct wh_post_result res;
    memset(&res, 0, sizeof(res));
    res.retry_after = -1;
    int64_t started = unix_ms();
    char sig[2 * WH_SIG_LEN + 2], where[320] = "?";
    enum wh_url_verdict v = wh_url_parse(d->url, cfg->webhook_allow_private != 0, &target,
                                         res.error, sizeof(res.error));
    if (v == WH_URL_OK) {
        url_for_log(&target, where, sizeof(where));
        if (signatures(s, d, started / 1000, sig, sizeof(sig), res.error, sizeof(res.error))) {
            struct wh_post p = {.url = d->url,
                                .target = &target,
                                .msg_id = d->msg_id,
                                .timestamp = started / 1000,
                                .signature = sig,
                                .body = d->body,
                                .body_len = d->body_len,
                                .timeout_ms = (long)cfg->webhook_timeout_ms,
                                .allow_private = cfg->webhook_allow_private != 0,
                                .abort = &s->abort};
            wh_post_send(&p, &res);
        }
    } else {
        res.refused = v == WH_URL_REFUSED;
    }
    memset(sig, 0, sizeof(sig));
    char err[512];
    PGconn *c = db_pool_acquire(s->db, RECORD_WAIT_MS, err, sizeof(err));
    if (!c) {
        log_warn("webhook %s: could not record the attempt (%s); it is tried again later",
                 d->msg_id, err);
        return;
    }
    if (res.aborted) {
        if (!wh_hand_back(c, d->id, err, sizeof(err)))
            log_warn("webhook %s: %s", d->msg_id, err);
        db_pool_release(s->db, c);
        return;
    }
    bool ok = res.status >= 200 && res.status <= 299 && !res.error[0];
    int64_t delay =
        wh_backoff_ms(d->attempts + 1, cfg->webhook_backoff_base_ms, cfg->webhook_backoff_max_ms,
                      res.retry_after, next_random(&t->rng));
    enum wh_outcome o = ok                                            ? WH_DELIVERED
                        : res.status == 410                           ? WH_GAVE_UP
                        : d->age_ms + delay > cfg->webhook_max_age_ms ? WH_GAVE_UP
                                                                      : WH_RETRY;
    struct wh_attempt a = {started, res.duration_ms, res.status, ok ? NULL : res.error};
    if (!wh_record(c, d->id, &a, o, delay, err, sizeof(err)))
        log_warn("webhook %s: %s; it is tried again later", d->msg_id, err);
    db_pool_release(s->db, c);
    log_context_job(d->job_id);
    if (o == WH_DELIVERED)
        log_info("webhook %s (%s) delivered to %s: HTTP %d in %lld ms (attempt %d)", d->msg_id,
                 d->event_type, where, res.status, (long long)res.duration_ms, d->attempts + 1);
    else if (o == WH_RETRY)
        log_info("webhook %s (%s) to %s failed: %s (attempt %d); next in %lld ms", d->msg_id,
                 d->event_type, where, res.error, d->attempts + 1, (long long)delay);
    else
        log_warn("webhook %s (%s) to %s failed: %s (attempt %d); %s", d->msg_id, d->event_type,
                 where, res.error, d->attempts + 1,
                 res.status == 410 ? "the receiver answered 410 Gone: no more attempts"
                                   : "too old for another attempt: given up");
    log_context_job(NULL);
}

/* Claim and deliver one; false when nothing was due (or the database is away). */
static bool step(struct wh_thread *t)
{
    struct wh_sender *s = t->s;
    char err[512];
    PGconn *c = db_pool_acquire(s->db, 1000, err, sizeof(err));
    if (!c)
        return false;
    struct wh_delivery d;
    bool found = false;
    /* the lease: the attempt's timeout, and room to record it (RECORD_WAIT_MS) */
    bool ok = wh_claim(c, s->cfg->webhook_timeout_ms + RECORD_WAIT_MS + 1000, &d, &found, err,
                       sizeof(err));
    db_pool_release(s->db, c);
    if (!ok) {
        log_warn("webhook sender: %s", err);
        return false;
    }
    if (!found)
        return false;
    attempt(t, &d);
    wh_delivery_free(&d);
    return true;
}

static void nap(struct wh_sender *s, int64_t ms)
{
    struct timespec until = clock_after(CLOCK_REALTIME, ms);
    pthread_mutex_lock(&s->lock);
    while (!atomic_load(&s->stop) &&
           pthread_cond_timedwait(&s->wake, &s->lock, &until) != ETIMEDOUT)
        ;
    pthread_mutex_unlock(&s->lock);
}

static void *run(void *arg)
{
    struct wh_thread *t = arg;
    struct wh_sender *s = t->s;
    while (!atomic_load(&s->stop))
        if (!step(t))
            nap(s, s->cfg->webhook_poll_ms);
    pthread_mutex_lock(&s->lock);
    s->running--;
    pthread_cond_broadcast(&s->exited);
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

struct wh_sender *wh_sender_start(const struct config *cfg, struct db_pool *db, char *err,
                                  size_t errlen)
{
    struct wh_sender *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->cfg = cfg;
    s->db = db;
    atomic_init(&s->stop, false);
    atomic_init(&s->abort, false);
    if (!wh_sealer_init(&s->sealer, cfg->webhook_secret_key, err, errlen)) {
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    pthread_cond_init(&s->exited, NULL);
    s->threads =
        calloc(cfg->webhook_threads ? (size_t)cfg->webhook_threads : 1, sizeof(*s->threads));
    if (!s->threads) {
        snprintf(err, errlen, "out of memory");
        wh_sender_stop(s, 0);
        return NULL;
    }
    for (size_t i = 0; i < (size_t)cfg->webhook_threads; i++) {
        struct wh_thread *t = &s->threads[i];
        t->s = s;
        if (!random_bytes(&t->rng, sizeof(t->rng)) || !t->rng)
            t->rng = UINT64_C(0x9e3779b97f4a7c15) + i;
        pthread_mutex_lock(&s->lock);
        s->running++;
        pthread_mutex_unlock(&s->lock);
        if (pthread_create(&t->thread, NULL, run, t) != 0) {
            pthread_mutex_lock(&s->lock);
            s->running--;
            pthread_mutex_unlock(&s->lock);
            snprintf(err, errlen, "could not start webhook thread %zu", i);
            wh_sender_stop(s, 0);
            return NULL;
        }
        s->n++;
    }
    log_info("webhooks: %zu delivery thread(s); secrets %s", s->n,
             s->sealer.on ? "sealed with --webhook-secret-key"
                          : "stored unencrypted (set --webhook-secret-key to seal them)");
    return s;
}

void wh_sender_request_stop(struct wh_sender *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    atomic_store(&s->stop, true);
    pthread_cond_broadcast(&s->wake);
    pthread_mutex_unlock(&s->lock);
}

void wh_sender_stop(struct wh_sender *s, int64_t deadline_ms)
{
    if (!s)
        return;
    wh_sender_request_stop(s);
    /* attempts in flight get 80% of the deadline, then are cut off */
    struct timespec until = clock_after(CLOCK_REALTIME, deadline_ms * 8 / 10);
    pthread_mutex_lock(&s->lock);
    while (s->running > 0 && pthread_cond_timedwait(&s->exited, &s->lock, &until) != ETIMEDOUT)
        ;
    atomic_store(&s->abort, true);
    pthread_mutex_unlock(&s->lock);
    for (size_t i = 0; i < s->n; i++)
        pthread_join(s->threads[i].thread, NULL);
    pthread_cond_destroy(&s->exited);
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->lock);
    memset(&s->sealer, 0, sizeof(s->sealer));
    free(s->threads);
    free(s);
}
