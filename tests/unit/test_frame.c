/* tests/unit/test_frame.c - frame header codec: RFC 6455 §5.7 vectors, length
 * encodings, byte-at-a-time parsing, malformed headers. */
#include <stdint.h>
#include <string.h>

#include "testutil.h"
#include "ws/frame.h"

/* Parses `in` whole, then one byte at a time; both must give `want`. */
static int parse_both(const uint8_t *in, size_t len, h2ws__frame_hdr *out,
                      size_t *pused) {
  h2ws__frame_parser p;
  h2ws__frame_hdr a, b;
  size_t n = 0;
  h2ws__frame_parser_reset(&p);
  int r = h2ws__frame_parse(&p, in, len, &n, &a);
  if (r != 1) return r;
  size_t used = n;
  h2ws__frame_parser_reset(&p);
  size_t pos = 0;
  for (;;) {
    if (pos >= len) return -1000;
    r = h2ws__frame_parse(&p, in + pos, 1, &n, &b);
    pos += n;
    if (r == 1) break;
    if (r < 0) return r;
    if (n != 1) return -1001;
  }
  if (pos != used || memcmp(&a, &b, sizeof(a)) != 0) return -1002;
  *out = a;
  *pused = used;
  return 1;
}

static void rfc_single_unmasked(void) {
  static const uint8_t v[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
  h2ws__frame_hdr h;
  size_t used;
  CHECK_EQ(parse_both(v, sizeof v, &h, &used), 1);
  CHECK_EQ(used, 2);
  CHECK_EQ(h.fin, 1);
  CHECK_EQ(h.rsv, 0);
  CHECK_EQ(h.opcode, 1);
  CHECK_EQ(h.masked, 0);
  CHECK_EQ(h.len, 5);
  uint8_t out[H2WS__FRAME_HDR_MAX];
  CHECK_EQ(h2ws__frame_build(out, 1, 0, 1, NULL, 5), 2);
  CHECK_MEM(out, v, 2);
}

static void rfc_single_masked(void) {
  static const uint8_t v[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f,
                              0x9f, 0x4d, 0x51, 0x58};
  h2ws__frame_hdr h;
  size_t used;
  CHECK_EQ(parse_both(v, sizeof v, &h, &used), 1);
  CHECK_EQ(used, 6);
  CHECK_EQ(h.masked, 1);
  CHECK_EQ(h.len, 5);
  CHECK_MEM(h.key, v + 2, 4);
  char plain[6] = {0};
  for (int i = 0; i < 5; i++) plain[i] = (char)(v[6 + i] ^ h.key[i % 4]);
  CHECK(strcmp(plain, "Hello") == 0);
  uint8_t out[H2WS__FRAME_HDR_MAX];
  CHECK_EQ(h2ws__frame_build(out, 1, 0, 1, v + 2, 5), 6);
  CHECK_MEM(out, v, 6);
  CHECK_EQ(h2ws__frame_header_size(5, 1), 6);
}

static void rfc_fragmented(void) {
  static const uint8_t f1[] = {0x01, 0x03, 0x48, 0x65, 0x6c};
  static const uint8_t f2[] = {0x80, 0x02, 0x6c, 0x6f};
  h2ws__frame_hdr h;
  size_t used;
  CHECK_EQ(parse_both(f1, sizeof f1, &h, &used), 1);
  CHECK_EQ(h.fin, 0);
  CHECK_EQ(h.opcode, 1);
  CHECK_EQ(h.len, 3);
  CHECK_EQ(parse_both(f2, sizeof f2, &h, &used), 1);
  CHECK_EQ(h.fin, 1);
  CHECK_EQ(h.opcode, 0);
  CHECK_EQ(h.len, 2);
  uint8_t out[H2WS__FRAME_HDR_MAX];
  h2ws__frame_build(out, 0, 0, 1, NULL, 3);
  CHECK_MEM(out, f1, 2);
  h2ws__frame_build(out, 1, 0, 0, NULL, 2);
  CHECK_MEM(out, f2, 2);
}

static void rfc_ping_pong(void) {
  static const uint8_t ping[] = {0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
  static const uint8_t pong[] = {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f,
                                 0x9f, 0x4d, 0x51, 0x58};
  h2ws__frame_hdr h;
  size_t used;
  CHECK_EQ(parse_both(ping, sizeof ping, &h, &used), 1);
  CHECK_EQ(h.opcode, 0x9);
  CHECK(h2ws__frame_is_control(h.opcode));
  CHECK_EQ(h.len, 5);
  CHECK_EQ(parse_both(pong, sizeof pong, &h, &used), 1);
  CHECK_EQ(h.opcode, 0xA);
  CHECK_EQ(h.masked, 1);
  uint8_t out[H2WS__FRAME_HDR_MAX];
  h2ws__frame_build(out, 1, 0, 0x9, NULL, 5);
  CHECK_MEM(out, ping, 2);
  h2ws__frame_build(out, 1, 0, 0xA, pong + 2, 5);
  CHECK_MEM(out, pong, 6);
  CHECK(!h2ws__frame_is_control(0x2));
}

static void rfc_256_bytes_16bit(void) {
  static const uint8_t v[] = {0x82, 0x7E, 0x01, 0x00};
  h2ws__frame_hdr h;
  size_t used;
  CHECK_EQ(parse_both(v, sizeof v, &h, &used), 1);
  CHECK_EQ(used, 4);
  CHECK_EQ(h.opcode, 2);
  CHECK_EQ(h.len, 256);
  uint8_t out[H2WS__FRAME_HDR_MAX];
  CHECK_EQ(h2ws__frame_build(out, 1, 0, 2, NULL, 256), 4);
  CHECK_MEM(out, v, 4);
}

static void rfc_64k_64bit(void) {
  static const uint8_t v[] = {0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00};
  h2ws__frame_hdr h;
  size_t used;
  CHECK_EQ(parse_both(v, sizeof v, &h, &used), 1);
  CHECK_EQ(used, 10);
  CHECK_EQ(h.len, 65536);
  uint8_t out[H2WS__FRAME_HDR_MAX];
  CHECK_EQ(h2ws__frame_build(out, 1, 0, 2, NULL, 65536), 10);
  CHECK_MEM(out, v, 10);
}

static void W1_minimal_length_boundaries(void) {
  static const struct { uint64_t len; size_t size; } t[] = {
      {0, 2}, {125, 2}, {126, 4}, {65535, 4}, {65536, 10},
      {UINT64_C(0x7fffffffffffffff), 10}};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    uint8_t out[H2WS__FRAME_HDR_MAX];
    static const uint8_t key[4] = {1, 2, 3, 4};
    CHECK_EQ(h2ws__frame_header_size(t[i].len, 0), t[i].size);
    CHECK_EQ(h2ws__frame_header_size(t[i].len, 1), t[i].size + 4);
    size_t n = h2ws__frame_build(out, 1, 0, 2, key, t[i].len);
    CHECK_EQ(n, t[i].size + 4);
    h2ws__frame_hdr h;
    size_t used;
    CHECK_EQ(parse_both(out, n, &h, &used), 1);
    CHECK_EQ(used, n);
    CHECK(h.len == t[i].len);
    CHECK_MEM(h.key, key, 4);
  }
}

static void W1_rsv_and_flags(void) {
  uint8_t out[H2WS__FRAME_HDR_MAX];
  h2ws__frame_build(out, 1, H2WS__RSV1, 1, NULL, 0);
  CHECK_EQ(out[0], 0xC1);
  h2ws__frame_hdr h;
  size_t used;
  static const uint8_t v[] = {0x7F, 0x00};
  CHECK_EQ(parse_both(v, 2, &h, &used), 1);
  CHECK_EQ(h.fin, 0);
  CHECK_EQ(h.rsv, 7);
  CHECK_EQ(h.opcode, 0xF);
}

static void W1_non_minimal_accepted(void) {
  /* 5 encoded in 16 and 64 bits: accepted (the spec only binds senders). */
  static const uint8_t a[] = {0x82, 0x7E, 0x00, 0x05};
  static const uint8_t b[] = {0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0, 5};
  h2ws__frame_hdr h;
  size_t used;
  CHECK_EQ(parse_both(a, sizeof a, &h, &used), 1);
  CHECK_EQ(h.len, 5);
  CHECK_EQ(parse_both(b, sizeof b, &h, &used), 1);
  CHECK_EQ(h.len, 5);
}

static void W1_64bit_msb_rejected(void) {
  static const uint8_t v[] = {0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 1};
  h2ws__frame_parser p;
  h2ws__frame_hdr h;
  size_t n;
  h2ws__frame_parser_reset(&p);
  CHECK_EQ(h2ws__frame_parse(&p, v, sizeof v, &n, &h), H2WS_ERR_PROTO);
  /* also when it arrives byte by byte */
  h2ws__frame_parser_reset(&p);
  int r = 0;
  for (size_t i = 0; i < sizeof v && r == 0; i++) r = h2ws__frame_parse(&p, v + i, 1, &n, &h);
  CHECK_EQ(r, H2WS_ERR_PROTO);
}

static void W1_truncated_needs_more(void) {
  static const uint8_t v[] = {0x82, 0xFF, 0, 0, 0, 0, 0, 0, 1, 0, 0xAA, 0xBB, 0xCC};
  h2ws__frame_parser p;
  h2ws__frame_hdr h;
  size_t n;
  h2ws__frame_parser_reset(&p);
  CHECK_EQ(h2ws__frame_parse(&p, v, sizeof v, &n, &h), 0);
  CHECK_EQ(n, sizeof v);
  static const uint8_t last = 0xDD;
  CHECK_EQ(h2ws__frame_parse(&p, &last, 1, &n, &h), 1);
  CHECK_EQ(n, 1);
  CHECK_EQ(h.len, 256);
  static const uint8_t key[] = {0xAA, 0xBB, 0xCC, 0xDD};
  CHECK_MEM(h.key, key, 4);
  /* empty input: nothing consumed */
  CHECK_EQ(h2ws__frame_parse(&p, v, 0, &n, &h), 0);
  CHECK_EQ(n, 0);
}

static void W1_stops_at_header_end(void) {
  /* two frames back to back: the parser consumes only the first header */
  static const uint8_t v[] = {0x89, 0x00, 0x8A, 0x00};
  h2ws__frame_parser p;
  h2ws__frame_hdr h;
  size_t n;
  h2ws__frame_parser_reset(&p);
  CHECK_EQ(h2ws__frame_parse(&p, v, sizeof v, &n, &h), 1);
  CHECK_EQ(n, 2);
  CHECK_EQ(h.opcode, 9);
  CHECK_EQ(h2ws__frame_parse(&p, v + 2, 2, &n, &h), 1);
  CHECK_EQ(h.opcode, 0xA);
}

int main(void) {
  static const tu_case cases[] = {
      {"rfc_single_unmasked", rfc_single_unmasked},
      {"rfc_single_masked", rfc_single_masked},
      {"rfc_fragmented", rfc_fragmented},
      {"rfc_ping_pong", rfc_ping_pong},
      {"rfc_256_bytes_16bit", rfc_256_bytes_16bit},
      {"rfc_64k_64bit", rfc_64k_64bit},
      {"W1_minimal_length_boundaries", W1_minimal_length_boundaries},
      {"W1_rsv_and_flags", W1_rsv_and_flags},
      {"W1_non_minimal_accepted", W1_non_minimal_accepted},
      {"W1_64bit_msb_rejected", W1_64bit_msb_rejected},
      {"W1_truncated_needs_more", W1_truncated_needs_more},
      {"W1_stops_at_header_end", W1_stops_at_header_end},
  };
  return TU_RUN(cases);
}
