/* test_sim_faults.c: gemini-sim fault injection, control API and counters, end to end over HTTP. */
#include "harness.h"

#include "util/buf.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

static struct simh sim;
static struct simh twin; /* a second simulator with the same flags (determinism) */

static void start_fast(void)
{
    static const char *const flags[] = {"--pending-ms=0", "--running-ms=20", NULL};
    simh_start(&sim, flags);
}

/* Start-up flags that GET /_sim/config must show and POST /_sim/reset must restore. */
static void start_custom(void)
{
    static const char *const flags[] = {"--pending-ms=0",
                                        "--running-ms=20",
                                        "--seed=9",
                                        "--item-error-rate",
                                        "0.125",
                                        "--item-error-code=8",
                                        "--fail-marker=XX",
                                        "--retry-delay=5s",
                                        "--fault-scope=get,list",
                                        "--latency-rate=0.5",
                                        "--max-input-tokens=99",
                                        "--shuffle",
                                        NULL};
    simh_start(&sim, flags);
}

static const char *const twin_flags[] = {"--pending-ms=0", "--running-ms=0", "--seed=42",
                                         "--item-error-rate=0.3", NULL};

static void start_twins(void)
{
    simh_start(&sim, twin_flags);
    simh_start(&twin, twin_flags);
}

static void stop(void)
{
    simh_stop(&sim);
}

static void stop_twins(void)
{
    simh_stop(&twin);
    simh_stop(&sim);
}

/* One timeout for every suite of this binary (mixed values leak under LeakSanitizer with
 * Criterion 2.4 and --jobs 2; see test_sim_files.c). */
#define TIMEOUT_S 120
TestSuite(faults, .init = start_fast, .fini = stop, .timeout = TIMEOUT_S);
TestSuite(faults_startup, .init = start_custom, .fini = stop, .timeout = TIMEOUT_S);
TestSuite(faults_twins, .init = start_twins, .fini = stop_twins, .timeout = TIMEOUT_S);
TestSuite(faults_cli, .timeout = TIMEOUT_S);

#define CREATE_PATH "/v1beta/models/gemini-embedding-001:asyncBatchEmbedContent"
#define MODEL       "gemini-embedding-001"
#define NATIVE_DIMS 3072
#define DIMS        8
#define TASK        "RETRIEVAL_DOCUMENT"
#define MSG_13                                                                                     \
    "An internal error has occurred. Please retry or report in "                                   \
    "https://developers.generativeai.google/guide/troubleshooting"
#define RETRY_INFO "type.googleapis.com/google.rpc.RetryInfo"

/* ---- helpers ---- */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* n texts "<prefix> number NNN" (owned; free with texts_free). */
static char **texts_new(size_t n, const char *prefix)
{
    char **t = calloc(n, sizeof(*t));
    cr_assert(t);
    for (size_t i = 0; i < n; i++) {
        t[i] = malloc(96);
        cr_assert(t[i]);
        snprintf(t[i], 96, "%s number %03zu", prefix, i);
    }
    return t;
}

static void texts_free(char **t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(t[i]);
    free(t);
}

/* An inline batch: item i embeds texts[i] (plain ASCII, no quotes) with metadata key "kNNN". */
static char *batch_body(const char *display, const char *const *texts, size_t n, int dims)
{
    struct buf b;
    buf_init(&b, (size_t)1 << 26);
    bool ok = buf_printf(&b,
                         "{\"batch\":{\"displayName\":\"%s\",\"inputConfig\":{\"requests\":{"
                         "\"requests\":[",
                         display);
    for (size_t i = 0; i < n && ok; i++)
        ok = buf_printf(&b,
                        "%s{\"request\":{\"content\":{\"parts\":[{\"text\":\"%s\"}]},"
                        "\"taskType\":\"" TASK "\",\"outputDimensionality\":%d},"
                        "\"metadata\":{\"key\":\"k%03zu\"}}",
                        i ? "," : "", texts[i], dims, i);
    ok = ok && buf_puts(&b, "]}}}}");
    cr_assert(ok, "could not build a batch body");
    return buf_steal(&b, NULL);
}

static char *texts_body(const char *display, char **texts, size_t n)
{
    return batch_body(display, (const char *const *)texts, n, DIMS);
}

/* A batch of n items "<display> number NNN". */
static char *small_body(const char *display, size_t n)
{
    char **t = texts_new(n, display);
    char *body = texts_body(display, t, n);
    texts_free(t, n);
    return body;
}

static char *create_on(struct simh *s, const char *body)
{
    json_object *op = simh_call(s, "POST", CREATE_PATH, body, 200);
    const char *name = simh_str(op, "name");
    cr_assert(name, "create returned no name");
    char *copy = strdup(name);
    json_object_put(op);
    return copy;
}

static char *create(const char *body)
{
    return create_on(&sim, body);
}

/* The inline results array of a finished batch (borrowed), checked against metadata.output. */
static json_object *results(json_object *op, size_t want_n)
{
    json_object *a = simh_get(op, "response.inlinedResponses.inlinedResponses");
    json_object *b = simh_get(op, "metadata.output.inlinedResponses.inlinedResponses");
    cr_assert(a && json_object_is_type(a, json_type_array), "no inline results");
    cr_assert(b, "no metadata.output results");
    cr_assert_str_eq(json_object_to_json_string(a), json_object_to_json_string(b),
                     "response and metadata.output disagree");
    cr_assert_eq(json_object_array_length(a), want_n, "%zu results, want %zu",
                 json_object_array_length(a), want_n);
    return a;
}

/* metadata.batchStats.<name> as a number: an int64 JSON string, absent meaning 0. */
static long long batch_stat(json_object *op, const char *name)
{
    char path[128];
    snprintf(path, sizeof(path), "metadata.batchStats.%s", name);
    json_object *v = simh_get(op, path);
    if (!v)
        return 0;
    cr_assert(json_object_is_type(v, json_type_string), "%s is not an int64 string", path);
    char *end;
    long long n = strtoll(json_object_get_string(v), &end, 10);
    cr_assert(*end == '\0' && n > 0, "%s = \"%s\"", path, json_object_get_string(v));
    return n;
}

/* Check every result (in request order): either {error:{code, message}} and no response, or
 * the expected vector of texts[i] and no error. The keys of failed items go to failed, comma
 * separated. Returns the number of failed items. */
