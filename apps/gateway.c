/* apps/gateway.c - the WebSocket gateway: a client WebSocket (HTTP/2 or
 * HTTP/1.1) paired with one backend WebSocket (ws://, wss:// through the
 * runtime's client: an HTTP/1.1 connection of its own, or a stream of a
 * shared HTTP/2 connection with --backend-h2) or TCP connection (tcp://,
 * on the loop with libuv), answered only once the backend is ready
 * (deferred accept), messages, closes and backpressure forwarded both
 * ways. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>
#include "gateway.h"
#include "kit.h"

#define GW_MAX_PROTOS 16
#define GW_TCP_READ 65536
/* An HTTP/2 backend connection without WebSockets stays this long, for
 * the next one (below the usual servers' keep-alive timeouts, e.g.
 * Hypercorn's 5 s). */
#define GW_BACKEND_IDLE_MS 2000

/* The runtime's client of the backends: one per set of client settings,
 * shared by the routes that use them, so that WebSockets of all routes to
 * one HTTP/2 backend share its connection (its pool keeps one connection
 * per origin). */
typedef struct gw_client {
  struct gw_client *next;
  h2ws_client *client; /* NULL once aborted */
  int insecure;
  char cafile[1024];
  size_t max_message, ws_budget;
} gw_client;

typedef struct gw_route {
  struct gw_route *next;
  struct gateway *gw;
  h2ws_rt *rt;
  gateway_options opts;
  char url[1024];
  int is_tcp;
  char host[256]; /* tcp:// */
  int port;
  int append_path; /* ws URL path ends with '/' */
  gw_client *client; /* ws://, wss:// */
  char path[1024];  /* the server route it belongs to */
  char vhost[256];  /* "" any :authority / Host, else this name */
} gw_route;

/* A message kept while the side it goes to is full: streamed to it
 * (h2ws_rt_ws_send_source) as its output budget makes room, while the
 * side it came from is paused. */
typedef struct gw_msg {
  h2ws_opcode op;
  uint8_t *data;
  size_t len, off;
  struct gw_pair *pair;
} gw_msg;

typedef struct gw_pair {
  struct gw_pair *next, *prev; /* gw_pairs */
  gw_route *route;
  uint64_t id;
  h2ws_rt_ws_request *req; /* until answered or cancelled */
  h2ws_rt_ws *front;       /* after accept, until its on_close */
  h2ws_rt_ws *back;        /* ws backend: until on_close / on_fail */
  int front_done, back_done, back_open;
  int front_paused, back_paused; /* we returned PAUSE on that side */
  gw_msg to_back, to_front;      /* pending (other side was full) */
  char path[2048];               /* for logs */
  /* timer */
  uv_timer_t timer;
  int timer_open;
  /* tcp backend */
  uv_tcp_t tcp;
  uv_connect_t connect;
  uv_shutdown_t shutdown;
  int tcp_shutting;
  uv_getaddrinfo_t gai;
  int tcp_open;      /* handle initialised, not closed yet */
  int tcp_connected, tcp_reading, gai_pending;
  size_t tcp_inflight; /* bytes in uv_write */
  uint8_t *rbuf;
} gw_pair;

struct gateway {
  h2ws_server *srv;
  h2ws_rt *rt;
  gw_route *routes;
  gw_client *clients;
  gw_pair *pairs; /* every live pair (gateway_abort_backends) */
  uint64_t next_id;
};

void gateway_options_default(gateway_options *o) {
  memset(o, 0, sizeof *o);
  o->backend_timeout_ms = 10000;
  o->max_message = KIT_DEFAULT_MAX_MESSAGE;
  o->ws_budget = 2u << 20;
}

int gateway_new(gateway **pgw, h2ws_server *srv) {
  if (!pgw || !srv) return H2WS_ERR_INVALID_ARGUMENT;
  gateway *gw = calloc(1, sizeof *gw);
  if (!gw) return H2WS_ERR_NOMEM;
  gw->srv = srv;
  gw->rt = h2ws_server_rt(srv);
  *pgw = gw;
  return 0;
}

