/* test_chunker.c: chunk limits, boundaries, offsets and coverage, multilingual and pathological
 * text. */
#include "chunker.h"

#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static bool ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* The simulator's token count, which the estimate must never undercut. */
static int64_t sim_count(const char *s, size_t n)
{
    int64_t t = 0;
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
            size_t run = 0;
            while (i < n && (((unsigned char)s[i] >= '0' && (unsigned char)s[i] <= '9') ||
                             ((unsigned char)s[i] >= 'a' && (unsigned char)s[i] <= 'z') ||
                             ((unsigned char)s[i] >= 'A' && (unsigned char)s[i] <= 'Z'))) {
                run++;
                i++;
            }
            t += (int64_t)((run + 3) / 4);
        } else {
            if (c >= 0x80 ? (c & 0xC0) != 0x80 : !ws(c))
                t++;
            i++;
        }
    }
    return t == 0 && n ? 1 : t;
}

/* Check every property of a split; returns the chunk count. */
static size_t check(const char *text, size_t len, size_t max_chars, size_t overlap,
                    int64_t max_tokens)
{
    struct chunk_opts o = {max_chars, overlap, max_tokens};
    struct chunk *c = NULL;
    size_t n = 0;
    cr_assert(chunker_split(text, len, &o, &c, &n));
    unsigned char *covered = calloc(len + 1, 1);
    for (size_t i = 0; i < n; i++) {
        const struct chunk *k = &c[i];
        cr_assert_lt(k->byte_start, k->byte_end, "chunk %zu is empty", i);
        cr_assert_leq(k->byte_end, len);
        cr_assert(((unsigned char)text[k->byte_start] & 0xC0) != 0x80, "start inside UTF-8");
        cr_assert(k->byte_end == len || ((unsigned char)text[k->byte_end] & 0xC0) != 0x80,
                  "end inside UTF-8");
        cr_assert_eq(k->char_start, utf8_count(text, k->byte_start));
        cr_assert_eq(k->char_end, utf8_count(text, k->byte_end));
        cr_assert_leq(k->char_end - k->char_start, max_chars, "chunk %zu too long", i);
        cr_assert_eq(k->tokens,
                     chunker_token_estimate(text + k->byte_start, k->byte_end - k->byte_start));
        cr_assert_leq(k->tokens, max_tokens);
        cr_assert_geq(k->tokens, sim_count(text + k->byte_start, k->byte_end - k->byte_start));
        cr_assert(!ws((unsigned char)text[k->byte_start]) &&
                      !ws((unsigned char)text[k->byte_end - 1]),
                  "chunk %zu has edge whitespace", i);
        if (i > 0) {
            cr_assert_gt(k->byte_start, c[i - 1].byte_start, "starts increase");
            if (k->char_start < c[i - 1].char_end)
                cr_assert_leq(c[i - 1].char_end - k->char_start, overlap, "overlap too big");
        }
        memset(covered + k->byte_start, 1, k->byte_end - k->byte_start);
    }
    for (size_t i = 0; i < len; i++)
        cr_assert(covered[i] || ws((unsigned char)text[i]), "byte %zu not covered", i);
    free(covered);
    free(c);
    return n;
}

Test(chunker, empty_and_whitespace)
{
    struct chunk_opts o = {100, 10, 2048};
    struct chunk *c = (struct chunk *)1;
    size_t n = 9;
    cr_assert(chunker_split("", 0, &o, &c, &n));
    cr_assert_eq(n, 0);
    cr_assert_null(c);
    cr_assert(chunker_split(" \n\t\r\n ", 6, &o, &c, &n));
    cr_assert_eq(n, 0);
    cr_assert_null(c);
    cr_assert_eq(check("x", 1, 100, 10, 2048), 1);
}

