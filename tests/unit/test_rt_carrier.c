/* tests/unit/test_rt_carrier.c - the runtime's layers driven in memory,
 * without sockets: the WebSocket handle (ws.c) on a carrier made here (a
 * transport ws.c has never heard of: what HTTP/3 will be) - every carrier
 * op, the info query, sends whole, in fragments and from a source, pause
 * and resume, close and abort; the TLS filter between two memory pumps
 * (handshake, ALPN, data both ways, close_notify, verification and
 * protocol failures with their error codes); and every options struct's
 * _default(). */
#include <string.h>
#include <unistd.h>
#include <openssl/ssl.h>
#include "rt/carrier.h"
#include "rt/tls.h"
#include "testutil.h"

/* ---- a carrier of our own --------------------------------------------- */

typedef struct fake {
  rt_carrier carrier;
  int wake, resume, half_close, abort, describe, closing;
} fake;

static fake *fake_of(const rt_carrier *ca) { return (fake *)ca; }
static void fk_wake(rt_carrier *ca) { fake_of(ca)->wake++; }
static void fk_resume(rt_carrier *ca) { fake_of(ca)->resume++; }
static void fk_half_close(rt_carrier *ca) { fake_of(ca)->half_close++; }
static void fk_abort(rt_carrier *ca) { fake_of(ca)->abort++; }
static void fk_describe(const rt_carrier *ca, h2ws_rt_ws_info *info) {
  fake_of(ca)->describe++;
  info->transport = H2WS_RT_H2C;
  info->http_version = 3; /* whatever the carrier says */
  info->encrypted = 1;
  info->stream_id = (int64_t)1 << 40; /* a QUIC-sized stream id */
  info->conn_id = 42;
  info->peer = "fake-peer";
}
static void fk_closing(rt_carrier *ca) { fake_of(ca)->closing++; }
static const rt_carrier_ops fake_ops = {fk_wake, fk_resume, fk_half_close,
                                        fk_abort, fk_describe, fk_closing};

/* What the application saw. */
typedef struct app {
  int opened, closed, msgs, pause_next, echo, pings;
  uint16_t code;
  size_t last_len;
  uint8_t last[4096];
  h2ws_opcode last_op;
} app;

static void ap_open(h2ws_rt_ws *ws, void *ud) {
  (void)ws;
  ((app *)ud)->opened++;
}
static int ap_msg(h2ws_rt_ws *ws, h2ws_opcode op, const uint8_t *d, size_t n,
                  void *ud) {
  app *a = ud;
  (void)ws;
  a->msgs++;
  a->last_op = op;
  a->last_len = n;
  memcpy(a->last, d, n < sizeof a->last ? n : sizeof a->last);
  if (a->echo) h2ws_rt_ws_send(ws, op, d, n);
  if (a->pause_next) {
    a->pause_next = 0;
    return H2WS_ERR_PAUSE;
  }
  return 0;
}
static void ap_close(h2ws_rt_ws *ws, uint16_t code, const uint8_t *r,
                     size_t rl, void *ud) {
  app *a = ud;
  (void)ws;
  (void)r;
  (void)rl;
  a->closed++;
  a->code = code;
}
static const h2ws_rt_ws_callbacks ap_cbs = {
    .on_open = ap_open, .on_message = ap_msg, .on_close = ap_close};

/* A peer engine (client role) to talk to the handle under test. */
typedef struct peer {
  h2ws_ws *e;
  int msgs;
  size_t len;
  uint8_t buf[1 << 20];
  uint16_t code;
} peer;

static int pe_msg(h2ws_ws *e, h2ws_opcode op, const uint8_t *d, size_t n,
                  void *ud) {
  peer *p = ud;
  (void)e;
  (void)op;
  p->msgs++;
  p->len = n;
  memcpy(p->buf, d, n < sizeof p->buf ? n : sizeof p->buf);
  return 0;
}
static void pe_close(h2ws_ws *e, uint16_t code, const uint8_t *r, size_t rl,
                     void *ud) {
  (void)e;
  (void)r;
  (void)rl;
  ((peer *)ud)->code = code;
}
static int pe_random(uint8_t *b, size_t n, void *ud) {
  (void)ud;
  memset(b, 0x5a, n);
  return 0;
}

/* Moves everything queued on `from` into `to` (what a carrier's flush
 * does with a real transport). */
static int pump(h2ws_ws *from, h2ws_ws *to) {
  int moved = 0;
  for (;;) {
    const uint8_t *p;
    size_t n = 0, used = 0;
    if (h2ws_ws_send(from, &p, &n, 0) != 0 || n == 0) return moved;
    int rv = h2ws_ws_recv(to, p, n, &used, 0);
    if (rv != 0 && rv != H2WS_ERR_PAUSE) return -1;
    h2ws_ws_send_consumed(from, n);
    moved += (int)n;
    if (rv == H2WS_ERR_PAUSE) return moved;
  }
}

typedef struct rig {
  h2ws_rt *rt;
  h2ws_rt_ws *ws;
  h2ws_ws *engine; /* the "carrier's" engine */
  fake ca;
  app a;
  peer *p;
} rig;

