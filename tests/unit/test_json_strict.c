/* test_json_strict.c: the RFC 8259 syntax check in front of json-c. */
#include "json_strict.h"

#include <criterion/criterion.h>

#include <string.h>

static bool ok(const char *s)
{
    struct json_strict_error e;
    return json_strict_check(s, strlen(s), 64, &e);
}

static const char *why(const char *s, size_t len)
{
    static struct json_strict_error e;
    cr_assert(!json_strict_check(s, len, 64, &e), "accepted: %.*s", (int)len, s);
    return e.message;
}

Test(json_strict, accepts_json)
{
    static const char *const good[] = {
        "{}",
        "[]",
        " {\"a\" : [1, -2.5e+3, 0, 0.0, 1E9, true, false, null, \"x\"]} \n",
        "\"caf\xc3\xa9 \\u00e9 \\ud83d\\ude00 \\\" \\\\ \\/ \\b\\f\\n\\r\\t\"",
        "0",
        "-0",
        "{\"documents\":[{\"id\":\"a\",\"text\":\"b\",\"metadata\":{\"k\":[{}]}}]}"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        cr_assert(ok(good[i]), "refused: %s", good[i]);
}

Test(json_strict, refuses_what_json_c_lets_through)
{
    cr_assert(strstr(why("{'documents':[]}", 16), "member name"));
    cr_assert(strstr(why("{\"a\":\"x\001y\"}", 11), "control character 0x01"));
    cr_assert(strstr(why("{\"a\":\"x\ty\"}", 11), "control character 0x09"));
    cr_assert(strstr(why("{\"documents\\u0000\":[]}", 22), "NUL"));
    cr_assert(ok("{\"text\":\"x\\u0000y\"}"), "a NUL in a value is the caller's to refuse");
    cr_assert(strstr(why("\"\\ud800\"", 8), "unpaired surrogate"));
    cr_assert(strstr(why("\"\\udc00x\"", 9), "unpaired surrogate"));
    cr_assert(strstr(why("\"\\ud800\\u0041\"", 14), "unpaired surrogate"));
    cr_assert(strstr(why("{\"a\":1} x", 9), "end of the body"));
    cr_assert(strstr(why("{\"a\":1}{}", 9), "end of the body"));
    cr_assert(strstr(why("{\"a\":01}", 8), "','"));
    cr_assert(strstr(why("[1,]", 4), "a JSON value"));
    cr_assert(strstr(why("{\"a\":1,}", 8), "member name"));
    cr_assert(strstr(why("[.5]", 4), "a JSON value"));
    cr_assert(strstr(why("[1.]", 4), "after '.'"));
    cr_assert(strstr(why("[1e]", 4), "exponent"));
    cr_assert(strstr(why("[NaN]", 5), "a JSON value"));
    cr_assert(strstr(why("[tru]", 5), "a JSON value"));
    cr_assert(strstr(why("\"\\x41\"", 6), "invalid escape"));
    cr_assert(strstr(why("\"\\u12G4\"", 8), "bad \\u escape"));
    cr_assert(strstr(why("\"abc", 4), "unterminated"));
    cr_assert(strstr(why("", 0), "end of the body"));
    cr_assert(strstr(why("   ", 3), "end of the body"));
    cr_assert(strstr(why("{\"a\":1}\0", 8), "byte 0x00"));
    cr_assert(strstr(why("\v{}", 3), "byte 0x0b"));
}

Test(json_strict, depth_is_bounded)
{
    char deep[300];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    struct json_strict_error e;
    cr_assert(json_strict_check(deep, 200, 100, &e));
    cr_assert(!json_strict_check(deep, 200, 99, &e));
    cr_assert(strstr(e.message, "deeper than 99"));
    cr_assert_eq(e.offset, 99);
}

Test(json_strict, every_prefix_of_a_body_is_refused_cleanly)
{
    const char *b =
        "{\"documents\":[{\"id\":\"a\",\"text\":\"x \\u00e9\\ud83d\\ude00\"}],\"n\":-1.5e3}";
    size_t n = strlen(b);
    for (size_t i = 0; i < n; i++) {
        struct json_strict_error e;
        cr_assert(!json_strict_check(b, i, 64, &e), "prefix of %zu bytes accepted", i);
        cr_assert(e.offset <= i);
    }
    cr_assert(ok(b));
}
