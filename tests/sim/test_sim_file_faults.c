/* test_sim_file_faults.c: gemini-sim's file paths under faults and at scale: upload pieces cut
 * off in flight and resumed, paged files lists, inline batches answered with a file, and the
 * counters that prove every byte and every text arrived once. */
#include "harness.h"

#include "util/buf.h"
#include "util/crypto.h"

#include <criterion/criterion.h>
#include <curl/curl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct simh sim;

static void start_fast(void)
{
    static const char *const flags[] = {"--pending-ms=20", "--running-ms=20", NULL};
    simh_start(&sim, flags);
}

static void stop(void)
{
    simh_stop(&sim);
}

TestSuite(ffaults, .init = start_fast, .fini = stop, .timeout = 60);

#define CREATE_PATH "/v1beta/models/gemini-embedding-001:asyncBatchEmbedContent"

/* POST /upload/v1beta/files (start). Returns the session URL (caller frees). */
static char *start_upload(const char *display, size_t len, char *granularity, size_t glen)
{
    char lenh[96], body[256], url[1024];
    snprintf(lenh, sizeof(lenh), "X-Goog-Upload-Header-Content-Length: %zu", len);
    snprintf(body, sizeof(body), "{\"file\":{\"displayName\":\"%s\"}}", display);
    const char *const hdrs[] = {"X-Goog-Upload-Protocol: resumable", "X-Goog-Upload-Command: start",
                                lenh, "X-Goog-Upload-Header-Content-Type: application/jsonl", NULL};
    struct simh_resp r;
    simh_req(&sim, &r, "POST", "/upload/v1beta/files", body, strlen(body), hdrs, true);
    cr_assert_eq(r.status, 200, "upload start: %ld %.300s", r.status, r.body);
    cr_assert(simh_header(&r, "X-Goog-Upload-URL", url, sizeof(url)));
    if (granularity)
        cr_assert(simh_header(&r, "X-Goog-Upload-Chunk-Granularity", granularity, glen));
    simh_resp_free(&r);
    return strdup(url);
}

/* POST <session> with a command; offset < 0: no offset header. The transfer may fail. */
static void send_cmd(const char *url, const char *cmd, long long offset, const char *data,
                     size_t len, struct simh_resp *r)
{
    char offh[64], cmdh[96];
    snprintf(cmdh, sizeof(cmdh), "X-Goog-Upload-Command: %s", cmd);
    snprintf(offh, sizeof(offh), "X-Goog-Upload-Offset: %lld", offset);
    const char *const with_off[] = {offh, cmdh, NULL};
    const char *const without_off[] = {cmdh, NULL};
    simh_req_url(r, "POST", url, data ? data : "", len, offset >= 0 ? with_off : without_off);
}

/* A query: asserts 200 and the status, returns X-Goog-Upload-Size-Received. */
static long long query(const char *url, const char *want_status)
{
    struct simh_resp r;
    char st[32], num[32];
    send_cmd(url, "query", -1, NULL, 0, &r);
    cr_assert_eq(r.curl_code, 0);
    cr_assert_eq(r.status, 200, "query: %ld %.300s", r.status, r.body);
    cr_assert(simh_header(&r, "X-Goog-Upload-Status", st, sizeof(st)));
    cr_assert_str_eq(st, want_status);
    cr_assert(simh_header(&r, "X-Goog-Upload-Size-Received", num, sizeof(num)));
    simh_resp_free(&r);
    return strtoll(num, NULL, 10);
}

static char *pattern(size_t len)
{
    char *p = malloc(len + 1);
    cr_assert_not_null(p);
    for (size_t i = 0; i < len; i++)
        p[i] = (char)('a' + (i * 7 + i / 13) % 26);
    p[len] = '\0';
    return p;
}

static void sha256_b64(const char *data, size_t len, char out[BASE64_ENCODED_SIZE(32)])
{
    unsigned char digest[SHA256_LEN];
    cr_assert(sha256_digest(data, len, digest));
    base64_encode(out, digest, sizeof(digest));
}

/* ---- upload pieces cut off in flight ---- */

