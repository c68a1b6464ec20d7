/*
 * test_models_api.c: both models through a real embedd serve, PostgreSQL and gemini-sim:
 * gemini-embedding-001 and gemini-embedding-2 through inline batches, file batches and the
 * interactive API, then queried (every stored and query vector is the simulator's for the
 * text the model must get: 001's taskType/title fields, or 2's instruction in the text; the
 * simulator runs with strict_task_fields, so a taskType or title sent to 2 fails the job);
 * one collection never mixes models (409); reuse never crosses models; the cost estimate of
 * one corpus at both models' prices with nothing stored or sent; --default-model; and bad
 * input (unknown model, text-embedding-004, dimensions or chunk sizes out of the model's
 * range), each a 4xx problem naming what is allowed.
 */
#include "chunker/budget.h"
#include "chunker/chunker.h"
#include "harness.h"
#include "models.h"
#include "svch.h"

#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define M1 "gemini-embedding-001"
#define M2 "gemini-embedding-2"

static struct simh sim;
static struct svch svc;

static void start(const char *const *svc_extra)
{
    static const char *const sf[] = {"--pending-ms=20", "--running-ms=30", "--strict-task-fields",
                                     NULL};
    simh_start(&sim, sf);
    static char flags[2][256];
    const char *argv[20];
    int n = 0;
    snprintf(flags[0], sizeof(flags[0]), "--gemini-base-url=%s", sim.base);
    snprintf(flags[1], sizeof(flags[1]), "--gemini-api-key=%s", SIMH_KEY);
    argv[n++] = flags[0];
    argv[n++] = flags[1];
    static const char *const fixed[] = {"--poll-min-ms=20", "--poll-max-ms=100", "--workers=2",
                                        "--lease-ms=5000"};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        argv[n++] = fixed[i];
    for (int i = 0; svc_extra && svc_extra[i]; i++)
        argv[n++] = svc_extra[i];
    argv[n] = NULL;
    svch_start(&svc, argv);
}

static void stop(void)
{
    svch_stop(&svc);
    simh_stop(&sim);
}

TestSuite(models, .fini = stop, .timeout = 300);

static void call(struct simh_resp *r, const char *method, const char *path, const char *ct,
                 const char *body)
{
    char url[512], auth[128], ctype[96];
    snprintf(url, sizeof(url), "%s%s", svc.base, path);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", svc.key);
    snprintf(ctype, sizeof(ctype), "Content-Type: %s", ct ? ct : "application/json");
    const char *hs[3] = {auth, body ? ctype : NULL, NULL};
    simh_req_url(r, method, url, body, body ? strlen(body) : 0, hs);
    cr_assert_eq(r->curl_code, 0, "%s %s: transfer failed", method, path);
}

static json_object *api(const char *method, const char *path, const char *body, long want)
{
    struct simh_resp r;
    call(&r, method, path, NULL, body);
    cr_assert_eq(r.status, want, "%s %s: %ld, want %ld: %.500s", method, path, r.status, want,
                 r.body);
    json_object *o = r.body && r.body[0] ? simh_json(&r) : NULL;
    simh_resp_free(&r);
    return o;
}

/* A 4xx problem+json whose code is code and whose detail holds every string of want. */
static void problem(const char *method, const char *path, const char *ct, const char *body,
                    long status, const char *code, const char *const *want)
{
    struct simh_resp r;
    call(&r, method, path, ct, body);
    cr_assert_eq(r.status, status, "%s %s: %ld: %.400s", method, path, r.status, r.body);
    char type[128];
    cr_assert(simh_header(&r, "Content-Type", type, sizeof(type)));
    cr_assert_str_eq(type, "application/problem+json");
    json_object *o = simh_json(&r);
    cr_assert_str_eq(simh_str(o, "code"), code, "%s", r.body);
    const char *detail = simh_str(o, "detail");
    for (int i = 0; want && want[i]; i++)
        cr_assert(detail && strstr(detail, want[i]), "detail lacks \"%s\": %s", want[i], detail);
    json_object_put(o);
    simh_resp_free(&r);
}

