/*
 * gemini_codec.c: building Gemini embedding API request bodies and parsing
 * its responses (see gemini_codec.h and shared/gemini-batch-api.md).
 */
#include "gemini_codec.h"

#include "util/jsonw.h"

#include <json-c/json.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- states ---- */

static const char *const state_names[] = {
    "BATCH_STATE_UNSPECIFIED", "BATCH_STATE_PENDING", "BATCH_STATE_RUNNING",
    "BATCH_STATE_SUCCEEDED",   "BATCH_STATE_FAILED",  "BATCH_STATE_CANCELLED",
    "BATCH_STATE_EXPIRED",
};

enum gem_state gem_state_parse(const char *s)
{
    if (!s)
        return GEM_STATE_UNSPECIFIED;
    if (strncmp(s, "BATCH_STATE_", 12) == 0)
        s += 12;
    else if (strncmp(s, "JOB_STATE_", 10) == 0)
        s += 10;
    for (int i = 1; i <= GEM_STATE_EXPIRED; i++)
        if (strcmp(s, state_names[i] + 12) == 0)
            return (enum gem_state)i;
    return GEM_STATE_UNSPECIFIED;
}

const char *gem_state_name(enum gem_state s)
{
    return (int)s >= 0 && s <= GEM_STATE_EXPIRED ? state_names[s] : state_names[0];
}

bool gem_state_terminal(enum gem_state s)
{
    return s == GEM_STATE_SUCCEEDED || s == GEM_STATE_FAILED || s == GEM_STATE_CANCELLED ||
           s == GEM_STATE_EXPIRED;
}

/* ---- json helpers ---- */

static json_object *parse(const char *body, size_t len, char *err, size_t errlen)
{
    if (len > INT32_MAX) {
        snprintf(err, errlen, "response too large to parse");
        return NULL;
    }
    struct json_tokener *tok = json_tokener_new_ex(64);
    if (!tok) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    json_object *o = json_tokener_parse_ex(tok, body, (int)len);
    enum json_tokener_error e = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    while (o && end < len &&
           (body[end] == ' ' || body[end] == '\n' || body[end] == '\r' || body[end] == '\t'))
        end++;
    if (!o || e != json_tokener_success || end != len) {
        snprintf(err, errlen, "response is not valid JSON (%s)",
                 e == json_tokener_continue  ? "truncated"
                 : e != json_tokener_success ? json_tokener_error_desc(e)
                                             : "trailing data");
        json_object_put(o);
        return NULL;
    }
    return o;
}

/* Member lookup by a dotted path; NULL if any step is missing or not an object. */
static json_object *get(json_object *o, const char *path)
{
    char seg[64];
    while (o && *path) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        if (n >= sizeof(seg) || !json_object_is_type(o, json_type_object))
            return NULL;
        memcpy(seg, path, n);
        seg[n] = '\0';
        json_object *v = NULL;
        if (!json_object_object_get_ex(o, seg, &v))
            return NULL;
        o = v;
        path += n + (dot ? 1 : 0);
    }
    return o;
}

static const char *get_str(json_object *o, const char *path)
{
    json_object *v = get(o, path);
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static void copy_str(char *dst, size_t n, const char *s)
{
    snprintf(dst, n, "%s", s ? s : "");
}

/* int64 as a JSON string ("3") or number; 0 when absent or malformed. */
static int64_t get_i64(json_object *o, const char *path)
{
    json_object *v = get(o, path);
    if (!v)
        return 0;
    if (json_object_is_type(v, json_type_int))
        return json_object_get_int64(v);
    if (json_object_is_type(v, json_type_string)) {
        const char *s = json_object_get_string(v);
        char *end;
        errno = 0;
        long long x = strtoll(s, &end, 10);
        return errno || end == s || *end ? 0 : x;
    }
    return 0;
}

/* "37s" / "5.026807431s" → milliseconds, rounded up; -1 if malformed. */
static int64_t duration_ms(const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || strcmp(end, "s") != 0 || v < 0 || v > 1e9)
        return -1;
    return (int64_t)ceil(v * 1000.0);
}