static int rig_new(rig *r, size_t max_output) {
  memset(r, 0, sizeof *r);
  r->p = calloc(1, sizeof *r->p);
  if (h2ws_rt_new(&r->rt, NULL) != 0) return -1;
  r->ws = h2ws__rt_ws_new(r->rt, &ap_cbs, &r->a);
  if (!r->ws) return -1;
  h2ws_ws_settings st;
  h2ws_ws_settings_default(&st);
  st.whole_messages = 1;
  st.max_output = max_output;
  st.fragment_size = 16384;
  h2ws_ws_callbacks cb;
  if (h2ws_ws_new(&r->engine, H2WS_ROLE_SERVER,
                  h2ws__rt_ws_engine_callbacks(r->ws, &cb), &st, NULL,
                  r->ws) != 0)
    return -1;
  r->ca.carrier.ops = &fake_ops;
  h2ws__rt_ws_attach(r->ws, &r->ca.carrier);
  h2ws__rt_ws_start(r->ws, r->engine);
  h2ws__rt_ws_opened(r->ws);
  h2ws_ws_callbacks pcb;
  memset(&pcb, 0, sizeof pcb);
  pcb.on_msg = pe_msg;
  pcb.on_close = pe_close;
  pcb.random = pe_random;
  h2ws_ws_settings pst;
  h2ws_ws_settings_default(&pst);
  pst.whole_messages = 1;
  return h2ws_ws_new(&r->p->e, H2WS_ROLE_CLIENT, &pcb, &pst, NULL, r->p);
}

static void rig_del(rig *r) {
  h2ws_ws_del(r->p->e);
  h2ws_ws_del(r->engine);
  h2ws__rt_ws_free(r->ws);
  h2ws_rt_del(r->rt);
  free(r->p);
}

/* Every op of the carrier interface is what ws.c uses, and the public
 * queries come from describe(): a transport ws.c does not know works. */
static void test_carrier_ops_and_info(void) {
  rig r;
  CHECK_EQ(rig_new(&r, 1 << 20), 0);
  CHECK_EQ(r.a.opened, 1);
  /* describe -> info and the accessors built on it */
  h2ws_rt_ws_info info;
  CHECK_EQ(h2ws_rt_ws_get_info(r.ws, &info), 0);
  CHECK_EQ(info.transport, H2WS_RT_H2C);
  CHECK_EQ(info.http_version, 3);
  CHECK(info.encrypted);
  CHECK(info.stream_id == (int64_t)1 << 40);
  CHECK_EQ(info.conn_id, 42);
  CHECK(strcmp(info.peer, "fake-peer") == 0);
  CHECK_EQ(h2ws_rt_ws_transport(r.ws), H2WS_RT_H2C);
  CHECK_EQ(h2ws_rt_ws_conn_id(r.ws), 42);
  CHECK(strcmp(h2ws_rt_ws_peer(r.ws), "fake-peer") == 0);
  CHECK(r.ca.describe >= 4);
  /* send -> wake; the bytes are on the engine for the carrier to pull */
  CHECK_EQ(h2ws_rt_ws_send(r.ws, H2WS_OP_TEXT, (const uint8_t *)"hi", 2), 0);
  CHECK_EQ(r.ca.wake, 1);
  CHECK(h2ws_rt_ws_buffered(r.ws) > 0);
  CHECK(pump(r.engine, r.p->e) > 0);
  CHECK_EQ(r.p->msgs, 1);
  CHECK(r.p->len == 2 && memcmp(r.p->buf, "hi", 2) == 0);
  CHECK_EQ(h2ws_rt_ws_ping(r.ws, (const uint8_t *)"p", 1), 0);
  CHECK_EQ(r.ca.wake, 2);
  /* input: the application pauses; only resume() lifts it */
  r.a.pause_next = 1;
  CHECK_EQ(h2ws_ws_submit_msg(r.p->e, H2WS_OP_BINARY,
                              (const uint8_t *)"abc", 3), 0);
  CHECK(pump(r.p->e, r.engine) > 0);
  CHECK_EQ(r.a.msgs, 1);
  CHECK_EQ(r.a.last_op, H2WS_OP_BINARY);
  CHECK(!h2ws__rt_ws_can_resume(r.ws));
  CHECK_EQ(r.ca.resume, 0);
  CHECK_EQ(h2ws_rt_ws_resume(r.ws), 0);
  CHECK_EQ(r.ca.resume, 1);
  CHECK(h2ws__rt_ws_can_resume(r.ws));
  /* the peer closes: on_close, then the carrier is told to half-close */
  CHECK_EQ(r.ca.half_close, 0);
  CHECK_EQ(h2ws_ws_submit_close(r.p->e, 1000, NULL, 0, 0), 0);
  CHECK(pump(r.p->e, r.engine) > 0);
  CHECK_EQ(r.a.closed, 1);
  CHECK_EQ(r.a.code, 1000);
  CHECK_EQ(r.ca.half_close, 1);
  /* closed: nothing more goes through, abort included */
  CHECK_EQ(h2ws_rt_ws_send(r.ws, H2WS_OP_TEXT, (const uint8_t *)"x", 1),
           H2WS_ERR_INVALID_STATE);
  CHECK_EQ(h2ws_rt_ws_abort(r.ws), H2WS_ERR_INVALID_STATE);
  CHECK_EQ(r.ca.abort, 0);
  rig_del(&r);
}

static void test_abort_goes_to_carrier(void) {
  rig r;
  CHECK_EQ(rig_new(&r, 1 << 20), 0);
  CHECK_EQ(h2ws_rt_ws_abort(r.ws), 0);
  CHECK_EQ(r.ca.abort, 1);
  CHECK_EQ(r.a.closed, 0); /* on_close comes from the carrier, later */
  CHECK_EQ(h2ws_rt_ws_abort(NULL), H2WS_ERR_INVALID_ARGUMENT);
  /* without a carrier (a client WebSocket waiting): no info, no abort */
  h2ws__rt_ws_attach(r.ws, NULL);
  h2ws_rt_ws_info info;
  CHECK_EQ(h2ws_rt_ws_get_info(r.ws, &info), 0);
  CHECK_EQ(info.transport, 0);
  CHECK(strcmp(info.peer, "") == 0);
  CHECK_EQ(h2ws_rt_ws_abort(r.ws), H2WS_ERR_INVALID_STATE);
  rig_del(&r);
}

