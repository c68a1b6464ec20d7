/*
 * numfmt.c: fast float32 → JSON number formatting with an exact round trip.
 *
 * Method: scale |v| (as a double) by a power of ten so that it becomes a
 * 9-digit integer mantissa, round, trim trailing zeros, then lay the digits
 * out. Nine significant digits always identify a float32 (Goldberg, "What
 * every computer scientist should know about floating-point arithmetic"):
 * the spacing of 9-digit decimals is at most 1e-8 relative, a float32's
 * half-ulp at least 2^-25 (about 2.98e-8) relative. The double product may
 * put the last digit off by one near a tie, which still leaves the error
 * below 1.5e-8, so the result always parses back to the same float.
 *
 * Output: plain decimal for 1e-5 <= |v| < 1e9 ("0.0123456789", "-12.5",
 * "100"), otherwise exponent notation with a minimal exponent ("1.5e-7",
 * "3.40282347e38"). Zero is "0" or "-0"; NaN and infinities are "0".
 */
#include "util/numfmt.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* 10^k for k = -32 .. 55, as correctly rounded double literals. */
static const double pow10_tbl[] = {
    1e-32, 1e-31, 1e-30, 1e-29, 1e-28, 1e-27, 1e-26, 1e-25, 1e-24, 1e-23, 1e-22, 1e-21, 1e-20,
    1e-19, 1e-18, 1e-17, 1e-16, 1e-15, 1e-14, 1e-13, 1e-12, 1e-11, 1e-10, 1e-9,  1e-8,  1e-7,
    1e-6,  1e-5,  1e-4,  1e-3,  1e-2,  1e-1,  1e0,   1e1,   1e2,   1e3,   1e4,   1e5,   1e6,
    1e7,   1e8,   1e9,   1e10,  1e11,  1e12,  1e13,  1e14,  1e15,  1e16,  1e17,  1e18,  1e19,
    1e20,  1e21,  1e22,  1e23,  1e24,  1e25,  1e26,  1e27,  1e28,  1e29,  1e30,  1e31,  1e32,
    1e33,  1e34,  1e35,  1e36,  1e37,  1e38,  1e39,  1e40,  1e41,  1e42,  1e43,  1e44,  1e45,
    1e46,  1e47,  1e48,  1e49,  1e50,  1e51,  1e52,  1e53,  1e54,  1e55,
};
#define POW10_MIN (-32)

static double pow10i(int k)
{
    return pow10_tbl[k - POW10_MIN];
}

/* Mantissa of d at exponent e: round(d * 10^(8-e)). */
static uint64_t mantissa(double d, int e)
{
    return (uint64_t)(d * pow10i(8 - e) + 0.5);
}

static size_t put_uint(char *out, unsigned v)
{
    char tmp[12];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

size_t numfmt_f32(char *out, float v)
{
    char *p = out;
    if (!isfinite(v) || v == 0.0f) {
        if (v == 0.0f && signbit(v))
            *p++ = '-';
        *p++ = '0';
        *p = '\0';
        return (size_t)(p - out);
    }
    double d = (double)v;
    if (d < 0) {
        *p++ = '-';
        d = -d;
    }
    int e = (int)floor(log10(d)); /* may be off by one: fixed below */
    uint64_t m = mantissa(d, e);
    if (m >= 1000000000ULL) {
        e++;
        m = mantissa(d, e);
    } else if (m < 100000000ULL) {
        e--;
        m = mantissa(d, e);
    }
    if (m >= 1000000000ULL) { /* rounding carried into a tenth digit */
        e++;
        m /= 10;
    }
    char dig[10];
    int n = 9;
    for (int i = 8; i >= 0; i--) {
        dig[i] = (char)('0' + m % 10);
        m /= 10;
    }
    while (n > 1 && dig[n - 1] == '0')
        n--;

    if (e >= -5 && e < 9) {
        if (e >= 0) {
            for (int i = 0; i <= e; i++)
                *p++ = i < n ? dig[i] : '0';
            if (n > e + 1) {
                *p++ = '.';
                for (int i = e + 1; i < n; i++)
                    *p++ = dig[i];
            }
        } else {
            *p++ = '0';
            *p++ = '.';
            for (int i = 0; i < -e - 1; i++)
                *p++ = '0';
            memcpy(p, dig, (size_t)n);
            p += n;
        }
    } else {
        *p++ = dig[0];
        if (n > 1) {
            *p++ = '.';
            memcpy(p, dig + 1, (size_t)(n - 1));
            p += n - 1;
        }
        *p++ = 'e';
        if (e < 0) {
            *p++ = '-';
            e = -e;
        }
        p += put_uint(p, (unsigned)e);
    }
    *p = '\0';
    return (size_t)(p - out);
}
