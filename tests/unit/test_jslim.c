/* test_jslim.c: the streaming JSON slimmer: slim text, vectors, validity, piece boundaries. */
#include "util/jslim.h"

#include <criterion/criterion.h>

#include <json-c/json.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Slim text in pieces of `piece` bytes; true when the text was accepted. */
static bool slim(struct jslim *s, const char *text, size_t piece)
{
    jslim_init(s, 1 << 20);
    size_t n = strlen(text);
    bool ok = true;
    for (size_t i = 0; i < n && ok; i += piece)
        ok = jslim_feed(s, text + i, n - i < piece ? n - i : piece);
    return jslim_finish(s) && ok;
}

Test(jslim, values_arrays_become_references)
{
    struct jslim s;
    cr_assert(slim(&s,
                   " { \"a\" : [1, 2], \"values\": [0.5, -1.25e-1, 3],\n"
                   "\"e\":{\"values\":[]},\"x\":{\"values\":[7]}, \"t\": true, \"n\": null}",
                   1 << 20),
              "%s", s.err);
    cr_assert_str_eq(s.out.data, "{\"a\":[1,2],\"\\u0001v\":0,\"e\":{\"values\":[]},"
                                 "\"x\":{\"\\u0001v\":1},\"t\":true,\"n\":null}");
    cr_assert_eq(s.nvec, 2);
    float *v;
    int dims, bad;
    cr_assert(jslim_take(&s, 0, &v, &dims, &bad));
    cr_assert_eq(dims, 3);
    cr_assert_eq(bad, -1);
    cr_assert(v[0] == 0.5f && v[1] == -0.125f && v[2] == 3.0f);
    free(v);
    cr_assert_not(jslim_take(&s, 0, &v, &dims, &bad), "a vector is taken once");
    cr_assert_not(jslim_take(&s, 2, &v, &dims, &bad));
    /* the slim text is JSON and the reference key is what json-c sees */
    json_object *o = json_tokener_parse(s.out.data);
    cr_assert_not_null(o);
    json_object *ref;
    cr_assert(json_object_object_get_ex(o, JSLIM_REF_KEY, &ref));
    cr_assert_eq(json_object_get_int(ref), 0);
    json_object_put(o);
    jslim_cleanup(&s); /* vector 1, never taken, is freed here */
}

Test(jslim, first_member_values_has_no_comma)
{
    struct jslim s;
    cr_assert(slim(&s, "[{\"values\":[1]},{\"values\":[2],\"k\":\"v\"}]", 3), "%s", s.err);
    cr_assert_str_eq(s.out.data, "[{\"\\u0001v\":0},{\"\\u0001v\":1,\"k\":\"v\"}]");
    jslim_cleanup(&s);
}

Test(jslim, bad_elements_are_recorded)
{
    struct jslim s;
    cr_assert(slim(&s, "{\"values\":[1,\"x\",2]}", 1 << 20), "%s", s.err);
    float *v;
    int dims, bad;
    cr_assert(jslim_take(&s, 0, &v, &dims, &bad));
    cr_assert_null(v);
    cr_assert_eq(bad, 1);
    cr_assert_eq(dims, 3);
    jslim_cleanup(&s);
    cr_assert(slim(&s, "{\"values\":[1,[2,3],{\"a\":4},null,1e39]}", 2), "%s", s.err);
    cr_assert(jslim_take(&s, 0, &v, &dims, &bad));
    cr_assert_eq(bad, 1);
    cr_assert_eq(dims, 5);
    jslim_cleanup(&s);
    cr_assert(slim(&s, "{\"values\":[1,1e39]}", 1 << 20), "%s", s.err);
    cr_assert(jslim_take(&s, 0, &v, &dims, &bad));
    cr_assert_eq(bad, 1, "1e39 is not a finite float32");
    jslim_cleanup(&s);
}

