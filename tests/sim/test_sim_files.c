/* test_sim_files.c: gemini-sim Files API (upload, get, delete, download) and file batches. */
#include "harness.h"

#include "util/buf.h"
#include "util/crypto.h"

#include <criterion/criterion.h>
#include <curl/curl.h>

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct simh sim;

static void start_fast(void)
{
    static const char *const flags[] = {"--pending-ms=30", "--running-ms=30", NULL};
    simh_start(&sim, flags);
}

static void start_fail_marker(void)
{
    static const char *const flags[] = {"--pending-ms=30", "--running-ms=30",
                                        "--fail-marker=FAILME", NULL};
    simh_start(&sim, flags);
}

static void start_shuffle(void)
{
    static const char *const flags[] = {"--pending-ms=30", "--running-ms=30", "--shuffle", NULL};
    simh_start(&sim, flags);
}

static void stop(void)
{
    simh_stop(&sim);
}

/*
 * One timeout for every test of this binary, sized for the 100,000-line test. Mixed values
 * leak under LeakSanitizer: Criterion 2.4's BoxFort (bxfi_push_timeout) inserts a timeout
 * request that expires earlier than a queued one without linking the rest of the queue
 * behind it, so with --jobs 2 a longer-timeout test's request is lost (and never fires).
 */
#define TIMEOUT_S 600
TestSuite(files, .init = start_fast, .fini = stop, .timeout = TIMEOUT_S);
TestSuite(files_fail, .init = start_fail_marker, .fini = stop, .timeout = TIMEOUT_S);
TestSuite(files_shuffle, .init = start_shuffle, .fini = stop, .timeout = TIMEOUT_S);

#define CREATE_PATH "/v1beta/models/gemini-embedding-001:asyncBatchEmbedContent"
#define MODEL       "gemini-embedding-001"
#define NATIVE_DIMS 3072
#define MIME_JSONL  "application/jsonl"
#define TYPE_OUTPUT                                                                                \
    "type.googleapis.com/google.ai.generativelanguage.v1main.EmbedContentBatchOutput"

/* ---- small helpers ---- */

static void assert_matches(const char *s, const char *pattern, const char *what)
{
    regex_t re;
    cr_assert(s, "%s missing", what);
    cr_assert_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    cr_assert_eq(regexec(&re, s, 0, NULL, 0), 0, "%s \"%s\" does not match %s", what, s, pattern);
    regfree(&re);
}

/* An RFC 3339 UTC timestamp with 9 fractional digits, as nanoseconds since the epoch. */
static int64_t time_ns(const char *t)
{
    assert_matches(t, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{9}Z$",
                   "timestamp");
    struct tm tm;
    long ns = 0;
    memset(&tm, 0, sizeof(tm));
    cr_assert_eq(sscanf(t, "%4d-%2d-%2dT%2d:%2d:%2d.%9ld", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                        &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ns),
                 7, "unparsable timestamp %s", t);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000000000LL + ns;
}

static void assert_str_type(json_object *o, const char *path)
{
    json_object *v = simh_get(o, path);
    cr_assert(v, "%s missing in %s", path, json_object_to_json_string(o));
    cr_assert(json_object_is_type(v, json_type_string), "%s must be a JSON string: %s", path,
              json_object_to_json_string(v));
}

/* The documented token rule (tools/gemini-sim/vector.c), recomputed here. */
static long long expected_tokens(const char *s)
{
    long long tokens = 0;
    size_t len = strlen(s), i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (alnum) {
            size_t run = 0;
            while (i < len && ((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z') ||
                               (s[i] >= 'A' && s[i] <= 'Z'))) {
                run++;
                i++;
            }
            tokens += (long long)((run + 3) / 4);
            continue;
        }
        if (c >= 0x80)
            tokens += (c & 0xC0) != 0x80;
        else if (c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != '\v')
            tokens++;
        i++;
    }
    return tokens == 0 && len > 0 ? 1 : tokens;
}

static void sha256_b64(const char *data, size_t len, char out[BASE64_ENCODED_SIZE(32)])
{
    unsigned char digest[SHA256_LEN];
    cr_assert(sha256_digest(data, len, digest));
    base64_encode(out, digest, sizeof(digest));
}

static void expect_error(const char *method, const char *path, const char *body, long http,
                         const char *status, const char *msg_part)
{
    struct simh_resp r;
    simh_req(&sim, &r, method, path, body, body ? strlen(body) : 0, NULL, true);
    cr_assert_eq(r.curl_code, 0, "%s %s: transfer failed", method, path);
    simh_assert_error(&r, http, status);
    if (msg_part)
        cr_assert(strstr(r.body, msg_part), "message lacks \"%s\": %s", msg_part, r.body);
    simh_resp_free(&r);
}

/* ---- the resumable upload protocol (§5.3) ---- */

/* Step 1: POST /upload/<version>/files. Returns the session URL (caller frees). */
static char *start_upload(const char *version, const char *display, size_t len, const char *mime)
{
    char path[64], lenh[96], mimeh[160], body[256];
    snprintf(path, sizeof(path), "/upload/%s/files", version);
    snprintf(lenh, sizeof(lenh), "X-Goog-Upload-Header-Content-Length: %zu", len);
    snprintf(mimeh, sizeof(mimeh), "X-Goog-Upload-Header-Content-Type: %s", mime);
    snprintf(body, sizeof(body), "{\"file\":{\"displayName\":\"%s\"}}", display);
    const char *const hdrs[] = {"X-Goog-Upload-Protocol: resumable", "X-Goog-Upload-Command: start",
                                lenh, mimeh, NULL};
    struct simh_resp r;
    simh_req(&sim, &r, "POST", path, body, strlen(body), hdrs, true);
    cr_assert_eq(r.curl_code, 0, "upload start: transfer failed");
    cr_assert_eq(r.status, 200, "upload start: status %ld; body %.300s", r.status, r.body);
    char url[1024], again[1024], status[64], want[160];
    /* header names are matched case-insensitively, as a client must */
    cr_assert(simh_header(&r, "x-goog-upload-url", url, sizeof(url)),
              "no X-Goog-Upload-URL header in:\n%s", r.headers);
    cr_assert(simh_header(&r, "X-GOOG-UPLOAD-URL", again, sizeof(again)));
    cr_assert_str_eq(url, again);
    snprintf(want, sizeof(want), "%s/upload/%s/files?", sim.base, version);
    cr_assert(strncmp(url, want, strlen(want)) == 0, "upload URL %s does not start with %s", url,
              want);
    cr_assert(strstr(url, "upload_id="), "upload URL %s has no upload_id", url);
    cr_assert(simh_header(&r, "x-goog-upload-status", status, sizeof(status)));
    cr_assert_str_eq(status, "active");
    simh_resp_free(&r);
    return strdup(url);
}

/* Step 2 (or a later chunk, or a query): POST <session url>. offset < 0: no offset header. */
static void send_cmd(const char *url, const char *cmd, long long offset, const char *data,
                     size_t len, struct simh_resp *r)
{
    char offh[64], cmdh[96];
    snprintf(cmdh, sizeof(cmdh), "X-Goog-Upload-Command: %s", cmd);
    snprintf(offh, sizeof(offh), "X-Goog-Upload-Offset: %lld", offset);
    const char *const with_off[] = {offh, cmdh, NULL};
    const char *const without_off[] = {cmdh, NULL};
    simh_req_url(r, "POST", url, data ? data : "", len, offset >= 0 ? with_off : without_off);
    cr_assert_eq(r->curl_code, 0, "%s: transfer failed (curl code %d)", cmd, r->curl_code);
}

