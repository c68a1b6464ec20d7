/*
 * test_metrics_api.c: GET /metrics on the --metrics-listen address of a real
 * embedd serve running jobs through gemini-sim: the database's gauges equal
 * the database's own counts, the process counters move with the work
 * (chunks sent, results, tokens and dollars, reuse, Google calls, claims,
 * HTTP requests by route and status), histograms are well formed, and
 * `promtool check metrics` accepts a scrape (a missing promtool fails the
 * test: scripts/deps.sh installs it). And the ETA of GET /v1/jobs/{id}:
 * null before anything finished and once the job has, present and sane while
 * batches are in flight, from the job's own batches or from recent jobs.
 */
#include "harness.h"
#include "svch.h"

#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct simh sim;
static struct svch svc;
static int metrics_port;

static void start_both(const char *const *sim_flags, const char *const *svc_extra)
{
    simh_start(&sim, sim_flags);
    static char flags[4][256];
    const char *argv[24];
    int n = 0;
    snprintf(flags[0], sizeof(flags[0]), "--gemini-base-url=%s", sim.base);
    snprintf(flags[1], sizeof(flags[1]), "--gemini-api-key=%s", SIMH_KEY);
    argv[n++] = flags[0];
    argv[n++] = flags[1];
    static const char *const fixed[] = {
        "--poll-min-ms=20",   "--poll-max-ms=50",       "--workers=2",
        "--http-threads=2",   "--batch-max-requests=4", "--file-batch-max-requests=0",
        "--sync-max-texts=0", "--max-open-batches=1",   "--metrics-listen=127.0.0.1:0"};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        argv[n++] = fixed[i];
    for (int i = 0; svc_extra && svc_extra[i]; i++)
        argv[n++] = svc_extra[i];
    argv[n] = NULL;
    svch_start(&svc, argv);
    /* the port file's second line: the metrics listener's port */
    char path[128];
    snprintf(path, sizeof(path), "%s/port", svc.dir);
    FILE *f = fopen(path, "r");
    cr_assert(f, "no port file");
    int main_port = 0;
    cr_assert_eq(fscanf(f, "%d %d", &main_port, &metrics_port), 2, "no metrics port in %s", path);
    fclose(f);
    cr_assert_eq(main_port, svc.port);
}

static void stop_both(void)
{
    svch_stop(&svc);
    simh_stop(&sim);
}

TestSuite(metrics, .fini = stop_both, .timeout = 300);

static long get_url(const char *url, char **body)
{
    struct simh_resp r;
    simh_req_url(&r, "GET", url, NULL, 0, NULL);
    cr_assert_eq(r.curl_code, 0, "GET %s failed", url);
    long status = r.status;
    *body = r.body;
    r.body = NULL;
    simh_resp_free(&r);
    return status;
}

/* A scrape of the metrics listener (caller frees). */
static char *scrape(void)
{
    char url[96], *body;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", metrics_port);
    struct simh_resp r;
    simh_req_url(&r, "GET", url, NULL, 0, NULL);
    cr_assert_eq(r.status, 200, "GET /metrics: %ld", r.status);
    char ct[128] = "";
    cr_assert(simh_header(&r, "Content-Type", ct, sizeof(ct)));
    cr_assert(strncmp(ct, "text/plain; version=0.0.4", 25) == 0, "Content-Type %s", ct);
    body = r.body;
    r.body = NULL;
    simh_resp_free(&r);
    return body;
}

/* The value of one series ("name{labels}" exactly as rendered); NAN if absent. */
static double mval(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return NAN;
}

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

/* n one-chunk documents whose texts carry tag (texts differ between tags). */
static char *job_body(int n, const char *tag)
{
    size_t cap = (size_t)n * 128 + 128;
    char *b = malloc(cap);
    size_t len = (size_t)snprintf(b, cap, "{\"output_dimensionality\":128,\"documents\":[");
    for (int d = 0; d < n; d++)
        len +=
            (size_t)snprintf(b + len, cap - len,
                             "%s{\"id\":\"d%d\",\"text\":\"Document %d of %s is about item %d.\"}",
                             d ? "," : "", d, d, tag, d * 7);
    snprintf(b + len, cap - len, "]}");
    return b;
}

/* Every histogram series: buckets cumulative in le order, ending with
 * +Inf, which equals _count. Returns how many series were checked. */
