/* lib/rt/conn.c - one TCP connection: reading with pause/resume, TLS over
 * memory BIOs, batched writes (all protocol output gathered into one
 * SSL_write and one socket write per loop iteration: uv_try_write, the
 * rest by uv_write), write-queue backpressure, the per-connection timer,
 * half-close and teardown. */
#include <stdio.h>
#include <string.h>
#include <openssl/err.h>
#include "rt/internal.h"

/* Default budget of the TLS handshake and, separately, of the HTTP one. */
#define CONN_HANDSHAKE_MS 10000
/* After our FIN, how long we wait for the peer's before closing. */
#define CONN_LINGER_MS 5000
/* Cap on input kept for the protocol (incomplete heads, paused input). */
#define CONN_PENDING_CAP (1024u * 1024u)

typedef struct conn_wreq {
  uv_write_t req;
  rt_conn *c;
  size_t len;
  uint8_t *owned; /* a handed-over batch buffer, or NULL: data[] */
  uint8_t data[];
} conn_wreq;

static void conn_tls_pump(rt_conn *c);
static void conn_handle_close_cb(uv_handle_t *h);

/* ---- lists ----------------------------------------------------------- */

/* Only here so that poll does not block while connections are dirty; the
 * work happens in the loop's check callback. */
static void conn_idle_noop(uv_idle_t *h) { (void)h; }

static void conn_unlink_dirty(rt_conn *c) {
  /* is_dirty == 2: in the batch h2ws__conn_flush_all is running; it skips
   * closing connections by itself. */
  if (c->is_dirty != 1) return;
  if (c->dirty_prev) c->dirty_prev->dirty_next = c->dirty_next;
  else c->rt->dirty = c->dirty_next;
  if (c->dirty_next) c->dirty_next->dirty_prev = c->dirty_prev;
  c->dirty_next = c->dirty_prev = NULL;
  c->is_dirty = 0;
}

void h2ws__conn_mark(rt_conn *c) {
  if (!c || c->is_dirty || c->state == RT_CONN_CLOSING) return;
  c->is_dirty = 1;
  c->dirty_prev = NULL;
  c->dirty_next = c->rt->dirty;
  if (c->rt->dirty) c->rt->dirty->dirty_prev = c;
  c->rt->dirty = c;
  if (!uv_is_active((uv_handle_t *)&c->rt->idle))
    uv_idle_start(&c->rt->idle, conn_idle_noop);
}

/* ---- life ------------------------------------------------------------ */

int h2ws__conn_new(rt_conn **pc, h2ws_rt *rt, int is_client) {
  rt_conn *c = h2ws__calloc(rt->mem, 1, sizeof *c);
  if (!c) return H2WS_ERR_NOMEM;
  c->rt = rt;
  c->is_client = is_client;
  c->state = RT_CONN_CONNECTING;
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
  h2ws__free(rt->mem, c->batch);
  h2ws__free(rt->mem, c);
}

void h2ws__conn_close(rt_conn *c, int error) {
  if (c->state == RT_CONN_CLOSING) return;
  c->state = RT_CONN_CLOSING;
  conn_unlink_dirty(c);
  const rt_proto_ops *ops = c->ops;
  c->ops = NULL;
  if (ops && ops->on_close) ops->on_close(c, error);
  else if (c->on_ready && error && c->is_client) {
    /* never got to a protocol: tell the owner */
    rt_conn_ready_cb cb = c->on_ready;
    c->on_ready = NULL;
    cb(c, error);
  }
  c->proto = NULL;
  if (!c->is_client && c->owner) h2ws__server_conn_closed(c->owner);
  if (c->is_client && c->owner) h2ws__client_conn_closed(c->owner, c);
  if (c->ssl) {
    SSL_free(c->ssl); /* frees both BIOs */
    c->ssl = NULL;
  }
  uv_close((uv_handle_t *)&c->tcp, conn_handle_close_cb);
  uv_close((uv_handle_t *)&c->timer, conn_handle_close_cb);
}

void h2ws__conn_set_proto(rt_conn *c, const rt_proto_ops *ops, void *proto) {
  c->ops = ops;
  c->proto = proto;
  h2ws__conn_mark(c);
}

