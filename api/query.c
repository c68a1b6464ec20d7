/*
 * query.c: POST /v1/collections/{id}/query (the k chunks nearest to query
 * texts or a vector, exact cosine similarity) and POST /v1/embed (query
 * vectors in a collection's space for clients that search elsewhere).
 * Bodies are validated before anything else happens; texts are embedded
 * interactively by the engine (search/search.h).
 */
#include "api.h"

#include "chunker/budget.h"
#include "chunker/chunker.h"
#include "jsonv.h"
#include "log.h"
#include "models.h"
#include "search/search.h"
#include "util/jsonw.h"

#include <json-c/json.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUERY_MAX_BODY    ((size_t)4 << 20)
#define QUERY_DEFAULT_K   10
#define QUERY_MAX_VECTOR  3072 /* the largest max_dims of the model table (models.c) */
#define QUERY_MAX_FILTERS 64
/* Hits that carry their text or vector, over all queries of a request. */
#define QUERY_MAX_INCLUDED 10000

struct query_req {
    json_object *root;
    const char *texts[SEARCH_MAX_QUERIES];
    size_t lens[SEARCH_MAX_QUERIES];
    size_t n_texts;
    const char *texts_ptr; /* "/text" or "/texts" */
    bool single_text;
    float *vector; /* parsed "vector" (n_vector values) */
    size_t n_vector;
    int top_k;
    struct search_filter filter;
    bool has_filter;
    bool want_text, want_metadata, want_embedding;
};

static void query_req_free(struct query_req *q)
{
    json_object_put(q->root);
    free(q->vector);
    search_filter_cleanup(&q->filter);
}

static void problem_from(struct http_req *req, struct http_resp *resp,
                         const struct job_req_error *e)
{
    http_problem(resp, req, e->status, e->code, e->pointer[0] ? e->pointer : NULL, "%s", e->detail);
}

/* Whether s has something besides white space. */
static bool has_content(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
            return true;
    return false;
}

/* One query text at ptr: a string, not empty, no NUL. */
static bool one_text(json_object *v, const char *ptr, const char **out, size_t *len,
                     struct job_req_error *e)
{
    if (!jsonv_want(v, json_type_string, "a string", ptr, e))
        return false;
    *out = json_object_get_string(v);
    *len = (size_t)json_object_get_string_len(v);
    if (!has_content(*out, *len))
        return jsonv_fail(e, 422, "empty_text", ptr, "%s is empty", ptr);
    if (memchr(*out, '\0', *len))
        return jsonv_fail(e, 422, "invalid_text", ptr, "%s contains a NUL character", ptr);
    return true;
}

/* "texts": 1 to max strings. */
static bool parse_texts(json_object *v, size_t max, struct query_req *q, struct job_req_error *e)
{
    if (!jsonv_want(v, json_type_array, "an array of strings", "/texts", e))
        return false;
    size_t n = json_object_array_length(v);
    if (n == 0)
        return jsonv_fail(e, 422, "empty_text", "/texts", "/texts has no text");
    if (n > max)
        return jsonv_fail(e, 422, "too_many_texts", "/texts",
                          "/texts has %zu texts; at most %zu per request", n, max);
    for (size_t i = 0; i < n; i++) {
        char ptr[32];
        snprintf(ptr, sizeof(ptr), "/texts/%zu", i);
        if (!one_text(json_object_array_get_idx(v, i), ptr, &q->texts[i], &q->lens[i], e))
            return false;
    }
    q->n_texts = n;
    q->texts_ptr = "/texts";
    return true;
}

