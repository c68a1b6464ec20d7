/* chunker.c: split documents into embedding-sized chunks on natural boundaries (see chunker.h). */
#include "chunker/chunker.h"

#include <stdlib.h>

/*
 * How it works. Each chunk costs one forward scan of its window: from the
 * chunk's start, take code points while the chunk stays within max_chars and
 * max_tokens (the estimate is kept incrementally), remembering on the way the
 * last paragraph break, sentence end and whitespace. The chunk ends at the
 * last paragraph break if that keeps at least a quarter of the window, else
 * at the last sentence end (a third), else at the last whitespace (a
 * quarter), else it is cut at the window's end, moved back a few code points
 * if that would split a combining sequence. The next chunk starts at the
 * first non-space after the end or, with overlap, at a word start at most
 * overlap_chars code points, and at most half the chunk, before the end.
 * Every chunk so moves the start on by at least an eighth of the window it
 * scanned, which keeps the whole split linear in the length of the text.
 */

enum {
    PEEK_BYTES = 32,  /* whitespace looked at past a full window, for its breaks */
    MAX_BACKOFF = 16, /* code points a hard cut may move back */
};

/* Byte classes, one table lookup per byte on the hot paths. */
enum { C_SPACE = 1, C_ALNUM = 2 };
#define SP_ C_SPACE
#define AN_ C_ALNUM
/* eight letters in a row: after a designator, initializers go on at the next index */
#define AN8() AN_, AN_, AN_, AN_, AN_, AN_, AN_, AN_
static const unsigned char byte_class[256] = {
    [' '] = SP_,   ['\t'] = SP_, ['\n'] = SP_, ['\r'] = SP_,  ['\f'] = SP_,  ['\v'] = SP_,
    ['0'] = AN_,   ['1'] = AN_,  ['2'] = AN_,  ['3'] = AN_,   ['4'] = AN_,   ['5'] = AN_,
    ['6'] = AN_,   ['7'] = AN_,  ['8'] = AN_,  ['9'] = AN_,   ['A'] = AN8(), ['I'] = AN8(),
    ['Q'] = AN8(), ['Y'] = AN_,  ['Z'] = AN_,  ['a'] = AN8(), ['i'] = AN8(), ['q'] = AN8(),
    ['y'] = AN_,   ['z'] = AN_,
};

static bool is_space(unsigned char c)
{
    return byte_class[c] == C_SPACE;
}

static bool is_alnum(unsigned char c)
{
    return byte_class[c] == C_ALNUM;
}

/* Byte length of the code point at p[i]: its lead byte's length, cut short
 * at the first byte that is not a continuation (so malformed input is never
 * overrun). */
static size_t cp_len(const unsigned char *p, size_t i, size_t len)
{
    unsigned char c = p[i];
    size_t want = c < 0xC0 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    size_t n = 1;
    while (n < want && i + n < len && (p[i + n] & 0xC0) == 0x80)
        n++;
    return n;
}

static uint32_t cp_decode(const unsigned char *p, size_t n)
{
    static const unsigned char mask[] = {0, 0x7F, 0x1F, 0x0F, 0x07};
    uint32_t cp = p[0] & mask[n];
    for (size_t k = 1; k < n; k++)
        cp = cp << 6 | (p[k] & 0x3F);
    return cp;
}

/* Start of the code point before i (i > lo), not before lo. */
static size_t cp_prev(const unsigned char *p, size_t i, size_t lo)
{
    size_t k = 0;
    do {
        i--;
        k++;
    } while (i > lo && k < 4 && (p[i] & 0xC0) == 0x80);
    return i;
}

struct range {
    uint32_t lo, hi;
};

static bool in_ranges(uint32_t cp, const struct range *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (cp >= r[i].lo && cp <= r[i].hi)
            return true;
    return false;
}

/* Code points that belong to the character before them: common combining
 * marks, joiners, variation selectors, emoji modifiers and tags (a short
 * table, not all of Unicode's grapheme Extend class). */