static size_t check_items(json_object *items, char **texts, int want_code, const char *want_msg,
                          char *failed, size_t cap)
{
    size_t nf = 0, len = 0;
    failed[0] = '\0';
    for (size_t i = 0; i < json_object_array_length(items); i++) {
        json_object *it = json_object_array_get_idx(items, i);
        char want_key[32];
        snprintf(want_key, sizeof(want_key), "k%03zu", i);
        const char *key = simh_str(it, "metadata.key");
        cr_assert(key && strcmp(key, want_key) == 0, "item %zu: metadata.key %s, want %s", i,
                  key ? key : "(none)", want_key);
        json_object *err = simh_get(it, "error");
        if (err) {
            cr_assert_null(simh_get(it, "response"), "item %zu has both error and response", i);
            json_object *code = simh_get(err, "code");
            cr_assert(code && json_object_is_type(code, json_type_int), "item %zu: error.code", i);
            cr_assert_eq(json_object_get_int(code), want_code, "item %zu: error.code %d, want %d",
                         i, json_object_get_int(code), want_code);
            const char *msg = simh_str(err, "message");
            cr_assert(msg && *msg, "item %zu: error.message missing", i);
            if (want_msg)
                cr_assert_str_eq(msg, want_msg, "item %zu", i);
            int w = snprintf(failed + len, cap - len, "%s%s", nf ? "," : "", key);
            cr_assert(w > 0 && (size_t)w < cap - len, "failed-key buffer too small");
            len += (size_t)w;
            nf++;
        } else {
            float exp[DIMS];
            simh_expected_vector(MODEL, NATIVE_DIMS, TASK, texts[i], strlen(texts[i]), DIMS, exp);
            simh_assert_vector(simh_get(it, "response.embedding.values"), exp, DIMS);
        }
    }
    return nf;
}

/* Create a batch of 200 texts on s, wait for SUCCEEDED, return its failed keys. */
static size_t failed_keys_on(struct simh *s, char *failed, size_t cap)
{
    char **t = texts_new(200, "determinism");
    char *body = texts_body("det", t, 200);
    char *name = create_on(s, body);
    json_object *op = simh_wait_state(s, name, "BATCH_STATE_SUCCEEDED", 10000);
    size_t nf = check_items(results(op, 200), t, 13, MSG_13, failed, cap);
    cr_assert_eq(batch_stat(op, "failedRequestCount"), (long long)nf);
    json_object_put(op);
    free(name);
    free(body);
    texts_free(t, 200);
    return nf;
}

/* Assert a finished-without-results Operation: done, top-level error, no output. */
static void assert_terminal_error(json_object *op, const char *state, int code)
{
    cr_assert_str_eq(simh_str(op, "metadata.state"), state);
    json_object *done = simh_get(op, "done");
    cr_assert(done && json_object_get_boolean(done), "%s: done must be true", state);
    json_object *c = simh_get(op, "error.code");
    cr_assert(c && json_object_is_type(c, json_type_int), "%s: no error.code", state);
    cr_assert_eq(json_object_get_int(c), code, "%s: error.code %d, want %d", state,
                 json_object_get_int(c), code);
    const char *msg = simh_str(op, "error.message");
    cr_assert(msg && *msg, "%s: error.message missing", state);
    cr_assert_null(simh_get(op, "response"), "%s: no response expected", state);
    cr_assert_null(simh_get(op, "metadata.output"), "%s: no metadata.output expected", state);
    cr_assert(simh_str(op, "metadata.endTime"), "%s: endTime missing", state);
}

/* Whether error.details holds a RetryInfo (with this retryDelay unless NULL). */
static bool has_retry_info(json_object *body, const char *delay)
{
    json_object *d = simh_get(body, "error.details");
    if (!d || !json_object_is_type(d, json_type_array))
        return false;
    for (size_t i = 0; i < json_object_array_length(d); i++) {
        json_object *e = json_object_array_get_idx(d, i);
        const char *type = simh_str(e, "@type");
        if (type && strcmp(type, RETRY_INFO) == 0) {
            const char *rd = simh_str(e, "retryDelay");
            return !delay || (rd && strcmp(rd, delay) == 0);
        }
    }
    return false;
}

/* A request expected to be answered with an injected error; returns the parsed body. */
static json_object *expect_fault(const char *method, const char *path, const char *body, long http,
                                 const char *status)
{
    struct simh_resp r;
    simh_req(&sim, &r, method, path, body, body ? strlen(body) : 0, NULL, true);
    cr_assert_eq(r.curl_code, 0, "%s %s: transfer failed (%d)", method, path, r.curl_code);
    simh_assert_error(&r, http, status);
    json_object *o = simh_json(&r);
    simh_resp_free(&r);
    return o;
}

/* Whether the body is one complete JSON value. */
static bool whole_json(const struct simh_resp *r)
{
    if (!r->body || r->len == 0)
        return false;
    struct json_tokener *tok = json_tokener_new();
    json_object *o = json_tokener_parse_ex(tok, r->body, (int)r->len);
    enum json_tokener_error e = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    bool whole = o && e == json_tokener_success && end == r->len;
    json_object_put(o);
    return whole;
}

static void assert_not_json(const struct simh_resp *r)
{
    cr_assert(r->body && r->len > 0, "malformed response has an empty body");
    cr_assert(!whole_json(r), "body parses as complete JSON: %.300s", r->body);
}

static size_t list_count(void)
{
    json_object *o = simh_call(&sim, "GET", "/v1beta/batches", NULL, 200);
    json_object *ops = simh_get(o, "operations");
    size_t n = ops ? json_object_array_length(ops) : 0;
    json_object_put(o);
    return n;
}

static char *config_text(struct simh *s)
{
    json_object *o = simh_call(s, "GET", "/_sim/config", NULL, 200);
    char *t = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return t;
}

