/* tests/unit/test_utf8.c - SPEC W5: incremental fail-fast UTF-8 validation
 * (lib/ws/utf8.c) against boundaries, every RFC 3629 error class, chunk
 * splits at every byte, the SIMD block paths, and a table-driven reference. */
#include <stdint.h>
#include <string.h>

#include <h2ws/ws.h>

#include "testutil.h"
#include "ws/utf8.h"

/* ---- reference: Unicode Table 3-7 (well-formed byte sequences) ---------- */
typedef struct { uint8_t lead_lo, lead_hi, n, lo2, hi2; } ref_row;
static const ref_row ref_rows[] = {
    {0x00, 0x7F, 1, 0, 0},       {0xC2, 0xDF, 2, 0x80, 0xBF}, {0xE0, 0xE0, 3, 0xA0, 0xBF},
    {0xE1, 0xEC, 3, 0x80, 0xBF}, {0xED, 0xED, 3, 0x80, 0x9F}, {0xEE, 0xEF, 3, 0x80, 0xBF},
    {0xF0, 0xF0, 4, 0x90, 0xBF}, {0xF1, 0xF3, 4, 0x80, 0xBF}, {0xF4, 0xF4, 4, 0x80, 0x8F},
};

/* Returns the offset of the first byte that cannot continue valid UTF-8, or
 * len if none; *popen = 1 if the text ends inside a sequence. */
static size_t ref_check(const uint8_t *d, size_t len, int *popen) {
  size_t i = 0;
  *popen = 0;
  while (i < len) {
    const ref_row *r = NULL;
    for (size_t k = 0; k < sizeof ref_rows / sizeof ref_rows[0]; k++)
      if (d[i] >= ref_rows[k].lead_lo && d[i] <= ref_rows[k].lead_hi) r = &ref_rows[k];
    if (!r) return i;
    for (size_t k = 1; k < r->n; k++) {
      if (i + k >= len) {
        *popen = 1;
        return len;
      }
      uint8_t lo = k == 1 ? r->lo2 : 0x80, hi = k == 1 ? r->hi2 : 0xBF;
      if (d[i + k] < lo || d[i + k] > hi) return i + k;
    }
    i += r->n;
  }
  return len;
}

static size_t enc(uint8_t *o, uint32_t cp) {
  if (cp < 0x80) { o[0] = (uint8_t)cp; return 1; }
  if (cp < 0x800) { o[0] = (uint8_t)(0xC0 | cp >> 6); o[1] = (uint8_t)(0x80 | (cp & 0x3F)); return 2; }
  if (cp < 0x10000) {
    o[0] = (uint8_t)(0xE0 | cp >> 12); o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (uint8_t)(0x80 | (cp & 0x3F)); return 3;
  }
  o[0] = (uint8_t)(0xF0 | cp >> 18); o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
  o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (uint8_t)(0x80 | (cp & 0x3F));
  return 4;
}

static uint32_t rng_state = 0x12345678u;
static uint32_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 17;
  rng_state ^= rng_state << 5;
  return rng_state;
}

/* Feeds d in chunks cut at cuts[0..ncuts) and checks against the reference:
 * same verdict, the exact global offset of the first bad byte, and the
 * end-of-message completeness.  Returns 0 if all agree. */
static int agree_split(const uint8_t *d, size_t len, const size_t *cuts, size_t ncuts) {
  int open;
  size_t want = ref_check(d, len, &open);
  h2ws__utf8 u;
  h2ws__utf8_reset(&u);
  size_t pos = 0;
  for (size_t c = 0; c <= ncuts; c++) {
    size_t end = c < ncuts ? cuts[c] : len;
    size_t bad = (size_t)-1;
    int rv = h2ws__utf8_feed(&u, d + pos, end - pos, &bad);
    if (rv != 0) {
      if (want == len || pos + bad != want) {
        fprintf(stderr, "  len %zu: bad at %zu, want %zu\n", len, pos + bad, want);
        return -1;
      }
      return 0;
    }
    if (want < end) {
      fprintf(stderr, "  len %zu: missed bad byte at %zu\n", len, want);
      return -1;
    }
    pos = end;
  }
  if (want != len) return -1;
  if (h2ws__utf8_complete(&u) != !open) return -1;
  if (h2ws_utf8_is_valid(d, len) != !open) return -1;
  return 0;
}

