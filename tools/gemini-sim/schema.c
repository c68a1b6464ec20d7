/*
 * schema.c: strict parsing of request bodies, the way Google's proto3 JSON
 * front end does it: both lowerCamelCase and snake_case field names, unknown
 * fields rejected with 400 INVALID_ARGUMENT, values type-checked, integers as
 * numbers or numeric strings, enums by name or number, null as "absent".
 */
#include "sim.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fdef {
    const char *camel;
    const char *snake;
};

#define NFIELDS(a) (sizeof(a) / sizeof((a)[0]))

static void perr_set(struct sim_perr *e, int http, const char *status, const char *field,
                     const char *fmt, ...) SVC_PRINTF(5, 6);

static void perr_set(struct sim_perr *e, int http, const char *status, const char *field,
                     const char *fmt, ...)
{
    va_list ap;
    e->http = http;
    e->status = status;
    snprintf(e->field, sizeof(e->field), "%s", field ? field : "");
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
}

#define BAD(e, field, ...) perr_set((e), 400, "INVALID_ARGUMENT", (field), __VA_ARGS__)

/* Paths are for messages only: truncation is harmless but must be handled. */
static void child(char *out, size_t n, const char *path, const char *name)
{
    if (snprintf(out, n, "%s%s%s", path, *path ? "." : "", name) >= (int)n)
        out[n - 1] = '\0';
}

static void indexed(char *out, size_t n, const char *path, size_t i)
{
    if (snprintf(out, n, "%s[%zu]", path, i) >= (int)n)
        out[n - 1] = '\0';
}

json_object *sim_parse_json(const char *body, size_t len, struct sim_perr *e)
{
    if (len == 0) {
        BAD(e, NULL, "Invalid JSON payload received. Unexpected end of string.");
        return NULL;
    }
    struct json_tokener *tok = json_tokener_new_ex(100);
    if (!tok) {
        perr_set(e, 500, "INTERNAL", NULL, "Internal error encountered.");
        return NULL;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *o = json_tokener_parse_ex(tok, body, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    if (jerr == json_tokener_continue) {
        BAD(e, NULL, "Invalid JSON payload received. Unexpected end of string.");
    } else if (jerr != json_tokener_success) {
        BAD(e, NULL, "Invalid JSON payload received. %s.", json_tokener_error_desc(jerr));
    } else {
        while (end < len &&
               (body[end] == ' ' || body[end] == '\n' || body[end] == '\r' || body[end] == '\t'))
            end++;
        if (end < len)
            BAD(e, NULL, "Invalid JSON payload received. Unexpected token after the value.");
    }
    json_tokener_free(tok);
    if (e->http) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

/* Reject any member of o that is not in defs. path names o ("" at top). */
static bool check_known(json_object *o, const char *path, const struct fdef *defs, size_t n,
                        struct sim_perr *e)
{
    json_object_object_foreach(o, key, val)
    {
        (void)val;
        bool found = false;
        for (size_t i = 0; i < n && !found; i++)
            found = strcmp(key, defs[i].camel) == 0 || strcmp(key, defs[i].snake) == 0;
        if (!found) {
            if (*path)
                BAD(e, path,
                    "Invalid JSON payload received. Unknown name \"%s\" at '%s': Cannot find "
                    "field.",
                    key, path);
            else
                BAD(e, "", "Invalid JSON payload received. Unknown name \"%s\": Cannot find field.",
                    key);
            return false;
        }
    }
    return true;
}

/* The member named by d (either spelling); NULL when absent or null. */
static json_object *field(json_object *o, const struct fdef *d)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, d->camel, &v) && strcmp(d->camel, d->snake) != 0)
        json_object_object_get_ex(o, d->snake, &v);
    return v;
}

static void bad_value(struct sim_perr *e, const char *path, const char *type, json_object *v)
{
    const char *txt = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
    BAD(e, path, "Invalid value at '%s' (%s), %.200s", path, type, txt);
}

static bool want_object(json_object *v, const char *path, const char *type, struct sim_perr *e)
{
    if (json_object_is_type(v, json_type_object))
        return true;
    bad_value(e, path, type, v);
    return false;
}

static bool get_string(json_object *o, const struct fdef *d, const char *path, const char **out,
                       size_t *len, struct sim_perr *e)
{
    json_object *v = field(o, d);
    *out = NULL;
    if (!v)
        return true;
    char p[256];
    child(p, sizeof(p), path, d->snake);
    if (!json_object_is_type(v, json_type_string)) {
        bad_value(e, p, "TYPE_STRING", v);
        return false;
    }
    *out = json_object_get_string(v);
    if (len)
        *len = (size_t)json_object_get_string_len(v);
    return true;
}

