/*
 * file_batch.c: batches that travel through Google's Files API (see
 * worker_internal.h). The JSONL is written to an unlinked spool file a page
 * of chunks at a time, uploaded with resume, and recorded on the batch row
 * before the batch is created with it; results are read from the results
 * file as they arrive and stored a slice at a time. A worker holds a page of
 * chunks or a slice of results, never a batch.
 *
 * Crash safety is the inline batches' (the intent row, written before Google
 * is called, covers the upload and the create), plus: every write after a
 * long call is guarded by the lease (pipe_renew_lease and friends), so that
 * a worker that overran its lease never creates a batch another worker has
 * taken over; an intent is created only after Google's list of batches
 * proved it does not exist; files are found again by their displayName (the
 * batch's), reused when complete and deleted when not.
 */
#include "gemini/request.h"
#include "log.h"
#include "worker/worker_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PAGE_CHUNKS   1000               /* chunks read (and held) at once while writing */
#define FLUSH_BYTES   ((size_t)1 << 20)  /* JSONL gathered before a write() */
#define JSONL_BUF_MAX ((size_t)64 << 20) /* the JSONL buffer's cap (one line always fits) */
#define SLICE_RESULTS 1000               /* results stored in one transaction */

/* ---- writing the JSONL ---- */

int worker_spool_open(const char *dir, char *err, size_t errlen)
{
    char path[600];
    if (snprintf(path, sizeof(path), "%s/embedd-batch-XXXXXX", dir) >= (int)sizeof(path)) {
        snprintf(err, errlen, "spool directory name too long");
        return -1;
    }
    int fd = mkstemp(path);
    if (fd < 0) {
        char why[128] = "";
        if (strerror_r(errno, why, sizeof(why)) != 0)
            snprintf(why, sizeof(why), "errno %d", errno);
        snprintf(err, errlen, "could not create a file in %.400s: %s", dir, why);
        return -1;
    }
    unlink(path);
    return fd;
}

/* The JSONL on its way to the spool file. */
struct writer {
    int fd;
    struct buf out;
    uint64_t bytes; /* written to fd so far */
};

static bool write_all(int fd, const char *p, size_t n, char *err, size_t errlen)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            char why[128] = "no space";
            if (k < 0 && strerror_r(errno, why, sizeof(why)) != 0)
                snprintf(why, sizeof(why), "errno %d", errno);
            snprintf(err, errlen, "could not write the JSONL file: %s", why);
            return false;
        }
        p += k;
        n -= (size_t)k;
    }
    return true;
}

static bool writer_flush(struct writer *wr, char *err, size_t errlen)
{
    bool ok = write_all(wr->fd, wr->out.data, wr->out.len, err, errlen);
    wr->bytes += ok ? wr->out.len : 0;
    buf_reset(&wr->out);
    return ok;
}

/* Append one chunk's line, writing what is gathered to the file when it is
 * full (or past FLUSH_BYTES). */
static bool put_line(struct writer *wr, const struct gem_req_opts *o, const struct pipe_chunk *ch,
                     char *err, size_t errlen)
{
    char key[16];
    snprintf(key, sizeof(key), "%d", ch->seq);
    struct gem_text t = {key, ch->text, ch->text_len, ch->title};
    if (!gem_build_jsonl_line(&wr->out, o, &t)) {
        if (!writer_flush(wr, err, errlen))
            return false;
        if (!gem_build_jsonl_line(&wr->out, o, &t)) {
            snprintf(err, errlen, "chunk %d does not fit in a JSONL line (or out of memory)",
                     ch->seq);
            return false;
        }
    }
    return wr->out.len < FLUSH_BYTES || writer_flush(wr, err, errlen);
}

/* Write b's chunks in flight as JSONL into fd, a page at a time, in seq
 * order (the same bytes every time: a reconcile that writes it again gets a
 * file of the same size). *bytes its size, *lines its lines. */