static bool parse_vector(json_object *v, struct query_req *q, struct job_req_error *e)
{
    if (!jsonv_want(v, json_type_array, "an array of numbers", "/vector", e))
        return false;
    size_t n = json_object_array_length(v);
    if (n == 0 || n > QUERY_MAX_VECTOR)
        return jsonv_fail(e, 422, "dimension_mismatch", "/vector",
                          "/vector has %zu values; a collection has 128 to %d", n,
                          QUERY_MAX_VECTOR);
    q->vector = malloc(n * sizeof(float));
    if (!q->vector)
        return jsonv_fail(e, 503, "out_of_memory", "", "the server is out of memory");
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        json_object *x = json_object_array_get_idx(v, i);
        char ptr[32];
        snprintf(ptr, sizeof(ptr), "/vector/%zu", i);
        if (!json_object_is_type(x, json_type_double) && !json_object_is_type(x, json_type_int))
            return jsonv_fail(e, 400, "invalid_type", ptr, "%s must be a number, not %s", ptr,
                              jsonv_type_name(x));
        double d = json_object_get_double(x);
        if (!isfinite(d) || fabs(d) > (double)FLT_MAX)
            return jsonv_fail(e, 422, "non_finite", ptr,
                              "%s is not a finite float32 number (NaN, infinite or beyond "
                              "3.4e38)",
                              ptr);
        q->vector[i] = (float)d;
        sum += d * d;
    }
    if (!(sum > 0))
        return jsonv_fail(e, 422, "zero_vector", "/vector",
                          "/vector is all zeros: it has no direction to compare");
    q->n_vector = n;
    return true;
}

static bool parse_include(json_object *v, struct query_req *q, struct job_req_error *e)
{
    if (!jsonv_want(v, json_type_array, "an array of strings", "/include", e))
        return false;
    for (size_t i = 0; i < json_object_array_length(v); i++) {
        json_object *x = json_object_array_get_idx(v, i);
        char ptr[32];
        snprintf(ptr, sizeof(ptr), "/include/%zu", i);
        if (!jsonv_want(x, json_type_string, "a string", ptr, e))
            return false;
        const char *s = json_object_get_string(x);
        if (strcmp(s, "text") == 0)
            q->want_text = true;
        else if (strcmp(s, "metadata") == 0)
            q->want_metadata = true;
        else if (strcmp(s, "embedding") == 0)
            q->want_embedding = true;
        else
            return jsonv_fail(e, 422, "invalid_include", ptr,
                              "%s: \"%.40s\" is not one of text, metadata, embedding", ptr, s);
    }
    return true;
}

/* "filter": {"metadata": {"key": scalar, ...}} */
static bool parse_filter(json_object *v, struct query_req *q, struct job_req_error *e)
{
    static const char *const keys[] = {"metadata", NULL};
    json_object *m;
    if (!jsonv_want(v, json_type_object, "an object", "/filter", e))
        return false;
    if (!jsonv_only_known(v, keys, "/filter", e)) {
        e->status = 422;
        snprintf(e->code, sizeof(e->code), "invalid_filter");
        snprintf(e->detail, sizeof(e->detail),
                 "%s: the only filter is {\"metadata\": {\"key\": value, ...}}", e->pointer);
        return false;
    }
    if (!json_object_object_get_ex(v, "metadata", &m))
        return true;
    if (!jsonv_want(m, json_type_object, "an object", "/filter/metadata", e))
        return false;
    if (json_object_object_length(m) > QUERY_MAX_FILTERS)
        return jsonv_fail(e, 422, "invalid_filter", "/filter/metadata",
                          "/filter/metadata has more than %d keys", QUERY_MAX_FILTERS);
    json_object_object_foreach(m, key, val)
    {
        char ptr[96];
        snprintf(ptr, sizeof(ptr), "/filter/metadata/%.60s", key);
        if (!search_filter_scalar(val))
            return jsonv_fail(e, 422, "invalid_filter", ptr,
                              "%s: filters compare a string, number, boolean or null, not %s", ptr,
                              jsonv_type_name(val));
        if (!search_filter_add(&q->filter, key, strlen(key), val))
            return jsonv_fail(e, 503, "out_of_memory", "", "the server is out of memory");
    }
    q->has_filter = true;
    return true;
}

