/* tests/unit/test_conn.c - the h2ws_ws receive/send state machine, one case
 * per SPEC row (W1-W7, D2-D3): golden event logs checked whole, one byte at
 * a time, with random splits and with a pause at every callback, plus the
 * exact wire bytes the engine queues. */
#include <stdint.h>
#include <string.h>
#include <zlib.h>

#include <h2ws/ws.h>

#include "testutil.h"

/* ---- harness ------------------------------------------------------------ */

typedef struct tc {
  h2ws_ws *ws;
  char log[1 << 16];
  size_t loglen;
  int in_data;
  int pause;      /* every callback returns PAUSE */
  int closes;     /* on_close count */
  uint32_t rng;   /* masking keys */
  size_t data_total;
  size_t msg_logged; /* data bytes logged for the current message */
} tc;

static void lg(tc *t, const char *s) {
  size_t n = strlen(s);
  if (t->loglen + n + 1 < sizeof(t->log)) {
    memcpy(t->log + t->loglen, s, n);
    t->loglen += n;
    t->log[t->loglen] = 0;
  }
}

static void lg_bytes(tc *t, const uint8_t *p, size_t n) {
  char b[8];
  for (size_t i = 0; i < n; i++) {
    if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\') {
      b[0] = (char)p[i];
      b[1] = 0;
    } else {
      snprintf(b, sizeof b, "\\x%02x", p[i]);
    }
    lg(t, b);
  }
}

static void ev(tc *t, const char *s) {
  t->in_data = 0;
  lg(t, " ");
  lg(t, s);
}

static int cb_ret(tc *t) { return t->pause ? H2WS_ERR_PAUSE : 0; }

static int on_begin(h2ws_ws *ws, h2ws_opcode op, int compressed, void *ud) {
  (void)ws;
  tc *t = ud;
  char b[32];
  snprintf(b, sizeof b, "begin(%d%s)", (int)op, compressed ? ",z" : "");
  t->msg_logged = 0;
  ev(t, b);
  return cb_ret(t);
}

static int on_data(h2ws_ws *ws, const uint8_t *d, size_t n, void *ud) {
  (void)ws;
  tc *t = ud;
  if (!t->in_data) {
    lg(t, " d:");
    t->in_data = 1;
  }
  if (t->msg_logged < 1024) lg_bytes(t, d, n < 1024 - t->msg_logged ? n : 1024 - t->msg_logged);
  t->msg_logged += n;
  t->data_total += n;
  return cb_ret(t);
}

static int on_end(h2ws_ws *ws, void *ud) {
  (void)ws;
  tc *t = ud;
  ev(t, "end");
  return cb_ret(t);
}

static int on_msg(h2ws_ws *ws, h2ws_opcode op, const uint8_t *d, size_t n, void *ud) {
  (void)ws;
  tc *t = ud;
  char b[48];
  snprintf(b, sizeof b, "msg(%d,%zu):", (int)op, n);
  ev(t, b);
  lg_bytes(t, d, n < 64 ? n : 64);
  return cb_ret(t);
}

static int on_ping(h2ws_ws *ws, const uint8_t *d, size_t n, void *ud) {
  (void)ws;
  tc *t = ud;
  ev(t, "ping:");
  lg_bytes(t, d, n);
  return cb_ret(t);
}

static int on_pong(h2ws_ws *ws, const uint8_t *d, size_t n, void *ud) {
  (void)ws;
  tc *t = ud;
  ev(t, "pong:");
  lg_bytes(t, d, n);
  return cb_ret(t);
}

static void on_close(h2ws_ws *ws, uint16_t code, const uint8_t *r, size_t n, void *ud) {
  (void)ws;
  tc *t = ud;
  char b[32];
  snprintf(b, sizeof b, "close(%u):", code);
  ev(t, b);
  lg_bytes(t, r, n);
  t->closes++;
}

static int rnd(uint8_t *buf, size_t len, void *ud) {
  tc *t = ud;
  for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)tu_rand(&t->rng);
  return 0;
}

static const h2ws_ws_callbacks tc_cbs = {
    .on_msg_begin = on_begin,
    .on_msg_data = on_data,
    .on_msg_end = on_end,
    .on_msg = on_msg,
    .on_ping = on_ping,
    .on_pong = on_pong,
    .on_close = on_close,
    .random = rnd,
};

static int tc_new(tc *t, h2ws_role role, const h2ws_ws_settings *s) {
  memset(t, 0, sizeof(*t));
  t->rng = 12345;
  return h2ws_ws_new(&t->ws, role, &tc_cbs, s, NULL, t);
}

/* Feeds `in` with a split pattern: 0 whole, 1 byte at a time, 2 random
 * (seeded).  Re-feeds the rest after every pause.  Logs the first error. */
static void tc_feed(tc *t, const uint8_t *in, size_t len, int mode, uint32_t seed) {
  size_t pos = 0;
  while (pos < len) {
    size_t n = len - pos;
    if (mode == 1) n = 1;
    if (mode == 2) {
      size_t r = tu_rand(&seed) % 9;
      n = r == 0 ? 1 : r < 5 ? r * 3 : tu_rand(&seed) % 300 + 1;
      if (n > len - pos) n = len - pos;
    }
    size_t off = 0;
    for (;;) {
      size_t nread = 99999;
      int rv = h2ws_ws_recv(t->ws, in + pos + off, n - off, &nread, 0);
      if (nread > n - off) {
        ev(t, "BADNREAD");
        return;
      }
      off += nread;
      if (rv == H2WS_ERR_PAUSE) {
        if (nread == 0 && off < n && !t->pause) { ev(t, "STUCK"); return; }
        continue;
      }
      if (rv != 0) {
        char b[32];
        snprintf(b, sizeof b, "rv=%d", rv);
        ev(t, b);
        if (off != n) ev(t, "SHORT");
        return;
      }
      if (off != n) ev(t, "SHORT");
      break;
    }
    pos += n;
  }
}

/* Drains the engine's output into buf (up to cap); returns its length. */
static size_t tc_out(tc *t, uint8_t *buf, size_t cap) {
  size_t total = 0;
  for (;;) {
    const uint8_t *p;
    size_t n;
    if (h2ws_ws_send(t->ws, &p, &n, 0) != 0 || n == 0) break;
    if (n > cap - total) n = cap - total;
    if (n == 0) break;
    memcpy(buf + total, p, n);
    total += n;
    h2ws_ws_send_consumed(t->ws, n);
  }
  return total;
}

/* Builds a frame (masked when key != NULL) into out; returns its size. */
static size_t mkframe(uint8_t *out, int fin, unsigned rsv, unsigned op,
                      const uint8_t *key, const void *payload, size_t len) {
  const uint8_t *p = payload;
  size_t n = 0;
  out[n++] = (uint8_t)((fin ? 0x80 : 0) | rsv << 4 | op);
  uint8_t m = key ? 0x80 : 0;
  if (len < 126) {
    out[n++] = (uint8_t)(m | len);
  } else if (len < 65536) {
    out[n++] = m | 126;
    out[n++] = (uint8_t)(len >> 8);
    out[n++] = (uint8_t)len;
  } else {
    out[n++] = m | 127;
    for (int i = 7; i >= 0; i--) out[n++] = (uint8_t)((uint64_t)len >> (8 * i));
  }
  if (key) {
    memcpy(out + n, key, 4);
    n += 4;
  }
  for (size_t i = 0; i < len; i++) out[n + i] = key ? (uint8_t)(p[i] ^ key[i % 4]) : p[i];
  return n + len;
}

static const uint8_t K[4] = {0x37, 0xfa, 0x21, 0x3d};

/* Runs one receive vector in every split mode and with pauses; all logs
 * (events + output bytes) must be equal; returns the whole-feed log in
 * `log` for golden comparison. */
