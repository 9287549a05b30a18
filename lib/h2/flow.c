/* lib/h2/flow.c - the stream <-> engine bridge: DATA into h2ws_ws_recv with
 * per-stream credit returned on consumption, pause/resume, window
 * auto-tuning, engine output as zero-copy DATA frames, END_STREAM /
 * RST_STREAM mapping. */
#include <string.h>
#include "h2/h2_internal.h"

/* ---- receive ---------------------------------------------------------- */

/* Keeps bytes the engine cannot take now.  The peer cannot send more than
 * the stream window we never replenished, so this is bounded by it. */
static int rbuf_append(h2ws_h2_session *s, h2_stream *st, const uint8_t *d,
                       size_t n) {
  if (n == 0) return 0;
  /* Defensive cap: nghttp2 already enforces the window (FLOW_CONTROL_ERROR
   * for an overrun), so this never triggers with a conforming nghttp2. */
  if (st->rlen + n > (size_t)s->set.stream_window_max + 65536) return -2;
  if (st->roff + st->rlen + n > st->rcap && st->roff > 0) {
    memmove(st->rbuf, st->rbuf + st->roff, st->rlen);
    st->roff = 0;
  }
  if (st->rlen + n > st->rcap) {
    size_t ncap = st->rcap ? st->rcap : 4096;
    while (ncap < st->rlen + n) ncap *= 2;
    uint8_t *p = h2ws__realloc(s->mem, st->rbuf, ncap);
    if (!p) return -1;
    st->rbuf = p;
    st->rcap = ncap;
  }
  memcpy(st->rbuf + st->roff + st->rlen, d, n);
  st->rlen += n;
  return 0;
}

static void stream_fail(h2ws_h2_session *s, h2_stream *st, uint32_t code) {
  nghttp2_submit_rst_stream(s->ngs, NGHTTP2_FLAG_NONE, st->id, code);
}

/* Feeds the engine; returns bytes used.  Stream credit goes back for what
 * the engine consumed (RFC 9113 §5.2, pitfall 12). */
static size_t ws_feed(h2ws_h2_session *s, h2_stream *st, const uint8_t *d,
                      size_t n) {
  size_t nread = 0;
  int rv = h2ws_ws_recv(st->ws, d, n, &nread, s->now);
  if (rv == H2WS_ERR_PAUSE) {
    st->paused = 1;
  } else if (rv == H2WS_ERR_WOULDBLOCK) {
    /* the engine's recv_budget: the rest waits in rbuf (its credit is
     * withheld, so the peer cannot send more than the window) until
     * handle_expiry at the next turn */
    st->held = 1;
    s->budget_spent = 1;
  } else if (rv == H2WS_ERR_INVALID_STATE) {
    nread = 0; /* reentrant call: keep the bytes for later */
    st->paused = 1;
  } else if (rv < 0) {
    /* Peer violation: the engine queued its Close (1002/1007/1009) and
     * ignores further input; its Close is flushed, then END_STREAM.  A
     * fatal engine error (callback failure, NOMEM) cannot flush: reset. */
    if (rv == H2WS_ERR_CALLBACK_FAILURE || rv == H2WS_ERR_NOMEM ||
        rv == H2WS_ERR_INTERNAL)
      stream_fail(s, st, NGHTTP2_CANCEL);
    nread = n;
  }
  if (nread) nghttp2_session_consume_stream(s->ngs, st->id, nread);
  return nread;
}

/* Auto-tuning (documented in h2ws/h2.h): the peer nearly ran out of credit
 * (as it sees it: `credit` counts what we granted on the wire minus what
 * arrived) while our reader keeps up: the window, not the reader, is the
 * limit, so double it. */
