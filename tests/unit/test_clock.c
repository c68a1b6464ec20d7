/* test_clock.c: deadlines ms from now, normalised, on the clock asked for. */
#include "util/clock.h"

#include <criterion/criterion.h>

static int64_t ns_of(struct timespec t)
{
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void check(clockid_t clock, int64_t ms)
{
    struct timespec before, after;
    clock_gettime(clock, &before);
    struct timespec d = clock_after(clock, ms);
    clock_gettime(clock, &after);
    cr_assert(d.tv_nsec >= 0 && d.tv_nsec < 1000000000L, "%lld ms: nanoseconds normalised",
              (long long)ms);
    cr_assert_geq(ns_of(d), ns_of(before) + ms * 1000000, "%lld ms: not before now + ms",
                  (long long)ms);
    cr_assert_leq(ns_of(d), ns_of(after) + ms * 1000000, "%lld ms: not after now + ms",
                  (long long)ms);
}

Test(clock, after_ms_on_either_clock)
{
    static const int64_t ms[] = {0, 1, 999, 1000, 1001, 2500, 86400000};
    for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
        check(CLOCK_MONOTONIC, ms[i]);
        check(CLOCK_REALTIME, ms[i]);
    }
}
