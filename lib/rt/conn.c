/* lib/rt/conn.c - one TCP connection: reading with pause/resume (into
 * the runtime's shared read buffers), the filter (TLS) between the socket
 * and the protocol, batched writes (protocol output written straight from
 * the protocol's buffer when the socket takes it, else gathered into one
 * filter send and one socket write per loop iteration: uv_try_write from
 * the runtime's scratch buffer, only the rest copied into a uv_write: no
 * allocation per message; a long read burst is answered as it goes),
 * write-queue backpressure, the per-connection timer, half-close and
 * teardown.
 * Reports to its owner through the hooks it was made with. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "rt/conn.h"

/* How long a filter keeps its work buffers after the last traffic. */
#define CONN_FILTER_IDLE_MS 1000
/* Default budget of the TLS handshake and, separately, of the HTTP one. */
#define CONN_HANDSHAKE_MS 10000
/* After our FIN, how long we wait for the peer's before closing. */
#define CONN_LINGER_MS 5000
/* Cap on input kept for the protocol (incomplete heads, paused input). */
#define CONN_PENDING_CAP (1024u * 1024u)
/* Fairness: plaintext a connection hands its protocol per loop turn.  The
 * rest waits in `pending` (reading stopped) for the next turn, so one
 * flooding peer cannot make a turn long for everyone else (issue 9 F). */
#define CONN_TURN_INPUT (256u * 1024u)
/* ... and output pulls per flush (each pull deflates at most one fragment
 * of a data source: 64 KiB). */
#define CONN_TURN_PULLS 8

typedef struct conn_wreq {
  uv_write_t req;
  rt_conn *c;
  size_t len;
  uint8_t *owned; /* a handed-over batch buffer, or NULL: data[] */
  uint8_t data[];
} conn_wreq;

static void conn_filter_pump(rt_conn *c);
/* Where one flush (or one filter call) puts the bytes for the socket: the
 * runtime's scratch buffer while the socket is free (what it does not
 * take at once is copied into the write request), or, while uv_write
 * holds earlier bytes, a buffer of the connection's own that the next
 * uv_write takes over without a copy. */
typedef struct conn_out {
  rt_obuf o; /* first: the filter sees this */
  rt_conn *c;
  int own;
} conn_out;

static void conn_out_init(rt_conn *c, conn_out *co, int own);
static void conn_out_discard(conn_out *co);
static int conn_out_emit(rt_conn *c, conn_out *co);
static void conn_handle_close_cb(uv_handle_t *h);
static void conn_flush(rt_conn *c);

/* ---- life ------------------------------------------------------------ */

static void conn_task_run(rt_task *t) {
  rt_conn *c = (rt_conn *)((char *)t - offsetof(rt_conn, task));
  conn_flush(c);
}

void h2ws__rt_conn_mark(rt_conn *c) {
  if (!c || c->state == RT_CONN_CLOSING) return;
  h2ws__rt_task_queue(c->rt, &c->task);
}

int h2ws__rt_conn_new(rt_conn **pc, h2ws_rt *rt, int is_client,
                      const rt_owner *owner, void *owner_data) {
  rt_conn *c = h2ws__calloc(rt->mem, 1, sizeof *c);
  if (!c) return H2WS_ERR_NOMEM;
  c->rt = rt;
  c->is_client = is_client;
  c->owner = owner;
  c->owner_data = owner_data;
  c->state = RT_CONN_CONNECTING;
  c->errmsg = "";
  c->task.run = conn_task_run;
  if (uv_tcp_init(&rt->loop, &c->tcp) != 0) {
    h2ws__free(rt->mem, c);
    return H2WS_ERR_INTERNAL;
  }
  uv_timer_init(&rt->loop, &c->timer);
  c->tcp.data = c;
  c->timer.data = c;
  c->handles_open = 2;
  c->all_next = rt->conns;
  if (rt->conns) rt->conns->all_prev = c;
  rt->conns = c;
  *pc = c;
  return 0;
}

static void conn_handle_close_cb(uv_handle_t *h) {
  rt_conn *c = h->data;
  if (--c->handles_open > 0) return;
  h2ws_rt *rt = c->rt;
  if (c->all_prev) c->all_prev->all_next = c->all_next;
  else rt->conns = c->all_next;
  if (c->all_next) c->all_next->all_prev = c->all_prev;
  h2ws__free(rt->mem, c->pending);
  if (c->errmsg_heap) h2ws__free(rt->mem, (char *)c->errmsg);
  h2ws__free(rt->mem, c);
  h2ws__rt_note_freed(rt);
}

