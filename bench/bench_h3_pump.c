/* bench/bench_h3_pump.c - the HTTP/3 binding in the in-memory QUIC pump
 * (tests/unit/h3test.h), both sessions on one core: full handshakes
 * (QUIC + TLS 1.3 with ECDSA P-256 + HTTP/3 SETTINGS + one extended
 * CONNECT) per second, and WebSocket echo throughput (64 KiB binary
 * messages, client -> server -> client) in payload MB/s one way. The
 * simulated network adds no wall-clock time: this is CPU cost. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "h3test.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static h2ws_ws *cws;
static size_t got;

static int s_msg(h2ws_ws *ws, h2ws_opcode op, const uint8_t *d, size_t n, void *ud) {
  (void)ud;
  h2ws_ws_submit_msg(ws, op, d, n);
  return 0;
}
static int c_msg(h2ws_ws *ws, h2ws_opcode op, const uint8_t *d, size_t n, void *ud) {
  (void)ws; (void)op; (void)d; (void)n; (void)ud;
  got++;
  return 0;
}
static int on_ws_request(h2ws_h3_session *s, int64_t id, const h2ws_ws_request *r,
                         const h2ws_h3_request *h, void *ud) {
  (void)r; (void)h; (void)ud;
  static h2ws_ws_callbacks cb;
  cb.on_msg = s_msg;
  h2ws_ws_settings w;
  h2ws_ws_settings_default(&w);
  w.whole_messages = 1;
  h2ws_h3_accept_options o;
  h2ws_h3_accept_options_default(&o);
  o.callbacks = &cb;
  o.settings = &w;
  return h2ws_h3_accept_ws(s, id, &o, NULL);
}
static int on_open(h2ws_h3_session *s, int64_t id, h2ws_ws *ws, const char *sub,
                   void *rud, void *ud) {
  (void)s; (void)id; (void)sub; (void)rud; (void)ud;
  cws = ws;
  return 0;
}
static int rnd(uint8_t *b, size_t n, void *ud) { return h3t_random(b, n, ud); }
static int is_open(h3t_pump *p, void *a) { (void)p; (void)a; return cws != NULL; }
static int got_n(h3t_pump *p, void *a) { (void)p; return got >= *(size_t *)a; }

static void h3connect(h3t_pump *p, uint32_t seed) {
  h3t_init(p, seed);
  p->scb.on_ws_request = on_ws_request;
  p->ccb.on_ws_open = on_open;
  cws = NULL;
  if (h3t_start(p) != 0) abort();
  static h2ws_ws_callbacks cb;
  cb.on_msg = c_msg;
  cb.random = rnd;
  h2ws_ws_settings w;
  h2ws_ws_settings_default(&w);
  w.whole_messages = 1;
  h2ws_h3_ws_options o;
  h2ws_h3_ws_options_default(&o);
  o.authority = "localhost";
  o.callbacks = &cb;
  o.settings = &w;
  if (h2ws_h3_client_open_ws(p->client, &o, NULL) != 0) abort();
  if (!h3t_run(p, is_open, NULL, 5000)) abort();
}

int main(void) {
  h3t_server_cred(); /* the certificate is made once, outside the timing */
  int n = 200;
  double t0 = now_s();
  for (int i = 0; i < n; i++) {
    h3t_pump p;
    h3connect(&p, (uint32_t)i + 1);
    h3t_free(&p);
  }
  double t = now_s() - t0;
  printf("h3 handshake + SETTINGS + extended CONNECT: %d in %.3f s = %.0f/s\n", n,
         t, n / t);
  h3t_pump p;
  h3connect(&p, 99);
  static uint8_t msg[65536];
  memset(msg, 'x', sizeof(msg));
  size_t rounds = 2000, want = 0;
  got = 0;
  t0 = now_s();
  for (size_t i = 0; i < rounds; i += 8) {
    for (int k = 0; k < 8; k++) h2ws_ws_submit_msg(cws, H2WS_OP_BINARY, msg, sizeof(msg));
    want += 8;
    if (!h3t_run(&p, got_n, &want, 60000)) abort();
  }
  t = now_s() - t0;
  double m = (double)want;
  printf("h3 echo 64 KiB x %zu (8 in flight): %.3f s = %.0f msg/s, %.1f MB/s one way\n",
         want, t, m / t, m * 65536.0 / t / 1e6);
  h3t_free(&p);
  return 0;
}
