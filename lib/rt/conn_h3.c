/* lib/rt/conn_h3.c - HTTP/3 on the runtime, both roles, through the
 * sans-I/O binding (h2ws/h3.h).  An endpoint (rt_h3ep) owns one UDP
 * socket (udp.c) and the QUIC connections on it (rt_h3c, one
 * h2ws_h3_session each), routes datagrams by destination connection ID,
 * answers the rest statelessly (new sessions for Initials, Version
 * Negotiation, Stateless Reset), and runs one flush task and one timer per
 * connection.  Each WebSocket stream is a carrier (rt_h3s) of an
 * h2ws_rt_ws, as an HTTP/2 stream is (conn_h2.c is the model). */
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <gnutls/x509.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <h2ws/h3.h>
#include "rt/conn_h3.h"
#include "rt/request.h"
#include "rt/udp.h"

#define H3_DEFER_MS 10000
#define H3_BUCKETS 1024u
/* Batches one flush sends before it lets the loop run (then it comes
 * back at the next iteration). */
#define H3_FLUSH_BATCHES 64
/* Fairness (issue 9 F, as CONN_TURN_INPUT for TCP): datagram bytes one
 * server connection hands its session per loop turn; the rest of that
 * turn's datagrams for it are dropped before decryption (QUIC recovers
 * them as losses, and the sender's congestion control slows down).
 * libuv reads at most about 40 datagrams per socket and turn, so with
 * 1452-byte datagrams this only bites on a connection that takes the
 * whole read or sends oversized datagrams. */
#define H3_TURN_INPUT (64u * 1024)
/* How long a client connection without WebSocket stays (close_idle). */

typedef struct rt_h3s rt_h3s;
struct rt_h3s {
  rt_carrier carrier;
  rt_h3c *c;
  h2ws_rt_ws *ws;
  int64_t sid;         /* -1 while a client request waits for SETTINGS */
  int abort;
  uint64_t close_at;   /* server: our Close queued (write deadline), or 0 */
  uint64_t reset_at;   /* server: reset by the write deadline, or 0 */
  rt_h3s *next, *prev; /* c->streams, or c->dead */
};

/* A connection ID routing to a connection. */
typedef struct rt_cid rt_cid;
struct rt_cid {
  rt_cid *next;        /* bucket chain */
  rt_cid *cnext;       /* the connection's list */
  rt_h3c *c;
  size_t len;
  uint8_t id[20];
};

struct rt_h3c {
  rt_h3ep *ep;
  h2ws_h3_session *s;
  rt_task task;
  uv_timer_t timer;
  int timer_open;
  int gone;            /* session deleted, timer closing */
  int is_client;
  struct sockaddr_storage peer;
  size_t peerlen;
  char peername[64];
  uint64_t id;
  rt_cid *cids;
  rt_h3s *streams, *dead;
  h2ws_rt_ws_request *deferred;
  rt_budget budget;    /* server: the memory of all its streams */
  int nclosing;        /* streams with close_at set */
  uint64_t in_turn;    /* server: the loop turn in_bytes counts */
  size_t in_bytes;     /* datagram bytes taken in that turn */
  uint64_t dropped_in; /* datagrams dropped by H3_TURN_INPUT */
  uint64_t resume_turn; /* the last turn paused streams were resumed */
  int resume_later;    /* a stream can resume, at the next turn */
  rt_h3c *next, *prev; /* ep->conns */
  /* client */
  const rt_h3_client_hooks *hooks;
  void *owner;
  int goaway, idle_closing, opened_any;
  char server_name[256];
  char why[160];       /* why the connection ended, for refusals */
};

struct rt_h3ep {
  h2ws_rt *rt;
  rt_udp *udp;
  int is_client;
  struct sockaddr_storage local;
  size_t locallen;
  rt_h3_server_config cfg;
  const rt_proto_config *pcfg;
  gnutls_certificate_credentials_t cred;
  rt_h3c *conns;
  size_t nconns;
  rt_cid *table[H3_BUCKETS];
  int shutting, closing, udp_closed;
  int icmp_error;      /* client: the server's port is unreachable */
  uint8_t reply[1500];
};

static const rt_carrier_ops h3_carrier_ops;
static void h3c_mark(rt_h3c *c);
static void h3ep_maybe_close(rt_h3ep *ep);

static uint64_t h3_now(const rt_h3ep *ep) { return h2ws__rt_now(ep->rt); }

/* ---- routing ------------------------------------------------------------- */

static unsigned cid_hash(const uint8_t *id, size_t len) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < len; i++) h = (h ^ id[i]) * 16777619u;
  return h % H3_BUCKETS;
}

static rt_h3c *cid_find(const rt_h3ep *ep, const uint8_t *id, size_t len) {
  for (rt_cid *e = ep->table[cid_hash(id, len)]; e; e = e->next)
    if (e->len == len && memcmp(e->id, id, len) == 0) return e->c;
  return NULL;
}

static void cid_add(rt_h3c *c, const uint8_t *id, size_t len) {
  rt_h3ep *ep = c->ep;
  if (len > 20 || cid_find(ep, id, len)) return;
  rt_cid *e = h2ws__calloc(ep->rt->mem, 1, sizeof *e);
  if (!e) return; /* that ID will not route: the peer uses another */
  memcpy(e->id, id, len);
  e->len = len;
  e->c = c;
  unsigned b = cid_hash(id, len);
  e->next = ep->table[b];
  ep->table[b] = e;
  e->cnext = c->cids;
  c->cids = e;
}

static void cid_unlink_bucket(rt_h3ep *ep, rt_cid *e) {
  rt_cid **pp = &ep->table[cid_hash(e->id, e->len)];
  while (*pp && *pp != e) pp = &(*pp)->next;
  if (*pp) *pp = e->next;
}

static void cid_remove(rt_h3c *c, const uint8_t *id, size_t len) {
  for (rt_cid **pp = &c->cids; *pp; pp = &(*pp)->cnext) {
    rt_cid *e = *pp;
    if (e->len == len && memcmp(e->id, id, len) == 0) {
      *pp = e->cnext;
      cid_unlink_bucket(c->ep, e);
      h2ws__free(c->ep->rt->mem, e);
      return;
    }
  }
}

static void cid_remove_all(rt_h3c *c) {
  while (c->cids) {
    rt_cid *e = c->cids;
    c->cids = e->cnext;
    cid_unlink_bucket(c->ep, e);
    h2ws__free(c->ep->rt->mem, e);
  }
}

