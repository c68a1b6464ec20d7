/* jsonv.c: validation of parsed JSON request members, and the embedding space (see jsonv.h). */
#include "jsonv.h"

#include "json_strict.h"

#include "chunker/chunker.h"
#include "models.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

bool jsonv_fail(struct job_req_error *e, int status, const char *code, const char *pointer,
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

bool jsonv_parse(const char *body, size_t len, int max_depth, json_object **root,
                 struct job_req_error *e)
{
    *root = NULL;
    /* JSON_TOKENER_VALIDATE_UTF8 (json-c 0.16) lets overlong forms, surrogates and code points
     * past U+10FFFF through, which the chunker and PostgreSQL's UTF8 text then choke on (found
     * by tests/fuzz/fuzz_job_request): the body must be strictly valid UTF-8 (RFC 8259 §8.1). */
    if (!utf8_valid(body, len))
        return jsonv_fail(e, 400, "invalid_json", "", "the body is not valid UTF-8");
    /* json-c accepts single quotes and raw control characters, and drops what
     * follows \u0000 in member names: an RFC 8259 check first (json_strict.h) */
    struct json_strict_error je;
    if (!json_strict_check(body, len, max_depth, &je))
        return jsonv_fail(e, 400, "invalid_json", "", "the body is not valid JSON: %s", je.message);
    struct json_tokener *tok = json_tokener_new_ex(max_depth);
    if (!tok)
        return jsonv_fail(e, 503, "out_of_memory", "", "the server is out of memory");
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    *root = len > INT32_MAX ? NULL : json_tokener_parse_ex(tok, body, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (!*root || jerr != json_tokener_success) {
        json_object_put(*root);
        *root = NULL;
        return jsonv_fail(e, 400, "invalid_json", "", "the body is not valid JSON: %s",
                          jerr == json_tokener_continue ? "unexpected end of input"
                                                        : json_tokener_error_desc(jerr));
    }
    while (end < len &&
           (body[end] == ' ' || body[end] == '\n' || body[end] == '\r' || body[end] == '\t'))
        end++;
    if (end != len) {
        json_object_put(*root);
        *root = NULL;
        return jsonv_fail(e, 400, "invalid_json", "", "the body has data after the JSON value");
    }
    return true;
}

const char *jsonv_type_name(json_object *v)
{
    return jsonv_type_word(json_object_get_type(v));
}

const char *jsonv_type_word(enum json_type t)
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

bool jsonv_want(json_object *v, enum json_type t, const char *what, const char *ptr,
                struct job_req_error *e)
{
    if (json_object_is_type(v, t))
        return true;
    return jsonv_fail(e, 400, "invalid_type", ptr, "%s must be %s, not %s", ptr, what,
                      jsonv_type_name(v));
}

bool jsonv_only_known(json_object *o, const char *const *names, const char *base,
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
            return jsonv_fail(e, 400, "unknown_field", ptr, "unrecognized field \"%.60s\"", key);
        }
    }
    return true;
}

bool jsonv_int(json_object *o, const char *name, const char *ptr, int lo, int hi, int *out,
               struct job_req_error *e)
{
    json_object *v;
    if (!json_object_object_get_ex(o, name, &v) || json_object_is_type(v, json_type_null))
        return true;
    if (!jsonv_want(v, json_type_int, "an integer", ptr, e))
        return false;
    int64_t x = json_object_get_int64(v);
    if (x < lo || x > hi)
        return jsonv_fail(e, 422, "out_of_range", ptr, "%s must be between %d and %d, got %lld",
                          ptr, lo, hi, (long long)x);
    *out = (int)x;
    return true;
}

bool jsonv_string(json_object *o, const char *name, const char *ptr, size_t max, const char **out,
                  size_t *len, struct job_req_error *e)
{
    json_object *v;
    if (!json_object_object_get_ex(o, name, &v) || json_object_is_type(v, json_type_null))
        return true;
    if (!jsonv_want(v, json_type_string, "a string", ptr, e))
        return false;
    size_t n = (size_t)json_object_get_string_len(v);
    const char *s = json_object_get_string(v);
    if (n > max)
        return jsonv_fail(e, 422, "too_long", ptr, "%s is longer than %zu bytes", ptr, max);
    if (memchr(s, '\0', n))
        return jsonv_fail(e, 422, "invalid_text", ptr, "%s contains a NUL character", ptr);
    *out = s;
    if (len)
        *len = n;
    return true;
}

