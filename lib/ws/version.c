/* lib/ws/version.c - the version of the library loaded (h2ws/h2ws.h). */
#include <h2ws/h2ws.h>

const char *h2ws_version(void) { return H2WS_VERSION; }

uint32_t h2ws_version_num(void) { return (uint32_t)H2WS_VERSION_NUM; }