static void parse_status(json_object *e, struct gem_status *st)
{
    json_object *code = get(e, "code");
    if (code && json_object_is_type(code, json_type_int))
        st->code = json_object_get_int(code);
    copy_str(st->status, sizeof(st->status), get_str(e, "status"));
    copy_str(st->message, sizeof(st->message), get_str(e, "message"));
    json_object *details = get(e, "details");
    if (!details || !json_object_is_type(details, json_type_array))
        return;
    for (size_t i = 0; i < json_object_array_length(details); i++) {
        json_object *d = json_object_array_get_idx(details, i);
        const char *type = get_str(d, "@type");
        if (!type)
            continue;
        size_t tl = strlen(type);
        if (tl >= 9 && strcmp(type + tl - 9, "RetryInfo") == 0 && get_str(d, "retryDelay"))
            st->retry_delay_ms = duration_ms(get_str(d, "retryDelay"));
        else if (tl >= 9 && strcmp(type + tl - 9, "ErrorInfo") == 0)
            copy_str(st->reason, sizeof(st->reason), get_str(d, "reason"));
    }
}

void gem_parse_error(const char *body, size_t len, int http, struct gem_status *st)
{
    memset(st, 0, sizeof(*st));
    st->code = http;
    st->retry_delay_ms = -1;
    char err[128];
    json_object *o = len ? parse(body, len, err, sizeof(err)) : NULL;
    json_object *e = o ? get(o, "error") : NULL;
    if (e && json_object_is_type(e, json_type_object)) {
        parse_status(e, st);
        st->code = http; /* the HTTP status is the one that matters to callers */
    }
    if (!st->message[0])
        snprintf(st->message, sizeof(st->message), "HTTP %d", http);
    json_object_put(o);
}

/* ---- results ---- */

void gem_result_free(struct gem_result *r)
{
    free(r->key);
    free(r->values);
    r->key = NULL;
    r->values = NULL;
}

void gem_operation_free(struct gem_operation *op)
{
    for (size_t i = 0; i < op->n_results; i++)
        gem_result_free(&op->results[i]);
    free(op->results);
    op->results = NULL;
    op->n_results = 0;
}

/* {"response":{"embedding":{"values":[..]},"tokenCount":"N"}} or {"error":{..}}. */
static bool parse_result(json_object *item, const char *key, struct gem_result *r, char *err,
                         size_t errlen)
{
    memset(r, 0, sizeof(*r));
    r->token_count = -1;
    r->error.retry_delay_ms = -1;
    if (key && !(r->key = strdup(key))) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    json_object *e = get(item, "error");
    json_object *values = get(item, "response.embedding.values");
    if (e && json_object_is_type(e, json_type_object) && !values) {
        parse_status(e, &r->error);
        if (r->error.code == 0)
            r->error.code = 2; /* UNKNOWN */
        return true;
    }
    if (!values || !json_object_is_type(values, json_type_array)) {
        snprintf(err, errlen, "result has neither an embedding nor an error");
        return false;
    }
    size_t n = json_object_array_length(values);
    r->values = malloc((n ? n : 1) * sizeof(float));
    if (!r->values) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        json_object *v = json_object_array_get_idx(values, i);
        if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int)) {
            snprintf(err, errlen, "embedding value %zu is not a number", i);
            return false;
        }
        r->values[i] = (float)json_object_get_double(v);
    }
    r->dims = (int)n;
    if (get(item, "response.tokenCount"))
        r->token_count = get_i64(item, "response.tokenCount");
    else if (get(item, "response.usageMetadata.promptTokenCount"))
        r->token_count = get_i64(item, "response.usageMetadata.promptTokenCount");
    return true;
}

static json_object *first_of(json_object *o, const char *const *paths)
{
    for (size_t i = 0; paths[i]; i++) {
        json_object *v = get(o, paths[i]);
        if (v)
            return v;
    }
    return NULL;
}

static bool parse_inline(json_object *arr, struct gem_operation *op, char *err, size_t errlen)
{
    if (!json_object_is_type(arr, json_type_array)) {
        snprintf(err, errlen, "inlinedResponses is not an array");
        return false;
    }
    size_t n = json_object_array_length(arr);
    op->has_inline = true;
    op->results = calloc(n ? n : 1, sizeof(*op->results));
    if (!op->results) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        json_object *item = json_object_array_get_idx(arr, i);
        if (!parse_result(item, get_str(item, "metadata.key"), &op->results[i], err, errlen)) {
            op->n_results = i + 1;
            return false;
        }
        op->n_results = i + 1;
    }
    return true;
}

