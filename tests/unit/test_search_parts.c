/* test_search_parts.c: the pure parts of the search engine: the kernel's float32 scores stay
 * within kernel_delta of the exact ones, the exact score is scale-free, the bounded heap keeps
 * the k best with ties to the lower row (and stable slots), its admission threshold never
 * refuses a row that belongs, and metadata filters compare by JSON type and value. */
#include "search/filter.h"
#include "search/index.h"
#include "search/kernel.h"
#include "search/topk.h"

#include <criterion/criterion.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t state = 88172645463325252ULL;

static double rnd(void)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return ldexp((double)(state >> 11), -53) * 2.0 - 1.0;
}

Test(kernel, float_scores_within_delta_of_exact)
{
    int dims_list[] = {128, 129, 768, 1000, 3072};
    for (size_t di = 0; di < sizeof(dims_list) / sizeof(dims_list[0]); di++) {
        int dims = dims_list[di];
        size_t stride = kernel_stride(dims);
        cr_assert_eq(stride % SEARCH_LANES, 0);
        cr_assert(stride >= (size_t)dims && stride < (size_t)dims + SEARCH_LANES);
        size_t n = 200;
        float *rows = calloc(n * stride, sizeof(float)), *q = calloc(stride, sizeof(float));
        float *out = malloc(n * sizeof(float));
        for (int i = 0; i < dims; i++)
            q[i] = (float)rnd();
        for (size_t r = 0; r < n; r++)
            for (int i = 0; i < dims; i++) /* some rows close to q: scores near 1 */
                rows[r * stride + (size_t)i] =
                    (float)(r % 7 == 0 ? (double)q[i] + 0.01 * rnd() : rnd());
        kernel_dots(q, rows, stride, n, out);
        double qn = kernel_norm_exact(q, stride);
        float qinv = (float)(1.0 / sqrt((double)kernel_sumsq(q, stride)));
        for (size_t r = 0; r < n; r++) {
            const float *x = rows + r * stride;
            float inv = 1.0f / sqrtf(kernel_sumsq(x, stride));
            double exact = index_exact_score(q, qn, x, stride);
            double naive = 0, xx = 0;
            for (int i = 0; i < dims; i++) {
                naive += (double)q[i] * (double)x[i];
                xx += (double)x[i] * (double)x[i];
            }
            naive /= qn * sqrt(xx);
            cr_assert(fabs(exact - naive) < 1e-13, "exact %.17g naive %.17g", exact, naive);
            float f = out[r] * inv * qinv;
            cr_assert((double)fabsf(f) <= 1.0 + 1e-5);
            cr_assert(fabs((double)f - exact) <= kernel_delta(dims) / 16,
                      "dims %d row %zu: scan %.9g exact %.17g", dims, r, (double)f, exact);
        }
        free(rows);
        free(q);
        free(out);
    }
}

Test(kernel, exact_score_is_scale_free_and_zero_safe)
{
    float q[16] = {1, 2, 3}, x[16] = {2, 4, 6.5f}, z[16] = {0};
    float big[16];
    for (int i = 0; i < 16; i++)
        big[i] = ldexpf(q[i], 90); /* exactly proportional */
    double a = index_exact_score(q, kernel_norm_exact(q, 16), x, 16);
    double b = index_exact_score(big, kernel_norm_exact(big, 16), x, 16);
    cr_assert(fabs(a - b) < 1e-12 && a > 0.99);
    cr_assert_eq(index_exact_score(q, kernel_norm_exact(q, 16), z, 16), 0.0);
}

Test(topk, keeps_the_k_best_and_ties_to_the_lower_row)
{
    struct topk_entry e[4];
    struct topk t;
    topk_init(&t, e, 4, 0.01);
    cr_assert(isinf(t.thr) && t.thr < 0);
    double scores[] = {0.5, 0.9, 0.5, 0.1, 0.7, 0.9, 0.5, 0.95};
    int slots_seen = 0;
    for (uint64_t r = 0; r < 8; r++) {
        int slot = topk_push(&t, scores[r], r);
        if (slot >= 0)
            slots_seen |= 1 << slot;
        cr_assert(slot < 4);
    }
    cr_assert_eq(slots_seen, 15, "slots stay within 0..k-1");
    /* the threshold is below the top's score by delta, never above */
    cr_assert((double)t.thr <= e[0].score - 0.01);
    topk_sort(&t);
    uint64_t want_rows[] = {7, 1, 5, 4};
    for (int i = 0; i < 4; i++)
        cr_assert_eq(t.e[i].row, want_rows[i], "rank %d: row %llu", i,
                     (unsigned long long)t.e[i].row);
    /* equal scores: the lower row wins, whatever the order they came in */
    topk_init(&t, e, 2, 0);
    cr_assert_geq(topk_push(&t, 0.5, 9), 0);
    cr_assert_geq(topk_push(&t, 0.5, 3), 0);
    cr_assert_geq(topk_push(&t, 0.5, 1), 0, "row 1 beats row 9");
    cr_assert_eq(topk_push(&t, 0.5, 5), -1, "row 5 loses to rows 1 and 3");
    topk_sort(&t);
    cr_assert(t.e[0].row == 1 && t.e[1].row == 3);
}