static void gw_log(gw_pair *p, const char *fmt, ...) {
  va_list ap;
  if (!p->route->opts.verbose) return;
  fprintf(stderr, "h2ws proxy: #%llu %s -> %s: ", (unsigned long long)p->id,
          p->path, p->route->url);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

static void gw_msg_clear(gw_msg *m) {
  free(m->data);
  memset(m, 0, sizeof *m);
}

static int gw_msg_keep(gw_msg *m, h2ws_opcode op, const uint8_t *d,
                       size_t n) {
  m->data = malloc(n ? n : 1);
  if (!m->data) return H2WS_ERR_NOMEM;
  if (n) memcpy(m->data, d, n);
  m->len = n;
  m->off = 0;
  m->op = op;
  return 0;
}

static void gw_resume_front(struct gw_pair *p);
static void gw_resume_back(struct gw_pair *p);

/* The kept message's source: pulled as the destination's output budget
 * makes room; at its end the side it came from reads again. */
static int gw_msg_read(h2ws_rt_ws *ws, uint8_t *buf, size_t buflen,
                       size_t *pnwritten, int *peof, void *ud);

/* ---- life of a pair ----------------------------------------------------- */

static void gw_timer_closed(uv_handle_t *h) {
  gw_pair *p = h->data;
  p->timer_open = 0;
}

static void gw_tcp_closed(uv_handle_t *h);

static void gw_maybe_free(gw_pair *p) {
  if (!p->front_done || !p->back_done) return;
  if (p->timer_open) {
    if (!uv_is_closing((uv_handle_t *)&p->timer))
      uv_close((uv_handle_t *)&p->timer, gw_timer_closed);
    return; /* called again from the close callback */
  }
  if (p->tcp_open || p->gai_pending) return;
  gw_msg_clear(&p->to_back);
  gw_msg_clear(&p->to_front);
  if (p->prev) p->prev->next = p->next;
  else p->route->gw->pairs = p->next;
  if (p->next) p->next->prev = p->prev;
  free(p->rbuf);
  free(p);
}

static void gw_timer_closed_free(uv_handle_t *h) {
  gw_pair *p = h->data;
  p->timer_open = 0;
  gw_maybe_free(p);
}

static void gw_stop_timer(gw_pair *p) {
  if (p->timer_open && !uv_is_closing((uv_handle_t *)&p->timer))
    uv_close((uv_handle_t *)&p->timer, gw_timer_closed_free);
}

/* Copies a close reason into a NUL-terminated string (<= 123 bytes). */
static void gw_reason(char *out, const uint8_t *r, size_t n) {
  if (n > 123) n = 123;
  if (r && n) memcpy(out, r, n);
  out[n] = '\0';
  /* an embedded NUL would cut it short: acceptable, still UTF-8 */
}

/* Answers the client 502 (backend unusable) if it is still waiting. */
static void gw_refuse(gw_pair *p, const char *why) {
  gw_log(p, "502 (%s)", why);
  if (p->req) {
    h2ws_rt_ws_request *req = p->req;
    p->req = NULL;
    p->front_done = 1;
    h2ws_rt_ws_refuse(req, 502);
  }
  gw_stop_timer(p);
}

static const h2ws_rt_ws_callbacks gw_front_cbs;

/* The backend is ready: answer the client. */
static int gw_accept(gw_pair *p, const char *subprotocol) {
  h2ws_rt_ws_request *req = p->req;
  h2ws_rt_accept a;
  h2ws_rt_accept_default(&a);
  a.subprotocol = subprotocol;
  a.callbacks = &gw_front_cbs;
  a.user_data = p;
  h2ws_rt_ws *ws = NULL;
  p->req = NULL;
  gw_stop_timer(p);
  int rv = h2ws_rt_ws_accept(req, &a, &ws);
  if (rv != 0) {
    /* a deferred request is consumed either way: the client got 500 */
    p->front_done = 1;
    gw_log(p, "accept failed: %s", h2ws_strerror(rv));
    return rv;
  }
  if (!p->front_done) {
    p->front = ws;
    if (p->back)
      gw_log(p, "open (%s, stream %d; backend %s, stream %d)",
             kit_transport_name(h2ws_rt_ws_transport(ws)),
             (int)h2ws_rt_ws_stream_id(ws),
             kit_transport_name(h2ws_rt_ws_transport(p->back)),
             (int)h2ws_rt_ws_stream_id(p->back));
    else
      gw_log(p, "open (%s, stream %d)",
             kit_transport_name(h2ws_rt_ws_transport(ws)),
             (int)h2ws_rt_ws_stream_id(ws));
  }
  return 0;
}

/* ---- front (the client's WebSocket) --------------------------------------- */

static void gw_tcp_end(gw_pair *p);
static void gw_tcp_finish(gw_pair *p);
static int gw_tcp_write(gw_pair *p, const uint8_t *d, size_t n);
static void gw_tcp_read_start(gw_pair *p);

static int gw_front_msg(h2ws_rt_ws *ws, h2ws_opcode op, const uint8_t *d,
                        size_t n, void *ud) {
  gw_pair *p = ud;
  (void)ws;
  if (p->route->is_tcp) {
    if (!p->tcp_connected) return 0;
    if (gw_tcp_write(p, d, n) != 0) return 0;
    /* pause the client while the backend does not take its bytes */
    if (p->tcp_inflight > p->route->opts.ws_budget) {
      p->front_paused = 1;
      return H2WS_ERR_PAUSE;
    }
    return 0;
  }
  if (!p->back || !p->back_open || p->back_done) return 0; /* closing */
  int rv = h2ws_rt_ws_send(p->back, op, d, n);
  if (rv == H2WS_ERR_BUFFER_FULL) {
    /* the backend's output budget is full (or the message is larger
     * than it): stream a copy while the client waits */
    h2ws_rt_source src = {gw_msg_read, &p->to_back};
    if (gw_msg_keep(&p->to_back, op, d, n) != 0 ||
        h2ws_rt_ws_send_source(p->back, op, &src) != 0) {
      gw_msg_clear(&p->to_back);
      h2ws_rt_ws_close(p->back, H2WS_CLOSE_INTERNAL_ERROR, "out of memory");
      return 0;
    }
    p->to_back.pair = p;
    p->front_paused = 1;
    return H2WS_ERR_PAUSE;
  }
  return 0;
}

static int gw_msg_read(h2ws_rt_ws *ws, uint8_t *buf, size_t buflen,
                       size_t *pnwritten, int *peof, void *ud) {
  gw_msg *m = ud;
  gw_pair *p = m->pair;
  (void)ws;
  size_t n = m->len - m->off;
  if (n > buflen) n = buflen;
  if (n) memcpy(buf, m->data + m->off, n);
  m->off += n;
  *pnwritten = n;
  if (m->off == m->len) {
    *peof = 1;
    gw_msg_clear(m);
    if (m == &p->to_back) gw_resume_front(p);
    else gw_resume_back(p);
  }
  return 0;
}

static void gw_resume_front(gw_pair *p) {
  if (!p->front_paused) return;
  p->front_paused = 0;
  if (p->front && !p->front_done) h2ws_rt_ws_resume(p->front);
}

/* The backend's bytes or messages flow again. */
static void gw_resume_back(gw_pair *p) {
  if (!p->back_paused) return;
  p->back_paused = 0;
  if (p->route->is_tcp) gw_tcp_read_start(p);
  else if (p->back && !p->back_done) h2ws_rt_ws_resume(p->back);
}

static void gw_front_close(h2ws_rt_ws *ws, uint16_t code, const uint8_t *r,
                           size_t rl, void *ud) {
  gw_pair *p = ud;
  char reason[124];
  (void)ws;
  p->front = NULL;
  p->front_done = 1;
  if (p->route->is_tcp) {
    gw_tcp_finish(p);
  } else if (p->back && p->back_open && !p->back_done) {
    /* RFC 6455 §7.4: 1005 / 1006 never go on the wire */
    if (code == H2WS_CLOSE_NO_STATUS) {
      h2ws_rt_ws_close(p->back, 0, NULL);
    } else if (code == H2WS_CLOSE_ABNORMAL || code == 1015) {
      h2ws_rt_ws_close(p->back, H2WS_CLOSE_GOING_AWAY, "client gone");
    } else {
      gw_reason(reason, r, rl);
      if (h2ws_rt_ws_close(p->back, code, reason) ==
          H2WS_ERR_INVALID_ARGUMENT)
        h2ws_rt_ws_close(p->back, H2WS_CLOSE_NORMAL, NULL);
    }
  }
  gw_log(p, "client closed %u", (unsigned)code);
  gw_maybe_free(p);
}

static const h2ws_rt_ws_callbacks gw_front_cbs = {
    .on_message = gw_front_msg,
    .on_close = gw_front_close,
};

/* Sends a backend message to the client; pauses the backend if full. */
static int gw_to_front(gw_pair *p, h2ws_opcode op, const uint8_t *d,
                       size_t n) {
  if (!p->front || p->front_done) return 0;
  int rv = h2ws_rt_ws_send(p->front, op, d, n);
  if (rv == H2WS_ERR_BUFFER_FULL) {
    /* the client's output budget is full: stream a copy while the
     * backend waits */
    h2ws_rt_source src = {gw_msg_read, &p->to_front};
    if (gw_msg_keep(&p->to_front, op, d, n) != 0 ||
        h2ws_rt_ws_send_source(p->front, op, &src) != 0) {
      gw_msg_clear(&p->to_front);
      h2ws_rt_ws_close(p->front, H2WS_CLOSE_INTERNAL_ERROR, "out of memory");
      return 0;
    }
    p->to_front.pair = p;
    p->back_paused = 1;
    return H2WS_ERR_PAUSE;
  }
  return 0;
}

/* ---- ws:// backend --------------------------------------------------------- */

static void gw_back_open(h2ws_rt_ws *ws, void *ud) {
  gw_pair *p = ud;
  p->back_open = 1;
  if (!p->req) {
    /* the client left (or timed out) while we waited */
    h2ws_rt_ws_close(ws, H2WS_CLOSE_GOING_AWAY, "client gone");
    return;
  }
  if (gw_accept(p, h2ws_rt_ws_subprotocol(ws)) != 0)
    h2ws_rt_ws_close(ws, H2WS_CLOSE_GOING_AWAY, "client gone");
}

static int gw_back_msg(h2ws_rt_ws *ws, h2ws_opcode op, const uint8_t *d,
                       size_t n, void *ud) {
  (void)ws;
  return gw_to_front(ud, op, d, n);
}

static void gw_back_close(h2ws_rt_ws *ws, uint16_t code, const uint8_t *r,
                          size_t rl, void *ud) {
  gw_pair *p = ud;
  char reason[124];
  (void)ws;
  p->back = NULL;
  p->back_done = 1;
  gw_log(p, "backend closed %u", (unsigned)code);
  if (p->front && !p->front_done) {
    if (code == H2WS_CLOSE_NO_STATUS) {
      h2ws_rt_ws_close(p->front, 0, NULL);
    } else if (code == H2WS_CLOSE_ABNORMAL || code == 1015) {
      /* 1006 cannot be sent: the client learns it with 1011 */
      h2ws_rt_ws_close(p->front, H2WS_CLOSE_INTERNAL_ERROR,
                       "backend closed abnormally");
    } else {
      gw_reason(reason, r, rl);
      if (h2ws_rt_ws_close(p->front, code, reason) ==
          H2WS_ERR_INVALID_ARGUMENT)
        h2ws_rt_ws_close(p->front, H2WS_CLOSE_INTERNAL_ERROR, NULL);
    }
  }
  gw_maybe_free(p);
}

static void gw_back_fail(h2ws_rt_ws *ws, int error, int status,
                         const char *msg, void *ud) {
  gw_pair *p = ud;
  (void)ws;
  (void)error; /* the client is refused with 502 whatever the reason */
  (void)status;
  p->back = NULL;
  p->back_done = 1;
  gw_refuse(p, msg);
  gw_maybe_free(p);
}

static const h2ws_rt_ws_callbacks gw_back_cbs = {
    .on_open = gw_back_open,
    .on_message = gw_back_msg,
    .on_close = gw_back_close,
    .on_fail = gw_back_fail,
};

/* Splits the client's offered subprotocols ("a, b") into tokens. */
static size_t gw_split_protos(const char *s, size_t n, char *buf,
                              size_t bufcap, const char **out, size_t max) {
  size_t k = 0, used = 0;
  size_t i = 0;
  while (i < n && k < max) {
    while (i < n && (s[i] == ',' || s[i] == ' ' || s[i] == '\t')) i++;
    size_t st = i;
    while (i < n && s[i] != ',' && s[i] != ' ' && s[i] != '\t') i++;
    size_t len = i - st;
    if (!len) continue;
    if (used + len + 1 > bufcap) break;
    memcpy(buf + used, s + st, len);
    buf[used + len] = '\0';
    out[k++] = buf + used;
    used += len + 1;
  }
  return k;
}

static int gw_open_ws_backend(gw_pair *p, const h2ws_ws_request *v) {
  gw_route *rt = p->route;
  char url[4096];
  if (rt->append_path) {
    const char *cp = v->path;
    size_t cl = v->pathlen;
    if (cl && cp[0] == '/') cp++, cl--;
    if (strlen(rt->url) + cl + 1 > sizeof url) return H2WS_ERR_INVALID_ARGUMENT;
    snprintf(url, sizeof url, "%s%.*s", rt->url, (int)cl, cp);
  } else {
    snprintf(url, sizeof url, "%s", rt->url);
  }
  char pbuf[1024], origin[1024];
  const char *protos[GW_MAX_PROTOS];
  size_t np = 0;
  if (v->protocols)
    np = gw_split_protos(v->protocols, v->protocolslen, pbuf, sizeof pbuf,
                         protos, GW_MAX_PROTOS);
  h2ws_client_ws_options o;
  h2ws_client_ws_options_default(&o);
  /* --backend-h2: an extended CONNECT stream on the route's shared
   * HTTP/2 connection (h2c prior knowledge for ws://, ALPN h2 for
   * wss://), sent only once the backend's SETTINGS allow it (the
   * runtime's client waits for them); else HTTP/1.1, or none (only) */
  o.policy = rt->opts.backend_h2 == GATEWAY_BACKEND_H2_ONLY
                 ? H2WS_RT_POLICY_H2
             : rt->opts.backend_h2 == GATEWAY_BACKEND_H2
                 ? H2WS_RT_POLICY_PREFER_H2
                 : H2WS_RT_POLICY_H1;
  o.compress = 0;
  o.subprotocols = np ? protos : NULL;
  o.nsubprotocols = np;
  if (v->origin && v->originlen < sizeof origin) {
    memcpy(origin, v->origin, v->originlen);
    origin[v->originlen] = '\0';
    o.origin = origin;
  }
  return h2ws_client_open(rt->client->client, url, &o, &gw_back_cbs, p,
                          &p->back);
}

/* ---- tcp:// backend -------------------------------------------------------- */

typedef struct gw_write {
  uv_write_t req;
  gw_pair *p;
  size_t len;
  uint8_t data[];
} gw_write;

static void gw_tcp_closed(uv_handle_t *h) {
  gw_pair *p = h->data;
  p->tcp_open = 0;
  gw_maybe_free(p);
}

static void gw_tcp_shut(gw_pair *p) {
  if (p->tcp_open && !uv_is_closing((uv_handle_t *)&p->tcp))
    uv_close((uv_handle_t *)&p->tcp, gw_tcp_closed);
}

/* The backend's TCP side is over (EOF, error, or the client left). */
static void gw_tcp_end(gw_pair *p) {
  p->back_done = 1;
  gw_tcp_shut(p);
}

static void gw_tcp_shutdown_done(uv_shutdown_t *req, int status) {
  gw_pair *p = req->data;
  (void)status;
  gw_tcp_end(p);
}

/* The client closed: what it sent before its Close still reaches the
 * service (uv_shutdown waits for the queued writes), then FIN and the
 * end of the connection. */
static void gw_tcp_finish(gw_pair *p) {
  if (!p->tcp_open || uv_is_closing((uv_handle_t *)&p->tcp) ||
      p->tcp_shutting)
    return;
  if (p->tcp_connected) {
    p->shutdown.data = p;
    if (uv_shutdown(&p->shutdown, (uv_stream_t *)&p->tcp,
                    gw_tcp_shutdown_done) == 0) {
      p->tcp_shutting = 1;
      return;
    }
  }
  gw_tcp_end(p);
}

static void gw_tcp_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  gw_pair *p = h->data;
  (void)hint;
  if (!p->rbuf) p->rbuf = malloc(GW_TCP_READ);
  b->base = (char *)p->rbuf;
  b->len = p->rbuf ? GW_TCP_READ : 0;
}

