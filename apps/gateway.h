/* apps/gateway.h - the WebSocket gateway (h2ws proxy, and routes of
 * h2ws serve): each WebSocket accepted from a client, over HTTP/2
 * (RFC 8441) or HTTP/1.1, is forwarded to a fixed backend: a WebSocket
 * server (ws://, wss://) over HTTP/1.1, or over HTTP/2 with many
 * WebSockets as streams of one backend connection (backend_h2), or a raw
 * TCP service (tcp://). */
#ifndef H2WS_APPS_GATEWAY_H
#define H2WS_APPS_GATEWAY_H

#include <stddef.h>
#include <stdint.h>
#include <h2ws/rt.h>

/*
 * Behaviour, per WebSocket:
 *
 *  - The client is answered (101 on HTTP/1.1, 200 on HTTP/2) only after
 *    the backend is ready: ws:// and wss:// backends must answer their
 *    HTTP/1.1 Upgrade (fresh Sec-WebSocket-Key, Host = the backend's host,
 *    the client's Origin and offered subprotocols) with 101, Upgrade:
 *    websocket, Connection: upgrade and exactly one matching
 *    Sec-WebSocket-Accept, or (backend_h2) their extended CONNECT with
 *    200 and matching sec-websocket-* fields; tcp:// backends must accept
 *    the TCP connection.  Anything else (refused, other status, bad or
 *    repeated accept, reset, timeout) answers 502, and no client data
 *    reaches the backend (SPEC pitfall 9: the request runs deferred, the
 *    client's input is held).
 *  - HTTP/2 backends (backend_h2, ws:// and wss:// only): each WebSocket
 *    is an RFC 8441 extended CONNECT stream; all WebSockets of the
 *    gateway to one backend origin share one connection (per worker:
 *    per gateway), h2c with prior knowledge for ws://, TLS with ALPN h2
 *    for wss://.  The CONNECT leaves only after the backend's SETTINGS
 *    carried ENABLE_CONNECT_PROTOCOL = 1.  Without it (or when the
 *    backend does not speak HTTP/2 at all, or ALPN picks http/1.1)
 *    GATEWAY_BACKEND_H2 uses an HTTP/1.1 Upgrade on a new connection
 *    (and goes there at once for 30 s), GATEWAY_BACKEND_H2_ONLY answers
 *    502.  At the backend's SETTINGS_MAX_CONCURRENT_STREAMS another
 *    connection is opened; after its GOAWAY new WebSockets go to a new
 *    connection while the open ones finish on the old one.  A
 *    connection without WebSockets is closed after 2 s.  A stalled
 *    client stalls only its own backend stream (that stream's window
 *    stays closed), and the other way round.
 *  - The subprotocol the backend chose is the one the client gets.
 *  - Backend path: the URL's path when it does not end with '/'; when it
 *    does, the URL's path followed by the client's path and query (without
 *    its leading '/'): --to ws://b/ and a client at /chat?x=1 -> /chat?x=1.
 *  - Messages are forwarded whole, text stays text, binary stays binary
 *    (tcp://: binary and text messages become bytes, bytes become binary
 *    messages).
 *  - Close codes and reasons pass through both ways.  A backend that ends
 *    without a Close (1006) closes the client with 1011 "backend closed
 *    abnormally" (1006 cannot be sent on the wire); a client that vanishes
 *    closes the backend with 1001 "client gone".  tcp://: EOF from the
 *    backend closes the client with 1000; a client Close ends the TCP
 *    connection.
 *  - Backpressure: a message the other side cannot queue (its output is at
 *    its cap) pauses the delivering side until that side drains, so a slow
 *    backend stalls only its own stream, and a slow client only its own
 *    backend WebSocket (an HTTP/1.1 connection, or an HTTP/2 stream whose
 *    window then stays closed).
 *  - The client's :authority / Host is never connected to (SPEC pitfall
 *    10): only the configured backend URL is.
 *  - Per hop, not forwarded: permessage-deflate (negotiated with the
 *    client as the server allows; never offered to the backend), pings
 *    (each side's are answered by the gateway), other request headers.
 */
