/*
 * h2ws/h2.h - WebSockets over HTTP/2 (RFC 8441 extended CONNECT on
 * RFC 9113), bound to nghttp2, with no I/O.
 *
 * One h2ws_h2_session is one HTTP/2 connection, server or client role.  It
 * wraps one nghttp2_session and maps each WebSocket stream to one h2ws_ws
 * engine (h2ws/ws.h).  The runtime:
 *
 *   - pushes received bytes with h2ws_h2_session_recv();
 *   - pulls bytes to send with h2ws_h2_session_send() and acknowledges what
 *     it wrote with h2ws_h2_session_send_consumed().  Output is BATCHED: one
 *     call returns many HTTP/2 frames (HEADERS, SETTINGS, DATA of many
 *     streams) in one contiguous binding-owned buffer, so the runtime makes
 *     one TLS write / one syscall for many frames.  WebSocket payload is
 *     copied exactly once on this path: from the engine's output queue
 *     straight behind its 9-byte DATA frame header (nghttp2 NO_COPY).
 *     h2ws_h2_session_sendv() returns the same frames as a vector whose
 *     DATA payload pieces point into the engines' queues (no copy);
 *   - drives timers with h2ws_h2_session_get_expiry() /
 *     h2ws_h2_session_handle_expiry() (engines' closing-handshake timeouts,
 *     the graceful-shutdown drain);
 *   - closes the transport when h2ws_h2_session_want_read() and
 *     h2ws_h2_session_want_write() both return 0.
 *
 * The application talks to each WebSocket through its h2ws_ws engine
 * directly (h2ws_ws_submit_msg(), h2ws_ws_submit_close(), ...).  The
 * binding notices engine output at the next h2ws_h2_session_send() /
 * want_write() call: no "kick" call is needed.
 *
 * Time is always a parameter (`now`, monotonic milliseconds).  No clock, no
 * socket, no thread, no global.  An object is not thread-safe.
 *
 * Reentrancy: from inside any callback (session or engine) the application
 * may call h2ws_h2_accept_ws(), h2ws_h2_refuse(), h2ws_h2_respond*(),
 * h2ws_h2_reset(), h2ws_h2_client_open_ws(), h2ws_h2_session_shutdown(),
 * the h2ws_ws_submit_* functions and the query functions.  It must not call
 * h2ws_h2_session_recv(), h2ws_h2_session_send(), h2ws_h2_resume_ws(),
 * h2ws_h2_session_handle_expiry() (these return H2WS_ERR_INVALID_STATE)
 * or h2ws_h2_session_del().
 *
 * Streams are identified by their HTTP/2 stream id (int32_t, > 0).
 *
 * A server in a few lines (error handling omitted):
 *
 *   static int on_ws_request(h2ws_h2_session *s, int32_t id,
 *                            const h2ws_ws_request *req,
 *                            const h2ws_h2_request *hreq, void *ud) {
 *     if (!route_exists(req->path, req->pathlen))
 *       return h2ws_h2_refuse(s, id, 404, NULL, 0);
 *     h2ws_h2_accept_options o;
 *     h2ws_h2_accept_options_default(&o);
 *     o.callbacks = &my_engine_callbacks;   // on_msg, on_close, ...
 *     o.pmd_config = &my_pmd_config;        // or NULL: no compression
 *     return h2ws_h2_accept_ws(s, id, &o, NULL);
 *   }
 *
 *   h2ws_h2_settings set;
 *   h2ws_h2_settings_default(&set);
 *   set.enable_connect_protocol = 1;        // we do have a WebSocket route
 *   h2ws_h2_callbacks cb = {0};
 *   cb.on_ws_request = on_ws_request;
 *   cb.on_request = on_plain_request;       // pages, files, APIs
 *   h2ws_h2_session_new(&s, H2WS_ROLE_SERVER, &cb, &set, NULL, app);
 *   // event loop: bytes in -> h2ws_h2_session_recv(s, buf, n, &nr, now);
 *   //             h2ws_h2_session_send(s, &p, &len, now); write(p, len)
 *   //             -> h2ws_h2_session_send_consumed(s, written);
 *   //             timers from h2ws_h2_session_get_expiry();
 *   //             close when want_read and want_write are both 0.
 *
 * A client: h2ws_h2_session_new(.., H2WS_ROLE_CLIENT, ..), then
 * h2ws_h2_client_open_ws() as often as needed (one WebSocket per stream);
 * on_ws_open hands over each engine, on_ws_refused says why not
 * (H2WS_ERR_H2_NO_EXTENDED_CONNECT: fall back to HTTP/1.1).
 *
 * ------------------------------------------------------------------------
 * Flow control and memory bound (SPEC H10, pitfalls 11-13)
 *
 * Received DATA is handed to the stream's engine as it arrives.  The
 * CONNECTION window is returned (WINDOW_UPDATE) as soon as bytes arrive, so
 * no single stream can ever freeze the connection.  A STREAM's window is
 * returned only for bytes its engine consumed (h2ws_ws_recv()'s *pnread).
 * When an engine callback returns H2WS_ERR_PAUSE the binding stops feeding
 * that stream and keeps what arrives in a per-stream buffer; since that
 * stream's window is not replenished, the peer runs out of credit after at
 * most one stream window: the buffer never exceeds the stream's current
 * receive window.  h2ws_h2_resume_ws() delivers the buffer and reopens the
 * window.  Other streams keep flowing.
 *
 * Window policy (settings below): connection window `connection_window`
 * (default 16 MiB); each stream starts at `stream_window` (default 256 KiB,
 * sent as SETTINGS_INITIAL_WINDOW_SIZE) and is auto-tuned: when DATA
 * arrives on a stream whose reader is keeping up (not paused, nothing
 * buffered) and the credit the peer has left (what we granted on the wire
 * minus what arrived) is below a quarter of the window, the peer is limited
 * by the window rather than by our reader, so the window is doubled, up to
 * `stream_window_max` (default 4 MiB), as long as the session-wide
 * `stream_window_budget` (default 32 MiB) for that growth lasts.  Worst-case
 * buffered receive memory per session is therefore
 *   max_concurrent_streams * stream_window + stream_window_budget
 * (128 * 256 KiB + 32 MiB = 64 MiB with the defaults, plus per-stream
 * header caps), and a stream that pauses early holds at most its current
 * (small) window.
 * Output memory is bounded by `max_output` plus each engine's own cap.
 *
 * Bytes discarded when a stream closes (RST_STREAM, shutdown) need no
 * return: their connection credit was returned on arrival.
 * ------------------------------------------------------------------------
 */
