/* tests/unit/test_h3.c - the HTTP/3 binding (lib/h3) in an in-memory QUIC
 * pump (tests/unit/h3test.h): a client and a server session exchanging
 * datagrams on a simulated clock, with loss and reordering where a case
 * asks for it.  RFC 9220 on RFC 9114 / RFC 9000. */
#include <stdlib.h>
#include <string.h>
#include "testutil.h"
#include "h3test.h"
#include "h3/h3_internal.h"

/* ---- the test application ----------------------------------------------- */

#define MAXWS 128

typedef struct app app;
typedef struct wsrec {
  app *a;
  int idx;
  int server;
  h2ws_ws *ws;
  int64_t id;
  int pause;        /* server: pause after the next message */
  int no_echo;
  size_t nmsg;
  size_t bytes;
  uint8_t *last;    /* client: last message */
  size_t lastlen;
  uint8_t *seq;     /* client: every byte received, in order */
  size_t seqlen, seqcap;
  int closed;
  uint16_t close_code;
} wsrec;

struct app {
  /* server */
  int refuse_status;   /* nonzero: refuse every WebSocket with it */
  const char *subprotocol;
  int use_pmd;
  h2ws_pmd_config pmd;
  wsrec srv[MAXWS];
  int nsrv;
  int nreq;
  int nplain;
  /* client */
  wsrec cli[MAXWS];
  int ncli;
  int nopen;
  int nrefused;
  int refused_status, refused_error;
  int64_t refused_id;
  int ws_closed;
  uint64_t ws_closed_code;
  /* plain request / response */
  int resp_status;
  size_t resp_bytes;
  int resp_fin;
  int nstream_close;
  uint64_t last_close_code;
  int64_t last_close_id;
  int goaway;
};

static int s_on_msg(h2ws_ws *ws, h2ws_opcode op, const uint8_t *d, size_t n,
                    void *ud) {
  wsrec *r = ud;
  r->nmsg++;
  r->bytes += n;
  if (!r->no_echo) h2ws_ws_submit_msg(ws, op, d, n);
  if (r->pause) {
    r->pause = 0;
    return H2WS_ERR_PAUSE;
  }
  return 0;
}

static int c_on_msg(h2ws_ws *ws, h2ws_opcode op, const uint8_t *d, size_t n,
                    void *ud) {
  wsrec *r = ud;
  (void)ws;
  (void)op;
  r->nmsg++;
  r->bytes += n;
  free(r->last);
  r->last = malloc(n ? n : 1);
  if (n) memcpy(r->last, d, n);
  r->lastlen = n;
  if (r->seqlen + n > r->seqcap) {
    r->seqcap = (r->seqlen + n) * 2;
    r->seq = realloc(r->seq, r->seqcap);
  }
  if (n) memcpy(r->seq + r->seqlen, d, n);
  r->seqlen += n;
  return 0;
}

static void on_close(h2ws_ws *ws, uint16_t code, const uint8_t *reason,
                     size_t len, void *ud) {
  wsrec *r = ud;
  (void)ws;
  (void)reason;
  (void)len;
  r->closed = 1;
  r->close_code = code;
}

static int rnd(uint8_t *b, size_t n, void *ud) { return h3t_random(b, n, ud); }

static h2ws_ws_settings big_settings(void) {
  h2ws_ws_settings w;
  h2ws_ws_settings_default(&w);
  w.whole_messages = 1;
  w.max_message_size = 8u << 20;
  w.max_output = 8u << 20;
  return w;
}

static int on_ws_request(h2ws_h3_session *s, int64_t id,
                         const h2ws_ws_request *req, const h2ws_h3_request *h,
                         void *ud) {
  app *a = ud;
  (void)h;
  a->nreq++;
  if (req->transport != H2WS_TRANSPORT_H3) return -1;
  if (a->refuse_status) return h2ws_h3_refuse(s, id, a->refuse_status, NULL, 0);
  if (req->pathlen >= 8 && !memcmp(req->path, "/noroute", 8))
    return h2ws_h3_refuse(s, id, 404, NULL, 0);
  if (a->nsrv >= MAXWS) return -1;
  wsrec *r = &a->srv[a->nsrv];
  memset(r, 0, sizeof(*r));
  r->a = a;
  r->idx = a->nsrv++;
  r->server = 1;
  r->id = id;
  static h2ws_ws_callbacks cb;
  memset(&cb, 0, sizeof(cb));
  cb.on_msg = s_on_msg;
  cb.on_close = on_close;
  h2ws_ws_settings w = big_settings();
  h2ws_h3_accept_options o;
  h2ws_h3_accept_options_default(&o);
  o.callbacks = &cb;
  o.settings = &w;
  o.user_data = r;
  o.subprotocol = a->subprotocol;
  if (a->use_pmd) o.pmd_config = &a->pmd;
  int rv = h2ws_h3_accept_ws(s, id, &o, &r->ws);
  /* e.g. our subprotocol was not offered: refuse (W9) */
  if (rv == H2WS_ERR_INVALID_ARGUMENT) return h2ws_h3_refuse(s, id, 403, NULL, 0);
  return rv;
}

static int on_request(h2ws_h3_session *s, int64_t id, const h2ws_h3_request *r,
                      void *ud) {
  app *a = ud;
  a->nplain++;
  if (strcmp(r->method, "CONNECT") == 0)
    return h2ws_h3_refuse(s, id, 501, NULL, 0); /* pitfall 10: no tunnels */
  static const uint8_t body[] = "hello over h3";
  h2ws_header h = {"content-type", 12, "text/plain", 10};
  return h2ws_h3_respond(s, id, 200, &h, 1, body, sizeof(body) - 1);
}

static int on_ws_open(h2ws_h3_session *s, int64_t id, h2ws_ws *ws,
                      const char *sub, void *rud, void *ud) {
  app *a = ud;
  wsrec *r = rud;
  (void)s;
  (void)sub;
  r->ws = ws;
  r->id = id;
  a->nopen++;
  return 0;
}

static int on_ws_refused(h2ws_h3_session *s, int64_t id, int status, int err,
                         void *rud, void *ud) {
  app *a = ud;
  (void)s;
  (void)rud;
  a->nrefused++;
  a->refused_status = status;
  a->refused_error = err;
  a->refused_id = id;
  return 0;
}

static void on_ws_closed(h2ws_h3_session *s, int64_t id, h2ws_ws *ws,
                         uint64_t code, void *ud) {
  app *a = ud;
  (void)s;
  (void)id;
  (void)ws;
  a->ws_closed++;
  a->ws_closed_code = code;
}

