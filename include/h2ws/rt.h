/*
 * h2ws/rt.h - the ready-made runtime: one libuv event loop, TCP, DNS,
 * timers, signals and TLS (OpenSSL over memory BIOs, ALPN), running the
 * sans-I/O layers (engine, handshake rules, HTTP/2 binding) for servers and
 * clients.  This is the only h2ws layer that touches sockets, the clock and
 * OpenSSL.
 *
 * The application sees one WebSocket type, h2ws_rt_ws, whatever carries it:
 * an HTTP/1.1 Upgrade (RFC 6455), a stream of an HTTP/2 connection
 * (RFC 8441 extended CONNECT), over TLS or cleartext.  Messages arrive
 * whole (on_message); h2ws_rt_ws_send() / h2ws_rt_ws_close() act on them.
 *
 * Server:
 *
 *     h2ws_rt *rt;             h2ws_rt_new(&rt, NULL);
 *     h2ws_server *srv;        h2ws_server_new(&srv, rt, &settings);
 *     h2ws_server_route_ws(srv, "/echo", &handler, app);
 *     h2ws_server_route_http(srv, "/", page_handler, app);
 *     h2ws_server_listen(srv, "127.0.0.1:8443", 1, &port);   // TLS
 *     h2ws_rt_run(rt);         // until h2ws_server_shutdown() completes
 *     h2ws_server_del(srv);    h2ws_rt_del(rt);
 *
 *   A TLS listener negotiates ALPN "h2" (HTTP/2) or "http/1.1" on one port;
 *   a cleartext listener accepts HTTP/2 with prior knowledge (it detects
 *   the 24-byte connection preface) and HTTP/1.1 on the same port.
 *   SETTINGS_ENABLE_CONNECT_PROTOCOL is advertised only if a WebSocket
 *   route exists (SPEC pitfall 1).
 *
 * Client:
 *
 *     h2ws_client *cl;         h2ws_client_new(&cl, rt, &csettings);
 *     h2ws_client_open(cl, "wss://host:8443/echo", &opts, &cbs, app, &ws);
 *     h2ws_rt_run(rt);
 *
 *   wss:// negotiates ALPN.  Over HTTP/2 the client waits for the server's
 *   SETTINGS and uses extended CONNECT if ENABLE_CONNECT_PROTOCOL = 1; else
 *   policy AUTO opens a NEW HTTP/1.1 connection (fallback) and policy H2
 *   fails.  ws:// is HTTP/1.1 unless policy H2 (prior knowledge).  One
 *   HTTP/2 connection per origin is shared by all WebSockets of a client.
 *
 * Threading: everything runs on the loop's thread; no function may be
 * called from another thread.
 *
 * When callbacks fire: from the loop (inside h2ws_rt_run()); and from the
 * calls that end WebSockets at once: h2ws_client_del() and
 * h2ws_server_del() fire on_close for what they end (h2ws_server_shutdown()
 * only starts closing handshakes: their on_close come from the loop);
 * h2ws_client_open() may fire on_fail / on_note at once when the request
 * fails immediately (e.g. the origin's HTTP/2 connection refuses more
 * streams).  h2ws_rt_ws_send / _ping / _close / _resume never fire
 * callbacks: their effects are flushed from the loop, once per iteration
 * (all output of a connection in one TLS write and one uv_write).
 *
 * Errors: functions return 0 or a negative h2ws_error (h2ws/h2ws.h).
 */
#ifndef H2WS_RT_H
#define H2WS_RT_H

#include <h2ws/h2ws.h>
#include <h2ws/ws.h>
#include <h2ws/handshake.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct h2ws_rt h2ws_rt;
typedef struct h2ws_server h2ws_server;
typedef struct h2ws_client h2ws_client;
typedef struct h2ws_rt_ws h2ws_rt_ws;
typedef struct h2ws_rt_ws_request h2ws_rt_ws_request;

/* ------------------------------------------------------------------------
 * The loop
 * ------------------------------------------------------------------------ */

/* Creates the runtime (one libuv loop).  mem may be NULL (libc); it is
 * used for the runtime's own objects and passed to the protocol layers.
 * Sets SIGPIPE to ignored for the process (writes to a reset socket then
 * fail with EPIPE instead of killing it).
 * Returns 0, H2WS_ERR_NOMEM, H2WS_ERR_INTERNAL (libuv failed). */
