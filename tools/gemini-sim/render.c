/*
 * render.c: the JSON the simulator sends: google.longrunning.Operation for
 * batches, inline results and output files, File resources and
 * google.rpc.Status errors. Shapes follow shared/gemini-batch-api.md §3, §5, §8.
 */
#include "sim.h"

#include "util/jsonw.h"
#include "util/numfmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TYPE_BATCH "type.googleapis.com/google.ai.generativelanguage.v1main.EmbedContentBatch"
#define TYPE_OUTPUT                                                                                \
    "type.googleapis.com/google.ai.generativelanguage.v1main.EmbedContentBatchOutput"

bool sim_put_time(struct buf *b, int64_t ns)
{
    time_t secs = (time_t)(ns / 1000000000LL);
    struct tm tm;
    char s[64];
    gmtime_r(&secs, &tm);
    size_t n = strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(s + n, sizeof(s) - n, ".%09lldZ", (long long)(ns % 1000000000LL));
    return buf_putc(b, '"') && buf_puts(b, s) && buf_putc(b, '"');
}

bool sim_put_jstr(struct buf *b, const char *s, size_t n)
{
    return jsonw_str(b, s, n);
}

static bool put_jstr0(struct buf *b, const char *s)
{
    return sim_put_jstr(b, s, strlen(s));
}

bool sim_put_embedding(struct buf *out, const struct sim_model *m, const struct sim_item *it)
{
    float v[SIM_NATIVE_DIMS_MAX];
    int dims = it->dims > 0 ? it->dims : m->native_dims;
    sim_vector_dims(m, it->task, it->text, it->text_len, dims, v);
    if (!buf_reserve(out, (size_t)dims * NUMFMT_F32_MAX + 16) || !buf_puts(out, "{\"values\":["))
        return false;
    for (int i = 0; i < dims; i++) {
        if (i)
            out->data[out->len++] = ',';
        out->len += numfmt_f32(out->data + out->len, v[i]);
    }
    out->data[out->len] = '\0';
    return buf_puts(out, "]}");
}

bool sim_put_usage(struct buf *out, const struct sim_model *m, int64_t tokens)
{
    /* gemini-embedding-2: "usageMetadata":{"promptTokenCount":81}, a number
     * (a live capture, docs/gemini-embedding-2.md §5.2); 001: "tokenCount":"1",
     * a string (shared/gemini-batch-api.md §3.5) */
    if (m->usage_metadata)
        return buf_printf(out, "\"usageMetadata\":{\"promptTokenCount\":%lld}", (long long)tokens);
    return buf_printf(out, "\"tokenCount\":\"%lld\"", (long long)tokens);
}

bool sim_render_error(struct buf *out, int http, const char *status, const char *msg,
                      const char *details_json)
{
    return buf_printf(out, "{\"error\":{\"code\":%d,\"message\":", http) && put_jstr0(out, msg) &&
           buf_puts(out, ",\"status\":") && put_jstr0(out, status) &&
           (!details_json || (buf_puts(out, ",\"details\":") && buf_puts(out, details_json))) &&
           buf_puts(out, "}}");
}

static bool put_item_error(struct buf *out, const struct sim_item *it)
{
    return buf_printf(out, "{\"code\":%d,\"message\":", it->error_code) &&
           put_jstr0(out, it->error_msg) && buf_putc(out, '}');
}

/* Order in which results are written: identity, or a seeded permutation. */
static size_t *result_order(const struct sim_batch *b)
{
    size_t *ord = malloc((b->n_items ? b->n_items : 1) * sizeof(*ord));
    if (!ord)
        return NULL;
    for (size_t i = 0; i < b->n_items; i++)
        ord[i] = i;
    if (b->shuffle && b->n_items > 1) {
        uint64_t st = b->seed ^ (b->seq * 0xa0761d6478bd642fULL);
        for (size_t i = b->n_items - 1; i > 0; i--) {
            size_t j = (size_t)(sim_splitmix(&st) % (i + 1));
            size_t t = ord[i];
            ord[i] = ord[j];
            ord[j] = t;
        }
        /* a shuffle that happens to be the identity would test nothing */
        bool ident = true;
        for (size_t i = 0; i < b->n_items && ident; i++)
            ident = ord[i] == i;
        if (ident) {
            size_t t = ord[0];
            ord[0] = ord[1];
            ord[1] = t;
        }
    }
    return ord;
}

