/* test_gemini_client.c: the libcurl Gemini client against a real gemini-sim: calls, results,
 * outcomes under faults. */
#include "harness.h"

#include "gemini/client.h"
#include "gemini/request.h"
#include "util/buf.h"

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MODEL  "gemini-embedding-001"
#define NATIVE 3072
#define TASK   "RETRIEVAL_DOCUMENT"
#define DIMS   8
#define T(k, s, title)                                                                             \
    {                                                                                              \
        k, s, sizeof(s) - 1, title                                                                 \
    }

static struct simh sim;
static struct gem_client *cli;

static const struct gem_text texts[] = {
    T("k-0", "first chunk", "Doc A"),
    T("k-1", "second chunk", NULL),
    T("k-2", "a third, somewhat longer chunk of text", NULL),
};
#define N_TEXTS SVC_ARRAY_LEN(texts)

static struct gem_client *client_for(const char *base, const char *key, long timeout_ms,
                                     size_t max_response)
{
    struct gem_client_opts o = {base, "v1beta", key, 2000, timeout_ms, max_response, NULL, 0};
    struct gem_client *c = gem_client_new(&o);
    cr_assert_not_null(c);
    return c;
}

static void setup(void)
{
    static const char *const f[] = {"--pending-ms=20", "--running-ms=20", NULL};
    cr_assert(gem_global_init());
    simh_start(&sim, f);
    cli = client_for(sim.base, SIMH_KEY, 10000, 0);
}

static void teardown(void)
{
    gem_client_free(cli);
    simh_stop(&sim);
    gem_global_cleanup();
}

TestSuite(gclient, .init = setup, .fini = teardown, .timeout = 60);

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Every call: the outcome and status wanted (http < 0: any), and never the key. */
static void expect(const struct gem_call *r, enum gem_outcome want, long http)
{
    cr_assert_null(strstr(r->detail, SIMH_KEY), "API key in detail: %s", r->detail);
    cr_assert_null(strstr(r->status.message, SIMH_KEY), "API key in status message");
    cr_assert_eq(r->outcome, want, "outcome %d, want %d (http %ld: %s)", r->outcome, want, r->http,
                 r->detail);
    if (http >= 0)
        cr_assert_eq(r->http, http, "http %ld, want %ld (%s)", r->http, http, r->detail);
    if (want != GEM_OK)
        cr_assert(r->detail[0], "a failure comes with a detail");
}

static struct gem_req_opts opts(const char *task, int dims)
{
    struct gem_req_opts o = {MODEL, task, dims};
    return o;
}

static void build_batch(struct buf *b, const char *display, const struct gem_text *t, size_t n)
{
    struct gem_req_opts o = opts(TASK, DIMS);
    buf_init(b, 1 << 20);
    cr_assert(gem_build_batch(b, display, &o, t, n));
}

/* Create an inline batch of the test texts; its name goes to name. */
static void create_ok(const char *display, char *name, size_t len)
{
    struct buf body;
    struct gem_operation op;
    struct gem_call res;
    build_batch(&body, display, texts, N_TEXTS);
    gem_create_batch(cli, MODEL, body.data, body.len, &op, &res);
    buf_cleanup(&body);
    expect(&res, GEM_OK, 200);
    cr_assert_eq(strncmp(op.name, "batches/", 8), 0, "name %s", op.name);
    cr_assert_str_eq(op.display_name, display);
    snprintf(name, len, "%s", op.name);
    gem_operation_free(&op);
}

/* Poll with the client until the batch is in state want (the Operation stays in op). */
static void wait_state(const char *name, enum gem_state want, struct gem_operation *op)
{
    int64_t deadline = simh_ms() + 10000;
    for (;;) {
        struct gem_call res;
        gem_get_batch(cli, name, op, &res);
        expect(&res, GEM_OK, 200);
        if (op->state == want)
            return;
        cr_assert(!gem_state_terminal(op->state), "batch ended %s", gem_state_name(op->state));
        cr_assert(simh_ms() < deadline, "batch still %s", gem_state_name(op->state));
        gem_operation_free(op);
        sleep_ms(10);
    }
}

