/* numfmt.c: fast float32 -> JSON number formatting, shortest digits, exact round trip. */
/*
 * Output format
 *   - The shortest decimal (at most 9 significant digits) that strtof reads
 *     back as the identical float; among equally short candidates the
 *     nearest, ties to even. This holds exactly for 1e-4 <= |v| < 1e15;
 *     outside that range a candidate closer than 1e-6 units of its last
 *     digit to the edge of the rounding interval is rejected, so in rare
 *     borderline cases (1 in 33 million sampled) the output has one digit
 *     more than needed; it still reads back exactly.
 *   - Plain notation for 1e-5 <= |v| < 1e9: "1", "-2.5", "0.1", "100",
 *     "0.00001", "123456790". Never a leading '+', never a trailing '.',
 *     always a digit before the '.'.
 *   - Exponent notation otherwise: one digit, optional fraction, 'e', then
 *     the exponent with a '-' sign when negative, no '+', no leading zeros:
 *     "1e-7", "1.5e-7", "-3.25e12", "3.4028235e38", "1e-45".
 *   - Zero is "0", negative zero "-0"; NaN and infinities are "0".
 *   The longest output is 16 bytes ("-0.0000123456789"), well under
 *   NUMFMT_F32_MAX.
 *
 * Method (double arithmetic only)
 *   Let d = |v| as a double (exact) and e its decimal exponent, so that
 *   s = d * 10^(8-e) lies in [1e8, 1e9). s is computed with one multiply or
 *   divide by a table power of ten, so it is within 2.3e-7 of the true
 *   value, and exact where it matters for 1e-4 <= |v| < 1e15 (see the
 *   comment at the bounds).
 *   The reals that strtof rounds to v form the interval [v - g_lo,
 *   v + g_hi] (open unless v's mantissa is even), where g_hi is half the
 *   gap to the next float up and g_lo half the gap to the next float down
 *   (a quarter ulp below a power of two). Scaled like s, it becomes the
 *   integer range [lo, hi]: any integer c in it, read as c * 10^(e-8),
 *   parses back to v. When the arithmetic is inexact the range is first
 *   pulled in by a margin larger than the total rounding error.
 *   round(s) is always in range (the scaled half gap is at least 2.98 for a
 *   normal float, larger for a denormal), which gives 9 digits: nine
 *   significant digits identify every float32. Then, for u = 10, 100, ...,
 *   the multiple of u nearest to s (or the next one up if that falls below
 *   lo) is tried; the largest u that still lands in range gives the
 *   shortest output. A multiple of 10u in range is also a multiple of u, so
 *   the search stops at the first miss.
 */
#include "util/numfmt.h"

#include <stdint.h>
#include <string.h>

/* 10^k for k = -48 .. 56, as correctly rounded double literals. */
static const double pow10_tbl[] = {
    1e-48, 1e-47, 1e-46, 1e-45, 1e-44, 1e-43, 1e-42, 1e-41, 1e-40, 1e-39, 1e-38, 1e-37,
    1e-36, 1e-35, 1e-34, 1e-33, 1e-32, 1e-31, 1e-30, 1e-29, 1e-28, 1e-27, 1e-26, 1e-25,
    1e-24, 1e-23, 1e-22, 1e-21, 1e-20, 1e-19, 1e-18, 1e-17, 1e-16, 1e-15, 1e-14, 1e-13,
    1e-12, 1e-11, 1e-10, 1e-9,  1e-8,  1e-7,  1e-6,  1e-5,  1e-4,  1e-3,  1e-2,  1e-1,
    1e0,   1e1,   1e2,   1e3,   1e4,   1e5,   1e6,   1e7,   1e8,   1e9,   1e10,  1e11,
    1e12,  1e13,  1e14,  1e15,  1e16,  1e17,  1e18,  1e19,  1e20,  1e21,  1e22,  1e23,
    1e24,  1e25,  1e26,  1e27,  1e28,  1e29,  1e30,  1e31,  1e32,  1e33,  1e34,  1e35,
    1e36,  1e37,  1e38,  1e39,  1e40,  1e41,  1e42,  1e43,  1e44,  1e45,  1e46,  1e47,
    1e48,  1e49,  1e50,  1e51,  1e52,  1e53,  1e54,  1e55,  1e56,
};
#define POW10_MIN (-48)

