/* ssec.c: the test client for Server-Sent Events (see ssec.h). */
#include "ssec.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool grow(char **p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return true;
    size_t c = *cap ? *cap : 4096;
    while (c < need)
        c *= 2;
    char *q = realloc(*p, c);
    if (!q)
        return false;
    *p = q;
    *cap = c;
    return true;
}

static bool put_text(struct ssec *c, const char *p, size_t n)
{
    if (!grow(&c->text, &c->text_cap, c->text_len + n + 1))
        return false;
    memcpy(c->text + c->text_len, p, n);
    c->text_len += n;
    c->text[c->text_len] = '\0';
    return true;
}

/* Move decodable bytes from raw to text (chunked decoding when needed). */
static void decode(struct ssec *c)
{
    if (!c->status)
        return;
    if (!c->chunked) {
        put_text(c, c->raw, c->raw_len);
        c->raw_len = 0;
        if (c->content_length >= 0 && (long)c->text_len >= c->content_length)
            c->body_done = true;
        return;
    }
    size_t pos = 0;
    while (pos < c->raw_len && !c->body_done) {
        if (c->chunk_left) {
            size_t k = c->raw_len - pos;
            if (k > c->chunk_left)
                k = c->chunk_left;
            put_text(c, c->raw + pos, k);
            pos += k;
            c->chunk_left -= k;
            continue;
        }
        /* "\r\n" after a chunk's data, then "SIZE\r\n" */
        char *nl = memchr(c->raw + pos, '\n', c->raw_len - pos);
        if (!nl)
            break;
        size_t line = (size_t)(nl - (c->raw + pos));
        if (line <= 1) { /* the CRLF ending the previous chunk */
            pos += line + 1;
            continue;
        }
        unsigned long size = strtoul(c->raw + pos, NULL, 16);
        pos += line + 1;
        if (size == 0)
            c->body_done = true;
        c->chunk_left = size;
    }
    memmove(c->raw, c->raw + pos, c->raw_len - pos);
    c->raw_len -= pos;
}

/* Parse the head once it is complete. */
static void parse_head(struct ssec *c)
{
    if (c->status)
        return;
    char *end = c->raw_len ? strstr(c->raw, "\r\n\r\n") : NULL;
    if (!end)
        return;
    size_t n = (size_t)(end - c->raw) + 4;
    snprintf(c->head, sizeof(c->head), "%.*s", (int)n, c->raw);
    c->status = (int)strtol(c->head + 9, NULL, 10); /* "HTTP/1.1 200 ..." */
    char v[64];
    c->chunked = ssec_header(c, "Transfer-Encoding", v, sizeof(v)) && strcasecmp(v, "chunked") == 0;
    c->content_length = ssec_header(c, "Content-Length", v, sizeof(v)) ? strtol(v, NULL, 10) : -1;
    memmove(c->raw, c->raw + n, c->raw_len - n);
    c->raw_len -= n;
    c->raw[c->raw_len] = '\0';
}

bool ssec_pump(struct ssec *c)
{
    if (c->fd < 0)
        return false;
    for (;;) {
        if (!grow(&c->raw, &c->raw_cap, c->raw_len + 65536 + 1))
            return false;
        ssize_t r = recv(c->fd, c->raw + c->raw_len, 65536, MSG_DONTWAIT);
        if (r > 0) {
            c->raw_len += (size_t)r;
            c->raw[c->raw_len] = '\0';
            parse_head(c);
            decode(c);
            continue;
        }
        if (r == 0) {
            c->eof = true;
            c->body_done = true;
            decode(c);
            return false;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return true;
        if (errno == EINTR)
            continue;
        c->eof = true;
        c->body_done = true;
        return false;
    }
}

/* Wait until fd is readable or the deadline passes. */
static bool wait_readable(struct ssec *c, int64_t deadline)
{
    int64_t left = deadline - now_ms();
    if (left < 0)
        left = 0;
    struct pollfd p = {c->fd, POLLIN, 0};
    return poll(&p, 1, (int)left) > 0;
}

bool ssec_start(struct ssec *c, int port, const char *path, const char *key, const char *last_id)
{
    memset(c, 0, sizeof(*c));
    c->content_length = -1;
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0)
        return false;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        return false;
    char req[1024];
    int n =
        snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n%s%s%s"
                 "%s%s%s\r\n",
                 path, key ? "Authorization: Bearer " : "", key ? key : "", key ? "\r\n" : "",
                 last_id ? "Last-Event-ID: " : "", last_id ? last_id : "", last_id ? "\r\n" : "");
    return send(c->fd, req, (size_t)n, MSG_NOSIGNAL) == n;
}

