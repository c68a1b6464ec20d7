/*
 * test_events.c: GET /v1/jobs/{id}/events (Server-Sent Events) against real
 * embedd serve processes on one database: a stream read from a replica
 * without workers follows a job run by another replica to its done event;
 * Last-Event-ID resumes (unchanged: heartbeats only; changed: progress at
 * once; terminal: done at once); another key's job is 404; the client limit
 * answers 503 and frees its places; shutdown ends streams at once. Also
 * GET /v1/jobs/{id}/batches and the dashboard's files.
 */
#include "harness.h"
#include "ssec.h"
#include "svch.h"

#include <criterion/criterion.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static struct simh sim;
static struct svch watcher; /* no workers: it only serves HTTP */
static struct svch runner;  /* a replica with workers, started by some tests */
static bool sim_on, runner_on;

static void start_watcher(const char *const *extra)
{
    const char *f[12];
    int n = 0;
    f[n++] = "--sse-interval-ms=150";
    f[n++] = "--sse-heartbeat-s=1";
    for (int i = 0; extra && extra[i]; i++)
        f[n++] = extra[i];
    f[n] = NULL;
    svch_start(&watcher, f); /* no Gemini key: "no workers start" */
}

static void start_runner(void)
{
    static const char *const sf[] = {"--pending-ms=200", "--running-ms=200", NULL};
    simh_start(&sim, sf);
    sim_on = true;
    static char fl[2][256];
    snprintf(fl[0], sizeof(fl[0]), "--gemini-base-url=%s", sim.base);
    snprintf(fl[1], sizeof(fl[1]), "--gemini-api-key=%s", SIMH_KEY);
    const char *const f[] = {fl[0],
                             fl[1],
                             "--poll-min-ms=20",
                             "--poll-max-ms=100",
                             "--sync-max-texts=0",
                             "--batch-max-requests=4",
                             "--file-batch-max-requests=0",
                             "--max-open-batches=1",
                             NULL};
    svch_start_replica(&runner, &watcher, f);
    runner_on = true;
}

static void setup(void)
{
    start_watcher(NULL);
}

static void teardown(void)
{
    if (runner_on)
        svch_stop(&runner);
    svch_stop(&watcher);
    if (sim_on)
        simh_stop(&sim);
}

TestSuite(events, .init = setup, .fini = teardown, .timeout = 300);

static json_object *api_on(struct svch *s, const char *method, const char *path, const char *key,
                           const char *body, long want)
{
    char url[256], auth[128];
    snprintf(url, sizeof(url), "%s%s", s->base, path);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key ? key : s->key);
    const char *hs[3] = {auth, "Content-Type: application/json", NULL};
    struct simh_resp r;
    simh_req_url(&r, method, url, body, body ? strlen(body) : 0, hs);
    cr_assert_eq(r.status, want, "%s %s: %ld, want %ld: %.300s", method, path, r.status, want,
                 r.body);
    json_object *o = r.len ? simh_json(&r) : NULL;
    simh_resp_free(&r);
    return o;
}

/* A job of docs short documents, created on s; returns its id (malloc'd). */
static char *submit(struct svch *s, int docs)
{
    char body[8192];
    size_t len =
        (size_t)snprintf(body, sizeof(body), "{\"output_dimensionality\":128,\"documents\":[");
    for (int i = 0; i < docs; i++)
        len += (size_t)snprintf(body + len, sizeof(body) - len,
                                "%s{\"id\":\"d%d\",\"text\":\"document %d of the events test\"}",
                                i ? "," : "", i, i);
    snprintf(body + len, sizeof(body) - len, "]}");
    json_object *o = api_on(s, "POST", "/v1/jobs", NULL, body, 202);
    char *id = strdup(simh_str(o, "id"));
    json_object_put(o);
    return id;
}

static void open_events(struct ssec *c, struct svch *s, const char *id, const char *key,
                        const char *last_id)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/jobs/%s/events", id);
    cr_assert(ssec_open(c, s->port, path, key ? key : s->key, last_id, 10000),
              "GET %s: no response head", path);
}

/* An event id "SEQ-VERSION". */
static void split_id(const char *id, unsigned long long *seq, long long *ver)
{
    char *end;
    *seq = strtoull(id, &end, 10);
    cr_assert_eq(*end, '-', "event id \"%s\" is SEQ-VERSION", id);
    *ver = strtoll(end + 1, &end, 10);
    cr_assert_eq(*end, '\0', "event id \"%s\" is SEQ-VERSION", id);
}

