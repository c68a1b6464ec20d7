/*
 * status_baseline.c: the baseline of the "status" benchmark figure: the
 * least a status endpoint can do. libmicrohttpd with embedd's threading model
 * (an internal polling thread pool over epoll, --threads of them), one libpq
 * connection per pool thread, and GET /jobs/<uuid> answered with one
 * prepared, indexed SELECT on jobs rendered as a small JSON object. No auth,
 * no logging, no request ids.
 *
 *   status_baseline --database-url URL [--listen 127.0.0.1:0] [--threads 2]
 *                   [--port-file FILE]
 *                   [--mode minimal|embedd-sql|embedd-sql-prepared|one-statement]
 *
 * The two embedd-sql modes help explain the gap to embedd: per request they
 * run the three statements embedd runs for GET /v1/jobs/{id} (API key by
 * prefix from the Authorization header, the job row with embedd's columns,
 * batch counts by state; copied from service/store/keys.c and service/store/jobs.c) --
 * as embedd does, with PQexecParams (parsed and planned every time), or
 * prepared once per connection -- and still answer the same small JSON
 * (no SHA-256 check of the key, no pool, no 900-byte representation).
 * --mode one-statement sketches the cheapest safe variant: the key looked up
 * once per thread and then remembered (a real cache would expire entries
 * after a few seconds, for revocation), and the job row with its batch
 * counts in one prepared statement.
 *
 * Runs until SIGINT or SIGTERM, then stops the daemon, closes every
 * connection and exits 0. Built by bench/CMakeLists.txt; driven by
 * bench/status.sh.
 */
#include <libpq-fe.h>
#include <microhttpd.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_CONNS 256

#define STATUS_SQL                                                                                 \
    "SELECT id, state, documents, chunks_total, chunks_pending, chunks_in_flight,"                 \
    " chunks_succeeded, chunks_failed FROM jobs WHERE id = $1"

/* embedd's three statements for GET /v1/jobs/{id}, as of service/store/keys.c and
 * service/store/jobs.c */
#define KEY_SQL "SELECT id, key_sha256 FROM api_keys WHERE prefix = $1 AND revoked_at IS NULL"
#define TS(col)                                                                                    \
    "coalesce(to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), '')"
/* the first eight columns are those of STATUS_SQL, in the same order */
#define JOB_SQL                                                                                    \
    "SELECT id, state, documents, chunks_total, chunks_pending, chunks_in_flight,"                 \
    " chunks_succeeded, chunks_failed, display_name, model, task_type, output_dimensionality,"     \
    " normalize, priority, max_chars, overlap_chars, token_estimate, " TS("created_at") ", " TS(   \
        "started_at") ", " TS("finished_at") ", " TS("last_activity_at") ","                       \
                                                                         " (extract(epoch FROM "   \
                                                                         "created_at) * "          \
                                                                         "1000000)::bigint"        \
                                                                         " FROM jobs WHERE id = "  \
                                                                         "$1 AND api_key_id = $2"
#define BATCHES_SQL                                                                                \
    "SELECT state, count(*), count(*) FILTER (WHERE gemini_name IS NOT NULL),"                     \
    " coalesce(sum(n_chunks) FILTER (WHERE gemini_name IS NOT NULL OR state = 'succeeded'), 0)"    \
    " FROM batches WHERE job_id = $1 GROUP BY state"
/* JOB_SQL with the batch counts as one more column: "state:n:named:sent,..." */
#define JOB_BATCHES_SQL                                                                            \
    "SELECT j.*, (SELECT coalesce(string_agg(state || ':' || n || ':' || g || ':' || s, ','), '')" \
    " FROM (SELECT state, count(*) AS n, count(*) FILTER (WHERE gemini_name IS NOT NULL) AS g,"    \
    " coalesce(sum(n_chunks) FILTER (WHERE gemini_name IS NOT NULL OR state = 'succeeded'), 0)"    \
    " AS s FROM batches WHERE job_id = $1 GROUP BY state) AS b) FROM (" JOB_SQL ") AS j"
#define KEY_PREFIX_LEN 12

enum mode { MODE_MINIMAL, MODE_EMBEDD_SQL, MODE_EMBEDD_SQL_PREPARED, MODE_ONE_STATEMENT };

struct baseline {
    const char *db_url;
    enum mode mode;
    pthread_mutex_t mu; /* guards conns and n_conns */
    PGconn *conns[MAX_CONNS];
    size_t n_conns;
};

/* This pool thread's connection (prepared), or NULL until its first request. */
static _Thread_local PGconn *thread_conn;
/* --mode one-statement: the last key this thread looked up */
static _Thread_local char thread_prefix[KEY_PREFIX_LEN + 1];
static _Thread_local unsigned long long thread_key_id;

