/*
 * test_ndjson.c: streaming NDJSON ingest (POST /v1/jobs, Content-Type:
 * application/x-ndjson) and streaming NDJSON export (GET /v1/jobs/{id}/results,
 * Accept: application/x-ndjson) against a real `embedd serve` and database.
 */
#include "harness.h"
#include "svch.h"

#include "util/buf.h"

#include <criterion/criterion.h>
#include <curl/curl.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_BODY   "1048576" /* the JSON body limit in this suite: 1 MiB */
#define MAX_BODY_N ((size_t)1048576)

static struct svch svc;

static void start(void)
{
    static const char *const flags[] = {"--max-body-bytes=" MAX_BODY, "--max-stream-bytes=67108864",
                                        "--db-pool-size=4", "--workers=1", NULL};
    /* a small ASan quarantine, so that the RSS bound measures embedd, not the sanitizer */
    const char *asan = getenv("ASAN_OPTIONS");
    char opts[512];
    snprintf(opts, sizeof(opts), "%s%squarantine_size_mb=4", asan ? asan : "",
             asan && *asan ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
    svch_start(&svc, flags);
}

static void stop(void)
{
    svch_stop(&svc);
}

TestSuite(ndjson, .init = start, .fini = stop, .timeout = 600);

/* ---- helpers ---- */

static void call(struct simh_resp *r, const char *method, const char *path, const char *ctype,
                 const char *accept, const char *body, size_t len)
{
    char url[256], auth[128], ct[96], ac[96];
    snprintf(url, sizeof(url), "%s%s", svc.base, path);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", svc.key);
    snprintf(ct, sizeof(ct), "Content-Type: %s", ctype ? ctype : "application/json");
    snprintf(ac, sizeof(ac), "Accept: %s", accept ? accept : "application/json");
    const char *hs[4] = {auth, body ? ct : ac, body ? ac : NULL, NULL};
    simh_req_url(r, method, url, body, len, hs);
    cr_assert_eq(r->curl_code, 0, "%s %s: transfer failed", method, path);
}

static int connect_svc(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)svc.port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        cr_assert(w > 0, "send failed");
        p += w;
        n -= (size_t)w;
    }
}

/* POST an NDJSON body over a raw socket in pieces of `piece` bytes (each its
 * own TCP write), then read the whole reply (Connection: close). */
static void raw_post(struct simh_resp *r, const char *body, size_t len, size_t piece)
{
    int fd = connect_svc();
    char head[512];
    int hl = snprintf(head, sizeof(head),
                      "POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                      "Content-Type: application/x-ndjson\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n\r\n",
                      svc.key, len);
    send_all(fd, head, (size_t)hl);
    for (size_t off = 0; off < len; off += piece)
        send_all(fd, body + off, len - off < piece ? len - off : piece);
    struct buf in;
    buf_init(&in, 1 << 24);
    char tmp[4096];
    ssize_t n;
    while ((n = recv(fd, tmp, sizeof(tmp), 0)) > 0)
        cr_assert(buf_append(&in, tmp, (size_t)n));
    close(fd);
    cr_assert(in.len > 12, "no reply");
    memset(r, 0, sizeof(*r));
    r->status = strtol(in.data + 9, NULL, 10);
    char *sep = strstr(in.data, "\r\n\r\n");
    cr_assert(sep);
    r->headers = strndup(in.data, (size_t)(sep - in.data) + 2);
    r->body = strdup(sep + 4);
    r->len = strlen(r->body);
    buf_cleanup(&in);
}

static long long count_stored(void)
{
    return dbh_scalar(&svc.db, "SELECT (SELECT count(*) FROM jobs) + (SELECT count(*) FROM "
                               "documents) + (SELECT count(*) FROM chunks)");
}