static void assert_upload_status(const struct simh_resp *r, const char *want)
{
    char st[64];
    cr_assert(simh_header(r, "X-Goog-Upload-Status", st, sizeof(st)),
              "no X-Goog-Upload-Status header in:\n%s", r->headers);
    cr_assert_str_eq(st, want, "X-Goog-Upload-Status %s, want %s", st, want);
}

/* {"file": File} of a finalizing reply: returns the File (caller owns). */
static json_object *final_file(const struct simh_resp *r)
{
    cr_assert_eq(r->status, 200, "finalize: status %ld; body %.300s", r->status, r->body);
    assert_upload_status(r, "final");
    json_object *o = simh_json(r);
    cr_assert_eq(json_object_object_length(o), 1, "only \"file\" at top level: %s", r->body);
    json_object *f = simh_get(o, "file");
    cr_assert(f && json_object_is_type(f, json_type_object), "no file object: %s", r->body);
    json_object_get(f);
    json_object_put(o);
    return f;
}

/* Upload data in chunks of at most chunk bytes; returns the File (caller owns). */
static json_object *upload(const char *display, const char *data, size_t len, size_t chunk)
{
    char *url = start_upload("v1beta", display, len, MIME_JSONL);
    size_t off = 0;
    json_object *file = NULL;
    do {
        size_t n = len - off < chunk ? len - off : chunk;
        bool last = off + n == len;
        struct simh_resp r;
        send_cmd(url, last ? "upload, finalize" : "upload", (long long)off, data + off, n, &r);
        if (last) {
            file = final_file(&r);
        } else {
            cr_assert_eq(r.status, 200, "chunk at %zu: status %ld; %.300s", off, r.status, r.body);
            assert_upload_status(&r, "active");
        }
        simh_resp_free(&r);
        off += n;
    } while (off < len);
    free(url);
    return file;
}

/* Upload and return the file's name "files/..." (caller frees). */
static char *upload_name(const char *display, const char *data, size_t len)
{
    json_object *f = upload(display, data, len, len ? len : 1);
    char *name = strdup(simh_str(f, "name"));
    json_object_put(f);
    return name;
}

/* Check a File resource for uploaded content, field by field. */
static void check_uploaded_file(json_object *f, const char *version, const char *display,
                                const char *mime, const char *data, size_t len)
{
    const char *name = simh_str(f, "name");
    assert_matches(name, "^files/[a-z0-9]{12}$", "file name");
    cr_assert_str_eq(simh_str(f, "displayName"), display);
    cr_assert_str_eq(simh_str(f, "mimeType"), mime);
    char num[32];
    snprintf(num, sizeof(num), "%zu", len);
    if (len) {
        assert_str_type(f, "sizeBytes");
        cr_assert_str_eq(simh_str(f, "sizeBytes"), num, "sizeBytes is an int64 string");
    } else {
        /* proto3 JSON leaves out an int64 that is zero */
        cr_assert_null(simh_get(f, "sizeBytes"), "an empty file has no sizeBytes");
    }
    int64_t create = time_ns(simh_str(f, "createTime"));
    int64_t update = time_ns(simh_str(f, "updateTime"));
    int64_t expire = time_ns(simh_str(f, "expirationTime"));
    cr_assert(update >= create, "updateTime before createTime");
    cr_assert_eq(expire - create, 48LL * 3600 * 1000000000LL, "expirationTime is create + 48 h");
    int64_t now = (int64_t)time(NULL) * 1000000000LL;
    cr_assert(llabs((long long)(create - now)) < 120LL * 1000000000LL, "createTime %s is not now",
              simh_str(f, "createTime"));
    char sha[BASE64_ENCODED_SIZE(32)];
    sha256_b64(data, len, sha);
    cr_assert_str_eq(simh_str(f, "sha256Hash"), sha, "sha256Hash is base64(SHA-256(content))");
    cr_assert_str_eq(simh_str(f, "state"), "ACTIVE");
    cr_assert_str_eq(simh_str(f, "source"), "UPLOADED");
    char uri[256];
    snprintf(uri, sizeof(uri), "%s/%s/%s", sim.base, version, name);
    cr_assert_str_eq(simh_str(f, "uri"), uri);
    cr_assert_eq(json_object_object_length(f), len ? 11 : 10, "unexpected File fields: %s",
                 json_object_to_json_string(f));
}

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return size * n;
}

/* ---- 1. resumable upload ---- */

static const char small_content[] = "{\"key\":\"a\",\"request\":{\"content\":{\"parts\":[{\"text\":"
                                    "\"hello\"}]}}}\n";

Test(files, upload_start_and_finalize)
{
    size_t len = strlen(small_content);
    char *url = start_upload("v1beta", "batch-input-1", len, MIME_JSONL);
    cr_assert_eq(simh_stat(&sim, "uploads_started"), 1);
    struct simh_resp r;
    send_cmd(url, "upload, finalize", 0, small_content, len, &r);
    json_object *f = final_file(&r);
    simh_resp_free(&r);
    check_uploaded_file(f, "v1beta", "batch-input-1", MIME_JSONL, small_content, len);
    json_object_put(f);
    cr_assert_eq(simh_stat(&sim, "uploads_finalized"), 1);
    free(url);
}

Test(files, upload_mime_as_bare_jsonl)
{
    /* the COOKBOOK / GUIDE spelling "jsonl" is not enforced, only echoed */
    size_t len = strlen(small_content);
    char *url = start_upload("v1beta", "cookbook", len, "jsonl");
    struct simh_resp r;
    send_cmd(url, "upload, finalize", 0, small_content, len, &r);
    json_object *f = final_file(&r);
    simh_resp_free(&r);
    check_uploaded_file(f, "v1beta", "cookbook", "jsonl", small_content, len);
    json_object_put(f);
    free(url);
}

Test(files, upload_in_two_chunks_with_query)
{
    size_t len = strlen(small_content), first = 17;
    char *url = start_upload("v1beta", "two-chunks", len, MIME_JSONL);
    struct simh_resp r;
    char num[32];

    send_cmd(url, "upload", 0, small_content, first, &r);
    cr_assert_eq(r.status, 200, "first chunk: %ld %.300s", r.status, r.body);
    assert_upload_status(&r, "active");
    cr_assert(simh_header(&r, "X-Goog-Upload-Size-Received", num, sizeof(num)));
    cr_assert_str_eq(num, "17");
    simh_resp_free(&r);

    send_cmd(url, "query", -1, NULL, 0, &r);
    cr_assert_eq(r.status, 200, "query: %ld %.300s", r.status, r.body);
    assert_upload_status(&r, "active");
    cr_assert(simh_header(&r, "x-goog-upload-size-received", num, sizeof(num)));
    cr_assert_str_eq(num, "17");
    simh_resp_free(&r);

    /* half-uploaded, the file exists but is still PROCESSING (found through the listing) */
    char path[64];
    json_object *l = simh_call(&sim, "GET", "/v1beta/files", NULL, 200);
    cr_assert_str_eq(simh_str(l, "files.0.displayName"), "two-chunks");
    cr_assert_str_eq(simh_str(l, "files.0.state"), "PROCESSING");
    cr_assert_str_eq(simh_str(l, "files.0.sizeBytes"), "17");
    snprintf(path, sizeof(path), "/v1beta/%s", simh_str(l, "files.0.name"));
    json_object_put(l);

    send_cmd(url, "upload, finalize", (long long)first, small_content + first, len - first, &r);
    json_object *f = final_file(&r);
    simh_resp_free(&r);
    check_uploaded_file(f, "v1beta", "two-chunks", MIME_JSONL, small_content, len);

    json_object *g = simh_call(&sim, "GET", path, NULL, 200);
    cr_assert_str_eq(json_object_to_json_string(g), json_object_to_json_string(f));
    json_object_put(g);
    json_object_put(f);

    send_cmd(url, "query", -1, NULL, 0, &r);
    cr_assert_eq(r.status, 200);
    assert_upload_status(&r, "final");
    char total[32];
    snprintf(total, sizeof(total), "%zu", len);
    cr_assert(simh_header(&r, "X-Goog-Upload-Size-Received", num, sizeof(num)));
    cr_assert_str_eq(num, total);
    simh_resp_free(&r);

    /* a finalized session takes no more bytes */
    send_cmd(url, "upload, finalize", (long long)len, "x", 1, &r);
    simh_assert_error(&r, 400, "INVALID_ARGUMENT");
    simh_resp_free(&r);
    free(url);
}

