/* url.c: webhook URL and address checks (see url.h). */
#include "webhook/url.h"

#include <curl/curl.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* IPv4 ranges that are not public unicast (RFC 6890 and its updates). */
static const struct {
    uint32_t net;
    int bits;
    const char *name;
} v4_refused[] = {
    {0x00000000, 8, "unspecified (0.0.0.0/8)"},
    {0x0a000000, 8, "private (10.0.0.0/8)"},
    {0x64400000, 10, "carrier-grade NAT (100.64.0.0/10)"},
    {0x7f000000, 8, "loopback (127.0.0.0/8)"},
    {0xa9fe0000, 16, "link-local (169.254.0.0/16)"},
    {0xac100000, 12, "private (172.16.0.0/12)"},
    {0xc0000000, 24, "IETF protocol assignments (192.0.0.0/24)"},
    {0xc0000200, 24, "documentation (192.0.2.0/24)"},
    {0xc0586300, 24, "6to4 relay anycast (192.88.99.0/24)"},
    {0xc0a80000, 16, "private (192.168.0.0/16)"},
    {0xc6120000, 15, "benchmarking (198.18.0.0/15)"},
    {0xc6336400, 24, "documentation (198.51.100.0/24)"},
    {0xcb007100, 24, "documentation (203.0.113.0/24)"},
    {0xe0000000, 4, "multicast (224.0.0.0/4)"},
    {0xf0000000, 4, "reserved (240.0.0.0/4)"},
};

static const char *v4_class(uint32_t a)
{
    for (size_t i = 0; i < sizeof(v4_refused) / sizeof(v4_refused[0]); i++) {
        uint32_t mask = 0xffffffffu << (32 - v4_refused[i].bits);
        if ((a & mask) == v4_refused[i].net)
            return v4_refused[i].name;
    }
    return NULL;
}

static uint32_t v4_at(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool prefix(const unsigned char *a, const unsigned char *p, int bits)
{
    int whole = bits / 8, rest = bits % 8;
    if (memcmp(a, p, (size_t)whole) != 0)
        return false;
    return rest == 0 || ((a[whole] ^ p[whole]) & (0xff << (8 - rest))) == 0;
}

static const char *v6_class(const unsigned char *a)
{
    static const unsigned char zero[16] = {0};
    static const unsigned char loop[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b};
    if (memcmp(a, zero, 16) == 0)
        return "unspecified (::)";
    if (memcmp(a, loop, 16) == 0)
        return "loopback (::1)";
    /* addresses that carry an IPv4 address reach it: refused outright */
    if (memcmp(a, mapped, 12) == 0)
        return "IPv4-mapped (::ffff:0:0/96)";
    if (prefix(a, zero, 96))
        return "IPv4-compatible (::/96)";
    if (prefix(a, nat64, 96))
        return v4_class(v4_at(a + 12)) ? "NAT64 of a refused IPv4 address (64:ff9b::/96)" : NULL;
    if (a[0] == 0x20 && a[1] == 0x02) /* 6to4: the IPv4 address follows */
        return v4_class(v4_at(a + 2)) ? "6to4 of a refused IPv4 address (2002::/16)" : NULL;
    if (a[0] == 0xff)
        return "multicast (ff00::/8)";
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
        return "link-local (fe80::/10)";
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0)
        return "site-local (fec0::/10)";
    if ((a[0] & 0xfe) == 0xfc)
        return "unique local (fc00::/7)";
    static const unsigned char doc[4] = {0x20, 0x01, 0x0d, 0xb8};
    if (prefix(a, doc, 32))
        return "documentation (2001:db8::/32)";
    static const unsigned char discard[8] = {0x01, 0x00};
    if (prefix(a, discard, 64))
        return "discard-only (100::/64)";
    static const unsigned char teredo[4] = {0x20, 0x01, 0, 0};
    if (prefix(a, teredo, 32))
        return "Teredo (2001::/32)";
    return NULL;
}

const char *wh_addr_refused(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        return v4_class(ntohl(in->sin_addr.s_addr));
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        return v6_class(in6->sin6_addr.s6_addr);
    }
    return "not an IP address";
}

void wh_addr_text(const struct sockaddr *sa, char *out, size_t n)
{
    const void *a = NULL;
    if (sa->sa_family == AF_INET)
        a = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    else if (sa->sa_family == AF_INET6)
        a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
    if (!a || !inet_ntop(sa->sa_family, a, out, (socklen_t)n))
        snprintf(out, n, "?");
}