static json_object *wait_job(const char *id)
{
    char path[96];
    snprintf(path, sizeof(path), "/v1/jobs/%s", id);
    int64_t deadline = simh_ms() + 60000;
    for (;;) {
        json_object *o = api("GET", path, NULL, 200);
        const char *st = simh_str(o, "state");
        if (strcmp(st, "pending") && strcmp(st, "running"))
            return o;
        cr_assert(simh_ms() < deadline, "job %s still %s", id, st);
        json_object_put(o);
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static void create_coll(const char *name, const char *model, int dims, const char *extra,
                        char id[64])
{
    char body[512];
    snprintf(body, sizeof(body),
             "{\"name\":\"%s\",\"model\":\"%s\",\"output_dimensionality\":%d%s}", name, model, dims,
             extra ? extra : "");
    json_object *o = api("POST", "/v1/collections", body, 201);
    cr_assert_str_eq(simh_str(o, "model"), model);
    snprintf(id, 64, "%s", simh_str(o, "id"));
    json_object_put(o);
}

#define N_DOCS 12

static void doc_text(int i, char *out, size_t n)
{
    snprintf(out, n, "Document %d tells of topic %d, in colour %d.", i, i % 7, i % 3);
}

/* {"collection":..,"documents":[...]}: every third document without a title. */
static char *docs_body(const char *coll, int n)
{
    size_t cap = 512 + (size_t)n * 200;
    char *b = malloc(cap);
    size_t len = (size_t)snprintf(b, cap, "{\"collection\":\"%s\",\"documents\":[", coll);
    for (int i = 0; i < n; i++) {
        char text[128], title[48] = "";
        doc_text(i, text, sizeof(text));
        if (i % 3)
            snprintf(title, sizeof(title), ",\"title\":\"Title %d | part\"", i);
        len += (size_t)snprintf(b + len, cap - len, "%s{\"id\":\"d%02d\",\"text\":\"%s\"%s}",
                                i ? "," : "", i, text, title);
    }
    snprintf(b + len, cap - len, "]}");
    return b;
}

/* What the model is sent for a text (the simulator embeds exactly that), and the vector
 * embedd stores for it: 001 normalised here as embedd normalises it (dims < 3072). */
static void expected(const char *model, const char *task, const char *title, const char *text,
                     int dims, float *out)
{
    if (strcmp(model, M2) == 0) {
        char head[256];
        size_t n = models_prompt_head(models_find(M2), task, title, title ? strlen(title) : 0, head,
                                      sizeof(head));
        cr_assert_neq(n, SIZE_MAX);
        char *p = malloc(n + strlen(text) + 1);
        memcpy(p, head, n);
        memcpy(p + n, text, strlen(text) + 1);
        simh_expected_vector_renormalised(M2, 3072, p, strlen(p), dims, out);
        free(p);
        return;
    }
    simh_expected_vector(M1, 3072, task, text, strlen(text), dims, out);
    double s = 0;
    for (int i = 0; i < dims; i++)
        s += (double)out[i] * (double)out[i];
    for (int i = 0; i < dims; i++)
        out[i] = (float)((double)out[i] / sqrt(s));
}

/* Fill a collection of model with N_DOCS documents through POST /v1/jobs; check every vector,
 * a query through /v1/embed and /query, and the tokens the query cost. */
static void through_pipeline(const char *model, const char *name)
{
    char coll[64], path[160];
    create_coll(name, model, 256, NULL, coll);
    char *body = docs_body(coll, N_DOCS);
    json_object *j = api("POST", "/v1/jobs", body, 202);
    free(body);
    cr_assert_str_eq(simh_str(j, "settings.model"), model);
    char id[64];
    snprintf(id, sizeof(id), "%s", simh_str(j, "id"));
    json_object_put(j);
    j = wait_job(id);
    cr_assert_str_eq(simh_str(j, "state"), "succeeded", "%s", json_object_to_json_string(j));
    json_object_put(j);

    snprintf(path, sizeof(path), "/v1/jobs/%s/results?limit=100", id);
    json_object *o = api("GET", path, NULL, 200);
    json_object *rs = simh_get(o, "results");
    cr_assert_eq(json_object_array_length(rs), N_DOCS);
    cr_assert(json_object_get_boolean(simh_get(o, "normalized")));
    float v[256];
    for (size_t i = 0; i < N_DOCS; i++) {
        json_object *r = json_object_array_get_idx(rs, i);
        expected(model, "RETRIEVAL_DOCUMENT", simh_str(r, "title"), simh_str(r, "text"), 256, v);
        simh_assert_vector(simh_get(r, "embedding"), v, 256);
    }
    json_object_put(o);

    /* the query side: /v1/embed and /query embed "which colour?" the model's way */
    const char *q = "which colour is topic 3?";
    char qb[256];
    snprintf(qb, sizeof(qb), "{\"collection\":\"%s\",\"texts\":[\"%s\"]}", coll, q);
    o = api("POST", "/v1/embed", qb, 200);
    expected(model, "RETRIEVAL_QUERY", NULL, q, 256, v);
    simh_assert_vector(simh_get(o, "embeddings.0"), v, 256);
    cr_assert(json_object_get_boolean(simh_get(o, "normalized")));
    json_object_put(o);
    snprintf(path, sizeof(path), "/v1/collections/%s/query", coll);
    snprintf(qb, sizeof(qb), "{\"text\":\"%s\",\"top_k\":3}", q);
    o = api("POST", path, qb, 200);
    cr_assert_eq(json_object_array_length(simh_get(o, "results.0.matches")), 3);
    /* the query's tokens: its text, and for 2 the instruction sent with it */
    struct chunk_budget bud;
    cr_assert(chunk_budget_of(models_find(model), "RETRIEVAL_QUERY", NULL, 0, &bud));
    cr_assert_eq(bud.prompt_tokens > 0, strcmp(model, M2) == 0);
    cr_assert_eq(json_object_get_int64(simh_get(o, "tokens")),
                 chunker_token_estimate(q, strlen(q)) + bud.prompt_tokens);
    json_object_put(o);
}

/* Inline batches (no interactive path): both models; no taskType or title ever reaches 2. */
Test(models, inline_batches_both_models)
{
    static const char *const f[] = {"--sync-max-texts=0", NULL};
    start(f);
    through_pipeline(M1, "one");
    through_pipeline(M2, "two");
    cr_assert_geq(simh_stat(&sim, "creates_accepted"), 2);
    cr_assert_eq(simh_stat(&sim, "file_batches"), 0);
    cr_assert_eq(simh_stat(&sim, "task_fields_ignored"), 0);
}

/* File batches (every batch through the Files API). */
Test(models, file_batches_both_models)
{
    static const char *const f[] = {"--sync-max-texts=0", "--batch-inline-max-bytes=0", NULL};
    start(f);
    through_pipeline(M1, "one");
    through_pipeline(M2, "two");
    cr_assert_geq(simh_stat(&sim, "file_batches"), 2);
    cr_assert_eq(simh_stat(&sim, "texts_in_files"), 2 * N_DOCS);
}

/* The interactive API (small jobs): no batch at all. */
Test(models, interactive_both_models)
{
    static const char *const f[] = {"--sync-max-texts=1000", NULL};
    start(f);
    through_pipeline(M1, "one");
    through_pipeline(M2, "two");
    cr_assert_eq(simh_stat(&sim, "creates"), 0);
    cr_assert_eq(simh_stat(&sim, "sync_texts"), 2 * N_DOCS + 2 * 2);
}

/* A job naming another model than its collection's: 409, naming both, nothing stored; a job
 * naming none takes the collection's. Reuse never crosses models: the same text embedded by
 * 001 is sent again for 2. */
Test(models, one_model_per_collection_and_no_reuse_across)
{
    static const char *const f[] = {"--sync-max-texts=0", NULL};
    start(f);
    char c1[64], body[512];
    create_coll("one", M1, 128, NULL, c1);
    snprintf(body, sizeof(body),
             "{\"collection\":\"%s\",\"model\":\"%s\",\"documents\":[{\"id\":\"a\",\"text\":"
             "\"same text\"}]}",
             c1, M2);
    static const char *const both[] = {"model (job: gemini-embedding-2, collection: "
                                       "gemini-embedding-001)",
                                       NULL};
    problem("POST", "/v1/jobs", NULL, body, 409, "space_mismatch", both);
    json_object *l = api("GET", "/v1/jobs", NULL, 200);
    cr_assert_eq(json_object_array_length(simh_get(l, "jobs")), 0, "nothing stored");
    json_object_put(l);

    static const char doc[] = "{\"model\":\"%s\",\"output_dimensionality\":128,\"documents\":[{"
                              "\"id\":\"a\",\"text\":\"same text\"}]}";
    long long sent = 0;
    const char *models[3] = {M1, M1, M2};
    long long reused_want[3] = {0, 1, 0};
    for (int i = 0; i < 3; i++) {
        snprintf(body, sizeof(body), doc, models[i]);
        json_object *j = api("POST", "/v1/jobs", body, 202);
        char id[64];
        snprintf(id, sizeof(id), "%s", simh_str(j, "id"));
        json_object_put(j);
        j = wait_job(id);
        cr_assert_str_eq(simh_str(j, "state"), "succeeded");
        cr_assert_eq(json_object_get_int64(simh_get(j, "stats.chunks.reused")), reused_want[i],
                     "job %d (%s)", i, models[i]);
        json_object_put(j);
        long long now = simh_stat(&sim, "texts_received");
        cr_assert_eq(now - sent, 1 - reused_want[i], "job %d sent %lld texts", i, now - sent);
        sent = now;
    }
}

static void est_path(const char *coll, char *out, size_t n)
{
    snprintf(out, n, "/v1/collections/%s/estimate", coll);
}

/* The tokens a job of these documents costs in model's space, from the chunker and the
 * model's budget (what the estimate and the ingest both use). */
static void local_count(const char *model, int max_chars, const char *const *titles,
                        const char *const *texts, int n, long long *chunks, long long *tokens)
{
    *chunks = *tokens = 0;
    for (int i = 0; i < n; i++) {
        struct chunk_budget b;
        cr_assert(chunk_budget_of(models_find(model), "RETRIEVAL_DOCUMENT", titles[i],
                                  titles[i] ? strlen(titles[i]) : 0, &b));
        struct chunk_opts o = {(size_t)max_chars, 200, b.max_tokens};
        struct chunk *ch;
        size_t k;
        cr_assert(chunker_split(texts[i], strlen(texts[i]), &o, &ch, &k));
        for (size_t j = 0; j < k; j++)
            *tokens += ch[j].tokens + b.prompt_tokens;
        *chunks += (long long)k;
        free(ch);
    }
}

/* One corpus estimated in a 001 and a 2 collection: chunks (a long document is cut at each
 * model's own token limit), tokens (2's instruction counted) and dollars at each model's batch
 * and interactive prices; nothing stored, nothing sent; a real job then agrees. */
Test(models, estimate_at_both_prices)
{
    start(NULL);
    /* a long document: 9,000 words of 2 estimated tokens, 63,000 characters */
    size_t cap = 9000 * 7 + 1;
    char *longtext = malloc(cap);
    for (int i = 0; i < 9000; i++)
        memcpy(longtext + 7 * i, "abcdef ", 7);
    longtext[9000 * 7 - 1] = '\0';
    const char *texts[3] = {"A short first document.", "A second one, with a title.", longtext};
    const char *titles[3] = {NULL, "Second", NULL};
    size_t bcap = cap + 1024;
    char *body = malloc(bcap);
    snprintf(body, bcap,
             "{\"documents\":[{\"id\":\"a\",\"text\":\"%s\"},{\"id\":\"b\",\"title\":\"%s\","
             "\"text\":\"%s\"},{\"id\":\"c\",\"text\":\"%s\"}]}",
             texts[0], titles[1], texts[1], texts[2]);
    char c1[64], c2[64], path[128];
    create_coll("one", M1, 768, ",\"chunking\":{\"max_chars\":8000}", c1);
    create_coll("two", M2, 768, ",\"chunking\":{\"max_chars\":8000}", c2);
    long long tokens[2], n_chunks[2];
    const char *colls[2] = {c1, c2}, *models[2] = {M1, M2};
    for (int m = 0; m < 2; m++) {
        est_path(colls[m], path, sizeof(path));
        json_object *o = api("POST", path, body, 200);
        long long chunks;
        local_count(models[m], 8000, titles, texts, 3, &chunks, &tokens[m]);
        cr_assert_str_eq(simh_str(o, "model"), models[m]);
        cr_assert_eq(json_object_get_int(simh_get(o, "documents")), 3);
        cr_assert_eq(json_object_get_int64(simh_get(o, "chunks")), chunks);
        cr_assert_eq(json_object_get_int64(simh_get(o, "tokens")), tokens[m]);
        cr_assert_eq(json_object_get_int(simh_get(o, "max_input_tokens")),
                     models_find(models[m])->max_input_tokens);
        double pi = m ? 0.20 : 0.15, pb = m ? 0.10 : 0.075;
        cr_assert(fabs(json_object_get_double(simh_get(o, "cost.batch")) - tokens[m] * pb / 1e6) <
                  1e-6);
        cr_assert(fabs(json_object_get_double(simh_get(o, "cost.interactive_equivalent")) -
                       tokens[m] * pi / 1e6) < 1e-6);
        cr_assert(json_object_get_double(simh_get(o, "cost.prices.batch_per_1m_tokens")) == pb);
        cr_assert_eq(json_object_get_int64(simh_get(o, "cost.tokens.batch")), tokens[m]);
        cr_assert_str_eq(simh_str(o, "cost.tokens.source"), "estimate");
        json_object_put(o);
        n_chunks[m] = chunks;
    }
    /* the long document: 001 cuts it at 2,048 tokens (~1,024 words: 18,000 tokens make at
     * least 9 chunks), 2 at 8,000 characters (~1,143 words, ~2,286 tokens, within 8,192) */
    cr_assert_geq(n_chunks[0], 2 + 9);
    cr_assert_lt(n_chunks[1], n_chunks[0], "%lld vs %lld chunks", n_chunks[1], n_chunks[0]);
    cr_assert_gt(tokens[1], tokens[0], "2 pays its instructions");
    /* nothing stored, nothing sent */
    json_object *l = api("GET", "/v1/jobs", NULL, 200);
    cr_assert_eq(json_object_array_length(simh_get(l, "jobs")), 0);
    json_object_put(l);
    cr_assert_eq(simh_stat(&sim, "creates") + simh_stat(&sim, "sync_calls") +
                     simh_stat(&sim, "uploads_started"),
                 0, "nothing was sent to Google");

    /* the job itself: its token estimate is the estimate's */
    size_t off = strlen("{");
    char *job = malloc(bcap + 64);
    snprintf(job, bcap + 64, "{\"collection\":\"%s\",%s", c2, body + off);
    json_object *j = api("POST", "/v1/jobs", job, 202);
    cr_assert_eq(json_object_get_int64(simh_get(j, "stats.token_estimate")), tokens[1]);
    json_object_put(j);
    free(job);
    free(body);
    free(longtext);
}

/* The estimate's bad input: a missing collection, another model than the collection's,
 * another media type, an invalid document, a duplicate id: the job's verdicts. */
Test(models, estimate_bad_input)
{
    start(NULL);
    char c1[64], path[128];
    create_coll("one", M1, 768, NULL, c1);
    static const char ok[] = "{\"documents\":[{\"id\":\"a\",\"text\":\"x\"}]}";
    problem("POST", "/v1/collections/00000000-0000-4000-8000-000000000000/estimate", NULL, ok, 404,
            "collection_not_found", NULL);
    est_path(c1, path, sizeof(path));
    static const char *const mm[] = {"gemini-embedding-2", "gemini-embedding-001", NULL};
    problem("POST", path, NULL,
            "{\"model\":\"gemini-embedding-2\",\"documents\":[{\"id\":\"a\",\"text\":\"x\"}]}", 409,
            "space_mismatch", mm);
    problem("POST", path, "text/plain", ok, 415, "unsupported_media_type", NULL);
    problem("POST", path, NULL, "{\"documents\":[{\"id\":\"a\"}]}", 422, "empty_text", NULL);
    problem("POST", path, NULL,
            "{\"documents\":[{\"id\":\"a\",\"text\":\"x\"},{\"id\":\"a\",\"text\":\"y\"}]}", 422,
            "duplicate_id", NULL);
    problem("POST", path, NULL, "{\"documents\":[{\"id\":\"a\",\"text\":\"x\"}],\"nope\":1}", 400,
            "unknown_field", NULL);
    json_object *o = api("POST", path, ok, 200);
    cr_assert_eq(json_object_get_int(simh_get(o, "chunks")), 1);
    json_object_put(o);
}

/* Unknown models, models without batch support, dimensions and chunk sizes out of the
 * model's range: 422 problems naming what is allowed, for jobs and collections alike. */
Test(models, bad_input_names_the_allowed_values)
{
    start(NULL);
    static const char *const names[] = {"gemini-embedding-001, gemini-embedding-2", NULL};
    static const char *const batch[] = {"no batch support",
                                        "gemini-embedding-001, gemini-embedding-2", NULL};
    static const char *const range[] = {"between 128 and 3072", "gemini-embedding-2", NULL};
    static const char *const chars[] = {"8000", NULL};
    const char *paths[2] = {"/v1/jobs", "/v1/collections"};
    const char *bodies[2][5] = {
        {"{\"model\":\"gemini-embedding-3\",\"documents\":[{\"id\":\"a\",\"text\":\"x\"}]}",
         "{\"model\":\"text-embedding-004\",\"documents\":[{\"id\":\"a\",\"text\":\"x\"}]}",
         "{\"model\":\"gemini-embedding-2\",\"output_dimensionality\":4096,\"documents\":[{"
         "\"id\":\"a\",\"text\":\"x\"}]}",
         "{\"model\":\"gemini-embedding-2\",\"output_dimensionality\":64,\"documents\":[{"
         "\"id\":\"a\",\"text\":\"x\"}]}",
         "{\"chunking\":{\"max_chars\":8001},\"documents\":[{\"id\":\"a\",\"text\":\"x\"}]}"},
        {"{\"name\":\"a\",\"model\":\"gemini-embedding-3\"}",
         "{\"name\":\"a\",\"model\":\"text-embedding-004\"}",
         "{\"name\":\"a\",\"model\":\"gemini-embedding-2\",\"output_dimensionality\":4096}",
         "{\"name\":\"a\",\"model\":\"gemini-embedding-2\",\"output_dimensionality\":64}",
         "{\"name\":\"a\",\"chunking\":{\"max_chars\":8001}}"},
    };
    for (int p = 0; p < 2; p++) {
        problem("POST", paths[p], NULL, bodies[p][0], 422, "unknown_model", names);
        problem("POST", paths[p], NULL, bodies[p][1], 422, "model_not_supported", batch);
        problem("POST", paths[p], NULL, bodies[p][2], 422, "out_of_range", range);
        problem("POST", paths[p], NULL, bodies[p][3], 422, "out_of_range", range);
        problem("POST", paths[p], NULL, bodies[p][4], 422, "out_of_range", chars);
    }
    /* gemini-embedding-2 takes chunks four times as long */
    json_object_put(api("POST", "/v1/collections",
                        "{\"name\":\"long\",\"model\":\"gemini-embedding-2\",\"chunking\":{"
                        "\"max_chars\":32000}}",
                        201));
    json_object *l = api("GET", "/v1/jobs", NULL, 200);
    cr_assert_eq(json_object_array_length(simh_get(l, "jobs")), 0);
    json_object_put(l);
}

/* --default-model: jobs and collections that name no model get it, with its default size. */
Test(models, default_model_setting)
{
    static const char *const f[] = {"--default-model=gemini-embedding-2", "--sync-max-texts=0",
                                    NULL};
    start(f);
    json_object *c = api("POST", "/v1/collections", "{\"name\":\"d\"}", 201);
    cr_assert_str_eq(simh_str(c, "model"), M2);
    cr_assert_eq(json_object_get_int(simh_get(c, "output_dimensionality")), 768);
    json_object_put(c);
    json_object *j =
        api("POST", "/v1/jobs", "{\"documents\":[{\"id\":\"a\",\"text\":\"hello\"}]}", 202);
    cr_assert_str_eq(simh_str(j, "settings.model"), M2);
    char id[64];
    snprintf(id, sizeof(id), "%s", simh_str(j, "id"));
    json_object_put(j);
    j = wait_job(id);
    cr_assert_str_eq(simh_str(j, "state"), "succeeded");
    /* 2's batch results carry usageMetadata: Google's count, not an estimate */
    cr_assert_str_eq(simh_str(j, "cost.tokens.source"), "google");
    json_object_put(j);
}
