/* test_gemini_files.c: the Gemini client's file path against a real gemini-sim: uploads from a
 * file descriptor in pieces, resumed after pieces cut off in flight; files get, list and delete;
 * an inline batch answered with a file; a rate-limited create; the cost of each call. */
#include "harness.h"

#include "gemini/client.h"
#include "gemini/request.h"
#include "log.h"
#include "util/buf.h"
#include "util/crypto.h"

#include <criterion/criterion.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MODEL  "gemini-embedding-001"
#define NATIVE 3072
#define TASK   "RETRIEVAL_DOCUMENT"
#define DIMS   8
#define KIB    ((size_t)1024)
#define MIB    (KIB * KIB)

static struct simh sim;
static struct gem_client *cli;

static void setup(void)
{
    static const char *const f[] = {"--pending-ms=20", "--running-ms=20", NULL};
    cr_assert(gem_global_init());
    simh_start(&sim, f);
    struct gem_client_opts o = {sim.base, "v1beta", SIMH_KEY, 2000, 20000, 0, NULL, 0};
    cli = gem_client_new(&o);
    cr_assert_not_null(cli);
}

static void teardown(void)
{
    gem_client_free(cli);
    simh_stop(&sim);
    gem_global_cleanup();
}

TestSuite(gfiles, .init = setup, .fini = teardown, .timeout = 120);

/* The outcome and status wanted (http < 0: any), never the key, and a detail on failure. */
static void expect(const struct gem_call *r, enum gem_outcome want, long http)
{
    cr_assert_null(strstr(r->detail, SIMH_KEY), "API key in detail: %s", r->detail);
    cr_assert_null(strstr(r->status.message, SIMH_KEY), "API key in status message");
    cr_assert_eq(r->outcome, want, "outcome %s, want %s (http %ld: %s)",
                 gem_outcome_name(r->outcome), gem_outcome_name(want), r->http, r->detail);
    if (http >= 0)
        cr_assert_eq(r->http, http, "http %ld, want %ld (%s)", r->http, http, r->detail);
    if (want != GEM_OK)
        cr_assert(r->detail[0], "a failure comes with a detail");
}

/* A temporary file of len bytes of a repeating JSONL-like pattern; its bytes go to *data
 * (caller frees) and its SHA-256 (base64, as Google's sha256Hash) to sha. Returns the fd. */
static int temp_file(size_t len, char **data, char sha[BASE64_ENCODED_SIZE(32)])
{
    char path[] = "/tmp/gfiles-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    unlink(path);
    char *p = malloc(len ? len : 1);
    cr_assert_not_null(p);
    for (size_t i = 0; i < len; i++)
        p[i] = (i % 64 == 63) ? '\n' : (char)('a' + (i * 31 + i / 4093) % 26);
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, p + off, len - off);
        cr_assert(w > 0);
        off += (size_t)w;
    }
    unsigned char digest[SHA256_LEN];
    cr_assert(sha256_digest(p, len, digest));
    base64_encode(sha, digest, sizeof(digest));
    *data = p;
    return fd;
}

/* GET the file and check it holds exactly the bytes sent (size and hash), ACTIVE. */
static void assert_file_is(const char *name, const char *display, size_t len, const char *sha)
{
    struct gem_file f;
    struct gem_call res;
    gem_get_file(cli, name, &f, &res);
    expect(&res, GEM_OK, 200);
    cr_assert_eq(res.endpoint, GEM_EP_FILES);
    cr_assert_str_eq(f.name, name);
    cr_assert_str_eq(f.display_name, display);
    cr_assert_eq(f.state, GEM_FILE_ACTIVE);
    cr_assert_eq(f.size_bytes, (int64_t)len, "sizeBytes %lld, sent %zu", (long long)f.size_bytes,
                 len);
    cr_assert_str_eq(f.sha256_hash, sha, "the stored bytes are not the bytes sent");
}

static const struct gem_upload_opts fast = {256 * KIB, 4, 10, 50};

/* ---- uploads in pieces ---- */

