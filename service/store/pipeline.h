/*
 * pipeline.h: the database side of the worker pipeline. Every transition of
 * chunks between pending, in flight, succeeded and failed happens here, in
 * one transaction with the job's counters, so stats are exact at every
 * moment and a crash at any point leaves a consistent state:
 *
 *   claim     pending chunks → in flight, plus a batch row in state
 *             "intent" with a unique displayName, committed BEFORE Google is
 *             called (so a crash can be reconciled, never paid twice)
 *   submitted Google accepted the batch: its name is recorded
 *   results   vectors stored (matched by key), failed items retried up to
 *             max_attempts, then failed for good with Google's error
 *   release   a batch that failed, expired or was cancelled gives its chunks
 *             back (or fails them, for a cancelled job)
 *
 * Leases: a worker owns a batch row until lease_until; an expired lease
 * lets any replica take it over.
 */
#ifndef SVC_STORE_PIPELINE_H
#define SVC_STORE_PIPELINE_H

#include <libpq-fe.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/compiler.h"

struct pipe_chunk {
    int32_t seq;
    char *text; /* owned; NULL until the texts are loaded (pipe_load_chunks) */
    size_t text_len;
    char *title;            /* owned; NULL if the document has none */
    int32_t text_json_len;  /* the text's size inside a JSON string (util/jsonw.h) */
    int32_t title_json_len; /* the same for the title; -1: no title */
};

struct pipe_batch {
    int64_t id;
    char job_id[37];
    char display_name[96];
    char state[16];        /* "intent" or "submitted" */
    char transport[8];     /* "inline", "file" or "sync" */
    int64_t request_bytes; /* the request body (inline) or the JSONL file (file) */
    char gemini_name[128]; /* "" while unknown */
    char input_file[128];  /* file transport: the uploaded JSONL ("files/..."), "" until complete */
    char output_file[128]; /* the results file Google wrote, "" until known */
    char model[64];
    char task_type[32];
    char job_state[32];
    int dims;
    bool normalize;
    int64_t job_chunks; /* the job's chunk total */
    bool in_collection; /* the job upserts into a collection */
    bool interactive;   /* results came from the interactive API (cost accounting) */
    int polls;
    int64_t age_ms;            /* since the batch was submitted (or created, for an intent) */
    struct pipe_chunk *chunks; /* owned: the claim fills seqs and sizes, pipe_load_chunks texts */
    size_t n_chunks;
};

void pipe_batch_free(struct pipe_batch *b);

/* Measures one chunk's contribution to a request body, for packing. */
typedef size_t (*pipe_size_fn)(const struct pipe_batch *b, const struct pipe_chunk *c, void *arg);

/* What a claim may take. */
struct pipe_claim_opts {
    const char *owner; /* the lease owner ("host:pid:worker") */
    int64_t lease_ms;
    size_t max_items;      /* chunks in one batch at most */
    size_t max_bytes;      /* request bytes in one batch at most (as measured by size) */
    size_t overhead_bytes; /* the request body around the items */
    pipe_size_fn size;
    void *size_arg;
    size_t inline_max_bytes; /* larger batches travel as a file ("file" transport) */
    size_t inline_max_items; /* so do batches of more chunks than this (0: no such limit) */
    int64_t sync_max_chunks; /* jobs of at most this many chunks go interactive ("sync") */
    int64_t max_open;        /* batches open at Google (intent or submitted), all replicas */
};

/*
 * Claim new work, at a cost bounded by the batch taken whatever the size of
 * the tables, their statistics or the plan cache: the job of the highest
 * priority whose turn it is (jobs of one priority take turns: the one
 * claimed longest ago first), then its pending chunks in seq order from the
 * job's claim cursor (primary-key order, no join, no text read, rows taken
 * by another transaction skipped), packed by their stored sizes up to
 * max_items/max_bytes (at least one). Writes the intent row with its
 * transport and marks the chunks in flight. The job's row is locked for the
 * claim (other workers take another job meanwhile). out->chunks
 * get seqs and sizes, not texts (pipe_load_chunks). *found is false when
 * there is nothing to do, or max_open batches are already open.
 * *claim_ms receives how long it took (also stored on the batch row).
 */
