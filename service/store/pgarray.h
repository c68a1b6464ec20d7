/*
 * pgarray.h: PostgreSQL arrays written for statement parameters: the binary
 * format of one-dimensional arrays (array_send), and text-array elements.
 * Sent as binary parameters, vectors skip their hex text both ways
 * (LIMITS.md: the fastest way to update vectors).
 */
#ifndef SVC_STORE_PGARRAY_H
#define SVC_STORE_PGARRAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/compiler.h"

/* Element type OIDs. */
#define PGARRAY_INT4_OID  23
#define PGARRAY_BYTEA_OID 17

/* Append the header of a binary array of n elements of type oid; the n
 * elements follow. false when out of memory or n passes INT32_MAX. */
bool pgarray_begin(struct buf *out, uint32_t oid, size_t n) SVC_MUSTCHECK;

/* Append an int4 element; false when out of memory. */
bool pgarray_int4(struct buf *out, int32_t v) SVC_MUSTCHECK;

/* Append a float32 vector of dims values as a bytea element: little-endian
 * floats, L2-normalised if asked. false when out of memory or dims <= 0. */
bool pgarray_vector(struct buf *out, const float *v, int dims, bool normalize) SVC_MUSTCHECK;

/* Append s, quoted and escaped, as an element of a text array literal
 * ("{...}", the braces and commas are the caller's); false when out of memory. */
bool pgarray_text(struct buf *out, const char *s) SVC_MUSTCHECK;

#endif