static PGconn *conn_for_thread(struct baseline *b)
{
    if (thread_conn && PQstatus(thread_conn) == CONNECTION_OK)
        return thread_conn;
    PGconn *c = PQconnectdb(b->db_url);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "status_baseline: connect: %s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    static const char *const names[] = {"status", "key", "job", "batches", "job_batches"};
    static const char *const sql[] = {STATUS_SQL, KEY_SQL, JOB_SQL, BATCHES_SQL, JOB_BATCHES_SQL};
    static const int n_params[] = {1, 1, 2, 1, 2};
    bool ok = true;
    for (int i = 0; i < 5 && ok; i++) {
        PGresult *r = PQprepare(c, names[i], sql[i], n_params[i], NULL);
        ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok)
            fprintf(stderr, "status_baseline: prepare: %s", PQerrorMessage(c));
        PQclear(r);
    }
    pthread_mutex_lock(&b->mu);
    if (ok && b->n_conns < MAX_CONNS)
        b->conns[b->n_conns++] = c;
    else
        ok = false;
    pthread_mutex_unlock(&b->mu);
    if (!ok) {
        PQfinish(c);
        return NULL;
    }
    thread_conn = c; /* a broken predecessor stays listed and is closed at exit */
    return c;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *body,
                             size_t len)
{
    struct MHD_Response *m =
        MHD_create_response_from_buffer(len, (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
    if (!m)
        return MHD_NO;
    MHD_add_response_header(m, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    enum MHD_Result ret = MHD_queue_response(conn, status, m);
    MHD_destroy_response(m);
    return ret;
}

/* Run statement name (text sql) as the mode says: prepared or parsed every time. */
static PGresult *run(const struct baseline *b, PGconn *c, const char *name, const char *sql, int n,
                     const char *const *params, int binary)
{
    if (b->mode == MODE_EMBEDD_SQL)
        return PQexecParams(c, sql, n, NULL, params, NULL, NULL, binary);
    return PQexecPrepared(c, name, n, params, NULL, NULL, binary);
}

/*
 * The embedd-sql modes: the key by its prefix, then the job row of that key,
 * then the batch counts. Returns the job row (or NULL with *status set).
 */
static PGresult *embedd_sql(const struct baseline *b, PGconn *c, struct MHD_Connection *conn,
                            const char *id, unsigned *status)
{
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    *status = 401;
    if (!h || strncmp(h, "Bearer ", 7) != 0 || strlen(h + 7) < KEY_PREFIX_LEN)
        return NULL;
    char prefix[KEY_PREFIX_LEN + 1];
    memcpy(prefix, h + 7, KEY_PREFIX_LEN);
    prefix[KEY_PREFIX_LEN] = '\0';
    const char *kp[1] = {prefix};
    *status = 503;
    unsigned long long key_id = 0;
    PGresult *r;
    if (b->mode == MODE_ONE_STATEMENT && strcmp(thread_prefix, prefix) == 0) {
        key_id = thread_key_id;
    } else {
        r = run(b, c, "key", KEY_SQL, 1, kp, 1);
        if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 ||
            PQgetlength(r, 0, 0) != 8) {
            if (PQresultStatus(r) == PGRES_TUPLES_OK)
                *status = 401;
            PQclear(r);
            return NULL;
        }
        const unsigned char *p = (const unsigned char *)PQgetvalue(r, 0, 0);
        for (int i = 0; i < 8; i++)
            key_id = key_id << 8 | p[i];
        PQclear(r);
        memcpy(thread_prefix, prefix, sizeof(prefix));
        thread_key_id = key_id;
    }
    char key[24];
    snprintf(key, sizeof(key), "%llu", key_id);
    const char *jp[2] = {id, key};
    bool one = b->mode == MODE_ONE_STATEMENT;
    PGresult *job = one ? run(b, c, "job_batches", JOB_BATCHES_SQL, 2, jp, 0)
                        : run(b, c, "job", JOB_SQL, 2, jp, 0);
    if (PQresultStatus(job) != PGRES_TUPLES_OK || PQntuples(job) != 1) {
        if (PQresultStatus(job) == PGRES_TUPLES_OK)
            *status = 404;
        PQclear(job);
        return NULL;
    }
    *status = 200;
    if (one)
        return job;
    r = run(b, c, "batches", BATCHES_SQL, 1, jp, 0);
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    PQclear(r);
    if (!ok) {
        *status = 503;
        PQclear(job);
        return NULL;
    }
    return job;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_size, void **req_cls)
{
    (void)version;
    (void)upload;
    (void)upload_size;
    static int first_call_marker;
    if (!*req_cls) { /* headers only: wait for the (empty) body */
        *req_cls = &first_call_marker;
        return MHD_YES;
    }
    static const char not_found[] = "{\"error\":\"not found\"}";
    static const char failed[] = "{\"error\":\"database\"}";
    static const char unauthorized[] = "{\"error\":\"unauthorized\"}";
    const char *id = url + 6;
    if (strcmp(method, "GET") != 0 || strncmp(url, "/jobs/", 6) != 0 || strlen(id) != 36)
        return reply(conn, 404, not_found, sizeof(not_found) - 1);
    PGconn *c = conn_for_thread(cls);
    if (!c)
        return reply(conn, 503, failed, sizeof(failed) - 1);
    const struct baseline *b = cls;
    PGresult *r;
    unsigned status;
    if (b->mode == MODE_MINIMAL) {
        const char *params[1] = {id};
        r = PQexecPrepared(c, "status", 1, params, NULL, NULL, 0);
        status = PQresultStatus(r) != PGRES_TUPLES_OK ? 503 : PQntuples(r) != 1 ? 404 : 200;
    } else {
        r = embedd_sql(b, c, conn, id, &status);
    }
    enum MHD_Result ret;
    if (status == 401) {
        ret = reply(conn, 401, unauthorized, sizeof(unauthorized) - 1);
    } else if (status == 503) {
        ret = reply(conn, 503, failed, sizeof(failed) - 1);
    } else if (status == 404) {
        ret = reply(conn, 404, not_found, sizeof(not_found) - 1);
    } else {
        char body[512];
        int n = snprintf(body, sizeof(body),
                         "{\"id\":\"%s\",\"state\":\"%s\",\"stats\":{\"documents\":%s,"
                         "\"chunks\":{\"total\":%s,\"pending\":%s,\"in_flight\":%s,"
                         "\"succeeded\":%s,\"failed\":%s}}}",
                         PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2),
                         PQgetvalue(r, 0, 3), PQgetvalue(r, 0, 4), PQgetvalue(r, 0, 5),
                         PQgetvalue(r, 0, 6), PQgetvalue(r, 0, 7));
        if (n < 0 || (size_t)n >= sizeof(body))
            ret = reply(conn, 500, failed, sizeof(failed) - 1);
        else
            ret = reply(conn, 200, body, (size_t)n);
    }
    PQclear(r);
    return ret;
}

static bool parse_listen(const char *listen, struct sockaddr_in *sa)
{
    const char *colon = strrchr(listen, ':');
    char host[64];
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    if (!colon || (size_t)(colon - listen) >= sizeof(host))
        return false;
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || port < 0 || port > 65535 ||
        inet_pton(AF_INET, host, &sa->sin_addr) != 1)
        return false;
    sa->sin_port = htons((uint16_t)port);
    return true;
}

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: status_baseline --database-url URL [--listen HOST:PORT] [--threads N]"
        " [--port-file FILE]\n"
        "                       [--mode minimal|embedd-sql|embedd-sql-prepared|one-statement]\n");
}

