/*
 * test_limits.c: per-key limits and revocation against a real `embedd serve`
 * and database: requests per second (429 rate_limited with Retry-After,
 * before the body is read; the setting and a key's own override), the most
 * chunks a key may have pending (429 too_many_pending_chunks stating the
 * limit and the count, for every form of POST /v1/jobs, and exactly the
 * limit when jobs race), each refusal storing nothing; and a key revoked
 * through the CLI refused within --key-cache-ms.
 */
#include "harness.h"
#include "svch.h"

#include "util/buf.h"

#include <criterion/criterion.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct svch svc;

#define CACHE_MS 300

static void start_with(const char *extra)
{
    static char cache[64];
    snprintf(cache, sizeof(cache), "--key-cache-ms=%d", CACHE_MS);
    const char *flags[] = {cache, extra, NULL};
    svch_start(&svc, flags);
}

static void start_plain(void)
{
    start_with(NULL);
}

static void start_rps(void)
{
    start_with("--key-rps=1"); /* burst: as many as rps, one */
}

static void start_pending(void)
{
    start_with("--key-max-pending-chunks=5");
}

static void start_revoke(void)
{
    svch_start(&svc, (const char *const[]){"--key-cache-ms=1000", NULL});
}

static void stop(void)
{
    svch_stop(&svc);
}

TestSuite(limits, .fini = stop, .timeout = 300);

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void call_ct(struct simh_resp *r, const char *method, const char *path, const char *key,
                    const char *ct, const char *body, const char *extra_header)
{
    char url[256], auth[128], ctype[96];
    snprintf(url, sizeof(url), "%s%s", svc.base, path);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key ? key : svc.key);
    snprintf(ctype, sizeof(ctype), "Content-Type: %s", ct ? ct : "application/json");
    const char *hs[4] = {auth, body ? ctype : extra_header, body ? extra_header : NULL, NULL};
    simh_req_url(r, method, url, body, body ? strlen(body) : 0, hs);
    cr_assert_eq(r->curl_code, 0, "%s %s: transfer failed", method, path);
}

static void call(struct simh_resp *r, const char *method, const char *path, const char *key,
                 const char *body)
{
    call_ct(r, method, path, key, NULL, body, NULL);
}

/* The id of the key named name. */
static long long key_id(const char *name)
{
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT id FROM api_keys WHERE name = '%s'", name);
    return dbh_scalar(&svc.db, sql);
}

/* embedd [setting] keys <args...> against the test's database; returns the exit status. */
static int keys_cli_with(const char *setting, const char *const *args, char **out)
{
    char url[600], set[128];
    snprintf(url, sizeof(url), "--database-url=%s", svc.db.url);
    snprintf(set, sizeof(set), "%s", setting ? setting : "--log-level=info");
    static char copies[12][128];
    char *argv[17] = {dbh_bin("EMBEDD_BIN"), url, set, "keys"};
    int n = 4;
    for (int i = 0; args[i] && i < 12; i++) {
        snprintf(copies[i], sizeof(copies[i]), "%s", args[i]);
        argv[n++] = copies[i];
    }
    argv[n] = NULL;
    char *e = NULL;
    int rc = dbh_run(argv, out, &e);
    if (rc != 0)
        fprintf(stderr, "embedd keys: %s\n", e ? e : "");
    free(e);
    return rc;
}

static int keys_cli(const char *const *args, char **out)
{
    return keys_cli_with(NULL, args, out);
}

static long long stored(void)
{
    return dbh_scalar(&svc.db,
                      "SELECT (SELECT count(*) FROM jobs) + (SELECT count(*) FROM documents)"
                      " + (SELECT count(*) FROM chunks) + (SELECT count(*) FROM idempotency_keys)");
}

static void assert_problem(const struct simh_resp *r, const char *code)
{
    char ct[128];
    cr_assert(simh_header(r, "Content-Type", ct, sizeof(ct)));
    cr_assert_str_eq(ct, "application/problem+json");
    json_object *o = simh_json(r);
    cr_assert_str_eq(simh_str(o, "code"), code, "%s", r->body);
    cr_assert_eq(json_object_get_int(simh_get(o, "status")), 429);
    json_object_put(o);
}

