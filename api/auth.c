/* auth.c: bearer-key authentication for /v1 routes (then the key's request rate, limits.c), and
 * the shared database-failure replies. */
#include "api.h"

#include "store/keys.h"
#include "log.h"

#include "util/crypto.h"

#include <pthread.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/*
 * Verified keys are remembered for --key-cache-ms (5 s by default), so that
 * a client polling a job's status costs one database round trip per request
 * instead of two. The price: a key revoked in the database keeps working for
 * up to that long in each process, and a change of its limits takes as long.
 * Only keys that verified are cached (a new key works at once; a wrong one
 * always reaches the database).
 */
#define KEY_CACHE_SLOTS 256

struct key_slot {
    unsigned char digest[32];
    int64_t id;
    struct key_limits lim;
    int64_t expires_ms; /* 0: empty */
};

static struct key_slot key_cache[KEY_CACHE_SLOTS];
static pthread_mutex_t key_cache_lock = PTHREAD_MUTEX_INITIALIZER;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool key_cached(const unsigned char d[32], int64_t *id, struct key_limits *lim)
{
    struct key_slot *s = &key_cache[d[0]];
    bool hit = false;
    pthread_mutex_lock(&key_cache_lock);
    if (s->expires_ms > mono_ms() && memcmp(s->digest, d, 32) == 0) {
        *id = s->id;
        *lim = s->lim;
        hit = true;
    }
    pthread_mutex_unlock(&key_cache_lock);
    return hit;
}

static void key_remember(const unsigned char d[32], int64_t id, const struct key_limits *lim,
                         int64_t ttl_ms)
{
    struct key_slot *s = &key_cache[d[0]];
    pthread_mutex_lock(&key_cache_lock);
    memcpy(s->digest, d, 32);
    s->id = id;
    s->lim = *lim;
    s->expires_ms = mono_ms() + ttl_ms;
    pthread_mutex_unlock(&key_cache_lock);
}

static void unauthorized(struct http_resp *resp, const struct http_req *req, const char *detail)
{
    http_resp_header(resp, "WWW-Authenticate", "Bearer realm=\"embedd\"");
    http_problem(resp, req, 401, "unauthorized", NULL, "%s", detail);
}

bool api_authenticate(void *appv, struct http_req *req, struct http_resp *resp)
{
    struct app *app = appv;
    const char *h = http_req_header(req, "Authorization");
    if (!h) {
        unauthorized(resp, req, "an Authorization: Bearer <key> header is required");
        return false;
    }
    if (strncasecmp(h, "Bearer ", 7) != 0) {
        unauthorized(resp, req, "the Authorization header must use the Bearer scheme");
        return false;
    }
    const char *key = h + 7;
    while (*key == ' ')
        key++;
    char err[512];
    unsigned char digest[SHA256_LEN];
    int64_t id = 0;
    struct key_limits lim;
    if (!sha256_digest(key, strlen(key), digest)) {
        log_error("request %s: could not hash the presented key: libcrypto failed", req->id);
        http_problem(resp, req, 500, "internal_error", NULL, "could not check the key");
        return false;
    }
    int64_t ttl = app->cfg->key_cache_ms;
    if (ttl > 0 && key_cached(digest, &id, &lim)) {
        req->key_id = id;
        return api_key_admit(app, req, resp, &lim);
    }
    PGconn *c = api_db_or_503(app, req, resp);
    if (!c)
        return false;
    enum keys_result kr = keys_verify_limits(c, key, &id, &lim, err, sizeof(err));
    db_pool_release(app->db, c);
    switch (kr) {
    case KEYS_OK:
        if (ttl > 0)
            key_remember(digest, id, &lim, ttl);
        req->key_id = id;
        return api_key_admit(app, req, resp, &lim);
    case KEYS_INVALID:
        unauthorized(resp, req, "the API key is not valid");
        return false;
    default:
        api_db_failed(req, resp, err);
        return false;
    }
}

PGconn *api_db_or_503(struct app *app, struct http_req *req, struct http_resp *resp)
{
    char err[512];
    PGconn *c = db_pool_acquire(app->db, app->db_timeout_ms, err, sizeof(err));
    if (!c) {
        log_warn("request %s: %s", req->id, err);
        http_resp_header(resp, "Retry-After", "5");
        http_problem(resp, req, 503, "database_unavailable", NULL,
                     "the database is unreachable; retry later");
    }
    return c;
}

void api_db_failed(struct http_req *req, struct http_resp *resp, const char *err)
{
    log_error("request %s: %s", req->id, err);
    http_resp_header(resp, "Retry-After", "5");
    http_problem(resp, req, 503, "database_error", NULL,
                 "the request could not be completed; retry later");
}
