/* numfmt.c: fast float32 -> JSON number formatting, shortest digits, exact round trip. */
/*
 * Output format
 *   - The shortest decimal (at most 9 significant digits) that strtof reads
 *     back as the identical float; among equally short candidates the
 *     nearest, ties to even. Exact for every finite float32 (checked
 *     exhaustively against strtof, see tests/unit/test_numfmt.c).
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
 * Method (integer arithmetic only; the idea of Giulietti's "Schubfach",
 * written here for float32 from the description, not from its code)
 *   v = c * 2^q with c the 24-bit significand. The reals that strtof rounds
 *   to v form the interval R = [v - 2^q/2, v + 2^q/2] (lower half a quarter
 *   ulp when c is a power of two above the smallest normal), closed when c
 *   is even and open when odd, because strtof breaks ties to even.
 *   Pick k = floor(log10(|R|)) (|R| the width), so R holds at least one and
 *   fewer than ten integer multiples of 10^k. Scaled by 4 * 10^-k, v and the
 *   two ends of R become vb, vbl, vbr; each is computed as
 *   floor(x) | (x is not an integer) ("round to odd") from one 64x64-bit
 *   multiply by 10^-k rounded up to 64 bits, which keeps every comparison
 *   with a multiple of 4 exact (verified for all floats).
 *   R holds at most one multiple of 10 * 10^k; when it holds exactly one,
 *   that is the unique shortest candidate. Otherwise every candidate has the
 *   same length and the nearest is floor or ceil of v * 10^-k, whichever
 *   lies in R (the nearer one, ties to even, when both do).
 */
#include "util/numfmt.h"

#include <stdint.h>
#include <string.h>

__extension__ typedef unsigned __int128 numfmt_u128;

/* Inlined even at -O3, where gcc otherwise keeps shortest() a call (~8%);
 * at -O2 it kept digits8() a call in the array writer (~3%). */
#define NUMFMT_INLINE inline __attribute__((always_inline))

/* For k = NUMFMT_K_MIN .., 10^-k as g * 2^(h - 33 - 63) with g in
 * (2^63, 2^64] rounded up (floor + 1) and h the shift that puts the binary
 * point of the scaled value 32 bits above the bottom of the high product
 * word: h = q + hoff. Generated with exact rational arithmetic. */
struct numfmt_pow10 {
    uint64_t g;
    int hoff;
};

