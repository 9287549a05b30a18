

/* tests/unit/test_h2_limits.c - the HTTP/2 binding against hostile and
 * non-conforming peers, with frames built by hand (an nghttp2 client would
 * refuse to send most of them): the connection-end contract of
 * h2ws_h2_session_recv (issue 9 A), the advertised stream limit and the
 * WebSocket slots (issue 7.4), conformance cases h2spec checks (7.5),
 * HEADERS on a WebSocket stream (7.2), and every flood limit of
 * h2ws_h2_settings (issue 9 B, G, I, K). */
#include <nghttp2/nghttp2.h>
#include <h2ws/h2.h>
#include "testutil.h"

/* ======================================================================
 * A server session fed by hand
 * ====================================================================== */

#define MAXID 1024

typedef struct ws_rec {
  int close; /* engine on_close code */
  int msgs;
} ws_rec;

typedef struct srv_app {
  int ws_requests, requests;
  ws_rec ws[MAXID];
  int ws_closed;
} srv_app;

static int rec_msg(h2ws_ws *ws, h2ws_opcode op, const uint8_t *d, size_t n,
                   void *ud) {
  ((ws_rec *)ud)->msgs++;
  h2ws_ws_submit_msg(ws, op, d, n); /* echo */
  return 0;
}

static void rec_close(h2ws_ws *ws, uint16_t code, const uint8_t *r, size_t n,
                      void *ud) {
  (void)ws;
  (void)r;
  (void)n;
  ((ws_rec *)ud)->close = code;
}

static const h2ws_ws_callbacks ws_cb = {.on_msg = rec_msg, .on_close = rec_close};

static int on_ws_request(h2ws_h2_session *s, int32_t id,
                         const h2ws_ws_request *req,
                         const h2ws_h2_request *hreq, void *ud) {
  srv_app *a = ud;
  (void)req;
  (void)hreq;
  a->ws_requests++;
  h2ws_ws_settings set;
  h2ws_ws_settings_default(&set);
  set.whole_messages = 1;
  h2ws_h2_accept_options o;
  h2ws_h2_accept_options_default(&o);
  o.callbacks = &ws_cb;
  o.settings = &set;
  if (id >= MAXID) return h2ws_h2_refuse(s, id, 503, NULL, 0) == 0 ? 0 : -1;
  o.user_data = &a->ws[id];
  return h2ws_h2_accept_ws(s, id, &o, NULL) == 0 ? 0 : -1;
}

static int on_request(h2ws_h2_session *s, int32_t id,
                      const h2ws_h2_request *req, void *ud) {
  srv_app *a = ud;
  (void)req;
  a->requests++;
  return h2ws_h2_respond(s, id, 200, NULL, 0, (const uint8_t *)"ok", 2) == 0
             ? 0
             : -1;
}

static void on_ws_closed(h2ws_h2_session *s, int32_t id, h2ws_ws *ws,
                         uint32_t code, void *ud) {
  (void)s;
  (void)id;
  (void)ws;
  (void)code;
  ((srv_app *)ud)->ws_closed++;
}

/* The wire: what we feed and what the server wrote back (all of it). */
typedef struct wire {
  srv_app a;
  h2ws_h2_session *s;
  nghttp2_hd_deflater *def;
  uint8_t *out;
  size_t outlen, scan; /* scan: where the last feed's answer starts */
  int rv;              /* last recv's return value */
  uint64_t now;
} wire;

#define OUTCAP (4u << 20)

static void wire_drain(wire *w) {
  for (int i = 0; i < 1000; i++) {
    const uint8_t *o;
    size_t ol = 0;
    if (h2ws_h2_session_send(w->s, &o, &ol, w->now) != 0 || ol == 0) return;
    size_t take = ol < OUTCAP - w->outlen ? ol : OUTCAP - w->outlen;
    memcpy(w->out + w->outlen, o, take);
    w->outlen += take;
    h2ws_h2_session_send_consumed(w->s, ol);
  }
}

static void wire_feed(wire *w, const void *d, size_t n) {
  size_t nr = 0;
  w->rv = h2ws_h2_session_recv(w->s, d, n, &nr, w->now);
  if (nr != n) w->rv = -9999; /* the contract: all input is taken */
  wire_drain(w);
}

static void wire_frame(wire *w, uint8_t type, uint8_t flags, int32_t id,
                       const void *payload, size_t n) {
  static uint8_t buf[70000];
  buf[0] = (uint8_t)(n >> 16);
  buf[1] = (uint8_t)(n >> 8);
  buf[2] = (uint8_t)n;
  buf[3] = type;
  buf[4] = flags;
  buf[5] = (uint8_t)((uint32_t)id >> 24);
  buf[6] = (uint8_t)(id >> 16);
  buf[7] = (uint8_t)(id >> 8);
  buf[8] = (uint8_t)id;
  if (n) memcpy(buf + 9, payload, n);
  wire_feed(w, buf, 9 + n);
}

typedef struct { const char *n, *v; } kv;

/* HPACK-encodes (with the wire's deflater: its dynamic table follows ours)
 * into out; returns the block length. */