/* The result's vector is exactly the documented one for t. */
static void assert_vector(const struct gem_result *r, const struct gem_text *t, const char *task,
                          int dims)
{
    static float exp[NATIVE];
    cr_assert_not_null(r->values, "item %s failed: %s", r->key ? r->key : "?", r->error.message);
    cr_assert_eq(r->dims, dims);
    simh_expected_vector(MODEL, NATIVE, task, t->text, t->text_len, dims, exp);
    for (int i = 0; i < dims; i++)
        cr_assert(memcmp(&r->values[i], &exp[i], sizeof(float)) == 0, "%s[%d]: %.9g != %.9g",
                  t->key, i, (double)r->values[i], (double)exp[i]);
}

static const struct gem_text *text_by_key(const char *key)
{
    for (size_t i = 0; key && i < N_TEXTS; i++)
        if (strcmp(texts[i].key, key) == 0)
            return &texts[i];
    cr_assert_fail("unknown key %s", key ? key : "(null)");
    return NULL;
}

/* ---- the calls ---- */

Test(gclient, create_get_until_succeeded_with_exact_results)
{
    char name[128];
    struct gem_operation op;
    create_ok("client-inline", name, sizeof(name));
    wait_state(name, GEM_STATE_SUCCEEDED, &op);
    cr_assert(op.done);
    cr_assert(op.has_inline);
    cr_assert_eq(op.n_results, N_TEXTS);
    for (size_t i = 0; i < N_TEXTS; i++) {
        cr_assert_str_eq(op.results[i].key, texts[i].key);
        assert_vector(&op.results[i], &texts[i], TASK, DIMS);
        cr_assert_gt(op.results[i].token_count, 0);
    }
    cr_assert_eq(op.request_count, 3);
    cr_assert_eq(op.successful_count, 3);
    gem_operation_free(&op);
    cr_assert_eq(simh_stat(&sim, "creates_accepted"), 1);
}

Test(gclient, list_follows_page_tokens)
{
    char names[5][128];
    for (int i = 0; i < 5; i++) {
        char display[32];
        snprintf(display, sizeof(display), "page-%d", i);
        create_ok(display, names[i], sizeof(names[i]));
    }
    char token[512] = "";
    int pages = 0, seen[5] = {0};
    size_t total = 0;
    do {
        struct gem_operation *ops;
        size_t n;
        char next[512];
        struct gem_call res;
        gem_list_batches(cli, 2, token, &ops, &n, next, sizeof(next), &res);
        expect(&res, GEM_OK, 200);
        cr_assert_leq(n, 2);
        for (size_t i = 0; i < n; i++) {
            for (int k = 0; k < 5; k++)
                seen[k] += strcmp(ops[i].name, names[k]) == 0;
            gem_operation_free(&ops[i]);
        }
        free(ops);
        total += n;
        snprintf(token, sizeof(token), "%s", next);
        cr_assert_lt(++pages, 10, "the pages never end");
    } while (token[0]);
    cr_assert_eq(pages, 3);
    cr_assert_eq(total, 5);
    for (int k = 0; k < 5; k++)
        cr_assert_eq(seen[k], 1, "batch %s listed %d times", names[k], seen[k]);
}

Test(gclient, cancel_then_cancelled)
{
    char name[128];
    struct gem_operation op;
    struct gem_call res;
    simh_config(&sim, "{\"pending_ms\":60000}");
    create_ok("client-cancel", name, sizeof(name));
    gem_cancel_batch(cli, name, &res);
    expect(&res, GEM_OK, 200);
    wait_state(name, GEM_STATE_CANCELLED, &op);
    cr_assert(op.done);
    gem_operation_free(&op);
    cr_assert_eq(simh_stat(&sim, "cancels"), 1);
}

Test(gclient, delete_then_unknown_is_fatal_404)
{
    char name[128];
    struct gem_operation op;
    struct gem_call res;
    create_ok("client-delete", name, sizeof(name));
    gem_delete_batch(cli, name, &res);
    expect(&res, GEM_OK, 200);
    gem_get_batch(cli, name, &op, &res);
    expect(&res, GEM_FATAL, 404);
    cr_assert_str_eq(res.status.status, "NOT_FOUND");
    cr_assert_eq(res.retry_after_ms, -1);
    gem_delete_batch(cli, name, &res);
    expect(&res, GEM_FATAL, 404);
    gem_cancel_batch(cli, "batches/doesnotexist000", &res);
    expect(&res, GEM_FATAL, 404);
    gem_get_batch(cli, "batches/doesnotexist000", &op, &res);
    expect(&res, GEM_FATAL, 404);
}

