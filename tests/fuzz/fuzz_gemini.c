/* fuzz_gemini.c: libFuzzer target for the Gemini codec (service/gemini/request.h, response.h,
 * status.h). The first byte picks the function (its value mod 6): 0 an Operation, 1 a list, 2 an
 * error body, 3 a line of a responsesFile, 4 a sync response, 5 the request builders (built,
 * re-parsed and compared). */
#include "gemini/request.h"
#include "gemini/response.h"
#include "gemini/status.h"

#include "chunker/chunker.h"
#include "models.h"

#include <json-c/json.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_gemini: check failed: %s (line %d)\n", #cond, __LINE__);         \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define TERMINATED(a) (memchr((a), '\0', sizeof(a)) != NULL)

static void check_status(const struct gem_status *st)
{
    CHECK(TERMINATED(st->status) && TERMINATED(st->message) && TERMINATED(st->reason));
    CHECK(st->retry_delay_ms >= -1);
}

/* A parsed result holds an embedding or an error, never both or neither. */
static void check_result(const struct gem_result *r)
{
    check_status(&r->error);
    if (r->error.code != 0) {
        CHECK(r->values == NULL && r->dims == 0);
        return;
    }
    CHECK(r->values != NULL && r->dims > 0);
    for (int i = 0; i < r->dims; i++)
        CHECK(isfinite(r->values[i]));
}

static void check_op(const struct gem_operation *op, bool results)
{
    CHECK(TERMINATED(op->name) && op->name[0]);
    CHECK(TERMINATED(op->display_name) && TERMINATED(op->model));
    CHECK(TERMINATED(op->responses_file));
    CHECK(op->state >= GEM_STATE_UNSPECIFIED && op->state <= GEM_STATE_EXPIRED);
    CHECK(gem_state_parse(gem_state_name(op->state)) == op->state);
    check_status(&op->error);
    CHECK((op->n_results == 0) == (op->results == NULL));
    CHECK(op->has_inline || op->n_results == 0);
    CHECK(results || !op->has_inline);
    for (size_t i = 0; i < op->n_results; i++)
        check_result(&op->results[i]);
}

/* The same body fed to gem_op_stream in pieces of `piece` bytes must parse the same. */
static void same_in_pieces(const char *body, size_t len, size_t piece, bool whole_ok,
                           const struct gem_operation *whole)
{
    struct gem_op_stream st;
    struct gem_operation op;
    char err[256] = "";
    bool json;
    gem_op_stream_init(&st);
    for (size_t i = 0; i < len; i += piece)
        if (!gem_op_stream_feed(&st, body + i, len - i < piece ? len - i : piece))
            break;
    bool ok = gem_op_stream_finish(&st, &op, &json, err, sizeof(err));
    gem_op_stream_cleanup(&st);
    CHECK(ok == whole_ok);
    if (ok) {
        CHECK(strcmp(op.name, whole->name) == 0 && op.state == whole->state);
        CHECK(op.n_results == whole->n_results && op.has_inline == whole->has_inline);
        for (size_t i = 0; i < op.n_results; i++) {
            const struct gem_result *a = &op.results[i], *b = &whole->results[i];
            CHECK(a->dims == b->dims && a->error.code == b->error.code);
            CHECK(a->dims == 0 || memcmp(a->values, b->values, (size_t)a->dims * 4) == 0);
            CHECK((a->key == NULL) == (b->key == NULL) && (!a->key || !strcmp(a->key, b->key)));
        }
    }
    gem_operation_free(&op);
}

static void fuzz_operation(const char *body, size_t len)
{
    struct gem_operation op;
    char err[256] = "";
    bool ok = gem_parse_operation(body, len, &op, err, sizeof(err));
    if (ok) {
        check_op(&op, true);
    } else {
        CHECK(TERMINATED(err) && err[0]);
        CHECK(op.results == NULL && op.n_results == 0);
    }
    if (len > 0)
        same_in_pieces(body, len, 1 + len % 7, ok, &op);
    gem_operation_free(&op);
}

