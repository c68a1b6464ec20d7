/*
 * files.c: /openai/v1/files. An upload (multipart/form-data: purpose=batch
 * and the file) is parsed as it arrives and its file's bytes go to an
 * unlinked spool file in --spool-dir (no database connection is held
 * while a slow client sends); at the end they are copied into PostgreSQL a
 * part at a time (store/openai_files.h), in one transaction. Content is
 * streamed back a part at a time. Memory stays flat whatever the size;
 * --openai-file-max-bytes bounds it (413 beyond).
 */
#include "openai/oai_api.h"

#include "log.h"
#include "openai/multipart.h"
#include "store/db.h"
#include "store/openai_files.h"
#include "util/jsonw.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SPOOL_WRITE (256u << 10)

static bool put_file(struct buf *b, const struct oai_file *f)
{
    return buf_puts(b, "{\"object\":\"file\",\"id\":") && jsonw_cstr(b, f->id) &&
           buf_puts(b, ",\"purpose\":") && jsonw_cstr(b, f->purpose) &&
           buf_puts(b, ",\"filename\":") && jsonw_cstr(b, f->filename) &&
           buf_printf(b,
                      ",\"bytes\":%lld,\"created_at\":%lld,\"expires_at\":null,"
                      "\"status\":\"processed\",\"status_details\":null}",
                      (long long)f->bytes, (long long)f->created_at);
}

/* ---- upload ---- */

enum field { F_NONE, F_FILE, F_PURPOSE, F_OTHER };

struct upload {
    struct app *app;
    struct mp_parser mp;
    int fd;
    struct buf wbuf;
    int64_t file_bytes, body_bytes, max;
    enum field cur;
    bool saw_file, too_large, io_failed;
    char purpose[40];
    size_t purpose_len;
    char filename[256];
};

static bool spool_flush(struct upload *u)
{
    size_t off = 0;
    while (off < u->wbuf.len) {
        ssize_t w = write(u->fd, u->wbuf.data + off, u->wbuf.len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            u->io_failed = true;
            return false;
        }
        off += (size_t)w;
    }
    buf_reset(&u->wbuf);
    return true;
}

static bool up_begin(void *cls, const char *name, const char *filename, const char *ctype)
{
    struct upload *u = cls;
    (void)ctype;
    if (strcmp(name, "file") == 0) {
        if (u->saw_file) {
            snprintf(u->mp.err, sizeof(u->mp.err), "the form has more than one file");
            return false;
        }
        u->saw_file = true;
        u->cur = F_FILE;
        snprintf(u->filename, sizeof(u->filename), "%s",
                 filename && *filename ? filename : "upload.jsonl");
    } else if (strcmp(name, "purpose") == 0) {
        u->cur = F_PURPOSE;
        u->purpose_len = 0;
    } else {
        u->cur = F_OTHER; /* other fields (expires_after[...]) are accepted and ignored */
    }
    return true;
}

static bool up_data(void *cls, const char *data, size_t len)
{
    struct upload *u = cls;
    if (u->cur == F_PURPOSE) {
        size_t n = len < sizeof(u->purpose) - 1 - u->purpose_len
                       ? len
                       : sizeof(u->purpose) - 1 - u->purpose_len;
        memcpy(u->purpose + u->purpose_len, data, n);
        u->purpose_len += n;
        u->purpose[u->purpose_len] = '\0';
        return true;
    }
    if (u->cur != F_FILE)
        return true;
    u->file_bytes += (int64_t)len;
    if (u->file_bytes > u->max) {
        u->too_large = true;
        return false;
    }
    if (u->wbuf.len + len > SPOOL_WRITE && !spool_flush(u))
        return false;
    if (len >= SPOOL_WRITE) {
        const char *p = data;
        while (len) {
            ssize_t w = write(u->fd, p, len);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                u->io_failed = true;
                return false;
            }
            p += w;
            len -= (size_t)w;
        }
        return true;
    }
    if (!buf_append(&u->wbuf, data, len)) {
        u->io_failed = true;
        return false;
    }
    return true;
}

static bool up_end(void *cls)
{
    ((struct upload *)cls)->cur = F_NONE;
    return true;
}

