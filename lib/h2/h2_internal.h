/* lib/h2/h2_internal.h - the HTTP/2 binding's private types: session,
 * per-stream state, and the functions the lib/h2 files share. */
#ifndef H2WS_LIB_H2_INTERNAL_H
#define H2WS_LIB_H2_INTERNAL_H

#include <nghttp2/nghttp2.h>
#include <h2ws/h2.h>
#include "ws/mem.h"
#include "ws/engine.h"

/* After our END_STREAM, how long the peer gets to end its side before the
 * stream is reset (so a silent peer cannot hold a stream slot forever). */
#define H2_LINGER_MS 5000

/* What nghttp2 is told our SETTINGS_MAX_CONCURRENT_STREAMS is (its
 * default, "unlimited"); the wire carries settings.max_concurrent_streams
 * (patched into our SETTINGS frame by cb_send) and the binding enforces it
 * with RST_STREAM REFUSED_STREAM.  nghttp2 1.52 answers a client that
 * exceeds an acknowledged limit with GOAWAY PROTOCOL_ERROR, where RFC 9113
 * §5.1.2 asks for a stream error: see docs/h2-errors.md. */
#define H2_NGHTTP2_MAX_STREAMS 0xffffffffu

/* Client stream ids remembered as opened (a ring of bits over the last
 * H2_IDWIN odd ids below the highest seen), so a HEADERS frame on a lower
 * id that was never opened is told apart from a late frame on a stream
 * that was (RFC 9113 §5.1.1). */
#define H2_IDWIN 1024

/* A token bucket: `burst` events at once, refilled at `rate` per second
 * (both 0: no limit).  Tokens are counted in thousandths. */
typedef struct h2_bucket {
  uint64_t tokens, cap, rate, last;
} h2_bucket;

/* What a stream carries. */
enum {
  H2_KIND_UNKNOWN = 0,  /* server: headers still arriving */
  H2_KIND_PLAIN,        /* ordinary request / response */
  H2_KIND_WS_REQUEST,   /* server: valid WebSocket request, awaiting app */
  H2_KIND_WS,           /* WebSocket open (engine exists) */
  H2_KIND_WS_CLIENT_WAIT, /* client: extended CONNECT sent, awaiting 2xx */
  H2_KIND_DONE          /* answered / refused, nothing more to do */
};

/* A stored header field (offsets into the stream's arena). */
typedef struct h2_field {
  uint32_t name, namelen, value, valuelen;
} h2_field;

/* Queued client WebSocket request (before the server's SETTINGS). */
typedef struct h2_creq h2_creq;

typedef struct h2_stream {
  struct h2ws_h2_session *s;
  struct h2_stream *next, *prev; /* all streams of the session */
  int32_t id;
  int kind;
  /* header collection (request on server, response on client) */
  char *arena;
  size_t arenalen, arenacap;
  h2_field *fields;
  size_t nfields, fieldcap;
  uint32_t hb_fields;   /* the current header block's fields, and its */
  /* flags are bytes: an idle WebSocket keeps its stream */
  uint8_t too_big;      /* header block above max_header_bytes/_fields */
  uint8_t ws_slot;      /* counted in s->nws */
  uint8_t local_end;    /* our END_STREAM (or RST) went out */
  uint8_t incoming;     /* peer-initiated: counted in s->nopen */
  size_t hb_bytes;      /* size (name + value + 32 each, RFC 9113 §6.5.2) */
  uint8_t ended_early;  /* RST_STREAM NO_ERROR sent after our END_STREAM */
  uint8_t answered;     /* a response (or RST) was submitted */
  /* WebSocket */
  uint8_t paused;
  uint8_t held;         /* the engine spent its recv_budget: the rest is
                           fed by the next handle_expiry (next turn) */
  uint8_t remote_eof;   /* END_STREAM received */
  uint8_t eof_fed;      /* h2ws_ws_recv_eof() called */
  uint8_t deferred;     /* the data provider returned DEFERRED */
  uint8_t body_deferred; /* plain body source returned WOULDBLOCK */
  h2ws_ws *ws;
  h2_creq *creq;        /* client: the request's options */
  uint8_t *rbuf;        /* received, not yet fed (paused engine): */
  size_t roff, rlen, rcap; /* bytes rbuf[roff .. roff+rlen) */
  /* h2ws_h2_session_sendv: the head of the engine's output queue already
   * framed (behind DATA headers in the vector) but not yet consumed, and
   * a scratch offset while the vector is resolved or settled */
  size_t lent, lent_off;
  uint32_t window;      /* current stream receive window */
  int status;           /* client: response status */
  int64_t credit;       /* what the peer may still send, as it sees it */
  uint64_t linger;      /* deadline for the peer's END_STREAM, 0 = none */
  /* plain response body */
  uint8_t *body;
  size_t bodylen, bodyoff;
  h2ws_h2_body_source src;
  int has_src;
} h2_stream;