static void fuzz_list(const char *body, size_t len)
{
    struct gem_operation *ops = (struct gem_operation *)1;
    size_t n = 7;
    char token[64];
    char err[256] = "";
    if (gem_parse_list(body, len, &ops, &n, token, sizeof(token), err, sizeof(err))) {
        CHECK((n == 0) == (ops == NULL));
        CHECK(TERMINATED(token));
        for (size_t i = 0; i < n; i++)
            check_op(&ops[i], false);
    } else {
        CHECK(TERMINATED(err) && err[0]);
        CHECK(ops == NULL && n == 0 && token[0] == '\0');
    }
    for (size_t i = 0; i < n; i++)
        gem_operation_free(&ops[i]);
    free(ops);
}

static void fuzz_error(const char *body, size_t len, int http)
{
    struct gem_status st;
    gem_parse_error(body, len, http, &st);
    check_status(&st);
    CHECK(st.message[0]);
    if (http != 0)
        CHECK(st.code == http);
}

static void fuzz_result_line(const char *body, size_t len)
{
    struct gem_result r;
    char err[256] = "";
    if (gem_parse_result_line(body, len, &r, err, sizeof(err))) {
        check_result(&r);
    } else {
        CHECK(TERMINATED(err) && err[0]);
        CHECK(r.key == NULL && r.values == NULL && r.dims == 0);
    }
    gem_result_free(&r);
}

static void fuzz_sync(const char *body, size_t len)
{
    struct gem_result *rs = (struct gem_result *)1;
    size_t n = 7;
    char err[256] = "";
    if (gem_parse_sync(body, len, &rs, &n, err, sizeof(err))) {
        CHECK(n >= 1 && rs != NULL);
        for (size_t i = 0; i < n; i++) {
            CHECK(rs[i].key == NULL && rs[i].error.code == 0);
            check_result(&rs[i]);
        }
    } else {
        CHECK(TERMINATED(err) && err[0]);
        CHECK(rs == NULL && n == 0);
    }
    for (size_t i = 0; i < n; i++)
        gem_result_free(&rs[i]);
    free(rs);
}

/* ---- builders ---- */

enum { MAX_TEXTS = 8 }; /* more texts only cost time: they take the same paths */

/* The texts of a builder input: pieces separated by 0xFF (never in UTF-8); the first piece
 * is the display name (none when empty), each further one a text with, after a 0xFE, its
 * title. Strings are copied out so that each is NUL-terminated. */
struct texts {
    char *display_name;
    struct gem_text t[MAX_TEXTS];
    char *owned[2 * MAX_TEXTS + 1];
    size_t n, n_owned;
};

static char *dup_n(struct texts *ts, const char *p, size_t n)
{
    char *s = malloc(n + 1);
    CHECK(s != NULL);
    memcpy(s, p, n);
    s[n] = '\0';
    ts->owned[ts->n_owned++] = s;
    return s;
}

static void texts_free(struct texts *ts)
{
    for (size_t i = 0; i < ts->n_owned; i++)
        free(ts->owned[i]);
}

/* False when the input does not make a usable set (invalid UTF-8, NUL in a title). */
static bool texts_split(const char *p, size_t len, struct texts *ts)
{
    static char keys[MAX_TEXTS][16];
    memset(ts, 0, sizeof(*ts));
    size_t i = 0, piece = 0;
    while (i <= len && ts->n < MAX_TEXTS) {
        const char *end = memchr(p + i, 0xFF, len - i);
        size_t n = end ? (size_t)(end - (p + i)) : len - i;
        const char *s = p + i;
        const char *sep = memchr(s, 0xFE, n);
        size_t tn = sep ? (size_t)(sep - s) : n;
        if (!utf8_valid(s, tn) || (sep && !utf8_valid(sep + 1, n - tn - 1)))
            return false;
        if (piece == 0) {
            if (sep || memchr(s, '\0', n))
                return false;
            ts->display_name = n ? dup_n(ts, s, n) : NULL;
        } else {
            struct gem_text *t = &ts->t[ts->n];
            snprintf(keys[ts->n], sizeof(keys[ts->n]), "k\"%zu\\", ts->n);
            t->key = keys[ts->n];
            t->text = dup_n(ts, s, tn);
            t->text_len = tn;
            if (sep) {
                if (memchr(sep + 1, '\0', n - tn - 1))
                    return false;
                t->title = dup_n(ts, sep + 1, n - tn - 1);
            }
            ts->n++;
        }
        piece++;
        i += n + 1;
    }
    return true;
}

