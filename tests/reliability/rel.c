/* rel.c: shared pieces of the reliability suite (see rel.h). */
#include "rel.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool rel_full(void)
{
    const char *s = getenv("EMBEDD_REL_SCALE");
    return s && strcmp(s, "full") == 0;
}

int rel_pick(int ci, int full)
{
    return rel_full() ? full : ci;
}

void rel_report(const char *scenario, const char *checked, const char *result,
                const char *figures_json)
{
    const char *path = getenv("EMBEDD_REL_REPORT");
    if (!path || !*path)
        return;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "scenario", json_object_new_string(scenario));
    json_object_object_add(o, "checked", json_object_new_string(checked));
    json_object_object_add(o, "result", json_object_new_string(result));
    json_object_object_add(o, "scale", json_object_new_string(rel_full() ? "full" : "ci"));
    json_object *f = figures_json ? json_tokener_parse(figures_json) : NULL;
    json_object_object_add(o, "figures", f ? f : json_object_new_object());
    FILE *out = fopen(path, "a");
    cr_assert(out, "cannot append to %s", path);
    fprintf(out, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    fclose(out);
    json_object_put(o);
}

long rel_rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kib;
}

/* ---- scenario cluster ---- */

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

void rel_pg(struct rel *r, const char *cmd)
{
    const char *src = getenv("EMBEDD_SOURCE_DIR");
    cr_assert(src && *src, "EMBEDD_SOURCE_DIR is not set (run through ctest)");
    char line[512];
    snprintf(line, sizeof(line), "bash %s/scripts/pg.sh %s %s >/dev/null 2>&1", src, cmd, r->pgdir);
    cr_assert_eq(system(line), 0, "pg.sh %s failed", cmd);
}

static void private_pg(struct rel *r)
{
    snprintf(r->pgdir, sizeof(r->pgdir), "/tmp/embedd-rel-pg-XXXXXX");
    cr_assert(mkdtemp(r->pgdir));
    rel_pg(r, "start");
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "bash %s/scripts/pg.sh url %s", getenv("EMBEDD_SOURCE_DIR"),
             r->pgdir);
    FILE *p = popen(cmd, "r");
    cr_assert(p && fgets(r->pgurl, sizeof(r->pgurl), p));
    pclose(p);
    r->pgurl[strcspn(r->pgurl, "\n")] = '\0';
    setenv("EMBEDD_TEST_DATABASE_URL", r->pgurl, 1); /* dbh makes its database there */
}

void rel_spawn(struct rel *r, int i)
{
    struct rel_node *nd = &r->node[i];
    char log[128], pf[128], pfflag[160];
    snprintf(log, sizeof(log), "%s/log-%d", r->dir, i);
    snprintf(pf, sizeof(pf), "%s/port-%d", r->dir, i);
    snprintf(pfflag, sizeof(pfflag), "--port-file=%s", pf);
    char *argv[50];
    int n = 0;
    while (r->argv[n]) {
        argv[n] = r->argv[n];
        n++;
    }
    /* the node's sessions carry its name (rel_kill9 waits for them to end) */
    snprintf(nd->db_arg, sizeof(nd->db_arg), "--database-url=%s?application_name=embedd-rel-%d",
             r->db.url, i);
    argv[1] = nd->db_arg;
    /* "serve" is last: the port file goes before it */
    argv[n] = argv[n - 1];
    argv[n - 1] = pfflag;
    argv[n + 1] = NULL;
    char what[32];
    snprintf(what, sizeof(what), "embedd serve %d", i);
    nd->starts++;
    nd->pid = simh_spawn(argv, log, false, true, pf, 30000, what, &nd->port);
    snprintf(nd->base, sizeof(nd->base), "http://127.0.0.1:%d", nd->port);
}

