/* test_idempotency.c: Idempotency-Key rows: the first request owns the key, a concurrent one
 * is told it is busy without waiting, a later one gets the first's answer, 24 h later the key
 * is free again. */
#include "dbh.h"
#include "store/idempotency.h"
#include "store/keys.h"
#include "store/migrate.h"

#include <criterion/criterion.h>

#include <string.h>

static struct dbh db;
static int64_t key_id;

static void setup(void)
{
    char err[512], key[KEY_LEN + 1];
    int applied;
    dbh_create(&db);
    cr_assert(migrate_run(db.conn, &applied, err, sizeof(err)), "%s", err);
    cr_assert(keys_create(db.conn, "t", key, &key_id, err, sizeof(err)), "%s", err);
}

static void teardown(void)
{
    dbh_drop(&db);
}

TestSuite(idempotency, .init = setup, .fini = teardown, .timeout = 60);

static void exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    cr_assert(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK,
              "%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
}

Test(idempotency, first_busy_replay_expiry)
{
    char err[512];
    struct idem_prior prior;
    unsigned char sha[SHA256_LEN];
    memset(sha, 7, sizeof(sha));
    PGconn *other = PQconnectdb(db.url);
    cr_assert_eq(PQstatus(other), CONNECTION_OK);

    exec(db.conn, "BEGIN");
    cr_assert_eq(idem_claim(db.conn, key_id, "k-1", "POST", "/v1/jobs", &prior, err, sizeof(err)),
                 IDEM_NEW, "%s", err);
    /* a second request while the first is open: busy, at once */
    exec(other, "BEGIN");
    cr_assert_eq(idem_claim(other, key_id, "k-1", "POST", "/v1/jobs", &prior, err, sizeof(err)),
                 IDEM_BUSY);
    exec(other, "ROLLBACK");
    cr_assert(idem_complete(db.conn, key_id, "k-1", sha, 202, "job-uuid", err, sizeof(err)), "%s",
              err);
    exec(db.conn, "COMMIT");

    exec(other, "BEGIN");
    cr_assert_eq(idem_claim(other, key_id, "k-1", "POST", "/v1/jobs", &prior, err, sizeof(err)),
                 IDEM_REPLAY);
    exec(other, "ROLLBACK");
    cr_assert_eq(memcmp(prior.request_sha256, sha, SHA256_LEN), 0);
    cr_assert_eq(prior.status, 202);
    cr_assert_str_eq(prior.resource_id, "job-uuid");
    cr_assert_str_eq(prior.path, "/v1/jobs");

    /* a first request that rolls back leaves the key free */
    exec(db.conn, "BEGIN");
    cr_assert_eq(idem_claim(db.conn, key_id, "k-2", "POST", "/v1/jobs", &prior, err, sizeof(err)),
                 IDEM_NEW);
    exec(db.conn, "ROLLBACK");
    exec(db.conn, "BEGIN");
    cr_assert_eq(idem_claim(db.conn, key_id, "k-2", "POST", "/v1/jobs", &prior, err, sizeof(err)),
                 IDEM_NEW);
    exec(db.conn, "ROLLBACK");

    /* 24 h later the key is free again */
    exec(db.conn, "UPDATE idempotency_keys SET created_at = now() - interval '25 hours'");
    exec(db.conn, "BEGIN");
    cr_assert_eq(idem_claim(db.conn, key_id, "k-1", "POST", "/v1/jobs", &prior, err, sizeof(err)),
                 IDEM_NEW);
    exec(db.conn, "ROLLBACK");
    PQfinish(other);
}

Test(idempotency, keys_are_printable_ascii_up_to_255_bytes)
{
    char k[300];
    cr_assert(idem_key_valid("a"));
    cr_assert(idem_key_valid("order-2026-12-06T10:00:00Z#1"));
    cr_assert_not(idem_key_valid(""));
    cr_assert_not(idem_key_valid("tab\there"));
    cr_assert_not(idem_key_valid("caf\xc3\xa9"));
    memset(k, 'x', 255);
    k[255] = '\0';
    cr_assert(idem_key_valid(k));
    memset(k, 'x', 256);
    k[256] = '\0';
    cr_assert_not(idem_key_valid(k));
}