Test(ffaults, cut_piece_keeps_a_prefix_and_hangs_up)
{
    size_t len = 1000;
    char *data = pattern(len), gran[32];
    char *url = start_upload("cut", len, gran, sizeof(gran));
    cr_assert_str_eq(gran, "8388608", "Google's granularity by default");
    simh_config(&sim, "{\"upload_cut_count\":1,\"upload_cut_keep\":0.25}");

    struct simh_resp r;
    send_cmd(url, "upload", 0, data, 600, &r);
    cr_assert_neq(r.curl_code, 0, "a cut piece gets no answer (status %ld)", r.status);
    simh_resp_free(&r);
    cr_assert_eq(query(url, "active"), 150, "the session kept a quarter of the piece");

    /* resumed from the queried offset, the rest in one finalizing piece */
    send_cmd(url, "upload, finalize", 150, data + 150, len - 150, &r);
    cr_assert_eq(r.curl_code, 0);
    cr_assert_eq(r.status, 200, "%ld %.300s", r.status, r.body);
    json_object *o = simh_json(&r);
    char sha[BASE64_ENCODED_SIZE(32)];
    sha256_b64(data, len, sha);
    cr_assert_str_eq(simh_str(o, "file.sha256Hash"), sha, "every byte once, in order");
    cr_assert_str_eq(simh_str(o, "file.sizeBytes"), "1000");
    json_object_put(o);
    simh_resp_free(&r);

    cr_assert_eq(simh_stat(&sim, "faults.upload_cut"), 1);
    cr_assert_eq(simh_stat(&sim, "upload_pieces"), 2);
    cr_assert_eq(simh_stat(&sim, "upload_queries"), 1);
    cr_assert_eq(simh_stat(&sim, "file_bytes_received"), 1000);
    cr_assert_eq(simh_stat(&sim, "uploads_finalized"), 1);
    free(url);
    free(data);
}

Test(ffaults, cut_piece_answered_503_and_a_cut_finalize)
{
    size_t len = 4096;
    char *data = pattern(len);
    char *url = start_upload("cut-503", len, NULL, 0);
    simh_config(&sim, "{\"upload_cut_count\":2,\"upload_cut_status\":503,\"upload_cut_keep\":0.5,"
                      "\"upload_granularity\":262144}");
    struct simh_resp r;
    send_cmd(url, "upload", 0, data, 1000, &r);
    simh_assert_error(&r, 503, "UNAVAILABLE");
    char st[32];
    cr_assert_not(simh_header(&r, "X-Goog-Upload-Status", st, sizeof(st)),
                  "an interrupted piece's answer says nothing of the session");
    simh_resp_free(&r);
    cr_assert_eq(query(url, "active"), 500);

    /* a finalizing piece cut off does not finalize */
    send_cmd(url, "upload, finalize", 500, data + 500, len - 500, &r);
    simh_assert_error(&r, 503, "UNAVAILABLE");
    simh_resp_free(&r);
    long long have = query(url, "active");
    cr_assert_eq(have, 500 + (len - 500) / 2);
    cr_assert_eq(simh_stat(&sim, "uploads_finalized"), 0);

    send_cmd(url, "upload, finalize", have, data + have, len - (size_t)have, &r);
    cr_assert_eq(r.status, 200, "%ld %.300s", r.status, r.body);
    simh_resp_free(&r);
    cr_assert_eq(simh_stat(&sim, "file_bytes_received"), (long long)len);

    /* a later start announces the granularity set at run time */
    char gran[32];
    char *url2 = start_upload("gran", 1, gran, sizeof(gran));
    cr_assert_str_eq(gran, "262144");
    free(url2);
    free(url);
    free(data);
}

Test(ffaults, query_of_a_final_session_returns_the_file)
{
    char *url = start_upload("done", 5, NULL, 0);
    struct simh_resp r;
    send_cmd(url, "upload, finalize", 0, "abcde", 5, &r);
    cr_assert_eq(r.status, 200);
    json_object *fin = simh_json(&r);
    simh_resp_free(&r);
    send_cmd(url, "query", -1, NULL, 0, &r);
    cr_assert_eq(r.status, 200);
    json_object *q = simh_json(&r);
    simh_resp_free(&r);
    cr_assert_str_eq(json_object_to_json_string(q), json_object_to_json_string(fin),
                     "the query repeats the finalize answer");
    json_object_put(q);
    json_object_put(fin);
    free(url);
}

