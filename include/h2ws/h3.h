/*
 * h2ws/h3.h - WebSockets over HTTP/3 (RFC 9220 extended CONNECT on RFC
 * 9114), bound to nghttp3 over ngtcp2 with GnuTLS for QUIC's TLS, with no
 * I/O.
 *
 * One h2ws_h3_session is one QUIC connection, server or client role.  It
 * wraps one ngtcp2_conn, its GnuTLS session and one nghttp3_conn, and maps
 * each WebSocket stream (a client-initiated bidirectional QUIC stream) to
 * one h2ws_ws engine (h2ws/ws.h), exactly as h2ws/h2.h does on HTTP/2.
 * The runtime (a UDP endpoint that owns the socket):
 *
 *   - pushes each received datagram with h2ws_h3_session_recv(), giving
 *     the path it arrived on (local and remote addresses as opaque
 *     `struct sockaddr` bytes);
 *   - pulls datagrams to send with h2ws_h3_session_send(): one call returns
 *     a BATCH of up to settings.max_batch datagrams for one path, back to
 *     back in one binding-owned buffer, all `segment_size` bytes long but
 *     the last (so one sendmsg() with UDP_SEGMENT, GSO, can carry them);
 *     it calls send() until a batch has no datagram;
 *   - drives timers with h2ws_h3_session_get_expiry() /
 *     h2ws_h3_session_handle_expiry() (loss detection, ACK delay, pacing,
 *     idle timeout, the engines' closing handshakes, the shutdown drain);
 *   - routes datagrams to sessions by connection ID
 *     (h2ws_h3_packet_decode(), h2ws_h3_session_get_cids() and the
 *     on_cid_new / on_cid_retired callbacks), answers the rest
 *     statelessly (h2ws_h3_server_new() with Retry, version negotiation,
 *     h2ws_h3_write_stateless_reset());
 *   - deletes the session once h2ws_h3_session_want_read() is 0.
 *
 * The application talks to each WebSocket through its h2ws_ws engine
 * directly (h2ws_ws_submit_msg(), ...); the binding notices engine output
 * at the next h2ws_h3_session_send().
 *
 * Time is always a parameter (`now`, monotonic milliseconds; QUIC's own
 * timers run on it too).  Randomness (connection IDs, stateless reset
 * tokens of a client, PATH_CHALLENGE data, packet number skips) comes from
 * the `random` callback; GnuTLS draws its own for the TLS handshake.  No
 * clock, no socket, no thread, no global.  An object is not thread-safe.
 *
 * TLS: the caller creates a gnutls_certificate_credentials_t (server: its
 * certificate and key, e.g. gnutls_certificate_set_x509_key_file() or
 * _mem(); client: the trust anchors, e.g.
 * gnutls_certificate_set_x509_system_trust() or _trust_mem()) and passes
 * it to h2ws_h3_server_new() / h2ws_h3_client_new().  Sessions only read
 * it: one credentials object serves every connection (and every worker);
 * the caller frees it after the last session that uses it.  ALPN is "h3";
 * TLS 1.3 only (QUIC); no 0-RTT (an extended CONNECT must not be
 * replayed).  A client verifies the server's certificate against
 * settings.server_name (also sent as SNI) unless settings.verify_peer is 0.
 * The fail-every-allocation hook (`mem`) reaches the binding, ngtcp2 and
 * nghttp3, not GnuTLS (which has no per-object allocator).
 *
 * Reentrancy: from inside any callback (session or engine) the application
 * may call h2ws_h3_accept_ws(), h2ws_h3_refuse(), h2ws_h3_respond(),
 * h2ws_h3_reset(), h2ws_h3_client_open_ws(), h2ws_h3_client_request(),
 * h2ws_h3_session_shutdown(), the h2ws_ws_submit_* functions and the query
 * functions.  It must not call h2ws_h3_session_recv(), _send(),
 * _handle_expiry(), h2ws_h3_resume_ws() (these return
 * H2WS_ERR_INVALID_STATE) or h2ws_h3_session_del().
 *
 * Streams are identified by their QUIC stream id (int64_t, >= 0).
 *
 * ------------------------------------------------------------------------
 * Flow control and memory bound (SPEC H10, pitfalls 11-13)
 *
 * Received DATA is handed to the stream's engine as it arrives.  The
 * CONNECTION credit (MAX_DATA) is returned as soon as bytes arrive, so no
 * single stream can freeze the connection.  A STREAM's credit
 * (MAX_STREAM_DATA) is returned only for bytes its engine consumed: when
 * an engine callback returns H2WS_ERR_PAUSE the binding stops feeding that
 * stream and keeps what arrives (at most the stream's window) until
 * h2ws_h3_resume_ws(); other streams keep flowing.  Stream windows start
 * at `stream_window` and double up to `stream_window_max` while the reader
 * keeps up and the peer is window-limited, within the session-wide
 * `stream_window_budget` (as on HTTP/2).  Worst-case receive memory is
 *   max_concurrent_streams * stream_window + stream_window_budget
 * (100 * 256 KiB + 32 MiB with the defaults) plus the header caps.
 * Sending: QUIC retransmits from the application's bytes, so engine output
 * is copied once into a per-stream send queue (16 KiB chunks from a
 * per-session pool) and held until the peer acknowledges it; a stream
 * holds at most `stream_send_buffer` bytes there, then its engine's own
 * max_output fills up (on_writable says when there is room again).
 * ------------------------------------------------------------------------
 */
