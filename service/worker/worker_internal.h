/*
 * worker_internal.h: what the worker's files share (pool.c: the pool's
 * threads, start and stop; worker.c: a step, the claim, inline and
 * interactive batches, polls; file_batch.c: batches that travel through the
 * Files API). Internal to service/worker/.
 */
#ifndef SVC_WORKER_WORKER_INTERNAL_H
#define SVC_WORKER_WORKER_INTERNAL_H

#include "config.h"
#include "gemini/client.h"
#include "store/pipeline.h"
#include "store/pool.h"
#include "util/buf.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LIST_PAGES_MAX 50 /* reconcile, janitor: how many list pages to search */

struct worker {
    struct worker_pool *wp;
    pthread_t thread;
    int index;
    char owner[96];
    struct gem_client *gem;
    uint64_t rng;
    int64_t janitor_at; /* monotonic ms of the next look for orphaned files (worker 0) */
    int64_t stats_at;   /* monotonic ms of the next look at the tables' statistics (worker 0) */
};

struct worker_pool {
    const struct config *cfg;
    struct db_pool *db;
    atomic_bool stop;
    atomic_bool abort; /* shutdown deadline near: Google calls in flight end now */
    pthread_mutex_t lock;
    /* one claim at a time in this process: claims that run side by side on
     * one job skip each other's rows and cut it into more, smaller batches */
    pthread_mutex_t claim_lock;
    pthread_cond_t wake;
    pthread_cond_t exited; /* a worker thread returned (running went down) */
    size_t running;
    char owner_prefix[80]; /* "host:pid:", the start of every lease owner here */
    char spool[512];       /* where the JSONL of file batches is written */
    /* monotonic ms before which no new batch is claimed: Google answered a
     * create with 429, and more creates now would only be refused too */
    _Atomic int64_t create_hold_until;
    struct worker *workers;
    size_t n;
};

/* One unit of work (claim, create, poll...); returns whether there was any. */
bool worker_step(struct worker *w, PGconn *c);
/* d scaled by a random factor in [0.8, 1.2). */
int64_t worker_jitter(struct worker *w, int64_t d);
/* Backoff after a transient failure: Google's RetryInfo when given, else
 * exponential in the batch's retries, with jitter, capped at poll_max_ms. */
int64_t worker_retry_delay(struct worker *w, const struct pipe_batch *b, int64_t retry_after_ms);
/* Monotonic milliseconds. */
int64_t worker_now_ms(void);
/* Give the leased batch back to be tried again after delay_ms (errors logged). */
void worker_retry_later(struct worker *w, PGconn *c, const struct pipe_batch *b, int64_t delay_ms);
/* Act on the answer to a create (recorded, retried later, reconciled later
 * or refused), for inline and file batches alike. */
void worker_created(struct worker *w, PGconn *c, struct pipe_batch *b,
                    const struct gem_operation *op, const struct gem_call *res);
/* Add a call's bytes received to the batch's response_bytes (logged at debug). */
void worker_count_received(struct worker *w, PGconn *c, const struct pipe_batch *b,
                           const char *what, const struct gem_call *res);

/*
 * Results mapped to the batch's chunks by key (pr[i].error points into
 * emsg[i]): *k entries filled. Keyless results are mapped by position only
 * when positional (every result keyless, as many as b's loaded chunks).
 */
void worker_map_results(const struct pipe_batch *b, const struct gem_result *r, size_t n,
                        bool positional, struct pipe_result *pr, char (*emsg)[300], size_t *k);

/* ---- inline_results.c ---- */

/* The inline results of one GET, spooled as they arrive (never held). */
struct inline_spool {
    struct worker *w;
    int fd;         /* an unlinked file in the spool directory; -1 until the first result */
    struct buf out; /* records not written yet */
    uint64_t bytes; /* written so far */
    size_t n;       /* results spooled */
    size_t keyless; /* of which without a key */
    bool failed;    /* a result could not be spooled (err says why) */
    char err[256];
};
void inline_spool_init(struct inline_spool *s, struct worker *w);
void inline_spool_cleanup(struct inline_spool *s);
/* A gem_result_sink's result callback (ud: the spool). */
bool inline_spool_result(void *ud, const struct gem_result *r);
/* The batch succeeded with the results in s: store them a slice at a time,
 * then close the batch (chunks without a result go back); true once done. */
bool inline_collect(struct worker *w, PGconn *c, struct pipe_batch *b, struct inline_spool *s);

/* ---- file_batch.c ---- */

/* A new file in dir, unlinked at once: it goes away with its descriptor,
 * whatever happens to the process. -1 with err set on failure. */
int worker_spool_open(const char *dir, char *err, size_t errlen);

/* A new file intent: its JSONL written to the spool a page of chunks at a
 * time, uploaded (resuming broken pieces), recorded on the batch row, then
 * the batch created with it. */
void file_submit(struct worker *w, PGconn *c, struct pipe_batch *b);
/* A file intent that Google's list of batches proved not created: create it
 * with its recorded input file if that is still complete at Google, else
 * reuse a complete upload found by its displayName (incomplete ones are
 * deleted), else write and upload it again. */
void file_reconcile(struct worker *w, PGconn *c, struct pipe_batch *b);
/* A succeeded batch's results file, downloaded as a stream and stored slice
 * by slice as it arrives, then the batch closed; true once stored. */
bool file_collect(struct worker *w, PGconn *c, struct pipe_batch *b, const char *responses_file);
/* Best effort, once a batch is closed: delete its input file and its results
 * file (output_file may be "") at Google. Failures are logged; the janitor
 * finds what is left. */
void file_tidy(struct worker *w, const struct pipe_batch *b, const char *output_file);
/* Every file_janitor_ms (worker 0 only): delete the files at Google that no
 * open batch needs (those of ended, released or unknown batches, duplicate
 * uploads). */
void file_janitor(struct worker *w, PGconn *c);

#endif
