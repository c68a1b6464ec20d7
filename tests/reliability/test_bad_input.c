/*
 * test_bad_input.c: a corpus of malformed requests (corpus/bad_requests.txt plus
 * generated cases) sent over raw TCP to a real `embedd serve`: each gets the
 * expected 4xx (RFC 9457 problem body where the service answers), nothing is
 * stored, the process stays up and stops cleanly.
 */
#include "rel.h"

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_BODY       262144 /* --max-body-bytes: big enough for 100,000-digit numbers */
#define ANSWER_TIMEOUT 5000   /* ms for one case's answer */
#define SILENCE_WAIT   2000   /* ms of silence that count as "none" where that is allowed */
#define MAX_STATUSES   6

static struct svch svc;
static bool svc_running;

static void start(void)
{
    char body[64];
    snprintf(body, sizeof(body), "--max-body-bytes=%d", MAX_BODY);
    /* jobs wrongly stored must not reach Google: point Gemini at a closed port */
    const char *const flags[] = {body, "--gemini-base-url=http://127.0.0.1:9", NULL};
    signal(SIGPIPE, SIG_IGN);
    svch_start(&svc, flags);
    svc_running = true;
}

static void stop(void)
{
    if (svc_running)
        svch_stop(&svc);
    svc_running = false;
}

TestSuite(bad_input, .init = start, .fini = stop, .timeout = 600);

/* A growable byte string. */
struct bytes {
    char *p;
    size_t n, cap;
};

static void b_add(struct bytes *b, const void *data, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        b->p = realloc(b->p, cap);
        cr_assert(b->p, "out of memory");
        b->cap = cap;
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void b_str(struct bytes *b, const char *s)
{
    b_add(b, s, strlen(s));
}

static void b_rep(struct bytes *b, const char *s, size_t times)
{
    for (size_t i = 0; i < times; i++)
        b_str(b, s);
}

/* One case: the bytes to send and what may come back. */
struct bad_case {
    char name[80];
    struct bytes raw;
    int statuses[MAX_STATUSES]; /* 0 ("none"): no response at all is acceptable */
    int n_statuses;
    char codes[160]; /* comma list; "-": a libmicrohttpd answer; "*": any code */
};

struct corpus {
    struct bad_case *c;
    size_t n, cap;
};

static struct bad_case *corpus_add(struct corpus *k, const char *name, const char *statuses,
                                   const char *codes)
{
    if (k->n == k->cap) {
        k->cap = k->cap ? k->cap * 2 : 256;
        k->c = realloc(k->c, k->cap * sizeof(*k->c));
        cr_assert(k->c, "out of memory");
    }
    struct bad_case *c = &k->c[k->n++];
    memset(c, 0, sizeof(*c));
    snprintf(c->name, sizeof(c->name), "%s", name);
    snprintf(c->codes, sizeof(c->codes), "%s", codes);
    char list[64];
    snprintf(list, sizeof(list), "%s", statuses);
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t && c->n_statuses < MAX_STATUSES;
         t = strtok_r(NULL, ",", &save)) {
        char *end;
        bool none = strcmp(t, "none") == 0;
        long v = none ? 0 : strtol(t, &end, 10);
        cr_assert(none || (*end == '\0' && v >= 100 && v < 600), "case %s: bad status \"%s\"", name,
                  t);
        c->statuses[c->n_statuses++] = (int)v;
    }
    cr_assert(c->n_statuses > 0, "case %s: no status", name);
    return c;
}

static void corpus_free(struct corpus *k)
{
    for (size_t i = 0; i < k->n; i++)
        free(k->c[i].raw.p);
    free(k->c);
}

/* First occurrence of needle in [hay, hay + n), or NULL. */
static const char *find(const char *hay, size_t n, const char *needle)
{
    size_t l = strlen(needle);
    for (size_t i = 0; hay && l <= n && i <= n - l; i++)
        if (memcmp(hay + i, needle, l) == 0)
            return hay + i;
    return NULL;
}

