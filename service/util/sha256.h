/* sha256.h: SHA-256 (FIPS 180-4), streaming. */
#ifndef SVC_UTIL_SHA256_H
#define SVC_UTIL_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct sha256 {
    uint32_t h[8];
    uint64_t total; /* bytes hashed so far */
    unsigned char block[64];
    size_t used; /* bytes pending in block */
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t len);
/* Write the 32-byte digest; s must be re-initialised before reuse. */
void sha256_final(struct sha256 *s, unsigned char out[32]);

#endif