static bool is_extend(uint32_t cp)
{
    static const struct range r[] = {
        {0x0300, 0x036F},   {0x0483, 0x0489}, {0x0591, 0x05BD},   {0x0610, 0x061A},
        {0x064B, 0x065F},   {0x0670, 0x0670}, {0x0900, 0x0903},   {0x093A, 0x093C},
        {0x093E, 0x094F},   {0x0951, 0x0957}, {0x0962, 0x0963},   {0x0E31, 0x0E31},
        {0x0E34, 0x0E3A},   {0x0E47, 0x0E4E}, {0x1AB0, 0x1AFF},   {0x1DC0, 0x1DFF},
        {0x200C, 0x200D},   {0x20D0, 0x20FF}, {0x302A, 0x302F},   {0x3099, 0x309A},
        {0xFE00, 0xFE0F},   {0xFE20, 0xFE2F}, {0x1F3FB, 0x1F3FF}, {0xE0020, 0xE007F},
        {0xE0100, 0xE01EF},
    };
    return cp >= 0x300 && in_ranges(cp, r, SVC_ARRAY_LEN(r));
}

/* Regional indicators: pairs of them make flags. */
static bool is_ri(uint32_t cp)
{
    return cp >= 0x1F1E6 && cp <= 0x1F1FF;
}

/* Scripts written without spaces (CJK ideographs, kana, fullwidth forms):
 * any character boundary next to them is a word boundary. */
static bool is_cjk(uint32_t cp)
{
    static const struct range r[] = {
        {0x2E80, 0x2FDF}, {0x3000, 0x303F}, {0x3040, 0x31FF}, {0x3400, 0x4DBF},
        {0x4E00, 0x9FFF}, {0xF900, 0xFAFF}, {0xFF00, 0xFFEF}, {0x20000, 0x3FFFF},
    };
    return cp >= 0x2E80 && in_ranges(cp, r, SVC_ARRAY_LEN(r));
}

/* How cp ends a sentence: 0 not at all, 1 when whitespace follows (". "),
 * 2 by itself ("。", and scripts' own full stops and question marks). */
static int stop_kind(uint32_t cp)
{
    if (cp == '.' || cp == '!' || cp == '?' || cp == 0x2026)
        return 1;
    static const struct range r[] = {
        {0x061F, 0x061F}, {0x06D4, 0x06D4}, {0x0964, 0x0965}, {0x3002, 0x3002},
        {0xFF01, 0xFF01}, {0xFF0E, 0xFF0E}, {0xFF1F, 0xFF1F}, {0xFF61, 0xFF61},
    };
    return cp >= 0x61F && in_ranges(cp, r, SVC_ARRAY_LEN(r)) ? 2 : 0;
}

/* Closing quotes and brackets, which stay with the sentence end before them. */
static bool is_closer(uint32_t cp)
{
    switch (cp) {
    case ')':
    case ']':
    case '}':
    case '"':
    case '\'':
    case 0x00BB:
    case 0x2019:
    case 0x201D:
    case 0x3009:
    case 0x300B:
    case 0x300D:
    case 0x300F:
    case 0x3011:
    case 0xFF09:
        return true;
    default:
        return false;
    }
}

/* Incremental token estimate (the rule in chunker.h). */
struct tok {
    int64_t n;
    size_t run; /* length of the current ASCII letter/digit run */
};

static inline void tok_add(struct tok *t, const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    if (is_alnum(c)) {
        t->n += t->run % 3 == 0;
        t->run++;
        return;
    }
    t->run = 0;
    if (c >= 0x80)
        t->n += n > 1 ? (int64_t)n - 1 : c >= 0xC0; /* malformed: a lone lead byte counts 1 */
    else if (!is_space(c))
        t->n++;
}

