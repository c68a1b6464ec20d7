/*
 * validate.c: a batch's input file checked line by line and turned into an
 * embedd job (see driver.h). The file is read a part at a time; memory
 * holds one part, one line, the custom_ids seen and the lines' rows.
 */
#include "openai/driver_internal.h"

#include "chunker/chunker.h"
#include "log.h"
#include "openai/request.h"
#include "openai/space.h"
#include "store/db.h"
#include "store/jobs_ingest.h"
#include "store/openai_files.h"
#include "util/jsonw.h"

#include <json-c/json.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LINE_BYTES ((size_t)64 << 20) /* one request line, as max-body-bytes' default */
#define MAX_ERRORS     100                /* errors listed; the count goes on */

/* ---- lines of a stored file, a part at a time ---- */

struct reader {
    const struct oai_ctx *x;
    const char *file_id;
    int part;
    bool eof;
    struct buf data; /* the current part */
    size_t off;
    struct buf line;
    int64_t lineno;
    bool missing; /* the file is gone */
};

/* Read the next part into r->data; false with err on a database failure. */
static bool next_part(struct reader *r, char *err, size_t errlen)
{
    PGconn *c = db_pool_acquire(r->x->db, r->x->db_timeout_ms, err, errlen);
    if (!c)
        return false;
    bool found = false;
    bool ok = oai_file_part(c, r->file_id, r->part, &r->data, &found, err, errlen);
    if (ok && !found && r->part == 0) { /* no part: an empty file, or none at all? */
        const char *v[1] = {r->file_id};
        PGresult *q =
            PQexecParams(c, "SELECT 1 FROM openai_files WHERE id = $1", 1, NULL, v, NULL, NULL, 0);
        ok = PQresultStatus(q) == PGRES_TUPLES_OK;
        if (!ok)
            db_error(q, c, "could not read the input file", err, errlen);
        else
            r->missing = PQntuples(q) == 0;
        PQclear(q);
    }
    db_pool_release(r->x->db, c);
    r->part++;
    r->off = 0;
    r->eof = ok && !found;
    return ok;
}

/* The next line into r->line (no newline, a final CR dropped): 1, 0 at the
 * end, -1 on a database failure (err), -2 for a line over MAX_LINE_BYTES
 * (skipped). */
static int next_line(struct reader *r, char *err, size_t errlen)
{
    buf_reset(&r->line);
    bool too_long = false, any = false;
    for (;;) {
        if (r->off == r->data.len) {
            if (r->eof)
                break;
            if (!next_part(r, err, errlen))
                return -1;
            continue;
        }
        const char *p = r->data.data + r->off, *nl = memchr(p, '\n', r->data.len - r->off);
        size_t n = nl ? (size_t)(nl - p) : r->data.len - r->off;
        any = true;
        if (!too_long && !buf_append(&r->line, p, n)) {
            too_long = true;
            buf_reset(&r->line);
        }
        r->off += n + (nl ? 1 : 0);
        if (nl)
            break;
    }
    if (!any && r->eof)
        return 0;
    r->lineno++;
    if (too_long)
        return -2;
    if (r->line.len && r->line.data[r->line.len - 1] == '\r')
        r->line.data[--r->line.len] = '\0';
    return 1;
}

/* ---- custom_ids seen (exact, by hash and string) ---- */

struct idset {
    char **slot;
    size_t cap, n;
};

static uint64_t str_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h ^ (h >> 29);
}

