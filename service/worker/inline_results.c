/*
 * inline_results.c: the inline results of a batch, from the GET that finds
 * it succeeded. That answer holds every result (twice: ~20 KB per 768-d
 * item, 200 MB for 10,000), so it is never held: each result is written as
 * it arrives to an unlinked spool file, as a compact binary record (its key,
 * float32 vector, token count or error), and only once the whole answer has
 * parsed and says the batch succeeded are the records read back and stored
 * SLICE_RESULTS at a time, each slice in a transaction of its own, as for a
 * results file (file_batch.c). Memory: one slice, whatever the batch's size
 * (see worker_internal.h).
 */
#include "log.h"
#include "worker/worker_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SLICE_RESULTS 1000              /* results read back and stored at once */
#define WRITE_BYTES   ((size_t)1 << 20) /* records gathered before a write() */
#define READ_BYTES    ((size_t)1 << 20) /* read back this much at a time */
#define MAX_DIMS      65536             /* sanity bound of a record's vector */
#define KEY_MAX       63                /* a longer key matches no chunk: kept as "-" */

/* A record's head; the key, the vector and the error message follow. */
struct rec {
    int32_t key_len; /* -1: the result has no key */
    int32_t dims;    /* 0: no vector (the item failed) */
    int64_t tokens;
    int32_t code;    /* the item's error code; 0 with a vector */
    int32_t msg_len; /* bytes of its message */
};

void inline_spool_init(struct inline_spool *s, struct worker *w)
{
    memset(s, 0, sizeof(*s));
    s->w = w;
    s->fd = -1;
    buf_init(&s->out, 2 * WRITE_BYTES);
}

void inline_spool_cleanup(struct inline_spool *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    buf_cleanup(&s->out);
}

static bool write_out(struct inline_spool *s)
{
    size_t off = 0;
    while (off < s->out.len) {
        ssize_t n = write(s->fd, s->out.data + off, s->out.len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            char why[128] = "";
            if (strerror_r(errno, why, sizeof(why)) != 0)
                snprintf(why, sizeof(why), "errno %d", errno);
            snprintf(s->err, sizeof(s->err), "could not write the results spool: %s", why);
            return false;
        }
        off += (size_t)n;
    }
    s->bytes += s->out.len;
    buf_reset(&s->out);
    return true;
}

bool inline_spool_result(void *ud, const struct gem_result *r)
{
    struct inline_spool *s = ud;
    if (s->failed)
        return false;
    if (s->fd < 0 && (s->fd = worker_spool_open(s->w->wp->spool, s->err, sizeof(s->err))) < 0) {
        s->failed = true;
        return false;
    }
    const char *key = r->key && strlen(r->key) <= KEY_MAX ? r->key : "-";
    size_t kl = r->key ? strlen(key) : 0;
    int dims = r->values && r->dims > 0 && r->dims <= MAX_DIMS ? r->dims : 0;
    size_t ml = dims ? 0 : strlen(r->error.message);
    struct rec h = {r->key ? (int32_t)kl : -1, dims, r->token_count, dims ? 0 : r->error.code,
                    (int32_t)ml};
    bool ok = buf_append(&s->out, &h, sizeof(h)) && buf_append(&s->out, key, kl) &&
              buf_append(&s->out, r->values, (size_t)dims * sizeof(float)) &&
              buf_append(&s->out, r->error.message, ml);
    if (!ok)
        snprintf(s->err, sizeof(s->err), "out of memory spooling results");
    ok = ok && (s->out.len < WRITE_BYTES || write_out(s));
    s->failed = !ok;
    s->n += ok;
    s->keyless += ok && !r->key;
    return ok;
}

/* Reading the records back. */
struct reader {
    int fd;
    char *buf;
    size_t len, pos;
};

