/*
 * http.c: libmicrohttpd glue for gemini-sim: request bodies, routing,
 * authentication, fault injection and response delivery. The handlers for
 * each API live in api_batches.c, api_files.c and api_control.c.
 */
#include "http.h"

#include <microhttpd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

struct req_ctx {
    struct buf body;
    bool too_big;
    int64_t start_ns;
};

void reply_init(struct reply *r)
{
    memset(r, 0, sizeof(*r));
    r->status = 200;
    buf_init(&r->body, SIZE_MAX / 2);
}

void reply_cleanup(struct sim *sim, struct reply *r)
{
    buf_cleanup(&r->body);
    sim_batch_release(sim, r->shared_batch);
    r->shared_batch = NULL;
}

void reply_header(struct reply *r, const char *name, const char *value)
{
    if (r->n_hdr >= REPLY_MAX_HEADERS)
        return;
    snprintf(r->hdr[r->n_hdr].name, sizeof(r->hdr[0].name), "%s", name);
    snprintf(r->hdr[r->n_hdr].value, sizeof(r->hdr[0].value), "%s", value);
    r->n_hdr++;
}

void reply_error(struct reply *r, int http, const char *status, const char *msg)
{
    reply_error_details(r, http, status, msg, NULL);
}

void reply_error_details(struct reply *r, int http, const char *status, const char *msg,
                         const char *details)
{
    buf_reset(&r->body);
    r->status = http;
    if (!sim_render_error(&r->body, http, status, msg, details))
        r->status = 500;
}

void reply_perr(struct reply *r, const struct sim_perr *e)
{
    char details[1200];
    if (e->http == 400 && e->field[0]) {
        struct buf d;
        buf_init(&d, sizeof(details) - 1);
        if (buf_puts(&d, "[{\"@type\":\"type.googleapis.com/google.rpc.BadRequest\","
                         "\"fieldViolations\":[{\"field\":") &&
            sim_put_jstr(&d, e->field, strlen(e->field)) && buf_puts(&d, ",\"description\":") &&
            sim_put_jstr(&d, e->msg, strlen(e->msg)) && buf_puts(&d, "}]}]")) {
            memcpy(details, d.data, d.len + 1);
            buf_cleanup(&d);
            reply_error_details(r, e->http, e->status, e->msg, details);
            return;
        }
        buf_cleanup(&d);
    }
    reply_error(r, e->http, e->status, e->msg);
}

bool reply_oom(struct reply *r)
{
    reply_error(r, 500, "INTERNAL", "Internal error encountered.");
    return false;
}

const char *req_arg(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
}

const char *req_header(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/* ---- response delivery, including the cut-off fault ---- */

struct stream {
    struct sim *sim;
    struct sim_batch *batch; /* keeps data alive when shared */
    char *owned;             /* or owned data */
    const char *data;
    size_t len;
    size_t cut; /* stop (and drop the connection) here */
};

static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
    struct stream *s = cls;
    if (pos >= s->cut)
        return s->cut < s->len ? MHD_CONTENT_READER_END_WITH_ERROR
                               : MHD_CONTENT_READER_END_OF_STREAM;
    size_t n = s->cut - (size_t)pos;
    if (n > max)
        n = max;
    memcpy(out, s->data + pos, n);
    return (ssize_t)n;
}

static void stream_free(void *cls)
{
    struct stream *s = cls;
    sim_batch_release(s->sim, s->batch);
    free(s->owned);
    free(s);
}

static enum MHD_Result send_reply(struct sim *sim, struct MHD_Connection *c, struct reply *r,
                                  bool drop, bool malformed)
{
    struct stream *s = calloc(1, sizeof(*s));
    if (!s)
        return MHD_NO;
    s->sim = sim;
    if (r->shared_batch) {
        s->batch = r->shared_batch;
        r->shared_batch = NULL;
        s->data = r->shared_data;
        s->len = r->shared_len;
    } else {
        s->owned = buf_steal(&r->body, &s->len);
        s->data = s->owned;
    }
    if (malformed && s->len > 1)
        s->len = s->len / 2; /* a 200 whose JSON stops half-way */
    s->cut = drop ? s->len / 2 : s->len;
    size_t sent = s->cut;
    struct MHD_Response *resp =
        MHD_create_response_from_callback(s->len, 256 * 1024, stream_read, s, stream_free);
    if (!resp) {
        stream_free(s);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            r->content_type ? r->content_type : "application/json; charset=UTF-8");
    for (int i = 0; i < r->n_hdr; i++)
        MHD_add_response_header(resp, r->hdr[i].name, r->hdr[i].value);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    pthread_mutex_lock(&sim->lock);
    sim->stats.bytes_out += sent;
    pthread_mutex_unlock(&sim->lock);
    return ret;
}