/* A message larger than max_output goes as fragments (each fitting); the
 * peer sees one message. */
static void test_fragments_beyond_max_output(void) {
  rig r;
  static uint8_t big[300000];
  for (size_t i = 0; i < sizeof big; i++) big[i] = (uint8_t)(i * 7);
  CHECK_EQ(rig_new(&r, 64 * 1024), 0);
  /* the whole message cannot be queued */
  CHECK_EQ(h2ws_rt_ws_send(r.ws, H2WS_OP_BINARY, big, sizeof big),
           H2WS_ERR_BUFFER_FULL);
  size_t off = 0, chunk = 40000, max_queued = 0;
  int first = 1, full = 0;
  while (off < sizeof big) {
    size_t n = sizeof big - off < chunk ? sizeof big - off : chunk;
    int rv = h2ws_rt_ws_send_fragment(r.ws, first ? H2WS_OP_BINARY
                                                  : H2WS_OP_CONT,
                                      off + n == sizeof big, big + off, n);
    if (rv == H2WS_ERR_BUFFER_FULL) { /* the carrier drains */
      full++;
      CHECK(pump(r.engine, r.p->e) > 0);
      continue;
    }
    CHECK_EQ(rv, 0);
    if (h2ws_rt_ws_buffered(r.ws) > max_queued)
      max_queued = h2ws_rt_ws_buffered(r.ws);
    /* no other data message while one is in fragments */
    if (first)
      CHECK_EQ(h2ws_rt_ws_send(r.ws, H2WS_OP_TEXT, (const uint8_t *)"x", 1),
               H2WS_ERR_INVALID_STATE);
    first = 0;
    off += n;
  }
  pump(r.engine, r.p->e);
  CHECK(full > 0);
  CHECK(max_queued <= 64 * 1024);
  CHECK_EQ(r.p->msgs, 1);
  CHECK_EQ(r.p->len, sizeof big);
  CHECK_MEM(r.p->buf, big, sizeof big);
  CHECK(r.ca.wake >= 8);
  rig_del(&r);
}

/* A data source: pulled by the carrier's flush, never past max_output,
 * read() not called again after eof; resume from inside read() is legal. */
typedef struct src {
  const uint8_t *data;
  size_t len, off;
  int calls, after_eof, wouldblock_once, resumed_inside;
  size_t max_queued;
  h2ws_rt_ws *ws;
} src;

static int src_read(h2ws_rt_ws *ws, uint8_t *buf, size_t buflen, size_t *pn,
                    int *peof, void *ud) {
  src *s = ud;
  s->calls++;
  if (s->off == s->len) s->after_eof++;
  if (s->wouldblock_once && s->off > 0) {
    s->wouldblock_once = 0;
    return H2WS_ERR_WOULDBLOCK;
  }
  /* the send functions refuse inside read(), resume does not */
  if (h2ws_rt_ws_send(ws, H2WS_OP_TEXT, (const uint8_t *)"x", 1) !=
      H2WS_ERR_INVALID_STATE)
    return H2WS_ERR_INTERNAL;
  if (h2ws_rt_ws_resume(ws) == 0) s->resumed_inside++;
  size_t n = s->len - s->off < buflen ? s->len - s->off : buflen;
  memcpy(buf, s->data + s->off, n);
  s->off += n;
  *pn = n;
  *peof = s->off == s->len;
  if (h2ws_rt_ws_buffered(ws) > s->max_queued)
    s->max_queued = h2ws_rt_ws_buffered(ws);
  return 0;
}

static void test_source_beyond_max_output(void) {
  rig r;
  static uint8_t big[500000];
  for (size_t i = 0; i < sizeof big; i++) big[i] = (uint8_t)(i * 13 + 1);
  CHECK_EQ(rig_new(&r, 64 * 1024), 0);
  src s;
  memset(&s, 0, sizeof s);
  s.data = big;
  s.len = sizeof big;
  s.wouldblock_once = 1;
  h2ws_rt_source so = {src_read, &s};
  CHECK_EQ(h2ws_rt_ws_send_source(r.ws, H2WS_OP_BINARY, &so), 0);
  CHECK_EQ(r.ca.wake, 1);
  CHECK_EQ(s.calls, 0); /* pulled by the flush, not inside the call */
  CHECK_EQ(h2ws_rt_ws_send_source(r.ws, H2WS_OP_BINARY, &so),
           H2WS_ERR_INVALID_STATE); /* one at a time */
  int rounds = 0;
  while (r.p->msgs == 0 && rounds++ < 1000) {
    int moved = pump(r.engine, r.p->e);
    CHECK(moved >= 0);
    if (moved == 0) { /* the source said WOULDBLOCK */
      CHECK_EQ(h2ws_rt_ws_resume_source(r.ws), 0);
    }
  }
  CHECK_EQ(r.p->msgs, 1);
  CHECK_EQ(r.p->len, sizeof big);
  CHECK_MEM(r.p->buf, big, sizeof big);
  CHECK_EQ(s.after_eof, 0);
  CHECK(s.resumed_inside > 0);
  CHECK(s.max_queued <= 64 * 1024 + 16); /* queue bounded by max_output */
  pump(r.engine, r.p->e);
  CHECK_EQ(s.after_eof, 0);
  CHECK_EQ(h2ws_rt_ws_resume_source(r.ws), H2WS_ERR_INVALID_STATE);
  CHECK_EQ(h2ws_rt_ws_send(r.ws, H2WS_OP_TEXT, (const uint8_t *)"ok", 2), 0);
  pump(r.engine, r.p->e);
  CHECK_EQ(r.p->msgs, 2);
  CHECK_EQ(h2ws_rt_ws_send_source(r.ws, H2WS_OP_BINARY, NULL),
           H2WS_ERR_INVALID_ARGUMENT);
  rig_del(&r);
}

