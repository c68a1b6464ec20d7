/* fuzz_job_request.c: libFuzzer target for POST /v1/jobs body validation: the whole-body
 * parser (api/job_request.h) and the streamed one (api/job_stream.h), which must agree. */
#include "job_request.h"
#include "job_stream.h"

#include "chunker/chunker.h"
#include "models.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Abort with a message: libFuzzer records the input as a crash. */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_job_request: check failed: %s (line %d)\n", #cond, __LINE__);    \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static bool blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r' && s[i] != '\f' &&
            s[i] != '\v')
            return false;
    return true;
}

static bool terminated(const char *s, size_t cap)
{
    return memchr(s, '\0', cap) != NULL;
}

static int cmp_id(const void *a, const void *b)
{
    const struct job_doc *x = *(const struct job_doc *const *)a;
    const struct job_doc *y = *(const struct job_doc *const *)b;
    size_t n = x->id_len < y->id_len ? x->id_len : y->id_len;
    int c = memcmp(x->id, y->id, n);
    if (c)
        return c;
    return (x->id_len > y->id_len) - (x->id_len < y->id_len);
}

/* A borrowed string member: NUL-terminated at its length, no NUL inside, valid UTF-8. */
static void check_str(const char *s, size_t len, size_t max)
{
    CHECK(s != NULL);
    CHECK(len <= max);
    CHECK(strlen(s) == len);
    CHECK(utf8_valid(s, len));
}

/* small limits, so that the fuzzer reaches them */
static const struct job_limits lim = {100, 10};

static void check_ok(const struct job_request *r)
{
    CHECK(r->root != NULL);
    CHECK(r->n_docs >= 1 && r->n_docs <= lim.documents);
    CHECK(r->docs != NULL);
    const struct model_facts *m = models_find(r->model);
    CHECK(m != NULL && m->batch);
    CHECK(r->task_type && r->task_type[0]);
    CHECK(r->output_dimensionality >= m->min_dims && r->output_dimensionality <= m->max_dims);
    CHECK(r->priority >= -1000 && r->priority <= 1000);
    CHECK(r->max_chars >= 100 && r->max_chars <= models_max_chunk_chars(m));
    CHECK(r->overlap_chars >= 0 && r->overlap_chars * 2 <= r->max_chars);
    if (r->display_name)
        check_str(r->display_name, strlen(r->display_name), JOB_MAX_NAME_BYTES);
    for (size_t i = 0; i < r->n_docs; i++) {
        const struct job_doc *d = &r->docs[i];
        check_str(d->id, d->id_len, JOB_MAX_ID_BYTES);
        CHECK(d->id_len > 0);
        check_str(d->text, d->text_len, SIZE_MAX);
        CHECK(d->text_len > 0 && !blank(d->text, d->text_len));
        if (d->title)
            check_str(d->title, d->title_len, JOB_MAX_TITLE_BYTES);
        if (d->metadata_json) {
            size_t n = strlen(d->metadata_json);
            CHECK(n >= 2 && n <= JOB_MAX_METADATA_JSON);
            CHECK(d->metadata_json[0] == '{' && d->metadata_json[n - 1] == '}');
        }
    }
    /* document ids are unique */
    const struct job_doc **idx = malloc(r->n_docs * sizeof(*idx));
    CHECK(idx != NULL);
    for (size_t i = 0; i < r->n_docs; i++)
        idx[i] = &r->docs[i];
    qsort(idx, r->n_docs, sizeof(*idx), cmp_id);
    for (size_t i = 1; i < r->n_docs; i++)
        CHECK(cmp_id(&idx[i - 1], &idx[i]) != 0);
    free(idx);
}

static void check_failed(const struct job_request *r, const struct job_req_error *e)
{
    CHECK(terminated(e->code, sizeof(e->code)) && e->code[0]);
    CHECK(terminated(e->pointer, sizeof(e->pointer)));
    CHECK(terminated(e->detail, sizeof(e->detail)) && e->detail[0]);
    CHECK(e->pointer[0] == '\0' || e->pointer[0] == '/');
    /* 503 only when memory ran out; everything about the input is 400 or 422 */
    CHECK(e->status == 400 || e->status == 422 ||
          (e->status == 503 && strcmp(e->code, "out_of_memory") == 0));
    /* nothing is left to free */
    CHECK(r->root == NULL && r->docs == NULL && r->n_docs == 0);
}

/* ---- the streamed parser, fed the same body in pieces ---- */

struct taken { /* what the stream handed over since its last documents() */
    const char **ids, **texts, **titles, **metas;
    size_t *id_lens, *text_lens;
    size_t n, cap;
    bool delivered_opts;
    int documents_calls;
};

static char *copy_n(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    CHECK(p != NULL);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static void taken_clear(struct taken *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free((char *)t->ids[i]);
        free((char *)t->texts[i]);
        free((char *)t->titles[i]);
        free((char *)t->metas[i]);
    }
    t->n = 0;
}

static void on_documents(void *cls, const struct job_request *opts)
{
    struct taken *t = cls;
    taken_clear(t);
    t->delivered_opts = opts != NULL;
    t->documents_calls++;
}

