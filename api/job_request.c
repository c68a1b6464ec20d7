/* job_request.c: validation of job creation requests (see job_request.h). */
#include "job_request.h"

#include "json_strict.h"

#include "chunker/chunker.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool fail(struct job_req_error *e, int status, const char *code, const char *pointer,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static bool fail(struct job_req_error *e, int status, const char *code, const char *pointer,
                 const char *fmt, ...)
{
    va_list ap;
    e->status = status;
    snprintf(e->code, sizeof(e->code), "%s", code);
    snprintf(e->pointer, sizeof(e->pointer), "%s", pointer);
    va_start(ap, fmt);
    vsnprintf(e->detail, sizeof(e->detail), fmt, ap);
    va_end(ap);
    return false;
}

static const char *type_name(enum json_type t)
{
    switch (t) {
    case json_type_null:
        return "null";
    case json_type_boolean:
        return "a boolean";
    case json_type_double:
        return "a fractional number";
    case json_type_int:
        return "an integer";
    case json_type_object:
        return "an object";
    case json_type_array:
        return "an array";
    case json_type_string:
        return "a string";
    }
    return "something else";
}

static bool want_type(json_object *v, enum json_type t, const char *what, const char *ptr,
                      struct job_req_error *e)
{
    if (json_object_is_type(v, t))
        return true;
    return job_request_err_type(e, ptr, what, json_object_get_type(v));
}

bool job_request_err_type(struct job_req_error *e, const char *ptr, const char *what,
                          enum json_type have)
{
    return fail(e, 400, "invalid_type", ptr, "%s must be %s, not %s", ptr, what, type_name(have));
}

bool job_request_err_oom(struct job_req_error *e)
{
    return fail(e, 503, "out_of_memory", "", "the server is out of memory");
}

bool job_request_err_utf8(struct job_req_error *e)
{
    return fail(e, 400, "invalid_json", "", "the body is not valid UTF-8");
}

bool job_request_err_syntax(struct job_req_error *e, const char *why)
{
    return fail(e, 400, "invalid_json", "", "the body is not valid JSON: %s", why);
}

bool job_request_err_no_documents(struct job_req_error *e)
{
    return fail(e, 400, "missing_field", "/documents", "/documents is required");
}

bool job_request_check_count(size_t n, struct job_req_error *e)
{
    if (n == 0)
        return fail(e, 422, "no_documents", "/documents", "/documents must not be empty");
    if (n > JOB_MAX_DOCUMENTS)
        return fail(e, 422, "too_many_documents", "/documents",
                    "/documents has %zu entries; at most %d are accepted per job", n,
                    JOB_MAX_DOCUMENTS);
    return true;
}

bool job_request_err_duplicate(struct job_req_error *e, const char *id, size_t id_len, size_t index,
                               size_t first)
{
    char p[64];
    snprintf(p, sizeof(p), "/documents/%zu/id", index);
    return fail(e, 422, "duplicate_id", p, "document id \"%.*s\" is also used by /documents/%zu",
                (int)(id_len > 60 ? 60 : id_len), id, first);
}

/* Only the listed members may appear in o. */
static bool only_known(json_object *o, const char *const *names, const char *base,
                       struct job_req_error *e)
{
    json_object_object_foreach(o, key, val)
    {
        (void)val;
        bool ok = false;
        for (size_t i = 0; names[i] && !ok; i++)
            ok = strcmp(key, names[i]) == 0;
        if (!ok) {
            char ptr[96];
            snprintf(ptr, sizeof(ptr), "%s/%.60s", base, key);
            return fail(e, 400, "unknown_field", ptr, "unrecognized field \"%.60s\"", key);
        }
    }
    return true;
}

/* An optional integer member within [lo, hi]; *out keeps its default when absent. */
static bool opt_int(json_object *o, const char *name, const char *ptr, int lo, int hi, int *out,
                    struct job_req_error *e)
{
    json_object *v;
    if (!json_object_object_get_ex(o, name, &v) || json_object_is_type(v, json_type_null))
        return true;
    if (!want_type(v, json_type_int, "an integer", ptr, e))
        return false;
    int64_t x = json_object_get_int64(v);
    if (x < lo || x > hi)
        return fail(e, 422, "out_of_range", ptr, "%s must be between %d and %d, got %lld", ptr, lo,
                    hi, (long long)x);
    *out = (int)x;
    return true;
}

static bool opt_string(json_object *o, const char *name, const char *ptr, size_t max,
                       const char **out, size_t *len, struct job_req_error *e)
{
    json_object *v;
    if (!json_object_object_get_ex(o, name, &v) || json_object_is_type(v, json_type_null))
        return true;
    if (!want_type(v, json_type_string, "a string", ptr, e))
        return false;
    size_t n = (size_t)json_object_get_string_len(v);
    const char *s = json_object_get_string(v);
    if (n > max)
        return fail(e, 422, "too_long", ptr, "%s is longer than %zu bytes", ptr, max);
    if (memchr(s, '\0', n))
        return fail(e, 422, "invalid_text", ptr, "%s contains a NUL character", ptr);
    *out = s;
    if (len)
        *len = n;
    return true;
}