/* ---- the TLS filter in memory ----------------------------------------- */

/* Output buffers the test lends to each filter (as the connection does). */
static int tob_grow(rt_obuf *o, size_t want) {
  size_t cap = o->cap ? o->cap : 256;
  while (cap < want) cap *= 2;
  uint8_t *p = realloc(o->buf, cap);
  if (!p) return -1;
  o->buf = p;
  o->cap = cap;
  return 0;
}
static rt_obuf tob_cl = {NULL, 0, 0, tob_grow, NULL};
static rt_obuf tob_sv = {NULL, 0, 0, tob_grow, NULL};

/* Moves what was written into o to b (lent, then kept: the test's buffer
 * is reused); returns bytes moved. */
static size_t tls_move_out(rt_obuf *o, rt_filter *b) {
  size_t n = o->len;
  if (n == 0) return 0;
  if (b->ops->feed(b, o->buf, n) != 0 || b->ops->keep(b) != 0) return 0;
  o->len = 0;
  return n;
}

/* Runs both handshakes; returns the client's result (0 when both are
 * done), with the messages. */
static int tls_handshake(rt_filter *cl, rt_filter *sv, int *psrv_rv,
                         char *cerr, char *serr) {
  int crv = H2WS_ERR_WOULDBLOCK, srv = H2WS_ERR_WOULDBLOCK;
  tob_cl.len = tob_sv.len = 0;
  for (int i = 0; i < 20; i++) {
    if (crv == H2WS_ERR_WOULDBLOCK)
      crv = cl->ops->handshake(cl, &tob_cl, cerr, 256);
    tls_move_out(&tob_cl, sv);
    if (srv == H2WS_ERR_WOULDBLOCK)
      srv = sv->ops->handshake(sv, &tob_sv, serr, 256);
    tls_move_out(&tob_sv, cl);
    if (crv != H2WS_ERR_WOULDBLOCK && srv != H2WS_ERR_WOULDBLOCK) break;
  }
  *psrv_rv = srv;
  return crv;
}

/* Walks the TLS records in (d, n): their count and the largest payload
 * (record length field). */
static void tls_records(const uint8_t *d, size_t n, int *pcount,
                        size_t *pmax) {
  *pcount = 0;
  *pmax = 0;
  size_t off = 0;
  while (off + 5 <= n) {
    size_t len = ((size_t)d[off + 3] << 8) | d[off + 4];
    (*pcount)++;
    if (len > *pmax) *pmax = len;
    off += 5 + len;
  }
}