static size_t hpack(wire *w, const kv *h, size_t n, uint8_t *out, size_t cap) {
  nghttp2_nv nva[64];
  for (size_t i = 0; i < n; i++) {
    nva[i].name = (uint8_t *)(uintptr_t)h[i].n;
    nva[i].namelen = strlen(h[i].n);
    nva[i].value = (uint8_t *)(uintptr_t)h[i].v;
    nva[i].valuelen = strlen(h[i].v);
    nva[i].flags = 0;
  }
  ssize_t len = nghttp2_hd_deflate_hd(w->def, out, cap, nva, n);
  return len < 0 ? 0 : (size_t)len;
}

static void wire_headers(wire *w, int32_t id, const kv *h, size_t n,
                         uint8_t flags) {
  uint8_t block[16384];
  size_t len = hpack(w, h, n, block, sizeof block);
  wire_frame(w, NGHTTP2_HEADERS, (uint8_t)(NGHTTP2_FLAG_END_HEADERS | flags),
             id, block, len);
}

static const kv ws_req[] = {{":method", "CONNECT"}, {":protocol", "websocket"},
                            {":scheme", "https"},   {":path", "/echo"},
                            {":authority", "x"},    {"sec-websocket-version", "13"}};
static const kv get_req[] = {{":method", "GET"}, {":scheme", "https"},
                             {":path", "/"}, {":authority", "x"}};

static void wire_ws(wire *w, int32_t id) { wire_headers(w, id, ws_req, 6, 0); }

/* A masked client WebSocket frame in DATA on stream id. */
static void wire_ws_frame(wire *w, int32_t id, uint8_t op, const char *p,
                          size_t n, uint8_t flags) {
  uint8_t f[256];
  static const uint8_t key[4] = {9, 8, 7, 6};
  f[0] = (uint8_t)(0x80 | op);
  f[1] = (uint8_t)(0x80 | n);
  memcpy(f + 2, key, 4);
  for (size_t i = 0; i < n; i++) f[6 + i] = (uint8_t)(p[i] ^ key[i % 4]);
  wire_frame(w, NGHTTP2_DATA, flags, id, f, 6 + n);
}

static int wire_init(wire *w, const h2ws_h2_settings *base) {
  memset(w, 0, sizeof(*w));
  w->out = malloc(OUTCAP);
  h2ws_h2_settings set;
  if (base) set = *base;
  else h2ws_h2_settings_default(&set);
  set.enable_connect_protocol = 1;
  h2ws_h2_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.on_ws_request = on_ws_request;
  cb.on_request = on_request;
  cb.on_ws_closed = on_ws_closed;
  if (!w->out || h2ws_h2_session_new(&w->s, H2WS_ROLE_SERVER, &cb, &set, NULL,
                                     &w->a) != 0)
    return -1;
  if (nghttp2_hd_deflate_new(&w->def, 4096) != 0) return -1;
  static const uint8_t pre[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  wire_feed(w, pre, 24);
  wire_frame(w, NGHTTP2_SETTINGS, 0, 0, NULL, 0);
  wire_frame(w, NGHTTP2_SETTINGS, NGHTTP2_FLAG_ACK, 0, NULL, 0);
  return w->rv;
}

static void wire_del(wire *w) {
  h2ws_h2_session_del(w->s);
  nghttp2_hd_deflate_del(w->def);
  free(w->out);
}

static uint32_t u32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         p[3];
}

/* Offset of the first frame of `type` (on stream id, or any when id < 0)
 * in the server's output from `from`, or -1. */
static long find(const wire *w, size_t from, int type, int32_t id) {
  size_t i = from;
  while (i + 9 <= w->outlen) {
    size_t len = (size_t)w->out[i] << 16 | (size_t)w->out[i + 1] << 8 |
                 w->out[i + 2];
    int32_t sid = (int32_t)(u32(w->out + i + 5) & 0x7fffffffu);
    if (w->out[i + 3] == type && (id < 0 || sid == id)) return (long)i;
    i += 9 + len;
  }
  return -1;
}

/* The GOAWAY's error code, or -1 when none was written. */
static long goaway_code(const wire *w) {
  long at = find(w, 0, NGHTTP2_GOAWAY, -1);
  return at < 0 ? -1 : (long)u32(w->out + at + 13);
}

/* The RST_STREAM code sent on stream id, or -1. */
static long rst_code(const wire *w, int32_t id) {
  long at = find(w, 0, NGHTTP2_RST_STREAM, id);
  return at < 0 ? -1 : (long)u32(w->out + at + 9);
}

/* A response HEADERS frame went out on id. */
static int answered(const wire *w, int32_t id) {
  return find(w, 0, NGHTTP2_HEADERS, id) >= 0;
}

/* The connection is over the way h2.h promises: nothing more is read,
 * the GOAWAY is out and nothing remains to write. */
static int ended(wire *w) {
  return !h2ws_h2_session_want_read(w->s) && !h2ws_h2_session_want_write(w->s);
}