Test(gfiles, upload_fd_in_many_pieces)
{
    simh_config(&sim, "{\"upload_granularity\":262144}");
    size_t len = 20 * MIB + 12345; /* the last piece is short */
    char *data, sha[BASE64_ENCODED_SIZE(32)], name[128];
    int fd = temp_file(len, &data, sha);
    /* the fd's position is not used: move it somewhere odd */
    cr_assert_eq(lseek(fd, 5, SEEK_SET), 5);
    struct gem_call res;
    gem_upload_fd(cli, "embedd-big", fd, len, &fast, name, sizeof(name), &res);
    expect(&res, GEM_OK, 200);
    cr_assert_eq(strncmp(name, "files/", 6), 0, "%s", name);
    size_t pieces = (len + 256 * KIB - 1) / (256 * KIB);
    cr_assert_eq(simh_stat(&sim, "upload_pieces"), (long long)pieces);
    cr_assert_eq(simh_stat(&sim, "upload_queries"), 0);
    cr_assert_eq(simh_stat(&sim, "file_bytes_received"), (long long)len);
    cr_assert_eq(simh_stat(&sim, "uploads_finalized"), 1);
    /* the call's cost: a start and every piece, each byte sent once */
    cr_assert_eq(res.endpoint, GEM_EP_UPLOAD);
    cr_assert_eq(res.requests, 1 + pieces);
    cr_assert_gt(res.bytes_sent, len);
    cr_assert_lt(res.bytes_sent, len + 200, "%llu bytes sent for %zu",
                 (unsigned long long)res.bytes_sent, len);
    cr_assert_gt(res.bytes_received, 0);
    cr_assert_geq(res.elapsed_ms, 0);
    assert_file_is(name, "embedd-big", len, sha);
    close(fd);
    free(data);
}

Test(gfiles, pieces_follow_the_announced_granularity)
{
    /* the simulator announces Google's 8 MiB: 256 KiB pieces become 8 MiB ones */
    size_t len = 9 * MIB;
    char *data, sha[BASE64_ENCODED_SIZE(32)], name[128];
    int fd = temp_file(len, &data, sha);
    struct gem_call res;
    gem_upload_fd(cli, "granular", fd, len, &fast, name, sizeof(name), &res);
    expect(&res, GEM_OK, 200);
    cr_assert_eq(simh_stat(&sim, "upload_pieces"), 2);
    assert_file_is(name, "granular", len, sha);

    /* default options: 8 MiB pieces, as Google's SDKs send */
    gem_upload_fd(cli, "defaults", fd, len, NULL, name, sizeof(name), &res);
    expect(&res, GEM_OK, 200);
    cr_assert_eq(simh_stat(&sim, "upload_pieces"), 4);
    assert_file_is(name, "defaults", len, sha);
    close(fd);
    free(data);
}

Test(gfiles, upload_resumes_from_the_queried_offset)
{
    simh_config(&sim, "{\"upload_granularity\":262144,\"upload_cut_count\":2,"
                      "\"upload_cut_keep\":0.3}");
    size_t len = 3 * MIB + 777;
    char *data, sha[BASE64_ENCODED_SIZE(32)], name[128];
    int fd = temp_file(len, &data, sha);
    struct gem_call res;
    gem_upload_fd(cli, "resumed", fd, len, &fast, name, sizeof(name), &res);
    expect(&res, GEM_OK, 200);
    cr_assert_eq(simh_stat(&sim, "faults.upload_cut"), 2);
    cr_assert_eq(simh_stat(&sim, "upload_queries"), 2, "one offset query per cut");
    /* every byte arrived exactly once, in order: the counts and the hash say so */
    cr_assert_eq(simh_stat(&sim, "file_bytes_received"), (long long)len);
    assert_file_is(name, "resumed", len, sha);
    cr_assert_eq(res.requests, 1 + (unsigned)simh_stat(&sim, "upload_pieces") + 2);
    /* the bytes of the cut pieces that were lost went again */
    cr_assert_gt(res.bytes_sent, len + 256 * KIB, "%llu bytes sent for %zu",
                 (unsigned long long)res.bytes_sent, len);
    close(fd);
    free(data);
}