void rel_start(struct rel *r, int n, bool priv, const char *const *sim_flags,
               const char *const *svc_flags)
{
    memset(r, 0, sizeof(*r));
    cr_assert(n >= 1 && n <= REL_MAX_NODES);
    r->n = n;
    if (priv)
        private_pg(r);
    dbh_create(&r->db);
    simh_start(&r->sim, sim_flags);
    snprintf(r->dir, sizeof(r->dir), "/tmp/embedd-rel-XXXXXX");
    cr_assert(mkdtemp(r->dir));
    static char args[48][600];
    int k = 0;
    snprintf(args[k], sizeof(args[k]), "%s", dbh_bin("EMBEDD_BIN"));
    r->argv[k] = args[k], k++;
    snprintf(args[k], sizeof(args[k]), "--database-url=%s", r->db.url);
    r->argv[k] = args[k], k++;
    snprintf(args[k], sizeof(args[k]), "--listen=127.0.0.1:0");
    r->argv[k] = args[k], k++;
    snprintf(args[k], sizeof(args[k]), "--gemini-base-url=%s", r->sim.base);
    r->argv[k] = args[k], k++;
    snprintf(args[k], sizeof(args[k]), "--gemini-api-key=%s", SIMH_KEY);
    r->argv[k] = args[k], k++;
    for (int i = 0; svc_flags && svc_flags[i] && k < 45; i++) {
        snprintf(args[k], sizeof(args[k]), "%s", svc_flags[i]);
        r->argv[k] = args[k], k++;
    }
    snprintf(args[k], sizeof(args[k]), "serve");
    r->argv[k] = args[k], k++;
    r->argv[k] = NULL;
    for (int i = 0; i < n; i++)
        rel_spawn(r, i);
    /* the key comes from the CLI, like an operator would make it */
    char url[600];
    snprintf(url, sizeof(url), "--database-url=%s", r->db.url);
    char *argv[] = {dbh_bin("EMBEDD_BIN"), url, "keys", "create", "--name", "rel", NULL};
    char *o = NULL, *e = NULL;
    int rc = dbh_run(argv, &o, &e);
    cr_assert_eq(rc, 0, "keys create failed: %s", e);
    snprintf(r->key, sizeof(r->key), "%.*s", (int)strcspn(o, "\n"), o);
    free(o);
    free(e);
}

void rel_kill9(struct rel *r, int i)
{
    struct rel_node *nd = &r->node[i];
    if (!nd->pid)
        return;
    kill(nd->pid, SIGKILL);
    waitpid(nd->pid, NULL, 0);
    nd->pid = 0;
    r->kills++;
    /* A backend ends when it reads the closed connection, after the command
     * it was given (a COMMIT, a long statement) has run to its end. */
    char name[32];
    snprintf(name, sizeof(name), "embedd-rel-%d", i);
    const char *v[1] = {name};
    int64_t deadline = simh_ms() + 60000;
    for (;;) {
        PGresult *q = PQexecParams(r->db.conn,
                                   "SELECT count(*) FROM pg_stat_activity"
                                   " WHERE application_name = $1",
                                   1, NULL, v, NULL, NULL, 0);
        bool ok = PQresultStatus(q) == PGRES_TUPLES_OK;
        long left = ok ? strtol(PQgetvalue(q, 0, 0), NULL, 10) : 0;
        PQclear(q);
        if (!ok) /* PostgreSQL is down (test_db_loss): nothing can commit */
            break;
        if (left == 0)
            break;
        cr_assert_lt(simh_ms(), deadline, "node %d's %ld PostgreSQL session(s) outlived it by 60 s",
                     i, left);
        nap_ms(5);
    }
}

int rel_term(struct rel *r, int i, int wait_ms, int64_t *took_ms)
{
    struct rel_node *nd = &r->node[i];
    if (!nd->pid)
        return 0;
    int64_t t0 = simh_ms();
    kill(nd->pid, SIGTERM);
    int st = 0;
    pid_t w = 0;
    while ((w = waitpid(nd->pid, &st, WNOHANG)) == 0 && simh_ms() - t0 < wait_ms)
        nap_ms(5);
    if (took_ms)
        *took_ms = simh_ms() - t0;
    if (w == 0) {
        kill(nd->pid, SIGKILL);
        waitpid(nd->pid, &st, 0);
        nd->pid = 0;
        return -1;
    }
    nd->pid = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static char *read_log(struct rel *r, int i)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/log-%d", r->dir, i);
    FILE *f = fopen(path, "r");
    if (!f)
        return strdup("");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    size_t got = fread(b, 1, (size_t)n, f);
    b[got] = '\0';
    fclose(f);
    return b;
}

