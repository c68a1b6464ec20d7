/*
 * test_file_batches.c: scenario 9, batches through the Files API against
 * gemini-sim, each run ending with the audit (nothing lost, nothing paid
 * twice): the inline threshold picks the transport; upload pieces cut off in
 * flight are resumed from the offset the session reports, not uploaded again;
 * 429s on create are waited out (the recorded file is reused, the job still
 * succeeds); inline batches answered with a results file are stored from it;
 * the janitor deletes files no open batch needs, and only ours.
 */
#include "rel.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct rel R;
static bool started;

static void stop(void)
{
    if (started)
        rel_stop(&R);
    started = false;
}

TestSuite(files, .fini = stop, .timeout = 900);

static void nap(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Start the simulator (extra flags) and one embedd (extra flags) with the
 * common settings of this file. */
static void start(const char *const *sim_extra, const char *const *svc_extra)
{
    const char *sf[16], *ef[24];
    int n = 0;
    sf[n++] = "--pending-ms=50";
    sf[n++] = "--running-ms=150";
    sf[n++] = "--upload-granularity=262144";
    for (int i = 0; sim_extra && sim_extra[i]; i++)
        sf[n++] = sim_extra[i];
    sf[n] = NULL;
    n = 0;
    ef[n++] = "--workers=3";
    ef[n++] = "--poll-min-ms=20";
    ef[n++] = "--poll-max-ms=300";
    ef[n++] = "--lease-ms=8000";
    ef[n++] = "--sync-max-texts=0";
    ef[n++] = "--upload-piece-bytes=262144";
    for (int i = 0; svc_extra && svc_extra[i]; i++)
        ef[n++] = svc_extra[i];
    ef[n] = NULL;
    rel_start(&R, 1, false, sf, ef);
    started = true;
}

/* Submit jobs of docs documents (~4 chunks of ~220 characters each). */
static void submit_jobs(int jobs, int docs, unsigned seed)
{
    for (int j = 0; j < jobs; j++) {
        char *b = rel_job_body(docs, 8, seed + (unsigned)j,
                               "\"output_dimensionality\":128,\"chunking\":{\"max_chars\":220,"
                               "\"overlap_chars\":0},");
        free(rel_submit(&R, 0, b));
        free(b);
    }
}

static long stat(const char *name)
{
    return simh_stat(&R.sim, name);
}

/* Wait (a while) until the simulator holds no uploaded file. */
static long files_left(void)
{
    int64_t deadline = simh_ms() + 10000;
    while (stat("files") > 0 && simh_ms() < deadline)
        nap(50);
    return stat("files");
}

static void report(const char *scenario, const char *checked, const struct rel_audit *a,
                   const char *extra)
{
    char fig[1024], aj[512];
    rel_audit_json(a, aj, sizeof(aj));
    snprintf(fig, sizeof(fig), "{%s%s%s}", extra, extra[0] ? "," : "", aj);
    fprintf(stderr, "files: %s: %s\n", scenario, fig);
    rel_report(scenario, checked, "pass", fig);
}

/* Below the threshold a batch is inline, above it a file; every text is sent
 * once either way, and the files are gone at the end. */
Test(files, threshold_picks_the_transport)
{
    static const char *const svc[] = {"--batch-inline-max-bytes=60000", NULL};
    start(NULL, svc);
    submit_jobs(1, 40, 100);  /* ~160 chunks: ~50 KB inline */
    submit_jobs(1, 600, 200); /* ~2,400 chunks: ~700 KB, a file */
    rel_wait_terminal(&R, 240000);
    struct rel_audit a;
    rel_audit(&R, false, &a);
    long inline_batches = dbh_scalar(&R.db, "SELECT count(*) FROM batches WHERE transport ="
                                            " 'inline' AND state = 'succeeded'");
    long file_batches = dbh_scalar(&R.db, "SELECT count(*) FROM batches WHERE transport ="
                                          " 'file' AND state = 'succeeded'");
    cr_assert_eq(inline_batches, 1, "the small job went inline");
    cr_assert_eq(file_batches, 1, "the large job went as one file");
    cr_assert_eq(stat("file_batches"), 1);
    long big = dbh_scalar(&R.db, "SELECT max(n_chunks) FROM batches WHERE transport = 'file'");
    cr_assert_eq(stat("texts_in_files"), big, "the file carried the large job's texts");
    cr_assert_eq(dbh_scalar(&R.db, "SELECT count(*) FROM batches WHERE transport = 'file'"
                                   " AND (input_file IS NULL OR output_file IS NULL"
                                   " OR response_bytes = 0)"),
                 0, "the file batch recorded its files and the bytes it received");
    cr_assert_eq(files_left(), 0, "input files deleted once the results were stored");
    cr_assert_eq(stat("files_deleted"), 2, "the input file and the results file");
    report("9a. files: inline threshold", "transport by size; texts once; files deleted", &a, "");
}

/* Upload pieces cut off in flight (the session keeps half of the piece):
 * each upload asks the session where it stands and goes on from there. */
static void cut_uploads(const char *status)
{
    const char *sim[] = {"--upload-cut-count=4", status, NULL};
    static const char *const svc[] = {"--batch-inline-max-bytes=0",
                                      "--file-batch-max-requests=1200", NULL};
    start(sim, svc);
    submit_jobs(2, 600, 300); /* 2 x ~2,400 chunks: files of ~350 KB, two pieces */
    rel_wait_terminal(&R, 240000);
    struct rel_audit a;
    rel_audit(&R, false, &a);
    long uploads = stat("uploads_started"), batches = stat("file_batches");
    cr_assert_eq(stat("faults.upload_cut"), 4, "four pieces were cut off");
    cr_assert_eq(a.failed, 0);
    cr_assert_geq(stat("upload_queries"), 4, "each cut piece was followed by a query");
    cr_assert_eq(uploads, batches, "no upload started over: %ld uploads for %ld batches", uploads,
                 batches);
    cr_assert_eq(stat("texts_in_files"), a.texts_sent);
    cr_assert_eq(files_left(), 0);
    char extra[200];
    snprintf(extra, sizeof(extra), "\"upload_queries\":%ld,\"uploads\":%ld,\"file_batches\":%ld",
             stat("upload_queries"), uploads, batches);
    report(strcmp(status, "--upload-cut-status=0") == 0
               ? "9b. files: upload cut off, connection closed"
               : "9b. files: upload cut off, answered 503",
           "the upload resumes from the session's offset; audit", &a, extra);
}

Test(files, upload_cut_mid_piece_resumes)
{
    cut_uploads("--upload-cut-status=0");
}

Test(files, upload_cut_answered_503_resumes)
{
    cut_uploads("--upload-cut-status=503");
}

/* 429 on create: the batch waits (and no new batch is claimed meanwhile),
 * then is created from the file it already uploaded; the job succeeds. */
Test(files, create_429_backs_off_and_succeeds)
{
    static const char *const sim[] = {"--fault-scope=create", "--http-error-code=429",
                                      "--http-error-count=5", NULL};
    static const char *const svc[] = {"--batch-inline-max-bytes=0", "--file-batch-max-requests=500",
                                      NULL};
    start(sim, svc);
    submit_jobs(2, 250, 400);
    rel_wait_terminal(&R, 240000);
    struct rel_audit a;
    rel_audit(&R, false, &a);
    cr_assert_eq(a.failed, 0, "a 429 fails nothing");
    cr_assert_eq(stat("faults.http_error"), 5, "five creates were refused");
    cr_assert_geq(rel_log_count(&R, 0, "create deferred"), 5);
    cr_assert_geq(rel_log_count(&R, 0, "creates refused with HTTP 429"), 1);
    cr_assert_geq(rel_log_count(&R, 0, "creating it from its file"), 1,
                  "a deferred batch is created from the file it uploaded");
    cr_assert_eq(stat("uploads_finalized"), stat("file_batches"), "no file uploaded twice");
    cr_assert_eq(files_left(), 0);
    char extra[160];
    snprintf(extra, sizeof(extra), "\"creates_refused\":5,\"creates\":%ld,\"file_batches\":%ld",
             stat("creates"), stat("file_batches"));
    report("9c. files: 429 on create", "backoff, file reused, job succeeds; audit", &a, extra);
}

/* Inline batches that Google answers with a results file (bifrost#3951). */
Test(files, inline_answered_with_a_file)
{
    static const char *const sim[] = {"--inline-as-file", NULL};
    static const char *const svc[] = {"--file-batch-max-requests=0", "--batch-max-requests=200",
                                      NULL};
    start(sim, svc);
    submit_jobs(2, 120, 500);
    rel_wait_terminal(&R, 240000);
    struct rel_audit a;
    rel_audit(&R, false, &a);
    cr_assert_eq(a.failed, 0);
    cr_assert_eq(stat("file_batches"), 0, "every batch was sent inline");
    cr_assert_eq(stat("downloads"), a.google_batches, "each answered with a file, read once");
    cr_assert_eq(dbh_scalar(&R.db, "SELECT count(*) FROM batches WHERE output_file IS NULL"), 0,
                 "the results file is recorded");
    cr_assert_eq(stat("files_deleted"), a.google_batches, "and deleted once stored");
    report("9d. files: inline answered with a file", "stored from the file; audit", &a, "");
}

/* Upload a small file named display_name straight to the simulator. */
static void upload_file(const char *display_name)
{
    char body[256], len_hdr[96];
    snprintf(body, sizeof(body), "{\"file\":{\"displayName\":\"%s\"}}", display_name);
    static const char data[] = "{\"key\":\"1\",\"request\":{}}\n";
    snprintf(len_hdr, sizeof(len_hdr), "X-Goog-Upload-Header-Content-Length: %zu",
             sizeof(data) - 1);
    const char *start_hdrs[] = {"X-Goog-Upload-Protocol: resumable", "X-Goog-Upload-Command: start",
                                len_hdr, "Content-Type: application/json", NULL};
    struct simh_resp r;
    simh_req(&R.sim, &r, "POST", "/upload/v1beta/files", body, strlen(body), start_hdrs, true);
    char url[600];
    cr_assert(simh_header(&r, "X-Goog-Upload-URL", url, sizeof(url)), "%s", r.body);
    simh_resp_free(&r);
    const char *up_hdrs[] = {"X-Goog-Upload-Command: upload, finalize", "X-Goog-Upload-Offset: 0",
                             NULL};
    simh_req_url(&r, "POST", url, data, sizeof(data) - 1, up_hdrs);
    cr_assert_eq(r.status, 200, "%s", r.body);
    simh_resp_free(&r);
}

/* The janitor deletes files of ended batches and of unknown embedd batches,
 * and leaves other files alone. */
Test(files, janitor_deletes_orphans_only)
{
    static const char *const svc[] = {"--batch-inline-max-bytes=0", "--file-janitor-ms=300", NULL};
    start(NULL, svc);
    submit_jobs(1, 50, 600);
    rel_wait_terminal(&R, 240000);
    char name[128];
    PGresult *res = PQexec(R.db.conn, "SELECT display_name FROM batches LIMIT 1");
    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK);
    snprintf(name, sizeof(name), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    cr_assert_eq(files_left(), 0);
    long deleted0 = stat("files_deleted");
    upload_file(name);                           /* a file of a batch that has ended */
    upload_file("embedd-00000000-000000000000"); /* of no batch we know */
    upload_file("someone-elses-file");           /* not ours */
    /* no count of 3 here: the janitor (every 300 ms) may already have taken
     * an orphan between the uploads (seen under ThreadSanitizer); the
     * deletions are counted below */
    int64_t deadline = simh_ms() + 15000;
    while (stat("files") > 1 && simh_ms() < deadline)
        nap(50);
    cr_assert_eq(stat("files"), 1, "the orphans are deleted");
    cr_assert_eq(stat("files_deleted") - deleted0, 2);
    json_object *o = simh_call(&R.sim, "GET", "/v1beta/files", NULL, 200);
    cr_assert_str_eq(simh_str(o, "files.0.displayName"), "someone-elses-file");
    json_object_put(o);
    cr_assert_geq(rel_log_count(&R, 0, "janitor: deleted"), 2);
    struct rel_audit a;
    rel_audit(&R, false, &a);
    report("9e. files: janitor", "orphaned files deleted, foreign files kept; audit", &a, "");
}
