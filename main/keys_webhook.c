/* keys_webhook.c: embedd keys webhook and keys rotate-webhook-secret (see keys_webhook.h). */
#include "keys_webhook.h"

#include "log.h"
#include "store/db.h"
#include "store/webhooks.h"
#include "webhook/url.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool keys_webhook_new_secret(const struct config *cfg, PGconn *c, int64_t id,
                             char text[WH_SECRET_TEXT_LEN])
{
    struct wh_sealer sealer;
    char err[512];
    if (!wh_sealer_init(&sealer, cfg->webhook_secret_key, err, sizeof(err))) {
        log_error("%s", err);
        return false;
    }
    unsigned char raw[WH_SECRET_LEN], sealed[WH_SEALED_MAX];
    size_t n = 0;
    bool ok = wh_secret_new(raw) && (n = wh_seal(&sealer, raw, sealed)) > 0;
    memset(&sealer, 0, sizeof(sealer));
    if (!ok) {
        memset(raw, 0, sizeof(raw));
        log_error("could not make a webhook secret: libcrypto or the random source failed");
        return false;
    }
    enum keys_result r =
        keys_webhook_set_secret(c, id, sealed, n, cfg->webhook_secret_grace_s, err, sizeof(err));
    memset(sealed, 0, sizeof(sealed));
    if (r == KEYS_OK)
        wh_secret_text(raw, sizeof(raw), text);
    memset(raw, 0, sizeof(raw));
    if (r == KEYS_DB_ERROR)
        log_error("%s", err);
    else if (r == KEYS_INVALID)
        fprintf(stderr, "embedd: no active key %lld\n", (long long)id);
    return r == KEYS_OK;
}

static bool key_id(const char *arg, const char *cmd, int64_t *id)
{
    char *end;
    errno = 0;
    long long v = strtoll(arg, &end, 10);
    if (errno || end == arg || *end || v <= 0) {
        fprintf(stderr, "embedd: %s needs a key id (see embedd keys list), not \"%s\"\n", cmd, arg);
        return false;
    }
    *id = (int64_t)v;
    return true;
}

int keys_rotate_cmd(const struct config *cfg, const char *arg)
{
    int64_t id;
    if (!key_id(arg, "keys rotate-webhook-secret", &id))
        return 2;
    char err[768], text[WH_SECRET_TEXT_LEN];
    PGconn *c = db_connect(cfg->database_url, err, sizeof(err));
    if (!c) {
        log_error("%s", err);
        return 1;
    }
    bool ok = keys_webhook_new_secret(cfg, c, id, text);
    PQfinish(c);
    if (!ok)
        return 1;
    log_info("rotated the webhook secret of key %lld; it is shown once; the previous one also "
             "signs for %lld s more",
             (long long)id, (long long)cfg->webhook_secret_grace_s);
    printf("%s\n", text);
    memset(text, 0, sizeof(text));
    return 0;
}

/* Set (url) or clear (NULL) key id's default URL on c; prints a new secret
 * when the key had none. */
static int set_url(const struct config *cfg, PGconn *c, int64_t id, const char *url)
{
    char err[768];
    bool has_secret = false;
    enum keys_result r = keys_webhook_set_url(c, id, url, &has_secret, err, sizeof(err));
    if (r == KEYS_DB_ERROR) {
        log_error("%s", err);
        return 1;
    }
    if (r == KEYS_INVALID) {
        fprintf(stderr, "embedd: no active key %lld\n", (long long)id);
        return 1;
    }
    log_info("key %lld: default webhook URL %s", (long long)id, url ? "set" : "cleared");
    if (url && !has_secret) {
        char text[WH_SECRET_TEXT_LEN];
        if (!keys_webhook_new_secret(cfg, c, id, text))
            return 1;
        log_info("key %lld had no webhook secret: made one; it is shown once", (long long)id);
        printf("%s\n", text);
        memset(text, 0, sizeof(text));
    }
    return 0;
}

int keys_webhook_cmd(const struct config *cfg, int argc, char **argv)
{
    int64_t id;
    if (argc < 1 || argc > 2) {
        fprintf(stderr, "embedd: usage: embedd keys webhook ID [URL | --clear]\n");
        return 2;
    }
    if (!key_id(argv[0], "keys webhook", &id))
        return 2;
    const char *url = argc == 2 && strcmp(argv[1], "--clear") != 0 ? argv[1] : NULL;
    if (url) {
        struct wh_target t;
        char why[300];
        if (wh_url_parse(url, cfg->webhook_allow_private != 0, &t, why, sizeof(why)) != WH_URL_OK) {
            fprintf(stderr, "embedd: %s\n", why);
            return 2;
        }
    }
    char err[768];
    PGconn *c = db_connect(cfg->database_url, err, sizeof(err));
    if (!c) {
        log_error("%s", err);
        return 1;
    }
    int rc = 0;
    if (argc == 2) {
        rc = set_url(cfg, c, id, url);
    } else {
        char cur[WH_URL_MAX + 1];
        bool has_secret = false;
        enum keys_result r =
            keys_webhook_get(c, id, cur, sizeof(cur), &has_secret, err, sizeof(err));
        if (r == KEYS_OK)
            printf("%s\n", cur[0] ? cur : "(none)");
        else if (r == KEYS_INVALID)
            fprintf(stderr, "embedd: no active key %lld\n", (long long)id);
        else
            log_error("%s", err);
        rc = r == KEYS_OK ? 0 : 1;
    }
    PQfinish(c);
    return rc;
}
