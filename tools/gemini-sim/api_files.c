/*
 * api_files.c: the Files API: resumable upload (start, upload, finalize,
 * query), file metadata, deletion, and download of generated batch output.
 */
#include "http.h"

#include "util/crypto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void base_url(struct MHD_Connection *c, const char *version, char *out, size_t n)
{
    const char *host = req_header(c, "Host");
    snprintf(out, n, "http://%s/%s", host ? host : "127.0.0.1", version);
}

/* Does the comma list of upload commands contain cmd? */
static bool has_cmd(const char *list, const char *cmd)
{
    size_t n = strlen(cmd);
    const char *p = list;
    while (p && *p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > p && t[-1] == ' ')
            t--;
        if ((size_t)(t - p) == n && strncasecmp(p, cmd, n) == 0)
            return true;
        p = e;
    }
    return false;
}

static void upload_start(struct sim *sim, struct MHD_Connection *c, struct route *rt,
                         struct reply *r)
{
    const char *proto = req_header(c, "X-Goog-Upload-Protocol");
    const char *cmd = req_header(c, "X-Goog-Upload-Command");
    if (!proto || strcasecmp(proto, "resumable") != 0 || !cmd || !has_cmd(cmd, "start")) {
        reply_error(r, 400, "INVALID_ARGUMENT",
                    "Upload requests must use X-Goog-Upload-Protocol: resumable with "
                    "X-Goog-Upload-Command: start.");
        return;
    }
    const char *len_h = req_header(c, "X-Goog-Upload-Header-Content-Length");
    const char *mime = req_header(c, "X-Goog-Upload-Header-Content-Type");
    long long declared = -1;
    if (len_h) {
        char *end;
        errno = 0;
        declared = strtoll(len_h, &end, 10);
        if (errno || end == len_h || *end || declared < 0) {
            reply_error(r, 400, "INVALID_ARGUMENT",
                        "Invalid X-Goog-Upload-Header-Content-Length header.");
            return;
        }
    }
    const char *display = NULL;
    json_object *root = NULL;
    if (rt->body_len) {
        struct sim_perr e = {0};
        root = sim_parse_json(rt->body, rt->body_len, &e);
        json_object *file = NULL;
        if (root && json_object_is_type(root, json_type_object)) {
            json_object_object_foreach(root, k, v)
            {
                if (strcmp(k, "file") != 0 || !json_object_is_type(v, json_type_object)) {
                    snprintf(e.msg, sizeof(e.msg),
                             "Invalid JSON payload received. Unknown name \"%s\": Cannot find "
                             "field.",
                             k);
                    e.http = 400;
                    e.status = "INVALID_ARGUMENT";
                    break;
                }
                file = v;
            }
        } else if (root) {
            e = (struct sim_perr){
                .http = 400, .status = "INVALID_ARGUMENT", .msg = "Invalid JSON payload received."};
        }
        json_object *dn = NULL, *mt = NULL;
        if (!e.http && file) {
            json_object_object_foreach(file, k, v)
            {
                (void)v;
                static const char *const known[] = {"displayName", "display_name", "mimeType",
                                                    "mime_type",   "name",         "sizeBytes",
                                                    "size_bytes"};
                bool ok = false;
                for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
                    ok = ok || strcmp(k, known[i]) == 0;
                if (!ok) {
                    snprintf(e.msg, sizeof(e.msg),
                             "Invalid JSON payload received. Unknown name \"%s\" at 'file': "
                             "Cannot find field.",
                             k);
                    e.http = 400;
                    e.status = "INVALID_ARGUMENT";
                    break;
                }
            }
            if (!json_object_object_get_ex(file, "displayName", &dn))
                json_object_object_get_ex(file, "display_name", &dn);
            if (!json_object_object_get_ex(file, "mimeType", &mt))
                json_object_object_get_ex(file, "mime_type", &mt);
            if (dn && json_object_is_type(dn, json_type_string))
                display = json_object_get_string(dn);
            if (!mime && mt && json_object_is_type(mt, json_type_string))
                mime = json_object_get_string(mt);
        }
        if (e.http) {
            json_object_put(root);
            reply_perr(r, &e);
            return;
        }
    }
    struct sim_file *f = sim_file_new(sim, display, mime, declared);
    json_object_put(root);
    if (!f) {
        reply_oom(r);
        return;
    }
    pthread_mutex_lock(&sim->lock);
    sim->stats.uploads_started++;
    pthread_mutex_unlock(&sim->lock);
    char url[600];
    const char *host = req_header(c, "Host");
    snprintf(url, sizeof(url), "http://%s/upload/%s/files?upload_id=%s&upload_protocol=resumable",
             host ? host : "127.0.0.1", rt->version, f->upload_id);
    reply_header(r, "X-Goog-Upload-URL", url);
    reply_header(r, "X-Goog-Upload-Control-URL", url);
    reply_header(r, "X-Goog-Upload-Status", "active");
    pthread_mutex_lock(&sim->lock);
    snprintf(url, sizeof(url), "%lld", (long long)sim->cfg.s.upload_granularity);
    pthread_mutex_unlock(&sim->lock);
    reply_header(r, "X-Goog-Upload-Chunk-Granularity", url);
    sim_file_release(sim, f);
}

