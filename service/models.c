/* models.c: the table of embedding-model facts (see models.h). */
#include "models.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct model_facts table[] = {
    /*
     * gemini-embedding-001. Sources, read 2026-12-06: Google's model page
     * (ai.google.dev/gemini-api/docs/models/gemini-embedding-001, updated
     * 2026-02-18): input token limit 2,048, output 128-3072, recommended 768,
     * 1536, 3072; the embeddings guide: 3072 by default, only 3072-d vectors
     * are normalised ("you need to perform manual normalization for
     * dimensions other than 3072"), the taskType field and the title (only
     * with RETRIEVAL_DOCUMENT); the batch guide: batch at 50% of the
     * interactive price; the Gemini Embedding launch post
     * (developers.googleblog.com, 2025): $0.15 per 1M input tokens,
     * hence $0.075 through batch (shared/gemini-batch-api.md §6).
     * embedd's default of 768 dimensions is its own choice (a quarter of the
     * storage and scan time of 3072, one of Google's recommended sizes).
     */
    {.name = "gemini-embedding-001",
     .batch = true,
     .max_input_tokens = 2048,
     .min_dims = 128,
     .max_dims = 3072,
     .default_dims = 768,
     .unit_dims = 3072,
     .interactive_per_mtok = 0.15,
     .batch_per_mtok = 0.075,
     .confirmed = true,
     .native_dims = 3072,
     .unit_all_dims = false,
     .task = MODEL_TASK_FIELDS,
     .prompt_scheme = NULL,
     .unconfirmed = NULL},
    /*
     * gemini-embedding-2 (GA 2026-04-22). Sources, read 2026-12-06
     * (docs/gemini-embedding-2.md has the quotes): Google's embeddings guide
     * (ai.google.dev/gemini-api/docs/embeddings, "Latest update April
     * 2026"): input token limit 8,192, output 128-3072, 3072 by default,
     * recommended 768, 1536, 3072; "automatically normalizes these truncated
     * embeddings" (unit length at every size); "the task_type parameter is
     * not supported. Instead, you should include task instructions directly
     * in the prompt", with the templates of models_prompt; batch through
     * asyncBatchEmbedContent (the guide's Batch API note; Google's JS SDK
     * sample batch_embedding_inline.ts, 2026-08-17); "at 50% of the default
     * Embedding price". UNCONFIRMED: $0.20 per 1M input tokens comes from a
     * transcription of Google's pricing page (api-evangelist/gemini,
     * 2026-09-20) and third parties, not from a page of Google's read here;
     * $0.10 through batch follows from the confirmed 50%.
     */
    {.name = "gemini-embedding-2",
     .batch = true,
     .max_input_tokens = 8192,
     .min_dims = 128,
     .max_dims = 3072,
     .default_dims = 768,
     .unit_dims = 3072,
     .interactive_per_mtok = 0.20,
     .batch_per_mtok = 0.10,
     .confirmed = false,
     .native_dims = 3072,
     .unit_all_dims = true,
     .task = MODEL_TASK_PROMPT,
     .prompt_scheme = "gemini-embedding-2 task prompts, embeddings guide 2026-04",
     .unconfirmed = "the interactive price ($0.20 per 1M tokens: a transcription of Google's "
                    "pricing page, 2026-09-20)"},
};

/* The instruction of each task for a MODEL_TASK_PROMPT model: Google's
 * embeddings guide, "Task types with Embeddings 2" (2026-04); the enum
 * pairing is embedd's (docs/gemini-embedding-2.md §4.3). */
static const struct {
    const char *task, *lead;
} prompts[] = {
    {"RETRIEVAL_DOCUMENT", "title: "},
    {"RETRIEVAL_QUERY", "task: search result | query: "},
    {"QUESTION_ANSWERING", "task: question answering | query: "},
    {"FACT_VERIFICATION", "task: fact checking | query: "},
    {"CODE_RETRIEVAL_QUERY", "task: code retrieval | query: "},
    {"SEMANTIC_SIMILARITY", "task: sentence similarity | query: "},
    {"CLASSIFICATION", "task: classification | query: "},
    {"CLUSTERING", "task: clustering | query: "},
};