/* An RFC 3339 UTC timestamp with 9 fractional digits, as nanoseconds since the epoch. */
static int64_t time_ns(const char *t)
{
    struct tm tm;
    long ns = 0;
    memset(&tm, 0, sizeof(tm));
    cr_assert(t, "timestamp missing");
    cr_assert_eq(sscanf(t, "%4d-%2d-%2dT%2d:%2d:%2d.%9ldZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                        &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ns),
                 7, "bad timestamp %s", t);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000000000LL + ns;
}

/* ---- 1. per-item errors ---- */

Test(faults, item_error_rate_fails_some_items)
{
    simh_config(&sim, "{\"item_error_rate\":0.3,\"seed\":42}");
    char **t = texts_new(200, "item");
    char *body = texts_body("items", t, 200);
    char *name = create(body);
    json_object *op = simh_wait_state(&sim, name, "BATCH_STATE_SUCCEEDED", 10000);
    cr_assert(json_object_get_boolean(simh_get(op, "done")));
    cr_assert_null(simh_get(op, "error"), "item failures do not fail the batch");
    char failed[2048];
    size_t nf = check_items(results(op, 200), t, 13, MSG_13, failed, sizeof(failed));
    cr_assert(nf >= 30 && nf <= 90, "%zu of 200 items failed at rate 0.3", nf);
    cr_assert_eq(batch_stat(op, "requestCount"), 200);
    cr_assert_eq(batch_stat(op, "failedRequestCount"), (long long)nf);
    cr_assert_eq(batch_stat(op, "successfulRequestCount"), 200 - (long long)nf);
    cr_assert_eq(batch_stat(op, "pendingRequestCount"), 0);
    json_object_put(op);
    free(name);
    free(body);
    texts_free(t, 200);
}

Test(faults_twins, item_errors_are_deterministic)
{
    char a[2048], b[2048], c[2048];
    size_t na = failed_keys_on(&sim, a, sizeof(a));
    cr_assert(na > 0 && na < 200, "%zu of 200 failed", na);
    size_t nb = failed_keys_on(&twin, b, sizeof(b));
    cr_assert_eq(nb, na);
    cr_assert_str_eq(b, a, "same seed, same requests, different failures");

    /* reset restores the seed and the batch sequence: the same failures again */
    json_object_put(simh_call(&twin, "POST", "/_sim/reset", NULL, 200));
    failed_keys_on(&twin, c, sizeof(c));
    cr_assert_str_eq(c, a, "after /_sim/reset");

    /* another seed at the same sequence number: other failures */
    json_object_put(simh_call(&twin, "POST", "/_sim/reset", NULL, 200));
    simh_config(&twin, "{\"seed\":43}");
    failed_keys_on(&twin, c, sizeof(c));
    cr_assert_str_neq(c, a, "seed 43 failed the same items as seed 42");
}

Test(faults, item_error_code_setting)
{
    simh_config(&sim, "{\"item_error_rate\":0.3,\"item_error_code\":3}");
    char **t = texts_new(60, "code");
    char *body = texts_body("code3", t, 60);
    char *name = create(body);
    json_object *op = simh_wait_state(&sim, name, "BATCH_STATE_SUCCEEDED", 10000);
    char failed[1024];
    size_t nf = check_items(results(op, 60), t, 3, NULL, failed, sizeof(failed));
    cr_assert(nf > 0 && nf < 60, "%zu of 60 failed", nf);
    cr_assert_eq(batch_stat(op, "failedRequestCount"), (long long)nf);
    json_object_put(op);
    free(name);
    free(body);
    texts_free(t, 60);
}

Test(faults, fail_marker_fails_exactly_marked_texts)
{
    simh_config(&sim, "{\"fail_marker\":\"POISON\"}");
    char **t = texts_new(20, "marker");
    snprintf(t[2], 96, "POISON at the start");
    snprintf(t[9], 96, "in the middle POISON of text 9");
    snprintf(t[17], 96, "at the end: POISON");
    snprintf(t[11], 96, "almost POISO N but not quite"); /* no full marker */
    char *body = texts_body("marker", t, 20);
    char *name = create(body);
    json_object *op = simh_wait_state(&sim, name, "BATCH_STATE_SUCCEEDED", 10000);
    char failed[256];
    size_t nf = check_items(results(op, 20), t, 13, MSG_13, failed, sizeof(failed));
    cr_assert_eq(nf, 3);
    cr_assert_str_eq(failed, "k002,k009,k017");
    cr_assert_eq(batch_stat(op, "failedRequestCount"), 3);
    cr_assert_eq(batch_stat(op, "successfulRequestCount"), 17);
    json_object_put(op);
    free(name);
    free(body);
    texts_free(t, 20);
}

/* ---- 2. whole-batch outcomes ---- */

Test(faults, batch_fail_rate_fails_the_batch)
{
    simh_config(&sim, "{\"batch_fail_rate\":1}");
    char *body = small_body("failing", 3);
    char *names[2] = {create(body), create(body)};
    for (int i = 0; i < 2; i++) {
        json_object *op = simh_wait_state(&sim, names[i], "BATCH_STATE_FAILED", 5000);
        assert_terminal_error(op, "BATCH_STATE_FAILED", 13);
        json_object_put(op);
    }
    json_object *l = simh_call(&sim, "GET", "/v1beta/batches", NULL, 200);
    assert_terminal_error(simh_get(l, "operations.0"), "BATCH_STATE_FAILED", 13);
    json_object_put(l);
    free(names[0]);
    free(names[1]);
    free(body);
}

Test(faults, batch_expire_rate_expires_the_batch)
{
    simh_config(&sim, "{\"batch_expire_rate\":1}");
    char *body = small_body("expiring", 3);
    char *name = create(body);
    json_object *op = simh_wait_state(&sim, name, "BATCH_STATE_EXPIRED", 5000);
    assert_terminal_error(op, "BATCH_STATE_EXPIRED", 4);
    json_object_put(op);
    free(name);
    free(body);
}

Test(faults, batch_stuck_rate_runs_until_cancelled)
{
    simh_config(&sim, "{\"batch_stuck_rate\":1,\"running_ms\":20}");
    char *body = small_body("stuck", 3);
    char *name = create(body);
    json_object_put(simh_wait_state(&sim, name, "BATCH_STATE_RUNNING", 5000));
    char path[128];
    snprintf(path, sizeof(path), "/v1beta/%s", name);
    int64_t t0 = simh_ms();
    /* measuring that the batch does NOT finish: poll over >= 300 ms, 15x running_ms */
    for (int i = 0; i < 6 || simh_ms() - t0 < 300; i++) {
        sleep_ms(60);
        json_object *op = simh_call(&sim, "GET", path, NULL, 200);
        cr_assert_str_eq(simh_str(op, "metadata.state"), "BATCH_STATE_RUNNING",
                         "a stuck batch left RUNNING after %lld ms", (long long)(simh_ms() - t0));
        cr_assert_null(simh_get(op, "done"));
        cr_assert_null(simh_get(op, "error"));
        cr_assert_null(simh_get(op, "metadata.endTime"));
        json_object_put(op);
    }
    snprintf(path, sizeof(path), "/v1beta/%s:cancel", name);
    json_object_put(simh_call(&sim, "POST", path, "{}", 200));
    json_object *op = simh_wait_state(&sim, name, "BATCH_STATE_CANCELLED", 2000);
    assert_terminal_error(op, "BATCH_STATE_CANCELLED", 1);
    json_object_put(op);

    /* the same timing without the fault finishes */
    simh_config(&sim, "{\"batch_stuck_rate\":0}");
    char *ok = create(body);
    json_object_put(simh_wait_state(&sim, ok, "BATCH_STATE_SUCCEEDED", 5000));
    free(ok);
    free(name);
    free(body);
}

/* ---- 3. HTTP errors ---- */

Test(faults, http_error_count_429_with_retry_info)
{
    simh_config(&sim, "{\"http_error_count\":2,\"http_error_code\":429,\"retry_delay\":\"3s\"}");
    char *body = small_body("quota", 2);
    json_object *e = expect_fault("POST", CREATE_PATH, body, 429, "RESOURCE_EXHAUSTED");
    cr_assert(has_retry_info(e, "3s"), "no RetryInfo 3s: %s", json_object_to_json_string(e));
    json_object_put(e);
    cr_assert_eq(simh_stat(&sim, "creates_accepted"), 0, "a 429'd create created a batch");
    cr_assert_eq(simh_stat(&sim, "batches"), 0);
    e = expect_fault("GET", "/v1beta/batches", NULL, 429, "RESOURCE_EXHAUSTED");
    cr_assert(has_retry_info(e, "3s"));
    json_object_put(e);
    /* the count is used up: requests succeed again */
    char *name = create(body);
    cr_assert_eq(list_count(), 1);
    cr_assert_eq(simh_stat(&sim, "creates_accepted"), 1);
    cr_assert_eq(simh_stat(&sim, "faults.http_error"), 2);
    free(name);
    free(body);
}

Test(faults, http_429_without_retry_delay)
{
    simh_config(&sim, "{\"http_error_count\":1}");
    json_object *e = expect_fault("GET", "/v1beta/batches", NULL, 429, "RESOURCE_EXHAUSTED");
    cr_assert(!has_retry_info(e, NULL), "RetryInfo without retry_delay: %s",
              json_object_to_json_string(e));
    json_object_put(e);
    cr_assert_eq(list_count(), 0);
    cr_assert_eq(simh_stat(&sim, "faults.http_error"), 1);
}

Test(faults, http_500_and_503_bodies)
{
    char *body = small_body("fivexx", 2);
    simh_config(&sim, "{\"http_error_count\":1,\"http_error_code\":500}");
    json_object_put(expect_fault("POST", CREATE_PATH, body, 500, "INTERNAL"));
    cr_assert_eq(simh_stat(&sim, "creates_accepted"), 0);
    simh_config(&sim, "{\"http_error_count\":1,\"http_error_code\":503}");
    json_object_put(expect_fault("GET", "/v1beta/batches", NULL, 503, "UNAVAILABLE"));
    char *name = create(body);
    cr_assert_eq(simh_stat(&sim, "faults.http_error"), 2);
    free(name);
    free(body);
}

Test(faults, http_error_rate_respects_fault_scope)
{
    char *body = small_body("scoped", 2);
    simh_config(&sim, "{\"http_error_rate\":1,\"fault_scope\":\"get\"}");
    char *name = create(body);
    char *name2 = create(body);
    cr_assert_eq(list_count(), 2);
    char path[128];
    snprintf(path, sizeof(path), "/v1beta/%s", name);
    for (int i = 0; i < 3; i++)
        json_object_put(expect_fault("GET", path, NULL, 429, "RESOURCE_EXHAUSTED"));
    snprintf(path, sizeof(path), "/v1beta/%s:cancel", name2);
    json_object_put(simh_call(&sim, "POST", path, "{}", 200));
    cr_assert_eq(simh_stat(&sim, "gets"), 0, "a faulted GET reached the handler");

    /* every API route now; the control API stays reachable */
    simh_config(&sim, "{\"fault_scope\":\"all\"}");
    json_object_put(expect_fault("GET", "/v1beta/batches", NULL, 429, "RESOURCE_EXHAUSTED"));
    json_object_put(expect_fault("POST", CREATE_PATH, body, 429, "RESOURCE_EXHAUSTED"));
    json_object_put(simh_call(&sim, "GET", "/_sim/config", NULL, 200));
    json_object *h = simh_call(&sim, "GET", "/_sim/health", NULL, 200);
    cr_assert_str_eq(simh_str(h, "status"), "ok");
    json_object_put(h);
    cr_assert_eq(simh_stat(&sim, "faults.http_error"), 5);
    cr_assert_eq(simh_stat(&sim, "creates_accepted"), 2);
    simh_config(&sim, "{\"http_error_rate\":0}");
    cr_assert_eq(list_count(), 2);
    free(name);
    free(name2);
    free(body);
}

Test(faults, http_error_count_only_counts_in_scope_requests)
{
    char *body = small_body("count-scope", 1);
    simh_config(&sim, "{\"http_error_count\":1,\"fault_scope\":\"get\"}");
    char *name = create(body);
    cr_assert_eq(list_count(), 1);
    char path[128];
    snprintf(path, sizeof(path), "/v1beta/%s", name);
    json_object_put(expect_fault("GET", path, NULL, 429, "RESOURCE_EXHAUSTED"));
    json_object_put(simh_call(&sim, "GET", path, NULL, 200));
    cr_assert_eq(simh_stat(&sim, "faults.http_error"), 1);
    free(name);
    free(body);
}

Test(faults, http_error_rate_half)
{
    simh_config(&sim, "{\"http_error_rate\":0.5,\"fault_scope\":\"list\"}");
    int failed = 0;
    for (int i = 0; i < 40; i++) {
        struct simh_resp r;
        simh_req(&sim, &r, "GET", "/v1beta/batches", NULL, 0, NULL, true);
        cr_assert(r.status == 200 || r.status == 429, "status %ld", r.status);
        failed += r.status == 429;
        simh_resp_free(&r);
    }
    cr_assert(failed > 5 && failed < 35, "%d of 40 failed at rate 0.5", failed);
    cr_assert_eq(simh_stat(&sim, "faults.http_error"), failed);
    cr_assert_eq(simh_stat(&sim, "lists"), 40 - failed);
}

/* ---- 4. latency ---- */

Test(faults, latency_delays_api_requests)
{
    simh_config(&sim, "{\"latency_ms\":300}");
    int64_t t0 = simh_ms();
    json_object_put(simh_call(&sim, "GET", "/v1beta/batches", NULL, 200));
    int64_t took = simh_ms() - t0;
    cr_assert(took >= 300, "request took %lld ms with latency_ms=300", (long long)took);
    /* /_sim/ requests are not delayed, so only the API call counts */
    cr_assert_eq(simh_stat(&sim, "faults.latency"), 1);
    cr_assert_eq(simh_stat(&sim, "faults.latency"), 1);
    simh_config(&sim, "{\"latency_rate\":0}");
    json_object_put(simh_call(&sim, "GET", "/v1beta/batches", NULL, 200));
    simh_config(&sim, "{\"latency_rate\":1,\"fault_scope\":\"create\"}");
    json_object_put(simh_call(&sim, "GET", "/v1beta/batches", NULL, 200));
    cr_assert_eq(simh_stat(&sim, "faults.latency"), 1, "latency outside rate or scope");
}

/* ---- 5. dropped connections ---- */

Test(faults, drop_cuts_off_response_after_side_effect)
{
    simh_config(&sim, "{\"drop_count\":1}");
    char *body = small_body("dropped", 2);
    struct simh_resp r;
    simh_req(&sim, &r, "POST", CREATE_PATH, body, strlen(body), NULL, true);
    cr_assert_neq(r.curl_code, 0, "a dropped response completed (status %ld, %zu bytes)", r.status,
                  r.len);
    if (r.curl_code != 18)
        cr_log_warn("dropped response: curl code %d, expected 18 (CURLE_PARTIAL_FILE)",
                    r.curl_code);
    simh_resp_free(&r);
    /* the batch was created before the connection was cut */
    json_object *l = simh_call(&sim, "GET", "/v1beta/batches", NULL, 200);
    cr_assert_eq(json_object_array_length(simh_get(l, "operations")), 1);
    cr_assert_str_eq(simh_str(l, "operations.0.metadata.displayName"), "dropped");
    json_object_put(l);
    cr_assert_eq(simh_stat(&sim, "creates_accepted"), 1);
    cr_assert_eq(simh_stat(&sim, "faults.drop"), 1);
    char *name = create(body);
    cr_assert_eq(list_count(), 2);
    free(name);
    free(body);
}

/* drop_count must not be used up by a response that it then leaves whole. Known to fail:
 * plan_faults() in tools/gemini-sim/http.c takes the count before the handler runs, and
 * on_access() then applies it only to a 200. */
Test(faults, drop_count_survives_an_error_response)
{
    simh_config(&sim, "{\"drop_count\":1}");
    struct simh_resp r;
    simh_req(&sim, &r, "GET", "/v1beta/batches/nosuchbatch", NULL, 0, NULL, true);
    bool cut = r.curl_code != 0;
    long status = r.status;
    simh_resp_free(&r);
    cr_assert(cut || status == 404, "status %ld", status);
    simh_req(&sim, &r, "GET", "/v1beta/batches", NULL, 0, NULL, true);
    cut = cut || r.curl_code != 0;
    simh_resp_free(&r);
    cr_assert(cut, "drop_count=1 was used up by a 404 that was not cut off");
    cr_assert_eq(simh_stat(&sim, "faults.drop"), 1);
}

/* ---- 6. malformed bodies ---- */

Test(faults, malformed_gives_200_with_truncated_json)
{
    char *body = small_body("malformed", 2);
    char *first = create(body);
    simh_config(&sim, "{\"malformed_count\":1}");
    struct simh_resp r;
    simh_req(&sim, &r, "GET", "/v1beta/batches", NULL, 0, NULL, true);
    cr_assert_eq(r.curl_code, 0, "a malformed response is a complete transfer");
    cr_assert_eq(r.status, 200);
    assert_not_json(&r);
    simh_resp_free(&r);
    cr_assert_eq(list_count(), 1, "the next call is well-formed");
    cr_assert_eq(simh_stat(&sim, "faults.malformed"), 1);

    /* on a create the batch exists although the answer was garbage */
    simh_config(&sim, "{\"malformed_count\":1}");
    simh_req(&sim, &r, "POST", CREATE_PATH, body, strlen(body), NULL, true);
    cr_assert_eq(r.curl_code, 0);
    cr_assert_eq(r.status, 200);
    assert_not_json(&r);
    simh_resp_free(&r);
    cr_assert_eq(list_count(), 2);
    cr_assert_eq(simh_stat(&sim, "creates_accepted"), 2);
    cr_assert_eq(simh_stat(&sim, "faults.malformed"), 2);
    free(first);
    free(body);
}

/* malformed_count applies to "the next N in-scope 200 responses": a 404 must not use it up.
 * Known to fail for the same reason as drop_count_survives_an_error_response. */
Test(faults, malformed_count_waits_for_a_200)
{
    simh_config(&sim, "{\"malformed_count\":1}");
    struct simh_resp r;
    simh_req(&sim, &r, "GET", "/v1beta/batches/nosuchbatch", NULL, 0, NULL, true);
    long status = r.status;
    bool whole = whole_json(&r);
    simh_resp_free(&r);
    cr_assert(status == 404 && whole, "a 404 was malformed or not a 404 (%ld)", status);
    simh_req(&sim, &r, "GET", "/v1beta/batches", NULL, 0, NULL, true);
    status = r.status;
    whole = whole_json(&r);
    simh_resp_free(&r);
    cr_assert_eq(status, 200);
    cr_assert(!whole, "malformed_count=1 was used up by a 404; the next 200 is well-formed");
    cr_assert_eq(simh_stat(&sim, "faults.malformed"), 1);
}

/* ---- 7. result order and metadata ---- */

Test(faults, shuffle_reorders_but_metadata_maps_back)
{
    simh_config(&sim, "{\"shuffle\":true}");
    char **t = texts_new(50, "shuffled");
    char *body = texts_body("shuffle", t, 50);
    char *name = create(body);
    json_object *op = simh_wait_state(&sim, name, "BATCH_STATE_SUCCEEDED", 10000);
    json_object *items = results(op, 50);
    bool seen[50] = {false};
    int moved = 0;
    for (size_t k = 0; k < 50; k++) {
        json_object *it = json_object_array_get_idx(items, k);
        const char *key = simh_str(it, "metadata.key");
        cr_assert(key && key[0] == 'k', "result %zu has no key", k);
        size_t idx = strtoul(key + 1, NULL, 10);
        cr_assert(idx < 50 && !seen[idx], "key %s missing or repeated", key);
        seen[idx] = true;
        moved += idx != k;
        float exp[DIMS];
        simh_expected_vector(MODEL, NATIVE_DIMS, TASK, t[idx], strlen(t[idx]), DIMS, exp);
        simh_assert_vector(simh_get(it, "response.embedding.values"), exp, DIMS);
    }
    cr_assert(moved >= 25, "only %d of 50 results moved by the shuffle", moved);
    json_object_put(op);
    free(name);
    free(body);
    texts_free(t, 50);
}

Test(faults, omit_metadata_drops_the_echo)
{
    simh_config(&sim, "{\"omit_metadata\":true,\"fail_marker\":\"BROKEN\"}");
    char **t = texts_new(10, "omitted");
    snprintf(t[4], 96, "BROKEN text four");
    char *body = texts_body("omit", t, 10);
    char *name = create(body);
    json_object *op = simh_wait_state(&sim, name, "BATCH_STATE_SUCCEEDED", 10000);
    json_object *items = results(op, 10);
    for (size_t i = 0; i < 10; i++) {
        json_object *it = json_object_array_get_idx(items, i);
        cr_assert_null(simh_get(it, "metadata"), "item %zu echoes metadata", i);
        if (i == 4) {
            cr_assert_eq(json_object_get_int(simh_get(it, "error.code")), 13);
            continue;
        }
        float exp[DIMS];
        simh_expected_vector(MODEL, NATIVE_DIMS, TASK, t[i], strlen(t[i]), DIMS, exp);
        simh_assert_vector(simh_get(it, "response.embedding.values"), exp, DIMS);
    }
    json_object_put(op);
    free(name);
    free(body);
    texts_free(t, 10);
}

/* ---- 8. control API ---- */

Test(faults, config_put_is_reflected_by_get)
{
    json_object *put = simh_call(
        &sim, "PUT", "/_sim/config",
        "{\"item_error_rate\":0.25,\"item_error_code\":8,\"fail_marker\":\"BAD\",\"shuffle\":true,"
        "\"retry_delay\":\"2.5s\",\"fault_scope\":\"create,get\",\"latency_ms\":7,"
        "\"http_error_code\":503,\"seed\":77,\"batch_fail_rate\":1}",
        200);
    json_object *get = simh_call(&sim, "GET", "/_sim/config", NULL, 200);
    cr_assert_str_eq(json_object_to_json_string(put), json_object_to_json_string(get),
                     "PUT answer and GET disagree");
    cr_assert(json_object_get_double(simh_get(get, "item_error_rate")) == 0.25);
    cr_assert_eq(json_object_get_int(simh_get(get, "item_error_code")), 8);
    cr_assert_str_eq(simh_str(get, "fail_marker"), "BAD");
    cr_assert(json_object_get_boolean(simh_get(get, "shuffle")));
    cr_assert_str_eq(simh_str(get, "retry_delay"), "2.5s");
    cr_assert_str_eq(simh_str(get, "fault_scope"), "create,get");
    cr_assert_eq(json_object_get_int(simh_get(get, "latency_ms")), 7);
    cr_assert_eq(json_object_get_int(simh_get(get, "http_error_code")), 503);
    cr_assert_eq(json_object_get_int64(simh_get(get, "seed")), 77);
    cr_assert(json_object_get_double(simh_get(get, "batch_fail_rate")) == 1.0);
    /* settings not in the PUT keep their start-up values */
    cr_assert_eq(json_object_get_int(simh_get(get, "running_ms")), 20);
    cr_assert_eq(json_object_get_int(simh_get(get, "pending_ms")), 0);
    cr_assert(!json_object_get_boolean(simh_get(get, "omit_metadata")));
    json_object_put(put);
    json_object_put(get);
    /* and the new settings are in force */
    char *body = small_body("after-put", 1);
    char *name = create(body);
    json_object_put(simh_wait_state(&sim, name, "BATCH_STATE_FAILED", 5000));
    free(name);
    free(body);
}

Test(faults, config_put_rejects_bad_settings_atomically)
{
    static const char *const bad[] = {
        "{\"item_error_rate\":0.5,\"no_such_setting\":1}", /* unknown, after a valid one */
        "{\"item_error_rate\":0.5,\"latency_ms\":-1}",     /* invalid, after a valid one */
        "{\"port\":9999}",                                 /* start-up only */
        "{\"api_key\":\"x\"}",
        "{\"shuffle\":\"yes\"}", /* wrong types */
        "{\"shuffle\":1}",
        "{\"latency_ms\":1.5}",
        "{\"latency_ms\":\"300\"}",
        "{\"item_error_rate\":\"0.1\"}",
        "{\"fail_marker\":5}",
        "{\"seed\":null}",
        "{\"item_error_rate\":1.5}", /* out of range */
        "{\"batch_fail_rate\":-0.1}",
        "{\"latency_ms\":-1}",
        "{\"http_error_code\":200}",
        "{\"item_error_code\":0}",
        "{\"seed\":-1}",
        "{\"fault_scope\":\"everything\"}",
        "{\"retry_delay\":\"3\"}",
        "{\"retry_delay\":\"soon\"}",
        "[1,2]", /* not an object */
        "{\"shuffle\":",
        NULL};
    char *before = config_text(&sim);
    for (int i = 0; bad[i]; i++) {
        struct simh_resp r;
        simh_req(&sim, &r, "PUT", "/_sim/config", bad[i], strlen(bad[i]), NULL, false);
        cr_assert_eq(r.status, 400, "PUT %s: status %ld, want 400; %s", bad[i], r.status, r.body);
        simh_assert_error(&r, 400, "INVALID_ARGUMENT");
        if (i == 0)
            cr_assert(strstr(r.body, "no_such_setting"), "error does not name the setting: %s",
                      r.body);
        simh_resp_free(&r);
        char *after = config_text(&sim);
        cr_assert_str_eq(after, before, "PUT %s changed the settings", bad[i]);
        free(after);
    }
    free(before);
}

Test(faults_startup, flags_set_config_and_reset_restores_them)
{
    json_object *c = simh_call(&sim, "GET", "/_sim/config", NULL, 200);
    cr_assert_eq(json_object_get_int64(simh_get(c, "seed")), 9);
    cr_assert(json_object_get_double(simh_get(c, "item_error_rate")) == 0.125);
    cr_assert_eq(json_object_get_int(simh_get(c, "item_error_code")), 8);
    cr_assert_str_eq(simh_str(c, "fail_marker"), "XX");
    cr_assert_str_eq(simh_str(c, "retry_delay"), "5s");
    cr_assert_str_eq(simh_str(c, "fault_scope"), "get,list");
    cr_assert(json_object_get_double(simh_get(c, "latency_rate")) == 0.5);
    cr_assert_eq(json_object_get_int(simh_get(c, "max_input_tokens")), 99);
    cr_assert(json_object_get_boolean(simh_get(c, "shuffle")));
    cr_assert_eq(json_object_get_int(simh_get(c, "running_ms")), 20);
    json_object_put(c);
    char *startup = config_text(&sim);

    char *body = small_body("reset", 3);
    char *name = create(body);
    json_object_put(simh_wait_state(&sim, name, "BATCH_STATE_SUCCEEDED", 5000));
    cr_assert_eq(simh_stat(&sim, "creates_accepted"), 1);
    cr_assert(simh_stat(&sim, "gets") >= 1);
    simh_config(&sim, "{\"item_error_rate\":0,\"shuffle\":false,\"http_error_count\":5,"
                      "\"fault_scope\":\"create\",\"seed\":3,\"running_ms\":600000}");

    json_object *o = simh_call(&sim, "POST", "/_sim/reset", NULL, 200);
    cr_assert_eq(json_object_object_length(o), 0, "reset returns {}");
    json_object_put(o);
    char *now = config_text(&sim);
    cr_assert_str_eq(now, startup, "reset did not restore the start-up settings");
    free(now);
    json_object *s = simh_call(&sim, "GET", "/_sim/stats", NULL, 200);
    static const char *const zero[] = {"requests",
                                       "creates",
                                       "creates_accepted",
                                       "texts_received",
                                       "texts_unique",
                                       "texts_duplicate",
                                       "gets",
                                       "lists",
                                       "bytes_in",
                                       "faults.http_error",
                                       "batches",
                                       NULL};
    for (int i = 0; zero[i]; i++)
        cr_assert_eq(json_object_get_int64(simh_get(s, zero[i])), 0, "%s not reset", zero[i]);
    json_object_put(s);
    cr_assert_eq(list_count(), 0, "reset kept batches");
    char path[128];
    snprintf(path, sizeof(path), "/v1beta/%s", name);
    struct simh_resp r;
    simh_req(&sim, &r, "GET", path, NULL, 0, NULL, true);
    simh_assert_error(&r, 404, "NOT_FOUND");
    simh_resp_free(&r);
    /* the texts seen before the reset are forgotten too */
    char *again = create(body);
    cr_assert_eq(simh_stat(&sim, "texts_unique"), 3);
    cr_assert_eq(simh_stat(&sim, "texts_duplicate"), 0);
    free(again);
    free(name);
    free(body);
    free(startup);
}

/* ---- 9. counters ---- */

Test(faults, stats_count_requests_texts_and_states)
{
    static const char *const xyz[] = {"text x", "text y", "text z"};
    static const char *const ww[] = {"text w", "text w"};
    static const char *const x16[] = {"text x"};
    static const char bad_body[] = "{\"batch\":{\"displayName\":\"bad\"}}";
    char *a_body = batch_body("A", xyz, 3, DIMS);
    char *b_body = batch_body("B", xyz, 3, DIMS);
    char *c_body = batch_body("C", ww, 2, DIMS);
    char *d_body = batch_body("D", x16, 1, 16); /* other dims: another identity */
    size_t sent = 0;

    char *a = create(a_body);
    sent += strlen(a_body);
    cr_assert_eq(simh_stat(&sim, "creates"), 1);
    cr_assert_eq(simh_stat(&sim, "creates_accepted"), 1);
    cr_assert_eq(simh_stat(&sim, "texts_received"), 3);
    cr_assert_eq(simh_stat(&sim, "texts_unique"), 3);
    cr_assert_eq(simh_stat(&sim, "texts_duplicate"), 0);
    char *b = create(b_body);
    sent += strlen(b_body);
    cr_assert_eq(simh_stat(&sim, "texts_received"), 6);
    cr_assert_eq(simh_stat(&sim, "texts_unique"), 3);
    cr_assert_eq(simh_stat(&sim, "texts_duplicate"), 3, "same 3 texts in a second batch");
    char *c = create(c_body);
    sent += strlen(c_body);
    cr_assert_eq(simh_stat(&sim, "texts_received"), 8);
    cr_assert_eq(simh_stat(&sim, "texts_unique"), 4);
    cr_assert_eq(simh_stat(&sim, "texts_duplicate"), 3, "a repeat inside one batch counted");
    char *d = create(d_body);
    sent += strlen(d_body);
    cr_assert_eq(simh_stat(&sim, "texts_unique"), 5);
    cr_assert_eq(simh_stat(&sim, "texts_duplicate"), 3);
    struct simh_resp r;
    simh_req(&sim, &r, "POST", CREATE_PATH, bad_body, strlen(bad_body), NULL, true);
    simh_assert_error(&r, 400, "INVALID_ARGUMENT");
    simh_resp_free(&r);
    sent += strlen(bad_body);
    cr_assert_eq(simh_stat(&sim, "creates"), 5, "a refused create is still a create call");
    cr_assert_eq(simh_stat(&sim, "creates_accepted"), 4);
    cr_assert_eq(simh_stat(&sim, "texts_received"), 9);
    cr_assert_eq(simh_stat(&sim, "bytes_in"), (long long)sent, "bytes_in: API request bodies");

    /* gets and lists, and bytes_out growing by at least what we received */
    const char *names[] = {a, b, c, d};
    for (int i = 0; i < 4; i++)
        json_object_put(simh_wait_state(&sim, names[i], "BATCH_STATE_SUCCEEDED", 5000));
    long long gets0 = simh_stat(&sim, "gets"), lists0 = simh_stat(&sim, "lists");
    long long out0 = simh_stat(&sim, "bytes_out");
    char path[128];
    snprintf(path, sizeof(path), "/v1beta/%s", a);
    simh_req(&sim, &r, "GET", path, NULL, 0, NULL, true);
    cr_assert_eq(r.status, 200);
    size_t got = r.len;
    simh_resp_free(&r);
    json_object_put(simh_call(&sim, "GET", path, NULL, 200));
    simh_req(&sim, &r, "GET", "/v1beta/batches", NULL, 0, NULL, true);
    cr_assert_eq(r.status, 200);
    got += r.len;
    simh_resp_free(&r);
    cr_assert_eq(simh_stat(&sim, "gets"), gets0 + 2);
    cr_assert_eq(simh_stat(&sim, "lists"), lists0 + 1);
    long long out1 = simh_stat(&sim, "bytes_out");
    cr_assert(out1 >= out0 + (long long)got, "bytes_out grew by %lld, responses were %zu bytes",
              out1 - out0, got);
    cr_assert_eq(simh_stat(&sim, "bytes_in"), (long long)sent, "GETs carry no body");

    /* batches by state */
    simh_config(&sim, "{\"running_ms\":600000}");
    char *e = create(a_body);
    simh_config(&sim, "{\"running_ms\":0,\"batch_fail_rate\":1}");
    char *f = create(a_body);
    json_object_put(simh_wait_state(&sim, f, "BATCH_STATE_FAILED", 5000));
    json_object *s = simh_call(&sim, "GET", "/_sim/stats", NULL, 200);
    cr_assert_eq(json_object_get_int(simh_get(s, "batches")), 6);
    cr_assert_eq(json_object_get_int(simh_get(s, "batches_by_state.BATCH_STATE_SUCCEEDED")), 4);
    cr_assert_eq(json_object_get_int(simh_get(s, "batches_by_state.BATCH_STATE_RUNNING")), 1);
    cr_assert_eq(json_object_get_int(simh_get(s, "batches_by_state.BATCH_STATE_FAILED")), 1);
    cr_assert_eq(json_object_get_int(simh_get(s, "batches_by_state.BATCH_STATE_PENDING")), 0);
    cr_assert_eq(json_object_get_int(simh_get(s, "batches_by_state.BATCH_STATE_CANCELLED")), 0);
    cr_assert_eq(json_object_get_int(simh_get(s, "batches_by_state.BATCH_STATE_EXPIRED")), 0);
    json_object_put(s);
    snprintf(path, sizeof(path), "/v1beta/%s:cancel", e);
    json_object_put(simh_call(&sim, "POST", path, "{}", 200));
    cr_assert_eq(simh_stat(&sim, "batches_by_state.BATCH_STATE_RUNNING"), 0);
    cr_assert_eq(simh_stat(&sim, "batches_by_state.BATCH_STATE_CANCELLED"), 1);
    cr_assert_eq(simh_stat(&sim, "cancels"), 1);
    free(a);
    free(b);
    free(c);
    free(d);
    free(e);
    free(f);
    free(a_body);
    free(b_body);
    free(c_body);
    free(d_body);
}

/* ---- 10. command line ---- */

/* Run the simulator binary with args; returns its stdout+stderr (owned) and exit status. */
static char *run_sim_bin(const char *args, int *status)
{
    const char *bin = getenv("GEMINI_SIM_BIN");
    cr_assert(bin && *bin, "GEMINI_SIM_BIN is not set (run the tests through ctest)");
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "'%.900s' %s 2>&1", bin, args);
    FILE *p = popen(cmd, "r");
    cr_assert(p, "popen failed");
    struct buf b;
    buf_init(&b, 1 << 20);
    char tmp[4096];
    size_t n;
    while ((n = fread(tmp, 1, sizeof(tmp), p)) > 0)
        cr_assert(buf_append(&b, tmp, n));
    *status = pclose(p);
    cr_assert(buf_putc(&b, '\0'));
    return buf_steal(&b, NULL);
}

