/* test_jobs.c: /v1/jobs over real HTTP against a real database: create, get, list, cancel, delete.
 */
#include "harness.h"
#include "svch.h"

#include "util/buf.h"

#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct svch svc;

static void start(void)
{
    svch_start(&svc, NULL);
}

static void stop(void)
{
    svch_stop(&svc);
}

TestSuite(jobs, .init = start, .fini = stop, .timeout = 300);

static void call(struct simh_resp *r, const char *method, const char *path, const char *key,
                 const char *body, size_t len)
{
    char url[256], auth[128];
    snprintf(url, sizeof(url), "%s%s", svc.base, path);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key ? key : svc.key);
    const char *hs[3] = {auth, body ? "Content-Type: application/json" : NULL, NULL};
    simh_req_url(r, method, url, body, len, hs);
    cr_assert_eq(r->curl_code, 0, "%s %s: transfer failed", method, path);
}

static json_object *call_json(const char *method, const char *path, const char *body, long want)
{
    struct simh_resp r;
    call(&r, method, path, NULL, body, body ? strlen(body) : 0);
    cr_assert_eq(r.status, want, "%s %s: %ld, want %ld: %s", method, path, r.status, want, r.body);
    json_object *o = simh_json(&r);
    simh_resp_free(&r);
    return o;
}

static const char sample[] =
    "{\"display_name\":\"t\",\"documents\":["
    "{\"id\":\"a\",\"title\":\"A\",\"metadata\":{\"k\":1},\"text\":\"First paragraph.\\n\\nSecond "
    "paragraph, with more words in it.\"},"
    "{\"id\":\"b\",\"text\":"
    "\"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe6\x96\x87\xe3\x80\x82\"}]}";

static char *create(const char *body)
{
    json_object *o = call_json("POST", "/v1/jobs", body, 202);
    char *id = strdup(simh_str(o, "id"));
    json_object_put(o);
    return id;
}

Test(jobs, create_then_get)
{
    struct simh_resp r;
    call(&r, "POST", "/v1/jobs", NULL, sample, strlen(sample));
    cr_assert_eq(r.status, 202, "%s", r.body);
    char loc[128];
    cr_assert(simh_header(&r, "Location", loc, sizeof(loc)));
    json_object *o = simh_json(&r);
    const char *id = simh_str(o, "id");
    char want[128];
    snprintf(want, sizeof(want), "/v1/jobs/%s", id);
    cr_assert_str_eq(loc, want);
    cr_assert_str_eq(simh_str(o, "state"), "pending");
    cr_assert_str_eq(simh_str(o, "display_name"), "t");
    cr_assert_str_eq(simh_str(o, "settings.model"), "gemini-embedding-001");
    cr_assert_str_eq(simh_str(o, "settings.task_type"), "RETRIEVAL_DOCUMENT");
    cr_assert_eq(json_object_get_int(simh_get(o, "settings.output_dimensionality")), 768);
    cr_assert(json_object_get_boolean(simh_get(o, "settings.normalize")));
    cr_assert_eq(json_object_get_int(simh_get(o, "stats.documents")), 2);
    int total = json_object_get_int(simh_get(o, "stats.chunks.total"));
    cr_assert_eq(total, 2, "two short documents make two chunks");
    cr_assert_eq(json_object_get_int(simh_get(o, "stats.chunks.pending")), total);
    cr_assert_eq(json_object_get_int(simh_get(o, "stats.chunks.succeeded")), 0);
    cr_assert(json_object_get_int(simh_get(o, "stats.token_estimate")) > 0);
    cr_assert(simh_str(o, "created_at"));
    cr_assert(json_object_is_type(simh_get(o, "finished_at"), json_type_null));

    char path[96];
    snprintf(path, sizeof(path), "/v1/jobs/%s", id);
    json_object *g = call_json("GET", path, NULL, 200);
    cr_assert_str_eq(simh_str(g, "id"), id);
    cr_assert_eq(json_object_get_int(simh_get(g, "stats.chunks.total")), total);
    json_object_put(g);

    /* what is stored matches */
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM chunks WHERE job_id = '%s'", id);
    cr_assert_eq(dbh_scalar(&svc.db, sql), total);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM documents WHERE job_id = '%s' AND metadata::text = '{\"k\":1}'",
             id);
    cr_assert_eq(dbh_scalar(&svc.db, sql), 1);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM chunks WHERE job_id = '%s' AND text = "
             "'\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe6\x96\x87\xe3\x80\x82'"
             " AND char_start = 0 AND char_end = 6",
             id);
    cr_assert_eq(dbh_scalar(&svc.db, sql), 1, "offsets count code points");
    json_object_put(o);
    simh_resp_free(&r);
}

