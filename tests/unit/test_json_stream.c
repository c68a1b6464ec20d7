/* test_json_stream.c: the piecewise RFC 8259 + UTF-8 check agrees with json_strict_check,
 * utf8_valid and json-c on every body, however it is split; its events cut values out. */
#include "json_stream.h"
#include "json_strict.h"

#include "chunker/chunker.h"

#include <criterion/criterion.h>
#include <json-c/json.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Feed b in pieces: step 0 = whole, otherwise sizes from a tiny PRNG seeded with step. */
static void feed(struct json_stream *s, const char *b, size_t n, unsigned step)
{
    uint32_t x = step * 2654435761u + 1;
    size_t off = 0;
    while (off < n) {
        size_t k = n - off;
        if (step == 1) {
            k = 1;
        } else if (step > 1) {
            x = x * 1103515245u + 12345u;
            k = 1 + (x >> 16) % (step * 3);
            if (k > n - off)
                k = n - off;
        }
        (void)json_stream_feed(s, b + off, k);
        off += k;
    }
    (void)json_stream_finish(s);
}

/* json-c, as job_request parses a body */
static bool json_c_parses(const char *b, size_t n)
{
    struct json_tokener *t = json_tokener_new_ex(64);
    json_tokener_set_flags(t, JSON_TOKENER_STRICT);
    json_object *o = json_tokener_parse_ex(t, b, (int)n);
    bool ok = o && json_tokener_get_error(t) == json_tokener_success;
    json_object_put(o);
    json_tokener_free(t);
    return ok;
}

/* Compare with the whole-body checks for several ways of splitting b. */
static void agree(const char *b, size_t n)
{
    struct json_strict_error want;
    bool strict = json_strict_check(b, n, 64, &want);
    bool utf8 = utf8_valid(b, n);
    for (unsigned step = 0; step < 12; step++) {
        struct json_stream s;
        json_stream_init(&s, 64, 0, NULL, NULL);
        feed(&s, b, n, step);
        cr_assert_eq(s.utf8_bad, !utf8, "utf-8 verdict, step %u: %.*s", step, (int)n, b);
        cr_assert_eq(s.syntax_bad, !strict, "syntax verdict, step %u: %.*s (%s / %s)", step, (int)n,
                     b, s.err.message, want.message);
        cr_assert_eq(s.bytes, n);
        if (!strict) {
            cr_assert_str_eq(s.err.message, want.message, "step %u: %.*s: %s / %s", step, (int)n, b,
                             s.err.message, want.message);
            cr_assert_eq(s.err.offset, want.offset, "step %u: %.*s", step, (int)n, b);
        } else if (utf8 && step == 0) {
            cr_assert_eq(s.deep_scalar || s.scalar_at_end, !json_c_parses(b, n), "json-c: %.*s",
                         (int)n, b);
        }
    }
}

static const char *const bodies[] = {
    "",
    "   ",
    "{}",
    "[]",
    " {\"a\" : [1, -2.5e+3, 0, 0.0, 1E9, true, false, null, \"x\"]} \n",
    "\"caf\xc3\xa9 \\u00e9 \\ud83d\\ude00 \\\" \\\\ \\/ \\b\\f\\n\\r\\t\"",
    "0",
    "-0",
    "-",
    "12",
    "1.5",
    "1e",
    "1e+",
    "1.",
    "01",
    "[01]",
    "-a",
    "tru",
    "true",
    "truex",
    "true ",
    "1 ",
    "1\n",
    " null",
    "false\t",
    "nul",
    "[nulL]",
    "{\"documents\":[{\"id\":\"a\",\"text\":\"b\",\"metadata\":{\"k\":[{}]}}]}",
    "{'documents':[]}",
    "{\"a\":\"x\001y\"}",
    "{\"documents\\u0000\":[]}",
    "{\"text\":\"x\\u0000y\"}",
    "\"\\ud800\"",
    "\"\\ud800",
    "\"\\ud800\\",
    "\"\\ud800\\u",
    "\"\\ud800\\u12",
    "\"\\udc00x\"",
    "\"\\ud800\\u0041\"",
    "\"\\ud800\\udbff\"",
    "\"\\u12\"}]}",
    "\"\\u12",
    "\"\\u1",
    "\"\\",
    "\"\\q\"",
    "\"\\\001\"",
    "{\"a\":1} x",
    "{\"a\":1}{}",
    "[1,]",
    "{\"a\":1,}",
    "[.5]",
    "{\"a\" 1}",
    "{\"a\":1 \"b\":2}",
    "{1:2}",
    "[1 2]",
    "{\"a\"",
    "{\"a\":",
    "{\"a\":1",
    "[1",
    "[",
    "{",
    "{\"a\":[1,{\"b\":null}],\"c\":\"d\"}",
    "\xef\xbb\xbf{}",
    "{\"a\":\"\xc3\"}",
    "{\"a\":\"\xe2\x82\"}",
    "{\"a\":\"\xed\xa0\x80\"}",
    "{\"a\":\"\xf4\x90\x80\x80\"}",
    "{\"a\":\"\xc0\xaf\"}",
    "\xff",
    "{\"a\":\"x\"}\xc3",
    "[1e400, -1E-7, 123456789012345678901234567890]",
};

Test(json_stream, agrees_with_json_strict_on_samples)
{
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
        agree(bodies[i], strlen(bodies[i]));
    agree("{\"a\":1}\0", 8);
    agree("[\0]", 3);
}

