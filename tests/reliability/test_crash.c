/*
 * test_crash.c: scenario 1. A job of 20,000+ chunks (ci: 2,000); embedd
 * serve is killed with SIGKILL at seeded moments chosen to land in each
 * phase: while the job is being ingested, between a batch's intent and
 * Google's answer to the create, while batches are polled, and while a
 * succeeded batch's vectors are being stored. It is restarted each time.
 * Batches whose create outcome was unknown are found again by displayName;
 * the audit then proves nothing was lost and nothing paid twice.
 */
#include "rel.h"

#include <criterion/criterion.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct rel R;

static void nap(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static uint64_t rng = 20261126;
static int rnd(int n)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (int)((rng >> 33) % (uint64_t)n);
}

struct post {
    const char *body;
    long status;
    int64_t ms;
    pthread_t t;
};

static void *post_thread(void *arg)
{
    struct post *p = arg;
    int64_t t0 = simh_ms();
    json_object *o = rel_api(&R, 0, "POST", "/v1/jobs", p->body, 0, &p->status);
    (void)o;
    p->ms = simh_ms() - t0;
    return NULL;
}

static bool job_exists(const char *name)
{
    const char *v[1] = {name};
    PGresult *r = PQexecParams(R.db.conn, "SELECT count(*) FROM jobs WHERE display_name = $1", 1,
                               NULL, v, NULL, NULL, 0);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK);
    bool yes = strtol(PQgetvalue(r, 0, 0), NULL, 10) > 0;
    PQclear(r);
    return yes;
}

/* Is some batch SUCCEEDED at Google but not yet stored by embedd? */
static bool store_imminent(void)
{
    json_object *o = simh_call(&R.sim, "GET", "/v1beta/batches?pageSize=100", NULL, 200);
    json_object *ops = simh_get(o, "operations");
    bool yes = false;
    for (size_t i = 0; ops && !yes && i < json_object_array_length(ops); i++) {
        json_object *op = json_object_array_get_idx(ops, i);
        const char *st = simh_str(op, "metadata.state");
        const char *name = simh_str(op, "name");
        if (!st || strcmp(st, "BATCH_STATE_SUCCEEDED") != 0 || !name)
            continue;
        const char *v[1] = {name};
        PGresult *r = PQexecParams(R.db.conn,
                                   "SELECT count(*) FROM batches WHERE gemini_name = $1"
                                   " AND state = 'submitted'",
                                   1, NULL, v, NULL, NULL, 0);
        yes = PQresultStatus(r) == PGRES_TUPLES_OK && strtol(PQgetvalue(r, 0, 0), NULL, 10) > 0;
        PQclear(r);
    }
    json_object_put(o);
    return yes;
}

static bool done(void)
{
    return dbh_scalar(&R.db, "SELECT count(*) FROM jobs WHERE state IN ('pending','running')") == 0;
}

/* Wait for a phase's condition; false if the work ended first. */
static bool wait_phase(const char *phase)
{
    int64_t deadline = simh_ms() + 30000;
    while (simh_ms() < deadline) {
        if (done())
            return false;
        bool hit = false;
        if (strcmp(phase, "intent") == 0)
            hit = dbh_scalar(&R.db, "SELECT count(*) FROM batches WHERE state = 'intent'"
                                    " AND lease_owner IS NOT NULL") > 0;
        else if (strcmp(phase, "poll") == 0)
            hit = dbh_scalar(&R.db, "SELECT count(*) FROM batches WHERE state = 'submitted'") > 0;
        else
            hit = store_imminent();
        if (hit)
            return true;
        nap(2);
    }
    return false;
}

static void setup(void)
{
    /* slow creates (so that kills land between the intent and the answer,
     * while the simulator still creates the batch whose caller died) */
    static const char *const sf[] = {"--pending-ms=150", "--running-ms=400", "--latency-ms=200",
                                     "--fault-scope=create", NULL};
    static char maxreq[64];
    snprintf(maxreq, sizeof(maxreq), "--batch-max-requests=%d", rel_pick(200, 1000));
    const char *const ef[] = {"--workers=3",
                              "--lease-ms=1500",
                              "--poll-min-ms=20",
                              "--poll-max-ms=200",
                              "--sync-max-texts=0",
                              maxreq,
                              NULL};
    rel_start(&R, 1, false, sf, ef);
}

