/*
 * events.c: GET /v1/jobs/{id}/events, a job's progress as Server-Sent Events,
 * and the hub that feeds every such stream of this replica.
 *
 * Changes are seen by reading the job rows, whichever replica made them: one
 * thread (the hub), on a connection of its own (not the pool's, which a busy
 * server runs short of), reads, every --sse-interval-ms, the versions of all
 * jobs watched by this replica's streams in one query (jobs_versions: PostgreSQL's
 * xmin of each row, which every update changes), then the changed jobs whole
 * in a second query (jobs_get_many), renders each changed job's
 * representation once (api_put_job with its ETA, the same as GET
 * /v1/jobs/{id}) and queues an event on each of its streams. So the database
 * cost is two indexed queries per interval per replica (and an ETA read per
 * changed running job), whatever the number of streams, and nothing at all
 * when no one watches. LISTEN/NOTIFY was the
 * other way: it needs a trigger and a NOTIFY in every transaction that moves
 * a job (NOTIFY serialises commits on a global lock), a connection held per
 * replica, and a poll anyway after each reconnection, since notifications
 * sent while it was down are lost.
 *
 * A stream never holds a server thread while it waits: its read answers
 * HTTP_STREAM_WAIT and the server parks the connection until the hub wakes
 * it (http_resp_stream_wait). Each stream queues at most one event at a time:
 * the next is only queued once the client has taken the last, so a slow
 * client costs one event of memory and gets the latest state when it catches
 * up (progress is coalesced, never queued up).
 *
 * Events: "progress" with the job when its version differs from the one the
 * stream last sent (at most one per interval, the first at once), "done" with
 * the job once it is terminal (then the body ends), and a comment line after
 * --sse-heartbeat-s of silence. Event ids are "SEQ-VERSION": SEQ counts the
 * events of a stream and goes on from the Last-Event-ID of a resumed stream
 * (so ids only grow along a client's reconnections), VERSION is the job
 * version the event shows. On resume (Last-Event-ID), a terminal job gets
 * "done" at once, a job whose version moved since gets "progress" at once,
 * and an unchanged one waits for its next change.
 *
 * Locks: hub->lock guards the jobs, the streams and their queued bytes. The
 * hub wakes streams while holding it (http_stream_wake takes the server's
 * lock after it); the server calls ev_read and ev_done without its own.
 */
#include "events.h"

#include "api.h"
#include "log.h"
#include "store/db.h"
#include "store/eta.h"
#include "util/buf.h"
#include "util/clock.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EVENT_MAX_BYTES (1u << 20) /* one event; a job's representation is ~2 KB */

struct ev_stream;

struct ev_job {
    struct ev_job *next;
    char id[JOB_ID_LEN + 1];
    int64_t key_id;  /* its API key (the ETA reads that key's recent jobs) */
    int64_t version; /* of json; -1: not read yet */
    bool terminal, gone;
    char *json; /* the representation at version (malloc'd) */
    size_t json_len;
    struct ev_stream *streams;
};

struct ev_stream {
    struct ev_stream *next; /* in job->streams */
    struct events_hub *hub;
    struct ev_job *job;
    struct http_stream *h; /* NULL until the response exists */
    struct buf out;        /* queued bytes; pos of them were read */
    size_t pos;
    uint64_t seq;         /* of the last event sent */
    int64_t sent_version; /* the version the client has; -1: none */
    int64_t last_progress_ms, last_write_ms;
    bool ended; /* done (or the end) queued: the body ends once out is read */
};

