/* routes.c: the route table; it mirrors the paths in openapi.yaml. */
#include "api.h"

/* POST /v1/jobs: a JSON body (also without Content-Type) or NDJSON, both streamed */
static const struct http_body_stream *const jobs_create_streams[] = {&api_jobs_create_json,
                                                                     &api_jobs_create_ndjson, NULL};

/* POST /v1/collections/{id}/estimate: a job's JSON body, streamed */
static const struct http_body_stream *const estimate_streams[] = {&api_collection_estimate_json,
                                                                  NULL};

const struct http_route api_routes[] = {
    {"GET", "/healthz", api_healthz, 0, NULL},
    {"GET", "/readyz", api_readyz, 0, NULL},
    {"GET", "/", api_ui_index, 0, NULL},
    {"GET", "/ui/{file}", api_ui_file, 0, NULL},
    {"POST", "/v1/jobs", api_jobs_create, HTTP_ROUTE_AUTH, jobs_create_streams},
    {"GET", "/v1/jobs", api_jobs_list, HTTP_ROUTE_AUTH, NULL},
    {"GET", "/v1/jobs/{id}", api_jobs_get, HTTP_ROUTE_AUTH, NULL},
    {"GET", "/v1/jobs/{id}/results", api_jobs_results, HTTP_ROUTE_AUTH, NULL},
    {"GET", "/v1/jobs/{id}/events", api_jobs_events, HTTP_ROUTE_AUTH, NULL},
    {"GET", "/v1/jobs/{id}/batches", api_jobs_batches, HTTP_ROUTE_AUTH, NULL},
    {"GET", "/v1/jobs/{id}/webhooks", api_jobs_webhooks, HTTP_ROUTE_AUTH, NULL},
    {"POST", "/v1/jobs/{id}/cancel", api_jobs_cancel, HTTP_ROUTE_AUTH, NULL},
    {"DELETE", "/v1/jobs/{id}", api_jobs_delete, HTTP_ROUTE_AUTH, NULL},
    {"GET", "/v1/usage", api_usage, HTTP_ROUTE_AUTH, NULL},
    {"POST", "/v1/collections", api_collections_create, HTTP_ROUTE_AUTH, NULL},
    {"GET", "/v1/collections", api_collections_list, HTTP_ROUTE_AUTH, NULL},
    {"GET", "/v1/collections/{id}", api_collections_get, HTTP_ROUTE_AUTH, NULL},
    {"DELETE", "/v1/collections/{id}", api_collections_delete, HTTP_ROUTE_AUTH, NULL},
    {"GET", "/v1/collections/{id}/documents", api_collection_docs_list, HTTP_ROUTE_AUTH, NULL},
    {"GET", "/v1/collections/{id}/vectors", api_collection_vectors, HTTP_ROUTE_AUTH, NULL},
    {"GET", "/v1/collections/{id}/documents/{doc_id}", api_collection_doc_get, HTTP_ROUTE_AUTH,
     NULL},
    {"DELETE", "/v1/collections/{id}/documents/{doc_id}", api_collection_doc_delete,
     HTTP_ROUTE_AUTH, NULL},
    {"POST", "/v1/collections/{id}/estimate", api_collection_estimate, HTTP_ROUTE_AUTH,
     estimate_streams},
    {"POST", "/v1/collections/{id}/query", api_collection_query, HTTP_ROUTE_AUTH, NULL},
    {"POST", "/v1/embed", api_embed, HTTP_ROUTE_AUTH, NULL},
};

const size_t api_routes_count = sizeof(api_routes) / sizeof(api_routes[0]);

/* The metrics listener's own table (--metrics-listen): no authentication; it
 * is meant for an address only the scraper reaches (README, Metrics). */
const struct http_route api_metrics_routes[] = {
    {"GET", "/metrics", api_metrics, 0, NULL},
};

const size_t api_metrics_routes_count = sizeof(api_metrics_routes) / sizeof(api_metrics_routes[0]);
