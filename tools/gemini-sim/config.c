/*
 * config.c: one table of settings drives the command-line flags, --help,
 * and the JSON of GET/PUT /_sim/config.
 */
#include "sim.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum opt_type { OPT_INT, OPT_DOUBLE, OPT_BOOL, OPT_STR };

struct opt {
    const char *name; /* JSON name; the flag is --name with '_' as '-' */
    enum opt_type type;
    size_t off;      /* offset in struct sim_config */
    size_t size;     /* OPT_STR: buffer size */
    double min, max; /* OPT_INT / OPT_DOUBLE bounds */
    bool runtime;    /* part of struct sim_settings: settable through /_sim/config */
    const char *help;
};

#define CFG(f) offsetof(struct sim_config, f)
#define SET(f) offsetof(struct sim_config, s.f)
#define SZ(f)  sizeof(((struct sim_config *)0)->f)
#define SSZ(f) sizeof(((struct sim_config *)0)->s.f)
#define I64MAX 9.2e18

static const struct opt opts[] = {
    {"host", OPT_STR, CFG(host), SZ(host), 0, 0, false, "address to listen on (default 127.0.0.1)"},
    {"port", OPT_INT, CFG(port), 0, 0, 65535, false, "TCP port; 0 picks a free one (default 8089)"},
    {"port_file", OPT_STR, CFG(port_file), SZ(port_file), 0, 0, false,
     "write the bound port to this file once listening"},
    {"api_key", OPT_STR, CFG(api_key), SZ(api_key), 0, 0, false,
     "the only accepted API key (default $GEMINI_SIM_API_KEY, else \"sim-key\")"},
    {"max_body_bytes", OPT_INT, CFG(max_body_bytes), 0, 1, I64MAX, false,
     "largest request body of any kind, file uploads included (default 2 GiB)"},
    {"max_connections", OPT_INT, CFG(max_connections), 0, 1, 100000, false,
     "concurrent connections (default 512)"},
    {"log_requests", OPT_BOOL, CFG(log_requests), 0, 0, 0, false,
     "log one line per request to stderr"},
    {"seed", OPT_INT, SET(seed), 0, 0, I64MAX, true,
     "seed for ids and every fault decision (default 1)"},
    {"pending_ms", OPT_INT, SET(pending_ms), 0, 0, I64MAX, true,
     "time a new batch stays BATCH_STATE_PENDING (default 1000)"},
    {"running_ms", OPT_INT, SET(running_ms), 0, 0, I64MAX, true,
     "base time a batch stays BATCH_STATE_RUNNING (default 2000)"},
    {"per_request_us", OPT_INT, SET(per_request_us), 0, 0, I64MAX, true,
     "extra RUNNING time per request in a batch, microseconds (default 0)"},
    {"max_request_bytes", OPT_INT, SET(max_request_bytes), 0, 1, I64MAX, true,
     "largest JSON request body, e.g. an inline batch (default 20971520 = 20 MiB)"},
    {"max_input_tokens", OPT_INT, SET(max_input_tokens), 0, 0, I64MAX, true,
     "token limit per text for every model; 0 (default): each model's own, 2048 for\n"
     "        gemini-embedding-001 (longer texts fail) and 8192 for gemini-embedding-2\n"
     "        (longer texts are cut to the limit, as Google documents)"},
    {"long_input_error", OPT_BOOL, SET(long_input_error), 0, 0, 0, true,
     "gemini-embedding-2 refuses over-long texts with gemini-embedding-001's 400\n"
     "        instead of cutting them (default off)"},
    {"strict_task_fields", OPT_BOOL, SET(strict_task_fields), 0, 0, 0, true,
     "refuse (400 INVALID_ARGUMENT, the simulator's own wording) taskType or title sent\n"
     "        to gemini-embedding-2, which ignores them at Google; off (default): accept,\n"
     "        ignore and count them in task_fields_ignored"},
    {"item_error_rate", OPT_DOUBLE, SET(item_error_rate), 0, 0, 1, true,
     "fraction of batch items that fail with item_error_code (default 0)"},
    {"item_error_code", OPT_INT, SET(item_error_code), 0, 1, 16, true,
     "google.rpc.Code of injected item errors: 3, 4, 8, 13, 14... (default 13)"},
    {"fail_marker", OPT_STR, SET(fail_marker), SSZ(fail_marker), 0, 0, true,
     "items whose text contains this string always fail (default off)"},
    {"batch_fail_rate", OPT_DOUBLE, SET(batch_fail_rate), 0, 0, 1, true,
     "fraction of batches that end BATCH_STATE_FAILED (default 0)"},
    {"batch_expire_rate", OPT_DOUBLE, SET(batch_expire_rate), 0, 0, 1, true,
     "fraction of batches that end BATCH_STATE_EXPIRED (default 0)"},
    {"batch_stuck_rate", OPT_DOUBLE, SET(batch_stuck_rate), 0, 0, 1, true,
     "fraction of batches that stay RUNNING until cancelled (default 0)"},
    {"http_error_rate", OPT_DOUBLE, SET(http_error_rate), 0, 0, 1, true,
     "fraction of in-scope requests answered with http_error_code (default 0)"},
    {"http_error_count", OPT_INT, SET(http_error_count), 0, 0, I64MAX, true,
     "answer the next N in-scope requests with http_error_code (default 0)"},
    {"http_error_code", OPT_INT, SET(http_error_code), 0, 400, 599, true,
     "status of injected errors: 429, 500 or 503 (default 429)"},
    {"retry_delay", OPT_STR, SET(retry_delay), SSZ(retry_delay), 0, 0, true,
     "RetryInfo.retryDelay sent with injected 429s, e.g. \"2s\" (default none)"},
    {"fault_scope", OPT_STR, SET(fault_scope), SSZ(fault_scope), 0, 0, true,
     "route classes HTTP faults apply to: all, or a comma list of create, get, list,\n"
     "        cancel, delete, sync, upload, files, download (default all)"},
    {"latency_ms", OPT_INT, SET(latency_ms), 0, 0, 600000, true,
     "added latency per in-scope request (default 0)"},
    {"latency_rate", OPT_DOUBLE, SET(latency_rate), 0, 0, 1, true,
     "fraction of in-scope requests that get latency_ms (default 1)"},
    {"drop_rate", OPT_DOUBLE, SET(drop_rate), 0, 0, 1, true,
     "fraction of in-scope responses cut off half-way by closing the connection"},
    {"drop_count", OPT_INT, SET(drop_count), 0, 0, I64MAX, true,
     "cut off the next N in-scope responses"},
    {"malformed_rate", OPT_DOUBLE, SET(malformed_rate), 0, 0, 1, true,
     "fraction of in-scope 200 responses whose JSON body is truncated"},
    {"malformed_count", OPT_INT, SET(malformed_count), 0, 0, I64MAX, true,
     "truncate the next N in-scope 200 responses"},
    {"shuffle", OPT_BOOL, SET(shuffle), 0, 0, 0, true,
     "return inline results and output-file lines in a seeded random order"},
    {"omit_metadata", OPT_BOOL, SET(omit_metadata), 0, 0, 0, true,
     "leave out the per-item metadata echo in inline results"},
    {"inline_as_file", OPT_BOOL, SET(inline_as_file), 0, 0, 0, true,
     "answer inline batches with a responsesFile (files/batch-<id>) instead of\n"
     "        inlinedResponses, as reported in bifrost#3951 (default off)"},
    {"upload_cut_rate", OPT_DOUBLE, SET(upload_cut_rate), 0, 0, 1, true,
     "fraction of upload pieces cut off after part of their bytes arrived (default 0)"},
    {"upload_cut_count", OPT_INT, SET(upload_cut_count), 0, 0, I64MAX, true,
     "cut off the next N upload pieces: the session keeps upload_cut_keep of the\n"
     "        piece's bytes and the client must query its offset and resume"},
    {"upload_cut_keep", OPT_DOUBLE, SET(upload_cut_keep), 0, 0, 1, true,
     "fraction of a cut-off piece's bytes the session keeps (default 0.5)"},
    {"upload_cut_status", OPT_INT, SET(upload_cut_status), 0, 0, 599, true,
     "how a cut-off piece ends: 0 closes the connection unanswered (default), or an\n"
     "        HTTP status of 400-599 to answer with, e.g. 503"},
    {"upload_granularity", OPT_INT, SET(upload_granularity), 0, 1, 1073741824, true,
     "X-Goog-Upload-Chunk-Granularity sent when an upload starts (default 8388608);\n"
     "        advertised, not enforced"},
};

