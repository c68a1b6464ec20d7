/* crypto.c: SHA-256 and base64 through OpenSSL's libcrypto (see crypto.h). */
#include "util/crypto.h"

#include <openssl/evp.h>

#include <limits.h>

bool sha256_digest(const void *data, size_t len, unsigned char out[SHA256_LEN])
{
    unsigned int n = 0;
    return EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) == 1 && n == SHA256_LEN;
}

bool sha256_begin(struct sha256_ctx *c)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    c->md = md;
    c->failed = !md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1;
    return !c->failed;
}

void sha256_update(struct sha256_ctx *c, const void *data, size_t len)
{
    if (!c->failed && len && EVP_DigestUpdate(c->md, data, len) != 1)
        c->failed = true;
}

bool sha256_end(struct sha256_ctx *c, unsigned char out[SHA256_LEN])
{
    unsigned int n = 0;
    bool ok = !c->failed && EVP_DigestFinal_ex(c->md, out, &n) == 1 && n == SHA256_LEN;
    sha256_abort(c);
    return ok;
}

void sha256_abort(struct sha256_ctx *c)
{
    EVP_MD_CTX_free(c->md);
    c->md = NULL;
    c->failed = true;
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
