/*
 * job_stream.h: a POST /v1/jobs JSON body validated as it arrives, one
 * document at a time, with the verdict job_request_parse gives the whole
 * body (the same status, code, pointer and detail, and the same precedence:
 * UTF-8, then syntax, then the options, then /documents, then each document
 * in order, then duplicate ids).
 *
 * The body's top-level members are cut out by json_stream.h. The option
 * members (everything but "documents") are kept as written and validated
 * together at the end with job_request_parse_options, so they may come
 * before or after "documents", or both. Each element of "documents" is cut
 * out alone (at most max_element bytes), validated with the per-document
 * validator and handed to the consumer (ops->document); memory holds one
 * element, whatever the number of documents. After the first error the rest
 * of the body is still read, for errors that take precedence (a syntax error
 * anywhere wins, as when the whole body was checked first). Repeated members
 * behave as json-c's tree does: the last one counts.
 */
#ifndef API_JOB_STREAM_H
#define API_JOB_STREAM_H

#include "job_request.h"
#include "json_stream.h"

#include "util/buf.h"

#include <stdbool.h>
#include <stddef.h>

enum job_stream_take {
    JOB_STREAM_TAKEN,     /* the document was taken */
    JOB_STREAM_DUPLICATE, /* its id is the id of an earlier document (*dup_of) */
    JOB_STREAM_STOP,      /* the consumer failed and wants no more documents */
};

/* What the body hands to its consumer, in body order, from job_stream_feed. */
struct job_stream_ops {
    /* A "documents" array begins; whatever an earlier one delivered is void.
     * opts: the options given before it (all valid), or NULL when they are
     * not valid so far (and for a repeated "documents"). Borrowed for the call. */
    void (*documents)(void *cls, const struct job_request *opts);
    /* A valid document number index (borrowed for the call). */
    enum job_stream_take (*document)(void *cls, size_t index, const struct job_doc *d,
                                     size_t *dup_of);
    /* What was delivered since documents() will not be stored: an error has
     * been found (more documents may follow only after another documents()). */
    void (*discard)(void *cls);
};

struct job_stream {
    struct json_stream scan;
    const struct job_stream_ops *ops;
    void *cls;
    struct job_limits lim;
    struct buf opts; /* '{' and the option members as written, comma-separated */
    struct buf name; /* the member name being read, as written */
    struct buf elem; /* the document being read, as written */
    enum json_stream_kind root_kind, docs_kind;
    bool root_fraction, docs_fraction;
    bool in_docs;       /* the current member is "documents" */
    bool have_docs;     /* the body has a "documents" member */
    bool docs_repeated; /* a "documents" array began already */
    bool options_after; /* an option member came after the last "documents" began */
    bool delivering;    /* documents go to ops->document */
    size_t n_docs;
    bool doc_failed, dup_failed, oom;
    struct job_req_error doc_err, dup_err;
};

/* Start a body whose elements are at most max_element bytes each, for a job
 * within lim (copied). */
void job_stream_init(struct job_stream *js, size_t max_element, const struct job_limits *lim,
                     const struct job_stream_ops *ops, void *cls);
/* The next piece of the body (split anywhere). */
void job_stream_feed(struct job_stream *js, const char *p, size_t n);
/*
 * The body has ended. On success, out holds the job's final options (out->docs
 * is empty; free with job_request_free) and *options_after says whether an
 * option member followed the start of "documents" (then the options handed
 * to ops->documents may differ from out). On failure e says why (as
 * job_request_parse would) and out needs no freeing.
 */
bool job_stream_finish(struct job_stream *js, struct job_request *out, bool *options_after,
                       struct job_req_error *e);
/* Free what the stream holds; a zeroed struct is fine. */
void job_stream_cleanup(struct job_stream *js);

#endif