int64_t chunker_token_estimate(const char *text, size_t len)
{
    const unsigned char *p = (const unsigned char *)text;
    int64_t tokens = 0;
    /* tok_add() byte by byte, with runs of letters and digits counted whole:
     * a run of L of them is ceil(L / 3) tokens */
    for (size_t i = 0; i < len;) {
        unsigned char c = p[i];
        if (is_alnum(c)) {
            size_t j = i + 1;
            while (j < len && is_alnum(p[j]))
                j++;
            tokens += (int64_t)((j - i + 2) / 3);
            i = j;
        } else if (c < 0x80) {
            tokens += !is_space(c);
            i++;
        } else {
            size_t n = cp_len(p, i, len);
            tokens += n > 1 ? (int64_t)n - 1 : c >= 0xC0; /* malformed: a lone lead byte counts 1 */
            i += n;
        }
    }
    return tokens == 0 && len > 0 ? 1 : tokens;
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
        unsigned char lo = 0x80, hi = 0xBF; /* the second byte's range */
        if (c >= 0xC2 && c <= 0xDF) {
            n = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 3;
            lo = c == 0xE0 ? 0xA0 : lo; /* overlong */
            hi = c == 0xED ? 0x9F : hi; /* surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 4;
            lo = c == 0xF0 ? 0x90 : lo; /* overlong */
            hi = c == 0xF4 ? 0x8F : hi; /* past U+10FFFF */
        } else {
            return false; /* a continuation byte, C0/C1 (overlong) or F5..FF */
        }
        if (len - i < n || p[i + 1] < lo || p[i + 1] > hi)
            return false;
        for (size_t k = 2; k < n; k++)
            if ((p[i + k] & 0xC0) != 0x80)
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

/* A place where a chunk may end: the chunk is [start, end), [end, brk) is
 * whitespace, and the next chunk (without overlap) starts at the first
 * non-space at or after brk. */
struct mark {
    size_t brk, brk_chars;
    size_t end, end_chars;
};

/* One chunk's scan. */
struct window {
    size_t start, start_chars;
    size_t stop, stop_chars;      /* where the scan stopped */
    bool eof;                     /* the rest of the text fits */
    struct mark last;             /* right after the last code point taken */
    struct mark para, sent, word; /* the last paragraph break, sentence end, whitespace */
};

/* Note the breaks at whitespace byte c, at q (code point qc). */
static void on_space(struct window *w, unsigned char c, size_t q, size_t qc, int *stop, bool *nl)
{
    struct mark m = {q, qc, w->last.end, w->last.end_chars};
    if (*stop)
        w->sent = m;
    *stop = 0;
    if (c == '\n') {
        if (*nl)
            w->para = m; /* the second line break of a blank line */
        w->sent = m;
        *nl = true;
    }
    w->word = m;
}

/* Scan the window of a chunk starting at start: take code points while the
 * limits hold, then look at up to PEEK_BYTES of whitespace for its breaks. */
static void scan_window(const unsigned char *p, size_t len, const struct chunk_opts *o,
                        size_t start, size_t start_chars, struct window *w)
{
    struct mark none = {start, start_chars, start, start_chars};
    *w = (struct window){start, start_chars, start, start_chars, false, none, none, none, none};
    struct tok t = {0, 0};
    int stop = 0;
    bool nl = false;
    size_t q = start, qc = start_chars, peek = 0;
    while (q < len) {
        bool full = qc - start_chars >= o->max_chars;
        if (is_space(p[q])) {
            if (full && ++peek > PEEK_BYTES)
                break;
            on_space(w, p[q], q, qc, &stop, &nl);
            t.run = 0;
            q++;
            qc++;
            continue;
        }
        if (is_alnum(p[q]) && !stop) { /* the common case: a run of ASCII letters and digits */
            size_t e = q, room = full ? 0 : o->max_chars - (qc - start_chars);
            int64_t n = t.n;
            size_t run = t.run;
            bool limit = false;
            while (e < len && is_alnum(p[e])) {
                int64_t add = run % 3 == 0;
                if (e - q >= room || n + add > o->max_tokens) {
                    limit = true;
                    break;
                }
                n += add;
                run++;
                e++;
            }
            if (e > q) {
                t.n = n;
                t.run = run;
                nl = false;
                qc += e - q;
                q = e;
                w->last = (struct mark){q, qc, q, qc};
            }
            if (limit)
                break;
            continue;
        }
        size_t n = cp_len(p, q, len);
        uint32_t cp = cp_decode(p + q, n);
        if (stop && !is_closer(cp)) {
            if (stop == 2)
                w->sent = (struct mark){q, qc, q, qc};
            stop = 0;
        }
        struct tok next = t;
        tok_add(&next, p + q, n);
        if (full || next.n > o->max_tokens)
            break;
        t = next;
        int k = stop_kind(cp);
        stop = k ? k : stop;
        nl = false;
        qc += (p[q] & 0xC0) != 0x80;
        q += n;
        w->last = (struct mark){q, qc, q, qc};
    }
    w->stop = q;
    w->stop_chars = qc;
    w->eof = q >= len;
}

/* Whether a cut at b (lo < b < len) keeps character sequences whole. */
static bool can_cut(const unsigned char *p, size_t len, size_t lo, size_t b)
{
    size_t a = cp_prev(p, b, lo);
    uint32_t prev = cp_decode(p + a, b - a), cur = cp_decode(p + b, cp_len(p, b, len));
    if (is_extend(cur) || prev == 0x200D)
        return false;
    if (!is_ri(prev) || !is_ri(cur))
        return true;
    /* regional indicators since the chunk start: cut between pairs only */
    size_t run = 0;
    for (size_t i = b; i > lo; run++) {
        i = cp_prev(p, i, lo);
        if (!is_ri(cp_decode(p + i, cp_len(p, i, len))))
            break;
    }
    return run % 2 == 0;
}

/* The chunk end when no boundary suits: the window's end, moved back by up to
 * MAX_BACKOFF code points (and half the window) not to split a sequence. */
static bool hard_cut(const unsigned char *p, size_t len, const struct window *w, size_t min_end,
                     struct mark *m)
{
    *m = w->last;
    m->brk = w->stop;
    m->brk_chars = w->stop_chars;
    if (w->last.end == w->stop) {
        size_t span = w->stop_chars - w->start_chars;
        size_t back = span / 2 < MAX_BACKOFF ? span / 2 : MAX_BACKOFF;
        size_t b = w->stop;
        for (size_t k = 0; k < back && b > w->start && !can_cut(p, len, w->start, b); k++)
            b = cp_prev(p, b, w->start);
        if (b < w->stop && b > w->start && can_cut(p, len, w->start, b)) {
            size_t bc = w->stop_chars - utf8_count((const char *)p + b, w->stop - b);
            size_t e = b;
            while (e > w->start && is_space(p[e - 1]))
                e--;
            if (e > min_end && e > w->start)
                *m = (struct mark){b, bc, e, bc - (b - e)};
        }
    }
    return m->end > min_end;
}

/* Whether mark m can end the chunk: past min_end, and leaving at least
 * 1/den of the window (short chunks would cost scans and embeddings). */
static bool usable(const struct window *w, const struct mark *m, size_t min_end, size_t den)
{
    size_t span = w->stop_chars - w->start_chars;
    return m->brk > w->start && m->end > min_end &&
           m->brk_chars - w->start_chars >= (span + den - 1) / den;
}

/* The end of the chunk scanned in w, which must pass min_end (the previous
 * chunk's end); false when no end does. */
static bool pick_end(const unsigned char *p, size_t len, const struct window *w, size_t min_end,
                     struct mark *m)
{
    if (w->eof) {
        *m = w->last;
        m->brk = w->stop;
        m->brk_chars = w->stop_chars;
        return m->end > min_end;
    }
    if (usable(w, &w->para, min_end, 4))
        *m = w->para;
    else if (usable(w, &w->sent, min_end, 3))
        *m = w->sent;
    else if (usable(w, &w->word, min_end, 4))
        *m = w->word;
    else
        return hard_cut(p, len, w, min_end, m);
    return true;
}

/* Where the chunk after the one in w (ending at m) starts when it overlaps
 * it: the first word start at most ov code points before the end and past
 * the middle of the chunk. Where the text has no whitespace (a hard cut, CJK)
 * any character boundary will do. False when there is none. */
static bool overlap_start(const unsigned char *p, const struct window *w, const struct mark *m,
                          size_t ov, size_t *s, size_t *s_chars)
{
    size_t lo = w->start_chars + (m->brk_chars - w->start_chars) / 2 + 1;
    if (m->end_chars <= lo)
        return false;
    size_t k = m->end_chars - lo < ov ? m->end_chars - lo : ov;
    size_t b = m->end;
    for (size_t seen = 0; seen < k && b > w->start;)
        seen += (p[--b] & 0xC0) != 0x80;
    if (b <= w->start)
        return false;
    bool any = !is_space(p[m->brk]); /* the chunk ends inside a run of text */
    size_t a = cp_prev(p, b, w->start);
    uint32_t prev = cp_decode(p + a, b - a);
    for (size_t i = b; i < m->end;) {
        size_t n = cp_len(p, i, m->end);
        uint32_t cur = cp_decode(p + i, n);
        bool joined = is_extend(cur) || prev == 0x200D || (is_ri(prev) && is_ri(cur));
        bool word =
            any || (prev < 0x80 && is_space((unsigned char)prev)) || is_cjk(prev) || is_cjk(cur);
        if (!is_space(p[i]) && !joined && word) {
            *s = i;
            *s_chars = m->end_chars - utf8_count((const char *)p + i, m->end - i);
            return true;
        }
        prev = cur;
        i += n;
    }
    return false;
}

static void skip_space(const unsigned char *p, size_t len, size_t *pos, size_t *chars)
{
    while (*pos < len && is_space(p[*pos])) {
        (*pos)++;
        (*chars)++;
    }
}

struct chunk_list {
    struct chunk *a;
    size_t n, cap;
};

static bool push(struct chunk_list *l, struct chunk c)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        if (cap > SIZE_MAX / sizeof(*l->a))
            return false;
        struct chunk *a = realloc(l->a, cap * sizeof(*l->a));
        if (!a)
            return false;
        l->a = a;
        l->cap = cap;
    }
    l->a[l->n++] = c;
    return true;
}

