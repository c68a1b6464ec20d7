/*
 * test_faults.c: scenario 4. One run per upstream fault profile of
 * gemini-sim, each ending with the audit: 429 storms with and without
 * RetryInfo, 20% 5xx, multi-second latency, connections dropped
 * mid-response, malformed bodies, 5% per-item errors, batches ending FAILED
 * or EXPIRED, batches stuck RUNNING past the deadline (the watchdog cancels
 * and resubmits them), shuffled results, no metadata echo, and a permanent
 * 400 that must not be retried forever.
 */
#include "rel.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct rel R;
static bool started;

static void teardown(void)
{
    if (started)
        rel_stop(&R);
}

TestSuite(faults, .fini = teardown, .timeout = 1800);

struct profile {
    const char *name;
    const char *sim[8];
    const char *svc[4];
    bool resend;   /* resubmissions are legitimate here */
    bool failures; /* chunks may end failed */
};

static void run(const struct profile *p)
{
    const char *sf[16];
    int n = 0;
    sf[n++] = "--pending-ms=50";
    sf[n++] = "--running-ms=150";
    sf[n++] = "--seed=7";
    for (int i = 0; p->sim[i]; i++)
        sf[n++] = p->sim[i];
    sf[n] = NULL;
    const char *ef[16];
    n = 0;
    ef[n++] = "--workers=3";
    ef[n++] = "--poll-min-ms=20";
    ef[n++] = "--poll-max-ms=300";
    ef[n++] = "--sync-max-texts=0";
    ef[n++] = "--batch-max-requests=50";
    ef[n++] = "--file-batch-max-requests=0"; /* the profiles are about inline batches */
    ef[n++] = "--max-attempts=4";
    for (int i = 0; p->svc[i]; i++)
        ef[n++] = p->svc[i];
    if (!p->svc[0] || strncmp(p->svc[0], "--lease-ms", 10) != 0)
        ef[n++] = "--lease-ms=8000"; /* Google calls time out at 4 s */
    ef[n] = NULL;
    rel_start(&R, 1, false, sf, ef);
    started = true;
    int jobs = rel_pick(2, 4), docs = rel_pick(40, 200);
    for (int j = 0; j < jobs; j++) {
        char *b = rel_job_body(docs, 8, 3000u + (unsigned)j,
                               "\"output_dimensionality\":128,\"chunking\":{\"max_chars\":220,"
                               "\"overlap_chars\":0},");
        free(rel_submit(&R, 0, b));
        free(b);
    }
    rel_wait_terminal(&R, rel_pick(240000, 900000));
    struct rel_audit a;
    rel_audit(&R, p->resend, &a);
    if (!p->failures)
        cr_assert_eq(a.failed, 0, "%s: no chunk may fail", p->name);
    long released = dbh_scalar(&R.db, "SELECT count(*) FROM batches WHERE state IN ('failed',"
                                      " 'expired', 'cancelled', 'released')");
    long http = simh_stat(&R.sim, "faults.http_error"), lat = simh_stat(&R.sim, "faults.latency"),
         drop = simh_stat(&R.sim, "faults.drop"), bad = simh_stat(&R.sim, "faults.malformed");
    long creates = simh_stat(&R.sim, "creates"), gets = simh_stat(&R.sim, "gets"),
         lists = simh_stat(&R.sim, "lists"), cancels = simh_stat(&R.sim, "cancels");
    char fig[1200], aj[512];
    rel_audit_json(&a, aj, sizeof(aj));
    snprintf(fig, sizeof(fig),
             "{\"profile\":\"%s\",\"faults_http\":%ld,\"faults_latency\":%ld,\"faults_drop\":%ld,"
             "\"faults_malformed\":%ld,\"batches_not_succeeded\":%ld,\"create_calls\":%ld,"
             "\"get_calls\":%ld,\"list_calls\":%ld,\"cancel_calls\":%ld,%s}",
             p->name, http, lat, drop, bad, released, creates, gets, lists, cancels, aj);
    fprintf(stderr, "faults: %s\n", fig);
    char scen[160];
    snprintf(scen, sizeof(scen), "4. upstream faults: %s", p->name);
    rel_report(scen, "bounded retries with jittered backoff; audit", "pass", fig);
    /* the numbers each profile must show */
    if (strstr(p->name, "429") || strstr(p->name, "5xx"))
        cr_assert_gt(http, 0);
    if (strstr(p->name, "latency"))
        cr_assert_gt(lat, 0);
    if (strstr(p->name, "dropped"))
        cr_assert_gt(drop, 0);
    if (strstr(p->name, "malformed"))
        cr_assert_gt(bad, 0);
    if (strstr(p->name, "FAILED") || strstr(p->name, "stuck"))
        cr_assert_gt(released, 0, "some batches must have been released and resubmitted");
    if (strstr(p->name, "stuck"))
        cr_assert_gt(cancels, 0, "the watchdog cancels stuck batches at Google");
}

