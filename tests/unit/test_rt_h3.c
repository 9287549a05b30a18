/* tests/unit/test_rt_h3.c - the runtime's HTTP/3 (lib/rt/conn_h3.c,
 * lib/rt/udp.c) in one process: a server with a TLS listener and an
 * HTTP/3 listener on the same port, clients with policies H3 and
 * PREFER_H3 over loopback UDP: echoes from 0 B to 1 MiB with and without
 * permessage-deflate, 100 WebSockets on one QUIC connection, close codes
 * both ways, a stream reset (1006), graceful shutdown (1001), the
 * fallback to TCP when nothing listens on UDP or the server does not do
 * RFC 9220, Alt-Svc on plain responses; the memory model (issue 9 C, D):
 * non-reading streams held at the connection's budget and resumed without
 * loss, the server budget's wake-up, slow room members closed 1008, the
 * write deadline's stream reset and, when the peer acknowledges nothing,
 * its CONNECTION_CLOSE. */
#include <string.h>
#include <h2ws/h3.h>
#include "rt/conn.h"
#include "rt/carrier.h"
#include "testutil.h"

#define MAXWS 128

typedef struct h3sc {
  h2ws_rt *rt;
  h2ws_server *srv;
  h2ws_client *cl;
  uv_timer_t guard;
  int timed_out;
  int port;
  int nws, nopen, ndone;
  size_t msglen;
  int compress;
  uint16_t client_close_code; /* sent by the client after the echo (0 none) */
  int opened[MAXWS], failed[MAXWS], fail_error[MAXWS];
  uint16_t close_code[MAXWS];
  int closed[MAXWS], echoes[MAXWS], echo_ok[MAXWS];
  h2ws_rt_transport transport[MAXWS];
  int64_t stream[MAXWS];
  uint64_t srv_conn[MAXWS];
  int nsrv_closed;
  uint16_t srv_close_code;
  char notes[4096];
  char fail_msg[256];
  uint64_t srv_idle_ms; /* server settings idle_timeout_ms (0: default) */
  uint64_t delay_ms;    /* client: wait this long after open, then send */
  uv_timer_t delay;
  h2ws_rt_ws *delayed;
  /* what the server does */
  int srv_abort;       /* reset each stream after its first message */
  uint16_t srv_close;  /* close with this code after the first message */
  int srv_shutdown;    /* h2ws_server_shutdown once every WebSocket is open */
} h3sc;

typedef struct wctx {
  h3sc *s;
  int i;
} wctx;

static wctx ctxs[MAXWS];
static h3sc *cur;

static void sc_done_check(h3sc *s) {
  if (s->ndone == s->nws) uv_stop(&s->rt->loop);
}

/* ---- server side --------------------------------------------------------- */

static int srv_msg(h2ws_rt_ws *ws, h2ws_opcode op, const uint8_t *d, size_t n,
                   void *ud) {
  (void)ud;
  if (cur->srv_abort) {
    h2ws_rt_ws_abort(ws);
    return 0;
  }
  h2ws_rt_ws_send(ws, op, d, n);
  if (cur->srv_close) h2ws_rt_ws_close(ws, cur->srv_close, "server says");
  return 0;
}

static void srv_close(h2ws_rt_ws *ws, uint16_t code, const uint8_t *r,
                      size_t rl, void *ud) {
  (void)ws;
  (void)r;
  (void)rl;
  (void)ud;
  cur->nsrv_closed++;
  cur->srv_close_code = code;
}

static void srv_request(h2ws_rt_ws_request *req, void *ud) {
  static const h2ws_rt_ws_callbacks cbs = {.on_message = srv_msg,
                                           .on_close = srv_close};
  (void)ud;
  h2ws_rt_accept a;
  h2ws_rt_accept_default(&a);
  a.callbacks = &cbs;
  h2ws_rt_ws_accept(req, &a, NULL);
}

static void srv_page(const h2ws_rt_http_request *req,
                     h2ws_rt_http_response *resp, void *ud) {
  static const char body[] = "hello over any HTTP\n";
  (void)ud;
  (void)req;
  resp->body = (const uint8_t *)body;
  resp->bodylen = sizeof body - 1;
}

/* ---- client side --------------------------------------------------------- */

static void cl_open(h2ws_rt_ws *ws, void *ud);

static void cl_delay_cb(uv_timer_t *t) {
  h3sc *s = t->data;
  s->delay_ms = 0;
  cl_open(s->delayed, &ctxs[0]);
}

static void cl_open(h2ws_rt_ws *ws, void *ud) {
  wctx *x = ud;
  h3sc *s = x->s;
  h2ws_rt_ws_info info;
  s->opened[x->i] = 1;
  s->nopen++;
  s->transport[x->i] = h2ws_rt_ws_transport(ws);
  h2ws_rt_ws_get_info(ws, &info);
  s->stream[x->i] = info.stream_id;
  if (s->srv_shutdown) {
    if (s->nopen == s->nws) h2ws_server_shutdown(s->srv);
    return;
  }
  if (s->delay_ms && !s->delayed) {
    s->delayed = ws;
    uv_timer_start(&s->delay, cl_delay_cb, s->delay_ms, 0);
    return;
  }
  size_t n = s->msglen;
  uint8_t *m = malloc(n ? n : 1);
  for (size_t k = 0; k < n; k++) m[k] = (uint8_t)('a' + (k * 7 + x->i) % 26);
  CHECK_EQ(h2ws_rt_ws_send(ws, H2WS_OP_BINARY, m, n), 0);
  free(m);
}

