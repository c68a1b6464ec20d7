/* test_models.c: the model table (service/models.c) and what follows from it: the facts of
 * both models, the refused ones with their reasons, --default-model, the task instruction
 * gemini-embedding-2 gets in its text (exact bytes, Google's templates), the request bodies
 * of each model (taskType/title fields for 001, never for 2) with their sizes computed without
 * the texts, chunk budgets at both token limits, and vector identities that never cross
 * models while 001's stay what they were. */
#include "chunker/budget.h"
#include "chunker/chunker.h"
#include "gemini/request.h"
#include "models.h"
#include "store/identity.h"
#include "util/buf.h"
#include "util/jsonw.h"

#include <criterion/criterion.h>

#include <openssl/evp.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define M1 "gemini-embedding-001"
#define M2 "gemini-embedding-2"

Test(models, table_facts)
{
    size_t n;
    const struct model_facts *all = models_all(&n);
    cr_assert_eq(n, 2);
    const struct model_facts *a = models_find(M1), *b = models_find(M2);
    cr_assert(a == &all[0] && b == &all[1]);
    cr_assert(a->batch && b->batch);
    cr_assert_eq(a->max_input_tokens, 2048);
    cr_assert_eq(b->max_input_tokens, 8192);
    cr_assert(a->min_dims == 128 && a->max_dims == 3072 && a->native_dims == 3072);
    cr_assert(b->min_dims == 128 && b->max_dims == 3072 && b->native_dims == 3072);
    cr_assert(a->default_dims == 768 && b->default_dims == 768);
    cr_assert_eq(a->task, MODEL_TASK_FIELDS);
    cr_assert_eq(b->task, MODEL_TASK_PROMPT);
    cr_assert_null(a->prompt_scheme);
    cr_assert_not_null(b->prompt_scheme);
    cr_assert(a->confirmed && !a->unconfirmed);
    cr_assert(!b->confirmed && b->unconfirmed, "the $0.20 is a transcription");
    double pi, pb;
    cr_assert(models_prices(M1, &pi, &pb) && pi == 0.15 && pb == 0.075);
    cr_assert(models_prices(M2, &pi, &pb) && pi == 0.20 && pb == 0.10);
    cr_assert_eq(models_max_dims(), 3072);
    cr_assert_eq(models_max_chunk_chars(a), 8000);
    cr_assert_eq(models_max_chunk_chars(b), 32000);
    /* unit length: 001 only at 3072, 2 at every size */
    cr_assert(models_unit_length(a, 3072) && !models_unit_length(a, 768));
    cr_assert(models_unit_length(b, 3072) && models_unit_length(b, 128));
    cr_assert(models_normalises(M1, 768, true) && !models_normalises(M1, 3072, true));
    cr_assert(!models_normalises(M2, 768, true) && !models_normalises(M1, 768, false));
    cr_assert(models_normalises("unknown", 768, true));
    char names[256];
    models_names(names, sizeof(names));
    cr_assert_str_eq(names, "gemini-embedding-001, gemini-embedding-2");
}

Test(models, refused_and_unknown)
{
    cr_assert_null(models_find("text-embedding-004"));
    const char *why = models_refused("text-embedding-004");
    cr_assert(why && strstr(why, "no batch support"), "%s", why);
    cr_assert_not_null(models_refused("gemini-embedding-2-preview"));
    cr_assert_null(models_refused(M2));
    cr_assert_null(models_find("gemini-embedding-3"));
    cr_assert_null(models_refused("gemini-embedding-3"));
}

Test(models, default_model)
{
    char err[256];
    cr_assert_str_eq(models_default()->name, M1, "001 until set");
    cr_assert(models_set_default(M2, err, sizeof(err)));
    cr_assert_str_eq(models_default()->name, M2);
    cr_assert_not(models_set_default("text-embedding-004", err, sizeof(err)));
    cr_assert(strstr(err, "no batch support") && strstr(err, M1), "%s", err);
    cr_assert_not(models_set_default("nope", err, sizeof(err)));
    cr_assert(strstr(err, "gemini-embedding-001, gemini-embedding-2"), "%s", err);
    cr_assert_str_eq(models_default()->name, M2, "a refused setting changes nothing");
}

