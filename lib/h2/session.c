/* lib/h2/session.c - the h2ws_h2_session object: nghttp2 setup, pushed
 * input, batched pulled output, the nghttp2 callbacks that route frames to
 * streams, timers, GOAWAY and graceful shutdown. */
#include <string.h>
#include "h2/h2_internal.h"

/* ---- settings ------------------------------------------------------------ */

void h2ws_h2_settings_default(h2ws_h2_settings *st) {
  memset(st, 0, sizeof(*st));
  st->enable_connect_protocol = 0; /* pitfall 1: only with a route */
  st->max_concurrent_streams = 128;
  st->max_websockets = 0; /* server: max_concurrent_streams; client: 100 */
  st->connection_window = 16u << 20;
  st->stream_window = 256u << 10;
  st->stream_window_max = 4u << 20;
  st->stream_window_budget = 32u << 20;
  st->max_frame_size = 16384;
  st->max_output = 256u << 10;
  st->max_header_bytes = 64u << 10;
  st->max_body_copy = 16u << 20;
  st->max_header_fields = 256;
  st->max_continuations = 8;
  st->max_settings_rate = 100;
  st->max_ping_rate = 100;
  st->max_window_update_rate = 1000;
  st->max_priority_rate = 1000;
  st->max_empty_data_rate = 100;
  st->max_rst_rate = 500;
  st->max_reset_rate = 200;
}

/* The WebSocket limit in force (h2.h: max_websockets 0). */
size_t h2ws__h2_max_websockets(const h2ws_h2_session *s) {
  if (s->set.max_websockets) return s->set.max_websockets;
  return s->role == H2WS_ROLE_SERVER ? s->set.max_concurrent_streams : 100;
}

/* One registry: h2ws_strerror() knows the binding's codes too. */
const char *h2ws_h2_strerror(int error) { return h2ws_strerror(error); }

int h2ws__h2_map_ngerr(int rv) {
  if (rv == 0) return 0;
  if (rv == NGHTTP2_ERR_NOMEM) return H2WS_ERR_NOMEM;
  if (rv == NGHTTP2_ERR_CALLBACK_FAILURE) return H2WS_ERR_CALLBACK_FAILURE;
  if (rv == NGHTTP2_ERR_INVALID_ARGUMENT || rv == NGHTTP2_ERR_INVALID_STATE ||
      rv == NGHTTP2_ERR_STREAM_CLOSED || rv == NGHTTP2_ERR_STREAM_CLOSING ||
      rv == NGHTTP2_ERR_STREAM_SHUT_WR || rv == NGHTTP2_ERR_DATA_EXIST)
    return H2WS_ERR_INVALID_STATE;
  if (rv == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE ||
      rv == NGHTTP2_ERR_SESSION_CLOSING)
    return H2WS_ERR_H2_GOAWAY;
  if (nghttp2_is_fatal(rv)) return H2WS_ERR_INTERNAL;
  return H2WS_ERR_PROTO;
}

/* ---- streams ------------------------------------------------------------- */

h2_stream *h2ws__h2_stream_new(h2ws_h2_session *s, int32_t id, int kind) {
  h2_stream *st = h2ws__calloc(s->mem, 1, sizeof(*st));
  if (!st) return NULL;
  st->s = s;
  st->id = id;
  st->kind = kind;
  st->window = s->set.stream_window;
  st->credit = s->set.stream_window;
  st->next = s->streams;
  if (s->streams) s->streams->prev = st;
  s->streams = st;
  return st;
}

void h2ws__h2_stream_free_headers(h2ws_h2_session *s, h2_stream *st) {
  h2ws__free(s->mem, st->arena);
  h2ws__free(s->mem, st->fields);
  st->arena = NULL;
  st->fields = NULL;
  st->arenalen = st->arenacap = st->nfields = st->fieldcap = 0;
}

void h2ws__h2_stream_free(h2ws_h2_session *s, h2_stream *st) {
  if (st->lent) h2ws__h2_lent_settle(s); /* the engine goes */
  if (st->prev) st->prev->next = st->next;
  else s->streams = st->next;
  if (st->next) st->next->prev = st->prev;
  if (st->ws_slot) s->nws--;
  s->window_grown -= st->window - s->set.stream_window; /* budget back */
  if (st->id > 0 && s->ngs) nghttp2_session_set_stream_user_data(s->ngs, st->id, NULL);
  h2ws__h2_stream_free_headers(s, st);
  h2ws_ws_del(st->ws);
  h2ws__free(s->mem, st->rbuf);
  h2ws__free(s->mem, st->body);
  if (st->creq) h2ws__h2_creq_free(s, st->creq);
  h2ws__free(s->mem, st);
}

h2_stream *h2ws__h2_stream_get(const h2ws_h2_session *s, int32_t id) {
  if (id <= 0 || !s->ngs) return NULL;
  return nghttp2_session_get_stream_user_data(s->ngs, id);
}

/* Changes a stream's kind, keeping the WebSocket count right: a live
 * WebSocket is one that is open or requested and that we have not ended
 * (issue 7.4: a stream we half-closed after the closing handshake and
 * that waits for the peer's END_STREAM is not one). */
void h2ws__h2_set_kind(h2ws_h2_session *s, h2_stream *st, int kind) {
  int live = (kind == H2_KIND_WS || kind == H2_KIND_WS_REQUEST ||
              kind == H2_KIND_WS_CLIENT_WAIT) &&
             !st->local_end;
  if (live && !st->ws_slot) s->nws++;
  if (!live && st->ws_slot) s->nws--;
  st->ws_slot = (uint8_t)live;
  st->kind = kind;
}

void h2ws__h2_local_end(h2ws_h2_session *s, h2_stream *st) {
  if (st->local_end) return;
  st->local_end = 1;
  h2ws__h2_set_kind(s, st, st->kind);
}

/* ---- limits ---------------------------------------------------------- */

static void bucket_init(h2_bucket *b, uint32_t per_second) {
  b->cap = b->tokens = (uint64_t)per_second * 1000;
  b->rate = per_second; /* thousandths per ms */
  b->last = 0;
}

/* Takes one token at `now`; returns -1 when none is left. */
static int bucket_take(h2_bucket *b, uint64_t now) {
  if (b->cap == 0) return 0; /* no limit */
  if (now > b->last) {
    uint64_t add = (now - b->last) * b->rate;
    b->tokens = b->cap - b->tokens < add ? b->cap : b->tokens + add;
    b->last = now;
  }
  if (b->tokens < 1000) return -1;
  b->tokens -= 1000;
  return 0;
}

/* Gives back n tokens earned by our own sending (WINDOW_UPDATE credit for
 * DATA we sent), up to a generous cap. */
static void bucket_earn(h2_bucket *b, uint64_t n) {
  if (b->cap == 0) return;
  uint64_t top = b->cap + 2000u * 65536u;
  b->tokens = top - b->tokens < n * 1000 ? top : b->tokens + n * 1000;
}