/* GET /v1/jobs/{id} answers from the row version it read before while the
 * job's row has not moved (store/jobs.c, api/jobs.c): any change of the row
 * or of its batches must show at once, for the key that owns it only. */
Test(jobs, get_follows_every_change_of_the_row)
{
    char *id = create(sample);
    char path[96], sql[512];
    snprintf(path, sizeof(path), "/v1/jobs/%s/cancel", id);
    json_object_put(call_json("POST", path, NULL, 202));
    snprintf(path, sizeof(path), "/v1/jobs/%s", id);
    for (int i = 0; i < 2; i++) { /* the second from the caches */
        json_object *g = call_json("GET", path, NULL, 200);
        cr_assert_str_eq(simh_str(g, "state"), "cancelled");
        cr_assert_str_eq(simh_str(g, "display_name"), "t");
        cr_assert_eq(json_object_get_int(simh_get(g, "stats.batches.cancelled")), 0);
        json_object_put(g);
    }
    /* a change as the workers make them: a batch and the job's counters in
     * one transaction, from another connection (the job is cancelled, so
     * no worker touches it meanwhile) */
    snprintf(sql, sizeof(sql),
             "BEGIN; INSERT INTO batches (job_id, state, n_chunks, request_bytes, display_name)"
             " VALUES ('%s', 'cancelled', 2, 100, 'embedd-cache-test');"
             " UPDATE jobs SET chunks_failed = 1, chunks_succeeded = 1 WHERE id = '%s'; COMMIT",
             id, id);
    PGresult *res = PQexec(svc.db.conn, sql);
    cr_assert_eq(PQresultStatus(res), PGRES_COMMAND_OK, "%s", PQerrorMessage(svc.db.conn));
    PQclear(res);
    json_object *g = call_json("GET", path, NULL, 200);
    cr_assert_eq(json_object_get_int(simh_get(g, "stats.chunks.succeeded")), 1);
    cr_assert_eq(json_object_get_int(simh_get(g, "stats.chunks.failed")), 1);
    cr_assert_eq(json_object_get_int(simh_get(g, "stats.batches.cancelled")), 1);
    json_object_put(g);
    /* a change of one column only */
    snprintf(sql, sizeof(sql), "UPDATE jobs SET display_name = 'renamed' WHERE id = '%s'", id);
    PQclear(PQexec(svc.db.conn, sql));
    g = call_json("GET", path, NULL, 200);
    cr_assert_str_eq(simh_str(g, "display_name"), "renamed");
    json_object_put(g);
    /* another key never gets the cached row */
    char other[64];
    svch_new_key(&svc, "other-cache", other);
    struct simh_resp r;
    call(&r, "GET", path, other, NULL, 0);
    cr_assert_eq(r.status, 404, "%s", r.body);
    simh_resp_free(&r);
    free(id);
}