static void autotune(h2ws_h2_session *s, h2_stream *st, size_t len) {
  st->credit = st->credit > (int64_t)len ? st->credit - (int64_t)len : 0;
  if (st->window >= s->set.stream_window_max) return;
  if (st->credit >= (int64_t)(st->window / 4)) return;
  uint32_t nw = st->window * 2;
  if (nw > s->set.stream_window_max || nw < st->window)
    nw = s->set.stream_window_max;
  size_t grow = nw - st->window;
  if (s->window_grown + grow > s->set.stream_window_budget) return;
  if (nghttp2_session_set_local_window_size(s->ngs, NGHTTP2_FLAG_NONE, st->id,
                                            (int32_t)nw) == 0) {
    st->window = nw;
    s->window_grown += grow;
  }
}

int h2ws__h2_ws_data(h2ws_h2_session *s, h2_stream *st, const uint8_t *data,
                     size_t len) {
  if (st->ws && !st->paused && !st->held && st->rlen == 0 &&
      !s->budget_spent) {
    autotune(s, st, len);
    size_t used = ws_feed(s, st, data, len);
    data += used;
    len -= used;
  }
  else {
    st->credit = st->credit > (int64_t)len ? st->credit - (int64_t)len : 0;
    /* another stream spent this call's budget: fed next turn */
    if (st->ws && !st->paused && s->budget_spent) st->held = 1;
  }
  int rv = len ? rbuf_append(s, st, data, len) : 0;
  if (rv < 0) {
    nghttp2_session_consume_stream(s->ngs, st->id, len);
    stream_fail(s, st, rv == -2 ? NGHTTP2_FLOW_CONTROL_ERROR
                                : NGHTTP2_INTERNAL_ERROR);
  }
  return 0;
}

/* Nonzero when the streams in use reach 7/8 of the limit that counts
 * them: ours (server: settings.max_concurrent_streams over the client's
 * open streams) or the server's SETTINGS_MAX_CONCURRENT_STREAMS over our
 * streams (client). */
