/*
 * svch.h: run a real `embedd serve` process for a test: a fresh database
 * (dbh), an ephemeral port, clean shutdown checked (exit status 0, no
 * sanitizer report in its log).
 */
#ifndef TESTS_API_SVCH_H
#define TESTS_API_SVCH_H

#include "dbh.h"

#include <sys/types.h>

struct svch {
    struct dbh db;
    pid_t pid;
    char *argv[40]; /* kept for restarts */
    int port;
    char dir[64];
    char base[64]; /* http://127.0.0.1:PORT */
    char key[64];  /* an API key created for the test */
};

/* Create a database, start embedd serve on it with extra flags (NULL-terminated). */
void svch_start(struct svch *s, const char *const *flags);
/* The same, calling prepare on the new database before the service starts
 * (which migrates it): a database as an earlier version left it. */
void svch_start_prepared(struct svch *s, const char *const *flags, void (*prepare)(struct dbh *));
/* SIGTERM, wait, assert exit 0 and a clean log; drop the database. */
void svch_stop(struct svch *s);
/* kill -9 the running process (no clean shutdown), then start it again on
 * the same database and wait until it listens. */
void svch_crash_restart(struct svch *s);

/* Create another API key through the CLI; writes it to out (>= 64 bytes). */
void svch_new_key(struct svch *s, const char *name, char *out);

#endif
