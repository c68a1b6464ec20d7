/* test_job_stream.c: a JSON job body validated as it streams in gives job_request_parse's
 * verdict on the whole body (status, code, pointer, detail), however it is split, and hands
 * over exactly the documents and options of the tree. */
#include "job_request.h"
#include "job_stream.h"

#include "chunker/chunker.h"

#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A consumer that keeps the documents, checks ids for repeats and counts calls. */
struct taken {
    char **ids, **texts, **titles, **metas;
    size_t n, cap;
    int documents_calls, discards;
    bool opts_valid;
    struct job_request first_opts; /* copy of the scalars handed to documents() */
    char *display_name;
};

static char *dup_n(const char *s, size_t n)
{
    if (!s)
        return NULL;
    char *p = malloc(n + 1);
    cr_assert(p);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static void taken_clear(struct taken *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->ids[i]);
        free(t->texts[i]);
        free(t->titles[i]);
        free(t->metas[i]);
    }
    t->n = 0;
}

static void on_documents(void *cls, const struct job_request *opts)
{
    struct taken *t = cls;
    taken_clear(t);
    t->documents_calls++;
    t->opts_valid = opts != NULL;
    free(t->display_name);
    t->display_name = NULL;
    if (opts) {
        t->first_opts = *opts;
        t->display_name = opts->display_name ? strdup(opts->display_name) : NULL;
    }
}

static enum job_stream_take on_document(void *cls, size_t index, const struct job_doc *d,
                                        size_t *dup_of)
{
    struct taken *t = cls;
    cr_assert_eq(index, t->n, "documents arrive in order");
    cr_assert(utf8_valid(d->id, d->id_len) && utf8_valid(d->text, d->text_len),
              "only valid UTF-8 is handed over");
    for (size_t i = 0; i < t->n; i++) {
        if (strlen(t->ids[i]) == d->id_len && memcmp(t->ids[i], d->id, d->id_len) == 0) {
            *dup_of = i;
            return JOB_STREAM_DUPLICATE;
        }
    }
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 16;
        t->ids = realloc(t->ids, t->cap * sizeof(char *));
        t->texts = realloc(t->texts, t->cap * sizeof(char *));
        t->titles = realloc(t->titles, t->cap * sizeof(char *));
        t->metas = realloc(t->metas, t->cap * sizeof(char *));
    }
    t->ids[t->n] = dup_n(d->id, d->id_len);
    t->texts[t->n] = dup_n(d->text, d->text_len);
    t->titles[t->n] = dup_n(d->title, d->title_len);
    t->metas[t->n] = d->metadata_json ? strdup(d->metadata_json) : NULL;
    t->n++;
    return JOB_STREAM_TAKEN;
}

static void on_discard(void *cls)
{
    struct taken *t = cls;
    t->discards++;
    taken_clear(t);
}

static const struct job_stream_ops ops = {on_documents, on_document, on_discard};

/* small limits, so that passing them costs little */
static const struct job_limits lim = {1000, 100};

static bool str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Stream b in pieces (mode 0: whole; 1: a byte at a time; otherwise pseudo-random sizes),
 * and compare with the whole-body verdict. */
