/*
 * main.c: the embedd command line: settings from the environment and flags,
 * then one command (migrate, keys create).
 */
#include "api.h"
#include "app.h"
#include "config.h"
#include "db.h"
#include "gemini_client.h"
#include "http.h"
#include "keys.h"
#include "log.h"
#include "migrate.h"
#include "worker.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *env(const char *name)
{
    return getenv(name);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: embedd [settings] <command>\n\n"
               "commands:\n"
               "  migrate                  apply the database migrations (idempotent; safe when\n"
               "                           several replicas run it at once)\n"
               "  keys create --name NAME  create an API key; prints it once (stored hashed)\n"
               "  serve                    migrate, then serve HTTP until SIGTERM or SIGINT\n\n");
    config_print_help(f);
    fprintf(f, "\n  --help, --version\n");
}

static int cmd_migrate(const struct config *cfg)
{
    char err[768];
    PGconn *c = db_connect(cfg->database_url, err, sizeof(err));
    if (!c) {
        log_error("%s", err);
        return 1;
    }
    int applied = 0, version = 0;
    bool ok = migrate_run(c, &applied, err, sizeof(err)) &&
              migrate_version(c, &version, err, sizeof(err));
    PQfinish(c);
    if (!ok) {
        log_error("%s", err);
        return 1;
    }
    log_info("migrate: applied %d migration(s); schema version %d", applied, version);
    return 0;
}

static int cmd_keys(const struct config *cfg, int argc, char **argv)
{
    const char *name = NULL;
    if (argc < 1 || strcmp(argv[0], "create") != 0) {
        fprintf(stderr, "embedd: usage: embedd keys create --name NAME\n");
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
            name = argv[++i];
        else if (strncmp(argv[i], "--name=", 7) == 0)
            name = argv[i] + 7;
        else {
            fprintf(stderr, "embedd: keys create: unexpected argument \"%s\"\n", argv[i]);
            return 2;
        }
    }
    if (!name || !*name || strlen(name) > 200) {
        fprintf(stderr, "embedd: keys create needs --name NAME (1 to 200 characters)\n");
        return 2;
    }
    char err[768], key[KEY_LEN + 1];
    int64_t id = 0;
    PGconn *c = db_connect(cfg->database_url, err, sizeof(err));
    if (!c) {
        log_error("%s", err);
        return 1;
    }
    bool ok = keys_create(c, name, key, &id, err, sizeof(err));
    PQfinish(c);
    if (!ok) {
        log_error("%s", err);
        return 1;
    }
    log_info("created API key %lld (\"%s\"); it is shown once", (long long)id, name);
    printf("%s\n", key);
    memset(key, 0, sizeof(key));
    return 0;
}

static bool write_port_file(const char *path, int port)
{
    char tmp[600];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return false;
    fprintf(f, "%d\n", port);
    return fclose(f) == 0 && rename(tmp, path) == 0;
}

static int cmd_serve(const struct config *cfg)
{
    /* signals go to sigwait() below, never to a worker or server thread */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (cmd_migrate(cfg) != 0)
        return 1;
    config_log(cfg);
    if (!gem_global_init()) {
        log_error("could not initialise libcurl");
        return 1;
    }
    size_t pool = cfg->db_pool_size ? (size_t)cfg->db_pool_size
                                    : (size_t)(cfg->http_threads + cfg->workers + 2);
    struct app app = {
        .cfg = cfg, .db = db_pool_new(cfg->database_url, pool), .db_timeout_ms = 5000};
    if (!app.db) {
        log_error("out of memory");
        gem_global_cleanup();
        return 1;
    }
    struct http_server_opts o = {
        .listen = cfg->listen,
        .threads = (unsigned)cfg->http_threads,
        .connection_limit = 1024,
        .connection_timeout_s = 60,
        .max_body_bytes = (size_t)cfg->max_body_bytes,
        .routes = api_routes,
        .n_routes = api_routes_count,
        .auth = api_authenticate,
        .auth_prefix = "/v1/",
        .app = &app,
    };
    char err[256];
    struct http_server *srv = http_server_start(&o, err, sizeof(err));
    if (!srv) {
        log_error("%s", err);
        db_pool_free(app.db);
        gem_global_cleanup();
        return 1;
    }
    struct worker_pool *workers = NULL;
    if (!cfg->gemini_api_key[0]) {
        log_warn("GEMINI_API_KEY is not set: no workers start; jobs stay pending");
    } else if (!(workers = worker_pool_start(cfg, app.db, err, sizeof(err)))) {
        log_error("%s", err);
        http_server_stop(srv);
        db_pool_free(app.db);
        gem_global_cleanup();
        return 1;
    }
    int port = http_server_port(srv);
    log_info("listening on %.*s:%d", (int)strcspn(cfg->listen, ":"), cfg->listen, port);
    int rc = 0;
    if (cfg->port_file[0] && !write_port_file(cfg->port_file, port)) {
        log_error("could not write port file \"%s\" (errno %d)", cfg->port_file, errno);
        rc = 1;
    }
    int sig = 0;
    while (rc == 0 && sigwait(&set, &sig) != 0)
        ;
    if (rc == 0)
        log_info("signal %d: shutting down", sig);
    http_server_stop(srv);     /* stop accepting; in-flight requests finish */
    worker_pool_stop(workers); /* each worker finishes its step; leases expire or are done */
    db_pool_free(app.db);
    gem_global_cleanup();
    log_info("stopped");
    return rc;
}

int main(int argc, char **argv)
{
    struct config cfg;
    char err[512];
    int next = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("embedd 0.1.0\n");
            return 0;
        }
    }
    config_defaults(&cfg);
    if (!config_load(&cfg, env, argc, argv, 1, &next, err, sizeof(err))) {
        fprintf(stderr, "embedd: %s\n", err);
        return 2;
    }
    log_current_level = log_level_parse(cfg.log_level);
    if (next >= argc) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[next];
    if (strcmp(cmd, "migrate") == 0 && next + 1 == argc)
        return cmd_migrate(&cfg);
    if (strcmp(cmd, "serve") == 0 && next + 1 == argc)
        return cmd_serve(&cfg);
    if (strcmp(cmd, "keys") == 0)
        return cmd_keys(&cfg, argc - next - 1, argv + next + 1);
    fprintf(stderr, "embedd: unknown command \"%s\" (see embedd --help)\n", cmd);
    return 2;
}
