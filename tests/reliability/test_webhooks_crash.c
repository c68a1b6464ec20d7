/*
 * test_webhooks_crash.c: scenario 13. Webhooks at least once across crashes
 * and replicas. Two embedd serve processes share one database and a dozen
 * jobs with webhooks; the receiver (in this process) refuses every delivery
 * with 503 at first, so each job ends with its event committed in the
 * outbox and attempted but undelivered. Both replicas are then killed with
 * SIGKILL (some attempts may be in flight), the receiver starts accepting,
 * and the replicas are restarted: every job's event arrives, with a valid
 * signature and the webhook-id it had before the crash, and the outbox ends
 * with every delivery delivered.
 */
#include "hookrecv.h"
#include "rel.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct rel R;
static struct hookrecv *H;

static void nap(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void setup(void)
{
    H = hookrecv_start();
    static const char *const sf[] = {"--pending-ms=50", "--running-ms=100", NULL};
    const char *const ef[] = {"--workers=2",
                              "--poll-min-ms=20",
                              "--poll-max-ms=200",
                              "--sync-max-texts=0",
                              "--webhook-allow-private=1",
                              "--webhook-threads=2",
                              "--webhook-poll-ms=50",
                              "--webhook-backoff-base-ms=50",
                              "--webhook-backoff-max-ms=300",
                              "--webhook-timeout-ms=2000",
                              NULL};
    rel_start(&R, 2, false, sf, ef);
}

static void teardown(void)
{
    rel_stop(&R);
    hookrecv_stop(H);
}

TestSuite(webhooks_crash, .init = setup, .fini = teardown, .timeout = 600);

/* A key with its webhook secret, made through the CLI like an operator would. */
static void key_with_secret(char secret[128])
{
    char url[600], name[] = "hooks";
    snprintf(url, sizeof(url), "--database-url=%s", R.db.url);
    char *argv[] = {dbh_bin("EMBEDD_BIN"), url, "keys", "create", "--name", name, NULL};
    char *o = NULL, *e = NULL;
    cr_assert_eq(dbh_run(argv, &o, &e), 0, "keys create failed: %s", e);
    char *nl = strchr(o, '\n');
    cr_assert(nl && strncmp(nl + 1, "whsec_", 6) == 0);
    snprintf(R.key, sizeof(R.key), "%.*s", (int)(nl - o), o);
    snprintf(secret, 128, "%.*s", (int)strcspn(nl + 1, "\n"), nl + 1);
    free(o);
    free(e);
}

static long long scalar(const char *sql)
{
    return dbh_scalar(&R.db, sql);
}

Test(webhooks_crash, delivered_at_least_once_after_kill9_of_every_replica)
{
    char secret[128];
    key_with_secret(secret);
    int jobs = rel_pick(12, 40);
    hookrecv_fail_next(H, 1 << 30, 503);
    char *ids[64];
    for (int j = 0; j < jobs; j++) {
        char extra[200];
        snprintf(extra, sizeof(extra),
                 "\"display_name\":\"hook-%d\",\"output_dimensionality\":128,"
                 "\"webhook_url\":\"http://127.0.0.1:%d/events/%d\",",
                 j, hookrecv_port(H), j);
        char *b = rel_job_body(3, 4, 900u + (unsigned)j, extra);
        ids[j] = rel_submit(&R, j % 2, b);
        free(b);
    }
    rel_wait_terminal(&R, 120000);
    /* every job's event is queued, and refused at least once */
    int64_t deadline = simh_ms() + 60000;
    char q[160];
    snprintf(q, sizeof(q), "SELECT count(*) FROM webhook_deliveries WHERE attempts > 0");
    while (scalar(q) < jobs) {
        cr_assert(simh_ms() < deadline, "not every event was attempted: %lld of %d", scalar(q),
                  jobs);
        nap(20);
    }
    cr_assert_eq(scalar("SELECT count(*) FROM webhook_deliveries"), jobs, "one event per job");
    cr_assert_eq(scalar("SELECT count(*) FROM webhook_deliveries WHERE state = 'delivered'"), 0);
    size_t refused = hookrecv_count(H);
    /* the ids the receiver saw before the crash, per job */
    char before[64][96];
    for (int j = 0; j < jobs; j++) {
        before[j][0] = '\0';
        for (size_t i = 0; i < refused && !before[j][0]; i++) {
            const struct hook_req *r = hookrecv_get(H, i);
            if (strstr(r->body, ids[j]))
                snprintf(before[j], sizeof(before[j]), "%s", r->id);
        }
        cr_assert(before[j][0], "job %s: no attempt reached the receiver", ids[j]);
    }
    rel_kill9(&R, 0);
    rel_kill9(&R, 1);
    hookrecv_fail_next(H, 0, 200);
    int64_t t_restart = simh_ms();
    rel_spawn(&R, 0);
    rel_spawn(&R, 1);
    deadline = simh_ms() + 90000;
    while (scalar("SELECT count(*) FROM webhook_deliveries WHERE state = 'delivered'") < jobs) {
        cr_assert(simh_ms() < deadline, "only %lld of %d events delivered after the restart",
                  scalar("SELECT count(*) FROM webhook_deliveries WHERE state = 'delivered'"),
                  jobs);
        nap(20);
    }
    int64_t took = simh_ms() - t_restart;
    /* every job's event came with a 200, its id unchanged and its signature valid */
    int duplicates = 0;
    size_t total = hookrecv_count(H);
    for (int j = 0; j < jobs; j++) {
        int ok = 0;
        for (size_t i = refused; i < total; i++) {
            const struct hook_req *r = hookrecv_get(H, i);
            if (!strstr(r->body, ids[j]))
                continue;
            cr_assert_str_eq(r->id, before[j], "job %s: the event's id changed", ids[j]);
            cr_assert(hookrecv_verify(secret, r), "job %s: bad signature %s", ids[j], r->signature);
            cr_assert(strstr(r->body, "\"type\":\"job.succeeded\""), "%s", r->body);
            ok += r->answered == 200;
        }
        cr_assert_geq(ok, 1, "job %s: its event was not delivered", ids[j]);
        duplicates += ok - 1;
    }
    for (int j = 0; j < jobs; j++)
        free(ids[j]);
    struct rel_audit a;
    rel_audit(&R, true, &a);
    char audit[512], fig[768];
    rel_audit_json(&a, audit, sizeof(audit));
    snprintf(fig, sizeof(fig),
             "{\"kills\":2,\"events\":%d,\"refused_before_crash\":%zu,"
             "\"delivered_after_restart\":%d,\"duplicate_deliveries\":%d,"
             "\"ms_restart_to_all_delivered\":%lld,%s}",
             jobs, refused, jobs, duplicates, (long long)took, audit);
    rel_report("10. webhooks across kill -9 of every replica",
               "every job's event delivered after the crash, same webhook-id, valid signature",
               "pass", fig);
}
