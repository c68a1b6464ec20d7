/* batches.c: the Gemini batch endpoints (create, get, list, cancel, delete) and the synchronous
 * batchEmbedContents call, on the transport of client.c. */
#include "gemini/client_internal.h"

#include <curl/curl.h>

#include <string.h>

/* An Operation's body, parsed as it arrives (never held whole), within the client's cap. */
struct op_feed {
    struct gem_op_stream st;
    size_t seen, max;
    bool over;
};

static bool op_feed(void *ud, const char *p, size_t n)
{
    struct op_feed *f = ud;
    if (n > f->max - f->seen) {
        f->over = true;
        return false;
    }
    f->seen += n;
    return gem_op_stream_feed(&f->st, p, n);
}

/* Perform r with its 2xx body streamed into f, then parse it into op. */
static void perform_op(struct gem_client *c, struct req *r, struct op_feed *f,
                       struct gem_operation *op, struct gem_call *res)
{
    char err[256] = "";
    bool json = false, limit = false;
    const char *why;
    r->feed = op_feed;
    r->feed_ud = f;
    f->max = c->max_response;
    if (gem_client_perform(c, r, res)) {
        if (!gem_op_stream_finish(&f->st, op, &json, err, sizeof(err)))
            gem_client_body_unusable_as(c, r, json, err, res);
    } else if (f->over) {
        res->outcome = r->kind == REQ_CREATE ? GEM_UNKNOWN : GEM_FATAL;
        gem_client_set_detail(c, res, "%s: response larger than %zu bytes", r->op, f->max);
    } else if ((why = gem_op_stream_error(&f->st, &limit))) {
        /* refused on the way: mangled (worth another GET) or beyond reason */
        gem_client_body_unusable_as(c, r, limit, why, res);
        if (limit && r->kind != REQ_CREATE)
            res->outcome = GEM_FATAL;
    }
    gem_op_stream_cleanup(&f->st);
}

static void do_create_batch(struct gem_client *c, const char *model, const char *body, size_t len,
                            struct gem_operation *op, struct gem_call *res)
{
    static const char what[] = "create batch";
    char url[URL_MAX];
    memset(op, 0, sizeof(*op));
    const char *id = gem_client_model_id(model);
    if (!id || !body) {
        gem_client_reject(c, res, what, !id ? "invalid model id" : "no request body");
        return;
    }
    if (!gem_client_fmt_url(url, sizeof(url), "%s/%s/models/%s:asyncBatchEmbedContent", c->base,
                            c->version, id)) {
        gem_client_reject(c, res, what, "URL too long");
        return;
    }
    struct req r = {what,       "POST", url,  body, len,  JSON_CTYPE, NULL,
                    REQ_CREATE, NULL,   NULL, NULL, NULL, false};
    /* a batch done at once may carry its results in the answer: not needed here */
    struct op_feed f = {0};
    gem_op_stream_init_mode(&f.st, GEM_RESULTS_DROP, NULL);
    perform_op(c, &r, &f, op, res);
}

static void do_get_batch(struct gem_client *c, const char *name, const struct gem_result_sink *sink,
                         struct gem_operation *op, struct gem_call *res)
{
    static const char what[] = "get batch";
    char url[URL_MAX];
    memset(op, 0, sizeof(*op));
    if (!gem_client_valid_name(name, "batches/") ||
        !gem_client_fmt_url(url, sizeof(url), "%s/%s/%s", c->base, c->version, name)) {
        gem_client_reject(c, res, what, "invalid batch name");
        return;
    }
    /* a succeeded batch's body holds its inline results: hundreds of MB */
    struct req r = {what, "GET", url, NULL, 0, NULL, NULL, REQ_SAFE, NULL, NULL, NULL, NULL, false};
    struct op_feed f = {0};
    gem_op_stream_init_mode(&f.st, sink ? GEM_RESULTS_SINK : GEM_RESULTS_KEEP, sink);
    perform_op(c, &r, &f, op, res);
}

