/* tests/unit/test_rt.c - the runtime in one process: a server and a client
 * on the same loop over loopback TCP (h1, h2c prior knowledge, TLS with
 * ALPN h2 and http/1.1), echo round trips with and without
 * permessage-deflate, refusal, RFC 8441 fallback, connection reuse per
 * origin, connect failures; plus address parsing and the generated
 * certificate. */
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <openssl/x509v3.h>
#include "rt/conn.h"
#include "rt/carrier.h"
#include "rt/tls.h"
#include "testutil.h"

/* ---- helpers ------------------------------------------------------------- */

static int rt_echo(h2ws_rt_ws *ws, h2ws_opcode op, const uint8_t *d,
                   size_t n, void *ud) {
  (void)ud;
  h2ws_rt_ws_send(ws, op, d, n);
  return 0;
}

static const h2ws_rt_ws_callbacks echo_cbs = {.on_message = rt_echo};

/* Nonzero if the request's path (not NUL-terminated) contains `what`. */
static int rt_path_has(const h2ws_ws_request *v, const char *what) {
  size_t n = strlen(what);
  for (size_t i = 0; i + n <= v->pathlen; i++)
    if (memcmp(v->path + i, what, n) == 0) return 1;
  return 0;
}

static void rt_on_ws_request(h2ws_rt_ws_request *req, void *ud) {
  (void)ud;
  const h2ws_ws_request *v = h2ws_rt_ws_request_view(req);
  /* "?refuse" in the path: refuse with 403, to test statuses */
  if (rt_path_has(v, "?refuse")) {
    h2ws_rt_ws_refuse(req, 403);
    return;
  }
  /* "?origin" in the path: only https://app.example may connect (W9) */
  static const char want[] = "https://app.example";
  if (rt_path_has(v, "?origin") &&
      !(v->origin && v->originlen == sizeof want - 1 &&
        memcmp(v->origin, want, v->originlen) == 0)) {
    h2ws_rt_ws_refuse(req, 403);
    return;
  }
  h2ws_rt_accept a;
  h2ws_rt_accept_default(&a);
  a.callbacks = &echo_cbs;
  h2ws_rt_ws_accept(req, &a, NULL);
}

typedef struct scen {
  h2ws_rt *rt;
  h2ws_server *srv;
  h2ws_client *cl;
  uv_timer_t guard;
  int timed_out;
  /* per WebSocket results (up to 4) */
  int nws;
  int opened[4], failed[4], fail_error[4], fail_status[4];
  char fail_msg[4][256];
  uint16_t close_code[4];
  int closed[4];
  int echoes[4];
  size_t last_len[4];
  int last_compressed[4];
  h2ws_rt_transport transport[4];
  int32_t stream[4];
  char notes[1024];
  size_t msglen; /* message sent on open */
  int done;
} scen;

typedef struct wsctx {
  scen *s;
  int i;
} wsctx;

static void sc_check_done(scen *s) {
  int all = 1;
  for (int i = 0; i < s->nws; i++)
    if (!s->closed[i] && !s->failed[i]) all = 0;
  if (all && !s->done) {
    s->done = 1;
    /* the client and the server are deleted outside callbacks */
    uv_stop(&s->rt->loop);
  }
}

static void sc_open(h2ws_rt_ws *ws, void *ud) {
  wsctx *x = ud;
  scen *s = x->s;
  s->opened[x->i] = 1;
  s->transport[x->i] = h2ws_rt_ws_transport(ws);
  s->stream[x->i] = h2ws_rt_ws_stream_id(ws);
  s->last_compressed[x->i] = h2ws_rt_ws_compressed(ws);
  size_t n = s->msglen ? s->msglen : 5;
  uint8_t *m = malloc(n);
  for (size_t k = 0; k < n; k++) m[k] = (uint8_t)('a' + k % 26);
  h2ws_rt_ws_send(ws, H2WS_OP_TEXT, m, n);
  free(m);
}

static int sc_msg(h2ws_rt_ws *ws, h2ws_opcode op, const uint8_t *d, size_t n,
                  void *ud) {
  wsctx *x = ud;
  (void)op;
  (void)d;
  x->s->echoes[x->i]++;
  x->s->last_len[x->i] = n;
  h2ws_rt_ws_close(ws, H2WS_CLOSE_NORMAL, "bye");
  return 0;
}

static void sc_close(h2ws_rt_ws *ws, uint16_t code, const uint8_t *r,
                     size_t rl, void *ud) {
  wsctx *x = ud;
  (void)ws;
  (void)r;
  (void)rl;
  x->s->closed[x->i] = 1;
  x->s->close_code[x->i] = code;
  sc_check_done(x->s);
}

static void sc_fail(h2ws_rt_ws *ws, int error, int status, const char *msg,
                    void *ud) {
  wsctx *x = ud;
  (void)ws;
  x->s->failed[x->i] = 1;
  x->s->fail_error[x->i] = error;
  x->s->fail_status[x->i] = status;
  snprintf(x->s->fail_msg[x->i], sizeof x->s->fail_msg[x->i], "%s", msg);
  sc_check_done(x->s);
}

static void sc_note(h2ws_rt_ws *ws, const char *msg, void *ud) {
  wsctx *x = ud;
  (void)ws;
  size_t l = strlen(x->s->notes);
  snprintf(x->s->notes + l, sizeof x->s->notes - l, "%s\n", msg);
}

static const h2ws_rt_ws_callbacks sc_cbs = {
    .on_open = sc_open,
    .on_message = sc_msg,
    .on_close = sc_close,
    .on_fail = sc_fail,
    .on_note = sc_note,
};

static void sc_guard(uv_timer_t *t) {
  scen *s = t->data;
  s->timed_out = 1;
  uv_stop(&s->rt->loop);
}

/* Starts a server (tls or not, RFC 8441 advertised or not) and returns its
 * port, or -1. */
static int sc_start(scen *s, int tls, int h2_ws, int compress) {
  memset(s, 0, sizeof *s);
  if (h2ws_rt_new(&s->rt, NULL) != 0) return -1;
  h2ws_server_settings st;
  h2ws_server_settings_default(&st);
  st.handle_signals = 0;
  st.h2_websockets = h2_ws;
  st.compress = compress;
  if (h2ws_server_new(&s->srv, s->rt, &st) != 0) return -1;
  h2ws_rt_ws_handler h = {.on_request = rt_on_ws_request};
  if (h2ws_server_route_ws(s->srv, "/echo", &h, NULL) != 0) return -1;
  int port = 0;
  if (h2ws_server_listen(s->srv, "127.0.0.1:0", tls, &port) != 0) return -1;
  h2ws_client_settings cs;
  h2ws_client_settings_default(&cs);
  cs.insecure = 1;
  cs.close_idle = 1;
  if (h2ws_client_new(&s->cl, s->rt, &cs) != 0) return -1;
  uv_timer_init(&s->rt->loop, &s->guard);
  s->guard.data = s;
  uv_timer_start(&s->guard, sc_guard, 10000, 0);
  uv_unref((uv_handle_t *)&s->guard);
  return port;
}

static void sc_run(scen *s) {
  if (!s->done) h2ws_rt_run(s->rt);
}

static void sc_end(scen *s) {
  uv_close((uv_handle_t *)&s->guard, NULL);
  h2ws_client_del(s->cl);
  h2ws_server_del(s->srv);
  h2ws_rt_del(s->rt);
}

