/*
 * chunker.c: splitting documents into chunks (see chunker.h).
 *
 * One pass per chunk: from the chunk's start, extend a window code point by
 * code point until it holds max_chars code points or the next one would
 * pass max_tokens (the token estimate is kept incrementally). Then look back
 * inside the window for the best end: a blank line, else a sentence end,
 * else whitespace, each only past a fraction of the window (so chunks are
 * not tiny); failing all three, cut at the window's end. The next chunk starts
 * overlap_chars code points before the end (never more than half the chunk,
 * which keeps the whole split linear), moved forward to a word start.
 */
#include "chunker.h"

#include <stdlib.h>
#include <string.h>

static bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool is_alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Byte length of the UTF-8 sequence starting with c (1 for continuation bytes). */
static size_t seq_len(unsigned char c)
{
    return c < 0xC0 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

bool utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned char c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) {
            n = 2;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 3;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 4;
            cp = c & 0x07;
        } else {
            return false; /* continuation byte, C0/C1 overlong lead, or F5..FF */
        }
        if (i + n > len)
            return false;
        for (size_t k = 1; k < n; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + k] & 0x3F);
        }
        if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n;
    }
    return true;
}

size_t utf8_count(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

/* Incremental token estimate (the rule in chunker.h). */
struct tok {
    int64_t tokens;
    size_t run; /* length of the current ASCII letter/digit run */
};

static void tok_add(struct tok *t, const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    if (c < 0x80 && is_alnum(c)) {
        if (t->run % 3 == 0)
            t->tokens++;
        t->run++;
        return;
    }
    t->run = 0;
    if (c < 0x80) {
        if (!is_space(c))
            t->tokens++;
    } else {
        t->tokens += (int64_t)n - 1;
    }
}

int64_t chunker_token_estimate(const char *text, size_t len)
{
    const unsigned char *p = (const unsigned char *)text;
    struct tok t = {0, 0};
    for (size_t i = 0; i < len;) {
        size_t n = seq_len(p[i]);
        if (i + n > len)
            n = len - i;
        tok_add(&t, p + i, n);
        i += n;
    }
    return t.tokens == 0 && len > 0 ? 1 : t.tokens;
}

static size_t skip_space(const unsigned char *p, size_t i, size_t len)
{
    while (i < len && is_space(p[i]))
        i++;
    return i;
}

/* Is position e (a chunk end) right before a blank line? */
static bool para_end(const unsigned char *p, size_t e, size_t len)
{
    if (e >= len || p[e] != '\n')
        return false;
    for (size_t i = e + 1; i < len; i++) {
        if (p[i] == '\n')
            return true;
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
            return false;
    }
    return false;
}

/* Is position e right after the end of a sentence? */
static bool sentence_end(const unsigned char *p, size_t start, size_t e, size_t len)
{
    if (e < len && p[e] == '\n')
        return true;
    if (e - start >= 1 && (p[e - 1] == '.' || p[e - 1] == '!' || p[e - 1] == '?') &&
        (e == len || is_space(p[e])))
        return true;
    /* 。 ！ ？ (U+3002, U+FF01, U+FF1F) */
    if (e - start >= 3) {
        const unsigned char *q = p + e - 3;
        return (q[0] == 0xE3 && q[1] == 0x80 && q[2] == 0x82) ||
               (q[0] == 0xEF && q[1] == 0xBC && (q[2] == 0x81 || q[2] == 0x9F));
    }
    return false;
}

/* Best end for a chunk starting at start whose window ends at q: the last
 * blank line past a quarter of the window, else the last sentence end past a
 * third, else the last whitespace past half; else q itself. */
static size_t pick_end(const unsigned char *p, size_t start, size_t q, size_t len)
{
    size_t w = q - start;
    size_t para_min = start + w / 4, sent_min = start + w / 3, word_min = start + w / 2;
    size_t sent = 0, word = 0;
    for (size_t e = q; e > para_min; e--) {
        if (e < len && (p[e] & 0xC0) == 0x80)
            continue; /* never inside a UTF-8 sequence */
        if (para_end(p, e, len))
            return e;
        if (!sent && e > sent_min && sentence_end(p, start, e, len))
            sent = e;
        if (!word && e > word_min && e < len && is_space(p[e]))
            word = e;
    }
    if (sent)
        return sent;
    if (word)
        return word;
    return q;
}

/* Byte offset k code points before e, but not before floor. */
static size_t back_chars(const unsigned char *p, size_t e, size_t k, size_t floor)
{
    while (k > 0 && e > floor) {
        e--;
        while (e > floor && (p[e] & 0xC0) == 0x80)
            e--;
        k--;
    }
    return e;
}

struct cursor {
    size_t byte, chars;
};

/* Code-point index of byte offset b, moving the cursor (forward or back). */
static size_t char_index(struct cursor *c, const unsigned char *p, size_t b)
{
    while (c->byte < b) {
        c->chars += (p[c->byte] & 0xC0) != 0x80;
        c->byte++;
    }
    while (c->byte > b) {
        c->byte--;
        c->chars -= (p[c->byte] & 0xC0) != 0x80;
    }
    return c->chars;
}

static bool push(struct chunk **a, size_t *n, size_t *cap, struct chunk ch)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        struct chunk *b = realloc(*a, ncap * sizeof(**a));
        if (!b)
            return false;
        *a = b;
        *cap = ncap;
    }
    (*a)[(*n)++] = ch;
    return true;
}

bool chunker_split(const char *text, size_t len, const struct chunk_opts *o, struct chunk **out,
                   size_t *n)
{
    const unsigned char *p = (const unsigned char *)text;
    *out = NULL;
    *n = 0;
    if (o->max_chars == 0 || o->overlap_chars >= o->max_chars || o->max_tokens < 4)
        return false;
    struct chunk *a = NULL;
    size_t cap = 0, count = 0;
    struct cursor cs = {0, 0}, ce = {0, 0};
    size_t pos = skip_space(p, 0, len);
    while (pos < len) {
        /* the window: as far as the limits allow */
        struct tok t = {0, 0};
        size_t q = pos, chars = 0;
        while (q < len && chars < o->max_chars) {
            size_t sl = seq_len(p[q]);
            if (q + sl > len)
                sl = len - q;
            struct tok next = t;
            tok_add(&next, p + q, sl);
            if (next.tokens > o->max_tokens)
                break;
            t = next;
            q += sl;
            chars++;
        }
        size_t e = q >= len ? len : pick_end(p, pos, q, len);
        size_t end = e;
        while (end > pos && is_space(p[end - 1]))
            end--;
        if (end > pos) {
            struct chunk ch = {pos, end, char_index(&cs, p, pos), char_index(&ce, p, end),
                               chunker_token_estimate(text + pos, end - pos)};
            if (!push(&a, &count, &cap, ch)) {
                free(a);
                return false;
            }
        }
        if (e >= len)
            break;
        /* the next start: overlap (at most half the chunk) moved to a word start */
        size_t next = skip_space(p, e, len);
        size_t chunk_chars = a && count ? a[count - 1].char_end - a[count - 1].char_start : 0;
        size_t ov = o->overlap_chars < chunk_chars / 2 ? o->overlap_chars : chunk_chars / 2;
        if (ov > 0) {
            size_t s = back_chars(p, end, ov, pos + 1);
            while (s < end && !is_space(p[s - 1]))
                s += seq_len(p[s]);
            s = skip_space(p, s, end);
            if (s > pos && s < end)
                next = s;
        }
        pos = next > pos ? next : skip_space(p, e, len);
    }
    *out = a;
    *n = count;
    return true;
}
