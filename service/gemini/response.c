/* response.c: Gemini's responses parsed: Operations (whole or streamed), lists, responsesFile
 * lines and synchronous embeddings. */
#include "gemini/response.h"

#include "gemini/json.h"
#include "util/jslim.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- results ---- */

void gem_result_free(struct gem_result *r)
{
    if (!r)
        return;
    free(r->key);
    free(r->values);
    r->key = NULL;
    r->values = NULL;
    r->dims = 0;
}

void gem_operation_free(struct gem_operation *op)
{
    if (!op)
        return;
    for (size_t i = 0; i < op->n_results; i++)
        gem_result_free(&op->results[i]);
    free(op->results);
    op->results = NULL;
    op->n_results = 0;
}

static void result_init(struct gem_result *r)
{
    memset(r, 0, sizeof(*r));
    r->token_count = -1;
    gem_status_init(&r->error);
}

/* A "values" array that jslim took out of the text (its reference in the slim text). */
static bool take_values(struct jslim *js, json_object *ref, struct gem_result *r, char *err,
                        size_t errlen)
{
    int64_t k = json_object_is_type(ref, json_type_int) ? json_object_get_int64(ref) : -1;
    float *v = NULL;
    int dims = 0, bad = -1;
    if (!js || k < 0 || !jslim_take(js, (size_t)k, &v, &dims, &bad)) {
        gem_json_fail(err, errlen, "embedding has no values array");
        return false;
    }
    if (bad >= 0) {
        free(v);
        gem_json_fail(err, errlen, "embedding value %d is not a finite number", bad);
        return false;
    }
    r->values = v;
    r->dims = dims;
    return true;
}

/* ContentEmbedding {"values":[..]} → r->values; every element must be a finite number. */
static bool parse_embedding(json_object *emb, struct gem_result *r, struct jslim *js, char *err,
                            size_t errlen)
{
    json_object *values = gem_json_dig(emb, "values", NULL);
    json_object *ref = gem_json_dig(emb, JSLIM_REF_KEY, NULL);
    if (!values && ref)
        return take_values(js, ref, r, err, errlen);
    if (!values || !json_object_is_type(values, json_type_array)) {
        gem_json_fail(err, errlen, "embedding has no values array");
        return false;
    }
    size_t n = json_object_array_length(values);
    if (n == 0 || n > INT_MAX) {
        gem_json_fail(err, errlen, "embedding has %zu values", n);
        return false;
    }
    r->values = malloc(n * sizeof(float));
    if (!r->values) {
        gem_json_fail(err, errlen, "out of memory");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        json_object *v = json_object_array_get_idx(values, i);
        bool num = v && (json_object_is_type(v, json_type_double) ||
                         json_object_is_type(v, json_type_int));
        float f = num ? (float)json_object_get_double(v) : 0.0f;
        if (!num || !isfinite(f)) {
            gem_json_fail(err, errlen, "embedding value %zu is not a finite number", i);
            return false;
        }
        r->values[i] = f;
    }
    r->dims = (int)n;
    return true;
}

/* One result: {"response":{"embedding":..,"tokenCount":"N"|"usageMetadata":..}} or
 * {"error":{..}}; key_v is its key (a string, else none). An error wins over an embedding.
 * On failure r holds nothing. */
static bool parse_item(json_object *item, json_object *key_v, struct gem_result *r,
                       struct jslim *js, char *err, size_t errlen)
{
    result_init(r);
    if (!gem_json_is_obj(item)) {
        gem_json_fail(err, errlen, "result is not an object");
        return false;
    }
    const char *key = gem_json_str_of(key_v);
    if (key && !(r->key = strdup(key))) {
        gem_json_fail(err, errlen, "out of memory");
        return false;
    }
    json_object *e = gem_json_dig(item, "error", NULL);
    json_object *resp = gem_json_dig(item, "response", NULL);
    json_object *emb = gem_json_dig(resp, "embedding", NULL);
    bool ok;
    if (gem_json_is_obj(e)) {
        gem_status_parse(e, &r->error);
        if (r->error.code == 0)
            r->error.code = 2; /* google.rpc.Code UNKNOWN: an error object always means failure */
        ok = true;
    } else if (emb) {
        ok = parse_embedding(emb, r, js, err, errlen);
        json_object *tc = gem_json_dig(resp, "tokenCount", NULL);
        r->token_count =
            tc ? gem_json_i64_or(tc, -1)
               : gem_json_i64_or(gem_json_dig(resp, "usageMetadata", "promptTokenCount", NULL), -1);
    } else {
        gem_json_fail(err, errlen, "result has neither response.embedding nor error");
        ok = false;
    }
    if (!ok)
        gem_result_free(r);
    return ok;
}

