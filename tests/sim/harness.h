/*
 * harness.h: helpers for tests that drive a real gemini-sim process over
 * HTTP with libcurl: start/stop the process, make requests, parse JSON,
 * wait for conditions with deadlines, and recompute the documented
 * deterministic vectors independently of the simulator's code.
 */
#ifndef TESTS_SIM_HARNESS_H
#define TESTS_SIM_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>

#define SIMH_KEY "test-key"

struct simh {
    pid_t pid;
    int port;
    char dir[128]; /* private temp dir (port file, stderr log) */
    char base[64]; /* http://127.0.0.1:PORT */
};

struct simh_resp {
    long status;
    int curl_code; /* CURLcode; 0 = transfer complete */
    char *body;    /* NUL-terminated; owned */
    size_t len;
    char *headers; /* raw response headers; owned */
};

/* Start gemini-sim with the test key, an ephemeral port and extra flags
 * (NULL-terminated list). Fails the test if it does not come up in time. */
void simh_start(struct simh *s, const char *const *flags);
/* SIGTERM the simulator, wait for it (deadline), assert a clean exit with no
 * sanitizer report in its stderr. */
void simh_stop(struct simh *s);

/* A request to the simulator. path is appended to s->base ("/v1beta/..." or
 * "/_sim/..."). headers: NULL-terminated "Name: value" list, may be NULL.
 * The API key header is added when with_key is true. */
void simh_req(struct simh *s, struct simh_resp *out, const char *method, const char *path,
              const char *body, size_t body_len, const char *const *headers, bool with_key);
/* The same against an absolute URL (the whole transfer at most 120 s). */
void simh_req_url(struct simh_resp *out, const char *method, const char *url, const char *body,
                  size_t body_len, const char *const *headers);
/* The same with the transfer's limit in seconds. */
void simh_req_url_timeout(struct simh_resp *out, const char *method, const char *url,
                          const char *body, size_t body_len, const char *const *headers,
                          long timeout_s);
void simh_resp_free(struct simh_resp *r);
/* Value of a response header (case-insensitive), copied into out; false if absent. */
bool simh_header(const struct simh_resp *r, const char *name, char *out, size_t n);

/* Parse the body as JSON (asserts success). Caller owns the result. */
json_object *simh_json(const struct simh_resp *r);
/* Path lookup "a.b.0.c" (array indices as numbers). Borrowed; NULL if absent. */
json_object *simh_get(json_object *o, const char *path);
const char *simh_str(json_object *o, const char *path);

/* Shorthand: API call with key, JSON body, expect status, return parsed body. */
json_object *simh_call(struct simh *s, const char *method, const char *path, const char *body,
                       long want_status);
/* Assert a google.rpc.Status error body with this code and status string. */
void simh_assert_error(const struct simh_resp *r, long http, const char *status);

/* Poll GET /v1beta/<name> until metadata.state == state or the deadline passes.
 * Returns the final Operation (caller owns). */
json_object *simh_wait_state(struct simh *s, const char *name, const char *state, int timeout_ms);
/* GET /_sim/stats and return one numeric counter. */
long long simh_stat(struct simh *s, const char *name);
/* Decode standard base64 (with padding) into out (cap bytes); returns the
 * byte count, failing the test on a character outside the alphabet. */
size_t simh_b64_decode(const char *s, unsigned char *out, size_t cap);
/* PUT /_sim/config with a JSON object; asserts 200. */
void simh_config(struct simh *s, const char *json);

/* The documented deterministic vector (tools/gemini-sim/vector.c header),
 * recomputed here independently. out receives dims floats. */
void simh_expected_vector(const char *model, int native_dims, const char *task, const char *text,
                          size_t text_len, int dims, float *out);
/* The same for gemini-embedding-2 (vector.c): taskType plays no part (the
 * hash takes "TASK_TYPE_UNSPECIFIED"), and the first dims values are
 * re-normalised to unit length. */
void simh_expected_vector_renormalised(const char *model, int native_dims, const char *text,
                                       size_t text_len, int dims, float *out);
/* Compare a JSON array of numbers to expected floats exactly (as float32). */
void simh_assert_vector(json_object *values, const float *expected, int dims);

/* Milliseconds on a monotonic clock. */
int64_t simh_ms(void);

/* Fork and exec argv with stderr (and stdout too when both) written to log
 * (appended, or truncated first when truncate); wait up to timeout_ms for a
 * port number in port_file (removed first). Fails the test if the process
 * exits first or no port comes; `what` names it in those messages. Returns
 * the pid; *port gets the port. */
pid_t simh_spawn(char *const argv[], const char *log, bool truncate, bool both,
                 const char *port_file, int timeout_ms, const char *what, int *port);

#endif
