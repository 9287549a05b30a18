/*
 * h2ws/ws.h - the WebSocket engine (RFC 6455 + RFC 7692), with no I/O.
 *
 * One h2ws_ws object is one WebSocket after its opening handshake.  It does
 * not know what carries it: the same object runs over a TCP byte stream
 * (HTTP/1.1 Upgrade) or over the DATA of one HTTP/2 (RFC 8441) or HTTP/3
 * (RFC 9220) stream.  The transport:
 *
 *   - pushes received bytes in with h2ws_ws_recv();
 *   - pulls bytes to send with h2ws_ws_send() and reports how many it wrote
 *     with h2ws_ws_send_consumed();
 *   - tells the engine when the transport ended: h2ws_ws_recv_eof()
 *     (orderly: FIN / END_STREAM) or h2ws_ws_abort() (reset);
 *   - drives the closing-handshake timer with h2ws_ws_get_expiry() and
 *     h2ws_ws_handle_expiry();
 *   - half-closes its side once h2ws_ws_want_write() returns 0 and
 *     h2ws_ws_is_done() returns nonzero.
 *
 * The engine keeps no global state, reads no clock (every timestamp is a
 * parameter, in milliseconds) and starts no thread.  An object is not
 * thread-safe; distinct objects are independent.
 *
 * Reentrancy: from inside a callback the application may call the
 * h2ws_ws_submit_* functions and the query functions on the same object,
 * but not h2ws_ws_recv(), h2ws_ws_send(), h2ws_ws_del() (those return
 * H2WS_ERR_INVALID_STATE, except _del which must simply not be called).
 */
#ifndef H2WS_WS_H
#define H2WS_WS_H

#include <h2ws/h2ws.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct h2ws_ws h2ws_ws;

/* Roles: the client masks what it sends, the server requires masking. */
typedef enum h2ws_role { H2WS_ROLE_CLIENT = 0, H2WS_ROLE_SERVER = 1 } h2ws_role;

/* Opcodes (RFC 6455 §5.2). */
typedef enum h2ws_opcode {
  H2WS_OP_CONT = 0x0,
  H2WS_OP_TEXT = 0x1,
  H2WS_OP_BINARY = 0x2,
  H2WS_OP_CLOSE = 0x8,
  H2WS_OP_PING = 0x9,
  H2WS_OP_PONG = 0xA
} h2ws_opcode;

/* Close codes the library itself uses (RFC 6455 §7.4.1). */
enum {
  H2WS_CLOSE_NORMAL = 1000,
  H2WS_CLOSE_GOING_AWAY = 1001,
  H2WS_CLOSE_PROTOCOL_ERROR = 1002,
  H2WS_CLOSE_UNSUPPORTED_DATA = 1003,
  H2WS_CLOSE_NO_STATUS = 1005,    /* never on the wire: Close had no code */
  H2WS_CLOSE_ABNORMAL = 1006,     /* never on the wire: no Close at all */
  H2WS_CLOSE_INVALID_PAYLOAD = 1007,
  H2WS_CLOSE_POLICY = 1008,
  H2WS_CLOSE_TOO_BIG = 1009,
  H2WS_CLOSE_MANDATORY_EXT = 1010,
  H2WS_CLOSE_INTERNAL_ERROR = 1011
};

/* Returns nonzero if `code` may appear in a Close frame on the wire
 * (1000-1003, 1007-1014, 3000-4999; RFC 6455 §7.4). */
H2WS_EXTERN int h2ws_close_code_is_valid(uint16_t code);

/*
 * Negotiated permessage-deflate parameters (RFC 7692 §7.1), as agreed by
 * the opening handshake (see h2ws/handshake.h, which produces them).
 * Window bits are 8..15.  "server_*" always means the server's side of the
 * compression, whatever role this engine plays.
 */
typedef struct h2ws_pmd_params {
  int enabled;                    /* 0: permessage-deflate not in use */
  int server_no_context_takeover; /* server resets its compressor per message */
  int client_no_context_takeover; /* client resets its compressor per message */
  int server_max_window_bits;     /* 8..15 */
  int client_max_window_bits;     /* 8..15 */
} h2ws_pmd_params;