/* A document line: id "d<i>", a text of about `chars` characters. */
static void doc_line(struct buf *b, const char *id, size_t chars, const char *extra)
{
    cr_assert(buf_printf(b, "{\"id\":\"%s\",%s\"text\":\"", id, extra ? extra : ""));
    static const char *const words[] = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta"};
    for (size_t k = 0, n = 0; n < chars; k++) {
        const char *w = words[(k * 7 + strlen(id)) % 6];
        cr_assert(buf_printf(b, "%s%s", w, k % 11 == 10 ? ".\\n\\n" : " "));
        n += strlen(w) + 1;
    }
    cr_assert(buf_puts(b, "\"}"));
}

static const char options[] = "{\"display_name\":\"nd\",\"chunking\":{\"max_chars\":300,"
                              "\"overlap_chars\":50},\"priority\":3}";

/* The same documents as an NDJSON body and as a JSON body. */
static void both_bodies(struct buf *nd, struct buf *js, int n_docs, size_t chars)
{
    buf_init(nd, SIZE_MAX / 2);
    buf_init(js, SIZE_MAX / 2);
    cr_assert(buf_printf(nd, "%s\n", options));
    cr_assert(buf_printf(js, "%.*s,\"documents\":[", (int)strlen(options) - 1, options));
    for (int i = 0; i < n_docs; i++) {
        char id[32];
        snprintf(id, sizeof(id), "doc-%d", i);
        const char *extra = i % 3 == 0
                                ? "\"title\":\"T\\t\\u00e9\",\"metadata\":{\"z\":1,\"a\":[1,2]},"
                            : i % 3 == 1 ? "\"title\":null,"
                                         : NULL;
        size_t at = nd->len;
        doc_line(nd, id, chars + (size_t)i * 37 % 500, extra);
        cr_assert(buf_append(js, nd->data + at, nd->len - at));
        cr_assert(buf_puts(nd, i % 4 == 3 ? "\r\n\n" : "\n")); /* CRLF and blank lines too */
        cr_assert(buf_puts(js, i + 1 < n_docs ? "," : "]}"));
    }
}

static char *post_ndjson_ok(const char *body, size_t len, int want_docs)
{
    struct simh_resp r;
    call(&r, "POST", "/v1/jobs", "application/x-ndjson", NULL, body, len);
    cr_assert_eq(r.status, 202, "%ld: %s", r.status, r.body);
    json_object *o = simh_json(&r);
    cr_assert_eq(json_object_get_int(simh_get(o, "stats.documents")), want_docs);
    char *id = strdup(simh_str(o, "id"));
    char loc[128], want[128];
    cr_assert(simh_header(&r, "Location", loc, sizeof(loc)));
    snprintf(want, sizeof(want), "/v1/jobs/%s", id);
    cr_assert_str_eq(loc, want);
    json_object_put(o);
    simh_resp_free(&r);
    return id;
}

/* ---- ingest ---- */