void h2ws__rt_conn_close(rt_conn *c, int error) {
  if (c->state == RT_CONN_CLOSING) return;
  c->state = RT_CONN_CLOSING;
  h2ws__rt_task_cancel(c->rt, &c->task);
  const rt_proto_ops *ops = c->ops;
  c->ops = NULL;
  if (ops && ops->on_close) ops->on_close(c, error);
  c->proto = NULL;
  if (c->owner && c->owner->closed) c->owner->closed(c, error, c->owner_data);
  if (c->filter) {
    c->filter->ops->del(c->filter);
    c->filter = NULL;
  }
  uv_close((uv_handle_t *)&c->tcp, conn_handle_close_cb);
  uv_close((uv_handle_t *)&c->timer, conn_handle_close_cb);
}

void h2ws__rt_advance_clock(h2ws_rt *rt, uint64_t ms) {
  rt->clock_skew += ms;
  /* the flush re-arms each connection's timer from the new time */
  for (rt_conn *c = rt->conns; c; c = c->all_next) h2ws__rt_conn_mark(c);
}

void h2ws__rt_conn_close_later(rt_conn *c) {
  c->close_requested = 1;
  h2ws__rt_conn_mark(c);
}

void h2ws__rt_conn_hold_input(rt_conn *c) {
  c->paused = 1;
  h2ws__rt_conn_mark(c);
}

void h2ws__rt_conn_shutdown(rt_conn *c, uint64_t drain_ms) {
  if (c->state == RT_CONN_CLOSING) return;
  if (c->state == RT_CONN_OPEN && c->ops && c->ops->shutdown)
    c->ops->shutdown(c, drain_ms);
  else /* handshake or sniffing: nothing to save */
    h2ws__rt_conn_close_later(c);
}

void h2ws__rt_conn_fail(rt_conn *c, int error, const char *fmt, ...) {
  va_list ap;
  if (c->fail_error) return;
  c->fail_error = error;
  char msg[RT_CONN_ERRMSG_MAX];
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  size_t n = strlen(msg) + 1;
  char *m = h2ws__malloc(c->rt->mem, n);
  if (!m) {
    c->errmsg = "(out of memory for the reason)";
    return;
  }
  memcpy(m, msg, n);
  c->errmsg = m;
  c->errmsg_heap = 1;
}

void h2ws__rt_conn_set_proto(rt_conn *c, const rt_proto_ops *ops,
                             void *proto) {
  c->ops = ops;
  c->proto = proto;
  h2ws__rt_conn_mark(c);
}

int h2ws__rt_conn_encrypted(const rt_conn *c) { return c->filter != NULL; }

int h2ws__rt_conn_busy(rt_conn *c) {
  return c->state == RT_CONN_OPEN && c->ops && c->ops->busy && c->ops->busy(c);
}

void h2ws__rt_conn_alpn(const rt_conn *c, char *out, size_t outlen) {
  out[0] = '\0';
  if (c->filter) c->filter->ops->alpn(c->filter, out, outlen);
}

/* Traffic through the filter: it keeps its work buffers while busy. */
static void conn_filter_busy(rt_conn *c) {
  c->filter_active = h2ws__rt_now(c->rt);
  if (c->filter_busy || !c->filter->ops->hold_buffers) return;
  c->filter_busy = 1;
  c->filter->ops->hold_buffers(c->filter, 1);
}

/* ---- input ----------------------------------------------------------- */

static int conn_pending_append(rt_conn *c, const uint8_t *data, size_t len) {
  if (len == 0) return 0;
  if (c->pending_len + len > CONN_PENDING_CAP) return H2WS_ERR_TOO_LARGE;
  if (c->pending_len + len > c->pending_cap) {
    size_t cap = c->pending_cap ? c->pending_cap : 4096;
    while (cap < c->pending_len + len) cap *= 2;
    uint8_t *p = h2ws__realloc(c->rt->mem, c->pending, cap);
    if (!p) return H2WS_ERR_NOMEM;
    c->pending = p;
    c->pending_cap = cap;
  }
  memcpy(c->pending + c->pending_len, data, len);
  c->pending_len += len;
  return 0;
}

static void conn_pause(rt_conn *c) {
  c->paused = 1;
  if (c->reading) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
  }
}

/* What is left of this turn's input budget. */
static size_t conn_turn_left(rt_conn *c) {
  if (c->turn_id != c->rt->turn) {
    c->turn_id = c->rt->turn;
    c->turn_bytes = 0;
  }
  return c->turn_bytes >= CONN_TURN_INPUT ? 0 : CONN_TURN_INPUT - c->turn_bytes;
}

/* The turn's budget is spent (ours, or the protocol's: it returned
 * H2WS_ERR_WOULDBLOCK): stop reading; the timer (armed at 0 by
 * conn_update_timer) resumes at the next loop turn. */
static void conn_hold(rt_conn *c) {
  c->held = 1;
  c->held_turn = c->rt->turn;
  if (c->reading) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
  }
}

