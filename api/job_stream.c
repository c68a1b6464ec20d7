/* job_stream.c: a job body validated document by document as it arrives (see job_stream.h). */
#include "job_stream.h"

#include <json-c/json.h>

#include <stdio.h>
#include <string.h>

/* json-c's type for a value of this kind (numbers with a fraction or an exponent are doubles). */
static enum json_type json_type_of(enum json_stream_kind kind, bool fraction)
{
    switch (kind) {
    case JSON_STREAM_OBJECT:
        return json_type_object;
    case JSON_STREAM_ARRAY:
        return json_type_array;
    case JSON_STREAM_STRING:
        return json_type_string;
    case JSON_STREAM_NUMBER:
        return fraction ? json_type_double : json_type_int;
    case JSON_STREAM_TRUE:
    case JSON_STREAM_FALSE:
        return json_type_boolean;
    case JSON_STREAM_NULL:
        break;
    }
    return json_type_null;
}

/* Whether a member name, as written (quotes and escapes), is "documents". */
static bool is_documents(const struct buf *name)
{
    static const char plain[] = "\"documents\"";
    if (name->len == sizeof(plain) - 1 && memcmp(name->data, plain, name->len) == 0)
        return true;
    if (!name->data || !memchr(name->data, '\\', name->len))
        return false;
    /* escaped ("docum\u0065nts"): decode as json-c does for the tree */
    struct json_tokener *tok = json_tokener_new();
    json_object *o = tok ? json_tokener_parse_ex(tok, name->data, (int)name->len) : NULL;
    bool yes = o && json_object_is_type(o, json_type_string) &&
               json_object_get_string_len(o) == 9 &&
               memcmp(json_object_get_string(o), "documents", 9) == 0;
    json_object_put(o);
    if (tok)
        json_tokener_free(tok);
    return yes;
}

static void discard(struct job_stream *js)
{
    if (js->delivering) {
        js->delivering = false;
        js->ops->discard(js->cls);
    }
}

/* The option members gathered so far, validated as one object (as they would
 * be in the tree: the last of repeated names counts). */
static bool gathered_options(struct job_stream *js, struct job_request *r, struct job_req_error *e)
{
    size_t len = js->opts.len;
    if (!buf_putc(&js->opts, '}')) {
        js->oom = true;
        memset(r, 0, sizeof(*r));
        return false;
    }
    bool ok = job_request_parse_options(js->opts.data, js->opts.len, &js->lim, r, e);
    js->opts.len = len;
    js->opts.data[len] = '\0';
    return ok;
}

static void documents_begin(struct job_stream *js, enum json_stream_kind kind)
{
    discard(js); /* an earlier "documents" counts no more */
    js->have_docs = true;
    js->docs_kind = kind;
    js->docs_fraction = false;
    js->n_docs = 0;
    js->doc_failed = js->dup_failed = js->options_after = false;
    if (kind != JSON_STREAM_ARRAY || js->scan.utf8_bad)
        return;
    /* The options so far are validated for the first "documents" only: for
     * every repeat of it they would be parsed again, which a body of many
     * short members could make quadratic. A repeat goes through the spool. */
    struct job_request r;
    struct job_req_error e;
    bool ok = !js->docs_repeated && gathered_options(js, &r, &e);
    js->docs_repeated = true;
    js->ops->documents(js->cls, ok ? &r : NULL);
    if (ok)
        job_request_free(&r);
    js->delivering = true;
}

static void member(struct job_stream *js, struct json_stream *s, const struct json_stream_ev *ev)
{
    switch (ev->type) {
    case JSON_STREAM_NAME_BEGIN:
        buf_reset(&js->name);
        json_stream_capture(s, &js->name);
        break;
    case JSON_STREAM_NAME_END:
        js->in_docs = is_documents(&js->name);
        break;
    case JSON_STREAM_VALUE_BEGIN:
        if (js->in_docs) {
            documents_begin(js, ev->kind);
            break;
        }
        js->options_after = js->options_after || js->have_docs;
        if ((js->opts.len > 1 && !buf_putc(&js->opts, ',')) ||
            !buf_append(&js->opts, js->name.data, js->name.len) || !buf_putc(&js->opts, ':'))
            js->oom = true;
        else
            json_stream_capture(s, &js->opts);
        break;
    case JSON_STREAM_VALUE_END:
        if (js->in_docs)
            js->docs_fraction = ev->fraction;
        break;
    }
}

static void element_begin(struct job_stream *js, struct json_stream *s)
{
    if (++js->n_docs > js->lim.documents) {
        discard(js); /* too many: only counted from here */
        return;
    }
    if (js->doc_failed)
        return;
    buf_reset(&js->elem);
    json_stream_capture(s, &js->elem);
}

