/* worker.c: a worker's step (claim, create, poll, collect); the pool in pool.c. */
#include "gemini/client.h"
#include "gemini/request.h"
#include "log.h"
#include "store/counters.h"
#include "store/jobs_ingest.h"
#include "store/pipeline.h"
#include "worker/worker_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t next_rand(struct worker *w)
{
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    return w->rng;
}

int64_t worker_jitter(struct worker *w, int64_t d)
{
    double f = 0.8 + 0.4 * (double)(next_rand(w) >> 11) * 0x1.0p-53;
    return (int64_t)((double)d * f) + 1;
}

/* Next poll: grows with the batch's size and with every poll, capped. */
static int64_t poll_interval(struct worker *w, const struct pipe_batch *b, size_t n_chunks)
{
    const struct config *cfg = w->wp->cfg;
    double d = (double)cfg->poll_min_ms * (1.0 + (double)n_chunks / 2000.0);
    for (int i = 0; i < b->polls && d < (double)cfg->poll_max_ms; i++)
        d *= 1.3;
    if (d > (double)cfg->poll_max_ms)
        d = (double)cfg->poll_max_ms;
    return worker_jitter(w, (int64_t)d);
}

int64_t worker_retry_delay(struct worker *w, const struct pipe_batch *b, int64_t retry_after_ms)
{
    const struct config *cfg = w->wp->cfg;
    double d = (double)cfg->poll_min_ms;
    for (int i = 0; i < b->polls && d < (double)cfg->poll_max_ms; i++)
        d *= 2;
    if (d > (double)cfg->poll_max_ms)
        d = (double)cfg->poll_max_ms;
    int64_t j = worker_jitter(w, (int64_t)d);
    return retry_after_ms > j ? retry_after_ms : j;
}

/* How long to leave a create whose outcome is unknown before listing Google's
 * batches for it: a create still being processed when it is looked for would
 * not be found, and would be paid for twice. */
static int64_t unknown_settle_ms(const struct config *cfg)
{
    int64_t call = cfg->lease_ms / 2 < 30000 ? cfg->lease_ms / 2 : 30000;
    return call > cfg->poll_min_ms ? call : cfg->poll_min_ms;
}

static void seq_key(int32_t seq, char out[16])
{
    snprintf(out, 16, "%d", seq);
}

static struct gem_req_opts req_opts(const struct pipe_batch *b)
{
    struct gem_req_opts o = {b->model, b->task_type, b->dims};
    return o;
}

/* Exact bytes a chunk adds to the job's inline request body, from the sizes
 * the store keeps (the claim reads no text). */
static size_t chunk_size(const struct pipe_batch *b, const struct pipe_chunk *c, void *arg)
{
    char key[16];
    (void)arg;
    seq_key(c->seq, key);
    struct gem_req_opts o = req_opts(b);
    return gem_batch_item_size_of(&o, key, (size_t)c->text_json_len, c->title_json_len);
}

static bool store(struct worker *w, PGconn *c, struct pipe_batch *b, struct gem_result *r,
                  size_t n);

/* Small jobs: the interactive batchEmbedContents (at most 100 texts a call)
 * answers in one round trip instead of a batch's minutes. */