#ifndef H2WS_H3_H
#define H2WS_H3_H

#include <gnutls/gnutls.h>
#include <h2ws/h2ws.h>
#include <h2ws/ws.h>
#include <h2ws/handshake.h>
#include <h2ws/pmd.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct h2ws_h3_session h2ws_h3_session;

/* Error codes specific to this binding (h2ws_h3_strerror() names them). */
enum {
  /* Client: the server's HTTP/3 SETTINGS did not carry
   * SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 (RFC 9220 §3): no WebSocket can
   * be opened on this connection.  Fall back to HTTP/2 or HTTP/1.1. */
  H2WS_ERR_H3_NO_EXTENDED_CONNECT = -260,
  /* The stream was reset or refused before the WebSocket opened. */
  H2WS_ERR_H3_STREAM_RESET = -261,
  /* Client: the 2xx does not match the request (subprotocol or extension
   * not offered, content-length, a header block over the caps). */
  H2WS_ERR_H3_BAD_RESPONSE = -262,
  /* The stream limit (settings.max_websockets or the server's QUIC
   * bidirectional stream credit) is reached: open another connection. */
  H2WS_ERR_H3_TOO_MANY_STREAMS = -263,
  /* The session is shutting down or received GOAWAY: no new streams. */
  H2WS_ERR_H3_GOAWAY = -264,
  /* The QUIC connection is over: idle timeout, handshake failure or
   * timeout, the peer's CONNECTION_CLOSE or stateless reset, or one of
   * ours.  h2ws_h3_session_get_stats() tells which and the codes. */
  H2WS_ERR_H3_CLOSED = -265,
  /* h2ws_h3_server_new(): no session was made; send the stateless reply
   * it wrote (a Retry, or a CONNECTION_CLOSE INVALID_TOKEN) if any. */
  H2WS_ERR_H3_STATELESS = -266
};

/* Describes h2ws errors including the ones above (static string). */
H2WS_EXTERN const char *h2ws_h3_strerror(int error);

/* HTTP/3 error codes (RFC 9114 §8.1) the binding uses on the wire. */
#define H2WS_H3_NO_ERROR 0x100u
#define H2WS_H3_GENERAL_PROTOCOL_ERROR 0x101u
#define H2WS_H3_INTERNAL_ERROR 0x102u
#define H2WS_H3_FRAME_UNEXPECTED 0x105u
#define H2WS_H3_EXCESSIVE_LOAD 0x107u
#define H2WS_H3_SETTINGS_ERROR 0x109u
#define H2WS_H3_REQUEST_REJECTED 0x10bu
#define H2WS_H3_REQUEST_CANCELLED 0x10cu
#define H2WS_H3_MESSAGE_ERROR 0x10eu

/* An address: the bytes of a struct sockaddr_in / sockaddr_in6 (at most
 * 128 bytes), opaque to the binding, which copies them. */
typedef struct h2ws_h3_addr {
  const void *addr;
  size_t addrlen;
} h2ws_h3_addr;

/* Where a datagram was received / must be sent: our address and the
 * peer's. */
typedef struct h2ws_h3_path {
  h2ws_h3_addr local, remote;
} h2ws_h3_path;

/* A request as received (fields as h2ws_h2_request). */
typedef struct h2ws_h3_request {
  const char *method;
  const char *scheme;
  const char *authority;
  const char *path;
  const char *protocol; /* :protocol (extended CONNECT only) */
  const h2ws_header *headers;
  size_t nheaders;
} h2ws_h3_request;

