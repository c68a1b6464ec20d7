/* test_chunker.c: chunk limits, offsets, coverage and boundaries; token estimate; UTF-8. */
#include "chunker/chunker.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static bool ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* The simulator's count, which the estimate must never undercut: ASCII
 * letter/digit runs ceil(len / 4), other non-space ASCII 1, each non-ASCII
 * code point 1, at least 1 for a non-empty text. */
static int64_t sim_tokens(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    int64_t t = 0;
    for (size_t i = 0; i < n;) {
        size_t run = 0;
        while (i + run < n && alnum(p[i + run]))
            run++;
        if (run) {
            t += (int64_t)((run + 3) / 4);
            i += run;
            continue;
        }
        if (p[i] >= 0xC0 || (p[i] < 0x80 && !ws(p[i])))
            t++;
        i++;
    }
    return t == 0 && n ? 1 : t;
}

/* The rule documented in chunker.h, written independently of chunker.c. */
static int64_t rule_tokens(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    int64_t t = 0;
    size_t run = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && alnum(p[i])) {
            run++;
            continue;
        }
        t += (int64_t)((run + 2) / 3);
        run = 0;
        if (i == n)
            break;
        if (p[i] >= 0xF0)
            t += 3;
        else if (p[i] >= 0xE0)
            t += 2;
        else if (p[i] >= 0xC0)
            t += 1;
        else if (p[i] < 0x80 && !ws(p[i]))
            t += 1;
    }
    return t == 0 && n ? 1 : t;
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static size_t rng_below(uint64_t *s, size_t n)
{
    return (size_t)(rng_next(s) % n);
}

/* Check every property of a split of t: limits, offsets, order, overlap,
 * coverage, trimming. Linear in the text, so it also suits 10 MB inputs. */
static void check_chunks(const char *t, size_t len, const struct chunk_opts *o,
                         const struct chunk *c, size_t n)
{
    const unsigned char *p = (const unsigned char *)t;
    size_t cur_b = 0, cur_c = 0, covered = 0;
    for (size_t i = 0; i < n; i++) {
        const struct chunk *k = &c[i];
        size_t bs = k->byte_start, be = k->byte_end;
        cr_assert_lt(bs, be, "chunk %zu is empty", i);
        cr_assert_leq(be, len, "chunk %zu ends past the text", i);
        cr_assert((p[bs] & 0xC0) != 0x80, "chunk %zu starts inside a UTF-8 sequence", i);
        cr_assert(be == len || (p[be] & 0xC0) != 0x80, "chunk %zu ends inside a sequence", i);
        cr_assert(utf8_valid(t + bs, be - bs), "chunk %zu is not valid UTF-8", i);
        cr_assert(!ws(p[bs]) && !ws(p[be - 1]), "chunk %zu has whitespace at an edge", i);
        /* char offsets: utf8_count of the prefix, counted from the last offset */
        cur_c = bs >= cur_b ? cur_c + utf8_count(t + cur_b, bs - cur_b)
                            : cur_c - utf8_count(t + bs, cur_b - bs);
        cur_b = bs;
        cr_assert_eq(k->char_start, cur_c, "chunk %zu char_start", i);
        cur_c += utf8_count(t + bs, be - bs);
        cur_b = be;
        cr_assert_eq(k->char_end, cur_c, "chunk %zu char_end", i);
        cr_assert_leq(k->char_end - k->char_start, o->max_chars, "chunk %zu too long", i);
        cr_assert_eq(k->tokens, chunker_token_estimate(t + bs, be - bs), "chunk %zu tokens", i);
        cr_assert_leq(k->tokens, o->max_tokens,
                      "chunk %zu over the token budget: %lld > %lld (max_chars %zu, overlap %zu, "
                      "bytes %zu..%zu)",
                      i, (long long)k->tokens, (long long)o->max_tokens, o->max_chars,
                      o->overlap_chars, bs, be);
        cr_assert_geq(k->tokens, sim_tokens(t + bs, be - bs), "chunk %zu underestimated", i);
        if (i > 0) {
            cr_assert_gt(bs, c[i - 1].byte_start, "chunk %zu starts do not increase", i);
            cr_assert_gt(be, c[i - 1].byte_end, "chunk %zu adds no text", i);
            if (k->char_start < c[i - 1].char_end)
                cr_assert_leq(c[i - 1].char_end - k->char_start, o->overlap_chars,
                              "chunk %zu overlaps too much", i);
        }
        for (size_t b = covered; b < bs; b++)
            cr_assert(ws(p[b]), "byte %zu (non-space) is in no chunk", b);
        covered = be > covered ? be : covered;
    }
    for (size_t b = covered; b < len; b++)
        cr_assert(ws(p[b]), "byte %zu (non-space) is in no chunk", b);
}