static bool render_inline(const struct sim_batch *b, const size_t *ord, struct buf *out)
{
    if (!buf_putc(out, '['))
        return false;
    for (size_t k = 0; k < b->n_items; k++) {
        const struct sim_item *it = &b->items[ord[k]];
        if (k && !buf_putc(out, ','))
            return false;
        bool ok;
        if (it->error_code)
            ok = buf_puts(out, "{\"error\":") && put_item_error(out, it);
        else
            ok = buf_puts(out, "{\"response\":{\"embedding\":") &&
                 sim_put_embedding(out, b->model, it) && buf_putc(out, ',') &&
                 sim_put_usage(out, b->model, it->tokens) && buf_putc(out, '}');
        if (!ok)
            return false;
        if (it->metadata && !b->omit_metadata &&
            !(buf_puts(out, ",\"metadata\":") && buf_puts(out, it->metadata)))
            return false;
        if (!buf_putc(out, '}'))
            return false;
    }
    return buf_putc(out, ']');
}

static bool render_jsonl(const struct sim_batch *b, const size_t *ord, struct buf *out)
{
    for (size_t k = 0; k < b->n_items; k++) {
        const struct sim_item *it = &b->items[ord[k]];
        bool ok;
        if (it->error_code)
            ok = buf_puts(out, "{\"error\":") && put_item_error(out, it);
        else
            ok = buf_puts(out, "{\"response\":{") && sim_put_usage(out, b->model, it->tokens) &&
                 buf_puts(out, ",\"embedding\":") && sim_put_embedding(out, b->model, it) &&
                 buf_putc(out, '}');
        if (!ok)
            return false;
        if (it->key && !(buf_puts(out, ",\"key\":") && put_jstr0(out, it->key)))
            return false;
        /* an inline request answered in a file (inline_as_file) has no key: its line carries
         * the request's metadata echo instead, as its inline result would */
        if (!it->key && it->metadata && !b->omit_metadata &&
            !(buf_puts(out, ",\"metadata\":") && buf_puts(out, it->metadata)))
            return false;
        if (!buf_puts(out, "}\n"))
            return false;
    }
    return true;
}

bool sim_batch_results(struct sim_batch *b, const char **data, size_t *len)
{
    bool ok = true;
    pthread_mutex_lock(&b->render_lock);
    if (!b->rendered) {
        struct buf out;
        buf_init(&out, SIZE_MAX / 2);
        size_t *ord = result_order(b);
        ok = ord && (b->file_output ? render_jsonl(b, ord, &out) : render_inline(b, ord, &out));
        free(ord);
        if (ok)
            b->rendered = buf_steal(&out, &b->rendered_len);
        buf_cleanup(&out);
    }
    *data = b->rendered;
    *len = b->rendered_len;
    pthread_mutex_unlock(&b->render_lock);
    return ok;
}

static bool put_stat(struct buf *out, bool *first, const char *name, size_t v)
{
    if (v == 0)
        return true; /* proto3 JSON omits zero values */
    bool ok = buf_printf(out, "%s\"%s\":\"%zu\"", *first ? "" : ",", name, v);
    *first = false;
    return ok;
}

static bool put_stats(struct buf *out, const struct sim_batch *b, enum sim_state st)
{
    size_t n = b->n_items, ok = 0, failed = 0, pending = 0;
    switch (st) {
    case SIM_STATE_SUCCEEDED:
        failed = b->n_failed;
        ok = n - failed;
        break;
    case SIM_STATE_FAILED:
        failed = n;
        break;
    default:
        pending = n;
    }
    bool first = true;
    return buf_puts(out, ",\"batchStats\":{") && put_stat(out, &first, "requestCount", n) &&
           put_stat(out, &first, "successfulRequestCount", ok) &&
           put_stat(out, &first, "failedRequestCount", failed) &&
           put_stat(out, &first, "pendingRequestCount", pending) && buf_putc(out, '}');
}

static bool put_output(struct buf *out, struct sim_batch *b, bool in_response)
{
    if (b->file_output)
        return buf_printf(out, "\"responsesFile\":\"files/batch-%s\"", b->id);
    const char *data;
    size_t len;
    (void)in_response;
    return sim_batch_results(b, &data, &len) &&
           buf_puts(out, "\"inlinedResponses\":{\"inlinedResponses\":") &&
           buf_append(out, data, len) && buf_putc(out, '}');
}

