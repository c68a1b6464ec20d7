/*
 * deliver.h: one webhook POST over libcurl. The host is resolved here, every
 * address checked (url.h), and the one chosen pinned for the connection
 * (CURLOPT_RESOLVE, verified again as the socket opens), so that a name that
 * resolves elsewhere a moment later (DNS rebinding) cannot steer the request
 * to a refused address. No redirect is followed, no proxy is used, the
 * response body is read up to a cap and dropped.
 */
#ifndef SVC_WEBHOOK_DELIVER_H
#define SVC_WEBHOOK_DELIVER_H

#include "webhook/url.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wh_post {
    const char *url;
    const struct wh_target *target; /* wh_url_parse of url */
    const char *msg_id;             /* webhook-id */
    int64_t timestamp;              /* webhook-timestamp */
    const char *signature;          /* webhook-signature */
    const char *body;
    size_t body_len;
    long timeout_ms;    /* the whole attempt; connecting gets at most 10 s of it */
    bool allow_private; /* skip the address checks (tests, closed networks) */
    atomic_bool *abort; /* set: give up now (shutdown); may be NULL */
};

struct wh_post_result {
    int status;          /* the HTTP status, 0 when none came */
    bool refused;        /* no connection was made: the address is refused */
    bool aborted;        /* cut off by *abort */
    int64_t retry_after; /* seconds a Retry-After asked for, -1 when none */
    int64_t duration_ms;
    char error[300]; /* what went wrong; "" for a 2xx */
};

/* Make one attempt; never fails otherwise (errors land in r). */
void wh_post_send(const struct wh_post *p, struct wh_post_result *r);

#endif
