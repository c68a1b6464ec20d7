/*
 * test_healthcheck.c: `embedd healthcheck`, the container health probe,
 * against a real embedd serve, a closed port and a peer that never answers.
 */
#include "svch.h"

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct svch svc;

static void start(void)
{
    svch_start(&svc, NULL);
}

static void stop(void)
{
    svch_stop(&svc);
}

TestSuite(healthcheck, .init = start, .fini = stop, .timeout = 120);

struct hc_result {
    int rc;
    char *out;
    char *err;
};

/*
 * Run `env EMBEDD_LISTEN=<listen> embedd <args...>` (args NULL-terminated;
 * they include the command). The caller frees out and err.
 */
static void hc_run(struct hc_result *r, const char *listen, char *const *args)
{
    static char envv[128];
    char *argv[16];
    int n = 0;
    snprintf(envv, sizeof(envv), "EMBEDD_LISTEN=%s", listen);
    argv[n++] = "/usr/bin/env";
    argv[n++] = envv;
    argv[n++] = dbh_bin("EMBEDD_BIN");
    for (int i = 0; args[i] && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    r->rc = dbh_run(argv, &r->out, &r->err);
    cr_assert(!strstr(r->err, "Sanitizer") && !strstr(r->err, "runtime error:"), "%s", r->err);
    /* one line says why, on stdout when healthy and on stderr otherwise */
    const char *line = r->rc == 0 ? r->out : r->err;
    const char *other = r->rc == 0 ? r->err : r->out;
    cr_assert(strlen(line) > 0 && strchr(line, '\n') == line + strlen(line) - 1,
              "want one line, got \"%s\"", line);
    cr_assert_str_empty(other);
}

static void hc_free(struct hc_result *r)
{
    free(r->out);
    free(r->err);
}

static void listen_addr(char *out, size_t len, const char *host, int port)
{
    snprintf(out, len, "%s:%d", host, port);
}

Test(healthcheck, healthy_on_the_listen_address)
{
    char addr[64], want[128];
    struct hc_result r;
    listen_addr(addr, sizeof(addr), "127.0.0.1", svc.port);
    hc_run(&r, addr, (char *[]){"healthcheck", NULL});
    cr_assert_eq(r.rc, 0, "%s", r.err);
    snprintf(want, sizeof(want), "healthy: %s answered GET /healthz with 200", addr);
    cr_assert(strstr(r.out, want), "%s", r.out);
    hc_free(&r);
}

Test(healthcheck, wildcard_listen_is_asked_on_loopback)
{
    char addr[64];
    struct hc_result r;
    listen_addr(addr, sizeof(addr), "0.0.0.0", svc.port);
    hc_run(&r, addr, (char *[]){"healthcheck", "--timeout-ms", "5000", NULL});
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert(strstr(r.out, "127.0.0.1:"), "%s", r.out);
    hc_free(&r);
}

Test(healthcheck, flag_wins_over_environment)
{
    char flag[80];
    struct hc_result r;
    snprintf(flag, sizeof(flag), "--listen=127.0.0.1:%d", svc.port);
    hc_run(&r, "127.0.0.1:1", (char *[]){flag, "healthcheck", NULL});
    cr_assert_eq(r.rc, 0, "%s", r.err);
    hc_free(&r);
}

Test(healthcheck, port_zero_reads_the_port_file)
{
    char pf[128];
    struct hc_result r;
    snprintf(pf, sizeof(pf), "--port-file=%s/port", svc.dir);
    hc_run(&r, "127.0.0.1:0", (char *[]){pf, "healthcheck", NULL});
    cr_assert_eq(r.rc, 0, "%s", r.err);
    hc_free(&r);
    hc_run(&r, "127.0.0.1:0", (char *[]){"healthcheck", NULL});
    cr_assert_eq(r.rc, 1);
    cr_assert(strstr(r.err, "port file"), "%s", r.err);
    hc_free(&r);
}

Test(healthcheck, ready_follows_the_schema)
{
    char addr[64];
    struct hc_result r;
    listen_addr(addr, sizeof(addr), "127.0.0.1", svc.port);
    hc_run(&r, addr, (char *[]){"healthcheck", "--ready", NULL});
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert(strstr(r.out, "GET /readyz with 200"), "%s", r.out);
    hc_free(&r);

    /* a schema behind this build: not ready, yet alive */
    PQclear(PQexec(svc.db.conn, "DELETE FROM schema_migrations"));
    hc_run(&r, addr, (char *[]){"healthcheck", "--ready", NULL});
    cr_assert_eq(r.rc, 1);
    cr_assert(strstr(r.err, "answered GET /readyz with 503"), "%s", r.err);
    hc_free(&r);
    hc_run(&r, addr, (char *[]){"healthcheck", NULL});
    cr_assert_eq(r.rc, 0, "%s", r.err);
    hc_free(&r);
    hc_run(&r, addr, (char *[]){"healthcheck", "--path=/nope", NULL});
    cr_assert_eq(r.rc, 1);
    cr_assert(strstr(r.err, "answered GET /nope with 404"), "%s", r.err);
    hc_free(&r);
}

/* A port nobody listens on: bind one, note it, close it. */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    cr_assert(fd >= 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

Test(healthcheck, closed_port_is_unhealthy)
{
    char addr[64];
    struct hc_result r;
    listen_addr(addr, sizeof(addr), "0.0.0.0", closed_port());
    hc_run(&r, addr, (char *[]){"healthcheck", NULL});
    cr_assert_eq(r.rc, 1);
    cr_assert(strstr(r.err, "unhealthy: could not connect to 127.0.0.1:"), "%s", r.err);
    hc_free(&r);
}

Test(healthcheck, silent_peer_times_out)
{
    /* listening, so the connection is made, but nothing ever answers */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    cr_assert(fd >= 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(listen(fd, 4), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    char addr[64];
    struct hc_result r;
    struct timespec t0, t1;
    listen_addr(addr, sizeof(addr), "127.0.0.1", ntohs(sa.sin_port));
    clock_gettime(CLOCK_MONOTONIC, &t0);
    hc_run(&r, addr, (char *[]){"healthcheck", "--timeout-ms=300", NULL});
    clock_gettime(CLOCK_MONOTONIC, &t1);
    close(fd);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    cr_assert_eq(r.rc, 1);
    cr_assert(strstr(r.err, "within 300 ms"), "%s", r.err);
    cr_assert(s < 3.0, "the timeout took %.2f s", s);
    hc_free(&r);
}

Test(healthcheck, bad_arguments_are_unhealthy_not_usage_errors)
{
    struct hc_result r;
    hc_run(&r, "127.0.0.1:1", (char *[]){"healthcheck", "--path", "nope", NULL});
    cr_assert_eq(r.rc, 1, "Docker reserves exit status 2");
    hc_free(&r);
    hc_run(&r, "127.0.0.1:1", (char *[]){"healthcheck", "--timeout-ms=0", NULL});
    cr_assert_eq(r.rc, 1);
    hc_free(&r);
    hc_run(&r, "localhost:8080", (char *[]){"healthcheck", NULL});
    cr_assert_eq(r.rc, 1);
    cr_assert(strstr(r.err, "not an IPv4 host:port"), "%s", r.err);
    hc_free(&r);
}
