/*
 * collections.h: collections in PostgreSQL: a corpus in one embedding space
 * whose documents are upserted by id through jobs (store/jobs_ingest.c), and
 * the moment a document's new version becomes current (every chunk has its
 * vector) or fails (the old one stays current).
 */
#ifndef SVC_STORE_COLLECTIONS_H
#define SVC_STORE_COLLECTIONS_H

#include <libpq-fe.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/jobs.h"
#include "util/compiler.h"

/* What a collection pins (fixed at creation) and its name. */
struct coll_spec {
    int64_t key_id;
    const char *name;
    const char *model;
    int output_dimensionality;
    const char *task_type;
    const char *query_task_type;
    bool normalize;
    int max_chars;
    int overlap_chars;
};

struct coll_row {
    char id[JOB_ID_LEN + 1];
    char name[256];
    char model[64];
    int output_dimensionality;
    char task_type[32];
    char query_task_type[32];
    bool normalize;
    int max_chars, overlap_chars;
    int64_t version;
    int64_t documents;          /* with a current version */
    int64_t documents_updating; /* with a new version being embedded */
    int64_t jobs, jobs_active;  /* jobs into it (the active ones: pending or running) */
    int64_t tokens_batch, tokens_interactive, tokens_reused, tokens_estimated; /* its jobs' */
    int64_t chunks_reused;
    char created_at[40];
};

/* Create; JOBS_CONFLICT when the key already has a collection of that name. */
enum jobs_result coll_create(PGconn *c, const struct coll_spec *s, char id_out[JOB_ID_LEN + 1],
                             char *err, size_t errlen) SVC_MUSTCHECK;
/* The collection id of key key_id (another key's is JOBS_NOT_FOUND). */
enum jobs_result coll_get(PGconn *c, int64_t key_id, const char *id, struct coll_row *out,
                          char *err, size_t errlen) SVC_MUSTCHECK;
/* Collections of key_id, newest first, a page after cursor (NULL: the first);
 * as jobs_list. A malformed cursor is JOBS_CONFLICT. */
enum jobs_result coll_list(PGconn *c, int64_t key_id, const char *cursor, int limit,
                           struct coll_row *out, size_t *n, char *next_cursor, size_t cursor_len,
                           char *err, size_t errlen) SVC_MUSTCHECK;
/* Cancel the collection's active jobs, then delete it with its documents
 * (its jobs stay, as history, no longer in a collection). */
enum jobs_result coll_delete(PGconn *c, int64_t key_id, const char *id, char *err,
                             size_t errlen) SVC_MUSTCHECK;

/* A document of a collection. */
struct coll_doc_row {
    char doc_id[260];
    int version;    /* 0: no current version yet */
    char state[16]; /* "current", "updating" (a new version being embedded), "failed" */
    char job_id[JOB_ID_LEN + 1];      /* the current version's job ("" if none) */
    char next_job_id[JOB_ID_LEN + 1]; /* the version being embedded ("" if none) */
    int chunks;                       /* of the current version */
    char *metadata;                   /* owned JSON text, NULL if none */
    char *title;                      /* owned, NULL if none */
    char *error;                      /* owned: why the last new version failed; NULL */
    char updated_at[40];
};
void coll_doc_row_free(struct coll_doc_row *d);

/* Documents by id, a page of up to limit after doc id `after` (NULL: from
 * the start); *n rows in out (caller's array; free each with
 * coll_doc_row_free); *more when there are more. */
enum jobs_result coll_docs_list(PGconn *c, int64_t key_id, const char *coll_id, const char *after,
                                int limit, struct coll_doc_row *out, size_t *n, bool *more,
                                char *err, size_t errlen) SVC_MUSTCHECK;
enum jobs_result coll_doc_get(PGconn *c, int64_t key_id, const char *coll_id, const char *doc_id,
                              struct coll_doc_row *out, char *err, size_t errlen) SVC_MUSTCHECK;
/* Remove a document (JOBS_NOT_FOUND when the collection or the document is unknown). */
enum jobs_result coll_doc_delete(PGconn *c, int64_t key_id, const char *coll_id, const char *doc_id,
                                 char *err, size_t errlen) SVC_MUSTCHECK;

/*
 * Inside a pipeline or ingest transaction on job_id (a collection job): the
 * next versions of its documents doc_indexes (a text int[] literal such as
 * "{1,5}"; NULL: all of the job's) whose every chunk has a vector become
 * current; the collection's version moves.
 */
bool coll_flip(PGconn *c, const char *job_id, const char *doc_indexes, char *err,
               size_t errlen) SVC_MUSTCHECK;
/* The next versions of documents doc_indexes (NULL: all) of job_id failed
 * with reason: the current versions stay. */
bool coll_fail_versions(PGconn *c, const char *job_id, const char *doc_indexes, const char *reason,
                        char *err, size_t errlen) SVC_MUSTCHECK;

#endif
