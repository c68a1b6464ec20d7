/*
 * job_request.h: parse and validate a POST /v1/jobs body completely before
 * anything is stored. Errors name the offending field with a JSON pointer:
 * 400 for malformed JSON, wrong types and unknown fields, 422 for values
 * that are well-formed but not acceptable (ranges, duplicates, unsupported
 * models, empty texts).
 */
#ifndef API_JOB_REQUEST_H
#define API_JOB_REQUEST_H

#include <json-c/json.h>

#include <stdbool.h>
#include <stddef.h>

#define JOB_MAX_ID_BYTES      256
#define JOB_MAX_TITLE_BYTES   1000
#define JOB_MAX_NAME_BYTES    200
#define JOB_MAX_METADATA_JSON 16384
#define JOB_MAX_DEPTH         64 /* nesting of a body (json_strict_check, json-c) */

struct job_doc {
    const char *id; /* borrowed from the parsed JSON */
    size_t id_len;
    const char *text;
    size_t text_len;
    const char *title; /* NULL if absent */
    size_t title_len;
    const char *metadata_json; /* compact JSON text of the object; NULL if absent */
};

/* Which space settings a request named (the others keep embedd's defaults,
 * or take its collection's). */
enum {
    JOB_GIVEN_MODEL = 1,
    JOB_GIVEN_DIMS = 2,
    JOB_GIVEN_TASK = 4,
    JOB_GIVEN_NORMALIZE = 8,
    JOB_GIVEN_MAX_CHARS = 16,
    JOB_GIVEN_OVERLAP = 32,
};

/* The per-job limits, from the settings job-max-documents and
 * job-max-deletes (service/config.c); errors name the setting. */
struct job_limits {
    size_t documents; /* most documents in one job */
    size_t deletes;   /* most ids in "delete" */
};

struct job_request {
    json_object *root;        /* owns every borrowed pointer */
    const char *display_name; /* NULL if absent */
    const char *model;
    const char *task_type;
    int output_dimensionality;
    int priority;
    bool normalize;
    int max_chars;
    int overlap_chars;
    unsigned given;          /* JOB_GIVEN_* */
    const char *collection;  /* NULL: a job outside collections */
    const char *webhook_url; /* NULL: the key's default, if any (its form is checked here,
                                its address against the settings by api_job_begin) */
    const char **deletes;    /* owned array of borrowed ids ("delete"), n_deletes */
    size_t n_deletes;
    struct job_doc *docs; /* owned array */
    size_t n_docs;
};

struct job_req_error {
    int status;       /* 400 or 422 */
    char code[40];    /* stable snake_case */
    char pointer[96]; /* JSON pointer, "" for the whole body */
    char detail[320];
};

/*
 * The whole body at once, into one json-c tree. The service streams JSON
 * bodies instead (job_stream.h, one document at a time); this form is the
 * reference its verdicts are held to (tests/unit/test_job_stream.c,
 * tests/fuzz/fuzz_job_request.c). Of several documents with one id, the
 * first whose id an earlier document has is named, as when streaming.
 */
bool job_request_parse(const char *body, size_t len, const struct job_limits *lim,
                       struct job_request *out, struct job_req_error *e);
void job_request_free(struct job_request *r);

/*
 * The same validation for an NDJSON body, a line at a time. The first line
 * holds the options (every field of the JSON body but documents; out->docs
 * stays empty): job_request_parse_options. Each following line holds one
 * document, validated like /documents/<index> of the JSON body (the same
 * codes and pointers): job_request_parse_doc. Checks across documents (their
 * number, unique ids) are the caller's.
 */
struct job_doc_line {
    json_object *root; /* owns every pointer in doc */
    struct job_doc doc;
};

bool job_request_parse_options(const char *line, size_t len, const struct job_limits *lim,
                               struct job_request *out, struct job_req_error *e);
bool job_request_parse_doc(const char *line, size_t len, size_t index, struct job_doc_line *out,
                           struct job_req_error *e);
/* The same for a document that json_stream.h has already found to be valid
 * UTF-8 and RFC 8259 JSON (those checks are skipped). */
bool job_request_parse_doc_trusted(const char *json, size_t len, size_t index,
                                   struct job_doc_line *out, struct job_req_error *e);
void job_doc_line_free(struct job_doc_line *d);

/*
 * The errors that the whole-body and the streamed parsers both report, worded
 * in one place. Each fills e and returns false.
 */
bool job_request_err_oom(struct job_req_error *e);
bool job_request_err_utf8(struct job_req_error *e);
/* why: json_strict's message, or json-c's */
bool job_request_err_syntax(struct job_req_error *e, const char *why);
/* ptr must be what ("an object"), not have */
bool job_request_err_type(struct job_req_error *e, const char *ptr, const char *what,
                          enum json_type have);
bool job_request_err_no_documents(struct job_req_error *e);
/* Document index repeats the id of document first. */
bool job_request_err_duplicate(struct job_req_error *e, const char *id, size_t id_len, size_t index,
                               size_t first);
/* true if n documents are acceptable for a job with options r (none only
 * when it deletes documents); else no_documents or too_many_documents. */
bool job_request_check_count(size_t n, const struct job_limits *lim, const struct job_request *r,
                             struct job_req_error *e);
/* 422 too_many_documents for a body that has more than lim->documents (at
 * least n; exact when exact). */
bool job_request_err_too_many(struct job_req_error *e, const struct job_limits *lim, size_t n,
                              bool exact);

#endif