/* Split t, check the result, and return it (the caller frees it). */
static struct chunk *split_checked(const char *t, size_t len, size_t max_chars, size_t overlap,
                                   int64_t max_tokens, size_t *n)
{
    struct chunk_opts o = {max_chars, overlap, max_tokens};
    struct chunk dummy;
    struct chunk *c = &dummy;
    *n = 99;
    cr_assert(chunker_split(t, len, &o, &c, n), "split failed (max_chars %zu, overlap %zu)",
              max_chars, overlap);
    if (*n == 0)
        cr_assert_null(c, "no chunks but *out is not NULL");
    check_chunks(t, len, &o, c, *n);
    return c;
}

static size_t split_count(const char *t, size_t len, size_t max_chars, size_t overlap,
                          int64_t max_tokens)
{
    size_t n;
    free(split_checked(t, len, max_chars, overlap, max_tokens, &n));
    return n;
}

/* Documents built from words in several scripts, separators, long runs
 * without whitespace, newline runs and NUL bytes. */
struct doc {
    char *b;
    size_t len, cap;
};

static void put(struct doc *d, const char *s, size_t n)
{
    if (d->len + n <= d->cap) {
        memcpy(d->b + d->len, s, n);
        d->len += n;
    }
}

static void put_run(struct doc *d, uint64_t *rng, size_t n, const char *alphabet, size_t alen)
{
    for (size_t i = 0; i < n; i++)
        put(d, alphabet + rng_below(rng, alen), 1);
}

static void gen_doc(struct doc *d, uint64_t *rng, size_t target)
{
    static const char words[][48] = {"the",
                                     "quick",
                                     "brown",
                                     "fox",
                                     "a",
                                     "I",
                                     "embedding",
                                     "interoperability",
                                     "x42",
                                     "2048",
                                     "e.g.",
                                     "U.S.",
                                     "(see",
                                     "below)",
                                     "\"quoted.\"",
                                     "it's",
                                     "café",
                                     "élèves",
                                     "Straße",
                                     "Übermorgen",
                                     "日本語の文章です",
                                     "中文测试",
                                     "한국어",
                                     "مرحبا",
                                     "हिंदी",
                                     "परीक्षण",
                                     "русский",
                                     "ελληνικά",
                                     "😀",
                                     "👩‍👩‍👧‍👦",
                                     "🇫🇷🇩🇪",
                                     "👍🏽",
                                     "e\xcc\x81",
                                     "https://example.com/a/b?c=d&e=f",
                                     "--",
                                     "...",
                                     "\xc2\xa0",
                                     "\xf4\x8f\xbf\xbf"};
    static const char seps[][8] = {" ",  " ",  " ",    " ",       ". ",       ", ",  "! ",
                                   "? ", "\n", "\n\n", "\r\n",    "\r\n\r\n", "\t",  "  ",
                                   "。", "！", "। ",   " \n \n ", "",         "\" ", "\f"};
    d->len = 0;
    for (size_t guard = 0; d->len < target && guard < 100000; guard++) {
        size_t r = rng_below(rng, 200);
        if (r < 3) {
            put_run(d, rng, 1 + rng_below(rng, 3000), "abcdefghijklmnopqrstuvwxyz0123456789/-_",
                    39);
        } else if (r < 5) {
            put_run(d, rng, 1 + rng_below(rng, 400), "\n\n\n\r \t", 6);
        } else if (r < 6) {
            put(d, "\0", 1);
        } else {
            const char *w = words[rng_below(rng, sizeof(words) / sizeof(words[0]))];
            const char *s = seps[rng_below(rng, sizeof(seps) / sizeof(seps[0]))];
            put(d, w, strlen(w));
            put(d, s, strlen(s));
        }
    }
}

static void random_opts(uint64_t *rng, struct chunk_opts *o)
{
    static const size_t sizes[] = {1, 2, 3, 5, 8, 13, 40, 100, 333, 1000, 2000};
    o->max_chars = rng_below(rng, 2) ? sizes[rng_below(rng, sizeof(sizes) / sizeof(sizes[0]))]
                                     : 1 + rng_below(rng, 1500);
    switch (rng_below(rng, 4)) {
    case 0:
        o->overlap_chars = 0;
        break;
    case 1:
        o->overlap_chars = o->max_chars - 1;
        break;
    default:
        o->overlap_chars = rng_below(rng, o->max_chars);
    }
    o->max_tokens = rng_below(rng, 3) ? 4 + (int64_t)rng_below(rng, 3000) : 2048;
}

Test(chunker, properties_on_random_documents)
{
    uint64_t rng = 20240611;
    struct doc d = {malloc(40000), 0, 40000};
    for (int i = 0; i < 600; i++) {
        gen_doc(&d, &rng, rng_below(&rng, 2) ? rng_below(&rng, 400) : rng_below(&rng, 30000));
        cr_assert(utf8_valid(d.b, d.len), "generator made invalid UTF-8");
        struct chunk_opts o;
        random_opts(&rng, &o);
        split_count(d.b, d.len, o.max_chars, o.overlap_chars, o.max_tokens);
    }
    free(d.b);
}

