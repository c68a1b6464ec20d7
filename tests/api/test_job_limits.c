/*
 * test_job_limits.c: the per-job limits are settings (job-max-documents,
 * job-max-chunks, job-max-deletes): a job past one is refused with a 422
 * problem naming the setting, whatever the body's form (NDJSON, JSON with
 * the options first or last, a collection upsert), and nothing of it is
 * stored; a job at the limit is accepted.
 */
#include "harness.h"
#include "svch.h"

#include "util/buf.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct svch svc;

static void start(void)
{
    static const char *const flags[] = {"--job-max-documents=5", "--job-max-chunks=8",
                                        "--job-max-deletes=3",   "--db-pool-size=4",
                                        "--workers=1",           NULL};
    svch_start(&svc, flags);
}

static void stop(void)
{
    svch_stop(&svc);
}

TestSuite(job_limits, .init = start, .fini = stop, .timeout = 120);

static void post(struct simh_resp *r, const char *path, const char *ctype, const char *body)
{
    char url[256], auth[128], ct[96];
    snprintf(url, sizeof(url), "%s%s", svc.base, path);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", svc.key);
    snprintf(ct, sizeof(ct), "Content-Type: %s", ctype);
    const char *hs[3] = {auth, ct, NULL};
    simh_req_url(r, "POST", url, body, strlen(body), hs);
    cr_assert_eq(r->curl_code, 0, "POST %s: transfer failed", path);
}

/* Rows of every table a job writes to. */
static long long stored(void)
{
    return dbh_scalar(&svc.db,
                      "SELECT (SELECT count(*) FROM jobs) + (SELECT count(*) FROM documents)"
                      " + (SELECT count(*) FROM chunks) + (SELECT count(*) FROM batches)"
                      " + (SELECT count(*) FROM collection_documents)");
}

/* POST body; expect a 422 problem with code, pointer and every word of `words`
 * (NULL-terminated) in its detail, and nothing more stored than before. */
static void refused(const char *what, const char *ctype, const char *body, const char *code,
                    const char *pointer, const char *const *words)
{
    long long before = stored();
    struct simh_resp r;
    post(&r, "/v1/jobs", ctype, body);
    cr_assert_eq(r.status, 422, "%s: %ld %s", what, r.status, r.body);
    cr_assert(r.headers && strstr(r.headers, "application/problem+json"), "%s", what);
    json_object *o = simh_json(&r);
    cr_assert_str_eq(simh_str(o, "code"), code, "%s: %s", what, r.body);
    cr_assert_str_eq(simh_str(o, "errors.0.pointer"), pointer, "%s: %s", what, r.body);
    for (size_t i = 0; words[i]; i++)
        cr_assert(strstr(simh_str(o, "detail"), words[i]), "%s: no \"%s\" in %s", what, words[i],
                  r.body);
    json_object_put(o);
    simh_resp_free(&r);
    cr_assert_eq(stored(), before, "%s: something was stored", what);
}

/* n documents "<tag><i>", each text `chars` long; JSON (options first or
 * last) or NDJSON. */
static char *body_of(int n, const char *tag, size_t chars, const char *opts, int form)
{
    struct buf b;
    buf_init(&b, SIZE_MAX / 2);
    char *text = malloc(chars + 1);
    cr_assert(text);
    for (size_t i = 0; i < chars; i++)
        text[i] = i % 6 == 5 ? ' ' : (char)('a' + i % 7);
    text[chars] = '\0';
    if (form == 0)
        cr_assert(buf_printf(&b, "{%s}\n", opts));
    else if (form == 1)
        cr_assert(buf_printf(&b, "{%s%s\"documents\":[", opts, opts[0] ? "," : ""));
    else
        cr_assert(buf_puts(&b, "{\"documents\":["));
    for (int i = 0; i < n; i++)
        cr_assert(buf_printf(&b, "%s{\"id\":\"%s%d\",\"text\":\"%s\"}%s", form && i ? "," : "", tag,
                             i, text, form ? "" : "\n"));
    if (form == 1)
        cr_assert(buf_puts(&b, "]}"));
    else if (form == 2)
        cr_assert(buf_printf(&b, "]%s%s}", opts[0] ? "," : "", opts));
    free(text);
    return b.data;
}

static const char *ctype_of(int form)
{
    return form ? "application/json" : "application/x-ndjson";
}