/* A GET on a fresh stream is answered: the connection still serves. */
static int serves(wire *w, int32_t id) {
  wire_headers(w, id, get_req, 4, NGHTTP2_FLAG_END_STREAM);
  return w->rv == 0 && answered(w, id) && rst_code(w, id) < 0;
}

/* ======================================================================
 * Issue 9 A: every connection error ends the connection at once
 * ====================================================================== */

/* h2spec 3.5/2: an invalid client preface gets GOAWAY PROTOCOL_ERROR and
 * the end of the connection, not silence. */
static void issue7_5_bad_preface(void) {
  wire w;
  memset(&w, 0, sizeof w);
  w.out = malloc(OUTCAP);
  h2ws_h2_settings set;
  h2ws_h2_settings_default(&set);
  h2ws_h2_callbacks cb;
  memset(&cb, 0, sizeof cb);
  CHECK_EQ(h2ws_h2_session_new(&w.s, H2WS_ROLE_SERVER, &cb, &set, NULL, &w.a),
           0);
  CHECK_EQ(nghttp2_hd_deflate_new(&w.def, 4096), 0);
  static const uint8_t bad[] = "PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n";
  wire_feed(&w, bad, 24);
  CHECK_EQ(w.rv, H2WS_ERR_PROTO);
  CHECK_EQ(goaway_code(&w), NGHTTP2_PROTOCOL_ERROR);
  CHECK(ended(&w));
  /* later input is discarded with the same answer */
  wire_frame(&w, NGHTTP2_PING, 0, 0, "12345678", 8);
  CHECK_EQ(w.rv, H2WS_ERR_PROTO);
  CHECK_EQ(find(&w, 0, NGHTTP2_PING, -1), -1);
  h2ws_h2_stats st;
  h2ws_h2_session_get_stats(w.s, &st);
  CHECK(st.goaway_sent);
  CHECK_EQ(st.goaway_error_code, NGHTTP2_PROTOCOL_ERROR);
  CHECK(st.goaway_reason && strstr(st.goaway_reason, "preface"));
  CHECK_EQ(h2ws_h2_session_get_expiry(w.s), H2WS_NO_EXPIRY);
  wire_del(&w);
}

/* CVE-2024-28182: CONTINUATION frames past max_continuations end the
 * connection with ENHANCE_YOUR_CALM (nghttp2's limit; the binding used to
 * keep reading after nghttp2's fatal return). */
static void issue9_A_continuation_flood(void) {
  wire w;
  h2ws_h2_settings set;
  h2ws_h2_settings_default(&set);
  set.max_continuations = 4;
  CHECK_EQ(wire_init(&w, &set), 0);
  uint8_t block[64];
  size_t len = hpack(&w, get_req, 4, block, sizeof block);
  wire_frame(&w, NGHTTP2_HEADERS, 0, 1, block, 1); /* no END_HEADERS */
  uint8_t junk[100];
  memset(junk, 0x40, sizeof junk); /* literal fields, never finished */
  (void)len;
  for (int i = 0; i < 10 && w.rv == 0; i++)
    wire_frame(&w, NGHTTP2_CONTINUATION, 0, 1, junk, sizeof junk);
  CHECK_EQ(w.rv, H2WS_ERR_PROTO);
  CHECK_EQ(goaway_code(&w), NGHTTP2_ENHANCE_YOUR_CALM);
  CHECK(ended(&w));
  wire_frame(&w, NGHTTP2_CONTINUATION, 0, 1, junk, sizeof junk);
  CHECK_EQ(w.rv, H2WS_ERR_PROTO);
  wire_del(&w);
}

/* PINGs whose ACKs are never read: past nghttp2's 1000 queued ACKs
 * (NGHTTP2_ERR_FLOODED) the connection ends with ENHANCE_YOUR_CALM.  With
 * the binding's own rate limit on (default), it ends earlier. */
static void issue9_A_ping_flood(void) {
  for (int own = 0; own <= 1; own++) {
    wire w;
    h2ws_h2_settings set;
    h2ws_h2_settings_default(&set);
    if (!own) set.max_ping_rate = 0;
    CHECK_EQ(wire_init(&w, &set), 0);
    static uint8_t pings[1200 * 17];
    for (int i = 0; i < 1200; i++) {
      uint8_t *p = pings + i * 17;
      memcpy(p, "\x00\x00\x08\x06\x00\x00\x00\x00\x00", 9);
      memcpy(p + 9, "abcdefgh", 8);
    }
    size_t nr;
    /* fed without ever draining the output: the ACKs pile up */
    int rv = h2ws_h2_session_recv(w.s, pings, sizeof pings, &nr, 0);
    CHECK_EQ(rv, H2WS_ERR_PROTO);
    CHECK_EQ(nr, sizeof pings);
    CHECK(!h2ws_h2_session_want_read(w.s));
    wire_drain(&w);
    CHECK_EQ(goaway_code(&w), NGHTTP2_ENHANCE_YOUR_CALM);
    CHECK(ended(&w));
    h2ws_h2_stats st;
    h2ws_h2_session_get_stats(w.s, &st);
    CHECK(strstr(st.goaway_reason, own ? "PING flood" : "acknowledgements"));
    wire_del(&w);
  }
}