static void same_as_tree(const char *b, size_t n, unsigned mode)
{
    struct job_request want;
    struct job_req_error we;
    bool want_ok = job_request_parse(b, n, &lim, &want, &we);

    struct taken t;
    memset(&t, 0, sizeof(t));
    struct job_stream js;
    job_stream_init(&js, n + 16, &lim, &ops, &t);
    uint32_t x = mode * 2654435761u + 7;
    for (size_t off = 0; off < n;) {
        size_t k = n - off;
        if (mode == 1) {
            k = 1;
        } else if (mode > 1) {
            x = x * 1103515245u + 12345u;
            k = 1 + (x >> 16) % (mode * 5);
            if (k > n - off)
                k = n - off;
        }
        job_stream_feed(&js, b + off, k);
        off += k;
    }
    struct job_request got;
    struct job_req_error ge;
    bool after = false;
    bool got_ok = job_stream_finish(&js, &got, &after, &ge);
    job_stream_cleanup(&js);
    cr_assert_eq(got_ok, want_ok, "mode %u: %.200s: stream %s, tree %s", mode, b,
                 got_ok ? "ok" : ge.detail, want_ok ? "ok" : we.detail);
    if (!want_ok) {
        cr_assert_eq(ge.status, we.status, "%.200s", b);
        cr_assert_str_eq(ge.code, we.code, "%.200s", b);
        cr_assert_str_eq(ge.pointer, we.pointer, "%.200s", b);
        cr_assert_str_eq(ge.detail, we.detail, "%.200s", b);
        cr_assert_null(got.root);
        taken_clear(&t);
    } else {
        cr_assert_str_eq(got.model, want.model);
        cr_assert_str_eq(got.task_type, want.task_type);
        cr_assert(str_eq(got.display_name, want.display_name));
        cr_assert_eq(got.output_dimensionality, want.output_dimensionality);
        cr_assert_eq(got.priority, want.priority);
        cr_assert_eq(got.normalize, want.normalize);
        cr_assert_eq(got.max_chars, want.max_chars);
        cr_assert_eq(got.overlap_chars, want.overlap_chars);
        cr_assert_eq(t.n, want.n_docs, "%.200s", b);
        for (size_t i = 0; i < t.n; i++) {
            const struct job_doc *d = &want.docs[i];
            cr_assert(strlen(t.ids[i]) == d->id_len && memcmp(t.ids[i], d->id, d->id_len) == 0);
            cr_assert(strlen(t.texts[i]) == d->text_len &&
                      memcmp(t.texts[i], d->text, d->text_len) == 0);
            cr_assert(str_eq(t.titles[i], d->title));
            cr_assert(str_eq(t.metas[i], d->metadata_json));
        }
        /* options handed over before the documents are the final ones unless some came after */
        cr_assert(t.opts_valid || after || t.documents_calls > 1);
        if (!after && t.opts_valid) {
            cr_assert_eq(t.first_opts.max_chars, want.max_chars);
            cr_assert_eq(t.first_opts.priority, want.priority);
            cr_assert(str_eq(t.display_name, want.display_name));
        }
        taken_clear(&t);
        job_request_free(&got);
        job_request_free(&want);
    }
    free(t.display_name);
    free(t.ids);
    free(t.texts);
    free(t.titles);
    free(t.metas);
}

static void all_modes(const char *b, size_t n)
{
    for (unsigned mode = 0; mode < 6; mode++)
        same_as_tree(b, n, mode);
}

#define D1 "\"documents\":[{\"id\":\"a\",\"text\":\"hello\"}]"

