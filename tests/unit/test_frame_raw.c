/* tests/unit/test_frame_raw.c - the public raw frame codec (h2ws/frame.h):
 * RFC 6455 §5.7 vectors, every length form, the frames the engine refuses
 * to write (bad opcode, RSV, 64-bit MSB, oversized control), and that the
 * engine still refuses them when they arrive. */
#include <stdint.h>
#include <string.h>

#include <h2ws/frame.h>
#include <h2ws/ws.h>

#include "testutil.h"

/* RFC 6455 §5.7: a single-frame masked text message "Hello". */
static void test_rfc_vector_masked(void) {
  static const uint8_t want[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
  h2ws_frame_header h = {1, 0, H2WS_OP_TEXT, 1, {0x37, 0xfa, 0x21, 0x3d}, 5, 0};
  uint8_t out[32];
  size_t n = h2ws_frame_encode(out, sizeof out, &h, (const uint8_t *)"Hello", 5);
  CHECK_EQ(n, sizeof want);
  CHECK_MEM(out, want, n);
  h2ws_frame_header d;
  CHECK_EQ(h2ws_frame_parse_header(out, n, &d), 6);
  CHECK(d.fin && d.masked && d.opcode == 1 && d.len == 5 && d.len_form == 7);
  CHECK_MEM(d.key, h.key, 4);
  uint8_t plain[5];
  h2ws_frame_mask(plain, out + 6, 5, d.key, 0);
  CHECK_MEM(plain, "Hello", 5);
}

static void test_len_forms(void) {
  uint8_t out[16];
  h2ws_frame_header h = {1, 0, 2, 0, {0}, 5, H2WS_FRAME_LEN_16};
  CHECK_EQ(h2ws_frame_write_header(out, sizeof out, &h), 4); /* non-minimal */
  CHECK(out[1] == 126 && out[2] == 0 && out[3] == 5);
  h.len_form = H2WS_FRAME_LEN_64;
  CHECK_EQ(h2ws_frame_write_header(out, sizeof out, &h), 10);
  h2ws_frame_header d;
  CHECK_EQ(h2ws_frame_parse_header(out, 10, &d), 10);
  CHECK(d.len == 5 && d.len_form == 64);
  h.len = 70000;
  h.len_form = H2WS_FRAME_LEN_16;
  CHECK_EQ(h2ws_frame_write_header(out, sizeof out, &h), 0); /* does not fit */
  h.len_form = H2WS_FRAME_LEN_MINIMAL;
  h.masked = 1;
  CHECK_EQ(h2ws_frame_write_header(out, sizeof out, &h), 14);
  CHECK_EQ(h2ws_frame_write_header(out, 13, &h), 0); /* no room */
  CHECK_EQ(h2ws_frame_parse_header(out, 13, &d), 0); /* needs more */
  CHECK_EQ(h2ws_frame_parse_header(out, 14, &d), 14);
  CHECK(d.len == 70000 && d.masked);
}

/* What the engine never writes: all of it encodes and parses back. */
static void test_invalid_frames(void) {
  uint8_t out[300], pay[126];
  memset(pay, 'p', sizeof pay);
  h2ws_frame_header h = {0, 7, 0xB, 0, {0}, 126, 0}; /* fragmented oversized control */
  size_t n = h2ws_frame_encode(out, sizeof out, &h, pay, sizeof pay);
  CHECK_EQ(n, 4 + 126);
  CHECK_EQ(out[0], 0x7B);
  h2ws_frame_header d;
  CHECK_EQ(h2ws_frame_parse_header(out, n, &d), 4);
  CHECK(!d.fin && d.rsv == 7 && d.opcode == 0xB && d.len == 126);
  /* 64-bit length with the most significant bit set (RFC 6455 §5.2) */
  h2ws_frame_header big = {1, 0, 2, 1, {1, 2, 3, 4}, UINT64_C(1) << 63, H2WS_FRAME_LEN_64};
  CHECK_EQ(h2ws_frame_write_header(out, sizeof out, &big), 14);
  CHECK_EQ(h2ws_frame_parse_header(out, 14, &d), H2WS_ERR_PROTO);
  CHECK(d.len == UINT64_C(1) << 63 && d.masked && d.key[3] == 4);
  /* a 7-bit form claiming 127 with nothing after it */
  h2ws_frame_header lie = {1, 0, 1, 0, {0}, 127, H2WS_FRAME_LEN_7};
  CHECK_EQ(h2ws_frame_write_header(out, sizeof out, &lie), 2);
  CHECK_EQ(out[1], 127);
}

/* The engine's own checks still refuse what this layer writes: an
 * unmasked client frame and an unknown opcode close with 1002. */
static uint16_t closed_with;
static void on_close(h2ws_ws *ws, uint16_t code, const uint8_t *r, size_t rl, void *u) {
  (void)ws; (void)r; (void)rl; (void)u;
  closed_with = code;
}

static void engine_feed(const uint8_t *in, size_t n) {
  h2ws_ws_settings s;
  h2ws_ws_settings_default(&s);
  h2ws_ws_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.on_close = on_close;
  h2ws_ws *ws = NULL;
  closed_with = 0;
  if (h2ws_ws_new(&ws, H2WS_ROLE_SERVER, &cb, &s, NULL, NULL) != 0) return;
  size_t nread = 0;
  h2ws_ws_recv(ws, in, n, &nread, 0);
  h2ws_ws_recv_eof(ws, 0);
  h2ws_ws_del(ws);
}

static void test_engine_still_refuses(void) {
  uint8_t out[32];
  h2ws_frame_header unmasked = {1, 0, 1, 0, {0}, 2, 0};
  size_t n = h2ws_frame_encode(out, sizeof out, &unmasked, (const uint8_t *)"hi", 2);
  engine_feed(out, n);
  CHECK_EQ(closed_with, 1002);
  h2ws_frame_header badop = {1, 0, 3, 1, {9, 9, 9, 9}, 0, 0};
  n = h2ws_frame_encode(out, sizeof out, &badop, NULL, 0);
  engine_feed(out, n);
  CHECK_EQ(closed_with, 1002);
}

int main(void) {
  static const tu_case cases[] = {
      {"rfc_vector_masked", test_rfc_vector_masked},
      {"len_forms", test_len_forms},
      {"invalid_frames", test_invalid_frames},
      {"engine_still_refuses", test_engine_still_refuses},
  };
  return tu_run(cases, sizeof cases / sizeof cases[0]);
}
