/* tests/unit/test_trace.c - the diagnostic trace hooks behind `h2ws client
 * -v`: the engine's on_frame_trace (one call per frame header, sent and
 * received, the same for any split of the input) and the HTTP/2 binding's
 * on_frame_trace (one readable line per frame: SETTINGS with
 * ENABLE_CONNECT_PROTOCOL, HEADERS with the extended CONNECT
 * pseudo-headers, DATA sizes, RST_STREAM), pumped in memory. */
#include <stdio.h>
#include <string.h>
#include <h2ws/ws.h>
#include <h2ws/h2.h>
#include "testutil.h"

/* ---- engine ---------------------------------------------------------------- */

typedef struct tr_log {
  char s[4096];
  size_t n;
} tr_log;

static void tr_add(tr_log *l, const char *line) {
  size_t k = strlen(line);
  if (l->n + k + 2 >= sizeof l->s) return;
  memcpy(l->s + l->n, line, k);
  l->n += k;
  l->s[l->n++] = '\n';
  l->s[l->n] = '\0';
}

static void tr_ws(h2ws_ws *ws, int sent, int fin, unsigned rsv,
                  h2ws_opcode op, uint64_t len, void *ud) {
  char line[96];
  (void)ws;
  snprintf(line, sizeof line, "%s op=%d fin=%d rsv=%u len=%llu",
           sent ? ">" : "<", (int)op, fin, rsv, (unsigned long long)len);
  tr_add(ud, line);
}

static uint32_t tr_seed = 7;
static int tr_rand(uint8_t *buf, size_t len, void *ud) {
  (void)ud;
  for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)tu_rand(&tr_seed);
  return 0;
}

/* Client sends text "hello", a 200-byte binary message compressed or not,
 * a ping and a Close; the server receives them fed `step` bytes at a time
 * (0: all at once).  Fills the two logs. */
static void tr_engine_run(int compress, size_t step, tr_log *cl, tr_log *sl) {
  h2ws_ws_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.random = tr_rand;
  cb.on_frame_trace = tr_ws;
  h2ws_ws_settings st;
  h2ws_ws_settings_default(&st);
  if (compress) {
    st.pmd.enabled = 1;
    st.pmd.server_max_window_bits = 15;
    st.pmd.client_max_window_bits = 15;
  }
  h2ws_ws *c = NULL, *s = NULL;
  CHECK_EQ(h2ws_ws_new(&c, H2WS_ROLE_CLIENT, &cb, &st, NULL, cl), 0);
  CHECK_EQ(h2ws_ws_new(&s, H2WS_ROLE_SERVER, &cb, &st, NULL, sl), 0);
  if (!c || !s) return;
  uint8_t big[200];
  memset(big, 'a', sizeof big);
  CHECK_EQ(h2ws_ws_submit_msg(c, H2WS_OP_TEXT, (const uint8_t *)"hello", 5), 0);
  CHECK_EQ(h2ws_ws_submit_msg(c, H2WS_OP_BINARY, big, sizeof big), 0);
  CHECK_EQ(h2ws_ws_submit_ping(c, (const uint8_t *)"p", 1), 0);
  CHECK_EQ(h2ws_ws_submit_close(c, 1000, NULL, 0, 0), 0);
  const uint8_t *p;
  size_t n;
  CHECK_EQ(h2ws_ws_send(c, &p, &n, 0), 0);
  size_t off = 0;
  while (off < n) {
    size_t k = step && n - off > step ? step : n - off, used = 0;
    CHECK_EQ(h2ws_ws_recv(s, p + off, k, &used, 0), 0);
    CHECK_EQ(used, k);
    if (used != k) break;
    off += k;
  }
  h2ws_ws_send_consumed(c, n);
  h2ws_ws_del(c);
  h2ws_ws_del(s);
}