static int slots_scarce(const h2ws_h2_session *s) {
  size_t used = 0, max;
  if (s->role == H2WS_ROLE_SERVER) {
    used = s->nopen;
    max = s->set.max_concurrent_streams;
  } else {
    for (const h2_stream *st = s->streams; st; st = st->next)
      if (st->id > 0) used++;
    max = nghttp2_session_get_remote_settings(
        s->ngs, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  }
  return used >= max - max / 8;
}

static int lingering(const h2_stream *st) {
  return st->ws && st->local_end && !st->remote_eof && !st->ended_early;
}

/* RFC 9113 §8.1: after our complete answer (the WebSocket is done on our
 * side and our END_STREAM went out) RST_STREAM NO_ERROR asks the peer to
 * stop without error; it must not discard what it received. */
static void end_early(h2ws_h2_session *s, h2_stream *st) {
  st->ended_early = 1;
  st->linger = 0;
  nghttp2_submit_rst_stream(s->ngs, NGHTTP2_FLAG_NONE, st->id,
                            NGHTTP2_NO_ERROR);
}

/* Our END_STREAM went out on a WebSocket stream: the engine is done (the
 * closing handshake is over, or the WebSocket failed or timed out: it
 * reads nothing more), so the WebSocket no longer counts as live
 * (h2ws__h2_local_end, settings.max_websockets) and the stream lingers
 * for the peer's END_STREAM (pitfall 14: an early reset can make a peer
 * drop our Close).  The stream still holds a slot, for us and for the
 * peer, and a peer that never ends its side (nghttpx in front of us does
 * not once its HTTP/1.1 client left) would hold it until the linger ends:
 * while slots are plentiful it lingers up to H2_LINGER_MS; once they are
 * scarce (h2ws__h2_reclaim) a server ends lingering streams at once with
 * RST_STREAM NO_ERROR.  A client does so only when a new WebSocket needs
 * the slot (creq_submit): a server's END_STREAM follows its Close at
 * once, our reset right behind our last Close could make the server take
 * it for an abort, NO_ERROR is a server's early-response signal (RFC 9113
 * §8.1), and a pool opens another connection instead of waiting. */
void h2ws__h2_ws_local_end(h2ws_h2_session *s, h2_stream *st) {
  h2ws__h2_local_end(s, st);
  if (!lingering(st)) return;
  if (!st->linger) st->linger = s->now + H2_LINGER_MS;
  if (s->role == H2WS_ROLE_SERVER) h2ws__h2_reclaim(s);
}

void h2ws__h2_reclaim(h2ws_h2_session *s) {
  if (!slots_scarce(s)) return;
  for (h2_stream *st = s->streams; st; st = st->next)
    if (lingering(st) && st->id > 0) end_early(s, st);
}

/* The linger is over: NO_ERROR when the closing handshake completed (the
 * peer's Close arrived), CANCEL when the peer never answered ours. */
void h2ws__h2_linger_expired(h2ws_h2_session *s, h2_stream *st) {
  h2ws_ws_stats ws;
  h2ws_ws_get_stats(st->ws, &ws);
  if (ws.close_code_received) {
    end_early(s, st);
    return;
  }
  st->linger = 0;
  nghttp2_submit_rst_stream(s->ngs, NGHTTP2_FLAG_NONE, st->id,
                            NGHTTP2_CANCEL);
}

int h2ws__h2_ws_deliver(h2ws_h2_session *s, h2_stream *st) {
  if (!st->ws) return 0;
  while (!st->paused && !st->held && st->rlen > 0) {
    /* no memmove per message: a reader that pauses after every small
     * message must not cost O(buffer) each time */
    size_t used = ws_feed(s, st, st->rbuf + st->roff, st->rlen);
    if (used == 0 && !st->paused) break;
    st->roff += used;
    st->rlen -= used;
  }
  if (st->rlen == 0 && st->rbuf) {
    h2ws__free(s->mem, st->rbuf); /* nothing held by an idle stream */
    st->rbuf = NULL;
    st->roff = st->rcap = 0;
  }
  if (!st->paused && !st->held && st->rlen == 0 && st->remote_eof &&
      !st->eof_fed) {
    /* SPEC H9: END_STREAM is the orderly half-close (a TCP FIN) */
    st->eof_fed = 1;
    h2ws_ws_recv_eof(st->ws, s->now);
  }
  return st->paused ? H2WS_ERR_PAUSE : 0;
}

int h2ws__h2_ws_remote_eof(h2ws_h2_session *s, h2_stream *st) {
  st->remote_eof = 1;
  h2ws__h2_ws_deliver(s, st);
  return 0;
}

void h2ws__h2_ws_closed(h2ws_h2_session *s, h2_stream *st,
                        uint32_t error_code) {
  /* SPEC H9: RST_STREAM (or a close without the peer's END_STREAM) is an
   * abnormal closure: 1006 unless the engine already reported a close. */
  if (error_code != NGHTTP2_NO_ERROR || !st->eof_fed) h2ws_ws_abort(st->ws);
  if (s->cb.on_ws_closed)
    s->cb.on_ws_closed(s, st->id, st->ws, error_code, s->user_data);
}

int h2ws__h2_any_held(const h2ws_h2_session *s) {
  for (const h2_stream *st = s->streams; st; st = st->next)
    if (st->held) return 1;
  return 0;
}

/* One pass over the held streams after the cursor (round robin: a bomb
 * on one stream does not starve the others), then from the start. */
int h2ws__h2_resume_held(h2ws_h2_session *s) {
  s->budget_spent = 0;
  for (int pass = 0; pass < 2 && !s->budget_spent; pass++) {
    for (h2_stream *st = s->streams; st && !s->budget_spent; st = st->next) {
      if (!st->held || (pass == 0 && st->id <= s->held_cursor)) continue;
      st->held = 0;
      s->held_cursor = st->id;
      h2ws__h2_ws_deliver(s, st);
    }
    if (pass == 0 && !s->budget_spent) s->held_cursor = 0;
  }
  s->budget_spent = 0;
  return h2ws__h2_any_held(s);
}

int h2ws_h2_resume_ws(h2ws_h2_session *s, int32_t stream_id, uint64_t now) {
  if (!s) return H2WS_ERR_INVALID_ARGUMENT;
  if (s->in_call) return H2WS_ERR_INVALID_STATE;
  h2_stream *st = h2ws__h2_stream_get(s, stream_id);
  if (!st || !st->ws) return H2WS_ERR_INVALID_ARGUMENT;
  H2_LENT_SETTLE(s);
  s->now = now;
  st->paused = 0;
  s->in_call = 1;
  int rv = h2ws__h2_ws_deliver(s, st);
  s->in_call = 0;
  return rv;
}

int h2ws_h2_ws_is_paused(const h2ws_h2_session *s, int32_t stream_id) {
  h2_stream *st = s ? h2ws__h2_stream_get(s, stream_id) : NULL;
  return st ? st->paused : 0;
}

size_t h2ws_h2_ws_buffered(const h2ws_h2_session *s, int32_t stream_id) {
  h2_stream *st = s ? h2ws__h2_stream_get(s, stream_id) : NULL;
  return st ? st->rlen : 0;
}

/* ---- send ------------------------------------------------------------- */

/* Our side should END_STREAM once output is flushed: the closing handshake
 * is over (or failed), or the peer ended the stream (the engine reported
 * 1006 and reads nothing more).  Pitfall 14: never a reset here. */
static int ws_should_end(const h2_stream *st) {
  return h2ws_ws_is_done(st->ws) || st->eof_fed;
}

/* Engine output not yet framed (the lent head is, see h2_seg). */
static size_t ws_avail(const h2_stream *st) {
  return h2ws_ws_output_len(st->ws) - st->lent;
}

static int ws_ready(const h2_stream *st) {
  return st->ws && (ws_avail(st) > 0 ||
                    h2ws_ws_want_write(st->ws) || ws_should_end(st));
}

void h2ws__h2_resume_deferred(h2ws_h2_session *s) {
  for (h2_stream *st = s->streams; st; st = st->next) {
    if (st->deferred && ws_ready(st)) {
      st->deferred = 0;
      nghttp2_session_resume_data(s->ngs, st->id);
    }
  }
}

int h2ws__h2_any_ready(const h2ws_h2_session *s) {
  for (const h2_stream *st = s->streams; st; st = st->next)
    if (st->deferred && ws_ready(st)) return 1;
  return 0;
}

ssize_t h2ws__h2_ws_read_cb(nghttp2_session *ngs, int32_t id, uint8_t *buf,
                            size_t length, uint32_t *flags,
                            nghttp2_data_source *source, void *ud) {
  h2ws_h2_session *s = ud;
  (void)ngs;
  (void)buf;
  (void)source;
  h2_stream *st = h2ws__h2_stream_get(s, id);
  if (!st) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  if (!st->ws) {
    st->deferred = 1; /* client: no DATA before the 2xx */
    return NGHTTP2_ERR_DEFERRED;
  }
  size_t avail = ws_avail(st);
  if (avail == 0 && h2ws_ws_want_write(st->ws)) {
    const uint8_t *p;
    size_t n;
    /* may pull from a data source, appending (and moving the queue: the
     * lent head is kept as an offset, resolved after the batch) */
    if (h2ws_ws_send(st->ws, &p, &n, s->now) < 0)
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    avail = ws_avail(st);
  }
  if (avail > 0) {
    /* nghttp2 sized `length` from both flow-control windows and the
     * peer's SETTINGS_MAX_FRAME_SIZE (pitfall 11); WebSocket frames span
     * DATA frames freely (SPEC H8). */
    size_t n = avail < length ? avail : length;
    size_t used = s->outlen + s->vlent;
    size_t room = s->outcap > used + 9 ? s->outcap - used - 9 : 0;
    if (n > room && room >= 1024) n = room; /* fill this batch exactly */
    *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (n == avail && h2ws_ws_is_done(st->ws)) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
    }
    return (ssize_t)n;
  }
  if (ws_should_end(st)) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    return 0;
  }
  st->deferred = 1;
  return NGHTTP2_ERR_DEFERRED;
}

