/* test_migrate.c: migrations against a real PostgreSQL: idempotence and racing replicas. */
#include "dbh.h"
#include "store/migrate.h"

#include <criterion/criterion.h>

#include <fcntl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static struct dbh db;

static void setup(void)
{
    dbh_create(&db);
}

static void teardown(void)
{
    dbh_drop(&db);
}

TestSuite(migrate, .init = setup, .fini = teardown, .timeout = 120);

Test(migrate, applies_everything_once)
{
    char err[512];
    int applied = -1, version = -1;
    cr_assert(migrate_version(db.conn, &version, err, sizeof(err)), "%s", err);
    cr_assert_eq(version, 0, "an empty database is at version 0");
    cr_assert(migrate_run(db.conn, &applied, err, sizeof(err)), "%s", err);
    cr_assert_eq(applied, (int)migrations_count);
    cr_assert(migrate_version(db.conn, &version, err, sizeof(err)), "%s", err);
    cr_assert_eq(version, migrate_latest());
    cr_assert(migrate_run(db.conn, &applied, err, sizeof(err)), "%s", err);
    cr_assert_eq(applied, 0, "a second run applies nothing");
    cr_assert_eq(dbh_scalar(&db, "SELECT count(*) FROM schema_migrations"),
                 (long long)migrations_count);
    cr_assert_eq(dbh_scalar(&db, "SELECT count(*) FROM information_schema.tables"
                                 " WHERE table_name = 'api_keys'"),
                 1);
}

Test(migrate, versions_are_increasing)
{
    cr_assert_gt(migrations_count, 0);
    for (size_t i = 1; i < migrations_count; i++)
        cr_assert_gt(migrations[i].version, migrations[i - 1].version);
    cr_assert_eq(migrations[0].version, 1);
}

Test(migrate, replicas_racing)
{
    char *bin = dbh_bin("EMBEDD_BIN");
    enum { N = 6 };
    pid_t pids[N];
    char url_flag[600];
    snprintf(url_flag, sizeof(url_flag), "--database-url=%s", db.url);
    for (int i = 0; i < N; i++) {
        pids[i] = fork();
        cr_assert(pids[i] >= 0);
        if (pids[i] == 0) {
            int fd = open("/dev/null", 0);
            dup2(fd, 2);
            execl(bin, bin, url_flag, "migrate", (char *)NULL);
            _exit(127);
        }
    }
    for (int i = 0; i < N; i++) {
        int st;
        cr_assert_eq(waitpid(pids[i], &st, 0), pids[i]);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "replica %d: status %d", i, st);
    }
    cr_assert_eq(dbh_scalar(&db, "SELECT count(*) FROM schema_migrations"),
                 (long long)migrations_count, "each migration recorded exactly once");
    cr_assert_eq(dbh_scalar(&db, "SELECT max(version) FROM schema_migrations"), migrate_latest());
}

Test(migrate, cli_reports_and_hides_passwords)
{
    char *bin = dbh_bin("EMBEDD_BIN");
    char url_flag[600];
    snprintf(url_flag, sizeof(url_flag), "--database-url=%s", db.url);
    char *out = NULL, *err = NULL;
    char *ok_argv[] = {bin, url_flag, "migrate", NULL};
    cr_assert_eq(dbh_run(ok_argv, &out, &err), 0, "stderr: %s", err);
    cr_assert(strstr(err, "schema version"), "%s", err);
    free(out);
    free(err);

    char *bad_argv[] = {bin,
                        "--database-url=postgresql://u:hunter2@127.0.0.1:1/none?connect_timeout=2",
                        "migrate", NULL};
    cr_assert_eq(dbh_run(bad_argv, &out, &err), 1);
    cr_assert(strstr(err, "could not connect to database"), "%s", err);
    cr_assert_null(strstr(err, "hunter2"), "the password leaked: %s", err);
    free(out);
    free(err);
}
