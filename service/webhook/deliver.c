/* deliver.c: one webhook POST with its address pinned (see deliver.h). */
#include "webhook/deliver.h"

#include <curl/curl.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#define BODY_CAP (64 * 1024) /* response bytes read at most; the rest is not waited for */

struct call {
    const struct wh_post *p;
    struct sockaddr_storage pinned;
    socklen_t pinned_len;
    bool mismatch; /* curl was about to connect elsewhere than pinned */
    size_t received;
    bool capped;
    int64_t retry_after;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool same_addr(const struct sockaddr *a, const struct sockaddr *b)
{
    if (a->sa_family != b->sa_family)
        return false;
    if (a->sa_family == AF_INET)
        return ((const struct sockaddr_in *)(const void *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)(const void *)b)->sin_addr.s_addr;
    if (a->sa_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)(const void *)a)->sin6_addr,
                      &((const struct sockaddr_in6 *)(const void *)b)->sin6_addr, 16) == 0;
    return false;
}

/* The socket curl opens must be for the pinned address, whatever else happened. */
static curl_socket_t open_socket(void *cls, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct call *c = cls;
    if (purpose != CURLSOCKTYPE_IPCXN || !same_addr(&a->addr, (struct sockaddr *)&c->pinned)) {
        c->mismatch = true;
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype, a->protocol);
}

static size_t on_body(char *data, size_t size, size_t n, void *cls)
{
    (void)data;
    struct call *c = cls;
    c->received += size * n;
    if (c->received > BODY_CAP) {
        c->capped = true;
        return 0; /* enough: the status decides, not the body */
    }
    return size * n;
}

static size_t on_header(char *data, size_t size, size_t n, void *cls)
{
    struct call *c = cls;
    size_t len = size * n;
    static const char name[] = "retry-after:";
    if (len > sizeof(name) - 1 && len < 200 && strncasecmp(data, name, sizeof(name) - 1) == 0) {
        char v[200];
        size_t k = sizeof(name) - 1;
        while (k < len && (data[k] == ' ' || data[k] == '\t'))
            k++;
        snprintf(v, sizeof(v), "%.*s", (int)(len - k), data + k);
        v[strcspn(v, "\r\n")] = '\0';
        char *end;
        long long secs = strtoll(v, &end, 10);
        if (end != v && *end == '\0' && secs >= 0) {
            c->retry_after = secs;
        } else { /* an HTTP date */
            time_t when = curl_getdate(v, NULL);
            if (when > 0)
                c->retry_after = when > time(NULL) ? (int64_t)(when - time(NULL)) : 0;
        }
    }
    return len;
}

static int on_progress(void *cls, curl_off_t a, curl_off_t b, curl_off_t c_, curl_off_t d)
{
    (void)a, (void)b, (void)c_, (void)d;
    const struct call *c = cls;
    return c->p->abort && atomic_load(c->p->abort) ? 1 : 0;
}

/* Resolve the host and choose the first address that may be called; false
 * with r->error (and r->refused when only refused addresses came back). */