Test(jslim, numbers_match_strtod_to_float)
{
    /* random decimal strings of the shapes Google and others print */
    uint64_t x = 88172645463325252ull;
    char text[64];
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int shape = (int)(x % 5);
        uint64_t m = (x >> 8) % 10000000000000000000ull;
        int sc = (int)((x >> 40) % 12);
        switch (shape) {
        case 0:
            snprintf(text, sizeof(text), "%s0.%0*llu", (x & 1) ? "-" : "", sc + 1,
                     (unsigned long long)(m % 1000000000ull));
            break;
        case 1:
            snprintf(text, sizeof(text), "%.9g", (double)(float)((double)(int64_t)m / 1e19));
            break;
        case 2:
            snprintf(text, sizeof(text), "%.17g", (double)(int64_t)(x >> 1) * 1e-25);
            break;
        case 3:
            snprintf(text, sizeof(text), "%llue-%d", (unsigned long long)(m % 100000), sc);
            break;
        default:
            snprintf(text, sizeof(text), "%llu.%llue%d", (unsigned long long)(m % 1000),
                     (unsigned long long)(x % 100000), sc - 6);
            break;
        }
        char doc[96];
        snprintf(doc, sizeof(doc), "{\"values\":[%s]}", text);
        struct jslim s;
        cr_assert(slim(&s, doc, 1 << 20), "%s: %s", doc, s.err);
        float *v;
        int dims, bad;
        cr_assert(jslim_take(&s, 0, &v, &dims, &bad));
        float want = (float)strtod(text, NULL);
        cr_assert(isfinite(want));
        cr_assert_eq(memcmp(&v[0], &want, sizeof(float)), 0, "%s: %.9g, want %.9g", text,
                     (double)v[0], (double)want);
        free(v);
        jslim_cleanup(&s);
    }
}

Test(jslim, every_piece_size_gives_the_same_result)
{
    const char *text = "{\"name\":\"batches/x\\u00e9\\\"q\",\"response\":{\"inlinedResponses\":"
                       "{\"inlinedResponses\":[{\"response\":{\"embedding\":{\"values\":"
                       "[-0.0165,0.0201,1e-3]}},\"metadata\":{\"key\":\"7\"}},"
                       "{\"error\":{\"code\":3,\"message\":\"bad\"}}]}},\"done\":true}";
    struct jslim whole;
    cr_assert(slim(&whole, text, strlen(text)), "%s", whole.err);
    for (size_t piece = 1; piece < 40; piece++) {
        struct jslim s;
        cr_assert(slim(&s, text, piece), "piece %zu: %s", piece, s.err);
        cr_assert_str_eq(s.out.data, whole.out.data, "piece %zu", piece);
        cr_assert_eq(s.nvec, 1);
        cr_assert_eq(s.vecs[0].dims, 3);
        cr_assert_eq(memcmp(s.vecs[0].v, whole.vecs[0].v, 3 * sizeof(float)), 0);
        jslim_cleanup(&s);
    }
    jslim_cleanup(&whole);
}

Test(jslim, invalid_json_is_refused)
{
    static const char *const bad[] = {
        "",
        "{",
        "{\"a\":1,}",
        "[1,]",
        "[1 2]",
        "{\"a\" 1}",
        "{1:2}",
        "{\"a\":1}}",
        "{\"a\":1} x",
        "{\"a\":1}{}",
        "[01]",
        "[1.]",
        "[.5]",
        "[-]",
        "[1e]",
        "[1e+]",
        "[+1]",
        "[tru]",
        "[nul]",
        "[True]",
        "[\"a\x01\"]",
        "[\"\\x\"]",
        "[\"\\u12g4\"]",
        "[\"abc",
        "{\"values\":[1,2}",
        "{\"values\":[1,,2]}",
        "{\"\\u0001v\":3}",
        "[1]]",
        ":",
        "[,1]",
        "{,}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct jslim s;
        cr_assert_not(slim(&s, bad[i], 1 << 20), "accepted: %s", bad[i]);
        cr_assert(s.err[0], "no reason for: %s", bad[i]);
        jslim_cleanup(&s);
        cr_assert_not(slim(&s, bad[i], 1), "accepted byte by byte: %s", bad[i]);
        jslim_cleanup(&s);
    }
}