/* Rows refused by the threshold could never have entered: the heap ends with the exact top k
 * even when every scan score is off by up to delta. */
Test(topk, admission_never_loses_a_row)
{
    enum { N = 5000, K = 25 };
    double exact[N];
    float scan[N];
    double delta = 1e-3;
    for (int i = 0; i < N; i++) {
        exact[i] = rnd() * 0.01 + (i % 50 == 0 ? 0.5 : 0); /* many near-ties */
        scan[i] = (float)(exact[i] + delta * 0.999 * rnd());
    }
    struct topk_entry e[K];
    struct topk t;
    topk_init(&t, e, K, delta);
    for (int i = 0; i < N; i++)
        if (topk_admits(&t, scan[i]))
            (void)topk_push(&t, exact[i], (uint64_t)i);
    topk_sort(&t);
    /* brute force */
    int best[K];
    for (int j = 0; j < K; j++) {
        int b = -1;
        for (int i = 0; i < N; i++) {
            bool taken = false;
            for (int m = 0; m < j; m++)
                taken = taken || best[m] == i;
            if (!taken && (b < 0 || topk_better(exact[i], (uint64_t)i, exact[b], (uint64_t)b)))
                b = i;
        }
        best[j] = b;
        cr_assert_eq(t.e[j].row, (uint64_t)b, "rank %d", j);
    }
}

static bool matches(const char *filter_json, const char *doc_json)
{
    struct search_filter f;
    search_filter_init(&f);
    json_object *o = json_tokener_parse(filter_json);
    cr_assert_not_null(o);
    json_object_object_foreach(o, k, v)
    {
        cr_assert(search_filter_add(&f, k, strlen(k), v));
    }
    json_object_put(o);
    struct buf packed;
    buf_init(&packed, 1 << 20);
    bool has = doc_json != NULL;
    if (has)
        cr_assert(filter_pack(doc_json, strlen(doc_json), &packed));
    bool m = filter_match(&f, has, packed.data, packed.len);
    buf_cleanup(&packed);
    search_filter_cleanup(&f);
    return m;
}

Test(filter, equality_by_json_type_and_value)
{
    cr_assert(matches("{}", NULL), "the empty filter takes everything");
    cr_assert(matches("{}", "{\"a\":1}"));
    cr_assert(!matches("{\"a\":1}", NULL), "no metadata, no match");
    cr_assert(matches("{\"lang\":\"en\"}", "{\"lang\":\"en\",\"x\":[1]}"));
    cr_assert(!matches("{\"lang\":\"en\"}", "{\"lang\":\"fr\"}"));
    cr_assert(!matches("{\"lang\":\"en\"}", "{\"Lang\":\"en\"}"), "keys are exact");
    cr_assert(matches("{\"year\":2024}", "{\"year\":2024.0}"), "1 equals 1.0");
    cr_assert(!matches("{\"year\":2024}", "{\"year\":\"2024\"}"), "a number is not a string");
    cr_assert(matches("{\"ok\":true,\"n\":null}", "{\"n\":null,\"ok\":true}"));
    cr_assert(!matches("{\"ok\":true}", "{\"ok\":false}"));
    cr_assert(!matches("{\"n\":null}", "{}"), "null is not missing");
    cr_assert(matches("{\"z\":0}", "{\"z\":-0.0}"));
    cr_assert(!matches("{\"a\":1,\"b\":2}", "{\"a\":1}"), "every pair must match");
    cr_assert(!matches("{\"a\":\"x\"}", "{\"a\":{\"x\":1}}"), "nested values never match");
    cr_assert(!matches("{\"a\":\"x\"}", "[1,2]"), "metadata that is not an object");
    cr_assert(matches("{\"s\":\"caf\\u00e9\"}", "{\"s\":\"café\"}"), "escapes decoded");
    json_object *arr = json_object_new_array();
    cr_assert(!search_filter_scalar(arr));
    json_object_put(arr);
}
