/*
 * server_internal.h: what the server's files share (server.c, the
 * libmicrohttpd adapter, and server_dispatch.c): a request's state and the
 * steps of answering it that do not touch libmicrohttpd.
 */
#ifndef SVC_API_SERVER_INTERNAL_H
#define SVC_API_SERVER_INTERNAL_H

#include "server.h"

#include <stdbool.h>
#include <stdint.h>

/* One request, between its first sight (on_uri) and its completion. */
struct req_state {
    struct http_req req;
    bool too_large;
    int64_t start_ns;
    /* a streamed request body (route->streams), see struct http_body_stream */
    const struct http_body_stream *sops;
    void *sstate;              /* the handler's state between begin and end/abort */
    struct http_resp *refusal; /* begin or authentication refused: sent once the body is read */
    bool authed;               /* authenticated with the head, before the body */
    bool sfailed;              /* data returned false: drop the rest of the body */
    bool begun;                /* on_access has seen the head */
    char *raw_path;            /* owned: the path as sent (see http_req.raw_path) */
    int status;                /* of the response queued; 0 until then */
    const struct http_route *route; /* the request's route, for observe (NULL: none) */
};

/* Authenticate a request under o->auth_prefix with its head; false: out of memory. */
bool server_head_auth(const struct http_server_opts *o, struct req_state *st);
/* Authenticate a streamed-body request with its head and call its begin; false: out of memory. */
bool server_stream_begin(const struct http_server_opts *o, struct req_state *st,
                         const struct http_route *rt);
/* Free the refusal kept for after the body, if any. */
void server_free_refusal(struct req_state *st);
/* Fill resp for a request whose body has been read: its refusal, or its handler's answer. */
void server_dispatch(const struct http_server_opts *o, struct req_state *st,
                     struct http_resp *resp);

#endif