#define NUMFMT_K_MIN (-45)
static const struct numfmt_pow10 pow10_tbl[] = {
    {0xb35dbf821ae4f38cu, 182}, /* 10^45 */
    {0x8f7e32ce7bea5c70u, 179}, /* 10^44 */
    {0xe596b7b0c643c71au, 175}, /* 10^43 */
    {0xb7abc627050305aeu, 172}, /* 10^42 */
    {0x92efd1b8d0cf37bfu, 169}, /* 10^41 */
    {0xeb194f8e1ae525feu, 165}, /* 10^40 */
    {0xbc143fa4e250eb32u, 162}, /* 10^39 */
    {0x96769950b50d88f5u, 159}, /* 10^38 */
    {0xf0bdc21abb48db21u, 155}, /* 10^37 */
    {0xc097ce7bc90715b4u, 152}, /* 10^36 */
    {0x9a130b963a6c115du, 149}, /* 10^35 */
    {0xf684df56c3e01bc7u, 145}, /* 10^34 */
    {0xc5371912364ce306u, 142}, /* 10^33 */
    {0x9dc5ada82b70b59eu, 139}, /* 10^32 */
    {0xfc6f7c4045812297u, 135}, /* 10^31 */
    {0xc9f2c9cd04674edfu, 132}, /* 10^30 */
    {0xa18f07d736b90be6u, 129}, /* 10^29 */
    {0x813f3978f8940985u, 126}, /* 10^28 */
    {0xcecb8f27f4200f3bu, 122}, /* 10^27 */
    {0xa56fa5b99019a5c9u, 119}, /* 10^26 */
    {0x84595161401484a1u, 116}, /* 10^25 */
    {0xd3c21bcecceda101u, 112}, /* 10^24 */
    {0xa968163f0a57b401u, 109}, /* 10^23 */
    {0x878678326eac9001u, 106}, /* 10^22 */
    {0xd8d726b7177a8001u, 102}, /* 10^21 */
    {0xad78ebc5ac620001u, 99},  /* 10^20 */
    {0x8ac7230489e80001u, 96},  /* 10^19 */
    {0xde0b6b3a76400001u, 92},  /* 10^18 */
    {0xb1a2bc2ec5000001u, 89},  /* 10^17 */
    {0x8e1bc9bf04000001u, 86},  /* 10^16 */
    {0xe35fa931a0000001u, 82},  /* 10^15 */
    {0xb5e620f480000001u, 79},  /* 10^14 */
    {0x9184e72a00000001u, 76},  /* 10^13 */
    {0xe8d4a51000000001u, 72},  /* 10^12 */
    {0xba43b74000000001u, 69},  /* 10^11 */
    {0x9502f90000000001u, 66},  /* 10^10 */
    {0xee6b280000000001u, 62},  /* 10^9 */
    {0xbebc200000000001u, 59},  /* 10^8 */
    {0x9896800000000001u, 56},  /* 10^7 */
    {0xf424000000000001u, 52},  /* 10^6 */
    {0xc350000000000001u, 49},  /* 10^5 */
    {0x9c40000000000001u, 46},  /* 10^4 */
    {0xfa00000000000001u, 42},  /* 10^3 */
    {0xc800000000000001u, 39},  /* 10^2 */
    {0xa000000000000001u, 36},  /* 10^1 */
    {0x8000000000000001u, 33},  /* 10^0 */
    {0xcccccccccccccccdu, 29},  /* 10^-1 */
    {0xa3d70a3d70a3d70bu, 26},  /* 10^-2 */
    {0x83126e978d4fdf3cu, 23},  /* 10^-3 */
    {0xd1b71758e219652cu, 19},  /* 10^-4 */
    {0xa7c5ac471b478424u, 16},  /* 10^-5 */
    {0x8637bd05af6c69b6u, 13},  /* 10^-6 */
    {0xd6bf94d5e57a42bdu, 9},   /* 10^-7 */
    {0xabcc77118461cefdu, 6},   /* 10^-8 */
    {0x89705f4136b4a598u, 3},   /* 10^-9 */
    {0xdbe6fecebdedd5bfu, -1},  /* 10^-10 */
    {0xafebff0bcb24aaffu, -4},  /* 10^-11 */
    {0x8cbccc096f5088ccu, -7},  /* 10^-12 */
    {0xe12e13424bb40e14u, -11}, /* 10^-13 */
    {0xb424dc35095cd810u, -14}, /* 10^-14 */
    {0x901d7cf73ab0acdau, -17}, /* 10^-15 */
    {0xe69594bec44de15cu, -21}, /* 10^-16 */
    {0xb877aa3236a4b44au, -24}, /* 10^-17 */
    {0x9392ee8e921d5d08u, -27}, /* 10^-18 */
    {0xec1e4a7db69561a6u, -31}, /* 10^-19 */
    {0xbce5086492111aebu, -34}, /* 10^-20 */
    {0x971da05074da7befu, -37}, /* 10^-21 */
    {0xf1c90080baf72cb2u, -41}, /* 10^-22 */
    {0xc16d9a0095928a28u, -44}, /* 10^-23 */
    {0x9abe14cd44753b53u, -47}, /* 10^-24 */
    {0xf79687aed3eec552u, -51}, /* 10^-25 */
    {0xc612062576589ddbu, -54}, /* 10^-26 */
    {0x9e74d1b791e07e49u, -57}, /* 10^-27 */
    {0xfd87b5f28300ca0eu, -61}, /* 10^-28 */
    {0xcad2f7f5359a3b3fu, -64}, /* 10^-29 */
    {0xa2425ff75e14fc32u, -67}, /* 10^-30 */
    {0x81ceb32c4b43fcf5u, -70}, /* 10^-31 */
};

static const uint32_t pow10_u32[10] = {
    1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000,
};

/* floor(x * 2^-18) for -2^27 < x < 2^27, without right-shifting a negative. */
static int floor_shift18(int x)
{
    return (int)((unsigned)(x + (1 << 28)) >> 18) - (1 << 10);
}

/* y * 10^-k * 2^q (y a scaled significand, h = q + hoff), rounded to odd:
 * the integer part, with bit 0 set when the fraction is not zero. */
static NUMFMT_INLINE uint32_t round_odd(uint64_t g, uint64_t y, int h)
{
    uint64_t hi = (uint64_t)(((numfmt_u128)g * (y << h)) >> 64);
    return (uint32_t)(hi >> 32) | (uint32_t)((hi & 0xffffffffu) != 0);
}

/*
 * The eight decimal digits of x < 10^8 as one word holding a digit value
 * (0..9, not ASCII) per byte, the first digit in the lowest byte, so that
 * storing it little endian writes the digits in order. Splits x in lanes:
 * two of 32 bits (/ 10^4), four of 16 (/ 100), eight of 8 (/ 10), each
 * division a multiply and shift that is exact for the lane's range.
 */
static NUMFMT_INLINE uint64_t digits8(uint32_t x)
{
    uint64_t v = x / 10000 | (uint64_t)(x % 10000) << 32;
    uint64_t hi = ((v * 10486) >> 20) & 0x0000007f0000007fu; /* / 100 */
    v = (v - hi * 100) << 16 | hi;
    hi = ((v * 103) >> 10) & 0x000f000f000f000fu; /* / 10 */
    return (v - hi * 10) << 8 | hi;
}

/* Store w's bytes in memory order first byte = lowest byte. */
static NUMFMT_INLINE void store8(char *p, uint64_t w)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    memcpy(p, &w, sizeof(w));
}

/*
 * The shortest nearest decimal of c * 2^q (c > 0, the significand, and q
 * its exponent as above, irregular when the gap below is half as wide):
 * returns the digits m and sets *k so that the decimal is m * 10^*k.
 */
