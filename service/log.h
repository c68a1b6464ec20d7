/*
 * log.h: one line per event on stderr, with a level, a UTC timestamp and
 * the thread's context. The macros check the level before formatting, so a
 * disabled level costs a comparison. Never pass secrets to these functions.
 */
#ifndef SVC_LOG_H
#define SVC_LOG_H

#include "util/compiler.h"

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/* Set once in main() before any thread starts. */
extern int log_current_level;
/* 0: text lines ("2026-12-06T10:00:00.000Z info  message"); 1: one JSON
 * object per line (time, level, message, and request_id and job_id when the
 * thread has them). Set once in main(). */
extern int log_json;

/* The thread's context, added to its JSON lines: the request or the job
 * being handled (copied; NULL or "" clears). */
void log_context_request(const char *id);
void log_context_job(const char *id);

/* Parse "error", "warn", "info" or "debug"; returns -1 if unknown. */
int log_level_parse(const char *s);
void log_write(enum log_level level, const char *fmt, ...) SVC_PRINTF(2, 3);

#define log_error(...) log_at(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_at(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_at(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_at(LOG_DEBUG, __VA_ARGS__)
#define log_at(level, ...)                                                                         \
    do {                                                                                           \
        if ((int)(level) <= log_current_level)                                                     \
            log_write((level), __VA_ARGS__);                                                       \
    } while (0)

#endif