Test(chunker, invalid_options)
{
    struct chunk *c = (struct chunk *)1;
    size_t n;
    struct chunk_opts bad[] = {{0, 0, 2048}, {10, 10, 2048}, {10, 0, 3}};
    for (size_t i = 0; i < 3; i++) {
        cr_assert_not(chunker_split("abc", 3, &bad[i], &c, &n));
        cr_assert_null(c);
    }
}

Test(chunker, prefers_paragraphs_then_sentences_then_words)
{
    const char *t = "First paragraph is here.\n\nSecond paragraph is a bit longer than that.";
    struct chunk_opts o = {50, 0, 2048};
    struct chunk *c;
    size_t n;
    cr_assert(chunker_split(t, strlen(t), &o, &c, &n));
    cr_assert_eq(n, 2);
    cr_assert_eq(c[0].byte_end, strlen("First paragraph is here."), "split at the blank line");
    free(c);
    const char *s = "One sentence here. Another sentence follows it. And a third one ends.";
    o.max_chars = 40;
    cr_assert(chunker_split(s, strlen(s), &o, &c, &n));
    cr_assert_eq(c[0].byte_end, strlen("One sentence here."), "split after a sentence");
    free(c);
    const char *w = "alpha beta gamma delta epsilon zeta eta theta iota kappa";
    o.max_chars = 20;
    cr_assert(chunker_split(w, strlen(w), &o, &c, &n));
    for (size_t i = 0; i < n; i++)
        cr_assert(c[i].byte_end == strlen(w) || w[c[i].byte_end] == ' ', "split at a space");
    free(c);
    check(t, strlen(t), 50, 0, 2048);
    check(s, strlen(s), 40, 10, 2048);
    check(w, strlen(w), 20, 5, 2048);
}

Test(chunker, hard_cut_without_spaces)
{
    char *a = malloc(10001);
    memset(a, 'a', 10000);
    a[10000] = '\0';
    cr_assert_eq(check(a, 10000, 1000, 0, 2048), 10);
    check(a, 10000, 1000, 100, 2048);
    check(a, 10000, 1000, 999, 2048);
    check(a, 10000, 1, 0, 2048);
    free(a);
}

Test(chunker, token_budget_binds_for_cjk)
{
    /* 3-byte characters count 2 tokens: 1500 of them exceed 2048 tokens */
    char *t = malloc(1500 * 3 + 1);
    for (int i = 0; i < 1500; i++)
        memcpy(t + 3 * i, "\xe6\x97\xa5", 3);
    t[4500] = '\0';
    size_t n = check(t, 4500, 2000, 0, 2048);
    cr_assert_eq(n, 2, "1024 characters per chunk at most");
    free(t);
}

Test(chunker, multilingual)
{
    static const char *const texts[] = {
        "Le café est très bon. Les élèves étudient à la bibliothèque.\n\nÇa va?",
        "Die Straße ist groß. Übermorgen fahren wir nach München.",
        "日本語の文章です。これは二番目の文です。三番目の文もあります！",
        "这是中文文本。我们测试分块算法。最后一句？",
        "هذا نص عربي. نحن نختبر التقسيم.",
        "यह हिंदी पाठ है। हम विभाजन का परीक्षण करते हैं।",
        "Emoji 👩‍👩‍👧‍👦 family and flags 🇫🇷🇩🇪 and more 😀😀😀 "
        "text.",
        "Mixed: English, русский текст, ελληνικά, 한국어 문장입니다.",
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        cr_assert(utf8_valid(texts[i], strlen(texts[i])));
        for (size_t m = 5; m <= 40; m += 7)
            check(texts[i], strlen(texts[i]), m, m / 3, 2048);
        check(texts[i], strlen(texts[i]), 200, 20, 8);
    }
}