static void gw_tcp_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  gw_pair *p = s->data;
  (void)b;
  if (n == 0) return;
  if (n < 0) {
    /* websockify-style: the service closed its side: a normal end */
    uv_read_stop(s);
    p->tcp_reading = 0;
    if (p->front && !p->front_done)
      h2ws_rt_ws_close(p->front,
                       n == UV_EOF ? H2WS_CLOSE_NORMAL
                                   : H2WS_CLOSE_INTERNAL_ERROR,
                       n == UV_EOF ? NULL : "backend connection lost");
    gw_tcp_end(p);
    gw_maybe_free(p);
    return;
  }
  if (gw_to_front(p, H2WS_OP_BINARY, p->rbuf, (size_t)n) == H2WS_ERR_PAUSE) {
    uv_read_stop(s);
    p->tcp_reading = 0;
  }
}

static void gw_tcp_read_start(gw_pair *p) {
  if (p->tcp_connected && !p->tcp_reading && p->tcp_open &&
      !uv_is_closing((uv_handle_t *)&p->tcp)) {
    if (uv_read_start((uv_stream_t *)&p->tcp, gw_tcp_alloc, gw_tcp_read) == 0)
      p->tcp_reading = 1;
  }
}

static void gw_tcp_written(uv_write_t *w, int status) {
  gw_write *gw = (gw_write *)w;
  gw_pair *p = gw->p;
  p->tcp_inflight -= gw->len;
  free(gw);
  if (status < 0) return; /* the read side reports the end */
  if (p->front_paused && p->tcp_inflight <= p->route->opts.ws_budget / 2) {
    p->front_paused = 0;
    if (p->front && !p->front_done) h2ws_rt_ws_resume(p->front);
  }
}