/* Opens one WebSocket to url with policy/compress and runs to the end. */
static void sc_one(scen *s, wsctx *x, const char *url, int policy,
                   int compress) {
  h2ws_client_ws_options o;
  h2ws_client_ws_options_default(&o);
  o.policy = policy;
  o.compress = compress;
  x->s = s;
  x->i = s->nws++;
  h2ws_client_open(s->cl, url, &o, &sc_cbs, x, NULL);
}

/* ---- tests ---------------------------------------------------------------- */

static void test_parse_hostport(void) {
  char h[64];
  int p;
  CHECK_EQ(h2ws__rt_parse_hostport("127.0.0.1:8443", h, sizeof h, &p), 0);
  CHECK(strcmp(h, "127.0.0.1") == 0);
  CHECK_EQ(p, 8443);
  CHECK_EQ(h2ws__rt_parse_hostport("[::1]:0", h, sizeof h, &p), 0);
  CHECK(strcmp(h, "::1") == 0);
  CHECK_EQ(p, 0);
  CHECK_EQ(h2ws__rt_parse_hostport("localhost", h, sizeof h, &p), -1);
  CHECK_EQ(h2ws__rt_parse_hostport(":80", h, sizeof h, &p), -1);
  CHECK_EQ(h2ws__rt_parse_hostport("a:70000", h, sizeof h, &p), -1);
  CHECK_EQ(h2ws__rt_parse_hostport("a:8x", h, sizeof h, &p), -1);
  CHECK_EQ(h2ws__rt_parse_hostport("[::1]80", h, sizeof h, &p), -1);
}

static void test_cert_generated(void) {
  EVP_PKEY *k = NULL;
  X509 *x = NULL;
  CHECK_EQ(h2ws__rt_cert_generate(&k, &x), 0);
  int ok = X509_verify(x, k) == 1 &&
           X509_check_host(x, "localhost", 0, 0, NULL) == 1 &&
           X509_check_ip_asc(x, "127.0.0.1", 0) == 1 &&
           X509_check_host(x, "example.com", 0, 0, NULL) != 1 &&
           EVP_PKEY_is_a(k, "EC");
  int days = 0, secs = 0;
  ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x));
  X509_free(x);
  EVP_PKEY_free(k);
  CHECK(ok);
  CHECK(days >= 29 && days <= 30);
}

static void echo_case(int tls, const char *scheme, int policy, int compress,
                      h2ws_rt_transport want, size_t msglen) {
  scen s;
  wsctx x;
  char url[128];
  int port = sc_start(&s, tls, 1, 1);
  CHECK(port > 0);
  s.msglen = msglen;
  snprintf(url, sizeof url, "%s://127.0.0.1:%d/echo", scheme, port);
  sc_one(&s, &x, url, policy, compress);
  sc_run(&s);
  int timed_out = s.timed_out;
  sc_end(&s);
  CHECK(!timed_out);
  CHECK_EQ(s.failed[0], 0);
  CHECK(s.opened[0]);
  CHECK_EQ(s.transport[0], want);
  CHECK_EQ(s.echoes[0], 1);
  CHECK_EQ(s.last_len[0], msglen ? msglen : 5);
  CHECK_EQ(s.close_code[0], 1000);
  if (want == H2WS_RT_H2C || want == H2WS_RT_H2_TLS) CHECK_EQ(s.stream[0], 1);
}

static void test_echo_h1_cleartext(void) {
  echo_case(0, "ws", H2WS_RT_POLICY_AUTO, 0, H2WS_RT_H1, 0);
}
static void test_echo_h1_cleartext_pmd(void) {
  echo_case(0, "ws", H2WS_RT_POLICY_AUTO, 1, H2WS_RT_H1, 200000);
}
static void test_echo_h2c_prior_knowledge(void) {
  echo_case(0, "ws", H2WS_RT_POLICY_H2, 0, H2WS_RT_H2C, 0);
}
static void test_echo_h2c_pmd_large(void) {
  echo_case(0, "ws", H2WS_RT_POLICY_H2, 1, H2WS_RT_H2C, 300000);
}
static void test_echo_tls_alpn_h2(void) {
  echo_case(1, "wss", H2WS_RT_POLICY_AUTO, 1, H2WS_RT_H2_TLS, 100000);
}
static void test_echo_tls_h1(void) {
  echo_case(1, "wss", H2WS_RT_POLICY_H1, 1, H2WS_RT_H1_TLS, 100000);
}

/* H1 (SPEC pitfall 1 / H3): without RFC 8441 the client falls back (auto)
 * or fails clearly (h2 forced). */
static void test_H3_fallback_and_forced_h2(void) {
  scen s;
  wsctx x[2];
  char url[128];
  int port = sc_start(&s, 1, 0, 1);
  CHECK(port > 0);
  snprintf(url, sizeof url, "wss://127.0.0.1:%d/echo", port);
  sc_one(&s, &x[0], url, H2WS_RT_POLICY_AUTO, 1);
  sc_one(&s, &x[1], url, H2WS_RT_POLICY_H2, 1);
  sc_run(&s);
  int timed_out = s.timed_out;
  sc_end(&s);
  CHECK(!timed_out);
  CHECK(s.opened[0]);
  CHECK_EQ(s.transport[0], H2WS_RT_H1_TLS);
  CHECK_EQ(s.close_code[0], 1000);
  CHECK(strstr(s.notes, "falling back to HTTP/1.1") != NULL);
  CHECK(s.failed[1]);
  CHECK_EQ(s.fail_error[1], H2WS_ERR_H2_NO_EXTENDED_CONNECT);
  CHECK(strcmp(s.fail_msg[1], "server does not support WebSockets over "
                              "HTTP/2 (RFC 8441)") == 0);
}

/* H11: two WebSockets to one origin share one HTTP/2 connection. */
static void test_H11_reuse_one_connection(void) {
  scen s;
  wsctx x[3];
  char url[128];
  int port = sc_start(&s, 1, 1, 1);
  CHECK(port > 0);
  snprintf(url, sizeof url, "wss://127.0.0.1:%d/echo", port);
  for (int i = 0; i < 3; i++) sc_one(&s, &x[i], url, H2WS_RT_POLICY_AUTO, 1);
  sc_run(&s);
  int timed_out = s.timed_out;
  sc_end(&s);
  CHECK(!timed_out);
  for (int i = 0; i < 3; i++) {
    CHECK(s.opened[i]);
    CHECK_EQ(s.transport[i], H2WS_RT_H2_TLS);
    CHECK_EQ(s.close_code[i], 1000);
  }
  /* distinct client streams 1, 3, 5 on the same connection */
  CHECK_EQ(s.stream[0] + s.stream[1] + s.stream[2], 9);
}

static void refuse_case(int tls, const char *scheme, int policy,
                        const char *path, int status) {
  scen s;
  wsctx x;
  char url[128];
  int port = sc_start(&s, tls, 1, 1);
  CHECK(port > 0);
  snprintf(url, sizeof url, "%s://127.0.0.1:%d%s", scheme, port, path);
  sc_one(&s, &x, url, policy, 1);
  sc_run(&s);
  int timed_out = s.timed_out;
  sc_end(&s);
  CHECK(!timed_out);
  CHECK(s.failed[0]);
  CHECK_EQ(s.fail_error[0], H2WS_ERR_HANDSHAKE);
  CHECK_EQ(s.fail_status[0], status);
  char want[64];
  snprintf(want, sizeof want, "handshake refused: HTTP %d", status);
  CHECK(strcmp(s.fail_msg[0], want) == 0);
}