void h2ws__conn_alpn(rt_conn *c, char *out, size_t outlen) {
  const unsigned char *p = NULL;
  unsigned int n = 0;
  out[0] = '\0';
  if (!c->ssl) return;
  SSL_get0_alpn_selected(c->ssl, &p, &n);
  if (p && n < outlen) {
    memcpy(out, p, n);
    out[n] = '\0';
  }
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

/* Offers (data, len) to the protocol, which may take part of it, pause,
 * or switch to another protocol (then the rest goes to the new one).
 * Returns the number of bytes taken, or a negative error. */
static long conn_offer(rt_conn *c, const uint8_t *data, size_t len,
                       int *ppaused) {
  size_t off = 0;
  *ppaused = 0;
  while (c->state == RT_CONN_OPEN && c->ops) {
    const rt_proto_ops *ops = c->ops;
    size_t n = 0;
    /* servers' routing asks which connection a request arrived on */
    rt_conn *prev = c->rt->recv_conn;
    c->rt->recv_conn = c;
    int rv = ops->recv(c, data + off, len - off, &n);
    c->rt->recv_conn = prev;
    if (n > len - off) n = len - off;
    off += n;
    if (rv == H2WS_ERR_PAUSE) {
      *ppaused = 1;
      break;
    }
    if (rv < 0) return rv;
    if (off == len || c->ops == ops) break;
    /* protocol switched: the new one gets the rest */
  }
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
  if (c->pending_len > 0 || c->paused) {
    rv = conn_pending_append(c, data, len);
    if (rv < 0) return rv;
    if (c->paused) return 0;
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
  if (c->reading) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
  }
  if (!c->paused && c->state == RT_CONN_OPEN && c->ops && c->ops->on_eof) {
    c->eof_delivered = 1;
    c->ops->on_eof(c);
  }
  h2ws__conn_mark(c);
}

static void conn_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  rt_conn *c = h->data;
  (void)hint;
  buf->base = (char *)c->readbuf;
  buf->len = sizeof c->readbuf;
}

static void conn_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  rt_conn *c = s->data;
  (void)buf;
  if (c->state == RT_CONN_CLOSING) return;
  if (nread == 0) return;
  if (nread < 0) {
    if (nread == UV_EOF) {
      if (c->ssl && c->state == RT_CONN_TLS) {
        h2ws__conn_close(c, H2WS_ERR_CLOSED);
        return;
      }
      conn_eof(c);
    } else {
      h2ws__conn_close(c, H2WS_ERR_CLOSED);
    }
    return;
  }
  if (c->ssl) {
    if (BIO_write(c->rbio, c->readbuf, (int)nread) != (int)nread) {
      h2ws__conn_close(c, H2WS_ERR_NOMEM);
      return;
    }
    conn_tls_pump(c);
  } else if (c->state == RT_CONN_OPEN) {
    int rv = conn_deliver(c, c->readbuf, (size_t)nread);
    if (rv < 0) {
      h2ws__conn_close(c, rv);
      return;
    }
  }
  h2ws__conn_mark(c);
}

static void conn_start_reading(rt_conn *c) {
  if (c->reading || c->paused || c->eof_seen || c->state == RT_CONN_CLOSING)
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
  rt_conn_ready_cb cb = c->on_ready;
  c->on_ready = NULL;
  int rv = cb ? cb(c, 0) : H2WS_ERR_INTERNAL;
  if (rv < 0) h2ws__conn_close(c, rv);
  else h2ws__conn_mark(c);
}

/* Runs the TLS state machine on what is in rbio: handshake, then
 * plaintext to the protocol until it pauses or rbio is empty. */
