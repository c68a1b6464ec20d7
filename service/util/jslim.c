/* jslim.c: see jslim.h. A push tokenizer (any piece boundaries) with a grammar stack. */
#include "util/jslim.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum tok { T_WS, T_STR, T_ESC, T_HEX, T_NUM, T_LIT };

/* what a container expects next */
enum expect { E_KEY_OR_END, E_KEY, E_COLON, E_VALUE, E_VALUE_OR_END, E_COMMA_OR_END };

/* top-level progress */
enum { TOP_NONE, TOP_IN, TOP_DONE };

static bool fail(struct jslim *s, const char *fmt, ...) SVC_PRINTF(2, 3);

static bool fail(struct jslim *s, const char *fmt, ...)
{
    if (s->err[0])
        return false;
    char what[120];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    snprintf(s->err, sizeof(s->err), "%s at byte %zu", what, s->offset);
    return false;
}

void jslim_init(struct jslim *s, size_t max_out)
{
    memset(s, 0, sizeof(*s));
    buf_init(&s->out, max_out);
    s->cbad = -1;
}

void jslim_cleanup(struct jslim *s)
{
    buf_cleanup(&s->out);
    for (size_t i = 0; i < s->nvec; i++)
        free(s->vecs[i].v);
    free(s->vecs);
    free(s->cv);
    s->vecs = NULL;
    s->cv = NULL;
    s->nvec = s->capvec = s->cn = s->ccap = 0;
}

void jslim_set_hooks(struct jslim *s, const struct jslim_hooks *h)
{
    s->hooks = *h;
}

bool jslim_path_is(const struct jslim *s, const char *const *names, int n)
{
    if (s->depth != n + 1 || s->stack[0].kind != '{')
        return false;
    for (int i = 0; i < n; i++) {
        const struct jslim_frame *f = &s->stack[i + 1];
        size_t l = strlen(names[i]);
        if (!f->member || l > sizeof(f->name) || f->name_len != l || memcmp(f->name, names[i], l))
            return false;
    }
    return true;
}

bool jslim_take(struct jslim *s, size_t k, float **v, int *dims, int *bad)
{
    if (k >= s->nvec || s->vecs[k].taken)
        return false;
    *v = s->vecs[k].v;
    *dims = s->vecs[k].dims;
    *bad = s->vecs[k].bad;
    s->vecs[k].v = NULL;
    s->vecs[k].taken = true;
    return true;
}

/* Output is written only outside a captured "values" array. */
static bool emit(struct jslim *s, const char *p, size_t n)
{
    if (s->capture || buf_append(&s->out, p, n))
        return true;
    if (s->out.len + n > s->out.max) {
        s->limit = true;
        return fail(s, "the response is too large to process");
    }
    return fail(s, "out of memory");
}

static bool emit_c(struct jslim *s, char c)
{
    return emit(s, &c, 1);
}

static struct jslim_frame *frame(struct jslim *s)
{
    return s->depth ? &s->stack[s->depth - 1] : NULL;
}

static bool push(struct jslim *s, unsigned char kind)
{
    if (s->depth == (int)(sizeof(s->stack) / sizeof(s->stack[0])))
        return fail(s, "nesting deeper than %d", s->depth);
    const struct jslim_frame *parent = frame(s);
    struct jslim_frame *f = &s->stack[s->depth++];
    f->kind = kind;
    f->expect = kind == '{' ? E_KEY_OR_END : E_VALUE_OR_END;
    f->count = 0;
    /* the parent object's current member name is its key (kept from the key string) */
    f->member = parent && parent->kind == '{';
    f->name_len = 0;
    if (f->member) {
        f->name_len = s->keylen > sizeof(f->name) ? 255 : (unsigned char)s->keylen;
        memcpy(f->name, s->key, s->keylen < sizeof(f->name) ? s->keylen : sizeof(f->name));
    }
    return true;
}

/* The current element of the chosen array is complete: hand it over, then
 * drop its text (and the comma before it) and its vectors. */
static bool element_done(struct jslim *s)
{
    bool ok = true;
    if (s->hooks.element)
        ok = s->hooks.element(s->hooks.ud, s, s->el_cls, s->out.data + s->el_start,
                              s->out.len - s->el_start);
    s->out.len = s->el_mark;
    if (s->out.data)
        s->out.data[s->out.len] = '\0';
    for (size_t i = s->el_vec; i < s->nvec; i++)
        free(s->vecs[i].v);
    s->nvec = s->el_vec;
    return ok || fail(s, "refused by its reader");
}