static bool one_of(const char *s, const char *const *allowed)
{
    for (size_t i = 0; allowed[i]; i++)
        if (strcmp(s, allowed[i]) == 0)
            return true;
    return false;
}

static bool parse_options(json_object *root, struct job_request *r, struct job_req_error *e)
{
    static const char *const models[] = {"gemini-embedding-001", NULL};
    static const char *const sync_only[] = {"text-embedding-004", "embedding-001", NULL};
    static const char *const tasks[] = {
        "RETRIEVAL_DOCUMENT", "RETRIEVAL_QUERY",      "SEMANTIC_SIMILARITY",
        "CLASSIFICATION",     "CLUSTERING",           "QUESTION_ANSWERING",
        "FACT_VERIFICATION",  "CODE_RETRIEVAL_QUERY", NULL};
    static const char *const chunk_keys[] = {"max_chars", "overlap_chars", NULL};
    if (!opt_string(root, "display_name", "/display_name", JOB_MAX_NAME_BYTES, &r->display_name,
                    NULL, e) ||
        !opt_string(root, "model", "/model", 100, &r->model, NULL, e) ||
        !opt_string(root, "task_type", "/task_type", 100, &r->task_type, NULL, e) ||
        !opt_int(root, "output_dimensionality", "/output_dimensionality", 128, 3072,
                 &r->output_dimensionality, e) ||
        !opt_int(root, "priority", "/priority", -1000, 1000, &r->priority, e))
        return false;
    if (one_of(r->model, sync_only))
        return fail(e, 422, "model_not_supported", "/model",
                    "model \"%s\" has no batch support; use gemini-embedding-001", r->model);
    if (!one_of(r->model, models))
        return fail(e, 422, "unknown_model", "/model", "unknown model \"%.60s\"", r->model);
    if (!one_of(r->task_type, tasks))
        return fail(e, 422, "unknown_task_type", "/task_type", "unknown task type \"%.60s\"",
                    r->task_type);
    json_object *v;
    if (json_object_object_get_ex(root, "normalize", &v) &&
        !json_object_is_type(v, json_type_null)) {
        if (!want_type(v, json_type_boolean, "a boolean", "/normalize", e))
            return false;
        r->normalize = json_object_get_boolean(v);
    }
    if (json_object_object_get_ex(root, "chunking", &v) &&
        !json_object_is_type(v, json_type_null)) {
        if (!want_type(v, json_type_object, "an object", "/chunking", e) ||
            !only_known(v, chunk_keys, "/chunking", e) ||
            !opt_int(v, "max_chars", "/chunking/max_chars", 100, 8000, &r->max_chars, e) ||
            !opt_int(v, "overlap_chars", "/chunking/overlap_chars", 0, 4000, &r->overlap_chars, e))
            return false;
        if (r->overlap_chars * 2 > r->max_chars)
            return fail(e, 422, "out_of_range", "/chunking/overlap_chars",
                        "overlap_chars (%d) must be at most half of max_chars (%d)",
                        r->overlap_chars, r->max_chars);
    }
    return true;
}

/* Strings inside metadata must not hold NUL (kept out of the database's text, as for texts). */
static bool metadata_ok(json_object *v, int depth)
{
    if (depth > 32)
        return false;
    if (json_object_is_type(v, json_type_string))
        return !memchr(json_object_get_string(v), '\0', (size_t)json_object_get_string_len(v));
    if (json_object_is_type(v, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(v); i++)
            if (!metadata_ok(json_object_array_get_idx(v, i), depth + 1))
                return false;
    } else if (json_object_is_type(v, json_type_object)) {
        json_object_object_foreach(v, k, val)
        {
            (void)k;
            if (!metadata_ok(val, depth + 1))
                return false;
        }
    }
    return true;
}

static bool blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r' && s[i] != '\f' &&
            s[i] != '\v')
            return false;
    return true;
}