/* ---- a revoked key ---- */

/* A key revoked through the CLI while the service runs (and while the key is
 * in its verified-key cache) is refused with 401 within --key-cache-ms, and
 * stays refused. */
Test(limits, revoked_key_refused_within_key_cache_time, .init = start_revoke)
{
    const int64_t cache_ms = 1000, margin_ms = 3000;
    struct simh_resp r;
    call(&r, "GET", "/v1/jobs", NULL, NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    simh_resp_free(&r);
    char id[24];
    snprintf(id, sizeof(id), "%lld", key_id("test"));
    char *out = NULL;
    cr_assert_eq(keys_cli((const char *const[]){"revoke", id, NULL}, &out), 0);
    free(out);
    int64_t revoked = simh_ms(); /* committed: the CLI has exited */
    int64_t deadline = revoked + cache_ms + margin_ms, refused_at = 0;
    while (!refused_at && simh_ms() < deadline) {
        call(&r, "GET", "/v1/jobs", NULL, NULL);
        cr_assert(r.status == 200 || r.status == 401, "%ld %s", r.status, r.body);
        if (r.status == 401)
            refused_at = simh_ms();
        simh_resp_free(&r);
        if (!refused_at)
            nap_ms(20);
    }
    cr_assert(refused_at,
              "the revoked key was still accepted %lld ms after its revocation"
              " (--key-cache-ms=%lld)",
              (long long)(simh_ms() - revoked), (long long)cache_ms);
    fprintf(stderr, "revoked key refused %lld ms after the revocation (key cache %lld ms)\n",
            (long long)(refused_at - revoked), (long long)cache_ms);
    for (int i = 0; i < 5; i++) {
        call(&r, "GET", "/v1/jobs", NULL, NULL);
        cr_assert_eq(r.status, 401, "a revoked key stays refused: %s", r.body);
        char www[128];
        cr_assert(simh_header(&r, "WWW-Authenticate", www, sizeof(www)));
        simh_resp_free(&r);
    }
    /* nor can it create anything */
    long long before = stored();
    call(&r, "POST", "/v1/jobs", NULL, "{\"documents\":[{\"id\":\"a\",\"text\":\"hello\"}]}");
    cr_assert_eq(r.status, 401, "%s", r.body);
    simh_resp_free(&r);
    cr_assert_eq(stored(), before);
}

/* ---- requests per second ---- */

static const char one_doc[] = "{\"documents\":[{\"id\":\"a\",\"text\":\"hello there\"}]}";

/* Retry-After of a 429: whole seconds, at least 1, at most what one token takes. */
static long retry_after(const struct simh_resp *r, long most)
{
    char ra[32];
    cr_assert(simh_header(r, "Retry-After", ra, sizeof(ra)), "429 without Retry-After");
    char *end;
    long v = strtol(ra, &end, 10);
    cr_assert(end != ra && *end == '\0', "Retry-After is not whole seconds: \"%s\"", ra);
    cr_assert(v >= 1 && v <= most, "Retry-After %ld outside [1, %ld]", v, most);
    return v;
}

/* Under --key-rps=1 a key gets 429 rate_limited with Retry-After; a refused
 * POST /v1/jobs (JSON or NDJSON) stores nothing; after Retry-After seconds
 * the key is let through again. */
Test(limits, rps_refused_with_retry_after_storing_nothing, .init = start_rps)
{
    int accepted = 0, refused_posts = 0, refused_nd = 0;
    long ra = 0;
    int64_t deadline = simh_ms() + 60000;
    struct simh_resp r;
    for (int i = 0; (refused_posts < 3 || refused_nd < 2) && simh_ms() < deadline; i++) {
        long long before = stored();
        if (i % 3 == 2)
            call_ct(&r, "POST", "/v1/jobs", NULL, "application/x-ndjson",
                    "{\"display_name\":\"nd\"}\n{\"id\":\"n\",\"text\":\"hello\"}\n", NULL);
        else
            call(&r, "POST", "/v1/jobs", NULL, one_doc);
        if (r.status == 202) {
            accepted++;
        } else {
            cr_assert_eq(r.status, 429, "%s", r.body);
            assert_problem(&r, "rate_limited");
            ra = retry_after(&r, 1);
            json_object *o = simh_json(&r);
            cr_assert_eq(json_object_get_int(simh_get(o, "limit_rps")), 1, "%s", r.body);
            cr_assert_eq(json_object_get_int(simh_get(o, "burst")), 1, "%s", r.body);
            json_object_put(o);
            cr_assert_eq(stored(), before, "a refused job stored something");
            if (i % 3 == 2)
                refused_nd++;
            else
                refused_posts++;
        }
        simh_resp_free(&r);
    }
    cr_assert(refused_posts >= 3 && refused_nd >= 2, "no 429 at 1 request a second");
    cr_assert_eq(dbh_scalar(&svc.db, "SELECT count(*) FROM jobs"), accepted,
                 "exactly the accepted jobs are stored");
    /* Retry-After is honest: waiting it out lets the key through (polling
     * costs nothing while refused: only admitted requests take a token) */
    nap_ms(ra * 1000);
    deadline = simh_ms() + 5000;
    long status = 0;
    while (status != 200 && simh_ms() < deadline) {
        call(&r, "GET", "/v1/jobs", NULL, NULL);
        status = r.status;
        simh_resp_free(&r);
        if (status != 200)
            nap_ms(50);
    }
    cr_assert_eq(status, 200, "still refused after Retry-After");
}

/* The line of `keys list` output that ends with the key's name (a copy). */
static char *line_of(const char *out, const char *name)
{
    for (const char *p = out; *p;) {
        size_t n = strcspn(p, "\n");
        size_t k = strlen(name);
        if (n > k && p[n - k - 1] == ' ' && strncmp(p + n - k, name, k) == 0)
            return strndup(p, n);
        p += n + (p[n] == '\n');
    }
    cr_assert_fail("no line for key \"%s\" in:\n%s", name, out);
    return NULL;
}

/* A key's own limit overrides the setting: 0 (none) frees a key from
 * --key-rps; `keys list` shows both; "default" goes back to the setting. */
Test(limits, rps_override_per_key, .init = start_rps)
{
    char other[64], id[24], *out = NULL;
    svch_new_key(&svc, "free", other);
    snprintf(id, sizeof(id), "%lld", key_id("free"));
    cr_assert_eq(keys_cli((const char *const[]){"limits", id, "--rps", "0", NULL}, &out), 0);
    free(out);
    /* the settings it shows are its own: give it the service's */
    cr_assert_eq(keys_cli_with("--key-rps=1", (const char *const[]){"list", NULL}, &out), 0);
    cr_assert(strstr(out, "RPS") && strstr(out, "MAX PENDING"), "%s", out);
    /* the test key shows the setting's, "(1)", the free key its own, "none" */
    char *lt = line_of(out, "test"), *lf = line_of(out, "free");
    cr_assert(strstr(lt, " (1) "), "%s", out);
    cr_assert(strstr(lf, " none ") && strstr(lf, " (none) "), "%s", out);
    free(lt);
    free(lf);
    free(out);
    struct simh_resp r;
    for (int i = 0; i < 20; i++) {
        call(&r, "GET", "/v1/jobs", other, NULL);
        cr_assert_eq(r.status, 200, "request %d of a key without a limit: %s", i, r.body);
        simh_resp_free(&r);
    }
    /* the other key is limited meanwhile */
    int refused = 0;
    for (int i = 0; i < 20 && !refused; i++) {
        call(&r, "GET", "/v1/jobs", NULL, NULL);
        refused = r.status == 429;
        simh_resp_free(&r);
    }
    cr_assert(refused);
    /* back to the setting: limited again once the key cache forgets */
    cr_assert_eq(keys_cli((const char *const[]){"limits", id, "--rps=default", NULL}, &out), 0);
    free(out);
    int64_t deadline = simh_ms() + CACHE_MS + 10000;
    refused = 0;
    while (!refused && simh_ms() < deadline) {
        call(&r, "GET", "/v1/jobs", other, NULL);
        refused = r.status == 429;
        if (refused)
            (void)retry_after(&r, 1);
        simh_resp_free(&r);
    }
    cr_assert(refused, "the setting applies again");
}

/* ---- pending chunks ---- */

/* A JSON job of n one-chunk documents named <tag><i>. */
static char *job_body(const char *tag, int n)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    cr_assert(buf_puts(&b, "{\"documents\":["));
    for (int i = 0; i < n; i++)
        cr_assert(buf_printf(&b, "%s{\"id\":\"%s%d\",\"text\":\"short text %s %d\"}", i ? "," : "",
                             tag, i, tag, i));
    cr_assert(buf_puts(&b, "]}"));
    return b.data;
}

