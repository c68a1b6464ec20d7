/* harness.c: gemini-sim process control and libcurl helpers for tests. */
#include "harness.h"

#include "util/buf.h"

#include <criterion/criterion.h>
#include <curl/curl.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int64_t simh_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

void simh_start(struct simh *s, const char *const *flags)
{
    /* SIMH_SIM_BIN (e.g. a ThreadSanitizer build) overrides the build's own binary */
    const char *bin = getenv("SIMH_SIM_BIN");
    if (!bin || !*bin)
        bin = getenv("GEMINI_SIM_BIN");
    cr_assert(bin && *bin, "GEMINI_SIM_BIN is not set (run the tests through ctest)");
    memset(s, 0, sizeof(*s));
    snprintf(s->dir, sizeof(s->dir), "/tmp/simh-XXXXXX");
    cr_assert(mkdtemp(s->dir), "mkdtemp failed (errno %d)", errno);
    char port_file[200], log_file[200];
    snprintf(port_file, sizeof(port_file), "%s/port", s->dir);
    snprintf(log_file, sizeof(log_file), "%s/stderr", s->dir);

    /* execv takes char *const[]: copy the arguments into writable storage */
    static char args[64][512];
    char *argv[64];
    int n = 0;
    snprintf(args[n], sizeof(args[n]), "%s", bin);
    argv[n] = args[n], n++;
    snprintf(args[n], sizeof(args[n]), "--port=0");
    argv[n] = args[n], n++;
    snprintf(args[n], sizeof(args[n]), "--api-key=" SIMH_KEY);
    argv[n] = args[n], n++;
    snprintf(args[n], sizeof(args[n]), "--port-file=%.400s", port_file);
    argv[n] = args[n], n++;
    for (int i = 0; flags && flags[i] && n < 62; i++) {
        snprintf(args[n], sizeof(args[n]), "%s", flags[i]);
        argv[n] = args[n], n++;
    }
    argv[n] = NULL;

    s->pid = simh_spawn(argv, log_file, true, false, port_file, 15000, "gemini-sim", &s->port);
    snprintf(s->base, sizeof(s->base), "http://127.0.0.1:%d", s->port);
}

pid_t simh_spawn(char *const argv[], const char *log, bool truncate, bool both,
                 const char *port_file, int timeout_ms, const char *what, int *port)
{
    unlink(port_file);
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork failed (errno %d)", errno);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | (truncate ? O_TRUNC : O_APPEND), 0600);
        if (fd >= 0) {
            dup2(fd, 2);
            if (both)
                dup2(fd, 1);
            close(fd);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    int64_t deadline = simh_ms() + timeout_ms;
    while (simh_ms() < deadline) {
        FILE *f = fopen(port_file, "r");
        if (f) {
            int ok = fscanf(f, "%d", port);
            fclose(f);
            if (ok == 1 && *port > 0)
                return pid;
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid)
            cr_assert_fail("%s exited at start-up (status %d)", what, st);
        sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    cr_assert_fail("%s did not write its port file within %d ms", what, timeout_ms);
    return -1;
}

static char *slurp(const char *path)
{
    struct buf b;
    buf_init(&b, 1 << 24);
    FILE *f = fopen(path, "r");
    if (f) {
        char tmp[4096];
        size_t n;
        while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
            if (!buf_append(&b, tmp, n))
                break;
        fclose(f);
    }
    return buf_steal(&b, NULL);
}

void simh_stop(struct simh *s)
{
    if (!s->pid)
        return;
    kill(s->pid, SIGTERM);
    int st = 0;
    int64_t deadline = simh_ms() + 20000;
    pid_t w = 0;
    while ((w = waitpid(s->pid, &st, WNOHANG)) == 0 && simh_ms() < deadline)
        sleep_ms(10);
    if (w == 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, &st, 0);
    }
    s->pid = 0;
    char log_file[200];
    snprintf(log_file, sizeof(log_file), "%s/stderr", s->dir);
    char *log = slurp(log_file);
    bool sanitizer = strstr(log, "Sanitizer") != NULL || strstr(log, "runtime error:") != NULL;
    if (sanitizer)
        fprintf(stderr, "gemini-sim stderr:\n%s\n", log);
    free(log);
    char pf[200];
    snprintf(pf, sizeof(pf), "%s/port", s->dir);
    unlink(pf);
    unlink(log_file);
    rmdir(s->dir);
    cr_assert(w != 0, "gemini-sim did not exit within 20 s of SIGTERM");
    cr_assert(!sanitizer, "gemini-sim reported a sanitizer error");
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "gemini-sim exit status %d", st);
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct buf *b = ud;
    return buf_append(b, p, size * n) ? size * n : 0;
}