static void test_refused_404_h1(void) {
  refuse_case(0, "ws", H2WS_RT_POLICY_AUTO, "/nope", 404);
}
static void test_refused_404_h2(void) {
  refuse_case(1, "wss", H2WS_RT_POLICY_AUTO, "/nope", 404);
}
static void test_refused_403_by_app_h2c(void) {
  refuse_case(0, "ws", H2WS_RT_POLICY_H2, "/echo?refuse", 403);
}

static void test_connection_refused(void) {
  scen s;
  wsctx x;
  char url[128];
  int port = sc_start(&s, 0, 1, 1);
  CHECK(port > 0);
  /* a port nobody listens on: the server's, after closing it */
  h2ws_server_shutdown(s.srv);
  snprintf(url, sizeof url, "ws://127.0.0.1:%d/echo", port);
  sc_one(&s, &x, url, H2WS_RT_POLICY_AUTO, 1);
  sc_run(&s);
  int timed_out = s.timed_out;
  sc_end(&s);
  CHECK(!timed_out);
  CHECK(s.failed[0]);
  CHECK_EQ(s.fail_error[0], H2WS_ERR_RT_CONNECT_REFUSED);
  /* the message names the address (issue 7.7) */
  char want[64];
  snprintf(want, sizeof want, "cannot connect to 127.0.0.1:%d: connection refused",
           port);
  CHECK(strcmp(s.fail_msg[0], want) == 0);
}

static void test_tls_verify_failure(void) {
  scen s;
  wsctx x;
  char url[128];
  int port = sc_start(&s, 1, 1, 1);
  CHECK(port > 0);
  /* a second client that verifies: the generated certificate is unknown */
  h2ws_client *strict;
  h2ws_client_settings cs;
  h2ws_client_settings_default(&cs);
  CHECK_EQ(h2ws_client_new(&strict, s.rt, &cs), 0);
  snprintf(url, sizeof url, "wss://127.0.0.1:%d/echo", port);
  h2ws_client_ws_options o;
  h2ws_client_ws_options_default(&o);
  o.compress = 0;
  x.s = &s;
  x.i = s.nws++;
  CHECK_EQ(h2ws_client_open(strict, url, &o, &sc_cbs, &x, NULL), 0);
  sc_run(&s);
  int timed_out = s.timed_out;
  h2ws_client_del(strict);
  sc_end(&s);
  CHECK(!timed_out);
  CHECK(s.failed[0]);
  CHECK_EQ(s.fail_error[0], H2WS_ERR_RT_TLS_VERIFY);
  CHECK(strstr(s.fail_msg[0], "certificate verif") != NULL);
}

/* H10: a paused WebSocket stalls only its own stream; another WebSocket on
 * the same HTTP/2 connection keeps flowing; after resume everything
 * arrives. */
#define FC_N 160
#define FC_LEN 65536
typedef struct fc {
  scen *s;
  h2ws_rt_ws *a, *b;
  uv_timer_t t;
  int a_count, b_count, a_paused, b_sent;
  int a_count_at_b, a_paused_at_b;
  int bad_len;
  uint16_t a_code, b_code;
  int closed;
} fc;

static void fc_resume(uv_timer_t *t) {
  fc *f = t->data;
  f->a_paused = 0;
  h2ws_rt_ws_resume(f->a);
}

static void fc_open(h2ws_rt_ws *ws, void *ud) {
  fc *f = ud;
  static uint8_t big[FC_LEN];
  memset(big, 'x', sizeof big);
  if (ws == f->a || !f->a) {
    f->a = ws;
    for (int i = 0; i < FC_N; i++)
      if (h2ws_rt_ws_send(ws, H2WS_OP_BINARY, big, sizeof big) != 0) {
        f->bad_len++;
        break;
      }
  }
}

static int fc_msg(h2ws_rt_ws *ws, h2ws_opcode op, const uint8_t *d, size_t n,
                  void *ud) {
  fc *f = ud;
  (void)op;
  (void)d;
  if (ws == f->a) {
    if (n != FC_LEN) f->bad_len++;
    if (++f->a_count == 1) {
      /* pause A and only then let B talk */
      f->a_paused = 1;
      uv_timer_start(&f->t, fc_resume, 300, 0);
      if (f->b) {
        h2ws_rt_ws_send(f->b, H2WS_OP_TEXT, (const uint8_t *)"b", 1);
        f->b_sent = 1;
      }
      return H2WS_ERR_PAUSE;
    }
    if (f->a_count == FC_N) h2ws_rt_ws_close(ws, 1000, NULL);
    return 0;
  }
  f->b_count++;
  f->a_count_at_b = f->a_count;
  f->a_paused_at_b = f->a_paused;
  h2ws_rt_ws_close(ws, 1000, NULL);
  return 0;
}

static void fc_close(h2ws_rt_ws *ws, uint16_t code, const uint8_t *r,
                     size_t rl, void *ud) {
  fc *f = ud;
  (void)r;
  (void)rl;
  if (ws == f->a) f->a_code = code;
  else f->b_code = code;
  if (++f->closed == (f->b ? 2 : 1)) uv_stop(&f->s->rt->loop);
}

/* Over HTTP/1.1 a paused client stops reading its socket; the echo
 * server's output grows, it stops reading too; after resume all of it
 * flows again (backpressure end to end through TCP). */
static void test_W7_h1_pause_backpressure(void) {
  scen s;
  fc f;
  char url[128];
  memset(&f, 0, sizeof f);
  int port = sc_start(&s, 0, 1, 0);
  CHECK(port > 0);
  f.s = &s;
  uv_timer_init(&s.rt->loop, &f.t);
  f.t.data = &f;
  h2ws_client *cl;
  h2ws_client_settings cs;
  h2ws_client_settings_default(&cs);
  cs.ws.max_output = 16u * 1024 * 1024;
  CHECK_EQ(h2ws_client_new(&cl, s.rt, &cs), 0);
  static const h2ws_rt_ws_callbacks cbs = {
      .on_open = fc_open, .on_message = fc_msg, .on_close = fc_close};
  h2ws_client_ws_options o;
  h2ws_client_ws_options_default(&o);
  o.compress = 0;
  o.policy = H2WS_RT_POLICY_H1;
  snprintf(url, sizeof url, "ws://127.0.0.1:%d/echo", port);
  CHECK_EQ(h2ws_client_open(cl, url, &o, &cbs, &f, &f.a), 0);
  h2ws_rt_run(s.rt);
  int timed_out = s.timed_out;
  uv_close((uv_handle_t *)&f.t, NULL);
  h2ws_client_del(cl);
  sc_end(&s);
  CHECK(!timed_out);
  CHECK_EQ(f.bad_len, 0);
  CHECK_EQ(f.a_count, FC_N);
  CHECK_EQ(f.a_code, 1000);
}

