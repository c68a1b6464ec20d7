/*
 * test_webhooks.c: signed webhooks against the real service: embedd serve
 * and gemini-sim, with a receiver in this process (hookrecv.h) that checks
 * every signature as the Standard Webhooks specification says. A delivery
 * answered 500 comes again with the same webhook-id; the outbox row written
 * with the state change survives a kill -9 and is delivered after the
 * restart; refused addresses are refused at submission or at delivery
 * (never called); job.degraded fires once when items fail; the key's
 * default URL, cancellation and secret rotation.
 */
#include "harness.h"
#include "hookrecv.h"
#include "svch.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct simh sim;
static struct svch svc;
static struct hookrecv *recv_;

static void start(const char *const *sim_flags, const char *const *svc_extra)
{
    recv_ = hookrecv_start();
    simh_start(&sim, sim_flags);
    static char flags[8][256];
    const char *argv[32];
    int n = 0;
    snprintf(flags[n], sizeof(flags[n]), "--gemini-base-url=%s", sim.base);
    argv[n] = flags[n], n++;
    snprintf(flags[n], sizeof(flags[n]), "--gemini-api-key=%s", SIMH_KEY);
    argv[n] = flags[n], n++;
    static const char *const fixed[] = {"--poll-min-ms=20",
                                        "--poll-max-ms=200",
                                        "--workers=2",
                                        "--sync-max-texts=0",
                                        "--webhook-poll-ms=50",
                                        "--webhook-backoff-base-ms=100",
                                        "--webhook-backoff-max-ms=400",
                                        "--webhook-timeout-ms=3000"};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        argv[n++] = fixed[i];
    for (int i = 0; svc_extra && svc_extra[i]; i++)
        argv[n++] = svc_extra[i];
    argv[n] = NULL;
    svch_start(&svc, argv);
}

static void stop_all(void)
{
    svch_stop(&svc);
    simh_stop(&sim);
    hookrecv_stop(recv_);
    recv_ = NULL;
}

TestSuite(webhooks, .fini = stop_all, .timeout = 120);

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* An API key made through the CLI: the key (line 1) and its webhook secret (line 2). */
static void new_key(const char *name, char key[64], char secret[128])
{
    char url[600], nm[64];
    snprintf(url, sizeof(url), "--database-url=%s", svc.db.url);
    snprintf(nm, sizeof(nm), "%s", name);
    char *argv[] = {dbh_bin("EMBEDD_BIN"), url, "keys", "create", "--name", nm, NULL};
    char *o = NULL, *e = NULL;
    int rc = dbh_run(argv, &o, &e);
    cr_assert_eq(rc, 0, "keys create failed: %s", e);
    char *nl = strchr(o, '\n');
    cr_assert(nl && strncmp(nl + 1, "whsec_", 6) == 0, "keys create printed %s", o);
    snprintf(key, 64, "%.*s", (int)(nl - o), o);
    snprintf(secret, 128, "%.*s", (int)strcspn(nl + 1, "\n"), nl + 1);
    cr_assert(!strstr(e, secret + 6), "the secret went to the log too");
    free(o);
    free(e);
}

/* Run `embedd keys ARGS...` (NULL-terminated); its stdout (caller frees). */
static char *keys_cli(const char *a1, const char *a2, const char *a3)
{
    char url[600], x1[64], x2[64], x3[600];
    snprintf(url, sizeof(url), "--database-url=%s", svc.db.url);
    snprintf(x1, sizeof(x1), "%s", a1);
    snprintf(x2, sizeof(x2), "%s", a2);
    snprintf(x3, sizeof(x3), "%s", a3 ? a3 : "");
    char priv[] = "--webhook-allow-private=1";
    char *argv[] = {dbh_bin("EMBEDD_BIN"), url, priv, "keys", x1, x2, a3 ? x3 : NULL, NULL};
    char *o = NULL, *e = NULL;
    int rc = dbh_run(argv, &o, &e);
    cr_assert_eq(rc, 0, "keys %s failed: %s", a1, e);
    free(e);
    return o;
}

static long long key_id(const char *key)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT id FROM api_keys WHERE prefix = '%.12s'", key);
    return dbh_scalar(&svc.db, sql);
}

