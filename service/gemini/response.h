/*
 * response.h: Gemini's embedding API responses parsed, as pure functions:
 * Operations (create, get; whole or fed in pieces), lists, responsesFile
 * lines and synchronous embeddings, in every shape of
 * shared/gemini-batch-api.md. No I/O; the libcurl client sits on top.
 *
 * Parsing is lenient where Google varies (BATCH_STATE_ / JOB_STATE_ / bare
 * state names; results under response.*, metadata.output.* or
 * response.output.*; int64 counts as strings or numbers, absent meaning 0;
 * unknown fields ignored) and strict where a mistake would lose data (a
 * value that is not a number, a result without embedding or error).
 */
#ifndef SVC_GEMINI_RESPONSE_H
#define SVC_GEMINI_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gemini/status.h"
#include "util/buf.h"
#include "util/compiler.h"

/* One embedding result. */
struct gem_result {
    char *key;     /* metadata.key (inline) or "key" (file lines); owned; NULL if absent */
    float *values; /* owned; NULL when the item failed */
    int dims;
    int64_t token_count;     /* tokenCount or usageMetadata.promptTokenCount; -1 if absent */
    struct gem_status error; /* error.code != 0 when the item failed */
};

/* A google.longrunning.Operation wrapping an EmbedContentBatch. */
struct gem_operation {
    char name[128];         /* "batches/<id>" */
    char display_name[256]; /* "" if absent */
    char model[128];
    enum gem_state state; /* from metadata.state */
    bool done;
    struct gem_status error; /* top-level error; code 0 if none */
    int64_t request_count, successful_count, failed_count, pending_count;
    char responses_file[256];   /* "files/batch-..." for file output; "" otherwise */
    bool has_inline;            /* inline results were present (possibly empty) */
    struct gem_result *results; /* inline results in response order; owned */
    size_t n_results;
};

void gem_operation_free(struct gem_operation *op);
void gem_result_free(struct gem_result *r); /* frees members, not r itself */

/* Parse an Operation (create, get). err gets a reason on failure. */
bool gem_parse_operation(const char *body, size_t len, struct gem_operation *op, char *err,
                         size_t errlen) SVC_MUSTCHECK;

/* The same, fed in pieces as they arrive (a GET of a batch whose inline
 * results run to hundreds of megabytes): the numbers of every "values" array
 * become float32 at once, the rest is parsed when the body is complete.
 * Memory: the vectors plus a slim copy of everything else; or, when the
 * results are dropped or handed to a sink as they arrive, one result and the
 * slim copy of everything but the results. */
struct jslim;

/* Who takes a batch's inline results one at a time as they arrive. */
struct gem_result_sink {
    /* One result (borrowed for the call), in response order. Of the copies
     * of the list a body holds (response.inlinedResponses and
     * metadata.output.inlinedResponses, shared/gemini-batch-api.md §3), only
     * the first that has a result is handed over. false stops the body (the
     * GET then fails as refused). */
    bool (*result)(void *ud, const struct gem_result *r);
    void *ud;
};

enum gem_results_mode {
    GEM_RESULTS_KEEP, /* op->results holds them */
    GEM_RESULTS_DROP, /* not kept (a create's answer; its results are not needed) */
    GEM_RESULTS_SINK, /* handed to a sink as they arrive; op->results stays empty */
};

struct gem_op_stream {
    struct jslim *js;
    const struct gem_result_sink *sink; /* GEM_RESULTS_SINK */
    int source;                         /* the copy of the list handed over; 0: none yet */
    size_t streamed;                    /* results handed to the sink */
    bool bad;                           /* a result was malformed: nothing more is handed over */
    bool refused;                       /* the sink refused a result */
    char bad_err[240];                  /* why */
};
#define GEM_SLIM_MAX ((size_t)256 << 20) /* the body without its vectors */
/* GEM_RESULTS_KEEP */
void gem_op_stream_init(struct gem_op_stream *s);
/* sink: for GEM_RESULTS_SINK (kept, not copied); NULL otherwise. */
void gem_op_stream_init_mode(struct gem_op_stream *s, enum gem_results_mode mode,
                             const struct gem_result_sink *sink);
/* false once the body is known not to be JSON (or memory ran out); finish says why */
bool gem_op_stream_feed(struct gem_op_stream *s, const char *p, size_t n);
/* The body is complete: parse it into op. *json: it was well-formed JSON
 * (false means truncated or mangled, worth fetching again). Streamed or
 * dropped results leave op->has_inline set and op->results empty; a
 * malformed one fails here, as when kept. */
bool gem_op_stream_finish(struct gem_op_stream *s, struct gem_operation *op, bool *json, char *err,
                          size_t errlen) SVC_MUSTCHECK;
/* Why feeding was refused (NULL while it was not); *limit: for its size, not its syntax. */
const char *gem_op_stream_error(const struct gem_op_stream *s, bool *limit);
void gem_op_stream_cleanup(struct gem_op_stream *s);

/* Parse a list response ({} when empty). *ops is a malloc'd array the caller
 * frees with gem_operation_free on each element, then free(). next_token is
 * "" when there is no further page. */
bool gem_parse_list(const char *body, size_t len, struct gem_operation **ops, size_t *n,
                    char *next_token, size_t token_len, char *err, size_t errlen) SVC_MUSTCHECK;

/* Parse one line of a responsesFile: {"key":..,"response":{..}} or {"key":..,"error":{..}}.
 * Without "key", the key comes from a "metadata":{"key":..} echo (an inline batch answered
 * with a file, §4/§9 item 6). */
bool gem_parse_result_line(const char *line, size_t len, struct gem_result *r, char *err,
                           size_t errlen) SVC_MUSTCHECK;

/* A responsesFile parsed as it arrives: one result per non-empty line, in
 * file order. Lines that do not parse are counted and skipped. Only the
 * current line is held (when it spans pieces), never the file. */
struct gem_lines {
    struct buf line;            /* the start of a line that continues in the next piece */
    struct gem_result *results; /* owned until taken */
    size_t n, cap;
    size_t lines;  /* lines read */
    size_t bad;    /* lines skipped */
    char err[200]; /* why the first of them was */
    bool oom;      /* memory ran out: the results are incomplete */
};
void gem_lines_init(struct gem_lines *l);
/* false when memory ran out (the transfer should stop) */
bool gem_lines_feed(struct gem_lines *l, const char *p, size_t n);
/* the end of the file (a last line without a newline is parsed) */
bool gem_lines_finish(struct gem_lines *l);
void gem_lines_cleanup(struct gem_lines *l); /* frees the results too */

/* Parse a batchEmbedContents response ({"embeddings":[{"values":[..]},..]}) or an
 * embedContent one ({"embedding":{..}}). *results is malloc'd, keys NULL. */
bool gem_parse_sync(const char *body, size_t len, struct gem_result **results, size_t *n, char *err,
                    size_t errlen) SVC_MUSTCHECK;

#endif
