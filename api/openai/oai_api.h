/*
 * oai_api.h: the OpenAI-compatible surface under /openai/v1: embeddings,
 * files and batches in OpenAI's request and response shapes, so that
 * OpenAI's SDKs and the tools built on them work with a base URL and an
 * embedd API key. Errors are OpenAI's {"error": {...}} (http.h:
 * http_openai_error, which http_problem also uses on these paths).
 */
#ifndef API_OPENAI_OAI_API_H
#define API_OPENAI_OAI_API_H

#include "api.h"
#include "openai/request.h"

/* POST /openai/v1/embeddings */
void api_oai_embeddings(void *app, struct http_req *req, struct http_resp *resp);

/* POST /openai/v1/files: multipart/form-data (purpose=batch, file), streamed */
extern const struct http_body_stream api_oai_files_upload;
/* POST /openai/v1/files with any other body: 415 */
void api_oai_files_create(void *app, struct http_req *req, struct http_resp *resp);
void api_oai_files_list(void *app, struct http_req *req, struct http_resp *resp);
void api_oai_files_get(void *app, struct http_req *req, struct http_resp *resp);
void api_oai_files_delete(void *app, struct http_req *req, struct http_resp *resp);
void api_oai_files_content(void *app, struct http_req *req, struct http_resp *resp);

/* POST /openai/v1/batches, GET .../batches, GET .../batches/{id}, POST .../batches/{id}/cancel */
void api_oai_batches_create(void *app, struct http_req *req, struct http_resp *resp);
void api_oai_batches_list(void *app, struct http_req *req, struct http_resp *resp);
void api_oai_batches_get(void *app, struct http_req *req, struct http_resp *resp);
void api_oai_batches_cancel(void *app, struct http_req *req, struct http_resp *resp);

/* Answer e in OpenAI's shape. */
void api_oai_error(struct http_resp *resp, const struct oai_err *e);
/* A JSON body (application/json or no Content-Type) parsed strictly into
 * *root; false with a 400/413/415 in resp. */
bool api_oai_json_body(struct http_req *req, struct http_resp *resp, json_object **root);
/* "limit" in [1, max] (default dflt); false with a 400 in resp. */
bool api_oai_limit(struct http_req *req, struct http_resp *resp, int dflt, int max, int *out);

#endif