static void test_H10_paused_stream_stalls_alone(void) {
  scen s;
  fc f;
  char url[128];
  memset(&f, 0, sizeof f);
  int port = sc_start(&s, 0, 1, 0);
  CHECK(port > 0);
  f.s = &s;
  uv_timer_init(&s.rt->loop, &f.t);
  f.t.data = &f;
  h2ws_client *cl;
  h2ws_client_settings cs;
  h2ws_client_settings_default(&cs);
  cs.ws.max_output = 16u * 1024 * 1024;
  cs.close_idle = 1;
  CHECK_EQ(h2ws_client_new(&cl, s.rt, &cs), 0);
  static const h2ws_rt_ws_callbacks cbs = {
      .on_open = fc_open, .on_message = fc_msg, .on_close = fc_close};
  h2ws_client_ws_options o;
  h2ws_client_ws_options_default(&o);
  o.compress = 0;
  o.policy = H2WS_RT_POLICY_H2;
  snprintf(url, sizeof url, "ws://127.0.0.1:%d/echo", port);
  CHECK_EQ(h2ws_client_open(cl, url, &o, &cbs, &f, &f.a), 0);
  CHECK_EQ(h2ws_client_open(cl, url, &o, &cbs, &f, &f.b), 0);
  h2ws_rt_run(s.rt);
  int timed_out = s.timed_out;
  uv_close((uv_handle_t *)&f.t, NULL);
  h2ws_client_del(cl);
  sc_end(&s);
  CHECK(!timed_out);
  CHECK_EQ(f.bad_len, 0);
  CHECK_EQ(f.b_count, 1);
  CHECK_EQ(f.a_count_at_b, 1); /* B's echo came while A was paused */
  CHECK_EQ(f.a_paused_at_b, 1);
  CHECK_EQ(f.a_count, FC_N);   /* after resume, everything arrived */
  CHECK_EQ(f.a_code, 1000);
  CHECK_EQ(f.b_code, 1000);
}

/* 1006 when the transport ends without a Close: the client goes away
 * (its connection is closed under it) and the server's application sees
 * on_close(1006), on HTTP/1.1 (FIN) and on HTTP/2 (connection EOF). */
typedef struct ab {
  scen *s;
  uv_timer_t t;
  uint16_t client_code, server_code;
  int client_closed, server_closed;
} ab;

static ab *ab_cur;

static void ab_srv_close(h2ws_rt_ws *ws, uint16_t code, const uint8_t *r,
                         size_t rl, void *ud) {
  (void)ws;
  (void)r;
  (void)rl;
  (void)ud;
  ab_cur->server_code = code;
  ab_cur->server_closed = 1;
  uv_stop(&ab_cur->s->rt->loop);
}

static void ab_srv_request(h2ws_rt_ws_request *req, void *ud) {
  static const h2ws_rt_ws_callbacks cbs = {.on_message = rt_echo,
                                           .on_close = ab_srv_close};
  h2ws_rt_accept a = {.callbacks = &cbs, .user_data = ud};
  h2ws_rt_ws_accept(req, &a, NULL);
}

static void ab_kill(uv_timer_t *t) {
  ab *a = t->data;
  h2ws_client_del(a->s->cl); /* closes the client's connections */
  a->s->cl = NULL;
}

static void ab_open(h2ws_rt_ws *ws, void *ud) {
  ab *a = ud;
  (void)ws;
  uv_timer_start(&a->t, ab_kill, 20, 0);
}

static void ab_close(h2ws_rt_ws *ws, uint16_t code, const uint8_t *r,
                     size_t rl, void *ud) {
  ab *a = ud;
  (void)ws;
  (void)r;
  (void)rl;
  a->client_code = code;
  a->client_closed = 1;
}

static void abort_case(int policy) {
  scen s;
  ab a;
  char url[128];
  memset(&a, 0, sizeof a);
  int port = sc_start(&s, 0, 1, 1);
  CHECK(port > 0);
  h2ws_rt_ws_handler h = {.on_request = ab_srv_request};
  CHECK_EQ(h2ws_server_route_ws(s.srv, "/abort", &h, NULL), 0);
  a.s = &s;
  ab_cur = &a;
  uv_timer_init(&s.rt->loop, &a.t);
  a.t.data = &a;
  static const h2ws_rt_ws_callbacks cbs = {.on_open = ab_open,
                                           .on_close = ab_close};
  h2ws_client_ws_options o;
  h2ws_client_ws_options_default(&o);
  o.compress = 0;
  o.policy = policy;
  snprintf(url, sizeof url, "ws://127.0.0.1:%d/abort", port);
  CHECK_EQ(h2ws_client_open(s.cl, url, &o, &cbs, &a, NULL), 0);
  h2ws_rt_run(s.rt);
  int timed_out = s.timed_out;
  uv_close((uv_handle_t *)&a.t, NULL);
  sc_end(&s);
  CHECK(!timed_out);
  CHECK(a.client_closed);
  CHECK_EQ(a.client_code, 1006);
  CHECK(a.server_closed);
  CHECK_EQ(a.server_code, 1006);
}

static void test_W6_h1_eof_without_close_1006(void) {
  abort_case(H2WS_RT_POLICY_H1);
}
static void test_H9_h2c_eof_without_close_1006(void) {
  abort_case(H2WS_RT_POLICY_H2);
}

/* A client that sends half a request head is disconnected after the
 * handshake budget (no slowloris). */
typedef struct slow {
  uv_tcp_t tcp;
  uv_connect_t creq;
  uv_write_t wreq;
  uint64_t t0, t_eof;
  int eof;
  char buf[256];
} slow;

static void slow_alloc(uv_handle_t *h, size_t n, uv_buf_t *b) {
  slow *x = h->data;
  (void)n;
  b->base = x->buf;
  b->len = sizeof x->buf;
}

static void slow_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  slow *x = st->data;
  (void)b;
  if (n < 0) {
    x->eof = 1;
    x->t_eof = uv_now(st->loop);
    uv_close((uv_handle_t *)st, NULL);
    uv_stop(st->loop);
  }
}

static void slow_connected(uv_connect_t *r, int status) {
  slow *x = r->data;
  static char head[] = "GET / HTTP/1.1\r\nHost: x\r\n"; /* no end */
  if (status < 0) {
    uv_stop(r->handle->loop);
    return;
  }
  uv_buf_t b = uv_buf_init(head, sizeof head - 1);
  uv_write(&x->wreq, (uv_stream_t *)&x->tcp, &b, 1, NULL);
  uv_read_start((uv_stream_t *)&x->tcp, slow_alloc, slow_read);
}

static void test_slow_head_disconnected(void) {
  h2ws_rt *rt;
  h2ws_server *srv;
  slow x;
  memset(&x, 0, sizeof x);
  CHECK_EQ(h2ws_rt_new(&rt, NULL), 0);
  h2ws_server_settings st;
  h2ws_server_settings_default(&st);
  st.handle_signals = 0;
  st.handshake_timeout_ms = 200;
  CHECK_EQ(h2ws_server_new(&srv, rt, &st), 0);
  int port = 0;
  CHECK_EQ(h2ws_server_listen(srv, "127.0.0.1:0", 0, &port), 0);
  uv_loop_t *loop = h2ws_rt_uv_loop(rt);
  struct sockaddr_in sa;
  uv_ip4_addr("127.0.0.1", port, &sa);
  uv_tcp_init(loop, &x.tcp);
  x.tcp.data = &x;
  x.creq.data = &x;
  x.t0 = uv_now(loop);
  uv_tcp_connect(&x.creq, &x.tcp, (const struct sockaddr *)&sa,
                 slow_connected);
  h2ws_rt_run(rt);
  h2ws_server_del(srv);
  h2ws_rt_del(rt);
  CHECK(x.eof);
  CHECK(x.t_eof - x.t0 >= 150 && x.t_eof - x.t0 < 5000);
}

/* Batching: 100 messages submitted in one callback leave as one
 * SSL_write and one uv_write (not one per message / frame). */