/* Add s; 1 added, 0 already there, -1 out of memory. */
static int idset_add(struct idset *t, const char *s)
{
    if ((t->n + 1) * 2 > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 1024;
        char **ns = calloc(cap, sizeof(*ns));
        if (!ns)
            return -1;
        for (size_t i = 0; i < t->cap; i++) {
            if (!t->slot[i])
                continue;
            size_t k = (size_t)str_hash(t->slot[i]) & (cap - 1);
            while (ns[k])
                k = (k + 1) & (cap - 1);
            ns[k] = t->slot[i];
        }
        free(t->slot);
        t->slot = ns;
        t->cap = cap;
    }
    size_t k = (size_t)str_hash(s) & (t->cap - 1);
    for (; t->slot[k]; k = (k + 1) & (t->cap - 1))
        if (strcmp(t->slot[k], s) == 0)
            return 0;
    if (!(t->slot[k] = strdup(s)))
        return -1;
    t->n++;
    return 1;
}

static void idset_free(struct idset *t)
{
    for (size_t i = 0; i < t->cap; i++)
        free(t->slot[i]);
    free(t->slot);
}

/* ---- validation ---- */

struct vstate {
    const struct oai_ctx *x;
    struct oai_batch *b;
    PGconn *c;
    struct buf errors; /* JSON array text, without the closing bracket */
    int64_t n_errors;
    struct buf rows; /* openai_batch_lines rows (COPY text) */
    int64_t requests;
    struct idset ids;
    bool have_space;
    struct oai_space sp;
    char model0[OAI_MAX_MODEL + 1];
    int dims0;
    int64_t model_line;
    struct jobs_ingest *in;
    bool failed_db; /* a database failure or a stop: hand the batch back */
    char err[512];
};

/* A batch error naming line (0: none) and param (NULL: none). */
static void batch_error(struct vstate *v, int64_t line, const char *code, const char *param,
                        const char *fmt, ...) SVC_PRINTF(5, 6);
static void batch_error(struct vstate *v, int64_t line, const char *code, const char *param,
                        const char *fmt, ...)
{
    v->n_errors++;
    if (v->n_errors > MAX_ERRORS)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    bool ok = buf_puts(&v->errors, v->n_errors > 1 ? ",{\"code\":" : "{\"code\":") &&
              jsonw_cstr(&v->errors, code) && buf_puts(&v->errors, ",\"message\":") &&
              jsonw_cstr(&v->errors, msg) && buf_puts(&v->errors, ",\"param\":") &&
              jsonw_cstr(&v->errors, param) &&
              (line ? buf_printf(&v->errors, ",\"line\":%lld}", (long long)line)
                    : buf_puts(&v->errors, ",\"line\":null}"));
    if (!ok)
        v->failed_db = true, snprintf(v->err, sizeof(v->err), "out of memory");
}

/* A line refused with the error the endpoint would answer (a 400 in the
 * error file). */
static bool line_refused(struct vstate *v, int64_t line, const char *custom_id, const char *model,
                         bool base64, const struct oai_err *e)
{
    struct buf body;
    buf_init(&body, 4096);
    bool ok = buf_printf(&body, "{\"status\":%d,\"body\":", e->status) && oai_put_error(&body, e) &&
              buf_putc(&body, '}') &&
              oai_line_row(&v->rows, v->b->id, line, custom_id, model, base64, -1, 0, body.data);
    buf_cleanup(&body);
    if (!ok)
        v->failed_db = true, snprintf(v->err, sizeof(v->err), "out of memory");
    return ok;
}

/* The space of the batch, from the first line with a valid body. */
static bool resolve_space(struct vstate *v, int64_t line, const struct oai_emb_req *r)
{
    struct oai_err e;
    enum oai_space_result res = oai_space_resolve(v->c, v->b->key_id, r->model, r->dims, &v->sp, &e,
                                                  v->err, sizeof(v->err));
    if (res == OAI_SPACE_DB_ERROR) {
        v->failed_db = true;
        return false;
    }
    if (res == OAI_SPACE_REFUSED) {
        batch_error(v, line, e.code, "body.model", "%s", e.message);
        return false;
    }
    if (!v->sp.batch) {
        batch_error(v, line, "model_not_supported", "body.model",
                    "%s has no batch support at Google", v->sp.model);
        return false;
    }
    v->have_space = true;
    snprintf(v->model0, sizeof(v->model0), "%s", r->model);
    v->dims0 = r->dims;
    v->model_line = line;
    return true;
}