static const struct mp_callbacks up_cb = {up_begin, up_data, up_end};

static void upload_free(struct upload *u)
{
    if (u->fd >= 0)
        close(u->fd);
    buf_cleanup(&u->wbuf);
    free(u);
}

static void *upload_begin(void *appv, struct http_req *req, struct http_resp *resp)
{
    struct app *app = appv;
    struct upload *u = calloc(1, sizeof(*u));
    if (!u) {
        http_openai_error(resp, 503, "out_of_memory", NULL, "the server is out of memory");
        return NULL;
    }
    u->app = app;
    u->fd = -1;
    u->max = app->cfg->openai_file_max_bytes;
    buf_init(&u->wbuf, SPOOL_WRITE);
    if (!mp_init(&u->mp, http_req_header(req, "Content-Type"), &up_cb, u)) {
        http_openai_error(resp, 400, "invalid_multipart", NULL, u->mp.err);
        upload_free(u);
        return NULL;
    }
    const char *cl = http_req_header(req, "Content-Length");
    if (cl && strtoll(cl, NULL, 10) > u->max + (1 << 20)) {
        char msg[160];
        snprintf(msg, sizeof(msg), "a file has at most %lld bytes (--openai-file-max-bytes)",
                 (long long)u->max);
        http_openai_error(resp, 413, "file_too_large", "file", msg);
        upload_free(u);
        return NULL;
    }
    const char *dir = app->cfg->spool_dir[0] ? app->cfg->spool_dir : getenv("TMPDIR");
    char path[600];
    snprintf(path, sizeof(path), "%s/embedd-upload-XXXXXX", dir && *dir ? dir : "/tmp");
    u->fd = mkstemp(path);
    if (u->fd < 0) {
        log_error("request %s: could not create a spool file in %s (errno %d)", req->id, path,
                  errno);
        http_openai_error(resp, 503, "spool_unavailable", NULL,
                          "the upload cannot be stored right now; retry later");
        upload_free(u);
        return NULL;
    }
    unlink(path); /* the file lives as long as the descriptor */
    (void)fcntl(u->fd, F_SETFD, FD_CLOEXEC);
    return u;
}

static bool upload_data(void *state, struct http_req *req, const char *data, size_t len)
{
    struct upload *u = state;
    (void)req;
    u->body_bytes += (int64_t)len;
    if (u->body_bytes > u->max + (1 << 20)) {
        u->too_large = true;
        return false;
    }
    return mp_feed(&u->mp, data, len);
}

/* Copy the spooled file into PostgreSQL; false with err set. */
static bool store(struct upload *u, PGconn *c, int64_t key_id, struct oai_file *f, char *err,
                  size_t errlen)
{
    struct oai_file_writer w;
    memset(&w, 0, sizeof(w));
    char *piece = malloc(OAI_PART_BYTES);
    bool ok = piece && lseek(u->fd, 0, SEEK_SET) == 0 && db_exec(c, "BEGIN", err, errlen) &&
              oai_file_write_begin(&w, c, key_id, "batch", u->filename, err, errlen);
    if (!piece)
        snprintf(err, errlen, "out of memory");
    while (ok) {
        ssize_t n = read(u->fd, piece, OAI_PART_BYTES);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "could not read the spool file (errno %d)", errno);
            ok = false;
        }
        if (n <= 0)
            break;
        ok = oai_file_write(&w, piece, (size_t)n, err, errlen);
    }
    ok = ok && oai_file_write_finish(&w, err, errlen) && db_exec(c, "COMMIT", err, errlen);
    free(piece);
    oai_file_write_cleanup(&w);
    if (!ok) {
        PGresult *r = PQexec(c, "ROLLBACK");
        PQclear(r);
        return false;
    }
    return oai_file_get(c, key_id, w.id, f, err, errlen) == JOBS_OK;
}

