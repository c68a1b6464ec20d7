/*
 * test_create_once.c: a create is sent once, even when the connection it
 * would reuse dies. libcurl resends a request by itself when a reused
 * connection closes before any byte of the answer (it takes the close for an
 * idle connection the server had dropped); for a create that acted before
 * the close, that is a second batch, paid twice. Against a server that keeps
 * connections open, then takes every create and hangs up without answering,
 * the client must send the create once and report its outcome as unknown.
 */
#include "harness.h"

#include "gemini/client.h"

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CONNS_MAX 8

struct hangup_server {
    int fd, port;
    atomic_int creates;  /* create requests read in full */
    atomic_int requests; /* every request read */
    atomic_int conns;    /* connections accepted */
    atomic_bool stop;
    pthread_t th;
    pthread_t conn_th[CONNS_MAX];
    int conn_fd[CONNS_MAX];
};

struct conn_arg {
    struct hangup_server *s;
    int fd;
};

static bool contains(const char *p, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(p + i, needle, k) == 0)
            return true;
    return false;
}

static long content_length(const char *head, size_t n)
{
    char low[4096];
    size_t i = 0;
    for (; i < n && i < sizeof(low) - 1; i++)
        low[i] = (char)tolower((unsigned char)head[i]);
    low[i] = '\0';
    const char *p = strstr(low, "\ncontent-length:");
    return p ? strtol(p + 16, NULL, 10) : 0;
}

/* Read one whole request into buf; false when the peer closed first. */
static bool read_request(int fd, char *buf, size_t cap, size_t *len)
{
    size_t have = 0, head_end = 0, want = 0;
    for (;;) {
        for (size_t i = 0; !head_end && i + 4 <= have; i++) {
            if (memcmp(buf + i, "\r\n\r\n", 4) == 0) {
                head_end = i + 4;
                want = (size_t)content_length(buf, head_end);
            }
        }
        if (head_end && have >= head_end + want) {
            *len = have;
            return true;
        }
        if (have == cap)
            return false;
        ssize_t r = recv(fd, buf + have, cap - have, 0);
        if (r <= 0)
            return false;
        have += (size_t)r;
    }
}

/* One connection: list requests are answered and the connection kept open;
 * a create is read in full, counted, and answered by closing the connection. */
static void *serve_conn(void *arg)
{
    struct conn_arg *ca = arg;
    struct hangup_server *s = ca->s;
    int fd = ca->fd;
    free(ca);
    static const char list_reply[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                     "Content-Length: 2\r\n\r\n{}";
    char buf[16384];
    size_t len;
    while (!atomic_load(&s->stop) && read_request(fd, buf, sizeof(buf), &len)) {
        atomic_fetch_add(&s->requests, 1);
        if (contains(buf, len, ":asyncBatchEmbedContent")) {
            atomic_fetch_add(&s->creates, 1);
            break; /* acted on it, then the connection died */
        }
        if (send(fd, list_reply, sizeof(list_reply) - 1, MSG_NOSIGNAL) < 0)
            break;
    }
    shutdown(fd, SHUT_RDWR); /* the fd itself is closed by server_stop */
    return NULL;
}

static void *server_run(void *arg)
{
    struct hangup_server *s = arg;
    while (!atomic_load(&s->stop)) {
        int fd = accept(s->fd, NULL, NULL);
        if (fd < 0)
            break;
        int i = atomic_fetch_add(&s->conns, 1);
        struct conn_arg *ca = malloc(sizeof(*ca));
        if (i >= CONNS_MAX || !ca) {
            free(ca);
            close(fd);
            continue;
        }
        *ca = (struct conn_arg){s, fd};
        s->conn_fd[i] = fd;
        if (pthread_create(&s->conn_th[i], NULL, serve_conn, ca) != 0) {
            free(ca);
            s->conn_fd[i] = -1;
            close(fd);
        }
    }
    return NULL;
}

static void server_start(struct hangup_server *s)
{
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(s->fd >= 0 && bind(s->fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    cr_assert(listen(s->fd, 8) == 0);
    cr_assert(getsockname(s->fd, (struct sockaddr *)&a, &al) == 0);
    s->port = ntohs(a.sin_port);
    cr_assert(pthread_create(&s->th, NULL, server_run, s) == 0);
}

static void server_stop(struct hangup_server *s)
{
    atomic_store(&s->stop, true);
    shutdown(s->fd, SHUT_RDWR); /* wakes a pending accept */
    pthread_join(s->th, NULL);
    close(s->fd);
    int n = atomic_load(&s->conns);
    for (int i = 0; i < n && i < CONNS_MAX; i++) {
        if (s->conn_fd[i] < 0)
            continue;
        shutdown(s->conn_fd[i], SHUT_RDWR); /* wakes a pending recv */
        pthread_join(s->conn_th[i], NULL);
        close(s->conn_fd[i]);
    }
}

Test(create_once, dead_reused_connection_does_not_resend_the_create, .timeout = 60)
{
    cr_assert(gem_global_init());
    struct hangup_server s;
    memset(&s, 0, sizeof(s));
    server_start(&s);
    char base[64];
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", s.port);
    struct gem_client_opts o = {base, "v1beta", SIMH_KEY, 2000, 5000, 0, NULL, 0};
    struct gem_client *c = gem_client_new(&o);
    cr_assert_not_null(c);

    /* a call that leaves a connection open for reuse, as every worker's client has */
    struct gem_operation *ops = NULL;
    size_t n = 9;
    char next[64];
    struct gem_call res;
    gem_list_batches(c, 10, NULL, &ops, &n, next, sizeof(next), &res);
    cr_assert_eq(res.outcome, GEM_OK, "%s", res.detail);
    cr_assert_eq(n, 0);
    free(ops);

    static const char body[] = "{\"batch\":{\"displayName\":\"once\",\"inputConfig\":"
                               "{\"fileName\":\"files/abc\"}}}";
    struct gem_operation op;
    gem_create_batch(c, "gemini-embedding-001", body, sizeof(body) - 1, &op, &res);
    cr_assert_eq(res.outcome, GEM_UNKNOWN, "%s: %s", gem_outcome_name(res.outcome), res.detail);
    cr_assert_eq(res.requests, 1, "one request made");
    cr_assert_eq(atomic_load(&s.creates), 1, "the create reached the server %d times",
                 atomic_load(&s.creates));
    cr_assert_eq(atomic_load(&s.conns), 2, "the create had a connection of its own");

    /* other calls still reuse connections (only the create is kept apart) */
    gem_list_batches(c, 10, NULL, &ops, &n, next, sizeof(next), &res);
    cr_assert_eq(res.outcome, GEM_OK, "%s", res.detail);
    gem_list_batches(c, 10, NULL, &ops, &n, next, sizeof(next), &res);
    cr_assert_eq(res.outcome, GEM_OK, "%s", res.detail);
    cr_assert_eq(atomic_load(&s.conns), 2, "the lists reused the first connection");
    gem_client_free(c);
    server_stop(&s);
    gem_global_cleanup();
}
