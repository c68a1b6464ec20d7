/* test_config.c: settings: defaults, environment, flags, validation, secret masking, help. */
#include "config.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *fake_env(const char *name)
{
    if (strcmp(name, "EMBEDD_WORKERS") == 0)
        return "7";
    if (strcmp(name, "GEMINI_API_VERSION") == 0)
        return "v1";
    if (strcmp(name, "EMBEDD_LISTEN") == 0)
        return "0.0.0.0:9000";
    return NULL;
}

static const char *bad_env(const char *name)
{
    return strcmp(name, "EMBEDD_WORKERS") == 0 ? "lots" : NULL;
}

Test(config, defaults)
{
    struct config c;
    config_defaults(&c);
    cr_assert_str_eq(c.gemini_base_url, "https://generativelanguage.googleapis.com");
    cr_assert_str_eq(c.gemini_api_version, "v1beta");
    cr_assert_str_eq(c.listen, "127.0.0.1:8080");
    cr_assert_eq(c.max_body_bytes, 64 * 1024 * 1024);
    cr_assert_str_eq(c.gemini_api_key, "");
    cr_assert_leq(c.batch_max_bytes, 20000000);
    cr_assert_eq(c.http_threads, 4,
                 "more server threads than cores: a request waits on the "
                 "database on its thread");
}

Test(config, environment_then_flags)
{
    struct config c;
    char err[256];
    int next = -1;
    char *argv[] = {"embedd", "--workers", "3", "--listen=127.0.0.1:1", "migrate", NULL};
    config_defaults(&c);
    cr_assert(config_load(&c, fake_env, 5, argv, 1, &next, err, sizeof(err)), "%s", err);
    cr_assert_eq(c.workers, 3, "a flag overrides the environment");
    cr_assert_str_eq(c.listen, "127.0.0.1:1");
    cr_assert_str_eq(c.gemini_api_version, "v1", "the environment overrides the default");
    cr_assert_eq(next, 4, "stops at the command");
}

Test(config, errors)
{
    struct config c;
    char err[256];
    int next;
    config_defaults(&c);
    cr_assert_not(
        config_load(&c, bad_env, 1, (char *[]){"embedd", NULL}, 1, &next, err, sizeof(err)));
    cr_assert(strstr(err, "EMBEDD_WORKERS"), "%s", err);

    static char bad[][2][24] = {
        {"--workers", "0"},
        {"--workers", "12x"},
        {"--no-such", "1"},
        {"--poll-min-ms", "999999999"},
        {"--gemini-api-version", "v2"},
        {"--log-level", "loud"},
        {"--batch-max-bytes", "30000000"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *argv[] = {"embedd", bad[i][0], bad[i][1], NULL};
        config_defaults(&c);
        cr_assert_not(config_load(&c, NULL, 3, argv, 1, &next, err, sizeof(err)), "%s %s accepted",
                      bad[i][0], bad[i][1]);
    }
    char *missing[] = {"embedd", "--workers", NULL};
    cr_assert_not(config_load(&c, NULL, 2, missing, 1, &next, err, sizeof(err)));
}

Test(config, secrets_are_masked)
{
    char out[256];
    config_mask_url("postgresql://u:hunter2@db:5432/x", out, sizeof(out));
    cr_assert_str_eq(out, "postgresql://u:****@db:5432/x");
    config_mask_url("postgresql://u@db/x?password=hunter2&sslmode=require", out, sizeof(out));
    cr_assert_str_eq(out, "postgresql://u@db/x?password=****&sslmode=require");
    config_mask_url("postgresql:///embedd", out, sizeof(out));
    cr_assert_str_eq(out, "postgresql:///embedd");

    struct config c;
    char err[256];
    char *argv[] = {"embedd", "--workers", "hunter2", NULL};
    config_defaults(&c);
    cr_assert_not(config_load(&c, NULL, 3, argv, 1, NULL, err, sizeof(err)));
}

Test(config, help_lists_every_setting)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    config_print_help(f);
    fclose(f);
    static const char *const names[] = {
        "DATABASE_URL",   "GEMINI_API_KEY", "GEMINI_BASE_URL",         "GEMINI_API_VERSION",
        "EMBEDD_LISTEN",  "EMBEDD_WORKERS", "EMBEDD_POLL_MIN_MS",      "EMBEDD_MAX_BODY_BYTES",
        "--database-url", "--workers",      "default: 127.0.0.1:8080", "default: v1beta",
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        cr_assert(strstr(text, names[i]), "help lacks %s", names[i]);
    free(text);
}

Test(config, file_batch_settings)
{
    struct config c;
    char err[256];
    int next;
    config_defaults(&c);
    cr_assert_leq(c.batch_inline_max_bytes, c.batch_max_bytes, "the threshold is an inline size");
    cr_assert_gt(c.file_batch_max_requests, c.batch_max_requests, "file batches are larger");
    cr_assert_eq(c.file_batch_max_bytes, 2000000000, "Google's 2 GB");
    cr_assert_eq(c.upload_piece_bytes % 262144, 0);
    cr_assert_str_eq(c.spool_dir, "", "empty: $TMPDIR, else /tmp");
    char *ok[] = {"embedd", "--batch-inline-max-bytes=0", "--spool-dir=/var/tmp",
                  "--upload-piece-bytes=524288", NULL};
    cr_assert(config_load(&c, NULL, 4, ok, 1, &next, err, sizeof(err)), "%s", err);
    cr_assert_eq(c.batch_inline_max_bytes, 0);
    cr_assert_str_eq(c.spool_dir, "/var/tmp");
    cr_assert_eq(c.upload_piece_bytes, 524288);
    char *odd[] = {"embedd", "--upload-piece-bytes=300000", NULL};
    cr_assert_not(config_load(&c, NULL, 2, odd, 1, &next, err, sizeof(err)));
    cr_assert(strstr(err, "256 KiB"), "%s", err);
    char *big[] = {"embedd", "--file-batch-max-bytes=3000000000", NULL};
    cr_assert_not(config_load(&c, NULL, 2, big, 1, &next, err, sizeof(err)));
    cr_assert(strstr(err, "--file-batch-max-bytes"), "%s", err);
}
