/* lib/rt/conn_h1.c - HTTP/1.1 on a connection, both roles: the Upgrade
 * handshake (head parsed by the handshake layer, bytes after the head go
 * to the engine), plain GET answers, then the WebSocket engine on the raw
 * byte stream; FIN after the closing handshake, 1006 on EOF without one.
 * The connection is the WebSocket's carrier (one per connection). */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <openssl/rand.h>
#include "rt/proto.h"

#define H1_MAX_HEADERS 64
/* Default budget of a deferred answer (the connection's handshake one). */
#define H1_DEFER_MS 10000

enum { H1_HEAD = 0, H1_WS, H1_DONE, H1_DEFER };

typedef struct rt_h1 {
  rt_carrier carrier; /* what the WebSocket sees */
  rt_conn *c;
  const rt_proto_config *cfg;
  h2ws_rt_ws *ws;
  h2ws_ws *engine;    /* ours: made at the 101, freed with the connection */
  h2ws_rt_ws_request *dreq; /* deferred request: input held until answered */
  int is_client;
  int mode;
  int ws_done;        /* the engine is done: FIN once the output is out */
  uint64_t close_at;  /* server: our Close queued (write deadline), or 0 */
  uint8_t *out; /* head / plain response queued before engine output */
  size_t outlen, outoff;
  /* client */
  char key[25];
  char *offered; /* Sec-WebSocket-Protocol we sent, or NULL */
  int compress;
} rt_h1;

static const rt_proto_ops h1_ops;
static const rt_carrier_ops h1_carrier_ops;

static uint64_t h1_now(rt_h1 *h1) { return h2ws__rt_now(h1->c->rt); }

static h2ws_rt_transport h1_transport(const rt_h1 *h1) {
  return h2ws__rt_conn_encrypted(h1->c) ? H2WS_RT_H1_TLS : H2WS_RT_H1;
}

static int h1_set_out(rt_h1 *h1, const uint8_t *head, size_t headlen,
                      const uint8_t *body, size_t bodylen) {
  const h2ws_mem *mem = h1->c->rt->mem;
  h2ws__free(mem, h1->out);
  h1->out = h2ws__malloc(mem, headlen + bodylen + 1);
  h1->outlen = h1->outoff = 0;
  if (!h1->out) return H2WS_ERR_NOMEM;
  memcpy(h1->out, head, headlen);
  if (bodylen) memcpy(h1->out + headlen, body, bodylen);
  h1->outlen = headlen + bodylen;
  return 0;
}

/* Answers an error status and ends the connection after it. */
static int h1_error(rt_h1 *h1, int status) {
  uint8_t buf[1024];
  size_t n = 0;
  h1->mode = H1_DONE;
  if (h2ws_h1_build_error(status, NULL, 0, buf, sizeof buf, &n) != 0)
    return H2WS_ERR_INTERNAL;
  return h1_set_out(h1, buf, n, NULL, 0);
}

/* Feeds the engine; a peer violation is not a connection error (the
 * engine queued its Close and ignores further input). */
static int h1_feed(rt_h1 *h1, const uint8_t *data, size_t len,
                   size_t *pnread) {
  size_t n = 0;
  *pnread = 0;
  if (!h1->engine || len == 0) {
    *pnread = len;
    return 0;
  }
  int rv = h2ws_ws_recv(h1->engine, data, len, &n, h1_now(h1));
  *pnread = n;
  if (h1->ws) h2ws__rt_ws_account(h1->ws); /* held input, automatic replies */
  /* WOULDBLOCK: the engine's recv_budget; conn.c holds the rest for the
   * next turn */
  if (rv == 0 || rv == H2WS_ERR_PAUSE || rv == H2WS_ERR_WOULDBLOCK) return rv;
  if (rv == H2WS_ERR_PROTO || rv == H2WS_ERR_BAD_UTF8 ||
      rv == H2WS_ERR_MSG_TOO_BIG || rv == H2WS_ERR_BAD_DATA) {
    *pnread = len;
    return 0;
  }
  return rv;
}

