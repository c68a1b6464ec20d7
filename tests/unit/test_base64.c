/* test_base64.c: base64 encoding against the RFC 4648 section 10 vectors and binary input, and
 * vectors written as base64 JSON strings. */
#include "util/crypto.h"
#include "util/jsonw.h"

#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

/* Encode into a heap buffer of exactly BASE64_ENCODED_SIZE(n) bytes, so that
 * AddressSanitizer reports any write past it, and compare. */
static void check(const void *in, size_t n, const char *want)
{
    char *out = malloc(BASE64_ENCODED_SIZE(n));
    cr_assert_not_null(out);
    size_t len = base64_encode(out, in, n);
    cr_assert_str_eq(out, want, "encoding of %zu bytes", n);
    cr_assert_eq(len, strlen(want), "returned length for %zu bytes", n);
    cr_assert_eq(len + 1, BASE64_ENCODED_SIZE(n), "size macro is exact for %zu bytes", n);
    free(out);
}

Test(base64, rfc4648_vectors)
{
    check("", 0, "");
    check("f", 1, "Zg==");
    check("fo", 2, "Zm8=");
    check("foo", 3, "Zm9v");
    check("foob", 4, "Zm9vYg==");
    check("fooba", 5, "Zm9vYmE=");
    check("foobar", 6, "Zm9vYmFy");
}

Test(base64, binary_bytes)
{
    check("\0", 1, "AA==");
    check("\x00\xff\xfe", 3, "AP/+");
    check("\xfb\xff", 2, "+/8=");

    static const char want[] =
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+"
        "P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn"
        "+AgYKDhIWGh4iJiouMjY6PkJGSk5SVlpeYmZqbnJ2en6ChoqOkpaanqKmqq6ytrq+wsbKztLW2t7i5uru8vb6/"
        "wMHCw8TFxsfIycrLzM3Oz9DR0tPU1dbX2Nna29zd3t/g4eLj5OXm5+jp6uvs7e7v8PHy8/T19vf4+fr7/P3+/w==";
    unsigned char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    check(all, sizeof(all), want);
}

Test(base64, size_macro)
{
    cr_assert_eq(BASE64_ENCODED_SIZE(0), 1);
    cr_assert_eq(BASE64_ENCODED_SIZE(1), 5);
    cr_assert_eq(BASE64_ENCODED_SIZE(2), 5);
    cr_assert_eq(BASE64_ENCODED_SIZE(3), 5);
    cr_assert_eq(BASE64_ENCODED_SIZE(4), 9);
    cr_assert_eq(BASE64_ENCODED_SIZE(32), 45, "a SHA-256 digest");
}

/* jsonw_f32le_base64: a JSON string of the vector's little-endian float32 bytes. */
Test(base64, vector_as_json_string)
{
    static const unsigned char v[12] = {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00,
                                        0x20, 0xc0, 0xcd, 0xcc, 0xcc, 0x3d}; /* 1, -2.5, 0.1f */
    struct buf b;
    buf_init(&b, 20); /* exactly enough */
    cr_assert(buf_puts(&b, "x:"));
    cr_assert(jsonw_f32le_base64(&b, v, 3));
    cr_assert_str_eq(b.data, "x:\"AACAPwAAIMDNzMw9\"");
    buf_cleanup(&b);
    buf_init(&b, 19); /* one byte short: refused, unchanged */
    cr_assert(buf_puts(&b, "x:"));
    cr_assert_not(jsonw_f32le_base64(&b, v, 3));
    cr_assert_str_eq(b.data, "x:");
    buf_cleanup(&b);
}