/* "00" .. "99", for writing two digits at a time. */
static const char digit_pairs[201] = "00010203040506070809"
                                     "10111213141516171819"
                                     "20212223242526272829"
                                     "30313233343536373839"
                                     "40414243444546474849"
                                     "50515253545556575859"
                                     "60616263646566676869"
                                     "70717273747576777879"
                                     "80818283848586878889"
                                     "90919293949596979899";

/* Slack, in units of the 9th digit, kept between a candidate and the edge of
 * the rounding interval when the bounds are not exact; the accumulated
 * rounding error of s and of the bounds is below 4.5e-7 units. */
#define MARGIN 1e-6

static double pow10i(int k)
{
    return pow10_tbl[k - POW10_MIN];
}

/* 2^k as a double, for -1022 <= k <= 1023. */
static double pow2i(int k)
{
    uint64_t bits = (uint64_t)(k + 1023) << 52;
    double d;
    memcpy(&d, &bits, sizeof(d));
    return d;
}

/* d * 10^(8-e), the 9-digit scaling of d; divides by an exact power of ten
 * where one exists rather than multiply by an inexact one. */
static double scale(double d, int e)
{
    return e > 8 ? d / pow10i(e - 8) : d * pow10i(8 - e);
}

/* Write the four decimal digits of x < 10000. */
static void put4(char *p, uint32_t x)
{
    memcpy(p, digit_pairs + 2 * (x / 100), 2);
    memcpy(p + 2, digit_pairs + 2 * (x % 100), 2);
}

/*
 * Replace c by the multiple of u nearest to s (ties to even), or the next one
 * up when that falls below lo; return 0 and leave c alone when the result
 * would exceed hi. s = sfloor + sfrac with sfloor an integer, 0 <= sfrac < 1.
 * floor((sfloor + u/2) / u) is round-half-up(s / u) because u/2 is an
 * integer; a tie needs sfrac == 0 and s exactly u/2 below the result.
 */
static int try_unit(uint32_t *c, uint32_t sfloor, double sfrac, uint32_t lo, uint32_t hi,
                    uint32_t u)
{
    uint32_t t = (sfloor + u / 2) / u * u;
    if (sfrac == 0.0 && t - sfloor == u / 2 && (t / u) & 1)
        t -= u;
    if (t < lo)
        t += u;
    if (t > hi)
        return 0;
    *c = t;
    return 1;
}