static int cl_msg(h2ws_rt_ws *ws, h2ws_opcode op, const uint8_t *d, size_t n,
                  void *ud) {
  wctx *x = ud;
  h3sc *s = x->s;
  int ok = op == H2WS_OP_BINARY && n == s->msglen;
  for (size_t k = 0; ok && k < n; k++)
    ok = d[k] == (uint8_t)('a' + (k * 7 + x->i) % 26);
  s->echoes[x->i]++;
  s->echo_ok[x->i] = ok;
  if (!s->srv_close)
    h2ws_rt_ws_close(ws, s->client_close_code ? s->client_close_code : 1000,
                     NULL);
  return 0;
}

static void cl_close(h2ws_rt_ws *ws, uint16_t code, const uint8_t *r,
                     size_t rl, void *ud) {
  wctx *x = ud;
  (void)ws;
  (void)r;
  (void)rl;
  x->s->closed[x->i] = 1;
  x->s->close_code[x->i] = code;
  x->s->ndone++;
  sc_done_check(x->s);
}

static void cl_fail(h2ws_rt_ws *ws, int error, int status, const char *msg,
                    void *ud) {
  wctx *x = ud;
  (void)ws;
  (void)status;
  x->s->failed[x->i] = 1;
  x->s->fail_error[x->i] = error;
  snprintf(x->s->fail_msg, sizeof x->s->fail_msg, "%s", msg);
  x->s->ndone++;
  sc_done_check(x->s);
}

static void cl_note(h2ws_rt_ws *ws, const char *msg, void *ud) {
  wctx *x = ud;
  (void)ws;
  size_t l = strlen(x->s->notes);
  snprintf(x->s->notes + l, sizeof x->s->notes - l, "%s\n", msg);
}

static const h2ws_rt_ws_callbacks cl_cbs = {
    .on_open = cl_open,
    .on_message = cl_msg,
    .on_close = cl_close,
    .on_fail = cl_fail,
    .on_note = cl_note,
};

static void sc_guard(uv_timer_t *t) {
  h3sc *s = t->data;
  s->timed_out = 1;
  uv_stop(&s->rt->loop);
}

/* A server with TLS and (h3) HTTP/3 on one port; rfc9220: a WebSocket
 * route exists (else only a page). */
static int sc_start2(h3sc *s, int h3, int ws_route, uint64_t idle_ms) {
  memset(s, 0, sizeof *s);
  cur = s;
  s->srv_idle_ms = idle_ms;
  if (h2ws_rt_new(&s->rt, NULL) != 0) return -1;
  h2ws_server_settings st;
  h2ws_server_settings_default(&st);
  st.handle_signals = 0;
  st.drain_ms = 1000;
  st.ws.max_message_size = 4u << 20;
  st.ws.max_output = 4u << 20;
  if (cur->srv_idle_ms) st.idle_timeout_ms = cur->srv_idle_ms;
  if (h2ws_server_new(&s->srv, s->rt, &st) != 0) return -1;
  h2ws_rt_ws_handler h = {.on_request = srv_request};
  if (ws_route && h2ws_server_route_ws(s->srv, "/echo", &h, NULL) != 0)
    return -1;
  if (h2ws_server_route_http(s->srv, "/", srv_page, NULL) != 0) return -1;
  if (h2ws_server_listen(s->srv, "127.0.0.1:0", 1, &s->port) != 0) return -1;
  if (h3) {
    char hp[64];
    int uport = 0;
    snprintf(hp, sizeof hp, "127.0.0.1:%d", s->port);
    if (h2ws_server_listen_h3(s->srv, hp, NULL, &uport) != 0 ||
        uport != s->port)
      return -1;
  }
  h2ws_client_settings cs;
  h2ws_client_settings_default(&cs);
  cs.insecure = 1;
  cs.close_idle = 1;
  cs.ws.max_message_size = 4u << 20;
  cs.ws.max_output = 4u << 20;
  if (h2ws_client_new(&s->cl, s->rt, &cs) != 0) return -1;
  uv_timer_init(&s->rt->loop, &s->guard);
  s->guard.data = s;
  uv_timer_init(&s->rt->loop, &s->delay);
  s->delay.data = s;
  uv_timer_start(&s->guard, sc_guard, 20000, 0);
  uv_unref((uv_handle_t *)&s->guard);
  return s->port;
}

static void sc_open_n(h3sc *s, int n, int policy) {
  char url[128];
  snprintf(url, sizeof url, "wss://127.0.0.1:%d/echo", s->port);
  h2ws_client_ws_options o;
  h2ws_client_ws_options_default(&o);
  o.policy = policy;
  o.compress = s->compress;
  for (int k = 0; k < n; k++) {
    wctx *x = &ctxs[s->nws];
    x->s = s;
    x->i = s->nws++;
    CHECK_EQ(h2ws_client_open(s->cl, url, &o, &cl_cbs, x, NULL), 0);
  }
}

static void sc_run_end(h3sc *s) {
  if (s->ndone < s->nws) h2ws_rt_run(s->rt);
  h2ws_client_del(s->cl);
  s->cl = NULL;
  h2ws_server_shutdown(s->srv);
  h2ws_rt_run(s->rt); /* the server's drain and the sockets' close */
  uv_close((uv_handle_t *)&s->guard, NULL);
  uv_close((uv_handle_t *)&s->delay, NULL);
  h2ws_server_del(s->srv);
  h2ws_rt_del(s->rt);
}

static int sc_start(h3sc *s, int h3, int ws_route) {
  return sc_start2(s, h3, ws_route, 0);
}

/* ---- tests ----------------------------------------------------------------- */

