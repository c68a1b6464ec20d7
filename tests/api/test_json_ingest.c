/*
 * test_json_ingest.c: POST /v1/jobs with a JSON body, streamed (api/jobs_json.c) against a real
 * `embedd serve` and database: options before, after and around the documents store the same
 * rows; a body split anywhere is read the same; errors anywhere store nothing and free the
 * database connection; a body without Content-Type is JSON. (test_spool_dir.c: an unusable
 * --spool-dir.)
 */
#include "harness.h"
#include "svch.h"

#include "util/buf.h"

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct svch svc;

static void start(void)
{
    static const char *const flags[] = {"--db-pool-size=4", "--workers=1", NULL};
    svch_start(&svc, flags);
}

static void stop(void)
{
    svch_stop(&svc);
}

TestSuite(json_ingest, .init = start, .fini = stop, .timeout = 600);

/* ---- helpers ---- */

static void post(struct svch *s, struct simh_resp *r, const char *body, size_t len)
{
    char url[256], auth[128];
    snprintf(url, sizeof(url), "%s/v1/jobs", s->base);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", s->key);
    const char *hs[] = {auth, "Content-Type: application/json", NULL};
    simh_req_url(r, "POST", url, body, len, hs);
    cr_assert_eq(r->curl_code, 0, "POST /v1/jobs: transfer failed");
}

static char *post_ok(const char *body, size_t len, int want_docs)
{
    struct simh_resp r;
    post(&svc, &r, body, len);
    cr_assert_eq(r.status, 202, "%ld: %s", r.status, r.body);
    json_object *o = simh_json(&r);
    cr_assert_eq(json_object_get_int(simh_get(o, "stats.documents")), want_docs, "%s", r.body);
    char *id = strdup(simh_str(o, "id"));
    json_object_put(o);
    simh_resp_free(&r);
    return id;
}

static long long count_stored(void)
{
    return dbh_scalar(&svc.db, "SELECT (SELECT count(*) FROM jobs) + (SELECT count(*) FROM "
                               "documents) + (SELECT count(*) FROM chunks)");
}

/* One document: id "<prefix><i>", a text of about `chars` characters. */
static void put_doc(struct buf *b, const char *prefix, int i, size_t chars)
{
    static const char *const words[] = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta"};
    cr_assert(buf_printf(b, "{\"id\":\"%s%d\",", prefix, i));
    if (i % 3 == 0)
        cr_assert(buf_puts(b, "\"title\":\"T\\t\\u00e9\",\"metadata\":{\"z\":1,\"a\":[1,2.5]},"));
    cr_assert(buf_puts(b, "\"text\":\""));
    for (size_t k = 0, n = 0; n < chars; k++) {
        const char *w = words[(k * 7 + (size_t)i) % 6];
        cr_assert(buf_printf(b, "%s%s", w, k % 11 == 10 ? ".\\n\\n" : " "));
        n += strlen(w) + 1;
    }
    cr_assert(buf_puts(b, "\"}"));
}

static void put_docs(struct buf *b, int n, size_t chars)
{
    cr_assert(buf_puts(b, "\"documents\":["));
    for (int i = 0; i < n; i++) {
        if (i)
            cr_assert(buf_putc(b, ','));
        put_doc(b, "d", i, chars + (size_t)i * 37 % 900);
    }
    cr_assert(buf_putc(b, ']'));
}