/* Parse and validate a query body (what does not depend on the collection). */
static bool parse_query(const struct http_req *req, struct query_req *q, struct job_req_error *e)
{
    static const char *const keys[] = {"text",   "texts",   "vector", "top_k",
                                       "filter", "include", NULL};
    if (!jsonv_parse(req->body.data ? req->body.data : "", req->body.len, 32, &q->root, e)) {
        /* what some JSON writers emit for non-finite floats (Python's json.dumps does) */
        if (strcmp(e->code, "invalid_json") == 0 && req->body.data &&
            (strstr(req->body.data, "NaN") || strstr(req->body.data, "Infinity")))
            snprintf(e->detail, sizeof(e->detail),
                     "the body is not valid JSON: NaN and Infinity are not JSON numbers, and a "
                     "query vector holds finite numbers only");
        return false;
    }
    json_object *r = q->root, *v;
    if (!jsonv_want(r, json_type_object, "an object", "", e) || !jsonv_only_known(r, keys, "", e))
        return false;
    int inputs = 0;
    const char *names[3] = {"text", "texts", "vector"};
    for (int i = 0; i < 3; i++)
        if (json_object_object_get_ex(r, names[i], &v) && !json_object_is_type(v, json_type_null))
            inputs++;
    if (inputs != 1)
        return jsonv_fail(e, 422, inputs ? "ambiguous_query" : "missing_field", "",
                          "a query has exactly one of text, texts (up to %d) or vector",
                          SEARCH_MAX_QUERIES);
    if (json_object_object_get_ex(r, "text", &v) && !json_object_is_type(v, json_type_null)) {
        if (!one_text(v, "/text", &q->texts[0], &q->lens[0], e))
            return false;
        q->n_texts = 1;
        q->texts_ptr = "/text";
        q->single_text = true;
    } else if (json_object_object_get_ex(r, "texts", &v) &&
               !json_object_is_type(v, json_type_null)) {
        if (!parse_texts(v, SEARCH_MAX_QUERIES, q, e))
            return false;
    } else if (json_object_object_get_ex(r, "vector", &v) && !parse_vector(v, q, e)) {
        return false;
    }
    q->top_k = QUERY_DEFAULT_K;
    if (!jsonv_int(r, "top_k", "/top_k", 1, SEARCH_MAX_K, &q->top_k, e))
        return false;
    if (json_object_object_get_ex(r, "include", &v) && !json_object_is_type(v, json_type_null) &&
        !parse_include(v, q, e))
        return false;
    if (json_object_object_get_ex(r, "filter", &v) && !json_object_is_type(v, json_type_null) &&
        !parse_filter(v, q, e))
        return false;
    size_t n = q->n_texts ? q->n_texts : 1;
    if ((q->want_text || q->want_embedding) && n * (size_t)q->top_k > QUERY_MAX_INCLUDED)
        return jsonv_fail(e, 422, "too_many_results", "/top_k",
                          "with text or embedding included, queries x top_k is at most %d "
                          "(here %zu)",
                          QUERY_MAX_INCLUDED, n * (size_t)q->top_k);
    return true;
}

/* The texts fit the collection's model (its input token limit). */
static bool texts_fit(const struct search_coll *coll, const char *const *texts, const size_t *lens,
                      size_t n, const char *ptr, bool single, struct job_req_error *e)
{
    const struct model_facts *m = models_find(coll->model);
    struct chunk_budget bud;
    if (m && !chunk_budget_of(m, coll->query_task_type, NULL, 0, &bud))
        return job_request_err_oom(e);
    for (size_t i = 0; m && i < n; i++) {
        int64_t t = chunker_token_estimate(texts[i], lens[i]);
        if (t > bud.max_tokens) {
            char p[32];
            snprintf(p, sizeof(p), single ? "%s" : "%s/%zu", ptr, i);
            return jsonv_fail(e, 422, "too_long", p,
                              "%s is about %lld tokens; %s takes at most %lld per query text "
                              "(%d less the %lld of the task's instruction)",
                              p, (long long)t, m->name, (long long)bud.max_tokens,
                              m->max_input_tokens, (long long)bud.prompt_tokens);
        }
    }
    return true;
}

static bool body_ok(struct http_req *req, struct http_resp *resp)
{
    const char *ct = http_req_header(req, "Content-Type");
    if (ct && !http_media_type_is(ct, "application/json")) {
        http_problem(resp, req, 415, "unsupported_media_type", NULL,
                     "the body must be application/json");
        return false;
    }
    if (req->body.len > QUERY_MAX_BODY) {
        http_problem(resp, req, 413, "body_too_large", NULL, "a query body has at most %zu bytes",
                     QUERY_MAX_BODY);
        return false;
    }
    return true;
}