static int h1_make_engine(rt_h1 *h1, h2ws_role role,
                          const h2ws_pmd_params *pmd) {
  h2ws_ws_settings st = *h1->cfg->ws;
  h2ws_ws *e;
  st.whole_messages = 1;
  if (!st.recv_budget) st.recv_budget = RT_RECV_BUDGET;
  st.pmd = *pmd;
  h2ws_ws_callbacks wcb; /* the client's -v adds a frame trace */
  int rv = h2ws_ws_new(&e, role, h2ws__rt_ws_engine_callbacks(h1->ws, &wcb),
                       &st, h1->c->rt->mem, h1->ws);
  if (rv < 0) return rv;
  h1->engine = e;
  h1->ws->max_output = st.max_output;
  h1->ws->conn_budget = NULL; /* one WebSocket: its own budget is the
                                 connection's */
  h1->ws->compressed = pmd->enabled != 0;
  h2ws__rt_ws_attach(h1->ws, &h1->carrier);
  h2ws__rt_ws_start(h1->ws, e);
  h1->mode = H1_WS;
  return 0;
}

/* Frees the WebSocket the connection carries (and our engine). */
static void h1_drop_ws(rt_h1 *h1) {
  h2ws_ws_del(h1->engine);
  h1->engine = NULL;
  if (h1->ws) h2ws__rt_ws_free(h1->ws);
  h1->ws = NULL;
}

/* One trace line per line of a handshake head (the client's -v). */
static void h1_trace_head(const h2ws_rt_ws *ws, int sent, const uint8_t *head,
                          size_t len) {
  if (!ws->trace) return;
  size_t i = 0;
  while (i < len) {
    size_t e = i;
    while (e < len && head[e] != '\r' && head[e] != '\n') e++;
    if (e > i)
      h2ws__rt_ws_tracef(ws, "%s http/1.1 %.*s", sent ? ">" : "<",
                         (int)(e - i > 1400 ? 1400 : e - i),
                         (const char *)head + i);
    i = e + 1;
  }
}

/* ---- carrier ----------------------------------------------------------- */

static rt_h1 *h1_of(const rt_carrier *ca) {
  return (rt_h1 *)((char *)ca - offsetof(rt_h1, carrier));
}

static void h1_ca_wake(rt_carrier *ca) { h2ws__rt_conn_mark(h1_of(ca)->c); }

/* The flush resumes reading once h1_can_resume says so. */
static void h1_ca_resume(rt_carrier *ca) { h2ws__rt_conn_mark(h1_of(ca)->c); }

static void h1_ca_half_close(rt_carrier *ca) {
  rt_h1 *h1 = h1_of(ca);
  h1->ws_done = 1;
  h2ws__rt_conn_mark(h1->c);
}

/* The write deadline starts (server WebSockets): h1_handle_expiry. */
static void h1_ca_closing(rt_carrier *ca) {
  rt_h1 *h1 = h1_of(ca);
  if (!h1->close_at) h1->close_at = h1_now(h1);
  h2ws__rt_conn_mark(h1->c);
}

static void h1_ca_abort(rt_carrier *ca) {
  h2ws__rt_conn_close_later(h1_of(ca)->c);
}

static void h1_ca_describe(const rt_carrier *ca, h2ws_rt_ws_info *info) {
  const rt_h1 *h1 = h1_of(ca);
  info->transport = h1_transport(h1);
  info->http_version = 1;
  info->encrypted = h2ws__rt_conn_encrypted(h1->c);
  info->stream_id = 0;
  info->conn_id = h1->c->id;
  info->peer = h1->c->peer;
}

static const rt_carrier_ops h1_carrier_ops = {
    .wake = h1_ca_wake,
    .resume = h1_ca_resume,
    .half_close = h1_ca_half_close,
    .abort = h1_ca_abort,
    .describe = h1_ca_describe,
    .closing = h1_ca_closing,
};

