/*
 * request.h: the request bodies of Gemini's embedding API, as pure
 * functions (shared/gemini-batch-api.md): an inline batch, a synchronous
 * batchEmbedContents, a JSONL line of a file-based batch.
 */
#ifndef SVC_GEMINI_REQUEST_H
#define SVC_GEMINI_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"
#include "util/compiler.h"

/* Settings shared by every request of a job. The model's facts (models.h)
 * decide how task_type and a title are sent: as the taskType and title
 * fields (gemini-embedding-001), or as an instruction in front of the text
 * (gemini-embedding-2; docs/gemini-embedding-2.md §4). An unknown model is
 * treated as the first kind. */
struct gem_req_opts {
    const char *model;     /* bare id, e.g. "gemini-embedding-001" */
    const char *task_type; /* e.g. "RETRIEVAL_DOCUMENT" */
    int dims;              /* outputDimensionality */
};

struct gem_text {
    const char *key; /* sent as metadata.key (inline) or the line key (file) */
    const char *text;
    size_t text_len;
    const char *title; /* NULL if none; only sent with RETRIEVAL_DOCUMENT (models_title_sent) */
};

/* Append the inline asyncBatchEmbedContent body for texts[0..n). Returns
 * false if it does not fit in out->max or n is 0 (out is then left as it was). */
bool gem_build_batch(struct buf *out, const char *display_name, const struct gem_req_opts *o,
                     const struct gem_text *texts, size_t n) SVC_MUSTCHECK;

/* Exact number of bytes one text adds to gem_build_batch's body (including
 * its separating comma), and the fixed overhead of the body around them
 * (less the one comma the first text does not have): for n >= 1 texts the
 * body is exactly overhead + the sum of the item sizes, so that a packer can
 * fill a batch up to a byte limit without building it. */
size_t gem_batch_item_size(const struct gem_req_opts *o, const struct gem_text *t);
size_t gem_batch_overhead(const char *display_name);
/* gem_batch_item_size from the text's and the title's sizes inside a JSON
 * string (util/jsonw.h jsonw_str_len; title_json_len -1: no title), as the
 * store keeps them, without the texts themselves. */
size_t gem_batch_item_size_of(const struct gem_req_opts *o, const char *key, size_t text_json_len,
                              long title_json_len);

/* Append a batchEmbedContents body (1 to 100 texts; false otherwise, out unchanged). */
bool gem_build_sync(struct buf *out, const struct gem_req_opts *o, const struct gem_text *texts,
                    size_t n) SVC_MUSTCHECK;

/* Append the file-based asyncBatchEmbedContent body (§2):
 * {"batch":{"displayName":..,"inputConfig":{"fileName":"files/.."}}}. display_name may be NULL.
 * False if file_name is empty or it does not fit in out->max (out is then left as it was). */
bool gem_build_file_batch(struct buf *out, const char *display_name,
                          const char *file_name) SVC_MUSTCHECK;

/* Append one JSONL input line (with '\n') for a file-based batch. */
bool gem_build_jsonl_line(struct buf *out, const struct gem_req_opts *o,
                          const struct gem_text *t) SVC_MUSTCHECK;

#endif