Test(job_limits, documents)
{
    static const char *const forms[] = {"NDJSON", "JSON, options first", "JSON, options last"};
    for (int f = 0; f < 3; f++) {
        char *b = body_of(6, "d", 20, "\"display_name\":\"six\"", f);
        const char *nd[] = {"at most 5", "job-max-documents", "(line 7)", NULL};
        const char *js[] = {"/documents has 6 entries", "at most 5", "job-max-documents", NULL};
        refused(forms[f], ctype_of(f), b, "too_many_documents", "/documents", f ? js : nd);
        free(b);
    }
    /* too many documents wins over a bad one among them (the whole body's verdict) */
    const char *js[] = {"/documents has 6 entries", "job-max-documents", NULL};
    refused("JSON, a bad document too", "application/json",
            "{\"documents\":[{\"id\":5,\"text\":\"t\"},{\"id\":\"b\",\"text\":\"t\"},{\"id\":\"c\","
            "\"text\":\"t\"},{\"id\":\"d\",\"text\":\"t\"},{\"id\":\"e\",\"text\":\"t\"},{\"id\":"
            "\"f\",\"text\":\"t\"}]}",
            "too_many_documents", "/documents", js);
    /* at the limit: accepted */
    long long before = stored();
    for (int f = 0; f < 3; f++) {
        char *b = body_of(5, f == 0 ? "a" : f == 1 ? "b" : "c", 20, "", f);
        struct simh_resp r;
        post(&r, "/v1/jobs", ctype_of(f), b);
        cr_assert_eq(r.status, 202, "%s: %ld %s", forms[f], r.status, r.body);
        simh_resp_free(&r);
        free(b);
    }
    cr_assert_gt(stored(), before);
}

Test(job_limits, chunks)
{
    /* 2 documents of ~450 characters at 100 per chunk: about 10 chunks, more than 8 */
    static const char opts[] = "\"chunking\":{\"max_chars\":100,\"overlap_chars\":0}";
    const char *words[] = {"past 8 chunks", "job-max-chunks", NULL};
    for (int f = 0; f < 3; f++) {
        char *b = body_of(2, "c", 450, opts, f);
        refused(f == 0 ? "NDJSON" : "JSON", ctype_of(f), b, "too_many_chunks", "/documents", words);
        free(b);
    }
    /* one such document (about 5 chunks) is fine */
    char *b = body_of(1, "one", 450, opts, 0);
    struct simh_resp r;
    post(&r, "/v1/jobs", ctype_of(0), b);
    cr_assert_eq(r.status, 202, "%ld %s", r.status, r.body);
    simh_resp_free(&r);
    free(b);
}

Test(job_limits, collection_upserts_and_deletes)
{
    struct simh_resp r;
    post(&r, "/v1/collections", "application/json",
         "{\"name\":\"lim\",\"chunking\":{\"max_chars\":100,\"overlap_chars\":0}}");
    cr_assert_eq(r.status, 201, "%ld %s", r.status, r.body);
    json_object *o = simh_json(&r);
    char opts[200];
    snprintf(opts, sizeof(opts), "\"collection\":\"%s\"", simh_str(o, "id"));
    json_object_put(o);
    simh_resp_free(&r);
    /* a collection job's documents are chunked once looked up (at the end here) */
    const char *cw[] = {"past 8 chunks", "job-max-chunks", NULL};
    const char *dw[] = {"at most 5", "job-max-documents", NULL};
    for (int f = 0; f < 3; f++) {
        char *b = body_of(2, "u", 450, opts, f);
        refused("collection, chunks", ctype_of(f), b, "too_many_chunks", "/documents", cw);
        free(b);
        b = body_of(6, "u", 20, opts, f);
        refused("collection, documents", ctype_of(f), b, "too_many_documents", "/documents", dw);
        free(b);
    }
    char del[300];
    snprintf(del, sizeof(del), "{%s,\"delete\":[\"a\",\"b\",\"c\",\"d\"]}", opts);
    const char *xw[] = {"/delete holds 4 ids", "at most 3", "job-max-deletes", NULL};
    refused("deletes, JSON", "application/json", del, "out_of_range", "/delete", xw);
    snprintf(del, sizeof(del), "{%s,\"delete\":[\"a\",\"b\",\"c\",\"d\"]}\n", opts);
    refused("deletes, NDJSON", "application/x-ndjson", del, "out_of_range", "/delete", xw);
}
