/*
 * h2ws/rt.h - the ready-made runtime: one libuv event loop, TCP, DNS,
 * timers, signals and TLS (OpenSSL over memory BIOs, ALPN), running the
 * sans-I/O layers (engine, handshake rules, HTTP/2 binding) for servers and
 * clients.  This is the only h2ws layer that touches sockets, the clock and
 * OpenSSL.
 *
 * The application sees one WebSocket type, h2ws_rt_ws, whatever carries it:
 * an HTTP/1.1 Upgrade (RFC 6455), a stream of an HTTP/2 connection
 * (RFC 8441 extended CONNECT), over TLS or cleartext; h2ws_rt_ws_get_info()
 * says which.  Messages arrive whole (on_message); h2ws_rt_ws_send() (or,
 * beyond max_output, _send_fragment() / _send_source()) and
 * h2ws_rt_ws_close() act on them.
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
 *   policies AUTO and PREFER_H2 open a NEW HTTP/1.1 connection (fallback)
 *   and policy H2 fails.  ws:// is HTTP/1.1 unless policy H2 or PREFER_H2
 *   (prior knowledge, h2c).  One HTTP/2 connection per origin is shared
 *   by all WebSockets of a client, as many as the server's
 *   SETTINGS_MAX_CONCURRENT_STREAMS allows; beyond it (or after the
 *   server's GOAWAY) new WebSockets go to another connection, while those
 *   open on the old one go on.
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
 * streams).  h2ws_rt_ws_send / _send_fragment / _send_source / _ping /
 * _close / _resume / _abort never fire callbacks: their effects are
 * flushed from the loop, once per iteration (all output of a connection
 * in one TLS write and one socket write).
 *
 * Errors: functions return 0 or a negative h2ws_error (h2ws/h2ws.h); the
 * runtime's own failures (DNS, connect, TLS, listen) have the codes
 * H2WS_ERR_RT_* (-300 .. -399), described by h2ws_strerror() like every
 * other.
 *
 * Options and settings structs: always start from their _default()
 * function (h2ws_server_settings_default(), h2ws_client_settings_default(),
 * h2ws_client_ws_options_default(), h2ws_rt_accept_default(),
 * h2ws_listen_options_default(), h2ws_tls_server_settings_default()), then
 * set what you need: fields may be added, and a zeroed struct does not
 * mean the defaults (a zeroed h2ws_client_ws_options offers no
 * compression).
 *
 * Several runtimes: the runtime keeps no global state, so several
 * h2ws_rt may run in one process, one per thread (each object is used
 * only from its own runtime's thread).  What they may share: an
 * h2ws_tls_server context (immutable once made) and an h2ws_budget (the
 * process's memory budget, counted atomically).  Workers listening on
 * one port use h2ws_listen_options.reuseport.
 *
 * N workers on one listener set (what `h2ws serve --workers N` does):
 *
 *   1. h2ws_tls_server_new() once (a generated certificate is then the
 *      same on every worker), before any thread starts.
 *   2. For each worker i: h2ws_rt_new(), h2ws_server_new() with
 *      settings.tls = that context and handle_signals = 0,
 *      h2ws_server_share_budget() with one h2ws_budget made before (so
 *      that max_memory holds for the process), the same routes, then h2ws_server_listen2() on every address with
 *      options.reuseport = 1.  Worker 0 may listen on port 0: its bound
 *      port (*pport) is the one the others then name.  Every listener of
 *      the group must set reuseport (the kernel then spreads new
 *      connections over them; a connection stays on the worker that
 *      accepted it).  This may all run on the main thread: a runtime
 *      that no thread runs yet may be handed to its thread afterwards.
 *   3. One thread per worker runs h2ws_rt_run(rt_i).
 *   4. Stop: from another thread, wake each worker's loop (a uv_async_t
 *      made on h2ws_rt_uv_loop(rt_i) before its thread started, and
 *      uv_unref()ed so it does not keep the loop alive) and call
 *      h2ws_server_shutdown(srv_i) in its callback; each h2ws_rt_run()
 *      returns once its server has drained.  Then, on that thread (or
 *      after joining it): h2ws_server_del(), h2ws_rt_run() once more
 *      for the close callbacks, h2ws_rt_del(); h2ws_tls_server_del() and
 *      h2ws_budget_del() last.
 *   5. Figures: h2ws_server_get_stats() is per server and, like every
 *      call, from its own thread: each worker copies its figures out
 *      (e.g. under a mutex) and the application sums them.
 *
 * SO_REUSEPORT also lets another process of the same user bind the same
 * address, so a second server started by mistake shares the port instead
 * of failing; an application that wants the usual refusal checks that
 * the address is free (a bind without SO_REUSEPORT) before worker 0
 * listens.  Connection ids (h2ws_rt_ws_conn_id()) are per runtime.
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
typedef struct h2ws_tls_server h2ws_tls_server;
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
   * exceeds half its max_output (its memory budget; automatic pongs
   * count) and resumes it below a quarter, and while its connection's or
   * server's budget is over (h2ws_server_settings.max_memory), so an
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
  /* Output space became available after h2ws_rt_ws_send() or
   * h2ws_rt_ws_send_fragment() returned H2WS_ERR_BUFFER_FULL (once the
   * queue is down to half of max_output): retry the send. */
  void (*on_writable)(h2ws_rt_ws *ws, void *user_data);
  /* Client only: the WebSocket never opened.  `error` is the h2ws_error
   * that says why (h2ws_strerror() describes it):
   *   H2WS_ERR_RT_DNS, H2WS_ERR_RT_CONNECT_REFUSED, H2WS_ERR_RT_CONNECT,
   *   H2WS_ERR_RT_TLS, H2WS_ERR_RT_TLS_VERIFY    the connection failed;
   *   H2WS_ERR_TIMEOUT        the connection or handshake took too long;
   *   H2WS_ERR_CLOSED         the connection ended before the WebSocket
   *                           opened (or h2ws_client_del());
   *   H2WS_ERR_HANDSHAKE      refused (`status` is the HTTP status) or a
   *                           bad answer (malformed, a subprotocol or
   *                           extension not offered);
   *   H2WS_ERR_H2_NO_EXTENDED_CONNECT  policy H2 and the server does not
   *                           do RFC 8441; H2WS_ERR_RT_ALPN  policy H2 and
   *                           ALPN did not select h2; H2WS_ERR_RT_NOT_H2
   *                           policy H2 and the server answered without
   *                           HTTP/2 SETTINGS (an HTTP/1.1-only server:
   *                           "HTTP/1.1 400" to the preface);
   *   H2WS_ERR_H2_BAD_RESPONSE, H2WS_ERR_H2_STREAM_RESET,
   *   H2WS_ERR_H2_GOAWAY  HTTP/2 refused the stream (after one retry on
   *                           a new connection for GOAWAY);
   *   H2WS_ERR_H2_TOO_MANY_STREAMS  the server allows no stream at all (a
   *                           full connection is no error: the WebSocket
   *                           goes to another one);
   *   H2WS_ERR_NOMEM, H2WS_ERR_INTERNAL.
   * `status` is the HTTP status when the server answered (else 0),
   * `message` a one-line reason such as "connection refused", "handshake
   * refused: HTTP 404" or "server does not support WebSockets over HTTP/2
   * (RFC 8441)".  Fired instead of on_open/on_close.  What it means to a
   * user (an exit code) is the application's choice. */
  void (*on_fail)(h2ws_rt_ws *ws, int error, int status, const char *message,
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

/*
 * Queues a whole message (TEXT must be valid UTF-8; not re-checked).  The
 * payload is copied.  A message must fit in max_output (the engine
 * setting, default 1 MiB) with what is already queued: a larger one
 * always fails with H2WS_ERR_BUFFER_FULL; send it with
 * h2ws_rt_ws_send_fragment() or h2ws_rt_ws_send_source().
 * Returns 0, H2WS_ERR_BUFFER_FULL (retry from on_writable),
 * H2WS_ERR_INVALID_STATE (closing or closed, or a fragmented / source
 * message in progress), H2WS_ERR_INVALID_ARGUMENT, H2WS_ERR_NOMEM.
 */
H2WS_EXTERN int h2ws_rt_ws_send(h2ws_rt_ws *ws, h2ws_opcode opcode, const uint8_t *data,
                                size_t datalen);

/*
 * Queues a prepared message (h2ws/ws.h: h2ws_ws_prepared_new()), the
 * broadcast primitive: build the message once, then send it to each
 * member.  Each call copies the prepared bytes into this WebSocket's
 * output queue (one copy, no re-encoding: the HTTP/2 stream or the
 * HTTP/1.1 connection carries the same frame bytes to every member); with
 * permessage-deflate the message goes uncompressed (RSV1 clear, legal per
 * RFC 7692 §6), since each member's compressor has a context of its own.
 * `prep` is not referenced after the call.  Like h2ws_rt_ws_send() it
 * must fit max_output with what is queued.  On a server WebSocket a
 * message that does not fit also closes it with 1008 ("too slow: output
 * budget exceeded"): a member that does not read is dropped rather than
 * holding memory or the others back (h2ws_server_stats.budget_closes).
 * Returns as h2ws_rt_ws_send().
 */
H2WS_EXTERN int h2ws_rt_ws_send_prepared(h2ws_rt_ws *ws, const h2ws_ws_prepared *prep);

/*
 * Streaming sends, for messages larger than max_output (or produced
 * piece by piece).  Memory stays bounded by max_output: an application
 * echoing 16 MiB messages keeps the default max_output, copies the
 * message out of on_message, returns H2WS_ERR_PAUSE (no next message
 * meanwhile) and streams the copy back; it resumes when the echo is
 * queued.
 *
 * h2ws_rt_ws_send_fragment(): one fragment of a message (RFC 6455 §5.4):
 * the first with opcode TEXT or BINARY, the following with H2WS_OP_CONT,
 * fin = 1 on the last.  Each fragment is copied and must fit in
 * max_output with what is queued; on H2WS_ERR_BUFFER_FULL keep it and
 * retry from on_writable.  Other data messages cannot be sent until the
 * last fragment (INVALID_STATE); pings and Close can.  With
 * permessage-deflate the whole message is compressed.  TEXT fragments
 * together must be valid UTF-8 (not checked).
 * Returns as h2ws_rt_ws_send(); also H2WS_ERR_INVALID_STATE for a CONT
 * without a first fragment or a TEXT/BINARY while one is in progress.
 */
H2WS_EXTERN int h2ws_rt_ws_send_fragment(h2ws_rt_ws *ws, h2ws_opcode opcode, int fin,
                                         const uint8_t *data, size_t datalen);

/*
 * A data source: the runtime pulls the message's payload from read() as
 * output room appears (from the loop, never inside
 * h2ws_rt_ws_send_source()), at most one fragment (the engine's
 * fragment_size, default 64 KiB) at a time, straight into the output
 * queue (one copy).  read() copies up to buflen bytes into buf, stores
 * the count in *pnwritten, sets *peof = 1 with the message's last bytes
 * and returns 0; or returns H2WS_ERR_WOULDBLOCK when it has nothing yet
 * (call h2ws_rt_ws_resume_source() when it has); any other negative value
 * fails the WebSocket.  read() is not called again after it set *peof:
 * the source's data may be freed then.  Inside read() only
 * h2ws_rt_ws_resume() and the query functions may be called on ws (the
 * send functions return H2WS_ERR_INVALID_STATE there).  If the WebSocket
 * closes first, read() is simply not called again: free the data in
 * on_close.
 */
typedef struct h2ws_rt_source {
  int (*read)(h2ws_rt_ws *ws, uint8_t *buf, size_t buflen,
              size_t *pnwritten, int *peof, void *source_data);
  void *source_data;
} h2ws_rt_source;

/* Sends a message (TEXT or BINARY) whose payload comes from `source`
 * (copied).  One source at a time; until it ends other data messages get
 * H2WS_ERR_INVALID_STATE (pings and Close go between its fragments).
 * Returns 0, H2WS_ERR_INVALID_ARGUMENT, H2WS_ERR_INVALID_STATE. */
H2WS_EXTERN int h2ws_rt_ws_send_source(h2ws_rt_ws *ws, h2ws_opcode opcode,
                                       const h2ws_rt_source *source);

/* Resumes a source whose read() returned H2WS_ERR_WOULDBLOCK.
 * Returns 0, H2WS_ERR_INVALID_STATE (no source in progress, or closed). */
H2WS_EXTERN int h2ws_rt_ws_resume_source(h2ws_rt_ws *ws);

/* Resumes delivery after on_message returned H2WS_ERR_PAUSE (messages
 * then arrive from the loop, not from inside this call).  Returns 0,
 * H2WS_ERR_INVALID_STATE (not open). */
H2WS_EXTERN int h2ws_rt_ws_resume(h2ws_rt_ws *ws);

/* Sends a ping (payload <= 125 bytes).  Returns as h2ws_ws_submit_ping(). */
H2WS_EXTERN int h2ws_rt_ws_ping(h2ws_rt_ws *ws, const uint8_t *data, size_t datalen);

/* Starts the closing handshake with code and reason (NUL-terminated UTF-8
 * <= 123 bytes, may be NULL).  on_close fires when it completes.  Returns
 * 0, H2WS_ERR_INVALID_ARGUMENT, H2WS_ERR_INVALID_STATE (already closing),
 * H2WS_ERR_NOMEM (the Close frame could not be queued: the WebSocket is
 * ended as by h2ws_rt_ws_abort(), on_close(1006) follows). */
H2WS_EXTERN int h2ws_rt_ws_close(h2ws_rt_ws *ws, uint16_t code, const char *reason);

/* Ends the WebSocket at once, without a closing handshake (prefer
 * h2ws_rt_ws_close()): HTTP/1.1 closes the connection, HTTP/2 resets the
 * stream (RST_STREAM CANCEL; the connection's other streams go on).
 * on_close(1006) follows from the loop, not from inside this call.
 * Returns 0, H2WS_ERR_INVALID_STATE (not open). */
H2WS_EXTERN int h2ws_rt_ws_abort(h2ws_rt_ws *ws);

/* Bytes queued for sending on this WebSocket (not yet handed to the
 * transport). */
H2WS_EXTERN size_t h2ws_rt_ws_buffered(const h2ws_rt_ws *ws);

/* How the WebSocket is carried. */
typedef enum h2ws_rt_transport {
  H2WS_RT_H1 = 1,     /* HTTP/1.1 Upgrade, cleartext */
  H2WS_RT_H1_TLS = 2, /* HTTP/1.1 Upgrade over TLS */
  H2WS_RT_H2C = 3,    /* HTTP/2 prior knowledge, cleartext */
  H2WS_RT_H2_TLS = 4, /* HTTP/2 over TLS (ALPN h2) */
  H2WS_RT_H3 = 5      /* HTTP/3 (RFC 9220) over QUIC (always encrypted) */
} h2ws_rt_transport;

/* What carries a WebSocket (or a WebSocket request), as the carrier
 * describes it.  Fields may be added at the end in later versions. */
typedef struct h2ws_rt_ws_info {
  h2ws_rt_transport transport; /* 0 while a client WebSocket waits for a
                                  connection */
  int http_version;            /* 1, 2, 3 (0 while waiting) */
  int encrypted;               /* nonzero over TLS */
  int64_t stream_id;           /* the HTTP/2 or QUIC stream, 0 on HTTP/1.1
                                  (and while a request waits for
                                  SETTINGS) */
  uint64_t conn_id;            /* server connections: 1, 2, ... (not
                                  reused while the runtime lives); 0 on
                                  clients */
  const char *peer;            /* server: the remote IP address as text;
                                  "" on clients or if unknown.  Valid while
                                  the WebSocket is open (copy it) */
  /* ABI (docs/abi.md): room for members added within this SONAME;
   * leave zero. */
  uint64_t reserved[4];
} h2ws_rt_ws_info;

/* Fills *info.  Valid from on_open (or the accept call) until on_close /
 * on_fail returns; inside on_close it still describes the carrier that
 * ended.  Returns 0, H2WS_ERR_INVALID_ARGUMENT. */
H2WS_EXTERN int h2ws_rt_ws_get_info(const h2ws_rt_ws *ws, h2ws_rt_ws_info *info);

/* Shorthands for fields of h2ws_rt_ws_get_info(). */
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
   * too slow is disconnected.  Also, on HTTP/2, of each frame and each
   * header block (HEADERS + CONTINUATION): one begun and not completed
   * within it ends the connection (GOAWAY, then FIN), so a peer that
   * dribbles a byte now and then cannot hold a connection (slowloris).
   * Milliseconds; default 10000. */
  uint64_t handshake_timeout_ms;
  /* Open connections at most.  At the cap a new connection is still
   * served: the connection that carries no WebSocket (nor a request the
   * application holds) and has been silent longest is closed for it
   * (idle and half-open connections go first); only when every
   * connection carries a WebSocket is the new one closed at accept.
   * Default 10000. */
  uint32_t max_connections;
  /* Engine settings for accepted WebSockets (limits, close timeout).
   * Messages are delivered whole: whole_messages is forced on.  The
   * default sets ws.max_inflate_ratio to 100 (deflate bombs: past 1 MiB a
   * compressed message may inflate at most 100 times what arrived for it,
   * else 1009); ws.recv_budget 0 means 256 KiB per turn (fairness). */
  h2ws_ws_settings ws;
  /* Accept permessage-deflate offers (RFC 7692).  Default 1. */
  int compress;
  /* A TLS context shared with other servers (h2ws_tls_server_new(); not
   * owned: it must outlive the server).  NULL (default): the server makes
   * its own from cert_file / key_file at its first TLS listener. */
  const h2ws_tls_server *tls;
  /* Open connections per remote address at most; 0 (default): no cap.
   * The next one from that address is answered, then closed: HTTP/2
   * (ALPN h2, or the h2c preface) with GOAWAY ENHANCE_YOUR_CALM "too
   * many connections from this address", HTTP/1.1 with 429 Too Many
   * Requests. */
  uint64_t max_connections_per_ip;
  /* Memory budgets (docs/design.md "Memory bounds").  Each WebSocket's
   * queued output is bounded by ws.max_output (its budget, default
   * 1 MiB): its input pauses above half of it and resumes at a quarter;
   * a send beyond it fails with H2WS_ERR_BUFFER_FULL, and a broadcast
   * (h2ws_rt_ws_send_prepared) beyond it closes the WebSocket with 1008.
   * max_memory bounds what all the server's WebSockets hold: their
   * queued output and their held input (messages being reassembled,
   * h2ws_ws_input_len()): above it every WebSocket's input pauses (at
   * its next message boundary) and new WebSocket requests are refused
   * with 503, until it is back at half.  Bytes; 0: no limit.
   * Default: a quarter of the machine's physical memory. */
  uint64_t max_memory;
  /* The same for the WebSockets of one connection (HTTP/2 and HTTP/3:
   * all its streams; an HTTP/1.1 connection carries one, bounded by its
   * own budget): above it the connection's WebSockets stop reading.  On
   * HTTP/3 a WebSocket's queued output includes what QUIC has not had
   * acknowledged yet (its stream's send queue).  Bytes;
   * 0: no limit.  Default 16 MiB. */
  uint64_t max_conn_memory;
  /* Write deadline: once a WebSocket's Close is queued (by the
   * application, a broadcast budget, the shutdown) or its engine is
   * done, output that has not drained this long after is dropped:
   * HTTP/1.1 closes the connection, HTTP/2 resets the stream
   * (RST_STREAM CANCEL; the other streams go on), HTTP/3 resets the
   * stream (H3_REQUEST_CANCELLED) and closes the connection
   * (H3_EXCESSIVE_LOAD) if that stream is still there as long again.
   * Milliseconds; 0: never.  Default 10000. */
  uint64_t write_timeout_ms;
  /* ABI (docs/abi.md): room for members added within this SONAME;
   * leave zero. */
  uint64_t reserved[4];
} h2ws_server_settings;