static bool parse_op(json_object *o, struct gem_operation *op, bool with_results, char *err,
                     size_t errlen)
{
    static const char *const inline_paths[] = {"response.inlinedResponses.inlinedResponses",
                                               "metadata.output.inlinedResponses.inlinedResponses",
                                               "response.output.inlinedResponses.inlinedResponses",
                                               NULL};
    static const char *const file_paths[] = {"response.responsesFile",
                                             "metadata.output.responsesFile",
                                             "response.output.responsesFile", NULL};
    memset(op, 0, sizeof(*op));
    op->error.retry_delay_ms = -1;
    if (!json_object_is_type(o, json_type_object) || !get_str(o, "name")) {
        snprintf(err, errlen, "not an Operation (no name)");
        return false;
    }
    copy_str(op->name, sizeof(op->name), get_str(o, "name"));
    copy_str(op->display_name, sizeof(op->display_name), get_str(o, "metadata.displayName"));
    copy_str(op->model, sizeof(op->model), get_str(o, "metadata.model"));
    op->state = gem_state_parse(get_str(o, "metadata.state"));
    json_object *done = get(o, "done");
    op->done =
        done && json_object_is_type(done, json_type_boolean) && json_object_get_boolean(done);
    json_object *e = get(o, "error");
    if (e && json_object_is_type(e, json_type_object))
        parse_status(e, &op->error);
    op->request_count = get_i64(o, "metadata.batchStats.requestCount");
    op->successful_count = get_i64(o, "metadata.batchStats.successfulRequestCount");
    op->failed_count = get_i64(o, "metadata.batchStats.failedRequestCount");
    op->pending_count = get_i64(o, "metadata.batchStats.pendingRequestCount");
    json_object *f = first_of(o, file_paths);
    if (f && json_object_is_type(f, json_type_string))
        copy_str(op->responses_file, sizeof(op->responses_file), json_object_get_string(f));
    json_object *arr = with_results ? first_of(o, inline_paths) : NULL;
    if (arr && !parse_inline(arr, op, err, errlen)) {
        gem_operation_free(op);
        return false;
    }
    return true;
}

bool gem_parse_operation(const char *body, size_t len, struct gem_operation *op, char *err,
                         size_t errlen)
{
    memset(op, 0, sizeof(*op));
    json_object *o = parse(body, len, err, errlen);
    if (!o)
        return false;
    bool ok = parse_op(o, op, true, err, errlen);
    json_object_put(o);
    return ok;
}

bool gem_parse_list(const char *body, size_t len, struct gem_operation **ops, size_t *n,
                    char *next_token, size_t token_len, char *err, size_t errlen)
{
    *ops = NULL;
    *n = 0;
    next_token[0] = '\0';
    json_object *o = parse(body, len, err, errlen);
    if (!o)
        return false;
    bool ok = json_object_is_type(o, json_type_object);
    json_object *arr = ok ? get(o, "operations") : NULL;
    size_t count =
        arr && json_object_is_type(arr, json_type_array) ? json_object_array_length(arr) : 0;
    if (arr && !json_object_is_type(arr, json_type_array))
        ok = false;
    struct gem_operation *out = ok ? calloc(count ? count : 1, sizeof(*out)) : NULL;
    if (ok && !out)
        ok = false;
    for (size_t i = 0; ok && i < count; i++) {
        ok = parse_op(json_object_array_get_idx(arr, i), &out[i], false, err, errlen);
        if (ok)
            *n = i + 1;
    }
    if (!ok && !err[0])
        snprintf(err, errlen, "not a list of operations");
    if (ok)
        copy_str(next_token, token_len, get_str(o, "nextPageToken"));
    if (!ok) {
        for (size_t i = 0; i < *n; i++)
            gem_operation_free(&out[i]);
        free(out);
        *n = 0;
        out = NULL;
    }
    *ops = out;
    json_object_put(o);
    return ok;
}

bool gem_parse_result_line(const char *line, size_t len, struct gem_result *r, char *err,
                           size_t errlen)
{
    memset(r, 0, sizeof(*r));
    json_object *o = parse(line, len, err, errlen);
    if (!o)
        return false;
    bool ok = json_object_is_type(o, json_type_object) &&
              parse_result(o, get_str(o, "key"), r, err, errlen);
    if (!ok && !err[0])
        snprintf(err, errlen, "not a result line");
    if (!ok)
        gem_result_free(r);
    json_object_put(o);
    return ok;
}

