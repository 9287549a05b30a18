/* tests/unit/test_pump.c - a client and a server engine wired back to back in
 * memory: messages 0 B..1 MiB both ways, with and without permessage-deflate
 * (several parameter sets), fragments, data sources with deferral, ping/pong,
 * both closing handshakes, pause/resume backpressure and the closing timer. */
#include <stdint.h>
#include <string.h>

#include <h2ws/ws.h>

#include "testutil.h"

/* ---- peers -------------------------------------------------------------- */

typedef struct peer {
  h2ws_ws *ws;
  const char *name;
  uint32_t rng;
  /* receive checking: message k carries pattern(k, offset) */
  size_t msg_index, msg_off;
  size_t expect_sizes[64];
  size_t n_expect;
  int errors;
  int pause_data; /* pause after every data callback */
  size_t pauses;
  size_t pings, pongs;
  uint8_t last_ping[125], last_pong[125];
  size_t last_ping_len, last_pong_len;
  int closes;
  uint16_t close_code;
  h2ws_opcode msg_op;
} peer;

static uint8_t pattern(size_t msg, size_t off) {
  /* ASCII (valid UTF-8 for text), compressible for even messages and
   * noisy for odd ones so the deflater sees both. */
  if (msg % 2 == 0) return (uint8_t)('a' + (off / 7 + msg) % 26);
  uint32_t x = (uint32_t)(off * 2654435761u + msg * 40503u);
  x ^= x >> 13;
  return (uint8_t)(0x20 + x % 95);
}

static int p_begin(h2ws_ws *ws, h2ws_opcode op, int z, void *ud) {
  (void)ws; (void)z;
  peer *p = ud;
  p->msg_off = 0;
  p->msg_op = op;
  return 0;
}

static int p_data(h2ws_ws *ws, const uint8_t *d, size_t n, void *ud) {
  (void)ws;
  peer *p = ud;
  for (size_t i = 0; i < n; i++)
    if (d[i] != pattern(p->msg_index, p->msg_off + i)) {
      p->errors++;
      break;
    }
  p->msg_off += n;
  if (p->pause_data) {
    p->pauses++;
    return H2WS_ERR_PAUSE;
  }
  return 0;
}

static int p_end(h2ws_ws *ws, void *ud) {
  (void)ws;
  peer *p = ud;
  if (p->msg_index >= p->n_expect || p->msg_off != p->expect_sizes[p->msg_index]) {
    fprintf(stderr, "%s: message %zu: got %zu bytes\n", p->name, p->msg_index, p->msg_off);
    p->errors++;
  }
  p->msg_index++;
  return 0;
}

static int p_msg(h2ws_ws *ws, h2ws_opcode op, const uint8_t *d, size_t n, void *ud) {
  peer *p = ud;
  p_begin(ws, op, 0, ud);
  int pd = p->pause_data;
  p->pause_data = 0;
  p_data(ws, d, n, ud);
  p->pause_data = pd;
  return p_end(ws, ud);
}

static int p_ping(h2ws_ws *ws, const uint8_t *d, size_t n, void *ud) {
  (void)ws;
  peer *p = ud;
  p->pings++;
  memcpy(p->last_ping, d, n);
  p->last_ping_len = n;
  return 0;
}

static int p_pong(h2ws_ws *ws, const uint8_t *d, size_t n, void *ud) {
  (void)ws;
  peer *p = ud;
  p->pongs++;
  memcpy(p->last_pong, d, n);
  p->last_pong_len = n;
  return 0;
}

static void p_close(h2ws_ws *ws, uint16_t code, const uint8_t *r, size_t n, void *ud) {
  (void)ws; (void)r; (void)n;
  peer *p = ud;
  p->closes++;
  p->close_code = code;
}

static int p_rnd(uint8_t *buf, size_t len, void *ud) {
  peer *p = ud;
  for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)tu_rand(&p->rng);
  return 0;
}

static const h2ws_ws_callbacks p_cbs = {
    .on_msg_begin = p_begin,
    .on_msg_data = p_data,
    .on_msg_end = p_end,
    .on_msg = p_msg,
    .on_ping = p_ping,
    .on_pong = p_pong,
    .on_close = p_close,
    .random = p_rnd,
};