static void engine_trace_frames(void) {
  tr_log cl, sl;
  memset(&cl, 0, sizeof cl);
  memset(&sl, 0, sizeof sl);
  tr_engine_run(0, 0, &cl, &sl);
  CHECK(strcmp(cl.s, "> op=1 fin=1 rsv=0 len=5\n"
                     "> op=2 fin=1 rsv=0 len=200\n"
                     "> op=9 fin=1 rsv=0 len=1\n"
                     "> op=8 fin=1 rsv=0 len=2\n") == 0);
  /* the server saw the same headers; it answered the ping and the Close */
  CHECK(strstr(sl.s, "< op=1 fin=1 rsv=0 len=5\n"
                     "< op=2 fin=1 rsv=0 len=200\n"
                     "< op=9 fin=1 rsv=0 len=1\n") == sl.s);
  CHECK(strstr(sl.s, "> op=10 fin=1 rsv=0 len=1\n") != NULL);
  CHECK(strstr(sl.s, "< op=8 fin=1 rsv=0 len=2\n") != NULL);
  CHECK(strstr(sl.s, "> op=8 fin=1 rsv=0 len=2\n") != NULL);
}

static void D2_engine_trace_rsv1_compressed(void) {
  tr_log cl, sl;
  memset(&cl, 0, sizeof cl);
  memset(&sl, 0, sizeof sl);
  tr_engine_run(1, 0, &cl, &sl);
  /* 200 'a' deflate to far fewer bytes, RSV1 (0x4) set; "hello" is under
   * the compression threshold; control frames never compressed */
  CHECK(strstr(cl.s, "> op=1 fin=1 rsv=0 len=5\n") == cl.s);
  CHECK(strstr(cl.s, "> op=2 fin=1 rsv=4 len=") != NULL);
  CHECK(strstr(cl.s, "> op=2 fin=1 rsv=4 len=200") == NULL);
  CHECK(strstr(sl.s, "< op=2 fin=1 rsv=4 len=") != NULL);
  CHECK(strstr(cl.s, "> op=9 fin=1 rsv=0 len=1\n") != NULL);
}

static void W1_engine_trace_split_invariant(void) {
  tr_log c1, s1, c2, s2;
  memset(&c1, 0, sizeof c1);
  memset(&s1, 0, sizeof s1);
  memset(&c2, 0, sizeof c2);
  memset(&s2, 0, sizeof s2);
  tr_seed = 7;
  tr_engine_run(1, 0, &c1, &s1);
  tr_seed = 7;
  tr_engine_run(1, 1, &c2, &s2);
  CHECK(s1.n > 0);
  CHECK(strcmp(s1.s, s2.s) == 0);
}

/* ---- HTTP/2 binding -------------------------------------------------------- */

typedef struct tr_h2 {
  tr_log log;
  int opened;
  int refuse; /* server: reset the stream instead of accepting */
} tr_h2;

static void tr_h2_line(h2ws_h2_session *s, int sent, const char *line,
                       void *ud) {
  tr_h2 *t = ud;
  char buf[1700];
  (void)s;
  snprintf(buf, sizeof buf, "%s %s", sent ? ">" : "<", line);
  tr_add(&t->log, buf);
}

static int tr_srv_ws_request(h2ws_h2_session *s, int32_t id,
                             const h2ws_ws_request *req,
                             const h2ws_h2_request *hreq, void *ud) {
  tr_h2 *t = ud;
  (void)req;
  (void)hreq;
  if (t->refuse) return h2ws_h2_reset(s, id, 0x8);
  static const h2ws_ws_callbacks wcb = {.random = tr_rand};
  h2ws_h2_accept_options o;
  h2ws_h2_accept_options_default(&o);
  o.callbacks = &wcb;
  return h2ws_h2_accept_ws(s, id, &o, NULL);
}

static int tr_cli_ws_open(h2ws_h2_session *s, int32_t id, h2ws_ws *ws,
                          const char *sub, void *rud, void *ud) {
  tr_h2 *t = ud;
  (void)s;
  (void)id;
  (void)sub;
  (void)rud;
  t->opened = 1;
  return h2ws_ws_submit_msg(ws, H2WS_OP_TEXT, (const uint8_t *)"hi!", 3);
}

/* Moves bytes both ways until both sessions are quiet. */
static void tr_pump(h2ws_h2_session *a, h2ws_h2_session *b) {
  for (int round = 0; round < 50; round++) {
    int moved = 0;
    h2ws_h2_session *from[2] = {a, b}, *to[2] = {b, a};
    for (int k = 0; k < 2; k++) {
      const uint8_t *p;
      size_t n = 0, used = 0;
      CHECK_EQ(h2ws_h2_session_send(from[k], &p, &n, 0), 0);
      if (!n) continue;
      moved = 1;
      CHECK_EQ(h2ws_h2_session_recv(to[k], p, n, &used, 0), 0);
      h2ws_h2_session_send_consumed(from[k], n);
    }
    if (!moved) return;
  }
}

