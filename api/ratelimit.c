/* ratelimit.c: per-key token buckets (see ratelimit.h). */
#include "ratelimit.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>

struct bucket {
    int64_t key; /* 0: empty slot (key ids start at 1) */
    double tokens;
    int64_t at_ns; /* when tokens was right */
};

struct ratelimit {
    pthread_mutex_t lock;
    struct bucket *slots; /* open addressing, linear probing, at most half full */
    size_t cap, n;
};

struct ratelimit *ratelimit_new(void)
{
    struct ratelimit *rl = calloc(1, sizeof(*rl));
    if (!rl)
        return NULL;
    rl->cap = 64;
    rl->slots = calloc(rl->cap, sizeof(*rl->slots));
    if (!rl->slots) {
        free(rl);
        return NULL;
    }
    pthread_mutex_init(&rl->lock, NULL);
    return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
    if (!rl)
        return;
    pthread_mutex_destroy(&rl->lock);
    free(rl->slots);
    free(rl);
}

static size_t slot_of(int64_t key, size_t cap)
{
    uint64_t h = (uint64_t)key * 0x9E3779B97F4A7C15ULL; /* Fibonacci hashing */
    return (size_t)(h >> 32) & (cap - 1);
}

static struct bucket *find(struct bucket *slots, size_t cap, int64_t key)
{
    size_t i = slot_of(key, cap);
    while (slots[i].key && slots[i].key != key)
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

static bool grow(struct ratelimit *rl)
{
    size_t cap = rl->cap * 2;
    struct bucket *s = calloc(cap, sizeof(*s));
    if (!s)
        return false;
    for (size_t i = 0; i < rl->cap; i++)
        if (rl->slots[i].key)
            *find(s, cap, rl->slots[i].key) = rl->slots[i];
    free(rl->slots);
    rl->slots = s;
    rl->cap = cap;
    return true;
}

bool ratelimit_take(struct ratelimit *rl, int64_t key, double rate, double burst, int64_t now_ns,
                    int64_t *retry_ms)
{
    if (burst < 1)
        burst = 1;
    pthread_mutex_lock(&rl->lock);
    struct bucket *b = find(rl->slots, rl->cap, key);
    if (!b->key) {
        if (2 * (rl->n + 1) > rl->cap) {
            if (!grow(rl)) {
                pthread_mutex_unlock(&rl->lock);
                return true;
            }
            b = find(rl->slots, rl->cap, key);
        }
        *b = (struct bucket){key, burst, now_ns};
        rl->n++;
    } else if (now_ns > b->at_ns) {
        b->tokens += (double)(now_ns - b->at_ns) * 1e-9 * rate;
        b->at_ns = now_ns;
    }
    if (b->tokens > burst)
        b->tokens = burst;
    bool ok = b->tokens >= 1.0;
    if (ok)
        b->tokens -= 1.0;
    else
        *retry_ms = (int64_t)ceil((1.0 - b->tokens) / rate * 1000.0);
    pthread_mutex_unlock(&rl->lock);
    if (!ok && *retry_ms < 1)
        *retry_ms = 1;
    return ok;
}