void simh_req_url(struct simh_resp *out, const char *method, const char *url, const char *body,
                  size_t body_len, const char *const *headers)
{
    simh_req_url_timeout(out, method, url, body, body_len, headers, 120);
}

void simh_req_url_timeout(struct simh_resp *out, const char *method, const char *url,
                          const char *body, size_t body_len, const char *const *headers,
                          long timeout_s)
{
    memset(out, 0, sizeof(*out));
    CURL *c = curl_easy_init();
    cr_assert(c);
    struct buf b, h;
    buf_init(&b, (size_t)1 << 31);
    buf_init(&h, 1 << 20);
    struct curl_slist *hl = NULL;
    for (int i = 0; headers && headers[i]; i++)
        hl = curl_slist_append(hl, headers[i]);
    hl = curl_slist_append(hl, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout_s);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
    }
    if (strcmp(method, "GET") == 0)
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    out->curl_code = (int)curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    out->body = buf_steal(&b, &out->len);
    out->headers = buf_steal(&h, NULL);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
}

void simh_req(struct simh *s, struct simh_resp *out, const char *method, const char *path,
              const char *body, size_t body_len, const char *const *headers, bool with_key)
{
    char url[1024];
    snprintf(url, sizeof(url), "%s%s", s->base, path);
    const char *hs[32];
    int n = 0;
    if (with_key)
        hs[n++] = "x-goog-api-key: " SIMH_KEY;
    if (body)
        hs[n++] = "Content-Type: application/json";
    for (int i = 0; headers && headers[i] && n < 31; i++)
        hs[n++] = headers[i];
    hs[n] = NULL;
    simh_req_url(out, method, url, body, body_len, hs);
}

void simh_resp_free(struct simh_resp *r)
{
    free(r->body);
    free(r->headers);
    memset(r, 0, sizeof(*r));
}

bool simh_header(const struct simh_resp *r, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name);
    const char *p = r->headers;
    while (p && *p) {
        const char *eol = strstr(p, "\r\n");
        size_t ll = eol ? (size_t)(eol - p) : strlen(p);
        if (ll > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0) {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            size_t vl = ll - (size_t)(v - p);
            snprintf(out, n, "%.*s", (int)vl, v);
            return true;
        }
        p = eol ? eol + 2 : NULL;
    }
    return false;
}

json_object *simh_json(const struct simh_resp *r)
{
    cr_assert(r->body && r->len, "empty response body (status %ld)", r->status);
    struct json_tokener *tok = json_tokener_new();
    json_object *o = json_tokener_parse_ex(tok, r->body, (int)r->len);
    enum json_tokener_error e = json_tokener_get_error(tok);
    json_tokener_free(tok);
    cr_assert(o && e == json_tokener_success, "response is not JSON: %.300s", r->body);
    return o;
}

json_object *simh_get(json_object *o, const char *path)
{
    char seg[128];
    const char *p = path;
    while (o && *p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        snprintf(seg, sizeof(seg), "%.*s", (int)n, p);
        if (json_object_is_type(o, json_type_array)) {
            char *end;
            long idx = strtol(seg, &end, 10);
            o = (*end || idx < 0 || (size_t)idx >= json_object_array_length(o))
                    ? NULL
                    : json_object_array_get_idx(o, (size_t)idx);
        } else if (json_object_is_type(o, json_type_object)) {
            json_object *v = NULL;
            o = json_object_object_get_ex(o, seg, &v) ? v : NULL;
        } else {
            o = NULL;
        }
        p = dot ? dot + 1 : p + n;
    }
    return o;
}

