/*
 * ui_assets.h: the dashboard's files (api/ui/), compiled into the binary by
 * cmake/embed_ui.cmake; served by ui.c.
 */
#ifndef API_UI_ASSETS_H
#define API_UI_ASSETS_H

#include <stddef.h>

struct ui_asset {
    const char *name; /* "app.js" */
    const char *content_type;
    const unsigned char *data; /* NUL-terminated after len bytes */
    size_t len;
    const char *etag; /* a quoted strong validator */
};

extern const struct ui_asset ui_assets[];
extern const size_t ui_assets_count;

#endif