void sim_config_defaults(struct sim_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->host, sizeof(cfg->host), "127.0.0.1");
    cfg->port = 8089;
    const char *key = getenv("GEMINI_SIM_API_KEY");
    snprintf(cfg->api_key, sizeof(cfg->api_key), "%s", key && *key ? key : "sim-key");
    cfg->max_body_bytes = (int64_t)2 << 30;
    cfg->max_connections = 512;
    struct sim_settings *s = &cfg->s;
    s->seed = 1;
    s->pending_ms = 1000;
    s->running_ms = 2000;
    s->max_request_bytes = 20971520;
    s->max_input_tokens = 0; /* each model's own limit */
    s->item_error_code = 13;
    s->http_error_code = 429;
    snprintf(s->fault_scope, sizeof(s->fault_scope), "all");
    s->latency_rate = 1.0;
    s->upload_cut_keep = 0.5;
    s->upload_granularity = 8388608;
}

static const char *const scope_classes[] = {"create", "get",    "list",  "cancel",  "delete",
                                            "sync",   "upload", "files", "download"};

bool sim_scope_has(const char *scope, const char *cls)
{
    size_t n = strlen(cls);
    const char *p = scope;
    while (*p) {
        while (*p == ',' || *p == ' ')
            p++;
        const char *e = p;
        while (*e && *e != ',' && *e != ' ')
            e++;
        if ((size_t)(e - p) == 3 && strncmp(p, "all", 3) == 0)
            return true;
        if ((size_t)(e - p) == n && strncmp(p, cls, n) == 0)
            return true;
        p = e;
    }
    return false;
}