Test(gclient, sync_embed_exact_vectors)
{
    struct gem_req_opts o = opts("RETRIEVAL_QUERY", 16);
    struct buf body;
    buf_init(&body, 1 << 20);
    cr_assert(gem_build_sync(&body, &o, texts, N_TEXTS));
    struct gem_result *rs;
    size_t n;
    struct gem_call res;
    gem_embed_sync(cli, MODEL, body.data, body.len, &rs, &n, &res);
    buf_cleanup(&body);
    expect(&res, GEM_OK, 200);
    cr_assert_eq(n, N_TEXTS);
    for (size_t i = 0; i < n; i++) {
        assert_vector(&rs[i], &texts[i], "RETRIEVAL_QUERY", 16);
        gem_result_free(&rs[i]);
    }
    free(rs);
    cr_assert_eq(simh_stat(&sim, "sync_calls"), 1);
}

/* Upload the test texts as JSONL; the file name goes to name. */
static void upload_texts(char *name, size_t len)
{
    struct gem_req_opts o = opts(TASK, DIMS);
    struct buf jsonl;
    buf_init(&jsonl, 1 << 20);
    for (size_t i = 0; i < N_TEXTS; i++)
        cr_assert(gem_build_jsonl_line(&jsonl, &o, &texts[i]));
    struct gem_call res;
    gem_upload_file(cli, "client-input", jsonl.data, jsonl.len, name, len, &res);
    buf_cleanup(&jsonl);
    expect(&res, GEM_OK, 200);
    cr_assert_eq(strncmp(name, "files/", 6), 0, "file name %s", name);
    cr_assert_eq(simh_stat(&sim, "uploads_finalized"), 1);
}

/* Parse every line of a responses file and check it against the texts. */
static void check_result_lines(const char *p, size_t len)
{
    size_t lines = 0;
    int seen[N_TEXTS] = {0};
    while (len > 0) {
        const char *nl = memchr(p, '\n', len);
        size_t ll = nl ? (size_t)(nl - p) : len;
        if (ll > 0) {
            struct gem_result r;
            char err[256] = "";
            cr_assert(gem_parse_result_line(p, ll, &r, err, sizeof(err)), "line: %s", err);
            const struct gem_text *t = text_by_key(r.key);
            assert_vector(&r, t, TASK, DIMS);
            seen[t - texts]++;
            gem_result_free(&r);
            lines++;
        }
        p += nl ? ll + 1 : ll;
        len -= nl ? ll + 1 : ll;
    }
    cr_assert_eq(lines, N_TEXTS);
    for (size_t i = 0; i < N_TEXTS; i++)
        cr_assert_eq(seen[i], 1);
}

Test(gclient, file_upload_batch_download)
{
    char file[128], body[512], name[128];
    upload_texts(file, sizeof(file));
    snprintf(body, sizeof(body),
             "{\"batch\":{\"displayName\":\"x\",\"inputConfig\":{\"fileName\":\"%s\"}}}", file);
    struct gem_operation op;
    struct gem_call res;
    gem_create_batch(cli, MODEL, body, strlen(body), &op, &res);
    expect(&res, GEM_OK, 200);
    snprintf(name, sizeof(name), "%s", op.name);
    gem_operation_free(&op);
    wait_state(name, GEM_STATE_SUCCEEDED, &op);
    cr_assert(op.responses_file[0], "no responsesFile");
    struct buf out;
    buf_init(&out, 1 << 20);
    cr_assert(buf_puts(&out, "HEAD"));
    gem_download_file(cli, op.responses_file, &out, &res);
    expect(&res, GEM_OK, 200);
    cr_assert_eq(strncmp(out.data, "HEAD", 4), 0, "the download is appended");
    check_result_lines(out.data + 4, out.len - 4);
    cr_assert_eq(simh_stat(&sim, "downloads"), 1);

    /* too small a buffer: fatal, and the buffer is left as it was */
    struct buf small;
    buf_init(&small, 16);
    cr_assert(buf_puts(&small, "keep"));
    gem_download_file(cli, op.responses_file, &small, &res);
    expect(&res, GEM_FATAL, 200);
    cr_assert_str_eq(small.data, "keep");
    cr_assert_eq(small.len, 4);
    buf_cleanup(&small);
    buf_cleanup(&out);
    gem_operation_free(&op);

    gem_delete_file(cli, file, &res);
    expect(&res, GEM_OK, 200);
    gem_delete_file(cli, file, &res);
    expect(&res, GEM_FATAL, 404);
}