static enum gem_outcome embed_now(struct worker *w, PGconn *c, struct pipe_batch *b, char *why,
                                  size_t whylen)
{
    struct gem_req_opts o = req_opts(b);
    struct gem_text texts[100];
    char keys[100][16];
    struct gem_result *all = calloc(b->n_chunks ? b->n_chunks : 1, sizeof(*all));
    size_t got = 0;
    enum gem_outcome out = all ? GEM_OK : GEM_RETRY;
    snprintf(why, whylen, "out of memory");
    for (size_t start = 0; out == GEM_OK && start < b->n_chunks; start += 100) {
        size_t n = b->n_chunks - start < 100 ? b->n_chunks - start : 100;
        for (size_t i = 0; i < n; i++) {
            const struct pipe_chunk *ch = &b->chunks[start + i];
            seq_key(ch->seq, keys[i]);
            texts[i] = (struct gem_text){keys[i], ch->text, ch->text_len, ch->title};
        }
        struct buf body;
        buf_init(&body, (size_t)w->wp->cfg->batch_max_bytes + 1024 * 1024);
        struct gem_result *rs = NULL;
        size_t nr = 0;
        struct gem_call res;
        memset(&res, 0, sizeof(res));
        if (!gem_build_sync(&body, &o, texts, n)) {
            out = GEM_FATAL;
            snprintf(why, whylen, "request body too large");
        } else {
            gem_embed_sync(w->gem, b->model, body.data, body.len, &rs, &nr, &res);
            if (res.outcome == GEM_OK)
                store_count_sent("sync", n);
            out = res.outcome == GEM_OK && nr != n ? GEM_FATAL : res.outcome;
            snprintf(why, whylen, "%s",
                     res.outcome == GEM_OK ? "wrong number of embeddings" : res.detail);
        }
        buf_cleanup(&body);
        for (size_t i = 0; i < nr; i++) {
            if (out == GEM_OK) {
                all[got] = rs[i];
                all[got].key = strdup(keys[i]);
                got++;
            } else {
                gem_result_free(&rs[i]);
            }
        }
        free(rs);
    }
    b->interactive = true; /* cost: these tokens were paid at the interactive price */
    if (out == GEM_OK && !store(w, c, b, all, got))
        out = GEM_RETRY;
    for (size_t i = 0; i < got; i++)
        gem_result_free(&all[i]);
    free(all);
    return out;
}

/* Google accepted the batch: that must reach the database. If the database
 * is away, keep trying (reconnecting) for up to half a lease while still
 * holding it, rather than leave the batch to be found again by listing
 * Google's batches once the lease expires. */
static bool record_submission(struct worker *w, PGconn *c, struct pipe_batch *b, const char *name,
                              char *err, size_t errlen)
{
    const struct config *cfg = w->wp->cfg;
    int64_t poll = poll_interval(w, b, b->n_chunks);
    if (pipe_submitted(c, b->id, name, poll, err, errlen))
        return true;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int64_t delay = 100;
    for (;;) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t spent = (int64_t)(now.tv_sec - t0.tv_sec) * 1000 +
                        (int64_t)(now.tv_nsec - t0.tv_nsec) / 1000000;
        if (spent + delay > cfg->lease_ms / 2 || atomic_load(&w->wp->abort))
            return false; /* the lease expires; a reconcile finds it at Google */
        log_warn("batch %s: %s; retrying in %lld ms", b->display_name, err, (long long)delay);
        /* not nap(): that returns at once when the pool is stopping, and this
         * must go on until the shutdown deadline cuts it off */
        for (int64_t slept = 0, d = worker_jitter(w, delay);
             slept < d && !atomic_load(&w->wp->abort); slept += 50) {
            struct timespec ts = {0, 50 * 1000000L};
            nanosleep(&ts, NULL);
        }
        delay = delay * 2 > 2000 ? 2000 : delay * 2;
        if (PQstatus(c) != CONNECTION_OK)
            PQreset(c);
        if (PQstatus(c) == CONNECTION_OK && pipe_submitted(c, b->id, name, poll, err, errlen))
            return true;
    }
}

int64_t worker_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void worker_retry_later(struct worker *w, PGconn *c, const struct pipe_batch *b, int64_t delay_ms)
{
    char err[512] = "";
    if (!pipe_retry_later(c, b->id, delay_ms, err, sizeof(err)))
        log_error("batch %s: %s", b->display_name, err);
    (void)w;
}

void worker_count_received(struct worker *w, PGconn *c, const struct pipe_batch *b,
                           const char *what, const struct gem_call *res)
{
    char err[512] = "";
    int64_t total = 0;
    (void)w;
    if (res->bytes_received == 0)
        return;
    if (!pipe_add_response_bytes(c, b->id, (int64_t)res->bytes_received, &total, err, sizeof(err)))
        log_warn("batch %s: %s", b->display_name, err);
    else
        log_debug("batch %s: %s received %llu bytes in %lld ms (%lld for the batch so far)",
                  b->display_name, what, (unsigned long long)res->bytes_received,
                  (long long)res->elapsed_ms, (long long)total);
}

