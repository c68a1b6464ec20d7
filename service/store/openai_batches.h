/*
 * openai_batches.h: batches of the OpenAI-compatible surface in PostgreSQL
 * (migrations/0008): the batch rows the API reads and changes, and the
 * steps of the driver (openai/driver.h) that validates a batch's input into
 * an embedd job and writes its output once the job ends. Every API call is
 * scoped to an API key; the driver's steps hold a lease on the batch.
 */
#ifndef SVC_STORE_OPENAI_BATCHES_H
#define SVC_STORE_OPENAI_BATCHES_H

#include <libpq-fe.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/jobs.h"
#include "store/openai_files.h"
#include "util/compiler.h"

#define OAI_BATCH_MODEL_MAX 300

struct oai_batch {
    char id[OAI_ID_MAX];
    int64_t key_id;
    char status[16];
    char endpoint[64];
    char completion_window[16];
    char input_file_id[OAI_ID_MAX];
    char *metadata; /* owned JSON text, or NULL */
    char model[OAI_BATCH_MODEL_MAX];
    char job_id[JOB_ID_LEN + 1]; /* "" when none */
    char *errors;                /* owned JSON array text, or NULL */
    char output_file_id[OAI_ID_MAX], error_file_id[OAI_ID_MAX];
    int64_t total, completed, failed, tokens;
    /* Unix seconds; 0 when not (yet) */
    int64_t created_at, in_progress_at, expires_at, finalizing_at, completed_at, failed_at,
        expired_at, cancelling_at, cancelled_at;
};
void oai_batch_free(struct oai_batch *b);

/* Create a batch (status validating, expiring 24 h later) of input file
 * input_file_id, which must be key_id's and of purpose batch
 * (JOBS_NOT_FOUND otherwise). metadata: JSON object text or NULL. */
enum jobs_result oai_batch_create(PGconn *c, int64_t key_id, const char *input_file_id,
                                  const char *endpoint, const char *window, const char *metadata,
                                  struct oai_batch *out, char *err, size_t errlen) SVC_MUSTCHECK;
/* The batch id of key_id; while it runs, its request counts are counted
 * from its job's chunks. */
enum jobs_result oai_batch_get(PGconn *c, int64_t key_id, const char *id, struct oai_batch *out,
                               char *err, size_t errlen) SVC_MUSTCHECK;
/* Batches of key_id, newest first, after the batch "after" (NULL: from the
 * start); up to limit into out (free each), *has_more when more follow.
 * JOBS_NOT_FOUND when after is unknown. Counts as stored (not live). */
enum jobs_result oai_batch_list(PGconn *c, int64_t key_id, const char *after, int limit,
                                struct oai_batch *out, size_t *n, bool *has_more, char *err,
                                size_t errlen) SVC_MUSTCHECK;
/* Cancel: a validating batch is cancelled at once; an in-progress one
 * becomes cancelling and its job is cancelled (the driver then writes what
 * is done and marks it cancelled). JOBS_CONFLICT for a batch that already
 * ended (out is filled either way). */
enum jobs_result oai_batch_cancel(PGconn *c, int64_t key_id, const char *id, struct oai_batch *out,
                                  char *err, size_t errlen) SVC_MUSTCHECK;

/* ---- the driver's steps ---- */

enum oai_work { OAI_WORK_NONE, OAI_WORK_VALIDATE, OAI_WORK_FINALIZE };

/* Lease the oldest batch with work for owner for lease_ms: a validating
 * batch, or one whose job ended (or that passed expires_at: its job is
 * cancelled first) or whose finalizing was interrupted. An in-progress
 * batch becomes finalizing. */
bool oai_batch_claim(PGconn *c, const char *owner, int64_t lease_ms, struct oai_batch *out,
                     enum oai_work *work, char *err, size_t errlen) SVC_MUSTCHECK;
/* Give the lease back (a step that failed and will be retried). */
void oai_batch_release(PGconn *c, const char *id, const char *owner);
/* A validating batch failed validation: errors_json (a JSON array of
 * {code, message, param, line}); nothing else is stored. */
bool oai_batch_fail(PGconn *c, const char *id, const char *owner, const char *errors_json,
                    char *err, size_t errlen) SVC_MUSTCHECK;

/* A line of the batch as a COPY text row for oai_lines_store: first_seq < 0
 * for a line refused before the job (error_json: its error body), else its
 * inputs' chunk seqs first_seq .. first_seq + n_inputs - 1. */
bool oai_line_row(struct buf *rows, const char *batch_id, int64_t line, const char *custom_id,
                  const char *model, bool base64, int64_t first_seq, int64_t n_inputs,
                  const char *error_json) SVC_MUSTCHECK;
/* Store the rows (COPY) in c's transaction, then mark the batch in_progress
 * with its job (NULL: nothing to embed), model and request total, if it is
 * still validating under owner's lease (*ours false otherwise: the caller
 * rolls back). */
bool oai_batch_start(PGconn *c, const char *id, const char *owner, const struct buf *rows,
                     const char *job_id, const char *model, int64_t total, bool *ours, char *err,
                     size_t errlen) SVC_MUSTCHECK;

/* The lines of a batch with their inputs' chunks, in line order, read with
 * a cursor inside the caller's transaction (a page of rows at a time). */
struct oai_line_cursor {
    PGconn *c;
    PGresult *page;
    int row, rows;
    bool open, end;
};
/* One row: a line with one of its inputs (or none: no chunk columns). */
struct oai_line_row {
    int64_t line;
    const char *custom_id, *model, *error; /* error: JSON text or NULL */
    bool base64;
    int64_t n_inputs;
    bool has_chunk;
    int64_t seq;
    int state;                      /* the chunk's: 0 pending, 1 in flight, 2 succeeded, 3 failed */
    const unsigned char *embedding; /* float32 LE, NULL unless succeeded */
    size_t embedding_len;
    /* the whole line's (the same on each of its rows) */
    bool line_ok;             /* every input it has is succeeded */
    int64_t line_chunks;      /* inputs found in the job */
    int64_t line_tokens;      /* tokens of its inputs */
    const char *line_failure; /* why an input failed (not a cancellation), or NULL */
};
bool oai_lines_open(struct oai_line_cursor *k, PGconn *c, const char *batch_id, const char *job_id,
                    char *err, size_t errlen) SVC_MUSTCHECK;
/* 1 with *r filled (borrowed until the next call), 0 at the end, -1 on error. */
int oai_lines_next(struct oai_line_cursor *k, struct oai_line_row *r, char *err, size_t errlen);
void oai_lines_close(struct oai_line_cursor *k);

/* The end of finalizing, in c's transaction: the final status (completed,
 * cancelled or expired, from the batch's status and expiry), its files
 * (NULL: none), counts and tokens; false with *ours false when the lease
 * was lost. */
bool oai_batch_finish(PGconn *c, const char *id, const char *owner, const char *output_file_id,
                      const char *error_file_id, int64_t completed, int64_t failed, int64_t tokens,
                      bool *ours, char *err, size_t errlen) SVC_MUSTCHECK;

#endif
