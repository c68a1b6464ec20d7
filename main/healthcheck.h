/*
 * healthcheck.h: `embedd healthcheck`, a probe for container health checks:
 * one HTTP GET to the instance the same settings describe, exit 0 or 1.
 */
#ifndef SVC_MAIN_HEALTHCHECK_H
#define SVC_MAIN_HEALTHCHECK_H

#include "config.h"

/*
 * Ask the server at cfg->listen (0.0.0.0 is asked on 127.0.0.1; port 0 is
 * read from cfg->port_file) for a path, /healthz unless the arguments say
 * otherwise: [--ready] [--path PATH] [--timeout-ms N]. Prints one line saying
 * what happened (stdout when healthy, stderr otherwise). Returns the exit
 * status: 0 when the answer is 200, 1 for anything else, bad arguments
 * included (Docker reserves status 2).
 */
int healthcheck_run(const struct config *cfg, int argc, char **argv);

#endif