/* ---- faults ---- */

struct fault_plan {
    int64_t latency_ms;
    int http_error; /* 0 = none */
    char retry_delay[32];
    bool drop;
    bool malformed;
    const char *cls; /* route class, NULL for /_sim/ and unrouted requests */
};

bool sim_fault_fire(struct sim *sim, int64_t *count, double rate)
{
    if (*count > 0) {
        (*count)--;
        return true;
    }
    return rate > 0 && sim_unit(sim_splitmix(&sim->fault_rng)) < rate;
}

static void plan_faults(struct sim *sim, const char *cls, struct fault_plan *p)
{
    memset(p, 0, sizeof(*p));
    pthread_mutex_lock(&sim->lock);
    struct sim_settings *s = &sim->cfg.s;
    if (cls && sim_scope_has(s->fault_scope, cls)) {
        int64_t none = 0;
        if (s->latency_ms > 0 && sim_fault_fire(sim, &none, s->latency_rate)) {
            p->latency_ms = s->latency_ms;
            sim->stats.faults_latency++;
        }
        if (sim_fault_fire(sim, &s->http_error_count, s->http_error_rate)) {
            p->http_error = (int)s->http_error_code;
            snprintf(p->retry_delay, sizeof(p->retry_delay), "%s", s->retry_delay);
            sim->stats.faults_http_error++;
        }
    }
    p->cls = cls;
    pthread_mutex_unlock(&sim->lock);
}

/* Decide the response faults once the handler answered 200, so that a count is never used up
 * by a response the fault does not apply to. */
static void plan_output_faults(struct sim *sim, struct fault_plan *p)
{
    pthread_mutex_lock(&sim->lock);
    struct sim_settings *s = &sim->cfg.s;
    if (p->cls && !p->http_error && sim_scope_has(s->fault_scope, p->cls)) {
        if (sim_fault_fire(sim, &s->drop_count, s->drop_rate))
            p->drop = true;
        else if (sim_fault_fire(sim, &s->malformed_count, s->malformed_rate))
            p->malformed = true;
    }
    pthread_mutex_unlock(&sim->lock);
}

static void inject_http_error(struct reply *r, const struct fault_plan *p)
{
    char details[512];
    switch (p->http_error) {
    case 429:
        if (p->retry_delay[0]) {
            snprintf(details, sizeof(details),
                     "[{\"@type\":\"type.googleapis.com/google.rpc.QuotaFailure\",\"violations\":"
                     "[{\"quotaMetric\":\"generativelanguage.googleapis.com/"
                     "batch_embed_requests\",\"quotaId\":\"BatchRequestsPerMinutePerProject\"}]},"
                     "{\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\",\"retryDelay\":"
                     "\"%s\"}]",
                     p->retry_delay);
            reply_error_details(r, 429, "RESOURCE_EXHAUSTED",
                                "You exceeded your current quota, please check your plan and "
                                "billing details.",
                                details);
        } else {
            reply_error(r, 429, "RESOURCE_EXHAUSTED",
                        "Resource has been exhausted (e.g. check quota).");
        }
        break;
    case 500:
        reply_error(r, 500, "INTERNAL",
                    "An internal error has occurred. Please retry or report in "
                    "https://developers.generativeai.google/guide/troubleshooting");
        break;
    case 503:
        reply_error(r, 503, "UNAVAILABLE", "The service is currently unavailable.");
        break;
    default:
        reply_error(r, p->http_error, p->http_error >= 500 ? "INTERNAL" : "FAILED_PRECONDITION",
                    "Injected error.");
    }
}