/* ======================================================================
 * Issue 9 G, I, K and Deliver 3: the flood limits
 * ====================================================================== */

enum { F_SETTINGS, F_PING, F_WU, F_PRIORITY, F_EMPTY_DATA, F_RAPID_RESET,
       F_MADE_YOU_RESET, F_REFUSED, F_COUNT };

static const char *flood_name[F_COUNT] = {
    "SETTINGS", "PING", "WINDOW_UPDATE", "PRIORITY", "empty DATA",
    "rapid reset", "MadeYouReset", "refused streams"};

/* One unit of flood `kind`, on a connection that has an open WebSocket on
 * stream 1; *pid is the next free client stream id. */
static void flood_one(wire *w, int kind, int32_t *pid) {
  static const uint8_t wu1[4] = {0, 0, 0, 1};
  static const uint8_t wubig[4] = {0x7f, 0xff, 0xff, 0xff};
  static const uint8_t prio[5] = {0, 0, 0, 0, 15};
  static const uint8_t cancel[4] = {0, 0, 0, 8};
  switch (kind) {
  case F_SETTINGS:
    wire_frame(w, NGHTTP2_SETTINGS, 0, 0, NULL, 0);
    break;
  case F_PING:
    wire_frame(w, NGHTTP2_PING, 0, 0, "pingpong", 8);
    break;
  case F_WU:
    wire_frame(w, NGHTTP2_WINDOW_UPDATE, 0, 0, wu1, 4);
    break;
  case F_PRIORITY:
    wire_frame(w, NGHTTP2_PRIORITY, 0, 1, prio, 5);
    break;
  case F_EMPTY_DATA:
    wire_frame(w, NGHTTP2_DATA, 0, 1, NULL, 0);
    break;
  case F_RAPID_RESET: /* HEADERS + RST_STREAM (CVE-2023-44487) */
    wire_headers(w, *pid, get_req, 4, 0);
    wire_frame(w, NGHTTP2_RST_STREAM, 0, *pid, cancel, 4);
    *pid += 2;
    break;
  case F_MADE_YOU_RESET: /* HEADERS + a WINDOW_UPDATE that overflows the
                            stream's window: the server resets it */
    wire_headers(w, *pid, ws_req, 6, 0);
    wire_frame(w, NGHTTP2_WINDOW_UPDATE, 0, *pid, wubig, 4);
    *pid += 2;
    break;
  case F_REFUSED: /* a stream beyond the advertised limit, each time */
    wire_ws(w, *pid);
    *pid += 2;
    break;
  }
}

static void issue9_floods(void) {
  const uint32_t N = 20;
  for (int kind = 0; kind < F_COUNT; kind++) {
    for (int over = 0; over <= 1; over++) {
      wire w;
      h2ws_h2_settings set;
      h2ws_h2_settings_default(&set);
      set.max_settings_rate = set.max_ping_rate = N;
      set.max_window_update_rate = set.max_priority_rate = N;
      set.max_empty_data_rate = set.max_rst_rate = set.max_reset_rate = N;
      if (kind == F_REFUSED) set.max_concurrent_streams = 2;
      CHECK_EQ(wire_init(&w, &set), 0);
      /* one SETTINGS already spent by wire_init */
      wire_ws(&w, 1);
      int32_t id = 3;
      if (kind == F_REFUSED) {
        wire_ws(&w, 3);
        id = 5;
      }
      uint32_t n = kind == F_SETTINGS ? N - 1 : N;
      if (over) n += 1;
      for (uint32_t i = 0; i < n && w.rv == 0; i++) flood_one(&w, kind, &id);
      if (!over) {
        if (w.rv != 0 || goaway_code(&w) >= 0)
          fprintf(stderr, "%s: %u allowed: rv=%d goaway=%ld\n",
                  flood_name[kind], n, w.rv, goaway_code(&w));
        CHECK_EQ(w.rv, 0);
        CHECK_EQ(goaway_code(&w), -1);
        CHECK(h2ws_h2_session_want_read(w.s));
        /* the WebSocket still echoes */
        size_t at = w.outlen;
        wire_ws_frame(&w, 1, 1, "still", 5, 0);
        long d = find(&w, at, NGHTTP2_DATA, 1);
        CHECK(d >= 0 && !memcmp(w.out + d + 9, "\x81\x05still", 7));
        /* a second later the bucket has refilled */
        w.now += 1000;
        flood_one(&w, kind, &id);
        CHECK_EQ(goaway_code(&w), -1);
      } else {
        if (w.rv != H2WS_ERR_PROTO ||
            goaway_code(&w) != NGHTTP2_ENHANCE_YOUR_CALM)
          fprintf(stderr, "%s: %u: rv=%d goaway=%ld\n", flood_name[kind], n,
                  w.rv, goaway_code(&w));
        CHECK_EQ(w.rv, H2WS_ERR_PROTO);
        CHECK_EQ(goaway_code(&w), NGHTTP2_ENHANCE_YOUR_CALM);
        CHECK(ended(&w));
        /* the WebSocket ends with 1006 when the runtime closes */
      }
      wire_del(&w);
    }
  }
}

