/* lib/rt/conn_h2.c - HTTP/2 on a connection, both roles, through the
 * sans-I/O binding (h2ws/h2.h): WebSocket streams as h2ws_rt_ws, plain
 * requests to the server's routes, paused streams resumed when their
 * output drains, graceful shutdown. */
#include <stdio.h>
#include <string.h>
#include <h2ws/h2.h>
#include "rt/internal.h"
#include "rt/client.h"

struct rt_h2 {
  rt_conn *c;
  h2ws_h2_session *s;
  h2ws_server *srv;    /* server */
  rt_cconn *owner;     /* client */
  int is_client;
  int goaway;
  int idle_closing;
  int full;             /* client: no stream slot left (until one ends) */
  uint64_t last_active; /* server: last input, for the idle timeout */
  uint64_t idle_ms;     /* server: 0 = no idle timeout */
  h2ws_rt_ws *wss;     /* live WebSockets (open or waiting) */
  h2ws_rt_ws *dead;    /* released by the session, freed outside callbacks */
  h2ws_rt_ws_request *deferred; /* server: requests awaiting the app */
};

static const rt_proto_ops h2_ops;

int h2ws__proto_is_h2(const rt_conn *c) { return c->ops == &h2_ops; }

static uint64_t h2_now(rt_h2 *h2) { return h2ws__rt_now(h2->c->rt); }

static void h2_link(rt_h2 *h2, h2ws_rt_ws *ws) {
  ws->h2 = h2;
  ws->conn = h2->c;
  ws->prev = NULL;
  ws->next = h2->wss;
  if (h2->wss) h2->wss->prev = ws;
  h2->wss = ws;
}

static void h2_unlink(rt_h2 *h2, h2ws_rt_ws *ws) {
  if (ws->prev) ws->prev->next = ws->next;
  else if (h2->wss == ws) h2->wss = ws->next;
  if (ws->next) ws->next->prev = ws->prev;
  ws->next = ws->prev = NULL;
}

static void h2_free_dead(rt_h2 *h2) {
  while (h2->dead) {
    h2ws_rt_ws *ws = h2->dead;
    h2->dead = ws->next;
    h2ws__rt_ws_free(ws);
  }
}

static h2ws_rt_transport h2_transport(rt_h2 *h2) {
  return h2->c->ssl ? H2WS_RT_H2_TLS : H2WS_RT_H2C;
}

/* ---- session callbacks ------------------------------------------------- */

/* The application accepted rq on stream sid: 200 and the engine.  On a
 * deferred accept the stream's held DATA is delivered from inside
 * h2ws_h2_accept_ws(), so the WebSocket is open and linked before it.
 * Returns 0, or an error after refusing with 500 (ws freed). */
static int h2_accepted(rt_h2 *h2, int32_t sid, h2ws_rt_ws_request *rq) {
  h2ws_rt_ws *ws = rq->ws;
  h2ws_h2_accept_options o;
  h2ws_h2_accept_options_default(&o);
  h2ws_ws_settings st = *h2ws__server_ws_settings(h2->srv);
  st.whole_messages = 1;
  o.subprotocol = ws->subprotocol;
  o.pmd = rq->pmd;
  o.callbacks = &h2ws__rt_ws_engine_callbacks;
  o.settings = &st;
  o.user_data = ws;
  ws->stream_id = sid;
  ws->transport = h2_transport(h2);
  ws->state = RT_WS_OPEN;
  h2_link(h2, ws);
  h2ws_ws *e = NULL;
  int rv = h2ws_h2_accept_ws(h2->s, sid, &o, &e);
  if (rv != 0) {
    h2_unlink(h2, ws);
    h2ws__rt_ws_free(ws);
    h2ws_h2_refuse(h2->s, sid, 500, NULL, 0);
    return rv < 0 ? rv : H2WS_ERR_INTERNAL;
  }
  ws->engine = e;
  if (ws->state == RT_WS_OPEN && ws->cbs.on_open)
    ws->cbs.on_open(ws, ws->user_data);
  return 0;
}

static void h2_deferred_unlink(rt_h2 *h2, h2ws_rt_ws_request *rq) {
  h2ws_rt_ws_request **pp = &h2->deferred;
  while (*pp && *pp != rq) pp = &(*pp)->dnext;
  if (*pp) *pp = rq->dnext;
  rq->dnext = NULL;
}