typedef struct bt {
  scen *s;
  uint64_t w0, t0, w1, t1;
  int got;
} bt;

/* The client's one live connection. */
static rt_conn *bt_client_conn(h2ws_rt *rt) {
  for (rt_conn *c = rt->conns; c; c = c->all_next)
    if (c->is_client && c->state != RT_CONN_CLOSING) return c;
  return NULL;
}

static void bt_open(h2ws_rt_ws *ws, void *ud) {
  bt *b = ud;
  rt_conn *c = bt_client_conn(b->s->rt);
  b->w0 = c->nwrites;
  b->t0 = c->nfilter_writes;
  for (int i = 0; i < 100; i++)
    h2ws_rt_ws_send(ws, H2WS_OP_TEXT, (const uint8_t *)"0123456789", 10);
}

static int bt_msg(h2ws_rt_ws *ws, h2ws_opcode op, const uint8_t *d, size_t n,
                  void *ud) {
  bt *b = ud;
  (void)op;
  (void)d;
  (void)n;
  if (b->got++ == 0) {
    rt_conn *c = bt_client_conn(b->s->rt);
    b->w1 = c->nwrites;
    b->t1 = c->nfilter_writes;
  }
  if (b->got == 100) h2ws_rt_ws_close(ws, 1000, NULL);
  return 0;
}

static void bt_close(h2ws_rt_ws *ws, uint16_t code, const uint8_t *r,
                     size_t rl, void *ud) {
  bt *b = ud;
  (void)ws;
  (void)code;
  (void)r;
  (void)rl;
  uv_stop(&b->s->rt->loop);
}

static void batch_case(int tls, int policy) {
  scen s;
  bt b;
  char url[128];
  memset(&b, 0, sizeof b);
  int port = sc_start(&s, tls, 1, 0);
  CHECK(port > 0);
  b.s = &s;
  static const h2ws_rt_ws_callbacks cbs = {
      .on_open = bt_open, .on_message = bt_msg, .on_close = bt_close};
  h2ws_client_ws_options o;
  h2ws_client_ws_options_default(&o);
  o.compress = 0;
  o.policy = policy;
  snprintf(url, sizeof url, "%s://127.0.0.1:%d/echo", tls ? "wss" : "ws",
           port);
  CHECK_EQ(h2ws_client_open(s.cl, url, &o, &cbs, &b, NULL), 0);
  h2ws_rt_run(s.rt);
  int timed_out = s.timed_out;
  sc_end(&s);
  CHECK(!timed_out);
  CHECK_EQ(b.got, 100);
  /* the 100 frames went out in one write (the first echo may only come
   * after the server saw them, so nothing else was written between) */
  CHECK_EQ(b.w1 - b.w0, 1);
  if (tls) CHECK_EQ(b.t1 - b.t0, 1);
}

static void test_batch_h2_tls(void) { batch_case(1, H2WS_RT_POLICY_AUTO); }
static void test_batch_h1_cleartext(void) {
  batch_case(0, H2WS_RT_POLICY_H1);
}
static void test_batch_h2c(void) { batch_case(0, H2WS_RT_POLICY_H2); }

/* H11/H12: more WebSockets than one HTTP/2 connection may carry (100
 * per session by default): the extra ones go to a new connection. */
#define MANY 105
typedef struct many {
  scen *s;
  int opened, echoed, closed, failed, notes_new_conn;
  int32_t max_stream;
} many;

static void many_open(h2ws_rt_ws *ws, void *ud) {
  many *m = ud;
  m->opened++;
  if (h2ws_rt_ws_stream_id(ws) > m->max_stream)
    m->max_stream = h2ws_rt_ws_stream_id(ws);
  h2ws_rt_ws_send(ws, H2WS_OP_TEXT, (const uint8_t *)"m", 1);
}

static int many_msg(h2ws_rt_ws *ws, h2ws_opcode op, const uint8_t *d,
                    size_t n, void *ud) {
  many *m = ud;
  (void)op;
  (void)d;
  (void)n;
  m->echoed++;
  h2ws_rt_ws_close(ws, 1000, NULL);
  return 0;
}

static void many_end(many *m) {
  if (m->closed + m->failed == MANY) uv_stop(&m->s->rt->loop);
}

static void many_close(h2ws_rt_ws *ws, uint16_t code, const uint8_t *r,
                       size_t rl, void *ud) {
  many *m = ud;
  (void)ws;
  (void)r;
  (void)rl;
  if (code == 1000) m->closed++;
  else m->failed++;
  many_end(m);
}

static void many_fail(h2ws_rt_ws *ws, int error, int status, const char *msg,
                      void *ud) {
  many *m = ud;
  (void)ws;
  (void)error;
  (void)status;
  (void)msg;
  m->failed++;
  many_end(m);
}

static void many_note(h2ws_rt_ws *ws, const char *msg, void *ud) {
  many *m = ud;
  (void)ws;
  if (strstr(msg, "opening a new connection")) m->notes_new_conn++;
}

static void test_H12_streams_beyond_limit_new_connection(void) {
  scen s;
  many m;
  char url[128];
  memset(&m, 0, sizeof m);
  int port = sc_start(&s, 1, 1, 0);
  CHECK(port > 0);
  m.s = &s;
  static const h2ws_rt_ws_callbacks cbs = {
      .on_open = many_open, .on_message = many_msg, .on_close = many_close,
      .on_fail = many_fail, .on_note = many_note};
  snprintf(url, sizeof url, "wss://127.0.0.1:%d/echo", port);
  for (int i = 0; i < MANY; i++)
    CHECK_EQ(h2ws_client_open(s.cl, url, NULL, &cbs, &m, NULL), 0);
  h2ws_rt_run(s.rt);
  int timed_out = s.timed_out;
  sc_end(&s);
  CHECK(!timed_out);
  CHECK_EQ(m.failed, 0);
  CHECK_EQ(m.opened, MANY);
  CHECK_EQ(m.echoed, MANY);
  CHECK_EQ(m.closed, MANY);
  CHECK(m.notes_new_conn >= 1);
  CHECK(m.max_stream <= 199); /* at most 100 streams on one connection */
}

/* W9: the Origin reaches the application on every transport. */
static void origin_case(int tls, const char *scheme, int policy,
                        const char *origin, int want_ok) {
  scen s;
  wsctx x;
  char url[128];
  int port = sc_start(&s, tls, 1, 1);
  CHECK(port > 0);
  snprintf(url, sizeof url, "%s://127.0.0.1:%d/echo?origin", scheme, port);
  h2ws_client_ws_options o;
  h2ws_client_ws_options_default(&o);
  o.compress = 0;
  o.policy = policy;
  o.origin = origin;
  x.s = &s;
  x.i = s.nws++;
  CHECK_EQ(h2ws_client_open(s.cl, url, &o, &sc_cbs, &x, NULL), 0);
  sc_run(&s);
  int timed_out = s.timed_out;
  sc_end(&s);
  CHECK(!timed_out);
  if (want_ok) {
    CHECK(s.opened[0]);
    CHECK_EQ(s.close_code[0], 1000);
  } else {
    CHECK(s.failed[0]);
    CHECK_EQ(s.fail_status[0], 403);
  }
}

static void test_W9_origin_h2(void) {
  origin_case(1, "wss", H2WS_RT_POLICY_AUTO, "https://app.example", 1);
  origin_case(1, "wss", H2WS_RT_POLICY_AUTO, "https://evil.example", 0);
  origin_case(1, "wss", H2WS_RT_POLICY_AUTO, NULL, 0);
}

