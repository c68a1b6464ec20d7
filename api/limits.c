/*
 * limits.c: the per-key limits of the REST surface: requests per second
 * (a token bucket per key in this process, ratelimit.h) and chunks waiting
 * for a vector (read from PostgreSQL, store/limits.h), and their 429 replies.
 */
#include "api.h"

#include "log.h"
#include "ratelimit.h"
#include "store/limits.h"

#include <stdio.h>
#include <time.h>

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

bool api_key_admit(struct app *app, struct http_req *req, struct http_resp *resp,
                   const struct key_limits *lim)
{
    const struct config *cfg = app->cfg;
    int64_t rps = lim->rps >= 0 ? lim->rps : cfg->key_rps;
    int64_t burst = lim->burst >= 0 ? lim->burst : cfg->key_burst;
    req->key_max_pending =
        lim->max_pending_chunks >= 0 ? lim->max_pending_chunks : cfg->key_max_pending_chunks;
    if (rps <= 0 || !app->limiter)
        return true;
    if (burst <= 0)
        burst = rps;
    int64_t retry_ms = 0;
    if (ratelimit_take(app->limiter, req->key_id, (double)rps, (double)burst, mono_ns(), &retry_ms))
        return true;
    char ra[24];
    snprintf(ra, sizeof(ra), "%lld", (long long)((retry_ms + 999) / 1000)); /* whole seconds */
    http_resp_header(resp, "Retry-After", ra);
    http_problem(resp, req, 429, "rate_limited", NULL,
                 "this API key may make %lld requests a second to this server, %lld at once;"
                 " retry in %lld ms",
                 (long long)rps, (long long)burst, (long long)retry_ms);
    http_problem_member(resp, "limit_rps", rps);
    http_problem_member(resp, "burst", burst);
    http_problem_member(resp, "retry_after_ms", retry_ms);
    log_debug("request %s: key %lld over %lld requests a second", req->id, (long long)req->key_id,
              (long long)rps);
    return false;
}

static void pending_problem(struct http_req *req, struct http_resp *resp, int64_t max,
                            int64_t pending, int64_t adding)
{
    if (adding > 0)
        http_problem(resp, req, 429, "too_many_pending_chunks", NULL,
                     "this API key may have at most %lld chunks waiting for a vector; it has %lld"
                     " and this job would add %lld; nothing was stored; retry once some have"
                     " finished",
                     (long long)max, (long long)pending, (long long)adding);
    else
        http_problem(resp, req, 429, "too_many_pending_chunks", NULL,
                     "this API key may have at most %lld chunks waiting for a vector and has"
                     " %lld; nothing was stored; retry once some have finished",
                     (long long)max, (long long)pending);
    http_problem_member(resp, "limit", max);
    http_problem_member(resp, "pending", pending);
    if (adding > 0)
        http_problem_member(resp, "job_chunks", adding);
    log_info("request %s: job refused: key %lld at its pending-chunk limit (%lld pending, %lld"
             " more, limit %lld)",
             req->id, (long long)req->key_id, (long long)pending, (long long)adding,
             (long long)max);
}

bool api_pending_precheck(struct app *app, struct http_req *req, struct http_resp *resp)
{
    int64_t max = req->key_max_pending;
    /* a retry with an Idempotency-Key may be answered with the job its first
     * request created: only the check at the commit, after the replay, applies */
    if (max <= 0 || http_req_header(req, "Idempotency-Key"))
        return true;
    /* only a connection free now: the server thread must not wait here (the
     * check at the commit holds anyway) */
    char err[512];
    PGconn *c = db_pool_acquire(app->db, 0, err, sizeof(err));
    if (!c)
        return true;
    int64_t pending = 0;
    bool ok = limits_pending(c, req->key_id, &pending, err, sizeof(err));
    db_pool_release(app->db, c);
    if (!ok) {
        log_warn("request %s: %s", req->id, err);
        return true;
    }
    if (pending < max)
        return true;
    pending_problem(req, resp, max, pending, 0);
    return false;
}

void api_pending_refused(struct http_req *req, struct http_resp *resp,
                         const struct ingest_limit *lim)
{
    pending_problem(req, resp, lim->max, lim->pending, lim->adding);
}