Test(ndjson, ingest_split_across_tiny_writes)
{
    static const char body[] =
        "{\"display_name\":\"split\",\"task_type\":\"CLUSTERING\"}\n"
        "{\"id\":\"a\",\"title\":\"A\",\"metadata\":{\"k\":1},\"text\":\"First paragraph.\\n\\n"
        "Second paragraph, with more words in it.\"}\r\n"
        "\n"
        "{\"id\":\"b\",\"text\":\"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe6\x96\x87\"}\n"
        "{\"id\":\"c\",\"text\":\"no final newline\"}";
    struct simh_resp r;
    raw_post(&r, body, strlen(body), 3);
    cr_assert_eq(r.status, 202, "%ld: %s", r.status, r.body);
    json_object *o = simh_json(&r);
    const char *id = simh_str(o, "id");
    cr_assert_str_eq(simh_str(o, "state"), "pending");
    cr_assert_str_eq(simh_str(o, "display_name"), "split");
    cr_assert_str_eq(simh_str(o, "settings.task_type"), "CLUSTERING");
    cr_assert_eq(json_object_get_int(simh_get(o, "stats.documents")), 3);
    cr_assert_eq(json_object_get_int(simh_get(o, "stats.chunks.total")), 3);
    cr_assert_eq(json_object_get_int(simh_get(o, "stats.chunks.pending")), 3);
    char loc[128];
    cr_assert(simh_header(&r, "Location", loc, sizeof(loc)));
    cr_assert(strstr(loc, id));
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM documents WHERE job_id = '%s' AND ((doc_index = 0 AND doc_id = "
             "'a' AND title = 'A' AND metadata::text = '{\"k\":1}') OR (doc_index = 1 AND doc_id = "
             "'b' AND chars = 5 AND title IS NULL) OR (doc_index = 2 AND doc_id = 'c'))",
             id);
    cr_assert_eq(dbh_scalar(&svc.db, sql), 3);
    snprintf(
        sql, sizeof(sql),
        "SELECT count(*) FROM chunks WHERE job_id = '%s' AND seq = 1 AND doc_index = 1 AND "
        "text = '\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe6\x96\x87' AND char_end = 5",
        id);
    cr_assert_eq(dbh_scalar(&svc.db, sql), 1);
    json_object_put(o);
    simh_resp_free(&r);
}

Test(ndjson, ingest_equals_json_body)
{
    struct buf nd, js;
    both_bodies(&nd, &js, 60, 700);
    struct simh_resp r;
    call(&r, "POST", "/v1/jobs", "application/json", NULL, js.data, js.len);
    cr_assert_eq(r.status, 202, "%ld: %s", r.status, r.body);
    json_object *a = simh_json(&r);
    simh_resp_free(&r);
    char *b_id = post_ndjson_ok(nd.data, nd.len, 60);
    char path[96];
    snprintf(path, sizeof(path), "/v1/jobs/%s", b_id);
    call(&r, "GET", path, NULL, NULL, NULL, 0);
    json_object *b = simh_json(&r);
    simh_resp_free(&r);
    const char *a_id = simh_str(a, "id");
    /* same settings and stats */
    cr_assert(json_object_equal(simh_get(a, "settings"), simh_get(b, "settings")));
    cr_assert_eq(json_object_get_int(simh_get(a, "stats.chunks.total")),
                 json_object_get_int(simh_get(b, "stats.chunks.total")));
    cr_assert(json_object_get_int(simh_get(a, "stats.chunks.total")) > 60, "several chunks");
    cr_assert_eq(json_object_get_int64(simh_get(a, "stats.token_estimate")),
                 json_object_get_int64(simh_get(b, "stats.token_estimate")));
    /* the same rows, column by column */
    char sql[1024];
    static const char *const tables[][2] = {
        {"chunks", "seq, doc_index, chunk_index, char_start, char_end, tokens, text, state"},
        {"documents", "doc_index, doc_id, title, metadata::text, chars"}};
    for (int t = 0; t < 2; t++) {
        snprintf(sql, sizeof(sql),
                 "SELECT (SELECT count(*) FROM %s WHERE job_id = '%s') - (SELECT count(*) FROM %s "
                 "WHERE job_id = '%s') + (SELECT count(*) FROM (SELECT %s FROM %s WHERE job_id = "
                 "'%s' EXCEPT SELECT %s FROM %s WHERE job_id = '%s') x)",
                 tables[t][0], a_id, tables[t][0], b_id, tables[t][1], tables[t][0], a_id,
                 tables[t][1], tables[t][0], b_id);
        cr_assert_eq(dbh_scalar(&svc.db, sql), 0, "%s differ", tables[t][0]);
    }
    json_object_put(a);
    json_object_put(b);
    free(b_id);
    buf_cleanup(&nd);
    buf_cleanup(&js);
}

Test(ndjson, ingest_body_bigger_than_max_body_bytes)
{
    struct buf nd, js;
    both_bodies(&nd, &js, 300, 9000); /* ~3 MB: three times max-body-bytes */
    cr_assert(nd.len > 3 * MAX_BODY_N - 200000, "%zu", nd.len);
    struct simh_resp r;
    call(&r, "POST", "/v1/jobs", "application/json", NULL, js.data, js.len);
    cr_assert_eq(r.status, 413, "%ld: %s", r.status, r.body);
    cr_assert(strstr(r.body, "\"body_too_large\""), "%s", r.body);
    simh_resp_free(&r);
    cr_assert_eq(count_stored(), 0);
    char *id = post_ndjson_ok(nd.data, nd.len, 300);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT (sum(length(text)) > 2500000)::int FROM chunks WHERE job_id = '%s'", id);
    cr_assert_eq(dbh_scalar(&svc.db, sql), 1);
    free(id);
    buf_cleanup(&nd);
    buf_cleanup(&js);
}

struct bad_case {
    const char *name;
    const char *body;
    long status;
    const char *code;
    const char *pointer; /* NULL: none */
    const char *detail;  /* a substring of the detail, or NULL */
};

static void expect_problem(const struct simh_resp *r, const struct bad_case *c)
{
    cr_assert_eq(r->status, c->status, "%s: %ld: %s", c->name, r->status, r->body);
    json_object *o = simh_json(r);
    cr_assert_str_eq(simh_str(o, "code"), c->code, "%s: %s", c->name, r->body);
    if (c->pointer)
        cr_assert_str_eq(simh_str(o, "errors.0.pointer"), c->pointer, "%s: %s", c->name, r->body);
    else
        cr_assert_null(simh_get(o, "errors"), "%s: %s", c->name, r->body);
    if (c->detail)
        cr_assert(strstr(simh_str(o, "detail"), c->detail), "%s: %s", c->name, r->body);
    json_object_put(o);
}

Test(ndjson, ingest_errors_store_nothing)
{
#define OPT    "{\"display_name\":\"x\"}\n"
#define DOC(i) "{\"id\":\"" #i "\",\"text\":\"text " #i "\"}\n"
    static const struct bad_case cases[] = {
        {"doc not json", OPT DOC(0) "{\"id\":\"1\",\"text\":\n" DOC(2), 400, "invalid_json",
         "/documents/1", "(line 3)"},
        {"options not json", "{\"display_name\"\n" DOC(0), 400, "invalid_json", NULL, "(line 1)"},
        {"documents in options", "{\"documents\":[]}\n" DOC(0), 400, "unknown_field", "/documents",
         NULL},
        {"unknown option", "{\"colour\":1}\n" DOC(0), 400, "unknown_field", "/colour", NULL},
        {"bad model", "{\"model\":\"nope\"}\n" DOC(0), 422, "unknown_model", "/model", NULL},
        {"unknown doc field", OPT DOC(0) "{\"id\":\"1\",\"text\":\"t\",\"x\":1}\n", 400,
         "unknown_field", "/documents/1/x", "(line 3)"},
        {"wrong type", OPT "{\"id\":\"0\",\"text\":7}\n", 400, "invalid_type", "/documents/0/text",
         NULL},
        {"doc not an object", OPT "[1]\n", 400, "invalid_type", "/documents/0", NULL},
        {"empty text", OPT DOC(0) "\n" DOC(1) "{\"id\":\"2\",\"text\":\"  \"}\n", 422, "empty_text",
         "/documents/2/text", "(line 5)"},
        {"missing id", OPT "{\"text\":\"t\"}\n", 422, "missing_field", "/documents/0/id", NULL},
        {"duplicate id", OPT DOC(0) DOC(1) DOC(0), 422, "duplicate_id", "/documents/2/id",
         "/documents/0"},
        {"invalid utf-8", OPT "{\"id\":\"0\",\"text\":\"\xc0\xaf\"}\n", 400, "invalid_json",
         "/documents/0", NULL},
        {"options only", OPT "\n\n", 422, "no_documents", "/documents", NULL},
        {"empty body", "", 400, "invalid_json", NULL, NULL},
        {"blank body", "\n \n", 400, "invalid_json", NULL, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct simh_resp r;
        call(&r, "POST", "/v1/jobs", "application/x-ndjson", NULL, cases[i].body,
             strlen(cases[i].body));
        expect_problem(&r, &cases[i]);
        simh_resp_free(&r);
        cr_assert_eq(count_stored(), 0, "%s: something was stored", cases[i].name);
    }
    /* a bad key: 401, nothing read into the database */
    struct simh_resp r;
    char url[128];
    snprintf(url, sizeof(url), "%s/v1/jobs", svc.base);
    const char *hs[] = {"Authorization: Bearer nope", "Content-Type: application/x-ndjson", NULL};
    simh_req_url(&r, "POST", url, OPT DOC(0), strlen(OPT DOC(0)), hs);
    cr_assert_eq(r.status, 401, "%s", r.body);
    simh_resp_free(&r);
    cr_assert_eq(count_stored(), 0);
#undef OPT
#undef DOC
}

Test(ndjson, ingest_late_errors_roll_back_flushed_batches)
{
    /* ~6 MB of documents first, so that earlier batches were already COPYed
     * when the bad line comes: a duplicate id (checked against the stored
     * row), a bad line, a line over max-body-bytes */
    struct buf b;
    buf_init(&b, SIZE_MAX / 2);
    cr_assert(buf_puts(&b, "{}\n"));
    for (int i = 0; i < 700; i++) {
        char id[32];
        snprintf(id, sizeof(id), "k%d", i);
        doc_line(&b, id, 9000, NULL);
        cr_assert(buf_putc(&b, '\n'));
    }
    size_t base = b.len;
    static const struct bad_case cases[] = {
        {"late duplicate", "{\"id\":\"k3\",\"text\":\"again\"}\n", 422, "duplicate_id",
         "/documents/700/id", "/documents/3 (line 702)"},
        {"late bad line", "{\"id\":\"z\",\"text\":\"x\"} trailing\n", 400, "invalid_json",
         "/documents/700", "(line 702)"},
        {"line too long", NULL, 413, "line_too_large", NULL, "line 702"},
    };
    for (size_t i = 0; i < 3; i++) {
        b.len = base;
        if (cases[i].body) {
            cr_assert(buf_puts(&b, cases[i].body));
        } else {
            doc_line(&b, "huge", MAX_BODY_N + 1000, NULL);
            cr_assert(buf_putc(&b, '\n'));
        }
        cr_assert(buf_puts(&b, "{\"id\":\"after\",\"text\":\"t\"}\n"));
        struct simh_resp r;
        call(&r, "POST", "/v1/jobs", "application/x-ndjson", NULL, b.data, b.len);
        expect_problem(&r, &cases[i]);
        simh_resp_free(&r);
        cr_assert_eq(count_stored(), 0, "%s: something was stored", cases[i].name);
    }
    buf_cleanup(&b);
}

/* The same in a collection upsert, where documents are compared with the
 * collection's in groups and their rows go out in larger batches: a
 * duplicate of a document that was compared (and maybe stored) long before
 * is still found, and nothing is stored. */
Test(ndjson, collection_upsert_late_duplicate)
{
    struct simh_resp r;
    static const char coll_body[] = "{\"name\":\"dups\",\"output_dimensionality\":768}";
    call(&r, "POST", "/v1/collections", NULL, NULL, coll_body, strlen(coll_body));
    cr_assert_eq(r.status, 201, "%s", r.body);
    json_object *c = simh_json(&r);
    char first[160];
    snprintf(first, sizeof(first), "{\"collection\":\"%s\"}\n", simh_str(c, "id"));
    json_object_put(c);
    simh_resp_free(&r);
    struct buf b;
    buf_init(&b, SIZE_MAX / 2);
    cr_assert(buf_puts(&b, first));
    for (int i = 0; i < 1500; i++) {
        char id[32];
        snprintf(id, sizeof(id), "c%d", i);
        doc_line(&b, id, 200, NULL);
        cr_assert(buf_putc(&b, '\n'));
    }
    cr_assert(buf_puts(&b, "{\"id\":\"c3\",\"text\":\"again\"}\n"));
    call(&r, "POST", "/v1/jobs", "application/x-ndjson", NULL, b.data, b.len);
    static const struct bad_case dup = {"collection duplicate", NULL,          422, "duplicate_id",
                                        "/documents/1500/id",   "/documents/3"};
    expect_problem(&r, &dup);
    simh_resp_free(&r);
    buf_cleanup(&b);
    cr_assert_eq(count_stored(), 0, "something was stored");
    cr_assert_eq(dbh_scalar(&svc.db, "SELECT count(*) FROM collection_documents"), 0);
}

Test(ndjson, ingest_limits)
{
    /* more documents than job-max-documents: tests/api/test_job_limits.c */
    struct simh_resp r;
    /* a declared length over max-stream-bytes is refused before anything is read */
    char url[128], auth[128];
    snprintf(url, sizeof(url), "%s/v1/jobs", svc.base);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", svc.key);
    size_t big = 67108864 + 10;
    char *body = malloc(big);
    cr_assert(body);
    memset(body, '\n', big);
    const char *hs[] = {auth, "Content-Type: application/x-ndjson", NULL};
    simh_req_url(&r, "POST", url, body, big, hs);
    cr_assert_eq(r.status, 413, "%ld %s", r.status, r.body);
    cr_assert(strstr(r.body, "body_too_large"));
    simh_resp_free(&r);
    free(body);
    cr_assert_eq(count_stored(), 0);
}

/* ---- export ---- */

/* A job of n one-chunk documents; chunk seq % 10: 1 failed, 2 pending, the
 * others succeeded (a 768-float vector). Returns its id. */
static char *export_job(int n)
{
    struct buf b;
    buf_init(&b, SIZE_MAX / 2);
    cr_assert(buf_puts(&b, "{\"display_name\":\"export\"}\n"));
    for (int i = 0; i < n; i++)
        cr_assert(buf_printf(&b, "{\"id\":\"e%06d\",\"text\":\"text of document %d\"}\n", i, i));
    char *id = post_ndjson_ok(b.data, b.len, n);
    buf_cleanup(&b);
    char sql[1024];
    /* a 768-float vector of values in ±[0.125, 0.5) (random mantissas), the chunk's seq in
     * its first bytes so that rows differ */
    snprintf(
        sql, sizeof(sql),
        "WITH v AS (SELECT decode(string_agg(substr(md5(k::text), 1, 6) ||"
        "   CASE WHEN k %% 2 = 0 THEN '3e' ELSE 'be' END, '' ORDER BY k), 'hex') AS e"
        "   FROM generate_series(1, 768) k),"
        " u AS (UPDATE chunks SET state = 2, embedding = set_byte(set_byte(v.e, 0, seq %% 256),"
        "   1, (seq / 256) %% 256) FROM v"
        "   WHERE job_id = '%s' AND seq %% 10 NOT IN (1, 2) RETURNING 1)"
        " SELECT count(*) FROM u",
        id);
    cr_assert_eq(dbh_scalar(&svc.db, sql), n - n / 10 * 2 - (n % 10 > 1) - (n % 10 > 2));
    snprintf(sql, sizeof(sql),
             "WITH u AS (UPDATE chunks SET state = 3, error = 'failed: ' || seq"
             " WHERE job_id = '%s' AND seq %% 10 = 1 RETURNING 1) SELECT count(*) FROM u",
             id);
    cr_assert_eq(dbh_scalar(&svc.db, sql), n / 10 + (n % 10 > 1));
    return id;
}

struct sink {
    struct buf *keep; /* NULL: count and discard */
    size_t bytes, lines;
    pid_t pid;
    long rss_max_kb;
    size_t next_sample;
};

static long rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    cr_assert(f);
    long kb = -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    fclose(f);
    return kb;
}

static size_t on_data(char *p, size_t size, size_t n, void *cls)
{
    struct sink *s = cls;
    size_t len = size * n;
    if (s->keep)
        cr_assert(buf_append(s->keep, p, len));
    for (size_t i = 0; i < len; i++)
        s->lines += p[i] == '\n';
    s->bytes += len;
    if (s->bytes >= s->next_sample) {
        long kb = rss_kb(s->pid);
        if (kb > s->rss_max_kb)
            s->rss_max_kb = kb;
        s->next_sample = s->bytes + (1 << 20);
    }
    return len;
}

/* GET the NDJSON export through libcurl; returns the HTTP status. */
static long stream_export(const char *id, struct sink *s, char *ctype, size_t ctype_len)
{
    char url[256], auth[128];
    snprintf(url, sizeof(url), "%s/v1/jobs/%s/results", svc.base, id);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", svc.key);
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, auth);
    h = curl_slist_append(h, "Accept: application/x-ndjson");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 300L);
    CURLcode rc = curl_easy_perform(c);
    cr_assert_eq(rc, CURLE_OK, "export transfer: %s", curl_easy_strerror(rc));
    long status = 0;
    char *ct = NULL;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
    snprintf(ctype, ctype_len, "%s", ct ? ct : "");
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

