/* test_log.c: log lines, text and JSON (--log-format json): every JSON line parses, with the
 * thread's request and job ids when it has them, and messages escaped. */
#include "log.h"

#include <criterion/criterion.h>
#include <json-c/json.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Run the logging calls with stderr captured; returns what was written (caller frees). */
static char *captured(void (*fn)(void))
{
    char path[] = "/tmp/embedd-log-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    fn();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    off_t len = lseek(fd, 0, SEEK_END);
    char *out = calloc(1, (size_t)len + 1);
    cr_assert_eq(pread(fd, out, (size_t)len, 0), len);
    close(fd);
    unlink(path);
    return out;
}

static void json_lines(void)
{
    log_current_level = LOG_DEBUG;
    log_json = 1;
    log_info("plain");
    log_context_request("req-1");
    log_context_job("job-9");
    log_warn("quote \" backslash \\ newline \n tab \t done");
    log_context_request(NULL);
    log_context_job(NULL);
    log_debug("after");
    log_json = 0;
}

Test(log, json_lines_parse_with_context)
{
    char *out = captured(json_lines);
    char *save = NULL;
    int lines = 0;
    for (char *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save), lines++) {
        json_object *o = json_tokener_parse(l);
        cr_assert_not_null(o, "not JSON: %s", l);
        json_object *v;
        cr_assert(json_object_object_get_ex(o, "time", &v));
        cr_assert(json_object_object_get_ex(o, "level", &v));
        const char *level = json_object_get_string(v);
        cr_assert(json_object_object_get_ex(o, "message", &v));
        const char *msg = json_object_get_string(v);
        bool ctx = json_object_object_get_ex(o, "request_id", &v);
        if (lines == 1) {
            cr_assert_str_eq(level, "warn");
            cr_assert_str_eq(msg, "quote \" backslash \\ newline \n tab \t done");
            cr_assert(ctx);
            cr_assert_str_eq(json_object_get_string(v), "req-1");
            cr_assert(json_object_object_get_ex(o, "job_id", &v));
            cr_assert_str_eq(json_object_get_string(v), "job-9");
        } else {
            cr_assert_not(ctx, "line %d: %s", lines, l);
        }
        json_object_put(o);
    }
    cr_assert_eq(lines, 3);
    free(out);
}

static void text_line(void)
{
    log_current_level = LOG_INFO;
    log_info("hello %d", 42);
    log_debug("hidden");
}

Test(log, text_lines)
{
    char *out = captured(text_line);
    cr_assert(strstr(out, " info  hello 42\n"), "%s", out);
    cr_assert_null(strstr(out, "hidden"));
    free(out);
}
