/* tests/unit/test_rt_h3.c - the runtime's HTTP/3 (lib/rt/conn_h3.c,
 * lib/rt/udp.c) in one process: a server with a TLS listener and an
 * HTTP/3 listener on the same port, clients with policies H3 and
 * PREFER_H3 over loopback UDP: echoes from 0 B to 1 MiB with and without
 * permessage-deflate, 100 WebSockets on one QUIC connection, close codes
 * both ways, a stream reset (1006), graceful shutdown (1001), the
 * fallback to TCP when nothing listens on UDP or the server does not do
 * RFC 9220, Alt-Svc on plain responses. */
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
  };
  return TU_RUN(cases);
}
