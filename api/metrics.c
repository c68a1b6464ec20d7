/*
 * metrics.c: GET /metrics, the Prometheus text format: the HTTP requests of
 * this process by route and status, the database's totals (jobs, chunks and
 * batches by state, the oldest pending chunk; read at most once a second
 * whatever the scrape rate), the connection pool, and the families of the
 * engine's rooms (gemini/client.h, store/counters.h).
 */
#include "api.h"

#include "gemini/client.h"
#include "log.h"
#include "metrics/metrics.h"
#include "store/counters.h"
#include "store/jobs.h"
#include "store/totals.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define TOTALS_MAX_AGE_MS 1000 /* database totals are read at most this often */
#define MAX_ROUTES        64

/* ---- HTTP requests, by route (its pattern, never the path) and status ---- */

static char route_store[MAX_ROUTES + 1][160];
static const char *route_labels[MAX_ROUTES + 1];
static size_t n_route_labels; /* routes of both tables, then "unmatched" */

static const int codes[] = {200, 201, 202, 204, 206, 301, 302, 304, 400, 401, 403,
                            404, 405, 406, 408, 409, 410, 411, 412, 413, 414, 415,
                            416, 422, 429, 431, 500, 501, 502, 503, 504};
#define N_CODES (SVC_ARRAY_LEN(codes) + 1) /* and "other" */
static const char *const code_labels[N_CODES] = {
    "200", "201", "202", "204", "206", "301", "302", "304", "400", "401",  "403",
    "404", "405", "406", "408", "409", "410", "411", "412", "413", "414",  "415",
    "416", "422", "429", "431", "500", "501", "502", "503", "504", "other"};

static atomic_uint_least64_t request_cells[(MAX_ROUTES + 1) * N_CODES];
static struct metric_hist request_hists[MAX_ROUTES + 1];
static const double request_le[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                    0.5,   1,      2.5,   5,    10,    30,   60};

/* the route dimension is sized in api_metrics_init */
static struct metric_family m_requests = {
    "embedd_http_requests_total",
    "HTTP requests answered, by route (the pattern of the route table; unmatched: none fitted) "
    "and status code; in this process",
    METRIC_COUNTER,
    false,
    true,
    {{NULL, route_labels, 0}, {"code", code_labels, N_CODES}},
    NULL,
    0,
    request_cells,
    NULL};
static struct metric_family m_request_seconds = {
    "embedd_http_request_duration_seconds",
    "Time from a request's complete head to the end of its response, by route; in this process",
    METRIC_HISTOGRAM,
    false,
    true,
    {{NULL, route_labels, 0}, {0}},
    request_le,
    SVC_ARRAY_LEN(request_le),
    NULL,
    request_hists};

/* A label list for the route dimension: method="GET",route="/v1/jobs/{id}"
 * (route="unmatched" alone: its method could be anything). */
static void name_route(size_t i, const char *method, const char *pattern)
{
    struct buf b;
    buf_init(&b, sizeof(route_store[i]) - 1);
    bool ok = true;
    if (method)
        ok = buf_puts(&b, "method=\"") && metrics_label_escape(&b, method) && buf_puts(&b, "\",");
    ok = ok && buf_puts(&b, "route=\"") && metrics_label_escape(&b, pattern) && buf_putc(&b, '"');
    snprintf(route_store[i], sizeof(route_store[i]), "%s",
             ok ? b.data : "method=\"?\",route=\"?\"");
    buf_cleanup(&b);
    route_labels[i] = route_store[i];
}

static double start_time;