static int gw_tcp_write(gw_pair *p, const uint8_t *d, size_t n) {
  if (!p->tcp_open || uv_is_closing((uv_handle_t *)&p->tcp) || !n) return 0;
  gw_write *w = malloc(sizeof *w + n);
  if (!w) return H2WS_ERR_NOMEM;
  w->p = p;
  w->len = n;
  memcpy(w->data, d, n);
  uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)n);
  if (uv_write(&w->req, (uv_stream_t *)&p->tcp, &b, 1, gw_tcp_written) != 0) {
    free(w);
    return H2WS_ERR_INTERNAL;
  }
  p->tcp_inflight += n;
  return 0;
}

static void gw_tcp_connected(uv_connect_t *c, int status) {
  gw_pair *p = c->data;
  if (status < 0) {
    gw_refuse(p, uv_strerror(status));
    gw_tcp_end(p);
    return;
  }
  p->tcp_connected = 1;
  if (!p->req) { /* client gone or timed out */
    gw_tcp_end(p);
    return;
  }
  if (gw_accept(p, NULL) != 0) {
    gw_tcp_end(p);
    return;
  }
  gw_tcp_read_start(p);
}

static void gw_tcp_resolved(uv_getaddrinfo_t *g, int status,
                            struct addrinfo *ai) {
  gw_pair *p = g->data;
  p->gai_pending = 0;
  if (status < 0 || !ai || !p->req) {
    gw_refuse(p, status < 0 ? uv_strerror(status) : "client gone");
    p->back_done = 1;
    if (ai) uv_freeaddrinfo(ai);
    gw_maybe_free(p);
    return;
  }
  uv_loop_t *loop = h2ws_rt_uv_loop(p->route->rt);
  uv_tcp_init(loop, &p->tcp);
  p->tcp.data = p;
  p->tcp_open = 1;
  p->connect.data = p;
  int rv = uv_tcp_connect(&p->connect, &p->tcp, ai->ai_addr,
                          gw_tcp_connected);
  uv_freeaddrinfo(ai);
  if (rv != 0) {
    gw_refuse(p, uv_strerror(rv));
    gw_tcp_end(p);
  }
}