static void session_terminate(h2ws_h2_session *s, uint32_t code,
                              const char *reason, int error) {
  if (s->term) return;
  s->term = error;
  s->term_reason = reason;
  s->stats.goaway_reason = reason;
  /* RFC 9113 §5.4.1: GOAWAY with the code, then close.  nghttp2 ignores
   * all further input and wants nothing once it is sent. */
  if (nghttp2_session_terminate_session(s->ngs, code) != 0)
    s->fatal = H2WS_ERR_NOMEM;
}

int h2ws__h2_conn_error(h2ws_h2_session *s, uint32_t code,
                        const char *reason) {
  if (!s->conn_error) {
    s->conn_error = code;
    s->conn_reason = reason;
  }
  if (s->in_recv) return NGHTTP2_ERR_CALLBACK_FAILURE;
  session_terminate(s, s->conn_error, s->conn_reason, H2WS_ERR_PROTO);
  return 0;
}

static int limit(h2ws_h2_session *s, h2_bucket *b, const char *reason) {
  if (bucket_take(b, s->now) == 0) return 0;
  return h2ws__h2_conn_error(s, NGHTTP2_ENHANCE_YOUR_CALM, reason);
}

int h2ws__h2_peer_reset(h2ws_h2_session *s, int32_t id, uint32_t code) {
  nghttp2_submit_rst_stream(s->ngs, NGHTTP2_FLAG_NONE, id, code);
  return limit(s, &s->rl_reset, "too many streams reset or refused");
}

/* RFC 9113 §5.1.1: a client opens streams in increasing order; a HEADERS
 * frame on an id lower than one already used that was never opened is a
 * connection error PROTOCOL_ERROR.  nghttp2 1.52 ignores such a frame
 * when it keeps no state for the id: the binding sees every frame header
 * first (on_begin_frame) and remembers which recent ids were opened, so a
 * late frame on a stream that existed (trailers racing our RST_STREAM,
 * which must be ignored) is told apart from a new one. */
static int idbit(const h2ws_h2_session *s, int32_t id) {
  uint32_t k = ((uint32_t)id >> 1) % H2_IDWIN;
  return (int)((s->opened[k / 64] >> (k % 64)) & 1);
}

static void idbit_set(h2ws_h2_session *s, int32_t id, int on) {
  uint32_t k = ((uint32_t)id >> 1) % H2_IDWIN;
  if (on) s->opened[k / 64] |= (uint64_t)1 << (k % 64);
  else s->opened[k / 64] &= ~((uint64_t)1 << (k % 64));
}

static int check_headers_id(h2ws_h2_session *s, int32_t id) {
  if (id > s->max_peer_id) {
    /* the ids skipped on the way are closed without having been opened */
    int32_t from = s->max_peer_id ? s->max_peer_id + 2 : 1;
    if (id - from >= 2 * H2_IDWIN) from = id - 2 * H2_IDWIN + 2;
    for (int32_t k = from; k < id; k += 2) idbit_set(s, k, 0);
    idbit_set(s, id, 1);
    s->max_peer_id = id;
    return 0;
  }
  if (h2ws__h2_stream_get(s, id) || nghttp2_session_find_stream(s->ngs, id))
    return 0; /* trailers or a late HEADERS: the stream decides */
  if (s->max_peer_id - id < 2 * H2_IDWIN && !idbit(s, id))
    return h2ws__h2_conn_error(s, NGHTTP2_PROTOCOL_ERROR,
                               "HEADERS on a stream id lower than one used");
  return 0;
}

/* Every frame header received (nghttp2 calls this before acting on the
 * frame, except for frames it already decided to ignore): the flood
 * limits, and the stream-id order. */
static int cb_begin_frame(nghttp2_session *ngs, const nghttp2_frame_hd *hd,
                          void *ud) {
  h2ws_h2_session *s = ud;
  (void)ngs;
  int ack = (hd->flags & NGHTTP2_FLAG_ACK) != 0;
  switch (hd->type) {
  case NGHTTP2_DATA:
    if (hd->length == 0 && !(hd->flags & NGHTTP2_FLAG_END_STREAM))
      return limit(s, &s->rl_empty_data, "empty DATA flood");
    return 0;
  case NGHTTP2_HEADERS:
    if (s->role == H2WS_ROLE_SERVER && (hd->stream_id & 1))
      return check_headers_id(s, hd->stream_id);
    return 0;
  case NGHTTP2_PRIORITY:
    return limit(s, &s->rl_priority, "PRIORITY flood");
  case NGHTTP2_RST_STREAM:
    return limit(s, &s->rl_rst, "RST_STREAM flood (rapid reset)");
  case NGHTTP2_SETTINGS:
    return ack ? 0 : limit(s, &s->rl_settings, "SETTINGS flood");
  case NGHTTP2_PING:
    return ack ? 0 : limit(s, &s->rl_ping, "PING flood");
  case NGHTTP2_WINDOW_UPDATE:
    return limit(s, &s->rl_window_update, "WINDOW_UPDATE flood");
  default:
    return 0;
  }
}

/* nghttp2 found an invalid frame and answered it itself: a stream error
 * (RST_STREAM, e.g. a WINDOW_UPDATE overflowing a stream's window) counts
 * as a stream the peer made us reset ("MadeYouReset"); a connection error
 * is already a GOAWAY. */
static int cb_invalid_frame(nghttp2_session *ngs, const nghttp2_frame *frame,
                            int lib_error_code, void *ud) {
  h2ws_h2_session *s = ud;
  (void)ngs;
  (void)lib_error_code;
  if (frame->hd.stream_id == 0 || s->term) return 0;
  return limit(s, &s->rl_reset, "too many streams reset or refused");
}

/* ---- output: batched into s->out --------------------------------------- */

static size_t out_free(const h2ws_h2_session *s) {
  return s->outcap - s->outoff - s->outlen;
}

static void out_compact(h2ws_h2_session *s) {
  if (s->outoff == 0) return;
  if (s->outlen) memmove(s->out, s->out + s->outoff, s->outlen);
  s->outoff = 0;
}


/* Makes room for `need` contiguous bytes at the end of the output buffer;
 * returns 0 or -1 when the batch is full (nghttp2 retries later). */
int h2ws__h2_out_reserve(h2ws_h2_session *s, size_t need) {
  if (out_free(s) >= need) return 0;
  out_compact(s);
  return out_free(s) >= need ? 0 : -1;
}

/* Server: nghttp2 was told our SETTINGS_MAX_CONCURRENT_STREAMS is
 * H2_NGHTTP2_MAX_STREAMS (so it never turns an excess stream into a
 * connection error); the peer is told settings.max_concurrent_streams,
 * which the binding enforces with REFUSED_STREAM (RFC 9113 §5.1.2).  Our
 * SETTINGS frame is the first bytes a server sends (submitted at
 * creation, nothing precedes it), whole in the first send call (the
 * batch is empty then). */