/* Settings, filled with defaults by h2ws_ws_settings_default(). */
typedef struct h2ws_ws_settings {
  /* Optional separate cap on one data frame's content, applied the same
   * way (uncompressed payload, or its deflate bound when compressed),
   * and on control frames' payload; 0 (default) means none: only
   * max_message_size applies.  Values at or above max_message_size
   * change nothing. */
  uint64_t max_frame_size;
  /* Largest message accepted, as the application receives it: after
   * decompression (close 1009 above).  Default 16 MiB.  Also bounds
   * inflation (no zip bombs, RFC 7692 D3).  This is the one limit an
   * application needs to set: the engine derives what a frame may carry
   * on the wire from it.  An uncompressed data frame may carry at most
   * the limit; a compressed (permessage-deflate) frame, and a compressed
   * message's frames in total, at most the limit plus deflate's
   * worst-case growth (n + n/8 + n/64 + 1 KiB), so a message of exactly
   * the limit is accepted however incompressible it is. */
  uint64_t max_message_size;
  /* Cap on bytes queued for sending; a submit that would exceed it fails
   * with H2WS_ERR_BUFFER_FULL instead of growing.  Control frames (ping,
   * pong, close; at most 131 bytes each) may exceed it by a small fixed
   * reserve so that a close can always be sent.  Default 1 MiB. */
  size_t max_output;
  /* Time allowed between sending a Close and receiving the peer's Close
   * (or the transport's end) before the WebSocket is declared abnormally
   * closed (on_close with 1006).  Milliseconds; 0 disables.  Default 5000. */
  uint64_t close_timeout_ms;
  /* Nonzero: deliver each message whole through on_msg (buffered up to
   * max_message_size).  Zero (default): stream it through on_msg_begin /
   * on_msg_data / on_msg_end without buffering. */
  int whole_messages;
  /* Nonzero (default): answer each ping with a pong automatically. */
  int auto_pong;
  /* Outgoing messages larger than this are split into fragments of this
   * size by the data-source path.  Default 64 KiB. */
  size_t fragment_size;
  /* permessage-deflate as negotiated; .enabled = 0 by default. */
  h2ws_pmd_params pmd;
  /* Messages at least this large are compressed when pmd is enabled;
   * smaller ones are sent uncompressed (RSV1 clear).  Default 32. */
  size_t compress_threshold;
  /* Fairness: the most message bytes (after inflation) one h2ws_ws_recv()
   * call delivers; once reached it returns H2WS_ERR_WOULDBLOCK with
   * *pnread telling how far it got, and the caller feeds the rest later
   * (after other work: the runtime does so at its next loop turn), so a
   * small compressed frame that inflates to megabytes (a deflate bomb) is
   * worked off in slices.  Checked per inflater output chunk (8 KiB), so
   * a call may deliver up to 8 KiB more.  0 (default): no limit.  The
   * runtime (h2ws/rt.h) uses 256 KiB when it is 0. */
  uint64_t recv_budget;
  /* A compression ratio cap against deflate bombs: once a compressed
   * message is over 1 MiB inflated, it may be at most this many times the
   * compressed bytes received for it; beyond, close 1009
   * (H2WS_ERR_MSG_TOO_BIG), as above max_message_size.  0 (default): no
   * ratio cap (max_message_size alone bounds inflation).  The server
   * settings of h2ws/rt.h default to 100. */
  uint64_t max_inflate_ratio;
  /* ABI (docs/abi.md): room for members added within this SONAME;
   * leave zero. */
  uint64_t reserved[2];
} h2ws_ws_settings;

H2WS_EXTERN void h2ws_ws_settings_default(h2ws_ws_settings *settings);

/*
 * Callbacks.  Any may be NULL.  Unless stated otherwise a callback returns
 * 0 to continue, H2WS_ERR_PAUSE to make h2ws_ws_recv() return after the
 * current callback (the data handed to the callback counts as consumed),
 * or any other negative value to fail: h2ws_ws_recv() then returns
 * H2WS_ERR_CALLBACK_FAILURE.
 *
 * Pointers passed to callbacks are valid until the callback returns.
 */