/* At least n bytes at r->buf + r->pos (false: the file ended or failed). */
static bool need(struct reader *r, size_t n)
{
    if (r->len - r->pos >= n)
        return true;
    memmove(r->buf, r->buf + r->pos, r->len - r->pos);
    r->len -= r->pos;
    r->pos = 0;
    while (r->len < n) {
        ssize_t got = read(r->fd, r->buf + r->len, READ_BYTES - r->len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return false;
        r->len += (size_t)got;
    }
    return true;
}

/* The next record into *out (its key into key[KEY_MAX + 1], values malloc'd). */
static bool next_record(struct reader *r, struct gem_result *out, char *key)
{
    struct rec h;
    if (!need(r, sizeof(h)))
        return false;
    memcpy(&h, r->buf + r->pos, sizeof(h));
    size_t kl = h.key_len > 0 ? (size_t)h.key_len : 0;
    size_t body = kl + (size_t)h.dims * sizeof(float) + (size_t)h.msg_len;
    if (h.key_len > KEY_MAX || h.dims < 0 || h.dims > MAX_DIMS || h.msg_len < 0 ||
        h.msg_len >= (int32_t)sizeof(out->error.message) || !need(r, sizeof(h) + body))
        return false;
    const char *p = r->buf + r->pos + sizeof(h);
    memset(out, 0, sizeof(*out));
    out->token_count = h.tokens;
    gem_status_init(&out->error);
    if (h.key_len >= 0) {
        memcpy(key, p, kl);
        key[kl] = '\0';
        out->key = key;
    }
    p += kl;
    if (h.dims > 0) {
        out->values = malloc((size_t)h.dims * sizeof(float));
        if (!out->values)
            return false;
        memcpy(out->values, p, (size_t)h.dims * sizeof(float));
        out->dims = h.dims;
    } else {
        out->error.code = h.code;
        memcpy(out->error.message, p + (size_t)h.dims * sizeof(float), (size_t)h.msg_len);
        out->error.message[h.msg_len] = '\0';
    }
    r->pos += sizeof(h) + body;
    return true;
}

/* What one slice needs, on the heap (a few hundred KB). */
struct slice {
    struct gem_result r[SLICE_RESULTS];
    char keys[SLICE_RESULTS][KEY_MAX + 1];
    struct pipe_result pr[SLICE_RESULTS];
    char emsg[SLICE_RESULTS][300];
};

/* Store the spooled records a slice at a time; counts add to the totals. */
static bool store_spool(struct worker *w, PGconn *c, struct pipe_batch *b, struct inline_spool *s,
                        bool positional, size_t *stored, size_t *requeued, size_t *failed)
{
    struct slice *sl = malloc(sizeof(*sl));
    struct reader rd = {s->fd, malloc(READ_BYTES), 0, 0};
    bool ok = sl && rd.buf && lseek(s->fd, 0, SEEK_SET) == 0;
    if (!ok)
        snprintf(s->err, sizeof(s->err), "could not read the results spool back");
    for (size_t from = 0; ok && from < s->n; from += SLICE_RESULTS) {
        size_t m = s->n - from < SLICE_RESULTS ? s->n - from : SLICE_RESULTS, got = 0;
        for (; got < m && next_record(&rd, &sl->r[got], sl->keys[got]); got++) {
            if (!positional)
                continue;
            /* keyless results in request order: the batch's chunks by seq */
            snprintf(sl->keys[got], sizeof(sl->keys[got]), "%d", b->chunks[from + got].seq);
            sl->r[got].key = sl->keys[got];
        }
        ok = got == m;
        if (!ok)
            snprintf(s->err, sizeof(s->err), "the results spool is short or damaged");
        size_t k = 0, st = 0, rq = 0, fl = 0;
        if (ok)
            worker_map_results(b, sl->r, m, false, sl->pr, sl->emsg, &k);
        ok = ok && (k == 0 || pipe_store_slice(c, b, sl->pr, k, (int)w->wp->cfg->max_attempts, &st,
                                               &rq, &fl, s->err, sizeof(s->err)));
        *stored += st;
        *requeued += rq;
        *failed += fl;
        for (size_t i = 0; i < got; i++)
            free(sl->r[i].values);
    }
    free(rd.buf);
    free(sl);
    return ok;
}

bool inline_collect(struct worker *w, PGconn *c, struct pipe_batch *b, struct inline_spool *s)
{
    const struct config *cfg = w->wp->cfg;
    char err[512] = "";
    size_t stored = 0, requeued = 0, failed = 0;
    bool ok = !s->failed && (!s->out.len || write_out(s));
    /* no metadata echoed at all: results are in request order, which is the
     * batch's chunks by seq (how they were packed); load them to map by position */
    bool keyless = s->n > 0 && s->keyless == s->n;
    if (ok && keyless && !b->chunks && !pipe_load_chunks(c, b, err, sizeof(err)))
        log_warn("batch %s: %s", b->display_name, err);
    ok = ok && store_spool(w, c, b, s, keyless && b->n_chunks == s->n, &stored, &requeued, &failed);
    if (!ok) {
        log_error("batch %s: could not store results: %s", b->display_name, s->err);
        return false;
    }
    /* every result is in: chunks without one go back, the batch closes */
    size_t st = 0, rq = 0, fl = 0;
    if (!pipe_store_results(c, b, NULL, 0, (int)cfg->max_attempts, &st, &rq, &fl, err,
                            sizeof(err))) {
        log_error("batch %s: could not close the batch: %s", b->display_name, err);
        return false;
    }
    log_info("batch %s: stored %zu vectors, %zu retried, %zu failed (%d poll(s); %zu results, "
             "%llu bytes spooled)",
             b->display_name, stored, requeued + rq, failed + fl, b->polls + 1, s->n,
             (unsigned long long)s->bytes);
    return true;
}
