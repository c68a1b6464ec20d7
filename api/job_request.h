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

#define JOB_MAX_DOCUMENTS     100000
#define JOB_MAX_ID_BYTES      256
#define JOB_MAX_TITLE_BYTES   1000
#define JOB_MAX_NAME_BYTES    200
#define JOB_MAX_METADATA_JSON 16384

struct job_doc {
    const char *id; /* borrowed from the parsed JSON */
    size_t id_len;
    const char *text;
    size_t text_len;
    const char *title; /* NULL if absent */
    size_t title_len;
    const char *metadata_json; /* compact JSON text of the object; NULL if absent */
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
    struct job_doc *docs; /* owned array */
    size_t n_docs;
};

struct job_req_error {
    int status;       /* 400 or 422 */
    char code[40];    /* stable snake_case */
    char pointer[96]; /* JSON pointer, "" for the whole body */
    char detail[320];
};

bool job_request_parse(const char *body, size_t len, struct job_request *out,
                       struct job_req_error *e);
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

bool job_request_parse_options(const char *line, size_t len, struct job_request *out,
                               struct job_req_error *e);
bool job_request_parse_doc(const char *line, size_t len, size_t index, struct job_doc_line *out,
                           struct job_req_error *e);
void job_doc_line_free(struct job_doc_line *d);

#endif