bool gem_parse_sync(const char *body, size_t len, struct gem_result **results, size_t *n, char *err,
                    size_t errlen)
{
    *results = NULL;
    *n = 0;
    json_object *o = parse(body, len, err, errlen);
    if (!o)
        return false;
    json_object *arr = get(o, "embeddings");
    json_object *one = get(o, "embedding");
    size_t count = arr && json_object_is_type(arr, json_type_array) ? json_object_array_length(arr)
                   : one                                            ? 1
                                                                    : 0;
    bool ok = count > 0;
    struct gem_result *out = ok ? calloc(count, sizeof(*out)) : NULL;
    if (!ok)
        snprintf(err, errlen, "no embeddings in the response");
    for (size_t i = 0; out && ok && i < count; i++) {
        json_object *e = arr ? json_object_array_get_idx(arr, i) : one;
        /* wrap as a result item: {"response":{"embedding":e}} */
        json_object *wrap = json_object_new_object(), *resp = json_object_new_object();
        json_object_object_add(resp, "embedding", json_object_get(e));
        json_object_object_add(wrap, "response", resp);
        ok = parse_result(wrap, NULL, &out[i], err, errlen);
        json_object_put(wrap);
        *n = i + 1;
    }
    if (!ok && out) {
        for (size_t i = 0; i < *n; i++)
            gem_result_free(&out[i]);
        free(out);
        out = NULL;
        *n = 0;
    }
    *results = out;
    json_object_put(o);
    return ok;
}

/* ---- request bodies ---- */

static bool want_title(const struct gem_req_opts *o, const struct gem_text *t)
{
    return t->title && strcmp(o->task_type, "RETRIEVAL_DOCUMENT") == 0;
}

/* The EmbedContentRequest object. */
static bool put_request(struct buf *b, const struct gem_req_opts *o, const struct gem_text *t)
{
    return buf_printf(b, "{\"model\":\"models/%s\",\"content\":{\"parts\":[{\"text\":", o->model) &&
           jsonw_str(b, t->text, t->text_len) && buf_puts(b, "}]},\"taskType\":") &&
           jsonw_cstr(b, o->task_type) &&
           (!want_title(o, t) || (buf_puts(b, ",\"title\":") && jsonw_cstr(b, t->title))) &&
           buf_printf(b, ",\"outputDimensionality\":%d}", o->dims);
}

static bool put_item(struct buf *b, const struct gem_req_opts *o, const struct gem_text *t)
{
    return buf_puts(b, "{\"request\":") && put_request(b, o, t) &&
           buf_puts(b, ",\"metadata\":{\"key\":") && jsonw_cstr(b, t->key) && buf_puts(b, "}}");
}

static const char batch_tail[] = "]}}}}";

static bool put_head(struct buf *b, const char *display_name)
{
    return buf_puts(b, "{\"batch\":{\"displayName\":") && jsonw_cstr(b, display_name) &&
           buf_puts(b, ",\"inputConfig\":{\"requests\":{\"requests\":[");
}

size_t gem_batch_overhead(const char *display_name)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    size_t n = put_head(&b, display_name) ? b.len + strlen(batch_tail) : 0;
    buf_cleanup(&b);
    return n;
}

size_t gem_batch_item_size(const struct gem_req_opts *o, const struct gem_text *t)
{
    struct buf b;
    buf_init(&b, SIZE_MAX / 2);
    size_t n = put_item(&b, o, t) ? b.len + 1 : 0; /* + the separating comma */
    buf_cleanup(&b);
    return n;
}

bool gem_build_batch(struct buf *out, const char *display_name, const struct gem_req_opts *o,
                     const struct gem_text *texts, size_t n)
{
    size_t mark = out->len;
    bool ok = put_head(out, display_name);
    for (size_t i = 0; i < n && ok; i++)
        ok = (!i || buf_putc(out, ',')) && put_item(out, o, &texts[i]);
    ok = ok && buf_puts(out, batch_tail);
    if (!ok) {
        out->len = mark;
        if (out->data)
            out->data[mark] = '\0';
    }
    return ok;
}

bool gem_build_sync(struct buf *out, const struct gem_req_opts *o, const struct gem_text *texts,
                    size_t n)
{
    size_t mark = out->len;
    bool ok = n <= 100 && buf_puts(out, "{\"requests\":[");
    for (size_t i = 0; i < n && ok; i++)
        ok = (!i || buf_putc(out, ',')) && put_request(out, o, &texts[i]);
    ok = ok && buf_puts(out, "]}");
    if (!ok) {
        out->len = mark;
        if (out->data)
            out->data[mark] = '\0';
    }
    return ok;
}

bool gem_build_jsonl_line(struct buf *out, const struct gem_req_opts *o, const struct gem_text *t)
{
    size_t mark = out->len;
    bool ok = buf_puts(out, "{\"key\":") && jsonw_cstr(out, t->key) &&
              buf_puts(out, ",\"request\":") && put_request(out, o, t) && buf_puts(out, "}\n");
    if (!ok) {
        out->len = mark;
        if (out->data)
            out->data[mark] = '\0';
    }
    return ok;
}
