/* test_sha256.c: SHA-256 against the FIPS 180-4 example vectors, one-shot and streamed. */
#include "util/base64.h"
#include "util/sha256.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

static void hex(const unsigned char d[32], char out[65])
{
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void check(const char *msg, const char *want)
{
    struct sha256 s;
    unsigned char d[32];
    char h[65];
    sha256_init(&s);
    sha256_update(&s, msg, strlen(msg));
    sha256_final(&s, d);
    hex(d, h);
    cr_assert_str_eq(h, want, "sha256(\"%s\")", msg);
}

Test(sha256, fips_vectors)
{
    check("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    check("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    check("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

Test(sha256, million_a_streamed_in_odd_pieces)
{
    static char a[1000000];
    memset(a, 'a', sizeof(a));
    struct sha256 s;
    unsigned char d[32];
    char h[65];
    sha256_init(&s);
    size_t off = 0, step = 1;
    while (off < sizeof(a)) {
        size_t n = step < sizeof(a) - off ? step : sizeof(a) - off;
        sha256_update(&s, a + off, n);
        off += n;
        step = step * 7 % 131 + 1;
    }
    sha256_final(&s, d);
    hex(d, h);
    cr_assert_str_eq(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

Test(base64, rfc4648_vectors)
{
    static const char *const in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const out[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                      "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        char b[16];
        size_t n = base64_encode(b, in[i], strlen(in[i]));
        cr_assert_str_eq(b, out[i]);
        cr_assert_eq(n, strlen(out[i]));
        cr_assert_leq(n + 1, BASE64_ENCODED_SIZE(strlen(in[i])));
    }
}
