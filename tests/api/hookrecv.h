/*
 * hookrecv.h: a webhook receiver inside the test process (libmicrohttpd on
 * 127.0.0.1, an ephemeral port): it records every POST (the webhook-*
 * headers and the body) and answers each with a status the test chooses;
 * hookrecv_verify checks a recorded request's signature the way the
 * Standard Webhooks specification tells a receiver to, with libcrypto
 * directly (not embedd's code).
 */
#ifndef TESTS_API_HOOKRECV_H
#define TESTS_API_HOOKRECV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hook_req {
    char id[96];         /* webhook-id */
    char timestamp[32];  /* webhook-timestamp */
    char signature[512]; /* webhook-signature */
    char path[256];
    char *body; /* NUL-terminated; owned by the receiver */
    size_t len;
    int answered; /* the status it got */
};

struct hookrecv;

/* Start a receiver; fails the test when it cannot listen. */
struct hookrecv *hookrecv_start(void);
int hookrecv_port(const struct hookrecv *h);
/* Answer the next n requests with status, then 200 again. */
void hookrecv_fail_next(struct hookrecv *h, int n, int status);
/* Requests received so far. */
size_t hookrecv_count(struct hookrecv *h);
/* Wait until at least n requests came; false at the deadline. */
bool hookrecv_wait(struct hookrecv *h, size_t n, int timeout_ms);
/* Request i (0-based), borrowed until hookrecv_stop. */
const struct hook_req *hookrecv_get(struct hookrecv *h, size_t i);
void hookrecv_stop(struct hookrecv *h);

/* Whether one of r's "v1," signatures is HMAC-SHA256 of "id.timestamp.body"
 * under the bytes of secret ("whsec_" + base64), and the timestamp is within
 * five minutes of now. */
bool hookrecv_verify(const char *secret, const struct hook_req *r);

#endif