static void patch_settings(h2ws_h2_session *s, uint8_t *w, size_t n) {
  s->patch_settings = 0;
  if (n < 9 || w[3] != NGHTTP2_SETTINGS || w[4] != 0) return;
  size_t len = (size_t)w[0] << 16 | (size_t)w[1] << 8 | w[2];
  for (size_t i = 9; i + 6 <= 9 + len && i + 6 <= n; i += 6) {
    if ((w[i] << 8 | w[i + 1]) != NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS)
      continue;
    uint32_t v = s->set.max_concurrent_streams;
    w[i + 2] = (uint8_t)(v >> 24);
    w[i + 3] = (uint8_t)(v >> 16);
    w[i + 4] = (uint8_t)(v >> 8);
    w[i + 5] = (uint8_t)v;
  }
}

/* nghttp2 send_callback: append serialized frames to the batch. */
static ssize_t cb_send(nghttp2_session *ngs, const uint8_t *data,
                       size_t length, int flags, void *ud) {
  h2ws_h2_session *s = ud;
  (void)ngs;
  (void)flags;
  if (out_free(s) == 0) out_compact(s);
  size_t fr = out_free(s);
  if (s->vec) { /* own + lent bytes within outcap (settling needs it) */
    size_t used = s->outlen + s->vlent;
    size_t vr = s->outcap > used ? s->outcap - used : 0;
    if (vr < fr) fr = vr;
    if (!h2ws__h2_seg_room(s, 1)) fr = 0;
  }
  if (fr == 0) return NGHTTP2_ERR_WOULDBLOCK;
  size_t n = length < fr ? length : fr;
  uint8_t *w = s->out + s->outoff + s->outlen;
  memcpy(w, data, n);
  if (s->patch_settings) patch_settings(s, w, n);
  s->outlen += n;
  h2ws__h2_seg_own(s, n);
  return (ssize_t)n;
}

/* ---- lent output (h2ws_h2_session_sendv) --------------------------------- */

int h2ws__h2_seg_room(const h2ws_h2_session *s, size_t k) {
  if (k && s->nsegs && !s->segs[s->nsegs - 1].st) k--;
  return s->nsegs + k <= s->segmax;
}

void h2ws__h2_seg_own(h2ws_h2_session *s, size_t n) {
  if (!s->vec || n == 0) return;
  if (s->nsegs && !s->segs[s->nsegs - 1].st) {
    s->segs[s->nsegs - 1].len += n;
    return;
  }
  s->segs[s->nsegs].st = NULL;
  s->segs[s->nsegs].len = n;
  s->nsegs++;
}

void h2ws__h2_lent_settle(h2ws_h2_session *s) {
  if (s->vlent == 0) {
    if (!s->vec) s->nsegs = 0;
    return;
  }
  out_compact(s);
  size_t total = s->outlen + s->vlent; /* <= outcap: see cb_send */
  for (size_t k = 0; k < s->nsegs; k++)
    if (s->segs[k].st) s->segs[k].st->lent_off = 0;
  for (size_t k = 0; k < s->nsegs; k++) {
    h2_seg *g = &s->segs[k];
    if (!g->st) continue;
    g->off = g->st->lent_off;
    g->st->lent_off += g->len;
  }
  /* back to front: own bytes only move up (dst >= src), lent ones are
   * copied into the gaps */
  size_t src = s->outlen, dst = total;
  for (size_t k = s->nsegs; k-- > 0;) {
    h2_seg *g = &s->segs[k];
    dst -= g->len;
    if (!g->st) {
      src -= g->len;
      memmove(s->out + dst, s->out + src, g->len);
    } else {
      memcpy(s->out + dst, h2ws__ws_out_head(g->st->ws) + g->off, g->len);
    }
  }
  s->outlen = total;
  s->vlent = 0;
  for (size_t k = 0; k < s->nsegs; k++)
    if (s->segs[k].st) s->segs[k].st->lent = 0;
  /* consumed from the engines last (their on_writable may queue more,
   * which may move their queues: nothing points into them any more) */
  int ic = s->in_call;
  s->in_call = 1;
  size_t nsegs = s->nsegs;
  s->nsegs = 0;
  for (size_t k = 0; k < nsegs; k++)
    if (s->segs[k].st) h2ws_ws_send_consumed(s->segs[k].st->ws, s->segs[k].len);
  s->in_call = ic;
  if (s->vec && total) {
    s->segs[0].st = NULL;
    s->segs[0].len = total;
    s->nsegs = 1;
  }
}

/* ---- nghttp2 receive-side callbacks ------------------------------------ */

static h2_stream *stream_find_any(const h2ws_h2_session *s, int32_t id) {
  h2_stream *st = h2ws__h2_stream_get(s, id);
  if (st) return st;
  for (st = s->streams; st; st = st->next)
    if (st->id == id) return st;
  return NULL;
}

/* Refuses a new stream; `counted`: the peer's doing (over our limit),
 * weighed against max_reset_rate.  A shutdown's refusals are not: the
 * client cannot know (no GOAWAY before the drain ends, pitfall 16). */
static int refuse_new(h2ws_h2_session *s, h2_stream *st, int counted) {
  st->answered = 1;
  h2ws__h2_set_kind(s, st, H2_KIND_DONE);
  int rv = 0;
  if (counted)
    rv = h2ws__h2_peer_reset(s, st->id, NGHTTP2_REFUSED_STREAM);
  else
    nghttp2_submit_rst_stream(s->ngs, NGHTTP2_FLAG_NONE, st->id,
                              NGHTTP2_REFUSED_STREAM);
  /* nghttp2 skips the rest of the block (its own RST is dropped: ours is
   * queued first) */
  return rv ? rv : NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
}

