/*
 * test_replicas.c: scenario 2. Three embedd serve processes on one database
 * and a dozen concurrent jobs: all complete, nothing is submitted twice, the
 * work spreads over the replicas; one replica is killed while it holds
 * leases, and the others take those batches over within the lease time.
 */
#include "rel.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LEASE_MS 3000

static struct rel R;

static void nap(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void setup(void)
{
    /* slow creates: a worker holds its lease for a while, so the kill finds some */
    static const char *const sf[] = {"--pending-ms=200", "--running-ms=600", "--latency-ms=300",
                                     "--fault-scope=create", NULL};
    static char lease[32];
    snprintf(lease, sizeof(lease), "--lease-ms=%d", LEASE_MS);
    const char *const ef[] = {"--workers=2",
                              lease,
                              "--poll-min-ms=20",
                              "--poll-max-ms=200",
                              "--sync-max-texts=0",
                              "--batch-max-requests=100",
                              NULL};
    rel_start(&R, 3, false, sf, ef);
}

static void teardown(void)
{
    rel_stop(&R);
}

TestSuite(replicas, .init = setup, .fini = teardown, .timeout = 3000);

Test(replicas, three_replicas_share_work_and_take_over_a_dead_one)
{
    int jobs = rel_pick(12, 16), docs = rel_pick(40, 250);
    for (int j = 0; j < jobs; j++) {
        char extra[160];
        snprintf(extra, sizeof(extra),
                 "\"display_name\":\"rep-%d\",\"output_dimensionality\":256,"
                 "\"chunking\":{\"max_chars\":220,\"overlap_chars\":0},",
                 j);
        char *b = rel_job_body(docs, 10, 500u + (unsigned)j, extra);
        free(rel_submit(&R, j % 3, b));
        free(b);
    }
    /* kill replica 2 at a moment it holds leases */
    char like[64];
    snprintf(like, sizeof(like), "%%:%d:%%", (int)R.node[2].pid);
    char q[256];
    snprintf(q, sizeof(q), "SELECT count(*) FROM batches WHERE lease_owner LIKE '%s'", like);
    int64_t deadline = simh_ms() + 60000;
    /* mid-way: once it has done some work of its own */
    while (rel_log_count(&R, 2, ": created batches/") == 0 || dbh_scalar(&R.db, q) == 0) {
        cr_assert(simh_ms() < deadline, "replica 2 never created a batch and held a lease");
        nap(2);
    }
    int created_before = rel_log_count(&R, 2, ": created batches/");
    rel_kill9(&R, 2);
    int64_t t_kill = simh_ms();
    /* the batches it held, and what they looked like */
    snprintf(q, sizeof(q),
             "SELECT id, state, polls FROM batches WHERE lease_owner LIKE '%s' ORDER BY id", like);
    PGresult *held = PQexec(R.db.conn, q);
    cr_assert_eq(PQresultStatus(held), PGRES_TUPLES_OK);
    int n_held = PQntuples(held);
    int64_t takeover_ms = 0;
    if (n_held > 0) {
        for (;;) {
            int taken = 0;
            for (int i = 0; i < n_held; i++) {
                char qq[256];
                snprintf(qq, sizeof(qq),
                         "SELECT count(*) FROM batches WHERE id = %s AND (state <> '%s' OR polls"
                         " <> %s OR (lease_owner IS NOT NULL AND lease_owner NOT LIKE '%s'))",
                         PQgetvalue(held, i, 0), PQgetvalue(held, i, 1), PQgetvalue(held, i, 2),
                         like);
                taken += (int)dbh_scalar(&R.db, qq);
            }
            if (taken == n_held)
                break;
            cr_assert(simh_ms() - t_kill < 4 * LEASE_MS, "leases not taken over after %lld ms",
                      (long long)(simh_ms() - t_kill));
            nap(10);
        }
        takeover_ms = simh_ms() - t_kill;
    }
    PQclear(held);
    rel_wait_terminal(&R, rel_pick(300000, 900000));
    struct rel_audit a;
    rel_audit(&R, false, &a);
    cr_assert_eq(a.failed, 0);
    int per[3];
    for (int i = 0; i < 3; i++)
        per[i] = i == 2 ? created_before : rel_log_count(&R, i, ": created batches/");
    for (int i = 0; i < 3; i++)
        cr_assert_gt(per[i], 0, "replica %d created no batch: the work did not spread", i);
    cr_assert_leq(takeover_ms, LEASE_MS + 1500, "takeover took %lld ms, the lease is %d ms",
                  (long long)takeover_ms, LEASE_MS);
    char fig[1024], aj[512];
    rel_audit_json(&a, aj, sizeof(aj));
    snprintf(fig, sizeof(fig),
             "{\"replicas\":3,\"batches_created_by_replica\":[%d,%d,%d],\"leases_held_at_kill\":%d,"
             "\"takeover_ms\":%lld,\"lease_ms\":%d,%s}",
             per[0], per[1], per[2], n_held, (long long)takeover_ms, LEASE_MS, aj);
    fprintf(stderr, "replicas: %s\n", fig);
    rel_report("2. replicas (3 on one database, one killed)",
               "work spread; dead replica's leases taken over within the lease; audit", "pass",
               fig);
}