/* Session settings, filled with defaults by h2ws_h3_settings_default(). */
typedef struct h2ws_h3_settings {
  /* Server: nonzero to advertise SETTINGS_ENABLE_CONNECT_PROTOCOL = 1
   * (RFC 9220 §3).  Set it ONLY if the application has a WebSocket route
   * (pitfall 1).  When 0 any :protocol is a malformed request.  Default
   * 0.  Ignored by clients. */
  int enable_connect_protocol;
  /* Server: the peer's concurrent bidirectional streams (QUIC
   * initial_max_streams_bidi, extended by one as each closes); QUIC itself
   * refuses more.  Client: unused (the server's credit counts).  Default
   * 100. */
  uint32_t max_concurrent_streams;
  /* Live WebSockets (as h2ws_h2_settings.max_websockets).  Server: an
   * extended CONNECT beyond it is reset with H3_REQUEST_REJECTED; client:
   * h2ws_h3_client_open_ws() fails with H2WS_ERR_H3_TOO_MANY_STREAMS.
   * 0 (default): max_concurrent_streams on a server, 100 on a client. */
  uint32_t max_websockets;
  /* Connection receive window (initial_max_data), returned on arrival.
   * Default 16 MiB. */
  uint64_t connection_window;
  /* Initial stream receive window, auto-tuning ceiling, session growth
   * budget (see above).  Defaults 256 KiB, 4 MiB, 32 MiB. */
  uint32_t stream_window;
  uint32_t stream_window_max;
  size_t stream_window_budget;
  /* Engine bytes a stream holds until acknowledged.  Default 256 KiB. */
  size_t stream_send_buffer;
  /* Cap on one decoded header block (name + value + 32 per field, as RFC
   * 9114 §4.2.2 counts it; advertised as SETTINGS_MAX_FIELD_SECTION_SIZE)
   * and on its fields.  Passed: the stream is reset with H3_EXCESSIVE_LOAD
   * (STOP_SENDING too) and nothing of the block is kept; a client's
   * request fails with H2WS_ERR_H3_BAD_RESPONSE.  Defaults 64 KiB, 256. */
  size_t max_header_bytes;
  uint32_t max_header_fields;
  /* Largest body h2ws_h3_respond() / h2ws_h3_client_request() copies.
   * Default 16 MiB. */
  size_t max_body_copy;
  /* QUIC max_idle_timeout.  While at least one WebSocket is open the
   * session sends a PING after half of it without traffic, so an idle
   * WebSocket does not end the connection (pitfall 17).  Default 30 s. */
  uint64_t idle_timeout_ms;
  /* QUIC handshake deadline.  Default 10 s. */
  uint64_t handshake_timeout_ms;
  /* Largest UDP payload we send (1200..1452).  Default 1452. */
  size_t max_udp_payload;
  /* Datagrams per h2ws_h3_session_send() batch (1..64).  Default 10. */
  size_t max_batch;
  /* Streams reset because of the peer (malformed requests, refused
   * streams, header caps, resets received), per second; above, the
   * connection is closed with H3_EXCESSIVE_LOAD (rapid reset).  0
   * disables.  Default 200. */
  uint32_t max_reset_rate;
  /* Server: the secret (at least 16 bytes, copied) that Retry tokens and
   * stateless reset tokens are derived from (ngtcp2_crypto).  Required
   * for a server; every worker of one service must use the same one. */
  const uint8_t *token_secret;
  size_t token_secretlen;
  /* Server: nonzero to send a Retry to every Initial without a valid
   * Retry token (address validation, RFC 9000 §8.1).  Tokens are valid
   * for retry_token_timeout_ms of the caller's clock.  Defaults 0, 10 s. */
  int require_retry;
  uint64_t retry_token_timeout_ms;
  /* Client: the server's name (SNI, and the name its certificate is
   * verified against).  Required for a client. */
  const char *server_name;
  /* Client: nonzero (default) to verify the server's certificate. */
  int verify_peer;
  /* ABI (docs/abi.md): room for members added within this SONAME;
   * leave zero. */
  uint64_t reserved[4];
} h2ws_h3_settings;

H2WS_EXTERN void h2ws_h3_settings_default(h2ws_h3_settings *settings);

/*
 * Session callbacks.  `random` is required; any other may be NULL.
 * Pointers passed are valid until the callback returns.  Unless stated
 * otherwise return 0, or a negative value to fail the connection
 * (CONNECTION_CLOSE H3_INTERNAL_ERROR; the current call returns
 * H2WS_ERR_CALLBACK_FAILURE).
 */