/* WINDOW_UPDATE credit for what we send is not a flood: each DATA frame we
 * send earns the peer two more WINDOW_UPDATEs (its stream's and the
 * connection's), on top of max_window_update_rate. */
static void issue9_window_update_earned(void) {
  wire w;
  h2ws_h2_settings set;
  h2ws_h2_settings_default(&set);
  set.max_window_update_rate = 10;
  CHECK_EQ(wire_init(&w, &set), 0);
  wire_ws(&w, 1);
  size_t at = w.outlen;
  for (int i = 0; i < 30; i++) wire_ws_frame(&w, 1, 1, "m", 1, 0);
  int ndata = 0;
  for (long d = find(&w, at, NGHTTP2_DATA, 1); d >= 0;
       d = find(&w, (size_t)d + 9 + ((size_t)w.out[d + 1] << 8 | w.out[d + 2]),
                NGHTTP2_DATA, 1))
    ndata++;
  CHECK_EQ(ndata, 30); /* one DATA frame per echo */
  static const uint8_t one[4] = {0, 0, 0, 1};
  for (int i = 0; i < 10 + 2 * 30 && w.rv == 0; i++)
    wire_frame(&w, NGHTTP2_WINDOW_UPDATE, 0, (i & 1) ? 1 : 0, one, 4);
  CHECK_EQ(w.rv, 0);
  CHECK_EQ(goaway_code(&w), -1);
  wire_frame(&w, NGHTTP2_WINDOW_UPDATE, 0, 0, one, 4);
  CHECK_EQ(w.rv, H2WS_ERR_PROTO);
  CHECK_EQ(goaway_code(&w), NGHTTP2_ENHANCE_YOUR_CALM);
  wire_del(&w);
}

/* Issue 9 K: SETTINGS_NO_RFC7540_PRIORITIES = 1 in our SETTINGS. */
static void issue9_K_no_rfc7540_priorities(void) {
  wire w;
  CHECK_EQ(wire_init(&w, NULL), 0);
  long at = find(&w, 0, NGHTTP2_SETTINGS, 0);
  CHECK(at >= 0);
  size_t len = (size_t)w.out[at + 1] << 8 | w.out[at + 2];
  int seen = 0;
  for (size_t i = 0; i + 6 <= len; i += 6) {
    const uint8_t *e = w.out + at + 9 + i;
    if ((e[0] << 8 | e[1]) == NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES)
      seen = (int)u32(e + 2);
  }
  CHECK_EQ(seen, 1);
  wire_del(&w);
}

/* Issue 9 B, HPACK bomb: a large dynamic-table entry referenced over and
 * over.  The stream is reset (ENHANCE_YOUR_CALM) once the decoded list
 * passes max_header_bytes; HPACK stays in step (the next request, which
 * uses the table, is served) and the application never saw the bomb. */
static void issue9_B_hpack_bomb(void) {
  wire w;
  CHECK_EQ(wire_init(&w, NULL), 0);
  /* hand-made HPACK (RFC 7541): :method GET, :scheme https, :path / from
   * the static table, :authority x as a literal */
  static const uint8_t base[] = {0x82, 0x87, 0x84, 0x01, 0x01, 'x'};
  static uint8_t block[8000];
  /* stream 1: plus x-big (4000 bytes) added to the dynamic table (62) */
  size_t len = 0;
  memcpy(block, base, sizeof base);
  len += sizeof base;
  memcpy(block + len, "\x40\x05x-big\x7f\xa1\x1e", 10); /* 4000 = 127+3873 */
  len += 10;
  memset(block + len, 'b', 4000);
  len += 4000;
  wire_frame(&w, NGHTTP2_HEADERS,
             NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 1, block, len);
  CHECK(answered(&w, 1));
  CHECK_EQ(w.a.requests, 1);
  /* stream 3: x-big referenced 2000 times (8 MB decoded) */
  memcpy(block, base, sizeof base);
  len = sizeof base;
  for (int i = 0; i < 2000; i++) block[len++] = 0x80 | 62;
  wire_frame(&w, NGHTTP2_HEADERS,
             NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 3, block, len);
  CHECK_EQ(w.rv, 0);
  CHECK_EQ(rst_code(&w, 3), NGHTTP2_ENHANCE_YOUR_CALM);
  CHECK_EQ(w.a.requests, 1);
  CHECK_EQ(goaway_code(&w), -1);
  /* the table is intact (HPACK in step): one reference is served */
  len = sizeof base + 1;
  block[sizeof base] = 0x80 | 62;
  wire_frame(&w, NGHTTP2_HEADERS,
             NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 5, block, len);
  CHECK(answered(&w, 5));
  CHECK_EQ(w.a.requests, 2);
  wire_del(&w);
}

/* ======================================================================
 * Issue 7.5: h2spec 5.1.1/2
 * ====================================================================== */