H2WS_EXTERN void h2ws_server_settings_default(h2ws_server_settings *settings);

/*
 * A memory budget shared by several servers: what all their WebSockets
 * hold (queued output and held input, as h2ws_server_settings.max_memory
 * counts it) against one limit, e.g. N workers of one process on N
 * runtimes and threads.  Over the limit, every server sharing it refuses
 * new WebSocket requests with 503 and pauses its WebSockets' input, until
 * the total is back at half, whichever server's WebSockets hold the
 * memory.  Each server charges the budget in steps of 64 KiB of change
 * (an atomic add, no lock), so the total is exact to 64 KiB per server
 * (exact when a server holds nothing).  Thread-safe; the servers must be
 * freed before it.
 */
typedef struct h2ws_budget h2ws_budget;

/* A budget of `limit` bytes (0: none, counting only).  mem NULL: libc.
 * Returns 0, H2WS_ERR_NOMEM, H2WS_ERR_INVALID_ARGUMENT. */
H2WS_EXTERN int h2ws_budget_new(h2ws_budget **pbudget, uint64_t limit,
                                const h2ws_mem *mem);
/* Frees it, after every server that shares it.  NULL allowed. */
H2WS_EXTERN void h2ws_budget_del(h2ws_budget *budget);
/* What the servers sharing it hold now (bytes, to 64 KiB per server). */
H2WS_EXTERN uint64_t h2ws_budget_held(const h2ws_budget *budget);