static void sleep_ms(struct sim *sim, int64_t ms)
{
    while (ms > 0 && !sim->stopping) {
        int64_t step = ms > 20 ? 20 : ms;
        struct timespec ts = {0, (long)(step * 1000000L)};
        nanosleep(&ts, NULL);
        ms -= step;
    }
}

/* ---- authentication ---- */

static bool authenticate(struct sim *sim, struct MHD_Connection *c, struct reply *r)
{
    const char *key = req_header(c, "x-goog-api-key");
    if (!key)
        key = req_arg(c, "key");
    if (key && strcmp(key, sim->cfg.api_key) == 0)
        return true;
    pthread_mutex_lock(&sim->lock);
    sim->stats.auth_failures++;
    pthread_mutex_unlock(&sim->lock);
    if (!key) {
        reply_error(r, 403, "PERMISSION_DENIED",
                    "Method doesn't allow unregistered callers (callers without established "
                    "identity). Please use API Key or other form of API consumer identity to call "
                    "this API.");
        return false;
    }
    reply_error_details(r, 400, "INVALID_ARGUMENT",
                        "API key not valid. Please pass a valid API key.",
                        "[{\"@type\":\"type.googleapis.com/google.rpc.ErrorInfo\",\"reason\":"
                        "\"API_KEY_INVALID\",\"domain\":\"googleapis.com\",\"metadata\":{"
                        "\"service\":\"generativelanguage.googleapis.com\"}}]");
    return false;
}

/* ---- routing ---- */

static bool valid_id(const char *s, size_t n)
{
    if (n == 0 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return false;
    }
    return true;
}

/* Strip "/v1/" or "/v1beta/" (after an optional extra prefix); sets ver. */
static const char *strip_version(const char *url, const char *prefix, char *ver, size_t vlen)
{
    size_t pl = strlen(prefix);
    if (strncmp(url, prefix, pl) != 0)
        return NULL;
    url += pl;
    if (strncmp(url, "/v1beta/", 8) == 0) {
        snprintf(ver, vlen, "v1beta");
        return url + 8;
    }
    if (strncmp(url, "/v1/", 4) == 0) {
        snprintf(ver, vlen, "v1");
        return url + 4;
    }
    if (strcmp(url, "/v1beta") == 0 || strcmp(url, "/v1") == 0) {
        snprintf(ver, vlen, "%s", url + 1);
        return url + strlen(url);
    }
    return NULL;
}

static void not_found(struct reply *r)
{
    reply_error(r, 404, "NOT_FOUND", "Requested entity was not found.");
}

static void bad_method(struct reply *r, const char *method, const char *path)
{
    char msg[300];
    snprintf(msg, sizeof(msg), "Method %s is not allowed for %.200s.", method, path);
    reply_error(r, 404, "NOT_FOUND", msg);
}