Test(chunker, properties_with_default_options)
{
    uint64_t rng = 7;
    struct doc d = {malloc(300000), 0, 300000};
    for (int i = 0; i < 20; i++) {
        gen_doc(&d, &rng, 100000 + rng_below(&rng, 190000));
        size_t n = split_count(d.b, d.len, CHUNK_DEFAULT_MAX_CHARS, CHUNK_DEFAULT_OVERLAP_CHARS,
                               CHUNK_DEFAULT_MAX_TOKENS);
        cr_assert_gt(n, 10);
    }
    free(d.b);
}

/* Offsets of a small multibyte split, worked out by hand. */
Test(chunker, exact_offsets)
{
    const char *t = "Zürich ist schön. Köln auch.";
    size_t n;
    struct chunk *c = split_checked(t, strlen(t), 20, 0, 2048, &n);
    cr_assert_eq(n, 2);
    cr_assert_eq(c[0].byte_start, 0);
    cr_assert_eq(c[0].byte_end, 19);
    cr_assert_eq(c[0].char_start, 0);
    cr_assert_eq(c[0].char_end, 17);
    cr_assert_eq(c[1].byte_start, 20);
    cr_assert_eq(c[1].byte_end, 31);
    cr_assert_eq(c[1].char_start, 18);
    cr_assert_eq(c[1].char_end, 28);
    cr_assert_eq(c[0].tokens, rule_tokens(t, 19));
    free(c);
}

/* Paragraphs of length 300 - 2 (sentences) joined by blank lines. */
static size_t make_paragraphs(char *buf, size_t count, const char *sep)
{
    const char *sentence = "This sentence belongs to a paragraph. ";
    size_t len = 0, sl = strlen(sentence);
    for (size_t p = 0; p < count; p++) {
        for (size_t i = 0; i < 298; i++)
            buf[len++] = i == 297 ? '.' : sentence[i % sl];
        if (p + 1 < count)
            len += (size_t)snprintf(buf + len, 16, "%s", sep);
    }
    return len;
}

Test(chunker, splits_at_blank_lines_when_paragraphs_fit)
{
    static const char seps[][8] = {"\n\n", "\r\n\r\n", "\n \t\n", "\n\n\n\n"};
    char buf[4000];
    for (size_t s = 0; s < 4; s++) {
        size_t len = make_paragraphs(buf, 6, seps[s]);
        for (size_t ov = 0; ov <= 100; ov += 100) {
            size_t n;
            struct chunk *c = split_checked(buf, len, 700, ov, 2048, &n);
            if (ov == 0)
                cr_assert_eq(n, 3, "two paragraphs per chunk (sep %zu)", s);
            for (size_t i = 0; i < n; i++) {
                size_t e = c[i].byte_end;
                cr_assert(e == len || (buf[e] == seps[s][0] && buf[e - 1] == '.'),
                          "chunk %zu does not end at a paragraph (sep %zu, overlap %zu)", i, s, ov);
                if (ov == 0)
                    cr_assert(c[i].byte_start == 0 || buf[c[i].byte_start - 1] == '\n');
            }
            free(c);
        }
    }
}

Test(chunker, long_paragraph_splits_at_sentence_ends)
{
    static const char sentences[][96] = {
        "Short one.",
        "This sentence is a little longer than the one before it!",
        "Does a question count as the end of a sentence too?",
        "Numbers like 3.14 and e.g. abbreviations are inside sentences.",
        "He said \"stop here.\"",
        "And (in brackets.)"};
    char buf[8000];
    size_t len = 0;
    uint64_t rng = 3;
    while (len < 7000) {
        const char *s = sentences[rng_below(&rng, 6)];
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s ", s);
    }
    len--; /* no trailing space */
    size_t n;
    struct chunk *c = split_checked(buf, len, 500, 0, 2048, &n);
    cr_assert_gt(n, 10);
    for (size_t i = 0; i + 1 < n; i++) {
        size_t e = c[i].byte_end;
        char last = buf[e - 1];
        bool stop = last == '.' || last == '!' || last == '?' ||
                    ((last == '"' || last == ')') && buf[e - 2] == '.');
        cr_assert(stop && buf[e] == ' ', "chunk %zu ends mid-sentence: ...%.20s|", i, buf + e - 20);
        cr_assert_neq(strncmp(buf + e - 4, "3.14", 4), 0);
    }
    free(c);
}

Test(chunker, long_sentence_splits_at_spaces)
{
    char buf[6000];
    size_t len = 0;
    uint64_t rng = 5;
    static const char words[][16] = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta"};
    while (len < 5000)
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s ", words[rng_below(&rng, 6)]);
    len--;
    for (size_t ov = 0; ov <= 50; ov += 25) {
        size_t n;
        struct chunk *c = split_checked(buf, len, 200, ov, 2048, &n);
        for (size_t i = 0; i < n; i++) {
            cr_assert(c[i].byte_end == len || buf[c[i].byte_end] == ' ', "chunk %zu cuts a word",
                      i);
            cr_assert(c[i].byte_start == 0 || buf[c[i].byte_start - 1] == ' ',
                      "chunk %zu starts inside a word", i);
            cr_assert_geq(c[i].char_end - c[i].char_start, i + 1 < n ? 150 : 1);
        }
        free(c);
    }
}

