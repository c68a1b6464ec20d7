/* test_gemini_sink.c: a batch's inline results streamed to a sink (or dropped) as the
 * Operation arrives: each result once, in order, from one copy of the list, whatever the
 * piece boundaries; the rest of the Operation as when the results are kept. */
#include "gemini/response.h"

#include "util/buf.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct got {
    char keys[64][16];
    float v0[64];
    int dims[64];
    int codes[64];
    int n;
    int refuse_at; /* -1: never */
};

static bool on_result(void *ud, const struct gem_result *r)
{
    struct got *g = ud;
    cr_assert_lt(g->n, 64);
    snprintf(g->keys[g->n], sizeof(g->keys[0]), "%s", r->key ? r->key : "(none)");
    g->v0[g->n] = r->values ? r->values[0] : -99.0f;
    g->dims[g->n] = r->dims;
    g->codes[g->n] = r->error.code;
    return g->n++ != g->refuse_at;
}

/* An Operation of a succeeded batch: list `a` in metadata.output and list `b` in response
 * (either may be NULL: left out), each as written (a JSON array). */
static char *op_body(const char *a, const char *b, bool bare)
{
    struct buf o;
    buf_init(&o, 1 << 24);
    cr_assert(buf_puts(&o, "{\"name\":\"batches/abc\",\"metadata\":{\"@type\":\"x\","
                           "\"model\":\"models/gemini-embedding-001\",\"displayName\":\"d\""));
    if (a)
        cr_assert(
            buf_printf(&o, ",\"output\":{\"inlinedResponses\":{\"inlinedResponses\":%s}}", a));
    cr_assert(buf_puts(&o, ",\"batchStats\":{\"requestCount\":\"3\"},"
                           "\"state\":\"BATCH_STATE_SUCCEEDED\"},\"done\":true"));
    if (b && bare)
        cr_assert(buf_printf(&o, ",\"response\":{\"@type\":\"y\",\"inlinedResponses\":%s}", b));
    else if (b)
        cr_assert(buf_printf(
            &o, ",\"response\":{\"@type\":\"y\",\"inlinedResponses\":{\"inlinedResponses\":%s}}",
            b));
    cr_assert(buf_putc(&o, '}'));
    return o.data;
}

/* A list of n results keyed "<tag><i>", vector [i + 0.5, 1, 2]; result 1 failed. */
static char *list_of(const char *tag, int n)
{
    struct buf o;
    buf_init(&o, 1 << 20);
    cr_assert(buf_putc(&o, '['));
    for (int i = 0; i < n; i++) {
        if (i == 1)
            cr_assert(buf_printf(&o,
                                 "%s{\"error\":{\"code\":3,\"message\":\"bad\"},"
                                 "\"metadata\":{\"key\":\"%s%d\"}}",
                                 i ? "," : "", tag, i));
        else
            cr_assert(buf_printf(&o,
                                 "%s{\"response\":{\"embedding\":{\"values\":[%d.5, 1, 2]},"
                                 "\"tokenCount\":\"4\"},\"metadata\":{\"key\":\"%s%d\"}}",
                                 i ? "," : "", i, tag, i));
    }
    cr_assert(buf_putc(&o, ']'));
    return o.data;
}

/* Stream body in pieces of `piece` bytes in mode; true if the Operation parsed. */
static bool stream(const char *body, size_t piece, enum gem_results_mode mode, struct got *g,
                   struct gem_operation *op, char *err, size_t errlen, const char **feed_err)
{
    struct gem_result_sink sink = {on_result, g};
    struct gem_op_stream st;
    gem_op_stream_init_mode(&st, mode, mode == GEM_RESULTS_SINK ? &sink : NULL);
    size_t n = strlen(body);
    bool fed = true;
    for (size_t i = 0; i < n && fed; i += piece)
        fed = gem_op_stream_feed(&st, body + i, n - i < piece ? n - i : piece);
    bool limit;
    *feed_err = fed ? NULL : gem_op_stream_error(&st, &limit);
    bool json = false;
    bool ok = fed && gem_op_stream_finish(&st, op, &json, err, errlen);
    gem_op_stream_cleanup(&st);
    return ok;
}

static void expect_list(const struct got *g, const char *tag, int n)
{
    cr_assert_eq(g->n, n, "%d results, not %d", g->n, n);
    for (int i = 0; i < n; i++) {
        char k[16];
        snprintf(k, sizeof(k), "%s%d", tag, i);
        cr_assert_str_eq(g->keys[i], k);
        if (i == 1) {
            cr_assert_eq(g->dims[i], 0);
            cr_assert_eq(g->codes[i], 3);
        } else {
            cr_assert_eq(g->dims[i], 3);
            cr_assert(g->v0[i] == (float)i + 0.5f);
        }
    }
}