Test(jobs, isolation_between_keys)
{
    char *id = create(sample);
    char other[64], path[96];
    svch_new_key(&svc, "other", other);
    snprintf(path, sizeof(path), "/v1/jobs/%s", id);
    struct simh_resp r;
    call(&r, "GET", path, other, NULL, 0);
    cr_assert_eq(r.status, 404, "another key's job is not found: %s", r.body);
    simh_resp_free(&r);
    call(&r, "DELETE", path, other, NULL, 0);
    cr_assert_eq(r.status, 404);
    simh_resp_free(&r);
    call(&r, "GET", "/v1/jobs", other, NULL, 0);
    json_object *o = simh_json(&r);
    cr_assert_eq(json_object_array_length(simh_get(o, "jobs")), 0);
    json_object_put(o);
    simh_resp_free(&r);
    call(&r, "GET", "/v1/jobs/not-a-uuid", NULL, NULL, 0);
    cr_assert_eq(r.status, 404);
    simh_resp_free(&r);
    free(id);
}

Test(jobs, list_pages_newest_first)
{
    char *ids[3];
    for (int i = 0; i < 3; i++)
        ids[i] = create(sample);
    json_object *p1 = call_json("GET", "/v1/jobs?limit=2", NULL, 200);
    json_object *jobs = simh_get(p1, "jobs");
    cr_assert_eq(json_object_array_length(jobs), 2);
    cr_assert_str_eq(simh_str(jobs, "0.id"), ids[2]);
    cr_assert_str_eq(simh_str(jobs, "1.id"), ids[1]);
    const char *cur = simh_str(p1, "next_cursor");
    cr_assert(cur);
    char path[256];
    snprintf(path, sizeof(path), "/v1/jobs?limit=2&cursor=%s", cur);
    json_object *p2 = call_json("GET", path, NULL, 200);
    cr_assert_eq(json_object_array_length(simh_get(p2, "jobs")), 1);
    cr_assert_str_eq(simh_str(p2, "jobs.0.id"), ids[0]);
    cr_assert(json_object_is_type(simh_get(p2, "next_cursor"), json_type_null));
    json_object *f = call_json("GET", "/v1/jobs?state=cancelled", NULL, 200);
    cr_assert_eq(json_object_array_length(simh_get(f, "jobs")), 0);
    json_object_put(f);
    json_object_put(p1);
    json_object_put(p2);
    json_object_put(call_json("GET", "/v1/jobs?limit=0", NULL, 400));
    json_object_put(call_json("GET", "/v1/jobs?state=done", NULL, 400));
    json_object_put(call_json("GET", "/v1/jobs?cursor=zzz", NULL, 400));
    for (int i = 0; i < 3; i++)
        free(ids[i]);
}

Test(jobs, cancel_then_delete)
{
    char *id = create(sample);
    char path[128];
    snprintf(path, sizeof(path), "/v1/jobs/%s", id);
    struct simh_resp r;
    call(&r, "DELETE", path, NULL, NULL, 0);
    cr_assert_eq(r.status, 409, "an active job cannot be deleted: %s", r.body);
    simh_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/jobs/%s/cancel", id);
    json_object *o = call_json("POST", path, NULL, 202);
    cr_assert_str_eq(simh_str(o, "state"), "cancelled");
    cr_assert_eq(json_object_get_int(simh_get(o, "stats.chunks.pending")), 0);
    cr_assert_eq(json_object_get_int(simh_get(o, "stats.chunks.failed")),
                 json_object_get_int(simh_get(o, "stats.chunks.total")));
    cr_assert(simh_str(o, "finished_at"));
    json_object_put(o);
    json_object_put(call_json("POST", path, NULL, 409));
    snprintf(path, sizeof(path), "/v1/jobs/%s", id);
    call(&r, "DELETE", path, NULL, NULL, 0);
    cr_assert_eq(r.status, 204, "%s", r.body);
    simh_resp_free(&r);
    json_object_put(call_json("GET", path, NULL, 404));
    cr_assert_eq(dbh_scalar(&svc.db, "SELECT count(*) FROM chunks"), 0, "no orphans");
    cr_assert_eq(dbh_scalar(&svc.db, "SELECT count(*) FROM documents"), 0);
    cr_assert_eq(dbh_scalar(&svc.db, "SELECT count(*) FROM jobs"), 0);
    free(id);
}

