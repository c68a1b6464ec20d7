/* test_keys.c: API keys: creation, hashing, verification, revocation, CLI. */
#include "dbh.h"
#include "store/keys.h"
#include "store/migrate.h"

#include <criterion/criterion.h>

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct dbh db;

static void setup(void)
{
    char err[512];
    int applied;
    dbh_create(&db);
    cr_assert(migrate_run(db.conn, &applied, err, sizeof(err)), "%s", err);
}

static void teardown(void)
{
    dbh_drop(&db);
}

TestSuite(keys, .init = setup, .fini = teardown, .timeout = 60);

static void assert_key_shape(const char *k)
{
    regex_t re;
    cr_assert_eq(regcomp(&re, "^ek_[0-9A-Za-z]{40}$", REG_EXTENDED | REG_NOSUB), 0);
    cr_assert_eq(regexec(&re, k, 0, NULL, 0), 0, "bad key: %s", k);
    regfree(&re);
}

Test(keys, create_and_verify)
{
    char err[512], k1[KEY_LEN + 1], k2[KEY_LEN + 1];
    int64_t id1, id2, got = 0;
    cr_assert(keys_create(db.conn, "one", k1, &id1, err, sizeof(err)), "%s", err);
    cr_assert(keys_create(db.conn, "two", k2, &id2, err, sizeof(err)), "%s", err);
    assert_key_shape(k1);
    assert_key_shape(k2);
    cr_assert_str_neq(k1, k2);
    cr_assert_neq(id1, id2);
    cr_assert_eq(keys_verify(db.conn, k1, &got, err, sizeof(err)), KEYS_OK);
    cr_assert_eq(got, id1);
    cr_assert_eq(keys_verify(db.conn, k2, &got, err, sizeof(err)), KEYS_OK);
    cr_assert_eq(got, id2);

    /* the key itself is nowhere in the table */
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM api_keys WHERE position('%s' in api_keys::text) > 0", k1 + 3);
    cr_assert_eq(dbh_scalar(&db, sql), 0, "the key is stored in clear");
}

Test(keys, wrong_malformed_and_revoked_keys)
{
    char err[512], k[KEY_LEN + 1];
    int64_t id, got = -1;
    cr_assert(keys_create(db.conn, "k", k, &id, err, sizeof(err)), "%s", err);
    char bad[KEY_LEN + 1];
    memcpy(bad, k, sizeof(bad));
    bad[KEY_LEN - 1] = bad[KEY_LEN - 1] == 'a' ? 'b' : 'a'; /* same prefix, wrong secret */
    cr_assert_eq(keys_verify(db.conn, bad, &got, err, sizeof(err)), KEYS_INVALID);
    cr_assert_eq(got, -1);
    cr_assert_eq(keys_verify(db.conn, "", &got, err, sizeof(err)), KEYS_INVALID);
    cr_assert_eq(keys_verify(db.conn, "ek_short", &got, err, sizeof(err)), KEYS_INVALID);
    cr_assert_eq(
        keys_verify(db.conn, "ek_'; DROP TABLE api_keys; --aaaaaaaaaaaaaa", &got, err, sizeof(err)),
        KEYS_INVALID);
    PQclear(PQexec(db.conn, "UPDATE api_keys SET revoked_at = now()"));
    cr_assert_eq(keys_verify(db.conn, k, &got, err, sizeof(err)), KEYS_INVALID);
}

Test(keys, cli_prints_the_key_once)
{
    char *bin = dbh_bin("EMBEDD_BIN");
    char url_flag[600];
    snprintf(url_flag, sizeof(url_flag), "--database-url=%s", db.url);
    char *out = NULL, *err = NULL;
    char *argv[] = {bin, url_flag, "keys", "create", "--name", "ci", NULL};
    cr_assert_eq(dbh_run(argv, &out, &err), 0, "%s", err);
    out[strcspn(out, "\n")] = '\0';
    assert_key_shape(out);
    cr_assert_null(strstr(err, out + 3), "the key must not be logged");
    char e2[256];
    int64_t id;
    cr_assert_eq(keys_verify(db.conn, out, &id, e2, sizeof(e2)), KEYS_OK);
    free(out);
    free(err);

    char *noname[] = {bin, url_flag, "keys", "create", NULL};
    cr_assert_eq(dbh_run(noname, &out, &err), 2);
    cr_assert(strstr(err, "--name"), "%s", err);
    free(out);
    free(err);
    cr_assert_eq(dbh_scalar(&db, "SELECT count(*) FROM api_keys"), 1);
}

