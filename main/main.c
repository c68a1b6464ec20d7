/*
 * main.c: the composition root and the embedd command line: settings from
 * the environment and flags, then one command (migrate, keys create, serve).
 * serve wires the engine (service/: store pool, workers) to the REST surface
 * (api/: HTTP server, routes); this is the one file that knows both.
 */
#include "api.h"
#include "app.h"
#include "events.h"
#include "config.h"
#include "store/db.h"
#include "gemini/client.h"
#include "healthcheck.h"
#include "keys_webhook.h"
#include "keys_limits.h"
#include "server.h"
#include "store/keys.h"
#include "log.h"
#include "models.h"
#include "openai/driver.h"
#include "ratelimit.h"
#include "store/migrate.h"
#include "util/workpool.h"
#include "webhook/sender.h"
#include "worker/worker.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static const char *env(const char *name)
{
    return getenv(name);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: embedd [settings] <command>\n\n"
            "commands:\n"
            "  migrate                  apply the database migrations (idempotent; safe when\n"
            "                           several replicas run it at once)\n"
            "  keys create --name NAME  create an API key; prints it once (stored hashed), then\n"
            "                           its webhook signing secret (whsec_...) on a second line\n"
            "  keys list                every key: id, prefix, created, last used, revoked\n"
            "  keys revoke ID           revoke a key (replicas refuse it within --key-cache-ms)\n"
            "  keys webhook ID [URL | --clear]\n"
            "                           show, set or clear the key's default webhook URL (for\n"
            "                           jobs without their own webhook_url)\n"
            "  keys rotate-webhook-secret ID\n"
            "                           a new webhook secret, printed once; the old one signs\n"
            "                           too for --webhook-secret-grace-s\n"
            "  keys limits ID [--rps N] [--burst N] [--max-pending-chunks N]\n"
            "                           a key's own limits, overriding --key-rps, --key-burst,\n"
            "                           --key-max-pending-chunks (0: none; \"default\": the\n"
            "                           setting's); applied within --key-cache-ms\n"
            "  serve                    migrate, then serve HTTP until SIGTERM or SIGINT\n"
            "  healthcheck [--ready] [--path PATH] [--timeout-ms N]\n"
            "                           GET /healthz (--ready: /readyz) on the listen\n"
            "                           address; exit 0 on 200, else 1 (for HEALTHCHECK)\n\n");
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

/* embedd keys list: one line per key (never the key itself). */
static int keys_list_cmd(const struct config *cfg)
{
    char err[768];
    PGconn *c = db_connect(cfg->database_url, err, sizeof(err));
    if (!c) {
        log_error("%s", err);
        return 1;
    }
    struct key_row *rows = NULL;
    size_t n = 0;
    bool ok = keys_list(c, &rows, &n, err, sizeof(err));
    PQfinish(c);
    if (!ok) {
        log_error("%s", err);
        return 1;
    }
    printf("%-6s %-12s %-20s %-20s %-20s %-9s %-9s %-12s %s\n", "ID", "PREFIX", "CREATED",
           "LAST USED", "REVOKED", "RPS", "BURST", "MAX PENDING", "NAME");
    for (size_t i = 0; i < n; i++) {
        char rps[24], burst[24], pending[24];
        keys_limit_show(rows[i].limits.rps, cfg->key_rps, rps, sizeof(rps));
        keys_limit_show(rows[i].limits.burst, cfg->key_burst ? cfg->key_burst : cfg->key_rps, burst,
                        sizeof(burst));
        if (rows[i].limits.burst == 0) /* a key's own burst 0: as many as its rps */
            snprintf(burst, sizeof(burst), "=rps");
        keys_limit_show(rows[i].limits.max_pending_chunks, cfg->key_max_pending_chunks, pending,
                        sizeof(pending));
        printf("%-6lld %-12s %-20s %-20s %-20s %-9s %-9s %-12s %s\n", (long long)rows[i].id,
               rows[i].prefix, rows[i].created_at,
               rows[i].last_used_at[0] ? rows[i].last_used_at : "-",
               rows[i].revoked_at[0] ? rows[i].revoked_at : "-", rps, burst, pending, rows[i].name);
    }
    if (n)
        printf("(limits in parentheses: the settings', for keys without their own)\n");
    free(rows);
    return 0;
}