/* ---- operations ---- */

/* The first of the three places Google has put a batch's output member. */
static json_object *output_member(json_object *o, const char *name)
{
    json_object *v = gem_json_dig(o, "response", name, NULL);
    if (!v)
        v = gem_json_dig(o, "metadata", "output", name, NULL);
    if (!v)
        v = gem_json_dig(o, "response", "output", name, NULL);
    return v;
}

static bool parse_inline(json_object *outer, struct gem_operation *op, struct jslim *js, char *err,
                         size_t errlen)
{
    /* the wire nests the list twice; a bare list is taken as well */
    json_object *arr = json_object_is_type(outer, json_type_array)
                           ? outer
                           : gem_json_dig(outer, "inlinedResponses", NULL);
    if ((arr != outer && !gem_json_is_obj(outer)) ||
        (arr && !json_object_is_type(arr, json_type_array))) {
        gem_json_fail(err, errlen, "inlinedResponses is not an {\"inlinedResponses\":[..]} object");
        return false;
    }
    op->has_inline = true;
    size_t n = arr ? json_object_array_length(arr) : 0; /* absent: proto3's empty list */
    if (n == 0)
        return true;
    op->results = calloc(n, sizeof(*op->results));
    if (!op->results) {
        gem_json_fail(err, errlen, "out of memory");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        json_object *item = json_object_array_get_idx(arr, i);
        char why[200] = "";
        if (!parse_item(item, gem_json_dig(item, "metadata", "key", NULL), &op->results[i], js, why,
                        sizeof(why))) {
            gem_json_fail(err, errlen, "inline result %zu: %s", i, why);
            return false;
        }
        op->n_results = i + 1;
    }
    return true;
}

static bool parse_op(json_object *o, struct gem_operation *op, struct jslim *js, bool results,
                     char *err, size_t errlen)
{
    memset(op, 0, sizeof(*op));
    gem_status_init(&op->error);
    json_object *md = gem_json_dig(o, "metadata", NULL);
    json_object *name = gem_json_dig(o, "name", NULL);
    if (!gem_json_str_of(name))
        name = gem_json_dig(md, "name", NULL);
    const char *nm = gem_json_str_of(name);
    if (!gem_json_is_obj(o) || !nm || !*nm) {
        gem_json_fail(err, errlen, "not an Operation: no name");
        return false;
    }
    if (!gem_json_copy_str(op->name, sizeof(op->name), name)) {
        gem_json_fail(err, errlen, "operation name longer than %zu bytes", sizeof(op->name) - 1);
        return false;
    }
    gem_json_copy_str(op->display_name, sizeof(op->display_name),
                      gem_json_dig(md, "displayName", NULL));
    gem_json_copy_str(op->model, sizeof(op->model), gem_json_dig(md, "model", NULL));
    op->state = gem_state_parse(gem_json_str_of(gem_json_dig(md, "state", NULL)));
    json_object *done = gem_json_dig(o, "done", NULL);
    op->done =
        done && json_object_is_type(done, json_type_boolean) && json_object_get_boolean(done);
    json_object *e = gem_json_dig(o, "error", NULL);
    if (gem_json_is_obj(e)) {
        gem_status_parse(e, &op->error);
        if (op->error.code == 0)
            op->error.code = 2; /* UNKNOWN */
    }
    json_object *stats = gem_json_dig(md, "batchStats", NULL);
    op->request_count = gem_json_i64_or(gem_json_dig(stats, "requestCount", NULL), 0);
    op->successful_count = gem_json_i64_or(gem_json_dig(stats, "successfulRequestCount", NULL), 0);
    op->failed_count = gem_json_i64_or(gem_json_dig(stats, "failedRequestCount", NULL), 0);
    op->pending_count = gem_json_i64_or(gem_json_dig(stats, "pendingRequestCount", NULL), 0);
    if (!gem_json_copy_str(op->responses_file, sizeof(op->responses_file),
                           output_member(o, "responsesFile"))) {
        gem_json_fail(err, errlen, "responsesFile longer than %zu bytes",
                      sizeof(op->responses_file) - 1);
        return false;
    }
    json_object *outer = results ? output_member(o, "inlinedResponses") : NULL;
    if (outer && !parse_inline(outer, op, js, err, errlen)) {
        gem_operation_free(op);
        op->has_inline = false;
        return false;
    }
    return true;
}

