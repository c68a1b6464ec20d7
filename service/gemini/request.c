/* request.c: the request bodies of Gemini's embedding API (inline batch, file-based batch,
 * synchronous batch, JSONL line), built in one pass and sized exactly in advance. */
#include "gemini/request.h"

#include "models.h"
#include "util/jsonw.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ---- request bodies ----
 *
 * Every body is produced by one generator run twice over a sink: first counting
 * only, then writing into space reserved for exactly that count. The sizes that
 * gem_batch_item_size and gem_batch_overhead report come from the same
 * generators, so they match the built body byte for byte.
 */

struct sink {
    struct buf *b; /* NULL: count only */
    size_t n;      /* bytes produced */
    bool ok;
};

static void emit(struct sink *s, const char *p, size_t n)
{
    if (!s->ok || n == 0)
        return;
    if (n > SIZE_MAX - s->n || (s->b && !buf_append(s->b, p, n))) {
        s->ok = false;
        return;
    }
    s->n += n;
}

static void emit_lit(struct sink *s, const char *lit)
{
    emit(s, lit, strlen(lit));
}

/* The inside of a JSON string literal: bytes >= 0x20 (UTF-8 included) as they are. */
static void emit_esc(struct sink *s, const char *p, size_t n)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (!jsonw_needs_escape(c))
            continue;
        char e[6];
        emit(s, p + run, i - run);
        emit(s, e, jsonw_escape(c, e));
        run = i + 1;
    }
    emit(s, p + run, n - run);
}

static void emit_str(struct sink *s, const char *p, size_t n)
{
    emit(s, "\"", 1);
    emit_esc(s, p, n);
    emit(s, "\"", 1);
}

static void emit_cstr(struct sink *s, const char *p)
{
    emit_str(s, p, strlen(p));
}

/* The model's facts (models.h) for o->model, with or without "models/". */
static const struct model_facts *facts_of(const struct gem_req_opts *o)
{
    const char *m = o->model;
    if (m && strncmp(m, "models/", 7) == 0)
        m += 7;
    return models_find(m);
}

/* The text of parts[0]: the text itself, or for a model that takes its task
 * inside the prompt (models_prompt; docs/gemini-embedding-2.md §4) the
 * task's instruction, the title in a document's template, then the text. */
static void emit_text(struct sink *s, const struct model_facts *f, const struct gem_req_opts *o,
                      const struct gem_text *t)
{
    struct model_prompt p;
    emit_lit(s, "\"");
    if (models_prompt(f, o->task_type, &p)) {
        emit_lit(s, p.lead);
        if (p.titled) {
            if (t->title && t->title[0])
                emit_esc(s, t->title, strlen(t->title));
            else
                emit_lit(s, MODEL_PROMPT_NO_TITLE);
            emit_lit(s, MODEL_PROMPT_TITLE_END);
        }
    }
    emit_esc(s, t->text ? t->text : "", t->text ? t->text_len : 0);
    emit_lit(s, "\"");
}

/* EmbedContentRequest: model, content, taskType, title, outputDimensionality.
 * A model whose task goes into the prompt gets neither taskType nor title:
 * Google ignores them for it (docs/gemini-embedding-2.md §4.4). */
static void emit_request(struct sink *s, const struct gem_req_opts *o, const struct gem_text *t)
{
    const struct model_facts *f = facts_of(o);
    bool fields = !f || f->task == MODEL_TASK_FIELDS;
    emit_lit(s, "{");
    if (o->model) {
        const char *m = o->model;
        if (strncmp(m, "models/", 7) == 0)
            m += 7;
        emit_lit(s, "\"model\":\"models/");
        emit_esc(s, m, strlen(m));
        emit_lit(s, "\",");
    }
    emit_lit(s, "\"content\":{\"parts\":[{\"text\":");
    emit_text(s, f, o, t);
    emit_lit(s, "}]}");
    if (fields && o->task_type) {
        emit_lit(s, ",\"taskType\":");
        emit_cstr(s, o->task_type);
    }
    if (fields && t->title && models_title_sent(f, o->task_type)) {
        emit_lit(s, ",\"title\":");
        emit_cstr(s, t->title);
    }
    if (o->dims > 0) {
        char num[48];
        int k = snprintf(num, sizeof(num), ",\"outputDimensionality\":%d", o->dims);
        emit(s, num, (size_t)k);
    }
    emit_lit(s, "}");
}

/* InlinedEmbedContentRequest: {"request":..,"metadata":{"key":..}}. */
static void emit_item(struct sink *s, const struct gem_req_opts *o, const struct gem_text *t)
{
    emit_lit(s, "{\"request\":");
    emit_request(s, o, t);
    if (t->key) {
        emit_lit(s, ",\"metadata\":{\"key\":");
        emit_cstr(s, t->key);
        emit_lit(s, "}");
    }
    emit_lit(s, "}");
}