static int peers_new(peer *c, peer *s, const h2ws_ws_settings *set) {
  memset(c, 0, sizeof(*c));
  memset(s, 0, sizeof(*s));
  c->name = "client";
  s->name = "server";
  c->rng = 7;
  s->rng = 99;
  int rv = h2ws_ws_new(&c->ws, H2WS_ROLE_CLIENT, &p_cbs, set, NULL, c);
  if (rv) return rv;
  return h2ws_ws_new(&s->ws, H2WS_ROLE_SERVER, &p_cbs, set, NULL, s);
}

static void peers_del(peer *c, peer *s) {
  h2ws_ws_del(c->ws);
  h2ws_ws_del(s->ws);
}

/* Moves bytes from a's output into b's input in chunks of random size;
 * b may pause, then only what it consumed leaves a's queue.  Returns the
 * bytes moved, or a negative error. */
static long move(peer *a, peer *b, uint32_t *seed, size_t maxchunk) {
  long moved = 0;
  for (int rounds = 0; rounds < 1000000; rounds++) {
    const uint8_t *d;
    size_t n;
    int rv = h2ws_ws_send(a->ws, &d, &n, 0);
    if (rv) return rv;
    /* after a pause the rest is fed again; the engine holds back a byte
     * when it owes callbacks, so an empty rest needs no extra call (the
     * empty resume is exercised by test_conn) */
    if (n == 0) break;
    size_t k = 1 + tu_rand(seed) % maxchunk;
    if (k > n) k = n;
    size_t nread = 0;
    rv = h2ws_ws_recv(b->ws, d, k, &nread, 0);
    if (rv != 0 && rv != H2WS_ERR_PAUSE) return rv;
    if (nread > k) return -10000;
    h2ws_ws_send_consumed(a->ws, nread);
    moved += (long)nread;
  }
  return moved;
}

/* Runs both directions until nothing moves. */
static int pump(peer *c, peer *s, uint32_t seed, size_t maxchunk) {
  for (;;) {
    long m1 = move(c, s, &seed, maxchunk);
    if (m1 < 0) return (int)m1;
    long m2 = move(s, c, &seed, maxchunk);
    if (m2 < 0) return (int)m2;
    if (m1 == 0 && m2 == 0) return 0;
  }
}

static void fill(uint8_t *buf, size_t msg, size_t n) {
  for (size_t i = 0; i < n; i++) buf[i] = pattern(msg, i);
}

static const size_t sizes[] = {0, 1, 125, 126, 1000, 65535, 65536, 100000, 1u << 20};
#define NSIZES (sizeof sizes / sizeof sizes[0])

/* Sends every size both ways with submit_msg, pumping as it goes. */
static void run_messages(const h2ws_ws_settings *set, size_t maxchunk) {
  static uint8_t buf[(1u << 20) + 16];
  peer c, s;
  CHECK_EQ(peers_new(&c, &s, set), 0);
  for (size_t i = 0; i < NSIZES; i++) {
    c.expect_sizes[i] = s.expect_sizes[i] = sizes[i];
  }
  c.n_expect = s.n_expect = NSIZES;
  for (size_t i = 0; i < NSIZES; i++) {
    fill(buf, i, sizes[i]);
    h2ws_opcode op = i % 3 == 0 ? H2WS_OP_BINARY : H2WS_OP_TEXT;
    CHECK_EQ(h2ws_ws_submit_msg(c.ws, op, buf, sizes[i]), 0);
    CHECK_EQ(h2ws_ws_submit_msg(s.ws, op, buf, sizes[i]), 0);
    CHECK_EQ(pump(&c, &s, (uint32_t)(i + 1), maxchunk), 0);
  }
  CHECK_EQ(c.errors, 0);
  CHECK_EQ(s.errors, 0);
  CHECK_EQ(c.msg_index, NSIZES);
  CHECK_EQ(s.msg_index, NSIZES);
  h2ws_ws_stats st;
  h2ws_ws_get_stats(c.ws, &st);
  CHECK_EQ(st.msgs_in, NSIZES);
  CHECK_EQ(st.msgs_out, NSIZES);
  CHECK(st.bytes_in > (1u << 20));
  /* clean close initiated by the client */
  CHECK_EQ(h2ws_ws_submit_close(c.ws, 1000, (const uint8_t *)"done", 4, 0), 0);
  CHECK_EQ(pump(&c, &s, 77, maxchunk), 0);
  CHECK_EQ(c.closes, 1);
  CHECK_EQ(s.closes, 1);
  CHECK_EQ(c.close_code, 1000);
  CHECK_EQ(s.close_code, 1000);
  CHECK(h2ws_ws_is_done(c.ws));
  CHECK(h2ws_ws_is_done(s.ws));
  CHECK(!h2ws_ws_want_write(c.ws));
  CHECK(!h2ws_ws_want_write(s.ws));
  peers_del(&c, &s);
}

