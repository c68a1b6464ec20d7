/* models.c: the table of embedding-model facts (see models.h). */
#include "models.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct model_facts table[] = {
    /*
     * gemini-embedding-001. Sources, read 2026-12-06: Google's model page
     * (ai.google.dev/gemini-api/docs/models/gemini-embedding-001, updated
     * 2026-02-18): input token limit 2,048, output 128-3072, recommended 768,
     * 1536, 3072; the embeddings guide: only 3072-d vectors are normalised;
     * the batch guide: batch at 50% of the interactive price; the Gemini
     * Embedding launch post (developers.googleblog.com, 2025): $0.15 per 1M
     * input tokens, hence $0.075 through batch (shared/gemini-batch-api.md §6).
     */
    {"gemini-embedding-001", true, 2048, 128, 3072, 768, 3072, 0.15, 0.075, true},
};

/* Models Google serves that embedd cannot use, and why. */
static const struct {
    const char *name, *why;
} refused[] = {
    {"text-embedding-004", "has no batch support (asyncBatchEmbedContent answers 404)"},
    {"embedding-001", "has no batch support and is retired"},
};

/* --prices overrides, set once at start-up before any thread runs. */
static struct {
    char model[64];
    double interactive, batch;
} overrides[8];
static size_t n_overrides;

const struct model_facts *models_find(const char *name)
{
    for (size_t i = 0; name && i < sizeof(table) / sizeof(table[0]); i++)
        if (strcmp(table[i].name, name) == 0)
            return &table[i];
    return NULL;
}

const struct model_facts *models_all(size_t *n)
{
    *n = sizeof(table) / sizeof(table[0]);
    return table;
}

const char *models_refused(const char *name)
{
    for (size_t i = 0; name && i < sizeof(refused) / sizeof(refused[0]); i++)
        if (strcmp(refused[i].name, name) == 0)
            return refused[i].why;
    return NULL;
}

void models_names(char *out, size_t n)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]) && used < n; i++) {
        int k = snprintf(out + used, n - used, "%s%s", i ? ", " : "", table[i].name);
        if (k < 0)
            break;
        used += (size_t)k;
    }
}

const char *const model_task_types[] = {
    "RETRIEVAL_DOCUMENT", "RETRIEVAL_QUERY",      "SEMANTIC_SIMILARITY",
    "CLASSIFICATION",     "CLUSTERING",           "QUESTION_ANSWERING",
    "FACT_VERIFICATION",  "CODE_RETRIEVAL_QUERY", NULL};

bool models_task_valid(const char *task)
{
    for (size_t i = 0; task && model_task_types[i]; i++)
        if (strcmp(model_task_types[i], task) == 0)
            return true;
    return false;
}

static bool parse_price(const char *s, const char *end, double *out)
{
    char num[32];
    if (end <= s || (size_t)(end - s) >= sizeof(num))
        return false;
    memcpy(num, s, (size_t)(end - s));
    num[end - s] = '\0';
    char *e;
    errno = 0;
    double v = strtod(num, &e);
    if (errno || *e || !(v >= 0) || v > 1e6)
        return false;
    *out = v;
    return true;
}

bool models_set_prices(const char *spec, char *err, size_t errlen)
{
    n_overrides = 0;
    for (const char *p = spec; p && *p;) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        const char *slash = eq ? memchr(eq, '/', (size_t)(end - eq)) : NULL;
        double inter = 0, batch = 0;
        if (!eq || !slash || eq == p || (size_t)(eq - p) >= sizeof(overrides[0].model) ||
            n_overrides == sizeof(overrides) / sizeof(overrides[0]) ||
            !parse_price(eq + 1, slash, &inter) || !parse_price(slash + 1, end, &batch)) {
            snprintf(err, errlen,
                     "--prices: expected model=interactive/batch[,...] in USD per 1M tokens,"
                     " got \"%.80s\"",
                     spec);
            return false;
        }
        memcpy(overrides[n_overrides].model, p, (size_t)(eq - p));
        overrides[n_overrides].model[eq - p] = '\0';
        if (!models_find(overrides[n_overrides].model)) {
            snprintf(err, errlen, "--prices: unknown model \"%s\"", overrides[n_overrides].model);
            return false;
        }
        overrides[n_overrides].interactive = inter;
        overrides[n_overrides].batch = batch;
        n_overrides++;
        p = comma ? comma + 1 : end;
    }
    return true;
}

bool models_prices(const char *model, double *interactive, double *batch)
{
    for (size_t i = 0; i < n_overrides; i++)
        if (strcmp(overrides[i].model, model) == 0) {
            *interactive = overrides[i].interactive;
            *batch = overrides[i].batch;
            return true;
        }
    const struct model_facts *m = models_find(model);
    if (!m)
        return false;
    *interactive = m->interactive_per_mtok;
    *batch = m->batch_per_mtok;
    return true;
}