static int check_histograms(const char *text)
{
    int series = 0;
    char key[512] = "";
    double last = -1, inf = -1;
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        const char *eol = strchr(p, '\n');
        size_t ll = eol ? (size_t)(eol - p) : strlen(p);
        char line[1024];
        cr_assert_lt(ll, sizeof(line));
        memcpy(line, p, ll);
        line[ll] = '\0';
        char *b = strstr(line, "_bucket{");
        if (b && line[0] != '#') {
            char *le = strstr(line, "le=\"");
            cr_assert(le, "bucket without le: %s", line);
            char k[512];
            snprintf(k, sizeof(k), "%.*s", (int)(le - line), line);
            double v = strtod(strrchr(line, ' ') + 1, NULL);
            if (strcmp(k, key) != 0) {
                cr_assert_eq(inf, last, "the series before %s did not end with +Inf", line);
                snprintf(key, sizeof(key), "%s", k);
                last = -1;
                inf = -2;
            }
            cr_assert_geq(v, last, "buckets not cumulative: %s", line);
            last = v;
            if (strncmp(le, "le=\"+Inf\"", 9) == 0) {
                inf = v;
                /* name_count{labels without le} */
                char cnt[600];
                size_t base = (size_t)(b - line);
                size_t lab = (size_t)(le - (b + 8)); /* labels before le, with their comma */
                if (lab)
                    snprintf(cnt, sizeof(cnt), "%.*s_count{%.*s}", (int)base, line, (int)lab - 1,
                             b + 8);
                else
                    snprintf(cnt, sizeof(cnt), "%.*s_count", (int)base, line);
                double c = mval(text, cnt);
                cr_assert(c == v, "%s is %g, +Inf bucket %g", cnt, c, v);
                series++;
            }
        }
    }
    cr_assert_eq(inf, last, "the last histogram series did not end with +Inf");
    return series;
}

/* `promtool check metrics` on a scrape: it must be installed (scripts/deps.sh)
 * and find nothing to say. */
static void promtool_check(const char *text)
{
    if (system("command -v promtool >/dev/null 2>&1") != 0)
        cr_assert_fail("promtool is not installed: it comes with the Debian package "
                       "\"prometheus\" (scripts/deps.sh installs it); this test needs it");
    char path[] = "/tmp/embedd-scrape-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    size_t n = strlen(text);
    cr_assert_eq(write(fd, text, n), (ssize_t)n);
    close(fd);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "promtool check metrics < %s 2>&1", path);
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    char out[4096];
    size_t got = fread(out, 1, sizeof(out) - 1, p);
    out[got] = '\0';
    int rc = pclose(p);
    unlink(path);
    cr_assert(rc == 0 && got == 0, "promtool check metrics (status %d):\n%s", rc, out);
}

static long long db_count(const char *sql)
{
    return dbh_scalar(&svc.db, sql);
}

/* Scrape until series equals want (the database's totals are read at most
 * once a second; HTTP requests are counted once their response is out). */