typedef struct h2ws_ws_callbacks {
  /* A data message starts; opcode is H2WS_OP_TEXT or H2WS_OP_BINARY;
   * compressed says whether RSV1 was set. */
  int (*on_msg_begin)(h2ws_ws *ws, h2ws_opcode opcode, int compressed,
                      void *user_data);
  /* A chunk of the current message, unmasked, inflated, and (for text)
   * validated as UTF-8 so far.  Chunks follow no frame boundary.  A UTF-8
   * sequence may be split between two chunks. */
  int (*on_msg_data)(h2ws_ws *ws, const uint8_t *data, size_t datalen,
                     void *user_data);
  /* The current message is complete (and, for text, ends on a complete
   * UTF-8 sequence). */
  int (*on_msg_end)(h2ws_ws *ws, void *user_data);
  /* whole_messages mode only: one complete message. */
  int (*on_msg)(h2ws_ws *ws, h2ws_opcode opcode, const uint8_t *data,
                size_t datalen, void *user_data);
  /* A ping arrived (already answered if auto_pong). */
  int (*on_ping)(h2ws_ws *ws, const uint8_t *data, size_t datalen,
                 void *user_data);
  /* A pong arrived (solicited or not). */
  int (*on_pong)(h2ws_ws *ws, const uint8_t *data, size_t datalen,
                 void *user_data);
  /*
   * The WebSocket is over for the application.  Called exactly once:
   *  - when the peer's Close frame arrives: its code (1005 if it had none)
   *    and reason; the engine has queued the echo if it had not sent a
   *    Close itself;
   *  - when the engine fails the WebSocket because of a peer violation:
   *    the code it sent (1002, 1007, 1009, 1010), reason empty;
   *  - when the transport ends or resets without a Close, or the closing
   *    handshake times out: 1006.
   * Its return value is ignored.
   */
  void (*on_close)(h2ws_ws *ws, uint16_t code, const uint8_t *reason,
                   size_t reasonlen, void *user_data);
  /* Output space became available again after an H2WS_ERR_BUFFER_FULL or
   * a deferred data source; a good moment to submit more. Optional. */
  void (*on_writable)(h2ws_ws *ws, void *user_data);
  /*
   * Masking keys: fill buf with len random bytes.  Required for clients
   * (RFC 6455 §5.3: unpredictable keys); return 0 or a negative error.
   * Tests pass a deterministic source so wire bytes can be asserted.
   */
  int (*random)(uint8_t *buf, size_t len, void *user_data);
  /*
   * Optional, for diagnostics (the h2ws client's -v): one call per frame
   * header, received (sent = 0, before it is validated) or queued for
   * sending (sent = 1).  rsv holds RSV1..RSV3 as bits 2..0 (RSV1 = 0x4:
   * a compressed message); length is the payload length on the wire.
   * Must not call any function on `ws`.  Return value: none.  NULL costs
   * nothing.
   */
  void (*on_frame_trace)(h2ws_ws *ws, int sent, int fin, unsigned rsv,
                         h2ws_opcode opcode, uint64_t length,
                         void *user_data);
  /* ABI (docs/abi.md): room for callbacks added within this SONAME;
   * leave NULL. */
  void (*reserved[4])(void);
} h2ws_ws_callbacks;

/*
 * Creates an engine.  `callbacks` and `settings` are copied; NULL settings
 * means defaults; `mem` may be NULL (libc).  `user_data` is passed to every
 * callback.
 * Returns 0, H2WS_ERR_INVALID_ARGUMENT (bad settings, client without a
 * random callback, invalid pmd window bits) or H2WS_ERR_NOMEM.
 */
H2WS_EXTERN int h2ws_ws_new(h2ws_ws **pws, h2ws_role role,
                            const h2ws_ws_callbacks *callbacks,
                            const h2ws_ws_settings *settings, const h2ws_mem *mem,
                            void *user_data);

/* Frees the engine and everything it owns.  NULL is allowed. */
H2WS_EXTERN void h2ws_ws_del(h2ws_ws *ws);

/*
 * Feeds received transport bytes.  Any split of the input (one byte at a
 * time included) gives the same callbacks.  *pnread receives how many
 * bytes were consumed; it is less than inlen only when a callback paused
 * (H2WS_ERR_PAUSE), the call's recv_budget was spent (H2WS_ERR_WOULDBLOCK)
 * or on an error: the caller must feed the rest later.
 * After H2WS_ERR_PAUSE, resume by calling h2ws_ws_recv() with the rest of
 * the input.  When the pause leaves callbacks owed for input already
 * consumed (on_msg_end after a paused last on_msg_data, inflated output),
 * the engine reports the last consumed byte as unconsumed and skips it
 * when it is fed again, so the rest is never empty in that case; calling
 * with an empty input (in = NULL, inlen = 0) also resumes.  The engine
 * allocates nothing per frame or message here (streaming mode).
 * Returns:
 *   0                         all input consumed;
 *   H2WS_ERR_PAUSE            a callback paused; *pnread tells how far;
 *   H2WS_ERR_WOULDBLOCK       settings.recv_budget reached; *pnread tells
 *                             how far: call again with the rest (a
 *                             held-back byte as after a pause);
 *   H2WS_ERR_PROTO, H2WS_ERR_BAD_UTF8, H2WS_ERR_MSG_TOO_BIG,
 *   H2WS_ERR_BAD_DATA         the peer violated the protocol: the engine
 *                             queued a Close with the matching code, fired
 *                             on_close, and ignores further input;
 *   H2WS_ERR_INVALID_STATE    called from a callback;
 *   H2WS_ERR_CALLBACK_FAILURE, H2WS_ERR_NOMEM  fatal.
 * Bytes received after the peer's Close frame are discarded.
 */