static void echo_case(size_t len, int compress) {
  h3sc s;
  CHECK(sc_start(&s, 1, 1) > 0);
  s.msglen = len;
  s.compress = compress;
  sc_open_n(&s, 1, H2WS_RT_POLICY_H3);
  sc_run_end(&s);
  if (s.timed_out) fprintf(stderr, "echo of %zu B timed out\n", len);
  CHECK(!s.timed_out);
  CHECK(s.opened[0]);
  CHECK_EQ(s.transport[0], H2WS_RT_H3);
  CHECK_EQ(s.echoes[0], 1);
  CHECK(s.echo_ok[0]);
  CHECK_EQ(s.close_code[0], 1000);
  CHECK(strstr(s.notes, "connected via h3") != NULL);
}

static void test_echo_sizes(void) {
  static const size_t sizes[] = {0, 1, 125, 126, 65535, 65536, 300000,
                                 1u << 20};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
    echo_case(sizes[i], 0);
}

static void test_echo_deflate(void) {
  echo_case(5, 1);
  echo_case(1u << 20, 1);
}

static void test_100_streams_one_connection(void) {
  h3sc s;
  CHECK(sc_start(&s, 1, 1) > 0);
  s.msglen = 1000;
  sc_open_n(&s, 100, H2WS_RT_POLICY_H3);
  sc_run_end(&s);
  CHECK(!s.timed_out);
  int ok = 0, distinct = 1;
  for (int i = 0; i < 100; i++) {
    if (s.transport[i] == H2WS_RT_H3 && s.echo_ok[i] &&
        s.close_code[i] == 1000)
      ok++;
    for (int j = 0; j < i; j++)
      if (s.stream[j] == s.stream[i]) distinct = 0;
  }
  CHECK_EQ(ok, 100);
  CHECK(distinct); /* 100 streams of one QUIC connection */
  CHECK_EQ(s.nsrv_closed, 100);
}

static void test_close_codes_both_ways(void) {
  h3sc s;
  CHECK(sc_start(&s, 1, 1) > 0);
  s.msglen = 10;
  s.client_close_code = 4000;
  sc_open_n(&s, 1, H2WS_RT_POLICY_H3);
  sc_run_end(&s);
  CHECK_EQ(s.close_code[0], 4000); /* the server echoes the code */
  CHECK_EQ(s.srv_close_code, 4000);
  CHECK(sc_start(&s, 1, 1) > 0);
  s.msglen = 10;
  s.srv_close = 4001;
  sc_open_n(&s, 1, H2WS_RT_POLICY_H3);
  sc_run_end(&s);
  CHECK_EQ(s.close_code[0], 4001);
  CHECK_EQ(s.srv_close_code, 4001);
}

static void test_reset_stream_1006(void) {
  h3sc s;
  CHECK(sc_start(&s, 1, 1) > 0);
  s.msglen = 10;
  s.srv_abort = 1;
  sc_open_n(&s, 2, H2WS_RT_POLICY_H3);
  sc_run_end(&s);
  CHECK(!s.timed_out);
  CHECK_EQ(s.close_code[0], 1006);
  CHECK_EQ(s.close_code[1], 1006);
  CHECK_EQ(s.nsrv_closed, 2);
}

static void test_shutdown_1001(void) {
  h3sc s;
  CHECK(sc_start(&s, 1, 1) > 0);
  s.srv_shutdown = 1;
  sc_open_n(&s, 3, H2WS_RT_POLICY_H3);
  sc_run_end(&s);
  CHECK(!s.timed_out);
  for (int i = 0; i < 3; i++) CHECK_EQ(s.close_code[i], 1001);
}

/* PREFER_H3 with nothing on UDP: ICMP port unreachable, then h2. */
static void test_fallback_no_udp_listener(void) {
  h3sc s;
  CHECK(sc_start(&s, 0, 1) > 0);
  s.msglen = 3;
  sc_open_n(&s, 1, H2WS_RT_POLICY_PREFER_H3);
  sc_run_end(&s);
  CHECK(!s.timed_out);
  CHECK_EQ(s.transport[0], H2WS_RT_H2_TLS);
  CHECK(s.echo_ok[0]);
  CHECK(strstr(s.notes, "HTTP/3: no HTTP/3 server on that UDP port") != NULL);
  /* H3 alone fails with the reason */
  CHECK(sc_start(&s, 0, 1) > 0);
  sc_open_n(&s, 1, H2WS_RT_POLICY_H3);
  sc_run_end(&s);
  CHECK(s.failed[0]);
  CHECK(strstr(s.fail_msg, "HTTP/3") != NULL);
}

/* No WebSocket route: no SETTINGS_ENABLE_CONNECT_PROTOCOL over HTTP/3
 * (pitfall 1); PREFER_H3 says so and goes to TCP, where the request is
 * refused (404 over HTTP/2 would need RFC 8441, which is not advertised
 * either: HTTP/1.1 then answers 404). */
static void test_no_route_no_rfc9220(void) {
  h3sc s;
  CHECK(sc_start(&s, 1, 0) > 0);
  sc_open_n(&s, 1, H2WS_RT_POLICY_PREFER_H3);
  sc_run_end(&s);
  CHECK(!s.timed_out);
  CHECK(s.failed[0]);
  CHECK(strstr(s.notes, "does not support WebSockets over HTTP/3") != NULL);
  CHECK(sc_start(&s, 1, 0) > 0);
  sc_open_n(&s, 1, H2WS_RT_POLICY_H3);
  sc_run_end(&s);
  CHECK(s.failed[0]);
  CHECK_EQ(s.fail_error[0], H2WS_ERR_H3_NO_EXTENDED_CONNECT);
}

/* AUTO over TLS: the first WebSocket goes over h2 and its 200 carries
 * Alt-Svc h3; the next one (same client) tries HTTP/3 first and gets it.
 * Against a server whose Alt-Svc names a port nothing listens on, the
 * next one falls back to h2 and the alternative is forgotten. */
