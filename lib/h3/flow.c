/* lib/h3/flow.c - the QUIC stream <-> engine bridge: DATA into
 * h2ws_ws_recv with stream credit (MAX_STREAM_DATA) returned on
 * consumption, pause/resume, window auto-tuning within a budget, engine
 * output copied once into a per-stream send queue held until the peer
 * acknowledges it, FIN after the closing handshake, resets as 1006. */
#include <string.h>
#include "h3/h3_internal.h"

/* ---- receive ---------------------------------------------------------- */

/* Bytes the engine cannot take now; bounded by the stream window we do
 * not replenish (QUIC refuses more: FLOW_CONTROL_ERROR). */
static int rbuf_append(h2ws_h3_session *s, h3_stream *st, const uint8_t *d,
                       size_t n) {
  if (n == 0) return 0;
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

/* Feeds the engine; stream credit goes back for what it consumed (RFC
 * 9000 §4.1, pitfall 12). */
static size_t ws_feed(h2ws_h3_session *s, h3_stream *st, const uint8_t *d,
                      size_t n) {
  size_t nread = 0;
  int rv = h2ws_ws_recv(st->ws, d, n, &nread, s->now);
  if (rv == H2WS_ERR_PAUSE) {
    st->paused = 1;
  } else if (rv == H2WS_ERR_WOULDBLOCK) {
    /* the engine's recv_budget is spent (issue 9 F): the rest waits, as
     * after a pause, until h2ws_h3_resume_ws() (the runtime's next turn) */
    st->paused = 1;
  } else if (rv == H2WS_ERR_INVALID_STATE) {
    nread = 0;
    st->paused = 1;
  } else if (rv < 0) {
    /* a peer violation: the engine queued its Close (1002/1007/1009), it
     * is flushed, then FIN; a fatal engine error cannot flush: reset */
    if (rv == H2WS_ERR_CALLBACK_FAILURE || rv == H2WS_ERR_NOMEM ||
        rv == H2WS_ERR_INTERNAL)
      h2ws__h3_stream_reset(s, st, H2WS_H3_REQUEST_CANCELLED, 0);
    nread = n;
  }
  if (nread) ngtcp2_conn_extend_max_stream_offset(s->conn, st->id, nread);
  return nread;
}

/* As on HTTP/2 (h2ws/h3.h): the peer nearly ran out of credit while our
 * reader keeps up: the window is the limit, double it. */
static void autotune(h2ws_h3_session *s, h3_stream *st, size_t len) {
  st->credit = st->credit > (int64_t)len ? st->credit - (int64_t)len : 0;
  if (st->window >= s->set.stream_window_max) return;
  if (st->credit >= (int64_t)(st->window / 4)) return;
  uint32_t nw = st->window * 2;
  if (nw > s->set.stream_window_max || nw < st->window)
    nw = s->set.stream_window_max;
  size_t grow = nw - st->window;
  if (s->window_grown + grow > s->set.stream_window_budget) return;
  ngtcp2_conn_extend_max_stream_offset(s->conn, st->id, grow);
  st->window = nw;
  st->credit += (int64_t)grow;
  s->window_grown += grow;
}

int h2ws__h3_ws_data(h2ws_h3_session *s, h3_stream *st, const uint8_t *data,
                     size_t len) {
  if (st->ws && !st->paused && st->rlen == 0) {
    autotune(s, st, len);
    size_t used = ws_feed(s, st, data, len);
    /* what the engine consumed was credited back: the peer has it again */
    st->credit += (int64_t)used;
    data += used;
    len -= used;
  } else {
    st->credit = st->credit > (int64_t)len ? st->credit - (int64_t)len : 0;
  }
  if (len && rbuf_append(s, st, data, len) < 0) return H2WS_ERR_NOMEM;
  return 0;
}

int h2ws__h3_ws_deliver(h2ws_h3_session *s, h3_stream *st) {
  if (!st->ws) return 0;
  while (!st->paused && st->rlen > 0) {
    size_t used = ws_feed(s, st, st->rbuf + st->roff, st->rlen);
    if (used == 0 && !st->paused) break;
    st->credit += (int64_t)used;
    st->roff += used;
    st->rlen -= used;
  }
  if (st->rlen == 0 && st->rbuf) {
    h2ws__free(s->mem, st->rbuf); /* nothing held by an idle stream */
    st->rbuf = NULL;
    st->roff = st->rcap = 0;
  }
  if (!st->paused && st->rlen == 0 && st->remote_eof && !st->eof_fed) {
    /* SPEC H9 / RFC 9220 §3: the FIN is the orderly half-close */
    st->eof_fed = 1;
    h2ws_ws_recv_eof(st->ws, s->now);
  }
  return st->paused ? H2WS_ERR_PAUSE : 0;
}

void h2ws__h3_ws_closed(h2ws_h3_session *s, h3_stream *st, uint64_t code) {
  /* SPEC H9: a reset (or an end without the peer's FIN) is abnormal */
  if (code != NGHTTP3_H3_NO_ERROR || !st->eof_fed) h2ws_ws_abort(st->ws);
  if (s->cb.on_ws_closed)
    s->cb.on_ws_closed(s, st->id, st->ws, code, s->user_data);
}

int h2ws_h3_resume_ws(h2ws_h3_session *s, int64_t id, uint64_t now) {
  if (!s) return H2WS_ERR_INVALID_ARGUMENT;
  if (s->in_call) return H2WS_ERR_INVALID_STATE;
  h3_stream *st = h2ws__h3_stream_find(s, id);
  if (!st || !st->ws) return H2WS_ERR_INVALID_ARGUMENT;
  s->now = now;
  st->paused = 0;
  s->in_call = 1;
  int rv = h2ws__h3_ws_deliver(s, st);
  s->in_call = 0;
  return rv;
}

int h2ws_h3_ws_is_paused(const h2ws_h3_session *s, int64_t id) {
  h3_stream *st = s ? h2ws__h3_stream_find(s, id) : NULL;
  return st ? st->paused : 0;
}

size_t h2ws_h3_ws_buffered(const h2ws_h3_session *s, int64_t id) {
  h3_stream *st = s ? h2ws__h3_stream_find(s, id) : NULL;
  return st ? st->rlen : 0;
}

size_t h2ws_h3_ws_unacked(const h2ws_h3_session *s, int64_t id) {
  h3_stream *st = s ? h2ws__h3_stream_find(s, id) : NULL;
  if (!st || !st->ws) return 0;
  return h2ws_ws_output_len(st->ws) + (size_t)(st->q_written - st->q_acked);
}

/* ---- send queue ------------------------------------------------------- */

static h3_chunk *chunk_get(h2ws_h3_session *s) {
  h3_chunk *c = s->pool;
  if (c) {
    s->pool = c->next;
    s->npool--;
  } else {
    c = h2ws__malloc(s->mem, sizeof(*c));
    if (!c) return NULL;
  }
  c->next = NULL;
  return c;
}

static void chunk_put(h2ws_h3_session *s, h3_chunk *c) {
  if (s->npool >= H3_POOL_MAX) {
    h2ws__free(s->mem, c);
    return;
  }
  c->next = s->pool;
  s->pool = c;
  s->npool++;
}

void h2ws__h3_pool_free(h2ws_h3_session *s) {
  while (s->pool) {
    h3_chunk *c = s->pool;
    s->pool = c->next;
    h2ws__free(s->mem, c);
  }
  s->npool = 0;
}

void h2ws__h3_queue_free(h2ws_h3_session *s, h3_stream *st) {
  while (st->qhead) {
    h3_chunk *c = st->qhead;
    st->qhead = c->next;
    chunk_put(s, c);
  }
  st->qtail = NULL;
}

/* Copies engine output into the queue, up to stream_send_buffer held:
 * the one copy of the payload on this path (QUIC may retransmit it). */
static int queue_fill(h2ws_h3_session *s, h3_stream *st) {
  while (st->q_written - st->q_acked < s->set.stream_send_buffer) {
    const uint8_t *p;
    size_t n;
    if (h2ws_ws_output_len(st->ws) == 0 && !h2ws_ws_want_write(st->ws)) break;
    if (h2ws_ws_send(st->ws, &p, &n, s->now) < 0) return -1;
    if (n == 0) break;
    size_t off = (size_t)(st->q_written - st->q_base) % H3_CHUNK;
    if (!st->qtail || off == 0) { /* empty queue, or the tail is full */
      h3_chunk *c = chunk_get(s);
      if (!c) return -1;
      if (st->qtail) st->qtail->next = c;
      else st->qhead = c;
      st->qtail = c;
    }
    size_t room = H3_CHUNK - off;
    size_t left = s->set.stream_send_buffer - (size_t)(st->q_written - st->q_acked);
    if (n > room) n = room;
    if (n > left) n = left;
    memcpy(st->qtail->data + off, p, n);
    h2ws_ws_send_consumed(st->ws, n);
    st->q_written += n;
  }
  return 0;
}

nghttp3_ssize h2ws__h3_ws_read_data(nghttp3_conn *conn, int64_t id,
                                    nghttp3_vec *vec, size_t veccnt,
                                    uint32_t *pflags, void *ud, void *sud) {
  h2ws_h3_session *s = ud;
  h3_stream *st = sud;
  (void)conn;
  (void)id;
  if (!st || !st->ws) {
    /* client: no WebSocket bytes before the 2xx */
    if (st) st->wouldblock = 1;
    return NGHTTP3_ERR_WOULDBLOCK;
  }
  if (queue_fill(s, st) < 0) return NGHTTP3_ERR_CALLBACK_FAILURE;
  size_t k = 0;
  /* hand out [q_given, q_written), one vector per chunk */
  h3_chunk *c = st->qhead;
  uint64_t base = st->q_base;
  while (c && k < veccnt && st->q_given < st->q_written) {
    uint64_t end = base + H3_CHUNK;
    if (st->q_given < end) {
      uint64_t stop = st->q_written < end ? st->q_written : end;
      vec[k].base = c->data + (st->q_given - base);
      vec[k].len = (size_t)(stop - st->q_given);
      st->q_given = stop;
      k++;
    }
    base = end;
    c = c->next;
  }
  /* SPEC H9 / pitfall 14: FIN once the engine is done and all it wrote
   * is handed out; never a reset here */
  if (h2ws_ws_is_done(st->ws) && h2ws_ws_output_len(st->ws) == 0 &&
      !h2ws_ws_want_write(st->ws) && st->q_given == st->q_written) {
    *pflags |= NGHTTP3_DATA_FLAG_EOF;
    st->fin_given = 1;
    h2ws__h3_local_end(s, st);
    return (nghttp3_ssize)k;
  }
  if (k == 0) {
    st->wouldblock = 1;
    return NGHTTP3_ERR_WOULDBLOCK;
  }
  return (nghttp3_ssize)k;
}

void h2ws__h3_ws_acked(h2ws_h3_session *s, h3_stream *st, uint64_t n) {
  st->q_acked += n;
  if (st->q_acked > st->q_given) st->q_acked = st->q_given;
  /* fully acknowledged chunks go back to the pool */
  while (st->qhead && st->q_acked >= st->q_base + H3_CHUNK) {
    h3_chunk *c = st->qhead;
    st->qhead = c->next;
    if (!st->qhead) st->qtail = NULL;
    st->q_base += H3_CHUNK;
    chunk_put(s, c);
  }
  if (st->q_acked == st->q_written && st->qhead) {
    /* nothing held: an idle WebSocket keeps no chunk */
    h2ws__h3_queue_free(s, st);
    st->q_base = st->q_written;
  }
}

/* Streams nghttp3 was told WOULDBLOCK that have something now. */
void h2ws__h3_resume_ready(h2ws_h3_session *s) {
  for (h3_stream *st = s->streams; st; st = st->next) {
    if (!st->wouldblock || !st->ws || st->fin_given) continue;
    int room = st->q_written - st->q_acked < s->set.stream_send_buffer;
    int has = st->q_given < st->q_written ||
              (room && (h2ws_ws_output_len(st->ws) > 0 ||
                        h2ws_ws_want_write(st->ws))) ||
              h2ws_ws_is_done(st->ws);
    if (has) {
      st->wouldblock = 0;
      nghttp3_conn_resume_stream(s->h3, st->id);
    }
  }
}
