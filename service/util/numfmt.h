/*
 * numfmt.h: fast, exact number formatting for JSON output.
 */
#ifndef SVC_UTIL_NUMFMT_H
#define SVC_UTIL_NUMFMT_H

#include <stddef.h>

/* Longest output of numfmt_f32, including the trailing NUL. */
#define NUMFMT_F32_MAX 24

/*
 * Write v as a JSON number that parses back (strtof) to exactly the same
 * float32. At most 9 significant digits, trailing zeros trimmed; plain
 * decimal notation for 1e-5 <= |v| < 1e9, exponent notation otherwise
 * ("1.5e-07"). Zero is "0" (negative zero "-0"). NaN and infinities, which
 * JSON cannot carry, are written as "0". Returns the length written
 * (excluding the NUL); out must hold NUMFMT_F32_MAX bytes.
 */
size_t numfmt_f32(char *out, float v);

/*
 * Write the n float32 values stored little endian at le (4 * n bytes, any
 * alignment) as a JSON array, "[v0,v1,...]", each value as numfmt_f32
 * writes it, followed by a NUL. Returns the length written (excluding the
 * NUL); out must hold NUMFMT_F32_ARRAY_MAX(n) bytes.
 */
size_t numfmt_f32le_array(char *out, const unsigned char *le, size_t n);

/* Room numfmt_f32le_array needs for n values: each value with its comma
 * fits in NUMFMT_F32_MAX, plus the brackets. */
#define NUMFMT_F32_ARRAY_MAX(n) ((size_t)(n)*NUMFMT_F32_MAX + 3)

#endif
