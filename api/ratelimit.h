/*
 * ratelimit.h: requests per second per API key, as token buckets held in
 * this process (each replica has its own buckets: N replicas behind a load
 * balancer let a key through at up to N times its rate).
 *
 * A key's bucket holds at most burst tokens and gains rate tokens a second;
 * a request takes one, and is refused while the bucket has less than one.
 * The rate and burst are given on every call, so a changed limit applies at
 * once (the tokens are clamped to the new burst). Buckets are made on a
 * key's first limited request and kept for the life of the process (one per
 * key: keys are few). Thread-safe.
 */
#ifndef API_RATELIMIT_H
#define API_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "util/compiler.h"

struct ratelimit;

/* NULL when out of memory. */
struct ratelimit *ratelimit_new(void) SVC_MUSTCHECK;
/* NULL is a no-op. */
void ratelimit_free(struct ratelimit *rl);

/*
 * Take one token from key's bucket at now_ns (a monotonic clock) with rate
 * tokens a second (> 0) and room for burst (>= 1). true: allowed. false:
 * refused, and *retry_ms says how long until a token is there (>= 1). Out of
 * memory for a new bucket lets the request through (a limit is not worth an
 * outage).
 */
bool ratelimit_take(struct ratelimit *rl, int64_t key, double rate, double burst, int64_t now_ns,
                    int64_t *retry_ms);

#endif