H2WS_EXTERN int h2ws_ws_recv(h2ws_ws *ws, const uint8_t *in, size_t inlen,
                             size_t *pnread, uint64_t now);

/*
 * The transport ended in order (TCP FIN, HTTP/2 END_STREAM).  If the
 * closing handshake had not been received this fires on_close(1006).
 */
H2WS_EXTERN void h2ws_ws_recv_eof(h2ws_ws *ws, uint64_t now);

/*
 * The transport was reset (TCP RST, HTTP/2 RST_STREAM).  Fires
 * on_close(1006) unless on_close already fired; drops queued output.
 */
H2WS_EXTERN void h2ws_ws_abort(h2ws_ws *ws);

/*
 * Output, pulled.  Sets *pdata / *pdatalen to the next contiguous run of
 * bytes to send (length 0 when nothing is queued); the bytes stay queued
 * and valid until the next call on this object other than the query
 * functions.  After writing n of them (n <= *pdatalen) call
 * h2ws_ws_send_consumed(ws, n).  May pull from a data source.
 * Returns 0, H2WS_ERR_INVALID_STATE (from a callback), H2WS_ERR_NOMEM,
 * H2WS_ERR_CALLBACK_FAILURE (a data source failed).
 */
H2WS_EXTERN int h2ws_ws_send(h2ws_ws *ws, const uint8_t **pdata, size_t *pdatalen,
                             uint64_t now);

/* Marks n bytes returned by h2ws_ws_send() as written. */
H2WS_EXTERN void h2ws_ws_send_consumed(h2ws_ws *ws, size_t n);

/* Queued output bytes (what h2ws_ws_send() would return in total). */
H2WS_EXTERN size_t h2ws_ws_output_len(const h2ws_ws *ws);

/* Input held: whole_messages mode, the bytes of the message being
 * reassembled so far (0 between messages); 0 otherwise.  What a memory
 * budget counts as held input (h2ws/rt.h, h2ws_server_settings). */
H2WS_EXTERN size_t h2ws_ws_input_len(const h2ws_ws *ws);

/* Nonzero if the engine still expects input (no Close received yet and no
 * fatal error or abort). */
H2WS_EXTERN int h2ws_ws_want_read(const h2ws_ws *ws);

/* Nonzero if output is queued or a ready data source can produce some. */
H2WS_EXTERN int h2ws_ws_want_write(const h2ws_ws *ws);

/* Nonzero once this side has sent a Close (fully flushed or not) and
 * received the peer's Close, or once the WebSocket failed (a peer
 * violation: our Close is queued), was aborted, saw the transport end
 * (h2ws_ws_recv_eof) or timed out: after flushing output the transport
 * should half-close (FIN / END_STREAM). */
H2WS_EXTERN int h2ws_ws_is_done(const h2ws_ws *ws);

/* Next deadline (closing-handshake timeout, or the release of an idle
 * large buffer), or H2WS_NO_EXPIRY. */
H2WS_EXTERN uint64_t h2ws_ws_get_expiry(const h2ws_ws *ws);

/* Handles deadlines that have passed at `now`: a closing handshake that
 * timed out fires on_close(1006) and makes is_done() true; whole-message
 * and output buffers above 16 KiB that no message needed for 1 s are
 * given back (a busy WebSocket keeps them: no allocation per message).
 * Returns 0. */
H2WS_EXTERN int h2ws_ws_handle_expiry(h2ws_ws *ws, uint64_t now);