static h2ws_ws_settings pump_settings(int pmd, int snct, int cnct, int swb, int cwb) {
  h2ws_ws_settings s;
  h2ws_ws_settings_default(&s);
  s.max_output = 4u << 20;
  s.pmd.enabled = pmd;
  s.pmd.server_no_context_takeover = snct;
  s.pmd.client_no_context_takeover = cnct;
  s.pmd.server_max_window_bits = swb;
  s.pmd.client_max_window_bits = cwb;
  return s;
}

static void messages_plain(void) {
  h2ws_ws_settings s = pump_settings(0, 0, 0, 15, 15);
  run_messages(&s, 70000);
  if (tu_failed_checks) return;
  run_messages(&s, 7);
}

static void D2_messages_pmd_default(void) {
  h2ws_ws_settings s = pump_settings(1, 0, 0, 15, 15);
  run_messages(&s, 70000);
  if (tu_failed_checks) return;
  run_messages(&s, 13);
}

static void D2_messages_pmd_no_context_takeover(void) {
  h2ws_ws_settings s = pump_settings(1, 1, 1, 15, 15);
  run_messages(&s, 5000);
}

static void D2_messages_pmd_window_bits_8(void) {
  h2ws_ws_settings s = pump_settings(1, 0, 0, 8, 8);
  run_messages(&s, 5000);
}

static void D2_messages_pmd_window_bits_9_15_mixed(void) {
  h2ws_ws_settings s = pump_settings(1, 0, 1, 9, 15);
  run_messages(&s, 3000);
  if (tu_failed_checks) return;
  s = pump_settings(1, 1, 0, 15, 9);
  run_messages(&s, 3000);
}

static void whole_messages_pmd(void) {
  h2ws_ws_settings s = pump_settings(1, 0, 0, 15, 15);
  s.whole_messages = 1;
  run_messages(&s, 9000);
}

/* ---- fragments ---------------------------------------------------------- */

static void fragments(int pmd) {
  static uint8_t buf[300000];
  h2ws_ws_settings set = pump_settings(pmd, 0, 0, 15, 15);
  peer c, s;
  CHECK_EQ(peers_new(&c, &s, &set), 0);
  static const size_t totals[] = {0, 10, 300000, 5000};
  static const size_t pieces[] = {1, 3, 65536, 1};
  s.n_expect = 4;
  for (size_t m = 0; m < 4; m++) {
    s.expect_sizes[m] = totals[m];
    fill(buf, m, totals[m]);
    size_t off = 0;
    int first = 1;
    uint32_t seed = (uint32_t)m + 5;
    for (;;) {
      size_t k = pieces[m] == 1 ? tu_rand(&seed) % 700 : pieces[m];
      if (k > totals[m] - off) k = totals[m] - off;
      int fin = off + k == totals[m];
      CHECK_EQ(h2ws_ws_submit_fragment(c.ws, first ? H2WS_OP_TEXT : H2WS_OP_CONT, fin,
                                       buf + off, k), 0);
      if (!fin && (off / 7) % 3 == 0)
        CHECK_EQ(h2ws_ws_submit_ping(c.ws, (const uint8_t *)"mid", 3), 0);
      off += k;
      first = 0;
      CHECK_EQ(pump(&c, &s, seed, 4000), 0);
      if (fin) break;
    }
  }
  CHECK_EQ(s.errors, 0);
  CHECK_EQ(s.msg_index, 4);
  CHECK(s.pings > 0);
  CHECK_EQ(c.pongs, s.pings);
  CHECK_EQ(c.last_pong_len, 3);
  CHECK_MEM(c.last_pong, "mid", 3);
  peers_del(&c, &s);
}