/* Below this a DATA payload is copied behind its header even by sendv
 * (when nothing of its stream is lent yet: the engine's queue is consumed
 * in order): a small copy costs less than a piece of the vector (over
 * TLS the runtime gathers small pieces into one record anyway). */
#define H2_LEND_MIN 1024

static int send_data_copy(h2ws_h2_session *s, h2_stream *st,
                          nghttp2_frame *frame, const uint8_t *framehd,
                          size_t length);

/* h2ws_h2_session_sendv: the DATA header (and padding) into out, the
 * payload lent from the engine's queue as a piece of the vector. */
static int send_data_lent(h2ws_h2_session *s, h2_stream *st,
                          nghttp2_frame *frame, const uint8_t *framehd,
                          size_t length) {
  size_t pad = frame->data.padlen;
  if (length < H2_LEND_MIN && st->lent == 0) {
    if (s->outlen + s->vlent + 9 + length + pad > s->outcap ||
        !h2ws__h2_seg_room(s, 1))
      return NGHTTP2_ERR_WOULDBLOCK;
    size_t before = s->outlen;
    int rv = send_data_copy(s, st, frame, framehd, length);
    if (rv == 0) h2ws__h2_seg_own(s, s->outlen - before);
    return rv;
  }
  size_t hl = 9 + (pad ? 1 : 0), tl = pad > 1 ? pad - 1 : 0;
  if (s->outlen + s->vlent + 9 + length + pad > s->outcap ||
      !h2ws__h2_seg_room(s, 1 + (length ? 1 : 0) + (tl ? 1 : 0)) ||
      h2ws__h2_out_reserve(s, hl + tl) < 0)
    return NGHTTP2_ERR_WOULDBLOCK;
  if (ws_avail(st) < length) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  uint8_t *w = s->out + s->outoff + s->outlen;
  memcpy(w, framehd, 9);
  if (pad) w[9] = (uint8_t)(pad - 1);
  s->outlen += hl;
  h2ws__h2_seg_own(s, hl);
  if (length) {
    s->segs[s->nsegs].st = st;
    s->segs[s->nsegs].len = length;
    s->nsegs++;
    st->lent += length;
    s->vlent += length;
  }
  if (tl) {
    memset(s->out + s->outoff + s->outlen, 0, tl);
    s->outlen += tl;
    h2ws__h2_seg_own(s, tl);
  }
  return 0;
}

