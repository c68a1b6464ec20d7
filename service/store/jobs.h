/*
 * jobs.h: the jobs store: a job as stored, reading jobs and their stats,
 * listing, cancelling and deleting. Creating a job (documents and chunks in
 * one transaction) is in jobs_ingest.h. Every query is parameterised.
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
    const char *collection_id; /* NULL: a job outside any collection; else documents upsert */
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
    char collection_id[JOB_ID_LEN + 1]; /* "" for a job outside collections */
    int64_t documents_new, documents_updated, documents_unchanged, documents_metadata,
        documents_deleted; /* a collection job's upserts */
    int64_t chunks_reused; /* filled from vectors already stored under the key */
    int64_t tokens_batch, tokens_interactive, tokens_reused, tokens_estimated; /* for cost */
    char webhook_url[2049]; /* the job's own ("" when none: its key's default applies) */
    int64_t version;        /* the row's version (xmin) as read by jobs_get or jobs_get_many;
                               0: not known. Equal versions of a job: equal rows. */
};

extern const char *const jobs_batch_states[7];

/* JOBS_IN_USE: the job holds the current version of a collection's documents.
 * JOBS_LIMIT: a new job passed its chunk limit (store/jobs_ingest.h). */
enum jobs_result { JOBS_OK, JOBS_NOT_FOUND, JOBS_CONFLICT, JOBS_ERROR, JOBS_IN_USE, JOBS_LIMIT };

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

/*
 * Watching jobs (whatever their key: the caller checked it). A job's version
 * is PostgreSQL's xmin of its row: every update of the row changes it, and it
 * reads the same on every replica. jobs_versions writes the version of each
 * of ids[0..n) to versions (-1: no such job); jobs_get_many reads those jobs
 * whole, with their batch summaries, into out[i] and their versions (-1: no
 * such job, out[i] untouched). One query each, whatever n.
 */
enum jobs_result jobs_versions(PGconn *c, const char *const *ids, size_t n, int64_t *versions,
                               char *err, size_t errlen) SVC_MUSTCHECK;
enum jobs_result jobs_get_many(PGconn *c, const char *const *ids, size_t n, struct job_row *out,
                               int64_t *versions, char *err, size_t errlen) SVC_MUSTCHECK;

/* Cancel: pending chunks fail with "cancelled"; the job ends cancelled
 * (in-flight Google batches are cancelled by the workers). A finished job
 * is JOBS_CONFLICT. */
enum jobs_result jobs_cancel(PGconn *c, int64_t key_id, const char *id, char *err, size_t errlen);

/* Delete a finished job and everything stored for it; a job still pending
 * or running is JOBS_CONFLICT, one holding current versions of a
 * collection's documents JOBS_IN_USE (delete them, or the collection, first). */
enum jobs_result jobs_delete(PGconn *c, int64_t key_id, const char *id, char *err, size_t errlen);

/* A key's usage over its jobs created in [from, to) (NULL: open ends), per model. */
struct jobs_usage {
    char model[64];
    int64_t jobs, chunks_succeeded, chunks_failed, chunks_reused;
    int64_t tokens_batch, tokens_interactive, tokens_reused, tokens_estimated;
};
/* from/to: RFC 3339 timestamps (checked by PostgreSQL: JOBS_CONFLICT when one
 * does not parse). Up to max models into out, *n of them. */
enum jobs_result jobs_usage(PGconn *c, int64_t key_id, const char *from, const char *to,
                            struct jobs_usage *out, size_t max, size_t *n, char *err,
                            size_t errlen) SVC_MUSTCHECK;

/* Whether s is a canonical lowercase UUID. */
bool jobs_valid_id(const char *s);

#endif