/* A key stored before embedd hashed with libcrypto (a row written as
 * "embedd keys create" wrote it: prefix and the SHA-256 of the whole key,
 * computed here with sha256sum) still verifies. */
Test(keys, stored_hashes_still_verify)
{
    char err[512];
    int64_t got = 0;
    long long id =
        dbh_scalar(&db, "INSERT INTO api_keys (name, prefix, key_sha256)"
                        " VALUES ('old', 'ek_012345678',"
                        " '\\x7691ba896fc01851ff674372feccf77bdab0983af012881f20005101d8e94a43')"
                        " RETURNING id");
    cr_assert_gt(id, 0);
    cr_assert_eq(
        keys_verify(db.conn, "ek_0123456789ABCDEFGHIJabcdefghij0123456789", &got, err, sizeof(err)),
        KEYS_OK, "%s", err);
    cr_assert_eq(got, id);
    cr_assert_eq(
        keys_verify(db.conn, "ek_0123456789ABCDEFGHIJabcdefghij012345678A", &got, err, sizeof(err)),
        KEYS_INVALID);
}

/* embedd keys list shows every key (never the key), last use once verified; keys revoke ID
 * makes it invalid; revoking twice or an unknown id says so. */
Test(keys, cli_list_and_revoke)
{
    char *bin = dbh_bin("EMBEDD_BIN");
    char url_flag[600];
    snprintf(url_flag, sizeof(url_flag), "--database-url=%s", db.url);
    char err[512], k1[KEY_LEN + 1];
    int64_t id = 0, got = 0;
    cr_assert(keys_create(db.conn, "reporting", k1, &id, err, sizeof(err)), "%s", err);
    cr_assert_eq(keys_verify(db.conn, k1, &got, err, sizeof(err)), KEYS_OK);
    char *out = NULL, *e = NULL;
    char *list[] = {bin, url_flag, "keys", "list", NULL};
    cr_assert_eq(dbh_run(list, &out, &e), 0, "%s", e);
    char prefix[KEY_PREFIX_LEN + 1];
    snprintf(prefix, sizeof(prefix), "%.*s", KEY_PREFIX_LEN, k1);
    cr_assert(strstr(out, "reporting") && strstr(out, prefix), "%s", out);
    cr_assert_null(strstr(out, k1 + KEY_PREFIX_LEN), "the key itself is never shown");
    cr_assert_eq(dbh_scalar(&db, "SELECT count(*) FROM api_keys WHERE last_used_at IS NOT NULL"), 1,
                 "a verified key records its last use");
    free(out);
    free(e);
    char sid[24];
    snprintf(sid, sizeof(sid), "%lld", (long long)id);
    char *revoke[] = {bin, url_flag, "keys", "revoke", sid, NULL};
    cr_assert_eq(dbh_run(revoke, &out, &e), 0, "%s", e);
    free(out);
    free(e);
    cr_assert_eq(keys_verify(db.conn, k1, &got, err, sizeof(err)), KEYS_INVALID);
    cr_assert_eq(dbh_run(revoke, &out, &e), 1, "already revoked");
    free(out);
    free(e);
    char *bad[] = {bin, url_flag, "keys", "revoke", "seven", NULL};
    cr_assert_eq(dbh_run(bad, &out, &e), 2);
    free(out);
    free(e);
}

/* A key's own limits: none at creation (the settings'); keys_set_limits sets,
 * keeps or resets each one and keys_verify_limits reads them back; `embedd
 * keys limits` refuses bad values and unknown or revoked keys. */