/* Parse an X-Goog-Upload-Offset value; -1 if absent or malformed. */
static long long parse_offset(const char *h)
{
    if (!h)
        return -1;
    char *end;
    errno = 0;
    long long off = strtoll(h, &end, 10);
    return errno || end == h || *end || off < 0 ? -1 : off;
}

/* Whether this piece is cut off (the fault fires); *status: how it ends. Under sim->lock. */
static bool cut_piece(struct sim *sim, int *status)
{
    struct sim_settings *s = &sim->cfg.s;
    if (!sim_fault_fire(sim, &s->upload_cut_count, s->upload_cut_rate))
        return false;
    sim->stats.faults_upload_cut++;
    *status = (int)s->upload_cut_status;
    return true;
}

static const char *cut_status_name(int http)
{
    switch (http) {
    case 408:
        return "DEADLINE_EXCEEDED";
    case 429:
        return "RESOURCE_EXHAUSTED";
    case 500:
        return "INTERNAL";
    case 503:
        return "UNAVAILABLE";
    case 504:
        return "DEADLINE_EXCEEDED";
    default:
        return http >= 500 ? "INTERNAL" : "FAILED_PRECONDITION";
    }
}

static void upload_continue(struct sim *sim, struct MHD_Connection *c, struct route *rt,
                            const char *upload_id, struct reply *r)
{
    struct sim_file *f = sim_file_by_upload(sim, upload_id);
    if (!f) {
        reply_error(r, 404, "NOT_FOUND", "Upload session not found.");
        return;
    }
    const char *cmd = req_header(c, "X-Goog-Upload-Command");
    if (!cmd) {
        reply_error(r, 400, "INVALID_ARGUMENT", "Missing X-Goog-Upload-Command header.");
        sim_file_release(sim, f);
        return;
    }
    bool upload = has_cmd(cmd, "upload"), finalize = has_cmd(cmd, "finalize"),
         query = has_cmd(cmd, "query");
    long long off = parse_offset(req_header(c, "X-Goog-Upload-Offset"));
    char base[400], num[32], msg[200];
    base_url(c, rt->version, base, sizeof(base));
    msg[0] = '\0';
    int http = 400;
    bool size_hdr = false, final = false, ok = true, cut = false;
    int cut_status = 0;

    /* Check and change the session in one critical section: a client that retries a chunk
     * while its first attempt is still in flight must not get the bytes appended twice, and
     * nothing may append while the content is hashed. Hashing under the lock stalls other
     * requests for a moment on huge files; a simulator can afford that. */
    pthread_mutex_lock(&sim->lock);
    size_t have = f->data.len;
    final = f->finalized;
    if (query) {
        size_hdr = true;
        sim->stats.upload_queries++;
        /* a finished session answers a query as its finalize did */
        if (final)
            ok = buf_puts(&r->body, "{\"file\":") && sim_render_file(f, base, &r->body) &&
                 buf_putc(&r->body, '}');
    } else if (!upload && !finalize) {
        snprintf(msg, sizeof(msg), "Unsupported X-Goog-Upload-Command.");
    } else if (f->finalized) {
        snprintf(msg, sizeof(msg), "The upload has already been finalized.");
        size_hdr = true;
    } else if (upload && off != (long long)have) {
        snprintf(msg, sizeof(msg),
                 "X-Goog-Upload-Offset does not match the number of bytes received.");
        size_hdr = true;
    } else if (upload && f->declared_size >= 0 &&
               (int64_t)(have + rt->body_len) > f->declared_size) {
        /* refused before any byte is taken, so the session stays usable */
        snprintf(msg, sizeof(msg),
                 "Received %zu bytes but X-Goog-Upload-Header-Content-Length was %lld.",
                 have + rt->body_len, (long long)f->declared_size);
        size_hdr = true;
    } else if (upload && (cut = cut_piece(sim, &cut_status))) {
        /* the piece broke off in flight: a prefix reached the session, and no answer */
        size_t kept = (size_t)((double)rt->body_len * sim->cfg.s.upload_cut_keep);
        if (kept > rt->body_len)
            kept = rt->body_len;
        if (buf_append(&f->data, rt->body, kept))
            sim->stats.file_bytes_received += kept;
        sim->stats.upload_pieces++;
        have = f->data.len;
    } else if (upload && !buf_append(&f->data, rt->body, rt->body_len)) {
        http = 413;
        snprintf(msg, sizeof(msg), "The file is too large.");
        size_hdr = true;
    } else {
        if (upload) {
            sim->stats.upload_pieces++;
            sim->stats.file_bytes_received += rt->body_len;
        }
        have = f->data.len;
        size_hdr = true;
        if (finalize && f->declared_size >= 0 && (int64_t)have != f->declared_size) {
            snprintf(msg, sizeof(msg),
                     "Received %zu bytes but X-Goog-Upload-Header-Content-Length was %lld.", have,
                     (long long)f->declared_size);
        } else if (finalize) {
            unsigned char digest[SHA256_LEN];
            if (!sha256_digest(f->data.data ? f->data.data : "", f->data.len, digest))
                memset(digest, 0, sizeof(digest)); /* libcrypto out of memory: no hash */
            base64_encode(f->sha256_b64, digest, sizeof(digest));
            f->finalized = true;
            final = true;
            sim->stats.uploads_finalized++;
            ok = buf_puts(&r->body, "{\"file\":") && sim_render_file(f, base, &r->body) &&
                 buf_putc(&r->body, '}');
        }
    }
    pthread_mutex_unlock(&sim->lock);
    sim_file_release(sim, f);

    if (cut) {
        if (cut_status)
            reply_error(r, cut_status, cut_status_name(cut_status), "The upload was interrupted.");
        else
            r->hang_up = true;
        return;
    }
    snprintf(num, sizeof(num), "%zu", have);
    reply_header(r, "X-Goog-Upload-Status", final ? "final" : "active");
    if (size_hdr)
        reply_header(r, "X-Goog-Upload-Size-Received", num);
    if (msg[0])
        reply_error(r, http, "INVALID_ARGUMENT", msg);
    else if (!ok)
        reply_oom(r);
}