/* ---- HTTP errors ---- */

Test(gclient, rate_limited_with_retry_info)
{
    char name[128];
    struct buf body;
    struct gem_operation op;
    struct gem_call res;
    simh_config(&sim, "{\"http_error_count\":1,\"http_error_code\":429,\"retry_delay\":\"2s\","
                      "\"fault_scope\":\"create\"}");
    build_batch(&body, "client-429", texts, N_TEXTS);
    gem_create_batch(cli, MODEL, body.data, body.len, &op, &res);
    expect(&res, GEM_RETRY, 429);
    cr_assert_eq(res.retry_after_ms, 2000);
    cr_assert_str_eq(res.status.status, "RESOURCE_EXHAUSTED");
    cr_assert_eq(simh_stat(&sim, "creates_accepted"), 0);
    gem_create_batch(cli, MODEL, body.data, body.len, &op, &res);
    expect(&res, GEM_OK, 200);
    snprintf(name, sizeof(name), "%s", op.name);
    gem_operation_free(&op);
    buf_cleanup(&body);
    cr_assert_eq(simh_stat(&sim, "creates_accepted"), 1);
}

Test(gclient, rate_limited_without_retry_info)
{
    char name[128];
    struct gem_operation op;
    struct gem_call res;
    create_ok("client-429b", name, sizeof(name));
    simh_config(&sim, "{\"http_error_count\":1,\"http_error_code\":429,\"fault_scope\":\"get\"}");
    gem_get_batch(cli, name, &op, &res);
    expect(&res, GEM_RETRY, 429);
    cr_assert_eq(res.retry_after_ms, -1);
    gem_get_batch(cli, name, &op, &res);
    expect(&res, GEM_OK, 200);
    gem_operation_free(&op);
}

Test(gclient, unavailable_is_retry)
{
    struct buf body;
    struct gem_operation op;
    struct gem_call res;
    simh_config(&sim, "{\"http_error_count\":2,\"http_error_code\":503}");
    build_batch(&body, "client-503", texts, N_TEXTS);
    gem_create_batch(cli, MODEL, body.data, body.len, &op, &res);
    expect(&res, GEM_RETRY, 503);
    cr_assert_eq(res.retry_after_ms, -1);
    struct gem_result *rs;
    size_t n;
    gem_embed_sync(cli, MODEL, "{}", 2, &rs, &n, &res);
    expect(&res, GEM_RETRY, 503);
    cr_assert_null(rs);
    buf_cleanup(&body);
}

Test(gclient, bad_body_and_bad_arguments_are_fatal)
{
    static const char bad[] = "{\"batch\":{\"displayName\":\"x\"}}";
    struct gem_operation op;
    struct gem_call res;
    gem_create_batch(cli, MODEL, bad, sizeof(bad) - 1, &op, &res);
    expect(&res, GEM_FATAL, 400);
    cr_assert_str_eq(res.status.status, "INVALID_ARGUMENT");
    cr_assert_eq(simh_stat(&sim, "creates_accepted"), 0);

    /* refused before sending: http 0, nothing reaches the simulator */
    gem_get_batch(cli, "batches/../_sim/stats", &op, &res);
    expect(&res, GEM_FATAL, 0);
    gem_get_batch(cli, "files/abc", &op, &res);
    expect(&res, GEM_FATAL, 0);
    gem_create_batch(cli, "a/b?c", bad, sizeof(bad) - 1, &op, &res);
    expect(&res, GEM_FATAL, 0);
    gem_delete_file(cli, "batches/abc", &res);
    expect(&res, GEM_FATAL, 0);
    gem_cancel_batch(cli, "batches/a b", &res);
    expect(&res, GEM_FATAL, 0);
    cr_assert_eq(simh_stat(&sim, "gets"), 0);
    cr_assert_eq(simh_stat(&sim, "creates"), 1);
    cr_assert_eq(simh_stat(&sim, "cancels") + simh_stat(&sim, "file_deletes"), 0);
}