/* Offers (data, len) to the protocol, which may take part of it, pause,
 * or switch to another protocol (then the rest goes to the new one).
 * Returns the number of bytes taken, or a negative error. */
static long conn_offer(rt_conn *c, const uint8_t *data, size_t len,
                       int *ppaused) {
  size_t off = 0;
  *ppaused = 0;
  size_t left = conn_turn_left(c), all = len;
  if (len > left) len = left;
  while (c->state == RT_CONN_OPEN && c->ops && len > 0) {
    const rt_proto_ops *ops = c->ops;
    size_t n = 0;
    int rv = ops->recv(c, data + off, len - off, &n);
    if (n > len - off) n = len - off;
    off += n;
    if (rv == H2WS_ERR_PAUSE) {
      *ppaused = 1;
      break;
    }
    if (rv == H2WS_ERR_WOULDBLOCK) { /* the protocol's own budget */
      conn_hold(c);
      break;
    }
    if (rv < 0) return rv;
    if (off == len || c->ops == ops) break;
    /* protocol switched: the new one gets the rest */
  }
  c->turn_bytes += off;
  if (len < all && off == len && !*ppaused) conn_hold(c);
  return (long)off;
}

/* Delivers pending input (paused earlier or incomplete). */
static int conn_run_pending(rt_conn *c) {
  if (c->pending_len == 0) return 0;
  int paused;
  long n = conn_offer(c, c->pending, c->pending_len, &paused);
  if (n < 0) return (int)n;
  if (c->state != RT_CONN_OPEN) return 0;
  memmove(c->pending, c->pending + n, c->pending_len - (size_t)n);
  c->pending_len -= (size_t)n;
  if (paused) conn_pause(c);
  return 0;
}

static int conn_deliver(rt_conn *c, const uint8_t *data, size_t len) {
  int rv;
  if (c->pending_len > 0 || c->paused || c->held) {
    rv = conn_pending_append(c, data, len);
    if (rv < 0) return rv;
    if (c->paused || c->held) return 0;
    return conn_run_pending(c);
  }
  int paused;
  long n = conn_offer(c, data, len, &paused);
  if (n < 0) return (int)n;
  if (c->state != RT_CONN_OPEN) return 0;
  rv = conn_pending_append(c, data + n, len - (size_t)n);
  if (rv < 0) return rv;
  if (paused) conn_pause(c);
  return 0;
}

static void conn_eof(rt_conn *c) {
  if (c->eof_seen) return;
  c->eof_seen = 1;
  /* A cleartext client whose request got no byte at all before the end:
   * the usual reason is a TLS port (a TLS server drops a plaintext
   * request without an alert). */
  if (c->is_client && !c->got_bytes && !c->filter)
    h2ws__rt_conn_fail(c, H2WS_ERR_CLOSED,
                       "the server closed the connection without answering "
                       "(if this port expects TLS, try wss://)");
  if (c->reading) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
  }
  if (!c->paused && !c->held && c->state == RT_CONN_OPEN && c->ops &&
      c->ops->on_eof) {
    c->eof_delivered = 1;
    c->ops->on_eof(c);
  }
  h2ws__rt_conn_mark(c);
}

static void conn_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  rt_conn *c = h->data;
  (void)hint;
  buf->base = (char *)c->rt->rbuf[0];
  buf->len = sizeof c->rt->rbuf[0];
}

/* Up to 40 printable bytes of an answer, for a message. */
static void conn_printable(const uint8_t *d, size_t n, char *out,
                           size_t outlen) {
  size_t k = 0;
  for (size_t i = 0; i < n && k + 1 < outlen && k < 40; i++) {
    if (d[i] == '\r' || d[i] == '\n') break;
    out[k++] = d[i] >= 0x20 && d[i] < 0x7f ? (char)d[i] : '.';
  }
  out[k] = '\0';
}

/* A client's first bytes tell a wrong scheme from a broken server: the
 * answer to a ClientHello that is not a TLS record (RFC 8446 §5.1: content
 * types 20-24) means wss:// to a cleartext port; a TLS record (alert or
 * handshake, version 3.x) on a cleartext connection means ws:// to a TLS
 * port.  Says so, instead of "wrong version number" / "malformed HTTP
 * response".  Returns nonzero when the connection failed. */
static int conn_wrong_scheme(rt_conn *c, const uint8_t *d, size_t n) {
  char seen[48];
  c->got_bytes = 1;
  if (c->filter && c->state == RT_CONN_TLS && (d[0] < 0x14 || d[0] > 0x18)) {
    conn_printable(d, n, seen, sizeof seen);
    h2ws__rt_conn_fail(c, H2WS_ERR_RT_TLS,
                       "the server does not speak TLS on this port (it "
                       "answered \"%s\"): try ws://", seen);
    return 1;
  }
  if (!c->filter && n >= 2 && (d[0] == 0x15 || d[0] == 0x16) && d[1] == 0x03) {
    h2ws__rt_conn_fail(c, H2WS_ERR_RT_TLS,
                       "the server expects TLS on this port (it answered "
                       "with a TLS %s): try wss://",
                       d[0] == 0x15 ? "alert" : "handshake");
    return 1;
  }
  return 0;
}