Test(jobs, bad_input_stores_nothing)
{
    static const char *const bodies[] = {
        "{",
        "{\"documents\":[]}",
        "{\"documents\":[{\"id\":\"a\",\"text\":\"x\"},{\"id\":\"a\",\"text\":\"y\"}]}",
        "{\"documents\":[{\"id\":\"a\",\"text\":\"x\"}],\"output_dimensionality\":5000}",
        "{\"documents\":[{\"id\":\"a\",\"text\":\"x\"},{\"id\":\"b\",\"text\":\"\"}]}",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        struct simh_resp r;
        call(&r, "POST", "/v1/jobs", NULL, bodies[i], strlen(bodies[i]));
        cr_assert(r.status == 400 || r.status == 422, "%s: %ld", bodies[i], r.status);
        char ct[64];
        cr_assert(simh_header(&r, "Content-Type", ct, sizeof(ct)));
        cr_assert_str_eq(ct, "application/problem+json");
        simh_resp_free(&r);
    }
    struct simh_resp r;
    char url[128];
    snprintf(url, sizeof(url), "%s/v1/jobs", svc.base);
    char auth[128];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", svc.key);
    const char *hs[] = {auth, "Content-Type: text/plain", NULL};
    simh_req_url(&r, "POST", url, sample, strlen(sample), hs);
    cr_assert_eq(r.status, 415);
    simh_resp_free(&r);
    cr_assert_eq(dbh_scalar(&svc.db, "SELECT count(*) FROM jobs"), 0);
    cr_assert_eq(dbh_scalar(&svc.db, "SELECT count(*) FROM chunks"), 0);
}

Test(jobs, ten_thousand_chunks)
{
    struct buf b;
    buf_init(&b, 64 << 20);
    cr_assert(
        buf_puts(&b, "{\"chunking\":{\"max_chars\":500,\"overlap_chars\":50},\"documents\":["));
    for (int d = 0; d < 1000; d++) {
        cr_assert(buf_printf(&b, "%s{\"id\":\"doc-%d\",\"text\":\"", d ? "," : "", d));
        for (int s = 0; s < 110; s++)
            cr_assert(buf_printf(&b, "Sentence %d of document %d talks about item %d. ", s, d,
                                 (s * 7 + d) % 97));
        cr_assert(buf_puts(&b, "\"}"));
    }
    cr_assert(buf_puts(&b, "]}"));
    struct simh_resp r;
    call(&r, "POST", "/v1/jobs", NULL, b.data, b.len);
    cr_assert_eq(r.status, 202, "%.300s", r.body);
    json_object *o = simh_json(&r);
    int total = json_object_get_int(simh_get(o, "stats.chunks.total"));
    cr_assert_geq(total, 10000, "only %d chunks", total);
    char sql[200];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM chunks WHERE job_id = '%s'",
             simh_str(o, "id"));
    cr_assert_eq(dbh_scalar(&svc.db, sql), total);
    cr_assert_eq(
        dbh_scalar(&svc.db, "SELECT count(*) FROM chunks WHERE char_end - char_start > 500"), 0);
    json_object_put(o);
    simh_resp_free(&r);
    buf_cleanup(&b);
}