/* A deferred request answered (server.c's hook). */
static int h2_answer(h2ws_rt_ws_request *rq) {
  rt_h2 *h2 = rq->tctx;
  int rv = 0;
  h2_deferred_unlink(h2, rq);
  if (rq->answered == 1)
    rv = h2_accepted(h2, rq->sid, rq);
  else
    h2ws_h2_refuse(h2->s, rq->sid, rq->status, NULL, 0);
  h2ws__rt_ws_request_free(rq);
  h2_free_dead(h2);
  h2ws__conn_mark(h2->c);
  return rv;
}

/* Cancels the deferred request of stream sid (0: all of them). */
static void h2_deferred_cancel(rt_h2 *h2, int32_t sid) {
  h2ws_rt_ws_request **pp = &h2->deferred;
  while (*pp) {
    h2ws_rt_ws_request *rq = *pp;
    if (sid && rq->sid != sid) {
      pp = &rq->dnext;
      continue;
    }
    *pp = rq->dnext;
    h2ws__rt_ws_request_cancel(rq);
  }
}

static int h2_on_ws_request(h2ws_h2_session *s, int32_t sid,
                            const struct h2ws_ws_request *req,
                            const h2ws_h2_request *hreq, void *ud) {
  rt_h2 *h2 = ud;
  (void)hreq;
  h2ws_rt_ws_request *rq = h2ws__rt_ws_request_new(h2->c->rt);
  if (!rq)
    return h2ws_h2_refuse(s, sid, 503, NULL, 0) == H2WS_ERR_NOMEM
               ? H2WS_ERR_NOMEM
               : 0;
  rq->view = req;
  h2ws__server_ws_request(h2->srv, rq, h2_transport(h2));
  if (rq->answered == 2) {
    /* Deferred (h2ws_rt_ws_defer): the binding keeps the stream's DATA
     * within its window until the answer (SPEC pitfall 9). */
    uint64_t budget = h2->c->handshake_ms ? h2->c->handshake_ms : 10000;
    rq->parked = 1;
    rq->tctx = h2;
    rq->sid = sid;
    rq->on_answer = h2_answer;
    rq->deadline = h2_now(h2) + budget;
    rq->dnext = h2->deferred;
    h2->deferred = rq;
    return 0;
  }
  if (rq->answered != 1) {
    int status = rq->status;
    h2ws__rt_ws_request_free(rq);
    return h2ws_h2_refuse(s, sid, status, NULL, 0) == H2WS_ERR_NOMEM
               ? H2WS_ERR_NOMEM
               : 0;
  }
  h2_accepted(h2, sid, rq);
  h2ws__rt_ws_request_free(rq);
  return 0;
}

static void h2_on_stream_close(h2ws_h2_session *s, int32_t sid,
                               uint32_t code, void *ud) {
  (void)s;
  (void)code;
  /* reset by the client (or refused at shutdown) before the answer */
  h2_deferred_cancel(ud, sid);
}

static int h2_on_request(h2ws_h2_session *s, int32_t sid,
                         const h2ws_h2_request *req, void *ud) {
  rt_h2 *h2 = ud;
  if (!req->method || !req->path ||
      (strcmp(req->method, "GET") && strcmp(req->method, "HEAD"))) {
    /* RFC 9110 §9.3.6 / pitfall 10: a plain CONNECT is not a tunnel
     * here; other methods have no handler. */
    return h2ws_h2_refuse(s, sid, req->method &&
                                          strcmp(req->method, "CONNECT") == 0
                                      ? 501
                                      : 405,
                          NULL, 0) == H2WS_ERR_NOMEM
               ? H2WS_ERR_NOMEM
               : 0;
  }
  h2ws_rt_http_request hr = {req->method, req->path, h2_transport(h2)};
  h2ws_rt_http_response resp;
  h2ws__server_http_request(h2->srv, &hr, &resp);
  h2ws_header hs[1] = {
      {"content-type", 12, resp.content_type, strlen(resp.content_type)}};
  int is_head = strcmp(req->method, "HEAD") == 0;
  int rv = h2ws_h2_respond(s, sid, resp.status, hs, 1,
                           is_head ? NULL : resp.body,
                           is_head ? 0 : resp.bodylen);
  return rv == H2WS_ERR_NOMEM ? rv : 0;
}

static void h2_on_ws_closed(h2ws_h2_session *s, int32_t sid, h2ws_ws *e,
                            uint32_t code, void *ud) {
  rt_h2 *h2 = ud;
  (void)s;
  (void)sid;
  (void)code;
  h2ws_rt_ws *ws = h2ws_ws_get_user_data(e);
  if (!ws) return;
  if (ws->state == RT_WS_OPEN) h2ws__rt_ws_closed(ws, H2WS_CLOSE_ABNORMAL,
                                                  NULL, 0);
  ws->engine = NULL; /* freed by the session after this returns */
  h2->full = 0;
  h2_unlink(h2, ws);
  ws->next = h2->dead;
  h2->dead = ws;
}