/* Google refused a create with 429: nobody here claims new batches for a while
 * (those already claimed retry on their own schedule). */
static void hold_creates(struct worker *w, int64_t delay_ms)
{
    int64_t until = worker_now_ms() + delay_ms;
    int64_t was = atomic_load(&w->wp->create_hold_until);
    while (was < until && !atomic_compare_exchange_weak(&w->wp->create_hold_until, &was, until))
        ;
    if (was < until)
        log_warn("creates refused with HTTP 429: no new batches for %lld ms", (long long)delay_ms);
}

void worker_created(struct worker *w, PGconn *c, struct pipe_batch *b,
                    const struct gem_operation *op, const struct gem_call *res)
{
    const struct config *cfg = w->wp->cfg;
    char err[512] = "";
    bool ok = true;
    int64_t delay;
    switch (res->outcome) {
    case GEM_OK:
        store_count_sent(b->transport, b->n_chunks);
        if (b->input_file[0])
            log_info("batch %s: created %s from %s (%lld bytes)", b->display_name, op->name,
                     b->input_file, (long long)b->request_bytes);
        else
            log_info("batch %s: created %s with %zu chunks", b->display_name, op->name,
                     b->n_chunks);
        ok = record_submission(w, c, b, op->name, err, sizeof(err));
        break;
    case GEM_RETRY:
        log_warn("batch %s: create deferred: %s", b->display_name, res->detail);
        delay = worker_retry_delay(w, b, res->retry_after_ms);
        if (res->http == 429)
            hold_creates(w, delay);
        ok = pipe_retry_later(c, b->id, delay, err, sizeof(err));
        break;
    case GEM_UNKNOWN:
        /* it may exist at Google: the next visit lists batches before creating again,
         * after the request could still be in Google's hands (up to a call's timeout) */
        log_warn("batch %s: create outcome unknown (%s); will reconcile", b->display_name,
                 res->detail);
        ok = pipe_retry_later(c, b->id, worker_jitter(w, unknown_settle_ms(cfg)), err, sizeof(err));
        break;
    case GEM_FATAL:
        log_error("batch %s: create refused: %s", b->display_name, res->detail);
        ok = pipe_release(c, b, "failed", res->detail, true, (int)cfg->max_attempts, err,
                          sizeof(err));
        break;
    }
    if (!ok)
        log_error("batch %s: %s", b->display_name, err);
}