static void on_stream_close(h2ws_h3_session *s, int64_t id, uint64_t code,
                            void *ud) {
  app *a = ud;
  (void)s;
  a->nstream_close++;
  a->last_close_code = code;
  a->last_close_id = id;
}

static int on_response(h2ws_h3_session *s, int64_t id, int status,
                       const h2ws_header *h, size_t n, void *ud) {
  app *a = ud;
  (void)s;
  (void)id;
  (void)h;
  (void)n;
  a->resp_status = status;
  return 0;
}

static int on_response_data(h2ws_h3_session *s, int64_t id, const uint8_t *d,
                            size_t n, int fin, void *ud) {
  app *a = ud;
  (void)s;
  (void)id;
  (void)d;
  a->resp_bytes += n;
  if (fin) a->resp_fin = 1;
  return 0;
}

static void on_goaway(h2ws_h3_session *s, int64_t id, void *ud) {
  app *a = ud;
  (void)s;
  (void)id;
  a->goaway++;
}

/* A pump with the test application on both sides. */
static void setup(h3t_pump *p, app *sa, app *ca, uint32_t seed) {
  memset(sa, 0, sizeof(*sa));
  memset(ca, 0, sizeof(*ca));
  h3t_init(p, seed);
  p->scb.on_ws_request = on_ws_request;
  p->scb.on_request = on_request;
  p->scb.on_ws_closed = on_ws_closed;
  p->scb.on_stream_close = on_stream_close;
  p->scb.on_goaway = on_goaway;
  p->ccb.on_ws_open = on_ws_open;
  p->ccb.on_ws_refused = on_ws_refused;
  p->ccb.on_ws_closed = on_ws_closed;
  p->ccb.on_stream_close = on_stream_close;
  p->ccb.on_response = on_response;
  p->ccb.on_response_data = on_response_data;
  p->ccb.on_goaway = on_goaway;
  p->sud = sa;
  p->cud = ca;
}

static int settings_seen(h3t_pump *p, void *arg) {
  (void)arg;
  return p->client && h2ws_h3_session_peer_settings(p->client, NULL);
}

/* Opens a client WebSocket record; returns its index or -1. */
static int open_ws(h3t_pump *p, app *ca, const char *path, int pmd,
                   const char *const *subs, size_t nsubs) {
  static h2ws_ws_callbacks cb;
  memset(&cb, 0, sizeof(cb));
  cb.on_msg = c_on_msg;
  cb.on_close = on_close;
  cb.random = rnd;
  static h2ws_ws_settings w;
  w = big_settings();
  wsrec *r = &ca->cli[ca->ncli];
  memset(r, 0, sizeof(*r));
  r->a = ca;
  r->idx = ca->ncli;
  h2ws_h3_ws_options o;
  h2ws_h3_ws_options_default(&o);
  o.authority = "localhost";
  o.path = path;
  o.callbacks = &cb;
  o.settings = &w;
  o.user_data = r;
  o.subprotocols = subs;
  o.nsubprotocols = nsubs;
  if (pmd) o.pmd_offer.enabled = 1;
  int64_t id;
  int rv = h2ws_h3_client_open_ws(p->client, &o, &id);
  if (rv != 0) return rv;
  return ca->ncli++;
}

typedef struct want { app *a; int n; size_t bytes; int idx; } want;

static int opened(h3t_pump *p, void *arg) {
  want *w = arg;
  (void)p;
  return w->a->nopen + w->a->nrefused >= w->n;
}

static int got_msgs(h3t_pump *p, void *arg) {
  want *w = arg;
  (void)p;
  return w->a->cli[w->idx].nmsg >= (size_t)w->n;
}

static void fill(uint8_t *b, size_t n, uint32_t seed) {
  for (size_t i = 0; i < n; i++) {
    seed = seed * 1103515245u + 12345u;
    b[i] = (uint8_t)(seed >> 16);
  }
}

/* ---- cases ------------------------------------------------------------ */

static void free_app(app *a) {
  for (int i = 0; i < MAXWS; i++) {
    free(a->cli[i].last);
    free(a->cli[i].seq);
    a->cli[i].last = a->cli[i].seq = NULL;
  }
}


/* Never done: h3t_run() then just lets simulated time pass. */
static int paused_full(h3t_pump *p, void *arg) {
  (void)p;
  (void)arg;
  return 0;
}


static void H3_handshake_and_settings(void) {
  h3t_pump p;
  app sa, ca;
  setup(&p, &sa, &ca, 1);
  CHECK_EQ(h3t_start(&p), 0);
  CHECK(h3t_run(&p, h3t_handshaken, NULL, 5000));
  CHECK(h3t_run(&p, settings_seen, NULL, 5000));
  int en = -1;
  CHECK(h2ws_h3_session_peer_settings(p.client, &en));
  /* RFC 9220 §3 / SPEC H1: the server with a route advertises 0x08 = 1 */
  CHECK_EQ(en, 1);
  CHECK(h3t_run(&p, NULL, NULL, 100) == 0 || 1);
  CHECK(h2ws_h3_session_peer_settings(p.server, NULL));
  CHECK(h2ws_h3_session_want_read(p.client));
  CHECK(h2ws_h3_session_want_read(p.server));
  /* the endpoint routes by our connection IDs */
  uint8_t cids[8][20];
  size_t lens[8];
  CHECK(h2ws_h3_session_get_cids(p.server, cids, lens, 8) >= 1);
  CHECK_EQ(lens[0], H2WS_H3_CID_LEN);
  free_app(&ca);
  h3t_free(&p);
}

static void H3_setting_only_with_route(void) {
  h3t_pump p;
  app sa, ca;
  setup(&p, &sa, &ca, 2);
  p.sset.enable_connect_protocol = 0;
  CHECK_EQ(h3t_start(&p), 0);
  /* queued before the server's SETTINGS (pitfall 4) */
  CHECK_EQ(open_ws(&p, &ca, "/echo", 0, NULL, 0), 0);
  want w = {&ca, 1, 0, 0};
  CHECK(h3t_run(&p, opened, &w, 5000));
  int en = -1;
  CHECK(h2ws_h3_session_peer_settings(p.client, &en));
  CHECK_EQ(en, 0);
  CHECK_EQ(ca.nopen, 0);
  CHECK_EQ(ca.refused_error, H2WS_ERR_H3_NO_EXTENDED_CONNECT);
  CHECK_EQ(ca.refused_id, -1);
  /* known now: a later call fails at once, nothing was sent */
  CHECK_EQ(open_ws(&p, &ca, "/echo", 0, NULL, 0), H2WS_ERR_H3_NO_EXTENDED_CONNECT);
  CHECK_EQ(sa.nreq, 0);
  CHECK(strstr(h2ws_h3_strerror(H2WS_ERR_H3_NO_EXTENDED_CONNECT), "RFC 9220"));
  free_app(&ca);
  h3t_free(&p);
}

