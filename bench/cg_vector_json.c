/*
 * cg_vector_json.c: the vector JSON workload of the "callgrind" benchmark
 * figure.
 *
 * Makes N stored vectors (default 1,000) of 768 float32 components, little
 * endian as in chunks.embedding, with deterministic values of the size a
 * unit vector has (|v| around 1/sqrt(768)), then encodes them one after the
 * other into one bounded buffer with the code GET /v1/jobs/{id}/results
 * uses: jsonw_f32le_array() (service/util/jsonw.c), one buf_reserve per
 * vector, then numfmt_f32le_array(). Only cg_measured() is meant to be
 * counted: bench/callgrind.sh runs this under
 *
 *   valgrind --tool=callgrind --toggle-collect=cg_measured cg_vector_json
 *
 * Prints "vectors N dims D bytes B" on stdout.
 */
#include "store/results.h"
#include "util/buf.h"
#include "util/jsonw.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIMS 768
/* the results endpoint's response cap is far above this; 1,000 x 768 fits in 16 MB */
#define BODY_MAX (64u * 1024 * 1024)

/* xorshift64*: reproducible pseudo-random numbers without libc state. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

size_t cg_measured(const unsigned char *vectors, size_t n, struct buf *out);

/* The counted work: a results page's vectors, comma-separated, into one buffer. */
__attribute__((noinline)) size_t cg_measured(const unsigned char *vectors, size_t n,
                                             struct buf *out)
{
    for (size_t i = 0; i < n; i++) {
        if ((i && !buf_putc(out, ',')) ||
            !jsonw_f32le_array(out, vectors + i * DIMS * sizeof(float), DIMS))
            return 0;
    }
    return out->len;
}

int main(int argc, char **argv)
{
    long n = 1000;
    if (argc > 1) {
        char *end;
        n = strtol(argv[1], &end, 10);
        if (*end || n < 1 || n > 100000) {
            fprintf(stderr, "usage: cg_vector_json [VECTORS]\n");
            return 2;
        }
    }
    size_t bytes = (size_t)n * DIMS * sizeof(float);
    unsigned char *v = malloc(bytes);
    if (!v) {
        fprintf(stderr, "cg_vector_json: out of memory\n");
        return 1;
    }
    uint64_t seed = 0x9E3779B97F4A7C15ULL;
    for (size_t i = 0; i < (size_t)n * DIMS; i++) {
        /* uniform in (-0.0625, 0.0625): the spread of a 768-d unit vector's components */
        double u = (double)(rng_next(&seed) >> 11) / 9007199254740992.0;
        float f = (float)((u - 0.5) * 0.125);
        uint32_t bits;
        memcpy(&bits, &f, sizeof(bits));
        for (int k = 0; k < 4; k++)
            v[i * 4 + (size_t)k] = (unsigned char)(bits >> (8 * k));
    }
    struct buf out;
    buf_init(&out, BODY_MAX);
    size_t len = cg_measured(v, (size_t)n, &out);
    int rc = 0;
    if (len == 0) {
        fprintf(stderr, "cg_vector_json: the output passed %u bytes\n", BODY_MAX);
        rc = 1;
    } else {
        /* check the encoding round-trips, so the figure cannot count a broken encoder */
        const char *p = out.data + 1;
        for (size_t i = 0; i < (size_t)n * DIMS && rc == 0; i++) {
            char *end;
            float f = strtof(p, &end);
            if (end == p || f != results_value(v, (int)i)) {
                fprintf(stderr, "cg_vector_json: component %zu does not round-trip\n", i);
                rc = 1;
            }
            p = end + 1;
            while (*p == '[' || *p == ']' || *p == ',')
                p++;
        }
    }
    if (rc == 0)
        printf("vectors %ld dims %d bytes %zu\n", n, DIMS, len);
    buf_cleanup(&out);
    free(v);
    return rc;
}