/* The same job as NDJSON, and as JSON with its options after the documents. */
static char *job_ndjson(const char *tag, int n)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    cr_assert(buf_puts(&b, "{\"display_name\":\"nd\"}\n"));
    for (int i = 0; i < n; i++)
        cr_assert(
            buf_printf(&b, "{\"id\":\"%s%d\",\"text\":\"short text %s %d\"}\n", tag, i, tag, i));
    return b.data;
}

static char *job_options_after(const char *tag, int n)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    cr_assert(buf_puts(&b, "{\"documents\":["));
    for (int i = 0; i < n; i++)
        cr_assert(buf_printf(&b, "%s{\"id\":\"%s%d\",\"text\":\"short text %s %d\"}", i ? "," : "",
                             tag, i, tag, i));
    cr_assert(buf_puts(&b, "],\"display_name\":\"after\",\"priority\":2}"));
    return b.data;
}

static long long pending_chunks(void)
{
    return dbh_scalar(&svc.db, "SELECT coalesce(sum(chunks_pending + chunks_in_flight), 0)"
                               " FROM jobs WHERE state IN ('pending', 'running')");
}

/* A 429 too_many_pending_chunks that states the limit, the pending count and
 * (when the job was read) what the job would add. */
static void expect_pending_refusal(struct simh_resp *r, long long limit, long long pending,
                                   long long adding)
{
    cr_assert_eq(r->status, 429, "%s", r->body);
    assert_problem(r, "too_many_pending_chunks");
    json_object *o = simh_json(r);
    cr_assert_eq(json_object_get_int64(simh_get(o, "limit")), limit, "%s", r->body);
    cr_assert_eq(json_object_get_int64(simh_get(o, "pending")), pending, "%s", r->body);
    if (adding)
        cr_assert_eq(json_object_get_int64(simh_get(o, "job_chunks")), adding, "%s", r->body);
    char want[64];
    snprintf(want, sizeof(want), "at most %lld chunks", limit);
    cr_assert(strstr(simh_str(o, "detail"), want), "the detail states the limit: %s", r->body);
    json_object_put(o);
}