typedef struct h2ws_h3_callbacks {
  /* Fills buf with len unpredictable bytes (connection IDs, a client's
   * stateless reset tokens, PATH_CHALLENGE data).  Required. */
  int (*random)(uint8_t *buf, size_t len, void *user_data);
  /* Server: a well-formed extended CONNECT for :protocol websocket with
   * sec-websocket-version 13 (malformed ones were answered: see
   * docs/h2-errors.md, HTTP/3 column).  Decide now or later:
   * h2ws_h3_accept_ws() or h2ws_h3_refuse().  NULL: refused with 404. */
  int (*on_ws_request)(h2ws_h3_session *session, int64_t stream_id,
                       const h2ws_ws_request *req,
                       const h2ws_h3_request *hreq, void *user_data);
  /* Server: an ordinary request (GET, a plain CONNECT, ...): answer with
   * h2ws_h3_respond() / h2ws_h3_refuse().  NULL: 404. */
  int (*on_request)(h2ws_h3_session *session, int64_t stream_id,
                    const h2ws_h3_request *req, void *user_data);
  /* Server: body bytes of an ordinary request (fin = 1 with the last
   * call, possibly datalen 0).  Credit is returned at once. */
  int (*on_request_data)(h2ws_h3_session *session, int64_t stream_id,
                         const uint8_t *data, size_t datalen, int fin,
                         void *user_data);
  /* Client: the WebSocket on stream_id is open (2xx checked); `ws` is
   * owned by the session until on_ws_closed; subprotocol NULL if none. */
  int (*on_ws_open)(h2ws_h3_session *session, int64_t stream_id,
                    h2ws_ws *ws, const char *subprotocol,
                    void *request_user_data, void *user_data);
  /* Client: a WebSocket request failed before opening: status when the
   * server answered (400, 403, 404, 426, 501, ...) else 0; error is
   * H2WS_ERR_HANDSHAKE (non-2xx), H2WS_ERR_H3_NO_EXTENDED_CONNECT,
   * H2WS_ERR_H3_STREAM_RESET, H2WS_ERR_H3_BAD_RESPONSE,
   * H2WS_ERR_H3_TOO_MANY_STREAMS, H2WS_ERR_H3_GOAWAY, H2WS_ERR_H3_CLOSED
   * or H2WS_ERR_NOMEM.  stream_id is -1 if the request was never sent. */
  int (*on_ws_refused)(h2ws_h3_session *session, int64_t stream_id,
                       int status, int error, void *request_user_data,
                       void *user_data);
  /* Both: a WebSocket stream ended (after the engine's on_close).  The
   * engine is valid during the call.  h3_error_code is the stream's reset
   * code, H2WS_H3_NO_ERROR for an orderly end (FIN both ways).  Return
   * value ignored. */
  void (*on_ws_closed)(h2ws_h3_session *session, int64_t stream_id,
                       h2ws_ws *ws, uint64_t h3_error_code, void *user_data);
  /* Any request stream closed (logs, metrics).  Return value ignored. */
  void (*on_stream_close)(h2ws_h3_session *session, int64_t stream_id,
                          uint64_t h3_error_code, void *user_data);
  /* Client: the answer to h2ws_h3_client_request(), then its body. */
  int (*on_response)(h2ws_h3_session *session, int64_t stream_id, int status,
                     const h2ws_header *headers, size_t nheaders,
                     void *user_data);
  int (*on_response_data)(h2ws_h3_session *session, int64_t stream_id,
                          const uint8_t *data, size_t datalen, int fin,
                          void *user_data);
  /* The peer sent GOAWAY (client: streams from `id` on were not
   * processed).  Open new WebSockets on a new connection.  Return value
   * ignored. */
  void (*on_goaway)(h2ws_h3_session *session, int64_t id, void *user_data);
  /* The QUIC handshake completed (the peer's certificate checked).
   * Return value ignored. */
  void (*on_handshake_done)(h2ws_h3_session *session, void *user_data);
  /* A connection ID of ours now routes to this session / no longer does
   * (the endpoint's routing table).  The first ones are in
   * h2ws_h3_session_get_cids() after _new.  Return value ignored. */
  void (*on_cid_new)(h2ws_h3_session *session, const uint8_t *cid,
                     size_t cidlen, void *user_data);
  void (*on_cid_retired)(h2ws_h3_session *session, const uint8_t *cid,
                         size_t cidlen, void *user_data);
  /* ABI (docs/abi.md): room for callbacks added within this SONAME;
   * leave NULL. */
  void (*reserved[4])(void);
} h2ws_h3_callbacks;

/*
 * Client: creates a session connecting on `path` (our address and the
 * server's); its first datagrams (the Initial) come out of the next
 * h2ws_h3_session_send().  `cred` holds the trust anchors (see above).
 * Callbacks and settings are copied (settings NULL = defaults, but
 * server_name is required); `mem` may be NULL.
 * Returns 0, H2WS_ERR_INVALID_ARGUMENT (no random callback, no
 * server_name, bad settings or path), H2WS_ERR_NOMEM, H2WS_ERR_INTERNAL
 * (GnuTLS refused the setup).
 */
H2WS_EXTERN int h2ws_h3_client_new(h2ws_h3_session **psession,
                                   const h2ws_h3_callbacks *callbacks,
                                   const h2ws_h3_settings *settings,
                                   gnutls_certificate_credentials_t cred,
                                   const h2ws_h3_path *path, uint64_t now,
                                   const h2ws_mem *mem, void *user_data);

