/*
 * main.c: gemini-sim entry point: flags, listening socket, signal wait and
 * full teardown (so that LeakSanitizer runs stay meaningful).
 */
#include "sim.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static bool write_port_file(const char *path, int port)
{
    char tmp[600];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return false;
    fprintf(f, "%d\n", port);
    if (fclose(f) != 0)
        return false;
    return rename(tmp, path) == 0; /* readers never see a partial file */
}

int main(int argc, char **argv)
{
    static struct sim sim;
    struct sim_config cfg;
    sim_config_defaults(&cfg);
    int rc = sim_config_parse_args(&cfg, argc, argv);
    if (rc != 0)
        return rc > 0 ? 0 : 2;

    /* Block the signals in every thread; the main thread takes them with sigwait. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    sim_init(&sim, &cfg);
    if (!sim_http_start(&sim)) {
        sim_cleanup(&sim);
        return 1;
    }
    if (cfg.port_file[0] && !write_port_file(cfg.port_file, sim.port)) {
        char why[128] = "unknown error";
        int saved = errno;
        if (strerror_r(saved, why, sizeof(why)) != 0)
            snprintf(why, sizeof(why), "errno %d", saved);
        fprintf(stderr, "gemini-sim: could not write port file \"%s\": %s\n", cfg.port_file, why);
        sim_http_stop(&sim);
        sim_cleanup(&sim);
        return 1;
    }
    fprintf(stderr, "gemini-sim: listening on http://%s:%d (seed %llu)\n", cfg.host, sim.port,
            (unsigned long long)cfg.s.seed);

    int sig = 0;
    while (sigwait(&set, &sig) != 0)
        ;
    fprintf(stderr, "gemini-sim: signal %d, shutting down\n", sig);
    sim_http_stop(&sim);
    sim_cleanup(&sim);
    return 0;
}