/* A key's --max-pending-chunks (set through the CLI): jobs up to it are
 * accepted; one that would pass it is refused in every form of the request
 * (JSON, NDJSON, options after the documents, with an Idempotency-Key),
 * storing nothing; at the limit a job is refused before its body is read;
 * cancelling a job makes room. No workers run: chunks stay pending. */
Test(limits, pending_chunks_refused_storing_nothing, .init = start_plain)
{
    char id[24], *out = NULL;
    snprintf(id, sizeof(id), "%lld", key_id("test"));
    cr_assert_eq(
        keys_cli((const char *const[]){"limits", id, "--max-pending-chunks", "4", NULL}, &out), 0);
    free(out);
    struct simh_resp r;
    char *b = job_body("a", 3);
    call(&r, "POST", "/v1/jobs", NULL, b);
    cr_assert_eq(r.status, 202, "%s", r.body);
    json_object *first = simh_json(&r);
    char first_id[64];
    snprintf(first_id, sizeof(first_id), "%s", simh_str(first, "id"));
    json_object_put(first);
    simh_resp_free(&r);
    free(b);
    cr_assert_eq(pending_chunks(), 3);
    long long before = stored();

    /* 3 + 2 > 4, in each form */
    b = job_body("b", 2);
    call(&r, "POST", "/v1/jobs", NULL, b);
    expect_pending_refusal(&r, 4, 3, 2);
    simh_resp_free(&r);
    call_ct(&r, "POST", "/v1/jobs", NULL, "application/json", b, "Idempotency-Key: k-1");
    expect_pending_refusal(&r, 4, 3, 2);
    simh_resp_free(&r);
    free(b);
    b = job_ndjson("c", 2);
    call_ct(&r, "POST", "/v1/jobs", NULL, "application/x-ndjson", b, NULL);
    expect_pending_refusal(&r, 4, 3, 2);
    simh_resp_free(&r);
    free(b);
    b = job_options_after("d", 2);
    call(&r, "POST", "/v1/jobs", NULL, b);
    expect_pending_refusal(&r, 4, 3, 2);
    simh_resp_free(&r);
    free(b);
    cr_assert_eq(stored(), before, "the refused jobs stored nothing");

    /* exactly up to the limit is accepted */
    b = job_ndjson("e", 1);
    call_ct(&r, "POST", "/v1/jobs", NULL, "application/x-ndjson", b, NULL);
    cr_assert_eq(r.status, 202, "%s", r.body);
    simh_resp_free(&r);
    free(b);
    cr_assert_eq(pending_chunks(), 4);
    before = stored();
    /* at the limit: refused before the body is read (no job_chunks) */
    b = job_body("f", 1);
    call(&r, "POST", "/v1/jobs", NULL, b);
    expect_pending_refusal(&r, 4, 4, 0);
    simh_resp_free(&r);
    cr_assert_eq(stored(), before);
    /* the same key's Idempotency-Key retry skips the early check; the check
     * at the commit refuses it */
    call_ct(&r, "POST", "/v1/jobs", NULL, "application/json", b, "Idempotency-Key: k-2");
    expect_pending_refusal(&r, 4, 4, 1);
    simh_resp_free(&r);
    cr_assert_eq(stored(), before);

    /* cancelling the first job makes room */
    char path[96];
    snprintf(path, sizeof(path), "/v1/jobs/%s/cancel", first_id);
    call(&r, "POST", path, NULL, NULL);
    cr_assert_eq(r.status, 202, "%s", r.body);
    simh_resp_free(&r);
    call(&r, "POST", "/v1/jobs", NULL, b);
    cr_assert_eq(r.status, 202, "%s", r.body);
    simh_resp_free(&r);
    free(b);

    /* another key has its own count */
    char other[64];
    svch_new_key(&svc, "other", other);
    b = job_body("g", 4);
    call(&r, "POST", "/v1/jobs", other, b);
    cr_assert_eq(r.status, 202, "no limit for a key without one: %s", r.body);
    simh_resp_free(&r);
    free(b);
}

