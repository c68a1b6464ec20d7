/*
 * topk.h: the k best rows of a scan, by exact score. A bounded min-heap of
 * k entries (the worst on top) ordered by (score, then the lower row first),
 * so results and ties are deterministic.
 *
 * How a scan uses it without computing every exact score: each row gets a
 * float32 scan score f whose distance to its exact score s is at most delta
 * (kernel_delta). Once the heap is full, a row can only enter if s beats
 * the top, hence only if f >= top - delta: topk_admits tests that with one
 * float comparison, and only admitted rows get their exact (double) score
 * for topk_push. The top only rises, so a row refused once could never
 * have entered later: the final k are the exact top k.
 */
#ifndef SVC_SEARCH_TOPK_H
#define SVC_SEARCH_TOPK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct topk_entry {
    double score;
    uint64_t row;  /* the row's position in the collection's order: lower wins a tie */
    uint32_t slot; /* stable while the entry is in the heap (0..k-1): for side data */
};

struct topk {
    struct topk_entry *e; /* k entries, borrowed */
    int k, n;
    double delta;
    float thr; /* admission threshold of scan scores: -inf until full */
};

/* Start an empty heap over storage (k entries, borrowed). */
void topk_init(struct topk *t, struct topk_entry *storage, int k, double delta);

/* Whether a row with scan score f may enter (then compute its exact score). */
static inline bool topk_admits(const struct topk *t, float f)
{
    return f >= t->thr;
}

/* Offer a row with its exact score. Returns the slot it took (the slot of
 * the entry it pushed out, when the heap was full), or -1 if it did not
 * enter. */
int topk_push(struct topk *t, double score, uint64_t row);

/* Sort the entries best first (the heap is spent). */
void topk_sort(struct topk *t);

/* Whether a ranks before b: higher score, then lower row. */
static inline bool topk_better(double sa, uint64_t ra, double sb, uint64_t rb)
{
    return sa > sb || (sa == sb && ra < rb);
}

#endif