/* Whether text names the flag as a whole word ("--port" is not found in "--port-file"). */
static bool has_flag(const char *text, const char *flag)
{
    size_t n = strlen(flag);
    for (const char *p = strstr(text, flag); p; p = strstr(p + 1, flag)) {
        char after = p[n];
        bool word_end = !((after >= 'a' && after <= 'z') || (after >= '0' && after <= '9') ||
                          after == '-' || after == '_');
        if ((p == text || p[-1] == ' ') && word_end)
            return true;
    }
    return false;
}

Test(faults_cli, help_mentions_every_flag)
{
    static const char *const flags[] = {"--port",
                                        "--port-file",
                                        "--api-key",
                                        "--seed",
                                        "--pending-ms",
                                        "--running-ms",
                                        "--per-request-us",
                                        "--max-request-bytes",
                                        "--max-input-tokens",
                                        "--item-error-rate",
                                        "--item-error-code",
                                        "--fail-marker",
                                        "--batch-fail-rate",
                                        "--batch-expire-rate",
                                        "--batch-stuck-rate",
                                        "--http-error-rate",
                                        "--http-error-count",
                                        "--http-error-code",
                                        "--retry-delay",
                                        "--fault-scope",
                                        "--latency-ms",
                                        "--latency-rate",
                                        "--drop-rate",
                                        "--drop-count",
                                        "--malformed-rate",
                                        "--malformed-count",
                                        "--shuffle",
                                        "--omit-metadata",
                                        "--inline-as-file",
                                        "--upload-cut-rate",
                                        "--upload-cut-count",
                                        "--upload-cut-keep",
                                        "--upload-cut-status",
                                        "--upload-granularity",
                                        NULL};
    int st;
    char *out = run_sim_bin("--help", &st);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "--help exit status %d: %s", st, out);
    for (int i = 0; flags[i]; i++)
        cr_assert(has_flag(out, flags[i]), "--help does not mention %s", flags[i]);
    free(out);
}