static int h2_on_ws_open(h2ws_h2_session *s, int32_t sid, h2ws_ws *e,
                         const char *subprotocol, void *req_ud, void *ud) {
  rt_h2 *h2 = ud;
  h2ws_rt_ws *ws = req_ud;
  (void)s;
  ws->engine = e;
  ws->stream_id = sid;
  ws->transport = h2_transport(h2);
  ws->compressed = h2ws_ws_is_compressed(e);
  if (h2ws__rt_ws_set_subprotocol(ws, subprotocol,
                                  subprotocol ? strlen(subprotocol) : 0))
    return H2WS_ERR_NOMEM;
  ws->state = RT_WS_OPEN;
  h2->c->deadline = 0;
  if (h2->c->ssl)
    h2ws__rt_ws_note(ws, "connected via h2 (TLS, ALPN h2), stream %d",
                     (int)sid);
  else
    h2ws__rt_ws_note(ws, "connected via h2c prior knowledge, stream %d",
                     (int)sid);
  if (ws->cbs.on_open) ws->cbs.on_open(ws, ws->user_data);
  return 0;
}

static int h2_on_ws_refused(h2ws_h2_session *s, int32_t sid, int status,
                            int error, void *req_ud, void *ud) {
  rt_h2 *h2 = ud;
  h2ws_rt_ws *ws = req_ud;
  (void)s;
  (void)sid;
  h2->c->deadline = 0;
  h2_unlink(h2, ws);
  ws->h2 = NULL;
  ws->conn = NULL;
  h2ws__client_h2_refused(ws, status, error);
  return 0;
}

static void h2_on_goaway(h2ws_h2_session *s, int32_t last, uint32_t code,
                         void *ud) {
  rt_h2 *h2 = ud;
  (void)s;
  (void)last;
  (void)code;
  /* SPEC H12: new WebSockets go to a new connection. */
  h2->goaway = 1;
}

/* Client -v: HTTP/2 frames to the client's trace. */
static void h2_on_frame_trace(h2ws_h2_session *s, int sent, const char *line,
                              void *ud) {
  rt_h2 *h2 = ud;
  (void)s;
  h2ws__client_cc_trace(h2->owner, sent, line);
}

/* ---- ops --------------------------------------------------------------- */

static int h2_recv(rt_conn *c, const uint8_t *data, size_t len,
                   size_t *pnread) {
  rt_h2 *h2 = c->proto;
  size_t n = 0;
  h2->last_active = h2_now(h2);
  int rv = h2ws_h2_session_recv(h2->s, data, len, &n, h2_now(h2));
  h2_free_dead(h2);
  *pnread = len;
  if (rv == 0) return 0;
  /* h2.h: the connection is over.  Read nothing more (pausing is for
   * good: h2 has no can_resume), flush the GOAWAY the session queued;
   * want_shutdown() closes once want_write() is 0 (at once after a fatal
   * error, which queues nothing). */
  return H2WS_ERR_PAUSE;
}

/* Resumes paused streams whose output drained (SPEC H10: the window is
 * reopened only when the application can take more). */
static int h2_resume(rt_h2 *h2) {
  int rv = 0;
  for (h2ws_rt_ws *ws = h2->wss; ws; ws = ws->next) {
    if (ws->state != RT_WS_OPEN || !ws->stream_id) continue;
    if (!h2ws_h2_ws_is_paused(h2->s, ws->stream_id)) continue;
    if (!h2ws__rt_ws_can_resume(ws)) continue;
    rv = h2ws_h2_resume_ws(h2->s, ws->stream_id, h2_now(h2));
    if (rv == H2WS_ERR_NOMEM) break;
    rv = 0;
  }
  h2_free_dead(h2);
  return rv;
}

static int h2_send(rt_conn *c, const uint8_t **p, size_t *n) {
  rt_h2 *h2 = c->proto;
  int rv = h2_resume(h2);
  if (rv < 0) return rv;
  rv = h2ws_h2_session_send(h2->s, p, n, h2_now(h2));
  h2_free_dead(h2);
  return rv;
}

static void h2_send_consumed(rt_conn *c, size_t n) {
  rt_h2 *h2 = c->proto;
  h2ws_h2_session_send_consumed(h2->s, n);
}