static void h2_trace_run(int refuse, tr_h2 *cli, tr_h2 *srv) {
  h2ws_h2_settings sset;
  h2ws_h2_settings_default(&sset);
  sset.enable_connect_protocol = 1;
  h2ws_h2_callbacks scb, ccb;
  memset(&scb, 0, sizeof scb);
  memset(&ccb, 0, sizeof ccb);
  scb.on_ws_request = tr_srv_ws_request;
  scb.on_frame_trace = tr_h2_line;
  ccb.on_ws_open = tr_cli_ws_open;
  ccb.on_frame_trace = tr_h2_line;
  srv->refuse = refuse;
  h2ws_h2_session *s = NULL, *c = NULL;
  CHECK_EQ(h2ws_h2_session_new(&s, H2WS_ROLE_SERVER, &scb, &sset, NULL, srv),
           0);
  CHECK_EQ(h2ws_h2_session_new(&c, H2WS_ROLE_CLIENT, &ccb, NULL, NULL, cli),
           0);
  if (!s || !c) return;
  h2ws_ws_callbacks wcb;
  memset(&wcb, 0, sizeof wcb);
  wcb.random = tr_rand;
  h2ws_h2_ws_options o;
  h2ws_h2_ws_options_default(&o);
  o.authority = "example.test:443";
  o.path = "/chat?room=1";
  o.callbacks = &wcb;
  int32_t sid = -1;
  CHECK_EQ(h2ws_h2_client_open_ws(c, &o, &sid), 0);
  tr_pump(c, s);
  h2ws_h2_session_del(c);
  h2ws_h2_session_del(s);
}

static void H1_H4_h2_trace_lines(void) {
  tr_h2 cli, srv;
  memset(&cli, 0, sizeof cli);
  memset(&srv, 0, sizeof srv);
  h2_trace_run(0, &cli, &srv);
  CHECK(cli.opened);
  const char *l = cli.log.s;
  CHECK(strstr(l, "> SETTINGS ") != NULL);
  CHECK(strstr(l, "< SETTINGS ") != NULL);
  CHECK(strstr(l, "ENABLE_CONNECT_PROTOCOL=1") != NULL);
  CHECK(strstr(l, "< SETTINGS ACK\n") != NULL);
  CHECK(strstr(l, "> HEADERS stream=1 END_HEADERS | :method: CONNECT | "
                  ":protocol: websocket | :scheme: https | :path: "
                  "/chat?room=1 | :authority: example.test:443 | "
                  "sec-websocket-version: 13") != NULL);
  CHECK(strstr(l, "< HEADERS stream=1 END_HEADERS | :status: 200") != NULL);
  /* "hi!" masked: 2 + 4 + 3 bytes of WebSocket frame in one DATA */
  CHECK(strstr(l, "> DATA stream=1 length=9\n") != NULL);
  CHECK(strstr(srv.log.s, "< DATA stream=1 length=9\n") != NULL);
  CHECK(strstr(srv.log.s, "< HEADERS stream=1 END_HEADERS | :method: CONNECT")
        != NULL);
  CHECK(strstr(l, "> WINDOW_UPDATE stream=0 increment=") != NULL);
}

static void H9_h2_trace_rst_stream(void) {
  tr_h2 cli, srv;
  memset(&cli, 0, sizeof cli);
  memset(&srv, 0, sizeof srv);
  h2_trace_run(1, &cli, &srv);
  CHECK(!cli.opened);
  CHECK(strstr(srv.log.s, "> RST_STREAM stream=1 error=CANCEL\n") != NULL);
  CHECK(strstr(cli.log.s, "< RST_STREAM stream=1 error=CANCEL\n") != NULL);
}

int main(void) {
  static const tu_case cases[] = {
      {"engine_trace_frames", engine_trace_frames},
      {"D2_engine_trace_rsv1_compressed", D2_engine_trace_rsv1_compressed},
      {"W1_engine_trace_split_invariant", W1_engine_trace_split_invariant},
      {"H1_H4_h2_trace_lines", H1_H4_h2_trace_lines},
      {"H9_h2_trace_rst_stream", H9_h2_trace_rst_stream},
  };
  return TU_RUN(cases);
}
