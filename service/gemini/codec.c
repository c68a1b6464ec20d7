/* gemini_codec.c: the JSON of Gemini's embedding API: request bodies built, responses parsed. */
#include "gemini/codec.h"

#include "util/jslim.h"

#include <json-c/json.h>

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- states ---- */

static const char *const state_names[] = {
    "BATCH_STATE_UNSPECIFIED", "BATCH_STATE_PENDING", "BATCH_STATE_RUNNING",
    "BATCH_STATE_SUCCEEDED",   "BATCH_STATE_FAILED",  "BATCH_STATE_CANCELLED",
    "BATCH_STATE_EXPIRED",
};

#define BATCH_PREFIX "BATCH_STATE_"
#define JOB_PREFIX   "JOB_STATE_"

enum gem_state gem_state_parse(const char *s)
{
    if (!s)
        return GEM_STATE_UNSPECIFIED;
    if (strncmp(s, BATCH_PREFIX, strlen(BATCH_PREFIX)) == 0)
        s += strlen(BATCH_PREFIX);
    else if (strncmp(s, JOB_PREFIX, strlen(JOB_PREFIX)) == 0)
        s += strlen(JOB_PREFIX);
    for (size_t i = 0; i < SVC_ARRAY_LEN(state_names); i++)
        if (strcmp(s, state_names[i] + strlen(BATCH_PREFIX)) == 0)
            return (enum gem_state)i;
    return GEM_STATE_UNSPECIFIED;
}

const char *gem_state_name(enum gem_state s)
{
    size_t i = (size_t)s;
    return i < SVC_ARRAY_LEN(state_names) ? state_names[i] : state_names[0];
}

bool gem_state_terminal(enum gem_state s)
{
    return s == GEM_STATE_SUCCEEDED || s == GEM_STATE_FAILED || s == GEM_STATE_CANCELLED ||
           s == GEM_STATE_EXPIRED;
}

/* ---- JSON access ---- */

static void fail(char *err, size_t errlen, const char *fmt, ...) SVC_PRINTF(3, 4);

static void fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* One JSON value filling body[0..len) exactly (trailing whitespace allowed). */
static json_object *parse_body(const char *body, size_t len, char *err, size_t errlen)
{
    if (!body || len == 0) {
        fail(err, errlen, "empty response body");
        return NULL;
    }
    if (len > INT_MAX) {
        fail(err, errlen, "response body too large to parse (%zu bytes)", len);
        return NULL;
    }
    struct json_tokener *tok = json_tokener_new_ex(64);
    if (!tok) {
        fail(err, errlen, "out of memory");
        return NULL;
    }
    json_object *o = json_tokener_parse_ex(tok, body, (int)len);
    enum json_tokener_error e = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (o && e == json_tokener_success && end == len)
        return o;
    if (e == json_tokener_continue)
        fail(err, errlen, "response is not valid JSON: incomplete (truncated?)");
    else if (e != json_tokener_success)
        fail(err, errlen, "response is not valid JSON: %s at byte %zu", json_tokener_error_desc(e),
             end);
    else
        fail(err, errlen, "response is not valid JSON: unexpected data at byte %zu", end);
    json_object_put(o);
    return NULL;
}

/* Walk the member names given (NULL-terminated); NULL if any step is not an object or absent. */
static json_object *dig(json_object *o, ...)
{
    va_list ap;
    va_start(ap, o);
    for (const char *name = va_arg(ap, const char *); o && name; name = va_arg(ap, const char *)) {
        json_object *next = NULL;
        if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, name, &next))
            next = NULL;
        o = next;
    }
    va_end(ap);
    return o;
}

static bool is_obj(json_object *v)
{
    return v && json_object_is_type(v, json_type_object);
}