/* One piece of a vector (h2ws_h2_session_sendv): `len` bytes of the
 * binding's buffer (st NULL: the next ones, in order, from out + outoff)
 * or of st's engine output queue (the next ones of that stream, in order,
 * from its head).  `off` is scratch for h2ws__h2_lent_settle. */
typedef struct h2_seg {
  h2_stream *st;
  size_t len, off;
} h2_seg;

/* Most pieces one vector has (a 256 KiB batch of 16 KiB DATA frames
 * takes 33: headers and payloads alternate). */
#define H2_SEGS_MAX 128

struct h2ws_h2_session {
  nghttp2_session *ngs;
  /* fairness: an engine spent its recv_budget in this recv / expiry
   * call: other streams' DATA waits (held) too, one budget per call */
  int budget_spent;
  int32_t held_cursor;  /* the held stream resumed last (round robin) */
  h2ws_role role;
  h2ws_h2_callbacks cb;
  h2ws_h2_settings set;
  const h2ws_mem *mem;
  void *user_data;
  uint64_t now;
  /* batched output */
  uint8_t *out;
  size_t outcap, outoff, outlen; /* readable: out[outoff .. outoff+outlen) */
  /* vectored output (h2ws_h2_session_sendv): while `vec` (inside its
   * nghttp2_session_send) DATA payload is lent, not copied; the vector is
   * segs[0 .. nsegs), vlent bytes of it lent from engines.  Own bytes and
   * lent ones together stay within outcap, so settling (copying the lent
   * rest into out) never allocates. */
  int vec;
  h2_seg *segs;
  size_t nsegs, segmax, vlent;
  int in_call;          /* inside recv/send/resume: reentrancy guard */
  int in_recv;          /* inside nghttp2_session_mem_recv */
  int fatal;
  /* Connection end (h2ws_h2_session_recv's contract): once `term` is set
   * a GOAWAY is queued (unless fatal), input is ignored and recv returns
   * `term`.  A callback that finds a connection error records it in
   * conn_error / conn_reason and makes nghttp2 stop (CALLBACK_FAILURE). */
  int term;
  const char *term_reason;
  uint32_t conn_error;
  const char *conn_reason;
  int patch_settings;   /* server: our first SETTINGS is still to be sent */
  size_t nopen;         /* server: peer streams open in nghttp2 */
  int32_t max_peer_id;  /* server: highest client stream id in a HEADERS */
  uint64_t opened[H2_IDWIN / 64]; /* see H2_IDWIN */
  h2_bucket rl_settings, rl_ping, rl_window_update, rl_priority,
      rl_empty_data, rl_rst, rl_reset;
  h2ws_h2_stats stats;
  h2_stream *streams;   /* list head */
  size_t nws;           /* live WebSockets (open or requested, not ended
                           by us): streams with ws_slot */
  size_t window_grown;  /* auto-tuning growth in use (stream_window_budget) */
  /* client: peer SETTINGS gate */
  int peer_settings_seen;
  int peer_connect_protocol;
  h2_creq *pending;     /* queued WebSocket requests (FIFO) */
  size_t npending;
  h2_creq *pending_tail;
  /* GOAWAY / shutdown */
  int goaway_recv;
  int shutting_down;
  uint64_t drain_deadline;
  int final_goaway;
};

/* headers.c */
int h2ws__h2_stream_add_field(h2_stream *st, size_t cap, const uint8_t *name,
                              size_t namelen, const uint8_t *value,
                              size_t valuelen);
/* Builds an array of h2ws_header pointing into st's arena
 * (caller frees with the session allocator); NULL on NOMEM. */
h2ws_header *h2ws__h2_stream_headers(h2_stream *st);
int h2ws__h2_nv(nghttp2_nv *nv, const char *name, const char *value);
int h2ws__h2_nv_len(nghttp2_nv *nv, const char *name, size_t namelen,
                    const char *value, size_t valuelen);

/* session.c */
/* The peer made the binding reset (or refuse) a stream: RST_STREAM with
 * `code`, counted against max_reset_rate.  Returns 0, or
 * NGHTTP2_ERR_CALLBACK_FAILURE when that rate is exceeded (a connection
 * error ENHANCE_YOUR_CALM is recorded: callbacks return it to nghttp2). */
int h2ws__h2_peer_reset(struct h2ws_h2_session *s, int32_t id, uint32_t code);
/* Records a connection error found by the binding (the first one wins);
 * inside recv it stops nghttp2 (returns NGHTTP2_ERR_CALLBACK_FAILURE for
 * the callback to return), outside it terminates at once (returns 0). */
