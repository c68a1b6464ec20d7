/* keys_limits.c: `embedd keys limits ID ...`: a key's own limits (see keys_limits.h). */
#include "keys_limits.h"

#include "log.h"
#include "store/db.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void keys_limit_show(int64_t own, int64_t setting, char *out, size_t n)
{
    if (own == KEY_LIMIT_DEFAULT) {
        if (setting > 0)
            snprintf(out, n, "(%lld)", (long long)setting);
        else
            snprintf(out, n, "(none)");
    } else if (own == 0) {
        snprintf(out, n, "none");
    } else {
        snprintf(out, n, "%lld", (long long)own);
    }
}

/* "default", or a whole number in [0, max]. */
static bool parse_limit(const char *flag, const char *v, int64_t max, int64_t *out)
{
    if (strcmp(v, "default") == 0) {
        *out = KEY_LIMIT_DEFAULT;
        return true;
    }
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end || x < 0 || x > max) {
        fprintf(stderr,
                "embedd: keys limits: %s takes a whole number from 0 (no limit) to %lld, or"
                " \"default\" (the setting's), not \"%s\"\n",
                flag, (long long)max, v);
        return false;
    }
    *out = x;
    return true;
}

int keys_limits_cmd(const struct config *cfg, int argc, char **argv)
{
    static const char usage[] =
        "embedd: usage: embedd keys limits ID [--rps N] [--burst N] [--max-pending-chunks N]\n"
        "       (N: a number, 0 for no limit, or \"default\" for the setting's)\n";
    char *end;
    errno = 0;
    long long id = argc >= 2 ? strtoll(argv[1], &end, 10) : 0;
    if (argc < 3 || errno || end == argv[1] || *end || id <= 0) {
        fputs(usage, stderr);
        return 2;
    }
    struct key_limits lim = {KEY_LIMIT_KEEP, KEY_LIMIT_KEEP, KEY_LIMIT_KEEP};
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *eq = strchr(a, '='), *v;
        size_t n = eq ? (size_t)(eq - a) : strlen(a);
        if (eq)
            v = eq + 1;
        else if (i + 1 < argc)
            v = argv[++i];
        else {
            fputs(usage, stderr);
            return 2;
        }
        bool ok;
        if (n == 5 && strncmp(a, "--rps", n) == 0)
            ok = parse_limit("--rps", v, 1000000, &lim.rps);
        else if (n == 7 && strncmp(a, "--burst", n) == 0)
            ok = parse_limit("--burst", v, 1000000, &lim.burst);
        else if (n == 20 && strncmp(a, "--max-pending-chunks", n) == 0)
            ok = parse_limit("--max-pending-chunks", v, INT64_C(1) << 50, &lim.max_pending_chunks);
        else {
            fprintf(stderr, "embedd: keys limits: unexpected argument \"%.*s\"\n", (int)n, a);
            fputs(usage, stderr);
            return 2;
        }
        if (!ok)
            return 2;
    }
    char err[768];
    PGconn *c = db_connect(cfg->database_url, err, sizeof(err));
    if (!c) {
        log_error("%s", err);
        return 1;
    }
    enum keys_result r = keys_set_limits(c, (int64_t)id, &lim, err, sizeof(err));
    PQfinish(c);
    if (r == KEYS_DB_ERROR) {
        log_error("%s", err);
        return 1;
    }
    if (r == KEYS_INVALID) {
        fprintf(stderr, "embedd: no active key %lld\n", id);
        return 1;
    }
    log_info("limits of API key %lld set; running replicas apply them within --key-cache-ms"
             " (%lld ms)",
             id, (long long)cfg->key_cache_ms);
    return 0;
}