static int cb_begin_headers(nghttp2_session *ngs, const nghttp2_frame *frame,
                            void *ud) {
  h2ws_h2_session *s = ud;
  int32_t id = frame->hd.stream_id;
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  if (s->role == H2WS_ROLE_SERVER &&
      frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
    h2_stream *st = h2ws__h2_stream_new(s, id, H2_KIND_UNKNOWN);
    if (!st) {
      nghttp2_submit_rst_stream(ngs, NGHTTP2_FLAG_NONE, id,
                                NGHTTP2_REFUSED_STREAM);
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    nghttp2_session_set_stream_user_data(ngs, id, st);
    st->incoming = 1;
    s->nopen++; /* nghttp2 opened it: it counts until it closes */
    if (s->shutting_down)
      /* shutting down: no new work starts (RFC 9113 §8.7: REFUSED_STREAM
       * tells the client it is safe to retry elsewhere) */
      return refuse_new(s, st, 0);
    if (s->nopen > s->set.max_concurrent_streams)
      /* RFC 9113 §5.1.2 / pitfall 18: over the limit we advertised: a
       * stream error, never queued; the connection goes on */
      return refuse_new(s, st, 1);
    h2ws__h2_reclaim(s); /* slots getting scarce: end lingering streams */
    return 0;
  }
  h2_stream *st = h2ws__h2_stream_get(s, id);
  if (!st) return 0;
  st->hb_fields = 0;
  st->hb_bytes = 0;
  if (frame->headers.cat == NGHTTP2_HCAT_HEADERS &&
      (st->kind == H2_KIND_WS || st->kind == H2_KIND_WS_REQUEST)) {
    /* RFC 9113 §8.5, RFC 8441 §4: after the request (and our 200) a
     * WebSocket stream is a tunnel: only DATA, RST_STREAM, WINDOW_UPDATE
     * and PRIORITY belong on it.  A HEADERS frame (with or without
     * END_STREAM) is not trailers: stream error PROTOCOL_ERROR, the
     * WebSocket ends with 1006, the connection goes on.  Same for a
     * client receiving HEADERS after the server's 2xx. */
    int rv = h2ws__h2_peer_reset(s, id, NGHTTP2_PROTOCOL_ERROR);
    return rv ? rv : NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }
  return 0;
}

static int cb_header(nghttp2_session *ngs, const nghttp2_frame *frame,
                     const uint8_t *name, size_t namelen,
                     const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *ud) {
  h2ws_h2_session *s = ud;
  (void)ngs;
  (void)flags;
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  h2_stream *st = h2ws__h2_stream_get(s, frame->hd.stream_id);
  if (!st) return 0;
  /* Issue 9 B (HPACK bomb): stop the work the moment the block passes a
   * cap.  The temporal failure makes nghttp2 decode the rest without
   * validating it or calling us; our RST_STREAM goes first. */
  st->hb_fields++;
  st->hb_bytes += namelen + valuelen + 32;
  if (st->hb_fields > s->set.max_header_fields ||
      st->hb_bytes > s->set.max_header_bytes) {
    st->too_big = 1;
    int rv = h2ws__h2_peer_reset(s, st->id, NGHTTP2_ENHANCE_YOUR_CALM);
    return rv ? rv : NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }
  if (s->role == H2WS_ROLE_SERVER) {
    if (st->kind != H2_KIND_UNKNOWN || st->answered) return 0; /* trailers */
  } else if (st->status != 0) {
    return 0; /* trailers of a response */
  }
  if (h2ws__h2_stream_add_field(st, s->set.max_header_bytes, name, namelen,
                                value, valuelen) < 0)
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* NOMEM: reset stream */
  return 0;
}


static int remote_end(h2ws_h2_session *s, h2_stream *st) {
  int rv = 0;
  switch (st->kind) {
  case H2_KIND_WS:
  case H2_KIND_WS_REQUEST:
    st->remote_eof = 1;
    return h2ws__h2_ws_remote_eof(s, st);
  case H2_KIND_PLAIN:
    if (st->remote_eof) return 0;
    st->remote_eof = 1;
    if (s->role == H2WS_ROLE_SERVER && s->cb.on_request_data)
      rv = s->cb.on_request_data(s, st->id, NULL, 0, 1, s->user_data);
    else if (s->role == H2WS_ROLE_CLIENT && s->cb.on_response_data)
      rv = s->cb.on_response_data(s, st->id, NULL, 0, 1, s->user_data);
    break;
  default:
    st->remote_eof = 1;
    break;
  }
  return rv < 0 ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
}

static int cb_frame_recv(nghttp2_session *ngs, const nghttp2_frame *frame,
                         void *ud) {
  h2ws_h2_session *s = ud;
  h2_stream *st;
  int rv = 0;
  (void)ngs;
  if (s->cb.on_frame_trace) h2ws__h2_trace(s, 0, frame);
  switch (frame->hd.type) {
  case NGHTTP2_HEADERS:
    st = h2ws__h2_stream_get(s, frame->hd.stream_id);
    if (!st) return 0;
    if (s->role == H2WS_ROLE_SERVER) {
      if (frame->headers.cat == NGHTTP2_HCAT_REQUEST &&
          st->kind == H2_KIND_UNKNOWN && !st->answered)
        rv = h2ws__h2_server_request(s, st);
    } else if (st->status == 0) {
      rv = h2ws__h2_client_response(
          s, st, (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0);
    }
    if (rv < 0) return NGHTTP2_ERR_CALLBACK_FAILURE;
    st = h2ws__h2_stream_get(s, frame->hd.stream_id);
    if (st && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
      return remote_end(s, st);
    return 0;
  case NGHTTP2_DATA:
    st = h2ws__h2_stream_get(s, frame->hd.stream_id);
    if (st && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
      return remote_end(s, st);
    return 0;
  case NGHTTP2_SETTINGS:
    if (frame->hd.flags & NGHTTP2_FLAG_ACK) return 0;
    s->peer_settings_seen = 1;
    /* RFC 8441 §3: only the SERVER's value matters (pitfall 2: a server
     * ignores what a client sends).  nghttp2 already turned values other
     * than 0/1 and a 1 -> 0 change into a connection PROTOCOL_ERROR. */
    if (s->role == H2WS_ROLE_CLIENT)
      return h2ws__h2_client_settings(s) < 0 ? NGHTTP2_ERR_CALLBACK_FAILURE
                                             : 0;
    return 0;
  case NGHTTP2_GOAWAY:
    s->goaway_recv = 1;
    if (s->role == H2WS_ROLE_CLIENT)
      h2ws__h2_client_fail_pending(s, H2WS_ERR_H2_GOAWAY);
    if (s->cb.on_goaway)
      s->cb.on_goaway(s, frame->goaway.last_stream_id,
                      frame->goaway.error_code, s->user_data);
    return 0;
  case NGHTTP2_RST_STREAM:
    s->stats.rst_received++;
    return 0;
  case NGHTTP2_PING:
    if ((frame->hd.flags & NGHTTP2_FLAG_ACK) && s->cb.on_ping_ack)
      s->cb.on_ping_ack(s, frame->ping.opaque_data, s->user_data);
    return 0;
  default:
    return 0;
  }
}

static int cb_data_chunk(nghttp2_session *ngs, uint8_t flags, int32_t id,
                         const uint8_t *data, size_t len, void *ud) {
  h2ws_h2_session *s = ud;
  (void)flags;
  /* Pitfall 12 / SPEC H10: connection credit comes back on arrival, so a
   * paused stream can never freeze its siblings; each stream's own
   * credit comes back only as its consumer takes the bytes. */
  nghttp2_session_consume_connection(ngs, len);
  h2_stream *st = h2ws__h2_stream_get(s, id);
  if (!st) return 0;
  int rv = 0;
  switch (st->kind) {
  case H2_KIND_WS:
  case H2_KIND_WS_REQUEST:
    return h2ws__h2_ws_data(s, st, data, len);
  case H2_KIND_PLAIN:
    if (s->role == H2WS_ROLE_SERVER && s->cb.on_request_data)
      rv = s->cb.on_request_data(s, id, data, len, 0, s->user_data);
    else if (s->role == H2WS_ROLE_CLIENT && s->cb.on_response_data)
      rv = s->cb.on_response_data(s, id, data, len, 0, s->user_data);
    break;
  default:
    break;
  }
  nghttp2_session_consume_stream(ngs, id, len);
  return rv < 0 ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
}

static int cb_stream_close(nghttp2_session *ngs, int32_t id,
                           uint32_t error_code, void *ud) {
  h2ws_h2_session *s = ud;
  (void)ngs;
  h2_stream *st = stream_find_any(s, id);
  if (!st) return 0;
  if (st->incoming) s->nopen--;
  if (st->lent) h2ws__h2_lent_settle(s); /* abort drops the queue */
  if (st->ws) {
    h2ws__h2_ws_closed(s, st, error_code);
  } else if (st->kind == H2_KIND_WS_CLIENT_WAIT) {
    int err = (s->goaway_recv && error_code == NGHTTP2_REFUSED_STREAM)
                  ? H2WS_ERR_H2_GOAWAY
              : st->too_big ? H2WS_ERR_H2_BAD_RESPONSE
                            : H2WS_ERR_H2_STREAM_RESET;
    h2ws__h2_set_kind(s, st, H2_KIND_DONE);
    if (s->cb.on_ws_refused)
      s->cb.on_ws_refused(s, id, st->status, err,
                          st->creq ? h2ws__h2_creq_user_data(st->creq) : NULL,
                          s->user_data);
  }
  if (s->cb.on_stream_close) s->cb.on_stream_close(s, id, error_code, s->user_data);
  h2ws__h2_stream_free(s, st);
  h2ws__h2_maybe_finish_shutdown(s);
  return 0;
}

static int cb_frame_send(nghttp2_session *ngs, const nghttp2_frame *frame,
                         void *ud) {
  h2ws_h2_session *s = ud;
  (void)ngs;
  if (s->cb.on_frame_trace) h2ws__h2_trace(s, 1, frame);
  h2_stream *st = frame->hd.stream_id > 0
                      ? h2ws__h2_stream_get(s, frame->hd.stream_id)
                      : NULL;
  switch (frame->hd.type) {
  case NGHTTP2_WINDOW_UPDATE:
    if (st) st->credit += frame->window_update.window_size_increment;
    break;
  case NGHTTP2_DATA:
    /* each DATA frame deserves the peer's stream and connection credit */
    bucket_earn(&s->rl_window_update, 2);
    /* fall through */
  case NGHTTP2_HEADERS:
    if (st && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
      h2ws__h2_ws_local_end(s, st);
    break;
  case NGHTTP2_RST_STREAM:
    if (frame->rst_stream.error_code == NGHTTP2_REFUSED_STREAM)
      s->stats.streams_refused++;
    else if (frame->rst_stream.error_code == NGHTTP2_NO_ERROR)
      s->stats.streams_ended_early++;
    else
      s->stats.streams_reset++;
    if (st) h2ws__h2_local_end(s, st);
    break;
  case NGHTTP2_GOAWAY:
    s->stats.goaway_sent = 1;
    s->stats.goaway_error_code = frame->goaway.error_code;
    break;
  default:
    break;
  }
  return 0;
}

static int cb_frame_not_send(nghttp2_session *ngs, const nghttp2_frame *frame,
                             int lib_error_code, void *ud) {
  h2ws_h2_session *s = ud;
  (void)ngs;
  (void)lib_error_code;
  if (frame->hd.type != NGHTTP2_HEADERS || s->role != H2WS_ROLE_CLIENT)
    return 0;
  /* A request that never left (GOAWAY received, stream ids exhausted):
   * nghttp2 never opened the stream, so no close callback follows. */
  h2_stream *st = stream_find_any(s, frame->hd.stream_id);
  if (!st || h2ws__h2_stream_get(s, frame->hd.stream_id) == st) return 0;
  if (st->kind == H2_KIND_WS_CLIENT_WAIT && s->cb.on_ws_refused)
    s->cb.on_ws_refused(s, st->id, 0, H2WS_ERR_H2_GOAWAY,
                        st->creq ? h2ws__h2_creq_user_data(st->creq) : NULL,
                        s->user_data);
  if (s->cb.on_stream_close)
    s->cb.on_stream_close(s, st->id, NGHTTP2_REFUSED_STREAM, s->user_data);
  h2ws__h2_stream_free(s, st);
  return 0;
}

/* ---- construction ------------------------------------------------------- */

static int settings_valid(const h2ws_h2_settings *st) {
  if (st->stream_window < 1 || st->stream_window > 0x7fffffffu) return 0;
  if (st->stream_window_max < st->stream_window ||
      st->stream_window_max > 0x7fffffffu)
    return 0;
  if (st->connection_window < 65535 || st->connection_window > 0x7fffffffu)
    return 0;
  if (st->max_frame_size < 16384 || st->max_frame_size > 16777215) return 0;
  if (st->max_output < 32768) return 0;
  if (st->max_header_bytes < 256) return 0;
  if (st->max_header_fields < 8) return 0;
  if (st->max_concurrent_streams < 1) return 0;
  return 1;
}

int h2ws_h2_session_new(h2ws_h2_session **psession, h2ws_role role,
                        const h2ws_h2_callbacks *callbacks,
                        const h2ws_h2_settings *settings, const h2ws_mem *mem,
                        void *user_data) {
  if (!psession) return H2WS_ERR_INVALID_ARGUMENT;
  *psession = NULL;
  if (role != H2WS_ROLE_CLIENT && role != H2WS_ROLE_SERVER)
    return H2WS_ERR_INVALID_ARGUMENT;
  h2ws_h2_settings set;
  if (settings) set = *settings;
  else h2ws_h2_settings_default(&set);
  if (!settings_valid(&set)) return H2WS_ERR_INVALID_ARGUMENT;
  if (!mem) mem = h2ws__mem_default();
  h2ws_h2_session *s = h2ws__calloc(mem, 1, sizeof(*s));
  if (!s) return H2WS_ERR_NOMEM;
  s->mem = mem;
  s->role = role;
  s->set = set;
  s->user_data = user_data;
  if (callbacks) s->cb = *callbacks;
  s->outcap = set.max_output;
  s->out = h2ws__malloc(mem, s->outcap);
  if (!s->out) {
    h2ws__free(mem, s);
    return H2WS_ERR_NOMEM;
  }
  nghttp2_session_callbacks *cbs = NULL;
  nghttp2_option *opt = NULL;
  int rv = nghttp2_session_callbacks_new(&cbs);
  if (rv == 0) rv = nghttp2_option_new(&opt);
  if (rv != 0) {
    nghttp2_session_callbacks_del(cbs);
    h2ws__free(mem, s->out);
    h2ws__free(mem, s);
    return H2WS_ERR_NOMEM;
  }
  nghttp2_session_callbacks_set_send_callback(cbs, cb_send);
  nghttp2_session_callbacks_set_send_data_callback(cbs, h2ws__h2_send_data_cb);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, cb_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs, cb_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, cb_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, cb_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, cb_stream_close);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, cb_frame_send);
  nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs,
                                                           cb_frame_not_send);
  nghttp2_session_callbacks_set_on_begin_frame_callback(cbs, cb_begin_frame);
  nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(
      cbs, cb_invalid_frame);
  /* SPEC H10 / pitfall 12: WINDOW_UPDATE follows consumption, not arrival */
  nghttp2_option_set_no_auto_window_update(opt, 1);
  /* Issue 9: nghttp2's own limits where it has them.  CONTINUATION frames
   * per header block (CVE-2024-28182); the reset limiter (CVE-2023-44487)
   * only as a backstop at twice ours, since its answer is a GOAWAY
   * INTERNAL_ERROR that does not end the connection at once. */
  nghttp2_option_set_max_continuations(opt, set.max_continuations);
  if (set.max_rst_rate)
    nghttp2_option_set_stream_reset_rate_limit(opt, 2u * set.max_rst_rate,
                                               2u * set.max_rst_rate);
  nghttp2_mem ngm = {mem->user_data, mem->malloc, mem->free, mem->calloc,
                     mem->realloc};
  if (role == H2WS_ROLE_SERVER)
    rv = nghttp2_session_server_new3(&s->ngs, cbs, s, opt, &ngm);
  else
    rv = nghttp2_session_client_new3(&s->ngs, cbs, s, opt, &ngm);
  nghttp2_session_callbacks_del(cbs);
  nghttp2_option_del(opt);
  if (rv != 0) {
    h2ws__free(mem, s->out);
    h2ws__free(mem, s);
    return H2WS_ERR_NOMEM;
  }
  bucket_init(&s->rl_settings, set.max_settings_rate);
  bucket_init(&s->rl_ping, set.max_ping_rate);
  bucket_init(&s->rl_window_update, set.max_window_update_rate);
  bucket_init(&s->rl_priority, set.max_priority_rate);
  bucket_init(&s->rl_empty_data, set.max_empty_data_rate);
  bucket_init(&s->rl_rst, set.max_rst_rate);
  bucket_init(&s->rl_reset, set.max_reset_rate);
  nghttp2_settings_entry iv[7];
  size_t niv = 0;
  if (role == H2WS_ROLE_SERVER) {
    /* the wire gets set.max_concurrent_streams: see patch_settings() */
    iv[niv].settings_id = NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS;
    iv[niv++].value = H2_NGHTTP2_MAX_STREAMS;
    s->patch_settings = 1;
  } else {
    iv[niv].settings_id = NGHTTP2_SETTINGS_ENABLE_PUSH;
    iv[niv++].value = 0;
  }
  iv[niv].settings_id = NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE;
  iv[niv++].value = set.stream_window;
  iv[niv].settings_id = NGHTTP2_SETTINGS_MAX_FRAME_SIZE;
  iv[niv++].value = set.max_frame_size;
  iv[niv].settings_id = NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE;
  iv[niv++].value = (uint32_t)(set.max_header_bytes > 0x7fffffff
                                   ? 0x7fffffff
                                   : set.max_header_bytes);
  /* RFC 9218 §2.1 (issue 9 K): RFC 7540 priorities carry nothing we use;
   * nghttp2 then drops PRIORITY frames cheaply and keeps no closed
   * streams for a priority tree. */
  if (role == H2WS_ROLE_SERVER) {
    iv[niv].settings_id = NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES;
    iv[niv++].value = 1;
  }
  if (role == H2WS_ROLE_SERVER && set.enable_connect_protocol) {
    /* RFC 8441 §3 / SPEC H1: advertise only with a WebSocket route
     * (pitfall 1).  nghttp2 accepts :protocol from the moment this is
     * submitted, before the ACK (pitfall 3). */
    iv[niv].settings_id = NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL;
    iv[niv++].value = 1;
  }
  rv = nghttp2_submit_settings(s->ngs, NGHTTP2_FLAG_NONE, iv, niv);
  if (rv == 0 && set.connection_window > 65535)
    rv = nghttp2_session_set_local_window_size(s->ngs, NGHTTP2_FLAG_NONE, 0,
                                               (int32_t)set.connection_window);
  if (rv != 0) {
    nghttp2_session_del(s->ngs);
    h2ws__free(mem, s->out);
    h2ws__free(mem, s);
    return H2WS_ERR_NOMEM;
  }
  *psession = s;
  return 0;
}

void h2ws_h2_session_del(h2ws_h2_session *s) {
  if (!s) return;
  for (h2_stream *st = s->streams; st; st = st->next) st->lent = 0;
  s->vlent = s->nsegs = 0; /* nothing to settle: the bytes go too */
  while (s->streams) h2ws__h2_stream_free(s, s->streams);
  h2ws__h2_client_fail_pending(s, 0); /* 0: free without callbacks */
  nghttp2_session_del(s->ngs);
  s->ngs = NULL;
  h2ws__free(s->mem, s->out);
  h2ws__free(s->mem, s->segs);
  h2ws__free(s->mem, s);
}

/* ---- I/O entry points --------------------------------------------------- */

/* What a fatal nghttp2 return means for the connection: the GOAWAY code
 * and reason (issue 9 A: every one ends the connection at once). */
static uint32_t fatal_code(int rv, const char **preason) {
  switch (rv) {
  case NGHTTP2_ERR_BAD_CLIENT_MAGIC:
    *preason = "bad client preface"; /* RFC 9113 §3.4 */
    return NGHTTP2_PROTOCOL_ERROR;
  case NGHTTP2_ERR_FLOODED:
    *preason = "too many unread SETTINGS/PING acknowledgements";
    return NGHTTP2_ENHANCE_YOUR_CALM;
  case NGHTTP2_ERR_TOO_MANY_CONTINUATIONS:
    *preason = "CONTINUATION flood";
    return NGHTTP2_ENHANCE_YOUR_CALM;
  default:
    *preason = "protocol error";
    return NGHTTP2_PROTOCOL_ERROR;
  }
}

int h2ws_h2_session_recv(h2ws_h2_session *s, const uint8_t *data,
                         size_t datalen, size_t *pnread, uint64_t now) {
  if (pnread) *pnread = 0;
  if (!s || (!data && datalen)) return H2WS_ERR_INVALID_ARGUMENT;
  if (s->in_call) return H2WS_ERR_INVALID_STATE;
  H2_LENT_SETTLE(s); /* a stream may close (RST): no vector lent */
  if (pnread) *pnread = datalen; /* consumed, or discarded after an error */
  if (s->term) return s->term;
  if (s->fatal) return s->fatal;
  s->now = now;
  s->in_call = 1;
  s->in_recv = 1;
  s->budget_spent = 0;
  ssize_t n = nghttp2_session_mem_recv(s->ngs, data, datalen);
  s->budget_spent = 0;
  s->in_call = 0;
  s->in_recv = 0;
  if (s->conn_error) {
    /* found by the binding (a limit, the stream-id order): a callback
     * stopped nghttp2 with CALLBACK_FAILURE to get here at once */
    session_terminate(s, s->conn_error, s->conn_reason, H2WS_ERR_PROTO);
    return s->term;
  }
  if (n < 0) {
    int rv = (int)n;
    const char *reason = NULL;
    if (rv == NGHTTP2_ERR_NOMEM || rv == NGHTTP2_ERR_CALLBACK_FAILURE) {
      /* Out of memory, or an application callback failed (possibly for
       * want of memory inside an nghttp2 call it made): nghttp2 may be
       * half-way through a change, so it is used no more, not even for a
       * GOAWAY.  want_read/want_write fall to 0: the caller closes. */
      s->fatal = h2ws__h2_map_ngerr(rv);
      return s->fatal;
    }
    uint32_t code = fatal_code(rv, &reason);
    session_terminate(s, code, reason, H2WS_ERR_PROTO);
    return s->term;
  }
  if (pnread) *pnread = (size_t)n;
  return 0;
}

/* Nonzero once the connection is over: we terminated it, or nghttp2 did
 * (a connection error it answered itself, or the final GOAWAY after a
 * shutdown) and wants neither to read nor to write. */
static int session_over(const h2ws_h2_session *s) {
  return s->term || (!nghttp2_session_want_read(s->ngs) &&
                     !nghttp2_session_want_write(s->ngs));
}

/* Serializes what nghttp2 has into out (and, vectored, the pieces). */
static int session_pack(h2ws_h2_session *s, uint64_t now) {
  s->now = now;
  s->in_call = 1;
  H2_LENT_SETTLE(s); /* a vector not acknowledged: its rest first */
  if (!s->term) {
    h2ws__h2_maybe_finish_shutdown(s);
    h2ws__h2_resume_deferred(s);
  }
  out_compact(s);
  if (s->vec) {
    s->nsegs = 0;
    if (s->outlen) {
      s->segs[0].st = NULL;
      s->segs[0].len = s->outlen;
      s->nsegs = 1;
    }
  }
  int rv = nghttp2_session_send(s->ngs);
  s->in_call = 0;
  if (rv != 0) {
    s->fatal = h2ws__h2_map_ngerr(rv);
    if (s->fatal == H2WS_ERR_PROTO || s->fatal == H2WS_ERR_INVALID_STATE)
      s->fatal = H2WS_ERR_INTERNAL;
    return s->fatal;
  }
  return 0;
}

int h2ws_h2_session_send(h2ws_h2_session *s, const uint8_t **pdata,
                         size_t *pdatalen, uint64_t now) {
  if (!s || !pdata || !pdatalen) return H2WS_ERR_INVALID_ARGUMENT;
  *pdata = NULL;
  *pdatalen = 0;
  if (s->in_call) return H2WS_ERR_INVALID_STATE;
  if (s->fatal) return s->fatal;
  int rv = session_pack(s, now);
  if (rv) return rv;
  *pdata = s->out + s->outoff;
  *pdatalen = s->outlen;
  return 0;
}

int h2ws_h2_session_sendv(h2ws_h2_session *s, h2ws_h2_iov *iov,
                          size_t *piovcnt, size_t *ptotal, uint64_t now) {
  size_t cap = piovcnt ? *piovcnt : 0;
  if (piovcnt) *piovcnt = 0;
  if (ptotal) *ptotal = 0;
  if (!s || !iov || cap < 2) return H2WS_ERR_INVALID_ARGUMENT;
  if (s->in_call) return H2WS_ERR_INVALID_STATE;
  if (s->fatal) return s->fatal;
  if (cap > H2_SEGS_MAX) cap = H2_SEGS_MAX;
  if (!s->segs) {
    s->segs = h2ws__malloc(s->mem, H2_SEGS_MAX * sizeof *s->segs);
    if (!s->segs) return H2WS_ERR_NOMEM; /* not fatal: send() still works */
  }
  h2ws__h2_lent_settle(s);
  s->segmax = cap;
  s->vec = 1;
  int rv = session_pack(s, now);
  s->vec = 0;
  if (rv) {
    h2ws__h2_lent_settle(s);
    s->nsegs = 0;
    return rv;
  }
  /* resolve: own pieces in order from out + outoff, each stream's lent
   * pieces in order from the head of its engine's queue */
  const uint8_t *own = s->out + s->outoff;
  size_t total = 0;
  for (size_t k = 0; k < s->nsegs; k++)
    if (s->segs[k].st) s->segs[k].st->lent_off = 0;
  for (size_t k = 0; k < s->nsegs; k++) {
    h2_seg *g = &s->segs[k];
    if (!g->st) {
      iov[k].base = own;
      own += g->len;
    } else {
      iov[k].base = h2ws__ws_out_head(g->st->ws) + g->st->lent_off;
      g->st->lent_off += g->len;
    }
    iov[k].len = g->len;
    total += g->len;
  }
  *piovcnt = s->nsegs;
  if (ptotal) *ptotal = total;
  return 0;
}

void h2ws_h2_session_send_consumed(h2ws_h2_session *s, size_t n) {
  if (!s) return;
  if (s->nsegs == 0 || s->in_call) { /* send(), or a vector of own bytes only */
    if (n > s->outlen) n = s->outlen;
    s->outoff += n;
    s->outlen -= n;
    if (s->outlen == 0) s->outoff = 0;
    return;
  }
  /* a vector: consume its pieces in order, then settle what is left */
  size_t k = 0;
  s->in_call = 1;
  while (n > 0 && k < s->nsegs) {
    h2_seg *g = &s->segs[k];
    size_t t = g->len < n ? g->len : n;
    if (!g->st) {
      s->outoff += t;
      s->outlen -= t;
    } else {
      g->st->lent -= t;
      s->vlent -= t;
      h2ws_ws_send_consumed(g->st->ws, t);
    }
    g->len -= t;
    n -= t;
    if (g->len == 0) k++;
  }
  s->in_call = 0;
  if (k) memmove(s->segs, s->segs + k, (s->nsegs - k) * sizeof *s->segs);
  s->nsegs -= k;
  if (s->outlen == 0) s->outoff = 0;
  h2ws__h2_lent_settle(s);
  s->nsegs = 0;
}

int h2ws_h2_session_want_read(const h2ws_h2_session *s) {
  if (!s || s->fatal || s->term) return 0;
  return nghttp2_session_want_read(s->ngs) != 0;
}

int h2ws_h2_session_want_write(const h2ws_h2_session *s) {
  if (!s || s->fatal) return 0;
  if (s->outlen) return 1;
  if (nghttp2_session_want_write(s->ngs)) return 1;
  /* over: only what nghttp2 still has (the GOAWAY), never engine output
   * that nghttp2 will not send any more */
  if (session_over(s)) return 0;
  if (s->shutting_down && !s->final_goaway &&
      (!s->streams || s->now >= s->drain_deadline))
    return 1;
  return h2ws__h2_any_ready(s);
}

uint64_t h2ws_h2_session_get_expiry(const h2ws_h2_session *s) {
  uint64_t e = H2WS_NO_EXPIRY;
  if (!s || s->fatal || session_over(s)) return e;
  if (s->shutting_down && !s->final_goaway) e = s->drain_deadline;
  for (const h2_stream *st = s->streams; st; st = st->next) {
    if (st->held && st->ws) return s->now; /* fairness: due at once */
    if (st->ws) {
      uint64_t x = h2ws_ws_get_expiry(st->ws);
      if (x < e) e = x;
    }
    if (st->linger && st->linger < e) e = st->linger;
  }
  return e;
}

int h2ws_h2_session_handle_expiry(h2ws_h2_session *s, uint64_t now) {
  if (!s) return H2WS_ERR_INVALID_ARGUMENT;
  if (s->in_call) return H2WS_ERR_INVALID_STATE;
  H2_LENT_SETTLE(s);
  s->now = now;
  if (session_over(s)) return 0;
  s->in_call = 1; /* engine on_close callbacks may fire */
  h2ws__h2_resume_held(s);
  for (h2_stream *st = s->streams; st; st = st->next) {
    if (st->ws && h2ws_ws_get_expiry(st->ws) <= now)
      h2ws_ws_handle_expiry(st->ws, now);
    if (st->linger && st->linger <= now && !st->remote_eof && st->ws)
      /* Our END_STREAM went out long ago and the peer never ended its
       * side: reclaim the stream slot. */
      h2ws__h2_linger_expired(s, st);
  }
  h2ws__h2_maybe_finish_shutdown(s);
  s->in_call = 0;
  return 0;
}

void h2ws__h2_maybe_finish_shutdown(h2ws_h2_session *s) {
  if (!s->shutting_down || s->final_goaway) return;
  if (s->streams && s->now < s->drain_deadline) return;
  s->final_goaway = 1;
  /* Drain over: whatever is left is reset, then GOAWAY (NO_ERROR) with
   * the last stream we processed; nghttp2 then wants neither read nor
   * write and the runtime closes. */
  for (h2_stream *st = s->streams; st; st = st->next)
    if (st->id > 0)
      nghttp2_submit_rst_stream(s->ngs, NGHTTP2_FLAG_NONE, st->id,
                                NGHTTP2_CANCEL);
  nghttp2_submit_goaway(s->ngs, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(s->ngs),
                        NGHTTP2_NO_ERROR, NULL, 0);
}

int h2ws_h2_session_shutdown(h2ws_h2_session *s, uint64_t now,
                             uint64_t drain_ms) {
  if (!s) return H2WS_ERR_INVALID_ARGUMENT;
  s->now = now;
  if (s->shutting_down) return 0;
  s->shutting_down = 1;
  s->drain_deadline = (drain_ms > UINT64_MAX - now) ? UINT64_MAX : now + drain_ms;
  /* No GOAWAY yet, not even a shutdown notice: Firefox resets its streams
   * on GOAWAY (pitfall 16, haproxy#2789), which would cut the closing
   * handshakes short.  New streams are refused locally (REFUSED_STREAM,
   * in cb_begin_headers) until the final GOAWAY after the drain. */
  if (s->role == H2WS_ROLE_CLIENT)
    h2ws__h2_client_fail_pending(s, H2WS_ERR_H2_GOAWAY);
  for (h2_stream *st = s->streams; st; st = st->next) {
    if (st->ws) {
      /* SPEC H12: Close 1001 on every WebSocket (RFC 6455 §7.4.1) */
      h2ws_ws_submit_close(st->ws, H2WS_CLOSE_GOING_AWAY, NULL, 0, now);
    } else if (st->kind == H2_KIND_WS_REQUEST && !st->answered) {
      st->answered = 1;
      nghttp2_submit_rst_stream(s->ngs, NGHTTP2_FLAG_NONE, st->id,
                                NGHTTP2_REFUSED_STREAM);
      h2ws__h2_set_kind(s, st, H2_KIND_DONE);
    }
  }
  h2ws__h2_maybe_finish_shutdown(s);
  return 0;
}

int h2ws_h2_session_ping(h2ws_h2_session *s, const uint8_t *opaque8) {
  if (!s) return H2WS_ERR_INVALID_ARGUMENT;
  int rv = nghttp2_submit_ping(s->ngs, NGHTTP2_FLAG_NONE, opaque8);
  return rv == 0 ? 0 : h2ws__h2_map_ngerr(rv);
}

size_t h2ws_h2_session_ws_limit(const h2ws_h2_session *s) {
  if (!s) return 0;
  size_t max = h2ws__h2_max_websockets(s);
  if (s->role == H2WS_ROLE_SERVER || !s->peer_settings_seen) return max;
  uint32_t peer = nghttp2_session_get_remote_settings(
      s->ngs, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  return peer < max ? peer : max;
}

int h2ws_h2_session_peer_settings(const h2ws_h2_session *s, int *penabled) {
  if (!s) return 0;
  if (penabled) *penabled = s->peer_connect_protocol;
  return s->peer_settings_seen;
}

void h2ws_h2_session_get_stats(const h2ws_h2_session *s,
                               h2ws_h2_stats *pstats) {
  if (!pstats) return;
  if (!s) {
    memset(pstats, 0, sizeof(*pstats));
    return;
  }
  *pstats = s->stats;
}

void *h2ws_h2_session_get_user_data(const h2ws_h2_session *s) {
  return s ? s->user_data : NULL;
}

size_t h2ws_h2_session_num_ws(const h2ws_h2_session *s) {
  size_t n = 0;
  if (!s) return 0;
  for (const h2_stream *st = s->streams; st; st = st->next)
    if (st->ws) n++;
  return n;
}

h2ws_ws *h2ws_h2_get_ws(const h2ws_h2_session *s, int32_t stream_id) {
  h2_stream *st = s ? h2ws__h2_stream_get(s, stream_id) : NULL;
  return st ? st->ws : NULL;
}

int h2ws_h2_reset(h2ws_h2_session *s, int32_t stream_id,
                  uint32_t h2_error_code) {
  if (!s || !h2ws__h2_stream_get(s, stream_id))
    return H2WS_ERR_INVALID_ARGUMENT;
  int rv = nghttp2_submit_rst_stream(s->ngs, NGHTTP2_FLAG_NONE, stream_id,
                                     h2_error_code);
  return rv == 0 ? 0 : h2ws__h2_map_ngerr(rv);
}