static int gw_open_tcp_backend(gw_pair *p) {
  char port[16];
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  snprintf(port, sizeof port, "%d", p->route->port);
  p->gai.data = p;
  int rv = uv_getaddrinfo(h2ws_rt_uv_loop(p->route->rt), &p->gai,
                          gw_tcp_resolved, p->route->host, port, &hints);
  if (rv != 0) return H2WS_ERR_INTERNAL;
  p->gai_pending = 1;
  return 0;
}

/* ---- requests ----------------------------------------------------------- */

static void gw_timeout(uv_timer_t *t) {
  gw_pair *p = t->data;
  gw_refuse(p, "backend timed out");
  if (p->route->is_tcp && p->tcp_open && !p->tcp_connected) gw_tcp_end(p);
  /* ws: the runtime's client ends its attempt on its own budget; its
   * on_open / on_fail then finds the client gone */
  gw_maybe_free(p);
}

static void gw_cancel(h2ws_rt_ws_request *req, void *ud) {
  gw_pair *p = ud;
  (void)req;
  p->req = NULL;
  p->front_done = 1;
  gw_log(p, "client left before the backend answered");
  gw_stop_timer(p);
  if (p->route->is_tcp && p->tcp_open && !p->tcp_connected) gw_tcp_end(p);
  gw_maybe_free(p);
}