/* Add the texts of a valid line to the job. */
static void add_texts(struct vstate *v, int64_t line, const char *custom_id,
                      const struct oai_emb_req *r)
{
    if (!v->in) {
        char name[64];
        snprintf(name, sizeof(name), "openai %s", v->b->id);
        struct job_spec spec = {.key_id = v->b->key_id,
                                .display_name = name,
                                .model = v->sp.model,
                                .task_type = v->sp.task_type,
                                .output_dimensionality = v->sp.dims,
                                .normalize = v->sp.normalize,
                                .max_chars = CHUNK_DEFAULT_MAX_CHARS,
                                .overlap_chars = CHUNK_DEFAULT_OVERLAP_CHARS};
        if (!(v->in = jobs_ingest_begin(v->c, &spec, v->err, sizeof(v->err)))) {
            v->failed_db = true;
            return;
        }
        jobs_ingest_verbatim(v->in);
    }
    int64_t first = jobs_ingest_chunks(v->in);
    for (size_t i = 0; i < r->n; i++) {
        char id[48];
        int idn = snprintf(id, sizeof(id), "%lld.%zu", (long long)line, i);
        struct ingest_doc d = {id, (size_t)idn, NULL, 0, NULL, r->texts[i], r->lens[i]};
        size_t dup = 0;
        if (jobs_ingest_add(v->in, &d, &dup, v->err, sizeof(v->err)) != JOBS_OK) {
            v->failed_db = true;
            return;
        }
    }
    if (!oai_line_row(&v->rows, v->b->id, line, custom_id, r->model, r->base64, first,
                      (int64_t)r->n, NULL))
        v->failed_db = true, snprintf(v->err, sizeof(v->err), "out of memory");
}

/* The body of a structurally valid line. */
static void check_body(struct vstate *v, int64_t line, const char *custom_id, json_object *body)
{
    struct oai_emb_req r;
    struct oai_err e;
    if (!oai_parse_embeddings(body, &r, &e)) {
        json_object *m;
        const char *model =
            json_object_object_get_ex(body, "model", &m) && json_object_is_type(m, json_type_string)
                ? json_object_get_string(m)
                : "";
        line_refused(v, line, custom_id, model, r.base64, &e);
        oai_emb_req_free(&r);
        return;
    }
    if (!v->have_space) {
        if (!resolve_space(v, line, &r)) {
            oai_emb_req_free(&r);
            return;
        }
    } else if (strcmp(r.model, v->model0) != 0 || r.dims != v->dims0) {
        batch_error(v, line, "mismatched_model", "body.model",
                    "every request of a batch uses one model and dimensions: line %lld has "
                    "\"%.100s\"%s, line %lld \"%.100s\"",
                    (long long)line, r.model, r.dims != v->dims0 ? " with other dimensions" : "",
                    (long long)v->model_line, v->model0);
        oai_emb_req_free(&r);
        return;
    }
    if (!oai_space_texts_fit(&v->sp, r.texts, r.lens, r.n, r.single, &e))
        line_refused(v, line, custom_id, r.model, r.base64, &e);
    else if (!v->n_errors)
        add_texts(v, line, custom_id, &r);
    oai_emb_req_free(&r);
}