static void issue7_5_lower_stream_id(void) {
  wire w;
  CHECK_EQ(wire_init(&w, NULL), 0);
  CHECK(serves(&w, 5));
  wire_headers(&w, 3, get_req, 4, NGHTTP2_FLAG_END_STREAM);
  CHECK_EQ(w.rv, H2WS_ERR_PROTO);
  CHECK_EQ(goaway_code(&w), NGHTTP2_PROTOCOL_ERROR);
  CHECK(!answered(&w, 3));
  CHECK(ended(&w));
  wire_del(&w);

  /* a late HEADERS on a stream that was opened (here: trailers racing our
   * RST_STREAM) is ignored, not a connection error (RFC 9113 §5.1) */
  CHECK_EQ(wire_init(&w, NULL), 0);
  kv bad[5] = {get_req[0], get_req[1], get_req[2], get_req[3],
               {"connection", "close"}};
  wire_headers(&w, 1, bad, 5, 0);
  CHECK_EQ(rst_code(&w, 1), NGHTTP2_PROTOCOL_ERROR);
  CHECK(serves(&w, 3));
  kv trailer[1] = {{"x-trailer", "1"}};
  wire_headers(&w, 1, trailer, 1, NGHTTP2_FLAG_END_STREAM);
  CHECK_EQ(w.rv, 0);
  CHECK_EQ(goaway_code(&w), -1);
  CHECK(serves(&w, 7));
  wire_del(&w);
}

/* ======================================================================
 * Issue 7.2: HEADERS on an open WebSocket stream
 * ====================================================================== */

static void issue7_2_headers_on_ws_stream(void) {
  for (int end = 0; end <= 1; end++) {
    wire w;
    CHECK_EQ(wire_init(&w, NULL), 0);
    wire_ws(&w, 1);
    wire_ws(&w, 3);
    CHECK(answered(&w, 1) && answered(&w, 3));
    kv trailer[1] = {{"x-trailer", "1"}};
    wire_headers(&w, 1, trailer, 1, end ? NGHTTP2_FLAG_END_STREAM : 0);
    CHECK_EQ(w.rv, 0);
    CHECK_EQ(rst_code(&w, 1), NGHTTP2_PROTOCOL_ERROR);
    CHECK_EQ(w.a.ws[1].close, 1006); /* the application sees an abnormal end */
    CHECK_EQ(goaway_code(&w), -1);
    /* the other WebSocket and the connection go on */
    size_t at = w.outlen;
    wire_ws_frame(&w, 3, 1, "hi", 2, 0);
    long d = find(&w, at, NGHTTP2_DATA, 3);
    CHECK(d >= 0 && !memcmp(w.out + d + 9, "\x81\x02hi", 4));
    CHECK(serves(&w, 5));
    wire_del(&w);
  }
}

/* The client side: a server sending HEADERS after its 200.  The server
 * here is a plain nghttp2 session (no HTTP messaging checks) that answers
 * every request 200 and then sends a second HEADERS on stream 1. */
typedef struct rsrv {
  nghttp2_session *ngs;
  int32_t ids[8];
  int nids;
  uint32_t rst[16];
  int rsts[16];
} rsrv;

static ssize_t rsrv_defer(nghttp2_session *ngs, int32_t id, uint8_t *buf,
                          size_t len, uint32_t *flags,
                          nghttp2_data_source *src, void *ud) {
  (void)ngs;
  (void)id;
  (void)buf;
  (void)len;
  (void)flags;
  (void)src;
  (void)ud;
  return NGHTTP2_ERR_DEFERRED;
}

static int rsrv_frame(nghttp2_session *ngs, const nghttp2_frame *f, void *ud) {
  rsrv *r = ud;
  if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
    nghttp2_nv nv = {(uint8_t *)":status", (uint8_t *)"200", 7, 3, 0};
    nghttp2_data_provider prd = {{0}, rsrv_defer};
    nghttp2_submit_response(ngs, f->hd.stream_id, &nv, 1, &prd);
    if (r->nids < 8) r->ids[r->nids++] = f->hd.stream_id;
  }
  if (f->hd.type == NGHTTP2_RST_STREAM && f->hd.stream_id < 16) {
    r->rsts[f->hd.stream_id]++;
    r->rst[f->hd.stream_id] = f->rst_stream.error_code;
  }
  return 0;
}

static int cli_random(uint8_t *b, size_t n, void *ud) {
  (void)ud;
  memset(b, 7, n);
  return 0;
}

typedef struct capp {
  h2ws_ws *ws[4];
  int n;
  int close_code[4];
} capp;

static void cli_close(h2ws_ws *ws, uint16_t code, const uint8_t *r, size_t n,
                      void *ud) {
  (void)ws;
  (void)r;
  (void)n;
  *(int *)ud = code;
}

static int cli_open(h2ws_h2_session *s, int32_t id, h2ws_ws *ws,
                    const char *sub, void *rud, void *ud) {
  capp *a = ud;
  (void)s;
  (void)id;
  (void)sub;
  (void)rud;
  if (a->n < 4) a->ws[a->n++] = ws;
  return 0;
}

