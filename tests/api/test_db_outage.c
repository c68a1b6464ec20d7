/*
 * test_db_outage.c: PostgreSQL stopped mid-job and started again. Meanwhile
 * calls that need the database answer 503 problem+json with Retry-After,
 * /readyz says not ready, /healthz stays up, nothing crashes; afterwards the
 * job finishes without intervention. Uses a private cluster (scripts/pg.sh).
 */
#include "harness.h"
#include "svch.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct simh sim;
static struct svch svc;
static char pgdir[64];

static void pg(const char *cmd)
{
    const char *src = getenv("EMBEDD_SOURCE_DIR");
    cr_assert(src && *src, "EMBEDD_SOURCE_DIR is not set (run through ctest)");
    char line[512];
    snprintf(line, sizeof(line), "bash %s/scripts/pg.sh %s %s >/dev/null 2>&1", src, cmd, pgdir);
    cr_assert_eq(system(line), 0, "pg.sh %s failed", cmd);
}

static void setup(void)
{
    snprintf(pgdir, sizeof(pgdir), "/tmp/embedd-outage-XXXXXX");
    cr_assert(mkdtemp(pgdir));
    pg("start");
    char url[256], cmd[512];
    snprintf(cmd, sizeof(cmd), "bash %s/scripts/pg.sh url %s", getenv("EMBEDD_SOURCE_DIR"), pgdir);
    FILE *p = popen(cmd, "r");
    cr_assert(p && fgets(url, sizeof(url), p));
    pclose(p);
    url[strcspn(url, "\n")] = '\0';
    setenv("EMBEDD_TEST_DATABASE_URL", url, 1); /* svch makes its database here */
    static const char *const sf[] = {"--pending-ms=10", "--running-ms=1500", NULL};
    simh_start(&sim, sf);
    static char f1[256], f2[64];
    snprintf(f1, sizeof(f1), "--gemini-base-url=%s", sim.base);
    snprintf(f2, sizeof(f2), "--gemini-api-key=%s", SIMH_KEY);
    const char *const flags[] = {
        f1, f2, "--poll-min-ms=50", "--poll-max-ms=200", "--sync-max-texts=0", "--workers=2", NULL};
    svch_start(&svc, flags);
}

static void teardown(void)
{
    svch_stop(&svc);
    simh_stop(&sim);
    pg("stop");
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", pgdir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(outage, .init = setup, .fini = teardown, .timeout = 300);

/* The end of embedd's log, for a failure's report. */
static void dump_log_tail(void)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/log", svc.dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    static char buf[8192];
    if (fseek(f, 0, SEEK_END) == 0) {
        long end = ftell(f);
        if (end > (long)sizeof(buf) - 1)
            (void)fseek(f, end - (long)sizeof(buf) + 1, SEEK_SET);
        else
            rewind(f);
    }
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    fprintf(stderr, "embedd log (end):\n%s\n", buf);
}

static void call(struct simh_resp *r, const char *method, const char *path, const char *body)
{
    char url[256], auth[128];
    snprintf(url, sizeof(url), "%s%s", svc.base, path);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", svc.key);
    const char *hs[3] = {auth, "Content-Type: application/json", NULL};
    simh_req_url(r, method, url, body, body ? strlen(body) : 0, hs);
    cr_assert_eq(r->curl_code, 0, "%s %s: the server must answer", method, path);
}

Test(outage, database_down_then_back)
{
    const char *body = "{\"documents\":[{\"id\":\"a\",\"text\":\"one\"},{\"id\":\"b\",\"text\":"
                       "\"two\"}],\"output_dimensionality\":128}";
    struct simh_resp r;
    call(&r, "POST", "/v1/jobs", body);
    cr_assert_eq(r.status, 202, "%s", r.body);
    json_object *o = simh_json(&r);
    char id[64], path[128];
    snprintf(id, sizeof(id), "%s", simh_str(o, "id"));
    json_object_put(o);
    simh_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/jobs/%s", id);

    pg("stop");
    call(&r, "GET", path, NULL);
    cr_assert_eq(r.status, 503, "%ld: %s", r.status, r.body);
    char v[64];
    cr_assert(simh_header(&r, "Retry-After", v, sizeof(v)));
    cr_assert(simh_header(&r, "Content-Type", v, sizeof(v)));
    cr_assert_str_eq(v, "application/problem+json");
    simh_resp_free(&r);
    call(&r, "POST", "/v1/jobs", body);
    cr_assert_eq(r.status, 503, "no job can be stored without the database");
    simh_resp_free(&r);
    call(&r, "GET", "/readyz", NULL);
    cr_assert_eq(r.status, 503);
    simh_resp_free(&r);
    call(&r, "GET", "/healthz", NULL);
    cr_assert_eq(r.status, 200, "the process is alive");
    simh_resp_free(&r);
    struct timespec ts = {2, 0}; /* let the workers run into the outage */
    nanosleep(&ts, NULL);

    pg("start");
    /* seconds normally; generous for a loaded machine (the lease is 120 s) */
    int64_t deadline = simh_ms() + 150000;
    for (;;) {
        call(&r, "GET", path, NULL);
        bool done = r.status == 200 && strstr(r.body, "\"state\":\"succeeded\"");
        if (!done && simh_ms() >= deadline) {
            fprintf(stderr, "last answer: %ld %s\n", r.status, r.body);
            dump_log_tail();
        }
        simh_resp_free(&r);
        if (done)
            break;
        cr_assert(simh_ms() < deadline, "the job did not finish after the database came back");
        struct timespec t = {0, 50 * 1000000L};
        nanosleep(&t, NULL);
    }
    call(&r, "GET", "/readyz", NULL);
    cr_assert_eq(r.status, 200);
    simh_resp_free(&r);
    cr_assert_eq(simh_stat(&sim, "texts_duplicate"), 0, "nothing sent twice across the outage");
}
