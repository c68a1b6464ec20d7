/*
 * server.h: the HTTP server (server.c, over libmicrohttpd): listening,
 * request lifetime (head checks, bounded or streamed bodies), routing through
 * the table it is given, authentication through a callback, graceful drain.
 */
#ifndef API_SERVER_H
#define API_SERVER_H

#include "http.h"

#include <stddef.h>
#include <stdint.h>

struct http_server_opts {
    const char *listen; /* "host:port"; port 0 picks a free one */
    unsigned threads;
    unsigned connection_limit;
    unsigned per_ip_connection_limit; /* 0: none */
    unsigned connection_timeout_s;
    unsigned header_timeout_s; /* a request head must be complete within this (0: no limit) */
    size_t max_body_bytes;
    const struct http_route *routes;
    size_t n_routes;
    http_auth_fn auth;
    const char *auth_prefix; /* every path under it needs auth, before routing ("/v1/") */
    void *app;
    /* when set: every answered request, once its response is sent (or the client
     * went away): its route (NULL when none matched), status and seconds from
     * its complete head to the end */
    void (*observe)(void *app, const struct http_route *route, int status, double seconds);
};

struct http_server;

/* Start serving. Returns NULL with err set if the address cannot be bound. */
struct http_server *http_server_start(const struct http_server_opts *o, char *err, size_t errlen);
/* The bound port. */
int http_server_port(const struct http_server *s);
/* Shutting down: stop accepting (the listening socket is closed), mark responses
 * "Connection: close", and wait up to deadline_ms for the requests in flight.
 * Returns how many are still in flight (0: all answered). */
int http_server_drain(struct http_server *s, int64_t deadline_ms);
/* Stop accepting, finish in-flight requests, free everything. NULL is a no-op. */
void http_server_stop(struct http_server *s);

#endif