bool chunker_split(const char *text, size_t len, const struct chunk_opts *o, struct chunk **out,
                   size_t *n)
{
    *out = NULL;
    *n = 0;
    if (o->max_chars == 0 || o->overlap_chars >= o->max_chars || o->max_tokens < 4)
        return false;
    const unsigned char *p = (const unsigned char *)text;
    struct chunk_list l = {NULL, 0, 0};
    size_t pos = 0, pos_chars = 0, prev_end = 0;
    skip_space(p, len, &pos, &pos_chars);
    size_t next = pos, next_chars = pos_chars; /* the start without overlap */
    while (pos < len) {
        struct window w;
        struct mark m;
        scan_window(p, len, o, pos, pos_chars, &w);
        if (!pick_end(p, len, &w, prev_end, &m)) {
            /* the overlap left no room for new text: do without it */
            pos = next;
            pos_chars = next_chars;
            scan_window(p, len, o, pos, pos_chars, &w);
            (void)pick_end(p, len, &w, pos, &m); /* succeeds: the window holds a code point */
        }
        struct chunk c = {pos, m.end, pos_chars, m.end_chars,
                          chunker_token_estimate(text + pos, m.end - pos)};
        if (!push(&l, c)) {
            free(l.a);
            return false;
        }
        prev_end = m.end;
        next = m.brk;
        next_chars = m.brk_chars;
        skip_space(p, len, &next, &next_chars);
        if (next >= len)
            break;
        if (o->overlap_chars == 0 ||
            !overlap_start(p, &w, &m, o->overlap_chars, &pos, &pos_chars)) {
            pos = next;
            pos_chars = next_chars;
        }
    }
    *out = l.a;
    *n = l.n;
    return true;
}
