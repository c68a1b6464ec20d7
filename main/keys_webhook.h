/*
 * keys_webhook.h: the webhook side of `embedd keys`: a key's signing secret
 * (made at creation, rotated on demand, each time shown once) and its
 * default webhook URL.
 */
#ifndef MAIN_KEYS_WEBHOOK_H
#define MAIN_KEYS_WEBHOOK_H

#include "config.h"

#include <libpq-fe.h>

#include <stdbool.h>
#include <stdint.h>

#include "webhook/secret.h"

/* Make key id a new signing secret on c (the old one, if any, keeps signing
 * for --webhook-secret-grace-s); its "whsec_..." text goes to text. False
 * with the reason logged. */
bool keys_webhook_new_secret(const struct config *cfg, PGconn *c, int64_t id,
                             char text[WH_SECRET_TEXT_LEN]);

/* embedd keys webhook ID [URL | --clear] */
int keys_webhook_cmd(const struct config *cfg, int argc, char **argv);
/* embedd keys rotate-webhook-secret ID */
int keys_rotate_cmd(const struct config *cfg, const char *arg);

#endif
