/* lib/rt/proto.h - the protocols that run on a connection and carry
 * WebSockets: HTTP/1.1 (conn_h1.c, both roles; the connection is the
 * carrier) and HTTP/2 (conn_h2.c, both roles; one carrier per stream).
 * Their owners (server.c, client.c) start them by name; they report back
 * through the connection's owner hooks (conn.h). */
#ifndef H2WS_LIB_RT_PROTO_H
#define H2WS_LIB_RT_PROTO_H

#include "rt/conn.h"
#include "rt/carrier.h"
#include "rt/request.h"

/* What a protocol needs to know from its owner (data, not calls).  The
 * owner keeps it alive as long as its connections. */
typedef struct rt_proto_config {
  const h2ws_ws_settings *ws; /* engine settings of its WebSockets */
  int h2_websockets;          /* server: advertise RFC 8441 */
  uint64_t idle_ms;           /* HTTP/2 idle timeout: server: no WebSocket
                                 and no input for this long, 0 none;
                                 client: no WebSocket for this long (when
                                 the owner's close_idle lets it go), 0 at
                                 once.  Read live: the owner may change it */
  int trace;                  /* client HTTP/2: frame lines to owner->trace */
  /* server: Alt-Svc value for plain HTTP/1.1 and HTTP/2 responses
   * ("h3=\":443\"" once an HTTP/3 listener runs), "" none */
  char alt_svc[48];
  /* server: memory budgets (docs/design.md "Memory bounds") */
  rt_budget *srv_budget;      /* the server's, or NULL */
  size_t conn_budget;         /* per connection (HTTP/2: all its
                                 streams), 0 none */
  uint64_t write_timeout_ms;  /* output of a closing WebSocket that has
                                 not drained this long after our Close is
                                 dropped; 0 never */
} rt_proto_config;

/* What a client WebSocket asks for (copied by the protocol as needed). */
typedef struct rt_ws_target {
  int tls;                          /* wss: :scheme https */
  const char *authority;            /* Host / :authority */
  const char *path;                 /* path + query */
  const char *origin;               /* NULL: none */
  const char *protocols;            /* "a, b" (HTTP/1.1), NULL: none */
  const char *const *protov;        /* the same, one by one (HTTP/2) */
  size_t nprotos;
  int compress;                     /* offer permessage-deflate */
  const h2ws_header *headers;       /* extra fields, checked by the client */
  size_t nheaders;
} rt_ws_target;

typedef struct rt_h2 rt_h2;

/* HTTP/1.1 server on c. */
int h2ws__rt_h1_server_start(rt_conn *c, const rt_proto_config *cfg);
/* HTTP/1.1 client on c: sends the Upgrade request for ws (which it
 * carries from here; on failure ws gets on_fail and is freed). */
int h2ws__rt_h1_client_start(rt_conn *c, const rt_proto_config *cfg,
                             h2ws_rt_ws *ws, const rt_ws_target *t);
/* HTTP/2 server on c (transport H2_TLS when encrypted, else H2C). */
int h2ws__rt_h2_server_start(rt_conn *c, const rt_proto_config *cfg);
/* HTTP/2 client session on c; *ph2 (may be NULL) gets it. */
int h2ws__rt_h2_client_start(rt_conn *c, const rt_proto_config *cfg,
                             rt_h2 **ph2);
/* Opens ws on the client session.  Returns 0 (ws is carried: on_open or
 * the owner's ws_refused follows) or an error (ws untouched, no
 * carrier): H2WS_ERR_H2_TOO_MANY_STREAMS, H2WS_ERR_H2_GOAWAY, ... */
int h2ws__rt_h2_open(rt_h2 *h2, h2ws_rt_ws *ws, const rt_ws_target *t);
/* Nonzero if the session can take new WebSockets. */
int h2ws__rt_h2_usable(const rt_h2 *h2);
/* Client: how many WebSockets the session carries at most
 * (h2ws_h2_session_ws_limit: the binding's cap, and once known the
 * server's SETTINGS_MAX_CONCURRENT_STREAMS; 0: the server allows none). */
size_t h2ws__rt_h2_ws_limit(const rt_h2 *h2);
/* Client: re-checks at the next flush whether an idle connection should
 * go (after the owner's close_idle or the config's idle_ms changed). */
void h2ws__rt_h2_close_if_idle(rt_h2 *h2);

#endif