bool jsonv_bool(json_object *o, const char *name, const char *ptr, bool *out,
                struct job_req_error *e)
{
    json_object *v;
    if (!json_object_object_get_ex(o, name, &v) || json_object_is_type(v, json_type_null))
        return true;
    if (!jsonv_want(v, json_type_boolean, "a boolean", ptr, e))
        return false;
    *out = json_object_get_boolean(v);
    return true;
}

void space_defaults(struct space *s)
{
    memset(s, 0, sizeof(*s));
    s->model = models_default()->name; /* --default-model */
    s->task_type = "RETRIEVAL_DOCUMENT";
    s->query_task_type = "RETRIEVAL_QUERY";
    s->output_dimensionality = 0; /* the model's default, once the model is known */
    s->normalize = true;
    s->max_chars = CHUNK_DEFAULT_MAX_CHARS;
    s->overlap_chars = CHUNK_DEFAULT_OVERLAP_CHARS;
}

static bool task_ok(const char *task, const char *ptr, struct job_req_error *e)
{
    if (models_task_valid(task))
        return true;
    char allowed[320] = "";
    for (size_t i = 0, used = 0; model_task_types[i] && used < sizeof(allowed); i++) {
        int k = snprintf(allowed + used, sizeof(allowed) - used, "%s%s", i ? ", " : "",
                         model_task_types[i]);
        used += k > 0 ? (size_t)k : 0;
    }
    return jsonv_fail(e, 422, "unknown_task_type", ptr, "unknown task type \"%.60s\"; one of: %s",
                      task, allowed);
}

bool space_parse(json_object *root, struct space *s, bool with_query, struct job_req_error *e)
{
    static const char *const chunk_keys[] = {"max_chars", "overlap_chars", NULL};
    int dims = 0;
    if (!jsonv_string(root, "model", "/model", 100, &s->model, NULL, e) ||
        !jsonv_string(root, "task_type", "/task_type", 100, &s->task_type, NULL, e) ||
        (with_query && !jsonv_string(root, "query_task_type", "/query_task_type", 100,
                                     &s->query_task_type, NULL, e)) ||
        !jsonv_int(root, "output_dimensionality", "/output_dimensionality", INT32_MIN, INT32_MAX,
                   &dims, e))
        return false;
    char names[256];
    models_names(names, sizeof(names));
    const char *why = models_refused(s->model);
    if (why)
        return jsonv_fail(e, 422, "model_not_supported", "/model",
                          "model \"%s\" %s; use one of: %s", s->model, why, names);
    const struct model_facts *m = models_find(s->model);
    if (!m)
        return jsonv_fail(e, 422, "unknown_model", "/model", "unknown model \"%.60s\"; one of: %s",
                          s->model, names);
    s->output_dimensionality = dims ? dims : m->default_dims;
    if (s->output_dimensionality < m->min_dims || s->output_dimensionality > m->max_dims)
        return jsonv_fail(e, 422, "out_of_range", "/output_dimensionality",
                          "/output_dimensionality must be between %d and %d for %s, got %d",
                          m->min_dims, m->max_dims, m->name, s->output_dimensionality);
    if (!task_ok(s->task_type, "/task_type", e) ||
        (with_query && !task_ok(s->query_task_type, "/query_task_type", e)) ||
        !jsonv_bool(root, "normalize", "/normalize", &s->normalize, e))
        return false;
    json_object *v;
    if (json_object_object_get_ex(root, "chunking", &v) &&
        !json_object_is_type(v, json_type_null)) {
        if (!jsonv_want(v, json_type_object, "an object", "/chunking", e) ||
            !jsonv_only_known(v, chunk_keys, "/chunking", e) ||
            !jsonv_int(v, "max_chars", "/chunking/max_chars", 100, models_max_chunk_chars(m),
                       &s->max_chars, e) ||
            !jsonv_int(v, "overlap_chars", "/chunking/overlap_chars", 0, 4000, &s->overlap_chars,
                       e))
            return false;
        if (s->overlap_chars * 2 > s->max_chars)
            return jsonv_fail(e, 422, "out_of_range", "/chunking/overlap_chars",
                              "overlap_chars (%d) must be at most half of max_chars (%d)",
                              s->overlap_chars, s->max_chars);
    }
    return true;
}