static bool write_jsonl(PGconn *c, const struct pipe_batch *b, int fd, uint64_t *bytes,
                        size_t *lines, char *err, size_t errlen)
{
    struct gem_req_opts o = {b->model, b->task_type, b->dims};
    struct writer wr = {fd, {0}, 0};
    buf_init(&wr.out, JSONL_BUF_MAX);
    int64_t after = -1;
    bool ok = true;
    *lines = 0;
    while (ok) {
        struct pipe_chunk *page = NULL;
        size_t n = 0;
        ok = pipe_chunks_page(c, b, after, PAGE_CHUNKS, &page, &n, err, errlen);
        for (size_t i = 0; ok && i < n; i++)
            ok = put_line(&wr, &o, &page[i], err, errlen);
        if (n)
            after = page[n - 1].seq;
        *lines += n;
        pipe_chunks_free(page, n);
        if (n < PAGE_CHUNKS)
            break;
    }
    ok = ok && (wr.out.len == 0 || writer_flush(&wr, err, errlen));
    buf_cleanup(&wr.out);
    *bytes = wr.bytes;
    return ok;
}

/* ---- guards ---- */

/* Still ours? Renews the lease when it is; false (logged) when it is not, or
 * when the database cannot say (then the lease runs out by itself). */
static bool still_ours(struct worker *w, PGconn *c, const struct pipe_batch *b, const char *when)
{
    char err[512] = "";
    bool held = false;
    if (!pipe_renew_lease(c, b->id, w->owner, w->wp->cfg->lease_ms, &held, err, sizeof(err)))
        log_error("batch %s: %s", b->display_name, err);
    else if (!held)
        log_warn("batch %s: lease lost %s; leaving the batch to its new owner", b->display_name,
                 when);
    return held;
}

/* Best effort; routine deletes (routine) are logged at debug, others at info. */
static void delete_file(struct worker *w, const struct pipe_batch *b, const char *name,
                        const char *why, bool routine)
{
    struct gem_call res;
    gem_delete_file(w->gem, name, &res);
    if (res.outcome == GEM_OK && routine)
        log_debug("batch %s: deleted %s (%s)", b->display_name, name, why);
    else if (res.outcome == GEM_OK)
        log_info("batch %s: deleted %s (%s)", b->display_name, name, why);
    else if (res.http != 404)
        log_warn("batch %s: could not delete %s (%s): %s", b->display_name, name, why, res.detail);
}

/* ---- upload, record, create ---- */