/* The slim text of a complete jslim as a json-c object; NULL (err set) if it was not JSON. */
static json_object *slim_root(struct jslim *js, char *err, size_t errlen)
{
    if (!jslim_finish(js)) {
        gem_json_fail(err, errlen, "response is not valid JSON: %s", js->err);
        return NULL;
    }
    return gem_json_parse_body(js->out.data, js->out.len, err, errlen);
}

void gem_op_stream_init(struct gem_op_stream *s)
{
    gem_op_stream_init_mode(s, GEM_RESULTS_KEEP, NULL);
}

/* Which copy of a batch's results list an array is: 1 response.inlinedResponses,
 * 2 metadata.output.inlinedResponses, 3 response.output.inlinedResponses (the
 * order of output_member), each nested twice on the wire or bare; 0 none. */
static int results_array(void *ud, const struct jslim *js)
{
    static const char *const paths[][4] = {
        {"response", "inlinedResponses", "inlinedResponses", NULL},
        {"metadata", "output", "inlinedResponses", "inlinedResponses"},
        {"response", "output", "inlinedResponses", "inlinedResponses"},
    };
    static const int len[] = {3, 4, 4};
    (void)ud;
    for (int i = 0; i < 3; i++)
        if (jslim_path_is(js, paths[i], len[i]) || jslim_path_is(js, paths[i], len[i] - 1))
            return i + 1;
    return 0;
}

/* One complete element of a results list: parsed and handed to the sink. */
static bool results_element(void *ud, struct jslim *js, int source, const char *p, size_t n)
{
    struct gem_op_stream *s = ud;
    if (!s->sink || s->bad || (s->source && source != s->source))
        return true; /* dropped, or another copy of the list */
    s->source = source;
    char why[200] = "";
    json_object *item = gem_json_parse_body(p, n, why, sizeof(why));
    struct gem_result r;
    bool ok = item && parse_item(item, gem_json_dig(item, "metadata", "key", NULL), &r, js, why,
                                 sizeof(why));
    json_object_put(item);
    if (!ok) { /* the body fails at finish, as when the results are kept */
        s->bad = true;
        snprintf(s->bad_err, sizeof(s->bad_err), "inline result %zu: %s", s->streamed, why);
        return true;
    }
    ok = s->sink->result(s->sink->ud, &r);
    gem_result_free(&r);
    s->streamed++;
    s->refused = !ok;
    return ok;
}

void gem_op_stream_init_mode(struct gem_op_stream *s, enum gem_results_mode mode,
                             const struct gem_result_sink *sink)
{
    memset(s, 0, sizeof(*s));
    s->js = calloc(1, sizeof(*s->js));
    if (!s->js)
        return;
    jslim_init(s->js, GEM_SLIM_MAX);
    if (mode == GEM_RESULTS_KEEP)
        return;
    s->sink = mode == GEM_RESULTS_SINK ? sink : NULL;
    struct jslim_hooks h = {results_array, results_element, s};
    jslim_set_hooks(s->js, &h);
}

bool gem_op_stream_feed(struct gem_op_stream *s, const char *p, size_t n)
{
    return s->js && jslim_feed(s->js, p, n);
}

bool gem_op_stream_finish(struct gem_op_stream *s, struct gem_operation *op, bool *json, char *err,
                          size_t errlen)
{
    memset(op, 0, sizeof(*op));
    gem_status_init(&op->error);
    *json = false;
    if (!s->js) {
        gem_json_fail(err, errlen, "out of memory");
        return false;
    }
    json_object *o = slim_root(s->js, err, errlen);
    if (!o)
        return false;
    *json = true;
    bool ok = parse_op(o, op, s->js, true, err, errlen);
    json_object_put(o);
    if (ok && s->bad) {
        gem_operation_free(op);
        op->has_inline = false;
        gem_json_fail(err, errlen, "%s", s->bad_err);
        return false;
    }
    return ok;
}

const char *gem_op_stream_error(const struct gem_op_stream *s, bool *limit)
{
    *limit = s->js && s->js->limit;
    if (!s->js)
        return "out of memory";
    if (s->refused)
        return "a result could not be kept";
    return s->js->err[0] ? s->js->err : NULL;
}

