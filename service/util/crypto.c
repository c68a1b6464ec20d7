/* crypto.c: SHA-256, HMAC, base64 and AES-GCM through OpenSSL's libcrypto (see crypto.h). */
#include "util/crypto.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>

/* SHA-256 fetched from the default provider once: EVP_sha256() makes every
 * digest fetch it again (OpenSSL 3), a third of the cost of hashing an API key
 * or a chunk's identity. Kept for the life of the process. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *sha256(void)
{
    pthread_once(&sha256_once, sha256_fetch);
    return sha256_md ? sha256_md : EVP_sha256();
}

/* One digest context per thread, made on its first digest and freed when
 * the thread ends: EVP_Digest allocates and frees a context per call, which
 * was a third of hashing an API key (about 0.3 µs of each authenticated
 * request). */
static pthread_key_t digest_key;
static pthread_once_t digest_once = PTHREAD_ONCE_INIT;
static bool digest_key_ok;

static void digest_ctx_free(void *ctx)
{
    EVP_MD_CTX_free(ctx);
}

static void digest_key_make(void)
{
    digest_key_ok = pthread_key_create(&digest_key, digest_ctx_free) == 0;
}

bool sha256_digest(const void *data, size_t len, unsigned char out[SHA256_LEN])
{
    unsigned int n = 0;
    pthread_once(&digest_once, digest_key_make);
    EVP_MD_CTX *ctx = digest_key_ok ? pthread_getspecific(digest_key) : NULL;
    if (!ctx && digest_key_ok && (ctx = EVP_MD_CTX_new()) &&
        pthread_setspecific(digest_key, ctx) != 0) {
        EVP_MD_CTX_free(ctx);
        ctx = NULL;
    }
    if (!ctx) /* no context of its own: one for this call */
        return EVP_Digest(data, len, out, &n, sha256(), NULL) == 1 && n == SHA256_LEN;
    return EVP_DigestInit_ex(ctx, sha256(), NULL) == 1 && EVP_DigestUpdate(ctx, data, len) == 1 &&
           EVP_DigestFinal_ex(ctx, out, &n) == 1 && n == SHA256_LEN;
}

bool sha256_begin(struct sha256_ctx *c)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    c->md = md;
    c->failed = !md || EVP_DigestInit_ex(md, sha256(), NULL) != 1;
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

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

bool base64_decode(unsigned char *out, size_t *len, const char *in, size_t n)
{
    *len = 0;
    if (n % 4 != 0)
        return false;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        size_t pad = 0;
        for (int k = 0; k < 4; k++) {
            char c = in[i + (size_t)k];
            /* '=' only at the end: one in the last place, or the last two */
            if (c == '=' && i + 4 == n && (k == 3 || (k == 2 && in[i + 3] == '='))) {
                v[k] = 0;
                pad++;
            } else if ((v[k] = b64_value(c)) < 0) {
                return false;
            }
        }
        uint32_t w =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        /* canonical: the bits that padding leaves over must be zero */
        if ((pad == 1 && (w & 0xff)) || (pad == 2 && (w & 0xffff)))
            return false;
        out[o++] = (unsigned char)(w >> 16);
        if (pad < 2)
            out[o++] = (unsigned char)(w >> 8);
        if (pad < 1)
            out[o++] = (unsigned char)w;
    }
    *len = o;
    return true;
}

bool hmac_sha256(const void *key, size_t key_len, const void *const *pieces, const size_t *lens,
                 size_t n, unsigned char out[HMAC_SHA256_LEN])
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    bool ok = ctx && EVP_MAC_init(ctx, key, key_len, params) == 1;
    for (size_t i = 0; ok && i < n; i++)
        ok = EVP_MAC_update(ctx, pieces[i], lens[i]) == 1;
    size_t got = 0;
    ok = ok && EVP_MAC_final(ctx, out, &got, HMAC_SHA256_LEN) == 1 && got == HMAC_SHA256_LEN;
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return ok;
}

bool aead_seal(const unsigned char key[AEAD_KEY_LEN], const void *aad, size_t aad_len,
               const void *in, size_t n, unsigned char *out)
{
    if (n > INT_MAX || aad_len > INT_MAX || !random_bytes(out, 12))
        return false;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int l = 0, l2 = 0;
    bool ok = ctx && EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, out) == 1 &&
              EVP_EncryptUpdate(ctx, NULL, &l, aad, (int)aad_len) == 1 &&
              EVP_EncryptUpdate(ctx, out + 12, &l, in, (int)n) == 1 &&
              EVP_EncryptFinal_ex(ctx, out + 12 + l, &l2) == 1 && (size_t)(l + l2) == n &&
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, out + 12 + n) == 1;
    EVP_CIPHER_CTX_free(ctx);
    return ok;
}

bool aead_open(const unsigned char key[AEAD_KEY_LEN], const void *aad, size_t aad_len,
               const unsigned char *in, size_t n, unsigned char *out)
{
    if (n < AEAD_OVERHEAD || n - AEAD_OVERHEAD > INT_MAX || aad_len > INT_MAX)
        return false;
    size_t m = n - AEAD_OVERHEAD;
    unsigned char tag[16];
    memcpy(tag, in + 12 + m, 16);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int l = 0, l2 = 0;
    bool ok = ctx && EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, in) == 1 &&
              EVP_DecryptUpdate(ctx, NULL, &l, aad, (int)aad_len) == 1 &&
              EVP_DecryptUpdate(ctx, out, &l, in + 12, (int)m) == 1 &&
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1 &&
              EVP_DecryptFinal_ex(ctx, out + l, &l2) == 1 && (size_t)(l + l2) == m;
    EVP_CIPHER_CTX_free(ctx);
    if (!ok && m)
        memset(out, 0, m);
    return ok;
}

bool random_bytes(void *out, size_t n)
{
    unsigned char *p = out;
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return false;
        p += got;
        n -= (size_t)got;
    }
    return true;
}

bool uuid_v4(char out[UUID_TEXT_LEN + 1])
{
    unsigned char b[16];
    if (!random_bytes(b, sizeof(b)))
        return false;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 9562 variant */
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < sizeof(b); i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
    return true;
}