struct racer {
    char body[128];
    long status;
};

static void *race_post(void *arg)
{
    struct racer *a = arg;
    struct simh_resp r;
    call(&r, "POST", "/v1/jobs", NULL, a->body);
    a->status = r.status;
    simh_resp_free(&r);
    return NULL;
}

/* --key-max-pending-chunks=5 and 12 one-chunk jobs at once: exactly 5 are
 * accepted (the check at the commit is serialised per key), 7 get 429. */
Test(limits, pending_chunks_exact_under_races, .init = start_pending)
{
    enum { N = 12 };
    struct racer a[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        snprintf(a[i].body, sizeof(a[i].body),
                 "{\"documents\":[{\"id\":\"x\",\"text\":\"racing text %d\"}]}", i);
        cr_assert_eq(pthread_create(&t[i], NULL, race_post, &a[i]), 0);
    }
    int ok = 0, refused = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        cr_assert(a[i].status == 202 || a[i].status == 429, "status %ld", a[i].status);
        ok += a[i].status == 202;
        refused += a[i].status == 429;
    }
    cr_assert_eq(ok, 5, "%d accepted, %d refused", ok, refused);
    cr_assert_eq(pending_chunks(), 5);
    cr_assert_eq(dbh_scalar(&svc.db, "SELECT count(*) FROM jobs"), 5);
    cr_assert_eq(dbh_scalar(&svc.db, "SELECT count(*) FROM chunks"), 5);
}