H2WS_EXTERN int h2ws_rt_new(h2ws_rt **prt, const h2ws_mem *mem);

/* Runs the loop until nothing is left to do: no listener, no connection,
 * no pending request (and no application handle on the loop).
 * Returns 0 or H2WS_ERR_INTERNAL. */
H2WS_EXTERN int h2ws_rt_run(h2ws_rt *rt);

/* Frees the runtime.  Servers and clients must have been deleted.  Closes
 * any handle left on the loop.  NULL allowed. */
H2WS_EXTERN void h2ws_rt_del(h2ws_rt *rt);

/* The libuv loop (uv_loop_t *), for applications adding their own
 * handles (stdin, timers).  Valid until h2ws_rt_del(). */
H2WS_EXTERN void *h2ws_rt_uv_loop(h2ws_rt *rt);

/* The loop's time in milliseconds (uv_now), as passed to the protocol
 * layers. */
H2WS_EXTERN uint64_t h2ws_rt_now(h2ws_rt *rt);

/* ------------------------------------------------------------------------
 * WebSockets, whatever carries them
 * ------------------------------------------------------------------------ */

/* Events of one WebSocket.  Any may be NULL.  `ws` is valid from on_open
 * (or the accept call) until on_close / on_fail returns; it is freed by
 * the runtime right after. */
typedef struct h2ws_rt_ws_callbacks {
  /* The WebSocket is open (client: the handshake succeeded; server: right
   * after accept, once output can flow). */
  void (*on_open)(h2ws_rt_ws *ws, void *user_data);
  /* One complete message (TEXT or BINARY), unmasked, inflated, UTF-8
   * checked.  Return 0, or H2WS_ERR_PAUSE to stop delivery until
   * h2ws_rt_ws_resume() (a slow consumer: on HTTP/2 only this stream's
   * flow-control window stays closed, other streams keep flowing; on
   * HTTP/1.1 the socket is not read).  On server WebSockets the runtime
   * also pauses delivery on its own while the WebSocket's queued output
   * exceeds half its max_output and resumes it below a quarter, so an
   * echo cannot grow without bound (never on clients: their output does
   * not answer their input, and both ends pausing would deadlock). */
  int (*on_message)(h2ws_rt_ws *ws, h2ws_opcode opcode, const uint8_t *data,
                    size_t datalen, void *user_data);
  /* A ping arrived (it is answered automatically). */
  void (*on_ping)(h2ws_rt_ws *ws, const uint8_t *data, size_t datalen,
                  void *user_data);
  /* The WebSocket is over: the peer's Close code (1005 without code), the
   * code we failed with (1002, 1007, 1009...), or 1006 (transport ended or
   * reset without a Close, closing handshake timed out).  Exactly once per
   * opened WebSocket. */
  void (*on_close)(h2ws_rt_ws *ws, uint16_t code, const uint8_t *reason,
                   size_t reasonlen, void *user_data);
  /* Output space became available after h2ws_rt_ws_send() returned
   * H2WS_ERR_BUFFER_FULL: retry the send. */
  void (*on_writable)(h2ws_rt_ws *ws, void *user_data);
  /* Client only: the WebSocket never opened.  `kind` says why (exit-code
   * classes of the h2ws command), `status` is the HTTP status when the
   * server answered (else 0), `message` a one-line reason such as
   * "connection refused", "handshake refused: HTTP 404" or "server does
   * not support WebSockets over HTTP/2 (RFC 8441)".  Fired instead of
   * on_open/on_close. */
  void (*on_fail)(h2ws_rt_ws *ws, int kind, int status, const char *message,
                  void *user_data);
  /* Client only, optional: a line of diagnostics about transport choices
   * ("connected via h2 (TLS, ALPN h2), stream 1", fallback notes). */
  void (*on_note)(h2ws_rt_ws *ws, const char *message, void *user_data);
  /* A pong arrived (the answer to h2ws_rt_ws_ping(), or unsolicited). */
  void (*on_pong)(h2ws_rt_ws *ws, const uint8_t *data, size_t datalen,
                  void *user_data);
  /* ABI (docs/abi.md): room for callbacks added within this SONAME;
   * leave NULL. */
  void (*reserved[4])(void);
} h2ws_rt_ws_callbacks;