/* Decode the corpus escapes \r \n \t \\ \xHH. */
static void unescape(struct bytes *out, const char *s, const char *name)
{
    while (*s) {
        if (*s != '\\') {
            b_add(out, s++, 1);
            continue;
        }
        char ch;
        switch (s[1]) {
        case 'r':
            ch = '\r';
            break;
        case 'n':
            ch = '\n';
            break;
        case 't':
            ch = '\t';
            break;
        case '\\':
            ch = '\\';
            break;
        case 'x': {
            char hex[3] = {s[2], s[2] ? s[3] : '\0', '\0'}, *end;
            long v = strtol(hex, &end, 16);
            cr_assert(*end == '\0' && hex[1], "case %s: bad \\x escape", name);
            ch = (char)v;
            s += 2;
            break;
        }
        default:
            cr_assert_fail("case %s: unknown escape \\%c", name, s[1]);
        }
        b_add(out, &ch, 1);
        s += 2;
    }
}

/* Replace {JOB}, {AUTH}, {KEY}, then {LEN} (bytes after the first blank line). */
static void expand(struct bytes *raw, const char *key)
{
    static const char *const job =
        "POST /v1/jobs HTTP/1.1\r\nHost: t\r\n{AUTH}"
        "Content-Type: application/json\r\nContent-Length: {LEN}\r\n\r\n";
    for (int pass = 0; pass < 3; pass++) {
        struct bytes out = {0};
        for (size_t i = 0; i < raw->n;) {
            const char *p = raw->p + i;
            size_t left = raw->n - i;
            if (left >= 5 && memcmp(p, "{JOB}", 5) == 0) {
                b_str(&out, job);
                i += 5;
            } else if (left >= 6 && memcmp(p, "{AUTH}", 6) == 0) {
                b_str(&out, "Authorization: Bearer {KEY}\r\n");
                i += 6;
            } else if (left >= 5 && memcmp(p, "{KEY}", 5) == 0) {
                b_str(&out, key);
                i += 5;
            } else {
                b_add(&out, p, 1);
                i++;
            }
        }
        free(raw->p);
        *raw = out;
    }
    const char *len = find(raw->p, raw->n, "{LEN}");
    if (!len)
        return;
    const char *blank = find(raw->p, raw->n, "\r\n\r\n");
    cr_assert(blank, "{LEN} without a blank line");
    char num[32];
    snprintf(num, sizeof(num), "%zu", raw->n - (size_t)(blank + 4 - raw->p));
    size_t at = (size_t)(len - raw->p);
    struct bytes out = {0};
    b_add(&out, raw->p, at);
    b_str(&out, num);
    b_add(&out, raw->p + at + 5, raw->n - at - 5);
    free(raw->p);
    *raw = out;
}

static void corpus_load(struct corpus *k, const char *key)
{
    char path[512];
    const char *src = getenv("EMBEDD_SOURCE_DIR");
    snprintf(path, sizeof(path), "%s/tests/reliability/corpus/bad_requests.txt", src ? src : ".");
    FILE *f = fopen(path, "r");
    cr_assert(f, "cannot read %s", path);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        char st[64], codes[160], name[80];
        int used = 0;
        cr_assert(sscanf(line, "%63s %159s %79s %n", st, codes, name, &used) == 3 && used > 0,
                  "corpus line not understood: %s", line);
        struct bad_case *c = corpus_add(k, name, st, codes);
        unescape(&c->raw, line + used, name);
        expand(&c->raw, key);
    }
    free(line);
    fclose(f);
}

/* The standard authenticated POST /v1/jobs around a generated body. */
static void add_job(struct corpus *k, const char *name, const char *statuses, const char *codes,
                    const struct bytes *body)
{
    struct bad_case *c = corpus_add(k, name, statuses, codes);
    char head[512];
    snprintf(head, sizeof(head),
             "POST /v1/jobs HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n"
             "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
             svc.key, body->n);
    b_str(&c->raw, head);
    b_add(&c->raw, body->p, body->n);
}

