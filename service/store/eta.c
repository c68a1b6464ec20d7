/* eta.c: a job's estimated time to finish (see eta.h). */
#include "store/eta.h"

#include "store/db.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void jobs_eta_compute(const struct job_eta_inputs *in, double now, struct job_eta *out)
{
    memset(out, 0, sizeof(*out));
    out->chunks_per_second = -1;
    int64_t remaining = in->pending + in->in_flight;
    if (remaining <= 0 || in->started <= 0)
        return; /* finishing, or nothing claimed yet: no pace to go by */
    double d;
    if (in->done > 0) {
        d = in->done_s;
        out->source = "job";
        out->batches_observed = in->done;
    } else if (in->recent > 0) {
        d = in->recent_s;
        out->source = "recent_jobs";
        out->batches_observed = in->recent;
    } else {
        return; /* no batch has finished yet, here or in a recent job */
    }
    double t = 0;
    if (in->open > 0)
        t = in->newest_open + d - now;
    if (in->pending > 0) {
        double elapsed = now - in->started;
        if (in->claimed <= 0 || elapsed <= 0)
            return;
        double rate = (double)in->claimed / elapsed;
        double tp = (double)in->pending / rate + d;
        if (tp > t)
            t = tp;
        out->chunks_per_second = rate;
    }
    if (!(t >= 1)) /* an overdue batch counts as ending now (NaN too) */
        t = 1;
    if (t > 1e9)
        t = 1e9;
    out->known = true;
    out->seconds = (int64_t)ceil(t);
    out->batch_seconds = d;
    out->remaining_chunks = remaining;
    out->open_batches = in->open;
}

/* ---- the inputs, read once per version of the job's row ---- */

/* The job's row as far as the estimate's inputs go: every change to its
 * batches moves the row (see jobs.c), so equal versions mean equal inputs. */
struct eta_version {
    char state[32];
    char last_activity_at[40];
    int64_t counters[4];
};

struct eta_slot {
    char id[JOB_ID_LEN + 1];
    struct eta_version v;
    struct job_eta_inputs in;
    double clock_offset; /* the database's clock minus ours, when read */
};

#define ETA_SLOTS 256 /* a power of two */
static struct eta_slot eta_cache[ETA_SLOTS];
static pthread_mutex_t eta_lock = PTHREAD_MUTEX_INITIALIZER;

static void version_of(const struct job_row *j, struct eta_version *v)
{
    memset(v, 0, sizeof(*v));
    memcpy(v->state, j->state, sizeof(v->state));
    memcpy(v->last_activity_at, j->last_activity_at, sizeof(v->last_activity_at));
    v->counters[0] = j->chunks_pending;
    v->counters[1] = j->chunks_in_flight;
    v->counters[2] = j->chunks_succeeded;
    v->counters[3] = j->chunks_failed;
}

static struct eta_slot *slot_of(const char *id)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = id; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return &eta_cache[h & (ETA_SLOTS - 1)];
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double num(const PGresult *r, int col)
{
    return PQgetisnull(r, 0, col) ? 0 : strtod(PQgetvalue(r, 0, col), NULL);
}

/* The job's own batches: finished ones with their mean duration, open ones
 * with the newest claim; whether they go through the interactive API. */
static const struct db_stmt own_stmt = {
    "jobs_eta_own",
    "SELECT extract(epoch FROM now()), coalesce(extract(epoch FROM j.started_at), 0), b.done,"
    " b.done_s, b.open, b.newest_open, b.sync FROM jobs j CROSS JOIN LATERAL ("
    "  SELECT count(*) FILTER (WHERE state = 'succeeded') AS done,"
    "   avg(extract(epoch FROM finished_at - created_at)) FILTER (WHERE state = 'succeeded')"
    "     AS done_s,"
    "   count(*) FILTER (WHERE state IN ('intent', 'submitted')) AS open,"
    "   extract(epoch FROM max(created_at) FILTER (WHERE state IN ('intent', 'submitted')))"
    "     AS newest_open,"
    "   coalesce(bool_or(transport = 'sync'), false) AS sync"
    "  FROM batches WHERE job_id = j.id) b"
    " WHERE j.id = $1 AND j.api_key_id = $2",
    2};

/* Succeeded batches of the key's ten latest other jobs of the model that went
 * the same way (interactive or batch), their latest twenty each. */
static const struct db_stmt recent_stmt = {
    "jobs_eta_recent",
    "SELECT count(*), avg(extract(epoch FROM b.finished_at - b.created_at)) FROM ("
    "  SELECT id FROM jobs WHERE api_key_id = $1 AND model = $2 AND id <> $3"
    "  ORDER BY created_at DESC LIMIT 10) j CROSS JOIN LATERAL ("
    "  SELECT finished_at, created_at FROM batches WHERE job_id = j.id AND state = 'succeeded'"
    "   AND (transport = 'sync') = $4::boolean ORDER BY id DESC LIMIT 20) b",
    4};

static bool read_inputs(PGconn *c, int64_t key_id, const struct job_row *j,
                        struct job_eta_inputs *in, double *offset, char *err, size_t errlen)
{
    char key[24];
    snprintf(key, sizeof(key), "%lld", (long long)key_id);
    const char *v[2] = {j->id, key};
    double before = wall_now();
    PGresult *r = db_exec_stmt(c, &own_stmt, v, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        db_error(r, c, "could not read the job's batches", err, errlen);
        PQclear(r);
        return false;
    }
    *offset = num(r, 0) - (before + wall_now()) / 2;
    in->started = num(r, 1);
    in->done = (int64_t)num(r, 2);
    in->done_s = num(r, 3);
    in->open = (int64_t)num(r, 4);
    in->newest_open = num(r, 5);
    bool sync = PQgetvalue(r, 0, 6)[0] == 't';
    PQclear(r);
    if (in->done > 0 || in->started <= 0)
        return true;
    const char *v2[4] = {key, j->model, j->id, sync ? "true" : "false"};
    r = db_exec_stmt(c, &recent_stmt, v2, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        db_error(r, c, "could not read recent jobs' batches", err, errlen);
        PQclear(r);
        return false;
    }
    in->recent = (int64_t)num(r, 0);
    in->recent_s = num(r, 1);
    PQclear(r);
    return true;
}

bool jobs_eta(PGconn *c, int64_t key_id, const struct job_row *j, struct job_eta *out, char *err,
              size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (strcmp(j->state, "pending") != 0 && strcmp(j->state, "running") != 0)
        return true;
    if (j->chunks_pending + j->chunks_in_flight <= 0 || !j->started_at[0])
        return true;
    struct eta_version v;
    version_of(j, &v);
    struct eta_slot *s = slot_of(j->id), got;
    pthread_mutex_lock(&eta_lock);
    bool hit = strcmp(s->id, j->id) == 0 && memcmp(&s->v, &v, sizeof(v)) == 0;
    if (hit)
        got = *s;
    pthread_mutex_unlock(&eta_lock);
    if (!hit) {
        memset(&got, 0, sizeof(got));
        if (!read_inputs(c, key_id, j, &got.in, &got.clock_offset, err, errlen))
            return false;
        memcpy(got.id, j->id, sizeof(got.id));
        got.v = v;
        pthread_mutex_lock(&eta_lock);
        *s = got;
        pthread_mutex_unlock(&eta_lock);
    }
    got.in.pending = j->chunks_pending;
    got.in.in_flight = j->chunks_in_flight;
    got.in.claimed = j->chunks_total - j->chunks_reused - j->chunks_pending;
    jobs_eta_compute(&got.in, wall_now() + got.clock_offset, out);
    return true;
}
