/* svch.c: start and stop `embedd serve` for integration tests. */
#include "svch.h"

#include "harness.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nap(void)
{
    struct timespec ts = {0, 10 * 1000000L};
    nanosleep(&ts, NULL);
}

void svch_new_key(struct svch *s, const char *name, char *out)
{
    char url[600], nm[128];
    snprintf(url, sizeof(url), "--database-url=%s", s->db.url);
    snprintf(nm, sizeof(nm), "%s", name);
    char *argv[] = {dbh_bin("EMBEDD_BIN"), url, "keys", "create", "--name", nm, NULL};
    char *o = NULL, *e = NULL;
    int rc = dbh_run(argv, &o, &e);
    cr_assert_eq(rc, 0, "keys create failed: %s", e);
    snprintf(out, 64, "%.*s", (int)strcspn(o, "\n"), o);
    free(o);
    free(e);
}

/* Fork and exec s->argv with stderr appended to the log; wait for the port file. */
static void spawn(struct svch *s)
{
    char log[128], pf[128];
    snprintf(log, sizeof(log), "%s/log", s->dir);
    snprintf(pf, sizeof(pf), "%s/port", s->dir);
    s->pid = simh_spawn(s->argv, log, false, true, pf, 20000, "embedd serve", &s->port);
    snprintf(s->base, sizeof(s->base), "http://127.0.0.1:%d", s->port);
}

/* s->argv: embedd, the database, an ephemeral port and its file, flags, serve. */
static void build_argv(struct svch *s, const char *const *flags)
{
    snprintf(s->dir, sizeof(s->dir), "/tmp/svch-XXXXXX");
    cr_assert(mkdtemp(s->dir), "mkdtemp failed (errno %d)", errno);
    int n = 0;
    snprintf(s->arg_store[n], sizeof(s->arg_store[n]), "%s", dbh_bin("EMBEDD_BIN"));
    s->argv[n] = s->arg_store[n], n++;
    snprintf(s->arg_store[n], sizeof(s->arg_store[n]), "--database-url=%s", s->db.url);
    s->argv[n] = s->arg_store[n], n++;
    snprintf(s->arg_store[n], sizeof(s->arg_store[n]), "--listen=127.0.0.1:0");
    s->argv[n] = s->arg_store[n], n++;
    snprintf(s->arg_store[n], sizeof(s->arg_store[n]), "--port-file=%s/port", s->dir);
    s->argv[n] = s->arg_store[n], n++;
    for (int i = 0; flags && flags[i] && n < 37; i++) {
        snprintf(s->arg_store[n], sizeof(s->arg_store[n]), "%s", flags[i]);
        s->argv[n] = s->arg_store[n], n++;
    }
    snprintf(s->arg_store[n], sizeof(s->arg_store[n]), "serve");
    s->argv[n] = s->arg_store[n], n++;
    s->argv[n] = NULL;
}

void svch_start(struct svch *s, const char *const *flags)
{
    svch_start_prepared(s, flags, NULL);
}

void svch_start_prepared(struct svch *s, const char *const *flags, void (*prepare)(struct dbh *))
{
    memset(s, 0, sizeof(*s));
    dbh_create(&s->db);
    if (prepare)
        prepare(&s->db);
    build_argv(s, flags);
    spawn(s);
    svch_new_key(s, "test", s->key);
}

void svch_start_replica(struct svch *r, const struct svch *s, const char *const *flags)
{
    memset(r, 0, sizeof(*r));
    r->replica = true;
    snprintf(r->db.name, sizeof(r->db.name), "%s", s->db.name);
    snprintf(r->db.url, sizeof(r->db.url), "%s", s->db.url);
    snprintf(r->key, sizeof(r->key), "%s", s->key);
    build_argv(r, flags);
    spawn(r);
}

void svch_crash_restart(struct svch *s)
{
    if (s->pid) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
    spawn(s);
}

void svch_stop(struct svch *s)
{
    if (s->pid) {
        kill(s->pid, SIGTERM);
        int st = 0;
        pid_t w = 0;
        int64_t deadline = ms_now() + 30000;
        while ((w = waitpid(s->pid, &st, WNOHANG)) == 0 && ms_now() < deadline)
            nap();
        if (w == 0) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &st, 0);
        }
        s->pid = 0;
        char path[128], buf[65536];
        snprintf(path, sizeof(path), "%s/log", s->dir);
        FILE *f = fopen(path, "r");
        size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
        if (f)
            fclose(f);
        buf[n] = '\0';
        if (getenv("SVCH_KEEP_LOG")) /* for debugging: keep the service's log */
            fprintf(stderr, "embedd log kept in %s\n", path);
        else
            unlink(path);
        snprintf(path, sizeof(path), "%s/port", s->dir);
        unlink(path);
        rmdir(s->dir);
        bool bad = strstr(buf, "Sanitizer") || strstr(buf, "runtime error:");
        /* secrets never reach the log: the client key, nor the Gemini key the tests use */
        bool leak = (s->key[0] && strstr(buf, s->key + 3)) || strstr(buf, "test-key");
        if (bad)
            fprintf(stderr, "embedd log:\n%s\n", buf);
        if (!s->replica)
            dbh_drop(&s->db);
        cr_assert(w != 0, "embedd serve did not stop within 30 s of SIGTERM");
        cr_assert(!bad, "embedd serve reported a sanitizer error");
        cr_assert(!leak, "a secret appeared in embedd's log");
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "embedd serve exit status %d", st);
        return;
    }
    if (!s->replica)
        dbh_drop(&s->db);
}