/* How ws:// and wss:// backends are reached (gateway_options.backend_h2). */
enum {
  GATEWAY_BACKEND_H1 = 0,     /* HTTP/1.1 Upgrade, a connection each */
  GATEWAY_BACKEND_H2 = 1,     /* HTTP/2 streams when the backend does
                                 RFC 8441, else HTTP/1.1 */
  GATEWAY_BACKEND_H2_ONLY = 2 /* HTTP/2 streams, else 502 */
};

typedef struct gateway_options {
  /* GATEWAY_BACKEND_H1 (default), _H2 or _H2_ONLY. */
  int backend_h2;
  /* wss:// backends: skip certificate verification. */
  int insecure_backend;
  /* wss:// backends: extra trusted CA (PEM file), or NULL. */
  const char *backend_cafile;
  /* Budget for the backend's connect + handshake (ms); default 10000.
   * After it: 502. */
  uint64_t backend_timeout_ms;
  /* Largest message forwarded either way (bytes); default
   * KIT_DEFAULT_MAX_MESSAGE (1 MiB, the default of every command). */
  size_t max_message;
  /* The backend side's output budget (bytes; default 2 MiB), as the
   * server's ws.max_output is the client side's: a message that does not
   * fit is streamed from a copy while the side it came from is paused. */
  size_t ws_budget;
  /* Nonzero: one line per WebSocket on stderr (open, 502 reasons, end). */
  int verbose;
} gateway_options;

void gateway_options_default(gateway_options *opts);

/* A gateway: the routes of one server and the WebSocket pairs they
 * carry.  Everything lives in the object (no globals): two servers, each
 * with its gateway, can run in one process, on one loop or one per
 * thread (a gateway is used from its server's loop only). */
typedef struct gateway gateway;

/* Creates the gateway of srv (its runtime's loop carries the backends).
 * Returns 0, H2WS_ERR_INVALID_ARGUMENT, H2WS_ERR_NOMEM. */
int gateway_new(gateway **pgw, h2ws_server *srv);

/*
 * Routes WebSocket requests on `path` of the gateway's server to
 * backend_url ("ws://HOST[:PORT]/PATH", "wss://...", "tcp://HOST:PORT").
 * A path ending in '/' matches every path under it ("/" matches all).
 * host NULL: any host; else only requests whose :authority (HTTP/2) or
 * Host (HTTP/1.1) names `host` ("name" matches any port, "name:port"
 * that port only; case-insensitive).  Routes on one path are tried host
 * match first, then the one for any host, then those of "/"; none: 404.
 * The name is only compared, never connected to (SPEC pitfall 10).
 * Call before h2ws_server_listen(); opts may be NULL (defaults; copied).
 * Returns 0, H2WS_ERR_INVALID_ARGUMENT (bad URL or path, route given
 * twice: a message was printed on stderr), H2WS_ERR_NOMEM.
 */
int gateway_add_route(gateway *gw, const char *host, const char *path,
                      const char *backend_url, const gateway_options *opts);

/* A graceful stop has begun (the server's shutdown closes the clients,
 * which closes their backend WebSockets): HTTP/2 backend connections
 * left without WebSockets are closed at once instead of after their idle
 * time, so the loop can end.  Idempotent. */
void gateway_shutdown(gateway *gw);

/* Ends every backend connection still open or opening (their clients
 * get 1011 / 502), for a shutdown that must not wait for slow backends.
 * Not from inside a backend's callbacks (a timer or signal callback is
 * fine).  Later requests are refused with 502.  Idempotent. */
void gateway_abort_backends(gateway *gw);

/* Frees the gateway (its routes and backend clients).  Call after
 * h2ws_rt_run() returned (after gateway_abort_backends() and a last run
 * if the loop was stopped early), before h2ws_rt_del().  NULL allowed. */
void gateway_del(gateway *gw);

#endif