static void conn_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  rt_conn *c = s->data;
  (void)buf;
  if (c->state == RT_CONN_CLOSING) return;
  if (nread == 0) return;
  c->last_input = h2ws__rt_now(c->rt);
  if (nread < 0) {
    if (nread == UV_EOF) {
      if (c->filter && c->state == RT_CONN_TLS) {
        h2ws__rt_conn_close(c, H2WS_ERR_CLOSED);
        return;
      }
      conn_eof(c);
    } else {
      h2ws__rt_conn_close(c, H2WS_ERR_CLOSED);
    }
    return;
  }
  const uint8_t *data = c->rt->rbuf[0];
  if (c->is_client && !c->got_bytes &&
      conn_wrong_scheme(c, data, (size_t)nread)) {
    h2ws__rt_conn_close(c, H2WS_ERR_CLOSED);
    return;
  }
  if (c->filter) {
    rt_filter *f = c->filter;
    f->ops->feed(f, data, (size_t)nread);
    conn_filter_pump(c);
    /* the read buffer is the runtime's: keep what was not read */
    if (c->state != RT_CONN_CLOSING && c->filter == f) {
      int rv = f->ops->keep(f);
      if (rv < 0) {
        h2ws__rt_conn_close(c, rv);
        return;
      }
    }
  } else if (c->state == RT_CONN_OPEN) {
    int rv = conn_deliver(c, data, (size_t)nread);
    if (rv < 0) {
      h2ws__rt_conn_close(c, rv);
      return;
    }
  }
  if (c->state == RT_CONN_CLOSING) return;
  /* A long read burst (libuv reads up to 32 buffers per wake-up) is
   * answered as it goes, not after it: the output of what was read so far
   * leaves now, so both ends keep working instead of taking turns. */
  c->read_run += (size_t)nread;
  if (c->read_run >= RT_BATCH_CAP) {
    conn_flush(c);
    return;
  }
  h2ws__rt_conn_mark(c);
}

static void conn_start_reading(rt_conn *c) {
  if (c->reading || c->paused || c->held || c->eof_seen ||
      c->state == RT_CONN_CLOSING)
    return;
  if (uv_read_start((uv_stream_t *)&c->tcp, conn_alloc_cb, conn_read_cb) == 0)
    c->reading = 1;
}

static void conn_ready(rt_conn *c) {
  c->state = RT_CONN_OPEN;
  /* A fresh budget for the HTTP-level handshake (request head, 101,
   * SETTINGS and the extended CONNECT answer): the protocol clears it
   * when its handshake is done (no slowloris). */
  c->deadline = h2ws__rt_now(c->rt) + c->handshake_ms;
  int rv = c->owner->ready(c, c->owner_data);
  if (rv < 0) h2ws__rt_conn_close(c, rv);
  else h2ws__rt_conn_mark(c);
}

/* Runs the filter on what was fed: its handshake, then plaintext to the
 * protocol until it pauses or the filter has no more. */
static void conn_filter_pump(rt_conn *c) {
  rt_filter *f = c->filter;
  if (c->closing_after_write) return;
  /* what the filter writes meanwhile (handshake flights, an alert,
   * tickets) goes out at the end of the pump */
  conn_out co;
  conn_out_init(c, &co, c->write_bytes != 0);
  if (c->state == RT_CONN_TLS) {
    char msg[RT_CONN_ERRMSG_MAX];
    int rv = f->ops->handshake(f, &co.o, msg, sizeof msg);
    if (rv == H2WS_ERR_WOULDBLOCK) {
      rv = conn_out_emit(c, &co);
      if (rv < 0) h2ws__rt_conn_close(c, rv);
      else h2ws__rt_conn_mark(c);
      return;
    }
    if (rv < 0) {
      h2ws__rt_conn_fail(c, rv, "%s", msg);
      /* Send the alert if there is one, then close. */
      c->closing_after_write = 1;
      if (conn_out_emit(c, &co) < 0) h2ws__rt_conn_close(c, H2WS_ERR_CLOSED);
      else h2ws__rt_conn_mark(c);
      return;
    }
    h2ws__rt_note_freed(c->rt);
    conn_ready(c);
    if (c->state != RT_CONN_OPEN) {
      conn_out_emit(c, &co);
      return;
    }
  }
  /* Not stopped by eof_seen: after a pause, records still in the filter
   * are delivered before the (deferred) end of stream. */
  uint8_t *plain = c->rt->rbuf[1];
  while (c->state == RT_CONN_OPEN && !c->paused && !c->held) {
    size_t n = 0;
    int rv = f->ops->recv(f, plain, sizeof c->rt->rbuf[1], &n, &co.o);
    if (rv == 0) {
      conn_filter_busy(c);
      rv = conn_deliver(c, plain, n);
      if (rv < 0) {
        conn_out_discard(&co);
        h2ws__rt_conn_close(c, rv);
        return;
      }
      continue;
    }
    if (rv == H2WS_ERR_WOULDBLOCK) break;
    if (rv == H2WS_ERR_CLOSED) { /* close_notify */
      conn_eof(c);
      break;
    }
    conn_out_discard(&co);
    h2ws__rt_conn_close(c, rv == H2WS_ERR_NOMEM ? rv : H2WS_ERR_PROTO);
    return;
  }
  int rv = conn_out_emit(c, &co);
  if (rv < 0) {
    h2ws__rt_conn_close(c, rv);
    return;
  }
  h2ws__rt_conn_mark(c);
}

