/* migrate.c: apply the compiled-in migrations under an advisory lock. */
#include "store/migrate.h"

#include "store/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Any constant works; it only has to be the same for every replica. */
#define MIGRATE_LOCK_KEY "7262646d69677261" /* "rbdmigra" */

int migrate_latest(void)
{
    return migrations_count ? migrations[migrations_count - 1].version : 0;
}

bool migrate_version(PGconn *conn, int *version, char *err, size_t errlen)
{
    PGresult *r = PQexec(conn, "SELECT coalesce(max(version), 0) FROM schema_migrations");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        /* no table yet means nothing was applied */
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        bool missing = state && strcmp(state, "42P01") == 0;
        if (!missing)
            db_error(r, conn, "could not read schema_migrations", err, errlen);
        PQclear(r);
        *version = 0;
        return missing;
    }
    *version = (int)db_int(PQgetvalue(r, 0, 0));
    PQclear(r);
    return true;
}

bool migrate_run(PGconn *conn, int *applied, char *err, size_t errlen)
{
    *applied = 0;
    if (!db_exec(conn, "BEGIN", err, errlen))
        return false;
    if (!db_exec(conn, "SELECT pg_advisory_xact_lock(x'" MIGRATE_LOCK_KEY "'::bigint)", err,
                 errlen) ||
        !db_exec(conn,
                 "CREATE TABLE IF NOT EXISTS schema_migrations ("
                 " version integer PRIMARY KEY, name text NOT NULL,"
                 " applied_at timestamptz NOT NULL DEFAULT now())",
                 err, errlen))
        goto fail;
    int have = 0;
    if (!migrate_version(conn, &have, err, errlen))
        goto fail;
    for (size_t i = 0; i < migrations_count; i++) {
        const struct migration *m = &migrations[i];
        if (m->version <= have)
            continue;
        char what[160];
        snprintf(what, sizeof(what), "migration %s failed", m->name);
        if (!db_exec(conn, m->sql, err, errlen)) {
            char inner[512];
            snprintf(inner, sizeof(inner), "%s", err);
            snprintf(err, errlen, "%s: %s", what, inner);
            goto fail;
        }
        char version[16];
        snprintf(version, sizeof(version), "%d", m->version);
        const char *params[2] = {version, m->name};
        PGresult *r =
            PQexecParams(conn, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2,
                         NULL, params, NULL, NULL, 0);
        bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok)
            db_error(r, conn, "could not record migration", err, errlen);
        PQclear(r);
        if (!ok)
            goto fail;
        (*applied)++;
    }
    if (!db_exec(conn, "COMMIT", err, errlen)) {
        *applied = 0;
        return false;
    }
    return true;
fail:
    *applied = 0;
    PGresult *r = PQexec(conn, "ROLLBACK");
    PQclear(r);
    return false;
}