static void cid_add_session(rt_h3c *c) {
  uint8_t ids[16][20];
  size_t lens[16];
  size_t n = h2ws_h3_session_get_cids(c->s, ids, lens, 16);
  for (size_t i = 0; i < n; i++) cid_add(c, ids[i], lens[i]);
}

/* ---- streams (carriers) -------------------------------------------------- */

static rt_h3s *h3s_of(const rt_carrier *ca) {
  return (rt_h3s *)((char *)ca - offsetof(rt_h3s, carrier));
}

static rt_h3s *h3s_of_ws(const h2ws_rt_ws *ws) {
  return ws->carrier && ws->carrier->ops == &h3_carrier_ops
             ? h3s_of(ws->carrier)
             : NULL;
}

static rt_h3s *h3s_new(rt_h3c *c, h2ws_rt_ws *ws) {
  rt_h3s *hs = h2ws__calloc(c->ep->rt->mem, 1, sizeof *hs);
  if (!hs) return NULL;
  hs->carrier.ops = &h3_carrier_ops;
  hs->c = c;
  hs->ws = ws;
  hs->sid = -1;
  hs->next = c->streams;
  if (c->streams) c->streams->prev = hs;
  c->streams = hs;
  c->idle_closing = 0;
  h2ws__rt_ws_attach(ws, &hs->carrier);
  return hs;
}

static void h3s_unlink(rt_h3c *c, rt_h3s *hs) {
  if (hs->prev) hs->prev->next = hs->next;
  else if (c->streams == hs) c->streams = hs->next;
  if (hs->next) hs->next->prev = hs->prev;
  hs->next = hs->prev = NULL;
  if (hs->close_at) {
    hs->close_at = 0;
    c->nclosing--;
  }
}

static void h3s_release(rt_h3c *c, rt_h3s *hs) {
  h3s_unlink(c, hs);
  h2ws__rt_ws_attach(hs->ws, NULL);
  h2ws__free(c->ep->rt->mem, hs);
}

static void h3_free_dead(rt_h3c *c) {
  while (c->dead) {
    rt_h3s *hs = c->dead;
    c->dead = hs->next;
    h2ws__rt_ws_free(hs->ws);
    h2ws__free(c->ep->rt->mem, hs);
  }
}

static void h3_ca_wake(rt_carrier *ca) { h3c_mark(h3s_of(ca)->c); }

static void h3_ca_abort(rt_carrier *ca) {
  rt_h3s *hs = h3s_of(ca);
  hs->abort = 1;
  h3c_mark(hs->c);
}

/* The write deadline starts (server WebSockets): h3c_timer_cb. */
static void h3_ca_closing(rt_carrier *ca) {
  rt_h3s *hs = h3s_of(ca);
  if (!hs->close_at) {
    hs->close_at = h3_now(hs->c->ep);
    hs->c->nclosing++;
  }
  h3c_mark(hs->c);
}

static void h3_ca_describe(const rt_carrier *ca, h2ws_rt_ws_info *info) {
  const rt_h3s *hs = h3s_of(ca);
  info->transport = H2WS_RT_H3;
  info->http_version = 3;
  info->encrypted = 1;
  info->stream_id = hs->sid < 0 ? 0 : hs->sid;
  info->conn_id = hs->c->id;
  info->peer = hs->c->is_client ? "" : hs->c->peername;
}

static const rt_carrier_ops h3_carrier_ops = {
    .wake = h3_ca_wake,
    .resume = h3_ca_wake,     /* the flush resumes it (h3_resume) */
    .half_close = h3_ca_wake, /* the binding sends FIN after the output */
    .abort = h3_ca_abort,
    .describe = h3_ca_describe,
    .closing = h3_ca_closing,
};

/* ---- server: requests ---------------------------------------------------- */

static int h3_accepted(rt_h3c *c, int64_t sid, h2ws_rt_ws_request *rq) {
  h2ws_rt_ws *ws = rq->ws;
  h2ws_h3_accept_options o;
  h2ws_h3_accept_options_default(&o);
  h2ws_ws_settings st = *c->ep->pcfg->ws;
  st.whole_messages = 1;
  if (!st.recv_budget) st.recv_budget = RT_RECV_BUDGET;
  h2ws_ws_callbacks wcb;
  o.subprotocol = ws->subprotocol;
  o.pmd = rq->pmd;
  o.callbacks = h2ws__rt_ws_engine_callbacks(ws, &wcb);
  o.settings = &st;
  o.user_data = ws;
  rt_h3s *hs = h3s_new(c, ws);
  if (!hs) {
    h2ws__rt_ws_free(ws);
    h2ws_h3_refuse(c->s, sid, 500, NULL, 0);
    return H2WS_ERR_NOMEM;
  }
  hs->sid = sid;
  ws->conn_budget = &c->budget; /* one for all the connection's streams */
  h2ws__rt_ws_start(ws, NULL);
  h2ws_ws *e = NULL;
  int rv = h2ws_h3_accept_ws(c->s, sid, &o, &e);
  if (rv != 0) {
    h3s_release(c, hs);
    h2ws__rt_ws_free(ws);
    h2ws_h3_refuse(c->s, sid, 500, NULL, 0);
    return rv < 0 ? rv : H2WS_ERR_INTERNAL;
  }
  if (ws->state == RT_WS_OPEN) ws->engine = e;
  h2ws__rt_ws_opened(ws);
  return 0;
}

static int h3_answer(h2ws_rt_ws_request *rq) {
  rt_h3c *c = rq->tctx;
  int rv = 0;
  h2ws__rt_request_unlink(&c->deferred, rq);
  if (rq->answered == 1)
    rv = h3_accepted(c, rq->sid, rq);
  else
    h2ws_h3_refuse(c->s, rq->sid, rq->status, NULL, 0);
  h2ws__rt_request_free(rq);
  h3_free_dead(c);
  h3c_mark(c);
  return rv;
}

static void h3_deferred_cancel(rt_h3c *c, int64_t sid) {
  h2ws_rt_ws_request **pp = &c->deferred;
  while (*pp) {
    h2ws_rt_ws_request *rq = *pp;
    if (sid >= 0 && rq->sid != sid) {
      pp = &rq->dnext;
      continue;
    }
    *pp = rq->dnext;
    h2ws__rt_request_cancel(rq);
  }
}

static int h3_nomem(int rv) { return rv == H2WS_ERR_NOMEM ? rv : 0; }

