/*
 * jsonv.h: validating members of a parsed JSON request (json-c) with the
 * error shape of job_request.h: 400 for a wrong type or an unknown member,
 * 422 for a value out of range, each with the member's JSON pointer.
 */
#ifndef API_JSONV_H
#define API_JSONV_H

#include "job_request.h"

#include <json-c/json.h>

#include <stdbool.h>
#include <stddef.h>

/* Fill e and return false (for "return jsonv_fail(...)"). */
bool jsonv_fail(struct job_req_error *e, int status, const char *code, const char *pointer,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Parse body as exactly one JSON value (surrounding whitespace allowed) into
 * *root (caller frees): strictly valid UTF-8 and RFC 8259 (json_strict.h)
 * first, at most max_depth deep; else 400 invalid_json. */
bool jsonv_parse(const char *body, size_t len, int max_depth, json_object **root,
                 struct job_req_error *e);
/* "a string", "an integer", ... for error messages: of a value, of a type. */
const char *jsonv_type_name(json_object *v);
const char *jsonv_type_word(enum json_type t);
/* v is of type t, else 400 invalid_type naming what (e.g. "an integer"). */
bool jsonv_want(json_object *v, enum json_type t, const char *what, const char *ptr,
                struct job_req_error *e);
/* Only the listed members may appear in o (names NULL-terminated). */
bool jsonv_only_known(json_object *o, const char *const *names, const char *base,
                      struct job_req_error *e);
/* An optional integer member within [lo, hi]; *out keeps its default when absent or null. */
bool jsonv_int(json_object *o, const char *name, const char *ptr, int lo, int hi, int *out,
               struct job_req_error *e);
/* An optional string member of at most max bytes without NUL; *out (borrowed
 * from o) keeps its default when absent or null; *len when len is not NULL. */
bool jsonv_string(json_object *o, const char *name, const char *ptr, size_t max, const char **out,
                  size_t *len, struct job_req_error *e);
/* An optional boolean member. */
bool jsonv_bool(json_object *o, const char *name, const char *ptr, bool *out,
                struct job_req_error *e);

/* The embedding space of a job or a collection, with embedd's defaults. */
struct space {
    const char *model; /* borrowed from the parsed JSON or static */
    const char *task_type;
    const char *query_task_type;
    int output_dimensionality;
    bool normalize;
    int max_chars, overlap_chars;
};
void space_defaults(struct space *s);
/* The space members of root: model, task_type, output_dimensionality,
 * normalize, chunking {max_chars, overlap_chars}, and query_task_type when
 * with_query. Unknown models, models without batch support, dimensions
 * outside the model's range, unknown task types are 422 with the allowed
 * values named. */
bool space_parse(json_object *root, struct space *s, bool with_query, struct job_req_error *e);

#endif
