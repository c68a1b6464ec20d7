/* metrics.c: moving metric cells with atomics, and the Prometheus text format (see metrics.h). */
#include "metrics/metrics.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static double bits_to_double(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof(d));
    return d;
}

static uint64_t double_to_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    return u;
}

static void add_double(atomic_uint_least64_t *a, double v)
{
    uint_least64_t old = atomic_load_explicit(a, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(a, &old, double_to_bits(bits_to_double(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

size_t metric_cells(const struct metric_family *f)
{
    return (f->dim[0].n ? f->dim[0].n : 1) * (f->dim[1].n ? f->dim[1].n : 1);
}

void metric_add(const struct metric_family *f, size_t i, double v)
{
    add_double(&f->cells[i], v);
}

void metric_set(const struct metric_family *f, size_t i, double v)
{
    atomic_store_explicit(&f->cells[i], double_to_bits(v), memory_order_relaxed);
}

double metric_get(const struct metric_family *f, size_t i)
{
    uint64_t u = atomic_load_explicit(&f->cells[i], memory_order_relaxed);
    bool real = f->type == METRIC_GAUGE || f->real;
    return real ? bits_to_double(u) : (double)u;
}

void metric_observe(const struct metric_family *f, size_t i, double v)
{
    struct metric_hist *h = &f->hists[i];
    size_t k = 0;
    while (k < f->n_le && v > f->le[k])
        k++;
    atomic_fetch_add_explicit(&h->bucket[k], 1, memory_order_relaxed);
    add_double(&h->sum, v);
}

bool metrics_label_escape(struct buf *b, const char *s)
{
    bool ok = true;
    for (; *s && ok; s++) {
        if (*s == '\\')
            ok = buf_puts(b, "\\\\");
        else if (*s == '"')
            ok = buf_puts(b, "\\\"");
        else if (*s == '\n')
            ok = buf_puts(b, "\\n");
        else
            ok = buf_putc(b, *s);
    }
    return ok;
}

/* A sample value: integers as integers, others with 15 significant digits. */
static bool put_value(struct buf *b, double v)
{
    if (isnan(v))
        return buf_puts(b, "NaN");
    if (isinf(v))
        return buf_puts(b, v > 0 ? "+Inf" : "-Inf");
    if (v == floor(v) && fabs(v) < 9007199254740992.0)
        return buf_printf(b, "%.0f", v);
    return buf_printf(b, "%.15g", v);
}

/* HELP text: backslash and newline escaped. */
static bool put_help(struct buf *b, const char *s)
{
    bool ok = true;
    for (; *s && ok; s++)
        ok = *s == '\\' ? buf_puts(b, "\\\\") : *s == '\n' ? buf_puts(b, "\\n") : buf_putc(b, *s);
    return ok;
}

/* The label list of cell (i0, i1) without braces, plus extra (a rendered
 * label or NULL); "" when there are none. */
static bool put_labels(struct buf *b, const struct metric_family *f, size_t i0, size_t i1,
                       const char *extra)
{
    const size_t idx[2] = {i0, i1};
    bool any = false, ok = true;
    for (int d = 0; d < 2 && ok; d++) {
        const struct metric_dim *dm = &f->dim[d];
        if (!dm->n)
            continue;
        ok = (!any || buf_putc(b, ',')) &&
             (dm->name ? buf_printf(b, "%s=\"", dm->name) &&
                             metrics_label_escape(b, dm->values[idx[d]]) && buf_putc(b, '"')
                       : buf_puts(b, dm->values[idx[d]]));
        any = true;
    }
    if (ok && extra)
        ok = (!any || buf_putc(b, ',')) && buf_puts(b, extra);
    return ok;
}

/* name{labels} value */
static bool put_sample(struct buf *b, const struct metric_family *f, const char *suffix, size_t i0,
                       size_t i1, const char *extra, double v)
{
    bool labels = f->dim[0].n || f->dim[1].n || extra;
    bool ok = buf_puts(b, f->name) && buf_puts(b, suffix);
    if (ok && labels)
        ok = buf_putc(b, '{') && put_labels(b, f, i0, i1, extra) && buf_putc(b, '}');
    return ok && buf_putc(b, ' ') && put_value(b, v) && buf_putc(b, '\n');
}

static bool put_hist(struct buf *b, const struct metric_family *f, size_t i0, size_t i1)
{
    const struct metric_hist *h = &f->hists[metric_at(f, i0, i1)];
    uint64_t counts[METRIC_MAX_LE + 1], total = 0;
    for (size_t k = 0; k <= f->n_le; k++) {
        counts[k] = atomic_load_explicit(&h->bucket[k], memory_order_relaxed);
        total += counts[k];
    }
    if (f->skip_zero && total == 0)
        return true;
    uint64_t cum = 0;
    bool ok = true;
    for (size_t k = 0; k <= f->n_le && ok; k++) {
        char le[48];
        cum += counts[k];
        if (k < f->n_le)
            snprintf(le, sizeof(le), "le=\"%.6g\"", f->le[k]);
        else
            snprintf(le, sizeof(le), "le=\"+Inf\"");
        ok = put_sample(b, f, "_bucket", i0, i1, le, (double)cum);
    }
    double sum = bits_to_double(atomic_load_explicit(&h->sum, memory_order_relaxed));
    return ok && put_sample(b, f, "_sum", i0, i1, NULL, sum) &&
           put_sample(b, f, "_count", i0, i1, NULL, (double)total);
}

static bool render_family(struct buf *b, const struct metric_family *f)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    bool ok = buf_printf(b, "# HELP %s ", f->name) && put_help(b, f->help) &&
              buf_printf(b, "\n# TYPE %s %s\n", f->name, types[f->type]);
    size_t n0 = f->dim[0].n ? f->dim[0].n : 1, n1 = f->dim[1].n ? f->dim[1].n : 1;
    for (size_t i0 = 0; i0 < n0 && ok; i0++) {
        for (size_t i1 = 0; i1 < n1 && ok; i1++) {
            if (f->type == METRIC_HISTOGRAM) {
                ok = put_hist(b, f, i0, i1);
                continue;
            }
            double v = metric_get(f, metric_at(f, i0, i1));
            if (!(f->skip_zero && v == 0))
                ok = put_sample(b, f, "", i0, i1, NULL, v);
        }
    }
    return ok;
}

bool metrics_render(struct buf *b, const struct metric_family *const *fams, size_t n)
{
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++)
        ok = render_family(b, fams[i]);
    return ok;
}
