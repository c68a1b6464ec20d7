/*
 * test_pipeline_e2e.c: the whole pipeline for real: embedd serve (HTTP,
 * PostgreSQL, worker threads) against gemini-sim: every stored vector is
 * the simulator's deterministic vector for the chunk's text, normalised as
 * the job asked; large jobs span several Google batches; failed items are
 * retried then reported; cancel reaches Google; nothing is paid twice.
 */
#include "harness.h"
#include "svch.h"

#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct simh sim;
static struct svch svc;

static void start_both(const char *const *sim_flags, const char *const *svc_extra)
{
    simh_start(&sim, sim_flags);
    static char flags[16][256];
    const char *argv[20];
    int n = 0;
    snprintf(flags[n], sizeof(flags[n]), "--gemini-base-url=%s", sim.base);
    argv[n] = flags[n], n++;
    snprintf(flags[n], sizeof(flags[n]), "--gemini-api-key=%s", SIMH_KEY);
    argv[n] = flags[n], n++;
    static const char *const fixed[] = {"--poll-min-ms=20", "--poll-max-ms=200", "--workers=3",
                                        "--lease-ms=5000", "--sync-max-texts=0"};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        argv[n++] = fixed[i];
    for (int i = 0; svc_extra && svc_extra[i]; i++)
        argv[n++] = svc_extra[i];
    argv[n] = NULL;
    svch_start(&svc, argv);
}

static void stop_both(void)
{
    svch_stop(&svc);
    simh_stop(&sim);
}

static void start_default(void)
{
    static const char *const f[] = {"--pending-ms=20", "--running-ms=30", NULL};
    start_both(f, NULL);
}

TestSuite(e2e, .fini = stop_both, .timeout = 600);

static json_object *api(const char *method, const char *path, const char *body, long want)
{
    char url[256], auth[128];
    snprintf(url, sizeof(url), "%s%s", svc.base, path);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", svc.key);
    const char *hs[3] = {auth, "Content-Type: application/json", NULL};
    struct simh_resp r;
    simh_req_url(&r, method, url, body, body ? strlen(body) : 0, hs);
    cr_assert_eq(r.status, want, "%s %s: %ld: %.300s", method, path, r.status, r.body);
    json_object *o = simh_json(&r);
    simh_resp_free(&r);
    return o;
}

