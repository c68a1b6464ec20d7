/* keys_limits.h: `embedd keys limits`, and how `keys list` shows a key's limits. */
#ifndef MAIN_KEYS_LIMITS_H
#define MAIN_KEYS_LIMITS_H

#include "config.h"
#include "store/keys.h"

#include <stddef.h>

/* embedd keys limits ID [--rps N] [--burst N] [--max-pending-chunks N]
 * (argv[0] is "limits"); N is a number, 0 for no limit, or "default". */
int keys_limits_cmd(const struct config *cfg, int argc, char **argv);

/* One limit as `keys list` shows it: the key's own ("100", "none"), or the
 * setting's in parentheses ("(100)", "(none)"). */
void keys_limit_show(int64_t own, int64_t setting, char *out, size_t n);

#endif