/* ---- server ------------------------------------------------------------ */

static int h1_plain(rt_h1 *h1, const h2ws_h1_head *head) {
  char method[16], path[2048];
  if (head->methodlen >= sizeof method || head->targetlen >= sizeof path)
    return h1_error(h1, 414);
  memcpy(method, head->method, head->methodlen);
  method[head->methodlen] = '\0';
  memcpy(path, head->target, head->targetlen);
  path[head->targetlen] = '\0';
  h2ws_rt_http_request req = {method, path, h1_transport(h1)};
  h2ws_rt_http_response resp;
  memset(&resp, 0, sizeof resp);
  resp.status = 404;
  resp.content_type = "text/plain; charset=utf-8";
  if (h1->c->owner->http_request)
    h1->c->owner->http_request(&req, &resp, h1->c->owner_data);
  h2ws_header hs[4] = {
      {"Content-Type", 12, resp.content_type, strlen(resp.content_type)},
      /* One request per connection keeps this path simple. */
      {"Connection", 10, "close", 5},
      /* RFC 9110 §15.5.22: a 426 names the protocol to upgrade to (and
       * §7.8: Upgrade is then also a connection option). */
      {"Upgrade", 7, "websocket", 9},
      {"Alt-Svc", 7, h1->cfg->alt_svc, strlen(h1->cfg->alt_svc)}};
  size_t nhs = 2;
  if (resp.status == 426) {
    hs[1].value = "Upgrade, close";
    hs[1].valuelen = 14;
    nhs = 3;
  }
  if (h1->cfg->alt_svc[0]) { /* RFC 7838: HTTP/3 on the same port */
    if (nhs == 2) hs[2] = hs[3];
    nhs++;
  }
  uint8_t buf[1024];
  size_t n;
  if (h2ws_h1_build_response(resp.status, hs, nhs, (int64_t)resp.bodylen, buf,
                             sizeof buf, &n) != 0)
    return h1_error(h1, 500);
  h1->mode = H1_DONE;
  int is_head = strcmp(method, "HEAD") == 0;
  return h1_set_out(h1, buf, n, resp.body, is_head ? 0 : resp.bodylen);
}

/* The application accepted rq: queues the 101 and starts the engine.
 * Returns 0, or an error after queuing a 500 (the WebSocket is freed). */
static int h1_accepted(rt_h1 *h1, h2ws_rt_ws_request *rq, const char *key,
                       size_t keylen) {
  uint8_t buf[2048];
  size_t n;
  h1->ws = rq->ws;
  const char *sub = h1->ws->subprotocol;
  /* RFC 7838: HTTP/3 on the same port, once it listens */
  h2ws_header alt = {"Alt-Svc", 7, h1->cfg->alt_svc, strlen(h1->cfg->alt_svc)};
  int rv = h2ws_h1_build_response_101(key, keylen, sub, sub ? strlen(sub) : 0,
                                      rq->pmd.enabled ? rq->pmd_resp : NULL,
                                      rq->pmd_resplen, &alt,
                                      alt.valuelen ? 1 : 0, buf, sizeof buf,
                                      &n);
  if (rv == 0) rv = h1_set_out(h1, buf, n, NULL, 0);
  if (rv == 0) rv = h1_make_engine(h1, H2WS_ROLE_SERVER, &rq->pmd);
  if (rv != 0) {
    h1_drop_ws(h1);
    h1_error(h1, 500);
    return rv < 0 ? rv : H2WS_ERR_INTERNAL;
  }
  h2ws__rt_ws_opened(h1->ws);
  return 0;
}

/* A deferred request answered (server.c's hook): the 101 or the refusal
 * goes out, then the held input flows (conn resumes: h1_can_resume). */
