/*
 * batches.c: /openai/v1/batches: OpenAI's Batch objects over embedd's
 * batches (store/openai_batches.h), which the driver (openai/driver.h)
 * validates into embedd jobs and finalizes into output files. Statuses are
 * OpenAI's: validating, failed, in_progress, finalizing, completed,
 * expired, cancelling, cancelled.
 */
#include "openai/oai_api.h"

#include "log.h"
#include "store/openai_batches.h"
#include "util/jsonw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool put_ts(struct buf *b, const char *name, int64_t t)
{
    return t ? buf_printf(b, ",\"%s\":%lld", name, (long long)t)
             : buf_printf(b, ",\"%s\":null", name);
}

static bool put_str_or_null(struct buf *b, const char *s)
{
    return jsonw_cstr(b, s && *s ? s : NULL);
}

static bool put_batch(struct buf *b, const struct oai_batch *x)
{
    bool ok =
        buf_puts(b, "{\"id\":") && jsonw_cstr(b, x->id) &&
        buf_puts(b, ",\"object\":\"batch\",\"endpoint\":") && jsonw_cstr(b, x->endpoint) &&
        buf_puts(b, ",\"model\":") && put_str_or_null(b, x->model) && buf_puts(b, ",\"errors\":") &&
        (x->errors ? buf_puts(b, "{\"object\":\"list\",\"data\":") && buf_puts(b, x->errors) &&
                         buf_putc(b, '}')
                   : buf_puts(b, "null")) &&
        buf_puts(b, ",\"input_file_id\":") && jsonw_cstr(b, x->input_file_id) &&
        buf_puts(b, ",\"completion_window\":") && jsonw_cstr(b, x->completion_window) &&
        buf_puts(b, ",\"status\":") && jsonw_cstr(b, x->status) &&
        buf_puts(b, ",\"output_file_id\":") && put_str_or_null(b, x->output_file_id) &&
        buf_puts(b, ",\"error_file_id\":") && put_str_or_null(b, x->error_file_id) &&
        put_ts(b, "created_at", x->created_at) && put_ts(b, "in_progress_at", x->in_progress_at) &&
        put_ts(b, "expires_at", x->expires_at) && put_ts(b, "finalizing_at", x->finalizing_at) &&
        put_ts(b, "completed_at", x->completed_at) && put_ts(b, "failed_at", x->failed_at) &&
        put_ts(b, "expired_at", x->expired_at) && put_ts(b, "cancelling_at", x->cancelling_at) &&
        put_ts(b, "cancelled_at", x->cancelled_at) &&
        buf_printf(b, ",\"request_counts\":{\"total\":%lld,\"completed\":%lld,\"failed\":%lld}",
                   (long long)x->total, (long long)x->completed, (long long)x->failed) &&
        buf_printf(b,
                   ",\"usage\":{\"input_tokens\":%lld,\"input_tokens_details\":"
                   "{\"cached_tokens\":0},\"output_tokens\":0,\"output_tokens_details\":"
                   "{\"reasoning_tokens\":0},\"total_tokens\":%lld}",
                   (long long)x->tokens, (long long)x->tokens) &&
        buf_puts(b, ",\"metadata\":") && buf_puts(b, x->metadata ? x->metadata : "null") &&
        buf_puts(b, ",\"embedd_job_id\":") && put_str_or_null(b, x->job_id) && buf_putc(b, '}');
    return ok;
}

static void reply_batch(struct http_resp *resp, const struct oai_batch *x)
{
    buf_reset(&resp->body);
    if (put_batch(&resp->body, x)) {
        resp->status = 200;
        resp->content_type = "application/json";
    } else {
        http_openai_error(resp, 500, "internal_error", NULL, "the reply could not be built");
    }
}

static void not_found(struct http_resp *resp, const char *id)
{
    char msg[128];
    snprintf(msg, sizeof(msg), "No batch found with id '%.60s'.", id);
    http_openai_error(resp, 404, "not_found", "batch_id", msg);
}