/* One non-blank line. */
static void check_line(struct vstate *v, int64_t line, const char *text, size_t len)
{
    static const char *const known[] = {"custom_id", "method", "url", "body", NULL};
    if (!utf8_valid(text, len)) {
        batch_error(v, line, "invalid_json_line", NULL, "line %lld is not valid UTF-8",
                    (long long)line);
        return;
    }
    struct json_tokener *tok = json_tokener_new_ex(64);
    if (!tok) {
        v->failed_db = true;
        snprintf(v->err, sizeof(v->err), "out of memory");
        return;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *o = len > INT32_MAX ? NULL : json_tokener_parse_ex(tok, text, (int)len);
    bool whole = o && json_tokener_get_error(tok) == json_tokener_success &&
                 json_tokener_get_parse_end(tok) == len;
    json_tokener_free(tok);
    json_object *cid, *method, *url, *body;
    if (!whole || !json_object_is_type(o, json_type_object)) {
        batch_error(v, line, "invalid_json_line", NULL,
                    "line %lld is not a JSON object (one request per line, JSONL)",
                    (long long)line);
        goto out;
    }
    json_object_object_foreach(o, key, val)
    {
        (void)val;
        bool ok = false;
        for (size_t i = 0; known[i] && !ok; i++)
            ok = strcmp(known[i], key) == 0;
        if (!ok) {
            batch_error(v, line, "invalid_request", key,
                        "line %lld has an unknown member \"%.60s\"; a request line has "
                        "custom_id, method, url and body",
                        (long long)line, key);
            goto out;
        }
    }
    if (!json_object_object_get_ex(o, "custom_id", &cid) ||
        !json_object_is_type(cid, json_type_string) || json_object_get_string_len(cid) == 0 ||
        json_object_get_string_len(cid) > OAI_MAX_CUSTOM_ID ||
        memchr(json_object_get_string(cid), '\0', (size_t)json_object_get_string_len(cid))) {
        batch_error(v, line, "missing_required_parameter", "custom_id",
                    "line %lld needs a custom_id: a string of 1 to %d bytes", (long long)line,
                    OAI_MAX_CUSTOM_ID);
        goto out;
    }
    const char *custom_id = json_object_get_string(cid);
    if (!json_object_object_get_ex(o, "method", &method) ||
        !json_object_is_type(method, json_type_string) ||
        strcmp(json_object_get_string(method), "POST") != 0) {
        batch_error(v, line, "invalid_method", "method", "line %lld: method must be \"POST\"",
                    (long long)line);
        goto out;
    }
    if (!json_object_object_get_ex(o, "url", &url) || !json_object_is_type(url, json_type_string) ||
        strcmp(json_object_get_string(url), v->b->endpoint) != 0) {
        batch_error(v, line, "invalid_url", "url",
                    "line %lld: the url must be the batch's endpoint, %s", (long long)line,
                    v->b->endpoint);
        goto out;
    }
    if (!json_object_object_get_ex(o, "body", &body) ||
        !json_object_is_type(body, json_type_object)) {
        batch_error(v, line, "missing_required_parameter", "body",
                    "line %lld needs a body: the JSON object of an embeddings request",
                    (long long)line);
        goto out;
    }
    int added = idset_add(&v->ids, custom_id);
    if (added < 0) {
        v->failed_db = true;
        snprintf(v->err, sizeof(v->err), "out of memory");
        goto out;
    }
    if (added == 0) {
        batch_error(v, line, "duplicate_custom_id", "custom_id",
                    "line %lld: custom_id \"%.100s\" is used by an earlier line; each request "
                    "of a batch needs its own",
                    (long long)line, custom_id);
        goto out;
    }
    check_body(v, line, custom_id, body);
out:
    json_object_put(o);
}

static bool blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return false;
    return true;
}