/* Models Google serves that embedd cannot use, and why. */
static const struct {
    const char *name, *why;
} refused[] = {
    /* asyncBatchEmbedContent answers 404 for it (shared/gemini-batch-api.md);
     * the Gemini Embedding launch post (developers.googleblog.com, 2025)
     * announced its deprecation for 2026-01-14, and embedding-001's for
     * 2025-08-14 */
    {"text-embedding-004", "has no batch support (asyncBatchEmbedContent answers 404 for it), and "
                           "Google deprecated it on 2026-01-14"},
    {"embedding-001", "has no batch support and is retired"},
    /* docs/gemini-embedding-2.md §1: the preview's state, batch support and
     * vector space are not documented */
    {"gemini-embedding-2-preview", "is the preview of gemini-embedding-2, whose batch support and "
                                   "vector space Google does not document; use gemini-embedding-2"},
};

/* --prices overrides, set once at start-up before any thread runs. */
static struct {
    char model[64];
    double interactive, batch;
} overrides[8];
static size_t n_overrides;

/* --default-model, set once at start-up before any thread runs. */
static const struct model_facts *default_model = &table[0];

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

int models_max_dims(void)
{
    int max = 0;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        max = table[i].max_dims > max ? table[i].max_dims : max;
    return max;
}

bool models_set_default(const char *name, char *err, size_t errlen)
{
    const struct model_facts *m = models_find(name);
    if (!m || !m->batch) {
        char names[256];
        models_names(names, sizeof(names));
        const char *why = models_refused(name);
        snprintf(err, errlen, "--default-model: \"%.60s\" %s; one of: %s", name ? name : "",
                 why ? why : "is not a model embedd knows", names);
        return false;
    }
    default_model = m;
    return true;
}

const struct model_facts *models_default(void)
{
    return default_model;
}

bool models_unit_length(const struct model_facts *m, int dims)
{
    return m && (m->unit_all_dims || dims == m->unit_dims);
}

bool models_normalises(const char *model, int dims, bool normalize)
{
    return normalize && !models_unit_length(models_find(model), dims);
}

int models_max_chunk_chars(const struct model_facts *m)
{
    return (int)((long long)m->max_input_tokens * 125 / 32);
}

bool models_prompt(const struct model_facts *m, const char *task, struct model_prompt *out)
{
    out->lead = "";
    out->titled = false;
    if (!m || m->task != MODEL_TASK_PROMPT)
        return false;
    for (size_t i = 0; task && i < sizeof(prompts) / sizeof(prompts[0]); i++)
        if (strcmp(prompts[i].task, task) == 0) {
            out->lead = prompts[i].lead;
            out->titled = strcmp(task, "RETRIEVAL_DOCUMENT") == 0;
            break;
        }
    return true;
}

size_t models_prompt_head(const struct model_facts *m, const char *task, const char *title,
                          size_t title_len, char *out, size_t n)
{
    struct model_prompt p;
    if (n)
        out[0] = '\0';
    if (!models_prompt(m, task, &p) || (!p.lead[0] && !p.titled))
        return 0;
    if (!title || title_len == 0) {
        title = MODEL_PROMPT_NO_TITLE;
        title_len = strlen(title);
    }
    size_t lead = strlen(p.lead), end = strlen(MODEL_PROMPT_TITLE_END);
    size_t len = lead + (p.titled ? title_len + end : 0);
    if (len >= n)
        return SIZE_MAX;
    memcpy(out, p.lead, lead);
    if (p.titled) {
        memcpy(out + lead, title, title_len);
        memcpy(out + lead + title_len, MODEL_PROMPT_TITLE_END, end);
    }
    out[len] = '\0';
    return len;
}

bool models_title_sent(const struct model_facts *m, const char *task)
{
    (void)m; /* both mechanisms carry a title only for documents */
    return task && strcmp(task, "RETRIEVAL_DOCUMENT") == 0;
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
