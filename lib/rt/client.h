/* lib/rt/client.h - the client's private types: what each WebSocket asks
 * for (parsed URL and options) and the connections of the per-origin pool. */
#ifndef H2WS_LIB_RT_CLIENT_H
#define H2WS_LIB_RT_CLIENT_H
#include "rt/internal.h"

#define RT_MAX_PROTOS 16
#define RT_MAX_HEADERS 32
#define RT_HEADER_BYTES 4096

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
  h2ws_header headers[RT_MAX_HEADERS]; /* extra fields (lower-case names) */
  size_t nheaders;
  char hbuf[RT_HEADER_BYTES]; /* their NUL-terminated copies */
};

/* Diagnostics (h2ws_client_settings.trace, the h2ws client's -v).  All
 * do nothing when the client has no trace callback. */
int h2ws__client_cc_tracing(const rt_cconn *cc);
/* One HTTP/2 frame line of a connection of the pool. */
void h2ws__client_cc_trace(const rt_cconn *cc, int sent, const char *line);
/* An HTTP/1.1 handshake head, one trace line per header line. */
void h2ws__client_trace_head(const h2ws_rt_ws *ws, int sent,
                             const uint8_t *head, size_t len);
/* The engine callbacks for ws: the runtime's, plus the frame trace when
 * ws belongs to a tracing client.  Fills *buf and returns it. */
const h2ws_ws_callbacks *h2ws__rt_ws_engine_callbacks_for(
    const h2ws_rt_ws *ws, h2ws_ws_callbacks *buf);

#endif