static const char *const bodies[] = {
    "",
    "  \n",
    "{",
    "{\"documents\": [",
    "{" D1 "} x",
    "{" D1 "}{}",
    "{\"documents\":[{\"id\":\"a\",\"text\":\"\xff\xfe\"}]}",
    "[]",
    "[1]",
    "1",
    "1 ",
    "-2.5e3 ",
    "true",
    "null ",
    "\"documents\"",
    "{}",
    "{\"documents\":{}}",
    "{\"documents\":null}",
    "{\"documents\":1.5}",
    "{\"documents\":7}",
    "{\"documents\":\"a\"}",
    "{\"documents\":true}",
    "{\"documents\":[]}",
    "{\"documents\":[1]}",
    "{\"documents\":[null]}",
    "{\"documents\":[[]]}",
    "{\"documents\":[{\"text\":\"a\"}]}",
    "{\"documents\":[{\"id\":\"\",\"text\":\"a\"}]}",
    "{\"documents\":[{\"id\":7,\"text\":\"a\"}]}",
    "{\"documents\":[{\"id\":\"a\"}]}",
    "{\"documents\":[{\"id\":\"a\",\"text\":\" \\n\\t \"}]}",
    "{\"documents\":[{\"id\":\"a\",\"text\":\"x\\u0000y\"}]}",
    "{\"documents\":[{\"id\":\"a\",\"text\":\"x\",\"foo\":1}]}",
    "{\"documents\":[{\"id\":\"a\",\"text\":\"x\"},{\"id\":\"b\",\"text\":\"y\"},"
    "{\"id\":\"a\",\"text\":\"z\"}]}",
    "{\"documents\":[{\"id\":\"b\",\"text\":\"x\"},{\"id\":\"a\",\"text\":\"y\"},"
    "{\"id\":\"b\",\"text\":\"z\"},{\"id\":\"a\",\"text\":\"w\"}]}",
    "{\"documents\":[{\"id\":\"a\",\"text\":\"x\"},{\"id\":\"a\",\"text\":\"y\"},"
    "{\"id\":\"c\",\"text\":\"\"}]}",
    "{\"documents\":[{\"id\":\"a\",\"text\":\"x\",\"title\":3}]}",
    "{\"documents\":[{\"id\":\"a\",\"text\":\"x\",\"metadata\":\"m\"}]}",
    "{\"documents\":[{\"id\":\"a\",\"text\":\"x\",\"metadata\":{\"k\":[\"\\u0000\"]}}]}",
    "{" D1 ",\"output_dimensionality\":64}",
    "{" D1 ",\"output_dimensionality\":\"768\"}",
    "{" D1 ",\"output_dimensionality\":768.5}",
    "{" D1 ",\"output_dimensionality\":99999999999999999999}",
    "{" D1 ",\"model\":\"text-embedding-004\"}",
    "{" D1 ",\"model\":\"gpt-4\"}",
    "{" D1 ",\"model\":1}",
    "{" D1 ",\"task_type\":\"RETRIEVAL\"}",
    "{" D1 ",\"normalize\":\"yes\"}",
    "{" D1 ",\"priority\":5000}",
    "{" D1 ",\"chunking\":[]}",
    "{" D1 ",\"chunking\":{\"max_chars\":50}}",
    "{" D1 ",\"chunking\":{\"max_chars\":2000,\"overlap_chars\":1500}}",
    "{" D1 ",\"chunking\":{\"size\":1}}",
    "{" D1 ",\"options\":{}}",
    "{" D1 ",\"display_name\":[]}",
    /* valid, options in every place */
    "{" D1 "}",
    "{\"display_name\":\"n\",\"priority\":-5," D1 "}",
    "{" D1 ",\"display_name\":\"n\",\"chunking\":{\"max_chars\":500,\"overlap_chars\":0}}",
    "{\"model\":\"gemini-embedding-001\"," D1 ",\"normalize\":false,\"task_type\":\"CLUSTERING\"}",
    " { \"documents\" : [ {\"id\":\"a\",\"title\":\"T\",\"metadata\":{\"lang\":\"fr\",\"n\":[1,2.5,"
    "-0,1E3]},\"text\":\"caf\xc3\xa9 \\u00e9\\ud83d\\ude00\"} , {\"id\":\"b\",\"text\":\"b\"} ] } ",
    /* repeated members: the last counts, as in the tree */
    "{\"model\":\"gpt-4\"," D1 ",\"model\":\"gemini-embedding-001\"}",
    "{\"priority\":1,\"priority\":2," D1 "}",
    "{\"documents\":[{\"id\":\"a\",\"text\":\"\"}]," D1 "}",
    "{\"documents\":[{\"id\":\"z\",\"text\":\"x\"},{\"id\":\"z\",\"text\":\"y\"}]," D1 "}",
    "{" D1 ",\"documents\":[]}",
    "{" D1 ",\"documents\":5}",
    "{" D1 ",\"documents\":[{\"id\":\"q\",\"text\":\"r\"}],\"display_name\":\"late\"}",
    "{\"docum\\u0065nts\":[{\"id\":\"a\",\"text\":\"escaped name\"}]}",
    "{\"documents\\u0000\":[]}",
    "{\"\":1," D1 "}",
    "{" D1 ",\"callback\":\"http://x\",\"zzz\":1}",
    "{\"a\\u0062\":1," D1 "}",
    /* syntax after a document error wins; a UTF-8 error wins over both */
    "{\"documents\":[{\"id\":7,\"text\":\"x\"},{\"id\":\"b\",\"text\":\"y\"},]}",
    "{\"documents\":[{\"id\":7,\"text\":\"x\"}],\"model\":\"\xc3\"}",
    "{\"model\":'x'," D1 "}",
    "{\"documents\":[{\"id\":\"a\",\"text\":\"t\"}]",
    "{\"normalize\":True," D1 "}",
    "{\"priority\":01," D1 "}",
    "{\"priority\":1e400," D1 "}",
    "{\"priority\":-9223372036854775809," D1 "}",
    "{\"documents\":[{\"id\":\"a\",\"text\":\"t\",\"metadata\":{\"k\\u0000\":\"v\"}}]}",
    "{\"documents\":[{\"id\":\"a\\u0000\",\"text\":\"t\"}]}",
    "{\"documents\":[{\"id\":\"a\",\"text\":\"t\",\"title\":null,\"metadata\":null}]}",
    "{\"documents\":[{\"id\":\"a\",\"text\":\"a\xc0\xaf"
    "b\"}]}",
    /* the document itself is cut short by a bad UTF-8 sequence: never handed over */
    "{\"documents\":[{\"id\":\"a\",\"text\":\"a\xe3\x80\"},{\"id\":\"b\",\"text\":\"b\"}]}",
};

