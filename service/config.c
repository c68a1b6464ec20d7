/* config.c: the settings table behind config.h. */
#include "config.h"

#include "log.h"
#include "util/crypto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum setting_type { SET_STR, SET_INT };

struct setting {
    const char *flag; /* without the leading "--" */
    const char *env;
    enum setting_type type;
    size_t off;
    size_t size; /* SET_STR: buffer size */
    int64_t min, max;
    const char *def;
    bool secret;
    const char *help;
};

#define STR(f) SET_STR, offsetof(struct config, f), sizeof(((struct config *)0)->f), 0, 0
#define INT(f) SET_INT, offsetof(struct config, f), 0
#define BIG    INT64_C(1) << 50

static const struct setting settings[] = {
    {"database-url", "DATABASE_URL", STR(database_url), "postgresql:///embedd", true,
     "PostgreSQL connection URI"},
    {"gemini-api-key", "GEMINI_API_KEY", STR(gemini_api_key), "", true,
     "Gemini API key (sent as x-goog-api-key)"},
    {"gemini-base-url", "GEMINI_BASE_URL", STR(gemini_base_url),
     "https://generativelanguage.googleapis.com", false, "Gemini API base URL"},
    {"gemini-api-version", "GEMINI_API_VERSION", STR(gemini_api_version), "v1beta", false,
     "Gemini API version path segment (v1beta or v1)"},
    {"listen", "EMBEDD_LISTEN", STR(listen), "127.0.0.1:8080", false, "HTTP listen address"},
    {"metrics-listen", "EMBEDD_METRICS_LISTEN", STR(metrics_listen), "", false,
     "serve GET /metrics (Prometheus text, no authentication) on this host:port, apart from the "
     "API, for an address only the scraper reaches (empty: not served; port 0 picks one, written "
     "on the port file's second line)"},
    {"workers", "EMBEDD_WORKERS", INT(workers), 1, 256, "4", false, "worker threads"},
    {"http-threads", "EMBEDD_HTTP_THREADS", INT(http_threads), 1, 256, "4", false,
     "HTTP server threads; a request waits on PostgreSQL on its thread, so more threads than "
     "cores keep the cores busy (on 2 cores, 4 served 23% more status polls than 2)"},
    {"db-pool-size", "EMBEDD_DB_POOL_SIZE", INT(db_pool_size), 0, 1024, "0", false,
     "PostgreSQL connections (0: http-threads + workers + webhook-threads + 2)"},
    {"poll-min-ms", "EMBEDD_POLL_MIN_MS", INT(poll_min_ms), 1, BIG, "30000", false,
     "first interval between polls of a Google batch"},
    {"poll-max-ms", "EMBEDD_POLL_MAX_MS", INT(poll_max_ms), 1, BIG, "300000", false,
     "longest interval between polls (backoff cap)"},
    {"lease-ms", "EMBEDD_LEASE_MS", INT(lease_ms), 100, BIG, "120000", false,
     "how long a claimed batch stays leased to one worker; Google calls time out at half of it"},
    {"max-attempts", "EMBEDD_MAX_ATTEMPTS", INT(max_attempts), 1, 100, "4", false,
     "tries per chunk before it fails for good"},
    {"batch-max-bytes", "EMBEDD_BATCH_MAX_BYTES", INT(batch_max_bytes), 1024, 20000000, "19000000",
     false, "largest inline batch request body (Google's limit is 20 MB)"},
    {"batch-max-requests", "EMBEDD_BATCH_MAX_REQUESTS", INT(batch_max_requests), 1, 1000000,
     "10000", false, "most chunks in one inline batch (a larger batch travels as a file)"},
    {"sync-max-texts", "EMBEDD_SYNC_MAX_TEXTS", INT(sync_max_texts), 0, 100000, "99", false,
     "jobs with at most this many chunks use the interactive API (0: never)"},
    {"batch-deadline-ms", "EMBEDD_BATCH_DEADLINE_MS", INT(batch_deadline_ms), 1, BIG, "86400000",
     false, "a Google batch still running after this is cancelled and resubmitted"},
    {"max-open-batches", "EMBEDD_MAX_OPEN_BATCHES", INT(max_open_batches), 0, 1000000, "100", false,
     "most batches open at Google at once, across replicas (Google allows 100 concurrent batches "
     "per project; 0: no limit)"},
    {"batch-inline-max-bytes", "EMBEDD_BATCH_INLINE_MAX_BYTES", INT(batch_inline_max_bytes), 0,
     20000000, "1000000", false,
     "batches whose inline request body would pass this go through the Files API as a JSONL "
     "file (inline bodies stay within batch-max-bytes; 0: every batch a file). Measured "
     "(bench/README.md): with 50 ms per request a file batch is slower below ~0.3 MB (its ~5 "
     "more requests) and faster from ~1.3 MB; at any size it halves the bytes received and holds "
     "a page of results, not the batch's"},
    {"file-batch-max-requests", "EMBEDD_FILE_BATCH_MAX_REQUESTS", INT(file_batch_max_requests), 0,
     1000000, "50000", false,
     "most chunks in one file batch (0: no file batches, every batch inline); fewer, larger "
     "batches cost fewer creates at the same speed (100,000 chunks: 2 batches of 50,000 as fast "
     "as 10 of 10,000); mind the project's enqueued-token quota per batch"},
    {"file-batch-max-bytes", "EMBEDD_FILE_BATCH_MAX_BYTES", INT(file_batch_max_bytes), 1024,
     2000000000, "2000000000", false,
     "largest JSONL file of one file batch (Google's limit is 2 GB)"},
    {"upload-piece-bytes", "EMBEDD_UPLOAD_PIECE_BYTES", INT(upload_piece_bytes), 262144, 1073741824,
     "8388608", false,
     "bytes per request of a resumable upload, a multiple of 256 KiB (a broken piece is resumed "
     "from the offset Google reports)"},
    {"file-janitor-ms", "EMBEDD_FILE_JANITOR_MS", INT(file_janitor_ms), 0, BIG, "600000", false,
     "how often files left at Google by batches that ended (a failed delete, a crash) are looked "
     "for and deleted (0: never)"},
    {"spool-dir", "EMBEDD_SPOOL_DIR", STR(spool_dir), "", false,
     "directory for temporary files, unlinked at once: the JSONL of file batches, and the "
     "documents of a JSON body until its options are known (they may come last; up to "
     "max-body-bytes of disk per request in progress); empty: $TMPDIR, else /tmp"},
    {"max-body-bytes", "EMBEDD_MAX_BODY_BYTES", INT(max_body_bytes), 1024, BIG, "67108864", false,
     "largest accepted request body (larger gets 413), a JSON job's included"},
    {"max-stream-bytes", "EMBEDD_MAX_STREAM_BYTES", INT(max_stream_bytes), 1024, BIG, "8589934592",
     false,
     "largest streamed (application/x-ndjson) request body, the bytes limit of an NDJSON job "
     "(8 GiB: 10,000,000 documents of ~800 bytes); one line of it may hold at most"
     " max-body-bytes"},
    {"openai-file-max-bytes", "EMBEDD_OPENAI_FILE_MAX_BYTES", INT(openai_file_max_bytes), 1024, BIG,
     "209715200", false,
     "largest file uploaded to /openai/v1/files (OpenAI's limit: 200 MB); streamed to a spool "
     "file, then into PostgreSQL, never held in memory"},
    {"openai-batch-max-requests", "EMBEDD_OPENAI_BATCH_MAX_REQUESTS",
     INT(openai_batch_max_requests), 1, 1000000, "50000", false,
     "most requests (lines) in one /openai/v1 batch (OpenAI's limit: 50,000)"},
    {"job-max-documents", "EMBEDD_JOB_MAX_DOCUMENTS", INT(job_max_documents), 1, INT32_MAX,
     "10000000", false,
     "most documents in one job (more: 422 too_many_documents, nothing stored). JSON and NDJSON "
     "bodies alike are stored as they arrive, so memory does not grow with the body; the "
     "duplicate-id check keeps 11 to 21 bytes per document (134 MB at 10,000,000). A JSON body is "
     "bounded by max-body-bytes as well: for larger jobs use NDJSON (max-stream-bytes)"},
    {"job-max-chunks", "EMBEDD_JOB_MAX_CHUNKS", INT(job_max_chunks), 1, INT32_MAX, "100000000",
     false, "most chunks in one job after chunking (more: 422 too_many_chunks, nothing stored)"},
    {"job-max-deletes", "EMBEDD_JOB_MAX_DELETES", INT(job_max_deletes), 0, 10000000, "100000",
     false,
     "most document ids in one job's \"delete\" list (more: 422 out_of_range); the list is held "
     "in memory while the job is stored (~100 bytes per id)"},
    {"max-connections", "EMBEDD_MAX_CONNECTIONS", INT(max_connections), 1, 1000000, "4096", false,
     "most open HTTP connections; more wait in the listen backlog (the file limit is raised to "
     "fit)"},
    {"max-connections-per-ip", "EMBEDD_MAX_CONNECTIONS_PER_IP", INT(max_connections_per_ip), 0,
     1000000, "0", false, "most open HTTP connections from one address (0: no limit)"},
    {"connection-timeout-s", "EMBEDD_CONNECTION_TIMEOUT_S", INT(connection_timeout_s), 1, 86400,
     "30", false, "an HTTP connection with no traffic for this long is closed"},
    {"header-timeout-s", "EMBEDD_HEADER_TIMEOUT_S", INT(header_timeout_s), 0, 3600, "10", false,
     "a request's line and headers must arrive within this (slow clients are cut off; 0: no "
     "limit)"},
    {"shutdown-deadline-ms", "EMBEDD_SHUTDOWN_DEADLINE_MS", INT(shutdown_deadline_ms), 100, BIG,
     "25000", false,
     "on SIGTERM: finish requests and Google calls within this, hand back leases, exit"},
    {"key-cache-ms", "EMBEDD_KEY_CACHE_MS", INT(key_cache_ms), 0, 3600000, "5000", false,
     "remember a verified API key this long (a revoked key works at most this much longer; 0: "
     "check every request)"},
    {"sse-max-clients", "EMBEDD_SSE_MAX_CLIENTS", INT(sse_max_clients), 0, 100000, "1000", false,
     "most job event streams (GET /v1/jobs/{id}/events) open at once on this server; more get "
     "503 with Retry-After. Each is an HTTP connection (within max-connections) but holds no "
     "server thread while it waits (0: the route answers 503)"},
    {"sse-interval-ms", "EMBEDD_SSE_INTERVAL_MS", INT(sse_interval_ms), 50, 60000, "1000", false,
     "how often the watched jobs are read for event streams (one query for all of them); also "
     "the least time between two progress events of one stream"},
    {"sse-heartbeat-s", "EMBEDD_SSE_HEARTBEAT_S", INT(sse_heartbeat_s), 1, 3600, "15", false,
     "an event stream silent this long gets a comment line (keeps proxies from closing it and "
     "finds clients that went away)"},
    {"key-rps", "EMBEDD_KEY_RPS", INT(key_rps), 0, 1000000, "0", false,
     "requests per second each API key may make to this replica (a token bucket per key in each "
     "process: N replicas admit up to N times this); over it: 429 with Retry-After, before the "
     "body is read. `embedd keys limits` overrides it per key (0: no limit)"},
    {"key-burst", "EMBEDD_KEY_BURST", INT(key_burst), 0, 1000000, "0", false,
     "requests a key may make at once before key-rps paces it (the bucket's size; 0: key-rps)"},
    {"key-max-pending-chunks", "EMBEDD_KEY_MAX_PENDING_CHUNKS", INT(key_max_pending_chunks), 0, BIG,
     "0", false,
     "most chunks an API key may have waiting for a vector (pending or in flight, over all "
     "replicas); a job that would pass it is refused with 429 and nothing is stored. `embedd "
     "keys limits` overrides it per key (0: no limit)"},
    {"prices", "EMBEDD_PRICES", STR(prices), "", false,
     "prices for the cost reports, USD per 1M input tokens: model=interactive/batch[,...] (default:"
     " the table in service/models.c, e.g. gemini-embedding-001=0.15/0.075)"},
    {"default-model", "EMBEDD_DEFAULT_MODEL", STR(default_model), "gemini-embedding-001", false,
     "the model of new jobs and collections that name none: gemini-embedding-001 or "
     "gemini-embedding-2 (service/models.c; README \"Models\" says why 001 stays the default)"},
    {"search-memory-mb", "EMBEDD_SEARCH_MEMORY_MB", INT(search_memory_mb), 0, 1 << 24, "1024",
     false,
     "memory for collections held for search (least recently used evicted first); a larger "
     "collection is searched by streaming its vectors from PostgreSQL (0: always stream)"},
    {"search-threads", "EMBEDD_SEARCH_THREADS", INT(search_threads), 1, 64, "2", false,
     "threads that share one large search scan"},
    {"format-threads", "EMBEDD_FORMAT_THREADS", INT(format_threads), 0, 64, "1", false,
     "threads that help the request's own thread write vectors as JSON numbers when results "
     "are read (0: the request's thread alone)"},
    {"query-timeout-ms", "EMBEDD_QUERY_TIMEOUT_MS", INT(query_timeout_ms), 100, 600000, "10000",
     false, "the interactive Google call that embeds query texts gives up after this"},
    {"webhook-threads", "EMBEDD_WEBHOOK_THREADS", INT(webhook_threads), 0, 64, "2", false,
     "threads delivering webhooks from the outbox in this process (0: none here; another "
     "replica delivers)"},
    {"webhook-timeout-ms", "EMBEDD_WEBHOOK_TIMEOUT_MS", INT(webhook_timeout_ms), 100, 300000,
     "15000", false,
     "one webhook attempt at most, connecting (at most 10 s of it) included; a slower receiver "
     "counts as failed"},
    {"webhook-backoff-base-ms", "EMBEDD_WEBHOOK_BACKOFF_BASE_MS", INT(webhook_backoff_base_ms), 1,
     BIG, "5000", false,
     "after a failed attempt the next waits a random time up to this, doubled per failed "
     "attempt (exponential backoff, full jitter), or what a Retry-After asks"},
    {"webhook-backoff-max-ms", "EMBEDD_WEBHOOK_BACKOFF_MAX_MS", INT(webhook_backoff_max_ms), 1, BIG,
     "3600000", false, "the longest wait between two attempts at one webhook"},
    {"webhook-max-age-ms", "EMBEDD_WEBHOOK_MAX_AGE_MS", INT(webhook_max_age_ms), 1, BIG, "86400000",
     false, "a webhook is tried until this long after its event, then given up"},
    {"webhook-poll-ms", "EMBEDD_WEBHOOK_POLL_MS", INT(webhook_poll_ms), 10, 600000, "1000", false,
     "how often an idle delivery thread looks for due webhooks (a new event waits at most this)"},
    {"webhook-allow-private", "EMBEDD_WEBHOOK_ALLOW_PRIVATE", INT(webhook_allow_private), 0, 1, "0",
     false,
     "1: webhooks may go to private, loopback, link-local and other non-public addresses (tests, "
     "closed networks); 0: such URLs are refused when a job names them and such addresses "
     "when a host resolves to them"},
    {"webhook-degraded-threshold", "EMBEDD_WEBHOOK_DEGRADED_THRESHOLD",
     INT(webhook_degraded_threshold), 0, 100, "90", false,
     "job.degraded is sent (once per job) when the percentage of a running job's finished "
     "chunks that succeeded falls below this (0: never); taken when the job is created"},
    {"webhook-degraded-min-chunks", "EMBEDD_WEBHOOK_DEGRADED_MIN_CHUNKS",
     INT(webhook_degraded_min_chunks), 1, 1000000000, "20", false,
     "finished chunks a job needs before job.degraded can fire (one early failure is no trend)"},
    {"webhook-secret-grace-s", "EMBEDD_WEBHOOK_SECRET_GRACE_S", INT(webhook_secret_grace_s), 0,
     31536000, "86400", false,
     "after a rotation the previous webhook secret still signs (a second signature) this long"},
    {"webhook-secret-key", "EMBEDD_WEBHOOK_SECRET_KEY", STR(webhook_secret_key), "", true,
     "base64 of 32 random bytes (openssl rand -base64 32) that seals webhook secrets in the "
     "database with AES-256-GCM; every replica and the keys commands need the same one (empty: "
     "secrets are stored unencrypted)"},
    {"log-level", "EMBEDD_LOG_LEVEL", STR(log_level), "info", false, "error, warn, info or debug"},
    {"log-format", "EMBEDD_LOG_FORMAT", STR(log_format), "text", false,
     "text, or json: one object per line with time, level, message, request_id and job_id"},
    {"port-file", "EMBEDD_PORT_FILE", STR(port_file), "", false,
     "write the bound HTTP port to this file once listening (for port 0); with metrics-listen, "
     "the metrics port follows on a second line"},
};

