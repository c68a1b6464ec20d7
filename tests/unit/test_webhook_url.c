/*
 * test_webhook_url.c: which webhook URLs are accepted, and which addresses
 * are refused (private, loopback, link-local, unspecified, multicast, CGNAT,
 * IPv6 unique local and link-local, IPv4-mapped, ...).
 */
#include "webhook/url.h"

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

static const char *refused(const char *addr)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (strchr(addr, ':')) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        cr_assert_eq(inet_pton(AF_INET6, addr, &a->sin6_addr), 1, "%s", addr);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        cr_assert_eq(inet_pton(AF_INET, addr, &a->sin_addr), 1, "%s", addr);
    }
    return wh_addr_refused((struct sockaddr *)&ss);
}

Test(webhook_url, refused_ranges)
{
    static const char *const no[] = {
        "0.0.0.0",
        "0.1.2.3",
        "10.0.0.1",
        "10.255.255.255",
        "100.64.0.1",
        "100.127.255.1",
        "127.0.0.1",
        "127.1.2.3",
        "169.254.169.254",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "192.0.0.8",
        "192.0.2.1",
        "198.18.0.1",
        "198.51.100.7",
        "203.0.113.9",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "::",
        "::1",
        "fe80::1",
        "febf::1",
        "fc00::1",
        "fd12:3456::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:8.8.8.8",
        "::127.0.0.1",
        "64:ff9b::a00:1",
        "2002:c0a8:101::1",
        "2001:db8::1",
        "fec0::1",
        "100::1",
        "2001::1",
    };
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        cr_assert_not_null(refused(no[i]), "%s should be refused", no[i]);
    static const char *const yes[] = {"8.8.8.8",         "1.1.1.1",          "100.63.255.255",
                                      "100.128.0.1",     "172.15.0.1",       "172.32.0.1",
                                      "192.169.0.1",     "11.0.0.1",         "2606:4700::1111",
                                      "2a00:1450::200e", "64:ff9b::808:808", "2002:808:808::1"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        cr_assert_null(refused(yes[i]), "%s is public, refused as %s", yes[i], refused(yes[i]));
    cr_assert_str_eq(refused("127.0.0.1"), "loopback (127.0.0.0/8)");
}

static enum wh_url_verdict parse(const char *url, bool allow, struct wh_target *t)
{
    char why[300];
    return wh_url_parse(url, allow, t, why, sizeof(why));
}

Test(webhook_url, accepted_forms)
{
    struct wh_target t;
    cr_assert_eq(parse("https://hooks.example.com/embedd?x=1", false, &t), WH_URL_OK);
    cr_assert_str_eq(t.scheme, "https");
    cr_assert_str_eq(t.host, "hooks.example.com");
    cr_assert_eq(t.port, 443);
    cr_assert(!t.literal);
    cr_assert_eq(parse("HTTP://Example.com:8080", false, &t), WH_URL_OK);
    cr_assert_str_eq(t.scheme, "http");
    cr_assert_eq(t.port, 8080);
    cr_assert_eq(parse("http://8.8.8.8/x", false, &t), WH_URL_OK);
    cr_assert(t.literal);
    cr_assert_eq(parse("http://[2606:4700::1111]:81/", false, &t), WH_URL_OK);
    cr_assert_str_eq(t.host, "2606:4700::1111");
    cr_assert_eq(t.port, 81);
    /* a host name is not resolved here, even one that is local */
    cr_assert_eq(parse("http://localhost/", false, &t), WH_URL_OK);
    cr_assert(!t.literal);
}

Test(webhook_url, refused_and_invalid)
{
    struct wh_target t;
    static const char *const refused_urls[] = {
        "http://127.0.0.1/",         "http://[::1]:8080/",       "http://0x7f.1/",
        "http://2130706433/",        "http://10.0.0.1/",         "http://169.254.169.254/",
        "http://[::ffff:10.0.0.1]/", "http://[fe80::1%25eth0]/", "http://0.0.0.0/",
        "https://[fd00::2]/",        "http://100.64.1.1/",       "http://0177.0.0.1/"};
    for (size_t i = 0; i < sizeof(refused_urls) / sizeof(refused_urls[0]); i++) {
        cr_assert_eq(parse(refused_urls[i], false, &t), WH_URL_REFUSED, "%s", refused_urls[i]);
        cr_assert_eq(parse(refused_urls[i], true, &t), WH_URL_OK, "%s allowed", refused_urls[i]);
    }
    static const char *const invalid[] = {"ftp://example.com/",
                                          "file:///etc/passwd",
                                          "gopher://example.com/",
                                          "example.com/hook",
                                          "/hook",
                                          "",
                                          "http://",
                                          "http://user:pw@example.com/",
                                          "http://user@example.com/",
                                          "http://exa mple.com/",
                                          "http://example.com/\n",
                                          "javascript:alert(1)",
                                          "http://example.com:99999/"};
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
        cr_assert_eq(parse(invalid[i], true, &t), WH_URL_INVALID, "\"%s\"", invalid[i]);
    char long_url[WH_URL_MAX + 16];
    memset(long_url, 'a', sizeof(long_url) - 1);
    memcpy(long_url, "http://x.com/", 13);
    long_url[sizeof(long_url) - 1] = '\0';
    cr_assert_eq(parse(long_url, true, &t), WH_URL_INVALID);
}
