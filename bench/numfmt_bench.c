/* numfmt_bench.c: time numfmt_f32 against snprintf("%.9g") on 10M floats in [-0.1, 0.1]. */
/*
 * Not built by CMake. Build and run from the repository root:
 *
 *   gcc -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Wpedantic -O2 -I service \
 *       bench/numfmt_bench.c service/util/numfmt.c -lm -o /tmp/numfmt_bench && /tmp/numfmt_bench
 */
#include "util/numfmt.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define COUNT 10000000

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* xorshift64*: reproducible pseudo-random bits without libc state. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

int main(void)
{
    float *v = malloc(COUNT * sizeof(*v));
    if (!v) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    uint64_t seed = 0x9E3779B97F4A7C15ULL;
    for (size_t i = 0; i < COUNT; i++) {
        double u = (double)(rng_next(&seed) >> 11) / 9007199254740992.0; /* [0, 1) */
        v[i] = (float)(u * 0.2 - 0.1);
    }

    char out[NUMFMT_F32_MAX];
    char big[64];
    size_t total_fast = 0, total_printf = 0;

    double t0 = now_ns();
    for (size_t i = 0; i < COUNT; i++)
        total_fast += numfmt_f32(out, v[i]);
    double t1 = now_ns();
    for (size_t i = 0; i < COUNT; i++)
        total_printf += (size_t)snprintf(big, sizeof(big), "%.9g", (double)v[i]);
    double t2 = now_ns();

    printf("numfmt_f32:       %6.1f ns/float  (%.2f bytes/float)\n", (t1 - t0) / COUNT,
           (double)total_fast / COUNT);
    printf("snprintf(\"%%.9g\"): %6.1f ns/float  (%.2f bytes/float)\n", (t2 - t1) / COUNT,
           (double)total_printf / COUNT);
    free(v);
    return 0;
}