static int echo_one(h3t_pump *p, app *ca, int idx, size_t n, uint32_t seed) {
  uint8_t *b = malloc(n ? n : 1);
  fill(b, n, seed);
  wsrec *r = &ca->cli[idx];
  size_t before = r->nmsg;
  int ok = h2ws_ws_submit_msg(r->ws, H2WS_OP_BINARY, b, n) == 0;
  want w = {ca, (int)before + 1, 0, idx};
  ok = ok && h3t_run(p, got_msgs, &w, 20000);
  ok = ok && r->lastlen == n && (n == 0 || memcmp(r->last, b, n) == 0);
  free(b);
  return ok;
}


static void H3_echo_0_to_1MiB(void) {
  h3t_pump p;
  app sa, ca;
  setup(&p, &sa, &ca, 3);
  CHECK_EQ(h3t_start(&p), 0);
  CHECK_EQ(open_ws(&p, &ca, "/echo", 0, NULL, 0), 0);
  want w = {&ca, 1, 0, 0};
  CHECK(h3t_run(&p, opened, &w, 5000));
  CHECK_EQ(ca.nopen, 1);
  CHECK_EQ(sa.nreq, 1);
  static const size_t sizes[] = {0, 1, 125, 126, 65535, 65536, 100000, 1u << 20};
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
    CHECK(echo_one(&p, &ca, 0, sizes[i], (uint32_t)i));
  CHECK(!h2ws_ws_is_compressed(ca.cli[0].ws));
  CHECK_EQ(h2ws_h3_session_num_ws(p.client), 1);
  free_app(&ca);
  h3t_free(&p);
}

static void H3_permessage_deflate_and_subprotocol(void) {
  h3t_pump p;
  app sa, ca;
  setup(&p, &sa, &ca, 4);
  sa.use_pmd = 1;
  h2ws_pmd_config_default(&sa.pmd);
  sa.subprotocol = "chat";
  CHECK_EQ(h3t_start(&p), 0);
  static const char *const subs[] = {"v2", "chat"};
  CHECK_EQ(open_ws(&p, &ca, "/echo", 1, subs, 2), 0);
  want w = {&ca, 1, 0, 0};
  CHECK(h3t_run(&p, opened, &w, 5000));
  CHECK_EQ(ca.nopen, 1);
  /* RFC 7692 over RFC 9220: agreed both ways (pitfall 20) */
  CHECK(h2ws_ws_is_compressed(ca.cli[0].ws));
  CHECK(h2ws_ws_is_compressed(sa.srv[0].ws));
  uint8_t text[20000];
  for (size_t i = 0; i < sizeof(text); i++) text[i] = (uint8_t)("abcab"[i % 5]);
  CHECK_EQ(h2ws_ws_submit_msg(ca.cli[0].ws, H2WS_OP_TEXT, text, sizeof(text)), 0);
  want m = {&ca, 1, 0, 0};
  CHECK(h3t_run(&p, got_msgs, &m, 5000));
  CHECK_EQ(ca.cli[0].lastlen, sizeof(text));
  CHECK_MEM(ca.cli[0].last, text, sizeof(text));
  CHECK(echo_one(&p, &ca, 0, 70000, 9));
  free_app(&ca);
  h3t_free(&p);
}

static int all_msgs(h3t_pump *p, void *arg) {
  want *w = arg;
  (void)p;
  for (int i = 0; i < w->a->ncli; i++)
    if (w->a->cli[i].nmsg < (size_t)w->n) return 0;
  return w->a->resp_fin || w->bytes == 0;
}

static void H3_hundred_streams_and_a_get(void) {
  h3t_pump p;
  app sa, ca;
  setup(&p, &sa, &ca, 5);
  p.sset.max_concurrent_streams = 101;
  p.sset.max_websockets = 100;
  p.cset.max_websockets = 200;
  CHECK_EQ(h3t_start(&p), 0);
  for (int i = 0; i < 100; i++) CHECK_EQ(open_ws(&p, &ca, "/echo", 0, NULL, 0), i);
  want w = {&ca, 100, 0, 0};
  CHECK(h3t_run(&p, opened, &w, 10000));
  CHECK_EQ(ca.nopen, 100);
  CHECK_EQ(sa.nreq, 100);
  CHECK_EQ(h2ws_h3_session_num_ws(p.server), 100);
  /* SPEC H11: an ordinary request on the same connection */
  int64_t gid;
  CHECK_EQ(h2ws_h3_client_request(p.client, "GET", "https", "localhost", "/",
                                  NULL, 0, NULL, 0, &gid), 0);
  for (int i = 0; i < 100; i++) {
    uint8_t b[300];
    fill(b, sizeof(b), (uint32_t)i);
    CHECK_EQ(h2ws_ws_submit_msg(ca.cli[i].ws, H2WS_OP_BINARY, b, sizeof(b)), 0);
  }
  want m = {&ca, 1, 1, 0};
  CHECK(h3t_run(&p, all_msgs, &m, 10000));
  for (int i = 0; i < 100; i++) {
    uint8_t b[300];
    fill(b, sizeof(b), (uint32_t)i);
    CHECK_EQ(ca.cli[i].lastlen, sizeof(b));
    CHECK_MEM(ca.cli[i].last, b, sizeof(b));
  }
  CHECK_EQ(ca.resp_status, 200);
  CHECK_EQ(ca.resp_bytes, 13);
  CHECK_EQ(sa.nplain, 1);
  /* pitfall 18: the 101st WebSocket is refused (H3_REQUEST_REJECTED),
   * never queued, and the others go on (the GET's stream credit came
   * back with MAX_STREAMS) */
  h3t_run(&p, paused_full, NULL, 100);
  CHECK_EQ(open_ws(&p, &ca, "/echo", 0, NULL, 0), 100);
  want r = {&ca, 101, 0, 0};
  CHECK(h3t_run(&p, opened, &r, 5000));
  CHECK_EQ(ca.nrefused, 1);
  CHECK_EQ(ca.refused_error, H2WS_ERR_H3_STREAM_RESET);
  CHECK(echo_one(&p, &ca, 7, 100, 1));
  /* the client never queues behind the server's QUIC stream credit */
  int rv = 0, k;
  for (k = 0; k < 10 && (rv = open_ws(&p, &ca, "/echo", 0, NULL, 0)) >= 0; k++) {
  }
  CHECK_EQ(rv, H2WS_ERR_H3_TOO_MANY_STREAMS);
  CHECK(k < 5); /* the credit of the two closed streams, at most */
  free_app(&ca);
  h3t_free(&p);
}