static void add_job_str(struct corpus *k, const char *name, const char *statuses, const char *codes,
                        const char *body)
{
    struct bytes b = {0};
    b_str(&b, body);
    add_job(k, name, statuses, codes, &b);
    free(b.p);
}

/* 10,000 levels of nesting, in several places. */
static void gen_nesting(struct corpus *k)
{
    const size_t n = 10000;
    struct bytes b = {0};
    b_rep(&b, "[", n);
    b_rep(&b, "]", n);
    add_job(k, "deep-arrays-10000", "400", "invalid_json", &b);
    b.n = 0;
    b_rep(&b, "{\"a\":", n);
    b_str(&b, "1");
    b_rep(&b, "}", n);
    add_job(k, "deep-objects-10000", "400", "invalid_json", &b);
    b.n = 0;
    b_str(&b, "{\"documents\":");
    b_rep(&b, "[", n);
    b_rep(&b, "]", n);
    b_str(&b, "}");
    add_job(k, "deep-documents-10000", "400", "invalid_json", &b);
    b.n = 0;
    b_str(&b, "{\"documents\":[{\"id\":\"a\",\"text\":\"t\",\"metadata\":");
    b_rep(&b, "{\"a\":", n);
    b_str(&b, "1");
    b_rep(&b, "}", n);
    b_str(&b, "}]}");
    add_job(k, "deep-metadata-10000", "400", "invalid_json", &b);
    b.n = 0;
    b_rep(&b, "[", n);
    add_job(k, "deep-unclosed-10000", "400", "invalid_json", &b);
    /* deeper than the metadata walk accepts, shallower than the parser's limit */
    b.n = 0;
    b_str(&b, "{\"documents\":[{\"id\":\"a\",\"text\":\"t\",\"metadata\":");
    b_rep(&b, "{\"a\":", 40);
    b_str(&b, "1");
    b_rep(&b, "}", 40);
    b_str(&b, "}]}");
    add_job(k, "deep-metadata-40", "422", "invalid_metadata", &b);
    free(b.p);
}

/* 100,000-digit numbers where integers are expected. */
static void gen_numbers(struct corpus *k)
{
    static const struct {
        const char *name, *field, *prefix, *statuses, *codes;
    } nums[] = {
        {"digits-100000-priority", "priority", "", "422", "out_of_range"},
        {"digits-100000-negative", "priority", "-", "422", "out_of_range"},
        {"digits-100000-dims", "output_dimensionality", "", "422", "out_of_range"},
        {"digits-100000-max-chars", "chunking\":{\"max_chars", "", "422", "out_of_range"},
        {"digits-100000-fraction", "priority", "1.", "400", "invalid_type"},
        {"digits-100000-exponent", "priority", "1e", "400", "invalid_type"},
        {"digits-100000-leading-zeros", "priority", "0", "400", "invalid_json"},
    };
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        struct bytes b = {0};
        bool nested = strchr(nums[i].field, ':') != NULL;
        b_str(&b, "{\"");
        b_str(&b, nums[i].field);
        b_str(&b, "\":");
        b_str(&b, nums[i].prefix);
        b_rep(&b, "9876543210", 10000);
        b_str(&b, nested ? "}," : ",");
        b_str(&b, "\"documents\":[{\"id\":\"a\",\"text\":\"t\"}]}");
        add_job(k, nums[i].name, nums[i].statuses, nums[i].codes, &b);
        free(b.p);
    }
}