static bool scope_valid(const char *scope)
{
    const char *p = scope;
    bool any = false;
    while (*p) {
        while (*p == ',' || *p == ' ')
            p++;
        const char *e = p;
        while (*e && *e != ',' && *e != ' ')
            e++;
        if (e == p)
            break;
        bool ok = (e - p == 3 && strncmp(p, "all", 3) == 0);
        for (size_t i = 0; !ok && i < sizeof(scope_classes) / sizeof(scope_classes[0]); i++)
            ok = strlen(scope_classes[i]) == (size_t)(e - p) &&
                 strncmp(p, scope_classes[i], (size_t)(e - p)) == 0;
        if (!ok)
            return false;
        any = true;
        p = e;
    }
    return any;
}

static bool duration_valid(const char *d)
{
    if (!*d)
        return true;
    char *end;
    errno = 0;
    double v = strtod(d, &end);
    return errno == 0 && end != d && v >= 0 && strcmp(end, "s") == 0;
}

/* Validate-and-store one value given as text (flags) into base. */
static bool opt_set_text(const struct opt *o, char *base, const char *val, char *err, size_t errlen)
{
    void *dst = base + o->off;
    char *end;
    errno = 0;
    switch (o->type) {
    case OPT_INT: {
        long long v = strtoll(val, &end, 10);
        if (errno || end == val || *end || (double)v < o->min || (double)v > o->max) {
            snprintf(err, errlen, "%s: expected an integer in [%.0f, %.0f], got \"%s\"", o->name,
                     o->min, o->max, val);
            return false;
        }
        if (o->off == SET(upload_cut_status) && v != 0 && v < 400) {
            snprintf(err, errlen, "%s: expected 0 or an HTTP status in [400, 599], got \"%s\"",
                     o->name, val);
            return false;
        }
        if (o->off == CFG(port))
            *(int *)dst = (int)v;
        else if (o->off == SET(seed))
            *(uint64_t *)dst = (uint64_t)v;
        else
            *(int64_t *)dst = v;
        return true;
    }
    case OPT_DOUBLE: {
        double v = strtod(val, &end);
        if (errno || end == val || *end || v < o->min || v > o->max) {
            snprintf(err, errlen, "%s: expected a number in [%g, %g], got \"%s\"", o->name, o->min,
                     o->max, val);
            return false;
        }
        *(double *)dst = v;
        return true;
    }
    case OPT_BOOL:
        if (strcmp(val, "true") == 0 || strcmp(val, "1") == 0) {
            *(bool *)dst = true;
        } else if (strcmp(val, "false") == 0 || strcmp(val, "0") == 0) {
            *(bool *)dst = false;
        } else {
            snprintf(err, errlen, "%s: expected true or false, got \"%s\"", o->name, val);
            return false;
        }
        return true;
    case OPT_STR:
        if (strlen(val) >= o->size) {
            snprintf(err, errlen, "%s: value longer than %zu bytes", o->name, o->size - 1);
            return false;
        }
        if (o->off == SET(fault_scope) && !scope_valid(val)) {
            snprintf(err, errlen, "fault_scope: \"%s\" is not a list of route classes", val);
            return false;
        }
        if (o->off == SET(retry_delay) && !duration_valid(val)) {
            snprintf(err, errlen, "retry_delay: \"%s\" is not a duration like \"2s\"", val);
            return false;
        }
        memcpy(dst, val, strlen(val) + 1);
        return true;
    }
    return false;
}

static const struct opt *opt_find_flag(const char *flag, size_t n)
{
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
        const char *nm = opts[i].name;
        if (strlen(nm) != n)
            continue;
        size_t j = 0;
        while (j < n && (flag[j] == nm[j] || (flag[j] == '-' && nm[j] == '_')))
            j++;
        if (j == n)
            return &opts[i];
    }
    return NULL;
}