int rel_log_count(struct rel *r, int i, const char *needle)
{
    char *b = read_log(r, i);
    int n = 0;
    for (const char *p = b; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    free(b);
    return n;
}

void rel_stop(struct rel *r)
{
    bool clean = true, leak = false, bad = false;
    for (int i = 0; i < r->n; i++) {
        int st = rel_term(r, i, 30000, NULL);
        if (st != 0) {
            fprintf(stderr, "embedd serve %d: exit status %d on SIGTERM\n", i, st);
            clean = false;
        }
        char *b = read_log(r, i);
        if (strstr(b, "Sanitizer") || strstr(b, "runtime error:")) {
            fprintf(stderr, "embedd serve %d log:\n%s\n", i, b);
            bad = true;
        }
        if ((r->key[0] && strstr(b, r->key + 3)) || strstr(b, SIMH_KEY))
            leak = true;
        free(b);
        char path[128];
        snprintf(path, sizeof(path), "%s/log-%d", r->dir, i);
        if (getenv("SVCH_KEEP_LOG"))
            fprintf(stderr, "embedd log kept in %s\n", path);
        else
            unlink(path);
        snprintf(path, sizeof(path), "%s/port-%d", r->dir, i);
        unlink(path);
    }
    if (!getenv("SVCH_KEEP_LOG"))
        rmdir(r->dir);
    simh_stop(&r->sim);
    dbh_drop(&r->db);
    if (r->pgdir[0]) {
        rel_pg(r, "stop");
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", r->pgdir);
        cr_assert_eq(system(cmd), 0);
    }
    cr_assert(!bad, "embedd serve reported a sanitizer error");
    cr_assert(!leak, "a secret appeared in embedd's log");
    cr_assert(clean, "embedd serve did not exit 0 on SIGTERM");
}

void rel_call(struct rel *r, int i, const char *method, const char *path, const char *body,
              struct simh_resp *out)
{
    char url[512], auth[128];
    snprintf(url, sizeof(url), "%s%s", r->node[i].base, path);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", r->key);
    const char *hs[3] = {auth, "Content-Type: application/json", NULL};
    simh_req_url(out, method, url, body, body ? strlen(body) : 0, hs);
}

json_object *rel_api(struct rel *r, int i, const char *method, const char *path, const char *body,
                     long want, long *status)
{
    struct simh_resp resp;
    rel_call(r, i, method, path, body, &resp);
    if (status)
        *status = resp.curl_code ? 0 : resp.status;
    json_object *o = NULL;
    if (want > 0) {
        cr_assert_eq(resp.curl_code, 0, "%s %s: transfer failed", method, path);
        cr_assert_eq(resp.status, want, "%s %s: %ld: %.300s", method, path, resp.status, resp.body);
        o = simh_json(&resp);
    }
    simh_resp_free(&resp);
    return o;
}

char *rel_submit(struct rel *r, int i, const char *body)
{
    json_object *o = rel_api(r, i, "POST", "/v1/jobs", body, 202, NULL);
    char *id = strdup(simh_str(o, "id"));
    json_object_put(o);
    return id;
}

static const char *const words[] = {
    "river",   "stone",  "market", "window",  "harbor",  "signal",  "garden", "ledger",
    "orbit",   "canvas", "thread", "meadow",  "copper",  "lantern", "summit", "beacon",
    "quartz",  "valley", "engine", "morning", "pattern", "silver",  "timber", "vessel",
    "whisper", "yellow", "zephyr", "archive", "bridge",  "cinder",  "delta",  "ember"};

char *rel_job_body(int docs, int sentences, unsigned seed, const char *extra)
{
    size_t cap = (size_t)docs * ((size_t)sentences * 120 + 64) + strlen(extra) + 64;
    char *b = malloc(cap);
    size_t len = (size_t)snprintf(b, cap, "{%s\"documents\":[", extra);
    uint64_t x = seed * 2654435761u + 1;
    for (int d = 0; d < docs; d++) {
        len +=
            (size_t)snprintf(b + len, cap - len, "%s{\"id\":\"d%d\",\"text\":\"", d ? "," : "", d);
        for (int s = 0; s < sentences; s++) {
            /* the tag makes every sentence (and so every chunk) unique */
            len += (size_t)snprintf(b + len, cap - len, "S%u-%d-%d", seed, d, s);
            for (int w = 0; w < 8; w++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                len += (size_t)snprintf(b + len, cap - len, " %s",
                                        words[x % (sizeof(words) / sizeof(words[0]))]);
            }
            len += (size_t)snprintf(b + len, cap - len, ". ");
        }
        len += (size_t)snprintf(b + len, cap - len, "\"}");
    }
    snprintf(b + len, cap - len, "]}");
    return b;
}

void rel_wait_terminal(struct rel *r, int timeout_ms)
{
    int64_t deadline = simh_ms() + timeout_ms;
    for (;;) {
        long open = dbh_scalar(&r->db, "SELECT count(*) FROM jobs WHERE state IN ('pending',"
                                       " 'running')");
        if (open == 0)
            return;
        cr_assert(simh_ms() < deadline, "%ld job(s) not terminal after %d ms", open, timeout_ms);
        nap_ms(50);
    }
}

/* Is some batch SUCCEEDED at Google but not yet stored by embedd? */
static bool store_imminent(struct rel *r)
{
    json_object *o = simh_call(&r->sim, "GET", "/v1beta/batches?pageSize=100", NULL, 200);
    json_object *ops = simh_get(o, "operations");
    bool yes = false;
    for (size_t i = 0; ops && !yes && i < json_object_array_length(ops); i++) {
        json_object *op = json_object_array_get_idx(ops, i);
        const char *st = simh_str(op, "metadata.state");
        const char *name = simh_str(op, "name");
        if (!st || strcmp(st, "BATCH_STATE_SUCCEEDED") != 0 || !name)
            continue;
        const char *v[1] = {name};
        PGresult *q = PQexecParams(r->db.conn,
                                   "SELECT count(*) FROM batches WHERE gemini_name = $1"
                                   " AND state = 'submitted'",
                                   1, NULL, v, NULL, NULL, 0);
        yes = PQresultStatus(q) == PGRES_TUPLES_OK && strtol(PQgetvalue(q, 0, 0), NULL, 10) > 0;
        PQclear(q);
    }
    json_object_put(o);
    return yes;
}

static bool all_terminal(struct rel *r)
{
    return dbh_scalar(&r->db, "SELECT count(*) FROM jobs WHERE state IN ('pending','running')") ==
           0;
}

bool rel_wait_phase(struct rel *r, const char *phase)
{
    int64_t deadline = simh_ms() + 30000;
    while (simh_ms() < deadline) {
        if (all_terminal(r))
            return false;
        bool hit = false;
        if (strcmp(phase, "intent") == 0)
            hit = dbh_scalar(&r->db, "SELECT count(*) FROM batches WHERE state = 'intent'"
                                     " AND lease_owner IS NOT NULL") > 0;
        else if (strcmp(phase, "poll") == 0)
            hit = dbh_scalar(&r->db, "SELECT count(*) FROM batches WHERE state = 'submitted'") > 0;
        else if (strcmp(phase, "upload") == 0) /* its JSONL written, being uploaded */
            hit = dbh_scalar(&r->db, "SELECT count(*) FROM batches WHERE state = 'intent'"
                                     " AND transport = 'file' AND input_file IS NULL"
                                     " AND lease_until > now()") > 0 &&
                  simh_stat(&r->sim, "uploads_started") > simh_stat(&r->sim, "uploads_finalized");
        else if (strcmp(phase, "create") == 0) /* uploaded and recorded, being created */
            hit = dbh_scalar(&r->db, "SELECT count(*) FROM batches WHERE state = 'intent'"
                                     " AND input_file IS NOT NULL AND lease_until > now()") > 0;
        else /* "store", "download": succeeded at Google, not stored yet */
            hit = store_imminent(r);
        if (hit)
            return true;
        nap_ms(2);
    }
    return false;
}

static void expected_vector(const char *model, const char *task, const char *text, size_t len,
                            int dims, bool normalize, float *out)
{
    simh_expected_vector(model, 3072, task, text, len, dims, out);
    if (!normalize || dims == 3072)
        return;
    double s = 0;
    for (int i = 0; i < dims; i++)
        s += (double)out[i] * (double)out[i];
    double n = sqrt(s);
    for (int i = 0; i < dims; i++)
        out[i] = (float)((double)out[i] / n);
}

static float le_float(const unsigned char *p)
{
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* One job: states, stats, vectors. */
static void audit_job(struct rel *r, json_object *job, struct rel_audit *a)
{
    const char *id = simh_str(job, "id");
    const char *state = simh_str(job, "state");
    cr_assert(strcmp(state, "pending") && strcmp(state, "running"), "job %s is %s", id, state);
    json_object *c = simh_get(job, "stats.chunks");
    long total = json_object_get_int64(simh_get(c, "total"));
    long ok = json_object_get_int64(simh_get(c, "succeeded"));
    long bad = json_object_get_int64(simh_get(c, "failed"));
    cr_assert_eq(json_object_get_int64(simh_get(c, "pending")), 0, "job %s", id);
    cr_assert_eq(json_object_get_int64(simh_get(c, "in_flight")), 0, "job %s", id);
    cr_assert_eq(ok + bad, total, "job %s: stats add up", id);
    if (strcmp(state, "cancelled") != 0) {
        const char *want = bad == 0 ? "succeeded" : ok == 0 ? "failed" : "completed_with_errors";
        cr_assert_str_eq(state, want, "job %s: state follows its chunks", id);
    }
    a->jobs++;
    a->chunks += total;
    a->succeeded += ok;
    a->failed += bad;
    a->google_batches += json_object_get_int64(simh_get(job, "stats.google.batches_created"));
    a->texts_sent += json_object_get_int64(simh_get(job, "stats.google.texts_sent"));
    int dims = json_object_get_int(simh_get(job, "settings.output_dimensionality"));
    bool normalize = json_object_get_boolean(simh_get(job, "settings.normalize"));
    const char *model = simh_str(job, "settings.model");
    const char *task = simh_str(job, "settings.task_type");
    cr_assert(dims > 0 && model && task, "job %s representation", id);
    /* the chunks themselves, in binary so that vectors come as raw bytes, a
     * page at a time (a job of a million chunks is gigabytes) */
    float *exp = malloc(sizeof(float) * 3072);
    long n_ok = 0, n_bad = 0, rows = 0;
    for (int32_t after = -1;;) {
        char from[16];
        snprintf(from, sizeof(from), "%d", after);
        const char *v[2] = {id, from};
        PGresult *res =
            PQexecParams(r->db.conn,
                         "SELECT seq, state::text, text, embedding, error FROM chunks"
                         " WHERE job_id = $1 AND seq > $2::int ORDER BY seq LIMIT 20000",
                         2, NULL, v, NULL, NULL, 1);
        cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s", PQerrorMessage(r->db.conn));
        int n = PQntuples(res);
        for (int i = 0; i < n; i++) {
            const unsigned char *sq = (const unsigned char *)PQgetvalue(res, i, 0);
            after = (int32_t)((uint32_t)sq[0] << 24 | (uint32_t)sq[1] << 16 | (uint32_t)sq[2] << 8 |
                              (uint32_t)sq[3]);
            int st = (int)strtol(PQgetvalue(res, i, 1), NULL,
                                 10); /* text column in binary format: raw text */
            if (st == 3) {
                cr_assert(!PQgetisnull(res, i, 4), "job %s chunk %d failed without a reason", id,
                          after);
                cr_assert(PQgetisnull(res, i, 3), "a failed chunk has no vector");
                n_bad++;
                continue;
            }
            cr_assert_eq(st, 2, "job %s chunk %d is in state %d", id, after, st);
            cr_assert(!PQgetisnull(res, i, 3), "job %s chunk %d succeeded without a vector", id,
                      after);
            cr_assert_eq(PQgetlength(res, i, 3), dims * 4, "job %s chunk %d: vector length", id,
                         after);
            expected_vector(model, task, PQgetvalue(res, i, 2), (size_t)PQgetlength(res, i, 2),
                            dims, normalize, exp);
            const unsigned char *e = (const unsigned char *)PQgetvalue(res, i, 3);
            for (int k = 0; k < dims; k++) {
                float got = le_float(e + 4 * k);
                if (memcmp(&got, &exp[k], 4) != 0)
                    cr_assert_fail("job %s chunk %d dim %d: stored %.9g, simulator's %.9g", id,
                                   after, k, (double)got, (double)exp[k]);
            }
            n_ok++;
            a->vectors_checked++;
        }
        PQclear(res);
        rows += n;
        if (n < 20000)
            break;
    }
    free(exp);
    cr_assert_eq(rows, total, "job %s: chunk rows match the total", id);
    cr_assert_eq(n_ok, ok, "job %s: succeeded chunks match its stats", id);
    cr_assert_eq(n_bad, bad, "job %s: failed chunks match its stats", id);
}

void rel_audit(struct rel *r, bool allow_resend, struct rel_audit *a)
{
    memset(a, 0, sizeof(*a));
    /* every job through the API, as a user would see it */
    PGresult *ids = PQexec(r->db.conn, "SELECT id::text FROM jobs ORDER BY created_at");
    cr_assert_eq(PQresultStatus(ids), PGRES_TUPLES_OK);
    for (int i = 0; i < PQntuples(ids); i++) {
        char path[96];
        snprintf(path, sizeof(path), "/v1/jobs/%s", PQgetvalue(ids, i, 0));
        int node = 0;
        while (node < r->n - 1 && !r->node[node].pid)
            node++;
        json_object *job = rel_api(r, node, "GET", path, NULL, 200, NULL);
        audit_job(r, job, a);
        json_object_put(job);
    }
    PQclear(ids);
    cr_assert_eq(dbh_scalar(&r->db, "SELECT count(*) FROM batches WHERE state IN ('intent',"
                                    " 'submitted')"),
                 0, "no batch left open");
    cr_assert_eq(dbh_scalar(&r->db, "SELECT count(*) FROM batches WHERE lease_owner IS NOT NULL"
                                    " OR lease_until IS NOT NULL"),
                 0, "no lease left held");
    cr_assert_eq(dbh_scalar(&r->db, "SELECT count(*) FROM chunks WHERE state IN (0, 1)"), 0,
                 "no chunk left pending or in flight");
    a->sim_creates = simh_stat(&r->sim, "creates_accepted");
    a->sim_texts = simh_stat(&r->sim, "texts_received");
    a->sim_unique = simh_stat(&r->sim, "texts_unique");
    a->sim_duplicates = simh_stat(&r->sim, "texts_duplicate");
    a->sim_sync_texts = simh_stat(&r->sim, "sync_texts");
    /* every batch Google accepted is one we know of (none paid behind our back) */
    cr_assert_eq(a->sim_creates, a->google_batches,
                 "Google accepted %ld batches, our database knows %ld", a->sim_creates,
                 a->google_batches);
    cr_assert_eq(a->sim_texts + a->sim_sync_texts, a->texts_sent,
                 "Google embedded %ld texts, the jobs' stats say %ld",
                 a->sim_texts + a->sim_sync_texts, a->texts_sent);
    a->resent = a->texts_sent - a->sim_sync_texts - a->sim_unique;
    cr_assert_eq(a->resent, a->sim_duplicates,
                 "resubmissions in the stats (%ld) match the texts Google saw twice (%ld)",
                 a->resent, a->sim_duplicates);
    if (!allow_resend)
        cr_assert_eq(a->sim_duplicates, 0, "no text was paid for twice");
}

void rel_audit_json(const struct rel_audit *a, char *out, size_t n)
{
    snprintf(out, n,
             "\"jobs\":%ld,\"chunks\":%ld,\"succeeded\":%ld,\"failed\":%ld,"
             "\"vectors_checked\":%ld,\"google_batches\":%ld,\"texts_sent\":%ld,"
             "\"texts_resent\":%ld,\"lost\":0",
             a->jobs, a->chunks, a->succeeded, a->failed, a->vectors_checked, a->google_batches,
             a->texts_sent, a->resent);
}
