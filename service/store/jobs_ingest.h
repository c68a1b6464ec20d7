/*
 * jobs_ingest.h: storing a new job: the job row, its documents and their
 * chunks in one transaction (bulk COPY, never a round trip per chunk), fed
 * from an array (jobs_create) or one document at a time (jobs_ingest_*).
 */
#ifndef SVC_STORE_JOBS_INGEST_H
#define SVC_STORE_JOBS_INGEST_H

#include <libpq-fe.h>

#include <stdbool.h>
#include <stddef.h>

#include "store/jobs.h"
#include "util/compiler.h"

struct ingest_doc {
    const char *id;
    size_t id_len;
    const char *title; /* NULL if none */
    size_t title_len;
    const char *metadata_json; /* NULL if none */
    const char *text;          /* valid UTF-8, no NUL */
    size_t text_len;
};

/* Once this many chunk rows changed since the last ANALYZE, the planner's
 * statistics are refreshed (store_refresh_statistics). */
#define JOBS_ANALYZE_MIN_CHUNKS 10000

/* ANALYZE chunks and documents when more than min_changes rows of chunks
 * changed since they were last analysed (pg_stat_user_tables); *ran says
 * whether it did. Cheap when there is nothing to do. */
bool store_refresh_statistics(PGconn *c, int64_t min_changes, bool *ran, char *err,
                              size_t errlen) SVC_MUSTCHECK;

/* Chunk every document and store job, documents and chunks in one
 * transaction (the streaming ingest below, fed from an array); writes the new
 * job's id. On failure nothing is stored. */
bool jobs_create(PGconn *c, const struct job_spec *spec, const struct ingest_doc *docs,
                 size_t n_docs, char id_out[JOB_ID_LEN + 1], char *err,
                 size_t errlen) SVC_MUSTCHECK;

/*
 * Streaming ingest: a job whose documents arrive one at a time, all stored in
 * one transaction on c (which the caller keeps for the whole ingest):
 * For a job into a collection (spec->collection_id), each document is first
 * compared with the collection's: unchanged ones get a document row and no
 * chunks, metadata-only changes update the collection at once, new and
 * changed ones are chunked and become the document's next version. Every
 * job's chunks whose vector already exists under the API key are filled from
 * it at finish (chunks_reused); a job with nothing left to send is succeeded
 * when it is committed.
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
 * the id of an earlier document, whose index goes to *dup_of; JOBS_IN_USE:
 * the job also deletes that id; JOBS_LIMIT: the job's chunks (this
 * document's, or a queued one's: err names it) pass its limit (the
 * ingest can only be aborted after these, as after JOBS_ERROR). d is not
 * kept. */
enum jobs_result jobs_ingest_add(struct jobs_ingest *in, const struct ingest_doc *d, size_t *dup_of,
                                 char *err, size_t errlen) SVC_MUSTCHECK;
/* A collection job also removes documents ids[0..n) (kept until finish).
 * JOBS_NOT_FOUND: the collection has no document ids[*missing] (the ingest
 * can only be aborted then). A no-op for a job outside collections. */
enum jobs_result jobs_ingest_delete(struct jobs_ingest *in, const char *const *ids, size_t n,
                                    size_t *missing, char *err, size_t errlen) SVC_MUSTCHECK;
/* At most max_chunks chunks in the job (INT32_MAX, what a seq holds, until
 * set; <= 0 means that too): the document that passes it is refused. */
void jobs_ingest_limit_chunks(struct jobs_ingest *in, int64_t max_chunks);
/* The job's webhook (before finish): its own URL (NULL: its key's default
 * when an event happens) and the job.degraded threshold, percent of
 * finished chunks succeeded (0: never), with the finished chunks needed
 * first. */
bool jobs_ingest_webhook(struct jobs_ingest *in, const char *url, int degraded_below,
                         int degraded_min, char *err, size_t errlen) SVC_MUSTCHECK;
/* Documents added so far. */
size_t jobs_ingest_documents(const struct jobs_ingest *in);
/* The new job's id (committed by jobs_ingest_finish). */
const char *jobs_ingest_id(const struct jobs_ingest *in);
/* From here on (before the first document), each document of a job outside
 * collections is one chunk: its whole text as sent, not split nor trimmed
 * (the caller keeps it within the model's token limit). */
void jobs_ingest_verbatim(struct jobs_ingest *in);
/* Chunks added so far (the seq the next chunk gets). */
int64_t jobs_ingest_chunks(const struct jobs_ingest *in);
/* Write out every pending row and return the ingest's connection, for more
 * statements inside its transaction (committed or rolled back with the job);
 * NULL with err set on failure (the ingest can only be aborted then). Valid
 * until the next jobs_ingest_* call. */
PGconn *jobs_ingest_conn(struct jobs_ingest *in, char *err, size_t errlen) SVC_MUSTCHECK;
/* Store the documents still queued (a collection job's last lookups):
 * JOBS_LIMIT (err says which document) when the chunks pass the job's limit,
 * JOBS_ERROR on other failures; the ingest can only be aborted after either.
 * finish does this too; calling it first tells a limit from other errors. */
enum jobs_result jobs_ingest_settle(struct jobs_ingest *in, char *err, size_t errlen) SVC_MUSTCHECK;
/* The API key's pending-chunk limit (store/limits.h), checked by finish as
 * the last step of the transaction: when the job's chunks left to send (those
 * not reused) would take the key's pending chunks past lim->max, finish rolls
 * back and returns false with lim->over set. lim is the caller's and must
 * live until finish or abort. max 0, or no call: no limit. */
struct ingest_limit {
    int64_t max;     /* in */
    bool over;       /* out: refused */
    int64_t pending; /* out, when over: the key's pending chunks without this job */
    int64_t adding;  /* out, when over: the chunks this job would add */
};
void jobs_ingest_limit(struct jobs_ingest *in, struct ingest_limit *lim);
/* Store the totals and commit; in is freed either way (rolled back on failure). */
bool jobs_ingest_finish(struct jobs_ingest *in, char id_out[JOB_ID_LEN + 1], char *err,
                        size_t errlen) SVC_MUSTCHECK;
/* Roll back and free; NULL is a no-op. */
void jobs_ingest_abort(struct jobs_ingest *in);

#endif