static void test_tls_filter_in_memory(void) {
  char err[256], cerr[256] = "", serr[256] = "";
  char certfile[] = "/tmp/h2ws_test_rt_carrier_XXXXXX";
  int fd = mkstemp(certfile);
  CHECK(fd >= 0);
  close(fd);
  /* a shared server context that also writes its certificate */
  h2ws_tls_server *shared;
  h2ws_tls_server_settings ts;
  h2ws_tls_server_settings_default(&ts);
  ts.write_cert_file = certfile;
  CHECK_EQ(h2ws_tls_server_new(&shared, &ts, NULL, err, sizeof err), 0);
  SSL_CTX *sctx = h2ws__rt_tls_server_ref(shared);
  CHECK(sctx != NULL);
  SSL_CTX *cctx = h2ws__rt_tls_client_ctx(0, certfile, err, sizeof err);
  CHECK(cctx != NULL);
  const h2ws_mem *mem = NULL;
  rt_filter *cl, *sv;
  for (int round = 0; round < 2; round++) {
    /* verified against the written certificate, by name and by IP */
    const char *host = round == 0 ? "localhost" : "127.0.0.1";
    CHECK_EQ(h2ws__rt_tls_new(&cl, h2ws__mem_default(), cctx, 1, host,
                              H2WS_RT_POLICY_AUTO), 0);
    CHECK_EQ(h2ws__rt_tls_new(&sv, h2ws__mem_default(), sctx, 0, NULL, -1),
             0);
    int srv_rv;
    CHECK_EQ(tls_handshake(cl, sv, &srv_rv, cerr, serr), 0);
    CHECK_EQ(srv_rv, 0);
    char alpn[16];
    cl->ops->alpn(cl, alpn, sizeof alpn);
    CHECK(strcmp(alpn, "h2") == 0);
    sv->ops->alpn(sv, alpn, sizeof alpn);
    CHECK(strcmp(alpn, "h2") == 0);
    /* data both ways: one send, one recv */
    uint8_t buf[256];
    size_t n = 0;
    /* the server's tickets (TLS 1.3) come with its first read */
    CHECK_EQ(sv->ops->recv(sv, buf, sizeof buf, &n, &tob_sv),
             H2WS_ERR_WOULDBLOCK);
    tls_move_out(&tob_sv, cl);
    CHECK_EQ(cl->ops->recv(cl, buf, sizeof buf, &n, &tob_cl),
             H2WS_ERR_WOULDBLOCK);
    CHECK_EQ(cl->ops->send(cl, (const uint8_t *)"hello", 5, &tob_cl), 0);
    /* a small write: one small record, straight into the lent buffer */
    int nrec;
    size_t maxrec;
    tls_records(tob_cl.buf, tob_cl.len, &nrec, &maxrec);
    CHECK_EQ(nrec, 1);
    CHECK(maxrec < 64);
    tls_move_out(&tob_cl, sv);
    CHECK_EQ(sv->ops->recv(sv, buf, sizeof buf, &n, &tob_sv), 0);
    CHECK(n == 5 && memcmp(buf, "hello", 5) == 0);
    CHECK_EQ(sv->ops->recv(sv, buf, sizeof buf, &n, &tob_sv),
             H2WS_ERR_WOULDBLOCK);
    CHECK_EQ(sv->ops->send(sv, (const uint8_t *)"back", 4, &tob_sv), 0);
    tls_move_out(&tob_sv, cl);
    CHECK_EQ(cl->ops->recv(cl, buf, sizeof buf, &n, &tob_cl), 0);
    CHECK(n == 4 && memcmp(buf, "back", 4) == 0);
    /* a bulk write: full 16 KiB records; the reader fills its buffer
     * with several records per call */
    /* a busy connection keeps OpenSSL's record buffers (no allocation
     * per record), and gives them back when idle: traffic either way */
    sv->ops->hold_buffers(sv, 1);
    cl->ops->hold_buffers(cl, 1);
    static uint8_t bulk[100000], got[65536];
    for (size_t i = 0; i < sizeof bulk; i++) bulk[i] = (uint8_t)(i * 7);
    CHECK_EQ(cl->ops->send(cl, bulk, sizeof bulk, &tob_cl), 0);
    tls_records(tob_cl.buf, tob_cl.len, &nrec, &maxrec);
    CHECK_EQ(nrec, 7);
    CHECK(maxrec >= 16384 && maxrec <= 16384 + 256);
    /* lent in two parts, the first cut inside a record; the first read
     * stops early (a paused protocol) and what was lent is kept */
    size_t cut = 20000;
    CHECK_EQ(sv->ops->feed(sv, tob_cl.buf, cut), 0);
    CHECK_EQ(sv->ops->recv(sv, got, 100, &n, &tob_sv), 0);
    CHECK(n == 100 && memcmp(got, bulk, 100) == 0);
    CHECK_EQ(sv->ops->keep(sv), 0);
    CHECK_EQ(sv->ops->feed(sv, tob_cl.buf + cut, tob_cl.len - cut), 0);
    size_t total = 100;
    while (total < sizeof bulk) {
      int rv = sv->ops->recv(sv, got, sizeof got, &n, &tob_sv);
      CHECK_EQ(rv, 0);
      if (rv != 0) break;
      CHECK(n > 16384 || total + n == sizeof bulk); /* many records */
      CHECK_MEM(got, bulk + total, n);
      total += n;
    }
    CHECK_EQ(sv->ops->recv(sv, got, sizeof got, &n, &tob_sv),
             H2WS_ERR_WOULDBLOCK);
    CHECK_EQ(sv->ops->keep(sv), 0);
    tob_cl.len = 0;
    sv->ops->hold_buffers(sv, 0);
    cl->ops->hold_buffers(cl, 0);
    /* idle: the filters hold no buffer of their own */
    CHECK_EQ(sv->ops->held(sv), 0);
    CHECK_EQ(cl->ops->held(cl), 0);
    /* close_notify: the peer's recv reports the end */
    cl->ops->shutdown(cl, &tob_cl);
    tls_move_out(&tob_cl, sv);
    CHECK_EQ(sv->ops->recv(sv, buf, sizeof buf, &n, &tob_sv),
             H2WS_ERR_CLOSED);
    tob_sv.len = 0;
    cl->ops->del(cl);
    sv->ops->del(sv);
  }
  (void)mem;
  /* a wrong name: verification fails with its code and OpenSSL's reason */
  CHECK_EQ(h2ws__rt_tls_new(&cl, h2ws__mem_default(), cctx, 1, "example.com",
                            H2WS_RT_POLICY_H1), 0);
  CHECK_EQ(h2ws__rt_tls_new(&sv, h2ws__mem_default(), sctx, 0, NULL, -1), 0);
  int srv_rv;
  CHECK_EQ(tls_handshake(cl, sv, &srv_rv, cerr, serr),
           H2WS_ERR_RT_TLS_VERIFY);
  CHECK(strstr(cerr, "TLS certificate verification failed: ") == cerr);
  cl->ops->del(cl);
  sv->ops->del(sv);
  /* a client trusting nothing: self-signed certificate */
  SSL_CTX *strict = h2ws__rt_tls_client_ctx(0, NULL, err, sizeof err);
  CHECK_EQ(h2ws__rt_tls_new(&cl, h2ws__mem_default(), strict, 1, "localhost",
                            H2WS_RT_POLICY_AUTO), 0);
  CHECK_EQ(h2ws__rt_tls_new(&sv, h2ws__mem_default(), sctx, 0, NULL, -1), 0);
  CHECK_EQ(tls_handshake(cl, sv, &srv_rv, cerr, serr),
           H2WS_ERR_RT_TLS_VERIFY);
  CHECK(strstr(cerr, "self-signed") != NULL);
  cl->ops->del(cl);
  sv->ops->del(sv);
  /* not TLS at all: the server's handshake fails with H2WS_ERR_RT_TLS */
  CHECK_EQ(h2ws__rt_tls_new(&sv, h2ws__mem_default(), sctx, 0, NULL, -1), 0);
  static const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  CHECK_EQ(sv->ops->feed(sv, (const uint8_t *)junk, sizeof junk - 1), 0);
  CHECK_EQ(sv->ops->handshake(sv, &tob_sv, serr, sizeof serr),
           H2WS_ERR_RT_TLS);
  tob_sv.len = 0;
  tob_cl.len = 0;
  CHECK(strstr(serr, "TLS error: ") == serr);
  sv->ops->del(sv);
  SSL_CTX_free(strict);
  SSL_CTX_free(cctx);
  SSL_CTX_free(sctx);
  h2ws_tls_server_del(shared);
  unlink(certfile);
  free(tob_cl.buf);
  free(tob_sv.buf);
  tob_cl.buf = tob_sv.buf = NULL;
  tob_cl.cap = tob_sv.cap = 0;
  /* a certificate that cannot be read */
  ts.write_cert_file = NULL;
  ts.cert_file = "/nonexistent/cert.pem";
  ts.key_file = "/nonexistent/key.pem";
  CHECK_EQ(h2ws_tls_server_new(&shared, &ts, NULL, err, sizeof err),
           H2WS_ERR_RT_TLS);
  CHECK(strstr(err, "/nonexistent/cert.pem") != NULL);
}