/* For "batch-<id>" names: the batch whose output file this is (a reference), if ready. */
static struct sim_batch *output_batch(struct sim *sim, const char *id, bool *ready)
{
    *ready = false;
    if (strncmp(id, "batch-", 6) != 0)
        return NULL;
    struct sim_batch *b = sim_batch_get(sim, id + 6);
    if (!b)
        return NULL;
    int64_t upd, end;
    pthread_mutex_lock(&sim->lock);
    bool ok = b->file_output && !b->output_deleted &&
              sim_batch_state(b, sim_now_ns(), &upd, &end) == SIM_STATE_SUCCEEDED;
    pthread_mutex_unlock(&sim->lock);
    *ready = ok;
    return b;
}

static void file_get(struct sim *sim, struct MHD_Connection *c, struct route *rt, struct reply *r)
{
    char base[400];
    bool ready;
    base_url(c, rt->version, base, sizeof(base));
    pthread_mutex_lock(&sim->lock);
    sim->stats.file_gets++;
    pthread_mutex_unlock(&sim->lock);
    struct sim_batch *b = output_batch(sim, rt->id, &ready);
    if (b) {
        const char *data;
        size_t len;
        if (!ready) {
            reply_error(r, 404, "NOT_FOUND", "Requested entity was not found.");
        } else if (!sim_batch_results(b, &data, &len)) {
            reply_oom(r);
        } else if (!(buf_printf(&r->body,
                                "{\"name\":\"files/%s\",\"mimeType\":\"application/jsonl\","
                                "\"sizeBytes\":\"%zu\",\"createTime\":",
                                rt->id, len) &&
                     sim_put_time(&r->body, b->create_ns + b->pending_ns + b->running_ns) &&
                     buf_puts(&r->body, ",\"updateTime\":") &&
                     sim_put_time(&r->body, b->create_ns + b->pending_ns + b->running_ns) &&
                     buf_puts(&r->body, ",\"expirationTime\":") &&
                     sim_put_time(&r->body, b->create_ns + b->pending_ns + b->running_ns +
                                                48LL * 3600 * 1000000000LL) &&
                     buf_printf(&r->body,
                                ",\"uri\":\"%s/files/%s\",\"downloadUri\":\"%s/files/"
                                "%s:download?alt=media\",\"state\":\"ACTIVE\",\"source\":"
                                "\"GENERATED\"}",
                                base, rt->id, base, rt->id))) {
            reply_oom(r);
        }
        sim_batch_release(sim, b);
        return;
    }
    struct sim_file *f = sim_file_get(sim, rt->id);
    if (!f) {
        reply_error(r, 404, "NOT_FOUND", "Requested entity was not found.");
        return;
    }
    pthread_mutex_lock(&sim->lock);
    bool ok = sim_render_file(f, base, &r->body);
    pthread_mutex_unlock(&sim->lock);
    if (!ok)
        reply_oom(r);
    sim_file_release(sim, f);
}

