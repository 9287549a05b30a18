/* apps/assets.h - files of apps/assets/ embedded in the binary at build time
 * (cmake/embed.cmake). */
#ifndef H2WS_APPS_ASSETS_H
#define H2WS_APPS_ASSETS_H
#include <stddef.h>
/* The bytes of apps/assets/NAME (NUL-terminated, *plen excludes the NUL),
 * or NULL if there is no such asset. */
const unsigned char *h2ws_app_asset(const char *name, size_t *plen);
#endif
