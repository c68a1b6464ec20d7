/* health.c: GET /healthz and GET /readyz. */
#include "api.h"

#include "store/migrate.h"

#include <stdio.h>

void api_healthz(void *app, struct http_req *req, struct http_resp *resp)
{
    (void)app;
    (void)req;
    http_resp_json(resp, 200, "{\"status\":\"ok\"}");
}

void api_readyz(void *appv, struct http_req *req, struct http_resp *resp)
{
    struct app *app = appv;
    char err[512];
    http_resp_header(resp, "Cache-Control", "no-store");
    if (atomic_load(&app->stopping)) {
        http_problem(resp, req, 503, "shutting_down", NULL,
                     "this instance is shutting down; others take its work");
        return;
    }
    PGconn *c = db_pool_acquire(app->db, app->db_timeout_ms, err, sizeof(err));
    if (!c) {
        http_resp_header(resp, "Retry-After", "5");
        http_problem(resp, req, 503, "database_unavailable", NULL, "the database is unreachable");
        return;
    }
    int version = 0;
    bool ok = migrate_version(c, &version, err, sizeof(err));
    db_pool_release(app->db, c);
    if (!ok) {
        http_resp_header(resp, "Retry-After", "5");
        http_problem(resp, req, 503, "database_unavailable", NULL,
                     "the schema version could not be read");
        return;
    }
    if (version < migrate_latest()) {
        http_resp_header(resp, "Retry-After", "5");
        http_problem(resp, req, 503, "migrations_pending", NULL,
                     "the database schema is at version %d, this build needs %d", version,
                     migrate_latest());
        return;
    }
    char body[128];
    snprintf(body, sizeof(body), "{\"status\":\"ready\",\"schema_version\":%d}", version);
    http_resp_json(resp, 200, body);
}
