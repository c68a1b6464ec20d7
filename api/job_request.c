/* job_request.c: validation of job creation requests (see job_request.h). */
#include "job_request.h"

#include "json_strict.h"
#include "jsonv.h"

#include "chunker/chunker.h"
#include "models.h"
#include "webhook/url.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool job_request_err_type(struct job_req_error *e, const char *ptr, const char *what,
                          enum json_type have)
{
    return jsonv_fail(e, 400, "invalid_type", ptr, "%s must be %s, not %s", ptr, what,
                      jsonv_type_word(have));
}

bool job_request_err_oom(struct job_req_error *e)
{
    return jsonv_fail(e, 503, "out_of_memory", "", "the server is out of memory");
}

bool job_request_err_utf8(struct job_req_error *e)
{
    return jsonv_fail(e, 400, "invalid_json", "", "the body is not valid UTF-8");
}

bool job_request_err_syntax(struct job_req_error *e, const char *why)
{
    return jsonv_fail(e, 400, "invalid_json", "", "the body is not valid JSON: %s", why);
}

bool job_request_err_no_documents(struct job_req_error *e)
{
    return jsonv_fail(e, 400, "missing_field", "/documents", "/documents is required");
}

bool job_request_err_too_many(struct job_req_error *e, const struct job_limits *lim, size_t n,
                              bool exact)
{
    return jsonv_fail(e, 422, "too_many_documents", "/documents",
                      "/documents has %s%zu entries; at most %zu are accepted per job (setting "
                      "job-max-documents)",
                      exact ? "" : "more than ", exact ? n : lim->documents, lim->documents);
}

bool job_request_check_count(size_t n, const struct job_limits *lim, const struct job_request *r,
                             struct job_req_error *e)
{
    if (n == 0 && r->n_deletes > 0)
        return true; /* a collection job that only removes documents */
    if (n == 0)
        return jsonv_fail(e, 422, "no_documents", "/documents", "/documents must not be empty");
    if (n > lim->documents)
        return job_request_err_too_many(e, lim, n, true);
    return true;
}

bool job_request_err_duplicate(struct job_req_error *e, const char *id, size_t id_len, size_t index,
                               size_t first)
{
    char p[64];
    snprintf(p, sizeof(p), "/documents/%zu/id", index);
    return jsonv_fail(e, 422, "duplicate_id", p,
                      "document id \"%.*s\" is also used by /documents/%zu",
                      (int)(id_len > 60 ? 60 : id_len), id, first);
}

/* "collection": a collection id; "delete": document ids it removes. */
static bool parse_collection(json_object *root, const struct job_limits *lim, struct job_request *r,
                             struct job_req_error *e)
{
    size_t len = 0;
    if (!jsonv_string(root, "collection", "/collection", 64, &r->collection, &len, e))
        return false;
    json_object *v;
    if (!json_object_object_get_ex(root, "delete", &v) || json_object_is_type(v, json_type_null))
        return true;
    if (!jsonv_want(v, json_type_array, "an array of document ids", "/delete", e))
        return false;
    if (!r->collection)
        return jsonv_fail(e, 422, "delete_without_collection", "/delete",
                          "/delete removes documents of a collection: name one with /collection");
    size_t n = json_object_array_length(v);
    if (n > lim->deletes)
        return jsonv_fail(e, 422, "out_of_range", "/delete",
                          "/delete holds %zu ids; at most %zu are accepted per job (setting "
                          "job-max-deletes)",
                          n, lim->deletes);
    r->deletes = calloc(n ? n : 1, sizeof(*r->deletes));
    if (!r->deletes)
        return job_request_err_oom(e);
    for (size_t i = 0; i < n; i++) {
        json_object *id = json_object_array_get_idx(v, i);
        char p[48];
        snprintf(p, sizeof(p), "/delete/%zu", i);
        if (!jsonv_want(id, json_type_string, "a document id (a string)", p, e))
            return false;
        size_t l = (size_t)json_object_get_string_len(id);
        const char *s = json_object_get_string(id);
        if (l == 0 || l > JOB_MAX_ID_BYTES || memchr(s, '\0', l))
            return jsonv_fail(e, 422, "invalid_id", p,
                              "%s must be a document id of 1 to %d bytes without NUL", p,
                              JOB_MAX_ID_BYTES);
        r->deletes[r->n_deletes++] = s;
    }
    return true;
}