const char *simh_str(json_object *o, const char *path)
{
    json_object *v = simh_get(o, path);
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

json_object *simh_call(struct simh *s, const char *method, const char *path, const char *body,
                       long want_status)
{
    struct simh_resp r;
    simh_req(s, &r, method, path, body, body ? strlen(body) : 0, NULL, true);
    cr_assert_eq(r.curl_code, 0, "%s %s: transfer failed (curl code %d)", method, path,
                 r.curl_code);
    cr_assert_eq(r.status, want_status, "%s %s: status %ld, want %ld; body %.400s", method, path,
                 r.status, want_status, r.body);
    json_object *o = simh_json(&r);
    simh_resp_free(&r);
    return o;
}

void simh_assert_error(const struct simh_resp *r, long http, const char *status)
{
    cr_assert_eq(r->status, http, "status %ld, want %ld; body %.400s", r->status, http, r->body);
    json_object *o = simh_json(r);
    json_object *err = simh_get(o, "error");
    cr_assert(err && json_object_is_type(err, json_type_object), "no error object: %s", r->body);
    cr_assert_eq(json_object_get_int(simh_get(err, "code")), http);
    cr_assert_str_eq(simh_str(err, "status"), status, "error.status: %s", r->body);
    const char *msg = simh_str(err, "message");
    cr_assert(msg && msg[0], "error.message missing");
    json_object_put(o);
}

json_object *simh_wait_state(struct simh *s, const char *name, const char *state, int timeout_ms)
{
    char path[256];
    snprintf(path, sizeof(path), "/v1beta/%s", name);
    int64_t deadline = simh_ms() + timeout_ms;
    for (;;) {
        json_object *op = simh_call(s, "GET", path, NULL, 200);
        const char *st = simh_str(op, "metadata.state");
        if (st && strcmp(st, state) == 0)
            return op;
        if (simh_ms() > deadline) {
            cr_assert_fail("%s: state %s, still not %s after %d ms", name, st ? st : "(none)",
                           state, timeout_ms);
        }
        json_object_put(op);
        sleep_ms(5);
    }
}

long long simh_stat(struct simh *s, const char *name)
{
    json_object *o = simh_call(s, "GET", "/_sim/stats", NULL, 200);
    json_object *v = simh_get(o, name);
    cr_assert(v, "no counter %s in /_sim/stats", name);
    long long n = json_object_get_int64(v);
    json_object_put(o);
    return n;
}

void simh_config(struct simh *s, const char *json)
{
    json_object_put(simh_call(s, "PUT", "/_sim/config", json, 200));
}

/* ---- independent recomputation of the documented vector function ---- */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ULL;
    return h;
}

void simh_expected_vector(const char *model, int native_dims, const char *task, const char *text,
                          size_t text_len, int dims, float *out)
{
    uint64_t h = 14695981039346656037ULL;
    h = fnv(h, model, strlen(model) + 1); /* includes the 0x00 separator */
    h = fnv(h, task, strlen(task) + 1);
    h = fnv(h, text, text_len);
    double *v = malloc(sizeof(double) * (size_t)native_dims);
    cr_assert(v);
    double sum = 0;
    uint64_t state = h;
    for (int i = 0; i < native_dims; i++) {
        state += 0x9e3779b97f4a7c15ULL;
        uint64_t z = state;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        z ^= z >> 31;
        v[i] = ldexp((double)(z >> 11), -53) * 2.0 - 1.0;
        sum += v[i] * v[i];
    }
    double norm = sqrt(sum);
    for (int i = 0; i < dims; i++)
        out[i] = (float)(v[i] / norm);
    free(v);
}

void simh_expected_vector_renormalised(const char *model, int native_dims, const char *text,
                                       size_t text_len, int dims, float *out)
{
    uint64_t h = 14695981039346656037ULL;
    h = fnv(h, model, strlen(model) + 1);
    h = fnv(h, "TASK_TYPE_UNSPECIFIED", sizeof("TASK_TYPE_UNSPECIFIED"));
    h = fnv(h, text, text_len);
    double *v = malloc(sizeof(double) * (size_t)native_dims);
    cr_assert(v);
    uint64_t state = h;
    for (int i = 0; i < native_dims; i++) {
        state += 0x9e3779b97f4a7c15ULL;
        uint64_t z = state;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        z ^= z >> 31;
        v[i] = ldexp((double)(z >> 11), -53) * 2.0 - 1.0;
    }
    double sum = 0;
    for (int i = 0; i < dims; i++)
        sum += v[i] * v[i];
    double norm = sqrt(sum);
    for (int i = 0; i < dims; i++)
        out[i] = (float)(v[i] / norm);
    free(v);
}

void simh_assert_vector(json_object *values, const float *expected, int dims)
{
    cr_assert(values && json_object_is_type(values, json_type_array), "values is not an array");
    cr_assert_eq((int)json_object_array_length(values), dims, "vector has %zu values, want %d",
                 json_object_array_length(values), dims);
    for (int i = 0; i < dims; i++) {
        json_object *x = json_object_array_get_idx(values, (size_t)i);
        /* parse the number's own text as float32, as a client would */
        const char *txt = json_object_to_json_string(x);
        float f = strtof(txt, NULL);
        cr_assert(f == expected[i], "value %d: %s != %.9g", i, txt, (double)expected[i]);
    }
}

/* Decode standard base64 (with padding) into out; returns the byte count. */
size_t simh_b64_decode(const char *s, unsigned char *out, size_t cap)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = 0;
    unsigned acc = 0;
    int bits = 0;
    for (; *s && *s != '='; s++) {
        const char *p = strchr(abc, *s);
        cr_assert(p && *s, "not base64: %c", *s);
        acc = acc << 6 | (unsigned)(p - abc);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            cr_assert(n < cap);
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    return n;
}
