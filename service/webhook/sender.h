/*
 * sender.h: the threads that deliver webhooks from the outbox
 * (store/webhooks.h): each claims the most overdue delivery, signs it with
 * its key's secret (and the previous one during a rotation's grace), POSTs
 * it (deliver.h) and records the attempt: delivered on a 2xx; 410 Gone ends
 * it; anything else is tried again after an exponential backoff with full
 * jitter (at least what a Retry-After asks) until --webhook-max-age-ms after
 * the event. Delivery is at least once: a claim is a lease, and a process
 * that dies mid-attempt leaves the delivery due again when it ends.
 */
#ifndef SVC_WEBHOOK_SENDER_H
#define SVC_WEBHOOK_SENDER_H

#include "config.h"
#include "store/pool.h"

#include <stddef.h>
#include <stdint.h>

struct wh_sender;

/* Start cfg->webhook_threads threads (none when 0: another replica
 * delivers). NULL with err set on failure. */
struct wh_sender *wh_sender_start(const struct config *cfg, struct db_pool *db, char *err,
                                  size_t errlen);
/* Stop claiming; returns at once. NULL is a no-op. */
void wh_sender_request_stop(struct wh_sender *s);
/* Stop and wait: attempts in flight get until deadline_ms, then are cut off
 * and handed back (due again at once, for any replica). Frees s. */
void wh_sender_stop(struct wh_sender *s, int64_t deadline_ms);

/* The delay before attempt number attempts + 1, after attempts failed ones:
 * uniform in [0, min(max_ms, base_ms * 2^(attempts - 1))] (full jitter), and
 * at least retry_after_s seconds when the receiver asked (-1: it did not),
 * capped at max_ms. r is a random 64-bit value. */
int64_t wh_backoff_ms(int attempts, int64_t base_ms, int64_t max_ms, int64_t retry_after_s,
                      uint64_t r);

#endif
