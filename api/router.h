/*
 * router.h: matching a request against the route table (router.c).
 */
#ifndef API_ROUTER_H
#define API_ROUTER_H

#include "http.h"

#include <stdbool.h>
#include <stddef.h>

/* Match path against a route pattern; fills params (copies into store).
 * Exposed for unit tests. */
bool http_route_match(const char *pattern, const char *path, const char **params, size_t *n_params,
                      char *store, size_t store_len);

/* The route of req among routes, with req's path parameters filled in; NULL
 * with resp filled (404, or 405 with Allow) when none fits. HEAD matches a
 * GET route. */
const struct http_route *http_route_find(const struct http_route *routes, size_t n_routes,
                                         struct http_req *req, struct http_resp *resp);

/* The route a request (method, path as sent) goes to, or NULL; fills nothing.
 * For naming a request after the fact (metrics). */
const struct http_route *http_route_of(const struct http_route *routes, size_t n_routes,
                                       const char *method, const char *path);

#endif