/* Bodies over the limit: by Content-Length, by chunked transfer, far over. */
static void gen_oversized(struct corpus *k)
{
    struct bytes b = {0};
    b_str(&b, "{\"documents\":[{\"id\":\"a\",\"text\":\"");
    while (b.n < MAX_BODY - 3)
        b_str(&b, "x");
    b_str(&b, "\"}]}"); /* MAX_BODY + 1 bytes */
    cr_assert_eq(b.n, (size_t)MAX_BODY + 1);
    add_job(k, "body-limit-plus-one", "413", "body_too_large", &b);

    struct bad_case *c = corpus_add(k, "body-limit-plus-one-chunked", "413", "body_too_large");
    char head[512];
    snprintf(head, sizeof(head),
             "POST /v1/jobs HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n"
             "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
             svc.key);
    b_str(&c->raw, head);
    for (size_t off = 0; off < b.n; off += 16384) {
        size_t n = b.n - off < 16384 ? b.n - off : 16384;
        char sz[32];
        snprintf(sz, sizeof(sz), "%zx\r\n", n);
        b_str(&c->raw, sz);
        b_add(&c->raw, b.p + off, n);
        b_str(&c->raw, "\r\n");
    }
    b_str(&c->raw, "0\r\n\r\n");

    b_rep(&b, " ", 4 * MAX_BODY); /* about 1.25 MiB */
    add_job(k, "body-5x-limit", "413", "body_too_large", &b);
    free(b.p);
}

/* Every byte that cannot stand alone in UTF-8, inside a text and at its end;
 * every raw control character; a raw NUL at every offset of a valid body. */
static void gen_bytes(struct corpus *k)
{
    for (int byte = 0x80; byte <= 0xff; byte++) {
        for (int at_end = 0; at_end < 2; at_end++) {
            char body[96], name[64];
            snprintf(body, sizeof(body), "{\"documents\":[{\"id\":\"a\",\"text\":\"a%c%s\"}]}",
                     (char)byte, at_end ? "" : "b");
            snprintf(name, sizeof(name), "utf8-byte-%02x%s", byte, at_end ? "-at-end" : "");
            add_job_str(k, name, "400", "invalid_json", body);
        }
    }
    /* RFC 8259 section 7: control characters must be escaped inside strings */
    for (int byte = 0x01; byte < 0x20; byte++) {
        char body[96], name[64];
        snprintf(body, sizeof(body), "{\"documents\":[{\"id\":\"a\",\"text\":\"a%cb\"}]}",
                 (char)byte);
        snprintf(name, sizeof(name), "raw-control-%02x-in-text", byte);
        add_job_str(k, name, "400", "invalid_json", body);
    }
    static const char valid[] = "{\"documents\":[{\"id\":\"a\",\"text\":\"t\"}]}";
    for (size_t at = 0; at <= sizeof(valid) - 1; at++) {
        struct bytes b = {0};
        char name[64];
        b_add(&b, valid, at);
        b_add(&b, "", 1);
        b_add(&b, valid + at, sizeof(valid) - 1 - at);
        snprintf(name, sizeof(name), "raw-nul-at-%zu", at);
        add_job(k, name, "400", "invalid_json", &b);
        free(b.p);
    }
}

/* Fields just over their documented limits. */
static void gen_limits(struct corpus *k)
{
    static const struct {
        const char *name, *pre, *post, *codes;
        size_t len;
    } f[] = {
        {"id-257-bytes", "{\"documents\":[{\"id\":\"", "\",\"text\":\"t\"}]}", "too_long", 257},
        {"title-1001-bytes", "{\"documents\":[{\"id\":\"a\",\"text\":\"t\",\"title\":\"", "\"}]}",
         "too_long", 1001},
        {"display-name-201-bytes", "{\"display_name\":\"",
         "\",\"documents\":[{\"id\":\"a\",\"text\":\"t\"}]}", "too_long", 201},
        {"metadata-over-16384",
         "{\"documents\":[{\"id\":\"a\",\"text\":\"t\",\"metadata\":{\"k\":\"", "\"}}]}",
         "too_long", 16384},
        {"model-101-bytes", "{\"model\":\"", "\",\"documents\":[{\"id\":\"a\",\"text\":\"t\"}]}",
         "too_long", 101},
    };
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        struct bytes b = {0};
        b_str(&b, f[i].pre);
        b_rep(&b, "x", f[i].len);
        b_str(&b, f[i].post);
        add_job(k, f[i].name, "422", f[i].codes, &b);
        free(b.p);
    }
}

