/* test_sha256.c: SHA-256 (libcrypto, through util/crypto.h) against the FIPS 180-4 example vectors
 * and lengths around the padding boundaries. */
#include "util/crypto.h"

#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void hex(const unsigned char d[32], char out[65])
{
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void digest(const void *msg, size_t len, unsigned char out[32])
{
    cr_assert(sha256_digest(msg, len, out), "sha256_digest failed");
}

static void check(const char *msg, const char *want)
{
    unsigned char d[32];
    char h[65];
    digest(msg, strlen(msg), d);
    hex(d, h);
    cr_assert_str_eq(h, want, "sha256(\"%s\")", msg);
}

Test(sha256, fips_vectors)
{
    check("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    check("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    check("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    check("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqr"
          "lmnopqrsmnopqrstnopqrstu",
          "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

Test(sha256, million_a)
{
    static char a[1000000];
    memset(a, 'a', sizeof(a));
    unsigned char d[32];
    char h[65];
    digest(a, sizeof(a), d);
    hex(d, h);
    cr_assert_str_eq(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* Lengths around the padding boundaries: the 0x80 byte and the 64-bit length
 * fit in the last block (55), just do not (56), or need a block of their own
 * (63, 64). Digests from an independent implementation. */
Test(sha256, padding_boundaries)
{
    static const struct {
        size_t len;
        const char *want;
    } cases[] = {
        {55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
        {56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
        {63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"},
        {64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
        {65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0"},
        {119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb"},
        {120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c"},
        {128, "6836cf13bac400e9105071cd6af47084dfacad4e5e302c94bfed24e013afb73e"},
    };
    char a[128];
    memset(a, 'a', sizeof(a));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned char d[32];
        char h[65];
        digest(a, cases[i].len, d);
        hex(d, h);
        cr_assert_str_eq(h, cases[i].want, "%zu bytes of 'a'", cases[i].len);
    }
}

/* The same digests fed in pieces of every size 1..70 (odd and even, below
 * and above the block size), through the streaming context. */
Test(sha256, streamed_equals_one_shot)
{
    unsigned char msg[300];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof(msg); i++) {
        x = x * 1103515245u + 12345u;
        msg[i] = (unsigned char)(x >> 24);
    }
    for (size_t len = 0; len <= sizeof(msg); len += 7) {
        unsigned char want[32];
        digest(msg, len, want);
        for (size_t piece = 1; piece <= 70; piece++) {
            struct sha256_ctx c;
            unsigned char got[32];
            cr_assert(sha256_begin(&c));
            for (size_t off = 0; off < len; off += piece)
                sha256_update(&c, msg + off, piece < len - off ? piece : len - off);
            sha256_update(&c, NULL, 0);
            cr_assert(sha256_end(&c, got));
            if (memcmp(got, want, sizeof(want)) != 0)
                cr_assert_fail("length %zu in pieces of %zu differs from one-shot", len, piece);
        }
    }
    struct sha256_ctx c;
    cr_assert(sha256_begin(&c));
    sha256_abort(&c); /* abandoned: frees, no leak */
}