Test(jslim, scalars_and_whitespace)
{
    static const char *const good[] = {
        "0",       " -0.5e+3 ",          "\"x\"",         "true", "null", "[]", "{}",
        "[[],{}]", "\"\\ud83d\\ude00\"", "[1e5,2E-3,0.0]"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct jslim s;
        cr_assert(slim(&s, good[i], 1), "%s: %s", good[i], s.err);
        json_object *o = json_tokener_parse(s.out.data);
        cr_assert(o || strcmp(s.out.data, "null") == 0, "slim text of %s: %s", good[i], s.out.data);
        json_object_put(o);
        jslim_cleanup(&s);
    }
}

Test(jslim, nesting_is_bounded)
{
    char deep[200];
    memset(deep, '[', 100);
    deep[100] = '\0';
    struct jslim s;
    cr_assert_not(slim(&s, deep, 1 << 20));
    cr_assert(strstr(s.err, "nesting"), "%s", s.err);
    jslim_cleanup(&s);
}

Test(jslim, slim_text_cap_is_enforced)
{
    struct jslim s;
    jslim_init(&s, 16);
    const char *wide = "{\"aaaaaaaaaaaaaaaaaaaaaa\":1}";
    cr_assert_not(jslim_feed(&s, wide, strlen(wide)));
    cr_assert(strstr(s.err, "too large"), "%s", s.err);
    cr_assert_not(jslim_finish(&s));
    jslim_cleanup(&s);
    /* vectors do not count against the cap */
    jslim_init(&s, 16);
    const char *big = "{\"values\":[1,2,3,4,5,6,7,8,9,10,11,12]}";
    cr_assert(jslim_feed(&s, big, strlen(big)), "%s", s.err);
    cr_assert(jslim_finish(&s), "%s", s.err);
    cr_assert_eq(s.vecs[0].dims, 12);
    jslim_cleanup(&s);
}

/* ---- hooks: elements of chosen arrays handed over one at a time ---- */

struct seen_elems {
    char text[8][128];
    float first[8]; /* the first number of the element's vector, if any */
    int n;
    int refuse_at; /* -1: never */
};

static int choose_items(void *ud, const struct jslim *s)
{
    static const char *const path[] = {"out", "items"};
    (void)ud;
    return jslim_path_is(s, path, 2) ? 7 : 0;
}

static bool take_elem(void *ud, struct jslim *s, int cls, const char *p, size_t n)
{
    struct seen_elems *e = ud;
    cr_assert_eq(cls, 7);
    cr_assert_lt(e->n, 8);
    snprintf(e->text[e->n], sizeof(e->text[0]), "%.*s", (int)n, p);
    e->first[e->n] = NAN;
    /* the element's vectors are the ones after those before it: at most one here */
    float *v;
    int dims, bad;
    if (s->nvec > 0 && jslim_take(s, s->nvec - 1, &v, &dims, &bad)) {
        e->first[e->n] = v[0];
        free(v);
    }
    return e->n++ != e->refuse_at;
}

static bool slim_hooked(struct jslim *s, struct seen_elems *e, const char *text, size_t piece)
{
    memset(e, 0, sizeof(*e));
    e->refuse_at = -1;
    jslim_init(s, 1 << 20);
    struct jslim_hooks h = {choose_items, take_elem, e};
    jslim_set_hooks(s, &h);
    size_t n = strlen(text);
    bool ok = true;
    for (size_t i = 0; i < n && ok; i += piece)
        ok = jslim_feed(s, text + i, n - i < piece ? n - i : piece);
    return ok && jslim_finish(s);
}