static json_object *parse_strict(const char *s, size_t len)
{
    struct json_tokener *tok = json_tokener_new_ex(64);
    CHECK(tok != NULL);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *o = json_tokener_parse_ex(tok, s, (int)len);
    bool whole = json_tokener_get_error(tok) == json_tokener_success &&
                 json_tokener_get_parse_end(tok) == len;
    json_tokener_free(tok);
    CHECK(o != NULL && whole);
    return o;
}

static json_object *get(json_object *o, const char *name)
{
    json_object *v = NULL;
    CHECK(json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, name, &v));
    return v;
}

static void check_str_eq(json_object *v, const char *s, size_t n)
{
    CHECK(json_object_is_type(v, json_type_string));
    CHECK((size_t)json_object_get_string_len(v) == n);
    CHECK(memcmp(json_object_get_string(v), s, n) == 0);
}

/* An EmbedContentRequest as built for t with o: for gemini-embedding-001 the text as it is with
 * the taskType and title fields; for gemini-embedding-2 (its task in the prompt) the instruction
 * of models_prompt_head (the title, or "none", in a document's) then the text, and neither
 * field. */
static void check_request(json_object *req, const struct gem_req_opts *o, const struct gem_text *t)
{
    const char *name = o->model;
    if (name && strncmp(name, "models/", 7) == 0)
        name += 7;
    const struct model_facts *m = models_find(name);
    bool prompt = m && m->task == MODEL_TASK_PROMPT;
    json_object *parts = get(get(req, "content"), "parts");
    CHECK(json_object_is_type(parts, json_type_array) && json_object_array_length(parts) == 1);
    json_object *text = get(json_object_array_get_idx(parts, 0), "text");
    if (prompt) {
        size_t tl = t->title ? strlen(t->title) : 0, cap = tl + 128;
        char *head = malloc(cap);
        CHECK(head != NULL);
        size_t hn = models_prompt_head(m, o->task_type, t->title, tl, head, cap);
        CHECK(hn != SIZE_MAX);
        CHECK(json_object_is_type(text, json_type_string));
        CHECK((size_t)json_object_get_string_len(text) == hn + t->text_len);
        CHECK(memcmp(json_object_get_string(text), head, hn) == 0);
        CHECK(memcmp(json_object_get_string(text) + hn, t->text, t->text_len) == 0);
        if (o->task_type && strcmp(o->task_type, "RETRIEVAL_DOCUMENT") == 0)
            CHECK(strncmp(head, "title: ", 7) == 0);
        free(head);
    } else {
        check_str_eq(text, t->text, t->text_len);
    }
    json_object *title = NULL;
    bool has_title = json_object_object_get_ex(req, "title", &title);
    bool want_title =
        !prompt && t->title && o->task_type && strcmp(o->task_type, "RETRIEVAL_DOCUMENT") == 0;
    CHECK(has_title == want_title);
    if (want_title)
        check_str_eq(title, t->title, strlen(t->title));
    CHECK(json_object_object_get_ex(req, "taskType", NULL) == (!prompt && o->task_type));
    if (!prompt && o->task_type)
        check_str_eq(get(req, "taskType"), o->task_type, strlen(o->task_type));
    if (o->dims > 0)
        CHECK(json_object_get_int(get(req, "outputDimensionality")) == o->dims);
    if (o->model) {
        char want[64];
        int n = snprintf(want, sizeof(want), "models/%s", name);
        check_str_eq(get(req, "model"), want, (size_t)n);
    }
}