static json_object *api(const char *key, const char *method, const char *path, const char *body,
                        long want)
{
    char url[256], auth[128];
    snprintf(url, sizeof(url), "%s%s", svc.base, path);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
    const char *hs[3] = {auth, "Content-Type: application/json", NULL};
    struct simh_resp r;
    simh_req_url(&r, method, url, body, body ? strlen(body) : 0, hs);
    cr_assert_eq(r.status, want, "%s %s: %ld: %.400s", method, path, r.status, r.body);
    json_object *o = simh_json(&r);
    simh_resp_free(&r);
    return o;
}

/* POST a job of docs documents (every other one holding marker, when given)
 * with extra top-level members; returns its id (caller frees). */
static char *submit(const char *key, int docs, const char *marker, const char *extra)
{
    size_t cap = 256 + (size_t)docs * 160;
    char *body = malloc(cap);
    cr_assert_not_null(body);
    int n = snprintf(body, cap, "{%s\"documents\":[", extra);
    for (int i = 0; i < docs; i++)
        n +=
            snprintf(body + n, cap - (size_t)n, "%s{\"id\":\"d%d\",\"text\":\"text number %d %s\"}",
                     i ? "," : "", i, i, marker && i % 2 == 0 ? marker : "");
    snprintf(body + n, cap - (size_t)n, "]}");
    json_object *o = api(key, "POST", "/v1/jobs", body, 202);
    char *id = strdup(simh_str(o, "id"));
    json_object_put(o);
    free(body);
    return id;
}

/* The job's deliveries once every one of them is no longer pending (or has
 * at least min_attempts attempts, when min_attempts > 0). */
static json_object *deliveries(const char *key, const char *job, size_t want, int min_attempts)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/jobs/%s/webhooks", job);
    int64_t deadline = simh_ms() + 30000;
    for (;;) {
        json_object *o = api(key, "GET", path, NULL, 200);
        json_object *ds = simh_get(o, "deliveries");
        bool done = json_object_array_length(ds) >= want;
        for (size_t i = 0; done && i < json_object_array_length(ds); i++) {
            json_object *d = json_object_array_get_idx(ds, i);
            int tries = (int)json_object_array_length(simh_get(d, "attempts"));
            done = min_attempts > 0 ? tries >= min_attempts
                                    : strcmp(simh_str(d, "state"), "pending") != 0;
        }
        if (done)
            return o;
        cr_assert(simh_ms() < deadline, "deliveries of job %s: %s", job,
                  json_object_to_json_string(o));
        json_object_put(o);
        nap_ms(30);
    }
}

/* The receiver's requests whose body has "type":type and the job's id. */
static int count_events(const char *job, const char *type, bool *all_valid, const char *secret)
{
    int k = 0;
    char t[64];
    snprintf(t, sizeof(t), "\"type\":\"%s\"", type);
    for (size_t i = 0; i < hookrecv_count(recv_); i++) {
        const struct hook_req *r = hookrecv_get(recv_, i);
        if (strstr(r->body, job) && strstr(r->body, t)) {
            k++;
            if (all_valid && !hookrecv_verify(secret, r))
                *all_valid = false;
        }
    }
    return k;
}

static void wait_event(const char *job, const char *type, int n)
{
    int64_t deadline = simh_ms() + 30000;
    while (count_events(job, type, NULL, NULL) < n) {
        cr_assert(simh_ms() < deadline, "no %s webhook for job %s (%zu requests received)", type,
                  job, hookrecv_count(recv_));
        nap_ms(20);
    }
}

/* The service's log so far (caller frees). */
static char *service_log(void)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/log", svc.dir);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    char *buf = calloc(1, 1 << 20);
    cr_assert_not_null(buf);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