Test(gfiles, upload_resumes_after_5xx_429_and_a_cut_finalize)
{
    static const char *const faults[] = {
        "{\"upload_cut_count\":1,\"upload_cut_status\":503,\"upload_cut_keep\":0.5}",
        "{\"upload_cut_count\":1,\"upload_cut_status\":429,\"upload_cut_keep\":0}",
        "{\"upload_cut_count\":1,\"upload_cut_status\":0,\"upload_cut_keep\":1}", NULL};
    size_t len = 100 * KIB; /* one piece: the cut one is the finalizing one */
    char *data, sha[BASE64_ENCODED_SIZE(32)], name[128], display[32];
    int fd = temp_file(len, &data, sha);
    for (int i = 0; faults[i]; i++) {
        simh_config(&sim, faults[i]);
        snprintf(display, sizeof(display), "one-piece-%d", i);
        struct gem_call res;
        gem_upload_fd(cli, display, fd, len, &fast, name, sizeof(name), &res);
        expect(&res, GEM_OK, 200);
        assert_file_is(name, display, len, sha);
    }
    cr_assert_eq(simh_stat(&sim, "upload_queries"), 3);
    cr_assert_eq(simh_stat(&sim, "uploads_finalized"), 3);
    cr_assert_eq(simh_stat(&sim, "file_bytes_received"), 3 * (long long)len);
    close(fd);
    free(data);
}

Test(gfiles, upload_gives_up_without_progress)
{
    simh_config(&sim, "{\"upload_cut_rate\":1,\"upload_cut_keep\":0,\"upload_cut_status\":503}");
    size_t len = 300 * KIB;
    char *data, sha[BASE64_ENCODED_SIZE(32)], name[128];
    int fd = temp_file(len, &data, sha);
    struct gem_call res;
    gem_upload_fd(cli, "doomed", fd, len, &fast, name, sizeof(name), &res);
    expect(&res, GEM_RETRY, 503);
    cr_assert(strstr(res.detail, "gave up at byte 0"), "%s", res.detail);
    cr_assert_str_eq(name, "");
    /* start, then 4 tries: each a piece (cut) and, between them, 3 queries */
    cr_assert_eq(simh_stat(&sim, "faults.upload_cut"), 4);
    cr_assert_eq(simh_stat(&sim, "upload_queries"), 3);
    cr_assert_eq(res.requests, 1 + 4 + 3);
    cr_assert_eq(simh_stat(&sim, "uploads_finalized"), 0);
    close(fd);
    free(data);
}

Test(gfiles, permanent_4xx_is_fatal)
{
    char name[128] = "junk";
    struct gem_call res;
    char *data, sha[BASE64_ENCODED_SIZE(32)];
    int fd = temp_file(1000, &data, sha);
    simh_config(&sim,
                "{\"http_error_count\":1,\"http_error_code\":403,\"fault_scope\":\"upload\"}");
    gem_upload_fd(cli, "forbidden", fd, 1000, &fast, name, sizeof(name), &res);
    expect(&res, GEM_FATAL, 403);
    cr_assert_eq(res.requests, 1, "a 4xx is not retried");
    cr_assert_str_eq(name, "");
    cr_assert_eq(simh_stat(&sim, "uploads_started"), 0);
    close(fd);
    free(data);
}

/* A simulator that keeps at most 600,000 bytes per file: the third 256 KiB piece gets 413. */
static void setup_small(void)
{
    static const char *const f[] = {"--max-body-bytes=600000", "--upload-granularity=262144", NULL};
    cr_assert(gem_global_init());
    simh_start(&sim, f);
    struct gem_client_opts o = {sim.base, "v1beta", SIMH_KEY, 2000, 20000, 0, NULL, 0};
    cli = gem_client_new(&o);
    cr_assert_not_null(cli);
}