static int h3_on_ws_request(h2ws_h3_session *s, int64_t sid,
                            const h2ws_ws_request *req,
                            const h2ws_h3_request *hreq, void *ud) {
  rt_h3c *c = ud;
  const rt_h3_server_config *cfg = &c->ep->cfg;
  (void)hreq;
  h2ws_rt_ws_request *rq = h2ws__rt_request_new(c->ep->rt);
  if (!rq) return h3_nomem(h2ws_h3_refuse(s, sid, 503, NULL, 0));
  rq->view = req;
  rq->info.transport = H2WS_RT_H3;
  rq->info.http_version = 3;
  rq->info.encrypted = 1;
  rq->info.stream_id = sid;
  rq->info.conn_id = c->id;
  rq->info.peer = c->peername;
  /* the same path as HTTP/2's (request.c) */
  uint64_t budget = cfg->handshake_ms ? cfg->handshake_ms : H3_DEFER_MS;
  int v = h2ws__rt_request_decide(rq, cfg->owner->ws_request,
                                  cfg->owner_data, &c->deferred,
                                  (int32_t)sid, c, h3_answer,
                                  h3_now(c->ep) + budget);
  if (v == 0) return 0; /* deferred */
  if (v < 0) return h3_nomem(h2ws_h3_refuse(s, sid, -v, NULL, 0));
  h3_accepted(c, sid, rq);
  h2ws__rt_request_free(rq);
  return 0;
}

static int h3_on_request(h2ws_h3_session *s, int64_t sid,
                         const h2ws_h3_request *req, void *ud) {
  rt_h3c *c = ud;
  const rt_h3_server_config *cfg = &c->ep->cfg;
  if (!req->method || !req->path ||
      (strcmp(req->method, "GET") && strcmp(req->method, "HEAD")))
    return h3_nomem(h2ws_h3_refuse(
        s, sid,
        req->method && strcmp(req->method, "CONNECT") == 0 ? 501 : 405, NULL,
        0));
  h2ws_rt_http_request hr = {req->method, req->path, H2WS_RT_H3};
  h2ws_rt_http_response resp;
  memset(&resp, 0, sizeof resp);
  resp.status = 404;
  resp.content_type = "text/plain; charset=utf-8";
  if (cfg->owner->http_request)
    cfg->owner->http_request(&hr, &resp, cfg->owner_data);
  h2ws_header hs[1] = {
      {"content-type", 12, resp.content_type, strlen(resp.content_type)}};
  int is_head = strcmp(req->method, "HEAD") == 0;
  return h3_nomem(h2ws_h3_respond(s, sid, resp.status, hs, 1,
                                  is_head ? NULL : resp.body,
                                  is_head ? 0 : resp.bodylen));
}

static void h3_on_stream_close(h2ws_h3_session *s, int64_t sid,
                               uint64_t code, void *ud) {
  (void)s;
  (void)code;
  h3_deferred_cancel(ud, sid);
}

/* ---- both roles ------------------------------------------------------------ */

static void h3_on_ws_closed(h2ws_h3_session *s, int64_t sid, h2ws_ws *e,
                            uint64_t code, void *ud) {
  rt_h3c *c = ud;
  (void)s;
  (void)sid;
  (void)code;
  h2ws_rt_ws *ws = h2ws_ws_get_user_data(e);
  if (!ws) return;
  rt_h3s *hs = h3s_of_ws(ws);
  if (ws->state == RT_WS_OPEN)
    h2ws__rt_ws_closed(ws, H2WS_CLOSE_ABNORMAL, NULL, 0);
  ws->engine = NULL;
  if (!hs) return;
  h3s_unlink(c, hs);
  hs->next = c->dead;
  c->dead = hs;
}

static void h3_on_cid_new(h2ws_h3_session *s, const uint8_t *cid,
                          size_t len, void *ud) {
  rt_h3c *c = ud;
  (void)s;
  if (!c->is_client) cid_add(c, cid, len);
}

static void h3_on_cid_retired(h2ws_h3_session *s, const uint8_t *cid,
                              size_t len, void *ud) {
  rt_h3c *c = ud;
  (void)s;
  if (!c->is_client) cid_remove(c, cid, len);
}

/* ---- client ---------------------------------------------------------------- */

static int h3_on_ws_open(h2ws_h3_session *s, int64_t sid, h2ws_ws *e,
                         const char *subprotocol, void *req_ud, void *ud) {
  rt_h3c *c = ud;
  h2ws_rt_ws *ws = req_ud;
  rt_h3s *hs = h3s_of_ws(ws);
  (void)s;
  if (hs) hs->sid = sid;
  ws->compressed = h2ws_ws_is_compressed(e) != 0;
  if (h2ws__rt_ws_set_subprotocol(ws, subprotocol,
                                  subprotocol ? strlen(subprotocol) : 0))
    return H2WS_ERR_NOMEM;
  h2ws__rt_ws_start(ws, e);
  c->opened_any = 1;
  h2ws__rt_ws_note(ws, "connected via h3 (QUIC, ALPN h3), stream %lld",
                   (long long)sid);
  h2ws__rt_ws_opened(ws);
  return 0;
}

static void h3c_describe_end(rt_h3c *c);

static int h3_on_ws_refused(h2ws_h3_session *s, int64_t sid, int status,
                            int error, void *req_ud, void *ud) {
  rt_h3c *c = ud;
  h2ws_rt_ws *ws = req_ud;
  rt_h3s *hs = h3s_of_ws(ws);
  (void)s;
  (void)sid;
  if (error == H2WS_ERR_H3_GOAWAY) c->goaway = 1;
  if (hs) h3s_release(c, hs);
  if (error == H2WS_ERR_H3_CLOSED && c->s) h3c_describe_end(c);
  const char *why = error == H2WS_ERR_H3_CLOSED && c->why[0] ? c->why : NULL;
  if (c->hooks && c->hooks->ws_refused) {
    c->hooks->ws_refused(ws, status, error, why, c->owner);
  } else {
    h2ws__rt_ws_fail(ws, error, status, "%s", h2ws_h3_strerror(error));
    h2ws__rt_ws_free(ws);
  }
  return 0;
}

static void h3_on_goaway(h2ws_h3_session *s, int64_t id, void *ud) {
  rt_h3c *c = ud;
  (void)s;
  (void)id;
  c->goaway = 1;
}

/* ---- connections ----------------------------------------------------------- */

static void h3_flush(rt_h3c *c);

static void h3c_task_run(rt_task *t) {
  rt_h3c *c = (rt_h3c *)((char *)t - offsetof(rt_h3c, task));
  h3_flush(c);
}

