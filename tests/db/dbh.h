/*
 * dbh.h: a throwaway PostgreSQL database per test. The server comes from
 * EMBEDD_TEST_DATABASE_URL (scripts/test.sh starts a private cluster and
 * sets it); each test gets a fresh database, dropped at the end.
 */
#ifndef TESTS_DB_DBH_H
#define TESTS_DB_DBH_H

#include <libpq-fe.h>

struct dbh {
    char name[64]; /* database name */
    char url[512]; /* URL of the test database */
    PGconn *conn;  /* connection to it */
};

/* Create and connect; fails the test if the server is unreachable. */
void dbh_create(struct dbh *h);
/* Disconnect and drop the database (terminating leftover sessions). */
void dbh_drop(struct dbh *h);
/* Run a query expected to return one value; returns it as a long long. */
long long dbh_scalar(struct dbh *h, const char *sql);
/* Path of a built binary from an environment variable set by CMake. */
char *dbh_bin(const char *env_name);
/* Run argv (NULL-terminated) to completion; capture stdout and stderr
 * (malloc'd, NUL-terminated; may be NULL to discard). Returns the exit status. */
int dbh_run(char *const argv[], char **out, char **err);

#endif