static int h1_answer(h2ws_rt_ws_request *rq) {
  rt_h1 *h1 = rq->tctx;
  int rv = 0;
  h1->dreq = NULL;
  if (rq->answered == 1)
    rv = h1_accepted(h1, rq, rq->copy.key, rq->copy.keylen);
  else
    h1_error(h1, rq->status);
  h2ws__rt_request_free(rq);
  /* the held input is offered again at the next flush (conn.c resumes a
   * paused connection and runs its pending bytes; reading never stopped) */
  h2ws__rt_conn_hold_input(h1->c);
  return rv;
}

static int h1_server_head(rt_h1 *h1, const uint8_t *data, size_t len,
                          size_t *pnread) {
  h2ws_h1_head head;
  h2ws_header headers[H1_MAX_HEADERS];
  size_t headlen = 0;
  rt_conn *c = h1->c;
  *pnread = 0;
  int rv = h2ws_h1_parse_request(data, len, 0, &head, headers,
                                 H1_MAX_HEADERS, &headlen);
  if (rv == H2WS_ERR_WOULDBLOCK) return 0;
  *pnread = len; /* after an answer nothing more is read */
  if (rv != 0) return h1_error(h1, head.error_status ? head.error_status : 400);
  c->deadline = 0;
  h2ws_ws_request req;
  char scratch[H2WS_H1_DEFAULT_MAX_HEAD];
  int status = 0;
  memset(&req, 0, sizeof req);
  rv = h2ws_h1_request_to_ws(&head, headers, head.nheaders, &req, scratch,
                             sizeof scratch, &status);
  if (rv == H2WS_H1_NOT_WEBSOCKET) return h1_plain(h1, &head);
  if (rv != 0) return h1_error(h1, status ? status : 400);
  h2ws_rt_ws_request *rq = h2ws__rt_request_new(c->rt);
  if (!rq) return h1_error(h1, 503);
  rq->view = &req;
  rq->info.transport = h1_transport(h1);
  rq->info.http_version = 1;
  rq->info.encrypted = h2ws__rt_conn_encrypted(c);
  rq->info.conn_id = c->id;
  rq->info.peer = c->peer;
  rq->answered = -1;
  rq->status = 404;
  if (c->owner->ws_request) c->owner->ws_request(rq, c->owner_data);
  if (rq->answered == 2) {
    /* Deferred (h2ws_rt_ws_defer): the bytes after the head stay in the
     * connection's pending input (capped) until the answer; none reaches
     * a WebSocket before it (SPEC pitfall 9).  Reading goes on, so a
     * client that leaves is noticed (h1_on_eof). */
    uint64_t budget = c->handshake_ms ? c->handshake_ms : H1_DEFER_MS;
    rq->parked = 1;
    rq->tctx = h1;
    rq->on_answer = h1_answer;
    rq->deadline = h1_now(h1) + budget;
    h1->dreq = rq;
    h1->mode = H1_DEFER;
    *pnread = headlen;
    h2ws__rt_conn_mark(c);
    return 0;
  }
  if (rq->answered != 1) {
    int st = rq->status;
    h2ws__rt_request_free(rq);
    return h1_error(h1, st);
  }
  rv = h1_accepted(h1, rq, req.key, req.keylen);
  h2ws__rt_request_free(rq);
  if (rv != 0) return 0; /* 500 queued */
  size_t n2 = 0;
  rv = h1_feed(h1, data + headlen, len - headlen, &n2);
  *pnread = headlen + n2;
  return rv;
}

/* ---- client ------------------------------------------------------------ */