static bool terminal(const char *state)
{
    return strcmp(state, "pending") != 0 && strcmp(state, "running") != 0;
}

Test(events, stream_on_one_replica_follows_a_job_run_by_another)
{
    char *id = submit(&watcher, 12); /* 3 batches of 4, one at a time */
    struct ssec c;
    open_events(&c, &watcher, id, NULL, NULL);
    cr_assert_eq(c.status, 200, "%s", c.head);
    char v[128];
    cr_assert(ssec_header(&c, "Content-Type", v, sizeof(v)) &&
                  strncmp(v, "text/event-stream", 17) == 0,
              "%s", c.head);
    cr_assert(ssec_header(&c, "Cache-Control", v, sizeof(v)) && strcmp(v, "no-cache") == 0);

    /* nothing runs the job yet: the first event is its pending state */
    struct ssec_event ev;
    cr_assert_eq(ssec_next(&c, &ev, 10000), 1, "a first event at once");
    cr_assert_str_eq(ev.event, "progress");
    json_object *o = json_tokener_parse(ev.data);
    cr_assert(o, "the data is JSON: %s", ev.data);
    cr_assert_str_eq(simh_str(o, "id"), id);
    cr_assert_str_eq(simh_str(o, "state"), "pending");
    cr_assert(simh_get(o, "stats.chunks") && simh_get(o, "cost"), "the job representation");
    json_object_put(o);
    unsigned long long seq, prev_seq;
    long long ver, prev_ver;
    split_id(ev.id, &prev_seq, &prev_ver);
    cr_assert_eq(prev_seq, 1);
    free(ev.data);

    /* now another replica, with workers, runs it */
    int64_t t0 = simh_ms();
    start_runner();
    int progress = 1, got, etas = 0;
    long long last_done = 0;
    bool done = false;
    while ((got = ssec_next(&c, &ev, 60000)) == 1) {
        cr_assert(!done, "nothing after done");
        split_id(ev.id, &seq, &ver);
        cr_assert_eq(seq, prev_seq + 1, "ids count up: %s after %llu", ev.id, prev_seq);
        cr_assert_neq(ver, prev_ver, "each event shows another version of the job");
        prev_seq = seq;
        prev_ver = ver;
        o = json_tokener_parse(ev.data);
        cr_assert(o);
        const char *st = simh_str(o, "state");
        long long ok = json_object_get_int64(simh_get(o, "stats.chunks.succeeded"));
        cr_assert_geq(ok, last_done, "progress never goes back");
        last_done = ok;
        /* the ETA, as GET /v1/jobs/{id} gives it: known once a batch came back */
        json_object *eta = NULL;
        cr_assert(json_object_object_get_ex(o, "eta", &eta), "the job has an eta member");
        if (eta) {
            cr_assert(simh_get(o, "eta.seconds") && simh_get(o, "eta.basis.source"), "%s", ev.data);
            etas++;
        }
        if (strcmp(ev.event, "done") == 0) {
            done = true;
            cr_assert(terminal(st), "done carries the terminal job (%s)", st);
            cr_assert_str_eq(st, "succeeded");
            cr_assert_eq(ok, 12);
        } else {
            cr_assert_str_eq(ev.event, "progress");
            cr_assert(!terminal(st), "a progress event of a running job (%s)", st);
            progress++;
        }
        json_object_put(o);
        free(ev.data);
    }
    int64_t span = simh_ms() - t0;
    cr_assert_eq(got, 0, "the server ends the body after done (got %d)", got);
    cr_assert(done, "a done event");
    cr_assert_gt(etas, 0, "an event with the ETA while the job ran");
    /* coalesced: at most one progress event per interval (150 ms), plus the first two */
    cr_assert_leq(progress, 2 + span / 150 + 1, "%d progress events in %lld ms", progress,
                  (long long)span);
    ssec_close(&c);

    /* what the stream said last is what the runner says */
    char path[96];
    snprintf(path, sizeof(path), "/v1/jobs/%s", id);
    o = api_on(&runner, "GET", path, NULL, NULL, 200);
    cr_assert_str_eq(simh_str(o, "state"), "succeeded");
    json_object_put(o);

    /* its batches, from the replica that did not run them, paged */
    snprintf(path, sizeof(path), "/v1/jobs/%s/batches?limit=2", id);
    o = api_on(&watcher, "GET", path, NULL, NULL, 200);
    json_object *bs = simh_get(o, "batches");
    cr_assert_eq(json_object_array_length(bs), 2);
    const char *next = simh_str(o, "next_cursor");
    cr_assert(next, "a second page");
    long chunks = 0;
    for (size_t i = 0; i < 2; i++) {
        json_object *b = json_object_array_get_idx(bs, i);
        cr_assert_str_eq(simh_str(b, "state"), "succeeded");
        cr_assert_str_eq(simh_str(b, "transport"), "inline");
        cr_assert(strncmp(simh_str(b, "gemini_name"), "batches/", 8) == 0);
        cr_assert(simh_str(b, "created_at") && simh_str(b, "finished_at"));
        chunks += json_object_get_int(simh_get(b, "chunks"));
    }
    char path2[192];
    snprintf(path2, sizeof(path2), "/v1/jobs/%s/batches?limit=2&cursor=%s", id, next);
    json_object *o2 = api_on(&watcher, "GET", path2, NULL, NULL, 200);
    bs = simh_get(o2, "batches");
    cr_assert_eq(json_object_array_length(bs), 1);
    chunks += json_object_get_int(simh_get(json_object_array_get_idx(bs, 0), "chunks"));
    cr_assert_null(simh_get(o2, "next_cursor"));
    cr_assert_eq(chunks, 12, "the batches carried every chunk once");
    json_object_put(o);
    json_object_put(o2);
    snprintf(path2, sizeof(path2), "/v1/jobs/%s/batches?cursor=x", id);
    json_object_put(api_on(&watcher, "GET", path2, NULL, NULL, 400));
    snprintf(path2, sizeof(path2), "/v1/jobs/%s/batches?limit=0", id);
    json_object_put(api_on(&watcher, "GET", path2, NULL, NULL, 400));
    free(id);
}

