/* base64.h: standard base64 (RFC 4648 section 4, with padding). */
#ifndef SVC_UTIL_BASE64_H
#define SVC_UTIL_BASE64_H

#include <stddef.h>

/* Bytes needed for the encoding of n bytes, including the trailing NUL. */
#define BASE64_ENCODED_SIZE(n) ((((n) + 2) / 3) * 4 + 1)

/* Encode n bytes into out (BASE64_ENCODED_SIZE(n) bytes). Returns the length
 * written, excluding the NUL. */
size_t base64_encode(char *out, const void *in, size_t n);

#endif