static void test_alt_svc_auto(void) {
  h3sc s;
  CHECK(sc_start(&s, 1, 1) > 0);
  s.msglen = 7;
  sc_open_n(&s, 1, H2WS_RT_POLICY_AUTO);
  h2ws_rt_run(s.rt);
  CHECK_EQ(s.transport[0], H2WS_RT_H2_TLS);
  CHECK(s.echo_ok[0]);
  sc_open_n(&s, 1, H2WS_RT_POLICY_AUTO);
  sc_run_end(&s);
  CHECK(!s.timed_out);
  CHECK_EQ(s.transport[1], H2WS_RT_H3);
  CHECK(s.echo_ok[1]);
  CHECK(strstr(s.notes, "advertised h3 on UDP port") != NULL);
}

/* Pitfall 17 over QUIC: the server's idle timeout (600 ms, QUIC's
 * max_idle_timeout) does not end a connection that carries a WebSocket
 * silent for 2 s (PINGs at half of it); the echo after the silence
 * arrives on the same stream. */
static void test_idle_spares_websocket(void) {
  h3sc s;
  CHECK(sc_start2(&s, 1, 1, 600) > 0);
  s.msglen = 9;
  s.delay_ms = 2000;
  sc_open_n(&s, 1, H2WS_RT_POLICY_H3);
  sc_run_end(&s);
  CHECK(!s.timed_out);
  CHECK_EQ(s.transport[0], H2WS_RT_H3);
  CHECK(s.echo_ok[0]);
  CHECK_EQ(s.close_code[0], 1000);
}

static void test_ws_url_refused(void) {
  h3sc s;
  CHECK(sc_start(&s, 1, 1) > 0);
  h2ws_client_ws_options o;
  h2ws_client_ws_options_default(&o);
  o.policy = H2WS_RT_POLICY_H3;
  CHECK_EQ(h2ws_client_open(s.cl, "ws://127.0.0.1:1/echo", &o, &cl_cbs,
                            &ctxs[0], NULL),
           H2WS_ERR_INVALID_ARGUMENT);
  CHECK(strstr(h2ws_client_last_error(s.cl), "wss://") != NULL);
  sc_run_end(&s);
}

/* ---- memory budgets and the write deadline over HTTP/3 (issue 9 C, D) --- */

/* Slow WebSockets send B_NMSG messages of B_MSG bytes to /echo and read
 * the first echo, then nothing (on_message returns PAUSE) until told; an
 * honest WebSocket on another QUIC connection echoes meanwhile.  Every
 * message carries its sequence number and a pattern, so resumption is
 * checked byte for byte. */
#define B_MSG 16384
#define B_NMSG 64
#define B_MAXWS 12

typedef struct bsc bsc;
typedef struct bws {
  bsc *b;
  int i;
  int honest;        /* reads everything, on the second client */
  h2ws_rt_ws *ws;
  int nrecv, bad, paused, closed;
  uint16_t code;
} bws;

typedef struct bsrv {
  bsc *b;
  h2ws_rt_ws *ws;     /* while open */
  int nmsg;
  uint16_t code;
  int closed;
} bsrv;

struct bsc {
  h2ws_rt *rt;
  h2ws_server *srv;
  h2ws_client *cl[2]; /* 0: the slow WebSockets' connection, 1: honest */
  uv_timer_t guard, later;
  int timed_out, port;
  bws w[B_MAXWS];
  bsrv sw[B_MAXWS];
  int nw, nslow, nsrv, npaused, nclosed;
  int honest;          /* index of the honest WebSocket, or -1 */
  int honest_rounds;   /* echoes it does while the slow ones stall */
  int honest_sent;
  int srv_close_after; /* server closes each WebSocket after that many */
  int srv_send_fail;
  int wake_case;       /* the server-budget wake-up case */
  int chat;            /* the server broadcasts every message to all */
  int nslow_open;
  rt_budget *srv_budget; /* the server's, seen through its WebSocket */
  uint64_t conn_ids[B_MAXWS];
  size_t peak_stalled; /* the server's peak while the slow ones stall */
  uint64_t t_close, t_1006;
  uint64_t held_after;
  void (*later_fn)(bsc *b);
  struct relay *relay; /* the stall case: datagrams go through it */
  uint64_t t_gone;     /* the stall case: the server's connection ended */
};

/* A UDP relay between the client and the server that can stop passing
 * the server's datagrams (the client then acknowledges nothing, yet keeps
 * sending: a connection-wide stall). */
typedef struct relay {
  uv_udp_t sock;
  struct sockaddr_in srv, cli;
  int have_cli, drop_down;
  uint8_t buf[65536];
} relay;

static void relay_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  relay *r = h->data;
  (void)hint;
  buf->base = (char *)r->buf;
  buf->len = sizeof r->buf;
}

static void relay_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                       const struct sockaddr *addr, unsigned flags) {
  relay *r = h->data;
  (void)flags;
  if (nread <= 0 || !addr || addr->sa_family != AF_INET) return;
  const struct sockaddr_in *a = (const struct sockaddr_in *)addr;
  uv_buf_t b = uv_buf_init(buf->base, (unsigned)nread);
  if (a->sin_port == r->srv.sin_port) {
    if (r->have_cli && !r->drop_down)
      uv_udp_try_send(h, &b, 1, (const struct sockaddr *)&r->cli);
    return;
  }
  r->cli = *a;
  r->have_cli = 1;
  uv_udp_try_send(h, &b, 1, (const struct sockaddr *)&r->srv);
}

static int relay_start(relay *r, uv_loop_t *loop, int srv_port) {
  memset(r, 0, sizeof *r);
  uv_ip4_addr("127.0.0.1", srv_port, &r->srv);
  struct sockaddr_in any;
  uv_ip4_addr("127.0.0.1", 0, &any);
  if (uv_udp_init(loop, &r->sock) != 0) return -1;
  r->sock.data = r;
  if (uv_udp_bind(&r->sock, (const struct sockaddr *)&any, 0) != 0 ||
      uv_udp_recv_start(&r->sock, relay_alloc, relay_recv) != 0)
    return -1;
  struct sockaddr_in me;
  int len = sizeof me;
  uv_udp_getsockname(&r->sock, (struct sockaddr *)&me, &len);
  return ntohs(me.sin_port);
}

