/*
 * crypto.h: the digests, encodings and ciphers embedd needs (SHA-256,
 * HMAC-SHA256, base64, AES-256-GCM), from OpenSSL's libcrypto, behind
 * one-shot calls so that call sites stay short.
 */
#ifndef SVC_UTIL_CRYPTO_H
#define SVC_UTIL_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>

#include "util/compiler.h"

#define SHA256_LEN 32

/* Write the SHA-256 digest of len bytes at data to out. False only when
 * libcrypto fails (out of memory); out is then undefined. */
bool sha256_digest(const void *data, size_t len, unsigned char out[SHA256_LEN]) SVC_MUSTCHECK;

/* SHA-256 over data that arrives in pieces (a request body). begin may fail
 * (out of memory); a started context must be ended (end or abort), which
 * frees it. update after a failure is a no-op and end then fails. */
struct sha256_ctx {
    void *md; /* EVP_MD_CTX */
    bool failed;
};
bool sha256_begin(struct sha256_ctx *c) SVC_MUSTCHECK;
void sha256_update(struct sha256_ctx *c, const void *data, size_t len);
bool sha256_end(struct sha256_ctx *c, unsigned char out[SHA256_LEN]) SVC_MUSTCHECK;
void sha256_abort(struct sha256_ctx *c);

/* Bytes needed for the base64 encoding of n bytes, including the trailing NUL. */
#define BASE64_ENCODED_SIZE(n) ((((n) + 2) / 3) * 4 + 1)

/* Encode n bytes into out (BASE64_ENCODED_SIZE(n) bytes) as standard base64
 * with padding (RFC 4648, section 4), NUL-terminated. Returns the length
 * written, excluding the NUL. */
size_t base64_encode(char *out, const void *in, size_t n);

/* Decode the n characters at in (standard alphabet, padding required, no
 * whitespace) into out, which holds at least n / 4 * 3 bytes; *len gets the
 * bytes written. False for anything that is not canonical base64. */
bool base64_decode(unsigned char *out, size_t *len, const char *in, size_t n) SVC_MUSTCHECK;

#define HMAC_SHA256_LEN 32

/* HMAC-SHA256 (RFC 2104) under key over the concatenation of n pieces. False
 * only when libcrypto fails. */
bool hmac_sha256(const void *key, size_t key_len, const void *const *pieces, const size_t *lens,
                 size_t n, unsigned char out[HMAC_SHA256_LEN]) SVC_MUSTCHECK;

/* AES-256-GCM with a random 96-bit nonce: out (n + AEAD_OVERHEAD bytes) is
 * nonce, ciphertext, tag; aad is authenticated, not stored. */
#define AEAD_KEY_LEN  32
#define AEAD_OVERHEAD (12 + 16)
bool aead_seal(const unsigned char key[AEAD_KEY_LEN], const void *aad, size_t aad_len,
               const void *in, size_t n, unsigned char *out) SVC_MUSTCHECK;
/* The reverse: n bytes at in (nonce, ciphertext, tag) into out (n -
 * AEAD_OVERHEAD bytes). False when the key is wrong or the data was altered. */
bool aead_open(const unsigned char key[AEAD_KEY_LEN], const void *aad, size_t aad_len,
               const unsigned char *in, size_t n, unsigned char *out) SVC_MUSTCHECK;

/* n bytes from the kernel's random source; false when it fails. */
bool random_bytes(void *out, size_t n) SVC_MUSTCHECK;

/* A random (version 4, RFC 9562) UUID in its 36-character text form, NUL
 * ended; false when the random source fails. */
#define UUID_TEXT_LEN 36
bool uuid_v4(char out[UUID_TEXT_LEN + 1]) SVC_MUSTCHECK;

#endif