static void check_batch(const struct texts *ts, const struct gem_req_opts *o)
{
    struct buf b;
    buf_init(&b, (size_t)1 << 24);
    CHECK(gem_build_batch(&b, ts->display_name, o, ts->t, ts->n));
    /* the size functions predict the body byte for byte */
    size_t want = gem_batch_overhead(ts->display_name);
    for (size_t i = 0; i < ts->n; i++)
        want += gem_batch_item_size(o, &ts->t[i]);
    CHECK(b.len == want && strlen(b.data) == b.len);
    json_object *root = parse_strict(b.data, b.len);
    json_object *batch = get(root, "batch");
    if (ts->display_name)
        check_str_eq(get(batch, "displayName"), ts->display_name, strlen(ts->display_name));
    json_object *items = get(get(get(batch, "inputConfig"), "requests"), "requests");
    CHECK(json_object_is_type(items, json_type_array) && json_object_array_length(items) == ts->n);
    for (size_t i = 0; i < ts->n; i++) {
        json_object *item = json_object_array_get_idx(items, i);
        check_request(get(item, "request"), o, &ts->t[i]);
        check_str_eq(get(get(item, "metadata"), "key"), ts->t[i].key, strlen(ts->t[i].key));
    }
    json_object_put(root);
    /* all or nothing: one byte short leaves the buffer as it was */
    struct buf small;
    buf_init(&small, b.len);
    CHECK(buf_putc(&small, '['));
    CHECK(!gem_build_batch(&small, ts->display_name, o, ts->t, ts->n));
    CHECK(small.len == 1 && small.data[0] == '[' && small.data[1] == '\0');
    buf_cleanup(&small);
    buf_cleanup(&b);
}

static void check_sync(const struct texts *ts, const struct gem_req_opts *o)
{
    struct buf b;
    buf_init(&b, (size_t)1 << 24);
    CHECK(gem_build_sync(&b, o, ts->t, ts->n));
    json_object *root = parse_strict(b.data, b.len);
    json_object *reqs = get(root, "requests");
    CHECK(json_object_is_type(reqs, json_type_array) && json_object_array_length(reqs) == ts->n);
    for (size_t i = 0; i < ts->n; i++)
        check_request(json_object_array_get_idx(reqs, i), o, &ts->t[i]);
    json_object_put(root);
    /* more than 100 texts are refused, leaving the buffer as it was */
    struct gem_text many[101];
    for (size_t i = 0; i < 101; i++)
        many[i] = ts->t[i % ts->n];
    size_t len = b.len;
    CHECK(!gem_build_sync(&b, o, many, 101));
    CHECK(b.len == len);
    buf_cleanup(&b);
}

static void check_jsonl(const struct texts *ts, const struct gem_req_opts *o)
{
    struct buf b;
    buf_init(&b, (size_t)1 << 24);
    for (size_t i = 0; i < ts->n; i++) {
        size_t at = b.len;
        CHECK(gem_build_jsonl_line(&b, o, &ts->t[i]));
        /* one line: the newline is the last byte and the only one */
        const char *line = b.data + at;
        size_t n = b.len - at;
        CHECK(n >= 2 && line[n - 1] == '\n' && memchr(line, '\n', n - 1) == NULL);
        json_object *root = parse_strict(line, n - 1);
        check_str_eq(get(root, "key"), ts->t[i].key, strlen(ts->t[i].key));
        check_request(get(root, "request"), o, &ts->t[i]);
        json_object_put(root);
    }
    buf_cleanup(&b);
}

static void fuzz_builders(const char *p, size_t len)
{
    static const char *const models[] = {"gemini-embedding-001", "models/gemini-embedding-001",
                                         "gemini-embedding-2", "models/gemini-embedding-2", NULL};
    static const char *const tasks[] = {"RETRIEVAL_DOCUMENT", "RETRIEVAL_QUERY", "CLUSTERING",
                                        NULL};
    if (len < 1)
        return;
    unsigned char sel = (unsigned char)p[0];
    struct gem_req_opts o = {models[sel % 5], tasks[(sel / 5) % 4], (sel / 20) % 2 ? 768 : 0};
    struct texts ts;
    if (texts_split(p + 1, len - 1, &ts) && ts.n > 0) {
        check_batch(&ts, &o);
        check_sync(&ts, &o);
        check_jsonl(&ts, &o);
    }
    texts_free(&ts);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int https[] = {429, 400, 500, 503, 0, 404, 403, 200};
    if (size < 1)
        return 0;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    switch (data[0] % 6) {
    case 0:
        fuzz_operation(body, len);
        break;
    case 1:
        fuzz_list(body, len);
        break;
    case 2:
        fuzz_error(body, len, https[(data[0] / 6) % 8]);
        break;
    case 3:
        fuzz_result_line(body, len);
        break;
    case 4:
        fuzz_sync(body, len);
        break;
    default:
        fuzz_builders(body, len);
        break;
    }
    return 0;
}