static int run_vec(h2ws_role role, const h2ws_ws_settings *s, const uint8_t *in,
                   size_t len, char *log, size_t logcap) {
  static tc t;
  static char first[sizeof(t.log) + 4096];
  first[0] = 0;
  for (int variant = 0; variant < 7; variant++) {
    int mode = variant < 3 ? variant : (variant - 3) % 3;
    if (tc_new(&t, role, s) != 0) return -1;
    t.pause = variant >= 3 && variant != 6;
    uint32_t seed = 0x9e3779b9u + (uint32_t)variant;
    tc_feed(&t, in, len, mode == 0 && variant == 6 ? 2 : mode, seed);
    uint8_t out[4096];
    size_t n = tc_out(&t, out, sizeof out);
    lg(&t, " |out:");
    for (size_t i = 0; i < n; i++) {
      char b[4];
      snprintf(b, sizeof b, "%02x", out[i]);
      lg(&t, b);
    }
    h2ws_ws_del(t.ws);
    if (t.closes > 1) return -2;
    if (variant == 0) {
      snprintf(first, sizeof first, "%s", t.log);
    } else if (strcmp(first, t.log) != 0) {
      size_t k = 0;
      while (first[k] && first[k] == t.log[k]) k++;
      fprintf(stderr, "split variant %d differs at %zu:\n  %.200s\n  %.200s\n", variant, k,
              first + (k > 40 ? k - 40 : 0), t.log + (k > 40 ? k - 40 : 0));
      return -3;
    }
  }
  snprintf(log, logcap, "%s", first);
  return 0;
}

#define EXPECT_LOG(role, s, in, len, want)                                  \
  do {                                                                      \
    char tu_log[sizeof(((tc *)0)->log) + 4096];                             \
    CHECK_EQ(run_vec((role), (s), (in), (len), tu_log, sizeof tu_log), 0);  \
    if (strcmp(tu_log, (want)) != 0) {                                      \
      fprintf(stderr, "got:  %s\nwant: %s\n", tu_log, (want));              \
      CHECK(0);                                                             \
    }                                                                       \
  } while (0)

static const h2ws_ws_settings *defaults(void) {
  static h2ws_ws_settings s;
  h2ws_ws_settings_default(&s);
  return &s;
}

static const h2ws_ws_settings *with_pmd(void) {
  static h2ws_ws_settings s;
  h2ws_ws_settings_default(&s);
  s.pmd.enabled = 1;
  return &s;
}

