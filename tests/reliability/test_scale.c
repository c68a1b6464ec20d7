/*
 * Scenario 11: scale under kill -9. One NDJSON job of one-chunk documents
 * (full: 1,000,000; CI: 2,000) and a collection upsert of as many other
 * documents, each POSTed whole, embedd killed with -9 and restarted while
 * each runs; both must end succeeded, the collection must hold every
 * document, and the audit must hold (every vector the simulator's, none
 * lost, none paid twice). Default transport settings: file batches.
 */
#include "rel.h"

#include <criterion/criterion.h>

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

static void setup(void)
{
    static const char *const sf[] = {"--pending-ms=20", "--running-ms=50", NULL};
    static char files[64];
    /* CI: several file batches of a small job; full: the default (50,000) */
    snprintf(files, sizeof(files), "--file-batch-max-requests=%d", rel_pick(500, 50000));
    const char *const ef[] = {"--workers=3",
                              "--lease-ms=3000",
                              "--poll-min-ms=20",
                              "--poll-max-ms=200",
                              "--sync-max-texts=0",
                              "--connection-timeout-s=600",
                              files,
                              NULL};
    rel_start(&R, 1, false, sf, ef);
}

static void teardown(void)
{
    rel_stop(&R);
}

TestSuite(scale, .init = setup, .fini = teardown, .timeout = 7200);

/* An NDJSON body: the first line, then docs one-chunk documents whose texts
 * are unique to seed (about 120 bytes each). */
static char *ndjson_body(const char *first, int docs, unsigned seed, size_t *len)
{
    size_t cap = strlen(first) + 2 + (size_t)docs * 160;
    char *b = malloc(cap);
    cr_assert(b);
    size_t n = (size_t)snprintf(b, cap, "%s\n", first);
    for (int d = 0; d < docs; d++)
        n += (size_t)snprintf(b + n, cap - n,
                              "{\"id\":\"s%u-%d\",\"text\":\"Record %u-%d: the river passes the"
                              " old stone market at dawn, and the harbor lantern %d answers.\"}\n",
                              seed, d, seed, d, d % 997);
    *len = n;
    return b;
}

/* POST an NDJSON job to node 0; its id (malloc'd). */
static char *post_ndjson(const char *body, size_t len)
{
    char url[256], auth[128];
    snprintf(url, sizeof(url), "%s/v1/jobs", R.node[0].base);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", R.key);
    const char *hs[3] = {auth, "Content-Type: application/x-ndjson", NULL};
    struct simh_resp resp;
    /* a million documents take minutes to store, more while the first job
     * is still storing its results */
    simh_req_url_timeout(&resp, "POST", url, body, len, hs, 3600);
    cr_assert_eq(resp.curl_code, 0, "POST /v1/jobs: transfer failed");
    cr_assert_eq(resp.status, 202, "POST /v1/jobs: %ld: %.300s", resp.status, resp.body);
    json_object *o = simh_json(&resp);
    char *id = strdup(simh_str(o, "id"));
    json_object_put(o);
    simh_resp_free(&resp);
    return id;
}

/* The job's succeeded chunks, -1 while node 0 does not answer. */
static long succeeded(const char *id)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/jobs/%s", id);
    long st = 0;
    json_object *o = rel_api(&R, 0, "GET", path, NULL, 0, &st);
    json_object_put(o);
    if (st != 200)
        return -1;
    o = rel_api(&R, 0, "GET", path, NULL, 200, NULL);
    long n = json_object_get_int64(simh_get(o, "stats.chunks.succeeded"));
    json_object_put(o);
    return n;
}

/* Kill node 0 with -9 when the job has passed each of the marks (fractions of
 * total), restarting it each time; returns the kills delivered. */
static int kill_along(const char *id, long total, const double *marks, int n_marks)
{
    int kills = 0;
    for (int k = 0; k < n_marks; k++) {
        long want = (long)(marks[k] * (double)total);
        for (int waited = 0; waited < 3600000; waited += 20) {
            long s = succeeded(id);
            if (s >= want || s == total)
                break;
            nap(20);
        }
        if (succeeded(id) == total)
            break; /* done already: nothing left to kill into */
        rel_kill9(&R, 0);
        rel_spawn(&R, 0);
        kills++;
    }
    return kills;
}

static json_object *get_json(const char *path)
{
    return rel_api(&R, 0, "GET", path, NULL, 200, NULL);
}

Test(scale, large_job_and_upsert_under_kill9)
{
    int docs = rel_pick(2000, 1000000);
    static const double marks[] = {0.2, 0.6};
    size_t len;
    char *body = ndjson_body("{\"display_name\":\"scale-job\",\"output_dimensionality\":768}", docs,
                             1, &len);
    char *job = post_ndjson(body, len);
    free(body);
    int kills_job = kill_along(job, docs, marks, 2);

    json_object *c = rel_api(&R, 0, "POST", "/v1/collections",
                             "{\"name\":\"scale\",\"output_dimensionality\":768}", 201, NULL);
    char first[256];
    snprintf(first, sizeof(first), "{\"collection\":\"%s\",\"display_name\":\"scale-upsert\"}",
             simh_str(c, "id"));
    char coll_path[128];
    snprintf(coll_path, sizeof(coll_path), "/v1/collections/%s", simh_str(c, "id"));
    json_object_put(c);
    body = ndjson_body(first, docs, 2, &len);
    char *up = post_ndjson(body, len);
    free(body);
    int kills_up = kill_along(up, docs, marks, 2);

    rel_wait_terminal(&R, rel_pick(300000, 5400000));
    char path[128];
    const char *ids[2] = {job, up};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "/v1/jobs/%s", ids[i]);
        json_object *o = get_json(path);
        cr_assert_str_eq(simh_str(o, "state"), "succeeded", "job %s", ids[i]);
        cr_assert_eq(json_object_get_int64(simh_get(o, "stats.chunks.succeeded")), docs);
        json_object_put(o);
    }
    json_object *o = get_json(coll_path);
    long cdocs = json_object_get_int64(simh_get(o, "documents.current"));
    json_object_put(o);
    cr_assert_eq(cdocs, docs, "the collection holds every document (%ld)", cdocs);
    struct rel_audit a;
    rel_audit(&R, false, &a);
    cr_assert_eq(a.failed, 0, "no chunk failed (there were no upstream faults)");
    cr_assert_eq(a.succeeded, 2L * docs);
    cr_assert_geq(kills_job + kills_up, rel_pick(1, 4), "kills delivered: %d + %d", kills_job,
                  kills_up);
    char fig[1024], aj[512];
    rel_audit_json(&a, aj, sizeof(aj));
    snprintf(fig, sizeof(fig),
             "{\"documents_per_job\":%d,\"kills_job\":%d,\"kills_upsert\":%d,"
             "\"collection_documents\":%ld,%s}",
             docs, kills_job, kills_up, cdocs, aj);
    fprintf(stderr, "scale: %s\n", fig);
    rel_report("11. scale (a large NDJSON job and a collection upsert under kill -9)",
               "both succeeded; the collection holds every document; audit", "pass", fig);
    free(job);
    free(up);
}