static bool parse_doc(json_object *d, size_t i, struct job_doc *out, struct job_req_error *e)
{
    static const char *const keys[] = {"id", "text", "title", "metadata", NULL};
    char base[48], p[96];
    snprintf(base, sizeof(base), "/documents/%zu", i);
    if (!want_type(d, json_type_object, "an object", base, e) || !only_known(d, keys, base, e))
        return false;
    snprintf(p, sizeof(p), "%s/id", base);
    if (!opt_string(d, "id", p, JOB_MAX_ID_BYTES, &out->id, &out->id_len, e))
        return false;
    if (!out->id || out->id_len == 0)
        return fail(e, 422, "missing_field", p, "%s is required and must not be empty", p);
    snprintf(p, sizeof(p), "%s/text", base);
    if (!opt_string(d, "text", p, SIZE_MAX, &out->text, &out->text_len, e))
        return false;
    if (!out->text || blank(out->text, out->text_len))
        return fail(e, 422, "empty_text", p, "%s is required and must not be empty", p);
    snprintf(p, sizeof(p), "%s/title", base);
    if (!opt_string(d, "title", p, JOB_MAX_TITLE_BYTES, &out->title, &out->title_len, e))
        return false;
    json_object *md;
    snprintf(p, sizeof(p), "%s/metadata", base);
    if (json_object_object_get_ex(d, "metadata", &md) && !json_object_is_type(md, json_type_null)) {
        if (!want_type(md, json_type_object, "an object", p, e))
            return false;
        if (!metadata_ok(md, 0))
            return fail(e, 422, "invalid_metadata", p, "%s holds a NUL character", p);
        out->metadata_json = json_object_to_json_string_ext(md, JSON_C_TO_STRING_PLAIN |
                                                                    JSON_C_TO_STRING_NOSLASHESCAPE);
        if (strlen(out->metadata_json) > JOB_MAX_METADATA_JSON)
            return fail(e, 422, "too_long", p, "%s is larger than %d bytes as JSON", p,
                        JOB_MAX_METADATA_JSON);
    }
    return true;
}

static int cmp_doc_id(const void *a, const void *b)
{
    const struct job_doc *x = *(const struct job_doc *const *)a;
    const struct job_doc *y = *(const struct job_doc *const *)b;
    size_t n = x->id_len < y->id_len ? x->id_len : y->id_len;
    int c = memcmp(x->id, y->id, n);
    if (c)
        return c;
    if (x->id_len != y->id_len)
        return x->id_len < y->id_len ? -1 : 1;
    return x < y ? -1 : (x > y); /* ties: document order */
}

/* The first document (in document order) whose id an earlier one has, as a
 * stream of documents finds it (jobs_ingest_add, job_stream.h). */
static bool check_unique_ids(struct job_request *r, struct job_req_error *e)
{
    const struct job_doc **idx = malloc(r->n_docs * sizeof(*idx));
    if (!idx)
        return job_request_err_oom(e);
    for (size_t i = 0; i < r->n_docs; i++)
        idx[i] = &r->docs[i];
    qsort(idx, r->n_docs, sizeof(*idx), cmp_doc_id);
    size_t later = SIZE_MAX, first = 0;
    for (size_t i = 1; i < r->n_docs; i++) {
        /* in a run of equal ids (sorted by position), the second is its first repeat */
        bool same = idx[i]->id_len == idx[i - 1]->id_len &&
                    memcmp(idx[i]->id, idx[i - 1]->id, idx[i]->id_len) == 0;
        bool second = same && (i < 2 || idx[i - 2]->id_len != idx[i - 1]->id_len ||
                               memcmp(idx[i - 2]->id, idx[i - 1]->id, idx[i - 1]->id_len) != 0);
        if (second && (size_t)(idx[i] - r->docs) < later) {
            later = (size_t)(idx[i] - r->docs);
            first = (size_t)(idx[i - 1] - r->docs);
        }
    }
    free(idx);
    if (later == SIZE_MAX)
        return true;
    const struct job_doc *d = &r->docs[later];
    return job_request_err_duplicate(e, d->id, d->id_len, later, first);
}

static void set_defaults(struct job_request *r, struct job_req_error *e)
{
    memset(r, 0, sizeof(*r));
    memset(e, 0, sizeof(*e));
    r->model = "gemini-embedding-001";
    r->task_type = "RETRIEVAL_DOCUMENT";
    r->output_dimensionality = 768;
    r->normalize = true;
    r->max_chars = CHUNK_DEFAULT_MAX_CHARS;
    r->overlap_chars = CHUNK_DEFAULT_OVERLAP_CHARS;
}

/* Parse body as exactly one JSON value (surrounding whitespace allowed) into
 * *root. trusted: body is known to be valid UTF-8 and RFC 8259 JSON (checked
 * by json_stream.h), which skips those checks. */
