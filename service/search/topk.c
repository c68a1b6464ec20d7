/* topk.c: the bounded heap of the k best rows (see topk.h). */
#include "search/topk.h"

#include <math.h>
#include <stdlib.h>

void topk_init(struct topk *t, struct topk_entry *storage, int k, double delta)
{
    t->e = storage;
    t->k = k;
    t->n = 0;
    t->delta = delta;
    t->thr = -INFINITY;
}

/* a is worse than b: it belongs nearer the top of the min-heap */
static inline bool worse(const struct topk_entry *a, const struct topk_entry *b)
{
    return topk_better(b->score, b->row, a->score, a->row);
}

static void sift_down(struct topk *t, int i)
{
    struct topk_entry x = t->e[i];
    for (;;) {
        int c = 2 * i + 1;
        if (c >= t->n)
            break;
        if (c + 1 < t->n && worse(&t->e[c + 1], &t->e[c]))
            c++;
        if (!worse(&t->e[c], &x))
            break;
        t->e[i] = t->e[c];
        i = c;
    }
    t->e[i] = x;
}

static void sift_up(struct topk *t, int i)
{
    struct topk_entry x = t->e[i];
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!worse(&x, &t->e[p]))
            break;
        t->e[i] = t->e[p];
        i = p;
    }
    t->e[i] = x;
}

/* The float below which no scan score can belong to a row beating the top. */
static void update_thr(struct topk *t)
{
    if (t->n < t->k)
        return;
    float f = (float)(t->e[0].score - t->delta);
    t->thr = nextafterf(f, -INFINITY); /* rounding must never raise the bar */
}

int topk_push(struct topk *t, double score, uint64_t row)
{
    if (t->n < t->k) {
        int slot = t->n;
        t->e[t->n] = (struct topk_entry){score, row, (uint32_t)slot};
        t->n++;
        sift_up(t, t->n - 1);
        update_thr(t);
        return slot;
    }
    if (t->k == 0 || !topk_better(score, row, t->e[0].score, t->e[0].row))
        return -1;
    uint32_t slot = t->e[0].slot;
    t->e[0] = (struct topk_entry){score, row, slot};
    sift_down(t, 0);
    update_thr(t);
    return (int)slot;
}

static int cmp_best_first(const void *pa, const void *pb)
{
    const struct topk_entry *a = pa, *b = pb;
    if (topk_better(a->score, a->row, b->score, b->row))
        return -1;
    return topk_better(b->score, b->row, a->score, a->row) ? 1 : 0;
}

void topk_sort(struct topk *t)
{
    qsort(t->e, (size_t)t->n, sizeof(*t->e), cmp_best_first);
}
