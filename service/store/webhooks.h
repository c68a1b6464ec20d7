/*
 * webhooks.h: the webhook side of the store: a key's default URL and
 * signing secret (sealed, webhook/secret.h), and the outbox. Events are
 * written to the outbox by triggers on jobs (migrations/0006_webhooks.sql)
 * in the transaction that changes the job; senders claim due deliveries
 * (FOR UPDATE SKIP LOCKED, any number of replicas), record each attempt and
 * schedule the next.
 */
#ifndef SVC_STORE_WEBHOOKS_H
#define SVC_STORE_WEBHOOKS_H

#include <libpq-fe.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/keys.h"
#include "util/compiler.h"

#define WH_STORED_MAX 128 /* a sealed secret as stored, at most */

/* ---- a key's webhook settings ---- */

/* Set key id's default webhook URL (NULL clears it); *has_secret says whether
 * the key has a signing secret yet. KEYS_INVALID: no such active key. */
enum keys_result keys_webhook_set_url(PGconn *c, int64_t id, const char *url, bool *has_secret,
                                      char *err, size_t errlen) SVC_MUSTCHECK;
/* Key id's default URL ("" when none) and whether it has a secret. */
enum keys_result keys_webhook_get(PGconn *c, int64_t id, char *url, size_t url_len,
                                  bool *has_secret, char *err, size_t errlen) SVC_MUSTCHECK;
/* Store sealed[0..n) as key id's secret. The one it replaces keeps signing
 * (as a second signature) for grace_s seconds more (0: stops at once). */
enum keys_result keys_webhook_set_secret(PGconn *c, int64_t id, const unsigned char *sealed,
                                         size_t n, int64_t grace_s, char *err,
                                         size_t errlen) SVC_MUSTCHECK;

/* ---- the outbox ---- */

/* A delivery claimed for one attempt. */
struct wh_delivery {
    char id[37];     /* uuid */
    char msg_id[40]; /* webhook-id: "msg_" + the uuid's hex */
    char job_id[37];
    char event_type[48];
    char *url;  /* owned */
    char *body; /* owned */
    size_t body_len;
    int attempts;                                             /* made before this one */
    int64_t age_ms;                                           /* since the event */
    unsigned char secret[WH_STORED_MAX], prev[WH_STORED_MAX]; /* sealed; prev while in grace */
    size_t secret_len, prev_len;                              /* 0: none */
};

/* Claim the delivery most overdue, if any: its next attempt moves lease_ms
 * ahead, so that if this process dies the delivery is due again then. */
bool wh_claim(PGconn *c, int64_t lease_ms, struct wh_delivery *d, bool *found, char *err,
              size_t errlen) SVC_MUSTCHECK;
void wh_delivery_free(struct wh_delivery *d);

enum wh_outcome { WH_DELIVERED, WH_RETRY, WH_GAVE_UP };

struct wh_attempt {
    int64_t started_ms; /* Unix time */
    int64_t duration_ms;
    int status;        /* 0: no HTTP answer */
    const char *error; /* NULL on success */
};

/* Record attempt a of delivery id and what follows it: delivered, another
 * attempt in retry_ms, or no more. A delivery already delivered (by a
 * replica that took it over) stays delivered. */
bool wh_record(PGconn *c, const char *id, const struct wh_attempt *a, enum wh_outcome o,
               int64_t retry_ms, char *err, size_t errlen) SVC_MUSTCHECK;
/* Give a claimed delivery back unattempted (shutdown): due again at once. */
bool wh_hand_back(PGconn *c, const char *id, char *err, size_t errlen) SVC_MUSTCHECK;

/* ---- reading them back ---- */

struct wh_listed_attempt {
    int n;
    char started_at[40];
    int64_t duration_ms;
    int status;  /* 0: none */
    char *error; /* NULL: none */
};

struct wh_listed {
    char msg_id[40];
    char event_type[48];
    char *url, *body, *last_error; /* owned; last_error NULL when none */
    char state[16];
    int attempts;
    char created_at[40], next_attempt_at[40], finished_at[40]; /* "" when none */
    struct wh_listed_attempt *tries;
    size_t n_tries;
};

/* Every delivery of job_id (of key key_id), in event order, with its
 * attempts. *out (free with wh_listed_free) of *n. */
bool wh_list(PGconn *c, int64_t key_id, const char *job_id, struct wh_listed **out, size_t *n,
             char *err, size_t errlen) SVC_MUSTCHECK;
void wh_listed_free(struct wh_listed *l, size_t n);

#endif