#define N_SETTINGS (sizeof(settings) / sizeof(settings[0]))

static bool set_value(struct config *cfg, const struct setting *s, const char *val, const char *src,
                      char *err, size_t errlen)
{
    char *dst = (char *)cfg + s->off;
    if (s->type == SET_STR) {
        if (strlen(val) >= s->size) {
            snprintf(err, errlen, "%s: value longer than %zu bytes", src, s->size - 1);
            return false;
        }
        memcpy(dst, val, strlen(val) + 1);
        if (s->off == offsetof(struct config, log_level) && log_level_parse(val) < 0) {
            snprintf(err, errlen, "%s: \"%s\" is not one of error, warn, info, debug", src, val);
            return false;
        }
        if (s->off == offsetof(struct config, log_format) && strcmp(val, "text") != 0 &&
            strcmp(val, "json") != 0) {
            snprintf(err, errlen, "%s: \"%s\" is not text or json", src, val);
            return false;
        }
        return true;
    }
    char *end;
    errno = 0;
    long long v = strtoll(val, &end, 10);
    if (errno || end == val || *end || v < s->min || v > s->max) {
        snprintf(err, errlen, "%s: expected an integer in [%lld, %lld], got \"%s\"", src,
                 (long long)s->min, (long long)s->max, s->secret ? "****" : val);
        return false;
    }
    *(int64_t *)(void *)dst = v;
    return true;
}