Test(ndjson, export_all_in_order_equals_paged_json)
{
    int n = 1234;
    char *id = export_job(n);
    struct buf out;
    buf_init(&out, SIZE_MAX / 2);
    struct sink s = {.keep = &out, .pid = svc.pid};
    char ct[128];
    cr_assert_eq(stream_export(id, &s, ct, sizeof(ct)), 200);
    cr_assert_str_eq(ct, "application/x-ndjson");
    cr_assert_eq(s.lines, (size_t)n);
    cr_assert_eq(out.data[out.len - 1], '\n');

    /* the paged JSON, page by page, gives the same objects in the same order */
    char path[256], cursor[32] = "";
    char *line = out.data;
    int seen = 0, pages = 0;
    do {
        snprintf(path, sizeof(path), "/v1/jobs/%s/results?limit=500%s%s", id,
                 cursor[0] ? "&cursor=" : "", cursor);
        struct simh_resp r;
        call(&r, "GET", path, NULL, NULL, NULL, 0);
        cr_assert_eq(r.status, 200, "%s", r.body);
        json_object *o = simh_json(&r);
        simh_resp_free(&r);
        json_object *items = simh_get(o, "results");
        for (size_t i = 0; i < json_object_array_length(items); i++) {
            char *nl = strchr(line, '\n');
            cr_assert(nl);
            *nl = '\0';
            json_object *row = json_tokener_parse(line);
            cr_assert(row, "line %d is not JSON", seen);
            cr_assert(json_object_equal(row, json_object_array_get_idx(items, i)),
                      "line %d differs from the paged item", seen);
            char want[32];
            snprintf(want, sizeof(want), "e%06d", seen);
            cr_assert_str_eq(simh_str(row, "document_id"), want);
            cr_assert_str_eq(simh_str(row, "state"), seen % 10 == 1   ? "failed"
                                                     : seen % 10 == 2 ? "pending"
                                                                      : "succeeded");
            if (seen % 10 > 2 || seen % 10 == 0)
                cr_assert_eq(json_object_array_length(simh_get(row, "embedding")), 768);
            json_object_put(row);
            line = nl + 1;
            seen++;
        }
        json_object *next = simh_get(o, "next_cursor");
        snprintf(cursor, sizeof(cursor), "%s",
                 json_object_is_type(next, json_type_string) ? json_object_get_string(next) : "");
        json_object_put(o);
        pages++;
    } while (cursor[0]);
    cr_assert_eq(seen, n);
    cr_assert_eq(pages, 3);

    /* another key's job is 404, as for the paged JSON */
    char other[64], url[256], auth[128];
    svch_new_key(&svc, "other", other);
    snprintf(url, sizeof(url), "%s/v1/jobs/%s/results", svc.base, id);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", other);
    const char *hs[] = {auth, "Accept: application/x-ndjson", NULL};
    struct simh_resp r;
    simh_req_url(&r, "GET", url, NULL, 0, hs);
    cr_assert_eq(r.status, 404, "%s", r.body);
    simh_resp_free(&r);
    buf_cleanup(&out);
    free(id);
}

