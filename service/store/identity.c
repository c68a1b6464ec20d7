/* identity.c: the SHA-256 identity of a chunk's vector (see identity.h). */
#include "store/identity.h"

#include "models.h"

#include <openssl/evp.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* A field as 4 length bytes (little-endian; 0xffffffff: absent) and its bytes. */
static bool field(EVP_MD_CTX *md, const void *p, size_t n, bool present)
{
    uint32_t len = present ? (uint32_t)n : UINT32_MAX;
    unsigned char l[4] = {(unsigned char)len, (unsigned char)(len >> 8), (unsigned char)(len >> 16),
                          (unsigned char)(len >> 24)};
    return EVP_DigestUpdate(md, l, 4) == 1 && (!present || !n || EVP_DigestUpdate(md, p, n) == 1);
}

bool identity_of(const struct identity_space *sp, const char *title, size_t title_len,
                 const char *text, size_t text_len, unsigned char out[IDENTITY_LEN])
{
    if (title_len >= UINT32_MAX || text_len >= UINT32_MAX)
        return false;
    char dims[16];
    int dl = snprintf(dims, sizeof(dims), "%d", sp->dims);
    /* a model whose prompt carries the task and title: the prompt's templates
     * shape the vector too (a new template set is a new identity); other
     * models' identities stay as they were */
    const struct model_facts *m = models_find(sp->model);
    const char *scheme = m && m->task == MODEL_TASK_PROMPT ? m->prompt_scheme : NULL;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int n = 0;
    bool ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
              field(md, "embedd-vector-v1", 16, true) &&
              field(md, sp->model, strlen(sp->model), true) && field(md, dims, (size_t)dl, true) &&
              field(md, sp->task_type, strlen(sp->task_type), true) &&
              field(md, sp->normalize ? "1" : "0", 1, true) &&
              field(md, title, title_len, title != NULL) && field(md, text, text_len, true) &&
              (!scheme || field(md, scheme, strlen(scheme), true)) &&
              EVP_DigestFinal_ex(md, out, &n) == 1 && n == IDENTITY_LEN;
    EVP_MD_CTX_free(md);
    return ok;
}

bool identity_content(const char *title, size_t title_len, const char *text, size_t text_len,
                      unsigned char out[IDENTITY_LEN])
{
    if (title_len >= UINT32_MAX || text_len >= UINT32_MAX)
        return false;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int n = 0;
    bool ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
              field(md, "embedd-document-v1", 18, true) &&
              field(md, title, title_len, title != NULL) && field(md, text, text_len, true) &&
              EVP_DigestFinal_ex(md, out, &n) == 1 && n == IDENTITY_LEN;
    EVP_MD_CTX_free(md);
    return ok;
}
