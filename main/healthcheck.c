/*
 * healthcheck.c: `embedd healthcheck`, one HTTP/1.1 GET over a plain socket
 * to the address embedd serve listens on, so that a container image needs no
 * shell, curl or /dev/tcp to know whether the service answers.
 */
#include "healthcheck.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HC_DEFAULT_TIMEOUT_MS 2000
#define HC_MAX_TIMEOUT_MS     60000

struct hc_opts {
    const char *path;
    int64_t timeout_ms;
};

struct hc_target {
    struct sockaddr_in sa;
    char name[96]; /* host:port as asked, for messages and the Host header */
};

static int64_t hc_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool hc_parse_args(int argc, char **argv, struct hc_opts *o)
{
    o->path = "/healthz";
    o->timeout_ms = HC_DEFAULT_TIMEOUT_MS;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        if (strcmp(a, "--ready") == 0) {
            o->path = "/readyz";
            continue;
        }
        if ((strcmp(a, "--path") == 0 || strcmp(a, "--timeout-ms") == 0) && i + 1 < argc)
            val = argv[++i];
        else if (strncmp(a, "--path=", 7) == 0)
            val = a + 7;
        else if (strncmp(a, "--timeout-ms=", 13) == 0)
            val = a + 13;
        if (!val) {
            fprintf(stderr, "unhealthy: healthcheck: unexpected argument \"%s\"\n", a);
            return false;
        }
        if (strncmp(a, "--path", 6) == 0) {
            if (val[0] != '/' || strlen(val) > 200 || strpbrk(val, " \r\n\t")) {
                fprintf(stderr, "unhealthy: healthcheck: --path must be an absolute URL path\n");
                return false;
            }
            o->path = val;
            continue;
        }
        char *end;
        errno = 0;
        long long ms = strtoll(val, &end, 10);
        if (errno || end == val || *end || ms < 1 || ms > HC_MAX_TIMEOUT_MS) {
            fprintf(stderr, "unhealthy: healthcheck: --timeout-ms must be 1 to %d\n",
                    HC_MAX_TIMEOUT_MS);
            return false;
        }
        o->timeout_ms = ms;
    }
    return true;
}

/* The port embedd serve wrote to its port file (listen port 0), or -1. */
static long hc_port_from_file(const char *path)
{
    char buf[32] = "";
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *end;
    errno = 0;
    long port = strtol(buf, &end, 10);
    if (errno || end == buf || (*end && *end != '\n') || port < 1 || port > 65535)
        return -1;
    return port;
}

/* Where serve listens, as seen from this host: the listen address itself,
 * but the loopback address for the wildcard 0.0.0.0. */
static bool hc_target_from_config(const struct config *cfg, struct hc_target *t)
{
    const char *colon = strrchr(cfg->listen, ':');
    char host[64];
    memset(t, 0, sizeof(*t));
    t->sa.sin_family = AF_INET;
    if (!colon || (size_t)(colon - cfg->listen) >= sizeof(host)) {
        fprintf(stderr, "unhealthy: listen address \"%s\" is not host:port\n", cfg->listen);
        return false;
    }
    memcpy(host, cfg->listen, (size_t)(colon - cfg->listen));
    host[colon - cfg->listen] = '\0';
    if (strcmp(host, "0.0.0.0") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || port < 0 || port > 65535 ||
        inet_pton(AF_INET, host, &t->sa.sin_addr) != 1) {
        fprintf(stderr, "unhealthy: listen address \"%s\" is not an IPv4 host:port\n", cfg->listen);
        return false;
    }
    if (port == 0 && cfg->port_file[0])
        port = hc_port_from_file(cfg->port_file);
    if (port <= 0) {
        fprintf(stderr, "unhealthy: listen port is 0 and no port file names the real one\n");
        return false;
    }
    t->sa.sin_port = htons((uint16_t)port);
    snprintf(t->name, sizeof(t->name), "%s:%ld", host, port);
    return true;
}

/* Wait until fd is ready for events or the deadline passes: 1 ready, 0
 * timed out, -1 error (errno set). */