static void coll_not_found(struct http_req *req, struct http_resp *resp, const char *id)
{
    http_problem(resp, req, 404, "collection_not_found", NULL, "no collection %.40s", id);
}

/* The collection of the request's key, on a pooled connection kept in *c;
 * false with resp filled (and *c released) otherwise. */
static bool head(struct app *app, struct http_req *req, struct http_resp *resp, const char *id,
                 PGconn **c, struct search_coll *coll)
{
    char err[512];
    if (!*c && !(*c = api_db_or_503(app, req, resp)))
        return false;
    enum search_status st = search_coll_get(*c, req->key_id, id, coll, err, sizeof(err));
    if (st == SEARCH_OK)
        return true;
    db_pool_release(app->db, *c);
    *c = NULL;
    if (st == SEARCH_NOT_FOUND)
        coll_not_found(req, resp, id);
    else
        api_db_failed(req, resp, err);
    return false;
}

/* Embed texts into out (n x coll dims); false with resp filled. */
static bool embed(struct app *app, struct http_req *req, struct http_resp *resp,
                  const struct search_coll *coll, const char *const *texts, const size_t *lens,
                  size_t n, float *out, struct search_embed_info *info)
{
    enum search_embed_status st = search_embed(app->search, coll, texts, lens, n, out, info);
    switch (st) {
    case SEARCH_EMBED_OK:
        return true;
    case SEARCH_EMBED_UNCONFIGURED:
        http_problem(resp, req, 503, "embedding_unavailable", NULL,
                     "query texts cannot be embedded: this server has no Gemini API key; send a "
                     "vector instead");
        return false;
    case SEARCH_EMBED_RETRY: {
        char ra[24];
        int64_t s = info->retry_after_ms > 0 ? (info->retry_after_ms + 999) / 1000 : 1;
        snprintf(ra, sizeof(ra), "%lld", (long long)s);
        log_warn("request %s: query embedding deferred: %s", req->id, info->detail);
        http_resp_header(resp, "Retry-After", ra);
        http_problem(resp, req, 503, "upstream_unavailable", NULL,
                     "Google's embedding API did not answer in time; retry later");
        return false;
    }
    case SEARCH_EMBED_REFUSED:
        break;
    }
    log_error("request %s: query embedding refused: %s", req->id, info->detail);
    http_problem(resp, req, 502, "upstream_error", NULL,
                 "Google's embedding API refused the query texts");
    return false;
}

/* "tokens": n, "cost": {...} of a query's embedding (interactive tokens). */
static bool put_usage(struct buf *b, const struct search_coll *coll,
                      const struct search_embed_info *info)
{
    struct api_tokens t = {0, info->tokens, 0, info->estimated};
    return buf_printf(b, "\"tokens\":%lld,", (long long)info->tokens) &&
           api_put_cost(b, coll->model, &t);
}

/* A float32 vector as a JSON array (shortest round-trip numbers). */
static bool put_vector(struct buf *b, const float *v, int dims)
{
    unsigned char le[4 * QUERY_MAX_VECTOR];
    for (int i = 0; i < dims; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        le[4 * i] = (unsigned char)u;
        le[4 * i + 1] = (unsigned char)(u >> 8);
        le[4 * i + 2] = (unsigned char)(u >> 16);
        le[4 * i + 3] = (unsigned char)(u >> 24);
    }
    return jsonw_f32le_array(b, le, dims);
}

static bool put_hit(struct buf *b, const struct search_hit *h, const struct search_result *r,
                    const struct search_query *q)
{
    bool ok = buf_puts(b, "{\"document_id\":") && jsonw_cstr(b, h->doc_id) &&
              buf_printf(b,
                         ",\"chunk_index\":%d,\"char_start\":%d,\"char_end\":%d,"
                         "\"score\":%.17g",
                         h->chunk_index, h->char_start, h->char_end, h->score);
    if (ok && q->want_text)
        ok = buf_puts(b, ",\"text\":") &&
             (h->text ? jsonw_str(b, h->text, h->text_len) : buf_puts(b, "null"));
    if (ok && q->want_metadata)
        ok = buf_puts(b, ",\"metadata\":") && buf_puts(b, h->metadata ? h->metadata : "null");
    if (ok && q->want_embedding)
        ok = buf_puts(b, ",\"embedding\":") &&
             (h->embedding ? jsonw_f32le_array(b, h->embedding, r->dims) : buf_puts(b, "null"));
    return ok && buf_putc(b, '}');
}

