/*
 * api_batches.c: asyncBatchEmbedContent, batches get/list/cancel/delete and
 * the interactive embedContent / batchEmbedContents endpoints.
 */
#include "http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct sim_model *model_or_reply(const char *id, const char *version, const char *verb,
                                              bool need_batch, struct reply *r)
{
    const struct sim_model *m = sim_model_find(id);
    if (m && (m->batch || !need_batch))
        return m;
    char msg[400];
    snprintf(msg, sizeof(msg),
             "models/%.80s is not found for API version %s, or is not supported for %s. Call "
             "ListModels to see the list of available models and their supported methods.",
             id, version, verb);
    reply_error(r, 404, "NOT_FOUND", msg);
    return NULL;
}

static bool body_size_ok(struct sim *sim, const struct route *rt, struct reply *r)
{
    pthread_mutex_lock(&sim->lock);
    int64_t max = sim->cfg.s.max_request_bytes;
    pthread_mutex_unlock(&sim->lock);
    if ((int64_t)rt->body_len <= max)
        return true;
    char msg[128];
    snprintf(msg, sizeof(msg), "Request payload size exceeds the limit: %lld bytes.",
             (long long)max);
    reply_error(r, 400, "INVALID_ARGUMENT", msg);
    return false;
}

/* Load the items of a file-based batch from its uploaded JSONL input. */
static bool load_file_items(struct sim *sim, const struct sim_model *m, struct sim_batch_req *req,
                            struct reply *r)
{
    struct sim_file *f = sim_file_get(sim, req->file_name + 6);
    bool ready = false;
    if (f) {
        pthread_mutex_lock(&sim->lock);
        ready = f->finalized; /* a finalized file's data never changes again */
        pthread_mutex_unlock(&sim->lock);
    }
    if (!ready) {
        sim_file_release(sim, f);
        char msg[200];
        snprintf(msg, sizeof(msg), "File %.100s not found or not ready.", req->file_name);
        reply_error(r, 404, "NOT_FOUND", msg);
        return false;
    }
    struct sim_perr e = {0};
    bool ok = sim_parse_jsonl(f->data.data ? f->data.data : "", f->data.len, m, &req->items,
                              &req->n_items, &e);
    sim_file_release(sim, f);
    if (!ok)
        reply_perr(r, &e);
    return ok;
}

/*
 * taskType and title sent to a model that takes its task inside the text
 * (gemini-embedding-2): Google accepts and ignores them (docs/gemini-embedding-2.md
 * §4.4), and so does the simulator, counting them in task_fields_ignored. With
 * strict_task_fields they are refused instead, with a 400 of the simulator's
 * own wording (Google has published none), so that a test catches a client
 * that treats the model like gemini-embedding-001.
 */
static bool task_fields_ok(struct sim *sim, const struct sim_model *m, const struct sim_item *items,
                           size_t n, struct reply *r)
{
    if (!m->prompt_task)
        return true;
    size_t k = 0, first = 0;
    for (size_t i = n; i-- > 0;)
        if (items[i].task_fields) {
            k++;
            first = i;
        }
    pthread_mutex_lock(&sim->lock);
    bool strict = sim->cfg.s.strict_task_fields;
    if (!strict)
        sim->stats.task_fields_ignored += k;
    pthread_mutex_unlock(&sim->lock);
    if (!strict || k == 0)
        return true;
    char msg[400];
    snprintf(msg, sizeof(msg),
             "request %zu: taskType and title are not used by models/%s, which takes the task as "
             "an instruction inside the text (gemini-sim strict_task_fields; Google accepts and "
             "ignores these fields)",
             first, m->id);
    reply_error(r, 400, "INVALID_ARGUMENT", msg);
    return false;
}

