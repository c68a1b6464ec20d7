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

/*
 * A key's own limits, each overriding a setting (--key-rps, --key-burst,
 * --key-max-pending-chunks): KEY_LIMIT_DEFAULT (NULL in the table) means the
 * setting, 0 no limit for this key (for burst: as many as rps), N the limit.
 * KEY_LIMIT_KEEP only tells keys_set_limits to leave one as it is.
 */
#define KEY_LIMIT_DEFAULT (-1)
#define KEY_LIMIT_KEEP    (-2)
struct key_limits {
    int64_t rps, burst, max_pending_chunks;
};

/* Check a presented key; on KEYS_OK *id is the key's id. Revoked, unknown
 * and malformed keys are KEYS_INVALID. The comparison is constant-time. */
enum keys_result keys_verify(PGconn *conn, const char *key, int64_t *id, char *err,
                             size_t errlen) SVC_MUSTCHECK;
/* keys_verify, also reading the key's limits into *lim (same one query). */
enum keys_result keys_verify_limits(PGconn *conn, const char *key, int64_t *id,
                                    struct key_limits *lim, char *err, size_t errlen) SVC_MUSTCHECK;
/* Set the limits of active key id (each field a value >= 0, KEY_LIMIT_DEFAULT
 * or KEY_LIMIT_KEEP); KEYS_INVALID when there is no such active key. Running
 * replicas apply them within --key-cache-ms. */
enum keys_result keys_set_limits(PGconn *conn, int64_t id, const struct key_limits *lim, char *err,
                                 size_t errlen) SVC_MUSTCHECK;

/* One key as listed (never the key itself nor its hash). */
struct key_row {
    int64_t id;
    char name[256];
    char prefix[KEY_PREFIX_LEN + 1];
    char created_at[40], last_used_at[40], revoked_at[40]; /* "" if never */
    struct key_limits limits;                              /* KEY_LIMIT_DEFAULT: the setting's */
};

/* Every key, oldest first; *out (caller frees) of *n rows. */
bool keys_list(PGconn *conn, struct key_row **out, size_t *n, char *err,
               size_t errlen) SVC_MUSTCHECK;
/* Revoke key id; KEYS_INVALID when there is no such key or it is already
 * revoked. A revoked key is refused by every replica once its verified-key
 * cache entry expires (--key-cache-ms). */
enum keys_result keys_revoke(PGconn *conn, int64_t id, char *err, size_t errlen) SVC_MUSTCHECK;

#endif