/* Nonzero if the request's authority names vhost: "name" matches the
 * authority's host part whatever its port, "name:port" the whole
 * authority; ASCII case-insensitive.  Routing only: the authority is never
 * connected to (SPEC pitfall 10). */
static int gw_host_match(const char *vhost, const char *a, size_t alen) {
  size_t vl = strlen(vhost);
  if (alen == vl && strncasecmp(a, vhost, vl) == 0) return 1;
  size_t hl = alen;
  if (alen && a[0] == '[') {
    const char *rb = memchr(a, ']', alen);
    if (rb) hl = (size_t)(rb - a) + 1;
  } else {
    const char *colon = memchr(a, ':', alen);
    if (colon) hl = (size_t)(colon - a);
  }
  return hl == vl && strncasecmp(a, vhost, vl) == 0;
}

/* The route for this request among those sharing the server route of
 * `head`: a vhost match first, else the one for any host. */
static gw_route *gw_pick_path(gateway *gw, const char *path,
                              const h2ws_ws_request *v) {
  gw_route *any = NULL;
  for (gw_route *r = gw->routes; r; r = r->next) {
    if (strcmp(r->path, path) != 0) continue;
    if (!r->vhost[0]) {
      if (!any) any = r;
    } else if (v->authority &&
               gw_host_match(r->vhost, v->authority, v->authoritylen)) {
      return r;
    }
  }
  return any;
}

/* ... and when no route of that path fits the host, those of "/" (what
 * --to registers). */
static gw_route *gw_pick(gw_route *head, const h2ws_ws_request *v) {
  gw_route *r = gw_pick_path(head->gw, head->path, v);
  if (!r && strcmp(head->path, "/") != 0) r = gw_pick_path(head->gw, "/", v);
  return r;
}

static void gw_on_request(h2ws_rt_ws_request *req, void *ud) {
  const h2ws_ws_request *v = h2ws_rt_ws_request_view(req);
  gw_route *rt = gw_pick(ud, v);
  if (!rt) {
    h2ws_rt_ws_refuse(req, 404); /* no route for this host */
    return;
  }
  gw_pair *p = calloc(1, sizeof *p);
  if (!p) {
    h2ws_rt_ws_refuse(req, 503);
    return;
  }
  gateway *gw = rt->gw;
  p->route = rt;
  p->id = ++gw->next_id;
  p->next = gw->pairs;
  if (gw->pairs) gw->pairs->prev = p;
  gw->pairs = p;
  size_t pl = v->pathlen < sizeof p->path - 1 ? v->pathlen
                                              : sizeof p->path - 1;
  memcpy(p->path, v->path, pl);
  /* Pitfall 9: the client is answered only once the backend is. */
  if (h2ws_rt_ws_defer(req, gw_cancel, p) != 0) {
    p->front_done = p->back_done = 1;
    gw_maybe_free(p); /* unlinks */
    h2ws_rt_ws_refuse(req, 503);
    return;
  }
  p->req = req;
  uv_timer_init(h2ws_rt_uv_loop(rt->rt), &p->timer);
  p->timer.data = p;
  p->timer_open = 1;
  uv_timer_start(&p->timer, gw_timeout, rt->opts.backend_timeout_ms, 0);
  int rv;
  if (rt->is_tcp) {
    rv = gw_open_tcp_backend(p);
    if (rv != 0) p->back_done = 1;
  } else if (!rt->client->client) {
    rv = H2WS_ERR_INVALID_STATE; /* backends aborted */
  } else {
    v = h2ws_rt_ws_request_view(req); /* the copy */
    rv = gw_open_ws_backend(p, v);
    if (rv != 0) {
      /* on_fail may already have answered (it sets back_done) */
      p->back = NULL;
      p->back_done = 1;
    }
  }
  if (rv != 0) {
    gw_refuse(p, "cannot open the backend");
    gw_maybe_free(p);
  }
}

