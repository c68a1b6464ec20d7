/* budget.c: a document's chunk budget under a model (see budget.h). */
#include "chunker/budget.h"

#include "chunker/chunker.h"

#include <stdlib.h>

bool chunk_budget_of(const struct model_facts *m, const char *task, const char *title,
                     size_t title_len, struct chunk_budget *out)
{
    out->max_tokens = m->max_input_tokens;
    out->prompt_tokens = 0;
    char small[256];
    size_t cap = title_len + 128; /* the longest lead and the separator are shorter */
    char *head = cap <= sizeof(small) ? small : malloc(cap);
    if (!head)
        return false;
    size_t n = models_prompt_head(m, task, title, title_len, head, cap);
    if (n != SIZE_MAX && n > 0)
        out->prompt_tokens = chunker_token_estimate(head, n);
    if (head != small)
        free(head);
    if (n == SIZE_MAX)
        return false;
    out->max_tokens -= out->prompt_tokens;
    return out->max_tokens >= 4;
}
