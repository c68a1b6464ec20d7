/*
 * idempotency.h: Idempotency-Key for creating requests (POST /v1/jobs, POST
 * /v1/collections): the first request with a key, per API key, stores the
 * SHA-256 of its body and the resource it created in the same transaction
 * as the resource; a repeat within 24 h gets the same resource back, a
 * repeat with another body is refused, and a repeat while the first is
 * still in flight is told so at once (as Stripe answers: 409): exactly one
 * creates, across replicas and restarts, and no request waits on another.
 */
#ifndef SVC_STORE_IDEMPOTENCY_H
#define SVC_STORE_IDEMPOTENCY_H

#include <libpq-fe.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/compiler.h"
#include "util/crypto.h"

#define IDEM_KEY_MAX 255 /* bytes of a key: printable ASCII */

/* Whether s is an acceptable key (1 to IDEM_KEY_MAX printable ASCII bytes). */
bool idem_key_valid(const char *s);

enum idem_result { IDEM_NEW, IDEM_REPLAY, IDEM_BUSY, IDEM_ERROR };

/* A stored first request. */
struct idem_prior {
    unsigned char request_sha256[SHA256_LEN];
    char method[8];
    char path[128];
    int status;
    char resource_id[64];
};

/*
 * Inside the caller's open transaction on c: take key for key_id. IDEM_NEW:
 * this request owns the key (no row, or one older than 24 h, replaced); it
 * must call idem_complete before its commit. IDEM_REPLAY: a first request
 * with this key was committed (*prior). IDEM_BUSY: a first request with
 * this key is in flight (its transaction is open). IDEM_ERROR: err says why.
 */
enum idem_result idem_claim(PGconn *c, int64_t key_id, const char *key, const char *method,
                            const char *path, struct idem_prior *prior, char *err,
                            size_t errlen) SVC_MUSTCHECK;
/* Record the request's body hash and what it created, before the commit. */
bool idem_complete(PGconn *c, int64_t key_id, const char *key, const unsigned char sha[SHA256_LEN],
                   int status, const char *resource_id, char *err, size_t errlen) SVC_MUSTCHECK;

#endif
