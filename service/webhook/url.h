/*
 * url.h: which webhook URLs embedd will call. Only http and https, no
 * credentials in the URL, and no address in a private, loopback, link-local,
 * unspecified, multicast, carrier-grade NAT, documentation or otherwise
 * non-public range, unless private addresses are allowed (a setting, for
 * tests and closed networks). A URL is checked twice: its form and a literal
 * IP host when a job names it (wh_url_parse), and every address its host
 * resolves to just before each delivery (wh_addr_refused; deliver.c pins
 * the address it checked).
 */
#ifndef SVC_WEBHOOK_URL_H
#define SVC_WEBHOOK_URL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "util/compiler.h"

#define WH_URL_MAX 2048

struct wh_target {
    char scheme[8]; /* "http" or "https" */
    char host[256]; /* as in the URL, an IPv6 address without its brackets */
    int port;       /* the URL's, else the scheme's */
    bool literal;   /* host is an IP address */
};

enum wh_url_verdict {
    WH_URL_OK,
    WH_URL_INVALID, /* not an absolute http(s) URL embedd accepts */
    WH_URL_REFUSED, /* a literal address in a refused range */
};

/* Check url; on WH_URL_OK *t is filled. Otherwise why says what is wrong, in
 * a sentence fit for a problem detail. */
enum wh_url_verdict wh_url_parse(const char *url, bool allow_private, struct wh_target *t,
                                 char *why, size_t n) SVC_MUSTCHECK;

/* NULL when sa (AF_INET or AF_INET6) is a public unicast address; else the
 * name of the range that refuses it ("loopback", "private", ...). */
const char *wh_addr_refused(const struct sockaddr *sa);

/* The address of sa as text (no port); "?" for another family. */
void wh_addr_text(const struct sockaddr *sa, char *out, size_t n);

#endif