/* Whether two jobs stored the same documents and chunks, column by column. */
static void same_rows(const char *a, const char *b)
{
    static const char *const tables[][2] = {
        {"chunks", "seq, doc_index, chunk_index, char_start, char_end, tokens, text, state"},
        {"documents", "doc_index, doc_id, title, metadata::text, chars"},
        {"jobs", "model, task_type, output_dimensionality, normalize, priority, max_chars, "
                 "overlap_chars, display_name, documents, chunks_total, token_estimate"}};
    for (int t = 0; t < 3; t++) {
        const char *key = t == 2 ? "id" : "job_id";
        char sql[1024];
        snprintf(sql, sizeof(sql),
                 "SELECT (SELECT count(*) FROM %s WHERE %s = '%s') - (SELECT count(*) FROM %s "
                 "WHERE %s = '%s') + (SELECT count(*) FROM (SELECT %s FROM %s WHERE %s = "
                 "'%s' EXCEPT SELECT %s FROM %s WHERE %s = '%s') x)",
                 tables[t][0], key, a, tables[t][0], key, b, tables[t][1], tables[t][0], key, a,
                 tables[t][1], tables[t][0], key, b);
        cr_assert_eq(dbh_scalar(&svc.db, sql), 0, "%s differ", tables[t][0]);
    }
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

static void pause_us(long us)
{
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

/*
 * POST body over a raw socket in the pieces that cuts[] marks (each its own
 * TCP segment, with a short pause so that the server reads them apart), with
 * ctype as Content-Type (NULL: none), then read the whole reply.
 */
static void raw_post(struct simh_resp *r, const char *ctype, const char *body, size_t len,
                     const size_t *cuts, size_t n_cuts)
{
    int fd = connect_svc();
    char head[512], ct[128] = "";
    if (ctype)
        snprintf(ct, sizeof(ct), "Content-Type: %s\r\n", ctype);
    int hl = snprintf(head, sizeof(head),
                      "POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                      "%sContent-Length: %zu\r\nConnection: close\r\n\r\n",
                      svc.key, ct, len);
    send_all(fd, head, (size_t)hl);
    size_t off = 0;
    for (size_t i = 0; i <= n_cuts; i++) {
        size_t to = i < n_cuts ? cuts[i] : len;
        if (to > off) {
            pause_us(300);
            send_all(fd, body + off, to - off);
            off = to;
        }
    }
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

/* ---- options before, after and around the documents ---- */

Test(json_ingest, options_anywhere_store_the_same_rows)
{
    static const char opts[] = "\"display_name\":\"where\",\"chunking\":{\"max_chars\":300,"
                               "\"overlap_chars\":50},\"priority\":3,\"task_type\":\"CLUSTERING\"";
    /* ~3 MB of documents: more than the spool's 256 KiB buffers and the ingest's batches */
    struct buf docs, body;
    buf_init(&docs, SIZE_MAX / 2);
    buf_init(&body, SIZE_MAX / 2);
    put_docs(&docs, 400, 7000);
    cr_assert(buf_printf(&body, "{%s,%s}", opts, docs.data));
    char *first = post_ok(body.data, body.len, 400);
    buf_reset(&body);
    cr_assert(buf_printf(&body, "{%s,%s}", docs.data, opts));
    char *after = post_ok(body.data, body.len, 400);
    buf_reset(&body);
    cr_assert(
        buf_printf(&body,
                   "{\"display_name\":\"where\",\"priority\":3,%s,\"chunking\":{\"max_chars\":"
                   "300,\"overlap_chars\":50},\"task_type\":\"CLUSTERING\"}",
                   docs.data));
    char *around = post_ok(body.data, body.len, 400);
    /* an invalid option before the documents, corrected after them: the last one counts */
    buf_reset(&body);
    cr_assert(buf_printf(&body, "{\"priority\":5000,%s,%s}", docs.data, opts));
    char *fixed = post_ok(body.data, body.len, 400);
    cr_assert(dbh_scalar(&svc.db, "SELECT count(*) FROM chunks") > 4 * 400, "several chunks each");
    same_rows(first, after);
    same_rows(first, around);
    same_rows(first, fixed);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM jobs WHERE id = '%s' AND max_chars = 300 AND priority = 3 AND "
             "task_type = 'CLUSTERING' AND display_name = 'where'",
             after);
    cr_assert_eq(dbh_scalar(&svc.db, sql), 1);
    free(first);
    free(after);
    free(around);
    free(fixed);
    buf_cleanup(&docs);
    buf_cleanup(&body);
}

Test(json_ingest, repeated_documents_member_last_counts)
{
    static const char body[] = "{\"documents\":[{\"id\":\"a\",\"text\":\"first\"},{\"id\":\"a\","
                               "\"text\":\"dup\"}],\"display_name\":\"x\",\"documents\":[{\"id\":"
                               "\"b\",\"text\":\"second\"}]}";
    char *id = post_ok(body, strlen(body), 1);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM chunks WHERE job_id = '%s' AND text = 'second'", id);
    cr_assert_eq(dbh_scalar(&svc.db, sql), 1);
    free(id);
}

/* ---- a body split anywhere ---- */

static void expect_problem(const struct simh_resp *r, long status, const char *code,
                           const char *pointer, const char *detail)
{
    cr_assert_eq(r->status, status, "%ld: %s", r->status, r->body);
    json_object *o = simh_json(r);
    cr_assert_str_eq(simh_str(o, "code"), code, "%s", r->body);
    if (pointer)
        cr_assert_str_eq(simh_str(o, "errors.0.pointer"), pointer, "%s", r->body);
    if (detail)
        cr_assert_str_eq(simh_str(o, "detail"), detail, "%s", r->body);
    json_object_put(o);
}

Test(json_ingest, split_at_every_byte_boundary)
{
    static const char *const good[] = {
        "{\"display_name\":\"s\",\"documents\":[{\"id\":\"a\",\"title\":\"T\",\"metadata\":{\"k\":"
        "[1,2.5]},\"text\":\"caf\xc3\xa9 \\u00e9 \\ud83d\\ude00\"},{\"id\":\"b\",\"text\":\"two "
        "words\"}]}",
        " {\"documents\" : [ {\"id\":\"a\",\"text\":\"x\\ny\"} , {\"id\":\"b\",\"text\":\"z\"} ] ,"
        "\"chunking\":{\"max_chars\":100,\"overlap_chars\":0},\"priority\":-7 } ",
    };
    long long jobs_before = dbh_scalar(&svc.db, "SELECT count(*) FROM jobs");
    int made = 0;
    for (size_t g = 0; g < 2; g++) {
        size_t n = strlen(good[g]);
        for (size_t k = 1; k < n; k++) {
            struct simh_resp r;
            raw_post(&r, "application/json", good[g], n, &k, 1);
            cr_assert_eq(r.status, 202, "cut at %zu: %ld: %s", k, r.status, r.body);
            json_object *o = simh_json(&r);
            cr_assert_eq(json_object_get_int(simh_get(o, "stats.documents")), 2);
            cr_assert_eq(json_object_get_int(simh_get(o, "stats.chunks.total")), 2);
            json_object_put(o);
            simh_resp_free(&r);
            made++;
        }
        /* and in pieces of 1 to 7 bytes */
        size_t cuts[512], nc = 0;
        for (size_t at = 1 + g; at < n && nc < 512; at += 1 + (at * 5 + g) % 7)
            cuts[nc++] = at;
        struct simh_resp r;
        raw_post(&r, "application/json", good[g], n, cuts, nc);
        cr_assert_eq(r.status, 202, "%ld: %s", r.status, r.body);
        simh_resp_free(&r);
        made++;
    }
    cr_assert_eq(dbh_scalar(&svc.db, "SELECT count(*) FROM jobs"), jobs_before + made);
    long long stored = count_stored();
    /* a bad body gets the same answer wherever it is cut */
    static const char bad[] = "{\"documents\":[{\"id\":\"a\",\"text\":\"x\"},{\"id\":7,\"text\":"
                              "\"y\"}],\"model\":\"gemini-embedding-001\"}";
    size_t n = strlen(bad);
    for (size_t k = 1; k < n; k++) {
        struct simh_resp r;
        raw_post(&r, "application/json", bad, n, &k, 1);
        expect_problem(&r, 400, "invalid_type", "/documents/1/id",
                       "/documents/1/id must be a string, not an integer");
        simh_resp_free(&r);
    }
    cr_assert_eq(count_stored(), stored, "the bad body stored something");
}

Test(json_ingest, no_content_type_is_json)
{
    static const char body[] = "{\"documents\":[{\"id\":\"a\",\"text\":\"untyped\"}]}";
    struct simh_resp r;
    raw_post(&r, NULL, body, strlen(body), NULL, 0);
    cr_assert_eq(r.status, 202, "%ld: %s", r.status, r.body);
    simh_resp_free(&r);
    raw_post(&r, "text/plain", body, strlen(body), NULL, 0);
    expect_problem(&r, 415, "unsupported_media_type", NULL, NULL);
    simh_resp_free(&r);
}

/* ---- errors in the middle of a large body ---- */

Test(json_ingest, errors_mid_body_store_nothing)
{
    /* ~12 MB of documents, options first: earlier batches were already COPYed into the open
     * transaction when the error comes */
    struct buf head, tail, b;
    buf_init(&head, SIZE_MAX / 2);
    buf_init(&tail, SIZE_MAX / 2);
    buf_init(&b, SIZE_MAX / 2);
    cr_assert(buf_puts(&head, "{\"display_name\":\"late\",\"documents\":["));
    for (int i = 0; i < 600; i++) {
        put_doc(&head, "k", i, 9000);
        cr_assert(buf_putc(&head, ','));
    }
    for (int i = 0; i < 600; i++) {
        put_doc(&tail, "m", i, 9000);
        cr_assert(buf_putc(&tail, i < 599 ? ',' : ']'));
    }
    static const struct {
        const char *name, *middle, *end;
        long status;
        const char *code, *pointer;
    } cases[] = {
        {"bad document", "{\"id\":\"x\",\"text\":\"  \"},", "}", 422, "empty_text",
         "/documents/600/text"},
        {"late duplicate", "{\"id\":\"k3\",\"text\":\"again\"},", "}", 422, "duplicate_id",
         "/documents/600/id"},
        {"unknown option after", "", ",\"colour\":1}", 400, "unknown_field", "/colour"},
        {"bad option after", "", ",\"model\":\"gpt-4\"}", 422, "unknown_model", "/model"},
        {"syntax error after a bad document", "{\"id\":\"x\"},", ",}", 400, "invalid_json", NULL},
        {"truncated", "", "", 400, "invalid_json", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        buf_reset(&b);
        cr_assert(buf_append(&b, head.data, head.len));
        cr_assert(buf_puts(&b, cases[i].middle));
        cr_assert(buf_append(&b, tail.data, tail.len));
        cr_assert(buf_puts(&b, cases[i].end));
        struct simh_resp r;
        post(&svc, &r, b.data, b.len);
        expect_problem(&r, cases[i].status, cases[i].code, cases[i].pointer, NULL);
        simh_resp_free(&r);
        cr_assert_eq(count_stored(), 0, "%s: something was stored", cases[i].name);
    }
    /* no connection was kept: more requests than the pool (4) still get one */
    for (int i = 0; i < 6; i++) {
        struct simh_resp r;
        post(&svc, &r, "{\"documents\":[{\"id\":\"q\",\"text\":\"\"}]}", 36);
        cr_assert_eq(r.status, 422, "%s", r.body);
        simh_resp_free(&r);
    }
    char *id = post_ok("{\"documents\":[{\"id\":\"q\",\"text\":\"fine\"}]}", 40, 1);
    free(id);
    buf_cleanup(&head);
    buf_cleanup(&tail);
    buf_cleanup(&b);
}
