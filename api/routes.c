/* routes.c: the route table; it mirrors the paths in openapi.yaml. */
#include "api.h"

const struct http_route api_routes[] = {
    {"GET", "/healthz", api_healthz, 0},
    {"GET", "/readyz", api_readyz, 0},
};

const size_t api_routes_count = sizeof(api_routes) / sizeof(api_routes[0]);