typedef struct closed_w { app *a, *b; int ia, ib; } closed_w;
static int both_closed(h3t_pump *p, void *arg) {
  closed_w *w = arg;
  (void)p;
  return w->a->ws_closed >= 1 && w->b->ws_closed >= 1;
}

static void H3_close_codes_both_ways_with_fin(void) {
  for (int dir = 0; dir < 2; dir++) {
    h3t_pump p;
    app sa, ca;
    setup(&p, &sa, &ca, 6 + (uint32_t)dir);
    CHECK_EQ(h3t_start(&p), 0);
    CHECK_EQ(open_ws(&p, &ca, "/echo", 0, NULL, 0), 0);
    want w = {&ca, 1, 0, 0};
    CHECK(h3t_run(&p, opened, &w, 5000));
    h2ws_ws *from = dir == 0 ? ca.cli[0].ws : sa.srv[0].ws;
    uint16_t code = dir == 0 ? 1000 : 4001;
    CHECK_EQ(h2ws_ws_submit_close(from, code, (const uint8_t *)"bye", 3, p.now), 0);
    closed_w cw = {&sa, &ca, 0, 0};
    CHECK(h3t_run(&p, both_closed, &cw, 10000));
    /* SPEC W6 / H9: the code reaches the other side, then FIN both ways:
     * the streams end without a reset */
    CHECK_EQ(sa.srv[0].close_code, code);
    CHECK_EQ(ca.cli[0].close_code, code);
    CHECK_EQ(sa.ws_closed_code, H2WS_H3_NO_ERROR);
    CHECK_EQ(ca.ws_closed_code, H2WS_H3_NO_ERROR);
    h2ws_h3_stats st;
    h2ws_h3_session_get_stats(p.server, &st);
    CHECK_EQ(st.streams_reset, 0);
    CHECK_EQ(st.resets_received, 0);
    CHECK_EQ(h2ws_h3_session_num_ws(p.server), 0);
    free_app(&ca);
    h3t_free(&p);
  }
}

static void H3_reset_is_1006(void) {
  for (int dir = 0; dir < 2; dir++) {
    h3t_pump p;
    app sa, ca;
    setup(&p, &sa, &ca, 8 + (uint32_t)dir);
    CHECK_EQ(h3t_start(&p), 0);
    CHECK_EQ(open_ws(&p, &ca, "/echo", 0, NULL, 0), 0);
    CHECK_EQ(open_ws(&p, &ca, "/echo", 0, NULL, 0), 1);
    want w = {&ca, 2, 0, 0};
    CHECK(h3t_run(&p, opened, &w, 5000));
    if (dir == 0)
      CHECK_EQ(h2ws_h3_reset(p.client, ca.cli[0].id, H2WS_H3_REQUEST_CANCELLED), 0);
    else
      CHECK_EQ(h2ws_h3_reset(p.server, sa.srv[0].id, H2WS_H3_REQUEST_CANCELLED), 0);
    closed_w cw = {&sa, &ca, 0, 0};
    CHECK(h3t_run(&p, both_closed, &cw, 10000));
    /* SPEC H9 / RFC 9220 §3: H3_REQUEST_CANCELLED is the abnormal
     * closure: 1006 on both sides */
    CHECK_EQ(sa.srv[0].close_code, H2WS_CLOSE_ABNORMAL);
    CHECK_EQ(ca.cli[0].close_code, H2WS_CLOSE_ABNORMAL);
    CHECK_EQ(sa.ws_closed_code, H2WS_H3_REQUEST_CANCELLED);
    CHECK_EQ(ca.ws_closed_code, H2WS_H3_REQUEST_CANCELLED);
    /* only that stream: its sibling echoes on */
    CHECK(echo_one(&p, &ca, 1, 5000, 1));
    CHECK(!sa.srv[1].closed);
    free_app(&ca);
    h3t_free(&p);
  }
}


static void H3_paused_stream_stalls_only_itself(void) {
  h3t_pump p;
  app sa, ca;
  setup(&p, &sa, &ca, 10);
  p.sset.stream_window = 65536;
  p.sset.stream_window_max = 65536; /* no growth: the bound is exact */
  CHECK_EQ(h3t_start(&p), 0);
  CHECK_EQ(open_ws(&p, &ca, "/echo", 0, NULL, 0), 0);
  CHECK_EQ(open_ws(&p, &ca, "/echo", 0, NULL, 0), 1);
  want w = {&ca, 2, 0, 0};
  CHECK(h3t_run(&p, opened, &w, 5000));
  /* the server's reader of stream A pauses after its first message */
  sa.srv[0].pause = 1;
  sa.srv[0].no_echo = 1;
  uint8_t b[10000];
  fill(b, sizeof(b), 1);
  for (int i = 0; i < 40; i++)
    CHECK_EQ(h2ws_ws_submit_msg(ca.cli[0].ws, H2WS_OP_BINARY, b, sizeof(b)), 0);
  h3t_run(&p, paused_full, NULL, 2000);
  CHECK(h2ws_h3_ws_is_paused(p.server, sa.srv[0].id));
  CHECK_EQ(sa.srv[0].nmsg, 1);
  /* SPEC H10: the paused stream holds at most its window, the rest
   * waits in the client (no credit) */
  size_t held = h2ws_h3_ws_buffered(p.server, sa.srv[0].id);
  CHECK(held > 0);
  CHECK(held <= 65536);
  CHECK(h2ws_ws_output_len(ca.cli[0].ws) > 0);
  /* stream B keeps echoing meanwhile, many times its window */
  for (int i = 0; i < 20; i++) CHECK(echo_one(&p, &ca, 1, 30000, (uint32_t)i));
  CHECK_EQ(sa.srv[0].nmsg, 1);
  /* resuming delivers everything in order */
  CHECK(h2ws_h3_resume_ws(p.server, sa.srv[0].id, p.now) != H2WS_ERR_INVALID_ARGUMENT);
  want all = {&sa, 40, 0, 0};
  (void)all;
  for (int k = 0; k < 100 && sa.srv[0].nmsg < 40; k++) {
    h3t_run(&p, paused_full, NULL, 50);
    if (h2ws_h3_ws_is_paused(p.server, sa.srv[0].id))
      h2ws_h3_resume_ws(p.server, sa.srv[0].id, p.now);
  }
  CHECK_EQ(sa.srv[0].nmsg, 40);
  CHECK_EQ(sa.srv[0].bytes, 40 * sizeof(b));
  free_app(&ca);
  h3t_free(&p);
}

/* ---- bad requests: raw header lists from the client's nghttp3 ---------- */