static void fragments_plain(void) { fragments(0); }
static void D2_fragments_pmd(void) { fragments(1); }

/* ---- data source -------------------------------------------------------- */

typedef struct src_state {
  size_t msg, total, off, calls;
  int defer_every;
  int deferred;
} src_state;

static int src_read(h2ws_ws *ws, uint8_t *buf, size_t buflen, size_t *pn, int *peof, void *sd) {
  (void)ws;
  src_state *st = sd;
  st->calls++;
  if (st->defer_every && st->calls % (size_t)st->defer_every == 0) {
    st->deferred = 1;
    return H2WS_ERR_WOULDBLOCK;
  }
  size_t k = st->total - st->off;
  if (k > buflen) k = buflen;
  if (k > 20000) k = 20000;
  for (size_t i = 0; i < k; i++) buf[i] = pattern(st->msg, st->off + i);
  st->off += k;
  *pn = k;
  *peof = st->off == st->total;
  return 0;
}

static void source(int pmd) {
  h2ws_ws_settings set = pump_settings(pmd, 0, 0, 15, 15);
  set.max_output = 64u << 10;
  set.fragment_size = 16u << 10;
  peer c, s;
  CHECK_EQ(peers_new(&c, &s, &set), 0);
  c.n_expect = 3;
  c.expect_sizes[0] = 1u << 20;
  c.expect_sizes[1] = 0;
  c.expect_sizes[2] = 12345;
  for (size_t m = 0; m < 3; m++) {
    src_state st = {m, c.expect_sizes[m], 0, 0, m == 1 ? 0 : 3, 0};
    h2ws_data_source ds = {src_read, &st};
    CHECK_EQ(h2ws_ws_submit_source(s.ws, H2WS_OP_BINARY, &ds), 0);
    CHECK_EQ(h2ws_ws_submit_source(s.ws, H2WS_OP_BINARY, &ds), H2WS_ERR_INVALID_STATE);
    CHECK_EQ(h2ws_ws_submit_msg(s.ws, H2WS_OP_BINARY, NULL, 0), H2WS_ERR_INVALID_STATE);
    /* control frames interleave with a source message */
    CHECK_EQ(h2ws_ws_submit_ping(s.ws, (const uint8_t *)"src", 3), 0);
    int guard = 0;
    while (st.off < st.total || h2ws_ws_want_write(s.ws) || st.calls == 0) {
      CHECK(guard++ < 100000);
      CHECK_EQ(pump(&c, &s, (uint32_t)guard, 30000), 0);
      if (st.deferred) {
        CHECK(!h2ws_ws_want_write(s.ws) || h2ws_ws_output_len(s.ws) > 0);
        st.deferred = 0;
        CHECK_EQ(h2ws_ws_resume_source(s.ws), 0);
      }
      if (st.off == st.total && !h2ws_ws_want_write(s.ws)) break;
    }
    CHECK_EQ(pump(&c, &s, 3, 30000), 0);
  }
  CHECK_EQ(c.errors, 0);
  CHECK_EQ(c.msg_index, 3);
  CHECK_EQ(c.pings, 3);
  /* the output queue stayed bounded */
  h2ws_ws_stats st;
  h2ws_ws_get_stats(s.ws, &st);
  CHECK_EQ(st.msgs_out, 3);
  CHECK_EQ(st.bytes_out, (1u << 20) + 12345);
  peers_del(&c, &s);
}

static void source_plain(void) { source(0); }
static void D2_source_pmd(void) { source(1); }

/* ---- ping / pong, close -------------------------------------------------- */

