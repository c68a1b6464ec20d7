/*
 * request.h: OpenAI's embeddings request (POST /v1/embeddings) as embedd
 * reads it, wherever it arrives: the body of POST /openai/v1/embeddings or
 * the body of one line of a batch's input file. Errors carry what OpenAI's
 * error object carries (type, code, param, message) and the status OpenAI
 * answers them with (also what a batch output line's status_code says).
 *
 * The model names an embedding space: a collection of the API key (by id or
 * name: its model, dimensions and normalisation) or a model of embedd's
 * table (models.h) with "dimensions" (default: the model's default) and
 * vectors normalised to unit length. A suffix picks Gemini's task type,
 * which OpenAI's API has no field for: "<model>:query", "<model>:document"
 * or "<model>:<TASK_TYPE>" (any of models.h's, either case). Without one,
 * embeddings use the collection's query_task_type, or RETRIEVAL_QUERY.
 */
#ifndef SVC_OPENAI_REQUEST_H
#define SVC_OPENAI_REQUEST_H

#include <json-c/json.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/compiler.h"

#define OAI_MAX_INPUTS    2048 /* inputs per request, as OpenAI */
#define OAI_MAX_MODEL     256  /* bytes of a model string */
#define OAI_MAX_CUSTOM_ID 512  /* bytes of a batch line's custom_id */

/* An error as OpenAI reports it: {"error": {message, type, param, code}}. */
struct oai_err {
    int status;     /* 400, 401, 404, ... (a batch line's response.status_code) */
    char type[32];  /* invalid_request_error, server_error, ... */
    char code[48];  /* "" is null */
    char param[64]; /* "" is null */
    char message[512];
};

/* Fill e (status, type from the status, code, param) and return false. */
bool oai_fail(struct oai_err *e, int status, const char *code, const char *param, const char *fmt,
              ...) SVC_PRINTF(5, 6);
/* The error object {"error":{"message","type","param","code"}}. */
bool oai_put_error(struct buf *b, const struct oai_err *e) SVC_MUSTCHECK;

struct oai_emb_req {
    const char *model;  /* borrowed from the parsed body */
    const char **texts; /* owned array of n borrowed strings */
    size_t *lens;
    size_t n;
    bool single; /* input was one string, not an array */
    bool base64; /* encoding_format "base64" (default "float") */
    int dims;    /* "dimensions"; 0 when absent */
};

/* Validate a parsed embeddings body into r (its strings borrowed from body):
 * input a non-empty string or an array of 1 to OAI_MAX_INPUTS non-empty
 * strings (token arrays are refused: embedd needs text), model a string,
 * encoding_format float or base64, dimensions a positive integer, user a
 * string; other members are refused, as OpenAI does. Free r with
 * oai_emb_req_free either way. */
bool oai_parse_embeddings(json_object *body, struct oai_emb_req *r, struct oai_err *e);
void oai_emb_req_free(struct oai_emb_req *r);

/* Split a model string at a task suffix: base gets the part before the last
 * ':' and *task the task type it names ("query" and "document" become
 * *alias 'q' / 'd', resolved against the space later; a TaskType name is
 * returned in *task in upper case). false (nothing written) when the string
 * has no such suffix. */
bool oai_model_suffix(const char *model, char *base, size_t base_len, char *alias, char *task,
                      size_t task_len);

#endif
