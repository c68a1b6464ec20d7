/*
 * events.h: the hub behind GET /v1/jobs/{id}/events (Server-Sent Events):
 * one thread per replica that reads every watched job from PostgreSQL for
 * all of this replica's streams at once and queues their events (events.c).
 */
#ifndef API_EVENTS_H
#define API_EVENTS_H

#include <stddef.h>
#include <stdint.h>

struct app;
struct events_hub;

struct events_opts {
    int max_clients;      /* streams open at once; more get 503 (0: the route is off) */
    int64_t interval_ms;  /* how often watched jobs are read; least time between two
                             progress events of one stream */
    int64_t heartbeat_ms; /* a comment line after this much silence */
};

/* Start the hub's thread; it reads the jobs on a connection of its own to
 * app->cfg->database_url. NULL with err set on failure. */
struct events_hub *events_hub_start(struct app *app, const struct events_opts *o, char *err,
                                    size_t errlen);
/* Stop the thread (no event is queued or woken after this). NULL is a no-op. */
void events_hub_stop(struct events_hub *h);
/* Free the hub once the HTTP server has stopped (every stream is closed). */
void events_hub_free(struct events_hub *h);
/* Streams open now. */
int events_hub_clients(struct events_hub *h);

#endif