static void do_create(struct sim *sim, struct route *rt, struct reply *r)
{
    pthread_mutex_lock(&sim->lock);
    sim->stats.creates++;
    pthread_mutex_unlock(&sim->lock);
    const struct sim_model *m =
        model_or_reply(rt->model, rt->version, "asyncBatchEmbedContent", true, r);
    if (!m || !body_size_ok(sim, rt, r))
        return;
    struct sim_perr e = {0};
    json_object *root = sim_parse_json(rt->body, rt->body_len, &e);
    struct sim_batch_req req;
    memset(&req, 0, sizeof(req));
    if (!root || !sim_parse_batch_create(root, m, &req, &e)) {
        json_object_put(root);
        reply_perr(r, &e);
        return;
    }
    json_object_put(root);
    if ((req.file_name && !load_file_items(sim, m, &req, r)) ||
        !task_fields_ok(sim, m, req.items, req.n_items, r)) {
        sim_batch_req_cleanup(&req);
        return;
    }
    struct sim_batch *b = sim_batch_create(sim, m, &req);
    sim_batch_req_cleanup(&req);
    if (!b) {
        reply_oom(r);
        return;
    }
    if (!sim_render_operation(sim, b, true, &r->body))
        reply_oom(r);
    sim_batch_release(sim, b);
}

static void do_get(struct sim *sim, struct route *rt, struct reply *r)
{
    pthread_mutex_lock(&sim->lock);
    sim->stats.gets++;
    pthread_mutex_unlock(&sim->lock);
    struct sim_batch *b = sim_batch_get(sim, rt->id);
    if (!b) {
        reply_error(r, 404, "NOT_FOUND", "Requested entity was not found.");
        return;
    }
    if (!sim_render_operation(sim, b, true, &r->body))
        reply_oom(r);
    sim_batch_release(sim, b);
}

static bool parse_nonneg(const char *s, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0)
        return false;
    *out = v;
    return true;
}

/* GET batches: newest first; the page token is the sequence number to resume below. */
static void do_list(struct sim *sim, struct MHD_Connection *c, struct reply *r)
{
    long long page_size = 50, start_below = -1;
    const char *ps = req_arg(c, "pageSize"), *pt = req_arg(c, "pageToken");
    if (!ps)
        ps = req_arg(c, "page_size");
    if (!pt)
        pt = req_arg(c, "page_token");
    if (ps && !parse_nonneg(ps, &page_size)) {
        reply_error(r, 400, "INVALID_ARGUMENT", "Invalid value for page_size.");
        return;
    }
    if (page_size == 0)
        page_size = 50;
    if (page_size > 1000)
        page_size = 1000;
    if (pt && *pt && (pt[0] != 'p' || !parse_nonneg(pt + 1, &start_below))) {
        reply_error(r, 400, "INVALID_ARGUMENT", "Invalid page token.");
        return;
    }
    pthread_mutex_lock(&sim->lock);
    sim->stats.lists++;
    size_t n = sim->n_batches, count = 0;
    struct sim_batch **page = calloc((size_t)page_size, sizeof(*page));
    uint64_t next = 0;
    for (size_t i = n; page && i-- > 0;) {
        struct sim_batch *b = sim->batches[i];
        if (start_below >= 0 && b->seq >= (uint64_t)start_below)
            continue;
        if (count == (size_t)page_size) {
            next = page[count - 1]->seq;
            break;
        }
        b->refs++;
        page[count++] = b;
    }
    pthread_mutex_unlock(&sim->lock);
    if (!page) {
        reply_oom(r);
        return;
    }
    bool ok = buf_putc(&r->body, '{');
    if (count) {
        ok = ok && buf_puts(&r->body, "\"operations\":[");
        for (size_t i = 0; i < count && ok; i++)
            ok = (!i || buf_putc(&r->body, ',')) &&
                 sim_render_operation(sim, page[i], false, &r->body);
        ok = ok && buf_putc(&r->body, ']');
        if (next)
            ok = ok &&
                 buf_printf(&r->body, ",\"nextPageToken\":\"p%llu\"", (unsigned long long)next);
    }
    ok = ok && buf_putc(&r->body, '}');
    for (size_t i = 0; i < count; i++)
        sim_batch_release(sim, page[i]);
    free(page);
    if (!ok)
        reply_oom(r);
}

static void do_cancel_delete(struct sim *sim, struct route *rt, struct reply *r, bool del)
{
    pthread_mutex_lock(&sim->lock);
    if (del)
        sim->stats.deletes++;
    else
        sim->stats.cancels++;
    pthread_mutex_unlock(&sim->lock);
    bool found = del ? sim_batch_delete(sim, rt->id) : sim_batch_cancel(sim, rt->id);
    if (!found) {
        reply_error(r, 404, "NOT_FOUND", "Requested entity was not found.");
        return;
    }
    if (!buf_puts(&r->body, "{}"))
        reply_oom(r);
}