/* A part of h, or NULL when absent; the caller curl_free()s it. */
static char *part(CURLU *h, CURLUPart what, unsigned flags)
{
    char *v = NULL;
    return curl_url_get(h, what, &v, flags) == CURLUE_OK ? v : NULL;
}

static enum wh_url_verdict fail(enum wh_url_verdict v, char *why, size_t n, const char *msg)
{
    snprintf(why, n, "%s", msg);
    return v;
}

/* Fill t from the parsed URL h; WH_URL_OK or a verdict with why. */
static enum wh_url_verdict check_parts(CURLU *h, struct wh_target *t, char *why, size_t n)
{
    char *scheme = part(h, CURLUPART_SCHEME, 0);
    bool web = scheme && (strcasecmp(scheme, "http") == 0 || strcasecmp(scheme, "https") == 0);
    if (web)
        snprintf(t->scheme, sizeof(t->scheme), "%s", strcasecmp(scheme, "http") ? "https" : "http");
    curl_free(scheme);
    if (!web)
        return fail(WH_URL_INVALID, why, n, "webhook_url must be an http or https URL");
    char *user = part(h, CURLUPART_USER, 0), *pass = part(h, CURLUPART_PASSWORD, 0);
    bool creds = user || pass;
    curl_free(user);
    curl_free(pass);
    if (creds)
        return fail(WH_URL_INVALID, why, n,
                    "webhook_url must not hold credentials (user:password@); the signature "
                    "authenticates embedd to the receiver");
    char *host = part(h, CURLUPART_HOST, 0), *port = part(h, CURLUPART_PORT, CURLU_DEFAULT_PORT);
    size_t hl = host ? strlen(host) : 0;
    bool ok = hl > 0 && port;
    if (ok && host[0] == '[' && hl >= 2 && host[hl - 1] == ']')
        snprintf(t->host, sizeof(t->host), "%.*s", (int)(hl - 2), host + 1);
    else if (ok)
        ok = hl < sizeof(t->host) && snprintf(t->host, sizeof(t->host), "%s", host) > 0;
    t->port = ok ? (int)strtol(port, NULL, 10) : 0;
    curl_free(host);
    curl_free(port);
    if (!ok || t->port <= 0 || t->port > 65535)
        return fail(WH_URL_INVALID, why, n, "webhook_url must name a host (and a valid port)");
    return WH_URL_OK;
}

enum wh_url_verdict wh_url_parse(const char *url, bool allow_private, struct wh_target *t,
                                 char *why, size_t n)
{
    memset(t, 0, sizeof(*t));
    size_t len = strlen(url);
    if (len == 0 || len > WH_URL_MAX) {
        snprintf(why, n, "webhook_url must be 1 to %d bytes", WH_URL_MAX);
        return WH_URL_INVALID;
    }
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)url[i] <= 0x20 || url[i] == 0x7f)
            return fail(WH_URL_INVALID, why, n,
                        "webhook_url must not hold spaces or control characters");
    CURLU *h = curl_url();
    if (!h)
        return fail(WH_URL_INVALID, why, n, "out of memory");
    enum wh_url_verdict v = WH_URL_INVALID;
    if (curl_url_set(h, CURLUPART_URL, url, 0) != CURLUE_OK)
        snprintf(why, n, "webhook_url is not an absolute URL");
    else
        v = check_parts(h, t, why, n);
    curl_url_cleanup(h);
    if (v != WH_URL_OK)
        return v;
    /* a literal address (also the legacy IPv4 forms, 0x7f.1 or 2130706433) */
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    if (getaddrinfo(t->host, NULL, &hints, &ai) != 0 || !ai)
        return WH_URL_OK; /* a host name: its addresses are checked when it is called */
    t->literal = true;
    const char *cls = wh_addr_refused(ai->ai_addr);
    char text[64];
    wh_addr_text(ai->ai_addr, text, sizeof(text));
    freeaddrinfo(ai);
    if (cls && !allow_private) {
        snprintf(why, n,
                 "webhook_url points at %s, a %s address; embedd calls public addresses only "
                 "(--webhook-allow-private lifts this)",
                 text, cls);
        return WH_URL_REFUSED;
    }
    return WH_URL_OK;
}
