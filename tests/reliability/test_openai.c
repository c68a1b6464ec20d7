/*
 * test_openai.c: the OpenAI-compatible surface (/openai/v1) under the
 * reliability audit.
 *
 * kill9_during_batch: a batch created as the OpenAI SDK creates one (a JSONL
 * file uploaded as multipart, then POST /openai/v1/batches) runs as an embedd
 * job; embedd serve is killed with SIGKILL while the batch is validated,
 * while its Google batches are polled, while their vectors are stored, and
 * while its output file is written, and restarted each time. The batch ends
 * completed; its output file holds every custom_id exactly once, each body
 * exactly the simulator's vectors; the audit proves no text was paid twice.
 *
 * upload_100mb_memory_flat: a 100 MB file streamed to /openai/v1/files is
 * stored whole (its size and its last bytes read back) while embedd's
 * resident memory stays flat (sampled every few ms during the upload).
 */
#include "rel.h"

#include <criterion/criterion.h>
#include <curl/curl.h>

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct rel R;

#define MODEL    "gemini-embedding-001"
#define DIMS     128
#define BOUNDARY "----embedd-rel-openai-7f3a9c"
#define MIB      1024L

static void nap(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static uint64_t rng = 20261206;
static int rnd(int n)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (int)((rng >> 33) % (uint64_t)n);
}

static void setup(void)
{
    static const char *const sf[] = {"--pending-ms=150", "--running-ms=400", "--latency-ms=50",
                                     NULL};
    const char *const ef[] = {"--workers=2",
                              "--lease-ms=1500",
                              "--poll-min-ms=20",
                              "--poll-max-ms=200",
                              "--sync-max-texts=0",
                              "--file-batch-max-requests=0",
                              "--batch-max-requests=150",
                              NULL};
    rel_start(&R, 1, false, sf, ef);
}

static void teardown(void)
{
    rel_stop(&R);
}

TestSuite(openai, .init = setup, .fini = teardown, .timeout = 3000);

/* The text of line i's input k (unique across the file). */
static void text_of(int i, int k, char *out, size_t n)
{
    snprintf(out, n, "openai batch line %d input %d about %d and %d", i, k, i % 41,
             (i * 7919 + k) % 1000);
}

/* Inputs of line i: 1, or 2 for every fifth line. */
static int inputs_of(int i)
{
    return i % 5 == 4 ? 2 : 1;
}

/* The simulator's vector for text at DIMS dimensions, normalised to unit
 * length as embedd normalises truncated vectors. */
static void expected(const char *text, float *out)
{
    float e[DIMS];
    simh_expected_vector(MODEL, 3072, "RETRIEVAL_QUERY", text, strlen(text), DIMS, e);
    double s = 0;
    for (int i = 0; i < DIMS; i++)
        s += (double)e[i] * (double)e[i];
    double n2 = sqrt(s);
    for (int i = 0; i < DIMS; i++)
        out[i] = (float)((double)e[i] / n2);
}

/* Upload body as a purpose=batch file; returns its id (malloc'd). */
static char *upload(const char *jsonl, const char *filename)
{
    size_t cap = strlen(jsonl) + 1024;
    char *body = malloc(cap);
    int n = snprintf(body, cap,
                     "--" BOUNDARY "\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\n"
                     "batch\r\n--" BOUNDARY "\r\nContent-Disposition: form-data; name=\"file\";"
                     " filename=\"%s\"\r\nContent-Type: application/jsonl\r\n\r\n%s\r\n--" BOUNDARY
                     "--\r\n",
                     filename, jsonl);
    cr_assert(n > 0 && (size_t)n < cap);
    char url[256], auth[128];
    snprintf(url, sizeof(url), "%s/openai/v1/files", R.node[0].base);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", R.key);
    const char *hs[3] = {auth, "Content-Type: multipart/form-data; boundary=" BOUNDARY, NULL};
    struct simh_resp resp;
    simh_req_url(&resp, "POST", url, body, (size_t)n, hs);
    free(body);
    cr_assert_eq(resp.curl_code, 0);
    cr_assert_eq(resp.status, 200, "upload: %ld %.300s", resp.status, resp.body);
    json_object *o = simh_json(&resp);
    simh_resp_free(&resp);
    char *id = strdup(simh_str(o, "id"));
    json_object_put(o);
    return id;
}