/*
 * Sends a whole message (H2WS_OP_TEXT or H2WS_OP_BINARY).  The payload is
 * copied once into the output queue (masked when client, compressed when
 * permessage-deflate is on).  Text must be valid UTF-8 (not re-checked;
 * the caller is trusted).  Frame lengths use the minimal encoding.  The
 * room check uses the deflate bound when compressing, so a message above
 * max_output always fails with H2WS_ERR_BUFFER_FULL: send such messages
 * with h2ws_ws_submit_fragment() or a data source.
 * Returns 0, H2WS_ERR_INVALID_ARGUMENT, H2WS_ERR_INVALID_STATE (a Close
 * was sent or a fragmented message is in progress), H2WS_ERR_BUFFER_FULL,
 * H2WS_ERR_NOMEM (fatal if the deflater had started on the message),
 * H2WS_ERR_CALLBACK_FAILURE (the random callback failed).
 */
H2WS_EXTERN int h2ws_ws_submit_msg(h2ws_ws *ws, h2ws_opcode opcode, const uint8_t *data,
                                   size_t datalen);

/*
 * Sends one fragment of a message: the first with opcode TEXT or BINARY,
 * the following with H2WS_OP_CONT; fin = 1 on the last.  Lets a proxy
 * forward a message as it streams in.  With permessage-deflate the whole
 * fragmented message is compressed (RSV1 on the first fragment only).
 * Returns as h2ws_ws_submit_msg().
 */
H2WS_EXTERN int h2ws_ws_submit_fragment(h2ws_ws *ws, h2ws_opcode opcode, int fin,
                                        const uint8_t *data, size_t datalen);

/*
 * Prepared messages: a message framed once and queued to many WebSockets
 * (a broadcast to N members costs one encoding and N copies, not N
 * encodings).  h2ws_ws_prepared_new() copies the payload once, behind the
 * frame header a server sends: one final frame (FIN), RSV bits clear,
 * unmasked, minimal length.  The object is immutable: it may be queued to
 * any number of engines, on any number of threads at once, and the
 * engines keep no reference to it (each submit copies), so the caller
 * frees it with h2ws_ws_prepared_del() whenever it wants after its last
 * submit.  `mem` may be NULL (libc).
 * Returns 0, H2WS_ERR_INVALID_ARGUMENT (opcode not TEXT/BINARY, NULL data
 * with a length), H2WS_ERR_NOMEM.  TEXT must be valid UTF-8 (not
 * re-checked).
 */
typedef struct h2ws_ws_prepared h2ws_ws_prepared;

H2WS_EXTERN int h2ws_ws_prepared_new(h2ws_ws_prepared **pprep, h2ws_opcode opcode,
                         const uint8_t *data, size_t datalen,
                         const h2ws_mem *mem);

/* Frees it.  NULL allowed. */
H2WS_EXTERN void h2ws_ws_prepared_del(h2ws_ws_prepared *prep);

/* The frame exactly as every server engine queues it (header + payload);
 * *plen (may be NULL) gets its length.  Valid until _del. */
H2WS_EXTERN const uint8_t *h2ws_ws_prepared_wire(const h2ws_ws_prepared *prep,
                                     size_t *plen);

/* The payload (inside the wire bytes) and its length. */
H2WS_EXTERN const uint8_t *h2ws_ws_prepared_payload(const h2ws_ws_prepared *prep,
                                        size_t *plen);

/* TEXT or BINARY. */
H2WS_EXTERN h2ws_opcode h2ws_ws_prepared_opcode(const h2ws_ws_prepared *prep);

/*
 * Queues a prepared message, copied once into the output queue: a server
 * engine copies the prepared frame as it is; a client engine writes its
 * own masked header and masks the payload in that copy (RFC 6455 §5.3).
 * Nothing is re-encoded and, on a server, nothing is allocated once the
 * output queue has grown.  With permessage-deflate the message goes
 * uncompressed (RSV1 clear, RFC 7692 §6 lets an endpoint choose per
 * message): each member's compressor has its own context, so compressing
 * would be one encoding per member; an uncompressed message leaves that
 * context as it was.  Counts in the stats and the frame trace like
 * h2ws_ws_submit_msg().
 * Returns 0, H2WS_ERR_INVALID_ARGUMENT, H2WS_ERR_INVALID_STATE (a Close
 * was sent, or a fragmented / source message is in progress),
 * H2WS_ERR_BUFFER_FULL (it does not fit max_output with what is queued),
 * H2WS_ERR_NOMEM, H2WS_ERR_CALLBACK_FAILURE (client: the random callback
 * failed).
 */
H2WS_EXTERN int h2ws_ws_submit_prepared(h2ws_ws *ws, const h2ws_ws_prepared *prep);

