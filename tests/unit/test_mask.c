/* tests/unit/test_mask.c - RFC 6455 §5.3 masking (lib/ws/mask.c) against a
 * naive per-byte reference: every length 0..300, phase 0..3, src/dst
 * misalignment 0..15, in place and out of place, and split payloads. */
#include <stdint.h>
#include <string.h>

#include "testutil.h"
#include "ws/mask.h"

static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};

static void ref_mask(uint8_t *dst, const uint8_t *src, size_t len, size_t phase) {
  for (size_t i = 0; i < len; i++) dst[i] = src[i] ^ key[(phase + i) % 4];
}

static void fill(uint8_t *p, size_t n, uint32_t seed) {
  for (size_t i = 0; i < n; i++) {
    seed = seed * 1103515245u + 12345u;
    p[i] = (uint8_t)(seed >> 16);
  }
}

/* W1_mask_lengths_phases_alignment: out of place, every length/phase/offset. */
static void test_mask_out_of_place(void) {
  static uint8_t src[300 + 64], dst[300 + 64], want[300 + 64];
  for (size_t len = 0; len <= 300; len++)
    for (size_t phase = 0; phase < 4; phase++)
      for (size_t so = 0; so < 16; so++)
        for (size_t d = 0; d < 16; d += (so == 0 ? 1 : 5)) {
          fill(src, sizeof src, (uint32_t)(len * 7 + phase));
          memset(dst, 0xEE, sizeof dst);
          ref_mask(want, src + so, len, phase);
          size_t np = h2ws__mask(dst + d, src + so, len, key, phase);
          CHECK_EQ(np, (phase + len) % 4);
          CHECK_MEM(dst + d, want, len);
          /* nothing written outside [d, d+len) */
          for (size_t i = 0; i < d; i++) CHECK_EQ(dst[i], 0xEE);
          for (size_t i = d + len; i < sizeof dst; i++) CHECK_EQ(dst[i], 0xEE);
        }
}

/* Every destination offset against every source offset at a few lengths. */
static void test_mask_all_offsets(void) {
  static uint8_t src[300 + 32], dst[300 + 32], want[300];
  static const size_t lens[] = {1, 7, 31, 64, 129, 300};
  for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++)
    for (size_t so = 0; so < 16; so++)
      for (size_t d = 0; d < 16; d++)
        for (size_t phase = 0; phase < 4; phase++) {
          size_t len = lens[li];
          fill(src, sizeof src, (uint32_t)(so * 31 + d));
          ref_mask(want, src + so, len, phase);
          h2ws__mask(dst + d, src + so, len, key, phase);
          CHECK_MEM(dst + d, want, len);
        }
}

/* In place (dst == src), every length/phase/offset. */
static void test_mask_in_place(void) {
  static uint8_t buf[300 + 16], want[300];
  for (size_t len = 0; len <= 300; len++)
    for (size_t phase = 0; phase < 4; phase++)
      for (size_t o = 0; o < 16; o++) {
        fill(buf, sizeof buf, (uint32_t)(len + o));
        ref_mask(want, buf + o, len, phase);
        CHECK_EQ(h2ws__mask(buf + o, buf + o, len, key, phase), (phase + len) % 4);
        CHECK_MEM(buf + o, want, len);
      }
}

/* A payload split at every position unmasks the same as the whole, with the
 * phase returned by the first call fed to the second. */
static void test_mask_split(void) {
  static uint8_t src[300], whole[300], parts[300];
  for (size_t len = 0; len <= 300; len += (len < 80 ? 1 : 23)) {
    fill(src, len, (uint32_t)len);
    for (size_t phase = 0; phase < 4; phase++) {
      h2ws__mask(whole, src, len, key, phase);
      for (size_t cut = 0; cut <= len; cut++) {
        size_t ph = h2ws__mask(parts, src, cut, key, phase);
        CHECK_EQ(ph, (phase + cut) % 4);
        h2ws__mask(parts + cut, src + cut, len - cut, key, ph);
        CHECK_MEM(parts, whole, len);
      }
    }
  }
}

/* Three-way split and large buffers (the AVX2 path). */
static void test_mask_large(void) {
  enum { N = 70000 };
  static uint8_t src[N], a[N], b[N];
  fill(src, N, 99);
  ref_mask(a, src, N, 3);
  size_t ph = h2ws__mask(b, src, 12345, key, 3);
  ph = h2ws__mask(b + 12345, src + 12345, 1, key, ph);
  h2ws__mask(b + 12346, src + 12346, N - 12346, key, ph);
  CHECK_MEM(a, b, N);
  /* masking twice restores the plaintext */
  h2ws__mask(b, b, N, key, 3);
  CHECK_MEM(b, src, N);
}

/* RFC 6455 §5.7 example: "Hello" masked with 37 fa 21 3d. */
static void test_mask_rfc_vector(void) {
  static const uint8_t masked[5] = {0x7f, 0x9f, 0x4d, 0x51, 0x58};
  uint8_t out[5];
  h2ws__mask(out, masked, 5, key, 0);
  CHECK_MEM(out, "Hello", 5);
}

int main(void) {
  static const tu_case cases[] = {
      {"W1_mask_out_of_place", test_mask_out_of_place},
      {"W1_mask_all_offsets", test_mask_all_offsets},
      {"W1_mask_in_place", test_mask_in_place},
      {"W1_mask_split", test_mask_split},
      {"W1_mask_large", test_mask_large},
      {"W1_mask_rfc_vector", test_mask_rfc_vector},
  };
  return TU_RUN(cases);
}