Test(webhooks, signed_redelivered_after_500_and_listed)
{
    static const char *const sim_f[] = {"--pending-ms=20", "--running-ms=30", NULL};
    static const char *const svc_f[] = {"--webhook-allow-private=1", NULL};
    start(sim_f, svc_f);
    char key[64], secret[128], extra[256];
    new_key("hooks", key, secret);
    hookrecv_fail_next(recv_, 1, 500);
    snprintf(extra, sizeof(extra),
             "\"display_name\":\"hooked\",\"webhook_url\":\"http://127.0.0.1:%d/hook?token=t1\",",
             hookrecv_port(recv_));
    char *job = submit(key, 3, NULL, extra);
    cr_assert(hookrecv_wait(recv_, 2, 30000), "no redelivery after a 500");
    const struct hook_req *a = hookrecv_get(recv_, 0), *b = hookrecv_get(recv_, 1);
    cr_assert_eq(a->answered, 500);
    cr_assert_eq(b->answered, 200);
    cr_assert_str_eq(a->id, b->id, "a redelivery keeps its webhook-id");
    cr_assert_str_eq(a->path, "/hook");
    cr_assert(strncmp(a->id, "msg_", 4) == 0 && !strchr(a->id, '.'));
    cr_assert(hookrecv_verify(secret, a), "signature of the first attempt: %s", a->signature);
    cr_assert(hookrecv_verify(secret, b), "signature of the redelivery: %s", b->signature);
    cr_assert_str_eq(a->body, b->body, "a redelivery sends the same body");
    /* a wrong secret does not verify */
    cr_assert(!hookrecv_verify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", b));
    /* the body: {type, timestamp, data} */
    struct simh_resp fake = {.body = b->body, .len = b->len};
    json_object *ev = simh_json(&fake);
    cr_assert_str_eq(simh_str(ev, "type"), "job.succeeded");
    cr_assert_not_null(simh_str(ev, "timestamp"));
    cr_assert_str_eq(simh_str(ev, "data.job_id"), job);
    cr_assert_str_eq(simh_str(ev, "data.state"), "succeeded");
    cr_assert_str_eq(simh_str(ev, "data.display_name"), "hooked");
    cr_assert_eq(json_object_get_int(simh_get(ev, "data.stats.chunks.succeeded")), 3);
    json_object_put(ev);
    /* the job shows its URL; the deliveries list both attempts */
    char path[96];
    snprintf(path, sizeof(path), "/v1/jobs/%s", job);
    json_object *jo = api(key, "GET", path, NULL, 200);
    cr_assert(strstr(simh_str(jo, "webhook_url"), "/hook?token=t1"));
    json_object_put(jo);
    json_object *o = deliveries(key, job, 1, 0);
    json_object *d = simh_get(o, "deliveries.0");
    cr_assert_str_eq(simh_str(d, "id"), a->id);
    cr_assert_str_eq(simh_str(d, "type"), "job.succeeded");
    cr_assert_str_eq(simh_str(d, "state"), "delivered");
    cr_assert_str_eq(simh_str(d, "payload.data.job_id"), job);
    cr_assert_eq(json_object_array_length(simh_get(d, "attempts")), 2);
    cr_assert_eq(json_object_get_int(simh_get(d, "attempts.0.status_code")), 500);
    cr_assert_str_eq(simh_str(d, "attempts.0.error"), "HTTP 500");
    cr_assert_eq(json_object_get_int(simh_get(d, "attempts.1.status_code")), 200);
    cr_assert_null(simh_get(d, "attempts.1.error"));
    json_object_put(o);
    /* delivered means done: nothing more arrives */
    cr_assert_eq(hookrecv_count(recv_), 2);
    /* another key sees no such job */
    char other[64], other_secret[128];
    new_key("other", other, other_secret);
    json_object_put(api(other, "GET", path, NULL, 404));
    /* neither the secret nor a signature reached the log */
    char *log = service_log();
    cr_assert(!strstr(log, secret + 6), "the webhook secret is in the log");
    cr_assert(!strstr(log, a->signature + 3) && !strstr(log, b->signature + 3),
              "a signature is in the log");
    cr_assert(!strstr(log, "token=t1"), "the URL's query string is in the log");
    free(log);
    free(job);
}

Test(webhooks, refused_at_submission_and_at_delivery)
{
    static const char *const sim_f[] = {"--pending-ms=20", "--running-ms=30", NULL};
    start(sim_f, NULL); /* private addresses refused: the default */
    char key[64], secret[128], body[512];
    new_key("hooks", key, secret);
    static const struct {
        const char *host, *path, *code; /* the URL: host:PORT + path */
    } bad[] = {
        {"http://127.0.0.1", "/hook", "webhook_url_refused"},
        {"http://[::1]", "/", "webhook_url_refused"},
        {"http://0x7f.1", "/", "webhook_url_refused"},
        {"http://10.1.2.3", "/", "webhook_url_refused"},
        {"http://169.254.169.254", "/latest/meta-data", "webhook_url_refused"},
        {"http://[::ffff:127.0.0.1]", "/", "webhook_url_refused"},
        {"http://100.64.0.1", "/", "webhook_url_refused"},
        {"http://[fd00::1]", "/", "webhook_url_refused"},
        {"ftp://example.com", "/", "invalid_webhook_url"},
        {"http://user:pw@example.com", "/", "invalid_webhook_url"},
        {"/relative", "/", "invalid_webhook_url"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char url[128];
        snprintf(url, sizeof(url), "%s:%d%s", bad[i].host, hookrecv_port(recv_), bad[i].path);
        snprintf(body, sizeof(body),
                 "{\"webhook_url\":\"%s\",\"documents\":[{\"id\":\"a\",\"text\":\"x\"}]}", url);
        json_object *o = api(key, "POST", "/v1/jobs", body, 422);
        cr_assert_str_eq(simh_str(o, "code"), bad[i].code, "%s", url);
        cr_assert_str_eq(simh_str(o, "errors.0.pointer"), "/webhook_url");
        json_object_put(o);
    }
    cr_assert_eq(dbh_scalar(&svc.db, "SELECT count(*) FROM jobs"), 0, "a refused job was stored");
    /* a name is resolved at delivery: localhost is loopback, recorded as refused */
    char extra[128];
    snprintf(extra, sizeof(extra), "\"webhook_url\":\"http://localhost:%d/hook\",",
             hookrecv_port(recv_));
    char *job = submit(key, 2, NULL, extra);
    json_object *o = deliveries(key, job, 1, 2);
    json_object *d = simh_get(o, "deliveries.0");
    cr_assert_str_eq(simh_str(d, "state"), "pending", "a refused delivery is retried later");
    const char *e = simh_str(d, "attempts.0.error");
    cr_assert(e && strstr(e, "refused") && strstr(e, "loopback"), "error: %s", e ? e : "(none)");
    cr_assert_null(simh_get(d, "attempts.0.status_code"));
    json_object_put(o);
    cr_assert_eq(hookrecv_count(recv_), 0, "a refused address was called");
    free(job);
}

Test(webhooks, degraded_once_when_items_fail)
{
    static const char *const sim_f[] = {"--pending-ms=20", "--running-ms=30",
                                        "--fail-marker=FAILME", NULL};
    static const char *const svc_f[] = {
        "--webhook-allow-private=1",       "--max-attempts=1",
        "--batch-max-requests=4",          "--webhook-degraded-threshold=90",
        "--webhook-degraded-min-chunks=4", NULL};
    start(sim_f, svc_f);
    char key[64], secret[128], extra[128];
    new_key("hooks", key, secret);
    snprintf(extra, sizeof(extra), "\"webhook_url\":\"http://127.0.0.1:%d/d\",",
             hookrecv_port(recv_));
    char *job = submit(key, 16, "FAILME", extra);
    wait_event(job, "job.completed_with_errors", 1);
    bool valid = true;
    cr_assert_eq(count_events(job, "job.degraded", &valid, secret), 1, "job.degraded once");
    cr_assert_eq(count_events(job, "job.completed_with_errors", &valid, secret), 1);
    cr_assert(valid, "every signature verifies");
    for (size_t i = 0; i < hookrecv_count(recv_); i++) {
        const struct hook_req *r = hookrecv_get(recv_, i);
        if (!strstr(r->body, "job.degraded"))
            continue;
        struct simh_resp fake = {.body = r->body, .len = r->len};
        json_object *ev = simh_json(&fake);
        cr_assert_eq(json_object_get_double(simh_get(ev, "data.threshold")), 0.9);
        cr_assert_lt(json_object_get_double(simh_get(ev, "data.stats.success_rate")), 0.9);
        int done = json_object_get_int(simh_get(ev, "data.stats.chunks.succeeded")) +
                   json_object_get_int(simh_get(ev, "data.stats.chunks.failed"));
        cr_assert_geq(done, 4, "not before the minimum of finished chunks");
        json_object_put(ev);
    }
    cr_assert_eq(dbh_scalar(&svc.db, "SELECT count(*) FROM jobs WHERE webhook_degraded_at IS NOT "
                                     "NULL"),
                 1);
    free(job);
}

Test(webhooks, key_default_url_cancel_and_rotation)
{
    /* batches stay pending at Google: the job runs until cancelled */
    static const char *const sim_f[] = {"--pending-ms=600000", NULL};
    static const char *const svc_f[] = {"--webhook-allow-private=1", NULL};
    start(sim_f, svc_f);
    char key[64], secret[128], url[128], id[24];
    new_key("hooks", key, secret);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/default", hookrecv_port(recv_));
    snprintf(id, sizeof(id), "%lld", key_id(key));
    free(keys_cli("webhook", id, url)); /* the key had a secret: nothing printed */
    char *shown = keys_cli("webhook", id, NULL);
    cr_assert(strstr(shown, "/default"), "keys webhook ID shows %s", shown);
    free(shown);
    char *job = submit(key, 2, NULL, "");
    char path[96];
    snprintf(path, sizeof(path), "/v1/jobs/%s/cancel", job);
    json_object_put(api(key, "POST", path, NULL, 202));
    wait_event(job, "job.cancelled", 1);
    const struct hook_req *r = hookrecv_get(recv_, 0);
    cr_assert_str_eq(r->path, "/default");
    cr_assert(hookrecv_verify(secret, r));
    /* rotation: a new secret, printed once; both sign during the grace period */
    char *rot = keys_cli("rotate-webhook-secret", id, NULL);
    char fresh[128];
    snprintf(fresh, sizeof(fresh), "%.*s", (int)strcspn(rot, "\n"), rot);
    free(rot);
    cr_assert(strncmp(fresh, "whsec_", 6) == 0 && strcmp(fresh, secret) != 0);
    char *job2 = submit(key, 2, NULL, "");
    snprintf(path, sizeof(path), "/v1/jobs/%s/cancel", job2);
    json_object_put(api(key, "POST", path, NULL, 202));
    wait_event(job2, "job.cancelled", 1);
    const struct hook_req *r2 = hookrecv_get(recv_, 1);
    cr_assert(strchr(r2->signature, ' '), "two signatures during the grace: %s", r2->signature);
    cr_assert(hookrecv_verify(fresh, r2), "the new secret verifies");
    cr_assert(hookrecv_verify(secret, r2), "the old secret still verifies");
    /* clearing the default: the next job sends nothing */
    free(keys_cli("webhook", id, "--clear"));
    char *job3 = submit(key, 1, NULL, "");
    snprintf(path, sizeof(path), "/v1/jobs/%s/cancel", job3);
    json_object_put(api(key, "POST", path, NULL, 202));
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM webhook_deliveries WHERE job_id = '%s'", job3);
    cr_assert_eq(dbh_scalar(&svc.db, sql), 0);
    free(job);
    free(job2);
    free(job3);
}

/* The outbox row is committed with the state change: killed before any
 * attempt (this process delivers nothing: --webhook-threads=0), the restarted
 * service delivers it. */
Test(webhooks, delivered_after_kill9_between_state_change_and_delivery)
{
    static const char *const sim_f[] = {"--pending-ms=20", "--running-ms=30", NULL};
    static const char *const svc_f[] = {"--webhook-allow-private=1", "--webhook-threads=0", NULL};
    start(sim_f, svc_f);
    char key[64], secret[128], extra[128];
    new_key("hooks", key, secret);
    snprintf(extra, sizeof(extra), "\"webhook_url\":\"http://127.0.0.1:%d/k\",",
             hookrecv_port(recv_));
    char *job = submit(key, 3, NULL, extra);
    char sql[200];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM webhook_deliveries d JOIN jobs j ON j.id = d.job_id"
             " WHERE d.job_id = '%s' AND j.state = 'succeeded' AND d.attempts = 0",
             job);
    int64_t deadline = simh_ms() + 30000;
    while (dbh_scalar(&svc.db, sql) != 1) {
        cr_assert(simh_ms() < deadline, "the job did not end with its event queued");
        nap_ms(20);
    }
    cr_assert_eq(hookrecv_count(recv_), 0);
    /* kill -9, then come back with delivery threads */
    for (int i = 0; svc.argv[i]; i++)
        if (strcmp(svc.argv[i], "--webhook-threads=0") == 0)
            svc.argv[i] = "--webhook-threads=2";
    svch_crash_restart(&svc);
    wait_event(job, "job.succeeded", 1);
    bool valid = true;
    cr_assert_eq(count_events(job, "job.succeeded", &valid, secret), 1);
    cr_assert(valid);
    json_object *o = deliveries(key, job, 1, 0);
    cr_assert_str_eq(simh_str(o, "deliveries.0.state"), "delivered");
    json_object_put(o);
    free(job);
}