#ifndef H2WS_H2_H
#define H2WS_H2_H

#include <h2ws/h2ws.h>
#include <h2ws/ws.h>
#include <h2ws/handshake.h>
#include <h2ws/pmd.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct h2ws_h2_session h2ws_h2_session;

/*
 * Error codes specific to this binding: H2WS_ERR_H2_NO_EXTENDED_CONNECT,
 * H2WS_ERR_H2_STREAM_RESET, H2WS_ERR_H2_BAD_RESPONSE,
 * H2WS_ERR_H2_TOO_MANY_STREAMS, H2WS_ERR_H2_GOAWAY (-250 .. -254, in the
 * peer range), defined with every other code in h2ws/h2ws.h; what each
 * means is said there.  h2ws_strerror() describes them.
 */

/* The same as h2ws_strerror() (kept for callers of earlier versions). */
H2WS_EXTERN const char *h2ws_h2_strerror(int error);

/* Header fields are h2ws_header (h2ws/handshake.h).  Names are lower-case
 * on HTTP/2.  Fields passed to callbacks are NUL-terminated, but use the
 * lengths. */

/* A request as received (plain HTTP/2 request or extended CONNECT).  All
 * pointers are valid until the callback returns; strings are
 * NUL-terminated; absent pseudo-headers are NULL.  `headers` holds the
 * regular (non-pseudo) fields in arrival order. */
typedef struct h2ws_h2_request {
  const char *method;    /* :method */
  const char *scheme;    /* :scheme */
  const char *authority; /* :authority (or host) */
  const char *path;      /* :path */
  const char *protocol;  /* :protocol (extended CONNECT only) */
  const h2ws_header *headers;
  size_t nheaders;
} h2ws_h2_request;