static int agree(const uint8_t *d, size_t len) { return agree_split(d, len, NULL, 0); }

/* Whole, split at every byte position, and one byte per chunk. */
static int agree_all_splits(const uint8_t *d, size_t len) {
  if (agree(d, len)) return -1;
  for (size_t cut = 0; cut <= len; cut++)
    if (agree_split(d, len, &cut, 1)) return -1;
  size_t cuts[64];
  if (len <= 64) {
    for (size_t i = 0; i < len; i++) cuts[i] = i;
    if (agree_split(d, len, cuts, len)) return -1;
  }
  return 0;
}

static int bad_at(const char *s, size_t len) {
  h2ws__utf8 u;
  h2ws__utf8_reset(&u);
  size_t bad = 999;
  if (h2ws__utf8_feed(&u, (const uint8_t *)s, len, &bad) == 0) return -1;
  return (int)bad;
}

/* ---- cases ----------------------------------------------------------- */

static void test_w5_boundaries(void) {
  static const uint32_t cps[] = {0,      0x7F,   0x80,   0x7FF, 0x800,    0xD7FF,
                                 0xE000, 0xFFFD, 0xFFFF, 0x10000, 0x10FFFF};
  for (size_t k = 0; k < sizeof cps / sizeof cps[0]; k++) {
    uint8_t b[4];
    size_t n = enc(b, cps[k]);
    CHECK(h2ws_utf8_is_valid(b, n));
    CHECK(agree_all_splits(b, n) == 0);
    /* the same code point deep inside a SIMD-sized buffer, at every offset */
    uint8_t big[200];
    for (size_t off = 0; off + n <= sizeof big; off++) {
      memset(big, 'x', sizeof big);
      memcpy(big + off, b, n);
      CHECK(h2ws_utf8_is_valid(big, sizeof big));
    }
  }
  CHECK_EQ(enc((uint8_t[4]){0}, 0x10FFFF), 4);
}

static void test_w5_all_code_points(void) {
  static uint8_t buf[0x110000 * 4];
  size_t n = 0;
  for (uint32_t cp = 0; cp <= 0x10FFFF; cp++)
    if (cp < 0xD800 || cp > 0xDFFF) n += enc(buf + n, cp);
  CHECK(h2ws_utf8_is_valid(buf, n));
  /* every surrogate is rejected at its second byte */
  for (uint32_t cp = 0xD800; cp <= 0xDFFF; cp++) {
    uint8_t b[3];
    enc(b, cp);
    CHECK_EQ(bad_at((const char *)b, 3), 1);
  }
}

static void test_w5_overlong(void) {
  CHECK_EQ(bad_at("\xC0\x80", 2), 0);
  CHECK_EQ(bad_at("\xC1\xBF", 2), 0);
  CHECK_EQ(bad_at("ab\xC0\xAF", 4), 2);
  CHECK_EQ(bad_at("\xE0\x80\x80", 3), 1);
  CHECK_EQ(bad_at("\xE0\x9F\xBF", 3), 1);
  CHECK_EQ(bad_at("\xF0\x80\x80\x80", 4), 1);
  CHECK_EQ(bad_at("\xF0\x8F\xBF\xBF", 4), 1);
  CHECK(h2ws_utf8_is_valid((const uint8_t *)"\xE0\xA0\x80\xF0\x90\x80\x80", 7));
}

static void test_w5_surrogates(void) {
  CHECK_EQ(bad_at("\xED\xA0\x80", 3), 1);
  CHECK_EQ(bad_at("\xED\xBF\xBF", 3), 1);
  CHECK_EQ(bad_at("x\xED\xB0\x80", 4), 2);
  CHECK(h2ws_utf8_is_valid((const uint8_t *)"\xED\x9F\xBF", 3));
}