Test(jobs, results_pages_with_vectors)
{
    char *id = create(sample);
    char sql[512];
    /* stand in for the workers: chunk 0 succeeded with [1, -2.5, 0.1f], chunk 1 failed */
    snprintf(sql, sizeof(sql),
             "UPDATE chunks SET state = 2, embedding = decode('0000803f000020c0cdcccc3d', 'hex')"
             " WHERE job_id = '%s' AND seq = 0",
             id);
    PQclear(PQexec(svc.db.conn, sql));
    snprintf(sql, sizeof(sql),
             "UPDATE chunks SET state = 3, error = 'INVALID_ARGUMENT: too long'"
             " WHERE job_id = '%s' AND seq = 1",
             id);
    PQclear(PQexec(svc.db.conn, sql));
    char path[160];
    snprintf(path, sizeof(path), "/v1/jobs/%s/results?limit=1", id);
    json_object *p1 = call_json("GET", path, NULL, 200);
    cr_assert_str_eq(simh_str(p1, "job_id"), id);
    cr_assert_eq(json_object_get_int(simh_get(p1, "output_dimensionality")), 768);
    json_object *r0 = simh_get(p1, "results.0");
    cr_assert_str_eq(simh_str(r0, "document_id"), "a");
    cr_assert_str_eq(simh_str(r0, "title"), "A");
    cr_assert_eq(json_object_get_int(simh_get(r0, "metadata.k")), 1);
    cr_assert_str_eq(simh_str(r0, "state"), "succeeded");
    cr_assert_eq(json_object_get_int(simh_get(r0, "char_start")), 0);
    cr_assert(strstr(simh_str(r0, "text"), "First paragraph."));
    json_object *v = simh_get(r0, "embedding");
    cr_assert_eq(json_object_array_length(v), 3);
    cr_assert_str_eq(json_object_to_json_string(json_object_array_get_idx(v, 0)), "1");
    cr_assert_str_eq(json_object_to_json_string(json_object_array_get_idx(v, 1)), "-2.5");
    cr_assert(strtof(json_object_to_json_string(json_object_array_get_idx(v, 2)), NULL) == 0.1f,
              "float32 values round-trip exactly");
    const char *cur = simh_str(p1, "next_cursor");
    cr_assert(cur);
    snprintf(path, sizeof(path), "/v1/jobs/%s/results?limit=5&cursor=%s", id, cur);
    json_object *p2 = call_json("GET", path, NULL, 200);
    cr_assert_eq(json_object_array_length(simh_get(p2, "results")), 1);
    cr_assert_str_eq(simh_str(p2, "results.0.document_id"), "b");
    cr_assert_str_eq(simh_str(p2, "results.0.state"), "failed");
    cr_assert_str_eq(simh_str(p2, "results.0.error"), "INVALID_ARGUMENT: too long");
    cr_assert(json_object_is_type(simh_get(p2, "results.0.embedding"), json_type_null));
    cr_assert(json_object_is_type(simh_get(p2, "next_cursor"), json_type_null));
    json_object_put(p1);
    json_object_put(p2);
    snprintf(path, sizeof(path), "/v1/jobs/%s/results?cursor=-1", id);
    json_object_put(call_json("GET", path, NULL, 400));
    json_object_put(
        call_json("GET", "/v1/jobs/00000000-0000-4000-8000-000000000000/results", NULL, 404));
    free(id);
}

Test(jobs, metadata_comes_back_as_written)
{
    const char *body = "{\"documents\":[{\"id\":\"m\",\"text\":\"hello\",\"metadata\":{\"b\":1,"
                       "\"a\":[1,2.5,\"x\"],\"nested\":{\"z\":true,\"y\":null}}}]}";
    char *id = create(body);
    char url[256], auth[128];
    snprintf(url, sizeof(url), "%s/v1/jobs/%s/results", svc.base, id);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", svc.key);
    const char *hs[] = {auth, NULL};
    struct simh_resp r;
    simh_req_url(&r, "GET", url, NULL, 0, hs);
    cr_assert_eq(r.status, 200);
    cr_assert(strstr(r.body, "\"metadata\":{\"b\":1,\"a\":[1,2.5,\"x\"],\"nested\":{\"z\":true,"
                             "\"y\":null}}"),
              "key order and values kept: %s", r.body);
    simh_resp_free(&r);
    free(id);
}