static void h3c_mark(rt_h3c *c) {
  if (c && !c->gone) h2ws__rt_task_queue(c->ep->rt, &c->task);
}

/* When hs's output, queued before our Close, must have drained (server
 * write deadline), or NO_EXPIRY; once the deadline reset the stream,
 * when that reset must have ended it. */
static uint64_t h3s_write_deadline(const rt_h3c *c, const rt_h3s *hs) {
  uint64_t wt = c->ep->pcfg->write_timeout_ms;
  if (!hs->close_at || !wt || hs->sid < 0 || c->is_client)
    return H2WS_NO_EXPIRY;
  if (hs->reset_at) return hs->reset_at + wt;
  const h2ws_ws *e = hs->ws->engine;
  if (!(e && h2ws_ws_want_write(e)) && !h2ws_h3_ws_unacked(c->s, hs->sid))
    return H2WS_NO_EXPIRY;
  return hs->close_at + wt;
}

/* A peer that does not read (nor open its flow-control window for) what
 * we must send before our Close: the output is dropped with the stream
 * (RESET_STREAM + STOP_SENDING H3_REQUEST_CANCELLED); the connection's
 * other streams go on.  A stream still there write_timeout after that
 * reset means the peer acknowledges nothing: the connection is closed
 * (CONNECTION_CLOSE H3_EXCESSIVE_LOAD). */
static void h3_write_deadlines(rt_h3c *c, uint64_t now) {
  if (!c->nclosing) return;
  for (rt_h3s *hs = c->streams; hs; hs = hs->next) {
    if (now < h3s_write_deadline(c, hs)) continue;
    if (hs->reset_at) {
      h2ws_h3_session_close(c->s, H2WS_H3_EXCESSIVE_LOAD, now);
      return;
    }
    if (h2ws_h3_reset(c->s, hs->sid, H2WS_H3_REQUEST_CANCELLED) == 0) {
      hs->reset_at = now;
      if (c->ep->pcfg->srv_budget) c->ep->pcfg->srv_budget->write_timeouts++;
    } else { /* nothing left to reset: no deadline */
      hs->close_at = 0;
      c->nclosing--;
    }
  }
}

static void h3c_timer_cb(uv_timer_t *t) {
  rt_h3c *c = t->data;
  if (c->gone) return;
  uint64_t now = h3_now(c->ep);
  h2ws_h3_session_handle_expiry(c->s, now);
  h3_write_deadlines(c, now);
  for (h2ws_rt_ws_request *rq = c->deferred; rq;) {
    h2ws_rt_ws_request *next = rq->dnext;
    if (now >= rq->deadline) {
      h2ws__rt_request_unlink(&c->deferred, rq);
      h2ws_h3_refuse(c->s, rq->sid, 504, NULL, 0);
      if (c->ep->cfg.owner && c->ep->cfg.owner->refused)
        c->ep->cfg.owner->refused(504, c->ep->cfg.owner_data);
      h2ws__rt_request_cancel(rq);
    }
    rq = next;
  }
  h3_free_dead(c);
  h3c_mark(c);
}

static void h3c_timer_closed(uv_handle_t *h) {
  rt_h3c *c = h->data;
  rt_h3ep *ep = c->ep;
  h2ws__free(ep->rt->mem, c);
  if (ep->is_client) {
    ep->nconns--;
    h3ep_maybe_close(ep);
    return;
  }
  ep->nconns--;
  h3ep_maybe_close(ep);
}

static rt_h3c *h3c_alloc(rt_h3ep *ep) {
  rt_h3c *c = h2ws__calloc(ep->rt->mem, 1, sizeof *c);
  if (!c) return NULL;
  c->ep = ep;
  c->task.run = h3c_task_run;
  uv_timer_init(&ep->rt->loop, &c->timer);
  c->timer.data = c;
  c->timer_open = 1;
  c->next = ep->conns;
  if (ep->conns) ep->conns->prev = c;
  ep->conns = c;
  ep->nconns++;
  return c;
}

/* Every WebSocket of c ends (the connection is over). */
static void h3c_abort_all(rt_h3c *c, const char *why) {
  for (rt_h3s *hs = c->streams; hs;) {
    rt_h3s *next = hs->next;
    h2ws_rt_ws *ws = hs->ws;
    if (ws->state == RT_WS_OPEN) {
      h2ws__rt_ws_closed(ws, H2WS_CLOSE_ABNORMAL, NULL, 0);
    } else if (ws->state == RT_WS_WAITING) {
      h3s_release(c, hs);
      if (c->hooks && c->hooks->ws_refused)
        c->hooks->ws_refused(ws, 0, H2WS_ERR_H3_CLOSED, why, c->owner);
      else {
        h2ws__rt_ws_fail(ws, H2WS_ERR_H3_CLOSED, 0, "%s", why);
        h2ws__rt_ws_free(ws);
      }
    }
    hs = next;
  }
}

/* Why a client connection ended, in words. */
static void h3c_describe_end(rt_h3c *c) {
  h2ws_h3_stats st;
  if (c->why[0] || !c->s) return;
  h2ws_h3_session_get_stats(c->s, &st);
  if (c->why[0]) return;
  static const char *const who[] = {"", "closed by us", "closed by the server",
                                    "idle timeout", "QUIC handshake timed out",
                                    "stateless reset"};
  int by = st.closed_by >= 0 && st.closed_by <= 5 ? st.closed_by : 0;
  if (st.closed && st.closed_by == 1 && !st.app_error &&
      st.error_code >= 0x100 && st.error_code <= 0x1ff && !st.handshake_done) {
    /* RFC 9001 §4.8: CRYPTO_ERROR carries our TLS alert */
    unsigned alert = (unsigned)(st.error_code - 0x100);
    snprintf(c->why, sizeof c->why, "QUIC TLS handshake failed (our alert "
             "%u%s)", alert,
             alert == 42 || alert == 48 || alert == 45 || alert == 44 ||
                     alert == 46
                 ? ": the server's certificate did not verify"
                 : "");
    return;
  }
  if (!st.closed)
    snprintf(c->why, sizeof c->why, "QUIC connection ended");
  else
    snprintf(c->why, sizeof c->why, "QUIC connection %s%s (%s 0x%llx%s%s)",
             who[by], st.handshake_done ? "" : " during the handshake",
             st.app_error ? "HTTP/3 error" : "transport error",
             (unsigned long long)st.error_code, st.reason ? ": " : "",
             st.reason ? st.reason : "");
}