/*
 * Server: makes a session from the first datagram of a new connection
 * (one whose destination connection ID routes nowhere), received on
 * `path`.  The datagram is NOT consumed: pass it to
 * h2ws_h3_session_recv() next.  `cred` holds our certificate and key.
 * When a session is not warranted it writes a stateless reply into
 * `reply` (replycap bytes, 1200 suffice; may be NULL) and returns
 * H2WS_ERR_H3_STATELESS with *preplylen > 0 (send it to path->remote) or
 * 0 (drop the datagram):
 *   - not a client Initial of a version we speak, or too short: dropped
 *     (a long header of an unknown version: see h2ws_h3_packet_decode()
 *     and h2ws_h3_write_version_negotiation());
 *   - settings.require_retry and no token: a Retry carrying a token
 *     bound to the client's address;
 *   - a Retry token that does not verify (forged, expired, another
 *     address): CONNECTION_CLOSE INVALID_TOKEN (RFC 9000 §8.1.2).
 * Returns 0 (*psession set), H2WS_ERR_H3_STATELESS,
 * H2WS_ERR_INVALID_ARGUMENT (no random callback, no token secret, bad
 * settings or path), H2WS_ERR_NOMEM, H2WS_ERR_INTERNAL (GnuTLS).
 */
H2WS_EXTERN int h2ws_h3_server_new(h2ws_h3_session **psession,
                                   const h2ws_h3_callbacks *callbacks,
                                   const h2ws_h3_settings *settings,
                                   gnutls_certificate_credentials_t cred,
                                   const h2ws_h3_path *path, const uint8_t *datagram,
                                   size_t datagramlen, uint8_t *reply, size_t replycap,
                                   size_t *preplylen, uint64_t now, const h2ws_mem *mem,
                                   void *user_data);

/* Frees the session, every engine (on_ws_closed is NOT fired) and its
 * TLS session.  Sends nothing: call h2ws_h3_session_close() first for a
 * CONNECTION_CLOSE.  NULL is allowed.  Not from a callback. */
H2WS_EXTERN void h2ws_h3_session_del(h2ws_h3_session *session);

/*
 * Feeds one received UDP datagram (split GRO-coalesced reads first).
 * Fires callbacks, including engine callbacks.  Returns 0 (also for a
 * datagram that was not for us or failed authentication: QUIC drops such
 * packets silently);
 *   H2WS_ERR_H3_CLOSED        the connection is over or now closing: a
 *                             CONNECTION_CLOSE (ours, with the peer's
 *                             fault as its code: PROTOCOL_VIOLATION,
 *                             H3_FRAME_UNEXPECTED, H3_SETTINGS_ERROR, a
 *                             TLS alert, ...) may still come out of
 *                             send(); want_read() tells when to delete;
 *   H2WS_ERR_CALLBACK_FAILURE an application callback failed (the
 *                             connection closes with H3_INTERNAL_ERROR);
 *   H2WS_ERR_NOMEM            out of memory (likewise);
 *   H2WS_ERR_INVALID_STATE    called from a callback (nothing happened).
 */
H2WS_EXTERN int h2ws_h3_session_recv(h2ws_h3_session *session, const h2ws_h3_path *path,
                                     const uint8_t *datagram, size_t datagramlen,
                                     uint64_t now);

/* A batch of datagrams (h2ws_h3_session_send()). */
typedef struct h2ws_h3_batch {
  const uint8_t *data;  /* count datagrams back to back */
  size_t len;           /* their total size */
  size_t count;         /* 0: nothing to send now */
  size_t segment_size;  /* each is this long but the last (<=): GSO */
  h2ws_h3_path path;    /* send from path.local to path.remote */
  uint8_t ecn;          /* ECN codepoint for the IP header (0..3) */
  /* ABI (docs/abi.md): room for members added within this SONAME;
   * leave zero. */
  uint64_t reserved[4];
} h2ws_h3_batch;

/*
 * Output, pulled: writes the next batch of datagrams (ACKs, handshake,
 * stream data of many streams, our CONNECTION_CLOSE) into the binding's
 * buffer and describes it in *pbatch (count 0 when nothing is due: QUIC's
 * congestion control and pacing may hold data back until a timer).  The
 * bytes stay valid until the next call on this session other than the
 * query functions.  Datagram i starts at data + i * segment_size.
 * Returns 0, H2WS_ERR_H3_CLOSED (nothing more will be sent),
 * H2WS_ERR_INVALID_STATE (from a callback), H2WS_ERR_CALLBACK_FAILURE,
 * H2WS_ERR_NOMEM.
 */