/* ---- routes ----------------------------------------------------------- */

static int gw_parse_tcp(gw_route *r, const char *url) {
  const char *hp = url + 6;
  const char *end = hp + strcspn(hp, "/?#");
  const char *colon = NULL;
  if (*hp == '[') {
    const char *rb = memchr(hp, ']', (size_t)(end - hp));
    if (!rb || rb[1] != ':') return -1;
    if ((size_t)(rb - hp - 1) >= sizeof r->host) return -1;
    memcpy(r->host, hp + 1, (size_t)(rb - hp - 1));
    r->host[rb - hp - 1] = '\0';
    colon = rb + 1;
  } else {
    colon = memchr(hp, ':', (size_t)(end - hp));
    if (!colon || colon == hp || (size_t)(colon - hp) >= sizeof r->host)
      return -1;
    memcpy(r->host, hp, (size_t)(colon - hp));
    r->host[colon - hp] = '\0';
  }
  char *e;
  long port = strtol(colon + 1, &e, 10);
  if (e != end || port <= 0 || port > 65535) return -1;
  r->port = (int)port;
  return 0;
}

/* The backend client for routes with these options (made on first use).
 * Returns 0, H2WS_ERR_NOMEM, H2WS_ERR_INTERNAL. */
static int gw_client_get(gateway *gw, const gateway_options *o,
                         gw_client **pc) {
  const char *ca = o->backend_cafile ? o->backend_cafile : "";
  for (gw_client *c = gw->clients; c; c = c->next)
    if (c->client && c->insecure == o->insecure_backend &&
        c->max_message == o->max_message && c->ws_budget == o->ws_budget &&
        !strcmp(c->cafile, ca)) {
      *pc = c;
      return 0;
    }
  gw_client *c = calloc(1, sizeof *c);
  if (!c) return H2WS_ERR_NOMEM;
  c->insecure = o->insecure_backend;
  c->max_message = o->max_message;
  c->ws_budget = o->ws_budget;
  snprintf(c->cafile, sizeof c->cafile, "%s", ca);
  h2ws_client_settings cs;
  h2ws_client_settings_default(&cs);
  cs.insecure = o->insecure_backend;
  cs.cafile = c->cafile[0] ? c->cafile : NULL; /* kept with c */
  /* HTTP/2 backend connections go once idle for GW_BACKEND_IDLE_MS
   * (HTTP/1.1 ones end with their WebSocket) */
  cs.close_idle = 1;
  cs.idle_timeout_ms = GW_BACKEND_IDLE_MS;
  cs.ws.max_message_size = o->max_message;
  /* the backend side's output budget, as the client side's (the
   * server's ws.max_output): a message that does not fit is streamed */
  cs.ws.max_output = o->ws_budget;
  int rv = h2ws_client_new(&c->client, gw->rt, &cs);
  if (rv != 0) {
    free(c);
    return rv;
  }
  c->next = gw->clients;
  gw->clients = c;
  *pc = c;
  return 0;
}

/* Rough shape check of a ws:// URL's authority (the runtime's client
 * parses it fully at each open): a non-empty host and, if given, a port
 * 1-65535. */
static int gw_check_ws_url(const char *hp) {
  size_t alen = strcspn(hp, "/?#");
  if (alen == 0 || memchr(hp, '@', alen)) return -1;
  const char *colon = NULL;
  if (hp[0] == '[') {
    const char *rb = memchr(hp, ']', alen);
    if (!rb) return -1;
    if ((size_t)(rb - hp) + 1 < alen) {
      if (rb[1] != ':') return -1;
      colon = rb + 1;
    }
  } else {
    colon = memchr(hp, ':', alen);
    if (colon == hp) return -1;
  }
  if (colon) {
    char *e;
    long port = strtol(colon + 1, &e, 10);
    if (e != hp + alen || e == colon + 1 || port <= 0 || port > 65535)
      return -1;
  }
  return 0;
}

