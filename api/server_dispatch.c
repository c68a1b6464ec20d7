/*
 * server_dispatch.c: what a request is answered with, apart from
 * libmicrohttpd: authentication with the head or after the body, a streamed
 * body's begin, routing to the handler, and a refusal kept until the body
 * has been read. server.c calls it from on_access and on_completed.
 */
#include "server_internal.h"

#include "router.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static bool under_auth_prefix(const struct http_server_opts *o, const struct http_req *req)
{
    return o->auth_prefix && strncmp(req->path, o->auth_prefix, strlen(o->auth_prefix)) == 0;
}

void server_dispatch(const struct http_server_opts *o, struct req_state *st, struct http_resp *resp)
{
    struct http_req *req = &st->req;
    if (st->too_large) {
        http_problem(resp, req, 413, "body_too_large", NULL,
                     "the request body is larger than the limit of %zu bytes", o->max_body_bytes);
        return;
    }
    if (st->refusal) { /* refused with the head (authentication, begin); the body was dropped */
        *resp = *st->refusal; /* takes over its body */
        buf_init(&st->refusal->body, 0);
        return;
    }
    if (st->sops) { /* a streamed body: begin already authenticated and routed */
        void *state = st->sstate;
        st->sstate = NULL;
        st->sops->end(state, req, resp);
        return;
    }
    /* authenticate before routing, so that unknown and known paths look alike
     * (normally done with the head already: server_head_auth) */
    bool authed = st->authed;
    if (!authed && under_auth_prefix(o, req)) {
        if (!o->auth(o->app, req, resp))
            return;
        authed = true;
    }
    const struct http_route *rt = http_route_find(o->routes, o->n_routes, req, resp);
    st->route = rt; /* for observe: the same route http_route_of would find */
    if (!rt)
        return;
    if (!authed && (rt->flags & HTTP_ROUTE_AUTH) && !o->auth(o->app, req, resp))
        return;
    rt->handler(o->app, req, resp);
}

/* A request under auth_prefix is authenticated (and its key's request rate
 * checked) as soon as its head is in, before its body is read: a refused
 * request's body is dropped as it arrives, never buffered, and the refusal
 * is sent once it has been read. */
bool server_head_auth(const struct http_server_opts *o, struct req_state *st)
{
    if (!under_auth_prefix(o, &st->req))
        return true;
    struct http_resp r; /* on the heap only when kept: most requests pass */
    memset(&r, 0, sizeof(r));
    r.status = 500;
    buf_init(&r.body, SIZE_MAX / 2);
    if (o->auth(o->app, &st->req, &r)) {
        st->authed = true;
        buf_cleanup(&r.body);
        return true;
    }
    if (!(st->refusal = malloc(sizeof(r)))) {
        buf_cleanup(&r.body);
        return false;
    }
    *st->refusal = r; /* takes over its body */
    return true;
}

/* Headers of a streamed-body request are in: authenticate and let the
 * handler begin; a refusal is kept and sent once the body has been read. */
bool server_stream_begin(const struct http_server_opts *o, struct req_state *st,
                         const struct http_route *rt)
{
    struct http_resp *r = calloc(1, sizeof(*r));
    if (!r)
        return false;
    r->status = 500;
    buf_init(&r->body, SIZE_MAX / 2);
    bool needs_auth = (rt->flags & HTTP_ROUTE_AUTH) || under_auth_prefix(o, &st->req);
    if (needs_auth && !o->auth(o->app, &st->req, r)) {
        st->refusal = r;
        return true;
    }
    st->sstate = st->sops->begin(o->app, &st->req, r);
    if (!st->sstate) {
        st->refusal = r;
        return true;
    }
    buf_cleanup(&r->body);
    free(r);
    return true;
}

void server_free_refusal(struct req_state *st)
{
    if (st->refusal) {
        buf_cleanup(&st->refusal->body);
        free(st->refusal);
        st->refusal = NULL;
    }
}