/* srv counts against `budget` instead of its own max_memory (the
 * budget's limit replaces it).  Call before the server accepts
 * connections (after h2ws_server_new(), before it listens).
 * Returns 0, H2WS_ERR_INVALID_ARGUMENT, H2WS_ERR_INVALID_STATE (the
 * server already has connections or a budget). */
H2WS_EXTERN int h2ws_server_share_budget(h2ws_server *srv, h2ws_budget *budget);

/* A server TLS context on its own, to share (workers: one certificate,
 * generated once, for N servers on N runtimes and threads).  Immutable
 * once made; safe to use from several threads at once. */
typedef struct h2ws_tls_server_settings {
  /* As h2ws_server_settings: PEM chain and key, or both NULL for a
   * generated self-signed certificate (optionally written, certificate
   * only, to write_cert_file). */
  const char *cert_file;
  const char *key_file;
  const char *write_cert_file;
  /* Nonzero (default): ALPN h2 and http/1.1; zero: http/1.1 only (must
   * agree with the servers' `h2`). */
  int h2;
  /* ABI (docs/abi.md): room for members added within this SONAME;
   * leave zero. */
  uint64_t reserved[4];
} h2ws_tls_server_settings;

H2WS_EXTERN void h2ws_tls_server_settings_default(h2ws_tls_server_settings *settings);

