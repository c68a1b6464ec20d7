/*
 * finalize.c: a batch's output and error files, written from its job's
 * vectors in input order (see driver.h). One transaction reads the lines
 * with their chunks through a cursor and streams the JSONL into file parts
 * as it goes: memory holds a page of rows and a file part, whatever the
 * batch's size; a crash leaves no partial file.
 *
 * Each line: {"id","custom_id","response":{"status_code","request_id","body"},"error"}.
 * Succeeded lines (body exactly as POST /v1/embeddings answers) go to the
 * output file; the others to the error file: a 400 decided at validation,
 * a 500 when Google failed an input for good, or, in a cancelled or
 * expired batch, "error": {"code": "batch_cancelled" | "batch_expired"}.
 */
#include "openai/driver_internal.h"

#include "log.h"
#include "openai/render.h"
#include "openai/request.h"
#include "store/db.h"
#include "store/openai_files.h"
#include "util/jsonw.h"

#include <json-c/json.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fstate {
    const struct oai_ctx *x;
    struct oai_batch *b;
    PGconn *c;
    const char *final; /* completed, cancelled, expired */
    struct oai_file_writer out, errf;
    bool out_open, err_open;
    int64_t completed, failed, tokens;
    /* the line being written */
    int64_t line;
    bool streaming; /* a succeeded line: its vectors follow */
    size_t index;
    bool base64;
    char *model;
    int64_t line_tokens;
    struct buf lb; /* bytes of the current row */
    char err[512];
};

static bool emit(struct fstate *f, bool to_output)
{
    struct oai_file_writer *w = to_output ? &f->out : &f->errf;
    bool *open = to_output ? &f->out_open : &f->err_open;
    if (!*open) {
        char name[96];
        snprintf(name, sizeof(name), "%s_%s.jsonl", f->b->id, to_output ? "output" : "error");
        if (!oai_file_write_begin(w, f->c, f->b->key_id, "batch_output", name, f->err,
                                  sizeof(f->err)))
            return false;
        *open = true;
    }
    bool ok = oai_file_write(w, f->lb.data, f->lb.len, f->err, sizeof(f->err));
    buf_reset(&f->lb);
    return ok;
}

/* {"id":...,"custom_id":...,"response": */
static bool line_head(struct fstate *f, const struct oai_line_row *r)
{
    const char *suffix = f->b->id + strcspn(f->b->id, "_") + 1;
    return buf_printf(&f->lb, "{\"id\":\"batch_req_%s_%lld\",\"custom_id\":", suffix,
                      (long long)r->line) &&
           jsonw_cstr(&f->lb, r->custom_id) && buf_puts(&f->lb, ",\"response\":");
}

static bool response_head(struct fstate *f, const struct oai_line_row *r, int status)
{
    const char *suffix = f->b->id + strcspn(f->b->id, "_") + 1;
    return buf_printf(&f->lb,
                      "{\"status_code\":%d,\"request_id\":\"req_%s_%lld\",\"body\":", status,
                      suffix, (long long)r->line);
}

/* An error-file line answered with status and body (JSON text). */
static bool error_response(struct fstate *f, const struct oai_line_row *r, int status,
                           const char *body)
{
    f->failed++;
    return line_head(f, r) && response_head(f, r, status) && buf_puts(&f->lb, body) &&
           buf_puts(&f->lb, "},\"error\":null}\n") && emit(f, false);
}

/* A line refused at validation: its stored {"status":N,"body":{...}}. */
static bool refused(struct fstate *f, const struct oai_line_row *r)
{
    json_object *o = json_tokener_parse(r->error), *st, *body;
    bool ok = o && json_object_object_get_ex(o, "status", &st) &&
              json_object_object_get_ex(o, "body", &body);
    if (ok)
        ok = error_response(f, r, json_object_get_int(st),
                            json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN));
    else
        snprintf(f->err, sizeof(f->err), "line %lld: its stored error does not parse",
                 (long long)r->line);
    json_object_put(o);
    return ok;
}

static bool upstream_failed(struct fstate *f, const struct oai_line_row *r)
{
    struct oai_err e;
    oai_fail(&e, 500, "upstream_error", NULL,
             "Google could not embed an input of this request: %.300s",
             r->line_failure ? r->line_failure : "its results are missing (job deleted?)");
    struct buf body;
    buf_init(&body, 4096);
    bool ok = oai_put_error(&body, &e) && error_response(f, r, 500, body.data);
    buf_cleanup(&body);
    return ok;
}