/* a finished "values" array: store its vector, write what stands for it */
static bool end_capture(struct jslim *s, int elements)
{
    s->capture = 0;
    if (elements == 0)
        return emit(s, s->ccomma ? ",\"values\":[]" : "\"values\":[]", s->ccomma ? 12 : 11);
    if (s->nvec == s->capvec) {
        size_t cap = s->capvec ? s->capvec * 2 : 64;
        struct jslim_vec *bigger = realloc(s->vecs, cap * sizeof(*bigger));
        if (!bigger)
            return fail(s, "out of memory");
        s->vecs = bigger;
        s->capvec = cap;
    }
    struct jslim_vec *v = &s->vecs[s->nvec];
    v->dims = elements;
    v->bad = s->cbad;
    v->v = NULL;
    v->taken = false;
    if (s->cbad < 0) {
        /* give the array its exact size (the spare room would be kept for hours) */
        float *exact = realloc(s->cv, (size_t)elements * sizeof(float));
        v->v = exact ? exact : s->cv;
        s->cv = NULL;
        s->ccap = 0;
    }
    s->cn = 0;
    s->cbad = -1;
    char ref[48];
    int n = snprintf(ref, sizeof(ref), "%s\"\\u0001v\":%zu", s->ccomma ? "," : "", s->nvec);
    s->nvec++;
    return emit(s, ref, (size_t)n);
}

/* A value begins (kind: '{', '[', '"', '0' number, 'l' literal): is one allowed here? */
static bool begin_value(struct jslim *s, char kind, bool *key)
{
    struct jslim_frame *f = frame(s);
    *key = false;
    if (!f) {
        if (s->top != TOP_NONE)
            return fail(s, "more than one JSON value");
        s->top = TOP_IN;
        return true;
    }
    if (f->kind == '{') {
        if (kind == '"' && (f->expect == E_KEY_OR_END || f->expect == E_KEY)) {
            *key = true;
            s->mark = s->out.len;
            s->ccomma = f->count > 0;
            f->count++;
            f->expect = E_COLON;
            return !s->ccomma || emit_c(s, ',');
        }
        if (f->expect != E_VALUE)
            return fail(s, f->expect == E_COLON          ? "expected ':'"
                           : f->expect == E_COMMA_OR_END ? "expected ',' or '}'"
                                                         : "expected a member name");
        f->expect = E_COMMA_OR_END;
        return true;
    }
    if (f->expect != E_VALUE && f->expect != E_VALUE_OR_END)
        return fail(s, "expected ',' or ']'");
    int idx = f->count++;
    f->expect = E_COMMA_OR_END;
    if (s->capture == s->depth) {
        /* an element of a "values" array: only numbers are fine */
        if (kind != '0' && s->cbad < 0)
            s->cbad = idx;
        return true;
    }
    if (s->el_depth == s->depth) { /* an element of a chosen array */
        s->el_mark = s->out.len;
        s->el_vec = s->nvec;
        bool ok = idx == 0 || emit_c(s, ',');
        s->el_start = s->out.len;
        return ok;
    }
    return idx == 0 || emit_c(s, ',');
}

/* A value ended (its text written); at depth 0 the text is complete. */
static bool end_value(struct jslim *s)
{
    if (!s->depth)
        s->top = TOP_DONE;
    if (s->el_depth && s->depth == s->el_depth)
        return element_done(s);
    return true;
}

static bool open_container(struct jslim *s, char c)
{
    bool key;
    struct jslim_frame *f = frame(s);
    bool values_member = f && f->kind == '{' && f->expect == E_VALUE && s->keylen == 6 &&
                         memcmp(s->key, "values", 6) == 0;
    if (!begin_value(s, c, &key))
        return false;
    if (c == '[' && values_member && !s->capture) {
        /* take back the member name written so far: a reference replaces it */
        s->out.len = s->mark;
        if (s->out.data)
            s->out.data[s->out.len] = '\0';
        if (!push(s, '['))
            return false;
        s->capture = s->depth;
        s->cn = 0;
        s->cbad = -1;
        return true;
    }
    if (!emit_c(s, c) || !push(s, (unsigned char)c))
        return false;
    if (c == '[' && !s->capture && !s->el_depth && s->hooks.select) {
        int cls = s->hooks.select(s->hooks.ud, s);
        if (cls > 0) {
            s->el_depth = s->depth;
            s->el_cls = cls;
        }
    }
    return true;
}