int h2ws__rt_conn_start(rt_conn *c, rt_filter *filter) {
  uint64_t now = h2ws__rt_now(c->rt);
  if (!c->handshake_ms) c->handshake_ms = CONN_HANDSHAKE_MS;
  c->deadline = now + c->handshake_ms;
  uv_tcp_nodelay(&c->tcp, 1);
  c->filter = filter;
  if (!filter) {
    conn_start_reading(c);
    conn_ready(c);
    return 0;
  }
  c->state = RT_CONN_TLS;
  conn_start_reading(c);
  if (c->is_client) conn_filter_pump(c); /* produces the ClientHello */
  h2ws__rt_conn_mark(c);
  return 0;
}

int h2ws__rt_conn_accept(rt_conn *c, uv_stream_t *listener) {
  if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0)
    return H2WS_ERR_CLOSED;
  c->last_input = h2ws__rt_now(c->rt);
  struct sockaddr_storage ss;
  int sl = sizeof ss;
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0) {
    if (ss.ss_family == AF_INET)
      uv_ip4_name((struct sockaddr_in *)&ss, c->peer, sizeof c->peer);
    else
      uv_ip6_name((struct sockaddr_in6 *)&ss, c->peer, sizeof c->peer);
  }
  return 0;
}

/* The connect's outcome: the filter waits in c->filter (not started). */
static void conn_connect_cb(uv_connect_t *req, int status) {
  rt_conn *c = req->data;
  if (status == UV_ECANCELED || c->state == RT_CONN_CLOSING) return;
  rt_filter *f = c->filter;
  c->filter = NULL;
  if (status < 0) {
    c->filter = f; /* freed by the close */
    if (status == UV_ECONNREFUSED)
      h2ws__rt_conn_fail(c, H2WS_ERR_RT_CONNECT_REFUSED, "connection refused");
    else
      h2ws__rt_conn_fail(c, H2WS_ERR_RT_CONNECT, "%s", uv_strerror(status));
    h2ws__rt_conn_close(c, H2WS_ERR_CLOSED);
    return;
  }
  int rv = h2ws__rt_conn_start(c, f);
  if (rv < 0) h2ws__rt_conn_close(c, rv);
}

int h2ws__rt_conn_connect(rt_conn *c, const struct sockaddr *addr,
                          rt_filter *filter) {
  c->filter = filter; /* kept until connected (freed if closed before) */
  c->connect_req.data = c;
  int r = uv_tcp_connect(&c->connect_req, &c->tcp, addr, conn_connect_cb);
  if (r != 0) {
    int err = r == UV_ECONNREFUSED ? H2WS_ERR_RT_CONNECT_REFUSED
                                   : H2WS_ERR_RT_CONNECT;
    h2ws__rt_conn_fail(c, err, "%s", err == H2WS_ERR_RT_CONNECT_REFUSED
                                          ? "connection refused"
                                          : uv_strerror(r));
    h2ws__rt_conn_close(c, H2WS_ERR_CLOSED);
    return err;
  }
  return 0;
}

/* ---- output ---------------------------------------------------------- */

static void conn_write_cb(uv_write_t *req, int status) {
  conn_wreq *w = (conn_wreq *)req;
  rt_conn *c = w->c;
  c->write_bytes -= w->len;
  h2ws__free(c->rt->mem, w->owned);
  h2ws__free(c->rt->mem, w);
  if (c->state == RT_CONN_CLOSING) return;
  if (status < 0) {
    h2ws__rt_conn_close(c, H2WS_ERR_CLOSED);
    return;
  }
  h2ws__rt_conn_mark(c);
}

