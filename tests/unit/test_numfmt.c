/* test_numfmt.c: float32 JSON numbers: known values, syntax, shortest digits, exact round trip. */
#include "util/numfmt.h"

#include <criterion/criterion.h>

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TestSuite(numfmt, .timeout = 300);

static float from_bits(uint32_t bits)
{
    float f;
    memcpy(&f, &bits, sizeof(f));
    return f;
}

static uint32_t to_bits(float f)
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof(bits));
    return bits;
}

static const char *fmt(float v)
{
    static char out[NUMFMT_F32_MAX];
    size_t n = numfmt_f32(out, v);
    cr_assert_eq(n, strlen(out), "returned length matches the string");
    return out;
}

/* RFC 8259 number grammar: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */
static bool json_number(const char *s)
{
    if (*s == '-')
        s++;
    if (*s == '0')
        s++;
    else if (*s >= '1' && *s <= '9')
        while (*s >= '0' && *s <= '9')
            s++;
    else
        return false;
    if (*s == '.') {
        s++;
        if (!(*s >= '0' && *s <= '9'))
            return false;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (!(*s >= '0' && *s <= '9'))
            return false;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    return *s == '\0';
}

/* Significant digits in a formatted number: from the first to the last
 * non-zero digit of the mantissa ("157740" and "0.0015774" have 5). */
static int sig_digits(const char *s)
{
    int first = -1, last = -1, i = 0;
    for (; *s && *s != 'e'; s++) {
        if (*s < '0' || *s > '9')
            continue;
        if (*s != '0') {
            if (first < 0)
                first = i;
            last = i;
        }
        i++;
    }
    return first < 0 ? 1 : last - first + 1;
}

Test(numfmt, known_values)
{
    cr_assert_str_eq(fmt(0.0f), "0");
    cr_assert_str_eq(fmt(-0.0f), "-0");
    cr_assert_str_eq(fmt(1.0f), "1");
    cr_assert_str_eq(fmt(-1.0f), "-1");
    cr_assert_str_eq(fmt(-2.5f), "-2.5");
    cr_assert_str_eq(fmt(100.0f), "100");
    cr_assert_str_eq(fmt(0.5f), "0.5");
    cr_assert_str_eq(fmt(0.25f), "0.25");
    cr_assert_str_eq(fmt(0.1f), "0.1");
    cr_assert_str_eq(fmt(0.3f), "0.3");
    cr_assert_str_eq(fmt(2.0f / 3.0f), "0.6666667");
    cr_assert_str_eq(fmt(-0.0123456789f), "-0.012345679");
    cr_assert_str_eq(fmt(16777216.0f), "16777216");
    cr_assert_str_eq(fmt(123456789.0f), "123456790");
    cr_assert_str_eq(fmt(999999999.0f), "1e9", "rounds to the float 1e9");
    cr_assert_str_eq(fmt(1e9f), "1e9");
    cr_assert_str_eq(fmt(-3.25e12f), "-3.25e12");
    cr_assert_str_eq(fmt(1e-7f), "1e-7");
    cr_assert_str_eq(fmt(1.5e-7f), "1.5e-7");
    cr_assert_str_eq(fmt(FLT_MAX), "3.4028235e38");
    cr_assert_str_eq(fmt(-FLT_MAX), "-3.4028235e38");
    cr_assert_str_eq(fmt(FLT_MIN), "1.1754944e-38", "smallest normal");
    cr_assert_str_eq(fmt(from_bits(0x007fffff)), "1.1754942e-38", "largest denormal");
    cr_assert_str_eq(fmt(1e-45f), "1e-45", "smallest denormal");
    cr_assert_str_eq(fmt(-1e-45f), "-1e-45");
    cr_assert_str_eq(fmt(from_bits(2)), "3e-45");
    cr_assert_str_eq(fmt(NAN), "0", "JSON has no NaN");
    cr_assert_str_eq(fmt(-NAN), "0");
    cr_assert_str_eq(fmt(INFINITY), "0");
    cr_assert_str_eq(fmt(-INFINITY), "0");
}

Test(numfmt, plain_range_boundaries)
{
    /* plain notation for 1e-5 <= |v| < 1e9, exponent notation outside */
    cr_assert_str_eq(fmt(0.00001f), "0.00001");
    cr_assert_str_eq(fmt(-0.0000123456789f), "-0.000012345679");
    cr_assert_str_eq(fmt(9.999999e-6f), "9.999999e-6");
    cr_assert_str_eq(fmt(0.0001f), "0.0001");
    cr_assert_str_eq(fmt(999999936.0f), "999999940", "largest float below 1e9");
    cr_assert_str_eq(fmt(1e10f), "1e10");
    cr_assert_str_eq(fmt(33554432.0f), "33554432");
    cr_assert_str_eq(fmt(12345.678f), "12345.678");
}

Test(numfmt, json_syntax)
{
    static const float vals[] = {
        0.0f,    -0.0f,  1.0f,    -1.0f,   10.0f,    1e8f,    0.1f,   -0.1f,  1e-5f,
        -1e-5f,  1e-6f,  1e9f,    1e10f,   123.456f, -7e-20f, 5e30f,  1e-45f, FLT_MIN,
        FLT_MAX, 0.001f, 4.5e15f, -2e-38f, 65536.0f, 3.0e-5f, 9.5e8f,
    };
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        const char *s = fmt(vals[i]);
        cr_assert(json_number(s), "not a JSON number: %s", s);
        cr_assert_neq(s[0], '+', "%s", s);
        cr_assert_null(strchr(s, '+'), "no '+' anywhere: %s", s);
        cr_assert_null(strstr(s, ".e"), "no '.' before the exponent: %s", s);
        cr_assert_neq(s[strlen(s) - 1], '.', "no trailing '.': %s", s);
        if (strchr(s, '.') && !strchr(s, 'e'))
            cr_assert_neq(s[strlen(s) - 1], '0', "trailing zeros trimmed: %s", s);
    }
}