/* Session settings, filled with defaults by h2ws_h2_settings_default(). */
typedef struct h2ws_h2_settings {
  /* Server: nonzero to advertise SETTINGS_ENABLE_CONNECT_PROTOCOL = 1
   * (RFC 8441 §3).  Set it ONLY if the application has a WebSocket route:
   * browsers that see it send WebSockets as extended CONNECT and rarely
   * fall back (pitfall 1).  When 0, any :protocol is a malformed request
   * (RFC 8441 §4).  Default 0.  Ignored by clients (a client never needs
   * to send it, and a server ignores it: pitfall 2). */
  int enable_connect_protocol;
  /* Server: SETTINGS_MAX_CONCURRENT_STREAMS we advertise, and exactly
   * what is accepted: a stream that would make more than this many of
   * the client's streams open (as HTTP/2 counts them: until both sides
   * ended or one reset it) gets RST_STREAM REFUSED_STREAM and the
   * connection and its other streams go on (RFC 9113 §5.1.2, pitfall 18:
   * never queued).  Default 128. */
  uint32_t max_concurrent_streams;
  /* Live WebSockets per session: open or awaiting the application's
   * answer, and not yet ended by us (a WebSocket whose closing handshake
   * is done on our side and whose END_STREAM went out no longer counts,
   * even while its stream waits for the peer's END_STREAM; the stream
   * itself still counts in max_concurrent_streams, as it does for the
   * peer).  Server: an extended CONNECT beyond it gets RST_STREAM
   * REFUSED_STREAM.  Client: h2ws_h2_client_open_ws() fails with
   * H2WS_ERR_H2_TOO_MANY_STREAMS.  0 (default): a server allows
   * max_concurrent_streams (every stream the advertised limit lets the
   * client open may be a WebSocket), a client 100. */
  uint32_t max_websockets;
  /* Connection receive window (bytes).  Default 16 MiB. */
  uint32_t connection_window;
  /* Initial stream receive window (SETTINGS_INITIAL_WINDOW_SIZE).
   * Default 256 KiB. */
  uint32_t stream_window;
  /* Auto-tuning ceiling for a stream receive window; equal to
   * stream_window disables auto-tuning.  Default 4 MiB. */
  uint32_t stream_window_max;
  /* Session-wide cap on what auto-tuning may add to stream windows in
   * total (bytes above stream_window, summed over open streams); released
   * when a stream closes.  Default 32 MiB. */
  size_t stream_window_budget;
  /* SETTINGS_MAX_FRAME_SIZE we advertise (16384..16777215).  Default
   * 16384. */
  uint32_t max_frame_size;
  /* Cap on the batched output buffer returned by h2ws_h2_session_send()
   * (>= 32 KiB).  Default 256 KiB. */
  size_t max_output;
  /* Cap on one decoded header block (request, response or trailers), as
   * RFC 9113 §6.5.2 counts it: name + value + 32 per field; advertised as
   * SETTINGS_MAX_HEADER_LIST_SIZE.  The moment a block passes it (or
   * max_header_fields) the stream is reset with RST_STREAM
   * ENHANCE_YOUR_CALM and the rest of the block is decoded (HPACK state
   * must stay in step) without being validated, stored or handed to the
   * application, so an HPACK bomb (one large dynamic-table entry
   * referenced thousands of times) costs almost nothing; siblings are
   * unharmed.  Client: the WebSocket request fails with
   * H2WS_ERR_H2_BAD_RESPONSE.  Default 64 KiB. */
  size_t max_header_bytes;
  /* Largest response body h2ws_h2_respond() copies.  Default 16 MiB. */
  size_t max_body_copy;
  /* Cap on the number of fields in one header block; as
   * max_header_bytes.  Default 256. */
  uint32_t max_header_fields;
  /* CONTINUATION frames allowed after one HEADERS frame (nghttp2's own
   * limit, set through nghttp2_option_set_max_continuations).  Above:
   * GOAWAY ENHANCE_YOUR_CALM and the connection ends (CONTINUATION
   * flood).  Default 8 (with 16 KiB frames: 144 KiB of header block). */
  uint32_t max_continuations;
  /*
   * Flood limits, per connection, each answered with GOAWAY
   * ENHANCE_YOUR_CALM (RFC 9113 §10.5) and the end of the connection.
   * Each is a token bucket holding N events and refilled at N per second
   * (of the `now` the caller passes); 0 disables it.  Honest peers stay
   * far below the defaults.
   */
  /* SETTINGS frames (not ACKs).  Default 100. */
  uint32_t max_settings_rate;
  /* PING frames (not ACKs).  Default 100.  (nghttp2 also ends a
   * connection that leaves more than 1000 ACKs unread: GOAWAY
   * ENHANCE_YOUR_CALM too.) */
  uint32_t max_ping_rate;
  /* WINDOW_UPDATE frames; each DATA frame we send earns the peer 2 more
   * (its stream's and the connection's credit).  Default 1000. */
  uint32_t max_window_update_rate;
  /* PRIORITY frames (we send SETTINGS_NO_RFC7540_PRIORITIES = 1, RFC
   * 9218: they carry nothing we use).  Default 1000. */
  uint32_t max_priority_rate;
  /* DATA frames with no payload and no END_STREAM.  Default 100. */
  uint32_t max_empty_data_rate;
  /* RST_STREAM frames received (rapid reset, CVE-2023-44487).  Default
   * 500.  nghttp2's own reset limiter is set to twice this as a
   * backstop. */
  uint32_t max_rst_rate;
  /* Streams we reset or refuse because of the peer: malformed requests,
   * streams over max_concurrent_streams / max_websockets (not those
   * refused during a shutdown), header blocks over the caps, HEADERS on a
   * WebSocket,
   * stream errors nghttp2 found (e.g. a WINDOW_UPDATE that overflows a
   * stream's window: "MadeYouReset").  Default 200. */
  uint32_t max_reset_rate;
  /* ABI (docs/abi.md): room for members added within this SONAME;
   * leave zero. */
  uint64_t reserved[4];
} h2ws_h2_settings;

H2WS_EXTERN void h2ws_h2_settings_default(h2ws_h2_settings *settings);

/* Body source for h2ws_h2_respond_source(): copy up to buflen bytes into
 * buf, store the count in *pnwritten, set *peof = 1 with the last bytes,
 * return 0; or return H2WS_ERR_WOULDBLOCK to defer (then call
 * h2ws_h2_resume_body()); any other negative value resets the stream. */
typedef struct h2ws_h2_body_source {
  int (*read)(h2ws_h2_session *session, int32_t stream_id, uint8_t *buf,
              size_t buflen, size_t *pnwritten, int *peof,
              void *source_data);
  void *source_data;
} h2ws_h2_body_source;

/*
 * Session callbacks.  Any may be NULL.  `user_data` is the session's.
 * Pointers passed are valid until the callback returns.  Unless stated
 * otherwise return 0, or a negative value to make the current
 * h2ws_h2_session_recv()/send() fail with H2WS_ERR_CALLBACK_FAILURE.
 */