/* proto3 JSON integers: a JSON integer or a string of decimal digits. */
static bool get_int(json_object *o, const struct fdef *d, const char *path, const char *type,
                    int64_t *out, struct sim_perr *e)
{
    json_object *v = field(o, d);
    if (!v)
        return true;
    char p[256];
    child(p, sizeof(p), path, d->snake);
    if (json_object_is_type(v, json_type_int)) {
        errno = 0;
        *out = json_object_get_int64(v);
        if (errno == 0)
            return true;
    } else if (json_object_is_type(v, json_type_string)) {
        const char *s = json_object_get_string(v);
        char *end;
        errno = 0;
        long long x = strtoll(s, &end, 10);
        if (errno == 0 && end != s && *end == '\0') {
            *out = x;
            return true;
        }
    } else if (json_object_is_type(v, json_type_double)) {
        double x = json_object_get_double(v);
        if (x == (double)(int64_t)x) {
            *out = (int64_t)x;
            return true;
        }
    }
    bad_value(e, p, type, v);
    return false;
}

void sim_items_free(struct sim_item *items, size_t n)
{
    if (!items)
        return;
    for (size_t i = 0; i < n; i++) {
        free(items[i].text);
        free(items[i].title);
        free(items[i].key);
        free(items[i].metadata);
    }
    free(items);
}

static const struct fdef f_model = {"model", "model"};
static const struct fdef f_content = {"content", "content"};
static const struct fdef f_task = {"taskType", "task_type"};
static const struct fdef f_title = {"title", "title"};
static const struct fdef f_dims = {"outputDimensionality", "output_dimensionality"};
static const struct fdef f_parts = {"parts", "parts"};
static const struct fdef f_role = {"role", "role"};
static const struct fdef f_text = {"text", "text"};

static bool parse_task(json_object *o, const char *path, int *task, struct sim_perr *e)
{
    json_object *v = field(o, &f_task);
    *task = SIM_TASK_UNSPECIFIED;
    if (!v)
        return true;
    char p[256];
    child(p, sizeof(p), path, f_task.snake);
    if (json_object_is_type(v, json_type_string)) {
        const char *s = json_object_get_string(v);
        for (int i = 0; i < SIM_TASK_COUNT; i++) {
            if (strcmp(s, sim_task_names[i]) == 0) {
                *task = i;
                return true;
            }
        }
    } else if (json_object_is_type(v, json_type_int)) {
        int64_t x = json_object_get_int64(v);
        if (x >= 0 && x < SIM_TASK_COUNT) {
            *task = (int)x;
            return true;
        }
    }
    bad_value(e, p, "type.googleapis.com/google.ai.generativelanguage.v1beta.TaskType", v);
    return false;
}

/* content.parts[].text, concatenated into it->text. */
static bool parse_content(json_object *o, const char *path, struct sim_item *it, struct sim_perr *e)
{
    static const struct fdef cdefs[] = {{"parts", "parts"}, {"role", "role"}};
    char p[256], pp[256];
    json_object *c = field(o, &f_content);
    child(p, sizeof(p), path, "content");
    if (!c) {
        BAD(e, p, "* %s: contents is not specified\n", p);
        return false;
    }
    if (!want_object(c, p, "TYPE_MESSAGE", e) || !check_known(c, p, cdefs, NFIELDS(cdefs), e))
        return false;
    const char *role;
    if (!get_string(c, &f_role, p, &role, NULL, e))
        return false;
    json_object *parts = field(c, &f_parts);
    child(pp, sizeof(pp), p, "parts");
    if (parts && !json_object_is_type(parts, json_type_array)) {
        bad_value(e, pp, "TYPE_MESSAGE", parts);
        return false;
    }
    size_t n = parts ? json_object_array_length(parts) : 0;
    struct buf text;
    buf_init(&text, SIZE_MAX / 2);
    for (size_t i = 0; i < n; i++) {
        static const struct fdef pdefs[] = {{"text", "text"}};
        json_object *part = json_object_array_get_idx(parts, i);
        char ip[256];
        indexed(ip, sizeof(ip), pp, i);
        const char *s;
        size_t len = 0;
        if (!want_object(part, ip, "TYPE_MESSAGE", e) ||
            !check_known(part, ip, pdefs, NFIELDS(pdefs), e) ||
            !get_string(part, &f_text, ip, &s, &len, e)) {
            buf_cleanup(&text);
            return false;
        }
        if (s && !buf_append(&text, s, len)) {
            buf_cleanup(&text);
            perr_set(e, 500, "INTERNAL", NULL, "Internal error encountered.");
            return false;
        }
    }
    if (text.len == 0) {
        buf_cleanup(&text);
        BAD(e, pp, "* %s: contents must not be empty\n", p);
        return false;
    }
    it->text = buf_steal(&text, &it->text_len);
    return true;
}