static bool parse_json(const char *body, size_t len, bool trusted, json_object **root,
                       struct job_req_error *e)
{
    *root = NULL;
    /* JSON_TOKENER_VALIDATE_UTF8 (json-c 0.16) lets overlong forms, surrogates and code points
     * past U+10FFFF through, which the chunker and PostgreSQL's UTF8 text then choke on (found
     * by tests/fuzz/fuzz_job_request): the body must be strictly valid UTF-8 (RFC 8259 §8.1). */
    if (!trusted && !utf8_valid(body, len))
        return job_request_err_utf8(e);
    /* json-c accepts single quotes and raw control characters, and drops what
     * follows \u0000 in member names: an RFC 8259 check first (json_strict.h) */
    struct json_strict_error je;
    if (!trusted && !json_strict_check(body, len, JOB_MAX_DEPTH, &je))
        return job_request_err_syntax(e, je.message);
    if (len > INT32_MAX) /* json_tokener_parse_ex takes an int */
        return job_request_err_syntax(e, "a JSON value larger than 2 GiB");
    struct json_tokener *tok = json_tokener_new_ex(JOB_MAX_DEPTH);
    if (!tok)
        return job_request_err_oom(e);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | (trusted ? 0 : JSON_TOKENER_VALIDATE_UTF8));
    *root = json_tokener_parse_ex(tok, body, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (jerr != json_tokener_success) { /* a NULL *root with success is JSON's null */
        json_object_put(*root);
        *root = NULL;
        return job_request_err_syntax(e, jerr == json_tokener_continue
                                             ? "unexpected end of input"
                                             : json_tokener_error_desc(jerr));
    }
    while (end < len &&
           (body[end] == ' ' || body[end] == '\n' || body[end] == '\r' || body[end] == '\t'))
        end++;
    if (end != len) {
        json_object_put(*root);
        *root = NULL;
        return fail(e, 400, "invalid_json", "", "the body has data after the JSON value");
    }
    return true;
}

bool job_request_parse(const char *body, size_t len, struct job_request *r, struct job_req_error *e)
{
    static const char *const keys[] = {
        "documents", "display_name", "model",    "task_type", "output_dimensionality",
        "priority",  "normalize",    "chunking", NULL};
    set_defaults(r, e);
    if (!parse_json(body, len, false, &r->root, e))
        return false;
    bool ok = want_type(r->root, json_type_object, "an object", "", e) &&
              only_known(r->root, keys, "", e) && parse_options(r->root, r, e);
    json_object *docs = NULL;
    if (ok && !json_object_object_get_ex(r->root, "documents", &docs))
        ok = job_request_err_no_documents(e);
    if (ok)
        ok = want_type(docs, json_type_array, "an array", "/documents", e);
    size_t n = ok ? json_object_array_length(docs) : 0;
    if (ok)
        ok = job_request_check_count(n, e);
    if (ok && !(r->docs = calloc(n, sizeof(*r->docs))))
        ok = job_request_err_oom(e);
    for (size_t i = 0; ok && i < n; i++)
        ok = parse_doc(json_object_array_get_idx(docs, i), i, &r->docs[i], e);
    r->n_docs = ok ? n : 0;
    if (ok)
        ok = check_unique_ids(r, e);
    if (!ok)
        job_request_free(r);
    return ok;
}

bool job_request_parse_options(const char *line, size_t len, struct job_request *r,
                               struct job_req_error *e)
{
    static const char *const keys[] = {
        "display_name", "model",     "task_type", "output_dimensionality",
        "priority",     "normalize", "chunking",  NULL};
    set_defaults(r, e);
    if (!parse_json(line, len, false, &r->root, e))
        return false;
    bool ok = want_type(r->root, json_type_object, "an object", "", e) &&
              only_known(r->root, keys, "", e) && parse_options(r->root, r, e);
    if (!ok)
        job_request_free(r);
    return ok;
}

static bool parse_doc_line(const char *line, size_t len, bool trusted, size_t index,
                           struct job_doc_line *out, struct job_req_error *e)
{
    char base[48];
    memset(out, 0, sizeof(*out));
    memset(e, 0, sizeof(*e));
    if (!parse_json(line, len, trusted, &out->root, e)) {
        snprintf(base, sizeof(base), "/documents/%zu", index);
        snprintf(e->pointer, sizeof(e->pointer), "%s", base);
        return false;
    }
    if (!parse_doc(out->root, index, &out->doc, e)) {
        job_doc_line_free(out);
        return false;
    }
    return true;
}

bool job_request_parse_doc(const char *line, size_t len, size_t index, struct job_doc_line *out,
                           struct job_req_error *e)
{
    return parse_doc_line(line, len, false, index, out, e);
}

bool job_request_parse_doc_trusted(const char *json, size_t len, size_t index,
                                   struct job_doc_line *out, struct job_req_error *e)
{
    return parse_doc_line(json, len, true, index, out, e);
}

void job_doc_line_free(struct job_doc_line *d)
{
    json_object_put(d->root);
    memset(d, 0, sizeof(*d));
}

void job_request_free(struct job_request *r)
{
    free(r->docs);
    json_object_put(r->root);
    memset(r, 0, sizeof(*r));
}