Test(job_stream, same_verdicts_as_the_tree)
{
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
        all_modes(bodies[i], strlen(bodies[i]));
}

static void nest(char *b, size_t cap, int depth, const char *pre, const char *inner)
{
    size_t n = (size_t)snprintf(b, cap, "%s", pre);
    for (int i = 0; i < depth; i++)
        n += (size_t)snprintf(b + n, cap - n, "{\"a\":");
    n += (size_t)snprintf(b + n, cap - n, "%s", inner);
    for (int i = 0; i < depth; i++)
        b[n++] = '}';
    snprintf(b + n, cap - n, "}]}");
}

Test(job_stream, depth_limits_as_the_tree)
{
    char b[2048];
    for (int d = 28; d <= 64; d++) {
        nest(b, sizeof(b), d, "{\"documents\":[{\"id\":\"a\",\"text\":\"t\",\"metadata\":", "1");
        all_modes(b, strlen(b));
        nest(b, sizeof(b), d, "{\"documents\":[{\"id\":\"a\",\"text\":\"t\",\"metadata\":", "{}");
        all_modes(b, strlen(b));
    }
}

Test(job_stream, too_many_documents_and_a_late_error)
{
    size_t cap = 3u << 20, n = 0;
    char *b = malloc(cap);
    n += (size_t)snprintf(b + n, cap - n, "{\"documents\":[");
    for (size_t i = 0; i <= lim.documents; i++)
        n += (size_t)snprintf(b + n, cap - n, "%s{\"id\":\"%zu\",\"text\":\"%s\"}", i ? "," : "", i,
                              i == 5 ? "" : "t");
    n += (size_t)snprintf(b + n, cap - n, "]}");
    same_as_tree(b, n, 0);
    same_as_tree(b, n, 40);
    free(b);
}

Test(job_stream, every_prefix_of_a_body)
{
    static const char b[] =
        "{\"display_name\":\"n\",\"documents\":[{\"id\":\"a\",\"text\":\"x \\u00e9\",\"metadata\":{"
        "\"k\":[1,2.5]}},{\"id\":\"b\",\"text\":\"y\"}],\"chunking\":{\"max_chars\":300}}";
    for (size_t i = 0; i <= sizeof(b) - 1; i++)
        same_as_tree(b, i, i % 3);
}

Test(job_stream, many_repeated_members_stay_linear, .timeout = 60)
{
    /* 30,000 pairs of an option and an empty "documents": the options are not re-parsed
     * for each (that would be about 9 GB of parsing) */
    size_t cap = 2u << 20, n = 0;
    char *b = malloc(cap);
    n += (size_t)snprintf(b + n, cap - n, "{");
    for (int i = 0; i < 30000; i++)
        n += (size_t)snprintf(b + n, cap - n, "\"display_name\":\"n%d\",\"documents\":[],", i);
    n += (size_t)snprintf(b + n, cap - n, "%s}", D1);
    same_as_tree(b, n, 0);
    same_as_tree(b, n, 90);
    free(b);
}