Test(ffaults, cut_settings_are_checked)
{
    struct simh_resp r;
    static const char *const bad[] = {"{\"upload_cut_status\":200}", "{\"upload_cut_keep\":1.5}",
                                      "{\"upload_granularity\":0}", NULL};
    for (int i = 0; bad[i]; i++) {
        simh_req(&sim, &r, "PUT", "/_sim/config", bad[i], strlen(bad[i]), NULL, false);
        cr_assert_eq(r.status, 400, "%s: %ld", bad[i], r.status);
        simh_resp_free(&r);
    }
}

/* ---- files.list pages ---- */

Test(ffaults, files_list_pages_newest_first)
{
    char display[32];
    for (int i = 0; i < 13; i++) {
        snprintf(display, sizeof(display), "f-%02d", i);
        free(start_upload(display, 1, NULL, 0));
    }
    /* default page: 10 */
    json_object *l = simh_call(&sim, "GET", "/v1beta/files", NULL, 200);
    json_object *files = simh_get(l, "files");
    cr_assert_eq(json_object_array_length(files), 10);
    cr_assert_str_eq(simh_str(files, "0.displayName"), "f-12");
    cr_assert_str_eq(simh_str(files, "9.displayName"), "f-03");
    const char *tok = simh_str(l, "nextPageToken");
    cr_assert(tok && *tok);
    char path[128];
    snprintf(path, sizeof(path), "/v1beta/files?pageToken=%s", tok);
    json_object *l2 = simh_call(&sim, "GET", path, NULL, 200);
    cr_assert_eq(json_object_array_length(simh_get(l2, "files")), 3);
    cr_assert_str_eq(simh_str(l2, "files.2.displayName"), "f-00");
    cr_assert_null(simh_get(l2, "nextPageToken"));
    json_object_put(l2);
    json_object_put(l);

    /* pageSize=5: 5, 5, 3; over 100 is taken as 100 */
    int pages = 0, seen = 0;
    char token[64] = "";
    do {
        snprintf(path, sizeof(path), "/v1beta/files?pageSize=5%s%s", token[0] ? "&pageToken=" : "",
                 token);
        l = simh_call(&sim, "GET", path, NULL, 200);
        seen += (int)json_object_array_length(simh_get(l, "files"));
        tok = simh_str(l, "nextPageToken");
        snprintf(token, sizeof(token), "%s", tok ? tok : "");
        json_object_put(l);
        pages++;
    } while (token[0]);
    cr_assert_eq(pages, 3);
    cr_assert_eq(seen, 13);
    l = simh_call(&sim, "GET", "/v1beta/files?pageSize=500", NULL, 200);
    cr_assert_eq(json_object_array_length(simh_get(l, "files")), 13);
    json_object_put(l);

    struct simh_resp r;
    simh_req(&sim, &r, "GET", "/v1beta/files?pageSize=-1", NULL, 0, NULL, true);
    simh_assert_error(&r, 400, "INVALID_ARGUMENT");
    simh_resp_free(&r);
    simh_req(&sim, &r, "GET", "/v1beta/files?pageToken=zzz", NULL, 0, NULL, true);
    simh_assert_error(&r, 400, "INVALID_ARGUMENT");
    simh_resp_free(&r);
    cr_assert_eq(simh_stat(&sim, "file_lists"), 6);
}

/* ---- an inline batch answered with a file (bifrost#3951) ---- */