Test(events, last_event_id_resumes)
{
    char *id = submit(&watcher, 3); /* no workers anywhere: it stays pending */
    struct ssec a;
    open_events(&a, &watcher, id, NULL, NULL);
    struct ssec_event ev;
    cr_assert_eq(ssec_next(&a, &ev, 10000), 1);
    unsigned long long seq;
    long long ver;
    split_id(ev.id, &seq, &ver);
    char first[64];
    snprintf(first, sizeof(first), "%s", ev.id);
    free(ev.data);
    ssec_close(&a);

    /* resumed at the current version: heartbeats, no event */
    struct ssec same;
    open_events(&same, &watcher, id, NULL, first);
    int64_t deadline = simh_ms() + 20000;
    while (same.comments < 2) {
        cr_assert_eq(ssec_next(&same, &ev, 500), -1, "no event while the job is unchanged");
        cr_assert(simh_ms() < deadline, "heartbeats every second (%ld seen)", same.comments);
    }

    /* resumed at another version: the current state at once, ids going on */
    struct ssec other;
    char old[64];
    snprintf(old, sizeof(old), "41-%lld", ver + 12345);
    open_events(&other, &watcher, id, NULL, old);
    cr_assert_eq(ssec_next(&other, &ev, 10000), 1);
    cr_assert_str_eq(ev.event, "progress");
    char want[64];
    snprintf(want, sizeof(want), "42-%lld", ver);
    cr_assert_str_eq(ev.id, want);
    free(ev.data);

    /* a malformed id counts as none */
    struct ssec junk;
    open_events(&junk, &watcher, id, NULL, "not-an-id");
    cr_assert_eq(ssec_next(&junk, &ev, 10000), 1);
    cr_assert_str_eq(ev.id, first);
    free(ev.data);
    ssec_close(&junk);

    /* a change reaches the waiting streams: cancelled, so done, then the end */
    char path[96];
    snprintf(path, sizeof(path), "/v1/jobs/%s/cancel", id);
    json_object_put(api_on(&watcher, "POST", path, NULL, NULL, 202));
    cr_assert_eq(ssec_next(&same, &ev, 10000), 1);
    cr_assert_str_eq(ev.event, "done");
    unsigned long long s2;
    long long v2;
    split_id(ev.id, &s2, &v2);
    cr_assert_eq(s2, seq + 1);
    cr_assert_neq(v2, ver);
    json_object *o = json_tokener_parse(ev.data);
    cr_assert_str_eq(simh_str(o, "state"), "cancelled");
    json_object_put(o);
    char done_id[64];
    snprintf(done_id, sizeof(done_id), "%s", ev.id);
    free(ev.data);
    cr_assert_eq(ssec_next(&same, &ev, 10000), 0, "the body ends after done");
    cr_assert_eq(ssec_next(&other, &ev, 10000), 1);
    cr_assert_str_eq(ev.event, "done");
    free(ev.data);
    ssec_close(&same);
    ssec_close(&other);

    /* resumed after done: done again at once (the client missed nothing) */
    struct ssec after;
    open_events(&after, &watcher, id, NULL, done_id);
    cr_assert_eq(ssec_next(&after, &ev, 10000), 1);
    cr_assert_str_eq(ev.event, "done");
    snprintf(want, sizeof(want), "%llu-%lld", s2 + 1, v2);
    cr_assert_str_eq(ev.id, want);
    free(ev.data);
    cr_assert_eq(ssec_next(&after, &ev, 10000), 0);
    ssec_close(&after);
    free(id);
}

