/*
 * keys.h: API keys. A key looks like "ek_" followed by 40 base62 characters;
 * it is printed once at creation and only its SHA-256 is stored. Its first
 * 12 characters (the prefix) find the row.
 */
#ifndef SVC_STORE_KEYS_H
#define SVC_STORE_KEYS_H

#include <libpq-fe.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/compiler.h"

#define KEY_LEN        43 /* "ek_" + 40 */
#define KEY_PREFIX_LEN 12

/* Create a key named name; writes the key (KEY_LEN + 1 bytes) to key_out and
 * its id to *id. The key is never stored or logged. */
bool keys_create(PGconn *conn, const char *name, char key_out[KEY_LEN + 1], int64_t *id, char *err,
                 size_t errlen) SVC_MUSTCHECK;

enum keys_result { KEYS_OK, KEYS_INVALID, KEYS_DB_ERROR };

/* Check a presented key; on KEYS_OK *id is the key's id. Revoked, unknown
 * and malformed keys are KEYS_INVALID. The comparison is constant-time. */
enum keys_result keys_verify(PGconn *conn, const char *key, int64_t *id, char *err,
                             size_t errlen) SVC_MUSTCHECK;

/* One key as listed (never the key itself nor its hash). */
struct key_row {
    int64_t id;
    char name[256];
    char prefix[KEY_PREFIX_LEN + 1];
    char created_at[40], last_used_at[40], revoked_at[40]; /* "" if never */
};

/* Every key, oldest first; *out (caller frees) of *n rows. */
bool keys_list(PGconn *conn, struct key_row **out, size_t *n, char *err,
               size_t errlen) SVC_MUSTCHECK;
/* Revoke key id; KEYS_INVALID when there is no such key or it is already
 * revoked. A revoked key is refused by every replica once its verified-key
 * cache entry expires (--key-cache-ms). */
enum keys_result keys_revoke(PGconn *conn, int64_t id, char *err, size_t errlen) SVC_MUSTCHECK;

#endif