static const char *terminal_error(enum sim_state st, int *code)
{
    switch (st) {
    case SIM_STATE_FAILED:
        *code = 13;
        return "The batch failed: an internal error occurred while processing it.";
    case SIM_STATE_EXPIRED:
        *code = 4;
        return "The batch expired: it was pending or running for more than 48 hours.";
    case SIM_STATE_CANCELLED:
        *code = 1;
        return "The batch was cancelled.";
    default:
        return NULL;
    }
}

bool sim_render_operation(struct sim *sim, struct sim_batch *b, bool with_output, struct buf *out)
{
    int64_t upd, end;
    pthread_mutex_lock(&sim->lock);
    enum sim_state st = sim_batch_state(b, sim_now_ns(), &upd, &end);
    pthread_mutex_unlock(&sim->lock);
    bool done = st >= SIM_STATE_SUCCEEDED;
    bool ok = buf_printf(out,
                         "{\"name\":\"batches/%s\",\"metadata\":{\"@type\":\"" TYPE_BATCH
                         "\",\"model\":\"models/%s\"",
                         b->id, b->model->id);
    if (ok && b->display_name)
        ok = buf_puts(out, ",\"displayName\":") && put_jstr0(out, b->display_name);
    if (ok && b->input_file)
        ok = buf_puts(out, ",\"inputConfig\":{\"fileName\":") && put_jstr0(out, b->input_file) &&
             buf_putc(out, '}');
    if (ok && st == SIM_STATE_SUCCEEDED && with_output)
        ok = buf_puts(out, ",\"output\":{") && put_output(out, b, false) && buf_putc(out, '}');
    ok = ok && buf_puts(out, ",\"createTime\":") && sim_put_time(out, b->create_ns);
    if (ok && end)
        ok = buf_puts(out, ",\"endTime\":") && sim_put_time(out, end);
    ok = ok && buf_puts(out, ",\"updateTime\":") && sim_put_time(out, upd) && put_stats(out, b, st);
    if (ok && b->priority)
        ok = buf_printf(out, ",\"priority\":\"%lld\"", (long long)b->priority);
    ok = ok &&
         buf_printf(out, ",\"state\":\"%s\",\"name\":\"batches/%s\"}", sim_state_names[st], b->id);
    if (ok && done)
        ok = buf_puts(out, ",\"done\":true");
    int code = 0;
    const char *emsg = terminal_error(st, &code);
    if (ok && emsg)
        ok = buf_printf(out, ",\"error\":{\"code\":%d,\"message\":", code) &&
             put_jstr0(out, emsg) && buf_putc(out, '}');
    if (ok && st == SIM_STATE_SUCCEEDED && with_output)
        ok = buf_puts(out, ",\"response\":{\"@type\":\"" TYPE_OUTPUT "\",") &&
             put_output(out, b, true) && buf_putc(out, '}');
    return ok && buf_putc(out, '}');
}

bool sim_render_file(const struct sim_file *f, const char *base_url, struct buf *out)
{
    int64_t size = (int64_t)f->data.len;
    bool ok = buf_printf(out, "{\"name\":\"files/%s\"", f->id);
    if (ok && f->display_name)
        ok = buf_puts(out, ",\"displayName\":") && put_jstr0(out, f->display_name);
    ok = ok && buf_puts(out, ",\"mimeType\":") &&
         put_jstr0(out, f->mime_type ? f->mime_type : "application/octet-stream");
    /* int64 in proto3 JSON: a string, and left out when zero (an empty file) */
    if (ok && size)
        ok = buf_printf(out, ",\"sizeBytes\":\"%lld\"", (long long)size);
    ok = ok && buf_puts(out, ",\"createTime\":") && sim_put_time(out, f->create_ns) &&
         buf_puts(out, ",\"updateTime\":") && sim_put_time(out, f->create_ns) &&
         buf_puts(out, ",\"expirationTime\":") &&
         sim_put_time(out, f->create_ns + 48LL * 3600 * 1000000000LL);
    if (ok && f->finalized)
        ok = buf_printf(out, ",\"sha256Hash\":\"%s\"", f->sha256_b64);
    return ok &&
           buf_printf(out, ",\"uri\":\"%s/files/%s\",\"state\":\"%s\",\"source\":\"UPLOADED\"}",
                      base_url, f->id, f->finalized ? "ACTIVE" : "PROCESSING");
}