bool sim_parse_embed_request(json_object *o, const struct sim_model *m, const char *path,
                             struct sim_item *it, struct sim_perr *e)
{
    static const struct fdef defs[] = {{"model", "model"},
                                       {"content", "content"},
                                       {"taskType", "task_type"},
                                       {"title", "title"},
                                       {"outputDimensionality", "output_dimensionality"}};
    if (!want_object(o, *path ? path : "request", "TYPE_MESSAGE", e) ||
        !check_known(o, path, defs, NFIELDS(defs), e))
        return false;
    const char *model, *title;
    if (!get_string(o, &f_model, path, &model, NULL, e))
        return false;
    if (model) {
        char want[128];
        snprintf(want, sizeof(want), "models/%s", m->id);
        if (strcmp(model, want) != 0) {
            char p[256];
            child(p, sizeof(p), path, "model");
            BAD(e, p, "* %s: model \"%s\" does not match the model in the request URL \"%s\"\n", p,
                model, want);
            return false;
        }
    }
    if (!parse_task(o, path, &it->task, e) || !get_string(o, &f_title, path, &title, NULL, e))
        return false;
    it->task_fields = field(o, &f_task) != NULL || title != NULL;
    int64_t dims = 0;
    if (!get_int(o, &f_dims, path, "TYPE_INT32", &dims, e))
        return false;
    if (dims < 0 || dims > m->native_dims) {
        char p[256];
        child(p, sizeof(p), path, f_dims.snake);
        BAD(e, p, "* %s: output dimensionality must be between 1 and %d, got %lld\n", p,
            m->native_dims, (long long)dims);
        return false;
    }
    it->dims = (int)dims;
    if (title && !(it->title = strdup(title))) {
        perr_set(e, 500, "INTERNAL", NULL, "Internal error encountered.");
        return false;
    }
    return parse_content(o, path, it, e);
}

static bool dup_metadata(json_object *md, const char *path, struct sim_item *it, struct sim_perr *e)
{
    if (!md)
        return true;
    if (!json_object_is_type(md, json_type_object)) {
        bad_value(e, path, "type.googleapis.com/google.protobuf.Struct", md);
        return false;
    }
    it->metadata = strdup(json_object_to_json_string_ext(md, JSON_C_TO_STRING_PLAIN |
                                                                 JSON_C_TO_STRING_NOSLASHESCAPE));
    if (!it->metadata) {
        perr_set(e, 500, "INTERNAL", NULL, "Internal error encountered.");
        return false;
    }
    return true;
}

static bool parse_inline_requests(json_object *reqs, const char *path, const struct sim_model *m,
                                  struct sim_batch_req *out, struct sim_perr *e)
{
    static const struct fdef rdefs[] = {{"requests", "requests"}};
    static const struct fdef idefs[] = {{"request", "request"}, {"metadata", "metadata"}};
    static const struct fdef f_requests = {"requests", "requests"};
    static const struct fdef f_request = {"request", "request"};
    static const struct fdef f_metadata = {"metadata", "metadata"};
    char p[256];
    if (!want_object(reqs, path, "TYPE_MESSAGE", e) ||
        !check_known(reqs, path, rdefs, NFIELDS(rdefs), e))
        return false;
    json_object *arr = field(reqs, &f_requests);
    child(p, sizeof(p), path, "requests");
    if (arr && !json_object_is_type(arr, json_type_array)) {
        bad_value(e, p, "TYPE_MESSAGE", arr);
        return false;
    }
    size_t n = arr ? json_object_array_length(arr) : 0;
    if (n == 0) {
        BAD(e, p, "* %s: at least one request is required\n", p);
        return false;
    }
    out->items = calloc(n, sizeof(*out->items));
    if (!out->items) {
        perr_set(e, 500, "INTERNAL", NULL, "Internal error encountered.");
        return false;
    }
    out->n_items = n;
    for (size_t i = 0; i < n; i++) {
        json_object *el = json_object_array_get_idx(arr, i);
        char ip[256], rp[256], mp[256];
        indexed(ip, sizeof(ip), p, i);
        if (!want_object(el, ip, "TYPE_MESSAGE", e) ||
            !check_known(el, ip, idefs, NFIELDS(idefs), e))
            return false;
        json_object *r = field(el, &f_request);
        child(rp, sizeof(rp), ip, "request");
        if (!r) {
            BAD(e, rp, "* %s: request is required\n", rp);
            return false;
        }
        child(mp, sizeof(mp), ip, "metadata");
        if (!sim_parse_embed_request(r, m, rp, &out->items[i], e) ||
            !dup_metadata(field(el, &f_metadata), mp, &out->items[i], e))
            return false;
    }
    return true;
}