int h2ws__h2_conn_error(struct h2ws_h2_session *s, uint32_t code,
                        const char *reason);
/* Our END_STREAM (or RST_STREAM) went out on st. */
void h2ws__h2_local_end(struct h2ws_h2_session *s, h2_stream *st);
h2_stream *h2ws__h2_stream_new(struct h2ws_h2_session *s, int32_t id, int kind);
void h2ws__h2_stream_free(struct h2ws_h2_session *s, h2_stream *st);
/* Frees the stream's collected header fields (arena and index); the
 * stream stays usable and may collect again. */
void h2ws__h2_stream_free_headers(struct h2ws_h2_session *s, h2_stream *st);
h2_stream *h2ws__h2_stream_get(const struct h2ws_h2_session *s, int32_t id);
int h2ws__h2_map_ngerr(int rv);
void h2ws__h2_maybe_finish_shutdown(struct h2ws_h2_session *s);

void h2ws__h2_set_kind(struct h2ws_h2_session *s, h2_stream *st, int kind);
int h2ws__h2_out_reserve(struct h2ws_h2_session *s, size_t need);
/* Vector mode: n more bytes were appended to out (a piece of its own, or
 * merged into the last one).  The caller checked the room
 * (h2ws__h2_seg_room). */
void h2ws__h2_seg_own(struct h2ws_h2_session *s, size_t n);
/* Nonzero if k more pieces fit, the first of them own bytes (merged into
 * the last piece when that is own). */
int h2ws__h2_seg_room(const struct h2ws_h2_session *s, size_t k);
/* Copies what the vector still lends from engines into out (in order,
 * behind and between the binding's own bytes) and consumes it from the
 * engines: afterwards nothing is lent.  Called before anything can move
 * or drop an engine's queue (a stream closing, a session call while a
 * vector is outstanding) and by send_consumed for an unwritten rest. */
void h2ws__h2_lent_settle(struct h2ws_h2_session *s);
/* The same, a no-op without a vector outstanding (the common case). */
#define H2_LENT_SETTLE(s)                                                    \
  do {                                                                       \
    if ((s)->vlent || (s)->nsegs) h2ws__h2_lent_settle(s);                   \
  } while (0)
int h2ws__h2_server_request(struct h2ws_h2_session *s, h2_stream *st);
int h2ws__h2_client_response(struct h2ws_h2_session *s, h2_stream *st,
                             int end_stream);
int h2ws__h2_client_settings(struct h2ws_h2_session *s);
void h2ws__h2_client_fail_pending(struct h2ws_h2_session *s, int error);

/* trace.c: describes a frame to cb.on_frame_trace (which must be set) */
void h2ws__h2_trace(struct h2ws_h2_session *s, int sent,
                    const nghttp2_frame *frame);

/* client.c */
void h2ws__h2_creq_free(struct h2ws_h2_session *s, h2_creq *r);
void *h2ws__h2_creq_user_data(const h2_creq *r);

/* flow.c */
ssize_t h2ws__h2_ws_read_cb(nghttp2_session *ngs, int32_t id, uint8_t *buf,
                            size_t length, uint32_t *flags,
                            nghttp2_data_source *source, void *ud);
int h2ws__h2_send_data_cb(nghttp2_session *ngs, nghttp2_frame *frame,
                          const uint8_t *framehd, size_t length,
                          nghttp2_data_source *source, void *ud);
void h2ws__h2_resume_deferred(struct h2ws_h2_session *s);
int h2ws__h2_any_ready(const struct h2ws_h2_session *s);
int h2ws__h2_ws_deliver(struct h2ws_h2_session *s, h2_stream *st);
/* Feeds held streams (recv_budget spent) round robin until one budget is
 * spent again; nonzero if any stream is still held (h2 flow.c). */
int h2ws__h2_resume_held(struct h2ws_h2_session *s);
int h2ws__h2_any_held(const struct h2ws_h2_session *s);
int h2ws__h2_ws_data(struct h2ws_h2_session *s, h2_stream *st,
                     const uint8_t *data, size_t len);
int h2ws__h2_ws_remote_eof(struct h2ws_h2_session *s, h2_stream *st);
void h2ws__h2_ws_closed(struct h2ws_h2_session *s, h2_stream *st,
                        uint32_t error_code);
void h2ws__h2_ws_local_end(struct h2ws_h2_session *s, h2_stream *st);
/* Ends lingering WebSocket streams when stream slots are scarce. */
void h2ws__h2_reclaim(struct h2ws_h2_session *s);
void h2ws__h2_linger_expired(struct h2ws_h2_session *s, h2_stream *st);
size_t h2ws__h2_max_websockets(const struct h2ws_h2_session *s);
#endif