static int h1_client_head(rt_h1 *h1, const uint8_t *data, size_t len,
                          size_t *pnread) {
  h2ws_h1_head head;
  h2ws_header headers[H1_MAX_HEADERS];
  size_t headlen = 0;
  h2ws_rt_ws *ws = h1->ws;
  *pnread = 0;
  int rv = h2ws_h1_parse_response(data, len, 0, &head, headers,
                                  H1_MAX_HEADERS, &headlen);
  if (rv == H2WS_ERR_WOULDBLOCK) return 0;
  *pnread = len;
  if (rv != 0) {
    h2ws__rt_ws_fail(ws, H2WS_ERR_HANDSHAKE, 0,
                     "handshake failed: malformed HTTP response");
    return H2WS_ERR_HANDSHAKE;
  }
  h1_trace_head(ws, 0, data, headlen);
  h2ws_ws_response resp;
  memset(&resp, 0, sizeof resp);
  rv = h2ws_h1_check_response_101(&head, headers, head.nheaders, h1->key, 24,
                                  h1->offered,
                                  h1->offered ? strlen(h1->offered) : 0,
                                  &resp);
  if (rv != 0) {
    char chosen[128];
    int bad_proto = 0;
    if (head.status == 101 && resp.protocol &&
        resp.protocollen < sizeof chosen) {
      /* RFC 6455 §4.1: a subprotocol the client did not offer fails the
       * connection; say so rather than "invalid 101" */
      memcpy(chosen, resp.protocol, resp.protocollen);
      chosen[resp.protocollen] = '\0';
      bad_proto = !h1->offered ||
                  !h2ws_token_list_contains(h1->offered, strlen(h1->offered),
                                            chosen);
    }
    if (head.status != 101)
      h2ws__rt_ws_fail(ws, H2WS_ERR_HANDSHAKE, head.status,
                       "handshake refused: HTTP %d", head.status);
    else if (bad_proto)
      h2ws__rt_ws_fail(ws, H2WS_ERR_HANDSHAKE, 101,
                       "handshake failed: the server chose subprotocol "
                       "'%s', which was not offered", chosen);
    else
      h2ws__rt_ws_fail(ws, H2WS_ERR_HANDSHAKE, 101,
                       "handshake failed: invalid 101 response");
    return H2WS_ERR_HANDSHAKE;
  }
  h2ws_pmd_params pmd;
  memset(&pmd, 0, sizeof pmd);
  if (h1->compress) {
    h2ws_pmd_config cfg;
    h2ws_pmd_config_default(&cfg);
    if (h2ws_pmd_client_accept(resp.extensions, resp.extensionslen, &cfg,
                               &pmd) != 0) {
      h2ws__rt_ws_fail(ws, H2WS_ERR_HANDSHAKE, 101,
                       "handshake failed: bad Sec-WebSocket-Extensions");
      return H2WS_ERR_HANDSHAKE;
    }
  } else if (resp.extensions) {
    /* RFC 6455 §9.1: an extension we did not offer. */
    h2ws__rt_ws_fail(ws, H2WS_ERR_HANDSHAKE, 101,
                     "handshake failed: unexpected Sec-WebSocket-Extensions");
    return H2WS_ERR_HANDSHAKE;
  }
  rv = h2ws__rt_ws_set_subprotocol(ws, resp.protocol, resp.protocollen);
  if (rv == 0) rv = h1_make_engine(h1, H2WS_ROLE_CLIENT, &pmd);
  if (rv != 0) {
    h2ws__rt_ws_fail(ws, rv, 0, "%s", h2ws_strerror(rv));
    return rv;
  }
  h1->c->deadline = 0;
  for (size_t i = 0; i < head.nheaders && h1->c->owner->alt_svc; i++)
    if (headers[i].namelen == 7 &&
        strncasecmp(headers[i].name, "alt-svc", 7) == 0)
      h1->c->owner->alt_svc(headers[i].value, headers[i].valuelen,
                            h1->c->owner_data);
  h2ws__rt_ws_note(ws, "connected via http/1.1 (%s)",
                   h2ws__rt_conn_encrypted(h1->c) ? "TLS" : "cleartext");
  h2ws__rt_ws_opened(ws);
  size_t n2 = 0;
  rv = h1_feed(h1, data + headlen, len - headlen, &n2);
  *pnread = headlen + n2;
  return rv;
}

/* ---- protocol ops ------------------------------------------------------- */