static void W4_ping_pong(void) {
  h2ws_ws_settings set = pump_settings(0, 0, 0, 15, 15);
  peer c, s;
  CHECK_EQ(peers_new(&c, &s, &set), 0);
  uint8_t p[125];
  for (int i = 0; i < 125; i++) p[i] = (uint8_t)(i * 3);
  CHECK_EQ(h2ws_ws_submit_ping(c.ws, p, 125), 0);
  CHECK_EQ(h2ws_ws_submit_ping(s.ws, p, 7), 0);
  CHECK_EQ(h2ws_ws_submit_pong(s.ws, (const uint8_t *)"u", 1), 0);
  CHECK_EQ(pump(&c, &s, 1, 3), 0);
  CHECK_EQ(s.pings, 1);
  CHECK_EQ(c.pongs, 2);
  CHECK_EQ(c.last_pong_len, 125);
  CHECK_MEM(c.last_pong, p, 125);
  CHECK_EQ(s.pongs, 1);
  CHECK_EQ(s.last_pong_len, 7);
  peers_del(&c, &s);
}

static void W6_close_server_initiates(void) {
  h2ws_ws_settings set = pump_settings(1, 0, 0, 15, 15);
  peer c, s;
  CHECK_EQ(peers_new(&c, &s, &set), 0);
  c.n_expect = 1;
  c.expect_sizes[0] = 1000;
  uint8_t buf[1000];
  fill(buf, 0, 1000);
  CHECK_EQ(h2ws_ws_submit_msg(s.ws, H2WS_OP_TEXT, buf, 1000), 0);
  CHECK_EQ(h2ws_ws_submit_close(s.ws, 1001, NULL, 0, 10), 0);
  CHECK_EQ(h2ws_ws_get_expiry(s.ws), 5010);
  CHECK(!h2ws_ws_is_done(s.ws));
  CHECK_EQ(pump(&c, &s, 9, 100), 0);
  CHECK_EQ(c.msg_index, 1);
  CHECK_EQ(c.closes, 1);
  CHECK_EQ(s.closes, 1);
  CHECK_EQ(c.close_code, 1001);
  CHECK_EQ(s.close_code, 1001);
  CHECK(h2ws_ws_is_done(c.ws));
  CHECK(h2ws_ws_is_done(s.ws));
  CHECK(!h2ws_ws_want_read(s.ws));
  CHECK_EQ(h2ws_ws_get_expiry(s.ws), H2WS_NO_EXPIRY);
  h2ws_ws_stats st;
  h2ws_ws_get_stats(c.ws, &st);
  CHECK_EQ(st.close_code_sent, 1001);
  CHECK_EQ(st.close_code_received, 1001);
  /* the transports then half-close: eof changes nothing */
  h2ws_ws_recv_eof(c.ws, 0);
  h2ws_ws_recv_eof(s.ws, 0);
  CHECK_EQ(c.closes, 1);
  CHECK_EQ(s.closes, 1);
  peers_del(&c, &s);
}

static void W6_close_both_at_once(void) {
  h2ws_ws_settings set = pump_settings(0, 0, 0, 15, 15);
  peer c, s;
  CHECK_EQ(peers_new(&c, &s, &set), 0);
  CHECK_EQ(h2ws_ws_submit_close(c.ws, 1000, NULL, 0, 0), 0);
  CHECK_EQ(h2ws_ws_submit_close(s.ws, 4001, NULL, 0, 0), 0);
  CHECK_EQ(pump(&c, &s, 9, 100), 0);
  CHECK_EQ(c.close_code, 4001);
  CHECK_EQ(s.close_code, 1000);
  CHECK(h2ws_ws_is_done(c.ws) && h2ws_ws_is_done(s.ws));
  peers_del(&c, &s);
}

static void W7_closing_timeout(void) {
  h2ws_ws_settings set = pump_settings(0, 0, 0, 15, 15);
  set.close_timeout_ms = 1000;
  peer c, s;
  CHECK_EQ(peers_new(&c, &s, &set), 0);
  CHECK_EQ(h2ws_ws_submit_close(c.ws, 1000, NULL, 0, 500), 0);
  /* the server's transport stalls: the client's Close is never read */
  CHECK_EQ(h2ws_ws_get_expiry(c.ws), 1500);
  CHECK_EQ(h2ws_ws_handle_expiry(c.ws, 1499), 0);
  CHECK_EQ(c.closes, 0);
  CHECK_EQ(h2ws_ws_handle_expiry(c.ws, 2000), 0);
  CHECK_EQ(c.closes, 1);
  CHECK_EQ(c.close_code, 1006);
  CHECK(h2ws_ws_is_done(c.ws));
  /* a late Close from the server is discarded, no second on_close */
  CHECK_EQ(pump(&c, &s, 1, 100), 0);
  CHECK_EQ(c.closes, 1);
  CHECK_EQ(s.closes, 1);
  peers_del(&c, &s);
}

