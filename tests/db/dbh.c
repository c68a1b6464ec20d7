/* dbh.c: per-test PostgreSQL databases and child-process helpers. */
#include "dbh.h"

#include "util/buf.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static PGconn *admin(void)
{
    const char *url = getenv("EMBEDD_TEST_DATABASE_URL");
    cr_assert(url && *url, "EMBEDD_TEST_DATABASE_URL is not set: run bash scripts/test.sh, or "
                           "start a server with scripts/pg.sh and export it");
    PGconn *c = PQconnectdb(url);
    cr_assert(PQstatus(c) == CONNECTION_OK, "cannot reach the test database: %s",
              PQerrorMessage(c));
    return c;
}

void dbh_create(struct dbh *h)
{
    static unsigned counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    memset(h, 0, sizeof(*h));
    snprintf(h->name, sizeof(h->name), "t_%d_%u_%ld", (int)getpid(), counter++,
             ts.tv_nsec % 100000);
    PGconn *a = admin();
    char sql[128];
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", h->name);
    PGresult *r = PQexec(a, sql);
    cr_assert(PQresultStatus(r) == PGRES_COMMAND_OK, "%s: %s", sql, PQerrorMessage(a));
    PQclear(r);
    snprintf(h->url, sizeof(h->url), "postgresql://%s@%s:%s/%s", PQuser(a), PQhost(a), PQport(a),
             h->name);
    PQfinish(a);
    h->conn = PQconnectdb(h->url);
    cr_assert(PQstatus(h->conn) == CONNECTION_OK, "%s", PQerrorMessage(h->conn));
}

void dbh_drop(struct dbh *h)
{
    if (h->conn)
        PQfinish(h->conn);
    h->conn = NULL;
    if (!h->name[0])
        return;
    PGconn *a = admin();
    char sql[128];
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", h->name);
    PGresult *r = PQexec(a, sql);
    PQclear(r);
    PQfinish(a);
    h->name[0] = '\0';
}

long long dbh_scalar(struct dbh *h, const char *sql)
{
    PGresult *r = PQexec(h->conn, sql);
    cr_assert(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1, "%s: %s", sql,
              PQerrorMessage(h->conn));
    long long v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

char *dbh_bin(const char *env_name)
{
    /* TEST_OVERRIDE_<NAME> (e.g. a ThreadSanitizer build) wins over the build's own binary */
    char ov[96];
    snprintf(ov, sizeof(ov), "TEST_OVERRIDE_%s", env_name);
    char *p = getenv(ov);
    if (!p || !*p)
        p = getenv(env_name);
    cr_assert(p && *p, "%s is not set (run the tests through ctest)", env_name);
    return p;
}

static void drain(int fd, struct buf *b, bool *open)
{
    char tmp[4096];
    ssize_t n = read(fd, tmp, sizeof(tmp));
    if (n > 0) {
        if (!buf_append(b, tmp, (size_t)n))
            *open = false;
    } else if (n == 0 || errno != EINTR) {
        *open = false;
    }
}

int dbh_run(char *const argv[], char **out, char **err)
{
    int po[2], pe[2];
    cr_assert(pipe(po) == 0 && pipe(pe) == 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(po[0]);
        close(pe[0]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    struct buf bo, be;
    buf_init(&bo, 1 << 24);
    buf_init(&be, 1 << 24);
    bool oo = true, eo = true;
    while (oo || eo) {
        struct pollfd fds[2] = {{oo ? po[0] : -1, POLLIN, 0}, {eo ? pe[0] : -1, POLLIN, 0}};
        if (poll(fds, 2, 60000) <= 0)
            break;
        if (fds[0].revents)
            drain(po[0], &bo, &oo);
        if (fds[1].revents)
            drain(pe[0], &be, &eo);
    }
    close(po[0]);
    close(pe[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    if (out)
        *out = buf_steal(&bo, NULL);
    if (err)
        *err = buf_steal(&be, NULL);
    buf_cleanup(&bo);
    buf_cleanup(&be);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