static void do_list_batches(struct gem_client *c, int page_size, const char *page_token,
                            struct gem_operation **ops, size_t *n, char *next_token,
                            size_t token_len, struct gem_call *res)
{
    static const char what[] = "list batches";
    char err[256] = "";
    *ops = NULL;
    *n = 0;
    /* the token is read before next_token is cleared: both may be the same buffer */
    bool have_token = page_token && *page_token;
    char *esc = have_token ? curl_easy_escape(c->curl, page_token, 0) : NULL;
    if (token_len)
        next_token[0] = '\0';
    struct buf url;
    buf_init(&url, URL_MAX);
    bool built = (esc || !have_token) && buf_printf(&url, "%s/%s/batches", c->base, c->version);
    char sep = '?';
    if (built && page_size > 0) {
        built = buf_printf(&url, "?pageSize=%d", page_size);
        sep = '&';
    }
    if (built && esc)
        built = buf_printf(&url, "%cpageToken=%s", sep, esc);
    curl_free(esc);
    if (!built) {
        buf_cleanup(&url);
        gem_client_reject(c, res, what, "page token too long");
        return;
    }
    struct req r = {what,     "GET", url.data, NULL, 0,    NULL, NULL,
                    REQ_SAFE, NULL,  NULL,     NULL, NULL, false};
    if (gem_client_perform(c, &r, res) &&
        !gem_parse_list(gem_client_data_of(&c->body), c->body.len, ops, n, next_token, token_len,
                        err, sizeof(err)))
        gem_client_body_unusable(c, &r, &c->body, err, res);
    buf_cleanup(&url);
}

void gem_cancel_batch(struct gem_client *c, const char *name, struct gem_call *res)
{
    gem_client_begin(c, GEM_EP_CANCEL);
    gem_client_name_call(c, "cancel batch", "POST", name, "batches/", ":cancel", res);
    gem_client_end(c, res);
}

void gem_delete_batch(struct gem_client *c, const char *name, struct gem_call *res)
{
    gem_client_begin(c, GEM_EP_DELETE);
    gem_client_name_call(c, "delete batch", "DELETE", name, "batches/", "", res);
    gem_client_end(c, res);
}

static void do_embed_sync(struct gem_client *c, const char *model, const char *body, size_t len,
                          struct gem_result **results, size_t *n, struct gem_call *res)
{
    static const char what[] = "embed";
    char url[URL_MAX], err[256] = "";
    *results = NULL;
    *n = 0;
    const char *id = gem_client_model_id(model);
    if (!id || !body ||
        !gem_client_fmt_url(url, sizeof(url), "%s/%s/models/%s:batchEmbedContents", c->base,
                            c->version, id)) {
        gem_client_reject(c, res, what, !body ? "no request body" : "invalid model id");
        return;
    }
    struct req r = {what,     "POST", url,  body, len,  JSON_CTYPE, NULL,
                    REQ_SAFE, NULL,   NULL, NULL, NULL, false};
    if (gem_client_perform(c, &r, res) &&
        !gem_parse_sync(gem_client_data_of(&c->body), c->body.len, results, n, err, sizeof(err)))
        gem_client_body_unusable(c, &r, &c->body, err, res);
}

/* ---- the calls, each accounted from start to end ---- */

void gem_create_batch(struct gem_client *c, const char *model, const char *body, size_t len,
                      struct gem_operation *op, struct gem_call *res)
{
    gem_client_begin(c, GEM_EP_CREATE);
    do_create_batch(c, model, body, len, op, res);
    gem_client_end(c, res);
}

void gem_get_batch(struct gem_client *c, const char *name, struct gem_operation *op,
                   struct gem_call *res)
{
    gem_client_begin(c, GEM_EP_GET);
    do_get_batch(c, name, NULL, op, res);
    gem_client_end(c, res);
}

void gem_get_batch_to(struct gem_client *c, const char *name, const struct gem_result_sink *sink,
                      struct gem_operation *op, struct gem_call *res)
{
    gem_client_begin(c, GEM_EP_GET);
    do_get_batch(c, name, sink, op, res);
    gem_client_end(c, res);
}

void gem_list_batches(struct gem_client *c, int page_size, const char *page_token,
                      struct gem_operation **ops, size_t *n, char *next_token, size_t token_len,
                      struct gem_call *res)
{
    gem_client_begin(c, GEM_EP_LIST);
    do_list_batches(c, page_size, page_token, ops, n, next_token, token_len, res);
    gem_client_end(c, res);
}

void gem_embed_sync(struct gem_client *c, const char *model, const char *body, size_t len,
                    struct gem_result **results, size_t *n, struct gem_call *res)
{
    gem_client_begin(c, GEM_EP_SYNC);
    do_embed_sync(c, model, body, len, results, n, res);
    gem_client_end(c, res);
}