Test(gclient, wrong_key_is_fatal_and_never_in_detail)
{
    static const char key[] = "wrong-secret-key-0123456789";
    struct gem_client *c = client_for(sim.base, key, 10000, 0);
    struct buf body;
    struct gem_operation op;
    struct gem_call res;
    build_batch(&body, "client-key", texts, N_TEXTS);
    gem_create_batch(c, MODEL, body.data, body.len, &op, &res);
    cr_assert_eq(res.outcome, GEM_FATAL);
    cr_assert(res.http == 400 || res.http == 401 || res.http == 403, "http %ld", res.http);
    cr_assert_null(strstr(res.detail, key), "key in detail: %s", res.detail);
    cr_assert_null(strstr(res.status.message, key));
    gem_get_batch(c, "batches/abc", &op, &res);
    cr_assert_eq(res.outcome, GEM_FATAL);
    cr_assert_null(strstr(res.detail, key));
    buf_cleanup(&body);
    gem_client_free(c);
    cr_assert_eq(simh_stat(&sim, "creates_accepted"), 0);
    cr_assert_geq(simh_stat(&sim, "auth_failures"), 2);
}

/* ---- transport faults ---- */

Test(gclient, dropped_create_is_unknown_and_exists)
{
    struct buf body;
    struct gem_operation op, *ops;
    struct gem_call res;
    simh_config(&sim, "{\"drop_count\":1,\"fault_scope\":\"create\"}");
    build_batch(&body, "client-dropped", texts, N_TEXTS);
    gem_create_batch(cli, MODEL, body.data, body.len, &op, &res);
    buf_cleanup(&body);
    expect(&res, GEM_UNKNOWN, 200);
    cr_assert_str_eq(op.name, "");
    cr_assert_eq(simh_stat(&sim, "creates_accepted"), 1);
    cr_assert_eq(simh_stat(&sim, "faults.drop"), 1);

    /* reconcile as the header says: list and match the displayName */
    size_t n, found = 0;
    char next[256];
    gem_list_batches(cli, 100, NULL, &ops, &n, next, sizeof(next), &res);
    expect(&res, GEM_OK, 200);
    for (size_t i = 0; i < n; i++) {
        found += strcmp(ops[i].display_name, "client-dropped") == 0;
        gem_operation_free(&ops[i]);
    }
    free(ops);
    cr_assert_eq(found, 1);
}

Test(gclient, malformed_create_is_unknown)
{
    struct buf body;
    struct gem_operation op;
    struct gem_call res;
    simh_config(&sim, "{\"malformed_count\":1,\"fault_scope\":\"create\"}");
    build_batch(&body, "client-malformed", texts, N_TEXTS);
    gem_create_batch(cli, MODEL, body.data, body.len, &op, &res);
    buf_cleanup(&body);
    expect(&res, GEM_UNKNOWN, 200);
    cr_assert_eq(simh_stat(&sim, "creates_accepted"), 1);
    cr_assert_eq(simh_stat(&sim, "faults.malformed"), 1);
}

Test(gclient, malformed_or_dropped_get_is_retry)
{
    char name[128];
    struct gem_operation op;
    struct gem_call res;
    create_ok("client-get-faults", name, sizeof(name));
    simh_config(&sim, "{\"malformed_count\":1,\"fault_scope\":\"get\"}");
    gem_get_batch(cli, name, &op, &res);
    expect(&res, GEM_RETRY, 200);
    simh_config(&sim, "{\"drop_count\":1,\"fault_scope\":\"get\"}");
    gem_get_batch(cli, name, &op, &res);
    expect(&res, GEM_RETRY, 200);
    gem_get_batch(cli, name, &op, &res);
    expect(&res, GEM_OK, 200);
    gem_operation_free(&op);
    cr_assert_eq(simh_stat(&sim, "faults.malformed"), 1);
    cr_assert_eq(simh_stat(&sim, "faults.drop"), 1);
}