/* Start the export on a raw socket, read a little, then drop the connection. */
static void abandon_export(const char *id)
{
    int fd = connect_svc();
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "GET /v1/jobs/%s/results HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Authorization: Bearer %s\r\nAccept: application/x-ndjson\r\n\r\n",
                     id, svc.key);
    send_all(fd, req, (size_t)n);
    char tmp[16384];
    size_t got = 0;
    while (got < 100000) {
        ssize_t k = recv(fd, tmp, sizeof(tmp), 0);
        cr_assert(k > 0, "the export ended early");
        if (got == 0)
            cr_assert(strncmp(tmp, "HTTP/1.1 200", 12) == 0, "%.*s", (int)k, tmp);
        got += (size_t)k;
    }
    struct linger lg = {1, 0}; /* reset, as a crashed client would */
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
}

Test(ndjson, export_client_abort_releases_connection)
{
    char *id = export_job(3000); /* ~20 MB of NDJSON: far more than the socket buffers */
    /* twice the pool size: a leaked connection per abandoned stream would exhaust it */
    for (int i = 0; i < 8; i++)
        abandon_export(id);
    /* the service keeps serving: every request gets a connection (poll with a deadline
     * while the server notices the resets) */
    int64_t deadline = simh_ms() + 20000;
    int ok = 0;
    char path[96];
    snprintf(path, sizeof(path), "/v1/jobs/%s", id);
    while (ok < 12 && simh_ms() < deadline) {
        struct simh_resp r;
        call(&r, "GET", path, NULL, NULL, NULL, 0);
        ok = r.status == 200 ? ok + 1 : 0;
        simh_resp_free(&r);
    }
    cr_assert_eq(ok, 12, "the pool is exhausted after abandoned exports");
    /* and a full export still works */
    struct sink s = {.pid = svc.pid};
    char ct[128];
    cr_assert_eq(stream_export(id, &s, ct, sizeof(ct)), 200);
    cr_assert_eq(s.lines, 3000u);
    free(id);
}