/* Create the batch at Google for b's chunks (loaded, unless it travels as a file). */
static void submit(struct worker *w, PGconn *c, struct pipe_batch *b)
{
    const struct config *cfg = w->wp->cfg;
    char err[512] = "";
    if (strcmp(b->transport, "file") == 0) {
        file_submit(w, c, b); /* reads its chunks a page at a time */
        return;
    }
    if ((!b->chunks || !b->chunks[0].text) && !pipe_load_chunks(c, b, err, sizeof(err))) {
        log_error("batch %s: %s", b->display_name, err);
        if (!pipe_retry_later(c, b->id, worker_retry_delay(w, b, -1), err, sizeof(err)))
            log_error("batch %s: %s", b->display_name, err);
        return;
    }
    if (strcmp(b->transport, "sync") == 0 && strcmp(b->state, "intent") == 0 && b->polls == 0) {
        char why[256];
        enum gem_outcome out = embed_now(w, c, b, why, sizeof(why));
        bool ok = true;
        if (out == GEM_FATAL) {
            log_error("job %s: interactive embedding refused: %s", b->job_id, why);
            ok = pipe_release(c, b, "failed", why, true, (int)cfg->max_attempts, err, sizeof(err));
        } else if (out != GEM_OK) {
            log_warn("job %s: interactive embedding deferred: %s", b->job_id, why);
            ok = pipe_retry_later(c, b->id, worker_retry_delay(w, b, -1), err, sizeof(err));
        }
        if (!ok)
            log_error("batch %s: %s", b->display_name, err);
        return;
    }
    struct gem_req_opts o = req_opts(b);
    struct gem_text *texts = calloc(b->n_chunks ? b->n_chunks : 1, sizeof(*texts));
    char(*keys)[16] = calloc(b->n_chunks ? b->n_chunks : 1, 16);
    struct buf body;
    buf_init(&body, (size_t)cfg->batch_max_bytes + 1024 * 1024);
    bool built = texts && keys;
    for (size_t i = 0; built && i < b->n_chunks; i++) {
        seq_key(b->chunks[i].seq, keys[i]);
        texts[i] = (struct gem_text){keys[i], b->chunks[i].text, b->chunks[i].text_len,
                                     b->chunks[i].title};
    }
    built = built && gem_build_batch(&body, b->display_name, &o, texts, b->n_chunks);
    free(texts);
    free(keys);
    if (!built) {
        log_error("batch %s: could not build the request body", b->display_name);
        if (!pipe_retry_later(c, b->id, cfg->poll_max_ms, err, sizeof(err)))
            log_error("%s", err);
        buf_cleanup(&body);
        return;
    }
    struct gem_operation op;
    struct gem_call res;
    memset(&op, 0, sizeof(op));
    gem_create_batch(w->gem, b->model, body.data, body.len, &op, &res);
    buf_cleanup(&body);
    worker_created(w, c, b, &op, &res);
    gem_operation_free(&op);
}

/* Search Google's list for b's displayName; writes the name when found. */
static enum gem_outcome find_by_display_name(struct worker *w, const struct pipe_batch *b,
                                             char *name, size_t len, bool *found)
{
    char token[256] = "";
    *found = false;
    for (int page = 0; page < LIST_PAGES_MAX; page++) {
        struct gem_operation *ops = NULL;
        size_t n = 0;
        struct gem_call res;
        char next[256] = "";
        gem_list_batches(w->gem, 100, token, &ops, &n, next, sizeof(next), &res);
        if (res.outcome != GEM_OK)
            return res.outcome;
        for (size_t i = 0; i < n; i++) {
            if (!*found && strcmp(ops[i].display_name, b->display_name) == 0) {
                snprintf(name, len, "%s", ops[i].name);
                *found = true;
            }
            gem_operation_free(&ops[i]);
        }
        free(ops);
        if (*found || !next[0])
            return GEM_OK;
        snprintf(token, sizeof(token), "%s", next);
    }
    return GEM_OK;
}

/* An intent whose create may or may not have reached Google. */
static void reconcile(struct worker *w, PGconn *c, struct pipe_batch *b)
{
    const struct config *cfg = w->wp->cfg;
    char err[512] = "", name[128];
    bool found = false;
    if (strcmp(b->job_state, "cancelled") == 0) {
        if (!pipe_release(c, b, "cancelled", "cancelled", false, (int)cfg->max_attempts, err,
                          sizeof(err)))
            log_error("batch %s: %s", b->display_name, err);
        else
            file_tidy(w, b, "");
        return;
    }
    enum gem_outcome out = find_by_display_name(w, b, name, sizeof(name), &found);
    if (out != GEM_OK) {
        if (!pipe_retry_later(c, b->id, worker_retry_delay(w, b, -1), err, sizeof(err)))
            log_error("batch %s: %s", b->display_name, err);
        return;
    }
    if (found) {
        log_info("batch %s: found at Google as %s; not creating it again", b->display_name, name);
        if (!pipe_submitted(c, b->id, name, 0, err, sizeof(err)))
            log_error("batch %s: %s", b->display_name, err);
        return;
    }
    if (strcmp(b->transport, "file") == 0) {
        file_reconcile(w, c, b); /* its upload may be at Google, complete or not */
        return;
    }
    if (!pipe_load_chunks(c, b, err, sizeof(err))) {
        log_error("batch %s: %s", b->display_name, err);
        return;
    }
    submit(w, c, b);
}