bool pipe_claim(PGconn *c, const struct pipe_claim_opts *o, struct pipe_batch *out, bool *found,
                int64_t *claim_ms, char *err, size_t errlen) SVC_MUSTCHECK;

/* The claim's transaction start (with its planner settings) and its two
 * reads (no parameters; job id, cursor, limit), exposed so that tests can
 * check their plans. */
extern const char *const pipe_claim_begin_sql;
/* The same for a store of results (their rows by primary key), and its main
 * statement (job id, batch id, seqs int4[], vectors bytea[], tokens int4[],
 * in a collection: binary arrays). */
extern const char *const pipe_store_begin_sql;
extern const char *const pipe_store_vectors_sql;
extern const char *const pipe_claim_job_sql;
extern const char *const pipe_claim_chunks_sql;

/* Load the texts of an in-flight batch's chunks, in seq order: all of them
 * (replacing b->chunks), for a request built in memory. */
bool pipe_load_chunks(PGconn *c, struct pipe_batch *b, char *err, size_t errlen) SVC_MUSTCHECK;

/* Read the batch's chunks a page at a time, for a request written as a
 * stream: up to max chunks with seq > after (pass -1 first), texts and
 * titles included, into *out (caller frees with pipe_chunks_free); *n 0
 * means the end. */
bool pipe_chunks_page(PGconn *c, const struct pipe_batch *b, int64_t after, size_t max,
                      struct pipe_chunk **out, size_t *n, char *err, size_t errlen) SVC_MUSTCHECK;
void pipe_chunks_free(struct pipe_chunk *chunks, size_t n);

/* Google accepted the batch: record its name; first poll after poll_ms. */
bool pipe_submitted(PGconn *c, int64_t batch_id, const char *gemini_name, int64_t poll_ms,
                    char *err, size_t errlen) SVC_MUSTCHECK;

/* Lease the batch (intent or submitted) most overdue for attention, if any. */
bool pipe_claim_due(PGconn *c, const char *owner, int64_t lease_ms, struct pipe_batch *out,
                    bool *found, char *err, size_t errlen) SVC_MUSTCHECK;

/* Still running: poll again after poll_ms; drop the lease. */
bool pipe_poll_later(PGconn *c, int64_t batch_id, const char *gemini_state, int64_t poll_ms,
                     char *err, size_t errlen) SVC_MUSTCHECK;

/* Give a leased batch back, to be retried after delay_ms (counted in polls,
 * which the caller's backoff grows with). */
bool pipe_retry_later(PGconn *c, int64_t batch_id, int64_t delay_ms, char *err,
                      size_t errlen) SVC_MUSTCHECK;

/* One result of a finished batch, matched to its chunk by key. */
struct pipe_result {
    int32_t seq;
    const float *values; /* NULL when the item failed */
    int dims;
    const char *error; /* the item's error when values is NULL */
    int64_t tokens;    /* Google's token count for the item; -1 when it gave none */
};

/*
 * Store a succeeded batch's results: vectors (L2-normalised when the job
 * asks and the model table does not promise unit length, models.h, or the
 * vector is not) for the succeeded items; failed items, and chunks
 * of the batch with no result at all, go back to pending until they have
 * been tried max_attempts times, then fail with their error. Finishes the
 * job when nothing is left. Counts go to *stored, *requeued, *failed.
 */
bool pipe_store_results(PGconn *c, const struct pipe_batch *b, const struct pipe_result *r,
                        size_t n, int max_attempts, size_t *stored, size_t *requeued,
                        size_t *failed, char *err, size_t errlen) SVC_MUSTCHECK;

/*
 * The batch ended without results (state "failed", "expired" or
 * "cancelled"): its in-flight chunks go back to pending (counting an
 * attempt when count_attempt), or fail with reason when the job was
 * cancelled.
 */