static const char *str_of(json_object *v)
{
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* Decimal integer text, all of it; false if malformed or out of range. */
static bool parse_int_text(const char *s, int64_t *out)
{
    const char *p = s;
    bool neg = *p == '-';
    if (neg)
        p++;
    if (*p < '0' || *p > '9')
        return false;
    uint64_t v = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (*p || v > (uint64_t)INT64_MAX)
        return false;
    *out = neg ? -(int64_t)v : (int64_t)v;
    return true;
}

/* proto3 int64: a JSON integer or a string of digits. */
static bool i64_of(json_object *v, int64_t *out)
{
    if (v && json_object_is_type(v, json_type_int)) {
        *out = json_object_get_int64(v);
        return true;
    }
    const char *s = str_of(v);
    return s && parse_int_text(s, out);
}

static int64_t i64_or(json_object *v, int64_t dflt)
{
    int64_t x;
    return i64_of(v, &x) ? x : dflt;
}

/* Copy a JSON string into dst[n]. Cut at a UTF-8 boundary when too long; returns
 * whether it fit. A missing or non-string value gives "". */
static bool copy_str(char *dst, size_t n, json_object *v)
{
    const char *s = str_of(v);
    size_t len = s ? (size_t)json_object_get_string_len(v) : 0;
    bool fits = len < n;
    if (!fits) {
        len = n - 1;
        while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
            len--;
    }
    if (len)
        memcpy(dst, s, len);
    dst[len] = '\0';
    return fits;
}

/* ---- google.rpc.Status ---- */

static void status_init(struct gem_status *st)
{
    memset(st, 0, sizeof(*st));
    st->retry_delay_ms = -1;
}

/* "37s", "5.026807431s" → milliseconds rounded up; -1 if malformed. Exact decimal
 * arithmetic: "0.007s" is 7 ms, not 8. */
static int64_t duration_text_ms(const char *s)
{
    const int64_t max_s = INT64_MAX / 1000 - 1;
    int64_t secs = 0, ms = 0;
    const char *p = s;
    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (secs > (max_s - 9) / 10)
            return -1;
        secs = secs * 10 + (*p - '0');
    }
    if (*p == '.') {
        int digits = 0;
        bool rest = false; /* non-zero digits past the millisecond */
        for (p++; *p >= '0' && *p <= '9'; p++, digits++) {
            if (digits < 3)
                ms = ms * 10 + (*p - '0');
            else
                rest = rest || *p != '0';
        }
        if (digits == 0)
            return -1;
        for (int d = digits; d < 3; d++)
            ms *= 10;
        ms += rest;
    }
    if (strcmp(p, "s") != 0)
        return -1;
    return secs * 1000 + ms;
}

/* A Duration: proto3 JSON text, or {"seconds":..,"nanos":..} as some encoders send it. */
static int64_t duration_ms(json_object *v)
{
    const char *s = str_of(v);
    if (s)
        return duration_text_ms(s);
    if (!is_obj(v))
        return -1;
    int64_t secs = i64_or(dig(v, "seconds", NULL), 0), nanos = i64_or(dig(v, "nanos", NULL), 0);
    if (secs < 0 || secs > INT64_MAX / 1000 - 1 || nanos < 0 || nanos > 999999999)
        return -1;
    return secs * 1000 + (nanos + 999999) / 1000000;
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static void parse_details(json_object *details, struct gem_status *st)
{
    if (!details || !json_object_is_type(details, json_type_array))
        return;
    size_t n = json_object_array_length(details);
    for (size_t i = 0; i < n; i++) {
        json_object *d = json_object_array_get_idx(details, i);
        const char *type = str_of(dig(d, "@type", NULL));
        if (!type)
            continue;
        if (has_suffix(type, "google.rpc.RetryInfo") && st->retry_delay_ms < 0)
            st->retry_delay_ms = duration_ms(dig(d, "retryDelay", NULL));
        else if (has_suffix(type, "google.rpc.ErrorInfo") && !st->reason[0])
            copy_str(st->reason, sizeof(st->reason), dig(d, "reason", NULL));
    }
}

/* Fill st from a Status object e (st already initialised). */
static void parse_status(json_object *e, struct gem_status *st)
{
    int64_t code = i64_or(dig(e, "code", NULL), 0);
    st->code = code > INT_MAX ? INT_MAX : code < INT_MIN ? INT_MIN : (int)code;
    copy_str(st->status, sizeof(st->status), dig(e, "status", NULL));
    copy_str(st->message, sizeof(st->message), dig(e, "message", NULL));
    parse_details(dig(e, "details", NULL), st);
}

void gem_parse_error(const char *body, size_t len, int http, struct gem_status *st)
{
    status_init(st);
    st->code = http;
    json_object *root = parse_body(body, len, NULL, 0);
    json_object *top = root;
    /* some Google front ends wrap the body in an array */
    if (top && json_object_is_type(top, json_type_array) && json_object_array_length(top) > 0)
        top = json_object_array_get_idx(top, 0);
    json_object *e = dig(top, "error", NULL);
    if (is_obj(e)) {
        parse_status(e, st);
        if (http != 0 || st->code == 0)
            st->code = http;
    } else if (str_of(e)) {
        copy_str(st->message, sizeof(st->message), e);
    }
    if (!st->message[0])
        snprintf(st->message, sizeof(st->message), "HTTP %d", http);
    json_object_put(root);
}

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
    status_init(&r->error);
}