static enum job_stream_take on_document(void *cls, size_t index, const struct job_doc *d,
                                        size_t *dup_of)
{
    struct taken *t = cls;
    CHECK(index == t->n);
    check_str(d->id, d->id_len, JOB_MAX_ID_BYTES);
    check_str(d->text, d->text_len, SIZE_MAX);
    for (size_t i = 0; i < t->n; i++) {
        if (t->id_lens[i] == d->id_len && memcmp(t->ids[i], d->id, d->id_len) == 0) {
            *dup_of = i;
            return JOB_STREAM_DUPLICATE;
        }
    }
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 8;
        t->ids = realloc(t->ids, t->cap * sizeof(*t->ids));
        t->texts = realloc(t->texts, t->cap * sizeof(*t->texts));
        t->titles = realloc(t->titles, t->cap * sizeof(*t->titles));
        t->metas = realloc(t->metas, t->cap * sizeof(*t->metas));
        t->id_lens = realloc(t->id_lens, t->cap * sizeof(*t->id_lens));
        t->text_lens = realloc(t->text_lens, t->cap * sizeof(*t->text_lens));
        CHECK(t->ids && t->texts && t->titles && t->metas && t->id_lens && t->text_lens);
    }
    t->ids[t->n] = copy_n(d->id, d->id_len);
    t->id_lens[t->n] = d->id_len;
    t->texts[t->n] = copy_n(d->text, d->text_len);
    t->text_lens[t->n] = d->text_len;
    t->titles[t->n] = d->title ? copy_n(d->title, d->title_len) : NULL;
    t->metas[t->n] = d->metadata_json ? copy_n(d->metadata_json, strlen(d->metadata_json)) : NULL;
    t->n++;
    return JOB_STREAM_TAKEN;
}

static void on_discard(void *cls)
{
    taken_clear(cls);
}

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Stream the body in pieces whose sizes come from seed; the verdict, the
 * options and the documents must be the whole-body parser's. */
static void check_stream(const uint8_t *data, size_t size, uint32_t seed, bool want_ok,
                         const struct job_request *want, const struct job_req_error *we)
{
    static const struct job_stream_ops ops = {on_documents, on_document, on_discard};
    struct taken t;
    memset(&t, 0, sizeof(t));
    struct job_stream js;
    job_stream_init(&js, size + 16, &lim, &ops, &t);
    uint32_t x = seed;
    for (size_t off = 0; off < size;) {
        x = x * 1103515245u + 12345u;
        size_t k = seed == 0 ? size : 1 + (x >> 16) % (1 + seed % 13);
        if (k > size - off)
            k = size - off;
        job_stream_feed(&js, (const char *)data + off, k);
        off += k;
    }
    struct job_request got;
    struct job_req_error ge;
    bool after = false;
    bool got_ok = job_stream_finish(&js, &got, &after, &ge);
    job_stream_cleanup(&js);
    CHECK(got_ok == want_ok);
    if (!got_ok) {
        CHECK(ge.status == we->status);
        CHECK(strcmp(ge.code, we->code) == 0);
        CHECK(strcmp(ge.pointer, we->pointer) == 0);
        CHECK(strcmp(ge.detail, we->detail) == 0);
        CHECK(got.root == NULL);
    } else {
        CHECK(strcmp(got.model, want->model) == 0 && strcmp(got.task_type, want->task_type) == 0);
        CHECK(same_str(got.display_name, want->display_name));
        CHECK(got.output_dimensionality == want->output_dimensionality);
        CHECK(got.priority == want->priority && got.normalize == want->normalize);
        CHECK(got.max_chars == want->max_chars && got.overlap_chars == want->overlap_chars);
        CHECK(t.delivered_opts || after || t.documents_calls > 1);
        CHECK(t.n == want->n_docs);
        for (size_t i = 0; i < t.n; i++) {
            const struct job_doc *d = &want->docs[i];
            CHECK(t.id_lens[i] == d->id_len && memcmp(t.ids[i], d->id, d->id_len) == 0);
            CHECK(t.text_lens[i] == d->text_len && memcmp(t.texts[i], d->text, d->text_len) == 0);
            CHECK(same_str(t.titles[i], d->title));
            CHECK(same_str(t.metas[i], d->metadata_json));
        }
        job_request_free(&got);
    }
    taken_clear(&t);
    free(t.ids);
    free(t.texts);
    free(t.titles);
    free(t.metas);
    free(t.id_lens);
    free(t.text_lens);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct job_request r;
    struct job_req_error e;
    bool ok = job_request_parse((const char *)data, size, &lim, &r, &e);
    if (ok)
        check_ok(&r);
    else
        check_failed(&r, &e);
    /* the streamed parser: whole, a byte at a time, and in pieces from the body's hash */
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 16777619u;
    check_stream(data, size, 0, ok, &r, &e);
    check_stream(data, size, 1, ok, &r, &e);
    check_stream(data, size, h | 2, ok, &r, &e);
    job_request_free(&r); /* harmless after a failure */
    CHECK(r.root == NULL && r.docs == NULL);
    return 0;
}
