/*
 * sim.h: gemini-sim, a local stand-in for Google's Gemini embedding API.
 *
 * Shared types of the simulator: settings, batches, files and the global
 * simulator state. All mutable state lives in struct sim and is guarded by
 * sim->lock; batches and files are reference counted so that a response can
 * be streamed after the lock is released.
 */
#ifndef SIM_SIM_H
#define SIM_SIM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#include <json-c/json.h>

#define SIM_NATIVE_DIMS_MAX 3072
#define SIM_BATCH_ID_LEN    36
#define SIM_FILE_ID_LEN     12

/* TaskType enum, in proto order (the index is the enum number). */
enum sim_task {
    SIM_TASK_UNSPECIFIED = 0,
    SIM_TASK_RETRIEVAL_QUERY,
    SIM_TASK_RETRIEVAL_DOCUMENT,
    SIM_TASK_SEMANTIC_SIMILARITY,
    SIM_TASK_CLASSIFICATION,
    SIM_TASK_CLUSTERING,
    SIM_TASK_QUESTION_ANSWERING,
    SIM_TASK_FACT_VERIFICATION,
    SIM_TASK_CODE_RETRIEVAL_QUERY,
    SIM_TASK_COUNT
};
extern const char *const sim_task_names[SIM_TASK_COUNT];

/* A model the simulator knows (facts: docs/gemini-embedding-2.md §8). */
struct sim_model {
    const char *id;      /* bare id, e.g. "gemini-embedding-001" */
    int native_dims;     /* length of the full (unit) vector */
    bool batch;          /* supports asyncBatchEmbedContent */
    int max_tokens;      /* input token limit per text */
    bool prompt_task;    /* takes the task inside the text: taskType and title are ignored */
    bool unit_all_dims;  /* truncated vectors are re-normalised to unit length */
    bool truncates;      /* over-long input is cut to max_tokens, not refused */
    bool usage_metadata; /* reports usageMetadata.promptTokenCount, not tokenCount */
};
/* Look up a bare model id; NULL if unknown. */
const struct sim_model *sim_model_find(const char *id);

/* Runtime-changeable settings: start-up flags, then GET/PUT /_sim/config. */
struct sim_settings {
    uint64_t seed;
    int64_t pending_ms;        /* time a batch stays PENDING */
    int64_t running_ms;        /* base time a batch stays RUNNING */
    int64_t per_request_us;    /* extra RUNNING time per request in the batch */
    int64_t max_request_bytes; /* JSON request body limit (inline batches: 20 MiB) */
    int64_t max_input_tokens;  /* per text, for every model; 0: each model's own limit */
    bool strict_task_fields;   /* refuse taskType/title sent to a model that ignores them */
    bool long_input_error;     /* a model that truncates over-long input refuses it instead */
    /* per-item faults (decided when a batch is created) */
    double item_error_rate;
    int64_t item_error_code;
    char fail_marker[128]; /* texts containing this always fail ("" = off) */
    /* whole-batch outcomes */
    double batch_fail_rate;
    double batch_expire_rate;
    double batch_stuck_rate;
    /* HTTP faults, applied to API routes in fault_scope (never to /_sim/) */
    double http_error_rate;
    int64_t http_error_count; /* the next N matching requests fail */
    int64_t http_error_code;  /* 429, 500 or 503 */
    char retry_delay[32];     /* RetryInfo.retryDelay on 429s ("" = none) */
    char fault_scope[160];    /* comma list of route classes, or "all" */
    int64_t latency_ms;
    double latency_rate;
    double drop_rate; /* connection dropped half-way through the response */
    int64_t drop_count;
    double malformed_rate; /* 200 with a truncated JSON body */
    int64_t malformed_count;
    bool shuffle;        /* inline results and output lines in random order */
    bool omit_metadata;  /* no metadata echo in inline results */
    bool inline_as_file; /* inline batches answer with a responsesFile (bifrost#3951) */
    /* upload pieces cut off: the session keeps a prefix, the client must query and resume */
    double upload_cut_rate;
    int64_t upload_cut_count;
    double upload_cut_keep;     /* fraction of the piece's bytes the session keeps */
    int64_t upload_cut_status;  /* 0: close the connection unanswered; else this HTTP status */
    int64_t upload_granularity; /* X-Goog-Upload-Chunk-Granularity advertised at start */
};