static void conn_tls_pump(rt_conn *c) {
  if (c->closing_after_write) return;
  if (c->state == RT_CONN_TLS) {
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (r != 1) {
      int e = SSL_get_error(c->ssl, r);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        h2ws__conn_mark(c);
        return;
      }
      long vr = SSL_get_verify_result(c->ssl);
      if (vr != X509_V_OK) {
        snprintf(c->errmsg, sizeof c->errmsg,
                 "TLS certificate verification failed: %s",
                 X509_verify_cert_error_string(vr));
      } else {
        unsigned long ee = ERR_peek_last_error();
        char buf[160] = "handshake failed";
        if (ee) ERR_error_string_n(ee, buf, sizeof buf);
        snprintf(c->errmsg, sizeof c->errmsg, "TLS error: %s", buf);
      }
      ERR_clear_error();
      /* Send the alert if there is one, then close. */
      c->closing_after_write = 1;
      h2ws__conn_mark(c);
      return;
    }
    conn_ready(c);
    if (c->state != RT_CONN_OPEN) return;
  }
  /* Not stopped by eof_seen: after a pause, records still in rbio are
   * delivered before the (deferred) end of stream. */
  while (c->state == RT_CONN_OPEN && !c->paused) {
    ERR_clear_error();
    int n = SSL_read(c->ssl, c->readbuf, (int)sizeof c->readbuf);
    if (n > 0) {
      int rv = conn_deliver(c, c->readbuf, (size_t)n);
      if (rv < 0) {
        h2ws__conn_close(c, rv);
        return;
      }
      continue;
    }
    int e = SSL_get_error(c->ssl, n);
    if (e == SSL_ERROR_WANT_READ) break;
    if (e == SSL_ERROR_ZERO_RETURN) { /* close_notify */
      conn_eof(c);
      break;
    }
    ERR_clear_error();
    h2ws__conn_close(c, H2WS_ERR_PROTO);
    return;
  }
  h2ws__conn_mark(c);
}

int h2ws__conn_start(rt_conn *c, SSL_CTX *ctx, const char *host,
                     int policy) {
  uint64_t now = h2ws__rt_now(c->rt);
  if (!c->handshake_ms) c->handshake_ms = CONN_HANDSHAKE_MS;
  c->deadline = now + c->handshake_ms;
  uv_tcp_nodelay(&c->tcp, 1);
  if (!ctx) {
    conn_start_reading(c);
    conn_ready(c);
    return 0;
  }
  c->ssl = SSL_new(ctx);
  c->rbio = BIO_new(BIO_s_mem());
  c->wbio = BIO_new(BIO_s_mem());
  if (!c->ssl || !c->rbio || !c->wbio) {
    BIO_free(c->rbio);
    BIO_free(c->wbio);
    c->rbio = c->wbio = NULL;
    return H2WS_ERR_NOMEM;
  }
  /* An empty read BIO means "retry later", not end of stream. */
  BIO_set_mem_eof_return(c->rbio, -1);
  BIO_set_mem_eof_return(c->wbio, -1);
  SSL_set_bio(c->ssl, c->rbio, c->wbio);
  c->state = RT_CONN_TLS;
  if (c->is_client) {
    SSL_set_connect_state(c->ssl);
    if (h2ws__tls_client_alpn(c->ssl, policy) != 0) return H2WS_ERR_NOMEM;
    if (host) {
      X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
      if (X509_VERIFY_PARAM_set1_ip_asc(vp, host) != 1) {
        /* not an IP literal: a DNS name, for SNI and verification */
        ERR_clear_error();
        SSL_set_tlsext_host_name(c->ssl, host);
        SSL_set1_host(c->ssl, host);
      }
    }
    conn_start_reading(c);
    conn_tls_pump(c); /* produces the ClientHello */
  } else {
    SSL_set_accept_state(c->ssl);
    conn_start_reading(c);
  }
  h2ws__conn_mark(c);
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
    h2ws__conn_close(c, H2WS_ERR_CLOSED);
    return;
  }
  h2ws__conn_mark(c);
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

/* Cleartext: writes the gathered batch directly if the socket takes it
 * (the buffer stays with the connection for the next batch); otherwise
 * hands the rest to one uv_write without copying it (the buffer then
 * belongs to the write request). */
static int conn_write_batch(rt_conn *c, size_t len) {
  size_t done = conn_try_write(c, c->batch, len);
  c->nwrites++;
  if (done == len) return 0;
  conn_wreq *w = h2ws__malloc(c->rt->mem, sizeof *w);
  if (!w) return H2WS_ERR_NOMEM;
  w->c = c;
  w->len = len - done;
  w->owned = c->batch;
  c->batch_hint = c->batch_cap;
  c->batch = NULL;
  c->batch_cap = 0;
  uv_buf_t b = uv_buf_init((char *)w->owned + done, (unsigned)(len - done));
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, conn_write_cb) != 0) {
    h2ws__free(c->rt->mem, w->owned);
    h2ws__free(c->rt->mem, w);
    return H2WS_ERR_CLOSED;
  }
  c->write_bytes += w->len;
  return 0;
}

/* Moves the ciphertext TLS produced to the socket: directly if it takes
 * it, the rest into one uv_write. */