/* Creates the context (settings NULL: defaults; mem NULL: libc).  On
 * failure err (may be NULL) gets a one-line reason.  Returns 0,
 * H2WS_ERR_RT_TLS (cannot load or generate the certificate),
 * H2WS_ERR_NOMEM, H2WS_ERR_INVALID_ARGUMENT. */
H2WS_EXTERN int h2ws_tls_server_new(h2ws_tls_server **ptls,
                                    const h2ws_tls_server_settings *settings,
                                    const h2ws_mem *mem, char *err, size_t errlen);

/* Frees the context once no server uses it any more.  NULL allowed. */
H2WS_EXTERN void h2ws_tls_server_del(h2ws_tls_server *tls);

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
 * H2WS_ERR_RT_LISTEN (bind/listen failed: see h2ws_server_last_error()),
 * H2WS_ERR_RT_TLS (TLS setup failed: idem), H2WS_ERR_NOMEM.
 */
H2WS_EXTERN int h2ws_server_listen(h2ws_server *srv, const char *hostport, int tls,
                                   int *pport);

/* Listener options (h2ws_server_listen2). */
typedef struct h2ws_listen_options {
  int tls;       /* as h2ws_server_listen()'s tls.  Default 1. */
  /* Nonzero: SO_REUSEPORT, so that several listeners (workers, one per
   * runtime and thread) bind the same address and the kernel spreads
   * connections over them.  Default 0. */
  int reuseport;
  int backlog;   /* listen(2) backlog.  Default 511. */
  /* h2ws_server_listen_h3(): nonzero to answer every QUIC Initial without
   * a valid token with a Retry (RFC 9000 §8.1: the client proves its
   * address before the server spends a handshake on it; one round trip
   * more).  Default 0. */
  int quic_retry;
  /* ABI (docs/abi.md): room for members added within this SONAME;
   * leave zero. */
  uint64_t reserved[4];
} h2ws_listen_options;

