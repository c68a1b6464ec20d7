/* fuzz_job_request.c: libFuzzer target for POST /v1/jobs body validation (api/job_request.h). */
#include "job_request.h"

#include "chunker/chunker.h"

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

static void check_ok(const struct job_request *r)
{
    CHECK(r->root != NULL);
    CHECK(r->n_docs >= 1 && r->n_docs <= JOB_MAX_DOCUMENTS);
    CHECK(r->docs != NULL);
    CHECK(r->model && strcmp(r->model, "gemini-embedding-001") == 0);
    CHECK(r->task_type && r->task_type[0]);
    CHECK(r->output_dimensionality >= 128 && r->output_dimensionality <= 3072);
    CHECK(r->priority >= -1000 && r->priority <= 1000);
    CHECK(r->max_chars >= 100 && r->max_chars <= 8000);
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct job_request r;
    struct job_req_error e;
    if (job_request_parse((const char *)data, size, &r, &e)) {
        check_ok(&r);
        job_request_free(&r);
        CHECK(r.root == NULL && r.docs == NULL);
    } else {
        check_failed(&r, &e);
        job_request_free(&r); /* harmless after a failure */
    }
    return 0;
}