static int conn_flush_wbio(rt_conn *c) {
  size_t n = BIO_ctrl_pending(c->wbio);
  if (n == 0) return 0;
  conn_wreq *w = h2ws__malloc(c->rt->mem, sizeof *w + n);
  if (!w) return H2WS_ERR_NOMEM;
  int got = BIO_read(c->wbio, w->data, (int)n);
  if (got <= 0) {
    h2ws__free(c->rt->mem, w);
    return 0;
  }
  c->nwrites++;
  size_t done = conn_try_write(c, w->data, (size_t)got);
  if (done == (size_t)got) {
    h2ws__free(c->rt->mem, w);
    return 0;
  }
  w->owned = NULL;
  w->c = c;
  w->len = (size_t)got - done;
  uv_buf_t b = uv_buf_init((char *)w->data + done, (unsigned)w->len);
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, conn_write_cb) != 0) {
    h2ws__free(c->rt->mem, w);
    return H2WS_ERR_CLOSED;
  }
  c->write_bytes += w->len;
  return 0;
}

static int conn_batch_reserve(rt_conn *c, size_t want) {
  if (want <= c->batch_cap) return 0;
  size_t cap = c->batch_cap ? c->batch_cap
                             : c->batch_hint ? c->batch_hint : 16384;
  while (cap < want) cap *= 2;
  if (cap > RT_BATCH_CAP) cap = RT_BATCH_CAP;
  uint8_t *p = h2ws__realloc(c->rt->mem, c->batch, cap);
  if (!p) return H2WS_ERR_NOMEM;
  c->batch = p;
  c->batch_cap = cap;
  return 0;
}

/* Gathers the protocol's output (as much as the write-queue cap allows)
 * into the batch buffer.  *pdrained = 1 if the protocol had nothing more.
 * Returns bytes gathered or a negative error. */
static long conn_gather(rt_conn *c, int *pdrained) {
  size_t len = 0;
  *pdrained = 0;
  while (c->write_bytes + len < RT_WRITE_QUEUE_CAP && len < RT_BATCH_CAP &&
         c->ops) {
    const uint8_t *p;
    size_t n = 0;
    int rv = c->ops->send(c, &p, &n);
    if (rv < 0) return rv;
    if (n == 0) {
      *pdrained = 1;
      break;
    }
    size_t take = n;
    if (take > RT_BATCH_CAP - len) take = RT_BATCH_CAP - len;
    rv = conn_batch_reserve(c, len + take);
    if (rv < 0) return rv;
    memcpy(c->batch + len, p, take);
    len += take;
    c->ops->send_consumed(c, take);
  }
  return (long)len;
}

static void conn_shutdown_cb(uv_shutdown_t *req, int status) {
  rt_conn *c = req->data;
  (void)status;
  if (c->state == RT_CONN_CLOSING) return;
  c->shutdown_done = 1;
  h2ws__conn_mark(c);
}

static void conn_timer_cb(uv_timer_t *t) {
  rt_conn *c = t->data;
  uint64_t now = h2ws__rt_now(c->rt);
  if (c->state == RT_CONN_CLOSING) return;
  if (c->deadline && now >= c->deadline) {
    if (!c->errmsg[0])
      snprintf(c->errmsg, sizeof c->errmsg, "timed out (%s)",
               c->shut_down ? "closing" : "handshake");
    h2ws__conn_close(c, H2WS_ERR_TIMEOUT);
    return;
  }
  if (c->state == RT_CONN_OPEN && c->ops && c->ops->handle_expiry)
    c->ops->handle_expiry(c, now);
  h2ws__conn_mark(c);
}

static void conn_update_timer(rt_conn *c) {
  uint64_t exp = H2WS_NO_EXPIRY;
  uint64_t now = h2ws__rt_now(c->rt);
  if (c->state == RT_CONN_OPEN && c->ops && c->ops->get_expiry)
    exp = c->ops->get_expiry(c);
  if (c->deadline && c->deadline < exp) exp = c->deadline;
  if (exp == H2WS_NO_EXPIRY) {
    uv_timer_stop(&c->timer);
    return;
  }
  uv_timer_start(&c->timer, conn_timer_cb, exp > now ? exp - now : 0, 0);
}

