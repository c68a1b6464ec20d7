/*
 * test_crash.c: scenario 1. A job of 20,000+ chunks (ci: 2,000); embedd
 * serve is killed with SIGKILL at seeded moments chosen to land in each
 * phase: while the job is being ingested, between a batch's intent and
 * Google's answer to the create, while batches are polled, and while a
 * succeeded batch's vectors are being stored. It is restarted each time.
 * Batches whose create outcome was unknown are found again by displayName;
 * the audit then proves nothing was lost and nothing paid twice.
 *
 * The same with every batch a file (crash_file): killed while a batch's
 * JSONL is being uploaded, between its recorded upload and Google's answer to
 * the create, and while its results file is downloaded and stored. Uploads
 * are found again by displayName (reused when complete, deleted when not);
 * the audit adds that Google saw every text in a file, once, and that no
 * file is left at Google.
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
                              "--file-batch-max-requests=0", /* inline; files: crash_file */
                              maxreq,
                              NULL};
    rel_start(&R, 1, false, sf, ef);
}

static void teardown(void)
{
    rel_stop(&R);
}

TestSuite(crash, .init = setup, .fini = teardown, .timeout = 3000);

/* Kill and restart node 0 at moments of the phases in turn, until kills_wanted
 * kills or the work ends; each kill lands up to nap_ms[phase] after its
 * condition holds. by_phase counts them. */
static void kill_in_phases(const char *const *phases, const int *nap_ms, int n_phases,
                           int kills_wanted, int *by_phase)
{
    for (int k = 0; R.kills < kills_wanted; k++) {
        int p = k % n_phases;
        if (!rel_wait_phase(&R, phases[p]))
            break;
        nap(rnd(nap_ms[p]));
        rel_kill9(&R, 0);
        by_phase[p]++;
        rel_spawn(&R, 0);
    }
}

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

    static const int naps[3] = {120, 15, 15};
    kill_in_phases(phases + 1, naps, 3, kills_wanted, by_phase + 1);
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

/* ---- every batch a file ---- */

static void setup_file(void)
{
    /* latency on uploads, creates and downloads, so that kills land inside
     * them; pieces of 256 KiB announced and sent (a batch's JSONL takes one
     * or two) */
    static const char *const sf[] = {"--pending-ms=150",
                                     "--running-ms=400",
                                     "--latency-ms=150",
                                     "--fault-scope=create,upload,download",
                                     "--upload-granularity=262144",
                                     NULL};
    static char maxreq[64];
    snprintf(maxreq, sizeof(maxreq), "--file-batch-max-requests=%d", 1000);
    const char *const ef[] = {"--workers=2",
                              "--lease-ms=1500",
                              "--poll-min-ms=20",
                              "--poll-max-ms=200",
                              "--sync-max-texts=0",
                              "--batch-inline-max-bytes=0",
                              "--upload-piece-bytes=262144",
                              "--file-janitor-ms=500",
                              maxreq,
                              NULL};
    rel_start(&R, 1, false, sf, ef);
}

TestSuite(crash_file, .init = setup_file, .fini = teardown, .timeout = 3000);

/* Files at the simulator: uploaded ones, complete or not (results files are
 * not listed there). */
static long sim_files(void)
{
    return simh_stat(&R.sim, "files");
}

Test(crash_file, kill9_during_upload_create_download_loses_nothing_pays_once)
{
    /* batches of 1,000 chunks of ~220 characters: a JSONL of two pieces, so
     * that a kill can fall between them and leave an upload incomplete */
    int docs = rel_pick(2000, 6000), kills_wanted = rel_pick(9, 15);
    char *body = rel_job_body(docs, 10, 7,
                              "\"display_name\":\"crash-file\",\"output_dimensionality\":768,"
                              "\"chunking\":{\"max_chars\":220,\"overlap_chars\":0},");
    char *id = rel_submit(&R, 0, body);
    free(body);
    static const char *const phases[3] = {"upload", "create", "download"};
    static const int naps[3] = {250, 120, 200};
    int by_phase[3] = {0, 0, 0};
    kill_in_phases(phases, naps, 3, kills_wanted, by_phase);
    rel_wait_terminal(&R, rel_pick(300000, 1200000));
    /* what a crash left at Google (an upload cut off, a file whose batch was
     * done when the process died) goes: by reconcile or by the janitor */
    int64_t deadline = simh_ms() + 20000;
    while (sim_files() > 0 && simh_ms() < deadline)
        nap(50);
    struct rel_audit a;
    rel_audit(&R, false, &a);
    long in_files = simh_stat(&R.sim, "texts_in_files");
    long file_batches = simh_stat(&R.sim, "file_batches");
    long cut = simh_stat(&R.sim, "uploads_started") - simh_stat(&R.sim, "uploads_finalized");
    int reconciled = rel_log_count(&R, 0, "not creating it again");
    int reused = rel_log_count(&R, 0, "is complete at Google; reusing it");
    int incomplete = rel_log_count(&R, 0, "(an incomplete upload)");
    int from_file = rel_log_count(&R, 0, "creating it from its file");
    cr_assert_eq(a.failed, 0, "no chunk failed (there were no upstream faults)");
    cr_assert_eq(in_files, a.texts_sent, "every text went in a file: %ld of %ld", in_files,
                 a.texts_sent);
    cr_assert_eq(file_batches, a.google_batches, "every batch is a file batch");
    cr_assert_eq(sim_files(), 0, "%ld file(s) left at Google", sim_files());
    cr_assert_geq(R.kills, rel_pick(6, 10), "kills delivered: %d", R.kills);
    if (rel_full())
        for (int i = 0; i < 3; i++)
            cr_assert_gt(by_phase[i], 0, "no kill landed in phase %s", phases[i]);
    char fig[1024], aj[512];
    rel_audit_json(&a, aj, sizeof(aj));
    snprintf(fig, sizeof(fig),
             "{\"kills\":%d,\"kills_upload\":%d,\"kills_create\":%d,\"kills_download\":%d,"
             "\"uploads_cut_off\":%ld,\"incomplete_deleted\":%d,\"uploads_reused\":%d,"
             "\"created_from_recorded_file\":%d,"
             "\"reconciled_by_display_name\":%d,\"file_batches\":%ld,\"texts_in_files\":%ld,%s}",
             R.kills, by_phase[0], by_phase[1], by_phase[2], cut, incomplete, reused, from_file,
             reconciled, file_batches, in_files, aj);
    fprintf(stderr, "crash_file: %s\n", fig);
    rel_report("1b. crash with file batches (kill -9, restart)",
               "kills during upload, create and download; uploads found by displayName; audit; "
               "no file left at Google",
               "pass", fig);
    free(id);
}