static bool parse_options(json_object *root, const struct job_limits *lim, struct job_request *r,
                          struct job_req_error *e)
{
    if (!jsonv_string(root, "display_name", "/display_name", JOB_MAX_NAME_BYTES, &r->display_name,
                      NULL, e) ||
        !jsonv_int(root, "priority", "/priority", -1000, 1000, &r->priority, e))
        return false;
    /* the embedding space, checked against the model table (api/jsonv.c) */
    struct space sp;
    space_defaults(&sp);
    if (!space_parse(root, &sp, false, e))
        return false;
    r->model = sp.model;
    r->task_type = sp.task_type;
    r->output_dimensionality = sp.output_dimensionality;
    r->normalize = sp.normalize;
    r->max_chars = sp.max_chars;
    r->overlap_chars = sp.overlap_chars;
    static const struct {
        const char *name;
        unsigned bit;
    } given[] = {{"model", JOB_GIVEN_MODEL},
                 {"output_dimensionality", JOB_GIVEN_DIMS},
                 {"task_type", JOB_GIVEN_TASK},
                 {"normalize", JOB_GIVEN_NORMALIZE}};
    json_object *v;
    for (size_t i = 0; i < sizeof(given) / sizeof(given[0]); i++)
        if (json_object_object_get_ex(root, given[i].name, &v) &&
            !json_object_is_type(v, json_type_null))
            r->given |= given[i].bit;
    if (json_object_object_get_ex(root, "chunking", &v) &&
        json_object_is_type(v, json_type_object)) {
        json_object *w;
        if (json_object_object_get_ex(v, "max_chars", &w) &&
            !json_object_is_type(w, json_type_null))
            r->given |= JOB_GIVEN_MAX_CHARS;
        if (json_object_object_get_ex(v, "overlap_chars", &w) &&
            !json_object_is_type(w, json_type_null))
            r->given |= JOB_GIVEN_OVERLAP;
    }
    if (!jsonv_string(root, "webhook_url", "/webhook_url", WH_URL_MAX, &r->webhook_url, NULL, e))
        return false;
    if (r->webhook_url) {
        struct wh_target t;
        char why[300];
        if (wh_url_parse(r->webhook_url, true, &t, why, sizeof(why)) != WH_URL_OK)
            return jsonv_fail(e, 422, "invalid_webhook_url", "/webhook_url", "%s", why);
    }
    return parse_collection(root, lim, r, e);
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
    if (!jsonv_want(d, json_type_object, "an object", base, e) ||
        !jsonv_only_known(d, keys, base, e))
        return false;
    snprintf(p, sizeof(p), "%s/id", base);
    if (!jsonv_string(d, "id", p, JOB_MAX_ID_BYTES, &out->id, &out->id_len, e))
        return false;
    if (!out->id || out->id_len == 0)
        return jsonv_fail(e, 422, "missing_field", p, "%s is required and must not be empty", p);
    snprintf(p, sizeof(p), "%s/text", base);
    if (!jsonv_string(d, "text", p, SIZE_MAX, &out->text, &out->text_len, e))
        return false;
    if (!out->text || blank(out->text, out->text_len))
        return jsonv_fail(e, 422, "empty_text", p, "%s is required and must not be empty", p);
    snprintf(p, sizeof(p), "%s/title", base);
    if (!jsonv_string(d, "title", p, JOB_MAX_TITLE_BYTES, &out->title, &out->title_len, e))
        return false;
    json_object *md;
    snprintf(p, sizeof(p), "%s/metadata", base);
    if (json_object_object_get_ex(d, "metadata", &md) && !json_object_is_type(md, json_type_null)) {
        if (!jsonv_want(md, json_type_object, "an object", p, e))
            return false;
        if (!metadata_ok(md, 0))
            return jsonv_fail(e, 422, "invalid_metadata", p, "%s holds a NUL character", p);
        out->metadata_json = json_object_to_json_string_ext(md, JSON_C_TO_STRING_PLAIN |
                                                                    JSON_C_TO_STRING_NOSLASHESCAPE);
        if (strlen(out->metadata_json) > JOB_MAX_METADATA_JSON)
            return jsonv_fail(e, 422, "too_long", p, "%s is larger than %d bytes as JSON", p,
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
    r->model = models_default()->name; /* parse_options fills the space (api/jsonv.c) */
    r->task_type = "RETRIEVAL_DOCUMENT";
    r->output_dimensionality = models_default()->default_dims;
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
        return jsonv_fail(e, 400, "invalid_json", "", "the body has data after the JSON value");
    }
    return true;
}

bool job_request_parse(const char *body, size_t len, const struct job_limits *lim,
                       struct job_request *r, struct job_req_error *e)
{
    static const char *const keys[] = {
        "documents", "display_name", "model",      "task_type", "output_dimensionality", "priority",
        "normalize", "chunking",     "collection", "delete",    "webhook_url",           NULL};
    set_defaults(r, e);
    if (!parse_json(body, len, false, &r->root, e))
        return false;
    bool ok = jsonv_want(r->root, json_type_object, "an object", "", e) &&
              jsonv_only_known(r->root, keys, "", e) && parse_options(r->root, lim, r, e);
    json_object *docs = NULL;
    bool have = ok && json_object_object_get_ex(r->root, "documents", &docs);
    if (ok && !have && r->n_deletes == 0) /* a job that only deletes may leave it out */
        ok = job_request_err_no_documents(e);
    if (ok && have)
        ok = jsonv_want(docs, json_type_array, "an array", "/documents", e);
    size_t n = ok && have ? json_object_array_length(docs) : 0;
    if (ok)
        ok = job_request_check_count(n, lim, r, e);
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

bool job_request_parse_options(const char *line, size_t len, const struct job_limits *lim,
                               struct job_request *r, struct job_req_error *e)
{
    static const char *const keys[] = {
        "display_name", "model",      "task_type", "output_dimensionality", "priority", "normalize",
        "chunking",     "collection", "delete",    "webhook_url",           NULL};
    set_defaults(r, e);
    if (!parse_json(line, len, false, &r->root, e))
        return false;
    bool ok = jsonv_want(r->root, json_type_object, "an object", "", e) &&
              jsonv_only_known(r->root, keys, "", e) && parse_options(r->root, lim, r, e);
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
    free(r->deletes);
    json_object_put(r->root);
    memset(r, 0, sizeof(*r));
}