/* Writes what the socket takes now (uv_try_write: no request, no POLLOUT
 * re-arm, hence no epoll_ctl per message) and returns how many bytes went
 * out, 0 if none.  Only when nothing is queued in libuv (ordering): the
 * rest goes to uv_write after it.  An error other than EAGAIN is left to
 * uv_write, whose callback reports it as before. */
static size_t conn_try_write(rt_conn *c, const uint8_t *data, size_t len) {
  if (c->write_bytes != 0 || len == 0) return 0;
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
  int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
  return n > 0 ? (size_t)n : 0;
}

/* Hands w (len bytes at data) to one uv_write. */
static int conn_uv_write(rt_conn *c, conn_wreq *w, uint8_t *data,
                         size_t len) {
  w->c = c;
  w->len = len;
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, conn_write_cb) != 0) {
    h2ws__free(c->rt->mem, w->owned);
    h2ws__free(c->rt->mem, w);
    return H2WS_ERR_CLOSED;
  }
  c->write_bytes += len;
  return 0;
}

/* Writes (data, len), which lives in a buffer lent for this flush: what
 * the socket takes at once costs nothing more; only the rest is copied,
 * into the write request that keeps it. */
static int conn_write_lent(rt_conn *c, const uint8_t *data, size_t len) {
  size_t done = conn_try_write(c, data, len);
  c->nwrites++;
  if (done == len) return 0;
  size_t rest = len - done;
  conn_wreq *w = h2ws__malloc(c->rt->mem, sizeof *w + rest);
  if (!w) return H2WS_ERR_NOMEM;
  memcpy(w->data, data + done, rest);
  w->owned = NULL;
  return conn_uv_write(c, w, w->data, rest);
}

/* Below this a chunk of protocol output is gathered before it goes through
 * the filter (one record for many small frames); from it on, the filter
 * protects it where it lies (no copy: records of 16 KiB). */
#define CONN_FILTER_DIRECT 16384
/* Pieces of one vectored pull (rt_proto_ops.sendv). */
#define CONN_IOV 64

/* What the socket takes of a vector at once (one writev). */
static size_t conn_try_writev(rt_conn *c, const h2ws_h2_iov *iov,
                              size_t cnt) {
  uv_buf_t b[CONN_IOV];
  if (c->write_bytes != 0 || cnt == 0) return 0;
  for (size_t i = 0; i < cnt; i++)
    b[i] = uv_buf_init((char *)iov[i].base, (unsigned)iov[i].len);
  int n = uv_try_write((uv_stream_t *)&c->tcp, b, (unsigned)cnt);
  return n > 0 ? (size_t)n : 0;
}

static int conn_out_grow(rt_obuf *o, size_t want) {
  conn_out *co = (conn_out *)o;
  rt_conn *c = co->c;
  if (want <= o->cap) return 0;
  size_t cap = o->cap ? o->cap : c->batch_hint ? c->batch_hint : 16384;
  while (cap < want) cap *= 2;
  uint8_t *p = co->own ? h2ws__realloc(c->rt->mem, o->buf, cap)
                       : h2ws__rt_scratch(c->rt, 1, cap);
  if (!p) return -1;
  o->buf = p;
  o->cap = cap;
  return 0;
}

static void conn_out_init(rt_conn *c, conn_out *co, int own) {
  memset(co, 0, sizeof *co);
  co->c = c;
  co->own = own;
  co->o.grow = conn_out_grow;
  if (!own) {
    co->o.buf = c->rt->scratch[1];
    co->o.cap = c->rt->scratch_cap[1];
  }
}

static void conn_out_discard(conn_out *co) {
  if (co->own) h2ws__free(co->c->rt->mem, co->o.buf);
  co->o.buf = NULL;
  co->o.len = co->o.cap = 0;
}

/* Sends what co holds: the scratch buffer through uv_try_write (only the
 * rest is copied), an own buffer handed to uv_write as it is. */
static int conn_out_emit(rt_conn *c, conn_out *co) {
  if (co->o.len == 0 || c->state == RT_CONN_CLOSING) {
    conn_out_discard(co);
    return 0;
  }
  if (!co->own) return conn_write_lent(c, co->o.buf, co->o.len);
  conn_wreq *w = h2ws__malloc(c->rt->mem, sizeof *w);
  if (!w) {
    conn_out_discard(co);
    return H2WS_ERR_NOMEM;
  }
  c->nwrites++;
  w->owned = co->o.buf;
  c->batch_hint = co->o.cap;
  return conn_uv_write(c, w, co->o.buf, co->o.len);
}

/* Gathers the protocol's output (as much as the write-queue cap allows)
 * and puts it into co: cleartext written straight from the protocol's
 * buffer while the socket takes it, else copied into co; over a filter,
 * large chunks protected where they lie and small ones gathered first
 * (the runtime's other scratch buffer).  *pdrained = 1 if the protocol
 * had nothing more.  Returns plaintext bytes taken or a negative error. */