static nghttp3_ssize never_data(nghttp3_conn *c, int64_t id, nghttp3_vec *v,
                                size_t n, uint32_t *f, void *ud, void *sud) {
  (void)c; (void)id; (void)v; (void)n; (void)f; (void)ud; (void)sud;
  return NGHTTP3_ERR_WOULDBLOCK;
}

typedef struct rawcase {
  const char *what;
  const char *nv[24]; /* name, value pairs, NULL-terminated */
  int end;            /* FIN with the headers */
  int status;         /* expected status, or 0 */
  uint64_t reset;     /* expected reset code, or 0 */
} rawcase;

typedef struct rawwait { app *a; int64_t id; } rawwait;
static int raw_done(h3t_pump *p, void *arg) {
  rawwait *w = arg;
  (void)p;
  return w->a->resp_status != 0 ||
         (w->a->nstream_close > 0 && w->a->last_close_id == w->id);
}

static int raw_request(h3t_pump *p, app *ca, const rawcase *c, int64_t *pid) {
  h2ws_h3_session *s = p->client;
  nghttp3_nv nva[12];
  size_t n = 0;
  for (size_t i = 0; c->nv[i]; i += 2, n++)
    h2ws__h3_nv(&nva[n], c->nv[i], strlen(c->nv[i]), c->nv[i + 1],
                strlen(c->nv[i + 1]));
  h3_stream *st = h2ws__h3_stream_new(s, -1, H3_KIND_PLAIN);
  int64_t id;
  if (ngtcp2_conn_open_bidi_stream(s->conn, &id, st) != 0) return -1;
  st->id = id;
  nghttp3_data_reader dr = {never_data};
  if (nghttp3_conn_submit_request(s->h3, id, nva, n, c->end ? NULL : &dr, st) != 0)
    return -1;
  ca->resp_status = 0;
  ca->nstream_close = 0;
  *pid = id;
  return 0;
}

#define EXT_CONNECT ":method", "CONNECT", ":protocol", "websocket", ":scheme", "https", ":path", "/echo", ":authority", "localhost"

static void H3_bad_requests_answered_as_on_h2(void) {
  static const rawcase cases[] = {
      {":protocol on GET", {":method", "GET", ":protocol", "websocket", ":scheme", "https", ":path", "/", ":authority", "h", NULL}, 1, 0, H2WS_H3_MESSAGE_ERROR},
      {"missing :scheme", {":method", "CONNECT", ":protocol", "websocket", ":path", "/", ":authority", "h", "sec-websocket-version", "13", NULL}, 0, 0, H2WS_H3_MESSAGE_ERROR},
      {"missing :authority", {":method", "CONNECT", ":protocol", "websocket", ":scheme", "https", ":path", "/", "sec-websocket-version", "13", NULL}, 0, 0, H2WS_H3_MESSAGE_ERROR},
      {":scheme wss", {":method", "CONNECT", ":protocol", "websocket", ":scheme", "wss", ":path", "/", ":authority", "h", "sec-websocket-version", "13", NULL}, 0, 0, H2WS_H3_MESSAGE_ERROR},
      {"connection header", {EXT_CONNECT, "sec-websocket-version", "13", "connection", "upgrade", NULL}, 0, 0, H2WS_H3_MESSAGE_ERROR},
      {"upgrade header", {EXT_CONNECT, "sec-websocket-version", "13", "upgrade", "websocket", NULL}, 0, 0, H2WS_H3_MESSAGE_ERROR},
      {"te gzip", {EXT_CONNECT, "sec-websocket-version", "13", "te", "gzip", NULL}, 0, 0, H2WS_H3_MESSAGE_ERROR},
      {"content-length 5", {EXT_CONNECT, "sec-websocket-version", "13", "content-length", "5", NULL}, 0, 0, H2WS_H3_MESSAGE_ERROR},
      {"pseudo after regular", {":method", "CONNECT", ":protocol", "websocket", ":scheme", "https", ":path", "/", "x-a", "1", ":authority", "h", "sec-websocket-version", "13", NULL}, 0, 0, H2WS_H3_MESSAGE_ERROR},
      {"protocol foo", {":method", "CONNECT", ":protocol", "foo", ":scheme", "https", ":path", "/", ":authority", "h", "sec-websocket-version", "13", NULL}, 0, 501, 0},
      {"no version", {EXT_CONNECT, NULL}, 0, 400, 0},
      {"version twice", {EXT_CONNECT, "sec-websocket-version", "13", "sec-websocket-version", "13", NULL}, 0, 400, 0},
      {"version 8", {EXT_CONNECT, "sec-websocket-version", "8", NULL}, 0, 426, 0},
      {"version abc", {EXT_CONNECT, "sec-websocket-version", "abc", NULL}, 0, 426, 0},
      {"no route", {":method", "CONNECT", ":protocol", "websocket", ":scheme", "https", ":path", "/noroute", ":authority", "h", "sec-websocket-version", "13", NULL}, 0, 404, 0},
      {"plain CONNECT", {":method", "CONNECT", ":authority", "h:443", NULL}, 0, 501, 0},
      {"content-length 0 ok, key ignored", {EXT_CONNECT, "sec-websocket-version", "13", "content-length", "0", "sec-websocket-key", "x", NULL}, 0, 200, 0},
  };
  h3t_pump p;
  app sa, ca;
  setup(&p, &sa, &ca, 11);
  CHECK_EQ(h3t_start(&p), 0);
  CHECK_EQ(open_ws(&p, &ca, "/echo", 0, NULL, 0), 0);
  want w = {&ca, 1, 0, 0};
  CHECK(h3t_run(&p, opened, &w, 5000));
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const rawcase *c = &cases[i];
    int64_t id;
    CHECK_EQ(raw_request(&p, &ca, c, &id), 0);
    rawwait rw = {&ca, id};
    if (!h3t_run(&p, raw_done, &rw, 5000)) {
      fprintf(stderr, "case %s: no answer\n", c->what);
      CHECK(0);
    }
    if (c->status) {
      if (ca.resp_status != c->status)
        fprintf(stderr, "case %s: status %d\n", c->what, ca.resp_status);
      CHECK_EQ(ca.resp_status, c->status);
    } else {
      h3t_run(&p, paused_full, NULL, 50);
      if (ca.last_close_code != c->reset)
        fprintf(stderr, "case %s: code 0x%llx\n", c->what,
                (unsigned long long)ca.last_close_code);
      CHECK_EQ(ca.resp_status, 0);
      CHECK_EQ(ca.last_close_code, c->reset);
    }
    /* the connection serves on: the sibling WebSocket echoes */
    CHECK(echo_one(&p, &ca, 0, 100, (uint32_t)i));
  }
  h2ws_h3_stats st;
  h2ws_h3_session_get_stats(p.server, &st);
  CHECK(!st.closed);
  free_app(&ca);
  h3t_free(&p);
}