/* metadata: at most 16 string values, keys up to 64 bytes, values up to 512. */
static bool metadata_ok(json_object *m, struct http_resp *resp)
{
    const char *why = NULL;
    if (!json_object_is_type(m, json_type_object))
        why = "metadata must be an object of strings";
    else if (json_object_object_length(m) > 16)
        why = "metadata has at most 16 keys";
    else {
        json_object_object_foreach(m, k, v)
        {
            if (strlen(k) > 64)
                why = "metadata keys have at most 64 characters";
            else if (!json_object_is_type(v, json_type_string))
                why = "metadata values are strings";
            else if (json_object_get_string_len(v) > 512)
                why = "metadata values have at most 512 characters";
        }
    }
    if (why)
        http_openai_error(resp, 400, "invalid_value", "metadata", why);
    return why == NULL;
}

void api_oai_batches_create(void *appv, struct http_req *req, struct http_resp *resp)
{
    static const char *const known[] = {
        "input_file_id", "endpoint", "completion_window", "metadata", "output_expires_after", NULL};
    struct app *app = appv;
    json_object *root = NULL, *v, *m = NULL;
    if (!api_oai_json_body(req, resp, &root))
        return;
    const char *file = NULL, *endpoint = NULL, *window = NULL;
    if (!json_object_is_type(root, json_type_object)) {
        http_openai_error(resp, 400, "invalid_request", NULL, "the body must be a JSON object");
        goto out;
    }
    json_object_object_foreach(root, key, val)
    {
        (void)val;
        bool ok = false;
        for (size_t i = 0; known[i] && !ok; i++)
            ok = strcmp(known[i], key) == 0;
        if (!ok) {
            char msg[128];
            snprintf(msg, sizeof(msg), "Unrecognized request argument supplied: %.60s", key);
            http_openai_error(resp, 400, "unknown_parameter", key, msg);
            goto out;
        }
    }
    if (json_object_object_get_ex(root, "input_file_id", &v) &&
        json_object_is_type(v, json_type_string))
        file = json_object_get_string(v);
    if (json_object_object_get_ex(root, "endpoint", &v) && json_object_is_type(v, json_type_string))
        endpoint = json_object_get_string(v);
    if (json_object_object_get_ex(root, "completion_window", &v) &&
        json_object_is_type(v, json_type_string))
        window = json_object_get_string(v);
    if (!file || !*file || strlen(file) >= OAI_ID_MAX) {
        http_openai_error(resp, 400, "missing_required_parameter", "input_file_id",
                          "input_file_id must be the id of a file uploaded with purpose batch");
        goto out;
    }
    if (!endpoint || strcmp(endpoint, "/v1/embeddings") != 0) {
        http_openai_error(resp, 400, "invalid_value", "endpoint",
                          "embedd runs batches of /v1/embeddings only");
        goto out;
    }
    if (!window || strcmp(window, "24h") != 0) {
        http_openai_error(resp, 400, "invalid_value", "completion_window",
                          "completion_window must be \"24h\"");
        goto out;
    }
    if (json_object_object_get_ex(root, "metadata", &m) && json_object_is_type(m, json_type_null))
        m = NULL;
    if (m && !metadata_ok(m, resp))
        goto out;
    PGconn *c = api_db_or_503(app, req, resp);
    if (!c)
        goto out;
    struct oai_batch b;
    char err[512];
    enum jobs_result r = oai_batch_create(
        c, req->key_id, file, endpoint, window,
        m ? json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN) : NULL, &b, err, sizeof(err));
    db_pool_release(app->db, c);
    if (r == JOBS_NOT_FOUND) {
        char msg[160];
        snprintf(msg, sizeof(msg), "No file with purpose batch found with id '%.60s'.", file);
        http_openai_error(resp, 400, "invalid_value", "input_file_id", msg);
    } else if (r != JOBS_OK) {
        api_db_failed(req, resp, err);
    } else {
        log_info("request %s: batch %s created from file %s", req->id, b.id, file);
        reply_batch(resp, &b);
        oai_batch_free(&b);
    }