/* on_fail kinds. */
enum {
  H2WS_RT_FAIL_CONNECT = 2,   /* DNS, TCP connect, TLS (incl. verification) */
  H2WS_RT_FAIL_HANDSHAKE = 3, /* refused (non-101/2xx), bad answer, no
                                 RFC 8441 support with policy H2 */
  H2WS_RT_FAIL_INTERNAL = 5   /* out of memory, internal error */
};

/*
 * Queues a whole message (TEXT must be valid UTF-8; not re-checked).
 * Returns 0, H2WS_ERR_BUFFER_FULL (retry from on_writable),
 * H2WS_ERR_INVALID_STATE (closing or closed), H2WS_ERR_INVALID_ARGUMENT,
 * H2WS_ERR_NOMEM.
 */
H2WS_EXTERN int h2ws_rt_ws_send(h2ws_rt_ws *ws, h2ws_opcode opcode, const uint8_t *data,
                                size_t datalen);

/* Resumes delivery after on_message returned H2WS_ERR_PAUSE (messages
 * then arrive from the loop, not from inside this call).  Returns 0,
 * H2WS_ERR_INVALID_STATE (not open). */
H2WS_EXTERN int h2ws_rt_ws_resume(h2ws_rt_ws *ws);

/* Sends a ping (payload <= 125 bytes).  Returns as h2ws_ws_submit_ping(). */
H2WS_EXTERN int h2ws_rt_ws_ping(h2ws_rt_ws *ws, const uint8_t *data, size_t datalen);

/* Starts the closing handshake with code and reason (NUL-terminated UTF-8
 * <= 123 bytes, may be NULL).  on_close fires when it completes.  Returns
 * 0, H2WS_ERR_INVALID_ARGUMENT, H2WS_ERR_INVALID_STATE (already closing). */
H2WS_EXTERN int h2ws_rt_ws_close(h2ws_rt_ws *ws, uint16_t code, const char *reason);

/* Bytes queued for sending on this WebSocket (not yet handed to the
 * transport). */
H2WS_EXTERN size_t h2ws_rt_ws_buffered(const h2ws_rt_ws *ws);

/* How the WebSocket is carried. */
typedef enum h2ws_rt_transport {
  H2WS_RT_H1 = 1,     /* HTTP/1.1 Upgrade, cleartext */
  H2WS_RT_H1_TLS = 2, /* HTTP/1.1 Upgrade over TLS */
  H2WS_RT_H2C = 3,    /* HTTP/2 prior knowledge, cleartext */
  H2WS_RT_H2_TLS = 4  /* HTTP/2 over TLS (ALPN h2) */
} h2ws_rt_transport;
H2WS_EXTERN h2ws_rt_transport h2ws_rt_ws_transport(const h2ws_rt_ws *ws);

/* The HTTP/2 stream id, 0 on HTTP/1.1. */
H2WS_EXTERN int32_t h2ws_rt_ws_stream_id(const h2ws_rt_ws *ws);

/* The negotiated subprotocol (NUL-terminated) or NULL. */
H2WS_EXTERN const char *h2ws_rt_ws_subprotocol(const h2ws_rt_ws *ws);

/* Nonzero if permessage-deflate is in use. */
H2WS_EXTERN int h2ws_rt_ws_compressed(const h2ws_rt_ws *ws);

/* The engine, for statistics (h2ws_ws_get_stats) and other queries.  Do
 * not call h2ws_ws_recv/send/del on it.  NULL before on_open. */
H2WS_EXTERN h2ws_ws *h2ws_rt_ws_engine(h2ws_rt_ws *ws);

H2WS_EXTERN void *h2ws_rt_ws_get_user_data(const h2ws_rt_ws *ws);

/* ------------------------------------------------------------------------
 * Server
 * ------------------------------------------------------------------------ */

