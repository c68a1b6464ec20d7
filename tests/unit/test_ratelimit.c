/* test_ratelimit.c: per-key token buckets (api/ratelimit.c) on an explicit clock. */
#include "ratelimit.h"

#include <criterion/criterion.h>

#include <stdint.h>

#define MS INT64_C(1000000)

static struct ratelimit *rl;

static void setup(void)
{
    rl = ratelimit_new();
    cr_assert_not_null(rl);
}

static void teardown(void)
{
    ratelimit_free(rl);
}

TestSuite(ratelimit, .init = setup, .fini = teardown);

/* A full bucket lets burst requests through at once, then paces at rate. */
Test(ratelimit, burst_then_rate)
{
    int64_t retry = 0, t = 1000 * MS;
    for (int i = 0; i < 5; i++)
        cr_assert(ratelimit_take(rl, 7, 2.0, 5.0, t, &retry), "request %d of the burst", i);
    cr_assert_not(ratelimit_take(rl, 7, 2.0, 5.0, t, &retry));
    cr_assert_eq(retry, 500, "one token at 2/s comes in 500 ms, got %lld", (long long)retry);
    cr_assert_not(ratelimit_take(rl, 7, 2.0, 5.0, t + 499 * MS, &retry));
    cr_assert_eq(retry, 1);
    cr_assert(ratelimit_take(rl, 7, 2.0, 5.0, t + 500 * MS, &retry));
    cr_assert_not(ratelimit_take(rl, 7, 2.0, 5.0, t + 500 * MS, &retry));
    /* a long pause refills to the burst, never more */
    t += 3600 * 1000 * MS;
    for (int i = 0; i < 5; i++)
        cr_assert(ratelimit_take(rl, 7, 2.0, 5.0, t, &retry));
    cr_assert_not(ratelimit_take(rl, 7, 2.0, 5.0, t, &retry));
}

/* Keys have their own buckets. */
Test(ratelimit, keys_apart)
{
    int64_t retry = 0, t = 5 * MS;
    cr_assert(ratelimit_take(rl, 1, 1.0, 1.0, t, &retry));
    cr_assert_not(ratelimit_take(rl, 1, 1.0, 1.0, t, &retry));
    cr_assert_eq(retry, 1000);
    cr_assert(ratelimit_take(rl, 2, 1.0, 1.0, t, &retry), "another key is not limited");
    /* many keys: the table grows and keeps every bucket */
    for (int64_t k = 10; k < 5000; k++)
        cr_assert(ratelimit_take(rl, k, 1.0, 1.0, t, &retry));
    for (int64_t k = 10; k < 5000; k++)
        cr_assert_not(ratelimit_take(rl, k, 1.0, 1.0, t, &retry), "key %lld", (long long)k);
    cr_assert_not(ratelimit_take(rl, 1, 1.0, 1.0, t, &retry));
}

/* A lowered burst clamps the tokens at once; a slower rate lengthens the wait. */
Test(ratelimit, limits_change)
{
    int64_t retry = 0, t = 0;
    cr_assert(ratelimit_take(rl, 3, 100.0, 100.0, t, &retry));
    cr_assert(ratelimit_take(rl, 3, 1.0, 2.0, t, &retry));
    cr_assert(ratelimit_take(rl, 3, 1.0, 2.0, t, &retry));
    cr_assert_not(ratelimit_take(rl, 3, 1.0, 2.0, t, &retry));
    cr_assert_not(ratelimit_take(rl, 3, 0.1, 2.0, t, &retry));
    cr_assert_eq(retry, 10000, "0.1/s: a token in 10 s, got %lld", (long long)retry);
    /* a burst below 1 still lets one request through per token */
    cr_assert(ratelimit_take(rl, 4, 1.0, 0.0, t, &retry));
    cr_assert_not(ratelimit_take(rl, 4, 1.0, 0.0, t, &retry));
}