static bool tokens_ok(struct sim *sim, const struct sim_model *m, struct sim_item *items, size_t n,
                      struct reply *r)
{
    pthread_mutex_lock(&sim->lock);
    int64_t max = sim_token_limit(&sim->cfg.s, m);
    bool cut = m->truncates && !sim->cfg.s.long_input_error;
    pthread_mutex_unlock(&sim->lock);
    for (size_t i = 0; i < n; i++) {
        items[i].tokens = sim_token_count(items[i].text, items[i].text_len);
        if (items[i].tokens > max && cut) {
            items[i].text_len = sim_token_prefix(items[i].text, items[i].text_len, max);
            items[i].tokens = sim_token_count(items[i].text, items[i].text_len);
            pthread_mutex_lock(&sim->lock);
            sim->stats.texts_truncated++;
            pthread_mutex_unlock(&sim->lock);
        }
        if (items[i].tokens > max) {
            char msg[200];
            snprintf(msg, sizeof(msg),
                     "The input token count (%lld) exceeds the maximum number of tokens allowed "
                     "(%lld).",
                     (long long)items[i].tokens, (long long)max);
            reply_error(r, 400, "INVALID_ARGUMENT", msg);
            return false;
        }
    }
    return true;
}

static void do_sync(struct sim *sim, struct route *rt, struct reply *r, bool one)
{
    const struct sim_model *m = model_or_reply(
        rt->model, rt->version, one ? "embedContent" : "batchEmbedContents", false, r);
    if (!m || !body_size_ok(sim, rt, r))
        return;
    struct sim_perr e = {0};
    json_object *root = sim_parse_json(rt->body, rt->body_len, &e);
    struct sim_item *items = NULL;
    size_t n = 0;
    bool ok = root != NULL;
    if (ok && one) {
        items = calloc(1, sizeof(*items));
        n = 1;
        ok = items && sim_parse_embed_request(root, m, "", items, &e);
        if (!items)
            e = (struct sim_perr){.http = 500, .status = "INTERNAL", .msg = "Internal error."};
    } else if (ok) {
        ok = sim_parse_sync_batch(root, m, &items, &n, &e);
    }
    json_object_put(root);
    if (!ok) {
        reply_perr(r, &e);
        sim_items_free(items, n);
        return;
    }
    if (task_fields_ok(sim, m, items, n, r) && tokens_ok(sim, m, items, n, r)) {
        pthread_mutex_lock(&sim->lock);
        sim->stats.sync_calls++;
        sim->stats.sync_texts += n;
        pthread_mutex_unlock(&sim->lock);
        int64_t total = 0;
        bool w = buf_puts(&r->body, one ? "{\"embedding\":" : "{\"embeddings\":[");
        for (size_t i = 0; i < n && w; i++) {
            w = (!i || buf_putc(&r->body, ',')) && sim_put_embedding(&r->body, m, &items[i]);
            total += items[i].tokens;
        }
        w = w && (one || buf_putc(&r->body, ']'));
        /* gemini-embedding-2 reports usage on interactive calls too: one
         * usageMetadata for the whole call (the schema's; no live capture of
         * batchEmbedContents was found: docs/gemini-embedding-2.md §5.2) */
        if (m->usage_metadata)
            w = w && buf_printf(&r->body, ",\"usageMetadata\":{\"promptTokenCount\":%lld}",
                                (long long)total);
        w = w && buf_putc(&r->body, '}');
        if (!w)
            reply_oom(r);
    }
    sim_items_free(items, n);
}

void api_batches(struct sim *sim, struct MHD_Connection *c, struct route *rt, struct reply *r)
{
    switch (rt->kind) {
    case RT_CREATE:
        do_create(sim, rt, r);
        break;
    case RT_GET:
        do_get(sim, rt, r);
        break;
    case RT_LIST:
        do_list(sim, c, r);
        break;
    case RT_CANCEL:
        do_cancel_delete(sim, rt, r, false);
        break;
    case RT_DELETE:
        do_cancel_delete(sim, rt, r, true);
        break;
    case RT_SYNC_BATCH:
        do_sync(sim, rt, r, false);
        break;
    case RT_SYNC_ONE:
        do_sync(sim, rt, r, true);
        break;
    default:
        reply_error(r, 404, "NOT_FOUND", "Requested entity was not found.");
    }
}