/* ---- defaults ----------------------------------------------------------- */

static void test_defaults(void) {
  h2ws_server_settings ss;
  memset(&ss, 0x55, sizeof ss);
  h2ws_server_settings_default(&ss);
  CHECK_EQ(ss.handle_signals, 1);
  CHECK_EQ(ss.drain_ms, 2000);
  CHECK_EQ(ss.h2, 1);
  CHECK_EQ(ss.h2_websockets, 1);
  CHECK_EQ(ss.idle_timeout_ms, 120000);
  CHECK_EQ(ss.handshake_timeout_ms, 10000);
  CHECK_EQ(ss.max_connections, 10000);
  CHECK_EQ(ss.compress, 1);
  CHECK_EQ(ss.ws.whole_messages, 1);
  CHECK_EQ(ss.ws.max_output, 1024 * 1024);
  /* the memory model's budgets: a fraction of the machine, 16 MiB per
   * connection, a 10 s write deadline */
  CHECK(ss.max_memory >= (64u << 20));
  CHECK_EQ(ss.max_conn_memory, 16u << 20);
  CHECK_EQ(ss.write_timeout_ms, 10000);
  CHECK(ss.cert_file == NULL && ss.key_file == NULL && ss.tls == NULL);

  h2ws_client_settings cs;
  memset(&cs, 0x55, sizeof cs);
  h2ws_client_settings_default(&cs);
  CHECK_EQ(cs.insecure, 0);
  CHECK(cs.cafile == NULL && cs.trace == NULL);
  CHECK_EQ(cs.close_idle, 0);
  CHECK_EQ(cs.ws.whole_messages, 1);

  h2ws_client_ws_options wo;
  memset(&wo, 0x55, sizeof wo);
  h2ws_client_ws_options_default(&wo);
  CHECK_EQ(wo.policy, H2WS_RT_POLICY_AUTO);
  CHECK_EQ(wo.compress, 1); /* a zeroed struct would offer none */
  CHECK(wo.subprotocols == NULL && wo.nsubprotocols == 0);
  CHECK(wo.origin == NULL && wo.headers == NULL && wo.nheaders == 0);

  h2ws_rt_accept ac;
  memset(&ac, 0x55, sizeof ac);
  h2ws_rt_accept_default(&ac);
  CHECK(ac.subprotocol == NULL && ac.callbacks == NULL &&
        ac.user_data == NULL);

  h2ws_listen_options lo;
  memset(&lo, 0x55, sizeof lo);
  h2ws_listen_options_default(&lo);
  CHECK_EQ(lo.tls, 1);
  CHECK_EQ(lo.reuseport, 0);
  CHECK_EQ(lo.backlog, 511);

  h2ws_tls_server_settings ts;
  memset(&ts, 0x55, sizeof ts);
  h2ws_tls_server_settings_default(&ts);
  CHECK_EQ(ts.h2, 1);
  CHECK(ts.cert_file == NULL && ts.key_file == NULL &&
        ts.write_cert_file == NULL);
}

/* ---- memory budgets (docs/design.md "Memory bounds") ------------------ */

/* The rig's WebSocket as the server makes it: automatic pause, counted
 * in a connection's and a server's budget. */
static void rig_server(rig *r, size_t budget, rt_budget *conn,
                       rt_budget *srv) {
  r->ws->max_output = budget; /* as the server sets it from ws.max_output */
  r->ws->auto_pause = 1;
  r->ws->conn_budget = conn;
  r->ws->srv_budget = srv;
}

/* Queued output is counted in both budgets as it is queued and drained;
 * input pauses above half the WebSocket's budget (max_output) and
 * resumes at a quarter, the pause counted once. */
static void test_budget_echo_pauses_and_drains(void) {
  rig r;
  rt_budget conn, srv;
  memset(&conn, 0, sizeof conn);
  memset(&srv, 0, sizeof srv);
  CHECK_EQ(rig_new(&r, 64 * 1024), 0);
  rig_server(&r, 64 * 1024, &conn, &srv);
  r.a.echo = 1;
  static uint8_t m[12000];
  memset(m, 'e', sizeof m);
  for (int i = 0; i < 6; i++)
    CHECK_EQ(h2ws_ws_submit_msg(r.p->e, H2WS_OP_BINARY, m, sizeof m), 0);
  pump(r.p->e, r.engine); /* stops at the pause */
  h2ws__rt_ws_account(r.ws); /* what a carrier does after its recv */
  /* 3 echoes of 12000 (+ headers) pass 32 KiB: paused after the third */
  CHECK_EQ(r.a.msgs, 3);
  CHECK(h2ws_rt_ws_buffered(r.ws) > 32 * 1024);
  CHECK_EQ(r.ws->held, h2ws_rt_ws_buffered(r.ws));
  /* the budgets add what input is held (none between messages) */
  CHECK_EQ(r.ws->held_in, h2ws_ws_input_len(r.engine));
  CHECK_EQ(conn.held, r.ws->held + r.ws->held_in);
  CHECK_EQ(srv.held, r.ws->held + r.ws->held_in);
  CHECK_EQ(srv.pauses, 1);
  CHECK(!h2ws__rt_ws_can_resume(r.ws));
  /* asking again does not count another pause */
  CHECK(h2ws__rt_ws_over_budget(r.ws));
  CHECK_EQ(srv.pauses, 1);
  /* the carrier drains: the budgets follow, input may resume */
  CHECK(pump(r.engine, r.p->e) > 0);
  CHECK(h2ws__rt_ws_can_resume(r.ws));
  CHECK_EQ(conn.held, r.ws->held_in);
  CHECK_EQ(srv.held, r.ws->held_in);
  CHECK_EQ(r.p->msgs, 3);
  CHECK(srv.peak > 32 * 1024 && srv.peak <= 64 * 1024 + 512 + 12000);
  /* freeing the WebSocket with output queued gives it back */
  CHECK_EQ(h2ws_rt_ws_send(r.ws, H2WS_OP_TEXT, (const uint8_t *)"bye", 3), 0);
  CHECK(srv.held > 0);
  rig_del(&r);
  CHECK_EQ(srv.held, 0);
  CHECK_EQ(conn.held, 0);
}

