/* secret.c: webhook secrets, their sealing, and signatures (see secret.h). */
#include "webhook/secret.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define SEALED_PLAIN 0x00 /* the secret as is */
#define SEALED_GCM   0x01 /* AES-256-GCM under the --webhook-secret-key */

static const char aad[] = "embedd webhook secret v1";

bool wh_sealer_init(struct wh_sealer *s, const char *key_b64, char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    size_t len = strlen(key_b64);
    if (len == 0)
        return true;
    unsigned char k[48];
    size_t n = 0;
    if (len > 64 || !base64_decode(k, &n, key_b64, len) || n != AEAD_KEY_LEN) {
        memset(k, 0, sizeof(k));
        snprintf(err, errlen,
                 "webhook-secret-key must be the base64 of 32 random bytes (openssl rand -base64 "
                 "32)");
        return false;
    }
    memcpy(s->key, k, AEAD_KEY_LEN);
    memset(k, 0, sizeof(k));
    s->on = true;
    return true;
}

bool wh_secret_new(unsigned char raw[WH_SECRET_LEN])
{
    return random_bytes(raw, WH_SECRET_LEN);
}

void wh_secret_text(const unsigned char *raw, size_t n, char *out)
{
    memcpy(out, "whsec_", 6);
    base64_encode(out + 6, raw, n);
}

bool wh_secret_parse(const char *text, unsigned char *raw, size_t max, size_t *n)
{
    if (strncmp(text, "whsec_", 6) == 0)
        text += 6;
    size_t len = strlen(text);
    if (len == 0 || len / 4 * 3 > max)
        return false;
    return base64_decode(raw, n, text, len);
}

size_t wh_seal(const struct wh_sealer *s, const unsigned char raw[WH_SECRET_LEN],
               unsigned char *out)
{
    if (!s->on) {
        out[0] = SEALED_PLAIN;
        memcpy(out + 1, raw, WH_SECRET_LEN);
        return 1 + WH_SECRET_LEN;
    }
    out[0] = SEALED_GCM;
    if (!aead_seal(s->key, aad, sizeof(aad) - 1, raw, WH_SECRET_LEN, out + 1))
        return 0;
    return 1 + WH_SECRET_LEN + AEAD_OVERHEAD;
}

bool wh_unseal(const struct wh_sealer *s, const unsigned char *in, size_t n,
               unsigned char raw[WH_SECRET_LEN], char *err, size_t errlen)
{
    if (n == 1 + WH_SECRET_LEN && in[0] == SEALED_PLAIN) {
        memcpy(raw, in + 1, WH_SECRET_LEN);
        return true;
    }
    if (n != 1 + WH_SECRET_LEN + AEAD_OVERHEAD || in[0] != SEALED_GCM) {
        snprintf(err, errlen, "the stored webhook secret is malformed");
        return false;
    }
    if (!s->on) {
        snprintf(err, errlen,
                 "the webhook secret is encrypted and this process has no --webhook-secret-key");
        return false;
    }
    if (!aead_open(s->key, aad, sizeof(aad) - 1, in + 1, n - 1, raw)) {
        snprintf(err, errlen,
                 "the webhook secret does not open with this --webhook-secret-key (another key "
                 "sealed it)");
        return false;
    }
    return true;
}

bool wh_sign(const unsigned char *key, size_t key_len, const char *msg_id, int64_t timestamp,
             const char *body, size_t body_len, char out[WH_SIG_LEN])
{
    char ts[24];
    int tl = snprintf(ts, sizeof(ts), "%" PRId64, timestamp);
    const void *pieces[5] = {msg_id, ".", ts, ".", body};
    const size_t lens[5] = {strlen(msg_id), 1, (size_t)tl, 1, body_len};
    unsigned char mac[HMAC_SHA256_LEN];
    if (!hmac_sha256(key, key_len, pieces, lens, 5, mac))
        return false;
    memcpy(out, "v1,", 3);
    base64_encode(out + 3, mac, sizeof(mac));
    memset(mac, 0, sizeof(mac));
    return true;
}