/* Wait until the job reaches a terminal state; returns it. */
static json_object *wait_job(const char *id, int timeout_ms)
{
    char path[96];
    snprintf(path, sizeof(path), "/v1/jobs/%s", id);
    int64_t deadline = simh_ms() + timeout_ms;
    for (;;) {
        json_object *o = api("GET", path, NULL, 200);
        const char *st = simh_str(o, "state");
        /* stats add up at every moment */
        json_object *c = simh_get(o, "stats.chunks");
        cr_assert_eq(json_object_get_int(simh_get(c, "pending")) +
                         json_object_get_int(simh_get(c, "in_flight")) +
                         json_object_get_int(simh_get(c, "succeeded")) +
                         json_object_get_int(simh_get(c, "failed")),
                     json_object_get_int(simh_get(c, "total")));
        if (strcmp(st, "pending") && strcmp(st, "running"))
            return o;
        cr_assert(simh_ms() < deadline, "job %s still %s after %d ms", id, st, timeout_ms);
        json_object_put(o);
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* The simulator's vector for text, normalised the way embedd does. */
static void expected(const char *task, const char *text, size_t len, int dims, bool normalize,
                     float *out)
{
    simh_expected_vector("gemini-embedding-001", 3072, task, text, len, dims, out);
    if (!normalize || dims == 3072)
        return;
    double s = 0;
    for (int i = 0; i < dims; i++)
        s += (double)out[i] * (double)out[i];
    double n = sqrt(s);
    for (int i = 0; i < dims; i++)
        out[i] = (float)((double)out[i] / n);
}

/* Page through every result; check vectors; returns counts of succeeded/failed. */
static void check_results(const char *id, const char *task, int dims, bool normalize,
                          int *succeeded, int *failed)
{
    char path[256], cursor[32] = "";
    float *exp = malloc(sizeof(float) * 3072);
    *succeeded = *failed = 0;
    int expect_seq = 0;
    for (;;) {
        snprintf(path, sizeof(path), "/v1/jobs/%s/results?limit=1000%s%s", id,
                 cursor[0] ? "&cursor=" : "", cursor);
        json_object *o = api("GET", path, NULL, 200);
        json_object *rs = simh_get(o, "results");
        for (size_t i = 0; i < json_object_array_length(rs); i++) {
            json_object *r = json_object_array_get_idx(rs, i);
            const char *st = simh_str(r, "state");
            expect_seq++;
            if (strcmp(st, "failed") == 0) {
                (*failed)++;
                cr_assert(simh_str(r, "error"), "a failed chunk carries its error");
                continue;
            }
            cr_assert_str_eq(st, "succeeded");
            json_object *t = simh_get(r, "text");
            expected(task, json_object_get_string(t), (size_t)json_object_get_string_len(t), dims,
                     normalize, exp);
            simh_assert_vector(simh_get(r, "embedding"), exp, dims);
            (*succeeded)++;
        }
        const char *next = simh_str(o, "next_cursor");
        if (!next) {
            json_object_put(o);
            break;
        }
        snprintf(cursor, sizeof(cursor), "%s", next);
        json_object_put(o);
    }
    free(exp);
}

static const char *sample_body(void)
{
    return "{\"documents\":[{\"id\":\"a\",\"title\":\"T\",\"text\":\"The quick brown fox.\\n\\n"
           "Jumps over the lazy dog.\"},{\"id\":\"b\",\"text\":\"caf\xc3\xa9 cr\xc3\xa8me\"}],"
           "\"output_dimensionality\":256}";
}

Test(e2e, small_job_end_to_end, .init = start_default)
{
    json_object *o = api("POST", "/v1/jobs", sample_body(), 202);
    char *id = strdup(simh_str(o, "id"));
    json_object_put(o);
    o = wait_job(id, 30000);
    cr_assert_str_eq(simh_str(o, "state"), "succeeded", "%s", json_object_to_json_string(o));
    cr_assert(simh_str(o, "finished_at"));
    cr_assert_eq(json_object_get_int(simh_get(o, "stats.batches.succeeded")), 1);
    json_object_put(o);
    int ok, bad;
    check_results(id, "RETRIEVAL_DOCUMENT", 256, true, &ok, &bad);
    cr_assert_eq(ok, 2);
    cr_assert_eq(bad, 0);
    cr_assert_eq(simh_stat(&sim, "creates_accepted"), 1);
    cr_assert_eq(simh_stat(&sim, "texts_duplicate"), 0);
    free(id);
}

static char *submit(const char *body)
{
    json_object *o = api("POST", "/v1/jobs", body, 202);
    char *id = strdup(simh_str(o, "id"));
    json_object_put(o);
    return id;
}

/* n documents of about chars characters of prose each. */
static char *big_job(int n, int sentences, const char *extra_opts, const char *marker_every)
{
    size_t cap = (size_t)n * ((size_t)sentences * 64 + 128) + 512;
    char *b = malloc(cap);
    size_t len = (size_t)snprintf(b, cap, "{%s\"documents\":[", extra_opts);
    for (int d = 0; d < n; d++) {
        len += (size_t)snprintf(b + len, cap - len, "%s{\"id\":\"doc-%d\",\"text\":\"",
                                d ? "," : "", d);
        for (int s = 0; s < sentences; s++)
            len += (size_t)snprintf(b + len, cap - len, "Doc %d sentence %d mentions %s%d. ", d, s,
                                    marker_every && s == 0 && d % 10 == 0 ? marker_every : "item",
                                    (d * 31 + s) % 1000);
        len += (size_t)snprintf(b + len, cap - len, "\"}");
    }
    snprintf(b + len, cap - len, "]}");
    return b;
}

static void start_large(void)
{
    static const char *const f[] = {"--pending-ms=10", "--running-ms=20", NULL};
    /* inline batches of 3,000 (file batches would take the job in one) */
    static const char *const s[] = {"--batch-max-requests=3000", "--file-batch-max-requests=0",
                                    NULL};
    start_both(f, s);
}

Test(e2e, ten_thousand_chunks_across_batches, .init = start_large)
{
    char *body = big_job(1000, 36,
                         "\"output_dimensionality\":128,\"chunking\":{\"max_chars\":"
                         "120,\"overlap_chars\":0},",
                         NULL);
    char *id = submit(body);
    free(body);
    /* ~20 s normally; ThreadSanitizer builds on a busy machine take minutes */
    json_object *o = wait_job(id, 540000);
    cr_assert_str_eq(simh_str(o, "state"), "succeeded");
    int total = json_object_get_int(simh_get(o, "stats.chunks.total"));
    cr_assert_geq(total, 10000, "%d chunks", total);
    int batches = json_object_get_int(simh_get(o, "stats.batches.succeeded"));
    cr_assert_geq(batches, 4, "at most 3000 chunks per Google batch (%d batches for %d chunks)",
                  batches, total);
    json_object_put(o);
    int ok, bad;
    check_results(id, "RETRIEVAL_DOCUMENT", 128, true, &ok, &bad);
    cr_assert_eq(ok, total);
    cr_assert_eq(bad, 0);
    cr_assert_eq(simh_stat(&sim, "creates_accepted"), batches);
    cr_assert_eq(simh_stat(&sim, "texts_received"), total, "every chunk sent exactly once");
    cr_assert_eq(simh_stat(&sim, "texts_duplicate"), 0);
    free(id);
}

static void start_failing(void)
{
    static const char *const f[] = {
        "--pending-ms=10",       "--running-ms=10", "--fail-marker=FAILME",
        "--item-error-rate=0.2", "--seed=7",        NULL};
    static const char *const s[] = {"--max-attempts=6", NULL};
    start_both(f, s);
}

Test(e2e, failed_items_are_retried_then_reported, .init = start_failing)
{
    char *body = big_job(50, 3, "\"output_dimensionality\":128,", "FAILME");
    char *id = submit(body);
    free(body);
    json_object *o = wait_job(id, 60000);
    cr_assert_str_eq(simh_str(o, "state"), "completed_with_errors");
    int failed = json_object_get_int(simh_get(o, "stats.chunks.failed"));
    cr_assert_eq(failed, 5, "the five marked documents fail for good (failed %d)", failed);
    json_object_put(o);
    int ok, bad;
    check_results(id, "RETRIEVAL_DOCUMENT", 128, true, &ok, &bad);
    cr_assert_eq(bad, 5);
    cr_assert_eq(ok, 45, "transient item errors were retried until they succeeded");
    /* each marked chunk was sent max_attempts times: the resends are accounted for */
    cr_assert_geq(simh_stat(&sim, "texts_duplicate"), 5 * 5);
    free(id);
}

static void start_slow(void)
{
    static const char *const f[] = {"--pending-ms=10", "--running-ms=600000", NULL};
    start_both(f, NULL);
}

Test(e2e, cancel_reaches_google, .init = start_slow)
{
    char *id = submit(sample_body());
    char path[128];
    snprintf(path, sizeof(path), "/v1/jobs/%s", id);
    int64_t deadline = simh_ms() + 20000;
    for (;;) {
        json_object *o = api("GET", path, NULL, 200);
        int sub = json_object_get_int(simh_get(o, "stats.batches.submitted"));
        json_object_put(o);
        if (sub > 0)
            break;
        cr_assert(simh_ms() < deadline, "no batch submitted");
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    snprintf(path, sizeof(path), "/v1/jobs/%s/cancel", id);
    json_object_put(api("POST", path, NULL, 202));
    deadline = simh_ms() + 20000;
    while (simh_stat(&sim, "cancels") < 1)
        cr_assert(simh_ms() < deadline, "the Google batch was not cancelled");
    json_object *o = wait_job(id, 20000);
    cr_assert_str_eq(simh_str(o, "state"), "cancelled");
    deadline = simh_ms() + 20000;
    for (;;) {
        snprintf(path, sizeof(path), "/v1/jobs/%s", id);
        json_object *j = api("GET", path, NULL, 200);
        int in_flight = json_object_get_int(simh_get(j, "stats.chunks.in_flight"));
        int failed = json_object_get_int(simh_get(j, "stats.chunks.failed"));
        int total = json_object_get_int(simh_get(j, "stats.chunks.total"));
        json_object_put(j);
        if (in_flight == 0) {
            cr_assert_eq(failed, total);
            break;
        }
        cr_assert(simh_ms() < deadline, "chunks still in flight after cancel");
    }
    json_object_put(o);
    free(id);
}

static void start_dropping(void)
{
    /* the first create's response is cut off: the batch exists but embedd cannot know */
    static const char *const f[] = {"--pending-ms=10", "--running-ms=20", "--drop-count=1",
                                    "--fault-scope=create", NULL};
    start_both(f, NULL);
}

Test(e2e, unknown_create_outcome_is_reconciled_not_resent, .init = start_dropping)
{
    char *id = submit(sample_body());
    json_object *o = wait_job(id, 30000);
    cr_assert_str_eq(simh_str(o, "state"), "succeeded");
    json_object_put(o);
    cr_assert_eq(simh_stat(&sim, "faults.drop"), 1);
    cr_assert_eq(simh_stat(&sim, "creates_accepted"), 1, "found by displayName, not created twice");
    cr_assert_eq(simh_stat(&sim, "texts_duplicate"), 0);
    int ok, bad;
    check_results(id, "RETRIEVAL_DOCUMENT", 256, true, &ok, &bad);
    cr_assert_eq(ok, 2);
    free(id);
}

static void start_throttled(void)
{
    static const char *const f[] = {"--pending-ms=10",      "--running-ms=20",
                                    "--http-error-count=4", "--http-error-code=429",
                                    "--retry-delay=0.05s",  NULL};
    start_both(f, NULL);
}

Test(e2e, rate_limits_are_retried, .init = start_throttled)
{
    char *id = submit(sample_body());
    json_object *o = wait_job(id, 30000);
    cr_assert_str_eq(simh_str(o, "state"), "succeeded");
    json_object_put(o);
    cr_assert_eq(simh_stat(&sim, "faults.http_error"), 4);
    cr_assert_eq(simh_stat(&sim, "creates_accepted"), 1);
    free(id);
}

static void start_sync(void)
{
    static const char *const f[] = {"--pending-ms=600000", NULL};
    static const char *const s[] = {"--sync-max-texts=99", NULL};
    start_both(f, s);
}

Test(e2e, small_jobs_use_the_interactive_api, .init = start_sync)
{
    char *id = submit(sample_body());
    json_object *o = wait_job(id, 30000);
    cr_assert_str_eq(simh_str(o, "state"), "succeeded", "batches would take 10 minutes here");
    json_object_put(o);
    cr_assert_eq(simh_stat(&sim, "creates"), 0);
    cr_assert_eq(simh_stat(&sim, "sync_texts"), 2);
    int ok, bad;
    check_results(id, "RETRIEVAL_DOCUMENT", 256, true, &ok, &bad);
    cr_assert_eq(ok, 2);
    free(id);
}

static void start_crashy(void)
{
    /* slow creates: kills land between the intent and Google's answer, and the
     * simulator still creates a batch whose caller died */
    static const char *const f[] = {"--pending-ms=30", "--running-ms=100", "--latency-ms=150",
                                    "--fault-scope=create", NULL};
    static const char *const s[] = {"--batch-max-requests=20", "--lease-ms=800", NULL};
    start_both(f, s);
}

/* kill -9 at seeded moments while batches are being created, polled and
 * stored; after each restart the work resumes, and in the end every chunk
 * has exactly its vector and no text was sent to Google twice. */
Test(e2e, crash_restarts_lose_nothing_and_pay_once, .init = start_crashy)
{
    char *body = big_job(120, 8,
                         "\"output_dimensionality\":128,\"chunking\":{\"max_chars\":"
                         "150,\"overlap_chars\":0},",
                         NULL);
    char *id = submit(body);
    free(body);
    uint64_t rng = 42;
    int kills = 0;
    for (int i = 0; i < 10; i++) {
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        int wait_ms = 30 + (int)((rng >> 33) % 300);
        struct timespec ts = {0, (long)wait_ms * 1000000L};
        nanosleep(&ts, NULL);
        svch_crash_restart(&svc);
        kills++;
    }
    json_object *o = wait_job(id, 180000);
    cr_assert_str_eq(simh_str(o, "state"), "succeeded", "%s", json_object_to_json_string(o));
    int total = json_object_get_int(simh_get(o, "stats.chunks.total"));
    int batches = json_object_get_int(simh_get(o, "stats.batches.succeeded"));
    cr_assert_eq(json_object_get_int(simh_get(o, "stats.batches.intent")) +
                     json_object_get_int(simh_get(o, "stats.batches.submitted")),
                 0, "no batch left open");
    json_object_put(o);
    int ok, bad;
    check_results(id, "RETRIEVAL_DOCUMENT", 128, true, &ok, &bad);
    cr_assert_eq(ok, total);
    cr_assert_eq(simh_stat(&sim, "texts_duplicate"), 0, "nothing paid twice across %d kills",
                 kills);
    cr_assert_eq(simh_stat(&sim, "texts_received"), total);
    cr_assert_eq(simh_stat(&sim, "creates_accepted"), batches, "every Google batch was used");
    cr_assert_eq(dbh_scalar(&svc.db, "SELECT count(*) FROM batches WHERE lease_owner IS NOT NULL"),
                 0, "no orphaned leases");
    free(id);
}