/* Resolve an API route: fills route and returns the fault class, or NULL with r set. */
static const char *route_api(struct route *rt, const char *method, const char *rest,
                             struct reply *r)
{
    bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0,
         del = strcmp(method, "DELETE") == 0;
    if (strncmp(rest, "models/", 7) == 0) {
        const char *colon = strchr(rest + 7, ':');
        if (!colon || colon == rest + 7 || (size_t)(colon - rest - 7) >= sizeof(rt->model)) {
            not_found(r);
            return NULL;
        }
        memcpy(rt->model, rest + 7, (size_t)(colon - rest - 7));
        rt->model[colon - rest - 7] = '\0';
        snprintf(rt->verb, sizeof(rt->verb), "%s", colon + 1);
        if (!post) {
            bad_method(r, method, rest);
            return NULL;
        }
        if (strcmp(rt->verb, "asyncBatchEmbedContent") == 0) {
            rt->kind = RT_CREATE;
            return "create";
        }
        if (strcmp(rt->verb, "batchEmbedContents") == 0) {
            rt->kind = RT_SYNC_BATCH;
            return "sync";
        }
        if (strcmp(rt->verb, "embedContent") == 0) {
            rt->kind = RT_SYNC_ONE;
            return "sync";
        }
        not_found(r);
        return NULL;
    }
    const char *coll = NULL;
    if (strncmp(rest, "batches", 7) == 0)
        coll = "batches";
    else if (strncmp(rest, "files", 5) == 0)
        coll = "files";
    if (!coll) {
        not_found(r);
        return NULL;
    }
    size_t cl = strlen(coll);
    const char *p = rest + cl;
    if (*p == '\0') {
        if (!get) {
            bad_method(r, method, rest);
            return NULL;
        }
        rt->kind = coll[0] == 'b' ? RT_LIST : RT_FILE_LIST;
        return coll[0] == 'b' ? "list" : "files";
    }
    if (*p != '/') {
        not_found(r);
        return NULL;
    }
    p++;
    const char *colon = strchr(p, ':');
    size_t idlen = colon ? (size_t)(colon - p) : strlen(p);
    if (!valid_id(p, idlen) || idlen >= sizeof(rt->id)) {
        not_found(r);
        return NULL;
    }
    memcpy(rt->id, p, idlen);
    rt->id[idlen] = '\0';
    const char *verb = colon ? colon + 1 : "";
    if (coll[0] == 'b') {
        if (strcmp(verb, "cancel") == 0 && post) {
            rt->kind = RT_CANCEL;
            return "cancel";
        }
        if (!*verb && get) {
            rt->kind = RT_GET;
            return "get";
        }
        if (!*verb && del) {
            rt->kind = RT_DELETE;
            return "delete";
        }
    } else {
        if (strcmp(verb, "download") == 0 && get) {
            rt->kind = RT_DOWNLOAD;
            return "download";
        }
        if (!*verb && get) {
            rt->kind = RT_FILE_GET;
            return "files";
        }
        if (!*verb && del) {
            rt->kind = RT_FILE_DELETE;
            return "files";
        }
    }
    if (*verb && strcmp(verb, "cancel") != 0 && strcmp(verb, "download") != 0)
        not_found(r);
    else
        bad_method(r, method, rest);
    return NULL;
}