typedef struct h2ws_server_settings {
  /* PEM certificate chain and private key for TLS listeners.  Both NULL:
   * a self-signed EC P-256 certificate for DNS:localhost and IP:127.0.0.1,
   * valid 30 days, is generated at startup and kept in memory. */
  const char *cert_file;
  const char *key_file;
  /* With a generated certificate: also write it (PEM, certificate only)
   * to this file, e.g. for a client's --cacert.  NULL: don't. */
  const char *write_cert_file;
  /* Nonzero (default): SIGINT and SIGTERM start a graceful shutdown. */
  int handle_signals;
  /* Graceful shutdown: how long WebSockets get to finish their closing
   * handshake (ms).  Default 2000. */
  uint64_t drain_ms;
  /* Nonzero (default): speak HTTP/2 (ALPN h2 on TLS listeners, prior
   * knowledge on cleartext ones).  Zero: HTTP/1.1 only. */
  int h2;
  /* Nonzero (default): advertise RFC 8441 (HTTP/2 WebSockets) when a
   * WebSocket route exists.  Zero: never (WebSockets then only over
   * HTTP/1.1; for tests of clients' fallback). */
  int h2_websockets;
  /* An HTTP/2 connection that carries no WebSocket and receives nothing
   * for this long is shut down (GOAWAY).  A connection with an open
   * WebSocket is never idle (WebSockets have their own timeouts).
   * Milliseconds; 0 disables.  Default 120000. */
  uint64_t idle_timeout_ms;
  /* Budget of the TLS handshake and, after it, of the HTTP one (request
   * head; cleartext: also the h2 preface detection): a client that is
   * too slow is disconnected.  Milliseconds; default 10000. */
  uint64_t handshake_timeout_ms;
  /* Connections beyond this are closed at accept.  Default 10000. */
  uint32_t max_connections;
  /* Engine settings for accepted WebSockets (limits, close timeout).
   * Messages are delivered whole: whole_messages is forced on. */
  h2ws_ws_settings ws;
  /* Accept permessage-deflate offers (RFC 7692).  Default 1. */
  int compress;
  /* ABI (docs/abi.md): room for members added within this SONAME;
   * leave zero. */
  uint64_t reserved[4];
} h2ws_server_settings;

H2WS_EXTERN void h2ws_server_settings_default(h2ws_server_settings *settings);

/* Creates a server on rt (settings copied; file names must stay valid
 * until the listeners are created).  Returns 0, H2WS_ERR_NOMEM,
 * H2WS_ERR_INTERNAL. */
H2WS_EXTERN int h2ws_server_new(h2ws_server **psrv, h2ws_rt *rt,
                                const h2ws_server_settings *settings);

/* Frees the server; must not be running (call after h2ws_rt_run returned,
 * or after h2ws_server_shutdown completed).  NULL allowed. */
H2WS_EXTERN void h2ws_server_del(h2ws_server *srv);

/*
 * Listens on "HOST:PORT" ("[::1]:PORT" for IPv6; port 0 picks a free
 * one).  tls = 1: TLS with ALPN h2 / http/1.1 (creating the certificate
 * on first use); tls = 0: cleartext h2c prior knowledge + HTTP/1.1.
 * *pport (may be NULL) receives the bound port.  Register routes before
 * listening.  Returns 0, H2WS_ERR_INVALID_ARGUMENT (bad address),
 * H2WS_ERR_INTERNAL (bind/listen failed, or TLS setup failed: see
 * h2ws_server_last_error()), H2WS_ERR_NOMEM.
 */
H2WS_EXTERN int h2ws_server_listen(h2ws_server *srv, const char *hostport, int tls,
                                   int *pport);

/* A human-readable description of the last failure of
 * h2ws_server_listen() ("address already in use", TLS errors).  Never
 * NULL. */
H2WS_EXTERN const char *h2ws_server_last_error(const h2ws_server *srv);

/* How the application answers a WebSocket request (h2ws_rt_ws_accept). */
typedef struct h2ws_rt_accept {
  /* Chosen subprotocol (one the client offered, see
   * h2ws_subprotocol_select()), NUL-terminated, or NULL. */
  const char *subprotocol;
  const h2ws_rt_ws_callbacks *callbacks; /* copied */
  void *user_data;
  /* ABI (docs/abi.md): room for members added within this SONAME;
   * leave zero. */
  uint64_t reserved[4];
} h2ws_rt_accept;

/* A WebSocket route.  on_request is called for each WebSocket request on
 * the route's path (exact match on the path without query), from h1 or
 * h2; it must call h2ws_rt_ws_accept(), h2ws_rt_ws_refuse() or
 * h2ws_rt_ws_defer() before returning (otherwise the request is refused
 * with 500). */
typedef struct h2ws_rt_ws_handler {
  void (*on_request)(h2ws_rt_ws_request *req, void *user_data);
  /* ABI (docs/abi.md): room for callbacks added within this SONAME;
   * leave NULL. */
  void (*reserved[4])(void);
} h2ws_rt_ws_handler;

/* Adds a WebSocket route (handler copied, path copied).  Returns 0,
 * H2WS_ERR_INVALID_ARGUMENT, H2WS_ERR_NOMEM. */