/* Absurd request lines and headers (the connection's memory is 128 KiB). */
static void gen_headers(struct corpus *k)
{
    struct bad_case *c = corpus_add(k, "target-200k", "414,431", "-");
    b_str(&c->raw, "GET /");
    b_rep(&c->raw, "a", 200000);
    b_str(&c->raw, " HTTP/1.1\r\nHost: t\r\n\r\n");
    c = corpus_add(k, "query-200k", "414,431", "-");
    b_str(&c->raw, "GET /v1/jobs?cursor=");
    b_rep(&c->raw, "a", 200000);
    b_str(&c->raw, " HTTP/1.1\r\nHost: t\r\n\r\n");
    c = corpus_add(k, "header-value-200k", "431", "-");
    b_str(&c->raw, "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: ");
    b_rep(&c->raw, "a", 200000);
    b_str(&c->raw, "\r\n\r\n");
    c = corpus_add(k, "header-name-200k", "431", "-");
    b_str(&c->raw, "GET /healthz HTTP/1.1\r\nHost: t\r\nX-");
    b_rep(&c->raw, "a", 200000);
    b_str(&c->raw, ": 1\r\n\r\n");
    c = corpus_add(k, "authorization-200k", "431", "-");
    b_str(&c->raw, "GET /v1/jobs HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer ");
    b_rep(&c->raw, "k", 200000);
    b_str(&c->raw, "\r\n\r\n");
    c = corpus_add(k, "headers-20000", "431", "-");
    b_str(&c->raw, "GET /healthz HTTP/1.1\r\nHost: t\r\n");
    for (int i = 0; i < 20000; i++) {
        char h[32];
        snprintf(h, sizeof(h), "X-%d: y\r\n", i);
        b_str(&c->raw, h);
    }
    b_str(&c->raw, "\r\n");
}

/* What came back on one connection. */
struct answer {
    int status;  /* HTTP status; 0: closed without a response; -1: nothing before the deadline */
    bool silent; /* nothing received, connection closed or not */
    char ctype[128];
    char rid[64];
    const char *body;
    size_t body_len;
    struct bytes raw;
};

/* Parse the first final response in a->raw; true once it is complete. */
static bool parse_answer(struct answer *a)
{
    const char *p = a->raw.p, *end = a->raw.p + a->raw.n;
    for (;;) {
        const char *hdr_end = find(p, (size_t)(end - p), "\r\n\r\n");
        if (!hdr_end)
            return false;
        char *st_end;
        long st = strncmp(p, "HTTP/1.", 7) == 0 ? strtol(p + 8, &st_end, 10) : 0;
        if (st < 100 || st > 599)
            return false;
        if (st >= 100 && st < 200) { /* interim (100 Continue) */
            p = hdr_end + 4;
            continue;
        }
        a->status = (int)st;
        long long clen = -1;
        for (const char *l = strstr(p, "\r\n"); l && l < hdr_end; l = strstr(l + 2, "\r\n")) {
            const char *v = strchr(l + 2, ':');
            if (!v || v > hdr_end)
                break;
            size_t nl = (size_t)(v - (l + 2));
            const char *ve = strstr(v, "\r\n");
            v++;
            while (*v == ' ')
                v++;
            int vl = (int)(ve - v);
            if (nl == 12 && strncasecmp(l + 2, "Content-Type", 12) == 0)
                snprintf(a->ctype, sizeof(a->ctype), "%.*s", vl, v);
            else if (nl == 12 && strncasecmp(l + 2, "X-Request-Id", 12) == 0)
                snprintf(a->rid, sizeof(a->rid), "%.*s", vl, v);
            else if (nl == 14 && strncasecmp(l + 2, "Content-Length", 14) == 0)
                clen = strtoll(v, NULL, 10);
        }
        a->body = hdr_end + 4;
        a->body_len = (size_t)(end - a->body);
        if (clen >= 0 && a->body_len >= (size_t)clen) {
            a->body_len = (size_t)clen;
            return true;
        }
        return false;
    }
}