static void teardown(void)
{
    rel_stop(&R);
}

TestSuite(crash, .init = setup, .fini = teardown, .timeout = 3000);

Test(crash, kill9_in_every_phase_loses_nothing_pays_once)
{
    int docs = rel_pick(400, 7000), kills_wanted = rel_pick(8, 16);
    /* about 5 chunks per document at max_chars 200 */
    char *body = rel_job_body(docs, 10, 1,
                              "\"display_name\":\"crash-main\",\"output_dimensionality\":768,"
                              "\"chunking\":{\"max_chars\":220,\"overlap_chars\":0},");
    int by_phase[4] = {0, 0, 0, 0}; /* ingest, intent, poll, store */
    static const char *const phases[4] = {"ingest", "intent", "poll", "store"};

    /* the job, accepted normally; its ingest time sizes the ingest kills */
    struct post p0 = {body, 0, 0, 0};
    pthread_create(&p0.t, NULL, post_thread, &p0);
    pthread_join(p0.t, NULL);
    cr_assert_eq(p0.status, 202);
    free(body);
    /* ingest: more jobs of the same size, killed while their POST is in
     * flight; an interrupted POST stores nothing (the audit checks every job
     * has all its chunks), a POST that committed just before the kill is a job
     * like any other */
    int ingest_tries = 0, want_ingest = rel_pick(1, 3);
    for (; ingest_tries < 12 && by_phase[0] < want_ingest; ingest_tries++) {
        char name[64], extra[256];
        snprintf(name, sizeof(name), "crash-ingest-%d", ingest_tries);
        snprintf(extra, sizeof(extra),
                 "\"display_name\":\"%s\",\"output_dimensionality\":768,"
                 "\"chunking\":{\"max_chars\":220,\"overlap_chars\":0},",
                 name);
        char *b = rel_job_body(docs, 10, 100u + (unsigned)ingest_tries, extra);
        struct post p = {b, 0, 0, 0};
        pthread_create(&p.t, NULL, post_thread, &p);
        nap(1 + rnd((int)(p0.ms > 4 ? p0.ms : 4)));
        rel_kill9(&R, 0);
        pthread_join(p.t, NULL);
        free(b);
        if (p.status == 0 && !job_exists(name))
            by_phase[0]++; /* died mid-ingest: nothing of it stored */
        rel_spawn(&R, 0);
    }
    cr_assert_geq(by_phase[0], 1, "no kill landed during an ingest in %d tries", ingest_tries);

    for (int k = 0; R.kills < kills_wanted; k++) {
        const char *phase = phases[1 + k % 3];
        if (!wait_phase(phase))
            break;
        nap(rnd(strcmp(phase, "intent") == 0 ? 120 : 15));
        rel_kill9(&R, 0);
        by_phase[1 + k % 3]++;
        rel_spawn(&R, 0);
    }
    rel_wait_terminal(&R, rel_pick(300000, 1200000));
    struct rel_audit a;
    rel_audit(&R, false, &a);
    int reconciled = rel_log_count(&R, 0, "not creating it again");
    cr_assert_eq(a.failed, 0, "no chunk failed (there were no upstream faults)");
    cr_assert_geq(R.kills, rel_pick(6, 10), "kills delivered: %d", R.kills);
    if (rel_full())
        for (int i = 0; i < 4; i++)
            cr_assert_gt(by_phase[i], 0, "no kill landed in phase %s", phases[i]);
    char fig[1024], aj[512];
    rel_audit_json(&a, aj, sizeof(aj));
    snprintf(fig, sizeof(fig),
             "{\"kills\":%d,\"kills_ingest\":%d,\"kills_intent\":%d,\"kills_poll\":%d,"
             "\"kills_store\":%d,\"ingest_attempts\":%d,\"reconciled_by_display_name\":%d,%s}",
             R.kills, by_phase[0], by_phase[1], by_phase[2], by_phase[3], ingest_tries, reconciled,
             aj);
    fprintf(stderr, "crash: %s\n", fig);
    rel_report("1. crash (kill -9, restart)",
               "every phase killed; intents reconciled by displayName; audit", "pass", fig);
}