static void element_end(struct job_stream *js, const struct json_stream_ev *ev)
{
    if (js->doc_failed || js->n_docs > js->lim.documents || js->scan.capture_failed)
        return;
    size_t i = js->n_docs - 1;
    if (ev->kind != JSON_STREAM_OBJECT) { /* as parse_doc words it (json-c wants more after "1") */
        char ptr[48];
        snprintf(ptr, sizeof(ptr), "/documents/%zu", i);
        (void)job_request_err_type(&js->doc_err, ptr, "an object",
                                   json_type_of(ev->kind, ev->fraction));
        js->doc_failed = true;
        discard(js);
        return;
    }
    struct job_doc_line dl;
    if (!job_request_parse_doc_trusted(js->elem.data ? js->elem.data : "", js->elem.len, i, &dl,
                                       &js->doc_err)) {
        js->doc_failed = true;
        discard(js);
        return;
    }
    if (js->scan.utf8_bad) /* in this piece: the document may be part of it */
        discard(js);
    if (js->delivering) {
        size_t first = 0;
        enum job_stream_take t = js->ops->document(js->cls, i, &dl.doc, &first);
        if (t == JOB_STREAM_DUPLICATE) {
            js->dup_failed = true;
            (void)job_request_err_duplicate(&js->dup_err, dl.doc.id, dl.doc.id_len, i, first);
            discard(js);
        } else if (t == JOB_STREAM_STOP) {
            js->delivering = false;
        }
    }
    job_doc_line_free(&dl);
}

static void on_event(void *cls, struct json_stream *s, const struct json_stream_ev *ev)
{
    struct job_stream *js = cls;
    if (ev->depth == 0) {
        if (ev->type == JSON_STREAM_VALUE_BEGIN)
            js->root_kind = ev->kind;
        else if (ev->type == JSON_STREAM_VALUE_END)
            js->root_fraction = ev->fraction;
    } else if (ev->depth == 1) {
        member(js, s, ev);
    } else if (js->in_docs && js->docs_kind == JSON_STREAM_ARRAY) {
        if (ev->type == JSON_STREAM_VALUE_BEGIN)
            element_begin(js, s);
        else if (ev->type == JSON_STREAM_VALUE_END)
            element_end(js, ev);
    }
}

void job_stream_init(struct job_stream *js, size_t max_element, const struct job_limits *lim,
                     const struct job_stream_ops *ops, void *cls)
{
    memset(js, 0, sizeof(*js));
    js->lim = *lim;
    json_stream_init(&js->scan, JOB_MAX_DEPTH, 2, on_event, js);
    js->ops = ops;
    js->cls = cls;
    buf_init(&js->opts, max_element + 2);
    buf_init(&js->name, max_element);
    buf_init(&js->elem, max_element);
    if (!buf_putc(&js->opts, '{'))
        js->oom = true;
}

void job_stream_feed(struct job_stream *js, const char *p, size_t n)
{
    if (!json_stream_feed(&js->scan, p, n) || js->scan.capture_failed || js->oom)
        discard(js); /* the body is invalid, whatever follows */
}

/* The verdict job_request_parse gives the whole body, in its order of checks. */
static bool verdict(struct job_stream *js, struct job_request *out, struct job_req_error *e)
{
    const struct json_stream *s = &js->scan;
    if (js->oom || s->capture_failed)
        return job_request_err_oom(e);
    if (s->utf8_bad)
        return job_request_err_utf8(e);
    if (s->syntax_bad)
        return job_request_err_syntax(e, s->err.message);
    if (s->deep_scalar) /* what json-c then says of the whole body */
        return job_request_err_syntax(e, json_tokener_error_desc(json_tokener_error_depth));
    if (s->scalar_at_end)
        return job_request_err_syntax(e, "unexpected end of input");
    if (js->root_kind != JSON_STREAM_OBJECT)
        return job_request_err_type(e, "", "an object",
                                    json_type_of(js->root_kind, js->root_fraction));
    if (!gathered_options(js, out, e))
        return js->oom ? job_request_err_oom(e) : false;
    if (!js->have_docs && out->n_deletes > 0) /* a job that only deletes */
        return true;
    if (!js->have_docs)
        return job_request_err_no_documents(e);
    if (js->docs_kind != JSON_STREAM_ARRAY)
        return job_request_err_type(e, "/documents", "an array",
                                    json_type_of(js->docs_kind, js->docs_fraction));
    if (!job_request_check_count(js->n_docs, &js->lim, out, e))
        return false;
    if (js->doc_failed || js->dup_failed) {
        *e = js->doc_failed ? js->doc_err : js->dup_err;
        return false;
    }
    return true;
}

bool job_stream_finish(struct job_stream *js, struct job_request *out, bool *options_after,
                       struct job_req_error *e)
{
    memset(out, 0, sizeof(*out));
    memset(e, 0, sizeof(*e));
    (void)json_stream_finish(&js->scan);
    *options_after = false;
    if (!verdict(js, out, e)) {
        if (out->root)
            job_request_free(out);
        discard(js);
        return false;
    }
    *options_after = js->options_after;
    return true;
}

void job_stream_cleanup(struct job_stream *js)
{
    buf_cleanup(&js->opts);
    buf_cleanup(&js->name);
    buf_cleanup(&js->elem);
}