static int h2_want_shutdown(rt_conn *c) {
  rt_h2 *h2 = c->proto;
  if (c->eof_seen) return 1;
  if (h2->is_client && !h2->wss && !h2->idle_closing &&
      h2ws__client_close_idle(h2->owner)) {
    /* the last WebSocket ended and the client does not keep idle
     * connections: GOAWAY, then FIN */
    h2->idle_closing = 1;
    h2->goaway = 1;
    h2ws_h2_session_shutdown(h2->s, h2_now(h2), 0);
    h2ws__conn_mark(c);
    return 0;
  }
  return !h2ws_h2_session_want_read(h2->s) &&
         !h2ws_h2_session_want_write(h2->s);
}

/* Aborts every WebSocket (the transport is gone): 1006 to the
 * application, refusal for those not yet open. */
static void h2_abort_all(rt_h2 *h2, const char *why) {
  h2ws_rt_ws *ws = h2->wss;
  while (ws) {
    h2ws_rt_ws *next = ws->next;
    if (ws->state == RT_WS_OPEN) {
      if (ws->engine) h2ws_ws_abort(ws->engine);
      h2ws__rt_ws_closed(ws, H2WS_CLOSE_ABNORMAL, NULL, 0);
    } else if (ws->state == RT_WS_WAITING) {
      h2ws__rt_ws_fail(ws, H2WS_RT_FAIL_CONNECT, 0, "%s", why);
    }
    ws = next;
  }
}

static void h2_on_eof(rt_conn *c) {
  rt_h2 *h2 = c->proto;
  h2_abort_all(h2, "connection closed before the WebSocket opened");
}

static void h2_on_close(rt_conn *c, int error) {
  rt_h2 *h2 = c->proto;
  (void)error;
  h2_deferred_cancel(h2, 0);
  h2_abort_all(h2, c->errmsg[0] ? c->errmsg
                                 : "connection closed before the WebSocket "
                                   "opened");
  while (h2->wss) {
    h2ws_rt_ws *ws = h2->wss;
    h2_unlink(h2, ws);
    ws->engine = NULL; /* the session frees its engines */
    h2ws__rt_ws_free(ws);
  }
  h2_free_dead(h2);
  h2ws_h2_session_del(h2->s);
  h2ws__free(c->rt->mem, h2);
}

/* Server: when the connection carries no WebSocket and the peer has been
 * silent for idle_ms (pitfall 17: a connection with an open WebSocket is
 * never idle). */
static uint64_t h2_idle_deadline(rt_h2 *h2) {
  if (!h2->idle_ms || h2->idle_closing || h2ws_h2_session_num_ws(h2->s))
    return H2WS_NO_EXPIRY;
  return h2->last_active + h2->idle_ms;
}

static uint64_t h2_get_expiry(rt_conn *c) {
  rt_h2 *h2 = c->proto;
  uint64_t e = h2ws_h2_session_get_expiry(h2->s);
  uint64_t idle = h2_idle_deadline(h2);
  for (h2ws_rt_ws_request *rq = h2->deferred; rq; rq = rq->dnext)
    if (rq->deadline < e) e = rq->deadline;
  return idle < e ? idle : e;
}

static void h2_handle_expiry(rt_conn *c, uint64_t now) {
  rt_h2 *h2 = c->proto;
  h2ws_h2_session_handle_expiry(h2->s, now);
  for (h2ws_rt_ws_request *rq = h2->deferred; rq;) {
    h2ws_rt_ws_request *next = rq->dnext;
    if (now >= rq->deadline) {
      /* the application never answered: 504, then tell it */
      h2_deferred_unlink(h2, rq);
      h2ws_h2_refuse(h2->s, rq->sid, 504, NULL, 0);
      h2ws__server_count_refusal(h2->srv, 504);
      h2ws__rt_ws_request_cancel(rq);
    }
    rq = next;
  }
  if (now >= h2_idle_deadline(h2)) {
    h2->idle_closing = 1;
    h2ws_h2_session_shutdown(h2->s, now, 0); /* GOAWAY */
  }
  h2_free_dead(h2);
}

static const rt_proto_ops h2_ops = {
    .recv = h2_recv,
    .send = h2_send,
    .send_consumed = h2_send_consumed,
    .want_shutdown = h2_want_shutdown,
    .on_eof = h2_on_eof,
    .on_close = h2_on_close,
    .get_expiry = h2_get_expiry,
    .handle_expiry = h2_handle_expiry,
};

