/*
 * router.c: the flat route table's matching: path templates with {param}
 * segments, and 404 or 405 (with Allow) when no route fits.
 */
#include "router.h"

#include <stdio.h>
#include <string.h>

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decode s[0..n) into out (NUL-terminated); false for a bad escape
 * or an encoded NUL. */
static bool decode_segment(const char *s, size_t n, char *out)
{
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            out[w++] = s[i];
            continue;
        }
        if (i + 2 >= n)
            return false; /* "%" or "%4" at the end */
        int a = hexval(s[i + 1]), b = hexval(s[i + 2]);
        if (a < 0 || b < 0 || (a | b) == 0)
            return false;
        out[w++] = (char)(a << 4 | b);
        i += 2;
    }
    out[w] = '\0';
    return true;
}

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
            /* a parameter is decoded on its own, so "a%2Fb" is one segment "a/b" */
            if (sl == 0 || *n_params >= HTTP_MAX_PARAMS || used + sl + 1 > store_len ||
                !decode_segment(path, sl, store + used))
                return false;
            params[(*n_params)++] = store + used;
            used += strlen(store + used) + 1;
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
        if (!http_route_match(rt->pattern, req->raw_path ? req->raw_path : req->path, params, &n,
                              store, sizeof(store)))
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

const struct http_route *http_route_of(const struct http_route *routes, size_t n_routes,
                                       const char *method, const char *path)
{
    bool head = strcmp(method, "HEAD") == 0;
    for (size_t i = 0; i < n_routes; i++) {
        const struct http_route *rt = &routes[i];
        const char *params[HTTP_MAX_PARAMS];
        size_t n;
        char store[512];
        if ((strcmp(rt->method, method) == 0 || (head && strcmp(rt->method, "GET") == 0)) &&
            http_route_match(rt->pattern, path, params, &n, store, sizeof(store)))
            return rt;
    }
    return NULL;
}
