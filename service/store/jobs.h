/*
 * jobs.h: the jobs store: creating a job with its documents and chunks in
 * one transaction (bulk COPY, never a round trip per chunk), reading jobs
 * and their stats, listing, cancelling and deleting. All SQL for jobs lives
 * here; every query is parameterised.
 */
#ifndef SVC_STORE_JOBS_H
#define SVC_STORE_JOBS_H

#include <libpq-fe.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/compiler.h"

#define JOB_ID_LEN 36

struct job_spec {
    int64_t key_id;
    const char *display_name; /* NULL if none */
    const char *model;
    const char *task_type;
    int output_dimensionality;
    bool normalize;
    int priority;
    int max_chars;
    int overlap_chars;
};

struct ingest_doc {
    const char *id;
    size_t id_len;
    const char *title; /* NULL if none */
    size_t title_len;
    const char *metadata_json; /* NULL if none */
    const char *text;          /* valid UTF-8, no NUL */
    size_t text_len;
};

/* A job as stored, with its stats. */
struct job_row {
    char id[JOB_ID_LEN + 1];
    char state[32];
    char display_name[256];
    bool has_display_name;
    char model[64];
    char task_type[32];
    int output_dimensionality;
    bool normalize;
    int priority;
    int max_chars, overlap_chars;
    int64_t documents;
    int64_t chunks_total, chunks_pending, chunks_in_flight, chunks_succeeded, chunks_failed;
    int64_t token_estimate;
    int64_t batches[7];     /* by batch state: intent, submitted, succeeded, failed, expired,
                               cancelled, released */
    int64_t google_batches; /* batches created at Google (each one paid) */
    int64_t texts_sent;     /* texts Google embedded for this job, resubmissions included */
    char created_at[40], started_at[40], finished_at[40], last_activity_at[40]; /* "" if null */
};

extern const char *const jobs_batch_states[7];

enum jobs_result { JOBS_OK, JOBS_NOT_FOUND, JOBS_CONFLICT, JOBS_ERROR };

/* Jobs of at least this many chunks refresh the planner's statistics when stored. */
#define JOBS_ANALYZE_MIN_CHUNKS 10000

/* Chunk every document and store job, documents and chunks in one
 * transaction (the streaming ingest below, fed from an array); writes the new
 * job's id. On failure nothing is stored. */
bool jobs_create(PGconn *c, const struct job_spec *spec, const struct ingest_doc *docs,
                 size_t n_docs, char id_out[JOB_ID_LEN + 1], char *err,
                 size_t errlen) SVC_MUSTCHECK;

/*
 * Streaming ingest: a job whose documents arrive one at a time, all stored in
 * one transaction on c (which the caller keeps for the whole ingest):
 * begin (BEGIN, the job row), add per document (chunked at once; rows are
 * written with COPY in bounded batches), then finish (totals, COMMIT) or
 * abort (ROLLBACK). On any failure nothing is stored. Memory is bounded by a
 * few MB plus 16 bytes per document, whatever the number of documents.
 */
struct jobs_ingest;

/* NULL with err set on failure (nothing stored, the transaction is closed). */
struct jobs_ingest *jobs_ingest_begin(PGconn *c, const struct job_spec *spec, char *err,
                                      size_t errlen) SVC_MUSTCHECK;
/* Add document number jobs_ingest_documents(in). JOBS_CONFLICT: its id is
 * the id of an earlier document, whose index goes to *dup_of (the ingest can
 * only be aborted then, as after JOBS_ERROR). d is not kept. */
enum jobs_result jobs_ingest_add(struct jobs_ingest *in, const struct ingest_doc *d, size_t *dup_of,
                                 char *err, size_t errlen) SVC_MUSTCHECK;
/* Documents added so far. */
size_t jobs_ingest_documents(const struct jobs_ingest *in);
/* Store the totals and commit; in is freed either way (rolled back on failure). */
bool jobs_ingest_finish(struct jobs_ingest *in, char id_out[JOB_ID_LEN + 1], char *err,
                        size_t errlen) SVC_MUSTCHECK;
/* Roll back and free; NULL is a no-op. */
void jobs_ingest_abort(struct jobs_ingest *in);

/* The job id of key key_id (another key's job is JOBS_NOT_FOUND). */
enum jobs_result jobs_get(PGconn *c, int64_t key_id, const char *id, struct job_row *out, char *err,
                          size_t errlen);

/* Jobs of key_id, newest first. state: NULL or a job state. cursor: NULL or
 * the opaque cursor of the previous page. Writes up to limit rows into out
 * (caller's array); *n gets the count and next_cursor the cursor of the next
 * page ("" when there is none). A malformed cursor is JOBS_CONFLICT. */
enum jobs_result jobs_list(PGconn *c, int64_t key_id, const char *state, const char *cursor,
                           int limit, struct job_row *out, size_t *n, char *next_cursor,
                           size_t cursor_len, char *err, size_t errlen);

/* Cancel: pending chunks fail with "cancelled"; the job ends cancelled
 * (in-flight Google batches are cancelled by the workers). A finished job
 * is JOBS_CONFLICT. */
enum jobs_result jobs_cancel(PGconn *c, int64_t key_id, const char *id, char *err, size_t errlen);

/* Delete a finished job and everything stored for it; a job still pending
 * or running is JOBS_CONFLICT. */
enum jobs_result jobs_delete(PGconn *c, int64_t key_id, const char *id, char *err, size_t errlen);

/* Whether s is a canonical lowercase UUID. */
bool jobs_valid_id(const char *s);

#endif
