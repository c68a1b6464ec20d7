/*
 * crypto.h: the digest and encoding embedd needs (SHA-256, base64), from
 * OpenSSL's libcrypto, behind one-shot calls so that call sites stay short.
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

#endif
