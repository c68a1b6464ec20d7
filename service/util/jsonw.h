/* jsonw.h: appending JSON text to a bounded buffer (strings escaped per RFC 8259, float32 vectors).
 */
#ifndef SVC_UTIL_JSONW_H
#define SVC_UTIL_JSONW_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

/* Append s[0..len) as a JSON string literal: quotes, backslash and control
 * characters escaped (\b \f \n \r \t \" \\ short, the rest \u00XX: the
 * escapes of PostgreSQL's to_json and of gemini/request.c), UTF-8 kept as is. */
bool jsonw_str(struct buf *b, const char *s, size_t len) SVC_MUSTCHECK;
/* Whether byte c must be escaped inside a JSON string. */
static inline bool jsonw_needs_escape(unsigned char c)
{
    return c < 0x20 || c == '"' || c == '\\';
}
/* The escape of byte c (one that needs one) into out; returns its length (2
 * or 6). The short forms where JSON has them, else \u00XX, as PostgreSQL's
 * to_json writes them (migrations/0003 relies on that). */
size_t jsonw_escape(unsigned char c, char out[6]);
/* The bytes jsonw_str writes for s[0..len) without the two quotes. */
size_t jsonw_str_len(const char *s, size_t len);
/* The same for a NUL-terminated string; NULL is written as null. */
bool jsonw_cstr(struct buf *b, const char *s) SVC_MUSTCHECK;

/* Append a float32 little-endian vector of dims components (as stored) as a
 * JSON array of shortest round-trip numbers (util/numfmt.h). Returns false,
 * b unchanged, past b's cap or on OOM. */
bool jsonw_f32le_array(struct buf *b, const unsigned char *v, int dims) SVC_MUSTCHECK;
/* The same vector as a JSON string: its 4 * dims bytes (float32 little-endian,
 * as stored) in base64 with padding (RFC 4648, section 4), the form of
 * OpenAI's encoding_format=base64. Returns false, b unchanged, past b's cap
 * or on OOM. */
bool jsonw_f32le_base64(struct buf *b, const unsigned char *v, int dims) SVC_MUSTCHECK;

#endif