static int h1_recv(rt_conn *c, const uint8_t *data, size_t len,
                   size_t *pnread) {
  rt_h1 *h1 = c->proto;
  switch (h1->mode) {
  case H1_HEAD:
    return h1->is_client ? h1_client_head(h1, data, len, pnread)
                         : h1_server_head(h1, data, len, pnread);
  case H1_WS:
    return h1_feed(h1, data, len, pnread);
  case H1_DEFER:
    *pnread = 0; /* held until the answer */
    return 0;
  default:
    *pnread = len; /* after a plain answer: ignored */
    return 0;
  }
}

static int h1_send(rt_conn *c, const uint8_t **p, size_t *n) {
  rt_h1 *h1 = c->proto;
  if (h1->outoff < h1->outlen) {
    *p = h1->out + h1->outoff;
    *n = h1->outlen - h1->outoff;
    return 0;
  }
  if (h1->mode == H1_WS && h1->engine)
    return h2ws_ws_send(h1->engine, p, n, h1_now(h1));
  *p = NULL;
  *n = 0;
  return 0;
}

static void h1_send_consumed(rt_conn *c, size_t n) {
  rt_h1 *h1 = c->proto;
  if (h1->outoff < h1->outlen) {
    h1->outoff += n;
    if (h1->outoff >= h1->outlen) {
      h2ws__free(c->rt->mem, h1->out);
      h1->out = NULL;
      h1->outoff = h1->outlen = 0;
    }
    return;
  }
  if (h1->engine) {
    h2ws_ws_send_consumed(h1->engine, n);
    if (h1->ws) h2ws__rt_ws_account(h1->ws);
  }
}

static int h1_want_shutdown(rt_conn *c) {
  rt_h1 *h1 = c->proto;
  if (h1->outoff < h1->outlen) return 0;
  switch (h1->mode) {
  case H1_DONE:
    return 1;
  case H1_WS:
    if (h2ws_ws_want_write(h1->engine)) return 0;
    /* RFC 6455 §7.1.1: after the closing handshake, the TCP FIN. */
    return h1->ws_done || c->eof_seen;
  default:
    return c->eof_seen;
  }
}

static int h1_can_resume(rt_conn *c) {
  rt_h1 *h1 = c->proto;
  if (h1->mode == H1_DEFER) return 0; /* input held until the answer */
  /* Only the WebSocket's own state: never "our writes are stuck", which
   * would deadlock against a peer that waits for us to read. */
  return !h1->ws || h2ws__rt_ws_can_resume(h1->ws);
}

static void h1_on_eof(rt_conn *c) {
  rt_h1 *h1 = c->proto;
  if (h1->mode == H1_WS) {
    /* RFC 6455 §7.1.5: no Close before the end: 1006. */
    h2ws_ws_recv_eof(h1->engine, h1_now(h1));
  } else if (h1->mode == H1_DEFER && h1->dreq) {
    /* the client left before the answer */
    h2ws_rt_ws_request *rq = h1->dreq;
    h1->dreq = NULL;
    h1->mode = H1_DONE;
    h2ws__rt_request_cancel(rq);
  } else if (h1->mode == H1_HEAD && h1->is_client) {
    h2ws__rt_ws_fail(h1->ws, H2WS_ERR_CLOSED, 0, "%s",
                     c->errmsg[0] ? c->errmsg
                                  : "connection closed during the handshake");
  }
}

