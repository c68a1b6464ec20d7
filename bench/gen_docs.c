/*
 * gen_docs.c: the benchmark's deterministic document generator. Writes a job
 * request of prose-like documents, either as one JSON body or as NDJSON (line 1
 * the job options, then one document per line), to stdout or --out.
 *
 *   gen_docs --docs N [--doc-bytes B] [--seed S] [--format json|ndjson]
 *            [--dim D] [--out FILE]
 *
 * The same arguments always give the same bytes. Texts are sentences of words
 * drawn with a Zipf-like skew from a seeded 4,096-word vocabulary, in
 * paragraphs; each text starts with its document number, so every document,
 * and with overwhelming likelihood every chunk, is unique. A text is B bytes
 * give or take 20% (ASCII only, so bytes are code points).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VOCAB    4096
#define WORD_MAX 16

static char vocab[VOCAB][WORD_MAX];

/* splitmix64: a small, seedable generator with no libc state. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static uint32_t rng_below(uint64_t *s, uint32_t n)
{
    return (uint32_t)(rng_next(s) % n);
}

/* A vocabulary of pronounceable words of one to four syllables, fixed for every seed. */
static void vocab_build(void)
{
    static const char *const onsets[] = {"b", "c",  "d",  "f",  "g",  "h",  "j",  "k",
                                         "l", "m",  "n",  "p",  "r",  "s",  "t",  "v",
                                         "w", "st", "tr", "pl", "gr", "ch", "sh", "th"};
    static const char *const nuclei[] = {"a", "e", "i", "o", "u", "ea", "ai", "ou", "io"};
    static const char *const codas[] = {"", "", "", "n", "r", "s", "t", "l", "nd", "st", "m"};
    uint64_t s = 0x5EEDF00DULL;
    for (int i = 0; i < VOCAB; i++) {
        char w[WORD_MAX];
        size_t len = 0;
        int syl = 1 + (int)rng_below(&s, i < 256 ? 2 : 4);
        w[0] = '\0';
        for (int k = 0; k < syl; k++) {
            const char *parts[3] = {onsets[rng_below(&s, sizeof(onsets) / sizeof(*onsets))],
                                    nuclei[rng_below(&s, sizeof(nuclei) / sizeof(*nuclei))],
                                    codas[rng_below(&s, sizeof(codas) / sizeof(*codas))]};
            for (int p = 0; p < 3; p++) {
                size_t pl = strlen(parts[p]);
                if (len + pl + 1 > WORD_MAX)
                    break;
                memcpy(w + len, parts[p], pl);
                len += pl;
                w[len] = '\0';
            }
        }
        memcpy(vocab[i], w, len + 1);
    }
}

/* Zipf-like: low indexes (short, common words) come up far more often. */
static const char *word_pick(uint64_t *s)
{
    double u = (double)(rng_next(s) >> 11) / 9007199254740992.0;
    return vocab[(int)(u * u * VOCAB)];
}

struct out {
    FILE *f;
};

/* Writes one document's text, JSON-escaped (only \n needs it), of about target bytes. */
static void text_write(FILE *f, uint64_t *s, long doc, size_t target)
{
    size_t n = (size_t)fprintf(f, "Record %ld.", doc);
    int sentences_left = 3 + (int)rng_below(s, 4);
    while (n < target) {
        int words = 6 + (int)rng_below(s, 14);
        if (sentences_left-- == 0) {
            fputs("\\n\\n", f);
            n += 2;
            sentences_left = 2 + (int)rng_below(s, 5);
        } else {
            fputc(' ', f);
            n++;
        }
        for (int w = 0; w < words; w++) {
            const char *word = word_pick(s);
            size_t wl = strlen(word);
            if (w == 0) {
                fputc(word[0] - 'a' + 'A', f);
                fputs(word + 1, f);
            } else {
                fputc(' ', f);
                fputs(word, f);
                n++;
            }
            n += wl;
            if (w > 2 && w + 2 < words && rng_below(s, 10) == 0) {
                fputc(',', f);
                n++;
            }
        }
        fputc(rng_below(s, 12) == 0 ? '?' : '.', f);
        n++;
    }
}

static void doc_write(FILE *f, uint64_t *s, long i, size_t doc_bytes)
{
    size_t lo = doc_bytes - doc_bytes / 5;
    size_t target = lo + rng_below(s, (uint32_t)(doc_bytes / 5 * 2 + 1));
    fprintf(
        f,
        "{\"id\":\"doc-%07ld\",\"title\":\"%s %s %ld\",\"metadata\":{\"n\":%ld,\"group\":\"g%ld\"},"
        "\"text\":\"",
        i, word_pick(s), word_pick(s), i, i, i % 97);
    text_write(f, s, i, target);
    fputs("\"}", f);
}

static long arg_long(const char *name, const char *v, long min, long max)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno != 0 || *end != '\0' || end == v || x < min || x > max) {
        fprintf(stderr, "gen_docs: %s must be an integer in [%ld, %ld]\n", name, min, max);
        exit(2);
    }
    return x;
}

int main(int argc, char **argv)
{
    long docs = -1, doc_bytes = 1000, seed = 1, dim = 768;
    const char *format = "json", *out_path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL) {
            fprintf(stderr, "gen_docs: %s needs a value\n", a);
            return 2;
        }
        if (strcmp(a, "--docs") == 0)
            docs = arg_long(a, v, 1, 100000000);
        else if (strcmp(a, "--doc-bytes") == 0)
            doc_bytes = arg_long(a, v, 50, 10000000);
        else if (strcmp(a, "--seed") == 0)
            seed = arg_long(a, v, 0, INT32_MAX);
        else if (strcmp(a, "--dim") == 0)
            dim = arg_long(a, v, 128, 3072);
        else if (strcmp(a, "--format") == 0)
            format = v;
        else if (strcmp(a, "--out") == 0)
            out_path = v;
        else {
            fprintf(stderr, "gen_docs: unknown flag %s\n", a);
            return 2;
        }
        i++;
    }
    int ndjson = strcmp(format, "ndjson") == 0;
    if (docs < 1 || (!ndjson && strcmp(format, "json") != 0)) {
        fprintf(stderr, "usage: gen_docs --docs N [--doc-bytes B] [--seed S] "
                        "[--format json|ndjson] [--dim D] [--out FILE]\n");
        return 2;
    }
    FILE *f = out_path != NULL ? fopen(out_path, "w") : stdout;
    if (f == NULL) {
        perror("gen_docs: open");
        return 1;
    }
    static char iobuf[1 << 20];
    setvbuf(f, iobuf, _IOFBF, sizeof(iobuf));
    vocab_build();
    uint64_t s = 0xB5EEDULL ^ ((uint64_t)seed << 20);
    if (ndjson)
        fprintf(f, "{\"display_name\":\"bench\",\"output_dimensionality\":%ld}\n", dim);
    else
        fprintf(f, "{\"display_name\":\"bench\",\"output_dimensionality\":%ld,\"documents\":[\n",
                dim);
    for (long i = 0; i < docs; i++) {
        if (!ndjson && i > 0)
            fputs(",\n", f);
        doc_write(f, &s, i, (size_t)doc_bytes);
        if (ndjson)
            fputc('\n', f);
    }
    if (!ndjson)
        fputs("\n]}\n", f);
    if (fflush(f) != 0 || ferror(f) || (f != stdout && fclose(f) != 0)) {
        perror("gen_docs: write");
        return 1;
    }
    return 0;
}