static bool choose_address(const struct wh_post *p, struct call *c, struct wh_post_result *r)
{
    char port[8];
    snprintf(port, sizeof(port), "%d", p->target->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(p->target->host, port, &hints, &ai);
    if (rc != 0 || !ai) {
        snprintf(r->error, sizeof(r->error), "could not resolve %.200s: %s", p->target->host,
                 gai_strerror(rc));
        return false;
    }
    const char *why = NULL;
    char first[64] = "";
    for (struct addrinfo *i = ai; i; i = i->ai_next) {
        if (i->ai_family != AF_INET && i->ai_family != AF_INET6)
            continue;
        const char *cls = p->allow_private ? NULL : wh_addr_refused(i->ai_addr);
        if (!cls) {
            memcpy(&c->pinned, i->ai_addr, i->ai_addrlen);
            c->pinned_len = i->ai_addrlen;
            freeaddrinfo(ai);
            return true;
        }
        if (!why) {
            why = cls;
            wh_addr_text(i->ai_addr, first, sizeof(first));
        }
    }
    freeaddrinfo(ai);
    r->refused = true;
    snprintf(r->error, sizeof(r->error),
             "refused: %.100s resolves only to addresses embedd does not call (%s, %s); "
             "--webhook-allow-private lifts this",
             p->target->host, first[0] ? first : "none", why ? why : "no IP address");
    return false;
}

static void perform(const struct wh_post *p, struct call *c, struct wh_post_result *r)
{
    CURL *h = curl_easy_init();
    struct curl_slist *hdrs = NULL, *resolve = NULL;
    char line[512], addr[64];
    bool ok = h != NULL;
    /* the pinned address for host:port (IPv6 in brackets); a literal host
     * is not resolved by curl, and open_socket checks it all the same */
    wh_addr_text((struct sockaddr *)&c->pinned, addr, sizeof(addr));
    bool v6 = c->pinned.ss_family == AF_INET6;
    snprintf(line, sizeof(line), "%s:%d:%s%s%s", p->target->host, p->target->port, v6 ? "[" : "",
             addr, v6 ? "]" : "");
    if (!p->target->literal)
        ok = ok && (resolve = curl_slist_append(NULL, line)) != NULL;
    const char *fixed[] = {"Content-Type: application/json", "Expect:", NULL};
    for (size_t i = 0; ok && fixed[i]; i++)
        ok = (hdrs = curl_slist_append(hdrs, fixed[i])) != NULL;
    snprintf(line, sizeof(line), "webhook-id: %s", p->msg_id);
    ok = ok && (hdrs = curl_slist_append(hdrs, line)) != NULL;
    snprintf(line, sizeof(line), "webhook-timestamp: %lld", (long long)p->timestamp);
    ok = ok && (hdrs = curl_slist_append(hdrs, line)) != NULL;
    snprintf(line, sizeof(line), "webhook-signature: %s", p->signature);
    ok = ok && (hdrs = curl_slist_append(hdrs, line)) != NULL;
    memset(line, 0, sizeof(line));
    if (!ok) {
        snprintf(r->error, sizeof(r->error), "out of memory");
        goto out;
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    long connect_ms = p->timeout_ms < 10000 ? p->timeout_ms : 10000;
    curl_easy_setopt(h, CURLOPT_URL, p->url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_PROXY, ""); /* no proxy from the environment */
    curl_easy_setopt(h, CURLOPT_RESOLVE, resolve);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, c);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, p->timeout_ms);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "embedd-webhooks/0.1");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, p->body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)p->body_len);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, c);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    r->status = (int)status;
    r->retry_after = c->retry_after;
    if (c->mismatch) {
        r->refused = true;
        snprintf(r->error, sizeof(r->error),
                 "refused: the connection would not have gone to the address checked");
    } else if (rc == CURLE_ABORTED_BY_CALLBACK) {
        r->aborted = true;
        snprintf(r->error, sizeof(r->error), "cut off by shutdown");
    } else if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && c->capped && status)) {
        snprintf(r->error, sizeof(r->error), "%s%s%.200s", curl_easy_strerror(rc),
                 errbuf[0] ? ": " : "", errbuf);
    } else if (status < 200 || status > 299) {
        snprintf(r->error, sizeof(r->error), "HTTP %ld", status);
    }
out:
    curl_slist_free_all(hdrs);
    curl_slist_free_all(resolve);
    if (h)
        curl_easy_cleanup(h);
}

void wh_post_send(const struct wh_post *p, struct wh_post_result *r)
{
    memset(r, 0, sizeof(*r));
    r->retry_after = -1;
    int64_t t0 = mono_ms();
    struct call c = {.p = p, .retry_after = -1};
    if (choose_address(p, &c, r))
        perform(p, &c, r);
    r->duration_ms = mono_ms() - t0;
}
