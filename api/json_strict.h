/*
 * json_strict.h: an RFC 8259 syntax check run before json-c parses a body.
 * json-c (0.16) accepts more than JSON even in strict mode: single-quoted
 * strings, raw control characters inside strings, and it silently drops
 * what follows an escaped NUL in member names. This check refuses all of
 * that, plus two things that are valid JSON but never meaningful here and
 * dangerous downstream: \u0000 in member names (json-c cuts the name there)
 * and unpaired UTF-16 surrogate escapes (not Unicode text). A \u0000 inside
 * a string value is left to the caller, who can name the field. It allocates
 * nothing and runs in one pass; nesting deeper than max_depth is refused.
 */
#ifndef API_JSON_STRICT_H
#define API_JSON_STRICT_H

#include <stdbool.h>
#include <stddef.h>

struct json_strict_error {
    size_t offset;     /* byte offset of the problem */
    char message[160]; /* "unexpected character '\'' at byte 1" */
};

/* true if p[0..len) is exactly one JSON value (with optional whitespace). */
bool json_strict_check(const char *p, size_t len, int max_depth, struct json_strict_error *e);

#endif
