/*
 * config.h: embedd's settings. One table (config.c) gives each setting its
 * environment variable, command-line flag, type, bounds, default and help;
 * values come from the defaults, then the environment, then the flags.
 */
#ifndef SVC_CONFIG_H
#define SVC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/compiler.h"

struct config {
    char database_url[1024]; /* may hold a password: never log it */
    char gemini_api_key[256];
    char gemini_base_url[512];
    char gemini_api_version[16];
    char listen[128];         /* host:port */
    char metrics_listen[128]; /* host:port of GET /metrics; "" none */
    int64_t workers;
    int64_t http_threads;
    int64_t db_pool_size;
    int64_t poll_min_ms;
    int64_t poll_max_ms;
    int64_t lease_ms;
    int64_t max_attempts;
    int64_t batch_max_bytes;
    int64_t batch_max_requests;
    int64_t sync_max_texts;
    int64_t batch_deadline_ms;
    int64_t max_open_batches;        /* batches open at Google at once, all replicas together */
    int64_t batch_inline_max_bytes;  /* larger batches go through the Files API */
    int64_t file_batch_max_requests; /* chunks in one file batch at most; 0: no file batches */
    int64_t file_batch_max_bytes;    /* the JSONL of one file batch at most (Google: 2 GB) */
    int64_t upload_piece_bytes;      /* bytes per upload request (a multiple of 256 KiB) */
    int64_t file_janitor_ms;         /* how often orphaned files at Google are looked for */
    char spool_dir[512];             /* temporary files; "" means $TMPDIR, else /tmp */
    int64_t max_body_bytes;
    int64_t max_stream_bytes;          /* a streamed (NDJSON) request body */
    int64_t openai_file_max_bytes;     /* a file uploaded to /openai/v1/files */
    int64_t openai_batch_max_requests; /* requests in one /openai/v1 batch */
    int64_t job_max_documents;         /* per job, JSON and NDJSON */
    int64_t job_max_chunks;            /* per job, after chunking */
    int64_t job_max_deletes;           /* ids in one job's "delete" */
    int64_t max_connections;
    int64_t max_connections_per_ip;
    int64_t connection_timeout_s;
    int64_t header_timeout_s;
    int64_t shutdown_deadline_ms;
    int64_t key_cache_ms;
    int64_t sse_max_clients; /* job event streams open at once (0: none) */
    int64_t sse_interval_ms; /* watched jobs read this often; least time between events */
    int64_t sse_heartbeat_s; /* a comment line after this much silence */

    int64_t key_rps;                /* requests per second per key and replica; 0: no limit */
    int64_t key_burst;              /* the bucket's size; 0: key_rps */
    int64_t key_max_pending_chunks; /* chunks without a vector per key; 0: no limit */

    char prices[512];         /* per-model price overrides (models.h) */
    char default_model[64];   /* the model of jobs and collections that name none (models.h) */
    int64_t search_memory_mb; /* collections held in memory for search, at most */
    int64_t search_threads;   /* threads sharing a large scan */
    int64_t format_threads;   /* threads helping format vectors as JSON numbers */
    int64_t query_timeout_ms; /* the interactive Google call that embeds a query */
    /* webhooks (service/webhook/) */
    int64_t webhook_threads;             /* delivery threads in this process */
    int64_t webhook_timeout_ms;          /* one attempt at most */
    int64_t webhook_backoff_base_ms;     /* the first retry's ceiling; doubles per attempt */
    int64_t webhook_backoff_max_ms;      /* the ceiling's ceiling */
    int64_t webhook_max_age_ms;          /* no attempt this long after the event */
    int64_t webhook_poll_ms;             /* an idle thread looks for due deliveries this often */
    int64_t webhook_allow_private;       /* 1: private, loopback... addresses may be called */
    int64_t webhook_degraded_threshold;  /* percent of finished chunks succeeded; 0: no event */
    int64_t webhook_degraded_min_chunks; /* finished chunks before job.degraded may fire */
    int64_t webhook_secret_grace_s;      /* a rotated-out secret signs this much longer */
    char webhook_secret_key[64];         /* base64 of 32 bytes sealing secrets; never log it */
    char log_level[16];
    char log_format[8];  /* text or json */
    char port_file[512]; /* write the bound HTTP port here once listening */
};

/* Fill cfg with the defaults. */
void config_defaults(struct config *cfg);

/*
 * Apply environment variables (through getenv_fn, normally getenv) and then
 * the flags in argv[first..argc). Unknown flags and bad values are errors:
 * the message goes to err and false is returned. Flags may be "--name value"
 * or "--name=value". *next receives the index of the first non-flag argument.
 */
bool config_load(struct config *cfg, const char *(*getenv_fn)(const char *), int argc, char **argv,
                 int first, int *next, char *err, size_t errlen) SVC_MUSTCHECK;

/* Print every setting (flag, environment variable, default, help) to f. */
void config_print_help(FILE *f);

/* Log the effective settings with secrets masked. */
void config_log(const struct config *cfg);

/* Copy url into out with any password replaced by "****". */
void config_mask_url(const char *url, char *out, size_t n);

#endif
