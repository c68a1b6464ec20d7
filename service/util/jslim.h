/*
 * jslim.h: a streaming JSON "slimmer" for large embedding responses.
 *
 * A batch's inline results are one JSON document of hundreds of megabytes,
 * almost all of it the numbers of "values" arrays. Handing that to json-c
 * costs a heap object per number (gigabytes, and most of the time). jslim
 * reads the text in pieces of any size, checks that it is RFC 8259 JSON,
 * and copies it (without insignificant whitespace) to a small "slim" text in
 * which every non-empty array that is the value of a member named "values"
 * is replaced by the member "\u0001v": K. K indexes a table of float32
 * vectors parsed on the way (number by number, no object per number), which
 * the caller takes with jslim_take(). The slim text is then small enough for
 * json-c, and everything else keeps its usual meaning.
 *
 * A member named "\u0001v" in the input is an error (it would be taken for a
 * reference). A "values" array holding anything but finite float32 numbers
 * is still replaced; its entry records the index of the first bad element.
 */
#ifndef SVC_UTIL_JSLIM_H
#define SVC_UTIL_JSLIM_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"
#include "util/compiler.h"

/* The member name that replaces "values" in the slim text (as written in it). */
#define JSLIM_REF_KEY "\001v"

struct jslim_vec {
    float *v; /* owned until taken; NULL once taken */
    int dims; /* number of elements of the array */
    int bad;  /* -1; else the index of the first element that is not a finite float32 */
    bool taken;
};

struct jslim_frame {
    unsigned char kind;     /* '{' or '[' */
    unsigned char expect;   /* what the grammar wants next in this container */
    bool member;            /* the container is an object member's value (name below) */
    unsigned char name_len; /* bytes of its member name as written (255: more than 16) */
    char name[16];          /* the head of that name */
    int count;              /* members or elements seen so far */
};

struct jslim;

/*
 * Optional: the elements of chosen arrays handed over one at a time, each as
 * soon as it is complete, and then dropped from the slim text (which keeps
 * the array, empty) together with its vectors: memory holds one element, not
 * the array. Not nested: an array inside a chosen array's element is never
 * chosen.
 */
struct jslim_hooks {
    /* An array begins (it is the innermost frame, s->stack[s->depth - 1]; see
     * jslim_path_is): a class > 0 chooses it, 0 does not. */
    int (*select)(void *ud, const struct jslim *s);
    /* An element of a chosen array of class cls, as slim text p[0..n) (its
     * vectors taken with jslim_take, before the call returns). NULL: elements
     * are only dropped. false refuses the text (feeding fails). */
    bool (*element)(void *ud, struct jslim *s, int cls, const char *p, size_t n);
    void *ud;
};

struct jslim {
    struct buf out;         /* the slim text */
    struct jslim_vec *vecs; /* the vectors, in the order their arrays appear */
    size_t nvec, capvec;
    struct jslim_frame stack[64];
    int depth;     /* frames in use */
    int tok;       /* tokenizer state (private) */
    int top;       /* top-level progress (private) */
    size_t mark;   /* out.len before the current member's comma and key */
    char key[16];  /* head of the current string, raw (for member names) */
    size_t keylen; /* bytes of the string so far (may pass sizeof key) */
    bool in_key;   /* the string being read is a member name */
    char num[512]; /* the number being read, for conversion */
    size_t numlen;
    int lit_pos;     /* position in the literal being matched */
    const char *lit; /* "true", "false" or "null" */
    int hex_left;    /* \uXXXX digits still to read */
    int capture;     /* depth of the "values" array being parsed; 0 = none */
    float *cv;       /* its numbers */
    size_t cn, ccap; /* count and capacity of cv */
    int cbad;        /* first bad element, -1 if none */
    bool ccomma;     /* a comma goes before its replacement member */
    size_t offset;   /* bytes consumed in all */
    char err[160];   /* why the text was refused; "" while fine */
    bool limit;      /* refused for passing max_out (not for its syntax) */
    struct jslim_hooks hooks;
    int el_depth;    /* depth of the chosen array being read; 0 = none */
    int el_cls;      /* its class */
    size_t el_mark;  /* out.len before the current element (and its comma) */
    size_t el_start; /* out.len where the current element's text starts */
    size_t el_vec;   /* nvec before the current element */
};

/* Start a slimmer whose slim text may grow to at most max_out bytes. */
void jslim_init(struct jslim *s, size_t max_out);
/* Set hooks (before the first feed). */
void jslim_set_hooks(struct jslim *s, const struct jslim_hooks *h);
/* Whether the innermost container is at names[0] / names[1] / ... /
 * names[n-1] under the top-level object: frame i + 1 is the value of member
 * names[i] (exact names of at most 16 bytes, as written). */
bool jslim_path_is(const struct jslim *s, const char *const *names, int n);
/* Free everything, including vectors not taken. */
void jslim_cleanup(struct jslim *s);
/* Feed the next piece of the text. false: it is not JSON (or a limit or
 * memory ran out); the reason is in s->err and further feeding is refused. */
bool jslim_feed(struct jslim *s, const char *p, size_t n) SVC_MUSTCHECK;
/* The text is complete: true when it held exactly one JSON value. */
bool jslim_finish(struct jslim *s) SVC_MUSTCHECK;
/* Take vector k: *v (owned by the caller from now on; NULL when bad >= 0),
 * *dims and *bad as in struct jslim_vec. false if k is out of range or was
 * taken before. */
bool jslim_take(struct jslim *s, size_t k, float **v, int *dims, int *bad) SVC_MUSTCHECK;

#endif