static void H3_header_block_too_big(void) {
  h3t_pump p;
  app sa, ca;
  setup(&p, &sa, &ca, 12);
  p.sset.max_header_bytes = 4096;
  CHECK_EQ(h3t_start(&p), 0);
  static char big[8000];
  memset(big, 'a', sizeof(big) - 1);
  h2ws_header h = {"x-big", 5, big, sizeof(big) - 1};
  static h2ws_ws_callbacks cb;
  memset(&cb, 0, sizeof(cb));
  cb.random = rnd;
  h2ws_h3_ws_options o;
  h2ws_h3_ws_options_default(&o);
  o.authority = "localhost";
  o.path = "/echo";
  o.callbacks = &cb;
  o.headers = &h;
  o.nheaders = 1;
  CHECK_EQ(h2ws_h3_client_open_ws(p.client, &o, NULL), 0);
  want w = {&ca, 1, 0, 0};
  CHECK(h3t_run(&p, opened, &w, 5000));
  /* reset with H3_EXCESSIVE_LOAD; nothing reached the application */
  CHECK_EQ(ca.nrefused, 1);
  CHECK_EQ(ca.refused_error, H2WS_ERR_H3_STREAM_RESET);
  CHECK_EQ(sa.nreq, 0);
  h2ws_h3_stats st;
  h2ws_h3_session_get_stats(p.server, &st);
  CHECK_EQ(st.streams_reset, 1);
  CHECK(!st.closed);
  free_app(&ca);
  h3t_free(&p);
}

static void H3_refusals_reported_with_status(void) {
  h3t_pump p;
  app sa, ca;
  setup(&p, &sa, &ca, 13);
  sa.refuse_status = 403;
  CHECK_EQ(h3t_start(&p), 0);
  CHECK_EQ(open_ws(&p, &ca, "/echo", 0, NULL, 0), 0);
  want w = {&ca, 1, 0, 0};
  CHECK(h3t_run(&p, opened, &w, 5000));
  /* SPEC H7: a non-2xx is a refusal with its status */
  CHECK_EQ(ca.nrefused, 1);
  CHECK_EQ(ca.refused_status, 403);
  CHECK_EQ(ca.refused_error, H2WS_ERR_HANDSHAKE);
  /* a subprotocol the client did not offer fails the open (W9) */
  sa.refuse_status = 0;
  sa.subprotocol = "other";
  CHECK_EQ(open_ws(&p, &ca, "/echo", 0, (const char *const[]){"chat"}, 1), 1);
  want w2 = {&ca, 2, 0, 0};
  CHECK(h3t_run(&p, opened, &w2, 5000));
  CHECK_EQ(ca.nrefused, 2); /* the server could not accept it */
  CHECK_EQ(ca.refused_status, 403);
  free_app(&ca);
  h3t_free(&p);
}

static int reordered_all(h3t_pump *p, void *arg) {
  want *w = arg;
  (void)p;
  for (int i = 0; i < w->a->ncli; i++)
    if (w->a->cli[i].bytes < w->bytes) return 0;
  return 1;
}

static void H3_loss_and_reordering_keep_order(void) {
  h3t_pump p;
  app sa, ca;
  setup(&p, &sa, &ca, 14);
  p.loss_pct = 5;
  p.reorder_pct = 10;
  CHECK_EQ(h3t_start(&p), 0);
  for (int i = 0; i < 3; i++) CHECK_EQ(open_ws(&p, &ca, "/echo", 0, NULL, 0), i);
  want w = {&ca, 3, 0, 0};
  CHECK(h3t_run(&p, opened, &w, 60000));
  CHECK_EQ(ca.nopen, 3);
  /* 30 messages of varied sizes per stream, sent at once */
  size_t total = 0;
  uint8_t *expect[3];
  for (int i = 0; i < 3; i++) expect[i] = malloc(2u << 20);
  size_t elen[3] = {0, 0, 0};
  for (int k = 0; k < 30; k++) {
    size_t n = (size_t)(h3t_rand(&p) % 40000);
    for (int i = 0; i < 3; i++) {
      uint8_t *b = expect[i] + elen[i];
      fill(b, n, (uint32_t)(k * 3 + i));
      CHECK_EQ(h2ws_ws_submit_msg(ca.cli[i].ws, H2WS_OP_BINARY, b, n), 0);
      elen[i] += n;
    }
    total += n;
  }
  want all = {&ca, 0, total, 0};
  CHECK(h3t_run(&p, reordered_all, &all, 120000));
  for (int i = 0; i < 3; i++) {
    CHECK_EQ(ca.cli[i].nmsg, 30);
    CHECK_EQ(ca.cli[i].seqlen, elen[i]);
    CHECK_MEM(ca.cli[i].seq, expect[i], elen[i]);
    free(expect[i]);
  }
  CHECK(p.dropped > 0);
  CHECK(p.reordered > 0);
  fprintf(stderr, "loss/reorder: %zu datagrams, %zu dropped, %zu reordered\n",
          p.sent, p.dropped, p.reordered);
  free_app(&ca);
  h3t_free(&p);
}

static int both_over(h3t_pump *p, void *arg) {
  (void)arg;
  return !h2ws_h3_session_want_read(p->client) &&
         !h2ws_h3_session_want_read(p->server);
}

static void H3_graceful_shutdown(void) {
  h3t_pump p;
  app sa, ca;
  setup(&p, &sa, &ca, 15);
  CHECK_EQ(h3t_start(&p), 0);
  CHECK_EQ(open_ws(&p, &ca, "/echo", 0, NULL, 0), 0);
  want w = {&ca, 1, 0, 0};
  CHECK(h3t_run(&p, opened, &w, 5000));
  CHECK_EQ(h2ws_h3_session_shutdown(p.server, p.now, 3000), 0);
  CHECK(h3t_run(&p, both_over, NULL, 30000));
  /* SPEC H12: Close 1001 first, then GOAWAY and CONNECTION_CLOSE
   * H3_NO_ERROR */
  CHECK_EQ(ca.cli[0].close_code, H2WS_CLOSE_GOING_AWAY);
  CHECK_EQ(ca.ws_closed_code, H2WS_H3_NO_ERROR);
  h2ws_h3_stats st;
  h2ws_h3_session_get_stats(p.client, &st);
  CHECK(st.closed);
  CHECK_EQ(st.closed_by, 2);
  CHECK(st.app_error);
  CHECK_EQ(st.error_code, H2WS_H3_NO_ERROR);
  free_app(&ca);
  h3t_free(&p);
}