/* ---- backpressure -------------------------------------------------------- */

static void W7_pause_resume_backpressure(void) {
  h2ws_ws_settings set = pump_settings(1, 0, 0, 15, 15);
  peer c, s;
  CHECK_EQ(peers_new(&c, &s, &set), 0);
  static uint8_t buf[200000];
  s.n_expect = 2;
  s.expect_sizes[0] = sizeof buf;
  s.expect_sizes[1] = 5;
  fill(buf, 0, sizeof buf);
  CHECK_EQ(h2ws_ws_submit_msg(c.ws, H2WS_OP_BINARY, buf, sizeof buf), 0);
  fill(buf, 1, 5);
  CHECK_EQ(h2ws_ws_submit_msg(c.ws, H2WS_OP_TEXT, buf, 5), 0);
  s.pause_data = 1;
  /* one recv with everything: it stops after the first data chunk */
  const uint8_t *d;
  size_t n, nread;
  CHECK_EQ(h2ws_ws_send(c.ws, &d, &n, 0), 0);
  size_t queued = n;
  CHECK_EQ(h2ws_ws_recv(s.ws, d, n, &nread, 0), H2WS_ERR_PAUSE);
  CHECK(nread < n);
  CHECK_EQ(s.pauses, 1);
  h2ws_ws_send_consumed(c.ws, nread);
  CHECK_EQ(h2ws_ws_output_len(c.ws), queued - nread);
  /* resume: everything arrives intact, one pause per data callback */
  CHECK_EQ(pump(&c, &s, 4, 100000), 0);
  CHECK_EQ(s.errors, 0);
  CHECK_EQ(s.msg_index, 2);
  CHECK(s.pauses > 2);
  peers_del(&c, &s);
}


/* ---- W7 / D3: the message limit is on the message as the application sees
 * it (issue 7.1) ----------------------------------------------------------- */

/* A peer that echoes whole messages and records their sizes. */
typedef struct lim_peer {
  size_t sizes[8];
  size_t nmsgs;
  uint16_t close_code;
  int echo;
  uint32_t rng;
} lim_peer;

static int lim_msg(h2ws_ws *ws, h2ws_opcode op, const uint8_t *d, size_t n,
                   void *ud) {
  lim_peer *p = ud;
  if (p->nmsgs < 8) p->sizes[p->nmsgs] = n;
  p->nmsgs++;
  if (p->echo && h2ws_ws_submit_msg(ws, op, d, n) != 0) return -1;
  return 0;
}

static void lim_close(h2ws_ws *ws, uint16_t code, const uint8_t *r, size_t n,
                      void *ud) {
  (void)ws; (void)r; (void)n;
  ((lim_peer *)ud)->close_code = code;
}

static int lim_rnd(uint8_t *buf, size_t len, void *ud) {
  lim_peer *p = ud;
  for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)tu_rand(&p->rng);
  return 0;
}

static const h2ws_ws_callbacks lim_cbs = {
    .on_msg = lim_msg,
    .on_close = lim_close,
    .random = lim_rnd,
};

/* Moves everything queued a -> b in pieces of at most 5000 bytes. */
static int lim_move(h2ws_ws *a, h2ws_ws *b) {
  for (;;) {
    const uint8_t *d;
    size_t n, nread;
    if (h2ws_ws_send(a, &d, &n, 0) != 0) return -1;
    if (n == 0) return 0;
    if (n > 5000) n = 5000;
    int rv = h2ws_ws_recv(b, d, n, &nread, 0);
    if (rv != 0 && rv != H2WS_ERR_MSG_TOO_BIG) return -1;
    h2ws_ws_send_consumed(a, n);
  }
}