static void test_w5_above_max_and_f5_ff(void) {
  CHECK_EQ(bad_at("\xF4\x90\x80\x80", 4), 1);
  CHECK_EQ(bad_at("\xF4\xBF\xBF\xBF", 4), 1);
  for (unsigned b = 0xF5; b <= 0xFF; b++) {
    char s[4] = {(char)b, (char)0x80, (char)0x80, (char)0x80};
    CHECK_EQ(bad_at(s, 4), 0);
    CHECK_EQ(bad_at(s, 1), 0);
  }
  CHECK(h2ws_utf8_is_valid((const uint8_t *)"\xF4\x8F\xBF\xBF", 4));
}

static void test_w5_stray_continuation(void) {
  CHECK_EQ(bad_at("\x80", 1), 0);
  CHECK_EQ(bad_at("a\xBF", 2), 1);
  CHECK_EQ(bad_at("\xC2\x80\x80", 3), 2);
  CHECK_EQ(bad_at("\xE1\x80\x80\x80", 4), 3);
  CHECK_EQ(bad_at("\xF1\x80\x80\x80\x80", 5), 4);
}

static void test_w5_truncated(void) {
  static const char *open[] = {"\xC2", "\xE1", "\xE1\x80", "\xF1", "\xF1\x80", "\xF1\x80\x80",
                               "abc\xF4\x8F\xBF"};
  for (size_t k = 0; k < sizeof open / sizeof open[0]; k++) {
    h2ws__utf8 u;
    h2ws__utf8_reset(&u);
    size_t n = strlen(open[k]);
    CHECK_EQ(h2ws__utf8_feed(&u, (const uint8_t *)open[k], n, NULL), 0);
    CHECK(!h2ws__utf8_complete(&u)); /* end of message: close 1007 */
    CHECK(!h2ws_utf8_is_valid((const uint8_t *)open[k], n));
  }
  /* truncated sequence followed by a non-continuation byte */
  CHECK_EQ(bad_at("\xC2\x41", 2), 1);
  CHECK_EQ(bad_at("\xE1\x80\x41", 3), 2);
  CHECK_EQ(bad_at("\xF1\x80\x80\xC2\x80", 5), 3);
  CHECK_EQ(bad_at("\xE1\xE1\x80\x80", 4), 1);
  /* empty message is valid */
  CHECK(h2ws_utf8_is_valid(NULL, 0));
}

static void test_w5_split_every_position(void) {
  static const char *s[] = {
      "h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80 \xD0\x9F\xD1\x80\xD0\xB8 \xE4\xB8\xAD",
      "\xF4\x8F\xBF\xBF\xEF\xBF\xBF\xC2\x80\xE0\xA0\x80\xF0\x90\x80\x80",
      "ok \xE0\x9F\x80 tail",      "ok \xED\xA0\x80 tail",       "ok \xF4\x90\x80\x80",
      "\xF0\x9F\x98 x",            "\xC2\xC2\x80",               "abc\x80",
      "\xF8\x88\x80\x80\x80",      "\xE2\x82",                   "\xF0\x9F\x98\x80\xF0\x9F\x98",
  };
  for (size_t k = 0; k < sizeof s / sizeof s[0]; k++)
    CHECK(agree_all_splits((const uint8_t *)s[k], strlen(s[k])) == 0);
}

/* Builds mixed text: ASCII with Cyrillic, CJK and emoji. */
static size_t mixed(uint8_t *o, size_t cap, int ascii_only) {
  static const uint32_t pool[] = {'a', 'Z', ' ', 0x41F, 0x440, 0x4E2D, 0x6587, 0x1F600, 0xE9, 0x10FFFF};
  size_t n = 0;
  while (n + 4 <= cap) {
    uint32_t cp = ascii_only ? (uint32_t)('a' + rnd() % 26) : pool[rnd() % 10];
    n += enc(o + n, cp);
  }
  return n;
}

/* Invalid byte at every position of long buffers (the AVX2 blocks, the
 * ASCII runs and the scalar tail): the reported offset is exact. */
