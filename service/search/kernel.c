/* kernel.c: the vectorised loops of exact search (see kernel.h); built with -O3. */
#include "search/kernel.h"

#include <math.h>

/* Add the upper half of acc onto the lower half until one value is left:
 * ((a0+a8)+(a4+a12))+... in the same order every time. */
static inline float fold16(float acc[SEARCH_LANES])
{
    for (size_t w = SEARCH_LANES / 2; w > 0; w /= 2)
        for (size_t j = 0; j < w; j++)
            acc[j] += acc[j + w];
    return acc[0];
}

void kernel_dots(const float *restrict q, const float *restrict rows, size_t stride, size_t n,
                 float *restrict out)
{
    for (size_t r = 0; r < n; r++) {
        const float *restrict x = rows + r * stride;
        float acc[SEARCH_LANES] = {0};
        for (size_t i = 0; i < stride; i += SEARCH_LANES)
            for (size_t j = 0; j < SEARCH_LANES; j++)
                acc[j] += q[i + j] * x[i + j];
        out[r] = fold16(acc);
    }
}

float kernel_sumsq(const float *v, size_t stride)
{
    float acc[SEARCH_LANES] = {0};
    for (size_t i = 0; i < stride; i += SEARCH_LANES)
        for (size_t j = 0; j < SEARCH_LANES; j++)
            acc[j] += v[i + j] * v[i + j];
    return fold16(acc);
}

#define EXACT_LANES 8

static inline double fold8(double acc[EXACT_LANES])
{
    for (size_t w = EXACT_LANES / 2; w > 0; w /= 2)
        for (size_t j = 0; j < w; j++)
            acc[j] += acc[j + w];
    return acc[0];
}

double kernel_dot_exact(const float *a, const float *b, size_t stride)
{
    double acc[EXACT_LANES] = {0};
    for (size_t i = 0; i < stride; i += EXACT_LANES)
        for (size_t j = 0; j < EXACT_LANES; j++)
            acc[j] += (double)a[i + j] * (double)b[i + j];
    return fold8(acc);
}

double kernel_norm_exact(const float *a, size_t stride)
{
    return sqrt(kernel_dot_exact(a, a, stride));
}

double kernel_delta(int dims)
{
    /* The float32 scan sums dims/16 products per lane, then folds 16 lanes,
     * and scales by two inverse norms computed the same way: its relative
     * error stays below about (dims/8 + 20) units of 2^-24 of |q||x|, and a
     * cosine is at most 1 in magnitude. 16 times that is the margin. */
    return ((double)dims + 64.0) * ldexp(1.0, -23);
}
