/*
 * jobs_ingest_internal.h: what the ingest's store files share (jobs_ingest.c,
 * jobs_ingest_coll.c): the ingest's state and batch sizes, the writing of its
 * rows, and a collection job's queue of documents to compare.
 */
#ifndef SVC_STORE_JOBS_INGEST_INTERNAL_H
#define SVC_STORE_JOBS_INGEST_INTERNAL_H

#include "store/jobs_ingest.h"

#include "chunker/chunker.h"
#include "store/identity.h"
#include "util/buf.h"

#include <stdint.h>

/*
 * Chunk rows go out as they are made, through a COPY that stays open, so
 * PostgreSQL stores them while the next documents are parsed and chunked
 * (on two cores that overlap is what keeps up with a bare COPY). One
 * connection cannot run two COPYs at once, so document rows (small) wait in
 * a buffer: when it passes INGEST_DOCS_BATCH bytes (and at the end, or when
 * an id must be checked against the stored rows) the chunks COPY is closed,
 * the documents are COPYed, and the next chunk row opens a new chunks COPY.
 * Memory stays at the two buffers plus the current document, whatever the
 * number of documents.
 *
 * COPY text, not binary: measured here (2 vCPUs, PostgreSQL 15, 100,000
 * rows of 1,000 B into the real chunks table with its keys, one transaction,
 * 5 alternating runs) text gave a median 53.6k rows/s (39.9k-58.4k) and
 * binary 52.7k (39.7k-69.7k): no gain beyond the noise once the table's
 * indexes are paid (LIMITS.md's 1.3x was for a bare table), so the simpler,
 * debuggable text format stays.
 */
#define INGEST_DOCS_BATCH (4u << 20)
#define INGEST_CHUNK_SEND (256u << 10) /* chunk rows handed to libpq at a time */

/*
 * A collection job compares each document with the collection's stored one
 * before chunking it (an unchanged document costs a hash and a lookup, no
 * rows). Documents wait in a queue of at most QUEUE_DOCS / QUEUE_BYTES so
 * that one statement looks up a batch of ids.
 */
#define QUEUE_DOCS  512
#define QUEUE_BYTES (4u << 20)

struct qdoc {
    size_t index;                   /* its number in the job */
    char *id, *title, *meta, *text; /* owned copies; title and meta may be NULL */
    size_t id_len, title_len, text_len;
    unsigned char content[IDENTITY_LEN]; /* identity_content(title, text) */
};

struct jobs_ingest {
    PGconn *c;
    char id[JOB_ID_LEN + 1];
    struct chunk_opts opts;
    struct buf docs, chunks; /* COPY text rows not yet sent */
    bool copying;            /* the chunks COPY is open */
    size_t n_docs;           /* documents added so far */
    int64_t seq, tokens;
    uint64_t *seen; /* id hashes, open addressing (SEEN_EMPTY: free) */
    size_t seen_cap;
    int64_t max_chunks; /* the job's chunk limit */
    bool over_chunks;   /* a document passed it: the ingest can only be aborted */
    size_t over_doc;    /* that document */
    char key[24];       /* the API key's id, as text */
    char model[64], task[32];
    const struct model_facts *facts; /* the model's limit and prompt (models.h) */
    struct identity_space sp;
    /* collection upserts ("" when the job stands alone) */
    char coll[JOB_ID_LEN + 1];
    struct qdoc *q;
    size_t nq, qbytes;
    struct buf up_ids, up_idx, up_hash; /* new versions, as text-array literals */
    size_t n_up;
    struct buf md_ids, md_meta; /* metadata-only changes */
    size_t n_md;
    struct buf del; /* ids to delete (a text-array literal) */
    size_t n_del;
    char **del_sorted; /* the same ids, sorted, to refuse a document the job also deletes */
    size_t n_del_sorted;
    int64_t docs_new, docs_updated, docs_unchanged, docs_metadata;
    bool verbatim;              /* jobs_ingest_verbatim: one chunk per document, its whole text */
    struct ingest_limit *limit; /* the key's pending-chunk limit, or NULL */
};

/* Run sql with n text parameters, the result dropped; whether it succeeded
 * (what names it in err). */
bool ingest_exec_params(PGconn *c, const char *sql, int n, const char *const *vals,
                        const char *what, char *err, size_t errlen);
/* Hand the pending chunk rows to the open (or a new) chunks COPY. */
bool ingest_chunks_send(struct jobs_ingest *in, char *err, size_t errlen);
/* Close the chunks COPY, if open; with failed, abort it. */
bool ingest_chunks_end(struct jobs_ingest *in, bool failed, char *err, size_t errlen);
/* Write everything pending: chunk rows, document rows, then a collection
 * job's new versions and metadata changes. */
bool ingest_flush(struct jobs_ingest *in, char *err, size_t errlen);
/* Buffer the rows of document number i (its chunks only if chunks); false
 * when out of memory or past the job's chunk limit (in->over_chunks). */
bool ingest_store_doc(struct jobs_ingest *in, size_t i, const struct ingest_doc *d,
                      const unsigned char *content, bool chunks);
/* Free a queued document's copies. */
void ingest_qdoc_free(struct qdoc *d);
/* Put in err which document passed the job's chunk limit. */
void ingest_over_chunks_err(const struct jobs_ingest *in, char *err, size_t errlen);

/* Collections (jobs_ingest_coll.c): queue a copy of document number index. */
bool ingest_queue_doc(struct jobs_ingest *in, size_t index, const struct ingest_doc *d);
/* Write the new versions and metadata changes collected so far. */
bool ingest_upserts_send(struct jobs_ingest *in, char *err, size_t errlen);
/* Compare the queued documents with the collection's and store what changed. */
bool ingest_queue_resolve(struct jobs_ingest *in, char *err, size_t errlen);
/* strcmp for qsort / bsearch over an array of char *. */
int ingest_cmp_str(const void *a, const void *b);

#endif