void worker_map_results(const struct pipe_batch *b, const struct gem_result *r, size_t n,
                        bool positional, struct pipe_result *pr, char (*emsg)[300], size_t *k_out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char *end = NULL;
        long seq = r[i].key ? strtol(r[i].key, &end, 10) : -1;
        if (positional)
            seq = b->chunks[i].seq;
        else if (!r[i].key || !end || *end || seq < 0)
            continue; /* unmatched: the chunk counts as "no result" */
        /* every member set: pr may be a reused array (a slice after a slice) */
        memset(&pr[k], 0, sizeof(pr[k]));
        pr[k].seq = (int32_t)seq;
        pr[k].tokens = -1;
        if (r[i].values && r[i].dims == b->dims) {
            pr[k].values = r[i].values;
            pr[k].dims = r[i].dims;
            pr[k].tokens = r[i].token_count;
        } else {
            if (r[i].values)
                snprintf(emsg[i], sizeof(emsg[i]), "vector has %d dimensions, expected %d",
                         r[i].dims, b->dims);
            else
                snprintf(emsg[i], sizeof(emsg[i]), "%.250s (code %d)",
                         r[i].error.message[0] ? r[i].error.message : "item failed",
                         r[i].error.code);
            pr[k].error = emsg[i];
        }
        k++;
    }
    *k_out = k;
}

/* Map results to chunks by key; fall back to position only when no key came back. */
static bool store(struct worker *w, PGconn *c, struct pipe_batch *b, struct gem_result *r, size_t n)
{
    const struct config *cfg = w->wp->cfg;
    char err[512] = "";
    struct pipe_result *pr = calloc(n ? n : 1, sizeof(*pr));
    size_t k = 0;
    bool keyless = n > 0;
    for (size_t i = 0; i < n; i++)
        keyless = keyless && r[i].key == NULL;
    /* no metadata echoed at all: results are in request order, which is the
     * batch's chunks by seq (how they were packed); load them to map by position */
    if (keyless && !b->chunks && !pipe_load_chunks(c, b, err, sizeof(err)))
        log_warn("batch %s: %s", b->display_name, err);
    bool positional = keyless && b->n_chunks == n;
    char(*emsg)[300] = calloc(n ? n : 1, sizeof(*emsg));
    if (pr && emsg)
        worker_map_results(b, r, n, positional, pr, emsg, &k);
    size_t stored = 0, requeued = 0, failed = 0;
    bool ok = pr && emsg &&
              pipe_store_results(c, b, pr, k, (int)cfg->max_attempts, &stored, &requeued, &failed,
                                 err, sizeof(err));
    if (!ok)
        log_error("batch %s: could not store results: %s", b->display_name,
                  pr && emsg ? err : "out of memory");
    else
        log_info("batch %s: stored %zu vectors, %zu retried, %zu failed (%d poll(s))",
                 b->display_name, stored, requeued, failed, b->polls + 1);
    free(pr);
    free(emsg);
    return ok;
}

/* Results of a succeeded batch, inline (spooled by the GET) or from its
 * output file; true once stored. Either way a slice at a time. */
static bool collect(struct worker *w, PGconn *c, struct pipe_batch *b, struct gem_operation *op,
                    struct inline_spool *sp)
{
    if (op->has_inline || !op->responses_file[0])
        return inline_collect(w, c, b, sp);
    /* the file is stored as it arrives, a slice at a time: whatever its size */
    return file_collect(w, c, b, op->responses_file);
}

/* Best effort: delete a batch whose results are stored, so that Google's list
 * (searched when reconciling) stays short. */
static void tidy(struct worker *w, const struct pipe_batch *b)
{
    struct gem_call res;
    if (!b->gemini_name[0])
        return;
    gem_delete_batch(w->gem, b->gemini_name, &res);
    if (res.outcome != GEM_OK)
        log_debug("batch %s: could not delete %s at Google: %s", b->display_name, b->gemini_name,
                  res.detail);
}