/* A message being reassembled counts as held input in the connection's
 * and server's budgets (not in the WebSocket's own pause: it must be
 * able to complete), and is given back when delivered. */
static void test_budget_counts_held_input(void) {
  rig r;
  rt_budget conn, srv;
  memset(&conn, 0, sizeof conn);
  memset(&srv, 0, sizeof srv);
  CHECK_EQ(rig_new(&r, 4096), 0);
  rig_server(&r, 4096, &conn, &srv);
  static uint8_t part[10000];
  memset(part, 'i', sizeof part);
  /* the first fragment of a message larger than the output budget */
  CHECK_EQ(h2ws_ws_submit_fragment(r.p->e, H2WS_OP_BINARY, 0, part,
                                   sizeof part),
           0);
  CHECK(pump(r.p->e, r.engine) > 0);
  CHECK_EQ(h2ws_ws_input_len(r.engine), sizeof part);
  h2ws__rt_ws_account(r.ws);
  CHECK_EQ(srv.held, sizeof part);
  CHECK_EQ(conn.held, sizeof part);
  CHECK(!h2ws__rt_ws_over_budget(r.ws)); /* its own output is empty */
  CHECK_EQ(h2ws_ws_submit_fragment(r.p->e, H2WS_OP_CONT, 1, part, 100), 0);
  CHECK(pump(r.p->e, r.engine) > 0);
  CHECK_EQ(r.a.msgs, 1);
  CHECK_EQ(r.a.last_len, sizeof part + 100);
  h2ws__rt_ws_account(r.ws);
  CHECK_EQ(srv.held, 0);
  CHECK_EQ(conn.held, 0);
  rig_del(&r);
}

/* Automatic pongs count: a peer that pings and never reads is paused
 * like one that sends messages. */
static void test_budget_pongs_pause(void) {
  rig r;
  rt_budget srv;
  memset(&srv, 0, sizeof srv);
  CHECK_EQ(rig_new(&r, 4096), 0);
  rig_server(&r, 4096, NULL, &srv);
  int n = 0;
  for (; n < 100; n++) {
    uint8_t ping[125];
    memset(ping, 'p', sizeof ping);
    CHECK_EQ(h2ws_ws_submit_ping(r.p->e, ping, sizeof ping), 0);
    const uint8_t *p;
    size_t len = 0, used = 0;
    CHECK_EQ(h2ws_ws_send(r.p->e, &p, &len, 0), 0);
    int rv = h2ws_ws_recv(r.engine, p, len, &used, 0);
    h2ws_ws_send_consumed(r.p->e, len);
    if (rv == H2WS_ERR_PAUSE) break;
    CHECK_EQ(rv, 0);
  }
  /* 2048 bytes of pongs (127 each) pause input after 17 pings */
  CHECK(n < 20);
  CHECK(srv.held > 2048 && srv.held <= 4096 + 512);
  CHECK_EQ(srv.pauses, 1);
  rig_del(&r);
}

/* A broadcast that does not fit closes the member with 1008 (counted),
 * and the write deadline starts at the carrier. */
static void test_budget_prepared_closes_1008(void) {
  rig r;
  rt_budget srv;
  memset(&srv, 0, sizeof srv);
  CHECK_EQ(rig_new(&r, 16 * 1024), 0);
  rig_server(&r, 16 * 1024, NULL, &srv);
  static uint8_t m[6000];
  memset(m, 'b', sizeof m);
  h2ws_ws_prepared *prep = NULL;
  CHECK_EQ(h2ws_ws_prepared_new(&prep, H2WS_OP_BINARY, m, sizeof m, NULL), 0);
  CHECK_EQ(h2ws_rt_ws_send_prepared(r.ws, prep), 0);
  CHECK_EQ(h2ws_rt_ws_send_prepared(r.ws, prep), 0);
  CHECK_EQ(srv.closes, 0);
  CHECK_EQ(h2ws_rt_ws_send_prepared(r.ws, prep), H2WS_ERR_BUFFER_FULL);
  CHECK_EQ(srv.closes, 1);
  CHECK_EQ(r.ca.closing, 1);
  /* the Close went behind the queued output: the peer sees 1008 */
  pump(r.engine, r.p->e);
  CHECK_EQ(r.p->msgs, 2);
  CHECK_EQ(r.p->code, 1008);
  /* closing: later sends are refused, not counted again */
  CHECK_EQ(h2ws_rt_ws_send_prepared(r.ws, prep), H2WS_ERR_INVALID_STATE);
  CHECK_EQ(srv.closes, 1);
  h2ws_ws_prepared_del(prep);
  rig_del(&r);
}