static char *batch_status(const char *id)
{
    char path[128];
    snprintf(path, sizeof(path), "/openai/v1/batches/%s", id);
    json_object *o = rel_api(&R, 0, "GET", path, NULL, 200, NULL);
    char *s = strdup(simh_str(o, "status"));
    json_object_put(o);
    return s;
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

/* Wait for a phase of the batch; false if it ended first or never came. */
static bool wait_phase(const char *phase)
{
    int64_t deadline = simh_ms() + 30000;
    while (simh_ms() < deadline) {
        if (dbh_scalar(&R.db, "SELECT count(*) FROM openai_batches WHERE status IN "
                              "('completed','failed','cancelled','expired')") > 0)
            return false;
        bool hit = false;
        if (strcmp(phase, "validate") == 0)
            hit = dbh_scalar(&R.db, "SELECT count(*) FROM openai_batches WHERE status ="
                                    " 'validating' AND lease_until > now()") > 0;
        else if (strcmp(phase, "poll") == 0)
            hit = dbh_scalar(&R.db, "SELECT count(*) FROM batches WHERE state = 'submitted'") > 0;
        else if (strcmp(phase, "store") == 0)
            hit = store_imminent();
        else /* finalize: the output being written under a lease */
            hit = dbh_scalar(&R.db, "SELECT count(*) FROM openai_batches WHERE status ="
                                    " 'finalizing' AND lease_until > now()") > 0;
        if (hit)
            return true;
        nap(2);
    }
    return false;
}

Test(openai, kill9_during_batch_output_complete_paid_once)
{
    int lines = rel_pick(1000, 5000);
    /* the input file */
    size_t cap = (size_t)lines * 256 + 1;
    char *jsonl = malloc(cap);
    size_t len = 0;
    int texts = 0;
    for (int i = 0; i < lines; i++) {
        char t0[128], t1[128];
        text_of(i, 0, t0, sizeof(t0));
        text_of(i, 1, t1, sizeof(t1));
        int k = inputs_of(i);
        texts += k;
        char input[300];
        if (k == 1)
            snprintf(input, sizeof(input), "\"%s\"", t0);
        else
            snprintf(input, sizeof(input), "[\"%s\",\"%s\"]", t0, t1);
        len += (size_t)snprintf(jsonl + len, cap - len,
                                "{\"custom_id\":\"r-%d\",\"method\":\"POST\",\"url\":"
                                "\"/v1/embeddings\",\"body\":{\"model\":\"" MODEL
                                "\",\"input\":%s,\"dimensions\":%d%s}}\n",
                                i, input, DIMS, i % 3 ? "" : ",\"encoding_format\":\"float\"");
        cr_assert(len < cap);
    }
    char *file_id = upload(jsonl, "rel.jsonl");
    free(jsonl);
    char body[256];
    snprintf(body, sizeof(body),
             "{\"input_file_id\":\"%s\",\"endpoint\":\"/v1/embeddings\","
             "\"completion_window\":\"24h\"}",
             file_id);
    json_object *b = rel_api(&R, 0, "POST", "/openai/v1/batches", body, 200, NULL);
    char *batch_id = strdup(simh_str(b, "id"));
    json_object_put(b);

    /* kills in each phase in turn, while the batch runs */
    static const char *const phases[4] = {"validate", "poll", "store", "finalize"};
    static const int naps[4] = {20, 300, 100, 30};
    int by_phase[4] = {0, 0, 0, 0};
    for (int p = 0; p < 4; p++) {
        for (int tries = 0; tries < rel_pick(2, 3) && wait_phase(phases[p]); tries++) {
            nap(rnd(naps[p]));
            rel_kill9(&R, 0);
            by_phase[p]++;
            rel_spawn(&R, 0);
        }
    }
    fprintf(stderr, "openai kill9: %d kills (validate %d, poll %d, store %d, finalize %d)\n",
            R.kills, by_phase[0], by_phase[1], by_phase[2], by_phase[3]);
    cr_assert_geq(R.kills, 2, "the kills landed in at least two phases' moments");

    /* the batch completes */
    char *st = NULL;
    int64_t deadline = simh_ms() + 120000;
    for (;;) {
        free(st);
        st = batch_status(batch_id);
        if (st && (strcmp(st, "completed") == 0 || strcmp(st, "failed") == 0 ||
                   strcmp(st, "cancelled") == 0 || strcmp(st, "expired") == 0))
            break;
        cr_assert(simh_ms() < deadline, "batch still %s", st ? st : "?");
        nap(50);
    }
    cr_assert_str_eq(st, "completed");
    free(st);
    char path[160];
    snprintf(path, sizeof(path), "/openai/v1/batches/%s", batch_id);
    b = rel_api(&R, 0, "GET", path, NULL, 200, NULL);
    cr_assert_eq(json_object_get_int(simh_get(b, "request_counts.total")), lines);
    cr_assert_eq(json_object_get_int(simh_get(b, "request_counts.completed")), lines);
    cr_assert_eq(json_object_get_int(simh_get(b, "request_counts.failed")), 0);
    json_object *ef = simh_get(b, "error_file_id");
    cr_assert(!ef || json_object_is_type(ef, json_type_null), "no error file");
    const char *out_id = simh_str(b, "output_file_id");
    cr_assert(out_id);

    /* the output file: every custom_id once, every vector the simulator's */
    char url[256], auth[128];
    snprintf(url, sizeof(url), "%s/openai/v1/files/%s/content", R.node[0].base, out_id);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", R.key);
    const char *hs[2] = {auth, NULL};
    struct simh_resp resp;
    simh_req_url(&resp, "GET", url, NULL, 0, hs);
    json_object_put(b);
    cr_assert_eq(resp.curl_code, 0);
    cr_assert_eq(resp.status, 200);
    char *seen = calloc((size_t)lines, 1);
    int n_out = 0;
    long vectors = 0;
    for (char *p = resp.body, *nl; p && *p; p = nl ? nl + 1 : NULL) {
        nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        if (!*p)
            continue;
        json_object *o = json_tokener_parse(p);
        cr_assert(o, "output line %d is not JSON", n_out + 1);
        n_out++;
        const char *cid = simh_str(o, "custom_id");
        cr_assert(cid && strncmp(cid, "r-", 2) == 0);
        int i = (int)strtol(cid + 2, NULL, 10);
        cr_assert(i >= 0 && i < lines && !seen[i], "custom_id %s twice or unknown", cid);
        seen[i] = 1;
        cr_assert_eq(json_object_get_type(simh_get(o, "error")), json_type_null);
        cr_assert_eq(json_object_get_int(simh_get(o, "response.status_code")), 200);
        json_object *data = simh_get(o, "response.body.data");
        cr_assert_eq((int)json_object_array_length(data), inputs_of(i), "%s", cid);
        for (int k = 0; k < inputs_of(i); k++) {
            char t[128];
            float want[DIMS];
            text_of(i, k, t, sizeof(t));
            expected(t, want);
            json_object *emb = simh_get(json_object_array_get_idx(data, (size_t)k), "embedding");
            if (json_object_is_type(emb, json_type_string)) {
                /* base64 of float32 little-endian */
                const char *s = json_object_get_string(emb);
                unsigned char raw[DIMS * 4 + 4];
                size_t m = 0;
                unsigned acc = 0;
                int bits = 0;
                for (const char *c = s; *c && *c != '='; c++) {
                    const char *al =
                        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
                    const char *f = strchr(al, *c);
                    cr_assert(f);
                    acc = (acc << 6) | (unsigned)(f - al);
                    bits += 6;
                    if (bits >= 8) {
                        bits -= 8;
                        cr_assert(m < sizeof(raw));
                        raw[m++] = (unsigned char)(acc >> bits);
                    }
                }
                cr_assert_eq(m, (size_t)DIMS * 4);
                for (int d = 0; d < DIMS; d++) {
                    uint32_t u = (uint32_t)raw[4 * d] | (uint32_t)raw[4 * d + 1] << 8 |
                                 (uint32_t)raw[4 * d + 2] << 16 | (uint32_t)raw[4 * d + 3] << 24;
                    float f;
                    memcpy(&f, &u, 4);
                    cr_assert(f == want[d], "%s input %d dim %d: %g != %g", cid, k, d, (double)f,
                              (double)want[d]);
                }
            } else {
                simh_assert_vector(emb, want, DIMS);
            }
            vectors++;
        }
        json_object_put(o);
    }
    simh_resp_free(&resp);
    cr_assert_eq(n_out, lines, "output lines %d of %d", n_out, lines);
    free(seen);
    cr_assert_eq(vectors, texts);

    /* nothing lost, nothing paid twice */
    struct rel_audit a;
    rel_audit(&R, false, &a);
    char audit[512], figures[768];
    rel_audit_json(&a, audit, sizeof(audit));
    snprintf(figures, sizeof(figures),
             "{\"lines\":%d,\"texts\":%d,\"kills\":%d,\"validate\":%d,\"poll\":%d,\"store\":%d,"
             "\"finalize\":%d,%s}",
             lines, texts, R.kills, by_phase[0], by_phase[1], by_phase[2], by_phase[3], audit);
    rel_report("openai_batch_kill9",
               "an /openai/v1 batch killed -9 in validation, polling, storing and finalizing: "
               "output file complete and exact, 0 texts paid twice",
               "pass", figures);
    free(file_id);
    free(batch_id);
}

/* ---- a 100 MB upload, memory sampled meanwhile ---- */

struct stream {
    size_t sent, total; /* of the file's bytes */
    int stage;          /* 0 preamble, 1 file, 2 epilogue, 3 done */
    size_t off;         /* within the current preamble/epilogue */
};

static const char preamble[] =
    "--" BOUNDARY "\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n"
    "--" BOUNDARY "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.jsonl\"\r\n"
    "Content-Type: application/jsonl\r\n\r\n";
static const char epilogue[] = "\r\n--" BOUNDARY "--\r\n";
/* one 100-byte JSONL line, repeated */
static const char big_line[] =
    "{\"custom_id\":\"x\",\"method\":\"POST\",\"url\":\"/v1/embeddings\","
    "\"body\":{\"model\":\"m\",\"input\":\"abcdefghij\"}}\n";

static size_t stream_read(char *buf, size_t size, size_t nitems, void *ud)
{
    struct stream *s = ud;
    size_t cap = size * nitems, n = 0;
    while (n < cap && s->stage < 3) {
        if (s->stage == 0 || s->stage == 2) {
            const char *src = s->stage == 0 ? preamble : epilogue;
            size_t len = (s->stage == 0 ? sizeof(preamble) : sizeof(epilogue)) - 1;
            size_t m = len - s->off < cap - n ? len - s->off : cap - n;
            memcpy(buf + n, src + s->off, m);
            n += m;
            s->off += m;
            if (s->off == len) {
                s->stage++;
                s->off = 0;
            }
        } else {
            size_t ll = sizeof(big_line) - 1;
            size_t at = s->sent % ll;
            size_t m = ll - at;
            if (m > cap - n)
                m = cap - n;
            if (m > s->total - s->sent)
                m = s->total - s->sent;
            memcpy(buf + n, big_line + at, m);
            n += m;
            s->sent += m;
            if (s->sent == s->total)
                s->stage = 2;
        }
    }
    return n;
}

static size_t sink(char *p, size_t size, size_t n, void *ud)
{
    struct simh_resp *r = ud;
    (void)r;
    (void)p;
    return size * n;
}

static atomic_bool sampling;
static long rss_max;

static void *sampler(void *arg)
{
    pid_t pid = *(pid_t *)arg;
    while (atomic_load(&sampling)) {
        long kib = rel_rss_kib(pid);
        if (kib > rss_max)
            rss_max = kib;
        nap(5);
    }
    return NULL;
}

Test(openai, upload_100mb_memory_flat)
{
    size_t total = (size_t)100 * 1000 * 1000;
    /* a warm-up request, so that the pools exist before the baseline */
    json_object *o = rel_api(&R, 0, "GET", "/openai/v1/files", NULL, 200, NULL);
    json_object_put(o);
    long before = rel_rss_kib(R.node[0].pid);
    cr_assert_gt(before, 0);
    rss_max = before;
    atomic_store(&sampling, true);
    pthread_t th;
    pid_t pid = R.node[0].pid;
    cr_assert_eq(pthread_create(&th, NULL, sampler, &pid), 0);

    struct stream s = {0, total, 0, 0};
    char url[256], auth[128];
    snprintf(url, sizeof(url), "%s/openai/v1/files", R.node[0].base);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", R.key);
    CURL *c = curl_easy_init();
    struct curl_slist *hs = curl_slist_append(NULL, auth);
    hs = curl_slist_append(hs, "Content-Type: multipart/form-data; boundary=" BOUNDARY);
    hs = curl_slist_append(hs, "Expect:");
    curl_off_t clen = (curl_off_t)(sizeof(preamble) - 1 + total + sizeof(epilogue) - 1);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hs);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, stream_read);
    curl_easy_setopt(c, CURLOPT_READDATA, &s);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, clen);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 600L);
    int64_t t0 = simh_ms();
    CURLcode rc = curl_easy_perform(c);
    int64_t took = simh_ms() - t0;
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hs);
    curl_easy_cleanup(c);
    atomic_store(&sampling, false);
    pthread_join(th, NULL);
    cr_assert_eq(rc, CURLE_OK, "upload: %s", curl_easy_strerror(rc));
    cr_assert_eq(status, 200);
    cr_assert_eq(s.sent, total);

    /* stored whole */
    json_object *l = rel_api(&R, 0, "GET", "/openai/v1/files?limit=1", NULL, 200, NULL);
    json_object *f = json_object_array_get_idx(simh_get(l, "data"), 0);
    cr_assert_eq(json_object_get_int64(simh_get(f, "bytes")), (int64_t)total);
    cr_assert_str_eq(simh_str(f, "filename"), "big.jsonl");
    char *fid = strdup(simh_str(f, "id"));
    json_object_put(l);
    long long stored = dbh_scalar(&R.db, "SELECT sum(octet_length(data)) FROM openai_file_parts");
    cr_assert_eq(stored, (long long)total);

    long grew = rss_max - before;
    fprintf(stderr, "openai upload: %zu MB in %lld ms; RSS KiB before %ld, max %ld (+%ld)\n",
            total / 1000000, (long long)took, before, rss_max, grew);
    /* flat: far less than the file (an upload held in memory would add
     * 100 MB); the margin covers allocator noise and the ASan quarantine */
    cr_assert_lt(grew, 48 * MIB, "RSS grew by %ld KiB during a 100 MB upload", grew);

    char path[128], figures[256];
    snprintf(path, sizeof(path), "/openai/v1/files/%s", fid);
    json_object *d = rel_api(&R, 0, "DELETE", path, NULL, 200, NULL);
    json_object_put(d);
    free(fid);
    cr_assert_eq(dbh_scalar(&R.db, "SELECT count(*) FROM openai_file_parts"), 0);
    snprintf(figures, sizeof(figures),
             "{\"mb\":100,\"ms\":%lld,\"rss_before_kib\":%ld,\"rss_max_kib\":%ld}", (long long)took,
             before, rss_max);
    rel_report("openai_upload_100mb", "a 100 MB file streamed to /openai/v1/files: memory flat",
               "pass", figures);
}