static void render_query(struct http_req *req, struct http_resp *resp,
                         const struct search_coll *coll, const struct search_query *q,
                         const struct search_result *r, const struct search_embed_info *info)
{
    struct buf *b = &resp->body;
    buf_reset(b);
    resp->status = 200;
    resp->content_type = "application/json";
    bool ok = buf_puts(b, "{\"collection\":") && jsonw_cstr(b, coll->id) &&
              buf_printf(b, ",\"version\":%lld,\"model\":", (long long)r->version) &&
              jsonw_cstr(b, coll->model) &&
              buf_printf(b,
                         ",\"output_dimensionality\":%d,\"chunks_searched\":%lld,"
                         "\"results\":[",
                         coll->dims, (long long)r->rows);
    for (size_t i = 0; ok && i < r->n_queries; i++) {
        ok = (!i || buf_putc(b, ',')) && buf_printf(b, "{\"index\":%zu,\"matches\":[", i);
        for (size_t j = 0; ok && j < r->counts[i]; j++)
            ok = (!j || buf_putc(b, ',')) && put_hit(b, &r->hits[i * (size_t)r->k + j], r, q);
        ok = ok && buf_puts(b, "]}");
    }
    ok = ok && buf_puts(b, "],") && put_usage(b, coll, info) && buf_putc(b, '}');
    if (!ok)
        http_problem(resp, req, 500, "internal", NULL, "the response could not be built");
}

void api_collection_query(void *appv, struct http_req *req, struct http_resp *resp)
{
    struct app *app = appv;
    struct query_req q;
    memset(&q, 0, sizeof(q));
    search_filter_init(&q.filter);
    struct job_req_error e;
    memset(&e, 0, sizeof(e));
    PGconn *c = NULL;
    float *vectors = NULL;
    struct search_embed_info info;
    memset(&info, 0, sizeof(info));
    struct search_coll coll;
    if (!body_ok(req, resp))
        goto out;
    if (!app->search) {
        http_problem(resp, req, 503, "search_unavailable", NULL, "search is not running");
        goto out;
    }
    if (!parse_query(req, &q, &e)) {
        problem_from(req, resp, &e);
        goto out;
    }
    if (!head(app, req, resp, req->params[0], &c, &coll))
        goto out;
    if (q.vector && q.n_vector != (size_t)coll.dims) {
        http_problem(resp, req, 422, "dimension_mismatch", "/vector",
                     "/vector has %zu values; this collection's vectors have %d", q.n_vector,
                     coll.dims);
        goto out;
    }
    if (q.n_texts &&
        !texts_fit(&coll, q.texts, q.lens, q.n_texts, q.texts_ptr, q.single_text, &e)) {
        problem_from(req, resp, &e);
        goto out;
    }
    if (q.n_texts) {
        /* no connection is held during the call to Google */
        db_pool_release(app->db, c);
        c = NULL;
        vectors = malloc(q.n_texts * (size_t)coll.dims * sizeof(float));
        if (!vectors) {
            http_problem(resp, req, 503, "out_of_memory", NULL, "the server is out of memory");
            goto out;
        }
        if (!embed(app, req, resp, &coll, q.texts, q.lens, q.n_texts, vectors, &info) ||
            !head(app, req, resp, req->params[0], &c, &coll))
            goto out;
    }
    struct search_query sq = {q.vector ? q.vector : vectors,
                              q.n_texts ? q.n_texts : 1,
                              q.top_k,
                              q.has_filter ? &q.filter : NULL,
                              q.want_text,
                              q.want_metadata,
                              q.want_embedding};
    struct search_result res;
    char err[512];
    enum search_status st = search_run(app->search, c, &coll, &sq, &res, err, sizeof(err));
    db_pool_release(app->db, c);
    c = NULL;
    if (st == SEARCH_NOT_FOUND) {
        coll_not_found(req, resp, req->params[0]);
    } else if (st != SEARCH_OK) {
        api_db_failed(req, resp, err);
    } else {
        if (res.loaded || res.streamed)
            log_info("request %s: collection %s version %lld %s in %.0f ms (%lld chunks)", req->id,
                     coll.id, (long long)res.version, res.streamed ? "streamed" : "loaded",
                     res.load_ms, (long long)res.rows);
        render_query(req, resp, &coll, &sq, &res, &info);
        search_result_free(&res);
    }
out:
    if (c)
        db_pool_release(app->db, c);
    free(vectors);
    query_req_free(&q);
}

