/*
 * counters.h: the pipeline's figures as this process sees them, for
 * Prometheus (metrics/metrics.h): claims and their durations, chunks sent to
 * Google, results stored, chunks reused at ingest, and tokens with what they
 * cost, would have cost at the interactive price, and saved. Counted after
 * the transaction that made them true has committed; each replica counts its
 * own work (the database's totals are store/totals.h).
 */
#ifndef SVC_STORE_COUNTERS_H
#define SVC_STORE_COUNTERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct metric_family;

enum store_claim_outcome { STORE_CLAIM_BATCH, STORE_CLAIM_EMPTY, STORE_CLAIM_ERROR };

/* A claim ended: it took a batch, found nothing to take, or failed. */
void store_count_claim(enum store_claim_outcome o, double seconds);
/* Google accepted chunks: a batch created ("inline" or "file" transport) or
 * an interactive call answered ("sync"). */
void store_count_sent(const char *transport, size_t chunks);
/* Results stored for chunks (pipe_store_results, pipe_store_slice), and the
 * tokens of the succeeded ones at the model's prices (interactive: paid at
 * the interactive price). */
void store_count_results(const char *model, bool interactive, size_t succeeded, size_t requeued,
                         size_t failed, int64_t tokens);
/* A job reused stored vectors for chunks at ingest. */
void store_count_reused(const char *model, int64_t chunks, int64_t tokens);

/* The families behind the functions above. */
const struct metric_family *const *store_metrics(size_t *n);

#endif