Test(gclient, response_past_the_cap)
{
    char name[128];
    struct gem_client *c = client_for(sim.base, SIMH_KEY, 10000, 64);
    struct buf body;
    struct gem_operation op;
    struct gem_call res;
    build_batch(&body, "client-cap", texts, N_TEXTS);
    gem_create_batch(c, MODEL, body.data, body.len, &op, &res);
    buf_cleanup(&body);
    expect(&res, GEM_UNKNOWN, 200);
    cr_assert(strstr(res.detail, "larger than 64 bytes"), "%s", res.detail);
    create_ok("client-cap2", name, sizeof(name));
    gem_get_batch(c, name, &op, &res);
    expect(&res, GEM_FATAL, 200);
    gem_client_free(c);
}

/* A port with nothing listening on it. */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    cr_assert(getsockname(fd, (struct sockaddr *)&a, &al) == 0);
    close(fd);
    return ntohs(a.sin_port);
}

Test(gclient, refused_connection_is_retry)
{
    char base[64];
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", closed_port());
    struct gem_client *c = client_for(base, SIMH_KEY, 5000, 0);
    struct buf body;
    struct gem_operation op;
    struct gem_call res;
    build_batch(&body, "client-refused", texts, N_TEXTS);
    gem_create_batch(c, MODEL, body.data, body.len, &op, &res);
    expect(&res, GEM_RETRY, 0);
    cr_assert(strstr(res.detail, "could not connect"), "%s", res.detail);
    gem_get_batch(c, "batches/abc", &op, &res);
    expect(&res, GEM_RETRY, 0);
    buf_cleanup(&body);
    gem_client_free(c);
}

Test(gclient, timeout_after_sending)
{
    char name[128];
    struct gem_client *c = client_for(sim.base, SIMH_KEY, 400, 0);
    struct buf body;
    struct gem_operation op;
    struct gem_call res;
    create_ok("client-slow-get", name, sizeof(name));
    simh_config(&sim, "{\"latency_ms\":1500,\"fault_scope\":\"create,get\"}");
    build_batch(&body, "client-slow", texts, N_TEXTS);
    gem_create_batch(c, MODEL, body.data, body.len, &op, &res);
    buf_cleanup(&body);
    expect(&res, GEM_UNKNOWN, 0);
    cr_assert(strstr(res.detail, "timed out"), "%s", res.detail);
    gem_get_batch(c, name, &op, &res);
    expect(&res, GEM_RETRY, 0);
    cr_assert(strstr(res.detail, "timed out"), "%s", res.detail);
    /* the create did reach the simulator: it makes the batch once its delay is over */
    int64_t deadline = simh_ms() + 5000;
    while (simh_stat(&sim, "creates_accepted") < 2 && simh_ms() < deadline)
        sleep_ms(50);
    cr_assert_eq(simh_stat(&sim, "creates_accepted"), 2);
    gem_client_free(c);
}

/* ---- a canned HTTP server, for what the simulator does not do ---- */

#define CANNED_MAX 3

struct canned {
    int fd, port;
    const char *replies[CANNED_MAX]; /* one whole HTTP response per connection */
    int n, served;
    char seen[CANNED_MAX][2048]; /* the start of each request */
    pthread_t th;
};

static long content_length(const char *head)
{
    char low[2048];
    size_t i = 0;
    for (; head[i] && i < sizeof(low) - 1; i++)
        low[i] = (char)tolower((unsigned char)head[i]);
    low[i] = '\0';
    const char *p = strstr(low, "\ncontent-length:");
    return p ? strtol(p + 16, NULL, 10) : 0;
}

