/* lib/rt/conn_h2.c - HTTP/2 on a connection, both roles, through the
 * sans-I/O binding (h2ws/h2.h): each WebSocket stream is a carrier
 * (rt_h2s) of an h2ws_rt_ws, plain requests go to the owner, paused
 * streams are resumed when their output drains, graceful shutdown. */
#include <stdio.h>
#include <string.h>
#include <h2ws/h2.h>
#include "rt/proto.h"

/* Default budget of a deferred answer (the connection's handshake one). */
#define H2_DEFER_MS 10000
/* RFC 9113 §7: CANCEL, for h2ws_rt_ws_abort. */
#define H2_CANCEL 0x8u

/* One WebSocket stream: the carrier its h2ws_rt_ws sees. */
typedef struct rt_h2s rt_h2s;
struct rt_h2s {
  rt_carrier carrier;
  rt_h2 *h2;
  h2ws_rt_ws *ws;
  int32_t sid;         /* 0 while a client request waits for SETTINGS */
  int abort;           /* reset at the next flush */
  uint64_t close_at;   /* server: our Close queued (write deadline), or 0 */
  rt_h2s *next, *prev; /* h2->streams, or h2->dead */
};

struct rt_h2 {
  rt_conn *c;
  const rt_proto_config *cfg;
  h2ws_h2_session *s;
  int is_client;
  int goaway;
  int idle_closing;
  int full;             /* client: no stream slot left (until one ends) */
  int vec_out;          /* the last pull lent engine bytes (h2_sendv) */
  int no_vec;           /* sendv had no memory: send() (copies) instead */
  int unlent;           /* vectors in a row that lent nothing */
  int copying;          /* H2_VEC_UNLENT of them: send() until a
                           batch of H2_VEC_BATCH comes (see h2_sendv) */
  int naborts;          /* streams with abort set */
  int nclosing;         /* streams with close_at set */
  rt_budget budget;     /* server: the memory of all its streams' output */
  uint64_t last_active; /* server: last input, for the idle timeout */
  int idle;             /* client: carries no WebSocket, since idle_since */
  uint64_t idle_since;
  rt_h2s *streams;      /* live WebSockets (open or waiting) */
  rt_h2s *dead;         /* released by the session, freed outside callbacks */
  h2ws_rt_ws_request *deferred; /* server: requests awaiting the app */
  /* server: where the peer is in its byte stream (issue 9 H: the preface,
   * a frame, or a header block (HEADERS + CONTINUATION) not completed
   * within the connection's handshake budget ends the connection; any
   * byte used to reset the idle timer, so one byte every 40 s held a
   * connection for ever) */
  int ft_state;         /* 0 preface, 1 frame header, 2 payload */
  uint32_t ft_need;     /* bytes left of the preface / payload */
  uint8_t ft_hdr[9];
  int ft_hlen;
  int ft_in_block;      /* a header block without END_HEADERS yet */
  uint64_t ft_since;    /* when the incomplete unit began; 0: none */
  int ft_expired;       /* timed out: GOAWAY, then FIN */
};

static const rt_proto_ops h2_ops;
static const rt_carrier_ops h2_carrier_ops;

static uint64_t h2_now(rt_h2 *h2) { return h2ws__rt_now(h2->c->rt); }

static h2ws_rt_transport h2_transport(const rt_h2 *h2) {
  return h2ws__rt_conn_encrypted(h2->c) ? H2WS_RT_H2_TLS : H2WS_RT_H2C;
}

/* ---- streams (carriers) ------------------------------------------------- */

static rt_h2s *h2s_of(const rt_carrier *ca) {
  return (rt_h2s *)((char *)ca - offsetof(rt_h2s, carrier));
}

static rt_h2s *h2s_of_ws(const h2ws_rt_ws *ws) {
  return ws->carrier ? h2s_of(ws->carrier) : NULL;
}

/* A carrier for ws on this connection, linked into h2->streams. */
static rt_h2s *h2s_new(rt_h2 *h2, h2ws_rt_ws *ws) {
  rt_h2s *hs = h2ws__calloc(h2->c->rt->mem, 1, sizeof *hs);
  if (!hs) return NULL;
  hs->carrier.ops = &h2_carrier_ops;
  hs->h2 = h2;
  hs->ws = ws;
  hs->next = h2->streams;
  if (h2->streams) h2->streams->prev = hs;
  h2->streams = hs;
  h2->idle = 0;
  h2ws__rt_ws_attach(ws, &hs->carrier);
  return hs;
}

static void h2s_unlink(rt_h2 *h2, rt_h2s *hs) {
  if (hs->prev) hs->prev->next = hs->next;
  else if (h2->streams == hs) h2->streams = hs->next;
  if (hs->next) hs->next->prev = hs->prev;
  hs->next = hs->prev = NULL;
  if (hs->abort) {
    hs->abort = 0;
    h2->naborts--;
  }
  if (hs->close_at) {
    hs->close_at = 0;
    h2->nclosing--;
  }
}