H2WS_EXTERN int h2ws_h3_session_send(h2ws_h3_session *session, h2ws_h3_batch *pbatch,
                                     uint64_t now);

/* Nonzero while the session expects datagrams; 0 once the connection is
 * over (closed, drained, timed out): delete it then. */
H2WS_EXTERN int h2ws_h3_session_want_read(const h2ws_h3_session *session);

/* Earliest deadline of QUIC, the engines and the drain, or
 * H2WS_NO_EXPIRY.  After it passes call handle_expiry() then send(). */
H2WS_EXTERN uint64_t h2ws_h3_session_get_expiry(const h2ws_h3_session *session);

/* Handles every deadline passed at `now` (retransmissions, the idle
 * timeout, closing handshakes, the drain).  Returns 0,
 * H2WS_ERR_H3_CLOSED (the idle timeout or the handshake deadline passed:
 * the connection is over, silently as QUIC wants), H2WS_ERR_INVALID_STATE,
 * H2WS_ERR_NOMEM. */
H2WS_EXTERN int h2ws_h3_session_handle_expiry(h2ws_h3_session *session, uint64_t now);

/*
 * Graceful shutdown (SPEC H12): new streams are refused
 * (H3_REQUEST_REJECTED; a client's queued WebSockets fail with
 * H2WS_ERR_H3_GOAWAY), Close 1001 is queued on every WebSocket, and once
 * every request stream has ended or `drain_ms` has passed what is left is
 * reset, GOAWAY is sent, then CONNECTION_CLOSE H3_NO_ERROR; want_read()
 * falls to 0 after the closing period.  No GOAWAY before the drain ends
 * (as on HTTP/2: a browser resets its streams on GOAWAY).
 * Returns 0, H2WS_ERR_NOMEM.
 */
H2WS_EXTERN int h2ws_h3_session_shutdown(h2ws_h3_session *session, uint64_t now,
                                         uint64_t drain_ms);

/* Immediate close: CONNECTION_CLOSE with the HTTP/3 error code (e.g.
 * H2WS_H3_NO_ERROR) comes out of the next send(); every WebSocket ends
 * with 1006.  Returns 0. */
H2WS_EXTERN int h2ws_h3_session_close(h2ws_h3_session *session, uint64_t h3_error_code,
                                      uint64_t now);

/* Counters and the end of the connection. */
typedef struct h2ws_h3_stats {
  uint64_t streams_refused;  /* reset with H3_REQUEST_REJECTED */
  uint64_t streams_reset;    /* reset by us with another code */
  uint64_t resets_received;  /* RESET_STREAM / STOP_SENDING received */
  uint64_t datagrams_in, datagrams_out;
  int handshake_done;
  /* Nonzero once the connection is closing or over; who closed it (1:
   * we did, 2: the peer, 3: idle timeout, 4: handshake timeout, 5:
   * stateless reset), the QUIC code (an HTTP/3 application code when
   * app_error is nonzero, else a transport code) and a short static
   * reason. */
  int closed;
  int closed_by;
  int app_error;
  uint64_t error_code;
  const char *reason;
  /* ABI (docs/abi.md): room for members added within this SONAME;
   * leave zero. */
  uint64_t reserved[4];
} h2ws_h3_stats;

H2WS_EXTERN void h2ws_h3_session_get_stats(const h2ws_h3_session *session,
                                           h2ws_h3_stats *pstats);

/* Nonzero once the peer's HTTP/3 SETTINGS arrived; client: *penabled gets
 * whether the server advertised ENABLE_CONNECT_PROTOCOL = 1. */
H2WS_EXTERN int h2ws_h3_session_peer_settings(const h2ws_h3_session *session,
                                              int *penabled);

/* Our connection IDs in use (the endpoint routes them here): writes up to
 * max of them (20 bytes each, lengths in lens) and returns how many. */
H2WS_EXTERN size_t h2ws_h3_session_get_cids(const h2ws_h3_session *session,
                                            uint8_t (*cids)[20], size_t *lens,
                                            size_t max);

H2WS_EXTERN void *h2ws_h3_session_get_user_data(const h2ws_h3_session *session);

/* ----------------------------------------------------------------------
 * Server side (same shapes as h2ws/h2.h)
 */
typedef struct h2ws_h3_accept_options {
  const char *subprotocol;
  const h2ws_pmd_config *pmd_config;
  h2ws_pmd_params pmd;
  const h2ws_ws_callbacks *callbacks;
  const h2ws_ws_settings *settings;
  const h2ws_header *headers;
  size_t nheaders;
  void *user_data;
  /* ABI (docs/abi.md): room for members added within this SONAME;
   * leave zero. */
  uint64_t reserved[4];
} h2ws_h3_accept_options;