void config_defaults(struct config *cfg)
{
    char err[256];
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (!set_value(cfg, &settings[i], settings[i].def, settings[i].flag, err, sizeof(err)))
            abort(); /* a bad default is a programming error */
}

static const struct setting *find_flag(const char *name, size_t n)
{
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (strlen(settings[i].flag) == n && strncmp(settings[i].flag, name, n) == 0)
            return &settings[i];
    return NULL;
}

static bool check(const struct config *cfg, char *err, size_t errlen)
{
    if (cfg->poll_min_ms > cfg->poll_max_ms) {
        snprintf(err, errlen, "poll-min-ms (%lld) is above poll-max-ms (%lld)",
                 (long long)cfg->poll_min_ms, (long long)cfg->poll_max_ms);
        return false;
    }
    if (cfg->upload_piece_bytes % 262144 != 0) {
        snprintf(err, errlen, "upload-piece-bytes (%lld) is not a multiple of 262144 (256 KiB)",
                 (long long)cfg->upload_piece_bytes);
        return false;
    }
    if (cfg->webhook_backoff_base_ms > cfg->webhook_backoff_max_ms) {
        snprintf(err, errlen,
                 "webhook-backoff-base-ms (%lld) is above webhook-backoff-max-ms (%lld)",
                 (long long)cfg->webhook_backoff_base_ms, (long long)cfg->webhook_backoff_max_ms);
        return false;
    }
    unsigned char k[48];
    size_t kn = 0, kl = strlen(cfg->webhook_secret_key);
    bool key_ok =
        kl == 0 || (kl <= 64 && base64_decode(k, &kn, cfg->webhook_secret_key, kl) && kn == 32);
    memset(k, 0, sizeof(k));
    if (!key_ok) {
        snprintf(err, errlen,
                 "webhook-secret-key must be the base64 of 32 bytes (openssl rand -base64 32)");
        return false;
    }
    if (strcmp(cfg->gemini_api_version, "v1beta") != 0 && strcmp(cfg->gemini_api_version, "v1")) {
        snprintf(err, errlen, "gemini-api-version must be v1beta or v1");
        return false;
    }
    return true;
}

