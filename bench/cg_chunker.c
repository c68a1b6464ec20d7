/*
 * cg_chunker.c: the chunker workload of the "callgrind" benchmark figure.
 *
 * Builds N documents (default 1,000) of deterministic English-like prose of
 * about 1 KB each (sentences of dictionary words, now and then a paragraph
 * break), then splits every one with chunker_split() under the job defaults
 * (CHUNK_DEFAULT_MAX_CHARS, CHUNK_DEFAULT_OVERLAP_CHARS,
 * CHUNK_DEFAULT_MAX_TOKENS), as jobs_create() does. Only cg_measured() is
 * meant to be counted: bench/callgrind.sh runs this under
 *
 *   valgrind --tool=callgrind --toggle-collect=cg_measured cg_chunker
 *
 * Prints "documents D chunks C bytes B" on stdout.
 */
#include "chunker/chunker.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DOC_BYTES 1000

static const char *const words[] = {
    "the",       "embedding", "service",  "splits",   "documents", "into",     "chunks",
    "of",        "text",      "and",      "sends",    "them",      "to",       "a",
    "batch",     "endpoint",  "where",    "each",     "request",   "carries",  "one",
    "paragraph", "model",     "returns",  "vectors",  "that",      "are",      "stored",
    "with",      "their",     "offsets",  "so",       "clients",   "can",      "find",
    "passages",  "later",     "quickly",  "river",    "mountain",  "library",  "evening",
    "careful",   "simple",    "northern", "question", "answer",    "measure",  "between",
    "through",   "although",  "because",  "several",  "children",  "received", "letters",
};

#define N_WORDS (sizeof(words) / sizeof(words[0]))

/* xorshift64*: reproducible pseudo-random numbers without libc state. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

/* One document of about DOC_BYTES bytes into out (which holds DOC_BYTES + 64). */
static size_t make_doc(char *out, uint64_t *seed)
{
    size_t len = 0;
    while (len < DOC_BYTES) {
        int n_words = 6 + (int)(rng_next(seed) % 14);
        for (int w = 0; w < n_words && len < DOC_BYTES + 32; w++) {
            const char *word = words[rng_next(seed) % N_WORDS];
            size_t wl = strlen(word);
            memcpy(out + len, word, wl);
            if (w == 0 && out[len] >= 'a' && out[len] <= 'z')
                out[len] = (char)(out[len] - 'a' + 'A');
            len += wl;
            if (w + 1 < n_words)
                out[len++] = rng_next(seed) % 11 == 0 ? ',' : ' ';
            if (out[len - 1] == ',')
                out[len++] = ' ';
        }
        out[len++] = '.';
        if (len < DOC_BYTES) {
            bool para = rng_next(seed) % 5 == 0;
            out[len++] = para ? '\n' : ' ';
            if (para)
                out[len++] = '\n';
        }
    }
    out[len] = '\0';
    return len;
}

struct doc {
    char *text;
    size_t len;
};

size_t cg_measured(const struct doc *docs, size_t n);

/* The counted work: chunk every document, as jobs_create() does. */
__attribute__((noinline)) size_t cg_measured(const struct doc *docs, size_t n)
{
    const struct chunk_opts o = {.max_chars = CHUNK_DEFAULT_MAX_CHARS,
                                 .overlap_chars = CHUNK_DEFAULT_OVERLAP_CHARS,
                                 .max_tokens = CHUNK_DEFAULT_MAX_TOKENS};
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        struct chunk *ch = NULL;
        size_t nc = 0;
        if (!chunker_split(docs[i].text, docs[i].len, &o, &ch, &nc))
            return 0;
        total += nc;
        free(ch);
    }
    return total;
}

int main(int argc, char **argv)
{
    long n = 1000;
    if (argc > 1) {
        char *end;
        n = strtol(argv[1], &end, 10);
        if (*end || n < 1 || n > 10000000) {
            fprintf(stderr, "usage: cg_chunker [DOCUMENTS]\n");
            return 2;
        }
    }
    struct doc *docs = calloc((size_t)n, sizeof(*docs));
    if (!docs) {
        fprintf(stderr, "cg_chunker: out of memory\n");
        return 1;
    }
    uint64_t seed = 0x9E3779B97F4A7C15ULL;
    size_t bytes = 0;
    int rc = 0;
    for (long i = 0; i < n && rc == 0; i++) {
        docs[i].text = malloc(DOC_BYTES + 64);
        if (!docs[i].text)
            rc = 1;
        else
            bytes += docs[i].len = make_doc(docs[i].text, &seed);
    }
    size_t chunks = rc == 0 ? cg_measured(docs, (size_t)n) : 0;
    if (rc == 0 && chunks == 0)
        rc = 1;
    if (rc == 0)
        printf("documents %ld chunks %zu bytes %zu\n", n, chunks, bytes);
    else
        fprintf(stderr, "cg_chunker: out of memory\n");
    for (long i = 0; i < n; i++)
        free(docs[i].text);
    free(docs);
    return rc;
}