Test(chunker, text_without_spaces_is_cut_at_the_limit)
{
    char *a = malloc(10000);
    memset(a, 'a', 10000);
    size_t n;
    struct chunk *c = split_checked(a, 10000, 1000, 0, 2048, &n);
    cr_assert_eq(n, 10);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(c[i].byte_start, 1000 * i);
    free(c);
    c = split_checked(a, 10000, 1000, 100, 2048, &n);
    cr_assert_eq(n, 11, "1000-char chunks overlapping by 100");
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(c[i].byte_start, 900 * i);
        cr_assert_eq(c[i].byte_end, 900 * i + 1000);
    }
    free(c);
    /* the token budget binds before max_chars: ceil(len / 3) <= 2048 */
    c = split_checked(a, 10000, 8000, 0, 2048, &n);
    cr_assert_eq(c[0].byte_end, 6144);
    free(c);
    free(a);
}

Test(chunker, long_url_is_cut_at_the_limit)
{
    char buf[4000];
    size_t len = (size_t)snprintf(buf, sizeof(buf), "Read https://example.com/");
    for (; len < 3000; len++)
        buf[len] = "abcdefgh/ij-kl_0123?=&"[len % 22];
    len += (size_t)snprintf(buf + len, sizeof(buf) - len, " now. More text follows.");
    size_t n;
    struct chunk *c = split_checked(buf, len, 1000, 0, 2048, &n);
    cr_assert_eq(n, 4);
    for (size_t i = 0; i < 3; i++)
        cr_assert_eq(c[i].char_end - c[i].char_start, 1000, "chunk %zu is cut at the limit", i);
    free(c);
    /* a multibyte text without spaces: cut at the limit, on code-point boundaries */
    char *e = malloc(20000);
    for (size_t i = 0; i < 10000; i++)
        memcpy(e + 2 * i, "é", 2);
    c = split_checked(e, 20000, 999, 0, 2048, &n);
    cr_assert_eq(n, 11);
    cr_assert_eq(c[0].byte_end, 1998);
    free(c);
    free(e);
}

struct ml_case {
    char name[16];
    char text[640];
};