static bool not_run(struct fstate *f, const struct oai_line_row *r)
{
    bool expired = strcmp(f->final, "expired") == 0;
    f->failed++;
    return line_head(f, r) &&
           buf_printf(&f->lb, "null,\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}\n",
                      expired ? "batch_expired" : "batch_cancelled",
                      expired ? "This request could not be executed before the completion "
                                "window expired."
                              : "This request was not executed: the batch was cancelled.") &&
           emit(f, false);
}

static bool close_line(struct fstate *f)
{
    if (!f->streaming)
        return true;
    f->streaming = false;
    f->completed++;
    f->tokens += f->line_tokens;
    bool ok = oai_render_end(&f->lb, f->model, f->line_tokens) &&
              buf_puts(&f->lb, "},\"error\":null}\n") && emit(f, true);
    free(f->model);
    f->model = NULL;
    return ok;
}

/* The first row of a line decides where it goes. */
static bool open_line(struct fstate *f, const struct oai_line_row *r)
{
    f->line = r->line;
    if (r->error)
        return refused(f, r);
    if (r->line_ok && r->line_chunks == r->n_inputs) {
        f->streaming = true;
        f->index = 0;
        f->base64 = r->base64;
        f->line_tokens = r->line_tokens;
        if (!(f->model = strdup(r->model))) {
            snprintf(f->err, sizeof(f->err), "out of memory");
            return false;
        }
        return line_head(f, r) && response_head(f, r, 200) && oai_render_begin(&f->lb);
    }
    if (strcmp(f->final, "completed") != 0 && !r->line_failure)
        return not_run(f, r);
    return upstream_failed(f, r);
}

static bool row(struct fstate *f, const struct oai_line_row *r)
{
    if (r->line != f->line && !(close_line(f) && open_line(f, r)))
        return false;
    if (!f->streaming)
        return true;
    if (!r->embedding || r->embedding_len % 4) {
        snprintf(f->err, sizeof(f->err), "line %lld: a stored vector is malformed",
                 (long long)r->line);
        return false;
    }
    bool ok =
        oai_render_item(&f->lb, f->index++, r->embedding, (int)(r->embedding_len / 4), f->base64);
    /* a line of many inputs goes out a vector at a time */
    return ok && (f->lb.len < (256u << 10) || emit(f, true));
}

static bool write_files(struct fstate *f)
{
    struct oai_line_cursor k;
    if (!oai_lines_open(&k, f->c, f->b->id, f->b->job_id, f->err, sizeof(f->err)))
        return false;
    struct oai_line_row r;
    int got;
    int64_t n = 0;
    bool ok = true;
    while (ok && (got = oai_lines_next(&k, &r, f->err, sizeof(f->err))) == 1) {
        ok = row(f, &r);
        if (ok && (++n & 1023) == 0 && atomic_load(f->x->stop)) {
            snprintf(f->err, sizeof(f->err), "stopping");
            ok = false;
        }
    }
    if (ok && got < 0)
        ok = false;
    oai_lines_close(&k);
    return ok && close_line(f) &&
           (!f->out_open || oai_file_write_finish(&f->out, f->err, sizeof(f->err))) &&
           (!f->err_open || oai_file_write_finish(&f->errf, f->err, sizeof(f->err)));
}

void oai_finalize(const struct oai_ctx *x, PGconn *c, struct oai_batch *b)
{
    struct fstate f;
    memset(&f, 0, sizeof(f));
    f.x = x;
    f.b = b;
    f.c = c;
    f.line = -1;
    f.final = strcmp(b->status, "cancelling") == 0 ? "cancelled"
              : b->expired_at                      ? "expired"
                                                   : "completed";
    buf_init(&f.lb, SIZE_MAX / 4);
    bool ours = false;
    bool ok = db_exec(c, "BEGIN", f.err, sizeof(f.err)) && write_files(&f) &&
              oai_batch_finish(c, b->id, x->owner, f.out_open ? f.out.id : NULL,
                               f.err_open ? f.errf.id : NULL, f.completed, f.failed, f.tokens,
                               &ours, f.err, sizeof(f.err)) &&
              db_exec(c, ours ? "COMMIT" : "ROLLBACK", f.err, sizeof(f.err));
    if (ok && ours)
        log_info("openai batch %s %s: %lld succeeded, %lld failed, %lld tokens", b->id, f.final,
                 (long long)f.completed, (long long)f.failed, (long long)f.tokens);
    else if (ok)
        log_warn("openai batch %s: lost its lease while finalizing", b->id);
    if (!ok) {
        log_warn("openai batch %s: finalizing interrupted, will retry: %s", b->id, f.err);
        PGresult *r = PQexec(c, "ROLLBACK");
        PQclear(r);
        oai_batch_release(c, b->id, x->owner);
    }
    oai_file_write_cleanup(&f.out);
    oai_file_write_cleanup(&f.errf);
    free(f.model);
    buf_cleanup(&f.lb);
}
