/*
 * test_webhook_sign.c: webhook signatures against the Standard Webhooks
 * reference libraries' test vector, HMAC-SHA256 against RFC 4231, strict
 * base64 decoding, sealing of stored secrets, and the retry backoff.
 */
#include "util/crypto.h"
#include "webhook/secret.h"
#include "webhook/sender.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

/* The "sign function works" vector of standard-webhooks' libraries
 * (javascript/src/webhook.test.ts, the same in every language). */
Test(webhook_sign, reference_vector)
{
    unsigned char key[64];
    size_t n = 0;
    cr_assert(wh_secret_parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", key, sizeof(key), &n));
    cr_assert_eq(n, 24);
    const char *body = "{\"test\": 2432232314}";
    char sig[WH_SIG_LEN];
    cr_assert(wh_sign(key, n, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, strlen(body), sig));
    cr_assert_str_eq(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    /* the prefix is optional when parsing, as in the reference libraries */
    size_t m = 0;
    unsigned char same[64];
    cr_assert(wh_secret_parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", same, sizeof(same), &m));
    cr_assert(m == n && memcmp(same, key, n) == 0);
    /* anything else signs differently */
    cr_assert(wh_sign(key, n, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331, body, strlen(body), sig));
    cr_assert_str_neq(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

static void hex(const unsigned char *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* RFC 4231 test cases 2 and 6 (a key longer than the block), and the pieces
 * hashed as one message. */
Test(webhook_sign, hmac_sha256_rfc4231)
{
    unsigned char mac[HMAC_SHA256_LEN];
    char h[2 * HMAC_SHA256_LEN + 1];
    const void *p1[2] = {"what do ya want ", "for nothing?"};
    const size_t l1[2] = {16, 12};
    cr_assert(hmac_sha256("Jefe", 4, p1, l1, 2, mac));
    hex(mac, sizeof(mac), h);
    cr_assert_str_eq(h, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    unsigned char k[131];
    memset(k, 0xaa, sizeof(k));
    const char *msg = "Test Using Larger Than Block-Size Key - Hash Key First";
    const void *p2[1] = {msg};
    const size_t l2[1] = {strlen(msg)};
    cr_assert(hmac_sha256(k, sizeof(k), p2, l2, 1, mac));
    hex(mac, sizeof(mac), h);
    cr_assert_str_eq(h, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

Test(webhook_sign, base64_decode_strict)
{
    unsigned char out[16];
    size_t n = 0;
    cr_assert(base64_decode(out, &n, "Zm9vYmFy", 8) && n == 6 && memcmp(out, "foobar", 6) == 0);
    cr_assert(base64_decode(out, &n, "Zm9vYg==", 8) && n == 4 && memcmp(out, "foob", 4) == 0);
    cr_assert(base64_decode(out, &n, "Zm9vYmE=", 8) && n == 5 && memcmp(out, "fooba", 5) == 0);
    cr_assert(base64_decode(out, &n, "", 0) && n == 0);
    cr_assert(base64_decode(out, &n, "+/8=", 4) && n == 2 && out[0] == 0xfb && out[1] == 0xff);
    static const char *const bad[] = {"Zm9",      "Zm9vY===", "Zm=v", "Zm9v\n",  "Zm9 ",
                                      "Zm9vYh==", "Z-9v",     "=m9v", "Zm9vYmF="};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert(!base64_decode(out, &n, bad[i], strlen(bad[i])), "accepted \"%s\"", bad[i]);
}

Test(webhook_sign, secret_text_round_trip)
{
    unsigned char raw[WH_SECRET_LEN], back[64];
    cr_assert(wh_secret_new(raw));
    char text[WH_SECRET_TEXT_LEN];
    wh_secret_text(raw, sizeof(raw), text);
    cr_assert(strncmp(text, "whsec_", 6) == 0);
    cr_assert_eq(strlen(text), 6 + 44);
    size_t n = 0;
    cr_assert(wh_secret_parse(text, back, sizeof(back), &n));
    cr_assert(n == sizeof(raw) && memcmp(raw, back, n) == 0);
    cr_assert(!wh_secret_parse("whsec_", back, sizeof(back), &n));
    cr_assert(!wh_secret_parse("whsec_not base64!", back, sizeof(back), &n));
}

Test(webhook_sign, sealing)
{
    unsigned char raw[WH_SECRET_LEN], back[WH_SECRET_LEN], stored[WH_SEALED_MAX];
    cr_assert(wh_secret_new(raw));
    char err[200];
    /* without a key: kept as is, marked so */
    struct wh_sealer plain, k1, k2;
    cr_assert(wh_sealer_init(&plain, "", err, sizeof(err)));
    size_t n = wh_seal(&plain, raw, stored);
    cr_assert_eq(n, 1 + WH_SECRET_LEN);
    cr_assert(wh_unseal(&plain, stored, n, back, err, sizeof(err)));
    cr_assert(memcmp(raw, back, sizeof(raw)) == 0);
    /* with a key: encrypted, and only that key opens it */
    cr_assert(
        wh_sealer_init(&k1, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", err, sizeof(err)));
    cr_assert(
        wh_sealer_init(&k2, "HxAREhMUFRYXGBkaGxwdHh8AAQIDBAUGBwgJCgsMDQ4=", err, sizeof(err)));
    n = wh_seal(&k1, raw, stored);
    cr_assert_eq(n, 1 + WH_SECRET_LEN + AEAD_OVERHEAD);
    for (size_t i = 0; i + 8 <= n; i++)
        cr_assert(memcmp(stored + i, raw, 8) != 0, "the secret is visible in its sealed form");
    cr_assert(wh_unseal(&k1, stored, n, back, err, sizeof(err)), "%s", err);
    cr_assert(memcmp(raw, back, sizeof(raw)) == 0);
    cr_assert(!wh_unseal(&k2, stored, n, back, err, sizeof(err)));
    cr_assert(!wh_unseal(&plain, stored, n, back, err, sizeof(err)));
    cr_assert(strstr(err, "--webhook-secret-key"), "%s", err);
    stored[20] ^= 1; /* altered in the database */
    cr_assert(!wh_unseal(&k1, stored, n, back, err, sizeof(err)));
    /* two seals of one secret differ (a fresh nonce each) */
    unsigned char again[WH_SEALED_MAX];
    stored[20] ^= 1;
    cr_assert_eq(wh_seal(&k1, raw, again), n);
    cr_assert(memcmp(again, stored, n) != 0);
    /* the setting: base64 of exactly 32 bytes */
    cr_assert(!wh_sealer_init(&k2, "c2hvcnQ=", err, sizeof(err)));
    cr_assert(!wh_sealer_init(&k2, "not base64", err, sizeof(err)));
}

Test(webhook_sign, backoff_full_jitter)
{
    /* the ceiling doubles per failed attempt up to the maximum; the delay is
     * anywhere in [0, ceiling] */
    for (uint64_t r = 0; r < 2000; r += 7) {
        cr_assert_leq(wh_backoff_ms(1, 1000, 60000, -1, r), 1000);
        cr_assert_leq(wh_backoff_ms(3, 1000, 60000, -1, r), 4000);
        cr_assert_leq(wh_backoff_ms(40, 1000, 60000, -1, r), 60000);
    }
    cr_assert_eq(wh_backoff_ms(3, 1000, 60000, -1, 4000), 4000);
    cr_assert_eq(wh_backoff_ms(3, 1000, 60000, -1, 4001), 0);
    cr_assert_eq(wh_backoff_ms(200, 1000, 60000, -1, 60000), 60000);
    /* Retry-After: at least what it asks, at most the maximum */
    cr_assert_eq(wh_backoff_ms(1, 1000, 60000, 30, 5), 30000);
    cr_assert_eq(wh_backoff_ms(1, 1000, 60000, 3600, 5), 60000);
    cr_assert_eq(wh_backoff_ms(1, 1000, 60000, 0, 5), 5);
}
