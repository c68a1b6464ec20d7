/*
 * secret.h: webhook signing secrets and signatures, as the Standard Webhooks
 * specification says: a secret is random bytes shown as "whsec_" + base64;
 * a signature is "v1," + base64(HMAC-SHA256(secret bytes,
 * "{webhook-id}.{webhook-timestamp}.{body}")).
 *
 * A secret must sign, so it is stored recoverably, sealed: with AES-256-GCM
 * under the --webhook-secret-key (the database alone then does not give it
 * away), or, without that setting, as is (then it is as safe as the database
 * and its backups). The first byte of a sealed value says which.
 */
#ifndef SVC_WEBHOOK_SECRET_H
#define SVC_WEBHOOK_SECRET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/compiler.h"
#include "util/crypto.h"

#define WH_SECRET_LEN      32                                       /* bytes (the spec: 24 to 64) */
#define WH_SECRET_TEXT_LEN (6 + BASE64_ENCODED_SIZE(WH_SECRET_LEN)) /* "whsec_..." and NUL */
#define WH_SEALED_MAX      (1 + WH_SECRET_LEN + AEAD_OVERHEAD)
#define WH_SIG_LEN         (3 + BASE64_ENCODED_SIZE(HMAC_SHA256_LEN)) /* "v1,..." and NUL */

struct wh_sealer {
    bool on; /* a key is set: secrets are encrypted */
    unsigned char key[AEAD_KEY_LEN];
};

/* From the setting: "" (secrets stored as is) or the base64 of 32 bytes.
 * False with err for anything else. */
bool wh_sealer_init(struct wh_sealer *s, const char *key_b64, char *err,
                    size_t errlen) SVC_MUSTCHECK;

/* A new random secret. */
bool wh_secret_new(unsigned char raw[WH_SECRET_LEN]) SVC_MUSTCHECK;
/* "whsec_" + base64 of n bytes (n <= 64) into out (WH_SECRET_TEXT_LEN bytes for 32). */
void wh_secret_text(const unsigned char *raw, size_t n, char *out);
/* The bytes of a "whsec_..." secret (the prefix may be left out); up to
 * max of them into raw. False when it is not base64 or too long. */
bool wh_secret_parse(const char *text, unsigned char *raw, size_t max, size_t *n) SVC_MUSTCHECK;

/* Seal raw for storage into out (WH_SEALED_MAX bytes); the length written,
 * 0 on failure. */
size_t wh_seal(const struct wh_sealer *s, const unsigned char raw[WH_SECRET_LEN],
               unsigned char *out) SVC_MUSTCHECK;
/* Open a stored value. False with err (no secret in it) when it was sealed
 * under another key or none is set. */
bool wh_unseal(const struct wh_sealer *s, const unsigned char *in, size_t n,
               unsigned char raw[WH_SECRET_LEN], char *err, size_t errlen) SVC_MUSTCHECK;

/* "v1," + base64(HMAC-SHA256(key, msg_id "." timestamp "." body)) into out. */
bool wh_sign(const unsigned char *key, size_t key_len, const char *msg_id, int64_t timestamp,
             const char *body, size_t body_len, char out[WH_SIG_LEN]) SVC_MUSTCHECK;

#endif