/* Start-up only configuration. */
struct sim_config {
    char host[64];
    int port;
    char port_file[512];
    char api_key[256];
    int64_t max_body_bytes; /* any request body, uploads included */
    int64_t max_connections;
    bool log_requests;
    struct sim_settings s;
};

/* One embedding request inside a batch (or a sync call). */
struct sim_item {
    char *text; /* concatenated parts[].text; owned */
    size_t text_len;
    char *title;      /* owned; NULL if absent */
    char *key;        /* file input: the line's key; owned; NULL if absent */
    char *metadata;   /* inline input: metadata object as JSON text; owned; NULL if absent */
    int task;         /* enum sim_task */
    bool task_fields; /* the request carried taskType or title */
    int dims;         /* outputDimensionality; 0 = model's native size */
    int error_code;   /* decided at creation; 0 = succeeds */
    const char *error_msg;
    int64_t tokens;
};

enum sim_outcome { SIM_OUT_SUCCEEDED, SIM_OUT_FAILED, SIM_OUT_EXPIRED, SIM_OUT_STUCK };

enum sim_state {
    SIM_STATE_PENDING,
    SIM_STATE_RUNNING,
    SIM_STATE_SUCCEEDED,
    SIM_STATE_FAILED,
    SIM_STATE_CANCELLED,
    SIM_STATE_EXPIRED,
    SIM_STATE_COUNT
};
extern const char *const sim_state_names[SIM_STATE_COUNT];

struct sim_batch {
    char id[SIM_BATCH_ID_LEN + 1];
    uint64_t seq; /* creation order, 1-based */
    int refs;     /* guarded by sim->lock */
    const struct sim_model *model;
    char *display_name; /* owned; NULL if absent */
    int64_t priority;
    char *input_file; /* "files/xxx" for file input; NULL for inline */
    struct sim_item *items;
    size_t n_items;
    size_t n_failed; /* items with error_code != 0 */
    int64_t create_ns;
    int64_t pending_ns;
    int64_t running_ns;
    enum sim_outcome outcome;
    bool file_output; /* results go to files/batch-<id> (file input, or inline_as_file) */
    bool shuffle;
    bool omit_metadata;
    uint64_t seed;
    /* mutable, guarded by sim->lock */
    bool cancelled;
    int64_t cancel_ns;
    bool output_deleted;
    /* lazily rendered results (inline array or JSONL), guarded by render_lock */
    pthread_mutex_t render_lock;
    char *rendered;
    size_t rendered_len;
};

struct sim_file {
    char id[SIM_FILE_ID_LEN + 1];
    uint64_t seq; /* creation order, 1-based (list page tokens) */
    int refs;     /* guarded by sim->lock */
    char *display_name;
    char *mime_type;
    char upload_id[33];
    int64_t declared_size;
    int64_t create_ns;
    bool finalized;
    struct buf data;
    char sha256_b64[48];
};

/* Introspection counters (guarded by sim->lock). */
struct sim_stats {
    uint64_t requests;
    uint64_t creates;             /* asyncBatchEmbedContent calls that reached the handler */
    uint64_t creates_accepted;    /* batches created */
    uint64_t file_batches;        /* of those, batches with file input */
    uint64_t texts_received;      /* items in created batches, inline or file (once per batch) */
    uint64_t texts_in_files;      /* of those, items that came from an input file */
    uint64_t texts_unique;        /* distinct (model, task, dims, title, text) seen in batches */
    uint64_t texts_duplicate;     /* texts sent again in a later batch (counted once per batch) */
    uint64_t texts_truncated;     /* over-long texts cut to the model's limit (batches and sync) */
    uint64_t task_fields_ignored; /* texts whose taskType/title the model ignored */
    uint64_t gets;                /* GET batches/{id} */
    uint64_t lists;
    uint64_t cancels;
    uint64_t deletes;
    uint64_t sync_calls;
    uint64_t sync_texts;
    uint64_t uploads_started;
    uint64_t uploads_finalized;
    uint64_t upload_pieces;       /* upload commands that carried bytes to a session */
    uint64_t upload_queries;      /* X-Goog-Upload-Command: query (a client resuming) */
    uint64_t file_bytes_received; /* bytes the upload sessions kept */
    uint64_t downloads;
    uint64_t file_gets;
    uint64_t file_lists;
    uint64_t file_deletes;  /* DELETE files/{id} requests */
    uint64_t files_deleted; /* of those, files that existed and are gone */
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t faults_http_error;
    uint64_t faults_latency;
    uint64_t faults_drop;
    uint64_t faults_malformed;
    uint64_t faults_upload_cut;
    uint64_t auth_failures;
};