static void H3_idle_timeout_spares_websockets(void) {
  h3t_pump p;
  app sa, ca;
  setup(&p, &sa, &ca, 16);
  p.sset.idle_timeout_ms = 2000;
  p.cset.idle_timeout_ms = 2000;
  CHECK_EQ(h3t_start(&p), 0);
  CHECK_EQ(open_ws(&p, &ca, "/echo", 0, NULL, 0), 0);
  want w = {&ca, 1, 0, 0};
  CHECK(h3t_run(&p, opened, &w, 5000));
  /* pitfall 17: an open WebSocket keeps the connection alive */
  h3t_run(&p, paused_full, NULL, 10000);
  CHECK(h2ws_h3_session_want_read(p.client));
  CHECK(echo_one(&p, &ca, 0, 10, 1));
  /* once it is gone, the idle timeout ends the connection silently */
  CHECK_EQ(h2ws_ws_submit_close(ca.cli[0].ws, 1000, NULL, 0, p.now), 0);
  CHECK(h3t_run(&p, both_over, NULL, 20000));
  h2ws_h3_stats st;
  h2ws_h3_session_get_stats(p.server, &st);
  CHECK_EQ(st.closed_by, 3);
  free_app(&ca);
  h3t_free(&p);
}

static void H3_retry_validates_the_address(void) {
  h3t_pump p;
  app sa, ca;
  setup(&p, &sa, &ca, 17);
  p.sset.require_retry = 1;
  CHECK_EQ(h3t_start(&p), 0);
  CHECK(h3t_run(&p, h3t_handshaken, NULL, 5000));
  /* the first Initial got a Retry, the second (with the token) a
   * connection */
  CHECK_EQ(p.server_rv, 0);
  CHECK(ngtcp2_conn_after_retry(p.client->conn));
  CHECK_EQ(open_ws(&p, &ca, "/echo", 0, NULL, 0), 0);
  want w = {&ca, 1, 0, 0};
  CHECK(h3t_run(&p, opened, &w, 5000));
  CHECK(echo_one(&p, &ca, 0, 1000, 1));
  /* a forged token: CONNECTION_CLOSE INVALID_TOKEN, no session */
  free_app(&ca);
  h3t_free(&p);
}

static void H3_packet_helpers(void) {
  h3t_pump p;
  app sa, ca;
  setup(&p, &sa, &ca, 18);
  CHECK_EQ(h3t_start(&p), 0);
  h2ws_h3_batch b;
  CHECK_EQ(h2ws_h3_session_send(p.client, &b, p.now), 0);
  CHECK(b.count >= 1);
  CHECK(b.segment_size >= 1200); /* RFC 9000 §14.1: padded Initial */
  h2ws_h3_packet_info info;
  CHECK_EQ(h2ws_h3_packet_decode(b.data, b.segment_size, &info), 0);
  CHECK(info.long_header);
  CHECK_EQ(info.version, 1);
  CHECK_EQ(info.dcidlen, H2WS_H3_CID_LEN);
  /* an unknown version asks for Version Negotiation */
  uint8_t pkt[1200];
  memcpy(pkt, b.data, sizeof(pkt));
  pkt[1] = 0x5a;
  CHECK_EQ(h2ws_h3_packet_decode(pkt, sizeof(pkt), &info), H2WS_ERR_WOULDBLOCK);
  uint8_t vn[256];
  size_t vnlen;
  CHECK_EQ(h2ws_h3_write_version_negotiation(&info, 0x40, vn, sizeof(vn), &vnlen), 0);
  CHECK(vnlen > 7);
  CHECK_EQ(vn[1] | vn[2] | vn[3] | vn[4], 0); /* version 0 */
  /* garbage is not QUIC */
  uint8_t junk[3] = {0x40, 0, 0};
  CHECK_EQ(h2ws_h3_packet_decode(junk, 1, &info), H2WS_ERR_PROTO);
  (void)junk;
  /* a short header to an unknown connection: a Stateless Reset smaller
   * than what caused it */
  uint8_t shorth[100];
  memset(shorth, 0x11, sizeof(shorth));
  shorth[0] = 0x40;
  CHECK_EQ(h2ws_h3_packet_decode(shorth, sizeof(shorth), &info), 0);
  CHECK(!info.long_header);
  uint8_t sr[200];
  size_t srlen;
  CHECK_EQ(h2ws_h3_write_stateless_reset(&info, sizeof(shorth), p.secret,
                                         sizeof(p.secret), h3t_random, NULL,
                                         sr, sizeof(sr), &srlen), 0);
  CHECK(srlen > 21 && srlen < sizeof(shorth));
  CHECK_EQ(h2ws_h3_write_stateless_reset(&info, 30, p.secret, sizeof(p.secret),
                                         h3t_random, NULL, sr, sizeof(sr), &srlen), 0);
  CHECK_EQ(srlen, 0);
  /* a server never makes a session from a non-Initial */
  h2ws_h3_session *s = NULL;
  uint8_t reply[1500];
  size_t rlen = 1;
  CHECK_EQ(h2ws_h3_server_new(&s, &p.scb, &p.sset, h3t_server_cred(), &p.spath,
                              shorth, sizeof(shorth), reply, sizeof(reply),
                              &rlen, p.now, NULL, NULL), H2WS_ERR_H3_STATELESS);
  CHECK(s == NULL);
  CHECK_EQ(rlen, 0);
  /* without a token secret a server is not made */
  h2ws_h3_settings bad = p.sset;
  bad.token_secret = NULL;
  CHECK_EQ(h2ws_h3_server_new(&s, &p.scb, &bad, h3t_server_cred(), &p.spath,
                              b.data, b.segment_size, reply, sizeof(reply),
                              &rlen, p.now, NULL, NULL), H2WS_ERR_INVALID_ARGUMENT);
  free_app(&ca);
  h3t_free(&p);
}

static int server_closed(h3t_pump *p, void *arg) {
  (void)arg;
  h2ws_h3_stats st;
  h2ws_h3_session_get_stats(p->server, &st);
  return st.closed;
}

/* RFC 9114 §4.4 (kept by RFC 9220 §3): after the CONNECT only DATA may
 * follow; a HEADERS frame (trailers) is a connection error
 * H3_FRAME_UNEXPECTED. */