static void h1_on_close(rt_conn *c, int error) {
  rt_h1 *h1 = c->proto;
  h2ws_rt_ws *ws = h1->ws;
  if (h1->dreq) {
    h2ws_rt_ws_request *rq = h1->dreq;
    h1->dreq = NULL;
    h2ws__rt_request_cancel(rq); /* the client left unanswered */
  }
  if (ws) {
    if (ws->state == RT_WS_OPEN && h1->engine) h2ws_ws_abort(h1->engine);
    if (ws->state == RT_WS_OPEN)
      h2ws__rt_ws_closed(ws, H2WS_CLOSE_ABNORMAL, NULL, 0);
    if (ws->state == RT_WS_WAITING) {
      int err = c->fail_error     ? c->fail_error
                : error == H2WS_ERR_TIMEOUT ? H2WS_ERR_TIMEOUT
                                            : H2WS_ERR_CLOSED;
      h2ws__rt_ws_fail(ws, err, 0, "%s",
                       c->errmsg[0] ? c->errmsg
                       : error == H2WS_ERR_TIMEOUT
                           ? "timed out"
                           : "connection closed during the handshake");
    }
    h1_drop_ws(h1);
  }
  h2ws__free(c->rt->mem, h1->offered);
  h2ws__free(c->rt->mem, h1->out);
  h2ws__free(c->rt->mem, h1);
}

/* When a closing WebSocket's output must have drained, or NO_EXPIRY. */
static uint64_t h1_write_deadline(const rt_h1 *h1) {
  if (!h1->close_at || !h1->cfg->write_timeout_ms || !h1->engine ||
      !h2ws_ws_want_write(h1->engine))
    return H2WS_NO_EXPIRY;
  return h1->close_at + h1->cfg->write_timeout_ms;
}

static uint64_t h1_get_expiry(rt_conn *c) {
  rt_h1 *h1 = c->proto;
  if (h1->mode == H1_DEFER && h1->dreq) return h1->dreq->deadline;
  if (h1->mode == H1_WS && h1->engine) {
    uint64_t e = h2ws_ws_get_expiry(h1->engine);
    uint64_t w = h1_write_deadline(h1);
    return w < e ? w : e;
  }
  return H2WS_NO_EXPIRY;
}

static void h1_handle_expiry(rt_conn *c, uint64_t now) {
  rt_h1 *h1 = c->proto;
  if (h1->mode == H1_DEFER && h1->dreq && now >= h1->dreq->deadline) {
    /* the application never answered: 504, then tell it */
    h2ws_rt_ws_request *rq = h1->dreq;
    h1->dreq = NULL;
    h1_error(h1, 504);
    if (c->owner->refused) c->owner->refused(504, c->owner_data);
    h2ws__rt_request_cancel(rq);
    return;
  }
  if (h1->mode == H1_WS && h1->engine && now >= h1_write_deadline(h1)) {
    /* The peer does not read what we must send before our Close: drop
     * it and end the connection (docs/design.md "Memory bounds"). */
    h2ws__rt_conn_fail(c, H2WS_ERR_TIMEOUT,
                       "write timeout: output not drained after Close");
    if (h1->cfg->srv_budget) h1->cfg->srv_budget->write_timeouts++;
    h2ws__rt_conn_close_later(c);
    return;
  }
  if (h1->mode == H1_WS && h1->engine)
    h2ws_ws_handle_expiry(h1->engine, now);
}

/* Graceful shutdown (server draining). */
static void h1_shutdown(rt_conn *c, uint64_t drain_ms) {
  rt_h1 *h1 = c->proto;
  (void)drain_ms; /* the engine's close timeout bounds the handshake */
  if (h1->mode == H1_WS && h1->ws && h1->ws->state == RT_WS_OPEN) {
    static const char why[] = "server shutting down";
    h2ws_ws_submit_close(h1->engine, H2WS_CLOSE_GOING_AWAY,
                         (const uint8_t *)why, sizeof why - 1,
                         h2ws__rt_now(c->rt));
    if (!h1->close_at) h1->close_at = h2ws__rt_now(c->rt);
    h2ws__rt_ws_account(h1->ws);
    h2ws__rt_conn_mark(c);
  } else if (h1->mode == H1_HEAD || h1->mode == H1_DEFER) {
    /* at the next flush: we may be inside this connection's handler */
    h2ws__rt_conn_close_later(c);
  }
}