static int hc_wait(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - hc_mono_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)left);
        if (n > 0)
            return 1;
        if (n == 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

static void hc_why(int e, char *out, size_t outlen)
{
    if (strerror_r(e, out, outlen) != 0)
        snprintf(out, outlen, "errno %d", e);
}

static bool hc_connect(int fd, const struct hc_target *t, int64_t deadline, char *why,
                       size_t whylen)
{
    if (connect(fd, (const struct sockaddr *)&t->sa, sizeof(t->sa)) == 0)
        return true;
    if (errno != EINPROGRESS) {
        hc_why(errno, why, whylen);
        return false;
    }
    int r = hc_wait(fd, POLLOUT, deadline);
    if (r <= 0) {
        if (r == 0)
            snprintf(why, whylen, "timed out");
        else
            hc_why(errno, why, whylen);
        return false;
    }
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
        soerr = errno;
    if (soerr) {
        hc_why(soerr, why, whylen);
        return false;
    }
    return true;
}

/* Send the whole request; false on error or timeout. */
static bool hc_send_all(int fd, const char *req, size_t len, int64_t deadline)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(fd, req + off, len - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return false;
        if (hc_wait(fd, POLLOUT, deadline) <= 0)
            return false;
    }
    return true;
}

/* Read until the status line is complete; its status code, or -1 when the
 * peer closed or timed out first (*timed_out tells which), or -2 when the
 * line is not HTTP. */
static int hc_read_status(int fd, int64_t deadline, char *line, size_t linelen, bool *timed_out)
{
    size_t have = 0;
    *timed_out = false;
    line[0] = '\0';
    while (have + 1 < linelen && !strstr(line, "\r\n")) {
        ssize_t n = recv(fd, line + have, linelen - 1 - have, 0);
        if (n > 0) {
            have += (size_t)n;
            line[have] = '\0';
            continue;
        }
        if (n == 0)
            return -1;
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return -1;
        if (hc_wait(fd, POLLIN, deadline) <= 0) {
            *timed_out = true;
            return -1;
        }
    }
    line[strcspn(line, "\r\n")] = '\0';
    if (strncmp(line, "HTTP/1.", 7) != 0 || !line[7] || line[8] != ' ')
        return -2;
    const char *c = line + 9;
    for (int i = 0; i < 3; i++)
        if (c[i] < '0' || c[i] > '9')
            return -2;
    if (c[3] != '\0' && c[3] != ' ')
        return -2;
    return (c[0] - '0') * 100 + (c[1] - '0') * 10 + (c[2] - '0');
}

/* One GET; prints the one line and returns the exit status. */
static int hc_probe(const struct hc_target *t, const struct hc_opts *o)
{
    int64_t deadline = hc_mono_ms() + o->timeout_ms;
    char why[128] = "", req[512], line[256];
    bool timed_out = false;
    int len = 0, status = -1, rc = 1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        hc_why(errno, why, sizeof(why));
        fprintf(stderr, "unhealthy: could not create a socket: %s\n", why);
        return 1;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) {
        hc_why(errno, why, sizeof(why));
        fprintf(stderr, "unhealthy: could not set up the socket: %s\n", why);
        close(fd);
        return 1;
    }
    if (!hc_connect(fd, t, deadline, why, sizeof(why))) {
        fprintf(stderr, "unhealthy: could not connect to %s: %s\n", t->name, why);
        goto out;
    }
    len = snprintf(req, sizeof(req),
                   "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: embedd-healthcheck\r\n"
                   "Connection: close\r\n\r\n",
                   o->path, t->name);
    if (len < 0 || (size_t)len >= sizeof(req) || !hc_send_all(fd, req, (size_t)len, deadline)) {
        fprintf(stderr, "unhealthy: could not send GET %s to %s\n", o->path, t->name);
        goto out;
    }
    status = hc_read_status(fd, deadline, line, sizeof(line), &timed_out);
    if (status == -1 && timed_out)
        fprintf(stderr, "unhealthy: no answer from %s to GET %s within %lld ms\n", t->name, o->path,
                (long long)o->timeout_ms);
    else if (status == -1)
        fprintf(stderr, "unhealthy: %s closed the connection before answering GET %s\n", t->name,
                o->path);
    else if (status == -2)
        fprintf(stderr, "unhealthy: %s did not answer GET %s with HTTP\n", t->name, o->path);
    else if (status != 200)
        fprintf(stderr, "unhealthy: %s answered GET %s with %s\n", t->name, o->path, line + 9);
    else {
        printf("healthy: %s answered GET %s with %s\n", t->name, o->path, line + 9);
        rc = 0;
    }
out:
    close(fd);
    return rc;
}

int healthcheck_run(const struct config *cfg, int argc, char **argv)
{
    struct hc_opts o;
    struct hc_target t;
    if (!hc_parse_args(argc, argv, &o) || !hc_target_from_config(cfg, &t))
        return 1;
    return hc_probe(&t, &o);
}