Test(jslim, chosen_array_elements_are_handed_over_and_dropped)
{
    static const char text[] =
        "{\"items\":[1,2],\"out\":{\"a\":1,\"items\":[{\"k\":\"x\",\"values\":[0.5,2]},"
        " 42 , \"s\", true, null, {\"k\":\"y\",\"values\":[-1]}, [3, [4]], {\"items\":[9]}],"
        "\"b\":{\"items\":[5]}},\"z\":[{\"out\":1}]}";
    for (size_t piece = 1; piece <= sizeof(text); piece = piece * 2 + 1) {
        struct jslim s;
        struct seen_elems e;
        cr_assert(slim_hooked(&s, &e, text, piece), "piece %zu: %s", piece, s.err);
        /* the chosen array stays, empty; its elements' vectors are gone */
        cr_assert_str_eq(s.out.data, "{\"items\":[1,2],\"out\":{\"a\":1,\"items\":[],"
                                     "\"b\":{\"items\":[5]}},\"z\":[{\"out\":1}]}");
        cr_assert_eq(s.nvec, 0);
        cr_assert_eq(e.n, 8, "piece %zu: %d elements", piece, e.n);
        cr_assert_str_eq(e.text[0], "{\"k\":\"x\",\"\\u0001v\":0}");
        cr_assert(e.first[0] == 0.5f);
        cr_assert_str_eq(e.text[1], "42");
        cr_assert_str_eq(e.text[2], "\"s\"");
        cr_assert_str_eq(e.text[3], "true");
        cr_assert_str_eq(e.text[4], "null");
        cr_assert_str_eq(e.text[5], "{\"k\":\"y\",\"\\u0001v\":0}", "%s", e.text[5]);
        cr_assert(e.first[5] == -1.0f);
        cr_assert_str_eq(e.text[6], "[3,[4]]");
        cr_assert_str_eq(e.text[7], "{\"items\":[9]}", "an array inside an element is not chosen");
        jslim_cleanup(&s);
    }
}

Test(jslim, a_refused_element_refuses_the_text)
{
    static const char text[] = "{\"out\":{\"items\":[1,2,3]}}";
    struct jslim s;
    struct seen_elems e;
    memset(&e, 0, sizeof(e));
    e.refuse_at = 1;
    jslim_init(&s, 1 << 20);
    struct jslim_hooks h = {choose_items, take_elem, &e};
    jslim_set_hooks(&s, &h);
    cr_assert_not(jslim_feed(&s, text, strlen(text)));
    cr_assert(strstr(s.err, "refused"), "%s", s.err);
    cr_assert_eq(e.n, 2);
    jslim_cleanup(&s);
}

Test(jslim, dropped_elements_keep_memory_flat)
{
    /* 5,000 elements of 256 numbers (~7 MB of text): only one element is held */
    struct jslim s;
    jslim_init(&s, 1 << 16); /* a slim text of 64 KB would not hold the array */
    struct jslim_hooks h = {choose_items, NULL, NULL};
    jslim_set_hooks(&s, &h);
    char piece[4096];
    cr_assert(jslim_feed(&s, "{\"out\":{\"items\":[", 17));
    for (int i = 0; i < 5000; i++) {
        int n = snprintf(piece, sizeof(piece), "%s{\"key\":\"%d\",\"values\":[", i ? "," : "", i);
        cr_assert(jslim_feed(&s, piece, (size_t)n));
        for (int k = 0; k < 256; k++) {
            n = snprintf(piece, sizeof(piece), "%s%.6f", k ? "," : "", (double)(i + k) * 1e-4);
            cr_assert(jslim_feed(&s, piece, (size_t)n), "%s", s.err);
        }
        cr_assert(jslim_feed(&s, "]}", 2));
        cr_assert_eq(s.nvec, 0);
    }
    cr_assert(jslim_feed(&s, "]}}", 3));
    cr_assert(jslim_finish(&s), "%s", s.err);
    cr_assert_str_eq(s.out.data, "{\"out\":{\"items\":[]}}");
    cr_assert_lt(s.out.cap, 4096, "slim text capacity %zu", s.out.cap);
    jslim_cleanup(&s);
}
