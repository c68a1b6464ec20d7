/*
 * svch.h: run a real `embedd serve` process for a test: a fresh database
 * (dbh), an ephemeral port, clean shutdown checked (exit status 0, no
 * sanitizer report in its log).
 */
#ifndef TESTS_API_SVCH_H
#define TESTS_API_SVCH_H

#include "dbh.h"

#include <stdbool.h>
#include <sys/types.h>

struct svch {
    struct dbh db;
    bool replica; /* started by svch_start_replica: the database is another's */
    pid_t pid;
    char *argv[40]; /* kept for restarts */
    char arg_store[40][600];
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
/* Start another `embedd serve` on the database of s (a second replica), with
 * its own flags (NULL-terminated) and the same API key. Stop it with
 * svch_stop before s. */
void svch_start_replica(struct svch *r, const struct svch *s, const char *const *flags);
/* SIGTERM, wait, assert exit 0 and a clean log; drop the database (not for
 * a replica). */
void svch_stop(struct svch *s);
/* kill -9 the running process (no clean shutdown), then start it again on
 * the same database and wait until it listens. */
void svch_crash_restart(struct svch *s);

/* Create another API key through the CLI; writes it to out (>= 64 bytes). */
void svch_new_key(struct svch *s, const char *name, char *out);

#endif