static void cancel_at_google(struct worker *w, PGconn *c, struct pipe_batch *b, const char *state,
                             const char *reason, bool count_attempt)
{
    struct gem_call res;
    char err[512] = "";
    if (b->gemini_name[0]) {
        gem_cancel_batch(w->gem, b->gemini_name, &res);
        if (res.outcome == GEM_RETRY) {
            if (!pipe_retry_later(c, b->id, worker_jitter(w, w->wp->cfg->poll_min_ms), err,
                                  sizeof(err)))
                log_error("%s", err);
            return;
        }
    }
    if (!pipe_release(c, b, state, reason, count_attempt, (int)w->wp->cfg->max_attempts, err,
                      sizeof(err))) {
        log_error("batch %s: %s", b->display_name, err);
        return;
    }
    log_info("batch %s: %s (%s)", b->display_name, state, reason);
    file_tidy(w, b, "");
}

static void poll_batch(struct worker *w, PGconn *c, struct pipe_batch *b)
{
    const struct config *cfg = w->wp->cfg;
    char err[512] = "";
    if (strcmp(b->job_state, "cancelled") == 0) {
        cancel_at_google(w, c, b, "cancelled", "cancelled", false);
        return;
    }
    struct gem_operation op;
    struct gem_call res;
    memset(&op, 0, sizeof(op));
    /* a succeeded inline batch's answer holds its results: spooled as they arrive */
    struct inline_spool sp;
    inline_spool_init(&sp, w);
    struct gem_result_sink sink = {inline_spool_result, &sp};
    gem_get_batch_to(w->gem, b->gemini_name, &sink, &op, &res);
    if (sp.failed)
        log_error("batch %s: %s", b->display_name, sp.err);
    worker_count_received(w, c, b, "poll", &res);
    bool ok = true;
    if (res.outcome == GEM_RETRY) {
        ok = pipe_retry_later(c, b->id, worker_retry_delay(w, b, res.retry_after_ms), err,
                              sizeof(err));
    } else if (res.outcome != GEM_OK && res.http == 404) {
        /* Google no longer has the batch: its chunks go back to be sent again */
        log_error("batch %s: %s is gone: %s", b->display_name, b->gemini_name, res.detail);
        ok = pipe_release(c, b, "failed", res.detail, true, (int)cfg->max_attempts, err,
                          sizeof(err));
    } else if (res.outcome != GEM_OK) {
        /* the batch may well be fine (a refused or garbled poll): releasing its chunks
         * could pay for them twice, so keep polling, more and more slowly */
        log_error("batch %s: poll failed: %s", b->display_name, res.detail);
        ok = pipe_retry_later(c, b->id, worker_retry_delay(w, b, -1), err, sizeof(err));
    } else {
        switch (op.state) {
        case GEM_STATE_SUCCEEDED:
            if (collect(w, c, b, &op, &sp)) {       /* only once the vectors are safely stored: */
                file_tidy(w, b, op.responses_file); /* before its batch: it may go with it */
                tidy(w, b);
            }
            break;
        case GEM_STATE_FAILED:
        case GEM_STATE_EXPIRED:
        case GEM_STATE_CANCELLED: {
            const char *st = op.state == GEM_STATE_FAILED    ? "failed"
                             : op.state == GEM_STATE_EXPIRED ? "expired"
                                                             : "cancelled";
            char why[600];
            snprintf(why, sizeof(why), "Google batch %s: %s", st,
                     op.error.message[0] ? op.error.message : gem_state_name(op.state));
            ok = pipe_release(c, b, st, why, op.state != GEM_STATE_CANCELLED,
                              (int)cfg->max_attempts, err, sizeof(err));
            if (ok)
                file_tidy(w, b, op.responses_file);
            break;
        }
        default:
            if (b->age_ms > cfg->batch_deadline_ms) {
                log_warn("batch %s: still %s after %lld ms; cancelling and resubmitting",
                         b->display_name, gem_state_name(op.state), (long long)b->age_ms);
                cancel_at_google(w, c, b, "released", "deadline exceeded", false);
            } else {
                ok = pipe_poll_later(c, b->id, gem_state_name(op.state),
                                     poll_interval(w, b, (size_t)op.request_count), err,
                                     sizeof(err));
            }
        }
    }
    gem_operation_free(&op);
    inline_spool_cleanup(&sp);
    if (!ok)
        log_error("batch %s: %s", b->display_name, err);
}

