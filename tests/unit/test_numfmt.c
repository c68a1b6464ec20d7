/* test_numfmt.c: float32 JSON formatting: known outputs, JSON syntax, exact round trip. */
#include "util/numfmt.h"

#include <criterion/criterion.h>

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

TestSuite(numfmt, .timeout = 300);

static const char *fmt(float v)
{
    static char out[NUMFMT_F32_MAX];
    size_t n = numfmt_f32(out, v);
    cr_assert_eq(n, strlen(out), "returned length matches the string");
    return out;
}

Test(numfmt, known_values)
{
    cr_assert_str_eq(fmt(0.0f), "0");
    cr_assert_str_eq(fmt(-0.0f), "-0");
    cr_assert_str_eq(fmt(1.0f), "1");
    cr_assert_str_eq(fmt(-2.5f), "-2.5");
    cr_assert_str_eq(fmt(100.0f), "100");
    cr_assert_str_eq(fmt(0.5f), "0.5");
    cr_assert_str_eq(fmt(0.1f), "0.100000001");
    cr_assert_str_eq(fmt(-0.0123456789f), "-0.0123456791");
    cr_assert_str_eq(fmt(16777216.0f), "16777216");
    cr_assert_str_eq(fmt(1e9f), "1e9");
    cr_assert_str_eq(fmt(1e-7f), "1.00000001e-7");
    cr_assert_str_eq(fmt(FLT_MAX), "3.40282347e38");
    cr_assert_str_eq(fmt(1e-45f), "1.40129846e-45", "smallest denormal");
    cr_assert_str_eq(fmt(FLT_MIN), "1.17549435e-38");
    cr_assert_str_eq(fmt(NAN), "0", "JSON has no NaN");
    cr_assert_str_eq(fmt(INFINITY), "0");
    cr_assert_str_eq(fmt(-INFINITY), "0");
}

/* RFC 8259 number grammar: -? int frac? exp? */
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

/* Every 61st bit pattern (about 70 million floats, all exponents): exact round
 * trip through strtof, valid JSON, bounded length. */
Test(numfmt, round_trip_across_all_exponents)
{
    char out[NUMFMT_F32_MAX];
    uint64_t checked = 0;
    for (uint64_t u = 0; u < 0x100000000ULL; u += 61) {
        uint32_t bits = (uint32_t)u;
        float f;
        memcpy(&f, &bits, sizeof(f));
        if (!isfinite(f))
            continue;
        size_t n = numfmt_f32(out, f);
        cr_assert(n < NUMFMT_F32_MAX, "too long: %s", out);
        float back = strtof(out, NULL);
        uint32_t bb;
        memcpy(&bb, &back, sizeof(bb));
        cr_assert_eq(bb, bits, "0x%08x formatted as %s reads back as 0x%08x", bits, out, bb);
        if ((checked & 1023) == 0)
            cr_assert(json_number(out), "not a JSON number: %s", out);
        checked++;
    }
    cr_assert_gt(checked, 60000000);
}

Test(numfmt, shortest_integer_and_decimal_forms)
{
    /* trailing zeros are trimmed; no exponent inside the plain range */
    cr_assert_str_eq(fmt(0.25f), "0.25");
    cr_assert_str_eq(fmt(0.00001f), "9.99999975e-6");
    cr_assert_str_eq(fmt(0.0001f), "0.0000999999975");
    cr_assert_str_eq(fmt(123456789.0f), "123456792");
    cr_assert(strchr(fmt(1e-4f), 'e') == NULL);
}