static void upload_end(void *state, struct http_req *req, struct http_resp *resp)
{
    struct upload *u = state;
    char msg[200];
    if (u->too_large) {
        snprintf(msg, sizeof(msg), "a file has at most %lld bytes (--openai-file-max-bytes)",
                 (long long)u->max);
        http_openai_error(resp, 413, "file_too_large", "file", msg);
    } else if (u->io_failed || (u->wbuf.len && !spool_flush(u))) {
        log_error("request %s: could not write the spool file (errno %d)", req->id, errno);
        http_openai_error(resp, 503, "spool_unavailable", NULL,
                          "the upload cannot be stored right now; retry later");
    } else if (!mp_done(&u->mp)) {
        http_openai_error(resp, 400, "invalid_multipart", NULL,
                          u->mp.err[0] ? u->mp.err : "the multipart body ends before its end");
    } else if (!u->saw_file) {
        http_openai_error(resp, 400, "missing_required_parameter", "file", "the form needs a file");
    } else if (strcmp(u->purpose, "batch") != 0) {
        http_openai_error(resp, 400, "invalid_value", "purpose",
                          "embedd takes files for batches only: purpose must be \"batch\"");
    } else {
        PGconn *c = api_db_or_503(u->app, req, resp);
        struct oai_file f;
        char err[512];
        if (c && store(u, c, req->key_id, &f, err, sizeof(err))) {
            buf_reset(&resp->body);
            if (put_file(&resp->body, &f)) {
                resp->status = 200;
                resp->content_type = "application/json";
                log_info("request %s: file %s stored (%lld bytes)", req->id, f.id,
                         (long long)f.bytes);
            } else {
                http_openai_error(resp, 500, "internal_error", NULL,
                                  "the reply could not be built");
            }
        } else if (c) {
            api_db_failed(req, resp, err);
        }
        if (c)
            db_pool_release(u->app->db, c);
    }
    upload_free(u);
}

static void upload_abort(void *state)
{
    upload_free(state);
}

const struct http_body_stream api_oai_files_upload = {
    "multipart/form-data", false, upload_begin, upload_data, upload_end, upload_abort};

void api_oai_files_create(void *app, struct http_req *req, struct http_resp *resp)
{
    (void)app;
    (void)req;
    http_openai_error(resp, 415, "unsupported_media_type", NULL,
                      "upload a file as multipart/form-data with purpose=batch and file");
}

/* ---- reading ---- */

static void not_found(struct http_resp *resp, const char *id)
{
    char msg[128];
    snprintf(msg, sizeof(msg), "No such File object: %.60s", id);
    http_openai_error(resp, 404, "not_found", "id", msg);
}

/* The key's file named by the path into *f; false: the error is answered. */
static bool file_of_request(struct app *app, struct http_req *req, struct http_resp *resp,
                            struct oai_file *f)
{
    PGconn *c = api_db_or_503(app, req, resp);
    if (!c)
        return false;
    char err[512];
    enum jobs_result r = oai_file_get(c, req->key_id, req->params[0], f, err, sizeof(err));
    db_pool_release(app->db, c);
    if (r == JOBS_NOT_FOUND)
        not_found(resp, req->params[0]);
    else if (r != JOBS_OK)
        api_db_failed(req, resp, err);
    return r == JOBS_OK;
}

void api_oai_files_get(void *appv, struct http_req *req, struct http_resp *resp)
{
    struct oai_file f;
    if (!file_of_request(appv, req, resp, &f))
        return;
    buf_reset(&resp->body);
    resp->status = put_file(&resp->body, &f) ? 200 : 500;
}

void api_oai_files_delete(void *appv, struct http_req *req, struct http_resp *resp)
{
    struct app *app = appv;
    PGconn *c = api_db_or_503(app, req, resp);
    if (!c)
        return;
    char err[512];
    enum jobs_result r = oai_file_delete(c, req->key_id, req->params[0], err, sizeof(err));
    db_pool_release(app->db, c);
    if (r == JOBS_NOT_FOUND) {
        not_found(resp, req->params[0]);
        return;
    }
    if (r != JOBS_OK) {
        api_db_failed(req, resp, err);
        return;
    }
    buf_reset(&resp->body);
    resp->status = buf_puts(&resp->body, "{\"object\":\"file\",\"id\":") &&
                           jsonw_cstr(&resp->body, req->params[0]) &&
                           buf_puts(&resp->body, ",\"deleted\":true}")
                       ? 200
                       : 500;
}