H2WS_EXTERN void h2ws_listen_options_default(h2ws_listen_options *options);

/* As h2ws_server_listen() with options (NULL: defaults).  Returns as
 * h2ws_server_listen(). */
H2WS_EXTERN int h2ws_server_listen2(h2ws_server *srv, const char *hostport,
                                    const h2ws_listen_options *options, int *pport);

/*
 * HTTP/3 (RFC 9114 over QUIC, WebSockets by RFC 9220): listens on UDP at
 * "HOST:PORT" (usually the port of a TLS listener: browsers look for
 * HTTP/3 on the port the Alt-Svc names) with the server's TLS
 * certificate (the TLS listener's, or made as h2ws_server_listen2() makes
 * it).  From then on plain HTTP/1.1 and HTTP/2 responses carry
 * `Alt-Svc: h3=":PORT"`.  SETTINGS_ENABLE_CONNECT_PROTOCOL is advertised
 * only if a WebSocket route exists.  Retry tokens and stateless resets
 * use a secret drawn per server.  options: reuseport as for TCP,
 * quic_retry (tls and backlog are ignored); NULL: defaults.  Shutdown: Close 1001 on every
 * WebSocket, GOAWAY and CONNECTION_CLOSE after the drain.  Returns as
 * h2ws_server_listen2().
 */