static bool close_container(struct jslim *s, char c)
{
    struct jslim_frame *f = frame(s);
    if (!f || f->kind != (c == '}' ? '{' : '['))
        return fail(s, "unexpected '%c'", c);
    if (c == '}' ? f->expect != E_KEY_OR_END && f->expect != E_COMMA_OR_END
                 : f->expect != E_VALUE_OR_END && f->expect != E_COMMA_OR_END)
        return fail(s, "unexpected '%c'", c);
    bool ok;
    int count = f->count;
    if (s->el_depth == s->depth)
        s->el_depth = 0; /* the chosen array ends */
    if (s->capture == s->depth) {
        s->depth--;
        ok = end_capture(s, count);
    } else {
        s->depth--;
        ok = emit_c(s, c);
    }
    return ok && end_value(s);
}

static bool punct(struct jslim *s, char c)
{
    struct jslim_frame *f = frame(s);
    if (c == ':') {
        if (!f || f->kind != '{' || f->expect != E_COLON)
            return fail(s, "unexpected ':'");
        f->expect = E_VALUE;
        return emit_c(s, ':');
    }
    if (!f || f->expect != E_COMMA_OR_END)
        return fail(s, "unexpected ','");
    f->expect = f->kind == '{' ? E_KEY : E_VALUE; /* the comma is written with what follows */
    return true;
}

static const double pow10_exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* An exponent's [+-]digits from q (past the 'e'), at most max_digits of them
 * read (larger values saturate); the end, or NULL when there is no digit. */
static const char *exponent(const char *q, const char *end, size_t max_digits, int *e)
{
    bool neg = q < end && *q == '-';
    q += q < end && (*q == '-' || *q == '+');
    const char *digits = q;
    int v = 0;
    for (; q < end && (unsigned)(*q - '0') < 10 && (size_t)(q - digits) < max_digits; q++)
        v = v < 100000 ? v * 10 + (*q - '0') : v;
    *e = neg ? -v : v;
    return q == digits ? NULL : q;
}

/*
 * Check a number's text against the JSON grammar
 * -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? and, if want, compute it as
 * a correctly rounded double: exactly what strtod gives. Most embedding
 * values ("-0.012345678") take the fast path: a mantissa below 2^53 and a
 * power of ten up to 1e22 are both exact doubles, so one IEEE division or
 * multiplication rounds correctly (Clinger). false: not a JSON number.
 */
static bool scan_number(const char *p, size_t n, bool want, double *out)
{
    const char *q = p, *end = p + n;
    bool neg = q < end && *q == '-';
    q += neg;
    uint64_t m = 0;
    int digits = 0, exp10 = 0;
    const char *int_start = q;
    for (; q < end && (unsigned)(*q - '0') < 10; q++) {
        if (digits < 19) {
            m = m * 10 + (uint64_t)(*q - '0');
            digits += m != 0;
        } else {
            exp10++;
            digits++;
        }
    }
    size_t int_len = (size_t)(q - int_start);
    if (int_len == 0 || (int_len > 1 && *int_start == '0'))
        return false;
    if (q < end && *q == '.') {
        const char *frac = ++q;
        for (; q < end && (unsigned)(*q - '0') < 10; q++) {
            if (digits < 19) {
                m = m * 10 + (uint64_t)(*q - '0');
                digits += m != 0;
                exp10--;
            } else {
                digits++;
            }
        }
        if (q == frac)
            return false;
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        int e;
        if (!(q = exponent(q + 1, end, SIZE_MAX, &e)))
            return false;
        exp10 += e;
    }
    if (q != end)
        return false;
    if (!want)
        return true;
    if (digits <= 19 && m <= ((uint64_t)1 << 53) && exp10 >= -22 && exp10 <= 22) {
        double d = (double)m;
        d = exp10 < 0 ? d / pow10_exact[-exp10] : d * pow10_exact[exp10];
        *out = neg ? -d : d;
        return true;
    }
    char tmp[sizeof(((struct jslim *)0)->num) + 1];
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    *out = strtod(tmp, NULL);
    return true;
}

static bool push_float(struct jslim *s, float v)
{
    if (s->cn == s->ccap) {
        size_t cap = s->ccap ? s->ccap * 2 : 1024;
        float *bigger = realloc(s->cv, cap * sizeof(float));
        if (!bigger)
            return fail(s, "out of memory");
        s->cv = bigger;
        s->ccap = cap;
    }
    s->cv[s->cn++] = v;
    return true;
}