ParameterizedTestParameters(chunker, multilingual)
{
    static struct ml_case cases[] = {
        {"english", "The quick brown fox jumps over the lazy dog. It was not amused! Why? "
                    "Nobody knows.\n\nA second paragraph, with a comma, follows here."},
        {"french", "Le café est très bon. Les élèves étudient à la bibliothèque; ça va? "
                   "Où est l'hôpital? «Voilà», dit-il.\n\nÇa, c'est une île."},
        {"german", "Die Straße ist groß. Übermorgen fahren wir nach München! Größere "
                   "Äpfel schmecken süßer. Donaudampfschifffahrtsgesellschaftskapitän."},
        {"japanese", "日本語の文章です。これは二番目の文です。三番目の文もあります！"
                     "東京は大きな都市ですか？「はい、そうです。」最後の文。"},
        {"chinese", "这是中文文本。我们测试分块算法。最后一句？北京是中国的首都！"
                    "长江是亚洲最长的河流。"},
        {"arabic", "هذا نص عربي. نحن نختبر التقسيم؟ اللغة العربية جميلة. "
                   "مرحبا بالعالم۔"},
        {"hindi", "यह हिंदी पाठ है। हम विभाजन का परीक्षण करते हैं। क्षत्रिय और "
                  "नमस्ते शब्द भी हैं॥"},
        {"emoji",
         "Emoji 👩‍👩‍👧‍👦 family and flags 🇫🇷🇩🇪 and 😀😀😀 and "
         "👍🏽👍🏽.\n\n👨‍💻👩‍🔬🧑‍🚀🏳️‍🌈"},
        {"mixed", "Mixed: English, русский текст, ελληνικά, 한국어 문장입니다. "
                  "日本語と中文。العربية और हिंदी 😀 café."},
    };
    return cr_make_param_array(struct ml_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct ml_case *mc, chunker, multilingual)
{
    size_t len = strlen(mc->text);
    cr_assert(utf8_valid(mc->text, len), "%s is not valid UTF-8", mc->name);
    static const size_t sizes[] = {1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 2000};
    static const int64_t budgets[] = {4, 5, 7, 16, 2048};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
        for (size_t b = 0; b < sizeof(budgets) / sizeof(budgets[0]); b++) {
            size_t m = sizes[s];
            split_count(mc->text, len, m, 0, budgets[b]);
            split_count(mc->text, len, m, m / 3, budgets[b]);
            split_count(mc->text, len, m, m - 1, budgets[b]);
        }
    /* the same text many times over, in one paragraph and in many */
    char *big = malloc(64 * (len + 2));
    size_t bl = 0;
    for (int i = 0; i < 64; i++) {
        memcpy(big + bl, mc->text, len);
        bl += len;
        memcpy(big + bl, i % 2 ? "\n\n" : " ", i % 2 ? 2 : 1);
        bl += i % 2 ? 2 : 1;
    }
    split_count(big, bl, 2000, 200, 2048);
    split_count(big, bl, 300, 100, 2048);
    split_count(big, bl, 300, 50, 64);
    free(big);
}

Test(chunker, cjk_respects_the_token_budget)
{
    /* 3-byte characters count 2 tokens each: 1024 of them fill 2048 tokens */
    char *t = malloc(4500);
    for (int i = 0; i < 1500; i++)
        memcpy(t + 3 * i, "日", 3);
    size_t n;
    struct chunk *c = split_checked(t, 4500, 2000, 0, 2048, &n);
    cr_assert_eq(n, 2);
    cr_assert_eq(c[0].char_end, 1024);
    cr_assert_eq(c[0].tokens, 2048);
    cr_assert_eq(c[1].char_end - c[1].char_start, 476);
    free(c);
    free(t);
}

Test(chunker, japanese_splits_after_sentence_ends)
{
    static const char sents[][64] = {"これは日本語の文です。", "短い文！", "質問ですか？",
                                     "東京は大きな都市で、人がたくさんいます。"};
    char buf[6000];
    size_t len = 0;
    uint64_t rng = 11;
    while (len < 5000) {
        const char *s = sents[rng_below(&rng, 4)];
        memcpy(buf + len, s, strlen(s));
        len += strlen(s);
    }
    static const struct {
        size_t max_chars;
        int64_t max_tokens;
    } lim[] = {{50, 2048}, {2000, 80}};
    for (size_t l = 0; l < 2; l++) {
        size_t n;
        struct chunk *c = split_checked(buf, len, lim[l].max_chars, 0, lim[l].max_tokens, &n);
        for (size_t i = 0; i + 1 < n; i++) {
            const char *end = buf + c[i].byte_end - 3;
            cr_assert(!memcmp(end, "。", 3) || !memcmp(end, "！", 3) || !memcmp(end, "？", 3),
                      "chunk %zu ends mid-sentence", i);
        }
        free(c);
    }
}

/* Whether cp belongs to the character before it (the test's own short list). */
static bool joins_previous(uint32_t cp)
{
    return (cp >= 0x300 && cp <= 0x36F) || (cp >= 0x93E && cp <= 0x94D) || cp == 0x200D ||
           cp == 0xFE0F || (cp >= 0x1F3FB && cp <= 0x1F3FF);
}

static uint32_t decode_at(const unsigned char *p, size_t *i)
{
    unsigned char c = p[*i];
    size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    uint32_t cp = n == 1 ? c : c & (0x7F >> n);
    for (size_t k = 1; k < n; k++)
        cp = cp << 6 | (p[*i + k] & 0x3F);
    *i += n;
    return cp;
}

/* Whether p starts with a regional indicator (U+1F1E6..U+1F1FF: F0 9F 87 A6..BF). */
static bool is_ri_at(const unsigned char *p)
{
    return p[0] == 0xF0 && p[1] == 0x9F && p[2] == 0x87 && p[3] >= 0xA6 && p[3] <= 0xBF;
}

/* Whether a cut at byte b of t splits a character sequence. */
static bool splits_sequence(const char *t, size_t len, size_t b)
{
    const unsigned char *p = (const unsigned char *)t;
    if (b == 0 || b >= len)
        return false;
    size_t a = b - 1, i = b;
    while ((p[a] & 0xC0) == 0x80)
        a--;
    uint32_t prev = decode_at(p, &a), cur = decode_at(p, &i);
    if (joins_previous(cur) || prev == 0x200D)
        return true;
    /* flags: a cut inside a run of regional indicators must follow an even count */
    size_t run = 0;
    for (size_t k = b; k >= 4 && is_ri_at(p + k - 4); k -= 4)
        run++;
    return is_ri_at(p + b) && run % 2 == 1;
}

Test(chunker, cuts_keep_combining_sequences_whole)
{
    static const char units[][32] = {
        "e\xcc\x81", "👩‍👩‍👧‍👦", "🇫🇷🇩🇪", "👍🏽", "नमस्ते", "🏳️‍🌈"};
    char *t = malloc(40000);
    for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
        size_t ul = strlen(units[u]), len = 0;
        while (len + ul <= 30000) {
            memcpy(t + len, units[u], ul);
            len += ul;
        }
        static const size_t sizes[][2] = {{20, 0}, {37, 0}, {20, 7}, {100, 30}};
        for (size_t s = 0; s < 4; s++) {
            size_t n;
            struct chunk *c = split_checked(t, len, sizes[s][0], sizes[s][1], 2048, &n);
            for (size_t i = 0; i < n; i++) {
                cr_assert_not(splits_sequence(t, len, c[i].byte_start),
                              "unit %zu, sizes %zu: chunk %zu starts inside a sequence", u, s, i);
                cr_assert_not(splits_sequence(t, len, c[i].byte_end),
                              "unit %zu, sizes %zu: chunk %zu ends inside a sequence", u, s, i);
            }
            free(c);
        }
    }
    free(t);
}

static void expect_no_chunks(const char *t, size_t len)
{
    struct chunk_opts o = {100, 10, 2048};
    struct chunk dummy;
    struct chunk *c = &dummy;
    size_t n = 99;
    cr_assert(chunker_split(t, len, &o, &c, &n));
    cr_assert_eq(n, 0, "%zu chunks from whitespace", n);
    cr_assert_null(c);
}

