/* test_spool_dir.c: with an unusable --spool-dir, JSON bodies whose options come first are
 * still stored (straight into the database), and those whose options come last get 503. */
#include "harness.h"
#include "svch.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

static void post(struct svch *s, struct simh_resp *r, const char *body, size_t len)
{
    char url[256], auth[128];
    snprintf(url, sizeof(url), "%s/v1/jobs", s->base);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", s->key);
    const char *hs[] = {auth, "Content-Type: application/json", NULL};
    simh_req_url(r, "POST", url, body, len, hs);
    cr_assert_eq(r->curl_code, 0, "POST /v1/jobs: transfer failed");
}

static struct svch nospool;

static void start_nospool(void)
{
    static const char *const flags[] = {"--spool-dir=/nonexistent/embedd-spool", "--workers=1",
                                        NULL};
    svch_start(&nospool, flags);
}

static void stop_nospool(void)
{
    svch_stop(&nospool);
}

TestSuite(json_ingest_nospool, .init = start_nospool, .fini = stop_nospool, .timeout = 120);

Test(json_ingest_nospool, options_first_need_no_spool)
{
    static const char first[] = "{\"priority\":1,\"documents\":[{\"id\":\"a\",\"text\":\"t\"}]}";
    static const char after[] = "{\"documents\":[{\"id\":\"a\",\"text\":\"t\"}],\"priority\":1}";
    struct simh_resp r;
    post(&nospool, &r, first, strlen(first));
    cr_assert_eq(r.status, 202, "%ld: %s", r.status, r.body);
    simh_resp_free(&r);
    post(&nospool, &r, after, strlen(after));
    cr_assert_eq(r.status, 503, "%ld: %s", r.status, r.body);
    cr_assert(strstr(r.body, "\"spool_unavailable\""), "%s", r.body);
    simh_resp_free(&r);
    cr_assert_eq(dbh_scalar(&nospool.db, "SELECT count(*) FROM jobs"), 1);
}