int main(int argc, char **argv)
{
    const char *listen = "127.0.0.1:0", *port_file = NULL;
    long threads = 2;
    struct baseline b = {.db_url = getenv("DATABASE_URL")};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (!v) {
            usage(stderr);
            return 2;
        }
        if (strcmp(a, "--database-url") == 0) {
            b.db_url = v;
        } else if (strcmp(a, "--listen") == 0) {
            listen = v;
        } else if (strcmp(a, "--port-file") == 0) {
            port_file = v;
        } else if (strcmp(a, "--mode") == 0) {
            if (strcmp(v, "minimal") == 0) {
                b.mode = MODE_MINIMAL;
            } else if (strcmp(v, "embedd-sql") == 0) {
                b.mode = MODE_EMBEDD_SQL;
            } else if (strcmp(v, "embedd-sql-prepared") == 0) {
                b.mode = MODE_EMBEDD_SQL_PREPARED;
            } else if (strcmp(v, "one-statement") == 0) {
                b.mode = MODE_ONE_STATEMENT;
            } else {
                usage(stderr);
                return 2;
            }
        } else if (strcmp(a, "--threads") == 0) {
            char *end;
            threads = strtol(v, &end, 10);
            if (*end || threads < 1 || threads > MAX_CONNS) {
                usage(stderr);
                return 2;
            }
        } else {
            usage(stderr);
            return 2;
        }
        i++;
    }
    struct sockaddr_in sa;
    if (!b.db_url || !parse_listen(listen, &sa)) {
        usage(stderr);
        return 2;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* inherited by MHD's threads */
    signal(SIGPIPE, SIG_IGN);
    pthread_mutex_init(&b.mu, NULL);

    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL,
        on_access, &b, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)threads, MHD_OPTION_CONNECTION_LIMIT, 4096u, MHD_OPTION_CONNECTION_TIMEOUT, 30u,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "status_baseline: could not start the HTTP daemon on %s\n", listen);
        pthread_mutex_destroy(&b.mu);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    int port = info ? (int)info->port : 0;
    int rc = 0;
    fprintf(stderr, "status_baseline: listening on port %d, %ld threads\n", port, threads);
    if (port_file) {
        char tmp[4096];
        snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
        FILE *f = fopen(tmp, "w");
        bool ok = f && fprintf(f, "%d\n", port) > 0;
        if (f && fclose(f) != 0)
            ok = false;
        if (!ok || rename(tmp, port_file) != 0) {
            fprintf(stderr, "status_baseline: could not write %s\n", port_file);
            rc = 1;
        }
    }
    int sig = 0;
    while (rc == 0 && sigwait(&set, &sig) != 0)
        ;
    MHD_stop_daemon(d);
    for (size_t i = 0; i < b.n_conns; i++)
        PQfinish(b.conns[i]);
    pthread_mutex_destroy(&b.mu);
    return rc;
}