bool config_load(struct config *cfg, const char *(*getenv_fn)(const char *), int argc, char **argv,
                 int first, int *next, char *err, size_t errlen)
{
    for (size_t i = 0; i < N_SETTINGS && getenv_fn; i++) {
        const char *v = getenv_fn(settings[i].env);
        if (v && *v && !set_value(cfg, &settings[i], v, settings[i].env, err, errlen))
            return false;
    }
    int i = first;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || strcmp(a, "--") == 0)
            break;
        a += 2;
        const char *eq = strchr(a, '=');
        size_t n = eq ? (size_t)(eq - a) : strlen(a);
        const struct setting *s = find_flag(a, n);
        if (!s) {
            snprintf(err, errlen, "unrecognized option \"--%.*s\"", (int)(n > 64 ? 64 : n), a);
            return false;
        }
        const char *val = eq ? eq + 1 : NULL;
        if (!val) {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "option \"--%s\" needs a value", s->flag);
                return false;
            }
            val = argv[++i];
        }
        char src[80];
        snprintf(src, sizeof(src), "--%s", s->flag);
        if (!set_value(cfg, s, val, src, err, errlen))
            return false;
    }
    if (next)
        *next = i;
    return check(cfg, err, errlen);
}

void config_print_help(FILE *f)
{
    fprintf(f, "settings (flag, environment variable, default):\n");
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const struct setting *s = &settings[i];
        fprintf(f, "  --%-22s %-28s default: %s\n      %s\n", s->flag, s->env,
                *s->def ? s->def : "(none)", s->help);
    }
}