static NUMFMT_INLINE uint32_t shortest(uint32_t c, int q, int irregular, int *k10)
{
    uint32_t out = c & 1; /* an odd significand: R is open */
    uint64_t cb = (uint64_t)c << 2;
    uint64_t cbr = cb + 2;
    uint64_t cbl = irregular ? cb - 1 : cb - 2;
    int k = floor_shift18(q * 78913 - (irregular ? 32752 : 0));
    const struct numfmt_pow10 *p = &pow10_tbl[k - NUMFMT_K_MIN];
    int h = q + p->hoff;
    uint32_t vb = round_odd(p->g, cb, h);
    uint32_t vbl = round_odd(p->g, cbl, h);
    uint32_t vbr = round_odd(p->g, cbr, h);
    uint32_t s = vb >> 2;

    uint32_t sp10 = s / 10 * 10, tp10 = sp10 + 10;
    int upin = vbl + out <= sp10 << 2;
    int wpin = (tp10 << 2) + out <= vbr;
    *k10 = k;
    /* Whether to take the one candidate at 10 * 10^k, else floor or ceil:
     * selected without branches, since which way it goes is a coin toss
     * for typical data. Both floor and ceil out of R cannot happen, and
     * both multiples of 10 in R neither (|R| < 10 units). */
    uint32_t t = s + 1;
    int uin = vbl + out <= s << 2;
    int win = (t << 2) + out <= vbr;
    int32_t cmp = (int32_t)(vb - ((s + t) << 1)); /* v against s + 1/2 */
    int take_t = win & (!uin | (cmp > 0) | ((cmp == 0) & (int)(s & 1)));
    uint32_t m = s + (uint32_t)take_t;
    uint32_t m10 = wpin ? tp10 : sp10;
    return upin != wpin ? m10 : m;
}

/* numfmt_f32 itself, inlined into both entry points. */
static NUMFMT_INLINE size_t format_f32(char *out, float v)
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
    *p = '-'; /* kept only when negative: the sign is unpredictable */
    p += bits >> 31;
    if (bexp == 0 && frac == 0) {
        memcpy(p, "0", 2);
        return (size_t)(p - out) + 1;
    }

    int k;
    uint32_t sig = bexp ? frac | 0x800000 : frac; /* a denormal has bexp 1's scale */
    int q = bexp ? (int)bexp - 150 : -149;
    uint32_t m = shortest(sig, q, frac == 0 && bexp > 1, &k);

    /* m has n digits (1 <= m < 10^9); pad it to nine, c in [10^8, 10^9),
     * and let e be the decimal exponent of its first digit. */
    int n;
    uint32_t c;
    if (m >= 1000000) {
        /* The usual case, 7 to 9 digits (m has the precision of R's width:
         * c * 2^q / 10^k with c >= 2^23 for a normal float), counted with
         * two independent compares instead of the chain of a bit scan, a
         * multiply and a table load (about 3% of the array writer's time,
         * all 2^32 floats checked to format as before). */
        int ge8 = m >= 10000000, ge9 = m >= 100000000;
        n = 7 + ge8 + ge9;
        c = m * (ge9 ? 1u : ge8 ? 10u : 100u);
    } else {
        int t = ((32 - __builtin_clz(m)) * 1233) >> 12;
        n = t + (m >= pow10_u32[t]);
        c = m * pow10_u32[9 - n];
    }
    int e = k + n - 1;

    /* The first digit, the other eight in a word (w's zero high bytes are
     * c's trailing zeros), and n, the digits left once those are dropped. */
    char first = (char)('0' + c / 100000000);
    uint64_t w = digits8(c % 100000000);
    n = w ? 9 - __builtin_clzll(w) / 8 : 1;
    w += 0x3030303030303030u; /* ASCII */

    /* Fixed-size stores, which may scribble past the final NUL but stay
     * within the NUMFMT_F32_MAX bytes the caller provides: p is at most
     * out + 1 and the last byte written is at most p + 15. */
    if (e >= -5 && e < 9) {
        if (e < 0) { /* "0." then -e-1 zeros then the digits */
            memcpy(p, "0.000000", 8);
            p[1 - e] = first;
            store8(p + 2 - e, w);
            p += 1 - e + n;
        } else if (n <= e + 1) { /* an integer: digits padded with zeros */
            p[0] = first;
            store8(p + 1, w);
            p += e + 1;
        } else { /* e <= 7: the point goes after digit e + 1 */
            p[0] = first;
            store8(p + 1, w);
            p[e + 1] = '.';
            store8(p + e + 2, w >> (8 * e));
            p += n + 1;
        }
    } else {
        p[0] = first;
        p[1] = '.';
        store8(p + 2, w);
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

size_t numfmt_f32(char *out, float v)
{
    return format_f32(out, v);
}

size_t numfmt_f32le_array(char *out, const unsigned char *le, size_t n)
{
    char *p = out;
    *p++ = '[';
    for (size_t i = 0; i < n; i++) {
        const unsigned char *b = le + 4 * i;
        uint32_t u =
            (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
        float v;
        memcpy(&v, &u, sizeof(v));
        if (i)
            *p++ = ',';
        p += format_f32(p, v);
    }
    *p++ = ']';
    *p = '\0';
    return (size_t)(p - out);
}