Test(chunker, empty_and_whitespace_only_texts)
{
    expect_no_chunks("", 0);
    expect_no_chunks(NULL, 0);
    expect_no_chunks(" ", 1);
    expect_no_chunks(" \n\t\r\n\f\v ", 8);
    char *nl = malloc(200000);
    memset(nl, '\n', 200000);
    expect_no_chunks(nl, 200000);
    for (size_t i = 0; i < 200000; i += 2)
        memcpy(nl + i, "\r\n", 2);
    expect_no_chunks(nl, 200000);
    free(nl);
}

Test(chunker, single_characters)
{
    static const char chars[][8] = {"x", "é", "日", "😀", ".", "\xf4\x8f\xbf\xbf"};
    for (size_t i = 0; i < sizeof(chars) / sizeof(chars[0]); i++) {
        size_t len = strlen(chars[i]);
        for (size_t m = 1; m <= 3; m++) {
            size_t n;
            struct chunk *c = split_checked(chars[i], len, m, 0, 4, &n);
            cr_assert_eq(n, 1);
            cr_assert_eq(c[0].byte_end, len);
            cr_assert_eq(c[0].char_end, 1);
            free(c);
        }
    }
    cr_assert_eq(split_count("\0", 1, 1, 0, 4), 1, "a NUL byte is text");
    cr_assert_eq(split_count("  \n x \t", 7, 1, 0, 4), 1);
}

Test(chunker, texts_of_max_chars_and_one_more)
{
    char buf[201];
    for (int spaced = 0; spaced < 2; spaced++) {
        for (size_t i = 0; i < 201; i++)
            buf[i] = spaced && i % 7 == 3 ? ' ' : 'a' + (char)(i % 26);
        size_t n;
        struct chunk *c = split_checked(buf, 100, 100, 0, 2048, &n);
        cr_assert_eq(n, 1, "exactly max_chars is one chunk");
        cr_assert_eq(c[0].byte_end, 100);
        free(c);
        c = split_checked(buf, 101, 100, 0, 2048, &n);
        cr_assert_eq(n, 2, "max_chars + 1 is two chunks");
        free(c);
        cr_assert_eq(split_count(buf, 101, 100, 99, 2048), 2);
    }
    /* the same with 3-byte characters */
    char cjk[303];
    for (size_t i = 0; i < 101; i++)
        memcpy(cjk + 3 * i, "語", 3);
    cr_assert_eq(split_count(cjk, 300, 100, 0, 2048), 1);
    cr_assert_eq(split_count(cjk, 303, 100, 0, 2048), 2);
    cr_assert_eq(split_count(cjk, 303, 100, 50, 2048), 2);
}

Test(chunker, overlap_of_max_chars_minus_one_terminates)
{
    uint64_t rng = 99;
    struct doc d = {malloc(20000), 0, 20000};
    for (int i = 0; i < 40; i++) {
        gen_doc(&d, &rng, 15000);
        size_t m = 1 + rng_below(&rng, 300);
        size_t n = split_count(d.b, d.len, m, m - 1, 2048);
        size_t chars = utf8_count(d.b, d.len);
        cr_assert_leq(n, chars, "%zu chunks for %zu characters", n, chars);
    }
    free(d.b);
    char *a = malloc(10000);
    memset(a, 'z', 10000);
    cr_assert_leq(split_count(a, 10000, 1000, 999, 2048), 21, "each chunk moves on half");
    cr_assert_eq(split_count(a, 10000, 2, 1, 2048), 5000);
    free(a);
}

Test(chunker, max_chars_one)
{
    const char *t = "ab cd é日\n\nz.";
    size_t n;
    struct chunk *c = split_checked(t, strlen(t), 1, 0, 4, &n);
    cr_assert_eq(n, 8);
    cr_assert_eq(c[4].byte_start, 6);
    cr_assert_eq(c[4].byte_end, 8, "é is one chunk");
    cr_assert_eq(c[5].char_start, 7);
    free(c);
}

Test(chunker, nul_bytes_are_text)
{
    const char t[] = "abc\0def\0\0 ghi\0. \0";
    size_t len = sizeof(t) - 1;
    for (size_t m = 1; m < 20; m++) {
        split_count(t, len, m, 0, 2048);
        split_count(t, len, m, m / 2, 2048);
    }
    size_t n;
    struct chunk *c = split_checked(t, len, 100, 0, 2048, &n);
    cr_assert_eq(n, 1);
    cr_assert_eq(c[0].byte_end, len, "the trailing NUL is kept");
    free(c);
}