void config_mask_url(const char *url, char *out, size_t n)
{
    /* scheme://user:password@host → scheme://user:****@host */
    const char *scheme = strstr(url, "://");
    const char *at = scheme ? strchr(scheme + 3, '@') : NULL;
    const char *colon = at ? memchr(scheme + 3, ':', (size_t)(at - scheme - 3)) : NULL;
    if (colon)
        snprintf(out, n, "%.*s:****%s", (int)(colon - url), url, at);
    else
        snprintf(out, n, "%s", url);
    /* a password=... keyword in the query string */
    char *pw = strstr(out, "password=");
    if (pw) {
        char *end = strchr(pw, '&');
        char rest[512];
        snprintf(rest, sizeof(rest), "%s", end ? end : "");
        snprintf(pw, n - (size_t)(pw - out), "password=****%s", rest);
    }
}

void config_log(const struct config *cfg)
{
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const struct setting *s = &settings[i];
        const char *p = (const char *)cfg + s->off;
        if (s->type == SET_INT) {
            log_info("config %s = %lld", s->flag, (long long)*(const int64_t *)(const void *)p);
        } else if (s->off == offsetof(struct config, database_url)) {
            char masked[1100];
            config_mask_url(p, masked, sizeof(masked));
            log_info("config %s = %s", s->flag, masked);
        } else {
            log_info("config %s = %s", s->flag, s->secret ? (*p ? "(set)" : "(unset)") : p);
        }
    }
}