Test(gemini_sink, each_result_once_from_the_first_copy_with_results)
{
    char *m = list_of("m", 5), *r = list_of("r", 5), *r3 = list_of("r", 3);
    struct {
        char *body;
        const char *tag;
        int n;
    } cases[] = {
        {op_body(m, r, false), "m", 5},     /* as Google and gemini-sim: metadata first */
        {op_body(NULL, r, false), "r", 5},  /* only in response */
        {op_body("[]", r3, false), "r", 3}, /* an empty first copy does not count */
        {op_body(NULL, r3, true), "r", 3},  /* a bare list */
        {op_body(m, NULL, false), "m", 5},  /* only in metadata.output */
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        for (size_t piece = 1; piece < strlen(cases[c].body) + 7; piece = piece * 3 + 1) {
            struct got g = {.refuse_at = -1};
            struct gem_operation op;
            char err[256] = "";
            const char *ferr;
            cr_assert(
                stream(cases[c].body, piece, GEM_RESULTS_SINK, &g, &op, err, sizeof(err), &ferr),
                "case %zu piece %zu: %s %s", c, piece, err, ferr ? ferr : "");
            expect_list(&g, cases[c].tag, cases[c].n);
            cr_assert_str_eq(op.name, "batches/abc");
            cr_assert_eq(op.state, GEM_STATE_SUCCEEDED);
            cr_assert(op.done);
            cr_assert(op.has_inline);
            cr_assert_eq(op.n_results, 0);
            cr_assert_eq(op.request_count, 3);
            gem_operation_free(&op);
        }
        free(cases[c].body);
    }
    free(m);
    free(r);
    free(r3);
}

Test(gemini_sink, dropped_results_leave_the_operation)
{
    char *m = list_of("m", 5);
    char *body = op_body(m, m, false);
    struct got g = {.refuse_at = -1};
    struct gem_operation op;
    char err[256] = "";
    const char *ferr;
    cr_assert(stream(body, 13, GEM_RESULTS_DROP, &g, &op, err, sizeof(err), &ferr), "%s", err);
    cr_assert_eq(g.n, 0);
    cr_assert(op.has_inline);
    cr_assert_eq(op.n_results, 0);
    cr_assert_eq(op.state, GEM_STATE_SUCCEEDED);
    gem_operation_free(&op);
    /* kept, the same body gives the results (the reference) */
    cr_assert(stream(body, 13, GEM_RESULTS_KEEP, &g, &op, err, sizeof(err), &ferr), "%s", err);
    cr_assert_eq(op.n_results, 5);
    cr_assert_str_eq(op.results[4].key, "m4");
    gem_operation_free(&op);
    free(body);
    free(m);
}

Test(gemini_sink, a_malformed_result_fails_the_operation)
{
    char *body = op_body("[{\"metadata\":{\"key\":\"a\"},\"response\":{\"embedding\":{\"values\":"
                         "[1]}}},{\"metadata\":{\"key\":\"b\"}},{\"metadata\":{\"key\":\"c\"},"
                         "\"response\":{\"embedding\":{\"values\":[2]}}}]",
                         NULL, false);
    struct got g = {.refuse_at = -1};
    struct gem_operation op;
    char err[256] = "";
    const char *ferr;
    cr_assert_not(stream(body, 7, GEM_RESULTS_SINK, &g, &op, err, sizeof(err), &ferr));
    cr_assert_null(ferr, "the body itself is fine");
    cr_assert(strstr(err, "inline result 1"), "%s", err);
    cr_assert_eq(g.n, 1, "nothing after the malformed result");
    /* kept, it fails the same way */
    cr_assert_not(stream(body, 7, GEM_RESULTS_KEEP, &g, &op, err, sizeof(err), &ferr));
    cr_assert(strstr(err, "inline result 1"), "%s", err);
    free(body);
}

Test(gemini_sink, a_refusing_sink_stops_the_body)
{
    char *m = list_of("m", 5);
    char *body = op_body(m, m, false);
    struct got g = {.refuse_at = 2};
    struct gem_operation op;
    char err[256] = "";
    const char *ferr;
    cr_assert_not(stream(body, 11, GEM_RESULTS_SINK, &g, &op, err, sizeof(err), &ferr));
    cr_assert_not_null(ferr);
    cr_assert_str_eq(ferr, "a result could not be kept");
    cr_assert_eq(g.n, 3);
    free(body);
    free(m);
}