void gem_op_stream_cleanup(struct gem_op_stream *s)
{
    if (s->js)
        jslim_cleanup(s->js);
    free(s->js);
    s->js = NULL;
}

bool gem_parse_operation(const char *body, size_t len, struct gem_operation *op, char *err,
                         size_t errlen)
{
    struct gem_op_stream st;
    bool json;
    gem_op_stream_init(&st);
    if (!body || len == 0) {
        memset(op, 0, sizeof(*op));
        gem_status_init(&op->error);
        gem_json_fail(err, errlen, "empty response body");
        gem_op_stream_cleanup(&st);
        return false;
    }
    bool fed = gem_op_stream_feed(&st, body, len);
    (void)fed; /* a refusal shows in finish */
    bool ok = gem_op_stream_finish(&st, op, &json, err, errlen);
    gem_op_stream_cleanup(&st);
    return ok;
}

/* List entries carry no output (and generate batches share the list), so results are skipped. */
static bool parse_ops(json_object *arr, struct gem_operation **ops, size_t *n, char *err,
                      size_t errlen)
{
    size_t count = json_object_array_length(arr);
    if (count == 0)
        return true;
    struct gem_operation *out = calloc(count, sizeof(*out));
    if (!out) {
        gem_json_fail(err, errlen, "out of memory");
        return false;
    }
    for (size_t i = 0; i < count; i++) {
        char why[200] = "";
        if (!parse_op(json_object_array_get_idx(arr, i), &out[i], NULL, false, why, sizeof(why))) {
            gem_json_fail(err, errlen, "operations[%zu]: %s", i, why);
            for (size_t k = 0; k < i; k++)
                gem_operation_free(&out[k]);
            free(out);
            return false;
        }
    }
    *ops = out;
    *n = count;
    return true;
}

bool gem_parse_list(const char *body, size_t len, struct gem_operation **ops, size_t *n,
                    char *next_token, size_t token_len, char *err, size_t errlen)
{
    *ops = NULL;
    *n = 0;
    if (token_len)
        next_token[0] = '\0';
    json_object *o = gem_json_parse_body(body, len, err, errlen);
    if (!o)
        return false;
    json_object *arr = gem_json_dig(o, "operations", NULL);
    json_object *tok = gem_json_dig(o, "nextPageToken", NULL);
    bool ok = false;
    if (!gem_json_is_obj(o) || (arr && !json_object_is_type(arr, json_type_array)))
        gem_json_fail(err, errlen, "not a list of operations");
    else if (tok && (!gem_json_str_of(tok) || !token_len ||
                     !gem_json_copy_str(next_token, token_len, tok)))
        gem_json_fail(err, errlen, "nextPageToken is not a string of under %zu bytes", token_len);
    else
        ok = !arr || parse_ops(arr, ops, n, err, errlen);
    if (!ok && token_len)
        next_token[0] = '\0';
    json_object_put(o);
    return ok;
}

bool gem_parse_result_line(const char *line, size_t len, struct gem_result *r, char *err,
                           size_t errlen)
{
    result_init(r);
    if (!line || len == 0) {
        gem_json_fail(err, errlen, "empty response body");
        return false;
    }
    struct jslim js;
    jslim_init(&js, GEM_SLIM_MAX);
    bool fed = jslim_feed(&js, line, len);
    (void)fed; /* a refusal shows in slim_root */
    json_object *o = slim_root(&js, err, errlen);
    /* a file line names its request by "key"; a line answering an inline request (a batch
     * whose output came as a file though its input was inline) by the metadata echo */
    json_object *key = gem_json_dig(o, "key", NULL);
    if (!key)
        key = gem_json_dig(o, "metadata", "key", NULL);
    bool ok = o && parse_item(o, key, r, &js, err, errlen);
    json_object_put(o);
    jslim_cleanup(&js);
    return ok;
}

#define GEM_LINE_MAX ((size_t)64 << 20) /* one result of 3,072 numbers is ~60 KB */

void gem_lines_init(struct gem_lines *l)
{
    memset(l, 0, sizeof(*l));
    buf_init(&l->line, GEM_LINE_MAX);
}