static void pump_cs(h2ws_h2_session *c, rsrv *r) {
  for (int i = 0; i < 100; i++) {
    int moved = 0;
    const uint8_t *o;
    size_t ol = 0, nr;
    if (h2ws_h2_session_send(c, &o, &ol, 0) == 0 && ol) {
      nghttp2_session_mem_recv(r->ngs, o, ol);
      h2ws_h2_session_send_consumed(c, ol);
      moved = 1;
    }
    const uint8_t *d;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(r->ngs, &d)) > 0) {
      h2ws_h2_session_recv(c, d, (size_t)n, &nr, 0);
      moved = 1;
    }
    if (!moved) break;
  }
}

static void issue7_2_client_headers_after_200(void) {
  for (int end = 0; end <= 1; end++) {
    rsrv r;
    memset(&r, 0, sizeof r);
    nghttp2_session_callbacks *cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, rsrv_frame);
    nghttp2_option *opt;
    nghttp2_option_new(&opt);
    nghttp2_option_set_no_http_messaging(opt, 1);
    nghttp2_session_server_new2(&r.ngs, cbs, &r, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_settings_entry iv = {NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1};
    nghttp2_submit_settings(r.ngs, 0, &iv, 1);
    capp a;
    memset(&a, 0, sizeof a);
    h2ws_h2_callbacks cb;
    memset(&cb, 0, sizeof cb);
    cb.on_ws_open = cli_open;
    h2ws_h2_session *c = NULL;
    CHECK_EQ(h2ws_h2_session_new(&c, H2WS_ROLE_CLIENT, &cb, NULL, NULL, &a), 0);
    h2ws_ws_callbacks wcb;
    memset(&wcb, 0, sizeof wcb);
    wcb.random = cli_random;
    wcb.on_close = cli_close;
    for (int i = 0; i < 2; i++) {
      h2ws_h2_ws_options o;
      h2ws_h2_ws_options_default(&o);
      o.authority = "x";
      o.path = "/echo";
      o.callbacks = &wcb;
      o.user_data = &a.close_code[i];
      int32_t sid;
      CHECK_EQ(h2ws_h2_client_open_ws(c, &o, &sid), 0);
    }
    pump_cs(c, &r);
    CHECK_EQ(a.n, 2);
    nghttp2_nv tr = {(uint8_t *)"x-trailer", (uint8_t *)"1", 9, 1, 0};
    nghttp2_submit_headers(r.ngs, end ? NGHTTP2_FLAG_END_STREAM : 0, 1, NULL,
                           &tr, 1, NULL);
    pump_cs(c, &r);
    CHECK_EQ(r.rsts[1], 1);
    CHECK_EQ(r.rst[1], NGHTTP2_PROTOCOL_ERROR);
    CHECK_EQ(a.close_code[0], 1006);
    CHECK_EQ(a.close_code[1], 0); /* stream 3 untouched */
    CHECK(h2ws_h2_get_ws(c, 3) != NULL);
    CHECK(h2ws_h2_session_want_read(c));
    h2ws_h2_session_del(c);
    nghttp2_session_del(r.ngs);
  }
}

/* ======================================================================
 * Issue 7.4: the advertised stream limit is what is accepted
 * ====================================================================== */

/* The value on the wire for our SETTINGS_MAX_CONCURRENT_STREAMS. */
static long advertised_streams(const wire *w) {
  long at = find(w, 0, NGHTTP2_SETTINGS, 0);
  if (at < 0) return -1;
  size_t len = (size_t)w->out[at + 1] << 8 | w->out[at + 2];
  for (size_t i = 0; i + 6 <= len; i += 6) {
    const uint8_t *e = w->out + at + 9 + i;
    if ((e[0] << 8 | e[1]) == NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS)
      return (long)u32(e + 2);
  }
  return -1;
}

static void issue7_4_advertised_is_accepted(void) {
  wire w;
  CHECK_EQ(wire_init(&w, NULL), 0);
  CHECK_EQ(advertised_streams(&w), 128);
  /* 128 WebSockets (the old WebSocket cap of 100 refused 101-128) */
  for (int32_t i = 0; i < 128; i++) wire_ws(&w, 2 * i + 1);
  CHECK_EQ(w.a.ws_requests, 128);
  CHECK_EQ(find(&w, 0, NGHTTP2_RST_STREAM, -1), -1);
  /* the client ignores our acknowledged limit: a stream error for the
   * extra stream, not the GOAWAY PROTOCOL_ERROR nghttp2 1.52 would send */
  wire_ws(&w, 257);
  CHECK_EQ(w.rv, 0);
  CHECK_EQ(rst_code(&w, 257), NGHTTP2_REFUSED_STREAM);
  CHECK_EQ(goaway_code(&w), -1);
  CHECK(h2ws_h2_session_want_read(w.s));
  wire_headers(&w, 259, get_req, 4, NGHTTP2_FLAG_END_STREAM);
  CHECK_EQ(rst_code(&w, 259), NGHTTP2_REFUSED_STREAM);
  h2ws_h2_stats st;
  h2ws_h2_session_get_stats(w.s, &st);
  CHECK_EQ(st.streams_refused, 2);
  /* one WebSocket ends (the client resets it): its slot is free again */
  static const uint8_t cancel[4] = {0, 0, 0, 8};
  wire_frame(&w, NGHTTP2_RST_STREAM, 0, 1, cancel, 4);
  CHECK(serves(&w, 261));
  /* the sibling WebSockets still echo */
  size_t at = w.outlen;
  wire_ws_frame(&w, 255, 1, "ok", 2, 0);
  CHECK(find(&w, at, NGHTTP2_DATA, 255) >= 0);
  wire_del(&w);
}