struct events_hub {
    struct app *app;
    struct events_opts o;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t th;
    bool running, stop, kick;
    struct ev_job *jobs;
    int clients;
    /* the hub's own connection (made when first needed, remade after a
     * failure): pool connections are what a busy server runs short of, and
     * the hub must not wait behind the requests for its two queries */
    PGconn *conn;
    PGcancel *cancel; /* of conn while a query runs (lock): stop cancels it */
    int64_t last_db_warn_ms;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool is_terminal(const char *state)
{
    return strcmp(state, "pending") != 0 && strcmp(state, "running") != 0;
}

/* ---- what the server calls (on its threads, without its lock) ---- */

static long ev_read(void *cls, char *out, size_t max)
{
    struct ev_stream *s = cls;
    struct events_hub *hub = s->hub;
    pthread_mutex_lock(&hub->lock);
    long n;
    if (s->pos < s->out.len) {
        size_t k = s->out.len - s->pos;
        if (k > max)
            k = max;
        memcpy(out, s->out.data + s->pos, k);
        s->pos += k;
        if (s->pos == s->out.len) {
            buf_reset(&s->out);
            s->pos = 0;
        }
        n = (long)k;
    } else {
        n = s->ended ? 0 : HTTP_STREAM_WAIT;
    }
    pthread_mutex_unlock(&hub->lock);
    return n;
}

static void job_unlink(struct events_hub *hub, struct ev_job *j)
{
    for (struct ev_job **p = &hub->jobs; *p; p = &(*p)->next)
        if (*p == j) {
            *p = j->next;
            break;
        }
    free(j->json);
    free(j);
}

/* Detach s from its job (and drop the job when no one watches it); hub->lock held. */
static void stream_unlink(struct events_hub *hub, struct ev_stream *s)
{
    struct ev_job *j = s->job;
    for (struct ev_stream **p = &j->streams; *p; p = &(*p)->next)
        if (*p == s) {
            *p = s->next;
            break;
        }
    if (!j->streams)
        job_unlink(hub, j);
    hub->clients--;
}

static void ev_done(void *cls)
{
    struct ev_stream *s = cls;
    struct events_hub *hub = s->hub;
    char id[JOB_ID_LEN + 1];
    memcpy(id, s->job->id, sizeof(id));
    pthread_mutex_lock(&hub->lock);
    stream_unlink(hub, s);
    pthread_mutex_unlock(&hub->lock);
    log_debug("event stream of job %s closed (last event %llu)", id, (unsigned long long)s->seq);
    buf_cleanup(&s->out);
    free(s);
}

/* ---- the hub ---- */

/* Queue one event (or the heartbeat comment when name is NULL); hub->lock held. */
static void queue(struct ev_stream *s, const char *name, int64_t now)
{
    struct ev_job *j = s->job;
    bool ok;
    if (!name) {
        ok = buf_puts(&s->out, ": keep-alive\n\n");
    } else {
        ok = buf_printf(&s->out, "id: %llu-%lld\nevent: %s\ndata: ", (unsigned long long)s->seq + 1,
                        (long long)j->version, name) &&
             buf_append(&s->out, j->json, j->json_len) && buf_puts(&s->out, "\n\n");
        if (ok) {
            s->seq++;
            s->sent_version = j->version;
            s->last_progress_ms = now;
        }
    }
    if (!ok) { /* out of memory: end the stream; the client resumes */
        buf_reset(&s->out);
        s->pos = 0;
        s->ended = true;
    }
    s->last_write_ms = now;
    if (s->h)
        http_stream_wake(s->h);
}

/* Queue what each stream is due at time now; hub->lock held. */
static void deliver(struct events_hub *hub, int64_t now)
{
    for (struct ev_job *j = hub->jobs; j; j = j->next)
        for (struct ev_stream *s = j->streams; s; s = s->next) {
            if (s->ended || s->pos < s->out.len)
                continue;  /* the client has not taken the last event yet */
            if (j->gone) { /* deleted: nothing more will come */
                s->ended = true;
                if (s->h)
                    http_stream_wake(s->h);
            } else if (j->version >= 0 && j->terminal) {
                queue(s, "done", now);
                s->ended = true;
            } else if (j->version >= 0 && j->version != s->sent_version &&
                       (s->last_progress_ms == 0 ||
                        now - s->last_progress_ms >= hub->o.interval_ms)) {
                queue(s, "progress", now);
            } else if (now - s->last_write_ms >= hub->o.heartbeat_ms) {
                queue(s, NULL, now);
            }
        }
}

static struct ev_job *find_job(struct events_hub *hub, const char *id)
{
    for (struct ev_job *j = hub->jobs; j; j = j->next)
        if (strcmp(j->id, id) == 0)
            return j;
    return NULL;
}

/* The watched jobs' ids, cached versions and keys; hub->lock held. */
static size_t snapshot(struct events_hub *hub, char (**ids)[JOB_ID_LEN + 1], int64_t **cached,
                       int64_t **keys)
{
    size_t n = 0;
    for (struct ev_job *j = hub->jobs; j; j = j->next)
        n++;
    *ids = n ? malloc(n * sizeof(**ids)) : NULL;
    *cached = n ? malloc(n * sizeof(**cached)) : NULL;
    *keys = n ? malloc(n * sizeof(**keys)) : NULL;
    if (!*ids || !*cached || !*keys) {
        free(*ids);
        free(*cached);
        free(*keys);
        *ids = NULL;
        *cached = NULL;
        *keys = NULL;
        return 0;
    }
    size_t i = 0;
    for (struct ev_job *j = hub->jobs; j; j = j->next, i++) {
        memcpy((*ids)[i], j->id, sizeof((*ids)[i]));
        (*cached)[i] = j->version;
        (*keys)[i] = j->key_id;
    }
    return n;
}

struct rendered {
    char *json;
    size_t len;
    int64_t version; /* -1: gone */
    bool terminal;
};

static void db_warn(struct events_hub *hub, const char *err)
{
    int64_t now = mono_ms();
    if (now - hub->last_db_warn_ms > 60000) {
        hub->last_db_warn_ms = now;
        log_warn("job events: %s; streams get heartbeats until the database answers", err);
    }
}

/* The hub's connection, connected if need be; NULL (logged) when it cannot be. */
static PGconn *hub_conn(struct events_hub *hub)
{
    char err[768];
    if (hub->conn && PQstatus(hub->conn) != CONNECTION_OK) {
        PQfinish(hub->conn);
        hub->conn = NULL;
    }
    if (!hub->conn && !(hub->conn = db_connect(hub->app->cfg->database_url, err, sizeof(err))))
        db_warn(hub, err);
    if (hub->conn) {
        PGcancel *cancel = PQgetCancel(hub->conn);
        pthread_mutex_lock(&hub->lock);
        hub->cancel = cancel;
        pthread_mutex_unlock(&hub->lock);
    }
    return hub->conn;
}

static void hub_conn_done(struct events_hub *hub, bool ok)
{
    pthread_mutex_lock(&hub->lock);
    PGcancel *cancel = hub->cancel;
    hub->cancel = NULL;
    pthread_mutex_unlock(&hub->lock);
    PQfreeCancel(cancel);
    if (!ok && hub->conn && PQstatus(hub->conn) != CONNECTION_OK) {
        PQfinish(hub->conn);
        hub->conn = NULL;
    }
}

/* Read what changed among ids[0..n) (versions, then the changed jobs whole)
 * and render it into out[i] (json NULL: unchanged or unreadable). False when
 * the database could not be read. */
static bool read_changes(struct events_hub *hub, char (*ids)[JOB_ID_LEN + 1], const int64_t *cached,
                         const int64_t *keys, size_t n, struct rendered *out)
{
    char err[512] = "";
    PGconn *c = hub_conn(hub);
    if (!c)
        return false;
    const char **idp = malloc(n * sizeof(*idp));
    int64_t *vers = malloc(n * sizeof(*vers));
    const char **changed = malloc(n * sizeof(*changed));
    size_t *where = malloc(n * sizeof(*where));
    struct job_row *rows = NULL;
    struct job_eta *etas = NULL;
    int64_t *rvers = NULL;
    bool ok = idp && vers && changed && where;
    size_t m = 0;
    for (size_t i = 0; ok && i < n; i++)
        idp[i] = ids[i];
    ok = ok && jobs_versions(c, idp, n, vers, err, sizeof(err)) == JOBS_OK;
    for (size_t i = 0; ok && i < n; i++) {
        out[i].version = vers[i];
        if (vers[i] >= 0 && vers[i] != cached[i]) {
            changed[m] = ids[i];
            where[m++] = i;
        }
    }
    if (ok && m) {
        rows = malloc(m * sizeof(*rows));
        rvers = malloc(m * sizeof(*rvers));
        etas = calloc(m, sizeof(*etas));
        ok = rows && rvers && etas &&
             jobs_get_many(c, changed, m, rows, rvers, err, sizeof(err)) == JOBS_OK;
    }
    /* the ETA as GET /v1/jobs/{id} gives it, computed once per change */
    for (size_t k = 0; ok && k < m; k++) {
        char eerr[512];
        if (rvers[k] >= 0 && !is_terminal(rows[k].state) &&
            !jobs_eta(c, keys[where[k]], &rows[k], &etas[k], eerr, sizeof(eerr))) {
            memset(&etas[k], 0, sizeof(etas[k])); /* null, as GET says when it cannot tell */
            if (PQstatus(c) != CONNECTION_OK) {
                snprintf(err, sizeof(err), "%s", eerr);
                ok = false;
            }
        }
    }
    hub_conn_done(hub, ok);
    struct buf b;
    buf_init(&b, EVENT_MAX_BYTES);
    for (size_t k = 0; ok && k < m; k++) {
        struct rendered *r = &out[where[k]];
        r->version = rvers[k];
        if (rvers[k] < 0)
            continue; /* deleted in between */
        buf_reset(&b);
        if (!api_put_job(&b, &rows[k], &etas[k]))
            continue;
        r->json = buf_steal(&b, &r->len);
        r->terminal = is_terminal(rows[k].state);
    }
    buf_cleanup(&b);
    if (!ok)
        db_warn(hub, err[0] ? err : "out of memory");
    free(idp);
    free(vers);
    free(changed);
    free(where);
    free(rows);
    free(etas);
    free(rvers);
    return ok;
}

/* One round: read what changed, then queue what is due. */
static void tick(struct events_hub *hub, int64_t at)
{
    char(*ids)[JOB_ID_LEN + 1] = NULL;
    int64_t *cached = NULL, *keys = NULL;
    pthread_mutex_lock(&hub->lock);
    size_t n = snapshot(hub, &ids, &cached, &keys);
    pthread_mutex_unlock(&hub->lock);
    struct rendered *r = n ? calloc(n, sizeof(*r)) : NULL;
    bool read = r && read_changes(hub, ids, cached, keys, n, r);
    pthread_mutex_lock(&hub->lock);
    for (size_t i = 0; read && i < n; i++) {
        struct ev_job *j = find_job(hub, ids[i]);
        if (!j)
            continue; /* no one watches it any more */
        if (r[i].version < 0) {
            j->gone = true;
        } else if (r[i].json) {
            free(j->json);
            j->json = r[i].json;
            j->json_len = r[i].len;
            j->version = r[i].version;
            j->terminal = r[i].terminal;
            r[i].json = NULL;
        }
    }
    deliver(hub, at);
    pthread_mutex_unlock(&hub->lock);
    for (size_t i = 0; r && i < n; i++)
        free(r[i].json);
    free(r);
    free(ids);
    free(cached);
    free(keys);
}

static void *hub_main(void *arg)
{
    struct events_hub *hub = arg;
    int64_t next = mono_ms() + hub->o.interval_ms;
    pthread_mutex_lock(&hub->lock);
    while (!hub->stop) {
        int64_t now = mono_ms();
        if (!hub->kick && now < next) {
            struct timespec ts = clock_after(CLOCK_MONOTONIC, next - now);
            pthread_cond_timedwait(&hub->cond, &hub->lock, &ts);
            continue;
        }
        /* a scheduled round counts time by the schedule, so that rounds one
         * interval apart are exactly one interval apart for the coalescing */
        int64_t at = now;
        if (now >= next) {
            at = next;
            next += hub->o.interval_ms;
            if (next <= now)
                next = now + hub->o.interval_ms;
        }
        hub->kick = false;
        pthread_mutex_unlock(&hub->lock);
        tick(hub, at);
        pthread_mutex_lock(&hub->lock);
    }
    pthread_mutex_unlock(&hub->lock);
    return NULL;
}

struct events_hub *events_hub_start(struct app *app, const struct events_opts *o, char *err,
                                    size_t errlen)
{
    struct events_hub *hub = calloc(1, sizeof(*hub));
    if (!hub) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    hub->app = app;
    hub->o = *o;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&hub->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&hub->lock, NULL);
    int rc = pthread_create(&hub->th, NULL, hub_main, hub);
    if (rc != 0) {
        snprintf(err, errlen, "could not start the job events thread (error %d)", rc);
        pthread_cond_destroy(&hub->cond);
        pthread_mutex_destroy(&hub->lock);
        free(hub);
        return NULL;
    }
    hub->running = true;
    return hub;
}

