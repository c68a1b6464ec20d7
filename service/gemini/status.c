/* status.c: Gemini batch states, and google.rpc.Status as Google sends it in error bodies,
 * Operations and failed items. */
#include "gemini/status.h"

#include "gemini/json.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

/* ---- states ---- */

static const char *const state_names[] = {
    "BATCH_STATE_UNSPECIFIED", "BATCH_STATE_PENDING", "BATCH_STATE_RUNNING",
    "BATCH_STATE_SUCCEEDED",   "BATCH_STATE_FAILED",  "BATCH_STATE_CANCELLED",
    "BATCH_STATE_EXPIRED",
};

#define BATCH_PREFIX "BATCH_STATE_"
#define JOB_PREFIX   "JOB_STATE_"

enum gem_state gem_state_parse(const char *s)
{
    if (!s)
        return GEM_STATE_UNSPECIFIED;
    if (strncmp(s, BATCH_PREFIX, strlen(BATCH_PREFIX)) == 0)
        s += strlen(BATCH_PREFIX);
    else if (strncmp(s, JOB_PREFIX, strlen(JOB_PREFIX)) == 0)
        s += strlen(JOB_PREFIX);
    for (size_t i = 0; i < SVC_ARRAY_LEN(state_names); i++)
        if (strcmp(s, state_names[i] + strlen(BATCH_PREFIX)) == 0)
            return (enum gem_state)i;
    return GEM_STATE_UNSPECIFIED;
}

const char *gem_state_name(enum gem_state s)
{
    size_t i = (size_t)s;
    return i < SVC_ARRAY_LEN(state_names) ? state_names[i] : state_names[0];
}

bool gem_state_terminal(enum gem_state s)
{
    return s == GEM_STATE_SUCCEEDED || s == GEM_STATE_FAILED || s == GEM_STATE_CANCELLED ||
           s == GEM_STATE_EXPIRED;
}

/* ---- google.rpc.Status ---- */

void gem_status_init(struct gem_status *st)
{
    memset(st, 0, sizeof(*st));
    st->retry_delay_ms = -1;
}

/* "37s", "5.026807431s" → milliseconds rounded up; -1 if malformed. Exact decimal
 * arithmetic: "0.007s" is 7 ms, not 8. */
static int64_t duration_text_ms(const char *s)
{
    const int64_t max_s = INT64_MAX / 1000 - 1;
    int64_t secs = 0, ms = 0;
    const char *p = s;
    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (secs > (max_s - 9) / 10)
            return -1;
        secs = secs * 10 + (*p - '0');
    }
    if (*p == '.') {
        int digits = 0;
        bool rest = false; /* non-zero digits past the millisecond */
        for (p++; *p >= '0' && *p <= '9'; p++, digits++) {
            if (digits < 3)
                ms = ms * 10 + (*p - '0');
            else
                rest = rest || *p != '0';
        }
        if (digits == 0)
            return -1;
        for (int d = digits; d < 3; d++)
            ms *= 10;
        ms += rest;
    }
    if (strcmp(p, "s") != 0)
        return -1;
    return secs * 1000 + ms;
}

/* A Duration: proto3 JSON text, or {"seconds":..,"nanos":..} as some encoders send it. */
static int64_t duration_ms(json_object *v)
{
    const char *s = gem_json_str_of(v);
    if (s)
        return duration_text_ms(s);
    if (!gem_json_is_obj(v))
        return -1;
    int64_t secs = gem_json_i64_or(gem_json_dig(v, "seconds", NULL), 0),
            nanos = gem_json_i64_or(gem_json_dig(v, "nanos", NULL), 0);
    if (secs < 0 || secs > INT64_MAX / 1000 - 1 || nanos < 0 || nanos > 999999999)
        return -1;
    return secs * 1000 + (nanos + 999999) / 1000000;
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static void parse_details(json_object *details, struct gem_status *st)
{
    if (!details || !json_object_is_type(details, json_type_array))
        return;
    size_t n = json_object_array_length(details);
    for (size_t i = 0; i < n; i++) {
        json_object *d = json_object_array_get_idx(details, i);
        const char *type = gem_json_str_of(gem_json_dig(d, "@type", NULL));
        if (!type)
            continue;
        if (has_suffix(type, "google.rpc.RetryInfo") && st->retry_delay_ms < 0)
            st->retry_delay_ms = duration_ms(gem_json_dig(d, "retryDelay", NULL));
        else if (has_suffix(type, "google.rpc.ErrorInfo") && !st->reason[0])
            gem_json_copy_str(st->reason, sizeof(st->reason), gem_json_dig(d, "reason", NULL));
    }
}

/* Fill st from a Status object e (st already initialised). */
void gem_status_parse(json_object *e, struct gem_status *st)
{
    int64_t code = gem_json_i64_or(gem_json_dig(e, "code", NULL), 0);
    st->code = code > INT_MAX ? INT_MAX : code < INT_MIN ? INT_MIN : (int)code;
    gem_json_copy_str(st->status, sizeof(st->status), gem_json_dig(e, "status", NULL));
    gem_json_copy_str(st->message, sizeof(st->message), gem_json_dig(e, "message", NULL));
    parse_details(gem_json_dig(e, "details", NULL), st);
}

void gem_parse_error(const char *body, size_t len, int http, struct gem_status *st)
{
    gem_status_init(st);
    st->code = http;
    json_object *root = gem_json_parse_body(body, len, NULL, 0);
    json_object *top = root;
    /* some Google front ends wrap the body in an array */
    if (top && json_object_is_type(top, json_type_array) && json_object_array_length(top) > 0)
        top = json_object_array_get_idx(top, 0);
    json_object *e = gem_json_dig(top, "error", NULL);
    if (gem_json_is_obj(e)) {
        gem_status_parse(e, st);
        if (http != 0 || st->code == 0)
            st->code = http;
    } else if (gem_json_str_of(e)) {
        gem_json_copy_str(st->message, sizeof(st->message), e);
    }
    if (!st->message[0])
        snprintf(st->message, sizeof(st->message), "HTTP %d", http);
    json_object_put(root);
}