typedef struct h2ws_h2_callbacks {
  /* --- server ----------------------------------------------------------
   * A well-formed extended CONNECT for :protocol websocket with
   * sec-websocket-version 13 arrived (every malformed or unsupported one
   * has already been answered, see docs/h2-errors.md).  The application
   * routes on req (path, authority, origin, subprotocols, extensions) and
   * decides, now or later: h2ws_h2_accept_ws() or h2ws_h2_refuse() (404
   * no route, 403 origin/subprotocol refused, ...).  `hreq` is the same
   * request as raw HTTP/2 fields.  NULL callback: every WebSocket request
   * is refused with 404. */
  int (*on_ws_request)(h2ws_h2_session *session, int32_t stream_id,
                       const h2ws_ws_request *req,
                       const h2ws_h2_request *hreq, void *user_data);
  /* An ordinary HTTP/2 request's headers arrived (also a plain CONNECT,
   * which the application should refuse, e.g. 501: pitfall 10).  Answer
   * with h2ws_h2_respond() / h2ws_h2_respond_source() / h2ws_h2_refuse(),
   * now or later.  NULL callback: answered 404. */
  int (*on_request)(h2ws_h2_session *session, int32_t stream_id,
                    const h2ws_h2_request *req, void *user_data);
  /* Request body bytes of an ordinary request (fin = 1 with the last call,
   * possibly with datalen 0).  NULL: bodies are discarded.  Flow-control
   * credit is returned immediately. */
  int (*on_request_data)(h2ws_h2_session *session, int32_t stream_id,
                         const uint8_t *data, size_t datalen, int fin,
                         void *user_data);

  /* --- client ----------------------------------------------------------
   * The WebSocket on `stream_id` is open: the server answered 2xx and its
   * subprotocol and extensions check out.  `ws` is the engine (owned by
   * the session until on_ws_closed); subprotocol is NULL if none (valid
   * until the callback returns: copy it).
   * `request_user_data` is h2ws_h2_ws_options.user_data. */
  int (*on_ws_open)(h2ws_h2_session *session, int32_t stream_id, h2ws_ws *ws,
                    const char *subprotocol, void *request_user_data,
                    void *user_data);
  /* A WebSocket request failed before opening.  status is the HTTP status
   * (e.g. 400, 403, 404, 426) when the server answered, else 0; error is
   * H2WS_ERR_HANDSHAKE (non-2xx), H2WS_ERR_H2_NO_EXTENDED_CONNECT,
   * H2WS_ERR_H2_STREAM_RESET, H2WS_ERR_H2_BAD_RESPONSE, H2WS_ERR_H2_GOAWAY
   * or H2WS_ERR_NOMEM.  stream_id is 0 if the request was never sent. */
  int (*on_ws_refused)(h2ws_h2_session *session, int32_t stream_id,
                       int status, int error, void *request_user_data,
                       void *user_data);

  /* --- both ------------------------------------------------------------
   * A WebSocket stream ended (after the engine's on_close fired).  The
   * engine is still valid for h2ws_ws_get_stats()/get_user_data() during
   * this call and freed after it returns.  h2_error_code is the
   * RST_STREAM code (0 for an orderly end).  Return value ignored. */
  void (*on_ws_closed)(h2ws_h2_session *session, int32_t stream_id,
                       h2ws_ws *ws, uint32_t h2_error_code, void *user_data);
  /* Any stream (WebSocket or not) closed; for logs and metrics.  Return
   * value ignored. */
  void (*on_stream_close)(h2ws_h2_session *session, int32_t stream_id,
                          uint32_t h2_error_code, void *user_data);
  /* Client: a response to h2ws_h2_client_request() (status, headers),
   * then its body through on_response_data (fin = 1 at the end). */
  int (*on_response)(h2ws_h2_session *session, int32_t stream_id,
                     int status, const h2ws_header *headers,
                     size_t nheaders, void *user_data);
  int (*on_response_data)(h2ws_h2_session *session, int32_t stream_id,
                          const uint8_t *data, size_t datalen, int fin,
                          void *user_data);
  /* The peer sent GOAWAY: streams above last_stream_id were not processed
   * (they are reset / refused); streams at or below keep running.  Open
   * new WebSockets on a new connection.  Return value ignored. */
  void (*on_goaway)(h2ws_h2_session *session, int32_t last_stream_id,
                    uint32_t h2_error_code, void *user_data);
  /* An HTTP/2 PING ACK arrived for h2ws_h2_session_ping(). */
  void (*on_ping_ack)(h2ws_h2_session *session, const uint8_t opaque[8],
                      void *user_data);
  /* Optional, for diagnostics (the h2ws client's -v): one readable line
   * per HTTP/2 frame received (sent = 0) or written into the output
   * (sent = 1), e.g. "SETTINGS ENABLE_CONNECT_PROTOCOL=1",
   * "HEADERS stream=1 END_HEADERS | :method: CONNECT | :protocol:
   * websocket ...", "DATA stream=1 length=7", "WINDOW_UPDATE stream=0
   * increment=33488897", "RST_STREAM stream=1 error=CANCEL",
   * "GOAWAY last_stream=1 error=NO_ERROR", "PING ACK opaque=...".  `line`
   * is NUL-terminated, valid until the callback returns.  Must not call
   * session functions.  NULL (default) costs nothing. */
  void (*on_frame_trace)(h2ws_h2_session *session, int sent,
                         const char *line, void *user_data);
  /* Optional, client: the final answer to a WebSocket request arrived
   * (any status), before on_ws_open / on_ws_refused: its regular fields
   * (e.g. alt-svc, RFC 7838), valid until the callback returns.  Return
   * value ignored; must not call session functions. */
  void (*on_ws_response)(h2ws_h2_session *session, int32_t stream_id,
                         int status, const h2ws_header *headers,
                         size_t nheaders, void *request_user_data,
                         void *user_data);
  /* ABI (docs/abi.md): room for callbacks added within this SONAME;
   * leave NULL. */
  void (*reserved[3])(void);
} h2ws_h2_callbacks;