H2WS_EXTERN int h2ws_server_route_ws(h2ws_server *srv, const char *path,
                                     const h2ws_rt_ws_handler *handler, void *user_data);

/* A WebSocket prefix route: matches `prefix` and every path under it
 * (the same matching as h2ws_server_route_http_prefix(); "/" matches
 * every path).  Exact routes win, then the longest prefix.  Returns as
 * h2ws_server_route_ws(). */
H2WS_EXTERN int h2ws_server_route_ws_prefix(h2ws_server *srv, const char *prefix,
                                            const h2ws_rt_ws_handler *handler,
                                            void *user_data);

/* The runtime the server runs on (for handlers that open connections of
 * their own, e.g. a gateway's backend client).  NULL for NULL. */
H2WS_EXTERN h2ws_rt *h2ws_server_rt(const h2ws_server *srv);

/* The request (transport-neutral view, h2ws/handshake.h); valid during
 * on_request. */
H2WS_EXTERN const h2ws_ws_request *h2ws_rt_ws_request_view(const h2ws_rt_ws_request *req);

/* Accepts: permessage-deflate is negotiated from the offer when the
 * server's `compress` setting allows.  *pws (may be NULL) gets the
 * WebSocket; on_open fires from the loop once it is established.
 * Returns 0, H2WS_ERR_INVALID_STATE (already answered),
 * H2WS_ERR_INVALID_ARGUMENT (subprotocol not offered), H2WS_ERR_NOMEM. */
H2WS_EXTERN int h2ws_rt_ws_accept(h2ws_rt_ws_request *req, const h2ws_rt_accept *accept,
                                  h2ws_rt_ws **pws);

/* Refuses with an HTTP status (>= 400).  Returns 0,
 * H2WS_ERR_INVALID_STATE, H2WS_ERR_INVALID_ARGUMENT. */
H2WS_EXTERN int h2ws_rt_ws_refuse(h2ws_rt_ws_request *req, int status);

/*
 * Deferred answer (a gateway that must hear its backend first, SPEC
 * pitfall 9).  Called from on_request instead of answering: the request
 * stays valid after on_request returns, until the application answers it
 * with h2ws_rt_ws_accept() / h2ws_rt_ws_refuse() from another callback on
 * the loop, or until on_cancel fires.  Meanwhile the client's input is
 * held, never delivered: HTTP/1.1 keeps what follows the request head
 * in the connection's input buffer (at most 1 MiB; beyond it the
 * connection is closed) and still reads, so a client that leaves is
 * noticed; HTTP/2 keeps the stream's DATA within its flow-control window
 * (other streams keep flowing).  The view (h2ws_rt_ws_request_view) is copied and stays
 * valid too, without `headers`.
 *
 * on_cancel (may be NULL) fires once if the request ends unanswered: the
 * client reset the stream or closed the connection, the server shuts
 * down, or the server's handshake_timeout_ms elapsed (answered 504).
 * After on_cancel, or once answered, `req` is gone: do not use it.
 *
 * Accepting a deferred request sends the 101 / 200 at once; on_open fires
 * inside h2ws_rt_ws_accept(), and on HTTP/2 messages the client sent
 * meanwhile may be delivered from inside it (even before on_open).  For a
 * deferred request, accept and refuse consume `req` whatever they return
 * (on an accept error the client got 500), except for
 * H2WS_ERR_INVALID_ARGUMENT from refuse (bad status).
 * Returns 0, H2WS_ERR_INVALID_STATE (already answered or deferred),
 * H2WS_ERR_INVALID_ARGUMENT, H2WS_ERR_NOMEM (then answer at once).
 */
H2WS_EXTERN int h2ws_rt_ws_defer(h2ws_rt_ws_request *req,
                                 void (*on_cancel)(h2ws_rt_ws_request *req,
                                                   void *user_data),
                                 void *user_data);

/* A plain HTTP request (GET / for a page) on h1 or h2. */
typedef struct h2ws_rt_http_request {
  const char *method; /* NUL-terminated */
  const char *path;   /* path + query, NUL-terminated */
  h2ws_rt_transport transport;
} h2ws_rt_http_request;

/* The answer: the runtime copies the body before the handler returns. */
typedef struct h2ws_rt_http_response {
  int status;               /* default 200 */
  const char *content_type; /* default "text/plain; charset=utf-8" */
  const uint8_t *body;
  size_t bodylen;
} h2ws_rt_http_response;