H2WS_EXTERN int h2ws_server_listen_h3(h2ws_server *srv, const char *hostport,
                                      const h2ws_listen_options *options,
                                      int *pport);

/* A human-readable description of the last failure of
 * h2ws_server_listen() ("address already in use", TLS errors).  Never
 * NULL. */
H2WS_EXTERN const char *h2ws_server_last_error(const h2ws_server *srv);

/* How the application answers a WebSocket request (h2ws_rt_ws_accept).
 * Start from h2ws_rt_accept_default(). */
typedef struct h2ws_rt_accept {
  /* Chosen subprotocol (one the client offered, see
   * h2ws_subprotocol_select()), NUL-terminated, or NULL (default). */
  const char *subprotocol;
  const h2ws_rt_ws_callbacks *callbacks; /* copied; NULL: none */
  void *user_data;
  /* ABI (docs/abi.md): room for members added within this SONAME;
   * leave zero. */
  uint64_t reserved[4];
} h2ws_rt_accept;

H2WS_EXTERN void h2ws_rt_accept_default(h2ws_rt_accept *accept);

/* A WebSocket route.  on_request is called for each WebSocket request on
 * the route's path (exact match on the path without query), from h1 or
 * h2; it must call h2ws_rt_ws_accept(), h2ws_rt_ws_refuse() or
 * h2ws_rt_ws_defer() before returning (otherwise the request is refused
 * with 500).  A plain request (no Upgrade, no extended CONNECT) on the
 * route's path gets 426 Upgrade Required with a text body saying it is a
 * WebSocket endpoint (HTTP/1.1 also names `Upgrade: websocket`), unless
 * an HTTP route matches it at least as specifically (an exact HTTP route,
 * or a prefix at least as long). */
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
 * 404 (426 on a WebSocket route's path).  Returns 0,
 * H2WS_ERR_INVALID_ARGUMENT, H2WS_ERR_NOMEM. */
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
  uint64_t connections_open;  /* accepted, not yet closed (TCP and QUIC) */
  uint64_t connections_total; /* accepted since the start */
  /* WebSocket requests refused by the runtime (no route: 404, shutting
   * down: 503) or the application (h2ws_rt_ws_refuse), by status:
   * refused[status - 400]. */
  uint64_t refused[200];
  /* Memory budgets (h2ws_server_settings.max_memory): WebSocket output
   * queued and input held now, in all; times a WebSocket's input was paused by a budget
   * (its own, its connection's or the server's); WebSockets closed with
   * 1008 past their budget (a broadcast that did not fit). */
  uint64_t memory_held;
  uint64_t budget_pauses;
  uint64_t budget_closes;
  /* What the hostile-client limits did: connections closed for a new one
   * at max_connections (the idlest without a WebSocket); connections
   * refused by max_connections_per_ip (HTTP/1.1 429, HTTP/2 GOAWAY);
   * WebSocket requests refused with 503 because the memory budget
   * (max_memory, or the shared h2ws_budget) was over (also counted in
   * refused[103]); WebSockets whose output had not drained by the write
   * deadline (write_timeout_ms) and were dropped. */
  uint64_t connections_evicted;
  uint64_t connections_refused_per_ip;
  uint64_t memory_refused;
  uint64_t write_timeouts;
  /* ABI (docs/abi.md): room for members added within this SONAME;
   * leave zero.  (The four above were added before the first release,
   * growing the struct: docs/abi.md allows it until then.) */
  uint64_t reserved[4];
} h2ws_server_stats;
H2WS_EXTERN void h2ws_server_get_stats(const h2ws_server *srv, h2ws_server_stats *st);

