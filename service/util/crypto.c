/* crypto.c: SHA-256 and base64 through OpenSSL's libcrypto (see crypto.h). */
#include "util/crypto.h"

#include <openssl/evp.h>

#include <limits.h>

bool sha256_digest(const void *data, size_t len, unsigned char out[SHA256_LEN])
{
    unsigned int n = 0;
    return EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) == 1 && n == SHA256_LEN;
}

size_t base64_encode(char *out, const void *in, size_t n)
{
    /* EVP_EncodeBlock takes an int length: encode in pieces of a multiple of
     * 3 bytes, so that no padding appears before the end */
    const unsigned char *p = in;
    size_t o = 0;
    const size_t piece = (size_t)INT_MAX / 4 * 3;
    do {
        size_t k = n < piece ? n : piece;
        o += (size_t)EVP_EncodeBlock((unsigned char *)out + o, p, (int)k);
        p += k;
        n -= k;
    } while (n > 0);
    out[o] = '\0';
    return o;
}
