/* log.c: the stderr line sink behind log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int log_current_level = LOG_INFO;
int log_json = 0;

/* what the calling thread works on, for JSON lines */
static _Thread_local char ctx_request[40], ctx_job[40];

void log_context_request(const char *id)
{
    snprintf(ctx_request, sizeof(ctx_request), "%s", id ? id : "");
}

void log_context_job(const char *id)
{
    snprintf(ctx_job, sizeof(ctx_job), "%s", id ? id : "");
}

/* Append s as a JSON string body (no quotes) into out[*n..cap-1). */
static void json_text(char *out, size_t *n, size_t cap, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    for (const unsigned char *p = (const unsigned char *)s; *p && *n + 7 < cap; p++) {
        if (*p == '"' || *p == '\\') {
            out[(*n)++] = '\\';
            out[(*n)++] = (char)*p;
        } else if (*p < 0x20) {
            out[(*n)++] = '\\';
            out[(*n)++] = 'u';
            out[(*n)++] = '0';
            out[(*n)++] = '0';
            out[(*n)++] = hex[*p >> 4];
            out[(*n)++] = hex[*p & 15];
        } else {
            out[(*n)++] = (char)*p;
        }
    }
}

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

void log_write(enum log_level level, const char *fmt, ...)
{
    char msg[2048], line[4608], when[40];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t w = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + w, sizeof(when) - w, ".%03ldZ", ts.tv_nsec / 1000000L);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    size_t n = 0;
    if (!log_json) {
        int k = snprintf(line, sizeof(line) - 1, "%s %-5s %s", when, level_names[level], msg);
        n = k < 0 ? 0 : (size_t)k < sizeof(line) - 1 ? (size_t)k : sizeof(line) - 2;
    } else {
        int k = snprintf(line, sizeof(line), "{\"time\":\"%s\",\"level\":\"%s\",\"message\":\"",
                         when, level_names[level]);
        n = k < 0 ? 0 : (size_t)k;
        json_text(line, &n, sizeof(line) - 64, msg);
        const char *names[2] = {"request_id", "job_id"}, *vals[2] = {ctx_request, ctx_job};
        for (int i = 0; i < 2; i++)
            if (vals[i][0] && n + 64 < sizeof(line)) {
                k = snprintf(line + n, sizeof(line) - n, "\",\"%s\":\"%s", names[i], vals[i]);
                n += k > 0 ? (size_t)k : 0;
            }
        line[n++] = '"';
        line[n++] = '}';
    }
    line[n++] = '\n';
    /* one write per line keeps lines from different threads whole */
    fwrite(line, 1, n, stderr);
}