Test(files, upload_chunks_of_one_byte)
{
    const char data[] = "abcdefg";
    json_object *f = upload("tiny-chunks", data, 7, 1);
    check_uploaded_file(f, "v1beta", "tiny-chunks", MIME_JSONL, data, 7);
    json_object_put(f);
}

Test(files, upload_empty_file)
{
    json_object *f = upload("empty", "", 0, 1);
    check_uploaded_file(f, "v1beta", "empty", MIME_JSONL, "", 0);
    cr_assert_str_eq(simh_str(f, "sha256Hash"), "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
    json_object_put(f);
}

Test(files, upload_wrong_offset)
{
    size_t len = strlen(small_content);
    char *url = start_upload("v1beta", "offsets", len, MIME_JSONL);
    struct simh_resp r;
    char num[32];

    send_cmd(url, "upload, finalize", 5, small_content, len, &r);
    simh_assert_error(&r, 400, "INVALID_ARGUMENT");
    simh_resp_free(&r);

    send_cmd(url, "upload", 0, small_content, 10, &r);
    cr_assert_eq(r.status, 200);
    simh_resp_free(&r);
    /* resending the same chunk (offset 0 again) is refused; the server tells what it has */
    send_cmd(url, "upload", 0, small_content, 10, &r);
    simh_assert_error(&r, 400, "INVALID_ARGUMENT");
    cr_assert(simh_header(&r, "X-Goog-Upload-Size-Received", num, sizeof(num)));
    cr_assert_str_eq(num, "10");
    simh_resp_free(&r);
    /* an offset past the end too */
    send_cmd(url, "upload", 11, small_content + 11, 5, &r);
    simh_assert_error(&r, 400, "INVALID_ARGUMENT");
    simh_resp_free(&r);
    /* and a missing offset */
    send_cmd(url, "upload", -1, small_content + 10, 5, &r);
    simh_assert_error(&r, 400, "INVALID_ARGUMENT");
    simh_resp_free(&r);

    /* the session survives the refused chunks */
    send_cmd(url, "upload, finalize", 10, small_content + 10, len - 10, &r);
    json_object *f = final_file(&r);
    simh_resp_free(&r);
    check_uploaded_file(f, "v1beta", "offsets", MIME_JSONL, small_content, len);
    json_object_put(f);
    free(url);
}

Test(files, upload_size_mismatch)
{
    size_t len = strlen(small_content);
    struct simh_resp r;
    char num[32];

    /* too few bytes: finalize is refused, the bytes are kept and the upload can go on */
    char *url = start_upload("v1beta", "short", len + 4, MIME_JSONL);
    send_cmd(url, "upload, finalize", 0, small_content, len, &r);
    simh_assert_error(&r, 400, "INVALID_ARGUMENT");
    cr_assert(strstr(r.body, "X-Goog-Upload-Header-Content-Length"), "%s", r.body);
    simh_resp_free(&r);
    send_cmd(url, "query", -1, NULL, 0, &r);
    assert_upload_status(&r, "active");
    cr_assert(simh_header(&r, "X-Goog-Upload-Size-Received", num, sizeof(num)));
    cr_assert_eq(strtoull(num, NULL, 10), len);
    simh_resp_free(&r);
    send_cmd(url, "upload, finalize", (long long)len, "\n\n\n\n", 4, &r);
    json_object *f = final_file(&r);
    simh_resp_free(&r);
    char *full = malloc(len + 5);
    memcpy(full, small_content, len);
    memcpy(full + len, "\n\n\n\n", 5);
    check_uploaded_file(f, "v1beta", "short", MIME_JSONL, full, len + 4);
    json_object_put(f);
    free(full);
    free(url);

    /* too many bytes: refused before any is taken, so the session stays usable */
    url = start_upload("v1beta", "long", len - 1, MIME_JSONL);
    send_cmd(url, "upload, finalize", 0, small_content, len, &r);
    simh_assert_error(&r, 400, "INVALID_ARGUMENT");
    simh_resp_free(&r);
    send_cmd(url, "upload", 0, small_content, len, &r);
    simh_assert_error(&r, 400, "INVALID_ARGUMENT");
    simh_resp_free(&r);
    send_cmd(url, "query", -1, NULL, 0, &r);
    assert_upload_status(&r, "active");
    cr_assert(simh_header(&r, "X-Goog-Upload-Size-Received", num, sizeof(num)));
    cr_assert_str_eq(num, "0", "refused bytes must not be kept");
    simh_resp_free(&r);
    send_cmd(url, "upload, finalize", 0, small_content, len - 1, &r);
    f = final_file(&r);
    simh_resp_free(&r);
    check_uploaded_file(f, "v1beta", "long", MIME_JSONL, small_content, len - 1);
    json_object_put(f);
    free(url);
    cr_assert_eq(simh_stat(&sim, "uploads_finalized"), 2);
}

/* A client that retries a chunk while the first attempt is still in flight: exactly one of the
 * identical requests may take the bytes, the others must get 400. */
Test(files, concurrent_retries_of_one_chunk)
{
    enum { COPIES = 16, ROUNDS = 500, CHUNK = 64 * 1024 };
    char *chunk = malloc(CHUNK);
    cr_assert(chunk);
    for (size_t i = 0; i < CHUNK; i++)
        chunk[i] = (char)('a' + i % 26);
    for (int round = 0; round < ROUNDS; round++) {
        char *url = start_upload("v1beta", "retried", 2 * CHUNK, MIME_JSONL);
        CURLM *m = curl_multi_init();
        CURL *e[COPIES];
        long status[COPIES];
        struct curl_slist *h = NULL;
        h = curl_slist_append(h, "X-Goog-Upload-Command: upload");
        h = curl_slist_append(h, "X-Goog-Upload-Offset: 0");
        h = curl_slist_append(h, "Expect:");
        for (int i = 0; i < COPIES; i++) {
            e[i] = curl_easy_init();
            curl_easy_setopt(e[i], CURLOPT_URL, url);
            curl_easy_setopt(e[i], CURLOPT_POSTFIELDS, chunk);
            curl_easy_setopt(e[i], CURLOPT_POSTFIELDSIZE, (long)CHUNK);
            curl_easy_setopt(e[i], CURLOPT_HTTPHEADER, h);
            curl_easy_setopt(e[i], CURLOPT_WRITEFUNCTION, discard);
            curl_easy_setopt(e[i], CURLOPT_TIMEOUT, 60L);
            curl_multi_add_handle(m, e[i]);
        }
        int running = 1;
        while (running) {
            cr_assert_eq(curl_multi_perform(m, &running), CURLM_OK);
            if (running)
                curl_multi_poll(m, NULL, 0, 100, NULL);
        }
        int ok = 0;
        for (int i = 0; i < COPIES; i++) {
            curl_easy_getinfo(e[i], CURLINFO_RESPONSE_CODE, &status[i]);
            cr_assert(status[i] == 200 || status[i] == 400, "status %ld", status[i]);
            ok += status[i] == 200;
            curl_multi_remove_handle(m, e[i]);
            curl_easy_cleanup(e[i]);
        }
        curl_slist_free_all(h);
        curl_multi_cleanup(m);
        cr_assert_eq(ok, 1, "round %d: %d of %d identical chunks were taken", round, ok, COPIES);
        struct simh_resp r;
        char num[32];
        send_cmd(url, "query", -1, NULL, 0, &r);
        cr_assert(simh_header(&r, "X-Goog-Upload-Size-Received", num, sizeof(num)));
        cr_assert_eq(strtoull(num, NULL, 10), CHUNK, "round %d: %s bytes received", round, num);
        simh_resp_free(&r);
        free(url);
    }
    free(chunk);
}

Test(files, upload_unknown_session)
{
    char url[256];
    struct simh_resp r;
    snprintf(url, sizeof(url),
             "%s/upload/v1beta/files?upload_id=nosuchsession&upload_protocol="
             "resumable",
             sim.base);
    send_cmd(url, "upload, finalize", 0, small_content, strlen(small_content), &r);
    simh_assert_error(&r, 404, "NOT_FOUND");
    simh_resp_free(&r);
    send_cmd(url, "query", -1, NULL, 0, &r);
    simh_assert_error(&r, 404, "NOT_FOUND");
    simh_resp_free(&r);
}

Test(files, upload_start_requires_resumable_protocol)
{
    const char *body = "{\"file\":{\"displayName\":\"x\"}}";
    const char *const no_proto[] = {"X-Goog-Upload-Command: start",
                                    "X-Goog-Upload-Header-Content-Length: 3", NULL};
    const char *const multipart[] = {"X-Goog-Upload-Protocol: multipart",
                                     "X-Goog-Upload-Command: start", NULL};
    const char *const no_cmd[] = {"X-Goog-Upload-Protocol: resumable", NULL};
    const char *const *cases[] = {no_proto, multipart, no_cmd};
    for (size_t i = 0; i < 3; i++) {
        struct simh_resp r;
        simh_req(&sim, &r, "POST", "/upload/v1beta/files", body, strlen(body), cases[i], true);
        simh_assert_error(&r, 400, "INVALID_ARGUMENT");
        char url[256];
        cr_assert(!simh_header(&r, "X-Goog-Upload-URL", url, sizeof(url)));
        simh_resp_free(&r);
    }
    cr_assert_eq(simh_stat(&sim, "uploads_started"), 0);
}

Test(files, upload_start_requires_api_key)
{
    const char *body = "{\"file\":{\"displayName\":\"x\"}}";
    const char *const hdrs[] = {"X-Goog-Upload-Protocol: resumable", "X-Goog-Upload-Command: start",
                                "X-Goog-Upload-Header-Content-Length: 3", NULL};
    struct simh_resp r;
    simh_req(&sim, &r, "POST", "/upload/v1beta/files", body, strlen(body), hdrs, false);
    simh_assert_error(&r, 403, "PERMISSION_DENIED");
    simh_resp_free(&r);
    const char *const wrong[] = {"X-Goog-Upload-Protocol: resumable",
                                 "X-Goog-Upload-Command: start", "x-goog-api-key: wrong", NULL};
    simh_req(&sim, &r, "POST", "/upload/v1beta/files", body, strlen(body), wrong, false);
    simh_assert_error(&r, 400, "INVALID_ARGUMENT");
    simh_resp_free(&r);
    cr_assert_eq(simh_stat(&sim, "uploads_started"), 0);
    cr_assert_eq(simh_stat(&sim, "auth_failures"), 2);
}

Test(files, upload_start_rejects_unknown_metadata)
{
    const char *const hdrs[] = {"X-Goog-Upload-Protocol: resumable", "X-Goog-Upload-Command: start",
                                NULL};
    const char *bodies[] = {"{\"file\":{\"displayNam\":\"x\"}}", "{\"fiel\":{}}", "{\"file\":"};
    for (size_t i = 0; i < 3; i++) {
        struct simh_resp r;
        simh_req(&sim, &r, "POST", "/upload/v1beta/files", bodies[i], strlen(bodies[i]), hdrs,
                 true);
        simh_assert_error(&r, 400, "INVALID_ARGUMENT");
        simh_resp_free(&r);
    }
    cr_assert_eq(simh_stat(&sim, "uploads_started"), 0);
}

Test(files, upload_through_v1)
{
    size_t len = strlen(small_content);
    char *url = start_upload("v1", "via-v1", len, MIME_JSONL);
    struct simh_resp r;
    send_cmd(url, "upload, finalize", 0, small_content, len, &r);
    json_object *f = final_file(&r);
    simh_resp_free(&r);
    check_uploaded_file(f, "v1", "via-v1", MIME_JSONL, small_content, len);
    char path[128];
    snprintf(path, sizeof(path), "/v1beta/%s", simh_str(f, "name"));
    json_object *g = simh_call(&sim, "GET", path, NULL, 200);
    cr_assert_str_eq(simh_str(g, "name"), simh_str(f, "name"));
    cr_assert_str_eq(simh_str(g, "sha256Hash"), simh_str(f, "sha256Hash"));
    json_object_put(g);
    json_object_put(f);
    free(url);
}

/* ---- 2. get and delete ---- */

Test(files, get_and_delete)
{
    size_t len = strlen(small_content);
    json_object *f = upload("to-delete", small_content, len, len);
    char path[128], v1path[128];
    snprintf(path, sizeof(path), "/v1beta/%s", simh_str(f, "name"));
    snprintf(v1path, sizeof(v1path), "/v1/%s", simh_str(f, "name"));

    json_object *g = simh_call(&sim, "GET", path, NULL, 200);
    check_uploaded_file(g, "v1beta", "to-delete", MIME_JSONL, small_content, len);
    cr_assert_str_eq(json_object_to_json_string(g), json_object_to_json_string(f),
                     "GET returns the bare File the upload returned");
    json_object_put(g);
    g = simh_call(&sim, "GET", v1path, NULL, 200);
    check_uploaded_file(g, "v1", "to-delete", MIME_JSONL, small_content, len);
    json_object_put(g);

    struct simh_resp r;
    simh_req(&sim, &r, "GET", path, NULL, 0, NULL, false);
    simh_assert_error(&r, 403, "PERMISSION_DENIED");
    simh_resp_free(&r);

    json_object *d = simh_call(&sim, "DELETE", path, NULL, 200);
    cr_assert(json_object_is_type(d, json_type_object));
    cr_assert_eq(json_object_object_length(d), 0, "delete returns {}");
    json_object_put(d);

    expect_error("GET", path, NULL, 404, "NOT_FOUND", NULL);
    expect_error("DELETE", path, NULL, 404, "NOT_FOUND", NULL);
    expect_error("GET", "/v1beta/files/nosuchfile12", NULL, 404, "NOT_FOUND", NULL);
    expect_error("GET", "/v1beta/files/Bad.Name", NULL, 404, "NOT_FOUND", NULL);
    json_object *l = simh_call(&sim, "GET", "/v1beta/files", NULL, 200);
    cr_assert_eq(json_object_object_length(l), 0, "no files left: %s",
                 json_object_to_json_string(l));
    json_object_put(l);
    cr_assert_eq(simh_stat(&sim, "file_deletes"), 2);
    json_object_put(f);
}

/* ---- 3. file-based batches ---- */

struct want_line {
    const char *key;
    const char *text;
    const char *task;
    int dims;
    bool fails;
};

/* §5.1: the COOKBOOK line verbatim, the JSSDK-style line, and more camelCase/snake_case mixes. */
static const char batch_input[] =
    "{\"key\": \"request_1\", \"request\": {\"output_dimensionality\": 3, \"content\": {\"parts\": "
    "[{\"text\": \"1\"}]}}}\n"
    "{\"key\": \"request_2\", \"request\": {\"model\": \"models/gemini-embedding-001\", "
    "\"content\": {\"parts\": [{\"text\": \"2\"}]}, \"taskType\": \"RETRIEVAL_DOCUMENT\", "
    "\"outputDimensionality\": 4}}\n"
    "{\"key\":\"request_3\",\"request\":{\"content\":{\"parts\":[{\"text\":\"multi \"},{\"text\":"
    "\"part\"}]},\"taskType\":\"CLUSTERING\",\"outputDimensionality\":16}}\n"
    "{\"request\":{\"model\":\"models/gemini-embedding-001\",\"content\":{\"parts\":[{\"text\":"
    "\"full size vector\"}]},\"task_type\":\"RETRIEVAL_QUERY\"},\"key\":\"request_4\"}\n";

static const struct want_line batch_want[] = {
    {"request_1", "1", "TASK_TYPE_UNSPECIFIED", 3, false},
    {"request_2", "2", "RETRIEVAL_DOCUMENT", 4, false},
    {"request_3", "multi part", "CLUSTERING", 16, false},
    {"request_4", "full size vector", "RETRIEVAL_QUERY", NATIVE_DIMS, false},
};

/* Parse the next line of a JSONL body at *pos; NULL at the end. Lines must end in \n. */
static json_object *next_line(const char *data, size_t len, size_t *pos)
{
    if (*pos >= len)
        return NULL;
    const char *start = data + *pos;
    const char *nl = memchr(start, '\n', len - *pos);
    cr_assert(nl, "output line at byte %zu has no trailing newline", *pos);
    size_t l = (size_t)(nl - start);
    struct json_tokener *tok = json_tokener_new();
    json_object *o = json_tokener_parse_ex(tok, start, (int)l);
    enum json_tokener_error e = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    cr_assert(o && e == json_tokener_success && end == l, "output line is not one JSON value: %.*s",
              (int)(l > 300 ? 300 : l), start);
    cr_assert(json_object_is_type(o, json_type_object), "output line is not an object");
    *pos += l + 1;
    return o;
}

/* Check one output line against what its input line asked for. */
static void check_line(json_object *line, const struct want_line *w)
{
    cr_assert_str_eq(simh_str(line, "key"), w->key);
    cr_assert_eq(json_object_object_length(line), 2, "line has extra fields: %s",
                 json_object_to_json_string(line));
    if (w->fails) {
        cr_assert_null(simh_get(line, "response"), "a failed item has no response");
        json_object *err = simh_get(line, "error");
        cr_assert(err && json_object_is_type(err, json_type_object));
        json_object *code = simh_get(err, "code");
        cr_assert(code && json_object_is_type(code, json_type_int), "error.code is a number");
        cr_assert_eq(json_object_get_int(code), 13);
        const char *msg = simh_str(err, "message");
        cr_assert(msg && *msg, "error.message missing");
        cr_assert_eq(json_object_object_length(err), 2, "error is {code, message}: %s",
                     json_object_to_json_string(err));
        return;
    }
    cr_assert_null(simh_get(line, "error"));
    json_object *resp = simh_get(line, "response");
    cr_assert(resp && json_object_is_type(resp, json_type_object), "no response object");
    cr_assert_eq(json_object_object_length(resp), 2, "response is {tokenCount, embedding}: %s",
                 json_object_to_json_string(resp));
    assert_str_type(resp, "tokenCount");
    char tokens[32];
    snprintf(tokens, sizeof(tokens), "%lld", expected_tokens(w->text));
    cr_assert_str_eq(simh_str(resp, "tokenCount"), tokens, "tokenCount of \"%s\"", w->text);
    cr_assert_eq(json_object_object_length(simh_get(resp, "embedding")), 1,
                 "embedding is {values}");
    float *exp = malloc(sizeof(float) * NATIVE_DIMS);
    cr_assert(exp);
    simh_expected_vector(MODEL, NATIVE_DIMS, w->task, w->text, strlen(w->text), w->dims, exp);
    simh_assert_vector(simh_get(resp, "embedding.values"), exp, w->dims);
    free(exp);
}

static const struct want_line *find_want(const struct want_line *w, size_t n, const char *key)
{
    for (size_t i = 0; key && i < n; i++)
        if (strcmp(w[i].key, key) == 0)
            return &w[i];
    return NULL;
}

/* Check a whole output file: every key exactly once. ordered: also in input order. Returns
 * whether the order differed from the input's. */
static bool check_output(const char *data, size_t len, const struct want_line *w, size_t n,
                         bool ordered)
{
    bool *seen = calloc(n, sizeof(*seen));
    cr_assert(seen);
    size_t pos = 0, count = 0;
    bool moved = false;
    json_object *line;
    while ((line = next_line(data, len, &pos))) {
        const struct want_line *x = find_want(w, n, simh_str(line, "key"));
        cr_assert(x, "unexpected key in %s", json_object_to_json_string(line));
        size_t idx = (size_t)(x - w);
        cr_assert(!seen[idx], "key %s appears twice", x->key);
        seen[idx] = true;
        if (idx != count)
            moved = true;
        cr_assert(!ordered || idx == count, "line %zu has key %s: not in input order", count + 1,
                  x->key);
        check_line(line, x);
        json_object_put(line);
        count++;
    }
    cr_assert_eq(count, n, "%zu output lines, want %zu", count, n);
    free(seen);
    return moved;
}

/* GET an absolute-path download; returns the body (caller frees). */
static char *download(const char *path, size_t *len)
{
    struct simh_resp r;
    simh_req(&sim, &r, "GET", path, NULL, 0, NULL, true);
    cr_assert_eq(r.curl_code, 0, "GET %s: transfer failed", path);
    cr_assert_eq(r.status, 200, "GET %s: status %ld; %.300s", path, r.status, r.body);
    char *body = r.body;
    *len = r.len;
    r.body = NULL;
    simh_resp_free(&r);
    return body;
}

/* Download the output of files/batch-X through all three URL forms; assert identical bytes. */
static char *download_all_forms(const char *file_name, size_t *len)
{
    char p1[160], p2[160], p3[160];
    snprintf(p1, sizeof(p1), "/v1beta/%s:download?alt=media", file_name);
    snprintf(p2, sizeof(p2), "/download/v1beta/%s:download?alt=media", file_name);
    snprintf(p3, sizeof(p3), "/v1beta/%s?alt=media", file_name);
    size_t l1, l2, l3;
    char *a = download(p1, &l1);
    char *b = download(p2, &l2);
    char *c = download(p3, &l3);
    cr_assert(l1 > 0, "empty output file");
    cr_assert(l1 == l2 && memcmp(a, b, l1) == 0, "%s and %s differ", p1, p2);
    cr_assert(l1 == l3 && memcmp(a, c, l1) == 0, "%s and %s differ", p1, p3);
    free(b);
    free(c);
    *len = l1;
    return a;
}

/* Create a batch and return its name "batches/..." (caller frees); checks the input echo. */
/* Create a batch and return its name "batches/..." (caller frees); checks the input echo.
 * slow: loading the file may outlast --pending-ms and --running-ms (a huge file, sanitizers),
 * so the reply may already show a later state. */
static char *create_file_batch(const char *body, const char *file_name, bool slow)
{
    json_object *op = simh_call(&sim, "POST", CREATE_PATH, body, 200);
    const char *name = simh_str(op, "name");
    assert_matches(name, "^batches/[a-z0-9]{36}$", "batch name");
    const char *st = simh_str(op, "metadata.state");
    cr_assert(st, "no metadata.state");
    bool pending = strcmp(st, "BATCH_STATE_PENDING") == 0;
    cr_assert(pending || (slow && (strcmp(st, "BATCH_STATE_RUNNING") == 0 ||
                                   strcmp(st, "BATCH_STATE_SUCCEEDED") == 0)),
              "state %s right after create", st);
    cr_assert_str_eq(simh_str(op, "metadata.inputConfig.fileName"), file_name);
    cr_assert_eq(json_object_object_length(simh_get(op, "metadata.inputConfig")), 1);
    if (strcmp(st, "BATCH_STATE_SUCCEEDED") != 0) {
        cr_assert_null(simh_get(op, "metadata.output"));
        cr_assert_null(simh_get(op, "response"));
        cr_assert_null(simh_get(op, "done"));
    }
    char *out = strdup(name);
    json_object_put(op);
    return out;
}

/* Wait for success and check the file-output shape; returns "files/batch-<id>" (caller frees). */
static char *wait_file_output(const char *batch, const char *input_file, const char *display,
                              size_t n, size_t n_failed)
{
    json_object *op = simh_wait_state(&sim, batch, "BATCH_STATE_SUCCEEDED", 10000);
    char want[96], num[32];
    snprintf(want, sizeof(want), "files/batch-%s", batch + strlen("batches/"));
    cr_assert(json_object_get_boolean(simh_get(op, "done")));
    cr_assert_null(simh_get(op, "error"));
    cr_assert_str_eq(simh_str(op, "metadata.model"), "models/" MODEL);
    if (display)
        cr_assert_str_eq(simh_str(op, "metadata.displayName"), display);
    cr_assert_str_eq(simh_str(op, "metadata.inputConfig.fileName"), input_file);
    cr_assert_str_eq(simh_str(op, "metadata.output.responsesFile"), want);
    cr_assert_eq(json_object_object_length(simh_get(op, "metadata.output")), 1,
                 "metadata.output holds only responsesFile");
    cr_assert_str_eq(simh_str(op, "response.@type"), TYPE_OUTPUT);
    cr_assert_str_eq(simh_str(op, "response.responsesFile"), want);
    cr_assert_eq(json_object_object_length(simh_get(op, "response")), 2,
                 "response is {@type, responsesFile}");
    cr_assert_null(simh_get(op, "response.inlinedResponses"));
    time_ns(simh_str(op, "metadata.endTime"));
    snprintf(num, sizeof(num), "%zu", n);
    cr_assert_str_eq(simh_str(op, "metadata.batchStats.requestCount"), num);
    if (n - n_failed) {
        snprintf(num, sizeof(num), "%zu", n - n_failed);
        cr_assert_str_eq(simh_str(op, "metadata.batchStats.successfulRequestCount"), num);
    } else {
        cr_assert_null(simh_get(op, "metadata.batchStats.successfulRequestCount"));
    }
    if (n_failed) {
        snprintf(num, sizeof(num), "%zu", n_failed);
        cr_assert_str_eq(simh_str(op, "metadata.batchStats.failedRequestCount"), num);
    } else {
        cr_assert_null(simh_get(op, "metadata.batchStats.failedRequestCount"));
    }
    cr_assert_null(simh_get(op, "metadata.batchStats.pendingRequestCount"));
    json_object_put(op);
    return strdup(want);
}

/* GET files/batch-X: a generated File whose size matches the download. */
static void check_generated_file(const char *file_name, size_t size)
{
    char path[160], num[32], uri[256];
    snprintf(path, sizeof(path), "/v1beta/%s", file_name);
    json_object *f = simh_call(&sim, "GET", path, NULL, 200);
    cr_assert_str_eq(simh_str(f, "name"), file_name);
    cr_assert_str_eq(simh_str(f, "source"), "GENERATED");
    cr_assert_str_eq(simh_str(f, "state"), "ACTIVE");
    cr_assert_str_eq(simh_str(f, "mimeType"), MIME_JSONL);
    assert_str_type(f, "sizeBytes");
    snprintf(num, sizeof(num), "%zu", size);
    cr_assert_str_eq(simh_str(f, "sizeBytes"), num);
    int64_t create = time_ns(simh_str(f, "createTime"));
    cr_assert(time_ns(simh_str(f, "updateTime")) >= create);
    snprintf(uri, sizeof(uri), "%s/v1beta/%s", sim.base, file_name);
    cr_assert_str_eq(simh_str(f, "uri"), uri);
    json_object_put(f);
}

Test(files, file_batch_end_to_end)
{
    size_t in_len = strlen(batch_input);
    json_object *file = upload("batch-input-1", batch_input, in_len, in_len);
    check_uploaded_file(file, "v1beta", "batch-input-1", MIME_JSONL, batch_input, in_len);
    char input[64], body[256];
    snprintf(input, sizeof(input), "%s", simh_str(file, "name"));
    json_object_put(file);

    snprintf(body, sizeof(body),
             "{\"batch\":{\"displayName\":\"svc-embed-file-1\",\"inputConfig\":{\"fileName\":"
             "\"%s\"}}}",
             input);
    char *b1 = create_file_batch(body, input, false);
    snprintf(body, sizeof(body),
             "{\"batch\":{\"display_name\":\"svc-embed-file-2\",\"input_config\":{\"file_name\":"
             "\"%s\"}}}",
             input);
    char *b2 = create_file_batch(body, input, false);
    cr_assert_str_neq(b1, b2);
    cr_assert_eq(simh_stat(&sim, "creates_accepted"), 2);
    cr_assert_eq(simh_stat(&sim, "texts_received"), 8);

    char *out1 = wait_file_output(b1, input, "svc-embed-file-1", 4, 0);
    char *out2 = wait_file_output(b2, input, "svc-embed-file-2", 4, 0);
    cr_assert_str_neq(out1, out2);

    size_t len1, len2;
    char *d1 = download_all_forms(out1, &len1);
    char *d2 = download_all_forms(out2, &len2);
    check_output(d1, len1, batch_want, 4, true);
    cr_assert(len1 == len2 && memcmp(d1, d2, len1) == 0, "same input, same output");
    cr_assert_eq(simh_stat(&sim, "downloads"), 6);

    check_generated_file(out1, len1);

    /* downloads need alt=media */
    char path[160];
    snprintf(path, sizeof(path), "/v1beta/%s:download", out1);
    expect_error("GET", path, NULL, 400, "INVALID_ARGUMENT", "alt=media");
    snprintf(path, sizeof(path), "/download/v1beta/%s:download", out1);
    expect_error("GET", path, NULL, 400, "INVALID_ARGUMENT", "alt=media");
    snprintf(path, sizeof(path), "/v1beta/%s:download?alt=json", out1);
    expect_error("GET", path, NULL, 400, "INVALID_ARGUMENT", "alt=media");
    /* without alt=media, files/batch-X is the File resource, not its bytes */
    snprintf(path, sizeof(path), "/v1beta/%s", out1);
    json_object *f = simh_call(&sim, "GET", path, NULL, 200);
    cr_assert_str_eq(simh_str(f, "source"), "GENERATED");
    json_object_put(f);
    /* and a download needs the API key */
    struct simh_resp r;
    snprintf(path, sizeof(path), "/download/v1beta/%s:download?alt=media", out1);
    simh_req(&sim, &r, "GET", path, NULL, 0, NULL, false);
    simh_assert_error(&r, 403, "PERMISSION_DENIED");
    simh_resp_free(&r);

    /* uploaded files cannot be downloaded, whatever the URL form */
    snprintf(path, sizeof(path), "/v1beta/%s:download?alt=media", input);
    expect_error("GET", path, NULL, 400, "INVALID_ARGUMENT", "Only generated files");
    snprintf(path, sizeof(path), "/download/v1beta/%s:download?alt=media", input);
    expect_error("GET", path, NULL, 400, "INVALID_ARGUMENT", "Only generated files");
    snprintf(path, sizeof(path), "/v1beta/%s?alt=media", input);
    expect_error("GET", path, NULL, 400, "INVALID_ARGUMENT", "Only generated files");
    /* unknown files: 404 */
    expect_error("GET", "/v1beta/files/batch-nosuchbatch:download?alt=media", NULL, 404,
                 "NOT_FOUND", NULL);
    expect_error("GET", "/v1beta/files/nosuchfile12:download?alt=media", NULL, 404, "NOT_FOUND",
                 NULL);

    /* deleting the generated file: {} and then it is gone, while the batch keeps its name */
    snprintf(path, sizeof(path), "/v1beta/%s", out2);
    json_object *d = simh_call(&sim, "DELETE", path, NULL, 200);
    cr_assert_eq(json_object_object_length(d), 0);
    json_object_put(d);
    expect_error("GET", path, NULL, 404, "NOT_FOUND", NULL);
    snprintf(path, sizeof(path), "/v1beta/%s:download?alt=media", out2);
    expect_error("GET", path, NULL, 404, "NOT_FOUND", NULL);
    json_object *op = simh_wait_state(&sim, b2, "BATCH_STATE_SUCCEEDED", 1000);
    cr_assert_str_eq(simh_str(op, "response.responsesFile"), out2);
    json_object_put(op);
    /* the other batch's output is unaffected */
    free(d1);
    d1 = download_all_forms(out1, &len1);
    cr_assert(len1 == len2 && memcmp(d1, d2, len1) == 0);

    free(d1);
    free(d2);
    free(out1);
    free(out2);
    free(b1);
    free(b2);
}

Test(files, output_file_exists_only_once_succeeded)
{
    simh_config(&sim, "{\"pending_ms\":600000}");
    size_t in_len = strlen(batch_input);
    char *input = upload_name("pending-input", batch_input, in_len);
    char body[256], path[160];
    snprintf(body, sizeof(body), "{\"batch\":{\"inputConfig\":{\"fileName\":\"%s\"}}}", input);
    char *b = create_file_batch(body, input, false);
    json_object *op = simh_wait_state(&sim, b, "BATCH_STATE_PENDING", 1000);
    cr_assert_null(simh_get(op, "metadata.output"));
    json_object_put(op);
    snprintf(path, sizeof(path), "/v1beta/files/batch-%s", b + strlen("batches/"));
    expect_error("GET", path, NULL, 404, "NOT_FOUND", NULL);
    snprintf(path, sizeof(path), "/v1beta/files/batch-%s:download?alt=media",
             b + strlen("batches/"));
    expect_error("GET", path, NULL, 404, "NOT_FOUND", NULL);
    /* the input file can go away without harming the batch */
    snprintf(path, sizeof(path), "/v1beta/%s", input);
    json_object_put(simh_call(&sim, "DELETE", path, NULL, 200));
    char cancel[128];
    snprintf(cancel, sizeof(cancel), "/v1beta/%s:cancel", b);
    json_object_put(simh_call(&sim, "POST", cancel, "{}", 200));
    op = simh_wait_state(&sim, b, "BATCH_STATE_CANCELLED", 1000);
    cr_assert_null(simh_get(op, "response"));
    json_object_put(op);
    snprintf(path, sizeof(path), "/v1beta/files/batch-%s:download?alt=media",
             b + strlen("batches/"));
    expect_error("GET", path, NULL, 404, "NOT_FOUND", NULL);
    free(b);
    free(input);
}

Test(files, file_batch_errors)
{
    expect_error("POST", CREATE_PATH,
                 "{\"batch\":{\"inputConfig\":{\"fileName\":\"files/nosuchfile12\"}}}", 404,
                 "NOT_FOUND", "files/nosuchfile12");

    /* an unknown field on line 3 */
    const char bad_field[] =
        "{\"key\":\"a\",\"request\":{\"content\":{\"parts\":[{\"text\":\"x\"}]}}}\n"
        "{\"key\":\"b\",\"request\":{\"content\":{\"parts\":[{\"text\":\"y\"}]}}}\n"
        "{\"key\":\"c\",\"request\":{\"content\":{\"parts\":[{\"text\":\"z\"}]},"
        "\"outputDimensionalty\":8}}\n";
    char *f1 = upload_name("bad-field", bad_field, strlen(bad_field));
    char body[256];
    snprintf(body, sizeof(body), "{\"batch\":{\"inputConfig\":{\"fileName\":\"%s\"}}}", f1);
    expect_error("POST", CREATE_PATH, body, 400, "INVALID_ARGUMENT", "line 3");
    expect_error("POST", CREATE_PATH, body, 400, "INVALID_ARGUMENT", "outputDimensionalty");

    /* broken JSON on line 2, and an unknown top-level field on line 1 */
    const char bad_json[] =
        "{\"key\":\"a\",\"request\":{\"content\":{\"parts\":[{\"text\":\"x\"}]}}}\n"
        "{\"key\":\"b\",\"request\":\n";
    char *f2 = upload_name("bad-json", bad_json, strlen(bad_json));
    snprintf(body, sizeof(body), "{\"batch\":{\"inputConfig\":{\"fileName\":\"%s\"}}}", f2);
    expect_error("POST", CREATE_PATH, body, 400, "INVALID_ARGUMENT", "line 2");
    const char openai[] = "{\"custom_id\":\"a\",\"content\":\"x\"}\n";
    char *f3 = upload_name("openai-style", openai, strlen(openai));
    snprintf(body, sizeof(body), "{\"batch\":{\"inputConfig\":{\"fileName\":\"%s\"}}}", f3);
    expect_error("POST", CREATE_PATH, body, 400, "INVALID_ARGUMENT", "line 1");

    /* a session that was started but never finalized is not a usable file */
    char *url = start_upload("v1beta", "unfinished", 10, MIME_JSONL);
    json_object *l = simh_call(&sim, "GET", "/v1beta/files", NULL, 200);
    json_object *files = simh_get(l, "files");
    cr_assert_eq(json_object_array_length(files), 4);
    const char *unfinished = simh_str(files, "0.name"); /* newest first */
    cr_assert_str_eq(simh_str(files, "0.displayName"), "unfinished");
    snprintf(body, sizeof(body), "{\"batch\":{\"inputConfig\":{\"fileName\":\"%s\"}}}", unfinished);
    expect_error("POST", CREATE_PATH, body, 404, "NOT_FOUND", NULL);
    json_object_put(l);
    /* nor is a generated-file name, nor a bare id */
    expect_error("POST", CREATE_PATH,
                 "{\"batch\":{\"inputConfig\":{\"fileName\":\"files/batch-abc\"}}}", 404,
                 "NOT_FOUND", NULL);
    expect_error("POST", CREATE_PATH, "{\"batch\":{\"inputConfig\":{\"fileName\":\"abc\"}}}", 400,
                 "INVALID_ARGUMENT", NULL);

    cr_assert_eq(simh_stat(&sim, "creates_accepted"), 0);
    cr_assert_eq(simh_stat(&sim, "batches"), 0);
    free(url);
    free(f1);
    free(f2);
    free(f3);
}

/* ---- 4. a 100,000-line file ---- */

#define BIG_N 100000

static const char *const big_tasks[] = {"RETRIEVAL_DOCUMENT", "RETRIEVAL_QUERY",
                                        "SEMANTIC_SIMILARITY"};

static void big_text(size_t i, char *out, size_t n)
{
    snprintf(out, n, "line %zu of the big file, topic %zu: %s", i, (i * 7919) % 1000,
             i % 2 ? "odd" : "even");
}

Test(files, hundred_thousand_lines, .timeout = TIMEOUT_S)
{
    struct buf in;
    buf_init(&in, (size_t)1 << 30);
    char text[128];
    for (size_t i = 0; i < BIG_N; i++) {
        big_text(i, text, sizeof(text));
        cr_assert(buf_printf(&in,
                             "{\"key\":\"k%06zu\",\"request\":{\"content\":{\"parts\":[{\"text\":"
                             "\"%s\"}]},\"taskType\":\"%s\",\"outputDimensionality\":8}}\n",
                             i, text, big_tasks[i % 3]));
    }
    /* PYSDK-style 8 MiB chunks */
    json_object *file = upload("big-input", in.data, in.len, 8 << 20);
    check_uploaded_file(file, "v1beta", "big-input", MIME_JSONL, in.data, in.len);
    cr_assert(in.len > (8u << 20), "the input spans more than one chunk (%zu bytes)", in.len);
    char input[64], body[256];
    snprintf(input, sizeof(input), "%s", simh_str(file, "name"));
    json_object_put(file);
    buf_cleanup(&in);

    snprintf(body, sizeof(body),
             "{\"batch\":{\"displayName\":\"big\",\"inputConfig\":{\"fileName\":\"%s\"}}}", input);
    char *b = create_file_batch(body, input, true);
    char *out = wait_file_output(b, input, "big", BIG_N, 0);
    size_t len;
    char *data = download_all_forms(out, &len);
    check_generated_file(out, len);

    bool *seen = calloc(BIG_N, sizeof(*seen));
    cr_assert(seen);
    size_t pos = 0, count = 0, checked = 0;
    json_object *line;
    while ((line = next_line(data, len, &pos))) {
        const char *key = simh_str(line, "key");
        unsigned idx;
        char tail;
        cr_assert(key && sscanf(key, "k%6u%c", &idx, &tail) == 1 && idx < BIG_N,
                  "bad key in line %zu", count + 1);
        cr_assert(!seen[idx], "key %s appears twice", key);
        seen[idx] = true;
        cr_assert_eq(idx, count, "line %zu has key %s: not in input order", count + 1, key);
        json_object *values = simh_get(line, "response.embedding.values");
        cr_assert(values && json_object_array_length(values) == 8, "line %zu: not 8 values",
                  count + 1);
        if (idx % 2000 == 1999) {
            big_text(idx, text, sizeof(text));
            struct want_line w = {key, text, big_tasks[idx % 3], 8, false};
            check_line(line, &w);
            checked++;
        }
        json_object_put(line);
        count++;
    }
    cr_assert_eq(count, BIG_N, "%zu output lines, want %d", count, BIG_N);
    for (size_t i = 0; i < BIG_N; i++)
        cr_assert(seen[i], "key k%06zu missing", i);
    cr_assert_eq(checked, 50);
    free(seen);
    free(data);
    free(out);
    free(b);
}

/* ---- 5. per-item errors ---- */

Test(files_fail, failed_items_in_output_file)
{
    const char input[] =
        "{\"key\":\"ok-1\",\"request\":{\"content\":{\"parts\":[{\"text\":\"fine text\"}]},"
        "\"outputDimensionality\":5}}\n"
        "{\"key\":\"bad-1\",\"request\":{\"content\":{\"parts\":[{\"text\":\"please FAILME "
        "now\"}]},"
        "\"outputDimensionality\":5}}\n"
        "{\"key\":\"ok-2\",\"request\":{\"content\":{\"parts\":[{\"text\":\"FAIL ME is fine\"}]},"
        "\"taskType\":\"CLASSIFICATION\",\"outputDimensionality\":5}}\n"
        "{\"key\":\"bad-2\",\"request\":{\"content\":{\"parts\":[{\"text\":\"FAIL\"},{\"text\":"
        "\"ME\"}]},\"outputDimensionality\":5}}\n";
    static const struct want_line want[] = {
        {"ok-1", "fine text", "TASK_TYPE_UNSPECIFIED", 5, false},
        {"bad-1", "please FAILME now", "TASK_TYPE_UNSPECIFIED", 5, true},
        {"ok-2", "FAIL ME is fine", "CLASSIFICATION", 5, false},
        {"bad-2", "FAILME", "TASK_TYPE_UNSPECIFIED", 5, true},
    };
    char *in = upload_name("with-failures", input, strlen(input));
    char body[256];
    snprintf(body, sizeof(body), "{\"batch\":{\"inputConfig\":{\"fileName\":\"%s\"}}}", in);
    char *b = create_file_batch(body, in, false);
    char *out = wait_file_output(b, in, NULL, 4, 2);
    size_t len;
    char *data = download_all_forms(out, &len);
    check_output(data, len, want, 4, true);
    /* the line shape: {"error":{"code":13,"message":...},"key":...} */
    cr_assert(strstr(data, "{\"error\":{\"code\":13,\"message\":"), "%s", data);
    free(data);
    free(out);
    free(b);
    free(in);
}

/* ---- 6. shuffled output ---- */

#define SHUF_N 24

Test(files_shuffle, shuffled_lines_keep_their_keys)
{
    static char keys[SHUF_N][16], texts[SHUF_N][48];
    struct want_line want[SHUF_N];
    struct buf in;
    buf_init(&in, 1 << 20);
    for (size_t i = 0; i < SHUF_N; i++) {
        snprintf(keys[i], sizeof(keys[i]), "s-%02zu", i);
        snprintf(texts[i], sizeof(texts[i]), "shuffled text number %zu", i);
        want[i] = (struct want_line){keys[i], texts[i], i % 2 ? "CLUSTERING" : "RETRIEVAL_QUERY",
                                     (int)(4 + i % 3), false};
        cr_assert(buf_printf(&in,
                             "{\"key\":\"%s\",\"request\":{\"content\":{\"parts\":[{\"text\":"
                             "\"%s\"}]},\"taskType\":\"%s\",\"outputDimensionality\":%d}}\n",
                             keys[i], texts[i], want[i].task, want[i].dims));
    }
    char *input = upload_name("shuffle-input", in.data, in.len);
    buf_cleanup(&in);
    char body[256];
    snprintf(body, sizeof(body), "{\"batch\":{\"inputConfig\":{\"fileName\":\"%s\"}}}", input);
    char *b = create_file_batch(body, input, false);
    char *out = wait_file_output(b, input, NULL, SHUF_N, 0);
    size_t len;
    char *data = download_all_forms(out, &len);
    bool moved = check_output(data, len, want, SHUF_N, false);
    cr_assert(moved, "with --shuffle the output must not be in input order");
    free(data);
    free(out);
    free(b);
    free(input);
}