void events_hub_stop(struct events_hub *hub)
{
    if (!hub || !hub->running)
        return;
    pthread_mutex_lock(&hub->lock);
    hub->stop = true;
    pthread_cond_signal(&hub->cond);
    if (hub->cancel) { /* a query that hangs must not hold the shutdown */
        char err[256];
        (void)PQcancel(hub->cancel, err, sizeof(err));
    }
    pthread_mutex_unlock(&hub->lock);
    pthread_join(hub->th, NULL);
    hub->running = false;
    if (hub->conn)
        PQfinish(hub->conn);
    hub->conn = NULL;
}

void events_hub_free(struct events_hub *hub)
{
    if (!hub)
        return;
    events_hub_stop(hub);
    while (hub->jobs) { /* none once the server stopped; kept tidy regardless */
        struct ev_job *j = hub->jobs;
        hub->jobs = j->next;
        free(j->json);
        free(j);
    }
    pthread_cond_destroy(&hub->cond);
    pthread_mutex_destroy(&hub->lock);
    free(hub);
}

int events_hub_clients(struct events_hub *hub)
{
    pthread_mutex_lock(&hub->lock);
    int n = hub->clients;
    pthread_mutex_unlock(&hub->lock);
    return n;
}

/* ---- GET /v1/jobs/{id}/events ---- */

