/*
 * db.h: small helpers over libpq: connecting, running statements and turning
 * errors into log-safe messages. Only service code includes <libpq-fe.h>.
 */
#ifndef SVC_STORE_DB_H
#define SVC_STORE_DB_H

#include <libpq-fe.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/compiler.h"

/* Connect to url (a libpq URI or keyword string). Returns NULL with err set.
 * application_name is set to "embedd" unless the URL sets it. */
PGconn *db_connect(const char *url, char *err, size_t errlen);

/* Run one statement without parameters; true on success. */
bool db_exec(PGconn *conn, const char *sql, char *err, size_t errlen) SVC_MUSTCHECK;

/* A statement run through a server-side prepared statement: parsed and
 * planned once per connection instead of on every call (the hot reads:
 * key lookup, job status). Define them as static const. */
struct db_stmt {
    const char *name; /* unique, e.g. "keys_lookup" */
    const char *sql;
    int n_params;
};

/* Execute s with vals (text format) and results in result_format (0 text,
 * 1 binary). The statement is prepared on the connection the first time it
 * is missing there (SQLSTATE 26000). Inside a transaction, where a failed
 * execution would abort it, it runs unprepared. Never NULL-safe to skip:
 * check PQresultStatus as usual and PQclear the result. */
PGresult *db_exec_stmt(PGconn *conn, const struct db_stmt *s, const char *const *vals,
                       int result_format);

/* Write "what: <server message>" to err (r may be NULL: the connection's error). */
void db_error(const PGresult *r, PGconn *conn, const char *what, char *err, size_t errlen);

/* A decimal integer column value; 0 if it does not parse. */
int64_t db_int(const char *s);

/* A binary-format int2, int4, int8 (or timestamptz) column value of row i;
 * 0 if null or of another length. */
int64_t db_bin_int(const PGresult *r, int i, int col);

#endif