static bool end_number(struct jslim *s)
{
    struct jslim_frame *f = frame(s);
    bool element = f && s->capture == s->depth;
    double d = 0;
    if (!scan_number(s->num, s->numlen, element && s->cbad < 0, &d))
        return fail(s, "malformed number");
    if (element) {
        if (s->cbad >= 0)
            return true;
        float v = (float)d;
        if (!isfinite(v)) {
            s->cbad = f->count - 1;
            return true;
        }
        return push_float(s, v);
    }
    return emit(s, s->num, s->numlen) && end_value(s);
}

/* characters that can be part of a number */
static bool num_char(char c)
{
    return (unsigned)(c - '0') < 10 || c == '.' || c == 'e' || c == 'E' || c == '-' || c == '+';
}

static bool end_string(struct jslim *s)
{
    if (!emit_c(s, '"'))
        return false;
    if (s->in_key) {
        if (s->keylen == 7 && memcmp(s->key, "\\u0001v", 7) == 0)
            return fail(s, "a member named \\u0001v");
        return true; /* keylen and key stay for the value that follows */
    }
    return end_value(s);
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool starts_number(char c)
{
    return c == '-' || (unsigned)(c - '0') < 10;
}

/*
 * The common number in one pass: at most 19 digits, a power of ten within
 * 1e±22, ended by a character in this piece that cannot belong to it. *out
 * is then exactly what scan_number gives. NULL: anything else (the caller
 * takes the general path).
 */
static const char *fast_number(const char *p, const char *end, double *out)
{
    const char *q = p;
    bool neg = *q == '-';
    q += neg;
    uint64_t m = 0;
    const char *ds = q;
    while (q < end && (unsigned)(*q - '0') < 10)
        m = m * 10 + (uint64_t)(*q++ - '0');
    size_t nd = (size_t)(q - ds);
    if (nd == 0 || (nd > 1 && *ds == '0'))
        return NULL;
    int exp10 = 0;
    if (q < end && *q == '.') {
        const char *fs = ++q;
        while (q < end && (unsigned)(*q - '0') < 10)
            m = m * 10 + (uint64_t)(*q++ - '0');
        if (q == fs)
            return NULL;
        exp10 = -(int)(q - fs);
        nd += (size_t)(q - fs);
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        int e;
        if (!(q = exponent(q + 1, end, 4, &e)))
            return NULL;
        exp10 += e;
    }
    if (q == end || num_char(*q) || nd > 19 || m > ((uint64_t)1 << 53) || exp10 < -22 || exp10 > 22)
        return NULL;
    double d = (double)m;
    d = exp10 < 0 ? d / pow10_exact[-exp10] : d * pow10_exact[exp10];
    *out = neg ? -d : d;
    return q;
}

/*
 * Inside a "values" array, at an element: numbers and commas taken straight
 * from the piece, without the character-by-character state machine (this is
 * almost all of a batch's body). It stops, leaving the rest to the state
 * machine, at anything else: the closing bracket, a bad or non-finite
 * number, or a number that may go on in the next piece. Returns the bytes
 * it consumed (0: none); false only when memory ran out.
 */
static bool fast_values(struct jslim *s, const char *p, const char *end, size_t *used)
{
    struct jslim_frame *f = &s->stack[s->depth - 1];
    const char *start = p;
    *used = 0;
    for (;;) {
        double d;
        const char *q = fast_number(p, end, &d);
        if (!q)
            break;
        float v = (float)d;
        if (!isfinite(v))
            break;
        if (!push_float(s, v))
            return false;
        f->count++;
        f->expect = E_COMMA_OR_END;
        p = q;
        while (p < end && is_ws(*p))
            p++;
        if (p == end || *p != ',')
            break;
        const char *r = p + 1;
        while (r < end && is_ws(*r))
            r++;
        if (r == end || !starts_number(*r))
            break;
        f->expect = E_VALUE;
        p = r;
    }
    *used = (size_t)(p - start);
    return true;
}

bool jslim_feed(struct jslim *s, const char *p, size_t n)
{
    if (s->err[0])
        return false;
    const char *end = p + n;
    while (p < end) {
        char c = *p;
        switch (s->tok) {
        case T_WS: {
            if (is_ws(c))
                break;
            if (s->capture && s->capture == s->depth && s->cbad < 0 && starts_number(c) &&
                (s->stack[s->depth - 1].expect == E_VALUE ||
                 s->stack[s->depth - 1].expect == E_VALUE_OR_END)) {
                size_t used;
                if (!fast_values(s, p, end, &used))
                    return false;
                if (used) {
                    p += used;
                    s->offset += used;
                    continue;
                }
            }
            if (s->top == TOP_DONE)
                return fail(s, "text after the JSON value");
            bool key, ok;
            switch (c) {
            case '{':
            case '[':
                ok = open_container(s, c);
                break;
            case '}':
            case ']':
                ok = close_container(s, c);
                break;
            case ':':
            case ',':
                ok = punct(s, c);
                break;
            case '"':
                ok = begin_value(s, '"', &key) && emit_c(s, '"');
                s->in_key = key;
                s->keylen = 0;
                s->tok = T_STR;
                break;
            case 't':
            case 'f':
            case 'n':
                ok = begin_value(s, 'l', &key);
                s->lit = c == 't' ? "true" : c == 'f' ? "false" : "null";
                s->lit_pos = 1;
                s->tok = T_LIT;
                break;
            default:
                if (c != '-' && !(c >= '0' && c <= '9'))
                    return fail(s, "unexpected character 0x%02x", (unsigned char)c);
                ok = begin_value(s, '0', &key);
                s->numlen = 0;
                s->tok = T_NUM;
                if (!ok)
                    return false;
                continue; /* the number's first character is read as part of it */
            }
            if (!ok)
                return false;
            break;
        }
        case T_STR: {
            /* a run of plain characters in one go */
            const char *q = p;
            while (q < end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20)
                q++;
            size_t run = (size_t)(q - p);
            if (run) {
                if (s->in_key && s->keylen < sizeof(s->key))
                    memcpy(s->key + s->keylen, p,
                           run < sizeof(s->key) - s->keylen ? run : sizeof(s->key) - s->keylen);
                s->keylen += run;
                if (!emit(s, p, run))
                    return false;
                s->offset += run;
                p = q;
                continue;
            }
            if ((unsigned char)c < 0x20)
                return fail(s, "control character in a string");
            if (c == '"') {
                s->tok = T_WS;
                if (!end_string(s))
                    return false;
                break;
            }
            s->tok = T_ESC; /* a backslash */
            goto keep;
        }
        case T_ESC:
            if (!strchr("\"\\/bfnrtu", c) || c == '\0')
                return fail(s, "invalid escape in a string");
            s->tok = c == 'u' ? T_HEX : T_STR;
            s->hex_left = 4;
            goto keep;
        case T_HEX:
            if (!is_hex(c))
                return fail(s, "invalid \\u escape in a string");
            if (--s->hex_left == 0)
                s->tok = T_STR;
            goto keep;
        case T_NUM: {
            /* the rest of the number in one go; checked and converted at its end */
            const char *q = p;
            while (q < end && num_char(*q))
                q++;
            size_t run = (size_t)(q - p);
            if (run > sizeof(s->num) - s->numlen)
                return fail(s, "number longer than %zu characters", sizeof(s->num));
            memcpy(s->num + s->numlen, p, run);
            s->numlen += run;
            s->offset += run;
            p = q;
            if (p == end)
                continue; /* more may follow in the next piece */
            s->tok = T_WS;
            if (!end_number(s))
                return false;
            continue; /* *p is read again as what follows the number */
        }
        case T_LIT:
            if (c != s->lit[s->lit_pos])
                return fail(s, "invalid literal");
            if (s->lit[++s->lit_pos] == '\0') {
                s->tok = T_WS;
                if (!emit(s, s->lit, strlen(s->lit)) || !end_value(s))
                    return false;
            }
            break;
        }
        p++;
        s->offset++;
        continue;
    keep:
        /* a character of a string escape: copied, and part of the member name */
        if (s->in_key && s->keylen < sizeof(s->key))
            s->key[s->keylen] = c;
        s->keylen++;
        if (!emit_c(s, c))
            return false;
        p++;
        s->offset++;
    }
    return true;
}

bool jslim_finish(struct jslim *s)
{
    if (s->err[0])
        return false;
    if (s->tok == T_NUM) {
        s->tok = T_WS;
        if (!end_number(s))
            return false;
    }
    if (s->tok != T_WS || s->depth || s->top != TOP_DONE)
        return fail(s, s->top == TOP_NONE ? "no JSON value" : "incomplete JSON (truncated?)");
    if (!s->out.data && !buf_reserve(&s->out, 1))
        return fail(s, "out of memory");
    return true;
}