static void file_delete(struct sim *sim, struct route *rt, struct reply *r)
{
    bool ready, found;
    pthread_mutex_lock(&sim->lock);
    sim->stats.file_deletes++;
    pthread_mutex_unlock(&sim->lock);
    struct sim_batch *b = output_batch(sim, rt->id, &ready);
    if (b) {
        pthread_mutex_lock(&sim->lock);
        if (ready)
            b->output_deleted = true;
        pthread_mutex_unlock(&sim->lock);
        sim_batch_release(sim, b);
        found = ready;
    } else {
        found = sim_file_delete(sim, rt->id);
    }
    if (found) {
        pthread_mutex_lock(&sim->lock);
        sim->stats.files_deleted++;
        pthread_mutex_unlock(&sim->lock);
    }
    if (!found)
        reply_error(r, 404, "NOT_FOUND", "Requested entity was not found.");
    else if (!buf_puts(&r->body, "{}"))
        reply_oom(r);
}

static void file_download(struct sim *sim, struct MHD_Connection *c, struct route *rt,
                          struct reply *r)
{
    const char *alt = req_arg(c, "alt");
    bool ready;
    pthread_mutex_lock(&sim->lock);
    sim->stats.downloads++;
    pthread_mutex_unlock(&sim->lock);
    if (!alt || strcmp(alt, "media") != 0) {
        reply_error(r, 400, "INVALID_ARGUMENT",
                    "Downloading file content requires the query parameter alt=media.");
        return;
    }
    struct sim_batch *b = output_batch(sim, rt->id, &ready);
    if (!b) {
        struct sim_file *f = sim_file_get(sim, rt->id);
        if (f)
            reply_error(r, 400, "INVALID_ARGUMENT", "Only generated files can be downloaded.");
        else
            reply_error(r, 404, "NOT_FOUND", "Requested entity was not found.");
        sim_file_release(sim, f);
        return;
    }
    const char *data;
    size_t len;
    if (!ready) {
        reply_error(r, 404, "NOT_FOUND", "Requested entity was not found.");
        sim_batch_release(sim, b);
    } else if (!sim_batch_results(b, &data, &len)) {
        reply_oom(r);
        sim_batch_release(sim, b);
    } else {
        r->shared_batch = b; /* the reply now owns the reference */
        r->shared_data = data;
        r->shared_len = len;
        r->content_type = "application/octet-stream";
    }
}