/* Read every line; false on a database failure or a stop (v->err). */
static bool read_lines(struct vstate *v)
{
    struct reader rd = {.x = v->x, .file_id = v->b->input_file_id};
    buf_init(&rd.data, OAI_PART_BYTES);
    buf_init(&rd.line, MAX_LINE_BYTES);
    bool ok = true;
    for (;;) {
        int got = next_line(&rd, v->err, sizeof(v->err));
        if (got == -1) {
            ok = false;
            break;
        }
        if (got == 0)
            break;
        if (rd.missing)
            break;
        if ((rd.lineno & 1023) == 0 && atomic_load(v->x->stop)) {
            snprintf(v->err, sizeof(v->err), "stopping");
            ok = false;
            break;
        }
        if (got == 1 && blank(rd.line.data ? rd.line.data : "", rd.line.len))
            continue;
        if (++v->requests > v->x->max_requests) {
            batch_error(v, rd.lineno, "too_many_requests", NULL,
                        "the file has more than %lld requests, the most a batch takes",
                        (long long)v->x->max_requests);
            break;
        }
        if (got == -2)
            batch_error(v, rd.lineno, "invalid_json_line", NULL,
                        "line %lld is longer than %zu bytes", (long long)rd.lineno, MAX_LINE_BYTES);
        else
            check_line(v, rd.lineno, rd.line.data, rd.line.len);
        if (v->failed_db) {
            ok = false;
            break;
        }
    }
    if (ok && rd.missing)
        batch_error(v, 0, "file_not_found", "input_file_id",
                    "the input file %s was deleted before the batch started", v->b->input_file_id);
    else if (ok && v->requests == 0)
        batch_error(v, 0, "empty_file", "input_file_id", "the input file has no requests");
    buf_cleanup(&rd.data);
    buf_cleanup(&rd.line);
    return ok;
}

void oai_validate(const struct oai_ctx *x, PGconn *c, struct oai_batch *b)
{
    struct vstate v;
    memset(&v, 0, sizeof(v));
    v.x = x;
    v.b = b;
    v.c = c;
    buf_init(&v.errors, (size_t)1 << 20);
    buf_init(&v.rows, SIZE_MAX / 4);
    bool ok = buf_putc(&v.errors, '[') && read_lines(&v);
    if (ok && v.n_errors) {
        jobs_ingest_abort(v.in);
        v.in = NULL;
        ok = buf_putc(&v.errors, ']') &&
             oai_batch_fail(c, b->id, x->owner, v.errors.data, v.err, sizeof(v.err));
        if (ok)
            log_info("openai batch %s failed validation: %lld error(s)", b->id,
                     (long long)v.n_errors);
    } else if (ok) {
        bool ours = false;
        char job[JOB_ID_LEN + 1];
        if (v.in) {
            PGconn *ic = jobs_ingest_conn(v.in, v.err, sizeof(v.err));
            snprintf(job, sizeof(job), "%s", jobs_ingest_id(v.in));
            ok = ic && oai_batch_start(ic, b->id, x->owner, &v.rows, job, v.model0, v.requests,
                                       &ours, v.err, sizeof(v.err));
            if (ok && ours) {
                struct jobs_ingest *in = v.in;
                v.in = NULL;
                ok = jobs_ingest_finish(in, job, v.err, sizeof(v.err));
            }
        } else { /* every line refused: nothing to embed */
            job[0] = '\0';
            ok = db_exec(c, "BEGIN", v.err, sizeof(v.err)) &&
                 oai_batch_start(c, b->id, x->owner, &v.rows, NULL, v.model0, v.requests, &ours,
                                 v.err, sizeof(v.err)) &&
                 db_exec(c, ours ? "COMMIT" : "ROLLBACK", v.err, sizeof(v.err));
        }
        if (ok && !ours)
            log_info("openai batch %s changed while it was validated (cancelled?)", b->id);
        else if (ok)
            log_info("openai batch %s: %lld requests, job %s", b->id, (long long)v.requests,
                     job[0] ? job : "(none: every line refused)");
    }
    if (!ok)
        log_warn("openai batch %s: validation interrupted, will retry: %s", b->id, v.err);
    if (v.in) {
        jobs_ingest_abort(v.in); /* ends its COPY and rolls back */
    } else if (!ok && PQtransactionStatus(c) != PQTRANS_IDLE) {
        PGresult *r = PQexec(c, "ROLLBACK");
        PQclear(r);
    }
    if (!ok)
        oai_batch_release(c, b->id, x->owner);
    buf_cleanup(&v.errors);
    buf_cleanup(&v.rows);
    idset_free(&v.ids);
}