Test(gfiles_small, permanent_4xx_on_a_piece_is_fatal, .init = setup_small, .fini = teardown,
     .timeout = 120)
{
    char *data, sha[BASE64_ENCODED_SIZE(32)], name[128] = "junk";
    int fd = temp_file(MIB, &data, sha);
    struct gem_call res;
    gem_upload_fd(cli, "too-big", fd, MIB, &fast, name, sizeof(name), &res);
    expect(&res, GEM_FATAL, 413);
    cr_assert_str_eq(name, "");
    cr_assert_eq(res.requests, 1 + 3, "no query, no retry after a 4xx");
    cr_assert_eq(simh_stat(&sim, "upload_queries"), 0);
    cr_assert_eq(simh_stat(&sim, "upload_pieces"), 2);
    close(fd);
    free(data);
}

Test(gfiles, unreadable_file_and_bad_arguments_are_fatal)
{
    char *data, sha[BASE64_ENCODED_SIZE(32)], name[128];
    int fd = temp_file(1000, &data, sha);
    struct gem_call res;
    /* the file is shorter than announced: it ends early */
    gem_upload_fd(cli, "short", fd, 300 * KIB, &fast, name, sizeof(name), &res);
    expect(&res, GEM_FATAL, 0);
    cr_assert(strstr(res.detail, "could not read the file"), "%s", res.detail);
    cr_assert(strstr(res.detail, "ended early"), "%s", res.detail);
    cr_assert_str_eq(name, "");
    /* a descriptor that is not open */
    gem_upload_fd(cli, "closed", 1000000, 10, &fast, name, sizeof(name), &res);
    expect(&res, GEM_FATAL, 0);
    cr_assert(strstr(res.detail, "could not read the file"), "%s", res.detail);
    gem_upload_fd(cli, "neg", -1, 10, &fast, name, sizeof(name), &res);
    expect(&res, GEM_FATAL, 0);
    cr_assert_eq(res.requests, 0, "refused before anything was sent");
    struct gem_upload_opts odd = {100 * KIB, 0, 0, 0};
    gem_upload_fd(cli, "odd", fd, 1000, &odd, name, sizeof(name), &res);
    expect(&res, GEM_FATAL, 0);
    cr_assert(strstr(res.detail, "256 KiB"), "%s", res.detail);
    cr_assert_eq(simh_stat(&sim, "uploads_finalized"), 0);
    close(fd);
    free(data);
}

/* ---- files get, list, delete: what a restarted worker needs ---- */

Test(gfiles, list_get_delete_by_display_name)
{
    static const char *const names[] = {"embedd-job1-b1", "embedd-job1-b2", "embedd-job2-b1"};
    char uploaded[3][128];
    struct gem_call res;
    for (int i = 0; i < 3; i++) {
        char body[64];
        snprintf(body, sizeof(body), "{\"key\":\"%d\"}\n", i);
        gem_upload_file(cli, names[i], body, strlen(body), uploaded[i], sizeof(uploaded[i]), &res);
        expect(&res, GEM_OK, 200);
    }
    /* an upload that never finished, as a crash leaves it */
    static const char *const hdrs[] = {"X-Goog-Upload-Protocol: resumable",
                                       "X-Goog-Upload-Command: start",
                                       "X-Goog-Upload-Header-Content-Length: 100", NULL};
    struct simh_resp r;
    static const char meta[] = "{\"file\":{\"displayName\":\"embedd-job3-b1\"}}";
    simh_req(&sim, &r, "POST", "/upload/v1beta/files", meta, strlen(meta), hdrs, true);
    cr_assert_eq(r.status, 200);
    simh_resp_free(&r);

    /* every page, two at a time */
    char token[128] = "", found[4][128];
    int n_found = 0, pages = 0, unfinished = -1;
    do {
        struct gem_file *files;
        size_t n;
        gem_list_files(cli, 2, token, &files, &n, token, sizeof(token), &res);
        expect(&res, GEM_OK, 200);
        cr_assert_eq(res.endpoint, GEM_EP_FILES);
        cr_assert_leq(n, 2);
        for (size_t i = 0; i < n; i++) {
            cr_assert_lt(n_found, 4);
            snprintf(found[n_found], sizeof(found[0]), "%s", files[i].name);
            if (strcmp(files[i].display_name, "embedd-job3-b1") == 0) {
                cr_assert_eq(files[i].state, GEM_FILE_PROCESSING);
                unfinished = n_found;
            } else {
                cr_assert_eq(files[i].state, GEM_FILE_ACTIVE, "%s", files[i].display_name);
                cr_assert_gt(files[i].size_bytes, 0);
                cr_assert_eq(strncmp(files[i].display_name, "embedd-job", 10), 0);
            }
            n_found++;
        }
        free(files);
        pages++;
    } while (token[0]);
    cr_assert_eq(pages, 2);
    cr_assert_eq(n_found, 4);
    cr_assert_geq(unfinished, 0);

    /* an orphan goes: the unfinished upload and one finished file */
    gem_delete_file(cli, found[unfinished], &res);
    expect(&res, GEM_OK, 200);
    gem_delete_file(cli, uploaded[1], &res);
    expect(&res, GEM_OK, 200);
    struct gem_file f;
    gem_get_file(cli, uploaded[1], &f, &res);
    expect(&res, GEM_FATAL, 404);
    cr_assert_str_eq(f.name, "");
    gem_delete_file(cli, uploaded[1], &res);
    expect(&res, GEM_FATAL, 404);
    gem_get_file(cli, "batches/abc", &f, &res);
    expect(&res, GEM_FATAL, 0);

    struct gem_file *files;
    size_t n;
    gem_list_files(cli, 0, NULL, &files, &n, token, sizeof(token), &res);
    expect(&res, GEM_OK, 200);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(token, "");
    free(files);
    cr_assert_eq(simh_stat(&sim, "files_deleted"), 2);
    cr_assert_eq(simh_stat(&sim, "file_lists"), 3);
}

