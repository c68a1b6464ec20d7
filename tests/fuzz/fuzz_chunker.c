/* fuzz_chunker.c: libFuzzer target for the chunker (service/chunker.h): options from the first
 * three bytes, the rest is the text; every promise of chunker.h is checked on the result. */
#include "chunker/chunker.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_chunker: check failed: %s (line %d)\n", #cond, __LINE__);        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool is_alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_cont(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

/* Reference UTF-8 validation, written independently of chunker.c: decode, then
 * reject overlongs, surrogates and values past U+10FFFF. */
static bool ref_utf8_valid(const unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len;) {
        unsigned char c = p[i];
        size_t n;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 2, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            n = 3, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            n = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (len - i < n)
            return false;
        for (size_t k = 1; k < n; k++) {
            if (!is_cont(p[i + k]))
                return false;
            cp = cp << 6 | (p[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n;
    }
    return true;
}

/* The estimate rule as chunker.h words it, for valid UTF-8. */
static int64_t ref_tokens(const unsigned char *p, size_t len)
{
    int64_t t = 0;
    for (size_t i = 0; i < len;) {
        size_t run = 0;
        while (i + run < len && is_alnum(p[i + run]))
            run++;
        if (run) {
            t += (int64_t)((run + 2) / 3);
            i += run;
        } else if (p[i] < 0x80) {
            t += !is_space(p[i]);
            i++;
        } else {
            size_t n = p[i] >= 0xF0 ? 4 : p[i] >= 0xE0 ? 3 : 2;
            t += (int64_t)n - 1;
            i += n;
        }
    }
    return t == 0 && len > 0 ? 1 : t;
}

static bool all_space(const unsigned char *p, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        if (!is_space(p[i]))
            return false;
    return true;
}

/* Invalid options are refused and leave nothing allocated. */
static void check_bad_opts(const char *text, size_t len)
{
    static const struct chunk_opts bad[] = {{0, 0, 100}, {10, 10, 100}, {10, 11, 100}, {10, 2, 3}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct chunk *c = (struct chunk *)1;
        size_t n = 7;
        CHECK(!chunker_split(text, len, &bad[i], &c, &n));
        CHECK(c == NULL && n == 0);
    }
}

/* Invalid UTF-8 carries no promise but memory safety and sane offsets. */
static void check_loose(size_t len, const struct chunk *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        CHECK(c[i].byte_start < c[i].byte_end && c[i].byte_end <= len);
        CHECK(c[i].char_start <= c[i].char_end);
        if (i)
            CHECK(c[i].byte_start > c[i - 1].byte_start && c[i].byte_end > c[i - 1].byte_end);
    }
}

static void check_chunk(const unsigned char *p, size_t len, const size_t *chars,
                        const struct chunk_opts *o, const struct chunk *c)
{
    CHECK(c->byte_start < c->byte_end && c->byte_end <= len);
    /* on code point boundaries, with code point offsets that match the bytes */
    CHECK(!is_cont(p[c->byte_start]));
    CHECK(c->byte_end == len || !is_cont(p[c->byte_end]));
    CHECK(c->char_start == chars[c->byte_start] && c->char_end == chars[c->byte_end]);
    /* whitespace is left out at both ends */
    CHECK(!is_space(p[c->byte_start]) && !is_space(p[c->byte_end - 1]));
    /* limits */
    CHECK(c->char_end - c->char_start <= o->max_chars);
    CHECK(c->tokens ==
          chunker_token_estimate((const char *)p + c->byte_start, c->byte_end - c->byte_start));
    CHECK(c->tokens >= 1 && c->tokens <= o->max_tokens);
}

static void check_strict(const unsigned char *p, size_t len, const struct chunk_opts *o,
                         const struct chunk *c, size_t n)
{
    /* chars[i]: code points before byte i (at boundaries) */
    size_t *chars = malloc((len + 1) * sizeof(*chars));
    CHECK(chars != NULL);
    size_t k = 0;
    for (size_t i = 0; i <= len; i++) {
        chars[i] = k;
        if (i < len && !is_cont(p[i]))
            k++;
    }
    CHECK(utf8_count((const char *)p, len) == chars[len]);
    CHECK((n == 0) == all_space(p, 0, len));
    CHECK((n == 0) == (c == NULL));
    size_t covered = 0; /* every byte before this is in a chunk or whitespace */
    for (size_t i = 0; i < n; i++) {
        check_chunk(p, len, chars, o, &c[i]);
        if (i) {
            const struct chunk *prev = &c[i - 1];
            CHECK(c[i].byte_start > prev->byte_start && c[i].byte_end > prev->byte_end);
            if (c[i].byte_start < prev->byte_end) {
                /* an overlap: at most overlap_chars and at most half the previous chunk */
                size_t ov = prev->char_end - c[i].char_start;
                CHECK(o->overlap_chars > 0);
                CHECK(ov <= o->overlap_chars);
                CHECK(ov * 2 <= prev->char_end - prev->char_start);
            }
        }
        if (c[i].byte_start > covered)
            CHECK(all_space(p, covered, c[i].byte_start));
        covered = c[i].byte_end;
    }
    CHECK(all_space(p, covered, len));
    free(chars);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    /* byte 0: max_chars, small (1..128) or large (1..4065); byte 1: overlap below it;
     * byte 2: max_tokens, tight (4..243) or the default */
    struct chunk_opts o;
    o.max_chars = data[0] & 0x80 ? 1 + (size_t)(data[0] & 0x7F) * 32 : 1 + (size_t)data[0];
    o.overlap_chars = data[1] % o.max_chars;
    o.max_tokens = data[2] >= 0xF0 ? CHUNK_DEFAULT_MAX_TOKENS : 4 + (int64_t)data[2];
    const char *text = (const char *)data + 3;
    size_t len = size - 3;
    const unsigned char *p = data + 3;

    bool valid = utf8_valid(text, len);
    CHECK(valid == ref_utf8_valid(p, len));
    if (valid)
        CHECK(chunker_token_estimate(text, len) == ref_tokens(p, len));
    check_bad_opts(text, len);

    struct chunk *c = NULL;
    size_t n = 0;
    CHECK(chunker_split(text, len, &o, &c, &n));
    if (valid)
        check_strict(p, len, &o, c, n);
    else
        check_loose(len, c, n);
    free(c);
    return 0;
}