/* Where a WebSocket request, or a server WebSocket, comes from (fields
 * of h2ws_rt_ws_info).  Connection ids number the runtime's accepted
 * connections 1, 2, ... (not reused while the runtime lives): server
 * WebSockets with the same id share one connection (streams of one
 * HTTP/2 connection).  The peer is the remote IP address as text ("" if
 * unknown).  The request functions are valid during on_request; for a
 * WebSocket, from on_open until on_close returns (copy what you need).
 * On client WebSockets the id is 0 and the peer "". */
H2WS_EXTERN int h2ws_rt_ws_request_get_info(const h2ws_rt_ws_request *req,
                                            h2ws_rt_ws_info *info);
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
  H2WS_RT_POLICY_AUTO = 0, /* wss: ALPN; h2 without RFC 8441 -> new h1;
                              ws: HTTP/1.1 */
  H2WS_RT_POLICY_H2 = 1,   /* HTTP/2 only (ws: prior knowledge) */
  H2WS_RT_POLICY_H1 = 2,   /* HTTP/1.1 only */
  /* HTTP/2 when the server does WebSockets over it, else HTTP/1.1 (a
   * gateway's backends): wss: as AUTO; ws: prior knowledge (h2c) first,
   * and a server that answers it without HTTP/2 SETTINGS (an
   * HTTP/1.1-only server's error response) or whose SETTINGS
   * lack ENABLE_CONNECT_PROTOCOL = 1 gets the WebSocket over HTTP/1.1 on
   * a NEW connection.  With AUTO and PREFER_H2 the client remembers such
   * an origin for 30 s and goes to HTTP/1.1 at once meanwhile (on_note
   * says so). */
  H2WS_RT_POLICY_PREFER_H2 = 3,
  /* HTTP/3 only (wss: only): WebSockets over QUIC (RFC 9220); fails when
   * the server does not answer over QUIC or does not advertise
   * SETTINGS_ENABLE_CONNECT_PROTOCOL over HTTP/3. */
  H2WS_RT_POLICY_H3 = 4,
  /* HTTP/3 first, then as AUTO (h2, then HTTP/1.1) on a new TCP
   * connection when QUIC fails (no answer within the handshake timeout,
   * ICMP port unreachable, a QUIC or TLS error) or the server does not do
   * WebSockets over HTTP/3; on_note gives the reason of each step.  AUTO
   * does the same for an origin whose Alt-Svc (RFC 7838, on an earlier
   * WebSocket's answer to this client) named h3, for its max-age (at
   * most 24 h) or until an attempt fails. */
  H2WS_RT_POLICY_PREFER_H3 = 5
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
  /* With close_idle: how long an HTTP/2 connection stays in the pool
   * with no WebSocket before it is shut down (GOAWAY), so that the next
   * WebSocket soon after reuses it (a gateway's backends).  Milliseconds;
   * 0 (default): at once. */
  uint64_t idle_timeout_ms;
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