static void test_W9_origin_h1(void) {
  origin_case(0, "ws", H2WS_RT_POLICY_H1, "https://app.example", 1);
  origin_case(0, "ws", H2WS_RT_POLICY_H1, "https://evil.example", 0);
}

/* Pitfall 17: a connection with an open WebSocket is not idle; one
 * without is shut down after the idle timeout, and the client's next
 * WebSocket to that origin goes to a new connection (H12). */
typedef struct idl {
  scen *s;
  uv_timer_t t;
  int step;
  int echoed, closed, failed;
  int32_t stream2;
  h2ws_rt_ws *ws;
  int clients_after_idle;
} idl;

static const h2ws_rt_ws_callbacks idl_cbs;

static int idl_count_client_conns(h2ws_rt *rt) {
  int n = 0;
  for (rt_conn *c = rt->conns; c; c = c->all_next)
    if (c->is_client && c->state != RT_CONN_CLOSING) n++;
  return n;
}

static void idl_tick(uv_timer_t *t) {
  idl *d = t->data;
  char url[128];
  if (d->step == 0) { /* 500 ms of silence with the WebSocket open */
    d->step = 1;
    h2ws_rt_ws_send(d->ws, H2WS_OP_TEXT, (const uint8_t *)"still", 5);
  } else if (d->step == 2) { /* 500 ms after the WebSocket ended */
    d->clients_after_idle = idl_count_client_conns(d->s->rt);
    d->step = 3;
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/echo", d->s->nws);
    h2ws_client_ws_options o;
    h2ws_client_ws_options_default(&o);
    o.compress = 0;
    o.policy = H2WS_RT_POLICY_H2;
    h2ws_client_open(d->s->cl, url, &o, &idl_cbs, d, &d->ws);
  }
}

static void idl_open(h2ws_rt_ws *ws, void *ud) {
  idl *d = ud;
  d->ws = ws;
  if (d->step == 0) {
    uv_timer_start(&d->t, idl_tick, 500, 0);
  } else {
    d->stream2 = h2ws_rt_ws_stream_id(ws);
    h2ws_rt_ws_send(ws, H2WS_OP_TEXT, (const uint8_t *)"again", 5);
  }
}

static int idl_msg(h2ws_rt_ws *ws, h2ws_opcode op, const uint8_t *p,
                   size_t n, void *ud) {
  idl *d = ud;
  (void)op;
  (void)p;
  (void)n;
  d->echoed++;
  h2ws_rt_ws_close(ws, 1000, NULL);
  return 0;
}

static void idl_close(h2ws_rt_ws *ws, uint16_t code, const uint8_t *r,
                      size_t rl, void *ud) {
  idl *d = ud;
  (void)ws;
  (void)r;
  (void)rl;
  if (code == 1000) d->closed++;
  if (d->step == 1) {
    d->step = 2;
    uv_timer_start(&d->t, idl_tick, 500, 0);
  } else if (d->step == 3) {
    uv_stop(&d->s->rt->loop);
  }
}

static void idl_fail(h2ws_rt_ws *ws, int error, int status, const char *m,
                     void *ud) {
  idl *d = ud;
  (void)ws;
  (void)error;
  (void)status;
  (void)m;
  d->failed++;
  uv_stop(&d->s->rt->loop);
}

static const h2ws_rt_ws_callbacks idl_cbs = {
    .on_open = idl_open, .on_message = idl_msg, .on_close = idl_close,
    .on_fail = idl_fail};

static void test_pitfall17_idle_timeout_spares_websockets(void) {
  scen s;
  idl d;
  char url[128];
  memset(&d, 0, sizeof d);
  memset(&s, 0, sizeof s);
  CHECK_EQ(h2ws_rt_new(&s.rt, NULL), 0);
  h2ws_server_settings st;
  h2ws_server_settings_default(&st);
  st.handle_signals = 0;
  st.idle_timeout_ms = 200;
  CHECK_EQ(h2ws_server_new(&s.srv, s.rt, &st), 0);
  h2ws_rt_ws_handler h = {.on_request = rt_on_ws_request};
  CHECK_EQ(h2ws_server_route_ws(s.srv, "/echo", &h, NULL), 0);
  int port = 0;
  CHECK_EQ(h2ws_server_listen(s.srv, "127.0.0.1:0", 0, &port), 0);
  s.nws = port; /* idl_tick builds the second URL from it */
  h2ws_client_settings cs;
  h2ws_client_settings_default(&cs); /* close_idle 0: pooled */
  CHECK_EQ(h2ws_client_new(&s.cl, s.rt, &cs), 0);
  uv_timer_init(&s.rt->loop, &s.guard);
  s.guard.data = &s;
  uv_timer_start(&s.guard, sc_guard, 10000, 0);
  uv_unref((uv_handle_t *)&s.guard);
  d.s = &s;
  uv_timer_init(&s.rt->loop, &d.t);
  d.t.data = &d;
  h2ws_client_ws_options o;
  h2ws_client_ws_options_default(&o);
  o.compress = 0;
  o.policy = H2WS_RT_POLICY_H2;
  snprintf(url, sizeof url, "ws://127.0.0.1:%d/echo", port);
  CHECK_EQ(h2ws_client_open(s.cl, url, &o, &idl_cbs, &d, &d.ws), 0);
  h2ws_rt_run(s.rt);
  int timed_out = s.timed_out;
  uv_close((uv_handle_t *)&d.t, NULL);
  sc_end(&s);
  CHECK(!timed_out);
  CHECK_EQ(d.failed, 0);
  CHECK_EQ(d.echoed, 2);     /* the first echo came after 500 ms idle */
  CHECK_EQ(d.closed, 2);
  CHECK_EQ(d.clients_after_idle, 0); /* GOAWAY'd and closed */
  CHECK_EQ(d.stream2, 1);    /* a new connection */
}

/* ---- PREFER_H2 and the pool's idle connections -------------------------- */

/* WebSockets opened one after the other (the next gap_ms after the
 * previous one ended), each sending one message and closing on its echo. */
typedef struct seq {
  scen s;
  int n, i, policy;
  char url[128];
  uint64_t gap_ms, last_end, gone_at;
  uv_timer_t t;
  h2ws_rt_transport tr[4];
  int ok[4], fail_error[4];
  char fail_msg[4][256];
  char notes[2048];
} seq;

static void seq_next(seq *q);

static void seq_tick(uv_timer_t *t) { seq_next(t->data); }

static void seq_ended(seq *q) {
  q->last_end = uv_now(&q->s.rt->loop);
  if (++q->i < q->n) uv_timer_start(&q->t, seq_tick, q->gap_ms, 0);
}

static void seq_open(h2ws_rt_ws *ws, void *ud) {
  seq *q = ud;
  q->tr[q->i] = h2ws_rt_ws_transport(ws);
  h2ws_rt_ws_send(ws, H2WS_OP_TEXT, (const uint8_t *)"x", 1);
}

static int seq_msg(h2ws_rt_ws *ws, h2ws_opcode op, const uint8_t *d,
                   size_t n, void *ud) {
  (void)op;
  (void)d;
  (void)n;
  (void)ud;
  h2ws_rt_ws_close(ws, 1000, NULL);
  return 0;
}

static void seq_close(h2ws_rt_ws *ws, uint16_t code, const uint8_t *r,
                      size_t rl, void *ud) {
  seq *q = ud;
  (void)ws;
  (void)r;
  (void)rl;
  q->ok[q->i] = code == 1000;
  seq_ended(q);
}

