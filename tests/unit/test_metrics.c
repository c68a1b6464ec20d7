/*
 * test_metrics.c: the metrics registry (metrics/metrics.h): counters, real
 * counters and histograms moved from several threads at once lose nothing;
 * the text format (HELP/TYPE, labels escaped, cumulative buckets ending in
 * +Inf equal to _count, series without labels without braces, zero series
 * skipped when asked).
 */
#include "metrics/metrics.h"

#include <criterion/criterion.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

static const char *const colours[] = {"red", "gre\"en\\\n"};
static const char *const sizes[] = {"s", "m", "l"};
static atomic_uint_least64_t c_cells[6], r_cells[1], g_cells[1];
static struct metric_hist h_hists[2];
static const double h_le[] = {0.1, 1, 10};

static const struct metric_family counter = {"t_things_total",
                                             "Things\ncounted \\ here",
                                             METRIC_COUNTER,
                                             false,
                                             false,
                                             {{"colour", colours, 2}, {"size", sizes, 3}},
                                             NULL,
                                             0,
                                             c_cells,
                                             NULL};
static const struct metric_family real = {"t_money_dollars_total",
                                          "Money",
                                          METRIC_COUNTER,
                                          true,
                                          false,
                                          {{0}, {0}},
                                          NULL,
                                          0,
                                          r_cells,
                                          NULL};
static const struct metric_family gauge = {
    "t_level", "Level", METRIC_GAUGE, false, true, {{0}, {0}}, NULL, 0, g_cells, NULL};
static const struct metric_family hist = {"t_wait_seconds",
                                          "Waits",
                                          METRIC_HISTOGRAM,
                                          false,
                                          false,
                                          {{"size", sizes, 2}, {0}},
                                          h_le,
                                          3,
                                          NULL,
                                          h_hists};

#define THREADS 4
#define ROUNDS  20000

static void *hammer(void *arg)
{
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        metric_inc(&counter, metric_at(&counter, 1, 2), 1);
        metric_add(&real, 0, 0.25);
        metric_observe(&hist, 0, (double)(i % 4) * 0.5); /* 0, 0.5, 1, 1.5 */
    }
    return NULL;
}

static char *render(const struct metric_family *f)
{
    static char out[8192];
    struct buf b;
    buf_init(&b, sizeof(out) - 1);
    const struct metric_family *const fams[] = {f};
    cr_assert(metrics_render(&b, fams, 1));
    snprintf(out, sizeof(out), "%s", b.data ? b.data : "");
    buf_cleanup(&b);
    return out;
}

Test(metrics, concurrent_updates_add_up)
{
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, hammer, NULL), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    cr_assert_eq(metric_get(&counter, metric_at(&counter, 1, 2)), THREADS * ROUNDS);
    cr_assert_eq(metric_get(&real, 0), THREADS * ROUNDS * 0.25);

    const char *c = render(&counter);
    cr_assert(strstr(c, "# HELP t_things_total Things\\ncounted \\\\ here\n"
                        "# TYPE t_things_total counter\n"),
              "%s", c);
    cr_assert(strstr(c, "t_things_total{colour=\"red\",size=\"s\"} 0\n"), "%s", c);
    cr_assert(strstr(c, "t_things_total{colour=\"gre\\\"en\\\\\\n\",size=\"l\"} 80000\n"), "%s", c);

    const char *h = render(&hist);
    /* per thread: 5000 each of 0, 0.5, 1, 1.5: le 0.1 -> 5000, le 1 -> 15000 */
    cr_assert(strstr(h, "t_wait_seconds_bucket{size=\"s\",le=\"0.1\"} 20000\n"), "%s", h);
    cr_assert(strstr(h, "t_wait_seconds_bucket{size=\"s\",le=\"1\"} 60000\n"), "%s", h);
    cr_assert(strstr(h, "t_wait_seconds_bucket{size=\"s\",le=\"10\"} 80000\n"), "%s", h);
    cr_assert(strstr(h, "t_wait_seconds_bucket{size=\"s\",le=\"+Inf\"} 80000\n"), "%s", h);
    cr_assert(strstr(h, "t_wait_seconds_sum{size=\"s\"} 60000\n"), "%s", h);
    cr_assert(strstr(h, "t_wait_seconds_count{size=\"s\"} 80000\n"), "%s", h);
    cr_assert(strstr(h, "t_wait_seconds_count{size=\"m\"} 0\n"), "%s", h);
}

Test(metrics, gauges_and_unlabelled_series)
{
    cr_assert_str_eq(render(&gauge), "# HELP t_level Level\n# TYPE t_level gauge\n");
    metric_set(&gauge, 0, 2.5);
    cr_assert_str_eq(render(&gauge), "# HELP t_level Level\n# TYPE t_level gauge\nt_level 2.5\n");
    metric_add(&gauge, 0, -0.5);
    cr_assert(strstr(render(&gauge), "\nt_level 2\n"));
    metric_set(&gauge, 0, 1e-7);
    cr_assert(strstr(render(&gauge), "\nt_level 1e-07\n"));
}

Test(metrics, a_full_buffer_fails)
{
    struct buf b;
    buf_init(&b, 40);
    const struct metric_family *const fams[] = {&counter};
    cr_assert_not(metrics_render(&b, fams, 1));
    buf_cleanup(&b);
}