/* embedd keys revoke ID */
static int keys_revoke_cmd(const struct config *cfg, const char *arg)
{
    char *end;
    errno = 0;
    long long id = strtoll(arg, &end, 10);
    if (errno || end == arg || *end || id <= 0) {
        fprintf(stderr, "embedd: keys revoke needs a key id (see embedd keys list), not \"%s\"\n",
                arg);
        return 2;
    }
    char err[768];
    PGconn *c = db_connect(cfg->database_url, err, sizeof(err));
    if (!c) {
        log_error("%s", err);
        return 1;
    }
    enum keys_result r = keys_revoke(c, (int64_t)id, err, sizeof(err));
    PQfinish(c);
    if (r == KEYS_DB_ERROR) {
        log_error("%s", err);
        return 1;
    }
    if (r == KEYS_INVALID) {
        fprintf(stderr, "embedd: no active key %lld\n", id);
        return 1;
    }
    log_info("revoked API key %lld; running replicas refuse it within --key-cache-ms (%lld ms)", id,
             (long long)cfg->key_cache_ms);
    return 0;
}

static int cmd_keys(const struct config *cfg, int argc, char **argv)
{
    const char *name = NULL;
    if (argc == 1 && strcmp(argv[0], "list") == 0)
        return keys_list_cmd(cfg);
    if (argc == 2 && strcmp(argv[0], "revoke") == 0)
        return keys_revoke_cmd(cfg, argv[1]);
    if (argc >= 1 && strcmp(argv[0], "webhook") == 0)
        return keys_webhook_cmd(cfg, argc - 1, argv + 1);
    if (argc == 2 && strcmp(argv[0], "rotate-webhook-secret") == 0)
        return keys_rotate_cmd(cfg, argv[1]);
    if (argc >= 1 && strcmp(argv[0], "limits") == 0)
        return keys_limits_cmd(cfg, argc, argv);
    if (argc < 1 || strcmp(argv[0], "create") != 0) {
        fprintf(stderr, "embedd: usage: embedd keys create --name NAME | keys list |"
                        " keys revoke ID | keys webhook ID [URL | --clear] |"
                        " keys rotate-webhook-secret ID | keys limits ID [--rps N]"
                        " [--burst N] [--max-pending-chunks N]\n");
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
    char err[768], key[KEY_LEN + 1], secret[WH_SECRET_TEXT_LEN];
    int64_t id = 0;
    PGconn *c = db_connect(cfg->database_url, err, sizeof(err));
    if (!c) {
        log_error("%s", err);
        return 1;
    }
    /* the key and its webhook signing secret, both or neither */
    bool ok =
        db_exec(c, "BEGIN", err, sizeof(err)) && keys_create(c, name, key, &id, err, sizeof(err));
    if (ok && !keys_webhook_new_secret(cfg, c, id, secret)) {
        snprintf(err, sizeof(err), "the key was not created");
        ok = false;
    }
    ok = ok && db_exec(c, "COMMIT", err, sizeof(err));
    PQfinish(c);
    if (!ok) {
        log_error("%s", err);
        return 1;
    }
    log_info("created API key %lld (\"%s\") and its webhook signing secret; each is shown once",
             (long long)id, name);
    printf("%s\n%s\n", key, secret);
    memset(key, 0, sizeof(key));
    memset(secret, 0, sizeof(secret));
    return 0;
}

/* The HTTP port, and the metrics port on a second line when there is one. */
static bool write_port_file(const char *path, int port, int metrics_port)
{
    char tmp[600];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return false;
    fprintf(f, "%d\n", port);
    if (metrics_port > 0)
        fprintf(f, "%d\n", metrics_port);
    return fclose(f) == 0 && rename(tmp, path) == 0;
}

/* Room for max_connections sockets plus the database pool, logs and libcurl. */
static void raise_file_limit(const struct config *cfg, size_t pool)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = (rlim_t)cfg->max_connections + (rlim_t)pool + (rlim_t)cfg->workers * 4 + 64;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < want)
        log_warn("open-file limit %llu is below what %lld connections need (%llu)",
                 (unsigned long long)rl.rlim_cur, (long long)cfg->max_connections,
                 (unsigned long long)want);
}

/* The shutdown deadline is a promise: if draining hangs (a database that
 * does not answer), the process still ends, with a non-zero status. */