/* Every few seconds (worker 0): refresh the planner's statistics of chunks
 * and documents once enough rows changed since the last ANALYZE, instead of
 * in the request that stored a large job (~0.4 s of it at 100,000 chunks).
 * Claims and stores do not depend on statistics (store/claim.c,
 * store/pipeline.c); reads such as result pages plan better with fresh
 * ones, and autovacuum would take minutes to notice. */
static void refresh_statistics(struct worker *w, PGconn *c)
{
    int64_t now = worker_now_ms();
    if (now < w->stats_at)
        return;
    w->stats_at = now + 5000;
    char err[256];
    bool ran = false;
    if (!store_refresh_statistics(c, JOBS_ANALYZE_MIN_CHUNKS, &ran, err, sizeof(err)))
        log_warn("statistics: %s", err);
    else if (ran)
        log_debug("statistics: chunks and documents analysed");
}

/* One unit of work; returns whether there was any. */
bool worker_step(struct worker *w, PGconn *c)
{
    const struct config *cfg = w->wp->cfg;
    char err[512] = "";
    struct pipe_batch b;
    bool found = false;
    if (w->index == 0) {
        file_janitor(w, c); /* when it is due */
        refresh_statistics(w, c);
    }
    if (!pipe_claim_due(c, w->owner, cfg->lease_ms, &b, &found, err, sizeof(err))) {
        log_error("worker %d: %s", w->index, err);
        return false;
    }
    if (found) {
        log_context_job(b.job_id);
        if (strcmp(b.state, "intent") == 0)
            reconcile(w, c, &b);
        else
            poll_batch(w, c, &b);
        pipe_batch_free(&b);
        log_context_job(NULL);
        return true;
    }
    if (worker_now_ms() < atomic_load(&w->wp->create_hold_until))
        return false; /* Google refuses creates for now */
    /* Batches are packed up to the file limits; one that passes the inline
     * limits (bytes or chunks) travels as a file. Display names are all
     * "embedd-" + 8 + "-" + 12 characters long. */
    bool files = cfg->file_batch_max_requests > 0;
    int64_t inline_max = cfg->batch_inline_max_bytes < cfg->batch_max_bytes
                             ? cfg->batch_inline_max_bytes
                             : cfg->batch_max_bytes;
    struct pipe_claim_opts co = {
        .owner = w->owner,
        .lease_ms = cfg->lease_ms,
        .max_items = (size_t)(files ? cfg->file_batch_max_requests : cfg->batch_max_requests),
        .max_bytes = (size_t)(files ? cfg->file_batch_max_bytes : cfg->batch_max_bytes),
        .overhead_bytes = gem_batch_overhead("embedd-00000000-000000000000"),
        .size = chunk_size,
        .inline_max_bytes = (size_t)(files ? inline_max : cfg->batch_max_bytes),
        .inline_max_items = files ? (size_t)cfg->batch_max_requests : 0,
        .sync_max_chunks = cfg->sync_max_texts,
        .max_open = cfg->max_open_batches,
    };
    int64_t claim_ms = 0;
    pthread_mutex_lock(&w->wp->claim_lock);
    bool claimed = pipe_claim(c, &co, &b, &found, &claim_ms, err, sizeof(err));
    pthread_mutex_unlock(&w->wp->claim_lock);
    if (!claimed) {
        log_error("worker %d: %s", w->index, err);
        return false;
    }
    if (!found)
        return false;
    log_context_job(b.job_id);
    submit(w, c, &b);
    pipe_batch_free(&b);
    log_context_job(NULL);
    return true;
}
