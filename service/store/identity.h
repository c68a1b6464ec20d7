/*
 * identity.h: the identity of a chunk's vector, SHA-256 over everything that
 * determines it: model, output dimensions, task type, normalisation, title
 * and text, and for a model that takes its task inside the prompt
 * (models.h) the name of its prompt templates. Two chunks of one API key with the same identity
 * have the same vector, so the second is filled from the first instead of being sent to Google
 * again (migrations/0004: chunks.identity).
 */
#ifndef SVC_STORE_IDENTITY_H
#define SVC_STORE_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>

#include "util/compiler.h"

#define IDENTITY_LEN 32

/* What every chunk of a job (or collection) shares. */
struct identity_space {
    const char *model;
    int dims;
    const char *task_type;
    bool normalize;
};

/* The identity of one chunk: title may be NULL (no title, which differs
 * from an empty one). Fields are length-prefixed, so no two different
 * inputs share a preimage. False only when libcrypto fails. */
bool identity_of(const struct identity_space *sp, const char *title, size_t title_len,
                 const char *text, size_t text_len, unsigned char out[IDENTITY_LEN]) SVC_MUSTCHECK;

/* The SHA-256 of a document's title (NULL: none) and text: a collection
 * compares it with the stored version's to tell an unchanged document. */
bool identity_content(const char *title, size_t title_len, const char *text, size_t text_len,
                      unsigned char out[IDENTITY_LEN]) SVC_MUSTCHECK;

#endif