/*
 * Creates a session.  role H2WS_ROLE_SERVER or H2WS_ROLE_CLIENT;
 * `callbacks` and `settings` are copied (settings NULL = defaults); `mem`
 * may be NULL (libc).  The connection preface (client) and our SETTINGS
 * are queued at once: call h2ws_h2_session_send().  A server accepts
 * :protocol as soon as its SETTINGS is queued, not when acknowledged
 * (pitfall 3).
 * Returns 0, H2WS_ERR_INVALID_ARGUMENT, H2WS_ERR_NOMEM.
 */
H2WS_EXTERN int h2ws_h2_session_new(h2ws_h2_session **psession, h2ws_role role,
                                    const h2ws_h2_callbacks *callbacks,
                                    const h2ws_h2_settings *settings, const h2ws_mem *mem,
                                    void *user_data);

/* Frees the session, every engine (on_ws_closed is NOT fired) and all
 * buffers.  NULL is allowed.  Not from a callback. */
H2WS_EXTERN void h2ws_h2_session_del(h2ws_h2_session *session);

/*
 * Feeds received bytes.  *pnread = bytes consumed (all of them, also when
 * an error is returned: they are discarded).  Fires callbacks, including
 * engine callbacks.  Returns 0;
 *   H2WS_ERR_PROTO          the peer violated HTTP/2 or passed one of the
 *                           limits above (a connection error): the
 *                           connection is over;
 *   H2WS_ERR_CALLBACK_FAILURE  an application callback failed: the
 *                           connection is over;
 *   H2WS_ERR_NOMEM          out of memory: the connection is over;
 *   H2WS_ERR_INVALID_STATE  called from a callback (nothing happened).
 * When the connection is over (every error but INVALID_STATE, and also
 * when nghttp2 itself ended the connection, returning 0): the session
 * has queued a GOAWAY with the matching code (PROTOCOL_ERROR,
 * ENHANCE_YOUR_CALM, FRAME_SIZE_ERROR, ... for the peer's faults,
 * INTERNAL_ERROR for ours) wherever one can still be written, reads
 * nothing more (want_read() is 0 at once, later recv calls discard their
 * input and return the same error), and stops every stream.  The caller
 * must stop reading, call send() and write what it returns until
 * want_write() is 0 (only the frames already queued and the GOAWAY: a
 * bounded amount), then close the transport and _del the session.
 * h2ws_h2_session_get_stats() tells the GOAWAY's code and reason.
 */
H2WS_EXTERN int h2ws_h2_session_recv(h2ws_h2_session *session, const uint8_t *data,
                                     size_t datalen, size_t *pnread, uint64_t now);

/*
 * Output, pulled.  Serializes as many pending frames as fit into the
 * binding-owned buffer (at most settings.max_output bytes) and returns
 * its readable part in *pdata / *pdatalen (0 when nothing to send).  The
 * bytes stay valid and queued until the next call on this session other
 * than the query functions.  After writing n of them call
 * h2ws_h2_session_send_consumed(session, n); unwritten bytes are returned
 * again first by the next call.
 * Returns 0, H2WS_ERR_INVALID_STATE (from a callback),
 * H2WS_ERR_CALLBACK_FAILURE, H2WS_ERR_NOMEM (fatal).
 */
H2WS_EXTERN int h2ws_h2_session_send(h2ws_h2_session *session, const uint8_t **pdata,
                                     size_t *pdatalen, uint64_t now);

/* One piece of output returned by h2ws_h2_session_sendv(). */
typedef struct h2ws_h2_iov {
  const uint8_t *base;
  size_t len;
} h2ws_h2_iov;

/*
 * Output, pulled as a vector (for writev(), or a TLS write per piece):
 * the same frames as h2ws_h2_session_send(), but the WebSocket payload of
 * DATA frames is not copied: those pieces point into the engines' output
 * queues (lent), the others (frame headers, SETTINGS, HEADERS, ...) into
 * the binding's buffer.  A DATA payload under 1 KiB is copied behind its
 * header when nothing of its stream is lent yet (cheaper than a piece).  On entry *piovcnt is the capacity of iov (>= 2;
 * at most 128 are used), on return the number of pieces filled (0 when
 * nothing to send); *ptotal (may be NULL) their total length, at most
 * settings.max_output.
 *
 * Lifetime: the lent pieces are valid only until the next call on this
 * session or on any of its engines.  Write them, then call
 * h2ws_h2_session_send_consumed(session, n) at once (n = bytes written,
 * 0 included) and nothing else in between: no h2ws_ws_submit_*() on an
 * engine of the session (a submit may move an engine's queue).
 * send_consumed() removes the n bytes and copies what the vector held
 * beyond them into the binding's buffer (one copy, only of what was not
 * written; no allocation): the next call returns it first.  A session
 * call that comes first instead (send, sendv, recv, handle_expiry,
 * resume_ws) does the same before anything else, and a stream that
 * closes (END_STREAM both ways, RST_STREAM) has its lent bytes copied
 * before its engine goes, so no frame that was framed is lost or cut.
 * Returns 0, H2WS_ERR_INVALID_ARGUMENT (capacity < 2), and the errors of
 * h2ws_h2_session_send(); H2WS_ERR_NOMEM (its 2 KiB piece table, the
 * first time) leaves the session usable with h2ws_h2_session_send().
 */