/* Send raw on a fresh connection (reading while sending, so an early answer
 * is not lost), half-close, and read one response or EOF. */
static void exchange(const struct bytes *raw, int timeout_ms, struct answer *a)
{
    memset(a, 0, sizeof(*a));
    a->status = -1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)svc.port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0,
                 "connect failed (errno %d): is embedd serve still alive?", errno);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    size_t sent = 0;
    bool wr_open = true, eof = false;
    int64_t deadline = simh_ms() + timeout_ms;
    while (!eof && simh_ms() < deadline) {
        if (wr_open && sent == raw->n) {
            shutdown(fd, SHUT_WR);
            wr_open = false;
        }
        struct pollfd pfd = {fd, (short)(POLLIN | (wr_open ? POLLOUT : 0)), 0};
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        if (wr_open && (pfd.revents & POLLOUT)) {
            ssize_t w = send(fd, raw->p + sent, raw->n - sent, MSG_NOSIGNAL);
            if (w > 0)
                sent += (size_t)w;
            else if (w < 0 && errno != EAGAIN && errno != EINTR)
                wr_open = false; /* the server stopped reading: keep reading its answer */
        }
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            char buf[65536];
            ssize_t r = recv(fd, buf, sizeof(buf), 0);
            if (r > 0)
                b_add(&a->raw, buf, (size_t)r);
            else if (r == 0 || (errno != EAGAIN && errno != EINTR))
                eof = true;
        }
        if (a->raw.n && parse_answer(a))
            break;
    }
    close(fd);
    a->silent = a->raw.n == 0;
    if (a->silent && eof)
        a->status = 0;
    else if (!a->silent)
        parse_answer(a);
}

static bool in_list(const char *list, const char *item)
{
    size_t n = strlen(item);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if ((l == n && strncmp(p, item, n) == 0) || (l == 1 && *p == '*' && item[0] != '-'))
            return true;
        p += l + (e ? 1 : 0);
    }
    return false;
}

/* Check one answer against its case; append a line to wrong when it is not right. */
static void judge(const struct bad_case *c, const struct answer *a, struct bytes *wrong)
{
    char line[768];
    bool status_ok = false;
    for (int i = 0; i < c->n_statuses; i++)
        status_ok = status_ok || c->statuses[i] == a->status || (!c->statuses[i] && a->silent);
    const char *excerpt = a->body ? a->body : a->raw.p ? a->raw.p : "";
    int ex_len = a->body ? (int)(a->body_len > 200 ? 200 : a->body_len) : 120;
    if (!status_ok) {
        char got[48];
        if (a->silent)
            snprintf(got, sizeof(got), "no response (%s)", a->status ? "still open" : "closed");
        else
            snprintf(got, sizeof(got), "%d", a->status);
        snprintf(line, sizeof(line), "  %s: got %s, want %d%s: %.*s\n", c->name, got,
                 c->statuses[0], c->n_statuses > 1 ? " (or another listed)" : "", ex_len, excerpt);
        b_str(wrong, line);
        return;
    }
    if (a->silent)
        return;
    if (strcmp(a->ctype, "application/problem+json") != 0) {
        if (!in_list(c->codes, "-")) {
            snprintf(line, sizeof(line), "  %s: %d without a problem body (Content-Type \"%s\")\n",
                     c->name, a->status, a->ctype);
            b_str(wrong, line);
        }
        return;
    }
    char *copy = strndup(a->body, a->body_len);
    json_object *o = copy ? json_tokener_parse(copy) : NULL;
    free(copy);
    json_object *st = o ? simh_get(o, "status") : NULL;
    const char *code = o ? simh_str(o, "code") : NULL;
    const char *type = o ? simh_str(o, "type") : NULL;
    const char *rid = o ? simh_str(o, "request_id") : NULL;
    char want_type[128];
    snprintf(want_type, sizeof(want_type), "urn:embedd:problem:%s", code ? code : "");
    if (!o || !st || json_object_get_int(st) != a->status || !code || !in_list(c->codes, code) ||
        !type || strcmp(type, want_type) != 0 || !rid || strcmp(rid, a->rid) != 0) {
        snprintf(line, sizeof(line), "  %s: %d with code %s, want one of %s: %.*s\n", c->name,
                 a->status, code ? code : "(none)", c->codes, ex_len, excerpt);
        b_str(wrong, line);
    }
    json_object_put(o);
}

