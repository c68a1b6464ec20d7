/*
 * ssec.h: a small Server-Sent Events client for tests, over a plain socket
 * (HTTP/1.1, chunked or not): open a stream, read its events one at a time
 * with deadlines, count heartbeat comments. It holds any number of streams
 * in one thread (each has its own socket; ssec_fd for poll()).
 */
#ifndef TESTS_API_SSEC_H
#define TESTS_API_SSEC_H

#include <stdbool.h>
#include <stddef.h>

struct ssec {
    int fd;
    int status; /* of the response; 0 before its head arrived */
    char head[4096];
    bool chunked;
    bool eof;            /* the server closed the connection */
    bool body_done;      /* the body ended (last chunk, or eof) */
    long content_length; /* -1: none */
    char *raw;           /* bytes received, not yet decoded */
    size_t raw_len, raw_cap;
    size_t chunk_left; /* of the current chunk; 0: a size line is next */
    char *text;        /* the decoded body, not yet parsed */
    size_t text_len, text_cap;
    long comments; /* heartbeat comment lines seen */
    long events;   /* events returned */
};

struct ssec_event {
    char event[32];
    char id[64];
    char *data; /* malloc'd; the caller frees it */
};

/*
 * Connect to 127.0.0.1:port and GET path with "Authorization: Bearer key"
 * (key NULL: none) and Last-Event-ID (NULL: none); wait up to timeout_ms
 * for the response head. false on a transport failure or timeout.
 */
bool ssec_open(struct ssec *c, int port, const char *path, const char *key, const char *last_id,
               int timeout_ms);
/* The same without waiting for the head: status stays 0 until ssec_pump
 * (or ssec_next) has read it. */
bool ssec_start(struct ssec *c, int port, const char *path, const char *key, const char *last_id);
/* The next event within timeout_ms: 1 with ev filled, 0 when the body ended,
 * -1 on timeout (or a broken stream). Comments are counted, not returned. */
int ssec_next(struct ssec *c, struct ssec_event *ev, int timeout_ms);
/* Read what has arrived without waiting (for poll() loops); false once the
 * connection is closed or broken. */
bool ssec_pump(struct ssec *c);
/* The whole body of a non-stream answer (a problem+json), read within
 * timeout_ms; borrowed, NUL-terminated. */
const char *ssec_body(struct ssec *c, int timeout_ms);
/* A response header's value copied into out (case-insensitive name); false if absent. */
bool ssec_header(const struct ssec *c, const char *name, char *out, size_t n);
void ssec_close(struct ssec *c);

#endif