/* Sends a ping / a pong, payload at most 125 bytes.  Control frames go
 * between the frames already queued (also between the fragments of a
 * message being sent) and may use a small reserve above max_output.
 * Returns 0, H2WS_ERR_INVALID_ARGUMENT, H2WS_ERR_INVALID_STATE,
 * H2WS_ERR_BUFFER_FULL (reserve exhausted too), H2WS_ERR_NOMEM. */
H2WS_EXTERN int h2ws_ws_submit_ping(h2ws_ws *ws, const uint8_t *data, size_t datalen);
H2WS_EXTERN int h2ws_ws_submit_pong(h2ws_ws *ws, const uint8_t *data, size_t datalen);

/*
 * Starts the closing handshake: queues a Close with `code` (a valid wire
 * code, or 0 for a Close without a code) and reason (UTF-8, at most 123
 * bytes).  Nothing can be submitted after it.  Starts the closing timer at
 * `now`.  Returns 0, H2WS_ERR_INVALID_ARGUMENT (bad code, reason too long
 * or not UTF-8), H2WS_ERR_INVALID_STATE (a Close was already sent).
 */
H2WS_EXTERN int h2ws_ws_submit_close(h2ws_ws *ws, uint16_t code, const uint8_t *reason,
                                     size_t reasonlen, uint64_t now);

/*
 * Data source for large or streamed messages.  The engine calls read()
 * when it has output room; read() copies up to buflen bytes into buf,
 * stores the count in *pnwritten, sets *peof to 1 on the message's last
 * bytes, and returns 0; or returns H2WS_ERR_WOULDBLOCK to defer (resume
 * with h2ws_ws_resume_source()); any other negative value fails the send
 * (h2ws_ws_send returns H2WS_ERR_CALLBACK_FAILURE).  read() is called from
 * h2ws_ws_send() and writes straight into the output queue: it must not
 * call the h2ws_ws_submit_* functions (they return H2WS_ERR_INVALID_STATE
 * there).  Returning 0 bytes without eof sends nothing and is retried on
 * the next h2ws_ws_send().  With permessage-deflate on, a source message
 * is always compressed.
 */
typedef struct h2ws_data_source {
  int (*read)(h2ws_ws *ws, uint8_t *buf, size_t buflen, size_t *pnwritten,
              int *peof, void *source_data);
  void *source_data;
} h2ws_data_source;

/* Sends a message whose payload comes from `source` (copied). Only one
 * source message at a time; other submits fail with INVALID_STATE until it
 * ends, except control frames, which are interleaved.
 * Returns 0, H2WS_ERR_INVALID_ARGUMENT, H2WS_ERR_INVALID_STATE. */
H2WS_EXTERN int h2ws_ws_submit_source(h2ws_ws *ws, h2ws_opcode opcode,
                                      const h2ws_data_source *source);

/* Resumes a source that returned H2WS_ERR_WOULDBLOCK. */
H2WS_EXTERN int h2ws_ws_resume_source(h2ws_ws *ws);

/* The role given at creation. */
H2WS_EXTERN h2ws_role h2ws_ws_get_role(const h2ws_ws *ws);

/* Nonzero if permessage-deflate is in use (negotiated and configured at
 * creation through settings.pmd). */
H2WS_EXTERN int h2ws_ws_is_compressed(const h2ws_ws *ws);

/* Statistics for logs and metrics. */
typedef struct h2ws_ws_stats {
  uint64_t msgs_in, msgs_out;   /* data messages */
  uint64_t bytes_in, bytes_out; /* payload bytes (after inflate / before
                                   deflate) */
  uint16_t close_code_sent;     /* 0 if none */
  uint16_t close_code_received; /* 0 if none, 1005 if without code */
  /* ABI (docs/abi.md): room for members added within this SONAME;
   * leave zero. */
  uint64_t reserved[4];
} h2ws_ws_stats;
H2WS_EXTERN void h2ws_ws_get_stats(const h2ws_ws *ws, h2ws_ws_stats *pstats);

/* The user_data given at creation; h2ws_ws_set_user_data replaces it. */
H2WS_EXTERN void *h2ws_ws_get_user_data(const h2ws_ws *ws);
H2WS_EXTERN void h2ws_ws_set_user_data(h2ws_ws *ws, void *user_data);

/* Incremental UTF-8 validation, exposed for transports and applications
 * (e.g. validating text before sending it).  Returns nonzero if
 * (data, datalen) is complete, valid UTF-8. */
H2WS_EXTERN int h2ws_utf8_is_valid(const uint8_t *data, size_t datalen);

#ifdef __cplusplus
}
#endif
#endif /* H2WS_WS_H */