static char *scrape_until(const char *series, double want)
{
    int64_t deadline = simh_ms() + 15000;
    for (;;) {
        char *m = scrape();
        double v = mval(m, series);
        if (v == want)
            return m;
        cr_assert(simh_ms() < deadline, "%s is %g, not %g", series, v, want);
        free(m);
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static void assert_series(const char *m, const char *series, double want)
{
    double v = mval(m, series);
    cr_assert(v == want, "%s is %g, not %g", series, v, want);
}

static void start_metrics(void)
{
    static const char *const f[] = {"--pending-ms=500", "--running-ms=500", NULL};
    start_both(f, NULL);
}

Test(metrics, values_move_with_the_work_and_match_the_database, .init = start_metrics)
{
    char *m = scrape();
    assert_series(m, "embedd_database_up", 1);
    assert_series(m, "embedd_jobs{state=\"succeeded\"}", 0);
    assert_series(m, "embedd_chunks{state=\"pending\"}", 0);
    assert_series(m, "embedd_oldest_pending_chunk_age_seconds", 0);
    assert_series(m, "embedd_chunks_sent_total{transport=\"inline\"}", 0);
    /* http threads + workers + webhook sender threads + 2 (the harness: 2, 2, default 2) */
    assert_series(m, "embedd_db_pool_max_connections", 2 + 2 + 2 + 2);
    free(m);

    /* the API's own port has no /metrics; the metrics port has nothing else */
    char url[128], *body;
    snprintf(url, sizeof(url), "%s/metrics", svc.base);
    cr_assert_eq(get_url(url, &body), 404);
    free(body);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/jobs", metrics_port);
    cr_assert_eq(get_url(url, &body), 404);
    free(body);
    snprintf(url, sizeof(url), "%s/v1/jobs", svc.base);
    cr_assert_eq(get_url(url, &body), 401, "no key");
    free(body);
    snprintf(url, sizeof(url), "%s/no/such/path", svc.base);
    cr_assert_eq(get_url(url, &body), 404);
    free(body);

    /* 12 chunks: three batches of 4, one at a time (--max-open-batches=1) */
    char *jb = job_body(12, "alpha");
    json_object *o = api("POST", "/v1/jobs", jb, 202);
    char id[64];
    snprintf(id, sizeof(id), "%s", simh_str(o, "id"));
    json_object_put(o);
    bool seen_pending = false;
    int64_t deadline = simh_ms() + 60000;
    for (;;) {
        m = scrape();
        if (mval(m, "embedd_chunks{state=\"pending\"}") > 0) {
            seen_pending = true;
            cr_assert_gt(mval(m, "embedd_oldest_pending_chunk_age_seconds"), 0,
                         "chunks are pending, so the oldest has an age");
        }
        bool done = mval(m, "embedd_jobs{state=\"succeeded\"}") == 1;
        free(m);
        if (done)
            break;
        cr_assert(simh_ms() < deadline, "the job did not finish in time");
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    cr_assert(seen_pending, "a scrape saw chunks waiting for their batch");

    /* the same documents again: every chunk reused, nothing sent */
    o = api("POST", "/v1/jobs", jb, 202);
    cr_assert_str_eq(simh_str(o, "state"), "succeeded");
    json_object_put(o);
    free(jb);
    char path[96];
    snprintf(path, sizeof(path), "/v1/jobs/%s", id);
    json_object *job = api("GET", path, NULL, 200);
    cr_assert_str_eq(simh_str(job, "state"), "succeeded");

    m = scrape_until("embedd_jobs{state=\"succeeded\"}", 2);
    /* the database's gauges are the database's counts */
    static const char *const job_states[] = {
        "pending", "running", "succeeded", "completed_with_errors", "failed", "cancelled"};
    for (size_t i = 0; i < 6; i++) {
        char sql[160], series[96];
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM jobs WHERE state = '%s'", job_states[i]);
        snprintf(series, sizeof(series), "embedd_jobs{state=\"%s\"}", job_states[i]);
        assert_series(m, series, (double)db_count(sql));
    }
    static const char *const chunk_states[] = {"pending", "in_flight", "succeeded", "failed"};
    for (int s = 0; s < 4; s++) {
        char sql[96], series[96];
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM chunks WHERE state = %d", s);
        snprintf(series, sizeof(series), "embedd_chunks{state=\"%s\"}", chunk_states[s]);
        assert_series(m, series, (double)db_count(sql));
    }
    assert_series(m, "embedd_chunks{state=\"succeeded\"}", 24);
    static const char *const batch_states[] = {"intent",  "submitted", "succeeded", "failed",
                                               "expired", "cancelled", "released"};
    for (size_t i = 0; i < 7; i++) {
        char sql[160], series[96];
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM batches WHERE state = '%s'",
                 batch_states[i]);
        snprintf(series, sizeof(series), "embedd_batches{state=\"%s\"}", batch_states[i]);
        assert_series(m, series, (double)db_count(sql));
    }
    assert_series(m, "embedd_batches{state=\"succeeded\"}", 3);
    assert_series(m, "embedd_oldest_pending_chunk_age_seconds", 0);

    /* this process's work */
    assert_series(m, "embedd_chunks_sent_total{transport=\"inline\"}", 12);
    assert_series(m, "embedd_chunks_sent_total{transport=\"sync\"}", 0);
    assert_series(m, "embedd_chunk_results_total{outcome=\"succeeded\"}", 12);
    assert_series(m, "embedd_chunk_results_total{outcome=\"failed\"}", 0);
    assert_series(m, "embedd_chunks_reused_total", 12);
    assert_series(m, "embedd_claim_duration_seconds_count{outcome=\"batch\"}", 3);
    assert_series(m, "embedd_gemini_calls_total{endpoint=\"create\",outcome=\"ok\"}",
                  (double)simh_stat(&sim, "creates_accepted"));
    assert_series(m, "embedd_gemini_calls_total{endpoint=\"create\",outcome=\"ok\"}", 3);
    cr_assert_geq(mval(m, "embedd_gemini_calls_total{endpoint=\"get\",outcome=\"ok\"}"), 3);
    cr_assert_gt(mval(m, "embedd_gemini_sent_bytes_total{endpoint=\"create\"}"), 0);
    assert_series(m, "embedd_gemini_call_duration_seconds_count{endpoint=\"create\"}", 3);

    /* tokens and dollars: the job's, at its prices */
    long long tokens = db_count("SELECT sum(tokens_batch) FROM jobs");
    cr_assert_gt(tokens, 0);
    assert_series(m, "embedd_tokens_total{path=\"batch\"}", (double)tokens);
    assert_series(m, "embedd_tokens_total{path=\"interactive\"}", 0);
    assert_series(m, "embedd_tokens_total{path=\"reused\"}", (double)tokens);
    double pi = json_object_get_double(simh_get(job, "cost.prices.interactive_per_1m_tokens"));
    double pb = json_object_get_double(simh_get(job, "cost.prices.batch_per_1m_tokens"));
    cr_assert(pb > 0 && pi > pb);
    double paid = mval(m, "embedd_cost_dollars_total");
    double equiv = mval(m, "embedd_cost_interactive_equivalent_dollars_total");
    double saved = mval(m, "embedd_cost_saved_dollars_total{by=\"batch\"}");
    double reuse = mval(m, "embedd_cost_saved_dollars_total{by=\"reuse\"}");
    double t = (double)tokens;
    cr_assert(fabs(paid - t * pb / 1e6) < 1e-12, "paid %g", paid);
    cr_assert(fabs(equiv - t * pi / 1e6) < 1e-12, "interactive equivalent %g", equiv);
    cr_assert(fabs(saved - t * (pi - pb) / 1e6) < 1e-12, "saved by batch %g", saved);
    cr_assert(fabs(reuse - t * pb / 1e6) < 1e-12, "saved by reuse %g", reuse);
    json_object_put(job);
    free(m);

    /* HTTP requests by route pattern and status (counted once answered) */
    free(scrape_until("embedd_http_requests_total{method=\"GET\",route=\"/v1/jobs/{id}\","
                      "code=\"200\"}",
                      1));
    m = scrape_until("embedd_http_requests_total{method=\"POST\",route=\"/v1/jobs\",code=\"202\"}",
                     2);
    assert_series(m, "embedd_http_requests_total{method=\"GET\",route=\"/v1/jobs\",code=\"401\"}",
                  1);
    /* /metrics on the API port, /no/such/path; /v1/jobs on the metrics port */
    cr_assert_geq(mval(m, "embedd_http_requests_total{route=\"unmatched\",code=\"404\"}"), 3);
    cr_assert_geq(mval(m, "embedd_http_requests_total{method=\"GET\",route=\"/metrics\","
                          "code=\"200\"}"),
                  5);
    cr_assert(isnan(mval(m, "embedd_http_requests_total{method=\"GET\",route=\"/v1/jobs/{id}\","
                            "code=\"404\"}")),
              "series that never moved are left out");
    assert_series(
        m, "embedd_http_request_duration_seconds_count{method=\"POST\",route=\"/v1/jobs\"}", 2);
    cr_assert(!strstr(m, id), "no raw path in a label");
    cr_assert_geq(check_histograms(m), 8);
    promtool_check(m);
    free(m);
}

/* ---- ETA ---- */

static void start_eta(void)
{
    /* each batch takes 1.6 s at the simulator: windows to look at the ETA */
    static const char *const f[] = {"--pending-ms=800", "--running-ms=800", NULL};
    start_both(f, NULL);
}

static time_t parse_utc(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    char z = 0;
    cr_assert(strlen(s) == 20 &&
                  sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                         &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &z) == 7 &&
                  z == 'Z',
              "at is not an RFC 3339 UTC time: %s", s);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return timegm(&tm);
}

/* eta of a job representation: null, or sane; returns its source or NULL. */
static const char *check_eta(json_object *job)
{
    json_object *eta = NULL;
    cr_assert(json_object_object_get_ex(job, "eta", &eta), "no eta member");
    const char *state = simh_str(job, "state");
    int done = json_object_get_int(simh_get(job, "stats.batches.succeeded"));
    if (strcmp(state, "pending") && strcmp(state, "running")) {
        cr_assert_null(eta, "a finished job has no ETA");
        return NULL;
    }
    if (!eta)
        return NULL;
    time_t now = time(NULL);
    int64_t secs = json_object_get_int64(simh_get(eta, "seconds"));
    cr_assert(secs > 0 && secs < 600, "eta.seconds %lld", (long long)secs);
    time_t at = parse_utc(simh_str(eta, "at"));
    cr_assert(llabs((long long)(at - (now + secs))) <= 3, "at %s is not now + %lld s",
              simh_str(eta, "at"), (long long)secs);
    json_object *c = simh_get(job, "stats.chunks");
    int remaining =
        json_object_get_int(simh_get(c, "pending")) + json_object_get_int(simh_get(c, "in_flight"));
    cr_assert_eq(json_object_get_int(simh_get(eta, "basis.remaining_chunks")), remaining);
    cr_assert_gt(json_object_get_double(simh_get(eta, "basis.batch_seconds")), 0);
    const char *source = simh_str(eta, "basis.source");
    /* the estimate's inputs are read just after the job's row: they may be a
     * batch newer than its stats */
    if (strcmp(source, "job") == 0)
        cr_assert_geq(json_object_get_int(simh_get(eta, "basis.batches_observed")),
                      done > 0 ? done : 1);
    else
        cr_assert_str_eq(source, "recent_jobs");
    return source;
}

/* Run a job to its end, checking its ETA all along; counts the sources seen. */
static void watch_job(const char *tag, bool first, int *own, int *recent)
{
    char *body = job_body(12, tag);
    json_object *o = api("POST", "/v1/jobs", body, 202);
    free(body);
    cr_assert_null(check_eta(o), "nothing to estimate at creation");
    char id[64], path[96];
    snprintf(id, sizeof(id), "%s", simh_str(o, "id"));
    json_object_put(o);
    snprintf(path, sizeof(path), "/v1/jobs/%s", id);
    bool listed = false;
    int64_t deadline = simh_ms() + 90000;
    for (;;) {
        json_object *job = api("GET", path, NULL, 200);
        const char *source = check_eta(job);
        int done = json_object_get_int(simh_get(job, "stats.batches.succeeded"));
        if (first && done == 0 && source) /* unless a batch came back since the row was read */
            cr_assert_str_eq(source, "job", "no batch finished anywhere yet: no ETA");
        if (source && strcmp(source, "job") == 0)
            (*own)++;
        if (source && strcmp(source, "recent_jobs") == 0)
            (*recent)++;
        if (source && !listed) { /* the list shows it too */
            json_object *l = api("GET", "/v1/jobs?state=running", NULL, 200);
            json_object *jobs = simh_get(l, "jobs");
            for (size_t i = 0; i < json_object_array_length(jobs); i++) {
                json_object *j = json_object_array_get_idx(jobs, i);
                if (strcmp(simh_str(j, "id"), id) == 0 &&
                    strcmp(simh_str(j, "state"), "running") == 0) {
                    cr_assert(check_eta(j), "a running job's ETA in the list");
                    listed = true;
                }
            }
            json_object_put(l);
        }
        bool over =
            strcmp(simh_str(job, "state"), "running") && strcmp(simh_str(job, "state"), "pending");
        if (over)
            cr_assert_str_eq(simh_str(job, "state"), "succeeded");
        json_object_put(job);
        if (over)
            break;
        cr_assert(simh_ms() < deadline, "job %s did not finish in time", id);
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    cr_assert(listed, "the list showed the job's ETA");
}

Test(metrics, eta_while_batches_are_in_flight, .init = start_eta)
{
    int own = 0, recent = 0;
    /* three batches one after the other: the first has nothing to go on until
     * its first batch is back, then its own batches */
    watch_job("first", true, &own, &recent);
    cr_assert_gt(own, 0, "the ETA came from the job's own batches");
    cr_assert_eq(recent, 0, "no recent job to go by");
    /* the next job of the same key and model goes by the first one until its
     * own first batch is back */
    own = recent = 0;
    watch_job("second", false, &own, &recent);
    cr_assert_gt(recent, 0, "the ETA came from the recent job");
    cr_assert_gt(own, 0, "then from the job's own batches");
}