static void create_with_file(struct worker *w, PGconn *c, struct pipe_batch *b)
{
    struct buf body;
    buf_init(&body, 4096);
    if (!gem_build_file_batch(&body, b->display_name, b->input_file)) {
        log_error("batch %s: could not build the request body", b->display_name);
        worker_retry_later(w, c, b, w->wp->cfg->poll_max_ms);
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
    if (res.outcome == GEM_FATAL)
        file_tidy(w, b, ""); /* refused: the batch is released, its file of no more use */
}

/* The complete file name is at Google: record it on the row (its own
 * transaction, guarded by the lease), then create. Nothing is created unless
 * the record is committed: a crash in between finds the file again. */
static void record_and_create(struct worker *w, PGconn *c, struct pipe_batch *b, const char *name)
{
    char err[512] = "";
    bool held = false;
    if (!pipe_input_file(c, b->id, w->owner, name, w->wp->cfg->lease_ms, &held, err, sizeof(err))) {
        log_error("batch %s: %s; not creating it now", b->display_name, err);
        return; /* the lease runs out; a reconcile finds the file by its displayName */
    }
    if (!held) {
        log_warn("batch %s: lease lost during the upload; leaving the batch to its new owner",
                 b->display_name);
        return;
    }
    snprintf(b->input_file, sizeof(b->input_file), "%s", name);
    create_with_file(w, c, b);
}

static void upload_opts(const struct worker *w, struct gem_upload_opts *uo)
{
    memset(uo, 0, sizeof(*uo));
    uo->piece_bytes = (size_t)w->wp->cfg->upload_piece_bytes;
}

void file_submit(struct worker *w, PGconn *c, struct pipe_batch *b)
{
    const struct config *cfg = w->wp->cfg;
    char err[512] = "", name[128] = "";
    int fd = worker_spool_open(w->wp->spool, err, sizeof(err));
    if (fd < 0) {
        log_error("batch %s: %s", b->display_name, err);
        worker_retry_later(w, c, b, worker_retry_delay(w, b, -1));
        return;
    }
    uint64_t bytes = 0;
    size_t lines = 0;
    int64_t t0 = worker_now_ms();
    if (!write_jsonl(c, b, fd, &bytes, &lines, err, sizeof(err))) {
        log_error("batch %s: %s", b->display_name, err);
        close(fd);
        worker_retry_later(w, c, b, worker_retry_delay(w, b, -1));
        return;
    }
    if (lines == 0 || (b->n_chunks && lines != b->n_chunks)) {
        /* chunks left the batch behind its back: send nothing */
        log_error("batch %s: %zu chunk(s) in flight, %zu expected; not sending it", b->display_name,
                  lines, b->n_chunks);
        close(fd);
        if (lines > 0)
            worker_retry_later(w, c, b, cfg->poll_max_ms);
        else if (!pipe_release(c, b, "released", "no chunk left in flight", false,
                               (int)cfg->max_attempts, err, sizeof(err)))
            log_error("batch %s: %s", b->display_name, err);
        return;
    }
    bool held = false;
    bool recorded = pipe_file_written(c, b->id, w->owner, (int64_t)bytes, cfg->lease_ms, &held, err,
                                      sizeof(err));
    if (!recorded || !held) {
        if (!recorded)
            log_error("batch %s: %s", b->display_name, err);
        else
            log_warn("batch %s: lease lost while writing its file", b->display_name);
        close(fd);
        return; /* nothing was sent: the lease runs out and it starts over */
    }
    b->request_bytes = (int64_t)bytes;
    log_debug("batch %s: %zu chunks written as %llu bytes of JSONL in %lld ms", b->display_name,
              lines, (unsigned long long)bytes, (long long)(worker_now_ms() - t0));
    struct gem_upload_opts uo;
    upload_opts(w, &uo);
    struct gem_call res;
    gem_upload_fd(w->gem, b->display_name, fd, bytes, &uo, name, sizeof(name), &res);
    close(fd);
    log_debug("batch %s: upload %s: %llu bytes sent in %u request(s), %lld ms", b->display_name,
              gem_outcome_name(res.outcome), (unsigned long long)res.bytes_sent, res.requests,
              (long long)res.elapsed_ms);
    if (res.outcome == GEM_OK) {
        record_and_create(w, c, b, name);
        return;
    }
    if (!still_ours(w, c, b, "during the upload"))
        return;
    if (res.outcome == GEM_FATAL) {
        /* what is left of it at Google is deleted with the batch's other files */
        log_error("batch %s: upload refused: %s", b->display_name, res.detail);
        if (!pipe_release(c, b, "failed", res.detail, true, (int)cfg->max_attempts, err,
                          sizeof(err)))
            log_error("batch %s: %s", b->display_name, err);
        return;
    }
    /* the next visit lists the files first: a complete upload is not sent again */
    log_warn("batch %s: upload failed: %s; will retry", b->display_name, res.detail);
    worker_retry_later(w, c, b, worker_retry_delay(w, b, res.retry_after_ms));
}

/* ---- reconcile ---- */

/* The files at Google named after b: the first complete one (ACTIVE, of the
 * size written) into name (*found); every other one is deleted: an upload
 * cut off by a crash, or a duplicate. */
static enum gem_outcome find_uploaded(struct worker *w, const struct pipe_batch *b, char *name,
                                      size_t len, bool *found)
{
    char token[256] = "";
    *found = false;
    for (int page = 0; page < LIST_PAGES_MAX; page++) {
        struct gem_file *files = NULL;
        size_t n = 0;
        struct gem_call res;
        char next[256] = "";
        gem_list_files(w->gem, 100, token, &files, &n, next, sizeof(next), &res);
        if (res.outcome != GEM_OK)
            return res.outcome;
        for (size_t i = 0; i < n; i++) {
            const struct gem_file *f = &files[i];
            if (strcmp(f->display_name, b->display_name) != 0)
                continue;
            bool complete = f->state == GEM_FILE_ACTIVE && f->size_bytes == b->request_bytes;
            if (complete && !*found) {
                snprintf(name, len, "%s", f->name);
                *found = true;
            } else {
                delete_file(w, b, f->name, complete ? "a second upload" : "an incomplete upload",
                            false);
            }
        }
        free(files);
        if (!next[0])
            return GEM_OK;
        snprintf(token, sizeof(token), "%s", next);
    }
    return GEM_OK;
}

/* The recorded input file: still complete at Google? 1 yes, 0 no (gone or
 * unusable: deleted if it exists), -1 cannot tell now. */
static int input_file_usable(struct worker *w, const struct pipe_batch *b, int64_t *retry_ms)
{
    struct gem_file f;
    struct gem_call res;
    gem_get_file(w->gem, b->input_file, &f, &res);
    *retry_ms = res.retry_after_ms;
    if (res.outcome == GEM_OK && f.state == GEM_FILE_ACTIVE && f.size_bytes == b->request_bytes)
        return 1;
    if (res.outcome == GEM_OK && f.state == GEM_FILE_PROCESSING)
        return -1; /* it was complete when recorded: Google is still preparing it */
    if (res.outcome == GEM_RETRY)
        return -1;
    if (res.outcome == GEM_OK) {
        log_warn("batch %s: input file %s is %s with %lld bytes of %lld", b->display_name,
                 b->input_file, gem_file_state_name(f.state), (long long)f.size_bytes,
                 (long long)b->request_bytes);
        delete_file(w, b, b->input_file, "unusable", false);
    } else {
        log_warn("batch %s: input file %s is gone: %s", b->display_name, b->input_file, res.detail);
    }
    return 0;
}

void file_reconcile(struct worker *w, PGconn *c, struct pipe_batch *b)
{
    char err[512] = "", name[128] = "";
    bool found = false, held = false;
    if (b->input_file[0]) {
        int64_t retry_ms = -1;
        int usable = input_file_usable(w, b, &retry_ms);
        if (usable < 0) {
            worker_retry_later(w, c, b, worker_retry_delay(w, b, retry_ms));
            return;
        }
        if (usable > 0) {
            if (!still_ours(w, c, b, "while looking at its file"))
                return;
            log_info("batch %s: not at Google; creating it from its file %s", b->display_name,
                     b->input_file);
            create_with_file(w, c, b);
            return;
        }
        /* gone: forget it, then write and upload it again */
        bool recorded = pipe_input_file(c, b->id, w->owner, NULL, w->wp->cfg->lease_ms, &held, err,
                                        sizeof(err));
        if (!recorded)
            log_error("batch %s: %s", b->display_name, err);
        else if (!held)
            log_warn("batch %s: lease lost while looking at its file", b->display_name);
        if (!recorded || !held)
            return;
        b->input_file[0] = '\0';
        file_submit(w, c, b);
        return;
    }
    enum gem_outcome out = find_uploaded(w, b, name, sizeof(name), &found);
    if (out != GEM_OK) {
        worker_retry_later(w, c, b, worker_retry_delay(w, b, -1));
        return;
    }
    if (!still_ours(w, c, b, "while looking for its file"))
        return;
    if (found) {
        log_info("batch %s: its file %s is complete at Google; reusing it", b->display_name, name);
        record_and_create(w, c, b, name);
        return;
    }
    file_submit(w, c, b);
}

/* ---- results ---- */

/* A results file stored as it arrives. */
struct results_sink {
    struct worker *w;
    PGconn *c;
    struct pipe_batch *b;
    struct gem_lines lines;
    struct pipe_result pr[SLICE_RESULTS];
    char emsg[SLICE_RESULTS][300];
    size_t stored, requeued, failed;
    bool store_failed;
    bool lease_lost;    /* another worker has the batch now: the download stops */
    int64_t renewed_ms; /* when the lease was last renewed */
    char err[512];
};

/* Store the results held, SLICE_RESULTS at a time, then drop them. */
static bool sink_flush(struct results_sink *s)
{
    struct gem_lines *l = &s->lines;
    bool ok = true;
    for (size_t from = 0; ok && from < l->n; from += SLICE_RESULTS) {
        size_t m = l->n - from < SLICE_RESULTS ? l->n - from : SLICE_RESULTS;
        size_t k = 0, st = 0, rq = 0, fl = 0;
        worker_map_results(s->b, l->results + from, m, false, s->pr, s->emsg, &k);
        ok = k == 0 || pipe_store_slice(s->c, s->b, s->pr, k, (int)s->w->wp->cfg->max_attempts, &st,
                                        &rq, &fl, s->err, sizeof(s->err));
        s->stored += st;
        s->requeued += rq;
        s->failed += fl;
    }
    for (size_t i = 0; i < l->n; i++)
        gem_result_free(&l->results[i]);
    l->n = 0;
    s->store_failed = !ok;
    return ok;
}

/* A download is bound by a stall, not by a deadline (gem_client_opts), so it
 * may outlast the lease: the lease is renewed as it goes (the download's tick,
 * about once a second, from before its first byte), and the download stops
 * once another worker has the batch. */
static bool sink_keep_lease(void *ud)
{
    struct results_sink *s = ud;
    int64_t now = worker_now_ms();
    if (now - s->renewed_ms < s->w->wp->cfg->lease_ms / 3)
        return true;
    s->renewed_ms = now;
    s->lease_lost = !still_ours(s->w, s->c, s->b, "while downloading its results");
    return !s->lease_lost;
}

static bool sink_feed(void *ud, const char *p, size_t n)
{
    struct results_sink *s = ud;
    /* lines are parsed a piece at a time: at most a piece's worth past a slice */
    if (!gem_lines_feed(&s->lines, p, n))
        return false;
    return s->lines.n < SLICE_RESULTS || sink_flush(s);
}

bool file_collect(struct worker *w, PGconn *c, struct pipe_batch *b, const char *responses_file)
{
    const struct config *cfg = w->wp->cfg;
    char err[512] = "";
    if (strcmp(b->output_file, responses_file) != 0) {
        if (!pipe_output_file(c, b->id, responses_file, err, sizeof(err)))
            log_warn("batch %s: %s", b->display_name, err);
        else
            snprintf(b->output_file, sizeof(b->output_file), "%s", responses_file);
    }
    struct results_sink *s = calloc(1, sizeof(*s));
    if (!s) {
        log_error("batch %s: out of memory for its results", b->display_name);
        worker_retry_later(w, c, b, worker_jitter(w, cfg->poll_min_ms));
        return false;
    }
    s->w = w;
    s->c = c;
    s->b = b;
    s->renewed_ms = worker_now_ms();
    gem_lines_init(&s->lines);
    struct gem_call res;
    gem_download_stream(w->gem, responses_file, sink_feed, sink_keep_lease, s, &res);
    bool ok = res.outcome == GEM_OK;
    if (ok && !(gem_lines_finish(&s->lines) && sink_flush(s)))
        ok = false;
    worker_count_received(w, c, b, "download", &res);
    if (!ok && s->lease_lost) { /* logged by still_ours; the new owner goes on */
        gem_lines_cleanup(&s->lines);
        free(s);
        return false;
    }
    if (!ok) {
        const char *why = s->store_failed ? s->err
                          : s->lines.oom  ? "out of memory reading the results file"
                                          : res.detail;
        log_warn("batch %s: results from %s not all stored (%zu so far): %s", b->display_name,
                 responses_file, s->stored, why);
        if (still_ours(w, c, b, "while downloading its results"))
            worker_retry_later(w, c, b, worker_jitter(w, cfg->poll_min_ms));
    } else if (s->lines.bad) {
        log_warn("batch %s: %zu line(s) of the results file skipped (%s)", b->display_name,
                 s->lines.bad, s->lines.err);
    }
    size_t stored = s->stored, requeued = s->requeued, failed = s->failed;
    gem_lines_cleanup(&s->lines);
    free(s);
    if (!ok || !still_ours(w, c, b, "while storing its results"))
        return false;
    /* every line is in: chunks without a result go back, the batch closes */
    size_t st = 0, rq = 0, fl = 0;
    if (!pipe_store_results(c, b, NULL, 0, (int)cfg->max_attempts, &st, &rq, &fl, err,
                            sizeof(err))) {
        log_error("batch %s: could not close the batch: %s", b->display_name, err);
        return false;
    }
    log_info("batch %s: stored %zu vectors, %zu retried, %zu failed from %s (%d poll(s))",
             b->display_name, stored, requeued + rq, failed + fl, responses_file, b->polls + 1);
    return true;
}

/* ---- deleting files ---- */

void file_tidy(struct worker *w, const struct pipe_batch *b, const char *output_file)
{
    if (b->input_file[0])
        delete_file(w, b, b->input_file, "the batch is done", true);
    const char *out = output_file && output_file[0] ? output_file : b->output_file;
    if (out[0])
        delete_file(w, b, out, "its results are stored", true);
}

/* Why the file named f (of a batch the database knows as ref) is no longer
 * needed; NULL to keep it. */
static const char *orphan_reason(const struct gem_file *f, const struct pipe_batch_ref *ref,
                                 bool output)
{
    if (!ref->found)
        return "its batch is unknown";
    bool open = strcmp(ref->state, "intent") == 0 || strcmp(ref->state, "submitted") == 0;
    if (!open)
        return "its batch has ended";
    if (output)
        return NULL;
    /* an intent without a recorded file may be uploading it now (its reconcile decides) */
    if (ref->input_file[0] && strcmp(ref->input_file, f->name) != 0)
        return "a second upload for its batch";
    return NULL;
}

/* Delete the orphans among files[0..n); counts them in *deleted. */
static bool janitor_page(struct worker *w, PGconn *c, const struct gem_file *files, size_t n,
                         int *deleted)
{
    char err[512] = "";
    for (size_t i = 0; i < n; i++) {
        const struct gem_file *f = &files[i];
        bool output = strncmp(f->name, "files/batch-", 12) == 0;
        struct pipe_batch_ref ref;
        char gname[160];
        bool ok;
        if (strncmp(f->display_name, "embedd-", 7) == 0) {
            ok = pipe_batch_ref(c, f->display_name, NULL, &ref, err, sizeof(err));
        } else if (output) {
            snprintf(gname, sizeof(gname), "batches/%s", f->name + 12);
            ok = pipe_batch_ref(c, NULL, gname, &ref, err, sizeof(err));
            if (ok && !ref.found)
                continue; /* not one of ours */
        } else {
            continue; /* not ours */
        }
        if (!ok) {
            log_warn("janitor: %s", err);
            return false;
        }
        const char *why = orphan_reason(f, &ref, output);
        if (!why)
            continue;
        struct gem_call res;
        gem_delete_file(w->gem, f->name, &res);
        if (res.outcome == GEM_OK) {
            log_info("janitor: deleted %s of %s (%s)", f->name,
                     f->display_name[0] ? f->display_name : gname, why);
            (*deleted)++;
        } else if (res.http != 404) {
            log_warn("janitor: could not delete %s: %s", f->name, res.detail);
        }
    }
    return true;
}

void file_janitor(struct worker *w, PGconn *c)
{
    const struct config *cfg = w->wp->cfg;
    int64_t now = worker_now_ms();
    if (cfg->file_janitor_ms <= 0 || now < w->janitor_at)
        return;
    w->janitor_at = now + worker_jitter(w, cfg->file_janitor_ms);
    char token[256] = "";
    int deleted = 0, seen = 0;
    for (int page = 0; page < LIST_PAGES_MAX; page++) {
        struct gem_file *files = NULL;
        size_t n = 0;
        struct gem_call res;
        char next[256] = "";
        gem_list_files(w->gem, 100, token, &files, &n, next, sizeof(next), &res);
        if (res.outcome != GEM_OK) {
            log_warn("janitor: could not list files: %s", res.detail);
            return;
        }
        seen += (int)n;
        bool ok = janitor_page(w, c, files, n, &deleted);
        free(files);
        if (!ok || !next[0])
            break;
        snprintf(token, sizeof(token), "%s", next);
    }
    log_debug("janitor: %d file(s) at Google, %d deleted", seen, deleted);
}