H2WS_EXTERN int h2ws_h2_session_sendv(h2ws_h2_session *session, h2ws_h2_iov *iov,
                                      size_t *piovcnt, size_t *ptotal, uint64_t now);

/* Marks n bytes returned by h2ws_h2_session_send() or
 * h2ws_h2_session_sendv() as written (see there). */
H2WS_EXTERN void h2ws_h2_session_send_consumed(h2ws_h2_session *session, size_t n);

/* Nonzero while the session expects input. */
H2WS_EXTERN int h2ws_h2_session_want_read(const h2ws_h2_session *session);

/* Nonzero if h2ws_h2_session_send() has (or may produce) bytes: buffered
 * output, nghttp2 frames, or an engine with output. */
H2WS_EXTERN int h2ws_h2_session_want_write(const h2ws_h2_session *session);

/* Earliest deadline of the session (shutdown drain) and its engines
 * (closing handshakes), or H2WS_NO_EXPIRY. */
H2WS_EXTERN uint64_t h2ws_h2_session_get_expiry(const h2ws_h2_session *session);

/* Handles every deadline passed at `now`.  Then call send().
 * Returns 0, H2WS_ERR_INVALID_STATE (from a callback), H2WS_ERR_NOMEM. */
H2WS_EXTERN int h2ws_h2_session_handle_expiry(h2ws_h2_session *session, uint64_t now);

/*
 * Graceful shutdown (SPEC H12, pitfall 16): stops accepting new streams
 * (server: new streams get RST_STREAM REFUSED_STREAM; client: no new
 * WebSockets, queued ones fail with H2WS_ERR_H2_GOAWAY), queues Close 1001
 * on every open WebSocket, and once every stream has ended or `drain_ms`
 * has passed (from `now`) resets what is left and sends GOAWAY (NO_ERROR,
 * the last stream processed).  No GOAWAY goes out before that, not even a
 * shutdown notice: Firefox resets its streams on GOAWAY, which would cut
 * the closing handshakes short.  Then want_read/want_write fall to 0 and
 * the runtime closes the connection.
 * Returns 0, H2WS_ERR_NOMEM.
 */
H2WS_EXTERN int h2ws_h2_session_shutdown(h2ws_h2_session *session, uint64_t now,
                                         uint64_t drain_ms);

/* Sends an HTTP/2 PING (opaque 8 bytes, NULL = zeros); on_ping_ack fires
 * on the ACK.  Independent of WebSocket pings (SPEC H13).
 * Returns 0, H2WS_ERR_NOMEM. */
H2WS_EXTERN int h2ws_h2_session_ping(h2ws_h2_session *session, const uint8_t *opaque8);

/* Counters for logs and /metrics. */
typedef struct h2ws_h2_stats {
  /* RST_STREAM REFUSED_STREAM we sent: the stream limit
   * (max_concurrent_streams), the WebSocket limit (max_websockets), a
   * graceful shutdown. */
  uint64_t streams_refused;
  /* Other RST_STREAM we sent with an error code (malformed requests,
   * header caps, engine failures, lingering streams, stream errors). */
  uint64_t streams_reset;
  /* RST_STREAM NO_ERROR we sent after our END_STREAM (RFC 9113 §8.1: the
   * peer need not end its side). */
  uint64_t streams_ended_early;
  /* RST_STREAM frames received. */
  uint64_t rst_received;
  /* Nonzero once we sent GOAWAY; its error code (0 NO_ERROR) and, for a
   * connection error, a short reason ("SETTINGS flood", "bad client
   * preface", ...; static string, NULL if none). */
  int goaway_sent;
  uint32_t goaway_error_code;
  const char *goaway_reason;
  /* ABI (docs/abi.md): room for members added within this SONAME;
   * leave zero. */
  uint64_t reserved[4];
} h2ws_h2_stats;

H2WS_EXTERN void h2ws_h2_session_get_stats(const h2ws_h2_session *session,
                                           h2ws_h2_stats *pstats);

/* Nonzero once the server's SETTINGS arrived (client) / the client's
 * (server).  Client: *penabled gets whether the server advertised
 * ENABLE_CONNECT_PROTOCOL = 1 (valid when the return value is nonzero). */
H2WS_EXTERN int h2ws_h2_session_peer_settings(const h2ws_h2_session *session,
                                              int *penabled);

/* The session's user_data. */
H2WS_EXTERN void *h2ws_h2_session_get_user_data(const h2ws_h2_session *session);

/* ----------------------------------------------------------------------
 * Server side
 */

