/*
 * chunker.h: split a document into embedding-sized chunks on natural
 * boundaries.
 *
 * A chunk is a span of the document (byte and code-point offsets) of at most
 * max_chars code points and at most max_tokens estimated tokens. Boundaries
 * are chosen, in order of preference, at a paragraph break (blank line), at
 * the end of a sentence (". ", "! ", "? ", "… ", optionally followed by
 * closing quotes or brackets; "。", "！", "？", "．", "।", "॥", "؟", "۔";
 * a line break), at whitespace, and only as a last resort inside a word, and
 * never inside a UTF-8 sequence. A boundary is used only when the chunk keeps
 * a fair share (a quarter to a third) of what the limits allow; a cut inside
 * a word avoids splitting a combining mark, ZWJ sequence or flag from its
 * base where it can. Consecutive chunks overlap by up to overlap_chars code
 * points (and at most half a chunk), the overlap starting at a word start
 * (in text without whitespace, such as CJK or a hard cut, at any character);
 * when no such start exists the chunks do not overlap. Whitespace means ASCII
 * whitespace (space, \t, \n, \v, \f, \r); it is left out at both ends of
 * every chunk, and whitespace-only stretches produce no chunk. Splitting is
 * linear in the length of the text.
 */
#ifndef SVC_CHUNKER_CHUNKER_H
#define SVC_CHUNKER_CHUNKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/compiler.h"

struct chunk_opts {
    size_t max_chars;     /* code points per chunk, >= 1 */
    size_t overlap_chars; /* code points shared with the previous chunk, < max_chars */
    int64_t max_tokens;   /* token budget per chunk (the model's input limit) */
};

#define CHUNK_DEFAULT_MAX_CHARS     2000
#define CHUNK_DEFAULT_OVERLAP_CHARS 200
#define CHUNK_DEFAULT_MAX_TOKENS    2048

struct chunk {
    size_t byte_start, byte_end; /* [start, end) in bytes */
    size_t char_start, char_end; /* [start, end) in code points */
    int64_t tokens;              /* chunker_token_estimate of the span */
};

/*
 * Conservative token estimate: never below what Gemini's tokenizer counts
 * for real text. Runs of ASCII letters and digits count ceil(len / 3),
 * every other non-space ASCII byte 1, every non-ASCII code point its UTF-8
 * length minus one (2- and 3-byte characters count 1 and 2, 4-byte ones 3),
 * whitespace 0; a non-empty text counts at least 1. text must be valid UTF-8.
 */
int64_t chunker_token_estimate(const char *text, size_t len);

/* Whether s[0..len) is valid UTF-8 (no overlongs, surrogates or values past
 * U+10FFFF). NUL bytes are valid. */
bool utf8_valid(const char *s, size_t len);

/* Number of code points in valid UTF-8 s[0..len). */
size_t utf8_count(const char *s, size_t len);

/*
 * Split text (valid UTF-8) into chunks. On success *out is a malloc'd array
 * of *n chunks in document order (the caller frees it; *out is NULL when *n
 * is 0, e.g. for an all-whitespace text) and true is returned. Returns false
 * only on out-of-memory or invalid options (max_chars 0, overlap_chars >=
 * max_chars, max_tokens < 4), leaving *out NULL. Every chunk satisfies the
 * limits in o; the chunks cover every non-whitespace byte of the text.
 */
bool chunker_split(const char *text, size_t len, const struct chunk_opts *o, struct chunk **out,
                   size_t *n) SVC_MUSTCHECK;

#endif
