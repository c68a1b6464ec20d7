/* counters.c: the pipeline's process-local metric families (see counters.h). */
#include "store/counters.h"

#include "metrics/metrics.h"
#include "models.h"

#include <string.h>

static const char *const claim_outcomes[] = {"batch", "empty", "error"};
static const double claim_le[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                  0.1,    0.25,  0.5,    1,     2.5,  5,     10};
static struct metric_hist claim_hists[SVC_ARRAY_LEN(claim_outcomes)];
static const struct metric_family m_claims = {
    "embedd_claim_duration_seconds",
    "Duration of claims of pending chunks into a new batch (one transaction), by outcome: a batch "
    "taken, nothing to take, or an error; in this process",
    METRIC_HISTOGRAM,
    false,
    false,
    {{"outcome", claim_outcomes, SVC_ARRAY_LEN(claim_outcomes)}, {0}},
    claim_le,
    SVC_ARRAY_LEN(claim_le),
    NULL,
    claim_hists};

static const char *const transports[] = {"inline", "file", "sync"};
static atomic_uint_least64_t sent_cells[SVC_ARRAY_LEN(transports)];
static const struct metric_family m_sent = {
    "embedd_chunks_sent_total",
    "Chunks Google accepted for embedding, by transport (inline or file: in a batch created; "
    "sync: through the interactive API), resubmissions included; in this process",
    METRIC_COUNTER,
    false,
    false,
    {{"transport", transports, SVC_ARRAY_LEN(transports)}, {0}},
    NULL,
    0,
    sent_cells,
    NULL};

static const char *const result_outcomes[] = {"succeeded", "requeued", "failed"};
static atomic_uint_least64_t result_cells[SVC_ARRAY_LEN(result_outcomes)];
static const struct metric_family m_results = {
    "embedd_chunk_results_total",
    "Chunk results stored from Google's answers, by outcome (succeeded: a vector; requeued: to be "
    "tried again; failed: for good); in this process",
    METRIC_COUNTER,
    false,
    false,
    {{"outcome", result_outcomes, SVC_ARRAY_LEN(result_outcomes)}, {0}},
    NULL,
    0,
    result_cells,
    NULL};

static atomic_uint_least64_t reused_cell[1];
static const struct metric_family m_reused = {
    "embedd_chunks_reused_total",
    "Chunks filled at ingest from a vector already stored under the same API key (never sent); in "
    "this process",
    METRIC_COUNTER,
    false,
    false,
    {{0}, {0}},
    NULL,
    0,
    reused_cell,
    NULL};

enum { PATH_BATCH, PATH_INTERACTIVE, PATH_REUSED };
static const char *const token_paths[] = {"batch", "interactive", "reused"};
static atomic_uint_least64_t token_cells[SVC_ARRAY_LEN(token_paths)];
static const struct metric_family m_tokens = {
    "embedd_tokens_total",
    "Input tokens of succeeded chunks by path: sent in a batch, sent to the interactive API, or "
    "reused from a stored vector (Google's counts, embedd's estimate where Google gave none); in "
    "this process",
    METRIC_COUNTER,
    false,
    false,
    {{"path", token_paths, SVC_ARRAY_LEN(token_paths)}, {0}},
    NULL,
    0,
    token_cells,
    NULL};

static atomic_uint_least64_t paid_cell[1], equivalent_cell[1];
static const struct metric_family m_paid = {
    "embedd_cost_dollars_total",
    "USD paid to Google for the tokens of embedd_tokens_total (batch and interactive, at the "
    "model prices of --prices); in this process",
    METRIC_COUNTER,
    true,
    false,
    {{0}, {0}},
    NULL,
    0,
    paid_cell,
    NULL};
static const struct metric_family m_equivalent = {
    "embedd_cost_interactive_equivalent_dollars_total",
    "USD the same sent tokens would have cost at the interactive price; in this process",
    METRIC_COUNTER,
    true,
    false,
    {{0}, {0}},
    NULL,
    0,
    equivalent_cell,
    NULL};
static const char *const saved_by[] = {"batch", "reuse"};
static atomic_uint_least64_t saved_cells[SVC_ARRAY_LEN(saved_by)];
static const struct metric_family m_saved = {
    "embedd_cost_saved_dollars_total",
    "USD saved, by how: batch (the interactive equivalent minus what was paid) or reuse (reused "
    "tokens at the batch price); in this process",
    METRIC_COUNTER,
    true,
    false,
    {{"by", saved_by, SVC_ARRAY_LEN(saved_by)}, {0}},
    NULL,
    0,
    saved_cells,
    NULL};

static const struct metric_family *const families[] = {&m_claims, &m_sent, &m_results,    &m_reused,
                                                       &m_tokens, &m_paid, &m_equivalent, &m_saved};

const struct metric_family *const *store_metrics(size_t *n)
{
    *n = SVC_ARRAY_LEN(families);
    return families;
}

void store_count_claim(enum store_claim_outcome o, double seconds)
{
    if ((size_t)o < SVC_ARRAY_LEN(claim_outcomes))
        metric_observe(&m_claims, (size_t)o, seconds);
}

void store_count_sent(const char *transport, size_t chunks)
{
    for (size_t i = 0; i < SVC_ARRAY_LEN(transports); i++)
        if (strcmp(transport, transports[i]) == 0)
            metric_inc(&m_sent, i, chunks);
}

/* The model's prices per token (0 when unknown). */
static void prices(const char *model, double *interactive, double *batch)
{
    if (!models_prices(model, interactive, batch))
        *interactive = *batch = 0;
    *interactive /= 1e6;
    *batch /= 1e6;
}

void store_count_results(const char *model, bool interactive, size_t succeeded, size_t requeued,
                         size_t failed, int64_t tokens)
{
    metric_inc(&m_results, 0, succeeded);
    metric_inc(&m_results, 1, requeued);
    metric_inc(&m_results, 2, failed);
    if (tokens <= 0)
        return;
    double pi, pb;
    prices(model, &pi, &pb);
    double t = (double)tokens, paid = t * (interactive ? pi : pb);
    metric_inc(&m_tokens, interactive ? PATH_INTERACTIVE : PATH_BATCH, (uint64_t)tokens);
    metric_add(&m_paid, 0, paid);
    metric_add(&m_equivalent, 0, t * pi);
    metric_add(&m_saved, 0, t * pi - paid);
}

void store_count_reused(const char *model, int64_t chunks, int64_t tokens)
{
    if (chunks > 0)
        metric_inc(&m_reused, 0, (uint64_t)chunks);
    if (tokens <= 0)
        return;
    double pi, pb;
    prices(model, &pi, &pb);
    metric_inc(&m_tokens, PATH_REUSED, (uint64_t)tokens);
    metric_add(&m_saved, 1, (double)tokens * pb);
}