static void seq_fail(h2ws_rt_ws *ws, int error, int status, const char *m,
                     void *ud) {
  seq *q = ud;
  (void)ws;
  (void)status;
  q->fail_error[q->i] = error;
  snprintf(q->fail_msg[q->i], sizeof q->fail_msg[q->i], "%s", m);
  seq_ended(q);
}

static void seq_note(h2ws_rt_ws *ws, const char *m, void *ud) {
  seq *q = ud;
  (void)ws;
  size_t l = strlen(q->notes);
  snprintf(q->notes + l, sizeof q->notes - l, "%s\n", m);
}

static const h2ws_rt_ws_callbacks seq_cbs = {
    .on_open = seq_open, .on_message = seq_msg, .on_close = seq_close,
    .on_fail = seq_fail, .on_note = seq_note};

static void seq_next(seq *q) {
  h2ws_client_ws_options o;
  h2ws_client_ws_options_default(&o);
  o.policy = q->policy;
  o.compress = 0;
  CHECK_EQ(h2ws_client_open(q->s.cl, q->url, &o, &seq_cbs, q, NULL), 0);
}

static uint64_t seq_server_conns(seq *q, int open) {
  h2ws_server_stats st;
  h2ws_server_get_stats(q->s.srv, &st);
  return open ? st.connections_open : st.connections_total;
}

/* A cleartext server (h2: HTTP/2 at all; h2_ws: RFC 8441), a client with
 * close_idle and idle_ms, n WebSockets gap_ms apart; runs until the
 * client's last connection is gone (the server sees none open; close_now:
 * h2ws_client_close_idle() once the last WebSocket ended), then ends
 * everything.  q->gone_at: when that was. */
static void seq_run(seq *q, int h2, int h2_ws, int policy, int n,
                    uint64_t gap_ms, uint64_t idle_ms, int close_now) {
  scen *s = &q->s;
  memset(q, 0, sizeof *q);
  CHECK_EQ(h2ws_rt_new(&s->rt, NULL), 0);
  h2ws_server_settings st;
  h2ws_server_settings_default(&st);
  st.handle_signals = 0;
  st.h2 = h2;
  st.h2_websockets = h2_ws;
  CHECK_EQ(h2ws_server_new(&s->srv, s->rt, &st), 0);
  h2ws_rt_ws_handler h = {.on_request = rt_on_ws_request};
  CHECK_EQ(h2ws_server_route_ws(s->srv, "/echo", &h, NULL), 0);
  int port = 0;
  CHECK_EQ(h2ws_server_listen(s->srv, "127.0.0.1:0", 0, &port), 0);
  h2ws_client_settings cs;
  h2ws_client_settings_default(&cs);
  cs.close_idle = 1;
  cs.idle_timeout_ms = idle_ms;
  CHECK_EQ(h2ws_client_new(&s->cl, s->rt, &cs), 0);
  uv_timer_init(&s->rt->loop, &s->guard);
  s->guard.data = s;
  uv_timer_start(&s->guard, sc_guard, 8000, 0);
  uv_unref((uv_handle_t *)&s->guard);
  uv_timer_init(&s->rt->loop, &q->t);
  q->t.data = q;
  q->n = n;
  q->policy = policy;
  q->gap_ms = gap_ms;
  snprintf(q->url, sizeof q->url, "ws://127.0.0.1:%d/echo", port);
  seq_next(q);
  int asked = 0;
  while (!s->timed_out) {
    if (q->i >= q->n) {
      if (close_now && !asked++) h2ws_client_close_idle(s->cl);
      if (seq_server_conns(q, 1) == 0) break;
    }
    uv_run(&s->rt->loop, UV_RUN_ONCE);
  }
  q->gone_at = uv_now(&s->rt->loop);
  uv_close((uv_handle_t *)&q->t, NULL);
}

static void seq_end(seq *q) { sc_end(&q->s); }

/* PREFER_H2 on ws://: prior knowledge, RFC 8441 on h2c. */
static void test_prefer_h2_h2c(void) {
  seq q;
  seq_run(&q, 1, 1, H2WS_RT_POLICY_PREFER_H2, 1, 0, 0, 0);
  CHECK(!q.s.timed_out);
  CHECK(q.ok[0]);
  CHECK_EQ(q.tr[0], H2WS_RT_H2C);
  CHECK_EQ(seq_server_conns(&q, 0), 1);
  seq_end(&q);
}

/* PREFER_H2 on ws:// to an HTTP/1.1-only server: the prior-knowledge
 * connection ends without SETTINGS, the WebSocket goes over HTTP/1.1 on a
 * new connection, and the next one goes there at once (3 connections
 * for 2 WebSockets, not 4). */
static void test_prefer_h2_h1_only_server(void) {
  seq q;
  seq_run(&q, 0, 0, H2WS_RT_POLICY_PREFER_H2, 2, 0, 0, 0);
  CHECK(!q.s.timed_out);
  CHECK(q.ok[0] && q.ok[1]);
  CHECK_EQ(q.tr[0], H2WS_RT_H1);
  CHECK_EQ(q.tr[1], H2WS_RT_H1);
  CHECK(strstr(q.notes, "does not speak HTTP/2") != NULL);
  CHECK(strstr(q.notes, "moments ago: using HTTP/1.1") != NULL);
  CHECK_EQ(seq_server_conns(&q, 0), 3);
  seq_end(&q);
}

/* PREFER_H2 to an h2c server without RFC 8441: HTTP/1.1, remembered. */
static void test_prefer_h2_no_8441(void) {
  seq q;
  seq_run(&q, 1, 0, H2WS_RT_POLICY_PREFER_H2, 2, 0, 0, 0);
  CHECK(!q.s.timed_out);
  CHECK(q.ok[0] && q.ok[1]);
  CHECK_EQ(q.tr[0], H2WS_RT_H1);
  CHECK_EQ(q.tr[1], H2WS_RT_H1);
  CHECK(strstr(q.notes, "SETTINGS_ENABLE_CONNECT_PROTOCOL") != NULL);
  CHECK_EQ(seq_server_conns(&q, 0), 3);
  seq_end(&q);
}

/* Policy H2 on ws:// to an HTTP/1.1-only server: a clear failure. */
static void test_h2_to_h1_only_server_fails(void) {
  seq q;
  seq_run(&q, 0, 0, H2WS_RT_POLICY_H2, 1, 0, 0, 0);
  CHECK(!q.s.timed_out);
  CHECK(!q.ok[0]);
  CHECK_EQ(q.fail_error[0], H2WS_ERR_RT_NOT_H2);
  CHECK(strstr(q.fail_msg[0], "server does not speak HTTP/2: no SETTINGS "
                              "in answer to the prior-knowledge preface") ==
        q.fail_msg[0]);
  CHECK_EQ(seq_server_conns(&q, 0), 1);
  seq_end(&q);
}

/* idle_timeout_ms: a WebSocket 100 ms after the last one reuses the idle
 * connection; it goes idle_ms after the last WebSocket ended. */