Test(chunker, crlf_newlines_and_nul)
{
    const char *t = "line one\r\nline two\r\n\r\nnew paragraph\r\n\r\n\r\n\r\nlast";
    check(t, strlen(t), 15, 3, 2048);
    const char nul[] = "before\0after the nul byte and more words";
    check(nul, sizeof(nul) - 1, 10, 2, 2048);
    char *nl = malloc(5002);
    memset(nl, '\n', 5000);
    memcpy(nl + 5000, "ab", 2);
    cr_assert_eq(check(nl, 5002, 10, 2, 2048), 1);
    free(nl);
}

Test(chunker, random_documents)
{
    static const char *const words[] = {"a",
                                        "tree",
                                        "under",
                                        "x1",
                                        "Zürich",
                                        "naïve",
                                        "日本",
                                        "😀",
                                        "end.",
                                        "why?",
                                        "wow!",
                                        "\n\n",
                                        "\n",
                                        "\t",
                                        "—",
                                        "interoperability",
                                        "https://example.com/a/b?c=d"};
    uint64_t s = 42;
    char *buf = malloc(20000);
    for (int doc = 0; doc < 300; doc++) {
        size_t len = 0;
        int nw = (int)(s % 800) + 1;
        for (int i = 0; i < nw; i++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            const char *w = words[(s >> 33) % (sizeof(words) / sizeof(words[0]))];
            size_t l = strlen(w);
            if (len + l + 2 >= 20000)
                break;
            memcpy(buf + len, w, l);
            len += l;
            if ((s >> 20) % 3)
                buf[len++] = ' ';
        }
        size_t max = 10 + (size_t)(s >> 40) % 300;
        check(buf, len, max, ((s >> 50) % 2) ? max / 4 : 0, 16 + (int64_t)((s >> 30) % 200));
    }
    free(buf);
}

Test(chunker, token_estimate_rule)
{
    cr_assert_eq(chunker_token_estimate("", 0), 0);
    cr_assert_eq(chunker_token_estimate(" ", 1), 1);
    cr_assert_eq(chunker_token_estimate("abc", 3), 1);
    cr_assert_eq(chunker_token_estimate("abcd", 4), 2);
    cr_assert_eq(chunker_token_estimate("a, b!", 5), 4);
    cr_assert_eq(chunker_token_estimate("é", 2), 1);
    cr_assert_eq(chunker_token_estimate("日", 3), 2);
    cr_assert_eq(chunker_token_estimate("😀", 4), 3);
}

Test(chunker, utf8_validation)
{
    cr_assert(utf8_valid("a\0b", 3));
    cr_assert(utf8_valid("\xf4\x8f\xbf\xbf", 4), "U+10FFFF");
    static const char *const bad[] = {"\xc0\x80",     "\xe0\x80\x80",     "\xf0\x80\x80\x80",
                                      "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe6\x97",
                                      "\x80",         "\xf5\x80\x80\x80", "\xff"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_not(utf8_valid(bad[i], strlen(bad[i])), "accepted case %zu", i);
    cr_assert_eq(utf8_count("日本a", 7), 3);
}

Test(chunker, ten_megabytes_is_fast, .timeout = 60)
{
    size_t len = 10 * 1024 * 1024;
    char *t = malloc(len);
    const char *sent = "This is a sentence of English prose that goes on a bit. ";
    size_t sl = strlen(sent);
    for (size_t i = 0; i < len; i++)
        t[i] = sent[i % sl];
    struct chunk_opts o = {2000, 200, 2048};
    struct chunk *c;
    size_t n;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    cr_assert(chunker_split(t, len, &o, &c, &n));
    clock_gettime(CLOCK_MONOTONIC, &b);
    double prose = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    cr_assert_gt(n, 5000);
    free(c);
    memset(t, 'q', len);
    clock_gettime(CLOCK_MONOTONIC, &a);
    cr_assert(chunker_split(t, len, &o, &c, &n));
    clock_gettime(CLOCK_MONOTONIC, &b);
    double nows = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    cr_assert_gt(n, 5000);
    free(c);
    free(t);
    cr_log_info("10 MiB: prose %.3f s, no whitespace %.3f s", prose, nows);
}