out:
    json_object_put(root);
}

void api_oai_batches_get(void *appv, struct http_req *req, struct http_resp *resp)
{
    struct app *app = appv;
    PGconn *c = api_db_or_503(app, req, resp);
    if (!c)
        return;
    struct oai_batch b;
    char err[512];
    enum jobs_result r = oai_batch_get(c, req->key_id, req->params[0], &b, err, sizeof(err));
    db_pool_release(app->db, c);
    if (r == JOBS_NOT_FOUND) {
        not_found(resp, req->params[0]);
    } else if (r != JOBS_OK) {
        api_db_failed(req, resp, err);
    } else {
        reply_batch(resp, &b);
        oai_batch_free(&b);
    }
}

void api_oai_batches_cancel(void *appv, struct http_req *req, struct http_resp *resp)
{
    struct app *app = appv;
    PGconn *c = api_db_or_503(app, req, resp);
    if (!c)
        return;
    struct oai_batch b;
    char err[512];
    enum jobs_result r = oai_batch_cancel(c, req->key_id, req->params[0], &b, err, sizeof(err));
    db_pool_release(app->db, c);
    if (r == JOBS_NOT_FOUND) {
        not_found(resp, req->params[0]);
    } else if (r == JOBS_CONFLICT) {
        char msg[160];
        snprintf(msg, sizeof(msg), "Cannot cancel a batch with status '%s'.", b.status);
        http_openai_error(resp, 409, "batch_not_cancellable", NULL, msg);
        oai_batch_free(&b);
    } else if (r != JOBS_OK) {
        api_db_failed(req, resp, err);
    } else {
        log_info("request %s: batch %s %s", req->id, b.id, b.status);
        reply_batch(resp, &b);
        oai_batch_free(&b);
    }
}

void api_oai_batches_list(void *appv, struct http_req *req, struct http_resp *resp)
{
    struct app *app = appv;
    int limit;
    if (!api_oai_limit(req, resp, 20, 100, &limit))
        return;
    const char *after = http_req_query(req, "after");
    struct oai_batch *bs = calloc((size_t)limit, sizeof(*bs));
    if (!bs) {
        http_openai_error(resp, 503, "out_of_memory", NULL, "the server is out of memory");
        return;
    }
    PGconn *c = api_db_or_503(app, req, resp);
    size_t n = 0;
    bool more = false;
    char err[512];
    if (c) {
        enum jobs_result r =
            oai_batch_list(c, req->key_id, after, limit, bs, &n, &more, err, sizeof(err));
        db_pool_release(app->db, c);
        if (r == JOBS_NOT_FOUND) {
            not_found(resp, after);
        } else if (r != JOBS_OK) {
            api_db_failed(req, resp, err);
        } else {
            struct buf *b = &resp->body;
            buf_reset(b);
            bool ok = buf_puts(b, "{\"object\":\"list\",\"data\":[");
            for (size_t i = 0; ok && i < n; i++)
                ok = (!i || buf_putc(b, ',')) && put_batch(b, &bs[i]);
            ok = ok && buf_puts(b, "],\"first_id\":") && jsonw_cstr(b, n ? bs[0].id : NULL) &&
                 buf_puts(b, ",\"last_id\":") && jsonw_cstr(b, n ? bs[n - 1].id : NULL) &&
                 buf_printf(b, ",\"has_more\":%s}", more ? "true" : "false");
            resp->status = ok ? 200 : 500;
            resp->content_type = "application/json";
        }
    }
    for (size_t i = 0; i < n; i++)
        oai_batch_free(&bs[i]);
    free(bs);
}