Test(chunker, long_newline_runs_and_crlf)
{
    size_t len = 5 + 300000 + 3;
    char *t = malloc(len);
    memcpy(t, "start", 5);
    memset(t + 5, '\n', 300000);
    memcpy(t + 5 + 300000, "end", 3);
    size_t n;
    struct chunk *c = split_checked(t, len, 2000, 200, 2048, &n);
    cr_assert_eq(n, 2);
    cr_assert_eq(c[1].byte_start, len - 3);
    cr_assert_eq(c[1].char_start, len - 3);
    free(c);
    for (size_t i = 5; i + 2 <= 5 + 300000; i += 2)
        memcpy(t + i, "\r\n", 2);
    cr_assert_eq(split_count(t, len, 10, 3, 2048), 2);
    free(t);
    const char *crlf =
        "Line one here.\r\nLine two here.\r\n\r\nA new paragraph.\r\n\r\n\r\nLast.\r\n";
    for (size_t m = 1; m <= 40; m++)
        split_count(crlf, strlen(crlf), m, m / 4, 2048);
    c = split_checked(crlf, strlen(crlf), 40, 0, 2048, &n);
    cr_assert_eq(c[0].byte_end, strlen("Line one here.\r\nLine two here."), "a CRLF blank line");
    free(c);
}

Test(chunker, invalid_options)
{
    static const struct chunk_opts bad[] = {{0, 0, 2048}, {10, 10, 2048}, {10, 11, 2048},
                                            {10, 0, 3},   {10, 0, -1},    {1, 1, 2048}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct chunk dummy;
        struct chunk *c = &dummy;
        size_t n = 99;
        cr_assert_not(chunker_split("some text", 9, &bad[i], &c, &n), "options %zu accepted", i);
        cr_assert_null(c);
    }
    struct chunk_opts ok = {1, 0, 4};
    struct chunk *c = NULL;
    size_t n;
    cr_assert(chunker_split("ok", 2, &ok, &c, &n));
    free(c);
}

struct tok_case {
    char text[24];
    size_t len;
    int64_t tokens;
};

Test(chunker, token_estimate_exact_values)
{
    static const struct tok_case cases[] = {{"", 0, 0},
                                            {" ", 1, 1},
                                            {"\n\t ", 3, 1},
                                            {"a", 1, 1},
                                            {"abc", 3, 1},
                                            {"abcd", 4, 2},
                                            {"abcdef", 6, 2},
                                            {"abcdefg", 7, 3},
                                            {"a b", 3, 2},
                                            {"x1y2", 4, 2},
                                            {"hello, world!", 13, 6},
                                            {"--", 2, 2},
                                            {"\0", 1, 1},
                                            {"é", 2, 1},
                                            {"日本", 6, 4},
                                            {"😀", 4, 3},
                                            {"é日😀a.", 11, 8},
                                            {"  ab  ", 6, 1},
                                            {"a\xcc\x81", 3, 2},
                                            {"U.S.A.", 6, 6},
                                            {"2048 tokens", 11, 4}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t got = chunker_token_estimate(cases[i].text, cases[i].len);
        cr_assert_eq(got, cases[i].tokens, "case %zu: %lld, not %lld", i, (long long)got,
                     (long long)cases[i].tokens);
        cr_assert_eq(got, rule_tokens(cases[i].text, cases[i].len), "case %zu", i);
    }
}

/* Append code point cp as UTF-8; returns its length. */
static size_t encode(uint32_t cp, unsigned char *o)
{
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | cp >> 6);
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | cp >> 18);
    o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

static uint32_t random_cp(uint64_t *rng)
{
    static const char ascii[] = "abcXYZ019 \t\n\r.,!?-_/\"'()";
    switch (rng_below(rng, 6)) {
    case 0:
    case 1:
        return (uint32_t)ascii[rng_below(rng, sizeof(ascii) - 1)];
    case 2:
        return (uint32_t)rng_below(rng, 0x80);
    case 3:
        return 0x80 + (uint32_t)rng_below(rng, 0x800 - 0x80);
    case 4: {
        uint32_t cp = 0x800 + (uint32_t)rng_below(rng, 0x10000 - 0x800);
        return cp >= 0xD800 && cp <= 0xDFFF ? 0x65E5 : cp;
    }
    default:
        return 0x10000 + (uint32_t)rng_below(rng, 0x110000 - 0x10000);
    }
}

Test(chunker, token_estimate_never_undercuts_the_simulator)
{
    uint64_t rng = 1234;
    unsigned char buf[4096];
    for (int i = 0; i < 3000; i++) {
        size_t len = 0, want = rng_below(&rng, 1000);
        while (len < want)
            len += encode(random_cp(&rng), buf + len);
        const char *t = (const char *)buf;
        cr_assert(utf8_valid(t, len));
        int64_t est = chunker_token_estimate(t, len);
        cr_assert_geq(est, sim_tokens(t, len), "text %d", i);
        cr_assert_eq(est, rule_tokens(t, len), "text %d", i);
    }
}

struct utf8_case {
    char bytes[8];
    size_t len;
};