typedef void (*h2ws_rt_http_handler)(const h2ws_rt_http_request *req,
                                     h2ws_rt_http_response *resp,
                                     void *user_data);

/* Adds a plain HTTP route on an exact path.  Requests with no route get
 * 404.  Returns 0, H2WS_ERR_INVALID_ARGUMENT, H2WS_ERR_NOMEM. */
H2WS_EXTERN int h2ws_server_route_http(h2ws_server *srv, const char *path,
                                       h2ws_rt_http_handler handler, void *user_data);

/* Adds a plain HTTP route for a path and everything under it ("/files"
 * matches "/files" and "/files/a/b", not "/filesx"; "/" matches every
 * path).  Exact routes win over prefix routes, longer prefixes over
 * shorter ones.  The handler sees the full path.  Returns as
 * h2ws_server_route_http(). */
H2WS_EXTERN int h2ws_server_route_http_prefix(h2ws_server *srv, const char *prefix,
                                              h2ws_rt_http_handler handler,
                                              void *user_data);

/* Serves the files under directory `dir` at `prefix` (a prefix route):
 * GET and HEAD; the rest of the path (percent-decoded) names a file under
 * dir; a directory answers its index.html; a path with a ".." segment, a
 * NUL, or resolving (symbolic links included) outside dir is refused
 * (403); missing files 404; files over 64 MiB 413.  Content-Type by
 * extension (html, css, js, json, txt, svg, png, jpg, gif, ico, wasm,
 * ...; else application/octet-stream).  Files are read at each request.
 * Returns 0, H2WS_ERR_INVALID_ARGUMENT (dir is not a directory),
 * H2WS_ERR_NOMEM. */
H2WS_EXTERN int h2ws_server_route_static(h2ws_server *srv, const char *prefix,
                                         const char *dir);

/* Counters of a server (for /metrics). */
typedef struct h2ws_server_stats {
  uint64_t connections_open;  /* accepted, not yet closed */
  uint64_t connections_total; /* accepted since the start */
  /* WebSocket requests refused by the runtime (no route: 404, shutting
   * down: 503) or the application (h2ws_rt_ws_refuse), by status:
   * refused[status - 400]. */
  uint64_t refused[200];
  /* ABI (docs/abi.md): room for members added within this SONAME;
   * leave zero. */
  uint64_t reserved[4];
} h2ws_server_stats;
H2WS_EXTERN void h2ws_server_get_stats(const h2ws_server *srv, h2ws_server_stats *st);

/* Where a WebSocket request, or a server WebSocket, comes from.
 * Connection ids number the runtime's accepted connections 1, 2, ... (not
 * reused while the runtime lives): server WebSockets with the same id
 * share one connection (streams of one HTTP/2 connection).  The peer is
 * the remote IP address as text ("" if unknown).  The request functions
 * are valid during on_request; for a WebSocket, from on_open until just
 * before on_close (its connection may already be gone then: copy what
 * you need at open).  On client WebSockets the id is 0 and the peer "". */
H2WS_EXTERN uint64_t h2ws_rt_ws_request_conn_id(const h2ws_rt_ws_request *req);
H2WS_EXTERN const char *h2ws_rt_ws_request_peer(const h2ws_rt_ws_request *req);
H2WS_EXTERN h2ws_rt_transport h2ws_rt_ws_request_transport(
                const h2ws_rt_ws_request *req);
H2WS_EXTERN uint64_t h2ws_rt_ws_conn_id(const h2ws_rt_ws *ws);
H2WS_EXTERN const char *h2ws_rt_ws_peer(const h2ws_rt_ws *ws);

/* Graceful shutdown (what SIGINT/SIGTERM do): stop listening, Close 1001
 * on every WebSocket, wait up to drain_ms, GOAWAY on HTTP/2, close every
 * connection.  h2ws_rt_run() then returns.  Returns 0. */
H2WS_EXTERN int h2ws_server_shutdown(h2ws_server *srv);

/* ------------------------------------------------------------------------
 * Client
 * ------------------------------------------------------------------------ */

typedef enum h2ws_rt_policy {
  H2WS_RT_POLICY_AUTO = 0, /* wss: ALPN; h2 without RFC 8441 -> new h1 */
  H2WS_RT_POLICY_H2 = 1,   /* HTTP/2 only (ws: prior knowledge) */
  H2WS_RT_POLICY_H1 = 2    /* HTTP/1.1 only */
} h2ws_rt_policy;