Test(faults_cli, bad_flags_exit_nonzero)
{
    static const char *const bad[] = {"--no-such-flag",          "--item-error-rate=2",
                                      "--fault-scope=nowhere",   "--retry-delay=soon",
                                      "--upload-cut-status=200", NULL};
    for (int i = 0; bad[i]; i++) {
        int st;
        char *out = run_sim_bin(bad[i], &st);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) != 0, "%s: exit status %d", bad[i], st);
        cr_assert(out[0], "%s: no message", bad[i]);
        free(out);
    }
    int st;
    char *out = run_sim_bin("--no-such-flag", &st);
    cr_assert(strstr(out, "no-such-flag"), "the error does not name the flag: %s", out);
    free(out);
}

/* ---- 11. per-request running time ---- */

Test(faults, per_request_us_extends_running_time)
{
    simh_config(&sim, "{\"pending_ms\":0,\"running_ms\":0,\"per_request_us\":2000}");
    char *body = small_body("per-request", 100);
    int64_t t0 = simh_ms();
    json_object *op = simh_call(&sim, "POST", CREATE_PATH, body, 200);
    cr_assert_str_eq(simh_str(op, "metadata.state"), "BATCH_STATE_RUNNING",
                     "100 x 2000 us of running time, yet not RUNNING at creation");
    char *name = strdup(simh_str(op, "name"));
    json_object_put(op);
    op = simh_call(&sim, "GET", "/v1beta/batches", NULL, 200);
    if (simh_ms() - t0 < 150)
        cr_assert_str_eq(simh_str(op, "operations.0.metadata.state"), "BATCH_STATE_RUNNING");
    json_object_put(op);
    op = simh_wait_state(&sim, name, "BATCH_STATE_SUCCEEDED", 10000);
    int64_t took = simh_ms() - t0;
    cr_assert(took >= 200, "SUCCEEDED after %lld ms, want >= 200", (long long)took);
    int64_t run =
        time_ns(simh_str(op, "metadata.endTime")) - time_ns(simh_str(op, "metadata.createTime"));
    cr_assert_eq(run, 200000000LL, "endTime - createTime = %lld ns, want 200 ms", (long long)run);
    json_object_put(op);

    /* one item: 2 ms */
    char *one_body = small_body("per-request-one", 1);
    char *one = create(one_body);
    op = simh_wait_state(&sim, one, "BATCH_STATE_SUCCEEDED", 5000);
    run = time_ns(simh_str(op, "metadata.endTime")) - time_ns(simh_str(op, "metadata.createTime"));
    cr_assert_eq(run, 2000000LL, "endTime - createTime = %lld ns, want 2 ms", (long long)run);
    json_object_put(op);
    free(one);
    free(one_body);
    free(name);
    free(body);
}