/* POST /v1/embed: {"collection": "<id>", "texts": [...]}. */
void api_embed(void *appv, struct http_req *req, struct http_resp *resp)
{
    static const char *const keys[] = {"collection", "texts", NULL};
    struct app *app = appv;
    struct query_req q;
    memset(&q, 0, sizeof(q));
    search_filter_init(&q.filter);
    struct job_req_error e;
    memset(&e, 0, sizeof(e));
    PGconn *c = NULL;
    float *vectors = NULL;
    struct search_embed_info info;
    memset(&info, 0, sizeof(info));
    struct search_coll coll;
    const char *id = NULL;
    json_object *v;
    if (!body_ok(req, resp))
        goto out;
    if (!app->search) {
        http_problem(resp, req, 503, "search_unavailable", NULL, "search is not running");
        goto out;
    }
    if (!jsonv_parse(req->body.data ? req->body.data : "", req->body.len, 16, &q.root, &e) ||
        !jsonv_want(q.root, json_type_object, "an object", "", &e) ||
        !jsonv_only_known(q.root, keys, "", &e) ||
        !jsonv_string(q.root, "collection", "/collection", 64, &id, NULL, &e)) {
        problem_from(req, resp, &e);
        goto out;
    }
    if (!id) {
        http_problem(resp, req, 422, "missing_field", "/collection",
                     "/collection is required: the id of the collection whose space to use");
        goto out;
    }
    if (!json_object_object_get_ex(q.root, "texts", &v) || json_object_is_type(v, json_type_null)) {
        http_problem(resp, req, 422, "missing_field", "/texts", "/texts is required: 1 to %d texts",
                     SEARCH_MAX_QUERIES);
        goto out;
    }
    if (!parse_texts(v, SEARCH_MAX_QUERIES, &q, &e)) {
        problem_from(req, resp, &e);
        goto out;
    }
    if (!head(app, req, resp, id, &c, &coll))
        goto out;
    db_pool_release(app->db, c);
    c = NULL;
    if (!texts_fit(&coll, q.texts, q.lens, q.n_texts, "/texts", false, &e)) {
        problem_from(req, resp, &e);
        goto out;
    }
    vectors = malloc(q.n_texts * (size_t)coll.dims * sizeof(float));
    if (!vectors) {
        http_problem(resp, req, 503, "out_of_memory", NULL, "the server is out of memory");
        goto out;
    }
    if (!embed(app, req, resp, &coll, q.texts, q.lens, q.n_texts, vectors, &info))
        goto out;
    struct buf *b = &resp->body;
    resp->status = 200;
    resp->content_type = "application/json";
    bool ok = buf_puts(b, "{\"collection\":") && jsonw_cstr(b, coll.id) &&
              buf_puts(b, ",\"model\":") && jsonw_cstr(b, coll.model) &&
              buf_printf(b, ",\"output_dimensionality\":%d,\"task_type\":", coll.dims) &&
              jsonw_cstr(b, coll.query_task_type) &&
              buf_printf(b, ",\"normalized\":%s,\"embeddings\":[",
                         coll.normalize || models_unit_length(models_find(coll.model), coll.dims)
                             ? "true"
                             : "false");
    for (size_t i = 0; ok && i < q.n_texts; i++)
        ok = (!i || buf_putc(b, ',')) && put_vector(b, vectors + i * (size_t)coll.dims, coll.dims);
    ok = ok && buf_puts(b, "],") && put_usage(b, &coll, &info) && buf_putc(b, '}');
    if (!ok)
        http_problem(resp, req, 500, "internal", NULL, "the response could not be built");
out:
    if (c)
        db_pool_release(app->db, c);
    free(vectors);
    query_req_free(&q);
}