static void test_idle_connection_reused_then_closed(void) {
  seq q;
  seq_run(&q, 1, 1, H2WS_RT_POLICY_H2, 3, 100, 400, 0);
  CHECK(!q.s.timed_out);
  CHECK(q.ok[0] && q.ok[1] && q.ok[2]);
  CHECK_EQ(seq_server_conns(&q, 0), 1);
  CHECK(q.gone_at >= q.last_end + 350);
  CHECK(q.gone_at < q.last_end + 1500);
  seq_end(&q);
  /* gaps longer than idle_ms: a connection each */
  seq_run(&q, 1, 1, H2WS_RT_POLICY_H2, 2, 300, 50, 0);
  CHECK(!q.s.timed_out);
  CHECK(q.ok[0] && q.ok[1]);
  CHECK_EQ(seq_server_conns(&q, 0), 2);
  seq_end(&q);
}

/* h2ws_client_close_idle(): an idle connection kept for a minute goes at
 * once (a gateway's graceful stop). */
static void test_close_idle_now(void) {
  seq q;
  seq_run(&q, 1, 1, H2WS_RT_POLICY_H2, 1, 0, 60000, 1);
  CHECK(!q.s.timed_out);
  CHECK(q.ok[0]);
  CHECK(q.gone_at < q.last_end + 1000);
  seq_end(&q);
}

static void test_bad_urls(void) {
  h2ws_rt *rt;
  h2ws_client *cl;
  CHECK_EQ(h2ws_rt_new(&rt, NULL), 0);
  CHECK_EQ(h2ws_client_new(&cl, rt, NULL), 0);
  static const char *bad[] = {"http://x/", "ws://", "ws://h:0/", "ws://h:99999/",
                              "ws://u@h/", "ws://[::1/", "ws://h/a b"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    CHECK_EQ(h2ws_client_open(cl, bad[i], NULL, &sc_cbs, NULL, NULL),
             H2WS_ERR_INVALID_ARGUMENT);
  h2ws_client_del(cl);
  h2ws_rt_del(rt);
}

/* RFC 6455 §5.3: a client's masking keys must be unpredictable.  The
 * runtime draws them from a keystream (h2ws__rt_mask_key): keys drawn 4
 * bytes at a time across several refills of its 3 KiB pool look random
 * (no 64-byte run repeats, every byte value appears), two runtimes draw
 * different keys, and a forked child does not repeat its parent's. */
static void test_mask_keys_differ(void) {
  h2ws_rt *rt = NULL, *rt2 = NULL;
  CHECK_EQ(h2ws_rt_new(&rt, NULL), 0);
  CHECK_EQ(h2ws_rt_new(&rt2, NULL), 0);
  if (!rt || !rt2) return;
  enum { N = 4 * 3072 + 1024 };
  static uint8_t keys[N];
  for (size_t i = 0; i < N; i += 4) CHECK_EQ(h2ws__rt_mask_key(rt, keys + i, 4), 0);
  int repeats = 0; /* a 64-byte run of masking keys seen twice */
  for (size_t a = 0; a + 64 <= N; a += 64)
    for (size_t b = a + 64; b + 64 <= N; b += 64)
      repeats += memcmp(keys + a, keys + b, 64) == 0;
  CHECK_EQ(repeats, 0);
  int seen[256] = {0}, distinct = 0;
  for (size_t i = 0; i < N; i++) distinct += !seen[keys[i]]++;
  CHECK_EQ(distinct, 256); /* missing one by chance: p < 1e-18 */
  uint8_t other[64];
  for (size_t i = 0; i < sizeof other; i += 4) CHECK_EQ(h2ws__rt_mask_key(rt2, other + i, 4), 0);
  CHECK(memcmp(other, keys, sizeof other) != 0 && memcmp(other, keys + N - 64, 64) != 0);
  /* a child forked with keys left in the pool must not hand them out too */
  int fd[2];
  CHECK_EQ(pipe(fd), 0);
  pid_t pid = fork();
  if (pid == 0) {
    uint8_t k[64];
    int ok = 1;
    for (size_t i = 0; i < sizeof k; i += 4) ok &= h2ws__rt_mask_key(rt, k + i, 4) == 0;
    ssize_t w = ok ? write(fd[1], k, sizeof k) : -1;
    _exit(w == (ssize_t)sizeof k ? 0 : 1);
  }
  CHECK(pid > 0);
  close(fd[1]);
  uint8_t mine[64], child[64];
  for (size_t i = 0; i < sizeof mine; i += 4) CHECK_EQ(h2ws__rt_mask_key(rt, mine + i, 4), 0);
  size_t got = 0;
  while (got < sizeof child) {
    ssize_t r = read(fd[0], child + got, sizeof child - got);
    if (r <= 0) break;
    got += (size_t)r;
  }
  close(fd[0]);
  int status = -1;
  CHECK_EQ(waitpid(pid, &status, 0), pid);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  CHECK_EQ(got, sizeof child);
  CHECK(memcmp(mine, child, sizeof mine) != 0);
  h2ws_rt_del(rt);
  h2ws_rt_del(rt2);
}

int main(void) {
  static const tu_case cases[] = {
      {"parse_hostport", test_parse_hostport},
      {"W_mask_keys_differ", test_mask_keys_differ},
      {"cert_generated", test_cert_generated},
      {"bad_urls", test_bad_urls},
      {"prefer_h2_h2c", test_prefer_h2_h2c},
      {"prefer_h2_h1_only_server", test_prefer_h2_h1_only_server},
      {"prefer_h2_no_8441", test_prefer_h2_no_8441},
      {"h2_to_h1_only_server_fails", test_h2_to_h1_only_server_fails},
      {"idle_connection_reused_then_closed",
       test_idle_connection_reused_then_closed},
      {"close_idle_now", test_close_idle_now},
      {"W9_origin_h2", test_W9_origin_h2},
      {"W9_origin_h1", test_W9_origin_h1},
      {"pitfall17_idle_timeout_spares_websockets",
       test_pitfall17_idle_timeout_spares_websockets},
      {"H12_streams_beyond_limit_new_connection",
       test_H12_streams_beyond_limit_new_connection},
      {"batch_h2_tls", test_batch_h2_tls},
      {"batch_h1_cleartext", test_batch_h1_cleartext},
      {"batch_h2c", test_batch_h2c},
      {"slow_head_disconnected", test_slow_head_disconnected},
      {"W8_echo_h1_cleartext", test_echo_h1_cleartext},
      {"D3_echo_h1_cleartext_pmd", test_echo_h1_cleartext_pmd},
      {"H4_echo_h2c_prior_knowledge", test_echo_h2c_prior_knowledge},
      {"D3_echo_h2c_pmd_large", test_echo_h2c_pmd_large},
      {"H1_echo_tls_alpn_h2", test_echo_tls_alpn_h2},
      {"W8_echo_tls_h1", test_echo_tls_h1},
      {"H3_fallback_and_forced_h2", test_H3_fallback_and_forced_h2},
      {"H11_reuse_one_connection", test_H11_reuse_one_connection},
      {"H7_refused_404_h1", test_refused_404_h1},
      {"H7_refused_404_h2", test_refused_404_h2},
      {"H7_refused_403_by_app_h2c", test_refused_403_by_app_h2c},
      {"connection_refused", test_connection_refused},
      {"tls_verify_failure", test_tls_verify_failure},
      {"H10_paused_stream_stalls_alone", test_H10_paused_stream_stalls_alone},
      {"W7_h1_pause_backpressure", test_W7_h1_pause_backpressure},
      {"W6_h1_eof_without_close_1006", test_W6_h1_eof_without_close_1006},
      {"H9_h2c_eof_without_close_1006", test_H9_h2c_eof_without_close_1006},
  };
  return TU_RUN(cases);
}