static long long count_rows(const char *table)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
    return dbh_scalar(&svc.db, sql);
}

Test(bad_input, corpus_gets_4xx_stores_nothing_and_survives)
{
    struct corpus k = {0};
    corpus_load(&k, svc.key);
    size_t from_file = k.n;
    gen_nesting(&k);
    gen_numbers(&k);
    gen_oversized(&k);
    gen_bytes(&k);
    gen_limits(&k);
    gen_headers(&k);
    cr_assert_geq(k.n, 120, "the corpus holds %zu cases", k.n);

    struct bytes wrong = {0};
    int counts[600] = {0}, silent = 0, wrong_n = 0;
    for (size_t i = 0; i < k.n; i++) {
        struct answer a;
        bool may_be_silent = false;
        for (int s = 0; s < k.c[i].n_statuses; s++)
            may_be_silent = may_be_silent || k.c[i].statuses[s] == 0;
        exchange(&k.c[i].raw, may_be_silent ? SILENCE_WAIT : ANSWER_TIMEOUT, &a);
        size_t before = wrong.n;
        judge(&k.c[i], &a, &wrong);
        wrong_n += wrong.n != before;
        if (a.status > 0 && a.status < 600)
            counts[a.status]++;
        else
            silent++;
        free(a.raw.p);
        /* the process must survive every case */
        cr_assert_eq(waitpid(svc.pid, NULL, WNOHANG), 0, "embedd serve died after case %s",
                     k.c[i].name);
    }

    long long jobs = count_rows("jobs"), docs = count_rows("documents");
    long long chunks = count_rows("chunks");
    struct simh_resp r;
    char url[128];
    snprintf(url, sizeof(url), "%s/healthz", svc.base);
    simh_req_url(&r, "GET", url, NULL, 0, NULL);
    long health = r.status;
    simh_resp_free(&r);
    svc_running = false;
    svch_stop(&svc); /* asserts exit status 0 and a log without sanitizer reports */

    struct bytes fig = {0};
    char tmp[160];
    snprintf(tmp, sizeof(tmp), "{\"requests\":%zu,\"from_file\":%zu,\"wrong\":%d,\"statuses\":{",
             k.n, from_file, wrong_n);
    b_str(&fig, tmp);
    bool first = true;
    for (int s = 0; s < 600; s++) {
        if (!counts[s])
            continue;
        snprintf(tmp, sizeof(tmp), "%s\"%d\":%d", first ? "" : ",", s, counts[s]);
        b_str(&fig, tmp);
        first = false;
    }
    snprintf(tmp, sizeof(tmp), "%s\"none\":%d},\"stored_jobs\":%lld}", first ? "" : ",", silent,
             jobs);
    b_str(&fig, tmp);
    bool pass = !wrong_n && !jobs && !docs && !chunks && health == 200;
    rel_report("bad input",
               "malformed requests (file corpus + generated) get the right 4xx and problem body; "
               "nothing stored; process alive, /healthz 200, clean exit",
               pass ? "pass" : "fail", fig.p);
    cr_log_info("bad input: %s", fig.p);
    free(fig.p);
    corpus_free(&k);

    cr_expect_eq(health, 200, "/healthz after the corpus answered %ld", health);
    cr_expect(jobs == 0 && docs == 0 && chunks == 0,
              "malformed requests stored %lld jobs, %lld documents, %lld chunks", jobs, docs,
              chunks);
    cr_expect(wrong_n == 0, "%d of the cases were answered wrongly:\n%s", wrong_n,
              wrong.p ? wrong.p : "");
    free(wrong.p); /* cr_expect, not cr_assert: the list is freed even when the test fails */
}