static bsc *bcur;

/* Incompressible bytes from (i, seq), the sequence number first. */
static void b_fill(uint8_t *m, size_t n, int i, uint32_t seq) {
  uint32_t x = 2463534242u ^ (seq * 2654435761u) ^ ((uint32_t)i << 20);
  for (size_t k = 0; k < n; k++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    m[k] = (uint8_t)x;
  }
  if (n >= 4) {
    m[0] = (uint8_t)(seq >> 24);
    m[1] = (uint8_t)(seq >> 16);
    m[2] = (uint8_t)(seq >> 8);
    m[3] = (uint8_t)seq;
  }
}

static int b_check(const uint8_t *d, size_t n, size_t want, int i,
                   uint32_t seq) {
  static uint8_t m[B_MSG];
  if (n != want || n > sizeof m) return 0;
  b_fill(m, n, i, seq);
  return memcmp(m, d, n) == 0;
}

static void b_later_cb(uv_timer_t *t) {
  bsc *b = t->data;
  if (b->later_fn) b->later_fn(b);
}

static void b_later(bsc *b, void (*fn)(bsc *b)) {
  b->later_fn = fn;
  uv_timer_start(&b->later, b_later_cb, 0, 0);
}

static void bs_open(h2ws_rt_ws *ws, void *ud) {
  bsrv *x = ud;
  x->ws = ws;
  if (!x->b->srv_budget) x->b->srv_budget = ws->srv_budget;
}

static int bs_msg(h2ws_rt_ws *ws, h2ws_opcode op, const uint8_t *d, size_t n,
                  void *ud) {
  bsrv *x = ud;
  bsc *b = x->b;
  if (!b->srv_budget) b->srv_budget = ws->srv_budget;
  if (b->chat) { /* a room: one prepared message for every member */
    h2ws_ws_prepared *p = NULL;
    if (h2ws_ws_prepared_new(&p, op, d, n, NULL) != 0) {
      b->srv_send_fail++;
      return 0;
    }
    for (int k = 0; k < b->nsrv; k++)
      if (b->sw[k].ws && h2ws_rt_ws_send_prepared(b->sw[k].ws, p) != 0 &&
          &b->sw[k] == x)
        b->srv_send_fail++; /* the talker itself must always fit */
    h2ws_ws_prepared_del(p);
    return 0;
  }
  if (h2ws_rt_ws_send(ws, op, d, n) != 0) b->srv_send_fail++;
  if (++x->nmsg == b->srv_close_after) {
    h2ws_rt_ws_close(ws, 1001, "going away");
    b->t_close = uv_now(&b->rt->loop);
    if (b->relay) b->relay->drop_down = 1; /* the client hears nothing more */
  }
  return 0;
}

static void bs_close(h2ws_rt_ws *ws, uint16_t code, const uint8_t *r,
                     size_t rl, void *ud) {
  bsrv *x = ud;
  (void)ws;
  (void)r;
  (void)rl;
  x->code = code;
  x->closed = 1;
  x->ws = NULL;
}

static void bs_request(h2ws_rt_ws_request *req, void *ud) {
  static const h2ws_rt_ws_callbacks cbs = {.on_open = bs_open,
                                           .on_message = bs_msg,
                                           .on_close = bs_close};
  (void)ud;
  bsc *b = bcur;
  if (b->nsrv >= B_MAXWS) return;
  bsrv *x = &b->sw[b->nsrv];
  b->conn_ids[b->nsrv++] = h2ws_rt_ws_request_conn_id(req);
  x->b = b;
  h2ws_rt_accept a;
  h2ws_rt_accept_default(&a);
  a.callbacks = &cbs;
  a.user_data = x;
  h2ws_rt_ws_accept(req, &a, NULL);
}

static void b_open_ws(bsc *b, int honest);
static int relay_port;

static void b_send_honest(bws *x) {
  static uint8_t m[B_MSG];
  size_t n = x->b->chat ? B_MSG : 1000;
  b_fill(m, n, x->i, (uint32_t)x->b->honest_sent);
  x->b->honest_sent++;
  CHECK_EQ(h2ws_rt_ws_send(x->ws, H2WS_OP_BINARY, m, n), 0);
}

static void b_resume_slow(bsc *b) {
  if (b->srv_budget && !b->peak_stalled) b->peak_stalled = b->srv_budget->peak;
  for (int k = 0; k < b->nw; k++)
    if (!b->w[k].honest && b->w[k].paused && !b->w[k].closed) {
      b->w[k].paused = 0;
      CHECK_EQ(h2ws_rt_ws_resume(b->w[k].ws), 0);
    }
}

/* the wake case: message 2 (and 3 behind it) once the server is over */
static void b_wake_poll(bsc *b) {
  if (!b->srv_budget || !b->srv_budget->over) {
    uv_timer_start(&b->later, b_later_cb, 2, 0);
    return;
  }
  bws *h = &b->w[b->honest];
  b_send_honest(h);
  b_send_honest(h);
}

static void b_done_check(bsc *b) {
  if (b->nclosed == b->nw) uv_stop(&b->rt->loop);
}

/* Chat: the silent members only join; once all are in, the talker comes
 * (on the other client). */
static int b_chat_member_open(bws *x) {
  bsc *b = x->b;
  if (!b->chat) return 0;
  if (++b->nslow_open == b->nslow) b_open_ws(b, 1);
  return 1;
}