/* Random (incompressible: deflate makes it slightly larger) binary
 * messages of limit - 1 and limit bytes echo, with and without
 * permessage-deflate, whether max_frame_size is left alone or set to the
 * limit as the apps used to; limit + 1 is refused with 1009. */
static void W7_D3_limit_is_after_inflation(void) {
  enum { L = 200000 };
  static uint8_t buf[L + 1];
  uint32_t seed = 12345;
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)tu_rand(&seed);
  for (int pmd = 0; pmd <= 1; pmd++) {
    for (int explicit_frame = 0; explicit_frame <= 1; explicit_frame++) {
      h2ws_ws_settings set = pump_settings(pmd, 0, 0, 15, 15);
      set.whole_messages = 1;
      set.max_message_size = L;
      if (explicit_frame) set.max_frame_size = L;
      lim_peer pc, ps;
      memset(&pc, 0, sizeof pc);
      memset(&ps, 0, sizeof ps);
      pc.rng = 1;
      ps.echo = 1;
      h2ws_ws *c = NULL, *s = NULL;
      CHECK_EQ(h2ws_ws_new(&c, H2WS_ROLE_CLIENT, &lim_cbs, &set, NULL, &pc), 0);
      CHECK_EQ(h2ws_ws_new(&s, H2WS_ROLE_SERVER, &lim_cbs, &set, NULL, &ps), 0);
      CHECK_EQ(h2ws_ws_submit_msg(c, H2WS_OP_BINARY, buf, L - 1), 0);
      CHECK_EQ(h2ws_ws_submit_msg(c, H2WS_OP_BINARY, buf, L), 0);
      for (int k = 0; k < 4; k++) {
        CHECK_EQ(lim_move(c, s), 0);
        CHECK_EQ(lim_move(s, c), 0);
      }
      if (pmd) CHECK(h2ws_ws_is_compressed(c));
      CHECK_EQ(ps.close_code, 0);
      CHECK_EQ(ps.nmsgs, 2);
      CHECK_EQ(ps.sizes[0], L - 1);
      CHECK_EQ(ps.sizes[1], L);
      CHECK_EQ(pc.nmsgs, 2); /* both echoes accepted by the client too */
      CHECK_EQ(pc.sizes[1], L);
      /* one byte more: 1009 */
      CHECK_EQ(h2ws_ws_submit_msg(c, H2WS_OP_BINARY, buf, L + 1), 0);
      for (int k = 0; k < 4; k++) {
        CHECK_EQ(lim_move(c, s), 0);
        CHECK_EQ(lim_move(s, c), 0);
      }
      CHECK_EQ(ps.nmsgs, 2);
      CHECK_EQ(ps.close_code, 1009);
      CHECK_EQ(pc.close_code, 1009);
      h2ws_ws_del(c);
      h2ws_ws_del(s);
    }
  }
}

int main(void) {
  static const tu_case cases[] = {
      {"W1_messages_plain", messages_plain},
      {"D2_messages_pmd_default", D2_messages_pmd_default},
      {"D2_messages_pmd_no_context_takeover", D2_messages_pmd_no_context_takeover},
      {"D2_messages_pmd_window_bits_8", D2_messages_pmd_window_bits_8},
      {"D2_messages_pmd_window_bits_9_15_mixed", D2_messages_pmd_window_bits_9_15_mixed},
      {"whole_messages_pmd", whole_messages_pmd},
      {"fragments_plain", fragments_plain},
      {"D2_fragments_pmd", D2_fragments_pmd},
      {"source_plain", source_plain},
      {"D2_source_pmd", D2_source_pmd},
      {"W4_ping_pong", W4_ping_pong},
      {"W6_close_server_initiates", W6_close_server_initiates},
      {"W6_close_both_at_once", W6_close_both_at_once},
      {"W7_closing_timeout", W7_closing_timeout},
      {"W7_pause_resume_backpressure", W7_pause_resume_backpressure},
      {"W7_D3_limit_is_after_inflation", W7_D3_limit_is_after_inflation},
  };
  return TU_RUN(cases);
}