/* ---- an inline batch answered with a file (§9 item 6) ---- */

#define T(k, s)                                                                                    \
    {                                                                                              \
        k, s, sizeof(s) - 1, NULL                                                                  \
    }
static const struct gem_text texts[] = {T("k-0", "first chunk"), T("k-1", "second chunk"),
                                        T("k-2", "a third one")};

static bool feed_lines(void *ud, const char *p, size_t n)
{
    return gem_lines_feed(ud, p, n);
}

/* An inline batch of the three texts, answered with a results file (the
 * simulator's inline_as_file), created and polled until it succeeded: that
 * file's name into file. */
static void done_file_batch(char *file, size_t len)
{
    simh_config(&sim, "{\"inline_as_file\":true}");
    struct gem_req_opts o = {MODEL, TASK, DIMS};
    struct buf body;
    buf_init(&body, 1 << 20);
    cr_assert(gem_build_batch(&body, "inline-in-file-out", &o, texts, 3));
    struct gem_operation op;
    struct gem_call res;
    gem_create_batch(cli, MODEL, body.data, body.len, &op, &res);
    buf_cleanup(&body);
    expect(&res, GEM_OK, 200);
    char name[128];
    snprintf(name, sizeof(name), "%s", op.name);
    gem_operation_free(&op);
    int64_t deadline = simh_ms() + 10000;
    for (;;) {
        gem_get_batch(cli, name, &op, &res);
        expect(&res, GEM_OK, 200);
        if (op.state == GEM_STATE_SUCCEEDED)
            break;
        cr_assert(simh_ms() < deadline && !gem_state_terminal(op.state));
        gem_operation_free(&op);
        struct timespec ts = {0, 10000000L};
        nanosleep(&ts, NULL);
    }
    cr_assert_not(op.has_inline, "no inline results");
    cr_assert_eq(op.n_results, 0);
    cr_assert(op.responses_file[0], "the output is a file");
    snprintf(file, len, "%s", op.responses_file);
    gem_operation_free(&op);
}

