/*
 * status.h: the states of a Gemini batch, and google.rpc.Status, the shape
 * of every error Google reports (an error body, an Operation's error, a
 * failed item).
 */
#ifndef SVC_GEMINI_STATUS_H
#define SVC_GEMINI_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum gem_state {
    GEM_STATE_UNSPECIFIED = 0,
    GEM_STATE_PENDING,
    GEM_STATE_RUNNING,
    GEM_STATE_SUCCEEDED,
    GEM_STATE_FAILED,
    GEM_STATE_CANCELLED,
    GEM_STATE_EXPIRED
};

/* "BATCH_STATE_RUNNING", "JOB_STATE_RUNNING" or "RUNNING"; UNSPECIFIED if unknown. */
enum gem_state gem_state_parse(const char *s);
const char *gem_state_name(enum gem_state s); /* "BATCH_STATE_..." */
bool gem_state_terminal(enum gem_state s);

/* A google.rpc.Status (an error body, an Operation's error, an item error). */
struct gem_status {
    int code;               /* HTTP status for error bodies; google.rpc.Code otherwise; 0 = none */
    char status[32];        /* e.g. "RESOURCE_EXHAUSTED"; "" if absent */
    char message[512];      /* truncated if longer */
    char reason[64];        /* ErrorInfo.reason, e.g. "API_KEY_INVALID"; "" if absent */
    int64_t retry_delay_ms; /* RetryInfo.retryDelay ("37s", "5.026807431s"); -1 if absent */
};

/* Parse a non-2xx body ({"error":{code,message,status,details}}). Always
 * fills st (code = http, message from the body when it parses). */
void gem_parse_error(const char *body, size_t len, int http, struct gem_status *st);

/* For the parsers of gemini/response.c. */
struct json_object;
/* No error: code 0, empty texts, retry_delay_ms -1. */
void gem_status_init(struct gem_status *st);
/* Fill st from a Status object e (borrowed; st already initialised). */
void gem_status_parse(struct json_object *e, struct gem_status *st);

#endif