Test(chunker, utf8_validation)
{
    static const struct utf8_case good[] = {{"", 0},
                                            {"a\0b", 3},
                                            {"\x7f", 1},
                                            {"\xc2\x80", 2},
                                            {"\xdf\xbf", 2},
                                            {"\xe0\xa0\x80", 3},
                                            {"\xed\x9f\xbf", 3},
                                            {"\xee\x80\x80", 3},
                                            {"\xef\xbf\xbf", 3},
                                            {"\xf0\x90\x80\x80", 4},
                                            {"\xf4\x8f\xbf\xbf", 4}};
    static const struct utf8_case bad[] = {{"\xc0\x80", 2},
                                           {"\xc1\xbf", 2},
                                           {"\xe0\x80\x80", 3},
                                           {"\xe0\x9f\xbf", 3},
                                           {"\xf0\x80\x80\x80", 4},
                                           {"\xf0\x8f\xbf\xbf", 4},
                                           {"\xed\xa0\x80", 3},
                                           {"\xed\xbf\xbf", 3},
                                           {"\xf4\x90\x80\x80", 4},
                                           {"\xc3", 1},
                                           {"\xe6\x97", 2},
                                           {"\xf0\x9f\x98", 3},
                                           {"\x80", 1},
                                           {"a\xbf", 2},
                                           {"\xc3\xa9\x80", 3},
                                           {"\xe6\x41\x97", 3},
                                           {"\xf5\x80\x80\x80", 4},
                                           {"\xf8", 1},
                                           {"\xfe", 1},
                                           {"\xff", 1},
                                           {"\xc3 ", 2}};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        cr_assert(utf8_valid(good[i].bytes, good[i].len), "rejected good case %zu", i);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_not(utf8_valid(bad[i].bytes, bad[i].len), "accepted bad case %zu", i);
    /* every scalar value encodes validly; surrogates do not; truncations do not */
    unsigned char b[4];
    for (uint32_t cp = 0; cp < 0x110000; cp++) {
        size_t n = encode(cp, b);
        bool sur = cp >= 0xD800 && cp <= 0xDFFF;
        cr_assert_eq(utf8_valid((const char *)b, n), !sur, "U+%04X", (unsigned)cp);
        if (n > 1 && !sur)
            cr_assert_not(utf8_valid((const char *)b, n - 1), "U+%04X truncated", (unsigned)cp);
        if (cp % 4096 == 0)
            cr_assert_eq(utf8_count((const char *)b, n), 1);
    }
    for (unsigned c = 0xF5; c <= 0xFF; c++) {
        char s[4] = {(char)c, '\x80', '\x80', '\x80'};
        cr_assert_not(utf8_valid(s, 4), "lead byte %02X", c);
    }
    cr_assert_eq(utf8_count("日本a\0é", 9), 5);
}

static double seconds_since(const struct timespec *a)
{
    struct timespec b;
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (double)(b.tv_sec - a->tv_sec) + (double)(b.tv_nsec - a->tv_nsec) / 1e9;
}

/* Split 10 MB with the default options, check it, and report the time. */
static void split_big(const char *what, const char *t, size_t len, size_t min_chunks)
{
    struct chunk_opts o = {CHUNK_DEFAULT_MAX_CHARS, CHUNK_DEFAULT_OVERLAP_CHARS,
                           CHUNK_DEFAULT_MAX_TOKENS};
    struct chunk *c = NULL;
    size_t n = 0;
    struct timespec a;
    clock_gettime(CLOCK_MONOTONIC, &a);
    cr_assert(chunker_split(t, len, &o, &c, &n));
    double s = seconds_since(&a);
    cr_log_info("10 MB %s: %zu chunks in %.3f s", what, n, s);
    cr_assert_geq(n, min_chunks);
    cr_assert_lt(s, 10.0, "%s took %.3f s: not linear", what, s);
    check_chunks(t, len, &o, c, n);
    free(c);
}

#define BIG (10u * 1000u * 1000u)

Test(chunker, ten_megabytes_of_prose, .timeout = 30)
{
    static const char sents[][96] = {
        "This is a sentence of English prose that goes on for a while. ", "Short one! ",
        "Is this a question? ", "Embeddings turn text into vectors.\n\n",
        "A line without a full stop\n"};
    char *t = malloc(BIG);
    uint64_t rng = 8;
    size_t len = 0;
    for (;;) {
        const char *s = sents[rng_below(&rng, 5)];
        size_t l = strlen(s);
        if (len + l > BIG)
            break;
        memcpy(t + len, s, l);
        len += l;
    }
    split_big("prose", t, len, BIG / 2000);
    /* one giant paragraph: no line breaks at all */
    for (size_t i = 0; i < len; i++)
        t[i] = t[i] == '\n' ? ' ' : t[i];
    split_big("one paragraph", t, len, BIG / 2000);
    free(t);
}

Test(chunker, ten_megabytes_without_whitespace, .timeout = 30)
{
    char *t = malloc(BIG);
    memset(t, 'q', BIG);
    split_big("no whitespace", t, BIG, BIG / 2000);
    for (size_t i = 0; i + 3 <= BIG; i += 3)
        memcpy(t + i, "語", 3);
    split_big("CJK without whitespace", t, BIG - BIG % 3, BIG / 3 / 1024);
    for (size_t i = 0; i < BIG; i++)
        t[i] = i % 2 ? '\n' : 'x';
    split_big("one-letter lines", t, BIG, BIG / 2 / 2000);
    free(t);
}