static void expect_problem(struct ssec *c, int status, const char *code)
{
    cr_assert_eq(c->status, status, "%s", c->head);
    char v[128];
    cr_assert(ssec_header(c, "Content-Type", v, sizeof(v)) &&
                  strcmp(v, "application/problem+json") == 0,
              "%s", c->head);
    const char *body = ssec_body(c, 10000);
    json_object *o = json_tokener_parse(body);
    cr_assert(o, "%s", body);
    cr_assert_str_eq(simh_str(o, "code"), code);
    json_object_put(o);
}

Test(events, another_keys_job_is_not_found)
{
    char *id = submit(&watcher, 1);
    char other[64];
    svch_new_key(&watcher, "other", other);
    struct ssec c;
    open_events(&c, &watcher, id, other, NULL);
    expect_problem(&c, 404, "job_not_found");
    ssec_close(&c);
    open_events(&c, &watcher, "00000000-0000-4000-8000-000000000000", NULL, NULL);
    expect_problem(&c, 404, "job_not_found");
    ssec_close(&c);
    char path[128];
    snprintf(path, sizeof(path), "/v1/jobs/%s/events", id);
    cr_assert(ssec_open(&c, watcher.port, path, NULL, NULL, 10000));
    cr_assert_eq(c.status, 401, "%s", c.head);
    ssec_close(&c);
    snprintf(path, sizeof(path), "/v1/jobs/%s/batches", id);
    json_object_put(api_on(&watcher, "GET", path, other, NULL, 404));
    json_object *o = api_on(&watcher, "GET", path, NULL, NULL, 200);
    cr_assert_eq(json_object_array_length(simh_get(o, "batches")), 0, "no batch yet");
    json_object_put(o);
    free(id);
}

static void start_limited(void)
{
    static const char *const f[] = {"--sse-max-clients=2", NULL};
    svch_stop(&watcher); /* Criterion ran the suite's setup first */
    start_watcher(f);
}

Test(events, client_limit_answers_503_and_frees_places, .init = start_limited)
{
    char *id = submit(&watcher, 1);
    struct ssec a, b, c;
    open_events(&a, &watcher, id, NULL, NULL);
    open_events(&b, &watcher, id, NULL, NULL);
    cr_assert_eq(a.status, 200);
    cr_assert_eq(b.status, 200);
    open_events(&c, &watcher, id, NULL, NULL);
    expect_problem(&c, 503, "too_many_streams");
    char v[32];
    cr_assert(ssec_header(&c, "Retry-After", v, sizeof(v)), "%s", c.head);
    ssec_close(&c);
    /* a client that goes away gives its place back (seen at the next heartbeat) */
    ssec_close(&a);
    int64_t deadline = simh_ms() + 20000;
    for (;;) {
        open_events(&c, &watcher, id, NULL, NULL);
        if (c.status == 200)
            break;
        expect_problem(&c, 503, "too_many_streams");
        ssec_close(&c);
        cr_assert(simh_ms() < deadline, "the place of a closed stream was never freed");
        struct ssec_event ev;
        if (ssec_next(&b, &ev, 200) == 1) /* a pause that also reads b's heartbeats */
            free(ev.data);
    }
    ssec_close(&b);
    ssec_close(&c);
    free(id);
}