static int64_t watchdog_ms;
static atomic_bool shutdown_done; /* the orderly stop finished: the watchdog stands down */

static void *shutdown_watchdog(void *arg)
{
    (void)arg;
    int64_t ms = watchdog_ms + 1000;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    if (atomic_load(&shutdown_done))
        return NULL; /* main is already on its way out through exit() */
    log_error("shutdown did not finish within %lld ms; exiting now (leases expire by themselves)",
              (long long)watchdog_ms);
    _exit(1);
    return NULL;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* What cmd_serve's app holds, freed (each part may be NULL), and libcurl's global state. */
static void app_free(struct app *app)
{
    events_hub_free(app->events);
    search_engine_free(app->search);
    work_pool_free(app->fmt);
    ratelimit_free(app->limiter);
    db_pool_free(app->db);
    gem_global_cleanup();
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
    size_t pool = cfg->db_pool_size
                      ? (size_t)cfg->db_pool_size
                      : (size_t)(cfg->http_threads + cfg->workers + cfg->webhook_threads + 2);
    raise_file_limit(cfg, pool);
    struct app app = {.cfg = cfg,
                      .db = db_pool_new(cfg->database_url, pool),
                      .db_timeout_ms = 5000,
                      .limiter = ratelimit_new(),
                      .fmt = work_pool_new((int)cfg->format_threads)};
    atomic_init(&app.stopping, false);
    /* what start-up has started so far, stopped in reverse order at fail */
    struct http_server *srv = NULL, *msrv = NULL;
    struct oai_driver *oai = NULL;
    struct worker_pool *workers = NULL;
    struct wh_sender *hooks = NULL;
    char err[256];
    if (!app.db || !app.limiter || !app.fmt) {
        log_error("out of memory");
        goto fail;
    }
    struct search_opts so = {.memory_bytes = cfg->search_memory_mb << 20,
                             .threads = (int)cfg->search_threads,
                             .gemini_base_url = cfg->gemini_base_url,
                             .gemini_api_version = cfg->gemini_api_version,
                             .gemini_api_key = cfg->gemini_api_key,
                             .query_timeout_ms = (long)cfg->query_timeout_ms};
    if (!(app.search = search_engine_new(&so, err, sizeof(err)))) {
        log_error("%s", err);
        goto fail;
    }
    struct events_opts eo = {.max_clients = (int)cfg->sse_max_clients,
                             .interval_ms = cfg->sse_interval_ms,
                             .heartbeat_ms = cfg->sse_heartbeat_s * 1000};
    if (!(app.events = events_hub_start(&app, &eo, err, sizeof(err)))) {
        log_error("%s", err);
        goto fail;
    }
    struct http_server_opts o = {
        .listen = cfg->listen,
        .threads = (unsigned)cfg->http_threads,
        .connection_limit = (unsigned)cfg->max_connections,
        .per_ip_connection_limit = (unsigned)cfg->max_connections_per_ip,
        .connection_timeout_s = (unsigned)cfg->connection_timeout_s,
        .header_timeout_s = (unsigned)cfg->header_timeout_s,
        .max_body_bytes = (size_t)cfg->max_body_bytes,
        .routes = api_routes,
        .n_routes = api_routes_count,
        .auth = api_authenticate,
        .auth_prefix = "/v1/",
        .app = &app,
        .observe = api_metrics_observe,
    };
    api_metrics_init();
    /* GET /metrics on an address of its own, without authentication (README,
     * Metrics): one thread, a few connections, never behind the API's limits */
    struct http_server_opts mo = o;
    mo.listen = cfg->metrics_listen;
    mo.threads = 1;
    mo.connection_limit = 16;
    mo.per_ip_connection_limit = 0;
    mo.routes = api_metrics_routes;
    mo.n_routes = api_metrics_routes_count;
    mo.auth = NULL;
    mo.auth_prefix = NULL;
    if (cfg->metrics_listen[0] && !(msrv = http_server_start(&mo, err, sizeof(err)))) {
        log_error("metrics: %s", err);
        goto fail;
    }
    if (!(srv = http_server_start(&o, err, sizeof(err)))) {
        log_error("%s", err);
        goto fail;
    }
    struct oai_driver_opts oo = {.db = app.db,
                                 .lease_ms = cfg->lease_ms,
                                 .idle_ms = 250,
                                 .max_requests = cfg->openai_batch_max_requests,
                                 .db_timeout_ms = 5000};
    if (!(oai = oai_driver_start(&oo, err, sizeof(err)))) {
        log_error("%s", err);
        goto fail;
    }
    if (!cfg->gemini_api_key[0]) {
        log_warn("GEMINI_API_KEY is not set: no workers start; jobs stay pending");
    } else if (!(workers = worker_pool_start(cfg, app.db, err, sizeof(err)))) {
        log_error("%s", err);
        goto fail;
    }
    /* webhooks are delivered with or without Google: a cancelled job is announced too */
    if (!(hooks = wh_sender_start(cfg, app.db, err, sizeof(err)))) {
        log_error("%s", err);
        goto fail;
    }
    int port = http_server_port(srv);
    log_info("listening on %.*s:%d", (int)strcspn(cfg->listen, ":"), cfg->listen, port);
    int metrics_port = msrv ? http_server_port(msrv) : 0;
    if (msrv)
        log_info("metrics on %.*s:%d/metrics", (int)strcspn(cfg->metrics_listen, ":"),
                 cfg->metrics_listen, metrics_port);
    int rc = 0;
    if (cfg->port_file[0] && !write_port_file(cfg->port_file, port, metrics_port)) {
        log_error("could not write port file \"%s\" (errno %d)", cfg->port_file, errno);
        rc = 1;
    }
    int sig = 0;
    while (rc == 0 && sigwait(&set, &sig) != 0)
        ;
    if (rc == 0)
        log_info("signal %d: shutting down (deadline %lld ms)", sig,
                 (long long)cfg->shutdown_deadline_ms);
    pthread_t watchdog;
    watchdog_ms = cfg->shutdown_deadline_ms;
    if (pthread_create(&watchdog, NULL, shutdown_watchdog, NULL) == 0)
        pthread_detach(watchdog);
    int64_t t0 = mono_ms();
    atomic_store(&app.stopping, true);
    worker_pool_request_stop(workers); /* no new work is claimed from here on */
    wh_sender_request_stop(hooks);
    /* stop accepting and answer what is in flight, while the workers finish
     * their steps at the same time */
    int left = http_server_drain(srv, cfg->shutdown_deadline_ms * 3 / 5);
    if (left)
        log_warn("shutdown: %d request(s) still in flight", left);
    int64_t spent = mono_ms() - t0;
    int handed = worker_pool_stop(workers, cfg->shutdown_deadline_ms - spent);
    oai_driver_stop(oai); /* abandons a step in progress (its lease is handed back) */
    wh_sender_stop(hooks, cfg->shutdown_deadline_ms - (mono_ms() - t0));
    events_hub_stop(app.events); /* no stream is woken any more; the server closes them */
    http_server_stop(srv);
    http_server_stop(msrv); /* scrapes see the drain to its end */
    app_free(&app);
    log_info("stopped in %lld ms (%d lease(s) handed back)", (long long)(mono_ms() - t0), handed);
    atomic_store(&shutdown_done, true);
    return rc;

fail: /* start-up failed: what started stops, nothing was served */
    worker_pool_stop(workers, cfg->shutdown_deadline_ms);
    oai_driver_stop(oai);
    http_server_stop(srv);
    http_server_stop(msrv);
    app_free(&app);
    return 1;
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
    log_json = strcmp(cfg.log_format, "json") == 0;
    if (!models_set_prices(cfg.prices, err, sizeof(err)) ||
        !models_set_default(cfg.default_model, err, sizeof(err))) {
        fprintf(stderr, "embedd: %s\n", err);
        return 2;
    }
    if (next >= argc) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[next];
    if (strcmp(cmd, "migrate") == 0 && next + 1 == argc)
        return cmd_migrate(&cfg);
    if (strcmp(cmd, "serve") == 0 && next + 1 == argc)
        return cmd_serve(&cfg);
    if (strcmp(cmd, "healthcheck") == 0)
        return healthcheck_run(&cfg, argc - next - 1, argv + next + 1);
    if (strcmp(cmd, "keys") == 0)
        return cmd_keys(&cfg, argc - next - 1, argv + next + 1);
    fprintf(stderr, "embedd: unknown command \"%s\" (see embedd --help)\n", cmd);
    return 2;
}