Test(json_stream, agrees_on_every_prefix_and_mutation)
{
    static const char base[] = "{\"display_name\":\"n\",\"documents\":[{\"id\":\"a\",\"text\":\"x "
                               "\\u00e9\\ud83d\\ude00 caf\xc3\xa9\",\"metadata\":{\"k\":[1,2.5e-3,"
                               "true,null]}},{\"id\":\"b\",\"text\":\"y\"}],\"n\":-1.5e3}";
    static const char repl[] = "\"\\{}[],: \t0-1.eEtfnu\x01\x7f\xc3\xa9\xff";
    size_t n = strlen(base);
    char *b = malloc(n + 1);
    for (size_t i = 0; i <= n; i++)
        agree(base, i);
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < sizeof(repl) - 1; k++) {
            memcpy(b, base, n);
            b[i] = repl[k];
            agree(b, n);
        }
        memcpy(b, base, i);
        memcpy(b + i, base + i + 1, n - i - 1); /* byte i deleted */
        agree(b, n - 1);
    }
    free(b);
}

Test(json_stream, depth_matches_json_strict_and_json_c)
{
    char b[1024];
    for (int d = 60; d <= 66; d++) {
        static const char *const inner[] = {"", "1", "\"s\"", "{}", "[]", "{\"x\":1}", "true"};
        for (size_t k = 0; k < sizeof(inner) / sizeof(inner[0]); k++) {
            size_t n = 0;
            for (int i = 0; i < d; i++)
                b[n++] = '[';
            n += (size_t)snprintf(b + n, sizeof(b) - n, "%s", inner[k]);
            for (int i = 0; i < d; i++)
                b[n++] = ']';
            agree(b, n);
            n = 0;
            for (int i = 0; i < d; i++)
                n += (size_t)snprintf(b + n, sizeof(b) - n, "{\"a\":");
            n += (size_t)snprintf(b + n, sizeof(b) - n, "%s", *inner[k] ? inner[k] : "0");
            for (int i = 0; i < d; i++)
                b[n++] = '}';
            agree(b, n);
        }
    }
}

/* Captures every depth-1 name and value and every depth-2 value. */
struct cut {
    struct buf got;
    struct buf item;
    int begins, ends;
    bool in_array; /* inside the depth-1 array, whose elements are cut */
};

static void on_event(void *cls, struct json_stream *s, const struct json_stream_ev *ev)
{
    struct cut *c = cls;
    if (ev->depth == 0 || (ev->depth == 2 && (ev->type == JSON_STREAM_NAME_BEGIN ||
                                              ev->type == JSON_STREAM_NAME_END)))
        return;
    if (ev->type == JSON_STREAM_NAME_BEGIN || ev->type == JSON_STREAM_VALUE_BEGIN) {
        if (ev->depth == 1 && ev->type == JSON_STREAM_VALUE_BEGIN &&
            ev->kind == JSON_STREAM_ARRAY) {
            c->in_array = true;
            return; /* its elements are cut instead */
        }
        if (ev->depth == 2 && !c->in_array)
            return;
        c->begins++;
        buf_reset(&c->item);
        json_stream_capture(s, &c->item);
        return;
    }
    if (ev->depth == 1 && ev->type == JSON_STREAM_VALUE_END && ev->kind == JSON_STREAM_ARRAY) {
        c->in_array = false;
        return;
    }
    if (ev->depth == 2 && !c->in_array)
        return;
    c->ends++;
    cr_assert(buf_printf(&c->got, "%d%c%s<%.*s>", ev->depth,
                         ev->type == JSON_STREAM_NAME_END ? 'n' : 'v',
                         ev->kind == JSON_STREAM_NUMBER ? (ev->fraction ? "f" : "i") : "",
                         (int)c->item.len, c->item.data ? c->item.data : ""));
}

Test(json_stream, events_cut_out_values_however_split)
{
    static const char body[] = " {\"model\" : \"m\\\"x\", \"n\":12,\"f\":-1.5e2 , \"documents\":[ "
                               "{\"id\":\"a\",\"t\":[1]},"
                               "7 ,\"s\" ,true,null,[[]], 3.25 ],\"c\":{\"k\":[1,2]}} ";
    static const char want[] =
        "1n<\"model\">1v<\"m\\\"x\">1n<\"n\">1vi<12>1n<\"f\">1vf<-1.5e2>1n<\"documents\">"
        "2v<{\"id\":\"a\",\"t\":[1]}>2vi<7>2v<\"s\">2v<true>2v<null>2v<[[]]>2vf<3.25>"
        "1n<\"c\">1v<{\"k\":[1,2]}>";
    for (unsigned step = 0; step < 40; step++) {
        struct cut c;
        memset(&c, 0, sizeof(c));
        buf_init(&c.got, 1 << 16);
        buf_init(&c.item, 1 << 16);
        struct json_stream s;
        json_stream_init(&s, 64, 2, on_event, &c);
        feed(&s, body, strlen(body), step);
        cr_assert(!s.syntax_bad && !s.utf8_bad && !s.capture_failed, "%s", s.err.message);
        cr_assert_str_eq(c.got.data, want, "step %u: %s", step, c.got.data);
        cr_assert_eq(c.begins, c.ends);
        buf_cleanup(&c.got);
        buf_cleanup(&c.item);
    }
}

Test(json_stream, a_full_capture_buffer_is_reported)
{
    struct cut c;
    memset(&c, 0, sizeof(c));
    buf_init(&c.got, 1 << 16);
    buf_init(&c.item, 4);
    struct json_stream s;
    json_stream_init(&s, 64, 2, on_event, &c);
    static const char body[] = "{\"a\":\"longer than four bytes\"}";
    (void)json_stream_feed(&s, body, strlen(body));
    cr_assert(json_stream_finish(&s));
    cr_assert(s.capture_failed);
    buf_cleanup(&c.got);
    buf_cleanup(&c.item);
}