static void bc_open(h2ws_rt_ws *ws, void *ud) {
  bws *x = ud;
  x->ws = ws;
  if (x->honest) {
    b_send_honest(x);
    return;
  }
  if (b_chat_member_open(x)) return;
  static uint8_t m[B_MSG];
  for (uint32_t k = 0; k < B_NMSG; k++) {
    b_fill(m, sizeof m, x->i, k);
    CHECK_EQ(h2ws_rt_ws_send(ws, H2WS_OP_BINARY, m, sizeof m), 0);
  }
}

static int bc_msg(h2ws_rt_ws *ws, h2ws_opcode op, const uint8_t *d, size_t n,
                  void *ud) {
  bws *x = ud;
  bsc *b = x->b;
  (void)op;
  if (b->chat && !x->honest) { /* a member that never reads */
    x->nrecv++;
    x->paused = 1;
    return H2WS_ERR_PAUSE;
  }
  if (x->honest) {
    if (!b_check(d, n, b->chat ? B_MSG : 1000, x->i, (uint32_t)x->nrecv))
      x->bad++;
    x->nrecv++;
    if (b->wake_case) {
      if (x->nrecv == 1) { /* now the slow ones fill the server's budget */
        for (int k = 0; k < b->nslow; k++) b_open_ws(b, 0);
      } else if (x->nrecv == 2) {
        /* message 3 waits on the server, paused by the server's budget:
         * let the slow ones drain, the wake-up must reach this one */
        b_later(b, b_resume_slow);
      } else if (x->nrecv == 3) {
        h2ws_rt_ws_close(ws, 1000, NULL);
      }
      return 0;
    }
    if (x->nrecv < b->honest_rounds) {
      b_send_honest(x);
    } else {
      b->held_after = b->srv_budget ? b->srv_budget->held : 0;
      h2ws_rt_ws_close(ws, 1000, NULL);
      if (!b->srv_close_after && !b->chat) b_later(b, b_resume_slow);
    }
    return 0;
  }
  if (!b_check(d, n, B_MSG, x->i, (uint32_t)x->nrecv)) x->bad++;
  x->nrecv++;
  if (x->nrecv == B_NMSG) h2ws_rt_ws_close(ws, 1000, NULL);
  if (x->nrecv == 1) {
    x->paused = 1;
    if (++b->npaused == b->nslow) {
      if (b->wake_case) b_later(b, b_wake_poll);
      else if (!b->srv_close_after) b_open_ws(b, 1);
    }
    return H2WS_ERR_PAUSE;
  }
  return 0;
}

static void bc_close(h2ws_rt_ws *ws, uint16_t code, const uint8_t *r,
                     size_t rl, void *ud) {
  bws *x = ud;
  bsc *b = x->b;
  (void)ws;
  (void)r;
  (void)rl;
  x->closed = 1;
  x->code = code;
  b->nclosed++;
  if (b->srv_close_after && !x->honest && !b->relay) {
    /* the write deadline reset it: the same connection still serves */
    b->t_1006 = uv_now(&b->rt->loop);
    b_open_ws(b, 1);
  }
  b_done_check(b);
}

static void bc_fail(h2ws_rt_ws *ws, int error, int status, const char *msg,
                    void *ud) {
  bws *x = ud;
  (void)ws;
  (void)status;
  fprintf(stderr, "ws %d failed: %d %s\n", x->i, error, msg);
  x->closed = 1;
  x->code = 1;
  x->b->nclosed++;
  b_done_check(x->b);
}

static void b_open_ws(bsc *b, int honest) {
  static const h2ws_rt_ws_callbacks cbs = {.on_open = bc_open,
                                           .on_message = bc_msg,
                                           .on_close = bc_close,
                                           .on_fail = bc_fail};
  char url[128];
  int port = b->relay ? relay_port : b->port;
  snprintf(url, sizeof url, "wss://127.0.0.1:%d/echo", port);
  h2ws_client_ws_options o;
  h2ws_client_ws_options_default(&o);
  o.policy = H2WS_RT_POLICY_H3;
  o.compress = 0; /* the output is what is sent */
  bws *x = &b->w[b->nw];
  x->b = b;
  x->i = b->nw++;
  x->honest = honest;
  if (honest) b->honest = x->i;
  /* honest on the slow client in the write-deadline case (same QUIC
   * connection), else on its own connection */
  h2ws_client *cl = honest && !b->srv_close_after ? b->cl[1] : b->cl[0];
  CHECK_EQ(h2ws_client_open(cl, url, &o, &cbs, x, NULL), 0);
}

static void b_guard(uv_timer_t *t) {
  bsc *b = t->data;
  b->timed_out = 1;
  for (int k = 0; k < b->nw; k++)
    fprintf(stderr, "timeout: ws %d%s: %d echoes, paused %d, closed %d "
            "(%u); server side %d messages\n", k,
            b->w[k].honest ? " (honest)" : "", b->w[k].nrecv,
            b->w[k].paused, b->w[k].closed, b->w[k].code, b->sw[k].nmsg);
  if (b->srv_budget)
    fprintf(stderr, "server held %zu peak %zu over %d, send failures %d\n",
            b->srv_budget->held, b->srv_budget->peak, b->srv_budget->over,
            b->srv_send_fail);
  uv_stop(&b->rt->loop);
}

