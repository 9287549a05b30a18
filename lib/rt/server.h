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

/* Internal, for fuzz harnesses (fuzz/fuzz_rt_server.c): serves the
 * connected stream socket `fd` (a socketpair end, say) as if it had been
 * accepted on a cleartext listener: the sniffer (h2c preface or
 * HTTP/1.1), the routes, the limits and timers all apply; no peer address
 * (no per-address cap).  On success the connection owns fd (closed with
 * it); on failure the caller still does.  Returns 0, H2WS_ERR_CLOSED
 * (shutting down, or libuv refused the fd) or H2WS_ERR_NOMEM.  Not
 * public API. */
int h2ws__rt_server_adopt_fd(h2ws_server *srv, int fd);

#endif
