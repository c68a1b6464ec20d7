/*
 * buf.h: a bounded, NUL-terminated growable byte buffer.
 *
 * Every buffer has a hard cap fixed at init; appends that would pass it fail
 * and leave the buffer unchanged. The data is always NUL-terminated (the NUL
 * is not counted in len), so it can be handed to string functions.
 */
#ifndef SVC_UTIL_BUF_H
#define SVC_UTIL_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "util/compiler.h"

struct buf {
    char *data; /* owned; NULL until the first append */
    size_t len; /* bytes used, not counting the trailing NUL */
    size_t cap; /* bytes allocated */
    size_t max; /* hard limit on len */
};

/* Initialise an empty buffer that may grow to at most max bytes. Cannot fail. */
void buf_init(struct buf *b, size_t max);

/* Free the storage; the buffer is left empty and may be reused. */
void buf_cleanup(struct buf *b);

/* Drop the contents but keep the storage. */
void buf_reset(struct buf *b);

/* Make room for n more bytes. Returns false if that would pass max or on OOM. */
bool buf_reserve(struct buf *b, size_t n) SVC_MUSTCHECK;

/* Append n bytes. Returns false (buffer unchanged) past max or on OOM. */
bool buf_append(struct buf *b, const void *p, size_t n) SVC_MUSTCHECK;

/* Append a NUL-terminated string. */
bool buf_puts(struct buf *b, const char *s) SVC_MUSTCHECK;

/* Append one byte. */
bool buf_putc(struct buf *b, char c) SVC_MUSTCHECK;

/* Append formatted text (vsnprintf semantics). */
bool buf_printf(struct buf *b, const char *fmt, ...) SVC_MUSTCHECK SVC_PRINTF(2, 3);

/* Take ownership of the data (NUL-terminated, never NULL on success; caller frees).
 * The buffer is left empty. Returns NULL only on OOM for an empty buffer. */
char *buf_steal(struct buf *b, size_t *len_out);

#endif