bool pipe_release(PGconn *c, const struct pipe_batch *b, const char *state, const char *reason,
                  bool count_attempt, int max_attempts, char *err, size_t errlen) SVC_MUSTCHECK;

/* Shutdown: clear every lease whose owner starts with owner_prefix (this
 * process), so that other replicas take those batches over at once.
 * *n receives how many were handed back. */
bool pipe_hand_back(PGconn *c, const char *owner_prefix, int *n, char *err,
                    size_t errlen) SVC_MUSTCHECK;

/* Batches of cancelled jobs still open at Google (to cancel them there). */
bool pipe_cancelled_open(PGconn *c, char names[][128], int64_t *ids, size_t max, size_t *n,
                         char *err, size_t errlen) SVC_MUSTCHECK;

/*
 * File transport. An intent's JSONL file is written, uploaded and recorded
 * before the batch is created with it; each step may take long, so each
 * write after one is guarded by the lease: it happens only if owner still
 * holds the batch, and renews the lease for lease_ms. *held false means the
 * lease was lost (expired, another worker took the batch over): nothing was
 * written, and the caller must leave the batch alone, Google included.
 */
bool pipe_renew_lease(PGconn *c, int64_t batch_id, const char *owner, int64_t lease_ms, bool *held,
                      char *err, size_t errlen) SVC_MUSTCHECK;
/* The intent's JSONL is written (and not uploaded yet): its size becomes the
 * batch's request_bytes, what an uploaded file must measure to be reused
 * after a crash. Only while no input file is recorded. */
bool pipe_file_written(PGconn *c, int64_t batch_id, const char *owner, int64_t bytes,
                       int64_t lease_ms, bool *held, char *err, size_t errlen) SVC_MUSTCHECK;
/* Record the intent's complete input file ("files/..."), or forget it (name
 * NULL: it is gone at Google), in a transaction of its own, before the batch
 * is created with it. */
bool pipe_input_file(PGconn *c, int64_t batch_id, const char *owner, const char *name,
                     int64_t lease_ms, bool *held, char *err, size_t errlen) SVC_MUSTCHECK;
/* Record the results file Google wrote for a batch. */
bool pipe_output_file(PGconn *c, int64_t batch_id, const char *name, char *err,
                      size_t errlen) SVC_MUSTCHECK;
/* Add bytes received from Google for the batch (a poll, a download) to its
 * response_bytes; *total gets the new sum. */
bool pipe_add_response_bytes(PGconn *c, int64_t batch_id, int64_t bytes, int64_t *total, char *err,
                             size_t errlen) SVC_MUSTCHECK;

/*
 * Store part of a succeeded batch's results (a slice of a results file read
 * as it arrives), in a transaction of its own that moves the job's counters
 * with the chunks: vectors for succeeded items, failed items requeued or
 * failed as in pipe_store_results. The batch stays open; once every slice is
 * stored, pipe_store_results(.., NULL, 0, ..) deals with the chunks that got
 * no result and closes it. Chunks stored already are skipped, so a slice
 * stored twice (a download repeated after a crash) counts once. Counts of
 * this slice go to *stored, *requeued, *failed.
 */
bool pipe_store_slice(PGconn *c, const struct pipe_batch *b, const struct pipe_result *r, size_t n,
                      int max_attempts, size_t *stored, size_t *requeued, size_t *failed, char *err,
                      size_t errlen) SVC_MUSTCHECK;

/* What the database knows of one batch, for deciding about a file at Google. */
struct pipe_batch_ref {
    bool found;
    char state[16];
    char gemini_name[128];
    char input_file[128];
    char output_file[128];
};
/* Look a batch up by its displayName, or (display_name NULL) by its Google name. */
bool pipe_batch_ref(PGconn *c, const char *display_name, const char *gemini_name,
                    struct pipe_batch_ref *out, char *err, size_t errlen) SVC_MUSTCHECK;

#endif