int h2ws__h2_send_data_cb(nghttp2_session *ngs, nghttp2_frame *frame,
                          const uint8_t *framehd, size_t length,
                          nghttp2_data_source *source, void *ud) {
  h2ws_h2_session *s = ud;
  (void)ngs;
  (void)source;
  /* look the stream up again: it may have closed since the frame was
   * packed (never trust source->ptr across calls) */
  h2_stream *st = h2ws__h2_stream_get(s, frame->hd.stream_id);
  if (!st || !st->ws) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  if (s->vec) return send_data_lent(s, st, frame, framehd, length);
  return send_data_copy(s, st, frame, framehd, length);
}

/* The DATA frame whole into out: header, payload copied from the
 * engine's queue (the one copy of send()), padding. */
static int send_data_copy(h2ws_h2_session *s, h2_stream *st,
                          nghttp2_frame *frame, const uint8_t *framehd,
                          size_t length) {
  size_t pad = frame->data.padlen;
  if (h2ws__h2_out_reserve(s, 9 + length + pad) < 0)
    return NGHTTP2_ERR_WOULDBLOCK;
  if (h2ws_ws_output_len(st->ws) < length)
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  uint8_t *w = s->out + s->outoff + s->outlen;
  memcpy(w, framehd, 9);
  w += 9;
  if (pad) *w++ = (uint8_t)(pad - 1);
  size_t left = length;
  while (left > 0) {
    const uint8_t *p;
    size_t n;
    if (h2ws_ws_send(st->ws, &p, &n, s->now) < 0 || n == 0)
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (n > left) n = left;
    memcpy(w, p, n); /* the one copy of the payload */
    h2ws_ws_send_consumed(st->ws, n);
    w += n;
    left -= n;
  }
  if (pad > 1) {
    memset(w, 0, pad - 1);
    w += pad - 1;
  }
  s->outlen = (size_t)(w - (s->out + s->outoff));
  return 0;
}