int gateway_add_route(gateway *gw, const char *host, const char *path,
                      const char *backend_url, const gateway_options *opts) {
  if (!gw || !path || path[0] != '/' || !backend_url ||
      strlen(path) >= sizeof ((gw_route *)0)->path ||
      (host && strlen(host) >= sizeof ((gw_route *)0)->vhost))
    return H2WS_ERR_INVALID_ARGUMENT;
  if (strlen(backend_url) >= sizeof ((gw_route *)0)->url) {
    fprintf(stderr, "h2ws: backend URL too long\n");
    return H2WS_ERR_INVALID_ARGUMENT;
  }
  gw_route *r = calloc(1, sizeof *r);
  if (!r) return H2WS_ERR_NOMEM;
  if (opts) r->opts = *opts;
  else gateway_options_default(&r->opts);
  if (!r->opts.backend_timeout_ms) r->opts.backend_timeout_ms = 10000;
  if (!r->opts.max_message) r->opts.max_message = KIT_DEFAULT_MAX_MESSAGE;
  if (!r->opts.ws_budget) r->opts.ws_budget = 2u << 20;
  snprintf(r->url, sizeof r->url, "%s", backend_url);
  r->gw = gw;
  r->rt = gw->rt;
  int rv = 0;
  if (strncasecmp(backend_url, "tcp://", 6) == 0) {
    r->is_tcp = 1;
    if (gw_parse_tcp(r, backend_url) != 0) {
      fprintf(stderr, "h2ws: bad backend URL '%s' (tcp://HOST:PORT)\n",
              backend_url);
      free(r);
      return H2WS_ERR_INVALID_ARGUMENT;
    }
  } else if (strncasecmp(backend_url, "ws://", 5) == 0 ||
             strncasecmp(backend_url, "wss://", 6) == 0) {
    const char *hp = strstr(backend_url, "://") + 3;
    const char *slash = strchr(hp, '/');
    r->append_path = slash && backend_url[strlen(backend_url) - 1] == '/' &&
                     !strchr(slash, '?');
    /* validate the URL once, up front */
    if (gw_check_ws_url(hp) != 0) {
      fprintf(stderr, "h2ws: bad backend URL '%s'\n", backend_url);
      free(r);
      return H2WS_ERR_INVALID_ARGUMENT;
    }
    rv = gw_client_get(gw, &r->opts, &r->client);
    if (rv != 0) {
      free(r);
      return rv;
    }
  } else {
    fprintf(stderr,
            "h2ws: backend URL must start with ws://, wss:// or tcp://: "
            "'%s'\n",
            backend_url);
    free(r);
    return H2WS_ERR_INVALID_ARGUMENT;
  }
  snprintf(r->path, sizeof r->path, "%s", path);
  if (host) snprintf(r->vhost, sizeof r->vhost, "%s", host);
  int registered = 0;
  for (gw_route *o = gw->routes; o; o = o->next) {
    if (strcmp(o->path, path) == 0) {
      if (!strcasecmp(o->vhost, r->vhost)) {
        fprintf(stderr, "h2ws: route %s%s given twice\n", r->vhost, path);
        rv = H2WS_ERR_INVALID_ARGUMENT;
      }
      registered = 1; /* one server route per path picks by host */
    }
  }
  h2ws_rt_ws_handler wh = {.on_request = gw_on_request};
  size_t pl = strlen(path);
  if (rv == 0 && !registered) {
    if (path[pl - 1] == '/')
      rv = h2ws_server_route_ws_prefix(gw->srv, path, &wh, r);
    else
      rv = h2ws_server_route_ws(gw->srv, path, &wh, r);
  }
  if (rv != 0) {
    free(r); /* its client stays with the gateway */
    return rv;
  }
  r->next = gw->routes;
  gw->routes = r;
  return 0;
}

void gateway_abort_backends(gateway *gw) {
  if (!gw) return;
  for (gw_pair *p = gw->pairs; p; p = p->next)
    if (p->tcp_open) {
      p->back_done = 1;
      gw_tcp_shut(p); /* freed from the close callback, not here */
    }
  for (gw_client *c = gw->clients; c; c = c->next) {
    h2ws_client *cl = c->client;
    c->client = NULL; /* new requests: 502 */
    h2ws_client_del(cl);
  }
}

void gateway_shutdown(gateway *gw) {
  if (!gw) return;
  for (gw_client *c = gw->clients; c; c = c->next)
    h2ws_client_close_idle(c->client);
}

void gateway_del(gateway *gw) {
  if (!gw) return;
  /* what is left after a loop stopped early: backend clients first (their
   * pairs then end), TCP handles closed from the loop */
  gateway_abort_backends(gw);
  int handles = 0;
  for (gw_pair *p = gw->pairs; p; p = p->next) {
    p->front_done = 1; /* its server is gone */
    p->front = NULL;
    p->req = NULL;
    if (p->tcp_open || p->timer_open || p->gai_pending) handles = 1;
  }
  if (handles) {
    for (gw_pair *p = gw->pairs; p; p = p->next) {
      gw_stop_timer(p);
      if (p->tcp_open) gw_tcp_shut(p);
    }
    h2ws_rt_run(gw->rt); /* the close callbacks free their pairs */
  }
  while (gw->pairs) {
    gw_pair *p = gw->pairs;
    gw->pairs = p->next;
    gw_msg_clear(&p->to_back);
    gw_msg_clear(&p->to_front);
    free(p->rbuf);
    free(p);
  }
  while (gw->routes) {
    gw_route *r = gw->routes;
    gw->routes = r->next;
    free(r);
  }
  while (gw->clients) {
    gw_client *c = gw->clients;
    gw->clients = c->next;
    h2ws_client_del(c->client);
    free(c);
  }
  free(gw);
}