typedef struct h2ws_client_settings {
  /* Nonzero: no certificate verification (testing only). */
  int insecure;
  /* A PEM CA file trusted in addition to the system's, or NULL. */
  const char *cafile;
  /* Engine settings (limits); whole_messages is forced on. */
  h2ws_ws_settings ws;
  /* Nonzero: an HTTP/2 connection is shut down (GOAWAY) as soon as its
   * last WebSocket has ended.  Zero (default): it stays in the pool for
   * reuse, and keeps h2ws_rt_run() running, until h2ws_client_del() or
   * the server closes it.  Command-line tools set it so the loop ends. */
  int close_idle;
  /* Optional diagnostics (the h2ws client's -v): one line per event, for
   * every connection and WebSocket of this client: HTTP/2 frames
   * ("> h2 SETTINGS ...", "< h2 HEADERS stream=1 ... | :status: 200",
   * see h2ws_h2_callbacks.on_frame_trace), WebSocket frames
   * ("> ws stream=1 TEXT fin=1 rsv1=0 len=5", after masking is decided,
   * before compression is undone) and the HTTP/1.1 handshake heads
   * ("> GET /echo HTTP/1.1", "< HTTP/1.1 101 Switching Protocols", one
   * line per header line).  ">" is sent, "<" received.  `line` is valid
   * until the call returns.  NULL (default): no tracing, no cost. */
  void (*trace)(const char *line, void *trace_user_data);
  void *trace_user_data;
  /* ABI (docs/abi.md): room for members added within this SONAME;
   * leave zero. */
  uint64_t reserved[4];
} h2ws_client_settings;

H2WS_EXTERN void h2ws_client_settings_default(h2ws_client_settings *settings);

H2WS_EXTERN int h2ws_client_new(h2ws_client **pcl, h2ws_rt *rt,
                                const h2ws_client_settings *settings);

/* Closes every connection of the client at once (WebSockets still open
 * get on_close 1006, those not yet open on_fail) and frees it.  Not from
 * inside a callback of this client's WebSockets.  NULL allowed. */
H2WS_EXTERN void h2ws_client_del(h2ws_client *cl);

typedef struct h2ws_client_ws_options {
  h2ws_rt_policy policy;
  int compress;                        /* offer permessage-deflate */
  const char *const *subprotocols;     /* offered, or NULL */
  size_t nsubprotocols;
  const char *origin;                  /* NULL: none */
  /* Extra request header fields (copied; at most 32, 4 KiB in all), or
   * NULL / 0.  Names are sent lower-case.  h2ws_client_open() refuses
   * (H2WS_ERR_INVALID_ARGUMENT, reason in h2ws_client_last_error()):
   * pseudo-headers (":path"...), connection-specific fields (connection,
   * upgrade, keep-alive, proxy-connection, transfer-encoding, te, host,
   * content-length: they make an HTTP/2 request malformed, RFC 9113
   * §8.2.2, and the client writes what HTTP/1.1 needs), the handshake's
   * own fields (sec-websocket-*, origin: use the options above), names
   * that are not tokens and values with CR, LF or NUL. */
  const h2ws_header *headers;
  size_t nheaders;
  /* ABI (docs/abi.md): room for members added within this SONAME;
   * leave zero. */
  uint64_t reserved[4];
} h2ws_client_ws_options;

/*
 * Opens a WebSocket to a ws:// or wss:// URL.  Everything happens on the
 * loop: DNS (uv_getaddrinfo), TCP, TLS, the handshake; then on_open or
 * on_fail.  An open HTTP/2 connection to the same origin is reused.
 * *pws (may be NULL) gets the handle at once.
 * Returns 0, H2WS_ERR_INVALID_ARGUMENT (bad URL: the message says why in
 * h2ws_client_last_error()), H2WS_ERR_NOMEM.
 */
H2WS_EXTERN int h2ws_client_open(h2ws_client *cl, const char *url,
                                 const h2ws_client_ws_options *options,
                                 const h2ws_rt_ws_callbacks *callbacks, void *user_data,
                                 h2ws_rt_ws **pws);

H2WS_EXTERN const char *h2ws_client_last_error(const h2ws_client *cl);

#ifdef __cplusplus
}
#endif
#endif /* H2WS_RT_H */