static int h2_start(rt_conn *c, h2ws_role role, h2ws_server *srv,
                    rt_cconn *owner, rt_h2 **ph2) {
  rt_h2 *h2 = h2ws__calloc(c->rt->mem, 1, sizeof *h2);
  if (!h2) return H2WS_ERR_NOMEM;
  h2->c = c;
  h2->srv = srv;
  h2->owner = owner;
  h2->is_client = role == H2WS_ROLE_CLIENT;
  h2ws_h2_settings st;
  h2ws_h2_settings_default(&st);
  h2ws_h2_callbacks cb;
  memset(&cb, 0, sizeof cb);
  if (srv) {
    st.enable_connect_protocol = h2ws__server_h2_websockets(srv);
    cb.on_ws_request = h2_on_ws_request;
    cb.on_request = h2_on_request;
    cb.on_stream_close = h2_on_stream_close;
  } else {
    cb.on_ws_open = h2_on_ws_open;
    cb.on_ws_refused = h2_on_ws_refused;
    cb.on_goaway = h2_on_goaway;
    if (h2ws__client_cc_tracing(owner)) cb.on_frame_trace = h2_on_frame_trace;
  }
  cb.on_ws_closed = h2_on_ws_closed;
  int rv = h2ws_h2_session_new(&h2->s, role, &cb, &st, c->rt->mem, h2);
  if (rv != 0) {
    h2ws__free(c->rt->mem, h2);
    return rv;
  }
  /* A server has nothing to wait for (idle connections are timed out
   * separately); a client keeps the handshake deadline until its first
   * WebSocket is answered. */
  if (srv) c->deadline = 0;
  h2->last_active = h2ws__rt_now(c->rt);
  h2->idle_ms = srv ? h2ws__server_idle_ms(srv) : 0;
  h2ws__conn_set_proto(c, &h2_ops, h2);
  if (ph2) *ph2 = h2;
  return 0;
}

int h2ws__h2_server_start(rt_conn *c, h2ws_server *srv) {
  return h2_start(c, H2WS_ROLE_SERVER, srv, NULL, NULL);
}

void h2ws__h2_shutdown(rt_h2 *h2, uint64_t drain_ms) {
  h2ws_h2_session_shutdown(h2->s, h2_now(h2), drain_ms);
  h2ws__conn_mark(h2->c);
}

int h2ws__h2_client_start(rt_conn *c, rt_cconn *owner, rt_h2 **ph2) {
  return h2_start(c, H2WS_ROLE_CLIENT, NULL, owner, ph2);
}

int h2ws__h2_usable(const rt_h2 *h2) {
  return !h2->goaway && !h2->full && h2->c->state == RT_CONN_OPEN &&
         !h2->c->eof_seen &&
         !h2->c->shut_down && h2ws_h2_session_want_read(h2->s);
}

/* ---- client requests --------------------------------------------------- */

int h2ws__h2_client_open(rt_h2 *h2, h2ws_rt_ws *ws) {
  struct rt_cws *q = ws->creq;
  h2ws_h2_ws_options o;
  h2ws_h2_ws_options_default(&o);
  o.scheme = q->tls ? "https" : "http"; /* RFC 8441 §4, pitfall 5 */
  o.authority = q->authority;
  o.path = q->path;
  o.subprotocols = q->nprotos ? q->protov : NULL;
  o.nsubprotocols = q->nprotos;
  o.origin = q->origin[0] ? q->origin : NULL;
  o.pmd_offer.enabled = q->compress; /* defaults otherwise */
  o.headers = q->nheaders ? q->headers : NULL; /* checked at open */
  o.nheaders = q->nheaders;
  h2ws_ws_settings st = *h2ws__client_ws_settings(ws->client);
  st.whole_messages = 1;
  h2ws_ws_callbacks wcb; /* the client's -v adds a frame trace */
  o.callbacks = h2ws__rt_ws_engine_callbacks_for(ws, &wcb);
  o.settings = &st;
  o.user_data = ws;
  int32_t sid = 0;
  ws->max_output = st.max_output;
  h2_link(h2, ws);
  int rv = h2ws_h2_client_open_ws(h2->s, &o, &sid);
  if (rv == H2WS_ERR_H2_TOO_MANY_STREAMS) h2->full = 1;
  if (rv == H2WS_ERR_H2_GOAWAY) h2->goaway = 1;
  if (rv != 0) {
    h2_unlink(h2, ws);
    ws->h2 = NULL;
    ws->conn = NULL;
    return rv;
  }
  ws->stream_id = sid;
  h2ws__conn_mark(h2->c);
  return 0;
}
