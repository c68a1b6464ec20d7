/* db.c: libpq helpers (see db.h). */
#include "store/db.h"

#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Server notices ("relation already exists, skipping") go to the debug log. */
static void on_notice(void *arg, const char *message)
{
    (void)arg;
    log_debug("postgres: %.*s", (int)strcspn(message, "\n"), message);
}

PGconn *db_connect(const char *url, char *err, size_t errlen)
{
    const char *keys[] = {"dbname", "application_name", "connect_timeout", NULL};
    const char *vals[] = {url, "embedd", "10", NULL};
    /* expand_dbname: the URL's own settings win over the fallbacks above */
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (!c) {
        snprintf(err, errlen, "could not connect to database: out of memory");
        return NULL;
    }
    if (PQstatus(c) != CONNECTION_OK) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c));
        msg[strcspn(msg, "\n")] = '\0';
        snprintf(err, errlen, "could not connect to database: %s", msg);
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeProcessor(c, on_notice, NULL);
    return c;
}

void db_error(const PGresult *r, PGconn *conn, const char *what, char *err, size_t errlen)
{
    const char *m = r ? PQresultErrorMessage(r) : NULL;
    if (!m || !*m)
        m = PQerrorMessage(conn);
    char msg[512];
    snprintf(msg, sizeof(msg), "%s", m && *m ? m : "unknown error");
    msg[strcspn(msg, "\n")] = '\0';
    snprintf(err, errlen, "%s: %s", what, msg);
}

bool db_exec(PGconn *conn, const char *sql, char *err, size_t errlen)
{
    PGresult *r = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(r);
    bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        db_error(r, conn, "statement failed", err, errlen);
    PQclear(r);
    return ok;
}

int64_t db_int(const char *s)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    return errno || end == s || *end ? 0 : v;
}

PGresult *db_exec_stmt(PGconn *conn, const struct db_stmt *s, const char *const *vals,
                       int result_format)
{
    if (PQtransactionStatus(conn) != PQTRANS_IDLE)
        return PQexecParams(conn, s->sql, s->n_params, NULL, vals, NULL, NULL, result_format);
    PGresult *r = PQexecPrepared(conn, s->name, s->n_params, vals, NULL, NULL, result_format);
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (PQresultStatus(r) != PGRES_FATAL_ERROR || !state || strcmp(state, "26000") != 0)
        return r;
    /* not prepared on this connection yet (a new or reopened one) */
    PQclear(r);
    r = PQprepare(conn, s->name, s->sql, s->n_params, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        return r;
    PQclear(r);
    return PQexecPrepared(conn, s->name, s->n_params, vals, NULL, NULL, result_format);
}

int64_t db_bin_int(const PGresult *r, int i, int col)
{
    int n = PQgetlength(r, i, col);
    if (PQgetisnull(r, i, col) || (n != 2 && n != 4 && n != 8))
        return 0;
    const unsigned char *p = (const unsigned char *)PQgetvalue(r, i, col);
    uint64_t v = 0;
    for (int k = 0; k < n; k++)
        v = v << 8 | p[k];
    if (n < 8 && (v >> (n * 8 - 1)) & 1) /* sign-extend */
        v |= ~UINT64_C(0) << (n * 8);
    return (int64_t)v;
}