void sim_batch_req_cleanup(struct sim_batch_req *r)
{
    free(r->display_name);
    free(r->file_name);
    sim_items_free(r->items, r->n_items);
    memset(r, 0, sizeof(*r));
}

bool sim_parse_batch_create(json_object *root, const struct sim_model *m, struct sim_batch_req *out,
                            struct sim_perr *e)
{
    static const struct fdef tdefs[] = {{"batch", "batch"}};
    /* output-only fields of EmbedContentBatch are known to the proto and ignored */
    static const struct fdef bdefs[] = {{"model", "model"},
                                        {"name", "name"},
                                        {"displayName", "display_name"},
                                        {"inputConfig", "input_config"},
                                        {"priority", "priority"},
                                        {"output", "output"},
                                        {"createTime", "create_time"},
                                        {"endTime", "end_time"},
                                        {"updateTime", "update_time"},
                                        {"batchStats", "batch_stats"},
                                        {"state", "state"}};
    static const struct fdef cdefs[] = {{"fileName", "file_name"}, {"requests", "requests"}};
    static const struct fdef f_batch = {"batch", "batch"};
    static const struct fdef f_dn = {"displayName", "display_name"};
    static const struct fdef f_ic = {"inputConfig", "input_config"};
    static const struct fdef f_prio = {"priority", "priority"};
    static const struct fdef f_file = {"fileName", "file_name"};
    static const struct fdef f_reqs = {"requests", "requests"};

    memset(out, 0, sizeof(*out));
    if (!want_object(root, "", "TYPE_MESSAGE", e) ||
        !check_known(root, "", tdefs, NFIELDS(tdefs), e))
        return false;
    json_object *b = field(root, &f_batch);
    if (!b) {
        BAD(e, "batch", "* AsyncBatchEmbedContentRequest.batch: batch is required\n");
        return false;
    }
    if (!want_object(b, "batch", "TYPE_MESSAGE", e) ||
        !check_known(b, "batch", bdefs, NFIELDS(bdefs), e))
        return false;
    const char *model, *dn;
    if (!get_string(b, &f_model, "batch", &model, NULL, e) ||
        !get_string(b, &f_dn, "batch", &dn, NULL, e) ||
        !get_int(b, &f_prio, "batch", "TYPE_INT64", &out->priority, e))
        goto fail;
    if (model) {
        char want[128];
        snprintf(want, sizeof(want), "models/%s", m->id);
        if (strcmp(model, want) != 0) {
            BAD(e, "batch.model",
                "* batch.model: model \"%s\" does not match the model in the request URL \"%s\"\n",
                model, want);
            goto fail;
        }
    }
    if (dn && !(out->display_name = strdup(dn)))
        goto oom;
    json_object *ic = field(b, &f_ic);
    if (!ic) {
        BAD(e, "batch.input_config",
            "* EmbedContentBatch.input_config: input_config is required\n");
        goto fail;
    }
    if (!want_object(ic, "batch.input_config", "TYPE_MESSAGE", e) ||
        !check_known(ic, "batch.input_config", cdefs, NFIELDS(cdefs), e))
        goto fail;
    const char *fname;
    if (!get_string(ic, &f_file, "batch.input_config", &fname, NULL, e))
        goto fail;
    json_object *reqs = field(ic, &f_reqs);
    if ((fname != NULL) == (reqs != NULL)) {
        BAD(e, "batch.input_config",
            "* EmbedContentBatch.input_config: exactly one of file_name and requests must be "
            "set\n");
        goto fail;
    }
    if (fname) {
        if (strncmp(fname, "files/", 6) != 0 || !fname[6]) {
            BAD(e, "batch.input_config.file_name",
                "* batch.input_config.file_name: \"%s\" is not a file name like files/abc123\n",
                fname);
            goto fail;
        }
        if (!(out->file_name = strdup(fname)))
            goto oom;
        return true;
    }
    if (!parse_inline_requests(reqs, "batch.input_config.requests", m, out, e))
        goto fail;
    return true;
oom:
    perr_set(e, 500, "INTERNAL", NULL, "Internal error encountered.");
fail:
    sim_batch_req_cleanup(out);
    return false;
}