/* The instruction of every task, byte for byte as Google's guide writes it. */
Test(models, prompt_heads)
{
    static const struct {
        const char *task, *title, *head;
    } cases[] = {
        {"RETRIEVAL_DOCUMENT", NULL, "title: none | text: "},
        {"RETRIEVAL_DOCUMENT", "", "title: none | text: "},
        {"RETRIEVAL_DOCUMENT", "Cats | dogs", "title: Cats | dogs | text: "},
        {"RETRIEVAL_QUERY", "ignored", "task: search result | query: "},
        {"QUESTION_ANSWERING", NULL, "task: question answering | query: "},
        {"FACT_VERIFICATION", NULL, "task: fact checking | query: "},
        {"CODE_RETRIEVAL_QUERY", NULL, "task: code retrieval | query: "},
        {"SEMANTIC_SIMILARITY", NULL, "task: sentence similarity | query: "},
        {"CLASSIFICATION", NULL, "task: classification | query: "},
        {"CLUSTERING", NULL, "task: clustering | query: "},
        {NULL, NULL, ""},
        {"", NULL, ""},
    };
    const struct model_facts *b = models_find(M2);
    char out[128];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n =
            models_prompt_head(b, cases[i].task, cases[i].title,
                               cases[i].title ? strlen(cases[i].title) : 0, out, sizeof(out));
        cr_assert_str_eq(out, cases[i].head, "case %zu", i);
        cr_assert_eq(n, strlen(cases[i].head));
    }
    cr_assert_eq(models_prompt_head(b, "RETRIEVAL_DOCUMENT", "long title", 10, out, 12), SIZE_MAX);
    cr_assert_eq(models_prompt_head(models_find(M1), "RETRIEVAL_QUERY", NULL, 0, out, 128), 0);
    cr_assert_str_eq(out, "");
}

static char *body_of(const char *model, const char *task, const char *title, const char *text)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    struct gem_req_opts o = {model, task, 256};
    struct gem_text t = {"k", text, strlen(text), title};
    cr_assert(gem_build_sync(&b, &o, &t, 1));
    size_t len;
    return buf_steal(&b, &len);
}

/* 001: taskType and (for documents) title as fields; 2: neither, the instruction in the text. */
Test(models, request_bodies)
{
    char *a = body_of(M1, "RETRIEVAL_DOCUMENT", "Doc \"A\"", "some text");
    cr_assert_str_eq(a, "{\"requests\":[{\"model\":\"models/gemini-embedding-001\",\"content\":{"
                        "\"parts\":[{\"text\":\"some text\"}]},\"taskType\":\"RETRIEVAL_DOCUMENT\","
                        "\"title\":\"Doc \\\"A\\\"\",\"outputDimensionality\":256}]}");
    free(a);
    a = body_of(M2, "RETRIEVAL_DOCUMENT", "Doc \"A\"", "some text");
    cr_assert_str_eq(a, "{\"requests\":[{\"model\":\"models/gemini-embedding-2\",\"content\":{"
                        "\"parts\":[{\"text\":\"title: Doc \\\"A\\\" | text: some text\"}]},"
                        "\"outputDimensionality\":256}]}");
    free(a);
    a = body_of(M2, "RETRIEVAL_QUERY", "dropped", "how?");
    cr_assert_str_eq(a, "{\"requests\":[{\"model\":\"models/gemini-embedding-2\",\"content\":{"
                        "\"parts\":[{\"text\":\"task: search result | query: how?\"}]},"
                        "\"outputDimensionality\":256}]}");
    free(a);
    a = body_of("models/gemini-embedding-2", "CLUSTERING", NULL, "x");
    cr_assert(strstr(a, "\"text\":\"task: clustering | query: x\""), "%s", a);
    cr_assert_null(strstr(a, "taskType"));
    free(a);
}

/* gem_batch_item_size_of (sizes from the stored JSON lengths, no text) equals the size of the
 * built item for both models, every task, with and without titles. */
Test(models, item_sizes_without_texts)
{
    static const char *const models[] = {M1, M2, "models/gemini-embedding-2"};
    static const char *const titles[] = {NULL, "", "T", "a \"quoted\"\ntitle | with bars"};
    static const char *const texts[] = {"x", "a text with \"quotes\" and \\ and \t tabs"};
    for (size_t m = 0; m < 3; m++)
        for (size_t k = 0; model_task_types[k]; k++)
            for (size_t t = 0; t < 4; t++)
                for (size_t x = 0; x < 2; x++) {
                    struct gem_req_opts o = {models[m], model_task_types[k], 768};
                    struct gem_text g = {"c-000001", texts[x], strlen(texts[x]), titles[t]};
                    long tl = titles[t] ? (long)jsonw_str_len(titles[t], strlen(titles[t])) : -1;
                    size_t want = gem_batch_item_size(&o, &g);
                    size_t got = gem_batch_item_size_of(
                        &o, g.key, jsonw_str_len(texts[x], strlen(texts[x])), tl);
                    cr_assert_eq(got, want, "%s %s title %zu text %zu", models[m],
                                 model_task_types[k], t, x);
                }
}

/* n words of "abcdef": 2 tokens each by the chunker's estimate. */
static char *words(size_t n)
{
    char *t = malloc(n * 7 + 1);
    for (size_t i = 0; i < n; i++)
        memcpy(t + 7 * i, "abcdef ", 7);
    t[7 * n - 1] = '\0';
    return t;
}

static int64_t max_chunk_tokens(const char *text, size_t max_chars, int64_t max_tokens,
                                size_t *n_out)
{
    struct chunk_opts o = {max_chars, 0, max_tokens};
    struct chunk *ch;
    size_t n;
    cr_assert(chunker_split(text, strlen(text), &o, &ch, &n));
    int64_t max = 0;
    for (size_t i = 0; i < n; i++)
        max = ch[i].tokens > max ? ch[i].tokens : max;
    free(ch);
    *n_out = n;
    return max;
}

