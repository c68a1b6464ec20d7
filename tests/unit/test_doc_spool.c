/* test_doc_spool.c: documents written to the spool file come back as written, in order. */
#include "doc_spool.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *text_of(size_t i, size_t *len)
{
    *len = i % 7 == 0 ? 300000 + i : 1 + i * 13 % 900; /* some larger than the I/O buffer */
    char *t = malloc(*len);
    cr_assert(t);
    for (size_t k = 0; k < *len; k++)
        t[k] = (char)('a' + (k + i) % 26);
    return t;
}

static void add_docs(struct doc_spool *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char id[32], title[32];
        size_t tl;
        char *t = text_of(i, &tl);
        snprintf(id, sizeof(id), "doc-%zu", i);
        snprintf(title, sizeof(title), "T%zu", i);
        struct ingest_doc d = {id,
                               strlen(id),
                               i % 2 ? title : NULL,
                               i % 2 ? strlen(title) : 0,
                               i % 3 ? "{\"k\":1}" : NULL,
                               t,
                               tl};
        cr_assert(doc_spool_add(s, &d), "add %zu (errno %d)", i, s->err_no);
        free(t);
    }
}

static void check_docs(struct doc_spool *s, size_t n)
{
    cr_assert(doc_spool_rewind(s));
    struct ingest_doc d;
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(doc_spool_next(s, &d), 1, "document %zu", i);
        char id[32];
        snprintf(id, sizeof(id), "doc-%zu", i);
        cr_assert(d.id_len == strlen(id) && memcmp(d.id, id, d.id_len) == 0);
        if (i % 2) {
            char title[32];
            snprintf(title, sizeof(title), "T%zu", i);
            cr_assert_str_eq(d.title, title);
            cr_assert_eq(d.title_len, strlen(title));
        } else {
            cr_assert_null(d.title);
        }
        if (i % 3)
            cr_assert_str_eq(d.metadata_json, "{\"k\":1}");
        else
            cr_assert_null(d.metadata_json);
        size_t tl;
        char *t = text_of(i, &tl);
        cr_assert_eq(d.text_len, tl);
        cr_assert_eq(memcmp(d.text, t, tl), 0);
        free(t);
    }
    cr_assert_eq(doc_spool_next(s, &d), 0);
}

Test(doc_spool, documents_come_back_in_order)
{
    struct doc_spool s;
    char err[256];
    cr_assert(doc_spool_open(&s, "/tmp", 1 << 20, err, sizeof(err)), "%s", err);
    add_docs(&s, 50);
    check_docs(&s, 50);
    check_docs(&s, 50); /* again */
    cr_assert(doc_spool_clear(&s));
    add_docs(&s, 9);
    check_docs(&s, 9);
    doc_spool_close(&s);
    doc_spool_close(&s); /* harmless */
}

Test(doc_spool, a_missing_directory_is_reported)
{
    struct doc_spool s;
    char err[256];
    cr_assert_not(doc_spool_open(&s, "/nonexistent/embedd-spool-test", 1024, err, sizeof(err)));
    cr_assert(strstr(err, "/nonexistent/embedd-spool-test"), "%s", err);
    cr_assert_eq(s.err_no, ENOENT);
    cr_assert_eq(s.fd, -1);
    doc_spool_close(&s);
}

Test(doc_spool, a_document_over_the_limit_is_refused_on_reading)
{
    struct doc_spool s;
    char err[256];
    cr_assert(doc_spool_open(&s, "/tmp", 64, err, sizeof(err)), "%s", err);
    char big[200];
    memset(big, 'x', sizeof(big));
    struct ingest_doc d = {"a", 1, NULL, 0, NULL, big, sizeof(big)};
    cr_assert(doc_spool_add(&s, &d));
    cr_assert(doc_spool_rewind(&s));
    cr_assert_eq(doc_spool_next(&s, &d), -1);
    doc_spool_close(&s);
}
