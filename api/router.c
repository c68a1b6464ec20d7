/*
 * router.c: the flat route table's matching: path templates with {param}
 * segments, and 404 or 405 (with Allow) when no route fits.
 */
#include "router.h"

#include <stdio.h>
#include <string.h>

bool http_route_match(const char *pattern, const char *path, const char **params, size_t *n_params,
                      char *store, size_t store_len)
{
    size_t used = 0;
    *n_params = 0;
    while (*pattern && *path) {
        if (*pattern != '/' || *path != '/')
            return false;
        pattern++;
        path++;
        const char *pe = strchr(pattern, '/'), *se = strchr(path, '/');
        size_t pl = pe ? (size_t)(pe - pattern) : strlen(pattern);
        size_t sl = se ? (size_t)(se - path) : strlen(path);
        if (pl > 1 && pattern[0] == '{' && pattern[pl - 1] == '}') {
            if (sl == 0 || *n_params >= HTTP_MAX_PARAMS || used + sl + 1 > store_len)
                return false;
            memcpy(store + used, path, sl);
            store[used + sl] = '\0';
            params[(*n_params)++] = store + used;
            used += sl + 1;
        } else if (pl != sl || strncmp(pattern, path, pl) != 0) {
            return false;
        }
        pattern += pl;
        path += sl;
    }
    return *pattern == '\0' && *path == '\0';
}

/* Find the route; 404 or 405 (with Allow) when none fits. */
const struct http_route *http_route_find(const struct http_route *routes, size_t n_routes,
                                         struct http_req *req, struct http_resp *resp)
{
    char allow[128] = "";
    bool path_known = false;
    for (size_t i = 0; i < n_routes; i++) {
        const struct http_route *rt = &routes[i];
        const char *params[HTTP_MAX_PARAMS];
        size_t n;
        char store[sizeof(req->param_store_)];
        if (!http_route_match(rt->pattern, req->path, params, &n, store, sizeof(store)))
            continue;
        /* HEAD is GET without the body (libmicrohttpd leaves the body out) */
        bool head = strcmp(req->method, "HEAD") == 0 && strcmp(rt->method, "GET") == 0;
        if (head || strcmp(rt->method, req->method) == 0) {
            memcpy(req->param_store_, store, sizeof(store));
            for (size_t k = 0; k < n; k++)
                req->params[k] = req->param_store_ + (params[k] - store);
            req->n_params = n;
            return rt;
        }
        path_known = true;
        if (!strstr(allow, rt->method)) {
            size_t l = strlen(allow);
            snprintf(allow + l, sizeof(allow) - l, "%s%s%s", l ? ", " : "", rt->method,
                     strcmp(rt->method, "GET") == 0 ? ", HEAD" : "");
        }
    }
    if (path_known) {
        http_resp_header(resp, "Allow", allow);
        http_problem(resp, req, 405, "method_not_allowed", NULL,
                     "%s is not allowed on %s; allowed: %s", req->method, req->path, allow);
    } else {
        http_problem(resp, req, 404, "not_found", NULL, "no resource at %s", req->path);
    }
    return NULL;
}