/* Longest outputs in an exact-size heap buffer, so AddressSanitizer catches
 * any write past NUMFMT_F32_MAX. */
Test(numfmt, fits_exact_buffer)
{
    static const float vals[] = {-0.0000123456789f, -1.23456789e-38f, -1.1754942e-38f,
                                 -123456789.0f,     -3.4028235e38f,   -0.012345679f,
                                 -1234567.5f,       -8388607.5f,      -1.0000001f};
    char *out = malloc(NUMFMT_F32_MAX);
    cr_assert_not_null(out);
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        size_t n = numfmt_f32(out, vals[i]);
        cr_assert_lt(n, NUMFMT_F32_MAX, "%s", out);
        cr_assert_eq(strtof(out, NULL), vals[i], "%s", out);
    }
    free(out);
}

/* Every 197th bit pattern (about 21.7 million finite floats, every exponent):
 * exact round trip through strtof, valid JSON, bounded length. */
Test(numfmt, round_trip_across_all_exponents)
{
    char out[NUMFMT_F32_MAX];
    uint64_t checked = 0;
    for (uint64_t u = 0; u < 0x100000000ULL; u += 197) {
        uint32_t bits = (uint32_t)u;
        float f = from_bits(bits);
        if (!isfinite(f))
            continue;
        size_t n = numfmt_f32(out, f);
        if (n > NUMFMT_F32_MAX - 1 || n != strlen(out))
            cr_assert_fail("0x%08x: bad length %zu for %s", bits, n, out);
        uint32_t back = to_bits(strtof(out, NULL));
        if (back != bits)
            cr_assert_fail("0x%08x formatted as %s reads back as 0x%08x", bits, out, back);
        if (!json_number(out))
            cr_assert_fail("0x%08x: not a JSON number: %s", bits, out);
        checked++;
    }
    cr_assert_gt(checked, 20000000);
}

/* Exact ties: a decimal exactly halfway between two floats reads back as the
 * one with the even mantissa, so it may stand for that one; two candidates
 * equally near v go to the even last digit, as printf does. */
Test(numfmt, ties_and_interval_edges)
{
    cr_assert_str_eq(fmt(from_bits(0x4c00010e)), "33555510", "33555512 +- 2 are ties");
    cr_assert_str_eq(fmt(from_bits(0x4e6e6dbe)), "1.0000424e9", "1000042368 + 32 is a tie");
    cr_assert_str_eq(fmt(from_bits(0x3e850000)), "0.25976562", "0.259765625");
    cr_assert_str_eq(fmt(from_bits(0x44e54d00)), "1834.4062", "1834.40625");
    cr_assert_str_eq(fmt(from_bits(0x3c68b1ca)), "0.014202544", "barely inside the interval");
}