Test(keys, limits)
{
    char err[512], k[KEY_LEN + 1];
    int64_t id = 0, got = 0;
    cr_assert(keys_create(db.conn, "limited", k, &id, err, sizeof(err)), "%s", err);
    struct key_limits lim;
    cr_assert_eq(keys_verify_limits(db.conn, k, &got, &lim, err, sizeof(err)), KEYS_OK, "%s", err);
    cr_assert_eq(lim.rps, KEY_LIMIT_DEFAULT);
    cr_assert_eq(lim.burst, KEY_LIMIT_DEFAULT);
    cr_assert_eq(lim.max_pending_chunks, KEY_LIMIT_DEFAULT);
    struct key_limits set = {10, KEY_LIMIT_KEEP, INT64_C(5000000000)};
    cr_assert_eq(keys_set_limits(db.conn, id, &set, err, sizeof(err)), KEYS_OK, "%s", err);
    cr_assert_eq(keys_verify_limits(db.conn, k, &got, &lim, err, sizeof(err)), KEYS_OK);
    cr_assert_eq(lim.rps, 10);
    cr_assert_eq(lim.burst, KEY_LIMIT_DEFAULT);
    cr_assert_eq(lim.max_pending_chunks, INT64_C(5000000000));
    set = (struct key_limits){KEY_LIMIT_KEEP, 0, KEY_LIMIT_DEFAULT};
    cr_assert_eq(keys_set_limits(db.conn, id, &set, err, sizeof(err)), KEYS_OK, "%s", err);
    cr_assert_eq(keys_verify_limits(db.conn, k, &got, &lim, err, sizeof(err)), KEYS_OK);
    cr_assert_eq(lim.rps, 10, "kept");
    cr_assert_eq(lim.burst, 0);
    cr_assert_eq(lim.max_pending_chunks, KEY_LIMIT_DEFAULT, "back to the setting");
    cr_assert_eq(keys_set_limits(db.conn, id + 1000, &set, err, sizeof(err)), KEYS_INVALID);

    char *bin = dbh_bin("EMBEDD_BIN");
    char url_flag[600], sid[24];
    snprintf(url_flag, sizeof(url_flag), "--database-url=%s", db.url);
    snprintf(sid, sizeof(sid), "%lld", (long long)id);
    char *out = NULL, *e = NULL;
    char *ok[] = {bin,       url_flag, "keys",
                  "limits",  sid,      "--rps=default",
                  "--burst", "7",      "--max-pending-chunks",
                  "0",       NULL};
    cr_assert_eq(dbh_run(ok, &out, &e), 0, "%s", e);
    free(out);
    free(e);
    cr_assert_eq(keys_verify_limits(db.conn, k, &got, &lim, err, sizeof(err)), KEYS_OK);
    cr_assert_eq(lim.rps, KEY_LIMIT_DEFAULT);
    cr_assert_eq(lim.burst, 7);
    cr_assert_eq(lim.max_pending_chunks, 0, "0: no limit for this key");
    char *list[] = {bin, url_flag, "--key-max-pending-chunks=100", "keys", "list", NULL};
    cr_assert_eq(dbh_run(list, &out, &e), 0, "%s", e);
    cr_assert(strstr(out, "MAX PENDING") && strstr(out, " 7 ") && strstr(out, " none "), "%s", out);
    free(out);
    free(e);
    const char *bad[][3] = {{"--rps", "-1", NULL},      {"--rps", "many", NULL},
                            {"--burst", "1x", NULL},    {"--max-pending-chunks", "", NULL},
                            {"--colour", "blue", NULL}, {"--rps", NULL, NULL},
                            {"--rps", "2000000", NULL}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char a0[64], a1[64];
        snprintf(a0, sizeof(a0), "%s", bad[i][0]);
        snprintf(a1, sizeof(a1), "%s", bad[i][1] ? bad[i][1] : "");
        char *argv[] = {bin, url_flag, "keys", "limits", sid, a0, bad[i][1] ? a1 : NULL, NULL};
        cr_assert_eq(dbh_run(argv, &out, &e), 2, "%s %s: %s", a0, a1, e);
        free(out);
        free(e);
    }
    char *no_opts[] = {bin, url_flag, "keys", "limits", sid, NULL};
    cr_assert_eq(dbh_run(no_opts, &out, &e), 2, "%s", e);
    free(out);
    free(e);
    char *unknown[] = {bin, url_flag, "keys", "limits", "99999", "--rps", "1", NULL};
    cr_assert_eq(dbh_run(unknown, &out, &e), 1, "%s", e);
    cr_assert(strstr(e, "no active key 99999"), "%s", e);
    free(out);
    free(e);
    cr_assert_eq(keys_revoke(db.conn, id, err, sizeof(err)), KEYS_OK);
    char *revoked[] = {bin, url_flag, "keys", "limits", sid, "--rps", "1", NULL};
    cr_assert_eq(dbh_run(revoked, &out, &e), 1, "a revoked key's limits are not set: %s", e);
    free(out);
    free(e);
}