Test(gfiles, inline_batch_answered_with_a_file)
{
    char file[256];
    done_file_batch(file, sizeof(file));
    struct gem_call res;
    struct gem_lines l;
    gem_lines_init(&l);
    gem_download_stream(cli, file, feed_lines, NULL, &l, &res);
    expect(&res, GEM_OK, 200);
    cr_assert_eq(res.endpoint, GEM_EP_DOWNLOAD);
    cr_assert(gem_lines_finish(&l));
    cr_assert_eq(l.n, 3);
    cr_assert_eq(l.bad, 0, "%s", l.err);
    float want[DIMS];
    for (size_t i = 0; i < l.n; i++) {
        const struct gem_text *t = NULL;
        for (size_t j = 0; j < 3; j++)
            if (l.results[i].key && strcmp(l.results[i].key, texts[j].key) == 0)
                t = &texts[j];
        cr_assert_not_null(t, "line %zu has no key of ours", i);
        simh_expected_vector(MODEL, NATIVE, TASK, t->text, t->text_len, DIMS, want);
        cr_assert_eq(l.results[i].dims, DIMS);
        cr_assert_eq(memcmp(l.results[i].values, want, sizeof(want)), 0, "%s", t->key);
    }
    cr_assert_gt(res.bytes_received, 0);
    gem_lines_cleanup(&l);
}

/* A results file whose download begins later than the client's call timeout:
 * downloads are bound by a stall (no byte for stall_timeout_ms), not by the
 * whole-call timeout, so a large file that takes long to receive and store is
 * not cut and fetched again from the start forever. */
Test(gfiles, download_outlasts_the_call_timeout_until_it_stalls)
{
    char file[256];
    done_file_batch(file, sizeof(file));
    /* the download waits 1.5 s at the simulator before its first byte */
    simh_config(&sim, "{\"latency_ms\":1500,\"fault_scope\":\"download\"}");
    struct gem_client_opts co = {sim.base, "v1beta", SIMH_KEY, 2000, 500, 0, NULL, 5000};
    struct gem_client *c = gem_client_new(&co);
    cr_assert_not_null(c);
    struct gem_lines l;
    gem_lines_init(&l);
    struct gem_call res;
    gem_download_stream(c, file, feed_lines, NULL, &l, &res);
    expect(&res, GEM_OK, 200);
    cr_assert(gem_lines_finish(&l));
    cr_assert_eq(l.n, 3, "every line, though the call timeout is 500 ms");
    gem_lines_cleanup(&l);
    /* other calls keep their deadline */
    struct gem_file f;
    simh_config(&sim, "{\"latency_ms\":1500,\"fault_scope\":\"files\"}");
    gem_get_file(c, file, &f, &res);
    cr_assert_neq(res.outcome, GEM_OK, "a file GET still times out after 500 ms");
    gem_client_free(c);

    /* a stall shorter than the wait ends the download, and says so */
    simh_config(&sim, "{\"latency_ms\":1500,\"fault_scope\":\"download\"}");
    struct gem_client_opts so = {sim.base, "v1beta", SIMH_KEY, 2000, 20000, 0, NULL, 500};
    c = gem_client_new(&so);
    cr_assert_not_null(c);
    gem_lines_init(&l);
    gem_download_stream(c, file, feed_lines, NULL, &l, &res);
    cr_assert_eq(res.outcome, GEM_RETRY, "%s", res.detail);
    cr_assert(strstr(res.detail, "no data for 500 ms"), "%s", res.detail);
    gem_lines_cleanup(&l);
    gem_client_free(c);
    simh_config(&sim, "{\"latency_ms\":0}");
}

/* The tick of a streamed download: called about once a second from before
 * the first byte (a worker renews its batch's lease there), and false from it
 * stops the download. */
static int ticks;
static bool tick_count(void *ud)
{
    (void)ud;
    ticks++;
    return true;
}

static bool tick_stop(void *ud)
{
    (void)ud;
    ticks++;
    return false;
}

Test(gfiles, download_tick_runs_before_the_first_byte_and_can_stop_it)
{
    char file[256];
    done_file_batch(file, sizeof(file));
    simh_config(&sim, "{\"latency_ms\":2500,\"fault_scope\":\"download\"}");
    struct gem_lines l;
    gem_lines_init(&l);
    struct gem_call res;
    ticks = 0;
    gem_download_stream(cli, file, feed_lines, tick_count, &l, &res);
    expect(&res, GEM_OK, 200);
    cr_assert(gem_lines_finish(&l));
    cr_assert_eq(l.n, 3);
    cr_assert_geq(ticks, 2, "ticks while the first byte was 2.5 s away: %d", ticks);
    gem_lines_cleanup(&l);

    gem_lines_init(&l);
    ticks = 0;
    gem_download_stream(cli, file, feed_lines, tick_stop, &l, &res);
    cr_assert_eq(res.outcome, GEM_RETRY, "%s", res.detail);
    cr_assert_eq(ticks, 1, "stopped at the first tick");
    cr_assert_eq(l.n, 0, "nothing read");
    gem_lines_cleanup(&l);
    simh_config(&sim, "{\"latency_ms\":0}");
}