/* What to open (h2ws_client_open).  Start from
 * h2ws_client_ws_options_default(). */
typedef struct h2ws_client_ws_options {
  h2ws_rt_policy policy;               /* default AUTO */
  int compress;                        /* offer permessage-deflate:
                                          default 1 */
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

H2WS_EXTERN void h2ws_client_ws_options_default(h2ws_client_ws_options *options);

/*
 * Opens a WebSocket to a ws:// or wss:// URL.  Everything happens on the
 * loop: DNS (uv_getaddrinfo), TCP, TLS, the handshake; then on_open or
 * on_fail.  An open HTTP/2 connection to the same origin is reused.
 * options NULL: h2ws_client_ws_options_default().
 * *pws (may be NULL) gets the handle at once.
 * Returns 0, H2WS_ERR_INVALID_ARGUMENT (bad URL: the message says why in
 * h2ws_client_last_error()), H2WS_ERR_NOMEM.
 */
H2WS_EXTERN int h2ws_client_open(h2ws_client *cl, const char *url,
                                 const h2ws_client_ws_options *options,
                                 const h2ws_rt_ws_callbacks *callbacks, void *user_data,
                                 h2ws_rt_ws **pws);

H2WS_EXTERN const char *h2ws_client_last_error(const h2ws_client *cl);

/* For a graceful stop: shuts down (GOAWAY) every HTTP/2 connection of the
 * client that carries no WebSocket, and from now on each one as soon as
 * its last WebSocket ends (close_idle on, idle_timeout_ms 0), so that
 * h2ws_rt_run() can return once the WebSockets are closed.  Open
 * WebSockets are not touched; new ones can still be opened.  NULL
 * allowed. */
H2WS_EXTERN void h2ws_client_close_idle(h2ws_client *cl);

#ifdef __cplusplus
}
#endif
#endif /* H2WS_RT_H */