bool sim_parse_sync_batch(json_object *root, const struct sim_model *m, struct sim_item **items,
                          size_t *n_items, struct sim_perr *e)
{
    static const struct fdef tdefs[] = {{"requests", "requests"}};
    static const struct fdef f_reqs = {"requests", "requests"};
    *items = NULL;
    *n_items = 0;
    if (!want_object(root, "", "TYPE_MESSAGE", e) ||
        !check_known(root, "", tdefs, NFIELDS(tdefs), e))
        return false;
    json_object *arr = field(root, &f_reqs);
    if (arr && !json_object_is_type(arr, json_type_array)) {
        bad_value(e, "requests", "TYPE_MESSAGE", arr);
        return false;
    }
    size_t n = arr ? json_object_array_length(arr) : 0;
    if (n == 0) {
        BAD(e, "requests", "* BatchEmbedContentsRequest.requests: requests is required\n");
        return false;
    }
    if (n > 100) {
        BAD(e, "requests",
            "* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch\n");
        return false;
    }
    struct sim_item *its = calloc(n, sizeof(*its));
    if (!its) {
        perr_set(e, 500, "INTERNAL", NULL, "Internal error encountered.");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char p[64];
        snprintf(p, sizeof(p), "requests[%zu]", i);
        if (!sim_parse_embed_request(json_object_array_get_idx(arr, i), m, p, &its[i], e)) {
            sim_items_free(its, n);
            return false;
        }
    }
    *items = its;
    *n_items = n;
    return true;
}

/* One JSONL input line: {"key": "...", "request": EmbedContentRequest}. */
static bool parse_jsonl_line(const char *line, size_t len, size_t lineno, const struct sim_model *m,
                             struct sim_item *it, struct sim_perr *e)
{
    static const struct fdef ldefs[] = {{"key", "key"}, {"request", "request"}};
    static const struct fdef f_key = {"key", "key"};
    static const struct fdef f_request = {"request", "request"};
    json_object *o = sim_parse_json(line, len, e);
    if (!o)
        goto fail;
    const char *key;
    json_object *r;
    if (!want_object(o, "", "TYPE_MESSAGE", e) || !check_known(o, "", ldefs, NFIELDS(ldefs), e) ||
        !get_string(o, &f_key, "", &key, NULL, e))
        goto fail;
    r = field(o, &f_request);
    if (!r) {
        BAD(e, "request", "request is required");
        goto fail;
    }
    if (!sim_parse_embed_request(r, m, "request", it, e))
        goto fail;
    if (key && !(it->key = strdup(key))) {
        perr_set(e, 500, "INTERNAL", NULL, "Internal error encountered.");
        goto fail;
    }
    json_object_put(o);
    return true;
fail:
    json_object_put(o);
    {
        char msg[sizeof(e->msg)];
        snprintf(msg, sizeof(msg), "%s", e->msg);
        snprintf(e->msg, sizeof(e->msg), "Invalid input file: line %zu: %.400s", lineno, msg);
    }
    return false;
}

bool sim_parse_jsonl(const char *data, size_t len, const struct sim_model *m,
                     struct sim_item **items, size_t *n_items, struct sim_perr *e)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (data[i] == '\n')
            n++;
    n++; /* last line without a newline */
    struct sim_item *its = calloc(n, sizeof(*its));
    if (!its) {
        perr_set(e, 500, "INTERNAL", NULL, "Internal error encountered.");
        return false;
    }
    size_t count = 0, lineno = 0, pos = 0;
    while (pos < len) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - data) : len;
        size_t l = end - pos;
        lineno++;
        if (l > 0 && data[pos + l - 1] == '\r')
            l--;
        bool blank = true;
        for (size_t k = 0; k < l && blank; k++)
            blank = data[pos + k] == ' ' || data[pos + k] == '\t';
        if (!blank) {
            if (!parse_jsonl_line(data + pos, l, lineno, m, &its[count], e)) {
                sim_items_free(its, n);
                return false;
            }
            count++;
        }
        pos = end + 1;
    }
    if (count == 0) {
        sim_items_free(its, n);
        BAD(e, NULL, "Invalid input file: no requests");
        return false;
    }
    *items = its;
    *n_items = count;
    return true;
}