/* Last-Event-ID "SEQ-VERSION" (as this file writes them); false if it is not. */
static bool parse_last_id(const char *v, uint64_t *seq, int64_t *version)
{
    if (!v || *v < '0' || *v > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long s = strtoull(v, &end, 10);
    if (errno || *end != '-' || end[1] < '0' || end[1] > '9')
        return false;
    long long ver = strtoll(end + 1, &end, 10);
    if (errno || *end || s > UINT64_MAX / 2)
        return false;
    *seq = s;
    *version = ver;
    return true;
}

static void too_many(struct events_hub *hub, struct http_req *req, struct http_resp *resp)
{
    http_resp_header(resp, "Retry-After", "5");
    http_problem(resp, req, 503, "too_many_streams", NULL,
                 "this server has %d event streams open, its limit; retry later or poll the job",
                 hub->o.max_clients);
}

void api_jobs_events(void *appv, struct http_req *req, struct http_resp *resp)
{
    struct app *app = appv;
    struct events_hub *hub = app->events;
    if (!hub || hub->o.max_clients == 0) {
        http_resp_header(resp, "Retry-After", "60");
        http_problem(resp, req, 503, "events_disabled", NULL,
                     "event streams are turned off on this server (--sse-max-clients=0)");
        return;
    }
    if (events_hub_clients(hub) >= hub->o.max_clients) {
        too_many(hub, req, resp);
        return;
    }
    /* the job must be the key's, as for GET /v1/jobs/{id} */
    PGconn *c = api_db_or_503(app, req, resp);
    if (!c)
        return;
    struct job_row row;
    char err[512];
    enum jobs_result r = jobs_get(c, req->key_id, req->params[0], &row, err, sizeof(err));
    db_pool_release(app->db, c);
    if (r == JOBS_NOT_FOUND) {
        http_problem(resp, req, 404, "job_not_found", NULL, "no job %.40s", req->params[0]);
        return;
    }
    if (r != JOBS_OK) {
        api_db_failed(req, resp, err);
        return;
    }
    struct ev_stream *s = calloc(1, sizeof(*s));
    if (!s) {
        http_problem(resp, req, 503, "out_of_memory", NULL, "the server is out of memory");
        return;
    }
    s->hub = hub;
    s->sent_version = -1;
    s->last_write_ms = mono_ms(); /* the first heartbeat after a silence, not at once */
    buf_init(&s->out, EVENT_MAX_BYTES + 256);
    uint64_t seq;
    int64_t ver;
    if (parse_last_id(http_req_header(req, "Last-Event-ID"), &seq, &ver)) {
        s->seq = seq;
        s->sent_version = ver;
    }
    /* take a place and the job's entry, then make the response */
    pthread_mutex_lock(&hub->lock);
    struct ev_job *j = hub->clients < hub->o.max_clients ? find_job(hub, row.id) : NULL;
    bool full = hub->clients >= hub->o.max_clients;
    if (!full && !j && (j = calloc(1, sizeof(*j)))) {
        memcpy(j->id, row.id, sizeof(j->id));
        j->key_id = req->key_id;
        j->version = -1;
        j->next = hub->jobs;
        hub->jobs = j;
    }
    if (j) {
        s->job = j;
        s->next = j->streams;
        j->streams = s;
        hub->clients++;
    }
    pthread_mutex_unlock(&hub->lock);
    if (!j) {
        buf_cleanup(&s->out);
        free(s);
        if (full)
            too_many(hub, req, resp);
        else
            http_problem(resp, req, 503, "out_of_memory", NULL, "the server is out of memory");
        return;
    }
    http_resp_header(resp, "Cache-Control", "no-cache");
    http_resp_header(resp, "X-Accel-Buffering", "no"); /* proxies: do not hold events back */
    struct http_stream *h =
        http_resp_stream_wait(resp, 200, "text/event-stream; charset=utf-8", ev_read, ev_done, s);
    pthread_mutex_lock(&hub->lock);
    if (h) {
        s->h = h;
        hub->kick = true; /* the first event goes out now, not at the next round */
        pthread_cond_signal(&hub->cond);
    } else {
        stream_unlink(hub, s);
    }
    pthread_mutex_unlock(&hub->lock);
    if (!h) {
        buf_cleanup(&s->out);
        free(s);
        resp->n_hdr = 0;
        http_problem(resp, req, 503, "out_of_memory", NULL, "the server is out of memory");
    }
}