void api_metrics_init(void)
{
    size_t n = 0;
    for (size_t i = 0; i < api_routes_count && n < MAX_ROUTES; i++, n++)
        name_route(n, api_routes[i].method, api_routes[i].pattern);
    for (size_t i = 0; i < api_metrics_routes_count && n < MAX_ROUTES; i++, n++)
        name_route(n, api_metrics_routes[i].method, api_metrics_routes[i].pattern);
    name_route(n++, NULL, "unmatched");
    n_route_labels = n;
    m_requests.dim[0].n = n;
    m_request_seconds.dim[0].n = n;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    start_time = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t route_index(const struct http_route *rt)
{
    size_t unmatched = n_route_labels ? n_route_labels - 1 : 0;
    if (!rt || !n_route_labels)
        return unmatched;
    if (rt >= api_routes && rt < api_routes + api_routes_count)
        return (size_t)(rt - api_routes) < unmatched ? (size_t)(rt - api_routes) : unmatched;
    if (rt >= api_metrics_routes && rt < api_metrics_routes + api_metrics_routes_count) {
        size_t i = api_routes_count + (size_t)(rt - api_metrics_routes);
        return i < unmatched ? i : unmatched;
    }
    return unmatched;
}

void api_metrics_observe(void *app, const struct http_route *rt, int status, double seconds)
{
    (void)app;
    if (!n_route_labels)
        return; /* api_metrics_init was not called: nothing is named */
    size_t r = route_index(rt), code = N_CODES - 1;
    for (size_t i = 0; i < SVC_ARRAY_LEN(codes); i++)
        if (codes[i] == status)
            code = i;
    metric_inc(&m_requests, metric_at(&m_requests, r, code), 1);
    metric_observe(&m_request_seconds, r, seconds);
}

/* ---- the database's totals, the same for every replica ---- */

static atomic_uint_least64_t jobs_cells[STORE_JOB_STATES], chunks_cells[STORE_CHUNK_STATES],
    batches_cells[STORE_BATCH_STATES], oldest_cell[1], db_up_cell[1];
static const struct metric_family m_jobs = {
    "embedd_jobs", "Jobs by state, in the database (all replicas)",
    METRIC_GAUGE,  false,
    false,         {{"state", store_job_states, STORE_JOB_STATES}, {0}},
    NULL,          0,
    jobs_cells,    NULL};
static const struct metric_family m_chunks = {
    "embedd_chunks",
    "Chunks by state, in the database (all replicas; the sums of the jobs' counters)",
    METRIC_GAUGE,
    false,
    false,
    {{"state", store_chunk_states, STORE_CHUNK_STATES}, {0}},
    NULL,
    0,
    chunks_cells,
    NULL};
static const struct metric_family m_batches = {
    "embedd_batches",
    "Batches by state, in the database (all replicas)",
    METRIC_GAUGE,
    false,
    false,
    {{"state", jobs_batch_states, STORE_BATCH_STATES}, {0}},
    NULL,
    0,
    batches_cells,
    NULL};
static const struct metric_family m_oldest = {
    "embedd_oldest_pending_chunk_age_seconds",
    "Age of the oldest chunk waiting to be claimed (0 when none), in the database",
    METRIC_GAUGE,
    false,
    false,
    {{0}, {0}},
    NULL,
    0,
    oldest_cell,
    NULL};
static const struct metric_family m_db_up = {
    "embedd_database_up",
    "1 when the database's totals could be read for this scrape (else the embedd_jobs, "
    "embedd_chunks, embedd_batches and embedd_oldest_pending_chunk_age_seconds families are left "
    "out)",
    METRIC_GAUGE,
    false,
    false,
    {{0}, {0}},
    NULL,
    0,
    db_up_cell,
    NULL};

static pthread_mutex_t totals_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t totals_read_ms = -1; /* monotonic time of the last read; -1: never */
static bool totals_ok;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read the totals into their gauges unless that was done less than
 * TOTALS_MAX_AGE_MS ago; concurrent scrapes wait for one read. Whether the
 * gauges hold the database's figures. */
static bool refresh_totals(struct app *app)
{
    pthread_mutex_lock(&totals_lock);
    int64_t now = mono_ms();
    if (totals_read_ms < 0 || now - totals_read_ms >= TOTALS_MAX_AGE_MS) {
        char err[512];
        struct store_totals t;
        PGconn *c = db_pool_acquire(app->db, app->db_timeout_ms, err, sizeof(err));
        totals_ok = c && store_totals_read(c, &t, err, sizeof(err));
        db_pool_release(app->db, c);
        if (totals_ok) {
            for (size_t i = 0; i < STORE_JOB_STATES; i++)
                metric_set(&m_jobs, i, (double)t.jobs[i]);
            for (size_t i = 0; i < STORE_CHUNK_STATES; i++)
                metric_set(&m_chunks, i, (double)t.chunks[i]);
            for (size_t i = 0; i < STORE_BATCH_STATES; i++)
                metric_set(&m_batches, i, (double)t.batches[i]);
            metric_set(&m_oldest, 0, t.oldest_pending_s);
        } else {
            log_warn("metrics: %s", err);
        }
        metric_set(&m_db_up, 0, totals_ok ? 1 : 0);
        totals_read_ms = mono_ms();
    }
    bool ok = totals_ok;
    pthread_mutex_unlock(&totals_lock);
    return ok;
}

/* ---- the connection pool and the process ---- */

static atomic_uint_least64_t pool_cells[2], pool_max_cell[1], start_cell[1];
static const char *const pool_states[] = {"in_use", "idle"};
static const struct metric_family m_pool = {
    "embedd_db_pool_connections",
    "Open connections of this process's PostgreSQL pool: lent out (in_use) or idle",
    METRIC_GAUGE,
    false,
    false,
    {{"state", pool_states, 2}, {0}},
    NULL,
    0,
    pool_cells,
    NULL};
static const struct metric_family m_pool_max = {
    "embedd_db_pool_max_connections",
    "Size of this process's PostgreSQL pool (--db-pool-size)",
    METRIC_GAUGE,
    false,
    false,
    {{0}, {0}},
    NULL,
    0,
    pool_max_cell,
    NULL};
static const struct metric_family m_start = {"process_start_time_seconds",
                                             "Start time of the process since the Unix epoch",
                                             METRIC_GAUGE,
                                             false,
                                             false,
                                             {{0}, {0}},
                                             NULL,
                                             0,
                                             start_cell,
                                             NULL};

void api_metrics(void *appv, struct http_req *req, struct http_resp *resp)
{
    struct app *app = appv;
    bool totals = refresh_totals(app);
    size_t in_use, open, size;
    db_pool_stats(app->db, &in_use, &open, &size);
    metric_set(&m_pool, 0, (double)in_use);
    metric_set(&m_pool, 1, (double)(open > in_use ? open - in_use : 0));
    metric_set(&m_pool_max, 0, (double)size);
    metric_set(&m_start, 0, start_time);
    const struct metric_family *const own[] = {&m_requests, &m_request_seconds, &m_pool,
                                               &m_pool_max, &m_start,           &m_db_up};
    const struct metric_family *const db[] = {&m_jobs, &m_chunks, &m_batches, &m_oldest};
    size_t n_gem, n_store;
    const struct metric_family *const *gem = gem_metrics(&n_gem);
    const struct metric_family *const *store = store_metrics(&n_store);
    buf_reset(&resp->body);
    bool ok = metrics_render(&resp->body, own, SVC_ARRAY_LEN(own)) &&
              (!totals || metrics_render(&resp->body, db, SVC_ARRAY_LEN(db))) &&
              metrics_render(&resp->body, store, n_store) &&
              metrics_render(&resp->body, gem, n_gem);
    if (!ok) {
        http_problem(resp, req, 500, "internal", NULL, "the metrics could not be rendered");
        return;
    }
    resp->status = 200;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    http_resp_header(resp, "Cache-Control", "no-store");
}