/* The session is over: every WebSocket ends, the carriers go, the
 * session is deleted; c is freed once its timer handle is closed. */
static void h3c_destroy(rt_h3c *c) {
  if (c->gone) return;
  h2ws__rt_task_cancel(c->ep->rt, &c->task);
  if (c->is_client) h3c_describe_end(c);
  h3_deferred_cancel(c, -1);
  h3c_abort_all(c, c->why[0] ? c->why : "QUIC connection ended");
  while (c->streams) {
    rt_h3s *hs = c->streams;
    h3s_unlink(c, hs);
    hs->ws->engine = NULL;
    h2ws__rt_ws_free(hs->ws);
    h2ws__free(c->ep->rt->mem, hs);
  }
  h3_free_dead(c);
  c->gone = 1;
  h2ws_h3_session_del(c->s);
  c->s = NULL;
  cid_remove_all(c);
  rt_h3ep *ep = c->ep;
  if (c->prev) c->prev->next = c->next;
  else if (ep->conns == c) ep->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  c->next = c->prev = NULL;
  if (c->is_client && c->hooks && c->hooks->closed)
    c->hooks->closed(c, c->owner);
  uv_close((uv_handle_t *)&c->timer, h3c_timer_closed);
}

/* Resumes paused streams whose output drained (or whose engine spent
 * its recv_budget); resets aborted ones.  Paused streams are resumed once
 * per loop turn (a flush can run more than once in one): a stream held by
 * the engine's WOULDBLOCK gets its next slice at the next turn, so one
 * connection's inflation or unmasking cannot make a turn long (issue 9
 * F); the flush's timer (at 0) comes back for them. */
static void h3_resume(rt_h3c *c) {
  uint64_t now = h3_now(c->ep);
  uint64_t turn = c->ep->rt->turn;
  int resumed = 0;
  c->resume_later = 0;
  for (rt_h3s *hs = c->streams; hs;) {
    rt_h3s *next = hs->next;
    h2ws_rt_ws *ws = hs->ws;
    if (hs->abort && hs->sid >= 0) {
      hs->abort = 0;
      h2ws_h3_reset(c->s, hs->sid, H2WS_H3_REQUEST_CANCELLED);
    } else if (ws->state == RT_WS_OPEN && hs->sid >= 0 &&
               h2ws_h3_ws_is_paused(c->s, hs->sid) &&
               h2ws__rt_ws_can_resume(ws)) {
      if (c->resume_turn == turn) {
        c->resume_later = 1;
      } else {
        resumed = 1;
        /* paused again with no reason of the application's or the
         * budgets': the engine's recv_budget, next turn */
        if (h2ws_h3_resume_ws(c->s, hs->sid, now) == H2WS_ERR_PAUSE &&
            ws->state == RT_WS_OPEN && h2ws__rt_ws_can_resume(ws))
          c->resume_later = 1;
      }
    }
    hs = next;
  }
  if (resumed) c->resume_turn = turn;
  h3_free_dead(c);
}

/* Server WebSockets: the memory budgets (carrier.h) follow the engines'
 * queued output and held input after the session moved bytes; a stream
 * paused by a budget that may read again is resumed at the next flush. */
static void h3_account(rt_h3c *c) {
  if (c->is_client) return;
  for (rt_h3s *hs = c->streams; hs; hs = hs->next) {
    h2ws_rt_ws *ws = hs->ws;
    if (!ws->engine) continue;
    size_t before = ws->held;
    /* the send queue (kept until acknowledged) is output we hold too */
    size_t unacked = hs->sid >= 0 ? h2ws_h3_ws_unacked(c->s, hs->sid) : 0;
    size_t eng = h2ws_ws_output_len(ws->engine);
    ws->carrier_out = unacked > eng ? unacked - eng : 0;
    h2ws__rt_ws_account(ws);
    if (ws->held < before && ws->budget_paused && ws->state == RT_WS_OPEN &&
        hs->sid >= 0 && h2ws_h3_ws_is_paused(c->s, hs->sid) &&
        h2ws__rt_ws_can_resume(ws))
      h3c_mark(c);
  }
}

static void h3_flush(rt_h3c *c) {
  if (c->gone) return;
  rt_h3ep *ep = c->ep;
  uint64_t now = h3_now(ep);
  if (ep->icmp_error && c->is_client) {
    snprintf(c->why, sizeof c->why, "no HTTP/3 server on that UDP port "
             "(ICMP port unreachable)");
    h3c_destroy(c);
    return;
  }
  h3_resume(c);
  if (c->is_client && !c->streams && !c->idle_closing && c->hooks &&
      (c->goaway || (c->hooks->close_idle && c->hooks->close_idle(c->owner)))) {
    /* no WebSocket left and the owner lets idle connections go */
    c->idle_closing = 1;
    h2ws_h3_session_shutdown(c->s, now, 0);
  }
  int more = 0;
  for (int i = 0;; i++) {
    if (i == H3_FLUSH_BATCHES) {
      more = 1;
      break;
    }
    h2ws_h3_batch b;
    int rv = h2ws_h3_session_send(c->s, &b, now);
    if (rv != 0 || b.count == 0) break;
    h2ws__rt_udp_send(ep->udp, b.path.remote.addr, b.path.remote.addrlen,
                      b.data, b.len, b.segment_size, b.count);
  }
  h3_account(c);
  h3_free_dead(c);
  if (!h2ws_h3_session_want_read(c->s)) {
    h3c_destroy(c);
    return;
  }
  if (more) h3c_mark(c);
  uint64_t exp = h2ws_h3_session_get_expiry(c->s);
  for (h2ws_rt_ws_request *rq = c->deferred; rq; rq = rq->dnext)
    if (rq->deadline < exp) exp = rq->deadline;
  if (c->nclosing)
    for (rt_h3s *hs = c->streams; hs; hs = hs->next) {
      uint64_t w = h3s_write_deadline(c, hs);
      if (w < exp) exp = w;
    }
  if (c->resume_later) exp = now; /* the next turn (h3_resume) */
  if (exp == H2WS_NO_EXPIRY) {
    uv_timer_stop(&c->timer);
    return;
  }
  uv_timer_start(&c->timer, h3c_timer_cb, exp > now ? exp - now : 0, 0);
}

static void h3_fill_settings(const rt_h3ep *ep, h2ws_h3_settings *st) {
  h2ws_h3_settings_default(st);
  if (ep->pcfg->idle_ms && ep->pcfg->idle_ms < st->idle_timeout_ms)
    st->idle_timeout_ms = ep->pcfg->idle_ms;
}