bool ssec_open(struct ssec *c, int port, const char *path, const char *key, const char *last_id,
               int timeout_ms)
{
    if (!ssec_start(c, port, path, key, last_id))
        return false;
    int64_t deadline = now_ms() + timeout_ms;
    while (!c->status) {
        if (!ssec_pump(c) && !c->status)
            return false;
        if (!c->status && !wait_readable(c, deadline))
            return false;
    }
    return true;
}

/* One event out of text, if a whole one is there: 1, else 0. */
static int take_event(struct ssec *c, struct ssec_event *ev)
{
    for (;;) {
        char *end = c->text_len ? strstr(c->text, "\n\n") : NULL;
        if (!end)
            return 0;
        size_t n = (size_t)(end - c->text) + 2;
        memset(ev, 0, sizeof(*ev));
        snprintf(ev->event, sizeof(ev->event), "message");
        bool any = false;
        char *line = c->text;
        while (line < end + 1) {
            char *nl = memchr(line, '\n', (size_t)(end + 1 - line));
            size_t len = (size_t)(nl - line);
            if (len && line[0] == ':') {
                c->comments++;
            } else if (len > 6 && strncmp(line, "event:", 6) == 0) {
                snprintf(ev->event, sizeof(ev->event), "%.*s", (int)(len - 7), line + 7);
            } else if (len > 3 && strncmp(line, "id:", 3) == 0) {
                snprintf(ev->id, sizeof(ev->id), "%.*s", (int)(len - 4), line + 4);
            } else if (len > 5 && strncmp(line, "data:", 5) == 0) {
                free(ev->data);
                ev->data = strndup(line + 6, len - 6);
                any = true;
            }
            line = nl + 1;
        }
        memmove(c->text, c->text + n, c->text_len - n + 1);
        c->text_len -= n;
        if (any) {
            c->events++;
            return 1;
        }
    }
}

int ssec_next(struct ssec *c, struct ssec_event *ev, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        if (take_event(c, ev))
            return 1;
        if (c->body_done)
            return 0;
        if (!ssec_pump(c) && !c->body_done)
            return -1;
        if (take_event(c, ev))
            return 1;
        if (c->body_done)
            return 0;
        if (!wait_readable(c, deadline))
            return -1;
    }
}

const char *ssec_body(struct ssec *c, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    while (!c->body_done && ssec_pump(c) && !c->body_done && wait_readable(c, deadline))
        ;
    return c->text ? c->text : "";
}

bool ssec_header(const struct ssec *c, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name);
    for (const char *p = strstr(c->head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
        const char *h = p + 2;
        if (strncasecmp(h, name, nl) == 0 && h[nl] == ':') {
            const char *v = h + nl + 1;
            while (*v == ' ')
                v++;
            size_t len = strcspn(v, "\r\n");
            snprintf(out, n, "%.*s", (int)len, v);
            return true;
        }
    }
    return false;
}

void ssec_close(struct ssec *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->raw);
    free(c->text);
    c->raw = c->text = NULL;
    c->raw_len = c->raw_cap = c->text_len = c->text_cap = 0;
}