static void H3_headers_on_ws_stream_is_frame_unexpected(void) {
  h3t_pump p;
  app sa, ca;
  setup(&p, &sa, &ca, 20);
  CHECK_EQ(h3t_start(&p), 0);
  CHECK_EQ(open_ws(&p, &ca, "/echo", 0, NULL, 0), 0);
  want w = {&ca, 1, 0, 0};
  CHECK(h3t_run(&p, opened, &w, 5000));
  CHECK(echo_one(&p, &ca, 0, 10, 1));
  /* raw HTTP/3 frames on a new stream, below the client's nghttp3: an
   * extended CONNECT (QPACK literals), a masked WebSocket frame in DATA,
   * then HEADERS again */
  static const uint8_t frames[] = {0x01, 0x40, 0x6f, 0x00, 0x00, 0x27, 0x00, 0x3a, 0x6d, 0x65, 0x74, 0x68, 0x6f, 0x64, 0x07, 0x43, 0x4f, 0x4e, 0x4e, 0x45, 0x43, 0x54, 0x27, 0x02, 0x3a, 0x70, 0x72, 0x6f, 0x74, 0x6f, 0x63, 0x6f, 0x6c, 0x09, 0x77, 0x65, 0x62, 0x73, 0x6f, 0x63, 0x6b, 0x65, 0x74, 0x27, 0x00, 0x3a, 0x73, 0x63, 0x68, 0x65, 0x6d, 0x65, 0x05, 0x68, 0x74, 0x74, 0x70, 0x73, 0x25, 0x3a, 0x70, 0x61, 0x74, 0x68, 0x01, 0x2f, 0x27, 0x03, 0x3a, 0x61, 0x75, 0x74, 0x68, 0x6f, 0x72, 0x69, 0x74, 0x79, 0x09, 0x6c, 0x6f, 0x63, 0x61, 0x6c, 0x68, 0x6f, 0x73, 0x74, 0x27, 0x0e, 0x73, 0x65, 0x63, 0x2d, 0x77, 0x65, 0x62, 0x73, 0x6f, 0x63, 0x6b, 0x65, 0x74, 0x2d, 0x76, 0x65, 0x72, 0x73, 0x69, 0x6f, 0x6e, 0x02, 0x31, 0x33, 0x00, 0x0b, 0x82, 0x85, 0x01, 0x02, 0x03, 0x04, 0x69, 0x67, 0x6f, 0x68, 0x6e, 0x01, 0x06, 0x00, 0x00, 0x21, 0x78, 0x01, 0x79};
  int64_t id;
  CHECK_EQ(ngtcp2_conn_open_bidi_stream(p.client->conn, &id, NULL), 0);
  uint8_t buf[1500];
  ngtcp2_path_storage ps;
  ngtcp2_path_storage_zero(&ps);
  ngtcp2_ssize nd = 0;
  ngtcp2_ssize wn = ngtcp2_conn_write_stream(p.client->conn, &ps.path, NULL, buf,
                                             sizeof(buf), &nd, 0, id, frames,
                                             sizeof(frames), H3_MS(p.now));
  CHECK(wn > 0);
  CHECK_EQ(nd, sizeof(frames));
  h2ws_h3_session_recv(p.server, &p.spath, buf, (size_t)wn, p.now);
  CHECK(h3t_run(&p, server_closed, NULL, 5000));
  h2ws_h3_stats st;
  h2ws_h3_session_get_stats(p.server, &st);
  CHECK_EQ(st.closed_by, 1);
  CHECK(st.app_error);
  CHECK_EQ(st.error_code, H2WS_H3_FRAME_UNEXPECTED);
  /* every WebSocket of the connection ends with it */
  CHECK(sa.srv[0].closed);
  CHECK_EQ(sa.srv[0].close_code, H2WS_CLOSE_ABNORMAL);
  CHECK_EQ(sa.nsrv, 2);
  free_app(&ca);
  h3t_free(&p);
}

/* Fail every allocation of a whole run (handshake, WebSocket, echo,
 * close) in turn: no crash, no leak (ASan), a clean error. */
static void H3_fail_every_allocation(void) {
  long total = 0;
  for (long n = 0;; n++) {
    tu_alloc al = {0};
    al.fail_at = n;
    h2ws_mem mem = tu_mem(&al);
    h3t_pump p;
    app sa, ca;
    setup(&p, &sa, &ca, 19);
    p.cmem = &mem;
    p.smem = &mem;
    if (h3t_start(&p) == 0) {
      open_ws(&p, &ca, "/echo", 0, NULL, 0);
      want w = {&ca, 1, 0, 0};
      h3t_run(&p, opened, &w, 3000);
      if (ca.nopen == 1) {
        uint8_t m[3000];
        fill(m, sizeof(m), 1);
        h2ws_ws_submit_msg(ca.cli[0].ws, H2WS_OP_BINARY, m, sizeof(m));
        want g = {&ca, 1, 0, 0};
        h3t_run(&p, got_msgs, &g, 3000);
        if (n == 0) CHECK_EQ(ca.cli[0].nmsg, 1);
      }
    }
    h3t_free(&p);
    free_app(&ca);
    CHECK_EQ(al.live, 0);
    if (n == 0) {
      total = al.count;
      CHECK(total > 100);
      continue;
    }
    if (n > total) break;
  }
  fprintf(stderr, "fail-every-allocation: %ld allocations failed in turn\n", total);
}

int main(void) {
  static const tu_case cases[] = {
      {"H3_handshake_and_settings", H3_handshake_and_settings},
      {"H3_setting_only_with_route", H3_setting_only_with_route},
      {"H3_echo_0_to_1MiB", H3_echo_0_to_1MiB},
      {"H3_permessage_deflate_and_subprotocol", H3_permessage_deflate_and_subprotocol},
      {"H3_hundred_streams_and_a_get", H3_hundred_streams_and_a_get},
      {"H3_close_codes_both_ways_with_fin", H3_close_codes_both_ways_with_fin},
      {"H3_reset_is_1006", H3_reset_is_1006},
      {"H3_paused_stream_stalls_only_itself", H3_paused_stream_stalls_only_itself},
      {"H3_bad_requests_answered_as_on_h2", H3_bad_requests_answered_as_on_h2},
      {"H3_header_block_too_big", H3_header_block_too_big},
      {"H3_refusals_reported_with_status", H3_refusals_reported_with_status},
      {"H3_loss_and_reordering_keep_order", H3_loss_and_reordering_keep_order},
      {"H3_graceful_shutdown", H3_graceful_shutdown},
      {"H3_idle_timeout_spares_websockets", H3_idle_timeout_spares_websockets},
      {"H3_retry_validates_the_address", H3_retry_validates_the_address},
      {"H3_packet_helpers", H3_packet_helpers},
      {"H3_headers_on_ws_stream_is_frame_unexpected", H3_headers_on_ws_stream_is_frame_unexpected},
      {"H3_fail_every_allocation", H3_fail_every_allocation},
  };
  return TU_RUN(cases);
}