static bool lines_one(struct gem_lines *l, const char *p, size_t len)
{
    l->lines++;
    while (len && (p[len - 1] == '\r' || p[len - 1] == ' ' || p[len - 1] == '\t'))
        len--;
    if (len == 0)
        return true;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        struct gem_result *bigger = realloc(l->results, cap * sizeof(*bigger));
        if (!bigger) {
            l->oom = true;
            return false;
        }
        l->results = bigger;
        l->cap = cap;
    }
    char why[200];
    if (gem_parse_result_line(p, len, &l->results[l->n], why, sizeof(why))) {
        l->n++;
    } else {
        if (!l->bad++)
            snprintf(l->err, sizeof(l->err), "line %zu: %.170s", l->lines, why);
    }
    return true;
}

bool gem_lines_feed(struct gem_lines *l, const char *p, size_t n)
{
    const char *end = p + n;
    while (p < end && !l->oom) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) {
            /* the line goes on in the next piece */
            if (!buf_append(&l->line, p, (size_t)(end - p))) {
                if (l->line.len + (size_t)(end - p) <= l->line.max)
                    l->oom = true;
                else if (!l->bad++) /* an absurd line: dropped */
                    snprintf(l->err, sizeof(l->err), "a line longer than %zu bytes", l->line.max);
                buf_reset(&l->line);
            }
            return !l->oom;
        }
        if (l->line.len) {
            if (!buf_append(&l->line, p, (size_t)(nl - p))) {
                l->oom = l->line.len + (size_t)(nl - p) <= l->line.max;
                if (!l->oom && !l->bad++)
                    snprintf(l->err, sizeof(l->err), "a line longer than %zu bytes", l->line.max);
            } else if (!lines_one(l, l->line.data, l->line.len)) {
                return false;
            }
            buf_reset(&l->line);
        } else if (!lines_one(l, p, (size_t)(nl - p))) {
            return false;
        }
        p = nl + 1;
    }
    return !l->oom;
}

bool gem_lines_finish(struct gem_lines *l)
{
    bool ok = !l->oom && (!l->line.len || lines_one(l, l->line.data, l->line.len));
    buf_reset(&l->line);
    return ok;
}

void gem_lines_cleanup(struct gem_lines *l)
{
    for (size_t i = 0; i < l->n; i++)
        gem_result_free(&l->results[i]);
    free(l->results);
    buf_cleanup(&l->line);
    memset(l, 0, sizeof(*l));
}

static void free_results(struct gem_result *rs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        gem_result_free(&rs[i]);
    free(rs);
}

/* {"embeddings":[ContentEmbedding,..]} or {"embedding":ContentEmbedding,"usageMetadata":..}. */
static bool parse_sync_root(json_object *o, struct jslim *js, struct gem_result **results,
                            size_t *n, char *err, size_t errlen)
{
    json_object *arr = gem_json_dig(o, "embeddings", NULL);
    json_object *one = gem_json_dig(o, "embedding", NULL);
    if (arr && !json_object_is_type(arr, json_type_array)) {
        gem_json_fail(err, errlen, "embeddings is not an array");
        return false;
    }
    size_t count = arr ? json_object_array_length(arr) : one ? 1 : 0;
    if (count == 0) {
        gem_json_fail(err, errlen, "no embeddings in the response");
        return false;
    }
    struct gem_result *out = calloc(count, sizeof(*out));
    if (!out) {
        gem_json_fail(err, errlen, "out of memory");
        return false;
    }
    for (size_t i = 0; i < count; i++) {
        result_init(&out[i]);
        char why[200] = "";
        if (!parse_embedding(arr ? json_object_array_get_idx(arr, i) : one, &out[i], js, why,
                             sizeof(why))) {
            gem_json_fail(err, errlen, "embeddings[%zu]: %s", i, why);
            free_results(out, i + 1);
            return false;
        }
    }
    if (!arr)
        out[0].token_count =
            gem_json_i64_or(gem_json_dig(o, "usageMetadata", "promptTokenCount", NULL), -1);
    *results = out;
    *n = count;
    return true;
}

bool gem_parse_sync(const char *body, size_t len, struct gem_result **results, size_t *n, char *err,
                    size_t errlen)
{
    *results = NULL;
    *n = 0;
    if (!body || len == 0) {
        gem_json_fail(err, errlen, "empty response body");
        return false;
    }
    struct jslim js;
    jslim_init(&js, GEM_SLIM_MAX);
    bool fed = jslim_feed(&js, body, len);
    (void)fed; /* a refusal shows in slim_root */
    json_object *o = slim_root(&js, err, errlen);
    bool ok = o && parse_sync_root(o, &js, results, n, err, errlen);
    json_object_put(o);
    jslim_cleanup(&js);
    return ok;
}
