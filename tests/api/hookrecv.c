/* hookrecv.c: a webhook receiver for tests (see hookrecv.h). */
#include "hookrecv.h"

#include <criterion/criterion.h>
#include <microhttpd.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HOOK_MAX 256

struct hookrecv {
    struct MHD_Daemon *d;
    int port;
    pthread_mutex_t lock;
    struct hook_req reqs[HOOK_MAX];
    size_t n;
    int fail_left, fail_status;
};

struct pending {
    struct hook_req r;
    size_t cap;
};

static void copy_header(struct MHD_Connection *c, const char *name, char *out, size_t n)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
    snprintf(out, n, "%s", v ? v : "");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **state)
{
    (void)version;
    struct hookrecv *h = cls;
    struct pending *p = *state;
    if (!p) {
        p = calloc(1, sizeof(*p));
        if (!p)
            return MHD_NO;
        copy_header(c, "webhook-id", p->r.id, sizeof(p->r.id));
        copy_header(c, "webhook-timestamp", p->r.timestamp, sizeof(p->r.timestamp));
        copy_header(c, "webhook-signature", p->r.signature, sizeof(p->r.signature));
        snprintf(p->r.path, sizeof(p->r.path), "%s", url);
        *state = p;
        return MHD_YES;
    }
    if (*size) {
        if (p->r.len + *size + 1 > p->cap) {
            size_t cap = (p->r.len + *size + 1) * 2;
            char *b = realloc(p->r.body, cap);
            if (!b)
                return MHD_NO;
            p->r.body = b;
            p->cap = cap;
        }
        memcpy(p->r.body + p->r.len, data, *size);
        p->r.len += *size;
        p->r.body[p->r.len] = '\0';
        *size = 0;
        return MHD_YES;
    }
    int status = strcmp(method, "POST") == 0 ? 200 : 405;
    pthread_mutex_lock(&h->lock);
    if (status == 200 && h->fail_left > 0) {
        h->fail_left--;
        status = h->fail_status;
    }
    p->r.answered = status;
    if (!p->r.body)
        p->r.body = calloc(1, 1);
    if (h->n < HOOK_MAX) {
        h->reqs[h->n++] = p->r;
        p->r.body = NULL;
    }
    pthread_mutex_unlock(&h->lock);
    static char ok[] = "ok";
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(ok), ok, MHD_RESPMEM_PERSISTENT);
    enum MHD_Result res = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return res;
}

static void on_done(void *cls, struct MHD_Connection *c, void **state,
                    enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)c, (void)toe;
    struct pending *p = *state;
    if (p) {
        free(p->r.body);
        free(p);
    }
    *state = NULL;
}

struct hookrecv *hookrecv_start(void)
{
    struct hookrecv *h = calloc(1, sizeof(*h));
    cr_assert_not_null(h);
    pthread_mutex_init(&h->lock, NULL);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                            on_request, h, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_NOTIFY_COMPLETED,
                            on_done, h, MHD_OPTION_END);
    cr_assert_not_null(h->d, "the webhook receiver could not listen");
    const union MHD_DaemonInfo *i = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = i ? (int)i->port : 0;
    cr_assert(h->port > 0);
    return h;
}

int hookrecv_port(const struct hookrecv *h)
{
    return h->port;
}

void hookrecv_fail_next(struct hookrecv *h, int n, int status)
{
    pthread_mutex_lock(&h->lock);
    h->fail_left = n;
    h->fail_status = status;
    pthread_mutex_unlock(&h->lock);
}

size_t hookrecv_count(struct hookrecv *h)
{
    pthread_mutex_lock(&h->lock);
    size_t n = h->n;
    pthread_mutex_unlock(&h->lock);
    return n;
}

bool hookrecv_wait(struct hookrecv *h, size_t n, int timeout_ms)
{
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        if (hookrecv_count(h) >= n)
            return true;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000 > timeout_ms)
            return false;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

const struct hook_req *hookrecv_get(struct hookrecv *h, size_t i)
{
    pthread_mutex_lock(&h->lock);
    const struct hook_req *r = i < h->n ? &h->reqs[i] : NULL;
    pthread_mutex_unlock(&h->lock);
    return r;
}

void hookrecv_stop(struct hookrecv *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->d);
    for (size_t i = 0; i < h->n; i++)
        free(h->reqs[i].body);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

/* Standard base64 with padding; returns the byte count or -1. */
static int b64(const char *in, unsigned char *out, size_t max)
{
    size_t n = strlen(in);
    if (n == 0 || n % 4 || n / 4 * 3 > max)
        return -1;
    int len = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
    if (len < 0)
        return -1;
    return len - (in[n - 1] == '=') - (in[n - 2] == '=');
}

bool hookrecv_verify(const char *secret, const struct hook_req *r)
{
    if (strncmp(secret, "whsec_", 6) != 0)
        return false;
    unsigned char key[128];
    int klen = b64(secret + 6, key, sizeof(key));
    char *end;
    long long ts = strtoll(r->timestamp, &end, 10);
    if (klen <= 0 || !r->id[0] || end == r->timestamp || *end || llabs(ts - time(NULL)) > 300)
        return false;
    size_t n = strlen(r->id) + strlen(r->timestamp) + r->len + 3;
    char *msg = malloc(n);
    cr_assert_not_null(msg);
    int m = snprintf(msg, n, "%s.%s.", r->id, r->timestamp);
    memcpy(msg + m, r->body, r->len);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;
    HMAC(EVP_sha256(), key, klen, (const unsigned char *)msg, (size_t)m + r->len, mac, &mac_len);
    free(msg);
    /* a space-separated list of "version,signature" */
    char sigs[512];
    snprintf(sigs, sizeof(sigs), "%s", r->signature);
    char *save = NULL;
    for (char *s = strtok_r(sigs, " ", &save); s; s = strtok_r(NULL, " ", &save)) {
        unsigned char got[64];
        if (strncmp(s, "v1,", 3) == 0 && b64(s + 3, got, sizeof(got)) == (int)mac_len &&
            CRYPTO_memcmp(got, mac, mac_len) == 0)
            return true;
    }
    return false;
}