static void h3_fill_callbacks(h2ws_h3_callbacks *cb, int is_client) {
  memset(cb, 0, sizeof *cb);
  cb->random = h2ws__rt_random;
  cb->on_ws_closed = h3_on_ws_closed;
  if (is_client) {
    cb->on_ws_open = h3_on_ws_open;
    cb->on_ws_refused = h3_on_ws_refused;
    cb->on_goaway = h3_on_goaway;
  } else {
    cb->on_ws_request = h3_on_ws_request;
    cb->on_request = h3_on_request;
    cb->on_stream_close = h3_on_stream_close;
    cb->on_cid_new = h3_on_cid_new;
    cb->on_cid_retired = h3_on_cid_retired;
  }
}

static void h3_path(const rt_h3ep *ep, const struct sockaddr *from,
                    size_t fromlen, h2ws_h3_path *p) {
  p->local.addr = &ep->local;
  p->local.addrlen = ep->locallen;
  p->remote.addr = from;
  p->remote.addrlen = fromlen;
}

static void h3_peer_name(rt_h3c *c) {
  const struct sockaddr *sa = (const struct sockaddr *)&c->peer;
  c->peername[0] = '\0';
  if (sa->sa_family == AF_INET)
    uv_ip4_name((const struct sockaddr_in *)sa, c->peername,
                sizeof c->peername);
  else if (sa->sa_family == AF_INET6)
    uv_ip6_name((const struct sockaddr_in6 *)sa, c->peername,
                sizeof c->peername);
}

/* ---- the server endpoint --------------------------------------------------- */

static void h3c_budget_wake(void *ud) { h3c_mark(ud); }

void h2ws__rt_h3_wake(rt_h3ep *ep) {
  for (rt_h3c *c = ep->conns; c; c = c->next) h3c_mark(c);
}

/* A datagram for no connection we know: a new one (Initial), Version
 * Negotiation, a Stateless Reset, or nothing. */
static void h3ep_stateless(rt_h3ep *ep, const struct sockaddr *from,
                           size_t fromlen, const uint8_t *d, size_t len,
                           const h2ws_h3_packet_info *pi, int decoded) {
  size_t rlen = 0;
  h2ws_h3_path path;
  h3_path(ep, from, fromlen, &path);
  if (decoded == H2WS_ERR_WOULDBLOCK) {
    uint8_t unused = 0;
    h2ws__rt_random(&unused, 1, NULL);
    if (len >= 1200 &&
        h2ws_h3_write_version_negotiation(pi, unused, ep->reply,
                                          sizeof ep->reply, &rlen) == 0)
      h2ws__rt_udp_send(ep->udp, from, fromlen, ep->reply, rlen, rlen, 1);
    return;
  }
  if (!pi->long_header) {
    if (h2ws_h3_write_stateless_reset(pi, len, ep->cfg.secret,
                                      sizeof ep->cfg.secret, h2ws__rt_random,
                                      NULL, ep->reply, sizeof ep->reply,
                                      &rlen) == 0 &&
        rlen)
      h2ws__rt_udp_send(ep->udp, from, fromlen, ep->reply, rlen, rlen, 1);
    return;
  }
  if (ep->shutting || ep->nconns >= ep->cfg.max_connections) return;
  h2ws_h3_settings st;
  h3_fill_settings(ep, &st);
  st.enable_connect_protocol = ep->pcfg->h2_websockets;
  st.token_secret = ep->cfg.secret;
  st.token_secretlen = sizeof ep->cfg.secret;
  st.require_retry = ep->cfg.require_retry;
  if (ep->cfg.handshake_ms) st.handshake_timeout_ms = ep->cfg.handshake_ms;
  h2ws_h3_callbacks cb;
  h3_fill_callbacks(&cb, 0);
  rt_h3c *c = h3c_alloc(ep);
  if (!c) return;
  h2ws_h3_session *s = NULL;
  int rv = h2ws_h3_server_new(&s, &cb, &st, ep->cred, &path, d, len,
                              ep->reply, sizeof ep->reply, &rlen,
                              h3_now(ep), ep->rt->mem, c);
  if (rv != 0) {
    if (rlen) h2ws__rt_udp_send(ep->udp, from, fromlen, ep->reply, rlen,
                                rlen, 1);
    c->gone = 1;
    if (c->prev) c->prev->next = c->next;
    else ep->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    uv_close((uv_handle_t *)&c->timer, h3c_timer_closed);
    return;
  }
  c->s = s;
  c->id = ++ep->rt->next_conn_id;
  c->budget.limit = ep->pcfg->conn_budget;
  c->budget.wake = h3c_budget_wake; /* back at half: resume at a flush */
  c->budget.wake_data = c;
  memcpy(&c->peer, from, fromlen);
  c->peerlen = fromlen;
  h3_peer_name(c);
  /* the client's chosen DCID routes here until it switches to ours */
  cid_add(c, pi->dcid, pi->dcidlen);
  cid_add_session(c);
  h2ws_h3_session_recv(s, &path, d, len, h3_now(ep));
  h3c_mark(c);
}

static void h3ep_datagram(rt_udp *u, const struct sockaddr *from,
                          size_t fromlen, const uint8_t *d, size_t len,
                          void *ud) {
  rt_h3ep *ep = ud;
  (void)u;
  if (ep->is_client) {
    rt_h3c *c = ep->conns;
    if (!c || c->gone) return;
    h2ws_h3_path path;
    h3_path(ep, from, fromlen, &path);
    h2ws_h3_session_recv(c->s, &path, d, len, h3_now(ep));
    h3c_mark(c);
    return;
  }
  h2ws_h3_packet_info pi;
  int drv = h2ws_h3_packet_decode(d, len, &pi);
  if (drv == H2WS_ERR_PROTO) return;
  rt_h3c *c = drv == 0 ? cid_find(ep, pi.dcid, pi.dcidlen) : NULL;
  if (!c) {
    h3ep_stateless(ep, from, fromlen, d, len, &pi, drv);
    return;
  }
  if (c->gone) return;
  if (c->in_turn != ep->rt->turn) {
    c->in_turn = ep->rt->turn;
    c->in_bytes = 0;
  }
  if (c->in_bytes >= H3_TURN_INPUT) {
    c->dropped_in++; /* this connection had its share of the turn */
    return;
  }
  c->in_bytes += len;
  h2ws_h3_path path;
  h3_path(ep, from, fromlen, &path);
  h2ws_h3_session_recv(c->s, &path, d, len, h3_now(ep));
  h3c_mark(c); /* the flush accounts the budgets (held input, replies) */
}

