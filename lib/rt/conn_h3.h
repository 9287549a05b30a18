/* lib/rt/conn_h3.h - HTTP/3 on the runtime (conn_h3.c): a QUIC endpoint
 * on a UDP socket (udp.c) carrying many QUIC connections, each one an
 * h2ws_h3_session; each WebSocket stream is a carrier of an h2ws_rt_ws.
 * Server endpoints report requests through the rt_owner hooks
 * ws_request / http_request / refused (conn.h), client connections
 * through ws_refused and the hooks below; it never names its owners. */
#ifndef H2WS_LIB_RT_CONN_H3_H
#define H2WS_LIB_RT_CONN_H3_H

#include <gnutls/gnutls.h>
#include "rt/proto.h"

typedef struct rt_h3ep rt_h3ep; /* one UDP socket, many connections */
typedef struct rt_h3c rt_h3c;   /* one QUIC connection */

typedef struct rt_h3_server_config {
  const rt_proto_config *pcfg; /* ws settings, h2_websockets (ENABLE_
                                  CONNECT_PROTOCOL), idle_ms; read live */
  const rt_owner *owner;       /* ws_request, http_request, refused */
  void *owner_data;
  gnutls_certificate_credentials_t cred; /* the owner's, kept alive */
  uint8_t secret[32];          /* Retry / stateless reset tokens */
  int require_retry;           /* address validation for every Initial */
  uint32_t max_connections;    /* Initials beyond it are dropped */
  uint64_t handshake_ms;       /* QUIC handshake and deferred answers */
  /* the endpoint is gone (after h2ws__rt_h3_close or the end of a
   * shutdown) */
  void (*gone)(rt_h3ep *ep, void *owner_data);
} rt_h3_server_config;

/* Binds addr (UDP) and serves.  cfg is copied.  Returns 0,
 * H2WS_ERR_RT_LISTEN (err says why), H2WS_ERR_NOMEM. */
int h2ws__rt_h3_server_new(rt_h3ep **pep, h2ws_rt *rt,
                           const struct sockaddr *addr, int reuseport,
                           const rt_h3_server_config *cfg, char *err,
                           size_t errlen);
/* The bound UDP port. */
int h2ws__rt_h3_port(const rt_h3ep *ep);
/* Graceful: no new connection; Close 1001 on every WebSocket, GOAWAY and
 * CONNECTION_CLOSE after the drain; the socket closes when the last
 * connection is over (then cfg.gone). */
void h2ws__rt_h3_shutdown(rt_h3ep *ep, uint64_t drain_ms);
/* Now: CONNECTION_CLOSE on every connection, then as above. */
void h2ws__rt_h3_close(rt_h3ep *ep);
/* Live connections (server). */
size_t h2ws__rt_h3_num_conns(const rt_h3ep *ep);
/* Every connection flushes soon (the server's memory budget is back under
 * its limit: WebSockets it paused are offered input again). */
void h2ws__rt_h3_wake(rt_h3ep *ep);

/* Client connection hooks (with the owner's data). */
typedef struct rt_h3_client_hooks {
  /* ws (not open yet) was refused: status, error as
   * h2ws_h3_callbacks.on_ws_refused, or H2WS_ERR_H3_CLOSED with `why`
   * when the connection failed or ended first; ws has no carrier. */
  void (*ws_refused)(h2ws_rt_ws *ws, int status, int error, const char *why,
                     void *owner);
  /* the connection is gone (c must not be used after) */
  void (*closed)(rt_h3c *c, void *owner);
  /* nonzero if a connection that carries no WebSocket may go now */
  int (*close_idle)(void *owner);
} rt_h3_client_hooks;

typedef struct rt_h3_client_config {
  const rt_proto_config *pcfg;
  gnutls_certificate_credentials_t cred; /* trust anchors, the owner's */
  int verify;                  /* check the certificate */
  const char *server_name;     /* SNI and verification (copied) */
  uint64_t handshake_ms;       /* 0: 10 s */
} rt_h3_client_config;

/* Connects to `to` (a UDP socket of its own, connected, so that an ICMP
 * port unreachable ends the attempt at once).  Returns 0, H2WS_ERR_NOMEM,
 * H2WS_ERR_RT_CONNECT, H2WS_ERR_INTERNAL. */
int h2ws__rt_h3_client_new(rt_h3c **pc, h2ws_rt *rt, const struct sockaddr *to,
                           const rt_h3_client_config *cfg,
                           const rt_h3_client_hooks *hooks, void *owner);
/* Opens ws on c (queued by the binding until the server's SETTINGS).
 * Returns 0 (ws carried: on_open or hooks->ws_refused follows) or an
 * error (ws untouched). */
int h2ws__rt_h3_open(rt_h3c *c, h2ws_rt_ws *ws, const rt_ws_target *t);
/* Nonzero if c can take new WebSockets. */
int h2ws__rt_h3_usable(const rt_h3c *c);
/* Closes a client connection now (its WebSockets end: 1006 / refused). */
void h2ws__rt_h3_client_close(rt_h3c *c);
/* Re-checks at the next flush whether an idle client connection should
 * go (after the owner's close_idle changed). */
void h2ws__rt_h3_close_if_idle(rt_h3c *c);

/* Credentials from the server's OpenSSL context (its certificate chain
 * and key, whatever made them: files or the generated one).  Returns 0
 * or H2WS_ERR_RT_TLS (err says why). */
int h2ws__rt_h3_server_cred(gnutls_certificate_credentials_t *pcred,
                            void *ssl_ctx, char *err, size_t errlen);
/* Client trust anchors: the system's, plus cafile if not NULL. */
int h2ws__rt_h3_client_cred(gnutls_certificate_credentials_t *pcred,
                            const char *cafile, char *err, size_t errlen);

#endif