/* One connection's work for this loop iteration. */
static void conn_flush(rt_conn *c) {
  int rv = 0;
  if (c->state == RT_CONN_CLOSING) return;
  if (c->close_requested) {
    h2ws__conn_close(c, 0);
    return;
  }
  if (c->state == RT_CONN_CONNECTING) return;
  /* Resume a paused protocol once it can take input again. */
  if (c->state == RT_CONN_OPEN && c->paused && c->ops &&
      c->ops->can_resume && c->ops->can_resume(c)) {
    c->paused = 0;
    rv = conn_run_pending(c);
    if (rv < 0) goto fail;
    if (c->state != RT_CONN_OPEN) return;
    if (!c->paused) {
      if (c->ssl) conn_tls_pump(c);
      if (c->state != RT_CONN_OPEN) return;
      if (!c->paused && c->eof_seen && !c->eof_delivered) {
        c->eof_delivered = 1;
        if (c->ops && c->ops->on_eof) c->ops->on_eof(c);
      }
      conn_start_reading(c);
    }
  }
  int drained = 1;
  uint64_t nwrites0 = c->nwrites;
  if (c->state == RT_CONN_OPEN && !c->shut_down) {
    long n = conn_gather(c, &drained);
    if (n < 0) {
      rv = (int)n;
      goto fail;
    }
    if (n > 0) {
      if (c->ssl) {
        ERR_clear_error();
        /* Memory BIO: one SSL_write takes it all (many records). */
        if (SSL_write(c->ssl, c->batch, (int)n) != (int)n) {
          rv = H2WS_ERR_INTERNAL;
          goto fail;
        }
        c->ntls_writes++;
      } else {
        rv = conn_write_batch(c, (size_t)n);
        if (rv < 0) goto fail;
      }
    }
    if (c->write_bytes == 0 && drained) {
      /* do not keep a batch buffer on an idle connection (one the socket
       * took at once stays here otherwise; a malloc per batch costs far
       * less than the memory of every idle connection) */
      if (c->batch) {
        h2ws__free(c->rt->mem, c->batch);
        c->batch = NULL;
        c->batch_cap = 0;
      }
      c->batch_hint = 0;
    }
  }
  int want_shut = c->closing_after_write ||
                  (c->state == RT_CONN_OPEN && c->ops && drained &&
                   c->ops->want_shutdown && c->ops->want_shutdown(c));
  if (c->ssl && want_shut && !c->tls_close_notify_sent &&
      c->state == RT_CONN_OPEN) {
    ERR_clear_error();
    SSL_shutdown(c->ssl); /* queues close_notify */
    ERR_clear_error();
    c->tls_close_notify_sent = 1;
  }
  if (c->ssl) {
    rv = conn_flush_wbio(c);
    if (rv < 0) goto fail;
  }
  /* What the socket took at once has no write callback to mark the
   * connection: come back (next round) if the protocol has more output
   * or waits for its output to drain before reading again. */
  if (c->nwrites != nwrites0 && c->write_bytes == 0 &&
      (!drained || c->paused))
    h2ws__conn_mark(c);
  if (want_shut && !c->shut_down) {
    c->shut_down = 1;
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp,
                    conn_shutdown_cb) != 0) {
      h2ws__conn_close(c, c->closing_after_write ? H2WS_ERR_CLOSED : 0);
      return;
    }
    uint64_t linger = h2ws__rt_now(c->rt) + CONN_LINGER_MS;
    if (!c->deadline || c->deadline > linger) c->deadline = linger;
  }
  /* Done when our side is shut down and flushed and the peer's ended
   * (or it was a failed TLS handshake: nothing more to wait for). */
  if (c->shut_down && c->shutdown_done &&
      (c->eof_seen || c->closing_after_write)) {
    h2ws__conn_close(c, c->closing_after_write ? H2WS_ERR_CLOSED : 0);
    return;
  }
  conn_update_timer(c);
  return;
fail:
  h2ws__conn_close(c, rv);
}

void h2ws__conn_flush_all(h2ws_rt *rt) {
  /* Flushing can mark other connections (e.g. a client pool); loop until
   * the list is empty, bounded to avoid livelock. */
  for (int round = 0; round < 8 && rt->dirty; round++) {
    rt_conn *list = rt->dirty;
    rt->dirty = NULL;
    for (rt_conn *c = list; c; c = c->dirty_next) c->is_dirty = 2;
    while (list) {
      rt_conn *c = list;
      list = c->dirty_next;
      if (list) list->dirty_prev = NULL;
      c->dirty_next = c->dirty_prev = NULL;
      c->is_dirty = 0;
      conn_flush(c);
    }
  }
}