/* A connection's or server's budget: over its limit every WebSocket in
 * it pauses (its own output aside) until it is back at half; the wake
 * hook fires once then. */
static int wakes;
static void count_wake(void *ud) {
  (void)ud;
  wakes++;
}

static void test_budget_shared_limit(void) {
  rig r;
  rt_budget conn, srv;
  memset(&conn, 0, sizeof conn);
  memset(&srv, 0, sizeof srv);
  srv.limit = 1000;
  srv.wake = count_wake;
  CHECK_EQ(rig_new(&r, 64 * 1024), 0);
  rig_server(&r, 64 * 1024, &conn, &srv);
  wakes = 0;
  /* another WebSocket's output puts the server over */
  h2ws__rt_budget_add(&srv, 1200);
  CHECK(srv.over);
  CHECK(h2ws__rt_ws_over_budget(r.ws));
  CHECK(!h2ws__rt_ws_can_resume(r.ws));
  CHECK_EQ(srv.pauses, 1);
  h2ws__rt_budget_add(&srv, -600); /* 600: under the limit, above half */
  CHECK(srv.over);
  CHECK(!h2ws__rt_ws_can_resume(r.ws));
  CHECK_EQ(wakes, 0);
  h2ws__rt_budget_add(&srv, -200); /* 400: back at half */
  CHECK(!srv.over);
  CHECK_EQ(wakes, 1);
  CHECK(h2ws__rt_ws_can_resume(r.ws));
  /* the connection's budget the same way */
  conn.limit = 100;
  h2ws__rt_budget_add(&conn, 101);
  CHECK(h2ws__rt_ws_over_budget(r.ws));
  h2ws__rt_budget_add(&conn, -101);
  CHECK(h2ws__rt_ws_can_resume(r.ws));
  CHECK_EQ(srv.pauses, 2);
  /* never below zero */
  h2ws__rt_budget_add(&srv, -100000);
  CHECK_EQ(srv.held, 0);
  /* a client WebSocket (no auto pause) is never paused by a budget */
  r.ws->auto_pause = 0;
  h2ws__rt_budget_add(&srv, 5000);
  CHECK(h2ws__rt_ws_can_resume(r.ws));
  h2ws__rt_budget_add(&srv, -5000);
  rig_del(&r);
}

/* Two servers (two workers' rt_budgets) charging one h2ws_budget: the
 * total is the process's, charged in 64 KiB steps (exact at 0); over it
 * both see "over" (the one that holds nothing too, and it is told to
 * watch), and both are woken when it is back at half, whichever server
 * drained. */
static int watches;
static void count_watch(void *ud) {
  (void)ud;
  watches++;
}

static void test_budget_process_wide(void) {
  h2ws_budget *pb = NULL;
  CHECK_EQ(h2ws_budget_new(&pb, 1 << 20, NULL), 0);
  rt_budget a, b;
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  a.shared = b.shared = pb;
  a.limit = b.limit = 1 << 20;
  a.wake = b.wake = count_wake;
  a.watch = b.watch = count_watch;
  wakes = watches = 0;
  /* below a step: counted here, not yet in the total */
  h2ws__rt_budget_add(&a, 1000);
  CHECK_EQ(h2ws_budget_held(pb), 0);
  h2ws__rt_budget_add(&a, RT_BUDGET_STEP);
  CHECK_EQ(h2ws_budget_held(pb), 1000 + RT_BUDGET_STEP);
  /* a alone goes over the process's budget: b, which holds nothing,
   * refuses too */
  h2ws__rt_budget_add(&a, 1 << 20);
  CHECK(a.over);
  CHECK(h2ws__rt_budget_over(&b));
  CHECK_EQ(watches, 2);
  CHECK_EQ(b.held, 0);
  /* b's own traffic moves the total as well */
  h2ws__rt_budget_add(&b, 200000);
  CHECK_EQ(h2ws_budget_held(pb), (uint64_t)a.held + 200000);
  h2ws__rt_budget_add(&b, -200000);
  CHECK_EQ(h2ws_budget_held(pb), a.held); /* back at 0: exact */
  /* a drains below the limit but above half: still over */
  h2ws__rt_budget_add(&a, -(long long)(300 * 1024));
  CHECK(h2ws__rt_budget_over(&b));
  CHECK_EQ(wakes, 0);
  /* to half: a clears it and is woken; b sees it at its next check */
  h2ws__rt_budget_add(&a, -(long long)(a.held - 400 * 1024));
  CHECK(!a.over);
  CHECK_EQ(wakes, 1);
  CHECK(!h2ws__rt_budget_over(&b));
  CHECK_EQ(wakes, 2);
  /* all gone: the total is 0 */
  h2ws__rt_budget_add(&a, -(long long)a.held);
  CHECK_EQ(h2ws_budget_held(pb), 0);
  h2ws_budget_del(pb);
}

int main(void) {
  static const tu_case cases[] = {
      {"budget_echo_pauses_and_drains", test_budget_echo_pauses_and_drains},
      {"budget_pongs_pause", test_budget_pongs_pause},
      {"budget_counts_held_input", test_budget_counts_held_input},
      {"budget_prepared_closes_1008", test_budget_prepared_closes_1008},
      {"budget_shared_limit", test_budget_shared_limit},
      {"budget_process_wide", test_budget_process_wide},
      {"carrier_ops_and_info", test_carrier_ops_and_info},
      {"abort_goes_to_carrier", test_abort_goes_to_carrier},
      {"fragments_beyond_max_output", test_fragments_beyond_max_output},
      {"source_beyond_max_output", test_source_beyond_max_output},
      {"tls_filter_in_memory", test_tls_filter_in_memory},
      {"defaults", test_defaults},
  };
  return TU_RUN(cases);
}