#define PROFILE(test, ...)                                                                         \
    Test(faults, test)                                                                             \
    {                                                                                              \
        static const struct profile p = __VA_ARGS__;                                               \
        run(&p);                                                                                   \
    }

PROFILE(rate_limit_storm_with_retryinfo,
        {"429 storm with RetryInfo",
         {"--http-error-rate=0.5", "--http-error-code=429", "--retry-delay=0.2s", NULL},
         {NULL},
         false,
         false})
PROFILE(rate_limit_storm_without_retryinfo,
        {"429 storm without RetryInfo",
         {"--http-error-rate=0.5", "--http-error-code=429", NULL},
         {NULL},
         false,
         false})
PROFILE(server_errors_20_percent,
        {"20% 5xx", {"--http-error-rate=0.2", "--http-error-code=503", NULL}, {NULL}, false, false})
PROFILE(multi_second_latency, {"multi-second latency (2 s on 30% of calls)",
                               {"--latency-ms=2000", "--latency-rate=0.3", NULL},
                               {NULL},
                               false,
                               false})
PROFILE(
    connections_dropped,
    {"connections dropped mid-response (15%)", {"--drop-rate=0.15", NULL}, {NULL}, false, false})
PROFILE(malformed_bodies,
        {"malformed bodies (15% of 200s)", {"--malformed-rate=0.15", NULL}, {NULL}, false, false})
PROFILE(item_errors_5_percent, {"5% per-item errors",
                                {"--item-error-rate=0.05", "--item-error-code=13", NULL},
                                {NULL},
                                true,
                                true})
PROFILE(batches_failed_or_expired, {"batches ending FAILED (20%) or EXPIRED (10%)",
                                    {"--batch-fail-rate=0.2", "--batch-expire-rate=0.1", NULL},
                                    {NULL},
                                    true,
                                    true})
PROFILE(stuck_running_watchdog, {"batches stuck RUNNING (30%), watchdog at 1.5 s",
                                 {"--batch-stuck-rate=0.3", NULL},
                                 {"--batch-deadline-ms=1500", NULL},
                                 true,
                                 false})
PROFILE(shuffled_results, {"shuffled results", {"--shuffle", NULL}, {NULL}, false, false})
PROFILE(missing_metadata_echo,
        {"missing metadata echo", {"--omit-metadata", NULL}, {NULL}, false, false})

/* A permanent error: every create is refused with 400 (the request is over the
 * simulator's size limit). Each chunk is tried max-attempts times, then fails
 * with Google's message; the job ends failed instead of retrying forever. */
Test(faults, permanent_400_is_not_retried_forever)
{
    static const struct profile p = {
        "permanent 400 on create", {"--max-request-bytes=1024", NULL}, {NULL}, false, true};
    run(&p);
    struct rel_audit a;
    rel_audit(&R, false, &a);
    cr_assert_eq(a.succeeded, 0);
    cr_assert_eq(a.failed, a.chunks, "every chunk failed for good");
    long creates = simh_stat(&R.sim, "creates");
    long batches = dbh_scalar(&R.db, "SELECT count(*) FROM batches");
    cr_assert_leq(creates, batches, "one create per batch row, no blind retries");
    cr_assert_eq(dbh_scalar(&R.db, "SELECT max(attempts) FROM chunks"), 4,
                 "each chunk was tried max-attempts times");
    cr_assert_eq(dbh_scalar(&R.db, "SELECT count(*) FROM chunks WHERE error NOT LIKE"
                                   " '%Request payload size exceeds%'"),
                 0, "each failed chunk carries Google's reason");
}