/* The stream gives its WebSocket back (refused before opening, or a
 * failed open): the WebSocket has no carrier any more. */
static void h2s_release(rt_h2 *h2, rt_h2s *hs) {
  h2s_unlink(h2, hs);
  h2ws__rt_ws_attach(hs->ws, NULL);
  h2ws__free(h2->c->rt->mem, hs);
}

static void h2_free_dead(rt_h2 *h2) {
  while (h2->dead) {
    rt_h2s *hs = h2->dead;
    h2->dead = hs->next;
    h2ws__rt_ws_free(hs->ws);
    h2ws__free(h2->c->rt->mem, hs);
  }
}

static void h2_ca_wake(rt_carrier *ca) {
  h2ws__rt_conn_mark(h2s_of(ca)->h2->c);
}

/* The flush resumes the stream (h2_resume) once it can take input. */
static void h2_ca_resume(rt_carrier *ca) {
  h2ws__rt_conn_mark(h2s_of(ca)->h2->c);
}

/* The binding ends the stream (END_STREAM) itself once the engine is done
 * and its output is out; only a flush is needed. */
static void h2_ca_half_close(rt_carrier *ca) {
  h2ws__rt_conn_mark(h2s_of(ca)->h2->c);
}

/* The write deadline starts (server WebSockets): h2_handle_expiry. */
static void h2_ca_closing(rt_carrier *ca) {
  rt_h2s *hs = h2s_of(ca);
  if (!hs->close_at) {
    hs->close_at = h2_now(hs->h2);
    hs->h2->nclosing++;
  }
  h2ws__rt_conn_mark(hs->h2->c);
}

static void h2_ca_abort(rt_carrier *ca) {
  rt_h2s *hs = h2s_of(ca);
  if (!hs->abort) {
    hs->abort = 1;
    hs->h2->naborts++;
  }
  h2ws__rt_conn_mark(hs->h2->c);
}

static void h2_ca_describe(const rt_carrier *ca, h2ws_rt_ws_info *info) {
  const rt_h2s *hs = h2s_of(ca);
  info->transport = h2_transport(hs->h2);
  info->http_version = 2;
  info->encrypted = h2ws__rt_conn_encrypted(hs->h2->c);
  info->stream_id = hs->sid;
  info->conn_id = hs->h2->c->id;
  info->peer = hs->h2->c->peer;
}

static const rt_carrier_ops h2_carrier_ops = {
    .wake = h2_ca_wake,
    .resume = h2_ca_resume,
    .half_close = h2_ca_half_close,
    .abort = h2_ca_abort,
    .describe = h2_ca_describe,
    .closing = h2_ca_closing,
};

/* ---- session callbacks ------------------------------------------------- */

/* The application accepted rq on stream sid: 200 and the engine.  On a
 * deferred accept the stream's held DATA is delivered from inside
 * h2ws_h2_accept_ws(), so the WebSocket is open and carried before it.
 * Returns 0, or an error after refusing with 500 (ws freed). */
static int h2_accepted(rt_h2 *h2, int32_t sid, h2ws_rt_ws_request *rq) {
  h2ws_rt_ws *ws = rq->ws;
  h2ws_h2_accept_options o;
  h2ws_h2_accept_options_default(&o);
  h2ws_ws_settings st = *h2->cfg->ws;
  st.whole_messages = 1;
  if (!st.recv_budget) st.recv_budget = RT_RECV_BUDGET;
  h2ws_ws_callbacks wcb;
  o.subprotocol = ws->subprotocol;
  o.pmd = rq->pmd;
  o.callbacks = h2ws__rt_ws_engine_callbacks(ws, &wcb);
  o.settings = &st;
  o.user_data = ws;
  /* RFC 7838: HTTP/3 on the same port (a client may go there next) */
  h2ws_header alt = {"alt-svc", 7, h2->cfg->alt_svc,
                     strlen(h2->cfg->alt_svc)};
  if (alt.valuelen) {
    o.headers = &alt;
    o.nheaders = 1;
  }
  rt_h2s *hs = h2s_new(h2, ws);
  if (!hs) {
    h2ws__rt_ws_free(ws);
    h2ws_h2_refuse(h2->s, sid, 500, NULL, 0);
    return H2WS_ERR_NOMEM;
  }
  hs->sid = sid;
  ws->conn_budget = &h2->budget;
  h2ws__rt_ws_start(ws, NULL);
  h2ws_ws *e = NULL;
  int rv = h2ws_h2_accept_ws(h2->s, sid, &o, &e);
  if (rv != 0) {
    h2s_release(h2, hs);
    h2ws__rt_ws_free(ws);
    h2ws_h2_refuse(h2->s, sid, 500, NULL, 0);
    return rv < 0 ? rv : H2WS_ERR_INTERNAL;
  }
  /* held DATA delivered inside may have ended it already (then the
   * engine is gone and the stream is on the dead list) */
  if (ws->state == RT_WS_OPEN) ws->engine = e;
  h2ws__rt_ws_opened(ws);
  return 0;
}