/* The chunk budget: 001's 2,048 tokens (titles travel as a field); gemini-embedding-2's 8,192
 * less the instruction, title included. Chunks of a long text reach each limit and never
 * pass it. */
Test(models, chunk_budgets_at_both_limits)
{
    const struct model_facts *a = models_find(M1), *b = models_find(M2);
    struct chunk_budget ba, bb, bq, bt;
    cr_assert(chunk_budget_of(a, "RETRIEVAL_DOCUMENT", "A title", 7, &ba));
    cr_assert(ba.max_tokens == 2048 && ba.prompt_tokens == 0);
    cr_assert(chunk_budget_of(b, "RETRIEVAL_DOCUMENT", NULL, 0, &bb));
    int64_t doc = chunker_token_estimate("title: none | text: ", 20);
    cr_assert_eq(bb.prompt_tokens, doc);
    cr_assert_eq(bb.max_tokens, 8192 - doc);
    cr_assert(chunk_budget_of(b, "RETRIEVAL_QUERY", NULL, 0, &bq));
    cr_assert_eq(bq.prompt_tokens, chunker_token_estimate("task: search result | query: ", 29));
    char title[1001];
    memset(title, '!', 1000); /* the longest title: 1,000 tokens of punctuation */
    title[1000] = '\0';
    cr_assert(chunk_budget_of(b, "RETRIEVAL_DOCUMENT", title, 1000, &bt));
    cr_assert_eq(bt.prompt_tokens, 1000 + doc - chunker_token_estimate("none", 4));
    cr_assert_gt(bt.max_tokens, 7000);

    char *text = words(20000); /* 40,000 tokens, 140,000 characters */
    size_t n;
    /* 001 at its largest chunks: 8,000 characters would be ~2,300 tokens, so 2,048 binds */
    int64_t m = max_chunk_tokens(text, (size_t)models_max_chunk_chars(a), ba.max_tokens, &n);
    cr_assert_leq(m, 2048);
    cr_assert_geq(m, 2048 - 2, "the limit binds: %lld", (long long)m);
    cr_assert_geq(n, 40000 / 2048);
    /* 2 at its largest: 32,000 characters would be ~9,100 tokens, so 8,192 less the
     * instruction binds; a chunk with its instruction stays within 8,192 */
    m = max_chunk_tokens(text, (size_t)models_max_chunk_chars(b), bb.max_tokens, &n);
    cr_assert_leq(m + bb.prompt_tokens, 8192);
    cr_assert_geq(m, bb.max_tokens - 2, "the limit binds: %lld", (long long)m);
    cr_assert_geq(n, 40000 / 8192);
    free(text);
}

/* SHA-256 of the identity preimage as identity.h documents it (4-byte little-endian lengths,
 * 0xffffffff for an absent title), computed here independently. */
static void manual_identity(const char *model, const char *dims, const char *task,
                            const char *title, const char *text, const char *scheme,
                            unsigned char out[32])
{
    const char *f[8] = {"embedd-vector-v1", model, dims, task, "1", title, text, scheme};
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    cr_assert(EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1);
    for (int i = 0; i < 8; i++) {
        if (i == 7 && !scheme)
            break;
        uint32_t len = f[i] ? (uint32_t)strlen(f[i]) : UINT32_MAX;
        unsigned char l[4] = {(unsigned char)len, (unsigned char)(len >> 8),
                              (unsigned char)(len >> 16), (unsigned char)(len >> 24)};
        EVP_DigestUpdate(md, l, 4);
        if (f[i])
            EVP_DigestUpdate(md, f[i], strlen(f[i]));
    }
    unsigned int n;
    EVP_DigestFinal_ex(md, out, &n);
    EVP_MD_CTX_free(md);
}

/* 001's identities are unchanged by the second model (stored chunks keep matching); 2's
 * differ from 001's for the same text and name the prompt templates. */
Test(models, identities)
{
    unsigned char a[IDENTITY_LEN], b[IDENTITY_LEN], want[32];
    struct identity_space s1 = {M1, 768, "RETRIEVAL_DOCUMENT", true};
    struct identity_space s2 = {M2, 768, "RETRIEVAL_DOCUMENT", true};
    cr_assert(identity_of(&s1, "T", 1, "text", 4, a));
    manual_identity(M1, "768", "RETRIEVAL_DOCUMENT", "T", "text", NULL, want);
    cr_assert_arr_eq(a, want, 32);
    cr_assert(identity_of(&s2, "T", 1, "text", 4, b));
    cr_assert_arr_neq(a, b, 32);
    manual_identity(M2, "768", "RETRIEVAL_DOCUMENT", "T", "text", models_find(M2)->prompt_scheme,
                    want);
    cr_assert_arr_eq(b, want, 32);
    cr_assert(identity_of(&s2, NULL, 0, "text", 4, a));
    cr_assert_arr_neq(a, b, 32);
}