size_t numfmt_f32(char *out, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof(bits));
    uint32_t bexp = (bits >> 23) & 0xff;
    uint32_t frac = bits & 0x7fffff;
    char *p = out;

    if (bexp == 0xff) { /* NaN or infinity: JSON cannot carry them */
        memcpy(out, "0", 2);
        return 1;
    }
    if (bits >> 31)
        *p++ = '-';
    if (bexp == 0 && frac == 0) {
        memcpy(p, "0", 2);
        return (size_t)(p - out) + 1;
    }

    uint32_t abits = bits & 0x7fffffff;
    float af;
    memcpy(&af, &abits, sizeof(af));
    double d = (double)af;

    /* Binary exponent of d (always a normal double), then
     * k = floor(e2 * log10(2)) with 78913 / 2^18 ~ log10(2); the bias keeps
     * the shifted value non-negative. 10^k <= d < 10^(k+2). */
    uint64_t dbits;
    memcpy(&dbits, &d, sizeof(dbits));
    int e2 = (int)((dbits >> 52) & 0x7ff) - 1023;
    int k = (int)(((int64_t)e2 * 78913 + ((int64_t)1 << 40)) >> 18) - (1 << 22);
    int e = k + (d >= pow10i(k + 1));

    double s = scale(d, e);
    if (s >= 999999999.5) { /* would round up to ten digits */
        e++;
        s = scale(d, e);
    } else if (s < 99999999.5) { /* would round down to eight digits */
        e--;
        s = scale(d, e);
    }

    /* Half gaps to the neighbouring floats. The gap below a power of two
     * (other than the smallest normal) is half as wide. */
    double g_hi = pow2i((int)(bexp ? bexp : 1) - 151);
    double g_lo = (frac == 0 && bexp > 1) ? g_hi * 0.5 : g_hi;

    /* The bounds, scaled like s. For 1e-4 <= |v| < 1e15 they are exact where
     * it matters: for e <= 8, 10^(8-e) is exact and s, s - g_lo, s + g_hi fit
     * in 53 bits; for 9 <= e <= 14, d -+ g are exact integers and dividing
     * them by the exact 10^(e-8) rounds a non-integer quotient by far less
     * than its distance (at least 1e-6) to the nearest integer, so floor,
     * ceil and "is an integer" come out right; the same holds for s and the
     * tie tests below. strtof rounds a decimal exactly halfway between two
     * floats to the one with the even mantissa, so the interval is closed
     * when v's mantissa is even and open otherwise. Outside that range the
     * bounds carry rounding error, so they are pulled in by MARGIN and then
     * treated as closed. */
    double lo_d, hi_d;
    if (e > 8) {
        double p10 = pow10i(e - 8);
        lo_d = (d - g_lo) / p10;
        hi_d = (d + g_hi) / p10;
    } else {
        double p10 = pow10i(8 - e);
        lo_d = s - g_lo * p10;
        hi_d = s + g_hi * p10;
    }
    int exact = e >= -4 && e <= 14;
    if (!exact) {
        lo_d += MARGIN;
        hi_d -= MARGIN;
    }
    uint32_t lo = (uint32_t)lo_d; /* floor: lo_d > 0 */
    uint32_t hi = (uint32_t)hi_d;
    if (!exact || (frac & 1) == 0) {
        lo += (double)lo < lo_d; /* ceil */
    } else {
        lo += 1;                  /* smallest integer > lo_d */
        hi -= (double)hi == hi_d; /* largest integer < hi_d */
    }

    /* Nine digits: round(s), ties to even; then as few as possible. */
    uint32_t sfloor = (uint32_t)s;
    double sfrac = s - (double)sfloor; /* exact */
    uint32_t c = sfloor + (sfrac > 0.5 || (sfrac == 0.5 && (sfloor & 1)));
    if (try_unit(&c, sfloor, sfrac, lo, hi, 10) && try_unit(&c, sfloor, sfrac, lo, hi, 100) &&
        try_unit(&c, sfloor, sfrac, lo, hi, 1000) && try_unit(&c, sfloor, sfrac, lo, hi, 10000) &&
        try_unit(&c, sfloor, sfrac, lo, hi, 100000) &&
        try_unit(&c, sfloor, sfrac, lo, hi, 1000000) &&
        try_unit(&c, sfloor, sfrac, lo, hi, 10000000))
        try_unit(&c, sfloor, sfrac, lo, hi, 100000000);
    if (c >= 1000000000) { /* rounded up to 10^9: a multiple of 10 */
        c /= 10;
        e++;
    }

    /* The nine digits of c (dig[9..15] are padding, so that the fixed-size
     * copies below may read past the end), then drop trailing zeros. */
    char dig[16];
    dig[0] = (char)('0' + c / 100000000);
    uint32_t rest = c % 100000000;
    put4(dig + 1, rest / 10000);
    put4(dig + 5, rest % 10000);
    memset(dig + 9, '0', 7);
    int n = 9;
    while (dig[n - 1] == '0')
        n--;

    /* Fixed-size copies, which may scribble past the final NUL but stay
     * within the NUMFMT_F32_MAX bytes the caller provides: p is at most
     * out + 1 and the last byte written is at most p + 16. */
    if (e >= -5 && e < 9) {
        if (e < 0) { /* "0." then -e-1 zeros then the digits */
            memcpy(p, "0.000000", 8);
            memcpy(p + 1 - e, dig, 9);
            p += 1 - e + n;
        } else if (n <= e + 1) { /* an integer: digits padded with zeros */
            memcpy(p, dig, 9);
            p += e + 1;
        } else {
            memcpy(p, dig, 9);
            memcpy(p + e + 2, dig + e + 1, 8);
            p[e + 1] = '.';
            p += n + 1;
        }
    } else {
        p[0] = dig[0];
        p[1] = '.';
        memcpy(p + 2, dig + 1, 8);
        p += n > 1 ? n + 1 : 1;
        *p++ = 'e';
        if (e < 0) {
            *p++ = '-';
            e = -e;
        }
        if (e >= 10)
            *p++ = (char)('0' + e / 10);
        *p++ = (char)('0' + e % 10);
    }
    *p = '\0';
    return (size_t)(p - out);
}