/* A deferred request answered (server.c's hook). */
static int h2_answer(h2ws_rt_ws_request *rq) {
  rt_h2 *h2 = rq->tctx;
  int rv = 0;
  h2ws__rt_request_unlink(&h2->deferred, rq);
  if (rq->answered == 1)
    rv = h2_accepted(h2, rq->sid, rq);
  else
    h2ws_h2_refuse(h2->s, rq->sid, rq->status, NULL, 0);
  h2ws__rt_request_free(rq);
  h2_free_dead(h2);
  h2ws__rt_conn_mark(h2->c);
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
    h2ws__rt_request_cancel(rq);
  }
}

static int h2_on_ws_request(h2ws_h2_session *s, int32_t sid,
                            const struct h2ws_ws_request *req,
                            const h2ws_h2_request *hreq, void *ud) {
  rt_h2 *h2 = ud;
  rt_conn *c = h2->c;
  (void)hreq;
  h2ws_rt_ws_request *rq = h2ws__rt_request_new(c->rt);
  if (!rq)
    return h2ws_h2_refuse(s, sid, 503, NULL, 0) == H2WS_ERR_NOMEM
               ? H2WS_ERR_NOMEM
               : 0;
  rq->view = req;
  rq->info.transport = h2_transport(h2);
  rq->info.http_version = 2;
  rq->info.encrypted = h2ws__rt_conn_encrypted(c);
  rq->info.stream_id = sid;
  rq->info.conn_id = c->id;
  rq->info.peer = c->peer;
  uint64_t budget = c->handshake_ms ? c->handshake_ms : H2_DEFER_MS;
  int v = h2ws__rt_request_decide(rq, c->owner->ws_request, c->owner_data,
                                  &h2->deferred, sid, h2, h2_answer,
                                  h2_now(h2) + budget);
  if (v == 0) return 0; /* deferred */
  if (v < 0)
    return h2ws_h2_refuse(s, sid, -v, NULL, 0) == H2WS_ERR_NOMEM
               ? H2WS_ERR_NOMEM
               : 0;
  h2_accepted(h2, sid, rq);
  h2ws__rt_request_free(rq);
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
  rt_conn *c = h2->c;
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
  memset(&resp, 0, sizeof resp);
  resp.status = 404;
  resp.content_type = "text/plain; charset=utf-8";
  if (c->owner->http_request)
    c->owner->http_request(&hr, &resp, c->owner_data);
  /* A 426 carries no Upgrade header here: RFC 9113 §8.2.2 forbids it on
   * HTTP/2 (the body says what to do instead). */
  h2ws_header hs[2] = {
      {"content-type", 12, resp.content_type, strlen(resp.content_type)},
      /* RFC 7838: HTTP/3 on the same port, once it listens */
      {"alt-svc", 7, h2->cfg->alt_svc, strlen(h2->cfg->alt_svc)}};
  int is_head = strcmp(req->method, "HEAD") == 0;
  int rv = h2ws_h2_respond(s, sid, resp.status, hs,
                           h2->cfg->alt_svc[0] ? 2 : 1,
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
  rt_h2s *hs = h2s_of_ws(ws);
  if (ws->state == RT_WS_OPEN)
    h2ws__rt_ws_closed(ws, H2WS_CLOSE_ABNORMAL, NULL, 0);
  ws->engine = NULL; /* freed by the session after this returns */
  h2->full = 0;
  if (!hs) return;
  h2s_unlink(h2, hs);
  hs->next = h2->dead;
  h2->dead = hs;
}

static int h2_on_ws_open(h2ws_h2_session *s, int32_t sid, h2ws_ws *e,
                         const char *subprotocol, void *req_ud, void *ud) {
  rt_h2 *h2 = ud;
  h2ws_rt_ws *ws = req_ud;
  rt_h2s *hs = h2s_of_ws(ws);
  (void)s;
  if (hs) hs->sid = sid;
  ws->compressed = h2ws_ws_is_compressed(e) != 0;
  if (h2ws__rt_ws_set_subprotocol(ws, subprotocol,
                                  subprotocol ? strlen(subprotocol) : 0))
    return H2WS_ERR_NOMEM;
  h2ws__rt_ws_start(ws, e);
  h2->c->deadline = 0;
  if (h2ws__rt_conn_encrypted(h2->c))
    h2ws__rt_ws_note(ws, "connected via h2 (TLS, ALPN h2), stream %d",
                     (int)sid);
  else
    h2ws__rt_ws_note(ws, "connected via h2c prior knowledge, stream %d",
                     (int)sid);
  h2ws__rt_ws_opened(ws);
  return 0;
}

static int h2_on_ws_refused(h2ws_h2_session *s, int32_t sid, int status,
                            int error, void *req_ud, void *ud) {
  rt_h2 *h2 = ud;
  h2ws_rt_ws *ws = req_ud;
  rt_h2s *hs = h2s_of_ws(ws);
  rt_conn *c = h2->c;
  (void)s;
  c->deadline = 0;
  /* the pool's cue: a full connection takes no more until a stream ends
   * (a refused stream that had been sent frees its slot) */
  if (error == H2WS_ERR_H2_TOO_MANY_STREAMS) h2->full = 1;
  else if (sid) h2->full = 0;
  if (hs) h2s_release(h2, hs);
  if (c->owner->ws_refused) {
    c->owner->ws_refused(ws, status, error, c->owner_data);
  } else {
    h2ws__rt_ws_fail(ws, error, status, "%s", h2ws_strerror(error));
    h2ws__rt_ws_free(ws);
  }
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

/* Client: the answer's Alt-Svc (RFC 7838) to the owner. */
static void h2_on_ws_response(h2ws_h2_session *s, int32_t sid, int status,
                              const h2ws_header *hs, size_t n, void *req_ud,
                              void *ud) {
  rt_h2 *h2 = ud;
  (void)s;
  (void)sid;
  (void)status;
  (void)req_ud;
  for (size_t i = 0; i < n && h2->c->owner->alt_svc; i++)
    if (hs[i].namelen == 7 && memcmp(hs[i].name, "alt-svc", 7) == 0)
      h2->c->owner->alt_svc(hs[i].value, hs[i].valuelen, h2->c->owner_data);
}

/* Client -v: HTTP/2 frames to the owner's trace. */
static void h2_on_frame_trace(h2ws_h2_session *s, int sent, const char *line,
                              void *ud) {
  rt_h2 *h2 = ud;
  (void)s;
  if (h2->c->owner->trace) h2->c->owner->trace(sent, line, h2->c->owner_data);
}

/* ---- protocol ops -------------------------------------------------------- */

/* Server: follows the frame boundaries of the input (RFC 9113 §4.1) to
 * know whether the peer is in the middle of something: the preface, a
 * frame, or a header block. */
static void h2_track(rt_h2 *h2, const uint8_t *d, size_t len) {
  int done = 0; /* a unit (frame outside a block, or a block) completed */
  while (len > 0) {
    if (h2->ft_state == 0 || h2->ft_state == 2) {
      size_t take = len < h2->ft_need ? len : h2->ft_need;
      h2->ft_need -= (uint32_t)take;
      d += take;
      len -= take;
      if (h2->ft_need == 0) {
        if (!h2->ft_in_block) done = 1;
        h2->ft_state = 1;
        h2->ft_hlen = 0;
      }
      continue;
    }
    h2->ft_hdr[h2->ft_hlen++] = *d++;
    len--;
    if (h2->ft_hlen < 9) continue;
    const uint8_t *hd = h2->ft_hdr;
    uint8_t type = hd[3], flags = hd[4];
    if (type == 0x1 || type == 0x5) /* HEADERS, PUSH_PROMISE */
      h2->ft_in_block = !(flags & 0x4);
    else if (type == 0x9 && (flags & 0x4)) /* CONTINUATION, END_HEADERS */
      h2->ft_in_block = 0;
    h2->ft_need = ((uint32_t)hd[0] << 16) | ((uint32_t)hd[1] << 8) | hd[2];
    h2->ft_hlen = 0;
    if (h2->ft_need > 0) {
      h2->ft_state = 2;
    } else if (!h2->ft_in_block) {
      done = 1;
    }
  }
  int incomplete = h2->ft_state != 1 || h2->ft_hlen > 0 || h2->ft_in_block;
  if (!incomplete) h2->ft_since = 0;
  else if (done || !h2->ft_since) h2->ft_since = h2_now(h2);
}

static int h2_recv(rt_conn *c, const uint8_t *data, size_t len,
                   size_t *pnread) {
  rt_h2 *h2 = c->proto;
  size_t n = 0;
  h2->last_active = h2_now(h2);
  if (!h2->is_client) h2_track(h2, data, len);
  int rv = h2ws_h2_session_recv(h2->s, data, len, &n, h2_now(h2));
  /* held input (messages being reassembled) and automatic replies */
  if (!h2->is_client)
    for (rt_h2s *hs = h2->streams; hs; hs = hs->next)
      if (hs->ws->engine) h2ws__rt_ws_account(hs->ws);
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
 * reopened only when the application can take more), and resets the
 * streams the application aborted. */
static int h2_resume(rt_h2 *h2) {
  int rv = 0;
  for (rt_h2s *hs = h2->streams; hs;) {
    rt_h2s *next = hs->next;
    h2ws_rt_ws *ws = hs->ws;
    if (hs->abort && hs->sid) {
      hs->abort = 0;
      h2->naborts--;
      rv = h2ws_h2_reset(h2->s, hs->sid, H2_CANCEL);
      if (rv == H2WS_ERR_NOMEM) break;
      rv = 0;
    } else if (ws->state == RT_WS_OPEN && hs->sid &&
               h2ws_h2_ws_is_paused(h2->s, hs->sid) &&
               h2ws__rt_ws_can_resume(ws)) {
      rv = h2ws_h2_resume_ws(h2->s, hs->sid, h2_now(h2));
      if (rv == H2WS_ERR_NOMEM) break;
      rv = 0;
    }
    hs = next;
  }
  h2_free_dead(h2);
  return rv;
}

/* The session took engine output: the budgets follow, and a stream that
 * may read again is resumed at the next flush (the resume before the
 * pull ran before this drain). */
static void h2_sent(rt_h2 *h2) {
  if (!h2->is_client)
    for (rt_h2s *hs = h2->streams; hs; hs = hs->next) {
      h2ws_rt_ws *ws = hs->ws;
      if (!ws->engine) continue;
      size_t before = ws->held;
      h2ws__rt_ws_account(ws);
      if (ws->held < before && ws->budget_paused && ws->state == RT_WS_OPEN &&
          hs->sid && h2ws_h2_ws_is_paused(h2->s, hs->sid) &&
          h2ws__rt_ws_can_resume(ws))
        h2ws__rt_conn_mark(h2->c);
    }
}

static int h2_send(rt_conn *c, const uint8_t **p, size_t *n) {
  rt_h2 *h2 = c->proto;
  int rv = h2_resume(h2);
  if (rv < 0) return rv;
  rv = h2ws_h2_session_send(h2->s, p, n, h2_now(h2));
  h2_sent(h2);
  h2_free_dead(h2);
  return rv;
}

/* A batch this large goes back to vectors (its DATA was copied). */
#define H2_VEC_BATCH (16u * 1024u)
/* Vectors that lent nothing, in a row, before send() is used instead. */
#define H2_VEC_UNLENT 4

/* The write path: DATA payload straight from the engines' queues (no
 * copy into the session's batch); the engines give it up, and the
 * budgets follow, in send_consumed. */
static int h2_sendv(rt_conn *c, h2ws_h2_iov *iov, size_t *pcnt,
                    size_t *ptotal) {
  rt_h2 *h2 = c->proto;
  size_t cap = *pcnt;
  *pcnt = *ptotal = 0;
  int rv = 0;
  if (!h2->no_vec && !h2->copying) {
    rv = h2_resume(h2);
    if (rv < 0) return rv;
    h2_free_dead(h2);
    *pcnt = cap;
    rv = h2ws_h2_session_sendv(h2->s, iov, pcnt, ptotal, h2_now(h2));
    if (rv != H2WS_ERR_NOMEM) {
      h2->vec_out = *ptotal != 0;
      /* one piece: nothing lent (a lent piece follows its DATA header).
       * Several in a row: small messages, for which a vector costs more
       * than the copy (a lone WINDOW_UPDATE between bulk batches does
       * not count) */
      if (rv == 0 && *pcnt >= 2) h2->unlent = 0;
      if (rv == 0 && *pcnt == 1 && ++h2->unlent >= H2_VEC_UNLENT)
        h2->copying = 1;
      return rv;
    }
    h2->no_vec = 1; /* no piece table: the copying send() from now on */
  }
  const uint8_t *p;
  size_t n = 0;
  rv = h2_send(c, &p, &n);
  if (rv == 0 && n) {
    iov[0].base = p;
    iov[0].len = n;
    *pcnt = 1;
    *ptotal = n;
  }
  /* a batch of bulk: vectors again from the next pull on */
  if (n >= H2_VEC_BATCH) h2->copying = h2->unlent = 0;
  return rv;
}

static void h2_send_consumed(rt_conn *c, size_t n) {
  rt_h2 *h2 = c->proto;
  h2ws_h2_session_send_consumed(h2->s, n);
  if (h2->vec_out) {
    h2->vec_out = 0;
    h2_sent(h2);
  }
}

/* Client: nonzero if the connection carries no WebSocket and its owner
 * lets idle connections go (after cfg->idle_ms of idleness), or it can
 * take none any more (GOAWAY: at once). */
static int h2_client_idle(rt_h2 *h2) {
  rt_conn *c = h2->c;
  return h2->is_client && !h2->streams && !h2->idle_closing &&
         (h2->goaway ||
          (c->owner->close_idle && c->owner->close_idle(c->owner_data)));
}

static int h2_want_shutdown(rt_conn *c) {
  rt_h2 *h2 = c->proto;
  if (c->eof_seen) return 1;
  if (h2->ft_expired) return !h2ws_h2_session_want_write(h2->s);
  if (h2_client_idle(h2)) {
    uint64_t now = h2_now(h2);
    if (!h2->idle) {
      h2->idle = 1;
      h2->idle_since = now;
    }
    if (h2->goaway || now >= h2->idle_since + h2->cfg->idle_ms) {
      /* no WebSocket for idle_ms (0: the last one just ended) and the
       * owner does not keep idle connections, or the server's GOAWAY
       * left nothing to wait for: GOAWAY, then FIN */
      h2->idle_closing = 1;
      h2->goaway = 1;
      h2ws_h2_session_shutdown(h2->s, now, 0);
      h2ws__rt_conn_mark(c);
    }
    return 0; /* else the timer (h2_idle_deadline) comes back */
  }
  return !h2ws_h2_session_want_read(h2->s) &&
         !h2ws_h2_session_want_write(h2->s);
}

/* Aborts every WebSocket (the transport is gone): 1006 to the
 * application, failure for those not yet open.  A client connection on
 * which the server answered, but not with SETTINGS, before the end (not
 * a timeout, nor a reason conn.c found, such as TLS on a cleartext port;
 * a server that says nothing keeps conn.c's "closed without answering")
 * met a server that does not speak HTTP/2 (prior knowledge to an
 * HTTP/1.1 server: "HTTP/1.1 400 ..."): its
 * waiting WebSockets go back to the owner (ws_refused,
 * H2WS_ERR_RT_NOT_H2), which may fall back to HTTP/1.1. */
static void h2_abort_all(rt_h2 *h2, int error, const char *why) {
  rt_conn *c = h2->c;
  int not_h2 = h2->is_client && c->owner->ws_refused &&
               error == H2WS_ERR_CLOSED && c->got_bytes &&
               !h2ws_h2_session_peer_settings(h2->s, NULL);
  rt_h2s *hs = h2->streams;
  while (hs) {
    rt_h2s *next = hs->next;
    h2ws_rt_ws *ws = hs->ws;
    if (ws->state == RT_WS_OPEN) {
      if (ws->engine) h2ws_ws_abort(ws->engine);
      h2ws__rt_ws_closed(ws, H2WS_CLOSE_ABNORMAL, NULL, 0);
    } else if (ws->state == RT_WS_WAITING && not_h2) {
      h2s_release(h2, hs);
      c->owner->ws_refused(ws, 0, H2WS_ERR_RT_NOT_H2, c->owner_data);
    } else if (ws->state == RT_WS_WAITING) {
      h2ws__rt_ws_fail(ws, error, 0, "%s", why);
    }
    hs = next;
  }
}

static void h2_on_eof(rt_conn *c) {
  rt_h2 *h2 = c->proto;
  h2_abort_all(h2, H2WS_ERR_CLOSED,
               c->errmsg[0] ? c->errmsg
                            : "connection closed before the WebSocket opened");
}

static void h2_on_close(rt_conn *c, int error) {
  rt_h2 *h2 = c->proto;
  (void)error;
  h2_deferred_cancel(h2, 0);
  h2_abort_all(h2, c->fail_error ? c->fail_error : H2WS_ERR_CLOSED,
               c->errmsg[0] ? c->errmsg
                            : "connection closed before the WebSocket "
                              "opened");
  while (h2->streams) {
    rt_h2s *hs = h2->streams;
    h2s_unlink(h2, hs);
    hs->ws->engine = NULL; /* the session frees its engines */
    h2ws__rt_ws_free(hs->ws);
    h2ws__free(c->rt->mem, hs);
  }
  h2_free_dead(h2);
  h2ws_h2_session_del(h2->s);
  h2ws__free(c->rt->mem, h2);
}

/* Server: when the connection carries no WebSocket and the peer has been
 * silent for idle_ms (pitfall 17: a connection with an open WebSocket is
 * never idle).  Client: idle_ms after its last WebSocket ended, if the
 * owner lets idle connections go (want_shutdown acts then). */
static uint64_t h2_idle_deadline(rt_h2 *h2) {
  if (h2->is_client)
    return h2->idle && h2->cfg->idle_ms && !h2->goaway && h2_client_idle(h2)
               ? h2->idle_since + h2->cfg->idle_ms
               : H2WS_NO_EXPIRY;
  if (!h2->cfg->idle_ms || h2->idle_closing ||
      h2ws_h2_session_num_ws(h2->s))
    return H2WS_NO_EXPIRY;
  return h2->last_active + h2->cfg->idle_ms;
}

/* Server: when the incomplete preface / frame / header block times out. */
static uint64_t h2_frame_deadline(const rt_h2 *h2) {
  if (h2->is_client || !h2->ft_since || h2->ft_expired)
    return H2WS_NO_EXPIRY;
  return h2->ft_since + (h2->c->handshake_ms ? h2->c->handshake_ms : 10000);
}

/* When hs's output, queued before our Close, must have drained (server
 * write deadline), or NO_EXPIRY. */
static uint64_t h2s_write_deadline(const rt_h2 *h2, const rt_h2s *hs) {
  if (!hs->close_at || !h2->cfg->write_timeout_ms || !hs->sid ||
      !hs->ws->engine || !h2ws_ws_want_write(hs->ws->engine))
    return H2WS_NO_EXPIRY;
  return hs->close_at + h2->cfg->write_timeout_ms;
}

static uint64_t h2_get_expiry(rt_conn *c) {
  rt_h2 *h2 = c->proto;
  uint64_t e = h2ws_h2_session_get_expiry(h2->s);
  uint64_t fd = h2_frame_deadline(h2);
  if (fd < e) e = fd;
  if (h2->nclosing)
    for (rt_h2s *hs = h2->streams; hs; hs = hs->next) {
      uint64_t w = h2s_write_deadline(h2, hs);
      if (w < e) e = w;
    }
  uint64_t idle = h2_idle_deadline(h2);
  for (h2ws_rt_ws_request *rq = h2->deferred; rq; rq = rq->dnext)
    if (rq->deadline < e) e = rq->deadline;
  return idle < e ? idle : e;
}

static void h2_handle_expiry(rt_conn *c, uint64_t now) {
  rt_h2 *h2 = c->proto;
  h2ws_h2_session_handle_expiry(h2->s, now);
  /* A peer that does not read (nor open its window for) what we must
   * send before our Close: the output is dropped with the stream
   * (RST_STREAM CANCEL); the connection's other streams go on. */
  if (h2->nclosing)
    for (rt_h2s *hs = h2->streams, *next; hs; hs = next) {
      next = hs->next;
      if (now >= h2s_write_deadline(h2, hs)) {
        hs->close_at = 0;
        h2->nclosing--;
        if (h2->cfg->srv_budget) h2->cfg->srv_budget->write_timeouts++;
        h2ws_h2_reset(h2->s, hs->sid, H2_CANCEL);
      }
    }
  for (h2ws_rt_ws_request *rq = h2->deferred; rq;) {
    h2ws_rt_ws_request *next = rq->dnext;
    if (now >= rq->deadline) {
      /* the application never answered: 504, then tell it */
      h2ws__rt_request_unlink(&h2->deferred, rq);
      h2ws_h2_refuse(h2->s, rq->sid, 504, NULL, 0);
      if (c->owner->refused) c->owner->refused(504, c->owner_data);
      h2ws__rt_request_cancel(rq);
    }
    rq = next;
  }
  if (now >= h2_frame_deadline(h2)) {
    /* issue 9 H: a peer that takes this long over one frame or header
     * block is holding the connection, not using it */
    h2->ft_expired = 1;
    h2ws__rt_conn_fail(c, H2WS_ERR_TIMEOUT,
                       "timed out (incomplete HTTP/2 frame or header block)");
    h2ws_h2_session_shutdown(h2->s, now, 0); /* GOAWAY, then FIN */
  }
  if (!h2->is_client && now >= h2_idle_deadline(h2)) {
    h2->idle_closing = 1;
    h2ws_h2_session_shutdown(h2->s, now, 0); /* GOAWAY */
  }
  h2_free_dead(h2);
}

/* Graceful shutdown (server draining): Close 1001, GOAWAY after drain. */
static void h2_shutdown(rt_conn *c, uint64_t drain_ms) {
  rt_h2 *h2 = c->proto;
  h2ws_h2_session_shutdown(h2->s, h2_now(h2), drain_ms);
  h2ws__rt_conn_mark(c);
}

static int h2_busy(rt_conn *c) {
  rt_h2 *h2 = c->proto;
  return h2->streams != NULL || h2->deferred != NULL;
}

static const rt_proto_ops h2_ops = {
    .busy = h2_busy,
    .recv = h2_recv,
    .send = h2_send,
    .sendv = h2_sendv,
    .send_consumed = h2_send_consumed,
    .want_shutdown = h2_want_shutdown,
    .on_eof = h2_on_eof,
    .on_close = h2_on_close,
    .get_expiry = h2_get_expiry,
    .handle_expiry = h2_handle_expiry,
    .shutdown = h2_shutdown,
};

static void h2_budget_wake(void *ud) {
  rt_h2 *h2 = ud;
  h2ws__rt_conn_mark(h2->c);
}

static int h2_start(rt_conn *c, h2ws_role role, const rt_proto_config *cfg,
                    rt_h2 **ph2) {
  rt_h2 *h2 = h2ws__calloc(c->rt->mem, 1, sizeof *h2);
  if (!h2) return H2WS_ERR_NOMEM;
  h2->c = c;
  h2->cfg = cfg;
  h2->is_client = role == H2WS_ROLE_CLIENT;
  h2->budget.limit = h2->is_client ? 0 : cfg->conn_budget;
  h2->budget.wake = h2_budget_wake; /* back at half: resume at a flush */
  h2->budget.wake_data = h2;
  h2ws_h2_settings st;
  h2ws_h2_settings_default(&st);
  h2ws_h2_callbacks cb;
  memset(&cb, 0, sizeof cb);
  if (!h2->is_client) {
    st.enable_connect_protocol = cfg->h2_websockets;
    cb.on_ws_request = h2_on_ws_request;
    cb.on_request = h2_on_request;
    cb.on_stream_close = h2_on_stream_close;
  } else {
    cb.on_ws_open = h2_on_ws_open;
    cb.on_ws_refused = h2_on_ws_refused;
    cb.on_goaway = h2_on_goaway;
    cb.on_ws_response = h2_on_ws_response;
    if (cfg->trace) cb.on_frame_trace = h2_on_frame_trace;
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
  if (!h2->is_client) c->deadline = 0;
  h2->last_active = h2ws__rt_now(c->rt);
  h2->ft_need = 24; /* the client preface comes first */
  h2ws__rt_conn_set_proto(c, &h2_ops, h2);
  if (ph2) *ph2 = h2;
  return 0;
}

int h2ws__rt_h2_server_start(rt_conn *c, const rt_proto_config *cfg) {
  return h2_start(c, H2WS_ROLE_SERVER, cfg, NULL);
}

int h2ws__rt_h2_client_start(rt_conn *c, const rt_proto_config *cfg,
                             rt_h2 **ph2) {
  return h2_start(c, H2WS_ROLE_CLIENT, cfg, ph2);
}

size_t h2ws__rt_h2_ws_limit(const rt_h2 *h2) {
  return h2ws_h2_session_ws_limit(h2->s);
}

void h2ws__rt_h2_close_if_idle(rt_h2 *h2) {
  h2ws__rt_conn_mark(h2->c); /* want_shutdown decides */
}

int h2ws__rt_h2_usable(const rt_h2 *h2) {
  return !h2->goaway && !h2->full && h2->c->state == RT_CONN_OPEN &&
         !h2->c->eof_seen && !h2->c->shut_down &&
         h2ws_h2_session_want_read(h2->s);
}

/* ---- client requests --------------------------------------------------- */

int h2ws__rt_h2_open(rt_h2 *h2, h2ws_rt_ws *ws, const rt_ws_target *t) {
  h2ws_h2_ws_options o;
  h2ws_h2_ws_options_default(&o);
  o.scheme = t->tls ? "https" : "http"; /* RFC 8441 §4, pitfall 5 */
  o.authority = t->authority;
  o.path = t->path;
  o.subprotocols = t->nprotos ? t->protov : NULL;
  o.nsubprotocols = t->nprotos;
  o.origin = t->origin;
  o.pmd_offer.enabled = t->compress; /* defaults otherwise */
  o.headers = t->nheaders ? t->headers : NULL; /* checked at open */
  o.nheaders = t->nheaders;
  h2ws_ws_settings st = *h2->cfg->ws;
  st.whole_messages = 1;
  if (!st.recv_budget) st.recv_budget = RT_RECV_BUDGET;
  h2ws_ws_callbacks wcb; /* the client's -v adds a frame trace */
  o.callbacks = h2ws__rt_ws_engine_callbacks(ws, &wcb);
  o.settings = &st;
  o.user_data = ws;
  int32_t sid = 0;
  rt_h2s *hs = h2s_new(h2, ws);
  if (!hs) return H2WS_ERR_NOMEM;
  ws->max_output = st.max_output;
  int rv = h2ws_h2_client_open_ws(h2->s, &o, &sid);
  if (rv == H2WS_ERR_H2_TOO_MANY_STREAMS) h2->full = 1;
  if (rv == H2WS_ERR_H2_GOAWAY) h2->goaway = 1;
  if (rv != 0) {
    h2s_release(h2, hs);
    return rv;
  }
  hs->sid = sid;
  h2ws__rt_conn_mark(h2->c);
  return 0;
}