static void handle(struct sim *sim, struct MHD_Connection *c, const char *url, const char *method,
                   struct req_ctx *ctx, struct reply *r, struct fault_plan *fp)
{
    struct route rt;
    memset(&rt, 0, sizeof(rt));
    rt.body = ctx->body.data ? ctx->body.data : "";
    rt.body_len = ctx->body.len;
    const char *rest;
    if (strncmp(url, "/_sim/", 6) == 0) {
        api_control(sim, c, method, url + 6, &rt, r);
        return;
    }
    pthread_mutex_lock(&sim->lock);
    sim->stats.requests++;
    pthread_mutex_unlock(&sim->lock);
    if (ctx->too_big) {
        reply_error(r, 413, "INVALID_ARGUMENT", "Request payload is too large.");
        return;
    }
    const char *cls = NULL;
    if ((rest = strip_version(url, "/upload", rt.version, sizeof(rt.version)))) {
        if (strcmp(rest, "files") != 0) {
            not_found(r);
            return;
        }
        if (strcmp(method, "POST") != 0) {
            bad_method(r, method, url);
            return;
        }
        rt.kind = RT_UPLOAD;
        cls = "upload";
        /* the upload URL carries its own credential (upload_id) */
        if (!req_arg(c, "upload_id") && !authenticate(sim, c, r))
            return;
    } else if ((rest = strip_version(url, "/download", rt.version, sizeof(rt.version)))) {
        if (!(cls = route_api(&rt, method, rest, r)))
            return;
        if (rt.kind != RT_DOWNLOAD) {
            not_found(r);
            return;
        }
        if (!authenticate(sim, c, r))
            return;
    } else if ((rest = strip_version(url, "", rt.version, sizeof(rt.version)))) {
        if (!(cls = route_api(&rt, method, rest, r)))
            return;
        const char *alt = req_arg(c, "alt");
        if (rt.kind == RT_FILE_GET && alt && strcmp(alt, "media") == 0) {
            rt.kind = RT_DOWNLOAD;
            cls = "download";
        }
        if (!authenticate(sim, c, r))
            return;
    } else {
        not_found(r);
        return;
    }
    plan_faults(sim, cls, fp);
    if (fp->latency_ms)
        sleep_ms(sim, fp->latency_ms);
    if (fp->http_error) {
        inject_http_error(r, fp);
        return;
    }
    pthread_mutex_lock(&sim->lock);
    sim->stats.bytes_in += ctx->body.len;
    pthread_mutex_unlock(&sim->lock);
    switch (rt.kind) {
    case RT_UPLOAD:
    case RT_FILE_GET:
    case RT_FILE_DELETE:
    case RT_FILE_LIST:
    case RT_DOWNLOAD:
        api_files(sim, c, &rt, r);
        break;
    default:
        api_batches(sim, c, &rt, r);
    }
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version, const char *data,
                                 size_t *data_size, void **req_cls)
{
    struct sim *sim = cls;
    struct req_ctx *ctx = *req_cls;
    (void)version;
    if (!ctx) {
        ctx = calloc(1, sizeof(*ctx));
        if (!ctx)
            return MHD_NO;
        buf_init(&ctx->body, (size_t)sim->cfg.max_body_bytes);
        ctx->start_ns = sim_now_ns();
        *req_cls = ctx;
        return MHD_YES;
    }
    if (*data_size) {
        if (!ctx->too_big && !buf_append(&ctx->body, data, *data_size)) {
            ctx->too_big = true;
            buf_cleanup(&ctx->body);
        }
        *data_size = 0;
        return MHD_YES;
    }
    struct reply r;
    struct fault_plan fp;
    memset(&fp, 0, sizeof(fp));
    reply_init(&r);
    handle(sim, c, url, method, ctx, &r, &fp);
    if (r.hang_up) {
        /* returning MHD_NO closes the connection: the client gets no answer at all */
        if (sim->cfg.log_requests)
            fprintf(stderr, "gemini-sim: %s %s -> connection closed (upload cut)\n", method, url);
        reply_cleanup(sim, &r);
        return MHD_NO;
    }
    bool ok200 = r.status == 200;
    if (ok200)
        plan_output_faults(sim, &fp);
    enum MHD_Result ret = send_reply(sim, c, &r, ok200 && fp.drop, ok200 && fp.malformed);
    if (ok200 && (fp.drop || fp.malformed)) {
        pthread_mutex_lock(&sim->lock);
        if (fp.drop)
            sim->stats.faults_drop++;
        else
            sim->stats.faults_malformed++;
        pthread_mutex_unlock(&sim->lock);
    }
    if (sim->cfg.log_requests)
        fprintf(stderr, "gemini-sim: %s %s -> %d%s (%.1f ms)\n", method, url, r.status,
                fp.drop        ? " dropped"
                : fp.malformed ? " malformed"
                               : "",
                (double)(sim_now_ns() - ctx->start_ns) / 1e6);
    reply_cleanup(sim, &r);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct req_ctx *ctx = *req_cls;
    (void)cls;
    (void)c;
    (void)toe;
    if (ctx) {
        buf_cleanup(&ctx->body);
        free(ctx);
        *req_cls = NULL;
    }
}

bool sim_http_start(struct sim *sim)
{
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)sim->cfg.port);
    if (inet_pton(AF_INET, sim->cfg.host, &addr.sin_addr) != 1) {
        fprintf(stderr, "gemini-sim: --host must be an IPv4 address, got \"%s\"\n", sim->cfg.host);
        return false;
    }
    sim->daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG, 0,
        NULL, NULL, on_access, sim, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, sim, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)600, MHD_OPTION_CONNECTION_LIMIT, (unsigned)sim->cfg.max_connections,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(256 * 1024), MHD_OPTION_END);
    if (!sim->daemon) {
        fprintf(stderr, "gemini-sim: could not listen on %s:%d\n", sim->cfg.host, sim->cfg.port);
        return false;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(sim->daemon, MHD_DAEMON_INFO_BIND_PORT);
    sim->port = info ? info->port : sim->cfg.port;
    return true;
}

void sim_http_stop(struct sim *sim)
{
    sim->stopping = 1;
    if (sim->daemon)
        MHD_stop_daemon(sim->daemon);
    sim->daemon = NULL;
}