static int h1_busy(rt_conn *c) {
  rt_h1 *h1 = c->proto;
  return h1->mode == H1_WS || h1->mode == H1_DEFER;
}

static const rt_proto_ops h1_ops = {
    .busy = h1_busy,
    .recv = h1_recv,
    .send = h1_send,
    .send_consumed = h1_send_consumed,
    .want_shutdown = h1_want_shutdown,
    .can_resume = h1_can_resume,
    .on_eof = h1_on_eof,
    .on_close = h1_on_close,
    .get_expiry = h1_get_expiry,
    .handle_expiry = h1_handle_expiry,
    .shutdown = h1_shutdown,
};

static rt_h1 *h1_new(rt_conn *c, const rt_proto_config *cfg) {
  rt_h1 *h1 = h2ws__calloc(c->rt->mem, 1, sizeof *h1);
  if (!h1) return NULL;
  h1->carrier.ops = &h1_carrier_ops;
  h1->c = c;
  h1->cfg = cfg;
  return h1;
}

int h2ws__rt_h1_server_start(rt_conn *c, const rt_proto_config *cfg) {
  rt_h1 *h1 = h1_new(c, cfg);
  if (!h1) return H2WS_ERR_NOMEM;
  h2ws__rt_conn_set_proto(c, &h1_ops, h1);
  return 0;
}

int h2ws__rt_h1_client_start(rt_conn *c, const rt_proto_config *cfg,
                             h2ws_rt_ws *ws, const rt_ws_target *t) {
  const h2ws_mem *mem = c->rt->mem;
  rt_h1 *h1 = h1_new(c, cfg);
  if (!h1) {
    h2ws__rt_ws_fail(ws, H2WS_ERR_NOMEM, 0, "out of memory");
    h2ws__rt_ws_free(ws);
    return H2WS_ERR_NOMEM;
  }
  h1->ws = ws;
  h1->is_client = 1;
  h1->compress = t->compress;
  h2ws__rt_ws_attach(ws, &h1->carrier);
  h2ws__rt_conn_set_proto(c, &h1_ops, h1); /* from here on_close frees ws */
  uint8_t rnd[16];
  if (RAND_bytes(rnd, sizeof rnd) != 1) return H2WS_ERR_INTERNAL;
  /* RFC 6455 §4.1: a fresh random 16-byte key per connection. */
  h2ws_h1_make_key(rnd, h1->key);
  if (t->protocols) {
    size_t n = strlen(t->protocols);
    h1->offered = h2ws__malloc(mem, n + 1);
    if (!h1->offered) return H2WS_ERR_NOMEM;
    memcpy(h1->offered, t->protocols, n + 1);
  }
  char ext[H2WS_PMD_MAX_VALUE_LEN];
  size_t extlen = 0;
  if (t->compress) {
    h2ws_pmd_config pcfg;
    h2ws_pmd_config_default(&pcfg);
    if (h2ws_pmd_offer_build(&pcfg, ext, sizeof ext, &extlen) != 0)
      return H2WS_ERR_INTERNAL;
  }
  h2ws_h1_request_opts o;
  memset(&o, 0, sizeof o);
  o.path = t->path;
  o.pathlen = strlen(t->path);
  o.host = t->authority;
  o.hostlen = strlen(t->authority);
  o.key = h1->key;
  o.keylen = 24;
  o.protocols = h1->offered;
  o.protocolslen = h1->offered ? strlen(h1->offered) : 0;
  o.extensions = extlen ? ext : NULL;
  o.extensionslen = extlen;
  o.origin = t->origin;
  o.originlen = t->origin ? strlen(t->origin) : 0;
  o.headers = t->headers; /* checked at open */
  o.nheaders = t->nheaders;
  uint8_t buf[8192];
  size_t n;
  int rv = h2ws_h1_build_request(&o, buf, sizeof buf, &n);
  if (rv != 0) return rv;
  h1_trace_head(ws, 1, buf, n);
  return h1_set_out(h1, buf, n, NULL, 0);
}