/* Parse a non-negative decimal; false if malformed. */
static bool parse_count(const char *v, long long *out)
{
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || end == v || *end || n < 0)
        return false;
    *out = n;
    return true;
}

/* GET files?pageSize=&pageToken=: {"files":[File...],"nextPageToken":...}, newest first;
 * pageSize defaults to 10 and is capped at 100 (Google's files.list); {} when empty. */
static void file_list(struct sim *sim, struct MHD_Connection *c, struct route *rt, struct reply *r)
{
    char base[400];
    long long page_size = 10, below = -1;
    const char *ps = req_arg(c, "pageSize"), *pt = req_arg(c, "pageToken");
    if (!ps)
        ps = req_arg(c, "page_size");
    if (!pt)
        pt = req_arg(c, "page_token");
    if (ps && !parse_count(ps, &page_size)) {
        reply_error(r, 400, "INVALID_ARGUMENT", "Invalid value for page_size.");
        return;
    }
    if (page_size == 0)
        page_size = 10;
    if (page_size > 100)
        page_size = 100;
    if (pt && *pt && (pt[0] != 'f' || !parse_count(pt + 1, &below))) {
        reply_error(r, 400, "INVALID_ARGUMENT", "Invalid page token.");
        return;
    }
    base_url(c, rt->version, base, sizeof(base));
    pthread_mutex_lock(&sim->lock);
    sim->stats.file_lists++;
    bool ok = buf_putc(&r->body, '{');
    long long count = 0;
    uint64_t next = 0;
    for (size_t i = sim->n_files; ok && i-- > 0;) {
        const struct sim_file *f = sim->files[i];
        if (below >= 0 && f->seq >= (uint64_t)below)
            continue;
        if (count == page_size) {
            next = sim->files[i + 1]->seq;
            break;
        }
        ok = buf_puts(&r->body, count ? "," : "\"files\":[") && sim_render_file(f, base, &r->body);
        count++;
    }
    if (ok && count)
        ok = buf_putc(&r->body, ']');
    if (ok && next)
        ok = buf_printf(&r->body, ",\"nextPageToken\":\"f%llu\"", (unsigned long long)next);
    ok = ok && buf_putc(&r->body, '}');
    pthread_mutex_unlock(&sim->lock);
    if (!ok)
        reply_oom(r);
}

void api_files(struct sim *sim, struct MHD_Connection *c, struct route *rt, struct reply *r)
{
    switch (rt->kind) {
    case RT_UPLOAD: {
        const char *uid = req_arg(c, "upload_id");
        if (uid)
            upload_continue(sim, c, rt, uid, r);
        else
            upload_start(sim, c, rt, r);
        break;
    }
    case RT_FILE_GET:
        file_get(sim, c, rt, r);
        break;
    case RT_FILE_DELETE:
        file_delete(sim, rt, r);
        break;
    case RT_DOWNLOAD:
        file_download(sim, c, rt, r);
        break;
    case RT_FILE_LIST:
        file_list(sim, c, rt, r);
        break;
    default:
        reply_error(r, 404, "NOT_FOUND", "Requested entity was not found.");
    }
}