/* On a sample across the bit space: no shorter decimal reads back as the same
 * float, and among the shortest the nearest one is chosen (printf's correctly
 * rounded "%.*e" at the shortest round-tripping precision), at every
 * exponent. */
Test(numfmt, shortest_and_nearest)
{
    char out[NUMFMT_F32_MAX];
    char ref[32];
    for (uint64_t u = 1; u < 0x100000000ULL; u += 21011) {
        float f = from_bits((uint32_t)u);
        if (!isfinite(f))
            continue;
        numfmt_f32(out, f);
        int k;
        for (k = 1; k < 9; k++) {
            snprintf(ref, sizeof(ref), "%.*e", k - 1, (double)f);
            if (strtof(ref, NULL) == f)
                break;
        }
        if (k == 9)
            snprintf(ref, sizeof(ref), "%.8e", (double)f);
        int got = sig_digits(out);
        if (got > k)
            cr_assert_fail("%s has %d digits; %s is shorter", out, got, ref);
        if (got == k && strtod(out, NULL) != strtod(ref, NULL))
            cr_assert_fail("%s is not the nearest %d-digit decimal (%s)", out, k, ref);
    }
}

/* Borderline values far from 1: an earlier double-arithmetic formatter gave
 * these one digit more than needed. */
Test(numfmt, shortest_far_from_one)
{
    cr_assert_str_eq(fmt(from_bits(0x00d90b88)), "1.993244e-38");
    cr_assert_str_eq(fmt(from_bits(0x01590b88)), "3.986488e-38");
    cr_assert_str_eq(fmt(from_bits(0x057e2ddc)), "1.1951446e-35");
    cr_assert_str_eq(fmt(from_bits(0x08898b53)), "8.278143e-34");
    cr_assert_str_eq(fmt(from_bits(0x58657a56)), "1.0092544e15");
    cr_assert_str_eq(fmt(from_bits(0x58716618)), "1.0616832e15");
    /* powers of two, whose interval is narrower below (a quarter ulp) */
    cr_assert_str_eq(fmt(from_bits(0x00800000)), "1.1754944e-38");
    cr_assert_str_eq(fmt(from_bits(0x01000000)), "2.3509887e-38");
    cr_assert_str_eq(fmt(0.5f), "0.5");
    cr_assert_str_eq(fmt(8388608.0f), "8388608");
    cr_assert_str_eq(fmt(1.7014118e38f), "1.7014118e38", "2^127");
}

/* Little-endian bytes of f, as chunks.embedding stores them. */
static void put_le(unsigned char *p, float f)
{
    uint32_t u = to_bits(f);
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(u >> (8 * i));
}

/* The array writer: brackets, commas, each value as numfmt_f32 writes it,
 * within NUMFMT_F32_ARRAY_MAX (an exact-size heap buffer, for ASan). */
Test(numfmt, f32le_array)
{
    static const float vals[] = {1.0f, -2.5f, 0.1f, 0.0f, -0.0000123456789f, 3.4028235e38f};
    size_t n = sizeof(vals) / sizeof(vals[0]);
    unsigned char le[sizeof(vals)];
    for (size_t i = 0; i < n; i++)
        put_le(le + 4 * i, vals[i]);
    char *out = malloc(NUMFMT_F32_ARRAY_MAX(n));
    cr_assert_not_null(out);
    size_t len = numfmt_f32le_array(out, le, n);
    cr_assert_str_eq(out, "[1,-2.5,0.1,0,-0.000012345679,3.4028235e38]");
    cr_assert_eq(len, strlen(out));
    cr_assert_eq(numfmt_f32le_array(out, le, 0), 2);
    cr_assert_str_eq(out, "[]");
    free(out);

    /* worst case: every value of the longest form */
    enum { N = 64 };
    unsigned char worst[4 * N];
    for (size_t i = 0; i < N; i++)
        put_le(worst + 4 * i, -0.0000123456789f);
    out = malloc(NUMFMT_F32_ARRAY_MAX(N));
    cr_assert_not_null(out);
    len = numfmt_f32le_array(out, worst, N);
    size_t one = strlen(fmt(-0.0000123456789f));
    cr_assert_eq(len, 2 + N * one + (N - 1));
    free(out);
}