/* How to accept a WebSocket (h2ws_h2_accept_ws()). */
typedef struct h2ws_h2_accept_options {
  /* Chosen subprotocol (one the client offered), or NULL for none.  Sent
   * as sec-websocket-protocol. */
  const char *subprotocol;
  /* permessage-deflate, either way:
   *  - pmd_config != NULL: the binding negotiates it against the request's
   *    sec-websocket-extensions (h2ws_pmd_server_negotiate()); `pmd` is
   *    ignored.  An unparsable offer continues without the extension.
   *  - pmd_config == NULL: `pmd` is what the application agreed (e.g. by
   *    h2ws_pmd_server_negotiate() on req->extensions); .enabled = 0
   *    declines.
   * When agreed, the binding sends sec-websocket-extensions describing
   * exactly the parameters (h2ws_pmd_response_build()) and configures the
   * engine with them. */
  const h2ws_pmd_config *pmd_config;
  h2ws_pmd_params pmd;
  /* Engine callbacks (copied) and settings (NULL = defaults; its .pmd is
   * replaced by `pmd` above). */
  const h2ws_ws_callbacks *callbacks;
  const h2ws_ws_settings *settings;
  /* Extra response header fields (lower-case names), or NULL / 0. */
  const h2ws_header *headers;
  size_t nheaders;
  /* The engine's user_data. */
  void *user_data;
  /* ABI (docs/abi.md): room for members added within this SONAME;
   * leave zero. */
  uint64_t reserved[4];
} h2ws_h2_accept_options;

/* Zeroes options (no subprotocol, pmd disabled, default settings). */
H2WS_EXTERN void h2ws_h2_accept_options_default(h2ws_h2_accept_options *options);

/*
 * Accepts the WebSocket request on stream_id (from on_ws_request): queues
 * :status 200 without END_STREAM, no sec-websocket-accept, no
 * content-length (RFC 8441 §5), creates the engine (server role) and
 * stores it in *pws (may be NULL).  The engine belongs to the session
 * until on_ws_closed.
 * Returns 0, H2WS_ERR_INVALID_ARGUMENT (no such pending WebSocket request,
 * subprotocol not offered by the client, bad engine settings or pmd
 * parameters, a forbidden extra header such as content-length),
 * H2WS_ERR_NOMEM, H2WS_ERR_INTERNAL.
 * May fire engine callbacks at once when DATA arrived before the decision
 * (it is delivered here); from outside a callback that is the only case
 * where engine callbacks run outside recv/send/resume/handle_expiry.
 */
H2WS_EXTERN int h2ws_h2_accept_ws(h2ws_h2_session *session, int32_t stream_id,
                                  const h2ws_h2_accept_options *options, h2ws_ws **pws);

/*
 * Refuses a request (WebSocket or plain) with `status` (>= 300, e.g. 404
 * no route, 403 origin / subprotocol refused) and extra headers, no body,
 * END_STREAM.  Returns 0, H2WS_ERR_INVALID_ARGUMENT (not a pending
 * request or bad status), H2WS_ERR_NOMEM.
 */
H2WS_EXTERN int h2ws_h2_refuse(h2ws_h2_session *session, int32_t stream_id, int status,
                               const h2ws_header *headers, size_t nheaders);

/*
 * Answers an ordinary request: status, headers, and a body copied now
 * (body may be NULL / 0: END_STREAM on HEADERS; at most
 * settings.max_body_copy bytes).  Returns 0, H2WS_ERR_INVALID_ARGUMENT,
 * H2WS_ERR_TOO_LARGE, H2WS_ERR_NOMEM.
 */
H2WS_EXTERN int h2ws_h2_respond(h2ws_h2_session *session, int32_t stream_id, int status,
                                const h2ws_header *headers, size_t nheaders,
                                const uint8_t *body, size_t bodylen);

/* As h2ws_h2_respond() with a streamed body (source copied).
 * Returns 0, H2WS_ERR_INVALID_ARGUMENT, H2WS_ERR_NOMEM. */
H2WS_EXTERN int h2ws_h2_respond_source(h2ws_h2_session *session, int32_t stream_id,
                                       int status, const h2ws_header *headers,
                                       size_t nheaders,
                                       const h2ws_h2_body_source *source);

/* Resumes a body source that returned H2WS_ERR_WOULDBLOCK.
 * Returns 0, H2WS_ERR_INVALID_ARGUMENT. */
H2WS_EXTERN int h2ws_h2_resume_body(h2ws_h2_session *session, int32_t stream_id);

/* ----------------------------------------------------------------------
 * Client side
 */

/* What h2ws_h2_client_open_ws() sends. */
typedef struct h2ws_h2_ws_options {
  const char *scheme;    /* "https" (wss) or "http" (ws); never wss/ws */
  const char *authority; /* host[:port] */
  const char *path;      /* path + query, e.g. "/chat?room=1" */
  const char *const *subprotocols; /* offered, in preference order */
  size_t nsubprotocols;
  const char *origin;    /* NULL: no origin header */
  /* Extra request header fields (lower-case names; connection-specific
   * ones are rejected), or NULL / 0. */
  const h2ws_header *headers;
  size_t nheaders;
  /* permessage-deflate offer (h2ws_pmd_offer_build()); .enabled = 0: no
   * offer.  The answer is checked with h2ws_pmd_client_accept(): a server
   * answering with anything not offered fails the request
   * (H2WS_ERR_H2_BAD_RESPONSE).  h2ws_h2_ws_options_default() fills it
   * with h2ws_pmd_config_default() and enabled = 0. */
  h2ws_pmd_config pmd_offer;
  /* Engine callbacks (copied; .random required) and settings (NULL =
   * defaults; .pmd replaced by what the server accepted). */
  const h2ws_ws_callbacks *callbacks;
  const h2ws_ws_settings *settings;
  /* Passed as request_user_data to on_ws_open / on_ws_refused and used as
   * the engine's user_data. */
  void *user_data;
  /* ABI (docs/abi.md): room for members added within this SONAME;
   * leave zero. */
  uint64_t reserved[4];
} h2ws_h2_ws_options;

