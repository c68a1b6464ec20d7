/*
 * kernel.h: the arithmetic of exact search. Vectors are float32 rows padded
 * with zeros to a multiple of SEARCH_LANES components (the row stride), so
 * every loop runs whole lanes and the compiler vectorises it without
 * reassociating a sum: kernel.c is built with -O3 and each of its loops
 * keeps SEARCH_LANES independent partial sums, added in a fixed order at the
 * end. The same inputs give the same bits on every machine.
 */
#ifndef SVC_SEARCH_KERNEL_H
#define SVC_SEARCH_KERNEL_H

#include <stddef.h>

#define SEARCH_LANES 16

/* The stride of a dims-component row: dims rounded up to SEARCH_LANES. */
static inline size_t kernel_stride(int dims)
{
    return ((size_t)dims + SEARCH_LANES - 1) / SEARCH_LANES * SEARCH_LANES;
}

/* out[r] = <q, rows[r]> in float32 for the n rows of stride floats at rows
 * (q has stride floats too). The fast, approximate score of the scan; its
 * error is bounded by kernel_delta. */
void kernel_dots(const float *restrict q, const float *restrict rows, size_t stride, size_t n,
                 float *restrict out);

/* Sum of squares of v[0..stride) in float32 (for a row's inverse norm). */
float kernel_sumsq(const float *v, size_t stride);

/* The exact score's parts, in double precision (a product of two floats is
 * exact in double; 8 partial sums in a fixed order): <a, b> and |a|. */
double kernel_dot_exact(const float *a, const float *b, size_t stride);
double kernel_norm_exact(const float *a, size_t stride);

/* A bound on |scan score - exact cosine| for rows of dims components, with
 * a wide margin (see topk.h). */
double kernel_delta(int dims);

#endif