Test(ffaults, inline_batch_answered_with_a_file)
{
    simh_config(&sim, "{\"inline_as_file\":true}");
    static const char body[] =
        "{\"batch\":{\"displayName\":\"as-file\",\"inputConfig\":{\"requests\":{\"requests\":["
        "{\"request\":{\"content\":{\"parts\":[{\"text\":\"alpha\"}]},\"outputDimensionality\":4},"
        "\"metadata\":{\"key\":\"k-a\"}},"
        "{\"request\":{\"content\":{\"parts\":[{\"text\":\"beta\"}]},\"outputDimensionality\":4},"
        "\"metadata\":{\"key\":\"k-b\"}}]}}}}";
    json_object *op = simh_call(&sim, "POST", CREATE_PATH, body, 200);
    char name[96], want[128], path[160];
    snprintf(name, sizeof(name), "%s", simh_str(op, "name"));
    json_object_put(op);
    op = simh_wait_state(&sim, name, "BATCH_STATE_SUCCEEDED", 10000);
    snprintf(want, sizeof(want), "files/batch-%s", name + strlen("batches/"));
    cr_assert_str_eq(simh_str(op, "response.responsesFile"), want);
    cr_assert_str_eq(simh_str(op, "metadata.output.responsesFile"), want);
    cr_assert_null(simh_get(op, "response.inlinedResponses"));
    cr_assert_null(simh_get(op, "metadata.inputConfig"), "the input was inline");
    json_object_put(op);

    snprintf(path, sizeof(path), "/v1beta/%s:download?alt=media", want);
    struct simh_resp r;
    simh_req(&sim, &r, "GET", path, NULL, 0, NULL, true);
    cr_assert_eq(r.status, 200, "%ld %.200s", r.status, r.body);
    const char *nl = memchr(r.body, '\n', r.len);
    cr_assert(nl);
    struct json_tokener *tok = json_tokener_new();
    json_object *line = json_tokener_parse_ex(tok, r.body, (int)(nl - r.body));
    json_tokener_free(tok);
    cr_assert(line, "first line is not JSON: %.200s", r.body);
    cr_assert_str_eq(simh_str(line, "metadata.key"), "k-a", "the line echoes the metadata");
    cr_assert_null(simh_get(line, "key"), "an inline request has no key");
    float want_v[4];
    simh_expected_vector("gemini-embedding-001", 3072, "TASK_TYPE_UNSPECIFIED", "alpha", 5, 4,
                         want_v);
    simh_assert_vector(simh_get(line, "response.embedding.values"), want_v, 4);
    json_object_put(line);
    simh_resp_free(&r);

    snprintf(path, sizeof(path), "/v1beta/%s", want);
    op = simh_call(&sim, "GET", path, NULL, 200);
    cr_assert_str_eq(simh_str(op, "source"), "GENERATED");
    json_object_put(op);
    json_object_put(simh_call(&sim, "DELETE", path, NULL, 200));
    cr_assert_eq(simh_stat(&sim, "files_deleted"), 1);
    simh_req(&sim, &r, "DELETE", path, NULL, 0, NULL, true);
    simh_assert_error(&r, 404, "NOT_FOUND");
    simh_resp_free(&r);
    cr_assert_eq(simh_stat(&sim, "file_deletes"), 2);
    cr_assert_eq(simh_stat(&sim, "files_deleted"), 1);
}

/* ---- texts count once per batch, whether they came inline or in a file ---- */

Test(ffaults, texts_counted_once_per_batch_inline_or_file)
{
    static const char jsonl[] = "{\"key\":\"1\",\"request\":{\"content\":{\"parts\":[{\"text\":"
                                "\"one\"}]}}}\n"
                                "{\"key\":\"2\",\"request\":{\"content\":{\"parts\":[{\"text\":"
                                "\"two\"}]}}}\n";
    size_t len = strlen(jsonl);
    char *url = start_upload("texts", len, NULL, 0);
    struct simh_resp r;
    send_cmd(url, "upload, finalize", 0, jsonl, len, &r);
    json_object *f = simh_json(&r);
    simh_resp_free(&r);
    char body[512];
    snprintf(body, sizeof(body), "{\"batch\":{\"inputConfig\":{\"fileName\":\"%s\"}}}",
             simh_str(f, "file.name"));
    json_object_put(f);
    json_object_put(simh_call(&sim, "POST", CREATE_PATH, body, 200));
    cr_assert_eq(simh_stat(&sim, "file_batches"), 1);
    cr_assert_eq(simh_stat(&sim, "texts_in_files"), 2);
    cr_assert_eq(simh_stat(&sim, "texts_received"), 2);
    cr_assert_eq(simh_stat(&sim, "texts_duplicate"), 0);

    /* the same texts again, inline: paid twice, and counted so */
    static const char inl[] = "{\"batch\":{\"inputConfig\":{\"requests\":{\"requests\":["
                              "{\"request\":{\"content\":{\"parts\":[{\"text\":\"one\"}]}}},"
                              "{\"request\":{\"content\":{\"parts\":[{\"text\":\"two\"}]}}}]}}}}";
    json_object_put(simh_call(&sim, "POST", CREATE_PATH, inl, 200));
    cr_assert_eq(simh_stat(&sim, "texts_received"), 4);
    cr_assert_eq(simh_stat(&sim, "texts_in_files"), 2);
    cr_assert_eq(simh_stat(&sim, "texts_unique"), 2);
    cr_assert_eq(simh_stat(&sim, "texts_duplicate"), 2);
    free(url);
}