static void test_w5_simd_every_position(void) {
  static const uint8_t corrupt[] = {0xFF, 0x80, 0xC0, 0xF5, 0xED, 0xBF, 0x41};
  uint8_t base[700], d[700];
  for (int mode = 0; mode < 2; mode++) {
    size_t n = mixed(base, sizeof base, mode);
    CHECK(agree(base, n) == 0);
    CHECK(h2ws_utf8_is_valid(base, n));
    for (size_t c = 0; c < sizeof corrupt; c++)
      for (size_t pos = 0; pos < n; pos++) {
        memcpy(d, base, n);
        d[pos] = corrupt[c];
        CHECK(agree(d, n) == 0);
        size_t cut = (pos * 7) % (n + 1);
        CHECK(agree_split(d, n, &cut, 1) == 0);
      }
  }
}

/* Invalid sequences (not just bytes) planted at every position of a long
 * ASCII run, so they straddle every 32-byte block boundary. */
static void test_w5_sequences_across_blocks(void) {
  static const char *seq[] = {"\xE0\x80\x80", "\xED\xA0\x80", "\xF4\x90\x80\x80",
                              "\xF0\x8F\x80\x80", "\xC2\x80\x80", "\xE2\x82",
                              "\xF0\x9F\x98\x80", "\xC1\x81", "\xE2\x82\xAC"};
  uint8_t d[300];
  for (size_t k = 0; k < sizeof seq / sizeof seq[0]; k++)
    for (size_t pos = 0; pos + 4 < sizeof d; pos++) {
      memset(d, 'a', sizeof d);
      memcpy(d + pos, seq[k], strlen(seq[k]));
      CHECK(agree(d, sizeof d) == 0);
      CHECK(agree(d, pos + strlen(seq[k])) == 0); /* ends right there */
    }
}

/* Differential: random near-valid text, whole and cut at random places. */
static void test_w5_random_differential(void) {
  static uint8_t d[2048];
  rng_state = 0xC0FFEEu;
  for (int iter = 0; iter < 20000; iter++) {
    size_t n = 0, want = rnd() % sizeof d;
    while (n + 4 <= want) {
      uint32_t r = rnd() % 100;
      if (r < 50) d[n++] = (uint8_t)(rnd() % 0x80);
      else if (r < 97) {
        uint32_t cp = rnd() % 0x110000;
        if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0x20;
        n += enc(d + n, cp);
      } else d[n++] = (uint8_t)rnd(); /* a random byte, often invalid */
    }
    CHECK(agree(d, n) == 0);
    size_t cuts[3] = {rnd() % (n + 1), 0, 0};
    cuts[1] = cuts[0] + rnd() % (n - cuts[0] + 1);
    cuts[2] = cuts[1] + rnd() % (n - cuts[1] + 1);
    CHECK(agree_split(d, n, cuts, 3) == 0);
  }
}

/* Purely random bytes (mostly invalid quickly) and the fully valid case. */
static void test_w5_random_bytes(void) {
  uint8_t d[256];
  rng_state = 42;
  for (int iter = 0; iter < 20000; iter++) {
    size_t n = rnd() % sizeof d;
    uint32_t hi = rnd() % 4; /* bias toward lead/continuation bytes */
    for (size_t i = 0; i < n; i++)
      d[i] = hi == 0 ? (uint8_t)rnd() : (uint8_t)(0x80 | (rnd() % 0x78));
    size_t cut = rnd() % (n + 1);
    CHECK(agree_split(d, n, &cut, 1) == 0);
  }
}

int main(void) {
  static const tu_case cases[] = {
      {"W5_boundaries", test_w5_boundaries},
      {"W5_all_code_points", test_w5_all_code_points},
      {"W5_overlong", test_w5_overlong},
      {"W5_surrogates", test_w5_surrogates},
      {"W5_above_max_and_f5_ff", test_w5_above_max_and_f5_ff},
      {"W5_stray_continuation", test_w5_stray_continuation},
      {"W5_truncated", test_w5_truncated},
      {"W5_split_every_position", test_w5_split_every_position},
      {"W5_simd_every_position", test_w5_simd_every_position},
      {"W5_sequences_across_blocks", test_w5_sequences_across_blocks},
      {"W5_random_differential", test_w5_random_differential},
      {"W5_random_bytes", test_w5_random_bytes},
  };
  return TU_RUN(cases);
}