/* A "values" array that jslim took out of the text (its reference in the slim text). */
static bool take_values(struct jslim *js, json_object *ref, struct gem_result *r, char *err,
                        size_t errlen)
{
    int64_t k = json_object_is_type(ref, json_type_int) ? json_object_get_int64(ref) : -1;
    float *v = NULL;
    int dims = 0, bad = -1;
    if (!js || k < 0 || !jslim_take(js, (size_t)k, &v, &dims, &bad)) {
        fail(err, errlen, "embedding has no values array");
        return false;
    }
    if (bad >= 0) {
        free(v);
        fail(err, errlen, "embedding value %d is not a finite number", bad);
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
    json_object *values = dig(emb, "values", NULL);
    json_object *ref = dig(emb, JSLIM_REF_KEY, NULL);
    if (!values && ref)
        return take_values(js, ref, r, err, errlen);
    if (!values || !json_object_is_type(values, json_type_array)) {
        fail(err, errlen, "embedding has no values array");
        return false;
    }
    size_t n = json_object_array_length(values);
    if (n == 0 || n > INT_MAX) {
        fail(err, errlen, "embedding has %zu values", n);
        return false;
    }
    r->values = malloc(n * sizeof(float));
    if (!r->values) {
        fail(err, errlen, "out of memory");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        json_object *v = json_object_array_get_idx(values, i);
        bool num = v && (json_object_is_type(v, json_type_double) ||
                         json_object_is_type(v, json_type_int));
        float f = num ? (float)json_object_get_double(v) : 0.0f;
        if (!num || !isfinite(f)) {
            fail(err, errlen, "embedding value %zu is not a finite number", i);
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
    if (!is_obj(item)) {
        fail(err, errlen, "result is not an object");
        return false;
    }
    const char *key = str_of(key_v);
    if (key && !(r->key = strdup(key))) {
        fail(err, errlen, "out of memory");
        return false;
    }
    json_object *e = dig(item, "error", NULL);
    json_object *resp = dig(item, "response", NULL);
    json_object *emb = dig(resp, "embedding", NULL);
    bool ok;
    if (is_obj(e)) {
        parse_status(e, &r->error);
        if (r->error.code == 0)
            r->error.code = 2; /* google.rpc.Code UNKNOWN: an error object always means failure */
        ok = true;
    } else if (emb) {
        ok = parse_embedding(emb, r, js, err, errlen);
        json_object *tc = dig(resp, "tokenCount", NULL);
        r->token_count =
            tc ? i64_or(tc, -1) : i64_or(dig(resp, "usageMetadata", "promptTokenCount", NULL), -1);
    } else {
        fail(err, errlen, "result has neither response.embedding nor error");
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
    json_object *v = dig(o, "response", name, NULL);
    if (!v)
        v = dig(o, "metadata", "output", name, NULL);
    if (!v)
        v = dig(o, "response", "output", name, NULL);
    return v;
}

static bool parse_inline(json_object *outer, struct gem_operation *op, struct jslim *js, char *err,
                         size_t errlen)
{
    /* the wire nests the list twice; a bare list is taken as well */
    json_object *arr =
        json_object_is_type(outer, json_type_array) ? outer : dig(outer, "inlinedResponses", NULL);
    if ((arr != outer && !is_obj(outer)) || (arr && !json_object_is_type(arr, json_type_array))) {
        fail(err, errlen, "inlinedResponses is not an {\"inlinedResponses\":[..]} object");
        return false;
    }
    op->has_inline = true;
    size_t n = arr ? json_object_array_length(arr) : 0; /* absent: proto3's empty list */
    if (n == 0)
        return true;
    op->results = calloc(n, sizeof(*op->results));
    if (!op->results) {
        fail(err, errlen, "out of memory");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        json_object *item = json_object_array_get_idx(arr, i);
        char why[200] = "";
        if (!parse_item(item, dig(item, "metadata", "key", NULL), &op->results[i], js, why,
                        sizeof(why))) {
            fail(err, errlen, "inline result %zu: %s", i, why);
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
    status_init(&op->error);
    json_object *md = dig(o, "metadata", NULL);
    json_object *name = dig(o, "name", NULL);
    if (!str_of(name))
        name = dig(md, "name", NULL);
    const char *nm = str_of(name);
    if (!is_obj(o) || !nm || !*nm) {
        fail(err, errlen, "not an Operation: no name");
        return false;
    }
    if (!copy_str(op->name, sizeof(op->name), name)) {
        fail(err, errlen, "operation name longer than %zu bytes", sizeof(op->name) - 1);
        return false;
    }
    copy_str(op->display_name, sizeof(op->display_name), dig(md, "displayName", NULL));
    copy_str(op->model, sizeof(op->model), dig(md, "model", NULL));
    op->state = gem_state_parse(str_of(dig(md, "state", NULL)));
    json_object *done = dig(o, "done", NULL);
    op->done =
        done && json_object_is_type(done, json_type_boolean) && json_object_get_boolean(done);
    json_object *e = dig(o, "error", NULL);
    if (is_obj(e)) {
        parse_status(e, &op->error);
        if (op->error.code == 0)
            op->error.code = 2; /* UNKNOWN */
    }
    json_object *stats = dig(md, "batchStats", NULL);
    op->request_count = i64_or(dig(stats, "requestCount", NULL), 0);
    op->successful_count = i64_or(dig(stats, "successfulRequestCount", NULL), 0);
    op->failed_count = i64_or(dig(stats, "failedRequestCount", NULL), 0);
    op->pending_count = i64_or(dig(stats, "pendingRequestCount", NULL), 0);
    if (!copy_str(op->responses_file, sizeof(op->responses_file),
                  output_member(o, "responsesFile"))) {
        fail(err, errlen, "responsesFile longer than %zu bytes", sizeof(op->responses_file) - 1);
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
        fail(err, errlen, "response is not valid JSON: %s", js->err);
        return NULL;
    }
    return parse_body(js->out.data, js->out.len, err, errlen);
}

void gem_op_stream_init(struct gem_op_stream *s)
{
    s->js = calloc(1, sizeof(*s->js));
    if (s->js)
        jslim_init(s->js, GEM_SLIM_MAX);
}

bool gem_op_stream_feed(struct gem_op_stream *s, const char *p, size_t n)
{
    return s->js && jslim_feed(s->js, p, n);
}

bool gem_op_stream_finish(struct gem_op_stream *s, struct gem_operation *op, bool *json, char *err,
                          size_t errlen)
{
    memset(op, 0, sizeof(*op));
    status_init(&op->error);
    *json = false;
    if (!s->js) {
        fail(err, errlen, "out of memory");
        return false;
    }
    json_object *o = slim_root(s->js, err, errlen);
    if (!o)
        return false;
    *json = true;
    bool ok = parse_op(o, op, s->js, true, err, errlen);
    json_object_put(o);
    return ok;
}

const char *gem_op_stream_error(const struct gem_op_stream *s, bool *limit)
{
    *limit = s->js && s->js->limit;
    if (!s->js)
        return "out of memory";
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
        status_init(&op->error);
        fail(err, errlen, "empty response body");
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
        fail(err, errlen, "out of memory");
        return false;
    }
    for (size_t i = 0; i < count; i++) {
        char why[200] = "";
        if (!parse_op(json_object_array_get_idx(arr, i), &out[i], NULL, false, why, sizeof(why))) {
            fail(err, errlen, "operations[%zu]: %s", i, why);
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
    json_object *o = parse_body(body, len, err, errlen);
    if (!o)
        return false;
    json_object *arr = dig(o, "operations", NULL);
    json_object *tok = dig(o, "nextPageToken", NULL);
    bool ok = false;
    if (!is_obj(o) || (arr && !json_object_is_type(arr, json_type_array)))
        fail(err, errlen, "not a list of operations");
    else if (tok && (!str_of(tok) || !token_len || !copy_str(next_token, token_len, tok)))
        fail(err, errlen, "nextPageToken is not a string of under %zu bytes", token_len);
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
        fail(err, errlen, "empty response body");
        return false;
    }
    struct jslim js;
    jslim_init(&js, GEM_SLIM_MAX);
    bool fed = jslim_feed(&js, line, len);
    (void)fed; /* a refusal shows in slim_root */
    json_object *o = slim_root(&js, err, errlen);
    bool ok = o && parse_item(o, dig(o, "key", NULL), r, &js, err, errlen);
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
    json_object *arr = dig(o, "embeddings", NULL);
    json_object *one = dig(o, "embedding", NULL);
    if (arr && !json_object_is_type(arr, json_type_array)) {
        fail(err, errlen, "embeddings is not an array");
        return false;
    }
    size_t count = arr ? json_object_array_length(arr) : one ? 1 : 0;
    if (count == 0) {
        fail(err, errlen, "no embeddings in the response");
        return false;
    }
    struct gem_result *out = calloc(count, sizeof(*out));
    if (!out) {
        fail(err, errlen, "out of memory");
        return false;
    }
    for (size_t i = 0; i < count; i++) {
        result_init(&out[i]);
        char why[200] = "";
        if (!parse_embedding(arr ? json_object_array_get_idx(arr, i) : one, &out[i], js, why,
                             sizeof(why))) {
            fail(err, errlen, "embeddings[%zu]: %s", i, why);
            free_results(out, i + 1);
            return false;
        }
    }
    if (!arr)
        out[0].token_count = i64_or(dig(o, "usageMetadata", "promptTokenCount", NULL), -1);
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
        fail(err, errlen, "empty response body");
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

/* ---- request bodies ----
 *
 * Every body is produced by one generator run twice over a sink: first counting
 * only, then writing into space reserved for exactly that count. The sizes that
 * gem_batch_item_size and gem_batch_overhead report come from the same
 * generators, so they match the built body byte for byte.
 */

struct sink {
    struct buf *b; /* NULL: count only */
    size_t n;      /* bytes produced */
    bool ok;
};

static void emit(struct sink *s, const char *p, size_t n)
{
    if (!s->ok || n == 0)
        return;
    if (n > SIZE_MAX - s->n || (s->b && !buf_append(s->b, p, n))) {
        s->ok = false;
        return;
    }
    s->n += n;
}

static void emit_lit(struct sink *s, const char *lit)
{
    emit(s, lit, strlen(lit));
}

/* The escape sequence for a byte that needs one (RFC 8259 §7). */
static size_t escape_byte(unsigned char c, char out[6])
{
    static const char hex[] = "0123456789abcdef";
    static const char shorts[] = {['"'] = '"',  ['\\'] = '\\', ['\b'] = 'b', ['\f'] = 'f',
                                  ['\n'] = 'n', ['\r'] = 'r',  ['\t'] = 't'};
    out[0] = '\\';
    if (c < sizeof(shorts) && shorts[c]) {
        out[1] = shorts[c];
        return 2;
    }
    out[1] = 'u';
    out[2] = '0';
    out[3] = '0';
    out[4] = hex[c >> 4];
    out[5] = hex[c & 15];
    return 6;
}

/* The inside of a JSON string literal: bytes >= 0x20 (UTF-8 included) as they are. */
static void emit_esc(struct sink *s, const char *p, size_t n)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        char e[6];
        emit(s, p + run, i - run);
        emit(s, e, escape_byte(c, e));
        run = i + 1;
    }
    emit(s, p + run, n - run);
}

static void emit_str(struct sink *s, const char *p, size_t n)
{
    emit(s, "\"", 1);
    emit_esc(s, p, n);
    emit(s, "\"", 1);
}

static void emit_cstr(struct sink *s, const char *p)
{
    emit_str(s, p, strlen(p));
}

/* EmbedContentRequest: model, content, taskType, title, outputDimensionality. */
static void emit_request(struct sink *s, const struct gem_req_opts *o, const struct gem_text *t)
{
    emit_lit(s, "{");
    if (o->model) {
        const char *m = o->model;
        if (strncmp(m, "models/", 7) == 0)
            m += 7;
        emit_lit(s, "\"model\":\"models/");
        emit_esc(s, m, strlen(m));
        emit_lit(s, "\",");
    }
    emit_lit(s, "\"content\":{\"parts\":[{\"text\":");
    emit_str(s, t->text ? t->text : "", t->text ? t->text_len : 0);
    emit_lit(s, "}]}");
    if (o->task_type) {
        emit_lit(s, ",\"taskType\":");
        emit_cstr(s, o->task_type);
    }
    if (t->title && o->task_type && strcmp(o->task_type, "RETRIEVAL_DOCUMENT") == 0) {
        emit_lit(s, ",\"title\":");
        emit_cstr(s, t->title);
    }
    if (o->dims > 0) {
        char num[48];
        int k = snprintf(num, sizeof(num), ",\"outputDimensionality\":%d", o->dims);
        emit(s, num, (size_t)k);
    }
    emit_lit(s, "}");
}

/* InlinedEmbedContentRequest: {"request":..,"metadata":{"key":..}}. */
static void emit_item(struct sink *s, const struct gem_req_opts *o, const struct gem_text *t)
{
    emit_lit(s, "{\"request\":");
    emit_request(s, o, t);
    if (t->key) {
        emit_lit(s, ",\"metadata\":{\"key\":");
        emit_cstr(s, t->key);
        emit_lit(s, "}");
    }
    emit_lit(s, "}");
}

static void emit_batch_head(struct sink *s, const char *display_name)
{
    emit_lit(s, "{\"batch\":{");
    if (display_name) {
        emit_lit(s, "\"displayName\":");
        emit_cstr(s, display_name);
        emit_lit(s, ",");
    }
    emit_lit(s, "\"inputConfig\":{\"requests\":{\"requests\":[");
}

static const char batch_tail[] = "]}}}}";

struct job {
    const char *display_name;
    const struct gem_req_opts *o;
    const struct gem_text *texts;
    size_t n;
};

static void gen_batch(struct sink *s, const struct job *j)
{
    emit_batch_head(s, j->display_name);
    for (size_t i = 0; i < j->n; i++) {
        if (i)
            emit(s, ",", 1);
        emit_item(s, j->o, &j->texts[i]);
    }
    emit_lit(s, batch_tail);
}

static void gen_sync(struct sink *s, const struct job *j)
{
    emit_lit(s, "{\"requests\":[");
    for (size_t i = 0; i < j->n; i++) {
        if (i)
            emit(s, ",", 1);
        emit_request(s, j->o, &j->texts[i]);
    }
    emit_lit(s, "]}");
}

static void gen_jsonl(struct sink *s, const struct job *j)
{
    emit_lit(s, "{");
    if (j->texts->key) {
        emit_lit(s, "\"key\":");
        emit_cstr(s, j->texts->key);
        emit_lit(s, ",");
    }
    emit_lit(s, "\"request\":");
    emit_request(s, j->o, j->texts);
    emit_lit(s, "}\n");
}

/* Count, reserve, write: all or nothing, so a refused body leaves out untouched. */
static bool build(struct buf *out, void (*gen)(struct sink *, const struct job *),
                  const struct job *j)
{
    struct sink count = {NULL, 0, true};
    gen(&count, j);
    if (!count.ok || !buf_reserve(out, count.n))
        return false;
    size_t mark = out->len;
    struct sink w = {out, 0, true};
    gen(&w, j);
    if (w.ok && w.n == count.n)
        return true;
    out->len = mark; /* cannot happen once reserved; kept for safety */
    out->data[mark] = '\0';
    return false;
}

size_t gem_batch_item_size(const struct gem_req_opts *o, const struct gem_text *t)
{
    struct sink s = {NULL, 1, true}; /* 1: the comma before it */
    emit_item(&s, o, t);
    return s.ok ? s.n : SIZE_MAX;
}

size_t gem_batch_overhead(const char *display_name)
{
    struct sink s = {NULL, 0, true};
    emit_batch_head(&s, display_name);
    emit_lit(&s, batch_tail);
    /* the first item has no comma before it, but its size counts one */
    return s.ok ? s.n - 1 : SIZE_MAX;
}

bool gem_build_batch(struct buf *out, const char *display_name, const struct gem_req_opts *o,
                     const struct gem_text *texts, size_t n)
{
    struct job j = {display_name, o, texts, n};
    return n > 0 && build(out, gen_batch, &j);
}

bool gem_build_sync(struct buf *out, const struct gem_req_opts *o, const struct gem_text *texts,
                    size_t n)
{
    struct job j = {NULL, o, texts, n};
    return n > 0 && n <= 100 && build(out, gen_sync, &j);
}

bool gem_build_jsonl_line(struct buf *out, const struct gem_req_opts *o, const struct gem_text *t)
{
    struct job j = {NULL, o, t, 1};
    return build(out, gen_jsonl, &j);
}