static void h3ep_udp_closed(rt_udp *u, void *ud) {
  rt_h3ep *ep = ud;
  (void)u;
  ep->udp = NULL;
  ep->udp_closed = 1;
  h2ws_rt *rt = ep->rt;
  if (!ep->is_client && ep->cfg.gone) ep->cfg.gone(ep, ep->cfg.owner_data);
  h2ws__free(rt->mem, ep);
}

/* Closes the socket once shutting down and no connection is left. */
static void h3ep_maybe_close(rt_h3ep *ep) {
  if ((ep->shutting || ep->is_client) && ep->nconns == 0 && ep->udp &&
      !ep->closing) {
    ep->closing = 1;
    h2ws__rt_udp_close(ep->udp);
  }
}

/* Client: ICMP port unreachable (nothing listens on UDP there).  Noted
 * here, acted on at the flush (it may come from inside one). */
static void h3ep_udp_error(rt_udp *u, int uverr, void *ud) {
  rt_h3ep *ep = ud;
  (void)u;
  if (uverr != UV_ECONNREFUSED || !ep->is_client) return;
  ep->icmp_error = 1;
  h3c_mark(ep->conns);
}

static const rt_udp_hooks h3ep_udp_hooks = {
    .datagram = h3ep_datagram,
    .closed = h3ep_udp_closed,
    .error = h3ep_udp_error,
};

static int h3ep_new(rt_h3ep **pep, h2ws_rt *rt, const struct sockaddr *addr,
                    int reuseport, int is_client, char *err, size_t errlen) {
  rt_h3ep *ep = h2ws__calloc(rt->mem, 1, sizeof *ep);
  if (!ep) return H2WS_ERR_NOMEM;
  ep->rt = rt;
  ep->is_client = is_client;
  int rv = h2ws__rt_udp_new(&ep->udp, rt, addr, reuseport, &h3ep_udp_hooks,
                            ep, err, errlen);
  if (rv != 0) {
    h2ws__free(rt->mem, ep);
    return rv;
  }
  h2ws__rt_udp_local(ep->udp, &ep->local, &ep->locallen);
  *pep = ep;
  return 0;
}

int h2ws__rt_h3_server_new(rt_h3ep **pep, h2ws_rt *rt,
                           const struct sockaddr *addr, int reuseport,
                           const rt_h3_server_config *cfg, char *err,
                           size_t errlen) {
  rt_h3ep *ep;
  int rv = h3ep_new(&ep, rt, addr, reuseport, 0, err, errlen);
  if (rv != 0) return rv;
  ep->cfg = *cfg;
  ep->pcfg = cfg->pcfg;
  ep->cred = cfg->cred;
  *pep = ep;
  return 0;
}

int h2ws__rt_h3_port(const rt_h3ep *ep) {
  const struct sockaddr *sa = (const struct sockaddr *)&ep->local;
  if (sa->sa_family == AF_INET)
    return ntohs(((const struct sockaddr_in *)sa)->sin_port);
  if (sa->sa_family == AF_INET6)
    return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
  return 0;
}

size_t h2ws__rt_h3_num_conns(const rt_h3ep *ep) { return ep->nconns; }

void h2ws__rt_h3_shutdown(rt_h3ep *ep, uint64_t drain_ms) {
  if (ep->shutting) return;
  ep->shutting = 1;
  uint64_t now = h3_now(ep);
  for (rt_h3c *c = ep->conns; c; c = c->next) {
    if (c->gone) continue;
    h3_deferred_cancel(c, -1);
    h2ws_h3_session_shutdown(c->s, now, drain_ms);
    h3c_mark(c);
  }
  h3ep_maybe_close(ep);
}

void h2ws__rt_h3_close(rt_h3ep *ep) {
  ep->shutting = 1;
  uint64_t now = h3_now(ep);
  for (rt_h3c *c = ep->conns; c; c = c->next) {
    if (c->gone) continue;
    h2ws_h3_session_close(c->s, H2WS_H3_NO_ERROR, now);
    h3c_mark(c);
  }
  h3ep_maybe_close(ep);
}

/* ---- the client connection -------------------------------------------------- */

int h2ws__rt_h3_client_new(rt_h3c **pc, h2ws_rt *rt, const struct sockaddr *to,
                           const rt_h3_client_config *cfg,
                           const rt_h3_client_hooks *hooks, void *owner) {
  struct sockaddr_storage any;
  memset(&any, 0, sizeof any);
  size_t tolen;
  if (to->sa_family == AF_INET6) {
    ((struct sockaddr_in6 *)&any)->sin6_family = AF_INET6;
    tolen = sizeof(struct sockaddr_in6);
  } else {
    ((struct sockaddr_in *)&any)->sin_family = AF_INET;
    tolen = sizeof(struct sockaddr_in);
  }
  char err[256];
  rt_h3ep *ep;
  int rv = h3ep_new(&ep, rt, (const struct sockaddr *)&any, 0, 1, err,
                    sizeof err);
  if (rv != 0) return rv == H2WS_ERR_NOMEM ? rv : H2WS_ERR_RT_CONNECT;
  ep->pcfg = cfg->pcfg;
  ep->cred = cfg->cred;
  if (h2ws__rt_udp_connect(ep->udp, to) != 0) {
    h3ep_maybe_close(ep);
    return H2WS_ERR_RT_CONNECT;
  }
  h2ws__rt_udp_local(ep->udp, &ep->local, &ep->locallen);
  rt_h3c *c = h3c_alloc(ep);
  if (!c) {
    h3ep_maybe_close(ep);
    return H2WS_ERR_NOMEM;
  }
  c->is_client = 1;
  c->hooks = hooks;
  c->owner = owner;
  memcpy(&c->peer, to, tolen);
  c->peerlen = tolen;
  snprintf(c->server_name, sizeof c->server_name, "%s", cfg->server_name);
  h2ws_h3_settings st;
  h3_fill_settings(ep, &st);
  st.server_name = c->server_name;
  st.verify_peer = cfg->verify;
  if (cfg->handshake_ms) st.handshake_timeout_ms = cfg->handshake_ms;
  h2ws_h3_callbacks cb;
  h3_fill_callbacks(&cb, 1);
  h2ws_h3_path path;
  h3_path(ep, (const struct sockaddr *)&c->peer, c->peerlen, &path);
  rv = h2ws_h3_client_new(&c->s, &cb, &st, ep->cred, &path, h3_now(ep),
                          rt->mem, c);
  if (rv != 0) {
    c->gone = 1;
    ep->conns = NULL;
    c->hooks = NULL;
    uv_close((uv_handle_t *)&c->timer, h3c_timer_closed);
    return rv == H2WS_ERR_NOMEM ? rv : H2WS_ERR_INTERNAL;
  }
  h3c_mark(c);
  *pc = c;
  return 0;
}