static int b_start(bsc *b, size_t ws_budget, size_t conn_budget,
                   size_t srv_budget, uint64_t write_timeout_ms) {
  memset(b, 0, sizeof *b);
  bcur = b;
  b->honest = -1;
  if (h2ws_rt_new(&b->rt, NULL) != 0) return -1;
  h2ws_server_settings st;
  h2ws_server_settings_default(&st);
  st.handle_signals = 0;
  st.drain_ms = 500;
  st.ws.max_message_size = 64u << 10;
  st.ws.max_output = ws_budget;
  if (conn_budget) st.max_conn_memory = conn_budget;
  if (srv_budget) st.max_memory = srv_budget;
  if (write_timeout_ms) st.write_timeout_ms = write_timeout_ms;
  if (h2ws_server_new(&b->srv, b->rt, &st) != 0) return -1;
  h2ws_rt_ws_handler h = {.on_request = bs_request};
  if (h2ws_server_route_ws(b->srv, "/echo", &h, NULL) != 0) return -1;
  if (h2ws_server_listen(b->srv, "127.0.0.1:0", 1, &b->port) != 0) return -1;
  char hp[64];
  int uport = 0;
  snprintf(hp, sizeof hp, "127.0.0.1:%d", b->port);
  if (h2ws_server_listen_h3(b->srv, hp, NULL, &uport) != 0) return -1;
  for (int k = 0; k < 2; k++) {
    h2ws_client_settings cs;
    h2ws_client_settings_default(&cs);
    cs.insecure = 1;
    cs.close_idle = 1;
    cs.ws.max_message_size = 64u << 10;
    cs.ws.max_output = 2u * B_NMSG * B_MSG;
    if (h2ws_client_new(&b->cl[k], b->rt, &cs) != 0) return -1;
  }
  uv_timer_init(&b->rt->loop, &b->guard);
  b->guard.data = b;
  uv_timer_init(&b->rt->loop, &b->later);
  b->later.data = b;
  uv_timer_start(&b->guard, b_guard, 15000, 0);
  uv_unref((uv_handle_t *)&b->guard);
  return b->port;
}

static void b_end(bsc *b) {
  for (int k = 0; k < 2; k++) h2ws_client_del(b->cl[k]);
  h2ws_server_shutdown(b->srv);
  h2ws_rt_run(b->rt);
  uv_close((uv_handle_t *)&b->guard, NULL);
  uv_close((uv_handle_t *)&b->later, NULL);
  h2ws_server_del(b->srv);
  h2ws_rt_del(b->rt);
}

/* Eight WebSockets of one QUIC connection send 1 MiB each to /echo and
 * do not read: the server holds at most the connection's budget (512
 * KiB) plus a message in and out per WebSocket (before: each paused on
 * its own 256 KiB budget only, and the streams' send queues were not
 * counted); an honest WebSocket on another connection echoes 50 times
 * meanwhile; resumed, every slow WebSocket gets its 64 echoes in order,
 * byte for byte. */
static void test_budget_nonreaders(void) {
  bsc b;
  CHECK(b_start(&b, 256u << 10, 512u << 10, 0, 0) > 0);
  b.nslow = 8;
  b.honest_rounds = 50;
  for (int k = 0; k < b.nslow; k++) b_open_ws(&b, 0);
  h2ws_rt_run(b.rt);
  CHECK(!b.timed_out);
  int slow_ok = 0;
  for (int k = 0; k < b.nw; k++) {
    if (b.w[k].honest) continue;
    if (b.w[k].nrecv == B_NMSG && !b.w[k].bad && b.w[k].code == 1000)
      slow_ok++;
    else
      fprintf(stderr, "slow %d: %d echoes, %d bad, close %u\n", k,
              b.w[k].nrecv, b.w[k].bad, b.w[k].code);
  }
  CHECK_EQ(slow_ok, 8);
  CHECK(b.honest >= 0);
  CHECK_EQ(b.w[b.honest].nrecv, 50);
  CHECK_EQ(b.w[b.honest].bad, 0);
  CHECK_EQ(b.srv_send_fail, 0);
  for (int k = 1; k < b.nslow; k++) CHECK_EQ(b.conn_ids[k], b.conn_ids[0]);
  CHECK(b.conn_ids[b.nslow] != b.conn_ids[0]);
  size_t bound = (512u << 10) + 8u * 2 * (B_MSG + 64) + (64u << 10);
  fprintf(stderr, "h3 non-readers: server peak %zu bytes (bound %zu)\n",
          b.peak_stalled, bound);
  CHECK(b.peak_stalled > 0);
  CHECK(b.peak_stalled <= bound);
  b_end(&b);
}

/* The server's budget (max_memory 512 KiB) over: an honest WebSocket of
 * another QUIC connection is paused too; once the slow ones drain, the
 * server's wake-up resumes it (before: it reached TCP connections only,
 * and the honest echo waited for the client's next datagram). */
static void test_budget_server_wake(void) {
  bsc b;
  CHECK(b_start(&b, 1u << 20, 0, 512u << 10, 0) > 0);
  b.nslow = 4;
  b.wake_case = 1;
  b_open_ws(&b, 1);
  h2ws_rt_run(b.rt);
  CHECK(!b.timed_out);
  CHECK_EQ(b.w[0].nrecv, 3);
  CHECK_EQ(b.w[0].bad, 0);
  CHECK_EQ(b.w[0].code, 1000);
  for (int k = 1; k < b.nw; k++) {
    CHECK_EQ(b.w[k].nrecv, B_NMSG);
    CHECK_EQ(b.w[k].bad, 0);
  }
  CHECK(b.conn_ids[1] != b.conn_ids[0]);
  b_end(&b);
}

/* A room (/chat in serve): six members of one QUIC connection that never
 * read are closed 1008 once a broadcast no longer fits their budget (256
 * KiB), then reset by the write deadline as they do not read the Close
 * either; the talker on another connection gets all its 100 messages of
 * 16 KiB back. */
