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

#endif