/* ---- create rate-limited ---- */

Test(gfiles, create_429_without_retry_info)
{
    simh_config(&sim,
                "{\"http_error_count\":1,\"http_error_code\":429,\"fault_scope\":\"create\"}");
    struct gem_req_opts o = {MODEL, TASK, DIMS};
    struct buf body;
    buf_init(&body, 1 << 20);
    cr_assert(gem_build_batch(&body, "limited", &o, texts, 3));
    struct gem_operation op;
    struct gem_call res;
    gem_create_batch(cli, MODEL, body.data, body.len, &op, &res);
    expect(&res, GEM_RETRY, 429);
    cr_assert_str_eq(res.status.status, "RESOURCE_EXHAUSTED");
    cr_assert_eq(res.retry_after_ms, -1, "no RetryInfo: the caller picks the backoff");
    cr_assert_eq(res.endpoint, GEM_EP_CREATE);
    cr_assert_eq(res.requests, 1);
    cr_assert_eq(res.bytes_sent, body.len);
    cr_assert_gt(res.bytes_received, 0, "the error body counts");
    cr_assert_eq(simh_stat(&sim, "creates_accepted"), 0);
    gem_create_batch(cli, MODEL, body.data, body.len, &op, &res);
    expect(&res, GEM_OK, 200);
    gem_operation_free(&op);
    buf_cleanup(&body);
    cr_assert_eq(simh_stat(&sim, "creates_accepted"), 1);
}

/* ---- one debug line per call, never the key ---- */

Test(gfiles, one_debug_line_per_call_without_the_key)
{
    char path[] = "/tmp/gfiles-log-XXXXXX";
    int logfd = mkstemp(path);
    cr_assert(logfd >= 0);
    fflush(stderr);
    int saved = dup(2);
    cr_assert(dup2(logfd, 2) >= 0);
    log_current_level = LOG_DEBUG;

    char name[128];
    struct gem_call res;
    gem_upload_file(cli, "logged", "{\"key\":\"a\"}\n", 12, name, sizeof(name), &res);
    expect(&res, GEM_OK, 200);
    struct gem_file f;
    gem_get_file(cli, "files/nosuchfile1", &f, &res);
    expect(&res, GEM_FATAL, 404);
    struct gem_client_opts o = {sim.base, "v1beta", "wrong-" SIMH_KEY, 2000, 20000, 0, NULL, 0};
    struct gem_client *bad = gem_client_new(&o);
    cr_assert_not_null(bad);
    gem_delete_file(bad, name, &res);
    expect(&res, GEM_FATAL, 400);
    cr_assert_null(strstr(res.detail, "wrong-"), "%s", res.detail);
    gem_client_free(bad);

    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    log_current_level = LOG_INFO;
    char log[8192];
    ssize_t n = pread(logfd, log, sizeof(log) - 1, 0);
    close(logfd);
    unlink(path);
    cr_assert(n > 0);
    log[n] = '\0';
    cr_assert_null(strstr(log, SIMH_KEY), "the key in the log:\n%s", log);
    cr_assert(strstr(log, "gemini upload: ok, http 200, 2 requests,"), "%s", log);
    cr_assert(strstr(log, "gemini files: fatal, http 404, 1 request,"), "%s", log);
    cr_assert(strstr(log, "gemini files: fatal, http 400, 1 request,"), "%s", log);
    int lines = 0;
    for (const char *p = log; (p = strchr(p, '\n')); p++)
        lines++;
    cr_assert_eq(lines, 3, "one line per call:\n%s", log);
    cr_assert(strstr(log, "bytes sent"), "%s", log);
}
