/* lib/rt/client.h - the client's private types: what each WebSocket asks
 * for (parsed URL and options) and the connections of the per-origin pool. */
#ifndef H2WS_LIB_RT_CLIENT_H
#define H2WS_LIB_RT_CLIENT_H
#include "rt/internal.h"

#define RT_MAX_PROTOS 16

/* One WebSocket to open (h2ws_rt_ws.creq). */
struct rt_cws {
  int tls;               /* wss */
  char host[256];        /* without brackets */
  int port;
  char authority[300];   /* host[:port] as sent (Host / :authority) */
  char path[2048];       /* path + query */
  char origin[512];      /* "" = none */
  char protos[512];      /* "a, b" as sent on HTTP/1.1, "" = none */
  char protobuf[512];    /* NUL-separated copies for protov */
  const char *protov[RT_MAX_PROTOS];
  size_t nprotos;
  int policy;
  int compress;
  int fell_back;         /* already fell back to HTTP/1.1 */
  int retried;           /* already moved to a new HTTP/2 connection */
};

#endif
