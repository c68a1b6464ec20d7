/*
 * metrics.h: a small lock-free metrics registry and its Prometheus text
 * rendering (exposition format 0.0.4). A family is a static object owned by
 * the room that moves it (gemini/, store/, api/): a name, a help text, a
 * type, up to two label dimensions whose values are fixed arrays (never
 * taken from a request, so a family has a bounded number of series), and
 * its cells. Moving a cell is one relaxed atomic operation (a
 * compare-and-swap loop for real numbers); nothing locks, nothing
 * allocates. Rendering reads the cells as they are: a histogram's _count is
 * the sum of its buckets as read, so +Inf and _count always agree.
 *
 * These are process-local figures (each replica counts its own work); the
 * caller of metrics_render decides what else goes into a scrape.
 */
#ifndef SVC_METRICS_METRICS_H
#define SVC_METRICS_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/compiler.h"

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

#define METRIC_MAX_LE 16 /* histogram buckets besides +Inf */

/* One histogram series: counts per bucket (not cumulative; the last one is
 * +Inf) and the sum of observations (a double's bits). */
struct metric_hist {
    atomic_uint_least64_t bucket[METRIC_MAX_LE + 1];
    atomic_uint_least64_t sum;
};

/*
 * A label dimension: its name and its values, index i of a cell being
 * values[i]. With name NULL the values are whole label lists already
 * rendered and escaped (`method="GET",route="/v1/jobs"`), for a dimension
 * that stands for several labels at once.
 */
struct metric_dim {
    const char *name;
    const char *const *values;
    size_t n;
};

struct metric_family {
    const char *name; /* embedd_..., with _total for counters, in base units */
    const char *help;
    enum metric_type type;
    bool real;                /* counter cells hold doubles (e.g. dollars); gauges always do */
    bool skip_zero;           /* render only series that moved (for large label products) */
    struct metric_dim dim[2]; /* unused dimensions have n == 0 */
    const double *le;         /* histograms: ascending upper bounds, at most METRIC_MAX_LE */
    size_t n_le;
    /* the cells, dim[0] major: n0 * n1 of them (1 without labels) */
    atomic_uint_least64_t *cells; /* counters (uint64, or double bits when real) and gauges */
    struct metric_hist *hists;    /* histograms */
};

/* Cells of a family: the product of its dimensions' sizes. */
size_t metric_cells(const struct metric_family *f);

/* Add n to counter cell i. */
static inline void metric_inc(const struct metric_family *f, size_t i, uint64_t n)
{
    atomic_fetch_add_explicit(&f->cells[i], n, memory_order_relaxed);
}
/* Add v to a real counter or a gauge's cell i. */
void metric_add(const struct metric_family *f, size_t i, double v);
/* Set gauge cell i. */
void metric_set(const struct metric_family *f, size_t i, double v);
/* Read cell i (counters as a number, real cells as their double). */
double metric_get(const struct metric_family *f, size_t i);
/* Record one observation in histogram cell i. */
void metric_observe(const struct metric_family *f, size_t i, double v);

/* The cell index of (i0, i1). */
static inline size_t metric_at(const struct metric_family *f, size_t i0, size_t i1)
{
    return i0 * (f->dim[1].n ? f->dim[1].n : 1) + i1;
}

/* Append the families' samples to b in the text format, each with its HELP
 * and TYPE lines. */
bool metrics_render(struct buf *b, const struct metric_family *const *fams, size_t n) SVC_MUSTCHECK;

/* Append s to b escaped as a label value (backslash, double quote, newline). */
bool metrics_label_escape(struct buf *b, const char *s) SVC_MUSTCHECK;

#endif
