/* tests/interop/h3_slow.c - WebSockets over HTTP/3 that send and never
 * read, for test_h3.py (serve's memory model on HTTP/3, issue 9 C):
 *   h3_slow URL N MSGS SIZE
 * opens N WebSockets to URL (wss://, HTTP/3 only, certificate not
 * checked: a loopback test server) with the runtime's client, so they
 * share one QUIC connection; each sends MSGS binary messages of SIZE
 * incompressible bytes at once, takes the first echo and then reads
 * nothing more (on_message returns H2WS_ERR_PAUSE).  Prints "paused N"
 * once all did, "closed CODE" / "failed MSG" as they end; runs until
 * every one ended or it is stopped (SIGTERM). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <h2ws/rt.h>

static int nws, msgs, npaused, ndone;
static size_t size;
static h2ws_rt *rt;

static void fill(uint8_t *m, size_t n, uint32_t seed) {
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    m[i] = (uint8_t)x;
  }
}

static void on_open(h2ws_rt_ws *ws, void *ud) {
  static uint32_t seed;
  uint8_t *m = malloc(size);
  (void)ud;
  if (!m) exit(2);
  for (int k = 0; k < msgs; k++) {
    fill(m, size, ++seed);
    if (h2ws_rt_ws_send(ws, H2WS_OP_BINARY, m, size) != 0) {
      fprintf(stderr, "h3_slow: send failed\n");
      exit(2);
    }
  }
  free(m);
}

static int on_message(h2ws_rt_ws *ws, h2ws_opcode op, const uint8_t *d,
                      size_t n, void *ud) {
  (void)ws;
  (void)op;
  (void)d;
  (void)n;
  (void)ud;
  if (++npaused == nws) {
    printf("paused %d\n", npaused);
    fflush(stdout);
  }
  return H2WS_ERR_PAUSE; /* never reads again */
}

static void ended(void) {
  if (++ndone == nws) exit(0);
}

static void on_close(h2ws_rt_ws *ws, uint16_t code, const uint8_t *r,
                     size_t rl, void *ud) {
  (void)ws;
  (void)r;
  (void)rl;
  (void)ud;
  printf("closed %u\n", code);
  fflush(stdout);
  ended();
}

static void on_fail(h2ws_rt_ws *ws, int error, int status, const char *msg,
                    void *ud) {
  (void)ws;
  (void)error;
  (void)status;
  (void)ud;
  printf("failed %s\n", msg);
  fflush(stdout);
  ended();
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: h3_slow URL N MSGS SIZE\n");
    return 2;
  }
  nws = atoi(argv[2]);
  msgs = atoi(argv[3]);
  size = (size_t)strtoull(argv[4], NULL, 10);
  if (nws <= 0 || msgs <= 0 || size == 0) return 2;
  h2ws_client *cl;
  h2ws_client_settings cs;
  h2ws_client_settings_default(&cs);
  cs.insecure = 1;
  cs.ws.max_message_size = size + 1024;
  cs.ws.max_output = (size_t)msgs * (size + 16) + (1u << 20);
  if (h2ws_rt_new(&rt, NULL) != 0 || h2ws_client_new(&cl, rt, &cs) != 0)
    return 1;
  static const h2ws_rt_ws_callbacks cbs = {.on_open = on_open,
                                           .on_message = on_message,
                                           .on_close = on_close,
                                           .on_fail = on_fail};
  h2ws_client_ws_options o;
  h2ws_client_ws_options_default(&o);
  o.policy = H2WS_RT_POLICY_H3;
  o.compress = 0; /* what is sent is what the server must hold */
  for (int i = 0; i < nws; i++)
    if (h2ws_client_open(cl, argv[1], &o, &cbs, NULL, NULL) != 0) {
      fprintf(stderr, "h3_slow: %s\n", h2ws_client_last_error(cl));
      return 1;
    }
  h2ws_rt_run(rt); /* until every WebSocket ended (exit) */
  h2ws_client_del(cl);
  h2ws_rt_del(rt);
  return 0;
}