/* Read one request (head, then Content-Length bytes); keep its start. */
static void read_request(int fd, char *seen, size_t cap)
{
    char buf[8192];
    size_t have = 0, head_end = 0, want = 0;
    while (have < sizeof(buf) - 1) {
        ssize_t r = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);
        if (r <= 0)
            break;
        have += (size_t)r;
        buf[have] = '\0';
        char *e = head_end ? NULL : strstr(buf, "\r\n\r\n");
        if (e) {
            head_end = (size_t)(e - buf) + 4;
            want = (size_t)content_length(buf);
        }
        if (head_end && have >= head_end + want)
            break;
    }
    snprintf(seen, cap, "%.*s", (int)have, buf);
}

static void *canned_run(void *arg)
{
    struct canned *cs = arg;
    for (int i = 0; i < cs->n; i++) {
        int fd = accept(cs->fd, NULL, NULL);
        if (fd < 0)
            break;
        read_request(fd, cs->seen[i], sizeof(cs->seen[i]));
        size_t len = strlen(cs->replies[i]);
        ssize_t w = send(fd, cs->replies[i], len, MSG_NOSIGNAL);
        (void)w;
        close(fd);
        cs->served = i + 1;
    }
    return NULL;
}

static void canned_start(struct canned *cs)
{
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cs->fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(cs->fd >= 0 && bind(cs->fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    cr_assert(listen(cs->fd, 8) == 0);
    cr_assert(getsockname(cs->fd, (struct sockaddr *)&a, &al) == 0);
    cs->port = ntohs(a.sin_port);
    cr_assert(pthread_create(&cs->th, NULL, canned_run, cs) == 0);
}

static void canned_stop(struct canned *cs)
{
    shutdown(cs->fd, SHUT_RDWR); /* wakes a pending accept */
    pthread_join(cs->th, NULL);
    close(cs->fd);
}

/* An HTTP/1.1 response with a JSON body (caller frees). */
static char *http_reply(const char *status_line, const char *headers, const char *json)
{
    struct buf b;
    buf_init(&b, 1 << 16);
    cr_assert(buf_printf(&b,
                         "HTTP/1.1 %s\r\nContent-Type: application/json\r\n%sContent-Length: "
                         "%zu\r\nConnection: close\r\n\r\n%s",
                         status_line, headers, strlen(json), json));
    return buf_steal(&b, NULL);
}

Test(gclient, key_echoed_by_the_server_is_redacted)
{
    /* the key in the message, and once more where the codec's 511-byte cut splits it */
    static const char lead[] = "API key not valid: " SIMH_KEY ". ";
    char msg[600];
    size_t pad = 507 - (sizeof(lead) - 1);
    snprintf(msg, sizeof(msg), "%s%*s%s", lead, (int)pad, "", SIMH_KEY);
    char json[800];
    snprintf(json, sizeof(json),
             "{\"error\":{\"code\":400,\"message\":\"%s\\nnext line\","
             "\"status\":\"INVALID_ARGUMENT\"}}",
             msg);
    struct canned cs = {.n = 1};
    char *reply = http_reply("400 Bad Request", "", json);
    cs.replies[0] = reply;
    canned_start(&cs);
    char base[64];
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", cs.port);
    struct gem_client *c = client_for(base, SIMH_KEY, 5000, 0);
    struct gem_operation op;
    struct gem_call res;
    gem_get_batch(c, "batches/abc", &op, &res);
    canned_stop(&cs);
    expect(&res, GEM_FATAL, 400);
    cr_assert(strstr(res.detail, "API key not valid"), "%s", res.detail);
    cr_assert_null(strchr(res.detail, '\n'));
    cr_assert_null(strstr(res.status.message, "test"), "key prefix left: %s",
                   res.status.message + 490);
    cr_assert(strstr(cs.seen[0], "GET /v1beta/batches/abc HTTP/1.1\r\n"), "%s", cs.seen[0]);
    cr_assert(strstr(cs.seen[0], "\r\nx-goog-api-key: " SIMH_KEY "\r\n"), "%s", cs.seen[0]);
    gem_client_free(c);
    free(reply);
}

Test(gclient, cancel_sends_a_body)
{
    struct canned cs = {.n = 1};
    char *reply = http_reply("200 OK", "", "{}");
    cs.replies[0] = reply;
    canned_start(&cs);
    char base[64];
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", cs.port);
    struct gem_client *c = client_for(base, SIMH_KEY, 5000, 0);
    struct gem_call res;
    gem_cancel_batch(c, "batches/abc", &res);
    canned_stop(&cs);
    expect(&res, GEM_OK, 200);
    cr_assert(strstr(cs.seen[0], "POST /v1beta/batches/abc:cancel HTTP/1.1\r\n"), "%s", cs.seen[0]);
    cr_assert(strstr(cs.seen[0], "\r\nContent-Length: 2\r\n"), "%s", cs.seen[0]);
    cr_assert(strstr(cs.seen[0], "\r\n\r\n{}"), "%s", cs.seen[0]);
    gem_client_free(c);
    free(reply);
}

Test(gclient, upload_url_header_any_case_same_host_only)
{
    char hdr[160];
    struct canned cs = {.n = 2};
    canned_start(&cs);
    snprintf(hdr, sizeof(hdr), "x-GOOG-upload-url: http://127.0.0.1:%d/up?upload_id=u1\r\n",
             cs.port);
    char *start = http_reply("200 OK", hdr, "{}");
    char *final = http_reply("200 OK", "X-Goog-Upload-Status: final\r\n",
                             "{\"file\":{\"name\":\"files/abc123\",\"state\":\"ACTIVE\"}}");
    cs.replies[0] = start;
    cs.replies[1] = final;
    char base[64], name[64];
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", cs.port);
    struct gem_client *c = client_for(base, SIMH_KEY, 5000, 0);
    struct gem_call res;
    gem_upload_file(c, "in", "{\"key\":\"a\"}\n", 12, name, sizeof(name), &res);
    canned_stop(&cs);
    expect(&res, GEM_OK, 200);
    cr_assert_str_eq(name, "files/abc123");
    cr_assert(strstr(cs.seen[0], "POST /upload/v1beta/files HTTP/1.1\r\n"), "%s", cs.seen[0]);
    cr_assert(strstr(cs.seen[0], "X-Goog-Upload-Header-Content-Length: 12\r\n"));
    cr_assert(strstr(cs.seen[1], "POST /up?upload_id=u1 HTTP/1.1\r\n"), "%s", cs.seen[1]);
    cr_assert(strstr(cs.seen[1], "X-Goog-Upload-Command: upload, finalize\r\n"));
    cr_assert(strstr(cs.seen[1], "\r\n\r\n{\"key\":\"a\"}\n"), "%s", cs.seen[1]);
    free(start);
    free(final);

    /* a session URL on another host would get the key: refused, nothing sent there */
    struct canned other = {.n = 1};
    char *elsewhere =
        http_reply("200 OK", "X-Goog-Upload-URL: http://198.51.100.7:9/up?upload_id=u2\r\n", "{}");
    other.replies[0] = elsewhere;
    canned_start(&other);
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", other.port);
    struct gem_client *c2 = client_for(base, SIMH_KEY, 5000, 0);
    gem_upload_file(c2, "in", "x", 1, name, sizeof(name), &res);
    canned_stop(&other);
    expect(&res, GEM_FATAL, 200);
    cr_assert(strstr(res.detail, "not on the API host"), "%s", res.detail);
    cr_assert_str_eq(name, "");
    free(elsewhere);
    gem_client_free(c2);
    gem_client_free(c);
}

Test(gclient, create_not_fully_sent_is_retry)
{
    /* a listener that never accepts: the kernel takes a few MB, then sending stalls */
    struct canned cs = {.n = 0};
    canned_start(&cs);
    char base[64];
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", cs.port);
    struct gem_client *c = client_for(base, SIMH_KEY, 500, 0);
    size_t len = (size_t)48 << 20;
    char *body = malloc(len);
    cr_assert_not_null(body);
    memset(body, ' ', len);
    struct gem_operation op;
    struct gem_call res;
    gem_create_batch(c, MODEL, body, len, &op, &res);
    canned_stop(&cs);
    expect(&res, GEM_RETRY, 0);
    cr_assert(strstr(res.detail, "before the request was sent"), "%s", res.detail);
    free(body);
    gem_client_free(c);
}