static void print_help(void)
{
    printf("usage: gemini-sim [--flag value]...\n\n"
           "A local simulator of Google's Gemini embedding API (async batches, sync\n"
           "embedding, Files API) under /v1/ and /v1beta/, with deterministic vectors,\n"
           "scripted batch timing and injectable faults. Control API under /_sim/:\n"
           "GET /_sim/stats, POST /_sim/reset, GET|PUT /_sim/config (runtime flags).\n\n"
           "flags (runtime ones marked *, settable via PUT /_sim/config as JSON):\n");
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
        char flag[64];
        size_t j;
        for (j = 0; opts[i].name[j] && j + 1 < sizeof(flag); j++)
            flag[j] = opts[i].name[j] == '_' ? '-' : opts[i].name[j];
        flag[j] = '\0';
        const char *arg = opts[i].type == OPT_BOOL     ? ""
                          : opts[i].type == OPT_STR    ? " STR"
                          : opts[i].type == OPT_DOUBLE ? " RATE"
                                                       : " N";
        printf("  %c --%s%s\n        %s\n", opts[i].runtime ? '*' : ' ', flag, arg, opts[i].help);
    }
    printf("    --help\n        print this help\n    --version\n        print the version\n");
}

int sim_config_parse_args(struct sim_config *cfg, int argc, char **argv)
{
    char err[256];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            print_help();
            return 1;
        }
        if (strcmp(a, "--version") == 0) {
            printf("gemini-sim 0.1.0\n");
            return 1;
        }
        if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "gemini-sim: unexpected argument \"%s\" (see --help)\n", a);
            return -1;
        }
        a += 2;
        const char *eq = strchr(a, '=');
        size_t n = eq ? (size_t)(eq - a) : strlen(a);
        const struct opt *o = opt_find_flag(a, n);
        if (!o) {
            fprintf(stderr, "gemini-sim: unrecognized flag \"--%.*s\" (see --help)\n", (int)n, a);
            return -1;
        }
        const char *val = eq ? eq + 1 : NULL;
        if (!val && o->type == OPT_BOOL) {
            val = "true";
        } else if (!val) {
            if (i + 1 >= argc) {
                fprintf(stderr, "gemini-sim: flag \"--%.*s\" needs a value\n", (int)n, a);
                return -1;
            }
            val = argv[++i];
        }
        if (!opt_set_text(o, (char *)cfg, val, err, sizeof(err))) {
            fprintf(stderr, "gemini-sim: %s\n", err);
            return -1;
        }
    }
    return 0;
}

json_object *sim_settings_to_json(const struct sim_settings *s)
{
    json_object *o = json_object_new_object();
    const char *base = (const char *)s - offsetof(struct sim_config, s);
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
        const struct opt *op = &opts[i];
        if (!op->runtime)
            continue;
        const void *p = base + op->off;
        json_object *v = NULL;
        switch (op->type) {
        case OPT_INT:
            v = json_object_new_int64(op->off == SET(seed) ? (int64_t) * (const uint64_t *)p
                                                           : *(const int64_t *)p);
            break;
        case OPT_DOUBLE:
            v = json_object_new_double(*(const double *)p);
            break;
        case OPT_BOOL:
            v = json_object_new_boolean(*(const bool *)p);
            break;
        case OPT_STR:
            v = json_object_new_string((const char *)p);
            break;
        }
        json_object_object_add(o, op->name, v);
    }
    return o;
}

bool sim_settings_apply_json(struct sim_settings *s, json_object *o, char *err, size_t errlen)
{
    if (!json_object_is_type(o, json_type_object)) {
        snprintf(err, errlen, "body must be a JSON object of settings");
        return false;
    }
    struct sim_config tmp;
    memset(&tmp, 0, sizeof(tmp));
    tmp.s = *s;
    json_object_object_foreach(o, key, val)
    {
        const struct opt *op = NULL;
        for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
            if (opts[i].runtime && strcmp(opts[i].name, key) == 0)
                op = &opts[i];
        if (!op) {
            snprintf(err, errlen, "unrecognized setting \"%s\"", key);
            return false;
        }
        char text[256];
        enum json_type t = json_object_get_type(val);
        bool type_ok = (op->type == OPT_STR && t == json_type_string) ||
                       (op->type == OPT_BOOL && t == json_type_boolean) ||
                       (op->type == OPT_INT && t == json_type_int) ||
                       (op->type == OPT_DOUBLE && (t == json_type_int || t == json_type_double));
        if (!type_ok) {
            snprintf(err, errlen, "%s: wrong type", key);
            return false;
        }
        if (op->type == OPT_STR)
            snprintf(text, sizeof(text), "%s", json_object_get_string(val));
        else if (op->type == OPT_BOOL)
            snprintf(text, sizeof(text), "%s", json_object_get_boolean(val) ? "true" : "false");
        else if (op->type == OPT_INT)
            snprintf(text, sizeof(text), "%lld", (long long)json_object_get_int64(val));
        else
            snprintf(text, sizeof(text), "%.17g", json_object_get_double(val));
        if (!opt_set_text(op, (char *)&tmp, text, err, errlen))
            return false;
    }
    *s = tmp.s;
    return true;
}