static void test_chat_slow_members_1008(void) {
  bsc b;
  CHECK(b_start(&b, 256u << 10, 0, 0, 300) > 0);
  b.nslow = 6;
  b.chat = 1;
  b.honest_rounds = 100;
  for (int k = 0; k < b.nslow; k++) b_open_ws(&b, 0);
  h2ws_rt_run(b.rt);
  CHECK(!b.timed_out);
  CHECK(b.honest == b.nslow);
  CHECK_EQ(b.w[b.honest].nrecv, 100);
  CHECK_EQ(b.w[b.honest].bad, 0);
  CHECK_EQ(b.srv_send_fail, 0);
  CHECK(b.srv_budget != NULL);
  CHECK_EQ(b.srv_budget->closes, 6);
  for (int k = 0; k < b.nslow; k++) {
    CHECK_EQ(b.sw[k].code, 1006); /* our 1008 never got through */
    CHECK_EQ(b.w[k].code, 1006);
  }
  b_end(&b);
}

/* The stall case: once the server's connection is gone, stop. */
static void b_gone_poll(uv_timer_t *t) {
  bsc *b = t->data;
  h2ws_server_stats st;
  h2ws_server_get_stats(b->srv, &st);
  if (st.connections_open == 0 && b->sw[0].closed) {
    b->t_gone = uv_now(&b->rt->loop);
    uv_stop(&b->rt->loop);
  }
}

/* A connection-wide stall: after the server's Close the client
 * acknowledges nothing (the relay drops the server's datagrams) but keeps
 * sending, so QUIC's idle timeout never fires. The write deadline resets
 * the stream at 300 ms; that reset cannot be acknowledged either, so at
 * 600 ms the connection is closed (CONNECTION_CLOSE H3_EXCESSIVE_LOAD)
 * and the server holds nothing for it (before: the connection stayed). */
static void test_write_deadline_stalled_connection(void) {
  bsc b;
  relay rl;
  CHECK(b_start(&b, 4u << 20, 0, 0, 300) > 0);
  relay_port = relay_start(&rl, &b.rt->loop, b.port);
  CHECK(relay_port > 0);
  b.relay = &rl;
  b.nslow = 1;
  b.srv_close_after = 40;
  uv_timer_t poll;
  uv_timer_init(&b.rt->loop, &poll);
  poll.data = &b;
  uv_timer_start(&poll, b_gone_poll, 20, 20);
  b_open_ws(&b, 0);
  h2ws_rt_run(b.rt);
  uv_close((uv_handle_t *)&poll, NULL);
  uv_close((uv_handle_t *)&rl.sock, NULL);
  CHECK(!b.timed_out);
  CHECK_EQ(b.sw[0].code, 1006);
  CHECK(b.t_close > 0 && b.t_gone >= b.t_close + 590);
  CHECK(b.t_gone < b.t_close + 5000);
  CHECK_EQ(b.srv_budget->held, 0);
  fprintf(stderr, "h3 stalled connection: closed %llu ms after the Close\n",
          (unsigned long long)(b.t_gone - b.t_close));
  b_end(&b);
}

/* The write deadline (300 ms): the server closes a WebSocket whose
 * client does not read; its output cannot drain, so the stream is reset
 * (H3_REQUEST_CANCELLED: 1006 on both sides) 300 ms after the Close, and
 * the same QUIC connection serves a new WebSocket after it. */
static void test_write_deadline_resets_stream(void) {
  bsc b;
  CHECK(b_start(&b, 4u << 20, 0, 0, 300) > 0);
  b.nslow = 1;
  b.srv_close_after = 40; /* 640 KiB of echoes queued, then our Close */
  b.honest_rounds = 3;
  b_open_ws(&b, 0);
  h2ws_rt_run(b.rt);
  CHECK(!b.timed_out);
  CHECK_EQ(b.w[0].code, 1006);
  CHECK_EQ(b.sw[0].code, 1006);
  CHECK(b.t_close > 0 && b.t_1006 >= b.t_close + 290);
  CHECK(b.t_1006 < b.t_close + 5000);
  CHECK(b.honest == 1);
  CHECK_EQ(b.w[1].nrecv, 3);
  CHECK_EQ(b.w[1].code, 1000);
  CHECK_EQ(b.conn_ids[1], b.conn_ids[0]); /* the connection went on */
  /* the reset stream's 640 KiB are no longer held (the honest one's echo
   * in flight may be) */
  CHECK(b.held_after < 16384);
  fprintf(stderr, "h3 write deadline: reset %llu ms after the Close\n",
          (unsigned long long)(b.t_1006 - b.t_close));
  b_end(&b);
}

int main(void) {
  static const tu_case cases[] = {
      {"h3_echo_sizes", test_echo_sizes},
      {"h3_echo_deflate", test_echo_deflate},
      {"h3_100_streams_one_connection", test_100_streams_one_connection},
      {"h3_close_codes_both_ways", test_close_codes_both_ways},
      {"h3_reset_stream_1006", test_reset_stream_1006},
      {"h3_shutdown_1001", test_shutdown_1001},
      {"h3_fallback_no_udp_listener", test_fallback_no_udp_listener},
      {"h3_no_route_no_rfc9220", test_no_route_no_rfc9220},
      {"h3_ws_url_refused", test_ws_url_refused},
      {"h3_alt_svc_auto", test_alt_svc_auto},
      {"h3_idle_spares_websocket", test_idle_spares_websocket},
      {"h3_budget_nonreaders", test_budget_nonreaders},
      {"h3_budget_server_wake", test_budget_server_wake},
      {"h3_write_deadline_resets_stream", test_write_deadline_resets_stream},
      {"h3_chat_slow_members_1008", test_chat_slow_members_1008},
      {"h3_write_deadline_stalled_connection",
       test_write_deadline_stalled_connection},
  };
  const char *only = getenv("TU_ONLY"); /* one case by name, to debug */
  if (only)
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
      if (strcmp(cases[i].name, only) == 0) return tu_run(&cases[i], 1);
  return TU_RUN(cases);
}