void api_oai_files_list(void *appv, struct http_req *req, struct http_resp *resp)
{
    struct app *app = appv;
    int limit;
    if (!api_oai_limit(req, resp, 10000, 10000, &limit))
        return;
    const char *order = http_req_query(req, "order");
    if (order && strcmp(order, "asc") != 0 && strcmp(order, "desc") != 0) {
        http_openai_error(resp, 400, "invalid_value", "order", "order must be asc or desc");
        return;
    }
    const char *after = http_req_query(req, "after");
    const char *purpose = http_req_query(req, "purpose");
    struct oai_file *files = calloc((size_t)limit, sizeof(*files));
    if (!files) {
        http_openai_error(resp, 503, "out_of_memory", NULL, "the server is out of memory");
        return;
    }
    PGconn *c = api_db_or_503(app, req, resp);
    size_t n = 0;
    bool more = false;
    char err[512];
    enum jobs_result r = JOBS_ERROR;
    if (c) {
        r = oai_file_list(c, req->key_id, after, purpose, order && strcmp(order, "asc") == 0, limit,
                          files, &n, &more, err, sizeof(err));
        db_pool_release(app->db, c);
        if (r == JOBS_NOT_FOUND)
            not_found(resp, after);
        else if (r != JOBS_OK)
            api_db_failed(req, resp, err);
    }
    if (r == JOBS_OK) {
        struct buf *b = &resp->body;
        buf_reset(b);
        bool ok = buf_puts(b, "{\"object\":\"list\",\"data\":[");
        for (size_t i = 0; ok && i < n; i++)
            ok = (!i || buf_putc(b, ',')) && put_file(b, &files[i]);
        ok = ok && buf_puts(b, "],\"first_id\":") && jsonw_cstr(b, n ? files[0].id : NULL) &&
             buf_puts(b, ",\"last_id\":") && jsonw_cstr(b, n ? files[n - 1].id : NULL) &&
             buf_printf(b, ",\"has_more\":%s}", more ? "true" : "false");
        resp->status = ok ? 200 : 500;
        resp->content_type = "application/json";
    }
    free(files);
}

/* The content, a part at a time, each read on a connection borrowed for it. */
struct content {
    struct app *app;
    char id[OAI_ID_MAX];
    char req_id[24];
    int part;
    struct buf data;
    size_t off;
    bool end;
};

static long content_read(void *cls, char *out, size_t max)
{
    struct content *k = cls;
    while (k->off == k->data.len) {
        if (k->end)
            return 0;
        char err[512];
        PGconn *c = db_pool_acquire(k->app->db, k->app->db_timeout_ms, err, sizeof(err));
        bool found = false;
        bool ok = c && oai_file_part(c, k->id, k->part, &k->data, &found, err, sizeof(err));
        if (c)
            db_pool_release(k->app->db, c);
        if (!ok) {
            log_error("request %s: file %s cut short: %s", k->req_id, k->id, err);
            return -1;
        }
        k->part++;
        k->off = 0;
        k->end = !found;
    }
    size_t n = k->data.len - k->off < max ? k->data.len - k->off : max;
    memcpy(out, k->data.data + k->off, n);
    k->off += n;
    return (long)n;
}

static void content_done(void *cls)
{
    struct content *k = cls;
    buf_cleanup(&k->data);
    free(k);
}

void api_oai_files_content(void *appv, struct http_req *req, struct http_resp *resp)
{
    struct app *app = appv;
    struct oai_file f;
    if (!file_of_request(app, req, resp, &f))
        return;
    struct content *k = calloc(1, sizeof(*k));
    if (!k) {
        http_openai_error(resp, 503, "out_of_memory", NULL, "the server is out of memory");
        return;
    }
    k->app = app;
    snprintf(k->id, sizeof(k->id), "%s", f.id);
    snprintf(k->req_id, sizeof(k->req_id), "%s", req->id);
    buf_init(&k->data, OAI_PART_BYTES);
    http_resp_stream(resp, 200, "application/octet-stream", content_read, content_done, k);
}