Test(ndjson, export_20000_chunks_rss_bounded)
{
    int n = 20000;
    char *id = export_job(n);
    long before = rss_kb(svc.pid);
    struct sink s = {.pid = svc.pid};
    char ct[128];
    int64_t t0 = simh_ms();
    cr_assert_eq(stream_export(id, &s, ct, sizeof(ct)), 200);
    int64_t ms = simh_ms() - t0;
    cr_assert_eq(s.lines, (size_t)n);
    /* the whole export is ~130 MB; building it in memory would pass the bound */
    long bound_kb = 96 * 1024;
#if defined(__SANITIZE_ADDRESS__)
    bound_kb = 160 * 1024; /* shadow memory and allocator caches */
#endif
    fprintf(stderr,
            "export: %d rows, %zu bytes in %lld ms (%.0f rows/s); embedd RSS %ld kB before, "
            "peak %ld kB\n",
            n, s.bytes, (long long)ms, ms ? 1000.0 * n / (double)ms : 0.0, before, s.rss_max_kb);
    cr_assert(s.bytes > (size_t)120 * 1000 * 1000, "%zu bytes", s.bytes);
    cr_assert(s.rss_max_kb > 0 && s.rss_max_kb < bound_kb, "embedd RSS %ld kB during the export",
              s.rss_max_kb);
    free(id);
}