/* Zeroes options (scheme "https", path "/", no pmd offer). */
H2WS_EXTERN void h2ws_h2_ws_options_default(h2ws_h2_ws_options *options);

/*
 * Opens a WebSocket over this client session (RFC 8441 §4: :method
 * CONNECT, :protocol websocket, :scheme, :path, :authority,
 * sec-websocket-version 13; no sec-websocket-key).  Many WebSockets may
 * share a session, one per stream.
 *
 * Gated on the server's SETTINGS (RFC 8441 §3, pitfall 4): before they
 * arrive the request is queued and *pstream_id is set to 0; when they
 * arrive with ENABLE_CONNECT_PROTOCOL = 1 it is sent (its stream id is
 * reported by on_ws_open / on_ws_refused), otherwise on_ws_refused fires
 * with H2WS_ERR_H2_NO_EXTENDED_CONNECT.  If the settings are already
 * known the request is submitted at once and *pstream_id gets its id.
 * Options are copied.
 * Never queued behind the server's SETTINGS_MAX_CONCURRENT_STREAMS
 * (pitfall 18: a WebSocket holds its slot for its lifetime): when the
 * server's limit is reached the call fails with
 * H2WS_ERR_H2_TOO_MANY_STREAMS (on_ws_refused with it for a queued
 * request) so the caller opens another connection.
 * Returns 0; H2WS_ERR_INVALID_ARGUMENT (missing authority/path/callbacks,
 * bad scheme or header); H2WS_ERR_H2_NO_EXTENDED_CONNECT (the server is
 * known not to support RFC 8441); H2WS_ERR_H2_TOO_MANY_STREAMS;
 * H2WS_ERR_H2_GOAWAY (GOAWAY received or shutdown); H2WS_ERR_NOMEM.
 */
H2WS_EXTERN int h2ws_h2_client_open_ws(h2ws_h2_session *session,
                                       const h2ws_h2_ws_options *options,
                                       int32_t *pstream_id);

/*
 * Sends an ordinary request (e.g. GET) on a client session; the answer
 * comes through on_response / on_response_data.  body may be NULL / 0
 * (END_STREAM on HEADERS).  Returns 0, H2WS_ERR_INVALID_ARGUMENT,
 * H2WS_ERR_H2_GOAWAY, H2WS_ERR_NOMEM; *pstream_id gets the stream id.
 */
H2WS_EXTERN int h2ws_h2_client_request(h2ws_h2_session *session, const char *method,
                                       const char *scheme, const char *authority,
                                       const char *path, const h2ws_header *headers,
                                       size_t nheaders, const uint8_t *body,
                                       size_t bodylen, int32_t *pstream_id);

/* ----------------------------------------------------------------------
 * Both sides: WebSocket streams
 */

/* The engine of an open WebSocket stream, or NULL. */
H2WS_EXTERN h2ws_ws *h2ws_h2_get_ws(const h2ws_h2_session *session, int32_t stream_id);

/*
 * Resumes delivery on a stream whose engine callback returned
 * H2WS_ERR_PAUSE: feeds the buffered bytes (callbacks fire, and may pause
 * again) and returns their stream credit to the peer.  Not from a
 * callback.
 * Returns 0, H2WS_ERR_PAUSE (paused again), H2WS_ERR_INVALID_ARGUMENT (no
 * such WebSocket), H2WS_ERR_INVALID_STATE (from a callback), or an engine
 * error (the engine has already queued its Close), H2WS_ERR_NOMEM.
 */
H2WS_EXTERN int h2ws_h2_resume_ws(h2ws_h2_session *session, int32_t stream_id,
                                  uint64_t now);

/* Nonzero if delivery on the stream is paused. */
H2WS_EXTERN int h2ws_h2_ws_is_paused(const h2ws_h2_session *session, int32_t stream_id);

/* Bytes received and buffered (not yet fed to the engine) on a stream. */
H2WS_EXTERN size_t h2ws_h2_ws_buffered(const h2ws_h2_session *session, int32_t stream_id);

/*
 * Resets a stream (RST_STREAM with the HTTP/2 error code, e.g. 0x8
 * CANCEL).  A WebSocket on it ends with on_close(1006).  Prefer
 * h2ws_ws_submit_close(): a reset can make the peer drop a Close frame
 * (pitfall 14).  Returns 0, H2WS_ERR_INVALID_ARGUMENT, H2WS_ERR_NOMEM.
 */
H2WS_EXTERN int h2ws_h2_reset(h2ws_h2_session *session, int32_t stream_id,
                              uint32_t h2_error_code);

/* Number of open WebSocket streams. */
H2WS_EXTERN size_t h2ws_h2_session_num_ws(const h2ws_h2_session *session);

/* Client: how many WebSockets this session can carry at once (a pool
 * opens another connection beyond it): settings.max_websockets in force
 * until the server's SETTINGS arrived, then the smaller of it and the
 * server's SETTINGS_MAX_CONCURRENT_STREAMS (0: the server allows none).
 * Server: settings.max_websockets in force.  0 for NULL. */
H2WS_EXTERN size_t h2ws_h2_session_ws_limit(const h2ws_h2_session *session);

#ifdef __cplusplus
}
#endif
#endif /* H2WS_H2_H */