Test(jobs, results_base64_equals_numbers)
{
    char *id = create(sample);
    char sql[1024];
    /* chunk 0: a 768-float vector of assorted values (random mantissas, both signs) */
    snprintf(sql, sizeof(sql),
             "UPDATE chunks SET state = 2, embedding = (SELECT decode(string_agg("
             "substr(md5(k::text), 1, 6) || CASE WHEN k %% 2 = 0 THEN '3e' ELSE 'be' END, ''"
             " ORDER BY k), 'hex') FROM generate_series(1, 768) k) WHERE job_id = '%s' AND seq = 0",
             id);
    PQclear(PQexec(svc.db.conn, sql));
    char path[192];
    snprintf(path, sizeof(path), "/v1/jobs/%s/results?limit=1", id);
    json_object *num = call_json("GET", path, NULL, 200);
    snprintf(path, sizeof(path), "/v1/jobs/%s/results?limit=1&encoding=float", id);
    json_object *flt = call_json("GET", path, NULL, 200);
    cr_assert(json_object_equal(num, flt), "float is the default");
    snprintf(path, sizeof(path), "/v1/jobs/%s/results?limit=1&encoding=base64", id);
    json_object *b64 = call_json("GET", path, NULL, 200);
    json_object *values = simh_get(num, "results.0.embedding");
    cr_assert(simh_str(b64, "results.0.embedding"), "the embedding is a string");
    char *s = strdup(simh_str(b64, "results.0.embedding"));
    cr_assert_eq(strlen(s), (768 * 4 + 2) / 3 * 4);
    unsigned char bytes[768 * 4];
    cr_assert_eq(simh_b64_decode(s, bytes, sizeof(bytes)), sizeof(bytes));
    cr_assert_eq(json_object_array_length(values), 768);
    for (int k = 0; k < 768; k++) {
        uint32_t u = (uint32_t)bytes[4 * k] | (uint32_t)bytes[4 * k + 1] << 8 |
                     (uint32_t)bytes[4 * k + 2] << 16 | (uint32_t)bytes[4 * k + 3] << 24;
        float f,
            want = strtof(json_object_to_json_string(json_object_array_get_idx(values, k)), NULL);
        memcpy(&f, &u, sizeof(f));
        cr_assert(f == want, "component %d: %.9g in base64, %.9g as a number", k, (double)f,
                  (double)want);
    }
    /* everything but the embedding is the same */
    json_object_object_del(simh_get(num, "results.0"), "embedding");
    json_object_object_del(simh_get(b64, "results.0"), "embedding");
    cr_assert(json_object_equal(num, b64));

    /* the NDJSON export encodes the same way */
    char url[256], auth[128];
    snprintf(url, sizeof(url), "%s/v1/jobs/%s/results?encoding=base64", svc.base, id);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", svc.key);
    const char *hs[] = {auth, "Accept: application/x-ndjson", NULL};
    struct simh_resp r;
    simh_req_url(&r, "GET", url, NULL, 0, hs);
    cr_assert_eq(r.status, 200, "%s", r.body);
    char *nl = strchr(r.body, '\n');
    cr_assert(nl);
    *nl = '\0';
    json_object *line = json_tokener_parse(r.body);
    cr_assert_str_eq(simh_str(line, "embedding"), s);
    json_object_put(line);
    simh_resp_free(&r);

    snprintf(path, sizeof(path), "/v1/jobs/%s/results?encoding=binary", id);
    json_object *bad = call_json("GET", path, NULL, 400);
    cr_assert_str_eq(simh_str(bad, "code"), "invalid_parameter");
    cr_assert(strstr(simh_str(bad, "detail"), "float") &&
              strstr(simh_str(bad, "detail"), "base64"));
    json_object_put(bad);
    json_object_put(num);
    json_object_put(flt);
    json_object_put(b64);
    free(s);
    free(id);
}