H2WS_EXTERN void h2ws_h3_accept_options_default(h2ws_h3_accept_options *options);

/*
 * Accepts the WebSocket request on stream_id: :status 200 without FIN, no
 * sec-websocket-accept, no content-length (RFC 9220 §3, RFC 8441 §5),
 * sec-websocket-protocol / -extensions when agreed (negotiated as on
 * HTTP/2: see h2ws_h2_accept_options); creates the engine (*pws, may be
 * NULL).  Bytes that arrived before the decision are delivered now.
 * Returns 0, H2WS_ERR_INVALID_ARGUMENT (no such pending request, a
 * subprotocol not offered, bad engine settings, a forbidden extra
 * header), H2WS_ERR_NOMEM, H2WS_ERR_INTERNAL.
 */
H2WS_EXTERN int h2ws_h3_accept_ws(h2ws_h3_session *session, int64_t stream_id,
                                  const h2ws_h3_accept_options *options, h2ws_ws **pws);

/* Refuses a pending request with status 300..599 (426 adds
 * sec-websocket-version: 13) and FIN.  Returns 0,
 * H2WS_ERR_INVALID_ARGUMENT, H2WS_ERR_NOMEM. */
H2WS_EXTERN int h2ws_h3_refuse(h2ws_h3_session *session, int64_t stream_id, int status,
                               const h2ws_header *headers, size_t nheaders);

/* Answers an ordinary request with a copied body (NULL / 0: none).
 * Returns 0, H2WS_ERR_INVALID_ARGUMENT, H2WS_ERR_TOO_LARGE,
 * H2WS_ERR_NOMEM. */
H2WS_EXTERN int h2ws_h3_respond(h2ws_h3_session *session, int64_t stream_id, int status,
                                const h2ws_header *headers, size_t nheaders,
                                const uint8_t *body, size_t bodylen);

/* ----------------------------------------------------------------------
 * Client side
 */
typedef struct h2ws_h3_ws_options {
  const char *scheme;    /* "https" (wss) or "http" (ws) */
  const char *authority; /* host[:port] */
  const char *path;      /* path + query */
  const char *const *subprotocols;
  size_t nsubprotocols;
  const char *origin;
  const h2ws_header *headers; /* extra fields (h2ws_connect_field_ok()) */
  size_t nheaders;
  h2ws_pmd_config pmd_offer;  /* .enabled = 0: no offer */
  const h2ws_ws_callbacks *callbacks; /* copied; .random required */
  const h2ws_ws_settings *settings;
  void *user_data;
  /* ABI (docs/abi.md): room for members added within this SONAME;
   * leave zero. */
  uint64_t reserved[4];
} h2ws_h3_ws_options;

/* Zeroes options (scheme "https", path "/", no pmd offer). */
H2WS_EXTERN void h2ws_h3_ws_options_default(h2ws_h3_ws_options *options);

/*
 * Opens a WebSocket (RFC 9220: the extended CONNECT of RFC 8441 §4 on a
 * new bidirectional stream; the field list is h2ws_connect_fields()).
 * Gated on the server's SETTINGS (RFC 9220 §3, pitfall 4): until they
 * arrive the request is queued and *pstream_id is -1; with
 * ENABLE_CONNECT_PROTOCOL = 1 it is sent (on_ws_open / on_ws_refused tell
 * its stream id), otherwise on_ws_refused fires with
 * H2WS_ERR_H3_NO_EXTENDED_CONNECT.  Never queued behind the server's
 * stream credit (pitfall 18): H2WS_ERR_H3_TOO_MANY_STREAMS.
 * Returns 0, H2WS_ERR_INVALID_ARGUMENT, H2WS_ERR_H3_NO_EXTENDED_CONNECT,
 * H2WS_ERR_H3_TOO_MANY_STREAMS, H2WS_ERR_H3_GOAWAY, H2WS_ERR_H3_CLOSED,
 * H2WS_ERR_NOMEM.
 */
H2WS_EXTERN int h2ws_h3_client_open_ws(h2ws_h3_session *session,
                                       const h2ws_h3_ws_options *options,
                                       int64_t *pstream_id);

/* Sends an ordinary request (body copied, NULL / 0: FIN with the
 * headers) once the handshake allows streams; the answer comes through
 * on_response / on_response_data.  Returns 0, H2WS_ERR_INVALID_ARGUMENT,
 * H2WS_ERR_INVALID_STATE (no stream can be opened yet: wait for
 * on_handshake_done), H2WS_ERR_H3_TOO_MANY_STREAMS, H2WS_ERR_H3_GOAWAY,
 * H2WS_ERR_TOO_LARGE, H2WS_ERR_NOMEM. */
