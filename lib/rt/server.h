/* lib/rt/server.h - what the server (server.c) offers the files that
 * build on it (static.c). */
#ifndef H2WS_LIB_RT_SERVER_H
#define H2WS_LIB_RT_SERVER_H

#include "rt/loop.h"

/* A prefix HTTP route whose user_data `owned` (h2ws_mem memory) the
 * server frees with itself. */
int h2ws__rt_server_route_owned(h2ws_server *srv, const char *prefix,
                                h2ws_rt_http_handler handler, void *owned);
/* A response body buffer valid until the server's next plain request
 * (the protocol copies the body right after the handler). NULL: nomem. */
uint8_t *h2ws__rt_server_body_alloc(h2ws_server *srv, size_t n);

#endif