static void emit_batch_head(struct sink *s, const char *display_name)
{
    emit_lit(s, "{\"batch\":{");
    if (display_name) {
        emit_lit(s, "\"displayName\":");
        emit_cstr(s, display_name);
        emit_lit(s, ",");
    }
    emit_lit(s, "\"inputConfig\":{\"requests\":{\"requests\":[");
}

static const char batch_tail[] = "]}}}}";

struct job {
    const char *display_name;
    const struct gem_req_opts *o;
    const struct gem_text *texts;
    size_t n;
};

static void gen_batch(struct sink *s, const struct job *j)
{
    emit_batch_head(s, j->display_name);
    for (size_t i = 0; i < j->n; i++) {
        if (i)
            emit(s, ",", 1);
        emit_item(s, j->o, &j->texts[i]);
    }
    emit_lit(s, batch_tail);
}

static void gen_sync(struct sink *s, const struct job *j)
{
    emit_lit(s, "{\"requests\":[");
    for (size_t i = 0; i < j->n; i++) {
        if (i)
            emit(s, ",", 1);
        emit_request(s, j->o, &j->texts[i]);
    }
    emit_lit(s, "]}");
}

/* For gen_file_batch, texts->text carries the file name. */
static void gen_file_batch(struct sink *s, const struct job *j)
{
    emit_lit(s, "{\"batch\":{");
    if (j->display_name) {
        emit_lit(s, "\"displayName\":");
        emit_cstr(s, j->display_name);
        emit_lit(s, ",");
    }
    emit_lit(s, "\"inputConfig\":{\"fileName\":");
    emit_str(s, j->texts->text, j->texts->text_len);
    emit_lit(s, "}}}");
}

static void gen_jsonl(struct sink *s, const struct job *j)
{
    emit_lit(s, "{");
    if (j->texts->key) {
        emit_lit(s, "\"key\":");
        emit_cstr(s, j->texts->key);
        emit_lit(s, ",");
    }
    emit_lit(s, "\"request\":");
    emit_request(s, j->o, j->texts);
    emit_lit(s, "}\n");
}

/* Count, reserve, write: all or nothing, so a refused body leaves out untouched. */
static bool build(struct buf *out, void (*gen)(struct sink *, const struct job *),
                  const struct job *j)
{
    struct sink count = {NULL, 0, true};
    gen(&count, j);
    if (!count.ok || !buf_reserve(out, count.n))
        return false;
    size_t mark = out->len;
    struct sink w = {out, 0, true};
    gen(&w, j);
    if (w.ok && w.n == count.n)
        return true;
    out->len = mark; /* cannot happen once reserved; kept for safety */
    out->data[mark] = '\0';
    return false;
}

size_t gem_batch_item_size(const struct gem_req_opts *o, const struct gem_text *t)
{
    struct sink s = {NULL, 1, true}; /* 1: the comma before it */
    emit_item(&s, o, t);
    return s.ok ? s.n : SIZE_MAX;
}

size_t gem_batch_item_size_of(const struct gem_req_opts *o, const char *key, size_t text_json_len,
                              long title_json_len)
{
    /* the item with an empty text and a one-byte title (an empty one, which a
     * prompt model replaces with "none", when the title is empty), then the
     * insides of the two strings less that byte */
    const char *title = title_json_len > 0 ? "x" : title_json_len == 0 ? "" : NULL;
    struct gem_text t = {key, "", 0, title};
    size_t n = gem_batch_item_size(o, &t);
    if (n == SIZE_MAX)
        return SIZE_MAX;
    bool titled = title_json_len > 0 && models_title_sent(facts_of(o), o->task_type);
    return n + text_json_len + (titled ? (size_t)title_json_len - 1 : 0);
}

size_t gem_batch_overhead(const char *display_name)
{
    struct sink s = {NULL, 0, true};
    emit_batch_head(&s, display_name);
    emit_lit(&s, batch_tail);
    /* the first item has no comma before it, but its size counts one */
    return s.ok ? s.n - 1 : SIZE_MAX;
}

bool gem_build_batch(struct buf *out, const char *display_name, const struct gem_req_opts *o,
                     const struct gem_text *texts, size_t n)
{
    struct job j = {display_name, o, texts, n};
    return n > 0 && build(out, gen_batch, &j);
}

bool gem_build_sync(struct buf *out, const struct gem_req_opts *o, const struct gem_text *texts,
                    size_t n)
{
    struct job j = {NULL, o, texts, n};
    return n > 0 && n <= 100 && build(out, gen_sync, &j);
}

bool gem_build_file_batch(struct buf *out, const char *display_name, const char *file_name)
{
    struct gem_text t = {NULL, file_name, file_name ? strlen(file_name) : 0, NULL};
    struct job j = {display_name, NULL, &t, 1};
    return t.text_len > 0 && build(out, gen_file_batch, &j);
}

bool gem_build_jsonl_line(struct buf *out, const struct gem_req_opts *o, const struct gem_text *t)
{
    struct job j = {NULL, o, t, 1};
    return build(out, gen_jsonl, &j);
}