/* Raw deflate + sync flush, tail 00 00 ff ff removed (RFC 7692 §7.2.1). */
static size_t zcompress(const uint8_t *in, size_t len, uint8_t *out, size_t cap) {
  z_stream z;
  memset(&z, 0, sizeof z);
  if (deflateInit2(&z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) return 0;
  z.next_in = (Bytef *)(uintptr_t)in;
  z.avail_in = (uInt)len;
  z.next_out = out;
  z.avail_out = (uInt)cap;
  deflate(&z, Z_SYNC_FLUSH);
  size_t n = cap - z.avail_out;
  deflateEnd(&z);
  return n >= 4 ? n - 4 : 0;
}

/* ---- W1: codec and split invariance ------------------------------------- */

static void W1_split_feed_invariance(void) {
  static uint8_t in[200000];
  size_t n = 0;
  static uint8_t big[70000];
  for (size_t i = 0; i < sizeof big; i++) big[i] = (uint8_t)(i * 7 + 3);
  n += mkframe(in + n, 1, 0, 1, K, "Hello", 5);
  n += mkframe(in + n, 0, 0, 1, K, "Hel", 3);
  n += mkframe(in + n, 1, 0, 9, K, "p", 1);
  n += mkframe(in + n, 1, 0, 0, K, "lo", 2);
  n += mkframe(in + n, 1, 0, 2, K, big, 256);
  n += mkframe(in + n, 1, 0, 2, K, big, sizeof big);
  n += mkframe(in + n, 1, 0, 2, K, "", 0);
  n += mkframe(in + n, 0, 0, 1, K, "\xc3", 1);
  n += mkframe(in + n, 1, 0, 0, K, "\xa9", 1);
  n += mkframe(in + n, 1, 0, 0xA, K, "", 0);
  n += mkframe(in + n, 1, 0, 8, K, "\x03\xe8" "bye", 5);
  n += mkframe(in + n, 1, 0, 1, K, "ignored", 7);
  char log[sizeof(((tc *)0)->log) + 4096];
  CHECK_EQ(run_vec(H2WS_ROLE_SERVER, defaults(), in, n, log, sizeof log), 0);
  CHECK(strstr(log, " begin(1) d:Hello end begin(1) d:Hel ping:p d:lo end begin(2) d:") == log);
  CHECK(strstr(log, " end begin(2) end begin(1) d:\\xc3\\xa9 end pong: close(1000):bye |out:8a0170880203e8") != NULL);
  CHECK(strstr(log, "ignored") == NULL);
}

static void W1_rfc_examples_client(void) {
  static const uint8_t in[] = {
      0x81, 0x05, 'H', 'e', 'l', 'l', 'o',             /* single frame */
      0x01, 0x03, 'H', 'e', 'l', 0x80, 0x02, 'l', 'o', /* fragmented */
      0x89, 0x05, 'H', 'e', 'l', 'l', 'o',             /* ping */
      0x82, 0x7E, 0x01, 0x00};                          /* 256 B header */
  static uint8_t buf[sizeof in + 256];
  memcpy(buf, in, sizeof in);
  memset(buf + sizeof in, 'x', 256);
  h2ws_ws_settings s = *defaults();
  s.auto_pong = 0;
  char log[sizeof(((tc *)0)->log) + 4096];
  CHECK_EQ(run_vec(H2WS_ROLE_CLIENT, &s, buf, sizeof buf, log, sizeof log), 0);
  static const char want[] = " begin(1) d:Hello end begin(1) d:Hello end ping:Hello begin(2) d:xxxx";
  CHECK(strncmp(log, want, strlen(want)) == 0);
  CHECK(strstr(log, "x end |out:") != NULL);
}

static void W1_masked_hello_server(void) {
  static const uint8_t in[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                               0x7f, 0x9f, 0x4d, 0x51, 0x58};
  EXPECT_LOG(H2WS_ROLE_SERVER, defaults(), in, sizeof in, " begin(1) d:Hello end |out:");
}

static void W1_64bit_msb_is_1002(void) {
  static const uint8_t in[] = {0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4};
  EXPECT_LOG(H2WS_ROLE_SERVER, defaults(), in, sizeof in,
             " close(1002): rv=-201 |out:880203ea");
}

/* Random valid conversations (fragments of random sizes, control frames in
 * between, multi-byte UTF-8 cut anywhere, compressed messages sharing one
 * deflate context): every split and pause variant gives the same log. */
static void W1_random_sequences_invariance(void) {
  static uint8_t in[1 << 18], msg[40000], z[50000];
  static const char *const glyphs[] = {"a", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", " "};
  uint32_t seed = 4242;
  for (int round = 0; round < 40; round++) {
    int pmd = round % 2;
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    CHECK(deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    size_t n = 0;
    int msgs = 1 + (int)(tu_rand(&seed) % 6);
    for (int m = 0; m < msgs; m++) {
      int text = tu_rand(&seed) % 2;
      size_t len = 0, want = tu_rand(&seed) % 3 == 0 ? tu_rand(&seed) % 30000 : tu_rand(&seed) % 300;
      while (len < want) {
        const char *g = glyphs[tu_rand(&seed) % 5];
        size_t gl = strlen(g);
        if (!text) { g = "\x00\xff\x80"; gl = 3; }
        memcpy(msg + len, g, gl);
        len += gl;
      }
      const uint8_t *body = msg;
      size_t blen = len;
      int compressed = pmd && tu_rand(&seed) % 3 != 0;
      if (compressed) {
        zs.next_in = msg;
        zs.avail_in = (uInt)len;
        zs.next_out = z;
        zs.avail_out = sizeof z;
        CHECK(deflate(&zs, Z_SYNC_FLUSH) == Z_OK);
        blen = sizeof z - zs.avail_out - 4; /* RFC 7692 §7.2.1: strip the tail */
        body = z;
      }
      size_t off = 0;
      int first = 1;
      do {
        size_t k = blen - off;
        if (tu_rand(&seed) % 2) k = tu_rand(&seed) % (k + 1);
        int fin = off + k == blen;
        n += mkframe(in + n, fin, first && compressed ? 4 : 0,
                     first ? (text ? 1u : 2u) : 0u, K, body + off, k);
        if (tu_rand(&seed) % 3 == 0) n += mkframe(in + n, 1, 0, 9 + tu_rand(&seed) % 2, K, "ctl", 3);
        off += k;
        first = 0;
        if (fin) break;
      } while (1);
    }
    deflateEnd(&zs);
    char log[sizeof(((tc *)0)->log) + 4096];
    CHECK_EQ(run_vec(H2WS_ROLE_SERVER, pmd ? with_pmd() : defaults(), in, n, log, sizeof log), 0);
    CHECK(strstr(log, " begin(") != NULL && strstr(log, " end") != NULL);
    CHECK(strstr(log, "close(") == NULL);
    CHECK(strstr(log, "rv=") == NULL);
  }
}

/* ---- W2: masking direction ---------------------------------------------- */

static void W2_server_rejects_unmasked(void) {
  static const uint8_t in[] = {0x81, 0x05, 'H', 'e', 'l', 'l', 'o'};
  EXPECT_LOG(H2WS_ROLE_SERVER, defaults(), in, sizeof in,
             " close(1002): rv=-201 |out:880203ea");
}

static void W2_client_rejects_masked(void) {
  static const uint8_t in[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                               0x7f, 0x9f, 0x4d, 0x51, 0x58};
  tc t;
  CHECK_EQ(tc_new(&t, H2WS_ROLE_CLIENT, NULL), 0);
  size_t nread;
  CHECK_EQ(h2ws_ws_recv(t.ws, in, sizeof in, &nread, 0), H2WS_ERR_PROTO);
  CHECK_EQ(nread, sizeof in);
  uint8_t out[64];
  size_t n = tc_out(&t, out, sizeof out);
  /* masked Close 1002 with the first deterministic key */
  uint32_t r = 12345;
  uint8_t key[4];
  for (int i = 0; i < 4; i++) key[i] = (uint8_t)tu_rand(&r);
  CHECK_EQ(n, 8);
  CHECK_EQ(out[0], 0x88);
  CHECK_EQ(out[1], 0x82);
  CHECK_MEM(out + 2, key, 4);
  CHECK_EQ(out[6] ^ key[0], 0x03);
  CHECK_EQ(out[7] ^ key[1], 0xea);
  CHECK(strcmp(t.log, " close(1002):") == 0);
  CHECK(h2ws_ws_is_done(t.ws));
  CHECK(!h2ws_ws_want_read(t.ws));
  h2ws_ws_del(t.ws);
}

/* ---- W3: protocol errors ------------------------------------------------ */

static void expect_1002(const uint8_t *in, size_t n, const h2ws_ws_settings *s,
                        const char *prefix) {
  char want[256];
  snprintf(want, sizeof want, "%s close(1002): rv=-201 |out:880203ea", prefix);
  EXPECT_LOG(H2WS_ROLE_SERVER, s, in, n, want);
}

static void W3_unknown_opcodes(void) {
  for (unsigned op = 3; op <= 0xF; op++) {
    if (op >= 8 && op <= 0xA) continue;
    uint8_t in[16];
    size_t n = mkframe(in, 1, 0, op, K, "x", 1);
    expect_1002(in, n, defaults(), "");
    if (tu_failed_checks) return;
  }
}

static void W3_rsv_without_extension(void) {
  for (unsigned rsv = 1; rsv <= 7; rsv++) {
    uint8_t in[16];
    size_t n = mkframe(in, 1, rsv, 1, K, "x", 1);
    expect_1002(in, n, defaults(), "");
    if (tu_failed_checks) return;
    /* with pmd only RSV1 is defined */
    if (rsv != 4) expect_1002(in, n, with_pmd(), "");
    if (tu_failed_checks) return;
  }
}

static void W3_rsv1_only_first_data_frame(void) {
  uint8_t in[64];
  size_t n = mkframe(in, 0, 0, 2, K, "ab", 2);
  n += mkframe(in + n, 1, 4, 0, K, "cd", 2); /* RSV1 on a continuation */
  expect_1002(in, n, with_pmd(), " begin(2) d:ab");
  n = mkframe(in, 1, 4, 9, K, "", 0); /* RSV1 on a ping */
  expect_1002(in, n, with_pmd(), "");
}

static void W3_fragmented_control(void) {
  uint8_t in[16];
  size_t n = mkframe(in, 0, 0, 9, K, "x", 1);
  expect_1002(in, n, defaults(), "");
}

static void W3_control_too_long(void) {
  uint8_t in[200], p[126];
  memset(p, 'a', sizeof p);
  size_t n = mkframe(in, 1, 0, 9, K, p, 126);
  expect_1002(in, n, defaults(), "");
  /* 125 is fine */
  n = mkframe(in, 1, 0, 0xA, K, p, 125);
  tc t;
  CHECK_EQ(tc_new(&t, H2WS_ROLE_SERVER, NULL), 0);
  size_t nread;
  CHECK_EQ(h2ws_ws_recv(t.ws, in, n, &nread, 0), 0);
  CHECK_EQ(nread, n);
  h2ws_ws_del(t.ws);
}

static void W3_continuation_without_start(void) {
  uint8_t in[16];
  size_t n = mkframe(in, 1, 0, 0, K, "x", 1);
  expect_1002(in, n, defaults(), "");
}

static void W3_new_data_inside_fragmented(void) {
  uint8_t in[32];
  size_t n = mkframe(in, 0, 0, 1, K, "a", 1);
  n += mkframe(in + n, 1, 0, 2, K, "b", 1);
  expect_1002(in, n, defaults(), " begin(1) d:a");
}

/* ---- W4: control frames ------------------------------------------------- */

static void W4_control_between_fragments(void) {
  uint8_t in[128];
  size_t n = mkframe(in, 0, 0, 2, K, "ab", 2);
  n += mkframe(in + n, 1, 0, 9, K, "P1", 2);
  n += mkframe(in + n, 0, 0, 0, K, "cd", 2);
  n += mkframe(in + n, 1, 0, 0xA, K, "Q", 1);
  n += mkframe(in + n, 1, 0, 0, K, "ef", 2);
  EXPECT_LOG(H2WS_ROLE_SERVER, defaults(), in, n,
             " begin(2) d:ab ping:P1 d:cd pong:Q d:ef end |out:8a025031");
}

static void W4_auto_pong_same_payload(void) {
  uint8_t in[160], p[125];
  for (int i = 0; i < 125; i++) p[i] = (uint8_t)i;
  size_t n = mkframe(in, 1, 0, 9, K, p, 125);
  tc t;
  CHECK_EQ(tc_new(&t, H2WS_ROLE_SERVER, NULL), 0);
  size_t nread;
  CHECK_EQ(h2ws_ws_recv(t.ws, in, n, &nread, 0), 0);
  uint8_t out[256];
  CHECK_EQ(tc_out(&t, out, sizeof out), 127);
  CHECK_EQ(out[0], 0x8a);
  CHECK_EQ(out[1], 125);
  CHECK_MEM(out + 2, p, 125);
  h2ws_ws_del(t.ws);
  /* auto_pong off: nothing queued, on_ping still fires */
  h2ws_ws_settings s = *defaults();
  s.auto_pong = 0;
  n = mkframe(in, 1, 0, 9, K, p, 2);
  EXPECT_LOG(H2WS_ROLE_SERVER, &s, in, n, " ping:\\x00\\x01 |out:");
}

static void W4_unsolicited_pong_to_on_pong(void) {
  uint8_t in[16];
  size_t n = mkframe(in, 1, 0, 0xA, K, "u", 1);
  EXPECT_LOG(H2WS_ROLE_SERVER, defaults(), in, n, " pong:u |out:");
}

/* ---- W5: UTF-8 ---------------------------------------------------------- */

static void W5_invalid_utf8_fails_fast(void) {
  /* a 1000-byte text frame whose 4th byte is invalid: the failure comes
   * as soon as that byte arrives, long before the frame ends */
  static uint8_t p[1000], in[1100];
  memset(p, 'a', sizeof p);
  p[3] = 0xff;
  size_t n = mkframe(in, 1, 0, 1, K, p, sizeof p);
  tc t;
  CHECK_EQ(tc_new(&t, H2WS_ROLE_SERVER, NULL), 0);
  size_t nread;
  CHECK_EQ(h2ws_ws_recv(t.ws, in, 4 + 8, &nread, 0), H2WS_ERR_BAD_UTF8);
  CHECK(strcmp(t.log, " begin(1) d:aaa close(1007):") == 0);
  h2ws_ws_del(t.ws);
  EXPECT_LOG(H2WS_ROLE_SERVER, defaults(), in, n,
             " begin(1) d:aaa close(1007): rv=-202 |out:880203ef");
}

static void W5_utf8_across_fragments(void) {
  /* U+1F600 split 1+2+1 across three fragments, with a ping inside */
  uint8_t in[128];
  size_t n = mkframe(in, 0, 0, 1, K, "\xf0", 1);
  n += mkframe(in + n, 0, 0, 0, K, "\x9f\x98", 2);
  n += mkframe(in + n, 1, 0, 9, K, "", 0);
  n += mkframe(in + n, 1, 0, 0, K, "\x80!", 2);
  EXPECT_LOG(H2WS_ROLE_SERVER, defaults(), in, n,
             " begin(1) d:\\xf0\\x9f\\x98 ping: d:\\x80! end |out:8a00");
  /* surrogate across a fragment boundary fails at its second byte */
  n = mkframe(in, 0, 0, 1, K, "\xed", 1);
  n += mkframe(in + n, 1, 0, 0, K, "\xa0\x80", 2);
  EXPECT_LOG(H2WS_ROLE_SERVER, defaults(), in, n,
             " begin(1) d:\\xed close(1007): rv=-202 |out:880203ef");
}

static void W5_text_ends_mid_sequence(void) {
  uint8_t in[32];
  size_t n = mkframe(in, 1, 0, 1, K, "ok\xe2\x82", 4);
  EXPECT_LOG(H2WS_ROLE_SERVER, defaults(), in, n,
             " begin(1) d:ok\\xe2\\x82 close(1007): rv=-202 |out:880203ef");
}

static void W5_binary_not_checked(void) {
  uint8_t in[32];
  size_t n = mkframe(in, 1, 0, 2, K, "\xff\xfe", 2);
  EXPECT_LOG(H2WS_ROLE_SERVER, defaults(), in, n, " begin(2) d:\\xff\\xfe end |out:");
}

/* ---- W6: close handshake ------------------------------------------------ */

static void W6_close_code_is_valid(void) {
  static const struct { uint16_t code; int ok; } t[] = {
      {0, 0},    {999, 0},  {1000, 1}, {1001, 1}, {1002, 1}, {1003, 1},
      {1004, 0}, {1005, 0}, {1006, 0}, {1007, 1}, {1011, 1}, {1014, 1},
      {1015, 0}, {1016, 0}, {2999, 0}, {3000, 1}, {4999, 1}, {5000, 0},
      {65535, 0}};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    CHECK_EQ(h2ws_close_code_is_valid(t[i].code), t[i].ok);
}

static void W6_close_echoes_code(void) {
  uint8_t in[32];
  size_t n = mkframe(in, 1, 0, 8, K, "\x0f\xa0why", 5); /* 4000 "why" */
  EXPECT_LOG(H2WS_ROLE_SERVER, defaults(), in, n, " close(4000):why |out:88020fa0");
  n = mkframe(in, 1, 0, 8, K, "", 0);
  EXPECT_LOG(H2WS_ROLE_SERVER, defaults(), in, n, " close(1005): |out:8800");
}

static void W6_close_invalid_payloads(void) {
  static const uint16_t bad[] = {0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000};
  uint8_t in[32];
  size_t n = mkframe(in, 1, 0, 8, K, "\x03", 1);
  expect_1002(in, n, defaults(), "");
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    uint8_t p[2] = {(uint8_t)(bad[i] >> 8), (uint8_t)bad[i]};
    n = mkframe(in, 1, 0, 8, K, p, 2);
    expect_1002(in, n, defaults(), "");
    if (tu_failed_checks) return;
  }
  n = mkframe(in, 1, 0, 8, K, "\x03\xe8\xc0\xaf", 4); /* reason not UTF-8 */
  expect_1002(in, n, defaults(), "");
}

static void W6_initiator_handshake(void) {
  tc t;
  CHECK_EQ(tc_new(&t, H2WS_ROLE_SERVER, NULL), 0);
  CHECK_EQ(h2ws_ws_submit_close(t.ws, 1001, (const uint8_t *)"bye", 3, 100), 0);
  uint8_t out[64];
  CHECK_EQ(tc_out(&t, out, sizeof out), 7);
  CHECK_MEM(out, "\x88\x05\x03\xe9" "bye", 7);
  /* nothing after a Close */
  CHECK_EQ(h2ws_ws_submit_msg(t.ws, H2WS_OP_TEXT, (const uint8_t *)"x", 1), H2WS_ERR_INVALID_STATE);
  CHECK_EQ(h2ws_ws_submit_ping(t.ws, NULL, 0), H2WS_ERR_INVALID_STATE);
  CHECK_EQ(h2ws_ws_submit_close(t.ws, 1000, NULL, 0, 0), H2WS_ERR_INVALID_STATE);
  CHECK(!h2ws_ws_is_done(t.ws));
  CHECK_EQ(h2ws_ws_get_expiry(t.ws), 5100);
  /* data still delivered until the peer's Close; a ping is not answered */
  uint8_t in[64];
  size_t n = mkframe(in, 1, 0, 2, K, "d", 1);
  n += mkframe(in + n, 1, 0, 9, K, "p", 1);
  n += mkframe(in + n, 1, 0, 8, K, "\x03\xe9", 2);
  n += mkframe(in + n, 1, 0, 2, K, "late", 4);
  size_t nread;
  CHECK_EQ(h2ws_ws_recv(t.ws, in, n, &nread, 0), 0);
  CHECK_EQ(nread, n);
  CHECK(strcmp(t.log, " begin(2) d:d end ping:p close(1001):") == 0);
  CHECK_EQ(tc_out(&t, out, sizeof out), 0);
  CHECK(h2ws_ws_is_done(t.ws));
  CHECK_EQ(h2ws_ws_get_expiry(t.ws), H2WS_NO_EXPIRY);
  h2ws_ws_stats st;
  h2ws_ws_get_stats(t.ws, &st);
  CHECK_EQ(st.close_code_sent, 1001);
  CHECK_EQ(st.close_code_received, 1001);
  CHECK_EQ(st.msgs_in, 1);
  /* later input is discarded */
  CHECK_EQ(h2ws_ws_recv(t.ws, in, n, &nread, 0), 0);
  CHECK_EQ(nread, n);
  CHECK_EQ(t.closes, 1);
  h2ws_ws_del(t.ws);
}

static void W6_submit_close_arguments(void) {
  tc t;
  CHECK_EQ(tc_new(&t, H2WS_ROLE_SERVER, NULL), 0);
  CHECK_EQ(h2ws_ws_submit_close(t.ws, 1005, NULL, 0, 0), H2WS_ERR_INVALID_ARGUMENT);
  CHECK_EQ(h2ws_ws_submit_close(t.ws, 1006, NULL, 0, 0), H2WS_ERR_INVALID_ARGUMENT);
  uint8_t r[124];
  memset(r, 'r', sizeof r);
  CHECK_EQ(h2ws_ws_submit_close(t.ws, 1000, r, 124, 0), H2WS_ERR_INVALID_ARGUMENT);
  CHECK_EQ(h2ws_ws_submit_close(t.ws, 1000, (const uint8_t *)"\xff", 1, 0), H2WS_ERR_INVALID_ARGUMENT);
  CHECK_EQ(h2ws_ws_submit_close(t.ws, 0, NULL, 0, 0), 0);
  uint8_t out[8];
  CHECK_EQ(tc_out(&t, out, sizeof out), 2);
  CHECK_MEM(out, "\x88\x00", 2);
  h2ws_ws_del(t.ws);
}

static void W6_eof_and_abort_1006(void) {
  tc t;
  CHECK_EQ(tc_new(&t, H2WS_ROLE_SERVER, NULL), 0);
  h2ws_ws_recv_eof(t.ws, 0);
  h2ws_ws_recv_eof(t.ws, 0);
  h2ws_ws_abort(t.ws);
  CHECK(strcmp(t.log, " close(1006):") == 0);
  CHECK(!h2ws_ws_want_read(t.ws));
  CHECK(h2ws_ws_is_done(t.ws));
  h2ws_ws_del(t.ws);
  CHECK_EQ(tc_new(&t, H2WS_ROLE_SERVER, NULL), 0);
  CHECK_EQ(h2ws_ws_submit_ping(t.ws, NULL, 0), 0);
  CHECK_EQ(h2ws_ws_output_len(t.ws), 2);
  h2ws_ws_abort(t.ws);
  CHECK_EQ(h2ws_ws_output_len(t.ws), 0);
  CHECK(strcmp(t.log, " close(1006):") == 0);
  h2ws_ws_del(t.ws);
  /* eof after the closing handshake: no second on_close */
  CHECK_EQ(tc_new(&t, H2WS_ROLE_SERVER, NULL), 0);
  uint8_t in[16];
  size_t n = mkframe(in, 1, 0, 8, K, "\x03\xe8", 2), nread;
  CHECK_EQ(h2ws_ws_recv(t.ws, in, n, &nread, 0), 0);
  h2ws_ws_recv_eof(t.ws, 0);
  CHECK(strcmp(t.log, " close(1000):") == 0);
  h2ws_ws_del(t.ws);
}

static void W6_W7_closing_timeout(void) {
  tc t;
  h2ws_ws_settings s = *defaults();
  s.close_timeout_ms = 250;
  CHECK_EQ(tc_new(&t, H2WS_ROLE_CLIENT, &s), 0);
  CHECK_EQ(h2ws_ws_get_expiry(t.ws), H2WS_NO_EXPIRY);
  CHECK_EQ(h2ws_ws_submit_close(t.ws, 1000, NULL, 0, 1000), 0);
  CHECK_EQ(h2ws_ws_get_expiry(t.ws), 1250);
  CHECK_EQ(h2ws_ws_handle_expiry(t.ws, 1249), 0);
  CHECK_EQ(t.closes, 0);
  CHECK_EQ(h2ws_ws_handle_expiry(t.ws, 1250), 0);
  CHECK(strcmp(t.log, " close(1006):") == 0);
  CHECK(h2ws_ws_is_done(t.ws));
  CHECK_EQ(h2ws_ws_get_expiry(t.ws), H2WS_NO_EXPIRY);
  CHECK_EQ(h2ws_ws_handle_expiry(t.ws, 5000), 0);
  CHECK_EQ(t.closes, 1);
  h2ws_ws_del(t.ws);
}

/* ---- W7: limits --------------------------------------------------------- */

static void W7_max_frame_size(void) {
  h2ws_ws_settings s = *defaults();
  s.max_frame_size = 10;
  uint8_t in[64];
  size_t n = mkframe(in, 1, 0, 2, K, "0123456789", 10);
  n += mkframe(in + n, 1, 0, 2, K, "0123456789A", 11);
  EXPECT_LOG(H2WS_ROLE_SERVER, &s, in, n,
             " begin(2) d:0123456789 end close(1009): rv=-203 |out:880203f1");
}

static void W7_max_message_size(void) {
  h2ws_ws_settings s = *defaults();
  s.max_message_size = 5;
  uint8_t in[64];
  size_t n = mkframe(in, 0, 0, 1, K, "abc", 3);
  n += mkframe(in + n, 0, 0, 0, K, "de", 2);
  n += mkframe(in + n, 1, 0, 0, K, "f", 1);
  EXPECT_LOG(H2WS_ROLE_SERVER, &s, in, n,
             " begin(1) d:abcde close(1009): rv=-203 |out:880203f1");
}

static void W7_max_output_and_reserve(void) {
  h2ws_ws_settings s = *defaults();
  s.max_output = 100;
  tc t;
  CHECK_EQ(tc_new(&t, H2WS_ROLE_SERVER, &s), 0);
  uint8_t p[128] = {0};
  CHECK_EQ(h2ws_ws_submit_msg(t.ws, H2WS_OP_BINARY, p, 99), H2WS_ERR_BUFFER_FULL);
  CHECK_EQ(h2ws_ws_submit_msg(t.ws, H2WS_OP_BINARY, p, 90), 0);
  CHECK_EQ(h2ws_ws_submit_msg(t.ws, H2WS_OP_BINARY, p, 10), H2WS_ERR_BUFFER_FULL);
  /* control frames use the reserve */
  CHECK_EQ(h2ws_ws_submit_ping(t.ws, p, 125), 0);
  CHECK_EQ(h2ws_ws_submit_close(t.ws, 1000, p, 100, 0), 0);
  CHECK_EQ(h2ws_ws_output_len(t.ws), 92 + 127 + 104);
  h2ws_ws_del(t.ws);
}

static int writable_count;
static void on_writable_cb(h2ws_ws *ws, void *ud) {
  (void)ud;
  writable_count++;
  /* submitting from the callback is allowed */
  h2ws_ws_submit_msg(ws, H2WS_OP_BINARY, (const uint8_t *)"w", 1);
}

static void W7_on_writable_after_full(void) {
  h2ws_ws_settings s = *defaults();
  s.max_output = 64;
  h2ws_ws_callbacks cb = tc_cbs;
  cb.on_writable = on_writable_cb;
  h2ws_ws *ws;
  tc t;
  memset(&t, 0, sizeof t);
  CHECK_EQ(h2ws_ws_new(&ws, H2WS_ROLE_SERVER, &cb, &s, NULL, &t), 0);
  uint8_t p[60] = {0};
  CHECK_EQ(h2ws_ws_submit_msg(ws, H2WS_OP_BINARY, p, 60), 0);
  CHECK_EQ(h2ws_ws_submit_msg(ws, H2WS_OP_BINARY, p, 10), H2WS_ERR_BUFFER_FULL);
  writable_count = 0;
  const uint8_t *d;
  size_t n;
  CHECK_EQ(h2ws_ws_send(ws, &d, &n, 0), 0);
  CHECK_EQ(n, 62);
  h2ws_ws_send_consumed(ws, 10);
  CHECK_EQ(writable_count, 0);
  h2ws_ws_send_consumed(ws, 52);
  CHECK_EQ(writable_count, 1);
  CHECK_EQ(h2ws_ws_output_len(ws), 3);
  h2ws_ws_del(ws);
}

/* A pause on the last data chunk leaves on_msg_end owed: the engine
 * reports the last byte unconsumed, so re-feeding only the unconsumed rest
 * resumes it (the byte is not delivered twice); an empty feed also does. */
static void W7_pause_owed_end_holds_back_a_byte(void) {
  uint8_t in[32];
  size_t n = mkframe(in, 1, 0, 1, K, "abc", 3), nread;
  for (int empty = 0; empty < 2; empty++) {
    tc t;
    CHECK_EQ(tc_new(&t, H2WS_ROLE_SERVER, NULL), 0);
    t.pause = 1;
    CHECK_EQ(h2ws_ws_recv(t.ws, in, n, &nread, 0), H2WS_ERR_PAUSE); /* begin */
    CHECK_EQ(nread, 6);
    CHECK_EQ(h2ws_ws_recv(t.ws, in + 6, n - 6, &nread, 0), H2WS_ERR_PAUSE); /* data */
    CHECK_EQ(nread, 2);
    CHECK(strcmp(t.log, " begin(1) d:abc") == 0);
    if (empty) {
      /* resuming with the held-back byte and with nothing both work */
      CHECK_EQ(h2ws_ws_recv(t.ws, in + 8, 1, &nread, 0), H2WS_ERR_PAUSE);
      CHECK_EQ(nread, 1);
    } else {
      t.pause = 0;
      CHECK_EQ(h2ws_ws_recv(t.ws, in + 8, 1, &nread, 0), 0);
      CHECK_EQ(nread, 1);
    }
    CHECK(strcmp(t.log, " begin(1) d:abc end") == 0);
    t.pause = 0;
    CHECK_EQ(h2ws_ws_recv(t.ws, NULL, 0, &nread, 0), 0);
    CHECK(strcmp(t.log, " begin(1) d:abc end") == 0);
    h2ws_ws_del(t.ws);
  }
  /* whole-message mode, zero-length final frame: same */
  h2ws_ws_settings s = *defaults();
  s.whole_messages = 1;
  tc t;
  CHECK_EQ(tc_new(&t, H2WS_ROLE_SERVER, &s), 0);
  t.pause = 1;
  n = mkframe(in, 0, 0, 2, K, "xy", 2);
  n += mkframe(in + n, 1, 0, 9, K, "", 0);
  size_t cut = n;
  n += mkframe(in + n, 1, 0, 0, K, "", 0);
  CHECK_EQ(h2ws_ws_recv(t.ws, in, n, &nread, 0), H2WS_ERR_PAUSE); /* ping */
  CHECK_EQ(nread, cut);
  t.pause = 0;
  CHECK_EQ(h2ws_ws_recv(t.ws, in + cut, n - cut, &nread, 0), 0);
  CHECK_EQ(nread, n - cut);
  CHECK(strcmp(t.log, " ping: msg(2,2):xy") == 0);
  h2ws_ws_del(t.ws);
}

/* ---- send path ---------------------------------------------------------- */

static void W1_send_minimal_lengths_and_masking(void) {
  static uint8_t p[70000];
  for (size_t i = 0; i < sizeof p; i++) p[i] = (uint8_t)i;
  static const size_t lens[] = {0, 125, 126, 65535, 65536};
  for (size_t i = 0; i < 5; i++) {
    tc t;
    CHECK_EQ(tc_new(&t, H2WS_ROLE_CLIENT, NULL), 0);
    CHECK_EQ(h2ws_ws_submit_msg(t.ws, H2WS_OP_BINARY, p, lens[i]), 0);
    static uint8_t out[70100];
    size_t n = tc_out(&t, out, sizeof out);
    uint32_t r = 12345;
    uint8_t key[4];
    for (int k = 0; k < 4; k++) key[k] = (uint8_t)tu_rand(&r);
    static uint8_t want[70100];
    size_t wn = mkframe(want, 1, 0, 2, key, p, lens[i]);
    CHECK_EQ(n, wn);
    CHECK_MEM(out, want, n);
    h2ws_ws_del(t.ws);
  }
}

static void W1_send_fragments_rules(void) {
  tc t;
  CHECK_EQ(tc_new(&t, H2WS_ROLE_SERVER, NULL), 0);
  CHECK_EQ(h2ws_ws_submit_fragment(t.ws, H2WS_OP_CONT, 1, NULL, 0), H2WS_ERR_INVALID_STATE);
  CHECK_EQ(h2ws_ws_submit_fragment(t.ws, H2WS_OP_TEXT, 0, (const uint8_t *)"He", 2), 0);
  CHECK_EQ(h2ws_ws_submit_msg(t.ws, H2WS_OP_TEXT, (const uint8_t *)"x", 1), H2WS_ERR_INVALID_STATE);
  CHECK_EQ(h2ws_ws_submit_fragment(t.ws, H2WS_OP_TEXT, 0, (const uint8_t *)"x", 1), H2WS_ERR_INVALID_STATE);
  CHECK_EQ(h2ws_ws_submit_ping(t.ws, (const uint8_t *)"p", 1), 0);
  CHECK_EQ(h2ws_ws_submit_fragment(t.ws, H2WS_OP_CONT, 1, (const uint8_t *)"y", 1), 0);
  uint8_t out[64];
  CHECK_EQ(tc_out(&t, out, sizeof out), 10);
  CHECK_MEM(out, "\x01\x02He\x89\x01p\x80\x01y", 10);
  CHECK_EQ(h2ws_ws_submit_msg(t.ws, 3, (const uint8_t *)"x", 1), H2WS_ERR_INVALID_ARGUMENT);
  CHECK_EQ(h2ws_ws_submit_ping(t.ws, out, 126), H2WS_ERR_INVALID_ARGUMENT);
  h2ws_ws_del(t.ws);
}

static void new_rejects_bad_arguments(void) {
  h2ws_ws *ws = NULL;
  h2ws_ws_callbacks cb = tc_cbs;
  cb.random = NULL;
  CHECK_EQ(h2ws_ws_new(&ws, H2WS_ROLE_CLIENT, &cb, NULL, NULL, NULL), H2WS_ERR_INVALID_ARGUMENT);
  CHECK(ws == NULL);
  h2ws_ws_settings s = *with_pmd();
  s.pmd.client_max_window_bits = 16;
  CHECK_EQ(h2ws_ws_new(&ws, H2WS_ROLE_SERVER, &cb, &s, NULL, NULL), H2WS_ERR_INVALID_ARGUMENT);
  s.pmd.client_max_window_bits = 7;
  CHECK_EQ(h2ws_ws_new(&ws, H2WS_ROLE_SERVER, &cb, &s, NULL, NULL), H2WS_ERR_INVALID_ARGUMENT);
  CHECK_EQ(h2ws_ws_new(&ws, H2WS_ROLE_SERVER, NULL, NULL, NULL, NULL), 0);
  CHECK_EQ(h2ws_ws_get_role(ws), H2WS_ROLE_SERVER);
  CHECK(h2ws_ws_want_read(ws));
  CHECK(!h2ws_ws_want_write(ws));
  int x;
  h2ws_ws_set_user_data(ws, &x);
  CHECK(h2ws_ws_get_user_data(ws) == &x);
  h2ws_ws_del(ws);
  h2ws_ws_del(NULL);
}

static void reentrancy_rejected(void);

/* ---- data source corner cases ------------------------------------------- */

static int src_mode;
static int src_submit_rv;
static int src_cb(h2ws_ws *ws, uint8_t *buf, size_t buflen, size_t *pn, int *peof, void *sd) {
  (void)sd;
  if (src_mode == 0) return -5; /* failure */
  if (src_mode == 1) { *pn = 0; *peof = 0; return 0; } /* nothing yet */
  src_submit_rv = h2ws_ws_submit_ping(ws, NULL, 0);
  memcpy(buf, "src", buflen < 3 ? buflen : 3);
  *pn = 3;
  *peof = 1;
  return 0;
}

static void source_corner_cases(void) {
  h2ws_data_source ds = {src_cb, NULL};
  const uint8_t *d;
  size_t n;
  tc t;
  /* a failing source is fatal for the send path */
  CHECK_EQ(tc_new(&t, H2WS_ROLE_SERVER, NULL), 0);
  CHECK_EQ(h2ws_ws_submit_source(t.ws, 5, &ds), H2WS_ERR_INVALID_ARGUMENT);
  src_mode = 0;
  CHECK_EQ(h2ws_ws_submit_source(t.ws, H2WS_OP_BINARY, &ds), 0);
  CHECK_EQ(h2ws_ws_send(t.ws, &d, &n, 0), H2WS_ERR_CALLBACK_FAILURE);
  CHECK_EQ(n, 0);
  h2ws_ws_del(t.ws);
  /* zero bytes without eof: nothing sent, asked again next time; no
   * submits from inside read() */
  CHECK_EQ(tc_new(&t, H2WS_ROLE_SERVER, NULL), 0);
  src_mode = 1;
  CHECK_EQ(h2ws_ws_submit_source(t.ws, H2WS_OP_TEXT, &ds), 0);
  CHECK_EQ(h2ws_ws_send(t.ws, &d, &n, 0), 0);
  CHECK_EQ(n, 0);
  CHECK(h2ws_ws_want_write(t.ws));
  src_mode = 2;
  src_submit_rv = 0;
  CHECK_EQ(h2ws_ws_send(t.ws, &d, &n, 0), 0);
  CHECK_EQ(src_submit_rv, H2WS_ERR_INVALID_STATE);
  CHECK_EQ(n, 5);
  CHECK_MEM(d, "\x81\x03src", 5);
  h2ws_ws_send_consumed(t.ws, n);
  CHECK(!h2ws_ws_want_write(t.ws));
  /* a Close abandons an unfinished source */
  src_mode = 1;
  CHECK_EQ(h2ws_ws_submit_source(t.ws, H2WS_OP_TEXT, &ds), 0);
  CHECK_EQ(h2ws_ws_submit_close(t.ws, 1000, NULL, 0, 0), 0);
  uint8_t out[16];
  CHECK_EQ(tc_out(&t, out, sizeof out), 4);
  CHECK_MEM(out, "\x88\x02\x03\xe8", 4);
  CHECK(!h2ws_ws_want_write(t.ws));
  h2ws_ws_del(t.ws);
}

/* ---- whole-message mode ------------------------------------------------- */

static void whole_messages_mode(void) {
  h2ws_ws_settings s = *defaults();
  s.whole_messages = 1;
  uint8_t in[128];
  size_t n = mkframe(in, 0, 0, 1, K, "Hel", 3);
  n += mkframe(in + n, 1, 0, 9, K, "", 0);
  n += mkframe(in + n, 1, 0, 0, K, "lo", 2);
  n += mkframe(in + n, 1, 0, 2, K, "", 0);
  EXPECT_LOG(H2WS_ROLE_SERVER, &s, in, n, " ping: msg(1,5):Hello msg(2,0): |out:8a00");
}

/* ---- D2 / D3: permessage-deflate ---------------------------------------- */

static void D2_compressed_receive(void) {
  /* RFC 7692 §7.2.3.1: "Hello" compressed, unmasked from a server */
  static const uint8_t in1[] = {0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
  EXPECT_LOG(H2WS_ROLE_CLIENT, with_pmd(), in1, sizeof in1, " begin(1,z) d:Hello end |out:");
  /* §7.2.3.2 fragmented */
  static const uint8_t in2[] = {0x41, 0x03, 0xf2, 0x48, 0xcd, 0x80, 0x04, 0xc9, 0xc9, 0x07, 0x00};
  EXPECT_LOG(H2WS_ROLE_CLIENT, with_pmd(), in2, sizeof in2, " begin(1,z) d:Hello end |out:");
  /* §7.2.3.4 a block with BFINAL set */
  static const uint8_t in3[] = {0xc1, 0x08, 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00};
  EXPECT_LOG(H2WS_ROLE_CLIENT, with_pmd(), in3, sizeof in3, " begin(1,z) d:Hello end |out:");
  /* uncompressed message on a pmd connection, masked, server side */
  uint8_t in[32];
  size_t n = mkframe(in, 1, 0, 1, K, "plain", 5);
  EXPECT_LOG(H2WS_ROLE_SERVER, with_pmd(), in, n, " begin(1) d:plain end |out:");
}

static void D2_compressed_large_masked(void) {
  static uint8_t p[300000], z[400000], in[400000];
  for (size_t i = 0; i < sizeof p; i++) p[i] = (uint8_t)("abcdefgh"[i % 8] + (i / 1000) % 5);
  size_t zn = zcompress(p, sizeof p, z, sizeof z);
  CHECK(zn > 0);
  size_t half = zn / 2;
  size_t n = mkframe(in, 0, 4, 2, K, z, half);
  n += mkframe(in + n, 1, 0, 9, K, "x", 1);
  n += mkframe(in + n, 1, 0, 0, K, z + half, zn - half);
  char log[sizeof(((tc *)0)->log) + 4096];
  CHECK_EQ(run_vec(H2WS_ROLE_SERVER, with_pmd(), in, n, log, sizeof log), 0);
  CHECK(strncmp(log, " begin(2,z) d:abcdefgh", 22) == 0);
  CHECK(strstr(log, " end |out:8a0178") != NULL);
  /* the whole payload arrives intact in whole-message mode */
  h2ws_ws_settings s = *with_pmd();
  s.whole_messages = 1;
  tc t;
  CHECK_EQ(tc_new(&t, H2WS_ROLE_SERVER, &s), 0);
  size_t nread;
  CHECK_EQ(h2ws_ws_recv(t.ws, in, n, &nread, 0), 0);
  CHECK(strstr(t.log, "msg(2,300000):abcdefgh") != NULL);
  h2ws_ws_del(t.ws);
}

static void D2_bad_compressed_data_1007(void) {
  uint8_t in[16];
  size_t n = mkframe(in, 1, 4, 1, K, "\xff\xff\xff\xff", 4);
  EXPECT_LOG(H2WS_ROLE_SERVER, with_pmd(), in, n,
             " begin(1,z) close(1007): rv=-204 |out:880203ef");
}

static void D2_send_rsv1_first_only(void) {
  tc t;
  CHECK_EQ(tc_new(&t, H2WS_ROLE_SERVER, with_pmd()), 0);
  static uint8_t big[1000];
  memset(big, 'A', sizeof big);
  CHECK_EQ(h2ws_ws_submit_msg(t.ws, H2WS_OP_TEXT, big, sizeof big), 0);
  CHECK_EQ(h2ws_ws_submit_msg(t.ws, H2WS_OP_TEXT, (const uint8_t *)"tiny", 4), 0);
  CHECK_EQ(h2ws_ws_submit_ping(t.ws, big, 100), 0);
  CHECK_EQ(h2ws_ws_submit_fragment(t.ws, H2WS_OP_BINARY, 0, big, 500), 0);
  CHECK_EQ(h2ws_ws_submit_fragment(t.ws, H2WS_OP_CONT, 1, big, 500), 0);
  static uint8_t out[4096];
  size_t n = tc_out(&t, out, sizeof out);
  h2ws_ws_del(t.ws);
  /* walk the frames: compressed (RSV1) first, small one plain, ping never
   * compressed, fragmented message with RSV1 on the first frame only */
  size_t pos = 0;
  uint8_t firsts[5];
  int i = 0;
  while (pos < n && i < 5) {
    firsts[i++] = out[pos];
    size_t len = out[pos + 1] & 0x7f, h = 2;
    if (len == 126) { len = (size_t)out[pos + 2] << 8 | out[pos + 3]; h = 4; }
    if (i == 1) CHECK(len < 100);
    pos += h + len;
  }
  CHECK_EQ(i, 5);
  CHECK_EQ(pos, n);
  CHECK_EQ(firsts[0], 0xC1);
  CHECK_EQ(firsts[1], 0x81);
  CHECK_EQ(firsts[2], 0x89);
  CHECK_EQ(firsts[3], 0x42);
  CHECK_EQ(firsts[4], 0x80);
  /* and a pmd client decodes the same back */
  tc c;
  CHECK_EQ(tc_new(&c, H2WS_ROLE_CLIENT, with_pmd()), 0);
  size_t nread;
  CHECK_EQ(h2ws_ws_recv(c.ws, out, n, &nread, 0), 0);
  CHECK(strstr(c.log, " begin(1,z) d:AAAA") == c.log);
  CHECK(strstr(c.log, "A end begin(1) d:tiny end ping:AAAA") != NULL);
  CHECK(strstr(c.log, " begin(2,z) d:AAAA") != NULL);
  CHECK_EQ(c.data_total, 2004);
  h2ws_ws_del(c.ws);
}

static void D3_zip_bomb_bounded(void) {
  /* 8 MiB of zeros compress to ~8 KiB; the limit is 64 KiB */
  size_t plen = 8u << 20;
  uint8_t *p = calloc(1, plen), *z = malloc(1 << 16), *in = malloc((1 << 16) + 16);
  CHECK(p && z && in);
  size_t zn = zcompress(p, plen, z, 1 << 16);
  CHECK(zn > 0 && zn < 65000);
  size_t n = mkframe(in, 1, 4, 2, NULL, z, zn);
  h2ws_ws_settings s = *with_pmd();
  s.max_message_size = 65536;
  char log[sizeof(((tc *)0)->log) + 4096];
  int rv = run_vec(H2WS_ROLE_CLIENT, &s, in, n, log, sizeof log);
  tc t;
  CHECK_EQ(tc_new(&t, H2WS_ROLE_CLIENT, &s), 0);
  size_t nread;
  int rrv = h2ws_ws_recv(t.ws, in, n, &nread, 0);
  size_t total = t.data_total;
  h2ws_ws_del(t.ws);
  free(p);
  free(z);
  free(in);
  CHECK_EQ(rv, 0);
  CHECK_EQ(rrv, H2WS_ERR_MSG_TOO_BIG);
  CHECK_EQ(total, 65536);
  CHECK(strstr(log, " close(1009): rv=-203 |out:") != NULL);
}


/* The frame cap is derived from the message limit: a compressed frame may
 * carry the limit's deflate bound on the wire, no more (1009 at its
 * header, before any inflation); control frames are not messages. */
static void W7_D3_frame_cap_from_message_limit(void) {
  h2ws_ws_settings s = *with_pmd();
  s.max_message_size = 1000;
  /* 1000 + 1000/8 + 1000/64 + 1024 = 2164 bytes of wire are allowed */
  static uint8_t z[2200], in[2300];
  memset(z, 0, sizeof z);
  size_t n = mkframe(in, 1, 4, 2, K, z, 2165);
  EXPECT_LOG(H2WS_ROLE_SERVER, &s, in, n, " close(1009): rv=-203 |out:880203f1");
  /* the same total split over two frames of one message: the first holds
   * 220 empty stored blocks (valid deflate, inflating to nothing) */
  static uint8_t empty[1100];
  for (size_t i = 0; i < sizeof empty; i += 5)
    memcpy(empty + i, "\x00\x00\x00\xff\xff", 5);
  n = mkframe(in, 0, 4, 2, K, empty, 1100);
  n += mkframe(in + n, 1, 0, 0, K, z, 1065);
  EXPECT_LOG(H2WS_ROLE_SERVER, &s, in, n,
             " begin(2,z) close(1009): rv=-203 |out:880203f1");
  /* uncompressed: exactly the limit */
  s.pmd.enabled = 0;
  n = mkframe(in, 1, 0, 2, K, z, 1001);
  EXPECT_LOG(H2WS_ROLE_SERVER, &s, in, n, " close(1009): rv=-203 |out:880203f1");
  /* a 125-byte ping is fine with a 5-byte message limit ... */
  s.max_message_size = 5;
  n = mkframe(in, 1, 0, 9, K, z, 125);
  tc t;
  CHECK_EQ(tc_new(&t, H2WS_ROLE_SERVER, &s), 0);
  size_t nread;
  CHECK_EQ(h2ws_ws_recv(t.ws, in, n, &nread, 0), 0);
  CHECK_EQ(t.closes, 0);
  h2ws_ws_del(t.ws);
  /* ... and an explicit max_frame_size still caps control frames */
  s.max_frame_size = 10;
  EXPECT_LOG(H2WS_ROLE_SERVER, &s, in, n, " close(1009): rv=-203 |out:880203f1");
}

/* ---- reentrancy --------------------------------------------------------- */

static int reenter_rv;
static int on_begin_reenter(h2ws_ws *ws, h2ws_opcode op, int c, void *ud) {
  (void)op; (void)c; (void)ud;
  size_t nr;
  const uint8_t *d;
  size_t dl;
  reenter_rv = h2ws_ws_recv(ws, (const uint8_t *)"x", 1, &nr, 0) == H2WS_ERR_INVALID_STATE &&
               h2ws_ws_send(ws, &d, &dl, 0) == H2WS_ERR_INVALID_STATE &&
               h2ws_ws_submit_msg(ws, H2WS_OP_TEXT, (const uint8_t *)"echo", 4) == 0;
  return 0;
}

static void reentrancy_rejected(void) {
  h2ws_ws_callbacks cb = tc_cbs;
  cb.on_msg_begin = on_begin_reenter;
  h2ws_ws *ws;
  tc t;
  memset(&t, 0, sizeof t);
  CHECK_EQ(h2ws_ws_new(&ws, H2WS_ROLE_SERVER, &cb, NULL, NULL, &t), 0);
  uint8_t in[16];
  size_t n = mkframe(in, 1, 0, 1, K, "hi", 2), nread;
  reenter_rv = 0;
  CHECK_EQ(h2ws_ws_recv(ws, in, n, &nread, 0), 0);
  CHECK_EQ(reenter_rv, 1);
  CHECK_EQ(h2ws_ws_output_len(ws), 6);
  h2ws_ws_del(ws);
}

static int fail_cb(h2ws_ws *ws, const uint8_t *d, size_t n, void *ud) {
  (void)ws; (void)d; (void)n; (void)ud;
  return -1;
}

static void callback_failure_is_fatal(void) {
  h2ws_ws_callbacks cb = tc_cbs;
  cb.on_msg_data = fail_cb;
  h2ws_ws *ws;
  tc t;
  memset(&t, 0, sizeof t);
  CHECK_EQ(h2ws_ws_new(&ws, H2WS_ROLE_SERVER, &cb, NULL, NULL, &t), 0);
  uint8_t in[16];
  size_t n = mkframe(in, 1, 0, 1, K, "hi", 2), nread;
  CHECK_EQ(h2ws_ws_recv(ws, in, n, &nread, 0), H2WS_ERR_CALLBACK_FAILURE);
  CHECK_EQ(h2ws_ws_recv(ws, in, n, &nread, 0), H2WS_ERR_CALLBACK_FAILURE);
  h2ws_ws_del(ws);
}

int main(void) {
  static const tu_case cases[] = {
      {"W1_split_feed_invariance", W1_split_feed_invariance},
      {"W1_random_sequences_invariance", W1_random_sequences_invariance},
      {"W1_rfc_examples_client", W1_rfc_examples_client},
      {"W1_masked_hello_server", W1_masked_hello_server},
      {"W1_64bit_msb_is_1002", W1_64bit_msb_is_1002},
      {"W1_send_minimal_lengths_and_masking", W1_send_minimal_lengths_and_masking},
      {"W1_send_fragments_rules", W1_send_fragments_rules},
      {"W2_server_rejects_unmasked", W2_server_rejects_unmasked},
      {"W2_client_rejects_masked", W2_client_rejects_masked},
      {"W3_unknown_opcodes", W3_unknown_opcodes},
      {"W3_rsv_without_extension", W3_rsv_without_extension},
      {"W3_rsv1_only_first_data_frame", W3_rsv1_only_first_data_frame},
      {"W3_fragmented_control", W3_fragmented_control},
      {"W3_control_too_long", W3_control_too_long},
      {"W3_continuation_without_start", W3_continuation_without_start},
      {"W3_new_data_inside_fragmented", W3_new_data_inside_fragmented},
      {"W4_control_between_fragments", W4_control_between_fragments},
      {"W4_auto_pong_same_payload", W4_auto_pong_same_payload},
      {"W4_unsolicited_pong_to_on_pong", W4_unsolicited_pong_to_on_pong},
      {"W5_invalid_utf8_fails_fast", W5_invalid_utf8_fails_fast},
      {"W5_utf8_across_fragments", W5_utf8_across_fragments},
      {"W5_text_ends_mid_sequence", W5_text_ends_mid_sequence},
      {"W5_binary_not_checked", W5_binary_not_checked},
      {"W6_close_code_is_valid", W6_close_code_is_valid},
      {"W6_close_echoes_code", W6_close_echoes_code},
      {"W6_close_invalid_payloads", W6_close_invalid_payloads},
      {"W6_initiator_handshake", W6_initiator_handshake},
      {"W6_submit_close_arguments", W6_submit_close_arguments},
      {"W6_eof_and_abort_1006", W6_eof_and_abort_1006},
      {"W6_W7_closing_timeout", W6_W7_closing_timeout},
      {"W7_max_frame_size", W7_max_frame_size},
      {"W7_max_message_size", W7_max_message_size},
      {"W7_max_output_and_reserve", W7_max_output_and_reserve},
      {"W7_on_writable_after_full", W7_on_writable_after_full},
      {"W7_pause_owed_end_holds_back_a_byte", W7_pause_owed_end_holds_back_a_byte},
      {"new_rejects_bad_arguments", new_rejects_bad_arguments},
      {"whole_messages_mode", whole_messages_mode},
      {"source_corner_cases", source_corner_cases},
      {"reentrancy_rejected", reentrancy_rejected},
      {"callback_failure_is_fatal", callback_failure_is_fatal},
      {"D2_compressed_receive", D2_compressed_receive},
      {"D2_compressed_large_masked", D2_compressed_large_masked},
      {"D2_bad_compressed_data_1007", D2_bad_compressed_data_1007},
      {"D2_send_rsv1_first_only", D2_send_rsv1_first_only},
      {"D3_zip_bomb_bounded", D3_zip_bomb_bounded},
      {"W7_D3_frame_cap_from_message_limit", W7_D3_frame_cap_from_message_limit},
  };
  return TU_RUN(cases);
}