H2WS_EXTERN int h2ws_h3_client_request(h2ws_h3_session *session, const char *method,
                                       const char *scheme, const char *authority,
                                       const char *path, const h2ws_header *headers,
                                       size_t nheaders, const uint8_t *body,
                                       size_t bodylen, int64_t *pstream_id);

/* ----------------------------------------------------------------------
 * Both sides: WebSocket streams (as h2ws/h2.h)
 */
H2WS_EXTERN h2ws_ws *h2ws_h3_get_ws(const h2ws_h3_session *session, int64_t stream_id);

/* Resumes a paused stream: feeds what it buffered and returns its credit.
 * A stream whose engine returned H2WS_ERR_WOULDBLOCK (its recv_budget
 * spent) is paused the same way and resumed by this call (the caller's
 * next turn).  Not from a callback.  Returns 0, H2WS_ERR_PAUSE (paused
 * again),
 * H2WS_ERR_INVALID_ARGUMENT, H2WS_ERR_INVALID_STATE. */
H2WS_EXTERN int h2ws_h3_resume_ws(h2ws_h3_session *session, int64_t stream_id,
                                  uint64_t now);

H2WS_EXTERN int h2ws_h3_ws_is_paused(const h2ws_h3_session *session, int64_t stream_id);
H2WS_EXTERN size_t h2ws_h3_ws_buffered(const h2ws_h3_session *session, int64_t stream_id);
/* WebSocket output of the stream not yet acknowledged by the peer: what
 * its engine still queues plus the binding's send queue (bytes handed to
 * QUIC, kept until acknowledged).  0 for an unknown stream.  A server's
 * write deadline looks at it: a peer that does not open its flow-control
 * window keeps it above 0. */
H2WS_EXTERN size_t h2ws_h3_ws_unacked(const h2ws_h3_session *session, int64_t stream_id);

/* Resets a request stream both ways (RESET_STREAM and STOP_SENDING with
 * the HTTP/3 code, e.g. H2WS_H3_REQUEST_CANCELLED): a WebSocket on it
 * ends with 1006 on both sides.  Prefer h2ws_ws_submit_close().
 * Returns 0, H2WS_ERR_INVALID_ARGUMENT, H2WS_ERR_NOMEM. */
H2WS_EXTERN int h2ws_h3_reset(h2ws_h3_session *session, int64_t stream_id,
                              uint64_t h3_error_code);

H2WS_EXTERN size_t h2ws_h3_session_num_ws(const h2ws_h3_session *session);

/* ----------------------------------------------------------------------
 * Stateless helpers for the endpoint that routes datagrams
 */
typedef struct h2ws_h3_packet_info {
  uint32_t version;      /* 0 for a short header */
  int long_header;
  uint8_t dcid[20];
  size_t dcidlen;
  uint8_t scid[20];      /* long header only */
  size_t scidlen;
} h2ws_h3_packet_info;

/* Our connection IDs are this long (what short headers carry). */
#define H2WS_H3_CID_LEN 18

/* Reads a datagram's first packet header.  Returns 0; H2WS_ERR_WOULDBLOCK
 * when it is a long header of a version we do not speak (answer with
 * h2ws_h3_write_version_negotiation() if the datagram is at least 1200
 * bytes); H2WS_ERR_PROTO when it is not a QUIC packet (drop it). */
H2WS_EXTERN int h2ws_h3_packet_decode(const uint8_t *datagram, size_t datagramlen,
                                      h2ws_h3_packet_info *pinfo);

/* Writes a Version Negotiation packet answering `info` (RFC 9000 §6).
 * `unused` is a random byte.  Returns 0 or H2WS_ERR_NOBUF. */
H2WS_EXTERN int h2ws_h3_write_version_negotiation(const h2ws_h3_packet_info *info,
                                                  uint8_t unused, uint8_t *buf,
                                                  size_t bufcap, size_t *plen);

/* Writes a Stateless Reset (RFC 9000 §10.3) for a short-header datagram
 * to a connection ID we do not know, with the token derived from
 * `secret` (the servers' token_secret) as our sessions derive it: the peer
 * whose connection we lost stops at once.  It is smaller than the
 * datagram that caused it (no amplification; nothing for one below 41
 * bytes).  `random` fills the unpredictable bytes.  Returns 0 (*plen 0:
 * send nothing), H2WS_ERR_NOBUF, H2WS_ERR_INTERNAL. */
H2WS_EXTERN int h2ws_h3_write_stateless_reset(const h2ws_h3_packet_info *info,
                                              size_t datagramlen, const uint8_t *secret,
                                              size_t secretlen,
                                              int (*random)(uint8_t *, size_t, void *),
                                              void *random_user_data, uint8_t *buf,
                                              size_t bufcap, size_t *plen);

#ifdef __cplusplus
}
#endif
#endif /* H2WS_H3_H */