static long conn_gather(rt_conn *c, conn_out *co, int *pdrained) {
  size_t len = 0, glen = 0;
  uint8_t *g = NULL;
  int rv = 0;
  *pdrained = 0;
  c->out_more = 0;
  for (int pulls = 0; c->write_bytes + len < RT_WRITE_QUEUE_CAP &&
                      len < RT_BATCH_CAP && c->ops; pulls++) {
    if (pulls == CONN_TURN_PULLS) {
      /* Fairness: output that costs more than it weighs (a compressed
       * source of zeros) goes on at the next turn. */
      c->out_more = 1;
      break;
    }
    /* A pull: a vector whose pieces are written where they lie
     * (cleartext: one writev; over a filter large pieces protected in
     * place, small ones gathered into one record), or one buffer as a
     * vector of one; acknowledged whole. */
    h2ws_h2_iov iov[CONN_IOV];
    size_t cnt = CONN_IOV, tot = 0;
    if (c->ops->sendv) {
      rv = c->ops->sendv(c, iov, &cnt, &tot);
      if (rv < 0) return rv;
    } else {
      const uint8_t *p;
      size_t n = 0;
      rv = c->ops->send(c, &p, &n);
      if (rv < 0) return rv;
      if (n > RT_BATCH_CAP - len) n = RT_BATCH_CAP - len;
      iov[0].base = p;
      iov[0].len = n;
      cnt = 1;
      tot = n;
    }
    if (tot == 0) {
      *pdrained = 1;
      break;
    }
    size_t i = 0, skip = 0;
    if (!c->filter && co->o.len == 0 && !co->own && c->write_bytes == 0) {
      /* straight from the protocol's buffers: no copy of what the socket
       * takes; the rest waits in a buffer the write request takes over */
      size_t done = conn_try_writev(c, iov, cnt);
      c->nwrites++;
      if (done < tot) {
        co->own = 1;
        co->o.buf = NULL;
        co->o.cap = 0;
        if (conn_out_grow(&co->o, tot - done) < 0) return H2WS_ERR_NOMEM;
      }
      for (; i < cnt && done >= iov[i].len; i++) done -= iov[i].len;
      skip = done;
    }
    for (; i < cnt; i++, skip = 0) {
      const uint8_t *q = iov[i].base + skip;
      size_t ql = iov[i].len - skip;
      if (c->filter && ql >= CONN_FILTER_DIRECT) {
        if (glen) {
          rv = c->filter->ops->send(c->filter, g, glen, &co->o);
          if (rv < 0) return rv;
          c->nfilter_writes++;
          glen = 0;
        }
        rv = c->filter->ops->send(c->filter, q, ql, &co->o);
        if (rv < 0) return rv;
        c->nfilter_writes++;
      } else if (c->filter) {
        g = h2ws__rt_scratch(c->rt, 0, glen + ql);
        if (!g) return H2WS_ERR_NOMEM;
        memcpy(g + glen, q, ql);
        glen += ql;
      } else {
        if (conn_out_grow(&co->o, co->o.len + ql) < 0) return H2WS_ERR_NOMEM;
        memcpy(co->o.buf + co->o.len, q, ql);
        co->o.len += ql;
      }
    }
    len += tot;
    c->ops->send_consumed(c, tot);
  }
  if (glen) {
    rv = c->filter->ops->send(c->filter, g, glen, &co->o);
    if (rv < 0) return rv;
    c->nfilter_writes++;
  }
  if (c->filter && len) conn_filter_busy(c);
  return (long)len;
}

static void conn_shutdown_cb(uv_shutdown_t *req, int status) {
  rt_conn *c = req->data;
  (void)status;
  if (c->state == RT_CONN_CLOSING) return;
  c->shutdown_done = 1;
  h2ws__rt_conn_mark(c);
}

static void conn_timer_cb(uv_timer_t *t) {
  rt_conn *c = t->data;
  uint64_t now = h2ws__rt_now(c->rt);
  if (c->state == RT_CONN_CLOSING) return;
  if (c->held && c->held_turn != c->rt->turn) {
    /* A new turn: the held input goes on (conn_flush). */
    conn_flush(c);
    if (c->state == RT_CONN_CLOSING) return;
  }
  if (c->deadline && now >= c->deadline) {
    h2ws__rt_conn_fail(c, H2WS_ERR_TIMEOUT, "timed out (%s)",
                       c->shut_down ? "closing" : "handshake");
    h2ws__rt_conn_close(c, H2WS_ERR_TIMEOUT);
    return;
  }
  if (c->filter_busy && now >= c->filter_active + CONN_FILTER_IDLE_MS) {
    c->filter_busy = 0;
    c->filter->ops->hold_buffers(c->filter, 0);
    h2ws__rt_note_freed(c->rt);
  }
  if (c->state == RT_CONN_OPEN && c->ops && c->ops->handle_expiry)
    c->ops->handle_expiry(c, now);
  h2ws__rt_conn_mark(c);
}