static void start_one_thread(void)
{
    static const char *const f[] = {"--http-threads=1", "--shutdown-deadline-ms=10000",
                                    "--sse-heartbeat-s=60", NULL};
    svch_stop(&watcher); /* Criterion ran the suite's setup first */
    start_watcher(f);
}

/* Streams hold no server thread: one thread serves three open streams and
 * other requests; SIGTERM ends the streams at once (the drain does not wait
 * for them until its deadline, 6 s here). */
Test(events, streams_hold_no_thread_and_end_at_shutdown, .init = start_one_thread)
{
    char *id = submit(&watcher, 1);
    struct ssec c[3];
    struct ssec_event ev;
    for (int i = 0; i < 3; i++) {
        open_events(&c[i], &watcher, id, NULL, NULL);
        cr_assert_eq(ssec_next(&c[i], &ev, 10000), 1);
        free(ev.data);
    }
    char path[96];
    snprintf(path, sizeof(path), "/v1/jobs/%s", id);
    json_object_put(api_on(&watcher, "GET", path, NULL, NULL, 200));
    json_object_put(api_on(&watcher, "GET", "/v1/jobs", NULL, NULL, 200));
    int64_t t0 = simh_ms();
    kill(watcher.pid, SIGTERM);
    for (int i = 0; i < 3; i++) {
        int r;
        while ((r = ssec_next(&c[i], &ev, 10000)) == 1)
            free(ev.data);
        cr_assert_eq(r, 0, "stream %d ends when the server shuts down", i);
        ssec_close(&c[i]);
    }
    int64_t took = simh_ms() - t0;
    cr_assert_lt(took, 3000,
                 "streams ended %lld ms after SIGTERM: at once, not at the drain's "
                 "deadline",
                 (long long)took);
    int st = 0;
    cr_assert_eq(waitpid(watcher.pid, &st, 0), watcher.pid);
    watcher.pid = 0;
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %d", st);
    free(id);
}

Test(events, dashboard_files)
{
    struct simh_resp r;
    char url[256], v[512];
    snprintf(url, sizeof(url), "%s/", watcher.base);
    simh_req_url(&r, "GET", url, NULL, 0, NULL);
    cr_assert_eq(r.status, 200);
    cr_assert(simh_header(&r, "Content-Type", v, sizeof(v)) && strncmp(v, "text/html", 9) == 0);
    cr_assert(simh_header(&r, "Content-Security-Policy", v, sizeof(v)));
    cr_assert(strstr(v, "default-src 'none'") && strstr(v, "script-src 'self'") &&
                  !strstr(v, "unsafe"),
              "%s", v);
    cr_assert(strstr(r.body, "ui/app.js") && !strstr(r.body, "<script>") &&
                  !strstr(r.body, "style="),
              "no inline script or style");
    char etag[64];
    cr_assert(simh_header(&r, "ETag", etag, sizeof(etag)));
    simh_resp_free(&r);
    char inm[128];
    snprintf(inm, sizeof(inm), "If-None-Match: %s", etag);
    const char *hs[2] = {inm, NULL};
    simh_req_url(&r, "GET", url, NULL, 0, hs);
    cr_assert_eq(r.status, 304);
    simh_resp_free(&r);
    static const char *const files[][2] = {{"app.js", "text/javascript"}, {"app.css", "text/css"}};
    for (int i = 0; i < 2; i++) {
        snprintf(url, sizeof(url), "%s/ui/%s", watcher.base, files[i][0]);
        simh_req_url(&r, "GET", url, NULL, 0, NULL);
        cr_assert_eq(r.status, 200, "%s", url);
        cr_assert(simh_header(&r, "Content-Type", v, sizeof(v)) &&
                      strncmp(v, files[i][1], strlen(files[i][1])) == 0,
                  "%s: %s", url, v);
        cr_assert_gt(r.len, 1000);
        simh_resp_free(&r);
    }
    snprintf(url, sizeof(url), "%s/ui/nothing.js", watcher.base);
    simh_req_url(&r, "GET", url, NULL, 0, NULL);
    cr_assert_eq(r.status, 404);
    simh_resp_free(&r);
}