/* Open-addressing set of 64-bit text identities for duplicate detection. */
struct sim_textset {
    uint64_t *keys; /* 0 = empty slot */
    uint64_t *last_batch;
    size_t cap;
    size_t n;
};

struct sim {
    pthread_mutex_t lock;
    struct sim_config cfg;       /* cfg.s is mutable under lock */
    struct sim_settings startup; /* restored by /_sim/reset */
    struct sim_batch **batches;  /* creation order */
    size_t n_batches, cap_batches;
    struct sim_file **files;
    size_t n_files, cap_files;
    struct sim_textset texts;
    struct sim_stats stats;
    uint64_t next_seq;
    uint64_t next_file_seq;
    uint64_t id_rng;
    uint64_t fault_rng;
    struct MHD_Daemon *daemon;
    int port;
    atomic_int stopping;
};

/* ---- vector.c: the deterministic embedding function ---- */

/* Write the model's full native vector for (model, task, text): unit length.
 * out must hold model->native_dims floats. A prompt_task model ignores task. */
void sim_vector(const struct sim_model *model, int task, const char *text, size_t text_len,
                float *out);
/* The vector returned for outputDimensionality dims (0: native): the first
 * dims values of sim_vector, re-normalised for a unit_all_dims model. */
void sim_vector_dims(const struct sim_model *model, int task, const char *text, size_t text_len,
                     int dims, float *out);
/* Simulated token count of a text (see vector.c for the rule). */
int64_t sim_token_count(const char *text, size_t len);
/* The length of the longest prefix of text (at a code point boundary) that
 * counts at most max tokens. */
size_t sim_token_prefix(const char *text, size_t len, int64_t max);
/* The token limit of model m under settings s (max_input_tokens, else m's). */
int64_t sim_token_limit(const struct sim_settings *s, const struct sim_model *m);
/* 64-bit FNV-1a, continuing from h (start with SIM_FNV_OFFSET). */
#define SIM_FNV_OFFSET 0xcbf29ce484222325ULL
uint64_t sim_fnv1a(uint64_t h, const void *p, size_t n);
/* splitmix64 step: advances *state and returns the next output. */
uint64_t sim_splitmix(uint64_t *state);
/* A uniform double in [0, 1) from a 64-bit hash. */
double sim_unit(uint64_t h);

/* ---- config.c: settings table, flags and the /_sim/config JSON ---- */

void sim_config_defaults(struct sim_config *cfg);
/* Parse argv into cfg. Returns 0 to run, 1 if --help/--version was printed,
 * -1 on a bad flag (message on stderr). */
int sim_config_parse_args(struct sim_config *cfg, int argc, char **argv);
/* Settings as a JSON object (caller owns). */
json_object *sim_settings_to_json(const struct sim_settings *s);
/* Merge a JSON object into s. On error writes a message to err and leaves s unchanged. */
bool sim_settings_apply_json(struct sim_settings *s, json_object *o, char *err, size_t errlen);
/* Whether route class cls (e.g. "create") is in the comma list scope. */
bool sim_scope_has(const char *scope, const char *cls);

/* ---- schema.c: strict parsing of request bodies (proto3 JSON rules) ---- */

struct sim_perr {
    int http;           /* 400 or 404 */
    const char *status; /* "INVALID_ARGUMENT", ... */
    char msg[512];
    char field[256]; /* for BadRequest.fieldViolations; "" if none */
};

/* Parse a body as one JSON value; rejects trailing bytes. Caller owns the result. */
json_object *sim_parse_json(const char *body, size_t len, struct sim_perr *e);

