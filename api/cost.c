/* cost.c: the "cost" object of jobs, collections and usage (see api.h). */
#include "api.h"

#include "models.h"

#include <stdio.h>

bool api_put_cost(struct buf *b, const char *model, const struct api_tokens *t)
{
    double pi = 0, pb = 0;
    if (!models_prices(model, &pi, &pb))
        pi = pb = 0;
    int64_t sent = t->batch + t->interactive;
    double paid = ((double)t->batch * pb + (double)t->interactive * pi) / 1e6;
    double equivalent = (double)sent * pi / 1e6;
    const char *source = t->estimated == 0 ? "google" : t->estimated >= sent ? "estimate" : "mixed";
    if (sent == 0)
        source = "google";
    return buf_printf(b,
                      "\"cost\":{\"currency\":\"USD\",\"tokens\":{\"batch\":%lld,"
                      "\"interactive\":%lld,\"reused\":%lld,\"estimated\":%lld,"
                      "\"source\":\"%s\"},\"batch\":%.6f,\"interactive_equivalent\":%.6f,"
                      "\"saved_by_batch\":%.6f,\"saved_by_reuse\":%.6f,"
                      "\"prices\":{\"interactive_per_1m_tokens\":%.6g,"
                      "\"batch_per_1m_tokens\":%.6g}}",
                      (long long)t->batch, (long long)t->interactive, (long long)t->reused,
                      (long long)t->estimated, source, paid, equivalent, equivalent - paid,
                      (double)t->reused * pb / 1e6, pi, pb);
}