/* A WebSocket ended on our side (Close sent, END_STREAM out) no longer
 * counts against max_websockets, though its stream waits for the peer's
 * END_STREAM. */
static void issue7_4_ws_slot_freed_at_end_stream(void) {
  wire w;
  h2ws_h2_settings set;
  h2ws_h2_settings_default(&set);
  set.max_websockets = 2;
  CHECK_EQ(wire_init(&w, &set), 0);
  wire_ws(&w, 1);
  wire_ws(&w, 3);
  wire_ws(&w, 5);
  CHECK_EQ(rst_code(&w, 5), NGHTTP2_REFUSED_STREAM);
  /* invalid UTF-8: the server fails stream 1 with 1007 and ends it */
  uint8_t f[16] = {0x81, 0x82, 0, 0, 0, 0, 0xff, 0xfe};
  wire_frame(&w, NGHTTP2_DATA, 0, 1, f, 8);
  CHECK_EQ(w.a.ws[1].close, 1007);
  long d = find(&w, 0, NGHTTP2_DATA, 1);
  CHECK(d >= 0 && (w.out[d + 4] & NGHTTP2_FLAG_END_STREAM));
  CHECK_EQ(rst_code(&w, 1), -1); /* slots are plentiful: it lingers */
  wire_ws(&w, 7);
  CHECK_EQ(rst_code(&w, 7), -1);
  CHECK_EQ(w.a.ws_requests, 3);
  wire_del(&w);
}

/* Lingering streams (closing handshake done, our END_STREAM out, the
 * peer's END_STREAM never comes: nghttpx in front of us) are ended with
 * RST_STREAM NO_ERROR once the streams in use reach 7/8 of the limit. */
static void issue7_4_lingering_reclaimed_when_scarce(void) {
  wire w;
  h2ws_h2_settings set;
  h2ws_h2_settings_default(&set);
  set.max_concurrent_streams = 16; /* scarce at 14 */
  CHECK_EQ(wire_init(&w, &set), 0);
  for (int32_t i = 0; i < 13; i++) {
    wire_ws(&w, 2 * i + 1);
    wire_ws_frame(&w, 2 * i + 1, 8, "\x03\xe8", 2, 0); /* Close, no END */
  }
  for (int32_t i = 0; i < 13; i++) {
    CHECK_EQ(w.a.ws[2 * i + 1].close, 1000);
    CHECK_EQ(rst_code(&w, 2 * i + 1), -1); /* 13 < 14: they linger */
  }
  wire_ws(&w, 27); /* 14 streams in use: scarce */
  for (int32_t i = 0; i < 13; i++)
    CHECK_EQ(rst_code(&w, 2 * i + 1), NGHTTP2_NO_ERROR);
  CHECK_EQ(rst_code(&w, 27), -1);
  h2ws_h2_stats st;
  h2ws_h2_session_get_stats(w.s, &st);
  CHECK_EQ(st.streams_ended_early, 13);
  CHECK_EQ(st.streams_refused, 0);
  /* room again: 15 more are accepted */
  for (int32_t i = 0; i < 15; i++) wire_ws(&w, 29 + 2 * i);
  CHECK_EQ(find(&w, 0, NGHTTP2_RST_STREAM, 57), -1);
  CHECK_EQ(w.a.ws_requests, 29);
  wire_del(&w);
}

int main(void) {
  static const tu_case cases[] = {
      {"issue7_5_bad_preface", issue7_5_bad_preface},
      {"issue9_A_continuation_flood", issue9_A_continuation_flood},
      {"issue9_A_ping_flood", issue9_A_ping_flood},
      {"issue9_floods", issue9_floods},
      {"issue9_window_update_earned", issue9_window_update_earned},
      {"issue9_K_no_rfc7540_priorities", issue9_K_no_rfc7540_priorities},
      {"issue9_B_hpack_bomb", issue9_B_hpack_bomb},
      {"issue7_5_lower_stream_id", issue7_5_lower_stream_id},
      {"issue7_2_headers_on_ws_stream", issue7_2_headers_on_ws_stream},
      {"issue7_2_client_headers_after_200", issue7_2_client_headers_after_200},
      {"issue7_4_advertised_is_accepted", issue7_4_advertised_is_accepted},
      {"issue7_4_ws_slot_freed_at_end_stream",
       issue7_4_ws_slot_freed_at_end_stream},
      {"issue7_4_lingering_reclaimed_when_scarce",
       issue7_4_lingering_reclaimed_when_scarce},
  };
  return TU_RUN(cases);
}