/* Parsed asyncBatchEmbedContent request. */
struct sim_batch_req {
    char *display_name;
    int64_t priority;
    char *file_name; /* input_config.file_name; NULL for inline */
    struct sim_item *items;
    size_t n_items;
};
bool sim_parse_batch_create(json_object *root, const struct sim_model *m, struct sim_batch_req *out,
                            struct sim_perr *e);
void sim_batch_req_cleanup(struct sim_batch_req *r);
/* Parse a JSONL input file into items (keys kept). */
bool sim_parse_jsonl(const char *data, size_t len, const struct sim_model *m,
                     struct sim_item **items, size_t *n_items, struct sim_perr *e);
/* Parse one EmbedContentRequest (embedContent body, or an element). path is
 * the proto path used in messages ("" at top level). */
bool sim_parse_embed_request(json_object *o, const struct sim_model *m, const char *path,
                             struct sim_item *it, struct sim_perr *e);
/* Parse a batchEmbedContents body. */
bool sim_parse_sync_batch(json_object *root, const struct sim_model *m, struct sim_item **items,
                          size_t *n_items, struct sim_perr *e);
void sim_items_free(struct sim_item *items, size_t n);

/* ---- store.c: batches, files, ids, counters ---- */

int64_t sim_now_ns(void);
void sim_init(struct sim *sim, const struct sim_config *cfg);
void sim_cleanup(struct sim *sim);
/* Clear batches, files and counters; restore start-up settings. */
void sim_reset(struct sim *sim);
/* Create a batch from a parsed request (takes the items). Returns a new
 * reference (caller must sim_batch_release), or NULL on OOM. */
struct sim_batch *sim_batch_create(struct sim *sim, const struct sim_model *m,
                                   struct sim_batch_req *req);
/* Find a batch by bare id; returns a new reference or NULL. */
struct sim_batch *sim_batch_get(struct sim *sim, const char *id);
void sim_batch_release(struct sim *sim, struct sim_batch *b);
/* The batch state at time now; fills times (update/end, 0 if none). Call under sim->lock. */
enum sim_state sim_batch_state(const struct sim_batch *b, int64_t now, int64_t *update_ns,
                               int64_t *end_ns);
/* Cancel (no-op when terminal). Returns false if the batch is unknown. */
bool sim_batch_cancel(struct sim *sim, const char *id);
/* Remove a batch from the store. Returns false if unknown. */
bool sim_batch_delete(struct sim *sim, const char *id);
struct sim_file *sim_file_new(struct sim *sim, const char *display_name, const char *mime,
                              int64_t declared_size);
struct sim_file *sim_file_get(struct sim *sim, const char *id);
struct sim_file *sim_file_by_upload(struct sim *sim, const char *upload_id);
void sim_file_release(struct sim *sim, struct sim_file *f);
bool sim_file_delete(struct sim *sim, const char *id);

/* ---- render.c: JSON responses ---- */

/* Append an RFC 3339 UTC timestamp with nanoseconds. */
bool sim_put_time(struct buf *b, int64_t ns);
/* Append a JSON string literal. */
bool sim_put_jstr(struct buf *b, const char *s, size_t n);
/* Append the Operation for b (with_output: include results when done). */
bool sim_render_operation(struct sim *sim, struct sim_batch *b, bool with_output, struct buf *out);
/* Render (once) and return the batch's results: the inline responses array,
 * or the JSONL output file. Returns false on OOM. */
bool sim_batch_results(struct sim_batch *b, const char **data, size_t *len);
/* Append {"values":[...]} for an item. */
bool sim_put_embedding(struct buf *out, const struct sim_model *m, const struct sim_item *it);
/* Append the token count of a result as model m reports it (no braces):
 * "tokenCount":"N", or "usageMetadata":{"promptTokenCount":N}. */
bool sim_put_usage(struct buf *out, const struct sim_model *m, int64_t tokens);
/* Append a File resource. */
bool sim_render_file(const struct sim_file *f, const char *base_url, struct buf *out);
/* Append a google.rpc.Status error body. details_json: a JSON array or NULL. */
bool sim_render_error(struct buf *out, int http, const char *status, const char *msg,
                      const char *details_json);

/* ---- http.c ---- */
bool sim_http_start(struct sim *sim);
void sim_http_stop(struct sim *sim);

#endif