int h2ws__rt_h3_open(rt_h3c *c, h2ws_rt_ws *ws, const rt_ws_target *t) {
  if (c->gone) return H2WS_ERR_H3_CLOSED;
  h2ws_h3_ws_options o;
  h2ws_h3_ws_options_default(&o);
  o.scheme = "https";
  o.authority = t->authority;
  o.path = t->path;
  o.subprotocols = t->nprotos ? t->protov : NULL;
  o.nsubprotocols = t->nprotos;
  o.origin = t->origin;
  o.pmd_offer.enabled = t->compress;
  if (t->compress) h2ws_pmd_config_default(&o.pmd_offer);
  o.headers = t->nheaders ? t->headers : NULL;
  o.nheaders = t->nheaders;
  h2ws_ws_settings st = *c->ep->pcfg->ws;
  st.whole_messages = 1;
  if (!st.recv_budget) st.recv_budget = RT_RECV_BUDGET;
  h2ws_ws_callbacks wcb;
  o.callbacks = h2ws__rt_ws_engine_callbacks(ws, &wcb);
  o.settings = &st;
  o.user_data = ws;
  rt_h3s *hs = h3s_new(c, ws);
  if (!hs) return H2WS_ERR_NOMEM;
  ws->max_output = st.max_output;
  int64_t sid = -1;
  int rv = h2ws_h3_client_open_ws(c->s, &o, &sid);
  if (rv == H2WS_ERR_H3_GOAWAY) c->goaway = 1;
  if (rv != 0) {
    h3s_release(c, hs);
    return rv;
  }
  hs->sid = sid;
  h3c_mark(c);
  return 0;
}

int h2ws__rt_h3_usable(const rt_h3c *c) {
  return !c->gone && !c->goaway && !c->idle_closing &&
         h2ws_h3_session_want_read(c->s);
}

void h2ws__rt_h3_client_close(rt_h3c *c) {
  if (c->gone) return;
  snprintf(c->why, sizeof c->why, "client closed");
  /* tell the server (CONNECTION_CLOSE), so that it does not wait for an
   * idle timeout: one datagram, no closing period kept */
  uint64_t now = h3_now(c->ep);
  h2ws_h3_session_close(c->s, H2WS_H3_NO_ERROR, now);
  h2ws_h3_batch b;
  if (h2ws_h3_session_send(c->s, &b, now) == 0 && b.count)
    h2ws__rt_udp_send(c->ep->udp, b.path.remote.addr, b.path.remote.addrlen,
                      b.data, b.len, b.segment_size, b.count);
  c->hooks = NULL; /* the owner is going away: it hears nothing more */
  h3c_destroy(c);
}

void h2ws__rt_h3_close_if_idle(rt_h3c *c) { h3c_mark(c); }

/* ---- credentials ------------------------------------------------------------ */

static int h3_pem_append(BIO *b, X509 *x) { return PEM_write_bio_X509(b, x); }

int h2ws__rt_h3_server_cred(gnutls_certificate_credentials_t *pcred,
                            void *ssl_ctx, char *err, size_t errlen) {
  SSL_CTX *ctx = ssl_ctx;
  X509 *leaf = SSL_CTX_get0_certificate(ctx);
  EVP_PKEY *key = SSL_CTX_get0_privatekey(ctx);
  STACK_OF(X509) *chain = NULL;
  if (!leaf || !key) {
    snprintf(err, errlen, "no certificate for HTTP/3");
    return H2WS_ERR_RT_TLS;
  }
  SSL_CTX_get0_chain_certs(ctx, &chain);
  BIO *cb = BIO_new(BIO_s_mem()), *kb = BIO_new(BIO_s_mem());
  int ok = cb && kb && h3_pem_append(cb, leaf);
  for (int i = 0; ok && chain && i < sk_X509_num(chain); i++)
    ok = h3_pem_append(cb, sk_X509_value(chain, i));
  ok = ok && PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL);
  int rv = H2WS_ERR_RT_TLS;
  if (ok) {
    char *cp, *kp;
    long cl = BIO_get_mem_data(cb, &cp), kl = BIO_get_mem_data(kb, &kp);
    gnutls_datum_t cd = {(unsigned char *)cp, (unsigned)cl};
    gnutls_datum_t kd = {(unsigned char *)kp, (unsigned)kl};
    gnutls_certificate_credentials_t cred;
    if (gnutls_certificate_allocate_credentials(&cred) == 0) {
      int g = gnutls_certificate_set_x509_key_mem(cred, &cd, &kd,
                                                  GNUTLS_X509_FMT_PEM);
      if (g < 0) {
        snprintf(err, errlen, "HTTP/3 (GnuTLS) cannot use the certificate: "
                 "%s", gnutls_strerror(g));
        gnutls_certificate_free_credentials(cred);
      } else {
        *pcred = cred;
        rv = 0;
      }
    }
  } else {
    snprintf(err, errlen, "cannot export the certificate for HTTP/3");
  }
  BIO_free(cb);
  BIO_free(kb);
  return rv;
}

int h2ws__rt_h3_client_cred(gnutls_certificate_credentials_t *pcred,
                            const char *cafile, char *err, size_t errlen) {
  gnutls_certificate_credentials_t cred;
  if (gnutls_certificate_allocate_credentials(&cred) != 0) {
    snprintf(err, errlen, "out of memory");
    return H2WS_ERR_NOMEM;
  }
  (void)gnutls_certificate_set_x509_system_trust(cred);
  if (cafile) {
    int g = gnutls_certificate_set_x509_trust_file(cred, cafile,
                                                   GNUTLS_X509_FMT_PEM);
    if (g <= 0) {
      snprintf(err, errlen, "cannot load CA file %s for HTTP/3: %s", cafile,
               g < 0 ? gnutls_strerror(g) : "no certificate in it");
      gnutls_certificate_free_credentials(cred);
      return H2WS_ERR_RT_TLS;
    }
  }
  *pcred = cred;
  return 0;
}