static void conn_update_timer(rt_conn *c) {
  uint64_t exp = H2WS_NO_EXPIRY;
  uint64_t now = h2ws__rt_now(c->rt);
  if (c->state == RT_CONN_OPEN && c->ops && c->ops->get_expiry)
    exp = c->ops->get_expiry(c);
  if (c->deadline && c->deadline < exp) exp = c->deadline;
  if (c->filter_busy && c->filter_active + CONN_FILTER_IDLE_MS < exp)
    exp = c->filter_active + CONN_FILTER_IDLE_MS;
  if (c->held || c->out_more) exp = now; /* next turn */
  if (exp == H2WS_NO_EXPIRY) {
    uv_timer_stop(&c->timer);
    return;
  }
  uv_timer_start(&c->timer, conn_timer_cb, exp > now ? exp - now : 0, 0);
}

/* One connection's work for this loop iteration (its task). */
static void conn_flush(rt_conn *c) {
  int rv = 0;
  if (c->state == RT_CONN_CLOSING) return;
  if (c->close_requested) {
    h2ws__rt_conn_close(c, 0);
    return;
  }
  if (c->state == RT_CONN_CONNECTING) return;
  /* Resume a paused protocol once it can take input again, and held
   * input once a new turn began. */
  int resume = 0;
  if (c->state == RT_CONN_OPEN && c->held && c->held_turn != c->rt->turn) {
    c->held = 0;
    resume = !c->paused;
  }
  if (c->state == RT_CONN_OPEN && !c->held && c->paused && c->ops &&
      c->ops->can_resume && c->ops->can_resume(c)) {
    c->paused = 0;
    resume = 1;
  }
  if (resume) {
    rv = conn_run_pending(c);
    if (rv < 0) goto fail;
    if (c->state != RT_CONN_OPEN) return;
    if (!c->paused && !c->held) {
      if (c->filter) conn_filter_pump(c);
      if (c->state != RT_CONN_OPEN) return;
      if (!c->paused && !c->held && c->eof_seen && !c->eof_delivered) {
        c->eof_delivered = 1;
        if (c->ops && c->ops->on_eof) c->ops->on_eof(c);
      }
      conn_start_reading(c);
    }
  }
  int drained = 1;
  uint64_t nwrites0 = c->nwrites;
  c->read_run = 0;
  conn_out co;
  conn_out_init(c, &co, c->write_bytes != 0);
  if (c->state == RT_CONN_OPEN && !c->shut_down) {
    long n = conn_gather(c, &co, &drained);
    if (n < 0) {
      conn_out_discard(&co);
      rv = (int)n;
      goto fail;
    }
  }
  int want_shut = c->closing_after_write ||
                  (c->state == RT_CONN_OPEN && c->ops && drained &&
                   c->ops->want_shutdown && c->ops->want_shutdown(c));
  if (c->filter && want_shut && !c->filter_shut &&
      c->state == RT_CONN_OPEN) {
    c->filter->ops->shutdown(c->filter, &co.o);
    c->filter_shut = 1;
  }
  rv = conn_out_emit(c, &co);
  if (rv < 0) goto fail;
  if (c->write_bytes == 0 && drained) c->batch_hint = 0;
  /* What the socket took at once has no write callback to mark the
   * connection: come back (next round) if the protocol has more output
   * or waits for its output to drain before reading again. */
  if (c->nwrites != nwrites0 && c->write_bytes == 0 &&
      (!drained || c->paused) && !c->out_more)
    h2ws__rt_conn_mark(c);
  if (want_shut && !c->shut_down) {
    c->shut_down = 1;
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp,
                    conn_shutdown_cb) != 0) {
      h2ws__rt_conn_close(c, c->closing_after_write ? H2WS_ERR_CLOSED : 0);
      return;
    }
    uint64_t linger = h2ws__rt_now(c->rt) + CONN_LINGER_MS;
    if (!c->deadline || c->deadline > linger) c->deadline = linger;
  }
  /* Done when our side is shut down and flushed and the peer's ended
   * (or it was a failed TLS handshake: nothing more to wait for). */
  if (c->shut_down && c->shutdown_done &&
      (c->eof_seen || c->closing_after_write)) {
    h2ws__rt_conn_close(c, c->closing_after_write ? H2WS_ERR_CLOSED : 0);
    return;
  }
  conn_update_timer(c);
  return;
fail:
  h2ws__rt_conn_close(c, rv);
}
