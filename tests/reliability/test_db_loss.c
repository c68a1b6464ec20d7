/*
 * test_db_loss.c: scenario 3. PostgreSQL (a private cluster) is stopped for
 * 12 seconds in the middle of a job and started again. Meanwhile every call
 * that needs the database answers 503 problem+json with Retry-After,
 * /readyz says not ready, /healthz stays 200 and nothing crashes; afterwards
 * the job finishes without intervention, and the audit is clean.
 */
#include "rel.h"

#include <criterion/criterion.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

static struct rel R;

static void nap(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void setup(void)
{
    static const char *const sf[] = {"--pending-ms=100", "--running-ms=1500", NULL};
    const char *const ef[] = {"--workers=3",
                              "--lease-ms=3000",
                              "--poll-min-ms=50",
                              "--poll-max-ms=300",
                              "--sync-max-texts=0",
                              "--batch-max-requests=100",
                              NULL};
    rel_start(&R, 2, true, sf, ef);
}

static void teardown(void)
{
    rel_stop(&R);
}

TestSuite(db_loss, .init = setup, .fini = teardown, .timeout = 1200);

static long probe(int node, const char *method, const char *path, const char *body, bool auth)
{
    char url[256], hdr[128];
    snprintf(url, sizeof(url), "%s%s", R.node[node].base, path);
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", R.key);
    const char *hs[3] = {auth ? hdr : "X-Nothing: 1", "Content-Type: application/json", NULL};
    struct simh_resp r;
    simh_req_url(&r, method, url, body, body ? strlen(body) : 0, hs);
    cr_assert_eq(r.curl_code, 0, "%s %s: the server must answer during the outage", method, path);
    if (r.status == 503) {
        char v[64];
        cr_assert(simh_header(&r, "Retry-After", v, sizeof(v)), "%s %s: 503 without Retry-After",
                  method, path);
        cr_assert(simh_header(&r, "Content-Type", v, sizeof(v)));
        cr_assert_str_eq(v, "application/problem+json");
    }
    long st = r.status;
    simh_resp_free(&r);
    return st;
}

Test(db_loss, postgres_down_12_seconds_then_back)
{
    int jobs = rel_pick(2, 6);
    char *ids[8];
    for (int j = 0; j < jobs; j++) {
        char extra[128];
        snprintf(extra, sizeof(extra),
                 "\"output_dimensionality\":128,\"chunking\":{\"max_chars\":220,"
                 "\"overlap_chars\":0},");
        char *b = rel_job_body(rel_pick(100, 500), 10, 900u + (unsigned)j, extra);
        ids[j] = rel_submit(&R, j % 2, b);
        free(b);
    }
    /* mid-job: some batches at Google */
    int64_t deadline = simh_ms() + 30000;
    while (dbh_scalar(&R.db, "SELECT count(*) FROM batches WHERE state = 'submitted'") == 0) {
        cr_assert(simh_ms() < deadline, "no batch reached Google");
        nap(5);
    }
    char path[96];
    snprintf(path, sizeof(path), "/v1/jobs/%s", ids[0]);
    const char *small = "{\"documents\":[{\"id\":\"x\",\"text\":\"during the outage\"}]}";
    rel_pg(&R, "stop");
    int64_t t_down = simh_ms();
    long probes = 0, unavailable = 0;
    while (simh_ms() - t_down < 12000) {
        for (int n = 0; n < 2; n++) {
            cr_assert_eq(probe(n, "GET", path, NULL, true), 503);
            cr_assert_eq(probe(n, "POST", "/v1/jobs", small, true), 503);
            cr_assert_eq(probe(n, "GET", "/v1/jobs", NULL, true), 503);
            cr_assert_eq(probe(n, "GET", "/readyz", NULL, false), 503);
            cr_assert_eq(probe(n, "GET", "/healthz", NULL, false), 200);
            probes += 5;
            unavailable += 4;
            int st;
            cr_assert_eq(waitpid(R.node[n].pid, &st, WNOHANG), 0, "replica %d died", n);
        }
        nap(200);
    }
    int64_t down_ms = simh_ms() - t_down;
    rel_pg(&R, "start");
    PQreset(R.db.conn);
    cr_assert_eq(PQstatus(R.db.conn), CONNECTION_OK);
    /* recovery without intervention */
    int64_t t_up = simh_ms();
    deadline = t_up + 60000;
    for (;;) {
        long st = 0;
        json_object *o = rel_api(&R, 0, "GET", "/readyz", NULL, 0, &st);
        (void)o;
        if (st == 200)
            break;
        cr_assert(simh_ms() < deadline, "not ready 60 s after the database came back");
        nap(50);
    }
    int64_t ready_ms = simh_ms() - t_up;
    rel_wait_terminal(&R, rel_pick(120000, 600000));
    struct rel_audit a;
    rel_audit(&R, false, &a);
    cr_assert_eq(a.failed, 0);
    cr_assert_eq(a.jobs, jobs, "nothing was stored during the outage");
    for (int j = 0; j < jobs; j++)
        free(ids[j]);
    char fig[1024], aj[512];
    rel_audit_json(&a, aj, sizeof(aj));
    snprintf(fig, sizeof(fig),
             "{\"outage_ms\":%lld,\"probes_during_outage\":%ld,\"answered_503_retry_after\":%ld,"
             "\"ready_again_ms\":%lld,%s}",
             (long long)down_ms, probes, unavailable, (long long)ready_ms, aj);
    fprintf(stderr, "db_loss: %s\n", fig);
    rel_report("3. database loss (PostgreSQL stopped 12 s)",
               "503 problem+json + Retry-After while down, /readyz 503, /healthz 200, no crash; "
               "recovery by itself; audit",
               "pass", fig);
}
